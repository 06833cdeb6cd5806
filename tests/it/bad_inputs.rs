//! Bad exports a real team sends (issue 21, item 14), each beside a good
//! source: the message names the file, the line (header = line 1) or row,
//! the column and the value, and the good source still loads. Files are
//! written by the tests; the `callout` binary reads them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a failed assumption in a test is a failed test"
)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chrono::{Duration, NaiveDate, TimeZone};

use crate::support::common;
use common::{root, text};

fn fixture(name: &str) -> String {
    root().join("fixtures").join(name).display().to_string()
}

/// A config in `dir` with the given `[[source]]` tables and the good source
/// `good` (the shop fixture).
fn config_with(dir: &Path, sources: &str) -> PathBuf {
    let p = dir.join("callout.toml");
    let good = long_source("good", &fixture("shop_daily.csv"), "");
    std::fs::write(
        &p,
        format!("[store]\npath = \"state.db\"\n\n{sources}{good}"),
    )
    .unwrap();
    p
}

fn long_source(name: &str, path: &str, extra: &str) -> String {
    format!(
        "[[source]]\nname = \"{name}\"\npath = \"{path}\"\ntime_column = \"date\"\ndimensions = [\"region\"]\n{extra}\n\n"
    )
}

fn callout(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_callout"))
        .args(args)
        .env_remove("CALLOUT_LOG")
        .output()
        .expect("run callout")
}

/// `check-sources` of the config: exit code, stdout (a line per source), stderr.
fn check_sources(cfg: &Path) -> (Option<i32>, String, String) {
    let out = callout(&["check-sources", "--config", cfg.to_str().unwrap()]);
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

/// The line `check-sources` printed for source `name`.
fn line_of<'a>(stdout: &'a str, name: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.contains(&format!("source `{name}`")))
        .unwrap_or_else(|| panic!("no line for `{name}` in:\n{stdout}"))
}

fn assert_has(haystack: &str, needles: &[&str]) {
    for n in needles {
        assert!(haystack.contains(n), "missing {n:?} in:\n{haystack}");
    }
}

/// The good source is read in full whatever its neighbours hold.
fn assert_good_loaded(stdout: &str) {
    assert!(
        line_of(stdout, "good").starts_with("source `good`: ok, 4 series"),
        "{stdout}"
    );
}

/// `date,metric,region,value` rows of one series `orders{region=eu}`, one
/// per `stamp(i)`, `i` in `0..n`.
fn series_csv(n: usize, stamp: impl Fn(usize) -> String) -> String {
    let mut s = String::from("date,metric,region,value\n");
    for i in 0..n {
        s.push_str(&format!("{},orders,eu,{}\n", stamp(i), 100 + i % 7));
    }
    s
}

fn day(i: usize) -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 3, 1).unwrap() + Duration::days(i64::try_from(i).unwrap())
}

#[test]
fn mixed_utc_offsets_are_named_and_one_zones_dst_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).display().to_string();
    // hourly wall-clock times with offsets that alternate row by row: the
    // same instant twice, then a two-hour gap
    let alternating = series_csv(48, |i| {
        let off = if i % 2 == 0 { "+01:00" } else { "+02:00" };
        format!("2025-03-01T{:02}:00:00{off}", i % 24)
            .replace("2025-03-01", &day(i / 24).to_string())
    });
    std::fs::write(p("alternating.csv"), alternating).unwrap();
    // daily: UTC for 30 days, then India's offset
    let z_then_india = series_csv(60, |i| {
        let off = if i < 30 { "Z" } else { "+05:30" };
        format!("{}T00:00:00{off}", day(i))
    });
    std::fs::write(p("z_india.csv"), z_then_india).unwrap();
    // hourly across Berlin's spring switch, each row at Berlin's offset of the time
    let berlin = chrono_tz::Europe::Berlin;
    let start = chrono::Utc.with_ymd_and_hms(2025, 3, 28, 0, 0, 0).unwrap();
    let dst = series_csv(24 * 5, |i| {
        let t = start + Duration::hours(i64::try_from(i).unwrap());
        t.with_timezone(&berlin).to_rfc3339()
    });
    assert!(dst.contains("+01:00") && dst.contains("+02:00"));
    std::fs::write(p("dst.csv"), &dst).unwrap();
    let cfg = config_with(
        dir.path(),
        &format!(
            "{}{}{}{}",
            long_source("alternating", &p("alternating.csv"), ""),
            long_source("z_india", &p("z_india.csv"), ""),
            long_source("dst", &p("dst.csv"), ""),
            long_source("dst_berlin", &p("dst.csv"), "timezone = \"Europe/Berlin\""),
        ),
    );
    let (code, stdout, _) = check_sources(&cfg);
    assert_eq!(code, Some(1), "{stdout}");
    assert_has(
        line_of(&stdout, "alternating"),
        &[
            "FAILED",
            "alternating.csv",
            "column `date`",
            "+01:00",
            "+02:00",
            "line 3",
            "timezone",
        ],
    );
    assert_has(
        line_of(&stdout, "z_india"),
        &["FAILED", "z_india.csv", "+00:00", "+05:30", "line 32"],
    );
    for name in ["alternating", "z_india"] {
        let l = line_of(&stdout, name);
        assert!(
            !l.contains("granularity") && !l.contains("duplicate"),
            "{l}"
        );
    }
    // one zone's daylight-saving switch is no mix: every hour is read
    for name in ["dst", "dst_berlin"] {
        assert!(
            line_of(&stdout, name).contains(": ok, 1 series, 120 rows")
                && !line_of(&stdout, name).contains("problem"),
            "{stdout}"
        );
    }
    assert_good_loaded(&stdout);
}

