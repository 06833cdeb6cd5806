//! Roll-ups and ratios, black-box: a drop spread thinly over ten regions,
//! each inside its own band, is found on the total (`[[metric]] rollups =
//! ["total"]`), written with `*` in the region column and named "revenue
//! (total)" in the owner's digest; without `rollups` nothing new appears. A
//! `[[derived]]` ratio is detected on every level its parts exist, and its
//! finding says which part moved.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    reason = "a failed assumption in a test is a failed test"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{Datelike, Duration, NaiveDate};

use crate::support::common::{callout_ok, text, unit_hash};

pub const REGIONS: usize = 10;
pub const DAYS: i64 = 400;
/// The day every region drops 13 %.
pub const DROP: i64 = 390;
/// The day region r09, the largest, drops 45 %.
pub const ONE: i64 = 370;

fn day(d: i64) -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 1, 1).unwrap() + Duration::days(d)
}

fn write_export(path: &Path) {
    write_export_from(path, day(0));
}

/// Daily revenue of ten regions from `start`: a weekly shape and 4 % noise
/// each (the total's noise is a third of that), every region 13 % down on
/// day [`DROP`], the largest 45 % down on day [`ONE`].
pub fn write_export_from(path: &Path, start: NaiveDate) {
    let day = |d: i64| start + Duration::days(d);
    let mut s = String::from("date,metric,region,value\n");
    for d in 0..DAYS {
        let week = [1.0, 1.05, 1.1, 1.05, 1.0, 0.8, 0.75]
            [day(d).weekday().num_days_from_monday() as usize];
        for r in 0..REGIONS {
            // uniform noise with a 4 % standard deviation
            let u = unit_hash((r as u64) << 32 | d as u64) - 0.5;
            let drop = if d == DROP {
                0.87
            } else if d == ONE && r == 9 {
                0.55
            } else {
                1.0
            };
            // r09 is the largest region, a fifth of the total
            let size = if r == 9 {
                3000.0
            } else {
                1000.0 + 100.0 * r as f64
            };
            let v = size * week * (1.0 + 0.139 * u) * drop;
            s.push_str(&format!("{},revenue,r{r:02},{v:.2}\n", day(d)));
        }
    }
    std::fs::write(path, s).unwrap();
}

fn config(dir: &Path, name: &str, metric: &str) -> PathBuf {
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(
        &p,
        format!(
            "[store]\npath = \"{name}.db\"\n\n[[source]]\nname = \"shop\"\npath = \"revenue.csv\"\n\
             time_column = \"date\"\ndimensions = [\"region\"]\nexpected_delay_hours = 1000000\n\n\
             [owners]\ndefault = \"Ana <ana@example.com>\"\n\n{metric}"
        ),
    )
    .unwrap();
    p
}

