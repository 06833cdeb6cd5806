//! The `runs` table: one row per evaluation cycle, and the lock file that
//! tells a live run from one whose process died.

use std::fs::File;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use fs4::{FileExt, TryLockError};
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::{Store, StoreError};

/// What started a run (the `mode` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    /// A scheduled cycle of the daemon (what `/healthz` watches).
    Run,
    /// `callout run --once`.
    Once,
    /// `callout backfill --store`, and the demo's replay of history.
    Backfill,
}

impl RunKind {
    /// Name as stored (`run`, `once`, `backfill`).
    pub const fn as_str(self) -> &'static str {
        match self {
            RunKind::Run => "run",
            RunKind::Once => "once",
            RunKind::Backfill => "backfill",
        }
    }

    /// Inverse of [`RunKind::as_str`].
    pub fn parse(s: &str) -> Option<RunKind> {
        [RunKind::Run, RunKind::Once, RunKind::Backfill]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// How a run ended (the `status` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Not finished: in progress, or its process died and no later run has
    /// looked yet.
    Running,
    /// Finished without a problem.
    Ok,
    /// Finished, with problems (a source that failed, mail not sent, …)
    /// listed in its summary.
    Partial,
    /// Its process ended without finishing it (killed or crashed), as found
    /// by a later run's start.
    Interrupted,
}

