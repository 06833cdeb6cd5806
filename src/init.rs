//! `callout init --from FILE…`: a first config for a person's own exports.
//!
//! Reads the head of each export (CSV in any delimiter and encoding,
//! Parquet, NDJSON, workbooks), infers its shape ([`infer`]: the time column,
//! how its dates are written and their spacing, long or wide, the metric and
//! value columns with their units, the dimensions, how numbers written as
//! text mark decimals) and writes a commented config ([`write_config`]) with
//! those sources, owners and the review to fill in.
//! What the head cannot settle is said in a `# CHECK:` comment next to the
//! choice made, never guessed silently; what only the person knows (owners,
//! review day, mail relay) is a `# TODO:` placeholder. The `[smtp]` host is
//! left commented out, so `check-config` names it until it is set, and passes
//! once it is.
//!
//! Must not: overwrite a file without `--force`; read more than the head.

use std::collections::{BTreeSet, HashSet};
use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::config::{Format, Layout, MetricName};
use crate::model::Granularity;
use crate::source::{dialect, workbook};
use crate::text::{self, Decimal, Number, TimeGuess};

/// Rows read from the head of each export.
pub const HEAD_ROWS: u32 = 10_000;

/// Bytes of a CSV export read for its head, at most.
const HEAD_BYTES: u64 = 8 << 20;

/// A text column with more distinct values than this in the head is worth a word.
const MANY_VALUES: usize = 1000;

/// Metric names listed as owner rules to fill in, at most.
const MAX_RULES: usize = 12;

/// Why `init` wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The config file exists and `--force` was not given.
    #[error("`{}` exists: not overwritten (give --force to replace it, or --output another file)", .0.display())]
    Exists(PathBuf),
    /// An export could not be read.
    #[error("cannot read `{}`: {message}", file.display())]
    Read {
        /// The export.
        file: PathBuf,
        /// Why.
        message: String,
    },
    /// An export has no column callout could use as time, or no numbers.
    #[error("`{}`: {message}", file.display())]
    Shape {
        /// The export.
        file: PathBuf,
        /// What is missing and what would be right.
        message: String,
    },
    /// Writing the config failed.
    #[error("cannot write `{}`: {source}", path.display())]
    Io {
        /// The config file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// How an export writes its values, as the `[[source]]` keys that say it;
/// each `None` (or the default) is a key left out.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reading {
    /// `delimiter`: a CSV's field delimiter when not `,`.
    pub delimiter: Option<u8>,
    /// `encoding`: a CSV's text encoding when neither UTF-8 nor named by a
    /// byte-order mark (which the reader finds itself).
    pub encoding: Option<&'static str>,
    /// `sheet`: the workbook's sheet read.
    pub sheet: Option<String>,
    /// `header_row`: the workbook's header row (1-based) when not the first.
    pub header_row: Option<usize>,
    /// `time_format`: how the time column is written when not ISO 8601.
    pub time_format: Option<String>,
    /// `decimal`: the decimal mark of numbers written as text.
    pub decimal: Decimal,
}

/// A wide export's metric column: its header, the metric's name and unit.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricColumn {
    /// The header as the export writes it (`Revenue ($)`), as `metrics` lists it.
    pub header: String,
    /// The metric's name, the header's slug (`revenue`).
    pub name: String,
    /// The unit from the header, else the one every cell writes (`$`, `%`).
    pub unit: Option<String>,
}

/// What the head of one export says about its shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Inferred {
    /// File format.
    pub format: Format,
    /// How its values are written (delimiter, encoding, sheet, dates, decimals).
    pub reading: Reading,
    /// The time column.
    pub time_column: String,
    /// The spacing of the rows (`30min`, `day` …), as `granularity` takes
    /// it; `None` when the spacing is none callout knows (it then infers it
    /// per series).
    pub granularity: Option<Granularity>,
    /// Long (`metric_column` + `value_column`) or wide (`metrics`).
    pub layout: Layout,
    /// A wide export's metric columns, in the order of `metrics`.
    pub metric_columns: Vec<MetricColumn>,
    /// Columns that split a metric into series.
    pub dimensions: Vec<String>,
    /// Metric names seen in the head (for owner rules).
    pub metric_names: Vec<String>,
    /// Choices the head could not settle, in words (written as `# CHECK:`).
    pub checks: Vec<String>,
    /// Rows read.
    pub rows: usize,
}

/// The head of an export and how its file writes it.
struct Head {
    frame: DataFrame,
    /// The CSV's delimiter (`,` for other formats).
    delimiter: u8,
    /// The CSV's encoding, when not UTF-8 and named by no byte-order mark.
    encoding: Option<&'static encoding_rs::Encoding>,
    /// The workbook's sheet and header row.
    sheet: Option<(String, usize)>,
}

/// Read the head of `path` (at most [`HEAD_ROWS`] rows).
fn read_head(path: &Path, format: Format) -> Result<Head, InitError> {
    let read_err = |message: String| InitError::Read {
        file: path.to_path_buf(),
        message,
    };
    let polars_err =
        |e: PolarsError| read_err(e.to_string().lines().next().unwrap_or_default().to_string());
    let plain = |frame| Head {
        frame,
        delimiter: b',',
        encoding: None,
        sheet: None,
    };
    let shown = path.display().to_string();
    let p = PlRefPath::new(shown.as_str());
    match format {
        Format::Csv => read_csv_head(path),
        Format::Parquet => LazyFrame::scan_parquet(p, ScanArgsParquet::default())
            .and_then(|lf| lf.limit(HEAD_ROWS).collect())
            .map(plain)
            .map_err(polars_err),
        Format::Ndjson => LazyJsonLineReader::new(p)
            .with_infer_schema_length(std::num::NonZeroUsize::new(HEAD_ROWS as usize))
            .finish()
            .and_then(|lf| lf.limit(HEAD_ROWS).collect())
            .map(plain)
            .map_err(polars_err),
        Format::Workbook => workbook::read_table(path, None, None, Some(HEAD_ROWS as usize))
            .map(|t| Head {
                frame: t.frame,
                delimiter: b',',
                encoding: None,
                sheet: Some((t.sheet, t.header_row)),
            })
            .map_err(read_err),
    }
}

