//! Findings → incidents → one digest per owner → the outbox → SMTP.
//!
//! The flow of one run:
//! 1. [`record`] stores the run's findings, groups them into incidents
//!    ([`incidents`]) and returns the incidents nobody was told about yet.
//! 2. [`queue_digests`] renders one digest per owner and writes it to the
//!    store's outbox *before* anything is sent, under an idempotency key
//!    (owner + incident ids), and marks the incidents announced in the same
//!    transaction. A digest is therefore queued at most once.
//! 3. [`deliver_due`] sends every queued message whose next attempt is due; a
//!    message the server accepted is marked sent, a failure is kept with
//!    exponential backoff and retried by later calls — never dropped. A crash
//!    between queueing and sending loses nothing: the next call sends it.
//!    (A crash between the server's acceptance and marking it sent can send
//!    it twice; its Message-ID stays the same so clients can deduplicate.)
//!
//! [`dry_run`] renders digests to `.eml` files or stdout and sends nothing;
//! [`send_test_email`] backs `callout test-email --to ADDRESS`.
//!
//! Must not: read the clock (callers pass `now`) or run async code; the
//! daemon calls these from `spawn_blocking`.

pub mod incidents;
pub mod mail;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use lettre::Transport as _;
use lettre::address::Envelope as SmtpEnvelope;
use lettre::message::Mailbox;

use crate::config::{AlertsConfig, Config, SmtpConfig};
use crate::render;
use crate::store::{NewMail, Store, StoreError};

pub use incidents::{Evaluated, Incident, record};

/// Longest wait between two attempts of one message.
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// Everything that can go wrong while alerting; each names what it concerns.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Mail was to be queued or sent but the config has no `[smtp]`.
    #[error(
        "config `{path}` has no [smtp] table, so digests cannot be sent; add one, or use --dry-run"
    )]
    NoSmtp {
        /// The config file.
        path: PathBuf,
    },
    /// lettre refused to build a message.
    #[error("cannot build the message for `{owner}`: {source}")]
    Build {
        /// Recipient.
        owner: String,
        /// lettre's error.
        source: lettre::error::Error,
    },
    /// A stored or configured address does not parse.
    #[error("bad email address `{value}` ({context}): {source}")]
    Address {
        /// The text.
        value: String,
        /// Where it came from.
        context: &'static str,
        /// Why it is not an address.
        source: lettre::address::AddressError,
    },
    /// The SMTP password could not be read.
    #[error("cannot read the SMTP password from {what}: {detail}")]
    Secret {
        /// The variable or file.
        what: String,
        /// Why.
        detail: String,
    },
    /// The SMTP transport could not be set up (TLS parameters).
    #[error("cannot set up SMTP to {host}:{port}: {source}")]
    Transport {
        /// Server.
        host: String,
        /// Port.
        port: u16,
        /// lettre's error.
        source: lettre::transport::smtp::Error,
    },
    /// The server did not accept a message.
    #[error("sending to `{to}` via {host}:{port} failed: {source}")]
    Send {
        /// Recipient.
        to: String,
        /// Server.
        host: String,
        /// Port.
        port: u16,
        /// lettre's error.
        source: lettre::transport::smtp::Error,
    },
    /// Writing a dry-run file failed.
    #[error("cannot write `{path}`: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// One rendered digest, ready to queue or to write out.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The owner it goes to.
    pub owner: Mailbox,
    /// Incidents it announces, ascending.
    pub incident_ids: Vec<i64>,
    /// `digest:<owner address>:<ids>`; the outbox accepts it once.
    pub idempotency_key: String,
    /// Subject line.
    pub subject: String,
    /// The full RFC 822 message.
    pub message: Vec<u8>,
}

/// The idempotency key of a digest: owner address plus sorted incident ids.
pub fn idempotency_key(owner: &Mailbox, incident_ids: &[i64]) -> String {
    let mut ids = incident_ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
    format!(
        "digest:{}:{}",
        owner.email.to_string().to_ascii_lowercase(),
        ids.join(",")
    )
}

