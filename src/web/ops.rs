//! `/healthz` and `/metrics`: the decisions and the text, pure.
//!
//! Health: the daemon is healthy while its newest scheduled run finished and
//! the next fire time (plus [`GRACE`]) has not passed, or while a run is still
//! within its timeout. Before the first scheduled run, the first fire time
//! after the server started counts. Metrics are Prometheus text format 0.0.4.

use std::fmt::Write as _;

use chrono::{DateTime, Duration, Utc};

use crate::config::ScheduleConfig;
use crate::schedule;
use crate::store::ops::{OpsStats, RunTimes};

/// How late a run may start or finish before the daemon counts as unhealthy:
/// the daemon re-reads the clock at least every minute, and a loaded machine
/// may start a run a few minutes late without anything being wrong.
pub const GRACE: Duration = Duration::minutes(10);

/// The verdict of `/healthz`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Health {
    /// `ok` or `unhealthy`.
    pub status: &'static str,
    /// What the verdict is based on, in words.
    pub detail: String,
    /// Finish time of the newest scheduled run (RFC 3339), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_run_finished_at: Option<String>,
    /// When the next scheduled run is due (RFC 3339), if the schedule fires again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_run_due: Option<String>,
}

impl Health {
    /// True for 200, false for 503.
    pub fn is_ok(&self) -> bool {
        self.status == "ok"
    }
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Decide health from the newest scheduled run, the schedule and the clock.
pub fn health(
    schedule: &ScheduleConfig,
    latest: Option<RunTimes>,
    up_since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Health {
    let verdict =
        |ok: bool, detail: String, finished: Option<i64>, next: Option<DateTime<Utc>>| Health {
            status: if ok { "ok" } else { "unhealthy" },
            detail,
            last_run_finished_at: finished.map(|f| at(f).to_rfc3339()),
            next_run_due: next.map(|n| n.to_rfc3339()),
        };
    let next_after =
        |t: DateTime<Utc>| schedule::next_fire(schedule, t).map(|n| n.with_timezone(&Utc));
    match latest {
        Some(RunTimes {
            started_at,
            finished_at: None,
        }) => {
            let limit = at(started_at)
                + Duration::from_std(schedule.run_timeout).unwrap_or(Duration::hours(1))
                + GRACE;
            if now > limit {
                verdict(
                    false,
                    format!(
                        "the run started at {} has not finished",
                        at(started_at).to_rfc3339()
                    ),
                    None,
                    None,
                )
            } else {
                verdict(true, "a scheduled run is in progress".into(), None, None)
            }
        }
        Some(RunTimes {
            finished_at: Some(f),
            ..
        }) => match next_after(at(f)) {
            Some(next) if now > next + GRACE => verdict(
                false,
                format!(
                    "overdue: the next scheduled run was due at {}",
                    next.to_rfc3339()
                ),
                Some(f),
                Some(next),
            ),
            next => verdict(
                true,
                "the last scheduled run completed".into(),
                Some(f),
                next,
            ),
        },
        None => match next_after(up_since) {
            Some(next) if now > next + GRACE => verdict(
                false,
                format!(
                    "no scheduled run recorded; the first was due at {}",
                    next.to_rfc3339()
                ),
                None,
                Some(next),
            ),
            Some(next) => verdict(
                true,
                "waiting for the first scheduled run".into(),
                None,
                Some(next),
            ),
            None => verdict(false, "the schedule never fires".into(), None, None),
        },
    }
}

/// Escape a label value (backslash, double quote, newline).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The `/metrics` body.
pub fn metrics_text(s: &OpsStats) -> String {
    let mut o = String::new();
    family(
        &mut o,
        "callout_runs_total",
        "counter",
        "Runs recorded in the store, by outcome (running, ok, partial, ...).",
    );
    for (status, n) in &s.runs_by_status {
        let _ = writeln!(o, "callout_runs_total{{outcome=\"{}\"}} {n}", label(status));
    }
    family(
        &mut o,
        "callout_findings_total",
        "counter",
        "Findings stored over all runs, by check.",
    );
    for (check, n) in &s.findings_by_check {
        let _ = writeln!(
            o,
            "callout_findings_total{{check=\"{}\"}} {n}",
            label(check)
        );
    }
    let gauges: [(&str, &str, &str, i64); 7] = [
        (
            "callout_incidents_open",
            "gauge",
            "Incidents not yet back to normal.",
            s.incidents_open,
        ),
        (
            "callout_incidents_explained",
            "gauge",
            "Incidents their owner has explained.",
            s.incidents_explained,
        ),
        (
            "callout_digests_queued_total",
            "counter",
            "Messages ever queued in the outbox (mail and chat).",
            s.mail_queued,
        ),
        (
            "callout_digests_sent_total",
            "counter",
            "Messages the SMTP server or a chat webhook accepted.",
            s.mail_sent,
        ),
        (
            "callout_digests_failed",
            "gauge",
            "Unsent messages whose last attempt failed (retried with backoff).",
            s.mail_failing,
        ),
        (
            "callout_outbox_depth",
            "gauge",
            "Messages waiting to be sent.",
            s.outbox_depth,
        ),
        (
            "callout_digests_undeliverable",
            "gauge",
            "Messages given up on (refused for good by the server, or in doubt twice): `callout outbox` lists them.",
            s.mail_undeliverable,
        ),
    ];
    for (name, kind, help, v) in gauges {
        family(&mut o, name, kind, help);
        let _ = writeln!(o, "{name} {v}");
    }
    if let Some(t) = s.last_ok_run_at {
        family(
            &mut o,
            "callout_last_successful_run_timestamp_seconds",
            "gauge",
            "When the newest run that ended ok finished (Unix time).",
        );
        let _ = writeln!(
            o,
            "callout_last_successful_run_timestamp_seconds {:.3}",
            t as f64 / 1000.0
        );
    }
    if let Some(d) = s.last_run_duration_ms {
        family(
            &mut o,
            "callout_last_run_duration_seconds",
            "gauge",
            "How long the newest finished run took.",
        );
        let _ = writeln!(
            o,
            "callout_last_run_duration_seconds {:.3}",
            d as f64 / 1000.0
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::str::FromStr;

    fn daily_7am() -> ScheduleConfig {
        ScheduleConfig {
            crons: vec![cron::Schedule::from_str("0 0 7 * * *").unwrap()],
            timezone: chrono_tz::UTC,
            run_timeout: std::time::Duration::from_secs(3600),
        }
    }

    fn t(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, d, h, m, 0).unwrap()
    }

    fn run(start: DateTime<Utc>, end: Option<DateTime<Utc>>) -> Option<RunTimes> {
        Some(RunTimes {
            started_at: start.timestamp_millis(),
            finished_at: end.map(|e| e.timestamp_millis()),
        })
    }

    /// (latest run, now) → healthy?
    fn check(latest: Option<RunTimes>, now: DateTime<Utc>, want: bool) {
        let h = health(&daily_7am(), latest, t(20, 12, 0), now);
        assert_eq!(h.is_ok(), want, "{h:?}");
    }

    #[test]
    fn healthy_while_runs_complete_on_schedule() {
        let done = run(t(24, 7, 0), Some(t(24, 7, 5)));
        check(done, t(24, 12, 0), true);
        check(done, t(25, 7, 9), true);
        check(done, t(25, 7, 11), false);
        check(run(t(25, 7, 0), None), t(25, 7, 30), true);
        check(run(t(25, 7, 0), None), t(25, 8, 11), false);
        check(None, t(20, 13, 0), true);
        check(None, t(21, 7, 11), false);
        let h = health(&daily_7am(), done, t(20, 12, 0), t(25, 8, 0));
        assert!(
            h.detail.contains("overdue") && h.next_run_due.is_some(),
            "{h:?}"
        );
        let body = serde_json::to_string(&h).unwrap();
        assert!(body.contains("\"status\":\"unhealthy\""), "{body}");
    }

    #[test]
    fn metrics_have_help_type_and_escaped_labels() {
        let s = OpsStats {
            runs_by_status: vec![("ok".into(), 3), ("we\"ird".into(), 1)],
            findings_by_check: vec![("seasonal".into(), 7)],
            incidents_open: 2,
            last_ok_run_at: Some(1_700_000_000_000),
            ..OpsStats::default()
        };
        let m = metrics_text(&s);
        assert!(m.contains("callout_runs_total{outcome=\"ok\"} 3\n"), "{m}");
        assert!(
            m.contains("callout_runs_total{outcome=\"we\\\"ird\"} 1\n"),
            "{m}"
        );
        assert!(m.contains("# TYPE callout_incidents_open gauge\ncallout_incidents_open 2\n"));
        assert!(m.contains("callout_last_successful_run_timestamp_seconds 1700000000.000"));
        assert!(
            !m.contains("callout_last_run_duration_seconds"),
            "absent when unknown"
        );
    }
}
