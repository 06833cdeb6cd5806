//! Delivery against a real SMTP server over TCP: `tests/smtp_sink.py`
//! (aiosmtpd) started per test on a port it picks and prints (port 0: no race
//! for a "free" one), writing what it receives to a
//! temporary folder, parsed back with mail-parser. Each test has its own
//! SQLite file, sink process and port, so they run in parallel.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration as StdDuration;

use chrono::Duration;
use mail_parser::{MessageParser, MimeHeaders};

use super::incidents::tests::{config, evaluated, finding, now};
use super::*;
use crate::model::{Check, Evaluated, Finding};
use crate::store::RunKind;

/// The sink process; killed on drop.
struct Sink {
    child: Child,
    dir: tempfile::TempDir,
    /// The port it listens on (it binds port 0 and says which it got).
    port: u16,
}

impl Sink {
    fn start() -> Sink {
        Sink::start_with(&[])
    }

    /// With extra arguments, e.g. `["--hang-on", "quit"]`.
    fn start_with(extra: &[&str]) -> Sink {
        let dir = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_sink.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .args(["--port", "0"])
            .arg("--dir")
            .arg(dir.path())
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 must be installed to run the SMTP tests");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(StdDuration::from_secs(20))
            .unwrap_or_default();
        let port = line
            .strip_prefix("ready ")
            .and_then(|p| p.trim().parse().ok());
        let sink = Sink {
            child,
            dir,
            port: port.unwrap_or(0),
        };
        assert!(
            port.is_some(),
            "smtp_sink.py did not start (is aiosmtpd installed? `pip install aiosmtpd`): {line:?}"
        );
        sink
    }

    /// Wait (up to a minute, polling) until a file with extension `ext` exists.
    fn wait_for(&self, ext: &str) {
        for _ in 0..600 {
            let found = std::fs::read_dir(self.dir.path())
                .unwrap()
                .any(|e| e.unwrap().path().extension().is_some_and(|x| x == ext));
            if found {
                return;
            }
            std::thread::sleep(StdDuration::from_millis(100));
        }
        panic!("the sink never wrote a .{ext} file");
    }

    /// Every received message, in arrival order, with its envelope recipients.
    fn received(&self) -> Vec<(Vec<u8>, Vec<String>)> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|p| {
                let rcpt = std::fs::read_to_string(p.with_extension("rcpt")).unwrap();
                let rcpts = rcpt.lines().skip(1).map(str::to_string).collect();
                (std::fs::read(&p).unwrap(), rcpts)
            })
            .collect()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A local port that refuses connections while this lives: the client end
/// of a loopback connection owns it and nothing listens on it, and no other
/// socket can bind it meanwhile (a port bound and let go could be taken).
struct Closed {
    _listener: TcpListener,
    client: TcpStream,
    _server: TcpStream,
}

impl Closed {
    fn new() -> Closed {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        Closed {
            _listener: listener,
            client,
            _server: server,
        }
    }

    fn port(&self) -> u16 {
        self.client.local_addr().unwrap().port()
    }
}

/// A store, a config pointing at `port`, and the findings of one run:
/// Ana owns two revenue series (one with markup in its name), Sam one
/// orders series, and one series has no owner.
struct World {
    dir: tempfile::TempDir,
    store: Store,
    config: Config,
}

impl World {
    fn new(port: u16) -> World {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db")).unwrap();
        World {
            dir,
            store,
            config: config(port),
        }
    }

    /// The relay came up on `port`.
    fn point_at(&mut self, port: u16) {
        if let Some(smtp) = self.config.smtp.as_mut() {
            smtp.port = port;
        }
    }

    fn store_path(&self) -> PathBuf {
        self.dir.path().join("state.db")
    }

    fn findings() -> Vec<Finding> {
        let mut stale = finding("orders", "eu", 29, Check::Stale);
        stale.hit.score = 0.0;
        let mut big = finding("revenue", "us", 29, Check::Seasonal);
        big.hit.score = -9.0;
        vec![
            finding("revenue", "eu", 29, Check::Seasonal),
            big,
            finding("revenue<b>&", "eu", 29, Check::Variance),
            stale,
            finding("misc", "eu", 29, Check::Seasonal),
        ]
    }

    /// One evaluation, recorded and queued, as the pipeline would do it.
    fn run_and_queue(&mut self) -> QueueReport {
        let run = self.store.begin_run(RunKind::Once, now()).unwrap();
        let fs = World::findings();
        let evals: Vec<Evaluated> = fs
            .iter()
            .map(|f| Evaluated {
                key: f.key.clone(),
                ..evaluated("", "", 29)
            })
            .collect();
        let incidents = record(
            &mut self.store,
            run,
            &fs,
            &evals,
            &self.config,
            now(),
            false,
        )
        .unwrap();
        queue_digests(&mut self.store, &incidents, &self.config, now(), None, None).unwrap()
    }

