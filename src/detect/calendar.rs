//! Holiday calendars: which dates are holidays, and the same holiday last year.
//!
//! Pure date arithmetic. A holiday is identified by its [`Holiday`] and an
//! anchor so that "Black Friday 2024" can be paired with "Black Friday 2023"
//! even though the dates differ; fixed-date holidays pair by month and day.
//! The [`Holiday`] enum (shared with `config`, which parses the names) lives
//! in `model`.

use chrono::{Datelike, Duration, NaiveDate, Weekday};

use crate::config::{CalendarConfig, CalendarDate};
use crate::model::Holiday;

/// A holiday on a date: which one, and the same holiday's date a year earlier.
pub type HolidayOn = (Holiday, Option<NaiveDate>);

/// Years whose holidays are tabulated when a calendar is built; other years
/// are computed on demand.
const TABLE_YEARS: std::ops::RangeInclusive<i32> = 1990..=2100;

/// A compiled calendar: built-in names and user dates, tabulated by date
/// (the kernel asks for every point, so the date arithmetic is done once, and
/// a lookup is an index: days since the first tabulated day).
#[derive(Debug, Clone, Default)]
pub struct Calendar {
    holidays: Vec<Holiday>,
    dates: Vec<CalendarDate>,
    /// Per day of [`TABLE_YEARS`], from its first day; empty without holidays.
    table: Vec<Option<HolidayOn>>,
    /// Day number (from the common era) of `table[0]`.
    table_start: i32,
}

impl Calendar {
    /// The built-in default calendar.
    pub fn default_calendar() -> Calendar {
        Calendar::tabulated(Holiday::DEFAULT.to_vec(), Vec::new())
    }

    fn tabulated(holidays: Vec<Holiday>, dates: Vec<CalendarDate>) -> Calendar {
        let mut c = Calendar {
            holidays,
            dates,
            table: Vec::new(),
            table_start: 0,
        };
        if c.holidays.is_empty() && c.dates.is_empty() {
            return c;
        }
        let (Some(mut d), Some(end)) = (
            NaiveDate::from_ymd_opt(*TABLE_YEARS.start(), 1, 1),
            NaiveDate::from_ymd_opt(*TABLE_YEARS.end(), 12, 31),
        ) else {
            return c;
        };
        c.table_start = d.num_days_from_ce();
        while d <= end {
            let h = c.compute(d);
            c.table.push(h);
            d += Duration::days(1);
        }
        c
    }

    /// A calendar without holidays.
    pub fn none() -> Calendar {
        Calendar::default()
    }

    /// Compile a configured calendar.
    pub fn from_config(c: &CalendarConfig) -> Calendar {
        Calendar::tabulated(
            Holiday::BUILTIN
                .into_iter()
                .filter(|b| c.holidays.contains(b))
                .collect(),
            c.dates.clone(),
        )
    }

    /// The holiday on `day`, if any, as the date of the same holiday one year
    /// earlier (`None` inside the tuple for one-off dates, which do not recur).
    pub fn holiday(&self, day: NaiveDate) -> Option<HolidayOn> {
        if TABLE_YEARS.contains(&day.year()) {
            usize::try_from(day.num_days_from_ce() - self.table_start)
                .ok()
                .and_then(|k| self.table.get(k).copied().flatten())
        } else {
            self.compute(day)
        }
    }

    /// [`Calendar::holiday`] of the UTC day of `ms` (ms since 1970): inside
    /// the tabulated years an index from the day number, with no date built
    /// (the kernel asks at every point).
    pub fn holiday_at(&self, ms: i64) -> Option<HolidayOn> {
        use crate::model::{MS_PER_DAY, UNIX_EPOCH_DAY_CE};
        if self.holidays.is_empty() && self.dates.is_empty() {
            return None;
        }
        let k = ms.div_euclid(MS_PER_DAY) + UNIX_EPOCH_DAY_CE - i64::from(self.table_start);
        match usize::try_from(k).ok().and_then(|k| self.table.get(k)) {
            Some(&h) => h,
            None => chrono::DateTime::from_timestamp_millis(ms)
                .and_then(|d| self.holiday(d.date_naive())),
        }
    }

