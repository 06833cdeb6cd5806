//! The clock: where "now" comes from.
//!
//! Everything that asks for the current time goes through [`Clock`], so tests
//! (and backfill, which replays history) can decide what "now" is. This module
//! only *reads* time; sleeping is the daemon's business (tokio's timer).
//! [`At`] is a moment as a person types it (`--at`, the demo's moment),
//! read in the review's timezone.

use std::sync::Mutex;

use chrono::{DateTime, Utc};

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}

/// The operating system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The wall clock moved to start at another moment (`serve --at`): it reads
/// `start` when made and then runs on in real time, so a replayed page's
/// "now" (link expiry, due or overdue) is that moment, and time still passes.
#[derive(Debug, Clone, Copy)]
pub struct ShiftedClock {
    /// Added to the system clock.
    offset: chrono::TimeDelta,
}

impl ShiftedClock {
    /// A clock reading `start` now.
    pub fn starting_at(start: DateTime<Utc>) -> Self {
        ShiftedClock {
            offset: start - Utc::now(),
        }
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.offset
    }
}

/// A clock that says what it is told, for tests: it never moves on its own.
#[derive(Debug)]
pub struct FixedClock {
    /// The instant [`Clock::now`] returns; a mutex so a shared clock can be moved
    /// forward by the test while the code under test holds a reference.
    now: Mutex<DateTime<Utc>>,
}

impl FixedClock {
    /// A clock stopped at `now`.
    pub fn new(now: DateTime<Utc>) -> Self {
        FixedClock {
            now: Mutex::new(now),
        }
    }

    /// Move the clock to `now` (forwards or backwards).
    pub fn set(&self, now: DateTime<Utc>) {
        *self.lock() = now;
    }

    /// Move the clock forward by `by`.
    pub fn advance(&self, by: chrono::Duration) {
        let mut guard = self.lock();
        *guard += by;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DateTime<Utc>> {
        // A poisoned lock only means another thread panicked while holding it;
        // the timestamp inside is still a valid value, so keep using it.
        self.now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.lock()
    }
}

/// `--at`: the evaluation clock of a replayed run, report or page ("now" as of
/// a moment in the past). A time without an offset is read in the review's
/// timezone, the one the team reads its deadlines in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// `YYYY-MM-DD HH:MM` (or `T` between, or a date alone: midnight), local to the review.
    Local(chrono::NaiveDateTime),
    /// RFC 3339 with an offset, e.g. `2025-03-10T08:00:00Z`.
    Fixed(chrono::DateTime<chrono::FixedOffset>),
}

impl std::str::FromStr for At {
    type Err = String;

    fn from_str(s: &str) -> Result<At, String> {
        let s = s.trim();
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
            return Ok(At::Fixed(t));
        }
        for f in [
            "%Y-%m-%d %H:%M",
            "%Y-%m-%dT%H:%M",
            "%Y-%m-%d %H:%M:%S",
            "%Y-%m-%dT%H:%M:%S",
        ] {
            if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, f) {
                return Ok(At::Local(t));
            }
        }
        if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            return Ok(At::Local(d.and_time(chrono::NaiveTime::MIN)));
        }
        Err(format!(
            "`{s}` is not a moment: use \"YYYY-MM-DD HH:MM\" (in the review's timezone) or RFC 3339 such as 2025-03-10T08:00:00Z"
        ))
    }
}

impl At {
    /// The moment in UTC; a local time is read in `tz`. A local time that
    /// does not exist (skipped by a DST change) is an error naming it; one
    /// that exists twice is the earlier.
    pub fn resolve(&self, tz: chrono_tz::Tz) -> Result<chrono::DateTime<chrono::Utc>, String> {
        use chrono::TimeZone;
        match self {
            At::Fixed(t) => Ok(t.with_timezone(&chrono::Utc)),
            At::Local(t) => tz
                .from_local_datetime(t)
                .earliest()
                .map(|t| t.with_timezone(&chrono::Utc))
                .ok_or_else(|| {
                    format!("`--at {t}` does not exist in {tz} (a daylight-saving gap)")
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn fixed_clock_moves_only_when_told() {
        let t0 = Utc.with_ymd_and_hms(2024, 3, 29, 6, 0, 0).unwrap();
        let clock = FixedClock::new(t0);
        assert_eq!(clock.now(), t0);
        assert_eq!(clock.now(), t0);
        clock.advance(chrono::Duration::minutes(90));
        assert_eq!(clock.now(), t0 + chrono::Duration::minutes(90));
        clock.set(t0);
        assert_eq!(clock.now(), t0);
    }

    #[test]
    fn shifted_clock_starts_at_the_given_moment() {
        let t0 = Utc.with_ymd_and_hms(2025, 3, 10, 8, 0, 0).unwrap();
        let d = ShiftedClock::starting_at(t0).now() - t0;
        assert!((0..5).contains(&d.num_seconds()), "{d}");
    }

    #[test]
    fn system_clock_is_close_to_utc_now() {
        let d = SystemClock.now() - Utc::now();
        assert!(d.num_seconds().abs() < 5);
    }

    #[test]
    fn at_reads_local_times_in_the_review_timezone_and_offsets_as_given() {
        let london = chrono_tz::Europe::London;
        let at = |s: &str| s.parse::<At>().and_then(|a| a.resolve(london));
        // summer time: 08:00 in London is 07:00 UTC
        assert_eq!(
            at("2025-06-10 08:00"),
            Ok(Utc.with_ymd_and_hms(2025, 6, 10, 7, 0, 0).unwrap())
        );
        assert_eq!(at("2025-03-10T08:00"), at("2025-03-10 08:00"));
        assert_eq!(
            at("2025-03-10"),
            Ok(Utc.with_ymd_and_hms(2025, 3, 10, 0, 0, 0).unwrap())
        );
        assert_eq!(
            at("2025-06-10T08:00:00Z"),
            Ok(Utc.with_ymd_and_hms(2025, 6, 10, 8, 0, 0).unwrap())
        );
        // the hour skipped on 30 March 2025
        assert!(
            at("2025-03-30 01:30")
                .unwrap_err()
                .contains("daylight-saving gap")
        );
        let bad = "next tuesday".parse::<At>().unwrap_err();
        assert!(
            bad.contains("next tuesday") && bad.contains("YYYY-MM-DD HH:MM"),
            "{bad}"
        );
    }
}