/// Render one digest per owner (incidents without an owner are skipped).
/// The sender comes from `[smtp]`, or a placeholder when there is none.
/// Errors of one owner are returned next to the others' digests.
pub fn render_digests(
    incidents: &[Incident],
    config: &Config,
    now: DateTime<Utc>,
) -> (Vec<Outgoing>, Vec<(Mailbox, AlertError)>) {
    let placeholder: Option<Mailbox> = mail::PLACEHOLDER_FROM.parse().ok();
    let (from, reply_to, list_id) = match &config.smtp {
        Some(s) => (Some(&s.from), s.reply_to.as_ref(), s.list_id.as_deref()),
        None => (placeholder.as_ref(), None, None),
    };
    let mut by_owner: BTreeMap<String, (Mailbox, Vec<Incident>)> = BTreeMap::new();
    for i in incidents {
        if let Some(o) = &i.owner {
            by_owner
                .entry(o.email.to_string().to_ascii_lowercase())
                .or_insert_with(|| (o.clone(), Vec::new()))
                .1
                .push(i.clone());
        }
    }
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let Some(from) = from else {
        return (out, errors);
    };
    let env = mail::Envelope {
        from,
        reply_to,
        list_id,
    };
    for (_, (owner, items)) in by_owner {
        let digest = render::digest(&owner, &items, &config.review, now);
        let mut ids: Vec<i64> = items.iter().map(|i| i.id).collect();
        ids.sort_unstable();
        let key = idempotency_key(&owner, &ids);
        let mid = mail::message_id(&key, from);
        match mail::build(&env, &owner, &digest, mid, &ids, now) {
            Ok(m) => out.push(Outgoing {
                owner,
                incident_ids: ids,
                idempotency_key: key,
                subject: digest.subject,
                message: m.formatted(),
            }),
            Err(source) => {
                let e = AlertError::Build {
                    owner: owner.to_string(),
                    source,
                };
                errors.push((owner, e));
            }
        }
    }
    (out, errors)
}

/// What [`queue_digests`] did.
#[derive(Debug, Default)]
pub struct QueueReport {
    /// Digests newly written to the outbox.
    pub queued: usize,
    /// Digests that were already in the outbox (a re-run).
    pub already_queued: usize,
    /// Incidents without an owner: logged, marked announced, not mailed.
    pub unowned: usize,
    /// Owners whose digest could not be built, with the error.
    pub failed: Vec<(String, String)>,
}

/// Render one digest per owner and put it in the outbox (before any send),
/// marking its incidents announced in the same transaction. Incidents already
/// announced are skipped; incidents without an owner are logged and marked
/// announced without mail. One owner's failure does not stop the others.
pub fn queue_digests(
    store: &mut Store,
    incidents: &[Incident],
    config: &Config,
    now: DateTime<Utc>,
) -> Result<QueueReport, AlertError> {
    if config.smtp.is_none() {
        return Err(AlertError::NoSmtp {
            path: config.path.clone(),
        });
    }
    let mut fresh = Vec::with_capacity(incidents.len());
    for i in incidents {
        if store.incident(i.id)?.is_some_and(|r| !r.announced) {
            fresh.push(i.clone());
        }
    }
    let mut report = QueueReport::default();
    let unowned: Vec<i64> = fresh
        .iter()
        .filter(|i| i.owner.is_none())
        .map(|i| {
            tracing::warn!(
                incident = i.id,
                source = %i.source,
                metric = %i.key,
                "outlier has no owner (add an [[owners.rule]] or owners.default); not mailed"
            );
            i.id
        })
        .collect();
    if !unowned.is_empty() {
        store.transaction(|s| s.mark_announced(&unowned, None))?;
        report.unowned = unowned.len();
    }
    let (outgoing, errors) = render_digests(&fresh, config, now);
    for (owner, e) in errors {
        tracing::error!(owner = %owner, "{e}");
        report.failed.push((owner.to_string(), e.to_string()));
    }
    for o in outgoing {
        let mail = NewMail {
            owner: o.owner.to_string(),
            recipient: o.owner.email.to_string(),
            subject: o.subject.clone(),
            message: o.message,
            incident_ids: o.incident_ids.clone(),
            idempotency_key: o.idempotency_key,
            created_at: now.timestamp_millis(),
        };
        let (id, new) = store.transaction(|s| {
            let (id, new) = s.enqueue(&mail)?;
            s.mark_announced(&o.incident_ids, Some(id))?;
            Ok::<_, StoreError>((id, new))
        })?;
        if new {
            report.queued += 1;
            tracing::info!(owner = %o.owner, outbox = id, incidents = o.incident_ids.len(), "digest queued");
        } else {
            report.already_queued += 1;
        }
    }
    Ok(report)
}

