//! Command-line interface: one enum of modes, dispatched by one `match` in main;
//! checks between flags that clap cannot express ([`UsageError`]); the flags
//! turned into the plain options of the modules below (`app::RunOptions`,
//! `backfill::BackfillOptions`, the report's moment and week), which never see
//! a clap type; the backfill's progress bar ([`Bar`]); and the lines a command
//! prints for the person running it ([`say`], [`error`]), which follow
//! `--log-format` so that JSON logs stay all JSON. Only this file and `main`
//! print.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::OnceLock;

use chrono::{DateTime, NaiveDate, Utc};
use clap::{Parser, Subcommand, ValueEnum};

pub use crate::clock::At;
use crate::config::Config;
use crate::report::{self, Span, WeekChoice};

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
    /// Read every source now (files, URLs, SQL queries) and report per source: ok (with the
    /// keys it was read with: time_format, decimal, delimiter, encoding, sheet, header_row),
    /// or what is wrong, naming the file, row and column.
    CheckSources {
        /// Config file.
        #[arg(long, short, default_value = "callout.toml")]
        config: PathBuf,
        /// Read as a run at this moment would ("YYYY-MM-DD HH:MM" in the review's timezone).
        #[arg(long)]
        at: Option<At>,
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
        /// Serve as if it were this moment ("YYYY-MM-DD HH:MM" in the review's
        /// timezone, or RFC 3339): link expiry and due/overdue wording follow
        /// it (the clock still moves on from there). For replays and the demo.
        #[arg(long)]
        at: Option<At>,
    },
    /// Write the bundled demo (exports, config) to a folder, run it as of
    /// Monday 2025-03-10 08:00 without network or mail, and write its digests
    /// as .eml and .html.
    Demo {
        /// Folder to write into (created; refused if it holds anything but an earlier demo).
        #[arg(long, default_value = "callout-demo")]
        out: PathBuf,
    },
    /// Write a commented config for your own exports, from the head of each file: the time
    /// column and its time_format, the decimal mark, a CSV's delimiter and encoding, a
    /// workbook's sheet and header_row, long or wide, metrics named by their headers' slugs.
    Init {
        /// An export (CSV in any delimiter or encoding, an Excel or ODS workbook, Parquet or
        /// NDJSON); repeat for several sources.
        #[arg(long = "from", required = true)]
        from: Vec<PathBuf>,
        /// The config file to write.
        #[arg(long, short, default_value = "callout.toml")]
        output: PathBuf,
        /// Overwrite the config file if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Write the WBR pre-read: one self-contained HTML page, every metric's
    /// 6-12 chart, its numbers, incidents and explanations.
    Report(ReportArgs),
    /// Send a test email through the configured SMTP server.
    TestEmail {
        /// Config file.
        #[arg(long, short, default_value = "callout.toml")]
        config: PathBuf,
        /// Recipient.
        #[arg(long)]
        to: String,
    },
    /// Post a test message to a [[chat]] channel (Slack or Teams) now.
    TestChat {
        /// Config file.
        #[arg(long, short, default_value = "callout.toml")]
        config: PathBuf,
        /// The [[chat]] name.
        #[arg(long)]
        to: String,
    },
    /// List the messages (mail and chat) still to be delivered and those given up on (refused
    /// for good by the server, or in doubt twice), and re-queue it.
    Outbox {
        /// Config file.
        #[arg(long, short, default_value = "callout.toml")]
        config: PathBuf,
        /// Put this given-up message (its id in the list) back in the queue;
        /// the next run sends it. Repeat for several.
        #[arg(long, value_name = "ID")]
        requeue: Vec<i64>,
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
    /// Findings file, by extension (any case): `.csv`, `.jsonl`/`.ndjson` (JSON lines),
    /// `.json` (one JSON array), `.parquet`; `-` or absent: CSV on stdout.
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
    /// With --once: render digests to this folder as .eml files (`-` for stdout)
    /// and send nothing. Refused without --once (the daemon always sends).
    #[arg(long, num_args = 0..=1, default_missing_value = "-")]
    pub dry_run: Option<PathBuf>,
    /// With --once: evaluate as of this moment instead of now ("YYYY-MM-DD HH:MM"
    /// in the review's timezone, or RFC 3339), exactly as the daemon would have
    /// then: only periods that had ended by then are read, late checks count from it.
    #[arg(long)]
    pub at: Option<At>,
}

/// Arguments of `report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Config file.
    #[arg(long, short, default_value = "callout.toml")]
    pub config: PathBuf,
    /// The week to report, ISO `YYYY-Www` (moved to `report.week_start`);
    /// default: the last complete week before the next review.
    #[arg(long, conflicts_with = "date")]
    pub week: Option<String>,
    /// Report the week containing this date (YYYY-MM-DD).
    #[arg(long)]
    pub date: Option<NaiveDate>,
    /// Make the report as of this moment ("YYYY-MM-DD HH:MM" in the review's
    /// timezone, or RFC 3339): later rows are left out, the review is the next after it.
    #[arg(long)]
    pub at: Option<At>,
    /// The HTML file to write; default: `wbr-YYYY-Www.html` (the week's ISO
    /// number) in the current folder, or none with `--link` alone.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Print the signed link to the same report on the web server (needs [web]).
    #[arg(long)]
    pub link: bool,
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

/// Flags that parse but do not make sense together (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// `run --dry-run` without `--once`.
    #[error(
        "`--dry-run` works only with `--once` (the daemon always sends); use `callout run --once --dry-run [DIR]` to render digests without sending"
    )]
    DryRunNeedsOnce,
    /// `run --at` without `--once`.
    #[error(
        "`--at` works only with `--once` (the daemon runs on the real clock); use `callout run --once --at \"YYYY-MM-DD HH:MM\"`"
    )]
    AtNeedsOnce,
    /// `--dry-run` names an existing file, not a folder.
    #[error(
        "`--dry-run {}` is a file; give a folder to write one .eml per digest into, or `-` for stdout",
        .0.display()
    )]
    DryRunIsAFile(PathBuf),
    /// `backfill --from` later than `--to`.
    #[error(
        "`--from {from}` is after `--to {to}`: nothing to evaluate; give --from on or before --to"
    )]
    FromAfterTo {
        /// First date asked for.
        from: NaiveDate,
        /// Last date asked for.
        to: NaiveDate,
    },
}

