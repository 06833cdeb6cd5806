//! One ask per cause: when a roll-up (a total) and a slice under it are
//! flagged for the same period and the slice drove the total's move, the
//! owner is asked once.
//!
//! Rules (README, "Totals and roll-ups"):
//! - A slice drove its total when its own gap (actual − its expected) is on
//!   the total's side and at least a tenth of the total's gap.
//! - Same owner: one item, the total's; the slice is named in it (by the
//!   contribution lines, else an "also flagged" line) and not asked about
//!   on its own.
//! - Roll-ups that average (`aggregate = "mean"`) fold nothing: their
//!   slices' gaps are no shares of theirs.
//! - Different owners: each gets their item, with a line pointing at the
//!   other ("part of revenue (total), asked of Ana").
//! - A slice flagged in the same period that did not drive the total (the
//!   other side, or a small part of it) keeps its own item, unchanged.
//!
//! Must not: look at anything but the findings of one evaluation and the
//! owners of the config.

use std::borrow::Cow;

use crate::config::Config;
use crate::model::{Finding, Lane, ROLLUP_ALL, SeriesKey};

/// A slice explaining less of its total's gap than this is its own matter.
const DRIVER_SHARE: f64 = 0.1;

/// `findings` with each slice that drove a flagged total folded into the
/// total's item (same owner) or pointed at it (another owner).
pub(super) fn one_ask_per_cause<'f>(
    config: &Config,
    findings: Cow<'f, [Finding]>,
) -> Cow<'f, [Finding]> {
    let statistical = |f: &Finding| Lane::of(f.hit.check) == Lane::Statistical;
    let totals: Vec<usize> = findings
        .iter()
        .enumerate()
        .filter(|(_, f)| statistical(f) && config.sums_rollup(&f.key))
        .map(|(k, _)| k)
        .collect();
    if totals.is_empty() {
        return findings;
    }
    let mut out = findings.into_owned();
    let mut folded = vec![false; out.len()];
    let mut notes: Vec<(usize, String)> = Vec::new();
    for &t in &totals {
        let total = &out[t];
        let gap = total.hit.value - total.hit.expected;
        if !(gap.is_finite() && gap != 0.0) {
            continue;
        }
        let total_owner = config.owners.owner_of(&total.key);
        for (k, f) in out.iter().enumerate() {
            let drove = k != t
                && statistical(f)
                && f.source == total.source
                && f.hit.ts == total.hit.ts
                && f.key.is_under(&total.key)
                && (f.hit.value - f.hit.expected) / gap >= DRIVER_SHARE;
            if !drove {
                continue;
            }
            let owner = config.owners.owner_of(&f.key);
            if owner == total_owner {
                folded[k] = true;
                if !names(total, &f.key) {
                    notes.push((t, format!("also flagged: {}", f.key.label())));
                }
            } else {
                let who = |m: Option<&lettre::message::Mailbox>| {
                    m.map_or_else(|| "nobody".to_string(), |m| m.to_string())
                };
                notes.push((
                    k,
                    format!(
                        "part of {}, asked of {}",
                        total.key.label(),
                        who(total_owner)
                    ),
                ));
                notes.push((t, format!("{} is asked of {}", f.key.label(), who(owner))));
            }
        }
    }
    for (k, line) in notes {
        out[k].hit.add_note(&line);
    }
    let mut k = 0;
    out.retain(|_| {
        k += 1;
        !folded[k - 1]
    });
    Cow::Owned(out)
}

/// Whether the total's note (its contribution lines) names `slice`.
fn names(total: &Finding, slice: &SeriesKey) -> bool {
    let drivers = crate::model::drivers(total.hit.note.as_deref().unwrap_or(""));
    total
        .key
        .dims
        .iter()
        .zip(&slice.dims)
        .filter(|((_, tv), (_, sv))| tv == ROLLUP_ALL && sv != ROLLUP_ALL)
        .any(|((d, _), (_, v))| {
            let slice = format!("{d} {v}");
            drivers.iter().any(|x| x.slice == slice)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Check, Granularity, Hit};

    fn config(where_eu: &str) -> Config {
        let text = format!(
            "[store]\npath = \"s.db\"\n[[source]]\nname = \"shop\"\npath = \"shop.csv\"\n\
             dimensions = [\"region\"]\n[owners]\ndefault = \"Ana <ana@example.com>\"\n{where_eu}"
        );
        crate::config::compile_str(&text, std::path::Path::new("/tmp/c.toml"), &|_| None).unwrap()
    }

    fn finding(region: &str, value: f64, expected: f64) -> Finding {
        Finding {
            source: "shop".into(),
            key: SeriesKey {
                metric: "revenue".into(),
                dims: vec![("region".into(), region.into())],
            },
            granularity: Granularity::Day,
            hit: Hit {
                expected,
                ..Hit::blank(86_400_000, value, Check::Seasonal, 100)
            },
        }
    }

    fn asked(cfg: &Config, fs: &[Finding]) -> Vec<(String, Option<String>)> {
        one_ask_per_cause(cfg, Cow::Borrowed(fs))
            .iter()
            .map(|f| (f.key.label(), f.hit.note.clone()))
            .collect()
    }

    #[test]
    fn a_slice_that_drove_its_total_is_one_item_for_one_owner() {
        // the total fell 500, eu 450 of it; us fell too, but 20 (4 %);
        // apac rose: their own items
        let fs = [
            finding("*", 9_500.0, 10_000.0),
            finding("eu", 550.0, 1_000.0),
            finding("us", 980.0, 1_000.0),
            finding("apac", 1_300.0, 1_000.0),
        ];
        let got = asked(&config(""), &fs);
        assert_eq!(
            got,
            vec![
                (
                    "revenue (total)".to_string(),
                    Some("also flagged: revenue (region=eu)".to_string())
                ),
                ("revenue (region=us)".to_string(), None),
                ("revenue (region=apac)".to_string(), None),
            ]
        );
    }

    #[test]
    fn with_another_owner_each_item_points_at_the_other() {
        let sam = "[[owners.rule]]\nmatch = \"revenue\"\nwhere = { region = \"eu\" }\nemail = \"Sam <sam@example.com>\"\n";
        let fs = [
            finding("*", 9_500.0, 10_000.0),
            finding("eu", 550.0, 1_000.0),
        ];
        let got = asked(&config(sam), &fs);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(
            got[0].1.as_deref(),
            Some("revenue (region=eu) is asked of Sam <sam@example.com>")
        );
        assert_eq!(
            got[1].1.as_deref(),
            Some("part of revenue (total), asked of Ana <ana@example.com>")
        );
    }

    #[test]
    fn an_averaged_total_folds_nothing() {
        let mean = "[[metric]]\nmatch = \"revenue\"\nrollups = [\"total\"]\naggregate = \"mean\"\n";
        let fs = [finding("*", 950.0, 1_000.0), finding("eu", 550.0, 1_000.0)];
        let got = asked(&config(mean), &fs);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got.iter().all(|g| g.1.is_none()), "{got:?}");
    }

    #[test]
    fn without_a_flagged_total_nothing_changes() {
        let fs = [finding("eu", 550.0, 1_000.0)];
        assert!(matches!(
            one_ask_per_cause(&config(""), Cow::Borrowed(&fs)),
            Cow::Borrowed(_)
        ));
    }
}
