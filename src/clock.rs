//! The clock: where "now" comes from.
//!
//! Everything that asks for the current time goes through [`Clock`], so tests
//! (and backfill, which replays history) can decide what "now" is. This module
//! only *reads* time; sleeping is the daemon's business (tokio's timer).

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
}
