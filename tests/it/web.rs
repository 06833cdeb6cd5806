//! The web server over real TCP: `callout serve` (and the daemon) against a
//! real SQLite store filled by a real `callout backfill --store`, requests with
//! a real HTTP client, and the page rendered by a real headless Chromium.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    reason = "a failed assumption in a test or bench is a failed test"
)]

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use callout::config::KeySource;
use callout::links::tokens::{self, Claims, Key, Scope};
use callout::model::Cause;
use callout::store::Store;

use crate::support::common;
use common::root;

/// A metric name that is also markup: it must be shown, never interpreted.
const HTML_METRIC: &str = "<img src=x onerror=alert(1)>signups";
const OWNER: &str = "Ana Ortiz <ana@example.com>";
/// `[web] public_url`: only in links signed for mail (none here) and in the
/// line that says where the server answers; requests go to that address.
const PUBLIC_URL: &str = "https://callout.example.com";

/// A daily series with a weekly shape and deterministic noise, and a spike on
/// its last day, for the metric [`HTML_METRIC`].
fn write_series(path: &Path) {
    let mut csv = String::from("date,metric,region,value\n");
    let start = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    let mut seed: u64 = 7;
    let days = 200;
    for d in 0..days {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let noise = ((seed >> 33) % 41) as f64 - 20.0;
        let weekly = [0.0, 30.0, 40.0, 35.0, 20.0, -60.0, -80.0][d % 7];
        let mut v = 1000.0 + weekly + noise;
        if d == days - 1 {
            v *= 1.9;
        }
        let date = start + chrono::Duration::days(d as i64);
        // the metric name holds a comma-free HTML tag; quote it for CSV anyway
        csv.push_str(&format!("{date},\"{HTML_METRIC}\",eu,{v:.0}\n"));
    }
    std::fs::write(path, csv).unwrap();
}

