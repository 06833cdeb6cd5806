//! Black-box tests of the daemon: `callout run --config PATH` (no `--once`) on
//! an every-second schedule, driven with real signals sent by `kill`.
//!
//! The daemon logs JSON lines on stderr (`--log-format json`, `CALLOUT_LOG=info`);
//! the tests wait for its messages instead of sleeping, and never assert on
//! elapsed time: every wait gives up only after [`PATIENCE`], which exists so a
//! hung daemon fails the test rather than hanging it. Timing of the loop itself
//! (timeouts, skipped fire times) is tested in `src/daemon.rs` on virtual time.

// Helpers outside #[test] fns are not covered by clippy's allow-unwrap-in-tests;
// here a failed unwrap is a failed test, which is what it should be.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    reason = "a failed assumption in a test or bench is a failed test"
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long any wait may take before the test fails: generous, for a loaded CI
/// machine; a passing run waits only as long as the daemon needs.
const PATIENCE: Duration = Duration::from_secs(180);

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// A config in `dir` with an every-second schedule and one `[[source]]` at
/// `location` (a `path = …` or `url = …` line).
fn write_config(dir: &Path, location: &str) -> PathBuf {
    let p = dir.join("callout.toml");
    let text = format!(
        r#"[store]
path = "state.db"

[schedule]
cron = "* * * * * *"
timezone = "UTC"
run_timeout_secs = 600

[[source]]
name = "shop"
{location}
format = "csv"
time_column = "date"
dimensions = ["region"]
"#
    );
    std::fs::write(&p, text).unwrap();
    p
}

fn toml_str(s: &str) -> String {
    format!("{s:?}")
}

/// A running `callout run` whose stderr log is collected line by line.
struct Daemon {
    child: Child,
    /// Every log line so far, parsed (a line that is not JSON is kept as a string).
    log: Arc<Mutex<Vec<serde_json::Value>>>,
    /// The thread reading stderr; it ends at EOF, i.e. once the process has exited.
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Daemon {
    fn start(config: &Path) -> Daemon {
        let mut child = Command::new(env!("CARGO_BIN_EXE_callout"))
            .args([
                "run",
                "--config",
                config.to_str().unwrap(),
                "--log-format",
                "json",
            ])
            .env("CALLOUT_LOG", "info")
            .env_remove("CALLOUT_RUN_AT_START")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start callout");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&log);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let v = serde_json::from_str(&line).unwrap_or(serde_json::Value::String(line));
                sink.lock().unwrap().push(v);
            }
        });
        Daemon {
            child,
            log,
            reader: Some(reader),
        }
    }

    /// After the process exited: wait until every line it wrote is collected.
    fn drain(&mut self) {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// Send a signal (`TERM`, `HUP`, `INT`) with kill(1).
    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name} failed");
    }

    /// The `message` of every log line so far, in order.
    fn messages(&self) -> Vec<String> {
        self.log.lock().unwrap().iter().map(message).collect()
    }

    fn count(&self, msg: &str) -> usize {
        self.messages().iter().filter(|m| m.as_str() == msg).count()
    }

    /// The first log line whose message is `msg`.
    fn line(&self, msg: &str) -> Option<serde_json::Value> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .find(|v| message(v) == msg)
            .cloned()
    }

    fn dump(&self) -> String {
        let lines: Vec<String> = self
            .log
            .lock()
            .unwrap()
            .iter()
            .map(|v| v.to_string())
            .collect();
        lines.join("\n")
    }

    /// Wait until `cond` holds, failing with the log after `timeout`.
    fn wait_for(&mut self, what: &str, timeout: Duration, cond: impl Fn(&Daemon) -> bool) {
        let give_up = Instant::now() + timeout;
        while !cond(self) {
            if let Some(status) = self.child.try_wait().unwrap() {
                self.drain();
                if cond(self) {
                    return;
                }
                panic!(
                    "callout exited ({status}) while waiting for {what}; log:\n{}",
                    self.dump()
                );
            }
            assert!(
                Instant::now() < give_up,
                "timed out waiting for {what}; log:\n{}",
                self.dump()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait for the process to exit, failing with the log after `timeout`.
    fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let give_up = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                self.drain();
                return status;
            }
            assert!(
                Instant::now() < give_up,
                "callout did not exit within {timeout:?}; log:\n{}",
                self.dump()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // A failed test must not leave the daemon behind.
        if self.is_running() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn message(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        v => v["fields"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    }
}

/// An HTTP server for one CSV file whose *first* response is held back until
/// the test releases it, so a run is provably in progress meanwhile.
struct SlowServer {
    url: String,
    /// Receives once the first request has arrived.
    requested: mpsc::Receiver<()>,
    /// Send to let the first response go.
    release: mpsc::Sender<()>,
}

fn slow_server(body: Vec<u8>) -> SlowServer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/shop_daily.csv", listener.local_addr().unwrap());
    let (requested_tx, requested) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        for (i, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { continue };
            // Read the request head.
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n")
                && stream.read(&mut byte).map(|n| n == 1).unwrap_or(false)
            {
                head.push(byte[0]);
            }
            if i == 0 {
                let _ = requested_tx.send(());
                let _ = release_rx.recv_timeout(PATIENCE);
            }
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(&body);
        }
    });
    SlowServer {
        url,
        requested,
        release,
    }
}

