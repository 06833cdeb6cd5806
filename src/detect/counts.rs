//! How surprising a run of one repeated value is, for the `stale` check.
//!
//! A value repeated three times is a stuck export for a latency in
//! milliseconds with two decimals, and nothing at all for a count of errors
//! that is 2 or 3 most hours, or for a utilisation pinned at 100. [`Repeats`]
//! keeps, for each exact value among the series' recent points (the current
//! run left out, so a stuck value does not vouch for itself), how often it
//! occurred and how often it was followed by itself, and rates a run of `len`
//! equal values by the chance of `len − 1` further repeats: `p(v)^(len−1)`,
//! where `p(v)` is the value's recent chance to repeat (shrunk towards its
//! frequency, and never below it). Small integer counts repeat about as
//! often as they occur, values at a bound (a utilisation capped at 100) repeat
//! in long runs, so their runs must be long to count; a value never seen before
//! is rare, so a short run already does.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

/// A run of daily data is reported when its chance under the recent value
/// frequencies is below this (a value never seen before: after 3 points once
/// 70 points are known); sub-daily data divides it by √(points per day)
/// ([`stale_alpha`]).
pub const STALE_ALPHA: f64 = 5e-5;

/// The chance below which a run is stale, for `ppd` points per day: more
/// points a day give more runs by chance, so the bar is higher.
pub fn stale_alpha(ppd: usize) -> f64 {
    STALE_ALPHA / (ppd.max(1) as f64).sqrt()
}
/// Recent points whose values are counted.
pub const WINDOW: usize = 2016;

/// Frequencies of recent values and the run in progress.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "RepeatsWire", into = "RepeatsWire")]
pub struct Repeats {
    /// Values of recent points (bits) and whether each repeats the one before,
    /// oldest first, the current run excluded.
    recent: VecDeque<(u64, bool)>,
    /// Per value in `recent`: (occurrences, occurrences that repeat the one before).
    counts: HashMap<u64, (u32, u32), BuildHasherDefault<BitsHasher>>,
    /// The run in progress: its value (bits) and length.
    run: Option<(u64, usize)>,
}

/// Hashes a value's bit pattern with the splitmix64 finaliser: every point
/// looks its value up, and SipHash cost more than the rest of the check (a
/// series' own values gain nothing from flood protection, and the window is
/// bounded).
#[derive(Debug, Clone, Copy, Default)]
pub struct BitsHasher(u64);

impl Hasher for BitsHasher {
    fn finish(&self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, x: u64) {
        self.0 = self.0.rotate_left(29) ^ x;
    }
}

/// [`Repeats`] as checkpointed: the run in progress and, per value of the
/// window, only its flag (packed 64 to a word). The window's values are the
/// series' own values just before the run in progress (every point enters it
/// in order once its run ends), so [`Repeats::refill`] takes them from the
/// data, and the counts are a function of the window.
#[derive(serde::Serialize, serde::Deserialize)]
struct RepeatsWire {
    len: usize,
    flags: Vec<u64>,
    run: Option<(u64, usize)>,
}

impl From<Repeats> for RepeatsWire {
    fn from(r: Repeats) -> RepeatsWire {
        let mut flags = vec![0u64; r.recent.len().div_ceil(64)];
        for (i, &(_, rep)) in r.recent.iter().enumerate() {
            flags[i / 64] |= u64::from(rep) << (i % 64);
        }
        RepeatsWire {
            len: r.recent.len(),
            flags,
            run: r.run,
        }
    }
}

/// A stored window longer than [`WINDOW`] or with flags for another length
/// is not a state this code wrote: it does not decode (the series walks in
/// full), and nothing is allocated for its claimed length.
impl TryFrom<RepeatsWire> for Repeats {
    type Error = String;

