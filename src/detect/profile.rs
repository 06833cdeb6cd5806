//! The seasonal profile of a sub-daily series: the shape its history supports.
//!
//! Hourly and 5-minute exports are short (days to a few weeks), so an
//! hour-of-week profile learned from 8 weeks would leave most of them without a
//! baseline. [`DayProfile`] learns instead, day by day:
//! - an **hour-of-day shape** (per period of the day, the median deviation of
//!   each point from its day's median over the last [`DAYS_KEPT`] days, pooled over
//!   neighbouring periods so 5-minute data is not 288 noisy medians), usable
//!   after [`MIN_DAYS`] days;
//! - a **day-of-week effect** (each day's level against the median of the seven
//!   days around it, per weekday), known for a weekday once one such day is
//!   complete and its three following days are in — until then 0, i.e. like a
//!   weekday;
//! - an **hour-of-week correction** once [`HOW_WEEKS`] complete weeks are in:
//!   per slot of the week, the median of what day shape and weekday effect left
//!   unexplained (weekends whose daily shape differs from weekdays').
//!
//! It fills the kernel's slot-of-week table (`slot = weekday × ppd + period of
//! day`, Monday first) after each day, so the kernel looks values up as it does
//! for the weekly shape of daily data. Pure and causal: a day is folded in only
//! once it is over.

use std::collections::VecDeque;

use super::stats::median_of;

/// Days of history the hour-of-day shape is the median over.
pub const DAYS_KEPT: usize = 14;
/// Days that must be complete before the shape is used.
pub const MIN_DAYS: usize = 2;
/// Complete weeks before the hour-of-week correction is used.
pub const HOW_WEEKS: usize = 3;
/// Weeks of hour-of-week residuals kept.
const WEEKS_KEPT: usize = 8;
/// Weeks of weekday effects kept per weekday.
const DOW_KEPT: usize = 8;

/// Learns a sub-daily series' hour-of-day shape, weekday effects and (with
/// enough weeks) an hour-of-week correction from baseline points.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DayProfile {
    /// Periods per day.
    ppd: usize,
    /// Neighbouring periods on each side pooled into one period's shape value.
    half: usize,
    /// Per period of the day: deviations from their day's median, newest last.
    hist: Vec<VecDeque<f64>>,
    /// Current hour-of-day shape.
    shape: Vec<f64>,
    /// The open day's baseline points (period of day, weekday, value).
    day: Vec<(usize, usize, f64)>,
    /// Index of the open day (days since the epoch, in the slot numbering).
    cur_day: i64,
    /// Days folded in.
    days_done: usize,
    /// Recent complete days: (day index, level against the day shape).
    levels: VecDeque<(i64, f64)>,
    /// Per weekday: effects of past days of that weekday.
    dow_hist: [VecDeque<f64>; 7],
    /// Per slot of the week: residuals left by shape and weekday effect.
    how_hist: Vec<VecDeque<f64>>,
    /// Per slot of the week: days that contributed.
    how_days: [usize; 7],
    /// Scratch for medians.
    #[serde(skip)]
    buf: Vec<f64>,
}

impl DayProfile {
    /// A profile for `ppd` periods per day.
    pub fn new(ppd: usize) -> DayProfile {
        let ppd = ppd.max(1);
        DayProfile {
            ppd,
            half: ppd / 96,
            hist: vec![VecDeque::new(); ppd],
            shape: vec![0.0; ppd],
            day: Vec::with_capacity(ppd),
            cur_day: i64::MIN,
            days_done: 0,
            levels: VecDeque::new(),
            dow_hist: Default::default(),
            how_hist: vec![VecDeque::new(); 7 * ppd],
            how_days: [0; 7],
            buf: Vec::new(),
        }
    }

    /// True once the shape has enough days to predict with.
    pub fn ready(&self) -> bool {
        self.days_done >= MIN_DAYS
    }

