//! Pure statistics: batches of series + rules → findings. No I/O, no clock.
//!
//! [`detect`] runs the per-series kernel ([`series::evaluate`]) over every
//! series' contiguous slice in parallel, then controls the false-discovery
//! rate across all series evaluated at the same time (one run of the daemon),
//! with Benjamini–Hochberg at the configured level. Data-health findings
//! (missing, stale, outage, bounds, max change) are certain and skip that step.
//! Owners' explanations come in as data ([`ExplainedSpan`]s), cut per series
//! once before the parallel pass.

pub mod burst;
pub mod calendar;
pub mod checkpoint;
pub mod counts;
#[cfg(test)]
mod habit_tests;
pub mod health;
pub mod kernel;
pub mod level;
pub mod noise;
pub mod pattern;
pub mod profile;
pub mod ramp;
pub mod seasonal;
pub mod series;
pub mod shift;
pub mod stats;
#[cfg(test)]
mod tests;
pub mod yoy;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

use crate::batch::Batch;
use crate::config::{Config, EventConfig};
use crate::model::Evaluated;
use crate::model::{Checkpoint, ExplainedSpan, Finding, Granularity, SeriesKey};
use calendar::Calendar;

/// Which timestamps to report on (inclusive, wall-clock ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// First timestamp reported.
    pub from: i64,
    /// Last timestamp reported.
    pub to: i64,
}

impl Range {
    /// Every timestamp.
    pub const ALL: Range = Range {
        from: i64::MIN,
        to: i64::MAX,
    };
}

/// The points of one series inside its report range: what a run reported
/// on, whether or not each point could be tested (warm-up, an outage).
#[derive(Debug, Clone, PartialEq)]
pub struct Reported {
    /// Source name.
    pub source: String,
    /// The series.
    pub key: SeriesKey,
    /// Its granularity.
    pub granularity: Granularity,
    /// First point in range.
    pub first_ts: i64,
    /// Last point in range.
    pub last_ts: i64,
    /// Points in range.
    pub periods: usize,
}

/// Everything one detection pass produced.
#[derive(Debug, Default)]
pub struct Detection {
    /// Findings after false-discovery-rate control, ordered by source, series, time.
    pub findings: Vec<Finding>,
    /// Series that were evaluated in range.
    pub evaluated: Vec<Evaluated>,
    /// Series with points in their report range, and which.
    pub reported: Vec<Reported>,
    /// Statistical candidates dropped by the FDR step.
    pub dropped_by_fdr: usize,
    /// New detector states, when asked for ([`Resume::save`]).
    pub checkpoints: Vec<Checkpoint>,
    /// Series resumed from a stored state.
    pub resumed: usize,
    /// Series walked from their first point.
    pub walked: usize,
}

/// Detector states in and out of one pass ([`checkpoint`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Resume<'a> {
    /// Stored states per batch, in series order (missing or `None`: walk fully).
    pub prior: &'a [Vec<Option<Checkpoint>>],
    /// Keep each series' state before its report range, for the next run.
    pub save: bool,
    /// Per batch, in series order: the first timestamp each series reports
    /// (a scheduled run's catch-up: after the last period reported before).
    /// Missing: the batch's range's `from`.
    pub report_from: &'a [Vec<i64>],
}

fn dims_match(dims: &[(String, String)], key: &SeriesKey) -> bool {
    dims.iter().all(|(k, v)| key.dim(k) == Some(v.as_str()))
}

/// Calendars compiled from config, resolved per series.
/// A configured calendar: the dimension values it applies to, its name, the calendar.
type NamedCalendar = (Vec<(String, String)>, String, Calendar);

struct Calendars {
    configured: Vec<NamedCalendar>,
    default: Calendar,
}

impl Calendars {
    fn new(cfg: &Config) -> Calendars {
        let configured: Vec<_> = cfg
            .calendars
            .iter()
            .map(|c| (c.dims.clone(), c.name.clone(), Calendar::from_config(c)))
            .collect();
        let default = match cfg.detection.default_calendar.as_str() {
            "none" => Calendar::none(),
            "default" => Calendar::default_calendar(),
            name => configured
                .iter()
                .find(|(_, n, _)| n == name)
                .map(|(_, _, c)| c.clone())
                .unwrap_or_else(Calendar::default_calendar),
        };
        Calendars {
            configured,
            default,
        }
    }

    fn for_series(&self, key: &SeriesKey) -> &Calendar {
        self.configured
            .iter()
            .find(|(d, _, _)| !d.is_empty() && dims_match(d, key))
            .map(|(_, _, c)| c)
            .unwrap_or(&self.default)
    }
}