    fn compute(&self, day: NaiveDate) -> Option<HolidayOn> {
        for &h in &self.holidays {
            if let Some(prev) = matches(h, day) {
                return Some((h, prev));
            }
        }
        for d in &self.dates {
            match *d {
                CalendarDate::Yearly(m, dd) if day.month() == m && day.day() == dd => {
                    return Some((
                        Holiday::CalendarDate,
                        NaiveDate::from_ymd_opt(day.year() - 1, m, dd),
                    ));
                }
                CalendarDate::Once(x) if x == day => return Some((Holiday::CalendarDate, None)),
                _ => {}
            }
        }
        None
    }
}

/// US Thanksgiving: fourth Thursday of November.
pub fn thanksgiving(year: i32) -> Option<NaiveDate> {
    NaiveDate::from_weekday_of_month_opt(year, 11, Weekday::Thu, 4)
}

/// Western Easter Sunday (anonymous Gregorian algorithm).
pub fn easter(year: i32) -> Option<NaiveDate> {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, month as u32, day as u32)
}

fn last_weekday(year: i32, month: u32, wd: Weekday) -> Option<NaiveDate> {
    (1..=5)
        .rev()
        .find_map(|n| NaiveDate::from_weekday_of_month_opt(year, month, wd, n))
}

/// Anchor date of a moving holiday in `year`, plus the day offset it spans;
/// `None` for a holiday of a fixed date.
fn anchor(h: Holiday, year: i32) -> Option<(NaiveDate, std::ops::RangeInclusive<i64>)> {
    Some(match h {
        Holiday::GoodFriday => (easter(year)?, -2..=-2),
        Holiday::Easter => (easter(year)?, 0..=0),
        Holiday::EasterMonday => (easter(year)?, 1..=1),
        Holiday::MemorialDay => (last_weekday(year, 5, Weekday::Mon)?, 0..=0),
        Holiday::LaborDay => (
            NaiveDate::from_weekday_of_month_opt(year, 9, Weekday::Mon, 1)?,
            0..=0,
        ),
        Holiday::Thanksgiving => (thanksgiving(year)?, 0..=0),
        Holiday::BlackFriday => (thanksgiving(year)?, 1..=1),
        Holiday::ThanksgivingWeekend => (thanksgiving(year)?, 2..=3),
        Holiday::CyberMonday => (thanksgiving(year)?, 4..=4),
        Holiday::NewYear
        | Holiday::IndependenceDay
        | Holiday::HolidaySeason
        | Holiday::ChristmasEve
        | Holiday::Christmas
        | Holiday::YearEnd
        | Holiday::CalendarDate => return None,
    })
}