/// The head of a CSV file: its dialect sniffed from its first bytes, the
/// text decoded to UTF-8, every column read as text (classified here).
fn read_csv_head(path: &Path) -> Result<Head, InitError> {
    let read_err = |message: String| InitError::Read {
        file: path.to_path_buf(),
        message,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(HEAD_BYTES).read_to_end(&mut bytes))
        .map_err(|e| read_err(e.to_string()))?;
    let whole = (bytes.len() as u64) < HEAD_BYTES;
    let sniffed = dialect::sniff(&bytes);
    let (bom, body) = match encoding_rs::Encoding::for_bom(&bytes) {
        Some((_, n)) => (true, bytes.get(n..).unwrap_or_default()),
        None => (false, bytes.as_slice()),
    };
    let mut text = dialect::decode(body, sniffed.encoding);
    if !whole {
        // whole records only: the head may end inside one
        let end = crate::source::last_record_end(text.as_bytes()).ok_or_else(|| {
            read_err(format!(
                "no line ends in its first {} MiB",
                HEAD_BYTES >> 20
            ))
        })?;
        text.truncate(end);
    }
    let frame = CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(0))
        .with_n_rows(Some(HEAD_ROWS as usize))
        .map_parse_options(|o| o.with_separator(sniffed.delimiter))
        .into_reader_with_file_handle(std::io::Cursor::new(text.into_bytes()))
        .finish()
        .map_err(|e| read_err(e.to_string().lines().next().unwrap_or_default().to_string()))?;
    Ok(Head {
        frame,
        delimiter: sniffed.delimiter,
        encoding: sniffed.encoding.filter(|_| !bom),
        sheet: None,
    })
}

/// A column of the head, classified.
enum Kind {
    /// Every value is a date or time: wall-clock ms, and how the values are
    /// written when not ISO 8601.
    Time(Vec<i64>, Option<TimeGuess>),
    /// Every value is a number; the unit every cell writes (`$`, `%`), if any.
    Number(Option<String>),
    /// Text (or anything else): the distinct values, in first-seen order, capped.
    Text(Vec<String>, usize),
}

/// A column as read: typed by the reader, or text to classify here.
enum Cells {
    Typed(Kind),
    Text(Vec<String>),
}

const TIME_NAMES: [&str; 16] = [
    "date",
    "time",
    "timestamp",
    "datetime",
    "day",
    "week",
    "hour",
    "ds",
    "period",
    "ts",
    "month",
    "minute",
    "wk",
    "datum",
    "dt",
    "ending",
];
const METRIC_NAMES: [&str; 9] = [
    "metric",
    "metric_name",
    "metrics",
    "kpi",
    "measure",
    "indicator",
    "series",
    "variable",
    "name",
];
const VALUE_NAMES: [&str; 5] = ["value", "val", "amount", "count", "total"];

fn named_like(name: &str, list: &[&str]) -> bool {
    let n = name.to_ascii_lowercase();
    list.contains(&n.as_str())
}

/// A header with a word that names a period or a time (`Week Ending`,
/// `order_date`, `Day`).
fn time_named(name: &str) -> bool {
    text::slug(name).split('_').any(|w| TIME_NAMES.contains(&w))
}

fn looks_like_id(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "id" || n.ends_with("_id") || n.ends_with("-id") || n.ends_with(" id")
}

/// A text time as the loader reads it ([`text::parse_time_str`]), in UTC:
/// init only needs the spacing between rows.
fn parse_time(s: &str) -> Option<i64> {
    text::parse_time_str(s, chrono_tz::UTC)
}

/// A column the reader typed, classified; its cells as text when it holds
/// text (or anything but dates and numbers).
fn cells(series: &Series) -> Cells {
    let dtype = series.dtype().clone();
    match dtype {
        DataType::Date => {
            let days = series.cast(&DataType::Int32).ok();
            let ms = days
                .as_ref()
                .and_then(|s| s.i32().ok())
                .map(|ca| {
                    ca.iter()
                        .flatten()
                        .map(|d| i64::from(d) * 86_400_000)
                        .collect()
                })
                .unwrap_or_default();
            return Cells::Typed(Kind::Time(ms, None));
        }
        DataType::Datetime(unit, _) => {
            let per_ms = match unit {
                TimeUnit::Nanoseconds => 1_000_000,
                TimeUnit::Microseconds => 1_000,
                TimeUnit::Milliseconds => 1,
            };
            let raw = series.cast(&DataType::Int64).ok();
            let ms = raw
                .as_ref()
                .and_then(|s| s.i64().ok())
                .map(|ca| ca.iter().flatten().map(|t| t / per_ms).collect())
                .unwrap_or_default();
            return Cells::Typed(Kind::Time(ms, None));
        }
        d if d.is_primitive_numeric() => return Cells::Typed(Kind::Number(None)),
        _ => {}
    }
    let Ok(text) = series.cast(&DataType::String) else {
        return Cells::Typed(Kind::Text(Vec::new(), 0));
    };
    let Ok(ca) = text.str() else {
        return Cells::Typed(Kind::Text(Vec::new(), 0));
    };
    Cells::Text(ca.iter().flatten().map(str::to_string).collect())
}

/// The times of `values` (distinct, none empty) and how they are written
/// (`None`: ISO 8601); `Err` says why they are not times.
fn times(values: &[&str], prefer_day_first: bool) -> Result<(Vec<i64>, Option<TimeGuess>), String> {
    let guess = text::infer_time_format(values, prefer_day_first)?;
    let ms = match &guess {
        None => values
            .iter()
            .map(|v| parse_time(v))
            .collect::<Option<Vec<i64>>>(),
        Some(g) => values
            .iter()
            .map(|v| g.format.parse(v, chrono_tz::UTC))
            .collect(),
    };
    ms.map(|ms| (ms, guess))
        .ok_or_else(|| "not every value reads as a time".to_string())
}

/// A text column classified: times (the values [`text::infer_time_format`]
/// reads), numbers (every cell but the missing ones reads as a number in
/// `decimal`: a metric or value column, never a dimension; a number column
/// named like time is tried as times first: `20250306`), else text. The
/// `String` says why a column named like time holds no times.
fn classify_text(
    name: &str,
    cells: &[String],
    decimal: Decimal,
    prefer_day_first: bool,
) -> (Kind, Option<String>) {
    let present: Vec<&str> = cells
        .iter()
        .map(|c| c.trim())
        .filter(|c| !matches!(text::parse_number(c, decimal), Number::Missing))
        .collect();
    let mut seen = HashSet::new();
    let distinct: Vec<&str> = present
        .iter()
        .copied()
        .filter(|v| seen.insert(*v))
        .collect();
    if distinct.is_empty() {
        return (Kind::Text(Vec::new(), 0), None);
    }
    let numeric = distinct
        .iter()
        .all(|c| matches!(text::parse_number(c, decimal), Number::Value(_)));
    let mut why_not_time = None;
    if !numeric || time_named(name) {
        match times(&distinct, prefer_day_first) {
            Ok((ms, guess)) => return (Kind::Time(ms, guess), None),
            Err(e) => why_not_time = time_named(name).then_some(e),
        }
    }
    if numeric {
        let units: BTreeSet<Option<String>> =
            distinct.iter().map(|c| text::number_unit(c)).collect();
        let unit = match units.into_iter().collect::<Vec<_>>().as_slice() {
            [Some(u)] => Some(u.clone()),
            _ => None,
        };
        return (Kind::Number(unit), None);
    }
    let n = distinct.len();
    let shown = distinct
        .into_iter()
        .take(MAX_RULES * 4)
        .map(str::to_string)
        .collect();
    (Kind::Text(shown, n), why_not_time)
}