/// One message that was not accepted this time.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryFailure {
    /// Outbox row.
    pub outbox_id: i64,
    /// Recipient.
    pub owner: String,
    /// Attempts so far, including this one.
    pub attempts: u32,
    /// What went wrong.
    pub error: String,
    /// When it will be tried again.
    pub next_attempt_at: DateTime<Utc>,
}

/// What [`deliver_due`] did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct DeliveryReport {
    /// Outbox ids the server accepted.
    pub sent: Vec<i64>,
    /// Messages that failed and wait for a retry.
    pub failed: Vec<DeliveryFailure>,
    /// Unsent messages not yet due (backing off).
    pub waiting: usize,
}

/// Delay before the next attempt after `attempts` failures:
/// `retry_base * 2^(attempts-1)`, at most [`MAX_BACKOFF`].
pub fn backoff(retry_base: Duration, attempts: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempts.saturating_sub(1));
    retry_base
        .checked_mul(factor)
        .unwrap_or(MAX_BACKOFF)
        .min(MAX_BACKOFF)
}

/// Send every unsent message whose next attempt is due at `now`. The SMTP
/// password is read now. Each message succeeds or fails on its own; failures
/// are recorded with backoff and never dropped. Only store errors abort.
pub fn deliver_due(
    store: &Store,
    smtp: &SmtpConfig,
    alerts: &AlertsConfig,
    now: DateTime<Utc>,
) -> Result<DeliveryReport, AlertError> {
    let due = store.due_mail(now)?;
    let mut report = DeliveryReport::default();
    if !due.is_empty() {
        let transport = mail::transport(smtp);
        for m in &due {
            let result = match &transport {
                Ok(t) => send_one(t, smtp, &m.mail.recipient, &m.mail.message),
                Err(e) => Err(e.to_string()),
            };
            match result {
                Ok(()) => {
                    store.mark_sent(m.id, now)?;
                    tracing::info!(owner = %m.mail.owner, outbox = m.id, "digest sent");
                    report.sent.push(m.id);
                }
                Err(error) => {
                    let attempts = m.attempts.saturating_add(1);
                    let wait = backoff(alerts.retry_base, attempts);
                    let next = now
                        + chrono::Duration::from_std(wait)
                            .unwrap_or_else(|_| chrono::Duration::hours(1));
                    store.mark_failed(m.id, &error, next)?;
                    tracing::warn!(owner = %m.mail.owner, outbox = m.id, attempts, retry_at = %next, "send failed: {error}");
                    report.failed.push(DeliveryFailure {
                        outbox_id: m.id,
                        owner: m.mail.owner.clone(),
                        attempts,
                        error,
                        next_attempt_at: next,
                    });
                }
            }
        }
    }
    report.waiting = store.unsent_mail()?.len();
    Ok(report)
}

fn send_one(
    t: &lettre::SmtpTransport,
    smtp: &SmtpConfig,
    recipient: &str,
    message: &[u8],
) -> Result<(), String> {
    let to = mail::address(recipient, "outbox recipient").map_err(|e| e.to_string())?;
    let env = SmtpEnvelope::new(Some(smtp.from.email.clone()), vec![to])
        .map_err(|e| format!("bad envelope for `{recipient}`: {e}"))?;
    t.send_raw(&env, message).map(|_| ()).map_err(|source| {
        AlertError::Send {
            to: recipient.to_string(),
            host: smtp.host.clone(),
            port: smtp.port,
            source,
        }
        .to_string()
    })
}

