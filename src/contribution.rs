//! Contribution: which slices drove a roll-up's move (Adtributor, NSDI 2014:
//! explanatory power and surprise).
//!
//! A total's finding has an expected value (the kernel's, causal). Each
//! slice one dimension down gets its own expected value from it: the total's
//! expectation times the slice's share of the total over the same period of
//! the four weeks before (a top-down forecast, known at the time). Then per
//! slice: its own change (actual against its expectation), its share of the
//! total's gap (its deviation over the total's; the shares sum to 100 % and
//! pass it when other slices moved the other way) and its surprise (the
//! Jensen–Shannon term of its expected and actual share of the total, so a
//! small slice that moved far stands out). The dimension whose top slice
//! explains the most is the one shown.
//!
//! Pure: a batch and a finding in, words out; only data up to the
//! finding's period is read.

use crate::batch::{Batch, SeriesInfo};
use crate::model::{Finding, MS_PER_DAY, ROLLUP_ALL, SeriesKey};

/// Weeks of history a slice's share is measured over.
const SHARE_WEEKS: i64 = 4;
/// Slices named at most.
const SHOWN: usize = 3;
/// A slice explaining less than this share of the gap is not named.
const MIN_SHARE: f64 = 0.1;
/// Nor one whose share of the total barely moved (a move spread evenly over
/// every slice: none of them drove it).
const MIN_SURPRISE: f64 = 5e-4;

/// One slice's part in a roll-up's move.
#[derive(Debug, Clone, PartialEq)]
pub struct Slice {
    /// The slice's value of the dimension (`apac`).
    pub value: String,
    /// Its own change against its expected value, in percent.
    pub change_pct: f64,
    /// Its share of the total's gap (actual − expected), 1.0 = all of it.
    pub share: f64,
    /// Jensen–Shannon surprise of its share of the total.
    pub surprise: f64,
}

/// The slices of `f`'s roll-up one dimension down that drove its move, in
/// the dimension that explains the most (its name and the slices, most
/// surprising first); `None` when `f` is no roll-up, its expectation is
/// unknown, or no slice explains enough.
pub fn slices(b: &Batch, f: &Finding) -> Option<(String, Vec<Slice>)> {
    let key = &f.key;
    let (t, expected, actual) = (f.hit.ts, f.hit.expected, f.hit.value);
    let gap = actual - expected;
    if !(expected.is_finite() && actual.is_finite() && gap != 0.0) {
        return None;
    }
    let mut best: Option<(f64, String, Vec<Slice>)> = None;
    for (d, _) in key.dims.iter().filter(|(_, v)| v == ROLLUP_ALL) {
        let by_value = slice_values(b, key, d, t);
        if by_value.len() < 2 {
            continue;
        }
        let shares = expected_shares(b, key, d, &by_value, t);
        let total_actual: f64 = by_value.iter().map(|s| s.1).sum();
        let mut found: Vec<Slice> = by_value
            .iter()
            .zip(&shares)
            .filter_map(|((value, now), &p)| {
                let exp = expected * p;
                let q = now / total_actual;
                (exp > 0.0 && q.is_finite()).then(|| Slice {
                    value: value.clone(),
                    change_pct: (now / exp - 1.0) * 100.0,
                    share: (now - exp) / gap,
                    surprise: js_term(p, q),
                })
            })
            .collect();
        found.retain(|s| s.share >= MIN_SHARE && s.surprise >= MIN_SURPRISE);
        let top = found
            .iter()
            .map(|s| s.share)
            .fold(f64::NEG_INFINITY, f64::max);
        found.sort_by(|a, b| b.surprise.total_cmp(&a.surprise));
        found.truncate(SHOWN);
        if !found.is_empty() && best.as_ref().is_none_or(|(t, _, _)| top > *t) {
            best = Some((top, d.clone(), found));
        }
    }
    best.map(|(_, d, s)| (d, s))
}

/// The lines a person reads: `apac -35% vs expected, explains 71% of the
/// gap`, one per slice, and a word when a share passes 100 %.
pub fn lines(dimension: &str, slices: &[Slice]) -> Vec<String> {
    let mut out: Vec<String> = slices
        .iter()
        .map(|s| {
            crate::model::Driver {
                slice: format!("{dimension} {}", s.value),
                change_pct: s.change_pct,
                share_pct: s.share * 100.0,
            }
            .line()
        })
        .collect();
    if slices.iter().any(|s| s.share > 1.0) {
        out.push("(a share passes 100% when other slices moved the other way)".into());
    }
    out
}

/// The slices of `key` along dimension `d` at `t`: each value of `d` with
/// the sum of its series' values there (series under the roll-up: the same
/// metric, the roll-up's kept dimensions, no `*` of their own).
fn slice_values(b: &Batch, key: &SeriesKey, d: &str, t: i64) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = Vec::new();
    for (s, v) in members(b, key, d) {
        let Some(x) = b.value_at(s, t) else { continue };
        match out.iter_mut().find(|(name, _)| name == v) {
            Some(slot) => slot.1 += x,
            None => out.push((v.to_string(), x)),
        }
    }
    out
}

