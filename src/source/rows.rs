//! A source's rows as they stream in from the reader, held lean: a series id,
//! a time and a value per row (20 bytes), each series key once. `finish`
//! orders them by series key, then time, with one counting sort and cuts them
//! into the per-series slices of a [`Batch`].
//!
//! Architecture Invariant: no string is kept per row. A row's key is matched
//! against the series that came before it, or the one that followed that
//! series last time (an export ordered by date repeats its key order every
//! period), and only when both miss is the key hashed.

use std::hash::BuildHasher;

use polars::prelude::*;
use rayon::prelude::*;

use super::normalize::series_slice;
use super::spill::{PARTS, Parts, part_of, spill_err};
use super::{SourceError, TS, VALUE};
use crate::batch::{Batch, SeriesInfo};
use crate::config::SourceConfig;
use crate::model::SeriesKey;

/// No series (an empty slot of `succ`, `chain` or `last`).
const NONE: u32 = u32::MAX;

/// Rows read so far (see the module doc).
#[derive(Debug, Default)]
pub(super) struct Rows {
    /// Key columns per series.
    width: usize,
    /// Series keys, flat: series `i` owns `keys[i * width..(i + 1) * width]`.
    keys: Vec<String>,
    /// Hash of a key → the newest series with that hash; older ones via `chain`.
    by_hash: PlHashMap<u64, u32>,
    /// The previous series with the same key hash.
    chain: Vec<u32>,
    /// The series whose row followed this series' row last time.
    succ: Vec<u32>,
    /// Series of the newest row.
    last: u32,
    hasher: PlRandomState,
    /// Per row, in file order: series id, time, value. Three large vectors
    /// rather than one per block, so that freeing one returns its memory to
    /// the system at once (a large allocation is its own mapping).
    ids: Vec<u32>,
    ts: Vec<i64>,
    values: Vec<f64>,
    /// Rows held in memory before the source spills to disk (`None`: never;
    /// see `spill`).
    limit: Option<usize>,
    /// The spill partition of each series (only with a `limit`).
    part: Vec<u8>,
    /// Marks taken while the rows were in memory, to learn the partitions'
    /// sizes at each when the rows move to disk.
    marks: Vec<usize>,
    /// The rows on disk, once more than `limit` were read; memory then
    /// holds only the block being appended.
    spill: Option<Parts>,
    /// A spill file that could not be written or cut back: the source
    /// cannot be finished.
    broken: Option<String>,
}

/// Where a file's rows begin, to drop them again if the file turns out bad.
#[derive(Debug, Clone, Copy)]
pub(super) struct Mark(usize);

impl Rows {
    /// Rows whose series are keyed by `width` text columns.
    pub(super) fn new(width: usize) -> Self {
        Rows {
            width,
            last: NONE,
            ..Rows::default()
        }
    }

    /// Rows that spill to disk, in partitions by series key, once more
    /// than `limit` are held (see [`Rows::into_held`]).
    pub(super) fn within(width: usize, limit: Option<usize>) -> Self {
        Rows {
            limit,
            ..Rows::new(width)
        }
    }

    /// True when the rows are held within a memory budget.
    pub(super) fn budgeted(&self) -> bool {
        self.limit.is_some()
    }

    /// Rows read and not rolled back, in memory or on disk.
    fn len(&self) -> usize {
        let spilled: u64 = self.spill.as_ref().map_or(0, |p| p.sizes().iter().sum());
        self.ids.len() + usize::try_from(spilled).unwrap_or(usize::MAX)
    }

    /// The current end, for [`Rows::rollback`].
    pub(super) fn mark(&mut self) -> Mark {
        let at = self.len();
        if let Some(parts) = &mut self.spill {
            parts.mark(at);
        } else if self.limit.is_some() {
            self.marks.push(at);
        }
        Mark(at)
    }

    /// Forget the rows added since `mark` (their series stay known, with no
    /// rows they are left out of the batch).
    pub(super) fn rollback(&mut self, mark: Mark) {
        if let Some(parts) = &mut self.spill {
            // between pushes a spilling source holds no rows in memory
            self.ids.clear();
            self.ts.clear();
            self.values.clear();
            if let Err(e) = parts.rollback(mark.0) {
                self.broken = Some(e.to_string());
            }
            return;
        }
        self.ids.truncate(mark.0);
        self.ts.truncate(mark.0);
        self.values.truncate(mark.0);
    }

