//! The pre-read as data: what [`super::gather`] reads ([`Inputs`]) and what
//! [`super::build`] makes of it ([`Report`]: sections of metrics, each with its
//! numbers, chart points, incident notes and drill-downs). Plain types, no
//! logic beyond wording a note's dates; rendered by `html` and `mail`.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use super::Span;
use super::data::Cube;
use super::plan::Plan;
use crate::config::report::ReportMetric;
use crate::model::Finding;
use crate::store::IncidentRow;
use crate::store::explanations::ExplanationRow;

/// One incident of the store with what the report shows of it.
#[derive(Debug, Clone)]
pub struct StoredIncident {
    /// The incident.
    pub row: IncidentRow,
    /// Its findings (the worst inside the week is shown).
    pub findings: Vec<Finding>,
    /// The owner's current explanation.
    pub explanation: Option<ExplanationRow>,
}

/// Everything a report is built from.
#[derive(Debug, Default, Clone)]
pub struct Inputs {
    /// Daily totals per metric and slice.
    pub cube: Cube,
    /// Plan targets.
    pub plan: Plan,
    /// Incidents touching the chart's six weeks.
    pub incidents: Vec<StoredIncident>,
    /// Sources, plans or the store that could not be used (shown in the report).
    pub problems: Vec<String>,
}

/// This period and the one it is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Compare {
    /// This period.
    pub value: Option<f64>,
    /// The comparison period (last week, last year).
    pub prior: Option<f64>,
}

/// The box of numbers of one metric.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Numbers {
    /// The week vs the week before.
    pub week_wow: Compare,
    /// The week vs the same week last year (364 days earlier).
    pub week_yoy: Compare,
    /// Month to date (to the week's end) vs the same dates last year.
    pub mtd: Compare,
    /// Fiscal quarter to date vs last year.
    pub qtd: Compare,
    /// Fiscal year to date vs last year.
    pub ytd: Compare,
    /// Plan of the week, month, quarter and year to date (where the plan covers them).
    pub plan_week: Option<f64>,
    /// Plan month to date.
    pub plan_mtd: Option<f64>,
    /// Plan quarter to date.
    pub plan_qtd: Option<f64>,
    /// Plan year to date.
    pub plan_ytd: Option<f64>,
}

/// One point of the chart (a week or a month).
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Axis label.
    pub label: String,
    /// This year.
    pub value: Option<f64>,
    /// The same period last year.
    pub last_year: Option<f64>,
    /// Plan.
    pub plan: Option<f64>,
    /// An incident of the metric touches this period.
    pub incident: bool,
}

/// What the report says about one incident.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentNote {
    /// The incident id (for links to its page).
    pub id: i64,
    /// The series, e.g. `orders{region=eu}`.
    pub series: String,
    /// What was found (`seasonal`, `level_shift`, …).
    pub check: String,
    /// The day of the incident's worst finding (what the digest shows).
    pub day: NaiveDate,
    /// The first day flagged.
    pub first: NaiveDate,
    /// The last day flagged.
    pub last: NaiveDate,
    /// Actual value then.
    pub actual: f64,
    /// Expected value then.
    pub expected: f64,
    /// Who answers for it.
    pub owner: String,
    /// The owner's explanation: cause label and text; `None`: not explained.
    pub explanation: Option<(String, String)>,
    /// The slices that drove a roll-up's move (its worst finding's).
    pub drivers: Vec<crate::model::Driver>,
}

impl IncidentNote {
    /// When, for people: `Thu 6 Mar`, or `Tue 4 Mar to Thu 6 Mar (worst Thu
    /// 6 Mar)` — the worst finding's figures follow, as in the digest.
    pub fn when(&self) -> String {
        let d = |x: NaiveDate| x.format("%a %-d %b").to_string();
        if self.first == self.last {
            d(self.day)
        } else {
            format!(
                "{} to {} (worst {})",
                d(self.first),
                d(self.last),
                d(self.day)
            )
        }
    }
}

/// One slice of the drill-down.
#[derive(Debug, Clone, PartialEq)]
pub struct SliceRow {
    /// The dimension value.
    pub value: String,
    /// The week vs the week before.
    pub wow: Compare,
    /// The week vs last year.
    pub yoy: Compare,
    /// The slice's plan for the week.
    pub plan: Option<f64>,
    /// An incident of this slice touches the week.
    pub incident: bool,
}

/// The drill-down of one dimension.
#[derive(Debug, Clone, PartialEq)]
pub struct Drill {
    /// The dimension (`region`).
    pub dimension: String,
    /// One line: "orders down week over week in 2 of 3 regions".
    pub summary: String,
    /// Slices with incidents first, then by size.
    pub rows: Vec<SliceRow>,
}

/// Everything about one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricReport {
    /// How it aggregates and is written.
    pub rule: ReportMetric,
    /// Who answers for it.
    pub owner: String,
    /// The box.
    pub numbers: Numbers,
    /// The 6 weeks.
    pub weeks: Vec<Point>,
    /// The 12 months.
    pub months: Vec<Point>,
    /// The week's incidents.
    pub incidents: Vec<IncidentNote>,
    /// Drill-downs, one per dimension.
    pub drills: Vec<Drill>,
}

/// A heading and its metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    /// Heading; `None` for the list of every metric when no sections are configured.
    pub name: Option<String>,
    /// Metrics in order.
    pub metrics: Vec<MetricReport>,
}

/// The pre-read: plain data, every number computed; [`html`] renders it.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Heading.
    pub title: String,
    /// The week reported.
    pub week: Span,
    /// The review it is for.
    pub review_at: DateTime<Tz>,
    /// When explanations are due.
    pub due: DateTime<Tz>,
    /// When the data was read.
    pub generated_at: DateTime<Utc>,
    /// Sections in order.
    pub sections: Vec<Section>,
    /// What could not be used (sources, plans, the store).
    pub problems: Vec<String>,
}
