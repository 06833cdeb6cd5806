//! How the store's typed values are written to and read from SQL: `ToSql` and
//! `FromSql` for the enums it keeps as text (checks, sides, lanes,
//! granularity, causes, persistence, run kinds and statuses) and for owners'
//! mailboxes.
//!
//! The text written is exactly what earlier versions wrote, so existing stores
//! read back unchanged. A stored text that names no value is a conversion error
//! naming the column's kind and the value, never a panic.
//!
//! Must not: hold SQL statements or decide anything; the enums themselves live
//! in `model` (shared by every layer) or beside their table (`runs`), and
//! `model` does not depend on rusqlite: the impls are here.

use lettre::message::Mailbox;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

use super::runs::{RunKind, RunStatus};
use crate::model::{Cause, Check, Granularity, Lane, Persistence, Side};

/// A stored text that names no value of its kind.
#[derive(Debug, thiserror::Error)]
#[error("unknown {what} `{value}` in the store")]
struct Unknown {
    /// What the column holds (`check`, `lane`, …).
    what: &'static str,
    /// The stored text.
    value: String,
}

/// Read a text column as `what`, converting with `parse`.
fn parse_text<T>(
    value: ValueRef<'_>,
    what: &'static str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> FromSqlResult<T> {
    let s = value.as_str()?;
    parse(s).ok_or_else(|| {
        FromSqlError::other(Unknown {
            what,
            value: s.to_string(),
        })
    })
}

/// `ToSql` as the type's `as_str`, `FromSql` as its inverse `parse`.
macro_rules! text_enum {
    ($t:ty, $what:literal, $parse:expr) => {
        impl ToSql for $t {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $t {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                parse_text(value, $what, $parse)
            }
        }
    };
}

text_enum!(Check, "check", Check::parse);
text_enum!(Lane, "lane", Lane::parse);
text_enum!(Cause, "cause", Cause::parse);
text_enum!(Persistence, "persistence", Persistence::parse);
text_enum!(RunKind, "run kind", RunKind::parse);
text_enum!(RunStatus, "run status", RunStatus::parse);
// the column is still called `direction`: the side a finding fell on
text_enum!(Side, "direction", Side::parse);

/// Stored as its `Display` text (`day`, `5min`, …).
impl ToSql for Granularity {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.to_string()))
    }
}

impl FromSql for Granularity {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        parse_text(value, "granularity", Granularity::parse)
    }
}

/// An owner as stored: the mailbox's text (`Name <addr>`), parsed once on
/// the way out so callers get a [`Mailbox`]. (A newtype: rusqlite's traits
/// cannot be implemented for lettre's type here.)
#[derive(Debug)]
pub(super) struct Owner(pub(super) Mailbox);

impl ToSql for Owner {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.0.to_string()))
    }
}

impl FromSql for Owner {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        parse_text(value, "owner", |s| s.parse().ok()).map(Owner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    /// What `v` is stored as, and what that text reads back as.
    fn round_trip<T: ToSql + FromSql>(v: &T) -> (String, T) {
        let c = Connection::open_in_memory().unwrap();
        let text: String = c.query_row("SELECT ?1", [v], |r| r.get(0)).unwrap();
        let back: T = c.query_row("SELECT ?1", [&text], |r| r.get(0)).unwrap();
        (text, back)
    }

    fn read<T: FromSql>(text: &str) -> rusqlite::Result<T> {
        let c = Connection::open_in_memory().unwrap();
        c.query_row("SELECT ?1", [text], |r| r.get(0))
    }

    #[test]
    fn enums_are_stored_as_the_text_earlier_versions_wrote() {
        for c in Check::ALL {
            assert_eq!(round_trip(&c), (c.as_str().to_string(), c));
        }
        for l in Lane::ALL {
            assert_eq!(round_trip(&l), (l.as_str().to_string(), l));
        }
        for c in Cause::ALL {
            assert_eq!(round_trip(&c), (c.as_str().to_string(), c));
        }
        for (p, s) in [
            (Persistence::NewNormal, "new_normal"),
            (Persistence::OneOff, "one_off"),
        ] {
            assert_eq!(round_trip(&p), (s.to_string(), p));
        }
        for (d, s) in [(Side::Up, "up"), (Side::Down, "down")] {
            assert_eq!(round_trip(&d), (s.to_string(), d));
        }
        for (g, s) in [
            (Granularity::Minutes(1), "minute"),
            (Granularity::Minutes(5), "5min"),
            (Granularity::Hour, "hour"),
            (Granularity::Day, "day"),
            (Granularity::Week, "week"),
        ] {
            assert_eq!(round_trip(&g), (s.to_string(), g));
        }
        for (k, s) in [
            (RunKind::Run, "run"),
            (RunKind::Once, "once"),
            (RunKind::Backfill, "backfill"),
        ] {
            assert_eq!(round_trip(&k), (s.to_string(), k));
        }
        for (st, s) in [
            (RunStatus::Running, "running"),
            (RunStatus::Ok, "ok"),
            (RunStatus::Partial, "partial"),
            (RunStatus::Interrupted, "interrupted"),
        ] {
            assert_eq!(round_trip(&st), (s.to_string(), st));
        }
    }

    #[test]
    fn an_unknown_stored_value_is_an_error_naming_it() {
        let e = read::<Check>("sesonal").unwrap_err();
        assert!(e.to_string().contains("unknown check `sesonal`"), "{e}");
        let e = read::<Lane>("other").unwrap_err();
        assert!(e.to_string().contains("unknown lane `other`"), "{e}");
        let e = read::<Side>("sideways").unwrap_err();
        assert!(
            e.to_string().contains("unknown direction `sideways`"),
            "{e}"
        );
        let e = read::<Granularity>("fortnight").unwrap_err();
        assert!(e.to_string().contains("`fortnight`"), "{e}");
        let e = read::<RunKind>("sometimes").unwrap_err();
        assert!(
            e.to_string().contains("unknown run kind `sometimes`"),
            "{e}"
        );
        let e = read::<Owner>("not a mailbox").unwrap_err();
        assert!(e.to_string().contains("`not a mailbox`"), "{e}");
        // a number where text belongs is a type error, not a panic
        let c = Connection::open_in_memory().unwrap();
        assert!(
            c.query_row("SELECT 7", [], |r| r.get::<_, Check>(0))
                .is_err()
        );
    }

    #[test]
    fn an_owner_reads_back_as_the_text_it_was_stored_as() {
        // Incidents keep the owner's text; the web compares it with a signed
        // link's owner text, so parsing must not change what it prints as.
        for text in [
            "ana@example.com",
            "Ana <ana@example.com>",
            "\"Doe, Jane\" <jane@example.com>",
            "Jörg Müller <joerg@example.de>",
            "\"Ana \\\"A\\\" B\" <ana.b+ops@example.com>",
            "Data team <data@sub.example.com>",
        ] {
            let m: Mailbox = text.parse().unwrap();
            let stored = m.to_string();
            let (again, back) = round_trip(&Owner(m.clone()));
            assert_eq!(again, stored);
            assert_eq!(back.0, m, "{text}");
            assert_eq!(back.0.to_string(), stored, "{text}");
        }
    }
}
