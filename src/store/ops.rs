//! Read-only counts for operations: what `/metrics` and `/healthz` report.
//!
//! One consistent read of the whole store; no decisions (health is decided in
//! `web::ops`).

use rusqlite::OptionalExtension;

use super::{RunKind, Store, StoreError};

/// Counts over the whole store, for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpsStats {
    /// Finished runs by `status` (`ok`, `partial`, …) and `running` ones.
    pub runs_by_status: Vec<(String, i64)>,
    /// Stored findings (all runs) by check name.
    pub findings_by_check: Vec<(String, i64)>,
    /// Incidents not closed.
    pub incidents_open: i64,
    /// Incidents with at least one explanation.
    pub incidents_explained: i64,
    /// Messages ever queued in the outbox.
    pub mail_queued: i64,
    /// Messages the server accepted.
    pub mail_sent: i64,
    /// Unsent messages whose last attempt failed.
    pub mail_failing: i64,
    /// Unsent messages still to be tried (failing or not yet tried).
    pub outbox_depth: i64,
    /// Messages given up on (refused for good, or in doubt twice), not re-queued.
    pub mail_undeliverable: i64,
    /// Finish time (ms, UTC) of the newest run that ended `ok`.
    pub last_ok_run_at: Option<i64>,
    /// Duration (ms) of the newest finished run.
    pub last_run_duration_ms: Option<i64>,
}

/// The newest run of a mode, for `/healthz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunTimes {
    /// Started at (ms, UTC); for the daemon this is the scheduled fire time.
    pub started_at: i64,
    /// Finished at, while still running `None`.
    pub finished_at: Option<i64>,
}

impl Store {
    fn grouped(&self, sql: &str, context: &'static str) -> Result<Vec<(String, i64)>, StoreError> {
        let mut st = self.conn.prepare_cached(sql).map_err(self.q(context))?;
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(self.q(context))
    }

    fn count(&self, sql: &str, context: &'static str) -> Result<i64, StoreError> {
        self.conn
            .query_row(sql, [], |r| r.get(0))
            .map_err(self.q(context))
    }

    /// Every count `/metrics` reports.
    pub fn ops_stats(&self) -> Result<OpsStats, StoreError> {
        let last_run: Option<(Option<i64>, Option<i64>)> = self
            .conn
            .query_row(
                "SELECT started_at, finished_at FROM runs WHERE finished_at IS NOT NULL
                 ORDER BY finished_at DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(self.q("read last run"))?;
        Ok(OpsStats {
            runs_by_status: self.grouped(
                "SELECT status, count(*) FROM runs GROUP BY status ORDER BY status",
                "count runs",
            )?,
            findings_by_check: self.grouped(
                "SELECT \"check\", count(*) FROM findings GROUP BY \"check\" ORDER BY \"check\"",
                "count findings",
            )?,
            incidents_open: self.count(
                "SELECT count(*) FROM incidents WHERE closed_at_ts IS NULL",
                "count open incidents",
            )?,
            incidents_explained: self.count(
                "SELECT count(DISTINCT incident_id) FROM explanations",
                "count explained incidents",
            )?,
            mail_queued: self.count("SELECT count(*) FROM outbox", "count outbox")?,
            mail_sent: self.count(
                "SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL",
                "count sent mail",
            )?,
            mail_failing: self.count(
                "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND last_error IS NOT NULL
                    AND undeliverable_at IS NULL",
                "count failing mail",
            )?,
            outbox_depth: self.count(
                "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND undeliverable_at IS NULL",
                "count unsent mail",
            )?,
            mail_undeliverable: i64::try_from(self.undeliverable_count()?).unwrap_or(i64::MAX),
            last_ok_run_at: self
                .conn
                .query_row(
                    "SELECT max(finished_at) FROM runs WHERE status = 'ok'",
                    [],
                    |r| r.get(0),
                )
                .map_err(self.q("read last ok run"))?,
            last_run_duration_ms: last_run.and_then(|(s, f)| Some(f? - s?)),
        })
    }

    /// Start and finish of the newest run of `mode` (`Run`: the daemon's scheduled runs).
    pub fn latest_run_times(&self, mode: RunKind) -> Result<Option<RunTimes>, StoreError> {
        self.conn
            .query_row(
                "SELECT started_at, finished_at FROM runs WHERE mode = ?1 ORDER BY id DESC LIMIT 1",
                [mode],
                |r| {
                    Ok(RunTimes {
                        started_at: r.get(0)?,
                        finished_at: r.get(1)?,
                    })
                },
            )
            .optional()
            .map_err(self.q("read latest run"))
    }
}