    fn deliver(&self, at: DateTime<Utc>) -> DeliveryReport {
        let smtp = self.config.smtp.as_ref().unwrap();
        deliver_due(
            &self.store,
            smtp,
            &self.config.alerts,
            at,
            &Runner::this_process(),
        )
        .unwrap()
    }
}

fn to_of(raw: &[u8]) -> String {
    let m = MessageParser::default().parse(raw).unwrap();
    m.to()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .unwrap_or_default()
        .to_string()
}

#[test]
fn one_digest_per_owner_with_its_incidents_as_valid_mime() {
    let sink = Sink::start();
    let port = sink.port;
    let mut w = World::new(port);
    let q = w.run_and_queue();
    assert_eq!((q.queued, q.unowned, q.failed.len()), (2, 1, 0), "{q:?}");
    let report = w.deliver(now());
    assert_eq!(report.sent.len(), 2, "{report:?}");
    assert!(report.failed.is_empty());
    assert_eq!(report.waiting, 0);

    let got = sink.received();
    assert_eq!(got.len(), 2);
    let mut tos: Vec<String> = got.iter().map(|(raw, _)| to_of(raw)).collect();
    tos.sort();
    assert_eq!(tos, vec!["ana@example.com", "sam@example.com"]);
    let incidents = w.store.incidents().unwrap();
    for (raw, rcpts) in &got {
        let m = MessageParser::default().parse(raw.as_slice()).unwrap();
        let to = to_of(raw);
        assert_eq!(rcpts, &vec![to.clone()], "envelope recipient");
        let types: Vec<String> = m
            .parts
            .iter()
            .filter_map(|p| p.content_type())
            .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("")))
            .collect();
        assert_eq!(
            types,
            vec!["multipart/alternative", "text/plain", "text/html"]
        );
        assert_eq!(m.text_bodies().count(), 1);
        assert_eq!(m.html_bodies().count(), 1);
        let text = m.body_text(0).unwrap().to_string();
        let html = m.body_html(0).unwrap().to_string();
        assert_eq!(
            m.header_raw("List-Id").map(str::trim),
            Some("<wbr.example.com>")
        );
        assert_eq!(
            m.reply_to()
                .and_then(|a| a.first())
                .and_then(|a| a.address()),
            Some("wbr@example.com")
        );
        assert_eq!(
            m.from().and_then(|a| a.first()).and_then(|a| a.address()),
            Some("callout@example.com")
        );
        assert!(m.message_id().is_some_and(|id| id.starts_with("callout.")));
        let deadline =
            "before Tue 1 Dec 10:00 (Europe/London), 24 hours before the WBR on Wed 2 Dec 10:00";
        if to == "sam@example.com" {
            // Sam's only item is a repeated value: a data problem, checked
            // not explained, in its own section (no deadline to explain by);
            // the shop source has no owner, so the metric's owner checks it
            assert!(!text.contains(deadline), "{text}");
            assert!(
                text.contains("orders (region=eu): the same value 580 in every period since"),
                "{text}"
            );
        } else {
            assert!(text.contains(deadline), "{text}");
            assert!(html.contains(deadline), "{html}");
        }
        // The incident ids in the header are exactly this owner's incidents.
        let header_ids: Vec<i64> = m
            .header_raw(mail::INCIDENTS_HEADER)
            .unwrap()
            .trim()
            .split(',')
            .map(|s| s.parse().unwrap())
            .collect();
        let owned: Vec<i64> = incidents
            .iter()
            .filter(|i| {
                w.config
                    .owners
                    .owner_of(&i.key)
                    .is_some_and(|o| o.email.to_string() == to)
            })
            .map(|i| i.id)
            .collect();
        assert_eq!(header_ids, owned, "{to}");
        if to == "ana@example.com" {
            assert_eq!(
                m.subject(),
                Some("[callout] 3 outliers to explain by Tue 1 Dec 10:00 (WBR Wed 2 Dec 10:00)")
            );
            // Most severe (largest |score|) first.
            let us = text.find("revenue (region=us)").unwrap();
            let eu = text.find("revenue (region=eu)").unwrap();
            assert!(us < eu, "{text}");
            assert!(text.contains("revenue<b>& (region=eu)"), "{text}");
            assert!(html.contains("revenue&lt;b&gt;&amp; (region=eu)"), "{html}");
            assert!(!html.contains("revenue<b>"), "{html}");
            assert!(!text.contains("orders"), "Sam's outlier leaked to Ana");
        } else {
            assert_eq!(
                m.subject(),
                Some("[callout] data problem: orders (region=eu) stale")
            );
            assert!(!text.contains("revenue"), "Ana's outlier leaked to Sam");
        }
    }

    // The same evaluation again: nothing queued, nothing sent.
    let q = w.run_and_queue();
    assert_eq!((q.queued, q.already_queued), (0, 0), "{q:?}");
    assert!(w.deliver(now() + Duration::hours(1)).sent.is_empty());
    assert_eq!(sink.received().len(), 2);
}

