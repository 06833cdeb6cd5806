//! A newcomer's first ten minutes, black-box: `callout demo` in an empty
//! folder (no network, no mail server, not run from the checkout), `serve
//! --at` on the demo's store, `run --once --at` (no look-ahead, late counted
//! from the given moment), and `callout init` on exports generated here
//! (long, wide; daily, weekly, hourly; CSV, Parquet, NDJSON; one ambiguous),
//! whose config passes `check-config` once the SMTP host is set and backfills.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    reason = "a failed assumption in a test is a failed test"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::common;
use common::{root, serving_at, text};

/// The binary, run from `cwd` (never the checkout, so nothing is found by accident).
fn callout_in(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_callout"))
        .args(args)
        .current_dir(cwd)
        .env_remove("CALLOUT_LOG")
        .output()
        .expect("run callout")
}

/// A whole number with thousands separators, as the digest writes it.
fn thousands(v: f64) -> String {
    let s = format!("{:.0}", v.abs());
    let mut g = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            g.push(',');
        }
        g.push(c);
    }
    if v < 0.0 { format!("-{g}") } else { g }
}

/// Text and HTML parts of an `.eml`.
fn parts(eml: &Path) -> (String, String) {
    let raw = std::fs::read(eml).unwrap();
    let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
    (
        m.body_text(0).unwrap().into_owned(),
        m.body_html(0).unwrap().into_owned(),
    )
}

