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

mod checkpoints;
pub mod explanations;
mod findings;
pub mod history;
mod incidents;
pub mod ops;
mod outbox;
mod reminders;
mod reported;
mod runs;
pub mod schema;
mod types;

pub use incidents::{IncidentRow, NewIncident};
pub use outbox::{Channel, Claim, MailRow, NewMail};
pub use runs::{RunKind, RunRow, RunStatus};

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use crate::model::SeriesKey;
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
    /// The lock file that marks a run as alive could not be made.
    #[error(
        "cannot lock `{path}` (it marks a run in progress; the store's folder must be writable): {source}"
    )]
    RunLock {
        /// The lock file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
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
    /// Runs begun and not yet finished by this `Store`, each holding an
    /// exclusive lock on its lock file (`<store>.run-<id>.lock`) for as long
    /// as it is alive. The OS drops the lock when the process dies (kill -9
    /// included), which is how the next `begin_run` tells a killed run from one
    /// still in progress in another process.
    run_locks: RefCell<BTreeMap<i64, File>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// How an outbox claim held by run `run_id` starts (`run:12 `): what ties a
/// claim to its run, so an interrupted run's claims are released.
pub fn claim_prefix(run_id: i64) -> String {
    format!("run:{run_id} ")
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
    /// Processes opening one store at the same moment (two runs started
    /// together on a new store) take turns: switching a new file to WAL
    /// answers "locked" at once rather than waiting, so a locked open is
    /// tried again, for at most the busy timeout.
    pub(crate) fn open_with(path: &Path, migrations: &[Migration]) -> Result<Store, StoreError> {
        let until = std::time::Instant::now() + BUSY_TIMEOUT;
        let mut tries: u64 = 0;
        loop {
            let left = until.saturating_duration_since(std::time::Instant::now());
            match Store::open_once(path, migrations, left.max(Duration::from_millis(50))) {
                Err(e) if e.is_busy() && !left.is_zero() => {
                    // apart, so two openers do not meet again in lockstep
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(
                        10 + (tries * 7 + u64::from(std::process::id())) % 30,
                    ));
                }
                other => return other,
            }
        }
    }

    fn open_once(
        path: &Path,
        migrations: &[Migration],
        busy: Duration,
    ) -> Result<Store, StoreError> {
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
        // at most what is left of the open's whole wait, then the usual one
        conn.busy_timeout(busy).map_err(open_err)?;
        // Reading the header is the first thing that fails on a non-SQLite file.
        let read: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(open_err)?;
        // A store at the current version is only read (pages open it per
        // request). A new or older one is read again under the write lock:
        // another process creating or migrating it at the same moment has
        // then either not started or finished its step.
        let version: i64 = if read == migrations.len() as i64 {
            check_identity(&conn, &path_buf, read)?;
            read
        } else {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(open_err)?;
            let version = tx
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .map_err(open_err)?;
            check_identity(&tx, &path_buf, version)?;
            tx.commit().map_err(open_err)?;
            version
        };
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
        for (i, m) in migrations
            .iter()
            .enumerate()
            .skip(usize::try_from(version).unwrap_or(0))
        {
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
            // Under the write lock: another process opening the same new or
            // old store at the same moment may have applied this step first.
            let applied: i64 = tx
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .map_err(err)?;
            if applied > known {
                // a newer callout migrated it meanwhile
                return Err(StoreError::TooNew {
                    path: path_buf,
                    found: applied,
                    known,
                });
            }
            if applied >= target {
                tx.commit().map_err(err)?;
                continue;
            }
            tx.execute_batch(m.sql).map_err(err)?;
            tx.pragma_update(None, "user_version", target)
                .map_err(err)?;
            tx.commit().map_err(err)?;
            if version > 0 {
                tracing::info!(store = %path_buf.display(), version = target, step = m.name, "migrated store");
            }
        }
        // the run's statements wait the usual time for other writers
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|source| classify(&path_buf, source))?;
        Ok(Store {
            conn,
            path: path_buf,
            run_locks: RefCell::new(BTreeMap::new()),
        })
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The store's random id, made once when the store was created (or
    /// migrated to schema 2) and kept with it: a reset or a second deployment
    /// has another one. Message-IDs include it.
    pub fn store_id(&self) -> Result<String, StoreError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = 'store_id'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(self.q("read store id"))?
            .ok_or_else(|| self.bad("read store id", "(none)"))
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
        self.in_transaction(f)
    }

    /// [`Store::transaction`] through a shared store, for the store's own
    /// methods that are one transaction each (the caller must not be in one).
    fn in_transaction<T, E>(&self, f: impl FnOnce(&Store) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)
            .map_err(self.q("begin transaction"))?;
        let out = f(self)?;
        tx.commit().map_err(self.q("commit transaction"))?;
        Ok(out)
    }
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