/// If holiday `h` falls on `day`, the same holiday's date one year earlier.
fn matches(h: Holiday, day: NaiveDate) -> Option<Option<NaiveDate>> {
    let y = day.year();
    let fixed = |m: u32, d: u32| -> Option<Option<NaiveDate>> {
        (day.month() == m && day.day() == d).then(|| NaiveDate::from_ymd_opt(y - 1, m, d))
    };
    match h {
        Holiday::NewYear => fixed(1, 1),
        Holiday::IndependenceDay => fixed(7, 4),
        Holiday::ChristmasEve => fixed(12, 24),
        Holiday::Christmas => fixed(12, 25),
        Holiday::YearEnd => (day.month() == 12 && day.day() >= 26)
            .then(|| NaiveDate::from_ymd_opt(y - 1, 12, day.day())),
        Holiday::HolidaySeason => {
            // December before Christmas, after Cyber Monday: shoppers' season.
            let after = thanksgiving(y)? + Duration::days(4);
            (day.month() == 12 && day.day() <= 23 && day > after)
                .then(|| NaiveDate::from_ymd_opt(y - 1, 12, day.day()))
        }
        // a calendar's own dates are matched by `Calendar::compute`
        Holiday::CalendarDate => None,
        Holiday::GoodFriday
        | Holiday::Easter
        | Holiday::EasterMonday
        | Holiday::MemorialDay
        | Holiday::LaborDay
        | Holiday::Thanksgiving
        | Holiday::BlackFriday
        | Holiday::ThanksgivingWeekend
        | Holiday::CyberMonday => {
            let (a, span) = anchor(h, y)?;
            let off = (day - a).num_days();
            if span.contains(&off) {
                let (prev, _) = anchor(h, y - 1)?;
                Some(Some(prev + Duration::days(off)))
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn a_day_number_finds_what_the_date_finds() {
        // every day from before the tabulated years to after them, at
        // midnight, mid-day and the last ms of the day (and before 1970)
        let start = d("1988-01-01");
        let days = (d("2103-01-01") - start).num_days();
        for c in [Calendar::default_calendar(), Calendar::none()] {
            let mut found = 0;
            for k in 0..days {
                let day = start + Duration::days(k);
                let ms0 = crate::model::date_ms(day);
                let want = c.holiday(day);
                for ms in [ms0, ms0 + 43_200_000, ms0 + 86_399_999] {
                    assert_eq!(c.holiday_at(ms), want, "{day} at {ms}");
                }
                found += usize::from(want.is_some());
            }
            assert!(
                found == 0 || found > 30 * 115,
                "{found} holidays in 115 years"
            );
        }
    }

    #[test]
    fn moving_holidays_pair_with_last_year() {
        let c = Calendar::default_calendar();
        assert_eq!(
            c.holiday(d("2024-11-29")),
            Some((Holiday::BlackFriday, Some(d("2023-11-24"))))
        );
        assert_eq!(
            c.holiday(d("2024-12-02")),
            Some((Holiday::CyberMonday, Some(d("2023-11-27"))))
        );
        assert_eq!(
            c.holiday(d("2024-03-31")),
            Some((Holiday::Easter, Some(d("2023-04-09"))))
        );
        assert_eq!(
            c.holiday(d("2024-12-25")),
            Some((Holiday::Christmas, Some(d("2023-12-25"))))
        );
        assert_eq!(
            c.holiday(d("2024-12-10")),
            Some((Holiday::HolidaySeason, Some(d("2023-12-10"))))
        );
        assert_eq!(c.holiday(d("2024-10-10")), None);
        assert_eq!(
            c.holiday(d("2024-07-04")),
            None,
            "not in the default calendar"
        );
    }

    #[test]
    fn holiday_names_parse_back_and_print_as_before() {
        for h in Holiday::BUILTIN {
            assert_eq!(Holiday::builtin(h.as_str()), Some(h));
            assert_eq!(Holiday::from_name(h.as_str()), Some(h));
            assert_eq!(h.to_string(), h.as_str());
            // the Debug form of the names as text: calendars' and config's
            // Debug forms are in every checkpoint's fingerprint
            assert_eq!(format!("{h:?}"), format!("{:?}", h.as_str()));
        }
        assert_eq!(Holiday::builtin("calendar date"), None, "not a config name");
        assert_eq!(
            Holiday::from_name("calendar date"),
            Some(Holiday::CalendarDate)
        );
        assert_eq!(Holiday::builtin("boxing_day"), None);
        assert_eq!(Holiday::BlackFriday.words(), "black friday");
        assert!(
            Holiday::DEFAULT
                .iter()
                .all(|h| Holiday::BUILTIN.contains(h))
        );
    }

    #[test]
    fn easter_dates() {
        for (y, e) in [
            (2023, "2023-04-09"),
            (2024, "2024-03-31"),
            (2025, "2025-04-20"),
            (2026, "2026-04-05"),
        ] {
            assert_eq!(easter(y), Some(d(e)));
        }
    }
}
