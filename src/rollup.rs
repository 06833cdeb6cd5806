//! Roll-ups: a metric detected on its aggregates too (`[[metric]] rollups`).
//!
//! A drop spread thinly over every region, each slice inside its own band,
//! is a large move of the total. For each rolled-up metric of a batch this
//! builds one series per roll-up group — the metric with `*` in each
//! dimension summed over ([`ROLLUP_ALL`](crate::model::ROLLUP_ALL)) — and detection then treats it like any
//! other series (same models, checks, FDR and owners).
//!
//! A roll-up point is written only when every slice that should be there
//! is: a slice counts from its first row on, and until its last row when it
//! stopped for good (more than [`STOPPED_PERIODS`] periods, and a day,
//! before the newest row of the group); a slice that is merely late for the newest
//! period leaves that period out of the total instead of making it a dip.
//!
//! Pure and columnar: each group's rows are gathered from the slices'
//! contiguous ranges, sorted once and summed in one pass; nothing here reads
//! a clock or does I/O.

use std::collections::BTreeMap;

use crate::batch::{Batch, SeriesInfo};
use crate::config::{Config, RollupAggregate};
use crate::model::{Granularity, ROLLUP_ALL, SeriesKey};

/// A slice whose last row is more than this many periods (and a day) before
/// the group's newest row has stopped (decommissioned): the total goes on
/// without it.
const STOPPED_PERIODS: i64 = 3;

/// Roll-up groups being gathered from one source's batch (or its chunks).
#[derive(Default)]
pub struct Rollups {
    groups: BTreeMap<SeriesKey, Group>,
}

/// The slices of one roll-up series.
struct Group {
    granularity: Granularity,
    aggregate: RollupAggregate,
    /// Every slice's rows, `(timestamp, value)`.
    rows: Vec<(i64, f64)>,
    /// Each slice's first and last timestamp.
    spans: Vec<(i64, i64)>,
}

impl Rollups {
    /// Gather the rolled-up series of `b` (metrics whose rule has
    /// `rollups`) into their groups.
    pub fn add(&mut self, cfg: &Config, b: &Batch) {
        for s in &b.series {
            let rule = cfg.rule_for(&s.key.metric);
            if rule.rollups.is_empty() || s.len == 0 || s.key.is_rollup() {
                continue;
            }
            let (ts, values) = (b.ts_of(s), b.values_of(s));
            for r in &rule.rollups {
                let dims: Vec<(String, String)> = s
                    .key
                    .dims
                    .iter()
                    .map(|(k, v)| {
                        let kept = r.keep.contains(k);
                        (
                            k.clone(),
                            if kept {
                                v.clone()
                            } else {
                                ROLLUP_ALL.to_string()
                            },
                        )
                    })
                    .collect();
                if dims == s.key.dims {
                    // keeps every dimension the series has: it is its own roll-up
                    continue;
                }
                let key = SeriesKey {
                    metric: s.key.metric.clone(),
                    dims,
                };
                let g = self.groups.entry(key).or_insert_with(|| Group {
                    granularity: s.granularity,
                    aggregate: rule.rollup_aggregate(),
                    rows: Vec::new(),
                    spans: Vec::new(),
                });
                g.rows
                    .extend(ts.iter().copied().zip(values.iter().copied()));
                g.spans.push((ts[0], ts[ts.len() - 1]));
            }
        }
    }

    /// The roll-up series, as a batch of `source` (none when nothing was
    /// rolled up).
    pub fn finish(self, source: &str, key_columns: &[String]) -> Option<Batch> {
        if self.groups.is_empty() {
            return None;
        }
        let mut out = Batch::empty(source, key_columns);
        for (key, mut g) in self.groups {
            let start = out.ts.len();
            g.aggregate_into(&mut out.ts, &mut out.values);
            let len = out.ts.len() - start;
            if len > 0 {
                out.series.push(SeriesInfo {
                    key,
                    start,
                    len,
                    granularity: g.granularity,
                });
            }
        }
        Some(out)
    }
}

