//! Typed values of any section: a choice of words, numbers within their
//! named range, durations, sizes, paths, timezones, metric globs, addresses
//! and dates, each reported with its key and what would be right.

use std::ops::Bound::{self, Excluded, Included, Unbounded};
use std::ops::{RangeBounds, RangeInclusive};

use super::*;

impl Compiler {
    /// One of a fixed set of words → its enum value; anything else is a problem
    /// listing the choices.
    pub(super) fn choice<T: Copy>(
        &mut self,
        key: &str,
        v: Option<&str>,
        choices: &[(&str, T)],
        default: T,
    ) -> T {
        let Some(v) = v else { return default };
        match choices.iter().find(|(word, _)| *word == v) {
            Some((_, t)) => *t,
            None => {
                let words: Vec<String> = choices.iter().map(|(w, _)| format!("{w:?}")).collect();
                self.problem(
                    key,
                    format!("must be one of {}, got {v:?}", words.join(", ")),
                );
                default
            }
        }
    }

    /// An integer key within `range`; `None` when absent or out of range (reported).
    pub(super) fn int(&mut self, key: &str, v: Option<i64>, range: IntRange) -> Option<i64> {
        let v = v?;
        let (range, unit) = range;
        if range.contains(&v) {
            Some(v)
        } else {
            self.problem(
                key,
                format!(
                    "must be between {} and {}{unit}, got {v}",
                    range.start(),
                    range.end()
                ),
            );
            None
        }
    }

    /// A number of seconds within `range` as a `Duration`, else `default`.
    pub(super) fn secs(
        &mut self,
        key: &str,
        v: Option<i64>,
        range: IntRange,
        default: u64,
    ) -> Duration {
        Duration::from_secs(self.int(key, v, range).map_or(default, i64::unsigned_abs))
    }

    /// A float key within `range`; `None` when absent or out of range (reported).
    pub(super) fn float(&mut self, key: &str, v: Option<f64>, range: FloatRange) -> Option<f64> {
        let v = v?;
        if range.contains(&v) {
            Some(v)
        } else {
            self.problem(key, format!("must be {}, got {}", describe(&range), num(v)));
            None
        }
    }

    /// A size such as `"512MB"`, `"1.5 GiB"` or `"200000000"` (bytes) within
    /// `range`; `None` when it is not one (reported).
    pub(super) fn bytes(&mut self, key: &str, text: &str, range: (u64, u64)) -> Option<u64> {
        const UNITS: &[(&str, f64)] = &[
            ("", 1.0),
            ("b", 1.0),
            ("kb", 1e3),
            ("mb", 1e6),
            ("gb", 1e9),
            ("tb", 1e12),
            ("kib", 1024.0),
            ("mib", 1_048_576.0),
            ("gib", 1_073_741_824.0),
            ("tib", 1_099_511_627_776.0),
        ];
        let t = text.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (number, unit) = t.split_at(split);
        let unit = unit.trim().to_ascii_lowercase();
        let bytes = number
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .and_then(|n| UNITS.iter().find(|u| u.0 == unit).map(|u| n * u.1));
        let Some(bytes) = bytes else {
            self.problem(
                key,
                format!("must be a size such as \"512MB\" or \"2GiB\" (units B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), got {text:?}"),
            );
            return None;
        };
        #[allow(clippy::cast_precision_loss, reason = "the bounds are exact in f64")]
        let fits = (range.0 as f64..=range.1 as f64).contains(&bytes);
        if fits {
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "within the range, far below 2^53 bytes"
            )]
            let b = bytes.round() as u64;
            Some(b)
        } else {
            self.problem(
                key,
                format!(
                    "must be between 1MB and 1000TB, got {text:?} ({} bytes)",
                    num(bytes)
                ),
            );
            None
        }
    }

    pub(super) fn path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }

    pub(super) fn tz(&mut self, key: &str, v: Option<&str>) -> Tz {
        let Some(v) = v else { return Tz::UTC };
        match Tz::from_str(v) {
            Ok(t) => t,
            Err(_) => {
                self.problem(
                    key,
                    format!("unknown IANA timezone {v:?} (e.g. \"Europe/London\", \"UTC\")"),
                );
                Tz::UTC
            }
        }
    }

    pub(super) fn glob(&mut self, key: &str, v: Option<&str>) -> MetricGlob {
        let v = v.unwrap_or("*");
        match MetricGlob::new(v) {
            Ok(g) => g,
            Err(e) => {
                self.problem(key, format!("bad glob {v:?}: {e}"));
                star()
            }
        }
    }

    pub(super) fn mailbox(&mut self, key: &str, v: &str) -> Option<lettre::message::Mailbox> {
        match parse_mailbox(v) {
            Ok(m) => Some(m),
            Err(e) => {
                self.problem(key, format!("{e}; e.g. \"Ana <ana@example.com>\""));
                None
            }
        }
    }

    pub(super) fn dims(&mut self, m: BTreeMap<String, String>) -> Vec<(String, String)> {
        m.into_iter().collect()
    }

    pub(super) fn date(&mut self, key: &str, v: Option<&str>) -> Option<NaiveDate> {
        let Some(v) = v else {
            self.problem(key, "missing: a date YYYY-MM-DD".into());
            return None;
        };
        NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .map_err(|_| self.problem(key, format!("not a date {v:?} (YYYY-MM-DD)")))
            .ok()
    }
}

