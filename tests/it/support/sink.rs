//! The real SMTP server of the black-box tests (`tests/smtp_sink.py`,
//! aiosmtpd) as a child process, and what it received.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A real SMTP server writing each message it accepts to `dir` as `.eml`;
/// killed on drop.
pub struct Sink {
    child: Child,
    /// The port it listens on (it binds port 0 and says which it got).
    pub port: u16,
}

impl Sink {
    /// Listening on a port of its own, with extra arguments
    /// (`["--ack-after", "3"]`).
    pub fn start(dir: &Path, extra: &[&str]) -> Sink {
        std::fs::create_dir_all(dir).unwrap();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_sink.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args(["--port", "0", "--dir", dir.to_str().unwrap()])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let port = ready_port(&mut child);
        Sink { child, port }
    }
}

/// The port in the `ready PORT` line a sink started with `--port 0` prints.
pub fn ready_port(child: &mut Child) -> u16 {
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    match line.split_whitespace().collect::<Vec<_>>()[..] {
        ["ready", port] => port.parse().unwrap(),
        _ => panic!("sink did not start: {line:?}"),
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The raw messages in `dir`, in arrival order.
pub fn messages(dir: &Path) -> Vec<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "eml"));
    files.sort();
    files
        .iter()
        .map(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned())
        .collect()
}

/// A message's text part, decoded (quoted-printable and all).
pub fn body_text(raw: &str) -> String {
    let m = mail_parser::MessageParser::default()
        .parse(raw.as_bytes())
        .unwrap();
    m.body_text(0).unwrap_or_default().to_string()
}

/// A message's `To` address.
pub fn to_of(raw: &str) -> String {
    let m = mail_parser::MessageParser::default()
        .parse(raw.as_bytes())
        .unwrap();
    m.to()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .unwrap_or_default()
        .to_string()
}

/// A message's subject.
pub fn subject(raw: &str) -> String {
    let m = mail_parser::MessageParser::default()
        .parse(raw.as_bytes())
        .unwrap();
    m.subject().unwrap_or_default().to_string()
}

/// Point the `[smtp]` section of the config file `cfg` at `port`: the relay
/// a test starts after writing the config (a sink gets its port when it
/// starts, so a test that first runs with the relay down and then brings
/// one up moves the config to it).
pub fn point_smtp_at(cfg: &Path, port: u16) {
    let text = std::fs::read_to_string(cfg).unwrap();
    let mut section = "";
    let mut moved = false;
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            let t = l.trim();
            if t.starts_with('[') {
                section = t;
            } else if section == "[smtp]" && t.starts_with("port = ") {
                moved = true;
                return format!("port = {port}");
            }
            l.to_string()
        })
        .collect();
    assert!(moved, "no `port` in [smtp] of {}", cfg.display());
    std::fs::write(cfg, lines.join("\n") + "\n").unwrap();
}
