//! Helpers most integration tests need: the checkout's root, process output
//! as text, a TCP port where nothing listens, a fixed hash for test data.
//!
//! No test picks a port for a server by binding it and letting go (another
//! process may take it in between): servers bind port 0 and say which port
//! they got; a port that must refuse connections is held by [`ClosedPort`].

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

/// Run the built `callout` with `args` (no `CALLOUT_LOG`); the command must
/// succeed, else the test fails with what it printed.
pub fn callout_ok(args: &[&str]) -> std::process::Output {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_callout"))
        .args(args)
        .env_remove("CALLOUT_LOG")
        .output()
        .expect("run callout");
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

/// A fixed hash of `key` in [0, 1) (SplitMix64's finaliser): test exports
/// whose every prefix is the same rows.
pub fn unit_hash(key: u64) -> f64 {
    let mut z = key;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// The checkout (fixtures, configs, scripts are found from here).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Process output as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A local port that refuses connections for as long as this value lives:
/// the client end of a loopback connection owns it, and nothing listens on
/// it (a connection to it is refused), while no other socket can bind it.
pub struct ClosedPort {
    _listener: TcpListener,
    client: TcpStream,
    _server: TcpStream,
}

impl ClosedPort {
    /// Hold a fresh one.
    pub fn new() -> ClosedPort {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        ClosedPort {
            _listener: listener,
            client,
            _server: server,
        }
    }

    /// Its number.
    pub fn port(&self) -> u16 {
        self.client.local_addr().unwrap().port()
    }
}

/// Where a `callout serve` (or a daemon with `[web]`) whose log (stderr)
/// goes to `log` answers, once it says so: `http://127.0.0.1:PORT` from its
/// `serving on http://…` line. Its `listen` asks for port 0, so the port is
/// the one it bound. Waits at most a minute (a hang guard, not a timing
/// assertion); panics if the process exits first.
pub fn serving_at(child: &mut Child, log: &Path) -> String {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let said = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(url) = said
            .split("serving on ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
        {
            return url.to_string();
        }
        if let Some(s) = child.try_wait().unwrap() {
            panic!("exited {s} before serving: {said}");
        }
        assert!(Instant::now() < until, "not serving: {said}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
