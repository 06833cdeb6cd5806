//! The modes around the pipeline: `run --once`, the daemon's cycle, `test-email`,
//! and the store/alert half of backfill.
//!
//! One cycle: open the store → record a run → evaluate → record findings and
//! incidents → queue one digest per owner (before any send) → deliver what is
//! due (earlier failures included) → finish the run. Backfill shares the part
//! after evaluating (`record_and_announce`). Every step that talks to the
//! outside is collected, never fatal for the others.
//!
//! Takes plain options ([`RunOptions`]) and returns what happened
//! ([`OnceReport`], [`AlertReport`], [`TestEmailSent`], [`OutboxListing`]);
//! `main` prints. Must not: print, or know the CLI's types.

use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, Utc};

use crate::alert;
use crate::config::Config;
use crate::model::{Checkpoint, SeriesKey};
use crate::pipeline::{self, Evaluation, Window};
use crate::store::{RunKind, RunStatus, Store};

/// What `callout run --once` is asked to do: its flags as values (`main`
/// turns the parsed `run` flags into these; `--once` itself is the choice of
/// this function over the daemon).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// `--dry-run`: render digests to this folder (`-`: stdout) and send
    /// nothing; the store is left as it was.
    pub dry_run: Option<PathBuf>,
    /// `--at`, resolved: evaluate as of this moment instead of now.
    pub at: Option<DateTime<Utc>>,
}

impl RunOptions {
    /// What to do with the incidents: send, or render them to a folder or stdout.
    fn announce(&self) -> Announce<'_> {
        match self.dry_run.as_deref() {
            None => Announce::Send,
            // `--dry-run -` renders to stdout
            Some(d) if d.as_os_str() == "-" => Announce::DryRun(None),
            Some(d) => Announce::DryRun(Some(d)),
        }
    }
}

/// What `run --once` did, for `main` to print: the findings table (unless
/// the digests went to stdout), the alert half's problems, then
/// [`OnceReport::summary_lines`].
#[derive(Debug)]
pub struct OnceReport {
    /// The cycle.
    pub cycle: CycleReport,
    /// `--dry-run` as given (`-`: stdout); `None` when digests were queued and sent.
    pub dry_run: Option<PathBuf>,
}

impl OnceReport {
    /// The digests `--dry-run -` rendered, for stdout (empty otherwise).
    pub fn streamed_digests(&self) -> &[u8] {
        &self.cycle.alerts.streamed
    }

    /// Whether the findings table belongs on stdout: not when `--dry-run -`
    /// rendered the digests there.
    pub fn shows_findings(&self) -> bool {
        self.dry_run.as_deref().is_none_or(|d| d.as_os_str() != "-")
    }

    /// The alert half's problems, one line each (the sources' were logged
    /// once by the pipeline).
    pub fn alert_problems(&self) -> &[String] {
        &self.cycle.alerts.problems
    }

    /// How many things failed; `main` decides the exit code.
    pub fn problem_count(&self) -> usize {
        self.cycle.problems().len()
    }

    /// The summary for the person who ran it: counts, the outbox, the
    /// periods reported on, and (after a real run) the detector state.
    pub fn summary_lines(&self) -> Vec<String> {
        let ev = &self.cycle.evaluation;
        let a = &self.cycle.alerts;
        let mut lines = Vec::new();
        let reported = ev
            .periods_lines()
            .into_iter()
            .map(|l| format!("reported on {l}"));
        if let Some(dir) = &self.dry_run {
            let to_folder = dir.as_os_str() != "-";
            let chats = a
                .rendered
                .iter()
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .count();
            lines.push(format!(
                "dry run: {} finding(s), {} new incident(s), {} digest(s){} written{}, nothing queued or sent; the store was not changed",
                ev.detection.findings.len(),
                a.new_incidents,
                a.rendered.len() - chats,
                if chats > 0 {
                    format!(" and {chats} chat message(s)")
                } else {
                    String::new()
                },
                if to_folder { ":" } else { " to stdout" },
            ));
            for f in a.rendered.iter().filter(|_| to_folder) {
                lines.push(format!("  {}", f.display()));
            }
            lines.extend(reported);
            return lines;
        }
        lines.push(format!(
            "run: {} finding(s), {} new incident(s), {} digest(s) queued{}, {} sent, {} failed, {} still queued unsent; {} source error(s), {} warning(s)",
            ev.detection.findings.len(),
            a.new_incidents,
            a.queued,
            [
                (a.chat_queued, "chat message(s)"),
                (a.reports, "pre-read(s)")
            ]
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!(", {n} {what} queued"))
            .collect::<String>(),
            a.sent,
            a.failed,
            a.unsent,
            ev.errors.len(),
            ev.warnings.len(),
        ));
        if a.held_elsewhere > 0 {
            lines.push(format!(
                "outbox: {} message(s) were being sent by another run at the same time (not sent by this one)",
                a.held_elsewhere
            ));
        }
        if a.undeliverable > 0 {
            lines.push(format!(
                "outbox: {} message(s) undeliverable (refused for good or in doubt twice); `callout outbox` lists them",
                a.undeliverable
            ));
        }
        lines.extend(reported);
        lines.push(format!(
            "detector state: {} series resumed, {} walked in full (load {:.2} s, detect {:.2} s)",
            ev.detection.resumed,
            ev.detection.walked,
            ev.load_time.as_secs_f64(),
            ev.detect_time.as_secs_f64(),
        ));
        lines
    }
}

