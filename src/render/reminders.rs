//! Reminder and escalation emails: subject, plain text and HTML.
//!
//! Pure like the digest: who is reminded, about what and for which deadline
//! is decided by the alert stage and passed in; this only phrases it.
//! The HTML part is a maud template, so everything a person or a config
//! wrote (names, metrics, dimensions, notes) is escaped by construction.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use lettre::message::Mailbox;
use maud::html;

use super::layout::{explain_button, page};
use super::words::{count_outliers, greeting_name, period_label, series_label, why};
use super::{Digest, Links};
use crate::config::ReviewConfig;
use crate::fmt::short_time;
use crate::model::{Incident, sort_by_severity};

/// When the explanations are due and when the review is.
#[derive(Debug, Clone, Copy)]
pub struct Due {
    /// The deadline for explanations.
    pub deadline: DateTime<Tz>,
    /// The review they are for.
    pub review_at: DateTime<Tz>,
}

impl Due {
    /// The next review after `now` and its deadline.
    pub fn at(review: &ReviewConfig, now: DateTime<Utc>) -> Due {
        Due {
            deadline: crate::review::deadline(review, now),
            review_at: crate::review::next_review(review, now),
        }
    }

    /// Whether the deadline is still ahead of `now`.
    pub fn ahead_of(&self, now: DateTime<Utc>) -> bool {
        self.deadline.with_timezone(&Utc) > now
    }
}

/// The footer's look: small and grey, under a rule.
const FOOTER_STYLE: &str = "color: #666; font-size: small";

/// One item line: `revenue (region=eu) — 2020-11-29: dropped 42% …`.
fn item_line(i: &Incident) -> String {
    format!(
        "{} — {}: {}",
        series_label(i),
        period_label(i),
        why(&i.worst)
    )
}

/// `[callout] Reminder: 2 outliers to explain by Tue 1 Dec 10:00 (WBR Wed 2 Dec 10:00)`.
fn reminder_subject(review: &ReviewConfig, due: Due, n: usize) -> String {
    format!(
        "[callout] Reminder: {} to explain by {} ({} {})",
        count_outliers(n),
        short_time(&due.deadline),
        review.name,
        short_time(&due.review_at)
    )
}

/// The reminder to one owner, listing only their incidents that are due at
/// `due.deadline` and still have no explanation. `escalated_to`: who hears
/// about what is still open after the deadline (said so; empty: nobody).
/// With `links` (`[web]` configured) each item has its "Explain this" link.
pub fn reminder(
    owner: &Mailbox,
    incidents: &[Incident],
    review: &ReviewConfig,
    due: Due,
    escalated_to: &[Mailbox],
    links: Option<&Links>,
) -> Digest {
    let mut items = incidents.to_vec();
    sort_by_severity(&mut items);
    let n = items.len();
    let ids: Vec<String> = items.iter().map(|i| format!("#{}", i.id)).collect();
    let r = Reminder {
        name: greeting_name(owner),
        intro: reminder_intro(review, due, n),
        ask: reminder_ask(n, links.is_some(), escalated_to),
        footer: format!(
            "Reminder sent once by callout for the {}. Incidents {}.",
            review.name,
            ids.join(", ")
        ),
        items,
        links,
    };
    let subject = reminder_subject(review, due, n);
    Digest {
        text: r.text(),
        html: r.html(&subject),
        subject,
        images: Vec::new(),
    }
}

/// `Explanations for the WBR on … are due …, and these 2 outliers you own
/// have no explanation yet.`
fn reminder_intro(review: &ReviewConfig, due: Due, n: usize) -> String {
    format!(
        "Explanations for the {} on {} are due {} ({}), and {} you own {} no explanation yet.",
        review.name,
        short_time(&due.review_at),
        short_time(&due.deadline),
        review.timezone.name(),
        if n == 1 {
            "this outlier".to_string()
        } else {
            format!("these {n} outliers")
        },
        if n == 1 { "has" } else { "have" },
    )
}

/// How to explain (the links, or as the digest asked), and who hears about
/// what is still open after the deadline.
fn reminder_ask(n: usize, links: bool, escalated_to: &[Mailbox]) -> String {
    let each = if n == 1 { "it" } else { "each one" };
    let mut ask = if links {
        format!(
            "Please explain {each} with its \u{201c}Explain this\u{201d} link before the deadline; items you have explained no longer appear here."
        )
    } else {
        format!(
            "Please explain {each} as your digest asked, before the deadline; items you have explained no longer appear here."
        )
    };
    if !escalated_to.is_empty() {
        let names: Vec<String> = escalated_to.iter().map(greeting_name).collect();
        let _ = write!(
            ask,
            " After the deadline, the ones still open are reported to {}.",
            names.join(" and ")
        );
    }
    ask
}

