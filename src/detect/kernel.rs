//! The walk of one series, point by point: the per-series constants
//! ([`SeriesContext`]), the state the walk carries from point to point
//! ([`KernelState`], its fields listed once: a fresh walk starts from
//! [`KernelState::new`], a checkpoint is a pruned clone), and
//! [`KernelState::step`], the named phases every point goes through in order.
//!
//! Owns the order of the phases and what each reads and writes; the
//! statistics live in the component modules (level, seasonal, noise, shift,
//! burst, ramp, pattern, yoy, health). Nothing here looks at a later point
//! than the one being walked, and nothing does I/O or reads a clock.

use std::collections::HashMap;
use std::fmt;

use chrono::{Duration, NaiveDate};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::burst::{self, BurstWatch};
use super::calendar::{Calendar, HolidayOn};
use super::health::{Health, HealthContext};
use super::level::{Level, LevelPoint};
use super::noise::Noise;
use super::pattern::{self, ShapeWatch};
use super::profile;
use super::ramp::{self, RampWatch};
use super::seasonal::SeasonalProfile;
use super::series::{SeriesInput, SeriesOutput};
use super::shift::{self as shift_detector, ShiftDetector};
use super::stats::{self, median_of};
use super::yoy::{self, YearOverYear};
use crate::config::{Direction, EventAction, EventConfig, MetricRule, Scale};
use crate::model::{Check, Granularity, Hit, Holiday, MS_PER_DAY as DAY_MS, Side, date_ms};

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
/// Noise multiplier inside a long holiday season (December's shopping weeks)
/// once its own days are the reference: they share this year's level.
const SEASON_SCALE: f64 = 1.5;
/// Points beyond this many robust SDs are kept out of the baseline.
const ACCEPT_U: f64 = 3.0;
/// Hourly data: the largest threshold (noise units at sensitivity 1) any tail
/// family gets once the per-point rate is divided by the points per day
/// (finer data: × (points per day / 24)^0.4, 54 for 5-minute data).
const SUBDAILY_MAX_THRESHOLD: f64 = 20.0;
/// How far back holiday residuals are kept in a checkpoint: last year's
/// same holiday is at most a year and some weeks before this year's.
const HOLIDAY_KEEP_MS: i64 = 2 * 366 * DAY_MS;

/// Windows and thresholds of a granularity (and the rule's `min_history`).
struct Shape {
    /// Points in one cycle of the seasonal profile (1: no profile).
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
    /// Where the seasonal profile's cycle starts, in ms.
    offset: i64,
    /// Points the level is measured over.
    n_level: usize,
    /// Points of each half the level's slope compares.
    n_half: usize,
    /// Residuals the noise scale is measured over.
    scale_n: usize,
    /// Points before anything is reported.
    warmup: usize,
    /// Points in a row outside the band that make a new level.
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

impl Shape {
    fn new(granularity: Granularity, rule: &MetricRule) -> Shape {
        let ppd = granularity.points_per_day();
        let seasonal = rule.seasonality && granularity != Granularity::Week;
        let period = if seasonal { 7 * ppd } else { 1 };
        let (n_level, n_half, scale_n, warmup, shift_run) = match granularity {
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
        let business = matches!(granularity, Granularity::Day | Granularity::Week);
        Shape {
            period,
            profile_cycles: if business { 12 } else { 8 },
            trimmed: business,
            threshold: if business {
                BUSINESS_THRESHOLD
            } else {
                BASE_THRESHOLD
            },
            yoy: match granularity {
                Granularity::Day => YoyUse::Gated,
                Granularity::Week => YoyUse::Always,
                _ => YoyUse::Off,
            },
            weekday_shape: granularity == Granularity::Day && period == 7,
            offset: 3 * ppd as i64,
            n_level,
            n_half,
            scale_n,
            warmup: rule.min_history.unwrap_or(warmup).max(n_level + 1),
            shift_run,
        }
    }
}

/// What the walk of one series reads and never changes: the series, its
/// rule, calendar and events, and the constants derived from them once.
pub struct SeriesContext<'a> {
    /// The series and how to evaluate it.
    input: &'a SeriesInput<'a>,
    /// Milliseconds between points.
    step: i64,
    /// Points per day.
    ppd: usize,
    /// Windows, warm-up and thresholds of the granularity.
    shape: Shape,
    /// The check a deviation from the weekly (or flat) baseline is reported as.
    seasonal_check: Check,
    /// Values are modelled as logarithms (decided from the first points).
    use_log: bool,
    /// The first points are whole numbers: counts, with a Poisson noise floor.
    integral: bool,
    /// More than one point a day.
    subdaily: bool,
    /// Two-sided false-alarm rate per point.
    alpha_two: f64,
    /// The point-test threshold per tail family of `stats::TAILS`.
    thresholds: Vec<f64>,
    /// Per tail family: the CUSUM's shrink of heavy-tailed residuals.
    cusum_shrink: Vec<f64>,
    /// Per tail family: the burst watch's expected share of points beyond
    /// `burst::EXCEED_U`.
    burst_rate: Vec<f64>,
    /// Per-period false-alarm rate of the CUSUM on normal residuals.
    cusum_p: f64,
    /// After this long without baseline points the level is relearned.
    relearn_after_ms: i64,
}

impl<'a> SeriesContext<'a> {
    /// The constants of `input`'s walk.
    pub fn new(input: &'a SeriesInput<'a>) -> SeriesContext<'a> {
        let granularity = input.granularity;
        let ppd = granularity.points_per_day();
        let rule = input.rule;
        let shape = Shape::new(granularity, rule);
        let seasonal_check = if shape.period > 1 {
            Check::Seasonal
        } else {
            Check::Variance
        };
        let warm = &input.values[..input.values.len().min(shape.warmup)];
        let use_log = match rule.scale {
            Scale::Log => true,
            Scale::Linear => false,
            Scale::Auto => warm.iter().all(|&y| y > 0.0),
        };
        let integral = warm.iter().all(|y| y.fract() == 0.0);
        let z_thr = shape.threshold / rule.sensitivity;
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
        SeriesContext {
            input,
            step: granularity.step_ms(),
            ppd,
            shape,
            seasonal_check,
            use_log,
            integral,
            subdaily,
            alpha_two,
            thresholds,
            cusum_shrink,
            burst_rate,
            cusum_p: shift_detector::cusum_false_alarm_rate(),
            relearn_after_ms: if granularity == Granularity::Week {
                28 * DAY_MS
            } else {
                8 * DAY_MS
            },
        }
    }

