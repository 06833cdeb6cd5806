//! `[report]` and `[[plan]]`: what the WBR pre-read (`callout report`) shows
//! and in which order, how each metric aggregates over a period, and where the
//! plan targets come from: the raw serde types, their defaults and the compiled
//! types, kept here so the report's keys stay out of the shared config files.
//! `compile/report.rs` compiles them like every other section.

use std::path::PathBuf;

use chrono::Weekday;
use serde::Deserialize;

/// `report.week_start`.
pub const DEFAULT_WEEK_START: Weekday = Weekday::Mon;
/// `report.fiscal_year_start` (a month, 1 = January: fiscal year = calendar year).
pub const DEFAULT_FISCAL_YEAR_START: u32 = 1;
/// `report.email_hours_before`: the pre-read goes out this long before the review.
pub const DEFAULT_EMAIL_HOURS_BEFORE: i64 = 18;
/// Largest `report.email_hours_before`: under a week, so each review has its own window.
pub const MAX_EMAIL_HOURS_BEFORE: i64 = 167;
/// `plan.period_column`.
pub const DEFAULT_PLAN_PERIOD_COLUMN: &str = "period";
/// `plan.metric_column`.
pub const DEFAULT_PLAN_METRIC_COLUMN: &str = "metric";
/// `plan.value_column`.
pub const DEFAULT_PLAN_VALUE_COLUMN: &str = "target";

/// `[report]` as written.
#[derive(Debug, Default, Deserialize)]
pub struct RawReport {
    pub title: Option<String>,
    pub week_start: Option<String>,
    pub fiscal_year_start: Option<i64>,
    #[serde(default)]
    pub section: Vec<RawSection>,
    #[serde(default)]
    pub metric: Vec<RawReportMetric>,
    pub email_to: Option<Vec<String>>,
    pub email_hours_before: Option<i64>,
    pub chat: Option<super::raw::OneOrMany>,
}

/// `[[report.section]]` as written.
#[derive(Debug, Deserialize)]
pub struct RawSection {
    pub name: Option<String>,
    #[serde(default)]
    pub metrics: Vec<String>,
}

/// `[[report.metric]]` as written.
#[derive(Debug, Deserialize)]
pub struct RawReportMetric {
    pub name: Option<String>,
    pub aggregate: Option<String>,
    pub ratio: Option<Vec<String>>,
    pub format: Option<String>,
    pub unit: Option<String>,
    pub decimals: Option<i64>,
}

/// `[[plan]]` as written.
#[derive(Debug, Deserialize)]
pub struct RawPlan {
    pub path: Option<String>,
    pub period_column: Option<String>,
    pub metric_column: Option<String>,
    pub value_column: Option<String>,
    #[serde(default)]
    pub dimensions: Vec<String>,
}

/// How a metric's points add up to one number for a week, month, quarter or year.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Aggregate {
    /// Counts and money: the sum over series and days.
    Sum,
    /// Rates and latencies: the mean over series and days.
    Mean,
    /// Levels (stock, subscribers): the period's last day, summed over series.
    Last,
    /// A derived metric: the period's numerator over its denominator (each
    /// aggregated by its own rule), e.g. revenue per order.
    Ratio {
        /// Numerator metric.
        num: String,
        /// Denominator metric.
        den: String,
    },
}

/// How a metric's numbers are written for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumberFormat {
    /// A plain number with thousands separators; changes in %.
    Number,
    /// A fraction shown as a percentage; changes in basis points.
    Percent,
}

/// One `[[report.metric]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportMetric {
    /// The metric (as in the exports, or a new name for a ratio).
    pub name: String,
    /// How periods aggregate.
    pub aggregate: Aggregate,
    /// Number or percentage.
    pub format: NumberFormat,
    /// Unit text: currency symbols (£ $ € ¥) go before the number, anything else after.
    pub unit: String,
    /// Decimals shown; `None`: chosen from the size of the number.
    pub decimals: Option<usize>,
}

impl ReportMetric {
    /// The rule of a metric without a `[[report.metric]]`: a sum, a plain number.
    pub fn plain(name: &str) -> ReportMetric {
        ReportMetric {
            name: name.to_string(),
            aggregate: Aggregate::Sum,
            format: NumberFormat::Number,
            unit: String::new(),
            decimals: None,
        }
    }
}

/// One `[[report.section]]`: a heading and the metrics under it, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportSection {
    /// Heading.
    pub name: String,
    /// Metrics, in the order shown.
    pub metrics: Vec<String>,
}

/// One `[[plan]]`: a long file of targets (period, metric, dimensions, target).
#[derive(Debug, Clone, PartialEq)]
pub struct PlanConfig {
    /// The file (CSV, or Parquet by extension).
    pub path: PathBuf,
    /// Column with the period: `YYYY-MM` (a month), `YYYY-Www` or a date (the week starting then).
    pub period_column: String,
    /// Column with the metric name.
    pub metric_column: String,
    /// Column with the target.
    pub value_column: String,
    /// Dimension columns (targets are added up over them for the metric's total).
    pub dimensions: Vec<String>,
}