/// What a reminder says, before it is laid out as text or HTML.
struct Reminder<'a> {
    /// The unexplained incidents, most severe first.
    items: Vec<Incident>,
    /// Whom the greeting names.
    name: String,
    /// The deadline and how many are open.
    intro: String,
    /// How to explain them, and who hears about the rest.
    ask: String,
    /// The last line: the review and the incidents' numbers.
    footer: String,
    /// The signed page links, when `[web]` is configured.
    links: Option<&'a Links>,
}

impl Reminder<'_> {
    /// The explanation page of incident `id`, when there are links.
    fn link_of(&self, id: i64) -> Option<&String> {
        self.links.and_then(|l| l.incident(id))
    }

    /// The text/plain part.
    fn text(&self) -> String {
        let mut text = format!("Hello {},\n\n{}\n\n", self.name, self.intro);
        for (k, i) in self.items.iter().enumerate() {
            let _ = writeln!(
                text,
                "{}. {}\n   Check: {} (source {})",
                k + 1,
                item_line(i),
                i.worst.hit.check,
                i.source
            );
            if let Some(url) = self.link_of(i.id) {
                let _ = writeln!(text, "   Explain this:\n   {url}");
            }
        }
        let _ = write!(text, "\n{}\n\n-- \n{}\n", self.ask, self.footer);
        text
    }

    /// The text/html part, titled `subject`.
    fn html(&self, subject: &str) -> String {
        page(
            subject,
            html! {
                p { "Hello " (self.name) "," }
                p { strong { (self.intro) } }
                ol {
                    @for i in &self.items {
                        li {
                            strong { (series_label(i)) } " — " (period_label(i)) ": " (why(&i.worst))
                            br;
                            small { "Check: " (i.worst.hit.check.as_str()) " (source " (i.source) ")" }
                            @if let Some(url) = self.link_of(i.id) { (explain_button(url)) }
                        }
                    }
                }
                p { (self.ask) }
                hr;
                p style=(FOOTER_STYLE) { (self.footer) }
            },
        )
    }
}

/// The escalation to one address after the deadline: per owner, what is
/// still unexplained. `owners` is in the order to show (the caller sorts).
pub fn escalation(
    to: &Mailbox,
    owners: &[(Mailbox, Vec<Incident>)],
    review: &ReviewConfig,
    due: Due,
) -> Digest {
    let total: usize = owners.iter().map(|(_, v)| v.len()).sum();
    let people = if owners.len() == 1 {
        "1 owner".to_string()
    } else {
        format!("{} owners", owners.len())
    };
    let subject = format!(
        "[callout] {} {}: {} unexplained by {people} (due {})",
        review.name,
        short_time(&due.review_at),
        count_outliers(total),
        short_time(&due.deadline),
    );
    let e = Escalation {
        name: greeting_name(to),
        intro: format!(
            "Explanations for the {} on {} were due {} ({}). {} from {people} {} still unexplained:",
            review.name,
            short_time(&due.review_at),
            short_time(&due.deadline),
            review.timezone.name(),
            if total == 1 {
                "This outlier".to_string()
            } else {
                format!("These {total} outliers")
            },
            if total == 1 { "is" } else { "are" },
        ),
        footer: format!(
            "Escalation sent once per review by callout for the {}.",
            review.name
        ),
        owners: owners
            .iter()
            .map(|(o, v)| {
                let mut v = v.clone();
                sort_by_severity(&mut v);
                (o, v)
            })
            .collect(),
    };
    Digest {
        text: e.text(),
        html: e.html(&subject),
        subject,
        images: Vec::new(),
    }
}

/// What an escalation says, before it is laid out as text or HTML.
struct Escalation<'a> {
    /// Whom the greeting names.
    name: String,
    /// The deadline that passed and how many are open.
    intro: String,
    /// The last line.
    footer: String,
    /// Each owner (in the caller's order) and their open items, most severe first.
    owners: Vec<(&'a Mailbox, Vec<Incident>)>,
}

