//! Small robust-statistics helpers: medians, MAD, heavy-tail fitting, p-values.

use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// Median of `v` (reorders it); NaN for an empty slice.
pub fn median_in_place(v: &mut [f64]) -> f64 {
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    let mid = n / 2;
    let (lo, m, _) = v.select_nth_unstable_by(mid, f64::total_cmp);
    let m = *m;
    if n % 2 == 1 {
        m
    } else {
        let l = lo.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (l + m) / 2.0
    }
}

/// Median of an iterator's values, using `buf` as scratch space.
pub fn median_of(it: impl Iterator<Item = f64>, buf: &mut Vec<f64>) -> f64 {
    buf.clear();
    buf.extend(it);
    median_in_place(buf)
}

/// 1.4826 × median absolute deviation from the median: a robust standard deviation.
pub fn robust_sd(v: &[f64], buf: &mut Vec<f64>) -> f64 {
    let m = median_of(v.iter().copied(), buf);
    1.4826 * median_of(v.iter().map(|x| (x - m).abs()), buf)
}

/// A window of values kept sorted as they come and go, so that
/// [`robust_sd`] of the window costs a few steps from the last call's answer
/// instead of a copy and two selections (daily series keep 300 residuals and
/// ask at every point), and any order statistic is an index.
/// Gives exactly [`robust_sd`]'s result: the same median and the same
/// deviations, each computed from the same two numbers.
#[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct SortedWindow {
    sorted: Vec<f64>,
    /// Where the last MAD's split was ([`SortedWindow::robust_sd`] starts
    /// there): a hint, any value gives the same result; not stored.
    #[serde(skip)]
    mad_at: usize,
}

/// The window's values alone, as the derived form printed them before the
/// hint (the layout in every checkpoint's fingerprint is made of these).
impl std::fmt::Debug for SortedWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SortedWindow")
            .field("sorted", &self.sorted)
            .finish()
    }
}

impl SortedWindow {
    /// An empty window with room for `n` values.
    pub fn with_capacity(n: usize) -> SortedWindow {
        SortedWindow {
            sorted: Vec::with_capacity(n),
            mad_at: 0,
        }
    }

    /// The window holding `values` (what inserting each of them gives: the
    /// order is [`f64::total_cmp`]'s, under which equal values are the same bits).
    /// (Sorted as the integer keys of [`total_key`]: a resumed series sorts
    /// its two noise windows, and integers sort at half the cost.)
    pub fn from_values(values: impl Iterator<Item = f64>) -> SortedWindow {
        let mut keys: Vec<i64> = values.map(total_key).collect();
        keys.sort_unstable();
        let sorted = keys.into_iter().map(from_total_key).collect();
        SortedWindow { sorted, mad_at: 0 }
    }

    /// Make `sorted` the window's values (what inserting each of them gives),
    /// keeping the room. `sorted` must be ascending in [`f64::total_cmp`] order.
    pub fn assign_sorted(&mut self, sorted: &[f64]) {
        debug_assert!(sorted.is_sorted_by(|a, b| a.total_cmp(b).is_le()));
        self.sorted.clear();
        self.sorted.extend_from_slice(sorted);
    }

    /// Add a value.
    pub fn insert(&mut self, x: f64) {
        let i = self.sorted.partition_point(|v| v.total_cmp(&x).is_lt());
        self.sorted.insert(i, x);
    }

    /// Remove one value equal (bit for bit) to `x`, if present (what
    /// [`SortedWindow::replace`] is tested against).
    #[cfg(test)]
    pub fn remove(&mut self, x: f64) {
        let i = self.sorted.partition_point(|v| v.total_cmp(&x).is_lt());
        if self
            .sorted
            .get(i)
            .is_some_and(|v| v.to_bits() == x.to_bits())
        {
            self.sorted.remove(i);
        }
    }

    /// Remove one value equal (bit for bit) to `old`, if present, and add
    /// `new`: the window [`SortedWindow::remove`] and [`SortedWindow::insert`]
    /// give, but only the values between the two places move (a sliding
    /// window of hundreds moved its whole tail twice per point).
    pub fn replace(&mut self, old: f64, new: f64) {
        let v = &mut self.sorted;
        if v.len() <= FEW {
            return self.replace_few(old, new);
        }
        let (i, j) = lower_bounds(v, old, new);
        if v.get(i).is_none_or(|x| x.to_bits() != old.to_bits()) {
            self.insert(new);
            return;
        }
        // (`j` counts `old` when `new` sorts above it)
        if j <= i {
            // `v[j..i]` are at least `new`: one place up, over `old`
            v.copy_within(j..i, j + 1);
            v[j] = new;
        } else {
            // `v[i + 1..j]` are below `new`: one place down, over `old`
            v.copy_within(i + 1..j, i);
            v[j - 1] = new;
        }
    }

