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
//!
//! The delivery promise is at-least-once with a stable Message-ID. The
//! attempt is recorded right before the body goes out (after DATA is
//! accepted) and the server's acceptance right after its reply, before QUIT,
//! so only a crash in the moment between the server's "250" and one SQLite
//! update can send a digest twice; the copy has the same Message-ID (made
//! from the store's random id and the digest's key), which clients use to
//! spot it. A message whose body went out but whose answer did not come
//! within `timeout_secs` is *in doubt* (the server may have it): it is tried
//! once more, after [`IN_DOUBT_WAIT`] at least, logged as possibly
//! duplicated, and given up if it is in doubt again. A timeout does not hold
//! back the rest of the queue; a second timeout in a row ends the pass. A
//! permanent refusal (5xx) gives a message up at once. Given-up messages stay
//! in the outbox, listed by `callout outbox`, until re-queued. Before a send
//! a run claims the row in the store (an owner and an expiry, one atomic
//! `UPDATE`), so two runs on one store never send the same message.
//!
//! [`dry_run`] renders digests to `.eml` files or stdout and sends nothing;
//! [`send_test_email`] backs `callout test-email --to ADDRESS`.
//!
//! Must not: read the clock (callers pass `now`) or run async code; the
//! daemon calls these from `spawn_blocking`.

mod causes;
pub mod chat;
pub mod incidents;
pub mod mail;
pub mod reminders;
pub mod report;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Utc};
use lettre::Transport as _;
use lettre::address::Envelope as SmtpEnvelope;
use lettre::message::Mailbox;

use crate::config::{AlertsConfig, Config, SmtpConfig, WebConfig};
use crate::links::key::KeyError;
use crate::links::tokens::Key;
use crate::links::{incident_url, link_expiry, open_items_url};
use crate::model::Lane;
use crate::render;
use crate::store::{Channel, Claim, MailRow, NewMail, Store, StoreError};

pub use incidents::{Incident, owner_for, record};
pub use reminders::{ReminderReport, queue_reminders};
pub use report::{ReportMailReport, queue_report};

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
    #[error("sending to `{to}` via {host}:{port} failed: {source}{}", mail::tls_hint(.source))]
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
    /// The pre-read could not be made for email (its sources are read then).
    #[error("the pre-read of the week of {week}: {source}")]
    Report {
        /// The week's first day.
        week: chrono::NaiveDate,
        /// Why.
        source: crate::report::ReportError,
    },
    /// `--to NAME` names no `[[chat]]`.
    #[error("no [[chat]] named `{name}` in the config (known: {})", if known.is_empty() { "none".to_string() } else { known.join(", ") })]
    NoChat {
        /// The name given.
        name: String,
        /// The names configured.
        known: Vec<String>,
    },
    /// A chat webhook did not take a message.
    #[error("posting to chat `{name}` failed: {detail}")]
    Chat {
        /// The `[[chat]]`.
        name: String,
        /// Why (never the webhook URL).
        detail: String,
    },
    /// `--dry-run DIR` named something that is not a folder.
    #[error(
        "--dry-run `{}` is a file; give a folder to write one .eml per digest into, or `-` for stdout",
        path.display()
    )]
    DryRunNotADir {
        /// The path given.
        path: PathBuf,
    },
    #[error("cannot write `{path}`: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The link-signing key of this run: `None` without `[web]`. Read (or, for
/// a generated key, created) once per run by the caller and passed to
/// [`Signer::new`].
pub fn link_key(config: &Config) -> Result<Option<Key>, KeyError> {
    config
        .web
        .as_ref()
        .map(|w| crate::links::key::load(&w.key))
        .transpose()
}

/// Signs the links digests and reminders carry to the explanation pages.
#[derive(Clone, Copy)]
pub struct Signer<'a> {
    /// `[web]`: the public URL and how long links stay valid.
    web: &'a WebConfig,
    /// The key the web server verifies with.
    key: &'a Key,
}

