//! What the benchmark measures is what owners get: the incidents of one
//! `backfill --store` over a history equal, one for one, the incidents of the
//! same history replayed as the daemon lives it, one `run --once --at` a day
//! on the export as it stood that morning (resuming each series from the
//! state the previous run stored).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    reason = "a failed assumption in a test is a failed test"
)]

use std::path::{Path, PathBuf};

use chrono::{Duration, NaiveDate, NaiveDateTime};

use crate::support::common::{callout_ok, unit_hash};

const DAYS: i64 = 18;
const HOSTS: [&str; 4] = ["a", "b", "c", "d"];

fn start() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2025, 3, 3)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
}

/// A fixed hash of (host, hour) in [0, 1): any prefix of the export is the
/// same rows.
fn unit(h: usize, k: i64, salt: u64) -> f64 {
    unit_hash((h as u64) << 40 ^ (k as u64) << 8 ^ salt)
}

/// Hour `k`'s row of host `h`, if the export has one: a daily cycle with 4%
/// noise; host a spikes threefold once, host b doubles for twelve hours,
/// host c is a small count with a deep nightly trough, host d's rows come
/// irregularly and stop for ten hours once.
fn row(h: usize, k: i64) -> Option<f64> {
    let hour = (k % 24) as f64;
    let cycle = 0.5 - 0.5 * (std::f64::consts::PI * (hour - 3.0) / 12.0).cos();
    let noise = 1.0 + 0.08 * (unit(h, k, 1) - 0.5);
    match h {
        0 => Some((100.0 + 200.0 * cycle) * noise * if k == 9 * 24 + 14 { 3.0 } else { 1.0 }),
        1 => {
            let doubled = (12 * 24 + 8..12 * 24 + 20).contains(&k);
            Some((100.0 + 200.0 * cycle) * noise * if doubled { 2.0 } else { 1.0 })
        }
        2 => Some(((2.0 + 38.0 * cycle) * (1.0 + 0.6 * (unit(h, k, 2) - 0.5))).round()),
        _ => {
            let hole = (15 * 24 + 6..15 * 24 + 16).contains(&k);
            (!hole && unit(h, k, 3) >= 0.06).then_some((100.0 + 200.0 * cycle) * noise)
        }
    }
}

/// The export as it stood with the hours before `hours`.
fn write_export(path: &Path, hours: i64) {
    let mut s = String::from("timestamp,metric,host,value\n");
    for k in 0..hours {
        for (h, host) in HOSTS.iter().enumerate() {
            if let Some(v) = row(h, k) {
                let t = start() + Duration::hours(k);
                s.push_str(&format!(
                    "{},visits,{host},{v:.3}\n",
                    t.format("%Y-%m-%d %H:%M:%S")
                ));
            }
        }
    }
    std::fs::write(path, s).unwrap();
}

fn config(dir: &Path, store: &str, export: &Path) -> PathBuf {
    let p = dir.join(format!("{store}.toml"));
    std::fs::write(
        &p,
        format!(
            "[store]\npath = \"{store}.db\"\n\n[[source]]\nname = \"web\"\npath = \"{}\"\n\
             time_column = \"timestamp\"\ndimensions = [\"host\"]\nexpected_delay_hours = 1000000\n",
            export.display()
        ),
    )
    .unwrap();
    p
}

/// Every incident: its series, lane, span and worst check.
fn incidents(db: &Path) -> Vec<String> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut st = c
        .prepare(
            "SELECT series, lane, opened_at_ts, last_finding_ts, closed_at_ts, worst_check
             FROM incidents ORDER BY series, lane, opened_at_ts",
        )
        .unwrap();
    st.query_map([], |r| {
        Ok(format!(
            "{} {} {} {} {:?} {}",
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, Option<i64>>(4)?,
            r.get::<_, String>(5)?,
        ))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

#[test]
fn backfill_incidents_equal_the_daily_runs_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("visits.csv");

    // the daemon's life: each morning, the export with yesterday's hours
    let daily = config(dir.path(), "daily", &export);
    for d in 1..=DAYS {
        write_export(&export, d * 24);
        let at = (start() + Duration::days(d) + Duration::hours(8))
            .format("%Y-%m-%d %H:%M")
            .to_string();
        callout_ok(&[
            "run",
            "--once",
            "--config",
            daily.to_str().unwrap(),
            "--at",
            &at,
        ]);
    }
    let replayed = incidents(&dir.path().join("daily.db"));

    // the same history in one backfill
    let once = config(dir.path(), "once", &export);
    callout_ok(&[
        "backfill",
        "--quiet",
        "--store",
        "--config",
        once.to_str().unwrap(),
        "--output",
        dir.path().join("findings.csv").to_str().unwrap(),
    ]);
    let backfilled = incidents(&dir.path().join("once.db"));

    // the planted episodes are there, each once: host a's spike, host b's
    // twelve hours at double, host d's ten-hour hole
    for (host, check) in [("a", "seasonal"), ("b", "level_shift"), ("d", "missing")] {
        let n = backfilled
            .iter()
            .filter(|i| i.contains(&format!("host={host}")) && i.ends_with(check))
            .count();
        assert_eq!(n, 1, "host {host}: {backfilled:#?}");
    }
    assert_eq!(replayed, backfilled);
}
