//! State: the SQLite file that remembers runs, findings, incidents and mail.
//!
//! Owns the schema ([`schema`]) and every SQL statement; callers see typed rows.
//! Opening checks that the file really is a callout store and migrates an
//! older schema forward; it never recreates or overwrites a file it does not
//! recognise. WAL mode and a busy timeout let a second process (a CLI command
//! next to the daemon) read while the daemon writes.
//!
//! Must not: decide anything. Incident logic lives in `alert`; this module
//! only stores and fetches. All calls are synchronous; the daemon calls them
//! from `spawn_blocking`.

pub mod explanations;
pub mod history;
pub mod ops;
pub mod schema;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior, params};

use crate::model::{Check, Direction, Finding, Granularity, SeriesKey};
use schema::{APPLICATION, MIGRATIONS, Migration};

/// How long a statement waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(15);

/// Everything that can go wrong with the state file; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The folder that should hold the store does not exist.
    #[error(
        "cannot open store `{path}`: folder `{dir}` does not exist (create it or fix [store] path)"
    )]
    NoFolder {
        /// The store file.
        path: PathBuf,
        /// Its missing parent folder.
        dir: PathBuf,
    },
    /// SQLite could not open the file at all.
    #[error("cannot open store `{path}`: {source}")]
    Open {
        /// The store file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The file exists but is not an SQLite database.
    #[error(
        "`{path}` is not a callout store (not an SQLite database); refusing to touch it — point [store] path at a new or existing callout store"
    )]
    NotADatabase {
        /// The file.
        path: PathBuf,
    },
    /// The file is an SQLite database written by something else.
    #[error(
        "`{path}` is an SQLite database but not a callout store ({detail}); refusing to touch it — point [store] path at a new or existing callout store"
    )]
    Foreign {
        /// The file.
        path: PathBuf,
        /// Why it was not recognised.
        detail: String,
    },
    /// The store was written by a newer callout.
    #[error(
        "store `{path}` has schema version {found}, but this callout knows versions up to {known}; upgrade callout (the store was left untouched)"
    )]
    TooNew {
        /// The store file.
        path: PathBuf,
        /// `user_version` of the file.
        found: i64,
        /// Newest version this build knows.
        known: i64,
    },
    /// A migration step failed; the store stays at the previous version.
    #[error("cannot migrate store `{path}` to schema version {version} ({name}): {source}")]
    Migrate {
        /// The store file.
        path: PathBuf,
        /// The version that could not be reached.
        version: i64,
        /// The step's name.
        name: &'static str,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// A statement failed.
    #[error("store `{path}`: {context}: {source}")]
    Query {
        /// The store file.
        path: PathBuf,
        /// What was being done.
        context: &'static str,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// A stored value could not be read back.
    #[error("store `{path}`: {context}: unexpected stored value `{value}`")]
    BadValue {
        /// The store file.
        path: PathBuf,
        /// What was being read.
        context: &'static str,
        /// The value.
        value: String,
    },
    /// A caller passed a value the store does not accept.
    #[error("store `{path}`: {context}: `{value}` is not allowed ({expected})")]
    Invalid {
        /// The store file.
        path: PathBuf,
        /// What was being written.
        context: &'static str,
        /// The value.
        value: String,
        /// What would be right.
        expected: &'static str,
    },
}

/// An open store.
pub struct Store {
    /// The one connection; rusqlite connections are `Send` but not `Sync`,
    /// which matches one blocking task using the store at a time.
    conn: Connection,
    /// For error messages.
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// One row of `runs`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    /// Run id.
    pub id: i64,
    /// `run`, `once` or `backfill`.
    pub mode: String,
    /// Start, ms since epoch (UTC).
    pub started_at: i64,
    /// End, when finished.
    pub finished_at: Option<i64>,
    /// `running` until finished, then what the caller said.
    pub status: String,
    /// Caller-defined summary.
    pub summary: Option<serde_json::Value>,
}

/// One row of `incidents`.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentRow {
    /// Incident id.
    pub id: i64,
    /// Source name.
    pub source: String,
    /// The series.
    pub key: SeriesKey,
    /// Granularity of the series' findings.
    pub granularity: Granularity,
    /// Step between periods, used for closing.
    pub step_ms: i64,
    /// Owner's mailbox text when the incident was recorded.
    pub owner: Option<String>,
    /// Timestamp of the first finding (series time).
    pub opened_at_ts: i64,
    /// Timestamp of the newest finding (series time).
    pub last_finding_ts: i64,
    /// Newest timestamp evaluated for the series (series time).
    pub last_evaluated_ts: i64,
    /// Series time at which the incident counted as over; `None` while open.
    pub closed_at_ts: Option<i64>,
    /// Most severe check so far.
    pub worst_check: Check,
    /// Score of that finding.
    pub worst_score: f64,
    /// Recorded by a backfill as before the current review week: never announced.
    pub past: bool,
    /// The owner was told (or, without an owner, it was logged).
    pub announced: bool,
    /// The outbox row that announced it.
    pub digest_id: Option<i64>,
    /// The run that opened it.
    pub created_run: i64,
}