#[test]
fn smtp_down_then_up_delivers_every_digest_exactly_once() {
    let closed = Closed::new();
    let port = closed.port();
    let mut w = World::new(port);
    assert_eq!(w.run_and_queue().queued, 2);

    // Nothing listens on the port: both attempts fail and are kept.
    let r = w.deliver(now());
    assert!(r.sent.is_empty());
    assert_eq!(r.failed.len(), 2, "{r:?}");
    assert!(r.failed.iter().all(|f| f.attempts == 1));
    assert_eq!(r.failed[0].next_attempt_at, now() + Duration::seconds(60));
    // Before the backoff expires nothing is tried.
    let r = w.deliver(now() + Duration::seconds(30));
    assert_eq!((r.sent.len(), r.failed.len(), r.waiting), (0, 0, 2));
    // Second failure doubles the wait.
    let r = w.deliver(now() + Duration::seconds(60));
    assert!(r.failed.iter().all(|f| f.attempts == 2), "{r:?}");
    assert_eq!(r.failed[0].next_attempt_at, now() + Duration::seconds(180));
    let stored = w.store.unsent_mail().unwrap();
    assert!(
        stored[0]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains(&port.to_string())),
        "{stored:?}"
    );

    // The server comes back (on a port of its own): each digest arrives once.
    let sink = Sink::start();
    w.point_at(sink.port);
    let r = w.deliver(now() + Duration::seconds(180));
    assert_eq!(
        (r.sent.len(), r.failed.len(), r.waiting),
        (2, 0, 0),
        "{r:?}"
    );
    let r = w.deliver(now() + Duration::hours(5));
    assert!(r.sent.is_empty());
    let got = sink.received();
    let mut tos: Vec<String> = got.iter().map(|(raw, _)| to_of(raw)).collect();
    tos.sort();
    assert_eq!(tos, vec!["ana@example.com", "sam@example.com"]);
    let mail = w.store.all_mail().unwrap();
    assert!(mail.iter().all(|m| m.attempts == 3 && m.sent_at.is_some()));
}

#[test]
fn a_restart_between_queueing_and_sending_sends_once() {
    let sink = Sink::start();
    let port = sink.port;
    let mut w = World::new(port);
    assert_eq!(w.run_and_queue().queued, 2);
    // "Crash": the process dies before delivering; only the file survives.
    let path = w.store_path();
    let World { dir, store, config } = w;
    drop(store);
    let store = Store::open(&path).unwrap();
    let mut w = World { dir, store, config };
    // The restarted process re-runs the same evaluation, then delivers.
    let q = w.run_and_queue();
    assert_eq!((q.queued, q.already_queued), (0, 0), "{q:?}");
    assert_eq!(w.deliver(now() + Duration::minutes(1)).sent.len(), 2);
    assert!(w.deliver(now() + Duration::minutes(2)).sent.is_empty());
    assert_eq!(sink.received().len(), 2);
}

#[test]
fn one_refused_owner_does_not_stop_the_others() {
    let sink = Sink::start();
    let port = sink.port;
    let mut w = World::new(port);
    let run = w.store.begin_run(RunKind::Once, now()).unwrap();
    let fs = [
        finding("refunds", "eu", 29, Check::Seasonal),
        finding("orders", "eu", 29, Check::Seasonal),
    ];
    let incidents = record(&mut w.store, run, &fs, &[], &w.config, now(), false).unwrap();
    assert_eq!(
        queue_digests(&mut w.store, &incidents, &w.config, now(), None, None)
            .unwrap()
            .queued,
        2
    );
    let r = w.deliver(now());
    assert_eq!(r.sent.len(), 1, "{r:?}");
    // a 550 is for good: given up at once with the server's words, kept
    // visible, never retried (a retry would be refused again)
    assert!(r.failed.is_empty(), "{r:?}");
    assert_eq!(r.given_up.len(), 1, "{r:?}");
    assert!(r.given_up[0].owner.contains("reject-me@example.com"));
    assert!(r.given_up[0].error.contains("mailbox unavailable"), "{r:?}");
    assert_eq!((r.waiting, r.undeliverable), (0, 1), "{r:?}");
    let got = sink.received();
    assert_eq!(got.len(), 1);
    assert_eq!(to_of(&got[0].0), "sam@example.com");
    // later passes do not try it again, and still count it
    let later = w.deliver(now() + Duration::days(2));
    assert_eq!(
        (
            later.sent.len(),
            later.failed.len(),
            later.given_up.len(),
            later.undeliverable
        ),
        (0, 0, 0, 1),
        "{later:?}"
    );
    let gone = w.store.undeliverable_mail().unwrap();
    assert_eq!(gone.len(), 1);
    assert!(
        gone[0].undeliverable.as_ref().unwrap().1.contains("550"),
        "{gone:?}"
    );
    // re-queued by hand: tried again (and refused again)
    assert!(
        w.store
            .requeue(gone[0].id, now() + Duration::days(2))
            .unwrap()
    );
    let again = w.deliver(now() + Duration::days(2));
    assert_eq!(again.given_up.len(), 1, "{again:?}");
    assert_eq!(sink.received().len(), 1);
}

