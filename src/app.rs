//! The modes around the pipeline: `run --once`, the daemon's cycle, `test-email`,
//! and the store/alert half of backfill.
//!
//! One cycle: open the store → record a run → evaluate → record findings and
//! incidents → queue one digest per owner (before any send) → deliver what is
//! due (earlier failures included) → finish the run. Every step that talks to
//! the outside is collected, never fatal for the others.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, Utc};

use crate::alert;
use crate::cli::RunArgs;
use crate::config::Config;
use crate::output;
use crate::pipeline::{self, Evaluation, Window};
use crate::store::Store;

/// `callout run`: once (`--once`), or the daemon on the config's schedule.
pub fn run(cfg: Config, args: &RunArgs) -> anyhow::Result<ExitCode> {
    if !args.once {
        crate::daemon::run_blocking(cfg.path.clone(), cfg)?;
        return Ok(ExitCode::SUCCESS);
    }
    let report = cycle(&cfg, Utc::now(), "once", args.dry_run.as_deref())?;
    let ev = &report.evaluation;
    let key_sets: Vec<Vec<String>> = ev.batches.iter().map(|b| b.key_columns.clone()).collect();
    let keys = output::key_columns(&ev.detection.findings, &key_sets);
    if args.dry_run.as_deref().is_none_or(|d| d.as_os_str() != "-") {
        output::write_table(std::io::stdout().lock(), &ev.detection.findings, &keys)?;
    }
    for p in &report.problems {
        eprintln!("error: {p}");
    }
    eprintln!(
        "run: {} finding(s), {} new incident(s), {} digest(s) queued, {} sent, {} failed (will retry)",
        ev.detection.findings.len(),
        report.new_incidents,
        report.queued,
        report.sent,
        report.failed
    );
    Ok(if report.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// What one cycle did.
#[derive(Debug, Default)]
pub struct CycleReport {
    /// The evaluation.
    pub evaluation: Evaluation,
    /// Incidents not announced before this cycle.
    pub new_incidents: usize,
    /// Digests written to the outbox.
    pub queued: usize,
    /// Messages the server accepted.
    pub sent: usize,
    /// Messages that failed and wait for a retry.
    pub failed: usize,
    /// Everything that went wrong (sources, owners, delivery), in words.
    pub problems: Vec<String>,
}

/// One evaluation of the latest data at `now`, recorded and alerted.
/// `dry_run`: render the digests to that folder (`-`: stdout) and send nothing.
/// Errs only when the store cannot be used; other problems are in the report.
pub fn cycle(
    cfg: &Config,
    now: DateTime<Utc>,
    mode: &str,
    dry_run: Option<&Path>,
) -> anyhow::Result<CycleReport> {
    let mut store = Store::open(&cfg.store_path)?;
    let run_id = store.begin_run(mode, now)?;
    let evaluation = pipeline::evaluate(cfg, Window::Latest, Some(now), &|_| {});
    let mut report = CycleReport {
        problems: evaluation.errors.iter().map(ToString::to_string).collect(),
        ..CycleReport::default()
    };
    let incidents = alert::record(
        &mut store,
        run_id,
        &evaluation.detection.findings,
        &evaluation.detection.evaluated,
        cfg,
        now,
        false,
    )?;
    report.new_incidents = incidents.len();
    report.evaluation = evaluation;
    match dry_run {
        Some(dir) => {
            let dir = (dir.as_os_str() != "-").then_some(dir);
            let written = alert::dry_run(&incidents, cfg, now, dir)?;
            tracing::info!(
                files = written.len(),
                "dry run: digests rendered, nothing sent"
            );
        }
        None => announce(&mut store, cfg, &incidents, now, &mut report)?,
    }
    let status = if report.problems.is_empty() {
        "ok"
    } else {
        "partial"
    };
    let summary = serde_json::json!({
        "findings": report.evaluation.detection.findings.len(),
        "rows": report.evaluation.rows,
        "new_incidents": report.new_incidents,
        "queued": report.queued,
        "sent": report.sent,
        "failed": report.failed,
        "problems": report.problems,
    });
    store.finish_run(run_id, status, &summary, Utc::now())?;
    Ok(report)
}

/// Queue digests for `incidents` and deliver everything due.
fn announce(
    store: &mut Store,
    cfg: &Config,
    incidents: &[alert::Incident],
    now: DateTime<Utc>,
    report: &mut CycleReport,
) -> anyhow::Result<()> {
    let Some(smtp) = &cfg.smtp else {
        // No mail configured: findings are recorded (and printed by `run --once`);
        // incidents stay unannounced until an [smtp] table is added.
        if !incidents.is_empty() {
            tracing::warn!(
                incidents = incidents.len(),
                "config `{}` has no [smtp] table: nothing is mailed",
                cfg.path.display()
            );
        }
        return Ok(());
    };
    let q = alert::queue_digests(store, incidents, cfg, now)?;
    report.queued = q.queued;
    for (owner, e) in q.failed {
        report.problems.push(format!("digest for `{owner}`: {e}"));
    }
    let d = alert::deliver_due(store, smtp, &cfg.alerts, now)?;
    report.sent = d.sent.len();
    report.failed = d.failed.len();
    for f in d.failed {
        tracing::warn!(owner = %f.owner, attempts = f.attempts, next = %f.next_attempt_at, "send failed: {}", f.error);
        report.problems.push(format!(
            "sending to `{}` failed (attempt {}, retried from {}): {}",
            f.owner, f.attempts, f.next_attempt_at, f.error
        ));
    }
    Ok(())
}

/// One scheduled evaluation of the daemon (synchronous: call it off the async workers).
/// Errs when anything went wrong, after doing everything else.
pub fn run_cycle(cfg: &Config, now: DateTime<Utc>) -> anyhow::Result<()> {
    let r = cycle(cfg, now, "run", None)?;
    tracing::info!(
        findings = r.evaluation.detection.findings.len(),
        rows = r.evaluation.rows,
        new_incidents = r.new_incidents,
        queued = r.queued,
        sent = r.sent,
        failed = r.failed,
        "evaluated"
    );
    match r.problems.first() {
        None => Ok(()),
        Some(first) => anyhow::bail!("{} problem(s), first: {first}", r.problems.len()),
    }
}

/// Backfill's store step: record findings and incidents (incidents older than
/// the current review week are marked past); with `send`, announce the rest.
pub fn record_backfill(cfg: &Config, ev: &Evaluation, send: bool) -> anyhow::Result<CycleReport> {
    let now = Utc::now();
    let mut store = Store::open(&cfg.store_path)?;
    let run_id = store.begin_run("backfill", now)?;
    let incidents = alert::record(
        &mut store,
        run_id,
        &ev.detection.findings,
        &ev.detection.evaluated,
        cfg,
        now,
        true,
    )?;
    let mut report = CycleReport {
        new_incidents: incidents.len(),
        ..CycleReport::default()
    };
    if send {
        announce(&mut store, cfg, &incidents, now, &mut report)?;
    }
    let status = if report.problems.is_empty() {
        "ok"
    } else {
        "partial"
    };
    let summary = serde_json::json!({
        "findings": ev.detection.findings.len(),
        "unannounced_incidents": report.new_incidents,
        "queued": report.queued,
        "sent": report.sent,
    });
    store.finish_run(run_id, status, &summary, Utc::now())?;
    Ok(report)
}

/// `callout test-email`.
pub fn test_email(cfg: &Config, to: &str) -> anyhow::Result<ExitCode> {
    let smtp = cfg
        .smtp
        .as_ref()
        .with_context(|| format!("config `{}` has no [smtp] table", cfg.path.display()))?;
    let to: lettre::message::Mailbox = to
        .parse()
        .with_context(|| format!("not an email address: {to:?}"))?;
    alert::send_test_email(smtp, &to, Utc::now())?;
    println!("test email sent to {to} via {}:{}", smtp.host, smtp.port);
    Ok(ExitCode::SUCCESS)
}
