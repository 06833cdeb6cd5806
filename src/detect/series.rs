//! The per-series kernel: one causal pass over a series' contiguous slice.
//!
//! For every point it predicts the value from history only (weekly / hour-of-week
//! shape, robust level with trend, robust noise scale with a fitted tail), then
//! tests the point, applies the holiday calendar and declared events, follows
//! level shifts (re-anchoring the baseline once, at onset), applies the owners'
//! explanations ([`Explained`]), and runs the data-health checks. Nothing here
//! looks at a later point than the one being evaluated, so a finding at `t`
//! depends only on data at or before `t`.

use std::collections::HashMap;

use chrono::{Duration, NaiveDate};

use super::burst::{self, BurstWatch};
use super::calendar::Calendar;
use super::health::{Health, HealthContext};
use super::level::{Level, LevelPoint};
use super::noise::Noise;
use super::pattern::{self, ShapeWatch};
use super::profile;
use super::ramp::{self, RampWatch};
use super::seasonal::SeasonalProfile;
use super::shift::{self as shift_detector, ShiftDetector};
use super::stats::{self, median_of};
use super::yoy::{self, YearOverYear};
use crate::config::{EventAction, EventConfig, MetricRule, Scale};
use crate::model::{Check, Direction, ExplainedSpan, Granularity, date_ms};

use crate::model::MS_PER_DAY as DAY_MS;
/// Deviation (robust SD units) at sensitivity 1: the normal-tail probability of
/// 3.5 SDs (2.3e-4 per point, two-sided), further tightened by the fitted tail
/// family and by FDR control across series. Sub-daily series.
pub const BASE_THRESHOLD: f64 = 3.5;
/// The same for daily and weekly series (9e-5 per point): their noise scale is
/// measured over a longer window, so an owner's alert costs a larger deviation
/// (business bench: false alerts −25 % for 1 % of recall).
pub const BUSINESS_THRESHOLD: f64 = 3.75;
/// Noise multiplier for a holiday compared with the same holiday last year: last
/// year's residual carries its own noise and the drift of a baseline projected
/// across the holiday stretch, in both years.
const HOLIDAY_SCALE: f64 = 3.0;
/// Points beyond this many robust SDs are kept out of the baseline.
const ACCEPT_U: f64 = 3.0;
/// Hourly data: the largest threshold (noise units at sensitivity 1) any tail
/// family gets once the per-point rate is divided by the points per day
/// (finer data: × (points per day / 24)^0.4, 54 for 5-minute data).
const SUBDAILY_MAX_THRESHOLD: f64 = 20.0;

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

/// Walks a list of disjoint ascending intervals along ascending timestamps.
struct Cursor<'a> {
    spans: &'a [(i64, i64)],
    at: usize,
}

impl Cursor<'_> {
    /// Index of the interval containing `t`; `t` must not decrease between calls.
    fn covering(&mut self, t: i64) -> Option<usize> {
        while self.spans.get(self.at).is_some_and(|s| s.1 < t) {
            self.at += 1;
        }
        self.spans
            .get(self.at)
            .is_some_and(|s| s.0 <= t)
            .then_some(self.at)
    }
}

/// A finding before the series key is attached.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// Time of the point.
    pub ts: i64,
    /// Observed value (NaN when missing).
    pub value: f64,
    /// Expected value.
    pub expected: f64,
    /// Lower end of the normal range.
    pub lower: f64,
    /// Upper end of the normal range.
    pub upper: f64,
    /// Signed deviation in robust noise units.
    pub score: f64,
    /// p-value of the deviation (0 for data-health checks).
    pub p_value: f64,
    /// Up or down.
    pub direction: Direction,
    /// Which check.
    pub check: Check,
    /// Week-over-week change in percent.
    pub wow_pct: Option<f64>,
    /// Year-over-year (364 days) change in percent.
    pub yoy_pct: Option<f64>,
    /// Points of history before this one.
    pub history: usize,
    /// Holiday or event name.
    pub note: Option<String>,
}