    /// Past the limit, move the rows held in memory to the partitions.
    fn spill_if_over(&mut self) -> PolarsResult<()> {
        let Some(limit) = self.limit else {
            return Ok(());
        };
        if self.spill.is_none() && self.ids.len() <= limit {
            return Ok(());
        }
        self.spill_rows().map_err(|e| {
            PolarsError::ComputeError(
                format!("cannot write rows to a temporary file (the source is larger than detection.memory_budget): {e}")
                    .into(),
            )
        })
    }

    fn spill_rows(&mut self) -> std::io::Result<()> {
        let first = self.spill.is_none();
        let base = self.len() - self.ids.len();
        let Rows {
            spill,
            ids,
            ts,
            values,
            part,
            marks,
            ..
        } = self;
        let parts = match spill {
            Some(p) => p,
            None => spill.insert(Parts::new()?),
        };
        let mut marks = std::mem::take(marks);
        marks.sort_unstable();
        marks.dedup();
        let mut marks = marks.into_iter().peekable();
        for (i, ((&id, &t), &v)) in ids.iter().zip(ts.iter()).zip(values.iter()).enumerate() {
            while let Some(m) = marks.next_if(|&m| m <= base + i) {
                parts.mark(m);
            }
            parts.push(part[id as usize], id, t, v)?;
        }
        for m in marks {
            parts.mark(m);
        }
        if first {
            // the large vectors go back to the system; blocks reuse small ones
            *ids = Vec::new();
            *ts = Vec::new();
            *values = Vec::new();
        } else {
            ids.clear();
            ts.clear();
            values.clear();
        }
        Ok(())
    }

    fn key(&self, id: u32) -> &[String] {
        let i = id as usize * self.width;
        &self.keys[i..i + self.width]
    }

    fn is(&self, id: u32, row: &[&str]) -> bool {
        (id as usize) < self.succ.len() && self.key(id).iter().zip(row).all(|(a, b)| a == b)
    }

    /// The id of the series keyed `row`, numbering a new key.
    fn id_of(&mut self, row: &[&str]) -> PolarsResult<u32> {
        let h = self.hasher.hash_one(row);
        let mut cand = self.by_hash.get(&h).copied().unwrap_or(NONE);
        while cand != NONE {
            if self.is(cand, row) {
                return Ok(cand);
            }
            cand = self.chain[cand as usize];
        }
        let id = u32::try_from(self.succ.len())
            .ok()
            .filter(|&id| id != NONE)
            .ok_or_else(|| {
                PolarsError::ComputeError(
                    "more than 4,294,967,294 series in one source; split the export into several sources"
                        .into(),
                )
            })?;
        if self.limit.is_some() {
            self.part.push(part_of(row));
        }
        self.keys.extend(row.iter().map(|s| (*s).to_string()));
        self.chain.push(self.by_hash.insert(h, id).unwrap_or(NONE));
        self.succ.push(NONE);
        Ok(id)
    }

    /// Append a normalised frame (`key columns…` as text without nulls,
    /// `__ts` i64, `__value` f64).
    pub(super) fn push(&mut self, frame: &DataFrame, key_columns: &[String]) -> PolarsResult<()> {
        let n = frame.height();
        if n == 0 {
            return Ok(());
        }
        let cols = key_columns
            .iter()
            .map(|k| Ok(frame.column(k)?.str()?.rechunk().into_owned()))
            .collect::<PolarsResult<Vec<StringChunked>>>()?;
        let arrs: Vec<_> = cols
            .iter()
            .map(|c| {
                c.downcast_iter()
                    .next()
                    .ok_or_else(|| PolarsError::NoData("no key column chunk".into()))
            })
            .collect::<PolarsResult<_>>()?;
        let mut row: Vec<&str> = Vec::with_capacity(self.width);
        let mut last = self.last;
        for i in 0..n {
            row.clear();
            row.extend(arrs.iter().map(|a| a.value(i)));
            let id = if self.is(last, &row) {
                last
            } else if last != NONE && self.is(self.succ[last as usize], &row) {
                self.succ[last as usize]
            } else {
                let id = self.id_of(&row)?;
                if last != NONE {
                    self.succ[last as usize] = id;
                }
                id
            };
            self.ids.push(id);
            last = id;
        }
        self.last = last;
        // chunk by chunk: a rechunk would copy each column once more
        let ts = frame.column(TS)?.i64()?;
        if ts.null_count() > 0 {
            return Err(PolarsError::ComputeError("empty timestamps".into()));
        }
        for arr in ts.downcast_iter() {
            self.ts.extend_from_slice(arr.values());
        }
        let vals = frame.column(VALUE)?.f64()?;
        if vals.null_count() == 0 {
            for arr in vals.downcast_iter() {
                self.values.extend_from_slice(arr.values());
            }
        } else {
            // nulls become NaN so every series is a plain slice; both count as bad values
            self.values
                .extend(vals.iter().map(|v| v.unwrap_or(f64::NAN)));
        }
        self.spill_if_over()
    }

