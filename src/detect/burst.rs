//! Variance bursts: a stretch where the residuals' spread rises well above the
//! series' noise scale, even when no single point crosses the point threshold.
//!
//! A burst of noise (a flapping dependency, a retry storm) widens the spread of
//! the values around their expected level without moving the level: a few
//! points may cross the point test's threshold, most do not. Counting
//! exceedances pools them: each standardised residual beyond [`EXCEED_U`]
//! noise units is a success, and the count over the last window of points is
//! compared with a binomial of the series' own exceedance rate (the larger of
//! the fitted tail family's rate and the rate seen over the last
//! [`RATE_WINDOW`] points, so heavy tails and a slightly low noise scale do not
//! read as bursts). Counting, not summing squares, keeps one huge spike from
//! passing for a burst. A burst widens the spread on both sides, so the
//! exceedances must not all lie on one side (that is a level shift or a ramp,
//! which have their own tests). One burst raises one alarm: the watch stays
//! quiet until the count falls back to its usual level.
//!
//! Pure: standardised residuals in, alarms out; no clock, no I/O.

use std::collections::VecDeque;

/// A residual beyond this many noise units counts as an exceedance (4.6 % of
/// normal noise; 74 % of noise six times as wide).
pub const EXCEED_U: f64 = 2.0;
/// Residuals the series' usual exceedance rate is measured over.
pub const RATE_WINDOW: usize = 730;
/// Fewest residuals before the measured rate is trusted over the fitted one.
const MIN_RATE_POINTS: usize = 100;

/// An alarm: the window's exceedances and how unlikely they are.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Burst {
    /// Exceedances in the window.
    pub count: usize,
    /// Points in the window.
    pub window: usize,
    /// The series' usual exceedance rate the count was judged against.
    pub rate: f64,
    /// Chance of at least `count` exceedances in the window at that rate.
    pub p_value: f64,
}

/// The running exceedance counts of one series.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct BurstWatch {
    /// Sign of each recent residual's exceedance (+1, -1, 0), newest last.
    recent: VecDeque<i8>,
    /// Points the burst test pools.
    window: usize,
    /// Exceedances above / below in `recent`.
    up: usize,
    down: usize,
    /// Whether each of the last [`RATE_WINDOW`] residuals exceeded.
    long: VecDeque<bool>,
    /// Exceedances in `long`.
    long_count: usize,
    /// Alarm raised and the count not yet back to normal.
    latched: bool,
}

impl BurstWatch {
    /// A watch pooling `window` points (at least 6).
    pub fn new(window: usize) -> BurstWatch {
        let window = window.max(6);
        BurstWatch {
            recent: VecDeque::with_capacity(window + 1),
            window,
            up: 0,
            down: 0,
            long: VecDeque::with_capacity(RATE_WINDOW + 1),
            long_count: 0,
            latched: false,
        }
    }

    /// The window for a series with `ppd` points a day: two hours, at least 6 points.
    pub fn window_for(ppd: usize) -> usize {
        (ppd / 12).max(6)
    }

    /// Forget the recent window (the level was re-anchored: the residuals
    /// before it were measured against another level). The usual rate stays.
    pub fn reset(&mut self) {
        self.recent.clear();
        self.up = 0;
        self.down = 0;
        self.latched = false;
    }

    /// The usual exceedance rate: measured, but never below `fitted`.
    pub fn rate(&self, fitted: f64) -> f64 {
        if self.long.len() >= MIN_RATE_POINTS {
            (self.long_count as f64 / self.long.len() as f64).max(fitted)
        } else {
            fitted
        }
    }

