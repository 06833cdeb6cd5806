//! The config file as written: serde structs that mirror the TOML one to one.
//!
//! Nothing here is validated beyond TOML types; `compile` turns these into
//! checked values. Unknown keys are collected with `serde_ignored` (rather than
//! `deny_unknown_fields`, which stops at the first) so every typo is reported at once.

use std::collections::BTreeMap;

use serde::Deserialize;

// Defaults, next to the types they fill in (the compiler uses these names only).
// Integers are read as `i64` (TOML's integer type) so that a negative or huge
// value reaches the compiler's range check and gets a message naming the range.

/// `store.path`, relative to the config file.
pub const DEFAULT_STORE_PATH: &str = "callout.db";
/// `schedule.cron`: every day at 07:00.
pub const DEFAULT_CRON: &str = "0 0 7 * * *";
/// `schedule.run_timeout_secs`.
pub const DEFAULT_RUN_TIMEOUT_SECS: u64 = 3600;
/// `review.weekday`.
pub const DEFAULT_REVIEW_WEEKDAY: chrono::Weekday = chrono::Weekday::Wed;
/// `review.time`, as (hour, minute).
pub const DEFAULT_REVIEW_TIME: (u32, u32) = (10, 0);
/// `review.explanations_due_hours`.
pub const DEFAULT_EXPLANATIONS_DUE_HOURS: i64 = 24;
/// `review.name`.
pub const DEFAULT_REVIEW_NAME: &str = "WBR";
/// `detection.fdr`.
pub const DEFAULT_FDR: f64 = 0.05;
/// `detection.calendar`.
pub const DEFAULT_CALENDAR: &str = "default";
/// `source.layout`.
pub const DEFAULT_LAYOUT: &str = "long";
/// `source.time_column`.
pub const DEFAULT_TIME_COLUMN: &str = "date";
/// `source.metric_column` (long layout).
pub const DEFAULT_METRIC_COLUMN: &str = "metric";
/// `source.value_column` (long layout).
pub const DEFAULT_VALUE_COLUMN: &str = "value";
/// `source.expected_delay_hours`.
pub const DEFAULT_EXPECTED_DELAY_HOURS: f64 = 24.0;
/// `metric.sensitivity`.
pub const DEFAULT_SENSITIVITY: f64 = 1.0;
/// `metric.min_abs_change`.
pub const DEFAULT_MIN_ABS_CHANGE: f64 = 0.0;
/// `metric.min_rel_change`.
pub const DEFAULT_MIN_REL_CHANGE: f64 = 0.02;
/// `metric.stale_periods`.
pub const DEFAULT_STALE_PERIODS: usize = 3;
/// `metric.missing_periods` for daily and weekly data: one absent period is a gap.
pub const DEFAULT_MISSING_PERIODS: usize = 1;
/// `metric.missing_periods` for sub-daily data, as a duration: a lost scrape or
/// two is not an incident; an hour without data is (and at least 2 periods).
pub const DEFAULT_MISSING_SUBDAILY_MS: i64 = 3_600_000;
/// `metric.seasonality`.
pub const DEFAULT_SEASONALITY: bool = true;
/// `smtp.timeout_secs`.
pub const DEFAULT_SMTP_TIMEOUT_SECS: u64 = 30;
/// `alerts.close_after_periods`.
pub const DEFAULT_CLOSE_AFTER_PERIODS: u32 = 3;
/// `alerts.close_after_hours`: half a day quiet ends a sub-daily episode.
pub const DEFAULT_CLOSE_AFTER_HOURS: u32 = 12;
/// `alerts.retry_base_secs`.
pub const DEFAULT_RETRY_BASE_SECS: u64 = 60;
/// `alerts.catch_up_days`: a scheduled run asks about the periods since the
/// last one it reported on, at most this many days back (two weeks: a
/// fortnight's holiday of the daemon is still asked about; older periods
/// were reviewed without it and are counted, not asked).
pub const DEFAULT_CATCH_UP_DAYS: u32 = 14;