    /// [`SortedWindow::replace`] for a window of a few values (the level's
    /// 14-value slope halves, twice a point): `old` found by a walk, and the
    /// values between its place and `new`'s moved one by one, as an
    /// insertion sort moves them; no search, no call to copy memory.
    fn replace_few(&mut self, old: f64, new: f64) {
        let v = &mut self.sorted;
        let (ko, kn) = (total_key(old), total_key(new));
        let Some(i) = v.iter().position(|&x| total_key(x) >= ko) else {
            self.insert(new);
            return;
        };
        if v[i].to_bits() != old.to_bits() {
            self.insert(new);
            return;
        }
        let mut p = i;
        if kn > ko {
            while p + 1 < v.len() && total_key(v[p + 1]) < kn {
                v[p] = v[p + 1];
                p += 1;
            }
        } else {
            while p > 0 && total_key(v[p - 1]) >= kn {
                v[p] = v[p - 1];
                p -= 1;
            }
        }
        v[p] = new;
    }

    /// Number of values in the window.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// True when the window holds no value.
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// The values in ascending order ([`f64::total_cmp`]).
    pub fn as_slice(&self) -> &[f64] {
        &self.sorted
    }

    /// [`median_in_place`] of the values in the window.
    pub fn median(&self) -> f64 {
        let v = &self.sorted;
        let n = v.len();
        if n == 0 {
            f64::NAN
        } else if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        }
    }

    /// [`robust_sd`] of the values in the window. A sliding window's MAD
    /// moves little from one call to the next: the search starts where the
    /// last one ended (two bisections, whose steps are coin tosses to the
    /// processor, were most of the cost).
    pub fn robust_sd(&mut self) -> f64 {
        let v = &self.sorted;
        let n = v.len();
        if n == 0 {
            return f64::NAN;
        }
        let mid = n / 2;
        let m = self.median();
        // (the values are sorted by `total_cmp`: the ends are finite only
        // when every value is)
        let finite = v[0].is_finite() && v[n - 1].is_finite();
        // the deviations are two ascending runs: the values below the median
        // walking down, and those at or above it walking up; the MAD is an
        // order statistic of their merge
        let split = if finite {
            below_from_middle(v, m)
        } else {
            v.partition_point(|x| *x < m)
        };
        let down = |i: usize| (v[split - 1 - i] - m).abs();
        let up = |j: usize| (v[split + j] - m).abs();
        let (la, lb) = (split, n - split);
        let mad = if finite {
            // every taken deviation is at most every one left (no NaN, and
            // deviations are never -0.0: the same value is the same bits), so
            // any such split gives the same values, wherever it is found; for
            // an even count the next deviation is the smaller of the two
            // runs' next values
            let k = if n % 2 == 1 { mid } else { mid - 1 };
            let (i, j) = split_of_two(la, lb, down, up, k, Some(self.mad_at));
            self.mad_at = i;
            let lower = largest_taken(i, j, down, up);
            if n % 2 == 1 {
                lower
            } else {
                let upper = match (i < la, j < lb) {
                    (true, true) => {
                        let (x, y) = (down(i), up(j));
                        if x < y { x } else { y }
                    }
                    (true, false) => down(i),
                    (false, true) => up(j),
                    (false, false) => f64::NAN,
                };
                (lower + upper) / 2.0
            }
        } else if n % 2 == 1 {
            kth_of_two(la, lb, down, up, mid)
        } else {
            let kth = |k: usize| kth_of_two(la, lb, down, up, k);
            (kth(mid - 1) + kth(mid)) / 2.0
        };
        1.4826 * mad
    }
}

/// Steps a search takes from its starting place before it bisects.
const WALK: usize = 8;