/// `[report]` and `[[plan]]`, checked. Present (with defaults) without the tables.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportConfig {
    /// Heading of the report; default: the review's name.
    pub title: Option<String>,
    /// The first day of a reporting week.
    pub week_start: Weekday,
    /// The month the fiscal year starts (1..=12), for QTD and YTD.
    pub fiscal_year_start: u32,
    /// Sections in order; empty: one list of every metric.
    pub sections: Vec<ReportSection>,
    /// Per-metric rules, in the order metrics are shown when there are no sections.
    pub metrics: Vec<ReportMetric>,
    /// Plan targets.
    pub plans: Vec<PlanConfig>,
    /// Who gets the pre-read by email (e.g. the review's list); empty: nobody.
    pub email_to: Vec<lettre::message::Mailbox>,
    /// How long before the review the email goes out.
    pub email_before: chrono::Duration,
    /// The `[[chat]]`s the pre-read's link is posted to in that window;
    /// `None`: `owners.default_chat`.
    pub chat: Option<Vec<String>>,
    /// Units the sources' column headers carry (`Revenue ($)`), per metric:
    /// a metric's unit when its `[[report.metric]]` gives none.
    pub header_units: std::collections::BTreeMap<String, String>,
}

impl Default for ReportConfig {
    fn default() -> Self {
        ReportConfig {
            title: None,
            week_start: DEFAULT_WEEK_START,
            fiscal_year_start: DEFAULT_FISCAL_YEAR_START,
            sections: Vec::new(),
            metrics: Vec::new(),
            plans: Vec::new(),
            email_to: Vec::new(),
            email_before: chrono::Duration::hours(DEFAULT_EMAIL_HOURS_BEFORE),
            chat: None,
            header_units: std::collections::BTreeMap::new(),
        }
    }
}

impl ReportConfig {
    /// The rule of `metric`: its `[[report.metric]]`, else a plain sum; the
    /// unit its export's header carries when the rule gives none.
    pub fn metric(&self, metric: &str) -> ReportMetric {
        let listed = self.metrics.iter().find(|m| m.name == metric);
        let mut rule = listed
            .cloned()
            .unwrap_or_else(|| ReportMetric::plain(metric));
        if rule.unit.is_empty()
            && let Some(unit) = self.header_units.get(metric)
        {
            rule.unit = unit.clone();
            // a rate (`Conversion %`) averages over slices and days; a sum of
            // percentages is no number anyone reads
            if unit == "%" && listed.is_none() {
                rule.aggregate = Aggregate::Mean;
            }
        }
        rule
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn compile(extra: &str) -> Result<crate::config::Config, Vec<(String, String)>> {
        let text = format!("[[source]]\nname = \"s\"\npath = \"s.csv\"\n\n{extra}");
        crate::config::compile_str(&text, Path::new("/etc/callout/callout.toml"), &|_| None)
            .map_err(|e| match e {
                crate::config::ConfigError::Invalid { problems, .. } => {
                    problems.into_iter().map(|p| (p.key, p.message)).collect()
                }
                other => vec![("?".into(), other.to_string())],
            })
    }

    #[test]
    fn report_keys_compile_and_every_problem_is_named() {
        let cfg = compile(
            "[report]\nweek_start = \"sun\"\nfiscal_year_start = 4\n[[report.section]]\nname = \"Outputs\"\nmetrics = [\"orders\"]\n[[report.metric]]\nname = \"aov\"\nratio = [\"revenue\", \"orders\"]\nunit = \"£\"\n[[report.metric]]\nname = \"rate\"\naggregate = \"mean\"\nformat = \"percent\"\n[[plan]]\npath = \"plan.csv\"\n",
        )
        .unwrap();
        let cfg2 =
            compile("[report]\nemail_to = [\"WBR <wbr@example.com>\"]\nemail_hours_before = 30\n")
                .unwrap();
        assert_eq!(cfg2.report.email_to[0].email.to_string(), "wbr@example.com");
        assert_eq!(cfg2.report.email_before, chrono::Duration::hours(30));
        let r = &cfg.report;
        assert_eq!((r.week_start, r.fiscal_year_start), (Weekday::Sun, 4));
        assert_eq!(
            r.metric("aov").aggregate,
            Aggregate::Ratio {
                num: "revenue".into(),
                den: "orders".into()
            }
        );
        assert_eq!(r.metric("rate").format, NumberFormat::Percent);
        assert_eq!(r.metric("other"), ReportMetric::plain("other"));
        assert_eq!(r.plans[0].path, Path::new("/etc/callout/plan.csv"));
        assert_eq!(r.plans[0].period_column, DEFAULT_PLAN_PERIOD_COLUMN);
        // defaults without [report]
        assert_eq!(compile("").unwrap().report, ReportConfig::default());

        let problems = compile(
            "[report]\nweek_start = \"someday\"\nfiscal_year_start = 13\nemail_to = [\"ok@example.com\", \"nobody\"]\nemail_hours_before = 200\n[[report.metric]]\nname = \"a\"\naggregate = \"median\"\n[[report.metric]]\nname = \"b\"\nratio = [\"x\"]\n[[report.metric]]\nname = \"c\"\nratio = [\"b\", \"y\"]\nformat = \"money\"\n[[report.section]]\nmetrics = [\"a\"]\n[[plan]]\nperiod_column = \"month\"\n",
        )
        .unwrap_err();
        for (key, needle) in [
            ("report.week_start", "someday"),
            ("report.fiscal_year_start", "between 1 and 12"),
            ("report.metric[0].aggregate", "\"median\""),
            ("report.metric[1].ratio", "two metrics"),
            ("report.metric[2].format", "\"money\""),
            ("report.section[0].name", "required"),
            ("plan[0].path", "required"),
            (
                "report.email_to[1]",
                "`nobody` is not an email address (no @)",
            ),
            ("report.email_hours_before", "between 1 and 167"),
        ] {
            assert!(
                problems.iter().any(|(k, m)| k == key && m.contains(needle)),
                "{key}: {problems:?}"
            );
        }
    }
}
