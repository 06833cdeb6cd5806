//! Exports → one normalised, sorted batch of series per source.
//!
//! Reads files, globs and URLs (CSV, Parquet, NDJSON; long or wide layout)
//! with Polars, normalises them to `keys…, __ts (i64 ms, wall clock), __value
//! (f64)`, sorts once by series and time, and cuts the frame into contiguous
//! per-series slices for `detect`. Bad input becomes a [`SourceError`] naming
//! the source, file, column or series; problems confined to one series drop
//! that series only and are returned alongside the batch.

mod normalize;
pub mod sql;

use std::path::{Path, PathBuf};
use std::time::Duration;

use polars::prelude::*;

use crate::config::{Format, Layout, Location, SourceConfig};
use crate::model::{Granularity, SeriesKey};

pub use normalize::parse_time_str;

/// Name of the normalised time column (ms since 1970, source wall clock).
pub const TS: &str = "__ts";
/// Name of the normalised value column.
pub const VALUE: &str = "__value";
/// Name of the metric key column in a normalised batch.
pub const METRIC: &str = "metric";

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
        "source `{source_name}`: `{file}` has no column `{column}` (configured as {role}); columns are: {available}"
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
    /// True for problems that leave the data usable (reported, but a run with
    /// only warnings still succeeds).
    pub const fn is_warning(&self) -> bool {
        matches!(self, SourceError::BadValues { .. })
    }
}

impl From<SourceError> for Vec<SourceError> {
    fn from(e: SourceError) -> Self {
        vec![e]
    }
}

/// One series inside a [`Batch`]: its key and its rows `start..start + len`.
#[derive(Debug, Clone)]
pub struct SeriesInfo {
    /// Metric and dimension values.
    pub key: SeriesKey,
    /// First row in the batch.
    pub start: usize,
    /// Number of rows.
    pub len: usize,
    /// Declared or inferred spacing.
    pub granularity: Granularity,
}

/// A source's data, sorted by series then time, with per-series row ranges.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Source name.
    pub source: String,
    /// Key columns as in the export: `metric` (or the configured metric column) then dimensions.
    pub key_columns: Vec<String>,
    /// Timestamps (ms, wall clock), contiguous, sorted within each series.
    pub ts: Vec<i64>,
    /// Values, aligned with `ts`.
    pub values: Vec<f64>,
    /// The series, in key order.
    pub series: Vec<SeriesInfo>,
}

impl Batch {
    /// Timestamps of one series.
    pub fn ts_of(&self, s: &SeriesInfo) -> &[i64] {
        &self.ts[s.start..s.start + s.len]
    }
    /// Values of one series.
    pub fn values_of(&self, s: &SeriesInfo) -> &[f64] {
        &self.values[s.start..s.start + s.len]
    }
    /// Newest timestamp of any series.
    pub fn newest(&self) -> Option<i64> {
        self.series
            .iter()
            .filter_map(|s| self.ts_of(s).last().copied())
            .max()
    }
    /// Number of rows in use by the series.
    pub fn rows(&self) -> usize {
        self.series.iter().map(|s| s.len).sum()
    }

    /// Leave out each series' rows dated more than one period after `now`
    /// (ms, source wall clock): a `2099-01-01` typo must not count as fresh
    /// data and silence the `late` check. Rows are sorted per series, so the
    /// cut is a binary search; a series left empty is removed. Returns one
    /// problem per series that lost rows.
    pub fn drop_future(&mut self, now: i64) -> Vec<SourceError> {
        let mut problems = Vec::new();
        let ts = &self.ts;
        let source = &self.source;
        self.series.retain_mut(|s| {
            let series_ts = &ts[s.start..s.start + s.len];
            let limit = now.saturating_add(s.granularity.step_ms());
            let keep = series_ts.partition_point(|&t| t <= limit);
            if keep < s.len {
                let shown = |t: i64| crate::model::format_ts(t, s.granularity);
                problems.push(SourceError::Series {
                    source_name: source.clone(),
                    series: s.key.to_string(),
                    message: format!(
                        "{} row(s) dated after the evaluation time {} plus one period, first {}, newest {}: left out (a wrong date in the export?)",
                        s.len - keep,
                        shown(now),
                        shown(series_ts[keep]),
                        shown(series_ts[s.len - 1]),
                    ),
                });
                s.len = keep;
            }
            s.len > 0
        });
        problems
    }
}