    fn try_from(w: RepeatsWire) -> Result<Repeats, String> {
        if w.len > WINDOW || w.flags.len() != w.len.div_ceil(64) {
            return Err(format!(
                "a repeat window of {} points with {} flag words",
                w.len,
                w.flags.len()
            ));
        }
        let recent = (0..w.len)
            .map(|i| {
                let word = w.flags.get(i / 64).copied().unwrap_or(0);
                (0, (word >> (i % 64)) & 1 == 1)
            })
            .collect();
        Ok(Repeats {
            recent,
            counts: HashMap::default(),
            run: w.run,
        })
    }
}

fn key(v: f64) -> u64 {
    // -0.0 and 0.0 are one value
    (v + 0.0).to_bits()
}

impl Repeats {
    /// Nothing seen yet.
    pub fn new() -> Repeats {
        Repeats {
            // room for a window of mostly distinct values (a daily series of
            // decimals): the table is sized once, not doubled ten times
            counts: HashMap::with_capacity_and_hasher(WINDOW / 2, BuildHasherDefault::default()),
            ..Repeats::default()
        }
    }

    /// Points in the window and in the run in progress: a decoded checkpoint
    /// is [`Repeats::refill`]ed with the values of the window's points.
    pub fn window_and_run(&self) -> (usize, usize) {
        (self.recent.len(), self.run.map_or(0, |r| r.1))
    }

    /// After decoding a checkpoint: the window's values (`values`, oldest
    /// first, one per window entry: the points before the run in progress)
    /// and the counts over them; `remember` and `forget_oldest` keep
    /// counts[v] = (entries of value v, those flagged as repeating the one before).
    pub fn refill(&mut self, values: &[f64]) {
        self.counts.clear();
        // sized once for mostly distinct values, not doubled as they come
        self.counts.reserve(values.len());
        for (e, &v) in self.recent.iter_mut().zip(values) {
            e.0 = key(v);
            let c = self.counts.entry(e.0).or_insert((0, 0));
            c.0 += 1;
            c.1 += u32::from(e.1);
        }
    }

    /// Add the next point's value; returns the length of the run it belongs to.
    pub fn push(&mut self, v: f64) -> usize {
        let k = key(v);
        match self.run {
            Some((rk, len)) if rk == k => {
                self.run = Some((k, len + 1));
                len + 1
            }
            prev => {
                if let Some((rk, len)) = prev {
                    self.remember(rk, len);
                }
                self.run = Some((k, 1));
                1
            }
        }
    }

    /// End the run in progress (a gap broke it): its points go to the
    /// history as a finished run's do.
    pub fn break_run(&mut self) {
        if let Some((rk, len)) = self.run.take() {
            self.remember(rk, len);
        }
    }

    /// Add a finished run of `len` points of value `k` to the history.
    fn remember(&mut self, k: u64, len: usize) {
        for j in 0..len {
            self.recent.push_back((k, j > 0));
            let c = self.counts.entry(k).or_insert((0, 0));
            c.0 += 1;
            c.1 += u32::from(j > 0);
            if self.recent.len() > WINDOW {
                self.forget_oldest();
            }
        }
    }

    fn forget_oldest(&mut self) {
        let Some((old, _)) = self.recent.pop_front() else {
            return;
        };
        // the next point no longer repeats anything in the window
        let mut repeat_gone = false;
        if let Some(next) = self.recent.front_mut()
            && next.1
        {
            next.1 = false;
            repeat_gone = true;
        }
        if let Some(c) = self.counts.get_mut(&old) {
            c.0 -= 1;
            c.1 -= u32::from(repeat_gone && c.1 > 0);
            if c.0 == 0 {
                self.counts.remove(&old);
            }
        }
    }

    /// Smoothed frequency of `v` among recent points (never 0, below 1).
    pub fn frequency(&self, v: f64) -> f64 {
        let c = self.counts.get(&key(v)).map_or(0, |c| c.0);
        (f64::from(c) + 0.5) / (self.recent.len() as f64 + 1.0)
    }

