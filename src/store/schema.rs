//! The store's schema as an ordered list of migrations.
//!
//! Migration *n* (1-based) brings a store from `PRAGMA user_version = n - 1`
//! to `n`. Migrations are append-only: a released migration is never edited,
//! a change of schema is a new entry at the end. Each runs in its own
//! transaction together with the `user_version` bump, so a crash mid-migration
//! leaves the previous version intact.
//!
//! Conventions: every instant is an INTEGER of milliseconds. Columns named
//! `*_at` are real (UTC) time; columns named `*_ts` are series time — the
//! naive wall-clock milliseconds of the source, like `Finding::timestamp`.

/// One schema step.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// What the step does, for error messages.
    pub name: &'static str,
    /// SQL run inside the step's transaction.
    pub sql: &'static str,
}

/// The value of `meta.application` that marks a file as a callout store.
pub const APPLICATION: &str = "callout";

/// Every migration, oldest first. `MIGRATIONS.len()` is the current version.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        name: "initial schema",
        sql: V1,
    },
    Migration {
        name: "incident lanes, store id, send attempts",
        sql: V2_LANES_STORE_ID_ATTEMPTS,
    },
    Migration {
        name: "explanations and series history (web)",
        sql: V_EXPLANATIONS,
    },
    Migration {
        name: "detector state checkpoints (incremental runs)",
        sql: V_CHECKPOINTS,
    },
    Migration {
        name: "outbox claims and outcomes, reported periods (catch-up)",
        sql: V_CLAIMS_REPORTED,
    },
    Migration {
        name: "index of the runs still running",
        sql: V_RUNS_RUNNING,
    },
    Migration {
        name: "outbox channels (chat beside email)",
        sql: V_OUTBOX_CHANNEL,
    },
];

const V1: &str = r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO meta (key, value) VALUES ('application', 'callout');

-- One evaluation of the pipeline.
CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    mode        TEXT NOT NULL CHECK (mode IN ('run', 'once', 'backfill')),
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    status      TEXT NOT NULL DEFAULT 'running',
    summary     TEXT
);

-- The outgoing-mail queue and what was sent; a row is never deleted.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    owner           TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    message         BLOB NOT NULL,
    incident_ids    TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    sent_at         INTEGER
);
CREATE INDEX outbox_unsent ON outbox (next_attempt_at) WHERE sent_at IS NULL;

-- Consecutive findings of one series, announced once.
CREATE TABLE incidents (
    id                INTEGER PRIMARY KEY,
    source            TEXT NOT NULL,
    series_id         TEXT NOT NULL,
    series            TEXT NOT NULL,
    metric            TEXT NOT NULL,
    dims              TEXT NOT NULL,
    granularity       TEXT NOT NULL,
    step_ms           INTEGER NOT NULL,
    owner             TEXT,
    opened_at_ts      INTEGER NOT NULL,
    last_finding_ts   INTEGER NOT NULL,
    last_evaluated_ts INTEGER NOT NULL,
    closed_at_ts      INTEGER,
    worst_check       TEXT NOT NULL,
    worst_score       REAL NOT NULL,
    past              INTEGER NOT NULL DEFAULT 0,
    announced         INTEGER NOT NULL DEFAULT 0,
    digest_id         INTEGER REFERENCES outbox (id),
    created_run       INTEGER NOT NULL REFERENCES runs (id)
);
CREATE UNIQUE INDEX incidents_one_open ON incidents (source, series_id) WHERE closed_at_ts IS NULL;
CREATE INDEX incidents_series ON incidents (source, series_id, opened_at_ts);
CREATE INDEX incidents_pending ON incidents (id) WHERE announced = 0 AND past = 0;

-- Every finding of every run (the same point may recur across runs).
CREATE TABLE findings (
    id          INTEGER PRIMARY KEY,
    run_id      INTEGER NOT NULL REFERENCES runs (id),
    source      TEXT NOT NULL,
    series_id   TEXT NOT NULL,
    series      TEXT NOT NULL,
    metric      TEXT NOT NULL,
    dims        TEXT NOT NULL,
    granularity TEXT NOT NULL,
    timestamp   INTEGER NOT NULL,
    "check"     TEXT NOT NULL,
    value       REAL,
    expected    REAL,
    lower       REAL,
    upper       REAL,
    score       REAL,
    p_value     REAL,
    direction   TEXT NOT NULL,
    wow_pct     REAL,
    yoy_pct     REAL,
    history     INTEGER NOT NULL,
    note        TEXT,
    incident_id INTEGER REFERENCES incidents (id)
);
CREATE INDEX findings_point ON findings (source, series_id, timestamp, "check");
CREATE INDEX findings_incident ON findings (incident_id);
CREATE INDEX findings_run ON findings (run_id);
"#;

/// Self-contained (depends only on V1), so it can be ordered with other
/// appended migrations.
///
/// - `incidents.lane`: a series has one open incident *per lane* (export:
///   late/missing; health: stale/outage/bounds/max_change; statistical), so a
///   data-health incident never swallows a later real outlier or vice versa.
///   Existing incidents get the lane of their worst check.
/// - `meta.store_id`: random, made once with the store; Message-IDs include it
///   so that two stores (a reset, a second deployment) never reuse one.
/// - `outbox.attempt_started_at`: set just before the message is handed to
///   the server (before DATA), cleared when the server's answer is recorded;
///   a row that still has it after a crash may have been delivered.
const V2_LANES_STORE_ID_ATTEMPTS: &str = r#"
ALTER TABLE incidents ADD COLUMN lane TEXT NOT NULL DEFAULT 'statistical';
UPDATE incidents SET lane = CASE
    WHEN worst_check IN ('late', 'missing') THEN 'export'
    WHEN worst_check IN ('outage', 'stale', 'bounds', 'max_change') THEN 'health'
    ELSE 'statistical' END;
