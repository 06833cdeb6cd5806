//! Exports → one normalised, sorted batch of series per source.
//!
//! Reads files, globs, URLs and S3 objects (CSV in any delimiter and
//! encoding, see [`dialect`]; Parquet, NDJSON; workbooks through calamine,
//! see [`workbook`]; long or wide layout) with Polars (CSV and Parquet
//! streamed in blocks), text dates and numbers as spreadsheets write them
//! ([`text`]), normalises each block to
//! `keys…, __ts (i64 ms, wall clock), __value (f64)`, keeps a series id, time
//! and value per row (`rows`), sorts once by series and time, and cuts the
//! rows into contiguous per-series slices for `detect`. Bad input becomes a [`SourceError`] naming
//! the source, file, column or series; problems confined to one series drop
//! that series only and are returned alongside the batch.

pub mod dialect;
pub mod header;
mod normalize;
mod offsets;
mod records;
mod rows;
pub mod s3;
mod schema;
mod spill;
pub mod sql;
pub mod workbook;

use std::path::{Path, PathBuf};
use std::time::Duration;

use polars::prelude::*;

use crate::batch::Batch;
use crate::config::{Format, Layout, Location, MetricName, SourceConfig};
use crate::model::SeriesKey;
use crate::text;
use rows::Rows;
use schema::IsoTimes;

pub use rows::{Chunks, Held};
pub use spill::{Spilled, SpilledSource};

/// Name of the normalised time column (ms since 1970, source wall clock).
pub const TS: &str = "__ts";
/// Name of the normalised value column.
pub const VALUE: &str = "__value";
/// Name of the metric key column in a normalised batch.
pub const METRIC: &str = "metric";

/// What [`SourceError::MissingColumn`] says after the source's name (also
/// `check-config`'s words, from the header alone: [`header`]).
fn missing_column(file: &str, column: &str, role: &str, available: &str) -> String {
    format!("`{file}` has no column `{column}` (configured as {role}); columns are: {available}")
}

/// A problem with one source.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// No file matched the path or glob.
    #[error("source `{source_name}`: no file matches `{pattern}`")]
    NoFiles {
        /// Source name.
        source_name: String,
        /// Path or glob.
        pattern: String,
    },
    /// A file or URL could not be read or parsed.
    #[error("source `{source_name}`: cannot read `{file}`: {message}")]
    Read {
        /// Source name.
        source_name: String,
        /// File or URL.
        file: String,
        /// What went wrong.
        message: String,
    },
    /// A configured column is absent.
    #[error(
        "source `{source_name}`: {}",
        missing_column(file, column, role, available)
    )]
    MissingColumn {
        /// Source name.
        source_name: String,
        /// File or URL.
        file: String,
        /// The missing column.
        column: String,
        /// Which config key names it.
        role: &'static str,
        /// Columns the file does have.
        available: String,
    },
    /// The export has no rows.
    #[error("source `{source_name}`: `{file}` is empty (no data rows)")]
    Empty {
        /// Source name.
        source_name: String,
        /// File or URL.
        file: String,
    },
    /// A column holds values of the wrong kind.
    #[error("source `{source_name}`: `{file}` column `{column}`: {message}")]
    BadColumn {
        /// Source name.
        source_name: String,
        /// File or URL.
        file: String,
        /// The column.
        column: String,
        /// What is wrong, with the first bad value.
        message: String,
    },
    /// A problem confined to one series (that series is skipped).
    #[error("source `{source_name}`: series `{series}`: {message}")]
    Series {
        /// Source name.
        source_name: String,
        /// The series, e.g. `orders{region=eu}`.
        series: String,
        /// What is wrong.
        message: String,
    },
    /// Some points of a series were unusable (NaN, infinite) and are treated as
    /// missing; the series is still evaluated. A warning: it does not fail a run.
    #[error("source `{source_name}`: series `{series}`: {message}")]
    BadValues {
        /// Source name.
        source_name: String,
        /// The series, e.g. `orders{region=eu}`.
        series: String,
        /// What was dropped.
        message: String,
    },
    /// A wide export's metric column without a single value: it gives no
    /// series. A warning: the other columns are used.
    #[error("source `{source_name}`: `{file}` column `{column}` has no values; no series")]
    EmptyColumn {
        /// Source name.
        source_name: String,
        /// The (first) file with the column.
        file: String,
        /// The column.
        column: String,
    },
    /// A URL did not answer in full within the source's `timeout_secs`.
    #[error(
        "source `{source_name}`: `{url}` did not deliver the export within {} s; raise `timeout_secs` for this source if the server is slow",
        timeout.as_secs()
    )]
    Timeout {
        /// Source name.
        source_name: String,
        /// The URL.
        url: String,
        /// The limit.
        timeout: Duration,
    },
    /// A URL's response is larger than the source's `max_download_bytes`.
    #[error(
        "source `{source_name}`: `{url}` is larger than {limit} bytes; raise `max_download_bytes` for this source if the export really is that big"
    )]
    TooLarge {
        /// Source name.
        source_name: String,
        /// The URL.
        url: String,
        /// The limit in bytes.
        limit: u64,
    },
}

impl SourceError {
    /// The source it is about.
    pub fn source_name(&self) -> &str {
        match self {
            SourceError::NoFiles { source_name, .. }
            | SourceError::Read { source_name, .. }
            | SourceError::MissingColumn { source_name, .. }
            | SourceError::Empty { source_name, .. }
            | SourceError::BadColumn { source_name, .. }
            | SourceError::Series { source_name, .. }
            | SourceError::BadValues { source_name, .. }
            | SourceError::EmptyColumn { source_name, .. }
            | SourceError::Timeout { source_name, .. }
            | SourceError::TooLarge { source_name, .. } => source_name,
        }
    }

    /// True for a problem of the export itself (a file or URL missing,
    /// empty, unreadable or of the wrong shape), as opposed to one series'
    /// data: the source's owner is told, like a late export.
    pub const fn is_export_problem(&self) -> bool {
        !matches!(
            self,
            SourceError::Series { .. }
                | SourceError::BadValues { .. }
                | SourceError::EmptyColumn { .. }
        )
    }

    /// True for problems that leave the data usable (reported, but a run with
    /// only warnings still succeeds).
    pub const fn is_warning(&self) -> bool {
        matches!(
            self,
            SourceError::BadValues { .. } | SourceError::EmptyColumn { .. }
        )
    }
}

impl From<SourceError> for Vec<SourceError> {
    fn from(e: SourceError) -> Self {
        vec![e]
    }
}