/// `v.partition_point(|x| *x < m)` for ascending, finite `v` whose median is
/// `m`: found walking down from the middle, where it is but for ties.
fn below_from_middle(v: &[f64], m: f64) -> usize {
    let mut s = v.len() / 2;
    if v[s] < m {
        // (a median rounded above both middle values)
        return v.partition_point(|x| *x < m);
    }
    // `v[s..]` are at least `m`
    for _ in 0..WALK {
        if s == 0 || v[s - 1] < m {
            return s;
        }
        s -= 1;
    }
    v[..s].partition_point(|x| *x < m)
}

/// Windows up to this many values replace by walking ([`SortedWindow::replace_few`]).
const FEW: usize = 24;

/// `x` as an integer ordered as [`f64::total_cmp`] orders the floats (the
/// key that method compares).
pub(super) fn total_key(x: f64) -> i64 {
    // (the bits as they are, not numeric conversions)
    total_key_of_bits(x.to_bits() as i64)
}

/// The float whose [`total_key`] is `k`.
#[allow(clippy::cast_sign_loss, reason = "bit reinterpretation")]
pub(super) fn from_total_key(k: i64) -> f64 {
    f64::from_bits(total_key_of_bits(k) as u64)
}

/// The integer key of a float's bits, `bits ^ (sign ? 0x7fff… : 0)`: keys
/// order like [`f64::total_cmp`], and the map is its own inverse.
#[allow(
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    reason = "bit reinterpretation, as in f64::total_cmp"
)]
fn total_key_of_bits(x: i64) -> i64 {
    x ^ (((x >> 63) as u64) >> 1) as i64
}

/// The places of `a` and `b` in the ascending `v` (how many values sort
/// below each, [`f64::total_cmp`]): two bisections in one loop, so that the
/// processor overlaps their loads, each step a select rather than a branch
/// (which side a step takes is a coin toss).
#[allow(
    clippy::incompatible_msrv,
    reason = "the build already needs Rust 1.89 (polars-io's File::lock, see Cargo.toml)"
)]
fn lower_bounds(v: &[f64], a: f64, b: f64) -> (usize, usize) {
    if v.is_empty() {
        return (0, 0);
    }
    let (ka, kb) = (total_key(a), total_key(b));
    // the place of `a` is in `ia..=ia + size` (the same for `b`); a step
    // halves `size`
    let (mut ia, mut ib) = (0, 0);
    let mut size = v.len();
    while size > 1 {
        let half = size / 2;
        let (xa, xb) = (total_key(v[ia + half]), total_key(v[ib + half]));
        ia = std::hint::select_unpredictable(xa < ka, ia + half, ia);
        ib = std::hint::select_unpredictable(xb < kb, ib + half, ib);
        size -= half;
    }
    (
        ia + usize::from(total_key(v[ia]) < ka),
        ib + usize::from(total_key(v[ib]) < kb),
    )
}

/// The `k`-th smallest (from 0) of two ascending sequences `a` (`la` values)
/// and `b` (`lb`), given by index; `k < la + lb`. O(log(la + lb)).
fn kth_of_two(
    la: usize,
    lb: usize,
    a: impl Fn(usize) -> f64,
    b: impl Fn(usize) -> f64,
    k: usize,
) -> f64 {
    let (i, j) = split_of_two(la, lb, &a, &b, k, None);
    largest_taken(i, j, a, b)
}

/// Where the `k + 1` smallest of two ascending sequences `a` (`la` values)
/// and `b` (`lb`) end: `(i, j)`, `i + j = k + 1`, such that `a[..i]` and
/// `b[..j]` are each at most every value of `a[i..]` and `b[j..]`; found by
/// bisection on `i`, after walking up to [`WALK`] places from `from` when
/// given (a sliding window's split moves little).
fn split_of_two(
    la: usize,
    lb: usize,
    a: impl Fn(usize) -> f64,
    b: impl Fn(usize) -> f64,
    k: usize,
    from: Option<usize>,
) -> (usize, usize) {
    use std::cmp::Ordering::{Equal, Greater, Less};
    // take `i` values from `a` and `k + 1 - i` from `b`: the right split has
    // every taken value at most every value left; otherwise it takes more
    // from `a` (Less) or fewer (Greater)
    let want = k + 1;
    let side = |i: usize| {
        let j = want - i;
        if i < la && j > 0 && b(j - 1) > a(i) {
            Less
        } else if i > 0 && j < lb && a(i - 1) > b(j) {
            Greater
        } else {
            Equal
        }
    };
    let (mut lo, mut hi) = (want.saturating_sub(lb), want.min(la));
    if let Some(from) = from {
        let mut i = from.clamp(lo, hi);
        for _ in 0..WALK {
            match side(i) {
                Less => (lo, i) = (i + 1, i + 1),
                Greater => (hi, i) = (i - 1, i - 1),
                Equal => return (i, want - i),
            }
        }
    }
    loop {
        let i = lo + (hi - lo) / 2;
        match side(i) {
            Less => lo = i + 1,
            Greater => hi = i - 1,
            Equal => return (i, want - i),
        }
    }
}