/// `callout run --once` (the daemon, `run` without `--once`, is
/// `daemon::run_blocking`, dispatched by `main`: the daemon calls into this
/// module, never the other way round).
/// With `options.at` the run is a replay as of that moment
/// ([`pipeline::evaluate_at`]), recorded and announced as at that time.
/// Returns what it did; `main` prints it and decides the exit code.
pub fn run_once(cfg: Config, options: &RunOptions) -> anyhow::Result<OnceReport> {
    let announce = options.announce();
    // a dry run works on a copy of the store in a private temp folder, so the
    // store is left exactly as it was (and is not created when absent)
    let (cfg, _scratch) = match announce {
        Announce::DryRun(_) => {
            let (cfg, scratch) = dry_run_copy(cfg)?;
            (cfg, Some(scratch))
        }
        _ => (cfg, None),
    };
    let cycle = match options.at {
        Some(at) => cycle_as_of(&cfg, at, true, RunKind::Once, announce)?,
        None => self::cycle(&cfg, Utc::now(), RunKind::Once, announce)?,
    };
    Ok(OnceReport {
        cycle,
        dry_run: options.dry_run.clone(),
    })
}

/// `cfg` pointed at a copy of its store (and of a generated link key that
/// does not exist yet) in a new private temp folder, removed when the
/// returned guard drops. The copy is SQLite's own (`VACUUM INTO`, a
/// consistent snapshot even while another process writes); the original is
/// only read (opened without create; closing it may fold its WAL into the
/// file, which changes no row). Without a store file the copy starts empty.
fn dry_run_copy(mut cfg: Config) -> anyhow::Result<(Config, tempfile::TempDir)> {
    let scratch =
        tempfile::tempdir().context("dry run: creating a temp folder for a copy of the store")?;
    let copy = scratch.path().join("state.db");
    if cfg.store_path.exists() {
        let conn = rusqlite::Connection::open_with_flags(
            &cfg.store_path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .and_then(|c| {
            c.busy_timeout(std::time::Duration::from_secs(15))?;
            c.execute("VACUUM INTO ?1", [copy.to_string_lossy()])?;
            Ok(c)
        })
        .with_context(|| {
            format!(
                "dry run: copying store `{}` (the store is never written by a dry run)",
                cfg.store_path.display()
            )
        })?;
        drop(conn);
    }
    cfg.store_path = copy;
    if let Some(web) = cfg.web.as_mut()
        && let crate::config::KeySource::Generated(path) = &web.key
        && !path.exists()
    {
        web.key = crate::config::KeySource::Generated(scratch.path().join("web.key"));
    }
    Ok((cfg, scratch))
}

/// What the store and alert half of a run did.
#[derive(Debug, Default)]
pub struct AlertReport {
    /// Incidents not announced before this run.
    pub new_incidents: usize,
    /// Digests written to the outbox.
    pub queued: usize,
    /// Chat messages written to the outbox (one per channel).
    pub chat_queued: usize,
    /// Reminders written to the outbox.
    pub reminders: usize,
    /// Escalations written to the outbox.
    pub escalations: usize,
    /// Pre-read emails written to the outbox (one per `report.email_to` address).
    pub reports: usize,
    /// Digests a dry run wrote (`.eml` files), instead of queueing them.
    pub rendered: Vec<std::path::PathBuf>,
    /// A dry run to stdout (`--dry-run -`): the digests, one after another,
    /// for `main` to print.
    pub streamed: Vec<u8>,
    /// Messages the server accepted.
    pub sent: usize,
    /// Messages that failed and wait for a retry.
    pub failed: usize,
    /// Messages still in the outbox, unsent, after this run (failed now,
    /// skipped after a timeout, or backing off from earlier failures).
    pub unsent: usize,
    /// Due messages another run was sending at the time (its claim held).
    pub held_elsewhere: usize,
    /// Messages given up on (refused for good, or in doubt twice) and not
    /// re-queued: listed by `callout outbox`.
    pub undeliverable: usize,
    /// What went wrong while alerting (owners, delivery), in words.
    pub problems: Vec<String>,
}

/// What one cycle did.
#[derive(Debug, Default)]
pub struct CycleReport {
    /// The evaluation.
    pub evaluation: Evaluation,
    /// Its store and alert half.
    pub alerts: AlertReport,
}

impl CycleReport {
    /// Everything that went wrong (sources, series, owners, delivery), in words.
    pub fn problems(&self) -> Vec<String> {
        let sources = self.evaluation.errors.iter().map(ToString::to_string);
        sources
            .chain(self.alerts.problems.iter().cloned())
            .collect()
    }
}

/// What to do with the incidents a run recorded.
#[derive(Debug, Clone, Copy)]
pub enum Announce<'a> {
    /// Queue one digest per owner and deliver everything due.
    Send,
    /// Render the digests to a folder (`None`: stdout) and send nothing.
    DryRun(Option<&'a Path>),
    /// Only record (backfill without `--send`).
    Hold,
}

/// One evaluation of the latest data at `now`, recorded and alerted.
/// Errs only when the store cannot be used; other problems are in the report.
pub fn cycle(
    cfg: &Config,
    now: DateTime<Utc>,
    mode: RunKind,
    announce: Announce<'_>,
) -> anyhow::Result<CycleReport> {
    cycle_as_of(cfg, now, false, mode, announce)
}

/// [`cycle`]; with `replay`, as of a past `now` (no look-ahead, see
/// [`pipeline::evaluate_at`]).
fn cycle_as_of(
    cfg: &Config,
    now: DateTime<Utc>,
    replay: bool,
    mode: RunKind,
    announce: Announce<'_>,
) -> anyhow::Result<CycleReport> {
    let mut store = Store::open(&cfg.store_path)?;
    // the run is in the store while it is in progress
    let run_id = store.begin_run(mode, now)?;
    // owners' explanations shape the baseline (known events, data issues,
    // accepted new levels), exactly as in backfill
    let explained = store.explained_spans()?;
    // each series resumes from its stored detector state where that fits
    // (detect::checkpoint), looked up per batch or chunk as detection gets there
    // New states are saved as each batch or chunk is detected (at most a
    // chunk's are held), before this run's findings are recorded. That order
    // is safe: a state is the one before the series' first reported point
    // and is used only when it ends before the next report range
    // (`checkpoint::fits`), so a run stopped in between is resumed and
    // reports every period it had not.
    // the first error saving states, and how many series' states it cost:
    // after one failure (a locked or full store) the rest are not tried
    let mut save_error: Option<(String, usize)> = None;
    let mut evaluation = {
        let mut lookup = |source: &str, keys: &[&SeriesKey]| {
            store.checkpoints(source, keys).unwrap_or_else(|e| {
                tracing::warn!(source, "{e}; these series are evaluated from the start");
                vec![None; keys.len()]
            })
        };
        let mut sink = |made: Vec<Checkpoint>| match &mut save_error {
            Some((_, lost)) => *lost += made.len(),
            None => {
                if let Err(e) = store.save_checkpoints_now(&made) {
                    save_error = Some((e.to_string(), made.len()));
                }
            }
        };
        let mut reported = |source: &str, keys: &[&SeriesKey]| {
            store.reported(source, keys).unwrap_or_else(|e| {
                tracing::warn!(source, "{e}; these series report their newest period only");
                vec![None; keys.len()]
            })
        };
        let states = pipeline::States {
            lookup: Some(&mut lookup),
            save: true,
            sink: Some(&mut sink),
            reported: Some(&mut reported),
            catch_up: Some(pipeline::CatchUp {
                first_since: crate::review::previous_review(&cfg.review, now).with_timezone(&Utc),
                bound: chrono::Duration::days(i64::from(cfg.alerts.catch_up_days)),
            }),
        };
        pipeline::evaluate_resuming(
            cfg,
            Window::Latest,
            now,
            replay,
            &explained,
            states,
            &|_, _| {},
        )
    };
    // before this run's findings are stored: they hold the newest values
    pipeline::add_restated(cfg, &mut evaluation, store.flagged_values()?);
    // what a sink did not take (none: every batch and chunk is handed over)
    let left = std::mem::take(&mut evaluation.detection.checkpoints);
    if save_error.is_none()
        && !left.is_empty()
        && let Err(e) = store.save_checkpoints_now(&left)
    {
        save_error = Some((e.to_string(), left.len()));
    }
    // a state not saved costs nothing but time: the previous one still fits
    // and the next run walks from it
    evaluation.problems.extend(save_error.map(|(e, lost)| {
        format!("saving detector states: {e} ({lost} series keep their previous state)")
    }));
    let mut alerts =
        record_and_announce(&mut store, run_id, cfg, &evaluation, now, false, announce)?;
    // each series' newest period reported on: the next run starts after it
    // (recorded after the findings and incidents: a run that stops before
    // this point reports these periods again, and incidents absorb repeats)
    let marks = evaluation
        .detection
        .reported
        .iter()
        .map(|r| (r.source.as_str(), &r.key, r.last_ts));
    if let Err(e) = store.transaction(|s| s.save_reported(marks)) {
        alerts
            .problems
            .push(format!("saving the periods reported on: {e}"));
    }
    Ok(CycleReport { evaluation, alerts })
}

/// History up to `at` through the pipeline as of `at`, recorded like
/// `backfill --store` (incidents reviewed before the last review are past),
/// then announced as asked: what a store that had been running all along
/// would hold and send at `at`. Used by `callout demo`.
pub fn replay_history(
    cfg: &Config,
    at: DateTime<Utc>,
    announce: Announce<'_>,
) -> anyhow::Result<CycleReport> {
    let mut store = Store::open(&cfg.store_path)?;
    let run_id = store.begin_run(RunKind::Backfill, at)?;
    let explained = store.explained_spans()?;
    let mut evaluation =
        pipeline::evaluate_at(cfg, Window::Dates(None, None), at, &explained, &|_, _| {});
    pipeline::add_restated(cfg, &mut evaluation, store.flagged_values()?);
    let alerts = record_and_announce(&mut store, run_id, cfg, &evaluation, at, true, announce)?;
    Ok(CycleReport { evaluation, alerts })
}

/// Backfill's store step: record findings and incidents (incidents older than
/// the current review week are marked past); with `send`, announce the rest.
pub fn record_backfill(cfg: &Config, ev: &Evaluation, send: bool) -> anyhow::Result<AlertReport> {
    let now = Utc::now();
    let mut store = Store::open(&cfg.store_path)?;
    let run_id = store.begin_run(RunKind::Backfill, now)?;
    let announce = if send { Announce::Send } else { Announce::Hold };
    record_and_announce(&mut store, run_id, cfg, ev, now, true, announce)
}

/// Record an evaluation's findings and incidents under `run_id`, announce them
/// as asked, and finish the run.
fn record_and_announce(
    store: &mut Store,
    run_id: i64,
    cfg: &Config,
    ev: &Evaluation,
    now: DateTime<Utc>,
    backfill: bool,
    announce: Announce<'_>,
) -> anyhow::Result<AlertReport> {
    let findings = &ev.detection.findings;
    let incidents = alert::record(
        store,
        run_id,
        findings,
        &ev.detection.evaluated,
        cfg,
        now,
        backfill,
    )?;
    let mut report = AlertReport {
        new_incidents: incidents.len(),
        // the evaluation's own (states not saved): part of the run's record
        problems: ev.problems.clone(),
        ..AlertReport::default()
    };
    // the explanation page charts what the owner was alerted on (see `history`)
    let taken_at = now.timestamp_millis();
    match store.transaction(|s| {
        Ok::<_, crate::store::StoreError>(
            crate::history::record(s, &ev.batches, taken_at)?
                + crate::history::record_chunked(s, &ev.chunked, taken_at)?,
        )
    }) {
        Ok(n) => tracing::debug!(series = n, "series history saved for the explanation pages"),
        Err(e) => report.problems.push(format!("saving series history: {e}")),
    }
    // the links' signing key, read once per run; without it mail still goes out
    let key = if matches!(announce, Announce::Hold) {
        None
    } else {
        alert::link_key(cfg).unwrap_or_else(|e| {
            report
                .problems
                .push(format!("{e}; mail goes out without explanation links"));
            None
        })
    };
    let signer = alert::Signer::new(cfg, key.as_ref());
    match announce {
        Announce::Send => {
            let notice = skipped_notice(ev, cfg);
            let ctx = DeliverCtx {
                now,
                signer,
                run_id,
                notice: notice.as_deref(),
            };
            deliver(store, cfg, &incidents, ctx, &mut report)?;
        }
        Announce::DryRun(dir) => {
            let notice = skipped_notice(ev, cfg);
            let to = match dir {
                Some(dir) => alert::EmlTo::Dir(dir),
                None => alert::EmlTo::Stream(&mut report.streamed),
            };
            let (written, errors) =
                alert::dry_run(store, &incidents, cfg, now, to, signer, notice.as_deref())?;
            for (owner, e) in errors {
                report.problems.push(format!("digest for `{owner}`: {e}"));
            }
            tracing::info!(
                files = written.len(),
                "dry run: digests rendered, nothing sent"
            );
            report.rendered = written;
        }
        Announce::Hold => {}
    }
    let clean = ev.errors.is_empty() && report.problems.is_empty();
    let summary = serde_json::json!({
        "findings": findings.len(),
        "rows": ev.rows,
        "resumed": ev.detection.resumed,
        "walked": ev.detection.walked,
        "periods": ev.periods_lines(),
        "source_errors": ev.errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "new_incidents": report.new_incidents,
        "queued": report.queued,
        "chat_queued": report.chat_queued,
        "reminders": report.reminders,
        "escalations": report.escalations,
        "reports": report.reports,
        "sent": report.sent,
        "failed": report.failed,
        "unsent": report.unsent,
        "held_elsewhere": report.held_elsewhere,
        "undeliverable": report.undeliverable,
        "problems": report.problems,
    });
    store.finish_run(
        run_id,
        if clean {
            RunStatus::Ok
        } else {
            RunStatus::Partial
        },
        &summary,
        Utc::now(),
    )?;
    Ok(report)
}

/// What one delivery step of a run needs besides the store and config.
#[derive(Clone, Copy)]
struct DeliverCtx<'a> {
    /// The run's clock.
    now: DateTime<Utc>,
    /// Signs the digests' links, with `[web]`.
    signer: Option<alert::Signer<'a>>,
    /// The run (its outbox claims carry it).
    run_id: i64,
    /// What the run's catch-up skipped, said at the top of each digest.
    notice: Option<&'a str>,
}