#[test]
fn a_latin1_file_names_the_line_and_the_byte() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = b"date,metric,region,value\n".to_vec();
    for i in 0..30 {
        // a quoted region over two lines (row 3) moves every later line down one
        let region: &[u8] = match i {
            3 => b"\"north\nwest\"",
            20 => b"Z\xfcrich",
            _ => b"eu",
        };
        bytes.extend_from_slice(format!("{},orders,", day(i)).as_bytes());
        bytes.extend_from_slice(region);
        bytes.extend_from_slice(format!(",{}\n", 100 + i).as_bytes());
    }
    let path = dir.path().join("latin1.csv");
    std::fs::write(&path, bytes).unwrap();
    // and NDJSON, its fourth line
    let mut ndjson = Vec::new();
    for i in 0..10 {
        let region: &[u8] = if i == 3 { b"Z\xfcrich" } else { b"eu" };
        ndjson.extend_from_slice(
            format!(
                "{{\"date\":\"{}\",\"metric\":\"orders\",\"region\":\"",
                day(i)
            )
            .as_bytes(),
        );
        ndjson.extend_from_slice(region);
        ndjson.extend_from_slice(format!("\",\"value\":{i}}}\n").as_bytes());
    }
    let json_path = dir.path().join("latin1.ndjson");
    std::fs::write(&json_path, ndjson).unwrap();
    let cfg = config_with(
        dir.path(),
        &format!(
            "{}{}",
            long_source("latin1", path.to_str().unwrap(), ""),
            long_source("json", json_path.to_str().unwrap(), "")
        ),
    );
    let (code, stdout, _) = check_sources(&cfg);
    assert_eq!(code, Some(1), "{stdout}");
    assert_has(
        line_of(&stdout, "latin1"),
        &[
            "FAILED",
            "latin1.csv",
            "line 23",
            "column `region`",
            "0xFC",
            "ü",
            "UTF-8",
        ],
    );
    assert_has(
        line_of(&stdout, "json"),
        &[
            "FAILED",
            "latin1.ndjson",
            "line 4",
            "0xFC",
            "Zürich",
            "UTF-8",
        ],
    );
    assert_good_loaded(&stdout);
}

#[test]
fn ragged_rows_name_the_line_and_the_field_counts() {
    let dir = tempfile::tempdir().unwrap();
    let long = series_csv(30, |i| day(i).to_string()).replacen(
        &format!("{},orders,eu,{}", day(12), 100 + 12 % 7),
        &format!("{},orders,eu,{},9", day(12), 100 + 12 % 7),
        1,
    );
    let short = series_csv(30, |i| day(i).to_string()).replacen(
        &format!("{},orders,eu,{}", day(12), 100 + 12 % 7),
        &format!("{},orders,eu", day(12)),
        1,
    );
    std::fs::write(dir.path().join("long.csv"), long).unwrap();
    std::fs::write(dir.path().join("short.csv"), short).unwrap();
    let p = |n: &str| dir.path().join(n).display().to_string();
    let cfg = config_with(
        dir.path(),
        &format!(
            "{}{}",
            long_source("long", &p("long.csv"), ""),
            long_source("short", &p("short.csv"), "")
        ),
    );
    let (code, stdout, _) = check_sources(&cfg);
    assert_eq!(code, Some(1), "{stdout}");
    assert_has(
        line_of(&stdout, "long"),
        &["FAILED", "long.csv", "line 14", "5 fields", "header", "4"],
    );
    assert_has(
        line_of(&stdout, "short"),
        &["FAILED", "short.csv", "line 14", "3 fields", "header", "4"],
    );
    assert_good_loaded(&stdout);
}

