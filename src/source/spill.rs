//! Rows on disk, for sources larger than the memory budget
//! (`detection.memory_budget`).
//!
//! [`Parts`] holds the rows of a source being read, dealt by a hash of the
//! series key into [`PARTS`] partitions (a series is never split), each an
//! unnamed temp file of raw little-endian rows (id u32, time i64, value f64).
//! A chunk of consecutive partitions is read back, sorted and cut like a
//! whole source (`Rows`), evaluated and dropped before the next.
//! [`Spilled`] is one such chunk once cut: its series in memory, its times
//! and values on disk until detection reads it back.
//!
//! The files are created by `tempfile::tempfile` (private, no name, removed
//! by the system when closed), so nothing is left behind after a crash.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};

use super::SourceError;
use crate::batch::{Batch, SeriesInfo};

/// Partitions of a spilled source: a chunk is at least one, so this bounds
/// how many chunks the rows of one budget can fill.
pub(super) const PARTS: usize = 64;

/// Bytes of one spilled row: series id, time, value.
const ROW_BYTES: u64 = 20;

/// Write buffer per partition (64 × 128 KB = 8 MB while a source spills).
const BUFFER: usize = 128 << 10;

/// The partition of a series key: a fixed hash (the same split every run).
pub(super) fn part_of(key: &[&str]) -> u8 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    key.hash(&mut h);
    #[allow(
        clippy::cast_possible_truncation,
        reason = "the remainder is below PARTS (64)"
    )]
    let p = (h.finish() % PARTS as u64) as u8;
    p
}

/// The partitions of a source being read (see the module doc).
#[derive(Debug)]
pub(super) struct Parts {
    files: Vec<BufWriter<File>>,
    /// Rows written per partition.
    rows: Vec<u64>,
    /// Rows per partition at each mark (row count of the whole source),
    /// so a bad file's rows can be cut off again.
    marks: Vec<(usize, Vec<u64>)>,
}

impl Parts {
    /// [`PARTS`] empty temp files.
    pub(super) fn new() -> std::io::Result<Parts> {
        let files = (0..PARTS)
            .map(|_| Ok(BufWriter::with_capacity(BUFFER, tempfile::tempfile()?)))
            .collect::<std::io::Result<_>>()?;
        Ok(Parts {
            files,
            rows: vec![0; PARTS],
            marks: Vec::new(),
        })
    }

    /// Append one row to partition `part`.
    pub(super) fn push(&mut self, part: u8, id: u32, t: i64, v: f64) -> std::io::Result<()> {
        let p = usize::from(part);
        let mut row = [0u8; 20];
        row[..4].copy_from_slice(&id.to_le_bytes());
        row[4..12].copy_from_slice(&t.to_le_bytes());
        row[12..].copy_from_slice(&v.to_le_bytes());
        self.files[p].write_all(&row)?;
        self.rows[p] += 1;
        Ok(())
    }

    /// Remember the partitions' sizes when the source had `at` rows.
    pub(super) fn mark(&mut self, at: usize) {
        self.mark_with(at, self.rows.clone());
    }

    /// Remember `sizes` as the partitions' sizes at `at` rows.
    pub(super) fn mark_with(&mut self, at: usize, sizes: Vec<u64>) {
        self.marks.push((at, sizes));
    }

    /// Cut every partition back to its size at the mark `at`.
    pub(super) fn rollback(&mut self, at: usize) -> std::io::Result<()> {
        let Some(i) = self.marks.iter().rposition(|m| m.0 == at) else {
            return Err(std::io::Error::other(format!("no spill mark at row {at}")));
        };
        let sizes = self.marks[i].1.clone();
        self.marks.truncate(i + 1);
        for (p, &size) in sizes.iter().enumerate() {
            let w = &mut self.files[p];
            w.flush()?;
            let f = w.get_mut();
            f.set_len(size * ROW_BYTES)?;
            f.seek(SeekFrom::End(0))?;
            self.rows[p] = size;
        }
        Ok(())
    }

    /// Rows per partition.
    pub(super) fn sizes(&self) -> &[u64] {
        &self.rows
    }

    /// All rows of partition `p` (in the order written), appended to the
    /// three columns; the partition's file is emptied.
    pub(super) fn take(
        &mut self,
        p: usize,
        ids: &mut Vec<u32>,
        ts: &mut Vec<i64>,
        values: &mut Vec<f64>,
    ) -> std::io::Result<()> {
        let w = &mut self.files[p];
        w.flush()?;
        let f = w.get_mut();
        f.seek(SeekFrom::Start(0))?;
        let mut left = usize::try_from(self.rows[p]).map_err(std::io::Error::other)?;
        let mut buf = vec![0u8; 4096 * 20];
        while left > 0 {
            let n = left.min(4096);
            let bytes = &mut buf[..n * 20];
            f.read_exact(bytes)?;
            for row in bytes.chunks_exact(20) {
                let (id, rest) = row.split_at(4);
                let (t, v) = rest.split_at(8);
                ids.push(u32::from_le_bytes(
                    id.try_into().map_err(std::io::Error::other)?,
                ));
                ts.push(i64::from_le_bytes(
                    t.try_into().map_err(std::io::Error::other)?,
                ));
                values.push(f64::from_le_bytes(
                    v.try_into().map_err(std::io::Error::other)?,
                ));
            }
            left -= n;
        }
        f.set_len(0)?;
        f.seek(SeekFrom::Start(0))?;
        self.rows[p] = 0;
        Ok(())
    }
}