/// What a catch-up skipped, in words for the top of a digest; `None` when
/// nothing was.
fn skipped_notice(ev: &Evaluation, cfg: &Config) -> Option<String> {
    let total: usize = ev.caught_up.iter().map(|(_, n)| n).sum();
    (total > 0).then(|| {
        let per: Vec<String> = ev
            .caught_up
            .iter()
            .map(|(s, n)| format!("{n} in `{s}`"))
            .collect();
        format!(
            "callout had not reported on these exports for longer than {} days (alerts.catch_up_days): {total} older period(s) ({}) were recorded without asking; this digest covers the last {} days.",
            cfg.alerts.catch_up_days,
            per.join(", "),
            cfg.alerts.catch_up_days
        )
    })
}

/// Queue digests for `incidents` and deliver everything due.
fn deliver(
    store: &mut Store,
    cfg: &Config,
    incidents: &[alert::Incident],
    ctx: DeliverCtx<'_>,
    report: &mut AlertReport,
) -> anyhow::Result<()> {
    let DeliverCtx {
        now,
        signer,
        run_id,
        notice,
    } = ctx;
    let runner = &alert::Runner::for_run(run_id);
    if cfg.smtp.is_none() && cfg.chat.is_empty() {
        // No mail configured: findings are recorded (and printed by `run --once`);
        // incidents stay unannounced until an [smtp] table is added.
        if !incidents.is_empty() {
            tracing::warn!(
                incidents = incidents.len(),
                "config `{}` has no [smtp] table: nothing is mailed",
                cfg.path.display()
            );
        }
        if !cfg.report.email_to.is_empty() {
            tracing::warn!(
                "config `{}` has report.email_to but no [smtp] table: the pre-read is not mailed",
                cfg.path.display()
            );
        }
        return Ok(());
    }
    let q = alert::queue_digests(store, incidents, cfg, now, signer, notice)?;
    report.queued = q.queued;
    report.chat_queued = q.chat_queued;
    for (owner, e) in q.failed {
        report.problems.push(format!("digest for `{owner}`: {e}"));
    }
    // After the digests, so a digest queued in this cycle is never also
    // reminded about in it; before delivery, so both go out in this pass.
    let r = alert::queue_reminders(store, cfg, now, signer)?;
    report.reminders = r.reminders;
    report.escalations = r.escalations;
    for (to, e) in r.failed {
        report
            .problems
            .push(format!("reminder or escalation for `{to}`: {e}"));
    }
    // The pre-read, once per review, in the window before it. A report that
    // cannot be made is a problem of this run and is tried again next cycle
    // (nothing was queued under its key).
    match alert::queue_report(store, cfg, now, signer) {
        Ok(q) => {
            report.reports = q.queued;
            for (to, e) in q.failed {
                report.problems.push(format!("pre-read for `{to}`: {e}"));
            }
        }
        Err(alert::AlertError::Store(e)) => return Err(e.into()),
        Err(e) => report.problems.push(e.to_string()),
    }
    // each channel on its own rows: a relay that is down never holds back
    // the chat messages, nor a bad webhook the mail
    if let Some(smtp) = &cfg.smtp {
        let d = alert::deliver_due(store, smtp, &cfg.alerts, now, runner)?;
        delivered(
            report,
            &d,
            "digest(s)",
            "earlier sends failed or the server timed out",
        );
    }
    if !cfg.chat.is_empty() {
        let d = alert::chat::deliver_due(store, cfg, &cfg.alerts, now, runner)?;
        delivered(
            report,
            &d,
            "chat message(s)",
            "earlier posts failed, or a webhook timed out twice in this run",
        );
    }
    Ok(())
}