/// A string or a list of strings (`cron = "…"` or `cron = ["…", "…"]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// A single value.
    One(String),
    /// Several values.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The values as a list.
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// The whole file.
#[derive(Debug, Deserialize)]
pub struct RawConfig {
    pub store: Option<RawStore>,
    pub schedule: Option<RawSchedule>,
    pub review: Option<RawReview>,
    pub detection: Option<RawDetection>,
    #[serde(default)]
    pub source: Vec<RawSource>,
    #[serde(default)]
    pub metric: Vec<RawMetric>,
    #[serde(default)]
    pub derived: Vec<RawDerived>,
    pub owners: Option<RawOwners>,
    pub smtp: Option<RawSmtp>,
    /// `[[chat]]`: Slack and Teams destinations.
    #[serde(default)]
    pub chat: Vec<RawChat>,
    pub alerts: Option<RawAlerts>,
    pub reminders: Option<RawReminders>,
    #[serde(default)]
    pub calendar: Vec<RawCalendar>,
    #[serde(default)]
    pub event: Vec<RawEvent>,
    pub web: Option<RawWeb>,
    /// `[report]` (types in `config/report.rs`).
    pub report: Option<super::report::RawReport>,
    /// `[[plan]]`: targets for the report.
    #[serde(default)]
    pub plan: Vec<super::report::RawPlan>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawStore {
    pub path: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawSchedule {
    pub cron: Option<OneOrMany>,
    pub timezone: Option<String>,
    pub run_timeout_secs: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawReview {
    pub weekday: Option<String>,
    pub time: Option<String>,
    pub timezone: Option<String>,
    pub explanations_due_hours: Option<i64>,
    pub name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawDetection {
    pub fdr: Option<f64>,
    pub calendar: Option<String>,
    /// e.g. `"512MB"`; absent: every source is evaluated whole.
    pub memory_budget: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct RawSource {
    pub name: Option<String>,
    pub path: Option<String>,
    pub url: Option<String>,
    pub format: Option<String>,
    pub layout: Option<String>,
    pub time_column: Option<String>,
    pub metric_column: Option<String>,
    /// Long layout without a metric column: every row is this metric.
    pub metric: Option<String>,
    pub value_column: Option<String>,
    #[serde(default)]
    pub dimensions: Vec<String>,
    pub metrics: Option<Vec<String>>,
    pub granularity: Option<String>,
    pub timezone: Option<String>,
    pub expected_delay_hours: Option<f64>,
    pub timeout_secs: Option<i64>,
    pub max_download_bytes: Option<i64>,
    pub duplicates: Option<String>,
    /// Who is told when this export is late or has missing periods.
    pub owner: Option<String>,
    /// A SQL query whose result is the export (PostgreSQL wire protocol).
    pub sql: Option<String>,
    /// The database URL's environment variable (never the URL in the config).
    pub url_env: Option<String>,
    /// … or a file holding the database URL.
    pub url_file: Option<String>,
    /// Days of history a SQL source reads before the first reported period (`$from`).
    pub history_days: Option<i64>,
    /// An S3 source's endpoint (MinIO, Ceph, R2, a local test server); AWS when absent.
    pub endpoint_url: Option<String>,
    /// An S3 source's region.
    pub region: Option<String>,
    /// An S3 source's addressing: `true` for `endpoint/bucket/key`, `false`
    /// for `bucket.endpoint/key`.
    pub path_style: Option<bool>,
    /// How the time column is written (strftime, or `excel`, `%G-W%V`, `%Y-%m`).
    pub time_format: Option<String>,
    /// The decimal mark of numbers written as text: "." (default) or ",".
    pub decimal: Option<String>,
    /// A CSV's text encoding when it is not UTF-8 (e.g. "windows-1252", "utf-16").
    pub encoding: Option<String>,
    /// A CSV's field delimiter: ",", ";", "tab" or "|" (default: found in the header).
    pub delimiter: Option<String>,
    /// A workbook's sheet (default: the first holding a table with dates and numbers).
    pub sheet: Option<String>,
    /// A workbook's header row, counted from 1 as the spreadsheet shows it (default: found).
    pub header_row: Option<i64>,
    /// The time column holds each period's last day ("Week Ending"), not its first.
    pub period_end: Option<bool>,
}

/// Default `[[source]] history_days`: a year and a month, enough for
/// year-over-year baselines.
pub const DEFAULT_SQL_HISTORY_DAYS: u32 = 400;

/// Default `[[source]] timeout_secs`: how long a URL download may take.
pub const DEFAULT_URL_TIMEOUT_SECS: u64 = 300;
/// Default `[[source]] max_download_bytes` (2 GiB).
pub const DEFAULT_MAX_DOWNLOAD_BYTES: u64 = 2 << 30;

#[derive(Debug, Deserialize)]
pub struct RawBounds {
    pub lower: Option<f64>,
    pub upper: Option<f64>,
}

#[derive(Debug, Deserialize)]
pub struct RawMetric {
    #[serde(rename = "match")]
    pub pattern: Option<String>,
    pub direction: Option<String>,
    pub sensitivity: Option<f64>,
    pub min_history: Option<i64>,
    pub min_abs_change: Option<f64>,
    pub min_rel_change: Option<f64>,
    pub bounds: Option<RawBounds>,
    pub max_pct_change: Option<f64>,
    pub stale_periods: Option<i64>,
    pub missing_periods: Option<i64>,
    pub seasonality: Option<bool>,
    pub scale: Option<String>,
    pub checks: Option<Vec<String>>,
    pub rollups: Option<Vec<String>>,
    pub aggregate: Option<String>,
}

/// `[[derived]]`: a metric computed from two exported ones.
#[derive(Debug, Default, Deserialize)]
pub struct RawDerived {
    pub name: Option<String>,
    pub ratio: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawOwners {
    pub default: Option<String>,
    pub default_chat: Option<OneOrMany>,
    #[serde(default)]
    pub rule: Vec<RawOwnerRule>,
}

#[derive(Debug, Deserialize)]
pub struct RawOwnerRule {
    #[serde(rename = "match")]
    pub pattern: Option<String>,
    #[serde(rename = "where", default)]
    pub dims: BTreeMap<String, String>,
    pub email: Option<String>,
    pub chat: Option<OneOrMany>,
    pub escalate_to: Option<String>,
}

/// Seconds a chat webhook may take to answer, when `timeout_secs` is not set.
pub const DEFAULT_CHAT_TIMEOUT_SECS: u64 = 10;

#[derive(Debug, Deserialize)]
pub struct RawChat {
    pub name: Option<String>,
    pub kind: Option<String>,
    pub webhook_env: Option<String>,
    pub webhook_file: Option<String>,
    pub webhook: Option<toml::Value>,
    pub timeout_secs: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub struct RawSmtp {
    pub host: Option<String>,
    pub port: Option<i64>,
    pub security: Option<String>,
    pub username: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<String>,
    pub password: Option<toml::Value>,
    pub from: Option<String>,
    pub reply_to: Option<String>,
    pub list_id: Option<String>,
    pub timeout_secs: Option<i64>,
    pub ca_file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawAlerts {
    pub close_after_periods: Option<i64>,
    pub close_after_hours: Option<i64>,
    pub retry_base_secs: Option<i64>,
    pub catch_up_days: Option<i64>,
}

/// Hours before the explanation deadline that an owner with unexplained
/// incidents is reminded, when `[reminders]` is present without the key.
pub const DEFAULT_REMINDER_HOURS: i64 = 24;

#[derive(Debug, Deserialize)]
pub struct RawReminders {
    pub hours_before_deadline: Option<i64>,
    pub escalate_to: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct RawCalendar {
    pub name: Option<String>,
    pub holidays: Option<Vec<String>>,
    #[serde(default)]
    pub dates: Vec<String>,
    #[serde(rename = "where", default)]
    pub dims: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
pub struct RawEvent {
    pub name: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    #[serde(rename = "match")]
    pub pattern: Option<String>,
    #[serde(rename = "where", default)]
    pub dims: BTreeMap<String, String>,
    pub action: Option<String>,
}

/// `[web]`: the signed-link pages, /healthz and /metrics.
#[derive(Debug, Deserialize)]
pub struct RawWeb {
    pub listen: Option<String>,
    pub public_url: Option<String>,
    pub secret_file: Option<String>,
    pub secret_env: Option<String>,
    pub link_valid_days: Option<i64>,
}
