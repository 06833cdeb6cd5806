//! Turning a rendered digest into an RFC 822 message, and the SMTP transport.
//!
//! Two ways to send: [`transport`] (lettre's all-in-one `SmtpTransport`, for
//! `test-email`) and a [`Session`] that exposes the steps of one SMTP
//! transaction, so that delivery can record "handing it over now" right before
//! the message body and "accepted" right after the server's reply, before
//! QUIT (see `alert::deliver_due`).
//!
//! Must not: touch the store; `alert` decides what to send and records it.

use std::time::SystemTime;

use chrono::{DateTime, Utc};
use lettre::address::Envelope as SmtpEnvelope;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::SmtpTransport;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{SmtpConnection, Tls, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Quit, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::{Address, Message};

use super::AlertError;
use crate::config::{Secret, Security, SmtpConfig};
use crate::render::Digest;
use crate::store::NewMail;

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

/// The outbox row for `digest` to `to` under idempotency `key`, built once
/// (a retry sends these bytes). A message that cannot be built is logged
/// and comes back as `(recipient, error)` for the run's report.
pub fn outbox_row(
    env: &Envelope<'_>,
    store_id: &str,
    to: &Mailbox,
    key: String,
    digest: Digest,
    incident_ids: Vec<i64>,
    now: DateTime<Utc>,
) -> Result<crate::store::NewMail, (String, String)> {
    let mid = message_id(store_id, &key, env.from);
    let message = match build(env, to, &digest, mid, &incident_ids, now) {
        Ok(m) => m.formatted(),
        Err(source) => {
            let e = AlertError::Build {
                owner: to.to_string(),
                source,
            };
            tracing::error!(to = %to, "{e}");
            return Err((to.to_string(), e.to_string()));
        }
    };
    Ok(NewMail {
        channel: crate::store::Channel::Email,
        owner: to.to_string(),
        recipient: to.email.to_string(),
        subject: digest.subject,
        message,
        incident_ids,
        idempotency_key: key,
        created_at: now.timestamp_millis(),
    })
}

/// A Message-ID from the store's random id and the digest's idempotency key:
/// globally unique (another store — a reset, a second deployment — has
/// another id, so clients that drop duplicates never drop a new digest) and
/// stable per digest (the message is built once when queued; a retry sends
/// the same bytes, so a duplicate after a crash can be recognised).
pub fn message_id(store_id: &str, key: &str, from: &Mailbox) -> String {
    let scope: String = store_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    format!(
        "<callout.{scope}.{:016x}@{}>",
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
    // "image/png" always parses; without it the digest goes out without charts
    let png = ContentType::parse("image/png").ok();
    let Some(png) = png.filter(|_| !digest.images.is_empty()) else {
        return b.multipart(MultiPart::alternative_plain_html(
            digest.text.clone(),
            digest.html.clone(),
        ));
    };
    // text | (HTML + the images it shows by Content-ID)
    let mut related = MultiPart::related().singlepart(SinglePart::html(digest.html.clone()));
    for img in &digest.images {
        related = related
            .singlepart(Attachment::new_inline(img.cid.clone()).body(img.png.clone(), png.clone()));
    }
    b.multipart(
        MultiPart::alternative()
            .singlepart(SinglePart::plain(digest.text.clone()))
            .multipart(related),
    )
}

/// Read a secret now (at send time), so a rotated password needs no restart.
pub fn read_secret(secret: &Secret) -> Result<String, AlertError> {
    secret.read().map_err(|detail| AlertError::Secret {
        what: secret.describe(),
        detail,
    })
}

/// The TLS mode and parameters for the config's security setting.
/// Both [`transport`] and [`Session::connect`] use it.
fn tls(smtp: &SmtpConfig) -> Result<Tls, AlertError> {
    // The public roots (webpki-roots) plus `smtp.ca_file`, for STARTTLS and
    // implicit TLS alike. `SSL_CERT_FILE` is not read: the CA is in the config.
    let tls_params = || {
        let mut b = TlsParameters::builder(smtp.host.clone());
        if let Some(ca) = &smtp.ca {
            b = b.add_root_certificate(ca.certificate.clone());
        }
        b.build_rustls().map_err(|source| AlertError::Transport {
            host: smtp.host.clone(),
            port: smtp.port,
            source,
        })
    };
    Ok(match smtp.security {
        Security::StartTls => Tls::Required(tls_params()?),
        Security::Tls => Tls::Wrapper(tls_params()?),
        Security::None => Tls::None,
    })
}

/// The login, with the password read now; `None` without `smtp.username`.
fn credentials(smtp: &SmtpConfig) -> Result<Option<Credentials>, AlertError> {
    let Some(user) = &smtp.username else {
        return Ok(None);
    };
    let password = match &smtp.password {
        Some(secret) => read_secret(secret)?,
        None => {
            return Err(AlertError::Secret {
                what: "smtp.username".into(),
                detail: "a login name is set but neither password_env nor password_file".into(),
            });
        }
    };
    Ok(Some(Credentials::new(user.clone(), password)))
}

/// An SMTP transport for the config: security mode, optional login, timeout.
pub fn transport(smtp: &SmtpConfig) -> Result<SmtpTransport, AlertError> {
    let mut b = SmtpTransport::builder_dangerous(smtp.host.as_str())
        .port(smtp.port)
        .tls(tls(smtp)?)
        .timeout(Some(smtp.timeout));
    if let Some(c) = credentials(smtp)? {
        b = b.credentials(c);
    }
    Ok(b.build())
}

/// Why a step of a [`Session`] failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The config could not be turned into a connection (TLS, password).
    #[error(transparent)]
    Setup(AlertError),
    /// The server did not answer within `smtp.timeout_secs` (a read timeout
    /// surfaces as "os error 11", which says nothing to a person).
    #[error("timed out after {secs} s waiting for the server")]
    Timeout {
        /// The configured timeout.
        secs: u64,
    },
    /// The server refused, or the connection failed (with what to do about
    /// an untrusted certificate).
    #[error("{0}{hint}", hint = tls_hint(.0))]
    Smtp(#[source] lettre::transport::smtp::Error),
}

impl SessionError {
    fn from_smtp(e: lettre::transport::smtp::Error, smtp: &SmtpConfig) -> SessionError {
        if is_timeout(&e) {
            SessionError::Timeout {
                secs: smtp.timeout.as_secs(),
            }
        } else {
            SessionError::Smtp(e)
        }
    }

    /// True when the server did not answer in time.
    pub fn is_timeout(&self) -> bool {
        matches!(self, SessionError::Timeout { .. })
    }

    /// True when the server refused for good (a 5xx reply): sending the same
    /// message again would be refused again.
    pub fn is_permanent(&self) -> bool {
        matches!(self, SessionError::Smtp(e) if e.is_permanent())
    }
}

/// A socket read or connect that ran out of time, anywhere in the chain.
fn is_timeout(e: &lettre::transport::smtp::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            )
        {
            return true;
        }
        cur = err.source();
    }
    false
}

