//! Signed links, below both `alert` (which mails them) and `web` (which
//! verifies them): [`key`] finds or creates the signing key, [`tokens`] signs
//! and verifies the HMAC claims (pure), and this file builds the URLs mails
//! carry: one per incident, one to "all my open items", one per week's pre-read.
//!
//! A link is `{public_url}/e/{token}` (explanation pages) or
//! `{public_url}/report/{token}` (the pre-read); see [`tokens`].
//! Must not: import `alert` or `web` (both sit above it), or touch the store.

pub mod key;
pub mod tokens;

use chrono::{DateTime, NaiveDate, Utc};

use crate::config::WebConfig;
use tokens::{Claims, Key, Scope};

/// When a link for items due at the review at `review_at` stops working:
/// `link_valid_days` after that review.
pub fn link_expiry(web: &WebConfig, review_at: DateTime<Utc>) -> DateTime<Utc> {
    review_at + chrono::Duration::days(web.link_valid_days)
}

fn token(key: &Key, scope: Scope, owner: &str, expires: DateTime<Utc>) -> String {
    tokens::sign(
        key,
        &Claims {
            scope,
            owner: owner.to_string(),
            expires_at: expires.timestamp(),
        },
    )
}

fn url(web: &WebConfig, key: &Key, scope: Scope, owner: &str, expires: DateTime<Utc>) -> String {
    format!("{}/e/{}", web.public_url, token(key, scope, owner, expires))
}

/// The explanation page of one incident, for its owner (the mailbox text stored
/// with the incident), valid until `expires`.
pub fn incident_url(
    web: &WebConfig,
    key: &Key,
    incident_id: i64,
    owner: &str,
    expires: DateTime<Utc>,
) -> String {
    url(
        web,
        key,
        Scope::Incidents(vec![incident_id]),
        owner,
        expires,
    )
}

/// The page listing every open incident of `owner`, valid until `expires`.
pub fn open_items_url(web: &WebConfig, key: &Key, owner: &str, expires: DateTime<Utc>) -> String {
    url(web, key, Scope::OpenItems, owner, expires)
}

/// The chart image of one incident (`…/chart/<token>.png`), valid until
/// `expires`: it opens the image only, never the page.
pub fn chart_url(
    web: &WebConfig,
    key: &Key,
    incident_id: i64,
    owner: &str,
    expires: DateTime<Utc>,
) -> String {
    let t = token(key, Scope::Chart(incident_id), owner, expires);
    format!("{}/chart/{t}.png", web.public_url)
}

/// The pre-read of the week starting `week_start`, made for the review at
/// `review_at`, for `to` (who it was sent to: a person or a list); valid
/// until [`link_expiry`] after that review.
pub fn report_url(
    web: &WebConfig,
    key: &Key,
    week_start: NaiveDate,
    review_at: DateTime<Utc>,
    to: &str,
) -> String {
    let scope = Scope::Report {
        week_start,
        review_at: review_at.timestamp(),
    };
    let t = token(key, scope, to, link_expiry(web, review_at));
    format!("{}/report/{t}", web.public_url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::KeySource;
    use chrono::TimeZone;

    #[test]
    fn links_carry_a_verifiable_token_under_the_public_url() {
        let web = WebConfig {
            listen: "127.0.0.1:8080".parse().unwrap(),
            public_url: "https://callout.example.com".into(),
            key: KeySource::Generated("k".into()),
            link_valid_days: 14,
        };
        let key = Key::new(&[7u8; 32]).unwrap();
        let review = Utc.with_ymd_and_hms(2026, 12, 2, 10, 0, 0).unwrap();
        let exp = link_expiry(&web, review);
        assert_eq!(exp, Utc.with_ymd_and_hms(2026, 12, 16, 10, 0, 0).unwrap());
        let u = incident_url(&web, &key, 42, "Ana <ana@example.com>", exp);
        let token = u.strip_prefix("https://callout.example.com/e/").unwrap();
        let c = tokens::verify(&key, token, review.timestamp()).unwrap();
        assert_eq!(c.scope, Scope::Incidents(vec![42]));
        assert_eq!(c.owner, "Ana <ana@example.com>");
        let u = open_items_url(&web, &key, "Ana <ana@example.com>", exp);
        let token = u.rsplit('/').next().unwrap();
        let c = tokens::verify(&key, token, review.timestamp()).unwrap();
        assert_eq!(c.scope, Scope::OpenItems);
        let chart = chart_url(&web, &key, 42, "ana", exp);
        let t = chart
            .strip_prefix("https://callout.example.com/chart/")
            .and_then(|t| t.strip_suffix(".png"))
            .unwrap();
        // a chart token opens the chart of its incident, and is no page link
        assert_eq!(
            tokens::verify(&key, t, review.timestamp()).unwrap().scope,
            Scope::Chart(42)
        );
        assert!(tokens::verify(&key, token, exp.timestamp()).is_err());
        let week = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        let u = report_url(&web, &key, week, review, "WBR <wbr@example.com>");
        let token = u
            .strip_prefix("https://callout.example.com/report/")
            .unwrap();
        let c = tokens::verify(&key, token, review.timestamp()).unwrap();
        assert_eq!(
            c.scope,
            Scope::Report {
                week_start: week,
                review_at: review.timestamp()
            }
        );
        assert_eq!(c.expires_at, exp.timestamp());
    }
}