/// A config in `dir` over the generated series and the shipped daily fixture,
/// with `[web]` on a port the server picks (it says which: [`Proc::serving_at`])
/// and a generated key beside the store.
fn setup(dir: &Path) -> PathBuf {
    write_series(&dir.join("signups.csv"));
    let fixture = root().join("fixtures").join("shop_daily.csv");
    let cfg = format!(
        r#"[store]
path = "state.db"

[schedule]
cron = "0 0 7 * * *"

[review]
weekday = "wed"
time = "10:00"

[[source]]
name = "signups"
path = "signups.csv"
time_column = "date"
dimensions = ["region"]
granularity = "day"

[[source]]
name = "shop"
path = "{}"
time_column = "date"
dimensions = ["region"]
granularity = "day"

[owners]
default = "{OWNER}"

[web]
listen = "127.0.0.1:0"
public_url = "{PUBLIC_URL}"
"#,
        fixture.display()
    );
    let p = dir.join("callout.toml");
    std::fs::write(&p, cfg).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_callout"))
        .args(["backfill", "--quiet", "--store", "--config"])
        .arg(&p)
        .arg("--output")
        .arg(dir.join("findings.csv"))
        .env_remove("CALLOUT_LOG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "backfill: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    p
}

/// A running `callout` process whose stderr goes to a file; killed on drop.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn start(args: &[&str], config: &Path, log: PathBuf, env: &[(&str, &str)]) -> Proc {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_callout"));
        cmd.args(args)
            .arg("--config")
            .arg(config)
            .env("CALLOUT_LOG", "debug")
            .env_remove("CALLOUT_RUN_AT_START")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        Proc {
            child: cmd.spawn().unwrap(),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Where its web server answers, once it says so.
    fn serving_at(&mut self) -> String {
        common::serving_at(&mut self.child, &self.log)
    }

    /// SIGTERM, then wait (bounded, so a hang fails instead of blocking CI).
    fn stop(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < until, "did not stop: {}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// Status and body of a GET.
fn get(url: &str) -> (u16, String) {
    let mut r = agent().get(url).call().unwrap();
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
}

/// Status and body of a form POST.
fn post(url: &str, form: &[(&str, &str)]) -> (u16, String) {
    let mut r = agent().post(url).send_form(form.iter().copied()).unwrap();
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
}

/// Wait until the server answers `/healthz` (readiness, not a timing assertion).
fn wait_ready(base: &str, p: &mut Proc) {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        if agent().get(&format!("{base}/healthz")).call().is_ok() {
            return;
        }
        if let Some(s) = p.child.try_wait().unwrap() {
            panic!("exited {s}: {}", p.log());
        }
        assert!(Instant::now() < until, "server not ready: {}", p.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn key(dir: &Path) -> Key {
    callout::links::key::load(&KeySource::Generated(dir.join("callout-web.key"))).unwrap()
}

fn token(k: &Key, scope: Scope, expires_in_secs: i64) -> String {
    tokens::sign(
        k,
        &Claims {
            scope,
            owner: OWNER.into(),
            expires_at: chrono::Utc::now().timestamp() + expires_in_secs,
        },
    )
}

/// The open incident of the generated series (its last-day spike).
fn spike_incident(dir: &Path) -> i64 {
    let s = Store::open(&dir.join("state.db")).unwrap();
    let all = s.incidents().unwrap();
    all.iter()
        .find(|i| i.key.metric == HTML_METRIC && i.closed_at_ts.is_none())
        .unwrap_or_else(|| panic!("no open incident for the spike among {all:#?}"))
        .id
}

#[test]
fn signed_links_pages_form_health_and_metrics_over_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup(dir.path());
    let mut server = Proc::start(&["serve"], &cfg, dir.path().join("serve.log"), &[]);
    let base = server.serving_at();
    wait_ready(&base, &mut server);
    let k = key(dir.path());
    let id = spike_incident(dir.path());

    // the page of one incident: metric shown (escaped), numbers, chart, form
    let t = token(&k, Scope::Incidents(vec![id]), 3600);
    let (code, page) = get(&format!("{base}/e/{t}"));
    assert_eq!(code, 200, "{page}");
    assert!(
        page.contains("&lt;img src=x onerror=alert(1)&gt;signups"),
        "metric escaped: {page}"
    );
    assert!(!page.contains("<img"), "no markup from the metric name");
    assert!(page.contains("region=eu") && page.contains("Year over year"));
    assert_eq!(
        page.matches("<svg").count(),
        2,
        "6-week and 12-month charts"
    );
    assert!(page.contains("<form method=\"post\"") && page.contains("name=\"cause\""));

    // refused links
    let mut tampered = t.clone().into_bytes();
    let i = tampered.len() - 3;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let (code, body) = get(&format!("{base}/e/{tampered}"));
    assert_eq!(code, 403, "{body}");
    let (code, body) = get(&format!(
        "{base}/e/{}",
        token(&k, Scope::Incidents(vec![id]), -60)
    ));
    assert_eq!(code, 410);
    assert!(body.contains("This link has expired"), "{body}");
    let (code, _) = get(&format!(
        "{base}/e/{}",
        token(&k, Scope::Incidents(vec![999_999]), 3600)
    ));
    assert_eq!(code, 404);
    let other = Store::open(&dir.path().join("state.db"))
        .unwrap()
        .incidents()
        .unwrap()
        .into_iter()
        .find(|i| i.id != id)
        .unwrap()
        .id;
    let (code, _) = get(&format!("{base}/e/{t}/{other}"));
    assert_eq!(code, 403, "a link for one incident does not open another");
    let (code, _) = get(&format!("{base}/nothing-here"));
    assert_eq!(code, 404);

    // the form: invalid → 422 and nothing stored; valid → stored once, escaped when shown
    let url = format!("{base}/e/{t}");
    let (code, body) = post(&url, &[("cause", "known_event"), ("text", "   ")]);
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("Write what happened"));
    let text = "Launch day <script>alert(\"x\")</script> & promo";
    let form = [
        ("cause", "known_event"),
        ("persistence", ""),
        ("text", text),
    ];
    let (code, body) = post(&url, &form);
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("Thank you, your explanation is saved"),
        "{body}"
    );
    let (code, body) = post(&url, &form);
    assert_eq!(code, 200);
    assert!(
        body.contains("Already saved"),
        "resubmit is idempotent: {body}"
    );
    let store = Store::open(&dir.path().join("state.db")).unwrap();
    let rows = store.explanation_history(id).unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (
            rows[0].cause,
            rows[0].text.as_str(),
            rows[0].author.as_str()
        ),
        (Cause::KnownEvent, text, OWNER)
    );
    assert_eq!(rows[0].link_hash, tokens::token_hash(&t));
    let (_, page) = get(&url);
    assert!(
        page.contains("Launch day &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; promo"),
        "{page}"
    );
    assert!(!page.contains("<script>"));
    assert!(page.contains("explained"));

    // an edit keeps the history
    let (code, _) = post(
        &url,
        &[("cause", "business_change"), ("text", "A new partner")],
    );
    assert_eq!(code, 200);
    assert_eq!(store.explanation_history(id).unwrap().len(), 2);
    assert_eq!(
        store.latest_explanation(id).unwrap().unwrap().cause,
        Cause::BusinessChange
    );

    // request bodies are limited: refused with 413 as soon as the server
    // sees the length (it may close the socket while the client still writes
    // the body, which the client sees as a broken pipe: refused too)
    let big = format!(
        "cause=known_event&text={}",
        "a".repeat(callout::web::MAX_BODY_BYTES + 1024)
    );
    match agent()
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .send(big.as_bytes())
    {
        Ok(r) => assert_eq!(r.status().as_u16(), 413),
        Err(ureq::Error::Io(e)) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            ),
            "{e}"
        ),
        Err(e) => panic!("{e}"),
    }
    assert_eq!(store.explanation_history(id).unwrap().len(), 2);

    // "all my open items" lists the owner's incidents and links to each page
    let all = token(&k, Scope::OpenItems, 3600);
    let (code, list) = get(&format!("{base}/e/{all}"));
    assert_eq!(code, 200, "{list}");
    assert!(list.contains(&format!("href=\"{all}/{id}\"")), "{list}");
    let (code, item) = get(&format!("{base}/e/{all}/{id}"));
    assert_eq!(code, 200);
    assert!(item.contains("A new partner") && item.contains(&format!("href=\"../{all}\"")));
    let (code, _) = post(
        &format!("{base}/e/{all}/{id}"),
        &[("cause", "business_change"), ("text", "A new partner")],
    );
    assert_eq!(code, 200, "posting from the list page works too");
    assert_eq!(
        store.explanation_history(id).unwrap().len(),
        2,
        "same answer, no new row"
    );

    // /metrics: valid Prometheus text with what happened above
    let (code, m) = get(&format!("{base}/metrics"));
    assert_eq!(code, 200);
    let samples = parse_prometheus(&m);
    assert_eq!(samples["callout_incidents_explained"], 1.0, "{m}");
    assert_eq!(
        samples["callout_runs_total{outcome=\"ok\"}"], 1.0,
        "the backfill run: {m}"
    );
    assert!(samples["callout_incidents_open"] >= 1.0);
    assert!(
        samples
            .keys()
            .any(|k| k.starts_with("callout_findings_total{check=")),
        "{m}"
    );
    assert!(samples.contains_key("callout_outbox_depth"));

    // /healthz: no scheduled run yet and none due since the server started → 200;
    // a scheduled run stuck for hours → 503
    let (code, h) = get(&format!("{base}/healthz"));
    assert_eq!(code, 200, "{h}");
    let v: serde_json::Value = serde_json::from_str(&h).unwrap();
    assert_eq!(v["status"], "ok");
    store
        .begin_run(
            callout::store::RunKind::Run,
            chrono::Utc::now() - chrono::Duration::hours(5),
        )
        .unwrap();
    let (code, h) = get(&format!("{base}/healthz"));
    assert_eq!(code, 503, "{h}");
    assert!(h.contains("has not finished"), "{h}");

    // shutdown is clean, and no token ever reached the log
    assert!(server.stop().success(), "{}", server.log());
    let log = server.log();
    assert!(
        log.contains("http request") && log.contains("/e/{token}"),
        "{log}"
    );
    for tok in [&t, &tampered, &all] {
        assert!(!log.contains(tok.as_str()), "token in the log: {log}");
        assert!(!log.contains(&tok[..20]), "token in the log: {log}");
    }
}

