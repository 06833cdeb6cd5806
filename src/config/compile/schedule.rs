//! `[schedule]` and `[review]`: when runs happen (a cron expression that
//! must fire) and when the review and its deadline are.

use super::*;

impl Compiler {
    pub(super) fn schedule(&mut self, raw: Option<raw::RawSchedule>) -> ScheduleConfig {
        let raw = raw.unwrap_or_default();
        // `cron = "…"` is keyed `schedule.cron`, a list's items `schedule.cron[i]`
        let (exprs, listed) = match raw.cron {
            None => (vec![raw::DEFAULT_CRON.to_string()], false),
            Some(raw::OneOrMany::One(e)) => (vec![e], false),
            Some(raw::OneOrMany::Many(v)) => (v, true),
        };
        let mut crons = Vec::new();
        for (i, e) in exprs.iter().enumerate() {
            let key = if listed {
                format!("schedule.cron[{i}]")
            } else {
                "schedule.cron".to_string()
            };
            match cron_schedule(e) {
                Ok(s) => crons.push(s),
                Err(message) => self.problem(&key, message),
            }
        }
        let timezone = self.tz("schedule.timezone", raw.timezone.as_deref());
        ScheduleConfig {
            crons,
            timezone,
            run_timeout: self.secs(
                "schedule.run_timeout_secs",
                raw.run_timeout_secs,
                RUN_TIMEOUT_SECS,
                raw::DEFAULT_RUN_TIMEOUT_SECS,
            ),
        }
    }

    pub(super) fn review(&mut self, raw: Option<raw::RawReview>) -> ReviewConfig {
        let raw = raw.unwrap_or_default();
        let weekday = match raw.weekday.as_deref() {
            None => raw::DEFAULT_REVIEW_WEEKDAY,
            Some(w) => Weekday::from_str(w).unwrap_or_else(|_| {
                self.problem(
                    "review.weekday",
                    format!("not a weekday {w:?} (e.g. \"wed\" or \"Wednesday\")"),
                );
                raw::DEFAULT_REVIEW_WEEKDAY
            }),
        };
        let (h, m) = raw::DEFAULT_REVIEW_TIME;
        let default_time = NaiveTime::from_hms_opt(h, m, 0).unwrap_or_default();
        let time = match raw.time.as_deref() {
            None => default_time,
            Some(t) => NaiveTime::parse_from_str(t, "%H:%M").unwrap_or_else(|_| {
                self.problem(
                    "review.time",
                    format!("not a time {t:?} (HH:MM, e.g. \"10:00\")"),
                );
                default_time
            }),
        };
        let timezone = self.tz("review.timezone", raw.timezone.as_deref());
        let due = self
            .int(
                "review.explanations_due_hours",
                raw.explanations_due_hours,
                EXPLANATIONS_DUE_HOURS,
            )
            .unwrap_or(raw::DEFAULT_EXPLANATIONS_DUE_HOURS);
        ReviewConfig {
            name: raw.name.unwrap_or_else(|| raw::DEFAULT_REVIEW_NAME.into()),
            weekday,
            time,
            timezone,
            due_hours_before: due,
        }
    }
}

/// Fields of a cron expression as callout reads it: seconds first.
pub(super) const CRON_FIELDS: usize = 6;

/// A schedule that does not fire within this many years of [`NEVER_FIRES_FROM`]
/// is reported: it never fires (the 30th of February), or so rarely that it
/// cannot be what a weekly review wants.
pub(super) const NEVER_FIRES_YEARS: i32 = 8;

/// Where that look starts: a fixed date, so a config compiles the same any
/// day (the compiler reads no clock).
pub(super) const NEVER_FIRES_FROM: (i32, u32, u32) = (2025, 1, 1);

/// A cron expression, or a one-line message saying what is wrong with it
/// and what would be right (the cron crate's own error repeats the
/// expression and puts a caret under it on a line of its own).
pub(super) fn cron_schedule(e: &str) -> Result<cron::Schedule, String> {
    let fields: Vec<&str> = e.split_whitespace().collect();
    let example = "e.g. `0 0 7 * * Mon-Fri`";
    if fields.is_empty() {
        return Err(format!(
            "is empty; callout's cron has {CRON_FIELDS} fields, seconds first ({example})"
        ));
    }
    let schedule = match cron::Schedule::from_str(e) {
        Ok(s) => s,
        // the usual crontab form, minutes first: add the seconds
        Err(_) if fields.len() == CRON_FIELDS - 1 => {
            return Err(format!(
                "`{e}` has {} fields; callout's cron has {CRON_FIELDS}, seconds first: try `0 {}`",
                fields.len(),
                fields.join(" ")
            ));
        }
        // seconds first, an optional year last
        Err(_) if !(CRON_FIELDS..=CRON_FIELDS + 1).contains(&fields.len()) => {
            return Err(format!(
                "`{e}` has {} field(s); callout's cron has {CRON_FIELDS}, seconds first, and an optional 7th, the year ({example})",
                fields.len()
            ));
        }
        Err(err) => {
            // the parser's words come after the expression and the caret line
            let text = err.to_string();
            let why = text
                .lines()
                .skip_while(|l| !l.trim_start().starts_with('^'))
                .skip(1)
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            let why = if why.is_empty() {
                String::new()
            } else {
                format!(": {why}")
            };
            return Err(format!(
                "`{e}` is not a valid cron expression{why} ({CRON_FIELDS} fields, seconds first, {example})"
            ));
        }
    };
    let (y, m, d) = NEVER_FIRES_FROM;
    let from = NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default();
    let until = NaiveDate::from_ymd_opt(y + NEVER_FIRES_YEARS, m, d).unwrap_or_default();
    let from = from.and_time(NaiveTime::MIN).and_utc();
    match schedule.after(&from).next() {
        Some(t) if t.date_naive() < until => Ok(schedule),
        _ => Err(format!(
            "`{e}` never fires: no time in the {NEVER_FIRES_YEARS} years from {from} matches it",
            from = from.date_naive()
        )),
    }
}