/// A new incident, before it has an id.
#[derive(Debug, Clone)]
pub struct NewIncident<'a> {
    /// The finding that opens it.
    pub first: &'a Finding,
    /// Step between periods.
    pub step_ms: i64,
    /// Owner's mailbox text.
    pub owner: Option<String>,
    /// Newest timestamp evaluated.
    pub last_evaluated_ts: i64,
    /// The run that opens it.
    pub run_id: i64,
    /// Set when the incident is recorded as already over.
    pub closed_at_ts: Option<i64>,
}

/// A message to queue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMail {
    /// Owner's mailbox text (`Name <addr>`).
    pub owner: String,
    /// Envelope recipient address.
    pub recipient: String,
    /// Subject, for listing the queue.
    pub subject: String,
    /// The full RFC 822 message.
    pub message: Vec<u8>,
    /// Incidents announced by this message.
    pub incident_ids: Vec<i64>,
    /// Unique per digest: the same digest is never queued twice.
    pub idempotency_key: String,
    /// When it was queued (ms, UTC); also its first attempt time.
    pub created_at: i64,
}

/// One row of `outbox`: the queued message and its delivery state.
#[derive(Debug, Clone, PartialEq)]
pub struct MailRow {
    /// Row id.
    pub id: i64,
    /// What was queued.
    pub mail: NewMail,
    /// Failed or successful send attempts so far.
    pub attempts: u32,
    /// Not tried again before this (ms, UTC).
    pub next_attempt_at: i64,
    /// Error of the last failed attempt.
    pub last_error: Option<String>,
    /// Accepted by the server at (ms, UTC).
    pub sent_at: Option<i64>,
}

/// Stable identity of a series inside the store.
pub fn series_id(key: &SeriesKey) -> String {
    serde_json::json!([key.metric, key.dims]).to_string()
}

fn dims_json(key: &SeriesKey) -> String {
    serde_json::json!(key.dims).to_string()
}

/// SQLite stores NaN as NULL; read it back as NaN.
fn nan_or(v: Option<f64>) -> f64 {
    v.unwrap_or(f64::NAN)
}