#[test]
fn test_email_reaches_the_server() {
    let sink = Sink::start();
    let port = sink.port;
    let cfg = config(port);
    let to: Mailbox = "Ops <ops@example.com>".parse().unwrap();
    send_test_email(cfg.smtp.as_ref().unwrap(), &to, now()).unwrap();
    let got = sink.received();
    assert_eq!(got.len(), 1);
    let m = MessageParser::default().parse(got[0].0.as_slice()).unwrap();
    assert_eq!(m.subject(), Some("[callout] test email"));
    assert_eq!(got[0].1, vec!["ops@example.com".to_string()]);

    // Nothing listening: a clear error naming the server.
    let closed = Closed::new();
    let down = config(closed.port());
    let e = send_test_email(down.smtp.as_ref().unwrap(), &to, now()).unwrap_err();
    assert!(matches!(e, AlertError::Send { .. }), "{e}");
    assert!(e.to_string().contains("127.0.0.1"), "{e}");
}

#[test]
fn dry_run_writes_eml_files_and_touches_neither_store_nor_network() {
    let closed = Closed::new();
    let mut w = World::new(closed.port());
    let run = w.store.begin_run(RunKind::Once, now()).unwrap();
    let incidents = record(
        &mut w.store,
        run,
        &World::findings(),
        &[],
        &w.config,
        now(),
        false,
    )
    .unwrap();
    let out = w.dir.path().join("dry");
    let (files, _) = dry_run(
        &w.store,
        &incidents,
        &w.config,
        now(),
        crate::alert::EmlTo::Dir(&out),
        None,
        None,
    )
    .unwrap();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        vec!["01-ana_example.com.eml", "02-sam_example.com.eml"]
    );
    let raw = std::fs::read(&files[0]).unwrap();
    let m = MessageParser::default().parse(raw.as_slice()).unwrap();
    assert_eq!(
        m.subject(),
        Some("[callout] 3 outliers to explain by Tue 1 Dec 10:00 (WBR Wed 2 Dec 10:00)")
    );
    assert!(w.store.all_mail().unwrap().is_empty());
    assert!(
        w.store.incidents().unwrap().iter().all(|i| !i.announced),
        "a dry run announces nothing"
    );
}

#[test]
fn backoff_doubles_and_is_capped_at_one_hour() {
    let base = StdDuration::from_secs(60);
    let cases = [
        (1, 60),
        (2, 120),
        (3, 240),
        (6, 1920),
        (7, 3600),
        (40, 3600),
    ];
    for (attempts, secs) in cases {
        assert_eq!(
            backoff(base, attempts).as_secs(),
            secs,
            "attempt {attempts}"
        );
    }
}

#[test]
fn queueing_without_smtp_is_a_clear_error() {
    let mut w = World::new(25);
    w.config.smtp = None;
    let e = queue_digests(&mut w.store, &[], &w.config, now(), None, None).unwrap_err();
    assert!(e.to_string().contains("no [smtp] table"), "{e}");
}

/// The Message-ID of a raw message.
fn message_id_of(raw: &[u8]) -> String {
    MessageParser::default()
        .parse(raw)
        .unwrap()
        .message_id()
        .unwrap()
        .to_string()
}

#[test]
fn message_ids_differ_between_stores_and_survive_a_retry() {
    // Two stores (a reset, a second deployment) announcing the same incident
    // ids to the same owner: clients that drop duplicate Message-IDs must not
    // drop the second store's digest.
    let closed = Closed::new();
    let mut a = World::new(closed.port());
    let mut b = World::new(closed.port());
    assert_eq!(a.run_and_queue().queued, 2);
    assert_eq!(b.run_and_queue().queued, 2);
    let key_of = |w: &World| {
        w.store
            .all_mail()
            .unwrap()
            .into_iter()
            .map(|m| {
                (
                    m.mail.idempotency_key.clone(),
                    message_id_of(&m.mail.message),
                )
            })
            .collect::<Vec<_>>()
    };
    let (ka, kb) = (key_of(&a), key_of(&b));
    assert_eq!(
        ka.iter().map(|k| &k.0).collect::<Vec<_>>(),
        kb.iter().map(|k| &k.0).collect::<Vec<_>>(),
        "same digests"
    );
    for ((_, ida), (_, idb)) in ka.iter().zip(&kb) {
        assert_ne!(ida, idb, "two stores reused a Message-ID");
    }
    assert_ne!(a.store.store_id().unwrap(), b.store.store_id().unwrap());

    // A retry sends the same Message-ID: first attempt fails (no server).
    assert_eq!(a.deliver(now()).failed.len(), 2);
    let sink = Sink::start();
    a.point_at(sink.port);
    assert_eq!(a.deliver(now() + Duration::hours(2)).sent.len(), 2);
    let mut got: Vec<String> = sink
        .received()
        .iter()
        .map(|(raw, _)| message_id_of(raw))
        .collect();
    got.sort();
    let mut queued: Vec<String> = ka.into_iter().map(|k| k.1).collect();
    queued.sort();
    assert_eq!(got, queued);
    // Reopening the store keeps its id (Message-IDs stay stable across restarts).
    let id = a.store.store_id().unwrap();
    assert_eq!(
        Store::open(&a.store_path()).unwrap().store_id().unwrap(),
        id
    );
}

