//! `[report]` and `[[plan]]`: what the WBR pre-read shows and where the plan
//! targets come from, compiled like every other section (the types and their
//! defaults live in `config::report`).

use super::*;
use crate::config::report::{
    Aggregate, DEFAULT_PLAN_METRIC_COLUMN, DEFAULT_PLAN_PERIOD_COLUMN, DEFAULT_PLAN_VALUE_COLUMN,
    MAX_EMAIL_HOURS_BEFORE, NumberFormat, PlanConfig, RawPlan, RawReport, RawReportMetric,
    RawSection, ReportConfig, ReportMetric, ReportSection,
};

impl Compiler {
    /// `[report]` and `[[plan]]`.
    pub(super) fn report(
        &mut self,
        raw: Option<RawReport>,
        plans: Vec<RawPlan>,
        chats: &[ChatConfig],
    ) -> ReportConfig {
        let raw = raw.unwrap_or_default();
        let mut out = ReportConfig {
            title: raw.title,
            ..ReportConfig::default()
        };
        if let Some(c) = raw.chat {
            out.chat = Some(self.chat_names("report.chat", Some(c), chats));
        }
        if let Some(w) = raw.week_start.as_deref() {
            match Weekday::from_str(w) {
                Ok(d) => out.week_start = d,
                Err(_) => self.problem(
                    "report.week_start",
                    format!("not a weekday {w:?} (e.g. \"mon\" or \"Sunday\")"),
                ),
            }
        }
        if let Some(m) = raw.fiscal_year_start {
            match u32::try_from(m) {
                Ok(m @ 1..=12) => out.fiscal_year_start = m,
                _ => self.problem(
                    "report.fiscal_year_start",
                    format!("must be a month number between 1 and 12, got {m}"),
                ),
            }
        }
        for (i, to) in raw.email_to.unwrap_or_default().iter().enumerate() {
            match parse_mailbox(to) {
                Ok(m) => out.email_to.push(m),
                Err(e) => self.problem(
                    &format!("report.email_to[{i}]"),
                    format!("{e}; e.g. \"WBR list <wbr@example.com>\""),
                ),
            }
        }
        if let Some(h) = raw.email_hours_before {
            if (1..=MAX_EMAIL_HOURS_BEFORE).contains(&h) {
                out.email_before = chrono::Duration::hours(h);
            } else {
                self.problem(
                    "report.email_hours_before",
                    format!("must be between 1 and {MAX_EMAIL_HOURS_BEFORE} hours, got {h}"),
                );
            }
        }
        for (i, m) in raw.metric.into_iter().enumerate() {
            if let Some(metric) = self.report_metric(i, m, &out.metrics) {
                out.metrics.push(metric);
            }
        }
        self.ratio_parts(&out.metrics);
        for (i, s) in raw.section.into_iter().enumerate() {
            if let Some(section) = self.report_section(i, s) {
                out.sections.push(section);
            }
        }
        for (i, p) in plans.into_iter().enumerate() {
            if let Some(plan) = self.plan(i, p) {
                out.plans.push(plan);
            }
        }
        out
    }

    /// `report.metric[i]`; `None` without a name. `before`: the metrics before it.
    fn report_metric(
        &mut self,
        i: usize,
        m: RawReportMetric,
        before: &[ReportMetric],
    ) -> Option<ReportMetric> {
        let key = |k: &str| format!("report.metric[{i}].{k}");
        let Some(name) = m.name.filter(|n| !n.is_empty()) else {
            self.problem(&key("name"), "required: the metric's name".into());
            return None;
        };
        if before.iter().any(|o| o.name == name) {
            self.problem(&key("name"), format!("metric {name:?} has a rule already"));
        }
        let aggregate = self.aggregate(&key, m.aggregate.as_deref(), m.ratio);
        let format = match m.format.as_deref() {
            None | Some("number") => NumberFormat::Number,
            Some("percent") => NumberFormat::Percent,
            Some(f) => {
                self.problem(
                    &key("format"),
                    format!("must be one of \"number\", \"percent\", got {f:?}"),
                );
                NumberFormat::Number
            }
        };
        let decimals = match m.decimals {
            None => None,
            Some(d @ 0..=6) => usize::try_from(d).ok(),
            Some(d) => {
                self.problem(
                    &key("decimals"),
                    format!("must be between 0 and 6, got {d}"),
                );
                None
            }
        };
        Some(ReportMetric {
            name,
            aggregate,
            format,
            unit: m.unit.unwrap_or_default(),
            decimals,
        })
    }

