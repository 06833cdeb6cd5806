//! `callout report` end to end: the example config on the bundled demo
//! exports, a real store filled by `backfill --store`, an explanation stored
//! through the store API, the page parsed, and rendered by headless Chromium.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    reason = "a failed assumption in a test or bench is a failed test"
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use callout::model::Cause;
use callout::store::Store;
use callout::store::explanations::NewExplanation;

use crate::support::common;
use common::{root, text};

use crate::support::html;

/// An explanation that is also markup: it must be shown, never interpreted.
const EXPLANATION: &str = "US promotion <b>20% off</b> & \"free shipping\", Friday only";
const AT: &str = "2025-03-10 08:00";

fn callout(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_callout"))
        .args(args)
        .env_remove("CALLOUT_LOG")
        .output()
        .expect("run callout")
}

/// The shipped example config, with its store in `dir` and the fixtures by
/// absolute path (everything else as shipped).
fn example_config(dir: &Path) -> PathBuf {
    let shipped = std::fs::read_to_string(root().join("config/callout.toml")).unwrap();
    assert!(shipped.contains("path = \"../callout.db\""));
    let text = shipped
        .replace("path = \"../callout.db\"", "path = \"state.db\"")
        .replace(
            "\"../fixtures/",
            &format!("\"{}/fixtures/", root().display()),
        );
    let p = dir.join("callout.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// Backfill the demo's last weeks into the store, so it holds the week's incidents.
fn record_incidents(cfg: &Path, dir: &Path) {
    let out = callout(&[
        "backfill",
        "--config",
        cfg.to_str().unwrap(),
        "--from",
        "2025-02-24",
        "--store",
        "--quiet",
        "--output",
        dir.join("findings.csv").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

fn report(cfg: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "report",
        "--config",
        cfg.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    callout(&args)
}

/// Thousands separators, as a person writes a whole number.
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

/// Sum of `metric` (all regions) per date, read from the demo's long CSV.
fn daily_totals(metric: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let csv = std::fs::read_to_string(root().join("fixtures/demo/shop_daily.csv")).unwrap();
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        if f[1] == metric {
            *out.entry(f[0].to_string()).or_insert(0.0) += f[3].parse::<f64>().unwrap();
        }
    }
    out
}

fn sum_between(d: &BTreeMap<String, f64>, from: &str, to: &str) -> f64 {
    d.range(from.to_string()..=to.to_string())
        .map(|(_, v)| v)
        .sum()
}

fn sections(doc: &html::Node) -> BTreeMap<String, &html::Node> {
    doc.find_all(&|n| n.tag == "section" && n.has_class("metric"))
        .into_iter()
        .map(|n| (n.attr("data-metric").unwrap().to_string(), n))
        .collect()
}

fn cell(section: &html::Node, key: &str) -> String {
    section
        .find(&|n| n.tag == "td" && n.attr("data-cell") == Some(key))
        .unwrap_or_else(|| panic!("no cell {key}"))
        .text()
        .replace(['▲', '▼'], "")
        .trim()
        .to_string()
}

#[test]
fn the_example_report_shows_every_metric_its_numbers_and_explanations() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = example_config(dir.path());
    record_incidents(&cfg, dir.path());
    // the owner of the US promotion answers through the store, as the page would
    let store = Store::open(&dir.path().join("state.db")).unwrap();
    let incidents = store.incidents().unwrap();
    let promo = incidents
        .iter()
        .find(|i| i.key.metric == "orders" && i.key.dim("region") == Some("us"))
        .expect("the promotion opened an incident");
    store
        .add_explanation(&NewExplanation {
            incident_id: promo.id,
            cause: Cause::KnownEvent,
            persistence: None,
            text: EXPLANATION.into(),
            author: "sam@example.com".into(),
            link_hash: "test".into(),
            created_at: 0,
        })
        .unwrap();
    let unexplained = incidents
        .iter()
        .find(|i| i.key.metric == "revenue" && i.key.dim("region") == Some("apac"))
        .expect("the lasting drop opened an incident");
    drop(store);

    let out_path = dir.path().join("wbr.html");
    let out = report(&cfg, &out_path, &["--at", AT]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let page = std::fs::read_to_string(&out_path).unwrap();
    let doc = html::parse(&page);
    let by_metric = sections(&doc);

    // every configured metric (sections, rules) and every metric of the exports has its chart
    let config = callout::config::load(&cfg).unwrap();
    let mut expected: Vec<String> = config
        .report
        .sections
        .iter()
        .flat_map(|s| s.metrics.clone())
        .collect();
    expected.extend(config.report.metrics.iter().map(|m| m.name.clone()));
    expected.extend(["orders", "revenue", "sessions", "signups"].map(String::from));
    for m in &expected {
        let s = by_metric
            .get(m)
            .unwrap_or_else(|| panic!("no section for {m}"));
        assert_eq!(
            s.find_all(&|n| n.tag == "svg").len(),
            1,
            "{m} has one chart"
        );
        assert!(
            s.find_all(&|n| n.tag == "polyline").len() >= 4,
            "{m}: this year and last year in both halves"
        );
    }
    // sections in the configured order: inputs before outputs
    let order: Vec<&str> = doc
        .find_all(&|n| n.tag == "section" && n.has_class("metric"))
        .iter()
        .map(|n| n.attr("data-metric").unwrap())
        .collect();
    assert_eq!(
        order,
        [
            "sessions",
            "signups",
            "signup_rate",
            "orders",
            "revenue",
            "revenue_per_order"
        ]
    );

    // the box: orders in the week of Mon 3 – Sun 9 March 2025, by hand from the CSV
    let orders = daily_totals("orders");
    let week = sum_between(&orders, "2025-03-03", "2025-03-09");
    let prior = sum_between(&orders, "2025-02-24", "2025-03-02");
    let last_year = sum_between(&orders, "2024-03-04", "2024-03-10"); // 364 days earlier
    let mtd = sum_between(&orders, "2025-03-01", "2025-03-09");
    let mtd_ly = sum_between(&orders, "2024-03-01", "2024-03-09");
    let ytd = sum_between(&orders, "2025-01-01", "2025-03-09");
    let ytd_ly = sum_between(&orders, "2024-01-01", "2024-03-09");
    let o = by_metric["orders"];
    assert_eq!(cell(o, "week"), thousands(week));
    assert_eq!(
        cell(o, "wow"),
        format!("{:+.1}%", (week - prior) / prior * 100.0)
    );
    assert_eq!(
        cell(o, "week-yoy"),
        format!("{:+.1}%", (week - last_year) / last_year * 100.0)
    );
    assert_eq!(cell(o, "mtd"), thousands(mtd));
    assert_eq!(
        cell(o, "mtd-yoy"),
        format!("{:+.1}%", (mtd - mtd_ly) / mtd_ly * 100.0)
    );
    assert_eq!(cell(o, "ytd"), thousands(ytd));
    assert_eq!(
        cell(o, "ytd-yoy"),
        format!("{:+.1}%", (ytd - ytd_ly) / ytd_ly * 100.0)
    );
    // vs plan: March's targets (all regions) pro rata, 7 of 31 days
    let plan = std::fs::read_to_string(root().join("fixtures/demo/plan.csv")).unwrap();
    let march: f64 = plan
        .lines()
        .filter(|l| l.starts_with("2025-03,orders,"))
        .map(|l| l.rsplit(',').next().unwrap().parse::<f64>().unwrap())
        .sum();
    let week_plan = march * 7.0 / 31.0;
    assert_eq!(
        cell(o, "week-plan"),
        format!("{:+.1}%", (week - week_plan) / week_plan * 100.0)
    );
    // a ratio: revenue per order of the week
    let revenue = sum_between(&daily_totals("revenue"), "2025-03-03", "2025-03-09");
    assert_eq!(
        cell(by_metric["revenue_per_order"], "week"),
        format!("£{:.2}", revenue / week)
    );

    // the stored explanation under its metric, as text
    let explained = o
        .find(&|n| n.tag == "li" && n.attr("data-incident") == Some(&promo.id.to_string()))
        .expect("the promotion is listed under orders");
    assert!(explained.has_class("explained"));
    let t = explained.text();
    assert!(
        t.contains(EXPLANATION) && t.contains("known event") && t.contains("Sam Lee"),
        "{t}"
    );
    assert!(
        !page.contains("<b>20% off</b>") && page.contains("&lt;b&gt;20% off&lt;/b&gt;"),
        "the explanation is escaped"
    );
    // the drop nobody explained, visibly
    let open = by_metric["revenue"]
        .find(&|n| n.tag == "li" && n.attr("data-incident") == Some(&unexplained.id.to_string()))
        .expect("the drop is listed under revenue");
    assert!(open.has_class("unexplained"));
    let t = open.text();
    assert!(
        t.contains("not explained (Ana Ortiz, due Tue 11 Mar 10:00)"),
        "{t}"
    );
    // drill-down: one line, slices with incidents first
    let summary = o
        .find(&|n| n.tag == "p" && n.has_class("summary"))
        .unwrap()
        .text();
    assert!(
        summary.starts_with("orders ") && summary.contains(" of 3 regions"),
        "{summary}"
    );
    let first_row = o
        .find(&|n| n.tag == "table" && n.has_class("drill"))
        .unwrap()
        .find(&|n| n.tag == "tr" && n.has_class("flagged"));
    assert!(first_row.is_some(), "a region with an incident is flagged");
    // self-contained: nothing loaded from elsewhere
    for needle in ["<script", "<link", "src=\"http", "href=\"http", "@import"] {
        assert!(!page.contains(needle), "{needle}");
    }
    assert!(
        page.contains("break-before: page"),
        "one metric per printed page"
    );
}

#[test]
fn week_and_date_choose_the_week_and_a_bad_week_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = example_config(dir.path());
    let out_path = dir.path().join("w.html");
    let out = report(&cfg, &out_path, &["--week", "2025-W09", "--at", AT]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let page = std::fs::read_to_string(&out_path).unwrap();
    assert!(page.contains("Mon 24 Feb – Sun 2 Mar 2025"), "week 9");
    let out = report(&cfg, &out_path, &["--date", "2025-02-19", "--at", AT]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let page = std::fs::read_to_string(&out_path).unwrap();
    assert!(
        page.contains("Mon 17 Feb – Sun 23 Feb 2025"),
        "the week of 19 Feb"
    );
    // without a store file, no store is created
    assert!(!dir.path().join("state.db").exists());
    let out = report(&cfg, &out_path, &["--week", "2025-10"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("YYYY-Www"),
        "{}",
        text(&out.stderr)
    );
}

/// Without `--output` the page goes to a file named by its ISO week in the
/// current folder, and its path is printed. A week the exports do not reach
/// (asked for, or today's default week long after the last export) is
/// refused with the newest date and the week asked for, and no page of n/a
/// is written.
#[test]
fn without_output_the_weeks_file_is_written_and_a_week_past_the_data_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = example_config(dir.path());
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_callout"))
            .args(["report", "--config", cfg.to_str().unwrap()])
            .args(args)
            .current_dir(dir.path())
            .env_remove("CALLOUT_LOG")
            .output()
            .unwrap()
    };
    let pages = || {
        let mut v: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".html"))
            .collect();
        v.sort();
        v
    };
    let out = run(&["--at", AT]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("written to `wbr-2025-W10.html`"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(pages(), ["wbr-2025-W10.html"]);
    let page = std::fs::read_to_string(dir.path().join("wbr-2025-W10.html")).unwrap();
    assert!(page.contains("Mon 3 Mar – Sun 9 Mar 2025"), "week 10");

    // the exports end Sunday 9 March: week 12 has no data at all
    let out = run(&["--week", "2025-W12", "--at", "2025-03-24 08:00"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let e = text(&out.stderr);
    for said in [
        "no data in the week asked for, 2025-W12 (Mon 17 Mar – Sun 23 Mar 2025)",
        "the newest data in the exports is dated 2025-03-09",
        "`--date 2025-03-09`",
        "`--at \"2025-03-10 08:00\"`",
    ] {
        assert!(e.contains(said), "missing {said:?} in {e}");
    }
    // today's default week, long after the exports
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("the newest data in the exports is dated 2025-03-09"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(pages(), ["wbr-2025-W10.html"], "no page of n/a written");
    // the week that does hold the newest data, as suggested
    let out = run(&["--date", "2025-03-09", "--at", "2025-03-10 08:00"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("wbr-2025-W10.html")).unwrap(),
        page
    );
}

#[test]
fn metric_names_and_dimension_values_are_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let metric = "<b>gross</b>";
    let region = "<img src=x onerror=alert(1)>";
    let mut csv = String::from("date,metric,region,value\n");
    let start = chrono::NaiveDate::from_ymd_opt(2025, 1, 6).unwrap();
    for i in 0..56 {
        let d = start + chrono::Duration::days(i);
        csv.push_str(&format!("{d},{metric},{region},{}\n", 100 + i % 7));
        csv.push_str(&format!("{d},{metric},eu,{}\n", 50 + i % 5));
    }
    std::fs::write(dir.path().join("x.csv"), csv).unwrap();
    let cfg = dir.path().join("callout.toml");
    std::fs::write(
        &cfg,
        "[store]\npath = \"state.db\"\n\n[[source]]\nname = \"x\"\npath = \"x.csv\"\ntime_column = \"date\"\ndimensions = [\"region\"]\n",
    )
    .unwrap();
    let out_path = dir.path().join("x.html");
    let out = report(&cfg, &out_path, &["--date", "2025-02-26", "--at", AT]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let page = std::fs::read_to_string(&out_path).unwrap();
    assert!(
        !page.contains(metric) && !page.contains(region),
        "raw markup in the page"
    );
    let doc = html::parse(&page);
    let by_metric = sections(&doc);
    let s = by_metric
        .get(metric)
        .expect("the section carries the name as text");
    assert_eq!(s.find(&|n| n.tag == "h3").unwrap().text(), metric);
    let drill = s
        .find(&|n| n.tag == "table" && n.has_class("drill"))
        .unwrap();
    assert!(drill.text().contains(region), "the region is shown as text");
    assert!(doc.find(&|n| n.tag == "img" || n.tag == "b").is_none());
}

/// Debian's Chromium: `chromium` (or `chromium-browser` elsewhere).
fn chromium() -> String {
    for name in ["chromium", "chromium-browser"] {
        if Command::new(name)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return name.to_string();
        }
    }
    panic!("Chromium is needed for this test: apt-get install -y chromium (.ci/run installs it)");
}

#[test]
fn headless_chromium_renders_the_example_report() {
    let browser = chromium();
    let dir = tempfile::tempdir().unwrap();
    let cfg = example_config(dir.path());
    record_incidents(&cfg, dir.path());
    let page = dir.path().join("wbr.html");
    let out = report(&cfg, &page, &["--at", AT]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let png = dir.path().join("wbr.png");
    let pdf = dir.path().join("wbr.pdf");
    let url = format!("file://{}", page.display());
    let run = |extra: &[String]| {
        let out = Command::new(&browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--disable-background-networking",
                "--window-size=1100,1600",
            ])
            .arg(format!(
                "--user-data-dir={}",
                dir.path().join("profile").display()
            ))
            .args(extra)
            .arg(&url)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        out
    };
    run(&[format!("--screenshot={}", png.display())]);
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 10_000);
    run(&[
        format!("--print-to-pdf={}", pdf.display()),
        "--no-pdf-header-footer".into(),
    ]);
    let pdf_bytes = std::fs::read(&pdf).unwrap();
    assert!(pdf_bytes.starts_with(b"%PDF"));
    // one printed page per metric after the overview
    let pdf_text = text(&pdf_bytes);
    let pages = pdf_text.matches("/Type /Page").count() - pdf_text.matches("/Type /Pages").count();
    assert!(pages >= 7, "{pages} page(s)");
    let dom = text(&run(&["--dump-dom".into()]).stdout);
    assert_eq!(
        dom.matches("<svg").count(),
        6,
        "the browser built one chart per metric"
    );
}

/// `callout serve` on a config, killed on drop.
struct Serve(std::process::Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(120)))
        .build()
        .into()
}

fn get(url: &str) -> (u16, String) {
    let mut r = http().get(url).call().unwrap();
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
}

/// The box cells of every metric: (metric, cell) → text.
fn boxes(page: &str) -> BTreeMap<(String, String), String> {
    let doc = html::parse(page);
    let mut out = BTreeMap::new();
    for (m, s) in sections(&doc) {
        for key in [
            "week",
            "wow",
            "week-yoy",
            "week-plan",
            "mtd",
            "mtd-yoy",
            "ytd",
        ] {
            out.insert((m.clone(), key.to_string()), cell(s, key));
        }
    }
    out
}

#[test]
fn the_report_is_served_at_its_signed_link() {
    use callout::links::tokens::{self, Claims, Scope};
    let dir = tempfile::tempdir().unwrap();
    let cfg = example_config(dir.path());
    // without [web] there is no link to give
    let out = callout(&["report", "--config", cfg.to_str().unwrap(), "--link"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("[web]"), "{}", text(&out.stderr));
    // links are made with the public URL; the server binds a port of its own
    // and says which, and requests go there
    let public = "https://callout.example.com";
    let mut toml = std::fs::read_to_string(&cfg).unwrap();
    toml.push_str(&format!(
        "\n[web]\nlisten = \"127.0.0.1:0\"\npublic_url = \"{public}\"\n"
    ));
    std::fs::write(&cfg, toml).unwrap();
    record_incidents(&cfg, dir.path());

    // the link, and the same report as a file
    let file = dir.path().join("wbr.html");
    let out = report(&cfg, &file, &["--link", "--at", AT]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let url = text(&out.stdout).trim().to_string();
    assert!(url.starts_with(&format!("{public}/report/")), "{url}");
    let written = std::fs::read_to_string(&file).unwrap();

    let log = dir.path().join("serve.log");
    let serve = std::process::Command::new(env!("CARGO_BIN_EXE_callout"))
        .args(["serve", "--at", AT, "--config"])
        .arg(&cfg)
        .env("CALLOUT_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // how often the page read the exports (the cache's misses)
    let reads = || {
        std::fs::read_to_string(&log)
            .unwrap()
            .matches("report page: sources read")
            .count()
    };
    let mut serve = Serve(serve);
    let base = common::serving_at(&mut serve.0, &log);
    let url = url.replace(public, &base);
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while http().get(&format!("{base}/healthz")).call().is_err() {
        assert!(serve.0.try_wait().unwrap().is_none(), "serve exited");
        assert!(std::time::Instant::now() < until, "serve not ready");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    let (code, page) = get(&url);
    assert_eq!(code, 200, "{page}");
    assert_eq!(page.matches("<svg").count(), 6, "a chart per metric");
    assert_eq!(
        boxes(&page),
        boxes(&written),
        "the page's numbers are the file's"
    );
    assert!(
        page.contains("For the review on Wed 12 Mar 2025, 10:00"),
        "{page}"
    );

    // an answer given after the first view shows on the next (the sources are cached, the store is not)
    let store = Store::open(&dir.path().join("state.db")).unwrap();
    let promo = store
        .incidents()
        .unwrap()
        .into_iter()
        .find(|i| i.key.metric == "orders" && i.key.dim("region") == Some("us"))
        .unwrap();
    assert!(!page.contains(EXPLANATION) && !page.contains("&lt;b&gt;20% off"));
    store
        .add_explanation(&NewExplanation {
            incident_id: promo.id,
            cause: Cause::KnownEvent,
            persistence: None,
            text: EXPLANATION.into(),
            author: "sam@example.com".into(),
            link_hash: "test".into(),
            created_at: 0,
        })
        .unwrap();
    let (code, page) = get(&url);
    assert_eq!(code, 200);
    assert!(
        page.contains("&lt;b&gt;20% off&lt;/b&gt;"),
        "the new answer, escaped"
    );

    // refused: altered, expired, a report token on an explanation route, an
    // explanation token on the report route
    let token = url.rsplit('/').next().unwrap();
    let mut bad = token.as_bytes().to_vec();
    let i = bad.len() - 2;
    bad[i] = if bad[i] == b'A' { b'B' } else { b'A' };
    let bad = String::from_utf8(bad).unwrap();
    let (code, body) = get(&format!("{base}/report/{bad}"));
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("This link does not work"), "{body}");
    let key = callout::links::key::load(&callout::config::KeySource::Generated(
        dir.path().join("callout-web.key"),
    ))
    .unwrap();
    let at = chrono::NaiveDateTime::parse_from_str(AT, "%Y-%m-%d %H:%M")
        .unwrap()
        .and_utc()
        .timestamp();
    let sign = |scope: Scope, expires_at: i64| {
        tokens::sign(
            &key,
            &Claims {
                scope,
                owner: "WBR".into(),
                expires_at,
            },
        )
    };
    let week = Scope::Report {
        week_start: chrono::NaiveDate::from_ymd_opt(2025, 3, 3).unwrap(),
        review_at: at + 2 * 86_400,
    };
    let (code, body) = get(&format!("{base}/report/{}", sign(week.clone(), at - 3600)));
    assert_eq!(code, 410, "{body}");
    assert!(body.contains("This link has expired"), "{body}");
    let valid = sign(week, at + 30 * 86_400);
    let (code, _) = get(&format!("{base}/report/{valid}"));
    assert_eq!(code, 200);
    assert_eq!(
        reads(),
        1,
        "three views of one week, one read of the exports"
    );
    let (code, _) = get(&format!("{base}/e/{valid}"));
    assert_eq!(code, 403, "a report link opens no explanation page");
    let (code, _) = get(&format!("{base}/e/{valid}/{}", promo.id));
    assert_eq!(code, 403);
    let incident = sign(Scope::Incidents(vec![promo.id]), at + 30 * 86_400);
    let (code, _) = get(&format!("{base}/report/{incident}"));
    assert_eq!(code, 403, "an explanation link opens no report");
    // a run finished since: the next view reads the exports again
    record_incidents(&cfg, dir.path());
    let (code, _) = get(&url);
    assert_eq!(code, 200);
    assert_eq!(reads(), 2);
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(!log_text.contains(token), "no token in the log");
    drop(serve);
}