#[test]
fn a_hung_server_costs_two_timeouts_per_pass_and_says_timed_out() {
    // Accepts connections, never greets.
    let hang = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = hang.local_addr().unwrap().port();
    let mut w = World::new(port);
    w.config.smtp.as_mut().unwrap().timeout = StdDuration::from_secs(1);
    assert_eq!(w.run_and_queue().queued, 2);
    queue_one_more(&mut w, "orders", "us");
    assert_eq!(w.store.unsent_mail().unwrap().len(), 3);
    let r = w.deliver(now());
    // one timeout does not hold back the next message; two in a row end the pass
    assert_eq!(r.failed.len(), 2, "{r:?}");
    assert!(r.failed.iter().all(|f| f.timed_out), "{r:?}");
    assert!(
        r.failed[0].error.contains("timed out after 1 s"),
        "{}",
        r.failed[0].error
    );
    assert!(
        !r.failed[0].error.contains("os error"),
        "{}",
        r.failed[0].error
    );
    assert_eq!(
        (r.skipped, r.waiting),
        (1, 3),
        "the third digest stays queued"
    );
    // Exactly two connections were made this pass.
    hang.set_nonblocking(true).unwrap();
    let mut connections = 0;
    while hang.accept().is_ok() {
        connections += 1;
    }
    assert_eq!(connections, 2);
    // The skipped digest was not charged an attempt and is due at once.
    let unsent = w.store.unsent_mail().unwrap();
    let attempts: Vec<u32> = unsent.iter().map(|m| m.attempts).collect();
    assert_eq!(attempts, vec![1, 1, 0]);
    assert_eq!(w.store.due_mail(now()).unwrap().len(), 1);
}

/// Queue one more digest, for the default owner, of a series of its own.
fn queue_one_more(w: &mut World, metric: &str, region: &str) {
    let run = w.store.begin_run(RunKind::Once, now()).unwrap();
    let fs = [finding(metric, region, 29, Check::Seasonal)];
    let incidents = record(&mut w.store, run, &fs, &[], &w.config, now(), false).unwrap();
    let q = queue_digests(&mut w.store, &incidents, &w.config, now(), None, None).unwrap();
    assert_eq!(q.queued, 1, "{q:?}");
}

#[test]
fn a_relay_that_acks_late_gets_each_digest_at_most_twice_and_the_queue_moves() {
    // Every message is delivered, and acknowledged 3 s later: after the
    // 1 s timeout. Before: a new copy at every retry, and the digests queued
    // behind the first were never tried.
    let sink = Sink::start_with(&["--ack-after", "3"]);
    let port = sink.port;
    let mut w = World::new(port);
    w.config.smtp.as_mut().unwrap().timeout = StdDuration::from_secs(1);
    assert_eq!(w.run_and_queue().queued, 2);
    let r = w.deliver(now());
    // both were tried in this pass (the first timeout did not stop it)
    assert_eq!(r.failed.len(), 2, "{r:?}");
    assert!(r.failed.iter().all(|f| f.timed_out), "{r:?}");
    assert_eq!(sink.received().len(), 2);
    // in doubt: not retried at the usual backoff (retry_base 60 s)...
    let early = w.deliver(now() + Duration::minutes(5));
    assert_eq!(
        (early.sent.len(), early.failed.len(), early.given_up.len()),
        (0, 0, 0),
        "{early:?}"
    );
    assert!(r.failed[0].next_attempt_at >= now() + Duration::minutes(30));
    // ...but once, after the longer wait; in doubt again: given up
    let retry = w.deliver(now() + Duration::hours(1));
    assert_eq!(retry.given_up.len(), 2, "{retry:?}");
    assert!(
        retry.given_up[0].error.contains("in doubt twice"),
        "{retry:?}"
    );
    for later in [Duration::hours(3), Duration::days(1), Duration::days(3)] {
        let r = w.deliver(now() + later);
        assert!(r.failed.is_empty() && r.given_up.is_empty(), "{r:?}");
    }
    std::thread::sleep(StdDuration::from_secs(4));
    assert_eq!(sink.received().len(), 4, "at most two copies of each");
    assert_eq!(w.store.undeliverable_mail().unwrap().len(), 2);
}

