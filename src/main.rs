//! The `callout` binary: parse the CLI, set up logging, dispatch, and decide the
//! exit code — here and nowhere else ([`exit_code`]).
//!
//! Exit codes: 0 ok (warnings allowed), 1 run-time failure after doing all the
//! work it could (a source or series that could not be used, mail that could not
//! be sent), 2 bad usage or config (nothing was done).

use std::io::{IsTerminal, Write as _};
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;

use callout::cli::{self, Cli, Command, LogFormat};
use callout::config::{self, ConfigError};

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CALLOUT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // colour codes only for a person at a terminal, never into a file or journald
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// How a command ended, short of failing outright.
enum Outcome {
    /// Everything was done; warnings (if any) were reported.
    Done,
    /// Everything that could be done was done, but this many things failed
    /// (each already reported).
    Problems,
}

/// Why a command failed outright.
enum Failure {
    /// Flags that do not go together, or an unusable `--output`.
    Usage(anyhow::Error),
    /// The config could not be read or is invalid.
    Config(ConfigError),
    /// Anything else (the store, a write); reported with its causes.
    Runtime(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Runtime(e)
    }
}

/// The one place that maps results to exit codes.
fn exit_code(result: &Result<Outcome, Failure>) -> ExitCode {
    match result {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::Problems) | Err(Failure::Runtime(_)) => ExitCode::from(1),
        Err(Failure::Usage(_) | Failure::Config(_)) => ExitCode::from(2),
    }
}

fn main() -> ExitCode {
    let args = cli::normalise_args(std::env::args().collect());
    let parsed = Cli::parse_from(args);
    cli::set_log_format(parsed.log_format);
    init_logging(parsed.log_format);
    let result = run(parsed);
    match &result {
        Ok(_) => {}
        Err(Failure::Usage(e) | Failure::Runtime(e)) => cli::error(&cli::error_chain(e)),
        Err(Failure::Config(e)) => cli::error(&e.to_string()),
    }
    exit_code(&result)
}

fn load_config(path: &std::path::Path) -> Result<config::Config, Failure> {
    config::load(path).map_err(Failure::Config)
}

