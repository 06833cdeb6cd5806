//! Slow ramps: a gradual drift of the level (a leak, a filling queue) that the
//! level tracker absorbs.
//!
//! The kernel's level follows a trend (a robust slope over the last hours), so
//! a climb spread over hours leaves one-step residuals near zero and neither
//! the point test, the run rule nor the CUSUM sees it. What does show is the
//! level itself: its change over a lag of some hours, `D = level(t) −
//! level(t − lag)`. Under normal conditions `D` wanders by the level's own
//! estimation error and whatever the seasonal profile misses, so it is judged
//! against its own history: a robust scale of `D` sampled once every
//! `lag / 6` points over the last days (never below the level's standard
//! error from the noise scale). A ramp is `D` beyond [`RAMP_Z`] such scales on
//! one side for `persist` points in a row; it is reported once, and the watch
//! stays quiet until `D` falls back within half that. A detected level shift
//! resets the watch, since its jump is not a drift.
//!
//! Pure: levels in, alarms out; no clock, no I/O.

use std::collections::VecDeque;

use super::stats;

/// Robust scales of the level change that make a ramp.
pub const RAMP_Z: f64 = 6.0;
/// Days of level-change samples the scale is measured over.
const SCALE_DAYS: usize = 14;
/// Fewest samples before the watch tests anything.
const MIN_SAMPLES: usize = 24;

/// Standard error of the change of a median level of `n_level` points with
/// noise scale `sd`: the smallest scale the watch believes for `D`.
pub fn level_se(sd: f64, n_level: usize) -> f64 {
    1.2533 * sd * (2.0 / n_level.max(1) as f64).sqrt()
}

/// An alarm: how far the level moved and over how many points.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ramp {
    /// Level change over the lag (transformed scale: log or linear).
    pub change: f64,
    /// Points the change was measured over.
    pub lag: usize,
    /// The change in robust scales of its usual wandering.
    pub z: f64,
    /// The level `lag` points ago.
    pub from_level: f64,
}

/// The level history of one series.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RampWatch {
    /// The last `lag + 1` levels, newest last.
    levels: VecDeque<f64>,
    lag: usize,
    /// A sample of `D` is kept every this many points.
    sample_every: usize,
    since_sample: usize,
    /// Recent samples of `D`, newest last.
    samples: VecDeque<f64>,
    max_samples: usize,
    /// Robust scale of `samples` (NaN until there are enough).
    scale: f64,
    /// Consecutive points beyond the threshold, and on which side.
    beyond: usize,
    up: bool,
    /// Points beyond the threshold needed for an alarm.
    persist: usize,
    /// Alarm raised and `D` not yet back within half the threshold.
    latched: bool,
    #[serde(skip)]
    buf: Vec<f64>,
}

impl RampWatch {
    /// A watch comparing the level with the level `lag` points before, for a
    /// series with `ppd` points a day.
    pub fn new(lag: usize, ppd: usize) -> RampWatch {
        let lag = lag.max(2);
        let sample_every = (lag / 6).max(1);
        let max_samples = (SCALE_DAYS * ppd.max(1) / sample_every).max(MIN_SAMPLES);
        RampWatch {
            levels: VecDeque::with_capacity(lag + 2),
            lag,
            sample_every,
            since_sample: 0,
            samples: VecDeque::with_capacity(max_samples + 1),
            max_samples,
            scale: f64::NAN,
            beyond: 0,
            up: false,
            persist: sample_every,
            latched: false,
            buf: Vec::with_capacity(max_samples + 1),
        }
    }

    /// Forget the level history (the level was re-anchored or relearned); the
    /// scale of its usual wandering stays.
    pub fn reset(&mut self) {
        self.levels.clear();
        self.beyond = 0;
        self.latched = false;
        self.since_sample = 0;
    }

