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
//! Files: `calendar.rs` (weeks, fiscal periods), `data.rs` (Polars
//! aggregation into daily totals), `plan.rs` (targets), `html.rs` (the
//! page), `mail.rs` (the email: PNG charts, inline styles, a text part).
//! Must not: send mail or serve pages (that is `alert` and `web`), or change
//! the store (it only reads).

pub mod calendar;
pub mod data;
mod html;
pub mod mail;
pub mod plan;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use chrono_tz::Tz;

pub use calendar::{Calendar, Span};
pub use html::html;
pub use mail::email;

use crate::config::Config;
use crate::config::report::{Aggregate, NumberFormat, ReportMetric};
use crate::model::{Finding, Lane, MS_PER_DAY, SeriesKey};
use crate::store::explanations::ExplanationRow;
use crate::store::{IncidentRow, Store, StoreError};
use data::{Cube, Daily};
use plan::Plan;

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

/// The week a report is for.
pub fn week(cfg: &Config, choice: WeekChoice, now: DateTime<Utc>) -> Option<Span> {
    let cal = calendar_of(cfg);
    match choice {
        WeekChoice::Default => Some(cal.default_week(&cfg.review, now)),
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

/// Read what a report of `week` needs: every source (rows after `now` left
/// out, silently when `now` is a past moment: `pipeline::load_as_of_moment`), the plans, and the incidents of the chart's weeks with their
/// findings and explanations (only when the store file exists: a report
/// never creates one).
pub fn gather(cfg: &Config, week: Span, now: DateTime<Utc>) -> Result<Inputs, ReportError> {
    let t = std::time::Instant::now();
    // all history: the charts and last year's to-date figures reach back two years
    let loaded =
        crate::pipeline::load_as_of_moment(cfg, now, crate::pipeline::Window::Dates(None, None));
    tracing::info!(secs = t.elapsed().as_secs_f64(), "report: sources loaded");
    let mut problems: Vec<String> = loaded.errors.iter().map(ToString::to_string).collect();
    let t = std::time::Instant::now();
    // the drill-down's weeks: this one, the one before, the same one last year
    let slice_days = [week, week.shift(-7), week.shift(-YEAR_WEEKS_DAYS)].map(|w| w.days());
    let cube = aggregate(cfg, &loaded, &slice_days, &mut problems)?;
    tracing::info!(secs = t.elapsed().as_secs_f64(), "report: aggregated");
    let (plan, plan_errors) = plans(cfg);
    problems.extend(plan_errors.iter().map(ToString::to_string));
    let incidents = incidents(cfg, week)?;
    Ok(Inputs {
        cube,
        plan,
        incidents,
        problems,
    })
}

/// The cube of every source, in the config's order: a whole batch at once, a
/// source larger than `detection.memory_budget` one chunk at a time (only one
/// chunk's rows in memory). A chunk that cannot be read back is a problem of
/// the report, the others still count.
fn aggregate(
    cfg: &Config,
    loaded: &crate::pipeline::Loaded,
    slice_days: &[(i64, i64)],
    problems: &mut Vec<String>,
) -> Result<Cube, ReportError> {
    let mut cube = Cube::default();
    for s in &cfg.sources {
        if let Some(b) = loaded.batches.iter().find(|b| b.source == s.name) {
            cube.add(b, slice_days)?;
        } else if let Some(c) = loaded.chunked.iter().find(|c| c.source == s.name) {
            let first = cube.order.len();
            for chunk in &c.chunks {
                match chunk.read() {
                    Ok(b) => cube.add(&b, slice_days)?,
                    Err(e) => problems.push(e.to_string()),
                }
            }
            // a whole batch meets its metrics in key order; chunks come in
            // hash order, so the metrics this source added are put in key order
            cube.order[first..].sort();
        }
    }
    Ok(cube)
}

/// Every configured `[[plan]]`, read; a plan that cannot be read is among the
/// errors and left out.
pub fn plans(cfg: &Config) -> (Plan, Vec<plan::PlanError>) {
    plan::load(&cfg.report.plans, &calendar_of(cfg))
}

/// The store's incidents touching the chart's six weeks up to `week`, with
/// their findings and current explanations (none when the store file does
/// not exist: a report never creates one). Cheap next to [`gather`]'s
/// sources, so the web page reads it on every request (answers given a
/// minute ago show).
pub fn incidents(cfg: &Config, week: Span) -> Result<Vec<StoredIncident>, ReportError> {
    let mut incidents = Vec::new();
    if cfg.store_path.exists() {
        let store = Store::open(&cfg.store_path)?;
        // the chart's six weeks: from the first one's start to the report week's end
        let (a, _) = week.shift(-7 * (CHART_WEEKS as i64 - 1)).days();
        let (a, b) = (a * MS_PER_DAY, week.days().1 * MS_PER_DAY);
        for row in store.incidents()? {
            if row.lane == Lane::Export || row.opened_at_ts >= b || row.last_finding_ts < a {
                continue;
            }
            let findings = store.findings_of_incident(row.id)?;
            let explanation = store.latest_explanation(row.id)?;
            incidents.push(StoredIncident {
                row,
                findings,
                explanation,
            });
        }
    }
    Ok(incidents)
}

/// Name the review the report was made for (and its deadline), instead of
/// the next one after "now": a link or mail opened later still speaks of
/// its own review.
pub fn set_review(r: &mut Report, cfg: &Config, review_at: DateTime<Utc>) {
    let at = review_at.with_timezone(&cfg.review.timezone);
    r.review_at = at;
    r.due = at - Duration::hours(cfg.review.due_hours_before);
}

/// How one daily series stands against plan over the month to date of `day`
/// (days since 1970, the item's newest finding): its value from the first of
/// the month through `day` (from `points`, its recent history, which must
/// reach back to the month's start) against the plan's target for the same
/// days, summed or averaged by the metric's `[[report.metric]]` rule. The
/// plan is the metric's total for a series without dimensions and the slice's
/// for a series with one (`region = eu`); a ratio metric, a series with more
/// dimensions, or days the plan does not cover have no line.
pub fn plan_line(
    cfg: &Config,
    plan: &Plan,
    key: &SeriesKey,
    points: &[(i64, f64)],
    day: i64,
) -> Option<crate::render::PlanLine> {
    let rule = cfg.report.metric(&key.metric);
    if matches!(rule.aggregate, Aggregate::Ratio { .. }) || !plan.has(&key.metric) {
        return None;
    }
    let date = NaiveDate::default() + Duration::days(day);
    let (a, _) = calendar_of(cfg).month_of(date).days();
    let b = day + 1;
    let target = match key.dims.as_slice() {
        [] => plan.window(&key.metric, a, b, &rule.aggregate),
        [(d, v)] => plan.slice(&key.metric, d, v, a, b, &rule.aggregate),
        _ => None,
    }?;
    let daily = Daily::from_points(points);
    if daily.sum.is_empty() || daily.first_day > a || daily.last_day()? < day {
        return None;
    }
    let actual = daily.window(a, b, &rule.aggregate)?;
    let c = Compare {
        value: Some(actual),
        prior: Some(target),
    };
    Some(crate::render::PlanLine {
        period: "Month to date".into(),
        actual: html::value(actual, &rule),
        plan: html::value(target, &rule),
        change: html::change_text(c, &rule).map_or_else(|| "n/a".into(), |(t, _)| t),
    })
}

/// Numbers of one metric or slice, from daily totals by a rule.
struct Values<'a> {
    cube: &'a Cube,
    rules: &'a dyn Fn(&str) -> ReportMetric,
}

impl Values<'_> {
    fn daily(&self, metric: &str, slice: Option<(&str, &str)>) -> Option<&Daily> {
        match slice {
            None => self.cube.totals.get(metric),
            Some((d, v)) => self.cube.slices.get(metric)?.get(d)?.get(v),
        }
    }

    /// The value of days `a..b`; a ratio divides its parts' values.
    fn get(&self, metric: &str, slice: Option<(&str, &str)>, (a, b): (i64, i64)) -> Option<f64> {
        match (self.rules)(metric).aggregate {
            Aggregate::Ratio { num, den } => {
                let n = self.plain(&num, slice, a, b)?;
                let d = self.plain(&den, slice, a, b)?;
                (d != 0.0).then(|| n / d)
            }
            how => self.daily(metric, slice)?.window(a, b, &how),
        }
    }

    fn plain(&self, metric: &str, slice: Option<(&str, &str)>, a: i64, b: i64) -> Option<f64> {
        let how = match (self.rules)(metric).aggregate {
            Aggregate::Ratio { .. } => Aggregate::Sum,
            how => how,
        };
        self.daily(metric, slice)?.window(a, b, &how)
    }

    fn plan(
        &self,
        plan: &Plan,
        metric: &str,
        slice: Option<(&str, &str)>,
        (a, b): (i64, i64),
    ) -> Option<f64> {
        let one = |m: &str| {
            let how = match (self.rules)(m).aggregate {
                Aggregate::Ratio { .. } => Aggregate::Sum,
                how => how,
            };
            match slice {
                None => plan.window(m, a, b, &how),
                Some((d, v)) => plan.slice(m, d, v, a, b, &how),
            }
        };
        match (self.rules)(metric).aggregate {
            Aggregate::Ratio { num, den } => {
                let (n, d) = (one(&num)?, one(&den)?);
                (d != 0.0).then(|| n / d)
            }
            _ => one(metric),
        }
    }
}