/// Add one channel's delivery pass to the run's report.
fn delivered(report: &mut AlertReport, d: &alert::DeliveryReport, what: &str, why: &str) {
    report.sent += d.sent.len();
    report.failed += d.failed.len();
    report.unsent += d.waiting;
    report.held_elsewhere += d.held_elsewhere;
    // counted over the whole outbox, whichever channel asks
    report.undeliverable = d.undeliverable;
    for f in &d.failed {
        // the error names the recipient and the server already
        report.problems.push(format!(
            "{} (attempt {}; tried again from {})",
            f.error,
            f.attempts,
            f.next_attempt_at.format("%Y-%m-%d %H:%M:%S UTC")
        ));
    }
    // given up in this run: a problem of this run (exit 1); later runs list
    // them as undeliverable without failing again
    for f in &d.given_up {
        report.problems.push(format!(
            "message {} to `{}` given up: {} (`callout outbox --requeue {}` sends it again)",
            f.outbox_id, f.owner, f.error, f.outbox_id
        ));
    }
    // Messages not even tried this run (backing off from an earlier
    // failure, or skipped after a timeout) are still undelivered: the run
    // must not look clean while owners wait for them.
    let untried = d.waiting.saturating_sub(d.failed.len());
    if untried > 0 {
        let when = d
            .next_attempt_at
            .map(|t| format!(", next attempt at {t}"))
            .unwrap_or_default();
        report.problems.push(format!(
            "{untried} {what} still queued and not delivered ({why}{when}); they stay queued and are retried"
        ));
    }
}