    /// Add the level at the newest baseline point; `floor` is the smallest
    /// believable scale of `D` (the level's standard error from the noise
    /// scale). Returns an alarm at the point a ramp is established.
    pub fn push(&mut self, level: f64, floor: f64) -> Option<Ramp> {
        if !level.is_finite() {
            return None;
        }
        self.levels.push_back(level);
        if self.levels.len() > self.lag + 1 {
            self.levels.pop_front();
        }
        if self.levels.len() <= self.lag {
            return None;
        }
        let from = self.levels.front().copied().unwrap_or(level);
        let d = level - from;
        let scale = if self.scale.is_finite() {
            self.scale.max(floor)
        } else {
            f64::NAN
        };
        let z = d / scale;
        // the usual wandering, sampled (neighbouring D overlap almost fully);
        // an alarm's own stretch is left out so a ramp cannot widen its bar
        self.since_sample += 1;
        if self.since_sample >= self.sample_every {
            self.since_sample = 0;
            if !self.latched && (z.is_nan() || z.abs() <= RAMP_Z) {
                self.samples.push_back(d);
                if self.samples.len() > self.max_samples {
                    self.samples.pop_front();
                }
                if self.samples.len() >= MIN_SAMPLES {
                    self.scale = stats::robust_sd(self.samples.make_contiguous(), &mut self.buf);
                }
            }
        }
        if !z.is_finite() {
            return None;
        }
        if self.latched {
            if z.abs() < RAMP_Z / 2.0 {
                self.latched = false;
            }
            return None;
        }
        if z.abs() > RAMP_Z {
            let up = z > 0.0;
            if self.beyond > 0 && up != self.up {
                self.beyond = 0;
            }
            self.up = up;
            self.beyond += 1;
        } else {
            self.beyond = 0;
        }
        if self.beyond < self.persist {
            return None;
        }
        self.latched = true;
        self.beyond = 0;
        Some(Ramp {
            change: d,
            lag: self.lag,
            z,
            from_level: from,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic standard-normal-ish noise (sum of uniforms from an LCG).
    fn noise(n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed;
        let mut uni = || {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        (0..n)
            .map(|_| (0..12).map(|_| uni()).sum::<f64>() - 6.0)
            .collect()
    }

    /// A level tracker's output: the median-like smoothing of 48 noisy points
    /// is approximated by a moving mean, which is what the watch sees.
    fn levels(xs: &[f64]) -> Vec<f64> {
        let w = 48;
        (0..xs.len())
            .map(|i| {
                let a = i.saturating_sub(w - 1);
                xs[a..=i].iter().sum::<f64>() / (i + 1 - a) as f64
            })
            .collect()
    }

    fn alarms(xs: &[f64], sd: f64) -> Vec<(usize, Ramp)> {
        let mut w = RampWatch::new(72, 288);
        let floor = level_se(sd, 48);
        levels(xs)
            .into_iter()
            .enumerate()
            .filter_map(|(i, l)| w.push(l, floor).map(|r| (i, r)))
            .collect()
    }

    #[test]
    fn flat_noise_raises_nothing() {
        let xs: Vec<f64> = noise(20_000, 5).iter().map(|z| 0.1 * z).collect();
        assert!(alarms(&xs, 0.1).is_empty());
    }

    #[test]
    fn planted_ramp_found_once_during_the_climb() {
        // 0.1 noise, then from point 4000 a climb of 0.8 over 12 hours (144
        // points) that stays: 8 noise units spread over 144 points
        let sd = 0.1;
        let xs: Vec<f64> = noise(6_000, 9)
            .iter()
            .enumerate()
            .map(|(i, z)| {
                let f = (i.saturating_sub(4_000) as f64 / 144.0).min(1.0);
                sd * z + 0.8 * f
            })
            .collect();
        let got = alarms(&xs, sd);
        assert_eq!(got.len(), 1, "{got:?}");
        let (at, r) = got[0];
        assert!((4_000..4_144).contains(&at), "found at {at}");
        assert!(r.change > 0.0 && r.z > RAMP_Z, "{r:?}");
    }

    #[test]
    fn reset_forgets_a_jump() {
        // a step the kernel reports as a level shift and resets the watch for
        let mut w = RampWatch::new(72, 288);
        let floor = 0.02;
        let xs: Vec<f64> = noise(8_000, 2).iter().map(|z| 0.1 * z).collect();
        let mut fired = false;
        for (i, l) in levels(&xs).into_iter().enumerate() {
            let l = if i >= 6_000 { l + 1.0 } else { l };
            if i == 6_000 {
                w.reset();
            }
            fired |= w.push(l, floor).is_some();
        }
        assert!(!fired);
    }
}