/// The metrics shown, by section: configured sections in order (then any
/// metric no section lists, under "Other metrics"); without sections every
/// metric, `[[report.metric]]` order first, then the exports' order.
fn layout(cfg: &Config, cube: &Cube) -> Vec<(Option<String>, Vec<String>)> {
    let mut all: Vec<String> = cfg
        .report
        .metrics
        .iter()
        .filter(|m| {
            cube.totals.contains_key(&m.name) || matches!(m.aggregate, Aggregate::Ratio { .. })
        })
        .map(|m| m.name.clone())
        .collect();
    for m in &cube.order {
        if !all.contains(m) {
            all.push(m.clone());
        }
    }
    if cfg.report.sections.is_empty() {
        return vec![(None, all)];
    }
    let mut out: Vec<(Option<String>, Vec<String>)> = cfg
        .report
        .sections
        .iter()
        .map(|s| (Some(s.name.clone()), s.metrics.clone()))
        .collect();
    let rest: Vec<String> = all
        .into_iter()
        .filter(|m| !cfg.report.sections.iter().any(|s| s.metrics.contains(m)))
        .collect();
    if !rest.is_empty() {
        out.push((Some("Other metrics".into()), rest));
    }
    out
}

fn month_label(d: NaiveDate) -> String {
    d.format("%b %y").to_string()
}