impl Group {
    /// Append the group's complete periods, aggregated, to `ts` and `values`.
    fn aggregate_into(&mut self, ts: &mut Vec<i64>, values: &mut Vec<f64>) {
        // a period's slices are summed smallest first, whatever order they
        // came in: a source read whole or in chunks sums to the same bits
        self.rows
            .sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
        let newest = self.spans.iter().map(|s| s.1).max().unwrap_or(i64::MIN);
        let grace = STOPPED_PERIODS
            .saturating_mul(self.granularity.step_ms())
            .max(crate::model::MS_PER_DAY);
        let mut firsts: Vec<i64> = self.spans.iter().map(|s| s.0).collect();
        // a slice that has not stopped is expected up to the newest row
        let mut ends: Vec<i64> = self
            .spans
            .iter()
            .map(|&(_, last)| {
                if last.saturating_add(grace) >= newest {
                    i64::MAX
                } else {
                    last
                }
            })
            .collect();
        firsts.sort_unstable();
        ends.sort_unstable();
        let rows = &self.rows;
        let mut k = 0;
        while k < rows.len() {
            let t = rows[k].0;
            let (mut sum, mut n) = (0.0, 0usize);
            while k < rows.len() && rows[k].0 == t {
                sum += rows[k].1;
                n += 1;
                k += 1;
            }
            let expected = firsts.partition_point(|&f| f <= t) - ends.partition_point(|&e| e < t);
            if n == expected && sum.is_finite() {
                ts.push(t);
                values.push(match self.aggregate {
                    RollupAggregate::Sum => sum,
                    RollupAggregate::Mean => sum / n as f64,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    fn config(rollups: &str) -> Config {
        let text = format!(
            "[store]\npath = \"s.db\"\n[[source]]\nname = \"shop\"\npath = \"shop.csv\"\n\
             dimensions = [\"region\", \"channel\"]\n[[metric]]\nmatch = \"revenue\"\n{rollups}\n"
        );
        crate::config::compile_str(&text, std::path::Path::new("/tmp/c.toml"), &|_| None).unwrap()
    }

    /// A batch of `(metric, region, channel, first day, values a day)`.
    fn batch(series: &[(&str, &str, &str, i64, &[f64])]) -> Batch {
        let mut b = Batch {
            source: "shop".into(),
            key_columns: vec!["metric".into(), "region".into(), "channel".into()],
            ts: Vec::new(),
            values: Vec::new(),
            series: Vec::new(),
        };
        for &(metric, region, channel, first, values) in series {
            let start = b.ts.len();
            for (d, &v) in values.iter().enumerate() {
                b.ts.push((first + d as i64) * DAY);
                b.values.push(v);
            }
            b.series.push(SeriesInfo {
                key: SeriesKey {
                    metric: metric.into(),
                    dims: vec![
                        ("region".into(), region.into()),
                        ("channel".into(), channel.into()),
                    ],
                },
                start,
                len: values.len(),
                granularity: Granularity::Day,
            });
        }
        b
    }

    fn rolled(cfg: &Config, b: &Batch) -> Vec<(String, Vec<(i64, f64)>)> {
        let mut r = Rollups::default();
        r.add(cfg, b);
        let Some(out) = r.finish("shop", &b.key_columns) else {
            return Vec::new();
        };
        out.series
            .iter()
            .map(|s| {
                let points = out
                    .ts_of(s)
                    .iter()
                    .map(|t| t / DAY)
                    .zip(out.values_of(s).iter().copied())
                    .collect();
                (s.key.to_string(), points)
            })
            .collect()
    }

    #[test]
    fn totals_and_partial_rollups_sum_the_slices_of_each_period() {
        let b = batch(&[
            ("revenue", "eu", "web", 0, &[1.0, 2.0, 3.0]),
            ("revenue", "eu", "app", 0, &[10.0, 20.0, 30.0]),
            ("revenue", "us", "web", 0, &[100.0, 200.0, 300.0]),
            ("orders", "us", "web", 0, &[5.0, 5.0, 5.0]),
        ]);
        let cfg = config("rollups = [\"total\", \"region\"]");
        assert_eq!(
            rolled(&cfg, &b),
            vec![
                (
                    "revenue{region=*,channel=*}".into(),
                    vec![(0, 111.0), (1, 222.0), (2, 333.0)]
                ),
                (
                    "revenue{region=eu,channel=*}".into(),
                    vec![(0, 11.0), (1, 22.0), (2, 33.0)]
                ),
                (
                    "revenue{region=us,channel=*}".into(),
                    vec![(0, 100.0), (1, 200.0), (2, 300.0)]
                ),
            ]
        );
        let cfg = config("rollups = [\"total\"]\naggregate = \"mean\"");
        assert_eq!(
            rolled(&cfg, &b),
            vec![(
                "revenue{region=*,channel=*}".into(),
                vec![(0, 37.0), (1, 74.0), (2, 111.0)]
            )]
        );
        assert!(rolled(&config(""), &b).is_empty());
    }

    #[test]
    fn a_late_slice_leaves_the_newest_period_out_and_a_stopped_one_drops_out() {
        // `us` has not sent day 9 yet: the total stops at day 8, not a dip;
        // `apac` stopped for good after day 2 (7 days before the newest):
        // the total goes on without it from day 3; `latam` starts on day 5
        let b = batch(&[
            ("revenue", "eu", "web", 0, &[1.0; 10]),
            ("revenue", "us", "web", 0, &[2.0; 9]),
            ("revenue", "apac", "web", 0, &[4.0; 3]),
            ("revenue", "latam", "web", 5, &[8.0; 5]),
        ]);
        let cfg = config("rollups = [\"total\"]");
        let total = &rolled(&cfg, &b)[0].1;
        let days: Vec<i64> = total.iter().map(|p| p.0).collect();
        assert_eq!(days, (0..9).collect::<Vec<_>>());
        assert_eq!(total[0].1, 7.0);
        assert_eq!(total[3].1, 3.0);
        assert_eq!(total[5].1, 11.0);
    }

    #[test]
    fn merging_keeps_series_in_key_order_with_their_rows() {
        let mut b = batch(&[
            ("revenue", "eu", "web", 0, &[1.0, 2.0]),
            ("revenue", "us", "web", 0, &[3.0, 4.0]),
        ]);
        let cfg = config("rollups = [\"total\"]");
        let mut r = Rollups::default();
        r.add(&cfg, &b);
        let extra = r.finish("shop", &b.key_columns).unwrap();
        b.absorb(extra);
        let keys: Vec<String> = b.series.iter().map(|s| s.key.to_string()).collect();
        assert_eq!(
            keys,
            [
                "revenue{region=*,channel=*}",
                "revenue{region=eu,channel=web}",
                "revenue{region=us,channel=web}"
            ]
        );
        assert_eq!(b.values_of(&b.series[0]), [4.0, 6.0]);
        assert_eq!(b.values_of(&b.series[2]), [3.0, 4.0]);
        assert!(b.series[0].key.is_rollup() && !b.series[1].key.is_rollup());
    }
}
