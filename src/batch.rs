//! A batch of series: one source's rows, sorted by series then time, with
//! each series' row range. `source` builds it; detection, the restatement
//! check, history and the report read it. Plain data below all of them: it
//! imports only `model`.

use crate::model::{Granularity, SeriesKey};

/// One series inside a [`Batch`]: its key and its rows `start..start + len`.
#[derive(Debug, Clone)]
pub struct SeriesInfo {
    /// Metric and dimension values.
    pub key: SeriesKey,
    /// First row in the batch.
    pub start: usize,
    /// Number of rows.
    pub len: usize,
    /// Declared or inferred spacing.
    pub granularity: Granularity,
}

/// A source's data, sorted by series then time, with per-series row ranges.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Source name.
    pub source: String,
    /// Key columns as in the export: `metric` (or the configured metric column) then dimensions.
    pub key_columns: Vec<String>,
    /// Timestamps (ms, wall clock), contiguous, sorted within each series.
    pub ts: Vec<i64>,
    /// Values, aligned with `ts`.
    pub values: Vec<f64>,
    /// The series, in key order.
    pub series: Vec<SeriesInfo>,
}

impl Batch {
    /// A batch of `source` without rows yet.
    pub fn empty(source: &str, key_columns: &[String]) -> Batch {
        Batch {
            source: source.to_string(),
            key_columns: key_columns.to_vec(),
            ts: Vec::new(),
            values: Vec::new(),
            series: Vec::new(),
        }
    }

    /// Timestamps of one series.
    pub fn ts_of(&self, s: &SeriesInfo) -> &[i64] {
        &self.ts[s.start..s.start + s.len]
    }
    /// Values of one series.
    pub fn values_of(&self, s: &SeriesInfo) -> &[f64] {
        &self.values[s.start..s.start + s.len]
    }
    /// One series' value at exactly `t`, if it has that period.
    pub fn value_at(&self, s: &SeriesInfo, t: i64) -> Option<f64> {
        let k = self.ts_of(s).binary_search(&t).ok()?;
        Some(self.values_of(s)[k])
    }

    /// Newest timestamp of any series.
    pub fn newest(&self) -> Option<i64> {
        self.series
            .iter()
            .filter_map(|s| self.ts_of(s).last().copied())
            .max()
    }
    /// Number of rows in use by the series.
    pub fn rows(&self) -> usize {
        self.series.iter().map(|s| s.len).sum()
    }

    /// `extra`'s series added (their rows after these), every series in
    /// key order again: derived series (roll-ups, ratios) joining their
    /// source's batch.
    pub fn absorb(&mut self, extra: Batch) {
        let offset = self.ts.len();
        self.ts.extend(extra.ts);
        self.values.extend(extra.values);
        self.series.extend(extra.series.into_iter().map(|mut s| {
            s.start += offset;
            s
        }));
        self.series.sort_by(|x, y| x.key.cmp(&y.key));
    }

    /// Cut every series after its last point for which `keep(series, t)`
    /// holds (a prefix: times ascend), telling `on_cut` of each series that
    /// loses points (its times, how many are kept); a series left empty is
    /// dropped. Its rows stay in place, outside every series.
    pub fn keep_prefix(
        &mut self,
        keep: impl Fn(&SeriesInfo, i64) -> bool,
        mut on_cut: impl FnMut(&SeriesInfo, &[i64], usize),
    ) {
        let ts = &self.ts;
        self.series.retain_mut(|s| {
            let series_ts = &ts[s.start..s.start + s.len];
            let kept = series_ts.partition_point(|&t| keep(s, t));
            if kept < s.len {
                on_cut(s, series_ts, kept);
                s.len = kept;
            }
            s.len > 0
        });
    }
}