impl Store {
    /// Open (creating if absent) the store at `path` and migrate it to the
    /// current schema. A file that is not a callout store, or one written by a
    /// newer callout, is an error and is left untouched.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_with(path, MIGRATIONS)
    }

    /// [`Store::open`] with an explicit migration list (tests of migrating).
    pub(crate) fn open_with(path: &Path, migrations: &[Migration]) -> Result<Store, StoreError> {
        let path_buf = path.to_path_buf();
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
            && !dir.is_dir()
        {
            return Err(StoreError::NoFolder {
                path: path_buf,
                dir: dir.to_path_buf(),
            });
        }
        let mut conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| StoreError::Open {
            path: path_buf.clone(),
            source,
        })?;
        let open_err = |source: rusqlite::Error| classify(&path_buf, source);
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        // Reading the header is the first thing that fails on a non-SQLite file.
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(open_err)?;
        check_identity(&conn, &path_buf, version)?;
        let known = migrations.len() as i64;
        if version > known {
            return Err(StoreError::TooNew {
                path: path_buf,
                found: version,
                known,
            });
        }
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(open_err)?;
        for (i, m) in migrations.iter().enumerate().skip(version as usize) {
            let target = i as i64 + 1;
            let err = |source| StoreError::Migrate {
                path: path_buf.clone(),
                version: target,
                name: m.name,
                source,
            };
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(err)?;
            tx.execute_batch(m.sql).map_err(err)?;
            tx.pragma_update(None, "user_version", target)
                .map_err(err)?;
            tx.commit().map_err(err)?;
            if version > 0 {
                tracing::info!(store = %path_buf.display(), version = target, step = m.name, "migrated store");
            }
        }
        Ok(Store {
            conn,
            path: path_buf,
        })
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Schema version of the open store.
    pub fn version(&self) -> Result<i64, StoreError> {
        self.conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(self.q("read schema version"))
    }

    fn q(&self, context: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Query {
            path: self.path.clone(),
            context,
            source,
        }
    }

    fn bad(&self, context: &'static str, value: impl Into<String>) -> StoreError {
        StoreError::BadValue {
            path: self.path.clone(),
            context,
            value: value.into(),
        }
    }

    /// Run `f` in one write transaction: all of its changes or none.
    /// `f` gets a shared store, so transactions cannot nest.
    pub fn transaction<T, E>(&mut self, f: impl FnOnce(&Store) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)
            .map_err(self.q("begin transaction"))?;
        let out = f(self)?;
        tx.commit().map_err(self.q("commit transaction"))?;
        Ok(out)
    }

    // ---- runs ----

    /// Record the start of a run; `mode` is `run`, `once` or `backfill`.
    pub fn begin_run(&self, mode: &str, started_at: DateTime<Utc>) -> Result<i64, StoreError> {
        if !matches!(mode, "run" | "once" | "backfill") {
            return Err(StoreError::Invalid {
                path: self.path.clone(),
                context: "begin run",
                value: mode.to_string(),
                expected: "run, once or backfill",
            });
        }
        self.conn
            .execute(
                "INSERT INTO runs (mode, started_at) VALUES (?1, ?2)",
                params![mode, started_at.timestamp_millis()],
            )
            .map_err(self.q("begin run"))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Record the end of a run with its status (`ok`, `failed`, …) and summary.
    pub fn finish_run(
        &self,
        id: i64,
        status: &str,
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
        Ok(())
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
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, Option<i64>>(3)?,
                        r.get::<_, String>(4)?,
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
    pub fn last_finished_run(&self, mode: &str) -> Result<Option<RunRow>, StoreError> {
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

    // ---- findings ----

    /// Store one finding of `run_id`, attached to an incident.
    pub fn insert_finding(
        &self,
        run_id: i64,
        f: &Finding,
        incident_id: Option<i64>,
    ) -> Result<i64, StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO findings (run_id, source, series_id, series, metric, dims, granularity,
                    timestamp, \"check\", value, expected, lower, upper, score, p_value, direction,
                    wow_pct, yoy_pct, history, note, incident_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                    ?17, ?18, ?19, ?20, ?21)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    run_id,
                    f.source,
                    series_id(&f.key),
                    f.key.to_string(),
                    f.key.metric,
                    dims_json(&f.key),
                    f.granularity.to_string(),
                    f.timestamp,
                    f.check.as_str(),
                    f.value,
                    f.expected,
                    f.lower,
                    f.upper,
                    f.score,
                    f.p_value,
                    f.direction.as_str(),
                    f.wow_pct,
                    f.yoy_pct,
                    f.history as i64,
                    f.note,
                    incident_id,
                ])
            })
            .map_err(self.q("store finding"))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// The incident an earlier run attached the same point and check to.
    pub fn known_incident_of(&self, f: &Finding) -> Result<Option<i64>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT incident_id FROM findings
                 WHERE source = ?1 AND series_id = ?2 AND timestamp = ?3 AND \"check\" = ?4
                   AND incident_id IS NOT NULL
                 ORDER BY id DESC LIMIT 1",
            )
            .and_then(|mut st| {
                st.query_row(
                    params![f.source, series_id(&f.key), f.timestamp, f.check.as_str()],
                    |r| r.get(0),
                )
                .optional()
            })
            .map_err(self.q("look up finding"))
    }

    /// The findings of an incident: one per point and check (the newest
    /// run's version), by time.
    pub fn findings_of_incident(&self, incident_id: i64) -> Result<Vec<Finding>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT source, metric, dims, granularity, timestamp, \"check\", value, expected,
                    lower, upper, score, p_value, direction, wow_pct, yoy_pct, history, note
                 FROM findings WHERE id IN (
                    SELECT max(id) FROM findings WHERE incident_id = ?1
                    GROUP BY timestamp, \"check\")
                 ORDER BY timestamp, \"check\"",
            )
            .map_err(self.q("read findings"))?;
        let raw = st
            .query_map([incident_id], |r| {
                Ok(RawFinding {
                    source: r.get(0)?,
                    metric: r.get(1)?,
                    dims: r.get(2)?,
                    granularity: r.get(3)?,
                    timestamp: r.get(4)?,
                    check: r.get(5)?,
                    value: r.get(6)?,
                    expected: r.get(7)?,
                    lower: r.get(8)?,
                    upper: r.get(9)?,
                    score: r.get(10)?,
                    p_value: r.get(11)?,
                    direction: r.get(12)?,
                    wow_pct: r.get(13)?,
                    yoy_pct: r.get(14)?,
                    history: r.get(15)?,
                    note: r.get(16)?,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(self.q("read findings"))?;
        raw.into_iter().map(|r| self.finding_from(r)).collect()
    }

    /// Number of stored finding rows (all runs).
    pub fn finding_count(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row("SELECT count(*) FROM findings", [], |r| r.get(0))
            .map_err(self.q("count findings"))
    }

    fn finding_from(&self, r: RawFinding) -> Result<Finding, StoreError> {
        let dims: Vec<(String, String)> = serde_json::from_str(&r.dims)
            .map_err(|_| self.bad("read dimensions", r.dims.clone()))?;
        let granularity = Granularity::parse(&r.granularity)
            .ok_or_else(|| self.bad("read granularity", r.granularity.clone()))?;
        let check =
            Check::parse(&r.check).ok_or_else(|| self.bad("read check", r.check.clone()))?;
        let direction = match r.direction.as_str() {
            "up" => Direction::Up,
            "down" => Direction::Down,
            "both" => Direction::Both,
            _ => return Err(self.bad("read direction", r.direction)),
        };
        Ok(Finding {
            source: r.source,
            key: SeriesKey {
                metric: r.metric,
                dims,
            },
            granularity,
            timestamp: r.timestamp,
            value: nan_or(r.value),
            expected: nan_or(r.expected),
            lower: nan_or(r.lower),
            upper: nan_or(r.upper),
            score: nan_or(r.score),
            p_value: nan_or(r.p_value),
            direction,
            check,
            wow_pct: r.wow_pct,
            yoy_pct: r.yoy_pct,
            history: usize::try_from(r.history).unwrap_or(0),
            note: r.note,
        })
    }

    // ---- incidents ----

    const INCIDENT_COLUMNS: &'static str = "id, source, metric, dims, granularity, step_ms, owner,
        opened_at_ts, last_finding_ts, last_evaluated_ts, closed_at_ts, worst_check, worst_score,
        past, announced, digest_id, created_run";

    fn incidents_where(
        &self,
        clause: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<IncidentRow>, StoreError> {
        let sql = format!(
            "SELECT {} FROM incidents WHERE {clause} ORDER BY id",
            Self::INCIDENT_COLUMNS
        );
        let mut st = self
            .conn
            .prepare_cached(&sql)
            .map_err(self.q("read incidents"))?;
        let raw = st
            .query_map(params, raw_incident)
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(self.q("read incidents"))?;
        raw.into_iter().map(|r| self.incident_from(r)).collect()
    }

    fn incident_from(&self, r: RawIncident) -> Result<IncidentRow, StoreError> {
        let dims: Vec<(String, String)> = serde_json::from_str(&r.dims)
            .map_err(|_| self.bad("read dimensions", r.dims.clone()))?;
        let granularity = Granularity::parse(&r.granularity)
            .ok_or_else(|| self.bad("read granularity", r.granularity.clone()))?;
        let worst_check = Check::parse(&r.worst_check)
            .ok_or_else(|| self.bad("read check", r.worst_check.clone()))?;
        Ok(IncidentRow {
            id: r.id,
            source: r.source,
            key: SeriesKey {
                metric: r.metric,
                dims,
            },
            granularity,
            step_ms: r.step_ms,
            owner: r.owner,
            opened_at_ts: r.opened_at_ts,
            last_finding_ts: r.last_finding_ts,
            last_evaluated_ts: r.last_evaluated_ts,
            closed_at_ts: r.closed_at_ts,
            worst_check,
            worst_score: nan_or(r.worst_score),
            past: r.past,
            announced: r.announced,
            digest_id: r.digest_id,
            created_run: r.created_run,
        })
    }

    /// The open incident of a series, if any (there is at most one).
    pub fn open_incident(
        &self,
        source: &str,
        key: &SeriesKey,
    ) -> Result<Option<IncidentRow>, StoreError> {
        Ok(self
            .incidents_where(
                "source = ?1 AND series_id = ?2 AND closed_at_ts IS NULL",
                params![source, series_id(key)],
            )?
            .pop())
    }

    /// A closed incident of a series whose span covers series time `ts`.
    pub fn closed_incident_covering(
        &self,
        source: &str,
        key: &SeriesKey,
        ts: i64,
    ) -> Result<Option<IncidentRow>, StoreError> {
        Ok(self
            .incidents_where(
                "source = ?1 AND series_id = ?2 AND closed_at_ts IS NOT NULL
                 AND opened_at_ts <= ?3 AND ?3 <= closed_at_ts",
                params![source, series_id(key), ts],
            )?
            .pop())
    }

    /// One incident by id.
    pub fn incident(&self, id: i64) -> Result<Option<IncidentRow>, StoreError> {
        Ok(self.incidents_where("id = ?1", [id])?.pop())
    }

    /// Every incident, oldest first.
    pub fn incidents(&self) -> Result<Vec<IncidentRow>, StoreError> {
        self.incidents_where("1", [])
    }

    /// Incidents nobody was told about yet and that are not past.
    pub fn pending_incidents(&self) -> Result<Vec<IncidentRow>, StoreError> {
        self.incidents_where("announced = 0 AND past = 0", [])
    }

    /// Open a new incident from its first finding.
    pub fn insert_incident(&self, n: &NewIncident<'_>) -> Result<i64, StoreError> {
        let f = n.first;
        self.conn
            .execute(
                "INSERT INTO incidents (source, series_id, series, metric, dims, granularity,
                    step_ms, owner, opened_at_ts, last_finding_ts, last_evaluated_ts,
                    worst_check, worst_score, created_run, closed_at_ts)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10, ?11, ?12, ?13, ?14)",
                params![
                    f.source,
                    series_id(&f.key),
                    f.key.to_string(),
                    f.key.metric,
                    dims_json(&f.key),
                    f.granularity.to_string(),
                    n.step_ms,
                    n.owner,
                    f.timestamp,
                    n.last_evaluated_ts.max(f.timestamp),
                    f.check.as_str(),
                    f.score,
                    n.run_id,
                    n.closed_at_ts,
                ],
            )
            .map_err(self.q("open incident"))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Write back an incident's span, state and worst finding.
    pub fn update_incident(&self, i: &IncidentRow) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE incidents SET opened_at_ts = ?2, last_finding_ts = ?3,
                    last_evaluated_ts = ?4, closed_at_ts = ?5, worst_check = ?6, worst_score = ?7,
                    step_ms = ?8, owner = ?9
                 WHERE id = ?1",
                params![
                    i.id,
                    i.opened_at_ts,
                    i.last_finding_ts,
                    i.last_evaluated_ts,
                    i.closed_at_ts,
                    i.worst_check.as_str(),
                    i.worst_score,
                    i.step_ms,
                    i.owner,
                ],
            )
            .map_err(self.q("update incident"))?;
        Ok(())
    }

    /// Mark unannounced incidents whose last finding is before series time
    /// `before_ts` as past; returns how many.
    pub fn mark_past_before(&self, before_ts: i64) -> Result<usize, StoreError> {
        self.conn
            .execute(
                "UPDATE incidents SET past = 1
                 WHERE announced = 0 AND past = 0 AND last_finding_ts < ?1",
                [before_ts],
            )
            .map_err(self.q("mark past incidents"))
    }

    /// Mark incidents as announced by outbox row `digest_id` (`None`: logged only).
    pub fn mark_announced(&self, ids: &[i64], digest_id: Option<i64>) -> Result<(), StoreError> {
        let mut st = self
            .conn
            .prepare_cached("UPDATE incidents SET announced = 1, digest_id = ?2 WHERE id = ?1")
            .map_err(self.q("mark incidents announced"))?;
        for id in ids {
            st.execute(params![id, digest_id])
                .map_err(self.q("mark incidents announced"))?;
        }
        Ok(())
    }

    // ---- outbox ----

    /// Queue a message unless one with the same idempotency key exists.
    /// Returns the row id and whether it was newly queued.
    pub fn enqueue(&self, m: &NewMail) -> Result<(i64, bool), StoreError> {
        let ids = serde_json::json!(m.incident_ids).to_string();
        let n = self
            .conn
            .execute(
                "INSERT INTO outbox (owner, recipient, subject, message, incident_ids,
                    idempotency_key, created_at, next_attempt_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
                 ON CONFLICT (idempotency_key) DO NOTHING",
                params![
                    m.owner,
                    m.recipient,
                    m.subject,
                    m.message,
                    ids,
                    m.idempotency_key,
                    m.created_at
                ],
            )
            .map_err(self.q("queue message"))?;
        let id: i64 = self
            .conn
            .query_row(
                "SELECT id FROM outbox WHERE idempotency_key = ?1",
                [&m.idempotency_key],
                |r| r.get(0),
            )
            .map_err(self.q("queue message"))?;
        Ok((id, n == 1))
    }

    fn mail_where(
        &self,
        clause: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<MailRow>, StoreError> {
        let sql = format!(
            "SELECT id, owner, recipient, subject, message, incident_ids, idempotency_key,
                created_at, attempts, next_attempt_at, last_error, sent_at
             FROM outbox WHERE {clause} ORDER BY id"
        );
        let mut st = self
            .conn
            .prepare_cached(&sql)
            .map_err(self.q("read outbox"))?;
        let rows = st
            .query_map(params, |r| {
                Ok((
                    MailRow {
                        id: r.get(0)?,
                        mail: NewMail {
                            owner: r.get(1)?,
                            recipient: r.get(2)?,
                            subject: r.get(3)?,
                            message: r.get(4)?,
                            incident_ids: Vec::new(),
                            idempotency_key: r.get(6)?,
                            created_at: r.get(7)?,
                        },
                        attempts: r.get(8)?,
                        next_attempt_at: r.get(9)?,
                        last_error: r.get(10)?,
                        sent_at: r.get(11)?,
                    },
                    r.get::<_, String>(5)?,
                ))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(self.q("read outbox"))?;
        rows.into_iter()
            .map(|(mut m, ids)| {
                m.mail.incident_ids = serde_json::from_str(&ids)
                    .map_err(|_| self.bad("read outbox incident ids", ids.clone()))?;
                Ok(m)
            })
            .collect()
    }

    /// Unsent messages whose next attempt is due at `now`, oldest first.
    pub fn due_mail(&self, now: DateTime<Utc>) -> Result<Vec<MailRow>, StoreError> {
        self.mail_where(
            "sent_at IS NULL AND next_attempt_at <= ?1",
            [now.timestamp_millis()],
        )
    }

    /// Every unsent message, oldest first.
    pub fn unsent_mail(&self) -> Result<Vec<MailRow>, StoreError> {
        self.mail_where("sent_at IS NULL", [])
    }

    /// Every message ever queued, oldest first.
    pub fn all_mail(&self) -> Result<Vec<MailRow>, StoreError> {
        self.mail_where("1", [])
    }

    /// Record that the server accepted message `id`.
    pub fn mark_sent(&self, id: i64, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE outbox SET sent_at = ?2, attempts = attempts + 1, last_error = NULL
                 WHERE id = ?1",
                params![id, at.timestamp_millis()],
            )
            .map_err(self.q("mark message sent"))?;
        Ok(())
    }

    /// Record a failed attempt and when to try again.
    pub fn mark_failed(
        &self,
        id: i64,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3
                 WHERE id = ?1",
                params![id, error, next_attempt_at.timestamp_millis()],
            )
            .map_err(self.q("record failed send"))?;
        Ok(())
    }
}

struct RawFinding {
    source: String,
    metric: String,
    dims: String,
    granularity: String,
    timestamp: i64,
    check: String,
    value: Option<f64>,
    expected: Option<f64>,
    lower: Option<f64>,
    upper: Option<f64>,
    score: Option<f64>,
    p_value: Option<f64>,
    direction: String,
    wow_pct: Option<f64>,
    yoy_pct: Option<f64>,
    history: i64,
    note: Option<String>,
}

struct RawIncident {
    id: i64,
    source: String,
    metric: String,
    dims: String,
    granularity: String,
    step_ms: i64,
    owner: Option<String>,
    opened_at_ts: i64,
    last_finding_ts: i64,
    last_evaluated_ts: i64,
    closed_at_ts: Option<i64>,
    worst_check: String,
    worst_score: Option<f64>,
    past: bool,
    announced: bool,
    digest_id: Option<i64>,
    created_run: i64,
}

fn raw_incident(r: &Row<'_>) -> rusqlite::Result<RawIncident> {
    Ok(RawIncident {
        id: r.get(0)?,
        source: r.get(1)?,
        metric: r.get(2)?,
        dims: r.get(3)?,
        granularity: r.get(4)?,
        step_ms: r.get(5)?,
        owner: r.get(6)?,
        opened_at_ts: r.get(7)?,
        last_finding_ts: r.get(8)?,
        last_evaluated_ts: r.get(9)?,
        closed_at_ts: r.get(10)?,
        worst_check: r.get(11)?,
        worst_score: r.get(12)?,
        past: r.get(13)?,
        announced: r.get(14)?,
        digest_id: r.get(15)?,
        created_run: r.get(16)?,
    })
}

/// Map an error while probing a freshly opened file.
fn classify(path: &Path, source: rusqlite::Error) -> StoreError {
    match source.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => StoreError::NotADatabase {
            path: path.to_path_buf(),
        },
        _ => StoreError::Open {
            path: path.to_path_buf(),
            source,
        },
    }
}