/// Load one source. `Err` when nothing could be read; otherwise the batch and
/// the problems that left part of it out (a bad file of a glob, a bad series).
/// `window` is what a SQL source's `$from` / `$to` bind to; files ignore it.
pub fn load(
    cfg: &SourceConfig,
    window: &sql::Window,
) -> Result<(Batch, Vec<SourceError>), Vec<SourceError>> {
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
        let frame = normalize::frame(cfg, df, &label, &wide).map_err(|e| vec![e])?;
        return Ok(normalize::split(cfg, &frame, normalize::key_columns(cfg))?);
    }
    // the downloaded copy of a URL lives until the frames are collected, then is removed
    let (files, _download) = inputs(cfg)?;
    let mut frames = Vec::with_capacity(files.len());
    let mut problems = Vec::new();
    for (path, label) in &files {
        match read_file(cfg, path, label) {
            Ok(df) => frames.push(df),
            Err(e) => problems.push(e),
        }
    }
    // glob files in name order: the row order decides `duplicates = "first"/"last"`
    let mut rest = frames.into_iter();
    let Some(mut frame) = rest.next() else {
        return Err(problems);
    };
    for df in rest {
        frame
            .vstack_mut_owned(df)
            .map_err(|e| read_err(cfg, &files_label(cfg), e))?;
    }
    let (batch, series_problems) = normalize::split(cfg, &frame, normalize::key_columns(cfg))?;
    problems.extend(series_problems);
    Ok((batch, problems))
}

/// What to call the whole source in a message: its path, glob or URL.
fn files_label(cfg: &SourceConfig) -> String {
    cfg.location.label()
}

/// One file (or the downloaded URL) → the normalised frame `keys…, __ts, __value`.
///
/// CSV value columns are read as floats, so integers in the first rows and
/// decimals later do not fail. When Polars cannot read the file that way (a
/// non-numeric value, a date in another format), it is read again with time
/// and value columns as text so the error names the row and the value.
fn read_file(cfg: &SourceConfig, path: &Path, label: &str) -> Result<DataFrame, SourceError> {
    if std::fs::metadata(path)
        .map(|m| m.len() == 0)
        .unwrap_or(false)
    {
        return Err(SourceError::Empty {
            source_name: cfg.name.clone(),
            file: label.to_string(),
        });
    }
    let attempt = |values: DataType, time_as_text: bool| {
        let lf = scan_file(cfg, path, label, values, time_as_text)?;
        let (df, wide) = select(cfg, lf, label)?;
        normalize::frame(cfg, df, label, &wide)
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
            SourceError::Read { .. } => match ndjson_error(cfg, path, label) {
                Some(broken) => Err(broken),
                // no broken line: a value that is not a number, named by the text path
                None => attempt(DataType::String, false),
            },
            e => Err(e),
        }),
        Format::Parquet => attempt(DataType::Float64, false),
    }
}

