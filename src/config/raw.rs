//! The config file as written: serde structs that mirror the TOML one to one.
//!
//! Nothing here is validated beyond TOML types; `compile` turns these into
//! checked values. Unknown keys are collected with `serde_ignored` (rather than
//! `deny_unknown_fields`, which stops at the first) so every typo is reported at once.

use std::collections::BTreeMap;

use serde::Deserialize;

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
    pub owners: Option<RawOwners>,
    pub smtp: Option<RawSmtp>,
    pub alerts: Option<RawAlerts>,
    #[serde(default)]
    pub calendar: Vec<RawCalendar>,
    #[serde(default)]
    pub event: Vec<RawEvent>,
    pub web: Option<RawWeb>,
}

#[derive(Debug, Deserialize)]
pub struct RawStore {
    pub path: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct RawSchedule {
    pub cron: Option<OneOrMany>,
    pub timezone: Option<String>,
    pub run_timeout_secs: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub struct RawReview {
    pub weekday: Option<String>,
    pub time: Option<String>,
    pub timezone: Option<String>,
    pub explanations_due_hours: Option<i64>,
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct RawDetection {
    pub fdr: Option<f64>,
    pub calendar: Option<String>,
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
    pub value_column: Option<String>,
    #[serde(default)]
    pub dimensions: Vec<String>,
    pub metrics: Option<Vec<String>>,
    pub granularity: Option<String>,
    pub timezone: Option<String>,
    pub expected_delay_hours: Option<f64>,
    pub timeout_secs: Option<u64>,
    pub max_download_bytes: Option<u64>,
    pub duplicates: Option<String>,
}

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
    pub seasonality: Option<bool>,
    pub scale: Option<String>,
    pub checks: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
pub struct RawOwners {
    pub default: Option<String>,
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
}

#[derive(Debug, Deserialize)]
pub struct RawSmtp {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub security: Option<String>,
    pub username: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<String>,
    pub password: Option<toml::Value>,
    pub from: Option<String>,
    pub reply_to: Option<String>,
    pub list_id: Option<String>,
    pub timeout_secs: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub struct RawAlerts {
    pub close_after_periods: Option<i64>,
    pub retry_base_secs: Option<u64>,
    pub max_attempts_per_run: Option<u32>,
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