/// A file name for a digest: `01-ana_example.com.eml`.
fn eml_name(n: usize, owner: &Mailbox) -> String {
    let safe: String = owner
        .email
        .to_string()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{n:02}-{safe}.eml")
}

/// Write digests as `.eml` files into `dir` (created if needed), or to
/// stdout when `dir` is `None`. Sends nothing. Returns the files written.
pub fn write_eml(outgoing: &[Outgoing], dir: Option<&Path>) -> Result<Vec<PathBuf>, AlertError> {
    let mut written = Vec::new();
    match dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|source| AlertError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
            for (n, o) in outgoing.iter().enumerate() {
                let path = dir.join(eml_name(n + 1, &o.owner));
                std::fs::write(&path, &o.message).map_err(|source| AlertError::Io {
                    path: path.clone(),
                    source,
                })?;
                written.push(path);
            }
        }
        None => {
            let stdout = std::io::stdout();
            let mut w = stdout.lock();
            let io = |source| AlertError::Io {
                path: PathBuf::from("<stdout>"),
                source,
            };
            for o in outgoing {
                writeln!(w, "==> digest for {} <==", o.owner).map_err(io)?;
                w.write_all(&o.message).map_err(io)?;
                writeln!(w).map_err(io)?;
            }
        }
    }
    Ok(written)
}

/// `--dry-run`: render the digests these incidents would produce and write
/// them to `dir` (or stdout). Touches neither the store nor the network.
pub fn dry_run(
    incidents: &[Incident],
    config: &Config,
    now: DateTime<Utc>,
    dir: Option<&Path>,
) -> Result<Vec<PathBuf>, AlertError> {
    let (outgoing, errors) = render_digests(incidents, config, now);
    for (owner, e) in &errors {
        tracing::error!(owner = %owner, "{e}");
    }
    write_eml(&outgoing, dir)
}

/// Write every queued, unsent outbox message to `dir` as `.eml` (inspection).
pub fn write_outbox(store: &Store, dir: &Path) -> Result<Vec<PathBuf>, AlertError> {
    std::fs::create_dir_all(dir).map_err(|source| AlertError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut written = Vec::new();
    for m in store.unsent_mail()? {
        let path = dir.join(format!("outbox-{}.eml", m.id));
        std::fs::write(&path, &m.mail.message).map_err(|source| AlertError::Io {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}

/// Send one test message to `to` right away (no store): checks server,
/// security, login and sender in one go.
pub fn send_test_email(
    smtp: &SmtpConfig,
    to: &Mailbox,
    now: DateTime<Utc>,
) -> Result<(), AlertError> {
    let digest = render::Digest {
        subject: "[callout] test email".to_string(),
        text: format!(
            "This is a test email from callout.\n\nIf you can read it, callout can send digests through {}:{} as {}.\n",
            smtp.host, smtp.port, smtp.from
        ),
        html: format!(
            "<!DOCTYPE html>\n<html><body><p>This is a test email from callout.</p><p>If you can read it, callout can send digests through {}:{} as {}.</p></body></html>\n",
            render::escape_html(&smtp.host),
            smtp.port,
            render::escape_html(&smtp.from.to_string())
        ),
    };
    let env = mail::Envelope {
        from: &smtp.from,
        reply_to: smtp.reply_to.as_ref(),
        list_id: smtp.list_id.as_deref(),
    };
    let key = format!("test:{}:{}", to.email, now.timestamp_millis());
    let message = mail::build(
        &env,
        to,
        &digest,
        mail::message_id(&key, &smtp.from),
        &[],
        now,
    )
    .map_err(|source| AlertError::Build {
        owner: to.to_string(),
        source,
    })?;
    let t = mail::transport(smtp)?;
    t.send(&message).map_err(|source| AlertError::Send {
        to: to.to_string(),
        host: smtp.host.clone(),
        port: smtp.port,
        source,
    })?;
    Ok(())
}

#[cfg(test)]
mod smtp_tests;
