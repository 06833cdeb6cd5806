//! Chat messages: what a digest, reminder, escalation or pre-read says in a
//! Slack or Teams channel, first as a [`ChatMessage`] (words only), then as
//! the JSON each webhook takes: Slack's Block Kit ([`slack`]) and a Teams
//! Adaptive Card ([`teams`]).
//!
//! A channel's message gathers the items of every owner routed there, so each
//! item names its owner. Words are the digest's (`why`, the numbers, the
//! slices that drove a total). Text that people or exports wrote (metric and
//! dimension names, notes) is escaped for Slack's `mrkdwn` (`&`, `<`, `>`),
//! so it can neither link nor mention. Adaptive Cards render a Markdown
//! subset in `TextBlock` and `FactSet` text and have no escape for it: a
//! metric named like a Markdown link would show as one (left as it is).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::digest::{ItemExtras, footer, sorted};
use super::problems::{export_lines, problem_lines};
use super::reminders::Due;
use super::words::{count_outliers, greeting_name, numbers_label, period_label, series_label, why};
use crate::config::{ChatKind, ReviewConfig, SourceConfig};
use crate::fmt::{pct, short_time};
use crate::model::{Incident, Lane};

/// Under each chart: what its colours mean.
pub const CHART_CAPTION: &str = "Last 6 weeks. Red: flagged; green: normal range (bar: expected).";

/// Items shown in one message; the rest are counted in a line. Slack takes
/// at most 50 blocks per message and each item is up to five.
pub const MAX_ITEMS: usize = 8;

/// One item of a chat message: an outlier to explain.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatItem {
    /// The incident.
    pub id: i64,
    /// `revenue (total)`, `orders (region=eu)`.
    pub title: String,
    /// The owner asked, as shown (name, else address); `None`: nobody's.
    pub owner: Option<String>,
    /// Labelled facts, in order: Period, Why, Actual, WoW / YoY, Check.
    pub facts: Vec<(&'static str, String)>,
    /// The signed explanation page.
    pub explain: Option<String>,
    /// The signed chart image (`…/chart/<token>.png`).
    pub chart: Option<String>,
}

/// What one chat message says, before it is laid out for Slack or Teams.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatMessage {
    /// The first line (and the notification's text).
    pub title: String,
    /// The sentences under it.
    pub intro: Vec<String>,
    /// Outliers, most severe first (at most [`MAX_ITEMS`]).
    pub items: Vec<ChatItem>,
    /// Lines after the items: data and export problems, what was left out.
    pub lines: Vec<String>,
    /// A button under everything: label and URL (the pre-read, a list).
    pub link: Option<(String, String)>,
    /// The small print: the review and the incident numbers.
    pub footer: String,
}

/// The links of a channel's message: each outlier's explanation page and chart.
#[derive(Debug, Clone, Default)]
pub struct ChatLinks {
    /// Incident id → signed explanation page.
    pub pages: BTreeMap<i64, String>,
    /// Incident id → signed chart image URL.
    pub charts: BTreeMap<i64, String>,
}

/// The digest of one channel: every incident routed to it this run, whoever
/// owns it.
pub fn digest_message(
    incidents: &[Incident],
    review: &ReviewConfig,
    sources: &[SourceConfig],
    now: DateTime<Utc>,
    links: &ChatLinks,
    extras: &ItemExtras,
) -> ChatMessage {
    let items = sorted(incidents, |l| !matches!(l, Lane::Export | Lane::Health));
    let health = sorted(incidents, |l| l == Lane::Health);
    let problems = problem_lines(&health, extras);
    let exports = export_lines(incidents, sources);
    let due = Due::at(review, now);
    let n = items.len();
    let title = super::digest::subject(review, due, now, n, &problems, &exports)
        .trim_start_matches("[callout] ")
        .to_string();
    let mut intro = Vec::new();
    if let Some(note) = &extras.notice {
        intro.push(note.clone());
    }
    if n > 0 {
        let how = if links.pages.is_empty() {
            "Owners: please explain each one to the WBR organisers"
        } else {
            "Owners: please explain each one with its \u{201c}Explain this\u{201d} button"
        };
        let (_, when) = super::digest::ask(review, due, now, n, !links.pages.is_empty());
        intro.push(format!("callout found {}. {how} {when}", count_outliers(n)));
    }
    let mut lines = Vec::new();
    if items.len() > MAX_ITEMS {
        lines.push(format!(
            "{} more outlier(s) not shown here; each owner's email digest lists all of theirs.",
            items.len() - MAX_ITEMS
        ));
    }
    lines.extend(problems.iter().map(|p| format!("Data problem: {}", p.line)));
    lines.extend(
        exports
            .iter()
            .map(|e| format!("Export problem: {}", e.line)),
    );
    let ids: Vec<String> = incidents.iter().map(|i| format!("#{}", i.id)).collect();
    let items = items
        .iter()
        .take(MAX_ITEMS)
        .map(|i| item(i, links, extras))
        .collect();
    ChatMessage {
        title,
        intro,
        items,
        lines,
        link: None,
        footer: footer(review, &ids),
    }
}