/// A version-0 file must be empty; a versioned one must say it is ours.
fn check_identity(conn: &Connection, path: &Path, version: i64) -> Result<(), StoreError> {
    let err = |source| classify(path, source);
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .and_then(|mut st| {
            st.query_map([], |r| r.get(0))
                .and_then(|rows| rows.collect::<Result<Vec<String>, _>>())
        })
        .map_err(err)?;
    if version == 0 {
        if tables.is_empty() {
            return Ok(());
        }
        return Err(StoreError::Foreign {
            path: path.to_path_buf(),
            detail: format!(
                "it has tables {} but no callout schema version",
                tables.join(", ")
            ),
        });
    }
    let app: Option<String> = if tables.iter().any(|t| t == "meta") {
        conn.query_row(
            "SELECT value FROM meta WHERE key = 'application'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(err)?
    } else {
        None
    };
    match app {
        Some(a) if a == APPLICATION => Ok(()),
        other => Err(StoreError::Foreign {
            path: path.to_path_buf(),
            detail: match other {
                Some(a) => format!("it belongs to `{a}`"),
                None => format!("schema version {version} without a callout marker"),
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2020, 11, 30, 7, 0, 0).unwrap()
    }

    #[test]
    fn creates_then_reopens_at_current_version() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.db");
        let s = Store::open(&p).unwrap();
        assert_eq!(s.version().unwrap(), MIGRATIONS.len() as i64);
        let id = s.begin_run("once", t0()).unwrap();
        drop(s);
        let s = Store::open(&p).unwrap();
        let mode: String = s
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let r = s.run(id).unwrap().unwrap();
        assert_eq!((r.mode.as_str(), r.status.as_str()), ("once", "running"));
    }

    #[test]
    fn finish_run_records_status_and_summary() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("s.db")).unwrap();
        let id = s.begin_run("run", t0()).unwrap();
        let summary = serde_json::json!({"findings": 3});
        s.finish_run(id, "ok", &summary, t0() + chrono::Duration::seconds(5))
            .unwrap();
        let r = s.run(id).unwrap().unwrap();
        assert_eq!(r.status, "ok");
        assert_eq!(r.summary.as_ref(), Some(&summary));
        assert_eq!(
            r.finished_at,
            Some(t0().timestamp_millis() + 5000),
            "finish time stored"
        );
        assert_eq!(s.last_finished_run("run").unwrap().map(|r| r.id), Some(id));
        assert!(s.finish_run(id + 100, "ok", &summary, t0()).is_err());
        assert!(matches!(
            s.begin_run("sometimes", t0()),
            Err(StoreError::Invalid { .. })
        ));
    }

    #[test]
    fn a_file_that_is_not_sqlite_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("notes.db");
        let text = "these are my notes, not a database\n".repeat(200);
        std::fs::write(&p, &text).unwrap();
        let e = Store::open(&p).unwrap_err();
        assert!(matches!(e, StoreError::NotADatabase { .. }), "{e}");
        assert!(e.to_string().contains("notes.db"), "{e}");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), text);
    }

    #[test]
    fn a_foreign_sqlite_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("other.db");
        {
            let c = Connection::open(&p).unwrap();
            c.execute_batch("CREATE TABLE customers (id INTEGER); PRAGMA user_version = 1;")
                .unwrap();
        }
        let e = Store::open(&p).unwrap_err();
        assert!(matches!(e, StoreError::Foreign { .. }), "{e}");
        let p2 = dir.path().join("other2.db");
        {
            let c = Connection::open(&p2).unwrap();
            c.execute_batch("CREATE TABLE customers (id INTEGER);")
                .unwrap();
        }
        let e = Store::open(&p2).unwrap_err();
        assert!(e.to_string().contains("customers"), "{e}");
    }

    #[test]
    fn a_missing_folder_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nope").join("state.db");
        let e = Store::open(&p).unwrap_err();
        assert!(matches!(e, StoreError::NoFolder { .. }), "{e}");
        assert!(e.to_string().contains("nope"), "{e}");
    }

    const EXTRA: Migration = Migration {
        name: "test: explanations",
        sql: "CREATE TABLE explanations (incident_id INTEGER, text TEXT);",
    };

    #[test]
    fn an_older_store_is_migrated_and_keeps_its_data() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.db");
        let s = Store::open_with(&p, &MIGRATIONS[..1]).unwrap();
        let id = s.begin_run("once", t0()).unwrap();
        drop(s);
        let newer = [MIGRATIONS[0], EXTRA];
        let s = Store::open_with(&p, &newer).unwrap();
        assert_eq!(s.version().unwrap(), 2);
        assert!(s.run(id).unwrap().is_some(), "data survives migration");
        s.conn
            .execute("INSERT INTO explanations VALUES (1, 'promo')", [])
            .unwrap();
        drop(s);
        // The older build refuses the newer store instead of guessing.
        let e = Store::open_with(&p, &MIGRATIONS[..1]).unwrap_err();
        assert!(
            matches!(
                e,
                StoreError::TooNew {
                    found: 2,
                    known: 1,
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn a_failing_migration_leaves_the_previous_version() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.db");
        drop(Store::open_with(&p, &MIGRATIONS[..1]).unwrap());
        let broken = Migration {
            name: "broken",
            sql: "CREATE TABLE x (a); CREATE TABLE runs (id);",
        };
        let e = Store::open_with(&p, &[MIGRATIONS[0], broken]).unwrap_err();
        assert!(matches!(e, StoreError::Migrate { version: 2, .. }), "{e}");
        let s = Store::open_with(&p, &MIGRATIONS[..1]).unwrap();
        assert_eq!(s.version().unwrap(), 1);
        let x: i64 = s
            .conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'x'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(x, 0, "half a migration was rolled back");
    }

    #[test]
    fn enqueue_is_idempotent_and_failures_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("s.db")).unwrap();
        let m = NewMail {
            owner: "Ana <ana@example.com>".into(),
            recipient: "ana@example.com".into(),
            subject: "s".into(),
            message: b"Subject: s\r\n\r\nhi\r\n".to_vec(),
            incident_ids: vec![1, 2],
            idempotency_key: "k".into(),
            created_at: t0().timestamp_millis(),
        };
        let (a, new_a) = s.enqueue(&m).unwrap();
        let (b, new_b) = s.enqueue(&m).unwrap();
        assert_eq!((a, new_a, new_b), (b, true, false));
        assert_eq!(s.due_mail(t0()).unwrap().len(), 1);
        s.mark_failed(a, "refused", t0() + chrono::Duration::seconds(60))
            .unwrap();
        assert!(s.due_mail(t0()).unwrap().is_empty());
        let due = s.due_mail(t0() + chrono::Duration::seconds(60)).unwrap();
        assert_eq!(due[0].attempts, 1);
        assert_eq!(due[0].last_error.as_deref(), Some("refused"));
        assert_eq!(due[0].mail.incident_ids, vec![1, 2]);
        s.mark_sent(a, t0()).unwrap();
        assert!(s.unsent_mail().unwrap().is_empty());
        assert_eq!(s.all_mail().unwrap()[0].attempts, 2);
    }
}