    /// The rows as one batch when they stayed in memory, else as chunks of
    /// series read back one at a time; with the series' problems of a batch.
    pub(super) fn into_held(
        mut self,
        cfg: &SourceConfig,
        key_columns: Vec<String>,
    ) -> Result<(Held, Vec<SourceError>), SourceError> {
        if let Some(e) = self.broken.take() {
            return Err(spill_err(&cfg.name, e));
        }
        let Some(parts) = &self.spill else {
            let (batch, problems) = self.finish(cfg, key_columns);
            return Ok((Held::Whole(batch), problems));
        };
        // consecutive partitions, as many as fit the limit (at least one)
        let limit = self.limit.unwrap_or(usize::MAX) as u64;
        let mut groups: Vec<std::ops::Range<usize>> = Vec::new();
        let (mut from, mut rows) = (0, 0u64);
        for (p, &n) in parts.sizes().iter().enumerate() {
            if rows > 0 && rows + n > limit {
                groups.push(from..p);
                (from, rows) = (p, 0);
            }
            rows += n;
        }
        if rows > 0 {
            groups.push(from..PARTS);
        }
        Ok((
            Held::Chunked(Box::new(Chunks {
                cfg: cfg.clone(),
                key_columns,
                groups,
                rows: self,
            })),
            Vec::new(),
        ))
    }

    /// Order the rows by series key then time (rows of one timestamp keep
    /// their file order, which `duplicates = "first"/"last"` rely on), and
    /// cut them into series: bad values, duplicates, granularity.
    ///
    /// A counting sort: each series' rows land in its block of the output in
    /// file order. The series are dealt in key order to one task per core,
    /// each owning a contiguous part of the output, so the scatter and the
    /// per-series pass run on every core without locks.
    pub(super) fn finish(
        mut self,
        cfg: &SourceConfig,
        key_columns: Vec<String>,
    ) -> (Batch, Vec<SourceError>) {
        let ids = std::mem::take(&mut self.ids);
        let ts = std::mem::take(&mut self.ts);
        let values = std::mem::take(&mut self.values);
        let (batch, problems) = self.sort_cut(cfg, key_columns, ids, ts, values);
        (batch, problems.into_iter().map(|(_, p)| p).collect())
    }

