//! Series → daily totals per metric and per dimension slice, aggregated
//! columnar in Polars; then any period's number from those totals.
//!
//! The heavy step (millions of rows) is one Polars `group_by` per grouping
//! on a single integer key (group × day), never a loop over rows. What comes
//! back is small (metrics × days, slices × days) and dense, so every window
//! the report needs (a week, a month to date, a year ago) is a slice sum.

use std::collections::BTreeMap;

use polars::prelude::*;

use crate::batch::Batch;
use crate::config::report::Aggregate;
use crate::model::MS_PER_DAY;

/// Bits of the group key that hold the day (offset from the batch's first day):
/// 2^20 days is ~2,800 years, far beyond any export.
const DAY_BITS: i64 = 20;

/// Daily totals of one metric (or one slice of it): the sum and the number
/// of points per day, dense from `first_day`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Daily {
    /// Day number (days since 1970-01-01) of `sum[0]`.
    pub first_day: i64,
    /// Sum of the points of each day.
    pub sum: Vec<f64>,
    /// Number of points of each day (0: no data).
    pub count: Vec<f64>,
}

impl Daily {
    fn add(&mut self, day: i64, sum: f64, count: f64) {
        if self.sum.is_empty() {
            self.first_day = day;
        }
        if day < self.first_day {
            let pad = usize::try_from(self.first_day - day).unwrap_or(0);
            self.sum.splice(0..0, std::iter::repeat_n(0.0, pad));
            self.count.splice(0..0, std::iter::repeat_n(0.0, pad));
            self.first_day = day;
        }
        let i = usize::try_from(day - self.first_day).unwrap_or(0);
        if i >= self.sum.len() {
            self.sum.resize(i + 1, 0.0);
            self.count.resize(i + 1, 0.0);
        }
        self.sum[i] += sum;
        self.count[i] += count;
    }

    /// Daily totals of one series' points (`(series time ms, value)`), e.g.
    /// the stored recent history a digest item comes with.
    pub fn from_points(points: &[(i64, f64)]) -> Daily {
        let mut d = Daily::default();
        for &(ts, v) in points.iter().filter(|(_, v)| v.is_finite()) {
            d.add(ts.div_euclid(MS_PER_DAY), v, 1.0);
        }
        d
    }

    /// Index range of days `a..b` inside the vectors.
    fn range(&self, a: i64, b: i64) -> std::ops::Range<usize> {
        let n = self.sum.len();
        let clamp = |d: i64| {
            usize::try_from((d - self.first_day).max(0))
                .unwrap_or(0)
                .min(n)
        };
        clamp(a)..clamp(b).max(clamp(a))
    }

    /// The newest day with data.
    pub fn last_day(&self) -> Option<i64> {
        let i = self.count.iter().rposition(|&c| c > 0.0)?;
        Some(self.first_day + i64::try_from(i).ok()?)
    }

    /// The value of days `a..b` by `how` (`Ratio` is not a daily rule: `None`);
    /// `None` when no day in the window has data.
    pub fn window(&self, a: i64, b: i64, how: &Aggregate) -> Option<f64> {
        let r = self.range(a, b);
        let n: f64 = self.count[r.clone()].iter().sum();
        if n == 0.0 {
            return None;
        }
        match how {
            Aggregate::Sum => Some(self.sum[r].iter().sum()),
            Aggregate::Mean => Some(self.sum[r].iter().sum::<f64>() / n),
            Aggregate::Last => {
                let i = r.clone().rev().find(|&i| self.count[i] > 0.0)?;
                Some(self.sum[i])
            }
            Aggregate::Ratio { .. } => None,
        }
    }

    /// Whether days `a..b` all have data (a complete period).
    pub fn complete(&self, a: i64, b: i64) -> bool {
        let r = self.range(a, b);
        usize::try_from(b - a).is_ok_and(|len| r.len() == len)
            && self.count[r].iter().all(|&c| c > 0.0)
    }
}

/// Daily totals of every metric, and of every slice of every dimension.
#[derive(Debug, Clone, Default)]
pub struct Cube {
    /// Metrics in the order the sources list them (first seen).
    pub order: Vec<String>,
    /// Totals per metric.
    pub totals: BTreeMap<String, Daily>,
    /// Per metric, per dimension, per value: the slice's totals (on the
    /// days asked for only).
    pub slices: BTreeMap<String, BTreeMap<String, BTreeMap<String, Daily>>>,
    /// The dimensions of each metric, in export order.
    pub dims: BTreeMap<String, Vec<String>>,
}

/// Codes for the distinct values of something, in first-seen order.
#[derive(Default)]
struct Codes(Vec<String>, std::collections::HashMap<String, i64>);

impl Codes {
    fn code(&mut self, s: &str) -> i64 {
        if let Some(&c) = self.1.get(s) {
            return c;
        }
        let c = i64::try_from(self.0.len()).unwrap_or(i64::MAX);
        self.0.push(s.to_string());
        self.1.insert(s.to_string(), c);
        c
    }
}