fn mailbox_text(m: &lettre::message::Mailbox) -> String {
    m.name.clone().unwrap_or_else(|| m.email.to_string())
}

/// Build the report of `week` from `inputs`. Pure: no I/O, no clock (`now`
/// says when the data was read and which review it is for).
pub fn build(cfg: &Config, inputs: &Inputs, week: Span, now: DateTime<Utc>) -> Report {
    let cal = calendar_of(cfg);
    let rules = |m: &str| cfg.report.metric(m);
    let vals = Values {
        cube: &inputs.cube,
        rules: &rules,
    };
    let last = week.last();
    let month = cal.month_of(last);
    let quarter = cal.quarter_of(last);
    let year = cal.year_of(last);
    let to_date = |start: NaiveDate| Span {
        start,
        end: week.end,
    };
    let mtd = to_date(month.start);
    let qtd = to_date(quarter.start);
    let ytd = to_date(year.start);
    // the twelve complete months before the week's end
    let last_month = cal.month_of(cal.month_of(week.end).start - Duration::days(1));
    let mut months = vec![last_month];
    while months.len() < CHART_MONTHS {
        let first = months[0];
        months.insert(0, cal.month_of(first.start - Duration::days(1)));
    }
    let weeks: Vec<Span> = (0..CHART_WEEKS)
        .rev()
        .map(|i| week.shift(-7 * i64::try_from(i).unwrap_or(0)))
        .collect();
    let week_ms = |s: &Span| {
        let (a, b) = s.days();
        (a * MS_PER_DAY, b * MS_PER_DAY)
    };
    let touches = |i: &StoredIncident, s: &Span| {
        let (a, b) = week_ms(s);
        i.row.opened_at_ts < b && i.row.last_finding_ts >= a
    };
    let of_metric = |m: &str| -> Vec<&StoredIncident> {
        inputs
            .incidents
            .iter()
            .filter(|i| i.row.key.metric == m)
            .collect()
    };
    let mut sections = Vec::new();
    for (name, metrics) in layout(cfg, &inputs.cube) {
        let mut out = Vec::new();
        for m in metrics {
            let rule = rules(&m);
            let known = inputs.cube.totals.contains_key(&m)
                || matches!(&rule.aggregate, Aggregate::Ratio { num, den }
                    if inputs.cube.totals.contains_key(num) && inputs.cube.totals.contains_key(den));
            if !known {
                continue;
            }
            let get = |s: Span| vals.get(&m, None, s.days());
            let cmp = |s: Span, prior: Span| Compare {
                value: get(s),
                prior: get(prior),
            };
            let plan_of = |s: Span| vals.plan(&inputs.plan, &m, None, s.days());
            let numbers = Numbers {
                week_wow: cmp(week, week.shift(-7)),
                week_yoy: cmp(week, week.shift(-YEAR_WEEKS_DAYS)),
                mtd: cmp(mtd, mtd.year_ago()),
                qtd: cmp(qtd, qtd.year_ago()),
                ytd: cmp(ytd, ytd.year_ago()),
                plan_week: plan_of(week),
                plan_mtd: plan_of(mtd),
                plan_qtd: plan_of(qtd),
                plan_ytd: plan_of(ytd),
            };
            let incidents = of_metric(&m);
            let week_points = weeks
                .iter()
                .map(|s| Point {
                    label: s.start.format("%-d %b").to_string(),
                    value: get(*s),
                    last_year: get(s.shift(-YEAR_WEEKS_DAYS)),
                    plan: plan_of(*s),
                    incident: incidents.iter().any(|i| touches(i, s)),
                })
                .collect();
            let month_points = months
                .iter()
                .map(|s| Point {
                    label: month_label(s.start),
                    value: get(*s),
                    last_year: get(s.year_ago()),
                    plan: plan_of(*s),
                    incident: false,
                })
                .collect();
            let owner_key = SeriesKey {
                metric: m.clone(),
                dims: Vec::new(),
            };
            let owner = cfg
                .owners
                .owner_of(&owner_key)
                .map(mailbox_text)
                .unwrap_or_else(|| "no owner".into());
            let notes = incidents
                .iter()
                .filter(|i| touches(i, &week))
                .map(|i| {
                    // the incident's worst finding, as its digest and page show it
                    let worst = crate::model::worst_finding(&i.findings);
                    let date =
                        |ts: i64| NaiveDate::default() + Duration::days(ts.div_euclid(MS_PER_DAY));
                    IncidentNote {
                        id: i.row.id,
                        series: i.row.key.label(),
                        check: worst.map_or(i.row.worst_check, |f| f.check).to_string(),
                        day: date(worst.map_or(i.row.last_finding_ts, |f| f.timestamp)),
                        first: date(i.row.opened_at_ts),
                        last: date(i.row.last_finding_ts),
                        actual: worst.map_or(f64::NAN, |f| f.value),
                        expected: worst.map_or(f64::NAN, |f| f.expected),
                        owner: i
                            .row
                            .owner
                            .as_ref()
                            .map(mailbox_text)
                            .unwrap_or_else(|| owner.clone()),
                        explanation: i
                            .explanation
                            .as_ref()
                            .map(|e| (e.cause.label().to_string(), e.text.clone())),
                    }
                })
                .collect::<Vec<_>>();
            // what the meeting must still hear about first, then by day
            let mut notes = notes;
            notes.sort_by_key(|n| (n.explanation.is_some(), n.day, n.id));
            let dims = match &rule.aggregate {
                Aggregate::Ratio { num, .. } => inputs.cube.dims.get(num),
                _ => inputs.cube.dims.get(&m),
            };
            let drills = dims
                .into_iter()
                .flatten()
                .filter_map(|dim| {
                    let source_metric = match &rule.aggregate {
                        Aggregate::Ratio { num, .. } => num.as_str(),
                        _ => m.as_str(),
                    };
                    let values = inputs.cube.slices.get(source_metric)?.get(dim)?;
                    let mut rows: Vec<SliceRow> = values
                        .keys()
                        .map(|v| {
                            let sl = Some((dim.as_str(), v.as_str()));
                            let g = |s: Span| vals.get(&m, sl, s.days());
                            SliceRow {
                                value: v.clone(),
                                wow: Compare {
                                    value: g(week),
                                    prior: g(week.shift(-7)),
                                },
                                yoy: Compare {
                                    value: g(week),
                                    prior: g(week.shift(-YEAR_WEEKS_DAYS)),
                                },
                                plan: vals.plan(&inputs.plan, &m, sl, week.days()),
                                incident: incidents.iter().any(|i| {
                                    touches(i, &week) && i.row.key.dim(dim) == Some(v.as_str())
                                }),
                            }
                        })
                        .collect();
                    rows.sort_by(|a, b| {
                        b.incident.cmp(&a.incident).then(
                            b.wow
                                .value
                                .unwrap_or(f64::MIN)
                                .total_cmp(&a.wow.value.unwrap_or(f64::MIN)),
                        )
                    });
                    let known: Vec<&SliceRow> = rows
                        .iter()
                        .filter(|r| r.wow.value.is_some() && r.wow.prior.is_some())
                        .collect();
                    let down = known.iter().filter(|r| r.wow.value < r.wow.prior).count();
                    let up = known.len() - down;
                    let plural = if dim.ends_with('s') {
                        dim.clone()
                    } else {
                        format!("{dim}s")
                    };
                    let summary = if down * 2 >= known.len() {
                        format!(
                            "{m} down week over week in {down} of {} {plural}",
                            known.len()
                        )
                    } else {
                        format!("{m} up week over week in {up} of {} {plural}", known.len())
                    };
                    Some(Drill {
                        dimension: dim.clone(),
                        summary,
                        rows,
                    })
                })
                .collect();
            out.push(MetricReport {
                rule,
                owner,
                numbers,
                weeks: week_points,
                months: month_points,
                incidents: notes,
                drills,
            });
        }
        if !out.is_empty() {
            sections.push(Section { name, metrics: out });
        }
    }
    Report {
        title: cfg
            .report
            .title
            .clone()
            .unwrap_or_else(|| format!("{} pre-read", cfg.review.name)),
        week,
        review_at: crate::review::next_review(&cfg.review, now),
        due: crate::review::deadline(&cfg.review, now),
        generated_at: now,
        sections,
        problems: inputs.problems.clone(),
    }
}

