//! Command-line interface: one enum of modes, dispatched by one `match` in main.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Parser, Subcommand, ValueEnum};

/// Finds outliers in weekly-business-review metrics and asks each owner to explain them.
#[derive(Debug, Parser)]
#[command(name = "callout", version, about, long_about = None)]
pub struct Cli {
    /// Log format: human-readable or JSON lines (for journald and containers).
    #[arg(long, value_enum, default_value_t = LogFormat::Human, global = true)]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Text for people.
    Human,
    /// One JSON object per line.
    Json,
}

/// The modes of callout. `callout --backfill …` is the same as `callout backfill …`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compile the config and list every problem in it (exit 2 if any).
    CheckConfig {
        /// Config file.
        #[arg(long, short, default_value = "callout.toml")]
        config: PathBuf,
    },
    /// Evaluate history as the daemon would have, point by point, and write the findings.
    Backfill(BackfillArgs),
    /// Run the daemon on the config's schedule (or once, with --once).
    Run(RunArgs),
    /// Serve the explanation pages, /healthz and /metrics alone (no scheduler), on the same store.
    Serve {
        /// Config file (needs a [web] table).
        #[arg(long, short, default_value = "callout.toml")]
        config: PathBuf,
    },
    /// Send a test email through the configured SMTP server.
    TestEmail {
        /// Config file.
        #[arg(long, short, default_value = "callout.toml")]
        config: PathBuf,
        /// Recipient.
        #[arg(long)]
        to: String,
    },
}

/// Arguments of `backfill`.
#[derive(Debug, clap::Args)]
pub struct BackfillArgs {
    /// Config file.
    #[arg(long, short, default_value = "callout.toml")]
    pub config: PathBuf,
    /// First date to report (YYYY-MM-DD); earlier data is still used as history.
    #[arg(long)]
    pub from: Option<NaiveDate>,
    /// Last date to evaluate (YYYY-MM-DD); later data is ignored.
    #[arg(long)]
    pub to: Option<NaiveDate>,
    /// Findings file: CSV, or JSON lines when it ends in `.jsonl`; `-` or absent: CSV on stdout.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    /// Also record findings and incidents in the store.
    #[arg(long)]
    pub store: bool,
    /// Send the digests for incidents backfill found (implies --store).
    #[arg(long)]
    pub send: bool,
}

/// Arguments of `run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Config file.
    #[arg(long, short, default_value = "callout.toml")]
    pub config: PathBuf,
    /// Evaluate the latest point(s) now, print the findings and exit.
    #[arg(long)]
    pub once: bool,
    /// Render digests to this folder as .eml files (`-` for stdout) and send nothing.
    #[arg(long, num_args = 0..=1, default_missing_value = "-")]
    pub dry_run: Option<PathBuf>,
}

/// Let users type `callout --backfill …` as the service docs show:
/// the flag is rewritten to the `backfill` subcommand before parsing.
pub fn normalise_args(args: Vec<String>) -> Vec<String> {
    let mut args = args;
    if let Some(i) = args.iter().position(|a| a == "--backfill") {
        args.remove(i);
        let insert_at = args.len().min(1);
        args.insert(insert_at, "backfill".into());
    }
    args
}