    /// [`Rows::finish`] of the rows given (all, or one chunk's), each
    /// problem with its series' key.
    fn sort_cut(
        &self,
        cfg: &SourceConfig,
        key_columns: Vec<String>,
        ids: Vec<u32>,
        in_ts: Vec<i64>,
        in_values: Vec<f64>,
    ) -> (Batch, Vec<(SeriesKey, SourceError)>) {
        let n = ids.len();
        let n_ids = self.succ.len();
        let mut counts = vec![0usize; n_ids];
        for &id in &ids {
            counts[id as usize] += 1;
        }
        #[allow(
            clippy::cast_possible_truncation,
            reason = "ids are below u32::MAX: `id_of` numbers no more"
        )]
        let mut by_key: Vec<u32> = (0..n_ids as u32)
            .filter(|&id| counts[id as usize] > 0)
            .collect();
        by_key.sort_unstable_by(|&a, &b| self.key(a).cmp(self.key(b)));
        // rank of each id in key order, and where its rows begin
        let mut rank = vec![u32::MAX; n_ids];
        let mut first_by_rank = Vec::with_capacity(by_key.len());
        let mut at = 0;
        for (r, &id) in by_key.iter().enumerate() {
            #[allow(clippy::cast_possible_truncation, reason = "as many ranks as ids")]
            let r = r as u32;
            rank[id as usize] = r;
            first_by_rank.push(at);
            at += counts[id as usize];
        }
        // groups of consecutive ranks with about n / tasks rows each
        let tasks = rayon::current_num_threads().max(1) * 2;
        let mut groups: Vec<std::ops::Range<usize>> = Vec::with_capacity(tasks);
        let mut from = 0;
        for r in 0..by_key.len() {
            let rows_to = first_by_rank[r] + counts[by_key[r] as usize];
            if rows_to * tasks >= n.max(1) * (groups.len() + 1) || r + 1 == by_key.len() {
                groups.push(from..r + 1);
                from = r + 1;
            }
        }
        // each row's series as its rank, once, so the scatter reads no table
        let mut ranks = ids;
        ranks.par_chunks_mut(1 << 16).for_each(|c| {
            for id in c {
                *id = rank[*id as usize];
            }
        });
        // the scatter reads every row once per part: one part per thread
        // (two groups each), enough to keep the threads busy
        let parts: Vec<std::ops::Range<usize>> = groups
            .chunks(2)
            .filter_map(|p| Some(p.first()?.start..p.last()?.end))
            .collect();
        // times first, then values: the input times are freed before the
        // output values exist, so at most 28 bytes a row are held here
        let order = Order {
            parts: &parts,
            first_by_rank: &first_by_rank,
            counts: &counts,
            by_key: &by_key,
        };
        let ts = order.scatter(&ranks, &in_ts);
        drop(in_ts);
        let mut values = order.scatter(&ranks, &in_values);
        drop(in_values);
        drop(ranks);
        let mut ts = ts;
        let mut parts: Vec<(&mut [i64], &mut [f64])> = Vec::with_capacity(groups.len());
        {
            let (mut ts_rest, mut v_rest) = (&mut ts[..], &mut values[..]);
            for g in &groups {
                let len: usize = by_key[g.clone()]
                    .iter()
                    .map(|&id| counts[id as usize])
                    .sum();
                let (t, tr) = ts_rest.split_at_mut(len);
                let (v, vr) = v_rest.split_at_mut(len);
                (ts_rest, v_rest) = (tr, vr);
                parts.push((t, v));
            }
        }
        let this = self;
        let done: Vec<Cut> = groups
            .par_iter()
            .zip(parts)
            .map(|(g, (ts, values))| {
                this.cut(cfg, &key_columns, &by_key[g.clone()], &counts, ts, values)
            })
            .collect();

        // the groups' kept rows, moved together
        let mut problems = Vec::new();
        let mut series = Vec::with_capacity(by_key.len());
        let (mut write, mut region) = (0, 0);
        for (cut, g) in done.into_iter().zip(&groups) {
            ts.copy_within(region..region + cut.kept, write);
            values.copy_within(region..region + cut.kept, write);
            series.extend(cut.series.into_iter().map(|mut s| {
                s.start += write;
                s
            }));
            problems.extend(cut.problems);
            write += cut.kept;
            region += by_key[g.clone()]
                .iter()
                .map(|&id| counts[id as usize])
                .sum::<usize>();
        }
        ts.truncate(write);
        values.truncate(write);
        ts.shrink_to_fit();
        values.shrink_to_fit();
        (
            Batch {
                source: cfg.name.clone(),
                key_columns,
                ts,
                values,
                series,
            },
            problems,
        )
    }

    /// One group of series, its rows scattered into `ts`/`values` in key
    /// order: sort each by time, cut it (`series_slice`) and compact the kept
    /// rows to the front of the group's part.
    fn cut(
        &self,
        cfg: &SourceConfig,
        key_columns: &[String],
        ids: &[u32],
        counts: &[usize],
        ts: &mut [i64],
        values: &mut [f64],
    ) -> Cut {
        let mut cut = Cut {
            series: Vec::with_capacity(ids.len()),
            problems: Vec::new(),
            kept: 0,
        };
        let (mut out_ts, mut out_v) = (Vec::new(), Vec::new());
        let mut start = 0;
        for &id in ids {
            let end = start + counts[id as usize];
            sort_by_time(&mut ts[start..end], &mut values[start..end]);
            let k = self.key(id);
            let key = SeriesKey {
                metric: k[0].clone(),
                dims: key_columns[1..]
                    .iter()
                    .zip(&k[1..])
                    .map(|(c, v)| (c.clone(), v.clone()))
                    .collect(),
            };
            out_ts.clear();
            out_v.clear();
            match series_slice(
                cfg,
                &ts[start..end],
                &values[start..end],
                &mut out_ts,
                &mut out_v,
            ) {
                Ok((g, dropped)) => {
                    if let Some(msg) = dropped {
                        let problem = SourceError::BadValues {
                            source_name: cfg.name.clone(),
                            series: key.to_string(),
                            message: msg,
                        };
                        cut.problems.push((key.clone(), problem));
                    }
                    // a series never yields more rows than it read: this
                    // overwrites only rows already consumed
                    let w = cut.kept;
                    ts[w..w + out_ts.len()].copy_from_slice(&out_ts);
                    values[w..w + out_v.len()].copy_from_slice(&out_v);
                    cut.series.push(SeriesInfo {
                        key,
                        start: w,
                        len: out_ts.len(),
                        granularity: g,
                    });
                    cut.kept += out_ts.len();
                }
                Err(message) => {
                    let problem = SourceError::Series {
                        source_name: cfg.name.clone(),
                        series: key.to_string(),
                        message,
                    };
                    cut.problems.push((key, problem));
                }
            }
            start = end;
        }
        cut
    }
}

