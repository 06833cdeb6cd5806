//! The `incidents` table: findings of one series and lane grouped over time,
//! and whether they were announced.

use rusqlite::{Row, params};

use lettre::message::Mailbox;

use super::types::Owner;
use super::{Store, StoreError, dims_json, nan_or, series_id};
use crate::model::{Check, Finding, Granularity, Lane, SeriesKey};

/// One row of `incidents`.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentRow {
    /// Incident id.
    pub id: i64,
    /// Source name.
    pub source: String,
    /// The series.
    pub key: SeriesKey,
    /// Which kind of findings it groups (one open incident per lane).
    pub lane: Lane,
    /// Granularity of the series' findings.
    pub granularity: Granularity,
    /// Step between periods, used for closing.
    pub step_ms: i64,
    /// Owner when the incident was recorded.
    pub owner: Option<Mailbox>,
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
    /// Owner under the current config.
    pub owner: Option<Mailbox>,
    /// Newest timestamp evaluated.
    pub last_evaluated_ts: i64,
    /// The run that opens it.
    pub run_id: i64,
    /// Set when the incident is recorded as already over.
    pub closed_at_ts: Option<i64>,
}

impl Store {
    const INCIDENT_COLUMNS: &'static str = "id, source, metric, dims, granularity, step_ms, owner,
        opened_at_ts, last_finding_ts, last_evaluated_ts, closed_at_ts, worst_check, worst_score,
        past, announced, digest_id, created_run, lane";

    pub(super) fn incidents_where(
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
        Ok(IncidentRow {
            id: r.id,
            source: r.source,
            key: SeriesKey {
                metric: r.metric,
                dims,
            },
            lane: r.lane,
            granularity: r.granularity,
            step_ms: r.step_ms,
            owner: r.owner.map(|o| o.0),
            opened_at_ts: r.opened_at_ts,
            last_finding_ts: r.last_finding_ts,
            last_evaluated_ts: r.last_evaluated_ts,
            closed_at_ts: r.closed_at_ts,
            worst_check: r.worst_check,
            worst_score: nan_or(r.worst_score),
            past: r.past,
            announced: r.announced,
            digest_id: r.digest_id,
            created_run: r.created_run,
        })
    }

    /// The open incident of a series in `lane`, if any (there is at most one).
    pub fn open_incident(
        &self,
        source: &str,
        key: &SeriesKey,
        lane: Lane,
    ) -> Result<Option<IncidentRow>, StoreError> {
        Ok(self
            .incidents_where(
                "source = ?1 AND series_id = ?2 AND lane = ?3 AND closed_at_ts IS NULL",
                params![source, series_id(key), lane],
            )?
            .pop())
    }

    /// A closed incident of a series in `lane` whose span covers series time `ts`.
    pub fn closed_incident_covering(
        &self,
        source: &str,
        key: &SeriesKey,
        lane: Lane,
        ts: i64,
    ) -> Result<Option<IncidentRow>, StoreError> {
        Ok(self
            .incidents_where(
                "source = ?1 AND series_id = ?2 AND lane = ?3 AND closed_at_ts IS NOT NULL
                 AND opened_at_ts <= ?4 AND ?4 <= closed_at_ts",
                params![source, series_id(key), lane, ts],
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
                    worst_check, worst_score, created_run, closed_at_ts, lane)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                params![
                    f.source,
                    series_id(&f.key),
                    f.key.to_string(),
                    f.key.metric,
                    dims_json(&f.key),
                    f.granularity,
                    n.step_ms,
                    n.owner.clone().map(Owner),
                    f.hit.ts,
                    n.last_evaluated_ts.max(f.hit.ts),
                    f.hit.check,
                    f.hit.score,
                    n.run_id,
                    n.closed_at_ts,
                    Lane::of(f.hit.check),
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
                    i.worst_check,
                    i.worst_score,
                    i.step_ms,
                    i.owner.clone().map(Owner),
                ],
            )
            .map_err(self.q("update incident"))?;
        Ok(())
    }

    /// Mark unannounced incidents whose newest flagged period had ended by
    /// series time `before_ts` (its start plus one step) as past; returns how
    /// many. A day dated on the review day itself (00:00 before a 10:00
    /// review) had not ended at the review, so it is not past.
    pub fn mark_past_before(&self, before_ts: i64) -> Result<usize, StoreError> {
        self.conn
            .execute(
                "UPDATE incidents SET past = 1
                 WHERE announced = 0 AND past = 0 AND last_finding_ts + step_ms <= ?1",
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
}

struct RawIncident {
    id: i64,
    source: String,
    metric: String,
    dims: String,
    granularity: Granularity,
    step_ms: i64,
    owner: Option<Owner>,
    opened_at_ts: i64,
    last_finding_ts: i64,
    last_evaluated_ts: i64,
    closed_at_ts: Option<i64>,
    worst_check: Check,
    worst_score: Option<f64>,
    past: bool,
    announced: bool,
    digest_id: Option<i64>,
    created_run: i64,
    lane: Lane,
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
        lane: r.get(17)?,
    })
}
