//! Owners' explanations feed detection end to end: the binary backfills a
//! series into a real SQLite store, an owner's `known event` answer is stored
//! through the store's API (as the web form does), and the next backfill judges
//! the days after the event against a baseline that leaves the event out.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    reason = "a failed assumption in a test is a failed test"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use callout::model::Cause;
use callout::store::Store;
use callout::store::explanations::NewExplanation;
use chrono::{Duration, NaiveDate};

/// The level of the series outside the event.
const BASE: f64 = 1000.0;
/// Days of the promotion (+40 %) and where it starts.
const EVENT_DAYS: i64 = 6;
const EVENT_START: i64 = 430;
const DAYS: i64 = 460;

fn day(i: i64) -> NaiveDate {
    NaiveDate::from_ymd_opt(2023, 1, 2).unwrap() + Duration::days(i)
}

/// A flat daily series with 3 % noise (a fixed-seed LCG, so the data never
/// changes) and a six-day promotion at +40 %.
fn write_series(path: &Path) {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut uniform = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 11) as f64) / ((1u64 << 53) as f64)
    };
    let mut csv = String::from("date,metric,value\n");
    for i in 0..DAYS {
        // sum of uniforms: near-normal noise, sd ≈ 3 %
        let z: f64 = (0..12).map(|_| uniform()).sum::<f64>() - 6.0;
        let mut v = BASE * (1.0 + 0.03 * z);
        if (EVENT_START..EVENT_START + EVENT_DAYS).contains(&i) {
            v *= 1.4;
        }
        csv.push_str(&format!("{},signups,{v:.1}\n", day(i)));
    }
    std::fs::write(path, csv).unwrap();
}

fn write_config(dir: &Path) -> PathBuf {
    let cfg = dir.join("callout.toml");
    std::fs::write(
        &cfg,
        r#"
[store]
path = "state.db"

[review]
weekday = "wed"
time = "10:00"
timezone = "UTC"

[detection]
calendar = "none"

[[source]]
name = "app"
path = "series.csv"
time_column = "date"
metric_column = "metric"
value_column = "value"
granularity = "day"

[owners]
default = "Ana <ana@example.com>"
"#,
    )
    .unwrap();
    cfg
}

/// `(date, check, expected)` of every finding from the findings CSV.
fn backfill(cfg: &Path, out: &Path, store: bool) -> Vec<(String, String, f64)> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_callout"));
    cmd.args(["backfill", "--quiet", "--config"])
        .arg(cfg)
        .arg("--output")
        .arg(out);
    if store {
        cmd.arg("--store");
    }
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "backfill failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut r = csv::Reader::from_path(out).unwrap();
    let h = r.headers().unwrap().clone();
    let col = |name: &str| h.iter().position(|c| c == name).unwrap();
    let (ts, check, expected) = (col("timestamp"), col("check"), col("expected"));
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            (
                rec[ts][..10].to_string(),
                rec[check].to_string(),
                rec[expected].parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_stored_known_event_keeps_the_event_out_of_the_baseline() {
    let dir = tempfile::tempdir().unwrap();
    write_series(&dir.path().join("series.csv"));
    let cfg = write_config(dir.path());
    let after_event = day(EVENT_START + EVENT_DAYS).to_string();
    let event_start = day(EVENT_START).to_string();

    // 1. without an explanation (the store records the incidents)
    let before = backfill(&cfg, &dir.path().join("before.csv"), true);
    let moved = |fs: &[(String, String, f64)]| {
        fs.iter()
            .filter(|(d, _, e)| *d >= event_start && (*e - BASE).abs() > 0.15 * BASE)
            .count()
    };
    assert!(
        moved(&before) > 0,
        "without an explanation the event should drag the baseline: {before:?}"
    );
    assert!(
        before.iter().any(|(d, _, _)| *d >= after_event),
        "without an explanation the return to normal is flagged: {before:?}"
    );

    // 2. the owner explains the event's incident as a known event
    let store = Store::open(&dir.path().join("state.db")).unwrap();
    let incident = store
        .incidents()
        .unwrap()
        .into_iter()
        .find(|i| i.opened_at_ts >= callout::model::date_ms(day(EVENT_START)))
        .expect("the event opened an incident");
    store
        .add_explanation(&NewExplanation {
            incident_id: incident.id,
            cause: Cause::KnownEvent,
            persistence: None,
            text: "Spring promotion, six days".into(),
            author: "ana@example.com".into(),
            link_hash: "test".into(),
            created_at: 0,
        })
        .unwrap();
    drop(store);

    // 3. the same backfill with it: the event never feeds the baseline
    let after = backfill(&cfg, &dir.path().join("after.csv"), false);
    assert_eq!(
        moved(&after),
        0,
        "with the explanation every expected value stays at the true level: {after:?}"
    );
    assert!(
        !after.iter().any(|(d, _, _)| *d >= after_event),
        "with the explanation the return to normal is not an outlier: {after:?}"
    );
    // the event itself is still visible (it was explained, not erased)
    assert!(
        after
            .iter()
            .any(|(d, _, _)| *d >= event_start && *d < after_event),
        "{after:?}"
    );
    // nothing before the event changes
    let early = |fs: &[(String, String, f64)]| -> Vec<(String, String, f64)> {
        fs.iter().filter(|f| f.0 < event_start).cloned().collect()
    };
    assert_eq!(early(&before), early(&after));
}