fn item(i: &Incident, links: &ChatLinks, extras: &ItemExtras) -> ChatItem {
    let f = &i.worst;
    let mut facts = vec![
        ("Period", period_label(i)),
        ("Why", super::drivers::why_without_drivers(f)),
        ("Actual", numbers_label(f, extras.unit_of(i))),
        (
            "WoW / YoY",
            format!("{} / {}", pct(f.hit.wow_pct), pct(f.hit.yoy_pct)),
        ),
        (
            "Check",
            format!("{} (source {})", f.hit.check.as_str(), i.source),
        ),
    ];
    if let Some(p) = extras.plans.get(&i.id) {
        facts.push(("Plan", p.line()));
    }
    let drivers = super::drivers::of(f);
    if !drivers.is_empty() {
        let mut lines: Vec<String> = drivers.iter().map(crate::model::Driver::line).collect();
        if drivers.iter().any(|d| d.share_pct > 100.0) {
            lines.push("(a share passes 100% when other slices moved the other way)".into());
        }
        facts.insert(2, ("What drove it", lines.join("\n")));
    }
    ChatItem {
        id: i.id,
        title: series_label(i),
        owner: i.owner.as_ref().map(greeting_name),
        facts,
        explain: links.pages.get(&i.id).cloned(),
        chart: links.charts.get(&i.id).cloned(),
    }
}

/// A reminder (`escalation` false) or escalation for a channel: the
/// incidents still unexplained, one line each, with their pages.
pub fn reminder_message(
    incidents: &[Incident],
    review: &ReviewConfig,
    due: Due,
    links: &ChatLinks,
    escalation: bool,
) -> ChatMessage {
    let items = sorted(incidents, |_| true);
    let n = items.len();
    let (title, intro) = if escalation {
        (
            format!("{} still unexplained after the deadline", count_outliers(n)),
            format!(
                "Explanations were due {}; the {} is on {}. The owners below have not answered.",
                short_time(&due.deadline),
                review.name,
                short_time(&due.review_at)
            ),
        )
    } else {
        (
            format!(
                "Reminder: {} to explain by {}",
                count_outliers(n),
                short_time(&due.deadline)
            ),
            format!(
                "These are still unexplained; the {} is on {}.",
                review.name,
                short_time(&due.review_at)
            ),
        )
    };
    let ids: Vec<String> = items.iter().map(|i| format!("#{}", i.id)).collect();
    let mut lines = Vec::new();
    if n > MAX_ITEMS {
        lines.push(format!("{} more not shown here.", n - MAX_ITEMS));
    }
    ChatMessage {
        title,
        intro: vec![intro],
        items: items
            .iter()
            .take(MAX_ITEMS)
            .map(|i| ChatItem {
                id: i.id,
                title: series_label(i),
                owner: i.owner.as_ref().map(greeting_name),
                facts: vec![("Period", period_label(i)), ("Why", why(&i.worst))],
                explain: links.pages.get(&i.id).cloned(),
                chart: None,
            })
            .collect(),
        lines,
        link: None,
        footer: footer(review, &ids),
    }
}

