//! A local export's column names from its header alone, for `check-config`:
//! a CSV file's first record, a Parquet file's schema (its footer). No data
//! row is read, so a config naming a column the export lacks (a misspelt
//! `value_column` or dimension) is caught as cheaply as a type error.
//!
//! A local workbook's header is that of the table a run reads (its sheet
//! and header row, configured or found).
//!
//! Left to `check-sources`, which reads everything: URLs, S3 objects and SQL
//! queries (a download or a connection), NDJSON (no header: the columns are
//! inferred from the rows) and compressed CSV.

use std::path::Path;

use polars::prelude::*;

use super::error::missing_column;
use super::{compressed_head, dialect, workbook};

/// Rows of a workbook read to find its table and header (a column whose
/// header cell is empty counts when it has data in these).
const HEAD: usize = 100;
use crate::config::{ConfigProblem, Format, Layout, SourceConfig};

/// One problem per configured column of source `index` that a file of it
/// lacks (the first such file named, with how many more lack it), keyed
/// like a config problem (`source[0].value_column`, `source[0].dimensions[1]`).
/// Files whose header cannot be read here are skipped: a run reports them.
pub fn column_problems(index: usize, cfg: &SourceConfig) -> Vec<ConfigProblem> {
    let wanted = configured_columns(cfg);
    // per wanted column: the first file without it, its columns, how many files lack it
    let mut missing: Vec<Option<(String, Vec<String>, usize)>> = vec![None; wanted.len()];
    for file in cfg.files() {
        let Some(names) = columns(cfg, &file) else {
            continue;
        };
        for (slot, (_, column, _)) in missing.iter_mut().zip(&wanted) {
            if names.iter().any(|n| n == column) {
                continue;
            }
            match slot {
                Some((_, _, count)) => *count += 1,
                None => *slot = Some((file.display().to_string(), names.clone(), 1)),
            }
        }
    }
    wanted
        .iter()
        .zip(missing)
        .filter_map(|((key, column, role), m)| {
            let (file, names, count) = m?;
            let mut message = missing_column(&file, column, role, &names.join(", "));
            let others = count.saturating_sub(1);
            if others > 0 {
                message.push_str(&format!("; {others} more file(s) of the glob lack it too"));
            }
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            if let Some(meant) = crate::config::suggestion(column, &names) {
                message.push_str(&format!("; did you mean `{meant}`?"));
            }
            Some(ConfigProblem {
                key: format!("source[{index}].{key}"),
                message,
            })
        })
        .collect()
}

/// The columns the config names for a source, with the key that names each
/// and its role in the loader's words, in the loader's order.
fn configured_columns(cfg: &SourceConfig) -> Vec<(String, &str, &'static str)> {
    let mut out = vec![(
        "time_column".to_string(),
        cfg.time_column.as_str(),
        "time_column",
    )];
    for (j, d) in cfg.dimensions.iter().enumerate() {
        out.push((format!("dimensions[{j}]"), d.as_str(), "dimensions"));
    }
    match &cfg.layout {
        Layout::Long {
            metric,
            value_column,
        } => {
            if let crate::config::MetricName::Column(metric_column) = metric {
                out.push((
                    "metric_column".to_string(),
                    metric_column.as_str(),
                    "metric_column",
                ));
            }
            out.push((
                "value_column".to_string(),
                value_column.as_str(),
                "value_column",
            ));
        }
        Layout::Wide { metrics } => {
            for (j, m) in metrics.iter().flatten().enumerate() {
                out.push((format!("metrics[{j}]"), m.as_str(), "metrics"));
            }
        }
    }
    out
}

/// The column names in `file`'s header; `None` when there is none to read
/// cheaply (NDJSON, compressed, empty or unreadable). A workbook's are those
/// of the table a run reads (the same sheet and header row), from its first
/// rows.
fn columns(cfg: &SourceConfig, file: &Path) -> Option<Vec<String>> {
    match cfg.format {
        Format::Csv => csv_header(cfg, file),
        Format::Workbook => {
            let d = &cfg.dialect;
            let table =
                workbook::read_table(file, d.sheet.as_deref(), d.header_row, Some(HEAD)).ok()?;
            Some(
                table
                    .frame
                    .get_column_names()
                    .into_iter()
                    .map(|n| n.to_string())
                    .collect(),
            )
        }
        Format::Parquet => {
            let mut lf = LazyFrame::scan_parquet(
                PlRefPath::new(file.to_string_lossy().as_ref()),
                ScanArgsParquet::default(),
            )
            .ok()?;
            let schema = lf.collect_schema().ok()?;
            Some(schema.iter_names().map(|n| n.to_string()).collect())
        }
        Format::Ndjson => None,
    }
}

