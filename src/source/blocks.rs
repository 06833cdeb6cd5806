//! The fast reads of a file, in blocks appended as they arrive so the whole
//! export never sits in memory as a frame: a plain CSV cut into blocks at
//! record boundaries by us and parsed by Polars on [`PARSERS`] threads
//! ([`csv_blocks`]), or Polars' streaming engine over compressed CSV and
//! Parquet ([`stream_file`]). An error here only sends the file down the
//! whole read (`whole`), which words it.

use std::path::Path;

use polars::prelude::*;

use super::error::read_err;
use super::plan::{plan, scan_file};
use super::rows::Rows;
use super::schema::{self, IsoTimes};
use super::{Filled, Input, SourceError, add_filled, normalize, offsets, records};
use crate::config::SourceConfig;

/// Bytes of CSV handed to Polars at a time: enough for all its threads,
/// small enough that the file is never in memory whole. (On the scale set,
/// 8 MB loads faster than 4, 16 or 32 MB: the parse of one block and the
/// appending of the one before overlap more, and the peak is 50 MB lower.)
pub(super) const CSV_BLOCK: usize = 8 << 20;

/// Blocks parsed at once. A parse has stretches on one thread (cutting the
/// block into lines, the time column, the normalising plan) in which Polars'
/// other threads wait: with two blocks in flight they parse the other one.
/// (Scale set, 2 cores: the load 2.59-2.67 s -> 2.45-2.53 s; the peak grows
/// by about one block's frames, 385 -> 455 MB.) Within a memory budget, one.
const PARSERS: usize = 2;

/// Blocks handed to the parsers and not yet appended, at most (queued,
/// parsing, parsed); the reader holds one more, read ahead.
const IN_FLIGHT: usize = 2 * PARSERS;

/// The end (one past the newline) of the last complete record in `buf`,
/// which starts at a record boundary; a newline inside quotes is no boundary.
pub(crate) fn last_record_end(buf: &[u8]) -> Option<usize> {
    if !buf.contains(&b'"') {
        return buf.iter().rposition(|&b| b == b'\n').map(|i| i + 1);
    }
    let (mut quoted, mut end) = (false, None);
    for (i, &b) in buf.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => end = Some(i + 1),
            _ => {}
        }
    }
    end
}

