//! The noise component of the kernel: the robust scale of recent one-step
//! residuals and the tail family of recent standardised deviations.
//!
//! Both windows are kept sorted as points come and go ([`SortedWindow`]), so
//! the scale at every point is a few steps from the last point's (the
//! median's place walked down from the middle, the deviations' split from
//! the last one's) and a refit of the tail family two index reads, instead
//! of copies and selections over hundreds of values.
//! The state is plain owned data, so it can be checkpointed between runs.

use std::collections::VecDeque;

use super::stats::{self, SortedWindow};

/// Recent |standardised deviations| the tail family is fitted on.
pub const TAIL_WINDOW: usize = 730;
/// Residuals needed before the scale is measured at all.
const MIN_SCALE_POINTS: usize = 8;
/// Deviations needed before the tail family is refitted from the data.
const MIN_TAIL_POINTS: usize = 60;
/// The share of recent deviations allowed past [`CALIBRATE_U`] before the
/// scale is widened, in percent: about the 99th percentile of the heaviest
/// tail family.
const CALIBRATE_SHARE_PCT: usize = 1;
/// Noise units that even the heaviest family (t3) leaves only ~1 % beyond.
const CALIBRATE_U: f64 = 6.0;

/// Robust noise scale (1.4826 × MAD of the last `window` residuals) and tail
/// family (normal, t5, or for sub-daily data t3) of one series.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Noise {
    /// Residuals kept for the scale.
    window: usize,
    /// The residuals in arrival order (the oldest leaves first).
    resid: VecDeque<f64>,
    /// The same residuals sorted (not checkpointed: [`Noise::restore`]).
    #[serde(skip)]
    resid_sorted: SortedWindow,
    /// The scale as of the last change of the residual window (NaN before).
    sigma: f64,
    /// (length, first, last) of the residual window when `sigma` was measured.
    measured_for: (usize, Option<u64>, Option<u64>),
    /// Recent |u| in arrival order, at most [`TAIL_WINDOW`].
    tail: VecDeque<f64>,
    /// The same, sorted (not checkpointed: [`Noise::restore`]).
    #[serde(skip)]
    tail_sorted: SortedWindow,
    /// Current tail family (degrees of freedom; ∞ = normal).
    df: f64,
    /// Points between two refits of the tail family.
    refit_every: usize,
    /// Points since the last refit.
    since_refit: usize,
    /// Three families instead of two (sub-daily data).
    fine: bool,
    /// How much wider than the robust scale the noise is (at least 1): a
    /// series whose values jump routinely (a gauge flipping between two
    /// levels, values quantised in steps coarser than the spread of the
    /// rest) has more than [`CALIBRATE_SHARE_PCT`] of its recent deviations
    /// beyond [`CALIBRATE_U`]; its scale is widened until its own
    /// percentile sits there. Re-measured with the tail family. Sub-daily
    /// data only: 1 % of 5-minute points is three a day, a habit; 1 % of
    /// days is three or four a year, incidents an owner is asked about.
    widen: f64,
}

impl Noise {
    /// After decoding a checkpoint: the sorted windows from the windows they
    /// sort (the same values in the same order, so the same results).
    pub fn restore(&mut self) {
        self.resid_sorted = SortedWindow::from_values(self.resid.iter().copied());
        self.tail_sorted = SortedWindow::from_values(self.tail.iter().copied());
    }

    /// A series' noise state: `window` residuals for the scale, the tail
    /// refitted every `refit_every` points starting from family `start_df`,
    /// with the t3 class when `fine`.
    pub fn new(window: usize, refit_every: usize, start_df: f64, fine: bool) -> Noise {
        Noise {
            window,
            resid: VecDeque::with_capacity(window + 1),
            resid_sorted: SortedWindow::with_capacity(window + 1),
            sigma: f64::NAN,
            measured_for: (0, None, None),
            tail: VecDeque::with_capacity(TAIL_WINDOW + 1),
            tail_sorted: SortedWindow::with_capacity(TAIL_WINDOW + 1),
            df: start_df,
            refit_every,
            since_refit: 0,
            fine,
            widen: 1.0,
        }
    }

    /// The robust noise scale, NaN until measured.
    pub fn sigma(&self) -> f64 {
        self.sigma
    }

    /// How much wider than [`Noise::sigma`] the noise is judged (at least 1).
    pub fn widen(&self) -> f64 {
        self.widen
    }

    /// The current tail family's degrees of freedom.
    pub fn df(&self) -> f64 {
        self.df
    }

    /// Residuals in the scale window.
    pub fn residuals(&self) -> usize {
        self.resid.len()
    }

    /// Add a baseline point's one-step residual to the scale window.
    pub fn push_residual(&mut self, r: f64) {
        self.resid.push_back(r);
        if self.resid.len() > self.window
            && let Some(old) = self.resid.pop_front()
        {
            self.resid_sorted.replace(old, r);
        } else {
            self.resid_sorted.insert(r);
        }
    }

