//! The `callout` binary: parse the CLI, set up logging, dispatch, map errors to exit codes.
//!
//! Exit codes: 0 ok, 1 run-time failure (after doing all the work it could),
//! 2 bad usage or config.

use std::process::ExitCode;

use clap::Parser;

use callout::cli::{Cli, Command, LogFormat};
use callout::config::{self, ConfigError};

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CALLOUT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn load_config(path: &std::path::Path) -> Result<config::Config, ExitCode> {
    config::load(path).map_err(|e| {
        eprintln!("error: {e}");
        match e {
            ConfigError::Read { .. } | ConfigError::Invalid { .. } => ExitCode::from(2),
        }
    })
}

fn main() -> ExitCode {
    let args = callout::cli::normalise_args(std::env::args().collect());
    let cli = Cli::parse_from(args);
    init_logging(cli.log_format);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::CheckConfig { config } => {
            let cfg = match load_config(&config) {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            println!(
                "{}: ok ({} source(s), {} metric rule(s), {} owner rule(s))",
                cfg.path.display(),
                cfg.sources.len(),
                cfg.metrics.len(),
                cfg.owners.rules.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Backfill(args) => {
            let cfg = match load_config(&args.config) {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            let ev = callout::backfill::run(&cfg, &args)?;
            let mut code = report_errors(&ev.errors);
            if args.store || args.send {
                let r = callout::app::record_backfill(&cfg, &ev, args.send)?;
                eprintln!(
                    "backfill: stored in `{}`; {} incident(s) not yet announced, {} digest(s) queued, {} sent",
                    cfg.store_path.display(),
                    r.new_incidents,
                    r.queued,
                    r.sent
                );
                for p in &r.problems {
                    eprintln!("error: {p}");
                }
                if !r.problems.is_empty() {
                    code = ExitCode::from(1);
                }
            }
            Ok(code)
        }
        Command::Run(args) => {
            let cfg = match load_config(&args.config) {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            callout::app::run(cfg, &args)
        }
        Command::Serve { config } => {
            let cfg = match load_config(&config) {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            if cfg.web.is_none() {
                eprintln!(
                    "error: config `{}` has no [web] table (listen, public_url): nothing to serve",
                    cfg.path.display()
                );
                return Ok(ExitCode::from(2));
            }
            callout::web::serve_blocking(cfg)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::TestEmail { config, to } => {
            let cfg = match load_config(&config) {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            callout::app::test_email(&cfg, &to)
        }
    }
}

fn report_errors(errors: &[callout::source::SourceError]) -> ExitCode {
    for e in errors {
        eprintln!("error: {e}");
    }
    if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