/// A temp file that could not be written or read, as the source's error.
pub(super) fn spill_err(source_name: &str, e: impl std::fmt::Display) -> SourceError {
    SourceError::Read {
        source_name: source_name.to_string(),
        file: "its temporary spill files".into(),
        message: format!(
            "{e} (the source is larger than detection.memory_budget and is evaluated in chunks through temporary files; is the temp directory full?)"
        ),
    }
}

/// A source evaluated in chunks: its chunks cut into series, their rows on
/// disk until detection reads each back.
#[derive(Debug)]
pub struct SpilledSource {
    /// Source name.
    pub source: String,
    /// Key columns as in the export.
    pub key_columns: Vec<String>,
    /// The chunks; each series is in exactly one.
    pub chunks: Vec<Spilled>,
    /// Newest timestamp of any series of any chunk (what a whole batch's
    /// `newest` would be).
    pub newest: Option<i64>,
}

impl SpilledSource {
    /// Series in all chunks.
    pub fn series(&self) -> usize {
        self.chunks.iter().map(|c| c.series.len()).sum()
    }

    /// Rows in use by the series of all chunks.
    pub fn rows(&self) -> usize {
        self.chunks.iter().map(Spilled::rows).sum()
    }
}

/// One chunk of a source, sorted and cut into series, its times and values
/// on disk (raw little-endian: every time, then every value).
#[derive(Debug)]
pub struct Spilled {
    /// Source name.
    pub source: String,
    /// Key columns as in the export.
    pub key_columns: Vec<String>,
    /// The series, in key order, `start` within this chunk.
    pub series: Vec<SeriesInfo>,
    /// Rows in `file` (with any a series no longer uses).
    len: usize,
    file: File,
}

impl Spilled {
    /// Move a batch's rows to a temp file; its series stay in memory.
    pub fn write(batch: Batch) -> Result<Spilled, SourceError> {
        let source = batch.source.clone();
        Self::write_io(batch).map_err(|e| spill_err(&source, e))
    }

    fn write_io(batch: Batch) -> std::io::Result<Spilled> {
        let mut file = BufWriter::with_capacity(BUFFER, tempfile::tempfile()?);
        for t in &batch.ts {
            file.write_all(&t.to_le_bytes())?;
        }
        for v in &batch.values {
            file.write_all(&v.to_le_bytes())?;
        }
        let file = file
            .into_inner()
            .map_err(std::io::IntoInnerError::into_error)?;
        Ok(Spilled {
            source: batch.source,
            key_columns: batch.key_columns,
            series: batch.series,
            len: batch.ts.len(),
            file,
        })
    }

    /// Rows in use by the series.
    pub fn rows(&self) -> usize {
        self.series.iter().map(|s| s.len).sum()
    }

    /// The batch again.
    pub fn read(&self) -> Result<Batch, SourceError> {
        self.read_io().map_err(|e| spill_err(&self.source, e))
    }

    fn read_io(&self) -> std::io::Result<Batch> {
        let mut f = &self.file;
        f.seek(SeekFrom::Start(0))?;
        let mut r = std::io::BufReader::with_capacity(BUFFER, f);
        let mut word = [0u8; 8];
        let mut ts = Vec::with_capacity(self.len);
        for _ in 0..self.len {
            r.read_exact(&mut word)?;
            ts.push(i64::from_le_bytes(word));
        }
        let mut values = Vec::with_capacity(self.len);
        for _ in 0..self.len {
            r.read_exact(&mut word)?;
            values.push(f64::from_le_bytes(word));
        }
        Ok(Batch {
            source: self.source.clone(),
            key_columns: self.key_columns.clone(),
            ts,
            values,
            series: self.series.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_give_back_their_rows_and_roll_back_to_a_mark() {
        let mut parts = Parts::new().unwrap();
        parts.push(3, 7, 10, 1.5).unwrap();
        parts.push(5, 8, 20, 2.5).unwrap();
        parts.mark(2);
        parts.push(3, 7, 30, f64::NAN).unwrap();
        parts.push(5, 9, 40, 4.5).unwrap();
        parts.rollback(2).unwrap();
        parts.push(3, 7, 50, 5.5).unwrap();
        let (mut ids, mut ts, mut vs) = (Vec::new(), Vec::new(), Vec::new());
        parts.take(3, &mut ids, &mut ts, &mut vs).unwrap();
        assert_eq!((ids, ts, vs), (vec![7, 7], vec![10, 50], vec![1.5, 5.5]));
        assert_eq!(parts.sizes()[3], 0);
        assert_eq!(parts.sizes()[5], 1);
        assert!(parts.rollback(99).is_err(), "an unknown mark is refused");
    }
}
