//! Exports → one normalised, sorted batch of series per source.
//!
//! Reads files, globs, URLs and S3 objects (CSV in any delimiter and
//! encoding, see [`dialect`]; Parquet, NDJSON; workbooks through calamine,
//! see [`workbook`]; long or wide layout) with Polars (CSV and Parquet
//! streamed in blocks), text dates and numbers as spreadsheets write them
//! (`crate::text`), normalises each block to
//! `keys…, __ts (i64 ms, wall clock), __value (f64)`, keeps a series id, time
//! and value per row (`rows`), sorts once by series and time, and cuts the
//! rows into contiguous per-series slices for `detect`. Bad input becomes a [`SourceError`] naming
//! the source, file, column or series; problems confined to one series drop
//! that series only and are returned alongside the batch.
//!
//! # Layout
//! - this file: the dispatch: [`load`] and [`load_held`] take each unit of a
//!   source (a file, a URL's download, an S3 object, the query) to its reader,
//!   the fast read first and the whole read when that fails.
//! - `error`: [`SourceError`]. `blocks`: the fast reads (a CSV in blocks,
//!   Polars' streaming engine); `whole`: the whole-file read that names the
//!   bad row; `plan`: the Polars scan and the column selection.
//! - readers: `http` (a URL's download into a `temp` file), [`s3`], [`sql`],
//!   [`workbook`]; a CSV's [`dialect`], [`header`], `records` and `schema`.
//! - steps: `normalize` and `offsets` (time and value columns), `rows` and
//!   `spill` (the rows held until the batch is cut, in memory or on disk).

mod blocks;
pub mod dialect;
mod error;
pub mod header;
mod http;
mod normalize;
mod offsets;
mod plan;
mod records;
mod rows;
pub mod s3;
mod schema;
mod spill;
pub mod sql;
mod temp;
mod whole;
pub mod workbook;

use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::batch::Batch;
use crate::config::{Format, Location, SourceConfig};
use crate::model::SeriesKey;
use blocks::{CSV_BLOCK, csv_blocks, stream_file};
use error::read_err;
use http::download;
use plan::select;
use rows::Rows;
use temp::TempFile;
use whole::read_whole;

pub(crate) use blocks::last_record_end;
pub use error::SourceError;
pub use rows::{Chunks, Held};
pub use spill::{Spilled, SpilledSource};

/// Name of the normalised time column (ms since 1970, source wall clock).
pub const TS: &str = "__ts";
/// Name of the normalised value column.
pub const VALUE: &str = "__value";
/// Name of the metric key column in a normalised batch.
pub const METRIC: &str = "metric";

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
    let source = batch.source.clone();
    batch.keep_prefix(
        |s, t| t <= now.saturating_add(s.granularity.step_ms()),
        |s, series_ts, kept| {
            let shown = |t: i64| crate::model::format_ts(t, s.granularity);
            problems.push((s.key.clone(), SourceError::Series {
                source_name: source.clone(),
                series: s.key.to_string(),
                message: format!(
                    "{} row(s) dated after the evaluation time {} plus one period, first {}, newest {}: left out (a wrong date in the export?)",
                    series_ts.len() - kept,
                    shown(now),
                    shown(series_ts[kept]),
                    shown(series_ts[series_ts.len() - 1]),
                ),
            }));
        },
    );
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Granularity;

    /// What a SQL source's placeholders bind to; files ignore it.
    pub(super) fn any_window() -> sql::Window {
        let t = chrono::NaiveDate::from_ymd_opt(2024, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        sql::Window { from: t, to: t }
    }

    pub(super) fn source(path: &Path, extra: &str) -> SourceConfig {
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
    pub(super) type Points = (String, Granularity, Vec<(i64, f64)>);

    /// A batch as comparable data.
    pub(super) fn points(b: &Batch) -> Vec<Points> {
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
}