    /// A report metric's `aggregate` or `ratio` (`key` names its keys).
    fn aggregate(
        &mut self,
        key: &dyn Fn(&str) -> String,
        aggregate: Option<&str>,
        ratio: Option<Vec<String>>,
    ) -> Aggregate {
        match (aggregate, ratio) {
            (Some(_), Some(_)) => {
                self.problem(
                    &key("ratio"),
                    "a ratio aggregates its numerator and denominator; remove `aggregate`".into(),
                );
                Aggregate::Sum
            }
            (_, Some(r)) => match <[String; 2]>::try_from(r) {
                Ok([num, den]) => Aggregate::Ratio { num, den },
                Err(r) => {
                    self.problem(
                        &key("ratio"),
                        format!(
                            "must name two metrics [numerator, denominator], got {} name(s)",
                            r.len()
                        ),
                    );
                    Aggregate::Sum
                }
            },
            (None, None) | (Some("sum"), None) => Aggregate::Sum,
            (Some("mean"), None) => Aggregate::Mean,
            (Some("last"), None) => Aggregate::Last,
            (Some(a), None) => {
                self.problem(
                    &key("aggregate"),
                    format!("must be one of \"sum\", \"mean\", \"last\", got {a:?}"),
                );
                Aggregate::Sum
            }
        }
    }

    /// A ratio's parts must be metrics of the exports, not ratios themselves.
    fn ratio_parts(&mut self, metrics: &[ReportMetric]) {
        for (i, m) in metrics.iter().enumerate() {
            if let Aggregate::Ratio { num, den } = &m.aggregate {
                for part in [num, den] {
                    if metrics
                        .iter()
                        .any(|o| &o.name == part && matches!(o.aggregate, Aggregate::Ratio { .. }))
                    {
                        self.problem(
                            &format!("report.metric[{i}].ratio"),
                            format!("{part:?} is itself a ratio; name metrics of the exports"),
                        );
                    }
                }
            }
        }
    }

    /// `report.section[i]`; `None` without a name.
    fn report_section(&mut self, i: usize, s: RawSection) -> Option<ReportSection> {
        let Some(name) = s.name.filter(|n| !n.is_empty()) else {
            self.problem(
                &format!("report.section[{i}].name"),
                "required: the section's heading".into(),
            );
            return None;
        };
        if s.metrics.is_empty() {
            self.problem(
                &format!("report.section[{i}].metrics"),
                "list the metrics shown under this heading, in order".into(),
            );
        }
        Some(ReportSection {
            name,
            metrics: s.metrics,
        })
    }

    /// `plan[i]`; `None` without a path. The path is relative to the config file.
    fn plan(&mut self, i: usize, p: RawPlan) -> Option<PlanConfig> {
        let Some(path) = p.path.filter(|p| !p.is_empty()) else {
            self.problem(
                &format!("plan[{i}].path"),
                "required: the plan file (CSV or Parquet)".into(),
            );
            return None;
        };
        Some(PlanConfig {
            path: self.path(&path),
            period_column: p
                .period_column
                .unwrap_or_else(|| DEFAULT_PLAN_PERIOD_COLUMN.into()),
            metric_column: p
                .metric_column
                .unwrap_or_else(|| DEFAULT_PLAN_METRIC_COLUMN.into()),
            value_column: p
                .value_column
                .unwrap_or_else(|| DEFAULT_PLAN_VALUE_COLUMN.into()),
            dimensions: p.dimensions,
        })
    }
}
