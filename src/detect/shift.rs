//! The shift detector of the kernel: a lasting change of level, found either
//! as a run of consecutive points beyond the acceptance band on one side, or
//! by a two-sided CUSUM of standardised residuals for smaller shifts.
//!
//! Either way it hands back the points since the change began, so the level
//! can be re-anchored on them. The state is plain owned data, so it can be
//! checkpointed between runs.

use super::level::LevelPoint;

/// CUSUM slack: shifts above about twice this (in noise units) accumulate.
pub const CUSUM_K: f64 = 1.0;
/// CUSUM alarm level.
pub const CUSUM_H: f64 = 8.0;

/// Weight of a new point in the running lag-one autocorrelation of the
/// residuals (about the last 250 points).
const AUTOCORR_WEIGHT: f64 = 1.0 / 256.0;
/// The autocorrelation is capped here: the CUSUM is never deafened.
const AUTOCORR_MAX: f64 = 0.8;

/// Per-period false-alarm rate of the two-sided CUSUM on normal residuals:
/// 2 / ARL0, with Siegmund's approximation of the in-control run length.
pub fn cusum_false_alarm_rate() -> f64 {
    let b = 2.0 * CUSUM_K * (CUSUM_H + 1.166);
    2.0 * 2.0 * CUSUM_K * CUSUM_K / (b.exp() - b - 1.0)
}

/// Shift-detector state of one series.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ShiftDetector {
    /// Consecutive points beyond the band that make a shift.
    run_len: usize,
    /// The current run of points beyond the band, with their side (up).
    run: Vec<(LevelPoint, bool)>,
    /// CUSUM statistics, upward and downward.
    cusum: [f64; 2],
    /// The points since each side's statistic last left 0.
    onset: [Vec<LevelPoint>; 2],
    /// Running lag-one autocorrelation of the residuals: the last one, the
    /// mean product of neighbours and the mean square. Real series' residuals
    /// drift together for a while (a news hour, a daily cycle the level lags
    /// behind); summed as if independent they reach the alarm far more often
    /// than its rate says. Kept across resets: it belongs to the series.
    last_u: f64,
    lag_product: f64,
    square: f64,
}

impl ShiftDetector {
    /// A detector that calls `run_len` consecutive outlying points a shift.
    pub fn new(run_len: usize) -> ShiftDetector {
        ShiftDetector {
            run_len,
            run: Vec::new(),
            cusum: [0.0; 2],
            onset: [Vec::new(), Vec::new()],
            last_u: f64::NAN,
            lag_product: 0.0,
            square: 0.0,
        }
    }

    /// Learn the residual `u`'s correlation with the last one; returns `u`
    /// scaled to what an independent residual with the same effect on a sum
    /// would be: × √((1−ρ)/(1+ρ)), the ratio of the independent to the
    /// actual standard deviation of a long sum of AR(1) residuals.
    pub fn decorrelate(&mut self, u: f64) -> f64 {
        if self.last_u.is_finite() {
            let w = AUTOCORR_WEIGHT;
            self.lag_product += w * (u * self.last_u - self.lag_product);
            self.square += w * (u * u - self.square);
        }
        self.last_u = u;
        let rho = if self.square > 0.0 {
            (self.lag_product / self.square).clamp(0.0, AUTOCORR_MAX)
        } else {
            0.0
        };
        u * ((1.0 - rho) / (1.0 + rho)).sqrt()
    }

    /// Forget everything (after a shift, or when the level is relearned).
    pub fn reset(&mut self) {
        self.run.clear();
        self.cusum = [0.0; 2];
        self.onset[0].clear();
        self.onset[1].clear();
    }

    /// Feed the CUSUM with a standardised residual `uc` of point `p`; on an
    /// alarm, the side (true: up) and the points since that side's onset.
    pub fn cusum_step(&mut self, uc: f64, p: LevelPoint) -> Option<(bool, &[LevelPoint])> {
        let mut alarm: Option<usize> = None;
        for (side, sign) in [(0usize, 1.0f64), (1, -1.0)] {
            self.cusum[side] = (self.cusum[side] + sign * uc - CUSUM_K).max(0.0);
            if self.cusum[side] == 0.0 {
                self.onset[side].clear();
            } else {
                self.onset[side].push(p);
                if self.cusum[side] > CUSUM_H {
                    alarm = Some(side);
                }
            }
        }
        alarm.map(|side| (side == 0, self.onset[side].as_slice()))
    }

    /// A point inside the acceptance band: any run of outliers is broken.
    pub fn inside(&mut self) {
        self.run.clear();
    }

    /// A point beyond the band on side `up`; when it completes a run, the
    /// run's points.
    pub fn outside(&mut self, p: LevelPoint, up: bool) -> Option<&[(LevelPoint, bool)]> {
        if self.run.last().is_some_and(|q| q.1 != up) {
            self.run.clear();
        }
        self.run.push((p, up));
        (self.run.len() >= self.run_len).then_some(self.run.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(t: i64) -> LevelPoint {
        (t, t as f64, 0)
    }

    #[test]
    fn a_run_on_one_side_is_a_shift() {
        let mut s = ShiftDetector::new(3);
        assert!(s.outside(p(0), true).is_none());
        assert!(s.outside(p(1), false).is_none()); // the side changed: a new run
        assert!(s.outside(p(2), false).is_none());
        s.inside();
        assert!(s.outside(p(3), false).is_none());
        assert!(s.outside(p(4), false).is_none());
        let run = s.outside(p(5), false).unwrap();
        assert_eq!(run.iter().map(|q| q.0.0).collect::<Vec<_>>(), vec![3, 4, 5]);
    }

    #[test]
    fn the_cusum_alarms_after_a_lasting_small_shift() {
        let mut s = ShiftDetector::new(3);
        // noise around 0 keeps both statistics at 0
        for t in 0..50 {
            assert!(
                s.cusum_step(if t % 2 == 0 { 0.8 } else { -0.8 }, p(t))
                    .is_none()
            );
        }
        // a shift of 2 units adds 1 a point: the alarm comes when the sum
        // passes 8, at the 9th point, with all 9 points since the onset
        for t in 50..58 {
            assert!(s.cusum_step(2.0, p(t)).is_none(), "{t}");
        }
        let (up, pts) = s.cusum_step(2.0, p(58)).unwrap();
        assert!(up);
        assert_eq!(pts.len(), 9);
        assert_eq!(pts[0].0, 50);
        s.reset();
        assert!(s.cusum_step(2.0, p(59)).is_none());
    }

    #[test]
    fn the_false_alarm_rate_is_small() {
        let r = cusum_false_alarm_rate();
        assert!(r > 1e-9 && r < 1e-6, "{r}");
    }
}
