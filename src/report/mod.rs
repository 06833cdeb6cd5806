//! The WBR pre-read (`callout report`): per metric, the 6-12 chart, the box
//! of numbers (week, WoW, YoY; MTD, QTD, YTD; vs plan), the week's incidents
//! with the owners' explanations, and a drill-down by dimension.
//!
//! Three steps, so the web server and the mailer can reuse them:
//! [`gather`] does the I/O (sources through `pipeline::load_as_of_moment`, plan files,
//! the store's incidents and explanations) into [`Inputs`]; [`build`] is pure
//! and turns inputs into a [`Report`] (plain data, every number computed);
//! [`html`] renders a report as one self-contained page (inline CSS and SVG).
//!
//! Files: `model.rs` (the data: inputs, report, sections, metrics),
//! `gather.rs` (the reads), `build.rs` (the pure build, in named steps),
//! `write.rs` (a page to a file, for `callout report` and the demo),
//! `calendar.rs` (weeks, fiscal periods), `data.rs` (Polars
//! aggregation into daily totals), `plan.rs` (targets), `html.rs` (the
//! page), `mail.rs` (the email: PNG charts, inline styles, a text part).
//! This file: which week ([`week`]) and its ISO number.
//! Must not: send mail or serve pages (that is `alert` and `web`), change
//! the store (it only reads), or print (`main` prints what [`write`] returns).

mod build;
pub mod calendar;
pub mod data;
mod gather;
mod html;
pub mod mail;
mod model;
pub mod plan;
mod write;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};

pub use build::{build, change, plan_line, set_review};
pub use calendar::{Calendar, Span};
pub use gather::{gather, incidents, plans};
pub use html::html;
pub use mail::email;
pub use model::{
    Compare, Drill, IncidentNote, Inputs, MetricReport, Numbers, Point, Report, Section, SliceRow,
    StoredIncident,
};
pub use write::{WriteError, Written, default_output, write};

use crate::config::Config;
use crate::store::StoreError;

/// Weeks in the chart's left half.
pub const CHART_WEEKS: usize = 6;
/// Months in the chart's right half.
pub const CHART_MONTHS: usize = 12;
/// Days between a week and the same week last year (same weekdays).
pub const YEAR_WEEKS_DAYS: i64 = 364;

/// Why a report could not be made at all (a bad source or plan is not this:
/// it is listed in the report and the rest goes on).
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Aggregation failed inside Polars.
    #[error("aggregating the series: {0}")]
    Aggregate(#[from] polars::error::PolarsError),
    /// The store exists but could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Which week a report is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeekChoice {
    /// The last complete week before the next review.
    Default,
    /// ISO week (`YYYY-Www`), moved to the configured week start.
    Iso(i32, u32),
    /// The week containing a date.
    Containing(NaiveDate),
}

/// The last complete week before the next review after `now`.
pub fn default_week(cfg: &Config, now: DateTime<Utc>) -> Span {
    calendar_of(cfg).default_week(&cfg.review, now)
}

/// The week a report is for; `None` for an ISO week the year does not have.
pub fn week(cfg: &Config, choice: WeekChoice, now: DateTime<Utc>) -> Option<Span> {
    let cal = calendar_of(cfg);
    match choice {
        WeekChoice::Default => Some(default_week(cfg, now)),
        WeekChoice::Iso(y, w) => cal.iso_week(y, w),
        WeekChoice::Containing(d) => Some(cal.week_of(d)),
    }
}

fn calendar_of(cfg: &Config) -> Calendar {
    Calendar {
        week_start: cfg.report.week_start,
        fiscal_year_start: cfg.report.fiscal_year_start,
    }
}

