//! Configuration: the only code that reads the config file.
//!
//! `raw` mirrors the TOML; [`compile`] turns it into a checked [`Config`],
//! collecting *every* problem (file, key path, bad value, what would be right)
//! instead of stopping at the first. After compilation the rest of the program
//! sees typed values: a cron `Schedule`, a `chrono_tz::Tz`, a lettre `Mailbox`.

mod compile;
mod fields;
pub mod raw;
pub mod report;
pub mod syntax;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{NaiveDate, NaiveTime, Weekday};
use chrono_tz::Tz;

use crate::model::{Check, Granularity, Side};
use crate::text::{Decimal, TimeFormat};

pub use compile::{compile_str, load};
pub use fields::suggestion;

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigProblem {
    /// Dotted key path, e.g. `metric[3].sensitivity`.
    pub key: String,
    /// What is wrong and what would be right.
    pub message: String,
}

/// Every problem found while compiling one config file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config `{path}`: {source}")]
    Read {
        /// The config file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file was read but is not a valid config.
    #[error("{}", render_problems(path, problems))]
    Invalid {
        /// The config file.
        path: PathBuf,
        /// Every problem, in file order.
        problems: Vec<ConfigProblem>,
    },
}

fn render_problems(path: &Path, problems: &[ConfigProblem]) -> String {
    let mut s = format!(
        "{} problem(s) in config `{}`:",
        problems.len(),
        path.display()
    );
    for p in problems {
        s.push_str(&format!("\n  {}: {}: {}", path.display(), p.key, p.message));
    }
    s
}

/// The checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this was read from.
    pub path: PathBuf,
    /// SQLite state file.
    pub store_path: PathBuf,
    /// When the daemon evaluates.
    pub schedule: ScheduleConfig,
    /// The weekly business review the owners prepare for.
    pub review: ReviewConfig,
    /// Settings that apply across metrics.
    pub detection: DetectionConfig,
    /// Where metric exports come from.
    pub sources: Vec<SourceConfig>,
    /// Per-metric rules, first match wins.
    pub metrics: Vec<MetricRule>,
    /// `[[derived]]` ratio metrics, detected like exported ones.
    pub derived: Vec<Derived>,
    /// The rule for metrics no `[[metric]]` matches.
    pub default_rule: MetricRule,
    /// Who answers for which series.
    pub owners: OwnersConfig,
    /// Outgoing mail; `None` when the config has no `[smtp]` table.
    pub smtp: Option<SmtpConfig>,
    /// `[[chat]]`: Slack and Teams channels messages are posted to.
    pub chat: Vec<ChatConfig>,
    /// Incident and delivery settings.
    pub alerts: AlertsConfig,
    /// Reminders before the deadline and escalation after it.
    pub reminders: RemindersConfig,
    /// Holiday calendars, first match (by dimension) wins.
    pub calendars: Vec<CalendarConfig>,
    /// Declared events that excuse or annotate periods.
    pub events: Vec<EventConfig>,
    /// The web server; `None` when the config has no `[web]` table.
    pub web: Option<WebConfig>,
    /// The WBR pre-read (`[report]`, `[[plan]]`); defaults without them.
    pub report: report::ReportConfig,
}

impl Config {
    /// Whether `key` is a roll-up that sums its slices (a mean's slices do
    /// not add up to it: they have no shares of its gap).
    pub fn sums_rollup(&self, key: &crate::model::SeriesKey) -> bool {
        key.is_rollup() && self.rule_for(&key.metric).rollup_aggregate() == RollupAggregate::Sum
    }

    /// The first metric rule whose glob matches `metric` (the last rule is a catch-all).
    pub fn rule_for(&self, metric: &str) -> &MetricRule {
        self.metrics
            .iter()
            .find(|r| r.pattern.matches(metric))
            .unwrap_or(&self.default_rule)
    }
}

/// `[schedule]`.
#[derive(Debug, Clone)]
pub struct ScheduleConfig {
    /// Cron expressions (with seconds field), evaluated in `timezone`.
    pub crons: Vec<cron::Schedule>,
    /// Timezone of the cron expressions.
    pub timezone: Tz,
    /// A run that takes longer is abandoned and reported.
    pub run_timeout: Duration,
}