impl<'a> Signer<'a> {
    /// A signer when `[web]` is configured and its key was had.
    pub fn new(config: &'a Config, key: Option<&'a Key>) -> Option<Signer<'a>> {
        Some(Signer {
            web: config.web.as_ref()?,
            key: key?,
        })
    }

    /// The links of one mail to `owner`: one per outlier in `incidents`
    /// (export problems have no page), and the open-items page; all valid
    /// until [`link_expiry`] after the review they are due for.
    pub fn links(
        &self,
        owner: &Mailbox,
        incidents: &[Incident],
        review_at: DateTime<Utc>,
    ) -> render::Links {
        let expires = link_expiry(self.web, review_at);
        let incidents = incidents
            .iter()
            .filter(|i| i.lane != Lane::Export)
            .map(|i| {
                // the token's owner is the mailbox text stored with the incident
                let who = i.owner.as_ref().unwrap_or(owner).to_string();
                (i.id, incident_url(self.web, self.key, i.id, &who, expires))
            })
            .collect();
        render::Links {
            incidents,
            open_items: open_items_url(self.web, self.key, &owner.to_string(), expires),
        }
    }

    /// The pre-read of the week starting `week_start`, for the review at
    /// `review_at`, sent to `to`.
    pub fn report_url(
        &self,
        week_start: chrono::NaiveDate,
        review_at: DateTime<Utc>,
        to: &str,
    ) -> String {
        crate::links::report_url(self.web, self.key, week_start, review_at, to)
    }
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
    /// What the message was built from (a dry run also writes its HTML as a page).
    pub digest: render::Digest,
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

