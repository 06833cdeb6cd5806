//! The year-over-year component: last year's error of the local model, 364 days
//! (52 weeks, same weekday) back, added to this year's expected value.
//!
//! The local model (level with a linear trend, plus the weekly shape) cannot follow
//! the curvature of a yearly cycle: it lags behind every turn of it, and on weekly
//! data, with a few points of level history, that lag is larger than the noise. The
//! same lag recurs at the same time of every year, so last year's one-step errors
//! around the same date are a forecast of this year's. Only errors of points that
//! fed the baseline count (no outliers, holidays, events, explained points, points
//! of a level shift before it was re-anchored), so last year's anomalies do not
//! come back as this year's expected value.
//!
//! The correction is used only while it earns its place: [`YearOverYear`] keeps,
//! over recent points, the squared errors of the model with and without it, and
//! applies it when it has predicted better. On series whose year holds no shape
//! the correction is noise and stays off. Pure: slices in, numbers out.

use std::collections::VecDeque;

const DAY_MS: i64 = crate::model::MS_PER_DAY;
/// Same weekday one year back.
pub const YEAR_MS: i64 = 364 * DAY_MS;

/// The correction is switched on when, over the recent points, it has cut the
/// squared error of the plain model by at least a fifth: on a series without a
/// yearly shape it is last year's noise, and a coin-flip gain is not a gain.
const GATE: f64 = 0.8;

/// Last year's errors around `t - 364 days` and whether they have recently
/// improved the prediction.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct YearOverYear {
    /// Half-width of last year's window (ms): errors within `± half` of the
    /// aligned date are averaged, so one year's noise is not copied into the next.
    half_ms: i64,
    /// Fewest of last year's errors in the window for a correction.
    min_points: usize,
    /// Recent (error without, error with) squared, clipped; only points where a
    /// correction existed.
    recent: VecDeque<(f64, f64)>,
    /// How many recent points the decision looks at.
    window: usize,
    /// Running sums over `recent`.
    sums: (f64, f64),
    /// The index range of `ts` the last correction averaged over: points come
    /// in time order, so the next window is a few steps further on, not two
    /// searches away. A hint only (checked before use), never checkpointed.
    #[serde(skip)]
    last_window: Option<(usize, usize)>,
}

impl YearOverYear {
    /// `half_ms`: half-width of last year's window; `min_points`: fewest errors
    /// in it; `window`: recent points the on/off decision is made over.
    pub fn new(half_ms: i64, min_points: usize, window: usize) -> YearOverYear {
        YearOverYear {
            half_ms,
            min_points,
            recent: VecDeque::with_capacity(window + 1),
            window,
            sums: (0.0, 0.0),
            last_window: None,
        }
    }

    /// Settings for a series' spacing: ±3 days for daily data (7 errors), ±2
    /// weeks for weekly (5 errors); decisions over the last 8 weeks / 13 weeks.
    pub fn for_step(step_ms: i64) -> YearOverYear {
        if step_ms >= 7 * DAY_MS {
            YearOverYear::new(14 * DAY_MS, 3, 13)
        } else {
            YearOverYear::new(3 * DAY_MS, 4, 56)
        }
    }

    /// Mean of last year's errors around `t - 364 days` among points `..upto`
    /// (`errors[j]` NaN where point `j` did not feed the baseline), if enough exist.
    /// `ts` ascending, the same series from call to call.
    pub fn correction(&mut self, ts: &[i64], errors: &[f64], upto: usize, t: i64) -> Option<f64> {
        let centre = t - YEAR_MS;
        let (first, last) = (centre - self.half_ms, centre + self.half_ms);
        let ts = &ts[..upto];
        // the window is `ts[lo..hi]`: `lo` the first time at or after `first`,
        // `hi` the first after `last`. A hint whose points before it all
        // belong before the window's ends only moves forward to them.
        let (lo, hi) = match self.last_window {
            Some((lo, hi))
                if hi <= ts.len()
                    && lo <= hi
                    && (lo == 0 || ts[lo - 1] < first)
                    && (hi == 0 || ts[hi - 1] <= last) =>
            {
                let lo = lo + ts[lo..].iter().take_while(|&&x| x < first).count();
                let hi = hi.max(lo);
                (lo, hi + ts[hi..].iter().take_while(|&&x| x <= last).count())
            }
            _ => (
                ts.partition_point(|&x| x < first),
                ts.partition_point(|&x| x <= last),
            ),
        };
        self.last_window = Some((lo, hi));
        let (mut sum, mut k) = (0.0, 0usize);
        for &r in &errors[lo..hi] {
            if r.is_finite() {
                sum += r;
                k += 1;
            }
        }
        (k >= self.min_points).then(|| sum / k as f64)
    }