impl Escalation<'_> {
    /// The text/plain part.
    fn text(&self) -> String {
        let mut text = format!("Hello {},\n\n{}\n", self.name, self.intro);
        for (owner, items) in &self.owners {
            let _ = write!(text, "\n{owner} ({}):\n", count_outliers(items.len()));
            for i in items {
                let _ = writeln!(text, "- {} (#{})", item_line(i), i.id);
            }
        }
        let _ = write!(text, "\n-- \n{}\n", self.footer);
        text
    }

    /// The text/html part, titled `subject`.
    fn html(&self, subject: &str) -> String {
        page(
            subject,
            html! {
                p { "Hello " (self.name) "," }
                p { strong { (self.intro) } }
                @for (owner, items) in &self.owners {
                    h3 style="margin-bottom: 0.2em" {
                        (owner.to_string()) " "
                        small style="font-weight: normal" { "(" (count_outliers(items.len())) ")" }
                    }
                    ul {
                        @for i in items {
                            li {
                                strong { (series_label(i)) } " — " (period_label(i)) ": " (why(&i.worst))
                                " " small { "(#" (i.id) ")" }
                            }
                        }
                    }
                }
                hr;
                p style=(FOOTER_STYLE) { (self.footer) }
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Check;
    use crate::render::tests::{finding, incident, review};
    use chrono::TimeZone;

    fn due() -> Due {
        let tz = chrono_tz::Europe::London;
        Due {
            deadline: tz.with_ymd_and_hms(2020, 12, 1, 10, 0, 0).unwrap(),
            review_at: tz.with_ymd_and_hms(2020, 12, 2, 10, 0, 0).unwrap(),
        }
    }

    fn items() -> Vec<Incident> {
        vec![
            incident(
                3,
                finding("orders", &[("region", "eu")], Check::Seasonal, -4.0),
            ),
            incident(
                7,
                finding(
                    "rev<script>x</script>",
                    &[("region", "a&b")],
                    Check::Stale,
                    0.0,
                ),
            ),
        ]
    }

    #[test]
    fn with_links_a_reminder_links_each_item_instead_of_pointing_at_the_digest() {
        let ana: Mailbox = "Ana <ana@example.com>".parse().unwrap();
        let links = Links {
            incidents: [
                (3, "https://c.example/e/t3".to_string()),
                (7, "https://c.example/e/t7".to_string()),
            ]
            .into_iter()
            .collect(),
            open_items: "https://c.example/e/all".into(),
        };
        let d = reminder(&ana, &items(), &review(), due(), &[], Some(&links));
        assert!(!d.text.contains("as your digest asked"), "{}", d.text);
        assert!(
            d.text.contains("\n   https://c.example/e/t3\n"),
            "{}",
            d.text
        );
        assert!(
            d.text.contains("\n   https://c.example/e/t7\n"),
            "{}",
            d.text
        );
        assert_eq!(d.html.matches(">Explain this</a>").count(), 2, "{}", d.html);
        assert!(d.html.contains("href=\"https://c.example/e/t7\""));
        assert!(!d.html.contains("<script>"), "{}", d.html);
    }

    #[test]
    fn a_reminder_lists_the_items_most_severe_first_and_escapes_names() {
        let ana: Mailbox = "Ana \"<b>\" <ana@example.com>".parse().unwrap();
        let d = reminder(&ana, &items(), &review(), due(), &[], None);
        assert!(
            !d.text.contains("reported to"),
            "no escalation configured: {}",
            d.text
        );
        assert_eq!(
            d.subject,
            "[callout] Reminder: 2 outliers to explain by Tue 1 Dec 10:00 (WBR Wed 2 Dec 10:00)"
        );
        let first = d
            .text
            .find("1. rev<script>x</script> (region=a&b)")
            .unwrap();
        let second = d.text.find("2. orders (region=eu)").unwrap();
        assert!(first < second, "data health before statistics: {}", d.text);
        assert!(
            d.text.contains("due Tue 1 Dec 10:00 (Europe/London)"),
            "{}",
            d.text
        );
        assert!(d.text.contains("Incidents #7, #3."), "{}", d.text);
        assert!(
            !d.html.contains("<script>") && !d.html.contains("<b>"),
            "{}",
            d.html
        );
        assert!(
            d.html
                .contains("rev&lt;script&gt;x&lt;/script&gt; (region=a&amp;b)")
        );
        assert!(d.html.contains("Hello Ana &lt;b&gt;,"), "{}", d.html);
    }

    #[test]
    fn an_escalation_names_each_owner_and_what_they_have_not_explained() {
        let to: Mailbox = "WBR organisers <wbr@example.com>".parse().unwrap();
        let ana: Mailbox = "Ana <ana@example.com>".parse().unwrap();
        let sam: Mailbox = "Sam <sam@example.com>".parse().unwrap();
        let all = items();
        let owners = vec![(ana, vec![all[0].clone()]), (sam, vec![all[1].clone()])];
        let d = escalation(&to, &owners, &review(), due());
        assert_eq!(
            d.subject,
            "[callout] WBR Wed 2 Dec 10:00: 2 outliers unexplained by 2 owners (due Tue 1 Dec 10:00)"
        );
        let a = d
            .text
            .find("Ana <ana@example.com> (1 outlier):\n- orders (region=eu)")
            .unwrap();
        let s = d
            .text
            .find("Sam <sam@example.com> (1 outlier):\n- rev<script>")
            .unwrap();
        assert!(a < s, "{}", d.text);
        assert!(!d.html.contains("<script>"), "{}", d.html);
        assert!(d.html.contains("Sam &lt;sam@example.com&gt;"), "{}", d.html);
        let r = reminder(
            &"Ana Ortiz <ana@example.com>".parse().unwrap(),
            &all,
            &review(),
            due(),
            std::slice::from_ref(&to),
            None,
        );
        assert!(
            r.text
                .contains("still open are reported to WBR organisers."),
            "{}",
            r.text
        );
    }
}
