//! Polars plans over one export: the lazy scan of a file or object
//! ([`scan_file`], values and times typed for the reading asked for), and the
//! selection that checks the configured columns and gives the long frame
//! `__ts, metric, dimensions…, __value` ([`plan`]; a wide export unpivoted).

use polars::prelude::*;

use super::error::read_err;
use super::{Input, METRIC, SourceError, TS, VALUE, dialect, s3, schema};
use crate::config::{Format, Layout, Location, MetricName, SourceConfig};
use crate::text;

/// The value columns of a file with this schema: the configured value column,
/// the listed metrics, or every column that is not time or a dimension.
pub(super) fn value_columns(cfg: &SourceConfig, schema: &Schema) -> Vec<String> {
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
pub(super) fn scan_file(
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

/// [`plan`], collected; an export without rows is an error.
pub(super) fn select(
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
pub(super) fn plan(
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
            if let Some(m) = metrics {
                for c in m {
                    need(c, "metrics")?;
                }
            }
            let names = value_columns(cfg, &schema);
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
                } => n == value_column || matches!(metric, MetricName::Column(c) if c == n),
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
