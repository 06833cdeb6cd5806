//! The `explanations` table: what owners answered, with every edit kept.
//!
//! Append-only: an edit is a new row and the newest row of an incident is its
//! current explanation; older rows are its history. A row records who answered
//! (the owner the link was signed for), when, and from which link — a hash of
//! the token, never the token itself, which is a credential.
//!
//! Must not: decide anything about detection; [`Store::explained_spans`] only
//! lists what owners said, as data for `detect`.

use rusqlite::{OptionalExtension, Row, params};

use super::{Store, StoreError, series_id};
use crate::model::{Cause, ExplainedSpan, Persistence, SeriesKey};

/// An explanation to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewExplanation {
    /// The incident explained.
    pub incident_id: i64,
    /// The owner's cause.
    pub cause: Cause,
    /// For level shifts: new normal or one-off.
    pub persistence: Option<Persistence>,
    /// The owner's words (unescaped; escaped wherever shown).
    pub text: String,
    /// Who answered: the owner the link was signed for.
    pub author: String,
    /// Hash of the link's token (hex SHA-256), so a row says which link it came from.
    pub link_hash: String,
    /// When (ms since epoch, UTC).
    pub created_at: i64,
}

/// One stored explanation.
#[derive(Debug, Clone, PartialEq)]
pub struct ExplanationRow {
    /// Row id; later rows of an incident supersede earlier ones.
    pub id: i64,
    /// The incident, series and span it explains.
    pub incident_id: i64,
    /// Series time of the incident's first finding.
    pub opened_at_ts: i64,
    /// Series time of the incident's newest finding.
    pub last_finding_ts: i64,
    /// What was stored.
    pub cause: Cause,
    /// For level shifts: new normal or one-off.
    pub persistence: Option<Persistence>,
    /// The owner's words.
    pub text: String,
    /// Who answered.
    pub author: String,
    /// Hash of the link it came from.
    pub link_hash: String,
    /// When (ms since epoch, UTC).
    pub created_at: i64,
}

/// Whether [`Store::add_explanation`] stored a new row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// A new row (a first answer or an edit).
    New(i64),
    /// The incident's current explanation already says exactly this: nothing stored.
    Unchanged(i64),
}

const COLUMNS: &str = "e.id, e.incident_id, i.opened_at_ts, i.last_finding_ts, e.cause,
    e.persistence, e.text, e.author, e.link_hash, e.created_at";

/// One row of [`COLUMNS`], typed.
fn explanation_row(r: &Row<'_>) -> rusqlite::Result<ExplanationRow> {
    Ok(ExplanationRow {
        id: r.get(0)?,
        incident_id: r.get(1)?,
        opened_at_ts: r.get(2)?,
        last_finding_ts: r.get(3)?,
        cause: r.get(4)?,
        persistence: r.get(5)?,
        text: r.get(6)?,
        author: r.get(7)?,
        link_hash: r.get(8)?,
        created_at: r.get(9)?,
    })
}