    /// Add the standardised residual `u` of the newest baseline point and test
    /// the window at per-point false-alarm rate `alpha`; `fitted` is the tail
    /// family's two-sided chance of exceeding [`EXCEED_U`]. The window is
    /// judged against the rate seen before it, so a burst cannot raise its own
    /// bar.
    pub fn push(&mut self, u: f64, fitted: f64, alpha: f64) -> Option<Burst> {
        let rate = self.rate(fitted).clamp(1e-6, 0.5);
        let sign: i8 = if u > EXCEED_U {
            1
        } else if u < -EXCEED_U {
            -1
        } else {
            0
        };
        self.recent.push_back(sign);
        match sign {
            1 => self.up += 1,
            -1 => self.down += 1,
            _ => {}
        }
        if self.recent.len() > self.window {
            match self.recent.pop_front() {
                Some(1) => self.up -= 1,
                Some(-1) => self.down -= 1,
                _ => {}
            }
        }
        self.long.push_back(sign != 0);
        self.long_count += usize::from(sign != 0);
        if self.long.len() > RATE_WINDOW && self.long.pop_front() == Some(true) {
            self.long_count -= 1;
        }
        let count = self.up + self.down;
        let usual = self.window as f64 * rate;
        if self.latched {
            if (count as f64) <= usual + 1.0 {
                self.latched = false;
            }
            return None;
        }
        // cheap screens before the binomial tail: a full window, clearly more
        // exceedances than usual, and on both sides
        if self.recent.len() < self.window
            || (count as f64) < usual + 3.0
            || 4 * self.up.min(self.down) < count
        {
            return None;
        }
        let p = binomial_upper(self.window, count, rate);
        if p >= alpha {
            return None;
        }
        self.latched = true;
        Some(Burst {
            count,
            window: self.window,
            rate,
            p_value: p,
        })
    }
}

/// P(X ≥ k) for X ~ Binomial(n, p), summed in log space (n is small).
pub fn binomial_upper(n: usize, k: usize, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n || p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    let (lp, lq) = (p.ln(), (1.0 - p).ln());
    // log C(n, k) built up term by term
    let mut lc = 0.0f64;
    for j in 0..k {
        lc += ((n - j) as f64).ln() - ((j + 1) as f64).ln();
    }
    let mut sum = 0.0;
    let mut j = k;
    loop {
        sum += (lc + j as f64 * lp + (n - j) as f64 * lq).exp();
        if j == n {
            break;
        }
        lc += ((n - j) as f64).ln() - ((j + 1) as f64).ln();
        j += 1;
    }
    sum.min(1.0)
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

    const FITTED: f64 = 0.0455;
    /// The 5-minute per-point rate (two-sided 3.5 SDs over 288 points a day).
    const ALPHA: f64 = 4.65e-4 / 288.0;

    fn alarms(us: &[f64]) -> Vec<(usize, Burst)> {
        let mut w = BurstWatch::new(BurstWatch::window_for(288));
        us.iter()
            .enumerate()
            .filter_map(|(i, &u)| w.push(u, FITTED, ALPHA).map(|b| (i, b)))
            .collect()
    }

    #[test]
    fn binomial_tail_known_answers() {
        let check = |n, k, p, want: f64| {
            let got = binomial_upper(n, k, p);
            assert!(
                (got - want).abs() <= 1e-9 * want.max(1e-300),
                "{n} {k} {p}: {got} vs {want}"
            );
        };
        check(4, 4, 0.5, 0.0625);
        check(4, 0, 0.3, 1.0);
        check(3, 2, 0.5, 0.5);
        // 1 - 0.9^10
        check(10, 1, 0.1, 1.0 - 0.9f64.powi(10));
        assert_eq!(binomial_upper(5, 6, 0.5), 0.0);
    }

    #[test]
    fn plain_noise_raises_nothing() {
        assert!(alarms(&noise(20_000, 7)).is_empty());
    }

    #[test]
    fn planted_burst_found_once_soon_after_onset() {
        let mut us = noise(3_000, 11);
        // two hours of noise six times as wide, from point 2000
        for u in &mut us[2_000..2_024] {
            *u *= 6.0;
        }
        let got = alarms(&us);
        assert_eq!(got.len(), 1, "{got:?}");
        let (at, b) = got[0];
        assert!((2_005..2_024).contains(&at), "found at {at}");
        assert!(b.p_value < ALPHA && b.count > 8, "{b:?}");
    }

    #[test]
    fn one_sided_run_is_not_a_burst() {
        // a level shift of 3 noise units: every point exceeds on one side
        let mut us = noise(1_000, 3);
        for u in &mut us[800..] {
            *u += 3.0;
        }
        assert!(alarms(&us).is_empty());
    }

    #[test]
    fn heavy_tailed_noise_judged_against_its_own_rate() {
        // every fifth point beyond 2 units, alternating sides: 20 % is this
        // series' normal, not a burst
        let us: Vec<f64> = (0..5_000)
            .map(|i| match i % 10 {
                0 => 2.5,
                5 => -2.5,
                _ => 0.3,
            })
            .collect();
        assert!(alarms(&us).is_empty());
    }
}