/// The fast read of an uncompressed CSV: the schema comes from Polars'
/// inference on the first rows (as for a whole read), then the file is cut
/// into blocks at record boundaries; [`PARSERS`] threads parse blocks with
/// Polars (on all its threads) while the rows of the blocks before are
/// appended on this one, in file order. Reading the file ourselves keeps it
/// out of memory: Polars maps a whole local file, and a mapped page counts
/// as resident.
///
/// An error only says that the file must be read the slow way, which words
/// it (a ragged record, mixed UTC offsets: `records` finds the line).
/// The file is UTF-8 (a BOM is skipped with the header), its fields split at
/// `delimiter`.
pub(super) fn csv_blocks(
    cfg: &SourceConfig,
    path: &Path,
    label: &str,
    key_columns: &[String],
    rows: &mut Rows,
    block_bytes: usize,
    delimiter: u8,
) -> Result<Filled, SourceError> {
    let (schema, iso) = schema::text_time(cfg, schema::csv_schema(cfg, path, label, delimiter)?);
    let file = std::fs::File::open(path).map_err(|e| read_err(cfg, label, e))?;
    let parse = |block: Vec<u8>| parse_block(cfg, label, &schema, iso, delimiter, block);
    // blocks are numbered as cut; their frames come back in any order and
    // are appended in file order, as one parse would give them
    let (blocks_in, blocks_out) = std::sync::mpsc::sync_channel::<(usize, Vec<u8>)>(1);
    let blocks_out = std::sync::Arc::new(std::sync::Mutex::new(blocks_out));
    let (send, recv) = std::sync::mpsc::sync_channel::<(usize, Result<Parsed, SourceError>)>(1);
    // a block goes to the parsers only when the one IN_FLIGHT before it was
    // appended (the reader holds one more, read ahead): a slow parse never
    // leaves an unbounded queue of frames behind it
    let (appended, cut_more) = std::sync::mpsc::sync_channel::<()>(IN_FLIGHT);
    let mut rows_read = 0;
    let mut filled = Filled::new();
    let mut zones = offsets::ZoneCheck::new(cfg.timezone);
    std::thread::scope(|scope| -> Result<(), SourceError> {
        let cutter = Cutter {
            blocks: blocks_in,
            failed: send.clone(),
            cut_more,
        };
        scope.spawn(move || cutter.cut(cfg, label, file, block_bytes));
        let parsers = if rows.budgeted() { 1 } else { PARSERS };
        for _ in 0..parsers {
            let (blocks_out, send) = (blocks_out.clone(), send.clone());
            scope.spawn(move || {
                loop {
                    let next = blocks_out.lock().map(|r| r.recv());
                    let Ok(Ok((n, block))) = next else { return };
                    // a panic in a parse is that block's error (the file then
                    // goes down the whole read, as for any other): a parser
                    // that vanished would leave the append waiting for it
                    let parsed =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parse(block)))
                            .unwrap_or_else(|_| {
                                Err(read_err(cfg, label, "the CSV parser panicked"))
                            });
                    let failed = parsed.is_err();
                    if send.send((n, parsed)).is_err() || failed {
                        return;
                    }
                }
            });
        }
        drop((send, blocks_out));
        // (dropped when this returns, early or not: a reader waiting to cut
        // then stops)
        let appended = appended;
        let mut early = std::collections::BTreeMap::new();
        let mut next = 0;
        for (n, frame) in recv {
            early.insert(n, frame);
            while let Some(parsed) = early.remove(&next) {
                next += 1;
                let Parsed {
                    frame,
                    offsets,
                    filled: block_filled,
                } = parsed?;
                if offsets.is_some_and(|run| !zones.run(&run)) {
                    return Err(read_err(cfg, label, "UTC offsets no one timezone explains"));
                }
                add_filled(&mut filled, block_filled);
                rows_read += frame.height();
                rows.push(&frame, key_columns)
                    .map_err(|e| read_err(cfg, label, e))?;
                appended.send(()).ok();
            }
        }
        Ok(())
    })?;
    if rows_read == 0 {
        return Err(SourceError::Empty {
            source_name: cfg.name.clone(),
            file: label.to_string(),
        });
    }
    Ok(filled)
}

/// One block of [`csv_blocks`], parsed and normalised.
struct Parsed {
    frame: DataFrame,
    /// The UTC offsets of a zoned time column, to check in file order.
    offsets: Option<offsets::OffsetRun>,
    filled: Filled,
}

/// Parse and normalise one block of whole records (no header) with the
/// file's `schema`.
fn parse_block(
    cfg: &SourceConfig,
    label: &str,
    schema: &SchemaRef,
    iso: IsoTimes,
    delimiter: u8,
    block: Vec<u8>,
) -> Result<Parsed, SourceError> {
    let df = CsvReadOptions::default()
        .with_has_header(false)
        .with_schema(Some(schema.clone()))
        .map_parse_options(|o| o.with_separator(delimiter))
        .into_reader_with_file_handle(std::io::Cursor::new(block.as_slice()))
        .finish()
        .map_err(|e| read_err(cfg, label, e))?;
    // Polars fills a record with too few fields (or a blank line) with
    // nulls: only a block whose last column has empty cells is looked at
    if df.columns().last().is_some_and(|c| c.null_count() > 0)
        && records::has_short_record(&block, schema.len(), delimiter)
    {
        return Err(read_err(cfg, label, "a record with too few fields"));
    }
    drop(block);
    let (df, offsets) = match iso {
        IsoTimes::No => (df, None),
        IsoTimes::Naive | IsoTimes::Zoned => {
            normalize::iso_times(cfg, df, label, iso == IsoTimes::Zoned)?
        }
    };
    let (lf, wide) = plan(cfg, df.lazy(), label)?;
    let df = lf.collect().map_err(|e| read_err(cfg, label, e))?;
    let (frame, counts) = normalize::frame(cfg, df, label, &wide)?;
    Ok(Parsed {
        frame,
        offsets,
        filled: wide.into_iter().zip(counts).collect(),
    })
}