/// Each slice's share of the total over the same period of the
/// [`SHARE_WEEKS`] weeks before `t` (equal shares when none is known).
fn expected_shares(
    b: &Batch,
    key: &SeriesKey,
    d: &str,
    slices: &[(String, f64)],
    t: i64,
) -> Vec<f64> {
    let mut sums = vec![0.0; slices.len()];
    for w in 1..=SHARE_WEEKS {
        let then = t - w * 7 * MS_PER_DAY;
        for (s, v) in members(b, key, d) {
            let k = slices.iter().position(|(n, _)| n == v);
            if let (Some(x), Some(k)) = (b.value_at(s, then), k) {
                sums[k] += x;
            }
        }
    }
    let total: f64 = sums.iter().sum();
    if total > 0.0 && total.is_finite() {
        sums.iter().map(|x| x / total).collect()
    } else {
        vec![1.0 / slices.len() as f64; slices.len()]
    }
}

/// The series under roll-up `key`, each with its value of dimension `d`.
fn members<'b>(
    b: &'b Batch,
    key: &'b SeriesKey,
    d: &'b str,
) -> impl Iterator<Item = (&'b SeriesInfo, &'b str)> {
    // the slices themselves (no partial roll-up: it would count them twice)
    b.series
        .iter()
        .filter(move |s| !s.key.is_rollup() && s.key.is_under(key))
        .filter_map(move |s| s.key.dim(d).map(|v| (s, v)))
}

/// The Jensen–Shannon term of an expected share `p` and an actual one `q`.
fn js_term(p: f64, q: f64) -> f64 {
    let m = (p + q) / 2.0;
    let part = |x: f64| if x > 0.0 { x * (x / m).ln() } else { 0.0 };
    0.5 * (part(p) + part(q))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Check, Granularity, Hit};

    const DAY: i64 = MS_PER_DAY;

    /// Ten regions, 5 weeks of days: region `r` at `100 + 10 r`, its total
    /// flagged on the last day, where `changes` scale some regions.
    fn case(changes: &[(usize, f64)]) -> (Batch, Finding) {
        let mut b = Batch::empty("shop", &["metric".into(), "region".into()]);
        let last = 35;
        let mut total = 0.0;
        for r in 0..10 {
            let start = b.ts.len();
            let base = 100.0 + 10.0 * r as f64;
            for d in 0..=last {
                let f = changes
                    .iter()
                    .find(|c| c.0 == r && d == last)
                    .map_or(1.0, |c| c.1);
                b.ts.push(d * DAY);
                b.values.push(base * f);
                if d == last {
                    total += base * f;
                }
            }
            b.series.push(SeriesInfo {
                key: SeriesKey {
                    metric: "revenue".into(),
                    dims: vec![("region".into(), format!("r{r}"))],
                },
                start,
                len: b.ts.len() - start,
                granularity: Granularity::Day,
            });
        }
        let f = Finding {
            source: "shop".into(),
            key: SeriesKey {
                metric: "revenue".into(),
                dims: vec![("region".into(), ROLLUP_ALL.into())],
            },
            granularity: Granularity::Day,
            hit: Hit {
                expected: 1450.0,
                ..Hit::blank(last * DAY, total, Check::Seasonal, 35)
            },
        };
        (b, f)
    }

    #[test]
    fn the_slice_that_drove_a_total_explains_its_gap() {
        // r3 (130) down 45 %: -58.5 of a -58.5 gap
        let (b, f) = case(&[(3, 0.55)]);
        let (d, s) = slices(&b, &f).unwrap();
        assert_eq!(d, "region");
        assert_eq!(s.len(), 1, "{s:?}");
        assert_eq!(s[0].value, "r3");
        assert!((s[0].change_pct + 45.0).abs() < 1e-9, "{s:?}");
        assert!((s[0].share - 1.0).abs() < 1e-9, "{s:?}");
        assert_eq!(
            lines(&d, &s),
            ["region r3: -45% vs expected, explains 100% of the gap"]
        );
        // the page and the pre-read read the lines back from the note
        let note = format!(
            "a note; {}\n{}",
            crate::model::DRIVERS_HEADING,
            lines(&d, &s).join("\n")
        );
        let back = crate::model::drivers(&note);
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].slice, "region r3");
        assert_eq!((back[0].change_pct, back[0].share_pct), (-45.0, 100.0));
        // a note added after them (one ask per cause) stays in the words
        let (words, back) =
            crate::model::split_drivers(&format!("{note}; also flagged: revenue (region=r5)"));
        assert_eq!(back.len(), 1);
        assert_eq!(words, "a note; also flagged: revenue (region=r5)");
    }

    #[test]
    fn a_share_passes_all_of_the_gap_when_another_slice_moved_the_other_way() {
        // r3 down 58.5, r5 (150) up 30: the gap is -28.5
        let (b, f) = case(&[(3, 0.55), (5, 1.2)]);
        let (d, s) = slices(&b, &f).unwrap();
        assert_eq!(s[0].value, "r3", "{s:?}");
        assert!(s[0].share > 2.0, "{s:?}");
        let words = lines(&d, &s);
        assert!(words.last().unwrap().contains("passes 100%"), "{words:?}");
    }

    #[test]
    fn a_drop_spread_evenly_names_no_slice() {
        // every region 13 % down: each explains its own tenth or so
        let all: Vec<(usize, f64)> = (0..10).map(|r| (r, 0.87)).collect();
        let (b, f) = case(&all);
        assert_eq!(slices(&b, &f), None);
    }
}