/// The stored recent values of each outlier's series (statistical and
/// data-health lanes), for the digests' charts. A history that cannot be
/// read costs its chart, never the mail.
pub fn charts(store: &Store, incidents: &[Incident]) -> render::Charts {
    let mut out = render::Charts::new();
    for i in incidents
        .iter()
        .filter(|i| i.lane != crate::model::Lane::Export)
    {
        match store.history(&i.source, &i.key) {
            Ok(Some(h)) => {
                out.insert(i.id, h.recent);
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(incident = i.id, "no chart in the digest: {e}"),
        }
    }
    out
}

/// The plan line of each daily outlier whose metric has `[[plan]]` targets
/// (month to date through its newest finding, from the same series history
/// as its chart; see `report::plan_line`). Reads the plan files only when
/// some are configured; one that cannot be read is logged and costs its
/// lines, never the mail.
pub fn plan_lines(
    config: &Config,
    incidents: &[Incident],
    charts: &render::Charts,
) -> render::PlanLines {
    let mut out = render::PlanLines::new();
    let daily: Vec<&Incident> = incidents
        .iter()
        .filter(|i| i.lane != Lane::Export && i.granularity == crate::model::Granularity::Day)
        .filter(|i| charts.contains_key(&i.id))
        .collect();
    if config.report.plans.is_empty() || daily.is_empty() {
        return out;
    }
    let (plan, errors) = crate::report::plans(config);
    for e in errors {
        tracing::warn!("digest plan lines: {e}");
    }
    for i in daily {
        let points = charts.get(&i.id).map_or(&[][..], Vec::as_slice);
        let day = i.last_finding_ts.div_euclid(86_400_000);
        if let Some(line) = crate::report::plan_line(config, &plan, &i.key, points, day) {
            out.insert(i.id, line);
        }
    }
    out
}

/// The unit of each incident's metric (`[[report.metric]] unit`), where set.
pub fn units(config: &Config, incidents: &[Incident]) -> BTreeMap<String, String> {
    incidents
        .iter()
        .filter_map(|i| {
            let unit = &config.report.metric(&i.key.metric).unit;
            (!unit.is_empty()).then(|| (i.key.metric.clone(), unit.clone()))
        })
        .collect()
}

/// What digests say beside each item: plan lines, units and the run's notice.
pub fn extras(
    config: &Config,
    incidents: &[Incident],
    charts: &render::Charts,
    notice: Option<&str>,
) -> render::ItemExtras {
    render::ItemExtras {
        plans: plan_lines(config, incidents, charts),
        units: units(config, incidents),
        notice: notice.map(str::to_string),
    }
}

/// Render one digest per owner (incidents without an owner are skipped).
/// The sender comes from `[smtp]`, or a placeholder when there is none.
/// `store_id` ([`Store::store_id`]) makes the Message-IDs unique to the store.
/// Errors of one owner are returned next to the others' digests. With a
/// `signer`, every outlier links to its explanation page; `extras` ([`extras`]:
/// plan lines, units, the run's notice) are said with every digest.
pub fn render_digests(
    incidents: &[Incident],
    config: &Config,
    store_id: &str,
    now: DateTime<Utc>,
    signer: Option<Signer<'_>>,
    charts: &render::Charts,
    extras: &render::ItemExtras,
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
    let review_at = crate::review::next_review(&config.review, now).with_timezone(&Utc);
    for (_, (owner, items)) in by_owner {
        let links = signer.map(|s| s.links(&owner, &items, review_at));
        let digest = render::digest(
            &owner,
            &items,
            &config.review,
            &config.sources,
            now,
            links.as_ref(),
            charts,
            extras,
        );
        let mut ids: Vec<i64> = items.iter().map(|i| i.id).collect();
        ids.sort_unstable();
        let key = idempotency_key(&owner, &ids);
        let mid = mail::message_id(store_id, &key, from);
        match mail::build(&env, &owner, &digest, mid, &ids, now) {
            Ok(m) => out.push(Outgoing {
                owner,
                incident_ids: ids,
                idempotency_key: key,
                subject: digest.subject.clone(),
                message: m.formatted(),
                digest,
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
    /// Channel messages newly written to the outbox.
    pub chat_queued: usize,
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
/// With a `signer`, the digests link to the explanation pages; a `notice`
/// is said at the top of each.
pub fn queue_digests(
    store: &mut Store,
    incidents: &[Incident],
    config: &Config,
    now: DateTime<Utc>,
    signer: Option<Signer<'_>>,
    notice: Option<&str>,
) -> Result<QueueReport, AlertError> {
    if config.smtp.is_none() && config.chat.is_empty() {
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
        .filter(|i| i.owner.is_none() && chat::routes(config, i).is_empty())
        .map(|i| {
            let hint = match i.lane {
                crate::model::Lane::Export => {
                    "add `owner` to its [[source]], owners.default or owners.default_chat"
                }
                _ => "add an [[owners.rule]], owners.default or owners.default_chat",
            };
            tracing::warn!(
                incident = i.id,
                source = %i.source,
                metric = %i.key,
                check = %i.worst.hit.check,
                "incident has no owner ({hint}); not mailed"
            );
            i.id
        })
        .collect();
    if !unowned.is_empty() {
        store.transaction(|s| s.mark_announced(&unowned, None))?;
        report.unowned = unowned.len();
    }
    let store_id = store.store_id()?;
    let charts = charts(store, &fresh);
    // plan lines read the plan files: once for mail and chat alike
    let extras = extras(config, &fresh, &charts, notice);
    // Without [smtp], owners' digests are not made: an incident only an
    // email would announce stays unannounced until [smtp] is added.
    let (outgoing, errors) = if config.smtp.is_some() {
        render_digests(&fresh, config, &store_id, now, signer, &charts, &extras)
    } else {
        (Vec::new(), Vec::new())
    };
    for (owner, e) in errors {
        tracing::error!(owner = %owner, "{e}");
        report.failed.push((owner.to_string(), e.to_string()));
    }
    // Every row with the incidents it announces, queued in ONE transaction:
    // a crash leaves all of this run's messages queued, or none and the
    // incidents fresh for the next run.
    let mut rows: Vec<(NewMail, Vec<i64>)> = outgoing
        .into_iter()
        .map(|o| {
            let ids = o.incident_ids.clone();
            let mail = NewMail {
                channel: Channel::Email,
                owner: o.owner.to_string(),
                recipient: o.owner.email.to_string(),
                subject: o.subject,
                message: o.message,
                incident_ids: o.incident_ids,
                idempotency_key: o.idempotency_key,
                created_at: now.timestamp_millis(),
            };
            (mail, ids)
        })
        .collect();
    // an incident an email announces is the email's, even when its digest
    // could not be built this time (it is tried again next run)
    let emailed: Vec<i64> = fresh
        .iter()
        .filter(|i| i.owner.is_some() && config.smtp.is_some())
        .map(|i| i.id)
        .collect();
    for c in chat::digests(config, &fresh, now, signer, &charts, &extras) {
        let only_chat = c
            .incident_ids
            .iter()
            .copied()
            .filter(|id| !emailed.contains(id))
            .collect();
        rows.push((c.row(now), only_chat));
    }
    let queued = store.transaction(|s| {
        rows.iter()
            .map(|(m, announces)| {
                let (id, new) = s.enqueue(m)?;
                s.mark_announced(announces, Some(id))?;
                Ok::<_, StoreError>((id, new))
            })
            .collect::<Result<Vec<_>, _>>()
    })?;
    for ((m, _), (id, new)) in rows.iter().zip(queued) {
        match (new, m.channel) {
            (false, _) => report.already_queued += 1,
            (true, Channel::Email) => {
                report.queued += 1;
                tracing::info!(owner = %m.owner, outbox = id, incidents = m.incident_ids.len(), "digest queued");
            }
            (true, Channel::Chat) => {
                report.chat_queued += 1;
                tracing::info!(chat = %m.recipient, outbox = id, incidents = m.incident_ids.len(), "chat message queued");
            }
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
    /// The server did not answer within `smtp.timeout_secs`.
    pub timed_out: bool,
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
    /// Messages given up on in this pass: refused for good (5xx), or in
    /// doubt a second time. Listed by `callout outbox` until re-queued.
    pub given_up: Vec<DeliveryFailure>,
    /// Due messages not tried this pass because the server had timed out
    /// twice in a row; still queued, tried again on the next pass.
    pub skipped: usize,
    /// Due messages another run was sending (held by its claim).
    pub held_elsewhere: usize,
    /// Messages still unsent and to be tried after this pass (failed,
    /// skipped, or backing off), other runs' claims left out.
    pub waiting: usize,
    /// When the earliest of them will be tried again, if any.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Messages given up on before (and in) this pass, still not re-queued.
    pub undeliverable: usize,
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

/// The least wait before a message whose body went out without an answer
/// (the server may have it) is sent once more: long enough for a slow relay
/// to have finished, so the one retry is not a second copy into the same jam.
pub const IN_DOUBT_WAIT: Duration = Duration::from_secs(30 * 60);

/// Who is sending (a claim's owner) and the real clock claims expire on.
/// Claims are about processes, so they run on real time even when a run
/// replays a past moment (`--at`).
#[derive(Debug, Clone)]
pub struct Runner {
    /// Unique per process: host, pid and start time.
    pub id: String,
    /// The real clock.
    pub clock: fn() -> DateTime<Utc>,
}

impl Runner {
    /// Run `run_id` of the store (unique in it, across hosts too) in this
    /// process, on the wall clock: `run:12 host:pid`. When the run is found
    /// dead (`Store::begin_run` marks it interrupted), its claims are
    /// released at once instead of waiting for them to expire.
    pub fn for_run(run_id: i64) -> Runner {
        let host = std::env::var("HOSTNAME").unwrap_or_default();
        Runner {
            id: format!(
                "{}{host}:{}",
                crate::store::claim_prefix(run_id),
                std::process::id()
            ),
            clock: Utc::now,
        }
    }

    /// This process outside a recorded run (unique per call), on the wall
    /// clock: the tests' runners.
    #[cfg(test)]
    pub fn this_process() -> Runner {
        let host = std::env::var("HOSTNAME").unwrap_or_default();
        let start = Utc::now().timestamp_nanos_opt().unwrap_or_default();
        Runner {
            id: format!("{host}:{}:{start:x}", std::process::id()),
            clock: Utc::now,
        }
    }
}

/// How long a claim on an outbox row lasts: every step of one SMTP session
/// waits at most `timeout` (connect, greeting, TLS, login, MAIL, RCPT, DATA,
/// body, QUIT), plus a minute. A run that dies holding a claim delays that
/// message by this much, never loses it.
fn claim_ttl(smtp: &SmtpConfig) -> chrono::Duration {
    chrono::Duration::from_std(smtp.timeout.saturating_mul(12) + Duration::from_secs(60))
        .unwrap_or_else(|_| chrono::Duration::hours(1))
}

/// How one attempt ended.
enum Outcome {
    /// Accepted and recorded; `quit_timed_out`: the server then hung at QUIT.
    Sent { quit_timed_out: bool },
    /// Not accepted (or not known to be).
    Failed {
        error: String,
        timed_out: bool,
        /// The body went out and no answer came in time: the server may have it.
        in_doubt: bool,
        /// The server refused for good (a 5xx reply).
        permanent: bool,
        /// The server asked to wait this long (HTTP 429 `Retry-After`).
        retry_after: Option<Duration>,
    },
}

/// Send every unsent message whose next attempt is due at `now`, one SMTP
/// session each, each only after taking it with a claim in the store (so two
/// runs on one store never send the same row). The SMTP password is read now.
/// Each message succeeds or fails on its own; failures are recorded with
/// backoff and never dropped. A permanent refusal (5xx) gives the message up
/// at once, with the server's words. A body that went out without an answer
/// in time is *in doubt*: tried once more after [`IN_DOUBT_WAIT`] at least,
/// and given up if that is in doubt too. A timeout does not hold back the
/// rest: the pass stops only at a second timeout in a row (a hung server
/// would otherwise cost `timeout_secs` per message). Only store errors abort.
pub fn deliver_due(
    store: &Store,
    smtp: &SmtpConfig,
    alerts: &AlertsConfig,
    now: DateTime<Utc>,
    runner: &Runner,
) -> Result<DeliveryReport, AlertError> {
    let report = deliver_rows(
        store,
        Channel::Email,
        claim_ttl(smtp),
        alerts,
        now,
        runner,
        &mut |m| send_one(store, smtp, m, now),
    )?;
    if report.skipped > 0 {
        tracing::warn!(
            skipped = report.skipped,
            "the SMTP server timed out twice in a row; the other due digests stay queued for the next run"
        );
    }
    Ok(report)
}

/// The delivery pass over one channel's due rows, shared by mail and chat:
/// claim each row (`ttl`), `send` it, record the outcome with backoff (or a
/// server's `Retry-After`), give up on a permanent refusal or a second doubt,
/// stop at a second timeout in a row. Only store errors abort.
fn deliver_rows(
    store: &Store,
    channel: Channel,
    ttl: chrono::Duration,
    alerts: &AlertsConfig,
    now: DateTime<Utc>,
    runner: &Runner,
    send: &mut dyn FnMut(&MailRow) -> Result<Outcome, StoreError>,
) -> Result<DeliveryReport, AlertError> {
    let due = store.due(channel, now)?;
    let mut report = DeliveryReport::default();
    // per server: mail has one relay, each chat its own webhook
    let server = |m: &MailRow| match channel {
        Channel::Email => String::new(),
        Channel::Chat => m.mail.recipient.clone(),
    };
    let mut timeouts: BTreeMap<String, u32> = BTreeMap::new();
    for m in &due {
        let timeouts_in_a_row = timeouts.entry(server(m)).or_default();
        if *timeouts_in_a_row >= 2 {
            report.skipped += 1;
            continue;
        }
        let real_now = (runner.clock)();
        match store.claim(m.id, &runner.id, now, real_now, real_now + ttl)? {
            Claim::Taken => {}
            Claim::HeldElsewhere => {
                tracing::info!(owner = %m.mail.owner, outbox = m.id, "another run is sending this message");
                report.held_elsewhere += 1;
                continue;
            }
            Claim::Gone => continue,
        }
        if m.attempt_started_at.is_some() {
            tracing::warn!(
                owner = %m.mail.owner,
                outbox = m.id,
                "an earlier attempt was cut off after handing this message to the server; \
                 sending it again (it may arrive twice; mail keeps its Message-ID)"
            );
        }
        match send(m)? {
            Outcome::Sent { quit_timed_out } => {
                tracing::info!(owner = %m.mail.owner, outbox = m.id, "message sent");
                report.sent.push(m.id);
                *timeouts_in_a_row = if quit_timed_out {
                    *timeouts_in_a_row + 1
                } else {
                    0
                };
            }
            Outcome::Failed {
                error,
                timed_out,
                in_doubt,
                permanent,
                retry_after,
            } => {
                *timeouts_in_a_row = if timed_out { *timeouts_in_a_row + 1 } else { 0 };
                let attempts = m.attempts.saturating_add(1);
                let failure = |error: String, next_attempt_at| DeliveryFailure {
                    outbox_id: m.id,
                    owner: m.mail.owner.clone(),
                    attempts,
                    error,
                    timed_out,
                    next_attempt_at,
                };
                if permanent || (in_doubt && m.in_doubt > 0) {
                    let reason = if permanent {
                        format!("refused for good by the server: {error}")
                    } else {
                        format!(
                            "in doubt twice, not sent again (the server took the body and did not answer in time; it may have delivered it, even twice): {error}"
                        )
                    };
                    store.mark_undeliverable(m.id, &reason, now)?;
                    // a failure is a problem of the run, which its caller
                    // reports once (`error:` line or the daemon's log); here
                    // only the trace, with the row's fields
                    tracing::info!(owner = %m.mail.owner, outbox = m.id, attempts, "given up: {reason}");
                    report.given_up.push(failure(reason, now));
                    continue;
                }
                let mut wait = backoff(alerts.retry_base, attempts);
                if let Some(asked) = retry_after {
                    wait = asked.min(MAX_BACKOFF);
                }
                if in_doubt {
                    wait = wait.saturating_mul(4).max(IN_DOUBT_WAIT);
                }
                let next = now
                    + chrono::Duration::from_std(wait)
                        .unwrap_or_else(|_| chrono::Duration::hours(1));
                if in_doubt {
                    store.mark_in_doubt(m.id, &error, next)?;
                    tracing::info!(owner = %m.mail.owner, outbox = m.id, attempts, retry_at = %next, "in doubt: {error}");
                    report.failed.push(failure(
                        format!("{error}; in doubt, possibly duplicated: the body went out and the server did not answer in time"),
                        next,
                    ));
                } else {
                    store.mark_failed(m.id, &error, next)?;
                    tracing::info!(owner = %m.mail.owner, outbox = m.id, attempts, retry_at = %next, "send failed: {error}");
                    report.failed.push(failure(error, next));
                }
            }
        }
    }
    let real_now = (runner.clock)();
    let unsent = store.unsent_of(channel)?;
    let mine = |m: &&MailRow| {
        !m.claim
            .as_ref()
            .is_some_and(|(who, until)| who != &runner.id && *until > real_now.timestamp_millis())
    };
    report.waiting = unsent.iter().filter(mine).count();
    report.next_attempt_at = unsent
        .iter()
        .filter(mine)
        .map(|m| m.next_attempt_at)
        .min()
        .and_then(DateTime::from_timestamp_millis)
        .map(|t| t.max(now));
    report.undeliverable = store.undeliverable_count()?;
    Ok(report)
}

/// One SMTP session for one queued message. The attempt is recorded in the
/// store once the server has accepted DATA, right before the body; the
/// acceptance right after the server's reply, before QUIT. Errs only when the
/// store fails.
fn send_one(
    store: &Store,
    smtp: &SmtpConfig,
    m: &MailRow,
    now: DateTime<Utc>,
) -> Result<Outcome, StoreError> {
    let recipient = m.mail.recipient.as_str();
    let failed = |detail: String, timed_out: bool, permanent: bool| Outcome::Failed {
        error: format!(
            "sending to `{recipient}` via {}:{} failed: {detail}",
            smtp.host, smtp.port
        ),
        timed_out,
        in_doubt: false,
        permanent,
        retry_after: None,
    };
    let to = match mail::address(recipient, "outbox recipient") {
        Ok(a) => a,
        Err(e) => return Ok(failed(e.to_string(), false, true)),
    };
    let env = match SmtpEnvelope::new(Some(smtp.from.email.clone()), vec![to]) {
        Ok(e) => e,
        Err(e) => return Ok(failed(format!("bad envelope: {e}"), false, true)),
    };
    let mut session = match mail::Session::connect(smtp) {
        Ok(s) => s,
        Err(e) => return Ok(failed(e.to_string(), e.is_timeout(), false)),
    };
    if let Err(e) = session.start(&env, &m.mail.message) {
        let out = failed(e.to_string(), e.is_timeout(), e.is_permanent());
        session.close(Some(&e));
        return Ok(out);
    }
    store.mark_attempt(m.id, now)?;
    match session.body(&m.mail.message) {
        Ok(()) => {
            store.mark_sent(m.id, now)?;
            let quit_timed_out = session.close(None);
            Ok(Outcome::Sent { quit_timed_out })
        }
        Err(e) => {
            let mut out = failed(e.to_string(), e.is_timeout(), e.is_permanent());
            if let Outcome::Failed { in_doubt, .. } = &mut out {
                // the whole body went out: only the answer is missing
                *in_doubt = e.is_timeout();
            }
            session.close(Some(&e));
            Ok(out)
        }
    }
}

/// A file name for a digest: `01-ana_example.com.eml`.
fn eml_name(n: usize, owner: &Mailbox) -> String {
    format!("{n:02}-{}.eml", eml_safe(owner.email.as_ref()))
}

/// `text` with every character but letters, digits, `.` and `-` as `_`.
fn eml_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Where a dry run writes its digests.
#[derive(Debug)]
pub enum EmlTo<'a> {
    /// `.eml` files into this folder (created if needed), each with its HTML
    /// beside it as a `.html` page a browser opens (charts inlined).
    Dir(&'a Path),
    /// One after another into this buffer, each under a
    /// `==> digest for … <==` line (`--dry-run -`: the caller prints it).
    Stream(&'a mut Vec<u8>),
}

/// Write digests where `to` says. Sends nothing. Returns the `.eml` files
/// written (`-` once per digest written to the stream).
pub fn write_eml(outgoing: &[Outgoing], to: EmlTo<'_>) -> Result<Vec<PathBuf>, AlertError> {
    let mut written = Vec::new();
    match to {
        EmlTo::Dir(dir) => {
            if dir.exists() && !dir.is_dir() {
                return Err(AlertError::DryRunNotADir {
                    path: dir.to_path_buf(),
                });
            }
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
                let page = path.with_extension("html");
                std::fs::write(&page, o.digest.standalone_html()).map_err(|source| {
                    AlertError::Io {
                        path: page.clone(),
                        source,
                    }
                })?;
                written.push(path);
            }
        }
        EmlTo::Stream(w) => {
            for o in outgoing {
                // writing into memory cannot fail
                let _ = writeln!(w, "==> digest for {} <==", o.owner);
                w.extend_from_slice(&o.message);
                w.push(b'\n');
                written.push(PathBuf::from("-"));
            }
        }
    }
    Ok(written)
}

/// What a dry run wrote, and the owners whose digest could not be made.
pub type DryRun = (Vec<PathBuf>, Vec<(Mailbox, AlertError)>);

/// `--dry-run`: render the digests these incidents would produce (charts
/// from the store's series history, `notice` at the top) and write them to
/// `to` (a folder, or a stream the caller prints). Reads the store, writes
/// nothing to it, sends nothing.
pub fn dry_run(
    store: &Store,
    incidents: &[Incident],
    config: &Config,
    now: DateTime<Utc>,
    to: EmlTo<'_>,
    signer: Option<Signer<'_>>,
    notice: Option<&str>,
) -> Result<DryRun, AlertError> {
    let charts = charts(store, incidents);
    let store_id = store.store_id()?;
    let extras = extras(config, incidents, &charts, notice);
    let (outgoing, errors) =
        render_digests(incidents, config, &store_id, now, signer, &charts, &extras);
    let chat_dir = match &to {
        EmlTo::Dir(d) => Some(d.to_path_buf()),
        EmlTo::Stream(_) => None,
    };
    let mut written = write_eml(&outgoing, to)?;
    // each channel's message as the JSON its webhook would get
    if let Some(dir) = chat_dir {
        for c in chat::digests(config, incidents, now, signer, &charts, &extras) {
            // the JSON the webhook would get, and a page to look at it
            let path = dir.join(format!("chat-{}.json", eml_safe(&c.chat.name)));
            let page = path.with_extension("html");
            // the page shows the charts inline: no server has them yet
            let mut shown = c.message.clone();
            for it in shown.items.iter_mut().filter(|it| it.chart.is_some()) {
                it.chart = incidents
                    .iter()
                    .find(|i| i.id == it.id)
                    .zip(charts.get(&it.id))
                    .and_then(|(i, recent)| render::chart_png(i, recent, extras.unit_of(i)))
                    .map(|png| format!("data:image/png;base64,{}", B64.encode(png)));
            }
            let preview = render::chat::preview(c.chat.kind, &shown);
            for (p, bytes) in [(&path, c.row(now).message), (&page, preview.into_bytes())] {
                std::fs::write(p, bytes).map_err(|source| AlertError::Io {
                    path: p.clone(),
                    source,
                })?;
            }
            written.push(path);
        }
    }
    Ok((written, errors))
}

/// Write every queued, unsent outbox message to `dir` as `.eml` (inspection).
pub fn write_outbox(store: &Store, dir: &Path) -> Result<Vec<PathBuf>, AlertError> {
    std::fs::create_dir_all(dir).map_err(|source| AlertError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut written = Vec::new();
    for m in store.unsent_of(crate::store::Channel::Email)? {
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
    let digest = render::test_email(&smtp.host, smtp.port, &smtp.from);
    let env = mail::Envelope {
        from: &smtp.from,
        reply_to: smtp.reply_to.as_ref(),
        list_id: smtp.list_id.as_deref(),
    };
    let key = format!(
        "test:{}:{}:{}",
        to.email,
        now.timestamp_millis(),
        std::process::id()
    );
    let message = mail::build(
        &env,
        to,
        &digest,
        mail::message_id("test", &key, &smtp.from),
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