/// The reader thread of [`csv_blocks`]: what it sends blocks on, and waits on.
struct Cutter {
    /// Numbered blocks of whole records, to the parsers.
    blocks: std::sync::mpsc::SyncSender<(usize, Vec<u8>)>,
    /// A read error, straight to the append (as block `n`'s result).
    failed: std::sync::mpsc::SyncSender<(usize, Result<Parsed, SourceError>)>,
    /// One message per block appended: [`IN_FLIGHT`] blocks ahead at most.
    cut_more: std::sync::mpsc::Receiver<()>,
}

impl Cutter {
    /// Read `file` in `block_bytes` reads, cut each block after its last
    /// complete record (the rest is carried to the next), drop the header
    /// line, and send the blocks that hold anything. Returns at the end of
    /// the file, on a read error (sent), or when the other side hung up.
    fn cut(self, cfg: &SourceConfig, label: &str, mut file: std::fs::File, block_bytes: usize) {
        use std::io::Read;
        // the end of the last block after its last complete record
        let mut carry: Vec<u8> = Vec::new();
        let mut header = true;
        let mut n = 0;
        loop {
            // read into the block's own buffer, after the carried part:
            // no zeroing, no copy but of the carried part
            let mut block = Vec::with_capacity(carry.len() + block_bytes);
            block.append(&mut carry);
            let got = match (&mut file).take(block_bytes as u64).read_to_end(&mut block) {
                Ok(got) => got,
                Err(e) => {
                    self.failed.send((n, Err(read_err(cfg, label, e)))).ok();
                    return;
                }
            };
            // (`take` reads short only at the end of the file)
            let eof = got < block_bytes;
            let cut = if eof {
                block.len()
            } else {
                match last_record_end(&block) {
                    Some(end) => end,
                    None => {
                        carry = block;
                        continue;
                    }
                }
            };
            carry.extend_from_slice(&block[cut..]);
            block.truncate(cut);
            if header {
                // the header line: the schema already has the names
                let Some(end) = first_record_end(&block) else {
                    self.failed
                        .send((n, Err(read_err(cfg, label, "no header line"))))
                        .ok();
                    return;
                };
                block.drain(..end);
                header = false;
            }
            if block.iter().any(|b| !b.is_ascii_whitespace()) {
                if n >= IN_FLIGHT && self.cut_more.recv().is_err() {
                    return;
                }
                if self.blocks.send((n, block)).is_err() {
                    return;
                }
                n += 1;
            }
            if eof {
                return;
            }
        }
    }
}

/// The end (one past the newline) of the first record in `buf`.
fn first_record_end(buf: &[u8]) -> Option<usize> {
    let mut quoted = false;
    for (i, &b) in buf.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => return Some(i + 1),
            _ => {}
        }
    }
    None
}