/// One scheduled evaluation of the daemon (synchronous: call it off the async workers).
/// Errs when anything went wrong, after doing everything else.
pub fn run_cycle(cfg: &Config, now: DateTime<Utc>) -> anyhow::Result<()> {
    let r = cycle(cfg, now, RunKind::Run, Announce::Send)?;
    tracing::info!(
        findings = r.evaluation.detection.findings.len(),
        rows = r.evaluation.rows,
        resumed = r.evaluation.detection.resumed,
        walked = r.evaluation.detection.walked,
        load_s = r.evaluation.load_time.as_secs_f64(),
        detect_s = r.evaluation.detect_time.as_secs_f64(),
        new_incidents = r.alerts.new_incidents,
        queued = r.alerts.queued,
        chat_queued = r.alerts.chat_queued,
        reminders = r.alerts.reminders,
        escalations = r.alerts.escalations,
        reports = r.alerts.reports,
        sent = r.alerts.sent,
        failed = r.alerts.failed,
        unsent = r.alerts.unsent,
        held_elsewhere = r.alerts.held_elsewhere,
        undeliverable = r.alerts.undeliverable,
        "evaluated"
    );
    // each problem once: the sources' were logged by the pipeline as they
    // were found, the alert half's are logged here (`run --once` prints them)
    for p in &r.alerts.problems {
        tracing::warn!("{p}");
    }
    match r.problems().len() {
        0 => Ok(()),
        n => anyhow::bail!("{n} problem(s), each logged above"),
    }
}