impl Hit {
    /// A finding of `check` at point `history` (`ts`, `value`) with nothing
    /// else known yet: no expectation, band, score or comparisons.
    pub fn blank(ts: i64, value: f64, check: Check, history: usize) -> Hit {
        Hit {
            ts,
            value,
            expected: f64::NAN,
            lower: f64::NAN,
            upper: f64::NAN,
            score: 0.0,
            p_value: 0.0,
            direction: Direction::Up,
            check,
            wow_pct: None,
            yoy_pct: None,
            history,
            note: None,
        }
    }
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

struct Shape {
    period: usize,
    /// Weeks of history each slot of the seasonal profile keeps.
    profile_cycles: usize,
    /// Level and profile as trimmed means (daily, weekly) rather than medians:
    /// a quarter cut off each side keeps them robust to an outlier or two, and
    /// the rest averaged has less error than the median of a few points.
    trimmed: bool,
    /// Point-test threshold at sensitivity 1.
    threshold: f64,
    /// How the year-over-year component is used.
    yoy: YoyUse,
    /// Run the weekly-shape test (daily data with a weekday profile).
    weekday_shape: bool,
    offset: i64,
    n_level: usize,
    n_half: usize,
    scale_n: usize,
    warmup: usize,
    shift_run: usize,
}

/// How the year-over-year component enters the expected value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum YoyUse {
    /// Not at all (sub-daily: short histories, no yearly cycle to speak of).
    Off,
    /// While it has recently predicted clearly better (daily: a local level
    /// follows a yearly cycle closely, so the correction must earn its place).
    Gated,
    /// Whenever last year is there (weekly: a few points of level history lag
    /// behind every turn of the yearly cycle).
    Always,
}

fn shape(g: Granularity, rule: &MetricRule) -> Shape {
    let ppd = g.points_per_day();
    let seasonal = rule.seasonality && g != Granularity::Week;
    let period = if seasonal { 7 * ppd } else { 1 };
    let (n_level, n_half, scale_n, warmup, shift_run) = match g {
        // noise over ~300 days / a year: a MAD of 56 points is off by ±15 %,
        // and an underestimate turns 3.5 SDs into 3
        Granularity::Day => (7, 14, 300, 28, 3),
        Granularity::Week => (4, 8, 52, 13, 2),
        // sub-daily: the day profile is usable after two days (detect::profile);
        // a lasting change is followed after half an hour (3 hours at least 3 points)
        _ => {
            let n = ppd.min(48);
            (
                n,
                2 * n,
                (8 * period).min(1008),
                profile::MIN_DAYS * ppd,
                (ppd / 48).max(3),
            )
        }
    };
    let business = matches!(g, Granularity::Day | Granularity::Week);
    Shape {
        period,
        profile_cycles: if business { 12 } else { 8 },
        trimmed: business,
        threshold: if business {
            BUSINESS_THRESHOLD
        } else {
            BASE_THRESHOLD
        },
        yoy: match g {
            Granularity::Day => YoyUse::Gated,
            Granularity::Week => YoyUse::Always,
            _ => YoyUse::Off,
        },
        weekday_shape: g == Granularity::Day && period == 7,
        offset: 3 * ppd as i64,
        n_level,
        n_half,
        scale_n,
        warmup: rule.min_history.unwrap_or(warmup).max(n_level + 1),
        shift_run,
    }
}

fn local_date(ms: i64) -> Option<NaiveDate> {
    chrono::DateTime::from_timestamp_millis(ms).map(|d| d.date_naive())
}

/// Value at exactly `t` among `ts[..upto]`, if present.
fn value_at(ts: &[i64], values: &[f64], upto: usize, t: i64) -> Option<f64> {
    ts[..upto].binary_search(&t).ok().map(|j| values[j])
}

fn pct(now: f64, then: Option<f64>) -> Option<f64> {
    then.filter(|p| *p != 0.0).map(|p| (now / p - 1.0) * 100.0)
}

/// Point `j` with `ts[j] <= t < ts[j] + step` among `ts[..upto]`.
fn point_covering(ts: &[i64], upto: usize, t: i64, step: i64) -> Option<usize> {
    let k = ts[..upto].partition_point(|&x| x <= t);
    (k > 0 && t < ts[k - 1] + step).then(|| k - 1)
}

/// Evaluate one series: a full walk, nothing kept.
pub fn evaluate(inp: &SeriesInput<'_>) -> SeriesOutput {
    evaluate_from(inp, None, None).out
}

/// Everything the walk over points `0..next` of a series left behind, so that
/// a later walk can start at `next` instead of 0 and find exactly what a full
/// walk finds (see [`evaluate_from`]). Plain owned data, serde-encoded by
/// `detect::checkpoint`; the component structs keep their own fields.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct KernelState {
    /// Points walked: the next walk starts here.
    next: usize,
    /// The scale and noise floor decided from the first points (they must
    /// come out the same from the resumed walk's data, else it walks fully).
    use_log: bool,
    integral: bool,
    lvl: Level,
    seasonal: SeasonalProfile,
    noise: Noise,
    yoy_model: YearOverYear,
    /// `yoy_err[yoy_from..next]`: only the errors a later point can read
    /// (a year and a window back from the last walked point).
    yoy_from: usize,
    yoy_err: Vec<f64>,
    settling: usize,
    shape_watch: ShapeWatch,
    last_shape_hit: Option<i64>,
    shifts: ShiftDetector,
    /// Holiday residuals by timestamp, those of the last two years (a
    /// holiday is compared with the same holiday one year back).
    holiday_resid: HashMap<i64, f64>,
    hol_run: (String, Vec<f64>),
    health: Health,
    last_expected: f64,
    bursts: Option<BurstWatch>,
    ramps: Option<RampWatch>,
    top: f64,
    cap: Option<f64>,
    pinned_at: i64,
    /// Positions of the explanation cursors (the explanations themselves are
    /// part of the checkpoint's fingerprint).
    excluded_at: usize,
    accepted_at: usize,
    anchored: Option<usize>,
}

