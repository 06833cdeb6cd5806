//! The weekly-shape test (`pattern_change`): has the weekday profile itself
//! changed, rather than one point?
//!
//! A lost weekly shape (a retailer's weekend peak gone, a B2B series busy on
//! Sunday) shows as residuals that mirror the profile: each day is off by minus
//! its own weekday effect. One week of residuals is regressed on the profile:
//! `lost = -Σ r·p / Σ p²` over the last seven days (profile centred), 0 while the
//! shape holds and 1 when it is gone, with standard error `sd / √Σp²`. A point
//! test sees each day alone and misses it when the shape is small against the
//! noise; the regression pools the week. So that one odd day (a dip on the
//! busiest weekday) cannot pass for a lost shape, the smallest of the seven
//! leave-one-day-out estimates is the one tested. Pure: numbers in, numbers out.

use std::collections::VecDeque;

/// Fraction of the weekly shape that must be gone before it is reported.
pub const MIN_LOST: f64 = 0.5;

/// One week of residuals against the weekday profile.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ShapeWatch {
    /// (day number, residual, profile value of its weekday), newest last.
    days: VecDeque<(i64, f64, f64)>,
    /// Days pooled by the test (whole weeks, so every weekday weighs the same).
    span: usize,
}

impl Default for ShapeWatch {
    fn default() -> Self {
        ShapeWatch::new(DEFAULT_SPAN)
    }
}

/// Days pooled by default: two weeks (a lost shape on a noisy series is
/// rarely clear in one).
pub const DEFAULT_SPAN: usize = 14;

/// What the last week says about the weekly shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShapeLoss {
    /// Share of the weekday profile that is gone (0 holds, 1 gone), the smallest
    /// leave-one-day-out estimate.
    pub lost: f64,
    /// `lost` in standard errors.
    pub z: f64,
}

impl ShapeWatch {
    /// A watch pooling `span` consecutive days (a multiple of 7).
    pub fn new(span: usize) -> ShapeWatch {
        ShapeWatch {
            days: VecDeque::with_capacity(span + 1),
            span: span.max(7),
        }
    }

    /// Add a day's residual `r` (after the expected value) and its weekday's
    /// profile value `p`; `day` is the day number (days since the epoch).
    pub fn push(&mut self, day: i64, r: f64, p: f64) {
        self.days.push_back((day, r, p));
        let span = i64::try_from(self.span).unwrap_or(i64::MAX);
        while self.days.front().is_some_and(|d| day - d.0 >= span) {
            self.days.pop_front();
        }
    }

    /// Forget the week (a gap, a re-anchored level).
    pub fn clear(&mut self) {
        self.days.clear();
    }

    /// The shape test over the last `span` days, with noise scale `sd`; `None`
    /// until `span` consecutive days are in, when the profile is flat, or when
    /// some leave-one-day-out estimate is at most `min_lost` (then the smallest
    /// is too: only answers above `min_lost` come back, and most points stop
    /// after the first estimate instead of computing all of them).
    pub fn test(&self, sd: f64, min_lost: f64) -> Option<ShapeLoss> {
        if self.days.len() < self.span || !(sd.is_finite() && sd > 0.0) {
            return None;
        }
        let mean_p = self.days.iter().map(|d| d.2).sum::<f64>() / self.span as f64;
        let (mut srp, mut spp) = (0.0, 0.0);
        for &(_, r, p) in &self.days {
            let pc = p - mean_p;
            srp += r * pc;
            spp += pc * pc;
        }
        let mut lost = f64::INFINITY;
        let mut spp_min = spp;
        for &(_, r, p) in &self.days {
            let pc = p - mean_p;
            let s = spp - pc * pc;
            if s <= 0.0 {
                return None;
            }
            let l = -(srp - r * pc) / s;
            if l <= min_lost {
                return None;
            }
            if l < lost {
                lost = l;
                spp_min = s;
            }
        }
        if spp_min < (0.5 * sd).powi(2) {
            // the shape is within the noise: nothing to lose
            return None;
        }
        Some(ShapeLoss {
            lost,
            z: lost * spp_min.sqrt() / sd,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RETAIL: [f64; 7] = [-0.05, -0.08, -0.07, -0.05, 0.0, 0.13, 0.17];

    fn week(watch: &mut ShapeWatch, start: i64, resid: impl Fn(usize) -> f64) {
        for (k, p) in RETAIL.iter().enumerate() {
            watch.push(start + k as i64, resid(k), *p);
        }
    }

    #[test]
    fn a_held_shape_is_not_lost() {
        let mut w = ShapeWatch::new(7);
        let noise = [0.01, -0.02, 0.0, 0.015, -0.01, 0.02, -0.005];
        week(&mut w, 100, |k| noise[k]);
        let s = w.test(0.02, f64::NEG_INFINITY).unwrap();
        assert!(s.lost.abs() < 0.3 && s.z.abs() < 3.0, "{s:?}");
    }

    #[test]
    fn a_lost_shape_is_one_and_significant() {
        let mut w = ShapeWatch::new(7);
        // every day off by minus its weekday effect: the shape is gone
        week(&mut w, 100, |k| -RETAIL[k]);
        let s = w.test(0.02, f64::NEG_INFINITY).unwrap();
        // (leaving a day out moves the centring a little)
        assert!((s.lost - 1.0).abs() < 0.05, "{s:?}");
        // centred Σp² = 0.0617, 0.035 to 0.062 with a day left out: z ≈ √Σp² / 0.02 ≈ 9 to 12
        assert!(s.z > 8.5 && s.z < 12.5, "{s:?}");
    }

    #[test]
    fn one_odd_day_is_not_a_lost_shape() {
        let mut w = ShapeWatch::new(7);
        // a deep dip on the busiest day alone mirrors the profile's peak
        week(&mut w, 100, |k| if k == 6 { -0.5 } else { 0.0 });
        let s = w.test(0.02, f64::NEG_INFINITY).unwrap();
        assert!(s.lost < MIN_LOST, "{s:?}");
    }

    #[test]
    fn a_floor_on_the_loss_answers_only_above_it() {
        let mut lost = ShapeWatch::new(7);
        week(&mut lost, 100, |k| -RETAIL[k]);
        let full = lost.test(0.02, f64::NEG_INFINITY).unwrap();
        // every estimate above the floor: the same answer, bit for bit
        assert_eq!(lost.test(0.02, MIN_LOST), Some(full));
        // the smallest estimate at the floor: nothing
        assert_eq!(lost.test(0.02, full.lost), None);
        let mut held = ShapeWatch::new(7);
        week(&mut held, 100, |_| 0.0);
        assert!(held.test(0.02, f64::NEG_INFINITY).is_some());
        assert_eq!(held.test(0.02, MIN_LOST), None);
    }

    #[test]
    fn needs_seven_consecutive_days_and_a_shape() {
        let mut w = ShapeWatch::new(7);
        for (k, p) in (100..).zip(&RETAIL[..6]) {
            w.push(k, 0.0, *p);
        }
        assert_eq!(w.test(0.02, f64::NEG_INFINITY), None);
        // a gap: day 110 pushes out everything before day 104
        w.push(110, 0.0, 0.0);
        assert_eq!(w.test(0.02, f64::NEG_INFINITY), None);
        let mut flat = ShapeWatch::new(7);
        for k in 0..7 {
            flat.push(k, 0.0, 0.001 * k as f64);
        }
        assert_eq!(flat.test(0.02, f64::NEG_INFINITY), None);
    }
}
