//! `run --once` and the daemon: the pipeline plus store and alerts.

use std::process::ExitCode;

use crate::cli::RunArgs;
use crate::config::Config;
use crate::output;
use crate::pipeline::{self, Window};

/// `callout run`: once, or on the schedule.
pub fn run(cfg: Config, args: &RunArgs) -> anyhow::Result<ExitCode> {
    let now = chrono::Utc::now();
    let ev = pipeline::evaluate(&cfg, Window::Latest, Some(now), &|_| {});
    let key_sets: Vec<Vec<String>> = ev.batches.iter().map(|b| b.key_columns.clone()).collect();
    let keys = output::key_columns(&ev.detection.findings, &key_sets);
    output::write_table(std::io::stdout().lock(), &ev.detection.findings, &keys)?;
    let _ = args;
    for e in &ev.errors {
        eprintln!("error: {e}");
    }
    Ok(if ev.errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// `callout test-email`.
pub fn test_email(cfg: &Config, to: &str) -> anyhow::Result<ExitCode> {
    let _ = (cfg, to);
    anyhow::bail!("test-email is not implemented yet")
}
