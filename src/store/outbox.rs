//! The `outbox` table: messages queued before sending, with their delivery
//! state (attempts, backoff, acceptance).

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{Store, StoreError};

/// Which sender delivers an outbox row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// SMTP: `recipient` is an address, the message RFC 822.
    Email,
    /// A `[[chat]]` webhook: `recipient` is its name, the message JSON.
    Chat,
}

impl Channel {
    /// The word stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Chat => "chat",
        }
    }

    fn parse(s: &str) -> Option<Channel> {
        match s {
            "email" => Some(Channel::Email),
            "chat" => Some(Channel::Chat),
            _ => None,
        }
    }
}

/// A message to queue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMail {
    /// Which sender delivers it.
    pub channel: Channel,
    /// Owner's mailbox text (`Name <addr>`).
    pub owner: String,
    /// Envelope recipient address.
    pub recipient: String,
    /// Subject, for listing the queue.
    pub subject: String,
    /// The full RFC 822 message.
    pub message: Vec<u8>,
    /// Incidents announced by this message.
    pub incident_ids: Vec<i64>,
    /// Unique per digest: the same digest is never queued twice.
    pub idempotency_key: String,
    /// When it was queued (ms, UTC); also its first attempt time.
    pub created_at: i64,
}

/// One row of `outbox`: the queued message and its delivery state.
#[derive(Debug, Clone, PartialEq)]
pub struct MailRow {
    /// Row id.
    pub id: i64,
    /// What was queued.
    pub mail: NewMail,
    /// Failed or successful send attempts so far.
    pub attempts: u32,
    /// Not tried again before this (ms, UTC).
    pub next_attempt_at: i64,
    /// Error of the last failed attempt.
    pub last_error: Option<String>,
    /// Accepted by the server at (ms, UTC).
    pub sent_at: Option<i64>,
    /// Set when the message was handed to the server (after DATA was
    /// accepted) and no answer was recorded: a crash in between, so the
    /// server may have delivered it.
    pub attempt_started_at: Option<i64>,
    /// Times the body went out and the server's answer did not come back in
    /// time: the server may have the message.
    pub in_doubt: u32,
    /// Taken for sending by this run (`claimed_by`) until (ms, real UTC).
    pub claim: Option<(String, i64)>,
    /// Given up (ms, UTC) and why, in the server's words: a permanent
    /// refusal, or in doubt twice. Never tried again until re-queued.
    pub undeliverable: Option<(i64, String)>,
}

/// The rows given up on and not re-queued.
const UNDELIVERABLE: &str = "sent_at IS NULL AND undeliverable_at IS NOT NULL";

/// What became of an attempt to take an outbox row for sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This run holds the row now.
    Taken,
    /// Another run holds it (its claim has not run out).
    HeldElsewhere,
    /// Sent, given up, or not due any more since it was listed.
    Gone,
}