    /// A value on the model's scale (its logarithm for a log-scale series).
    fn to_model(&self, value: f64) -> f64 {
        if self.use_log { value.ln() } else { value }
    }

    /// A model-scale number back in the data's units.
    fn to_value(&self, model: f64) -> f64 {
        if self.use_log { model.exp() } else { model }
    }

    /// Noise floor at model-scale `expected`: counts cannot be more precise
    /// than Poisson noise.
    fn noise_floor(&self, expected: f64) -> f64 {
        if self.use_log {
            let expected_value = expected.exp();
            if self.integral {
                (1.0 / expected_value.max(1.0)).sqrt().max(1e-3)
            } else {
                1e-3
            }
        } else if self.integral {
            expected.abs().max(1.0).sqrt()
        } else {
            1e-6 * expected.abs().max(1e-9)
        }
    }

    /// The noise scale `sigma` at model-scale `expected`, at least the
    /// noise floor. A sub-daily count adds its sampling noise in quadrature:
    /// the logarithm of a count near zero (tweets at 3 a.m., orders in the
    /// night's trough) swings by ±1/√count on its own, on top of the
    /// multiplicative noise the residuals of busier hours measure, so a
    /// trough's 8 → 1 is not judged by the peak's spread.
    fn with_floor(&self, sigma: f64, expected: f64) -> f64 {
        let floor = self.noise_floor(expected);
        if self.subdaily && self.integral && self.use_log {
            sigma.hypot(floor)
        } else {
            sigma.max(floor)
        }
    }

    /// Whether findings at `t` are reported.
    fn in_range(&self, t: i64) -> bool {
        t >= self.input.from && t <= self.input.to
    }

    /// A finding of `check` at point `i` with its value and week-over-week
    /// and year-over-year changes; the rest (expectation, band, score) as
    /// [`Hit::blank`] leaves it.
    fn hit(&self, i: usize, check: Check) -> Hit {
        let (ts, values) = (self.input.ts, self.input.values);
        let (t, value) = (ts[i], values[i]);
        Hit {
            wow_pct: pct(value, value_at(ts, values, i, t - 7 * DAY_MS)),
            yoy_pct: pct(value, value_at(ts, values, i, t - 364 * DAY_MS)),
            ..Hit::blank(t, value, check, i)
        }
    }

    /// The band `centre ± half_width` (model scale) in the data's units.
    fn band(&self, centre: f64, half_width: f64) -> Band {
        Band {
            expected: self.to_value(centre),
            lower: self.to_value(centre - half_width),
            upper: self.to_value(centre + half_width),
        }
    }
}

/// What a statistical finding was judged against, in the data's units.
struct Band {
    /// The expected value.
    expected: f64,
    /// Lower end of the normal range.
    lower: f64,
    /// Upper end of the normal range.
    upper: f64,
}

impl Hit {
    /// This finding judged: against `band`, with its `score` (noise units),
    /// `p_value`, side and note. The one way the kernel fills in a
    /// statistical finding.
    fn judged(self, band: Band, score: f64, p_value: f64, side: Side, note: Option<String>) -> Hit {
        Hit {
            expected: band.expected,
            lower: band.lower,
            upper: band.upper,
            score,
            p_value,
            side,
            note,
            ..self
        }
    }
}

/// Residuals of the current stretch of one holiday, in time order (the
/// December season is one long stretch). Stored as the `(name, residuals)`
/// pair earlier builds wrote (`""` before any holiday), so their checkpoints
/// still decode and fingerprint the same.
#[derive(Clone, Default)]
struct HolidayRun {
    /// The holiday of the stretch; kept when a usual day clears the residuals.
    holiday: Option<Holiday>,
    /// Its points' residuals so far (model scale).
    residuals: Vec<f64>,
}

impl HolidayRun {
    /// The name as stored.
    fn name(&self) -> &'static str {
        self.holiday.map_or("", Holiday::as_str)
    }
}

impl fmt::Debug for HolidayRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // the pair's Debug form: part of the checkpoint layout (series::layout)
        fmt::Debug::fmt(&(self.name(), &self.residuals), f)
    }
}

impl Serialize for HolidayRun {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (self.name(), &self.residuals).serialize(s)
    }
}

impl<'de> Deserialize<'de> for HolidayRun {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<HolidayRun, D::Error> {
        let (name, residuals) = <(String, Vec<f64>)>::deserialize(d)?;
        let holiday = match name.as_str() {
            "" => None,
            name => Some(
                Holiday::from_name(name)
                    .ok_or_else(|| serde::de::Error::custom(format!("unknown holiday {name:?}")))?,
            ),
        };
        Ok(HolidayRun { holiday, residuals })
    }
}