impl Store {
    fn explanations_where(
        &self,
        clause: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<ExplanationRow>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM explanations e JOIN incidents i ON i.id = e.incident_id
             WHERE {clause} ORDER BY e.id"
        );
        let mut st = self
            .conn
            .prepare_cached(&sql)
            .map_err(self.q("read explanations"))?;
        st.query_map(params, explanation_row)
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(self.q("read explanations"))
    }

    /// Store an explanation unless the incident's current one says exactly the
    /// same (cause, persistence, text): a resubmitted form stores one row.
    /// An unknown incident is an error.
    pub fn add_explanation(&self, e: &NewExplanation) -> Result<Added, StoreError> {
        if self.incident(e.incident_id)?.is_none() {
            return Err(StoreError::Invalid {
                path: self.path.clone(),
                context: "add explanation",
                value: e.incident_id.to_string(),
                expected: "the id of a stored incident",
            });
        }
        // One statement decides and inserts, so two identical submissions
        // racing each other still store one row.
        let n = self
            .conn
            .execute(
                "INSERT INTO explanations (incident_id, cause, persistence, text, author,
                    link_hash, created_at)
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7
                 WHERE NOT EXISTS (
                    SELECT 1 FROM explanations
                    WHERE id = (SELECT max(id) FROM explanations WHERE incident_id = ?1)
                      AND cause = ?2 AND persistence IS ?3 AND text = ?4)",
                params![
                    e.incident_id,
                    e.cause,
                    e.persistence,
                    e.text,
                    e.author,
                    e.link_hash,
                    e.created_at,
                ],
            )
            .map_err(self.q("add explanation"))?;
        if n == 1 {
            return Ok(Added::New(self.conn.last_insert_rowid()));
        }
        let id: i64 = self
            .conn
            .query_row(
                "SELECT max(id) FROM explanations WHERE incident_id = ?1",
                [e.incident_id],
                |r| r.get(0),
            )
            .map_err(self.q("add explanation"))?;
        Ok(Added::Unchanged(id))
    }

    /// The current (newest) explanation of an incident.
    pub fn latest_explanation(
        &self,
        incident_id: i64,
    ) -> Result<Option<ExplanationRow>, StoreError> {
        Ok(self
            .explanations_where(
                "e.id = (SELECT max(id) FROM explanations WHERE incident_id = ?1)",
                [incident_id],
            )?
            .pop())
    }

    /// Every explanation of an incident, oldest first (its edit history).
    pub fn explanation_history(&self, incident_id: i64) -> Result<Vec<ExplanationRow>, StoreError> {
        self.explanations_where("e.incident_id = ?1", [incident_id])
    }

    /// The current explanation of every incident of a series, oldest incident first.
    pub fn explanations_for_series(
        &self,
        source: &str,
        key: &SeriesKey,
    ) -> Result<Vec<ExplanationRow>, StoreError> {
        self.explanations_where(
            "i.source = ?1 AND i.series_id = ?2
             AND e.id = (SELECT max(id) FROM explanations WHERE incident_id = e.incident_id)",
            params![source, series_id(key)],
        )
    }

    /// Ids of the incidents among `ids` that have an explanation.
    pub fn explained_incidents(&self, ids: &[i64]) -> Result<Vec<i64>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT 1 FROM explanations WHERE incident_id = ?1 LIMIT 1")
            .map_err(self.q("read explanations"))?;
        let mut out = Vec::new();
        for &id in ids {
            let found = st
                .query_row([id], |_| Ok(()))
                .optional()
                .map_err(self.q("read explanations"))?;
            if found.is_some() {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// The owner's open items: incidents still open, and closed ones that were
    /// never explained (except history recorded by a backfill as past), newest first.
    pub fn open_items_of(&self, owner: &str) -> Result<Vec<super::IncidentRow>, StoreError> {
        let mut v = self.incidents_where(
            "owner = ?1 AND (closed_at_ts IS NULL
               OR (past = 0 AND NOT EXISTS (SELECT 1 FROM explanations e WHERE e.incident_id = incidents.id)))",
            [owner],
        )?;
        v.reverse();
        Ok(v)
    }

    /// The current explanation of every incident, as detection sees them: the
    /// incident's span of series time and what the owner said. Ordered by
    /// source, series and time.
    ///
    /// The span runs from the first finding to the period that closed the
    /// incident (the newest evaluated one while it is open), not just to the
    /// newest finding: after a level shift re-anchors, the rest of a promotion
    /// looks normal and raises no finding, yet it is part of the event the
    /// owner explained and must stay out of the baseline too.
    pub fn explained_spans(&self) -> Result<Vec<ExplainedSpan>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT i.source, i.metric, i.dims, i.opened_at_ts,
                    max(i.last_finding_ts, coalesce(i.closed_at_ts, i.last_evaluated_ts)),
                    e.cause, e.persistence
                 FROM explanations e JOIN incidents i ON i.id = e.incident_id
                 WHERE e.id IN (SELECT max(id) FROM explanations GROUP BY incident_id)
                 ORDER BY i.source, i.series_id, i.opened_at_ts",
            )
            .map_err(self.q("read explained spans"))?;
        type Raw = (String, String, String, i64, i64, Cause, Option<Persistence>);
        let raw: Vec<Raw> = st
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(self.q("read explained spans"))?;
        raw.into_iter()
            .map(
                |(source, metric, dims, from_ts, to_ts, cause, persistence)| {
                    let dims: Vec<(String, String)> = serde_json::from_str(&dims)
                        .map_err(|_| self.bad("read dimensions", dims.clone()))?;
                    Ok(ExplainedSpan {
                        source,
                        key: SeriesKey { metric, dims },
                        from_ts,
                        to_ts,
                        cause,
                        persistence,
                    })
                },
            )
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Check, Finding, Granularity, Hit, Side};
    use crate::store::NewIncident;

    fn finding(metric: &str, ts: i64) -> Finding {
        Finding {
            source: "s".into(),
            key: SeriesKey {
                metric: metric.into(),
                dims: vec![("region".into(), "eu".into())],
            },
            granularity: Granularity::Day,
            hit: Hit {
                ts,
                value: 10.0,
                expected: 5.0,
                lower: 4.0,
                upper: 6.0,
                score: 5.0,
                p_value: 0.0001,
                side: Side::Up,
                check: Check::Seasonal,
                wow_pct: None,
                yoy_pct: None,
                history: 100,
                note: None,
            },
        }
    }

    fn store_with_incident(dir: &std::path::Path) -> (Store, i64) {
        let s = Store::open(&dir.join("s.db")).unwrap();
        let run = s
            .begin_run(
                crate::store::RunKind::Once,
                chrono::DateTime::from_timestamp_millis(0).unwrap(),
            )
            .unwrap();
        let f = finding("orders", 86_400_000);
        let id = s
            .insert_incident(&NewIncident {
                first: &f,
                step_ms: 86_400_000,
                owner: Some("Ana <ana@example.com>".parse().unwrap()),
                last_evaluated_ts: f.hit.ts,
                run_id: run,
                closed_at_ts: None,
            })
            .unwrap();
        (s, id)
    }

    fn new(incident_id: i64, text: &str) -> NewExplanation {
        NewExplanation {
            incident_id,
            cause: Cause::KnownEvent,
            persistence: None,
            text: text.into(),
            author: "Ana <ana@example.com>".into(),
            link_hash: "ab12".into(),
            created_at: 1000,
        }
    }

    #[test]
    fn resubmitting_stores_one_row_and_an_edit_keeps_history() {
        let dir = tempfile::tempdir().unwrap();
        let (s, id) = store_with_incident(dir.path());
        let first = s.add_explanation(&new(id, "promo")).unwrap();
        assert!(matches!(first, Added::New(_)));
        let again = s.add_explanation(&new(id, "promo")).unwrap();
        assert_eq!(
            again,
            Added::Unchanged(match first {
                Added::New(x) | Added::Unchanged(x) => x,
            })
        );
        let mut edit = new(id, "promo, and a price cut");
        edit.cause = Cause::BusinessChange;
        assert!(matches!(s.add_explanation(&edit).unwrap(), Added::New(_)));
        let history = s.explanation_history(id).unwrap();
        assert_eq!(history.len(), 2, "{history:?}");
        assert_eq!(history[0].text, "promo");
        let latest = s.latest_explanation(id).unwrap().unwrap();
        assert_eq!(
            (latest.cause, latest.text.as_str()),
            (Cause::BusinessChange, "promo, and a price cut")
        );
        // going back to the first wording is a new edit, not a no-op
        assert!(matches!(
            s.add_explanation(&new(id, "promo")).unwrap(),
            Added::New(_)
        ));
        assert_eq!(s.explanation_history(id).unwrap().len(), 3);
    }

    #[test]
    fn an_unknown_incident_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (s, id) = store_with_incident(dir.path());
        let e = s.add_explanation(&new(id + 7, "x")).unwrap_err();
        assert!(matches!(e, StoreError::Invalid { .. }), "{e}");
    }

    #[test]
    fn series_listing_and_spans_use_the_current_explanation() {
        let dir = tempfile::tempdir().unwrap();
        let (s, id) = store_with_incident(dir.path());
        assert!(s.explained_spans().unwrap().is_empty());
        assert!(s.explained_incidents(&[id]).unwrap().is_empty());
        s.add_explanation(&new(id, "promo")).unwrap();
        let mut shift = new(id, "new price list");
        shift.cause = Cause::BusinessChange;
        shift.persistence = Some(Persistence::NewNormal);
        s.add_explanation(&shift).unwrap();
        let key = finding("orders", 0).key;
        let rows = s.explanations_for_series("s", &key).unwrap();
        assert_eq!(rows.len(), 1, "only the current explanation per incident");
        assert_eq!(rows[0].text, "new price list");
        assert!(s.explanations_for_series("other", &key).unwrap().is_empty());
        let spans = s.explained_spans().unwrap();
        assert_eq!(
            spans,
            vec![ExplainedSpan {
                source: "s".into(),
                key,
                from_ts: 86_400_000,
                to_ts: 86_400_000,
                cause: Cause::BusinessChange,
                persistence: Some(Persistence::NewNormal),
            }]
        );
        assert!(spans[0].accepts_new_level());
        assert_eq!(s.explained_incidents(&[id, id + 1]).unwrap(), vec![id]);
    }
}
