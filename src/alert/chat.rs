//! Slack and Teams: which `[[chat]]` hears about an incident, one message per
//! channel per run in the outbox, and its delivery over HTTP.
//!
//! Routing: a series' owner rule `chat = ["…"]`, else `owners.default_chat`
//! (export problems: `owners.default_chat`). A channel's message gathers the
//! items of every owner routed there. It is queued in the outbox with the
//! owners' digests, in the same transaction that marks its incidents
//! announced, under `chat:<name>:<incident ids>` (reminders, escalations and
//! the pre-read under their own keys), so a re-run never posts it twice.
//!
//! Delivery shares the outbox's claims, backoff and giving up with mail
//! ([`super::deliver_rows`]) but runs on its own rows: a mail failure never
//! holds back a chat message, nor the reverse. The webhook URL is read when
//! sending (a rotated URL needs no restart) and never logged or stored; an
//! error names the `[[chat]]`, never its URL. A 2xx answer is sent; 429
//! waits for `Retry-After`; another 4xx is a bad webhook: the message is
//! given up and the error says so; 5xx, a refused connection or a timeout
//! back off and retry (a timeout after the request went out is *in doubt*,
//! as for mail).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{AlertError, DeliveryReport, Incident, Outcome, Runner, Signer};
use crate::config::{AlertsConfig, ChatConfig, Config};
use crate::model::Lane;
use crate::render::chat::{self as words, ChatLinks, ChatMessage};
use crate::store::{Channel, MailRow, NewMail, Store, StoreError};

/// The `[[chat]]` names incident `i` is posted to.
pub fn routes<'c>(config: &'c Config, i: &Incident) -> &'c [String] {
    match i.lane {
        Lane::Export => &config.owners.default_chat,
        Lane::Health | Lane::Statistical | Lane::Restated => config.owners.chat_of(&i.key),
    }
}

/// Incidents grouped by the channel they are posted to.
pub fn by_channel<'a>(
    config: &Config,
    incidents: &'a [Incident],
) -> BTreeMap<String, Vec<&'a Incident>> {
    let mut out: BTreeMap<String, Vec<&Incident>> = BTreeMap::new();
    for i in incidents {
        for name in routes(config, i) {
            out.entry(name.clone()).or_default().push(i);
        }
    }
    out
}

/// Who a chat link is for: the incident's owner, else the channel.
fn holder(i: &Incident, channel: &str) -> String {
    i.owner
        .as_ref()
        .map_or_else(|| format!("chat:{channel}"), ToString::to_string)
}

impl Signer<'_> {
    /// The links of one channel's message: each outlier's page (as its
    /// owner's digest links it) and, where a chart can be drawn, its image.
    pub fn chat_links(
        &self,
        channel: &str,
        incidents: &[&Incident],
        review_at: DateTime<Utc>,
        charts: &crate::render::Charts,
    ) -> ChatLinks {
        let expires = crate::links::link_expiry(self.web, review_at);
        let mut links = ChatLinks::default();
        for i in incidents.iter().filter(|i| i.lane != Lane::Export) {
            let who = holder(i, channel);
            links.pages.insert(
                i.id,
                crate::links::incident_url(self.web, self.key, i.id, &who, expires),
            );
            if charts.contains_key(&i.id) {
                links.charts.insert(
                    i.id,
                    crate::links::chart_url(self.web, self.key, i.id, &who, expires),
                );
            }
        }
        links
    }
}

/// An outbox row for `message` to `chat`.
pub fn row(
    chat: &ChatConfig,
    key: String,
    message: &ChatMessage,
    incident_ids: Vec<i64>,
    now: DateTime<Utc>,
) -> NewMail {
    NewMail {
        channel: Channel::Chat,
        owner: format!("{} ({})", chat.name, chat.kind.as_str()),
        recipient: chat.name.clone(),
        subject: message.title.clone(),
        // serialising a JSON value cannot fail
        message: serde_json::to_vec(&words::payload(chat.kind, message)).unwrap_or_default(),
        incident_ids,
        idempotency_key: key,
        created_at: now.timestamp_millis(),
    }
}

/// `chat:<name>:<sorted ids>`.
pub fn digest_key(name: &str, ids: &[i64]) -> String {
    let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
    format!("chat:{name}:{}", ids.join(","))
}

/// One channel's message of a run, before it is queued.
pub struct Message<'c> {
    /// Where it goes.
    pub chat: &'c ChatConfig,
    /// What it says.
    pub message: ChatMessage,
    /// The incidents it names, ascending.
    pub incident_ids: Vec<i64>,
}

