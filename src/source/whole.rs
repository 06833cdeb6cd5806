//! The whole-file read: the slow path a file takes when the fast one fails,
//! read whole and in turn as floats, then as text, so that the error names
//! the row and the value; a workbook's table; NDJSON's first broken line.

use std::path::Path;

use polars::prelude::*;

use super::error::read_err;
use super::plan::{scan_file, select};
use super::{Filled, Input, SourceError, normalize, records, s3, workbook};
use crate::config::{Format, Location, SourceConfig};

/// One file read whole into the normalised frame `keys…, __ts, __value`,
/// trying the readings of [`read_file`] in turn (a CSV's fields split at
/// `delimiter`).
pub(super) fn read_whole(
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
