//! Incremental runs, black-box: `run --once` resumes each series from the
//! detector state the previous run left in the store, and finds exactly what
//! a full walk finds (the same store without its states: the same periods to
//! report); a restated older value makes that series (only) walk from its
//! first point, and is reported.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    reason = "a failed assumption in a test is a failed test"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{Datelike, Duration, NaiveDate};

use crate::support::common::unit_hash;

const REGIONS: usize = 24;
/// The spiked series and its day.
const SPIKED: usize = 3;

fn day(d: usize) -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 1, 1).unwrap() + Duration::days(d as i64)
}

/// Value of region `r` on day `d`: a weekly shape and 3% noise from a fixed
/// hash of (r, d), so any prefix of the export is the same rows.
fn value(r: usize, d: usize) -> f64 {
    let u = unit_hash((r as u64) << 32 | d as u64) - 0.5;
    let week =
        [1.0, 1.05, 1.1, 1.05, 1.0, 0.8, 0.75][day(d).weekday().num_days_from_monday() as usize];
    (100.0 + 10.0 * r as f64) * week * (1.0 + 0.06 * u)
}

/// The export of days `0..=last`; each `(region, day, factor)` of `spikes`
/// multiplies that region's day.
fn write_export(path: &Path, last: usize, spikes: &[(usize, usize, f64)]) {
    let mut s = String::from("date,metric,region,value\n");
    for d in 0..=last {
        for r in 0..REGIONS {
            let mut v = value(r, d);
            for &(sr, sd, f) in spikes {
                if (sr, sd) == (r, d) {
                    v *= f;
                }
            }
            s.push_str(&format!("{},orders,r{r:02},{v:.4}\n", day(d)));
        }
    }
    std::fs::write(path, s).unwrap();
}

fn config(dir: &Path, store: &str, export: &Path) -> PathBuf {
    let p = dir.join(format!("{store}.toml"));
    std::fs::write(
        &p,
        format!(
            "[store]\npath = \"{store}.db\"\n\n[[source]]\nname = \"shop\"\npath = \"{}\"\ntime_column = \"date\"\ndimensions = [\"region\"]\nexpected_delay_hours = 1000000\n",
            export.display()
        ),
    )
    .unwrap();
    p
}

/// `run --once --at` the morning after day `d`; returns stderr.
fn run_once(cfg: &Path, d: usize) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_callout"))
        .args(["run", "--once", "--config"])
        .arg(cfg)
        .args(["--at", &format!("{} 08:00", day(d + 1))])
        .env_remove("CALLOUT_LOG")
        .output()
        .expect("run callout");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{err}");
    err
}

