//! Compact series history for the explanation page, taken when a run sees it.
//!
//! The page must chart what the owner was alerted on even when the export has
//! since moved, been rotated or is out of reach of the web process (`callout
//! serve` on another host). So each run copies, for every series with an open
//! or recent incident, the last six weeks at the series' spacing (hourly means
//! when that is too many points) and the last year (daily means for sub-daily
//! series) into the store. Pure compaction plus one store call.

use crate::batch::Batch;
use crate::model::{Granularity, SeriesKey};
use crate::source::SpilledSource;
use crate::store::history::SeriesHistory;
use crate::store::{Store, StoreError};

use crate::model::MS_PER_DAY as DAY_MS;
/// The short chart: six weeks.
pub const RECENT_MS: i64 = 42 * DAY_MS;
/// The long chart: a year and a week, so the same week last year is in it.
pub const YEAR_MS: i64 = 372 * DAY_MS;
/// More points than this in six weeks (sub-hourly data) are averaged per hour.
const MAX_RECENT_POINTS: usize = 1008;

/// Means of the points per `bucket_ms` bucket, stamped with the bucket start.
fn bucket_means(pts: &[(i64, f64)], bucket_ms: i64) -> Vec<(i64, f64)> {
    let mut out: Vec<(i64, f64)> = Vec::new();
    let mut acc = (i64::MIN, 0.0, 0usize);
    for &(t, v) in pts {
        let b = t.div_euclid(bucket_ms) * bucket_ms;
        if b != acc.0 {
            if acc.2 > 0 {
                out.push((acc.0, acc.1 / acc.2 as f64));
            }
            acc = (b, 0.0, 0);
        }
        acc.1 += v;
        acc.2 += 1;
    }
    if acc.2 > 0 {
        out.push((acc.0, acc.1 / acc.2 as f64));
    }
    out
}

/// The compact history of one series (`ts` ascending, aligned with `values`).
pub fn compact(ts: &[i64], values: &[f64], g: Granularity, taken_at: i64) -> SeriesHistory {
    let end = ts.last().copied().unwrap_or(0);
    let since = |from: i64| -> Vec<(i64, f64)> {
        let i = ts.partition_point(|&t| t <= end - from);
        ts[i..]
            .iter()
            .zip(&values[i..])
            .filter(|(_, v)| v.is_finite())
            .map(|(&t, &v)| (t, v))
            .collect()
    };
    let mut recent = since(RECENT_MS);
    if recent.len() > MAX_RECENT_POINTS {
        recent = bucket_means(&recent, 3_600_000);
    }
    let mut year = since(YEAR_MS);
    if !g.is_dated() {
        year = bucket_means(&year, DAY_MS);
    }
    SeriesHistory {
        granularity: g,
        taken_at,
        recent,
        year,
    }
}

/// Save the history of every series of `batches` that has an open incident
/// or one within the last six weeks of its source.
pub fn record(store: &Store, batches: &[Batch], taken_at: i64) -> Result<usize, StoreError> {
    let mut saved = 0;
    for b in batches {
        let Some(newest) = b.newest() else { continue };
        let keys = store.series_with_incidents(&b.source, newest - RECENT_MS)?;
        saved += save(store, b, &keys, taken_at)?;
    }
    Ok(saved)
}

/// [`record`] for sources evaluated in chunks: a chunk is read back only
/// when one of its series has an incident. A chunk that cannot be read is
/// logged and skipped (its charts keep their previous copy).
pub fn record_chunked(
    store: &Store,
    sources: &[SpilledSource],
    taken_at: i64,
) -> Result<usize, StoreError> {
    let mut saved = 0;
    for c in sources {
        let Some(newest) = c.newest else { continue };
        let keys = store.series_with_incidents(&c.source, newest - RECENT_MS)?;
        for chunk in &c.chunks {
            let mine: Vec<SeriesKey> = keys
                .iter()
                .filter(|k| chunk.series.binary_search_by(|s| s.key.cmp(k)).is_ok())
                .cloned()
                .collect();
            if mine.is_empty() {
                continue;
            }
            match chunk.read() {
                Ok(b) => saved += save(store, &b, &mine, taken_at)?,
                Err(e) => tracing::warn!(source = %c.source, "series history not saved: {e}"),
            }
        }
    }
    Ok(saved)
}

/// Save the compact copy of each series of `b` among `keys`.
fn save(store: &Store, b: &Batch, keys: &[SeriesKey], taken_at: i64) -> Result<usize, StoreError> {
    let mut saved = 0;
    for key in keys {
        let Ok(i) = b.series.binary_search_by(|s| s.key.cmp(key)) else {
            continue;
        };
        let s = &b.series[i];
        let h = compact(b.ts_of(s), b.values_of(s), s.granularity, taken_at);
        store.save_history(&b.source, key, &h)?;
        saved += 1;
    }
    Ok(saved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daily_series_keeps_six_weeks_and_a_year_natively() {
        let ts: Vec<i64> = (0..800).map(|d| d * DAY_MS).collect();
        let vals: Vec<f64> = (0..800).map(|d| d as f64).collect();
        let h = compact(&ts, &vals, Granularity::Day, 5);
        assert_eq!(h.recent.len(), 42);
        assert_eq!(h.recent.last(), Some(&(799 * DAY_MS, 799.0)));
        assert_eq!(h.recent[0].0, 758 * DAY_MS);
        assert_eq!(h.year.len(), 372);
    }

    #[test]
    fn five_minute_series_is_averaged_hourly_and_daily() {
        let step = 300_000;
        let n = 50 * 288;
        let ts: Vec<i64> = (0..n).map(|i| i * step).collect();
        let vals: Vec<f64> = (0..n).map(|i| (i % 12) as f64).collect();
        let h = compact(&ts, &vals, Granularity::Minutes(5), 0);
        assert_eq!(h.recent.len(), 42 * 24, "hourly means of six weeks");
        assert!(h.recent.iter().all(|&(_, v)| (v - 5.5).abs() < 1e-9));
        assert_eq!(h.year.len(), 50, "one mean per day");
    }
}
