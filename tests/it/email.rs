//! Black-box tests of owner alerts: the binary, a real SQLite file and a real
//! SMTP server (tests/smtp_sink.py, aiosmtpd) over TCP.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    reason = "a failed assumption in a test or bench is a failed test"
)]

use mail_parser::MimeHeaders;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::common;
use crate::support::sink;
use common::{ClosedPort, root, serving_at, text};
use sink::{Sink, point_smtp_at};

/// Received messages, parsed: (recipient header, subject, text body, html body, raw).
fn received(dir: &Path) -> Vec<(String, String, String, String, String)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "eml"));
    files.sort();
    files
        .iter()
        .map(|p| {
            let raw = std::fs::read(p).unwrap();
            let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
            let to = m
                .to()
                .and_then(|a| a.first())
                .and_then(|a| a.address())
                .unwrap_or_default()
                .to_string();
            (
                to,
                m.subject().unwrap_or_default().to_string(),
                m.body_text(0).unwrap_or_default().to_string(),
                m.body_html(0).unwrap_or_default().to_string(),
                text(&raw),
            )
        })
        .collect()
}

/// Data ending on the spike day of the fixture, so the latest point is an outlier.
fn data_until(dir: &Path, last: &str) -> PathBuf {
    let full = std::fs::read_to_string(root().join("fixtures/shop_daily.csv")).unwrap();
    let cut: String = full
        .lines()
        .enumerate()
        .filter(|(i, l)| *i == 0 || l[..10] <= *last)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    let p = dir.join("shop.csv");
    std::fs::write(&p, cut).unwrap();
    p
}

fn config(dir: &Path, data: &Path, port: u16) -> PathBuf {
    config_with(
        dir,
        data,
        port,
        "expected_delay_hours = 1000000",
        "retry_base_secs = 0",
    )
}

/// The test config with extra lines in `[[source]]` and `[alerts]`.
fn config_with(dir: &Path, data: &Path, port: u16, source: &str, alerts: &str) -> PathBuf {
    let p = dir.join("callout.toml");
    std::fs::write(
        &p,
        format!(
            r#"
[store]
path = "state.db"

[review]
weekday = "wed"
time = "10:00"
timezone = "Europe/London"
explanations_due_hours = 24

[[source]]
name = "shop"
path = "{}"
dimensions = ["region"]
{source}

[owners]
default = "Team <team@example.com>"

[[owners.rule]]
match = "orders"
where = {{ region = "eu" }}
email = "Sam <sam@example.com>"

[smtp]
host = "127.0.0.1"
port = {port}
security = "none"
from = "callout <callout@example.com>"
list_id = "wbr.example.com"
timeout_secs = 5

[alerts]
{alerts}
"#,
            data.display()
        ),
    )
    .unwrap();
    p
}

fn callout(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_callout"))
        .args(args)
        .output()
        .unwrap()
}

/// A temp dir with data ending on the fixture's spike day and a config
/// whose SMTP relay is a sink (when `listening`) or a port that refuses
/// connections (held while `closed` lives; a test brings a relay up with
/// [`point_smtp_at`]).
struct Setup {
    dir: tempfile::TempDir,
    closed: Option<ClosedPort>,
    inbox: PathBuf,
    cfg: PathBuf,
    sink: Option<Sink>,
}

fn setup(listening: bool) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    let sink = listening.then(|| Sink::start(&inbox, &[]));
    let closed = (!listening).then(ClosedPort::new);
    let port = sink
        .as_ref()
        .map(|s| s.port)
        .or(closed.as_ref().map(ClosedPort::port))
        .unwrap();
    let cfg = config(dir.path(), &data_until(dir.path(), "2024-05-15"), port);
    Setup {
        dir,
        closed,
        inbox,
        cfg,
        sink,
    }
}

