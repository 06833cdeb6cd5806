//! Cron → the next fire time. Pure: no clock, no sleeping, no I/O.
//!
//! The daemon asks "given it is `now`, when do I run next?" and sleeps until
//! then; this module answers that question and nothing else. It must not read
//! the time itself (the caller passes `now`, see [`crate::clock`]), so every
//! answer is reproducible in a test.
//!
//! # Semantics
//! Cron fields name *wall-clock* times in the configured timezone
//! (`"0 0 7 * * Mon-Fri"` in `Europe/London` is 07:00 London time in winter and
//! in summer). Daylight-saving changes are handled the way cron(8) handles
//! them for jobs with a fixed hour, because those are what a review schedule
//! uses:
//! - a wall-clock time that happens **twice** (clocks go back) fires **once**,
//!   at its first occurrence;
//! - a wall-clock time that **does not exist** (clocks go forward) fires at the
//!   first instant after the gap, so a daily run is never silently skipped;
//!   several skipped times collapse into that one run.
//!
//! A consequence for schedules that fire more often than hourly: they pause
//! for the repeated hour in autumn (its wall-clock times have already fired).
//! Runs never overlap anyway, and a WBR schedule is daily or weekly.

use chrono::offset::LocalResult;
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::config::ScheduleConfig;

/// Upper bound on candidates examined per cron expression. Candidates are only
/// rejected inside an autumn fold (at most a couple of hours of seconds), so
/// this is never reached by a real schedule; it keeps a pathological one from
/// spinning.
const MAX_CANDIDATES: usize = 100_000;

/// The next time the schedule fires strictly after `now`, in the schedule's
/// timezone; `None` if no expression ever fires again (or there are none).
pub fn next_fire(schedule: &ScheduleConfig, now: DateTime<Utc>) -> Option<DateTime<Tz>> {
    next_fire_of(&schedule.crons, schedule.timezone, now)
}

/// The earliest next fire time strictly after `now` across `crons`, each read
/// as wall-clock times in `tz`.
pub fn next_fire_of(crons: &[cron::Schedule], tz: Tz, now: DateTime<Utc>) -> Option<DateTime<Tz>> {
    crons.iter().filter_map(|c| next_of_one(c, tz, now)).min()
}

/// How many fire times fall in `(after, until]`, counting at most `limit`.
///
/// The daemon uses this to report fire times that passed while a run was in
/// progress (they are skipped, never queued).
pub fn fires_between(
    schedule: &ScheduleConfig,
    after: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: usize,
) -> usize {
    let mut count = 0;
    let mut t = after;
    while count < limit {
        match next_fire(schedule, t) {
            Some(next) if next.with_timezone(&Utc) <= until => {
                count += 1;
                t = next.with_timezone(&Utc);
            }
            _ => break,
        }
    }
    count
}

fn next_of_one(cron: &cron::Schedule, tz: Tz, now: DateTime<Utc>) -> Option<DateTime<Tz>> {
    // Walk the wall-clock times the expression names, represented as UTC values
    // because UTC has no gaps or folds: every wall-clock time is visited exactly
    // once, in order, whatever the zone does.
    let wall_now = now.with_timezone(&tz).naive_local().and_utc();
    cron.after(&wall_now)
        .take(MAX_CANDIDATES)
        .filter_map(|wall| resolve(tz, wall.naive_utc()))
        // After clocks go back, a wall-clock time later than now's can still
        // have had its first occurrence before `now`: it has fired already.
        .find(|at| at.with_timezone(&Utc) > now)
}

/// The instant a wall-clock time fires at: its only occurrence, its first one
/// in a fold, or the end of the gap it falls in.
fn resolve(tz: Tz, wall: NaiveDateTime) -> Option<DateTime<Tz>> {
    match tz.from_local_datetime(&wall) {
        LocalResult::Single(at) => Some(at),
        LocalResult::Ambiguous(first, _) => Some(first),
        LocalResult::None => end_of_gap(tz, wall),
    }
}

