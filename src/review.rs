//! The review calendar: when the next review is, when the last one was, and
//! when explanations are due. Shared by `render` (the subject and body are
//! phrased around the deadline) and `alert` (which incidents are past, which
//! are due for a reminder or an escalation).
//!
//! Pure: `now` comes in as an argument. Must not: format anything for people
//! (that is `render`) or decide who is told (that is `alert`).

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::config::ReviewConfig;

/// The review time as a local instant; a time skipped by a DST change moves
/// one hour later, an ambiguous one takes the first occurrence.
fn resolve(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Tz>> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Some(t),
        LocalResult::None => tz
            .from_local_datetime(&(local + Duration::hours(1)))
            .earliest(),
    }
}

/// The first review strictly after `now`.
pub fn next_review(review: &ReviewConfig, now: DateTime<Utc>) -> DateTime<Tz> {
    let local = now.with_timezone(&review.timezone);
    let mut day = local.date_naive();
    for _ in 0..9 {
        if day.weekday() == review.weekday
            && let Some(t) = resolve(review.timezone, day.and_time(review.time))
            && t.with_timezone(&Utc) > now
        {
            return t;
        }
        match day.succ_opt() {
            Some(d) => day = d,
            None => break,
        }
    }
    local + Duration::days(7)
}

/// The last review at or before `now`: the start of the current review week.
pub fn previous_review(review: &ReviewConfig, now: DateTime<Utc>) -> DateTime<Tz> {
    let local = now.with_timezone(&review.timezone);
    let mut day = local.date_naive();
    for _ in 0..9 {
        if day.weekday() == review.weekday
            && let Some(t) = resolve(review.timezone, day.and_time(review.time))
            && t.with_timezone(&Utc) <= now
        {
            return t;
        }
        match day.pred_opt() {
            Some(d) => day = d,
            None => break,
        }
    }
    local - Duration::days(7)
}

/// When explanations are due: the next review minus `due_hours_before`.
pub fn deadline(review: &ReviewConfig, now: DateTime<Utc>) -> DateTime<Tz> {
    next_review(review, now) - Duration::hours(review.due_hours_before)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveTime, Weekday};

    fn review() -> ReviewConfig {
        ReviewConfig {
            name: "WBR".into(),
            weekday: Weekday::Wed,
            time: NaiveTime::from_hms_opt(10, 0, 0).unwrap(),
            timezone: chrono_tz::Europe::London,
            due_hours_before: 24,
        }
    }

    /// Monday 30 Nov 2020, 07:00 UTC.
    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2020, 11, 30, 7, 0, 0).unwrap()
    }

    fn hm(t: &DateTime<Tz>) -> String {
        t.format("%a %-d %b %H:%M").to_string()
    }

    #[test]
    fn review_arithmetic() {
        assert_eq!(hm(&next_review(&review(), now())), "Wed 2 Dec 10:00");
        assert_eq!(hm(&deadline(&review(), now())), "Tue 1 Dec 10:00");
        assert_eq!(hm(&previous_review(&review(), now())), "Wed 25 Nov 10:00");
        // At the review instant the next one is a week later.
        let at = Utc.with_ymd_and_hms(2020, 12, 2, 10, 0, 0).unwrap();
        assert_eq!(hm(&next_review(&review(), at)), "Wed 9 Dec 10:00");
        assert_eq!(hm(&previous_review(&review(), at)), "Wed 2 Dec 10:00");
        // Summer time: 10:00 London is 09:00 UTC.
        let summer = Utc.with_ymd_and_hms(2021, 6, 30, 9, 30, 0).unwrap();
        assert_eq!(hm(&next_review(&review(), summer)), "Wed 7 Jul 10:00");
    }
}