/// The decimal mark of the numbers written as text in `columns` (name and
/// cells of each text column), from the cells only one mark reads (`12,5`,
/// `1.234,56` against `0.5`, `$1,234.56`); when nothing settles it (every
/// such cell reads either way, `1.234`), a comma in a `;`-separated file and
/// a point elsewhere, with a doubt for a `# CHECK:` line.
fn infer_decimal(columns: &[(&str, &[String])], delimiter: u8) -> (Decimal, Option<String>) {
    let (mut point, mut comma) = (0usize, 0usize);
    let mut ambiguous: Option<(&str, &str, f64, f64)> = None;
    for (name, cells) in columns {
        let read = |d| -> Vec<Number> { cells.iter().map(|c| text::parse_number(c, d)).collect() };
        let (p, c) = (read(Decimal::Point), read(Decimal::Comma));
        let numeric = |v: &[Number]| {
            v.iter().all(|n| !matches!(n, Number::Bad))
                && v.iter().any(|n| matches!(n, Number::Value(_)))
        };
        if !numeric(&p) && !numeric(&c) {
            continue;
        }
        for ((cell, p), c) in cells.iter().zip(&p).zip(&c) {
            match (p, c) {
                (Number::Value(a), Number::Value(b)) if a.to_bits() != b.to_bits() => {
                    ambiguous.get_or_insert((name, cell.trim(), *a, *b));
                }
                (Number::Value(_), Number::Bad) => point += 1,
                (Number::Bad, Number::Value(_)) => comma += 1,
                _ => {}
            }
        }
    }
    match (point, comma) {
        (0, 0) => {
            let Some((name, cell, as_point, as_comma)) = ambiguous else {
                return (Decimal::Point, None);
            };
            let semicolons = delimiter == b';';
            let decimal = if semicolons {
                Decimal::Comma
            } else {
                Decimal::Point
            };
            (
                decimal,
                Some(format!(
                    "decimal: `{cell}` in `{name}` is {as_comma} with a decimal comma or {as_point} with a decimal point, and no cell settles which; read with a decimal {}{}",
                    if semicolons { "comma" } else { "point" },
                    if semicolons {
                        " (as a ;-separated file usually writes them)"
                    } else {
                        ""
                    }
                )),
            )
        }
        (_, 0) => (Decimal::Point, None),
        (0, _) => (Decimal::Comma, None),
        (p, c) => {
            let decimal = if c > p {
                Decimal::Comma
            } else {
                Decimal::Point
            };
            (
                decimal,
                Some(format!(
                    "decimal: {p} cell(s) are written with a decimal point and {c} with a decimal comma; read with the {}, so the columns written the other way are not read as numbers",
                    if c > p { "comma" } else { "point" }
                )),
            )
        }
    }
}

/// The period of the most common spacing between distinct times, if it is one
/// callout knows (the same test as the config's `granularity`).
fn granularity(times: &[i64]) -> (Option<Granularity>, Option<i64>) {
    let distinct: BTreeSet<i64> = times.iter().copied().collect();
    let v: Vec<i64> = distinct.into_iter().collect();
    let mut counts: std::collections::BTreeMap<i64, usize> = std::collections::BTreeMap::new();
    for w in v.windows(2) {
        if let [a, b] = w {
            *counts.entry(b - a).or_default() += 1;
        }
    }
    let Some((&step, _)) = counts.iter().max_by_key(|(step, n)| (**n, -**step)) else {
        return (None, None);
    };
    (Granularity::from_step_ms(step), Some(step))
}

/// A column of dates or times: its name, wall-clock ms, and how the values
/// are written when not ISO 8601.
type TimeColumn = (String, Vec<i64>, Option<TimeGuess>);
/// A column of text: its name, distinct values (first seen first, capped) and their number.
type TextColumn = (String, Vec<String>, usize);

/// The columns of a head sorted by kind, with the decimal mark their text
/// numbers are read with.
struct Sorted {
    decimal: Decimal,
    times: Vec<TimeColumn>,
    /// Numeric columns, each with the unit every cell writes, if any.
    numbers: Vec<(String, Option<String>)>,
    texts: Vec<TextColumn>,
    /// Why text columns that look like times are not (for the error when none is).
    not_times: Vec<String>,
}

/// What the metric and value columns of an export are: its layout, the
/// metrics it holds, the text columns left as dimensions, and a wide
/// export's metric columns.
struct Shaped {
    layout: Layout,
    metric_names: Vec<String>,
    dim_texts: Vec<TextColumn>,
    metric_columns: Vec<MetricColumn>,
}

/// Infer the shape of the export at `path` from its head. `name` is its
/// source's name, which also names the metric of an export whose one value
/// column has a generic name (`date,value` in `signups.csv`: `signups`).
pub fn infer(path: &Path, name: &str) -> Result<Inferred, InitError> {
    let shape = |message: String| InitError::Shape {
        file: path.to_path_buf(),
        message,
    };
    let format = path
        .extension()
        .and_then(|e| e.to_str())
        .and_then(|e| Format::from_extension(&e.to_ascii_lowercase()))
        .ok_or_else(|| {
        shape(
            "cannot tell the format from the extension: use .csv, .parquet, .ndjson/.jsonl or a workbook (.xlsx, .xlsm, .xlsb, .xls, .ods)"
                .into(),
        )
    })?;
    let head = read_head(path, format)?;
    let df = &head.frame;
    let rows = df.height();
    if rows == 0 {
        return Err(shape(
            "no rows: init reads the head of an export to learn its columns".into(),
        ));
    }
    let mut checks = Vec::new();
    let Sorted {
        decimal,
        mut times,
        numbers,
        texts,
        not_times,
    } = sort_columns(df, head.delimiter, &mut checks);
    let time_idx = pick_time_column(&times, &not_times, df, &mut checks).map_err(shape)?;
    let (time_column, ts, guess) = times.swap_remove(time_idx);
    if let Some(doubt) = guess.as_ref().and_then(|g| g.doubt.as_ref()) {
        checks.push(format!("time_format: `{time_column}`: {doubt}"));
    }
    let granularity = granularity_of(&time_column, &ts, rows, &mut checks);
    // numeric columns named like identifiers are dimensions, said so
    let (ids, numbers): (Vec<_>, Vec<_>) = numbers.into_iter().partition(|(n, _)| looks_like_id(n));
    let ids: Vec<String> = ids.into_iter().map(|(n, _)| n).collect();
    for id in &ids {
        checks.push(format!(
            "`{id}` holds numbers but is named like an identifier: used as a dimension; if it is a metric, move it to the metrics"
        ));
    }
    if numbers.is_empty() {
        return Err(shape(format!(
            "no column holds numbers in the first {rows} rows besides `{time_column}`; callout watches numeric values"
        )));
    }
    let Shaped {
        layout,
        metric_names,
        dim_texts,
        metric_columns,
    } = shape_of(name, numbers, texts, &mut checks);
    let mut dimensions: Vec<String> = Vec::new();
    for (name, _, n) in &dim_texts {
        if *n > MANY_VALUES {
            checks.push(format!(
                "dimension `{name}` has {n} distinct values in the first {rows} rows: each is its own series; if it is an identifier or free text rather than a grouping, remove it from dimensions"
            ));
        }
        dimensions.push(name.clone());
    }
    dimensions.extend(ids);
    let reading = Reading {
        delimiter: (head.delimiter != b',').then_some(head.delimiter),
        encoding: head.encoding.map(encoding_rs::Encoding::name),
        header_row: head.sheet.as_ref().map(|(_, r)| *r).filter(|r| *r != 1),
        sheet: head.sheet.map(|(s, _)| s),
        time_format: guess.map(|g| g.format.spec().to_string()),
        decimal,
    };
    Ok(Inferred {
        format,
        reading,
        time_column,
        granularity,
        layout,
        metric_columns,
        dimensions,
        metric_names,
        checks,
        rows,
    })
}

