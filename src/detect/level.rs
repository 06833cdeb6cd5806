//! The level component of the kernel: the recent baseline points, the local
//! level they give (each projected to now along a robust slope), and the slope.
//!
//! The slope is the difference of the medians of the window's two halves
//! (de-seasonalised), over the difference of their median times. The halves
//! are kept sorted between window changes, so a point that slides the window
//! costs two insertions and two removals instead of two selections; they are
//! rebuilt (filled and sorted) when the window was cut or the seasonal
//! profile changed. The state is plain owned data, so it can be checkpointed
//! between runs.

use super::stats::{SortedWindow, from_total_key, median_of, total_key};

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
    points: Points,
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
            points: Points::with_capacity(4 * n_half + 2),
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
        self.points.as_slice().last()
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
        for p in points {
            self.points.push_back(p);
        }
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
        let points = self.points.as_slice();
        let newest = &points[points.len().saturating_sub(self.n_level)..];
        let value = |&(tj, xj, sj): &LevelPoint| xj - profile[sj] + slope * (tu - tj) as f64;
        if self.trimmed && newest.len() <= 8 {
            // daily and weekly series: the keys straight into the 8-place
            // network (the sorted values, so the order they come in is moot)
            return trimmed_mean8(newest, value);
        }
        // newest first, as always: a median of an even count takes the
        // larger lower middle by `f64::max`, which may see ±0 in any order
        robust_mean(self.trimmed, newest.iter().rev().map(value), &mut self.buf)
    }

    /// Re-measure the slope if the window changed since the last measure
    /// (called once per point, after the state update). `version` names the
    /// state of `profile`: a new version rebuilds the halves. A new profile
    /// alone does not re-measure; it reaches the slope at the next window change.
    pub fn refresh_slope(&mut self, profile: &[f64], version: u64) {
        let h = self.n_half;
        let points = self.points.as_slice();
        let n = points.len();
        if n < 2 * h {
            return;
        }
        let now = (n, points.first().copied(), points.last().copied());
        if now == self.measured_for {
            return;
        }
        self.measured_for = now;
        let d = |p: &LevelPoint| p.1 - profile[p.2];
        match self.popped {
            Some(old) if self.halves_ok && self.halves_profile == version && self.slid == 1 => {
                // one point in at the back, one out at the front: the point at
                // the boundary moves from the second half to the first
                let moved = d(&points[h - 1]);
                self.halves[0].replace(d(&old), moved);
                self.halves[1].replace(moved, d(&points[n - 1]));
            }
            _ => {
                // filled and sorted: the sorted values of a multiset are
                // unique under `f64::total_cmp`, so they are what inserting
                // one by one gave, at a fraction of the cost
                let (first, second) = points.split_at(h);
                for (w, half) in self.halves.iter_mut().zip([first, second]) {
                    self.buf.clear();
                    self.buf.extend(half.iter().map(d));
                    sort_total(&mut self.buf);
                    w.assign_sorted(&self.buf);
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
        let points = self.points.as_slice();
        let t = |k: usize| points[k].0 as f64;
        let n = b - a;
        match n {
            0 => f64::NAN,
            _ if n % 2 == 1 => t(a + n / 2),
            _ => (t(a + n / 2 - 1) + t(a + n / 2)) / 2.0,
        }
    }
}

/// The baseline points, oldest first, contiguous (`v[head..]`), so the
/// newest are a slice (a `VecDeque` wraps around, and its iterators and
/// indexing pay for that at every point). Leaving points only move `head`;
/// the dead front is dropped when the room is used up and it is at least
/// half of it (amortised constant). Encoded and printed as the live points
/// alone, exactly as the `VecDeque` it replaces, so stored states still fit.
#[derive(Clone, Default)]
struct Points {
    /// `v[head..]` are the points; `v[..head]` left.
    v: Vec<LevelPoint>,
    /// Points that left the front and are still in `v`.
    head: usize,
}

impl Points {
    /// No points, room for `n`.
    fn with_capacity(n: usize) -> Points {
        Points {
            v: Vec::with_capacity(n),
            head: 0,
        }
    }

    /// The points, oldest first.
    fn as_slice(&self) -> &[LevelPoint] {
        &self.v[self.head..]
    }

    fn len(&self) -> usize {
        self.v.len() - self.head
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn clear(&mut self) {
        self.v.clear();
        self.head = 0;
    }

    fn push_back(&mut self, p: LevelPoint) {
        if self.v.len() == self.v.capacity() && 2 * self.head >= self.v.len() {
            self.v.drain(..self.head);
            self.head = 0;
        }
        self.v.push(p);
    }

    fn pop_front(&mut self) -> Option<LevelPoint> {
        let p = self.v.get(self.head).copied();
        self.head += usize::from(p.is_some());
        p
    }
}

impl std::fmt::Debug for Points {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl serde::Serialize for Points {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.as_slice())
    }
}

impl<'de> serde::Deserialize<'de> for Points {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Points, D::Error> {
        Ok(Points {
            v: Vec::deserialize(d)?,
            head: 0,
        })
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
    sort_total(buf);
    trimmed_mean_sorted(buf)
}

/// [`robust_mean`]'s trimmed mean of values already in ascending
/// ([`f64::total_cmp`]) order: a quarter of them, rounded down, cut off each
/// side, the rest summed in order. NaN for none.
pub fn trimmed_mean_sorted(v: &[f64]) -> f64 {
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    let cut = n / 4;
    let mid = &v[cut..n - cut];
    mid.iter().sum::<f64>() / mid.len() as f64
}

/// Compare-exchanges of the places `(a, b)` of the array `$k`, in order,
/// as straight-line code: the keys stay in registers or fixed stack slots
/// (a loop over a table of places goes through memory at every comparator,
/// and cost the 16-place sort more than twice as much).
macro_rules! compare_exchange {
    ($k:ident, $(($a:literal, $b:literal)),*) => {
        $(
            let (x, y) = ($k[$a], $k[$b]);
            $k[$a] = x.min(y);
            $k[$b] = x.max(y);
        )*
    };
}

/// An optimal sorting network for 8 places (19 comparators, Knuth 5.3.4).
macro_rules! net8 {
    ($k:ident) => {
        compare_exchange!(
            $k,
            (0, 2),
            (1, 3),
            (4, 6),
            (5, 7),
            (0, 4),
            (1, 5),
            (2, 6),
            (3, 7),
            (0, 1),
            (2, 3),
            (4, 5),
            (6, 7),
            (2, 4),
            (3, 5),
            (1, 4),
            (3, 6),
            (1, 2),
            (3, 4),
            (5, 6)
        )
    };
}

/// Batcher's odd-even merge sort for 16 places (63 comparators).
macro_rules! net16 {
    ($k:ident) => {
        compare_exchange!(
            $k,
            (0, 1),
            (2, 3),
            (4, 5),
            (6, 7),
            (8, 9),
            (10, 11),
            (12, 13),
            (14, 15),
            (0, 2),
            (1, 3),
            (4, 6),
            (5, 7),
            (8, 10),
            (9, 11),
            (12, 14),
            (13, 15),
            (1, 2),
            (5, 6),
            (9, 10),
            (13, 14),
            (0, 4),
            (1, 5),
            (2, 6),
            (3, 7),
            (8, 12),
            (9, 13),
            (10, 14),
            (11, 15),
            (2, 4),
            (3, 5),
            (10, 12),
            (11, 13),
            (1, 2),
            (3, 4),
            (5, 6),
            (9, 10),
            (11, 12),
            (13, 14),
            (0, 8),
            (1, 9),
            (2, 10),
            (3, 11),
            (4, 12),
            (5, 13),
            (6, 14),
            (7, 15),
            (4, 8),
            (5, 9),
            (6, 10),
            (7, 11),
            (2, 4),
            (3, 5),
            (6, 8),
            (7, 9),
            (10, 12),
            (11, 13),
            (1, 2),
            (3, 4),
            (5, 6),
            (7, 8),
            (9, 10),
            (11, 12),
            (13, 14)
        )
    };
}

/// [`robust_mean`]'s trimmed mean of the values `value` gives for at most 8
/// `points`, bit for bit: the same sorted values, the same middle summed in
/// the same order. The keys of [`sort_small`] go straight into the 8-place
/// network's registers, with no buffer and no 16-place array; one copy per
/// count, so the padding, the cut and the sum are fixed at compile time (a
/// daily series always has 7 points here, a weekly one 4).
fn trimmed_mean8(points: &[LevelPoint], value: impl Fn(&LevelPoint) -> f64) -> f64 {
    match points.len() {
        1 => trimmed_mean_of::<1>(points, value),
        2 => trimmed_mean_of::<2>(points, value),
        3 => trimmed_mean_of::<3>(points, value),
        4 => trimmed_mean_of::<4>(points, value),
        5 => trimmed_mean_of::<5>(points, value),
        6 => trimmed_mean_of::<6>(points, value),
        7 => trimmed_mean_of::<7>(points, value),
        8 => trimmed_mean_of::<8>(points, value),
        _ => f64::NAN,
    }
}

/// [`trimmed_mean8`] of `N` points (`N <= 8`; the first `N` of `points`).
fn trimmed_mean_of<const N: usize>(
    points: &[LevelPoint],
    value: impl Fn(&LevelPoint) -> f64,
) -> f64 {
    let mut k = [i64::MAX; 8];
    for (k, p) in k.iter_mut().zip(points.iter().take(N)) {
        *k = total_key(value(p));
    }
    net8!(k);
    let mut sorted = [0.0; 8];
    for (x, &k) in sorted.iter_mut().zip(&k[..N]) {
        *x = from_total_key(k);
    }
    trimmed_mean_sorted(&sorted[..N])
}

/// Up to this many values are sorted by [`sort_small`].
const SMALL: usize = 16;

/// Sort in [`f64::total_cmp`] order: [`sort_small`] for a few values.
fn sort_total(v: &mut [f64]) {
    if v.len() <= SMALL {
        sort_small(v);
    } else {
        v.sort_unstable_by(f64::total_cmp);
    }
}

/// Sort a few values in [`f64::total_cmp`] order as integers: the key
/// `bits ^ (sign ? 0x7fff… : 0)` orders like `total_cmp` and is its own
/// inverse, and integers sort with cheap comparisons (a daily series sorts
/// the slope's 14-value halves at every profile change). The keys go through a fixed
/// sorting network (8 or 16 places, the rest padded with the largest key):
/// no data-dependent branch, where an insertion sort mispredicts about once
/// per value. The order is total, so the result is the one any sort gives.
fn sort_small(v: &mut [f64]) {
    if v.len() <= 8 {
        let mut k = [i64::MAX; 8];
        for (k, x) in k.iter_mut().zip(v.iter()) {
            *k = total_key(*x);
        }
        net8!(k);
        for (x, k) in v.iter_mut().zip(k) {
            *x = from_total_key(k);
        }
        return;
    }
    match v.len() {
        9 => sort16::<9>(v),
        10 => sort16::<10>(v),
        11 => sort16::<11>(v),
        12 => sort16::<12>(v),
        13 => sort16::<13>(v),
        14 => sort16::<14>(v),
        15 => sort16::<15>(v),
        _ => sort16::<16>(v),
    }
}

/// [`sort_small`] of `N` values (`8 < N <= 16`; the first `N` of `v`) on
/// the 16-place network: one copy per count, so the padding is a constant
/// and the comparators it makes idle are gone (a daily series sorts 14
/// values).
fn sort16<const N: usize>(v: &mut [f64]) {
    let mut keys = [i64::MAX; SMALL];
    for (k, x) in keys.iter_mut().zip(v.iter().take(N)) {
        *k = total_key(*x);
    }
    net16!(keys);
    for (x, k) in v.iter_mut().zip(keys).take(N) {
        *x = from_total_key(k);
    }
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
        for n in 1..=SMALL {
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

    /// The trimmed mean as [`robust_mean`] took it before the 8-place path:
    /// the standard sort, then the middle summed in order.
    fn trimmed_mean_by_std_sort(mut v: Vec<f64>) -> f64 {
        v.sort_unstable_by(f64::total_cmp);
        let n = v.len();
        let mid = &v[n / 4..n - n / 4];
        mid.iter().sum::<f64>() / mid.len() as f64
    }

    #[test]
    fn the_eight_place_trimmed_mean_is_the_standard_one() {
        let mut seed = 11u64;
        let mut next = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            seed
        };
        for n in 1..=8 {
            for _ in 0..2000 {
                let points: Vec<LevelPoint> = (0..n)
                    .map(|k| {
                        let r = next();
                        // ties, both zeros, and plain values
                        let x = match r % 4 {
                            0 => -0.0,
                            1 => 0.0,
                            2 => ((r >> 8) % 5) as f64 * 0.25,
                            _ => (r >> 11) as f64 / (1u64 << 53) as f64 - 0.5,
                        };
                        (k as i64, x, 0)
                    })
                    .collect();
                let value = |p: &LevelPoint| p.1;
                let want = trimmed_mean_by_std_sort(points.iter().map(value).collect());
                let got = trimmed_mean8(&points, value);
                assert_eq!(got.to_bits(), want.to_bits(), "{points:?}");
            }
        }
        assert!(trimmed_mean8(&[], |p| p.1).is_nan());
    }

    #[test]
    fn the_points_slide_and_are_stored_as_a_deque_was() {
        use std::collections::VecDeque;
        let mut p = Points::with_capacity(3);
        let mut q = VecDeque::new();
        for t in 0..100i64 {
            let pt = (t, t as f64 / 3.0, (t % 7) as usize);
            p.push_back(pt);
            q.push_back(pt);
            if q.len() > 5 {
                assert_eq!(p.pop_front(), q.pop_front());
            }
            if t % 37 == 36 {
                p.clear();
                q.clear();
            }
            assert_eq!(
                p.as_slice(),
                q.iter().copied().collect::<Vec<_>>().as_slice()
            );
            assert_eq!(p.len(), q.len());
        }
        // the dead front is dropped once it is half the room: no endless growth
        assert!(p.v.capacity() <= 32, "room {}", p.v.capacity());
        let cfg = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec(&p, cfg).unwrap();
        assert_eq!(bytes, bincode::serde::encode_to_vec(&q, cfg).unwrap());
        assert_eq!(format!("{p:?}"), format!("{q:?}"));
        let (back, _): (Points, usize) = bincode::serde::decode_from_slice(&bytes, cfg).unwrap();
        assert_eq!(back.as_slice(), p.as_slice());
        assert_eq!(Points::default().pop_front(), None);
    }

    #[test]
    fn the_kept_halves_give_the_slope_from_scratch() {
        // daily and weekly (trimmed, halves sorted by the network) and
        // sub-daily (median, halves longer than the network)
        for (n_level, h) in [(7, 14), (4, 8), (12, 24)] {
            check_halves(n_level, h, n_level < 10);
        }
    }

    /// Walk a zigzag with a weekly profile that changes now and then, a cut
    /// window, oversized re-anchorings and stretches of ties and signed
    /// zeros; at every point the slope, the halves and the level must be
    /// what the window gives from scratch.
    fn check_halves(n_level: usize, h: usize, trimmed: bool) {
        let mut l = Level::new(n_level, h, trimmed);
        let mut profile = vec![0.0; 7];
        let mut version = 0u64;
        let mut all: Vec<LevelPoint> = Vec::new();
        let mut seed = 7u64;
        let mut buf = Vec::new();
        let hi = h as i64;
        for t in 0..600i64 {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            let x = if t / 100 % 2 == 1 {
                // ties, and zeros of both signs (where the profile is 0)
                [-0.0, 0.0, 0.25, 0.5, 0.125][(seed >> 33) as usize % 5]
            } else {
                (seed >> 40) as f64 / 1e6 + 0.01 * t as f64
            };
            let p = (t, x, (t % 7) as usize);
            if t % 50 == 49 {
                // a re-anchoring on more points than the window holds
                let keep: Vec<LevelPoint> = (t - 2 * hi - 12..t)
                    .map(|k| {
                        (
                            k,
                            0.02 * k as f64 + (k % 3) as f64,
                            ((k + 70) % 7) as usize, // (k > -70)
                        )
                    })
                    .collect();
                l.reset_to(keep.iter().copied());
                all = keep;
            }
            if t % 30 == 0 {
                profile[(t % 7) as usize] += 0.125;
                version += 1;
            }
            if t % 140 == 3 {
                // back to zero: the zeros of the tie stretches stay signed
                profile = vec![0.0; 7];
                version += 1;
            }
            l.push(p);
            all.push(p);
            if all.len() > 2 * h {
                all.remove(0);
            }
            let before = l.slope();
            l.refresh_slope(&profile, version);
            if all.len() >= 2 * h {
                let want = slope_from_scratch(&all, h, &profile);
                assert_eq!(l.slope().to_bits(), want.to_bits(), "step {t}");
                for (k, part) in [&all[..h], &all[h..]].into_iter().enumerate() {
                    let mut w = SortedWindow::default();
                    for q in part {
                        w.insert(q.1 - profile[q.2]);
                    }
                    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(l.halves[k].as_slice()), bits(w.as_slice()), "step {t}");
                }
            } else {
                assert_eq!(l.slope(), before);
            }
            // the level: the newest points projected along the slope, newest first
            let tu = t + 2;
            let slope = l.slope();
            let vals: Vec<f64> = all
                .iter()
                .rev()
                .take(n_level)
                .map(|&(tj, xj, sj)| xj - profile[sj] + slope * (tu - tj) as f64)
                .collect();
            let want = if trimmed {
                trimmed_mean_by_std_sort(vals)
            } else {
                median_of(vals.into_iter(), &mut buf)
            };
            assert_eq!(l.at(tu, &profile).to_bits(), want.to_bits(), "step {t}");
        }
    }
}
