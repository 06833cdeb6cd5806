//! The report's calendar: reporting weeks (starting on a configured day),
//! months, and fiscal quarters and years (starting in a configured month),
//! which week a report is for, and "the same period last year".
//!
//! Pure: dates in, dates out. Periods are half-open `[start, end)` in days.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc, Weekday};

use crate::config::ReviewConfig;

/// A half-open range of dates, `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// First day.
    pub start: NaiveDate,
    /// The day after the last.
    pub end: NaiveDate,
}

impl Span {
    /// The last day inside.
    pub fn last(&self) -> NaiveDate {
        self.end.pred_opt().unwrap_or(self.end)
    }

    /// Moved by `days`.
    pub fn shift(&self, days: i64) -> Span {
        Span {
            start: self.start + Duration::days(days),
            end: self.end + Duration::days(days),
        }
    }

    /// The same calendar dates a year earlier (29 Feb → 28 Feb).
    pub fn year_ago(&self) -> Span {
        Span {
            start: year_ago(self.start),
            end: year_ago(self.end),
        }
    }

    /// Days since 1970-01-01 of `start` and `end`.
    pub fn days(&self) -> (i64, i64) {
        (day_number(self.start), day_number(self.end))
    }
}

/// Days since 1970-01-01.
pub fn day_number(d: NaiveDate) -> i64 {
    d.signed_duration_since(NaiveDate::default()).num_days()
}

/// The same calendar date a year earlier; 29 February becomes 28 February.
pub fn year_ago(d: NaiveDate) -> NaiveDate {
    d.with_year(d.year() - 1)
        .or_else(|| d.pred_opt().and_then(|p| p.with_year(d.year() - 1)))
        .unwrap_or(d)
}

fn first_of_month(year: i32, month: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, 1).unwrap_or_default()
}

/// `months` months after the first of (`year`, `month`).
fn add_months(year: i32, month: u32, months: i32) -> NaiveDate {
    let m0 = year * 12 + i32::try_from(month).unwrap_or(1) - 1 + months;
    first_of_month(
        m0.div_euclid(12),
        u32::try_from(m0.rem_euclid(12)).unwrap_or(0) + 1,
    )
}

/// Weeks and fiscal periods of one organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Calendar {
    /// The first day of a reporting week.
    pub week_start: Weekday,
    /// The month (1..=12) the fiscal year starts.
    pub fiscal_year_start: u32,
}

impl Calendar {
    /// The week containing `d`.
    pub fn week_of(&self, d: NaiveDate) -> Span {
        let back =
            (7 + d.weekday().num_days_from_monday() - self.week_start.num_days_from_monday()) % 7;
        let start = d - Duration::days(i64::from(back));
        Span {
            start,
            end: start + Duration::days(7),
        }
    }

    /// The week of ISO week `week` of `year` (its Monday, moved back to the week start).
    pub fn iso_week(&self, year: i32, week: u32) -> Option<Span> {
        NaiveDate::from_isoywd_opt(year, week, Weekday::Mon).map(|d| self.week_of(d))
    }

    /// The calendar month containing `d`.
    pub fn month_of(&self, d: NaiveDate) -> Span {
        Span {
            start: first_of_month(d.year(), d.month()),
            end: add_months(d.year(), d.month(), 1),
        }
    }

    /// The fiscal quarter containing `d`.
    pub fn quarter_of(&self, d: NaiveDate) -> Span {
        let into = (12 + d.month() - self.fiscal_year_start) % 12;
        let back = i32::try_from(into % 3).unwrap_or(0);
        let start = add_months(d.year(), d.month(), -back);
        Span {
            start,
            end: add_months(start.year(), start.month(), 3),
        }
    }

    /// The fiscal year containing `d`.
    pub fn year_of(&self, d: NaiveDate) -> Span {
        let into = i32::try_from((12 + d.month() - self.fiscal_year_start) % 12).unwrap_or(0);
        let start = add_months(d.year(), d.month(), -into);
        Span {
            start,
            end: add_months(start.year(), start.month(), 12),
        }
    }