/// Everything the walk over points `0..next` of a series left behind, so that
/// a later walk can start at `next` instead of 0 and find exactly what a full
/// walk finds (see [`super::series::evaluate_from`]). Plain owned data,
/// serde-encoded by `detect::checkpoint`: the fields' order, names and types
/// are the stored encoding and part of every checkpoint's fingerprint
/// ([`super::series::layout`]); the component structs keep their own fields.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct KernelState {
    /// Points walked: the next walk starts here.
    next: usize,
    /// The scale and noise floor decided from the first points (they must
    /// come out the same from the resumed walk's data, else it walks fully).
    use_log: bool,
    integral: bool,
    /// Local level with trend.
    lvl: Level,
    /// Weekly (hour-of-week) shape.
    seasonal: SeasonalProfile,
    /// Robust noise scale and tail family.
    noise: Noise,
    /// Last year's errors of the local model as a correction, and its gate.
    yoy_model: YearOverYear,
    /// In a checkpoint, `yoy_err` holds the errors of points
    /// `yoy_from..next` only (a year and a window back from the last walked
    /// point: what a later point can read); while walking it holds one per
    /// point of the series (NaN: not a baseline point) and this is 0.
    yoy_from: usize,
    yoy_err: Vec<f64>,
    /// Baseline points left before a relearned level's errors count for next year.
    settling: usize,
    /// Daily series: how much of the weekday pattern recent weeks lost.
    shape_watch: ShapeWatch,
    /// Day of the last weekly-shape finding (one a week at most).
    last_shape_hit: Option<i64>,
    /// CUSUM and runs outside the band: lasting level changes.
    shifts: ShiftDetector,
    /// Holiday residuals by timestamp, those of the last two years (a
    /// holiday is compared with the same holiday one year back).
    holiday_resid: HashMap<i64, f64>,
    /// Residuals of the current stretch of one holiday.
    hol_run: HolidayRun,
    /// Data-health checks (gaps, repeats).
    health: Health,
    /// The last expected value, in the data's units (for data-health findings).
    last_expected: f64,
    /// Sub-daily: noise bursts (detect::burst).
    bursts: Option<BurstWatch>,
    /// Sub-daily: slow ramps of the level (detect::ramp).
    ramps: Option<RampWatch>,
    /// A sub-daily gauge pinned at a cap (a utilisation at 100 %): its
    /// highest value so far (`top`), once it has repeated for
    /// `stale_periods`, is the cap. A value at the cap only says "at least
    /// this much": it is not tested and never feeds the baseline (the noise
    /// scale would collapse on the ties and the level would learn the
    /// clipping). Counts have no cap. `pinned_at`: the last time the cap was
    /// seen, since its clipping moves the level as a ramp would.
    top: f64,
    cap: Option<f64>,
    pinned_at: i64,
    /// Positions of the explanation cursors (the explanations themselves are
    /// part of the checkpoint's fingerprint).
    excluded_at: usize,
    accepted_at: usize,
    /// The accepted span the level was last re-anchored for.
    anchored: Option<usize>,
    /// When the series was last at zero (an outage point), and whether the
    /// current run of zeros is news: a run that starts within a day of the
    /// last one is the same episode (a flapping feed), or how the series
    /// looks (a count that idles at zero), not a new outage.
    last_zero: i64,
    zero_run_news: bool,
    /// Levels the series held recently (model scale, with when it left or
    /// reached each): the one before and the one after each lasting change
    /// of the last [`KNOWN_LEVEL_MS`]. A change back to one of them (a gauge
    /// switching between two regimes, the end of a temporary shift) is
    /// relearned but is not news.
    known_levels: Vec<(i64, f64)>,
    /// Sub-daily: the starts of recent outlier stretches (time, upwards) of
    /// the last day. An outlier on the same side at about the same time of
    /// day as one a day earlier is a habit (a nightly batch job, a step in
    /// the day's shape at 09:00), reported the first day only.
    outlier_starts: Vec<(i64, bool)>,
}

/// How far from "the same time yesterday" an outlier still repeats one.
const HABIT_SLACK_MS: i64 = 3_600_000;
/// Outliers closer than this to the last remembered one (same side) are
/// the same stretch.
const STRETCH_MS: i64 = 1_800_000;
/// Outlier stretches remembered at most.
const OUTLIER_STARTS_MAX: usize = 48;

/// How long a level the series held counts as known.
const KNOWN_LEVEL_MS: i64 = DAY_MS;
/// Levels remembered at most.
const KNOWN_LEVELS_MAX: usize = 16;

/// One point as the phases see it: where it is and what covers it.
struct Point<'a> {
    /// Index in the series.
    i: usize,
    /// Timestamp.
    t: i64,
    /// Observed value.
    value: f64,
    /// The timestamp in steps (the level's clock).
    period: i64,
    /// Slot of the seasonal profile.
    slot: usize,
    /// The seasonal profile has enough cycles to predict.
    profile_ready: bool,
    /// The holiday on the point, with last year's date of it.
    holiday: Option<HolidayOn>,
    /// A declared event covering the point.
    event: Option<&'a EventConfig>,
    /// A log-scale series at zero or below: an outage, no logarithm.
    outage: bool,
    /// Index of the owners' accepted-new-level span covering the point.
    accepted: Option<usize>,
    /// Explained away by an owner: tested as usual, never learned.
    excluded: bool,
    /// At the cap of a pinned gauge: neither tested nor learned.
    at_cap: bool,
}

impl Point<'_> {
    /// The holiday's or event's name, for a finding's note.
    fn note(&self) -> Option<String> {
        self.holiday
            .map(|(holiday, _)| holiday.words())
            .or_else(|| self.event.map(|e| e.name.clone()))
    }

    /// A declared event excuses the point from the statistical tests.
    fn excused(&self) -> bool {
        self.event.is_some_and(|e| e.action == EventAction::Excuse)
    }
}

/// What history predicts for a point.
struct Prediction {
    /// The seasonal profile at the point's slot (model scale).
    seasonal: f64,
    /// The level with its trend at the point (model scale).
    level: f64,
    /// Last year's error of the local model around this date, when known.
    yoy_correction: Option<f64>,
    /// The part of it added to the expectation (0 while gated off).
    yoy_used: f64,
    /// Expected value, model scale.
    expected: f64,
    /// Expected value in the data's units.
    expected_value: f64,
    /// Noise scale (robust SD, at least the noise floor, widened); NaN
    /// while unknown.
    noise: f64,
    /// How much the robust scale was widened for the series' routine jumps
    /// (detect::noise).
    widen: f64,
    /// Degrees of freedom of the fitted tail family.
    df: f64,
    /// Index of that family in `stats::TAILS`.
    tail: usize,
    /// Enough history to evaluate the point.
    eligible: bool,
}

impl Prediction {
    /// The point-test threshold (noise units) of the fitted tail family.
    fn threshold(&self, cx: &SeriesContext<'_>) -> f64 {
        cx.thresholds[self.tail]
    }

    /// The normal band around the expectation.
    fn band(&self, cx: &SeriesContext<'_>) -> Band {
        cx.band(self.expected, self.threshold(cx) * self.noise)
    }
}

/// A point against its prediction (model scale).
#[derive(Clone, Copy)]
struct Residual {
    /// The value.
    value: f64,
    /// Value minus expected.
    residual: f64,
    /// The residual in noise units (0 while the noise scale is unknown).
    deviation: f64,
}

impl Residual {
    fn of(cx: &SeriesContext<'_>, point: &Point<'_>, prediction: &Prediction) -> Residual {
        let value = cx.to_model(point.value);
        let residual = value - prediction.expected;
        Residual {
            value,
            residual,
            deviation: if prediction.noise.is_finite() {
                residual / prediction.noise
            } else {
                0.0
            },
        }
    }
}

/// A lasting change of level detected at a point.
struct Shift {
    /// Upwards.
    up: bool,
    /// How it was detected, for the finding's note.
    note: String,
    /// Its p-value.
    p_value: f64,
}