/// Leave out each series' rows dated more than one period after `now`
/// (ms, source wall clock): a `2099-01-01` typo must not count as fresh
/// data and silence the `late` check. Rows are sorted per series, so the
/// cut is a binary search; a series left empty is removed. Returns one
/// problem per series that lost rows.
pub fn drop_future(batch: &mut Batch, now: i64) -> Vec<SourceError> {
    drop_future_keyed(batch, now)
        .into_iter()
        .map(|(_, p)| p)
        .collect()
}

/// [`drop_future`], each problem with its series' key (to order
/// the problems of a chunked source like those of a whole one).
pub fn drop_future_keyed(batch: &mut Batch, now: i64) -> Vec<(SeriesKey, SourceError)> {
    let mut problems = Vec::new();
    let ts = &batch.ts;
    let source = &batch.source;
    batch.series.retain_mut(|s| {
        let series_ts = &ts[s.start..s.start + s.len];
        let limit = now.saturating_add(s.granularity.step_ms());
        let keep = series_ts.partition_point(|&t| t <= limit);
        if keep < s.len {
            let shown = |t: i64| crate::model::format_ts(t, s.granularity);
            problems.push((s.key.clone(), SourceError::Series {
                source_name: source.clone(),
                series: s.key.to_string(),
                message: format!(
                    "{} row(s) dated after the evaluation time {} plus one period, first {}, newest {}: left out (a wrong date in the export?)",
                    s.len - keep,
                    shown(now),
                    shown(series_ts[keep]),
                    shown(series_ts[s.len - 1]),
                ),
            }));
            s.len = keep;
        }
        s.len > 0
    });
    problems
}

/// Load one source. `Err` when nothing could be read; otherwise the batch and
/// the problems that left part of it out (a bad file of a glob, a bad series).
/// `window` is what a SQL source's `$from` / `$to` bind to; files ignore it.
pub fn load(
    cfg: &SourceConfig,
    window: &sql::Window,
) -> Result<(Batch, Vec<SourceError>), Vec<SourceError>> {
    let (rows, key_columns, mut problems) = read_rows(cfg, window, None)?;
    let (batch, series_problems) = rows.finish(cfg, key_columns);
    problems.extend(series_problems);
    Ok((batch, problems))
}

/// [`load`] within a memory budget: once more than `limit` rows are read
/// (`None`: never), the rows go to temporary files in partitions by series
/// key and come back as [`Chunks`] of whole series. The problems are those
/// of [`load`], except that a chunked source's series problems come with
/// each chunk ([`Chunks::take`]).
pub fn load_held(
    cfg: &SourceConfig,
    window: &sql::Window,
    limit: Option<usize>,
) -> Result<(Held, Vec<SourceError>), Vec<SourceError>> {
    let (rows, key_columns, mut problems) = read_rows(cfg, window, limit)?;
    match rows.into_held(cfg, key_columns) {
        Ok((held, series_problems)) => {
            problems.extend(series_problems);
            Ok((held, problems))
        }
        Err(e) => {
            problems.push(e);
            Err(problems)
        }
    }
}

/// The rows of every file (or the query) of a source, with the problems of
/// files left out; `Err` when nothing could be read.
fn read_rows(
    cfg: &SourceConfig,
    window: &sql::Window,
    limit: Option<usize>,
) -> Result<(Rows, Vec<String>, Vec<SourceError>), Vec<SourceError>> {
    if let Location::Sql(q) = &cfg.location {
        let label = cfg.location.label();
        let rows = sql::query(cfg, q, window).map_err(|e| vec![e])?;
        if rows.height() == 0 {
            return Err(vec![read_err(
                cfg,
                &label,
                format!(
                    "the query returned no rows for $from = {}, $to = {} (history_days = {})",
                    window.from, window.to, q.history_days
                ),
            )]);
        }
        let (df, wide) = select(cfg, rows.lazy(), &label).map_err(|e| vec![e])?;
        let (frame, counts) = normalize::frame(cfg, df, &label, &wide).map_err(|e| vec![e])?;
        let key_columns = normalize::key_columns(cfg);
        let mut rows = Rows::within(key_columns.len(), limit);
        rows.push(&frame, &key_columns)
            .map_err(|e| vec![read_err(cfg, &label, e)])?;
        let mut filled = SourceFilled::default();
        filled.add(&label, wide.into_iter().zip(counts).collect());
        return Ok((rows, key_columns, filled.empty_columns(cfg)));
    }
    // the downloaded copy of a URL lives until the rows are read, then is removed
    let (files, _download) = inputs(cfg)?;
    let key_columns = normalize::key_columns(cfg);
    let mut rows = Rows::within(key_columns.len(), limit);
    let mut problems = Vec::new();
    let mut read_any = false;
    let mut filled = SourceFilled::default();
    // glob files in name order: the row order decides `duplicates = "first"/"last"`
    for (input, label) in &files {
        let mark = rows.mark();
        match read_file(cfg, input, label, &key_columns, &mut rows) {
            Ok(counts) => {
                read_any = true;
                filled.add(label, counts);
            }
            Err(e) => {
                rows.rollback(mark);
                problems.push(e);
            }
        }
    }
    if !read_any {
        return Err(problems);
    }
    problems.extend(filled.empty_columns(cfg));
    Ok((rows, key_columns, problems))
}

/// The values a file held per metric column of a wide export (empty for a
/// long one), in column order.
type Filled = Vec<(String, usize)>;

/// Add one block's [`Filled`] to a file's (the same columns in the same order).
fn add_filled(file: &mut Filled, block: Filled) {
    if file.is_empty() {
        *file = block;
    } else {
        for (f, (_, n)) in file.iter_mut().zip(block) {
            f.1 += n;
        }
    }
}

/// The values per wide metric column over a source's files, with the first
/// file that had the column: a column with none gives no series, and is
/// reported (a warning) rather than left to vanish.
#[derive(Default)]
struct SourceFilled(PlIndexMap<String, (String, usize)>);

impl SourceFilled {
    fn add(&mut self, file: &str, counts: Filled) {
        for (column, n) in counts {
            self.0
                .entry(column)
                .or_insert_with(|| (file.to_string(), 0))
                .1 += n;
        }
    }

    fn empty_columns(&self, cfg: &SourceConfig) -> Vec<SourceError> {
        self.0
            .iter()
            .filter(|(_, (_, n))| *n == 0)
            .map(|(column, (file, _))| SourceError::EmptyColumn {
                source_name: cfg.name.clone(),
                file: file.clone(),
                column: column.clone(),
            })
            .collect()
    }
}