/// One SMTP connection, driven step by step.
pub struct Session<'a> {
    conn: SmtpConnection,
    smtp: &'a SmtpConfig,
}

impl<'a> Session<'a> {
    /// Connect, greet, upgrade to TLS as configured and log in. Every read
    /// and the connect itself wait at most `smtp.timeout`.
    pub fn connect(smtp: &'a SmtpConfig) -> Result<Session<'a>, SessionError> {
        let tls = tls(smtp).map_err(SessionError::Setup)?;
        let login = credentials(smtp).map_err(SessionError::Setup)?;
        let hello = ClientId::default();
        let wrapper = match &tls {
            Tls::Wrapper(p) => Some(p),
            _ => None,
        };
        let smtp_err = |e| SessionError::from_smtp(e, smtp);
        let mut conn = SmtpConnection::connect(
            (smtp.host.as_str(), smtp.port),
            Some(smtp.timeout),
            &hello,
            wrapper,
            None,
        )
        .map_err(smtp_err)?;
        if let Tls::Required(p) = &tls {
            conn.starttls(p, &hello).map_err(smtp_err)?;
        }
        if let Some(c) = login {
            conn.auth(DEFAULT_MECHANISMS, &c).map_err(smtp_err)?;
        }
        Ok(Session { conn, smtp })
    }

    /// MAIL FROM, RCPT TO and DATA: after this the server waits for the body.
    pub fn start(&mut self, env: &SmtpEnvelope, message: &[u8]) -> Result<(), SessionError> {
        let mut params = Vec::new();
        let info = self.conn.server_info();
        let non_ascii = env
            .to()
            .iter()
            .chain(env.from())
            .any(|a| !AsRef::<str>::as_ref(a).is_ascii());
        if non_ascii && info.supports_feature(Extension::SmtpUtfEight) {
            params.push(MailParameter::SmtpUtfEight);
        }
        if !message.is_ascii() && info.supports_feature(Extension::EightBitMime) {
            params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        let smtp = self.smtp;
        let smtp_err = |e| SessionError::from_smtp(e, smtp);
        self.conn
            .command(Mail::new(env.from().cloned(), params))
            .map_err(smtp_err)?;
        for to in env.to() {
            self.conn
                .command(Rcpt::new(to.clone(), Vec::new()))
                .map_err(smtp_err)?;
        }
        self.conn.command(Data).map_err(smtp_err)?;
        Ok(())
    }

    /// Send the body; `Ok` is the server's acceptance.
    pub fn body(&mut self, message: &[u8]) -> Result<(), SessionError> {
        let smtp = self.smtp;
        self.conn
            .message(message)
            .map(|_| ())
            .map_err(|e| SessionError::from_smtp(e, smtp))
    }

    /// End the session: QUIT when the server is answering (after a refusal or
    /// a delivery), just close the socket after a timeout or network error
    /// (waiting for a hung server's reply to QUIT would cost another timeout).
    /// Returns true when the server did not answer QUIT in time.
    pub fn close(mut self, after: Option<&SessionError>) -> bool {
        if after.is_some_and(is_network) {
            return false;
        }
        // `command`, not `quit`: lettre's `quit` sends QUIT a second time
        // after a failed first one, doubling the wait on a hung server.
        match self.conn.command(Quit) {
            Ok(_) => false,
            Err(e) => is_timeout(&e),
        }
    }
}

/// A failure of the connection itself rather than a refusal by the server.
fn is_network(e: &SessionError) -> bool {
    match e {
        SessionError::Smtp(e) => !(e.is_permanent() || e.is_transient()),
        SessionError::Timeout { .. } => true,
        SessionError::Setup(_) => false,
    }
}

/// What to do about a send error, when that is not obvious from lettre's text:
/// a server certificate from an unknown CA means the relay's CA is not trusted.
/// Empty for every other error.
pub fn tls_hint(error: &lettre::transport::smtp::Error) -> &'static str {
    // rustls reports it as `invalid peer certificate: UnknownIssuer`, wrapped
    // in an io::Error whose source chain hides the rustls error, so match the text.
    if error.to_string().contains("UnknownIssuer") {
        " (the server's TLS certificate is not trusted: it was issued by an unknown CA; \
         if the relay uses a private or self-signed CA, set smtp.ca_file to that CA's PEM certificate)"
    } else {
        ""
    }
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
    fn message_ids_are_stable_per_key_and_differ_between_stores() {
        let from: Mailbox = "callout <callout@example.com>".parse().unwrap();
        let a = message_id("0a1b", "digest:ana@example.com:1,2", &from);
        assert_eq!(a, message_id("0a1b", "digest:ana@example.com:1,2", &from));
        assert_ne!(a, message_id("0a1b", "digest:ana@example.com:1,3", &from));
        assert_ne!(a, message_id("ffff", "digest:ana@example.com:1,2", &from));
        assert!(
            a.starts_with("<callout.0a1b.") && a.ends_with("@example.com>"),
            "{a}"
        );
        // Anything but letters and digits in a store id is dropped.
        assert!(message_id("a b>", "k", &from).starts_with("<callout.ab."));
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