/// Prometheus text → sample (`name{labels}`) → value; panics on a line that is
/// not a sample, a HELP or a TYPE, and on a sample whose family lacks them.
fn parse_prometheus(text: &str) -> std::collections::HashMap<String, f64> {
    let mut helped = std::collections::HashSet::new();
    let mut typed = std::collections::HashSet::new();
    let mut out = std::collections::HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap();
            assert!(!help.is_empty());
            helped.insert(name.to_string());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["counter", "gauge"].contains(&kind), "{line}");
            assert!(helped.contains(name), "TYPE before HELP: {line}");
            typed.insert(name.to_string());
        } else {
            let (sample, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("bad line {line:?}"));
            let name = sample.split('{').next().unwrap();
            assert!(name.starts_with("callout_"), "{line}");
            assert!(
                name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{line}"
            );
            if let Some(labels) = sample.strip_prefix(name) {
                assert!(
                    labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')),
                    "{line}"
                );
            }
            assert!(typed.contains(name), "sample without TYPE: {line}");
            out.insert(sample.to_string(), value.parse::<f64>().unwrap());
        }
    }
    out
}

/// `callout serve` says where it answers once it is bound: the real port
/// when `listen` asks for port 0, and the public URL links are made with.
#[test]
fn serve_says_where_it_listens_once_bound() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("callout.toml");
    std::fs::write(
        &cfg,
        "[store]\npath = \"state.db\"\n\n[[source]]\nname = \"s\"\npath = \"s.csv\"\n\n[web]\nlisten = \"127.0.0.1:0\"\npublic_url = \"https://callout.example.com\"\n",
    )
    .unwrap();
    let mut server = Proc::start(&["serve"], &cfg, dir.path().join("serve.log"), &[]);
    let until = Instant::now() + Duration::from_secs(60);
    let line = loop {
        if let Some(l) = server.log().lines().find(|l| l.starts_with("serving on ")) {
            break l.to_string();
        }
        if let Some(s) = server.child.try_wait().unwrap() {
            panic!("exited {s}: {}", server.log());
        }
        assert!(Instant::now() < until, "nothing said: {}", server.log());
        std::thread::sleep(Duration::from_millis(50));
    };
    let (url, public) = line
        .strip_prefix("serving on ")
        .and_then(|l| l.split_once(' '))
        .unwrap_or_else(|| panic!("{line}"));
    assert_eq!(public, "(public URL https://callout.example.com)", "{line}");
    let port: u16 = url
        .strip_prefix("http://127.0.0.1:")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert_ne!(port, 0, "the bound port, not the one asked for");
    // the address said is the one that answers
    let (code, body) = get(&format!("{url}/healthz"));
    assert!(code == 200 || code == 503, "{code} {body}");
    assert!(body.contains("\"status\""), "{body}");
    assert_eq!(server.log().matches("serving on").count(), 1);
    assert!(server.stop().success(), "{}", server.log());
}

