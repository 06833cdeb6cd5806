//! Signed link tokens: the credential in every link callout mails.
//!
//! A token is `base64url(payload) "." base64url(HMAC-SHA256(key, "callout-link-v1." payload))`,
//! where the payload is a small JSON object binding the scope (incident ids,
//! "all open items", or one week's pre-read), the owner and the expiry. Pure functions: the key and
//! "now" are arguments; the MAC is checked in constant time before anything in
//! the payload is trusted, and the expiry only after the MAC.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::NaiveDate;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// Domain separation: a MAC over anything else callout might ever sign differs.
const CONTEXT: &[u8] = b"callout-link-v1.";

/// Payload format version; a token of another version is invalid.
const VERSION: u8 = 1;

/// The version of chart tokens: a binary from before them reads version 1
/// only, so it refuses a chart token instead of taking it for a page link.
const CHART_VERSION: u8 = 2;

/// What a token lets its holder see and answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// These incidents (a digest item's link names one).
    Incidents(Vec<i64>),
    /// Every open incident of the owner ("all my open items").
    OpenItems,
    /// The WBR pre-read of one reporting week, for one review.
    Report {
        /// The week's first day.
        week_start: NaiveDate,
        /// The review it was made for, seconds since 1970 (UTC): the page
        /// states that review and its deadline whenever it is opened.
        review_at: i64,
    },
    /// The chart image of one incident, and nothing else: a chat message
    /// shows it, so the chat's servers fetch it (never a page's credential).
    Chart(i64),
}

/// What a verified token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The incidents it covers.
    pub scope: Scope,
    /// The owner it was issued to (their mailbox text, as stored with incidents).
    pub owner: String,
    /// Expiry, seconds since 1970 (UTC).
    pub expires_at: i64,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Malformed, signed with another key, or altered: never trust anything in it.
    #[error("the link is not valid (altered, truncated, or signed with another key)")]
    Invalid,
    /// Correctly signed but past its expiry; the claims say what it was for.
    #[error("the link expired")]
    Expired(Claims),
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Payload {
    v: u8,
    /// Incident ids; absent for "all open items" and for a report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    i: Option<Vec<i64>>,
    /// A report: the week's first day (`YYYY-MM-DD`) and the review (seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    r: Option<(NaiveDate, i64)>,
    /// A chart image: the incident id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    c: Option<i64>,
    o: String,
    e: i64,
}

/// Shortest signing key accepted: 16 bytes (128 bits).
pub const MIN_KEY_LEN: usize = 16;

/// The link-signing key, keyed once. Its `Debug` never shows the secret.
#[derive(Clone)]
pub struct Key(Hmac<Sha256>);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(…)")
    }
}

/// A key shorter than [`MIN_KEY_LEN`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the link-signing key has {0} bytes; at least {MIN_KEY_LEN} are needed (32 random bytes, e.g. `openssl rand -hex 32`)"
)]
pub struct KeyTooShort(pub usize);

impl Key {
    /// A key from secret bytes (at least [`MIN_KEY_LEN`]).
    pub fn new(bytes: &[u8]) -> Result<Key, KeyTooShort> {
        if bytes.len() < MIN_KEY_LEN {
            return Err(KeyTooShort(bytes.len()));
        }
        // HMAC accepts keys of any length, so this only fails on the check above.
        <Hmac<Sha256> as KeyInit>::new_from_slice(bytes)
            .map(Key)
            .map_err(|_| KeyTooShort(bytes.len()))
    }
}

fn mac(key: &Key, payload_b64: &str) -> Hmac<Sha256> {
    let mut m = key.0.clone();
    m.update(CONTEXT);
    m.update(payload_b64.as_bytes());
    m
}

/// Sign `claims` with `key`: the token to put in a URL (URL-safe, no padding).
pub fn sign(key: &Key, claims: &Claims) -> String {
    let payload = Payload {
        v: match claims.scope {
            Scope::Chart(_) => CHART_VERSION,
            _ => VERSION,
        },
        i: match &claims.scope {
            Scope::Incidents(ids) => Some(ids.clone()),
            Scope::OpenItems | Scope::Report { .. } | Scope::Chart(_) => None,
        },
        r: match claims.scope {
            Scope::Report {
                week_start,
                review_at,
            } => Some((week_start, review_at)),
            _ => None,
        },
        c: match claims.scope {
            Scope::Chart(id) => Some(id),
            _ => None,
        },
        o: claims.owner.clone(),
        e: claims.expires_at,
    };
    // Serialising a struct of integers and a string cannot fail.
    let json = serde_json::to_vec(&payload).unwrap_or_default();
    let p = URL_SAFE_NO_PAD.encode(json);
    let tag = mac(key, &p).finalize().into_bytes();
    format!("{p}.{}", URL_SAFE_NO_PAD.encode(tag))
}