/// One unit of a source: a local file (or a URL's downloaded copy), or one
/// S3 object, read by Polars' cloud reader.
#[derive(Debug, Clone)]
enum Input {
    /// A local file.
    File(PathBuf),
    /// An `s3://bucket/key` URL.
    Object(String),
}

/// One file, downloaded URL or S3 object → its rows, appended to `rows`.
///
/// CSV and Parquet stream through Polars' streaming engine in blocks that are
/// normalised and appended as they arrive, so the whole export never sits in
/// memory as a frame. When that fails, the file is read again whole, the way
/// that names the bad row: CSV value columns are read as floats (integers in
/// the first rows and decimals later do not fail), then with value and time
/// columns as text so the error names the row and the value. Before that,
/// a plain CSV file's records are read for what Polars words without its
/// line (`records`: a ragged record, bytes that are not UTF-8, mixed UTC
/// offsets). The values found per wide metric column come back.
///
/// A plain CSV's delimiter and encoding come from its head and the source's
/// keys ([`dialect::read_as`]); one in another encoding than UTF-8 is read
/// from a UTF-8 copy (every reading above, the same lines).
fn read_file(
    cfg: &SourceConfig,
    input: &Input,
    label: &str,
    key_columns: &[String],
    rows: &mut Rows,
) -> Result<Filled, SourceError> {
    let local = match input {
        Input::File(path) => Some(path.as_path()),
        Input::Object(_) => None,
    };
    if local.is_some_and(|path| std::fs::metadata(path).is_ok_and(|m| m.len() == 0)) {
        return Err(SourceError::Empty {
            source_name: cfg.name.clone(),
            file: label.to_string(),
        });
    }
    // a plain CSV's dialect from its head; one in another encoding than
    // UTF-8 is read from a UTF-8 copy, held until its rows are read
    let (delimiter, utf8_copy, plain) = match (cfg.format, local) {
        (Format::Csv, Some(path)) => {
            let head = dialect::read_head(path).map_err(|e| read_err(cfg, label, e))?;
            if compressed_head(&head) {
                (cfg.dialect.delimiter.unwrap_or(b','), None, false)
            } else {
                let read = dialect::read_as(&cfg.dialect, &head);
                let copy = match read.transcode {
                    Some(encoding) => Some(utf8_copy(cfg, path, label, encoding)?),
                    None => None,
                };
                (read.delimiter, copy, true)
            }
        }
        _ => (cfg.dialect.delimiter.unwrap_or(b','), None, false),
    };
    let copied = utf8_copy.as_ref().map(|c| Input::File(c.path.clone()));
    let input = copied.as_ref().unwrap_or(input);
    let plain_csv = match input {
        Input::File(path) if plain => Some(path.as_path()),
        _ => None,
    };
    let mark = rows.mark();
    let fast = match (cfg.format, plain_csv) {
        (_, Some(path)) => csv_blocks(cfg, path, label, key_columns, rows, CSV_BLOCK, delimiter),
        (Format::Csv | Format::Parquet, _) => {
            stream_file(cfg, input, label, key_columns, rows, delimiter)
        }
        (Format::Ndjson | Format::Workbook, _) => Err(read_err(cfg, label, "read whole")),
    };
    if let Ok(filled) = fast {
        return Ok(filled);
    }
    rows.rollback(mark);
    if let Some(e) = plain_csv.and_then(|path| records::problem(cfg, path, label, delimiter)) {
        return Err(e);
    }
    let whole = read_whole(cfg, input, label, delimiter).and_then(|(frame, filled)| {
        rows.push(&frame, key_columns)
            .map_err(|e| read_err(cfg, label, e))?;
        Ok(filled)
    });
    match (whole, &cfg.location) {
        // the store's words become a message naming the bucket or key
        (Err(SourceError::Read { message, .. }), Location::S3(s3)) if is_store_error(&message) => {
            Err(s3::read_error(&cfg.name, s3, label, &message, cfg.timeout))
        }
        (whole, _) => whole,
    }
}

/// True for a read error that came from the object store (not from the data).
fn is_store_error(message: &str) -> bool {
    [
        "object-store",
        "object_store",
        "S3 error",
        "status 40",
        "status 50",
    ]
    .iter()
    .any(|m| message.contains(m))
}

/// Bytes of CSV handed to Polars at a time: enough for all its threads,
/// small enough that the file is never in memory whole. (On the scale set,
/// 8 MB loads faster than 4, 16 or 32 MB: the parse of one block and the
/// appending of the one before overlap more, and the peak is 50 MB lower.)
const CSV_BLOCK: usize = 8 << 20;

/// Blocks parsed at once. A parse has stretches on one thread (cutting the
/// block into lines, the time column, the normalising plan) in which Polars'
/// other threads wait: with two blocks in flight they parse the other one.
/// (Scale set, 2 cores: the load 2.59-2.67 s -> 2.45-2.53 s; the peak grows
/// by about one block's frames, 385 -> 455 MB.) Within a memory budget, one.
const PARSERS: usize = 2;

/// Blocks handed to the parsers and not yet appended, at most (queued,
/// parsing, parsed); the reader holds one more, read ahead.
const IN_FLIGHT: usize = 2 * PARSERS;

/// True when a file's first bytes are those of gzip or zstd (Polars
/// decompresses those itself).
fn compressed_head(head: &[u8]) -> bool {
    head.starts_with(&[0x1f, 0x8b]) || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
}