impl Store {
    /// Queue a message unless one with the same idempotency key exists.
    /// Returns the row id and whether it was newly queued.
    pub fn enqueue(&self, m: &NewMail) -> Result<(i64, bool), StoreError> {
        let ids = serde_json::json!(m.incident_ids).to_string();
        let n = self
            .conn
            .execute(
                "INSERT INTO outbox (owner, recipient, subject, message, incident_ids,
                    idempotency_key, created_at, next_attempt_at, channel)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8)
                 ON CONFLICT (idempotency_key) DO NOTHING",
                params![
                    m.owner,
                    m.recipient,
                    m.subject,
                    m.message,
                    ids,
                    m.idempotency_key,
                    m.created_at,
                    m.channel.as_str()
                ],
            )
            .map_err(self.q("queue message"))?;
        let id: i64 = self
            .conn
            .query_row(
                "SELECT id FROM outbox WHERE idempotency_key = ?1",
                [&m.idempotency_key],
                |r| r.get(0),
            )
            .map_err(self.q("queue message"))?;
        Ok((id, n == 1))
    }

    /// Whether a message with this idempotency key was ever queued (sent or not).
    pub fn queued(&self, key: &str) -> Result<bool, StoreError> {
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM outbox WHERE idempotency_key = ?1)",
                [key],
                |r| r.get(0),
            )
            .map_err(self.q("read outbox"))
    }

    fn mail_where(
        &self,
        clause: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<MailRow>, StoreError> {
        let sql = format!(
            "SELECT id, owner, recipient, subject, message, incident_ids, idempotency_key,
                created_at, attempts, next_attempt_at, last_error, sent_at, attempt_started_at,
                in_doubt, claimed_by, claim_expires_at, undeliverable_at, undeliverable_reason,
                channel
             FROM outbox WHERE {clause} ORDER BY id"
        );
        let mut st = self
            .conn
            .prepare_cached(&sql)
            .map_err(self.q("read outbox"))?;
        let rows = st
            .query_map(params, |r| {
                Ok((
                    MailRow {
                        id: r.get(0)?,
                        mail: NewMail {
                            channel: Channel::Email,
                            owner: r.get(1)?,
                            recipient: r.get(2)?,
                            subject: r.get(3)?,
                            message: r.get(4)?,
                            incident_ids: Vec::new(),
                            idempotency_key: r.get(6)?,
                            created_at: r.get(7)?,
                        },
                        attempts: r.get(8)?,
                        next_attempt_at: r.get(9)?,
                        last_error: r.get(10)?,
                        sent_at: r.get(11)?,
                        attempt_started_at: r.get(12)?,
                        in_doubt: r.get(13)?,
                        claim: r
                            .get::<_, Option<String>>(14)?
                            .zip(r.get::<_, Option<i64>>(15)?),
                        undeliverable: r
                            .get::<_, Option<i64>>(16)?
                            .zip(r.get::<_, Option<String>>(17)?),
                    },
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(18)?,
                ))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(self.q("read outbox"))?;
        rows.into_iter()
            .map(|(mut m, ids, channel)| {
                m.mail.channel = Channel::parse(&channel)
                    .ok_or_else(|| self.bad("read outbox channel", channel.clone()))?;
                m.mail.incident_ids = serde_json::from_str(&ids)
                    .map_err(|_| self.bad("read outbox incident ids", ids.clone()))?;
                Ok(m)
            })
            .collect()
    }

    /// Unsent email whose next attempt is due at `now`, oldest first
    /// (given-up ones are not due; claimed ones are, the claim decides).
    pub fn due_mail(&self, now: DateTime<Utc>) -> Result<Vec<MailRow>, StoreError> {
        self.due(Channel::Email, now)
    }

    /// Unsent messages of `channel` whose next attempt is due at `now`.
    pub fn due(&self, channel: Channel, now: DateTime<Utc>) -> Result<Vec<MailRow>, StoreError> {
        self.mail_where(
            "sent_at IS NULL AND undeliverable_at IS NULL AND next_attempt_at <= ?1
               AND channel = ?2",
            params![now.timestamp_millis(), channel.as_str()],
        )
    }

    /// Every unsent message still to be tried, oldest first.
    pub fn unsent_mail(&self) -> Result<Vec<MailRow>, StoreError> {
        self.mail_where("sent_at IS NULL AND undeliverable_at IS NULL", [])
    }

    /// Every unsent message of `channel` still to be tried, oldest first.
    pub fn unsent_of(&self, channel: Channel) -> Result<Vec<MailRow>, StoreError> {
        self.mail_where(
            "sent_at IS NULL AND undeliverable_at IS NULL AND channel = ?1",
            [channel.as_str()],
        )
    }

    /// Every message given up on (until re-queued), oldest first.
    pub fn undeliverable_mail(&self) -> Result<Vec<MailRow>, StoreError> {
        self.mail_where(UNDELIVERABLE, [])
    }

    /// How many messages are given up on (until re-queued).
    pub fn undeliverable_count(&self) -> Result<usize, StoreError> {
        self.conn
            .query_row(
                &format!("SELECT count(*) FROM outbox WHERE {UNDELIVERABLE}"),
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| usize::try_from(n).unwrap_or(0))
            .map_err(self.q("count undeliverable mail"))
    }

    /// Take row `id` for sending by `runner` until `expires` (real time), if
    /// it is still unsent, not given up, due at `now` (the run's clock) and
    /// nobody else holds it. One statement: of two runs racing for a row
    /// exactly one matches (the database serialises writers), on SQLite as
    /// on a shared server.
    pub fn claim(
        &self,
        id: i64,
        runner: &str,
        now: DateTime<Utc>,
        real_now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Result<Claim, StoreError> {
        let n = self
            .conn
            .execute(
                "UPDATE outbox SET claimed_by = ?2, claim_expires_at = ?5
                 WHERE id = ?1 AND sent_at IS NULL AND undeliverable_at IS NULL
                   AND next_attempt_at <= ?3
                   AND (claimed_by IS NULL OR claimed_by = ?2 OR claim_expires_at <= ?4)",
                params![
                    id,
                    runner,
                    now.timestamp_millis(),
                    real_now.timestamp_millis(),
                    expires.timestamp_millis()
                ],
            )
            .map_err(self.q("claim message"))?;
        if n == 1 {
            return Ok(Claim::Taken);
        }
        let held: bool = self
            .conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM outbox WHERE id = ?1 AND sent_at IS NULL
                    AND undeliverable_at IS NULL AND claimed_by IS NOT NULL
                    AND claimed_by <> ?2 AND claim_expires_at > ?3)",
                params![id, runner, real_now.timestamp_millis()],
                |r| r.get(0),
            )
            .map_err(self.q("claim message"))?;
        Ok(if held {
            Claim::HeldElsewhere
        } else {
            Claim::Gone
        })
    }

    /// Record that the body of message `id` went out and its answer did not
    /// come back in time; try again no earlier than `next_attempt_at`.
    pub fn mark_in_doubt(
        &self,
        id: i64,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.record_failure(id, error, next_attempt_at, 1)
    }

    /// Give up on message `id` at `at`: `reason` says why (the server's words).
    pub fn mark_undeliverable(
        &self,
        id: i64,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?2,
                    undeliverable_at = ?3, undeliverable_reason = ?2, attempt_started_at = NULL,
                    claimed_by = NULL, claim_expires_at = NULL
                 WHERE id = ?1",
                params![id, reason, at.timestamp_millis()],
            )
            .map_err(self.q("record undeliverable message"))?;
        Ok(())
    }

    /// Put a given-up message back in the queue, due at `now`, with its
    /// doubt forgotten. Returns false when no such given-up row exists.
    pub fn requeue(&self, id: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
        self.conn
            .execute(
                "UPDATE outbox SET undeliverable_at = NULL, undeliverable_reason = NULL,
                    in_doubt = 0, next_attempt_at = ?2
                 WHERE id = ?1 AND sent_at IS NULL AND undeliverable_at IS NOT NULL",
                params![id, now.timestamp_millis()],
            )
            .map(|n| n == 1)
            .map_err(self.q("re-queue message"))
    }

    /// Every message ever queued, oldest first.
    pub fn all_mail(&self) -> Result<Vec<MailRow>, StoreError> {
        self.mail_where("1", [])
    }

    /// Record that message `id` is being handed to the server now (DATA was
    /// accepted). Until [`Store::mark_sent`] or [`Store::mark_failed`] clears
    /// it, a crash leaves the mark: the server may have the message.
    pub fn mark_attempt(&self, id: i64, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE outbox SET attempt_started_at = ?2 WHERE id = ?1",
                params![id, at.timestamp_millis()],
            )
            .map_err(self.q("mark send attempt"))?;
        Ok(())
    }

    /// Record that the server accepted message `id`.
    pub fn mark_sent(&self, id: i64, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE outbox SET sent_at = ?2, attempts = attempts + 1, last_error = NULL,
                    attempt_started_at = NULL, claimed_by = NULL, claim_expires_at = NULL
                 WHERE id = ?1",
                params![id, at.timestamp_millis()],
            )
            .map_err(self.q("mark message sent"))?;
        Ok(())
    }

    /// Record a failed attempt and when to try again.
    pub fn mark_failed(
        &self,
        id: i64,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.record_failure(id, error, next_attempt_at, 0)
    }

    /// A failed attempt (`doubt` 1: in doubt), its error and next attempt;
    /// the attempt mark and the claim are cleared.
    fn record_failure(
        &self,
        id: i64,
        error: &str,
        next_attempt_at: DateTime<Utc>,
        doubt: i64,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE outbox SET attempts = attempts + 1, in_doubt = in_doubt + ?4,
                    last_error = ?2, next_attempt_at = ?3, attempt_started_at = NULL,
                    claimed_by = NULL, claim_expires_at = NULL
                 WHERE id = ?1",
                params![id, error, next_attempt_at.timestamp_millis(), doubt],
            )
            .map_err(self.q("record failed send"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2020, 11, 30, 7, 0, 0).unwrap()
    }

    #[test]
    fn enqueue_is_idempotent_and_failures_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("s.db")).unwrap();
        let m = NewMail {
            channel: Channel::Email,
            owner: "Ana <ana@example.com>".into(),
            recipient: "ana@example.com".into(),
            subject: "s".into(),
            message: b"Subject: s\r\n\r\nhi\r\n".to_vec(),
            incident_ids: vec![1, 2],
            idempotency_key: "k".into(),
            created_at: t0().timestamp_millis(),
        };
        let (a, new_a) = s.enqueue(&m).unwrap();
        let (b, new_b) = s.enqueue(&m).unwrap();
        assert_eq!((a, new_a, new_b), (b, true, false));
        assert_eq!(s.due_mail(t0()).unwrap().len(), 1);
        s.mark_failed(a, "refused", t0() + chrono::Duration::seconds(60))
            .unwrap();
        assert!(s.due_mail(t0()).unwrap().is_empty());
        let due = s.due_mail(t0() + chrono::Duration::seconds(60)).unwrap();
        assert_eq!(due[0].attempts, 1);
        assert_eq!(due[0].last_error.as_deref(), Some("refused"));
        assert_eq!(due[0].mail.incident_ids, vec![1, 2]);
        s.mark_sent(a, t0()).unwrap();
        assert!(s.unsent_mail().unwrap().is_empty());
        assert_eq!(s.all_mail().unwrap()[0].attempts, 2);
    }
}