/// Sort the head's columns into times, numbers and text: typed columns by
/// their type, text columns by their values, read with the decimal mark the
/// text numbers show (a doubt about it goes to `checks`).
fn sort_columns(df: &DataFrame, delimiter: u8, checks: &mut Vec<String>) -> Sorted {
    let read: Vec<(String, Cells)> = df
        .columns()
        .iter()
        .map(|c| (c.name().to_string(), cells(c.as_materialized_series())))
        .collect();
    let text_columns: Vec<(&str, &[String])> = read
        .iter()
        .filter_map(|(n, c)| match c {
            Cells::Text(cells) => Some((n.as_str(), cells.as_slice())),
            Cells::Typed(_) => None,
        })
        .collect();
    let (decimal, doubt) = infer_decimal(&text_columns, delimiter);
    checks.extend(doubt);
    let prefer_day_first = delimiter == b';' || decimal == Decimal::Comma;
    let mut sorted = Sorted {
        decimal,
        times: Vec::new(),
        numbers: Vec::new(),
        texts: Vec::new(),
        not_times: Vec::new(),
    };
    for (name, c) in read {
        let kind = match c {
            Cells::Typed(kind) => kind,
            Cells::Text(cells) => {
                let (kind, why) = classify_text(&name, &cells, decimal, prefer_day_first);
                if let Some(why) = why {
                    sorted.not_times.push(format!("`{name}`: {why}"));
                }
                kind
            }
        };
        match kind {
            Kind::Time(t, guess) => sorted.times.push((name, t, guess)),
            Kind::Number(unit) => sorted.numbers.push((name, unit)),
            Kind::Text(values, n) => sorted.texts.push((name, values, n)),
        }
    }
    sorted
}

/// The index of the time column in `times`: the only one, or the one named
/// like time (the choice goes to `checks`). `Err`: why there is none.
fn pick_time_column(
    times: &[TimeColumn],
    not_times: &[String],
    df: &DataFrame,
    checks: &mut Vec<String>,
) -> Result<usize, String> {
    match times.len() {
        0 => {
            let columns = df
                .get_column_names()
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let why = if not_times.is_empty() {
                String::new()
            } else {
                format!(" ({})", not_times.join("; "))
            };
            Err(format!(
                "no column holds dates or times in the first {} rows (columns: {columns}){why}; callout needs one, written as 2025-03-06 (with a time: 2025-03-06 14:30:00), 03/06/2025, 06.03.2025, Mar 6, 2025, 2025-03 or 2025-W10",
                df.height()
            ))
        }
        1 => Ok(0),
        _ => {
            let i = times
                .iter()
                .position(|(n, _, _)| time_named(n))
                .unwrap_or(0);
            let others: Vec<String> = times
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, (n, _, _))| format!("`{n}`"))
                .collect();
            checks.push(format!(
                "time_column: `{}` chosen; {} also hold(s) dates. Use the column that says which period a row's value belongs to",
                times[i].0,
                others.join(", ")
            ));
            Ok(i)
        }
    }
}

/// The granularity of the time column's values `ts`, if callout knows it;
/// when not, why it is left out goes to `checks`.
fn granularity_of(
    time_column: &str,
    ts: &[i64],
    rows: usize,
    checks: &mut Vec<String>,
) -> Option<Granularity> {
    let (granularity, step) = granularity(ts);
    if granularity.is_none() {
        match step {
            Some(ms) => checks.push(format!(
                "granularity: the most common spacing of `{time_column}` is {} s, which is no granularity callout knows (minutes under an hour that divide a day, such as 5min or 30min; hour, day or week); left out, so callout infers it per series",
                ms / 1000
            )),
            None => checks.push(format!(
                "granularity: `{time_column}` has a single distinct time in the first {rows} rows; left out, so callout infers it per series"
            )),
        }
    }
    granularity
}

/// The layout of the export from its numeric and text columns: long with
/// one metric named after the source (`name`) when its one value column has
/// a generic name, long with a metric column when a text column is named
/// like one, else wide.
fn shape_of(
    name: &str,
    numbers: Vec<(String, Option<String>)>,
    mut texts: Vec<TextColumn>,
    checks: &mut Vec<String>,
) -> Shaped {
    let (numbers, units): (Vec<String>, Vec<Option<String>>) = numbers.into_iter().unzip();
    let metric_text = texts
        .iter()
        .position(|(n, _, _)| named_like(n, &METRIC_NAMES));
    let generic_value = match numbers.as_slice() {
        [v] if named_like(v, &VALUE_NAMES) => Some(v.clone()),
        _ => None,
    };
    if let (None, Some(value_column)) = (metric_text, generic_value) {
        // one column of values called `value`: the metric is the file's, not `value`
        if !texts.is_empty() {
            let t: Vec<String> = texts.iter().map(|(n, _, _)| format!("`{n}`")).collect();
            checks.push(format!(
                "metric: one metric, named `{name}` after the file (its values are `{value_column}`), split by {}; if {} names the metric of each row instead, replace `metric` with metric_column set to it",
                t.join(", "),
                t.join(" or "),
            ));
        }
        Shaped {
            layout: Layout::Long {
                metric: MetricName::Fixed(name.to_string()),
                value_column,
            },
            metric_names: vec![name.to_string()],
            dim_texts: texts,
            metric_columns: Vec::new(),
        }
    } else if let Some(i) = metric_text {
        let (metric_column, names, _) = texts.remove(i);
        Shaped {
            layout: Layout::Long {
                metric: MetricName::Column(metric_column),
                value_column: pick_value_column(&numbers, checks),
            },
            metric_names: names,
            dim_texts: texts,
            metric_columns: Vec::new(),
        }
    } else {
        wide(numbers, units, texts, checks)
    }
}