/// The largest of `a[..i]` and `b[..j]` (NaN when both are empty).
fn largest_taken(i: usize, j: usize, a: impl Fn(usize) -> f64, b: impl Fn(usize) -> f64) -> f64 {
    match (i > 0, j > 0) {
        (true, true) => {
            let (x, y) = (a(i - 1), b(j - 1));
            if x > y { x } else { y }
        }
        (true, false) => a(i - 1),
        (false, true) => b(j - 1),
        (false, false) => f64::NAN,
    }
}

/// Noise families: Student t degrees of freedom (∞ = normal).
pub const TAILS: [f64; 3] = [f64::INFINITY, HEAVY_DF, HEAVIER_DF];

/// Degrees of freedom of the heaviest family (sub-daily data only).
pub const HEAVIER_DF: f64 = 3.0;

/// [`fit_tail_quantiles`] with a third class, t3, for ratios of a t4 or
/// heavier. Sub-daily series have thousands of points a month, so a t3 noise
/// judged t5 fires every few days; daily series keep two classes.
pub fn fit_tail_quantiles_fine(abs_u: &mut [f64]) -> f64 {
    let df = fit_tail_quantiles(abs_u);
    let n = abs_u.len();
    if df.is_infinite() || n < 20 {
        return df;
    }
    let q95 = *abs_u.select_nth_unstable_by(n * 95 / 100, f64::total_cmp).1;
    let q50 = *abs_u.select_nth_unstable_by(n / 2, f64::total_cmp).1;
    if q50 > 0.0 && q95 / q50 >= 3.8 {
        HEAVIER_DF
    } else {
        df
    }
}

/// MAD of the standard t distribution with `df` degrees of freedom (normal: 0.6745).
pub fn mad_of_t(df: f64) -> f64 {
    if df.is_infinite() {
        0.6745
    } else if df >= 10.0 {
        0.6998
    } else if df >= 5.0 {
        0.7267
    } else {
        0.7649
    }
}

/// Pick the tail family from |residuals|: the ratio of their 95th percentile to
/// their median (normal 2.91, t10 3.18, t5 3.54, t3 4.16). Bulk quantiles are
/// barely moved by the few real anomalies, unlike a count of large residuals.
/// Two families only: normal unless the tails are clearly heavy (the ratio of
/// a t7 or heavier), then t5. Finer classes cost more missed incidents on
/// misclassified normal series than they save in false alerts.
pub fn fit_tail_quantiles(abs_u: &mut [f64]) -> f64 {
    let n = abs_u.len();
    if n < 20 {
        return HEAVY_DF;
    }
    let q95 = *abs_u.select_nth_unstable_by(n * 95 / 100, f64::total_cmp).1;
    let q50 = *abs_u.select_nth_unstable_by(n / 2, f64::total_cmp).1;
    if q50 <= 0.0 {
        return HEAVY_DF;
    }
    if q95 / q50 < 3.36 {
        f64::INFINITY
    } else {
        HEAVY_DF
    }
}

/// [`fit_tail_quantiles`] (or, `fine`, [`fit_tail_quantiles_fine`]) of values
/// already in ascending order: the same order statistics, read by index.
pub fn fit_tail_sorted(sorted: &[f64], fine: bool) -> f64 {
    let n = sorted.len();
    if n < 20 {
        return HEAVY_DF;
    }
    let (q95, q50) = (sorted[n * 95 / 100], sorted[n / 2]);
    if q50 <= 0.0 {
        return HEAVY_DF;
    }
    let ratio = q95 / q50;
    if ratio < 3.36 {
        f64::INFINITY
    } else if fine && ratio >= 3.8 {
        HEAVIER_DF
    } else {
        HEAVY_DF
    }
}

/// Degrees of freedom of the heavy-tailed family.
pub const HEAVY_DF: f64 = 5.0;