/// The first instant whose wall-clock time is later than `wall`, for a `wall`
/// inside a gap: the moment the clocks went forward.
fn end_of_gap(tz: Tz, wall: NaiveDateTime) -> Option<DateTime<Tz>> {
    // UTC offsets lie within ±14 h, so the instant is within this window; the
    // wall clock only moves forward inside it (transitions are months apart), so
    // "wall-clock time is later than `wall`" is monotone and can be bisected.
    const SPAN_SECS: i64 = 15 * 3600;
    let later = |secs: i64| {
        DateTime::from_timestamp(secs, 0).map(|u| u.with_timezone(&tz).naive_local() > wall)
    };
    let centre = wall.and_utc().timestamp();
    let (mut lo, mut hi) = (centre - SPAN_SECS, centre + SPAN_SECS);
    if later(lo)? || !later(hi)? {
        return None;
    }
    // Invariant: wall-clock time at `lo` ≤ wall < wall-clock time at `hi`.
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if later(mid)? {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    DateTime::from_timestamp(hi, 0).map(|u| u.with_timezone(&tz))
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;
    use std::time::Duration;

    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn schedule(crons: &[&str], tz: &str) -> ScheduleConfig {
        ScheduleConfig {
            crons: crons
                .iter()
                .map(|c| cron::Schedule::from_str(c).unwrap())
                .collect(),
            timezone: tz.parse().unwrap(),
            run_timeout: Duration::from_secs(60),
        }
    }

    /// The next fire after `now` is `expected` (RFC 3339, or "none").
    fn check(crons: &[&str], tz: &str, now: &str, expected: &str) {
        let got = next_fire(&schedule(crons, tz), utc(now)).map(|t| t.with_timezone(&Utc));
        let want = (expected != "none").then(|| utc(expected));
        assert_eq!(got, want, "{crons:?} in {tz} after {now}");
    }

    const WEEKDAYS_7: &[&str] = &["0 0 7 * * Mon-Fri"];

    #[test]
    fn weekday_mornings_in_london() {
        // Winter (GMT = UTC): Friday 07:00.
        check(
            WEEKDAYS_7,
            "Europe/London",
            "2024-03-29T06:00:00Z",
            "2024-03-29T07:00:00Z",
        );
        // Strictly after: at the fire time itself, the next one is Monday.
        // Clocks went forward on Sunday 31 March, so Monday 07:00 BST is 06:00 UTC.
        check(
            WEEKDAYS_7,
            "Europe/London",
            "2024-03-29T07:00:00Z",
            "2024-04-01T06:00:00Z",
        );
        check(
            WEEKDAYS_7,
            "Europe/London",
            "2024-03-29T07:00:01Z",
            "2024-04-01T06:00:00Z",
        );
        // Saturday and Sunday are skipped.
        check(
            WEEKDAYS_7,
            "Europe/London",
            "2024-03-30T12:00:00Z",
            "2024-04-01T06:00:00Z",
        );
        // Autumn: Friday 25 October is BST, Monday 28 October is GMT again.
        check(
            WEEKDAYS_7,
            "Europe/London",
            "2024-10-25T05:59:59Z",
            "2024-10-25T06:00:00Z",
        );
        check(
            WEEKDAYS_7,
            "Europe/London",
            "2024-10-25T06:00:00Z",
            "2024-10-28T07:00:00Z",
        );
    }

    #[test]
    fn other_zones_follow_their_own_rules() {
        // New York springs forward on 10 March 2024: 09:00 EDT is 13:00 UTC.
        check(
            &["0 0 9 * * *"],
            "America/New_York",
            "2024-03-09T15:00:00Z",
            "2024-03-10T13:00:00Z",
        );
        check(
            &["0 0 9 * * *"],
            "America/New_York",
            "2024-03-09T13:00:00Z",
            "2024-03-09T14:00:00Z",
        );
        check(
            &["0 0 9 * * *"],
            "UTC",
            "2024-03-09T09:00:00Z",
            "2024-03-10T09:00:00Z",
        );
    }

    #[test]
    fn time_in_the_spring_gap_fires_when_the_clocks_go_forward() {
        // 01:30 does not exist in London on 31 March 2024 (01:00 GMT → 02:00 BST):
        // it fires at 02:00 BST = 01:00 UTC rather than skipping the day.
        check(
            &["0 30 1 * * *"],
            "Europe/London",
            "2024-03-31T00:00:00Z",
            "2024-03-31T01:00:00Z",
        );
        // …once: afterwards the next is the following night, 01:30 BST.
        check(
            &["0 30 1 * * *"],
            "Europe/London",
            "2024-03-31T01:00:00Z",
            "2024-04-01T00:30:00Z",
        );
        // A quarter-hourly schedule keeps its real-time cadence through the gap.
        let q = &["0 */15 * * * *"];
        check(
            q,
            "Europe/London",
            "2024-03-31T00:45:00Z",
            "2024-03-31T01:00:00Z",
        );
        check(
            q,
            "Europe/London",
            "2024-03-31T01:00:00Z",
            "2024-03-31T01:15:00Z",
        );
    }

    #[test]
    fn time_in_the_autumn_fold_fires_once() {
        // 01:30 happens twice in London on 27 October 2024: first at 01:30 BST
        // (00:30 UTC), then at 01:30 GMT (01:30 UTC). It fires at the first only.
        check(
            &["0 30 1 * * *"],
            "Europe/London",
            "2024-10-27T00:00:00Z",
            "2024-10-27T00:30:00Z",
        );
        check(
            &["0 30 1 * * *"],
            "Europe/London",
            "2024-10-27T00:30:00Z",
            "2024-10-28T01:30:00Z",
        );
        // Started during the repeated hour, after the first 01:30: not re-fired.
        check(
            &["0 30 1 * * *"],
            "Europe/London",
            "2024-10-27T01:10:00Z",
            "2024-10-28T01:30:00Z",
        );
    }

    #[test]
    fn earliest_of_several_expressions() {
        let crons = &["0 0 7 * * Mon-Fri", "0 0 12 * * Sat"];
        check(
            crons,
            "Europe/London",
            "2024-03-30T08:00:00Z",
            "2024-03-30T12:00:00Z",
        );
        check(
            crons,
            "Europe/London",
            "2024-03-29T06:59:00Z",
            "2024-03-29T07:00:00Z",
        );
    }

    #[test]
    fn nothing_to_fire() {
        check(&[], "UTC", "2024-03-30T08:00:00Z", "none");
        // Seven fields: the last is the year, long gone.
        check(&["0 0 0 1 1 * 2020"], "UTC", "2024-03-30T08:00:00Z", "none");
    }

    #[test]
    fn every_second() {
        check(
            &["* * * * * *"],
            "UTC",
            "2024-03-30T08:00:00.5Z",
            "2024-03-30T08:00:01Z",
        );
        check(
            &["* * * * * *"],
            "Europe/London",
            "2024-07-01T08:00:00Z",
            "2024-07-01T08:00:01Z",
        );
    }

    #[test]
    fn fire_times_missed_during_a_run_are_counted() {
        let s = schedule(&["* * * * * *"], "UTC");
        let (a, b) = (utc("2024-03-30T08:00:00Z"), utc("2024-03-30T08:00:10Z"));
        assert_eq!(fires_between(&s, a, b, 1000), 10);
        assert_eq!(fires_between(&s, a, b, 3), 3);
        assert_eq!(fires_between(&s, a, a, 1000), 0);
        let s = schedule(WEEKDAYS_7, "Europe/London");
        let (fri, mon) = (utc("2024-03-29T07:00:00Z"), utc("2024-04-01T06:30:00Z"));
        assert_eq!(fires_between(&s, fri, mon, 1000), 1);
    }
}
