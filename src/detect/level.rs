//! The level component of the kernel: the recent baseline points, the local
//! level they give (each projected to now along a robust slope), and the slope.
//!
//! The slope is the difference of the medians of the window's two halves
//! (de-seasonalised), over the difference of their median times. The halves
//! are kept sorted between window changes, so a point that slides the window
//! costs two insertions and two removals instead of two selections; they are
//! rebuilt when the window was cut or the seasonal profile changed. The state
//! is plain owned data, so it can be checkpointed between runs.

use std::collections::VecDeque;

use super::stats::{SortedWindow, median_of};

/// A baseline point: time in steps, value on the model scale, slot of the
/// seasonal profile.
pub type LevelPoint = (i64, f64, usize);

/// The local level of one series.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Level {
    /// Points the level is the centre of (the newest ones).
    n_level: usize,
    /// Points in each half of the slope window.
    n_half: usize,
    /// Trimmed mean (a quarter cut each side) rather than median.
    trimmed: bool,
    /// Baseline points, oldest first, at most `2 * n_half` after a push (a
    /// re-anchoring may leave more, which then slide).
    points: VecDeque<LevelPoint>,
    /// Change of the de-seasonalised level per step.
    slope: f64,
    /// (length, first, last) of the window when the slope was measured.
    measured_for: (usize, Option<LevelPoint>, Option<LevelPoint>),
    /// De-seasonalised values of `points[..n_half]` and `points[n_half..]`, sorted.
    halves: [SortedWindow; 2],
    /// `halves` hold the window as of the last measure, for profile version
    /// `halves_profile`.
    halves_ok: bool,
    /// The profile version the halves were computed with.
    halves_profile: u64,
    /// Points that left the front since the last measure (one keeps the
    /// halves incremental), and the last of them.
    slid: usize,
    /// The last point that left the front.
    popped: Option<LevelPoint>,
    /// Scratch space.
    #[serde(skip)]
    buf: Vec<f64>,
}

impl Level {
    /// A level over the newest `n_level` points with a slope from two halves
    /// of `n_half` points; trimmed means or medians.
    pub fn new(n_level: usize, n_half: usize, trimmed: bool) -> Level {
        Level {
            n_level,
            n_half,
            trimmed,
            points: VecDeque::with_capacity(2 * n_half + 1),
            slope: 0.0,
            measured_for: (0, None, None),
            halves: [
                SortedWindow::with_capacity(n_half + 1),
                SortedWindow::with_capacity(n_half + 1),
            ],
            halves_ok: false,
            halves_profile: 0,
            slid: 0,
            popped: None,
            buf: Vec::with_capacity(2 * n_half.max(n_level)),
        }
    }

    /// Baseline points held.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// True when the level has not been learned (no point held).
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// True when there are enough points for a level.
    pub fn ready(&self) -> bool {
        self.points.len() >= self.n_level
    }

    /// The newest baseline point.
    pub fn last(&self) -> Option<&LevelPoint> {
        self.points.back()
    }

    /// The current slope (per step).
    pub fn slope(&self) -> f64 {
        self.slope
    }

    /// Forget the points: the level is relearned from the next ones.
    pub fn clear(&mut self) {
        self.points.clear();
        self.halves_ok = false;
    }

    /// Re-anchor on `points` (a detected or accepted new level).
    pub fn reset_to(&mut self, points: impl IntoIterator<Item = LevelPoint>) {
        self.points.clear();
        self.points.extend(points);
        self.halves_ok = false;
    }

    /// Add a baseline point; the oldest leaves once the window is full.
    pub fn push(&mut self, p: LevelPoint) {
        self.points.push_back(p);
        if self.points.len() > 2 * self.n_half {
            self.popped = self.points.pop_front();
            self.slid += 1;
        } else {
            self.halves_ok = false;
        }
    }

    /// The level at step `tu`: the robust centre of the newest `n_level`
    /// points, de-seasonalised with `profile` and projected along the slope.
    pub fn at(&mut self, tu: i64, profile: &[f64]) -> f64 {
        let slope = self.slope;
        robust_mean(
            self.trimmed,
            self.points
                .iter()
                .rev()
                .take(self.n_level)
                .map(|&(tj, xj, sj)| xj - profile[sj] + slope * (tu - tj) as f64),
            &mut self.buf,
        )
    }