/// `[review]`.
#[derive(Debug, Clone)]
pub struct ReviewConfig {
    /// Display name, e.g. "WBR".
    pub name: String,
    /// Day of the review.
    pub weekday: Weekday,
    /// Local time of the review.
    pub time: NaiveTime,
    /// Timezone of the review.
    pub timezone: Tz,
    /// Explanations are due this many hours before the review.
    pub due_hours_before: i64,
}

/// `[detection]`.
#[derive(Debug, Clone)]
pub struct DetectionConfig {
    /// False-discovery-rate level across the series of one run.
    pub fdr: f64,
    /// Calendar applied where no `[[calendar]]` matches by dimension.
    pub default_calendar: String,
    /// Bytes the rows of one source may take while evaluated; a larger
    /// source is evaluated in chunks of series. `None`: always whole.
    pub memory_budget: Option<u64>,
}

/// File format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated with a header.
    Csv,
    /// Apache Parquet.
    Parquet,
    /// Newline-delimited JSON objects.
    Ndjson,
    /// A spreadsheet workbook (.xlsx, .xlsm, .xlsb, .xls, .ods).
    Workbook,
}

impl Format {
    /// The format a file's extension names (lowercase, without its dot):
    /// how `format` defaults, and how `init` reads an export.
    pub fn from_extension(ext: &str) -> Option<Format> {
        match ext {
            "csv" | "txt" | "tsv" => Some(Format::Csv),
            "parquet" | "pq" => Some(Format::Parquet),
            "ndjson" | "jsonl" | "json" => Some(Format::Ndjson),
            "xlsx" | "xlsm" | "xlsb" | "xls" | "ods" => Some(Format::Workbook),
            _ => None,
        }
    }

    /// Its name as `format = "…"` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Parquet => "parquet",
            Format::Ndjson => "ndjson",
            Format::Workbook => "workbook",
        }
    }
}

/// Where a source's bytes come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Location {
    /// A file path or glob, absolute (resolved against the config's folder).
    Path(String),
    /// An HTTP(S) URL.
    Url(String),
    /// A SQL query on a PostgreSQL-wire database.
    Sql(SqlSource),
    /// Objects in S3 or an S3-compatible store (`s3://bucket/key`, a glob over keys).
    S3(S3Source),
}

/// A `[[source]]` whose `path` is an `s3://` URL. Credentials are never part
/// of it: they come from the environment, `~/.aws` or the instance role.
#[derive(Debug, Clone, PartialEq)]
pub struct S3Source {
    /// The URL as written, `s3://bucket/key` (the key may be a glob).
    pub url: String,
    /// The bucket.
    pub bucket: String,
    /// The key or glob over keys.
    pub key: String,
    /// Endpoint of an S3-compatible store; `None`: AWS.
    pub endpoint_url: Option<String>,
    /// Region; `None`: the environment's (`AWS_REGION`, `~/.aws/config`) or the bucket's.
    pub region: Option<String>,
    /// `Some(true)`: path-style requests; `Some(false)`: virtual-hosted; `None`: the client's default.
    pub path_style: Option<bool>,
}

/// A `[[source]]` read with a SQL query.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlSource {
    /// The query as written, with `$from` / `$to` placeholders.
    pub query: String,
    /// Where the database URL is read from, at load time.
    pub url: Secret,
    /// History read before the first reported period.
    pub history_days: u32,
}

impl Location {
    /// What to call the source's input in a message: its path, glob, URL or
    /// (for SQL) the query on one line, cut at 80 characters. Never a credential.
    pub fn label(&self) -> String {
        match self {
            Location::Path(p) | Location::Url(p) => p.clone(),
            Location::S3(s) => s.url.clone(),
            Location::Sql(q) => {
                let one_line = q.query.split_whitespace().collect::<Vec<_>>().join(" ");
                let mut shown: String = one_line.chars().take(80).collect();
                if shown.len() < one_line.len() {
                    shown.push('…');
                }
                shown
            }
        }
    }
}

/// Shape of an export.
#[derive(Debug, Clone, PartialEq)]
pub enum Layout {
    /// time, metric, value [, dimensions].
    Long {
        /// Where each row's metric name comes from.
        metric: MetricName,
        /// Column holding the value.
        value_column: String,
    },
    /// time + one column per metric [, dimensions].
    Wide {
        /// Metric columns to read; `None`: every column that is not time or a dimension.
        metrics: Option<Vec<String>>,
    },
}

