//! Black-box tests of the `callout` binary on the bundled fixtures.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    reason = "a failed assumption in a test or bench is a failed test"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::common;
use common::{root, text};

fn fixture(name: &str) -> String {
    root().join("fixtures").join(name).display().to_string()
}

fn callout(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_callout"))
        .args(args)
        .env_remove("CALLOUT_LOG")
        .output()
        .expect("run callout")
}

/// A config in a temp dir with the given `[[source]]` tables.
fn config_with(dir: &Path, sources: &str) -> PathBuf {
    let p = dir.join("callout.toml");
    std::fs::write(&p, format!("[store]\npath = \"state.db\"\n\n{sources}")).unwrap();
    p
}

fn long_source(name: &str, path: &str) -> String {
    format!(
        "[[source]]\nname = \"{name}\"\npath = \"{path}\"\ntime_column = \"date\"\ndimensions = [\"region\"]\n\n"
    )
}

/// Findings CSV → rows as maps.
fn read_findings(path: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let mut rd = csv::Reader::from_path(path).unwrap();
    let headers = rd.headers().unwrap().clone();
    rd.records()
        .map(|r| {
            let r = r.unwrap();
            headers
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

fn has(
    rows: &[std::collections::HashMap<String, String>],
    metric: &str,
    region: &str,
    date_prefix: &str,
    check: &str,
) -> bool {
    rows.iter().any(|r| {
        r["metric"] == metric
            && r["region"] == region
            && r["timestamp"].starts_with(date_prefix)
            && r["check"] == check
    })
}

#[test]
fn shipped_config_compiles() {
    let out = callout(&[
        "check-config",
        "--config",
        &root().join("config/callout.toml").display().to_string(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("2 source(s)"),
        "{}",
        text(&out.stdout)
    );
}

/// The example config's demo exports (fixtures/make_demo.py) tell their story
/// in the last week: a promotion in us, a lasting drop in apac, a broken export.
#[test]
fn the_example_config_finds_the_demo_story_in_the_last_week() {
    let dir = tempfile::tempdir().unwrap();
    let out_csv = dir.path().join("f.csv");
    let cfg = root().join("config/callout.toml").display().to_string();
    let out = callout(&[
        "backfill",
        "--config",
        &cfg,
        "--from",
        "2025-03-03",
        "--output",
        out_csv.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows = read_findings(&out_csv);
    let up = |m: &str, r: &str, d: &str| {
        rows.iter().any(|x| {
            x["metric"] == m
                && x["region"] == r
                && x["timestamp"].starts_with(d)
                && x["direction"] == "up"
        })
    };
    assert!(up("orders", "us", "2025-03-07"), "promotion: {rows:?}");
    assert!(up("revenue", "us", "2025-03-07"), "promotion: {rows:?}");
    for m in ["orders", "revenue"] {
        assert!(
            has(&rows, m, "apac", "2025-03-04", "seasonal"),
            "drop: {rows:?}"
        );
    }
    assert!(
        rows.iter()
            .any(|x| x["metric"] == "sessions" && x["region"] == "eu" && x["check"] == "stale"),
        "broken export: {rows:?}"
    );
    // nothing else in eu's shop metrics: the story, not noise
    assert!(
        !rows
            .iter()
            .any(|x| x["region"] == "eu" && x["metric"] != "sessions"),
        "{rows:?}"
    );
}

#[test]
fn check_config_lists_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    std::fs::write(
        &p,
        r#"
[schedule]
cron = "every day"
timezone = "Mars/Olympus"

[[source]]
name = "a"
path = "x.csv"
colour = "blue"

[[metric]]
match = "a*"

[[metric]]
match = "b*"

[[metric]]
match = "c*"

[[metric]]
match = "d*"
sensitivity = -1

[smtp]
host = "localhost"
from = "callout@example.com"
password = "hunter2"
"#,
    )
    .unwrap();
    let out = callout(&["check-config", "--config", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    for needle in [
        "metric[3].sensitivity: must be > 0 and <= 1000, got -1",
        "source[0].colour: unknown key",
        "schedule.timezone: unknown IANA timezone \"Mars/Olympus\"",
        "schedule.cron: `every day` has 2 field(s); callout's cron has 6, seconds first",
        "smtp.password: passwords are never read inline",
        "bad.toml",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
}

#[test]
fn unset_env_var_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let p = config_with(
        dir.path(),
        &long_source("a", "${CALLOUT_TEST_SURELY_UNSET}/x.csv"),
    );
    let out = callout(&["check-config", "--config", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("`CALLOUT_TEST_SURELY_UNSET` is not set"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn backfill_finds_planted_anomalies_in_long_wide_and_weekly() {
    let dir = tempfile::tempdir().unwrap();
    let out_csv = dir.path().join("f.csv");
    let cfg = root().join("tests/fixtures.toml").display().to_string();
    let out = callout(&[
        "backfill",
        "--config",
        &cfg,
        "--output",
        out_csv.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows = read_findings(&out_csv);
    let header: Vec<String> = csv::Reader::from_path(&out_csv)
        .unwrap()
        .headers()
        .unwrap()
        .iter()
        .map(String::from)
        .collect();
    assert_eq!(
        header,
        [
            "metric",
            "region",
            "timestamp",
            "value",
            "expected",
            "lower",
            "upper",
            "score",
            "direction",
            "check",
            "wow_pct",
            "yoy_pct"
        ]
    );
    assert!(
        has(&rows, "orders", "eu", "2024-05-15", "seasonal"),
        "spike"
    );
    assert!(
        rows.iter().any(|r| r["metric"] == "revenue"
            && r["region"] == "us"
            && r["check"] == "level_shift"
            && ("2024-06-03".."2024-06-08").contains(&r["timestamp"].as_str())),
        "level shift"
    );
    assert!(
        rows.iter().any(|r| r["metric"] == "orders"
            && r["region"] == "us"
            && r["check"] == "stale"
            && r["timestamp"].starts_with("2024-06-1")),
        "stale"
    );
    assert!(
        has(&rows, "revenue", "eu", "2024-06-20", "missing"),
        "missing"
    );
    assert!(
        has(&rows, "weekly_active", "eu", "2024-05-13", "variance"),
        "weekly dip"
    );
    // the level shift is one incident: not flagged again two weeks later
    assert!(
        !rows.iter().any(|r| r["metric"] == "revenue"
            && r["region"] == "us"
            && r["timestamp"].as_str() > "2024-06-14"),
        "re-anchored after the shift"
    );
    let summary = text(&out.stderr);
    assert!(
        summary.contains("series") && summary.contains("points evaluated"),
        "{summary}"
    );
}

#[test]
fn backfill_flag_form_and_jsonl_output() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_with(dir.path(), &long_source("shop", &fixture("shop_daily.csv")));
    let out_path = dir.path().join("f.jsonl");
    let out = callout(&[
        "--backfill",
        "--config",
        cfg.to_str().unwrap(),
        "--output",
        out_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let body = std::fs::read_to_string(&out_path).unwrap();
    let first: serde_json::Value = serde_json::from_str(body.lines().next().unwrap()).unwrap();
    for k in [
        "metric",
        "region",
        "timestamp",
        "value",
        "expected",
        "lower",
        "upper",
        "score",
        "direction",
        "check",
        "wow_pct",
        "yoy_pct",
    ] {
        assert!(first.get(k).is_some(), "{k} missing in {first}");
    }
    assert!(body.contains("\"2024-05-15\""));
}

#[test]
fn parquet_gives_the_same_findings_as_csv() {
    use polars::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let mut df = CsvReadOptions::default()
        .with_has_header(true)
        .try_into_reader_with_file_path(Some(fixture("shop_daily.csv").into()))
        .unwrap()
        .finish()
        .unwrap();
    let pq = dir.path().join("shop.parquet");
    ParquetWriter::new(std::fs::File::create(&pq).unwrap())
        .finish(&mut df)
        .unwrap();
    let csv_cfg = dir.path().join("csv.toml");
    std::fs::write(&csv_cfg, long_source("shop", &fixture("shop_daily.csv"))).unwrap();
    let pq_cfg = dir.path().join("pq.toml");
    std::fs::write(&pq_cfg, long_source("shop", pq.to_str().unwrap())).unwrap();
    let a = callout(&["backfill", "--config", csv_cfg.to_str().unwrap(), "--quiet"]);
    let b = callout(&["backfill", "--config", pq_cfg.to_str().unwrap(), "--quiet"]);
    assert!(
        a.status.success() && b.status.success(),
        "{}{}",
        text(&a.stderr),
        text(&b.stderr)
    );
    assert!(text(&a.stdout).lines().count() > 3);
    assert_eq!(text(&a.stdout), text(&b.stdout));
}

#[test]
fn no_look_ahead() {
    let dir = tempfile::tempdir().unwrap();
    let full = std::fs::read_to_string(fixture("shop_daily.csv")).unwrap();
    let cut_at = "2024-06-05";
    let cut: String = full
        .lines()
        .enumerate()
        .filter(|(i, l)| *i == 0 || l[..10] <= *cut_at)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    let cut_path = dir.path().join("cut.csv");
    std::fs::write(&cut_path, cut).unwrap();
    let run = |data: &str, name: &str| {
        let cfg = dir.path().join(format!("{name}.toml"));
        std::fs::write(&cfg, long_source("shop", data)).unwrap();
        let out = callout(&["backfill", "--config", cfg.to_str().unwrap(), "--quiet"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
            .lines()
            .skip(1)
            .filter(|l| l.split(',').nth(2).is_some_and(|t| t <= cut_at))
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let a = run(&fixture("shop_daily.csv"), "full");
    let b = run(cut_path.to_str().unwrap(), "cut");
    assert!(a.len() >= 2, "expected findings before the cut: {a:?}");
    assert_eq!(a, b);
}

fn bad_input(file: &str, needles: &[&str]) {
    bad_input_exits(file, 1, needles);
}

/// A broken source beside a good one: the exit code, the message, and the good
/// source's findings still written.
fn bad_input_exits(file: &str, code: i32, needles: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let sources = format!(
        "{}{}",
        long_source("broken", &fixture(file)),
        long_source("good", &fixture("shop_daily.csv"))
    );
    let cfg = config_with(dir.path(), &sources);
    let out_path = dir.path().join("f.csv");
    let out = callout(&[
        "backfill",
        "--config",
        cfg.to_str().unwrap(),
        "--output",
        out_path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(code), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    for n in needles {
        assert!(err.contains(n), "missing {n:?} in:\n{err}");
    }
    // the good source still ran
    let rows = read_findings(&out_path);
    assert!(
        has(&rows, "orders", "eu", "2024-05-15", "seasonal"),
        "good source findings missing"
    );
}

#[test]
fn bad_input_missing_file() {
    bad_input(
        "bad/nope.csv",
        &["source `broken`", "nope.csv", "no such file"],
    );
}

#[test]
fn bad_input_missing_column() {
    bad_input(
        "bad/missing_column.csv",
        &[
            "source `broken`",
            "missing_column.csv",
            "no column `region`",
            "date, metric, value",
        ],
    );
}

#[test]
fn bad_input_non_numeric_value() {
    bad_input(
        "bad/non_numeric.csv",
        &[
            "source `broken`",
            "non_numeric.csv",
            "column `value`",
            "\"abc\" is not a number",
        ],
    );
}

#[test]
fn bad_input_duplicate_timestamps() {
    bad_input(
        "bad/duplicates.csv",
        &[
            "source `broken`",
            "series `orders{region=eu}`",
            "duplicate timestamp 2024-01-01",
        ],
    );
}

#[test]
fn bad_input_empty_file() {
    bad_input(
        "bad/empty.csv",
        &["source `broken`", "empty.csv", "is empty"],
    );
}

#[test]
fn bad_input_nan_value() {
    // a warning: the series is evaluated without the NaN points, and the run succeeds
    bad_input_exits(
        "bad/nan.csv",
        0,
        &[
            "source `broken`",
            "series `orders{region=eu}`",
            "NaN",
            "2024-01-02",
        ],
    );
}

#[test]
fn run_once_prints_latest_findings_table() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_with(dir.path(), &long_source("shop", &fixture("shop_daily.csv")));
    // a week after the fixture's last day (2024-07-02), not today: every series is late then
    let out = callout(&[
        "run",
        "--once",
        "--config",
        cfg.to_str().unwrap(),
        "--at",
        "2024-07-10 08:00",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains("late") && s.contains("2024-07-03"), "{s}");
    assert!(s.contains("orders") && s.contains("region"), "{s}");
}

use crate::support::bench;

/// Backfill the self-made bench in `dir` with `rules` (extra `[[metric]]`
/// tables) and score the findings.
fn bench_score(dir: &Path, b: &bench::Bench, rules: &str) -> bench::Score {
    let cfg = dir.join("bench.toml");
    std::fs::write(
        &cfg,
        format!(
            "[store]\npath = \"callout.db\"\n\n[[source]]\nname = \"daily\"\npath = \"metrics_daily.csv\"\ntime_column = \"date\"\ndimensions = [\"region\"]\n\n{rules}"
        ),
    )
    .unwrap();
    let findings = dir.join(format!("findings-{}.csv", rules.len()));
    let out = callout(&[
        "backfill",
        "--config",
        cfg.to_str().unwrap(),
        "--output",
        findings.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    bench::score(b, &findings)
}

/// Detection-quality regression guard on a labelled bench generated inside
/// the project (tests/it/support/bench.rs; no `../shared`): fails if F1 or recall
/// drop below floors set under what the detector measured, or false alerts rise.
/// It also checks that it can fail: with detection made nearly blind
/// (sensitivity 0.05) or trigger-happy (sensitivity 20) it scores below the floors.
#[test]
fn bench_quality_does_not_regress() {
    let dir = tempfile::tempdir().unwrap();
    let b = bench::generate(dir.path(), BENCH_SEED, BENCH_DAYS);
    assert!(b.labels.len() >= 15, "too few labels: {}", b.labels.len());

    let s = bench_score(dir.path(), &b, "");
    eprintln!(
        "bench: precision {:.3} recall {:.3} F1 {:.3}, {:.2} false alerts per 100 series-weeks, {} labels; missed {:?}",
        s.precision,
        s.recall,
        s.f1,
        s.false_alerts_per_100_series_weeks,
        b.labels.len(),
        s.missed
    );
    assert!(s.f1 >= F1_FLOOR, "F1 {} fell below {F1_FLOOR}: {s:?}", s.f1);
    assert!(
        s.recall >= RECALL_FLOOR,
        "recall {} fell below {RECALL_FLOOR}: {s:?}",
        s.recall
    );
    assert!(
        s.false_alerts_per_100_series_weeks <= FALSE_ALERT_CEILING,
        "false alerts {} per 100 series-weeks above {FALSE_ALERT_CEILING}: {s:?}",
        s.false_alerts_per_100_series_weeks
    );

    let blind = bench_score(
        dir.path(),
        &b,
        "[[metric]]\nmatch = \"*\"\nsensitivity = 0.05\n",
    );
    assert!(
        blind.recall < RECALL_FLOOR,
        "a nearly blind detector still passes the recall floor: {blind:?}"
    );
    eprintln!("sensitivity 0.05: {blind:?}");
    let noisy = bench_score(
        dir.path(),
        &b,
        "[[metric]]\nmatch = \"*\"\nsensitivity = 20\n",
    );
    eprintln!(
        "sensitivity 20: precision {:.3} recall {:.3} F1 {:.3}, {:.2} false alerts",
        noisy.precision, noisy.recall, noisy.f1, noisy.false_alerts_per_100_series_weeks
    );
    assert!(
        noisy.f1 < F1_FLOOR || noisy.false_alerts_per_100_series_weeks > FALSE_ALERT_CEILING,
        "a trigger-happy detector still passes the floors: {noisy:?}"
    );
}

use crate::support::bench_ops;

/// Backfill the self-made ops bench in `dir` with the shipped
/// `config/bench-ops.toml` sources plus `rules`, and score the findings.
fn ops_score(dir: &Path, b: &bench_ops::Bench, rules: &str) -> (bench_ops::Score, String) {
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config/bench-ops.toml"),
    )
    .unwrap()
    .replace("${CALLOUT_BENCH_DIR}/", "");
    let cfg = dir.join("bench-ops.toml");
    std::fs::write(&cfg, format!("{shipped}\n{rules}")).unwrap();
    let findings = dir.join(format!("ops-findings-{}.csv", rules.len()));
    let out = callout(&[
        "backfill",
        "--config",
        cfg.to_str().unwrap(),
        "--output",
        findings.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    (bench_ops::score(b, &findings), text(&out.stderr))
}

/// Sub-daily detection-quality guard on hourly and 5-minute series generated
/// inside the project (tests/it/support/bench_ops.rs): short histories, jittered
/// and repeated timestamps, lost rows, Poisson counts. Fails if F1 or recall
/// drop below floors set under what the detector measured, false alerts rise,
/// or a series is skipped; and checks it can fail (a nearly blind detector).
#[test]
fn ops_bench_quality_does_not_regress() {
    let dir = tempfile::tempdir().unwrap();
    let b = bench_ops::generate(dir.path(), OPS_SEED, OPS_SERIES);
    assert!(b.labels.len() >= 15, "too few labels: {}", b.labels.len());
    let (s, log) = ops_score(dir.path(), &b, "");
    eprintln!(
        "ops bench: precision {:.3} recall {:.3} F1 {:.3}, {:.2} false alerts per 100 series-weeks, {} labels; missed {:?}",
        s.precision,
        s.recall,
        s.f1,
        s.false_alerts_per_100_series_weeks,
        b.labels.len(),
        s.missed
    );
    // dirty timestamps are combined, not errors: every series is evaluated
    assert!(log.contains(&format!("{OPS_SERIES} series")), "{log}");
    assert!(log.contains(" 0 error(s)"), "{log}");
    assert!(
        s.f1 >= OPS_F1_FLOOR,
        "F1 {} fell below {OPS_F1_FLOOR}: {s:?}",
        s.f1
    );
    assert!(
        s.recall >= OPS_RECALL_FLOOR,
        "recall {} fell below {OPS_RECALL_FLOOR}: {s:?}",
        s.recall
    );
    assert!(
        s.false_alerts_per_100_series_weeks <= OPS_FALSE_ALERT_CEILING,
        "false alerts {} per 100 series-weeks above {OPS_FALSE_ALERT_CEILING}: {s:?}",
        s.false_alerts_per_100_series_weeks
    );
    let (blind, _) = ops_score(
        dir.path(),
        &b,
        "[[metric]]\nmatch = \"*\"\nsensitivity = 0.05\nchecks = [\"seasonal\", \"level_shift\"]\n",
    );
    eprintln!("ops, sensitivity 0.05: {blind:?}");
    assert!(
        blind.recall < OPS_RECALL_FLOOR,
        "a nearly blind detector still passes the recall floor: {blind:?}"
    );
}

// Measured on seed 11 (40 series, 27 labels) with the detector as of this commit
// (ramps, noise bursts and capped gauges in): precision 0.789, recall 0.963 (26/27),
// F1 0.867, 15.1 false alerts per 100 series-weeks (the in-project set is harder on
// false alerts than the shared one, where untuned seeds 51-55 measure 6.6-10.3).
// The floors allow one more miss and some noise. Sensitivity 0.05 with the
// statistical checks only measured recall 0.185.
const OPS_SEED: u64 = 11;
const OPS_SERIES: usize = 40;
const OPS_F1_FLOOR: f64 = 0.83;
const OPS_RECALL_FLOOR: f64 = 0.92;
const OPS_FALSE_ALERT_CEILING: f64 = 17.0;

const BENCH_SEED: u64 = 7;
const BENCH_DAYS: i64 = 760;
// Measured on seed 7 (760 days, 48 series, 34 labels, 2 of them lost weekly
// shapes) with the detector as of this commit: precision 0.803, recall 0.912
// (31/34), F1 0.854, 0.27 false alerts per 100 series-weeks. The floors allow two
// more misses and some noise. Sensitivity 0.05 measured recall 0.088;
// sensitivity 20: F1 0.624, 1.46 false alerts.
const F1_FLOOR: f64 = 0.82;
const RECALL_FLOOR: f64 = 0.85;
const FALSE_ALERT_CEILING: f64 = 0.45;

#[test]
fn ndjson_gives_the_same_findings_as_csv() {
    let dir = tempfile::tempdir().unwrap();
    let csv_text = std::fs::read_to_string(fixture("shop_daily.csv")).unwrap();
    let nd: String = csv_text
        .lines()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            format!(
                "{{\"date\":\"{}\",\"metric\":\"{}\",\"region\":\"{}\",\"value\":{}}}\n",
                c[0], c[1], c[2], c[3]
            )
        })
        .collect();
    let nd_path = dir.path().join("shop.ndjson");
    std::fs::write(&nd_path, nd).unwrap();
    let csv_cfg = dir.path().join("csv.toml");
    std::fs::write(&csv_cfg, long_source("shop", &fixture("shop_daily.csv"))).unwrap();
    let nd_cfg = dir.path().join("nd.toml");
    std::fs::write(&nd_cfg, long_source("shop", nd_path.to_str().unwrap())).unwrap();
    let a = callout(&["backfill", "--config", csv_cfg.to_str().unwrap(), "--quiet"]);
    let b = callout(&["backfill", "--config", nd_cfg.to_str().unwrap(), "--quiet"]);
    assert!(
        a.status.success() && b.status.success(),
        "{}{}",
        text(&a.stderr),
        text(&b.stderr)
    );
    assert!(text(&a.stdout).lines().count() > 3);
    assert_eq!(text(&a.stdout), text(&b.stdout));
}

// ---- sources: hostile exports and URLs -------------------------------------

/// `backfill` with findings to `f.csv` in `dir`: the process output and the rows.
fn backfill_in(
    dir: &Path,
    sources: &str,
) -> (Output, Vec<std::collections::HashMap<String, String>>) {
    let cfg = config_with(dir, sources);
    let out_path = dir.join("f.csv");
    let out = callout(&[
        "backfill",
        "--config",
        cfg.to_str().unwrap(),
        "--output",
        out_path.to_str().unwrap(),
    ]);
    let rows = if out_path.exists() {
        read_findings(&out_path)
    } else {
        Vec::new()
    };
    (out, rows)
}

/// Lines of the `run --once` table for one series and check.
fn table_has(stdout: &str, metric: &str, region: &str, check: &str) -> bool {
    stdout.lines().any(|l| {
        let cells: Vec<&str> = l.split_whitespace().collect();
        cells.first() == Some(&metric) && cells.get(1) == Some(&region) && cells.contains(&check)
    })
}

#[test]
fn future_dated_row_is_left_out_and_late_still_fires() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = std::fs::read_to_string(fixture("shop_daily.csv")).unwrap();
    data.push_str("2099-01-01,orders,eu,1200\n9999-12-31,revenue,us,5\n");
    let path = dir.path().join("future.csv");
    std::fs::write(&path, data).unwrap();
    let cfg = config_with(dir.path(), &long_source("shop", path.to_str().unwrap()));
    let out = callout(&["run", "--once", "--config", cfg.to_str().unwrap()]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    // the fixture ends in 2024: both series are late despite their far-future rows
    assert!(
        table_has(&stdout, "orders", "eu", "late"),
        "{stdout}\n{stderr}"
    );
    assert!(
        table_has(&stdout, "revenue", "us", "late"),
        "{stdout}\n{stderr}"
    );
    for needle in [
        "source `shop`",
        "series `orders{region=eu}`",
        "first 2099-01-01",
        "series `revenue{region=us}`",
        "9999-12-31",
        "left out",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?} in:\n{stderr}");
    }
    // backfill (no run clock) leaves them out too, and the spike is still found
    let (out, rows) = backfill_in(dir.path(), &long_source("shop", path.to_str().unwrap()));
    assert!(
        text(&out.stderr).contains("first 2099-01-01"),
        "{}",
        text(&out.stderr)
    );
    assert!(has(&rows, "orders", "eu", "2024-05-15", "seasonal"));
    assert!(!rows.iter().any(|r| r["timestamp"].starts_with("2099")));
}

#[test]
fn integer_values_then_decimals_load_as_floats() {
    // 10,200 hourly rows: integers for the first 10,100, then decimals with a spike
    let dir = tempfile::tempdir().unwrap();
    let mut csv_text = String::from("date,metric,region,value\n");
    let start = chrono::NaiveDate::from_ymd_opt(2023, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    for i in 0..10_200i64 {
        let t = start + chrono::Duration::hours(i);
        let base = 100 + (i * 7) % 11;
        let v = if i < 10_100 {
            base.to_string()
        } else if i == 10_150 {
            "900.16".to_string()
        } else {
            format!("{base}.16")
        };
        csv_text.push_str(&format!(
            "{},visits,eu,{v}\n",
            t.format("%Y-%m-%dT%H:%M:%S")
        ));
    }
    let path = dir.path().join("ints_then_floats.csv");
    std::fs::write(&path, &csv_text).unwrap();
    // the same rows as NDJSON, whose schema is also inferred from the first rows
    let nd: String = csv_text
        .lines()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            format!(
                "{{\"date\":\"{}\",\"metric\":\"{}\",\"region\":\"{}\",\"value\":{}}}\n",
                c[0], c[1], c[2], c[3]
            )
        })
        .collect();
    let nd_path = dir.path().join("ints_then_floats.ndjson");
    std::fs::write(&nd_path, nd).unwrap();
    let spike = (start + chrono::Duration::hours(10_150))
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    for p in [&path, &nd_path] {
        let (out, rows) = backfill_in(dir.path(), &long_source("web", p.to_str().unwrap()));
        let stderr = text(&out.stderr);
        assert!(out.status.success(), "{}: {stderr}", p.display());
        assert!(
            rows.iter()
                .any(|r| r["timestamp"].starts_with(&spike) && r["value"] == "900.16"),
            "{}: spike at {spike} in the decimal rows not found: {rows:?}",
            p.display()
        );
    }
}

#[test]
fn duplicates_policy_sums_rows_of_one_period() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = std::fs::read_to_string(fixture("shop_daily.csv")).unwrap();
    let spike: f64 = data
        .lines()
        .find(|l| l.starts_with("2024-05-15,orders,eu,"))
        .and_then(|l| l.rsplit(',').next())
        .unwrap()
        .parse()
        .unwrap();
    // a re-sent part of the batch: a second row for the spike day
    data.push_str("2024-05-15,orders,eu,100\n");
    let path = dir.path().join("dups.csv");
    std::fs::write(&path, &data).unwrap();
    let base = long_source("shop", path.to_str().unwrap());
    let (out, rows) = backfill_in(dir.path(), &format!("{base}duplicates = \"sum\"\n"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let found = rows
        .iter()
        .find(|r| {
            r["metric"] == "orders"
                && r["region"] == "eu"
                && r["timestamp"].starts_with("2024-05-15")
        })
        .expect("the spike day is still evaluated");
    assert_eq!(found["value"].parse::<f64>().unwrap(), spike + 100.0);
    // the default still skips the series and says how to combine the rows
    let (out, rows) = backfill_in(dir.path(), &base);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("series `orders{region=eu}`: duplicate timestamp 2024-05-15"),
        "{stderr}"
    );
    assert!(stderr.contains("`duplicates`"), "{stderr}");
    assert!(
        !rows
            .iter()
            .any(|r| r["metric"] == "orders" && r["region"] == "eu")
    );
    assert!(
        has(&rows, "revenue", "eu", "2024-06-20", "missing"),
        "other series go on"
    );
    // an unknown policy is a config error naming the key
    let cfg = config_with(dir.path(), &format!("{base}duplicates = \"max\"\n"));
    let out = callout(&["check-config", "--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("source[0].duplicates"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn glob_with_a_bad_file_names_it_and_keeps_the_good_one() {
    let dir = tempfile::tempdir().unwrap();
    let (out, rows) = backfill_in(
        dir.path(),
        &long_source("globbed", &fixture("bad/glob/*.csv")),
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for needle in [
        "source `globbed`",
        "b.csv",
        "no column `date`",
        "day, metric, region, value",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?} in:\n{stderr}");
    }
    assert!(!stderr.contains("a.csv"), "{stderr}");
    assert!(
        has(&rows, "orders", "eu", "2024-05-15", "seasonal"),
        "a.csv was lost"
    );
}

#[test]
fn bad_input_mixed_date_formats_blame_the_odd_one() {
    // Polars infers day/month/year from the first row and then blamed `2024-01-02`
    bad_input(
        "bad/mixed_dates.csv",
        &[
            "source `broken`",
            "mixed_dates.csv",
            "column `date`",
            "row 1",
            "\"01/01/2024\"",
        ],
    );
}

#[test]
fn bad_input_broken_ndjson_line_is_numbered() {
    bad_input(
        "bad/broken.ndjson",
        &[
            "source `broken`",
            "broken.ndjson",
            "line 3",
            "one JSON object",
        ],
    );
}

#[test]
fn bad_input_directory_path() {
    bad_input("bad", &["source `broken`", "is a directory; give a file"]);
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = backfill_in(dir.path(), &long_source("broken", &fixture("bad")));
    assert!(
        !text(&out.stderr).contains("PlRefPath"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn wide_text_column_is_named_with_its_row() {
    let dir = tempfile::tempdir().unwrap();
    let sources = format!(
        "[[source]]\nname = \"broken\"\npath = \"{}\"\nlayout = \"wide\"\ndimensions = [\"region\"]\n\n{}",
        fixture("bad/wide_text.csv"),
        long_source("good", &fixture("shop_daily.csv"))
    );
    let (out, rows) = backfill_in(dir.path(), &sources);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for needle in [
        "wide_text.csv",
        "column `note`: row 3: \"price change\" is not a number",
        "`metrics`",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?} in:\n{stderr}");
    }
    assert!(has(&rows, "orders", "eu", "2024-05-15", "seasonal"));
}

/// A one-connection HTTP server on a free port. `respond` gets the accepted
/// stream after the request head was read and writes the answer (or not).
fn http_once(respond: impl FnOnce(&mut std::net::TcpStream) + Send + 'static) -> String {
    use std::io::{BufRead, BufReader};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut rd = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        while rd.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
            line.clear();
        }
        respond(&mut stream);
    });
    format!("http://{addr}/export.csv")
}

fn url_source(name: &str, url: &str, extra: &str) -> String {
    format!(
        "[[source]]\nname = \"{name}\"\nurl = \"{url}\"\ntime_column = \"date\"\ndimensions = [\"region\"]\n{extra}\n"
    )
}

/// Run `backfill` with `TMPDIR` set to `tmp`; `before_answer` runs with the
/// child's pid before the server may answer (it waits on a channel).
fn backfill_url(
    dir: &Path,
    tmp: &Path,
    sources: &str,
) -> (Output, Vec<std::collections::HashMap<String, String>>) {
    let cfg = config_with(dir, sources);
    let out_path = dir.join("f.csv");
    let out = Command::new(env!("CARGO_BIN_EXE_callout"))
        .args([
            "backfill",
            "--config",
            cfg.to_str().unwrap(),
            "--output",
            out_path.to_str().unwrap(),
        ])
        .env_remove("CALLOUT_LOG")
        .env("TMPDIR", tmp)
        .output()
        .unwrap();
    let rows = if out_path.exists() {
        read_findings(&out_path)
    } else {
        Vec::new()
    };
    (out, rows)
}

fn dir_entries(p: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(p)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn url_source_downloads_to_a_private_file_and_removes_it() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "precious\n").unwrap();
    let body = std::fs::read(fixture("shop_daily.csv")).unwrap();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let url = http_once(move |s| {
        // answer only once the test has planted its symlink
        let _ = go_rx.recv();
        write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .unwrap();
        s.write_all(&body).unwrap();
    });
    let cfg = config_with(dir.path(), &url_source("web", &url, ""));
    let out_path = dir.path().join("f.csv");
    let child = Command::new(env!("CARGO_BIN_EXE_callout"))
        .args([
            "backfill",
            "--config",
            cfg.to_str().unwrap(),
            "--output",
            out_path.to_str().unwrap(),
        ])
        .env_remove("CALLOUT_LOG")
        .env("TMPDIR", &tmp)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // the path v0.1 wrote to, predictable from the pid: a symlink to the victim
    let old = tmp.join(format!("callout-{}-web.csv", child.id()));
    std::os::unix::fs::symlink(&victim, &old).unwrap();
    go_tx.send(()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    // nothing left behind but the planted link
    assert_eq!(
        dir_entries(&tmp),
        vec![old.file_name().unwrap().to_string_lossy().into_owned()]
    );
    assert!(has(
        &read_findings(&out_path),
        "orders",
        "eu",
        "2024-05-15",
        "seasonal"
    ));
}

#[test]
fn url_source_larger_than_its_cap_is_refused() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let body = std::fs::read(fixture("shop_daily.csv")).unwrap();
    // no Content-Length: the cap must hold while streaming, not only up front
    let url = http_once(move |s| {
        write!(s, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n").unwrap();
        let _ = s.write_all(&body);
    });
    let sources = format!(
        "{}{}",
        url_source("web", &url, "max_download_bytes = 1000"),
        long_source("good", &fixture("shop_daily.csv"))
    );
    let (out, rows) = backfill_url(dir.path(), &tmp, &sources);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for needle in [
        "source `web`",
        "larger than 1000 bytes",
        "`max_download_bytes`",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?} in:\n{stderr}");
    }
    assert!(dir_entries(&tmp).is_empty(), "{:?}", dir_entries(&tmp));
    assert!(has(&rows, "orders", "eu", "2024-05-15", "seasonal"));
}

#[test]
fn url_source_that_hangs_names_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let (hold_tx, hold_rx) = std::sync::mpsc::channel::<()>();
    // accept and never answer until the test is over
    let url = http_once(move |_| {
        let _ = hold_rx.recv();
    });
    let sources = format!(
        "{}{}",
        url_source("web", &url, "timeout_secs = 1"),
        long_source("good", &fixture("shop_daily.csv"))
    );
    let (out, rows) = backfill_url(dir.path(), &tmp, &sources);
    drop(hold_tx);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for needle in [
        "source `web`",
        "did not deliver the export within 1 s",
        "`timeout_secs`",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?} in:\n{stderr}");
    }
    assert!(dir_entries(&tmp).is_empty(), "{:?}", dir_entries(&tmp));
    assert!(has(&rows, "orders", "eu", "2024-05-15", "seasonal"));
}

/// Run callout, killing it if it has not ended within `limit` (a guard against
/// a mode that would run forever, e.g. a daemon; not a timing assertion).
fn callout_bounded(args: &[&str], limit: std::time::Duration) -> (Output, bool) {
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_callout"))
        .args(args)
        .env_remove("CALLOUT_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run callout");
    let start = std::time::Instant::now();
    let mut killed = false;
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            child.kill().unwrap();
            killed = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    (child.wait_with_output().unwrap(), killed)
}

#[test]
fn run_dry_run_without_once_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_with(
        dir.path(),
        &format!(
            "{}[smtp]\nhost = \"127.0.0.1\"\nport = 9\nsecurity = \"none\"\nfrom = \"callout@example.com\"\n",
            long_source("shop", &fixture("shop_daily.csv"))
        ),
    );
    let eml = dir.path().join("eml");
    let (out, killed) = callout_bounded(
        &[
            "run",
            "--config",
            cfg.to_str().unwrap(),
            "--dry-run",
            eml.to_str().unwrap(),
        ],
        std::time::Duration::from_secs(20),
    );
    assert!(!killed, "the daemon was started for --dry-run");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("`--dry-run` works only with `--once`"),
        "{}",
        text(&out.stderr)
    );
    // nothing ran: no store was created
    assert!(!dir.path().join("state.db").exists());
}

#[test]
fn backfill_from_after_to_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_with(dir.path(), &long_source("shop", &fixture("shop_daily.csv")));
    let out = callout(&[
        "backfill",
        "--config",
        cfg.to_str().unwrap(),
        "--from",
        "2024-05-10",
        "--to",
        "2024-04-01",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("`--from 2024-05-10` is after `--to 2024-04-01`"),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stdout).is_empty(), "nothing should be evaluated");
}

#[test]
fn output_onto_an_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("exports");
    std::fs::create_dir(&data).unwrap();
    let export = data.join("shop.csv");
    std::fs::copy(fixture("shop_daily.csv"), &export).unwrap();
    let before = std::fs::read(&export).unwrap();
    let cfg = config_with(
        dir.path(),
        &long_source("shop", &format!("{}/*.csv", data.display())),
    );
    // the same file spelled differently, the glob's match, and the config itself
    let roundabout = data.join("..").join("exports").join("./shop.csv");
    for (target, needle) in [
        (roundabout.to_str().unwrap(), "an export of source `shop`"),
        (cfg.to_str().unwrap(), "the config file"),
    ] {
        let out = callout(&[
            "backfill",
            "--config",
            cfg.to_str().unwrap(),
            "--output",
            target,
        ]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains(needle) && text(&out.stderr).contains("would overwrite"),
            "{}",
            text(&out.stderr)
        );
    }
    assert_eq!(
        std::fs::read(&export).unwrap(),
        before,
        "the export changed"
    );
    assert!(
        std::fs::read_to_string(&cfg)
            .unwrap()
            .contains("[[source]]"),
        "the config changed"
    );
}

#[test]
fn unknown_output_extension_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_with(dir.path(), &long_source("shop", &fixture("shop_daily.csv")));
    for name in ["f.xlsx", "findings"] {
        let target = dir.path().join(name);
        let out = callout(&[
            "backfill",
            "--config",
            cfg.to_str().unwrap(),
            "--output",
            target.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(
            err.contains(".csv, .jsonl, .ndjson, .json, .parquet"),
            "{err}"
        );
        assert!(!target.exists(), "{name} was written");
    }
}

#[test]
fn output_format_follows_the_extension_in_any_case() {
    use polars::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_with(dir.path(), &long_source("shop", &fixture("shop_daily.csv")));
    let write = |name: &str| {
        let target = dir.path().join(name);
        let out = callout(&[
            "backfill",
            "--config",
            cfg.to_str().unwrap(),
            "--quiet",
            "--output",
            target.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{name}: {}", text(&out.stderr));
        target
    };
    let csv = read_findings(&write("F.CSV"));
    assert!(has(&csv, "orders", "eu", "2024-05-15", "seasonal"));

    let jsonl = std::fs::read_to_string(write("f.JSONL")).unwrap();
    let lines: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), csv.len());

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(write("f.json")).unwrap()).unwrap();
    let array = json.as_array().expect("a JSON array");
    assert_eq!(array.len(), csv.len());
    assert_eq!(array[0], lines[0]);

    let pq = write("f.Parquet");
    let df = ParquetReader::new(std::fs::File::open(&pq).unwrap())
        .finish()
        .unwrap();
    assert_eq!(df.height(), csv.len());
    assert_eq!(df.column("value").unwrap().dtype(), &DataType::Float64);
    let metrics = df.column("metric").unwrap().str().unwrap().clone();
    assert_eq!(metrics.get(0), Some(csv[0]["metric"].as_str()));
}

#[test]
fn check_config_reports_every_type_error_and_real_key_paths() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("types.toml");
    std::fs::write(
        &p,
        format!(
            r#"
[schedule]
run_timeout_secs = "an hour"

[detection]
fdr = "5%"
fdrr = 0.1

[smtp]
host = "localhost"
port = "25"
from = "callout@example.com"
timeout_secs = true

[alerts]
max_attempts_per_run = 3

{}
[[source]]
name = "b"
pth = "b.csv"
path = "{}"
expected_delay_hours = 1e300
timeout_secs = 9223372036854775807
"#,
            long_source("a", &fixture("shop_daily.csv")),
            fixture("shop_daily.csv")
        ),
    )
    .unwrap();
    let out = callout(&["check-config", "--config", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    for needle in [
        "schedule.run_timeout_secs: invalid type",
        "detection.fdr: invalid type",
        "smtp.port: invalid type",
        "smtp.timeout_secs: invalid type",
        "detection.fdrr: unknown key",
        "source[1].pth: unknown key",
        "alerts.max_attempts_per_run: unknown key (removed",
        "source[1].expected_delay_hours: must be >= 0 and <= 1000000, got 1e300",
        "source[1].timeout_secs: must be between 1 and 86400 seconds, got 9223372036854775807",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
    assert!(!err.contains(".?."), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn check_config_warns_about_sources_matching_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_with(
        dir.path(),
        &format!(
            "{}{}",
            long_source("here", &fixture("shop_daily.csv")),
            long_source("gone", &format!("{}/nothing-*.csv", dir.path().display()))
        ),
    );
    let out = callout(&["check-config", "--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("warning: source `gone`: no file matches") && !err.contains("`here`"),
        "{err}"
    );
}

/// A backfill with one broken source (an empty file) and one good one.
fn broken_backfill(extra: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let sources = format!(
        "{}{}",
        long_source("broken", &fixture("bad/empty.csv")),
        long_source("good", &fixture("shop_daily.csv"))
    );
    let cfg = config_with(dir.path(), &sources);
    let out_path = dir.path().join("f.csv");
    let mut args = extra.to_vec();
    args.extend([
        "backfill",
        "--config",
        cfg.to_str().unwrap(),
        "--output",
        out_path.to_str().unwrap(),
    ]);
    callout(&args)
}

#[test]
fn source_errors_are_printed_once_without_colour_codes() {
    let out = broken_backfill(&[]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(!err.contains('\u{1b}'), "ANSI codes in a pipe:\n{err:?}");
    assert_eq!(err.matches("is empty").count(), 1, "{err}");
    assert!(err.contains("1 error(s)"), "{err}");
}

#[test]
fn json_log_format_keeps_stderr_all_json() {
    let out = broken_backfill(&["--log-format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    let events: Vec<serde_json::Value> = err
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let message = |e: &serde_json::Value| e["fields"]["message"].as_str().unwrap_or("").to_string();
    assert!(
        events
            .iter()
            .any(|e| message(e).contains("is empty") && e["level"] == "ERROR")
    );
    assert!(
        events
            .iter()
            .any(|e| message(e).starts_with("backfill:") && e["level"] == "INFO")
    );

    // a usage error too
    let bad = callout(&[
        "--log-format",
        "json",
        "backfill",
        "--from",
        "2024-02-01",
        "--to",
        "2024-01-01",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    let event: serde_json::Value = serde_json::from_str(text(&bad.stderr).trim()).unwrap();
    assert_eq!(event["level"], "ERROR");
}

/// A config that compiles but names columns its local exports lack: each is
/// named, with the columns there, from the header alone (CSV, Parquet); a
/// URL is not fetched.
#[test]
fn check_config_names_a_column_the_export_lacks() {
    use polars::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let pq = dir.path().join("shop.parquet");
    let mut df = df!(
        "date" => ["2024-01-01"],
        "metric" => ["orders"],
        "country" => ["de"],
        "value" => [1.0],
    )
    .unwrap();
    ParquetWriter::new(std::fs::File::create(&pq).unwrap())
        .finish(&mut df)
        .unwrap();
    let csv = fixture("shop_daily.csv");
    let cfg = config_with(
        dir.path(),
        &format!(
            "{}[[source]]\nname = \"csv\"\npath = \"{csv}\"\nvalue_column = \"amount\"\ndimensions = [\"regoin\"]\n\n\
             [[source]]\nname = \"url\"\nurl = \"http://127.0.0.1:1/nothing.csv\"\nvalue_column = \"amount\"\n",
            long_source("pq", pq.to_str().unwrap())
        ),
    );
    let out = callout(&["check-config", "--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    for needle in [
        "3 problem(s) in config",
        &format!(
            "source[0].dimensions[0]: `{}` has no column `region` (configured as dimensions); columns are: date, metric, country, value",
            pq.display()
        ),
        &format!(
            "source[1].value_column: `{csv}` has no column `amount` (configured as value_column); columns are: date, metric, region, value"
        ),
        "source[1].dimensions[0]: ",
        "no column `regoin` (configured as dimensions); columns are: date, metric, region, value; did you mean `region`?",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
    assert!(!err.contains("source[2]"), "{err}");
    assert!(!text(&out.stdout).contains("ok"), "{}", text(&out.stdout));

    // with the columns the exports have, it passes
    let cfg = config_with(
        dir.path(),
        &format!(
            "[[source]]\nname = \"pq\"\npath = \"{}\"\ndimensions = [\"country\"]\n\n{}",
            pq.display(),
            long_source("csv", &csv)
        ),
    );
    let out = callout(&["check-config", "--config", cfg.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// What only a clock or a connection would find otherwise: a cron that
/// never fires, a URL without a host; each one line naming its key.
#[test]
fn check_config_reports_a_cron_that_never_fires_and_a_url_without_a_host() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.toml");
    std::fs::write(
        &p,
        format!(
            "[schedule]\ncron = [\"0 0 0 30 2 *\", \"0 7 * * 1-5\"]\n\n{}[[source]]\nname = \"u\"\nurl = \"http://\"\n\n[owners]\ndefault = \"anna.example.com\"\n\n[detection]\nfdrr = 0.1\n",
            long_source("a", &fixture("shop_daily.csv"))
        ),
    )
    .unwrap();
    let out = callout(&["check-config", "--config", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    for needle in [
        "schedule.cron[0]: `0 0 0 30 2 *` never fires: no time in the 8 years from 2025-01-01 matches it\n",
        "schedule.cron[1]: `0 7 * * 1-5` has 5 fields; callout's cron has 6, seconds first: try `0 0 7 * * 1-5`\n",
        "source[1].url: \"http://\" is not a URL: it names no host",
        "owners.default: `anna.example.com` is not an email address (no @)",
        "detection.fdrr: unknown key; did you mean `fdr`?",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
    // one line per problem: the header and five problems
    assert_eq!(err.lines().count(), 6, "{err}");
}

/// `backfill` and `run --once --dry-run` never send, so they need no
/// `[smtp]` table.
#[test]
fn backfill_and_dry_run_work_without_smtp() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_with(
        dir.path(),
        &format!(
            "{}[owners]\ndefault = \"anna@example.com\"\n",
            long_source("shop", &fixture("shop_daily.csv"))
        ),
    );
    let c = cfg.to_str().unwrap();
    let findings = dir.path().join("f.csv");
    let out = callout(&[
        "backfill",
        "--config",
        c,
        "--output",
        findings.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!read_findings(&findings).is_empty());
    let eml = dir.path().join("eml");
    std::fs::create_dir(&eml).unwrap();
    let out = callout(&[
        "run",
        "--once",
        "--config",
        c,
        "--dry-run",
        eml.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("dry run: ") && !err.contains("smtp"), "{err}");
    let written = dir_entries(&eml);
    assert!(
        written.iter().any(|f| f.ends_with("anna_example.com.eml")),
        "{written:?}\n{err}"
    );
    assert!(
        !dir.path().join("state.db").exists(),
        "a dry run creates no store"
    );
}

/// A config whose `[smtp]` server refuses connections (nothing listens), and
/// the port, which refuses for as long as it is held.
fn config_with_closed_smtp(dir: &Path) -> (PathBuf, common::ClosedPort) {
    let closed = common::ClosedPort::new();
    let cfg = config_with(
        dir,
        &format!(
            "{}[owners]\ndefault = \"anna@example.com\"\n\n[smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\nfrom = \"callout@example.com\"\ntimeout_secs = 5\n",
            long_source("shop", &fixture("shop_daily.csv")),
            closed.port()
        ),
    );
    (cfg, closed)
}

/// The server's words once, not once per wrapping error.
#[test]
fn test_email_says_connection_refused_once() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, _closed) = config_with_closed_smtp(dir.path());
    let out = callout(&[
        "test-email",
        "--config",
        cfg.to_str().unwrap(),
        "--to",
        "ops@example.com",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.starts_with("error: sending to `ops@example.com` via 127.0.0.1:"),
        "{err}"
    );
    assert_eq!(err.matches("Connection refused").count(), 1, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let bad = callout(&[
        "test-email",
        "--config",
        cfg.to_str().unwrap(),
        "--to",
        "ops.example.com",
    ]);
    assert_eq!(
        text(&bad.stderr).trim(),
        "error: --to: `ops.example.com` is not an email address (no @)"
    );
}

/// `run --once` reports a failed send once: one `error:` line naming the
/// recipient, the server and when it is tried again, no log line besides.
#[test]
fn run_once_prints_a_send_failure_once() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, _closed) = config_with_closed_smtp(dir.path());
    let out = callout(&["run", "--once", "--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert_eq!(err.matches("Connection refused").count(), 1, "{err}");
    assert_eq!(err.matches("anna@example.com").count(), 1, "{err}");
    assert!(!err.contains("WARN"), "{err}");
    let line = err.lines().find(|l| l.contains("anna@")).unwrap();
    assert!(
        line.starts_with("error: sending to `anna@example.com` via 127.0.0.1:")
            && line.contains("(attempt 1; tried again from "),
        "{line}"
    );
}

/// A `${VAR}` whose value holds a line break: escaped in a "basic" string
/// (the config compiles, the value kept whole), refused by name in a 'literal' one.
#[test]
fn env_var_with_a_line_break() {
    let dir = tempfile::tempdir().unwrap();
    let check = |review_name: &str| {
        let cfg = config_with(
            dir.path(),
            &format!(
                "[review]\nname = {review_name}\n\n{}",
                long_source("shop", &fixture("shop_daily.csv"))
            ),
        );
        Command::new(env!("CARGO_BIN_EXE_callout"))
            .args(["check-config", "--config", cfg.to_str().unwrap()])
            .env_remove("CALLOUT_LOG")
            .env("CALLOUT_TEST_TWO_LINES", "Weekly\nreview")
            .output()
            .unwrap()
    };
    let out = check("\"${CALLOUT_TEST_TWO_LINES}\"");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = check("'${CALLOUT_TEST_TWO_LINES}'");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("line 5: environment variable `CALLOUT_TEST_TWO_LINES` holds a line break, which a 'literal' string cannot hold"),
        "{err}"
    );
    assert!(!err.contains("TOML parse error"), "{err}");
}

/// `wbr.xlsx` in `dir`: a title row, the header on row 3 (`Day`, `Orders`),
/// 120 days of orders from 2024-01-01 as dates, one day (2024-04-10) four
/// times the rest.
fn daily_workbook(dir: &Path) -> PathBuf {
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("Daily").unwrap();
    sheet.write_string(0, 0, "Orders per day").unwrap();
    sheet.write_string(2, 0, "Day").unwrap();
    sheet.write_string(2, 1, "Orders").unwrap();
    let date = Format::new().set_num_format("yyyy-mm-dd");
    let start = ExcelDateTime::from_ymd(2024, 1, 1).unwrap().to_excel();
    for d in 0..120u32 {
        let row = d + 3;
        let at = ExcelDateTime::from_serial_datetime(start + f64::from(d)).unwrap();
        sheet
            .write_datetime_with_format(row, 0, &at, &date)
            .unwrap();
        let weekly = [0.0, 3.0, 5.0, 4.0, 2.0, -6.0, -8.0][(d % 7) as usize];
        let v = if d == 100 {
            400.0
        } else {
            100.0 + weekly + f64::from(d % 3)
        };
        sheet.write_number(row, 1, v).unwrap();
    }
    let path = dir.join("wbr.xlsx");
    book.save(&path).unwrap();
    path
}

#[test]
fn backfill_reads_a_workbook() {
    let dir = tempfile::tempdir().unwrap();
    let book = daily_workbook(dir.path());
    let source = format!(
        "[[source]]\nname = \"wbr\"\npath = \"{}\"\ntime_column = \"Day\"\nlayout = \"wide\"\n\n",
        book.display()
    );
    let (out, rows) = backfill_in(dir.path(), &source);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        rows.iter()
            .any(|r| r["metric"] == "orders" && r["timestamp"].starts_with("2024-04-10")),
        "{rows:?}"
    );
    // check-config reads the workbook's header: a misspelt column is named
    let cfg = config_with(
        dir.path(),
        &source.replace("time_column = \"Day\"", "time_column = \"Date\""),
    );
    let out = callout(&["check-config", "--config", cfg.to_str().unwrap()]);
    let stderr = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("no column `Date` (configured as time_column); columns are: Day, Orders"),
        "{stderr}"
    );
}

/// A workbook and a Google Sheets "publish to web" CSV link, each from a URL:
/// read like the same file on disk.
#[test]
fn a_workbook_and_a_published_sheet_read_from_urls() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let book = std::fs::read(daily_workbook(dir.path())).unwrap();
    let serve = |body: Vec<u8>, kind: &'static str| {
        http_once(move |s| {
            write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .unwrap();
            s.write_all(&body).unwrap();
        })
    };
    let xlsx_url = serve(
        book,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    .replace("export.csv", "wbr.xlsx");
    let (out, rows) = backfill_in(
        dir.path(),
        &format!(
            "[[source]]\nname = \"book\"\nurl = \"{xlsx_url}\"\ntime_column = \"Day\"\nlayout = \"wide\"\n"
        ),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        rows.iter()
            .any(|r| r["metric"] == "orders" && r["timestamp"].starts_with("2024-04-10")),
        "{rows:?}"
    );
    // a published sheet: its URL ends in `pub?…output=csv`, its dates are the sheet's
    let mut csv = String::from("Day,Region,Orders\n");
    for d in 0..120i64 {
        let day = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap() + chrono::Duration::days(d);
        let v = if d == 100 {
            4000
        } else {
            1000 + (d % 7) * 20 + d % 3
        };
        csv.push_str(&format!(
            "{},eu,\"{}\"\n",
            day.format("%-m/%-d/%Y"),
            group(v)
        ));
    }
    let sheet_url = serve(csv.into_bytes(), "text/csv").replace(
        "export.csv",
        "spreadsheets/d/e/2PACX-1vQ/pub?gid=0&single=true&output=csv",
    );
    let (out, rows) = backfill_in(
        dir.path(),
        &format!(
            "[[source]]\nname = \"sheet\"\nurl = \"{sheet_url}\"\ntime_column = \"Day\"\ntime_format = \"%m/%d/%Y\"\nlayout = \"wide\"\ndimensions = [\"Region\"]\n"
        ),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        rows.iter()
            .any(|r| r["metric"] == "orders" && r["timestamp"].starts_with("2024-04-10")),
        "{rows:?}"
    );
}

/// `1234` as a spreadsheet writes it: `1,234`.
fn group(v: i64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
