//! The schema the block reader parses a CSV export with: Polars' own
//! inference over the first rows, with the date test run once per distinct
//! text value instead of once per cell.
//!
//! Polars tries each text cell against its date and datetime patterns through
//! chrono (dozens of format parses per cell); over the 10,000 rows inferred
//! that cost more than parsing a million rows. A date-ordered export repeats
//! one date for every series, so the distinct values are few. The result is
//! Polars' own: the same per-value test (`infer_field_schema`) and the same
//! merge of the types seen (`finish_infer_field_schema`), over the same set.

use std::io::Read;
use std::path::Path;

use polars::io::csv::read::schema_inference::{finish_infer_field_schema, infer_field_schema};
use polars::prelude::*;

use super::SourceError;
use super::error::read_err;
use super::normalize::{naive_iso_ms, zoned_iso};
use super::plan::value_columns;
use crate::config::SourceConfig;
use crate::text::Decimal;

/// Rows of an export that decide its column types (as for a whole read).
pub(super) const INFER_ROWS: usize = 10_000;

/// Bytes read first to find the [`INFER_ROWS`] rows (grown until they fit).
const FIRST_READ: usize = 1 << 22;

/// The form of a time column's first values (all of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum IsoTimes {
    /// Of no one form [`normalize`](super::normalize) parses itself.
    No,
    /// Plain ISO dates or datetimes (`normalize::naive_iso_ms`).
    Naive,
    /// Plain ISO datetimes with a UTC offset (`normalize::zoned_iso`).
    Zoned,
}

/// The type a CSV value column is read as, from the type Polars `inferred`
/// for it: numbers (or a column without values) as f64, anything else as
/// text, which `normalize` parses cell by cell, naming a bad one. Text
/// whatever was inferred when `values` is text (the slow path that names a
/// bad cell) or under a decimal comma (`1.234` is 1234 there, not what
/// Polars would read).
pub(super) fn value_type(cfg: &SourceConfig, inferred: &DataType, values: &DataType) -> DataType {
    let numeric = inferred.is_primitive_numeric() || inferred == &DataType::Null;
    if numeric && values == &DataType::Float64 && cfg.dialect.decimal == Decimal::Point {
        DataType::Float64
    } else {
        DataType::String
    }
}

/// The schema of a CSV file (fields split at `delimiter`) as a whole read
/// with date parsing would infer it, value columns typed by [`value_type`];
/// and the form of the time column's first values.
pub(super) fn csv_schema(
    cfg: &SourceConfig,
    path: &Path,
    label: &str,
    delimiter: u8,
) -> Result<(SchemaRef, IsoTimes), SourceError> {
    let err = |e: PolarsError| read_err(cfg, label, e);
    let shown = path.display().to_string();
    // without dates Polars tests each cell against a few regexes only; a
    // cell that might be a date is text here (dates are never numbers)
    let mut lf = LazyCsvReader::new(PlRefPath::new(shown.as_str()))
        .with_separator(delimiter)
        .with_try_parse_dates(false)
        .with_infer_schema_length(Some(INFER_ROWS))
        .with_schema_modify(|mut schema: Schema| {
            for c in value_columns(cfg, &schema) {
                if let Some(dt) = schema.get_mut(c.as_str()) {
                    *dt = value_type(cfg, dt, &DataType::Float64);
                }
            }
            // a `time_format` is `normalize`'s to apply, to the text as written
            if cfg.dialect.time_format.is_some()
                && let Some(dt) = schema.get_mut(cfg.time_column.as_str())
            {
                *dt = DataType::String;
            }
            Ok(schema)
        })
        .and_then(LazyCsvReader::finish)
        .map_err(err)?;
    let schema = lf.collect_schema().map_err(err)?;
    let values = value_columns(cfg, &schema);
    // value columns read as text stay text: no date test for them; nor for
    // a time column under a `time_format`
    let formatted = cfg
        .dialect
        .time_format
        .is_some()
        .then_some(cfg.time_column.as_str());
    let text: Vec<PlSmallStr> = schema
        .iter()
        .filter(|(name, dt)| {
            **dt == DataType::String
                && !values.iter().any(|v| v == name.as_str())
                && formatted != Some(name.as_str())
        })
        .map(|(name, _)| name.clone())
        .collect();
    if text.is_empty() {
        return Ok((schema, IsoTimes::No));
    }
    let first = first_rows(cfg, path, label, &text, delimiter)?;
    let mut schema = (*schema).clone();
    let mut iso = IsoTimes::No;
    for c in first.columns() {
        let mut seen = PlHashSet::new();
        let mut types = PlIndexSet::new();
        for v in c.str().map_err(err)?.iter().flatten() {
            if seen.insert(v) {
                types.insert(infer_field_schema(v, true, false));
            }
        }
        if c.name().as_str() == cfg.time_column {
            let all = |parses: fn(&[u8]) -> bool| seen.iter().all(|v| parses(v.as_bytes()));
            if all(|v| naive_iso_ms(v).is_some()) {
                iso = IsoTimes::Naive;
            } else if all(|v| zoned_iso(v).is_some()) {
                iso = IsoTimes::Zoned;
            }
        }
        if let Some(dt) = schema.get_mut(c.name().as_str()) {
            *dt = finish_infer_field_schema(&types);
        }
    }
    Ok((Arc::new(schema), iso))
}

