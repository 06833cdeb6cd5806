//! Exports as analysts keep them (issue 22): spreadsheet dates and numbers,
//! header units, month names, week-ending rows, and the errors a bad cell
//! gets. Each file is written here, read by the real binary, and a planted
//! outlier must be found on the date the export gives it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    reason = "a failed assumption in a test or bench is a failed test"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chrono::{Duration, NaiveDate};

fn callout(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_callout"))
        .args(args)
        .env_remove("CALLOUT_LOG")
        .output()
        .expect("run callout")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A small deterministic generator (no dependency for a few numbers).
struct Noise(u64);

impl Noise {
    /// Uniform in [-1, 1).
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        #[allow(clippy::cast_precision_loss)]
        let u = (self.0 >> 11) as f64 / (1u64 << 53) as f64;
        u * 2.0 - 1.0
    }
}

/// Days of history and the day (index) of the planted outlier.
const DAYS: i64 = 150;
const SPIKE: i64 = 140;

fn start() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 1, 6).unwrap()
}

/// Daily revenue, orders and conversion (%) per region, with a weekly
/// cycle and a planted revenue spike in `spiked` on day [`SPIKE`].
fn rows(regions: &[&str], spiked: &str) -> Vec<(NaiveDate, String, f64, f64, f64)> {
    let mut noise = Noise(7);
    let mut out = Vec::new();
    for d in 0..DAYS {
        let day = start() + Duration::days(d);
        let weekly = [1.0, 1.05, 1.1, 1.08, 1.2, 0.8, 0.7][usize::try_from(d % 7).unwrap()];
        for (i, r) in regions.iter().enumerate() {
            #[allow(clippy::cast_precision_loss)]
            let base = 200_000.0 * (1.0 + i as f64 * 0.3);
            let mut revenue = base * weekly * (1.0 + 0.02 * noise.next());
            if d == SPIKE && *r == spiked {
                revenue *= 1.8;
            }
            let orders = (revenue / 62.0).round();
            let conversion = 3.1 + 0.05 * noise.next();
            out.push((day, (*r).to_string(), revenue, orders, conversion));
        }
    }
    out
}

/// `x` with thousands separators `sep` and `decimals` decimals after `mark`.
fn grouped(x: f64, decimals: usize, sep: &str, mark: &str) -> String {
    let s = format!("{:.*}", decimals, x.abs());
    let (int, frac) = s
        .split_once('.')
        .map_or((s.as_str(), None), |(i, f)| (i, Some(f)));
    let mut g = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            g.push_str(sep);
        }
        g.push(c);
    }
    if let Some(f) = frac {
        g.push_str(mark);
        g.push_str(f);
    }
    if x < 0.0 { format!("-{g}") } else { g }
}

fn config(dir: &Path, source: &str) -> PathBuf {
    let p = dir.join("callout.toml");
    std::fs::write(&p, format!("[store]\npath = \"state.db\"\n\n{source}")).unwrap();
    p
}

