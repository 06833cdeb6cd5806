//! One evaluation: load every source → detect → (store, alert: see `app`).
//!
//! Shared by `run`, `run --once` and `backfill`; they differ only in the
//! window of timestamps they report on and in what they do with findings.
//! One bad source never stops the others: its error is collected and the
//! rest are evaluated.

use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};

use crate::config::{Config, SourceConfig};
use crate::detect::{self, Detection, Range};
use crate::model::{ExplainedSpan, Finding, date_ms};
use crate::source::{self, Batch, SourceError};

/// Which points an evaluation reports on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The newest timestamp of each source (a scheduled run).
    Latest,
    /// Dates `from..=to` (either open), as a backfill.
    Dates(Option<NaiveDate>, Option<NaiveDate>),
}

/// What one evaluation produced.
#[derive(Debug, Default)]
pub struct Evaluation {
    /// Loaded sources.
    pub batches: Vec<Batch>,
    /// Sources or series that could not be used.
    pub errors: Vec<SourceError>,
    /// Data that was used with some points left out (e.g. NaN values): reported,
    /// never a failure.
    pub warnings: Vec<SourceError>,
    /// Findings of detection (and late exports when `now` was given).
    pub detection: Detection,
    /// Rows read across sources.
    pub rows: usize,
    /// Time spent loading.
    pub load_time: Duration,
    /// Time spent detecting.
    pub detect_time: Duration,
}

/// Everything loading produced: batches, errors and warnings.
#[derive(Debug, Default)]
pub struct Loaded {
    /// One batch per source that could be read.
    pub batches: Vec<Batch>,
    /// Sources or series that could not be used.
    pub errors: Vec<SourceError>,
    /// Data used with some points left out.
    pub warnings: Vec<SourceError>,
}

/// Load every source; failures are collected, never fatal for the others.
/// Rows dated more than one period after `now` are left out and reported.
///
/// Each problem is logged here, once, with its source as a field; callers count
/// them but do not print them again.
pub fn load_all(cfg: &Config, now: DateTime<Utc>) -> Loaded {
    let mut out = Loaded::default();
    for s in &cfg.sources {
        match source::load(s) {
            Ok((mut b, mut problems)) => {
                problems.extend(b.drop_future(local_ms(now, s)));
                tracing::info!(source = %s.name, series = b.series.len(), rows = b.rows(), "loaded");
                for p in problems {
                    if p.is_warning() {
                        tracing::warn!(source = %s.name, "{p}");
                        out.warnings.push(p);
                    } else {
                        tracing::error!(source = %s.name, "{p}");
                        out.errors.push(p);
                    }
                }
                out.batches.push(b);
            }
            Err(es) => {
                for e in es {
                    tracing::error!(source = %s.name, "{e}");
                    out.errors.push(e);
                }
            }
        }
    }
    out
}

/// `now` as wall-clock ms in the source's timezone (how its timestamps are stored).
fn local_ms(now: DateTime<Utc>, src: &SourceConfig) -> i64 {
    crate::model::wall_ms(&now.with_timezone(&src.timezone))
}

/// The report range of one batch for a window.
pub fn range_for(batch: &Batch, window: Window) -> Range {
    match window {
        Window::Latest => {
            let t = batch.newest().unwrap_or(i64::MAX);
            Range { from: t, to: t }
        }
        Window::Dates(from, to) => Range {
            from: from.map(date_ms).unwrap_or(i64::MIN),
            to: to.map(|d| date_ms(d) + 86_400_000 - 1).unwrap_or(i64::MAX),
        },
    }
}

/// Load, then detect over `window`, with the owners' `explained` spans as
/// data (daemon and backfill pass the same stored ones). With `now`, series
/// whose newest data is overdue are reported as late; rows dated after `now`
/// (or, without it, the machine's clock) plus one period are left out and reported.
pub fn evaluate(
    cfg: &Config,
    window: Window,
    now: Option<DateTime<Utc>>,
    explained: &[ExplainedSpan],
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Evaluation {
    let t0 = Instant::now();
    // a backfill has no run clock: the machine's clock bounds plausible dates
    let Loaded {
        batches,
        errors,
        warnings,
    } = load_all(cfg, now.unwrap_or_else(Utc::now));
    let load_time = t0.elapsed();
    let t1 = Instant::now();
    let ranges: Vec<Range> = batches.iter().map(|b| range_for(b, window)).collect();
    let mut detection = detect::detect(&batches, cfg, &ranges, explained, progress);
    if let Some(now) = now {
        for b in &batches {
            let Some(src) = cfg.sources.iter().find(|s| s.name == b.source) else {
                continue;
            };
            let local = local_ms(now, src);
            let delay = i64::try_from(src.expected_delay.as_millis()).unwrap_or(i64::MAX);
            detection.findings.extend(detect::late(b, local, delay));
        }
    }
    sort_findings(&mut detection.findings);
    let rows = batches.iter().map(Batch::rows).sum();
    Evaluation {
        batches,
        errors,
        warnings,
        detection,
        rows,
        load_time,
        detect_time: t1.elapsed(),
    }
}

/// Order findings by source, series, time, check.
pub fn sort_findings(f: &mut [Finding]) {
    f.sort_by(|a, b| {
        (&a.source, &a.key, a.timestamp, a.check).cmp(&(&b.source, &b.key, b.timestamp, b.check))
    });
}