impl KernelState {
    /// Points walked: a resumed walk starts at this index.
    pub fn next(&self) -> usize {
        self.next
    }
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

/// How far back holiday residuals are kept in a checkpoint: last year's
/// same holiday is at most a year and some weeks before this year's.
const HOLIDAY_KEEP_MS: i64 = 2 * 366 * DAY_MS;

/// Evaluate one series, starting from `resume` (the state a walk over the
/// same first points left, see [`KernelState`]) when it fits, else from
/// point 0; with `save_at = Some(k)`, also return the state before point `k`
/// (`k <= n`). Invariant: for a state saved at `k` by a walk whose report
/// range started after `ts[k - 1]`, resuming a walk over the same points
/// `0..k` (plus any later ones) whose range also starts after `ts[k - 1]`
/// gives exactly the findings of a full walk, bit for bit: the state is every
/// mutable variable of the walk, and points before `k` report nothing in
/// either. The caller checks that the first `k` points are the same ones.
pub fn evaluate_from(
    inp: &SeriesInput<'_>,
    resume: Option<KernelState>,
    save_at: Option<usize>,
) -> Walk {
    let ts = inp.ts;
    let ys = inp.values;
    let n = ts.len();
    if n == 0 {
        return Walk::default();
    }
    let mut out = SeriesOutput::default();
    let mut saved: Option<KernelState> = None;
    let g = inp.granularity;
    let step = g.step_ms();
    let ppd = g.points_per_day();
    let rule = inp.rule;
    let sh = shape(g, rule);
    let seasonal_check = if sh.period > 1 {
        Check::Seasonal
    } else {
        Check::Variance
    };

    let warm = &ys[..n.min(sh.warmup)];
    let use_log = match rule.scale {
        Scale::Log => true,
        Scale::Linear => false,
        Scale::Auto => warm.iter().all(|&y| y > 0.0),
    };
    let integral = warm.iter().all(|y| y.fract() == 0.0);
    let tr = |y: f64| if use_log { y.ln() } else { y };
    let inv = |x: f64| if use_log { x.exp() } else { x };
    // Noise floor: counts cannot be more precise than Poisson noise.
    let floor = |e: f64| -> f64 {
        if use_log {
            let ey = e.exp();
            if integral {
                (1.0 / ey.max(1.0)).sqrt().max(1e-3)
            } else {
                1e-3
            }
        } else if integral {
            e.abs().max(1.0).sqrt()
        } else {
            1e-6 * e.abs().max(1e-9)
        }
    };
    let z_thr = sh.threshold / rule.sensitivity;
    // Sub-daily data has `ppd` points a day: the per-point false-alarm rate is
    // divided by that, so an hourly or 5-minute series raises no more false
    // alarms a day than a daily one (4.3 SDs hourly, 4.8 for 5-minute data).
    let subdaily = ppd > 1;
    let alpha_two = 2.0 * stats::upper_tail(z_thr, f64::INFINITY) / ppd.max(1) as f64;
    let alpha_one = if rule.direction == Direction::Both {
        alpha_two / 2.0
    } else {
        alpha_two
    };
    // heavy tails at a sub-daily rate would ask for 50+ noise units (t3 hourly):
    // a deviation past the cap is reported whatever the family (a ninefold
    // jump on a steady hourly series is news); finer data, with more points a
    // day to fire on, gets a higher cap
    let cap = SUBDAILY_MAX_THRESHOLD * (ppd as f64 / 24.0).max(1.0).powf(0.4);
    let thresholds: Vec<f64> = stats::TAILS
        .iter()
        .map(|&df| {
            let thr = stats::threshold_for(alpha_one, df);
            if subdaily {
                thr.min(cap / rule.sensitivity)
            } else {
                thr
            }
        })
        .collect();
    // per tail family, once: the CUSUM's shrink of heavy-tailed residuals and
    // the burst watch's expected share of points beyond EXCEED_U
    let cusum_shrink: Vec<f64> = thresholds
        .iter()
        .map(|t| (thresholds[0] / t).sqrt())
        .collect();
    let burst_rate: Vec<f64> = stats::TAILS
        .iter()
        .map(|&df| 2.0 * stats::upper_tail(burst::EXCEED_U, df))
        .collect();

    let fresh = || KernelState {
        next: 0,
        use_log,
        integral,
        lvl: Level::new(sh.n_level, sh.n_half, sh.trimmed),
        seasonal: SeasonalProfile::new(
            step,
            sh.offset,
            sh.period,
            ppd,
            sh.profile_cycles,
            sh.trimmed,
        ),
        // noise scale and tail family. Weekly series start normal: they need more
        // than a year of points before the tail is fitted, and a heavy prior hid
        // their spikes all that time.
        noise: Noise::new(
            sh.scale_n,
            if g == Granularity::Week { 4 } else { 28 },
            if g == Granularity::Week {
                f64::INFINITY
            } else {
                stats::HEAVY_DF
            },
            subdaily,
        ),
        yoy_model: YearOverYear::for_step(step),
        yoy_from: 0,
        yoy_err: Vec::new(),
        settling: 0,
        shape_watch: ShapeWatch::default(),
        last_shape_hit: None,
        shifts: ShiftDetector::new(sh.shift_run),
        holiday_resid: HashMap::new(),
        hol_run: (String::new(), Vec::new()),
        health: Health::new(g, rule),
        last_expected: f64::NAN,
        bursts: subdaily.then(|| BurstWatch::new(BurstWatch::window_for(ppd))),
        ramps: subdaily.then(|| RampWatch::new(3 * sh.n_level / 2, ppd)),
        top: f64::NEG_INFINITY,
        cap: None,
        pinned_at: i64::MIN,
        excluded_at: 0,
        accepted_at: 0,
        anchored: None,
    };
    // a state fits when the first points decided the same scale and it ends
    // inside this series
    let resumed = resume.filter(|s| {
        s.use_log == use_log
            && s.integral == integral
            && s.next > 0
            && s.next <= n
            && s.yoy_from.saturating_add(s.yoy_err.len()) <= s.next
    });
    // what the encoding leaves out and the data or the state itself holds
    let resumed = resumed.and_then(|mut s| {
        s.noise.restore();
        s.health.restore(ys, s.next).then_some(s)
    });
    let was_resumed = resumed.is_some();
    let KernelState {
        next: start,
        use_log: _,
        integral: _,
        mut lvl,
        mut seasonal,
        mut noise,
        mut yoy_model,
        yoy_from,
        yoy_err: yoy_kept,
        mut settling,
        mut shape_watch,
        mut last_shape_hit,
        mut shifts,
        mut holiday_resid,
        mut hol_run,
        mut health,
        mut last_expected,
        mut bursts,
        mut ramps,
        mut top,
        mut cap,
        mut pinned_at,
        excluded_at: excluded_pos,
        accepted_at: accepted_pos,
        mut anchored,
    } = resumed.unwrap_or_else(fresh);
    // last year's errors of the local model, per point (NaN: not a baseline point)
    let mut yoy_err: Vec<f64> = if sh.yoy == YoyUse::Off {
        Vec::new()
    } else {
        let mut v = vec![f64::NAN; n];
        if let Some(dst) = v.get_mut(yoy_from..yoy_from + yoy_kept.len()) {
            dst.copy_from_slice(&yoy_kept);
        }
        v
    };
    // (`settling`: baseline points left before a relearned level's errors
    // count for next year; `hol_run`: residuals of the current stretch of one
    // holiday, in time order; `bursts`, `ramps`: sub-daily noise bursts and
    // slow ramps, detect::burst and detect::ramp.)
    // A sub-daily gauge pinned at a cap (a utilisation at 100 %): its highest
    // value so far (`top`), once it has repeated for `stale_periods`, is the
    // cap. A value at the cap only says "at least this much": it is not tested
    // and never feeds the baseline (the noise scale would collapse on the ties
    // and the level would learn the clipping). Counts have no cap. `pinned_at`:
    // the last time the cap was seen, since its clipping moves the level as a
    // ramp would.
    let mut buf: Vec<f64> = Vec::with_capacity(sh.scale_n.max(2 * sh.n_half));

    let in_range = |t: i64| t >= inp.from && t <= inp.to;
    // per-period false-alarm rate of the CUSUM on normal residuals
    let cusum_p = shift_detector::cusum_false_alarm_rate();
    let relearn_after_ms = if g == Granularity::Week {
        28 * DAY_MS
    } else {
        8 * DAY_MS
    };
    let mut excluded_at = Cursor {
        spans: &inp.explained.exclude,
        at: excluded_pos,
    };
    let mut accepted_at = Cursor {
        spans: &inp.explained.accept,
        at: accepted_pos,
    };
    // the state before point `k`, every mutable variable of the walk; what a
    // later point can no longer read is left out
    macro_rules! snapshot {
        ($k:expr) => {{
            let k: usize = $k;
            let last = ts[k - 1];
            let yoy_from =
                ts[..k].partition_point(|&x| x < last - yoy::YEAR_MS - yoy_model.half_ms());
            KernelState {
                next: k,
                use_log,
                integral,
                lvl: lvl.clone(),
                seasonal: seasonal.clone(),
                noise: noise.clone(),
                yoy_model: yoy_model.clone(),
                yoy_from: if yoy_err.is_empty() { 0 } else { yoy_from },
                yoy_err: yoy_err
                    .get(yoy_from..k)
                    .map(<[f64]>::to_vec)
                    .unwrap_or_default(),
                settling,
                shape_watch: shape_watch.clone(),
                last_shape_hit,
                shifts: shifts.clone(),
                holiday_resid: holiday_resid
                    .iter()
                    .filter(|&(&t, _)| t >= last - HOLIDAY_KEEP_MS)
                    .map(|(&t, &r)| (t, r))
                    .collect(),
                hol_run: hol_run.clone(),
                health: health.clone(),
                last_expected,
                bursts: bursts.clone(),
                ramps: ramps.clone(),
                top,
                cap,
                pinned_at,
                excluded_at: excluded_at.at,
                accepted_at: accepted_at.at,
                anchored,
            }
        }};
    }
    let save_at = save_at.filter(|&k| k > 0 && k <= n && k >= start);

    for i in start..n {
        if save_at == Some(i) {
            saved = Some(snapshot!(i));
        }
        let t = ts[i];
        let y = ys[i];
        let tu = t.div_euclid(step);
        let wow = || pct(y, value_at(ts, ys, i, t - 7 * DAY_MS));
        let yoy = || pct(y, value_at(ts, ys, i, t - 364 * DAY_MS));
        let base_hit = |check: Check| Hit {
            wow_pct: wow(),
            yoy_pct: yoy(),
            ..Hit::blank(t, y, check, i)
        };

        // --- data health -------------------------------------------------
        let eq_run = health.check(
            ts,
            ys,
            i,
            rule,
            &HealthContext {
                from: inp.from,
                to: inp.to,
                last_expected,
                base_hit: &base_hit,
            },
            &mut out.hits,
        );
        top = top.max(y);
        if subdaily && !integral && eq_run >= rule.stale_periods && y == top {
            cap = Some(y);
        }
        let at_cap = cap == Some(y);
        if at_cap {
            pinned_at = t;
        }

        // --- seasonal profile: fold completed cycles -----------------------
        seasonal.roll(t);
        let profile_ready = seasonal.ready();
        let slot = seasonal.slot(t);

        // --- prediction ----------------------------------------------------
        let holiday = holiday_of(inp.calendar, t, g);
        let event = inp
            .events
            .iter()
            .find(|e| local_date(t).is_some_and(|d| d >= e.start && d <= e.end));
        let outage = use_log && y <= 0.0;
        // Owners' explanations. An accepted new level re-anchors the baseline at
        // its first point (relearned from the next points, as after a detected
        // shift) and is never reported; explained-away points are tested as
        // usual but never feed the state, like a declared event.
        let accepted = accepted_at.covering(t);
        let excluded = accepted.is_none() && excluded_at.covering(t).is_some();
        if accepted.is_some() && accepted != anchored {
            anchored = accepted;
            lvl.clear();
            shifts.reset();
        }
        // After a long stretch without baseline points (a holiday season, a gap in
        // the export) the projected level is stale: relearn it from the next points
        // instead of reporting the drift as a level shift.
        if holiday.is_none()
            && event.is_none()
            && !outage
            && !excluded
            && lvl
                .last()
                .is_some_and(|&(tj, _, _)| (tu - tj) * step >= relearn_after_ms)
        {
            lvl.clear();
            shifts.reset();
        }
        if !lvl.ready() {
            settling = sh.n_level;
            if let Some(w) = ramps.as_mut() {
                w.reset();
            }
            if !outage && holiday.is_none() && event.is_none() && !excluded && !at_cap {
                let x = tr(y);
                lvl.push((tu, x, slot));
                seasonal.push(slot, x);
            }
            continue;
        }
        let s_now = seasonal.at(slot);
        let level = lvl.at(tu, seasonal.table());
        // year over year: last year's error of the local model around this date
        // (holidays have their own same-day-last-year comparison)
        let yoy_c = match sh.yoy {
            YoyUse::Off => None,
            _ if holiday.is_some() => None,
            _ => yoy_model.correction(ts, &yoy_err, i, t),
        };
        let yoy_used = yoy_c
            .filter(|_| sh.yoy == YoyUse::Always || yoy_model.active())
            .unwrap_or(0.0);
        let e = level + s_now + yoy_used;
        let e_y = inv(e);
        last_expected = e_y;
        let sigma = noise.sigma();
        let df = noise.df();
        let sd = if sigma.is_finite() {
            sigma.max(floor(e))
        } else {
            f64::NAN
        };
        let tail_idx = stats::TAILS.iter().position(|&d| d == df).unwrap_or(1);
        let eligible = i >= sh.warmup && profile_ready && noise.residuals() >= 14 && sd.is_finite();
        let note = holiday
            .map(|(name, _)| name.replace('_', " "))
            .or_else(|| event.map(|e| e.name.clone()));
        let excused = event.is_some_and(|e| e.action == EventAction::Excuse);

        if outage {
            if eligible
                && in_range(t)
                && !excused
                && rule.enabled(Check::Outage)
                && rule.direction != Direction::Up
            {
                let lower = inv(e - thresholds[tail_idx] * sd);
                if lower > 0.0 && e_y >= rule.min_abs_change {
                    let mut h = base_hit(Check::Outage);
                    h.expected = e_y;
                    h.lower = lower;
                    h.upper = inv(e + thresholds[tail_idx] * sd);
                    h.direction = Direction::Down;
                    h.score = f64::NEG_INFINITY;
                    h.note = note.clone();
                    out.hits.push(h);
                }
            }
            continue;
        }
        let x = tr(y);
        let r = x - e;
        let u = if sd.is_finite() { r / sd } else { 0.0 };

        // The holiday's own effect, if it can be estimated: the same holiday last
        // year, else (inside a stretch of one holiday, the December season) the
        // level of its points so far. Without it the point is excused.
        let holiday_effect: Option<f64> = holiday.and_then(|(name, prev)| {
            prev.and_then(|p| holiday_point(ts, i, p, t, g))
                .and_then(|j| holiday_resid.get(&ts[j]).copied())
                .or_else(|| {
                    (hol_run.0 == name && hol_run.1.len() >= 3)
                        .then(|| median_of(hol_run.1.iter().rev().take(7).copied(), &mut buf))
                })
        });

        if eligible && in_range(t) {
            out.evaluated += 1;
            out.first_eval.get_or_insert(t);
            out.last_eval = Some(t);
            // (check, centre, scale multiplier) of the statistical test, if any
            let test: Option<(Check, f64, f64)> = if excused || accepted.is_some() || at_cap {
                None
            } else if holiday.is_some() {
                holiday_effect.map(|h| (Check::Holiday, e + h, HOLIDAY_SCALE))
            } else {
                Some((seasonal_check, e, 1.0))
            };
            if let Some((check, centre, mult)) = test {
                let sd2 = sd * mult;
                let uu = (x - centre) / sd2;
                let up = uu > 0.0;
                let thr = thresholds[tail_idx];
                if direction_ok(rule.direction, up) && uu.abs() > thr {
                    let p_one = stats::upper_tail(uu.abs(), df);
                    let p = if rule.direction == Direction::Both {
                        (2.0 * p_one).min(1.0)
                    } else {
                        p_one
                    };
                    let cy = inv(centre);
                    let dev = (y - cy).abs();
                    if dev >= rule.min_abs_change
                        && dev >= rule.min_rel_change * cy.abs()
                        && rule.enabled(check)
                    {
                        let mut h = base_hit(check);
                        h.expected = cy;
                        h.lower = inv(centre - thr * sd2);
                        h.upper = inv(centre + thr * sd2);
                        h.score = uu;
                        h.p_value = p;
                        h.direction = Direction::of(up);
                        h.note = note.clone();
                        out.hits.push(h);
                    }
                }
            }
        }

        // the weekday profile itself lost (pattern change), pooled over two weeks
        if sh.weekday_shape
            && holiday.is_none()
            && event.is_none()
            && !excluded
            && accepted.is_none()
            && profile_ready
            && sd.is_finite()
        {
            let day = t.div_euclid(DAY_MS);
            shape_watch.push(day, r, s_now);
            let quiet = last_shape_hit.is_none_or(|d| day - d >= 7);
            // (the test is pure: asked only when its answer could be reported)
            if let Some(l) = (eligible
                && in_range(t)
                && quiet
                && rule.enabled(seasonal_check)
                && out.hits.last().is_none_or(|h| h.ts != t))
            .then(|| shape_watch.test(sd, pattern::MIN_LOST))
            .flatten()
            .filter(|l| l.z > thresholds[0])
            {
                last_shape_hit = Some(day);
                let mut h = base_hit(seasonal_check);
                h.expected = e_y;
                h.lower = inv(e - thresholds[tail_idx] * sd);
                h.upper = inv(e + thresholds[tail_idx] * sd);
                h.score = l.z;
                h.p_value = stats::upper_tail(l.z, f64::INFINITY);
                h.direction = Direction::of(r > 0.0);
                h.note = Some(format!(
                    "weekly shape lost: {:.0}% of the weekday pattern gone over the last {} days",
                    (l.lost * 100.0).min(100.0),
                    pattern::DEFAULT_SPAN
                ));
                out.hits.push(h);
            }
        }

        // --- state update --------------------------------------------------
        if excluded || at_cap {
            continue;
        }
        if let Some((name, _)) = holiday {
            holiday_resid.insert(t, r);
            if hol_run.0 != name {
                hol_run = (name.to_string(), Vec::new());
            }
            hol_run.1.push(r);
        } else {
            hol_run.1.clear();
        }
        // A holiday point with a known effect keeps the level moving (adjusted by
        // that effect), so a shift during the season is still caught; it never
        // feeds the weekly shape or the noise scale. Other holiday and event
        // points leave the state alone.
        let (x, r, u) = match (holiday, holiday_effect) {
            (Some(_), Some(h)) if event.is_none() => (
                x - h,
                r - h,
                if sd.is_finite() {
                    (r - h) / (sd * HOLIDAY_SCALE)
                } else {
                    0.0
                },
            ),
            (None, _) if event.is_none() => (x, r, u),
            _ => continue,
        };
        let normal_day = holiday.is_none();
        // small lasting shifts: a two-sided CUSUM (slack CUSUM_K, alarm CUSUM_H)
        let mut cusum_alarm: Option<(bool, &[LevelPoint])> = None;
        if sd.is_finite() {
            // heavy tails: shrink by how much wider the point threshold is than normal,
            // so isolated large residuals of a t-distributed series do not add up
            let uc = (u * cusum_shrink[tail_idx]).clamp(-4.0, 4.0);
            cusum_alarm = shifts.cusum_step(uc, (tu, x, slot));
        }
        // (direction, why) of a lasting change detected at this point
        let mut shift: Option<(bool, String, f64)> = None;
        if let Some((up, onset)) = cusum_alarm {
            lvl.reset_to(onset.iter().copied());
            let note = format!("level changed over the last {} periods", lvl.len());
            shift = Some((up, note, cusum_p));
        } else if !sd.is_finite() || u.abs() <= ACCEPT_U {
            lvl.push((tu, x, slot));
            if normal_day {
                // the local model's own error, for next year and for the gate
                if let Some(c) = yoy_c {
                    yoy_model.learn(r + yoy_used, c, sd);
                }
                // (not while a relearned level settles: those errors are the
                // relearning, which next year's level will not repeat)
                if settling > 0 {
                    settling -= 1;
                } else if let Some(e) = yoy_err.get_mut(i) {
                    *e = r + yoy_used;
                }
                seasonal.push(slot, x);
                noise.push_residual(r);
            }
            shifts.inside();
        } else if let Some(run) = shifts.outside((tu, x, slot), u > 0.0) {
            lvl.reset_to(run.iter().map(|&(p, _)| p));
            for &((_, xv, sv), _) in run {
                seasonal.push(sv, xv);
            }
            let p = stats::upper_tail(ACCEPT_U, df)
                .powi(i32::try_from(sh.shift_run).unwrap_or(i32::MAX));
            shift = Some((
                u > 0.0,
                format!("new level held for {} periods", sh.shift_run),
                p,
            ));
        }
        // sub-daily noise bursts and slow ramps: one finding each; a
        // re-anchored level restarts their windows
        if let (Some(bw), Some(rw)) = (bursts.as_mut(), ramps.as_mut())
            && sd.is_finite()
            && normal_day
        {
            if shift.is_some() {
                bw.reset();
                rw.reset();
            } else {
                // the fitted family is always one of stats::TAILS
                let b = bw.push(u, burst_rate[tail_idx], alpha_two);
                let rp = rw.push(level, ramp::level_se(sd, sh.n_level));
                let report = eligible && in_range(t) && accepted.is_none();
                let thr = thresholds[tail_idx];
                if let Some(b) = b.filter(|_| {
                    report
                        && rule.enabled(seasonal_check)
                        && direction_ok(rule.direction, u > 0.0)
                        && out.hits.last().is_none_or(|h| h.ts != t)
                }) {
                    let mut h = base_hit(seasonal_check);
                    h.expected = e_y;
                    h.lower = inv(e - thr * sd);
                    h.upper = inv(e + thr * sd);
                    h.score = u;
                    h.p_value = b.p_value;
                    h.direction = Direction::of(u > 0.0);
                    h.note = Some(format!(
                        "noise burst: {} of the last {} periods beyond {} noise units (usually {:.0}%)",
                        b.count,
                        b.window,
                        burst::EXCEED_U,
                        100.0 * b.rate
                    ));
                    out.hits.push(h);
                }
                if let Some(r) = rp.filter(|r| {
                    report
                        && t.saturating_sub(pinned_at) >= DAY_MS
                        && rule.enabled(Check::LevelShift)
                        && direction_ok(rule.direction, r.change > 0.0)
                }) {
                    let before = r.from_level + s_now;
                    let mut h = base_hit(Check::LevelShift);
                    h.expected = inv(before);
                    h.lower = inv(before - thr * sd);
                    h.upper = inv(before + thr * sd);
                    h.score = r.z;
                    h.p_value = (2.0 * stats::upper_tail(r.z.abs(), f64::INFINITY)).min(1.0);
                    h.direction = Direction::of(r.change > 0.0);
                    h.note = Some(format!(
                        "gradual change: the level moved {:+.0}% over the last {} periods",
                        (e_y / inv(before) - 1.0) * 100.0,
                        r.lag
                    ));
                    out.hits.push(h);
                }
            }
        }
        // a lasting change: the baseline was re-anchored on the new level above;
        // report it once, here
        if let Some((up, note, p)) = shift {
            settling = sh.n_level;
            shifts.reset();
            if eligible
                && in_range(t)
                && accepted.is_none()
                && rule.enabled(Check::LevelShift)
                && direction_ok(rule.direction, up)
            {
                out.hits
                    .retain(|h| !(h.ts == t && h.check == seasonal_check));
                let thr = thresholds[tail_idx];
                let mut h = base_hit(Check::LevelShift);
                h.expected = e_y;
                h.lower = inv(e - thr * sd);
                h.upper = inv(e + thr * sd);
                h.score = u;
                h.p_value = p;
                h.direction = Direction::of(up);
                h.note = Some(note);
                out.hits.push(h);
            }
        }
        if sd.is_finite() && normal_day {
            noise.push_deviation(u.abs());
        }
        // slope and scale are re-measured only when their windows change (a new
        // weekly shape reaches the slope at the next window change)
        lvl.refresh_slope(seasonal.table(), seasonal.version());
        noise.refresh();
    }

    if save_at == Some(n) {
        saved = Some(snapshot!(n));
    }

    // a series that stopped before the rest of its source
    let last = ts[n - 1];
    if last + health.missing_periods().saturating_mul(step) <= inp.end_ts
        && in_range(last + step)
        && rule.enabled(Check::Missing)
    {
        out.hits.push(Hit {
            expected: last_expected,
            direction: Direction::Down,
            note: Some(format!(
                "no data since {}",
                crate::model::format_ts(last, g)
            )),
            ..Hit::blank(last + step, f64::NAN, Check::Missing, n)
        });
    }
    Walk {
        out,
        resumed: was_resumed,
        state: saved,
    }
}

fn direction_ok(d: Direction, up: bool) -> bool {
    match d {
        Direction::Both => true,
        Direction::Up => up,
        Direction::Down => !up,
    }
}

/// The holiday that applies to the point at `t` (for weekly data: any day of its week).
fn holiday_of(cal: &Calendar, t: i64, g: Granularity) -> Option<(&'static str, Option<NaiveDate>)> {
    if g == Granularity::Week {
        let d = local_date(t)?;
        (0..7).find_map(|k| cal.holiday(d + Duration::days(k)))
    } else {
        cal.holiday_at(t)
    }
}

/// Index of last year's point for the same holiday (same time of day for sub-daily data).
fn holiday_point(
    ts: &[i64],
    upto: usize,
    prev_day: NaiveDate,
    t: i64,
    g: Granularity,
) -> Option<usize> {
    // weekly data: last year's week that contains the same holiday
    let target = match g {
        Granularity::Week => date_ms(prev_day),
        _ => date_ms(prev_day) + t.rem_euclid(DAY_MS),
    };
    point_covering(ts, upto, target, g.step_ms())
}