/// Detect over every series of every batch; report points of `batches[i]`
/// inside `ranges[i]`. `explained` are the owners' explanations (matched to a
/// series by source and key; others are ignored). `progress` is called with
/// (series done, series in all).
pub fn detect(
    batches: &[Batch],
    cfg: &Config,
    ranges: &[Range],
    explained: &[ExplainedSpan],
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Detection {
    // newest timestamp per batch, once (every series of a batch needs it)
    let newest: Vec<i64> = batches
        .iter()
        .map(|b| b.newest().unwrap_or(i64::MIN))
        .collect();
    let mut c = Candidates::default();
    c.add(
        batches,
        &newest,
        cfg,
        ranges,
        explained,
        Resume::default(),
        progress,
    );
    c.decide(cfg.detection.fdr)
}

/// Findings before false-discovery-rate control, gathered batch by batch
/// (a source evaluated in chunks adds one chunk at a time), then decided
/// together by [`Candidates::decide`]: FDR holds across every series.
#[derive(Debug, Default)]
pub struct Candidates {
    /// Each evaluated series' first and last evaluated timestamp: how many
    /// series were tested at a timestamp.
    intervals: Vec<(i64, i64)>,
    /// Every hit, statistical ones with their p-values still to be decided.
    findings: Vec<Finding>,
    /// Series evaluated in range.
    evaluated: Vec<Evaluated>,
    /// Series with points in their report range.
    reported: Vec<Reported>,
    /// New detector states.
    checkpoints: Vec<Checkpoint>,
    /// Series resumed from a stored state.
    resumed: usize,
    /// Series walked from their first point.
    walked: usize,
}

impl Candidates {
    /// Run the kernel over every series of `batches`, reporting points of
    /// `batches[i]` inside `ranges[i]`; `newest[i]` is the newest timestamp
    /// of the whole source `batches[i]` belongs to; `resume` the stored
    /// states to start from and whether to keep new ones. See [`detect`].
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &mut self,
        batches: &[Batch],
        newest: &[i64],
        cfg: &Config,
        ranges: &[Range],
        explained: &[ExplainedSpan],
        resume: Resume<'_>,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) {
        let results = run_kernels(batches, newest, cfg, ranges, explained, resume, progress);
        for (b, s, walk) in results {
            let batch = &batches[b];
            let info = &batch.series[s];
            if walk.resumed {
                self.resumed += 1;
            } else {
                self.walked += 1;
            }
            self.checkpoints.extend(walk.checkpoint);
            let ts = batch.ts_of(info);
            let a = ts.partition_point(|&t| t < walk.range.from);
            let z = ts.partition_point(|&t| t <= walk.range.to);
            if z > a {
                self.reported.push(Reported {
                    source: batch.source.clone(),
                    key: info.key.clone(),
                    granularity: info.granularity,
                    first_ts: ts[a],
                    last_ts: ts[z - 1],
                    periods: z - a,
                });
            }
            let o = walk.out;
            if let (Some(a), Some(z)) = (o.first_eval, o.last_eval) {
                self.intervals.push((a, z));
            }
            if let Some(last) = o.last_eval {
                self.evaluated.push(Evaluated {
                    source: batch.source.clone(),
                    key: info.key.clone(),
                    last_ts: last,
                    step_ms: info.granularity.step_ms(),
                    points: o.evaluated,
                });
            }
            self.findings.extend(o.hits.into_iter().map(|hit| Finding {
                source: batch.source.clone(),
                key: info.key.clone(),
                granularity: info.granularity,
                hit,
            }));
        }
    }

    /// The new detector states made so far, handed over (a run saves them
    /// per batch or chunk instead of holding every series' until the end).
    pub fn take_checkpoints(&mut self) -> Vec<Checkpoint> {
        std::mem::take(&mut self.checkpoints)
    }

    /// Benjamini–Hochberg at `fdr` per timestamp over everything added: all
    /// series evaluated at t form one run. Data-health findings are certain
    /// and pass as they are.
    pub fn decide(self, fdr: f64) -> Detection {
        let mut by_ts: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
        for f in &self.findings {
            if !f.hit.check.is_data_health() {
                by_ts.entry(f.hit.ts).or_default().push(f.hit.p_value);
            }
        }
        let mut starts: Vec<i64> = self.intervals.iter().map(|i| i.0).collect();
        let mut ends: Vec<i64> = self.intervals.iter().map(|i| i.1).collect();
        starts.sort_unstable();
        ends.sort_unstable();
        let cutoffs: BTreeMap<i64, f64> = by_ts
            .into_iter()
            .map(|(t, mut ps)| {
                let m = starts.partition_point(|&s| s <= t) - ends.partition_point(|&e| e < t);
                ps.sort_by(f64::total_cmp);
                let k = stats::bh_cutoff(&ps, m, fdr);
                (t, if k == 0 { -1.0 } else { ps[k - 1] })
            })
            .collect();
        let mut det = Detection {
            evaluated: self.evaluated,
            reported: self.reported,
            checkpoints: self.checkpoints,
            resumed: self.resumed,
            walked: self.walked,
            ..Detection::default()
        };
        for f in self.findings {
            if !f.hit.check.is_data_health()
                && f.hit.p_value > cutoffs.get(&f.hit.ts).copied().unwrap_or(-1.0)
            {
                det.dropped_by_fdr += 1;
                continue;
            }
            det.findings.push(f);
        }
        det
    }
}

