//! The pre-read's pure build: [`Inputs`] → [`Report`], every number
//! computed (no I/O, no clock). [`build`] walks the layout's sections and
//! metrics; each metric is a few named steps on a [`Builder`] (the box of
//! numbers, the chart's weeks and months, the incident notes, the
//! drill-downs). Also the plan line a digest shows ([`plan_line`]).

use chrono::{DateTime, Duration, NaiveDate, Utc};

use super::data::{Cube, Daily};
use super::html;
use super::model::{
    Compare, Drill, IncidentNote, Inputs, MetricReport, Numbers, Point, Report, Section, SliceRow,
    StoredIncident,
};
use super::plan::Plan;
use super::{CHART_MONTHS, CHART_WEEKS, Calendar, Span, YEAR_WEEKS_DAYS, calendar_of};
use crate::config::Config;
use crate::config::report::{Aggregate, NumberFormat, ReportConfig, ReportMetric};
use crate::model::{MS_PER_DAY, SeriesKey};

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
    /// `[[report.metric]]`: how each metric aggregates.
    rules: &'a ReportConfig,
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
        match self.rules.metric(metric).aggregate {
            Aggregate::Ratio { num, den } => {
                let n = self.plain(&num, slice, a, b)?;
                let d = self.plain(&den, slice, a, b)?;
                (d != 0.0).then(|| n / d)
            }
            how => self.daily(metric, slice)?.window(a, b, &how),
        }
    }

    fn plain(&self, metric: &str, slice: Option<(&str, &str)>, a: i64, b: i64) -> Option<f64> {
        let how = match self.rules.metric(metric).aggregate {
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
            let how = match self.rules.metric(m).aggregate {
                Aggregate::Ratio { .. } => Aggregate::Sum,
                how => how,
            };
            match slice {
                None => plan.window(m, a, b, &how),
                Some((d, v)) => plan.slice(m, d, v, a, b, &how),
            }
        };
        match self.rules.metric(metric).aggregate {
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
    let builder = Builder {
        cfg,
        inputs,
        vals: Values {
            cube: &inputs.cube,
            rules: &cfg.report,
        },
        periods: Periods::of(&calendar_of(cfg), week),
    };
    let mut sections = Vec::new();
    for (name, metrics) in layout(cfg, &inputs.cube) {
        let out: Vec<MetricReport> = metrics.iter().filter_map(|m| builder.metric(m)).collect();
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

/// The periods a report of one week compares: the week, the fiscal
/// to-date spans ending with it, and the chart's weeks and months.
struct Periods {
    /// The week reported.
    week: Span,
    /// Month to date (to the week's end).
    mtd: Span,
    /// Fiscal quarter to date.
    qtd: Span,
    /// Fiscal year to date.
    ytd: Span,
    /// The chart's six weeks, oldest first, ending with `week`.
    weeks: Vec<Span>,
    /// The chart's twelve complete months before the week's end, oldest first.
    months: Vec<Span>,
}

impl Periods {
    fn of(cal: &Calendar, week: Span) -> Periods {
        let last = week.last();
        let to_date = |start: NaiveDate| Span {
            start,
            end: week.end,
        };
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
        Periods {
            week,
            mtd: to_date(cal.month_of(last).start),
            qtd: to_date(cal.quarter_of(last).start),
            ytd: to_date(cal.year_of(last).start),
            weeks,
            months,
        }
    }
}

/// Whether an incident was open at some time in `s`.
fn touches(i: &StoredIncident, s: &Span) -> bool {
    let (a, b) = s.days();
    let (a, b) = (a * MS_PER_DAY, b * MS_PER_DAY);
    i.row.opened_at_ts < b && i.row.last_finding_ts >= a
}

/// What every step of [`build`] reads: the config, the inputs, their
/// values by rule, and the periods compared.
struct Builder<'a> {
    cfg: &'a Config,
    inputs: &'a Inputs,
    vals: Values<'a>,
    periods: Periods,
}

impl Builder<'_> {
    /// Everything about metric `m`; `None` when no export has it (nor, for
    /// a ratio, both its parts).
    fn metric(&self, m: &str) -> Option<MetricReport> {
        let rule = self.cfg.report.metric(m);
        let totals = &self.inputs.cube.totals;
        let known = totals.contains_key(m)
            || matches!(&rule.aggregate, Aggregate::Ratio { num, den }
                if totals.contains_key(num) && totals.contains_key(den));
        if !known {
            return None;
        }
        let incidents: Vec<&StoredIncident> = self
            .inputs
            .incidents
            .iter()
            .filter(|i| i.row.key.metric == m)
            .collect();
        let owner = self.owner(m);
        Some(MetricReport {
            numbers: self.numbers(m),
            weeks: self.week_points(m, &incidents),
            months: self.month_points(m),
            incidents: self.notes(&incidents, &owner),
            drills: self.drills(m, &rule, &incidents),
            rule,
            owner,
        })
    }

    /// The value of `m` (all slices) over `s`.
    fn get(&self, m: &str, s: Span) -> Option<f64> {
        self.vals.get(m, None, s.days())
    }

    /// The plan of `m` (all slices) over `s`.
    fn plan_of(&self, m: &str, s: Span) -> Option<f64> {
        self.vals.plan(&self.inputs.plan, m, None, s.days())
    }

    /// The box: the week against the one before and last year, the to-date
    /// spans against last year, and the plan of each.
    fn numbers(&self, m: &str) -> Numbers {
        let Periods {
            week,
            mtd,
            qtd,
            ytd,
            ..
        } = self.periods;
        let cmp = |s: Span, prior: Span| Compare {
            value: self.get(m, s),
            prior: self.get(m, prior),
        };
        Numbers {
            week_wow: cmp(week, week.shift(-7)),
            week_yoy: cmp(week, week.shift(-YEAR_WEEKS_DAYS)),
            mtd: cmp(mtd, mtd.year_ago()),
            qtd: cmp(qtd, qtd.year_ago()),
            ytd: cmp(ytd, ytd.year_ago()),
            plan_week: self.plan_of(m, week),
            plan_mtd: self.plan_of(m, mtd),
            plan_qtd: self.plan_of(m, qtd),
            plan_ytd: self.plan_of(m, ytd),
        }
    }

    /// The chart's six weeks, each marked when one of `incidents` touches it.
    fn week_points(&self, m: &str, incidents: &[&StoredIncident]) -> Vec<Point> {
        self.periods
            .weeks
            .iter()
            .map(|s| Point {
                label: s.start.format("%-d %b").to_string(),
                value: self.get(m, *s),
                last_year: self.get(m, s.shift(-YEAR_WEEKS_DAYS)),
                plan: self.plan_of(m, *s),
                incident: incidents.iter().any(|i| touches(i, s)),
            })
            .collect()
    }

    /// The chart's twelve months.
    fn month_points(&self, m: &str) -> Vec<Point> {
        self.periods
            .months
            .iter()
            .map(|s| Point {
                label: month_label(s.start),
                value: self.get(m, *s),
                last_year: self.get(m, s.year_ago()),
                plan: self.plan_of(m, *s),
                incident: false,
            })
            .collect()
    }

    /// Who answers for the metric as a whole, for people.
    fn owner(&self, m: &str) -> String {
        let owner_key = SeriesKey {
            metric: m.to_string(),
            dims: Vec::new(),
        };
        self.cfg
            .owners
            .owner_of(&owner_key)
            .map(mailbox_text)
            .unwrap_or_else(|| "no owner".into())
    }

    /// The notes of the incidents touching the week: what the meeting must
    /// still hear about (unexplained) first, then by day.
    fn notes(&self, incidents: &[&StoredIncident], owner: &str) -> Vec<IncidentNote> {
        let mut notes: Vec<IncidentNote> = incidents
            .iter()
            .filter(|i| touches(i, &self.periods.week))
            .map(|i| note(i, owner))
            .collect();
        notes.sort_by_key(|n| (n.explanation.is_some(), n.day, n.id));
        notes
    }

    /// One drill-down per dimension of the metric (of its numerator, for a ratio).
    fn drills(&self, m: &str, rule: &ReportMetric, incidents: &[&StoredIncident]) -> Vec<Drill> {
        let source_metric = match &rule.aggregate {
            Aggregate::Ratio { num, .. } => num.as_str(),
            _ => m,
        };
        let dims = self.inputs.cube.dims.get(source_metric);
        dims.into_iter()
            .flatten()
            .filter_map(|dim| self.drill(m, source_metric, dim, incidents))
            .collect()
    }

    /// The drill-down of `m` by `dim`: each slice's week against the one
    /// before and last year, slices with incidents first, then by size; and
    /// the line that says which way most slices went.
    fn drill(
        &self,
        m: &str,
        source_metric: &str,
        dim: &str,
        incidents: &[&StoredIncident],
    ) -> Option<Drill> {
        let week = self.periods.week;
        let values = self.inputs.cube.slices.get(source_metric)?.get(dim)?;
        let mut rows: Vec<SliceRow> = values
            .keys()
            .map(|v| {
                let sl = Some((dim, v.as_str()));
                let g = |s: Span| self.vals.get(m, sl, s.days());
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
                    plan: self.vals.plan(&self.inputs.plan, m, sl, week.days()),
                    incident: incidents
                        .iter()
                        .any(|i| touches(i, &week) && i.row.key.dim(dim) == Some(v.as_str())),
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
        Some(Drill {
            dimension: dim.to_string(),
            summary: drill_summary(m, dim, &rows),
            rows,
        })
    }
}

/// What a note says of one incident: its worst finding, as its digest and
/// page show it; the owner stored with it (else the metric's, `owner`).
fn note(i: &StoredIncident, owner: &str) -> IncidentNote {
    let worst = crate::model::worst_finding(&i.findings);
    let date = |ts: i64| NaiveDate::default() + Duration::days(ts.div_euclid(MS_PER_DAY));
    IncidentNote {
        id: i.row.id,
        series: i.row.key.label(),
        check: worst.map_or(i.row.worst_check, |f| f.hit.check).to_string(),
        day: date(worst.map_or(i.row.last_finding_ts, |f| f.hit.ts)),
        first: date(i.row.opened_at_ts),
        last: date(i.row.last_finding_ts),
        actual: worst.map_or(f64::NAN, |f| f.hit.value),
        expected: worst.map_or(f64::NAN, |f| f.hit.expected),
        owner: i
            .row
            .owner
            .as_ref()
            .map(mailbox_text)
            .unwrap_or_else(|| owner.to_string()),
        explanation: i
            .explanation
            .as_ref()
            .map(|e| (e.cause.label().to_string(), e.text.clone())),
        drivers: worst
            .and_then(|f| f.hit.note.as_deref())
            .map(crate::model::drivers)
            .unwrap_or_default(),
    }
}

/// One line: "orders down week over week in 2 of 3 regions" (down when at
/// least half of the slices known both weeks went down).
fn drill_summary(m: &str, dim: &str, rows: &[SliceRow]) -> String {
    let known: Vec<&SliceRow> = rows
        .iter()
        .filter(|r| r.wow.value.is_some() && r.wow.prior.is_some())
        .collect();
    let down = known.iter().filter(|r| r.wow.value < r.wow.prior).count();
    let up = known.len() - down;
    let plural = if dim.ends_with('s') {
        dim.to_string()
    } else {
        format!("{dim}s")
    };
    if down * 2 >= known.len() {
        format!(
            "{m} down week over week in {down} of {} {plural}",
            known.len()
        )
    } else {
        format!("{m} up week over week in {up} of {} {plural}", known.len())
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