#[test]
fn sigterm_during_a_run_lets_it_finish_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let server = slow_server(std::fs::read(fixture("shop_daily.csv")).unwrap());
    let config = write_config(dir.path(), &format!("url = {}", toml_str(&server.url)));
    let mut d = Daemon::start(&config);

    // The first scheduled run is now blocked reading the source.
    server
        .requested
        .recv_timeout(PATIENCE)
        .unwrap_or_else(|_| panic!("the daemon never fetched the source; log:\n{}", d.dump()));
    d.wait_for("the run to be logged as started", PATIENCE, |d| {
        d.count("run started") == 1
    });
    d.signal("TERM");
    d.wait_for("the shutdown to be acknowledged", PATIENCE, |d| {
        d.count("shutdown requested") == 1
    });
    // Still running: it waits for the run in progress.
    assert!(
        d.is_running(),
        "exited before the run finished; log:\n{}",
        d.dump()
    );
    assert_eq!(d.count("run completed"), 0, "{}", d.dump());

    server.release.send(()).unwrap();
    let status = d.wait_exit(PATIENCE);
    assert_eq!(status.code(), Some(0), "log:\n{}", d.dump());
    let msgs = d.messages();
    let pos = |m: &str| {
        msgs.iter()
            .position(|x| x == m)
            .unwrap_or_else(|| panic!("no {m:?} in:\n{}", d.dump()))
    };
    assert!(
        pos("shutdown requested") < pos("run completed"),
        "{}",
        d.dump()
    );
    assert!(pos("run completed") < pos("daemon stopped"), "{}", d.dump());
    assert_eq!(
        d.count("run started"),
        1,
        "no new run after the shutdown request:\n{}",
        d.dump()
    );
    // ... and recorded: the store has exactly one finished run
    let db = rusqlite::Connection::open(dir.path().join("state.db")).unwrap();
    let (runs, finished): (i64, i64) = db
        .query_row(
            "SELECT COUNT(*), COUNT(finished_at) FROM runs WHERE mode = 'run'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((runs, finished), (1, 1), "{}", d.dump());
}

#[test]
fn sighup_with_a_broken_config_keeps_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let csv = fixture("shop_daily.csv").display().to_string();
    let config = write_config(dir.path(), &format!("path = {}", toml_str(&csv)));
    let mut d = Daemon::start(&config);
    d.wait_for("a completed run", PATIENCE, |d| {
        d.count("run completed") >= 1
    });

    std::fs::write(&config, "[schedule\ncron = \"* * * * * *\"\n").unwrap();
    d.signal("HUP");
    d.wait_for("the reload to fail", PATIENCE, |d| {
        d.count("config reload failed; keeping the previous config") == 1
    });
    let failed = d
        .line("config reload failed; keeping the previous config")
        .unwrap();
    assert_eq!(failed["level"], "ERROR", "{failed}");
    let error = failed["fields"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("callout.toml"),
        "the error names the file: {failed}"
    );

    // The old config keeps running on its schedule.
    let done = d.count("run completed");
    d.wait_for("two more runs", PATIENCE, |d| {
        d.count("run completed") >= done + 2
    });
    assert!(d.is_running());

    // A good config is picked up.
    write_config(dir.path(), &format!("path = {}", toml_str(&csv)));
    d.signal("HUP");
    d.wait_for("the reload to succeed", PATIENCE, |d| {
        d.count("config reloaded") == 1
    });
    let done = d.count("run completed");
    d.wait_for("a run with the new config", PATIENCE, |d| {
        d.count("run completed") > done
    });

    d.signal("TERM");
    let status = d.wait_exit(PATIENCE);
    assert_eq!(status.code(), Some(0), "log:\n{}", d.dump());
    assert_eq!(d.count("run failed"), 0, "{}", d.dump());
}

#[test]
fn sigint_while_idle_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let csv = fixture("shop_daily.csv").display().to_string();
    let config = write_config(dir.path(), &format!("path = {}", toml_str(&csv)));
    // Once a year: the daemon only waits.
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("* * * * * *", "0 0 0 1 1 *");
    std::fs::write(&config, text).unwrap();
    let mut d = Daemon::start(&config);
    d.wait_for("the daemon to wait", PATIENCE, |d| {
        d.count("waiting for the next run") == 1
    });
    d.signal("INT");
    let status = d.wait_exit(PATIENCE);
    assert_eq!(status.code(), Some(0), "log:\n{}", d.dump());
    assert_eq!(d.count("run started"), 0, "{}", d.dump());
}