/// A long export's value column among the numeric ones: the only one, or
/// the one named like a value (the others go to `checks`).
fn pick_value_column(numbers: &[String], checks: &mut Vec<String>) -> String {
    if numbers.len() == 1 {
        return numbers[0].clone();
    }
    let v = numbers
        .iter()
        .find(|n| named_like(n, &VALUE_NAMES))
        .unwrap_or(&numbers[0])
        .clone();
    let others: Vec<String> = numbers
        .iter()
        .filter(|n| **n != v)
        .map(|n| format!("`{n}`"))
        .collect();
    checks.push(format!(
        "value_column: `{v}` chosen; {} hold(s) numbers too and are not read (a long source reads one value column: copy this [[source]] with value_column set to watch another)",
        others.join(", ")
    ));
    v
}

/// A wide export: each numeric column a metric, named as the loader names
/// it (its header's words, the unit apart); two headers of one name go to
/// `checks`.
fn wide(
    numbers: Vec<String>,
    units: Vec<Option<String>>,
    texts: Vec<TextColumn>,
    checks: &mut Vec<String>,
) -> Shaped {
    if numbers.len() == 1 && !texts.is_empty() {
        let t: Vec<String> = texts.iter().map(|(n, _, _)| format!("`{n}`")).collect();
        checks.push(format!(
            "layout: read as wide with one metric, `{}`, split by {}; if {} names the metric of each row instead, use layout = \"long\" with metric_column set to it and value_column = \"{}\"",
            numbers[0],
            t.join(", "),
            t.join(" or "),
            numbers[0]
        ));
    }
    // the loader names a wide metric by its header's words, the unit apart
    let mut metric_columns = Vec::new();
    for (h, cells_unit) in numbers.iter().zip(units) {
        let named = text::header(h);
        metric_columns.push(MetricColumn {
            header: h.clone(),
            name: named.slug,
            unit: named.unit.or(cells_unit),
        });
    }
    let mut names: Vec<String> = Vec::new();
    for m in &metric_columns {
        if let Some(first) = metric_columns
            .iter()
            .find(|o| o.name == m.name && o.header != m.header)
            .filter(|_| !names.contains(&m.name))
        {
            checks.push(format!(
                "metrics: `{}` and `{}` are both named `{}`; rename one header in the export, or keep one of them in metrics",
                first.header, m.header, m.name
            ));
        }
        if !names.contains(&m.name) {
            names.push(m.name.clone());
        }
    }
    Shaped {
        layout: Layout::Wide {
            metrics: Some(numbers),
        },
        metric_names: names,
        dim_texts: texts,
        metric_columns,
    }
}

/// A TOML string literal.
fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn q_list(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| q(s)).collect();
    format!("[{}]", items.join(", "))
}

/// How long after a period ends its data usually arrives, as a starting
/// point. A week's export is expected the day after the week (Monday), so
/// the Tuesday run of a weekly [`Cadence`] finds it or calls it late.
fn delay_hours(granularity: Option<Granularity>) -> u32 {
    match granularity {
        Some(Granularity::Minutes(_)) => 1,
        Some(Granularity::Hour) => 2,
        Some(Granularity::Day | Granularity::Week) | None => 24,
    }
}

/// The review every cadence prepares for: Wednesday 14:00, explanations due
/// [`DUE_HOURS`] before (Wednesday 10:00).
const REVIEW_WEEKDAY: &str = "wed";
/// The review's time.
const REVIEW_TIME: &str = "14:00";
/// Explanations are due this long before the review: after the review
/// day's 07:00 run (so no scheduled run falls between the deadline and the
/// review, where its digest would be overdue when sent), and early enough
/// for the organiser to read the answers.
const DUE_HOURS: u32 = 4;

/// When the scheduled runs fire, from the exports' granularity. Every run
/// falls outside the hours from the deadline (Wednesday 10:00) to the review
/// (Wednesday 14:00), so a digest a scheduled run sends is never overdue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cadence {
    /// Every export is weekly: one run a week, Tuesday 07:00, after the
    /// week's export is due (Monday) and a day before the deadline.
    Weekly,
    /// Daily or finer data (or a spacing callout infers per series):
    /// weekday mornings, each day's data the morning after.
    Weekdays,
}

impl Cadence {
    fn of(sources: &[(PathBuf, String, Inferred)]) -> Cadence {
        if !sources.is_empty()
            && sources
                .iter()
                .all(|(_, _, i)| i.granularity == Some(Granularity::Week))
        {
            Cadence::Weekly
        } else {
            Cadence::Weekdays
        }
    }

    /// `schedule.cron` (with seconds).
    fn cron(self) -> &'static str {
        match self {
            Cadence::Weekly => "0 0 7 * * Tue",
            Cadence::Weekdays => "0 0 7 * * Mon-Fri",
        }
    }

    /// The cron line's comment.
    fn why(self) -> &'static str {
        match self {
            Cadence::Weekly => {
                "weekly data: Tuesday 07:00, after the week's export is due (Monday)"
            }
            Cadence::Weekdays => "weekday mornings: the day before is in",
        }
    }
}

/// A source name from a file name: lower case, letters, digits and `_`.
fn source_name(path: &Path, taken: &mut HashSet<String>) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let mut base: String = stem
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if base.is_empty() {
        base = "export".into();
    }
    let mut name = base.clone();
    let mut n = 2;
    while !taken.insert(name.clone()) {
        name = format!("{base}_{n}");
        n += 1;
    }
    name
}

/// The path to write for `file` in a config at `config`: relative to the
/// config's folder when the file is inside it, else absolute.
fn path_for(file: &Path, config: &Path) -> String {
    let abs = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    let dir = config
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let base = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    match abs.strip_prefix(&base) {
        Ok(rel) => rel.display().to_string(),
        Err(_) => abs.display().to_string(),
    }
}