/// Where a long export's metric names come from.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricName {
    /// A column naming each row's metric (`metric_column`).
    Column(String),
    /// One metric for every row (`metric`): an export of one metric's values
    /// with no column naming it, such as `date,value` in `signups.csv`.
    Fixed(String),
}

/// One `[[source]]`.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    /// Unique name, used in logs, errors and the store.
    pub name: String,
    /// File, glob, URL, S3 objects or SQL query.
    pub location: Location,
    /// File format (declared or from the extension).
    pub format: Format,
    /// Long or wide.
    pub layout: Layout,
    /// Column with the date or datetime.
    pub time_column: String,
    /// Dimension columns; every combination of values is its own series.
    pub dimensions: Vec<String>,
    /// Declared granularity; `None`: inferred per series from the data.
    pub granularity: Option<Granularity>,
    /// Timezone of naive timestamps (aware ones are converted to it).
    pub timezone: Tz,
    /// How long after a period ends its data may arrive before it is late.
    pub expected_delay: Duration,
    /// A URL download, a SQL statement or one S3 request takes at most this long (`timeout_secs`).
    pub timeout: Duration,
    /// A URL download larger than this many bytes is refused (`max_download_bytes`).
    pub max_download_bytes: u64,
    /// What to do with several rows of one series in one period (`duplicates`).
    pub duplicates: Duplicates,
    /// Who is told when the export is late or has missing periods; `None`:
    /// `owners.default`.
    pub owner: Option<lettre::message::Mailbox>,
    /// How the export writes its text: dates, numbers, encoding, delimiter, sheet.
    pub dialect: Dialect,
}

/// How an export writes what it holds, beyond its format (`time_format`,
/// `decimal`, `encoding`, `delimiter`, `sheet`, `header_row`). The default is
/// a tidy UTF-8 CSV with ISO dates and `.` decimals.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Dialect {
    /// How the time column is written; `None`: ISO 8601 (or a date type).
    pub time_format: Option<TimeFormat>,
    /// The decimal mark of numbers written as text.
    pub decimal: Decimal,
    /// The text encoding of a CSV; `None`: UTF-8 (a BOM is skipped), or
    /// UTF-16 when the file starts with its BOM.
    pub encoding: Option<&'static encoding_rs::Encoding>,
    /// A CSV's field delimiter; `None`: found in the header line.
    pub delimiter: Option<u8>,
    /// A workbook's sheet; `None`: the first with a table of dates and numbers.
    pub sheet: Option<String>,
    /// A workbook's header row (1-based); `None`: the first row of the table found.
    pub header_row: Option<usize>,
    /// The time column holds each period's last day (a "Week Ending" Sunday)
    /// rather than its first: the period is complete, and late, that much sooner.
    pub period_end: bool,
}

