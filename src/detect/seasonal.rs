//! The seasonal-profile component of the kernel: the expected deviation of
//! each slot of the cycle (weekday of daily data, period of the week of
//! sub-daily data) from the cycle's level.
//!
//! Daily data: per weekday, the robust mean over the last `cycles` complete
//! weeks of each value's deviation from its week's median, usable after two
//! weeks. Sub-daily data: the day profile of [`DayProfile`] (hour of day,
//! weekday, hour of week), folded after each day. Series without a cycle
//! (weekly data, or seasonality off) have a single slot at 0. The state is
//! plain owned data, so it can be checkpointed between runs.

use std::collections::VecDeque;

use super::level::{robust_mean, trimmed_mean_sorted};
use super::profile::DayProfile;
use super::stats::{SortedWindow, median_of};

/// Complete cycles before a weekly profile is used.
const MIN_CYCLES: usize = 2;

/// The seasonal profile of one series.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SeasonalProfile {
    /// Spacing of the series in ms.
    step: i64,
    /// Steps added before cutting time into cycles (weeks start on Monday).
    offset: i64,
    /// Slots per cycle (1: no cycle).
    period: usize,
    /// Points per day.
    ppd: usize,
    /// Cycles each slot's history keeps.
    cycles: usize,
    /// Trimmed mean rather than median across cycles.
    trimmed: bool,
    /// The profile: expected deviation per slot, on the model scale.
    table: Vec<f64>,
    /// Bumped whenever `table` is rewritten.
    version: u64,
    /// Per slot: deviations from their cycle's median, oldest first.
    hist: Vec<VecDeque<f64>>,
    /// Trimmed profiles: each slot's `hist` kept sorted, so a weekly refold
    /// moves one value per slot instead of sorting the slot's history again.
    /// Not stored: rebuilt from `hist` while `sorted_ok` is false (a decoded
    /// state).
    #[serde(skip)]
    hist_sorted: Vec<SortedWindow>,
    /// `hist_sorted` holds `hist`.
    #[serde(skip)]
    sorted_ok: bool,
    /// Complete cycles folded in.
    cycles_done: usize,
    /// The cycle being collected.
    cur_cycle: i64,
    /// Baseline points of the cycle being collected: (slot, value).
    open: Vec<(usize, f64)>,
    /// Sub-daily data: the day profile that fills `table` after each day.
    day: Option<DayProfile>,
    /// (time, slot) of the last [`SeasonalProfile::roll`]: the kernel asks
    /// for the slot of the time it just rolled to, and the roll has divided
    /// already (two 64-bit divisions a point saved). Not stored: a restored
    /// state divides once.
    #[serde(skip)]
    rolled: Option<(i64, usize)>,
    /// Scratch space.
    #[serde(skip)]
    buf: Vec<f64>,
}

impl SeasonalProfile {
    /// A profile of `period` slots for data spaced `step` ms with `ppd`
    /// points a day, cycles cut `offset` steps after the epoch; each slot
    /// keeps `cycles` cycles, centred by a trimmed mean or a median.
    pub fn new(
        step: i64,
        offset: i64,
        period: usize,
        ppd: usize,
        cycles: usize,
        trimmed: bool,
    ) -> SeasonalProfile {
        let period = period.max(1);
        SeasonalProfile {
            step,
            offset,
            period,
            ppd,
            cycles,
            trimmed,
            table: vec![0.0; period],
            version: 0,
            hist: vec![VecDeque::new(); if ppd > 1 { 0 } else { period }],
            hist_sorted: Vec::new(),
            sorted_ok: false,
            cycles_done: 0,
            cur_cycle: i64::MIN,
            open: Vec::with_capacity(period),
            day: (period > 1 && ppd > 1).then(|| DayProfile::new(ppd)),
            rolled: None,
            buf: Vec::new(),
        }
    }