/// A source's keys saying how its file is written: delimiter, encoding,
/// sheet and header row.
fn write_reading(o: &mut String, r: &Reading) {
    if let Some(d) = r.delimiter {
        let shown = if d == b'\t' {
            "tab".to_string()
        } else {
            char::from(d).to_string()
        };
        let _ = writeln!(
            o,
            "{:<34} # the fields' separator",
            format!("delimiter = {}", q(&shown))
        );
    }
    if let Some(e) = r.encoding {
        let _ = writeln!(
            o,
            "{:<34} # the text's encoding (not UTF-8)",
            format!("encoding = {}", q(&e.to_ascii_lowercase()))
        );
    }
    if let Some(sheet) = &r.sheet {
        let _ = writeln!(
            o,
            "{:<34} # the sheet read",
            format!("sheet = {}", q(sheet))
        );
    }
    if let Some(row) = r.header_row {
        let _ = writeln!(
            o,
            "{:<34} # the header's row as the sheet numbers it (the rows above are titles)",
            format!("header_row = {row}")
        );
    }
}

/// `time_column`, with `time_format` and `decimal` when the export needs them.
fn write_time_column(o: &mut String, inf: &Inferred) {
    let _ = writeln!(o, "time_column = {}", q(&inf.time_column));
    if let Some(f) = &inf.reading.time_format {
        let _ = writeln!(
            o,
            "{:<34} # how `{}` writes its dates (strftime)",
            format!("time_format = {}", q(f)),
            inf.time_column
        );
    }
    if inf.reading.decimal == Decimal::Comma {
        let _ = writeln!(
            o,
            "{:<34} # numbers are written 1.234,56",
            "decimal = \",\""
        );
    }
    if period_end(&inf.time_column, inf.granularity) {
        let _ = writeln!(
            o,
            "{:<34} # `{}` is each week's last day: the week is complete that night",
            "period_end = true", inf.time_column
        );
    }
}

/// True for a weekly time column named as the period's end ("Week Ending",
/// `week_end`, "Period End Date"): its dates are the weeks' last days.
fn period_end(time_column: &str, granularity: Option<Granularity>) -> bool {
    let words = text::slug(time_column);
    granularity == Some(Granularity::Week)
        && words
            .split('_')
            .any(|w| matches!(w, "ending" | "end" | "ended" | "thru" | "through"))
}

/// The names a wide export's metrics go by (each header's words) and their
/// units, when a header says more than its name.
fn write_metric_names(o: &mut String, metrics: &[MetricColumn]) {
    if metrics
        .iter()
        .all(|m| m.header == m.name && m.unit.is_none())
    {
        return;
    }
    let _ = writeln!(
        o,
        "# the metrics as callout names them (from their headers), with their units:"
    );
    for m in metrics {
        let _ = match &m.unit {
            Some(u) => writeln!(o, "#   {} ({}, in {u})", m.name, m.header),
            None => writeln!(o, "#   {} ({})", m.name, m.header),
        };
    }
}

/// The commented config for `sources` (each file with its source name and
/// what was inferred), to be written at `config`.
pub fn write_config(sources: &[(PathBuf, String, Inferred)], config: &Path) -> String {
    let mut o = String::new();
    let files: Vec<String> = sources
        .iter()
        .map(|(p, _, _)| p.display().to_string())
        .collect();
    let _ = writeln!(
        o,
        "# callout config written by `callout init` from {}.\n\
         # Fill in every `TODO`, read every `CHECK` (a choice the first rows could not\n\
         # settle), then: callout check-config --config {}\n\
         # Relative paths are relative to this file. Every key: config/callout.toml in\n\
         # callout's source, or the README.\n",
        files.join(", "),
        config.display()
    );
    let _ = writeln!(
        o,
        "[store]\npath = \"callout.db\"                # SQLite state: runs, findings, incidents, the mail queue\n"
    );
    let cadence = Cadence::of(sources);
    let _ = writeln!(
        o,
        "# When `callout run` evaluates (cron with seconds). A digest states the deadline\n\
         # of the next review; a run between a deadline and its review (here Wednesday\n\
         # 10:00-14:00) sends digests already overdue, so keep runs outside it if you\n\
         # change the schedule or the review.\n\
         [schedule]\n\
         {:<34} # TODO: after the exports are refreshed ({})\n\
         timezone = \"UTC\"                   # TODO: your IANA timezone, e.g. \"Europe/London\"\n",
        format!("cron = [{}]", q(cadence.cron())),
        cadence.why()
    );
    let _ = writeln!(
        o,
        "# The review owners prepare for; explanations are due `explanations_due_hours` before it.\n\
         [review]\n\
         name = \"WBR\"\n\
         weekday = {}                    # TODO: the review's day (mon … sun)\n\
         time = {}                     # TODO: the review's time\n\
         timezone = \"UTC\"                   # TODO: the review's timezone\n\
         {:<34} # due at 10:00 on the review's day, after its 07:00 run\n",
        q(REVIEW_WEEKDAY),
        q(REVIEW_TIME),
        format!("explanations_due_hours = {DUE_HOURS}")
    );
    let mut metric_names: Vec<String> = Vec::new();
    for (file, name, inf) in sources {
        let _ = writeln!(
            o,
            "# {}: {} layout, read from its first {} rows.",
            file.display(),
            match inf.layout {
                Layout::Long { .. } => "long",
                Layout::Wide { .. } => "wide",
            },
            inf.rows
        );
        for c in &inf.checks {
            let _ = writeln!(o, "# CHECK: {c}.");
        }
        let _ = writeln!(o, "[[source]]");
        let _ = writeln!(o, "name = {}", q(name));
        let _ = writeln!(o, "path = {}", q(&path_for(file, config)));
        let _ = writeln!(o, "format = {}", q(inf.format.name()));
        write_reading(&mut o, &inf.reading);
        match &inf.layout {
            Layout::Long {
                metric,
                value_column,
            } => {
                let _ = writeln!(o, "layout = \"long\"");
                write_time_column(&mut o, inf);
                match metric {
                    MetricName::Column(c) => {
                        let _ = writeln!(o, "metric_column = {}", q(c));
                    }
                    MetricName::Fixed(m) => {
                        let _ = writeln!(
                            o,
                            "{:<34} # every row is this metric (no column names it), named after the file",
                            format!("metric = {}", q(m))
                        );
                    }
                }
                let _ = writeln!(o, "value_column = {}", q(value_column));
            }
            Layout::Wide { metrics } => {
                let _ = writeln!(o, "layout = \"wide\"");
                write_time_column(&mut o, inf);
                let _ = writeln!(
                    o,
                    "metrics = {}",
                    q_list(metrics.as_deref().unwrap_or_default())
                );
                write_metric_names(&mut o, &inf.metric_columns);
            }
        }
        let _ = writeln!(o, "dimensions = {}", q_list(&inf.dimensions));
        if let Some(g) = inf.granularity {
            let _ = writeln!(o, "granularity = {}", q(&g.to_string()));
        }
        let _ = writeln!(
            o,
            "timezone = \"UTC\"                   # TODO: the timezone of times without an offset"
        );
        let _ = writeln!(
            o,
            "expected_delay_hours = {}           # TODO: how long after a period ends its data arrives",
            delay_hours(inf.granularity)
        );
        let _ = writeln!(
            o,
            "# owner = \"Data team <data@example.com>\"   # told when this export is late (default: owners.default)\n"
        );
        for m in &inf.metric_names {
            if !metric_names.contains(m) {
                metric_names.push(m.clone());
            }
        }
    }
    let _ = writeln!(
        o,
        "# Who explains what: the first matching rule (metric glob) wins, then the default.\n\
         [owners]\n\
         default = \"Metrics owner <owner@example.com>\"   # TODO: who explains what no rule covers"
    );
    for m in metric_names.iter().take(MAX_RULES) {
        let _ = writeln!(
            o,
            "# [[owners.rule]]\n# match = {}\n# email = \"TODO <todo@example.com>\"",
            q(m)
        );
    }
    if metric_names.len() > MAX_RULES {
        let _ = writeln!(
            o,
            "# … and {} more metric(s); a glob such as \"revenue*\" covers several",
            metric_names.len() - MAX_RULES
        );
    }
    let _ = writeln!(
        o,
        "\n# Outgoing mail. `check-config` reports smtp.host missing until you uncomment and set it.\n\
         # The password is never written here: password_env or password_file.\n\
         [smtp]\n\
         # host = \"smtp.example.com\"        # TODO: your mail relay\n\
         port = 587\n\
         security = \"starttls\"              # starttls | tls | none\n\
         # username = \"callout\"\n\
         # password_env = \"CALLOUT_SMTP_PASSWORD\"\n\
         from = \"callout <callout@example.com>\"   # TODO: the sender owners see"
    );
    o
}

