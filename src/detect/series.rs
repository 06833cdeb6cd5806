//! The per-series kernel's interface: what one causal pass over a series'
//! contiguous slice takes ([`SeriesInput`], the owners' [`Explained`] spans),
//! what it gives (`model::Hit`s in a [`SeriesOutput`], and with
//! [`evaluate_from`] the [`KernelState`] to resume from next time).
//!
//! For every point the walk ([`super::kernel`]) predicts the value from
//! history only (weekly / hour-of-week shape, robust level with trend, robust
//! noise scale with a fitted tail), then tests the point, applies the holiday
//! calendar and declared events, follows level shifts (re-anchoring the
//! baseline once, at onset), applies the owners' explanations, and runs the
//! data-health checks. Nothing looks at a later point than the one being
//! evaluated, so a finding at `t` depends only on data at or before `t`.

use super::calendar::Calendar;
use super::kernel::KernelState;
use super::kernel::SeriesContext;
use crate::config::{EventConfig, MetricRule};
use crate::model::{ExplainedSpan, Granularity, Hit};

/// One series and how to evaluate it.
pub struct SeriesInput<'a> {
    /// Timestamps, ascending, no duplicates.
    pub ts: &'a [i64],
    /// Values, finite.
    pub values: &'a [f64],
    /// Spacing.
    pub granularity: Granularity,
    /// The metric's rule.
    pub rule: &'a MetricRule,
    /// Holiday calendar for this series.
    pub calendar: &'a Calendar,
    /// Events that concern this series.
    pub events: Vec<&'a EventConfig>,
    /// Owners' explanations of this series' points.
    pub explained: &'a Explained,
    /// First timestamp to report on (inclusive).
    pub from: i64,
    /// Last timestamp to report on (inclusive).
    pub to: i64,
    /// Newest timestamp of the whole source (for trailing missing periods).
    pub end_ts: i64,
}

/// Owners' explanations of one series, as the kernel walks them: two lists of
/// disjoint, ascending, inclusive `[from, to]` timestamp intervals. Built once
/// per series before the kernel runs, so a point costs a cursor step, not a search.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Explained {
    /// Points that never feed the baseline (data issue, known event, one-off).
    pub(super) exclude: Vec<(i64, i64)>,
    /// Stretches whose level is the new normal: re-anchor at the first point,
    /// then learn from them without reporting them.
    pub(super) accept: Vec<(i64, i64)>,
}

impl Explained {
    /// No explanations.
    pub const NONE: Explained = Explained {
        exclude: Vec::new(),
        accept: Vec::new(),
    };

    /// The spans' effect on the baseline, merged into disjoint intervals. A span
    /// that accepts a new level wins over its cause (a data issue accepted as the
    /// new normal is the new normal: excluding it would keep the old level and
    /// alert on every later point); spans without either effect are ignored.
    pub fn from_spans<'a>(spans: impl IntoIterator<Item = &'a ExplainedSpan>) -> Explained {
        let mut out = Explained::default();
        for s in spans {
            if s.to_ts < s.from_ts {
                continue;
            }
            if s.accepts_new_level() {
                out.accept.push((s.from_ts, s.to_ts));
            } else if s.excludes_from_baseline() {
                out.exclude.push((s.from_ts, s.to_ts));
            }
        }
        merge(&mut out.exclude);
        merge(&mut out.accept);
        out
    }

    /// True when no span affects the series.
    pub fn is_empty(&self) -> bool {
        self.exclude.is_empty() && self.accept.is_empty()
    }
}

/// Sort intervals and merge the overlapping or touching ones.
fn merge(v: &mut Vec<(i64, i64)>) {
    v.sort_unstable();
    let mut w = 0;
    for r in 0..v.len() {
        let (a, b) = v[r];
        if w > 0 && a <= v[w - 1].1.saturating_add(1) {
            v[w - 1].1 = v[w - 1].1.max(b);
        } else {
            v[w] = (a, b);
            w += 1;
        }
    }
    v.truncate(w);
}

