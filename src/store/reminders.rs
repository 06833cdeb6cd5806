//! Queries for reminders and escalation: announced incidents nobody has
//! explained yet.
//!
//! "Explained" means the incident has a row in `explanations` (the owners'
//! answers through their signed links); any answer counts, including
//! "under investigation", because the owner has responded.
//!
//! Must not: decide who is reminded or when (that is `alert::reminders`).

use chrono::{DateTime, Utc};

use super::{IncidentRow, Store, StoreError};

impl Store {
    /// Incidents announced by a digest queued in `[from, until)` that have no
    /// explanation, by id. Incidents logged without an owner (no digest) are
    /// not among them.
    pub fn unexplained_announced(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<IncidentRow>, StoreError> {
        self.incidents_where(
            "announced = 1 AND past = 0
             AND digest_id IN (SELECT id FROM outbox WHERE created_at >= ?1 AND created_at < ?2)
             AND NOT EXISTS (SELECT 1 FROM explanations e WHERE e.incident_id = incidents.id)",
            rusqlite::params![from.timestamp_millis(), until.timestamp_millis()],
        )
    }
}
