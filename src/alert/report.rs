//! The WBR pre-read by email (`[report] email_to`).
//!
//! Once `report.email_hours_before` separates now from the next review, the
//! pre-read of the default week (the last complete week before that review)
//! is built and queued in the outbox, one message per address, under the
//! idempotency key `report:<review date>:<address>`: a later cycle, a re-run
//! or a restart finds the key and neither rebuilds nor queues it again, and
//! delivery retries it like any digest. With `[web]` it links to the page
//! version (`/report/{token}`).
//!
//! Must not: read the clock (callers pass `now`) or phrase anything (that is
//! `report::email`).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::{AlertError, Signer, mail};
use crate::config::Config;
use crate::report::{self, WeekChoice};
use crate::review::next_review;
use crate::store::Store;

/// What [`queue_report`] did.
#[derive(Debug, Default)]
pub struct ReportMailReport {
    /// Messages newly written to the outbox (one per address).
    pub queued: usize,
    /// Addresses whose message an earlier run queued already.
    pub already_queued: usize,
    /// Addresses whose message could not be built, with the error.
    pub failed: Vec<(String, String)>,
}

/// The review whose email window (`email_hours_before` up to the review)
/// contains `now`, if any.
pub fn window(config: &Config, now: DateTime<Utc>) -> Option<DateTime<Tz>> {
    let review = next_review(&config.review, now);
    let opens = review.with_timezone(&Utc) - config.report.email_before;
    (opens <= now).then_some(review)
}

/// `report:<review date>:<address>`.
fn key(review: &DateTime<Tz>, to: &lettre::message::Mailbox) -> String {
    format!(
        "report:{}:{}",
        review.format("%Y-%m-%d"),
        to.email.to_string().to_ascii_lowercase()
    )
}

/// Queue the pre-read for every `report.email_to` address when `now` is in
/// the window before the next review and it is not queued yet (see the module
/// doc). Needs `[smtp]` (the sender); without addresses or outside the window
/// it touches neither the store nor the sources.
pub fn queue_report(
    store: &mut Store,
    config: &Config,
    now: DateTime<Utc>,
    signer: Option<Signer<'_>>,
) -> Result<ReportMailReport, AlertError> {
    let mut out = ReportMailReport::default();
    let Some(review) = window(config, now) else {
        return Ok(out);
    };
    post_link(store, config, now, signer, &review, &mut out)?;
    if config.report.email_to.is_empty() {
        return Ok(out);
    }
    let Some(smtp) = &config.smtp else {
        return Ok(out);
    };
    let mut todo = Vec::new();
    for to in &config.report.email_to {
        let k = key(&review, to);
        if store.queued(&k)? {
            out.already_queued += 1;
        } else {
            todo.push((to, k));
        }
    }
    if todo.is_empty() {
        return Ok(out);
    }
    let review_utc = review.with_timezone(&Utc);
    // the week the review discusses, whatever the moment in the window
    let Some(week) = report::week(config, WeekChoice::Default, now) else {
        return Ok(out);
    };
    let t = std::time::Instant::now();
    let inputs = report::gather(config, week, now).map_err(|source| AlertError::Report {
        week: week.start,
        source,
    })?;
    let mut r = report::build(config, &inputs, week, now);
    report::set_review(&mut r, config, review_utc);
    tracing::info!(secs = t.elapsed().as_secs_f64(), week = %week.start, "pre-read built for email");
    let env = mail::Envelope {
        from: &smtp.from,
        reply_to: smtp.reply_to.as_ref(),
        list_id: smtp.list_id.as_deref(),
    };
    let store_id = store.store_id()?;
    for (to, k) in todo {
        let link = signer.map(|s| s.report_url(week.start, review_utc, &to.to_string()));
        let digest = report::email(&r, link.as_deref());
        let m = match mail::outbox_row(&env, &store_id, to, k, digest, Vec::new(), now) {
            Ok(m) => m,
            Err(failed) => {
                out.failed.push(failed);
                continue;
            }
        };
        let (id, new) = store.transaction(|s| s.enqueue(&m))?;
        if new {
            out.queued += 1;
            tracing::info!(to = %to, outbox = id, week = %week.start, "pre-read queued");
        } else {
            out.already_queued += 1;
        }
    }
    Ok(out)
}

/// Post the pre-read's link to `report.chat` (default: `owners.default_chat`)
/// once per review, under
/// `chat-report:<review date>:<name>` (needs `[web]`: without a link there is
/// nothing to post). Reads no source: the link opens the page, made when read.
fn post_link(
    store: &mut Store,
    config: &Config,
    now: DateTime<Utc>,
    signer: Option<Signer<'_>>,
    review: &DateTime<Tz>,
    out: &mut ReportMailReport,
) -> Result<(), AlertError> {
    let Some(signer) = signer else {
        return Ok(());
    };
    let Some(week) = report::week(config, WeekChoice::Default, now) else {
        return Ok(());
    };
    let review_utc = review.with_timezone(&Utc);
    let names = config
        .report
        .chat
        .as_ref()
        .unwrap_or(&config.owners.default_chat);
    for chat in names.iter().filter_map(|n| config.chat_named(n)) {
        let k = format!("chat-report:{}:{}", review.format("%Y-%m-%d"), chat.name);
        if store.queued(&k)? {
            out.already_queued += 1;
            continue;
        }
        let url = signer.report_url(week.start, review_utc, &format!("chat:{}", chat.name));
        let title = format!("the week of {}", week.start.format("%-d %b %Y"));
        let message = crate::render::chat::report_message(&title, &config.review, &url);
        let m = super::chat::row(chat, k, &message, Vec::new(), now);
        let (id, new) = store.transaction(|s| s.enqueue(&m))?;
        if new {
            out.queued += 1;
            tracing::info!(chat = %chat.name, outbox = id, week = %week.start, "pre-read link queued");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn config(extra: &str) -> Config {
        let toml = format!(
            "[review]\nweekday = \"wed\"\ntime = \"10:00\"\ntimezone = \"Europe/London\"\n[[source]]\nname = \"s\"\npath = \"x.csv\"\n{extra}"
        );
        crate::config::compile_str(&toml, std::path::Path::new("t.toml"), &|_| None).unwrap()
    }

    #[test]
    fn the_window_opens_hours_before_the_review_and_names_it() {
        // Review Wed 2 Dec 2020 10:00 London (= UTC in winter); default 18 h: Tue 16:00.
        let c = config("");
        let at = |d, h, m| window(&c, Utc.with_ymd_and_hms(2020, 12, d, h, m, 0).unwrap());
        assert!(at(1, 15, 59).is_none(), "a minute early");
        let review = at(1, 16, 0).unwrap();
        assert_eq!(
            review.format("%Y-%m-%d %H:%M").to_string(),
            "2020-12-02 10:00"
        );
        assert!(at(2, 9, 59).is_some());
        assert_eq!(
            at(2, 10, 0).map(|r| r.format("%Y-%m-%d").to_string()),
            None,
            "at the review the next one is a week away"
        );
        let c = config("[report]\nemail_hours_before = 48\n");
        let early = window(&c, Utc.with_ymd_and_hms(2020, 11, 30, 10, 0, 0).unwrap());
        assert!(early.is_some());
        let to: lettre::message::Mailbox = "WBR <WBR@Example.com>".parse().unwrap();
        assert_eq!(
            key(&early.unwrap(), &to),
            "report:2020-12-02:wbr@example.com"
        );
    }
}