#[test]
fn run_once_mails_each_owner_once_and_never_twice() {
    let Setup {
        dir: _dir,
        inbox,
        cfg,
        sink: _sink,
        ..
    } = setup(true);
    let out = callout(&["run", "--once", "--config", cfg.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let msgs = received(&inbox);
    assert_eq!(
        msgs.len(),
        1,
        "one digest for the one owner with news: {msgs:?}"
    );
    let (to, subject, body, html, raw) = &msgs[0];
    assert_eq!(to, "sam@example.com");
    // explanations are due 24 h before the next Wednesday-10:00 review: the
    // subject names that deadline, then the review
    assert!(
        subject.starts_with("[callout] 1 outlier to explain by Tue ")
            && subject.contains(" 10:00 (WBR Wed ")
            && subject.ends_with(" 10:00)"),
        "{subject}"
    );
    assert!(
        body.contains("orders") && body.contains("region=eu") && body.contains("2024-05-15"),
        "{body}"
    );
    assert!(
        body.contains("Tue ") && body.contains("10:00"),
        "deadline 24 h before the review: {body}"
    );
    assert!(
        html.contains("<html") && html.contains("2024-05-15"),
        "{html}"
    );
    assert!(raw.contains("multipart/alternative"), "{raw}");
    // the outlier's chart: a PNG inline in multipart/related, shown by the
    // HTML through its Content-ID
    assert!(raw.contains("multipart/related"), "{raw}");
    let parsed = mail_parser::MessageParser::default()
        .parse(raw.as_bytes())
        .unwrap();
    let images: Vec<_> = parsed
        .parts
        .iter()
        .filter(|p| {
            p.content_type()
                .is_some_and(|c| c.ctype() == "image" && c.subtype() == Some("png"))
        })
        .collect();
    assert_eq!(images.len(), 1, "one chart for the one outlier: {raw}");
    let cid = images[0].content_id().unwrap();
    assert!(
        html.contains(&format!("src=\"cid:{cid}\"")),
        "{cid}: {html}"
    );
    assert!(
        images[0].contents().starts_with(b"\x89PNG\r\n\x1a\n"),
        "a PNG file"
    );
    assert!(
        raw.contains("List-Id: <wbr.example.com>") || raw.contains("List-Id: wbr.example.com"),
        "{raw}"
    );
    // the same evaluation again: nothing new is sent
    let again = callout(&["run", "--once", "--config", cfg.to_str().unwrap()]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(received(&inbox).len(), 1);
}

#[test]
fn smtp_down_then_up_delivers_every_digest_exactly_once() {
    let Setup {
        dir: _dir,
        closed: _closed,
        inbox,
        cfg,
        ..
    } = setup(false);
    // nothing listens: the run does its work, queues the digest, exits 1
    let down = callout(&["run", "--once", "--config", cfg.to_str().unwrap()]);
    assert_eq!(down.status.code(), Some(1), "{}", text(&down.stderr));
    assert!(
        text(&down.stderr).contains("sam@example.com"),
        "{}",
        text(&down.stderr)
    );
    let sink = Sink::start(&inbox, &[]);
    point_smtp_at(&cfg, sink.port);
    let up = callout(&["run", "--once", "--config", cfg.to_str().unwrap()]);
    assert!(up.status.success(), "{}", text(&up.stderr));
    let msgs = received(&inbox);
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert_eq!(msgs[0].0, "sam@example.com");
    let third = callout(&["run", "--once", "--config", cfg.to_str().unwrap()]);
    assert!(third.status.success());
    assert_eq!(received(&inbox).len(), 1);
}

#[test]
fn killed_after_queueing_before_sending_loses_nothing_and_sends_once() {
    let Setup {
        dir, inbox, cfg, ..
    } = setup(false);
    // a server that accepts TCP but never greets: the send hangs after queueing
    let hang = TcpListener::bind("127.0.0.1:0").unwrap();
    point_smtp_at(&cfg, hang.local_addr().unwrap().port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_callout"))
        .args(["run", "--once", "--config", cfg.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (_conn, _) = hang.accept().unwrap(); // it is sending now: the digest is queued
    child.kill().unwrap();
    child.wait().unwrap();
    drop(hang);
    let db = dir.path().join("state.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let queued: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(queued, 1, "the digest was queued before the send");
    drop(conn);
    let sink = Sink::start(&inbox, &[]);
    point_smtp_at(&cfg, sink.port);
    let out = callout(&["run", "--once", "--config", cfg.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // delivered by this run: the killed run's claim did not hold the digest
    // back until it expired (a held claim leaves it unsent, not late)
    assert_eq!(received(&inbox).len(), 1);
    let out = callout(&["run", "--once", "--config", cfg.to_str().unwrap()]);
    assert!(out.status.success());
    assert_eq!(received(&inbox).len(), 1, "nothing sent twice");
    // the killed run is not left `running` forever
    let conn = rusqlite::Connection::open(&db).unwrap();
    let statuses: Vec<String> = conn
        .prepare("SELECT status FROM runs ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(statuses, vec!["interrupted", "ok", "ok"]);
}

#[test]
fn a_kill_after_the_server_accepted_does_not_send_twice() {
    let Setup {
        dir, inbox, cfg, ..
    } = setup(false);
    // the server accepts the digest, then hangs on QUIT; the run is killed there
    let hung_inbox = dir.path().join("hung-inbox");
    let hung = Sink::start(&hung_inbox, &["--hang-on", "quit"]);
    point_smtp_at(&cfg, hung.port);
    let mut child = Command::new(env!("CARGO_BIN_EXE_callout"))
        .args(["run", "--once", "--config", cfg.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let quit = hung_inbox.join("0001.quit");
    let t0 = Instant::now();
    while !quit.exists() {
        // a hang guard, not a timing assertion
        assert!(t0.elapsed() < Duration::from_secs(60), "no QUIT arrived");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    drop(hung);
    assert_eq!(received(&hung_inbox).len(), 1, "the server has the digest");
    let sink = Sink::start(&inbox, &[]);
    point_smtp_at(&cfg, sink.port);
    let out = callout(&["run", "--once", "--config", cfg.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        received(&inbox).is_empty(),
        "delivered twice: {:?}",
        received(&inbox)
    );
}

#[test]
fn a_run_during_an_outage_fails_while_digests_stay_queued() {
    let dir = tempfile::tempdir().unwrap();
    let closed = ClosedPort::new();
    let cfg = config_with(
        dir.path(),
        &data_until(dir.path(), "2024-05-15"),
        closed.port(),
        "expected_delay_hours = 1000000",
        "retry_base_secs = 3600",
    );
    let first = callout(&["run", "--once", "--config", cfg.to_str().unwrap()]);
    assert_eq!(first.status.code(), Some(1), "{}", text(&first.stderr));
    // still down; the digest is backing off, so nothing is tried this run
    let second = callout(&["run", "--once", "--config", cfg.to_str().unwrap()]);
    let err = text(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{err}");
    assert!(
        err.contains("1 digest(s) still queued and not delivered"),
        "{err}"
    );
    assert!(err.contains("1 still queued unsent"), "{err}");
}

#[test]
fn a_late_export_is_one_line_to_the_source_owner() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    let sink = Sink::start(&inbox, &[]);
    let port = sink.port;
    // the data ended on 2024-05-15: with a 1 h delay every series is late
    let cfg = config_with(
        dir.path(),
        &data_until(dir.path(), "2024-05-15"),
        port,
        "expected_delay_hours = 1\nowner = \"Data team <data@example.com>\"",
        "retry_base_secs = 0",
    );
    let out = callout(&["run", "--once", "--config", cfg.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let msgs = received(&inbox);
    let mut tos: Vec<&str> = msgs.iter().map(|m| m.0.as_str()).collect();
    tos.sort();
    // the spike still goes to its metric owner; the late export to the data team only
    assert_eq!(tos, vec!["data@example.com", "sam@example.com"], "{msgs:?}");
    let data = msgs.iter().find(|m| m.0 == "data@example.com").unwrap();
    assert_eq!(data.1, "[callout] export problem: shop late");
    let lines: Vec<&str> = data.2.lines().filter(|l| l.starts_with("- ")).collect();
    assert_eq!(
        lines,
        vec![
            "- shop: export late, newest data 2024-05-15, expected by 2024-05-17 01:00 (UTC); 4 series affected"
        ],
        "{}",
        data.2
    );
    assert!(!data.2.contains("n/a"), "{}", data.2);
    let sam = msgs.iter().find(|m| m.0 == "sam@example.com").unwrap();
    assert!(!sam.2.contains("late"), "{}", sam.2);
}

#[test]
fn dry_run_writes_eml_and_sends_nothing() {
    let Setup {
        dir,
        inbox,
        cfg,
        sink: _sink,
        ..
    } = setup(true);
    let eml = dir.path().join("eml");
    let out = callout(&[
        "run",
        "--once",
        "--config",
        cfg.to_str().unwrap(),
        "--dry-run",
        eml.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut files: Vec<String> = std::fs::read_dir(&eml)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    // one digest: the message, and its HTML as a page for a browser
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(
        files[0].ends_with(".eml") && files[1].ends_with(".html"),
        "{files:?}"
    );
    assert_eq!(
        files[0].trim_end_matches(".eml"),
        files[1].trim_end_matches(".html")
    );
    assert!(received(&inbox).is_empty(), "dry run sent mail");
}

#[test]
fn dry_run_into_a_file_is_refused_once_and_sends_nothing() {
    let Setup {
        dir,
        inbox,
        cfg,
        sink: _sink,
        ..
    } = setup(true);
    let file = dir.path().join("digests.eml");
    std::fs::write(&file, "keep me").unwrap();
    let out = callout(&[
        "run",
        "--once",
        "--config",
        cfg.to_str().unwrap(),
        "--dry-run",
        file.to_str().unwrap(),
    ]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.matches("is a file").count(), 1, "{err}");
    assert!(!err.contains("File exists"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
    assert!(received(&inbox).is_empty(), "dry run sent mail");
}

#[test]
fn backfill_records_past_incidents_that_the_daemon_never_announces() {
    let Setup {
        dir,
        inbox,
        cfg,
        sink: _sink,
        ..
    } = setup(true);
    let out = callout(&[
        "backfill",
        "--config",
        cfg.to_str().unwrap(),
        "--store",
        "--quiet",
        "--output",
        "-",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let db = dir.path().join("state.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let n: i64 = conn
        .query_row("SELECT COUNT(*) FROM incidents", [], |r| r.get(0))
        .unwrap();
    assert!(n >= 1, "backfill stored incidents");
    drop(conn);
    assert!(
        received(&inbox).is_empty(),
        "backfill without --send sends nothing"
    );
    // the data ended long ago: the spike is in a past review week, never announced
    let run = callout(&["run", "--once", "--config", cfg.to_str().unwrap()]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert!(
        received(&inbox).is_empty(),
        "a past incident was re-announced: {:?}",
        received(&inbox)
    );
}

#[test]
fn test_email_arrives() {
    let Setup {
        dir: _dir,
        inbox,
        cfg,
        sink: _sink,
        ..
    } = setup(true);
    let out = callout(&[
        "test-email",
        "--config",
        cfg.to_str().unwrap(),
        "--to",
        "ops@example.com",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let msgs = received(&inbox);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].0, "ops@example.com");
}

/// The daemon's cycle (`app::cycle`, what `run` and `run --once` do) at fixed
/// times around the review of Wed 22 May 2024 10:00 London (09:00 UTC):
/// explanations due Tue 21 May 09:00 UTC, reminders from Mon 20 May 09:00 UTC.
#[test]
fn the_cycle_reminds_once_before_the_deadline_and_escalates_once_after_it() {
    use chrono::TimeZone;
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    let sink = Sink::start(&inbox, &[]);
    let port = sink.port;
    let data = data_until(dir.path(), "2024-05-15");
    let path = config_with(
        dir.path(),
        &data,
        port,
        "expected_delay_hours = 1000000",
        "retry_base_secs = 0\n\n[reminders]\nhours_before_deadline = 24\nescalate_to = \"WBR organisers <wbr@example.com>\"",
    );
    let cfg = callout::config::load(&path).unwrap();
    let at = |d: u32, h: u32| chrono::Utc.with_ymd_and_hms(2024, 5, d, h, 0, 0).unwrap();
    let cycle = |t| {
        callout::app::cycle(
            &cfg,
            t,
            callout::store::RunKind::Run,
            callout::app::Announce::Send,
        )
        .unwrap()
    };
    let subjects = || -> Vec<(String, String)> {
        received(&inbox)
            .into_iter()
            .map(|(to, subject, ..)| (to, subject))
            .collect()
    };

    // Thursday after the spike: the digest.
    let r = cycle(at(16, 7));
    assert_eq!((r.alerts.queued, r.alerts.sent), (1, 1), "{:?}", r.alerts);
    // Before the reminder window: nothing more.
    let r = cycle(at(20, 7));
    assert_eq!((r.alerts.reminders, r.alerts.escalations), (0, 0));
    // In the window: one reminder, then none on the next cycle.
    let r = cycle(at(20, 12));
    assert_eq!(
        (r.alerts.reminders, r.alerts.sent),
        (1, 1),
        "{:?}",
        r.alerts
    );
    let r = cycle(at(21, 7));
    assert_eq!(
        (r.alerts.reminders, r.alerts.sent),
        (0, 0),
        "{:?}",
        r.alerts
    );
    // After the deadline: one escalation, then none.
    let r = cycle(at(21, 12));
    assert_eq!(
        (r.alerts.escalations, r.alerts.sent),
        (1, 1),
        "{:?}",
        r.alerts
    );
    let r = cycle(at(22, 8));
    assert_eq!(
        (r.alerts.escalations, r.alerts.sent),
        (0, 0),
        "{:?}",
        r.alerts
    );

    let got = subjects();
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[0].0, "sam@example.com");
    assert_eq!(
        got[1],
        (
            "sam@example.com".to_string(),
            "[callout] Reminder: 1 outlier to explain by Tue 21 May 10:00 (WBR Wed 22 May 10:00)"
                .to_string()
        )
    );
    assert_eq!(got[2].0, "wbr@example.com");
    assert!(
        got[2].1.contains("1 outlier unexplained by 1 owner"),
        "{got:?}"
    );
    let esc = &received(&inbox)[2].2;
    assert!(
        esc.contains("Sam <sam@example.com> (1 outlier):") && esc.contains("orders (region=eu)"),
        "{esc}"
    );
}

/// `callout serve` on a config, killed on drop.
struct Serve {
    child: Child,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// The lines of a plain-text body that are links under `base`.
fn links_in(text: &str, base: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| l.starts_with(base))
        .map(str::to_string)
        .collect()
}

/// The whole loop over real TCP: a cycle mails the digest through the SMTP
/// sink, the owner follows its "Explain this" link to `callout serve` on the
/// same store and answers the form, and the reminder-time cycle then leaves
/// the explained incident out.
#[test]
fn the_digest_link_opens_the_page_and_an_explained_item_gets_no_reminder() {
    use callout::review::{next_review, previous_review};
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    let sink = Sink::start(&inbox, &[]);
    let port = sink.port;
    // links are made with the public URL; `callout serve` binds a port of its
    // own and says which, and the links are followed there
    let public = "https://callout.example.com";
    let base = format!("{public}/e/");
    let data = data_until(dir.path(), "2024-05-15");
    let path = config_with(
        dir.path(),
        &data,
        port,
        "expected_delay_hours = 1000000",
        &format!(
            "retry_base_secs = 0\n\n[reminders]\nhours_before_deadline = 24\n\n[web]\nlisten = \"127.0.0.1:0\"\npublic_url = \"{public}\"\n"
        ),
    );
    let cfg = callout::config::load(&path).unwrap();
    // The server checks links against the real clock, so the digest is sent
    // "now"-ish: an hour after the latest review, a week before the next.
    let sent_at = previous_review(&cfg.review, chrono::Utc::now()).with_timezone(&chrono::Utc)
        + chrono::Duration::hours(1);
    let review_at = next_review(&cfg.review, sent_at).with_timezone(&chrono::Utc);
    let cycle = |t| {
        callout::app::cycle(
            &cfg,
            t,
            callout::store::RunKind::Run,
            callout::app::Announce::Send,
        )
        .unwrap()
    };

    let r = cycle(sent_at);
    assert_eq!((r.alerts.queued, r.alerts.sent), (1, 1), "{:?}", r.alerts);
    let mail = received(&inbox);
    assert_eq!(mail.len(), 1);
    let (to, _, text_body, html_body, _) = &mail[0];
    let text_body = &text_body.replace("\r\n", "\n");
    assert_eq!(to, "sam@example.com");
    assert!(!text_body.contains("reply to this email"), "{text_body}");
    // one link per outlier, then "all my open items", each alone on its line
    let links = links_in(text_body, &base);
    assert_eq!(links.len(), 2, "{text_body}");
    let (item_url, all_url) = (&links[0], &links[1]);
    assert!(
        text_body.contains(&format!("Explain this:\n   {item_url}\n")),
        "{text_body}"
    );
    assert!(
        html_body.contains(&format!("href=\"{item_url}\"")),
        "{html_body}"
    );
    assert!(html_body.contains(">Explain this</a>"), "{html_body}");
    assert!(
        html_body.contains(&format!("href=\"{all_url}\"")),
        "{html_body}"
    );

    let log = dir.path().join("serve.log");
    let mut server = Serve {
        child: Command::new(env!("CARGO_BIN_EXE_callout"))
            .args(["serve", "--config"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    };
    let served = serving_at(&mut server.child, &log);
    let item_url = &item_url.replace(public, &served);
    let until = Instant::now() + Duration::from_secs(60);
    while http().get(&format!("{served}/healthz")).call().is_err() {
        assert!(server.child.try_wait().unwrap().is_none(), "serve exited");
        assert!(Instant::now() < until, "serve not ready");
        std::thread::sleep(Duration::from_millis(100));
    }

    let mut r = http().get(item_url).call().unwrap();
    let page = r.body_mut().read_to_string().unwrap();
    assert_eq!(r.status().as_u16(), 200, "{page}");
    assert!(
        page.contains("orders") && page.contains("region=eu"),
        "{page}"
    );
    let mut r = http()
        .post(item_url)
        .send_form([("cause", "known_event"), ("text", "Spring promotion")])
        .unwrap();
    let body = r.body_mut().read_to_string().unwrap();
    assert_eq!(r.status().as_u16(), 200, "{body}");
    let store = callout::store::Store::open(&dir.path().join("state.db")).unwrap();
    let id = store
        .incidents()
        .unwrap()
        .into_iter()
        .find(|i| {
            i.owner.as_ref().map(ToString::to_string).as_deref() == Some("Sam <sam@example.com>")
        })
        .unwrap()
        .id;
    let got = store.latest_explanation(id).unwrap().unwrap();
    assert_eq!(
        (got.cause, got.text.as_str(), got.author.as_str()),
        (
            callout::model::Cause::KnownEvent,
            "Spring promotion",
            "Sam <sam@example.com>"
        )
    );
    drop(server);

    // Inside the reminder window (the day before the deadline): nothing to
    // remind Sam of. Without the answer this cycle sends a reminder (see
    // the_cycle_reminds_once_before_the_deadline_and_escalates_once_after_it).
    let deadline = review_at - chrono::Duration::hours(24);
    let r = cycle(deadline - chrono::Duration::hours(12));
    assert_eq!(
        (r.alerts.reminders, r.alerts.sent),
        (0, 0),
        "{:?}",
        r.alerts
    );
    assert_eq!(received(&inbox).len(), 1);
}

/// The pre-read by email: queued once per review inside `email_hours_before`
/// of it, with its charts as inline PNGs the HTML shows by Content-ID, no
/// SVG, and the signed link to the page version.
#[test]
fn the_pre_read_is_mailed_once_inside_its_window() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    let sink = Sink::start(&inbox, &[]);
    let port = sink.port;
    // only links are made with it: nothing here serves the web
    let public = "https://callout.example.com";
    let cfg = config_with(
        dir.path(),
        &data_until(dir.path(), "2024-05-15"),
        port,
        "expected_delay_hours = 1000000",
        &format!(
            "retry_base_secs = 0\n\n[report]\nemail_to = [\"WBR list <wbr-list@example.com>\"]\n\n[web]\nlisten = \"127.0.0.1:0\"\npublic_url = \"{public}\"\n"
        ),
    );
    let run_at = |at: &str| {
        let out = callout(&[
            "run",
            "--once",
            "--at",
            at,
            "--config",
            cfg.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{at}: {}", text(&out.stderr));
    };
    let reports = || -> Vec<(String, String, String, String, String)> {
        received(&inbox)
            .into_iter()
            .filter(|m| m.0 == "wbr-list@example.com")
            .collect()
    };
    // Review Wed 22 May 2024 10:00 London; 18 h before (the default) is Tue 16:00.
    run_at("2024-05-21 15:30");
    assert!(reports().is_empty(), "too early: {:?}", reports());
    run_at("2024-05-21 16:30");
    let got = reports();
    assert_eq!(got.len(), 1, "{got:?}");
    let (_, subject, body, html, raw) = &got[0];
    assert!(
        subject.starts_with("[callout] WBR pre-read: week 20, Mon 13 May – Sun 19 May 2024"),
        "{subject}"
    );
    // the numbers in the text part: the week's orders, summed from the CSV
    let csv = std::fs::read_to_string(dir.path().join("shop.csv")).unwrap();
    let week: f64 = csv
        .lines()
        .filter(|l| l.contains(",orders,") && ("2024-05-13"..="2024-05-19").contains(&&l[..10]))
        .map(|l| l.rsplit(',').next().unwrap().parse::<f64>().unwrap())
        .sum();
    let mut grouped = String::new();
    let digits = format!("{week:.0}");
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    assert!(
        body.contains("orders") && body.contains(&grouped),
        "{grouped}: {body}"
    );
    // no SVG anywhere; charts as PNG parts whose Content-IDs the HTML shows
    assert!(!raw.contains("<svg") && !html.contains("<svg"), "{html}");
    assert!(raw.contains("multipart/related"), "{raw}");
    let parsed = mail_parser::MessageParser::default()
        .parse(raw.as_bytes())
        .unwrap();
    let cids: Vec<String> = parsed
        .parts
        .iter()
        .filter(|p| {
            p.content_type()
                .is_some_and(|c| c.ctype() == "image" && c.subtype() == Some("png"))
        })
        .map(|p| {
            assert!(p.contents().starts_with(b"\x89PNG\r\n\x1a\n"));
            p.content_id().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        cids.len(),
        2,
        "a chart for orders and one for revenue: {cids:?}"
    );
    let mut shown: Vec<String> = html
        .split("src=\"cid:")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_string())
        .collect();
    let mut cids_sorted = cids.clone();
    shown.sort();
    cids_sorted.sort();
    assert_eq!(shown, cids_sorted, "every image shown, every cid: an image");
    // the signed link to the page version, for the week and the review
    let base = format!("{public}/report/");
    let link = body
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(&base))
        .unwrap_or_else(|| panic!("no link in {body}"))
        .to_string();
    assert!(html.contains(&format!("href=\"{link}\"")), "{html}");
    let key = callout::links::key::load(&callout::config::KeySource::Generated(
        dir.path().join("callout-web.key"),
    ))
    .unwrap();
    let review = chrono::DateTime::parse_from_rfc3339("2024-05-22T10:00:00+01:00").unwrap();
    let claims =
        callout::links::tokens::verify(&key, &link[base.len()..], review.timestamp()).unwrap();
    assert_eq!(
        claims.scope,
        callout::links::tokens::Scope::Report {
            week_start: chrono::NaiveDate::from_ymd_opt(2024, 5, 13).unwrap(),
            review_at: review.timestamp(),
        }
    );
    // later in the same window, and again: nothing new
    run_at("2024-05-22 08:00");
    run_at("2024-05-22 09:30");
    assert_eq!(reports().len(), 1, "{:?}", reports());
    let conn = rusqlite::Connection::open(dir.path().join("state.db")).unwrap();
    let keys: Vec<String> = conn
        .prepare("SELECT idempotency_key FROM outbox WHERE idempotency_key LIKE 'report:%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(keys, vec!["report:2024-05-22:wbr-list@example.com"]);
}

/// The export with orders/eu on 2024-05-15 (the fixture's spike) set to `value`.
fn restate_spike(data: &Path, value: &str) {
    let csv = std::fs::read_to_string(data).unwrap();
    let edited: String = csv
        .lines()
        .map(|l| {
            if l.starts_with("2024-05-15,orders,eu,") {
                format!("2024-05-15,orders,eu,{value}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    assert_ne!(csv, edited, "the spike row is in the export");
    std::fs::write(data, edited).unwrap();
}

#[test]
fn a_restated_flagged_value_is_mailed_to_the_owner_once_per_new_value() {
    use callout::model::{Cause, Check, date_ms};
    use callout::store::Store;
    use callout::store::explanations::NewExplanation;
    let Setup {
        dir,
        inbox,
        cfg,
        sink: _sink,
        ..
    } = setup(true);
    let data = dir.path().join("shop.csv");
    let run = || {
        let out = callout(&[
            "run",
            "--once",
            "--at",
            "2024-05-16T12:00:00Z",
            "--config",
            cfg.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };

    // 1. the spike is flagged and mailed to its owner, who explains it
    run();
    assert_eq!(received(&inbox).len(), 1);
    let store = Store::open(&dir.path().join("state.db")).unwrap();
    let spike = date_ms(chrono::NaiveDate::from_ymd_opt(2024, 5, 15).unwrap());
    let incident = store
        .incidents()
        .unwrap()
        .into_iter()
        .find(|i| i.key.metric == "orders" && i.last_finding_ts == spike)
        .expect("the spike opened an incident");
    store
        .add_explanation(&NewExplanation {
            incident_id: incident.id,
            cause: Cause::KnownEvent,
            persistence: None,
            text: "Flash sale".into(),
            author: "sam@example.com".into(),
            link_hash: "test".into(),
            created_at: 0,
        })
        .unwrap();
    drop(store);

    // 2. the export now says 2,100 for that day: the owner hears of it
    restate_spike(&data, "2100");
    let stdout = run();
    assert!(stdout.contains("restated"), "{stdout}");
    let msgs = received(&inbox);
    assert_eq!(msgs.len(), 2, "one digest about the restatement: {msgs:?}");
    let (to, _subject, body, html, _) = &msgs[1];
    assert_eq!(to, "sam@example.com");
    let why = "value for 2024-05-15 restated from 3,323 to 2,100 after it was flagged; \
               the explanation was given for the old number";
    assert!(body.contains(why), "{body}");
    assert!(body.contains("now 2,100, was 3,323 when flagged"), "{body}");
    assert!(html.contains(why) && html.contains("restated"), "{html}");
    let store = Store::open(&dir.path().join("state.db")).unwrap();
    let restated: Vec<_> = store
        .incidents()
        .unwrap()
        .into_iter()
        .filter(|i| i.worst_check == Check::Restated)
        .collect();
    assert_eq!(restated.len(), 1, "{restated:?}");
    assert_eq!(
        restated[0]
            .owner
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("Sam <sam@example.com>")
    );
    assert!(restated[0].announced);
    drop(store);

    // 3. the same export again: nothing new
    run();
    assert_eq!(received(&inbox).len(), 2);

    // 4. restated a second time, to another value: news again, from 2,100
    restate_spike(&data, "2500");
    run();
    let msgs = received(&inbox);
    assert_eq!(msgs.len(), 3, "{msgs:?}");
    assert!(
        msgs[2]
            .2
            .contains("value for 2024-05-15 restated from 2,100 to 2,500 after it was flagged"),
        "{}",
        msgs[2].2
    );

    // 5. a backfill's findings file carries a restatement too
    restate_spike(&data, "2700");
    let out_csv = dir.path().join("findings.csv");
    let out = callout(&[
        "backfill",
        "--quiet",
        "--config",
        cfg.to_str().unwrap(),
        "--output",
        out_csv.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows = std::fs::read_to_string(&out_csv).unwrap();
    let restated: Vec<&str> = rows.lines().filter(|l| l.contains(",restated,")).collect();
    assert_eq!(restated.len(), 1, "{rows}");
    assert!(
        restated[0].contains("2024-05-15") && restated[0].contains("2700"),
        "{}",
        restated[0]
    );
}
