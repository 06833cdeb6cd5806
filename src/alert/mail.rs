//! Turning a rendered digest into an RFC 822 message, and the SMTP transport.
//!
//! Must not: touch the store; `alert` decides what to send and records it.

use std::time::SystemTime;

use chrono::{DateTime, Utc};
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::SmtpTransport;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Address, Message};

use super::AlertError;
use crate::config::{Secret, Security, SmtpConfig};
use crate::render::Digest;

/// Sender used when rendering without an `[smtp]` table (dry runs only).
pub const PLACEHOLDER_FROM: &str = "callout <callout@localhost>";

/// Header listing the incident ids a digest announces, for tooling and tests.
pub const INCIDENTS_HEADER: &str = "X-Callout-Incidents";

/// Who a message is from and how it is labelled.
#[derive(Debug, Clone)]
pub struct Envelope<'a> {
    /// From.
    pub from: &'a Mailbox,
    /// Reply-To, if configured.
    pub reply_to: Option<&'a Mailbox>,
    /// List-Id value, if configured.
    pub list_id: Option<&'a str>,
}

/// RFC 2919 wants `<list-id>`; accept the bare id from the config too.
fn list_id_value(id: &str) -> String {
    if id.contains('<') {
        id.to_string()
    } else {
        format!("<{id}>")
    }
}

/// 64-bit FNV-1a: a stable, dependency-free fingerprint for Message-IDs.
pub fn fingerprint(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A Message-ID derived from the digest's idempotency key, so a digest keeps
/// its id however often it is rendered and receivers can spot duplicates.
pub fn message_id(key: &str, from: &Mailbox) -> String {
    format!(
        "<callout.{:016x}@{}>",
        fingerprint(key),
        from.email.domain()
    )
}

/// Build the multipart/alternative (text + HTML) message for one digest.
pub fn build(
    env: &Envelope<'_>,
    to: &Mailbox,
    digest: &Digest,
    message_id: String,
    incident_ids: &[i64],
    date: DateTime<Utc>,
) -> Result<Message, lettre::error::Error> {
    let mut b = Message::builder()
        .from(env.from.clone())
        .to(to.clone())
        .subject(digest.subject.clone())
        .message_id(Some(message_id))
        .date(SystemTime::from(date))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".to_string(),
        ));
    if let Some(r) = env.reply_to {
        b = b.reply_to(r.clone());
    }
    if let Some(id) = env.list_id {
        b = b.raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("List-Id"),
            list_id_value(id),
        ));
    }
    if !incident_ids.is_empty() {
        let ids: Vec<String> = incident_ids.iter().map(i64::to_string).collect();
        b = b.raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str(INCIDENTS_HEADER),
            ids.join(","),
        ));
    }
    b.multipart(MultiPart::alternative_plain_html(
        digest.text.clone(),
        digest.html.clone(),
    ))
}

/// Read a secret now (at send time), so a rotated password needs no restart.
pub fn read_secret(secret: &Secret) -> Result<String, AlertError> {
    let (what, value) = match secret {
        Secret::Env(var) => (
            format!("environment variable `{var}`"),
            std::env::var(var).map_err(|e| AlertError::Secret {
                what: format!("environment variable `{var}`"),
                detail: e.to_string(),
            })?,
        ),
        Secret::File(path) => (
            format!("file `{}`", path.display()),
            std::fs::read_to_string(path).map_err(|e| AlertError::Secret {
                what: format!("file `{}`", path.display()),
                detail: e.to_string(),
            })?,
        ),
    };
    let value = value.trim().to_string();
    if value.is_empty() {
        return Err(AlertError::Secret {
            what,
            detail: "it is empty".into(),
        });
    }
    Ok(value)
}

/// An SMTP transport for the config: security mode, optional login, timeout.
pub fn transport(smtp: &SmtpConfig) -> Result<SmtpTransport, AlertError> {
    let tls_params = || {
        TlsParameters::new(smtp.host.clone()).map_err(|source| AlertError::Transport {
            host: smtp.host.clone(),
            port: smtp.port,
            source,
        })
    };
    let tls = match smtp.security {
        Security::StartTls => Tls::Required(tls_params()?),
        Security::Tls => Tls::Wrapper(tls_params()?),
        Security::None => Tls::None,
    };
    let mut b = SmtpTransport::builder_dangerous(smtp.host.as_str())
        .port(smtp.port)
        .tls(tls)
        .timeout(Some(smtp.timeout));
    if let Some(user) = &smtp.username {
        let password = match &smtp.password {
            Some(secret) => read_secret(secret)?,
            None => {
                return Err(AlertError::Secret {
                    what: "smtp.username".into(),
                    detail: "a login name is set but neither password_env nor password_file".into(),
                });
            }
        };
        b = b.credentials(Credentials::new(user.clone(), password));
    }
    Ok(b.build())
}

/// Parse a stored envelope address.
pub fn address(value: &str, context: &'static str) -> Result<Address, AlertError> {
    value.parse().map_err(|source| AlertError::Address {
        value: value.to_string(),
        context,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_id_gets_angle_brackets_once() {
        assert_eq!(list_id_value("wbr.example.com"), "<wbr.example.com>");
        assert_eq!(
            list_id_value("WBR <wbr.example.com>"),
            "WBR <wbr.example.com>"
        );
    }

    #[test]
    fn message_ids_are_stable_per_key() {
        let from: Mailbox = "callout <callout@example.com>".parse().unwrap();
        let a = message_id("digest:ana@example.com:1,2", &from);
        assert_eq!(a, message_id("digest:ana@example.com:1,2", &from));
        assert_ne!(a, message_id("digest:ana@example.com:1,3", &from));
        assert!(
            a.starts_with("<callout.") && a.ends_with("@example.com>"),
            "{a}"
        );
    }

    #[test]
    fn secrets_come_from_files_trimmed_and_empty_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        std::fs::write(&p, "s3cret\n").unwrap();
        assert_eq!(read_secret(&Secret::File(p.clone())).unwrap(), "s3cret");
        std::fs::write(&p, "\n").unwrap();
        let e = read_secret(&Secret::File(p)).unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
        let e = read_secret(&Secret::Env("CALLOUT_TEST_NO_SUCH_VAR_7".into())).unwrap_err();
        assert!(e.to_string().contains("CALLOUT_TEST_NO_SUCH_VAR_7"), "{e}");
    }
}