/// Upper-tail probability of a standardised deviation `u` (in robust SD units)
/// under the t family `df`.
pub fn upper_tail(u: f64, df: f64) -> f64 {
    let t = u * 1.4826 * mad_of_t(df);
    if df.is_infinite() {
        Normal::standard().sf(t)
    } else {
        match StudentsT::new(0.0, 1.0, df) {
            Ok(d) => d.sf(t),
            Err(_) => Normal::standard().sf(t),
        }
    }
}

/// The deviation (robust SD units) whose upper-tail probability is `p` under `df`.
pub fn threshold_for(p: f64, df: f64) -> f64 {
    let t = if df.is_infinite() {
        Normal::standard().inverse_cdf(1.0 - p)
    } else {
        match StudentsT::new(0.0, 1.0, df) {
            Ok(d) => d.inverse_cdf(1.0 - p),
            Err(_) => Normal::standard().inverse_cdf(1.0 - p),
        }
    };
    t / (1.4826 * mad_of_t(df))
}

/// Benjamini–Hochberg: how many of the sorted p-values `ps` (ascending) are
/// discoveries at level `q` among `m` tests.
pub fn bh_cutoff(ps: &[f64], m: usize, q: f64) -> usize {
    let m = m.max(ps.len()).max(1) as f64;
    let mut k = 0;
    for (i, p) in ps.iter().enumerate() {
        if *p <= q * (i + 1) as f64 / m {
            k = i + 1;
        }
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacing_a_value_equals_removing_it_and_inserting() {
        // repeated values, signed zeros and values absent from the window
        let mut seed = 3u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            match seed >> 61 {
                0 => 0.0,
                1 => -0.0,
                2 => 1.0,
                _ => (seed >> 40) as f64 / 1e5 - 50.0,
            }
        };
        // windows walked (up to FEW values, where an absent `old` grows the
        // window past FEW) and bisected
        for size in [1, 2, 5, 14, FEW - 1, 40] {
            let (mut a, mut b) = (SortedWindow::default(), SortedWindow::default());
            for _ in 0..size {
                let x = next();
                a.insert(x);
                b.insert(x);
            }
            for k in 0..5000 {
                let old = if (size >= FEW && k % 7 == 0) || k % 401 == 0 {
                    next()
                } else {
                    a.as_slice()[k % a.len()]
                };
                let new = next();
                a.replace(old, new);
                b.remove(old);
                b.insert(new);
                let bits =
                    |w: &SortedWindow| w.as_slice().iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&a), bits(&b), "window of {size}, step {k}");
            }
        }
    }

    #[test]
    fn the_sorted_window_gives_robust_sd_bit_for_bit() {
        // a small deterministic generator: windows with ties, signs, both parities
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            #[allow(clippy::cast_possible_truncation, reason = "a small integer")]
            let k = (state % 41) as i64 - 20;
            k as f64 * 0.37
        };
        let mut win = SortedWindow::with_capacity(64);
        let mut plain: std::collections::VecDeque<f64> = std::collections::VecDeque::new();
        let mut buf = Vec::new();
        for step in 0..2_000 {
            let x = next();
            win.insert(x);
            plain.push_back(x);
            if plain.len() > 7 + step % 50 {
                let old = plain.pop_front().unwrap();
                win.remove(old);
            }
            let mut v: Vec<f64> = plain.iter().copied().collect();
            let want = robust_sd(&v, &mut buf);
            let want_tail = (
                fit_tail_quantiles(&mut v.clone()),
                fit_tail_quantiles_fine(&mut v),
            );
            assert_eq!(
                (
                    fit_tail_sorted(win.as_slice(), false),
                    fit_tail_sorted(win.as_slice(), true)
                ),
                want_tail
            );
            let want_median = median_in_place(&mut v);
            assert_eq!(win.median().to_bits(), want_median.to_bits());
            let v: Vec<f64> = plain.iter().copied().collect();
            assert_eq!(
                win.robust_sd().to_bits(),
                want.to_bits(),
                "step {step}: {v:?}"
            );
        }
        assert!(SortedWindow::default().robust_sd().is_nan());
    }

    /// Values with many ties and both zeros, or spread ones: xorshift.
    fn values(seed: u64) -> impl FnMut() -> f64 {
        let mut state = seed;
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            match state % 8 {
                0 => 0.0,
                1 => -0.0,
                2 | 3 => f64::from(u32::try_from(state >> 59).unwrap_or(0)) * 0.5,
                _ => (state >> 11) as f64 / (1u64 << 53) as f64 * 20.0 - 10.0,
            }
        }
    }

    #[test]
    fn both_places_are_those_of_two_bisections() {
        // every length up to 70 and a long one; values with ties, both zeros,
        // infinities and NaNs of both signs; probes inside, between and
        // outside the values
        let mut next = values(8);
        let specials = [f64::INFINITY, f64::NEG_INFINITY, f64::NAN, -f64::NAN];
        for n in (0..70).chain([730]) {
            let mut v: Vec<f64> = (0..n).map(|_| next()).collect();
            if n > 4 {
                v[..4].copy_from_slice(&specials);
            }
            v.sort_unstable_by(f64::total_cmp);
            for k in 0..200 {
                let a = if k % 3 == 0 && n > 0 {
                    v[k % n]
                } else {
                    next()
                };
                let b = if k % 5 == 0 { specials[k % 4] } else { next() };
                let want = |x: f64| v.partition_point(|y| y.total_cmp(&x).is_lt());
                assert_eq!(lower_bounds(&v, a, b), (want(a), want(b)), "{n} {a} {b}");
            }
        }
    }

    #[test]
    fn robust_sd_of_large_windows_bit_for_bit() {
        // the residual window's sizes (both parities), spread values with
        // ties and zeros, and windows with an infinite value (the two middle
        // deviations then come from two bisections)
        let mut next = values(5);
        let mut buf = Vec::new();
        for (n, rounds) in [(299usize, 300), (300, 300), (2, 50), (3, 50), (4, 50)] {
            for round in 0..rounds {
                let mut v: Vec<f64> = (0..n).map(|_| next()).collect();
                if n > 10 && round % 10 == 0 {
                    v[round % n] = if round % 20 == 0 {
                        f64::INFINITY
                    } else {
                        f64::NEG_INFINITY
                    };
                }
                let want = robust_sd(&v, &mut buf);
                let mut w = SortedWindow::from_values(v.iter().copied());
                let got = w.robust_sd();
                assert_eq!(got.to_bits(), want.to_bits(), "{n} values: {v:?}");
            }
        }
    }

    #[test]
    fn a_window_from_values_is_the_window_inserting_them_gives() {
        // ties, both zeros, infinities and NaNs of both signs, every length to 40
        let mut next = values(3);
        let specials = [f64::INFINITY, f64::NEG_INFINITY, f64::NAN, -f64::NAN];
        for n in 0..40 {
            let mut v: Vec<f64> = (0..n).map(|_| next()).collect();
            for (k, x) in v.iter_mut().enumerate().filter(|(k, _)| k % 7 == 3) {
                *x = specials[k % 4];
            }
            let mut inserted = SortedWindow::default();
            for &x in &v {
                inserted.insert(x);
            }
            let bits =
                |w: &SortedWindow| w.as_slice().iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&SortedWindow::from_values(v.into_iter())),
                bits(&inserted),
                "{n}"
            );
        }
    }

    #[test]
    fn a_sliding_window_s_mad_found_from_the_last_split_is_the_mad() {
        // residual windows sliding through spread values with ties and both
        // zeros, a long run of one value (the split far from the middle), a
        // jump of scale (the split far from the last one) and infinities
        // (the bisections' path): at every step what the values alone give
        let mut next = values(21);
        let mut buf = Vec::new();
        for n in [300usize, 299, 31, 2] {
            let mut win = SortedWindow::default();
            let mut plain = std::collections::VecDeque::new();
            for step in 0..2_400 {
                let x = match step / 300 {
                    2 => 1.5,
                    4 => next() * 1e6,
                    6 if step % 97 == 0 => f64::INFINITY,
                    _ => next(),
                };
                plain.push_back(x);
                if plain.len() > n {
                    let old = plain.pop_front().unwrap();
                    win.replace(old, x);
                } else {
                    win.insert(x);
                }
                let v: Vec<f64> = plain.iter().copied().collect();
                let want = robust_sd(&v, &mut buf);
                assert_eq!(
                    win.robust_sd().to_bits(),
                    want.to_bits(),
                    "{n}: step {step}"
                );
            }
        }
    }

    #[test]
    fn the_sorted_window_on_heavy_and_spread_values() {
        // deviations that interleave unevenly across the median: one long side
        let mut w = SortedWindow::default();
        let vals = [
            0.0, 0.1, 0.2, 0.3, 10.0, 20.0, 30.0, 40.0, 50.0, -0.05, 0.15,
        ];
        let mut buf = Vec::new();
        for (k, &x) in vals.iter().enumerate() {
            w.insert(x);
            let want = robust_sd(&vals[..=k], &mut buf);
            assert_eq!(w.robust_sd().to_bits(), want.to_bits(), "{k}");
        }
        // 1.4826 × MAD of {0.0, 0.1, 0.2, 0.3, 10, 20, 30, 40, 50, -0.05, 0.15}:
        // median 0.3, |deviations| median 0.35
        assert!((w.robust_sd() - 1.4826 * 0.35).abs() < 1e-9);
        assert_eq!(w.median(), 0.3);
        w.remove(0.3);
        w.remove(7.0); // absent: nothing happens
        assert_eq!(w.len(), 10);
        assert_eq!(w.median(), (0.2 + 10.0) / 2.0);
    }

    #[test]
    fn tail_fit_of_sorted_values() {
        // q95/q50 of 100 values i/100: 0.95/0.5 = 1.9 -> normal
        let even: Vec<f64> = (1..=100).map(|i| f64::from(i) / 100.0).collect();
        assert!(fit_tail_sorted(&even, false).is_infinite());
        // a long tail: q95/q50 = 4 -> t5, or t3 with the fine classes
        let mut heavy: Vec<f64> = vec![1.0; 100];
        for v in &mut heavy[60..] {
            *v = 4.0;
        }
        assert_eq!(fit_tail_sorted(&heavy, false), HEAVY_DF);
        assert_eq!(fit_tail_sorted(&heavy, true), HEAVIER_DF);
        assert_eq!(fit_tail_sorted(&heavy[..19], false), HEAVY_DF);
    }

    #[test]
    fn medians_and_mad() {
        assert_eq!(median_in_place(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median_in_place(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        let mut b = Vec::new();
        let sd = robust_sd(&[1.0, 2.0, 3.0, 4.0, 100.0], &mut b);
        assert!((sd - 1.4826).abs() < 1e-9, "{sd}");
    }

    #[test]
    fn tail_probabilities_match_tables() {
        // normal: P(Z > 1.96) = 0.025 with u in SD units
        assert!((upper_tail(1.96, f64::INFINITY) - 0.025).abs() < 1e-3);
        // heavier tails give larger probabilities at the same robust deviation
        assert!(upper_tail(6.0, 3.0) > 50.0 * upper_tail(6.0, f64::INFINITY));
        let thr = threshold_for(1e-4, f64::INFINITY);
        assert!((thr - 3.719).abs() < 0.01, "{thr}");
        assert!(threshold_for(1e-4, 3.0) > 2.0 * thr);
    }

    #[test]
    fn heavy_tail_p_values_are_not_normal_ones() {
        let p = upper_tail(15.69, HEAVY_DF);
        assert!(p > 1e-7 && p < 1e-4, "{p}");
    }

    #[test]
    fn benjamini_hochberg() {
        let ps = [0.001, 0.008, 0.039, 0.041, 0.5];
        assert_eq!(bh_cutoff(&ps, 5, 0.05), 2);
        assert_eq!(bh_cutoff(&ps, 1000, 0.05), 0);
        assert_eq!(bh_cutoff(&[1e-6], 1000, 0.05), 1);
    }

    #[test]
    fn tail_fit_thresholds() {
        // |normal| quantiles: q95/q50 = 1.96/0.674 = 2.91 -> normal
        let mut normal: Vec<f64> = (1..1000)
            .map(|i| {
                let p = 0.5 + 0.5 * i as f64 / 1000.0;
                Normal::standard().inverse_cdf(p)
            })
            .collect();
        assert!(fit_tail_quantiles(&mut normal).is_infinite());
        // |t3| quantiles: 3.18/0.765 = 4.16 -> heavy
        let t3 = StudentsT::new(0.0, 1.0, 3.0).unwrap();
        let mut heavy: Vec<f64> = (1..1000)
            .map(|i| t3.inverse_cdf(0.5 + 0.5 * i as f64 / 1000.0))
            .collect();
        assert_eq!(fit_tail_quantiles(&mut heavy), HEAVY_DF);
    }
}