#[test]
fn two_passes_at_once_on_one_store_send_each_message_once() {
    // Digests queued while the relay was down, then two deliveries at the
    // same moment, each with its own connection and claim owner (two
    // processes on one store). Several trials: a race shows up as a copy.
    for trial in 0..3 {
        let closed = Closed::new();
        let mut w = World::new(closed.port());
        assert_eq!(w.run_and_queue().queued, 2);
        queue_one_more(&mut w, "orders", "us");
        // the relay was down
        assert_eq!(w.deliver(now()).failed.len(), 3);
        let sink = Sink::start();
        w.point_at(sink.port);
        let later = now() + Duration::hours(2);
        let (a, b) = (
            deliver_in_background(&w, later),
            deliver_in_background(&w, later),
        );
        let (a, b) = (a.join().unwrap(), b.join().unwrap());
        assert_eq!(
            a.sent.len() + b.sent.len(),
            3,
            "trial {trial}: each sent by exactly one pass: {a:?} {b:?}"
        );
        assert!(a.failed.is_empty() && b.failed.is_empty(), "{a:?} {b:?}");
        let got = sink.received();
        assert_eq!(got.len(), 3, "trial {trial}: never twice");
        assert!(w.store.unsent_mail().unwrap().is_empty());
        // a claim is the store's, not a lock file's
        assert!(
            w.store
                .all_mail()
                .unwrap()
                .iter()
                .all(|m| m.claim.is_none()),
            "claims are released once sent"
        );
    }
}

#[test]
fn a_claim_that_ran_out_is_taken_over_and_a_live_one_is_not() {
    let closed = Closed::new();
    let mut w = World::new(closed.port());
    queue_one(&mut w);
    let id = w.store.unsent_mail().unwrap()[0].id;
    let t = now();
    let other = w
        .store
        .claim(id, "other", t, t, t + Duration::minutes(5))
        .unwrap();
    assert_eq!(other, crate::store::Claim::Taken);
    // held: a second runner cannot take it, not even with the same message due
    let mine = w.store.claim(
        id,
        "me",
        t,
        t + Duration::minutes(1),
        t + Duration::minutes(6),
    );
    assert_eq!(mine.unwrap(), crate::store::Claim::HeldElsewhere);
    // the other run died: its claim runs out and the message is not lost
    let mine = w.store.claim(
        id,
        "me",
        t,
        t + Duration::minutes(6),
        t + Duration::minutes(11),
    );
    assert_eq!(mine.unwrap(), crate::store::Claim::Taken);
    w.store.mark_sent(id, t).unwrap();
    let late = w.store.claim(
        id,
        "other",
        t,
        t + Duration::minutes(7),
        t + Duration::minutes(12),
    );
    assert_eq!(late.unwrap(), crate::store::Claim::Gone);
}

/// Deliver on another thread (the call blocks on a hung server) with its own
/// store connection; returns the join handle.
fn deliver_in_background(w: &World, at: DateTime<Utc>) -> std::thread::JoinHandle<DeliveryReport> {
    let path = w.store_path();
    let smtp = w.config.smtp.clone().unwrap();
    let alerts = w.config.alerts.clone();
    std::thread::spawn(move || {
        let store = Store::open(&path).unwrap();
        deliver_due(&store, &smtp, &alerts, at, &Runner::this_process()).unwrap()
    })
}