/// The streaming read of [`read_file`]; any error sends the file down the
/// whole-file path, which words it.
pub(super) fn stream_file(
    cfg: &SourceConfig,
    input: &Input,
    label: &str,
    key_columns: &[String],
    rows: &mut Rows,
    delimiter: u8,
) -> Result<Filled, SourceError> {
    /// What the reader's callback shares with this function.
    struct Shared {
        rows: Rows,
        rows_read: usize,
        filled: Filled,
        failed: Option<SourceError>,
    }
    let lf = scan_file(cfg, input, label, DataType::Float64, false, delimiter)?;
    let (lf, wide) = plan(cfg, lf, label)?;
    let shared = Arc::new(std::sync::Mutex::new(Shared {
        rows: std::mem::take(rows),
        rows_read: 0,
        filled: Filled::new(),
        failed: None,
    }));
    let sink = {
        let shared = Arc::clone(&shared);
        let (cfg, label, key_columns) = (cfg.clone(), label.to_string(), key_columns.to_vec());
        PlanCallback::new(move |df: DataFrame| -> PolarsResult<bool> {
            let mut s = shared
                .lock()
                .map_err(|_| PolarsError::ComputeError("a reader thread panicked".into()))?;
            s.rows_read += df.height();
            match normalize::frame(&cfg, df, &label, &wide) {
                Ok((frame, counts)) => {
                    s.rows.push(&frame, &key_columns)?;
                    add_filled(&mut s.filled, wide.iter().cloned().zip(counts).collect());
                }
                Err(e) => s.failed = Some(e),
            }
            // true stops the reader
            Ok(s.failed.is_some())
        })
    };
    let result = lf
        .sink_batches(sink, true, None)
        .and_then(|lf| lf.collect_with_engine(Engine::Streaming));
    let mut s = shared
        .lock()
        .map_err(|_| read_err(cfg, label, "a reader thread panicked"))?;
    *rows = std::mem::take(&mut s.rows);
    result.map_err(|e| read_err(cfg, label, e))?;
    if let Some(e) = s.failed.take() {
        return Err(e);
    }
    if s.rows_read == 0 {
        return Err(SourceError::Empty {
            source_name: cfg.name.clone(),
            file: label.to_string(),
        });
    }
    Ok(std::mem::take(&mut s.filled))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::source::tests::{any_window, points, source};
    use crate::source::{load, whole::read_whole};

    /// The series of `path` as the whole-file read (Polars' own parse) gives
    /// them: what the block reader must match.
    fn whole_read(
        cfg: &SourceConfig,
        path: &Path,
        keys: &[String],
        delimiter: u8,
    ) -> crate::batch::Batch {
        let label = path.display().to_string();
        let mut whole = Rows::new(keys.len());
        whole
            .push(
                &read_whole(cfg, &Input::File(path.to_path_buf()), &label, delimiter)
                    .unwrap()
                    .0,
                keys,
            )
            .unwrap();
        whole.finish(cfg, keys.to_vec()).0
    }

    #[test]
    fn records_end_at_newlines_outside_quotes() {
        assert_eq!(last_record_end(b"a,b\nc,d\ne,"), Some(8));
        assert_eq!(last_record_end(b"a,\"x\ny\"\nc,\"d\n"), Some(8));
        assert_eq!(last_record_end(b"a,\"x\ny"), None);
        assert_eq!(first_record_end(b"h,\"i\nj\"\r\nk"), Some(9));
        assert_eq!(first_record_end(b"no newline"), None);
    }

    #[test]
    fn blocks_of_any_size_read_like_the_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.csv");
        // CRLF, quoted keys with commas and a newline, rows out of order, a duplicate
        let mut text = String::from("date,metric,region,value\r\n");
        for d in [3, 1, 2, 4, 5, 6, 7, 8, 9] {
            for (m, r) in [("a", "eu"), ("\"b, inc\"", "\"us\nwest\""), ("c", "eu")] {
                text.push_str(&format!("2024-01-{d:02},{m},{r},{}.5\r\n", d * 10));
            }
        }
        text.push_str("2024-01-02,a,eu,99\r\n");
        std::fs::write(&path, text).unwrap();
        let cfg = source(&path, "duplicates = \"last\"");
        let keys = normalize::key_columns(&cfg);
        let label = path.display().to_string();
        let want = whole_read(&cfg, &path, &keys, b',');
        assert_eq!(want.series.len(), 3);
        assert!(want.series[1].key.to_string().contains("us\nwest"));
        for block in [16, 37, 100, 1 << 20] {
            let mut rows = Rows::new(keys.len());
            csv_blocks(&cfg, &path, &label, &keys, &mut rows, block, b',').unwrap();
            let (got, problems) = rows.finish(&cfg, keys.clone());
            assert!(problems.is_empty(), "{problems:?}");
            assert_eq!(points(&got), points(&want), "block of {block} bytes");
        }
        // the duplicate of 2024-01-02 came last in the file and wins
        let a = &want.series[0];
        assert_eq!(want.values_of(a)[1], 99.0);
    }

    /// A CSV in `dir` of the rows `days` (`line(d, value)`), the values of
    /// the days in `bad` not numbers (`bad{d}`).
    fn csv_with_bad(
        dir: &Path,
        days: std::ops::Range<usize>,
        bad: &[usize],
        line: impl Fn(usize, &str) -> String,
    ) -> PathBuf {
        let mut text = String::from("date,metric,region,value\n");
        for d in days {
            let v = if bad.contains(&d) {
                format!("bad{d}")
            } else {
                d.to_string()
            };
            text.push_str(&line(d, &v));
        }
        let path = dir.join("m.csv");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// [`csv_blocks`] of the file at `path` (source defaults) in 64-byte blocks.
    fn read_in_small_blocks(path: &Path) -> Result<(), SourceError> {
        let cfg = source(path, "");
        let keys = normalize::key_columns(&cfg);
        let mut rows = Rows::new(keys.len());
        csv_blocks(
            &cfg,
            path,
            &path.display().to_string(),
            &keys,
            &mut rows,
            64,
            b',',
        )
        .map(drop)
    }

    #[test]
    fn a_bad_value_in_a_later_block_is_named_by_its_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = csv_with_bad(dir.path(), 1..21, &[17], |d, v| {
            format!("2024-01-{d:02},a,eu,{v}\n")
        });
        assert!(read_in_small_blocks(&path).is_err());
        let err = load(&source(&path, ""), &any_window()).unwrap_err();
        assert_eq!(err.len(), 1);
        let msg = err[0].to_string();
        assert!(msg.contains("row 17") && msg.contains("bad17"), "{msg}");
    }

    #[test]
    fn the_first_bad_block_in_the_file_is_the_one_reported() {
        // bad values in neighbouring blocks (about three rows to a 64-byte
        // block), parsed at once by the two parsers: whichever fails first,
        // the error is the first bad block's; and hundreds of blocks after
        // them do not keep the read going (the reader stops with the append)
        let dir = tempfile::tempdir().unwrap();
        let path = csv_with_bad(dir.path(), 0..600, &[3, 7, 11, 15], |d, v| {
            format!("2024-01-01,a{d},eu,{v}\n")
        });
        for _ in 0..20 {
            let msg = read_in_small_blocks(&path).unwrap_err().to_string();
            assert!(msg.contains("bad3"), "{msg}");
            assert!(
                !["bad7", "bad11", "bad15"].iter().any(|b| msg.contains(b)),
                "{msg}"
            );
        }
    }

    #[test]
    fn zoned_times_read_in_blocks_like_polars_reads_them() {
        // hourly over Berlin's autumn switch, each row at Berlin's offset,
        // series after series (the offset goes back at every new series);
        // with and without seconds, a fraction, `+01:00` and `+0100` forms
        let berlin: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
        let start = chrono::DateTime::parse_from_rfc3339("2024-10-26T20:00:00Z").unwrap();
        let mut text = String::from("date,metric,region,value\n");
        for m in ["a", "b"] {
            for h in 0..12 {
                let t = (start + chrono::Duration::hours(h)).with_timezone(&berlin);
                let at = match h % 3 {
                    0 => t.format("%Y-%m-%dT%H:%M:%S%:z").to_string(),
                    1 => t.format("%Y-%m-%d %H:%M:%S.250%z").to_string(),
                    _ => t.format("%Y-%m-%dT%H:%M%:z").to_string(),
                };
                text.push_str(&format!("{at},{m},eu,{h}\n"));
            }
        }
        text.push_str("2024-10-27T13:00:00+0100,c,eu,1\n2024-10-27T14:00:00.5+0100,c,eu,2\n");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.csv");
        std::fs::write(&path, &text).unwrap();
        for tz in ["UTC", "Europe/Berlin", "America/New_York"] {
            let cfg = source(
                &path,
                &format!("timezone = \"{tz}\"\nduplicates = \"last\""),
            );
            let keys = normalize::key_columns(&cfg);
            let label = path.display().to_string();
            let (schema, iso) = schema::csv_schema(&cfg, &path, &label, b',').unwrap();
            assert_eq!(iso, IsoTimes::Zoned);
            assert!(matches!(
                schema.get("date"),
                Some(DataType::Datetime(_, Some(_)))
            ));
            // Polars' own parse of the column
            let want = whole_read(&cfg, &path, &keys, b',');
            assert_eq!(want.series.len(), 3);
            for block in [40, 97, 1 << 20] {
                let mut rows = Rows::new(keys.len());
                csv_blocks(&cfg, &path, &label, &keys, &mut rows, block, b',').unwrap();
                let (got, _) = rows.finish(&cfg, keys.clone());
                assert_eq!(points(&got), points(&want), "{tz}, blocks of {block} bytes");
            }
        }
    }

    #[test]
    fn offsets_no_zone_explains_fail_the_blocks_and_are_named_by_line() {
        // Berlin's offsets, but one row (line 9) written an hour off
        let mut text = String::from("date,metric,region,value\n");
        for h in 0..20 {
            let off = if h == 7 { "+02:00" } else { "+01:00" };
            text.push_str(&format!("2024-01-10T{h:02}:00:00{off},a,eu,{h}\n"));
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.csv");
        std::fs::write(&path, &text).unwrap();
        assert!(read_in_small_blocks(&path).is_err());
        let err = load(&source(&path, ""), &any_window()).unwrap_err();
        let msg = err[0].to_string();
        assert!(
            msg.contains("line 9") && msg.contains("+01:00 (from line 2), +02:00 (from line 9)"),
            "{msg}"
        );
    }

    #[test]
    fn a_short_record_in_a_later_block_is_named_by_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = csv_with_bad(dir.path(), 1..21, &[], |d, v| {
            if d == 15 {
                format!("2024-01-{d:02},a,eu\n")
            } else {
                format!("2024-01-{d:02},a,eu,{v}\n")
            }
        });
        assert!(read_in_small_blocks(&path).is_err());
        let msg = load(&source(&path, ""), &any_window()).unwrap_err()[0].to_string();
        assert!(msg.contains("line 16 has 3 fields"), "{msg}");
        // an empty last cell is no short record
        let path = csv_with_bad(dir.path(), 1..21, &[], |d, v| {
            let v = if d == 15 { "" } else { v };
            format!("2024-01-{d:02},a,eu,{v}\n")
        });
        read_in_small_blocks(&path).unwrap();
    }

    #[test]
    fn semicolon_blocks_read_like_the_whole_file_and_name_a_short_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.csv");
        // quoted `;` and a newline in a key; the last column empty in places
        let mut text = String::from("date;metric;region;value\n");
        for d in 1..=9 {
            let v = if d % 3 == 0 {
                String::new()
            } else {
                format!("{d}.5")
            };
            text.push_str(&format!(
                "2024-01-0{d};a;\"x;\ny\";{v}\n2024-01-0{d};b;eu;{d}\n"
            ));
        }
        std::fs::write(&path, &text).unwrap();
        let cfg = source(&path, "");
        let keys = normalize::key_columns(&cfg);
        let label = path.display().to_string();
        let want = whole_read(&cfg, &path, &keys, b';');
        assert_eq!(want.series.len(), 2);
        for block in [20, 64, 1 << 20] {
            let mut rows = Rows::new(keys.len());
            csv_blocks(&cfg, &path, &label, &keys, &mut rows, block, b';').unwrap();
            let (got, _) = rows.finish(&cfg, keys.clone());
            assert_eq!(points(&got), points(&want), "blocks of {block} bytes");
        }
        std::fs::write(&path, format!("{text}2024-01-10;a;eu\n")).unwrap();
        let msg = load(&source(&path, ""), &any_window()).unwrap_err()[0].to_string();
        assert!(
            msg.contains("line 29 has 3 fields") && msg.contains("needs its semicolon"),
            "{msg}"
        );
    }
}