/// The pre-read is ready: its title and a button to it.
pub fn report_message(title: &str, review: &ReviewConfig, url: &str) -> ChatMessage {
    ChatMessage {
        title: format!("The pre-read is ready: {title}"),
        intro: vec![format!(
            "Read it before the {}; owners' explanations are in it.",
            review.name
        )],
        items: Vec::new(),
        lines: Vec::new(),
        link: Some(("Open the pre-read".into(), url.to_string())),
        footer: format!("Sent by callout for the {}.", review.name),
    }
}

/// The test message of `callout test-chat`.
pub fn test_message(name: &str, now: DateTime<Utc>) -> ChatMessage {
    ChatMessage {
        title: format!("callout test message to \u{201c}{name}\u{201d}"),
        intro: vec![format!(
            "If you can read this, callout can post here. Sent {}.",
            now.format("%Y-%m-%d %H:%M UTC")
        )],
        items: Vec::new(),
        lines: Vec::new(),
        link: None,
        footer: "Sent by callout test-chat.".into(),
    }
}

/// The JSON a webhook of `kind` takes.
pub fn payload(kind: ChatKind, m: &ChatMessage) -> Value {
    match kind {
        ChatKind::Slack => slack(m),
        ChatKind::Teams => teams(m),
    }
}

/// Text for Slack's `mrkdwn`: `&`, `<` and `>` escaped (Slack's own rule),
/// so a name can neither link nor mention.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// At most `n` characters (Slack refuses longer texts).
fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut out: String = s.chars().take(n.saturating_sub(1)).collect();
    out.push('\u{2026}');
    out
}

/// Slack incoming-webhook JSON: `text` (the notification) and `blocks` at
/// the top level: a header, the intro, per item a section of facts, its
/// chart and an "Explain this" button, then problems and the footer.
pub fn slack(m: &ChatMessage) -> Value {
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": cut(&m.title, 150), "emoji": false}
    })];
    for p in &m.intro {
        blocks.push(
            json!({"type": "section", "text": {"type": "mrkdwn", "text": cut(&esc(p), 3000)}}),
        );
    }
    for (k, it) in m.items.iter().enumerate() {
        blocks.push(json!({"type": "divider"}));
        let mut text = format!("*{}. {}*", k + 1, esc(&it.title));
        if let Some(o) = &it.owner {
            text.push_str(&format!("  \u{00b7}  owner: {}", esc(o)));
        }
        for (label, value) in &it.facts {
            text.push_str(&format!("\n*{label}:* {}", esc(value)));
        }
        blocks
            .push(json!({"type": "section", "text": {"type": "mrkdwn", "text": cut(&text, 3000)}}));
        if let Some(url) = &it.chart {
            blocks.push(json!({
                "type": "image",
                "image_url": url,
                "alt_text": cut(&format!("{}, last 6 weeks", it.title), 2000)
            }));
            blocks.push(json!({"type": "context", "elements": [{"type": "plain_text", "text": CHART_CAPTION}]}));
        }
        if let Some(url) = &it.explain {
            blocks.push(json!({
                "type": "actions",
                "elements": [{
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Explain this"},
                    "url": url,
                    "style": "primary",
                    "action_id": format!("explain-{}", k + 1)
                }]
            }));
        }
    }
    if !m.lines.is_empty() {
        let text: Vec<String> = m
            .lines
            .iter()
            .map(|l| format!("\u{2022} {}", esc(l)))
            .collect();
        blocks.push(json!({"type": "divider"}));
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": cut(&text.join("\n"), 3000)}}));
    }
    if let Some((label, url)) = &m.link {
        blocks.push(json!({
            "type": "actions",
            "elements": [{
                "type": "button",
                "text": {"type": "plain_text", "text": cut(label, 75)},
                "url": url,
                "style": "primary",
                "action_id": "open"
            }]
        }));
    }
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": cut(&esc(&m.footer), 3000)}]}));
    json!({"text": m.title, "blocks": blocks})
}