impl StoreError {
    /// Another connection held the lock (SQLite's busy: "database is locked").
    fn is_busy(&self) -> bool {
        let source = match self {
            StoreError::Open { source, .. } | StoreError::Migrate { source, .. } => source,
            _ => return false,
        };
        matches!(
            source.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy)
        )
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
    use crate::model::Lane;
    use chrono::{DateTime, TimeZone, Utc};
    use rusqlite::params;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2020, 11, 30, 7, 0, 0).unwrap()
    }

    #[test]
    fn processes_creating_one_store_at_once_all_open_it() {
        // two runs started together on a fresh volume: each opens the new
        // file, and the migrations are applied once
        for round in 0..10 {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("state.db");
            let opened: Vec<Result<i64, String>> = std::thread::scope(|sc| {
                let handles: Vec<_> = (0..4)
                    .map(|_| {
                        sc.spawn(|| {
                            Store::open(&p)
                                .and_then(|s| s.version())
                                .map_err(|e| e.to_string())
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            for o in opened {
                assert_eq!(o, Ok(MIGRATIONS.len() as i64), "round {round}");
            }
        }
    }

    #[test]
    fn creates_then_reopens_at_current_version() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.db");
        let s = Store::open(&p).unwrap();
        assert_eq!(s.version().unwrap(), MIGRATIONS.len() as i64);
        let id = s.begin_run(RunKind::Once, t0()).unwrap();
        drop(s);
        let s = Store::open(&p).unwrap();
        let mode: String = s
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let r = s.run(id).unwrap().unwrap();
        assert_eq!((r.mode, r.status), (RunKind::Once, RunStatus::Running));
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
        let id = s.begin_run(RunKind::Once, t0()).unwrap();
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
    fn a_version_1_store_gets_lanes_from_its_incidents_and_a_store_id() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.db");
        let s = Store::open_with(&p, &MIGRATIONS[..1]).unwrap();
        let run = s.begin_run(RunKind::Run, t0()).unwrap();
        for (series, check) in [("a", "late"), ("b", "stale"), ("c", "seasonal")] {
            s.conn
                .execute(
                    "INSERT INTO incidents (source, series_id, series, metric, dims, granularity,
                        step_ms, opened_at_ts, last_finding_ts, last_evaluated_ts, worst_check,
                        worst_score, created_run)
                     VALUES ('shop', ?4, ?1, ?1, '[]', 'day', 86400000, 0, 0, 0, ?2, 0, ?3)",
                    params![
                        series,
                        check,
                        run,
                        series_id(&SeriesKey {
                            metric: series.into(),
                            dims: Vec::new()
                        })
                    ],
                )
                .unwrap();
        }
        drop(s);
        let s = Store::open(&p).unwrap();
        let lanes: Vec<Lane> = s.incidents().unwrap().iter().map(|i| i.lane).collect();
        assert_eq!(lanes, vec![Lane::Export, Lane::Health, Lane::Statistical]);
        let id = s.store_id().unwrap();
        assert_eq!(id.len(), 32, "{id}");
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()), "{id}");
        // One open incident per series *and lane* now.
        let key = SeriesKey {
            metric: "a".into(),
            dims: Vec::new(),
        };
        assert_eq!(
            s.open_incident("shop", &key, Lane::Export)
                .unwrap()
                .map(|i| i.id),
            Some(1)
        );
        assert!(
            s.open_incident("shop", &key, Lane::Statistical)
                .unwrap()
                .is_none()
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
}
