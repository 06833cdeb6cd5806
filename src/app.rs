//! `run --once` and the daemon's cycle: the pipeline on the latest data.

use std::process::ExitCode;

use chrono::{DateTime, Utc};

use crate::cli::RunArgs;
use crate::config::Config;
use crate::output;
use crate::pipeline::{self, Evaluation, Window};

/// `callout run`: once (`--once`), or the daemon on the config's schedule.
pub fn run(cfg: Config, args: &RunArgs) -> anyhow::Result<ExitCode> {
    if !args.once {
        crate::daemon::run_blocking(cfg.path.clone(), cfg)?;
        return Ok(ExitCode::SUCCESS);
    }
    let ev = evaluate_latest(&cfg, Utc::now());
    let key_sets: Vec<Vec<String>> = ev.batches.iter().map(|b| b.key_columns.clone()).collect();
    let keys = output::key_columns(&ev.detection.findings, &key_sets);
    output::write_table(std::io::stdout().lock(), &ev.detection.findings, &keys)?;
    for e in &ev.errors {
        eprintln!("error: {e}");
    }
    Ok(if ev.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn evaluate_latest(cfg: &Config, now: DateTime<Utc>) -> Evaluation {
    pipeline::evaluate(cfg, Window::Latest, Some(now), &|_| {})
}

/// One scheduled evaluation of the daemon (synchronous: call it off the async workers).
/// Errs when a source could not be read, after evaluating all the others.
pub fn run_cycle(cfg: &Config, now: DateTime<Utc>) -> anyhow::Result<()> {
    let ev = evaluate_latest(cfg, now);
    tracing::info!(
        findings = ev.detection.findings.len(),
        rows = ev.rows,
        "evaluated"
    );
    for f in &ev.detection.findings {
        tracing::info!(source = %f.source, series = %f.key, check = %f.check, "finding");
    }
    match ev.errors.first() {
        None => Ok(()),
        Some(first) => anyhow::bail!("{} source error(s), first: {first}", ev.errors.len()),
    }
}

/// `callout test-email`.
pub fn test_email(cfg: &Config, to: &str) -> anyhow::Result<ExitCode> {
    let _ = (cfg, to);
    anyhow::bail!(
        "test-email needs the mail delivery module, which is not part of this release yet"
    )
}