impl Dialect {
    /// The keys set, as `check-sources` says them ("time_format "%m/%d/%Y",
    /// decimal ","…); `None` for a tidy export (every key at its default).
    pub fn describe(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(f) = &self.time_format {
            parts.push(format!("time_format {:?}", f.spec()));
        }
        if self.decimal == Decimal::Comma {
            parts.push("decimal \",\"".into());
        }
        if let Some(d) = self.delimiter {
            let shown = if d == b'\t' {
                "tab".to_string()
            } else {
                format!("{:?}", char::from(d).to_string())
            };
            parts.push(format!("delimiter {shown}"));
        }
        if let Some(e) = self.encoding {
            parts.push(format!("encoding {}", e.name()));
        }
        if let Some(s) = &self.sheet {
            parts.push(format!("sheet {s:?}"));
        }
        if let Some(r) = self.header_row {
            parts.push(format!("header_row {r}"));
        }
        if self.period_end {
            parts.push("period_end".into());
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

/// Policy for several rows of one series in one period (`[[source]] duplicates`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duplicates {
    /// Skip the series and name the first duplicate timestamp.
    Error,
    /// Keep the first row in file order.
    First,
    /// Keep the last row in file order.
    Last,
    /// Add the values (a batch re-sent in parts).
    Sum,
    /// Average the values.
    Mean,
}

impl SourceConfig {
    /// The local files a path source names right now (a glob's matches, sorted);
    /// empty for a URL or when nothing matches.
    pub fn files(&self) -> Vec<PathBuf> {
        let Location::Path(p) = &self.location else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = match glob::glob(p) {
            Ok(g) => g.filter_map(Result::ok).filter(|f| f.is_file()).collect(),
            // not a valid glob: the path itself
            Err(_) => vec![PathBuf::from(p)],
        };
        files.retain(|f| f.is_file());
        files.sort();
        files
    }
}

/// How values are modelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Log scale when every value is >= 0, else linear.
    Auto,
    /// Multiplicative: log scale.
    Log,
    /// Additive.
    Linear,
}

/// A glob over metric names (`*`, `?`, `[abc]`).
#[derive(Debug, Clone)]
pub struct MetricGlob(glob::Pattern);

impl MetricGlob {
    /// Compile a glob; `Err` carries the glob error text.
    pub fn new(s: &str) -> Result<Self, String> {
        glob::Pattern::new(s)
            .map(MetricGlob)
            .map_err(|e| e.to_string())
    }
    /// True if the metric name matches.
    pub fn matches(&self, metric: &str) -> bool {
        self.0.matches(metric)
    }
    /// The glob text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// Which sides of the normal range a metric's rule reports (`direction`).
/// Findings carry a [`Side`]; `Both` is a rule's choice, never a finding's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Only increases.
    Up,
    /// Only decreases.
    Down,
    /// Both.
    #[default]
    Both,
}

impl Direction {
    /// True when a rule with this direction reports a deviation to `side`.
    pub const fn allows(self, side: Side) -> bool {
        matches!(
            (self, side),
            (Direction::Both, _) | (Direction::Up, Side::Up) | (Direction::Down, Side::Down)
        )
    }
}

/// One `[[metric]]` rule.
#[derive(Debug, Clone)]
pub struct MetricRule {
    /// Metric names this rule applies to.
    pub pattern: MetricGlob,
    /// Which deviations count.
    pub direction: Direction,
    /// Higher finds more; the threshold is `3.5 / sensitivity` noise units.
    pub sensitivity: f64,
    /// Periods of history before the statistical checks report anything.
    pub min_history: Option<usize>,
    /// A deviation smaller than this (in the metric's unit) is not reported.
    pub min_abs_change: f64,
    /// A deviation smaller than this fraction of expected is not reported.
    pub min_rel_change: f64,
    /// Static lower bound.
    pub lower_bound: Option<f64>,
    /// Static upper bound.
    pub upper_bound: Option<f64>,
    /// Maximum change against the previous period, in percent.
    pub max_pct_change: Option<f64>,
    /// This many equal consecutive values are stale.
    pub stale_periods: usize,
    /// A gap is reported once this many consecutive periods are absent; `None`:
    /// one period for daily and weekly data, an hour (at least 2 periods) for
    /// sub-daily data ([`MetricRule::missing_periods_for`]).
    pub missing_periods: Option<usize>,
    /// Model a weekly (and daily, for sub-daily data) shape.
    pub seasonality: bool,
    /// Value scale.
    pub scale: Scale,
    /// Checks that are switched off for this metric.
    pub disabled: Vec<Check>,
    /// Aggregates the metric is also detected on (`rollups`): each keeps
    /// the dimensions it names and sums (or averages) over the others.
    pub rollups: Vec<Rollup>,
    /// How a roll-up combines the series under it (`aggregate`); `None`:
    /// not said, a sum ([`MetricRule::rollup_aggregate`]).
    pub aggregate: Option<RollupAggregate>,
}

/// One `[[derived]]` metric: `num / den` of two exported metrics (not of
/// other derived ones), per period and per series key, at every level the
/// two exist (slices and roll-ups).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derived {
    /// The new metric's name.
    pub name: String,
    /// Numerator metric.
    pub num: String,
    /// Denominator metric.
    pub den: String,
}

/// One `rollups` entry: `"total"` (every dimension summed over) or a
/// dimension name (one series per value of it, summed over the others).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollup {
    /// Dimensions kept (empty: the total).
    pub keep: Vec<String>,
}

/// How a roll-up combines its series at a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollupAggregate {
    /// Amounts and counts.
    Sum,
    /// Means and rates (an average of the slices' values, unweighted).
    Mean,
}