/// What `callout outbox` found and did.
#[derive(Debug, Default)]
pub struct OutboxListing {
    /// One line per unsent or given-up message, then a count line.
    pub lines: Vec<String>,
    /// Ids asked to be re-queued that are not given-up messages.
    pub not_found: Vec<i64>,
}

/// `callout outbox`: re-queue the given-up messages `requeue` names (due at
/// `now`), then list every message not delivered: id, recipient, subject,
/// attempts and its state in words (due, retried from, in doubt, given up
/// and why). A store that does not exist yet is not created.
pub fn outbox(cfg: &Config, requeue: &[i64], now: DateTime<Utc>) -> anyhow::Result<OutboxListing> {
    let mut listing = OutboxListing::default();
    if !cfg.store_path.exists() {
        listing.lines.push(format!(
            "store `{}` does not exist yet: nothing queued",
            cfg.store_path.display()
        ));
        listing.not_found = requeue.to_vec();
        return Ok(listing);
    }
    let store = Store::open(&cfg.store_path)?;
    for &id in requeue {
        if store.requeue(id, now)? {
            listing
                .lines
                .push(format!("re-queued message {id}: the next run sends it"));
        } else {
            listing.not_found.push(id);
        }
    }
    let when = |ms: i64| {
        DateTime::from_timestamp_millis(ms).map_or_else(
            || ms.to_string(),
            |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
        )
    };
    let unsent = store.unsent_mail()?;
    let given_up = store.undeliverable_mail()?;
    for m in unsent.iter().chain(&given_up) {
        let state = match (&m.undeliverable, m.in_doubt) {
            (Some((at, why)), _) => format!("given up {}: {why}", when(*at)),
            (None, n) if n > 0 => format!(
                "in doubt (the server may have it), sent once more from {}",
                when(m.next_attempt_at)
            ),
            (None, _) if m.attempts == 0 => "queued, not tried yet".to_string(),
            (None, _) => format!(
                "retried from {}; last error: {}",
                when(m.next_attempt_at),
                m.last_error.as_deref().unwrap_or("none")
            ),
        };
        listing.lines.push(format!(
            "{}\t{}\t{}\t{} attempt(s)\t{state}",
            m.id, m.mail.recipient, m.mail.subject, m.attempts
        ));
    }
    listing.lines.push(format!(
        "{} message(s) to deliver, {} given up (re-queue with `callout outbox --requeue ID`)",
        unsent.len(),
        given_up.len()
    ));
    Ok(listing)
}

/// A test email the server accepted; its `Display` is the line `main` prints.
#[derive(Debug)]
pub struct TestEmailSent {
    /// The recipient.
    pub to: lettre::message::Mailbox,
    /// The SMTP server's host.
    pub host: String,
    /// Its port.
    pub port: u16,
}

impl std::fmt::Display for TestEmailSent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "test email sent to {} via {}:{}",
            self.to, self.host, self.port
        )
    }
}

/// `callout test-email`.
pub fn test_email(cfg: &Config, to: &str) -> anyhow::Result<TestEmailSent> {
    let smtp = cfg
        .smtp
        .as_ref()
        .with_context(|| format!("config `{}` has no [smtp] table", cfg.path.display()))?;
    let to = crate::config::parse_mailbox(to).map_err(|e| anyhow::anyhow!("--to: {e}"))?;
    alert::send_test_email(smtp, &to, Utc::now())?;
    Ok(TestEmailSent {
        to,
        host: smtp.host.clone(),
        port: smtp.port,
    })
}
