//! The `findings` table: every finding of every run, attached to its incident.

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError, dims_json, nan_or, series_id};
use crate::model::{Check, Finding, Flagged, Granularity, Hit, SeriesKey, Side};

impl Store {
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
                    f.granularity,
                    f.hit.ts,
                    f.hit.check,
                    f.hit.value,
                    f.hit.expected,
                    f.hit.lower,
                    f.hit.upper,
                    f.hit.score,
                    f.hit.p_value,
                    f.hit.side,
                    f.hit.wow_pct,
                    f.hit.yoy_pct,
                    f.hit.history as i64,
                    f.hit.note,
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
                    params![f.source, series_id(&f.key), f.hit.ts, f.hit.check],
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

    /// For every period of every series that a stored incident holds a
    /// finding for, the newest value callout knew (restatements included, so
    /// a restatement is compared with next time, not the first number), and
    /// whether an owner explained an incident holding it. Findings without a
    /// value (`missing`, `late`) flag no number and are left out.
    pub fn flagged_values(&self) -> Result<Vec<Flagged>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT f.source, f.metric, f.dims, f.timestamp, f.value,
                    EXISTS (SELECT 1 FROM findings g JOIN explanations e ON e.incident_id = g.incident_id
                            WHERE g.source = f.source AND g.series_id = f.series_id
                              AND g.timestamp = f.timestamp)
                 FROM findings f WHERE f.id IN (
                    SELECT max(id) FROM findings
                    WHERE incident_id IS NOT NULL AND (value IS NOT NULL OR \"check\" = 'restated')
                    GROUP BY source, series_id, timestamp)
                 ORDER BY f.source, f.series_id, f.timestamp",
            )
            .map_err(self.q("read flagged values"))?;
        let raw = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Option<f64>>(4)?,
                    r.get::<_, bool>(5)?,
                ))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(self.q("read flagged values"))?;
        raw.into_iter()
            .map(|(source, metric, dims, ts, value, explained)| {
                let dims: Vec<(String, String)> =
                    serde_json::from_str(&dims).map_err(|_| self.bad("read dimensions", dims))?;
                Ok(Flagged {
                    source,
                    key: SeriesKey { metric, dims },
                    ts,
                    value: nan_or(value),
                    explained,
                })
            })
            .collect()
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
        Ok(Finding {
            source: r.source,
            key: SeriesKey {
                metric: r.metric,
                dims,
            },
            granularity: r.granularity,
            hit: Hit {
                ts: r.timestamp,
                value: nan_or(r.value),
                expected: nan_or(r.expected),
                lower: nan_or(r.lower),
                upper: nan_or(r.upper),
                score: nan_or(r.score),
                p_value: nan_or(r.p_value),
                side: r.direction,
                check: r.check,
                wow_pct: r.wow_pct,
                yoy_pct: r.yoy_pct,
                history: usize::try_from(r.history).unwrap_or(0),
                note: r.note,
            },
        })
    }
}

struct RawFinding {
    source: String,
    metric: String,
    dims: String,
    granularity: Granularity,
    timestamp: i64,
    check: Check,
    value: Option<f64>,
    expected: Option<f64>,
    lower: Option<f64>,
    upper: Option<f64>,
    score: Option<f64>,
    p_value: Option<f64>,
    direction: Side,
    wow_pct: Option<f64>,
    yoy_pct: Option<f64>,
    history: i64,
    note: Option<String>,
}
