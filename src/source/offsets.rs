//! The UTC offsets of a time column written with them (`…+01:00`, `…Z`):
//! whether one timezone explains them all.
//!
//! An export in one zone's local time changes its offset at that zone's
//! daylight-saving switches, and reads fine. One whose rows mix offsets
//! otherwise (`+01:00` and `+02:00` on neighbouring hours, `Z` beside
//! `+05:30`) no longer says which wall clock its rows meant: converted to the
//! source's zone they land on the wrong periods, and came out as an
//! irregular spacing or duplicates. Such a file is refused, naming the offsets.
//!
//! The check looks only where the offset changes from one row to the next
//! (in file order): both rows must be at the offset some one zone has at
//! their instants. The candidates are every IANA zone that agrees with the
//! first row; each change keeps those that agree with it. A column with one
//! offset is never checked, and a row seen once is not checked again.

use chrono::{Offset, TimeZone};
use chrono_tz::Tz;

/// One row's instant and the UTC offset it was written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct Stamp {
    /// Milliseconds since 1970 (UTC).
    pub ms: i64,
    /// Seconds east of UTC.
    pub offset: i32,
}

/// The offsets of consecutive rows (one block of a file): the first and last
/// row and each pair of neighbours whose offsets differ, what
/// [`ZoneCheck::run`] needs to check them as if row by row.
#[derive(Debug, Clone, Default)]
pub(super) struct OffsetRun {
    first: Option<Stamp>,
    last: Option<Stamp>,
    changes: Vec<(Stamp, Stamp)>,
}

impl OffsetRun {
    /// The next row.
    pub fn push(&mut self, s: Stamp) {
        match self.last {
            None => self.first = Some(s),
            Some(l) if l.offset != s.offset => self.changes.push((l, s)),
            Some(_) => {}
        }
        self.last = Some(s);
    }
}

/// Whether one zone explains every offset of a column so far (see the module doc).
#[derive(Debug)]
pub(super) struct ZoneCheck {
    /// Tried first: the source's own zone.
    preferred: Tz,
    first: Option<Stamp>,
    last: Option<Stamp>,
    /// The zones that agree with every row checked; `None` before the first change.
    candidates: Option<Vec<Tz>>,
    /// Rows already checked against the candidates (an export repeats its
    /// times for every series).
    checked: std::collections::HashSet<Stamp>,
}

impl ZoneCheck {
    /// A check of a column read in `preferred` (the source's timezone).
    pub fn new(preferred: Tz) -> ZoneCheck {
        ZoneCheck {
            preferred,
            first: None,
            last: None,
            candidates: None,
            checked: std::collections::HashSet::new(),
        }
    }

    /// The next row in file order; `false` once no zone explains the offsets.
    pub fn row(&mut self, s: Stamp) -> bool {
        let ok = match self.last {
            None => {
                self.first = Some(s);
                true
            }
            Some(l) if l.offset != s.offset => self.change(l, s),
            Some(_) => self.candidates.as_ref().is_none_or(|c| !c.is_empty()),
        };
        self.last = Some(s);
        ok
    }

    /// The rows of `run`, in order, as [`ZoneCheck::row`] would take them one by one.
    pub fn run(&mut self, run: &OffsetRun) -> bool {
        let Some(first) = run.first else {
            return true;
        };
        let mut ok = self.row(first);
        for &(a, b) in &run.changes {
            ok = ok && self.change(a, b);
        }
        self.last = run.last;
        ok
    }

    /// Two neighbouring rows of different offsets.
    fn change(&mut self, a: Stamp, b: Stamp) -> bool {
        let first = self.first.unwrap_or(a);
        let preferred = self.preferred;
        let candidates = self.candidates.get_or_insert_with(|| {
            std::iter::once(preferred)
                .chain(
                    chrono_tz::TZ_VARIANTS
                        .iter()
                        .copied()
                        .filter(|z| *z != preferred),
                )
                .filter(|z| agrees(*z, first))
                .collect()
        });
        for s in [a, b] {
            if self.checked.insert(s) {
                candidates.retain(|z| agrees(*z, s));
            }
        }
        !candidates.is_empty()
    }
}

/// True when zone `z` is at `s`'s offset at `s`'s instant.
fn agrees(z: Tz, s: Stamp) -> bool {
    chrono::DateTime::from_timestamp_millis(s.ms).is_some_and(|t| {
        z.offset_from_utc_datetime(&t.naive_utc())
            .fix()
            .local_minus_utc()
            == s.offset
    })
}

/// An offset as written in ISO 8601: `+05:30`, `-03:00`, `+00:00`.
pub(super) fn shown(offset: i32) -> String {
    let sign = if offset < 0 { '-' } else { '+' };
    let m = offset.unsigned_abs() / 60;
    format!("{sign}{:02}:{:02}", m / 60, m % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    /// Rows at the hours `from + h` (UTC) with offsets of `o` minutes, for
    /// each `(h, o)` of `rows`: whether one zone explains them, row by row
    /// and in runs of three rows (which must agree).
    fn explained(from: &str, rows: impl Iterator<Item = (i64, i32)>) -> bool {
        let start = chrono::DateTime::parse_from_rfc3339(from)
            .unwrap()
            .timestamp_millis();
        let rows: Vec<Stamp> = rows
            .map(|(h, o)| Stamp {
                ms: start + h * H,
                offset: o * 60,
            })
            .collect();
        let mut by_row = ZoneCheck::new(chrono_tz::UTC);
        // every row is fed, even after one fails (no short circuit)
        let mut one = true;
        for &s in &rows {
            one &= by_row.row(s);
        }
        let mut by_run = ZoneCheck::new(chrono_tz::UTC);
        let runs = rows.chunks(3).fold(true, |ok, c| {
            let mut r = OffsetRun::default();
            c.iter().for_each(|&s| r.push(s));
            by_run.run(&r) && ok
        });
        assert_eq!(one, runs, "rows and runs disagree from {from}");
        one
    }

    /// 48 hours from `from`, the offset of hour `h` being `offset(h)`.
    fn hours(offset: impl Fn(i64) -> i32) -> impl Iterator<Item = (i64, i32)> {
        (0..48).map(move |h| (h, offset(h)))
    }

    #[test]
    fn one_zones_switches_explain_its_offsets_and_nothing_else_does() {
        // Berlin goes to +02:00 at 01:00 UTC on 2025-03-30
        let berlin = |h: i64| if h < 25 { 60 } else { 120 };
        let from = "2025-03-29T00:00:00Z";
        assert!(explained(from, hours(berlin)));
        // the same switch an hour late is no zone's
        assert!(!explained(from, hours(|h| if h < 26 { 60 } else { 120 })));
        // offsets alternating row by row
        assert!(!explained(
            from,
            hours(|h| if h % 2 == 0 { 60 } else { 120 })
        ));
        // UTC, then India's
        assert!(!explained(from, hours(|h| if h < 30 { 0 } else { 330 })));
        // one offset throughout, whatever it is
        assert!(explained(from, hours(|_| 345)));
        // series after series, each over the switch: the offset goes back
        // and forth, always Berlin's
        let series = (0..3).flat_map(|_| hours(berlin));
        assert!(explained(from, series));
    }

    #[test]
    fn offsets_are_shown_as_written() {
        assert_eq!(shown(0), "+00:00");
        assert_eq!(shown(19_800), "+05:30");
        assert_eq!(shown(-10_800), "-03:00");
    }
}