/// One series' walk as [`run_kernels`] returns it.
struct SeriesWalk {
    out: series::SeriesOutput,
    /// The series' report range.
    range: Range,
    resumed: bool,
    checkpoint: Option<Checkpoint>,
}

/// The kernel over every series of `batches`, in parallel: (batch, series,
/// walk) in batch and series order.
fn run_kernels(
    batches: &[Batch],
    newest: &[i64],
    cfg: &Config,
    ranges: &[Range],
    explained: &[ExplainedSpan],
    resume: Resume<'_>,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Vec<(usize, usize, SeriesWalk)> {
    let cals = Calendars::new(cfg);
    let prints = checkpoint::Fingerprints::new(cfg);
    let mut spans_of: HashMap<(&str, &SeriesKey), Vec<&ExplainedSpan>> = HashMap::new();
    for e in explained {
        spans_of
            .entry((e.source.as_str(), &e.key))
            .or_default()
            .push(e);
    }
    let explained_of: HashMap<(&str, &SeriesKey), series::Explained> = spans_of
        .into_iter()
        .map(|(k, v)| (k, series::Explained::from_spans(v)))
        .collect();
    let unexplained = series::Explained::NONE;
    let done = AtomicUsize::new(0);
    let jobs: Vec<(usize, usize)> = batches
        .iter()
        .enumerate()
        .flat_map(|(b, batch)| (0..batch.series.len()).map(move |s| (b, s)))
        .collect();
    jobs.par_iter()
        .map(|&(b, s)| {
            let batch = &batches[b];
            let info = &batch.series[s];
            let events: Vec<&EventConfig> = cfg
                .events
                .iter()
                .filter(|e| e.pattern.matches(&info.key.metric) && dims_match(&e.dims, &info.key))
                .collect();
            let mut range = ranges.get(b).copied().unwrap_or(Range::ALL);
            if let Some(&from) = resume.report_from.get(b).and_then(|f| f.get(s)) {
                range.from = from;
            }
            let end_ts = newest.get(b).copied().unwrap_or(i64::MIN).min(range.to);
            let (ts, values) = (batch.ts_of(info), batch.values_of(info));
            let rule = cfg.rule_for(&info.key.metric);
            let explained = explained_of
                .get(&(batch.source.as_str(), &info.key))
                .unwrap_or(&unexplained);
            let prior = resume
                .prior
                .get(b)
                .and_then(|p| p.get(s))
                .and_then(Option::as_ref);
            // the fingerprint only when a state is read or written
            let fingerprint = (prior.is_some() || resume.save)
                .then(|| prints.of(rule, info.granularity, explained));
            let mut prefix = checkpoint::Prefix::new(ts, values);
            let state = prior
                .zip(fingerprint)
                .filter(|&(c, f)| checkpoint::fits(c, f, &mut prefix, range.from))
                .and_then(|(c, _)| checkpoint::decode(&c.state));
            // the state before the first reported point: the points after it
            // are walked again next run (with a later range they report nothing)
            let save_at = resume
                .save
                .then(|| ts.partition_point(|&t| t < range.from))
                .filter(|&k| k > 0);
            let input = series::SeriesInput {
                ts,
                values,
                granularity: info.granularity,
                rule,
                calendar: cals.for_series(&info.key),
                events,
                explained,
                from: range.from,
                to: range.to,
                end_ts,
            };
            let walk = series::evaluate_from(&input, state, save_at);
            let checkpoint = walk.state.zip(fingerprint).map(|(st, fingerprint)| {
                let k = st.next();
                Checkpoint {
                    source: batch.source.clone(),
                    key: info.key.clone(),
                    version: checkpoint::VERSION,
                    fingerprint,
                    points: k,
                    last_ts: ts[k - 1],
                    prefix_hash: prefix.hash(k),
                    state: checkpoint::encode(&st),
                }
            });
            progress(done.fetch_add(1, Ordering::Relaxed) + 1, jobs.len());
            let w = SeriesWalk {
                out: walk.out,
                range,
                resumed: walk.resumed,
                checkpoint,
            };
            (b, s, w)
        })
        .collect()
}

/// Series whose newest point is older than `now` allows: the period after it
/// ended more than `delay_ms` ago. `now` is wall-clock ms in the source's timezone.
pub fn late(batch: &Batch, now: i64, delay_ms: i64, period_end: bool) -> Vec<Finding> {
    batch
        .series
        .iter()
        .filter_map(|info| {
            let ts = batch.ts_of(info);
            let last = *ts.last()?;
            let step = info.granularity.step_ms();
            // the period after the newest one must have ended `delay_ms` ago
            let due = last + step + info.granularity.ends_after(period_end) + delay_ms;
            (now > due).then(|| {
                Finding::late(
                    &batch.source,
                    info.key.clone(),
                    info.granularity,
                    last + step,
                    ts.len(),
                    format!(
                        "newest data is for {}; expected by now",
                        crate::model::format_ts(last, info.granularity)
                    ),
                )
            })
        })
        .collect()
}