#[test]
fn daemon_serves_the_web_beside_the_scheduler_and_stops_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup(dir.path());
    let mut daemon = Proc::start(
        &["run"],
        &cfg,
        dir.path().join("run.log"),
        &[("CALLOUT_RUN_AT_START", "1")],
    );
    let base = daemon.serving_at();
    wait_ready(&base, &mut daemon);
    assert!(
        daemon.log().contains(&format!(
            "web server: serving on {base} (public URL {PUBLIC_URL})"
        )),
        "{}",
        daemon.log()
    );
    // healthy once the start-up run completed (the daemon's run is recorded as mode "run")
    let until = Instant::now() + Duration::from_secs(120);
    let body = loop {
        let (code, body) = get(&format!("{base}/healthz"));
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        if code == 200 && v["detail"] == "the last scheduled run completed" {
            break v;
        }
        assert!(
            Instant::now() < until,
            "no completed run: {body} {}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        body["next_run_due"].as_str().unwrap().contains("T07:00:00"),
        "{body}"
    );
    let id = spike_incident(dir.path());
    let t = token(&key(dir.path()), Scope::Incidents(vec![id]), 3600);
    let (code, _) = get(&format!("{base}/e/{t}"));
    assert_eq!(code, 200);
    assert!(daemon.stop().success(), "{}", daemon.log());
    assert!(
        agent().get(&format!("{base}/healthz")).call().is_err(),
        "the web server stopped with the daemon"
    );
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
fn headless_chromium_renders_the_chart_and_the_form() {
    let browser = chromium();
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup(dir.path());
    let mut server = Proc::start(&["serve"], &cfg, dir.path().join("serve.log"), &[]);
    let base = server.serving_at();
    wait_ready(&base, &mut server);
    let id = spike_incident(dir.path());
    let url = format!(
        "{base}/e/{}",
        token(&key(dir.path()), Scope::Incidents(vec![id]), 3600)
    );
    let profile = dir.path().join("chromium-profile");
    let mut child = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--dump-dom", &url])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut dom = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut dom)
        .unwrap();
    assert!(child.wait().unwrap().success());
    // the DOM as the browser built it: the SVG chart parsed as SVG, the form with its fields
    assert!(dom.contains("<svg") && dom.contains("<polyline"), "{dom}");
    assert!(
        dom.contains("class=\"mark\""),
        "the outlier is marked: {dom}"
    );
    assert!(
        dom.contains("<form method=\"post\"") && dom.contains("<textarea"),
        "{dom}"
    );
    assert!(
        dom.contains("&lt;img src=x onerror=alert(1)&gt;signups"),
        "{dom}"
    );
    // a parsed element would be serialised with quoted attributes
    assert!(
        !dom.contains("<img src=\"x\""),
        "the metric name did not become an element"
    );
    assert!(server.stop().success());
}