/// Check a token's signature (constant time), then its expiry against
/// `now_secs` (seconds since 1970, UTC).
pub fn verify(key: &Key, token: &str, now_secs: i64) -> Result<Claims, TokenError> {
    let (p, t) = token.split_once('.').ok_or(TokenError::Invalid)?;
    let tag = URL_SAFE_NO_PAD.decode(t).map_err(|_| TokenError::Invalid)?;
    mac(key, p)
        .verify_slice(&tag)
        .map_err(|_| TokenError::Invalid)?;
    let json = URL_SAFE_NO_PAD.decode(p).map_err(|_| TokenError::Invalid)?;
    let payload: Payload = serde_json::from_slice(&json).map_err(|_| TokenError::Invalid)?;
    if payload.v != VERSION && payload.v != CHART_VERSION {
        return Err(TokenError::Invalid);
    }
    // a chart token is version 2 and nothing else is
    if (payload.v == CHART_VERSION) != payload.c.is_some() {
        return Err(TokenError::Invalid);
    }
    let claims = Claims {
        scope: match (payload.i, payload.r, payload.c) {
            (Some(ids), None, None) if !ids.is_empty() => Scope::Incidents(ids),
            (None, Some((week_start, review_at)), None) => Scope::Report {
                week_start,
                review_at,
            },
            (None, None, Some(id)) => Scope::Chart(id),
            (None, None, None) => Scope::OpenItems,
            _ => return Err(TokenError::Invalid),
        },
        owner: payload.o,
        expires_at: payload.e,
    };
    if now_secs >= claims.expires_at {
        return Err(TokenError::Expired(claims));
    }
    Ok(claims)
}

/// Hex SHA-256 of a token: stored with an explanation to say which link it
/// came from, without storing the credential itself.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(bytes: &[u8]) -> Key {
        Key::new(bytes).unwrap()
    }

    fn k() -> Key {
        key(b"0123456789abcdef0123456789abcdef")
    }

    fn claims(scope: Scope) -> Claims {
        Claims {
            scope,
            owner: "Ana Ortiz <ana@example.com>".into(),
            expires_at: 2_000,
        }
    }

    /// Verify `token` at time 1000 and compare with `want`.
    fn check(token: &str, want: Result<Claims, TokenError>) {
        assert_eq!(verify(&k(), token, 1_000), want, "token {token}");
    }

    #[test]
    fn round_trip_for_both_scopes() {
        for scope in [
            Scope::Incidents(vec![7]),
            Scope::Incidents(vec![1, 2, 3]),
            Scope::OpenItems,
            Scope::Report {
                week_start: NaiveDate::from_ymd_opt(2025, 3, 3).unwrap(),
                review_at: 1_741_773_600,
            },
        ] {
            let c = claims(scope);
            let t = sign(&k(), &c);
            assert!(
                t.chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch)),
                "URL-safe: {t}"
            );
            check(&t, Ok(c));
        }
    }

    #[test]
    fn tampered_tokens_are_invalid() {
        let t = sign(&k(), &claims(Scope::Incidents(vec![7])));
        let (p, tag) = t.split_once('.').unwrap();
        // another incident id in a payload re-encoded by an attacker, old tag kept
        let forged = sign(
            &key(b"attacker key 16 bytes"),
            &claims(Scope::Incidents(vec![8])),
        );
        let (fp, ftag) = forged.split_once('.').unwrap();
        check(&format!("{fp}.{tag}"), Err(TokenError::Invalid));
        check(&format!("{p}.{ftag}"), Err(TokenError::Invalid));
        check(&forged, Err(TokenError::Invalid));
        // one character of the payload or the tag changed
        for i in [0, p.len() / 2, t.len() - 1] {
            let mut b = t.clone().into_bytes();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            check(&String::from_utf8(b).unwrap(), Err(TokenError::Invalid));
        }
        check(p, Err(TokenError::Invalid));
        check("", Err(TokenError::Invalid));
        check(&format!("{p}."), Err(TokenError::Invalid));
        check(&format!("{t}x"), Err(TokenError::Invalid));
    }

    #[test]
    fn expired_tokens_say_so_after_the_signature_is_checked() {
        let c = claims(Scope::OpenItems);
        let t = sign(&k(), &c);
        assert_eq!(verify(&k(), &t, 1_999), Ok(c.clone()));
        assert_eq!(verify(&k(), &t, 2_000), Err(TokenError::Expired(c.clone())));
        assert_eq!(verify(&k(), &t, 9_999), Err(TokenError::Expired(c)));
        // a wrong key never reveals expiry
        assert_eq!(
            verify(&key(b"another key, 16+ bytes"), &t, 9_999),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn short_keys_are_refused() {
        assert_eq!(Key::new(b"short").unwrap_err(), KeyTooShort(5));
        assert!(Key::new(&[0u8; 16]).is_ok());
        assert_eq!(format!("{:?}", k()), "Key(…)");
    }

    #[test]
    fn token_hash_is_stable_and_not_the_token() {
        let t = sign(&k(), &claims(Scope::OpenItems));
        let h = token_hash(&t);
        assert_eq!(h.len(), 64);
        assert_eq!(h, token_hash(&t));
        assert_ne!(h, token_hash(&format!("{t}x")));
        assert!(!h.contains(&t[..10]));
    }
}
