//! Raw config → checked [`Config`], collecting every problem.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono::{NaiveDate, NaiveTime, Weekday};
use chrono_tz::Tz;

use std::ops::Bound::{self, Excluded, Included, Unbounded};
use std::ops::{RangeBounds, RangeInclusive};

use serde::de::DeserializeOwned;

use super::fields;
use super::raw::{self, RawConfig};
use super::*;
use crate::model::{Check, Direction, Granularity};

/// Read and compile the config file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    compile_str(&text, path, &|k| std::env::var(k).ok())
}

/// Compile config text; `path` names the file in errors and anchors relative paths;
/// `env` looks up `${VAR}` references.
pub fn compile_str(
    text: &str,
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let mut c = Compiler {
        problems: Vec::new(),
        base: path.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    let text = c.substitute_env(text, env);
    let table = match text.parse::<toml::Table>() {
        Ok(t) => t,
        // after a `${VAR}` that could not go in, the hole is the likely
        // cause: say that, not what the parser makes of it
        Err(_) if !c.problems.is_empty() => return Err(c.fail(path)),
        Err(e) => {
            c.problem("(file)", one_line(&e.to_string()));
            return Err(c.fail(path));
        }
    };
    let Some(raw) = c.deserialize::<RawConfig>(toml::Value::Table(table)) else {
        return Err(c.fail(path));
    };
    let cfg = c.config(raw, path);
    if c.problems.is_empty() {
        Ok(cfg)
    } else {
        Err(c.fail(path))
    }
}

fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// serde_ignored writes `metric.3.sensitivty` and `detection.?.fdrr` (the `?` is
/// an `Option`); show them as `metric[3].sensitivty` and `detection.fdrr`.
fn fix_path(p: &str) -> String {
    let mut out = String::new();
    for part in p.split('.').filter(|part| *part != "?") {
        if part.chars().all(|c| c.is_ascii_digit()) && !out.is_empty() {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        }
    }
    out
}

/// `v` escaped for a TOML basic string (`"…"` or `"""…"""`): backslash, quote
/// and every control character but tab, so a line break stays in the value.
fn escape_basic(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push('\t'),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// `Ok` for an http:// or https:// URL with a host; else what is wrong, in
/// words that start with the URL (for a message that goes on with an example).
fn http_url(u: &str) -> Result<(), String> {
    if !(u.starts_with("http://") || u.starts_with("https://")) {
        return Err(format!("must start with http:// or https://, got {u:?}"));
    }
    match url::Url::parse(u) {
        Ok(p) if p.host_str().is_some_and(|h| !h.is_empty()) => Ok(()),
        Ok(_) | Err(url::ParseError::EmptyHost) => {
            Err(format!("{u:?} is not a URL: it names no host"))
        }
        Err(e) => Err(format!("{u:?} is not a URL: {e}")),
    }
}

/// The table keys of a path serde_ignored reports, outermost first (array
/// indices and options left out): `metric.3.bounds.lowr` → metric, bounds, lowr.
fn table_keys(p: &serde_ignored::Path<'_>) -> Vec<String> {
    use serde_ignored::Path;
    match p {
        Path::Root => Vec::new(),
        Path::Map { parent, key } => {
            let mut keys = table_keys(parent);
            keys.push(key.clone());
            keys
        }
        Path::Seq { parent, .. }
        | Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => table_keys(parent),
    }
}

/// Keys that were removed, with what to do instead (shown in place of "unknown key").
const REMOVED_KEYS: &[(&str, &str)] = &[(
    "alerts.max_attempts_per_run",
    "unknown key (removed: every run retries each due digest once, with backoff from alerts.retry_base_secs)",
)];

/// Wraps a value back into its place in the document, so a part can be tried alone.
type Wrap<'a> = &'a dyn Fn(toml::Value) -> toml::Value;

/// `Ok` when `v`, placed by `wrap`, deserializes as `T`; else serde's message.
fn fits<T: DeserializeOwned>(wrap: Wrap<'_>, v: toml::Value) -> Result<(), String> {
    T::deserialize(wrap(v))
        .map(|_| ())
        .map_err(|e| one_line(e.message()))
}

fn key_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// An allowed integer range and its unit (shown in messages).
type IntRange = (RangeInclusive<i64>, &'static str);
const RUN_TIMEOUT_SECS: IntRange = (1..=7 * 86_400, " seconds");
const SOURCE_TIMEOUT_SECS: IntRange = (1..=86_400, " seconds");
/// 1 byte to 1 TiB.
const MAX_DOWNLOAD_BYTES: IntRange = (1..=1 << 40, " bytes");
const SQL_HISTORY_DAYS: IntRange = (1..=36_500, " days");
const HEADER_ROW: IntRange = (1..=1_048_576, "");
const SMTP_TIMEOUT_SECS: IntRange = (1..=3_600, " seconds");
/// 0: retry on every run, without waiting.
const RETRY_BASE_SECS: IntRange = (0..=86_400, " seconds");
const EXPLANATIONS_DUE_HOURS: IntRange = (0..=6 * 24, " hours");
const MIN_HISTORY: IntRange = (1..=100_000, " periods");
const STALE_PERIODS: IntRange = (2..=10_000, " periods");
const MISSING_PERIODS: IntRange = (1..=100_000, " periods");
const CLOSE_AFTER_PERIODS: IntRange = (1..=1_000, " periods");
const CATCH_UP_DAYS: IntRange = (1..=366, " days");
const REMINDER_HOURS: IntRange = (0..=336, " hours (0: no reminders; at most two weeks)");
const PORT: IntRange = (1..=65_535, "");

/// An allowed float range: `(low, high)` bounds.
type FloatRange = (Bound<f64>, Bound<f64>);
const FDR: FloatRange = (Excluded(0.0), Excluded(1.0));
/// `detection.memory_budget`: at least 1 MB (below that the program itself
/// outweighs the rows), at most 1 PB.
const MEMORY_BUDGET: (u64, u64) = (1_000_000, 1_000_000_000_000_000);
/// A huge delay switches the late check off (tests and exports without a
/// deadline do that); the cap keeps `Duration` and milliseconds far from overflow.
const EXPECTED_DELAY_HOURS: FloatRange = (Included(0.0), Included(1e6));
const SENSITIVITY: FloatRange = (Excluded(0.0), Included(1_000.0));
const NON_NEGATIVE: FloatRange = (Included(0.0), Included(f64::MAX));
const MAX_PCT_CHANGE: FloatRange = (Excluded(0.0), Included(1e9));
const FINITE: FloatRange = (Included(f64::MIN), Included(f64::MAX));

/// A number as a person writes it: `1e300`, not 301 digits.
fn num(x: f64) -> String {
    if x != 0.0 && x.is_finite() && !(1e-4..1e15).contains(&x.abs()) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

/// `(Excluded(0), Included(10))` → "> 0 and <= 10"; the f64 limits are left unsaid.
fn describe(r: &FloatRange) -> String {
    let lo = match r.0 {
        Included(x) if x == f64::MIN => None,
        Included(x) => Some(format!(">= {}", num(x))),
        Excluded(x) => Some(format!("> {}", num(x))),
        Unbounded => None,
    };
    let hi = match r.1 {
        Included(x) if x == f64::MAX => None,
        Included(x) => Some(format!("<= {}", num(x))),
        Excluded(x) => Some(format!("< {}", num(x))),
        Unbounded => None,
    };
    match (lo, hi) {
        (Some(l), Some(h)) => format!("{l} and {h}"),
        (Some(x), None) | (None, Some(x)) => format!("finite and {x}"),
        (None, None) => "a finite number".into(),
    }
}

struct Compiler {
    problems: Vec<ConfigProblem>,
    base: PathBuf,
}

impl Compiler {
    fn problem(&mut self, key: &str, message: String) {
        // A value dropped for its type would be reported again as missing:
        // the first problem of a key is the one that says what is wrong.
        if key != "(file)"
            && !key.starts_with("line ")
            && self.problems.iter().any(|p| p.key == key)
        {
            return;
        }
        self.problems.push(ConfigProblem {
            key: key.to_string(),
            message,
        });
    }

    fn fail(&mut self, path: &Path) -> ConfigError {
        ConfigError::Invalid {
            path: path.to_path_buf(),
            problems: std::mem::take(&mut self.problems),
        }
    }

    /// Deserialize the whole document, reporting *every* type error and unknown key.
    ///
    /// serde stops at the first error, so on failure each part is tried alone
    /// (placed back where it was, everything else left out): the parts that fail
    /// on their own are reported with their key path and dropped, and the rest is
    /// deserialized again so that the semantic checks still run on it.
    fn deserialize<T: DeserializeOwned>(&mut self, v: toml::Value) -> Option<T> {
        let root: Wrap<'_> = &|x| x;
        let v = if fits::<T>(root, v.clone()).is_ok() {
            v
        } else {
            self.prune::<T>("", v, root)?
        };
        let mut unknown = Vec::new();
        let raw = match serde_ignored::deserialize(v, |p| {
            unknown.push((fix_path(&p.to_string()), table_keys(&p)));
        }) {
            Ok(r) => Some(r),
            Err(e) => {
                self.problem("(file)", one_line(e.message()));
                None
            }
        };
        for (k, mut keys) in unknown {
            let message = match REMOVED_KEYS.iter().find(|(removed, _)| *removed == k) {
                Some((_, m)) => m.to_string(),
                None => {
                    let typed = keys.pop().unwrap_or_default();
                    match fields::suggestion(&typed, fields::keys_at::<T>(&keys)) {
                        Some(meant) => format!("unknown key; did you mean `{meant}`?"),
                        None => "unknown key".to_string(),
                    }
                }
            };
            self.problem(&k, message);
        }
        raw
    }

    /// `v` (at `path`, placed by `wrap`) does not fit `T`: report the smallest
    /// parts that do not, and return `v` without them (`None`: drop `v` itself).
    fn prune<T: DeserializeOwned>(
        &mut self,
        path: &str,
        v: toml::Value,
        wrap: Wrap<'_>,
    ) -> Option<toml::Value> {
        let empty_table = || toml::Value::Table(toml::Table::new());
        match v {
            // An empty container that fits means the container's type is right
            // and the fault is inside it.
            toml::Value::Table(t) if fits::<T>(wrap, empty_table()).is_ok() => {
                let mut kept = toml::Table::new();
                for (k, x) in t {
                    let inner = |y| {
                        let mut one = toml::Table::new();
                        one.insert(k.clone(), y);
                        wrap(toml::Value::Table(one))
                    };
                    let x = if fits::<T>(&inner, x.clone()).is_ok() {
                        Some(x)
                    } else {
                        self.prune::<T>(&key_path(path, &k), x, &inner)
                    };
                    if let Some(x) = x {
                        kept.insert(k, x);
                    }
                }
                Some(toml::Value::Table(kept))
            }
            toml::Value::Array(a) if fits::<T>(wrap, toml::Value::Array(Vec::new())).is_ok() => {
                let mut kept = Vec::new();
                for (i, x) in a.into_iter().enumerate() {
                    let inner = |y| wrap(toml::Value::Array(vec![y]));
                    let x = if fits::<T>(&inner, x.clone()).is_ok() {
                        Some(x)
                    } else {
                        self.prune::<T>(&format!("{path}[{i}]"), x, &inner)
                    };
                    kept.extend(x);
                }
                Some(toml::Value::Array(kept))
            }
            v => {
                let message = fits::<T>(wrap, v).err().unwrap_or_default();
                self.problem(if path.is_empty() { "(file)" } else { path }, message);
                None
            }
        }
    }

    /// One of a fixed set of words → its enum value; anything else is a problem
    /// listing the choices.
    fn choice<T: Copy>(
        &mut self,
        key: &str,
        v: Option<&str>,
        choices: &[(&str, T)],
        default: T,
    ) -> T {
        let Some(v) = v else { return default };
        match choices.iter().find(|(word, _)| *word == v) {
            Some((_, t)) => *t,
            None => {
                let words: Vec<String> = choices.iter().map(|(w, _)| format!("{w:?}")).collect();
                self.problem(
                    key,
                    format!("must be one of {}, got {v:?}", words.join(", ")),
                );
                default
            }
        }
    }

    /// An integer key within `range`; `None` when absent or out of range (reported).
    fn int(&mut self, key: &str, v: Option<i64>, range: IntRange) -> Option<i64> {
        let v = v?;
        let (range, unit) = range;
        if range.contains(&v) {
            Some(v)
        } else {
            self.problem(
                key,
                format!(
                    "must be between {} and {}{unit}, got {v}",
                    range.start(),
                    range.end()
                ),
            );
            None
        }
    }

    /// A number of seconds within `range` as a `Duration`, else `default`.
    fn secs(&mut self, key: &str, v: Option<i64>, range: IntRange, default: u64) -> Duration {
        Duration::from_secs(self.int(key, v, range).map_or(default, i64::unsigned_abs))
    }

    /// A float key within `range`; `None` when absent or out of range (reported).
    fn float(&mut self, key: &str, v: Option<f64>, range: FloatRange) -> Option<f64> {
        let v = v?;
        if range.contains(&v) {
            Some(v)
        } else {
            self.problem(key, format!("must be {}, got {}", describe(&range), num(v)));
            None
        }
    }

    /// Replace `${VAR}` in values, never in comments. In a basic string the value
    /// is escaped for TOML; in a literal string (`'…'`) it goes in as it is,
    /// because TOML reads no escapes there.
    fn substitute_env(&mut self, text: &str, env: &dyn Fn(&str) -> Option<String>) -> String {
        #[derive(Clone, Copy, PartialEq)]
        enum At {
            Bare,
            Comment,
            Basic,
            MultiBasic,
            Literal,
            MultiLiteral,
        }
        let mut out = String::with_capacity(text.len());
        let mut at = At::Bare;
        let mut line = 1;
        let mut rest = text;
        while let Some(ch) = rest.chars().next() {
            let starts = |p: &str| rest.starts_with(p);
            // how many bytes to copy as they are, and the state after them
            let (take, next) = match at {
                At::Bare if ch == '#' => (1, At::Comment),
                At::Bare if starts("\"\"\"") => (3, At::MultiBasic),
                At::Bare if ch == '"' => (1, At::Basic),
                At::Bare if starts("'''") => (3, At::MultiLiteral),
                At::Bare if ch == '\'' => (1, At::Literal),
                At::Comment if ch == '\n' => (1, At::Bare),
                At::Basic | At::MultiBasic if ch == '\\' => {
                    (1 + rest[1..].chars().next().map_or(0, char::len_utf8), at)
                }
                At::Basic if ch == '"' || ch == '\n' => (1, At::Bare),
                At::MultiBasic if starts("\"\"\"") => (3, At::Bare),
                At::Literal if ch == '\'' || ch == '\n' => (1, At::Bare),
                At::MultiLiteral if starts("'''") => (3, At::Bare),
                _ if at != At::Comment && starts("${") => {
                    if let Some(j) = rest.find('}').filter(|j| !rest[..*j].contains('\n')) {
                        let name = &rest[2..j];
                        match env(name) {
                            Some(v) if matches!(at, At::Basic | At::MultiBasic) => {
                                out.push_str(&escape_basic(&v));
                            }
                            // TOML has no way to write a line break there
                            Some(v) if at != At::MultiLiteral && v.contains(['\n', '\r']) => {
                                let place = if at == At::Literal {
                                    "a 'literal' string"
                                } else {
                                    "a value outside quotes"
                                };
                                self.problem(
                                    &format!("line {line}"),
                                    format!("environment variable `{name}` holds a line break, which {place} cannot hold; write \"${{{name}}}\" (in a \"basic\" string it is escaped)"),
                                );
                            }
                            Some(v) => out.push_str(&v),
                            None => self.problem(
                                &format!("line {line}"),
                                format!("environment variable `{name}` is not set (referenced as ${{{name}}})"),
                            ),
                        }
                        rest = &rest[j + 1..];
                        continue;
                    }
                    (2, at)
                }
                _ => (ch.len_utf8(), at),
            };
            let take = take.min(rest.len());
            line += rest[..take].matches('\n').count();
            out.push_str(&rest[..take]);
            rest = &rest[take..];
            at = next;
        }
        out
    }

    fn path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }

    fn tz(&mut self, key: &str, v: Option<&str>) -> Tz {
        let Some(v) = v else { return Tz::UTC };
        match Tz::from_str(v) {
            Ok(t) => t,
            Err(_) => {
                self.problem(
                    key,
                    format!("unknown IANA timezone {v:?} (e.g. \"Europe/London\", \"UTC\")"),
                );
                Tz::UTC
            }
        }
    }

    fn glob(&mut self, key: &str, v: Option<&str>) -> MetricGlob {
        let v = v.unwrap_or("*");
        match MetricGlob::new(v) {
            Ok(g) => g,
            Err(e) => {
                self.problem(key, format!("bad glob {v:?}: {e}"));
                star()
            }
        }
    }

    fn mailbox(&mut self, key: &str, v: &str) -> Option<lettre::message::Mailbox> {
        match parse_mailbox(v) {
            Ok(m) => Some(m),
            Err(e) => {
                self.problem(key, format!("{e}; e.g. \"Ana <ana@example.com>\""));
                None
            }
        }
    }

    fn dims(&mut self, m: BTreeMap<String, String>) -> Vec<(String, String)> {
        m.into_iter().collect()
    }

    fn config(&mut self, raw: RawConfig, path: &Path) -> Config {
        let store_path = self.path(
            raw.store
                .as_ref()
                .and_then(|s| s.path.as_deref())
                .unwrap_or(raw::DEFAULT_STORE_PATH),
        );
        let schedule = self.schedule(raw.schedule);
        let review = self.review(raw.review);
        let detection = self.detection(raw.detection);
        if raw.source.is_empty() {
            self.problem("source", "at least one [[source]] is required".into());
        }
        let mut sources: Vec<SourceConfig> = Vec::new();
        for (i, s) in raw.source.into_iter().enumerate() {
            if let Some(s) = self.source(i, s) {
                if sources.iter().any(|o| o.name == s.name) {
                    self.problem(
                        &format!("source[{i}].name"),
                        format!("duplicate source name {:?}", s.name),
                    );
                }
                sources.push(s);
            }
        }
        let metrics = raw
            .metric
            .into_iter()
            .enumerate()
            .map(|(i, m)| self.metric(i, m))
            .collect();
        let owners = self.owners(raw.owners);
        let smtp = raw.smtp.and_then(|s| self.smtp(s));
        let alerts = self.alerts(raw.alerts);
        let reminders = self.reminders(raw.reminders);
        let calendars = raw
            .calendar
            .into_iter()
            .enumerate()
            .map(|(i, c)| self.calendar(i, c))
            .collect::<Vec<_>>();
        if detection.default_calendar != "default"
            && detection.default_calendar != "none"
            && !calendars
                .iter()
                .any(|c: &CalendarConfig| c.name == detection.default_calendar)
        {
            self.problem(
                "detection.calendar",
                format!(
                    "no [[calendar]] named {:?} (built in: \"default\", \"none\")",
                    detection.default_calendar
                ),
            );
        }
        let events = raw
            .event
            .into_iter()
            .enumerate()
            .filter_map(|(i, e)| self.event(i, e))
            .collect();
        let web = raw.web.and_then(|w| self.web(w, &store_path));
        let mut report_problems = Vec::new();
        let mut report =
            super::report::compile(raw.report, raw.plan, &|p| self.path(p), &mut |k, m| {
                report_problems.push((k.to_string(), m));
            });
        for (k, m) in report_problems {
            self.problem(&k, m);
        }
        report.header_units = header_units(&sources);
        let mut default_rule = MetricRule::default_rule();
        default_rule.pattern = star();
        Config {
            path: path.to_path_buf(),
            store_path,
            schedule,
            review,
            detection,
            sources,
            metrics,
            default_rule,
            owners,
            smtp,
            alerts,
            reminders,
            calendars,
            events,
            web,
            report,
        }
    }

    /// `[web]`; the generated key lives beside the store, so both move together.
    fn web(&mut self, w: raw::RawWeb, store_path: &Path) -> Option<WebConfig> {
        let listen = match w.listen.as_deref() {
            None => {
                self.problem(
                    "web.listen",
                    "missing: the address to serve on, e.g. \"127.0.0.1:8080\"".into(),
                );
                None
            }
            Some(l) => match l.parse::<std::net::SocketAddr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    self.problem(
                        "web.listen",
                        format!("not an IP address and port {l:?} (e.g. \"127.0.0.1:8080\" or \"[::1]:8080\")"),
                    );
                    None
                }
            },
        };
        let public_url = match w.public_url.as_deref().map(str::trim) {
            None => {
                self.problem(
                    "web.public_url",
                    "missing: the base URL owners open links at, e.g. \"https://callout.example.com\"".into(),
                );
                None
            }
            Some(u) => match http_url(u) {
                Ok(()) if !u.contains(['?', '#', ' ']) => Some(u.trim_end_matches('/').to_string()),
                Ok(()) => {
                    self.problem(
                        "web.public_url",
                        format!("not a base URL {u:?} (no query or fragment, e.g. \"https://callout.example.com\")"),
                    );
                    None
                }
                Err(e) => {
                    self.problem(
                        "web.public_url",
                        format!("{e}, e.g. \"https://callout.example.com\""),
                    );
                    None
                }
            },
        };
        let key = match (w.secret_file, w.secret_env) {
            (Some(_), Some(_)) => {
                self.problem(
                    "web.secret_file",
                    "give secret_file or secret_env, not both (or neither: a key is generated beside the store)".into(),
                );
                None
            }
            (Some(f), None) => Some(KeySource::Secret(Secret::File(self.path(&f)))),
            (None, Some(e)) => Some(KeySource::Secret(Secret::Env(e))),
            (None, None) => {
                let dir = store_path.parent().unwrap_or(Path::new(""));
                Some(KeySource::Generated(dir.join("callout-web.key")))
            }
        };
        let link_valid_days = match w.link_valid_days {
            Some(d) if !(1..=366).contains(&d) => {
                self.problem(
                    "web.link_valid_days",
                    format!("must be between 1 and 366, got {d}"),
                );
                DEFAULT_LINK_VALID_DAYS
            }
            Some(d) => d,
            None => DEFAULT_LINK_VALID_DAYS,
        };
        Some(WebConfig {
            listen: listen?,
            public_url: public_url?,
            key: key?,
            link_valid_days,
        })
    }

    fn schedule(&mut self, raw: Option<raw::RawSchedule>) -> ScheduleConfig {
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

    fn review(&mut self, raw: Option<raw::RawReview>) -> ReviewConfig {
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

    fn detection(&mut self, raw: Option<raw::RawDetection>) -> DetectionConfig {
        let raw = raw.unwrap_or_default();
        DetectionConfig {
            fdr: self
                .float("detection.fdr", raw.fdr, FDR)
                .unwrap_or(raw::DEFAULT_FDR),
            default_calendar: raw.calendar.unwrap_or_else(|| raw::DEFAULT_CALENDAR.into()),
            memory_budget: raw
                .memory_budget
                .and_then(|b| self.bytes("detection.memory_budget", &b, MEMORY_BUDGET)),
        }
    }

    /// A size such as `"512MB"`, `"1.5 GiB"` or `"200000000"` (bytes) within
    /// `range`; `None` when it is not one (reported).
    fn bytes(&mut self, key: &str, text: &str, range: (u64, u64)) -> Option<u64> {
        const UNITS: &[(&str, f64)] = &[
            ("", 1.0),
            ("b", 1.0),
            ("kb", 1e3),
            ("mb", 1e6),
            ("gb", 1e9),
            ("tb", 1e12),
            ("kib", 1024.0),
            ("mib", 1_048_576.0),
            ("gib", 1_073_741_824.0),
            ("tib", 1_099_511_627_776.0),
        ];
        let t = text.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (number, unit) = t.split_at(split);
        let unit = unit.trim().to_ascii_lowercase();
        let bytes = number
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .and_then(|n| UNITS.iter().find(|u| u.0 == unit).map(|u| n * u.1));
        let Some(bytes) = bytes else {
            self.problem(
                key,
                format!("must be a size such as \"512MB\" or \"2GiB\" (units B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), got {text:?}"),
            );
            return None;
        };
        #[allow(clippy::cast_precision_loss, reason = "the bounds are exact in f64")]
        let fits = (range.0 as f64..=range.1 as f64).contains(&bytes);
        if fits {
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "within the range, far below 2^53 bytes"
            )]
            let b = bytes.round() as u64;
            Some(b)
        } else {
            self.problem(
                key,
                format!(
                    "must be between 1MB and 1000TB, got {text:?} ({} bytes)",
                    num(bytes)
                ),
            );
            None
        }
    }

    fn source(&mut self, i: usize, s: raw::RawSource) -> Option<SourceConfig> {
        let k = |f: &str| format!("source[{i}].{f}");
        let name = s.name.clone().unwrap_or_else(|| format!("source{i}"));
        let location = match (s.path.clone(), s.url.clone(), s.sql.clone()) {
            (Some(p), None, None) if p.starts_with("s3://") => Location::S3(self.s3_source(
                &k,
                p,
                s.endpoint_url.clone(),
                s.region.clone(),
                s.path_style,
            )?),
            (Some(p), None, None) => {
                if let Some((scheme, _)) = p.split_once("://") {
                    self.problem(
                        &k("path"),
                        format!(
                            "{scheme}:// is not a source kind: give a file or glob, s3://bucket/key, or an HTTP(S) address as `url`"
                        ),
                    );
                }
                Location::Path(self.path(&p).to_string_lossy().into_owned())
            }
            (None, Some(u), None) => {
                if let Err(e) = http_url(&u) {
                    self.problem(
                        &k("url"),
                        format!("{e}, e.g. \"https://reports.example.com/wbr.csv\""),
                    );
                }
                Location::Url(u)
            }
            (None, None, Some(q)) => Location::Sql(self.sql_source(
                &k,
                q,
                s.url_env.clone(),
                s.url_file.clone(),
                s.history_days,
            )?),
            (None, None, None) => {
                self.problem(
                    &k("path"),
                    "missing: give `path` (file or glob), `url` or `sql`".into(),
                );
                return None;
            }
            _ => {
                self.problem(
                    &k("path"),
                    "give one of `path`, `url` or `sql`, not several".into(),
                );
                return None;
            }
        };
        if !matches!(location, Location::Sql(_)) {
            for (key, given) in [
                ("url_env", s.url_env.is_some()),
                ("url_file", s.url_file.is_some()),
                ("history_days", s.history_days.is_some()),
            ] {
                if given {
                    self.problem(&k(key), "only for SQL sources (`sql = …`)".into());
                }
            }
        }
        if !matches!(location, Location::S3(_)) {
            for (key, given) in [
                ("endpoint_url", s.endpoint_url.is_some()),
                ("region", s.region.is_some()),
                ("path_style", s.path_style.is_some()),
            ] {
                if given {
                    self.problem(
                        &k(key),
                        "only for S3 sources (`path = \"s3://bucket/key\"`)".into(),
                    );
                }
            }
        }
        let target = match &location {
            Location::Path(p) | Location::Url(p) => p.to_ascii_lowercase(),
            Location::S3(s3) => s3.key.to_ascii_lowercase(),
            Location::Sql(_) => String::new(),
        };
        let from_extension = || {
            let t = target.split('?').next().unwrap_or("");
            if t.ends_with(".parquet") || t.ends_with(".pq") {
                Format::Parquet
            } else if [".xlsx", ".xlsm", ".xlsb", ".xls", ".ods"]
                .iter()
                .any(|e| t.ends_with(e))
            {
                Format::Workbook
            } else if t.ends_with(".ndjson") || t.ends_with(".jsonl") || t.ends_with(".json") {
                Format::Ndjson
            } else {
                Format::Csv
            }
        };
        let format = self.choice(
            &k("format"),
            s.format.as_deref(),
            &[
                ("csv", Format::Csv),
                ("parquet", Format::Parquet),
                ("ndjson", Format::Ndjson),
                ("jsonl", Format::Ndjson),
                ("json", Format::Ndjson),
                ("xlsx", Format::Workbook),
                ("xls", Format::Workbook),
                ("ods", Format::Workbook),
                ("excel", Format::Workbook),
                ("workbook", Format::Workbook),
            ],
            from_extension(),
        );
        let dialect = self.dialect(&k, &s, format, &location);
        #[derive(Clone, Copy)]
        enum Shape {
            Long,
            Wide,
        }
        let shape = self.choice(
            &k("layout"),
            Some(s.layout.as_deref().unwrap_or(raw::DEFAULT_LAYOUT)),
            &[("long", Shape::Long), ("wide", Shape::Wide)],
            Shape::Long,
        );
        let layout = match shape {
            Shape::Long => {
                if s.metrics.is_some() {
                    self.problem(&k("metrics"), "only for layout = \"wide\"".into());
                }
                let metric = match (s.metric_column, s.metric) {
                    (Some(_), Some(m)) => {
                        self.problem(
                            &k("metric"),
                            "give either metric_column (the column naming each row's metric) or metric (one metric for every row), not both".into(),
                        );
                        MetricName::Fixed(m)
                    }
                    (None, Some(m)) => {
                        if m.trim().is_empty() {
                            self.problem(
                                &k("metric"),
                                "must not be empty: the metric's name, e.g. \"signups\"".into(),
                            );
                        }
                        MetricName::Fixed(m)
                    }
                    (c, None) => {
                        MetricName::Column(c.unwrap_or_else(|| raw::DEFAULT_METRIC_COLUMN.into()))
                    }
                };
                Layout::Long {
                    metric,
                    value_column: s
                        .value_column
                        .unwrap_or_else(|| raw::DEFAULT_VALUE_COLUMN.into()),
                }
            }
            Shape::Wide => {
                if s.metric_column.is_some() || s.value_column.is_some() {
                    self.problem(
                        &k("layout"),
                        "metric_column/value_column are only for layout = \"long\"".into(),
                    );
                }
                if s.metric.is_some() {
                    self.problem(
                        &k("metric"),
                        "only for layout = \"long\" (one metric for every row); a wide export's metrics are its columns".into(),
                    );
                }
                Layout::Wide { metrics: s.metrics }
            }
        };
        let granularity = s.granularity.as_deref().and_then(|g| {
            let parsed = Granularity::parse(g);
            if parsed.is_none() {
                self.problem(
                    &k("granularity"),
                    format!("unknown granularity {g:?} (minute; Nmin for N minutes under an hour that divide a day, such as 5min, 15min or 30min; hour, day or week)"),
                );
            }
            parsed
        });
        let timezone = self.tz(&k("timezone"), s.timezone.as_deref());
        let delay = self
            .float(
                &k("expected_delay_hours"),
                s.expected_delay_hours,
                EXPECTED_DELAY_HOURS,
            )
            .unwrap_or(raw::DEFAULT_EXPECTED_DELAY_HOURS);
        let timeout = self.secs(
            &k("timeout_secs"),
            s.timeout_secs,
            SOURCE_TIMEOUT_SECS,
            raw::DEFAULT_URL_TIMEOUT_SECS,
        );
        let max_download_bytes = self
            .int(
                &k("max_download_bytes"),
                s.max_download_bytes,
                MAX_DOWNLOAD_BYTES,
            )
            .map_or(raw::DEFAULT_MAX_DOWNLOAD_BYTES, i64::unsigned_abs);
        let duplicates = self.choice(
            &k("duplicates"),
            s.duplicates.as_deref(),
            &[
                ("error", Duplicates::Error),
                ("first", Duplicates::First),
                ("last", Duplicates::Last),
                ("sum", Duplicates::Sum),
                ("mean", Duplicates::Mean),
            ],
            Duplicates::Error,
        );
        let owner = s
            .owner
            .as_deref()
            .and_then(|o| self.mailbox(&k("owner"), o));
        Some(SourceConfig {
            name,
            location,
            format,
            layout,
            time_column: s
                .time_column
                .unwrap_or_else(|| raw::DEFAULT_TIME_COLUMN.into()),
            dimensions: s.dimensions,
            granularity,
            timezone,
            expected_delay: Duration::from_secs_f64(delay * 3600.0),
            timeout,
            max_download_bytes,
            duplicates,
            owner,
            dialect,
        })
    }

    /// A source's `time_format`, `decimal`, `encoding`, `delimiter`, `sheet`
    /// and `header_row`, each checked against the format it applies to.
    fn dialect(
        &mut self,
        k: &dyn Fn(&str) -> String,
        s: &raw::RawSource,
        format: Format,
        location: &Location,
    ) -> Dialect {
        let time_format = s.time_format.as_deref().and_then(|f| {
            crate::text::TimeFormat::new(f)
                .map_err(|e| self.problem(&k("time_format"), e))
                .ok()
        });
        let decimal = self.choice(
            &k("decimal"),
            s.decimal.as_deref(),
            &[(".", Decimal::Point), (",", Decimal::Comma)],
            Decimal::Point,
        );
        let text_file = matches!(format, Format::Csv) && !matches!(location, Location::Sql(_));
        let encoding = s.encoding.as_deref().and_then(|e| {
            match encoding_rs::Encoding::for_label(e.trim().as_bytes()) {
                Some(enc) => Some(enc),
                None => {
                    self.problem(
                        &k("encoding"),
                        format!("unknown encoding {e:?} (e.g. \"utf-8\", \"utf-16\", \"windows-1252\", \"latin1\", \"shift_jis\")"),
                    );
                    None
                }
            }
        });
        let delimiter = s.delimiter.as_deref().and_then(|d| match d {
            "tab" | "\t" | "\\t" => Some(b'\t'),
            d if d.len() == 1
                && d.is_ascii()
                && !d.as_bytes()[0].is_ascii_alphanumeric()
                && d != "\"" =>
            {
                Some(d.as_bytes()[0])
            }
            _ => {
                self.problem(
                    &k("delimiter"),
                    format!(
                        "must be one character such as \",\", \";\", \"|\" or \"tab\", got {d:?}"
                    ),
                );
                None
            }
        });
        for (key, given) in [
            ("encoding", s.encoding.is_some()),
            ("delimiter", s.delimiter.is_some()),
        ] {
            if given && !text_file {
                self.problem(&k(key), "only for CSV sources".into());
            }
        }
        let header_row = s.header_row.and_then(|r| {
            self.int(&k("header_row"), Some(r), HEADER_ROW)
                .and_then(|r| usize::try_from(r).ok())
        });
        for (key, given) in [
            ("sheet", s.sheet.is_some()),
            ("header_row", s.header_row.is_some()),
        ] {
            if given && format != Format::Workbook {
                self.problem(
                    &k(key),
                    "only for workbooks (.xlsx, .xlsm, .xlsb, .xls, .ods or format = \"excel\")"
                        .into(),
                );
            }
        }
        if let Some(sheet) = &s.sheet
            && sheet.trim().is_empty()
        {
            self.problem(
                &k("sheet"),
                "must not be empty: the sheet's name as its tab shows it".into(),
            );
        }
        Dialect {
            time_format,
            decimal,
            encoding,
            delimiter,
            sheet: s.sheet.clone(),
            header_row,
            period_end: s.period_end.unwrap_or(false),
        }
    }

    /// An S3 source: the URL's bucket and key (or glob) and the endpoint are
    /// checked here, without connecting; credentials are never config keys.
    fn s3_source(
        &mut self,
        k: &dyn Fn(&str) -> String,
        url: String,
        endpoint_url: Option<String>,
        region: Option<String>,
        path_style: Option<bool>,
    ) -> Option<S3Source> {
        let (bucket, key) = match super::syntax::split_url(&url) {
            Ok(parts) => parts,
            Err(e) => {
                self.problem(&k("path"), e);
                return None;
            }
        };
        // a user or password in it is never echoed back
        let with_user = |e: &str| {
            e.split_once("://")
                .map_or(e, |(_, rest)| rest)
                .contains('@')
        };
        if let Some(e) = &endpoint_url
            && !with_user(e)
            && let Err(why) = http_url(e)
        {
            self.problem(
                &k("endpoint_url"),
                format!("{why}, e.g. \"http://127.0.0.1:9000\""),
            );
        }
        if let Some(e) = &endpoint_url
            && with_user(e)
        {
            self.problem(
                &k("endpoint_url"),
                "holds a user or password: credentials come from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), ~/.aws/credentials or the instance role, never from the config".into(),
            );
        }
        if region.as_deref().is_some_and(|r| r.trim().is_empty()) {
            self.problem(
                &k("region"),
                "is empty: give the bucket's region, e.g. \"eu-west-1\", or leave it out".into(),
            );
        }
        Some(S3Source {
            url,
            bucket,
            key,
            endpoint_url,
            region,
            path_style,
        })
    }

    /// A SQL source: the query's placeholders are `$from` and `$to` only
    /// (bound as parameters, never spliced in), and the database URL comes
    /// from `url_env` or `url_file`, never from the config text.
    fn sql_source(
        &mut self,
        k: &dyn Fn(&str) -> String,
        query: String,
        url_env: Option<String>,
        url_file: Option<String>,
        history_days: Option<i64>,
    ) -> Option<SqlSource> {
        if query.trim().is_empty() {
            self.problem(
                &k("sql"),
                "is empty: give the SELECT that returns the export".into(),
            );
        }
        let unknown: Vec<String> = super::syntax::placeholders(&query)
            .into_iter()
            .filter(|p| p != "from" && p != "to")
            .map(|p| format!("${p}"))
            .collect();
        if !unknown.is_empty() {
            self.problem(
                &k("sql"),
                format!(
                    "unknown placeholder(s) {}: the query may use only $from and $to (the evaluation window, bound as parameters)",
                    unknown.join(", ")
                ),
            );
        }
        let url = match (url_env, url_file) {
            (Some(e), None) => Secret::Env(e),
            (None, Some(f)) => Secret::File(self.path(&f)),
            (Some(_), Some(_)) => {
                self.problem(
                    &k("url_env"),
                    "give either `url_env` or `url_file`, not both".into(),
                );
                return None;
            }
            (None, None) => {
                self.problem(
                    &k("url_env"),
                    "missing: a SQL source reads its database URL (postgresql://user@host/db) from `url_env` (an environment variable) or `url_file`, never from the config".into(),
                );
                return None;
            }
        };
        let history_days = self
            .int(&k("history_days"), history_days, SQL_HISTORY_DAYS)
            .map_or(raw::DEFAULT_SQL_HISTORY_DAYS, |d| {
                u32::try_from(d).unwrap_or(u32::MAX)
            });
        Some(SqlSource {
            query,
            url,
            history_days,
        })
    }

    fn metric(&mut self, i: usize, m: raw::RawMetric) -> MetricRule {
        let k = |f: &str| format!("metric[{i}].{f}");
        let d = MetricRule::default_rule();
        if m.pattern.is_none() {
            self.problem(
                &k("match"),
                "missing: a glob over metric names, e.g. \"revenue*\"".into(),
            );
        }
        let pattern = self.glob(&k("match"), m.pattern.as_deref());
        let direction = self.choice(
            &k("direction"),
            m.direction.as_deref(),
            &[
                ("up", Direction::Up),
                ("down", Direction::Down),
                ("both", Direction::Both),
            ],
            d.direction,
        );
        let sensitivity = self
            .float(&k("sensitivity"), m.sensitivity, SENSITIVITY)
            .unwrap_or(d.sensitivity);
        let min_history = self
            .int(&k("min_history"), m.min_history, MIN_HISTORY)
            .and_then(|h| usize::try_from(h).ok());
        let min_abs_change = self
            .float(&k("min_abs_change"), m.min_abs_change, NON_NEGATIVE)
            .unwrap_or(d.min_abs_change);
        let min_rel_change = self
            .float(&k("min_rel_change"), m.min_rel_change, NON_NEGATIVE)
            .unwrap_or(d.min_rel_change);
        let (lower_bound, upper_bound) = match m.bounds {
            Some(b) => {
                let lower = self.float(&k("bounds.lower"), b.lower, FINITE);
                let upper = self.float(&k("bounds.upper"), b.upper, FINITE);
                if let (Some(l), Some(u)) = (lower, upper) {
                    if l > u {
                        self.problem(&k("bounds"), format!("lower ({l}) is above upper ({u})"));
                    }
                }
                (lower, upper)
            }
            None => (None, None),
        };
        let max_pct_change = self.float(&k("max_pct_change"), m.max_pct_change, MAX_PCT_CHANGE);
        let stale_periods = self
            .int(&k("stale_periods"), m.stale_periods, STALE_PERIODS)
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(d.stale_periods);
        let missing_periods = self
            .int(&k("missing_periods"), m.missing_periods, MISSING_PERIODS)
            .and_then(|n| usize::try_from(n).ok());
        let scale = self.choice(
            &k("scale"),
            m.scale.as_deref(),
            &[
                ("auto", Scale::Auto),
                ("log", Scale::Log),
                ("linear", Scale::Linear),
            ],
            d.scale,
        );
        let mut disabled = Vec::new();
        if let Some(checks) = m.checks {
            for (j, c) in checks.iter().enumerate() {
                if Check::parse(c).is_none() {
                    let all: Vec<_> = Check::ALL.iter().map(|c| c.as_str()).collect();
                    self.problem(
                        &format!("metric[{i}].checks[{j}]"),
                        format!("unknown check {c:?} (one of {})", all.join(", ")),
                    );
                }
            }
            disabled = Check::ALL
                .into_iter()
                .filter(|c| !checks.iter().any(|x| x == c.as_str()))
                .collect();
        }
        MetricRule {
            pattern,
            direction,
            sensitivity,
            min_history,
            min_abs_change,
            min_rel_change,
            lower_bound,
            upper_bound,
            max_pct_change,
            stale_periods,
            missing_periods,
            seasonality: m.seasonality.unwrap_or(d.seasonality),
            scale,
            disabled,
        }
    }

    fn owners(&mut self, raw: Option<raw::RawOwners>) -> OwnersConfig {
        let Some(raw) = raw else {
            return OwnersConfig {
                rules: Vec::new(),
                default: None,
            };
        };
        let default = raw
            .default
            .as_deref()
            .and_then(|d| self.mailbox("owners.default", d));
        let mut rules = Vec::new();
        for (i, r) in raw.rule.into_iter().enumerate() {
            let pattern = self.glob(&format!("owners.rule[{i}].match"), r.pattern.as_deref());
            let Some(email) = r.email.as_deref() else {
                self.problem(
                    &format!("owners.rule[{i}].email"),
                    "missing: the owner's address".into(),
                );
                continue;
            };
            let escalate_to = r
                .escalate_to
                .as_deref()
                .and_then(|e| self.mailbox(&format!("owners.rule[{i}].escalate_to"), e));
            if let Some(email) = self.mailbox(&format!("owners.rule[{i}].email"), email) {
                let dims = self.dims(r.dims);
                rules.push(OwnerRule {
                    pattern,
                    dims,
                    email,
                    escalate_to,
                });
            }
        }
        OwnersConfig { rules, default }
    }

    fn smtp(&mut self, s: raw::RawSmtp) -> Option<SmtpConfig> {
        if s.password.is_some() {
            self.problem(
                "smtp.password",
                "passwords are never read inline; use password_env = \"VAR\" or password_file = \"path\"".into(),
            );
        }
        let password = match (s.password_env, s.password_file) {
            (Some(_), Some(_)) => {
                self.problem(
                    "smtp.password_env",
                    "give password_env or password_file, not both".into(),
                );
                None
            }
            (Some(e), None) => Some(Secret::Env(e)),
            (None, Some(f)) => Some(Secret::File(self.path(&f))),
            (None, None) => None,
        };
        let security = self.choice(
            "smtp.security",
            s.security.as_deref(),
            &[
                ("starttls", Security::StartTls),
                ("tls", Security::Tls),
                ("none", Security::None),
            ],
            Security::StartTls,
        );
        let port = self
            .int("smtp.port", s.port, PORT)
            .and_then(|p| u16::try_from(p).ok());
        let timeout = self.secs(
            "smtp.timeout_secs",
            s.timeout_secs,
            SMTP_TIMEOUT_SECS,
            raw::DEFAULT_SMTP_TIMEOUT_SECS,
        );
        let Some(host) = s.host else {
            self.problem("smtp.host", "missing: the SMTP server's host name".into());
            return None;
        };
        let Some(from) = s.from else {
            self.problem(
                "smtp.from",
                "missing: the sender, e.g. \"callout <callout@example.com>\"".into(),
            );
            return None;
        };
        let from = self.mailbox("smtp.from", &from)?;
        let reply_to = s
            .reply_to
            .as_deref()
            .and_then(|r| self.mailbox("smtp.reply_to", r));
        let port = port.unwrap_or(match security {
            Security::StartTls => 587,
            Security::Tls => 465,
            Security::None => 25,
        });
        Some(SmtpConfig {
            host,
            port,
            security,
            username: s.username,
            password,
            from,
            reply_to,
            list_id: s.list_id,
            timeout,
            ca: s.ca_file.and_then(|f| self.ca_file(&f)),
        })
    }

    /// Read `smtp.ca_file` now, so a missing, empty or broken file is a config
    /// problem (named, with the fix) rather than a TLS failure at send time.
    fn ca_file(&mut self, file: &str) -> Option<CaFile> {
        use lettre::transport::smtp::client::{Certificate, TlsParameters};
        let path = self.path(file);
        let shown = path.display().to_string();
        let pem = match std::fs::read(&path) {
            Ok(pem) => pem,
            Err(e) => {
                self.problem(
                    "smtp.ca_file",
                    format!("cannot read the CA certificate file `{shown}`: {e}"),
                );
                return None;
            }
        };
        // lettre accepts a PEM file without certificates (it skips keys and
        // other blocks), which would silently trust nothing extra.
        if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
            self.problem(
                "smtp.ca_file",
                format!(
                    "`{shown}` holds no PEM certificate (no \"-----BEGIN CERTIFICATE-----\" block); give the certificate of the CA that signed the SMTP server's certificate"
                ),
            );
            return None;
        }
        // Building TLS parameters parses each certificate as a trust anchor.
        let checked = Certificate::from_pem(&pem).and_then(|c| {
            TlsParameters::builder("localhost".into())
                .add_root_certificate(c.clone())
                .build_rustls()
                .map(|_| c)
        });
        match checked {
            Ok(certificate) => Some(CaFile { path, certificate }),
            Err(e) => {
                self.problem(
                    "smtp.ca_file",
                    format!("`{shown}` is not a valid PEM CA certificate: {e}"),
                );
                None
            }
        }
    }

    fn alerts(&mut self, raw: Option<raw::RawAlerts>) -> AlertsConfig {
        let raw = raw.unwrap_or_default();
        let close_after_periods = self
            .int(
                "alerts.close_after_periods",
                raw.close_after_periods,
                CLOSE_AFTER_PERIODS,
            )
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(raw::DEFAULT_CLOSE_AFTER_PERIODS);
        let retry_base = self.secs(
            "alerts.retry_base_secs",
            raw.retry_base_secs,
            RETRY_BASE_SECS,
            raw::DEFAULT_RETRY_BASE_SECS,
        );
        let catch_up_days = self
            .int("alerts.catch_up_days", raw.catch_up_days, CATCH_UP_DAYS)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(raw::DEFAULT_CATCH_UP_DAYS);
        AlertsConfig {
            close_after_periods,
            retry_base,
            catch_up_days,
        }
    }

    fn reminders(&mut self, raw: Option<raw::RawReminders>) -> RemindersConfig {
        let Some(raw) = raw else {
            return RemindersConfig::default();
        };
        let hours = self
            .int(
                "reminders.hours_before_deadline",
                raw.hours_before_deadline,
                REMINDER_HOURS,
            )
            .unwrap_or(raw::DEFAULT_REMINDER_HOURS);
        let before_deadline = (hours > 0).then(|| chrono::Duration::hours(hours));
        let escalate_to = raw
            .escalate_to
            .as_deref()
            .and_then(|e| self.mailbox("reminders.escalate_to", e));
        RemindersConfig {
            before_deadline,
            escalate_to,
        }
    }

    fn calendar(&mut self, i: usize, c: raw::RawCalendar) -> CalendarConfig {
        let name = c.name.unwrap_or_else(|| {
            self.problem(&format!("calendar[{i}].name"), "missing".into());
            String::new()
        });
        let holidays = c.holidays.unwrap_or_else(|| {
            crate::model::DEFAULT_HOLIDAYS
                .iter()
                .map(|s| s.to_string())
                .collect()
        });
        for (j, h) in holidays.iter().enumerate() {
            if !crate::model::is_builtin_holiday(h) {
                self.problem(
                    &format!("calendar[{i}].holidays[{j}]"),
                    format!(
                        "unknown holiday {h:?} (built in: {})",
                        crate::model::BUILTIN_HOLIDAYS.join(", ")
                    ),
                );
            }
        }
        let mut dates = Vec::new();
        for (j, d) in c.dates.iter().enumerate() {
            if let Ok(day) = NaiveDate::parse_from_str(d, "%Y-%m-%d") {
                dates.push(CalendarDate::Once(day));
            } else if let Some((m, dd)) = d
                .split_once('-')
                .and_then(|(m, dd)| Some((m.parse::<u32>().ok()?, dd.parse::<u32>().ok()?)))
                .filter(|(m, dd)| NaiveDate::from_ymd_opt(2024, *m, *dd).is_some())
            {
                dates.push(CalendarDate::Yearly(m, dd));
            } else {
                self.problem(
                    &format!("calendar[{i}].dates[{j}]"),
                    format!("not a date {d:?} (\"MM-DD\" every year or \"YYYY-MM-DD\" once)"),
                );
            }
        }
        let dims = self.dims(c.dims);
        CalendarConfig {
            name,
            holidays,
            dates,
            dims,
        }
    }

    fn date(&mut self, key: &str, v: Option<&str>) -> Option<NaiveDate> {
        let Some(v) = v else {
            self.problem(key, "missing: a date YYYY-MM-DD".into());
            return None;
        };
        NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .map_err(|_| self.problem(key, format!("not a date {v:?} (YYYY-MM-DD)")))
            .ok()
    }

    fn event(&mut self, i: usize, e: raw::RawEvent) -> Option<EventConfig> {
        let k = |f: &str| format!("event[{i}].{f}");
        let start = self.date(&k("start"), e.start.as_deref());
        let end = match e.end.as_deref() {
            None => start,
            Some(v) => self.date(&k("end"), Some(v)),
        };
        let pattern = self.glob(&k("match"), e.pattern.as_deref());
        let action = self.choice(
            &k("action"),
            e.action.as_deref(),
            &[
                ("excuse", EventAction::Excuse),
                ("annotate", EventAction::Annotate),
            ],
            EventAction::Excuse,
        );
        let (start, end) = (start?, end?);
        if end < start {
            self.problem(&k("end"), format!("{end} is before start {start}"));
        }
        let dims = self.dims(e.dims);
        Some(EventConfig {
            name: e.name.unwrap_or_else(|| format!("event {i}")),
            start,
            end,
            pattern,
            dims,
            action,
        })
    }
}