/// What one series produced.
#[derive(Debug, Default)]
pub struct SeriesOutput {
    /// Findings, in time order.
    pub hits: Vec<Hit>,
    /// First timestamp that was statistically evaluated in range.
    pub first_eval: Option<i64>,
    /// Last timestamp that was statistically evaluated in range.
    pub last_eval: Option<i64>,
    /// Points evaluated in range.
    pub evaluated: usize,
}

/// Evaluate one series: a full walk, nothing kept.
pub fn evaluate(inp: &SeriesInput<'_>) -> SeriesOutput {
    evaluate_from(inp, None, None).out
}

/// The fields of every component of [`KernelState`], as text: the Debug
/// form of the states a tiny daily and a tiny hourly walk leave (field names
/// and nesting; the values are fixed). Part of every checkpoint's
/// fingerprint, so a component that gains, loses or renames a field makes
/// stored states of the old layout unused even when
/// [`super::checkpoint::VERSION`] was not bumped.
pub fn layout() -> String {
    let rule = MetricRule::default_rule();
    let cal = Calendar::none();
    let ys = [1.0, 2.0, 3.0];
    [Granularity::Day, Granularity::Hour]
        .iter()
        .map(|&g| {
            let step = g.step_ms();
            let ts = [0, step, 2 * step];
            let input = SeriesInput {
                ts: &ts,
                values: &ys,
                granularity: g,
                rule: &rule,
                calendar: &cal,
                events: Vec::new(),
                explained: &Explained::NONE,
                from: i64::MAX,
                to: i64::MAX,
                end_ts: ts[2],
            };
            format!("{:?}", evaluate_from(&input, None, Some(3)).state)
        })
        .collect::<Vec<_>>()
        .join("|")
}

/// What [`evaluate_from`] produced.
#[derive(Debug, Default)]
pub struct Walk {
    /// Findings and counts, as [`evaluate`] gives them.
    pub out: SeriesOutput,
    /// The walk started from the given state (false: from point 0).
    pub resumed: bool,
    /// The state before point `save_at`, when asked for and reached.
    pub state: Option<KernelState>,
}

/// Evaluate one series, starting from `resume` (the state a walk over the
/// same first points left, see [`KernelState`]) when it fits, else from
/// point 0; with `save_at = Some(k)`, also return the state before point `k`
/// (`k <= n`). Invariant: for a state saved at `k` by a walk whose report
/// range started after `ts[k - 1]`, resuming a walk over the same points
/// `0..k` (plus any later ones) whose range also starts after `ts[k - 1]`
/// gives exactly the findings of a full walk, bit for bit: the state is
/// everything the walk carries from point to point, and points before `k`
/// report nothing in either. The caller checks that the first `k` points are
/// the same ones.
pub fn evaluate_from(
    inp: &SeriesInput<'_>,
    resume: Option<KernelState>,
    save_at: Option<usize>,
) -> Walk {
    let n = inp.ts.len();
    if n == 0 {
        return Walk::default();
    }
    let cx = SeriesContext::new(inp);
    let resumed = resume.and_then(|s| s.resumed(&cx));
    let was_resumed = resumed.is_some();
    let mut state = resumed.unwrap_or_else(|| KernelState::new(&cx));
    state.spread_yoy_errors(&cx);
    let start = state.next();
    let save_at = save_at.filter(|&k| k > 0 && k <= n && k >= start);
    let mut out = SeriesOutput::default();
    let mut saved: Option<KernelState> = None;
    for i in start..n {
        if save_at == Some(i) {
            saved = Some(state.checkpoint(&cx));
        }
        state.step(&cx, i, &mut out);
    }
    if save_at == Some(n) {
        saved = Some(state.checkpoint(&cx));
    }
    state.report_stopped(&cx, &mut out);
    Walk {
        out,
        resumed: was_resumed,
        state: saved,
    }
}
