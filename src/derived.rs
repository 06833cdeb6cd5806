//! Derived ratio metrics (`[[derived]]`): `conversion = orders / sessions`
//! per period, for every series key where both parts exist (slices and
//! roll-ups alike), detected like an exported metric.
//!
//! The parts are kept beside each ratio, so a ratio's finding can say which
//! part moved ([`Parts::note`]). Pure and columnar: the two parts' sorted
//! time slices are merge-joined once; no clock, no I/O.

use std::collections::BTreeMap;

use crate::batch::{Batch, SeriesInfo};
use crate::config::Config;
use crate::model::{MS_PER_DAY, SeriesKey};

/// Ratio series being gathered from one source's batch (or its chunks).
#[derive(Default)]
pub struct Derivations {
    /// Per derived metric and dimensions: the numerator's and the
    /// denominator's rows (time, value), each in time order once complete.
    parts: BTreeMap<SeriesKey, Pair>,
}

#[derive(Default)]
struct Pair {
    num: Vec<(i64, f64)>,
    den: Vec<(i64, f64)>,
    granularity: Option<crate::model::Granularity>,
}

/// What each ratio series of a source was made of, for the notes of its
/// findings.
#[derive(Default, Debug)]
pub struct Parts {
    /// Per ratio series: what it was made of.
    of: BTreeMap<SeriesKey, Made>,
}

/// One ratio series' parts: the numerator's and denominator's names and
/// `(time, numerator, denominator)` at each of its periods.
#[derive(Debug)]
struct Made {
    num: String,
    den: String,
    rows: Vec<(i64, f64, f64)>,
}

impl Derivations {
    /// Gather the parts of every `[[derived]]` metric in `b`.
    pub fn add(&mut self, cfg: &Config, b: &Batch) {
        for s in &b.series {
            for d in &cfg.derived {
                let is_num = s.key.metric == d.num;
                if !is_num && s.key.metric != d.den {
                    continue;
                }
                let key = SeriesKey {
                    metric: d.name.clone(),
                    dims: s.key.dims.clone(),
                };
                let pair = self.parts.entry(key).or_default();
                let rows = b
                    .ts_of(s)
                    .iter()
                    .copied()
                    .zip(b.values_of(s).iter().copied());
                if is_num {
                    pair.num.extend(rows);
                    pair.granularity = Some(s.granularity);
                } else {
                    pair.den.extend(rows);
                }
            }
        }
    }

    /// The ratio series as a batch of `source` (none when no `[[derived]]`
    /// metric has both parts), with what each was made of. A period is
    /// written when both parts have it and the denominator is not zero.
    pub fn finish(
        self,
        cfg: &Config,
        source: &str,
        key_columns: &[String],
    ) -> (Option<Batch>, Parts) {
        let mut parts = Parts::default();
        let mut out = Batch::empty(source, key_columns);
        for (key, mut pair) in self.parts {
            let Some(granularity) = pair.granularity else {
                continue;
            };
            let Some(d) = cfg.derived.iter().find(|d| d.name == key.metric) else {
                continue;
            };
            pair.num.sort_unstable_by_key(|r| r.0);
            pair.den.sort_unstable_by_key(|r| r.0);
            let start = out.ts.len();
            let mut made = Vec::new();
            let (mut i, mut j) = (0, 0);
            while i < pair.num.len() && j < pair.den.len() {
                let ((tn, n), (td, dv)) = (pair.num[i], pair.den[j]);
                if tn < td {
                    i += 1;
                } else if td < tn {
                    j += 1;
                } else {
                    let r = n / dv;
                    if dv != 0.0 && r.is_finite() {
                        out.ts.push(tn);
                        out.values.push(r);
                        made.push((tn, n, dv));
                    }
                    i += 1;
                    j += 1;
                }
            }
            let len = out.ts.len() - start;
            if len > 0 {
                parts.of.insert(
                    key.clone(),
                    Made {
                        num: d.num.clone(),
                        den: d.den.clone(),
                        rows: made,
                    },
                );
                out.series.push(SeriesInfo {
                    key,
                    start,
                    len,
                    granularity,
                });
            }
        }
        let batch = (!out.series.is_empty()).then_some(out);
        (batch, parts)
    }
}

impl Parts {
    /// Which part of ratio series `key` moved at `t`: each part's change
    /// against the same period a week before (`orders -20.0% vs a week
    /// before, sessions +1.0%`); `None` for a series that is no ratio or
    /// without that week.
    pub fn note(&self, key: &SeriesKey, t: i64) -> Option<String> {
        let Made { num, den, rows } = self.of.get(key)?;
        let at = |t: i64| rows.binary_search_by_key(&t, |r| r.0).ok().map(|k| rows[k]);
        let (_, n, d) = at(t)?;
        let (_, n0, d0) = at(t - 7 * MS_PER_DAY)?;
        let pct = |now: f64, then: f64| crate::fmt::pct(crate::fmt::deviation(now, then));
        Some(format!(
            "{num} {} vs a week before, {den} {}",
            pct(n, n0),
            pct(d, d0)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Granularity;

    const DAY: i64 = MS_PER_DAY;

    fn config() -> Config {
        let text = "[store]\npath = \"s.db\"\n[[source]]\nname = \"shop\"\npath = \"shop.csv\"\n\
                    dimensions = [\"region\"]\n[[derived]]\nname = \"conversion\"\nratio = [\"orders\", \"sessions\"]\n";
        crate::config::compile_str(text, std::path::Path::new("/tmp/c.toml"), &|_| None).unwrap()
    }

    /// `(metric, region, (day, value) rows)` of one series.
    type Rows<'a> = (&'a str, &'a str, &'a [(i64, f64)]);

    fn batch(series: &[Rows<'_>]) -> Batch {
        let mut b = Batch::empty("shop", &["metric".into(), "region".into()]);
        for &(metric, region, rows) in series {
            let start = b.ts.len();
            for &(d, v) in rows {
                b.ts.push(d * DAY);
                b.values.push(v);
            }
            b.series.push(SeriesInfo {
                key: SeriesKey {
                    metric: metric.into(),
                    dims: vec![("region".into(), region.into())],
                },
                start,
                len: rows.len(),
                granularity: Granularity::Day,
            });
        }
        b
    }

    #[test]
    fn a_ratio_per_key_where_both_parts_have_the_period() {
        let cfg = config();
        let b = batch(&[
            ("orders", "eu", &[(0, 10.0), (1, 12.0), (2, 9.0), (7, 8.0)]),
            ("orders", "us", &[(0, 5.0)]),
            (
                "sessions",
                "eu",
                &[(0, 100.0), (2, 0.0), (3, 50.0), (7, 100.0)],
            ),
            ("visits", "eu", &[(0, 1.0)]),
        ]);
        let mut d = Derivations::default();
        d.add(&cfg, &b);
        let (out, parts) = d.finish(&cfg, "shop", &b.key_columns);
        let out = out.unwrap();
        assert_eq!(out.series.len(), 1, "us has no sessions");
        let s = &out.series[0];
        assert_eq!(s.key.to_string(), "conversion{region=eu}");
        // day 1 has no sessions, day 2 none to divide by, day 3 no orders
        assert_eq!(out.ts_of(s), [0, 7 * DAY]);
        assert_eq!(out.values_of(s), [0.1, 0.08]);
        assert_eq!(
            parts.note(&s.key, 7 * DAY).as_deref(),
            Some("orders -20.0% vs a week before, sessions +0.0%")
        );
        assert_eq!(parts.note(&s.key, 0), None);
    }
}