/// A UTF-8 copy of the CSV file at `path`, written in `encoding`, in a
/// private temp file ([`TempFile`]): the readers after this one then read
/// it like any UTF-8 export, and their lines are the file's lines.
fn utf8_copy(
    cfg: &SourceConfig,
    path: &Path,
    label: &str,
    encoding: &'static encoding_rs::Encoding,
) -> Result<TempFile, SourceError> {
    let mut copy = TempFile::new(".csv")
        .map_err(|e| read_err(cfg, label, format!("cannot create a temp file: {e}")))?;
    let mut from = std::fs::File::open(path).map_err(|e| read_err(cfg, label, e))?;
    dialect::transcode(
        &mut from,
        &mut std::io::BufWriter::with_capacity(1 << 20, &mut copy.file),
        encoding,
    )
    .map_err(|e| {
        read_err(
            cfg,
            label,
            format!("cannot copy it from {} to UTF-8: {e}", encoding.name()),
        )
    })?;
    Ok(copy)
}

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
fn csv_blocks(
    cfg: &SourceConfig,
    path: &Path,
    label: &str,
    key_columns: &[String],
    rows: &mut Rows,
    block_bytes: usize,
    delimiter: u8,
) -> Result<Filled, SourceError> {
    use std::io::Read;
    /// One block, parsed and normalised.
    struct Parsed {
        frame: DataFrame,
        /// The UTC offsets of a zoned time column, to check in file order.
        offsets: Option<offsets::OffsetRun>,
        filled: Filled,
    }
    let (schema, iso) = schema::text_time(cfg, schema::csv_schema(cfg, path, label, delimiter)?);
    let fields = schema.len();
    let mut file = std::fs::File::open(path).map_err(|e| read_err(cfg, label, e))?;
    let parse = |block: Vec<u8>| -> Result<Parsed, SourceError> {
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
            && records::has_short_record(&block, fields, delimiter)
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
    };
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
        let failed_read = send.clone();
        scope.spawn(move || {
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
                        failed_read.send((n, Err(read_err(cfg, label, e)))).ok();
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
                        failed_read
                            .send((n, Err(read_err(cfg, label, "no header line"))))
                            .ok();
                        return;
                    };
                    block.drain(..end);
                    header = false;
                }
                if block.iter().any(|b| !b.is_ascii_whitespace()) {
                    if n >= IN_FLIGHT && cut_more.recv().is_err() {
                        return;
                    }
                    if blocks_in.send((n, block)).is_err() {
                        return;
                    }
                    n += 1;
                }
                if eof {
                    return;
                }
            }
        });
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
fn stream_file(
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

/// One file read whole into the normalised frame `keys…, __ts, __value`,
/// trying the readings of [`read_file`] in turn (a CSV's fields split at
/// `delimiter`).
fn read_whole(
    cfg: &SourceConfig,
    input: &Input,
    label: &str,
    delimiter: u8,
) -> Result<(DataFrame, Filled), SourceError> {
    let attempt = |values: DataType, time_as_text: bool| {
        let lf = scan_file(cfg, input, label, values, time_as_text, delimiter)?;
        let (df, wide) = select(cfg, lf, label)?;
        let (frame, counts) = normalize::frame(cfg, df, label, &wide)?;
        Ok((frame, wide.into_iter().zip(counts).collect()))
    };
    match cfg.format {
        Format::Csv => attempt(DataType::Float64, false)
            .or_else(|_| attempt(DataType::String, false))
            .or_else(|e| match e {
                // a value was named: that is the message; else the time column is the suspect
                SourceError::BadColumn { ref column, .. } if column != &cfg.time_column => Err(e),
                _ => attempt(DataType::String, true),
            }),
        Format::Ndjson => attempt(DataType::Float64, false).or_else(|e| match e {
            SourceError::Read { .. } => match ndjson_line_error(cfg, input, label) {
                Some(broken) => Err(broken),
                // no broken line: a value that is not a number, named by the text path
                None => attempt(DataType::String, false),
            },
            e => Err(e),
        }),
        Format::Parquet => attempt(DataType::Float64, false),
        Format::Workbook => workbook_whole(cfg, input, label),
    }
}

/// A workbook's table (its sheet and header row as configured, or found)
/// through the whole-read path: selected and normalised as a frame. Its
/// messages name the file with the sheet, and a cell by the row the
/// spreadsheet shows (blank rows and the rows above the header counted).
fn workbook_whole(
    cfg: &SourceConfig,
    input: &Input,
    label: &str,
) -> Result<(DataFrame, Filled), SourceError> {
    let (sheet, header_row) = (cfg.dialect.sheet.as_deref(), cfg.dialect.header_row);
    // the file's own name (a URL's, without its query) for the reader's messages
    let name = label.split(['?', '#']).next().unwrap_or(label);
    let name = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let table = match (input, &cfg.location) {
        (Input::File(path), _) => workbook::read_named(path, name, sheet, header_row, None),
        (Input::Object(url), Location::S3(s3)) => {
            let bytes = s3::get(&cfg.name, s3, url, cfg.timeout)?;
            workbook::read_table_bytes(bytes, name, sheet, header_row, None)
        }
        (Input::Object(url), _) => Err(format!("{url} is not an S3 object")),
    };
    let table = table
        .and_then(|t| workbook::for_source(cfg, t))
        .map_err(|e| read_err(cfg, label, e))?;
    let at = format!("{label} (sheet \"{}\")", table.sheet);
    let (df, wide) = select(cfg, table.frame.lazy(), &at)?;
    let (frame, counts) = normalize::frame_numbered(cfg, df, &at, &wide, Some(&table.rows))?;
    Ok((frame, wide.into_iter().zip(counts).collect()))
}

/// [`ndjson_error`] of a local file; an object is not read line by line
/// here (the text path still names a bad value).
fn ndjson_line_error(cfg: &SourceConfig, input: &Input, label: &str) -> Option<SourceError> {
    match input {
        Input::File(path) => ndjson_error(cfg, path, label),
        Input::Object(_) => None,
    }
}

/// The first NDJSON line that is not a JSON object, as an error with its line number.
fn ndjson_error(cfg: &SourceConfig, path: &Path, label: &str) -> Option<SourceError> {
    use std::io::BufRead;
    let file = std::fs::File::open(path).ok()?;
    for (i, line) in std::io::BufReader::new(file).split(b'\n').enumerate() {
        let line = match String::from_utf8(line.ok()?) {
            Ok(line) => line,
            Err(e) => {
                let at = e.utf8_error().valid_up_to();
                return Some(read_err(
                    cfg,
                    label,
                    format!("line {}: {}", i + 1, records::not_utf8(e.as_bytes(), at)),
                ));
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let bad = match serde_json::from_str::<serde_json::Value>(&line) {
            Ok(v) if v.is_object() => continue,
            Ok(_) => "not a JSON object".to_string(),
            Err(e) => e.to_string(),
        };
        let mut shown: String = line.chars().take(60).collect();
        if shown.len() < line.len() {
            shown.push('…');
        }
        return Some(SourceError::Read {
            source_name: cfg.name.clone(),
            file: label.to_string(),
            message: format!(
                "line {}: {bad}: {shown:?} (each line must be one JSON object)",
                i + 1
            ),
        });
    }
    None
}

/// The value columns of a file with this schema: the configured value column,
/// the listed metrics, or every column that is not time or a dimension.
fn value_columns(cfg: &SourceConfig, schema: &Schema) -> Vec<String> {
    match &cfg.layout {
        Layout::Long { value_column, .. } => vec![value_column.clone()],
        Layout::Wide { metrics: Some(m) } => m.clone(),
        Layout::Wide { metrics: None } => schema
            .iter_names()
            .map(|n| n.to_string())
            .filter(|n| n != &cfg.time_column && !cfg.dimensions.contains(n))
            .collect(),
    }
}

/// A lazy scan of one file. CSV value columns are read as `values` (f64:
/// [`schema::value_type`]'s, by what was inferred; text: all as text), and
/// the time column as text when `time_as_text` (the slow paths that name bad
/// rows) or under a `time_format` (`normalize` applies it); a CSV's fields
/// are split at `delimiter`, or, for an S3 object of a source without a
/// `delimiter` key, at the delimiter of its header.
fn scan_file(
    cfg: &SourceConfig,
    input: &Input,
    label: &str,
    values: DataType,
    time_as_text: bool,
    delimiter: u8,
) -> Result<LazyFrame, SourceError> {
    let (shown, cloud) = match (input, &cfg.location) {
        (Input::Object(url), Location::S3(s3)) => {
            (url.clone(), Some(s3::cloud_options(s3, cfg.timeout)))
        }
        (Input::Object(url), _) => (url.clone(), None),
        (Input::File(path), _) => (path.display().to_string(), None),
    };
    let pl_path = PlRefPath::new(shown.as_str());
    // a time column with a format of its own is parsed from its text by `normalize`
    let time_as_text = time_as_text || cfg.dialect.time_format.is_some();
    match cfg.format {
        Format::Csv => {
            let reader = |delimiter: u8| {
                LazyCsvReader::new(pl_path.clone())
                    .with_cloud_options(cloud.clone())
                    .with_separator(delimiter)
                    .with_try_parse_dates(!time_as_text)
                    .with_infer_schema_length(Some(schema::INFER_ROWS))
            };
            let retype = |mut schema: Schema| {
                for c in value_columns(cfg, &schema) {
                    if let Some(dt) = schema.get_mut(c.as_str()) {
                        *dt = schema::value_type(cfg, dt, &values);
                    }
                }
                if time_as_text && let Some(dt) = schema.get_mut(cfg.time_column.as_str()) {
                    *dt = DataType::String;
                }
                Ok(schema)
            };
            match input {
                Input::File(_) => reader(delimiter)
                    .with_schema_modify(retype)
                    .and_then(LazyCsvReader::finish),
                // Polars' `with_schema_modify` opens its path as a local file:
                // an object's schema comes from a plain scan (Polars caches
                // the download), then its columns are retyped by name
                Input::Object(_) => reader(delimiter)
                    .finish()
                    .and_then(|mut lf| lf.collect_schema())
                    .and_then(|schema| {
                        // one column named like a whole header: another delimiter
                        let sniffed = match (cfg.dialect.delimiter, schema.len()) {
                            (None, 1) => schema
                                .iter_names()
                                .next()
                                .map(|n| dialect::header_delimiter(n))
                                .filter(|&d| d != delimiter),
                            _ => None,
                        };
                        match sniffed {
                            Some(d) => reader(d)
                                .finish()
                                .and_then(|mut lf| lf.collect_schema())
                                .map(|schema| (schema, d)),
                            None => Ok((schema, delimiter)),
                        }
                    })
                    .and_then(|(schema, d)| Ok((retype(schema.as_ref().clone())?, d)))
                    .and_then(|(schema, d)| {
                        reader(d)
                            .with_dtype_overwrite(Some(Arc::new(schema)))
                            .finish()
                    }),
            }
        }
        Format::Workbook => Err(PolarsError::ComputeError(
            "a workbook is not scanned by Polars".into(),
        )),
        Format::Parquet => LazyFrame::scan_parquet(
            pl_path,
            ScanArgsParquet {
                cloud_options: cloud,
                ..ScanArgsParquet::default()
            },
        ),
        Format::Ndjson => {
            // the schema is inferred from the first rows: learn the value
            // columns from it, then read them as `values` whatever they held there
            LazyJsonLineReader::new(pl_path.clone())
                .with_cloud_options(cloud.clone())
                .finish()
                .and_then(|mut lf| lf.collect_schema())
                .and_then(|schema| {
                    let over: Schema = value_columns(cfg, &schema)
                        .into_iter()
                        .filter(|c| schema.get(c.as_str()).is_some())
                        .map(|c| Field::new(c.as_str().into(), values.clone()))
                        .collect();
                    LazyJsonLineReader::new(pl_path)
                        .with_cloud_options(cloud)
                        .with_schema_overwrite(Some(Arc::new(over)))
                        .finish()
                })
        }
    }
    .map_err(|e| read_err(cfg, label, e))
}

fn read_err(cfg: &SourceConfig, file: &str, e: impl std::fmt::Display) -> SourceError {
    SourceError::Read {
        source_name: cfg.name.clone(),
        file: file.to_string(),
        message: e.to_string().lines().next().unwrap_or_default().to_string(),
    }
}

/// The units of a source, each with the name used in messages, and the
/// downloaded copy of a URL (gone when dropped).
type Inputs = (Vec<(Input, String)>, Option<TempFile>);

/// Resolve the files of a path or glob, list the S3 objects, or download the URL.
fn inputs(cfg: &SourceConfig) -> Result<Inputs, SourceError> {
    let p = match &cfg.location {
        Location::Url(u) => {
            let tmp = download(cfg, u)?;
            let file = Input::File(tmp.path.clone());
            return Ok((vec![(file, u.clone())], Some(tmp)));
        }
        Location::S3(s3) => {
            let objects = s3::objects(&cfg.name, s3, cfg.timeout)?;
            let units = objects
                .into_iter()
                .map(|url| (Input::Object(url.clone()), url))
                .collect();
            return Ok((units, None));
        }
        Location::Path(p) => p,
        Location::Sql(_) => return Ok((Vec::new(), None)),
    };
    let files: Vec<PathBuf> = if p.contains(['*', '?', '[']) {
        let g = glob::glob(p).map_err(|e| read_err(cfg, p, e))?;
        let mut v: Vec<PathBuf> = g.filter_map(Result::ok).filter(|f| f.is_file()).collect();
        v.sort();
        v
    } else {
        let f = PathBuf::from(p);
        if f.is_dir() {
            return Err(read_err(
                cfg,
                p,
                "is a directory; give a file, or a glob such as `dir/*.csv`",
            ));
        }
        if !f.exists() {
            return Err(read_err(cfg, p, "no such file"));
        }
        vec![f]
    };
    if files.is_empty() {
        return Err(SourceError::NoFiles {
            source_name: cfg.name.clone(),
            pattern: p.clone(),
        });
    }
    Ok((
        files
            .into_iter()
            .map(|f| {
                let label = f.display().to_string();
                (Input::File(f), label)
            })
            .collect(),
        None,
    ))
}

/// A private temp file, read by its `path` while it is held: a URL's
/// download, or the UTF-8 copy of a CSV in another encoding.
///
/// On Linux the file has no name at all (`O_TMPFILE`, or unlinked at once)
/// and is read through `/proc/self/fd`: nothing is left in the temp folder
/// however the process ends (SIGTERM kills `run --once`, `backfill` and
/// `check-sources`; the daemon may leave a run it gave up on). Elsewhere it
/// is a named temp file, removed when dropped.
#[derive(Debug)]
struct TempFile {
    /// Holds the file open (on Linux, alive).
    file: std::fs::File,
    /// Where Polars reads it.
    path: PathBuf,
    /// A named file's name, removed on drop.
    _named: Option<tempfile::TempPath>,
}

impl TempFile {
    /// A new, empty one (`suffix`: the format's extension,
    /// for a named one).
    fn new(suffix: &str) -> std::io::Result<TempFile> {
        #[cfg(target_os = "linux")]
        {
            let _ = suffix;
            let file = tempfile::tempfile()?;
            let path = PathBuf::from(format!(
                "/proc/self/fd/{}",
                std::os::fd::AsRawFd::as_raw_fd(&file)
            ));
            Ok(TempFile {
                file,
                path,
                _named: None,
            })
        }
        #[cfg(not(target_os = "linux"))]
        {
            let (file, named) = tempfile::Builder::new()
                .prefix("callout-")
                .suffix(suffix)
                .tempfile()?
                .into_parts();
            Ok(TempFile {
                file,
                path: named.to_path_buf(),
                _named: Some(named),
            })
        }
    }
}

/// True for a failure of an `https://` request that plain HTTP on the port
/// gives: the server hangs up on the TLS hello, or answers it in text
/// ("400 Bad Request"), which TLS reads as a corrupt message.
fn no_tls(e: &ureq::Error) -> bool {
    use std::io::ErrorKind;
    matches!(e, ureq::Error::Io(io) if matches!(
        io.kind(),
        ErrorKind::UnexpectedEof
            | ErrorKind::InvalidData
            | ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
    ))
}

/// Download a URL into a private temp file (Polars scans files, see
/// [`TempFile`]): created afresh (never an existing path or symlink),
/// streamed to disk, at most `max_download_bytes`, within `timeout_secs`.
fn download(cfg: &SourceConfig, url: &str) -> Result<TempFile, SourceError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(cfg.timeout))
        .build()
        .into();
    let timed_out = || SourceError::Timeout {
        source_name: cfg.name.clone(),
        url: url.to_string(),
        timeout: cfg.timeout,
    };
    let too_large = || SourceError::TooLarge {
        source_name: cfg.name.clone(),
        url: url.to_string(),
        limit: cfg.max_download_bytes,
    };
    let mut resp = agent.get(url).call().map_err(|e| match e {
        ureq::Error::Timeout(_) => timed_out(),
        e => match url.strip_prefix("https://") {
            Some(rest) if no_tls(&e) => read_err(
                cfg,
                url,
                format!(
                    "{e}: it looks like the server does not speak TLS on this port; if it serves plain HTTP, write the URL as `http://{rest}`"
                ),
            ),
            _ => read_err(cfg, url, e),
        },
    })?;
    if resp
        .body()
        .content_length()
        .is_some_and(|n| n > cfg.max_download_bytes)
    {
        return Err(too_large());
    }
    // a workbook's kind is read from its content; a named copy keeps the
    // URL's extension too (calamine's choice by name on other systems)
    let workbook_ext = url
        .split(['?', '#'])
        .next()
        .and_then(|u| u.rsplit_once('.'))
        .map(|(_, e)| format!(".{}", e.to_ascii_lowercase()))
        .filter(|e| [".xlsx", ".xlsm", ".xlsb", ".xls", ".ods"].contains(&e.as_str()));
    let suffix = match cfg.format {
        Format::Csv => ".csv",
        Format::Parquet => ".parquet",
        Format::Ndjson => ".ndjson",
        Format::Workbook => workbook_ext.as_deref().unwrap_or(".xlsx"),
    };
    let mut tmp = TempFile::new(suffix)
        .map_err(|e| read_err(cfg, url, format!("cannot create a temp file: {e}")))?;
    let body = resp.body_mut().as_reader();
    // one byte more than allowed tells "exactly the limit" from "too large"
    let mut limited = std::io::Read::take(body, cfg.max_download_bytes.saturating_add(1));
    let copied = std::io::copy(&mut limited, &mut tmp.file).map_err(|e| {
        let timeout = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<ureq::Error>())
            .is_some_and(|u| matches!(u, ureq::Error::Timeout(_)));
        if timeout || e.kind() == std::io::ErrorKind::TimedOut {
            timed_out()
        } else {
            read_err(cfg, url, e)
        }
    })?;
    if copied > cfg.max_download_bytes {
        return Err(too_large());
    }
    if copied == 0 {
        return Err(SourceError::Empty {
            source_name: cfg.name.clone(),
            file: url.to_string(),
        });
    }
    Ok(tmp)
}

