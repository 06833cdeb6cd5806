//! The `series_history` table: a compact copy of the newest points of series
//! that have incidents, for the explanation page's chart.
//!
//! One row per series, replaced by each run that sees the series; what the
//! copy contains is decided by [`crate::history`], this file only stores it.

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError, series_id};
use crate::model::{Granularity, SeriesKey};

/// The stored history of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesHistory {
    /// Spacing of the series (of `recent`; `year` may be coarser).
    pub granularity: Granularity,
    /// When it was taken (ms since epoch, UTC).
    pub taken_at: i64,
    /// The last weeks at the series' own spacing: `(series time ms, value)`.
    pub recent: Vec<(i64, f64)>,
    /// The last year, daily means for sub-daily series: `(series time ms, value)`.
    pub year: Vec<(i64, f64)>,
}

impl Store {
    /// Series of `source` (metric, dimensions) with an open incident or one
    /// whose newest finding is at or after series time `since_ts`.
    pub fn series_with_incidents(
        &self,
        source: &str,
        since_ts: i64,
    ) -> Result<Vec<SeriesKey>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT DISTINCT metric, dims FROM incidents
                 WHERE source = ?1 AND (closed_at_ts IS NULL OR last_finding_ts >= ?2)",
            )
            .map_err(self.q("list series with incidents"))?;
        let raw: Vec<(String, String)> = st
            .query_map(params![source, since_ts], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(self.q("list series with incidents"))?;
        raw.into_iter()
            .map(|(metric, dims)| {
                let dims = serde_json::from_str(&dims)
                    .map_err(|_| self.bad("read dimensions", dims.clone()))?;
                Ok(SeriesKey { metric, dims })
            })
            .collect()
    }

    /// Replace the stored history of a series.
    pub fn save_history(
        &self,
        source: &str,
        key: &SeriesKey,
        h: &SeriesHistory,
    ) -> Result<(), StoreError> {
        let json = |pts: &[(i64, f64)]| serde_json::json!(pts).to_string();
        self.conn
            .prepare_cached(
                "INSERT INTO series_history (source, series_id, granularity, taken_at, recent, year)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (source, series_id) DO UPDATE SET granularity = ?3,
                    taken_at = ?4, recent = ?5, year = ?6",
            )
            .and_then(|mut st| {
                st.execute(params![
                    source,
                    series_id(key),
                    h.granularity,
                    h.taken_at,
                    json(&h.recent),
                    json(&h.year),
                ])
            })
            .map_err(self.q("save series history"))?;
        Ok(())
    }

    /// The stored history of a series, if a run saved one.
    pub fn history(
        &self,
        source: &str,
        key: &SeriesKey,
    ) -> Result<Option<SeriesHistory>, StoreError> {
        let row: Option<(Granularity, i64, String, String)> = self
            .conn
            .query_row(
                "SELECT granularity, taken_at, recent, year FROM series_history
                 WHERE source = ?1 AND series_id = ?2",
                params![source, series_id(key)],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .map_err(self.q("read series history"))?;
        let Some((granularity, taken_at, recent, year)) = row else {
            return Ok(None);
        };
        let points = |s: String| -> Result<Vec<(i64, f64)>, StoreError> {
            serde_json::from_str(&s).map_err(|_| self.bad("read series history", s))
        };
        Ok(Some(SeriesHistory {
            granularity,
            taken_at,
            recent: points(recent)?,
            year: points(year)?,
        }))
    }
}