/// A Teams Workflows-webhook message: one Adaptive Card (1.4) attachment
/// with the title, intro, per item a container (title, owner, facts, chart
/// image, an "Explain this" action), problems and the footer.
pub fn teams(m: &ChatMessage) -> Value {
    let text = |t: &str| json!({"type": "TextBlock", "text": t, "wrap": true});
    let mut body = vec![json!({
        "type": "TextBlock", "text": m.title, "weight": "Bolder", "size": "Medium", "wrap": true
    })];
    body.extend(m.intro.iter().map(|p| text(p)));
    for (k, it) in m.items.iter().enumerate() {
        let mut items = vec![json!({
            "type": "TextBlock",
            "text": format!("{}. {}", k + 1, it.title),
            "weight": "Bolder",
            "wrap": true
        })];
        if let Some(o) = &it.owner {
            items.push(json!({"type": "TextBlock", "text": format!("Owner: {o}"), "isSubtle": true, "spacing": "None", "wrap": true}));
        }
        items.push(json!({
            "type": "FactSet",
            "facts": it.facts.iter().map(|(t, v)| json!({"title": t, "value": v})).collect::<Vec<_>>()
        }));
        if let Some(url) = &it.chart {
            items.push(json!({"type": "Image", "url": url, "altText": format!("{}, last 6 weeks", it.title), "size": "Stretch"}));
            items.push(json!({"type": "TextBlock", "text": CHART_CAPTION, "isSubtle": true, "size": "Small", "spacing": "None", "wrap": true}));
        }
        if let Some(url) = &it.explain {
            items.push(json!({
                "type": "ActionSet",
                "actions": [{"type": "Action.OpenUrl", "title": "Explain this", "url": url, "style": "positive"}]
            }));
        }
        body.push(
            json!({"type": "Container", "separator": true, "spacing": "Medium", "items": items}),
        );
    }
    if !m.lines.is_empty() {
        let lines: Vec<String> = m.lines.iter().map(|l| format!("- {l}")).collect();
        body.push(
            json!({"type": "TextBlock", "text": lines.join("\n"), "wrap": true, "separator": true}),
        );
    }
    if let Some((label, url)) = &m.link {
        body.push(json!({
            "type": "ActionSet",
            "actions": [{"type": "Action.OpenUrl", "title": label, "url": url, "style": "positive"}]
        }));
    }
    body.push(json!({"type": "TextBlock", "text": m.footer, "isSubtle": true, "size": "Small", "wrap": true}));
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "msteams": {"width": "Full"},
                "body": body
            }
        }]
    })
}