/// Sum and count per (group × day) for one key column, read back into [`Daily`]s.
fn grouped(
    key: Vec<i64>,
    values: &[f64],
    day0: i64,
    names: &[String],
    mut put: impl FnMut(&str, i64, f64, f64),
) -> PolarsResult<()> {
    let n = key.len();
    let df = DataFrame::new(
        n,
        vec![
            Column::new("k".into(), key),
            Column::new("v".into(), values.to_vec()),
        ],
    )?;
    let out = df
        .lazy()
        .filter(col("k").gt_eq(lit(0i64)))
        .group_by([col("k")])
        .agg([
            col("v").sum().alias("s"),
            col("v").count().cast(DataType::Float64).alias("n"),
        ])
        // each group's days in order: `Daily::add` then only appends
        .sort(["k"], SortMultipleOptions::default())
        .collect()?;
    let k = out.column("k")?.i64()?;
    let s = out.column("s")?.f64()?;
    let c = out.column("n")?.f64()?;
    for ((k, s), c) in k.iter().zip(s.iter()).zip(c.iter()) {
        let (Some(k), Some(s), Some(c)) = (k, s, c) else {
            continue;
        };
        let group = usize::try_from(k >> DAY_BITS).unwrap_or(usize::MAX);
        if let Some(name) = names.get(group) {
            put(name, day0 + (k & ((1 << DAY_BITS) - 1)), s, c);
        }
    }
    Ok(())
}

impl Cube {
    /// The newest day (days since 1970) with data in any metric; `None` when
    /// there is none at all.
    pub fn newest_day(&self) -> Option<i64> {
        self.totals.values().filter_map(Daily::last_day).max()
    }

    /// Add one batch, or one chunk of a source larger than the memory budget
    /// (totals add up; a metric split over chunks is summed across them):
    /// one Polars group-by for the metric totals (every day: the charts and
    /// the year to date need them) and one per dimension for the slices, over
    /// the days of `slice_days` only (`a..b` ranges: the drill-down compares a
    /// few weeks, and with one series per slice a whole-history group-by
    /// would have as many groups as rows).
    pub fn add(&mut self, b: &Batch, slice_days: &[(i64, i64)]) -> PolarsResult<()> {
        let cube = self;
        let Some(day0) = b.ts.iter().map(|t| t.div_euclid(MS_PER_DAY)).min() else {
            return Ok(());
        };
        let day_offsets: Vec<i64> =
            b.ts.iter()
                .map(|t| t.div_euclid(MS_PER_DAY) - day0)
                .collect();
        // one code per series for each grouping; rows get their series' code
        let mut metrics = Codes::default();
        let per_series: Vec<i64> = b
            .series
            .iter()
            .map(|s| metrics.code(&s.key.metric))
            .collect();
        for m in &metrics.0 {
            if !cube.order.contains(m) {
                cube.order.push(m.clone());
            }
        }
        let keep: Vec<(i64, i64)> = slice_days
            .iter()
            .map(|(a, b)| (a - day0, b - day0))
            .collect();
        // the group key of every row: group code and day, or -1 (left out:
        // a row of no series, as a batch cut at a replay's clock keeps its
        // later rows in place, or a day outside `only`)
        let key_of = |codes: &[i64], only: Option<&[(i64, i64)]>| -> Vec<i64> {
            let mut key = vec![-1; b.ts.len()];
            for (s, &c) in b.series.iter().zip(codes) {
                let range = s.start..s.start + s.len;
                let rows = &day_offsets[range.clone()];
                let out = &mut key[range];
                match only {
                    _ if c < 0 => {}
                    None => {
                        for (k, d) in out.iter_mut().zip(rows) {
                            *k = (c << DAY_BITS) | d;
                        }
                    }
                    Some(keep) => {
                        for (k, &d) in out.iter_mut().zip(rows) {
                            if keep.iter().any(|&(a, b)| d >= a && d < b) {
                                *k = (c << DAY_BITS) | d;
                            }
                        }
                    }
                }
            }
            key
        };
        grouped(
            key_of(&per_series, None),
            &b.values,
            day0,
            &metrics.0,
            |m, d, s, n| {
                cube.totals.entry(m.to_string()).or_default().add(d, s, n);
            },
        )?;
        for dim in &b.key_columns {
            // a slice is (metric, value of this dimension)
            let mut slices = Codes::default();
            let codes: Vec<i64> = b
                .series
                .iter()
                .map(|s| match s.key.dim(dim) {
                    Some(v) => slices.code(&format!("{}\u{1f}{v}", s.key.metric)),
                    None => -1,
                })
                .collect();
            grouped(
                key_of(&codes, Some(&keep)),
                &b.values,
                day0,
                &slices.0,
                |name, d, s, n| {
                    let Some((m, v)) = name.split_once('\u{1f}') else {
                        return;
                    };
                    cube.slices
                        .entry(m.to_string())
                        .or_default()
                        .entry(dim.clone())
                        .or_default()
                        .entry(v.to_string())
                        .or_default()
                        .add(d, s, n);
                },
            )?;
            for name in &slices.0 {
                if let Some((m, _)) = name.split_once('\u{1f}') {
                    let dims = cube.dims.entry(m.to_string()).or_default();
                    if !dims.contains(dim) {
                        dims.push(dim.clone());
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_sum_mean_last_over_days() {
        let mut d = Daily::default();
        for (day, s, n) in [
            (10, 5.0, 1.0),
            (12, 7.0, 2.0),
            (9, 1.0, 1.0),
            (12, 1.0, 1.0),
        ] {
            d.add(day, s, n);
        }
        assert_eq!(d.first_day, 9);
        assert_eq!(d.window(9, 13, &Aggregate::Sum), Some(14.0));
        assert_eq!(d.window(9, 13, &Aggregate::Mean), Some(14.0 / 5.0));
        assert_eq!(d.window(9, 12, &Aggregate::Last), Some(5.0));
        assert_eq!(d.window(0, 5, &Aggregate::Sum), None);
        assert_eq!(d.window(20, 30, &Aggregate::Sum), None);
        assert!(!d.complete(9, 13) && d.complete(12, 13));
        assert_eq!(d.last_day(), Some(12));
    }
}