#[test]
fn demo_writes_digests_with_real_outliers_from_an_empty_folder() {
    let cwd = tempfile::tempdir().unwrap();
    let out = callout_in(cwd.path(), &["demo", "--out", "my-demo"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stderr);
    let dir = cwd.path().join("my-demo");
    let mut emls: Vec<PathBuf> = std::fs::read_dir(dir.join("digests"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    emls.sort();
    assert!(emls.len() >= 2, "{emls:?}\n{said}");
    let mut statistical = 0;
    for eml in &emls {
        let (txt, html) = parts(eml);
        // an outlier to explain, not only `late` exports
        if ["seasonal (source", "level_shift (source"]
            .iter()
            .any(|c| txt.contains(c))
        {
            statistical += 1;
        }
        assert!(
            !txt.contains("late (source") && !txt.contains("export late"),
            "a demo export reads as late:\n{txt}"
        );
        // links go to the demo's local server
        assert!(html.contains("http://127.0.0.1:8080/e/"), "{html}");
        // the page beside it opens in a browser: charts inlined, none by cid
        let page = std::fs::read_to_string(eml.with_extension("html")).unwrap();
        assert!(page.contains("src=\"data:image/png;base64,"), "{eml:?}");
        assert!(!page.contains("cid:"), "{eml:?}");
        // printed: every digest and how to serve the pages
        let name = eml.file_name().unwrap().to_str().unwrap();
        assert!(said.contains(name), "{name} not listed:\n{said}");
    }
    assert!(statistical >= 2, "digests with outliers: {statistical}");
    // an item says how its metric stands against plan: US orders, flagged on
    // Fri 7 March 2025, month to date (1–7 March) against March's US target
    // pro rata (7 of 31 days), both by hand from the demo's files
    let csv = std::fs::read_to_string(dir.join("data/shop_daily.csv")).unwrap();
    let actual: f64 = csv
        .lines()
        .filter(|l| l.contains(",orders,us,") && ("2025-03-01"..="2025-03-07").contains(&&l[..10]))
        .map(|l| l.rsplit(',').next().unwrap().parse::<f64>().unwrap())
        .sum();
    let plan_csv = std::fs::read_to_string(dir.join("data/plan.csv")).unwrap();
    let march: f64 = plan_csv
        .lines()
        .find(|l| l.starts_with("2025-03,orders,us,"))
        .map(|l| l.rsplit(',').next().unwrap().parse::<f64>().unwrap())
        .unwrap();
    let plan = march * 7.0 / 31.0;
    let line = format!(
        "Month to date: {} vs plan {} ({:+.1}%)",
        thousands(actual),
        thousands(plan),
        (actual - plan) / plan * 100.0
    );
    let sam = emls
        .iter()
        .find(|p| p.to_string_lossy().contains("sam_example.com"))
        .unwrap();
    let (txt, html) = parts(sam);
    assert!(txt.contains(&format!("Plan:      {line}")), "{line}\n{txt}");
    assert!(
        html.contains(&format!("<th align=\"left\">Plan</th><td>{line}</td>")),
        "{line}\n{html}"
    );
    // the pre-read of the week: a chart per metric, listed in what was printed
    let report = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(report.matches("<svg").count() >= 4, "charts in the report");
    assert!(
        report.contains("orders") && report.contains("2025"),
        "{report}"
    );
    assert!(said.contains("report.html"), "{said}");
    // made again by the command the README shows: a file named by its week, here
    let out = callout_in(
        cwd.path(),
        &[
            "report",
            "--config",
            "my-demo/callout.toml",
            "--at",
            "2025-03-10 08:00",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("written to `wbr-2025-W10.html`"),
        "{}",
        text(&out.stderr)
    );
    let again = std::fs::read_to_string(cwd.path().join("wbr-2025-W10.html")).unwrap();
    assert_eq!(again, report, "the demo's own pre-read");
    assert!(
        said.contains("callout serve --config") && said.contains("--at \"2025-03-10 08:00\""),
        "{said}"
    );
    // a second run replaces the demo; a folder of other files is refused
    let again = callout_in(cwd.path(), &["demo", "--out", "my-demo"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    std::fs::create_dir(cwd.path().join("mine")).unwrap();
    std::fs::write(cwd.path().join("mine/notes.txt"), "keep").unwrap();
    let refused = callout_in(cwd.path(), &["demo", "--out", "mine"]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused.stderr));
    assert!(text(&refused.stderr).contains("not an earlier demo folder"));
}

/// Status of a GET (and its body).
fn get(url: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    match agent.get(url).call() {
        Ok(mut r) => (
            r.status().as_u16(),
            r.body_mut().read_to_string().unwrap_or_default(),
        ),
        Err(_) => (0, String::new()),
    }
}

/// `serve --at`: the demo's links, long expired by the real clock, open as
/// of the demo's moment, and the page states the deadline of that week.
#[test]
fn serve_at_opens_the_demo_links_as_of_the_demo_moment() {
    let cwd = tempfile::tempdir().unwrap();
    let out = callout_in(cwd.path(), &["demo", "--out", "d"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let dir = cwd.path().join("d");
    // the server binds a port of its own and says which; links keep the
    // demo's public URL, and are followed to where the server answers
    let cfg = dir.join("callout.toml");
    let toml = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("listen = \"127.0.0.1:8080\"", "listen = \"127.0.0.1:0\"");
    assert!(toml.contains("listen = \"127.0.0.1:0\""), "{toml}");
    std::fs::write(&cfg, toml).unwrap();
    let digests: Vec<PathBuf> = std::fs::read_dir(dir.join("digests"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "html"))
        .collect();
    // Ana's digest opens with revenue in apac: the lasting drop
    let ana = digests
        .iter()
        .find(|p| p.to_string_lossy().contains("ana"))
        .unwrap();
    let page = std::fs::read_to_string(ana).unwrap();
    let start = page.find("http://127.0.0.1:8080/e/").unwrap();
    let end = start + page[start..].find('"').unwrap();
    let link = &page[start..end];

    let serve = |at: Option<&str>| {
        let mut args = vec!["serve", "--config", cfg.to_str().unwrap()];
        if let Some(at) = at {
            args.extend(["--at", at]);
        }
        let log = cwd.path().join("serve.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_callout"))
            .args(&args)
            .current_dir(cwd.path())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let base = serving_at(&mut child, &log);
        let until = Instant::now() + Duration::from_secs(60);
        while get(&format!("{base}/healthz")).0 == 0 {
            assert!(child.try_wait().unwrap().is_none(), "serve exited");
            assert!(Instant::now() < until, "server not ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        let r = get(&link.replace("http://127.0.0.1:8080", &base));
        let _ = child.kill();
        let _ = child.wait();
        r
    };
    let (status, body) = serve(Some("2025-03-10 08:00"));
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("Please explain by Tue 11 Mar 10:00"),
        "{body}"
    );
    // the drop lasted: open, or closed on the new level, never "back to normal"
    assert!(
        body.contains("revenue") && body.contains("apac") && !body.contains("back to normal"),
        "{body}"
    );
    assert!(
        body.contains("needs your explanation") || body.contains("settled at a new level"),
        "{body}"
    );
    // on the real clock the same link expired long ago
    assert_eq!(serve(None).0, 410);
}

fn write_config(dir: &Path, source: &str) -> PathBuf {
    let p = dir.join("c.toml");
    std::fs::write(
        &p,
        format!(
            "[store]\npath = \"s.db\"\n[[source]]\nname = \"shop\"\npath = \"{source}\"\ndimensions = [\"region\"]\n"
        ),
    )
    .unwrap();
    p
}

/// `run --once --at`: exactly what the daemon saw then. A day that had not
/// ended is not read (no look-ahead, and the export's later rows are not
/// reported as wrong dates); late counts from `--at`, not from today.
#[test]
fn run_once_at_replays_without_look_ahead() {
    let dir = tempfile::tempdir().unwrap();
    let shop = root().join("fixtures/shop_daily.csv");
    let cfg = write_config(dir.path(), shop.to_str().unwrap());
    let run = |at: &str| {
        for f in ["s.db", "s.db-wal", "s.db-shm"] {
            let _ = std::fs::remove_file(dir.path().join(f));
        }
        let out = callout_in(
            dir.path(),
            &[
                "run",
                "--once",
                "--config",
                cfg.to_str().unwrap(),
                "--at",
                at,
            ],
        );
        assert!(out.status.success(), "{at}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("0 source error(s), 0 warning(s)"),
            "{at}: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    };
    // the planted eu spike of 2024-05-15 is found once that day has ended…
    let after = run("2024-05-16 08:00");
    assert!(
        after.contains("2024-05-15") && after.contains("seasonal"),
        "{after}"
    );
    // …and not at 08:00 on the day itself, when its data could not exist yet
    let during = run("2024-05-15 08:00");
    assert!(!during.contains("2024-05-15"), "{during}");
    // the export ends 2024-07-02: on time the next morning, late a week on
    assert!(!run("2024-07-03 08:00").contains("late"));
    let week_on = run("2024-07-10 08:00");
    assert!(
        week_on.contains("late") && week_on.contains("2024-07-03"),
        "{week_on}"
    );
    // --at belongs to --once
    let refused = callout_in(
        dir.path(),
        &[
            "run",
            "--config",
            cfg.to_str().unwrap(),
            "--at",
            "2024-07-10 08:00",
        ],
    );
    assert_eq!(refused.status.code(), Some(2));
}

/// Deterministic values with a weekly and a daily shape.
fn value(i: usize, base: f64) -> f64 {
    let weekly = [1.0, 1.1, 1.15, 1.1, 1.05, 0.8, 0.7][(i / 24) % 7];
    let noise = ((i * 7919) % 13) as f64 / 100.0;
    (base * weekly * (1.0 + noise)).round()
}

/// A CSV read back with dates parsed, written as Parquet.
fn csv_to_parquet(csv: &Path, pq: &Path) {
    use polars::prelude::*;
    let mut df = CsvReadOptions::default()
        .with_has_header(true)
        .map_parse_options(|o| o.with_try_parse_dates(true))
        .try_into_reader_with_file_path(Some(csv.to_path_buf()))
        .unwrap()
        .finish()
        .unwrap();
    ParquetWriter::new(std::fs::File::create(pq).unwrap())
        .finish(&mut df)
        .unwrap();
}

/// The exports a newcomer might bring: (file name, what init must find).
fn write_exports(dir: &Path) {
    let day0 = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    // long, daily, CSV
    let mut s = String::from("date,metric,region,value\n");
    for d in 0..120 {
        for (m, base) in [("orders", 500.0), ("revenue", 30000.0)] {
            for r in ["eu", "us"] {
                let date = day0 + chrono::Duration::days(d);
                s.push_str(&format!(
                    "{date},{m},{r},{}\n",
                    value(d as usize * 24, base)
                ));
            }
        }
    }
    std::fs::write(dir.join("shop_long.csv"), s).unwrap();
    // wide, weekly, Parquet (via a CSV)
    let mut s = String::from("week,region,sessions,signups\n");
    for w in 0..60 {
        for r in ["eu", "us"] {
            let date = day0 + chrono::Duration::weeks(w);
            s.push_str(&format!(
                "{date},{r},{},{}\n",
                value(w as usize * 31, 9000.0),
                value(w as usize * 17, 300.0)
            ));
        }
    }
    std::fs::write(dir.join("weekly.csv"), &s).unwrap();
    csv_to_parquet(&dir.join("weekly.csv"), &dir.join("web_weekly.parquet"));
    std::fs::remove_file(dir.join("weekly.csv")).unwrap();
    // long, hourly, Parquet with datetimes
    let mut s = String::from("timestamp,kpi,amount\n");
    for h in 0..(24 * 40) {
        let t = day0.and_hms_opt(0, 0, 0).unwrap() + chrono::Duration::hours(h);
        for (m, base) in [("api_calls", 1200.0), ("errors", 40.0)] {
            s.push_str(&format!(
                "{},{m},{}\n",
                t.format("%Y-%m-%d %H:%M:%S"),
                value(h as usize, base)
            ));
        }
    }
    std::fs::write(dir.join("hourly.csv"), &s).unwrap();
    csv_to_parquet(&dir.join("hourly.csv"), &dir.join("api_hourly.parquet"));
    std::fs::remove_file(dir.join("hourly.csv")).unwrap();
    // ambiguous, daily, CSV: two date columns, a numeric id, one number
    // beside a text column (wide with one metric, or long with `store` as the metric?)
    let mut s = String::from("day,loaded_at,store_id,store,sales\n");
    for d in 0..90 {
        for (id, store) in [(1, "north"), (2, "south")] {
            let date = day0 + chrono::Duration::days(d);
            s.push_str(&format!(
                "{date},{date} 06:30:00,{id},{store},{}\n",
                value(d as usize * 24 + id, 2000.0)
            ));
        }
    }
    std::fs::write(dir.join("stores.csv"), s).unwrap();
    // wide, hourly, NDJSON with text times
    let mut s = String::new();
    for h in 0..(24 * 30) {
        let t = day0.and_hms_opt(0, 0, 0).unwrap() + chrono::Duration::hours(h);
        s.push_str(&format!(
            "{{\"hour\":\"{}\",\"queue_depth\":{},\"workers\":{}}}\n",
            t.format("%Y-%m-%dT%H:%M:%S"),
            value(h as usize, 80.0),
            value(h as usize + 3, 12.0)
        ));
    }
    std::fs::write(dir.join("queue.ndjson"), s).unwrap();
}

/// The `[[source]]` named `name` of a parsed config.
fn source<'a>(cfg: &'a toml::Table, name: &str) -> &'a toml::Table {
    cfg["source"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_table().unwrap())
        .find(|s| s["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no source {name} in {cfg:#?}"))
}

fn strings(v: &toml::Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

#[test]
fn init_infers_sources_and_its_config_checks_and_backfills() {
    let dir = tempfile::tempdir().unwrap();
    let exports = dir.path().join("exports");
    std::fs::create_dir(&exports).unwrap();
    write_exports(&exports);
    let files = [
        "shop_long.csv",
        "web_weekly.parquet",
        "api_hourly.parquet",
        "stores.csv",
        "queue.ndjson",
    ];
    let mut args = vec!["init".to_string()];
    for f in files {
        args.push("--from".into());
        args.push(format!("exports/{f}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = callout_in(dir.path(), &args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let written = std::fs::read_to_string(dir.path().join("callout.toml")).unwrap();
    let cfg: toml::Table = written.parse().unwrap();

    let shop = source(&cfg, "shop_long");
    assert_eq!(shop["path"].as_str(), Some("exports/shop_long.csv"));
    assert_eq!(shop["layout"].as_str(), Some("long"));
    assert_eq!(shop["time_column"].as_str(), Some("date"));
    assert_eq!(shop["metric_column"].as_str(), Some("metric"));
    assert_eq!(shop["value_column"].as_str(), Some("value"));
    assert_eq!(strings(&shop["dimensions"]), ["region"]);
    assert_eq!(shop["granularity"].as_str(), Some("day"));

    let web = source(&cfg, "web_weekly");
    assert_eq!(web["format"].as_str(), Some("parquet"));
    assert_eq!(web["layout"].as_str(), Some("wide"));
    assert_eq!(web["time_column"].as_str(), Some("week"));
    assert_eq!(strings(&web["metrics"]), ["sessions", "signups"]);
    assert_eq!(strings(&web["dimensions"]), ["region"]);
    assert_eq!(web["granularity"].as_str(), Some("week"));

    let api = source(&cfg, "api_hourly");
    assert_eq!(api["layout"].as_str(), Some("long"));
    assert_eq!(api["metric_column"].as_str(), Some("kpi"));
    assert_eq!(api["value_column"].as_str(), Some("amount"));
    assert!(strings(&api["dimensions"]).is_empty());
    assert_eq!(api["granularity"].as_str(), Some("hour"));

    let queue = source(&cfg, "queue");
    assert_eq!(queue["format"].as_str(), Some("ndjson"));
    assert_eq!(queue["layout"].as_str(), Some("wide"));
    assert_eq!(queue["time_column"].as_str(), Some("hour"));
    assert_eq!(queue["granularity"].as_str(), Some("hour"));

    // the ambiguous export: choices made, and each one said next to it
    let stores = source(&cfg, "stores");
    assert_eq!(stores["time_column"].as_str(), Some("day"));
    assert_eq!(stores["layout"].as_str(), Some("wide"));
    assert_eq!(strings(&stores["metrics"]), ["sales"]);
    assert_eq!(strings(&stores["dimensions"]), ["store", "store_id"]);
    for said in [
        "# CHECK: time_column: `day` chosen; `loaded_at` also hold(s) dates",
        "# CHECK: `store_id` holds numbers but is named like an identifier",
        "# CHECK: layout: read as wide with one metric, `sales`",
    ] {
        assert!(written.contains(said), "missing {said:?} in\n{written}");
    }
    // the other exports had nothing to check
    assert_eq!(written.matches("# CHECK:").count(), 3, "{written}");
    // owners to fill in, per metric seen
    assert!(written.contains("# match = \"revenue\""), "{written}");

    // check-config names the one thing left to set, then passes
    let check = |cwd: &Path| callout_in(cwd, &["check-config", "--config", "callout.toml"]);
    let before = check(dir.path());
    assert_eq!(before.status.code(), Some(2), "{}", text(&before.stdout));
    assert!(
        text(&before.stderr).contains("smtp.host"),
        "{}",
        text(&before.stderr)
    );
    let filled = written.replace(
        "# host = \"smtp.example.com\"",
        "host = \"smtp.example.com\"",
    );
    assert_ne!(filled, written);
    std::fs::write(dir.path().join("callout.toml"), &filled).unwrap();
    let after = check(dir.path());
    assert!(
        after.status.success(),
        "{}{}",
        text(&after.stdout),
        text(&after.stderr)
    );
    assert!(text(&after.stdout).contains("5 source(s)"));

    // and a backfill runs on every source
    let bf = callout_in(
        dir.path(),
        &[
            "backfill",
            "--config",
            "callout.toml",
            "--quiet",
            "--output",
            "f.csv",
        ],
    );
    assert!(bf.status.success(), "{}", text(&bf.stderr));
    assert!(
        text(&bf.stderr).contains("backfill: 5 source(s)")
            && text(&bf.stderr).contains("0 error(s)"),
        "{}",
        text(&bf.stderr)
    );

    // never over an existing file without --force
    let again = callout_in(dir.path(), &args);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        text(&again.stderr).contains("--force"),
        "{}",
        text(&again.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("callout.toml")).unwrap(),
        filled
    );
    let mut forced = args.clone();
    forced.push("--force");
    assert!(callout_in(dir.path(), &forced).status.success());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("callout.toml")).unwrap(),
        written
    );
}

#[test]
fn init_names_an_export_without_dates() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.csv"), "region,value\neu,1\nus,2\n").unwrap();
    let out = callout_in(dir.path(), &["init", "--from", "x.csv"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let e = text(&out.stderr);
    assert!(
        e.contains("x.csv") && e.contains("no column holds dates"),
        "{e}"
    );
    assert!(!dir.path().join("callout.toml").exists());
}

/// `callout init --from …` in `dir`, the SMTP host filled in, and
/// `check-config` passing on it; returns the written config's text.
fn init_and_check(dir: &Path, files: &[&str]) -> String {
    let mut args = vec!["init"];
    for f in files {
        args.extend(["--from", f]);
    }
    let out = callout_in(dir, &args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let written = std::fs::read_to_string(dir.join("callout.toml")).unwrap();
    let filled = written.replace(
        "# host = \"smtp.example.com\"",
        "host = \"smtp.example.com\"",
    );
    std::fs::write(dir.join("callout.toml"), &filled).unwrap();
    let check = callout_in(dir, &["check-config", "--config", "callout.toml"]);
    assert!(
        check.status.success(),
        "{}{}\n{written}",
        text(&check.stdout),
        text(&check.stderr)
    );
    written
}

/// The digests of `run --once --dry-run` at the schedule's first fire time
/// after `data_end` (the moment the exports' last period ended), as written
/// by `init`: (when, subject, text part) of each.
fn digests_at_first_fire(
    dir: &Path,
    data_end: chrono::DateTime<chrono::Utc>,
) -> (String, Vec<(String, String)>) {
    let cfg = callout::config::load(&dir.join("callout.toml")).unwrap();
    let fire = callout::schedule::next_fire(&cfg.schedule, data_end).unwrap();
    let at = fire
        .with_timezone(&cfg.review.timezone)
        .format("%Y-%m-%d %H:%M")
        .to_string();
    let out = callout_in(
        dir,
        &[
            "run",
            "--once",
            "--config",
            "callout.toml",
            "--dry-run",
            "digests",
            "--at",
            &at,
        ],
    );
    assert!(out.status.success(), "{at}: {}", text(&out.stderr));
    let mut emls: Vec<PathBuf> = std::fs::read_dir(dir.join("digests"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    emls.sort();
    let digests = emls
        .iter()
        .map(|eml| {
            let raw = std::fs::read(eml).unwrap();
            let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
            (
                m.subject().unwrap().to_string(),
                m.body_text(0).unwrap().into_owned(),
            )
        })
        .collect();
    (at, digests)
}

/// Daily data with a spike on its last day (Sunday 2025-03-09), a 30-minute
/// export and a one-column export: `init` names the 30-minute spacing as the
/// config takes it, names the one-column export's metric after its file, and
/// its schedule and review send the digest of the first scheduled run
/// (Monday 07:00) before its deadline, not already overdue.
#[test]
fn init_defaults_for_daily_data_send_digests_before_their_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let last = chrono::NaiveDate::from_ymd_opt(2025, 3, 9).unwrap();
    let mut s = String::from("date,value\n");
    for d in (0..730).rev() {
        let date = last - chrono::Duration::days(d);
        let mut v = value((730 - d as usize) * 24, 400.0);
        if d == 0 {
            v *= 4.0;
        }
        s.push_str(&format!("{date},{v}\n"));
    }
    std::fs::write(dir.path().join("signups.csv"), s).unwrap();
    let mut s = String::from("time,sessions\n");
    let end = last.and_hms_opt(23, 30, 0).unwrap();
    for i in (0..48 * 28).rev() {
        let t = end - chrono::Duration::minutes(30 * i);
        s.push_str(&format!(
            "{},{}\n",
            t.format("%Y-%m-%d %H:%M:%S"),
            value(48 * 28 - i as usize, 90.0)
        ));
    }
    std::fs::write(dir.path().join("web30.csv"), s).unwrap();

    let written = init_and_check(dir.path(), &["signups.csv", "web30.csv"]);
    let cfg: toml::Table = written.parse().unwrap();
    let signups = source(&cfg, "signups");
    assert_eq!(signups["layout"].as_str(), Some("long"));
    assert_eq!(signups["metric"].as_str(), Some("signups"), "{written}");
    assert_eq!(signups["value_column"].as_str(), Some("value"));
    assert!(!signups.contains_key("metric_column"), "{written}");
    let web = source(&cfg, "web30");
    assert_eq!(web["granularity"].as_str(), Some("30min"), "{written}");
    assert!(!written.contains("# CHECK"), "{written}");
    assert!(written.contains("\"0 0 7 * * Mon-Fri\""), "{written}");

    let monday = chrono::NaiveDate::from_ymd_opt(2025, 3, 10)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    let (at, digests) = digests_at_first_fire(dir.path(), monday);
    assert_eq!(at, "2025-03-10 07:00");
    let (subject, body) = digests
        .iter()
        .find(|(_, body)| body.contains("signups"))
        .unwrap_or_else(|| panic!("no digest with the signups spike: {digests:#?}"));
    assert!(body.contains("2025-03-09"), "{body}");
    // the items' headings (`1. signups`) name the metric after the file, never `value`
    let items: Vec<&str> = body
        .lines()
        .filter_map(|l| l.trim().split_once(". "))
        .filter(|(n, _)| n.parse::<u32>().is_ok())
        .map(|(_, metric)| metric)
        .collect();
    assert!(items.contains(&"signups"), "{body}");
    assert!(!items.contains(&"value"), "{body}");
    for (subject, _) in &digests {
        assert!(
            subject.contains("to explain by") && !subject.contains("to explain now"),
            "{subject}"
        );
    }
    assert!(
        subject.contains("by Wed 12 Mar 10:00 (WBR Wed 12 Mar 14:00)"),
        "{subject}"
    );
}

/// Weekly data (weeks dated by their Monday) with a spike in its last week
/// (3-9 March 2025): `init` schedules one run a week, Tuesday 07:00, and that
/// run's digest is due the next day, before the review, not overdue.
#[test]
fn init_defaults_for_weekly_data_send_digests_before_their_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let last = chrono::NaiveDate::from_ymd_opt(2025, 3, 3).unwrap();
    let mut s = String::from("week,orders\n");
    for w in (0..104).rev() {
        let week = last - chrono::Duration::weeks(w);
        let mut v = value((104 - w as usize) * 31, 5000.0);
        if w == 0 {
            v *= 3.0;
        }
        s.push_str(&format!("{week},{v}\n"));
    }
    std::fs::write(dir.path().join("orders.csv"), s).unwrap();

    let written = init_and_check(dir.path(), &["orders.csv"]);
    let cfg: toml::Table = written.parse().unwrap();
    assert_eq!(source(&cfg, "orders")["granularity"].as_str(), Some("week"));
    assert!(written.contains("\"0 0 7 * * Tue\""), "{written}");

    // the last week ends Monday 10 March; the first run after it
    let end = chrono::NaiveDate::from_ymd_opt(2025, 3, 10)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    let (at, digests) = digests_at_first_fire(dir.path(), end);
    assert_eq!(at, "2025-03-11 07:00");
    assert_eq!(digests.len(), 1, "{digests:#?}");
    let (subject, body) = &digests[0];
    assert!(
        body.contains("orders") && body.contains("2025-03-03"),
        "{body}"
    );
    assert!(
        subject.contains("to explain by Wed 12 Mar 10:00 (WBR Wed 12 Mar 14:00)"),
        "{subject}"
    );
}
