//! The `restated` check: a period callout already flagged whose value in the
//! export has changed since (or that is gone from it).
//!
//! Pure: the caller (`pipeline::add_restated`, for run and backfill alike)
//! is given the flagged values the store holds and passes them in with the loaded batches; this module compares, one
//! binary search per flagged period in its series' slice, never a pass over the
//! batch's rows. It is a data-health check: certain, no p-value, no FDR, and
//! outside the detect kernel because its input is the store's memory, not the
//! series alone.
//!
//! Idempotence comes from the input: a flagged value is the *newest* value the
//! store holds for the period, restatements included, so once `A → B` is
//! stored, `B` is what the next run compares with; only a move to `C` is news.

use std::collections::HashMap;

use crate::batch::Batch;
use crate::model::{Check, Finding, Flagged, Hit, SeriesKey, Side};

/// Relative tolerance under which two values are the same number (a CSV
/// written with other rounding is not a restatement).
pub const RELATIVE_TOLERANCE: f64 = 1e-9;

/// The note a restated finding carries when the owner had explained the old number.
pub const EXPLAINED_NOTE: &str = "the explanation was given for the old number";

/// Same number within [`RELATIVE_TOLERANCE`]; two absent values are the same.
pub fn same_value(a: f64, b: f64) -> bool {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => true,
        (false, false) => a == b || (a - b).abs() <= RELATIVE_TOLERANCE * a.abs().max(b.abs()),
        _ => false,
    }
}