/// `schema` with the time column as text when Polars would parse it as a
/// date or a datetime and its first values are plain ISO (`iso`, from
/// [`csv_schema`]): Polars' patterns go through chrono at every row, where
/// `normalize::iso_times` parses the text with a few integer operations
/// (dates were an eighth of the scale set's load), and sees the UTC offsets
/// a zoned column was written with. (Under a `time_format` [`csv_schema`]
/// already keeps it as text, for `normalize` to parse by that format.) And
/// the form it is read in ([`IsoTimes::No`]: as Polars parses it, or by the
/// `time_format`).
pub(super) fn text_time(
    cfg: &SourceConfig,
    (schema, iso): (SchemaRef, IsoTimes),
) -> (SchemaRef, IsoTimes) {
    let tc = cfg.time_column.as_str();
    let parsed = match iso {
        IsoTimes::No => false,
        IsoTimes::Naive => matches!(
            schema.get(tc),
            Some(DataType::Date | DataType::Datetime(TimeUnit::Microseconds, None))
        ),
        IsoTimes::Zoned => matches!(schema.get(tc), Some(DataType::Datetime(_, Some(_)))),
    };
    if !parsed {
        return (schema, IsoTimes::No);
    }
    let mut text = (*schema).clone();
    if let Some(dt) = text.get_mut(tc) {
        *dt = DataType::String;
    }
    (Arc::new(text), iso)
}

