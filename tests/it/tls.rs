//! SMTP over TLS against a real server with a private CA made at test time:
//! `tests/smtp_sink.py --tls starttls|implicit` (aiosmtpd + python
//! `cryptography`) and `callout test-email`, so the whole path — config,
//! `smtp.ca_file`, lettre's rustls parameters, the handshake — is exercised.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use crate::support::common;
use common::{root, text};

/// A TLS SMTP server writing each message to `mail`; its CA is `certs/ca.pem`.
struct TlsSink {
    child: Child,
    port: u16,
}

impl TlsSink {
    fn start(mode: &str, mail: &Path, certs: &Path) -> TlsSink {
        // Its log (a refused handshake is a traceback there) goes beside the certs.
        let log = certs.join("sink.log");
        let mut child = Command::new("python3")
            .arg(root().join("tests/smtp_sink.py"))
            .args(["--port", "0"])
            .arg("--dir")
            .arg(mail)
            .args(["--tls", mode])
            .arg("--certs")
            .arg(certs)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        std::io::BufRead::read_line(&mut out, &mut line).unwrap();
        let port = match line.split_whitespace().collect::<Vec<_>>()[..] {
            ["ready", port] => port.parse().unwrap(),
            _ => panic!(
                "TLS sink did not start (needs `pip install aiosmtpd cryptography`): {line:?}\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            ),
        };
        TlsSink { child, port }
    }
}

impl Drop for TlsSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A config in `dir` for the sink; `extra` goes into `[smtp]` (e.g. `ca_file`).
fn config(dir: &Path, security: &str, port: u16, extra: &str) -> PathBuf {
    let p = dir.join("callout.toml");
    std::fs::write(
        &p,
        format!(
            r#"[store]
path = "state.db"

[[source]]
name = "shop"
path = "shop.csv"

[smtp]
host = "localhost"
port = {port}
security = "{security}"
from = "callout <callout@example.com>"
timeout_secs = 10
{extra}
"#
        ),
    )
    .unwrap();
    p
}

fn test_email(config: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_callout"))
        .args(["test-email", "--config", config.to_str().unwrap()])
        .args(["--to", "ana@example.com"])
        .env_remove("CALLOUT_LOG")
        .env_remove("SSL_CERT_FILE")
        .output()
        .unwrap()
}

fn delivered(mail: &Path) -> usize {
    std::fs::read_dir(mail)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .count()
        })
        .unwrap_or(0)
}

/// With `ca_file` (relative to the config file) the message arrives; without
/// it the same server is refused, with a message that says why and what to set.
fn trusted_only_with_ca_file(mode: &str, security: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mail = dir.path().join("mail");
    // The sink writes ca.pem next to the config, so `ca_file = "ca.pem"` is relative.
    let sink = TlsSink::start(mode, &mail, dir.path());

    let without = config(dir.path(), security, sink.port, "");
    let out = test_email(&without);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("not trusted"), "{err}");
    assert!(err.contains("smtp.ca_file"), "{err}");
    assert_eq!(delivered(&mail), 0, "{err}");

    let with = config(dir.path(), security, sink.port, "ca_file = \"ca.pem\"");
    let out = test_email(&with);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(delivered(&mail), 1);
    let raw = std::fs::read_dir(&mail)
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .map(|e| std::fs::read(e.path()).unwrap())
        .unwrap();
    assert!(text(&raw).contains("ana@example.com"));
}

#[test]
fn starttls_with_a_private_ca_needs_ca_file() {
    trusted_only_with_ca_file("starttls", "starttls");
}

#[test]
fn implicit_tls_with_a_private_ca_needs_ca_file() {
    trusted_only_with_ca_file("implicit", "tls");
}

#[test]
fn a_bad_ca_file_is_a_config_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key-only.pem"), "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n").unwrap();
    std::fs::write(
        dir.path().join("garbage.pem"),
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    for (file, needle) in [
        ("missing.pem", "cannot read the CA certificate file"),
        ("key-only.pem", "holds no PEM certificate"),
        ("garbage.pem", "is not a valid PEM CA certificate"),
    ] {
        let cfg = config(
            dir.path(),
            "starttls",
            587,
            &format!("ca_file = \"{file}\""),
        );
        let out = Command::new(env!("CARGO_BIN_EXE_callout"))
            .args(["check-config", "--config", cfg.to_str().unwrap()])
            .output()
            .unwrap();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{file}: {err}");
        assert!(err.contains("smtp.ca_file"), "{file}: {err}");
        assert!(err.contains(needle), "{file}: {err}");
        // Named as resolved against the config file's folder.
        let full = dir.path().join(file).display().to_string();
        assert!(err.contains(&full), "{file}: {err}");
    }
}
