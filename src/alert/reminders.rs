//! Reminders before the deadline and escalation after it.
//!
//! Which incidents: those announced by a digest queued for the review at
//! hand (between the review before it and its deadline) that have no
//! explanation in the store. Explained incidents are never mentioned again.
//!
//! - **Reminder**: once the deadline is less than
//!   `reminders.hours_before_deadline` away, each owner with such incidents
//!   announced before that window opened gets ONE message listing just those
//!   (an incident announced inside the window was asked about moments ago:
//!   its digest is the reminder).
//! - **Escalation**: once the deadline has passed (and until a day after the
//!   review), ONE message per escalation address names each owner and what
//!   they have not explained. The address is the owner rule's `escalate_to`
//!   (e.g. a manager), else `reminders.escalate_to`; with neither, nobody is
//!   escalated to.
//!
//! Both are queued in the outbox like digests, under the idempotency keys
//! `reminder:<owner>:<review date>` and `escalation:<address>:<review date>`,
//! so a later run (a restart, the next cycle) never queues them twice, and
//! delivery retries them like any message.
//!
//! Must not: read the clock (callers pass `now`) or phrase anything (that is
//! `render::reminders`).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use lettre::message::Mailbox;

use super::incidents::load;
use super::{AlertError, mail};
use crate::config::Config;
use crate::model::{Incident, Lane};
use crate::render::reminders::{self as text, Due};
use crate::review::{next_review, previous_review};
use crate::store::{Store, StoreError};

/// Escalations are not sent later than this after the review: by then the
/// review has happened and the message would only be noise.
const ESCALATION_GRACE: Duration = Duration::hours(24);

/// What [`queue_reminders`] did.
#[derive(Debug, Default)]
pub struct ReminderReport {
    /// Reminders newly written to the outbox.
    pub reminders: usize,
    /// Escalations newly written to the outbox.
    pub escalations: usize,
    /// Messages that were already in the outbox (an earlier run sent them).
    pub already_queued: usize,
    /// Recipients whose message could not be built, with the error.
    pub failed: Vec<(String, String)>,
}

/// One review's deadline and the window of digests that were due at it.
#[derive(Debug, Clone, Copy)]
struct ReviewWindow {
    due: Due,
    /// Digests queued in `[announced_from, deadline)` were due at this deadline.
    announced_from: DateTime<Utc>,
}

impl ReviewWindow {
    fn for_review(config: &Config, review_at: DateTime<Tz>) -> ReviewWindow {
        let at = review_at.with_timezone(&Utc);
        ReviewWindow {
            due: Due {
                deadline: review_at - Duration::hours(config.review.due_hours_before),
                review_at,
            },
            announced_from: previous_review(&config.review, at - Duration::milliseconds(1))
                .with_timezone(&Utc),
        }
    }

    fn deadline(&self) -> DateTime<Utc> {
        self.due.deadline.with_timezone(&Utc)
    }

    /// `2020-12-02`: the review's local date, part of the idempotency keys.
    fn date(&self) -> String {
        self.due.review_at.format("%Y-%m-%d").to_string()
    }
}

/// The review whose reminder window contains `now`, if any.
fn reminder_window(config: &Config, now: DateTime<Utc>) -> Option<(ReviewWindow, DateTime<Utc>)> {
    let before = config.reminders.before_deadline?;
    let w = ReviewWindow::for_review(config, next_review(&config.review, now));
    let opens = w.deadline() - before;
    (opens <= now && now < w.deadline()).then_some((w, opens))
}

/// The review whose deadline passed most recently, while escalating is still useful.
fn escalation_window(config: &Config, now: DateTime<Utc>) -> Option<ReviewWindow> {
    let next = ReviewWindow::for_review(config, next_review(&config.review, now));
    let w = if next.deadline() <= now {
        next
    } else {
        ReviewWindow::for_review(config, previous_review(&config.review, now))
    };
    let over = w.due.review_at.with_timezone(&Utc) + ESCALATION_GRACE;
    (w.deadline() <= now && now < over).then_some(w)
}

/// Unexplained incidents announced in `[from, until)`, loaded with their
/// current owners (incidents nobody owns any more are left out).
fn unexplained(
    store: &Store,
    config: &Config,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<Incident>, StoreError> {
    let mut out = Vec::new();
    for row in store.unexplained_announced(from, until)? {
        if let Some(i) = load(store, row, config)?
            && (i.owner.is_some() || !super::chat::routes(config, &i).is_empty())
        {
            out.push(i);
        }
    }
    Ok(out)
}

/// Who hears about `i` after the deadline: its owner rule's `escalate_to`,
/// else `reminders.escalate_to`.
fn escalation_address<'c>(config: &'c Config, i: &Incident) -> Option<&'c Mailbox> {
    let rule = match i.lane {
        Lane::Export => None,
        Lane::Health | Lane::Statistical | Lane::Restated => config.owners.rule_of(&i.key),
    };
    rule.and_then(|r| r.escalate_to.as_ref())
        .or(config.reminders.escalate_to.as_ref())
}