/// One `restated` finding per flagged period whose value in `batches` differs
/// from the flagged one (`expected` holds the old value, `value` the new one,
/// NaN when the period is gone). A period outside its series' loaded range
/// (older than the export's or the query's window) is not judged; a series
/// absent from the batch is the `missing`/`late` checks' business.
/// Ordered by source, series, time.
pub fn restatements(flagged: &[Flagged], batches: &[Batch]) -> Vec<Finding> {
    if flagged.is_empty() {
        return Vec::new();
    }
    let mut by_series: HashMap<(&str, &SeriesKey), Vec<&Flagged>> = HashMap::new();
    for f in flagged {
        by_series
            .entry((f.source.as_str(), &f.key))
            .or_default()
            .push(f);
    }
    let mut out = Vec::new();
    for batch in batches {
        for s in &batch.series {
            let Some(points) = by_series.get(&(batch.source.as_str(), &s.key)) else {
                continue;
            };
            let (ts, values) = (batch.ts_of(s), batch.values_of(s));
            let (Some(&first), Some(&last)) = (ts.first(), ts.last()) else {
                continue;
            };
            for p in points.iter().filter(|p| p.ts >= first && p.ts <= last) {
                let now = ts.binary_search(&p.ts).map_or(f64::NAN, |i| values[i]);
                if same_value(p.value, now) {
                    continue;
                }
                out.push(Finding {
                    source: batch.source.clone(),
                    key: s.key.clone(),
                    granularity: s.granularity,
                    hit: Hit {
                        expected: p.value,
                        side: Side::of(now > p.value),
                        note: p.explained.then(|| EXPLAINED_NOTE.to_string()),
                        ..Hit::blank(p.ts, now, Check::Restated, 0)
                    },
                });
            }
        }
    }
    out.sort_by(|a, b| {
        (a.source.as_str(), &a.key, a.hit.ts).cmp(&(b.source.as_str(), &b.key, b.hit.ts))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::SeriesInfo;
    use crate::model::Granularity;

    const DAY: i64 = 86_400_000;

    fn key(m: &str) -> SeriesKey {
        SeriesKey {
            metric: m.into(),
            dims: vec![("region".into(), "eu".into())],
        }
    }

    /// Two series: `orders` on days 0..=9 valued 100 + day, `visits` on days
    /// 0..=4 and 6..=9 (day 5 absent) valued 10.
    fn batch() -> Batch {
        let mut ts: Vec<i64> = (0..10).map(|d| d * DAY).collect();
        let mut values: Vec<f64> = (0..10).map(|d| 100.0 + d as f64).collect();
        ts.extend((0..10).filter(|&d| d != 5).map(|d| d * DAY));
        values.extend(std::iter::repeat_n(10.0, 9));
        Batch {
            source: "shop".into(),
            key_columns: vec!["metric".into(), "region".into()],
            ts,
            values,
            series: vec![
                SeriesInfo {
                    key: key("orders"),
                    start: 0,
                    len: 10,
                    granularity: Granularity::Day,
                },
                SeriesInfo {
                    key: key("visits"),
                    start: 10,
                    len: 9,
                    granularity: Granularity::Day,
                },
            ],
        }
    }

    fn flagged(m: &str, day: i64, value: f64, explained: bool) -> Flagged {
        Flagged {
            source: "shop".into(),
            key: key(m),
            ts: day * DAY,
            value,
            explained,
        }
    }

    /// (metric, day, old, new, note) of each finding.
    type Row = (String, i64, f64, f64, Option<String>);

    fn check(flags: &[Flagged], want: &[Row]) {
        let got: Vec<Row> = restatements(flags, &[batch()])
            .into_iter()
            .map(|f| {
                assert_eq!(f.hit.check, Check::Restated);
                assert_eq!(f.hit.p_value, 0.0);
                (
                    f.key.metric,
                    f.hit.ts / DAY,
                    f.hit.expected,
                    f.hit.value,
                    f.hit.note,
                )
            })
            .collect();
        assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
        for (g, w) in got.iter().zip(want) {
            assert_eq!((&g.0, g.1, &g.4), (&w.0, w.1, &w.4), "{got:?}");
            assert!(same_value(g.2, w.2) && same_value(g.3, w.3), "{got:?}");
        }
    }

    #[test]
    fn tolerance_is_relative_and_absent_equals_absent() {
        assert!(same_value(1e12, 1e12 + 1.0)); // 1e-12 relative
        assert!(!same_value(1e12, 1e12 + 1e4)); // 1e-8 relative
        assert!(same_value(0.0, 0.0));
        assert!(!same_value(0.0, 1e-300));
        assert!(same_value(f64::NAN, f64::NAN));
        assert!(!same_value(f64::NAN, 0.0));
    }

    #[test]
    fn unchanged_values_raise_nothing() {
        check(
            &[
                flagged("orders", 3, 103.0, false),
                flagged("orders", 7, 107.0 * (1.0 + 1e-12), true),
                flagged("visits", 9, 10.0, false),
            ],
            &[],
        );
    }

    #[test]
    fn a_changed_or_vanished_period_is_restated_with_both_numbers() {
        check(
            &[
                flagged("visits", 5, 12.0, false), // day 5 is gone
                flagged("orders", 8, 50.0, true),  // now 108, explained before
                flagged("orders", 2, 102.0, false),
                flagged("orders", 4, 90.0, false), // now 104
            ],
            &[
                ("orders".into(), 4, 90.0, 104.0, None),
                ("orders".into(), 8, 50.0, 108.0, Some(EXPLAINED_NOTE.into())),
                ("visits".into(), 5, 12.0, f64::NAN, None),
            ],
        );
    }

    #[test]
    fn periods_outside_the_loaded_range_and_other_series_are_not_judged() {
        check(
            &[
                flagged("orders", -3, 1.0, false), // before the export's window
                flagged("orders", 12, 1.0, false), // not ended / not loaded yet
                flagged("refunds", 3, 1.0, false), // series not in the batch
                Flagged {
                    source: "other".into(),
                    ..flagged("orders", 3, 1.0, false)
                },
            ],
            &[],
        );
    }

    #[test]
    fn a_period_reported_gone_is_news_again_only_when_it_returns() {
        check(&[flagged("visits", 5, f64::NAN, false)], &[]);
        check(
            &[flagged("orders", 5, f64::NAN, false)],
            &[("orders".into(), 5, f64::NAN, 105.0, None)],
        );
    }
}
