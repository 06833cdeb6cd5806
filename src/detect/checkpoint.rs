//! Per-series detector state between runs: when a stored [`Checkpoint`] fits
//! a series, and its encoding.
//!
//! A checkpoint is the kernel's [`KernelState`] before point `k` (every
//! mutable variable of the walk over points `0..k`), serde-encoded with
//! bincode, plus what it was computed from: a fingerprint of everything in
//! the config and the store that shapes the walk (the metric's rule, the
//! calendars, the events, the series' granularity and its owners'
//! explanations) and a hash of the first `k` points (timestamps and value
//! bits). It fits a series only when all of that is unchanged and the
//! report range starts after point `k - 1`; anything else (a restated older
//! value, a deleted row, a changed rule, a new explanation, an unknown
//! encoding version) means a full walk of that series. Pure: bytes and
//! slices in, bytes and numbers out; the store keeps the rows.

use xxhash_rust::xxh3::Xxh3;

use super::kernel::KernelState;
use super::series::{Explained, layout};
use crate::config::{Config, MetricRule};
use crate::model::{Checkpoint, Granularity};

/// Version of the state encoding. Bump it whenever [`KernelState`] or a
/// component's fields change, or what a field means: a stored state of
/// another version is never decoded (that series walks fully once and is
/// checkpointed anew). A change of fields alone is also caught by the
/// layout in every fingerprint ([`Fingerprints::new`]). 3: the December
/// season's own days became its reference (what the walk learned there differs).
pub const VERSION: u32 = 3;

/// The encoding of a state (bincode's standard configuration: little endian,
/// variable-length integers, f64 as its 8 bytes, so every bit survives).
fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// The state as stored.
pub fn encode(state: &KernelState) -> Vec<u8> {
    // encoding plain owned data into a Vec cannot fail; an empty blob would
    // simply never decode (a full walk next time)
    bincode::serde::encode_to_vec(state, config()).unwrap_or_default()
}

/// A stored state, if it decodes completely.
pub fn decode(bytes: &[u8]) -> Option<KernelState> {
    match bincode::serde::decode_from_slice::<KernelState, _>(bytes, config()) {
        Ok((s, used)) if used == bytes.len() => Some(s),
        _ => None,
    }
}

/// Hashes of the first points of a series (timestamps and value bits), fed
/// forward: a resumed series checks the stored state's prefix and then
/// hashes on from there to the new state's, each point once.
pub struct Prefix<'a> {
    ts: &'a [i64],
    values: &'a [f64],
    hasher: Xxh3,
    /// Points fed to `hasher`.
    fed: usize,
}

impl<'a> Prefix<'a> {
    /// Nothing hashed yet.
    pub fn new(ts: &'a [i64], values: &'a [f64]) -> Prefix<'a> {
        Prefix {
            ts,
            values,
            hasher: Xxh3::new(),
            fed: 0,
        }
    }

    /// The hash of points `0..k` (`k` at most the series' length). Asking
    /// for fewer points than were fed starts over.
    pub fn hash(&mut self, k: usize) -> u64 {
        if k < self.fed {
            self.hasher = Xxh3::new();
            self.fed = 0;
        }
        // in blocks: one call per point would cost more than the hashing
        // (the digest does not depend on how the bytes were split)
        let mut block = [0u8; 4096];
        let (ts, values) = (&self.ts[self.fed..k], &self.values[self.fed..k]);
        for (tc, vc) in ts.chunks(256).zip(values.chunks(256)) {
            let mut w = 0;
            for (&t, &v) in tc.iter().zip(vc) {
                block[w..w + 8].copy_from_slice(&t.to_le_bytes());
                block[w + 8..w + 16].copy_from_slice(&v.to_bits().to_le_bytes());
                w += 16;
            }
            self.hasher.update(&block[..w]);
        }
        self.fed = k;
        self.hasher.digest()
    }
}

/// The config's part of every series' fingerprint, computed once per run.
#[derive(Debug, Clone, Copy)]
pub struct Fingerprints {
    /// Calendars (as configured and the built-in one as compiled), the
    /// default calendar's name, events, the state's layout and the encoding version.
    base: u64,
}

/// Feeds formatted text to a hasher without building the string.
struct Hashing(Xxh3);

