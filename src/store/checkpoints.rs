//! The `checkpoints` table: each series' detector state after the last run
//! that kept one. Whether a state fits a series is decided by
//! `detect::checkpoint`; this file only stores and reads the rows.

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError, series_id};
use crate::model::{Checkpoint, SeriesKey};

/// SQLite integers are signed: a u64 hash is kept as the i64 of the same bits.
fn to_sql(x: u64) -> i64 {
    i64::from_ne_bytes(x.to_ne_bytes())
}

fn from_sql(x: i64) -> u64 {
    u64::from_ne_bytes(x.to_ne_bytes())
}

impl Store {
    /// The stored states of `source`'s series `keys`, in their order (`None`
    /// where a series has none, or its row cannot be read).
    pub fn checkpoints(
        &self,
        source: &str,
        keys: &[&SeriesKey],
    ) -> Result<Vec<Option<Checkpoint>>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT version, fingerprint, points, last_ts, prefix_hash, state
                 FROM checkpoints WHERE source = ?1 AND series_id = ?2",
            )
            .map_err(self.q("read checkpoints"))?;
        keys.iter()
            .map(|key| {
                let row = st
                    .query_row(params![source, series_id(key)], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, i64>(3)?,
                            r.get::<_, i64>(4)?,
                            r.get::<_, Vec<u8>>(5)?,
                        ))
                    })
                    .optional()
                    .map_err(self.q("read checkpoints"))?;
                Ok(
                    row.and_then(|(version, fingerprint, points, last_ts, hash, state)| {
                        Some(Checkpoint {
                            source: source.to_string(),
                            key: (*key).clone(),
                            version: u32::try_from(version).ok()?,
                            fingerprint: from_sql(fingerprint),
                            points: usize::try_from(points).ok()?,
                            last_ts,
                            prefix_hash: from_sql(hash),
                            state,
                        })
                    }),
                )
            })
            .collect()
    }

    /// Replace the stored states of the series in `states` (call it inside
    /// [`Store::transaction`]: a run's states are kept together or not at all).
    pub fn save_checkpoints(&self, states: &[Checkpoint]) -> Result<usize, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "INSERT INTO checkpoints
                    (source, series_id, version, fingerprint, points, last_ts, prefix_hash, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (source, series_id) DO UPDATE SET version = ?3,
                    fingerprint = ?4, points = ?5, last_ts = ?6, prefix_hash = ?7, state = ?8",
            )
            .map_err(self.q("save checkpoints"))?;
        for c in states {
            st.execute(params![
                c.source,
                series_id(&c.key),
                c.version,
                to_sql(c.fingerprint),
                i64::try_from(c.points).unwrap_or(i64::MAX),
                c.last_ts,
                to_sql(c.prefix_hash),
                c.state,
            ])
            .map_err(self.q("save checkpoints"))?;
        }
        Ok(states.len())
    }

    /// [`Store::save_checkpoints`] in a transaction of its own, through a
    /// shared `&Store` (a run saves each chunk's states while its lookups
    /// read others).
    pub fn save_checkpoints_now(&self, states: &[Checkpoint]) -> Result<usize, StoreError> {
        self.in_transaction(|s| s.save_checkpoints(states))
    }

    /// Rows and bytes of state in the `checkpoints` table.
    pub fn checkpoint_size(&self) -> Result<(usize, usize), StoreError> {
        self.conn
            .query_row(
                "SELECT count(*), coalesce(sum(length(state)), 0) FROM checkpoints",
                [],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
            )
            .map(|(n, b)| {
                (
                    usize::try_from(n).unwrap_or(0),
                    usize::try_from(b).unwrap_or(0),
                )
            })
            .map_err(self.q("measure checkpoints"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_and_are_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("s.db")).unwrap();
        let key = SeriesKey {
            metric: "orders".into(),
            dims: vec![("region".into(), "eu".into())],
        };
        let other = SeriesKey {
            metric: "visits".into(),
            dims: vec![],
        };
        let mut c = Checkpoint {
            source: "shop".into(),
            key: key.clone(),
            version: 1,
            fingerprint: u64::MAX - 5,
            points: 300,
            last_ts: 1_700_000_000_000,
            prefix_hash: 1 << 63,
            state: vec![1, 2, 3],
        };
        s.transaction(|s| s.save_checkpoints(std::slice::from_ref(&c)))
            .unwrap();
        c.points = 301;
        c.state = vec![9; 10];
        s.transaction(|s| s.save_checkpoints(std::slice::from_ref(&c)))
            .unwrap();
        let got = s.checkpoints("shop", &[&key, &other]).unwrap();
        assert_eq!(got, vec![Some(c), None]);
        assert_eq!(s.checkpoint_size().unwrap(), (1, 10));
        assert_eq!(s.checkpoints("ops", &[&key]).unwrap(), vec![None]);
    }
}