    /// The slot of the cycle the time `t` falls in.
    #[allow(
        clippy::cast_possible_truncation,
        reason = "rem_euclid(period) is in 0..period"
    )]
    pub fn slot(&self, t: i64) -> usize {
        match self.rolled {
            Some((at, slot)) if at == t => slot,
            _ => (t.div_euclid(self.step) + self.offset).rem_euclid(self.period as i64) as usize,
        }
    }

    /// The profile value of a slot.
    pub fn at(&self, slot: usize) -> f64 {
        self.table[slot]
    }

    /// The whole profile, by slot.
    pub fn table(&self) -> &[f64] {
        &self.table
    }

    /// Names the profile's contents: it changes whenever the table is rewritten.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// True when the profile has seen enough history to be used.
    pub fn ready(&self) -> bool {
        match &self.day {
            Some(d) => d.ready(),
            None => self.period == 1 || self.cycles_done >= MIN_CYCLES,
        }
    }

    /// Fold the cycle (or, sub-daily, the day) that ended before `t` into the
    /// profile. Call before predicting the point at `t`.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "units - c * period is in 0..period"
    )]
    pub fn roll(&mut self, t: i64) {
        let units = t.div_euclid(self.step) + self.offset;
        if let Some(dp) = self.day.as_mut() {
            self.rolled = Some((t, units.rem_euclid(self.period as i64) as usize));
            let day = units.div_euclid(i64::try_from(self.ppd.max(1)).unwrap_or(1));
            if dp.roll(day, &mut self.table) {
                self.version += 1;
            }
            return;
        }
        if self.period == 1 {
            self.rolled = Some((t, 0));
            return;
        }
        let c = units.div_euclid(self.period as i64);
        // units.rem_euclid(period), without a second division
        self.rolled = Some((t, (units - c * self.period as i64) as usize));
        if c == self.cur_cycle {
            return;
        }
        if self.open.len() * 2 >= self.period {
            let med = median_of(self.open.iter().map(|p| p.1), &mut self.buf);
            if self.trimmed && !self.sorted_ok {
                self.hist_sorted = self
                    .hist
                    .iter()
                    .map(|h| SortedWindow::from_values(h.iter().copied()))
                    .collect();
                self.sorted_ok = true;
            }
            for &(s, x) in &self.open {
                let h = &mut self.hist[s];
                let old = if h.len() >= self.cycles {
                    h.pop_front()
                } else {
                    None
                };
                h.push_back(x - med);
                if let Some(w) = self.hist_sorted.get_mut(s) {
                    match old {
                        Some(old) => w.replace(old, x - med),
                        None => w.insert(x - med),
                    }
                }
            }
            self.cycles_done += 1;
            if self.cycles_done >= MIN_CYCLES {
                self.version += 1;
                for (s, h) in self.hist.iter().enumerate() {
                    if h.is_empty() {
                        continue;
                    }
                    self.table[s] = match self.hist_sorted.get(s) {
                        // the trimmed mean of the sorted values: what
                        // `robust_mean` gives after sorting them
                        Some(w) => trimmed_mean_sorted(w.as_slice()),
                        None => robust_mean(self.trimmed, h.iter().copied(), &mut self.buf),
                    };
                }
            }
        }
        self.open.clear();
        self.cur_cycle = c;
    }

    /// Learn from a baseline point: value `x` (model scale) in `slot`.
    pub fn push(&mut self, slot: usize, x: f64) {
        if let Some(dp) = self.day.as_mut() {
            dp.push(slot, x);
        } else if self.period > 1 {
            self.open.push((slot, x));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    #[test]
    fn a_weekly_shape_is_learned_after_two_weeks() {
        // day 0 of the epoch is a Thursday: offset 3 puts Monday in slot 0
        let mut p = SeasonalProfile::new(DAY, 3, 7, 1, 12, true);
        let shape = [0.1, 0.2, 0.0, -0.1, -0.2, 0.3, -0.3];
        let mut versions = Vec::new();
        for d in 4..(4 + 3 * 7) {
            let t = d * DAY;
            p.roll(t);
            versions.push(p.version());
            let s = p.slot(t);
            p.push(s, 10.0 + shape[s]);
        }
        p.roll((4 + 3 * 7) * DAY);
        assert_eq!(p.slot(4 * DAY), 0, "1970-01-05 is a Monday");
        assert!(p.ready());
        // deviations from the week's median (10.0)
        for (s, want) in shape.iter().enumerate() {
            assert!((p.at(s) - want).abs() < 1e-12, "slot {s}: {}", p.at(s));
        }
        // rewritten at the end of weeks 2 and 3 only
        assert_eq!(p.version(), 2);
        assert_eq!(versions.iter().filter(|&&v| v == 0).count(), 14);
    }

    #[test]
    #[allow(
        clippy::cast_possible_truncation,
        reason = "rem_euclid(period) is in 0..period"
    )]
    fn the_slot_remembered_from_the_roll_is_the_slot_computed() {
        const HOUR: i64 = 3_600_000;
        for (step, offset, period, ppd) in [(DAY, 3, 7, 1), (HOUR, 72, 168, 24), (7 * DAY, 0, 1, 1)]
        {
            let mut p = SeasonalProfile::new(step, offset, period, ppd, 12, true);
            let slot = |t: i64| (t.div_euclid(step) + offset).rem_euclid(period as i64) as usize;
            // before and after the epoch, on and off the grid, with gaps
            let mut t = -40 * step - 17;
            while t < 60 * step {
                p.roll(t);
                assert_eq!(p.slot(t), slot(t), "t {t}");
                // a time it did not roll to is computed
                assert_eq!(p.slot(t + step), slot(t + step), "t {t}");
                p.push(p.slot(t), (t % 5) as f64);
                t += step * (1 + i64::from(t.rem_euclid(3) == 0)) + 1;
            }
        }
    }

    #[test]
    fn the_kept_histories_give_the_trimmed_means_of_the_histories() {
        // daily data over 80 weeks: days missing, a slot pushed twice in a
        // week, ties and both zeros; decoded from a checkpoint half way (the
        // sorted histories are not stored and come back from `hist`)
        let mut p = SeasonalProfile::new(DAY, 3, 7, 1, 12, true);
        let mut seed = 11u64;
        let mut buf = Vec::new();
        let mut checked = 0;
        for d in 0..560i64 {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            if seed >> 61 == 0 {
                continue;
            }
            let t = d * DAY;
            p.roll(t);
            if p.cycles_done >= MIN_CYCLES {
                for (s, h) in p.hist.iter().enumerate().filter(|(_, h)| !h.is_empty()) {
                    let want = robust_mean(true, h.iter().copied(), &mut buf);
                    assert_eq!(p.at(s).to_bits(), want.to_bits(), "day {d}, slot {s}");
                    checked += 1;
                }
            }
            let x = match seed >> 58 & 7 {
                0 => 0.0,
                1 => -0.0,
                2 => 1.0,
                _ => (seed >> 20) as f64 / 1e12,
            };
            p.push(p.slot(t), x);
            if d % 97 == 0 {
                p.push(p.slot(t), -x);
            }
            if d == 280 {
                let bytes = bincode::serde::encode_to_vec(&p, bincode::config::standard()).unwrap();
                p = bincode::serde::decode_from_slice(&bytes, bincode::config::standard())
                    .unwrap()
                    .0;
                assert!(!p.sorted_ok && p.hist_sorted.is_empty());
            }
        }
        assert!(checked > 3000, "{checked}");
    }

    #[test]
    fn half_empty_weeks_are_not_folded_and_no_cycle_means_zero() {
        let mut p = SeasonalProfile::new(DAY, 3, 7, 1, 12, true);
        for week in 0..4 {
            for d in 0..3 {
                let t = (4 + week * 7 + d) * DAY;
                p.roll(t);
                p.push(p.slot(t), 5.0);
            }
        }
        assert!(!p.ready());
        let mut flat = SeasonalProfile::new(7 * DAY, 0, 1, 1, 12, true);
        flat.roll(0);
        assert!(flat.ready());
        assert_eq!(flat.slot(123 * DAY), 0);
        assert_eq!(flat.at(0), 0.0);
    }
}