    /// Start a new day when `slot_day` (the day of the point about to be
    /// evaluated) differs from the open one: fold the open day in and rewrite
    /// `table` (the kernel's slot-of-week profile). Call before predicting.
    /// True when `table` was rewritten.
    pub fn roll(&mut self, slot_day: i64, table: &mut [f64]) -> bool {
        if slot_day == self.cur_day {
            return false;
        }
        let folded = self.day.len() * 2 >= self.ppd;
        if folded {
            self.fold();
            self.fill(table);
        }
        self.day.clear();
        self.cur_day = slot_day;
        folded
    }

    /// Add a baseline point of the open day: `slot` of the week, value `x`
    /// (on the kernel's scale).
    pub fn push(&mut self, slot: usize, x: f64) {
        self.day.push((slot % self.ppd, (slot / self.ppd) % 7, x));
    }

    /// Forget the day levels behind the weekday effects (after a lasting change
    /// of level, days on both sides of it would bias them).
    pub fn reset_levels(&mut self) {
        self.levels.clear();
    }

    fn fold(&mut self) {
        let med = median_of(self.day.iter().map(|p| p.2), &mut self.buf);
        for &(s, _, x) in &self.day {
            let h = &mut self.hist[s];
            if h.len() == DAYS_KEPT {
                h.pop_front();
            }
            h.push_back(x - med);
        }
        self.days_done += 1;
        self.update_shape();
        // the day's level against the (updated) shape
        let lev = median_of(
            self.day.iter().map(|&(s, _, x)| x - self.shape[s]),
            &mut self.buf,
        );
        let weekday = self.day.first().map_or(0, |p| p.1);
        // hour-of-week residuals: what the day shape leaves within the day
        // (the day's own level, weekday effect included, is taken out)
        for &(s, w, x) in &self.day {
            let h = &mut self.how_hist[w * self.ppd + s];
            if h.len() == WEEKS_KEPT {
                h.pop_front();
            }
            h.push_back(x - self.shape[s] - lev);
        }
        self.how_days[weekday] += 1;
        self.levels.push_back((self.cur_day, lev));
        while self
            .levels
            .front()
            .is_some_and(|&(d, _)| d < self.cur_day - 6)
        {
            self.levels.pop_front();
        }
        // the day three days back now has the seven days around it
        let c = self.cur_day - 3;
        if self.levels.len() >= 5
            && let Some(&(_, lc)) = self.levels.iter().find(|&&(d, _)| d == c)
        {
            let reference = median_of(self.levels.iter().map(|p| p.1), &mut self.buf);
            let w = usize::try_from(c.rem_euclid(7)).unwrap_or(0);
            let h = &mut self.dow_hist[w];
            if h.len() == DOW_KEPT {
                h.pop_front();
            }
            h.push_back(lc - reference);
        }
    }

    fn update_shape(&mut self) {
        let p = self.ppd;
        for s in 0..p {
            let half = self.half;
            let hist = &self.hist;
            self.shape[s] = median_of(
                (0..=2 * half).flat_map(|k| hist[(s + p + k - half) % p].iter().copied()),
                &mut self.buf,
            );
            if self.shape[s].is_nan() {
                self.shape[s] = 0.0;
            }
        }
    }

    /// The weekday effect of weekday `w` (0 when not yet known).
    fn dow(&self, w: usize) -> f64 {
        let h = &self.dow_hist[w];
        if h.is_empty() {
            0.0
        } else {
            let mut v: Vec<f64> = h.iter().copied().collect();
            super::stats::median_in_place(&mut v)
        }
    }