/// `--at` as an instant; a local time is read in the review's timezone.
fn resolve_at(
    at: Option<cli::At>,
    cfg: &config::Config,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, Failure> {
    at.map(|a| a.resolve(cfg.review.timezone))
        .transpose()
        .map_err(|e| Failure::Usage(anyhow::anyhow!(e)))
}

fn outcome(problems: usize) -> Outcome {
    if problems == 0 {
        Outcome::Done
    } else {
        Outcome::Problems
    }
}

/// The one dispatch: each mode runs and prints what it returns.
fn run(cli: Cli) -> Result<Outcome, Failure> {
    match cli.command {
        Command::CheckConfig { config } => check_config(&config),
        Command::CheckSources { config, at } => check_sources(&config, at),
        Command::Backfill(args) => backfill(&args),
        Command::Run(args) => {
            args.check().map_err(|e| Failure::Usage(e.into()))?;
            let cfg = load_config(&args.config)?;
            if args.once {
                run_once(cfg, &args)
            } else {
                // args.check() refused --dry-run without --once: never a sending daemon for it
                callout::daemon::run_blocking(cfg.path.clone(), cfg, |server| {
                    cli::say(&format!("web server: {}", server.serving_line()));
                })?;
                Ok(Outcome::Done)
            }
        }
        Command::Serve { config, at } => {
            let cfg = load_config(&config)?;
            let clock: std::sync::Arc<dyn callout::clock::Clock> = match resolve_at(at, &cfg)? {
                Some(t) => std::sync::Arc::new(callout::clock::ShiftedClock::starting_at(t)),
                None => std::sync::Arc::new(callout::clock::SystemClock),
            };
            if cfg.web.is_none() {
                return Err(Failure::Usage(anyhow::anyhow!(
                    "config `{}` has no [web] table (listen, public_url): nothing to serve",
                    cfg.path.display()
                )));
            }
            // said once bound, so the address is one that answers (the real port for `:0`)
            callout::web::serve_blocking(cfg, clock, |server| cli::say(&server.serving_line()))?;
            Ok(Outcome::Done)
        }
        Command::Demo { out } => demo(&out),
        Command::Init {
            from,
            output,
            force,
        } => {
            let written = callout::init::run(&from, &output, force).map_err(|e| match e {
                callout::init::InitError::Exists(_) => Failure::Usage(e.into()),
                e => Failure::Runtime(e.into()),
            })?;
            cli::say(&written);
            Ok(Outcome::Done)
        }
        Command::Report(args) => report(&args),
        Command::TestEmail { config, to } => {
            let cfg = load_config(&config)?;
            // the command's result, on stdout
            println!("{}", callout::app::test_email(&cfg, &to)?);
            Ok(Outcome::Done)
        }
        Command::TestChat { config, to } => {
            let cfg = load_config(&config)?;
            callout::alert::chat::send_test(&cfg, &to, chrono::Utc::now())
                .map_err(anyhow::Error::from)?;
            let kind = cfg.chat_named(&to).map_or("", |c| c.kind.as_str());
            // the command's result, on stdout
            println!("test message posted to chat `{to}` ({kind})");
            Ok(Outcome::Done)
        }
        Command::Outbox { config, requeue } => {
            let cfg = load_config(&config)?;
            let listing = callout::app::outbox(&cfg, &requeue, chrono::Utc::now())?;
            for line in &listing.lines {
                println!("{line}");
            }
            for id in &listing.not_found {
                cli::error(&format!(
                    "outbox: no given-up message with id {id} (see the list; only given-up messages can be re-queued)"
                ));
            }
            Ok(outcome(listing.not_found.len()))
        }
    }
}

/// `check-config`: the config compiles and the columns it names are in
/// the local exports' headers.
fn check_config(config: &Path) -> Result<Outcome, Failure> {
    let cfg = load_config(config)?;
    // A column the config names and a local export's header lacks
    // is the config's mistake, found without reading the data.
    let problems: Vec<config::ConfigProblem> = cfg
        .sources
        .iter()
        .enumerate()
        .flat_map(|(i, s)| callout::source::header::column_problems(i, s))
        .collect();
    if !problems.is_empty() {
        return Err(Failure::Config(ConfigError::Invalid {
            path: cfg.path.clone(),
            problems,
        }));
    }
    // the command's result, on stdout like findings
    println!(
        "{}: ok ({} source(s), {} metric rule(s), {} owner rule(s))",
        cfg.path.display(),
        cfg.sources.len(),
        cfg.metrics.len(),
        cfg.owners.rules.len()
    );
    // Chat without [web]: messages go out, but without what makes them useful.
    if cfg.web.is_none() {
        for c in &cfg.chat {
            cli::warning(&format!(
                "chat `{}`: the config has no [web] table, so its messages carry no chart image and no \"Explain this\" button (owners answer by email or in the review)",
                c.name
            ));
        }
    }
    // The config is valid, but a run now would fail on these sources.
    let mut missing = 0;
    for s in &cfg.sources {
        if let config::Location::Path(p) = &s.location {
            if s.files().is_empty() {
                cli::warning(&format!(
                    "source `{}`: no file matches `{p}` (yet); a run now would report it as an error",
                    s.name
                ));
                missing += 1;
            }
        }
    }
    Ok(outcome(missing))
}

/// `check-sources`: every source read now (or as of `--at`), one line each.
fn check_sources(config: &Path, at: Option<cli::At>) -> Result<Outcome, Failure> {
    let cfg = load_config(config)?;
    let now = resolve_at(at, &cfg)?.unwrap_or_else(chrono::Utc::now);
    let mut failed = 0;
    for (name, result) in callout::pipeline::check_sources(&cfg, now) {
        match result {
            Ok(summary) => println!("source `{name}`: ok, {summary}"),
            Err(errors) => {
                failed += 1;
                // each error names its source
                for e in errors {
                    println!("FAILED: {e}");
                }
            }
        }
    }
    Ok(outcome(failed))
}

/// `backfill`: findings to the file (or CSV on stdout), the summary line,
/// then with `--store`/`--send` the store step and its summary.
fn backfill(args: &cli::BackfillArgs) -> Result<Outcome, Failure> {
    args.check().map_err(|e| Failure::Usage(e.into()))?;
    let cfg = load_config(&args.config)?;
    let format = callout::backfill::check_output(&cfg, args.output.as_deref())
        .map_err(|e| Failure::Usage(e.into()))?;
    let ev = callout::backfill::run(&cfg, args.options(), &cli::Bar::new(args.quiet))?;
    callout::backfill::write_findings(
        &ev,
        args.output.as_deref(),
        format,
        std::io::stdout().lock(),
    )?;
    cli::say(&callout::backfill::summary(&ev));
    // source errors and warnings were logged once by the pipeline
    let mut problems = ev.errors.len();
    if args.store || args.send {
        let r = callout::app::record_backfill(&cfg, &ev, args.send)?;
        cli::say(&format!(
            "backfill: stored in `{}`; {} incident(s) not yet announced, {} digest(s) queued, {} sent",
            cfg.store_path.display(),
            r.new_incidents,
            r.queued,
            r.sent
        ));
        for p in &r.problems {
            cli::error(p);
        }
        problems += r.problems.len();
    }
    Ok(outcome(problems))
}

/// `run --once`: the findings table on stdout (unless the digests went
/// there), the alert half's problems, then the summary.
fn run_once(cfg: config::Config, args: &cli::RunArgs) -> Result<Outcome, Failure> {
    let at = resolve_at(args.at, &cfg)?;
    let once = callout::app::run_once(cfg, &args.options(at))?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(once.streamed_digests()).map_err(|e| {
        Failure::Runtime(anyhow::Error::from(e).context("writing digests to stdout"))
    })?;
    if once.shows_findings() {
        let findings = &once.cycle.evaluation.detection.findings;
        callout::output::write_table(&mut stdout, findings, &once.cycle.evaluation.key_columns())
            .map_err(|e| Failure::Runtime(e.into()))?;
    }
    drop(stdout);
    // source errors were logged once by the pipeline; the alert half's here
    for p in once.alert_problems() {
        cli::error(p);
    }
    for line in once.summary_lines() {
        cli::say(&line);
    }
    Ok(outcome(once.problem_count()))
}

/// `report`: the signed link (`--link`) and/or the page written to a file.
fn report(args: &cli::ReportArgs) -> Result<Outcome, Failure> {
    let cfg = load_config(&args.config)?;
    let (now, week) = args
        .moment_and_week(&cfg)
        .map_err(|m| Failure::Usage(anyhow::anyhow!(m)))?;
    if args.link {
        let url = callout::web::report::link(&cfg, week, now).map_err(|e| match e {
            callout::web::WebError::NotConfigured(_) => Failure::Usage(e.into()),
            e => Failure::Runtime(e.into()),
        })?;
        println!("{url}");
    }
    // without --output: a file named by the week, unless --link alone was asked for
    let output = match (&args.output, args.link) {
        (Some(output), _) => Some(output.clone()),
        (None, true) => None,
        (None, false) => Some(callout::report::default_output(week)),
    };
    let problems = match &output {
        Some(output) => {
            let written = callout::report::write(&cfg, now, week, output)
                .map_err(|e| Failure::Runtime(e.into()))?;
            say_written(&written)
        }
        None => 0,
    };
    Ok(outcome(problems))
}

/// A pre-read written: its line, then each problem; returns how many.
fn say_written(written: &callout::report::Written) -> usize {
    cli::say(&written.to_string());
    for p in &written.problems {
        cli::error(p);
    }
    written.problems.len()
}

/// `demo`: the replay's problems, the pre-read, then what to open.
/// Problems are counted as for `run --once` (a pre-read that could not be
/// made is one).
fn demo(out: &Path) -> Result<Outcome, Failure> {
    let demo = callout::demo::run(out).map_err(|e| match e {
        callout::demo::DemoError::NotADemoFolder(_) => Failure::Usage(e.into()),
        e => Failure::Runtime(e.into()),
    })?;
    for p in &demo.run_problems {
        cli::error(p);
    }
    let pre_read_problems = match demo.pre_read() {
        Ok(written) => say_written(&written),
        Err(e) => {
            cli::error(&format!("the pre-read: {e}"));
            1
        }
    };
    for line in demo.lines() {
        cli::say(&line);
    }
    Ok(outcome(demo.run_problems.len() + pre_read_problems))
}