/// A Parquet file of one series `metric{region=eu}`, 40 days from
/// 2025-03-01, its time column `date` of type `dtype` holding the numbers `raw`.
fn write_parquet(path: &Path, metric: &str, raw: Vec<i64>, dtype: &polars::prelude::DataType) {
    use polars::prelude::*;
    let n = raw.len();
    let values: Vec<f64> = (0..n).map(|i| 100.0 + (i % 7) as f64).collect();
    let mut df = df!(
        "date" => raw,
        "metric" => vec![metric; n],
        "region" => vec!["eu"; n],
        "value" => values,
    )
    .unwrap();
    let date = df.column("date").unwrap().cast(dtype).unwrap();
    df.with_column(date).unwrap();
    ParquetWriter::new(std::fs::File::create(path).unwrap())
        .finish(&mut df)
        .unwrap();
}

#[test]
fn parquet_with_garbage_timestamps_is_refused_with_dates_shown() {
    use polars::prelude::{DataType, TimeUnit};
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).display().to_string();
    let day_ms = 86_400_000_i64;
    let first = 1_740_787_200_000_i64; // 2025-03-01 in ms
    let ms: Vec<i64> = (0..40).map(|i| first + i * day_ms).collect();
    // rows 6 and 7 hold microseconds in a millisecond column
    let mut mixed_units = ms.clone();
    mixed_units[5] *= 1000;
    mixed_units[6] *= 1000;
    write_parquet(
        Path::new(&p("units.parquet")),
        "units",
        mixed_units,
        &DataType::Datetime(TimeUnit::Milliseconds, None),
    );
    // seconds written into a nanosecond column: every row on 1970-01-01
    write_parquet(
        Path::new(&p("seconds.parquet")),
        "seconds",
        ms.iter().map(|t| t / 1000).collect(),
        &DataType::Datetime(TimeUnit::Nanoseconds, None),
    );
    // days since 1970 far past any plausible date in a date column
    let mut days: Vec<i64> = (0..40).map(|i| 20_148 + i).collect();
    days[3] = 10_000_000;
    write_parquet(Path::new(&p("days.parquet")), "days", days, &DataType::Date);
    let sources: String = ["units", "seconds", "days"]
        .iter()
        .map(|n| long_source(n, &p(&format!("{n}.parquet")), ""))
        .collect();
    let cfg = config_with(dir.path(), &sources);
    let out_path = dir.path().join("f.csv");
    let out = callout(&[
        "backfill",
        "--config",
        cfg.to_str().unwrap(),
        "--output",
        out_path.to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_has(
        &stderr,
        &[
            "source `units`: `",
            "units.parquet",
            "column `date`",
            "row 6",
            "+57147-",
            "microseconds",
            "2025-03-06",
        ],
    );
    assert_has(
        &stderr,
        &["seconds.parquet", "1970-01-01", "as seconds", "2025-03-01"],
    );
    assert_has(&stderr, &["days.parquet", "row 4", "+29349-01-26"]);
    // no raw integers for dates, and no findings from the garbage rows
    assert!(!stderr.contains("1740787200000000"), "{stderr}");
    let findings = std::fs::read_to_string(&out_path).unwrap();
    for metric in ["units", "seconds", "days"] {
        assert!(
            !findings
                .lines()
                .any(|l| l.starts_with(&format!("{metric},"))),
            "{findings}"
        );
    }
    assert!(
        findings
            .lines()
            .any(|l| l.starts_with("orders,eu,2024-05-15"))
    );
}

#[test]
fn placeholder_dates_are_reported_and_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = series_csv(60, |i| day(i).to_string());
    text.insert_str(
        "date,metric,region,value\n".len(),
        "1900-01-01,orders,eu,5\n1970-01-01,orders,us,7\n",
    );
    for i in 0..60 {
        text.push_str(&format!("{},orders,us,{}\n", day(i), 50 + i % 5));
    }
    text.push_str("1899-12-30,orders,apac,1\n2025-03-01,orders,apac,3\n");
    let path = dir.path().join("sentinel.csv");
    std::fs::write(&path, text).unwrap();
    let cfg = config_with(
        dir.path(),
        &long_source("sentinel", path.to_str().unwrap(), ""),
    );
    let (code, stdout, _) = check_sources(&cfg);
    // a warning: the rest of each series is used
    assert_eq!(code, Some(0), "{stdout}");
    let line = line_of(&stdout, "sentinel");
    assert_has(
        line,
        &[
            "ok, 3 series, 121 rows",
            "series `orders{region=eu}`",
            "1900-01-01",
            "series `orders{region=us}`",
            "1970-01-01",
            "series `orders{region=apac}`",
            "1899-12-30",
            "placeholder",
            "left out",
        ],
    );
    assert_good_loaded(&stdout);
}