    /// Half-width of last year's window (ms): a point at `t` reads errors of
    /// points no older than `t - YEAR_MS - half_ms()`.
    pub fn half_ms(&self) -> i64 {
        self.half_ms
    }

    /// True when the correction has predicted better than the plain model over
    /// the recent points (at least half the window seen).
    pub fn active(&self) -> bool {
        self.recent.len() * 2 >= self.window && self.sums.1 < GATE * self.sums.0
    }

    /// Record a baseline point's error `r` without the correction `c`, in noise
    /// units scale `sd`; squared errors are clipped at 3 noise units so one odd
    /// point cannot decide.
    pub fn learn(&mut self, r: f64, c: f64, sd: f64) {
        if !(sd.is_finite() && sd > 0.0) {
            return;
        }
        let cap = 9.0;
        let a = (r / sd).powi(2).min(cap);
        let b = ((r - c) / sd).powi(2).min(cap);
        self.recent.push_back((a, b));
        self.sums.0 += a;
        self.sums.1 += b;
        if self.recent.len() > self.window {
            if let Some((x, y)) = self.recent.pop_front() {
                self.sums.0 -= x;
                self.sums.1 -= y;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correction_is_the_mean_of_last_years_errors_around_the_date() {
        // daily points for two years; errors known only in a few places
        let ts: Vec<i64> = (0..800).map(|d| d * DAY_MS).collect();
        let mut err = vec![f64::NAN; 800];
        for (d, e) in err.iter_mut().enumerate().take(104).skip(97) {
            *e = 0.1 * (d as f64 - 96.0); // 0.1 .. 0.7
        }
        let mut y = YearOverYear::for_step(DAY_MS);
        // t = day 464 -> centre day 100 -> days 97..=103, mean 0.4
        let c = y.correction(&ts, &err, 464, ts[464]).unwrap();
        assert!((c - 0.4).abs() < 1e-12, "{c}");
        // too few errors further on: days 101..=107 hold 3
        assert_eq!(y.correction(&ts, &err, 468, ts[468]), None);
        // nothing a year back
        assert_eq!(y.correction(&ts, &err, 200, ts[200]), None);
        // only points before `upto` count
        assert_eq!(y.correction(&ts, &err, 100, ts[464]), None);
    }

    #[test]
    fn the_remembered_window_gives_what_searching_gives() {
        // daily points with gaps (a few days missing, a month missing), errors
        // here and there; asked in time order as the kernel does, then out of
        // order: every answer equals a fresh model's (which searches)
        let mut ts: Vec<i64> = Vec::new();
        for d in 0..900i64 {
            if d % 11 != 3 && !(300..330).contains(&d) {
                ts.push(d * DAY_MS + 7);
            }
        }
        let err: Vec<f64> = (0..ts.len())
            .map(|j| {
                if j % 3 == 0 {
                    f64::NAN
                } else {
                    (j % 17) as f64 * 0.25 - 2.0
                }
            })
            .collect();
        let mut walking = YearOverYear::for_step(DAY_MS);
        let mut asked = 0;
        let mut order: Vec<usize> = (1..ts.len()).collect();
        order.extend([ts.len() - 1, 20, 600, 601, 5, 700, 699, 1]);
        for i in order {
            let fresh = YearOverYear::for_step(DAY_MS).correction(&ts, &err, i, ts[i]);
            let got = walking.correction(&ts, &err, i, ts[i]);
            assert_eq!(got.map(f64::to_bits), fresh.map(f64::to_bits), "point {i}");
            asked += usize::from(got.is_some());
        }
        assert!(asked > 400, "{asked} corrections");
    }

    #[test]
    fn switches_on_only_when_it_predicts_better() {
        let mut y = YearOverYear::new(DAY_MS, 1, 10);
        assert!(!y.active());
        // errors that last year's correction explains
        for k in 0..10 {
            let c = 0.5 + 0.01 * k as f64;
            y.learn(c + 0.05, c, 0.1);
        }
        assert!(y.active());
        // then a year whose shape did not repeat: the correction adds error
        for _ in 0..10 {
            y.learn(0.02, 0.5, 0.1);
        }
        assert!(!y.active());
    }

    #[test]
    fn weekly_window_spans_five_weeks() {
        let ts: Vec<i64> = (0..120).map(|w| w * 7 * DAY_MS).collect();
        let mut err = vec![f64::NAN; 120];
        for w in [8, 9, 10, 11, 12] {
            err[w] = w as f64;
        }
        let mut y = YearOverYear::for_step(7 * DAY_MS);
        // week 62 -> 52 weeks back = week 10, window weeks 8..=12, mean 10
        assert_eq!(y.correction(&ts, &err, 62, ts[62]), Some(10.0));
    }
}