fn lower(m: &Mailbox) -> String {
    m.email.to_string().to_ascii_lowercase()
}

/// Queue the reminders and the escalation due at `now` (see the module
/// doc). Needs `[smtp]` (the sender). Without `hours_before_deadline` there
/// are no reminders, and without any escalation address no escalation: then
/// it does not touch the store at all.
/// One recipient's failure does not stop the others.
/// With a `signer`, reminders link each item to its explanation page.
pub fn queue_reminders(
    store: &mut Store,
    config: &Config,
    now: DateTime<Utc>,
    signer: Option<super::Signer<'_>>,
) -> Result<ReminderReport, AlertError> {
    let mut report = ReminderReport::default();
    if config.smtp.is_none() && config.chat.is_empty() {
        return Ok(report);
    }
    let mut outgoing: Vec<(Mailbox, String, crate::render::Digest, Vec<i64>, bool)> = Vec::new();
    // each channel's reminder and escalation, whoever owns the items
    let mut chats: Vec<(crate::store::NewMail, bool)> = Vec::new();

    if let Some((w, opens)) = reminder_window(config, now) {
        let mut by_owner: BTreeMap<String, (Mailbox, Vec<Incident>)> = BTreeMap::new();
        let list = unexplained(store, config, w.announced_from, opens.min(w.deadline()))?;
        chats.extend(
            super::chat::reminders(config, &list, w.due, signer, false, now)
                .into_iter()
                .map(|m| (m, false)),
        );
        for i in list {
            if let Some(o) = i.owner.clone() {
                by_owner
                    .entry(lower(&o))
                    .or_insert_with(|| (o, Vec::new()))
                    .1
                    .push(i);
            }
        }
        for (addr, (owner, items)) in by_owner {
            let mut escalated_to: Vec<Mailbox> = Vec::new();
            for i in &items {
                if let Some(m) = escalation_address(config, i)
                    && !escalated_to.iter().any(|e| lower(e) == lower(m))
                {
                    escalated_to.push(m.clone());
                }
            }
            let links =
                signer.map(|s| s.links(&owner, &items, w.due.review_at.with_timezone(&Utc)));
            let digest = text::reminder(
                &owner,
                &items,
                &config.review,
                w.due,
                &escalated_to,
                links.as_ref(),
            );
            let key = format!("reminder:{addr}:{}", w.date());
            outgoing.push((
                owner,
                key,
                digest,
                items.iter().map(|i| i.id).collect(),
                false,
            ));
        }
    }

    let escalates = config.reminders.escalate_to.is_some()
        || config.owners.rules.iter().any(|r| r.escalate_to.is_some());
    if let Some(w) = escalation_window(config, now).filter(|_| escalates) {
        // address → owner → incidents
        type ByOwner = BTreeMap<String, (Mailbox, Vec<Incident>)>;
        let mut by_addr: BTreeMap<String, (Mailbox, ByOwner)> = BTreeMap::new();
        let list = unexplained(store, config, w.announced_from, w.deadline())?;
        chats.extend(
            super::chat::reminders(config, &list, w.due, signer, true, now)
                .into_iter()
                .map(|m| (m, true)),
        );
        for i in list {
            let (Some(to), Some(owner)) = (escalation_address(config, &i), i.owner.clone()) else {
                continue;
            };
            by_addr
                .entry(lower(to))
                .or_insert_with(|| (to.clone(), BTreeMap::new()))
                .1
                .entry(lower(&owner))
                .or_insert_with(|| (owner, Vec::new()))
                .1
                .push(i);
        }
        for (addr, (to, owners)) in by_addr {
            let owners: Vec<(Mailbox, Vec<Incident>)> = owners.into_values().collect();
            let ids: Vec<i64> = owners
                .iter()
                .flat_map(|(_, v)| v.iter().map(|i| i.id))
                .collect();
            let digest = text::escalation(&to, &owners, &config.review, w.due);
            let key = format!("escalation:{addr}:{}", w.date());
            outgoing.push((to, key, digest, ids, true));
        }
    }

    for (m, escalation) in chats {
        let (id, new) = store.transaction(|s| s.enqueue(&m))?;
        match (new, escalation) {
            (false, _) => report.already_queued += 1,
            (true, false) => report.reminders += 1,
            (true, true) => report.escalations += 1,
        }
        if new {
            tracing::info!(chat = %m.recipient, outbox = id, incidents = m.incident_ids.len(), escalation, "chat reminder queued");
        }
    }
    let Some(smtp) = config.smtp.as_ref().filter(|_| !outgoing.is_empty()) else {
        return Ok(report);
    };
    let env = mail::Envelope {
        from: &smtp.from,
        reply_to: smtp.reply_to.as_ref(),
        list_id: smtp.list_id.as_deref(),
    };
    let store_id = store.store_id()?;
    for (to, key, digest, mut ids, escalation) in outgoing {
        ids.sort_unstable();
        let m = match mail::outbox_row(&env, &store_id, &to, key, digest, ids, now) {
            Ok(m) => m,
            Err(failed) => {
                report.failed.push(failed);
                continue;
            }
        };
        let (id, new) = store.transaction(|s| s.enqueue(&m))?;
        match (new, escalation) {
            (false, _) => report.already_queued += 1,
            (true, false) => {
                report.reminders += 1;
                tracing::info!(owner = %to, outbox = id, incidents = m.incident_ids.len(), "reminder queued");
            }
            (true, true) => {
                report.escalations += 1;
                tracing::info!(to = %to, outbox = id, incidents = m.incident_ids.len(), "escalation queued");
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn config(review: &str, extra: &str) -> Config {
        let toml = format!(
            r#"
[review]
weekday = "wed"
time = "10:00"
timezone = "Europe/London"
{review}
[[source]]
name = "shop"
path = "x.csv"
[owners]
default = "Ana <ana@example.com>"
{extra}
"#
        );
        crate::config::compile_str(&toml, std::path::Path::new("t.toml"), &|_| None).unwrap()
    }

    fn utc(d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2020, 11, d, h, 0, 0).unwrap()
    }

    #[test]
    fn reminder_window_opens_hours_before_the_deadline_and_closes_at_it() {
        // Review Wed 2 Dec 10:00 London (= UTC in winter), due 24 h before: Tue 1 Dec 10:00.
        let c = config("", "[reminders]\nhours_before_deadline = 24");
        let at = |d, h| reminder_window(&c, Utc.with_ymd_and_hms(2020, 12, d, h, 0, 0).unwrap());
        assert!(
            reminder_window(&c, utc(30, 9)).is_none(),
            "Mon 09:00: too early"
        );
        let (w, opens) = reminder_window(&c, utc(30, 10)).unwrap();
        assert_eq!(opens, utc(30, 10));
        assert_eq!(w.date(), "2020-12-02");
        assert_eq!(
            w.announced_from,
            utc(25, 10),
            "digests since the last review"
        );
        assert!(at(1, 9).is_some());
        assert!(
            at(1, 10).is_none(),
            "deadline: escalation time, no reminder"
        );
        assert!(
            reminder_window(&config("", ""), utc(30, 12)).is_none(),
            "no [reminders]"
        );
        assert!(
            reminder_window(
                &config("", "[reminders]\nhours_before_deadline = 0"),
                utc(30, 12)
            )
            .is_none()
        );
    }

    #[test]
    fn escalation_window_is_from_the_deadline_until_a_day_after_the_review() {
        let c = config("", "[reminders]\nescalate_to = \"wbr@example.com\"");
        let at = |d, h| escalation_window(&c, Utc.with_ymd_and_hms(2020, 12, d, h, 0, 0).unwrap());
        assert!(at(1, 9).is_none());
        assert_eq!(at(1, 10).unwrap().date(), "2020-12-02");
        assert_eq!(
            at(2, 11).unwrap().date(),
            "2020-12-02",
            "just after the review"
        );
        assert!(at(3, 10).is_none(), "a day after the review");
        // A deadline equal to the review time (due 0 h before) still escalates.
        let c0 = config("explanations_due_hours = 0", "[reminders]");
        let at0 =
            |d, h| escalation_window(&c0, Utc.with_ymd_and_hms(2020, 12, d, h, 0, 0).unwrap());
        assert!(at0(2, 9).is_none());
        assert_eq!(at0(2, 10).unwrap().date(), "2020-12-02");
        assert_eq!(at0(2, 11).unwrap().date(), "2020-12-02");
    }

    #[test]
    fn reminders_config_errors_name_the_key_and_the_rule_address_wins() {
        let bad = r#"
[[source]]
name = "shop"
path = "x.csv"
[owners]
[[owners.rule]]
match = "orders"
email = "sam@example.com"
escalate_to = "not an address"
[reminders]
hours_before_deadline = -3
escalate_to = "also bad"
"#;
        let err = crate::config::compile_str(bad, std::path::Path::new("t.toml"), &|_| None)
            .unwrap_err()
            .to_string();
        for key in [
            "reminders.hours_before_deadline",
            "reminders.escalate_to",
            "owners.rule[0].escalate_to",
        ] {
            assert!(err.contains(key), "{key} missing from: {err}");
        }
        let c = config(
            "",
            "[[owners.rule]]\nmatch = \"orders\"\nemail = \"sam@example.com\"\nescalate_to = \"boss@example.com\"\n[reminders]\nescalate_to = \"wbr@example.com\"",
        );
        assert_eq!(
            c.reminders.before_deadline,
            Some(Duration::hours(24)),
            "default"
        );
        let mut i = crate::render::tests::incident(
            1,
            crate::render::tests::finding("orders", &[], crate::model::Check::Seasonal, 5.0),
        );
        assert_eq!(
            escalation_address(&c, &i)
                .map(|m| m.email.to_string())
                .as_deref(),
            Some("boss@example.com")
        );
        i.key.metric = "revenue".into();
        assert_eq!(
            escalation_address(&c, &i)
                .map(|m| m.email.to_string())
                .as_deref(),
            Some("wbr@example.com")
        );
    }
}