#[test]
fn a_repeated_header_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("date,metric,region,value,value\n");
    for i in 0..30 {
        text.push_str(&format!("{},orders,eu,{},3\n", day(i), 100 + i % 7));
    }
    let path = dir.path().join("twice.csv");
    std::fs::write(&path, &text).unwrap();
    let cfg = config_with(
        dir.path(),
        &long_source("twice", path.to_str().unwrap(), ""),
    );
    let (code, stdout, _) = check_sources(&cfg);
    assert_eq!(code, Some(1), "{stdout}");
    assert_has(
        line_of(&stdout, "twice"),
        &["FAILED", "twice.csv", "column `value`", "more than once"],
    );
    assert_good_loaded(&stdout);
}

#[test]
fn an_empty_wide_column_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("date,region,orders,refunds\n");
    for i in 0..30 {
        text.push_str(&format!("{},eu,{},\n", day(i), 100 + i % 7));
    }
    let path = dir.path().join("wide.csv");
    std::fs::write(&path, text).unwrap();
    let cfg = config_with(
        dir.path(),
        &format!(
            "[[source]]\nname = \"wide\"\npath = \"{}\"\nlayout = \"wide\"\ndimensions = [\"region\"]\n\n",
            path.display()
        ),
    );
    let (code, stdout, _) = check_sources(&cfg);
    assert_eq!(code, Some(0), "{stdout}");
    assert_has(
        line_of(&stdout, "wide"),
        &[
            "ok, 1 series, 30 rows",
            "wide.csv",
            "column `refunds` has no values; no series",
        ],
    );
    assert_good_loaded(&stdout);
}

/// A server on a free port that answers each of `answers` connections in
/// plain HTTP's way to a TLS hello: `reply` (if any), then close.
fn plain_http_port(replies: Vec<Option<&'static [u8]>>) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for reply in replies {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            if let Some(r) = reply {
                let _ = s.write_all(r);
            }
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    });
    port
}

#[test]
fn https_to_a_plain_http_port_says_the_server_does_not_speak_tls() {
    let dir = tempfile::tempdir().unwrap();
    // one answers "400 Bad Request" to the hello, the other just hangs up
    let answering = plain_http_port(vec![Some(
        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )]);
    let silent = plain_http_port(vec![None]);
    let url = |port: u16| format!("https://127.0.0.1:{port}/export.csv");
    let source = |name: &str, port: u16| {
        format!(
            "[[source]]\nname = \"{name}\"\nurl = \"{}\"\ntime_column = \"date\"\ndimensions = [\"region\"]\ntimeout_secs = 10\n\n",
            url(port)
        )
    };
    let cfg = config_with(
        dir.path(),
        &format!(
            "{}{}",
            source("answering", answering),
            source("silent", silent)
        ),
    );
    let (code, stdout, _) = check_sources(&cfg);
    assert_eq!(code, Some(1), "{stdout}");
    for (name, port) in [("answering", answering), ("silent", silent)] {
        assert_has(
            line_of(&stdout, name),
            &[
                "FAILED",
                &url(port),
                "does not speak TLS",
                &format!("http://127.0.0.1:{port}/export.csv"),
            ],
        );
    }
    assert_good_loaded(&stdout);
}

#[test]
fn sigterm_mid_download_leaves_no_temp_file() {
    // headers and the first part of a large body, then a byte now and then
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        for _ in 0..2 {
            let Ok((mut s, _)) = listener.accept() else {
                return;
            };
            let started = started_tx.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let head = "HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n";
                let mut body = String::from("date,metric,region,value\n");
                while body.len() < 1 << 16 {
                    body.push_str("2025-03-01,orders,eu,1\n");
                }
                if s.write_all(head.as_bytes()).is_err() || s.write_all(body.as_bytes()).is_err() {
                    return;
                }
                let _ = started.send(());
                while s.write_all(b"2").is_ok() {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
            });
        }
    });
    let url = format!("http://127.0.0.1:{port}/export.csv");
    for command in ["check-sources", "backfill"] {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).unwrap();
        let cfg = dir.path().join("callout.toml");
        std::fs::write(
            &cfg,
            format!(
                "[store]\npath = \"state.db\"\n\n[[source]]\nname = \"web\"\nurl = \"{url}\"\ntime_column = \"date\"\ndimensions = [\"region\"]\n"
            ),
        )
        .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_callout"))
            .args([command, "--config", cfg.to_str().unwrap()])
            .env_remove("CALLOUT_LOG")
            .env("TMPDIR", &tmp)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        started_rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .unwrap();
        // the first 64 KiB are on their way; the download is under way
        std::thread::sleep(std::time::Duration::from_millis(500));
        assert!(child.try_wait().unwrap().is_none(), "{command} ended early");
        let killed = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = child.wait().unwrap();
        assert!(!status.success(), "{command}: {status:?}");
        let left: Vec<String> = std::fs::read_dir(&tmp)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(left.is_empty(), "{command} left {left:?} in its TMPDIR");
    }
}