    fn fill(&mut self, table: &mut [f64]) {
        let p = self.ppd;
        let weeks_ok = self.how_days.iter().all(|&d| d >= HOW_WEEKS);
        for w in 0..7 {
            let d = self.dow(w);
            for s in 0..p {
                let Some(cell) = table.get_mut(w * p + s) else {
                    return;
                };
                let mut v = self.shape[s] + d;
                if weeks_ok {
                    // the correction, pooled like the shape, minus the weekday's
                    // own level (already in `d`)
                    let half = self.half;
                    let hist = &self.how_hist;
                    let corr = median_of(
                        (0..=2 * half)
                            .flat_map(|k| hist[w * p + (s + p + k - half) % p].iter().copied()),
                        &mut self.buf,
                    );
                    if corr.is_finite() {
                        v += corr;
                    }
                }
                *cell = v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feed days `from..to` (day 0 a Monday) of `f(slot of week)`.
    fn feed(
        p: &mut DayProfile,
        table: &mut [f64],
        ppd: usize,
        (from, days): (usize, usize),
        f: impl Fn(usize) -> f64,
    ) {
        for d in from..days {
            p.roll(d as i64, table);
            for s in 0..ppd {
                let slot = (d % 7) * ppd + s;
                p.push(slot, f(slot));
            }
        }
        p.roll(days as i64, table);
    }

    #[test]
    fn learns_the_hour_of_day_shape_in_two_days() {
        let ppd = 24;
        let mut p = DayProfile::new(ppd);
        let mut table = vec![0.0; 7 * ppd];
        let shape = |s: usize| {
            if (9..17).contains(&(s % ppd)) {
                1.0
            } else {
                0.0
            }
        };
        feed(&mut p, &mut table, ppd, (0, 1), shape);
        assert!(!p.ready());
        feed(&mut p, &mut table, ppd, (1, 2), shape);
        assert!(p.ready());
        // a working hour sits 1 above a night hour, on every weekday
        for w in 0..7 {
            let d = table[w * ppd + 12] - table[w * ppd + 3];
            assert!((d - 1.0).abs() < 1e-9, "weekday {w}: {d}");
        }
    }

    #[test]
    fn learns_weekend_levels_once_a_weekend_is_seen() {
        let ppd = 24;
        let mut p = DayProfile::new(ppd);
        let mut table = vec![0.0; 7 * ppd];
        // weekends 0.7 lower (log scale), flat days
        let f = |slot: usize| if slot / ppd >= 5 { 3.0 } else { 3.7 };
        feed(&mut p, &mut table, ppd, (0, 10), f);
        let sat = table[5 * ppd + 10];
        let wed = table[2 * ppd + 10];
        assert!((wed - sat - 0.7).abs() < 1e-9, "sat {sat} wed {wed}");
        // a weekday not yet judged (Sunday's effect is known 3 days later)
        // counts as a weekday: after 5 days Saturday is still unknown
        let mut q = DayProfile::new(ppd);
        let mut t2 = vec![0.0; 7 * ppd];
        feed(&mut q, &mut t2, ppd, (0, 6), f);
        assert_eq!(t2[5 * ppd + 10], t2[2 * ppd + 10]);
    }

    #[test]
    fn five_minute_shape_is_pooled_over_neighbouring_periods() {
        let ppd = 288;
        let mut p = DayProfile::new(ppd);
        assert_eq!(p.half, 3);
        let mut table = vec![0.0; 7 * ppd];
        // a blip at one period in seven, every day, is noise to a pooled shape
        // (each period's value is the median over seven neighbouring periods)
        feed(&mut p, &mut table, ppd, (0, 3), |s| {
            if s % 7 == 0 { 0.5 } else { 0.0 }
        });
        assert!(p.ready());
        assert!(table.iter().all(|v| v.abs() < 1e-9), "{:?}", &table[..14]);
    }

    #[test]
    fn hour_of_week_correction_after_three_weeks() {
        let ppd = 24;
        let mut p = DayProfile::new(ppd);
        let mut table = vec![0.0; 7 * ppd];
        // Sundays peak in the morning, other days at night: one hour-of-day
        // shape cannot hold both
        let f = |slot: usize| {
            let (w, s) = (slot / ppd, slot % ppd);
            if (w == 6 && s == 8) || (w != 6 && s == 20) {
                1.0
            } else {
                0.0
            }
        };
        feed(&mut p, &mut table, ppd, (0, 14), f);
        assert!(
            table[6 * ppd + 8] - table[6 * ppd + 3] < 0.5,
            "two weeks: no correction yet"
        );
        feed(&mut p, &mut table, ppd, (14, 21), f);
        let sunday = table[6 * ppd + 8] - table[6 * ppd + 3];
        let monday = table[20] - table[8];
        assert!((sunday - 1.0).abs() < 1e-9, "{sunday}");
        assert!((monday - 1.0).abs() < 1e-9, "{monday}");
    }
}