/// A CSV's header record, in the file's delimiter and encoding: the
/// source's `delimiter` and `encoding`, else what its head shows (a BOM;
/// bytes that are not UTF-8 as Windows-1252, as `dialect::sniff` reads
/// them: a run names them, this check only wants the names). `None` when
/// the header does not end within the head.
fn csv_header(cfg: &SourceConfig, file: &Path) -> Option<Vec<String>> {
    let head = dialect::read_head(file).ok()?;
    if compressed_head(&head) {
        return None;
    }
    // as a run reads it; bytes that are not UTF-8 without an `encoding` key
    // (which a run refuses, naming the line) as `dialect::sniff` guesses them
    let read = dialect::read_as(&cfg.dialect, &head);
    let encoding = read
        .transcode
        .or(dialect::sniff(&head).encoding)
        .unwrap_or(encoding_rs::UTF_8);
    // (`decode` follows a BOM, as `read_as` does, and leaves it out)
    let (text, _, _) = encoding.decode(&head);
    if head.len() == dialect::HEAD && !text.contains('\n') {
        return None;
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .delimiter(read.delimiter)
        .from_reader(text.as_bytes());
    let names: Vec<String> = reader.headers().ok()?.iter().map(str::to_string).collect();
    (!names.is_empty()).then_some(names)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn source(dir: &Path, extra: &str) -> SourceConfig {
        let text = format!("[[source]]\nname = \"s\"\npath = \"*.csv\"\n{extra}");
        let cfg = crate::config::compile_str(&text, &dir.join("c.toml"), &|_| None).unwrap();
        cfg.sources.into_iter().next().unwrap()
    }

    #[test]
    fn every_missing_column_is_named_once_with_the_columns_there() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.csv"),
            "\u{feff}date,metric,\"region\",amount\n2024-01-01,x,eu,1\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("b.csv"), "date,metric,region,amount\n").unwrap();
        // no header to read: left to a run
        std::fs::write(dir.path().join("c.csv"), "").unwrap();
        let s = source(dir.path(), "dimensions = [\"region\"]");
        let p = column_problems(2, &s);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].key, "source[2].value_column");
        let a = dir.path().join("a.csv").display().to_string();
        assert_eq!(
            p[0].message,
            format!(
                "`{a}` has no column `value` (configured as value_column); columns are: date, metric, region, amount; 1 more file(s) of the glob lack it too"
            )
        );
        let s = source(
            dir.path(),
            "value_column = \"amount\"\ndimensions = [\"region\", \"regoin\"]",
        );
        let p = column_problems(0, &s);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].key, "source[0].dimensions[1]");
        assert!(
            p[0].message
                .contains("no column `regoin` (configured as dimensions)")
                && p[0].message.ends_with("; did you mean `region`?"),
            "{}",
            p[0].message
        );
        let s = source(
            dir.path(),
            "value_column = \"amount\"\ndimensions = [\"region\"]",
        );
        assert!(column_problems(0, &s).is_empty());
    }

    #[test]
    fn semicolon_tab_and_windows_1252_headers_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let cp1252 = |t: &str| encoding_rs::WINDOWS_1252.encode(t).0.into_owned();
        for (name, bytes, keys) in [
            (
                "semicolon",
                b"date;metric;Stadt;amount\n2024-01-01;x;K;1,5\n".to_vec(),
                "",
            ),
            ("tab", b"date\tmetric\tStadt\tamount\n".to_vec(), ""),
            // Excel's "CSV" on Windows, with and without the key
            (
                "cp1252",
                cp1252(
                    "date;metric;Stra\u{df}e;Stadt;amount\n2024-01-01;x;Hauptstra\u{df}e;K\u{f6}ln;1\n",
                ),
                "",
            ),
            (
                "cp1252",
                cp1252("date;metric;Stra\u{df}e;Stadt;amount\n"),
                "encoding = \"windows-1252\"\n",
            ),
        ] {
            let file = dir.path().join("a.csv");
            std::fs::write(&file, bytes).unwrap();
            let present = format!("{keys}value_column = \"amount\"\ndimensions = [\"Stadt\"]");
            let p = column_problems(0, &source(dir.path(), &present));
            assert!(p.is_empty(), "{name}: {p:?}");
            let missing =
                format!("{keys}value_column = \"amount\"\ndimensions = [\"Stadt\", \"Land\"]");
            let p = column_problems(0, &source(dir.path(), &missing));
            assert_eq!(p.len(), 1, "{name}: {p:?}");
            assert_eq!(p[0].key, "source[0].dimensions[1]", "{name}");
            assert!(
                p[0].message
                    .contains("no column `Land` (configured as dimensions)")
                    && p[0].message.contains("columns are: date, metric, "),
                "{name}: {}",
                p[0].message
            );
        }
        // a name only Windows-1252 spells, given a `delimiter` key
        std::fs::write(
            dir.path().join("a.csv"),
            cp1252("date|metric|Stra\u{df}e|amount\n"),
        )
        .unwrap();
        let s = source(
            dir.path(),
            "delimiter = \"|\"\nvalue_column = \"amount\"\ndimensions = [\"Stra\u{df}e\"]",
        );
        assert!(column_problems(0, &s).is_empty());
    }
}