impl KernelState {
    /// The state before the first point of `cx`'s series.
    pub fn new(cx: &SeriesContext<'_>) -> KernelState {
        let (shape, granularity) = (&cx.shape, cx.input.granularity);
        let weekly = granularity == Granularity::Week;
        KernelState {
            next: 0,
            use_log: cx.use_log,
            integral: cx.integral,
            lvl: Level::new(shape.n_level, shape.n_half, shape.trimmed),
            seasonal: SeasonalProfile::new(
                cx.step,
                shape.offset,
                shape.period,
                cx.ppd,
                shape.profile_cycles,
                shape.trimmed,
            ),
            // noise scale and tail family. Weekly series start normal: they need more
            // than a year of points before the tail is fitted, and a heavy prior hid
            // their spikes all that time.
            noise: Noise::new(
                shape.scale_n,
                if weekly { 4 } else { 28 },
                if weekly {
                    f64::INFINITY
                } else {
                    stats::HEAVY_DF
                },
                cx.subdaily,
            ),
            yoy_model: YearOverYear::for_step(cx.step),
            yoy_from: 0,
            yoy_err: Vec::new(),
            settling: 0,
            shape_watch: ShapeWatch::default(),
            last_shape_hit: None,
            shifts: ShiftDetector::new(shape.shift_run),
            holiday_resid: HashMap::new(),
            hol_run: HolidayRun::default(),
            health: Health::new(granularity, cx.input.rule),
            last_expected: f64::NAN,
            bursts: cx
                .subdaily
                .then(|| BurstWatch::new(BurstWatch::window_for(cx.ppd))),
            ramps: cx
                .subdaily
                .then(|| RampWatch::new(3 * shape.n_level / 2, cx.ppd)),
            top: f64::NEG_INFINITY,
            cap: None,
            pinned_at: i64::MIN,
            excluded_at: 0,
            accepted_at: 0,
            anchored: None,
            last_zero: i64::MIN,
            zero_run_news: true,
            known_levels: Vec::new(),
            outlier_starts: Vec::new(),
        }
    }

    /// Points walked: a resumed walk starts at this index.
    pub fn next(&self) -> usize {
        self.next
    }

    /// This stored state, ready to walk `cx`'s series on from [`Self::next`],
    /// if it fits: the first points decided the same scale, it ends inside
    /// the series, and what the encoding leaves out (the data holds it) can
    /// be restored.
    pub fn resumed(mut self, cx: &SeriesContext<'_>) -> Option<KernelState> {
        let fits = self.use_log == cx.use_log
            && self.integral == cx.integral
            && self.next > 0
            && self.next <= cx.input.ts.len()
            && self.yoy_from.saturating_add(self.yoy_err.len()) <= self.next;
        if !fits {
            return None;
        }
        self.noise.restore();
        self.health
            .restore(cx.input.values, self.next)
            .then_some(self)
    }

    /// Spread last year's errors over the whole series, one per point (the
    /// walk indexes them by point); a checkpoint keeps only a window.
    pub fn spread_yoy_errors(&mut self, cx: &SeriesContext<'_>) {
        self.yoy_err = if cx.shape.yoy == YoyUse::Off {
            Vec::new()
        } else {
            let mut all = vec![f64::NAN; cx.input.ts.len()];
            if let Some(dst) = all.get_mut(self.yoy_from..self.yoy_from + self.yoy_err.len()) {
                dst.copy_from_slice(&self.yoy_err);
            }
            all
        };
        self.yoy_from = 0;
    }

    /// The state before point [`Self::next`] as a checkpoint keeps it: a
    /// clone without what a later point can no longer read (last year's
    /// errors and holiday residuals older than a later point looks back).
    /// `self` must have walked at least one point.
    pub fn checkpoint(&mut self, cx: &SeriesContext<'_>) -> KernelState {
        let k = self.next;
        let last = cx.input.ts[k - 1];
        // the walk's per-point errors and residuals are pruned, not cloned
        let yoy_err = std::mem::take(&mut self.yoy_err);
        let holiday_resid = std::mem::take(&mut self.holiday_resid);
        let mut kept = self.clone();
        let yoy_from = cx.input.ts[..k]
            .partition_point(|&t| t < last - yoy::YEAR_MS - self.yoy_model.half_ms());
        kept.yoy_from = if yoy_err.is_empty() { 0 } else { yoy_from };
        kept.yoy_err = yoy_err
            .get(yoy_from..k)
            .map(<[f64]>::to_vec)
            .unwrap_or_default();
        kept.holiday_resid = holiday_resid
            .iter()
            .filter(|&(&t, _)| t >= last - HOLIDAY_KEEP_MS)
            .map(|(&t, &r)| (t, r))
            .collect();
        self.yoy_err = yoy_err;
        self.holiday_resid = holiday_resid;
        kept
    }

    /// Walk point `i` (which is [`Self::next`]): its phases in order, each
    /// reading what the earlier ones found; a phase that ends the point's
    /// walk is a `return` here.
    pub fn step(&mut self, cx: &SeriesContext<'_>, i: usize, out: &mut SeriesOutput) {
        debug_assert_eq!(self.next, i, "points are walked in order");
        self.next = i + 1;
        let at_cap = self.check_health(cx, i, out);
        let point = self.place(cx, i, at_cap);
        if !self.lvl.ready() {
            self.learn_first_points(cx, &point);
            return;
        }
        let prediction = self.predict(cx, &point);
        if point.outage {
            self.report_outage(cx, &point, &prediction, out);
            return;
        }
        let seen = Residual::of(cx, &point, &prediction);
        let holiday_effect = self.holiday_effect(cx, &point);
        let habit = self.test_point(cx, &point, &prediction, &seen, holiday_effect, out);
        self.watch_weekly_shape(cx, &point, &prediction, &seen, out);
        let Some(learned) = self.learnable(&point, &prediction, seen, holiday_effect) else {
            return;
        };
        let shift = self.update_baseline(cx, &point, &prediction, &learned);
        self.watch_subdaily(cx, &point, &prediction, &learned, shift.is_some(), out);
        if let Some(shift) = shift {
            if !habit {
                self.report_shift(cx, &point, &prediction, &learned, shift, out);
            } else {
                // a habit's stretch moved the level: relearned, not news
                self.settling = cx.shape.n_level;
                self.shifts.reset();
            }
        }
        self.refresh(&point, &prediction, &learned);
    }

