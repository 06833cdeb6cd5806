//! A real team's week, black-box: the shipped example config on its Mon–Fri
//! 07:00 cron replayed with `--at` (weekend included), 30-minute data over a
//! weekend, two runs at once on one store (and a daemon beside a run), a
//! relay that refuses for good, an export that comes in empty, and a dry run
//! that must leave the store as it was. Real SMTP server
//! (`tests/smtp_sink.py`), real SQLite file, the real binary.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    reason = "a failed assumption in a test or bench is a failed test"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::common;
use crate::support::sink;
use common::{ClosedPort, root, text};
use sink::{Sink, body_text, messages, point_smtp_at, to_of};

fn callout(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_callout"))
        .args(args)
        .env_remove("CALLOUT_LOG")
        .output()
        .expect("run callout")
}

/// The shipped example config with its store in `dir`, its exports copied
/// into `dir` (so a test may change them), and its SMTP relay on `port`.
fn example_config(dir: &Path, port: u16) -> PathBuf {
    for f in ["shop_daily.csv", "web_daily.csv", "plan.csv"] {
        std::fs::copy(root().join("fixtures/demo").join(f), dir.join(f)).unwrap();
    }
    let shipped = std::fs::read_to_string(root().join("config/callout.toml")).unwrap();
    for expected in [
        "path = \"../callout.db\"",
        "port = 2525",
        "timeout_secs = 30",
    ] {
        assert!(shipped.contains(expected), "{expected}");
    }
    let text = shipped
        .replace("path = \"../callout.db\"", "path = \"state.db\"")
        .replace("\"../fixtures/demo/", &format!("\"{}/", dir.display()))
        .replace("port = 2525", &format!("port = {port}"))
        .replace("host = \"localhost\"", "host = \"127.0.0.1\"")
        .replace("timeout_secs = 30", "timeout_secs = 5")
        .replace("retry_base_secs = 60", "retry_base_secs = 0");
    let p = dir.join("callout.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// A temp folder with the example config and its exports, and its relay:
/// when `listening`, a real SMTP server writing to `inbox`; else a port
/// that refuses connections (held while `closed` lives).
struct Team {
    dir: tempfile::TempDir,
    closed: Option<ClosedPort>,
    inbox: PathBuf,
    sink: Option<Sink>,
    cfg: PathBuf,
}

fn team(listening: bool) -> Team {
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    let sink = listening.then(|| Sink::start(&inbox, &[]));
    let closed = (!listening).then(ClosedPort::new);
    let port = sink
        .as_ref()
        .map(|s| s.port)
        .or(closed.as_ref().map(ClosedPort::port))
        .unwrap();
    let cfg = example_config(dir.path(), port);
    Team {
        dir,
        closed,
        inbox,
        sink,
        cfg,
    }
}

fn run_at(cfg: &Path, at: &str) -> Output {
    callout(&[
        "run",
        "--once",
        "--config",
        cfg.to_str().unwrap(),
        "--at",
        at,
    ])
}

/// The "reported on" lines of a run's summary.
fn reported(out: &Output) -> Vec<String> {
    text(&out.stderr)
        .lines()
        .filter_map(|l| l.split_once("reported on ").map(|(_, r)| r.to_string()))
        .collect()
}

#[test]
fn a_mon_fri_week_reports_every_period_once_and_fridays_promotion_on_monday() {
    let Team {
        dir: _dir,
        inbox,
        sink: _sink,
        cfg,
        ..
    } = team(true);

    // Thursday 07:00, a fresh store: the periods that ended since the
    // previous review (Wed 5 Mar 10:00), i.e. Wednesday.
    let thu = run_at(&cfg, "2025-03-06 07:00");
    assert!(thu.status.success(), "{}", text(&thu.stderr));
    assert_eq!(
        reported(&thu),
        vec![
            "`shop`: 6 series, 1 period(s) each (2025-03-05 .. 2025-03-05)",
            "`web`: 6 series, 1 period(s) each (2025-03-05 .. 2025-03-05)",
        ],
        "{}",
        text(&thu.stderr)
    );
    // Friday 07:00 sees Thursday, and only Thursday.
    let fri = run_at(&cfg, "2025-03-07 07:00");
    assert!(fri.status.success(), "{}", text(&fri.stderr));
    assert_eq!(
        reported(&fri),
        vec![
            "`shop`: 6 series, 1 period(s) each (2025-03-06 .. 2025-03-06)",
            "`web`: 6 series, 1 period(s) each (2025-03-06 .. 2025-03-06)",
        ]
    );
    let before_monday = messages(&inbox).len();
    // Monday 07:00: exactly Friday, Saturday and Sunday of every daily series.
    let mon = run_at(&cfg, "2025-03-10 07:00");
    assert!(mon.status.success(), "{}", text(&mon.stderr));
    assert_eq!(
        reported(&mon),
        vec![
            "`shop`: 6 series, 3 period(s) each (2025-03-07 .. 2025-03-09)",
            "`web`: 6 series, 3 period(s) each (2025-03-07 .. 2025-03-09)",
        ],
        "{}",
        text(&mon.stderr)
    );
    // Friday's promotion (revenue us +68% on 2025-03-07) reaches its owner
    // in Monday's digest.
    let monday: Vec<String> = messages(&inbox)[before_monday..].to_vec();
    let ana: Vec<&String> = monday
        .iter()
        .filter(|m| to_of(m) == "ana@example.com")
        .collect();
    assert_eq!(ana.len(), 1, "one digest for Ana on Monday");
    let body = body_text(ana[0]);
    assert!(
        body.contains("revenue") && body.contains("region=us") && body.contains("2025-03-07"),
        "{body}"
    );
    // The same Monday again: nothing new to report, nothing sent again.
    let sent = messages(&inbox).len();
    let again = run_at(&cfg, "2025-03-10 07:30");
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(reported(&again).is_empty(), "{}", text(&again.stderr));
    assert_eq!(messages(&inbox).len(), sent);
}

/// 30-minute data, five weeks up to Monday 10 Mar 2025 07:00, with a daily
/// shape and a drop to a tenth on Monday 02:30–03:30.
fn half_hourly(dir: &Path) -> PathBuf {
    let start = chrono::NaiveDate::from_ymd_opt(2025, 2, 3)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    let drop_from = chrono::NaiveDate::from_ymd_opt(2025, 3, 10)
        .unwrap()
        .and_hms_opt(2, 30, 0)
        .unwrap();
    let mut seed: u64 = 7;
    let mut out = String::from("time,metric,value\n");
    let mut t = start;
    let end = drop_from + chrono::Duration::hours(5);
    while t < end {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let noise = (seed >> 33) as f64 / f64::from(1u32 << 31) - 0.5;
        let hour =
            f64::from(chrono::Timelike::hour(&t)) + f64::from(chrono::Timelike::minute(&t)) / 60.0;
        let shape = 1.0 + 0.3 * (std::f64::consts::TAU * (hour - 14.0) / 24.0).cos();
        let dropped = t >= drop_from && t <= drop_from + chrono::Duration::hours(1);
        let v = 1000.0 * shape * (1.0 + 0.04 * noise) * if dropped { 0.1 } else { 1.0 };
        out.push_str(&format!(
            "{},checkouts,{v:.1}\n",
            t.format("%Y-%m-%d %H:%M:%S")
        ));
        t += chrono::Duration::minutes(30);
    }
    let p = dir.join("checkouts.csv");
    std::fs::write(&p, out).unwrap();
    p
}

#[test]
fn a_monday_run_after_a_sunday_run_reports_mondays_night_drop_in_30_minute_data() {
    let dir = tempfile::tempdir().unwrap();
    let data = half_hourly(dir.path());
    let cfg = dir.path().join("callout.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[store]
path = "state.db"
[review]
weekday = "wed"
time = "10:00"
timezone = "UTC"
[[source]]
name = "ops"
path = "{}"
time_column = "time"
granularity = "30min"
expected_delay_hours = 1000
[owners]
default = "Ops <ops@example.com>"
"#,
            data.display()
        ),
    )
    .unwrap();
    let sun = run_at(&cfg, "2025-03-09 07:00");
    assert!(sun.status.success(), "{}", text(&sun.stderr));
    let mon = run_at(&cfg, "2025-03-10 07:00");
    assert!(mon.status.success(), "{}", text(&mon.stderr));
    // every half hour from Sunday 07:00 to Monday 06:30, once
    assert_eq!(
        reported(&mon),
        vec!["`ops`: 1 series, 48 period(s) each (2025-03-09T07:00:00 .. 2025-03-10T06:30:00)"],
        "{}",
        text(&mon.stderr)
    );
    let table = text(&mon.stdout);
    assert!(
        ["02:30", "03:00", "03:30"]
            .iter()
            .any(|t| table.contains(&format!("2025-03-10T{t}"))),
        "Monday's 02:30-03:30 drop is reported: {table}"
    );
}

/// Every table's rows as text, table by table (a logical `.dump`).
fn dump(store: &Path) -> String {
    let c =
        rusqlite::Connection::open_with_flags(store, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut out = String::new();
    let tables: Vec<(String, String)> = c
        .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (name, sql) in tables {
        out.push_str(&format!("{sql}\n"));
        let mut st = c.prepare(&format!("SELECT * FROM \"{name}\"")).unwrap();
        let n = st.column_count();
        let rows = st
            .query_map([], |r| {
                Ok((0..n)
                    .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                    .collect::<Vec<_>>()
                    .join("|"))
            })
            .unwrap();
        for row in rows {
            out.push_str(&row.unwrap());
            out.push('\n');
        }
    }
    let v: i64 = c
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    out.push_str(&format!("user_version {v}\n"));
    out
}

#[test]
fn a_dry_run_leaves_the_store_as_it_was_and_lists_what_it_wrote() {
    let Team { dir, cfg, .. } = team(false);
    let store = dir.path().join("state.db");
    // on a store that does not exist yet: works, creates nothing
    let fresh = dir.path().join("dry-fresh");
    let out = callout(&[
        "run",
        "--once",
        "--config",
        cfg.to_str().unwrap(),
        "--at",
        "2025-03-10 07:00",
        "--dry-run",
        fresh.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!store.exists(), "a dry run created the store");
    let listed: Vec<String> = std::fs::read_dir(&fresh)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".eml"))
        .collect();
    assert!(!listed.is_empty());
    let said = text(&out.stderr);
    assert!(
        said.contains(&format!("{} digest(s) written", listed.len()))
            && !said.contains("0 digest(s) queued"),
        "{said}"
    );
    for name in &listed {
        assert!(said.contains(name.as_str()), "lists {name}: {said}");
    }
    // on a store a real week wrote (relay down: digests queued, not sent)
    for at in ["2025-03-06 07:00", "2025-03-07 07:00"] {
        let _ = run_at(&cfg, at);
    }
    let before = dump(&store);
    let dry = dir.path().join("dry");
    let out = callout(&[
        "run",
        "--once",
        "--config",
        cfg.to_str().unwrap(),
        "--at",
        "2025-03-10 07:00",
        "--dry-run",
        dry.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(dump(&store), before, "the dry run changed the store");
    // and the real Monday run still reports Friday to Sunday
    let mon = run_at(&cfg, "2025-03-10 07:00");
    assert!(
        reported(&mon)
            .iter()
            .all(|l| l.contains("3 period(s) each (2025-03-07 .. 2025-03-09)")),
        "{}",
        text(&mon.stderr)
    );
}

#[test]
fn a_refused_digest_is_given_up_listed_and_requeued() {
    let Team {
        dir: _dir,
        inbox,
        sink: _sink,
        cfg,
        ..
    } = team(true);
    // Ana's mailbox is refused for good by the relay (550)
    let t = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("ana@example.com", "reject-ana@example.com");
    std::fs::write(&cfg, t).unwrap();
    let c = cfg.to_str().unwrap();
    let first = run_at(&cfg, "2025-03-10 07:00");
    assert_eq!(first.status.code(), Some(1), "{}", text(&first.stderr));
    assert!(
        text(&first.stderr).contains("mailbox unavailable"),
        "the server's words: {}",
        text(&first.stderr)
    );
    let delivered = messages(&inbox).len();
    assert!(delivered > 0, "the other owners' digests went out");
    // later runs do not retry it and do not fail, but keep listing it
    // (before the reminder window opens on Monday 10:00)
    for at in ["2025-03-10 08:00", "2025-03-10 09:00"] {
        let later = run_at(&cfg, at);
        assert!(later.status.success(), "{}", text(&later.stderr));
        assert!(
            text(&later.stderr).contains("1 message(s) undeliverable"),
            "{}",
            text(&later.stderr)
        );
    }
    assert_eq!(messages(&inbox).len(), delivered);
    let list = callout(&["outbox", "--config", c]);
    assert!(list.status.success());
    let listing = text(&list.stdout);
    let line = listing
        .lines()
        .find(|l| l.contains("reject-ana@example.com"))
        .unwrap_or_else(|| panic!("{listing}"));
    assert!(line.contains("given up") && line.contains("550"), "{line}");
    let id = line.split('\t').next().unwrap();
    let requeue = callout(&["outbox", "--config", c, "--requeue", id]);
    assert!(requeue.status.success(), "{}", text(&requeue.stderr));
    assert!(text(&requeue.stdout).contains(&format!("re-queued message {id}")));
    // tried again by the next run (and refused again: that run exits 1)
    let retry = run_at(&cfg, "2025-03-10 09:30");
    assert_eq!(retry.status.code(), Some(1), "{}", text(&retry.stderr));
    let bad = callout(&["outbox", "--config", c, "--requeue", "999999"]);
    assert_eq!(bad.status.code(), Some(1));
}

#[test]
fn an_export_that_comes_in_empty_is_an_item_for_the_sources_owner() {
    let Team {
        dir,
        inbox,
        sink: _sink,
        cfg,
        ..
    } = team(true);
    let good = run_at(&cfg, "2025-03-07 07:00");
    assert!(good.status.success(), "{}", text(&good.stderr));
    let before = messages(&inbox).len();
    std::fs::write(
        dir.path().join("web_daily.csv"),
        "date,region,sessions,signups\n",
    )
    .unwrap();
    let empty = run_at(&cfg, "2025-03-10 07:00");
    assert_eq!(empty.status.code(), Some(1), "{}", text(&empty.stderr));
    let to_data: Vec<String> = messages(&inbox)[before..]
        .iter()
        .filter(|m| to_of(m) == "data@example.com")
        .map(|m| body_text(m))
        .collect();
    assert_eq!(to_data.len(), 1, "one digest for the source's owner");
    assert!(
        to_data[0].contains("web_daily.csv") && to_data[0].contains("empty"),
        "names the file and the error: {}",
        to_data[0]
    );
    // the other source was still evaluated and reported on
    assert!(
        reported(&empty).iter().any(|l| l.starts_with("`shop`")),
        "{}",
        text(&empty.stderr)
    );
    // the same problem the next day: not asked again
    let n = messages(&inbox).len();
    let next = run_at(&cfg, "2025-03-11 07:00");
    assert_eq!(next.status.code(), Some(1));
    let again: Vec<String> = messages(&inbox)[n..]
        .iter()
        .filter(|m| to_of(m) == "data@example.com")
        .map(|m| sink::subject(m))
        .collect();
    assert!(
        again.iter().all(|s| s.starts_with("[callout] Reminder")),
        "one item per problem, not one per run (a reminder before the deadline is fine): {again:?}"
    );
}

/// Queue Monday's digests while the relay is down; returns how many.
fn queue_during_outage(cfg: &Path) -> usize {
    let down = run_at(cfg, "2025-03-10 07:00");
    assert_eq!(down.status.code(), Some(1), "{}", text(&down.stderr));
    let c = rusqlite::Connection::open(cfg.parent().unwrap().join("state.db")).unwrap();
    c.query_row(
        "SELECT count(*) FROM outbox WHERE sent_at IS NULL",
        [],
        |r| r.get::<_, i64>(0),
    )
    .unwrap() as usize
}

#[test]
fn two_runs_at_once_deliver_each_digest_once() {
    for trial in 0..3 {
        let Team {
            dir: _dir,
            closed: _closed,
            inbox,
            cfg,
            ..
        } = team(false);
        let queued = queue_during_outage(&cfg);
        assert!(queued >= 3, "{queued}");
        let sink = Sink::start(&inbox, &[]);
        point_smtp_at(&cfg, sink.port);
        let c = cfg.to_str().unwrap();
        let spawn = || {
            Command::new(env!("CARGO_BIN_EXE_callout"))
                .args(["run", "--once", "--config", c, "--at", "2025-03-10 07:10"])
                .env_remove("CALLOUT_LOG")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (spawn(), spawn());
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        let got = messages(&inbox);
        assert_eq!(
            got.len(),
            queued,
            "trial {trial}: every queued digest once\nA: {}\nB: {}",
            text(&a.stderr),
            text(&b.stderr)
        );
        let mut tos: Vec<String> = got.iter().map(|m| to_of(m)).collect();
        tos.sort();
        tos.dedup();
        assert_eq!(tos.len(), queued, "no recipient twice: {tos:?}");
        // both succeed, and together they account for every digest
        for o in [&a, &b] {
            assert!(o.status.success(), "{}", text(&o.stderr));
        }
        let sent_by = |o: &Output| -> usize {
            let s = text(&o.stderr);
            let line = s
                .lines()
                .find(|l| l.contains(" sent, "))
                .unwrap_or_else(|| panic!("{s}"));
            let before = line.split(" sent, ").next().unwrap();
            before.rsplit(' ').next().unwrap().parse().unwrap()
        };
        assert_eq!(
            sent_by(&a) + sent_by(&b),
            queued,
            "{} / {}",
            text(&a.stderr),
            text(&b.stderr)
        );
    }
}

#[test]
fn a_daemon_and_a_run_at_once_deliver_each_digest_once() {
    let Team {
        dir: _dir,
        closed: _closed,
        inbox,
        cfg,
        ..
    } = team(false);
    let queued = queue_during_outage(&cfg);
    // the daemon fires every second on the real clock: the exports hold
    // nothing newer for it to report, so it only delivers
    let t = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("cron = [\"0 0 7 * * Mon-Fri\"]", "cron = [\"* * * * * *\"]")
        .replace(
            "expected_delay_hours = 24",
            "expected_delay_hours = 1000000",
        )
        .replace("hours_before_deadline = 24", "hours_before_deadline = 0")
        .replace(
            "escalate_to = \"WBR organisers <wbr-leads@example.com>\"",
            "",
        );
    std::fs::write(&cfg, t).unwrap();
    let sink = Sink::start(&inbox, &[]);
    point_smtp_at(&cfg, sink.port);
    let c = cfg.to_str().unwrap();
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_callout"))
        .args(["run", "--config", c])
        .env_remove("CALLOUT_LOG")
        .env_remove("CALLOUT_RUN_AT_START")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let once = callout(&["run", "--once", "--config", c, "--at", "2025-03-10 07:10"]);
    let give_up = Instant::now() + Duration::from_secs(120);
    while messages(&inbox).len() < queued && Instant::now() < give_up {
        std::thread::sleep(Duration::from_millis(100));
    }
    // a few more daemon cycles: nothing is sent again
    std::thread::sleep(Duration::from_secs(3));
    let _ = Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status();
    let _ = daemon.wait();
    assert!(once.status.success(), "{}", text(&once.stderr));
    let got = messages(&inbox);
    assert_eq!(got.len(), queued, "every queued digest once");
    let mut tos: Vec<String> = got.iter().map(|m| to_of(m)).collect();
    tos.sort();
    tos.dedup();
    assert_eq!(tos.len(), queued);
}

#[test]
fn an_incident_reads_the_same_in_its_digest_and_in_the_pre_read() {
    let dir = tempfile::tempdir().unwrap();
    let out = callout(&["demo", "--out", dir.path().join("demo").to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let demo = dir.path().join("demo");
    let ana = std::fs::read_to_string(demo.join("digests/01-ana_example.com.eml")).unwrap();
    let body = body_text(&ana);
    // the apac revenue level shift: its worst finding, with its span and unit
    let item = body
        .split("revenue (region=apac)")
        .nth(1)
        .unwrap_or_else(|| panic!("{body}"));
    assert!(
        item.contains(
            "2025-03-04 to 2025-03-06 (3 periods flagged; figures of the worst, 2025-03-06)"
        ),
        "{item}"
    );
    assert!(
        item.contains("Actual:    £41,104 vs expected £62,824"),
        "{item}"
    );
    assert!(item.contains("-34.6%"), "{item}");
    assert!(item.contains("Check:     level_shift"), "{item}");
    // the pre-read says the same: series label, span, worst day, figures, check
    let page = std::fs::read_to_string(demo.join("report.html")).unwrap();
    let flat = page.replace("&nbsp;", " ");
    let line = flat
        .split("revenue (region=apac)</strong>")
        .nth(1)
        .unwrap_or_else(|| panic!("no apac revenue incident in the pre-read"));
    let line = &line[..line.find("</li>").unwrap()];
    for want in [
        "Tue 4 Mar to Thu 6 Mar (worst Thu 6 Mar)",
        "£41,104 vs £62,824 expected (-34.6%)",
        "level_shift",
    ] {
        assert!(line.contains(want), "{want}: {line}");
    }
    // the repeated sessions value is one data problem for the export's owner
    let data = std::fs::read_to_string(demo.join("digests/02-data_example.com.eml")).unwrap();
    assert_eq!(
        sink::subject(&data),
        "[callout] data problem: sessions (region=eu) stale"
    );
    let web = std::fs::read_dir(demo.join("digests"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .map(|p| body_text(&std::fs::read_to_string(p).unwrap()))
        .filter(|b| b.contains("sessions (region=eu)"))
        .count();
    assert_eq!(web, 1, "asked once, not also as a seasonal outlier");
}

#[test]
fn after_long_downtime_a_run_asks_about_the_last_two_weeks_and_says_what_it_skipped() {
    let Team {
        dir: _dir,
        inbox,
        sink: _sink,
        cfg,
        ..
    } = team(true);
    let first = run_at(&cfg, "2025-02-06 07:00");
    assert!(first.status.success(), "{}", text(&first.stderr));
    let before = messages(&inbox).len();
    // callout was down from Thursday 6 February to Monday 10 March
    let back = run_at(&cfg, "2025-03-10 07:00");
    assert!(back.status.success(), "{}", text(&back.stderr));
    // 6-23 Feb (18 days) are beyond the 14-day bound: skipped, counted
    assert_eq!(
        reported(&back),
        vec![
            "`shop`: 6 series, 14 period(s) each (2025-02-24 .. 2025-03-09); 108 older period(s) beyond the catch-up bound skipped, not asked about",
            "`web`: 6 series, 14 period(s) each (2025-02-24 .. 2025-03-09); 108 older period(s) beyond the catch-up bound skipped, not asked about",
        ],
        "{}",
        text(&back.stderr)
    );
    let digests = &messages(&inbox)[before..];
    assert!(!digests.is_empty());
    for d in digests {
        let body = body_text(d);
        assert!(
            body.contains(
                "216 older period(s) (108 in `shop`, 108 in `web`) were recorded without asking"
            ),
            "{body}"
        );
    }
}