    /// Add a point's |standardised deviation| (against the unwidened scale)
    /// to the tail window, refitting the family and the widening every
    /// `refit_every` points once there are enough.
    pub fn push_deviation(&mut self, abs_u: f64) {
        self.tail.push_back(abs_u);
        if self.tail.len() > TAIL_WINDOW
            && let Some(old) = self.tail.pop_front()
        {
            self.tail_sorted.replace(old, abs_u);
        } else {
            self.tail_sorted.insert(abs_u);
        }
        self.since_refit += 1;
        if self.since_refit >= self.refit_every && self.tail.len() >= MIN_TAIL_POINTS {
            self.since_refit = 0;
            let sorted = self.tail_sorted.as_slice();
            self.df = stats::fit_tail_sorted(sorted, self.fine);
            if self.fine {
                let at = (sorted.len() - 1) * (100 - CALIBRATE_SHARE_PCT) / 100;
                self.widen = (sorted[at] / CALIBRATE_U).max(1.0);
            }
        }
    }

    /// Re-measure the scale if the residual window changed since the last time
    /// (called once per point, after the state update).
    pub fn refresh(&mut self) {
        let now = (
            self.resid.len(),
            self.resid.front().map(|v| v.to_bits()),
            self.resid.back().map(|v| v.to_bits()),
        );
        if self.resid.len() >= MIN_SCALE_POINTS && now != self.measured_for {
            self.measured_for = now;
            self.sigma = self.resid_sorted.robust_sd();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scale_is_the_mad_of_the_window() {
        let mut n = Noise::new(5, 28, stats::HEAVY_DF, false);
        for r in [1.0, -1.0, 2.0, -2.0, 0.0, 100.0, 3.0, -3.0] {
            n.push_residual(r);
            n.refresh();
        }
        // the window holds 5, fewer than a scale needs: not measured
        assert!(n.sigma().is_nan());
        let mut n = Noise::new(9, 28, stats::HEAVY_DF, false);
        for r in [1.0, -1.0, 2.0, -2.0, 0.0, 100.0, 3.0, -3.0, 0.5, 7.0] {
            n.push_residual(r);
        }
        n.refresh();
        // window: -1, 2, -2, 0, 100, 3, -3, 0.5, 7 -> median 0.5, MAD 2.5
        assert_eq!(n.residuals(), 9);
        assert!((n.sigma() - 1.4826 * 2.5).abs() < 1e-12, "{}", n.sigma());
    }

    #[test]
    fn the_tail_family_is_fitted_on_the_whole_window_and_survives_a_checkpoint() {
        // refits over a full, sliding tail window: at every point the family
        // is what fitting the last 730 deviations from scratch gave at the
        // last refit, for a walk straight through and for walks stopped at
        // several points, encoded, decoded and restored
        let mut seed = 11u64;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (seed >> 11) as f64 / (1u64 << 53) as f64;
            // light and heavy stretches, repeated values
            match (seed >> 3) % 9 {
                0 => 0.0,
                1 => 1.0,
                _ if (seed >> 20) % 1000 < 40 => 5.0 + 40.0 * u,
                _ => 3.0 * u,
            }
        };
        let devs: Vec<f64> = (0..3_000).map(|_| next()).collect();
        let mut straight = Noise::new(300, 28, stats::HEAVY_DF, false);
        let mut want_df = stats::HEAVY_DF;
        let mut since = 0;
        let mut families = std::collections::BTreeSet::new();
        for (k, &d) in devs.iter().enumerate() {
            straight.push_deviation(d);
            since += 1;
            if since >= 28 && k + 1 >= 60 {
                since = 0;
                let from = (k + 1).saturating_sub(TAIL_WINDOW);
                want_df = stats::fit_tail_quantiles(&mut devs[from..=k].to_vec());
            }
            assert_eq!(straight.df().to_bits(), want_df.to_bits(), "point {k}");
            families.insert(want_df.to_bits());
        }
        assert_eq!(families.len(), 2, "both families seen");
        let config = bincode::config::standard();
        for stop in [1usize, 59, 61, 740, 1_000, 1_013, 2_222] {
            let mut walk = Noise::new(300, 28, stats::HEAVY_DF, false);
            for &d in &devs[..stop] {
                walk.push_deviation(d);
            }
            let bytes = bincode::serde::encode_to_vec(&walk, config).unwrap();
            let (mut resumed, _): (Noise, usize) =
                bincode::serde::decode_from_slice(&bytes, config).unwrap();
            resumed.restore();
            for &d in &devs[stop..] {
                resumed.push_deviation(d);
            }
            assert_eq!(resumed.df().to_bits(), straight.df().to_bits(), "{stop}");
            assert_eq!(
                resumed.tail_sorted.as_slice(),
                straight.tail_sorted.as_slice(),
                "{stop}"
            );
        }
    }

    #[test]
    fn the_tail_family_is_refitted_on_schedule() {
        let mut n = Noise::new(300, 10, stats::HEAVY_DF, true);
        // 59 normal-looking deviations: too few to refit
        for i in 0..59 {
            n.push_deviation(f64::from(i % 20) / 10.0);
        }
        assert_eq!(n.df(), stats::HEAVY_DF);
        // the 60th point: a refit is due (59 points since the start) -> normal
        n.push_deviation(0.5);
        assert!(n.df().is_infinite());
        // a heavy tail arrives; the family changes at the next refit only
        for _ in 0..9 {
            n.push_deviation(50.0);
        }
        assert!(n.df().is_infinite());
        n.push_deviation(50.0);
        assert_eq!(n.df(), stats::HEAVIER_DF);
    }
}