/// Backfill `cfg` into a findings CSV → (metric, region, timestamp, unit-free value).
fn backfill(cfg: &Path) -> Vec<(String, String, String)> {
    let out_csv = cfg.with_file_name("findings.csv");
    let out = callout(&[
        "backfill",
        "--config",
        cfg.to_str().unwrap(),
        "--output",
        out_csv.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut rd = csv::Reader::from_path(&out_csv).unwrap();
    let headers = rd.headers().unwrap().clone();
    let at = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (m, t) = (at("metric"), at("timestamp"));
    let region = headers
        .iter()
        .position(|h| h.eq_ignore_ascii_case("region"));
    rd.records()
        .map(|r| {
            let r = r.unwrap();
            (
                r[m].to_string(),
                region.map(|i| r[i].to_string()).unwrap_or_default(),
                r[t].to_string(),
            )
        })
        .collect()
}

fn spike_day() -> String {
    (start() + Duration::days(SPIKE))
        .format("%Y-%m-%d")
        .to_string()
}

#[test]
fn a_us_dated_wide_sheet_with_dollars_and_percents() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("Date,Region,Revenue ($),Orders (#),Conversion %\n");
    for (day, r, revenue, orders, conversion) in rows(&["us", "ca"], "us") {
        csv.push_str(&format!(
            "{},{r},\"${}\",\"{}\",{conversion:.2}%\n",
            day.format("%m/%d/%Y"),
            grouped(revenue, 2, ",", "."),
            grouped(orders, 0, ",", "."),
        ));
    }
    std::fs::write(dir.path().join("wbr.csv"), csv).unwrap();
    let cfg = config(
        dir.path(),
        "[[source]]\nname = \"wbr\"\npath = \"wbr.csv\"\nlayout = \"wide\"\ntime_column = \"Date\"\ntime_format = \"%m/%d/%Y\"\ndimensions = [\"Region\"]\nmetrics = [\"Revenue ($)\", \"Orders (#)\", \"Conversion %\"]\n",
    );
    let found = backfill(&cfg);
    let day = spike_day();
    assert!(
        found
            .iter()
            .any(|(m, r, t)| m == "revenue" && r == "us" && t.starts_with(&day)),
        "no revenue finding for us on {day}: {found:?}"
    );
    // every metric is named by its header's slug, never the header itself
    assert!(
        found
            .iter()
            .all(|(m, _, _)| ["revenue", "orders", "conversion"].contains(&m.as_str())),
        "{found:?}"
    );
    // the unit the header carries is the metric's unit in what people read
    let out = callout(&["check-config", "--config", cfg.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn a_long_file_with_month_names() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("Day,Region,Metric,Value\n");
    for (day, r, revenue, orders, _) in rows(&["north", "south"], "south") {
        let shown = day.format("%b %-d, %Y");
        csv.push_str(&format!(
            "\"{shown}\",{r},revenue,{revenue:.2}\n\"{shown}\",{r},orders,{orders}\n"
        ));
    }
    std::fs::write(dir.path().join("long.csv"), csv).unwrap();
    let cfg = config(
        dir.path(),
        "[[source]]\nname = \"long\"\npath = \"long.csv\"\ntime_column = \"Day\"\ntime_format = \"%b %d, %Y\"\nmetric_column = \"Metric\"\nvalue_column = \"Value\"\ndimensions = [\"Region\"]\n",
    );
    let found = backfill(&cfg);
    let day = spike_day();
    assert!(
        found
            .iter()
            .any(|(m, r, t)| m == "revenue" && r == "south" && t.starts_with(&day)),
        "no revenue finding for south on {day}: {found:?}"
    );
}

#[test]
fn a_week_ending_sunday_stays_that_sunday() {
    let dir = tempfile::tempdir().unwrap();
    let mut noise = Noise(3);
    // 104 weeks ending on Sundays, day first, a spike in week 100
    let first = NaiveDate::from_ymd_opt(2023, 1, 8).unwrap();
    let mut csv = String::from("Week Ending;Revenue (€)\n");
    for w in 0..104 {
        let day = first + Duration::weeks(w);
        let mut v = 1_250_000.0 * (1.0 + 0.01 * noise.next());
        if w == 100 {
            v *= 1.5;
        }
        csv.push_str(&format!(
            "{};{} €\n",
            day.format("%d.%m.%Y"),
            grouped(v, 2, ".", ",")
        ));
    }
    std::fs::write(dir.path().join("weekly.csv"), csv).unwrap();
    let cfg = config(
        dir.path(),
        "[[source]]\nname = \"weekly\"\npath = \"weekly.csv\"\nlayout = \"wide\"\ntime_column = \"Week Ending\"\ntime_format = \"%d.%m.%Y\"\ndecimal = \",\"\ndelimiter = \";\"\n",
    );
    let found = backfill(&cfg);
    let sunday = (first + Duration::weeks(100))
        .format("%Y-%m-%d")
        .to_string();
    assert!(
        found
            .iter()
            .any(|(m, _, t)| m == "revenue" && t.starts_with(&sunday)),
        "no revenue finding on Sunday {sunday}: {found:?}"
    );
    assert!(
        found.iter().all(|(_, _, t)| {
            NaiveDate::parse_from_str(&t[..10], "%Y-%m-%d")
                .unwrap()
                .format("%a")
                .to_string()
                == "Sun"
        }),
        "a finding moved off the week-ending Sunday: {found:?}"
    );
}

/// What `backfill` says about one broken file (exit status and stderr).
fn backfill_error(dir: &Path, name: &str, body: &str, keys: &str) -> String {
    std::fs::write(dir.join(name), body).unwrap();
    let cfg = config(
        dir,
        &format!("[[source]]\nname = \"s\"\npath = \"{name}\"\ntime_column = \"Date\"\n{keys}\n"),
    );
    let out = callout(&["backfill", "--config", cfg.to_str().unwrap(), "--quiet"]);
    assert!(
        !out.status.success(),
        "{name} was read: {}",
        text(&out.stdout)
    );
    text(&out.stderr)
}

#[test]
fn bad_cells_name_the_file_row_column_and_format() {
    let dir = tempfile::tempdir().unwrap();
    let e = backfill_error(
        dir.path(),
        "dates.csv",
        "Date,metric,value\n03/06/2025,a,1\n03/07/2025,a,2\n13/45/2025,a,3\n",
        "time_format = \"%m/%d/%Y\"",
    );
    assert!(
        e.contains("dates.csv")
            && e.contains("row 3")
            && e.contains("13/45/2025")
            && e.contains("%m/%d/%Y"),
        "{e}"
    );
    // no time_format: the message offers the one the values fit
    let e = backfill_error(
        dir.path(),
        "us.csv",
        "Date,metric,value\n03/06/2025,a,1\n03/13/2025,a,2\n",
        "",
    );
    assert!(
        e.contains("us.csv") && e.contains("time_format") && e.contains("%m/%d/%Y"),
        "{e}"
    );
    let e = backfill_error(
        dir.path(),
        "values.csv",
        "Date,metric,value\n2025-03-06,a,\"$1,234\"\n2025-03-07,a,lots\n",
        "",
    );
    assert!(
        e.contains("values.csv")
            && e.contains("value")
            && e.contains("row 2")
            && e.contains("\"lots\""),
        "{e}"
    );
    let e = backfill_error(
        dir.path(),
        "fmt.csv",
        "Date,metric,value\n2025-03-06,a,1\n",
        "time_format = \"%Q\"",
    );
    assert!(e.contains("time_format") && e.contains("%Q"), "{e}");
}

#[test]
fn spreadsheet_blanks_and_errors_are_missing_values_not_failures() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("Date,metric,value\n");
    for d in 0..60 {
        let day = start() + Duration::days(d);
        let v = match d {
            10 => "#N/A".to_string(),
            11 => "-".to_string(),
            12 => "#DIV/0!".to_string(),
            13 => "\"(1,200.00)\"".to_string(),
            _ => format!(
                "\"{}\"",
                grouped(
                    1000.0 + f64::from(u8::try_from(d % 7).unwrap()),
                    2,
                    ",",
                    "."
                )
            ),
        };
        csv.push_str(&format!("{},signups,{v}\n", day.format("%m/%d/%Y")));
    }
    std::fs::write(dir.path().join("blanks.csv"), csv).unwrap();
    let cfg = config(
        dir.path(),
        "[[source]]\nname = \"s\"\npath = \"blanks.csv\"\ntime_column = \"Date\"\ntime_format = \"%m/%d/%Y\"\n",
    );
    let out = callout(&["check-sources", "--config", cfg.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let said = text(&out.stdout);
    // 60 rows, three of them without a value, `(1,200.00)` a value
    assert!(said.contains("1 series, 57 rows"), "{said}");
    // and says the keys it read the file with
    assert!(
        said.contains("read with time_format \"%m/%d/%Y\""),
        "{said}"
    );
}

/// A weekly sheet by region, "Week Ending" Sundays from 2023-01-08, 104
/// weeks, US dates, `$` revenue and a `%` conversion per region.
fn week_ending_sheet(dir: &Path) -> NaiveDate {
    let first = NaiveDate::from_ymd_opt(2023, 1, 8).unwrap();
    let mut noise = Noise(11);
    let mut csv = String::from("Week Ending,Region,Revenue ($),Conversion %\n");
    for w in 0..104 {
        let day = first + Duration::weeks(w);
        for (r, base) in [("Düsseldorf", 180_000.0), ("London", 260_000.0)] {
            let mut v = base * (1.0 + 0.01 * noise.next());
            if w == 100 && r == "Düsseldorf" {
                v *= 1.6;
            }
            let conv = if r == "London" { 3.0 } else { 4.0 } + 0.02 * noise.next();
            csv.push_str(&format!(
                "{},{r},\"${}\",{conv:.2}%\n",
                day.format("%m/%d/%Y"),
                grouped(v, 2, ",", ".")
            ));
        }
    }
    std::fs::write(dir.join("weekly.csv"), csv).unwrap();
    first
}

/// The weekly sheet's config; `extra` lines go on its source.
fn weekly_config(dir: &Path, extra: &str) -> PathBuf {
    config(
        dir,
        &format!(
            "[[source]]\nname = \"weekly\"\npath = \"weekly.csv\"\nlayout = \"wide\"\ntime_column = \"Week Ending\"\ntime_format = \"%m/%d/%Y\"\ndimensions = [\"Region\"]\nmetrics = [\"Revenue ($)\", \"Conversion %\"]\n{extra}\n\n[owners]\ndefault = \"Ana <ana@example.com>\"\n\n[review]\nweekday = \"wed\"\ntime = \"14:00\"\n"
        ),
    )
}

/// What `run --once --at` says it reported on the weekly source.
fn reported_at(cfg: &Path, at: &str) -> String {
    let digests = cfg.with_file_name("digests");
    let out = callout(&[
        "run",
        "--once",
        "--config",
        cfg.to_str().unwrap(),
        "--at",
        at,
        "--dry-run",
        digests.to_str().unwrap(),
    ]);
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    said.lines()
        .find(|l| l.starts_with("reported on `weekly`"))
        .unwrap_or_else(|| panic!("no report line in:\n{said}"))
        .to_string()
}

#[test]
fn a_week_ending_row_is_reported_once_its_sunday_is_over() {
    let dir = tempfile::tempdir().unwrap();
    let first = week_ending_sheet(dir.path());
    let sunday = first + Duration::weeks(100);
    let tuesday = (sunday + Duration::days(2))
        .format("%Y-%m-%d 07:00")
        .to_string();
    let shown = sunday.format("%Y-%m-%d").to_string();
    // as the week's last day, the Sunday's week is complete on Tuesday morning
    let cfg = weekly_config(dir.path(), "period_end = true");
    let line = reported_at(&cfg, &tuesday);
    assert!(line.contains(&format!("({shown} .. {shown})")), "{line}");
    let digest = std::fs::read_dir(dir.path().join("digests"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "html"))
        .expect("a digest");
    let html = std::fs::read_to_string(digest).unwrap();
    // the planted week, by the date the export gives it, in the header's unit
    assert!(html.contains("revenue (Region=Düsseldorf)"), "{html}");
    assert!(html.contains(&shown) && html.contains("$"), "{html}");
    // read as the week's first day, that week would only end the next Sunday
    std::fs::remove_dir_all(dir.path().join("digests")).unwrap();
    let cfg = weekly_config(dir.path(), "");
    let line = reported_at(&cfg, &tuesday);
    assert!(!line.contains(&shown), "{line}");
}

#[test]
fn the_pre_read_shows_header_units_and_averages_a_percent() {
    let dir = tempfile::tempdir().unwrap();
    let first = week_ending_sheet(dir.path());
    let sunday = first + Duration::weeks(100);
    let cfg = weekly_config(dir.path(), "period_end = true");
    let html = dir.path().join("wbr.html");
    // as of a past morning: the later weeks are in the file, and left out
    let out = callout(&[
        "report",
        "--config",
        cfg.to_str().unwrap(),
        "--date",
        &sunday.format("%Y-%m-%d").to_string(),
        "--at",
        &(sunday + Duration::days(2))
            .format("%Y-%m-%d 07:00")
            .to_string(),
        "-o",
        html.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("Düsseldorf"), "{page}");
    assert!(page.contains("$"), "revenue in dollars: {page}");
    // conversion is a rate: the week's figure is the mean, 3.5 %, not the sum, 7.0 %
    assert!(page.contains("<td>3.5 %</td>"), "{page}");
    assert!(!page.contains("<td>7.0 %</td>"), "{page}");
}