    /// Data health on the raw value (gaps, repeats, `max_change`, `bounds`),
    /// then whether a sub-daily gauge is pinned at its cap. Returns whether
    /// the point is at the cap.
    fn check_health(&mut self, cx: &SeriesContext<'_>, i: usize, out: &mut SeriesOutput) -> bool {
        let input = cx.input;
        let (t, value) = (input.ts[i], input.values[i]);
        let repeated = self.health.check(
            input.ts,
            input.values,
            i,
            input.rule,
            &HealthContext {
                from: input.from,
                to: input.to,
                last_expected: self.last_expected,
                warm: i >= cx.shape.warmup,
                base_hit: &|check| cx.hit(i, check),
            },
            &mut out.hits,
        );
        self.top = self.top.max(value);
        if cx.subdaily && !cx.integral && repeated >= input.rule.stale_periods && value == self.top
        {
            self.cap = Some(value);
        }
        let at_cap = self.cap == Some(value);
        if at_cap {
            self.pinned_at = t;
        }
        at_cap
    }

    /// Where the point stands: its slot of the seasonal profile (completed
    /// cycles folded in first), and the holiday, event or owners' explanation
    /// covering it. An accepted new level re-anchors the baseline at its
    /// first point (relearned from the next points, as after a detected
    /// shift; never reported); explained-away points are tested as usual but
    /// never feed the state, like a declared event. After a long stretch
    /// without baseline points (a holiday season, a gap in the export) the
    /// projected level is stale: it is relearned from the next points instead
    /// of reporting the drift as a level shift.
    fn place<'a>(&mut self, cx: &SeriesContext<'a>, i: usize, at_cap: bool) -> Point<'a> {
        let input = cx.input;
        let (t, value) = (input.ts[i], input.values[i]);
        let period = t.div_euclid(cx.step);
        self.seasonal.roll(t);
        let profile_ready = self.seasonal.ready();
        let slot = self.seasonal.slot(t);
        let holiday = holiday_of(input.calendar, t, input.granularity);
        let event = input
            .events
            .iter()
            .copied()
            .find(|e| local_date(t).is_some_and(|d| d >= e.start && d <= e.end));
        let outage = cx.use_log && value <= 0.0;
        let accepted = covering(&input.explained.accept, &mut self.accepted_at, t);
        let excluded = accepted.is_none()
            && covering(&input.explained.exclude, &mut self.excluded_at, t).is_some();
        if accepted.is_some() && accepted != self.anchored {
            self.anchored = accepted;
            self.lvl.clear();
            self.shifts.reset();
        }
        if holiday.is_none()
            && event.is_none()
            && !outage
            && !excluded
            && self
                .lvl
                .last()
                .is_some_and(|&(tj, _, _)| (period - tj) * cx.step >= cx.relearn_after_ms)
        {
            self.lvl.clear();
            self.shifts.reset();
        }
        Point {
            i,
            t,
            value,
            period,
            slot,
            profile_ready,
            holiday,
            event,
            outage,
            accepted,
            excluded,
            at_cap,
        }
    }

    /// While the level has too few points to predict: learn a usual point
    /// (not an outage, holiday, event, explained away or at the cap); nothing
    /// is tested, and a relearned level's errors do not count for next year.
    fn learn_first_points(&mut self, cx: &SeriesContext<'_>, point: &Point<'_>) {
        self.settling = cx.shape.n_level;
        if let Some(w) = self.ramps.as_mut() {
            w.reset();
        }
        if !point.outage
            && point.holiday.is_none()
            && point.event.is_none()
            && !point.excluded
            && !point.at_cap
        {
            let value = cx.to_model(point.value);
            self.lvl.push((point.period, value, point.slot));
            self.seasonal.push(point.slot, value);
        }
    }

    /// The expected value from history only: level with trend, seasonal
    /// shape and, for daily and weekly data, last year's error of the local
    /// model around this date (holidays have their own same-day-last-year
    /// comparison); the noise scale and tail family to judge the point by.
    fn predict(&mut self, cx: &SeriesContext<'_>, point: &Point<'_>) -> Prediction {
        let seasonal = self.seasonal.at(point.slot);
        let level = self.lvl.at(point.period, self.seasonal.table());
        let yoy_correction = match cx.shape.yoy {
            YoyUse::Off => None,
            _ if point.holiday.is_some() => None,
            _ => self
                .yoy_model
                .correction(cx.input.ts, &self.yoy_err, point.i, point.t),
        };
        let yoy_used = yoy_correction
            .filter(|_| cx.shape.yoy == YoyUse::Always || self.yoy_model.active())
            .unwrap_or(0.0);
        let expected = level + seasonal + yoy_used;
        let expected_value = cx.to_value(expected);
        self.last_expected = expected_value;
        let sigma = self.noise.sigma();
        let df = self.noise.df();
        let widen = self.noise.widen();
        let noise = if sigma.is_finite() {
            cx.with_floor(sigma, expected) * widen
        } else {
            f64::NAN
        };
        let tail = stats::TAILS.iter().position(|&d| d == df).unwrap_or(1);
        let eligible = point.i >= cx.shape.warmup
            && point.profile_ready
            && self.noise.residuals() >= 14
            && noise.is_finite();
        Prediction {
            seasonal,
            level,
            yoy_correction,
            yoy_used,
            expected,
            expected_value,
            noise,
            widen,
            df,
            tail,
            eligible,
        }
    }

    /// A log-scale series at zero: an outage when even the band's lower end
    /// is above zero, unless its run of zeros started within a day of the
    /// last one (the same episode). The point is never learned.
    fn report_outage(
        &mut self,
        cx: &SeriesContext<'_>,
        point: &Point<'_>,
        prediction: &Prediction,
        out: &mut SeriesOutput,
    ) {
        let continues = point.i > 0 && cx.input.values[point.i - 1] <= 0.0;
        if !continues {
            self.zero_run_news = point.t.saturating_sub(self.last_zero) > DAY_MS;
        }
        self.last_zero = point.t;
        let rule = cx.input.rule;
        if !(self.zero_run_news
            && prediction.eligible
            && cx.in_range(point.t)
            && !point.excused()
            && rule.enabled(Check::Outage)
            && rule.direction.allows(Side::Down))
        {
            return;
        }
        let band = prediction.band(cx);
        if band.lower > 0.0 && prediction.expected_value >= rule.min_abs_change {
            let hit = cx.hit(point.i, Check::Outage).judged(
                band,
                f64::NEG_INFINITY,
                0.0,
                Side::Down,
                point.note(),
            );
            out.hits.push(hit);
        }
    }

    /// The holiday's own effect (model scale), if it can be estimated: the
    /// same holiday last year, else (inside a stretch of one holiday, the
    /// December season) the level of its points so far. Without it the point
    /// is excused.
    fn holiday_effect(&self, cx: &SeriesContext<'_>, point: &Point<'_>) -> Option<(f64, f64)> {
        let ts = cx.input.ts;
        let (holiday, last_year) = point.holiday?;
        let run = &self.hol_run;
        // (a median: only worked out where it is used)
        let own = || {
            (run.holiday == Some(holiday) && run.residuals.len() >= 3).then(|| {
                let recent = run.residuals.iter().rev().take(7).copied();
                median_of(recent, &mut Vec::new())
            })
        };
        // weeks long: after three days its own days say more than one day a
        // year ago, and on a narrower scale
        if holiday == Holiday::HolidaySeason
            && let Some(effect) = own()
        {
            return Some((effect, SEASON_SCALE));
        }
        last_year
            .and_then(|day| holiday_point(ts, point.i, day, point.t, cx.input.granularity))
            .and_then(|j| self.holiday_resid.get(&ts[j]).copied())
            .or_else(own)
            .map(|effect| (effect, HOLIDAY_SCALE))
    }

    /// Test the point against the baseline, or a holiday against the same
    /// holiday last year on a wider scale. Every eligible point in range
    /// counts as evaluated; excused, accepted and capped ones are not tested.
    /// Returns whether the point is an outlier of a daily habit (nothing is
    /// reported for it, not even the lasting change it may complete).
    fn test_point(
        &mut self,
        cx: &SeriesContext<'_>,
        point: &Point<'_>,
        prediction: &Prediction,
        seen: &Residual,
        holiday_effect: Option<(f64, f64)>,
        out: &mut SeriesOutput,
    ) -> bool {
        let (t, rule) = (point.t, cx.input.rule);
        if !prediction.eligible {
            return false;
        }
        // (habits are learned on every eligible point, reported or not, so a
        // resumed or windowed walk learns what a full one does)
        let reporting = cx.in_range(t);
        if reporting {
            out.evaluated += 1;
            out.first_eval.get_or_insert(t);
            out.last_eval = Some(t);
        }
        // (check, centre, scale multiplier) of the statistical test, if any
        let test: Option<(Check, f64, f64)> =
            if point.excused() || point.accepted.is_some() || point.at_cap {
                None
            } else if point.holiday.is_some() {
                holiday_effect.map(|(effect, multiplier)| {
                    (Check::Holiday, prediction.expected + effect, multiplier)
                })
            } else {
                Some((cx.seasonal_check, prediction.expected, 1.0))
            };
        let Some((check, centre, multiplier)) = test else {
            return false;
        };
        let scale = prediction.noise * multiplier;
        let score = (seen.value - centre) / scale;
        let side = Side::of(score > 0.0);
        let threshold = prediction.threshold(cx);
        if score.abs() <= threshold {
            return false;
        }
        let habit = cx.subdaily && check == cx.seasonal_check && self.habitual(t, score > 0.0);
        if habit || !reporting || !rule.direction.allows(side) {
            return habit;
        }
        let p_one = stats::upper_tail(score.abs(), prediction.df);
        let p_value = if rule.direction == Direction::Both {
            (2.0 * p_one).min(1.0)
        } else {
            p_one
        };
        let band = cx.band(centre, threshold * scale);
        let change = (point.value - band.expected).abs();
        if change >= rule.min_abs_change
            && change >= rule.min_rel_change * band.expected.abs()
            && rule.enabled(check)
        {
            let hit = cx.hit(point.i, check).judged(band, score, p_value, side, {
                // the season judged on its own days says so (`render::why`)
                let own = check == Check::Holiday && multiplier == SEASON_SCALE;
                point.note().map(|n| {
                    if own {
                        format!("{n}, {}", crate::model::SEASON_OWN)
                    } else {
                        n
                    }
                })
            });
            out.hits.push(hit);
        }
        false
    }

    /// Daily data with a weekday profile: the weekday profile itself lost
    /// (a pattern change), pooled over two weeks, on usual days only; at
    /// most one finding a week, never a second one at a point.
    fn watch_weekly_shape(
        &mut self,
        cx: &SeriesContext<'_>,
        point: &Point<'_>,
        prediction: &Prediction,
        seen: &Residual,
        out: &mut SeriesOutput,
    ) {
        if !(cx.shape.weekday_shape
            && point.holiday.is_none()
            && point.event.is_none()
            && !point.excluded
            && point.accepted.is_none()
            && point.profile_ready
            && prediction.noise.is_finite())
        {
            return;
        }
        let t = point.t;
        let day = t.div_euclid(DAY_MS);
        self.shape_watch
            .push(day, seen.residual, prediction.seasonal);
        let quiet = self.last_shape_hit.is_none_or(|d| day - d >= 7);
        // (the test is pure: asked only when its answer could be reported)
        let reportable = prediction.eligible
            && cx.in_range(t)
            && quiet
            && cx.input.rule.enabled(cx.seasonal_check)
            && out.hits.last().is_none_or(|h| h.ts != t);
        let Some(loss) = reportable
            .then(|| self.shape_watch.test(prediction.noise, pattern::MIN_LOST))
            .flatten()
            .filter(|loss| loss.z > cx.thresholds[0])
        else {
            return;
        };
        self.last_shape_hit = Some(day);
        let note = format!(
            "weekly shape lost: {:.0}% of the weekday pattern gone over the last {} days",
            (loss.lost * 100.0).min(100.0),
            pattern::DEFAULT_SPAN
        );
        let hit = cx.hit(point.i, cx.seasonal_check).judged(
            prediction.band(cx),
            loss.z,
            stats::upper_tail(loss.z, f64::INFINITY),
            Side::of(seen.residual > 0.0),
            Some(note),
        );
        out.hits.push(hit);
    }

    /// What the baseline learns from the point, if anything: nothing when it
    /// is explained away or capped. A holiday's residual is kept (for the
    /// same holiday next year, and for its stretch). A holiday point with a
    /// known effect keeps the level moving, net of that effect, so a shift
    /// during the season is still caught (it never feeds the weekly shape or
    /// the noise scale); other holiday and event points leave the state alone.
    fn learnable(
        &mut self,
        point: &Point<'_>,
        prediction: &Prediction,
        seen: Residual,
        holiday_effect: Option<(f64, f64)>,
    ) -> Option<Residual> {
        if point.excluded || point.at_cap {
            return None;
        }
        if let Some((holiday, _)) = point.holiday {
            self.holiday_resid.insert(point.t, seen.residual);
            if self.hol_run.holiday != Some(holiday) {
                self.hol_run = HolidayRun {
                    holiday: Some(holiday),
                    residuals: Vec::new(),
                };
            }
            self.hol_run.residuals.push(seen.residual);
        } else {
            self.hol_run.residuals.clear();
        }
        match (point.holiday, holiday_effect) {
            (Some(_), Some((effect, multiplier))) if point.event.is_none() => Some(Residual {
                value: seen.value - effect,
                residual: seen.residual - effect,
                deviation: if prediction.noise.is_finite() {
                    (seen.residual - effect) / (prediction.noise * multiplier)
                } else {
                    0.0
                },
            }),
            (None, _) if point.event.is_none() => Some(seen),
            _ => None,
        }
    }

    /// Learn the point. A CUSUM alarm (small lasting shifts) or a run of
    /// points outside the band re-anchors the level on the new one, returned
    /// as the shift to report; a point inside the band feeds the level and,
    /// on a usual day, last year's errors, the seasonal profile and the noise
    /// scale.
    fn update_baseline(
        &mut self,
        cx: &SeriesContext<'_>,
        point: &Point<'_>,
        prediction: &Prediction,
        learned: &Residual,
    ) -> Option<Shift> {
        let at: LevelPoint = (point.period, learned.value, point.slot);
        // small lasting shifts: a two-sided CUSUM (slack CUSUM_K, alarm CUSUM_H)
        let mut cusum_alarm: Option<(bool, &[LevelPoint])> = None;
        if prediction.noise.is_finite() {
            // heavy tails: shrink by how much wider the point threshold is than normal,
            // so isolated large residuals of a t-distributed series do not add up
            let shrunk = (learned.deviation * cx.cusum_shrink[prediction.tail]).clamp(-4.0, 4.0);
            let independent = self.shifts.decorrelate(shrunk);
            cusum_alarm = self.shifts.cusum_step(independent, at);
        }
        if let Some((up, onset)) = cusum_alarm {
            self.lvl.reset_to(onset.iter().copied());
            let note = format!("level changed over the last {} periods", self.lvl.len());
            return Some(Shift {
                up,
                note,
                p_value: cx.cusum_p,
            });
        }
        if !prediction.noise.is_finite() || learned.deviation.abs() <= ACCEPT_U {
            self.lvl.push(at);
            if point.holiday.is_none() {
                // the local model's own error, for next year and for the gate
                let error = learned.residual + prediction.yoy_used;
                if let Some(correction) = prediction.yoy_correction {
                    self.yoy_model.learn(error, correction, prediction.noise);
                }
                // (not while a relearned level settles: those errors are the
                // relearning, which next year's level will not repeat)
                if self.settling > 0 {
                    self.settling -= 1;
                } else if let Some(kept) = self.yoy_err.get_mut(point.i) {
                    *kept = error;
                }
                self.seasonal.push(point.slot, learned.value);
                self.noise.push_residual(learned.residual);
            }
            self.shifts.inside();
            return None;
        }
        let up = learned.deviation > 0.0;
        let run = self.shifts.outside(at, up)?;
        self.lvl.reset_to(run.iter().map(|&(p, _)| p));
        for &((_, value, slot), _) in run {
            self.seasonal.push(slot, value);
        }
        let run_len = cx.shape.shift_run;
        Some(Shift {
            up,
            note: format!("new level held for {run_len} periods"),
            p_value: stats::upper_tail(ACCEPT_U, prediction.df)
                .powi(i32::try_from(run_len).unwrap_or(i32::MAX)),
        })
    }

    /// Sub-daily noise bursts and slow ramps, on usual days: one finding
    /// each; a re-anchored level (`shifted`) restarts their windows.
    fn watch_subdaily(
        &mut self,
        cx: &SeriesContext<'_>,
        point: &Point<'_>,
        prediction: &Prediction,
        learned: &Residual,
        shifted: bool,
        out: &mut SeriesOutput,
    ) {
        let (Some(bursts), Some(ramps)) = (self.bursts.as_mut(), self.ramps.as_mut()) else {
            return;
        };
        if !(prediction.noise.is_finite() && point.holiday.is_none()) {
            return;
        }
        if shifted {
            bursts.reset();
            ramps.reset();
            return;
        }
        let (t, rule) = (point.t, cx.input.rule);
        // the fitted family is always one of stats::TAILS
        let burst = bursts.push(
            learned.deviation,
            cx.burst_rate[prediction.tail],
            cx.alpha_two,
        );
        let ramp = ramps.push(
            prediction.level,
            ramp::level_se(prediction.noise, cx.shape.n_level),
        );
        let report = prediction.eligible && cx.in_range(t) && point.accepted.is_none();
        let up = learned.deviation > 0.0;
        if let Some(burst) = burst.filter(|_| {
            report
                && rule.enabled(cx.seasonal_check)
                && rule.direction.allows(Side::of(up))
                && out.hits.last().is_none_or(|h| h.ts != t)
        }) {
            let note = format!(
                "noise burst: {} of the last {} periods beyond {} noise units (usually {:.0}%)",
                burst.count,
                burst.window,
                burst::EXCEED_U,
                100.0 * burst.rate
            );
            let hit = cx.hit(point.i, cx.seasonal_check).judged(
                prediction.band(cx),
                learned.deviation,
                burst.p_value,
                Side::of(up),
                Some(note),
            );
            out.hits.push(hit);
        }
        if let Some(ramp) = ramp.filter(|r| {
            report
                && t.saturating_sub(self.pinned_at) >= DAY_MS
                && rule.enabled(Check::LevelShift)
                && rule.direction.allows(Side::of(r.change > 0.0))
        }) {
            let band = cx.band(
                ramp.from_level + prediction.seasonal,
                prediction.threshold(cx) * prediction.noise,
            );
            let note = format!(
                "gradual change: the level moved {:+.0}% over the last {} periods",
                (prediction.expected_value / band.expected - 1.0) * 100.0,
                ramp.lag
            );
            let hit = cx.hit(point.i, Check::LevelShift).judged(
                band,
                ramp.z,
                (2.0 * stats::upper_tail(ramp.z.abs(), f64::INFINITY)).min(1.0),
                Side::of(ramp.change > 0.0),
                Some(note),
            );
            out.hits.push(hit);
        }
    }

    /// A lasting change: the baseline was re-anchored on the new level;
    /// report it once, here, in place of a seasonal finding at the point.
    fn report_shift(
        &mut self,
        cx: &SeriesContext<'_>,
        point: &Point<'_>,
        prediction: &Prediction,
        learned: &Residual,
        shift: Shift,
        out: &mut SeriesOutput,
    ) {
        self.settling = cx.shape.n_level;
        self.shifts.reset();
        let (t, rule) = (point.t, cx.input.rule);
        let new_level = self.lvl.at(point.period, self.seasonal.table());
        let known = self.known_level(cx, t, new_level, prediction);
        if known
            || !(prediction.eligible
                && cx.in_range(t)
                && point.accepted.is_none()
                && rule.enabled(Check::LevelShift)
                && rule.direction.allows(Side::of(shift.up)))
        {
            return;
        }
        out.hits
            .retain(|h| !(h.ts == t && h.check == cx.seasonal_check));
        let hit = cx.hit(point.i, Check::LevelShift).judged(
            prediction.band(cx),
            learned.deviation,
            shift.p_value,
            Side::of(shift.up),
            Some(shift.note),
        );
        out.hits.push(hit);
    }

    /// The end of a learned point: on a usual day its deviation joins the
    /// tail fit; the level's slope and the noise scale are re-measured only
    /// when their windows changed (a new seasonal shape reaches the slope at
    /// the next window change).
    fn refresh(&mut self, point: &Point<'_>, prediction: &Prediction, learned: &Residual) {
        if prediction.noise.is_finite() && point.holiday.is_none() {
            // against the unwidened scale: the widening is measured on these
            self.noise
                .push_deviation(learned.deviation.abs() * prediction.widen);
        }
        self.lvl
            .refresh_slope(self.seasonal.table(), self.seasonal.version());
        self.noise.refresh();
    }

    /// Whether an outlier at `t` (upwards: `up`) repeats one of about a day
    /// earlier on the same side; remembers it as the start of a stretch
    /// unless it continues the last one.
    fn habitual(&mut self, t: i64, up: bool) -> bool {
        self.outlier_starts
            .retain(|&(at, _)| t.saturating_sub(at) <= DAY_MS + HABIT_SLACK_MS);
        let habit = self
            .outlier_starts
            .iter()
            .any(|&(at, side)| side == up && (t - at - DAY_MS).abs() <= HABIT_SLACK_MS);
        let continues = self
            .outlier_starts
            .iter()
            .rev()
            .find(|&&(_, side)| side == up)
            .is_some_and(|&(at, _)| t - at <= STRETCH_MS);
        if !continues {
            if self.outlier_starts.len() >= OUTLIER_STARTS_MAX {
                self.outlier_starts.remove(0);
            }
            self.outlier_starts.push((t, up));
        }
        habit
    }

    /// Whether `level`, reached by a lasting change at `t`, is one the
    /// series held within [`KNOWN_LEVEL_MS`] (within the acceptance band of
    /// it); remembers it and the level it left either way. Sub-daily only:
    /// a daily series' level a day ago is one point, not a regime.
    fn known_level(
        &mut self,
        cx: &SeriesContext<'_>,
        t: i64,
        level: f64,
        prediction: &Prediction,
    ) -> bool {
        if !cx.subdaily || !prediction.noise.is_finite() {
            return false;
        }
        self.known_levels
            .retain(|&(at, _)| t.saturating_sub(at) <= KNOWN_LEVEL_MS);
        let near = ACCEPT_U * prediction.noise;
        let known = self
            .known_levels
            .iter()
            .any(|&(_, held)| (held - level).abs() <= near);
        for held in [prediction.level, level] {
            if self.known_levels.len() >= KNOWN_LEVELS_MAX {
                self.known_levels.remove(0);
            }
            self.known_levels.push((t, held));
        }
        known
    }

    /// After the last point: a series that stopped before the rest of its
    /// source is missing from its next period on.
    pub fn report_stopped(&self, cx: &SeriesContext<'_>, out: &mut SeriesOutput) {
        let (input, step) = (cx.input, cx.step);
        let Some(&last) = input.ts.last() else {
            return;
        };
        if last + self.health.missing_periods().saturating_mul(step) <= input.end_ts
            && cx.in_range(last + step)
            && input.rule.enabled(Check::Missing)
        {
            out.hits.push(Hit {
                expected: self.last_expected,
                side: Side::Down,
                note: Some(format!(
                    "no data since {}",
                    crate::model::format_ts(last, input.granularity)
                )),
                ..Hit::blank(last + step, f64::NAN, Check::Missing, input.ts.len())
            });
        }
    }
}