    /// Re-measure the slope if the window changed since the last measure
    /// (called once per point, after the state update). `version` names the
    /// state of `profile`: a new version rebuilds the halves. A new profile
    /// alone does not re-measure; it reaches the slope at the next window change.
    pub fn refresh_slope(&mut self, profile: &[f64], version: u64) {
        let h = self.n_half;
        let n = self.points.len();
        let now = (n, self.points.front().copied(), self.points.back().copied());
        if n < 2 * h || now == self.measured_for {
            return;
        }
        self.measured_for = now;
        let d = |p: &LevelPoint| p.1 - profile[p.2];
        match self.popped {
            Some(old) if self.halves_ok && self.halves_profile == version && self.slid == 1 => {
                // one point in at the back, one out at the front: the point at
                // the boundary moves from the second half to the first
                let moved = self.points[h - 1];
                self.halves[0].replace(d(&old), d(&moved));
                self.halves[1].replace(d(&moved), d(&self.points[n - 1]));
            }
            _ => {
                for w in &mut self.halves {
                    w.clear();
                }
                for (k, p) in self.points.iter().enumerate() {
                    self.halves[usize::from(k >= h)].insert(d(p));
                }
            }
        }
        self.halves_ok = true;
        self.halves_profile = version;
        self.slid = 0;
        self.popped = None;
        let (m1, m2) = (self.halves[0].median(), self.halves[1].median());
        // times are ascending: their medians are the middle points
        let t1 = self.time_median(0, h);
        let t2 = self.time_median(h, n);
        if t2 > t1 {
            self.slope = (m2 - m1) / (t2 - t1);
        }
    }

    /// Median time of `points[a..b]` (ascending), as a float.
    fn time_median(&self, a: usize, b: usize) -> f64 {
        let t = |k: usize| self.points[k].0 as f64;
        let n = b - a;
        match n {
            0 => f64::NAN,
            _ if n % 2 == 1 => t(a + n / 2),
            _ => (t(a + n / 2 - 1) + t(a + n / 2)) / 2.0,
        }
    }
}

/// The centre of a few values: a trimmed mean (a quarter of them, rounded
/// down, cut off each side) when `trimmed`, else the median. NaN for none.
pub fn robust_mean(trimmed: bool, it: impl Iterator<Item = f64>, buf: &mut Vec<f64>) -> f64 {
    if !trimmed {
        return median_of(it, buf);
    }
    buf.clear();
    buf.extend(it);
    let n = buf.len();
    if n == 0 {
        return f64::NAN;
    }
    if n <= SMALL {
        sort_small(buf);
    } else {
        buf.sort_unstable_by(f64::total_cmp);
    }
    let cut = n / 4;
    let mid = &buf[cut..n - cut];
    mid.iter().sum::<f64>() / mid.len() as f64
}

/// Up to this many values are sorted by [`sort_small`].
const SMALL: usize = 16;

/// An optimal sorting network for 8 places (19 comparators, Knuth 5.3.4),
/// applied to the array `$k` as straight-line compare-exchanges.
macro_rules! net8 {
    ($k:ident) => {
        net8!(@ $k, (0, 2), (1, 3), (4, 6), (5, 7), (0, 4), (1, 5), (2, 6), (3, 7), (0, 1),
            (2, 3), (4, 5), (6, 7), (2, 4), (3, 5), (1, 4), (3, 6), (1, 2), (3, 4), (5, 6))
    };
    (@ $k:ident, $(($a:literal, $b:literal)),*) => {
        $(
            let (x, y) = ($k[$a], $k[$b]);
            $k[$a] = x.min(y);
            $k[$b] = x.max(y);
        )*
    };
}

/// Sort a few values in [`f64::total_cmp`] order as integers: the key
/// `bits ^ (sign ? 0x7fff… : 0)` orders like `total_cmp` and is its own
/// inverse, and integers sort with cheap comparisons (the level of a daily
/// series sorts 7 values at every point). The keys go through a fixed
/// sorting network (8 or 16 places, the rest padded with the largest key):
/// no data-dependent branch, where an insertion sort mispredicts about once
/// per value. The order is total, so the result is the one any sort gives.
#[allow(
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    reason = "bit reinterpretation, as in f64::total_cmp"
)]
fn sort_small(v: &mut [f64]) {
    fn key(x: i64) -> i64 {
        x ^ (((x >> 63) as u64) >> 1) as i64
    }
    let mut keys = [i64::MAX; SMALL];
    let n = v.len().min(SMALL);
    for (k, x) in keys.iter_mut().zip(v.iter()) {
        *k = key(x.to_bits() as i64);
    }
    if n <= 8 {
        // written out: the eight keys stay in registers (a loop over a
        // table of places goes through memory at every comparator)
        let mut k = [i64::MAX; 8];
        k.copy_from_slice(&keys[..8]);
        net8!(k);
        keys[..8].copy_from_slice(&k);
    } else {
        for (a, b) in NET16 {
            let (x, y) = (keys[a], keys[b]);
            keys[a] = x.min(y);
            keys[b] = x.max(y);
        }
    }
    for (x, k) in v.iter_mut().zip(keys.iter()) {
        *x = f64::from_bits(key(*k) as u64);
    }
}

/// Batcher's odd-even merge sort for 16 places (63 comparators).
const NET16: [(usize, usize); 63] = batcher::<63>(16);

