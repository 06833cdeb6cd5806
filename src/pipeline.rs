//! One evaluation: load every source → detect → (store, alert: see `app`).
//!
//! Shared by `run`, `run --once` and `backfill`; they differ only in the
//! window of timestamps they report on and in what they do with findings.
//! One bad source never stops the others: its error is collected and the
//! rest are evaluated.
//!
//! With `detection.memory_budget`, a source with more rows than the budget
//! holds is evaluated in chunks of whole series: each chunk is cut, checked
//! (replay cut, future rows) and written to a temp file, then detection reads
//! the chunks back one at a time. Candidates, not rows, are kept across
//! chunks, and Benjamini–Hochberg runs once over all of them.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};

use crate::batch::Batch;
use crate::config::{Config, SourceConfig};
use crate::derived::{Derivations, Parts};
use crate::detect::{self, Candidates, Detection, Range, Resume};
use crate::model::{Check, Checkpoint, ExplainedSpan, Finding, Flagged, SeriesKey, date_ms};
use crate::rollup::Rollups;
use crate::source::{self, Chunks, Held, SourceError, Spilled, SpilledSource};

/// Bytes one row of a source takes at the peak of its evaluation (while it
/// is cut into series, and in detection), measured on the scale set: the
/// rows of one chunk are `detection.memory_budget` / this.
const ROW_BYTES_AT_PEAK: u64 = 40;

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
    /// Sources evaluated in chunks (larger than `detection.memory_budget`).
    pub chunked: Vec<SpilledSource>,
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
    /// Per source (by name), the periods a catch-up skipped as older than
    /// its bound, when any were (scheduled runs only).
    pub caught_up: Vec<(String, usize)>,
    /// What went wrong around it, in words, for the run's record (the
    /// detector states a run could not save).
    pub problems: Vec<String>,
}

impl Evaluation {
    /// One line per source saying what was reported on: "`shop`: 12
    /// series, 3 period(s) each (2025-03-07 .. 2025-03-09)", plus the
    /// periods a catch-up skipped as older than its bound.
    pub fn periods_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for (source, sum) in self.periods_by_source() {
            let each = if sum.fewest == sum.most {
                format!("{} period(s) each", sum.most)
            } else {
                format!("{} to {} period(s) each", sum.fewest, sum.most)
            };
            let show = |t| crate::model::format_ts(t, sum.granularity);
            let mut line = format!(
                "`{source}`: {} series, {each} ({} .. {})",
                sum.series,
                show(sum.first),
                show(sum.last)
            );
            if let Some((_, skipped)) = self.caught_up.iter().find(|c| c.0 == source) {
                line.push_str(&format!(
                    "; {skipped} older period(s) beyond the catch-up bound skipped, not asked about"
                ));
            }
            lines.push(line);
        }
        for (source, skipped) in &self.caught_up {
            if !self.detection.reported.iter().any(|r| &r.source == source) {
                lines.push(format!(
                    "`{source}`: nothing new; {skipped} older period(s) beyond the catch-up bound skipped"
                ));
            }
        }
        lines
    }

    /// Per source, in the order met: what its series reported on
    /// ([`Detection::reported`]); sources with nothing new are left out.
    pub fn periods_by_source(&self) -> Vec<(String, PeriodsReported)> {
        let mut out: Vec<(String, PeriodsReported)> = Vec::new();
        for r in &self.detection.reported {
            match out.iter_mut().find(|o| o.0 == r.source) {
                Some((_, o)) => {
                    o.series += 1;
                    o.fewest = o.fewest.min(r.periods);
                    o.most = o.most.max(r.periods);
                    o.first = o.first.min(r.first_ts);
                    o.last = o.last.max(r.last_ts);
                }
                None => out.push((
                    r.source.clone(),
                    PeriodsReported {
                        series: 1,
                        fewest: r.periods,
                        most: r.periods,
                        first: r.first_ts,
                        last: r.last_ts,
                        granularity: r.granularity,
                    },
                )),
            }
        }
        out
    }

    /// The findings table's key columns: those of the sources evaluated,
    /// whole or in chunks, that have findings.
    pub fn key_columns(&self) -> Vec<String> {
        let sets: Vec<Vec<String>> = self
            .batches
            .iter()
            .map(|b| b.key_columns.clone())
            .chain(self.chunked.iter().map(|c| c.key_columns.clone()))
            .collect();
        crate::output::key_columns(&self.detection.findings, &sets)
    }

    /// Sources evaluated.
    pub fn sources(&self) -> usize {
        // (a chunked source's spanning roll-ups join `batches` under its name)
        let chunked = |b: &Batch| self.chunked.iter().any(|c| c.source == b.source);
        self.batches.iter().filter(|b| !chunked(b)).count() + self.chunked.len()
    }

    /// Series evaluated.
    pub fn series(&self) -> usize {
        self.batches.iter().map(|b| b.series.len()).sum::<usize>()
            + self
                .chunked
                .iter()
                .map(SpilledSource::series)
                .sum::<usize>()
    }
}

/// What one source's series reported on in one evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeriodsReported {
    /// Series with at least one period reported on.
    pub series: usize,
    /// Fewest periods of one series.
    pub fewest: usize,
    /// Most periods of one series.
    pub most: usize,
    /// Oldest period reported on.
    pub first: i64,
    /// Newest period reported on.
    pub last: i64,
    /// The granularity of (one of) its series, for showing the periods.
    pub granularity: crate::model::Granularity,
}

/// Looks up the stored detector states of a source's series, in the order of
/// the keys given (`None`: no usable state, walk that series fully).
pub type StateLookup<'a> = dyn FnMut(&str, &[&SeriesKey]) -> Vec<Option<Checkpoint>> + 'a;

/// Takes the new detector states of a batch or chunk as soon as they are
/// made (a run writes them to the store), so no more than a chunk's states
/// are held at once.
pub type StateSink<'a> = dyn FnMut(Vec<Checkpoint>) + 'a;

/// Looks up the newest period reported on per series of a source, in the
/// order of the keys given (`None`: never reported on).
pub type ReportedLookup<'a> = dyn FnMut(&str, &[&SeriesKey]) -> Vec<Option<i64>> + 'a;