impl std::fmt::Write for Hashing {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.update(s.as_bytes());
        Ok(())
    }
}

impl Fingerprints {
    /// What of `cfg` shapes the kernel beyond a series' own rule, the
    /// built-in holiday calendar, and the state's layout
    /// ([`super::series::layout`]): a build whose components have other
    /// fields, or whose built-in holidays moved, never resumes an older
    /// build's states. Other changes to the kernel's code bump [`VERSION`].
    pub fn new(cfg: &Config) -> Fingerprints {
        use std::fmt::Write;
        // xxh3 of the Debug forms: any change of a calendar, event or rule
        // changes the text (and so, at worst, invalidates the states)
        let mut h = Hashing(Xxh3::new());
        let written = write!(
            h,
            "{VERSION}|{}|{:?}|{:?}|{:?}|{:?}",
            layout(),
            cfg.calendars,
            cfg.detection.default_calendar,
            cfg.events,
            super::calendar::Calendar::default_calendar(),
        );
        debug_assert!(written.is_ok(), "hashing never fails");
        Fingerprints { base: h.0.digest() }
    }

    /// The fingerprint of one series: the base, its rule, granularity and explanations.
    pub fn of(&self, rule: &MetricRule, g: Granularity, explained: &Explained) -> u64 {
        use std::fmt::Write;
        // the text fed on as it is formatted: the digest of the whole string
        let mut h = Hashing(Xxh3::new());
        let written = write!(h, "{}|{rule:?}|{g:?}|{explained:?}", self.base);
        debug_assert!(written.is_ok(), "hashing never fails");
        h.0.digest()
    }
}

/// Whether `c` fits a series (the points of `prefix`) whose fingerprint is
/// `fingerprint` and whose report range starts at `from`: the same walk
/// inputs, the same first `c.points` points, and none of them reported on.
pub fn fits(c: &Checkpoint, fingerprint: u64, prefix: &mut Prefix<'_>, from: i64) -> bool {
    let k = c.points;
    c.version == VERSION
        && c.fingerprint == fingerprint
        && k > 0
        && k <= prefix.ts.len()
        && prefix.ts[k - 1] == c.last_ts
        && c.last_ts < from
        && prefix.hash(k) == c.prefix_hash
}

#[cfg(test)]
mod tests {
    use xxhash_rust::xxh3::xxh3_64;

    use super::*;

    #[test]
    fn a_series_fingerprint_is_the_hash_of_its_text() {
        // as stored states were fingerprinted: xxh3 of the whole text
        let prints = Fingerprints { base: 7 };
        let rule = MetricRule::default_rule();
        let explained = Explained::NONE;
        for g in [Granularity::Day, Granularity::Hour] {
            let text = format!("7|{rule:?}|{g:?}|{explained:?}");
            assert_eq!(prints.of(&rule, g, &explained), xxh3_64(text.as_bytes()));
        }
    }

    #[test]
    fn a_prefix_hashed_on_is_the_hash_of_its_bytes() {
        let ts: Vec<i64> = (0..1_000).map(|i| i * 86_400_000).collect();
        let values: Vec<f64> = (0..1_000).map(|i| f64::from(i).sin()).collect();
        // what is stored: xxh3 of each point's time and value bits, little endian
        let of_bytes = |values: &[f64], k: usize| {
            let bytes: Vec<u8> = ts[..k]
                .iter()
                .zip(&values[..k])
                .flat_map(|(t, v)| [t.to_le_bytes(), v.to_bits().to_le_bytes()].concat())
                .collect();
            xxh3_64(&bytes)
        };
        // fed on across block edges, and back to fewer points
        let mut p = Prefix::new(&ts, &values);
        for k in [0, 1, 255, 256, 257, 700, 1_000, 3, 999] {
            assert_eq!(p.hash(k), of_bytes(&values, k), "{k}");
        }
        // one value bit anywhere in the prefix changes it, after it does not
        let mut other = values.clone();
        other[500] = f64::from_bits(other[500].to_bits() ^ 1);
        assert_ne!(Prefix::new(&ts, &other).hash(501), of_bytes(&values, 501));
        assert_eq!(Prefix::new(&ts, &other).hash(500), of_bytes(&values, 500));
    }
}