impl RunArgs {
    /// Refuse flag combinations that would do something other than asked.
    pub fn check(&self) -> Result<(), UsageError> {
        if self.dry_run.is_some() && !self.once {
            return Err(UsageError::DryRunNeedsOnce);
        }
        if self.at.is_some() && !self.once {
            return Err(UsageError::AtNeedsOnce);
        }
        if let Some(dir) = &self.dry_run
            && dir.as_os_str() != "-"
            && dir.exists()
            && !dir.is_dir()
        {
            return Err(UsageError::DryRunIsAFile(dir.clone()));
        }
        Ok(())
    }

    /// What `run --once` is asked to do, with `--at` already resolved in
    /// the review's timezone (`main` does that once the config is read).
    pub fn options(&self, at: Option<DateTime<Utc>>) -> crate::app::RunOptions {
        crate::app::RunOptions {
            dry_run: self.dry_run.clone(),
            at,
        }
    }
}

impl BackfillArgs {
    /// Refuse flag combinations that would do something other than asked.
    pub fn check(&self) -> Result<(), UsageError> {
        match (self.from, self.to) {
            (Some(from), Some(to)) if from > to => Err(UsageError::FromAfterTo { from, to }),
            _ => Ok(()),
        }
    }

    /// The range to evaluate.
    pub fn options(&self) -> crate::backfill::BackfillOptions {
        crate::backfill::BackfillOptions {
            from: self.from,
            to: self.to,
        }
    }
}