/// Where each row goes in (series key, file) order: the output positions
/// of [`Rows::sort_cut`]'s counting sort.
struct Order<'a> {
    /// Consecutive ranks whose rows one task writes.
    parts: &'a [std::ops::Range<usize>],
    first_by_rank: &'a [usize],
    counts: &'a [usize],
    by_key: &'a [u32],
}

impl Order<'_> {
    /// One column of the rows in (series key, file) order, given each row's
    /// series rank: each task owns a part of consecutive ranks and the
    /// matching part of the output.
    fn scatter<T: Copy + Default + Send + Sync>(&self, ranks: &[u32], src: &[T]) -> Vec<T> {
        let Order {
            parts,
            first_by_rank,
            counts,
            by_key,
        } = *self;
        let mut out = vec![T::default(); src.len()];
        let mut cursor = first_by_rank.to_vec();
        let mut work = Vec::with_capacity(parts.len());
        {
            let (mut out_rest, mut c_rest) = (&mut out[..], &mut cursor[..]);
            for g in parts {
                let len: usize = by_key[g.clone()]
                    .iter()
                    .map(|&id| counts[id as usize])
                    .sum();
                let (o, or) = out_rest.split_at_mut(len);
                let (c, cr) = c_rest.split_at_mut(g.len());
                (out_rest, c_rest) = (or, cr);
                work.push((g.clone(), o, c));
            }
        }
        work.into_par_iter().for_each(|(g, out, cursor)| {
            let base = first_by_rank[g.start];
            for (&r, &x) in ranks.iter().zip(src) {
                let r = r as usize;
                if g.contains(&r) {
                    let c = &mut cursor[r - g.start];
                    out[*c - base] = x;
                    *c += 1;
                }
            }
        });
        out
    }
}

/// A source's rows as loaded: one batch, or chunks of series on disk.
#[derive(Debug)]
pub enum Held {
    /// Every series, in memory.
    Whole(Batch),
    /// More rows than the memory budget: series in chunks, read one at a time.
    Chunked(Box<Chunks>),
}

/// The rows of a source larger than the memory budget, dealt into chunks of
/// whole series by a hash of the key ([`super::spill`]); [`Chunks::take`]
/// reads one back and cuts it into a batch like a whole source.
#[derive(Debug)]
pub struct Chunks {
    cfg: SourceConfig,
    key_columns: Vec<String>,
    /// Spill partitions per chunk.
    groups: Vec<std::ops::Range<usize>>,
    rows: Rows,
}

impl Chunks {
    /// How many chunks.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Chunk `i` as a batch (series in key order) with its series'
    /// problems, each with its key so problems of all chunks can be put in
    /// the order of a whole source. A chunk's rows leave the disk as they
    /// are read: take each chunk once.
    pub fn take(
        &mut self,
        i: usize,
    ) -> Result<(Batch, Vec<(SeriesKey, SourceError)>), SourceError> {
        let range = self.groups.get(i).cloned().unwrap_or(0..0);
        let Some(parts) = &mut self.rows.spill else {
            return Err(spill_err(&self.cfg.name, "no spilled rows"));
        };
        let rows: u64 = parts.sizes()[range.clone()].iter().sum();
        let rows = usize::try_from(rows).unwrap_or(0);
        let mut ids = Vec::with_capacity(rows);
        let mut ts = Vec::with_capacity(rows);
        let mut values = Vec::with_capacity(rows);
        for p in range {
            parts
                .take(p, &mut ids, &mut ts, &mut values)
                .map_err(|e| spill_err(&self.cfg.name, e))?;
        }
        Ok(self
            .rows
            .sort_cut(&self.cfg, self.key_columns.clone(), ids, ts, values))
    }
}