/// What a scheduled run reports on when it knows what was reported before:
/// every period after the last one reported on, per series, however many
/// (a weekend, downtime), each once; a series never reported on starts with
/// the periods that ended since the previous review (at least its newest).
/// Periods more than `bound` older than a series' newest are not asked
/// about: they are counted as skipped.
#[derive(Debug, Clone, Copy)]
pub struct CatchUp {
    /// The previous review: a first run reports the periods ended since.
    pub first_since: DateTime<Utc>,
    /// How far back a run catches up (at least two periods).
    pub bound: chrono::Duration,
}

/// Detector states in and out of one evaluation (`detect::checkpoint`): the
/// caller reads the stored ones (per batch, and per chunk of a chunked
/// source, so a chunk's states are in memory with its rows only) and gets the
/// new ones back in [`Detection::checkpoints`]. With `reported` and
/// `catch_up`, each series reports from after its last reported period.
pub struct States<'a> {
    /// Where stored states come from; `None`: every series walks fully.
    pub lookup: Option<&'a mut StateLookup<'a>>,
    /// Keep each series' new state.
    pub save: bool,
    /// Where the new states go as they are made; `None`: kept in
    /// [`Detection::checkpoints`] for the caller.
    pub sink: Option<&'a mut StateSink<'a>>,
    /// Where the last reported periods come from (with `catch_up`).
    pub reported: Option<&'a mut ReportedLookup<'a>>,
    /// The catch-up policy; `None`: the window's range as it is.
    pub catch_up: Option<CatchUp>,
}

impl States<'_> {
    /// Neither read nor keep states (a backfill).
    pub fn none() -> States<'static> {
        States {
            lookup: None,
            save: false,
            sink: None,
            reported: None,
            catch_up: None,
        }
    }

    /// Hand the states made so far to the sink, if there is one.
    fn flush(&mut self, candidates: &mut Candidates) {
        if let Some(sink) = self.sink.as_mut() {
            let made = candidates.take_checkpoints();
            if !made.is_empty() {
                sink(made);
            }
        }
    }

    /// The first timestamp each series of `b` reports, in series order
    /// (empty without a catch-up: the range decides), and how many periods
    /// fell beyond the bound. `range` is the batch's window range.
    fn report_from(
        &mut self,
        b: &Batch,
        src: Option<&SourceConfig>,
        range: Range,
    ) -> (Vec<i64>, usize) {
        let (Some(catch_up), Some(lookup), Some(src)) =
            (self.catch_up, self.reported.as_mut(), src)
        else {
            return (Vec::new(), 0);
        };
        let keys: Vec<&SeriesKey> = b.series.iter().map(|s| &s.key).collect();
        let reported = lookup(&b.source, &keys);
        let review = local_ms(catch_up.first_since, src);
        let bound = catch_up.bound.num_milliseconds();
        let mut skipped = 0;
        let froms = b
            .series
            .iter()
            .enumerate()
            .map(|(i, info)| {
                let ts = b.ts_of(info);
                let Some(&newest) = ts.last() else {
                    return range.from;
                };
                let step = info.granularity.step_ms();
                let ends = info.granularity.ends_after(src.dialect.period_end);
                let from = match reported.get(i).copied().flatten() {
                    Some(last) => last.saturating_add(1),
                    // the periods that ended after the previous review
                    None => review.saturating_sub(ends).saturating_add(1).min(newest),
                };
                let floor = newest
                    .saturating_sub(bound.max(step.saturating_mul(2)))
                    .saturating_add(1);
                if from < floor {
                    skipped +=
                        ts.partition_point(|&t| t < floor) - ts.partition_point(|&t| t < from);
                }
                from.max(floor)
            })
            .collect();
        (froms, skipped)
    }

    /// The stored states of `b`'s series, in series order.
    fn of(&mut self, b: &Batch) -> Vec<Option<Checkpoint>> {
        match self.lookup.as_mut() {
            Some(f) => {
                let keys: Vec<&SeriesKey> = b.series.iter().map(|s| &s.key).collect();
                f(&b.source, &keys)
            }
            None => Vec::new(),
        }
    }
}

/// Everything loading produced: batches, errors and warnings.
#[derive(Debug, Default)]
pub struct Loaded {
    /// One batch per source that could be read.
    pub batches: Vec<Batch>,
    /// Sources larger than `detection.memory_budget`, in chunks.
    pub chunked: Vec<SpilledSource>,
    /// Sources or series that could not be used.
    pub errors: Vec<SourceError>,
    /// Data used with some points left out.
    pub warnings: Vec<SourceError>,
}

/// Load every source; failures are collected, never fatal for the others.
/// Rows dated more than one period after `now` are left out and reported.
/// A source larger than `detection.memory_budget` comes back in chunks
/// (`Loaded::chunked`), like an evaluation's.
///
/// Each problem is logged here, once, with its source as a field; callers count
/// them but do not print them again.
pub fn load_all(cfg: &Config, now: DateTime<Utc>, window: Window) -> Loaded {
    let limit = cfg.detection.memory_budget.map(chunk_rows);
    load_as_of(cfg, now, window, false, limit)
}

/// [`load_all`] as of `now`: when `now` is in the past (a report or page
/// `--at` a past moment, a replayed run), the exports hold that moment's real
/// future, and the periods that had not ended by then are left out silently
/// (as a replay leaves them), not reported as rows from the future.
pub fn load_as_of_moment(cfg: &Config, now: DateTime<Utc>, window: Window) -> Loaded {
    let limit = cfg.detection.memory_budget.map(chunk_rows);
    let replay = now + chrono::Duration::minutes(5) < Utc::now();
    load_as_of(cfg, now, window, replay, limit)
}

