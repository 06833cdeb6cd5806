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
use crate::config::{AlertsConfig, ChatConfig, ChatKind, Config};
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
        return Ok(failed(
            format!("posting to chat `{name}`: no [[chat]] has this name any more"),
            true,
        ));
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

/// Longest wait for a webhook's address and connection (within `timeout_secs`):
/// a timeout before the request went out is a plain failure, not in doubt.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// POST `body` (JSON) to `chat`'s webhook, read now. Slack refuses a whole
/// message whose image it cannot download (`invalid_blocks`: a `[web]
/// public_url` Slack cannot reach); it is posted once more without images.
fn post(chat: &ChatConfig, body: &[u8]) -> Outcome {
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
    match post_to(chat, &url, body) {
        Err((400, answer)) if chat.kind == ChatKind::Slack && answer.contains("invalid_blocks") => {
            match without_images(body) {
                Some(plain) => {
                    tracing::warn!(chat = %chat.name, "Slack could not use the chart images (is [web] public_url reachable from the internet?); posting without them");
                    refused(chat, post_to(chat, &url, &plain), &url)
                }
                None => refused(chat, Err((400, answer)), &url),
            }
        }
        other => refused(chat, other, &url),
    }
}

/// A failure that is not in doubt.
fn failed(error: String, permanent: bool) -> Outcome {
    Outcome::Failed {
        error,
        timed_out: false,
        in_doubt: false,
        permanent,
        retry_after: None,
    }
}

/// One POST: `Ok(outcome)` unless the webhook answered with a status that
/// is no success, then `Err((status, its answer))`.
fn post_to(chat: &ChatConfig, url: &str, body: &[u8]) -> Result<Outcome, (u16, String)> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(chat.timeout))
        .timeout_resolve(Some(CONNECT_TIMEOUT.min(chat.timeout)))
        .timeout_connect(Some(CONNECT_TIMEOUT.min(chat.timeout)))
        .http_status_as_error(false)
        .build()
        .into();
    let sent = agent
        .post(url)
        .header("Content-Type", "application/json; charset=utf-8")
        .send(body);
    let mut resp = match sent {
        Ok(r) => r,
        Err(ureq::Error::Timeout(t)) => {
            let before = matches!(t, ureq::Timeout::Resolve | ureq::Timeout::Connect);
            return Ok(Outcome::Failed {
                error: if before {
                    "could not connect in time".to_string()
                } else {
                    format!(
                        "no answer within {} s ([[chat]] timeout_secs)",
                        chat.timeout.as_secs()
                    )
                },
                timed_out: true,
                // the request may have gone out only once connected
                in_doubt: !before,
                permanent: false,
                retry_after: None,
            });
        }
        // ureq's words may quote the URL: the secret is cut out of them
        Err(e) => {
            return Ok(failed(
                scrub(&e.to_string(), url),
                matches!(e, ureq::Error::BadUri(_)),
            ));
        }
    };
    let status = resp.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(Outcome::Sent {
            quit_timed_out: false,
        });
    }
    let answer: String = resp
        .body_mut()
        .read_to_string()
        .unwrap_or_default()
        .chars()
        .take(MAX_ANSWER_CHARS)
        .collect();
    if status == 429 {
        let wait = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        return Ok(Outcome::Failed {
            error: format!("HTTP 429, too many requests{}", said(&answer, url)),
            timed_out: false,
            in_doubt: false,
            permanent: false,
            retry_after: wait,
        });
    }
    Err((status, answer))
}

/// `: <the webhook's answer>` (the URL cut out), or nothing.
fn said(answer: &str, url: &str) -> String {
    let answer = scrub(answer.trim(), url);
    if answer.is_empty() {
        String::new()
    } else {
        format!(": {answer}")
    }
}

/// The outcome of a POST whose answer was an error status: a 4xx other than
/// 408 and 429 is a bad webhook or payload (given up); the rest is retried.
fn refused(chat: &ChatConfig, r: Result<Outcome, (u16, String)>, url: &str) -> Outcome {
    match r {
        Ok(outcome) => outcome,
        Err((status @ (400..=407 | 409..=499), answer)) => failed(
            format!(
                "the webhook refused the message with HTTP {status}{}; check the URL in {} (a deleted or revoked webhook answers 403, 404 or 410)",
                said(&answer, url),
                chat.webhook.describe()
            ),
            true,
        ),
        Err((status, answer)) => failed(format!("HTTP {status}{}", said(&answer, url)), false),
    }
}

/// A Slack payload without its image blocks and their captions; `None`
/// when it has none.
fn without_images(body: &[u8]) -> Option<Vec<u8>> {
    let mut p: serde_json::Value = serde_json::from_slice(body).ok()?;
    let blocks = p.get_mut("blocks")?.as_array_mut()?;
    let before = blocks.len();
    blocks.retain(|b| b["type"] != "image" && b["elements"][0]["text"] != words::CHART_CAPTION);
    (blocks.len() < before).then(|| serde_json::to_vec(&p).unwrap_or_default())
}

/// `text` with the webhook URL, its path and its query (where the secret
/// parts are: Slack's path, Teams' `sig=`) cut out.
fn scrub(text: &str, url: &str) -> String {
    let mut out = text.replace(url, "<webhook URL>");
    if let Ok(u) = url::Url::parse(url) {
        if u.path().len() > 1 {
            out = out.replace(u.path(), "/<secret>");
        }
        if let Some(q) = u.query().filter(|q| !q.is_empty()) {
            out = out.replace(q, "<secret>");
        }
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
        // a Teams Workflows URL keeps its secret in the query
        let url = "https://prod.westus.logic.azure.com/workflows/abc/triggers/manual/paths/invoke?api-version=1&sig=SIGSECRET";
        let said = scrub("failed at api-version=1&sig=SIGSECRET", url);
        assert!(!said.contains("SIGSECRET"), "{said}");
    }

    #[test]
    fn a_slack_message_without_its_images_keeps_everything_else() {
        let m = words::ChatMessage {
            title: "t".into(),
            intro: vec!["i".into()],
            items: vec![words::ChatItem {
                id: 1,
                title: "revenue".into(),
                owner: None,
                facts: vec![("Why", "w".into())],
                explain: Some("https://c.example/e/x".into()),
                chart: Some("https://c.example/chart/y.png".into()),
            }],
            lines: Vec::new(),
            link: None,
            footer: "f".into(),
        };
        let body = serde_json::to_vec(&words::slack(&m)).unwrap();
        let plain: serde_json::Value =
            serde_json::from_slice(&without_images(&body).unwrap()).unwrap();
        let text = plain.to_string();
        assert!(!text.contains("chart/y.png") && !text.contains(words::CHART_CAPTION));
        assert!(text.contains("https://c.example/e/x") && text.contains("revenue"));
        assert!(without_images(&serde_json::to_vec(&plain).unwrap()).is_none());
    }

    #[test]
    fn a_channel_key_names_it_and_its_incidents() {
        assert_eq!(digest_key("wbr", &[3, 7]), "chat:wbr:3,7");
    }
}