impl Message<'_> {
    /// Its outbox row, under [`digest_key`].
    pub fn row(&self, now: DateTime<Utc>) -> NewMail {
        let key = digest_key(&self.chat.name, &self.incident_ids);
        row(
            self.chat,
            key,
            &self.message,
            self.incident_ids.clone(),
            now,
        )
    }
}

/// The channel messages of the fresh incidents of one run (see the module
/// doc).
pub fn digests<'c>(
    config: &'c Config,
    fresh: &[Incident],
    now: DateTime<Utc>,
    signer: Option<Signer<'_>>,
    charts: &crate::render::Charts,
    extras: &crate::render::ItemExtras,
) -> Vec<Message<'c>> {
    let review_at = crate::review::next_review(&config.review, now).with_timezone(&Utc);
    let mut out = Vec::new();
    for (name, items) in by_channel(config, fresh) {
        let Some(chat) = config.chat_named(&name) else {
            continue;
        };
        let links = signer
            .map(|s| s.chat_links(&name, &items, review_at, charts))
            .unwrap_or_default();
        let owned: Vec<Incident> = items.into_iter().cloned().collect();
        let message =
            words::digest_message(&owned, &config.review, &config.sources, now, &links, extras);
        let mut incident_ids: Vec<i64> = owned.iter().map(|i| i.id).collect();
        incident_ids.sort_unstable();
        incident_ids.dedup();
        out.push(Message {
            chat,
            message,
            incident_ids,
        });
    }
    out
}

/// The reminder (or, with `escalation`, the escalation) of each channel
/// for the review `due`: the incidents routed there still unexplained,
/// under `chat-reminder:<name>:<date>` (`chat-escalation:…`).
pub fn reminders(
    config: &Config,
    unexplained: &[Incident],
    due: crate::render::reminders::Due,
    signer: Option<Signer<'_>>,
    escalation: bool,
    now: DateTime<Utc>,
) -> Vec<NewMail> {
    let review_at = due.review_at.with_timezone(&Utc);
    let date = due.review_at.format("%Y-%m-%d");
    let what = if escalation { "escalation" } else { "reminder" };
    let mut out = Vec::new();
    for (name, items) in by_channel(config, unexplained) {
        let Some(chat) = config.chat_named(&name) else {
            continue;
        };
        let links = signer
            .map(|s| s.chat_links(&name, &items, review_at, &crate::render::Charts::new()))
            .unwrap_or_default();
        let owned: Vec<Incident> = items.into_iter().cloned().collect();
        let message = words::reminder_message(&owned, &config.review, due, &links, escalation);
        let mut ids: Vec<i64> = owned.iter().map(|i| i.id).collect();
        ids.sort_unstable();
        out.push(row(
            chat,
            format!("chat-{what}:{name}:{date}"),
            &message,
            ids,
            now,
        ));
    }
    out
}

/// Post a test message to the `[[chat]]` called `name` now, outside the
/// outbox (`callout test-chat`).
pub fn send_test(config: &Config, name: &str, now: DateTime<Utc>) -> Result<(), AlertError> {
    let chat = config.chat_named(name).ok_or_else(|| AlertError::NoChat {
        name: name.to_string(),
        known: config.chat.iter().map(|c| c.name.clone()).collect(),
    })?;
    let body = serde_json::to_vec(&words::payload(chat.kind, &words::test_message(name, now)))
        .unwrap_or_default();
    match post(chat, &body) {
        Outcome::Sent { .. } => Ok(()),
        Outcome::Failed { error, .. } => Err(AlertError::Chat {
            name: name.to_string(),
            detail: error,
        }),
    }
}

/// How long a claim on a chat row lasts: the request's timeout, twice, and a minute.
pub fn claim_ttl(config: &Config) -> chrono::Duration {
    let longest = config
        .chat
        .iter()
        .map(|c| c.timeout)
        .max()
        .unwrap_or(Duration::from_secs(30));
    chrono::Duration::from_std(longest.saturating_mul(2) + Duration::from_secs(60))
        .unwrap_or_else(|_| chrono::Duration::hours(1))
}

/// Send every chat message due at `now` (see the module doc).
pub fn deliver_due(
    store: &Store,
    config: &Config,
    alerts: &AlertsConfig,
    now: DateTime<Utc>,
    runner: &Runner,
) -> Result<DeliveryReport, AlertError> {
    super::deliver_rows(
        store,
        Channel::Chat,
        claim_ttl(config),
        alerts,
        now,
        runner,
        &mut |m| send_one(store, config, m, now),
    )
}