    /// The week a report made at `now` is for: the last week that is
    /// complete before the next review starts (its end on or before the
    /// review's date).
    pub fn default_week(&self, review: &ReviewConfig, now: DateTime<Utc>) -> Span {
        let review_day = crate::review::next_review(review, now).date_naive();
        let w = self.week_of(review_day - Duration::days(1));
        if w.end <= review_day { w } else { w.shift(-7) }
    }
}

/// `YYYY-Www` → (year, week).
pub fn parse_iso_week(s: &str) -> Option<(i32, u32)> {
    let (y, w) = s
        .trim()
        .split_once("-W")
        .or_else(|| s.trim().split_once("-w"))?;
    let year = y.parse().ok()?;
    let week = w.parse().ok()?;
    (1..=53).contains(&week).then_some((year, week))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveTime, TimeZone};

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn cal(week_start: Weekday, fy: u32) -> Calendar {
        Calendar {
            week_start,
            fiscal_year_start: fy,
        }
    }

    #[test]
    fn weeks_months_and_fiscal_periods() {
        let c = cal(Weekday::Mon, 1);
        // Sunday 9 March 2025 is in the week of Monday 3 March
        assert_eq!(c.week_of(d("2025-03-09")).start, d("2025-03-03"));
        assert_eq!(c.week_of(d("2025-03-10")).start, d("2025-03-10"));
        let sun = cal(Weekday::Sun, 1);
        assert_eq!(sun.week_of(d("2025-03-09")).start, d("2025-03-09"));
        assert_eq!(sun.week_of(d("2025-03-08")).start, d("2025-03-02"));
        assert_eq!(c.iso_week(2025, 10).unwrap().start, d("2025-03-03"));
        assert_eq!(sun.iso_week(2025, 10).unwrap().start, d("2025-03-02"));
        let m = c.month_of(d("2024-12-09"));
        assert_eq!((m.start, m.end), (d("2024-12-01"), d("2025-01-01")));
        let q = c.quarter_of(d("2025-03-09"));
        assert_eq!((q.start, q.end), (d("2025-01-01"), d("2025-04-01")));
        // fiscal year from April: March is the fourth quarter of FY starting April 2024
        let fy = cal(Weekday::Mon, 4);
        let q = fy.quarter_of(d("2025-03-09"));
        assert_eq!((q.start, q.end), (d("2025-01-01"), d("2025-04-01")));
        let q = fy.quarter_of(d("2025-05-09"));
        assert_eq!((q.start, q.end), (d("2025-04-01"), d("2025-07-01")));
        let y = fy.year_of(d("2025-03-09"));
        assert_eq!((y.start, y.end), (d("2024-04-01"), d("2025-04-01")));
        let y = fy.year_of(d("2025-04-01"));
        assert_eq!(y.start, d("2025-04-01"));
        assert_eq!(year_ago(d("2024-02-29")), d("2023-02-28"));
        assert_eq!(parse_iso_week("2025-W10"), Some((2025, 10)));
        assert_eq!(parse_iso_week("2025-10"), None);
        assert_eq!(parse_iso_week("2025-W54"), None);
    }

    #[test]
    fn the_default_week_is_the_last_complete_before_the_review() {
        let review = ReviewConfig {
            name: "WBR".into(),
            weekday: Weekday::Wed,
            time: NaiveTime::from_hms_opt(10, 0, 0).unwrap(),
            timezone: chrono_tz::Europe::London,
            due_hours_before: 24,
        };
        let c = cal(Weekday::Mon, 1);
        let at = |s: &str| {
            let t = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
            chrono_tz::Europe::London
                .from_local_datetime(&t)
                .unwrap()
                .with_timezone(&Utc)
        };
        // Monday before a Wednesday review: the week that ended on Sunday
        assert_eq!(
            c.default_week(&review, at("2025-03-10 08:00")).start,
            d("2025-03-03")
        );
        // after the review, the next review's week
        assert_eq!(
            c.default_week(&review, at("2025-03-12 11:00")).start,
            d("2025-03-10")
        );
        // weeks starting Thursday: the week Thu 6 – Wed 12 is not complete on Wed 12
        let thu = cal(Weekday::Thu, 1);
        assert_eq!(
            thu.default_week(&review, at("2025-03-10 08:00")).start,
            d("2025-02-27")
        );
    }
}
