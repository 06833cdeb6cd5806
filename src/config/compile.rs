//! Raw config → checked [`Config`], collecting every problem.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono::{NaiveDate, NaiveTime, Weekday};
use chrono_tz::Tz;

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
    let mut unknown = Vec::new();
    let de = toml::Deserializer::parse(&text);
    let raw: Option<RawConfig> = match de {
        Ok(de) => match serde_ignored::deserialize(de, |p| unknown.push(p.to_string())) {
            Ok(r) => Some(r),
            Err(e) => {
                c.problem("(file)", one_line(&e.to_string()));
                None
            }
        },
        Err(e) => {
            c.problem("(file)", one_line(&e.to_string()));
            None
        }
    };
    for k in unknown {
        c.problem(&fix_path(&k), "unknown key".into());
    }
    let Some(raw) = raw else {
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

/// serde_ignored writes `metric.3.sensitivty`; show it as `metric[3].sensitivty`.
fn fix_path(p: &str) -> String {
    let mut out = String::new();
    for part in p.split('.') {
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

struct Compiler {
    problems: Vec<ConfigProblem>,
    base: PathBuf,
}

impl Compiler {
    fn problem(&mut self, key: &str, message: String) {
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

    /// Replace `${VAR}` outside comments; an unset variable is a problem naming it.
    fn substitute_env(&mut self, text: &str, env: &dyn Fn(&str) -> Option<String>) -> String {
        let mut out = String::with_capacity(text.len());
        for (n, line) in text.split_inclusive('\n').enumerate() {
            if line.trim_start().starts_with('#') {
                out.push_str(line);
                continue;
            }
            let mut rest = line;
            while let Some(i) = rest.find("${") {
                out.push_str(&rest[..i]);
                let after = &rest[i + 2..];
                match after.find('}') {
                    Some(j) => {
                        let name = &after[..j];
                        match env(name) {
                            Some(v) => out.push_str(&v.replace('\\', "\\\\").replace('"', "\\\"")),
                            None => self.problem(
                                &format!("line {}", n + 1),
                                format!("environment variable `{name}` is not set (referenced as ${{{name}}})"),
                            ),
                        }
                        rest = &after[j + 1..];
                    }
                    None => {
                        out.push_str("${");
                        rest = after;
                    }
                }
            }
            out.push_str(rest);
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
        match v.parse() {
            Ok(m) => Some(m),
            Err(e) => {
                self.problem(
                    key,
                    format!("not an email address {v:?}: {e} (e.g. \"Ana <ana@example.com>\")"),
                );
                None
            }
        }
    }

    fn positive(&mut self, key: &str, v: Option<f64>, default: f64) -> f64 {
        match v {
            Some(x) if !(x > 0.0 && x.is_finite()) => {
                self.problem(key, format!("must be > 0, got {x}"));
                default
            }
            Some(x) => x,
            None => default,
        }
    }

    fn non_negative(&mut self, key: &str, v: Option<f64>, default: f64) -> f64 {
        match v {
            Some(x) if !(x >= 0.0 && x.is_finite()) => {
                self.problem(key, format!("must be >= 0, got {x}"));
                default
            }
            Some(x) => x,
            None => default,
        }
    }

    fn dims(&mut self, m: std::collections::BTreeMap<String, String>) -> Vec<(String, String)> {
        m.into_iter().collect()
    }

    fn config(&mut self, raw: RawConfig, path: &Path) -> Config {
        let store_path = self.path(
            raw.store
                .as_ref()
                .and_then(|s| s.path.as_deref())
                .unwrap_or("callout.db"),
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
            calendars,
            events,
            web,
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
            Some(u)
                if (u.starts_with("https://") || u.starts_with("http://"))
                    && u.split("://").nth(1).is_some_and(|rest| !rest.is_empty())
                    && !u.contains(['?', '#', ' ']) =>
            {
                Some(u.trim_end_matches('/').to_string())
            }
            Some(u) => {
                self.problem(
                    "web.public_url",
                    format!("not a base URL {u:?} (http:// or https://, no query, e.g. \"https://callout.example.com\")"),
                );
                None
            }
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
        let raw = raw.unwrap_or(raw::RawSchedule {
            cron: None,
            timezone: None,
            run_timeout_secs: None,
        });
        let exprs = raw
            .cron
            .map(raw::OneOrMany::into_vec)
            .unwrap_or_else(|| vec!["0 0 7 * * *".to_string()]);
        let mut crons = Vec::new();
        for (i, e) in exprs.iter().enumerate() {
            match cron::Schedule::from_str(e) {
                Ok(s) => crons.push(s),
                Err(err) => self.problem(
                    &format!("schedule.cron[{i}]"),
                    format!("bad cron expression {e:?}: {err} (6 fields with seconds, e.g. \"0 0 7 * * Mon-Fri\")"),
                ),
            }
        }
        let timezone = self.tz("schedule.timezone", raw.timezone.as_deref());
        ScheduleConfig {
            crons,
            timezone,
            run_timeout: Duration::from_secs(raw.run_timeout_secs.unwrap_or(3600)),
        }
    }

    fn review(&mut self, raw: Option<raw::RawReview>) -> ReviewConfig {
        let raw = raw.unwrap_or(raw::RawReview {
            weekday: None,
            time: None,
            timezone: None,
            explanations_due_hours: None,
            name: None,
        });
        let weekday = match raw.weekday.as_deref() {
            None => Weekday::Wed,
            Some(w) => Weekday::from_str(w).unwrap_or_else(|_| {
                self.problem(
                    "review.weekday",
                    format!("not a weekday {w:?} (e.g. \"wed\" or \"Wednesday\")"),
                );
                Weekday::Wed
            }),
        };
        let time = match raw.time.as_deref() {
            None => NaiveTime::from_hms_opt(10, 0, 0).unwrap_or_default(),
            Some(t) => NaiveTime::parse_from_str(t, "%H:%M").unwrap_or_else(|_| {
                self.problem(
                    "review.time",
                    format!("not a time {t:?} (HH:MM, e.g. \"10:00\")"),
                );
                NaiveTime::default()
            }),
        };
        let timezone = self.tz("review.timezone", raw.timezone.as_deref());
        let due = raw.explanations_due_hours.unwrap_or(24);
        if !(0..=24 * 6).contains(&due) {
            self.problem(
                "review.explanations_due_hours",
                format!("must be between 0 and 144 hours, got {due}"),
            );
        }
        ReviewConfig {
            name: raw.name.unwrap_or_else(|| "WBR".into()),
            weekday,
            time,
            timezone,
            due_hours_before: due,
        }
    }

    fn detection(&mut self, raw: Option<raw::RawDetection>) -> DetectionConfig {
        let (fdr, cal) = raw.map(|r| (r.fdr, r.calendar)).unwrap_or((None, None));
        let fdr = match fdr {
            Some(q) if !(q > 0.0 && q < 1.0) => {
                self.problem(
                    "detection.fdr",
                    format!("must be between 0 and 1 (exclusive), got {q}"),
                );
                0.05
            }
            Some(q) => q,
            None => 0.05,
        };
        DetectionConfig {
            fdr,
            default_calendar: cal.unwrap_or_else(|| "default".into()),
        }
    }

    fn source(&mut self, i: usize, s: raw::RawSource) -> Option<SourceConfig> {
        let k = |f: &str| format!("source[{i}].{f}");
        let name = s.name.clone().unwrap_or_else(|| format!("source{i}"));
        let location = match (s.path, s.url) {
            (Some(p), None) => Location::Path(self.path(&p).to_string_lossy().into_owned()),
            (None, Some(u)) => {
                if !(u.starts_with("http://") || u.starts_with("https://")) {
                    self.problem(
                        &k("url"),
                        format!("must start with http:// or https://, got {u:?}"),
                    );
                }
                Location::Url(u)
            }
            (Some(_), Some(_)) => {
                self.problem(&k("path"), "give either `path` or `url`, not both".into());
                return None;
            }
            (None, None) => {
                self.problem(
                    &k("path"),
                    "missing: give `path` (file or glob) or `url`".into(),
                );
                return None;
            }
        };
        let target = match &location {
            Location::Path(p) | Location::Url(p) => p.to_ascii_lowercase(),
        };
        let format = match s.format.as_deref() {
            Some("csv") => Format::Csv,
            Some("parquet") => Format::Parquet,
            Some("ndjson") | Some("jsonl") | Some("json") => Format::Ndjson,
            Some(f) => {
                self.problem(
                    &k("format"),
                    format!("unknown format {f:?} (csv, parquet or ndjson)"),
                );
                Format::Csv
            }
            None => {
                let t = target.split('?').next().unwrap_or("");
                if t.ends_with(".parquet") || t.ends_with(".pq") {
                    Format::Parquet
                } else if t.ends_with(".ndjson") || t.ends_with(".jsonl") || t.ends_with(".json") {
                    Format::Ndjson
                } else {
                    Format::Csv
                }
            }
        };
        let layout = match s.layout.as_deref().unwrap_or("long") {
            "long" => {
                if s.metrics.is_some() {
                    self.problem(&k("metrics"), "only for layout = \"wide\"".into());
                }
                Layout::Long {
                    metric_column: s.metric_column.unwrap_or_else(|| "metric".into()),
                    value_column: s.value_column.unwrap_or_else(|| "value".into()),
                }
            }
            "wide" => {
                if s.metric_column.is_some() || s.value_column.is_some() {
                    self.problem(
                        &k("layout"),
                        "metric_column/value_column are only for layout = \"long\"".into(),
                    );
                }
                Layout::Wide { metrics: s.metrics }
            }
            l => {
                self.problem(
                    &k("layout"),
                    format!("must be \"long\" or \"wide\", got {l:?}"),
                );
                Layout::Wide { metrics: None }
            }
        };
        let granularity = s.granularity.as_deref().and_then(|g| {
            let parsed = Granularity::parse(g);
            if parsed.is_none() {
                self.problem(
                    &k("granularity"),
                    format!("unknown granularity {g:?} (minute, 5min, 15min, hour, day or week)"),
                );
            }
            parsed
        });
        let timezone = self.tz(&k("timezone"), s.timezone.as_deref());
        let delay = self.non_negative(&k("expected_delay_hours"), s.expected_delay_hours, 24.0);
        Some(SourceConfig {
            name,
            location,
            format,
            layout,
            time_column: s.time_column.unwrap_or_else(|| "date".into()),
            dimensions: s.dimensions,
            granularity,
            timezone,
            expected_delay: Duration::from_secs_f64(delay * 3600.0),
            timeout: Duration::from_secs(s.timeout_secs.unwrap_or(raw::DEFAULT_URL_TIMEOUT_SECS)),
            max_download_bytes: match s.max_download_bytes {
                Some(0) => {
                    self.problem(&k("max_download_bytes"), "must be at least 1".into());
                    raw::DEFAULT_MAX_DOWNLOAD_BYTES
                }
                n => n.unwrap_or(raw::DEFAULT_MAX_DOWNLOAD_BYTES),
            },
            duplicates: match s.duplicates.as_deref() {
                None => Duplicates::Error,
                Some(d) => Duplicates::parse(d).unwrap_or_else(|| {
                    self.problem(
                        &k("duplicates"),
                        format!(
                            "must be \"error\", \"first\", \"last\", \"sum\" or \"mean\", got {d:?}"
                        ),
                    );
                    Duplicates::Error
                }),
            },
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
        let direction = match m.direction.as_deref() {
            None => Direction::Both,
            Some("up") => Direction::Up,
            Some("down") => Direction::Down,
            Some("both") => Direction::Both,
            Some(x) => {
                self.problem(
                    &k("direction"),
                    format!("must be \"up\", \"down\" or \"both\", got {x:?}"),
                );
                Direction::Both
            }
        };
        let sensitivity = self.positive(&k("sensitivity"), m.sensitivity, d.sensitivity);
        let min_history = match m.min_history {
            Some(h) if h < 1 => {
                self.problem(&k("min_history"), format!("must be >= 1 period, got {h}"));
                None
            }
            h => h.map(|h| h as usize),
        };
        let min_abs_change =
            self.non_negative(&k("min_abs_change"), m.min_abs_change, d.min_abs_change);
        let min_rel_change =
            self.non_negative(&k("min_rel_change"), m.min_rel_change, d.min_rel_change);
        let (lower_bound, upper_bound) = match m.bounds {
            Some(b) => {
                if let (Some(l), Some(u)) = (b.lower, b.upper) {
                    if l > u {
                        self.problem(&k("bounds"), format!("lower ({l}) is above upper ({u})"));
                    }
                }
                (b.lower, b.upper)
            }
            None => (None, None),
        };
        let max_pct_change = m
            .max_pct_change
            .map(|x| self.positive(&k("max_pct_change"), Some(x), 100.0));
        let stale_periods = match m.stale_periods {
            Some(n) if n < 2 => {
                self.problem(&k("stale_periods"), format!("must be >= 2, got {n}"));
                d.stale_periods
            }
            Some(n) => n as usize,
            None => d.stale_periods,
        };
        let scale = match m.scale.as_deref() {
            None | Some("auto") => Scale::Auto,
            Some("log") => Scale::Log,
            Some("linear") => Scale::Linear,
            Some(x) => {
                self.problem(
                    &k("scale"),
                    format!("must be \"auto\", \"log\" or \"linear\", got {x:?}"),
                );
                Scale::Auto
            }
        };
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
            seasonality: m.seasonality.unwrap_or(true),
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
            if let Some(email) = self.mailbox(&format!("owners.rule[{i}].email"), email) {
                let dims = self.dims(r.dims);
                rules.push(OwnerRule {
                    pattern,
                    dims,
                    email,
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
        let security = match s.security.as_deref() {
            None | Some("starttls") => Security::StartTls,
            Some("tls") => Security::Tls,
            Some("none") => Security::None,
            Some(x) => {
                self.problem(
                    "smtp.security",
                    format!("must be \"starttls\", \"tls\" or \"none\", got {x:?}"),
                );
                Security::StartTls
            }
        };
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
        let port = s.port.unwrap_or(match security {
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
            timeout: Duration::from_secs(s.timeout_secs.unwrap_or(30)),
        })
    }

    fn alerts(&mut self, raw: Option<raw::RawAlerts>) -> AlertsConfig {
        let (close, retry) = raw
            .map(|r| (r.close_after_periods, r.retry_base_secs))
            .unwrap_or((None, None));
        let close = match close {
            Some(n) if n < 1 => {
                self.problem(
                    "alerts.close_after_periods",
                    format!("must be >= 1, got {n}"),
                );
                3
            }
            Some(n) => n as u32,
            None => 3,
        };
        AlertsConfig {
            close_after_periods: close,
            retry_base: Duration::from_secs(retry.unwrap_or(60)),
        }
    }

    fn calendar(&mut self, i: usize, c: raw::RawCalendar) -> CalendarConfig {
        let name = c.name.unwrap_or_else(|| {
            self.problem(&format!("calendar[{i}].name"), "missing".into());
            String::new()
        });
        let holidays = c.holidays.unwrap_or_else(|| {
            crate::detect::calendar::DEFAULT_HOLIDAYS
                .iter()
                .map(|s| s.to_string())
                .collect()
        });
        for (j, h) in holidays.iter().enumerate() {
            if !crate::detect::calendar::is_builtin(h) {
                self.problem(
                    &format!("calendar[{i}].holidays[{j}]"),
                    format!(
                        "unknown holiday {h:?} (built in: {})",
                        crate::detect::calendar::BUILTIN.join(", ")
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
        let action = match e.action.as_deref() {
            None | Some("excuse") => EventAction::Excuse,
            Some("annotate") => EventAction::Annotate,
            Some(x) => {
                self.problem(
                    &k("action"),
                    format!("must be \"excuse\" or \"annotate\", got {x:?}"),
                );
                EventAction::Excuse
            }
        };
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

fn star() -> MetricGlob {
    MetricGlob::new("*").unwrap_or_else(|_| MetricGlob(glob::Pattern::default()))
}