/// A period's change for people: `+3.2%`, or for rates `+15 bps`; `None` when
/// either side is missing (or zero, for a percentage).
pub fn change(c: Compare, format: &NumberFormat) -> Option<f64> {
    let (v, p) = (c.value?, c.prior?);
    match format {
        NumberFormat::Percent => Some((v - p) * 10_000.0),
        NumberFormat::Number => (p != 0.0).then(|| (v - p) / p.abs() * 100.0),
    }
}

/// The ISO week number of a reporting week (of its Thursday when weeks start
/// on Monday; of its fourth day otherwise).
pub fn week_number(week: Span) -> (i32, u32) {
    let mid = week.start + Duration::days(3);
    (mid.iso_week().year(), mid.iso_week().week())
}

/// Why `callout report` could not write its file.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Bad flags (`--week`, `--at`), said in words.
    #[error("{0}")]
    Usage(String),
    /// Reading or aggregating failed.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// Every export ends before the week asked for: the page would be all
    /// n/a, so none is written.
    #[error(
        "no data in the week asked for, {}-W{:02} ({} – {}): the newest data in the exports is dated {newest}, so every number would be n/a; nothing written. For the week of the newest data: `--date {newest}`, with `--at \"{after} 08:00\"` to make it as of the morning after that week (and for the review after it)",
        week_number(*week).0,
        week_number(*week).1,
        week.start.format("%a %-d %b"),
        week.last().format("%a %-d %b %Y")
    )]
    NoDataInWeek {
        /// The week asked for (or the default one).
        week: Span,
        /// The newest day with data in any export.
        newest: NaiveDate,
        /// The day after the week of `newest` (a moment to suggest for `--at`).
        after: NaiveDate,
    },
    /// The output file could not be written.
    #[error("cannot write the report to `{}`: {source}", path.display())]
    Write {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The moment (`--at`, else the clock) and the week (`--week`, `--date`,
/// else the default week) of `callout report`.
pub fn choose(
    cfg: &Config,
    args: &crate::cli::ReportArgs,
) -> Result<(DateTime<Utc>, Span), WriteError> {
    let now = match &args.at {
        Some(at) => at.resolve(cfg.review.timezone).map_err(WriteError::Usage)?,
        None => Utc::now(),
    };
    let choice = match (&args.week, args.date) {
        (Some(w), _) => {
            let (y, n) = calendar::parse_iso_week(w).ok_or_else(|| {
                WriteError::Usage(format!(
                    "`--week {w}` is not an ISO week: use YYYY-Www, e.g. 2025-W10"
                ))
            })?;
            WeekChoice::Iso(y, n)
        }
        (None, Some(d)) => WeekChoice::Containing(d),
        (None, None) => WeekChoice::Default,
    };
    let week = week(cfg, choice, now).ok_or_else(|| {
        WriteError::Usage(format!(
            "`--week {}` does not exist (that year has fewer ISO weeks)",
            args.week.as_deref().unwrap_or_default()
        ))
    })?;
    Ok((now, week))
}

/// The file `callout report` writes without `--output`: named by the week's
/// ISO number, in the current folder (`wbr-2025-W10.html`).
pub fn default_output(week: Span) -> std::path::PathBuf {
    let (y, w) = week_number(week);
    format!("wbr-{y}-W{w:02}.html").into()
}

/// `callout report`: gather, build and write the page of `week` to
/// `output`. Returns the number of problems (sources or plans left out), each
/// reported. When every export ends before the week starts (a stale export,
/// or a week asked for beyond the data), nothing is written: the page would
/// be all n/a ([`WriteError::NoDataInWeek`]).
pub fn write(
    cfg: &Config,
    now: DateTime<Utc>,
    week: Span,
    output: &std::path::Path,
) -> Result<usize, WriteError> {
    let inputs = gather(cfg, week, now)?;
    if let Some(newest) = inputs.cube.newest_day()
        && newest < week.days().0
    {
        let newest = NaiveDate::default() + Duration::days(newest);
        return Err(WriteError::NoDataInWeek {
            week,
            newest,
            after: calendar_of(cfg).week_of(newest).end,
        });
    }
    let t = std::time::Instant::now();
    let report = build(cfg, &inputs, week, now);
    tracing::info!(secs = t.elapsed().as_secs_f64(), "report: built");
    let page = html(&report);
    tracing::info!(secs = t.elapsed().as_secs_f64(), "report: rendered");
    std::fs::write(output, page).map_err(|source| WriteError::Write {
        path: output.to_path_buf(),
        source,
    })?;
    let metrics: usize = report.sections.iter().map(|s| s.metrics.len()).sum();
    crate::cli::say(&format!(
        "report: week of {} ({} metric(s)) written to `{}`",
        week.start,
        metrics,
        output.display()
    ));
    for p in &report.problems {
        crate::cli::error(p);
    }
    Ok(report.problems.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

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
    #[test]
    fn a_memory_budget_gives_the_same_page() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(root.join("config/callout.toml"))
            .unwrap()
            .replace("\"../", &format!("\"{}/", root.display()));
        let mut cfg =
            crate::config::compile_str(&text, &dir.path().join("c.toml"), &|_| None).unwrap();
        cfg.store_path = dir.path().join("absent.db");
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