impl ReportArgs {
    /// The moment (`--at`, else the clock) and the week (`--week`, `--date`,
    /// else the default week) of `callout report`; a bad flag is an error in
    /// words (exit 2).
    pub fn moment_and_week(&self, cfg: &Config) -> Result<(DateTime<Utc>, Span), String> {
        let now = match &self.at {
            Some(at) => at.resolve(cfg.review.timezone)?,
            None => Utc::now(),
        };
        let choice = match (&self.week, self.date) {
            (Some(w), _) => {
                let (y, n) = report::calendar::parse_iso_week(w).ok_or_else(|| {
                    format!("`--week {w}` is not an ISO week: use YYYY-Www, e.g. 2025-W10")
                })?;
                WeekChoice::Iso(y, n)
            }
            (None, Some(d)) => WeekChoice::Containing(d),
            (None, None) => WeekChoice::Default,
        };
        let week = report::week(cfg, choice, now).ok_or_else(|| {
            format!(
                "`--week {}` does not exist (that year has fewer ISO weeks)",
                self.week.as_deref().unwrap_or_default()
            )
        })?;
        Ok((now, week))
    }
}

/// The backfill's progress bar: on stderr at a terminal, never with
/// `--quiet` or into a file or pipe.
pub struct Bar {
    /// The bar (hidden when not shown).
    bar: indicatif::ProgressBar,
    /// Whether it is drawn.
    show: bool,
}

impl Bar {
    /// A bar that shows unless `quiet` or stderr is not a terminal.
    pub fn new(quiet: bool) -> Bar {
        let show = !quiet && std::io::stderr().is_terminal();
        let bar = indicatif::ProgressBar::hidden();
        if show {
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {msg} [{bar:30}] {pos}/{len} series ({eta})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar.set_message("loading sources");
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
        }
        Bar { bar, show }
    }
}

impl crate::backfill::Progress for Bar {
    fn detecting(&self, done: usize, total: usize) {
        if self.show && (done == 1 || done % 64 == 0 || done == total) {
            self.bar.set_length(total as u64);
            self.bar.set_message("detecting");
            self.bar.set_position(done as u64);
        }
    }

    fn detected(&self) {
        self.bar.finish_and_clear();
    }
}

static LOG_FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// Set once by `main` from `--log-format`; [`say`] and [`error`] follow it.
pub fn set_log_format(format: LogFormat) {
    let _ = LOG_FORMAT.set(format);
}

/// A summary line for the person running the command (stderr): plain text, or
/// a JSON event shaped like the tracing ones with `--log-format json`.
pub fn say(line: &str) {
    emit("INFO", "", line);
}

/// An error line (stderr): `error: …`, or a JSON event at level ERROR.
pub fn error(line: &str) {
    emit("ERROR", "error: ", line);
}

/// A warning line (stderr): `warning: …`, or a JSON event at level WARN.
pub fn warning(line: &str) {
    emit("WARN", "warning: ", line);
}

/// An error and its causes on one line (`what: why: why`), each cause left
/// out whose words are already there: lettre's errors, and ours that wrap
/// them, repeat their source's text in their own message, so `{:#}` would
/// say "Connection refused" three times.
pub fn error_chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let words = cause.to_string();
        if out.contains(&words) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&words);
    }
    out
}

fn emit(level: &str, prefix: &str, line: &str) {
    match LOG_FORMAT.get().copied().unwrap_or(LogFormat::Human) {
        LogFormat::Human => eprintln!("{prefix}{line}"),
        LogFormat::Json => {
            let event = serde_json::json!({
                "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                "level": level,
                "fields": { "message": line },
                "target": "callout",
            });
            eprintln!("{event}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    #[test]
    fn an_error_chain_says_each_cause_once() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        // a cause whose message repeats its source, like lettre's
        #[derive(Debug, thiserror::Error)]
        #[error("connection error: {0}")]
        struct Wrapped(#[source] std::io::Error);
        let e = anyhow::Error::new(Wrapped(refused)).context("sending to `a@b.c` failed");
        assert_eq!(
            error_chain(&e),
            "sending to `a@b.c` failed: connection error: refused"
        );
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(error_chain(&plain), "outer: inner");
    }
}