/// The comparators of Batcher's odd-even merge sort of `n` places, in order.
const fn batcher<const M: usize>(n: usize) -> [(usize, usize); M] {
    let mut out = [(0, 0); M];
    let mut m = 0;
    let mut p = 1;
    while p < n {
        let mut k = p;
        while k >= 1 {
            let mut j = k % p;
            while j + k < n {
                let mut i = 0;
                while i < k && i + j + k < n {
                    if (i + j) / (2 * p) == (i + j + k) / (2 * p) {
                        out[m] = (i + j, i + j + k);
                        m += 1;
                    }
                    i += 1;
                }
                j += 2 * k;
            }
            k /= 2;
        }
        p *= 2;
    }
    assert!(m == M, "Batcher's network has another size");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The slope measured from scratch, as the kernel did before the halves
    /// were kept: medians of the two halves by selection.
    fn slope_from_scratch(points: &[LevelPoint], h: usize, profile: &[f64]) -> f64 {
        let mut buf = Vec::new();
        let m1 = median_of(points[..h].iter().map(|p| p.1 - profile[p.2]), &mut buf);
        let m2 = median_of(points[h..].iter().map(|p| p.1 - profile[p.2]), &mut buf);
        let t1 = median_of(points[..h].iter().map(|p| p.0 as f64), &mut buf);
        let t2 = median_of(points[h..].iter().map(|p| p.0 as f64), &mut buf);
        (m2 - m1) / (t2 - t1)
    }

    #[test]
    fn small_sorts_match_the_standard_sort() {
        let mut seed = 3u64;
        for n in 0..=SMALL {
            for _ in 0..200 {
                let mut v: Vec<f64> = (0..n)
                    .map(|_| {
                        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                        // few distinct values: ties, and both signs of zero
                        [(seed >> 60) as f64 - 8.0, -0.0, 0.0][(seed >> 20) as usize % 3]
                    })
                    .collect();
                let mut want = v.clone();
                want.sort_unstable_by(f64::total_cmp);
                sort_small(&mut v);
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&v), bits(&want));
            }
        }
        let mut buf = Vec::new();
        // a quarter cut off each side of 8 values: the mean of the middle 4
        let vals = [9.0, 1.0, 5.0, 3.0, 100.0, 4.0, 6.0, -50.0];
        assert_eq!(robust_mean(true, vals.iter().copied(), &mut buf), 4.5);
        assert_eq!(robust_mean(false, vals.iter().copied(), &mut buf), 4.5);
    }

    #[test]
    fn the_sorting_networks_sort_every_input_of_zeros_and_ones() {
        // a network sorts everything when it sorts every 0/1 input (Knuth 5.3.4)
        for n in [8, 16] {
            for mask in 0..1u32 << n {
                let mut v: Vec<f64> = (0..n).map(|i| f64::from(mask >> i & 1)).collect();
                sort_small(&mut v);
                assert!(
                    v.windows(2).all(|w| w[0] <= w[1]),
                    "{n} places, input {mask:b}"
                );
            }
        }
    }

    #[test]
    fn a_straight_line_has_its_slope_and_level() {
        let mut l = Level::new(7, 14, true);
        let profile = [0.0; 7];
        for t in 0..28 {
            l.push((t, 10.0 + 0.5 * t as f64, (t % 7) as usize));
        }
        l.refresh_slope(&profile, 0);
        assert_eq!(l.slope(), 0.5);
        // the newest 7 points, each projected to step 30
        assert_eq!(l.at(30, &profile), 25.0);
    }

    #[test]
    fn the_kept_halves_give_the_slope_from_scratch() {
        // a zigzag with a weekly profile that changes now and then, a cut
        // window and an oversized re-anchoring
        let mut l = Level::new(7, 14, true);
        let mut profile = vec![0.0; 7];
        let mut version = 0u64;
        let mut all: Vec<LevelPoint> = Vec::new();
        let mut seed = 7u64;
        for t in 0..400i64 {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            let x = (seed >> 40) as f64 / 1e6 + 0.01 * t as f64;
            let p = (t, x, (t % 7) as usize);
            if t % 50 == 49 {
                // a re-anchoring on 40 points: more than the window holds
                let keep: Vec<LevelPoint> = (t - 40..t)
                    .map(|k| (k, 0.02 * k as f64 + (k % 3) as f64, (k % 7) as usize))
                    .collect();
                l.reset_to(keep.iter().copied());
                all = keep;
            }
            if t % 30 == 0 {
                profile[(t % 7) as usize] += 0.125;
                version += 1;
            }
            l.push(p);
            all.push(p);
            if all.len() > 28 {
                all.remove(0);
            }
            let before = l.slope();
            l.refresh_slope(&profile, version);
            if all.len() >= 28 {
                let want = slope_from_scratch(&all, 14, &profile);
                assert_eq!(l.slope().to_bits(), want.to_bits(), "step {t}");
            } else {
                assert_eq!(l.slope(), before);
            }
        }
    }
}