/// The newest run's findings as stored, every number by its bits.
fn findings(db: &Path) -> Vec<String> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut st = c
        .prepare(
            "SELECT source, series, timestamp, \"check\", value, expected, lower, upper, score,
                    p_value, direction, wow_pct, yoy_pct, history, note
             FROM findings WHERE run_id = (SELECT max(id) FROM runs) ORDER BY id",
        )
        .unwrap();
    let bits = |v: Option<f64>| v.map(f64::to_bits);
    st.query_map([], |r| {
        Ok(format!(
            "{} {} {} {} {:?} {:?} {:?} {:?} {:?} {:?} {} {:?} {:?} {} {:?}",
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, String>(3)?,
            bits(r.get(4)?),
            bits(r.get(5)?),
            bits(r.get(6)?),
            bits(r.get(7)?),
            bits(r.get(8)?),
            bits(r.get(9)?),
            r.get::<_, String>(10)?,
            bits(r.get(11)?),
            bits(r.get(12)?),
            r.get::<_, i64>(13)?,
            r.get::<_, Option<String>>(14)?,
        ))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// `(resumed, walked in full)` from the run's summary line.
fn resumed_walked(stderr: &str) -> (usize, usize) {
    let line = stderr
        .lines()
        .find(|l| l.contains("detector state:"))
        .unwrap_or_else(|| panic!("no detector state line in\n{stderr}"));
    // "detector state: R series resumed, W walked in full (...)"
    let words: Vec<&str> = line
        .split("detector state:")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(words[1..3], ["series", "resumed,"], "{line}");
    (words[0].parse().unwrap(), words[3].parse().unwrap())
}

#[test]
fn a_resumed_run_equals_a_full_run_and_a_restatement_walks_that_series_fully() {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export.csv");
    let d = 420;
    // a spike on day D (flagged, restated later), a spike and a dip on D+1,
    // a spike on D+2: each run has findings to compare
    let spikes = [
        (SPIKED, d, 2.5),
        (7, d + 1, 1.8),
        (11, d + 1, 0.6),
        (15, d + 2, 2.0),
    ];
    let inc = config(dir.path(), "inc", &export);
    let inc_db = dir.path().join("inc.db");

    // day D: every series walks fully; its state is stored
    write_export(&export, d, &spikes);
    let err = run_once(&inc, d);
    assert_eq!(resumed_walked(&err), (0, REGIONS), "{err}");
    let spike_found = findings(&inc_db);
    assert!(
        spike_found
            .iter()
            .any(|f| f.contains("region=r03") && f.contains("seasonal")),
        "the spike of day D was not found: {spike_found:#?}"
    );
    let (rows, bytes) = callout::store::Store::open(&inc_db)
        .unwrap()
        .checkpoint_size()
        .unwrap();
    assert_eq!(rows, REGIONS);
    assert!(bytes > 0);

    // day D+1 appended: every series resumes, and finds what a full run finds
    // (the same store without its detector states: the same periods to report)
    write_export(&export, d + 1, &spikes);
    let fresh = without_states(&inc_db, dir.path(), "fresh1", &export);
    let err = run_once(&inc, d + 1);
    assert_eq!(resumed_walked(&err), (REGIONS, 0), "{err}");
    let resumed = findings(&inc_db);
    let err = run_once(&fresh, d + 1);
    assert_eq!(resumed_walked(&err), (0, REGIONS), "{err}");
    let full = findings(&dir.path().join("fresh1.db"));
    assert!(
        !full.is_empty(),
        "day D+1 should report something to compare"
    );
    assert_eq!(resumed, full);

    // day D restated (the spike, flagged on day D, corrected) and day D+2
    // appended: that series walks fully, the others resume; the restatement
    // is reported; everything else equals a full run
    write_export(&export, d + 2, &spikes[1..]);
    let fresh = without_states(&inc_db, dir.path(), "fresh2", &export);
    let err = run_once(&inc, d + 2);
    assert_eq!(resumed_walked(&err), (REGIONS - 1, 1), "{err}");
    let resumed = findings(&inc_db);
    assert!(
        resumed
            .iter()
            .any(|f| f.contains("region=r03") && f.contains(" restated ")),
        "no restated finding: {resumed:#?}"
    );
    let err = run_once(&fresh, d + 2);
    assert_eq!(resumed_walked(&err), (0, REGIONS), "{err}");
    let full = findings(&dir.path().join("fresh2.db"));
    assert!(
        full.iter().any(|f| f.contains("region=r15")),
        "day D+2's spike: {full:#?}"
    );
    assert_eq!(resumed, full);
}

#[test]
fn a_run_stopped_after_saving_its_states_resumes_and_loses_nothing() {
    // States are saved as each chunk is detected, before the run records its
    // findings; a run killed in between leaves new states and old reported
    // periods. A state is the one before the first reported point, so the
    // next run resumes from it and reports every period the killed one had
    // not, as the complete run did.
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export.csv");
    let d = 420;
    let spikes = [(SPIKED, d + 1, 2.5), (7, d + 1, 0.5)];
    let whole = config(dir.path(), "whole", &export);
    write_export(&export, d, &spikes);
    run_once(&whole, d);
    // the store as day D+1's run found it
    let before = dir.path().join("before.db");
    let c = rusqlite::Connection::open(dir.path().join("whole.db")).unwrap();
    c.execute("VACUUM INTO ?1", [before.to_str().unwrap()])
        .unwrap();
    drop(c);
    // day D+1, run to the end
    write_export(&export, d + 1, &spikes);
    run_once(&whole, d + 1);
    let complete = findings(&dir.path().join("whole.db"));
    assert!(
        complete.iter().any(|f| f.contains("region=r03")),
        "{complete:#?}"
    );
    // day D+1 killed after its states were saved: the states, nothing else
    let killed = dir.path().join("killed.db");
    std::fs::copy(&before, &killed).unwrap();
    let c = rusqlite::Connection::open(&killed).unwrap();
    c.execute(
        "ATTACH ?1 AS done",
        [dir.path().join("whole.db").to_str().unwrap()],
    )
    .unwrap();
    c.execute("DELETE FROM checkpoints", []).unwrap();
    c.execute("INSERT INTO checkpoints SELECT * FROM done.checkpoints", [])
        .unwrap();
    drop(c);
    let again = config(dir.path(), "killed", &export);
    let err = run_once(&again, d + 1);
    assert_eq!(resumed_walked(&err), (REGIONS, 0), "{err}");
    assert_eq!(findings(&killed), complete);
    // and the run after that resumes again
    write_export(&export, d + 2, &spikes);
    let err = run_once(&again, d + 2);
    assert_eq!(resumed_walked(&err), (REGIONS, 0), "{err}");
}

/// A copy of store `db` as `<name>.db` without its detector states, and a
/// config for it: the same history, reported periods and flagged values, so
/// its next run reports the same periods, walking every series in full.
fn without_states(db: &Path, dir: &Path, name: &str, export: &Path) -> PathBuf {
    let copy = dir.join(format!("{name}.db"));
    let c = rusqlite::Connection::open(db).unwrap();
    c.execute("VACUUM INTO ?1", [copy.to_str().unwrap()])
        .unwrap();
    drop(c);
    let c = rusqlite::Connection::open(&copy).unwrap();
    assert!(c.execute("DELETE FROM checkpoints", []).unwrap() > 0);
    config(dir, name, export)
}