/// [`plan`], collected; an export without rows is an error.
fn select(
    cfg: &SourceConfig,
    lf: LazyFrame,
    file: &str,
) -> Result<(DataFrame, Vec<String>), SourceError> {
    let (lf, wide_names) = plan(cfg, lf, file)?;
    let df = lf.collect().map_err(|e| read_err(cfg, file, e))?;
    if df.height() == 0 {
        return Err(SourceError::Empty {
            source_name: cfg.name.clone(),
            file: file.to_string(),
        });
    }
    Ok((df, wide_names))
}

/// Check the configured columns exist and plan the long-format frame
/// `time, key columns…, value` (wide exports are unpivoted here: one block of
/// rows per metric column, whose names are returned in block order).
fn plan(
    cfg: &SourceConfig,
    lf: LazyFrame,
    file: &str,
) -> Result<(LazyFrame, Vec<String>), SourceError> {
    let mut lf = lf;
    let schema = lf.collect_schema().map_err(|e| read_err(cfg, file, e))?;
    let available = || {
        schema
            .iter_names()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let need = |col: &str, role: &'static str| -> Result<(), SourceError> {
        if schema.get(col).is_none() {
            return Err(SourceError::MissingColumn {
                source_name: cfg.name.clone(),
                file: file.to_string(),
                column: col.to_string(),
                role,
                available: available(),
            });
        }
        Ok(())
    };
    repeated_column(cfg, &schema, file)?;
    need(&cfg.time_column, "time_column")?;
    for d in &cfg.dimensions {
        need(d, "dimensions")?;
    }
    let dims: Vec<Expr> = cfg.dimensions.iter().map(|d| col(d.as_str())).collect();
    let mut wide_names = Vec::new();
    let out = match &cfg.layout {
        Layout::Long {
            metric,
            value_column,
        } => {
            let metric = match metric {
                MetricName::Column(c) => {
                    need(c, "metric_column")?;
                    col(c.as_str())
                }
                MetricName::Fixed(name) => lit(name.as_str()),
            };
            need(value_column, "value_column")?;
            let mut exprs = vec![
                col(cfg.time_column.as_str()).alias(TS),
                metric.alias(METRIC),
            ];
            exprs.extend(dims);
            exprs.push(col(value_column.as_str()).alias(VALUE));
            lf.select(exprs)
        }
        Layout::Wide { metrics } => {
            let names: Vec<String> = match metrics {
                Some(m) => {
                    for c in m {
                        need(c, "metrics")?;
                    }
                    m.clone()
                }
                None => schema
                    .iter_names()
                    .map(|n| n.to_string())
                    .filter(|n| n != &cfg.time_column && !cfg.dimensions.contains(n))
                    .collect(),
            };
            if names.is_empty() {
                return Err(SourceError::BadColumn {
                    source_name: cfg.name.clone(),
                    file: file.to_string(),
                    column: cfg.time_column.clone(),
                    message: "wide export has no metric columns besides time and dimensions".into(),
                });
            }
            // one dtype for the union: floats when every column is numeric,
            // else text, which `normalize` parses naming the bad cell
            let numeric = names.iter().all(|n| {
                schema
                    .get(n.as_str())
                    .is_some_and(|d| d.is_primitive_numeric() || d == &DataType::Null)
            });
            let as_type = if numeric {
                DataType::Float64
            } else {
                DataType::String
            };
            // a column's metric is its header's slug (`Revenue ($)` → `revenue`)
            let slugs: Vec<String> = names.iter().map(|n| text::header(n).slug).collect();
            for (i, s) in slugs.iter().enumerate() {
                if let Some(j) = slugs[..i].iter().position(|t| t == s) {
                    return Err(SourceError::BadColumn {
                        source_name: cfg.name.clone(),
                        file: file.to_string(),
                        column: names[i].clone(),
                        message: format!(
                            "names the same metric {s:?} as column {:?}; list the columns to read in `metrics`",
                            names[j]
                        ),
                    });
                }
            }
            let parts: Vec<LazyFrame> = names
                .iter()
                .zip(&slugs)
                .map(|(m, slug)| {
                    let mut exprs = vec![
                        col(cfg.time_column.as_str()).alias(TS),
                        lit(slug.as_str()).alias(METRIC),
                    ];
                    exprs.extend(dims.iter().cloned());
                    exprs.push(col(m.as_str()).cast(as_type.clone()).alias(VALUE));
                    lf.clone().select(exprs)
                })
                .collect();
            wide_names = names;
            concat(parts, UnionArgs::default()).map_err(|e| read_err(cfg, file, e))?
        }
    };
    Ok((out, wide_names))
}

