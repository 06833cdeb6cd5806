//! Exports → one normalised, sorted batch of series per source.
//!
//! Reads files, globs and URLs (CSV, Parquet, NDJSON; long or wide layout)
//! with Polars, normalises them to `keys…, __ts (i64 ms, wall clock), __value
//! (f64)`, sorts once by series and time, and cuts the frame into contiguous
//! per-series slices for `detect`. Bad input becomes a [`SourceError`] naming
//! the source, file, column or series; problems confined to one series drop
//! that series only and are returned alongside the batch.

mod normalize;

use std::path::PathBuf;
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
    /// Reading took longer than the source's timeout.
    #[error("source `{source_name}`: reading took longer than {0:?}", timeout)]
    Timeout {
        /// Source name.
        source_name: String,
        /// The limit.
        timeout: Duration,
    },
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
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.ts.len()
    }
}

/// Load one source. `Err` when nothing could be read; otherwise the batch and
/// the per-series problems (those series are left out).
pub fn load(cfg: &SourceConfig) -> Result<(Batch, Vec<SourceError>), SourceError> {
    let (lf, file) = scan(cfg)?;
    let df = select(cfg, lf, &file)?;
    normalize::normalize(cfg, df, &file)
}

fn read_err(cfg: &SourceConfig, file: &str, e: impl std::fmt::Display) -> SourceError {
    SourceError::Read {
        source_name: cfg.name.clone(),
        file: file.to_string(),
        message: e.to_string().lines().next().unwrap_or_default().to_string(),
    }
}

/// Resolve the files (or download the URL) and build one lazy scan.
fn scan(cfg: &SourceConfig) -> Result<(LazyFrame, String), SourceError> {
    let (paths, label): (Vec<PathBuf>, String) = match &cfg.location {
        Location::Path(p) => {
            let files: Vec<PathBuf> = if p.contains(['*', '?', '[']) {
                let g = glob::glob(p).map_err(|e| read_err(cfg, p, e))?;
                let mut v: Vec<PathBuf> =
                    g.filter_map(Result::ok).filter(|f| f.is_file()).collect();
                v.sort();
                v
            } else {
                let f = PathBuf::from(p);
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
            let label = if files.len() == 1 {
                files[0].display().to_string()
            } else {
                p.clone()
            };
            (files, label)
        }
        Location::Url(u) => (vec![download(cfg, u)?], u.clone()),
    };
    let mut frames = Vec::with_capacity(paths.len());
    for p in &paths {
        let shown = p.display().to_string();
        if std::fs::metadata(p).map(|m| m.len() == 0).unwrap_or(false) {
            return Err(SourceError::Empty {
                source_name: cfg.name.clone(),
                file: shown,
            });
        }
        let path = PlRefPath::new(shown.as_str());
        let lf = match cfg.format {
            Format::Csv => LazyCsvReader::new(path)
                .with_try_parse_dates(true)
                .with_infer_schema_length(Some(10_000))
                .finish(),
            Format::Parquet => LazyFrame::scan_parquet(path, ScanArgsParquet::default()),
            Format::Ndjson => LazyJsonLineReader::new(path).finish(),
        }
        .map_err(|e| read_err(cfg, &shown, e))?;
        frames.push((lf, shown));
    }
    if frames.len() == 1 {
        let (lf, shown) = frames.remove(0);
        return Ok((
            lf,
            if matches!(cfg.location, Location::Url(_)) {
                label
            } else {
                shown
            },
        ));
    }
    let lfs: Vec<LazyFrame> = frames.into_iter().map(|(lf, _)| lf).collect();
    let lf = concat(lfs, UnionArgs::default()).map_err(|e| read_err(cfg, &label, e))?;
    Ok((lf, label))
}

/// Download a URL to a file in the temp folder (Polars scans files).
fn download(cfg: &SourceConfig, url: &str) -> Result<PathBuf, SourceError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(cfg.timeout))
        .build()
        .into();
    let mut resp = agent.get(url).call().map_err(|e| read_err(cfg, url, e))?;
    let bytes = resp
        .body_mut()
        .with_config()
        .limit(8 * 1024 * 1024 * 1024)
        .read_to_vec()
        .map_err(|e| read_err(cfg, url, e))?;
    if bytes.is_empty() {
        return Err(SourceError::Empty {
            source_name: cfg.name.clone(),
            file: url.to_string(),
        });
    }
    let ext = match cfg.format {
        Format::Csv => "csv",
        Format::Parquet => "parquet",
        Format::Ndjson => "ndjson",
    };
    let safe: String = cfg
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let path = std::env::temp_dir().join(format!("callout-{}-{safe}.{ext}", std::process::id()));
    std::fs::write(&path, bytes).map_err(|e| read_err(cfg, url, e))?;
    Ok(path)
}

/// Check the configured columns exist and collect the long-format frame
/// `time, key columns…, value` (wide exports are unpivoted here).
fn select(cfg: &SourceConfig, lf: LazyFrame, file: &str) -> Result<DataFrame, SourceError> {
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
            let parts: Vec<LazyFrame> = names
                .iter()
                .map(|m| {
                    let mut exprs = vec![
                        col(cfg.time_column.as_str()).alias(TS),
                        lit(m.as_str()).alias(METRIC),
                    ];
                    exprs.extend(dims.iter().cloned());
                    exprs.push(col(m.as_str()).cast(DataType::String).alias(VALUE));
                    lf.clone().select(exprs)
                })
                .collect();
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
    Ok(df)
}
