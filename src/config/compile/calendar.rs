//! `[[calendar]]` and `[[event]]`: holidays and one-off events.

use super::*;

impl Compiler {
    pub(super) fn calendar(&mut self, i: usize, c: raw::RawCalendar) -> CalendarConfig {
        let name = c.name.unwrap_or_else(|| {
            self.problem(&format!("calendar[{i}].name"), "missing".into());
            String::new()
        });
        let holidays = match c.holidays {
            None => crate::model::Holiday::DEFAULT.to_vec(),
            Some(names) => names
                .iter()
                .enumerate()
                .filter_map(|(j, h)| {
                    let holiday = crate::model::Holiday::builtin(h);
                    if holiday.is_none() {
                        let known: Vec<&str> =
                            crate::model::Holiday::BUILTIN.map(|b| b.as_str()).to_vec();
                        self.problem(
                            &format!("calendar[{i}].holidays[{j}]"),
                            format!("unknown holiday {h:?} (built in: {})", known.join(", ")),
                        );
                    }
                    holiday
                })
                .collect(),
        };
        let mut dates = Vec::new();
        for (j, d) in c.dates.iter().enumerate() {
            if let Ok(day) = NaiveDate::parse_from_str(d, "%Y-%m-%d") {
                dates.push(CalendarDate::Once(day));
            } else if let Some((m, dd)) = d
                .split_once('-')
                .and_then(|(m, dd)| Some((m.parse::<u32>().ok()?, dd.parse::<u32>().ok()?)))
                .filter(|(m, dd)| NaiveDate::from_ymd_opt(2024, *m, *dd).is_some())
            {
                dates.push(CalendarDate::Yearly(m, dd));
            } else {
                self.problem(
                    &format!("calendar[{i}].dates[{j}]"),
                    format!("not a date {d:?} (\"MM-DD\" every year or \"YYYY-MM-DD\" once)"),
                );
            }
        }
        let dims = self.dims(c.dims);
        CalendarConfig {
            name,
            holidays,
            dates,
            dims,
        }
    }

    pub(super) fn event(&mut self, i: usize, e: raw::RawEvent) -> Option<EventConfig> {
        let k = |f: &str| format!("event[{i}].{f}");
        let start = self.date(&k("start"), e.start.as_deref());
        let end = match e.end.as_deref() {
            None => start,
            Some(v) => self.date(&k("end"), Some(v)),
        };
        let pattern = self.glob(&k("match"), e.pattern.as_deref());
        let action = self.choice(
            &k("action"),
            e.action.as_deref(),
            &[
                ("excuse", EventAction::Excuse),
                ("annotate", EventAction::Annotate),
            ],
            EventAction::Excuse,
        );
        let (start, end) = (start?, end?);
        if end < start {
            self.problem(&k("end"), format!("{end} is before start {start}"));
        }
        let dims = self.dims(e.dims);
        Some(EventConfig {
            name: e.name.unwrap_or_else(|| format!("event {i}")),
            start,
            end,
            pattern,
            dims,
            action,
        })
    }
}