/// One POST of a queued chat message. Errs only when the store fails.
fn send_one(
    store: &Store,
    config: &Config,
    m: &MailRow,
    now: DateTime<Utc>,
) -> Result<Outcome, StoreError> {
    let name = &m.mail.recipient;
    let Some(chat) = config.chat_named(name) else {
        return Ok(Outcome::Failed {
            error: format!("posting to chat `{name}`: no [[chat]] has this name any more"),
            timed_out: false,
            in_doubt: false,
            permanent: true,
            retry_after: None,
        });
    };
    store.mark_attempt(m.id, now)?;
    let mut outcome = post(chat, &m.mail.message);
    match &mut outcome {
        Outcome::Sent { .. } => store.mark_sent(m.id, now)?,
        Outcome::Failed { error, .. } => {
            *error = format!(
                "posting to chat `{name}` ({}) failed: {error}",
                chat.kind.as_str()
            );
        }
    }
    Ok(outcome)
}

/// The most of a webhook's answer quoted in an error.
const MAX_ANSWER_CHARS: usize = 200;

/// POST `body` (JSON) to `chat`'s webhook, read now.
fn post(chat: &ChatConfig, body: &[u8]) -> Outcome {
    let failed = |error: String, permanent: bool| Outcome::Failed {
        error,
        timed_out: false,
        in_doubt: false,
        permanent,
        retry_after: None,
    };
    let url = match chat.webhook.read() {
        Ok(u) => u,
        Err(e) => {
            return failed(
                format!(
                    "cannot read the webhook URL from {}: {e}",
                    chat.webhook.describe()
                ),
                false,
            );
        }
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(chat.timeout))
        .http_status_as_error(false)
        .build()
        .into();
    let sent = agent
        .post(&url)
        .header("Content-Type", "application/json; charset=utf-8")
        .send(body);
    let mut resp = match sent {
        Ok(r) => r,
        Err(ureq::Error::Timeout(_)) => {
            return Outcome::Failed {
                error: format!(
                    "no answer within {} s ([[chat]] timeout_secs)",
                    chat.timeout.as_secs()
                ),
                timed_out: true,
                in_doubt: true,
                permanent: false,
                retry_after: None,
            };
        }
        // ureq's words may quote the URL: the secret is cut out of them
        Err(e) => {
            return failed(
                scrub(&e.to_string(), &url),
                matches!(e, ureq::Error::BadUri(_)),
            );
        }
    };
    let status = resp.status().as_u16();
    if (200..300).contains(&status) {
        return Outcome::Sent {
            quit_timed_out: false,
        };
    }
    let answer: String = resp
        .body_mut()
        .read_to_string()
        .unwrap_or_default()
        .chars()
        .take(MAX_ANSWER_CHARS)
        .collect();
    let answer = scrub(answer.trim(), &url);
    let said = if answer.is_empty() {
        String::new()
    } else {
        format!(": {answer}")
    };
    match status {
        429 => Outcome::Failed {
            error: format!("HTTP 429, too many requests{said}"),
            timed_out: false,
            in_doubt: false,
            permanent: false,
            retry_after: resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs),
        },
        400..=499 => failed(
            format!(
                "the webhook refused the message with HTTP {status}{said}; check the URL in {} (a deleted or revoked webhook answers 403, 404 or 410)",
                chat.webhook.describe()
            ),
            true,
        ),
        _ => failed(format!("HTTP {status}{said}"), false),
    }
}

/// `text` with the webhook URL (and its path, the secret part) cut out.
fn scrub(text: &str, url: &str) -> String {
    let mut out = text.replace(url, "<webhook URL>");
    if let Ok(u) = url::Url::parse(url)
        && u.path().len() > 1
    {
        out = out.replace(u.path(), "/<secret>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_never_quote_the_webhook_url() {
        let url = "https://hooks.slack.com/services/T000/B000/XXXXSECRET";
        let said = scrub(
            &format!("bad uri {url} and /services/T000/B000/XXXXSECRET"),
            url,
        );
        assert!(!said.contains("XXXXSECRET"), "{said}");
        assert!(said.contains("<webhook URL>"));
    }

    #[test]
    fn a_channel_key_names_it_and_its_incidents() {
        assert_eq!(digest_key("wbr", &[3, 7]), "chat:wbr:3,7");
    }
}