/// [`load_all`]; with `replay` (a run `--at` a past moment) the exports hold
/// that moment's real future, so only periods that had *ended* by `now` are
/// kept (what the daemon could have read then), silently: no look-ahead.
/// A source with more than `limit` rows comes back in chunks.
fn load_as_of(
    cfg: &Config,
    now: DateTime<Utc>,
    window: Window,
    replay: bool,
    limit: Option<usize>,
) -> Loaded {
    let mut out = Loaded::default();
    for s in &cfg.sources {
        match source::load_held(s, &query_window(s, now, window), limit) {
            Ok((Held::Whole(mut b), mut problems)) => {
                if replay {
                    let cut = keep_ended(&mut b, local_ms(now, s), s.dialect.period_end);
                    tracing::debug!(source = %s.name, rows = cut, "replay: rows after the evaluation time left out");
                }
                problems.extend(source::drop_future(&mut b, local_ms(now, s)));
                tracing::info!(source = %s.name, series = b.series.len(), rows = b.rows(), "loaded");
                out.report(s, problems);
                out.batches.push(b);
            }
            Ok((Held::Chunked(chunks), mut problems)) => match cut_chunks(s, chunks, now, replay) {
                Ok((c, series_problems)) => {
                    problems.extend(series_problems);
                    tracing::info!(source = %s.name, series = c.series(), rows = c.rows(), chunks = c.chunks.len(), "loaded in chunks (larger than detection.memory_budget)");
                    out.report(s, problems);
                    out.chunked.push(c);
                }
                Err(e) => {
                    problems.push(e);
                    out.report(s, problems);
                }
            },
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

impl Loaded {
    /// Log each problem of source `s` once and keep it as an error or a warning.
    fn report(&mut self, s: &SourceConfig, problems: Vec<SourceError>) {
        for p in problems {
            if p.is_warning() {
                tracing::warn!(source = %s.name, "{p}");
                self.warnings.push(p);
            } else {
                tracing::error!(source = %s.name, "{p}");
                self.errors.push(p);
            }
        }
    }
}

/// Cut each chunk of a source into series, apply what [`load_as_of`] applies
/// to a whole batch (the replay cut, rows dated in the future) and move its
/// rows to a temp file. The series' problems come back in the order a whole
/// batch gives them: the cut's by key, then the future rows' by key.
fn cut_chunks(
    s: &SourceConfig,
    mut chunks: Box<Chunks>,
    now: DateTime<Utc>,
    replay: bool,
) -> Result<(SpilledSource, Vec<SourceError>), SourceError> {
    let local = local_ms(now, s);
    let (mut cut, mut future) = (Vec::new(), Vec::new());
    let mut spilled = SpilledSource {
        source: s.name.clone(),
        key_columns: Vec::new(),
        chunks: Vec::with_capacity(chunks.len()),
        newest: None,
    };
    for i in 0..chunks.len() {
        let (mut b, problems) = chunks.take(i)?;
        cut.extend(problems);
        if replay {
            let rows = keep_ended(&mut b, local, s.dialect.period_end);
            tracing::debug!(source = %s.name, rows, "replay: rows after the evaluation time left out");
        }
        future.extend(source::drop_future_keyed(&mut b, local));
        spilled.newest = spilled.newest.max(b.newest());
        spilled.key_columns.clone_from(&b.key_columns);
        spilled.chunks.push(Spilled::write(b)?);
    }
    cut.sort_by(|a, b| a.0.cmp(&b.0));
    future.sort_by(|a, b| a.0.cmp(&b.0));
    let problems = cut.into_iter().chain(future).map(|(_, p)| p).collect();
    Ok((spilled, problems))
}

/// Rows of one chunk for a memory budget in bytes (at least one).
fn chunk_rows(budget: u64) -> usize {
    usize::try_from(budget / ROW_BYTES_AT_PEAK)
        .unwrap_or(usize::MAX)
        .max(1)
}

/// Read each source as a scheduled run at `now` would, and say per source
/// what came back ("12 series, 9,576 rows, newest 2025-03-09") or why not.
/// Nothing is evaluated or stored.
pub fn check_sources(
    cfg: &Config,
    now: DateTime<Utc>,
) -> Vec<(String, Result<String, Vec<SourceError>>)> {
    cfg.sources
        .iter()
        .map(|s| {
            let limit = cfg.detection.memory_budget.map(chunk_rows);
            let result = source::load_held(s, &query_window(s, now, Window::Latest), limit)
                .and_then(|(held, mut problems)| {
                    // (series, rows, newest); a chunked source one chunk at a time
                    let (series, rows, newest) = match held {
                        Held::Whole(b) => (b.series.len(), b.rows(), b.newest()),
                        Held::Chunked(mut chunks) => {
                            let (mut sum, mut cut) = ((0, 0, None), Vec::new());
                            for i in 0..chunks.len() {
                                let (b, problems_of_chunk) = chunks.take(i).map_err(|e| {
                                    problems.push(e);
                                    std::mem::take(&mut problems)
                                })?;
                                cut.extend(problems_of_chunk);
                                sum = (
                                    sum.0 + b.series.len(),
                                    sum.1 + b.rows(),
                                    sum.2.max(b.newest()),
                                );
                            }
                            // by series key, as a whole source lists them
                            cut.sort_by(|a, b| a.0.cmp(&b.0));
                            problems.extend(cut.into_iter().map(|(_, p)| p));
                            sum
                        }
                    };
                    Ok((series, rows, newest, problems))
                })
                .map(|(series, rows, newest, problems)| {
                    let newest = newest
                        .and_then(chrono::DateTime::from_timestamp_millis)
                        .map_or_else(
                            || "no data".into(),
                            |t| format!("newest {}", t.format("%Y-%m-%d %H:%M")),
                        );
                    let mut line = format!(
                        "{series} series, {} rows, {newest}",
                        crate::fmt::num(rows as f64)
                    );
                    if let Some(read) = s.dialect.describe() {
                        line.push_str(&format!(" (read with {read})"));
                    }
                    if !problems.is_empty() {
                        line.push_str(&format!(
                            "; {} problem(s): {}",
                            problems.len(),
                            problems
                                .iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join("; ")
                        ));
                    }
                    line
                });
            (s.name.clone(), result)
        })
        .collect()
}

/// What a SQL source's `$from` and `$to` bind to: from `history_days` before
/// the first reported day (a scheduled run: before now; an open backfill:
/// everything) to the evaluation clock or the backfill's last day.
fn query_window(src: &SourceConfig, now: DateTime<Utc>, window: Window) -> source::sql::Window {
    let to = now.with_timezone(&src.timezone).naive_local();
    let history = match &src.location {
        crate::config::Location::Sql(q) => chrono::Duration::days(i64::from(q.history_days)),
        _ => chrono::Duration::zero(),
    };
    let all = NaiveDate::from_ymd_opt(1900, 1, 1)
        .unwrap_or(NaiveDate::MIN)
        .and_time(chrono::NaiveTime::MIN);
    match window {
        Window::Latest => source::sql::Window {
            from: to - history,
            to,
        },
        Window::Dates(from, last) => source::sql::Window {
            from: from.map_or(all, |d| d.and_time(chrono::NaiveTime::MIN) - history),
            to: last
                .and_then(|d| d.and_hms_opt(23, 59, 59))
                .map_or(to, |l| l.min(to)),
        },
    }
}

/// Keep each series' rows whose period had ended by `now` (ms, source wall
/// clock): a day is complete at the next midnight, an hour at the next hour.
/// Rows are sorted per series, so the cut is a binary search; a series left
/// empty is removed. Returns the number of rows left out.
fn keep_ended(batch: &mut Batch, now: i64, period_end: bool) -> usize {
    let mut cut = 0;
    batch.keep_prefix(
        |s, t| t.saturating_add(s.granularity.ends_after(period_end)) <= now,
        |_, series_ts, kept| cut += series_ts.len() - kept,
    );
    cut
}

/// `now` as wall-clock ms in the source's timezone (how its timestamps are stored).
fn local_ms(now: DateTime<Utc>, src: &SourceConfig) -> i64 {
    crate::model::wall_ms(&now.with_timezone(&src.timezone))
}

/// The report range of one batch for a window.
pub fn range_for(batch: &Batch, window: Window) -> Range {
    range_at(batch.newest(), window)
}

/// The report range of a source whose newest timestamp is `newest`.
fn range_at(newest: Option<i64>, window: Window) -> Range {
    match window {
        Window::Latest => {
            let t = newest.unwrap_or(i64::MAX);
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
    evaluate_as_of(cfg, window, now, false, explained, States::none(), progress)
}

/// [`evaluate`] replayed as of `at` (`run --once --at`, `callout demo`):
/// exactly what the daemon would have done then. Only periods that had ended
/// by `at` are read (the exports' later rows are its future, not typos), and
/// late exports count from `at`.
pub fn evaluate_at(
    cfg: &Config,
    window: Window,
    at: DateTime<Utc>,
    explained: &[ExplainedSpan],
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Evaluation {
    evaluate_as_of(
        cfg,
        window,
        Some(at),
        true,
        explained,
        States::none(),
        progress,
    )
}

/// [`evaluate`] (or, with `replay`, [`evaluate_at`]) resuming each series from
/// its stored detector state where it fits, keeping new ones as asked: what
/// `run` and `run --once` do. The findings are those of a full evaluation.
pub fn evaluate_resuming(
    cfg: &Config,
    window: Window,
    now: DateTime<Utc>,
    replay: bool,
    explained: &[ExplainedSpan],
    states: States<'_>,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Evaluation {
    evaluate_as_of(cfg, window, Some(now), replay, explained, states, progress)
}

fn evaluate_as_of(
    cfg: &Config,
    window: Window,
    now: Option<DateTime<Utc>>,
    replay: bool,
    explained: &[ExplainedSpan],
    mut states: States<'_>,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Evaluation {
    let t0 = Instant::now();
    let limit = cfg.detection.memory_budget.map(chunk_rows);
    // a backfill has no run clock: the machine's clock bounds plausible dates
    let Loaded {
        mut batches,
        chunked,
        mut errors,
        warnings,
    } = load_as_of(cfg, now.unwrap_or_else(Utc::now), window, replay, limit);
    let mut parts: Vec<(String, Parts)> = Vec::new();
    for b in &mut batches {
        let (mut rollups, mut derivations) = (Rollups::default(), Derivations::default());
        rollups.add(cfg, b);
        derivations.add(cfg, b);
        let (extra, made) = built(cfg, &b.source, &b.key_columns, rollups, derivations);
        if let Some(extra) = extra {
            b.absorb(extra);
        }
        parts.push((b.source.clone(), made));
    }
    let load_time = t0.elapsed();
    let t1 = Instant::now();
    let ranges: Vec<Range> = batches.iter().map(|b| range_for(b, window)).collect();
    let newest: Vec<i64> = batches
        .iter()
        .map(|b| b.newest().unwrap_or(i64::MIN))
        .collect();
    let total = batches.iter().map(|b| b.series.len()).sum::<usize>()
        + chunked.iter().map(SpilledSource::series).sum::<usize>();
    let mut candidates = Candidates::default();
    let prior: Vec<Vec<Option<Checkpoint>>> = batches.iter().map(|b| states.of(b)).collect();
    let src_of = |name: &str| cfg.sources.iter().find(|s| s.name == name);
    let mut caught_up: Vec<(String, usize)> = Vec::new();
    let mut count_skipped = |source: &str, skipped: usize| {
        if skipped > 0 {
            match caught_up.iter_mut().find(|c| c.0 == source) {
                Some(c) => c.1 += skipped,
                None => caught_up.push((source.to_string(), skipped)),
            }
        }
    };
    let report_from: Vec<Vec<i64>> = batches
        .iter()
        .zip(&ranges)
        .map(|(b, &r)| {
            let (froms, skipped) = states.report_from(b, src_of(&b.source), r);
            count_skipped(&b.source, skipped);
            froms
        })
        .collect();
    candidates.add(
        &batches,
        &newest,
        cfg,
        &ranges,
        explained,
        Resume {
            prior: &prior,
            save: states.save,
            report_from: &report_from,
        },
        &|done, _| {
            progress(done, total);
        },
    );
    drop(prior);
    states.flush(&mut candidates);
    let mut late = Vec::new();
    for b in &batches {
        late.extend(late_of(cfg, b, now));
    }
    // one chunk in memory at a time; its candidates stay, its rows go
    let mut done = batches.iter().map(|b| b.series.len()).sum::<usize>();
    for c in &chunked {
        let one = OneBatch {
            cfg,
            newest: [c.newest.unwrap_or(i64::MIN)],
            range: [range_at(c.newest, window)],
            explained,
        };
        let mut rollups = Rollups::default();
        let mut derivations = Derivations::default();
        let mut whole = true;
        for chunk in &c.chunks {
            let b = match chunk.read() {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(source = %c.source, "{e}");
                    errors.push(e);
                    whole = false;
                    continue;
                }
            };
            let base = done;
            let skipped = one.add(&mut candidates, &mut states, &b, &move |d, _| {
                progress(base + d, total);
            });
            count_skipped(&b.source, skipped);
            late.extend(late_of(cfg, &b, now));
            rollups.add(cfg, &b);
            derivations.add(cfg, &b);
            done += b.series.len();
        }
        // the roll-ups and ratios of a chunked source span its chunks:
        // detected last, and kept whole (history records them like a whole
        // batch's)
        if !whole {
            // slices are missing: no totals that would dip for it
            continue;
        }
        let (spanning, made) = built(cfg, &c.source, &c.key_columns, rollups, derivations);
        parts.push((c.source.clone(), made));
        if let Some(b) = spanning {
            let skipped = one.add(&mut candidates, &mut states, &b, &|_, _| {});
            count_skipped(&b.source, skipped);
            batches.push(b);
        }
    }
    let mut detection = candidates.decide(cfg.detection.fdr);
    // a roll-up or a ratio leaves out the periods its parts do not all have:
    // its parts' own `missing` says so, not a gap of its own
    detection
        .findings
        .retain(|f| !(f.hit.check == Check::Missing && is_built(cfg, &f.key)));
    say_which_part_moved(&parts, &mut detection.findings);
    say_which_slices_drove_it(cfg, &batches, &mut detection.findings);
    detection.findings.extend(late);
    if let (Some(now), true) = (now, states.catch_up.is_some()) {
        export_problems(cfg, now, &errors, &mut detection);
    }
    if !chunked.is_empty() {
        // as whole batches list them: by source, then key
        let at = |name: &str| cfg.sources.iter().position(|s| s.name == name);
        detection
            .evaluated
            .sort_by(|a, b| (at(&a.source), &a.key).cmp(&(at(&b.source), &b.key)));
    }
    sort_findings(&mut detection.findings);
    let rows = batches.iter().map(Batch::rows).sum::<usize>()
        + chunked.iter().map(SpilledSource::rows).sum::<usize>();
    Evaluation {
        batches,
        chunked,
        errors,
        warnings,
        detection,
        rows,
        load_time,
        detect_time: t1.elapsed(),
        caught_up,
        problems: Vec::new(),
    }
}

/// The roll-ups and ratios of source `of` (its name and key columns), from
/// the series `rollups` and `derivations` gathered: one batch (none when
/// nothing is built), and what each ratio was made of. Ratios are built on
/// the roll-ups too.
fn built(
    cfg: &Config,
    source: &str,
    key_columns: &[String],
    rollups: Rollups,
    mut derivations: Derivations,
) -> (Option<Batch>, Parts) {
    let mut out = rollups.finish(source, key_columns);
    if let Some(r) = &out {
        derivations.add(cfg, r);
    }
    let (ratios, made) = derivations.finish(cfg, source, key_columns);
    match (&mut out, ratios) {
        (Some(r), Some(ratios)) => r.absorb(ratios),
        (None, ratios) => out = ratios,
        (Some(_), None) => {}
    }
    (out, made)
}

/// How one batch of a chunked source is detected (a chunk, or the roll-ups
/// and ratios spanning its chunks): against the whole source's range.
struct OneBatch<'a> {
    cfg: &'a Config,
    newest: [i64; 1],
    range: [Range; 1],
    explained: &'a [ExplainedSpan],
}

impl OneBatch<'_> {
    /// Detect `b`, resuming its series' stored states; returns the periods
    /// a catch-up skipped.
    fn add(
        &self,
        candidates: &mut Candidates,
        states: &mut States<'_>,
        b: &Batch,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> usize {
        let prior = [states.of(b)];
        let src = self.cfg.sources.iter().find(|s| s.name == b.source);
        let (froms, skipped) = states.report_from(b, src, self.range[0]);
        candidates.add(
            std::slice::from_ref(b),
            &self.newest,
            self.cfg,
            &self.range,
            self.explained,
            Resume {
                prior: &prior,
                save: states.save,
                report_from: &[froms],
            },
            progress,
        );
        states.flush(candidates);
        skipped
    }
}

/// A roll-up's finding names the slices one dimension down that drove it,
/// one per line of its note (sources read whole; a chunked source's slices
/// are no longer in memory).
fn say_which_slices_drove_it(cfg: &Config, batches: &[Batch], findings: &mut [Finding]) {
    for f in findings.iter_mut().filter(|f| cfg.sums_rollup(&f.key)) {
        let Some(b) = batches.iter().find(|b| b.source == f.source) else {
            continue;
        };
        if let Some((dimension, slices)) = crate::contribution::slices(b, f) {
            let lines = crate::contribution::lines(&dimension, &slices).join("\n");
            let heading = crate::model::DRIVERS_HEADING;
            f.hit.add_note(&format!("{heading}\n{lines}"));
        }
    }
}

/// A roll-up or a `[[derived]]` ratio: a series callout builds from others.
fn is_built(cfg: &Config, key: &SeriesKey) -> bool {
    key.is_rollup() || cfg.derived.iter().any(|d| d.name == key.metric)
}

/// A derived ratio's finding says which of its parts moved.
fn say_which_part_moved(parts: &[(String, Parts)], findings: &mut [Finding]) {
    for f in findings {
        let Some((_, p)) = parts.iter().find(|(s, _)| *s == f.source) else {
            continue;
        };
        if let Some(moved) = p.note(&f.key, f.hit.ts) {
            f.hit.add_note(&moved);
        }
    }
}

/// A scheduled run's export problems as items for the source's owner: per
/// source whose export could not be read (missing, empty, unreadable, of the
/// wrong shape), one `late` finding on the export's pseudo-series
/// ([`SeriesKey::export`]) dated the run's day, naming the file and the
/// error; per source read without such a problem, that pseudo-series is
/// evaluated, so its incident closes like a late export's once the export
/// is back.
fn export_problems(
    cfg: &Config,
    now: DateTime<Utc>,
    errors: &[SourceError],
    detection: &mut Detection,
) {
    let day = crate::model::MS_PER_DAY;
    for src in &cfg.sources {
        let today = local_ms(now, src);
        let today = today - today.rem_euclid(day);
        let problems: Vec<&SourceError> = errors
            .iter()
            .filter(|e| e.source_name() == src.name && e.is_export_problem())
            .collect();
        let key = SeriesKey::export();
        let Some(first) = problems.first() else {
            detection.evaluated.push(crate::model::Evaluated {
                source: src.name.clone(),
                key,
                last_ts: today,
                step_ms: day,
                points: 1,
            });
            continue;
        };
        let more = match problems.len() {
            1 => String::new(),
            n => format!(" (and {} more problem(s))", n - 1),
        };
        detection.findings.push(Finding::late(
            &src.name,
            key,
            crate::model::Granularity::Day,
            today,
            0,
            format!("{first}{more}"),
        ));
    }
}

/// Series of `b` whose newest data is overdue at `now` (none without a clock).
fn late_of(cfg: &Config, b: &Batch, now: Option<DateTime<Utc>>) -> Vec<Finding> {
    let Some(now) = now else {
        return Vec::new();
    };
    let Some(src) = cfg.sources.iter().find(|s| s.name == b.source) else {
        return Vec::new();
    };
    let local = local_ms(now, src);
    let delay = i64::try_from(src.expected_delay.as_millis()).unwrap_or(i64::MAX);
    let mut late = detect::late(b, local, delay, src.dialect.period_end);
    // a roll-up or a ratio is late when its parts are: they say so
    late.retain(|f| !is_built(cfg, &f.key));
    late
}

/// Order findings by source, series, time, check.
pub fn sort_findings(f: &mut [Finding]) {
    f.sort_by(|a, b| {
        (&a.source, &a.key, a.hit.ts, a.hit.check).cmp(&(&b.source, &b.key, b.hit.ts, b.hit.check))
    });
}

/// Add a `restated` finding for every period the store flagged (`flagged`,
/// read by the caller: the pipeline does not open the store) whose value in
/// the loaded exports has changed since (the comparison is
/// [`crate::restated::restatements`]; a metric whose `checks` leave out
/// `restated` gets none). Shared by the daemon's cycle and backfill; call it
/// before the evaluation's findings are stored. Returns how many were added.
pub fn add_restated(cfg: &Config, ev: &mut Evaluation, mut flagged: Vec<Flagged>) -> usize {
    // only metrics that check it: their chunks alone are read back
    flagged.retain(|f| cfg.rule_for(&f.key.metric).enabled(Check::Restated));
    let found = restated(ev, &flagged);
    let n = found.len();
    if n > 0 {
        tracing::info!(restated = n, "flagged values restated in the exports");
        let findings = &mut ev.detection.findings;
        findings.extend(found);
        sort_findings(findings);
    }
    n
}

/// The `restated` findings of an evaluation: every flagged period whose value
/// in the loaded exports differs from the flagged one
/// ([`crate::restated::restatements`]), over whole batches and over the
/// chunks of a source larger than the memory budget (only the chunks holding a
/// flagged series are read back). A chunk that cannot be read back is an
/// error of the evaluation, named by its source.
fn restated(ev: &mut Evaluation, flagged: &[Flagged]) -> Vec<Finding> {
    let mut found = crate::restated::restatements(flagged, &ev.batches);
    let wanted: HashSet<(&str, &SeriesKey)> = flagged
        .iter()
        .map(|f| (f.source.as_str(), &f.key))
        .collect();
    for c in &ev.chunked {
        for chunk in &c.chunks {
            if !chunk
                .series
                .iter()
                .any(|s| wanted.contains(&(c.source.as_str(), &s.key)))
            {
                continue;
            }
            match chunk.read() {
                Ok(b) => found.extend(crate::restated::restatements(
                    flagged,
                    std::slice::from_ref(&b),
                )),
                Err(e) => {
                    tracing::error!(source = %c.source, "{e}");
                    ev.errors.push(e);
                }
            }
        }
    }
    sort_findings(&mut found);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two sources: a glob of three files (the second unreadable) and one
    /// file; 18 daily series of 200 days with a weekly shape, noise and
    /// planted spikes, a series with a repeated timestamp (left out), one
    /// with a NaN (a warning), one with a row dated 2099 (left out) and one
    /// that stops early (late when replayed).
    fn fixture(dir: &Path) -> Config {
        let day = |d: i64| {
            (NaiveDate::from_ymd_opt(2024, 1, 1).unwrap() + chrono::Duration::days(d))
                .format("%Y-%m-%d")
                .to_string()
        };
        let mut seed: u64 = 11;
        let mut noise = move || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 33) as f64 / f64::from(1u32 << 31) - 0.5
        };
        let mut shop = [String::new(), String::new()];
        for d in 0..200 {
            for (m, metric) in ["orders", "visits", "refunds"].iter().enumerate() {
                for (r, region) in ["eu", "us", "apac", "latam"].iter().enumerate() {
                    let base = 100.0 * (m + 1) as f64 + 10.0 * r as f64;
                    let weekly = [1.0, 1.1, 1.05, 1.0, 0.95, 0.7, 0.6][(d % 7) as usize];
                    let spike = if (d + 13 * r as i64 + 7 * m as i64) % 53 == 52 {
                        1.8
                    } else {
                        1.0
                    };
                    // small bumps near the threshold: candidates for the FDR step
                    let bump = if (d + 29 * r as i64 + 11 * m as i64) % 41 == 40 {
                        1.035 + 0.004 * (r + m) as f64
                    } else {
                        1.0
                    };
                    let v = base * weekly * spike * bump * (1.0 + 0.03 * noise());
                    if (d, m, r) == (100, 0, 2) {
                        shop[0].push_str(&format!("{},{metric},{region},NaN\n", day(d)));
                        continue;
                    }
                    // the first 120 days in one file, the rest in the next
                    shop[usize::from(d >= 120)]
                        .push_str(&format!("{},{metric},{region},{v:.3}\n", day(d)));
                }
            }
        }
        // a repeated timestamp (the default policy rejects the series)
        shop[1].push_str(&format!("{},visits,us,1.0\n", day(150)));
        let head = "date,metric,region,value\n";
        std::fs::write(dir.join("shop_a.csv"), format!("{head}{}", shop[0])).unwrap();
        std::fs::write(
            dir.join("shop_b.csv"),
            "date,metric,region,value\n2024-01-01,x,eu,oops\n",
        )
        .unwrap();
        std::fs::write(dir.join("shop_c.csv"), format!("{head}{}", shop[1])).unwrap();
        let mut ops = String::from("date,metric,region,value\n");
        for d in 0..200 {
            for region in ["eu", "us", "apac", "latam", "mena", "nordics"] {
                if region == "nordics" && d >= 150 {
                    // stops: late by the replayed moment
                    continue;
                }
                let v = 50.0 * (1.0 + 0.05 * noise()) + if d == 170 { 40.0 } else { 0.0 };
                ops.push_str(&format!("{},errors,{region},{v:.3}\n", day(d)));
            }
        }
        ops.push_str("2099-01-01,errors,mena,1.0\n");
        std::fs::write(dir.join("ops.csv"), ops).unwrap();
        let text = format!(
            "[store]\npath = \"s.db\"\n[detection]\nfdr = 0.001\n\n[[source]]\nname = \"shop\"\npath = \"{0}/shop_*.csv\"\ndimensions = [\"region\"]\n\n[[source]]\nname = \"ops\"\npath = \"{0}/ops.csv\"\ndimensions = [\"region\"]\nexpected_delay_hours = 1\n",
            dir.display()
        );
        crate::config::compile_str(&text, &dir.join("c.toml"), &|_| None).unwrap()
    }

    use std::path::Path;

    /// What an evaluation shows, as text (late findings carry NaN values).
    fn shown(ev: &Evaluation) -> Vec<String> {
        let mut out = vec![format!(
            "{} series, {} rows, {} dropped by FDR",
            ev.series(),
            ev.rows,
            ev.detection.dropped_by_fdr
        )];
        out.extend(ev.errors.iter().map(|e| format!("error: {e}")));
        out.extend(ev.warnings.iter().map(|e| format!("warning: {e}")));
        out.extend(ev.detection.findings.iter().map(|f| format!("{f:?}")));
        out.extend(ev.detection.evaluated.iter().map(|e| format!("{e:?}")));
        out
    }

    /// A run resumed from the states the day before left finds what a full
    /// run finds, whole and in chunks (states looked up chunk by chunk).
    #[test]
    fn resumed_evaluation_equals_full_whole_and_chunked() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = fixture(dir.path());
        let day1 = "2024-06-30T08:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let day2 = "2024-07-01T08:00:00Z".parse::<DateTime<Utc>>().unwrap();
        for budget in [None, Some(150 * ROW_BYTES_AT_PEAK)] {
            cfg.detection.memory_budget = budget;
            let run = |at, prior: Option<&[Checkpoint]>| {
                let mut lookups = 0;
                let mut lookup = |source: &str, keys: &[&SeriesKey]| {
                    lookups += 1;
                    keys.iter()
                        .map(|k| {
                            prior?
                                .iter()
                                .find(|c| c.source == source && &c.key == *k)
                                .cloned()
                        })
                        .collect()
                };
                // the new states as they are handed over, batch by batch or chunk by chunk
                let mut handed: Vec<Vec<Checkpoint>> = Vec::new();
                let mut sink = |made: Vec<Checkpoint>| handed.push(made);
                let states = States {
                    lookup: Some(&mut lookup),
                    save: true,
                    sink: Some(&mut sink),
                    reported: None,
                    catch_up: None,
                };
                let ev = evaluate_resuming(&cfg, Window::Latest, at, true, &[], states, &|_, _| {});
                (ev, lookups, handed)
            };
            let (first, _, handed) = run(day1, None);
            // nothing held back for the end: every state went to the sink,
            // a chunk's with its chunk
            assert!(first.detection.checkpoints.is_empty());
            let saved = &handed.concat();
            assert_eq!(saved.len(), first.series());
            if budget.is_some() {
                assert!(
                    handed.len() >= 6,
                    "one hand-over per chunk, got {}",
                    handed.len()
                );
            }
            let (resumed, lookups, _) = run(day2, Some(saved));
            let (full, _, _) = run(day2, None);
            assert_eq!(resumed.detection.resumed, saved.len(), "{budget:?}");
            assert_eq!(resumed.detection.walked, 0);
            assert_eq!(full.detection.resumed, 0);
            assert_eq!(shown(&resumed), shown(&full), "{budget:?}");
            assert!(
                full.detection.findings.len() > 1,
                "{:?}",
                full.detection.findings
            );
            if budget.is_some() {
                assert!(lookups >= 6, "one lookup per chunk, got {lookups}");
            }
        }
    }

    /// Roll-ups of a source read in chunks span the chunks: the same
    /// totals, findings and evaluated series as the source read whole.
    #[test]
    fn rollups_of_a_chunked_source_equal_the_whole_sources() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = fixture(dir.path());
        let mut rule = crate::config::MetricRule::default_rule();
        rule.pattern = crate::config::MetricGlob::new("orders").unwrap();
        rule.rollups = vec![crate::config::Rollup { keep: Vec::new() }];
        cfg.metrics.push(rule);
        let run = |cfg: &Config| evaluate(cfg, Window::Dates(None, None), None, &[], &|_, _| {});
        let whole = run(&cfg);
        cfg.detection.memory_budget = Some(150 * ROW_BYTES_AT_PEAK);
        let chunked = run(&cfg);
        assert!(chunked.chunked.iter().all(|s| s.chunks.len() >= 3));
        let total = |ev: &Evaluation| -> Vec<f64> {
            ev.batches
                .iter()
                .flat_map(|b| {
                    b.series
                        .iter()
                        .filter(|s| s.key.is_rollup())
                        .flat_map(|s| b.values_of(s).to_vec())
                })
                .collect()
        };
        assert!(total(&whole).len() > 100, "the total of orders");
        assert_eq!(total(&whole), total(&chunked));
        let evaluated = |ev: &Evaluation| -> Vec<String> {
            let mut e: Vec<String> = ev
                .detection
                .evaluated
                .iter()
                .map(|e| format!("{e:?}"))
                .collect();
            e.sort();
            e
        };
        assert_eq!(evaluated(&whole), evaluated(&chunked));
        // (notes aside: a chunked source's totals do not name the slices
        // that drove them, README says so)
        let findings = |ev: &Evaluation| -> Vec<String> {
            ev.detection
                .findings
                .iter()
                .map(|f| {
                    let mut f = f.clone();
                    f.hit.note = None;
                    format!("{f:?}")
                })
                .collect()
        };
        assert_eq!(findings(&whole), findings(&chunked));
        assert!(
            whole
                .detection
                .evaluated
                .iter()
                .any(|e| e.key.to_string() == "orders{region=*}")
        );
    }

    #[test]
    fn chunked_evaluation_equals_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = fixture(dir.path());
        let at = "2024-07-10T08:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let runs = |cfg: &Config| {
            [
                evaluate(cfg, Window::Dates(None, None), None, &[], &|_, _| {}),
                evaluate_at(cfg, Window::Latest, at, &[], &|_, _| {}),
                evaluate_at(cfg, Window::Dates(None, None), at, &[], &|_, _| {}),
            ]
        };
        let whole = runs(&cfg);
        // about 150 rows a chunk: the 2,400 rows of `shop` and 1,200 of `ops` in many
        cfg.detection.memory_budget = Some(150 * ROW_BYTES_AT_PEAK);
        let chunked = runs(&cfg);
        for (w, c) in whole.iter().zip(&chunked) {
            assert!(w.chunked.is_empty());
            assert_eq!(c.batches.len(), 0, "both sources are over the budget");
            assert!(
                c.chunked.iter().all(|s| s.chunks.len() >= 3),
                "{:?}",
                c.chunked.iter().map(|s| s.chunks.len()).collect::<Vec<_>>()
            );
            assert_eq!(shown(c), shown(w));
        }
        // the fixture exercises what must stay the same
        let text = shown(&whole[0]).join("\n");
        for needle in [
            "shop_b.csv` column `value`: row 1",
            "series `visits{region=us}`",
            "warning: source `shop`: series `orders{region=apac}`",
            "series `errors{region=mena}`: 1 row(s) dated after",
            "check: Seasonal",
        ] {
            assert!(text.contains(needle), "{needle} not in\n{text}");
        }
        assert!(
            whole[0].detection.dropped_by_fdr > 0,
            "FDR dropped nothing:\n{text}"
        );
        let late: Vec<String> = whole[1]
            .detection
            .findings
            .iter()
            .filter(|f| f.hit.check == crate::model::Check::Late)
            .map(|f| f.key.to_string())
            .collect();
        assert_eq!(late, ["errors{region=nordics}"]);
    }

    /// `check-sources` under a memory budget reads a large source chunk by
    /// chunk and says what it says of the whole source: the same series and
    /// rows, the same newest timestamp, the same problems in the same order.
    #[test]
    fn check_sources_under_a_budget_says_what_it_says_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = fixture(dir.path());
        let at = "2024-07-10T08:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let lines = |cfg: &Config| -> Vec<String> {
            check_sources(cfg, at)
                .into_iter()
                .map(|(name, r)| match r {
                    Ok(line) => format!("{name}: {line}"),
                    Err(es) => format!("{name}: {es:?}"),
                })
                .collect()
        };
        let whole = lines(&cfg);
        let text = whole.join("\n");
        assert!(
            text.contains("problem(s)"),
            "the fixture has problems:\n{text}"
        );
        cfg.detection.memory_budget = Some(150 * ROW_BYTES_AT_PEAK);
        let limit = cfg.detection.memory_budget.map(chunk_rows);
        for s in &cfg.sources {
            let window = query_window(s, at, Window::Latest);
            let held = source::load_held(s, &window, limit).unwrap().0;
            assert!(
                matches!(held, Held::Chunked(c) if c.len() >= 3),
                "{} is chunked",
                s.name
            );
        }
        assert_eq!(lines(&cfg), whole);
    }

    /// Restated flagged values are found in a source evaluated in chunks as in
    /// a whole one: changed, gone and unchanged values, in several chunks.
    #[test]
    fn restatements_are_found_in_chunks_as_in_whole_sources() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = fixture(dir.path());
        let mut whole = evaluate(&cfg, Window::Dates(None, None), None, &[], &|_, _| {});
        // from every fifth series: its 10th point unchanged, its 20th changed,
        // a period between two points (gone)
        let mut flagged = Vec::new();
        for b in &whole.batches {
            for s in b.series.iter().step_by(5) {
                let (ts, v) = (b.ts_of(s), b.values_of(s));
                if ts.len() < 30 {
                    continue;
                }
                let flag = |t: i64, value: f64| Flagged {
                    source: b.source.clone(),
                    key: s.key.clone(),
                    ts: t,
                    value,
                    explained: false,
                };
                flagged.push(flag(ts[10], v[10]));
                flagged.push(flag(ts[20], v[20] + 1.0));
                flagged.push(flag(ts[25] + 1, 5.0));
            }
        }
        let expected = restated(&mut whole, &flagged);
        assert!(expected.len() >= 6, "{expected:?}");
        assert!(
            expected.iter().any(|f| f.hit.value.is_nan()),
            "a gone value"
        );
        cfg.detection.memory_budget = Some(150 * ROW_BYTES_AT_PEAK);
        let mut chunked = evaluate(&cfg, Window::Dates(None, None), None, &[], &|_, _| {});
        assert!(chunked.batches.is_empty());
        assert!(chunked.chunked.iter().all(|c| c.chunks.len() >= 3));
        let found = restated(&mut chunked, &flagged);
        let show = |f: &[Finding]| f.iter().map(|f| format!("{f:?}")).collect::<Vec<_>>();
        assert_eq!(show(&found), show(&expected));
    }
}