    /// Chance that `v` repeats the point before: how often it did recently
    /// (shrunk towards its frequency by one pseudo-observation), never below
    /// its frequency (a value seen 30 times and never twice in a row is still
    /// drawn twice in a row by chance now and then).
    pub fn repeat_chance(&self, v: f64) -> f64 {
        let (occ, reps) = self.counts.get(&key(v)).copied().unwrap_or((0, 0));
        let f = self.frequency(v);
        ((f64::from(reps) + f) / (f64::from(occ) + 1.0)).max(f)
    }

    /// Chance of the run in progress (value `v`, `len` points): `len − 1`
    /// repeats at the value's recent repeat chance.
    pub fn run_chance(&self, v: f64, len: usize) -> f64 {
        let reps = i32::try_from(len.saturating_sub(1)).unwrap_or(i32::MAX);
        self.repeat_chance(v).powi(reps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stored window this code could not have written (longer than the
    /// window, or flags for another length) is refused before anything is
    /// allocated for it; a real one comes back as it was.
    #[test]
    fn a_stored_window_decodes_only_when_it_is_plausible() {
        let mut r = Repeats::new();
        for v in [1.0, 1.0, 2.0, 2.0, 2.0, 3.0] {
            r.push(v);
        }
        let wire = RepeatsWire::from(r.clone());
        let back = Repeats::try_from(wire).unwrap();
        assert_eq!(back.window_and_run(), r.window_and_run());
        for (len, words) in [
            (usize::MAX, 0),
            (WINDOW + 1, (WINDOW + 1).div_ceil(64)),
            (65, 1),
        ] {
            let bad = RepeatsWire {
                len,
                flags: vec![0; words],
                run: None,
            };
            assert!(Repeats::try_from(bad).is_err(), "len {len}, {words} words");
        }
    }

    /// Feed values; the chance of the final run.
    fn check(vals: &[f64]) -> f64 {
        let mut r = Repeats::new();
        let mut len = 0;
        for &v in vals {
            len = r.push(v);
        }
        r.run_chance(vals[vals.len() - 1], len)
    }

    #[test]
    fn a_repeated_measurement_is_surprising_quickly() {
        // 500 distinct latencies, then one repeated three times
        let mut v: Vec<f64> = (0..500).map(|i| 100.0 + f64::from(i) * 0.37).collect();
        v.extend([512.25; 3]);
        let p = check(&v);
        // never seen: its frequency, (0.5 / 501)^2
        assert!((p - (0.5f64 / 501.0).powi(2)).abs() < 1e-12, "{p}");
        assert!(p < STALE_ALPHA);
    }

    #[test]
    fn small_counts_repeat_by_chance() {
        // small counts: 1..=4 in pairs (1 1 2 2 3 3 4 4 …), so each value is
        // a quarter of the history and repeats half the time
        let mut v: Vec<f64> = (0..400).map(|i| f64::from(i / 2 % 4 + 1)).collect();
        v.extend([7.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0]);
        let p = check(&v);
        let f = 100.5f64 / 402.0;
        assert!((p - ((50.0 + f) / 101.0).powi(5)).abs() < 1e-12, "{p}");
        assert!(p > STALE_ALPHA);
        // twenty more of them are not chance any more
        v.extend([3.0; 20]);
        assert!(check(&v) < STALE_ALPHA);
    }

    #[test]
    fn the_run_does_not_vouch_for_itself_and_windows_slide() {
        // a first long run of 100.0 counts for later runs, not for itself
        let mut v: Vec<f64> = (0..300).map(f64::from).collect();
        v.extend([100.5; 40]);
        assert!(check(&v) < 1e-50);
        // once it is over, that value sticks: a later run of it is no news
        v.extend([7.25, 100.5, 100.5, 100.5, 100.5, 100.5]);
        assert!(check(&v) > 0.5);
        // after WINDOW newer points the old run is forgotten
        let mut r = Repeats::new();
        for _ in 0..50 {
            r.push(9.0);
        }
        for i in 0..WINDOW + 60 {
            r.push(1000.0 + i as f64);
        }
        assert!(r.frequency(9.0) < 1.0 / WINDOW as f64);
    }
}