impl RunStatus {
    /// Name as stored (`running`, `ok`, `partial`, `interrupted`).
    pub const fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Ok => "ok",
            RunStatus::Partial => "partial",
            RunStatus::Interrupted => "interrupted",
        }
    }

    /// Inverse of [`RunStatus::as_str`].
    pub fn parse(s: &str) -> Option<RunStatus> {
        [
            RunStatus::Running,
            RunStatus::Ok,
            RunStatus::Partial,
            RunStatus::Interrupted,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One row of `runs`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    /// Run id.
    pub id: i64,
    /// What started it.
    pub mode: RunKind,
    /// Start, ms since epoch (UTC).
    pub started_at: i64,
    /// End, when finished.
    pub finished_at: Option<i64>,
    /// `Running` until finished, then what the caller said.
    pub status: RunStatus,
    /// Caller-defined summary.
    pub summary: Option<serde_json::Value>,
}

/// The runs not finished, oldest first. Read at every run's start: the
/// partial index `runs_running` answers it without reading the table, so its
/// cost does not grow with the number of runs ever made.
const UNFINISHED_RUNS: &str = "SELECT id FROM runs WHERE status = 'running' ORDER BY id";

impl Store {
    /// Record the start of a run of `mode`.
    pub fn begin_run(&self, mode: RunKind, started_at: DateTime<Utc>) -> Result<i64, StoreError> {
        // One write transaction: another process's begin_run sees this row
        // only once its lock file is locked, so it never mistakes it for dead.
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)
            .map_err(self.q("begin run"))?;
        let interrupted = self.mark_interrupted_runs(started_at)?;
        self.conn
            .execute(
                "INSERT INTO runs (mode, started_at) VALUES (?1, ?2)",
                params![mode, started_at.timestamp_millis()],
            )
            .map_err(self.q("begin run"))?;
        let id = self.conn.last_insert_rowid();
        let lock = self.lock_run(id)?;
        tx.commit().map_err(self.q("begin run"))?;
        self.run_locks.borrow_mut().insert(id, lock);
        if !interrupted.is_empty() {
            tracing::warn!(
                store = %self.path.display(),
                runs = ?interrupted,
                "earlier run(s) ended without finishing (killed or crashed); marked interrupted"
            );
        }
        Ok(id)
    }

    /// The lock file of run `id`, next to the store.
    fn run_lock_path(&self, id: i64) -> PathBuf {
        let mut name = self
            .path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        name.push(format!(".run-{id}.lock"));
        self.path.with_file_name(name)
    }

    /// Create run `id`'s lock file and lock it for the life of the run.
    fn lock_run(&self, id: i64) -> Result<File, StoreError> {
        let path = self.run_lock_path(id);
        let io = |source: std::io::Error| StoreError::RunLock {
            path: path.clone(),
            source,
        };
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io)?;
        // UFCS: std's inherent File::try_lock would need Rust 1.89.
        match FileExt::try_lock(&file) {
            Ok(()) => Ok(file),
            Err(TryLockError::WouldBlock) => Err(io(std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                "already locked by another process",
            ))),
            Err(TryLockError::Error(e)) => Err(io(e)),
        }
    }

    /// Mark runs still `running` whose process is gone as `interrupted`;
    /// returns their ids. A run is gone when its lock file is missing or can
    /// be locked (the OS released the dead process's lock). Runs of this
    /// `Store` and runs whose lock another live process holds are left alone.
    fn mark_interrupted_runs(&self, now: DateTime<Utc>) -> Result<Vec<i64>, StoreError> {
        let running: Vec<i64> = self
            .conn
            .prepare_cached(UNFINISHED_RUNS)
            .and_then(|mut st| {
                st.query_map([], |r| r.get(0))
                    .and_then(|rows| rows.collect::<Result<Vec<i64>, _>>())
            })
            .map_err(self.q("find unfinished runs"))?;
        let mut interrupted = Vec::new();
        for id in running {
            if self.run_locks.borrow().contains_key(&id) {
                continue;
            }
            let path = self.run_lock_path(id);
            let dead_lock = match File::options().write(true).open(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(_) => continue, // cannot tell: leave it
                Ok(f) => match FileExt::try_lock(&f) {
                    Ok(()) => Some(f),
                    Err(_) => continue, // alive (or cannot tell)
                },
            };
            let note = serde_json::json!({
                "interrupted": "the process ended without finishing this run (killed or crashed)",
                "found_at": now.timestamp_millis(),
            });
            self.conn
                .execute(
                    "UPDATE runs SET status = 'interrupted', summary = ?2
                     WHERE id = ?1 AND status = 'running'",
                    params![id, note.to_string()],
                )
                .map_err(self.q("mark interrupted run"))?;
            // its claims on outbox rows die with it (they would expire anyway)
            self.conn
                .execute(
                    "UPDATE outbox SET claimed_by = NULL, claim_expires_at = NULL
                     WHERE substr(claimed_by, 1, length(?1)) = ?1",
                    [super::claim_prefix(id)],
                )
                .map_err(self.q("release claims of an interrupted run"))?;
            if dead_lock.is_some() {
                let _ = std::fs::remove_file(&path);
            }
            interrupted.push(id);
        }
        Ok(interrupted)
    }

    /// Record the end of a run with its status (`Ok` or `Partial`) and summary.
    pub fn finish_run(
        &self,
        id: i64,
        status: RunStatus,
        summary: &serde_json::Value,
        finished_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let n = self
            .conn
            .execute(
                "UPDATE runs SET finished_at = ?2, status = ?3, summary = ?4 WHERE id = ?1",
                params![
                    id,
                    finished_at.timestamp_millis(),
                    status,
                    summary.to_string()
                ],
            )
            .map_err(self.q("finish run"))?;
        if n == 0 {
            return Err(StoreError::Invalid {
                path: self.path.clone(),
                context: "finish run",
                value: id.to_string(),
                expected: "the id of a run from begin_run",
            });
        }
        if let Some(lock) = self.run_locks.borrow_mut().remove(&id) {
            // Remove while still holding the lock, then release it.
            let _ = std::fs::remove_file(self.run_lock_path(id));
            drop(lock);
        }
        Ok(())
    }

    /// The id of the newest finished run of any mode (what a cached report
    /// was read after: a newer one may have seen newer exports).
    pub fn latest_finished_run(&self) -> Result<Option<i64>, StoreError> {
        self.conn
            .query_row(
                "SELECT MAX(id) FROM runs WHERE finished_at IS NOT NULL",
                [],
                |r| r.get(0),
            )
            .map_err(self.q("read latest run"))
    }

    /// One run by id.
    pub fn run(&self, id: i64) -> Result<Option<RunRow>, StoreError> {
        let row = self
            .conn
            .query_row(
                "SELECT id, mode, started_at, finished_at, status, summary FROM runs WHERE id = ?1",
                [id],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, RunKind>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, Option<i64>>(3)?,
                        r.get::<_, RunStatus>(4)?,
                        r.get::<_, Option<String>>(5)?,
                    ))
                },
            )
            .optional()
            .map_err(self.q("read run"))?;
        let Some((id, mode, started_at, finished_at, status, summary)) = row else {
            return Ok(None);
        };
        let summary = match summary {
            Some(s) => Some(
                serde_json::from_str(&s).map_err(|_| self.bad("read run summary", s.clone()))?,
            ),
            None => None,
        };
        Ok(Some(RunRow {
            id,
            mode,
            started_at,
            finished_at,
            status,
            summary,
        }))
    }

    /// The newest finished run of `mode`, if any.
    pub fn last_finished_run(&self, mode: RunKind) -> Result<Option<RunRow>, StoreError> {
        let id: Option<i64> = self
            .conn
            .query_row(
                "SELECT id FROM runs WHERE mode = ?1 AND finished_at IS NOT NULL ORDER BY id DESC LIMIT 1",
                [mode],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.q("find last run"))?;
        match id {
            Some(id) => self.run(id),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2020, 11, 30, 7, 0, 0).unwrap()
    }

    #[test]
    fn finish_run_records_status_and_summary() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("s.db")).unwrap();
        let id = s.begin_run(RunKind::Run, t0()).unwrap();
        let summary = serde_json::json!({"findings": 3});
        s.finish_run(
            id,
            RunStatus::Ok,
            &summary,
            t0() + chrono::Duration::seconds(5),
        )
        .unwrap();
        let r = s.run(id).unwrap().unwrap();
        assert_eq!(r.status, RunStatus::Ok);
        assert_eq!(r.summary.as_ref(), Some(&summary));
        assert_eq!(
            r.finished_at,
            Some(t0().timestamp_millis() + 5000),
            "finish time stored"
        );
        assert_eq!(
            s.last_finished_run(RunKind::Run).unwrap().map(|r| r.id),
            Some(id)
        );
        assert!(
            s.finish_run(id + 100, RunStatus::Ok, &summary, t0())
                .is_err()
        );
    }

    #[test]
    fn a_run_start_does_not_read_every_earlier_run() {
        // The look for unfinished runs at each start (the daemon's every
        // cycle) does the same work after 3 finished runs and after 3,003: it
        // reads the partial index, not the table (issue 21, item 15: a full
        // scan made each cycle's memory grow with the store's history).
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("s.db")).unwrap();
        let add_finished = |n: i64| {
            s.conn
                .execute(
                    "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ?1)
                     INSERT INTO runs (mode, started_at, finished_at, status, summary)
                     SELECT 'run', i, i + 1, 'ok', '{}' FROM k",
                    [n],
                )
                .unwrap();
        };
        // (unfinished ids, the statement's VM steps)
        let look = || {
            let mut st = s.conn.prepare(UNFINISHED_RUNS).unwrap();
            let ids: Vec<i64> = st
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            (ids, st.get_status(rusqlite::StatementStatus::VmStep))
        };
        add_finished(3);
        let running = s.begin_run(RunKind::Run, t0()).unwrap();
        let few = look();
        assert_eq!(few.0, vec![running]);
        add_finished(3000);
        assert_eq!(look(), few, "the look's work grew with the finished runs");
    }

    #[test]
    fn a_killed_run_is_marked_interrupted_at_the_next_start_and_a_live_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.db");
        // Killed: its process (here: its Store, holding the lock) is gone
        // without finishing the run.
        let killed = {
            let s = Store::open(&p).unwrap();
            s.begin_run(RunKind::Run, t0()).unwrap()
        };
        let status = |s: &Store, id| s.run(id).unwrap().unwrap().status;
        // Another process starts a run: the killed one is found and marked.
        let other = Store::open(&p).unwrap();
        let live = other.begin_run(RunKind::Once, t0()).unwrap();
        assert_eq!(status(&other, killed), RunStatus::Interrupted);
        assert!(!dir.path().join(format!("s.db.run-{killed}.lock")).exists());
        let r = other.run(killed).unwrap().unwrap();
        assert!(r.finished_at.is_none(), "its end is unknown");
        assert!(
            r.summary.unwrap()["interrupted"]
                .as_str()
                .unwrap()
                .contains("killed"),
        );
        // A third process starts while `live` is still running: left alone.
        let third = Store::open(&p).unwrap();
        let t = third.begin_run(RunKind::Run, t0()).unwrap();
        assert_eq!(status(&third, live), RunStatus::Running);
        other
            .finish_run(live, RunStatus::Ok, &serde_json::json!({}), t0())
            .unwrap();
        assert!(!dir.path().join(format!("s.db.run-{live}.lock")).exists());
        third
            .finish_run(t, RunStatus::Ok, &serde_json::json!({}), t0())
            .unwrap();
        assert_eq!(status(&third, live), RunStatus::Ok);
        assert_eq!(status(&third, killed), RunStatus::Interrupted);
    }
}