/// The digests `run --once --dry-run` writes the morning after `last` (the
/// files with extension `ext` in `dir`, one after the other).
fn digests(cfg: &Path, last: NaiveDate, dir: &Path, ext: &str) -> String {
    let at = format!("{} 08:00", last + Duration::days(1));
    callout_ok(&[
        "run",
        "--once",
        "--config",
        cfg.to_str().unwrap(),
        "--at",
        &at,
        "--dry-run",
        dir.to_str().unwrap(),
    ]);
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

/// `backfill` of `cfg`'s history into the findings file `out`.
fn backfill(cfg: &Path, out: &Path) {
    callout_ok(&[
        "backfill",
        "--quiet",
        "--config",
        cfg.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
}

/// `(region, check)` of the findings on day `d` in a findings CSV.
fn on_day(csv: &Path, d: i64) -> Vec<(String, String)> {
    let body = std::fs::read_to_string(csv).unwrap();
    let mut lines = body.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| head.iter().position(|c| *c == name).unwrap();
    let (region, ts, check) = (col("region"), col("timestamp"), col("check"));
    lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f[ts].starts_with(&day(d).to_string()))
        .map(|f| (f[region].to_string(), f[check].to_string()))
        .collect()
}

#[test]
fn a_drop_spread_over_every_region_is_found_on_the_total() {
    let dir = tempfile::tempdir().unwrap();
    write_export(&dir.path().join("revenue.csv"));

    let rolled = config(
        dir.path(),
        "rolled",
        "[[metric]]\nmatch = \"revenue\"\nrollups = [\"total\"]\n",
    );
    let out = dir.path().join("rolled.csv");
    backfill(&rolled, &out);
    let found = on_day(&out, DROP);
    assert!(
        found.contains(&("*".to_string(), "seasonal".to_string())),
        "the total's drop: {found:?}"
    );
    let slices = found.iter().filter(|(r, _)| r != "*").count();
    assert!(
        slices <= REGIONS / 2,
        "most slices are inside their band: {found:?}"
    );
    // the total is quiet on ordinary days
    let body = std::fs::read_to_string(&out).unwrap();
    let total_days = body.lines().filter(|l| l.contains(",*,")).count();
    assert!(total_days <= 3, "{body}");

    // without rollups: no total
    let plain = config(dir.path(), "plain", "");
    let out = dir.path().join("plain.csv");
    backfill(&plain, &out);
    assert!(on_day(&out, DROP).iter().all(|(r, _)| r != "*"));

    // the morning after, the owner's digest names it "revenue (total)"
    let mail = digests(&rolled, day(DROP), &dir.path().join("digests"), "eml");
    assert!(mail.contains("revenue (total)"), "{mail}");
    // spread evenly, the drop names no region as its driver
    assert!(!mail.contains("what drove it"), "{mail}");

    // the day one region fell, the total's item names it with its share
    let mail = digests(&rolled, day(ONE), &dir.path().join("digests-one"), "eml");
    assert!(mail.contains("revenue (total)"), "{mail}");
    assert!(
        mail.contains("what drove it:") && mail.contains("region r09: -4"),
        "{mail}"
    );
    // one owner, one cause: the region is named in the total's item, not
    // asked about on its own
    assert!(
        !mail.contains("revenue (region=3Dr09)") && mail.contains("1 outlier"),
        "{mail}"
    );
    assert!(mail.contains("% vs expected, explains "), "{mail}");
}

#[test]
fn check_config_names_a_bad_rollup() {
    let dir = tempfile::tempdir().unwrap();
    for (metric, key, words) in [
        (
            "[[metric]]\nmatch = \"revenue\"\nrollups = [\"regoin\"]\n",
            "metric[0].rollups[0]",
            "\"regoin\" is neither \"total\" nor a dimension (the sources' dimensions are region)",
        ),
        (
            "[[derived]]\nname = \"conversion\"\nratio = [\"orders\"]\n",
            "derived[0].ratio",
            "give two metrics, numerator then denominator",
        ),
        (
            "[[metric]]\nmatch = \"revenue\"\naggregate = \"mean\"\n",
            "metric[0].aggregate",
            "only roll-ups aggregate",
        ),
        (
            "[[metric]]\nmatch = \"conversion\"\nrollups = [\"total\"]\n\n[[report.metric]]\nname = \"conversion\"\naggregate = \"mean\"\n",
            "metric[0].rollups",
            "say how its roll-ups combine",
        ),
    ] {
        let cfg = config(dir.path(), "bad", metric);
        let out = Command::new(env!("CARGO_BIN_EXE_callout"))
            .args(["check-config", "--config", cfg.to_str().unwrap()])
            .output()
            .unwrap();
        let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(!out.status.success(), "{said}");
        assert!(said.contains(key) && said.contains(words), "{said}");
    }
}

/// Orders and sessions of three regions; on [`DROP`] eu's orders fall 30 %
/// while its sessions hold: conversion = orders / sessions falls on eu and
/// on the total, and says the orders moved.
#[test]
fn a_derived_ratio_is_detected_on_slices_and_totals_and_names_the_part_that_moved() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = String::from("date,metric,region,value\n");
    for d in 0..DAYS {
        let week = [1.0, 1.05, 1.1, 1.05, 1.0, 0.8, 0.75]
            [day(d).weekday().num_days_from_monday() as usize];
        for (r, region) in ["eu", "us", "apac"].iter().enumerate() {
            let noise = |salt: u64| {
                1.0 + 0.04 * (unit_hash((r as u64) << 40 ^ (d as u64) << 4 ^ salt) - 0.5)
            };
            let sessions = 10_000.0 * week * noise(1);
            let drop = if d == DROP && r == 0 { 0.7 } else { 1.0 };
            let orders = 300.0 * week * noise(2) * drop;
            s.push_str(&format!("{},orders,{region},{orders:.1}\n", day(d)));
            s.push_str(&format!("{},sessions,{region},{sessions:.1}\n", day(d)));
        }
    }
    std::fs::write(dir.path().join("revenue.csv"), s).unwrap();
    let cfg = config(
        dir.path(),
        "ratio",
        "[[metric]]\nmatch = \"*\"\nrollups = [\"total\"]\n\n[[derived]]\nname = \"conversion\"\nratio = [\"orders\", \"sessions\"]\n\n\
         [[owners.rule]]\nmatch = \"*\"\nwhere = { region = \"eu\" }\nemail = \"Sam <sam@example.com>\"\n",
    );
    let out = dir.path().join("ratio.csv");
    backfill(&cfg, &out);
    let body = std::fs::read_to_string(&out).unwrap();
    let on_drop: Vec<&str> = body
        .lines()
        .filter(|l| l.contains(&day(DROP).to_string()))
        .collect();
    for region in ["eu", "*"] {
        assert!(
            on_drop
                .iter()
                .any(|l| l.starts_with(&format!("conversion,{region},"))),
            "no conversion finding for {region}: {on_drop:#?}"
        );
    }
    assert!(
        !on_drop
            .iter()
            .any(|l| l.starts_with("conversion,us,") || l.starts_with("conversion,apac,")),
        "{on_drop:#?}"
    );
    // the digest says which part moved, for the slice and the total
    let mail = digests(&cfg, day(DROP), &dir.path().join("digests"), "html");
    // eu has its own owner: each item points at the other
    assert!(
        mail.contains("part of conversion (total), asked of Ana"),
        "{mail}"
    );
    assert!(
        mail.contains("conversion (region=eu) is asked of Sam"),
        "{mail}"
    );
    for item in ["conversion (region=eu)", "conversion (total)"] {
        assert!(mail.contains(item), "{item} not in {mail}");
    }
    assert!(
        mail.matches("orders -").count() >= 2 && mail.contains("vs a week before, sessions"),
        "{mail}"
    );
}

/// A region whose newest day has not arrived yet: the total leaves that day
/// out, and it is the region that is `missing`, not the total.
#[test]
fn a_late_slice_is_missing_and_the_total_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("revenue.csv");
    write_export(&export);
    let last = day(DAYS - 1).to_string();
    let body = std::fs::read_to_string(&export).unwrap();
    let kept: String = body
        .lines()
        .filter(|l| !(l.starts_with(&last) && l.contains(",r05,")))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&export, kept).unwrap();
    let cfg = config(
        dir.path(),
        "late",
        "[[metric]]\nmatch = \"revenue\"\nrollups = [\"total\"]\n",
    );
    let out = dir.path().join("late.csv");
    backfill(&cfg, &out);
    let found = std::fs::read_to_string(&out).unwrap();
    let missing: Vec<&str> = found.lines().filter(|l| l.contains(",missing,")).collect();
    assert!(
        missing.iter().any(|l| l.starts_with("revenue,r05,")),
        "{found}"
    );
    assert!(
        !missing.iter().any(|l| l.starts_with("revenue,*,")),
        "{found}"
    );
}