/// Index of the interval of `spans` (disjoint, ascending) containing `t`,
/// moving the cursor `at` on; `t` must not decrease between calls.
fn covering(spans: &[(i64, i64)], at: &mut usize, t: i64) -> Option<usize> {
    while spans.get(*at).is_some_and(|s| s.1 < t) {
        *at += 1;
    }
    spans.get(*at).is_some_and(|s| s.0 <= t).then_some(*at)
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

/// The holiday that applies to the point at `t` (for weekly data: any day of its week).
fn holiday_of(cal: &Calendar, t: i64, granularity: Granularity) -> Option<HolidayOn> {
    if granularity == Granularity::Week {
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
    granularity: Granularity,
) -> Option<usize> {
    // weekly data: last year's week that contains the same holiday
    let target = match granularity {
        Granularity::Week => date_ms(prev_day),
        _ => date_ms(prev_day) + t.rem_euclid(DAY_MS),
    };
    point_covering(ts, upto, target, granularity.step_ms())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_holiday_run_is_stored_and_shown_as_the_pair_it_was() {
        let runs = [
            HolidayRun::default(),
            HolidayRun {
                holiday: Some(Holiday::HolidaySeason),
                residuals: vec![0.5, -1.25],
            },
            HolidayRun {
                holiday: Some(Holiday::CalendarDate),
                residuals: Vec::new(),
            },
        ];
        let config = bincode::config::standard();
        for run in runs {
            let pair = (run.name().to_string(), run.residuals.clone());
            assert_eq!(format!("{run:?}"), format!("{pair:?}"));
            assert_eq!(format!("{run:#?}"), format!("{pair:#?}"));
            let bytes = bincode::serde::encode_to_vec(&run, config).unwrap();
            assert_eq!(bytes, bincode::serde::encode_to_vec(&pair, config).unwrap());
            let (back, _): (HolidayRun, usize) =
                bincode::serde::decode_from_slice(&bytes, config).unwrap();
            assert_eq!(back.holiday, run.holiday);
            assert_eq!(back.residuals, run.residuals);
        }
        let unknown = ("boxing_day".to_string(), vec![1.0]);
        let bytes = bincode::serde::encode_to_vec(&unknown, config).unwrap();
        assert!(bincode::serde::decode_from_slice::<HolidayRun, _>(&bytes, config).is_err());
    }
}
