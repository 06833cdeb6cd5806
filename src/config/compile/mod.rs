//! Raw config → checked [`Config`], collecting every problem.
//!
//! One compiler style for every section: a [`Compiler`] holds the problems
//! found so far (each with its key path) and the config file's folder; each
//! section is a method on it, in a file of its own, that returns the checked
//! value and reports what is wrong instead of stopping.
//!
//! - this file: [`load`], [`compile_str`] and the whole-file assembly.
//! - `problems`: error collection and key paths; `values`: typed values in
//!   their named ranges; `env`: `${VAR}` expansion.
//! - a file per section: `sources`, `metrics`, `owners`, `delivery` (smtp,
//!   alerts, reminders), `schedule` (and review), `detection`, `web`,
//!   `calendar` (and events), `report` (and plans).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono::{NaiveDate, NaiveTime, Weekday};
use chrono_tz::Tz;

use super::fields;
use super::raw::{self, RawConfig};
use super::syntax::http_url;
use super::*;
use crate::model::{Check, Granularity};
use problems::*;
use sources::header_units;
use values::*;

mod calendar;
mod delivery;
mod detection;
mod env;
mod metrics;
mod owners;
mod problems;
mod report;
mod schedule;
mod sources;
mod values;
mod web;

#[cfg(test)]
mod tests;

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

/// The compilation under way: each section's method reports to it.
struct Compiler {
    /// Every problem found so far, in the order found (the first of a key wins).
    problems: Vec<ConfigProblem>,
    /// The config file's folder: relative paths in it are relative to this.
    base: PathBuf,
}

impl Compiler {
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
        let mut dimensions: Vec<&str> = Vec::new();
        for d in sources.iter().flat_map(|s| &s.dimensions) {
            if !dimensions.contains(&d.as_str()) {
                dimensions.push(d);
            }
        }
        let metrics: Vec<MetricRule> = raw
            .metric
            .into_iter()
            .enumerate()
            .map(|(i, m)| self.metric(i, m, &dimensions))
            .collect();
        let derived = self.derived(raw.derived);
        let chat = self.chats(raw.chat);
        let owners = self.owners(raw.owners, &chat);
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
        let mut report = self.report(raw.report, raw.plan, &chat);
        report.header_units = header_units(&sources);
        self.rates_rolled_up(&metrics, &report);
        metrics::derived_in_report(&derived, &mut report);
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
            derived,
            default_rule,
            owners,
            smtp,
            chat,
            alerts,
            reminders,
            calendars,
            events,
            web,
            report,
        }
    }
}