/// Fields of a cron expression as callout reads it: seconds first.
const CRON_FIELDS: usize = 6;
/// A schedule that does not fire within this many years of [`NEVER_FIRES_FROM`]
/// is reported: it never fires (the 30th of February), or so rarely that it
/// cannot be what a weekly review wants.
const NEVER_FIRES_YEARS: i32 = 8;
/// Where that look starts: a fixed date, so a config compiles the same any
/// day (the compiler reads no clock).
const NEVER_FIRES_FROM: (i32, u32, u32) = (2025, 1, 1);

/// A cron expression, or a one-line message saying what is wrong with it
/// and what would be right (the cron crate's own error repeats the
/// expression and puts a caret under it on a line of its own).
fn cron_schedule(e: &str) -> Result<cron::Schedule, String> {
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

fn star() -> MetricGlob {
    MetricGlob::new("*").unwrap_or_else(|_| MetricGlob(glob::Pattern::default()))
}

/// The units the sources' headers carry (`Revenue ($)` → `revenue` in `$`):
/// a wide source's listed metric columns, and the value column of a long
/// source with one fixed metric. The first source to name a metric wins.
fn header_units(sources: &[SourceConfig]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for s in sources {
        let named: Vec<(String, &str)> = match &s.layout {
            Layout::Wide { metrics: Some(m) } => m
                .iter()
                .map(|h| (crate::text::header(h).slug, h.as_str()))
                .collect(),
            Layout::Long {
                metric: MetricName::Fixed(m),
                value_column,
            } => vec![(m.clone(), value_column.as_str())],
            _ => Vec::new(),
        };
        for (metric, h) in named {
            if let Some(unit) = crate::text::header(h).unit {
                out.entry(metric).or_insert(unit);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// A source every case gets (after the case's own text, so the case's
    /// `[[source]]`, if any, is `source[0]`).
    const BASE: &str = "\n[[source]]\nname = \"base\"\npath = \"base.csv\"\n";

    fn env(k: &str) -> Option<String> {
        match k {
            "WIN_DIR" => Some(r"C:\data\exports".into()),
            "HOST" => Some("mail.example.com".into()),
            "TWO_LINES" => Some("first\nsecond \"quoted\"\r\n".into()),
            _ => None,
        }
    }

    fn compile(text: &str) -> Result<Config, Vec<ConfigProblem>> {
        compile_str(
            &format!("{text}{BASE}"),
            Path::new("/etc/callout/c.toml"),
            &env,
        )
        .map_err(|e| match e {
            ConfigError::Invalid { problems, .. } => problems,
            ConfigError::Read { .. } => unreachable!("compile_str reads no file"),
        })
    }

    /// `text` must give exactly the problems `expected` — `(key, message fragment)`
    /// pairs, in any order; no pairs: it must compile.
    fn check(text: &str, expected: &[(&str, &str)]) {
        let problems = match compile(text) {
            Ok(_) => Vec::new(),
            Err(p) => p,
        };
        for (key, fragment) in expected {
            assert!(
                problems
                    .iter()
                    .any(|p| p.key == *key && p.message.contains(fragment)),
                "case {text:?}: no problem `{key}` containing {fragment:?} in {problems:#?}"
            );
        }
        assert_eq!(
            problems.len(),
            expected.len(),
            "case {text:?}: problems {problems:#?}"
        );
    }

    #[test]
    fn good_values_compile() {
        for text in [
            "",
            "[detection]\nfdr = 0.1",
            "[schedule]\nrun_timeout_secs = 60\ncron = [\"0 0 7 * * *\", \"0 0 19 * * *\"]",
            "[review]\nweekday = \"Thursday\"\ntime = \"09:30\"\nexplanations_due_hours = 0",
            "[[source]]\npath = \"a.csv\"\ntimeout_secs = 86400\nexpected_delay_hours = 1000000",
            "[[source]]\npath = \"a.csv\"\nformat = \"jsonl\"\nlayout = \"wide\"",
            "[[metric]]\nmatch = \"rev*\"\ndirection = \"down\"\nscale = \"log\"\nsensitivity = 2.5\nmin_history = 8\nstale_periods = 2\nmax_pct_change = 50\nbounds = { lower = 0, upper = 10 }",
            "[smtp]\nhost = \"h\"\nfrom = \"a@b.c\"\nport = 2525\nsecurity = \"none\"\ntimeout_secs = 3600",
            "[alerts]\nclose_after_periods = 1\nretry_base_secs = 0",
            "[[event]]\nname = \"sale\"\nstart = \"2024-01-01\"\naction = \"annotate\"",
        ] {
            check(text, &[]);
        }
    }

    #[test]
    fn spreadsheet_keys_are_compiled_and_checked() {
        let text = "[[source]]\npath = \"w.csv\"\nlayout = \"wide\"\nmetrics = [\"Revenue ($)\", \"Orders (#)\", \"Conversion %\"]\ntime_format = \"%m/%d/%Y\"\ndecimal = \",\"\nencoding = \"latin1\"\ndelimiter = \"tab\"\n[[report.metric]]\nname = \"orders\"\nunit = \"orders\"\n";
        check(text, &[]);
        let cfg = compile(text).unwrap();
        let d = &cfg.sources[0].dialect;
        assert_eq!(d.time_format.as_ref().map(|f| f.spec()), Some("%m/%d/%Y"));
        assert_eq!(d.decimal, Decimal::Comma);
        assert_eq!(d.encoding, Some(encoding_rs::WINDOWS_1252));
        assert_eq!(d.delimiter, Some(b'\t'));
        // the headers' units, unless [[report.metric]] says otherwise
        assert_eq!(cfg.report.metric("revenue").unit, "$");
        assert_eq!(cfg.report.metric("conversion").unit, "%");
        assert_eq!(cfg.report.metric("orders").unit, "orders");
        assert_eq!(
            d.describe().as_deref(),
            Some("time_format \"%m/%d/%Y\", decimal \",\", delimiter tab, encoding windows-1252")
        );
        let wb =
            compile("[[source]]\npath = \"WBR.XLSX\"\nsheet = \"Data\"\nheader_row = 3").unwrap();
        assert_eq!(wb.sources[0].format, Format::Workbook);
        assert_eq!(wb.sources[0].dialect.header_row, Some(3));
        check(
            "[[source]]\npath = \"a.csv\"\ntime_format = \"%d/%m\"\ndecimal = \";\"\nencoding = \"klingon\"\ndelimiter = \"ab\"\nsheet = \"Data\"\nheader_row = 0",
            &[
                ("source[0].time_format", "year"),
                ("source[0].decimal", "\".\""),
                ("source[0].encoding", "klingon"),
                ("source[0].delimiter", "one character"),
                ("source[0].sheet", "only for workbooks"),
                ("source[0].header_row", "between 1"),
            ],
        );
        check(
            "[[source]]\npath = \"a.parquet\"\nencoding = \"utf-8\"",
            &[("source[0].encoding", "only for CSV")],
        );
    }

    #[test]
    fn s3_sources_are_checked_without_connecting() {
        let text = "[[source]]\npath = \"s3://exports/wbr/*.parquet\"\nendpoint_url = \"http://127.0.0.1:9000\"\nregion = \"us-east-1\"\npath_style = true";
        check(text, &[]);
        let cfg = compile(text).unwrap();
        let Location::S3(s3) = &cfg.sources[0].location else {
            panic!("not an S3 source: {:?}", cfg.sources[0].location)
        };
        assert_eq!(
            (s3.bucket.as_str(), s3.key.as_str()),
            ("exports", "wbr/*.parquet")
        );
        assert_eq!(cfg.sources[0].format, Format::Parquet);
        assert_eq!(s3.path_style, Some(true));
        for (text, key, fragment) in [
            ("path = \"s3://exports\"", "source[0].path", "names no key"),
            (
                "path = \"s3://exports/daily/\"",
                "source[0].path",
                "names a folder",
            ),
            (
                "path = \"s3://Ex_ports/a.csv\"",
                "source[0].path",
                "not a bucket name",
            ),
            (
                "path = \"gs://exports/a.csv\"",
                "source[0].path",
                "gs:// is not a source kind",
            ),
            (
                "path = \"s3://exports/a.csv\"\nendpoint_url = \"minio:9000\"",
                "source[0].endpoint_url",
                "must start with http:// or https://",
            ),
            (
                "path = \"s3://exports/a.csv\"\nendpoint_url = \"https://key:secret@minio:9000\"",
                "source[0].endpoint_url",
                "never from the config",
            ),
            // without a scheme too, and the address (with its secret) is not echoed
            (
                "path = \"s3://exports/a.csv\"\nendpoint_url = \"key:secret@minio:9000\"",
                "source[0].endpoint_url",
                "never from the config",
            ),
            (
                "path = \"a.csv\"\npath_style = true",
                "source[0].path_style",
                "only for S3 sources",
            ),
            (
                "url = \"https://x/a.csv\"\nregion = \"eu\"",
                "source[0].region",
                "only for S3 sources",
            ),
        ] {
            check(&format!("[[source]]\n{text}"), &[(key, fragment)]);
        }
    }

    #[test]
    fn out_of_range_numbers_name_key_and_range() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "[detection]\nfdr = 1.5",
                "detection.fdr",
                "must be > 0 and < 1, got 1.5",
            ),
            ("[detection]\nfdr = 0", "detection.fdr", "> 0 and < 1"),
            ("[detection]\nfdr = nan", "detection.fdr", "got NaN"),
            (
                "[schedule]\nrun_timeout_secs = 9223372036854775807",
                "schedule.run_timeout_secs",
                "between 1 and 604800 seconds, got 9223372036854775807",
            ),
            (
                "[schedule]\nrun_timeout_secs = 0",
                "schedule.run_timeout_secs",
                "between 1 and",
            ),
            (
                "[[source]]\npath = \"a.csv\"\ntimeout_secs = 9223372036854775807",
                "source[0].timeout_secs",
                "between 1 and 86400 seconds",
            ),
            (
                "[[source]]\npath = \"a.csv\"\ntimeout_secs = 0",
                "source[0].timeout_secs",
                "got 0",
            ),
            (
                "[[source]]\npath = \"a.csv\"\ntimeout_secs = -5",
                "source[0].timeout_secs",
                "got -5",
            ),
            (
                "[[source]]\npath = \"a.csv\"\nexpected_delay_hours = 1e300",
                "source[0].expected_delay_hours",
                "must be >= 0 and <= 1000000, got 1e300",
            ),
            (
                "[[source]]\npath = \"a.csv\"\nexpected_delay_hours = -1",
                "source[0].expected_delay_hours",
                ">= 0",
            ),
            (
                "[review]\nexplanations_due_hours = 200",
                "review.explanations_due_hours",
                "between 0 and 144 hours",
            ),
            (
                "[[metric]]\nmatch = \"*\"\nsensitivity = 0",
                "metric[0].sensitivity",
                "> 0 and <= 1000",
            ),
            (
                "[[metric]]\nmatch = \"*\"\nsensitivity = inf",
                "metric[0].sensitivity",
                "got inf",
            ),
            (
                "[[metric]]\nmatch = \"*\"\nmin_history = 0",
                "metric[0].min_history",
                "between 1 and 100000 periods",
            ),
            (
                "[[metric]]\nmatch = \"*\"\nstale_periods = 1",
                "metric[0].stale_periods",
                "between 2 and 10000",
            ),
            (
                "[[metric]]\nmatch = \"*\"\nmin_abs_change = -1",
                "metric[0].min_abs_change",
                "finite and >= 0",
            ),
            (
                "[[metric]]\nmatch = \"*\"\nmin_rel_change = inf",
                "metric[0].min_rel_change",
                "finite and >= 0",
            ),
            (
                "[[metric]]\nmatch = \"*\"\nmax_pct_change = -3",
                "metric[0].max_pct_change",
                "> 0 and <= 1000000000",
            ),
            (
                "[[metric]]\nmatch = \"*\"\nbounds = { lower = nan }",
                "metric[0].bounds.lower",
                "a finite number",
            ),
            (
                "[[metric]]\nmatch = \"*\"\nbounds = { lower = 5, upper = 1 }",
                "metric[0].bounds",
                "lower (5) is above upper (1)",
            ),
            (
                "[smtp]\nhost = \"h\"\nfrom = \"a@b.c\"\nport = 0",
                "smtp.port",
                "between 1 and 65535",
            ),
            (
                "[smtp]\nhost = \"h\"\nfrom = \"a@b.c\"\nport = 70000",
                "smtp.port",
                "got 70000",
            ),
            (
                "[smtp]\nhost = \"h\"\nfrom = \"a@b.c\"\ntimeout_secs = 0",
                "smtp.timeout_secs",
                "between 1 and 3600 seconds",
            ),
            (
                "[alerts]\nclose_after_periods = 0",
                "alerts.close_after_periods",
                "between 1 and 1000",
            ),
            (
                "[alerts]\nretry_base_secs = -1",
                "alerts.retry_base_secs",
                "between 0 and 86400 seconds",
            ),
        ];
        for (text, key, fragment) in cases {
            check(text, &[(key, fragment)]);
        }
    }

    #[test]
    fn a_long_source_takes_a_metric_column_or_one_metric() {
        let cfg = compile("[[source]]\npath = \"signups.csv\"\nmetric = \"signups\"\n").unwrap();
        assert_eq!(
            cfg.sources[0].layout,
            Layout::Long {
                metric: MetricName::Fixed("signups".into()),
                value_column: "value".into()
            }
        );
        assert_eq!(
            cfg.sources[1].layout,
            Layout::Long {
                metric: MetricName::Column("metric".into()),
                value_column: "value".into()
            }
        );
        check(
            "[[source]]\npath = \"a.csv\"\nmetric = \"a\"\nmetric_column = \"m\"",
            &[("source[0].metric", "not both")],
        );
        check(
            "[[source]]\npath = \"a.csv\"\nlayout = \"wide\"\nmetric = \"a\"",
            &[("source[0].metric", "only for layout = \"long\"")],
        );
        check(
            "[[source]]\npath = \"a.csv\"\nmetric = \" \"",
            &[("source[0].metric", "must not be empty")],
        );
        check(
            "[[source]]\npath = \"a.csv\"\ngranularity = \"7min\"",
            &[("source[0].granularity", "30min")],
        );
        check("[[source]]\npath = \"a.csv\"\ngranularity = \"30min\"", &[]);
    }

    #[test]
    fn unknown_words_list_the_choices() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "[[source]]\npath = \"a.csv\"\nformat = \"docx\"",
                "source[0].format",
                r#"must be one of "csv", "parquet", "ndjson", "jsonl", "json", "xlsx", "xls", "ods", "excel", "workbook", got "docx""#,
            ),
            (
                "[[source]]\npath = \"a.csv\"\nlayout = \"tall\"",
                "source[0].layout",
                r#"must be one of "long", "wide", got "tall""#,
            ),
            (
                "[[metric]]\nmatch = \"*\"\ndirection = \"sideways\"",
                "metric[0].direction",
                r#""up", "down", "both", got "sideways""#,
            ),
            (
                "[[metric]]\nmatch = \"*\"\nscale = \"sqrt\"",
                "metric[0].scale",
                r#""auto", "log", "linear""#,
            ),
            (
                "[smtp]\nhost = \"h\"\nfrom = \"a@b.c\"\nsecurity = \"ssl\"",
                "smtp.security",
                r#""starttls", "tls", "none", got "ssl""#,
            ),
            (
                "[[event]]\nstart = \"2024-01-01\"\naction = \"mute\"",
                "event[0].action",
                r#""excuse", "annotate""#,
            ),
        ];
        for (text, key, fragment) in cases {
            check(text, &[(key, fragment)]);
        }
    }

    #[test]
    fn unknown_keys_have_their_real_path() {
        check(
            "[detection]\nfdrr = 0.1",
            &[("detection.fdrr", "unknown key")],
        );
        check(
            "[[source]]\npath = \"a.csv\"\n\n[[source]]\npath = \"b.csv\"\n\n[[source]]\npth = \"c.csv\"\npath = \"c.csv\"",
            &[("source[2].pth", "unknown key")],
        );
        check(
            "[[metric]]\nmatch = \"*\"\nbounds = { lowr = 1 }",
            &[("metric[0].bounds.lowr", "unknown key")],
        );
        check(
            "[alerts]\nmax_attempts_per_run = 3",
            &[("alerts.max_attempts_per_run", "removed")],
        );
    }

    #[test]
    fn unknown_keys_suggest_a_close_key_of_their_table() {
        for (text, key, message) in [
            (
                "[detection]\nfdrr = 0.1",
                "detection.fdrr",
                "unknown key; did you mean `fdr`?",
            ),
            (
                "[[source]]\npath = \"a.csv\"\n[[source]]\npath = \"b.csv\"\nvalue_colum = \"v\"",
                "source[1].value_colum",
                "unknown key; did you mean `value_column`?",
            ),
            (
                "[[metric]]\nmatch = \"*\"\nbounds = { lowr = 1 }",
                "metric[0].bounds.lowr",
                "unknown key; did you mean `lower`?",
            ),
            (
                "[[owners.rule]]\nmacth = \"*\"\nemail = \"a@b.c\"",
                "owners.rule[0].macth",
                "unknown key; did you mean `match`?",
            ),
            (
                "[schedule]\nTimezone = \"UTC\"",
                "schedule.Timezone",
                "unknown key; did you mean `timezone`?",
            ),
            (
                "[scheduel]\ncron = \"0 0 7 * * *\"",
                "scheduel",
                "unknown key; did you mean `schedule`?",
            ),
            // keys of another table are not suggested, nor far ones
            ("[detection]\nhost = \"x\"", "detection.host", "unknown key"),
            (
                "[[source]]\npath = \"a.csv\"\ncolour = \"blue\"",
                "source[0].colour",
                "unknown key",
            ),
        ] {
            let problems = compile(text).unwrap_err();
            assert_eq!(
                problems,
                vec![ConfigProblem {
                    key: key.into(),
                    message: message.into()
                }],
                "{text}"
            );
        }
    }

    #[test]
    fn every_type_error_is_reported_at_once() {
        check(
            "[schedule]\nrun_timeout_secs = \"x\"\n[detection]\nfdr = \"z\"\n[smtp]\nport = \"y\"\nhost = 1\nfrom = \"a@b.c\"\n[[source]]\npath = \"a.csv\"\ndimensions = [\"region\", 3]",
            &[
                ("schedule.run_timeout_secs", "invalid type"),
                ("detection.fdr", "invalid type"),
                ("smtp.port", "invalid type"),
                ("smtp.host", "invalid type"),
                ("source[0].dimensions[1]", "invalid type"),
            ],
        );
        // type errors and semantic errors together, in one run
        check(
            "[detection]\nfdr = \"z\"\n[alerts]\nclose_after_periods = 0",
            &[
                ("detection.fdr", "invalid type"),
                ("alerts.close_after_periods", "between 1 and 1000"),
            ],
        );
    }

    #[test]
    fn env_vars_expand_in_values_only() {
        // a reference in a comment is left alone, set or not
        check(
            "[store]\npath = \"s.db\" # was ${UNSET_VAR}\n# ${ALSO_UNSET}",
            &[],
        );
        check(
            "[store]\npath = \"${UNSET_VAR}\"",
            &[("line 2", "`UNSET_VAR` is not set")],
        );
        let cfg = compile("[store]\npath = '${WIN_DIR}' # ${UNSET}").unwrap();
        assert!(
            cfg.store_path.ends_with(r"C:\data\exports"),
            "{:?}",
            cfg.store_path
        );
        let cfg = compile("[store]\npath = \"${WIN_DIR}\"").unwrap();
        assert!(
            cfg.store_path.ends_with(r"C:\data\exports"),
            "{:?}",
            cfg.store_path
        );
        let cfg = compile("[smtp]\nhost = \"${HOST}\"\nfrom = \"a@b.c\" # \"${UNSET}\"").unwrap();
        assert_eq!(cfg.smtp.unwrap().host, "mail.example.com");
    }

    #[test]
    fn env_values_with_line_breaks_are_escaped_or_refused() {
        let cfg = compile("[review]\nname = \"${TWO_LINES}\"").unwrap();
        assert_eq!(cfg.review.name, "first\nsecond \"quoted\"\r\n");
        let cfg = compile("[review]\nname = \"\"\"${TWO_LINES}\"\"\"").unwrap();
        assert_eq!(cfg.review.name, "first\nsecond \"quoted\"\r\n");
        // a multi-line literal string holds it as it is
        let cfg = compile("[review]\nname = '''${HOST}\n${HOST}'''").unwrap();
        assert_eq!(cfg.review.name, "mail.example.com\nmail.example.com");
        check(
            "[review]\nname = '${TWO_LINES}'",
            &[(
                "line 2",
                "environment variable `TWO_LINES` holds a line break, which a 'literal' string cannot hold; write \"${TWO_LINES}\"",
            )],
        );
        check(
            "[review]\nexplanations_due_hours = ${TWO_LINES}",
            &[(
                "line 2",
                "`TWO_LINES` holds a line break, which a value outside quotes",
            )],
        );
    }

    #[test]
    fn cron_problems_are_one_line_with_the_fix() {
        let problems = |text: &str| compile(text).err().unwrap_or_default();
        let p = problems("[schedule]\ncron = \"0 7 * * 1-5\"");
        assert_eq!(
            p,
            vec![ConfigProblem {
                key: "schedule.cron".into(),
                message: "`0 7 * * 1-5` has 5 fields; callout's cron has 6, seconds first: try `0 0 7 * * 1-5`".into(),
            }]
        );
        let cases: &[(&str, &str, &str)] = &[
            (
                "cron = [\"0 0 7 * * *\", \"30  7 * * Mon\"]",
                "schedule.cron[1]",
                "`30  7 * * Mon` has 5 fields; callout's cron has 6, seconds first: try `0 30 7 * * Mon`",
            ),
            (
                "cron = \"every day\"",
                "schedule.cron",
                "`every day` has 2 field(s); callout's cron has 6, seconds first, and an optional 7th, the year",
            ),
            (
                "cron = \"0 0 7 * * Mon-Fxi\"",
                "schedule.cron",
                "`0 0 7 * * Mon-Fxi` is not a valid cron expression: 'Fxi' is not a valid day of the week.",
            ),
            (
                "cron = \" \"",
                "schedule.cron",
                "is empty; callout's cron has 6 fields",
            ),
            (
                "cron = \"0 0 0 30 2 *\"",
                "schedule.cron",
                "`0 0 0 30 2 *` never fires: no time in the 8 years from 2025-01-01 matches it",
            ),
            (
                "cron = [\"0 0 7 * * *\", \"0 0 0 31 4,6,9,11 *\"]",
                "schedule.cron[1]",
                "never fires",
            ),
        ];
        for (text, key, fragment) in cases {
            let text = format!("[schedule]\n{text}");
            check(&text, &[(key, fragment)]);
            for p in problems(&text) {
                assert!(!p.message.contains('\n'), "{text}: {p:?}");
                assert!(!p.message.contains('^'), "{text}: {p:?}");
            }
        }
        // rare but real: the 29th of February, a day that is in some months
        check(
            "[schedule]\ncron = [\"0 0 0 29 2 *\", \"0 0 9 31 * *\"]",
            &[],
        );
    }

    #[test]
    fn bad_addresses_say_what_is_wrong() {
        for (value, fragment) in [
            (
                "anna.example.com",
                "`anna.example.com` is not an email address (no @)",
            ),
            ("Anna <anna.example.com>", "(no @)"),
            ("@example.com", "(nothing before the @)"),
            ("anna@", "(nothing after the @)"),
            (
                "anna@exa mple.com",
                "`exa mple.com` after the @ is not a domain",
            ),
            ("Anna <anna@example.com", "(unbalanced < >)"),
            ("", "(it is empty)"),
        ] {
            check(
                &format!("[owners]\ndefault = {value:?}"),
                &[("owners.default", fragment)],
            );
        }
        check(
            "[[owners.rule]]\nmatch = \"*\"\nemail = \"a@b.c\"\nescalate_to = \"boss\"",
            &[(
                "owners.rule[0].escalate_to",
                "`boss` is not an email address (no @)",
            )],
        );
        assert!(parse_mailbox("Ana B. <ana@example.com>").is_ok());
        assert_eq!(
            parse_mailbox("anna.example.com").unwrap_err(),
            "`anna.example.com` is not an email address (no @)"
        );
    }

    #[test]
    fn urls_without_a_host_are_refused() {
        check(
            "[[source]]\nurl = \"http://\"",
            &[(
                "source[0].url",
                "\"http://\" is not a URL: it names no host",
            )],
        );
        check(
            "[[source]]\nurl = \"https://:8080/a.csv\"",
            &[("source[0].url", "is not a URL")],
        );
        check(
            "[[source]]\nurl = \"https://exports.example.com:99999/a.csv\"",
            &[("source[0].url", "is not a URL: invalid port number")],
        );
        check(
            "[[source]]\nurl = \"https://exports.example.com/a.csv?day=1\"",
            &[],
        );
        check(
            "[[source]]\npath = \"s3://exports/a.csv\"\nendpoint_url = \"http://\"",
            &[("source[0].endpoint_url", "names no host")],
        );
        check(
            "[web]\nlisten = \"127.0.0.1:8080\"\npublic_url = \"https://\"",
            &[(
                "web.public_url",
                "\"https://\" is not a URL: it names no host",
            )],
        );
        check(
            "[web]\nlisten = \"127.0.0.1:8080\"\npublic_url = \"https://callout.example.com/?x=1\"",
            &[("web.public_url", "no query")],
        );
    }

    #[test]
    fn memory_budget_is_a_size_with_a_unit() {
        for (text, bytes) in [
            ("512MB", 512_000_000),
            ("1.5 GiB", 1_610_612_736),
            ("2gb", 2_000_000_000),
            ("3000000", 3_000_000),
        ] {
            let cfg = compile(&format!("[detection]\nmemory_budget = {text:?}")).unwrap();
            assert_eq!(cfg.detection.memory_budget, Some(bytes), "{text}");
        }
        assert_eq!(compile("").unwrap().detection.memory_budget, None);
        for (text, fragment) in [
            ("\"512 apples\"", "must be a size such as \"512MB\""),
            ("\"MB\"", "must be a size"),
            ("\"-5MB\"", "must be a size"),
            ("\"100KB\"", "between 1MB and 1000TB, got \"100KB\""),
            ("\"2000TB\"", "between 1MB and 1000TB"),
            ("512", "invalid type: integer"),
        ] {
            check(
                &format!("[detection]\nmemory_budget = {text}"),
                &[("detection.memory_budget", fragment)],
            );
        }
    }

    #[test]
    fn defaults_are_the_named_consts() {
        let cfg = compile("").unwrap();
        assert_eq!(
            cfg.schedule.run_timeout,
            Duration::from_secs(raw::DEFAULT_RUN_TIMEOUT_SECS)
        );
        assert_eq!(cfg.detection.fdr, raw::DEFAULT_FDR);
        assert_eq!(
            cfg.sources[0].timeout,
            Duration::from_secs(raw::DEFAULT_URL_TIMEOUT_SECS)
        );
        assert_eq!(cfg.review.weekday, raw::DEFAULT_REVIEW_WEEKDAY);
        assert_eq!(
            cfg.alerts.close_after_periods,
            raw::DEFAULT_CLOSE_AFTER_PERIODS
        );
    }
}