/// `callout init`: infer every export, write the config at `output` (never
/// over an existing file without `force`). Returns a summary line.
pub fn run(from: &[PathBuf], output: &Path, force: bool) -> Result<String, InitError> {
    if output.exists() && !force {
        return Err(InitError::Exists(output.to_path_buf()));
    }
    let mut sources = Vec::new();
    let mut taken = HashSet::new();
    for f in from {
        let name = source_name(f, &mut taken);
        let inferred = infer(f, &name)?;
        sources.push((f.clone(), name, inferred));
    }
    let text = write_config(&sources, output);
    let io = |source| InitError::Io {
        path: output.to_path_buf(),
        source,
    };
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true);
    if force {
        opts.create(true).truncate(true);
    } else {
        // never over a file that appeared since the check above
        opts.create_new(true);
    }
    {
        use std::io::Write as _;
        let mut f = opts.open(output).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                InitError::Exists(output.to_path_buf())
            } else {
                io(e)
            }
        })?;
        f.write_all(text.as_bytes()).map_err(io)?;
    }
    let checks: usize = sources.iter().map(|(_, _, i)| i.checks.len()).sum();
    let described: Vec<String> = sources
        .iter()
        .map(|(p, _, i)| {
            format!(
                "{} ({}, {})",
                p.display(),
                match i.layout {
                    Layout::Long { .. } => "long",
                    Layout::Wide { .. } => "wide",
                },
                i.granularity
                    .map_or_else(|| "granularity left to callout".into(), |g| g.to_string())
            )
        })
        .collect();
    Ok(format!(
        "init: wrote `{}` for {}; {checks} choice(s) to check (`# CHECK:`). Next: fill in the `TODO`s (owners, review, smtp host), then `callout check-config --config {}`",
        output.display(),
        described.join(", "),
        output.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spacing_names_the_granularity() {
        let day = 86_400_000;
        let named = |t: &[i64]| granularity(t).0.map(|g| g.to_string());
        assert_eq!(named(&[0, day, 2 * day, 2 * day, 4 * day]).unwrap(), "day");
        assert_eq!(named(&[0, 3_600_000, 7_200_000]).unwrap(), "hour");
        assert_eq!(named(&[0, 7 * day, 14 * day]).unwrap(), "week");
        assert_eq!(named(&[0, 60_000, 120_000]).unwrap(), "minute");
        // every spacing the config takes, by the name it takes
        for m in [5, 10, 15, 30] {
            let step = m * 60_000;
            let name = named(&[0, step, 2 * step]).unwrap();
            assert_eq!(name, format!("{m}min"));
            assert_eq!(
                Granularity::parse(&name),
                Some(Granularity::Minutes(u32::try_from(m).unwrap()))
            );
        }
        assert_eq!(granularity(&[0, 1_000]), (None, Some(1_000)));
        assert_eq!(granularity(&[0, 7 * 60_000]), (None, Some(7 * 60_000)));
        assert_eq!(granularity(&[5]), (None, None));
    }

    fn inferred(granularity: Option<Granularity>) -> Inferred {
        Inferred {
            format: Format::Csv,
            reading: Reading::default(),
            time_column: "date".into(),
            granularity,
            layout: Layout::Wide {
                metrics: Some(vec!["orders".into()]),
            },
            metric_columns: vec![MetricColumn {
                header: "orders".into(),
                name: "orders".into(),
                unit: None,
            }],
            dimensions: Vec::new(),
            metric_names: vec!["orders".into()],
            checks: Vec::new(),
            rows: 100,
        }
    }

    /// The written schedule and review agree, whatever the data's spacing:
    /// over five weeks, every scheduled run comes before the deadline of the
    /// review its digest names, so no digest is sent already overdue.
    #[test]
    fn no_scheduled_run_sends_an_overdue_digest() {
        use chrono::{TimeZone, Utc};
        let cases: &[(&[Option<Granularity>], Cadence)] = &[
            (&[Some(Granularity::Week)], Cadence::Weekly),
            (&[Some(Granularity::Day)], Cadence::Weekdays),
            (&[Some(Granularity::Hour)], Cadence::Weekdays),
            (&[Some(Granularity::Minutes(30))], Cadence::Weekdays),
            (&[None], Cadence::Weekdays),
            (
                &[Some(Granularity::Week), Some(Granularity::Day)],
                Cadence::Weekdays,
            ),
        ];
        let dir = Path::new("/nonexistent");
        for (grans, cadence) in cases {
            let sources: Vec<(PathBuf, String, Inferred)> = grans
                .iter()
                .enumerate()
                .map(|(i, g)| (dir.join(format!("e{i}.csv")), format!("e{i}"), inferred(*g)))
                .collect();
            assert_eq!(Cadence::of(&sources), *cadence, "{grans:?}");
            let text =
                write_config(&sources, &dir.join("callout.toml")).replace("# host = ", "host = ");
            let cfg = crate::config::compile_str(&text, &dir.join("callout.toml"), &|_| None)
                .unwrap_or_else(|e| panic!("{grans:?}: {e}\n{text}"));
            // five weeks from Saturday 1 March 2025
            let mut t = Utc.with_ymd_and_hms(2025, 3, 1, 0, 0, 0).unwrap();
            let end = t + chrono::Duration::days(35);
            let mut fires = 0;
            while let Some(fire) = crate::schedule::next_fire(&cfg.schedule, t)
                .map(|f| f.with_timezone(&Utc))
                .filter(|f| *f < end)
            {
                let due = crate::review::deadline(&cfg.review, fire);
                assert!(
                    due.with_timezone(&Utc) > fire,
                    "{grans:?}: the run at {fire} sends digests due {due}"
                );
                fires += 1;
                t = fire;
            }
            let per_week = if *cadence == Cadence::Weekly { 1 } else { 5 };
            assert_eq!(fires, 5 * per_week, "{grans:?}");
        }
    }

    #[test]
    fn text_times_parse_in_the_usual_forms() {
        assert_eq!(parse_time("1970-01-02"), Some(86_400_000));
        assert_eq!(parse_time("1970-01-01 01:00"), Some(3_600_000));
        assert_eq!(parse_time("1970-01-01T01:00:00.000"), Some(3_600_000));
        assert_eq!(parse_time("1970-01-01T02:00:00+01:00"), Some(3_600_000));
        assert_eq!(parse_time("eu"), None);
    }

    /// `infer` on `text` written as `file` in a fresh folder.
    fn infer_text(file: &str, text: &[u8]) -> Inferred {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file);
        std::fs::write(&path, text).unwrap();
        infer(&path, "export").unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn ambiguous_dates_write_a_check() {
        // every day is 12 or less: month first or day first both read them
        let inf = infer_text("weekly.csv", b"date,orders\n01/02/2023,5\n01/09/2023,7\n");
        assert_eq!(inf.reading.time_format.as_deref(), Some("%m/%d/%Y"));
        let dir = Path::new("/nonexistent");
        let text = write_config(
            &[(dir.join("weekly.csv"), "weekly".into(), inf)],
            &dir.join("callout.toml"),
        );
        let check = text
            .lines()
            .find(|l| l.starts_with("# CHECK: time_format: `date`"))
            .unwrap_or_else(|| panic!("no time_format check in\n{text}"));
        assert!(check.contains("\"%d/%m/%Y\""), "{check}");
        assert!(text.contains("time_format = \"%m/%d/%Y\""), "{text}");
        // a day over 12 settles it: no check
        let inf = infer_text(
            "weekly.csv",
            b"date,orders\n03/06/2023,5\n03/13/2023,7\n03/20/2023,6\n",
        );
        assert_eq!(inf.reading.time_format.as_deref(), Some("%m/%d/%Y"));
        assert!(inf.checks.is_empty(), "{:?}", inf.checks);
        assert_eq!(inf.granularity, Some(Granularity::Week));
    }

    #[test]
    fn the_decimal_mark_comes_from_the_cells_one_mark_reads() {
        let col = |cells: &[&str]| cells.iter().map(|c| (*c).to_string()).collect::<Vec<_>>();
        let us = col(&["$261,059.24", "4,168", "3.2%"]);
        let eu = col(&["1.234,56", "12,5", "-"]);
        let thousands = col(&["1.234", "2.345"]);
        let text_only = col(&["eu", "Düsseldorf"]);
        let d = |cols: &[(&str, &[String])], delim| infer_decimal(cols, delim);
        assert_eq!(d(&[("r", &us)], b','), (Decimal::Point, None));
        assert_eq!(d(&[("r", &eu)], b';'), (Decimal::Comma, None));
        assert_eq!(d(&[("r", &eu)], b','), (Decimal::Comma, None));
        // text columns say nothing
        assert_eq!(
            d(&[("r", &us), ("city", &text_only)], b','),
            (Decimal::Point, None)
        );
        // `1.234` alone settles nothing: a thousand in a ;-separated file, said
        let (dec, doubt) = d(&[("n", &thousands)], b';');
        assert_eq!(dec, Decimal::Comma);
        let doubt = doubt.unwrap();
        assert!(
            doubt.starts_with("decimal: `1.234` in `n` is 1234 with a decimal comma or 1.234"),
            "{doubt}"
        );
        let (dec, doubt) = d(&[("n", &thousands)], b',');
        assert_eq!(dec, Decimal::Point);
        assert!(doubt.is_some());
        // another column settles it
        assert_eq!(
            d(&[("n", &thousands), ("r", &eu)], b';'),
            (Decimal::Comma, None)
        );
        // plain whole numbers need no mark
        assert_eq!(
            d(&[("n", &col(&["12", "4168"]))], b';'),
            (Decimal::Point, None)
        );
    }

    #[test]
    fn numbers_written_as_text_are_metrics_with_their_units() {
        let inf = infer_text(
            "wbr.csv",
            "Week Ending,Region,Revenue ($),Orders (#),Conversion %,Avg Order\n\
             03/06/2023,East,\"$261,059.24\",\"4,168\",3.2%,\"$62.63\"\n\
             03/06/2023,West,\"$198,113.02\",\"3,051\",n/a,\"$64.93\"\n\
             03/13/2023,East,\"$270,100.00\",\"4,301\",3.4%,#DIV/0!\n\
             03/13/2023,West,-,\"2,977\",2.9%,\"$66.20\"\n"
                .as_bytes(),
        );
        assert_eq!(inf.time_column, "Week Ending");
        assert_eq!(inf.reading.time_format.as_deref(), Some("%m/%d/%Y"));
        assert_eq!(inf.reading.decimal, Decimal::Point);
        assert_eq!(inf.dimensions, ["Region"]);
        assert_eq!(
            inf.metric_names,
            ["revenue", "orders", "conversion", "avg_order"]
        );
        let units: Vec<Option<&str>> = inf
            .metric_columns
            .iter()
            .map(|m| m.unit.as_deref())
            .collect();
        assert_eq!(units, [Some("$"), None, Some("%"), Some("$")]);
        assert!(inf.checks.is_empty(), "{:?}", inf.checks);
    }

    #[test]
    fn a_date_column_no_format_reads_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.csv");
        std::fs::write(&path, "Date,orders\nsoon,1\nlater,2\n").unwrap();
        let e = infer(&path, "x").unwrap_err().to_string();
        assert!(
            e.contains("x.csv") && e.contains("no column holds dates") && e.contains("`Date`: "),
            "{e}"
        );
    }

    #[test]
    fn source_names_are_safe_and_unique() {
        let mut taken = HashSet::new();
        assert_eq!(
            source_name(Path::new("/x/Shop Daily.csv"), &mut taken),
            "shop_daily"
        );
        assert_eq!(
            source_name(Path::new("/y/shop-daily.csv"), &mut taken),
            "shop_daily_2"
        );
    }
}