/// A header that names a column the source reads more than once: Polars
/// reads the first as `x` and renames the others `x_duplicated_0`, `_1`, …,
/// and which one was meant cannot be told.
fn repeated_column(cfg: &SourceConfig, schema: &Schema, file: &str) -> Result<(), SourceError> {
    let read = |n: &str| {
        n == cfg.time_column
            || cfg.dimensions.iter().any(|d| d == n)
            || match &cfg.layout {
                Layout::Long {
                    metric,
                    value_column,
                } => {
                    n == value_column
                        || matches!(metric, crate::config::MetricName::Column(c) if c == n)
                }
                Layout::Wide { metrics: Some(m) } => m.iter().any(|x| x == n),
                Layout::Wide { metrics: None } => true,
            }
    };
    for (i, name) in schema.iter_names().enumerate() {
        let Some((first, k)) = name.rsplit_once("_duplicated_") else {
            continue;
        };
        if k.parse::<usize>().is_err() || !read(first) {
            continue;
        }
        if let Some(at) = schema.index_of(first) {
            return Err(SourceError::BadColumn {
                source_name: cfg.name.clone(),
                file: file.to_string(),
                column: first.to_string(),
                message: format!(
                    "the header names it more than once (columns {} and {}), so which one to read cannot be told; rename or remove one of them",
                    at + 1,
                    i + 1
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Granularity;

    /// What a SQL source's placeholders bind to; files ignore it.
    fn any_window() -> sql::Window {
        let t = chrono::NaiveDate::from_ymd_opt(2024, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        sql::Window { from: t, to: t }
    }

    #[test]
    fn records_end_at_newlines_outside_quotes() {
        assert_eq!(last_record_end(b"a,b\nc,d\ne,"), Some(8));
        assert_eq!(last_record_end(b"a,\"x\ny\"\nc,\"d\n"), Some(8));
        assert_eq!(last_record_end(b"a,\"x\ny"), None);
        assert_eq!(first_record_end(b"h,\"i\nj\"\r\nk"), Some(9));
        assert_eq!(first_record_end(b"no newline"), None);
    }

    fn source(path: &Path, extra: &str) -> SourceConfig {
        let text = format!(
            "[[source]]\nname = \"s\"\npath = \"{}\"\ntime_column = \"date\"\ndimensions = [\"region\"]\n{extra}\n",
            path.display()
        );
        crate::config::compile_str(&text, Path::new("/tmp/c.toml"), &|_| None)
            .unwrap()
            .sources[0]
            .clone()
    }

    /// One series as comparable data: key, granularity, points.
    type Points = (String, Granularity, Vec<(i64, f64)>);

    /// A batch as comparable data.
    fn points(b: &Batch) -> Vec<Points> {
        b.series
            .iter()
            .map(|s| {
                let p = b
                    .ts_of(s)
                    .iter()
                    .copied()
                    .zip(b.values_of(s).iter().copied());
                (s.key.to_string(), s.granularity, p.collect())
            })
            .collect()
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
        let mut whole = Rows::new(keys.len());
        whole
            .push(
                &read_whole(&cfg, &Input::File(path.clone()), &label, b',')
                    .unwrap()
                    .0,
                &keys,
            )
            .unwrap();
        let (want, _) = whole.finish(&cfg, keys.clone());
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
            let mut whole = Rows::new(keys.len());
            whole
                .push(
                    &read_whole(&cfg, &Input::File(path.clone()), &label, b',')
                        .unwrap()
                        .0,
                    &keys,
                )
                .unwrap();
            let (want, _) = whole.finish(&cfg, keys.clone());
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

    /// An export as Excel writes one: rows of `date`, `metric`, `region`
    /// and `value` over four days for Köln and Düsseldorf (values `v(day)`),
    /// fields split at `sep`, lines ended by CRLF.
    fn excel_text(sep: char, v: impl Fn(usize) -> String) -> String {
        let mut text = format!("date{sep}metric{sep}region{sep}value\r\n");
        for d in 1..=4 {
            for city in ["Köln", "Düsseldorf"] {
                text.push_str(&format!(
                    "2024-01-0{d}{sep}orders{sep}{city}{sep}{}\r\n",
                    v(d)
                ));
            }
        }
        text
    }

    /// The series [`load`] reads from a file of `bytes` with the source keys `extra`.
    fn load_bytes(bytes: &[u8], extra: &str) -> Result<Vec<Points>, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("excel.csv");
        std::fs::write(&path, bytes).unwrap();
        let (batch, problems) = load(&source(&path, extra), &any_window()).map_err(|e| {
            e.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        })?;
        assert!(problems.is_empty(), "{problems:?}");
        Ok(points(&batch))
    }

    /// The keys of `points` and the values of its first series.
    fn keys_and_first(points: &[Points]) -> (Vec<String>, Vec<f64>) {
        let keys = points.iter().map(|(k, _, _)| k.clone()).collect();
        let first = points[0].2.iter().map(|&(_, v)| v).collect();
        (keys, first)
    }

    #[test]
    fn a_windows_1252_export_reads_with_its_encoding_key() {
        let text = excel_text(';', |d| format!("{d}0.5"));
        let (cp1252, _, lossy) = encoding_rs::WINDOWS_1252.encode(&text);
        assert!(!lossy && std::str::from_utf8(&cp1252).is_err());
        let got = load_bytes(&cp1252, "encoding = \"windows-1252\"").unwrap();
        let (keys, first) = keys_and_first(&got);
        assert_eq!(keys, ["orders{region=Düsseldorf}", "orders{region=Köln}"]);
        assert_eq!(first, [10.5, 20.5, 30.5, 40.5]);
        // without the key: the file, the line and the key to set
        let err = load_bytes(&cp1252, "").unwrap_err();
        assert!(
            err.contains("excel.csv")
                && err.contains("column `region`: line 2: byte 0xF6")
                && err.contains("encoding = \"windows-1252\""),
            "{err}"
        );
    }

    #[test]
    fn excel_unicode_text_reads_without_keys() {
        // "Unicode text": UTF-16LE with its BOM, tab-separated
        let text = excel_text('\t', |d| format!("{d}"));
        let bytes: Vec<u8> = [0xff, 0xfe]
            .into_iter()
            .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        let (keys, first) = keys_and_first(&load_bytes(&bytes, "").unwrap());
        assert_eq!(keys, ["orders{region=Düsseldorf}", "orders{region=Köln}"]);
        assert_eq!(first, [1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn a_utf8_bom_stays_out_of_the_first_column_name() {
        for sep in [',', ';', '\t'] {
            let text = format!("\u{feff}{}", excel_text(sep, |d| format!("{d}")));
            let (keys, first) = keys_and_first(&load_bytes(text.as_bytes(), "").unwrap());
            assert_eq!(keys.len(), 2, "{sep:?}");
            assert_eq!(first, [1.0, 2.0, 3.0, 4.0], "{sep:?}");
        }
        // and the block reader (the fast path) reads it itself
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.csv");
        std::fs::write(
            &path,
            format!("\u{feff}{}", excel_text(';', |d| format!("{d}"))),
        )
        .unwrap();
        let cfg = source(&path, "");
        let label = path.display().to_string();
        let (schema, _) = schema::csv_schema(&cfg, &path, &label, b';').unwrap();
        assert_eq!(schema.iter_names().next().map(|n| n.as_str()), Some("date"));
        let keys = normalize::key_columns(&cfg);
        let mut rows = Rows::new(keys.len());
        csv_blocks(&cfg, &path, &label, &keys, &mut rows, 64, b';').unwrap();
        assert_eq!(rows.finish(&cfg, keys).0.rows(), 8);
    }

    #[test]
    fn decimal_comma_value_columns_are_read_as_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.csv");
        // `1.250` is 1250 under a decimal comma, not the 1.25 Polars reads
        std::fs::write(&path, excel_text(';', |d| format!("{d}.250"))).unwrap();
        let label = path.display().to_string();
        let (schema, _) =
            schema::csv_schema(&source(&path, "decimal = \",\""), &path, &label, b';').unwrap();
        assert_eq!(schema.get("value"), Some(&DataType::String));
        let (schema, _) = schema::csv_schema(&source(&path, ""), &path, &label, b';').unwrap();
        assert_eq!(schema.get("value"), Some(&DataType::Float64));
        // text that Polars inferred stays text (then parsed cell by cell)
        std::fs::write(&path, excel_text(',', |d| format!("\"${d},000\""))).unwrap();
        let (schema, _) = schema::csv_schema(&source(&path, ""), &path, &label, b',').unwrap();
        assert_eq!(schema.get("value"), Some(&DataType::String));
    }

    #[test]
    fn a_semicolon_export_with_decimal_commas_loads() {
        let text = excel_text(';', |d| format!("{d}.234,5{d}"));
        let (keys, first) =
            keys_and_first(&load_bytes(text.as_bytes(), "decimal = \",\"").unwrap());
        assert_eq!(keys, ["orders{region=Düsseldorf}", "orders{region=Köln}"]);
        assert_eq!(first, [1234.51, 2234.52, 3234.53, 4234.54]);
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
        let mut whole = Rows::new(keys.len());
        let frame = read_whole(&cfg, &Input::File(path.clone()), &label, b';')
            .unwrap()
            .0;
        whole.push(&frame, &keys).unwrap();
        let (want, _) = whole.finish(&cfg, keys.clone());
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