impl MetricRule {
    /// The rule used when no `[[metric]]` matches.
    pub fn default_rule() -> MetricRule {
        MetricRule {
            pattern: MetricGlob(glob::Pattern::default()),
            direction: Direction::Both,
            sensitivity: raw::DEFAULT_SENSITIVITY,
            min_history: None,
            min_abs_change: raw::DEFAULT_MIN_ABS_CHANGE,
            min_rel_change: raw::DEFAULT_MIN_REL_CHANGE,
            lower_bound: None,
            upper_bound: None,
            max_pct_change: None,
            stale_periods: raw::DEFAULT_STALE_PERIODS,
            missing_periods: None,
            seasonality: raw::DEFAULT_SEASONALITY,
            scale: Scale::Auto,
            disabled: Vec::new(),
            rollups: Vec::new(),
            aggregate: None,
        }
    }

    /// How the metric's roll-ups combine its series: as `aggregate` says,
    /// else a sum.
    pub fn rollup_aggregate(&self) -> RollupAggregate {
        self.aggregate.unwrap_or(RollupAggregate::Sum)
    }

    /// Consecutive absent periods that make a `missing` finding at granularity `g`.
    pub fn missing_periods_for(&self, g: crate::model::Granularity) -> usize {
        self.missing_periods.unwrap_or_else(|| match g {
            crate::model::Granularity::Day | crate::model::Granularity::Week => {
                raw::DEFAULT_MISSING_PERIODS
            }
            _ => usize::try_from(raw::DEFAULT_MISSING_SUBDAILY_MS / g.step_ms().max(1))
                .unwrap_or(1)
                .max(2),
        })
    }

    /// True unless the rule switched `check` off.
    pub fn enabled(&self, check: Check) -> bool {
        !self.disabled.contains(&check)
    }
}

/// An address as the config and `--to` give it (`ana@example.com` or
/// `Ana <ana@example.com>`); `Err` says in words what is wrong with it
/// (lettre says only "Invalid input" when there is no @, for one).
pub fn parse_mailbox(v: &str) -> Result<lettre::message::Mailbox, String> {
    use lettre::address::AddressError;
    let err = match v.parse::<lettre::message::Mailbox>() {
        Ok(m) => return Ok(m),
        Err(e) => e,
    };
    let t = v.trim();
    // with a name, the address is the part in angle brackets
    let address = match (t.find('<'), t.rfind('>')) {
        (Some(a), Some(b)) if a < b => Some(t[a + 1..b].trim()),
        (None, None) => Some(t),
        _ => None,
    };
    let why = match address {
        _ if t.is_empty() => "it is empty".to_string(),
        None => "unbalanced < >".to_string(),
        Some(a) if !a.contains('@') => "no @".to_string(),
        Some(a) if a.starts_with('@') => "nothing before the @".to_string(),
        Some(a) if a.ends_with('@') => "nothing after the @".to_string(),
        Some(a) => match a.parse::<lettre::Address>() {
            Err(AddressError::InvalidUser) => {
                let user = a.rsplit_once('@').map_or(a, |(u, _)| u);
                format!("`{user}` before the @ is not a mailbox name")
            }
            Err(AddressError::InvalidDomain) => {
                let domain = a.rsplit_once('@').map_or(a, |(_, d)| d);
                format!("`{domain}` after the @ is not a domain")
            }
            Err(e) => e.to_string().to_lowercase(),
            // the address is fine: the name before it is not
            Ok(_) if a != t => {
                "the name before <…> needs quotes: \"Ana B.\" <ana@example.com>".to_string()
            }
            Ok(_) => err.to_string().to_lowercase(),
        },
    };
    Err(format!("`{v}` is not an email address ({why})"))
}

/// `[owners]`.
#[derive(Debug, Clone)]
pub struct OwnersConfig {
    /// Rules in file order; first match wins.
    pub rules: Vec<OwnerRule>,
    /// Who gets what no rule matches.
    pub default: Option<lettre::message::Mailbox>,
    /// `[[chat]]` names told about series whose rule names no `chat`.
    pub default_chat: Vec<String>,
}