/// What [`Rows::cut`] made of one group of series.
struct Cut {
    /// The series kept, `start` within the group's part.
    series: Vec<SeriesInfo>,
    /// Series left out and bad values, in key order, with their keys.
    problems: Vec<(SeriesKey, SourceError)>,
    /// Rows kept at the front of the group's part.
    kept: usize,
}

/// Sort one series' rows by time, stably (equal times keep file order);
/// most exports are already in order and cost one pass.
fn sort_by_time(ts: &mut [i64], values: &mut [f64]) {
    if ts.windows(2).all(|w| w[0] <= w[1]) {
        return;
    }
    let mut pairs: Vec<(i64, f64)> = ts.iter().copied().zip(values.iter().copied()).collect();
    pairs.sort_by_key(|p| p.0);
    for (i, (t, v)) in pairs.into_iter().enumerate() {
        ts[i] = t;
        values[i] = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(rows: &[(&str, &str, i64, f64)]) -> DataFrame {
        df! {
            "metric" => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            "region" => rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            TS => rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            VALUE => rows.iter().map(|r| r.3).collect::<Vec<_>>(),
        }
        .unwrap()
    }

    fn source() -> SourceConfig {
        let text = "[store]\npath = \"s.db\"\n\n[[source]]\nname = \"s\"\npath = \"s.csv\"\ndimensions = [\"region\"]\nduplicates = \"last\"\n";
        crate::config::compile_str(text, std::path::Path::new("/tmp/c.toml"), &|_| None)
            .unwrap()
            .sources[0]
            .clone()
    }

    /// Rows in, `(series, [(ts, value)])` out.
    fn check(parts: &[&[(&str, &str, i64, f64)]]) -> Vec<(String, Vec<(i64, f64)>)> {
        let keys = vec!["metric".to_string(), "region".to_string()];
        let mut rows = Rows::new(2);
        for p in parts {
            rows.push(&frame(p), &keys).unwrap();
        }
        let (b, problems) = rows.finish(&source(), keys);
        assert!(problems.is_empty(), "{problems:?}");
        b.series
            .iter()
            .map(|s| {
                let pts = b
                    .ts_of(s)
                    .iter()
                    .copied()
                    .zip(b.values_of(s).iter().copied());
                (s.key.to_string(), pts.collect())
            })
            .collect()
    }

    const D: i64 = 86_400_000;

    #[test]
    fn rows_are_ordered_by_key_then_time_across_parts() {
        // date order, the key order changes on day 2, and a new series joins on day 3
        let got = check(&[
            &[
                ("b", "eu", 0, 1.0),
                ("a", "us", 0, 2.0),
                ("a", "eu", 0, 3.0),
            ],
            &[
                ("a", "eu", D, 4.0),
                ("b", "eu", D, 5.0),
                ("a", "us", D, 6.0),
            ],
            &[
                ("a", "us", 2 * D, 7.0),
                ("a", "eu", 2 * D, 8.0),
                ("b", "eu", 2 * D, 9.0),
                ("a", "af", 2 * D, 10.0),
            ],
        ]);
        let want = vec![
            ("a{region=af}".to_string(), vec![(2 * D, 10.0)]),
            (
                "a{region=eu}".to_string(),
                vec![(0, 3.0), (D, 4.0), (2 * D, 8.0)],
            ),
            (
                "a{region=us}".to_string(),
                vec![(0, 2.0), (D, 6.0), (2 * D, 7.0)],
            ),
            (
                "b{region=eu}".to_string(),
                vec![(0, 1.0), (D, 5.0), (2 * D, 9.0)],
            ),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn out_of_order_rows_are_sorted_and_duplicates_keep_file_order() {
        // `duplicates = "last"`: of the two rows of day 1 the later one in the file wins
        let got = check(&[
            &[("m", "eu", 2 * D, 3.0), ("m", "eu", D, 1.0)],
            &[("m", "eu", 0, 0.5), ("m", "eu", D, 2.0)],
        ]);
        assert_eq!(
            got,
            vec![(
                "m{region=eu}".to_string(),
                vec![(0, 0.5), (D, 2.0), (2 * D, 3.0)]
            )]
        );
    }

    #[test]
    fn a_rolled_back_file_leaves_no_rows_or_series() {
        let keys = vec!["metric".to_string(), "region".to_string()];
        let mut rows = Rows::new(2);
        rows.push(&frame(&[("a", "eu", 0, 1.0)]), &keys).unwrap();
        let mark = rows.mark();
        rows.push(&frame(&[("a", "eu", D, 9.0), ("z", "eu", 0, 9.0)]), &keys)
            .unwrap();
        rows.rollback(mark);
        let (b, _) = rows.finish(&source(), keys);
        assert_eq!(b.series.len(), 1);
        assert_eq!(b.ts, vec![0]);
        assert_eq!(b.values, vec![1.0]);
    }

    #[test]
    fn spilled_rows_come_back_in_chunks_like_the_whole_batch() {
        let keys = vec!["metric".to_string(), "region".to_string()];
        let regions = ["eu", "us", "apac", "latam", "mena", "nordics", "andes"];
        let day = |d: i64, v: f64| -> Vec<(&str, &str, i64, f64)> {
            ["a", "b", "c"]
                .iter()
                .flat_map(|m| regions.iter().map(move |r| (*m, *r, d * D, v)))
                .collect()
        };
        let feed = |rows: &mut Rows| {
            rows.push(&frame(&day(0, 1.0)), &keys).unwrap();
            // a file that turns out bad: its rows (and a new series') go again
            let mark = rows.mark();
            rows.push(&frame(&day(2, 9.0)), &keys).unwrap();
            rows.push(&frame(&day(5, 9.0)), &keys).unwrap();
            rows.push(&frame(&[("zz", "eu", 0, 9.0)]), &keys).unwrap();
            rows.rollback(mark);
            rows.push(&frame(&day(2, 3.0)), &keys).unwrap();
            // out of order, and a duplicate that `last` resolves by file order
            rows.push(&frame(&day(1, 2.0)), &keys).unwrap();
            rows.push(&frame(&[("b", "us", D, 7.0)]), &keys).unwrap();
        };
        let mut whole = Rows::new(2);
        feed(&mut whole);
        let (want_batch, want_problems) = whole.finish(&source(), keys.clone());
        assert!(want_problems.is_empty());
        // 10: spills at the first block, before the mark; 30: after it, so
        // the rollback goes back to a mark taken while the rows were in memory
        for limit in [10, 30] {
            let mut spilled = Rows::within(2, Some(limit));
            feed(&mut spilled);
            let (held, problems) = spilled.into_held(&source(), keys.clone()).unwrap();
            assert!(problems.is_empty());
            let Held::Chunked(mut chunks) = held else {
                panic!("63 rows over a limit of 10 stayed in memory");
            };
            assert!(chunks.len() >= 2, "{} chunks of {limit} rows", chunks.len());
            let mut got = Vec::new();
            for i in 0..chunks.len() {
                let (b, problems) = chunks.take(i).unwrap();
                assert!(problems.is_empty());
                got.extend(b.series.iter().map(|s| {
                    let pts: Vec<(i64, f64)> = b
                        .ts_of(s)
                        .iter()
                        .copied()
                        .zip(b.values_of(s).iter().copied())
                        .collect();
                    (s.key.clone(), pts)
                }));
            }
            got.sort_by(|a, b| a.0.cmp(&b.0));
            let want: Vec<_> = want_batch
                .series
                .iter()
                .map(|s| {
                    let pts: Vec<(i64, f64)> = want_batch
                        .ts_of(s)
                        .iter()
                        .copied()
                        .zip(want_batch.values_of(s).iter().copied())
                        .collect();
                    (s.key.clone(), pts)
                })
                .collect();
            assert_eq!(got.len(), 21, "the rolled-back series `zz` is left out");
            assert_eq!(got, want);
            let bus = got
                .iter()
                .find(|(k, _)| k.to_string() == "b{region=us}")
                .unwrap();
            assert_eq!(bus.1, vec![(0, 1.0), (D, 7.0), (2 * D, 3.0)]);
        }
    }
}