DROP INDEX incidents_one_open;
CREATE UNIQUE INDEX incidents_one_open_per_lane
    ON incidents (source, series_id, lane) WHERE closed_at_ts IS NULL;

INSERT OR IGNORE INTO meta (key, value) VALUES ('store_id', lower(hex(randomblob(16))));

ALTER TABLE outbox ADD COLUMN attempt_started_at INTEGER;
"#;

/// Owners' explanations (append-only: an edit is a new row, the newest row of
/// an incident counts, older rows are its history) and the compact series
/// history the explanation page charts. Self-contained: touches no older table.
const V_EXPLANATIONS: &str = r#"
CREATE TABLE explanations (
    id          INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    cause       TEXT NOT NULL CHECK (cause IN ('business_change', 'data_issue', 'known_event',
                    'expected_seasonal', 'under_investigation')),
    persistence TEXT CHECK (persistence IN ('new_normal', 'one_off')),
    text        TEXT NOT NULL,
    author      TEXT NOT NULL,
    link_hash   TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX explanations_incident ON explanations (incident_id, id);

-- The newest points of a series with an open incident, taken when a run sees
-- them, so the page can chart what the owner was alerted on without reading
-- the export again. One row per series, replaced by each run.
CREATE TABLE series_history (
    source      TEXT NOT NULL,
    series_id   TEXT NOT NULL,
    granularity TEXT NOT NULL,
    taken_at    INTEGER NOT NULL,
    recent      TEXT NOT NULL,
    year        TEXT NOT NULL,
    PRIMARY KEY (source, series_id)
);
"#;

/// Each series' detector state after the last run that kept one
/// (`detect::checkpoint`), so the next run resumes it instead of walking the
/// whole history. One row per series, replaced by each such run; a row that
/// no longer fits (another version or fingerprint, changed points) is simply
/// not used. Self-contained: touches no older table.
const V_CHECKPOINTS: &str = r#"
CREATE TABLE checkpoints (
    source      TEXT NOT NULL,
    series_id   TEXT NOT NULL,
    version     INTEGER NOT NULL,
    fingerprint INTEGER NOT NULL,
    points      INTEGER NOT NULL,
    last_ts     INTEGER NOT NULL,
    prefix_hash INTEGER NOT NULL,
    state       BLOB NOT NULL,
    PRIMARY KEY (source, series_id)
);
"#;

/// A real team's week (issue 21). Self-contained: adds columns and a table.
///
/// - `outbox.claimed_by` / `claim_expires_at`: a run takes a row before it
///   sends it (one `UPDATE … WHERE` that only a row nobody holds, or whose
///   holder's claim ran out, matches), so two runs on one store never send
///   the same row; a run that dies leaves a claim that expires. `*_at` is
///   real time, never a replayed `--at`.
/// - `outbox.in_doubt`: times the body went out and the server's answer did
///   not come back in time (the server may have the message).
/// - `outbox.undeliverable_at` / `undeliverable_reason`: the server refused
///   the message for good (5xx), or it was in doubt twice; never retried
///   until re-queued (`callout outbox --requeue`).
/// - `reported`: the newest period reported on per series, apart from the
///   detector checkpoint (which can be discarded and re-walked): the next
///   run reports every period after it, each exactly once.
const V_CLAIMS_REPORTED: &str = r#"
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN claim_expires_at INTEGER;
ALTER TABLE outbox ADD COLUMN in_doubt INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN undeliverable_at INTEGER;
ALTER TABLE outbox ADD COLUMN undeliverable_reason TEXT;
CREATE TABLE reported (
    source    TEXT NOT NULL,
    series_id TEXT NOT NULL,
    last_ts   INTEGER NOT NULL,
    PRIMARY KEY (source, series_id)
);
"#;

/// The runs still marked `running`, which every run's start looks through for
/// killed ones (`Store::mark_interrupted_runs`). Without it that look read the
/// whole `runs` table, a row (~280 bytes) per run ever made, at every cycle:
/// a daemon's per-cycle memory (SQLite's page cache, up to its 2 MB cap) and
/// time grew with its history (issue 21, item 15). The partial index holds
/// only the unfinished rows. Self-contained: touches no data.
const V_RUNS_RUNNING: &str = r#"
CREATE INDEX runs_running ON runs (id) WHERE status = 'running';
"#;

/// Chat messages (issue 25) go through the same outbox as mail, with the same
/// claims, backoff and giving up: `channel` says which sender takes a row
/// (`email`: `recipient` is an address and `message` RFC 822; `chat`:
/// `recipient` is a `[[chat]]` name and `message` the JSON payload). One
/// channel's failures never hold back the other's rows. Self-contained: the
/// rows already queued are mail.
const V_OUTBOX_CHANNEL: &str = r#"
ALTER TABLE outbox ADD COLUMN channel TEXT NOT NULL DEFAULT 'email'
    CHECK (channel IN ('email', 'chat'));
"#;
