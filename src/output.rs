//! Findings → CSV, JSON lines, a JSON array, Parquet or a terminal table.
//! Pure formatting over a writer; choosing the file is the caller's business.

use std::io::Write;
use std::path::Path;

use polars::prelude::{Column, DataFrame, ParquetWriter, PolarsResult};
use rayon::prelude::*;

use crate::model::{Finding, format_ts};

/// Key columns across findings, in order of first appearance (`metric` first).
pub fn key_columns(findings: &[Finding], extra: &[Vec<String>]) -> Vec<String> {
    let mut cols = vec!["metric".to_string()];
    let mut add = |c: &str| {
        if !cols.iter().any(|x| x == c) {
            cols.push(c.to_string());
        }
    };
    for set in extra {
        for c in set.iter().skip(1) {
            add(c);
        }
    }
    for f in findings {
        for (k, _) in &f.key.dims {
            add(k);
        }
    }
    cols
}

/// The columns after the key columns, exactly as in findings files.
pub const FIELDS: [&str; 10] = [
    "timestamp",
    "value",
    "expected",
    "lower",
    "upper",
    "score",
    "direction",
    "check",
    "wow_pct",
    "yoy_pct",
];

/// A number in a findings file: four decimals (trailing zeros cut) from 1
/// up, six significant digits below, so a small non-zero (an error rate of
/// 1.2e-4, a band's lower bound of 1e-300 on the log scale) never reads as 0.
fn num(x: f64) -> String {
    let a = x.abs();
    if x == 0.0 {
        "0".to_string()
    } else if a >= 1.0 && x.is_finite() {
        let s = format!("{x:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else if a >= 1e-6 {
        let places = crate::fmt::zeros_after_point(a) + 6;
        let s = format!("{x:.places$}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else if x.is_finite() {
        crate::fmt::scientific(x, 6)
    } else if x.is_nan() {
        String::new()
    } else if x > 0.0 {
        "inf".into()
    } else {
        "-inf".into()
    }
}

fn opt(x: Option<f64>) -> String {
    x.map(num).unwrap_or_default()
}

fn row(f: &Finding, keys: &[String]) -> Vec<String> {
    let mut r: Vec<String> = keys
        .iter()
        .map(|k| {
            if k == "metric" {
                f.key.metric.clone()
            } else {
                f.key.dim(k).unwrap_or("").to_string()
            }
        })
        .collect();
    r.extend([
        format_ts(f.hit.ts, f.granularity),
        num(f.hit.value),
        num(f.hit.expected),
        num(f.hit.lower),
        num(f.hit.upper),
        num(f.hit.score),
        f.hit.side.as_str().to_string(),
        f.hit.check.as_str().to_string(),
        opt(f.hit.wow_pct),
        opt(f.hit.yoy_pct),
    ]);
    r
}

/// A findings file format, chosen by the `--output` file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// Comma-separated, with a header.
    Csv,
    /// One JSON object per line.
    JsonLines,
    /// One JSON array of objects.
    Json,
    /// Apache Parquet, typed columns.
    Parquet,
}

impl OutputFormat {
    /// Every extension understood (compared without regard to case).
    pub const EXTENSIONS: [(&'static str, OutputFormat); 5] = [
        ("csv", OutputFormat::Csv),
        ("jsonl", OutputFormat::JsonLines),
        ("ndjson", OutputFormat::JsonLines),
        ("json", OutputFormat::Json),
        ("parquet", OutputFormat::Parquet),
    ];

    /// The format for `path`'s extension; `None` when it has none or an unknown one.
    pub fn for_path(path: &Path) -> Option<OutputFormat> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Self::EXTENSIONS
            .iter()
            .find(|(e, _)| *e == ext)
            .map(|(_, f)| *f)
    }

    /// `.csv, .jsonl, …` for messages.
    pub fn supported() -> String {
        Self::EXTENSIONS
            .iter()
            .map(|(e, _)| format!(".{e}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Write findings in `format`.
pub fn write(
    format: OutputFormat,
    w: impl Write,
    findings: &[Finding],
    keys: &[String],
) -> PolarsResult<()> {
    match format {
        OutputFormat::Csv => write_csv(w, findings, keys)?,
        OutputFormat::JsonLines => write_jsonl(w, findings, keys)?,
        OutputFormat::Json => write_json(w, findings, keys)?,
        OutputFormat::Parquet => write_parquet(w, findings, keys)?,
    }
    Ok(())
}

/// Write findings as CSV with a header.
pub fn write_csv(w: impl Write, findings: &[Finding], keys: &[String]) -> std::io::Result<()> {
    let mut wr = csv::Writer::from_writer(w);
    let mut header: Vec<&str> = keys.iter().map(String::as_str).collect();
    header.extend(FIELDS);
    wr.write_record(&header)?;
    // the rows are formatted on all threads (float formatting is most of a
    // large backfill's last, single-threaded, step), a bounded batch at a time
    for batch in findings.chunks(ROWS_AT_ONCE) {
        let rows: Vec<Vec<String>> = batch.par_iter().map(|f| row(f, keys)).collect();
        for r in rows {
            wr.write_record(r)?;
        }
    }
    wr.flush()
}

/// Findings formatted before they are written (bounds the formatted text held).
const ROWS_AT_ONCE: usize = 8192;

/// One finding as a JSON object: key columns, then [`FIELDS`]; non-finite numbers are null.
fn json_object(f: &Finding, keys: &[String]) -> serde_json::Value {
    let jnum = |x: f64| {
        if x.is_finite() {
            serde_json::json!(x)
        } else {
            serde_json::Value::Null
        }
    };
    let mut m = serde_json::Map::new();
    for k in keys {
        let v = if k == "metric" {
            Some(f.key.metric.as_str())
        } else {
            f.key.dim(k)
        };
        m.insert(
            k.clone(),
            v.map(|s| serde_json::json!(s))
                .unwrap_or(serde_json::Value::Null),
        );
    }
    m.insert(
        "timestamp".into(),
        serde_json::json!(format_ts(f.hit.ts, f.granularity)),
    );
    m.insert("value".into(), jnum(f.hit.value));
    m.insert("expected".into(), jnum(f.hit.expected));
    m.insert("lower".into(), jnum(f.hit.lower));
    m.insert("upper".into(), jnum(f.hit.upper));
    m.insert("score".into(), jnum(f.hit.score));
    m.insert("direction".into(), serde_json::json!(f.hit.side.as_str()));
    m.insert("check".into(), serde_json::json!(f.hit.check.as_str()));
    m.insert(
        "wow_pct".into(),
        f.hit.wow_pct.map(jnum).unwrap_or(serde_json::Value::Null),
    );
    m.insert(
        "yoy_pct".into(),
        f.hit.yoy_pct.map(jnum).unwrap_or(serde_json::Value::Null),
    );
    serde_json::Value::Object(m)
}

/// Write findings as JSON lines.
pub fn write_jsonl(
    mut w: impl Write,
    findings: &[Finding],
    keys: &[String],
) -> std::io::Result<()> {
    for f in findings {
        writeln!(w, "{}", json_object(f, keys))?;
    }
    w.flush()
}

/// Write findings as one JSON array (what `.json` readers expect, unlike JSON lines).
pub fn write_json(mut w: impl Write, findings: &[Finding], keys: &[String]) -> std::io::Result<()> {
    let all: Vec<serde_json::Value> = findings.iter().map(|f| json_object(f, keys)).collect();
    serde_json::to_writer_pretty(&mut w, &all)?;
    writeln!(w)?;
    w.flush()
}

/// Write findings as Parquet: key columns and text fields as strings, numbers
/// as nullable floats (non-finite → null, as in JSON).
pub fn write_parquet(w: impl Write, findings: &[Finding], keys: &[String]) -> PolarsResult<()> {
    let finite = |x: f64| x.is_finite().then_some(x);
    let text = |name: &str, get: &dyn Fn(&Finding) -> String| {
        Column::new(
            name.into(),
            findings.iter().map(get).collect::<Vec<String>>(),
        )
    };
    let number = |name: &str, get: &dyn Fn(&Finding) -> Option<f64>| {
        Column::new(
            name.into(),
            findings
                .iter()
                .map(|f| get(f).and_then(finite))
                .collect::<Vec<Option<f64>>>(),
        )
    };
    let mut cols: Vec<Column> = keys
        .iter()
        .map(|k| {
            let vals: Vec<Option<String>> = findings
                .iter()
                .map(|f| {
                    if k == "metric" {
                        Some(f.key.metric.clone())
                    } else {
                        f.key.dim(k).map(str::to_string)
                    }
                })
                .collect();
            Column::new(k.as_str().into(), vals)
        })
        .collect();
    cols.extend([
        text("timestamp", &|f| format_ts(f.hit.ts, f.granularity)),
        number("value", &|f| Some(f.hit.value)),
        number("expected", &|f| Some(f.hit.expected)),
        number("lower", &|f| Some(f.hit.lower)),
        number("upper", &|f| Some(f.hit.upper)),
        number("score", &|f| Some(f.hit.score)),
        text("direction", &|f| f.hit.side.as_str().to_string()),
        text("check", &|f| f.hit.check.as_str().to_string()),
        number("wow_pct", &|f| f.hit.wow_pct),
        number("yoy_pct", &|f| f.hit.yoy_pct),
    ]);
    let mut df = DataFrame::new(findings.len(), cols)?;
    ParquetWriter::new(w).finish(&mut df)?;
    Ok(())
}

/// A plain aligned table for terminals.
pub fn write_table(
    mut w: impl Write,
    findings: &[Finding],
    keys: &[String],
) -> std::io::Result<()> {
    if findings.is_empty() {
        return writeln!(w, "no findings");
    }
    let mut header: Vec<String> = keys.to_vec();
    header.extend(["timestamp", "value", "expected", "range", "score", "check"].map(String::from));
    let rows: Vec<Vec<String>> = findings
        .iter()
        .map(|f| {
            let mut r: Vec<String> = row(f, keys)[..keys.len()].to_vec();
            r.push(format_ts(f.hit.ts, f.granularity));
            r.push(num(f.hit.value));
            r.push(num(f.hit.expected));
            r.push(format!("{} … {}", num(f.hit.lower), num(f.hit.upper)));
            r.push(format!("{:.1}", f.hit.score));
            r.push(format!("{} {}", f.hit.check, f.hit.side.as_str()));
            r
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |r: &[String]| {
        r.iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    writeln!(w, "{}", line(&header))?;
    for r in &rows {
        writeln!(w, "{}", line(r))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_numbers_keep_their_significant_digits() {
        let cases = [
            (0.0, "0"),
            (-0.0, "0"),
            (1_234.567_89, "1234.5679"),
            (1.5, "1.5"),
            (0.00012, "0.00012"),
            (0.000_123_456_789, "0.000123457"),
            (-0.5, "-0.5"),
            (1e-300, "1e-300"),
            (-1.234_567_8e-9, "-1.23457e-9"),
            (5e-324, "4.94066e-324"),
            (f64::NAN, ""),
            (f64::INFINITY, "inf"),
        ];
        for (x, want) in cases {
            assert_eq!(num(x), want, "{x:e}");
        }
        // never a non-zero written as zero, over many magnitudes
        let mut x = 1e-12;
        while x < 1.0 {
            for v in [x, -x] {
                let s = num(v);
                assert_ne!(s.parse::<f64>().unwrap(), 0.0, "{v:e} -> {s}");
                let rel = (s.parse::<f64>().unwrap() - v).abs() / v.abs();
                assert!(rel < 1e-5, "{v:e} -> {s}");
            }
            x *= 1.37;
        }
    }
}