/// The columns `names` of the first [`INFER_ROWS`] rows (fields split at
/// `delimiter`), as text (empty cells null). Reads a prefix of the file, larger until the rows fit.
fn first_rows(
    cfg: &SourceConfig,
    path: &Path,
    label: &str,
    names: &[PlSmallStr],
    delimiter: u8,
) -> Result<DataFrame, SourceError> {
    let mut want = FIRST_READ;
    loop {
        let mut buf = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(want as u64).read_to_end(&mut buf))
            .map_err(|e| read_err(cfg, label, e))?;
        let whole = buf.len() < want;
        if !whole {
            // whole records only: a prefix may end inside one
            match super::blocks::last_record_end(&buf) {
                Some(end) => buf.truncate(end),
                None => {
                    want = want.saturating_mul(4);
                    continue;
                }
            }
        }
        let df = CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(Some(0))
            .with_n_rows(Some(INFER_ROWS))
            .map_parse_options(|o| o.with_separator(delimiter))
            .with_columns(Some(names.iter().cloned().collect()))
            .into_reader_with_file_handle(std::io::Cursor::new(buf))
            .finish()
            .map_err(|e| read_err(cfg, label, e))?;
        if whole || df.height() >= INFER_ROWS {
            return Ok(df);
        }
        want = want.saturating_mul(4);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source reading `path` by its time column `day`, with `extra` lines.
    fn source(path: &Path, extra: &str) -> SourceConfig {
        crate::config::compile_str(
            &format!(
                "[[source]]\nname = \"s\"\npath = \"{}\"\ntime_column = \"day\"\n{extra}",
                path.display()
            ),
            Path::new("/tmp/c.toml"),
            &|_| None,
        )
        .unwrap()
        .sources[0]
            .clone()
    }

    #[test]
    fn the_schema_is_polars_own_inference_with_dates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.csv");
        // the rows past INFER_ROWS hold other types (they decide nothing), and
        // a long column makes the first read too short for the inferred rows
        let mut text = String::from("day,at,zoned,quoted,mixed,code,metric,region,value,pad\n");
        let pad = "x".repeat(500);
        for r in 0..INFER_ROWS + 50 {
            let d = 1 + r / 1000 % 28;
            let (day, mixed) = if r < INFER_ROWS {
                (
                    format!("2024-01-{d:02}"),
                    if r == 7 {
                        "n/a".into()
                    } else {
                        format!("2024-02-{d:02}")
                    },
                )
            } else {
                ("soon".into(), "2024-03-01".into())
            };
            text.push_str(&format!(
                "{day},2024-01-{d:02}T10:00:00,2024-01-{d:02}T10:00:00+02:00,\"2024-01-{d:02}\",{mixed},{},m{},eu,{}.5,{pad}\n",
                r % 7,
                r % 3,
                r % 11,
            ));
        }
        std::fs::write(&path, text).unwrap();
        let cfg = source(&path, "dimensions = [\"region\", \"code\"]\n");
        let label = path.display().to_string();
        let (got, iso) = csv_schema(&cfg, &path, &label, b',').unwrap();
        // the time column "day" holds plain ISO dates
        assert_eq!(iso, IsoTimes::Naive);
        let want = LazyCsvReader::new(PlRefPath::new(label.as_str()))
            .with_try_parse_dates(true)
            .with_infer_schema_length(Some(INFER_ROWS))
            .with_schema_modify(|mut schema: Schema| {
                if let Some(dt) = schema.get_mut("value") {
                    *dt = DataType::Float64;
                }
                Ok(schema)
            })
            .and_then(LazyCsvReader::finish)
            .unwrap()
            .collect_schema()
            .unwrap();
        assert_eq!(got, want);
        assert_eq!(got.get("day"), Some(&DataType::Date));
        assert_eq!(got.get("mixed"), Some(&DataType::String));
        assert_eq!(got.get("code"), Some(&DataType::Int64));
        assert!(matches!(
            got.get("zoned"),
            Some(DataType::Datetime(_, Some(_)))
        ));
    }

    #[test]
    fn only_plain_iso_times_are_read_as_text() {
        let dir = tempfile::tempdir().unwrap();
        let zoned = DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC));
        for (day, polars, iso) in [
            ("2024-01-31", DataType::Date, IsoTimes::Naive),
            ("2024/01/31", DataType::Date, IsoTimes::No),
            ("31.01.2024", DataType::Date, IsoTimes::No),
            ("2024-01-31T10:00:00+01:00", zoned.clone(), IsoTimes::Zoned),
            ("2024-01-31T10:00:00Z", zoned.clone(), IsoTimes::Zoned),
            ("2024-01-31 10:00:00+0530", zoned.clone(), IsoTimes::Zoned),
        ] {
            let path = dir.path().join("m.csv");
            std::fs::write(&path, format!("day,metric,value\n{day},a,1\n{day},b,2\n")).unwrap();
            let cfg = source(&path, "");
            let label = path.display().to_string();
            let (schema, first_iso) = csv_schema(&cfg, &path, &label, b',').unwrap();
            // Polars parses them all; only the ISO ones are ours to parse
            assert_eq!(schema.get("day"), Some(&polars), "{day}");
            assert_eq!(first_iso, iso, "{day}");
            let (read, as_text) = text_time(&cfg, (schema, first_iso));
            assert_eq!(as_text, iso, "{day}");
            let want = if iso == IsoTimes::No {
                polars
            } else {
                DataType::String
            };
            assert_eq!(read.get("day"), Some(&want), "{day}");
        }
        // under a `time_format`, text whatever Polars makes of it
        let path = dir.path().join("m.csv");
        std::fs::write(&path, "day,metric,value\n03/01/2024,a,1\n").unwrap();
        let cfg = source(&path, "time_format = \"%d/%m/%Y\"\n");
        let label = path.display().to_string();
        let (read, iso) = text_time(&cfg, csv_schema(&cfg, &path, &label, b',').unwrap());
        assert_eq!(
            (read.get("day"), iso),
            (Some(&DataType::String), IsoTimes::No)
        );
    }
}