/// One `[[owners.rule]]`.
#[derive(Debug, Clone)]
pub struct OwnerRule {
    /// Metric names.
    pub pattern: MetricGlob,
    /// Dimension values that must match exactly.
    pub dims: Vec<(String, String)>,
    /// The owner; `None` for a rule that only posts to chat.
    pub email: Option<lettre::message::Mailbox>,
    /// `[[chat]]` names the series' messages are posted to.
    pub chat: Vec<String>,
    /// Who hears about this owner's unexplained incidents after the deadline
    /// (e.g. a manager); overrides `reminders.escalate_to`.
    pub escalate_to: Option<lettre::message::Mailbox>,
}

impl OwnersConfig {
    /// The first rule matching a series, if any.
    pub fn rule_of(&self, key: &crate::model::SeriesKey) -> Option<&OwnerRule> {
        self.rules.iter().find(|r| {
            r.pattern.matches(&key.metric) && r.dims.iter().all(|(k, v)| key.dim(k) == Some(v))
        })
    }

    /// The owner of a series: first matching rule, else the default.
    pub fn owner_of(&self, key: &crate::model::SeriesKey) -> Option<&lettre::message::Mailbox> {
        match self.rule_of(key) {
            Some(r) => r.email.as_ref(),
            None => self.default.as_ref(),
        }
    }

    /// The `[[chat]]` names a series' messages go to: its rule's `chat`,
    /// else `owners.default_chat`.
    pub fn chat_of(&self, key: &crate::model::SeriesKey) -> &[String] {
        match self.rule_of(key) {
            Some(r) if !r.chat.is_empty() => &r.chat,
            _ => &self.default_chat,
        }
    }
}

/// SMTP connection security.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain connection upgraded with STARTTLS (required).
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption, for local relays.
    None,
}

/// `[smtp]`.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// Server host name.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Connection security.
    pub security: Security,
    /// Login name; authentication is used only when set.
    pub username: Option<String>,
    /// Where the password comes from (never inline).
    pub password: Option<Secret>,
    /// Sender.
    pub from: lettre::message::Mailbox,
    /// Where replies go.
    pub reply_to: Option<lettre::message::Mailbox>,
    /// Value of the List-Id header.
    pub list_id: Option<String>,
    /// Connect and send timeout.
    pub timeout: Duration,
    /// Extra CA trusted for the server's certificate (`ca_file`), for relays
    /// with a private or self-signed CA; the public roots stay trusted too.
    pub ca: Option<CaFile>,
}

/// A CA certificate file (`smtp.ca_file`), read and checked when the config
/// is compiled so `check-config` reports a bad file.
#[derive(Debug, Clone)]
pub struct CaFile {
    /// Where it was read from (resolved against the config file's folder).
    pub path: PathBuf,
    /// Every certificate in the file, as lettre takes them.
    pub certificate: lettre::transport::smtp::client::Certificate,
}

/// `[[chat]]`: one Slack or Teams channel, reached by its incoming webhook.
#[derive(Debug, Clone)]
pub struct ChatConfig {
    /// What owner rules call it (`chat = "wbr"`).
    pub name: String,
    /// The payload it takes.
    pub kind: ChatKind,
    /// The webhook URL: a secret (it alone lets anyone post), read at send
    /// time, never logged or stored.
    pub webhook: Secret,
    /// How long the webhook may take to answer.
    pub timeout: Duration,
}

/// Which chat a `[[chat]]` posts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatKind {
    /// A Slack incoming webhook: Block Kit `blocks`.
    Slack,
    /// A Microsoft Teams Workflows webhook: an Adaptive Card.
    Teams,
}

impl ChatKind {
    /// The word in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            ChatKind::Slack => "slack",
            ChatKind::Teams => "teams",
        }
    }
}

impl Config {
    /// The `[[chat]]` called `name`.
    pub fn chat_named(&self, name: &str) -> Option<&ChatConfig> {
        self.chat.iter().find(|c| c.name == name)
    }
}

/// Where a secret is read from, at send time.
#[derive(Debug, Clone, PartialEq)]
pub enum Secret {
    /// An environment variable's name.
    Env(String),
    /// A file whose content (trimmed) is the secret.
    File(PathBuf),
}

impl Secret {
    /// Where the secret comes from, for messages: "environment variable `X`".
    pub fn describe(&self) -> String {
        match self {
            Secret::Env(var) => format!("environment variable `{var}`"),
            Secret::File(path) => format!("file `{}`", path.display()),
        }
    }