/// An allowed integer range and its unit (shown in messages).
pub(super) type IntRange = (RangeInclusive<i64>, &'static str);

pub(super) const RUN_TIMEOUT_SECS: IntRange = (1..=7 * 86_400, " seconds");

pub(super) const SOURCE_TIMEOUT_SECS: IntRange = (1..=86_400, " seconds");

/// 1 byte to 1 TiB.
pub(super) const MAX_DOWNLOAD_BYTES: IntRange = (1..=1 << 40, " bytes");

pub(super) const SQL_HISTORY_DAYS: IntRange = (1..=36_500, " days");

pub(super) const HEADER_ROW: IntRange = (1..=1_048_576, "");

pub(super) const SMTP_TIMEOUT_SECS: IntRange = (1..=3_600, " seconds");

pub(super) const CHAT_TIMEOUT_SECS: IntRange = (1..=300, " seconds");

/// 0: retry on every run, without waiting.
pub(super) const RETRY_BASE_SECS: IntRange = (0..=86_400, " seconds");

pub(super) const EXPLANATIONS_DUE_HOURS: IntRange = (0..=6 * 24, " hours");

pub(super) const MIN_HISTORY: IntRange = (1..=100_000, " periods");

pub(super) const STALE_PERIODS: IntRange = (2..=10_000, " periods");

pub(super) const MISSING_PERIODS: IntRange = (1..=100_000, " periods");

pub(super) const CLOSE_AFTER_PERIODS: IntRange = (1..=1_000, " periods");
pub(super) const CLOSE_AFTER_HOURS: IntRange = (0..=168, " hours");

pub(super) const CATCH_UP_DAYS: IntRange = (1..=366, " days");

pub(super) const REMINDER_HOURS: IntRange =
    (0..=336, " hours (0: no reminders; at most two weeks)");

pub(super) const PORT: IntRange = (1..=65_535, "");

/// An allowed float range: `(low, high)` bounds.
pub(super) type FloatRange = (Bound<f64>, Bound<f64>);

pub(super) const FDR: FloatRange = (Excluded(0.0), Excluded(1.0));

/// `detection.memory_budget`: at least 1 MB (below that the program itself
/// outweighs the rows), at most 1 PB.
pub(super) const MEMORY_BUDGET: (u64, u64) = (1_000_000, 1_000_000_000_000_000);

/// A huge delay switches the late check off (tests and exports without a
/// deadline do that); the cap keeps `Duration` and milliseconds far from overflow.
pub(super) const EXPECTED_DELAY_HOURS: FloatRange = (Included(0.0), Included(1e6));

pub(super) const SENSITIVITY: FloatRange = (Excluded(0.0), Included(1_000.0));

pub(super) const NON_NEGATIVE: FloatRange = (Included(0.0), Included(f64::MAX));

pub(super) const MAX_PCT_CHANGE: FloatRange = (Excluded(0.0), Included(1e9));

pub(super) const FINITE: FloatRange = (Included(f64::MIN), Included(f64::MAX));

/// A number as a person writes it: `1e300`, not 301 digits.
pub(super) fn num(x: f64) -> String {
    if x != 0.0 && x.is_finite() && !(1e-4..1e15).contains(&x.abs()) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

/// `(Excluded(0), Included(10))` → "> 0 and <= 10"; the f64 limits are left unsaid.
pub(super) fn describe(r: &FloatRange) -> String {
    let lo = match r.0 {
        Included(x) if x == f64::MIN => None,
        Included(x) => Some(format!(">= {}", num(x))),
        Excluded(x) => Some(format!("> {}", num(x))),
        Unbounded => None,
    };
    let hi = match r.1 {
        Included(x) if x == f64::MAX => None,
        Included(x) => Some(format!("<= {}", num(x))),
        Excluded(x) => Some(format!("< {}", num(x))),
        Unbounded => None,
    };
    match (lo, hi) {
        (Some(l), Some(h)) => format!("{l} and {h}"),
        (Some(x), None) | (None, Some(x)) => format!("finite and {x}"),
        (None, None) => "a finite number".into(),
    }
}

pub(super) fn star() -> MetricGlob {
    MetricGlob::new("*").unwrap_or_else(|_| MetricGlob(glob::Pattern::default()))
}