/// The ISO week number of a reporting week (of its Thursday when weeks start
/// on Monday; of its fourth day otherwise).
pub fn week_number(week: Span) -> (i32, u32) {
    let mid = week.start + Duration::days(3);
    (mid.iso_week().year(), mid.iso_week().week())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::{MS_PER_DAY, SeriesKey};
    use chrono::TimeZone;
    use plan::Plan;

    const DAY_MS: i64 = MS_PER_DAY;

    fn day(y: i32, m: u32, d: u32) -> i64 {
        calendar::day_number(NaiveDate::from_ymd_opt(y, m, d).unwrap())
    }

    /// A config with a plan file of March 2025 targets (31 days).
    fn setup(dir: &std::path::Path) -> (Config, Plan) {
        let plan = dir.join("plan.csv");
        std::fs::write(
            &plan,
            "month,metric,region,target\n2025-03,orders,eu,310\n2025-03,orders,us,620\n2025-03,revenue,eu,3100\n2025-03,rate,eu,0.05\n",
        )
        .unwrap();
        let toml = format!(
            "[[source]]\nname = \"s\"\npath = \"x.csv\"\n[[report.metric]]\nname = \"revenue\"\nunit = \"£\"\n[[report.metric]]\nname = \"rate\"\naggregate = \"mean\"\nformat = \"percent\"\n[[report.metric]]\nname = \"aov\"\nratio = [\"revenue\", \"orders\"]\n[[plan]]\npath = \"{}\"\nperiod_column = \"month\"\ndimensions = [\"region\"]\n",
            plan.display()
        );
        let cfg = crate::config::compile_str(&toml, &dir.join("c.toml"), &|_| None).unwrap();
        let (plan, errors) = plans(&cfg);
        assert!(errors.is_empty(), "{errors:?}");
        (cfg, plan)
    }

    fn key(metric: &str, dims: &[(&str, &str)]) -> SeriesKey {
        SeriesKey {
            metric: metric.into(),
            dims: dims
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
        }
    }

    /// Daily points from `from` to `to` (inclusive) of `v`.
    fn points(from: i64, to: i64, v: f64) -> Vec<(i64, f64)> {
        (from..=to).map(|d| (d * DAY_MS, v)).collect()
    }

    /// Sources larger than `detection.memory_budget` are aggregated chunk by
    /// chunk (only one chunk's rows in memory): the page is the same as with
    /// every source whole.
    /// The shipped `config/callout.toml` on the demo exports, with its store
    /// in `dir` (absent: a report never creates one).
    pub(crate) fn shipped_config(dir: &std::path::Path) -> Config {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(root.join("config/callout.toml"))
            .unwrap()
            .replace("\"../", &format!("\"{}/", root.display()));
        let mut cfg = crate::config::compile_str(&text, &dir.join("c.toml"), &|_| None).unwrap();
        cfg.store_path = dir.join("absent.db");
        cfg
    }

    #[test]
    fn a_memory_budget_gives_the_same_page() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = shipped_config(dir.path());
        let now = Utc.with_ymd_and_hms(2025, 3, 10, 8, 0, 0).unwrap();
        let week = week(&cfg, WeekChoice::Default, now).unwrap();
        let page = |cfg: &Config| {
            let inputs = gather(cfg, week, now).unwrap();
            assert!(inputs.problems.is_empty(), "{:?}", inputs.problems);
            html(&build(cfg, &inputs, week, now))
        };
        let whole = page(&cfg);
        // 500 rows a chunk: every demo source is cut into several
        cfg.detection.memory_budget = Some(500 * 40);
        let loaded =
            crate::pipeline::load_all(&cfg, now, crate::pipeline::Window::Dates(None, None));
        assert!(loaded.batches.is_empty(), "every source chunked");
        assert_eq!(loaded.chunked.len(), cfg.sources.len());
        assert!(loaded.chunked.iter().all(|c| c.chunks.len() >= 3));
        let chunked = page(&cfg);
        assert!(whole.contains("<svg"), "a page with charts");
        assert_eq!(whole, chunked);
    }

    #[test]
    fn plan_line_is_month_to_date_against_the_plan_pro_rata() {
        let dir = tempfile::tempdir().unwrap();
        let (cfg, plan) = setup(dir.path());
        let (feb20, mar1, mar10) = (day(2025, 2, 20), day(2025, 3, 1), day(2025, 3, 10));
        // eu orders: 12 a day for 10 days = 120 against 10 a day = 100 → +20.0%
        let pts = points(feb20, mar10, 12.0);
        let l = plan_line(
            &cfg,
            &plan,
            &key("orders", &[("region", "eu")]),
            &pts,
            mar10,
        )
        .unwrap();
        assert_eq!(l.line(), "Month to date: 120 vs plan 100 (+20.0%)");
        // the metric's total (both regions, 30 a day = 300) for a series without dimensions
        let pts = points(feb20, mar10, 27.0);
        let l = plan_line(&cfg, &plan, &key("orders", &[]), &pts, mar10).unwrap();
        assert_eq!(l.line(), "Month to date: 270 vs plan 300 (-10.0%)");
        // the rule's unit; a rate averages and its change is in basis points
        let pts = points(feb20, mar10, 95.0);
        let l = plan_line(
            &cfg,
            &plan,
            &key("revenue", &[("region", "eu")]),
            &pts,
            mar10,
        );
        assert_eq!(
            l.unwrap().line(),
            "Month to date: £950 vs plan £1,000 (-5.0%)"
        );
        let pts = points(feb20, mar10, 0.052);
        let l = plan_line(&cfg, &plan, &key("rate", &[("region", "eu")]), &pts, mar10);
        assert_eq!(
            l.unwrap().line(),
            "Month to date: 5.20% vs plan 5.00% (+20 bps)"
        );
        // no line: no target for the slice or metric, two dimensions, a ratio,
        // history that starts after the first of the month or ends before the day
        let pts = points(feb20, mar10, 12.0);
        for k in [
            key("orders", &[("region", "apac")]),
            key("signups", &[]),
            key("orders", &[("region", "eu"), ("channel", "web")]),
            key("aov", &[]),
        ] {
            assert!(plan_line(&cfg, &plan, &k, &pts, mar10).is_none(), "{k:?}");
        }
        let eu = key("orders", &[("region", "eu")]);
        let late = points(mar1 + 1, mar10, 12.0);
        assert!(plan_line(&cfg, &plan, &eu, &late, mar10).is_none());
        let short = points(feb20, mar10 - 1, 12.0);
        assert!(plan_line(&cfg, &plan, &eu, &short, mar10).is_none());
        // April has no plan
        let april = points(day(2025, 3, 20), day(2025, 4, 3), 12.0);
        assert!(plan_line(&cfg, &plan, &eu, &april, day(2025, 4, 3)).is_none());
    }
}