/// A page showing `m` roughly as the channel shows it (a Slack message or
/// a Teams card): what `--dry-run` writes beside each channel's JSON, to
/// look at before a webhook is set up.
pub fn preview(kind: ChatKind, m: &ChatMessage) -> String {
    use maud::{DOCTYPE, html};
    let (frame, accent, button) = match kind {
        ChatKind::Slack => (
            "max-width:640px;padding:12px 16px;font:15px/1.45 -apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#1d1c1d",
            "#611f69",
            "display:inline-block;padding:5px 14px;border-radius:4px;background:#007a5a;color:#fff;font-weight:700;text-decoration:none;font-size:14px",
        ),
        ChatKind::Teams => (
            "max-width:640px;padding:16px 20px;font:14px/1.45 Segoe UI,Helvetica,Arial,sans-serif;color:#242424;border:1px solid #e0e0e0;border-radius:6px;box-shadow:0 1px 3px rgba(0,0,0,.12)",
            "#5b5fc7",
            "display:inline-block;padding:5px 14px;border-radius:4px;border:1px solid #5b5fc7;color:#5b5fc7;font-weight:600;text-decoration:none;font-size:14px",
        ),
    };
    let body = html! {
        div style=(frame) {
            div style={"font-weight:700;color:" (accent) ";margin-bottom:4px"} {
                "callout" span style="font-weight:400;color:#616061;font-size:12px;margin-left:6px" { "APP" }
            }
            div style="font-size:18px;font-weight:700;margin:4px 0 8px" { (m.title) }
            @for p in &m.intro { p style="margin:4px 0" { (p) } }
            @for (k, it) in m.items.iter().enumerate() {
                div style="border-top:1px solid #ddd;margin-top:10px;padding-top:8px" {
                    div {
                        strong { (k + 1) ". " (it.title) }
                        @if let Some(o) = &it.owner { span style="color:#616061" { " · owner: " (o) } }
                    }
                    table style="border-collapse:collapse;margin:4px 0" {
                        @for (label, value) in &it.facts {
                            tr {
                                td style="vertical-align:top;font-weight:700;padding:1px 10px 1px 0;white-space:nowrap" { (label) }
                                td style="padding:1px 0" {
                                    @for (n, line) in value.split('\n').enumerate() {
                                        @if n > 0 { br; }
                                        (line)
                                    }
                                }
                            }
                        }
                    }
                    @if let Some(url) = &it.chart {
                        img src=(url) alt={(it.title) ", last 6 weeks"} style="max-width:100%;border:1px solid #eee;border-radius:4px;margin:4px 0";
                        div style="color:#616061;font-size:12px" { (CHART_CAPTION) }
                    }
                    @if let Some(url) = &it.explain {
                        div style="margin:6px 0" { a href=(url) style=(button) { "Explain this" } }
                    }
                }
            }
            @if !m.lines.is_empty() {
                ul style="border-top:1px solid #ddd;margin-top:10px;padding:8px 0 0 18px" {
                    @for l in &m.lines { li { (l) } }
                }
            }
            @if let Some((label, url)) = &m.link {
                div style="margin:8px 0" { a href=(url) style=(button) { (label) } }
            }
            div style="color:#616061;font-size:12px;margin-top:10px" { (m.footer) }
        }
    };
    html! {
        (DOCTYPE)
        html {
            head { meta charset="utf-8"; title { (m.title) } }
            body style="margin:16px;background:#fff" { (body) }
        }
    }
    .into_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Check;
    use crate::render::tests::{finding, incident, now, review, sources};

    fn many(n: i64) -> Vec<Incident> {
        (1..=n)
            .map(|k| {
                let mut f = finding(
                    "revenue",
                    &[("region", "eu")],
                    Check::Seasonal,
                    5.0 + k as f64,
                );
                f.hit.note = Some(format!(
                    "{}\nregion eu <b>: -40% vs expected, explains 90% of the gap",
                    crate::model::DRIVERS_HEADING
                ));
                incident(k, f)
            })
            .collect()
    }

    fn links(incidents: &[Incident]) -> ChatLinks {
        let mut l = ChatLinks::default();
        for i in incidents {
            l.pages
                .insert(i.id, format!("https://c.example/e/t{}", i.id));
            l.charts
                .insert(i.id, format!("https://c.example/chart/c{}.png", i.id));
        }
        l
    }

    /// The message of `n` linked incidents.
    fn message(n: i64) -> ChatMessage {
        let incidents = many(n);
        digest_message(
            &incidents,
            &review(),
            &sources(),
            now(),
            &links(&incidents),
            &ItemExtras::default(),
        )
    }

    #[test]
    fn a_long_digest_stays_inside_slacks_limits_and_counts_the_rest() {
        let m = message(30);
        assert_eq!(m.items.len(), MAX_ITEMS);
        assert!(
            m.lines[0].starts_with("22 more outlier(s)"),
            "{:?}",
            m.lines
        );
        let p = slack(&m);
        let blocks = p["blocks"].as_array().unwrap();
        assert!(blocks.len() <= 50, "{} blocks", blocks.len());
        let buttons: Vec<&str> = blocks
            .iter()
            .filter(|b| b["type"] == "actions")
            .map(|b| b["elements"][0]["action_id"].as_str().unwrap())
            .collect();
        assert_eq!(buttons.len(), MAX_ITEMS);
        let mut unique = buttons.clone();
        unique.dedup();
        assert_eq!(unique.len(), buttons.len());
    }

    #[test]
    fn names_cannot_mark_up_a_slack_message_and_drivers_get_their_own_line() {
        let m = message(1);
        let facts: Vec<&str> = m.items[0].facts.iter().map(|(l, _)| *l).collect();
        assert_eq!(&facts[..3], ["Period", "Why", "What drove it"]);
        assert!(!m.items[0].facts[1].1.contains("what drove it"));
        let text = slack(&m)["blocks"].to_string();
        assert!(text.contains("region eu &lt;b&gt;"), "{text}");
        assert!(!text.contains("<b>"), "{text}");
        // Teams takes the same words as plain text
        let card = teams(&m).to_string();
        assert!(card.contains("What drove it") && card.contains("https://c.example/chart/c1.png"));
    }
}