/// The first NDJSON line that is not a JSON object, as an error with its line number.
fn ndjson_error(cfg: &SourceConfig, path: &Path, label: &str) -> Option<SourceError> {
    use std::io::BufRead;
    let file = std::fs::File::open(path).ok()?;
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.ok()?;
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

/// A lazy scan of one file. CSV value columns are read as `values`, and the
/// time column as text when `time_as_text` (the slow paths that name bad rows).
fn scan_file(
    cfg: &SourceConfig,
    path: &Path,
    label: &str,
    values: DataType,
    time_as_text: bool,
) -> Result<LazyFrame, SourceError> {
    let shown = path.display().to_string();
    let pl_path = PlRefPath::new(shown.as_str());
    match cfg.format {
        Format::Csv => LazyCsvReader::new(pl_path)
            .with_try_parse_dates(!time_as_text)
            .with_infer_schema_length(Some(10_000))
            .with_schema_modify(|mut schema: Schema| {
                for c in value_columns(cfg, &schema) {
                    if let Some(dt) = schema.get_mut(c.as_str()) {
                        *dt = values.clone();
                    }
                }
                if time_as_text && let Some(dt) = schema.get_mut(cfg.time_column.as_str()) {
                    *dt = DataType::String;
                }
                Ok(schema)
            })
            .and_then(LazyCsvReader::finish),
        Format::Parquet => LazyFrame::scan_parquet(pl_path, ScanArgsParquet::default()),
        Format::Ndjson => {
            // the schema is inferred from the first rows: learn the value
            // columns from it, then read them as `values` whatever they held there
            LazyJsonLineReader::new(pl_path.clone())
                .finish()
                .and_then(|mut lf| lf.collect_schema())
                .and_then(|schema| {
                    let over: Schema = value_columns(cfg, &schema)
                        .into_iter()
                        .filter(|c| schema.get(c.as_str()).is_some())
                        .map(|c| Field::new(c.as_str().into(), values.clone()))
                        .collect();
                    LazyJsonLineReader::new(pl_path)
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

/// The files of a source, each with the name used in messages, and the
/// downloaded copy of a URL (removed when dropped).
type Inputs = (Vec<(PathBuf, String)>, Option<tempfile::NamedTempFile>);

/// Resolve the files of a path or glob, or download the URL.
fn inputs(cfg: &SourceConfig) -> Result<Inputs, SourceError> {
    let p = match &cfg.location {
        Location::Url(u) => {
            let tmp = download(cfg, u)?;
            return Ok((vec![(tmp.path().to_path_buf(), u.clone())], Some(tmp)));
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
                (f, label)
            })
            .collect(),
        None,
    ))
}

/// Download a URL into a private temp file (Polars scans files): created
/// afresh with a random name (never an existing path or symlink), streamed to
/// disk, at most `max_download_bytes`, within `timeout_secs`.
fn download(cfg: &SourceConfig, url: &str) -> Result<tempfile::NamedTempFile, SourceError> {
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
        e => read_err(cfg, url, e),
    })?;
    if resp
        .body()
        .content_length()
        .is_some_and(|n| n > cfg.max_download_bytes)
    {
        return Err(too_large());
    }
    let suffix = match cfg.format {
        Format::Csv => ".csv",
        Format::Parquet => ".parquet",
        Format::Ndjson => ".ndjson",
    };
    let mut tmp = tempfile::Builder::new()
        .prefix("callout-")
        .suffix(suffix)
        .tempfile()
        .map_err(|e| read_err(cfg, url, format!("cannot create a temp file: {e}")))?;
    let body = resp.body_mut().as_reader();
    // one byte more than allowed tells "exactly the limit" from "too large"
    let mut limited = std::io::Read::take(body, cfg.max_download_bytes.saturating_add(1));
    let copied = std::io::copy(&mut limited, tmp.as_file_mut()).map_err(|e| {
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

/// Check the configured columns exist and collect the long-format frame
/// `time, key columns…, value` (wide exports are unpivoted here: one block of
/// rows per metric column, whose names are returned in block order).
fn select(
    cfg: &SourceConfig,
    lf: LazyFrame,
    file: &str,
) -> Result<(DataFrame, Vec<String>), SourceError> {
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
    need(&cfg.time_column, "time_column")?;
    for d in &cfg.dimensions {
        need(d, "dimensions")?;
    }
    let dims: Vec<Expr> = cfg.dimensions.iter().map(|d| col(d.as_str())).collect();
    let mut wide_names = Vec::new();
    let out = match &cfg.layout {
        Layout::Long {
            metric_column,
            value_column,
        } => {
            need(metric_column, "metric_column")?;
            need(value_column, "value_column")?;
            let mut exprs = vec![
                col(cfg.time_column.as_str()).alias(TS),
                col(metric_column.as_str()).alias(METRIC),
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
            let parts: Vec<LazyFrame> = names
                .iter()
                .map(|m| {
                    let mut exprs = vec![
                        col(cfg.time_column.as_str()).alias(TS),
                        lit(m.as_str()).alias(METRIC),
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
    let df = out.collect().map_err(|e| read_err(cfg, file, e))?;
    if df.height() == 0 {
        return Err(SourceError::Empty {
            source_name: cfg.name.clone(),
            file: file.to_string(),
        });
    }
    Ok((df, wide_names))
}