    /// Read it now (a rotated secret needs no restart), trimmed. `Err` says
    /// what went wrong, without the secret.
    pub fn read(&self) -> Result<String, String> {
        let value = match self {
            Secret::Env(var) => std::env::var(var).map_err(|e| e.to_string())?,
            Secret::File(path) => std::fs::read_to_string(path).map_err(|e| e.to_string())?,
        };
        let value = value.trim().to_string();
        if value.is_empty() {
            return Err("it is empty".into());
        }
        Ok(value)
    }
}

/// `[alerts]`.
#[derive(Debug, Clone)]
pub struct AlertsConfig {
    /// An incident closes after this many normal periods in a row.
    pub close_after_periods: u32,
    /// ... and, for sub-daily series, not before this many quiet hours: a
    /// 5-minute series that flares up again an hour later is one episode.
    pub close_after_hours: u32,
    /// First retry delay of a failed send; doubles per attempt.
    pub retry_base: Duration,
    /// How many days back a scheduled run catches up on periods it has not
    /// reported on (older ones are counted as skipped, not asked about).
    pub catch_up_days: u32,
}

/// `[reminders]`; absent: no reminders, and escalation only to owner rules' `escalate_to`.
#[derive(Debug, Clone, Default)]
pub struct RemindersConfig {
    /// Remind owners this long before the deadline; `None`: no reminders.
    pub before_deadline: Option<chrono::Duration>,
    /// Where the escalation after the deadline goes when the owner's rule
    /// names no `escalate_to`; `None` (and no rule's): no escalation.
    pub escalate_to: Option<lettre::message::Mailbox>,
}

/// One `[[calendar]]`.
#[derive(Debug, Clone)]
pub struct CalendarConfig {
    /// Name, referenced by `detection.calendar`.
    pub name: String,
    /// Built-in recurring holidays (see [`crate::model::Holiday::BUILTIN`]).
    pub holidays: Vec<crate::model::Holiday>,
    /// Extra dates: `MM-DD` recurs every year, `YYYY-MM-DD` once.
    pub dates: Vec<CalendarDate>,
    /// Series whose dimensions match these values use this calendar.
    pub dims: Vec<(String, String)>,
}

/// A user-listed calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalendarDate {
    /// Every year on this month and day.
    Yearly(u32, u32),
    /// Once.
    Once(NaiveDate),
}

/// What an event does to findings in its period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventAction {
    /// Findings in the period are not reported.
    Excuse,
    /// Findings are reported with the event's name attached.
    Annotate,
}

/// One `[[event]]`.
#[derive(Debug, Clone)]
pub struct EventConfig {
    /// Shown in findings and emails.
    pub name: String,
    /// First day.
    pub start: NaiveDate,
    /// Last day (inclusive).
    pub end: NaiveDate,
    /// Metrics concerned.
    pub pattern: MetricGlob,
    /// Dimension values that must match.
    pub dims: Vec<(String, String)>,
    /// Excuse or annotate.
    pub action: EventAction,
}

/// Days a link stays valid after the review its incident is due for, by default.
pub const DEFAULT_LINK_VALID_DAYS: i64 = 14;

/// Where the key that signs links comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum KeySource {
    /// `secret_file` or `secret_env`: the operator manages the key.
    Secret(Secret),
    /// Neither: a random key created once at this path (beside the store), mode 0600.
    Generated(PathBuf),
}

/// `[web]`.
#[derive(Debug, Clone, PartialEq)]
pub struct WebConfig {
    /// Address the server binds, e.g. `127.0.0.1:8080`.
    pub listen: std::net::SocketAddr,
    /// Base URL links in emails start with, without a trailing slash
    /// (the TLS reverse proxy's address, e.g. `https://callout.example.com`).
    pub public_url: String,
    /// The link-signing key.
    pub key: KeySource,
    /// A link expires this many days after the review its incident is due for.
    pub link_valid_days: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rule reports the sides its direction names, `both` either.
    #[test]
    fn direction_allows_its_sides() {
        let cases = [
            (Direction::Up, true, false),
            (Direction::Down, false, true),
            (Direction::Both, true, true),
        ];
        for (d, up, down) in cases {
            assert_eq!(d.allows(Side::Up), up, "{d:?} up");
            assert_eq!(d.allows(Side::Down), down, "{d:?} down");
        }
    }
}
