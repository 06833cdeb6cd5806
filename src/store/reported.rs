//! The `reported` table: the newest period a scheduled run reported on, per
//! series. Kept apart from `checkpoints` on purpose: a detector state may be
//! discarded and the series walked again (a rolling export, a restatement, a
//! changed rule), but a period once reported on is never asked about again.

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError, series_id};
use crate::model::SeriesKey;

impl Store {
    /// The newest period reported on of `source`'s series `keys`, in their
    /// order (`None`: never reported on).
    pub fn reported(
        &self,
        source: &str,
        keys: &[&SeriesKey],
    ) -> Result<Vec<Option<i64>>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT last_ts FROM reported WHERE source = ?1 AND series_id = ?2")
            .map_err(self.q("read reported periods"))?;
        keys.iter()
            .map(|key| {
                st.query_row(params![source, series_id(key)], |r| r.get(0))
                    .optional()
                    .map_err(self.q("read reported periods"))
            })
            .collect()
    }

    /// Record that each `(source, key, last_ts)` was reported on up to
    /// `last_ts`; a mark only moves forward. Call it inside
    /// [`Store::transaction`]. Returns how many series were given.
    pub fn save_reported<'k>(
        &self,
        marks: impl IntoIterator<Item = (&'k str, &'k SeriesKey, i64)>,
    ) -> Result<usize, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "INSERT INTO reported (source, series_id, last_ts) VALUES (?1, ?2, ?3)
                 ON CONFLICT (source, series_id) DO UPDATE
                    SET last_ts = max(last_ts, excluded.last_ts)",
            )
            .map_err(self.q("save reported periods"))?;
        let mut n = 0;
        for (source, key, last_ts) in marks {
            st.execute(params![source, series_id(key), last_ts])
                .map_err(self.q("save reported periods"))?;
            n += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use crate::model::SeriesKey;
    use crate::store::Store;

    #[test]
    fn a_mark_only_moves_forward_and_is_per_series() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("s.db")).unwrap();
        let key = |r: &str| SeriesKey {
            metric: "orders".into(),
            dims: vec![("region".into(), r.into())],
        };
        let (eu, us) = (key("eu"), key("us"));
        assert_eq!(s.reported("shop", &[&eu, &us]).unwrap(), vec![None, None]);
        s.transaction(|s| s.save_reported([("shop", &eu, 10), ("shop", &us, 20)]))
            .unwrap();
        s.transaction(|s| s.save_reported([("shop", &eu, 5)]))
            .unwrap();
        assert_eq!(
            s.reported("shop", &[&eu, &us]).unwrap(),
            vec![Some(10), Some(20)]
        );
        assert_eq!(s.reported("other", &[&eu]).unwrap(), vec![None]);
    }
}