/// (sent_at, attempt_started_at, attempts) of every outbox row, read through
/// a connection of its own, as another process would see it.
fn outbox_state(w: &World) -> Vec<(Option<i64>, Option<i64>, u32)> {
    let c = rusqlite::Connection::open(w.store_path()).unwrap();
    let mut st = c
        .prepare("SELECT sent_at, attempt_started_at, attempts FROM outbox ORDER BY id")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Findings for Sam only: one digest.
fn queue_one(w: &mut World) {
    let run = w.store.begin_run(RunKind::Once, now()).unwrap();
    let fs = [finding("orders", "eu", 29, Check::Seasonal)];
    let incidents = record(&mut w.store, run, &fs, &[], &w.config, now(), false).unwrap();
    assert_eq!(
        queue_digests(&mut w.store, &incidents, &w.config, now(), None, None)
            .unwrap()
            .queued,
        1
    );
}

#[test]
fn acceptance_is_recorded_before_quit() {
    // The server accepts the message, then never answers QUIT: a kill now
    // must not send it again, so it has to be marked sent already.
    let sink = Sink::start_with(&["--hang-on", "quit"]);
    let port = sink.port;
    let mut w = World::new(port);
    w.config.smtp.as_mut().unwrap().timeout = StdDuration::from_secs(2);
    queue_one(&mut w);
    let t = deliver_in_background(&w, now());
    sink.wait_for("quit");
    let state = outbox_state(&w);
    assert!(
        state[0].0.is_some(),
        "the server accepted the message but it is not marked sent while QUIT is pending: {state:?}"
    );
    let r = t.join().unwrap();
    assert_eq!(r.sent.len(), 1, "{r:?}");
    assert_eq!(sink.received().len(), 1);
}

#[test]
fn the_attempt_is_recorded_before_the_body_and_cleared_by_the_answer() {
    let sink = Sink::start_with(&["--hang-on", "data"]);
    let port = sink.port;
    let mut w = World::new(port);
    w.config.smtp.as_mut().unwrap().timeout = StdDuration::from_secs(2);
    queue_one(&mut w);
    let t = deliver_in_background(&w, now());
    sink.wait_for("data");
    let state = outbox_state(&w);
    assert_eq!(state.len(), 1);
    assert_eq!(
        (state[0].0, state[0].1),
        (None, Some(now().timestamp_millis())),
        "in flight: the server may have the message"
    );
    // No answer: the attempt times out, is recorded as failed, the mark cleared.
    let r = t.join().unwrap();
    assert_eq!(r.failed.len(), 1, "{r:?}");
    assert!(r.failed[0].timed_out);
    assert_eq!(outbox_state(&w), vec![(None, None, 1)]);
}

// ---- reminders and escalation ----

/// Monday 30 Nov 2020 07:00 UTC plus `hours`. The review is Wed 2 Dec 10:00
/// London (= UTC in winter), explanations due Tue 1 Dec 10:00 (+27 h); with
/// 24 h reminders the window opens Mon 30 Nov 10:00 (+3 h).
fn at(hours: i64) -> DateTime<Utc> {
    now() + Duration::hours(hours)
}

impl World {
    /// [`World`] with reminders 24 h before the deadline, escalation to the
    /// review organisers, and Sam's escalation going to his manager.
    fn with_reminders(port: u16) -> World {
        let mut w = World::new(port);
        w.config.reminders = crate::config::RemindersConfig {
            before_deadline: Some(Duration::hours(24)),
            escalate_to: Some("WBR organisers <wbr-leads@example.com>".parse().unwrap()),
        };
        for r in &mut w.config.owners.rules {
            if r.email
                .as_ref()
                .is_some_and(|m| m.email.to_string() == "sam@example.com")
            {
                r.escalate_to = Some("Sam's manager <boss@example.com>".parse().unwrap());
            }
        }
        w
    }

    /// The owner explains incident `id`, as the web form stores it.
    fn explain(&self, id: i64, text: &str) {
        self.store
            .add_explanation(&crate::store::explanations::NewExplanation {
                incident_id: id,
                cause: crate::model::Cause::KnownEvent,
                persistence: None,
                text: text.into(),
                author: "ana@example.com".into(),
                link_hash: "feed".into(),
                created_at: at(2).timestamp_millis(),
            })
            .unwrap();
    }

    fn incident_id(&self, metric: &str, region: &str) -> i64 {
        self.store
            .incidents()
            .unwrap()
            .into_iter()
            .find(|i| i.key.metric == metric && i.key.dim("region") == Some(region))
            .unwrap()
            .id
    }

    /// One reminder step and one delivery pass at `t`, as a cycle does them.
    fn remind(&mut self, t: DateTime<Utc>) -> (ReminderReport, DeliveryReport) {
        let r = queue_reminders(&mut self.store, &self.config, t, None).unwrap();
        (r, self.deliver(t))
    }
}

/// Messages the sink received since `skip`, as (to, subject, text, html).
fn parsed(sink: &Sink, skip: usize) -> Vec<(String, String, String, String)> {
    let mut out: Vec<_> = sink
        .received()
        .into_iter()
        .skip(skip)
        .map(|(raw, _)| {
            let m = MessageParser::default().parse(raw.as_slice()).unwrap();
            (
                to_of(&raw),
                m.subject().unwrap_or_default().to_string(),
                m.body_text(0).unwrap().to_string(),
                m.body_html(0).unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn an_unexplained_incident_gets_exactly_one_reminder_and_an_explained_one_none() {
    let sink = Sink::start();
    let port = sink.port;
    let mut w = World::with_reminders(port);
    w.run_and_queue();
    assert_eq!(w.deliver(now()).sent.len(), 2, "the two digests");
    let explained = w.incident_id("revenue", "us");
    w.explain(explained, "<script>alert(1)</script> Black Friday");

    // Before the window opens: nothing.
    let (r, _) = w.remind(at(2));
    assert_eq!((r.reminders, r.escalations), (0, 0), "{r:?}");
    assert_eq!(sink.received().len(), 2);

    // Inside the window: one reminder per owner with unexplained incidents.
    let (r, d) = w.remind(at(5));
    assert_eq!(
        (r.reminders, r.escalations, d.sent.len()),
        (2, 0, 2),
        "{r:?}"
    );
    let got = parsed(&sink, 2);
    let tos: Vec<&str> = got.iter().map(|m| m.0.as_str()).collect();
    assert_eq!(tos, vec!["ana@example.com", "sam@example.com"]);
    let (_, subject, text, html) = &got[0];
    assert_eq!(
        subject,
        "[callout] Reminder: 2 outliers to explain by Tue 1 Dec 10:00 (WBR Wed 2 Dec 10:00)"
    );
    assert!(text.contains("revenue (region=eu)"), "{text}");
    assert!(text.contains("revenue<b>& (region=eu)"), "{text}");
    assert!(
        !text.contains("region=us"),
        "the explained incident is left out: {text}"
    );
    assert!(html.contains("revenue&lt;b&gt;&amp; (region=eu)"), "{html}");
    assert!(
        !html.contains("<b>&"),
        "markup in a metric name is escaped: {html}"
    );
    assert!(
        text.contains("still open are reported to WBR organisers."),
        "Ana's escalation goes to the organisers: {text}"
    );
    assert!(got[1].2.contains("orders (region=eu)"));
    assert!(
        got[1]
            .2
            .contains("still open are reported to Sam's manager."),
        "Sam's rule escalates to his manager: {}",
        got[1].2
    );

    // Later, still before the deadline: never a second reminder.
    let (r, d) = w.remind(at(20));
    assert_eq!(
        (r.reminders, r.already_queued, d.sent.len()),
        (0, 2, 0),
        "{r:?}"
    );
    assert_eq!(sink.received().len(), 4);
}

#[test]
fn after_the_deadline_each_unexplained_incident_is_in_exactly_one_escalation() {
    let sink = Sink::start();
    let port = sink.port;
    let mut w = World::with_reminders(port);
    w.run_and_queue();
    w.deliver(now());
    w.explain(w.incident_id("revenue", "us"), "campaign ended");

    // Just before the deadline: no escalation (a reminder, as above).
    let (r, _) = w.remind(at(26));
    assert_eq!((r.reminders, r.escalations), (2, 0), "{r:?}");
    // Sam answers after his reminder, before the deadline.
    w.explain(w.incident_id("orders", "eu"), "feed was paused");
    let seen = sink.received().len();

    // Deadline passed (Tue 1 Dec 11:00): one message to the organisers
    // naming Ana and her two open items; Sam explained, so his manager
    // hears nothing.
    let (r, d) = w.remind(at(28));
    assert_eq!(
        (r.reminders, r.escalations, d.sent.len()),
        (0, 1, 1),
        "{r:?}"
    );
    let got = parsed(&sink, seen);
    assert_eq!(got.len(), 1);
    let (to, subject, text, html) = &got[0];
    assert_eq!(to, "wbr-leads@example.com");
    assert_eq!(
        subject,
        "[callout] WBR Wed 2 Dec 10:00: 2 outliers unexplained by 1 owner (due Tue 1 Dec 10:00)"
    );
    assert!(
        text.contains("Ana Ortiz <ana@example.com> (2 outliers):"),
        "{text}"
    );
    assert!(text.contains("revenue (region=eu)") && text.contains("revenue<b>& (region=eu)"));
    assert!(
        !text.contains("region=us") && !text.contains("orders"),
        "{text}"
    );
    assert!(html.contains("Ana Ortiz &lt;ana@example.com&gt;"), "{html}");
    assert!(!html.contains("<b>&"), "{html}");

    // The next cycles (review morning, after the review) send no second one.
    for h in [50, 52] {
        let (r, d) = w.remind(at(h));
        assert_eq!(
            (r.escalations, r.already_queued, d.sent.len()),
            (0, 1, 0),
            "{r:?}"
        );
    }
    assert_eq!(sink.received().len(), seen + 1);
}

#[test]
fn an_escalation_goes_to_the_owner_rules_address_and_an_unreachable_one_is_retried() {
    let closed = Closed::new();
    let mut w = World::with_reminders(closed.port());
    w.run_and_queue();
    // The server is down for the digests, the reminders and the first escalation pass.
    assert_eq!(w.deliver(now()).sent.len(), 0);
    let r = queue_reminders(&mut w.store, &w.config, at(28), None).unwrap();
    assert_eq!(
        r.escalations, 2,
        "organisers (Ana) and Sam's manager: {r:?}"
    );
    assert!(w.deliver(at(28)).sent.is_empty());
    let sink = Sink::start();
    w.point_at(sink.port);
    // Later passes deliver everything queued, each message once.
    let d = w.deliver(at(40));
    let d2 = w.deliver(at(60));
    assert_eq!(d.sent.len() + d2.sent.len(), 4, "2 digests + 2 escalations");
    let got = parsed(&sink, 0);
    let esc: Vec<&(String, String, String, String)> =
        got.iter().filter(|m| m.1.contains("unexplained")).collect();
    let tos: Vec<&str> = esc.iter().map(|m| m.0.as_str()).collect();
    assert_eq!(tos, vec!["boss@example.com", "wbr-leads@example.com"]);
    assert!(
        esc[0].2.contains("Sam Lee <sam@example.com> (1 outlier):"),
        "{}",
        esc[0].2
    );
    assert!(!esc[0].2.contains("revenue"));
    assert!(!esc[1].2.contains("orders"));
    // No reminder was queued: the run at the deadline is past the window.
    assert!(got.iter().all(|m| !m.1.contains("Reminder")));
}
