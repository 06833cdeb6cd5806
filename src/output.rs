//! Findings → CSV, JSON lines or a terminal table. Pure formatting over a writer.

use std::io::Write;

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

fn num(x: f64) -> String {
    if x.is_finite() {
        let s = format!("{x:.4}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.to_string()
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
        format_ts(f.timestamp, f.granularity),
        num(f.value),
        num(f.expected),
        num(f.lower),
        num(f.upper),
        num(f.score),
        f.direction.as_str().to_string(),
        f.check.as_str().to_string(),
        opt(f.wow_pct),
        opt(f.yoy_pct),
    ]);
    r
}

/// Write findings as CSV with a header.
pub fn write_csv(w: impl Write, findings: &[Finding], keys: &[String]) -> std::io::Result<()> {
    let mut wr = csv::Writer::from_writer(w);
    let mut header: Vec<&str> = keys.iter().map(String::as_str).collect();
    header.extend(FIELDS);
    wr.write_record(&header)?;
    for f in findings {
        wr.write_record(row(f, keys))?;
    }
    wr.flush()
}

/// Write findings as JSON lines.
pub fn write_jsonl(
    mut w: impl Write,
    findings: &[Finding],
    keys: &[String],
) -> std::io::Result<()> {
    let jnum = |x: f64| {
        if x.is_finite() {
            serde_json::json!(x)
        } else {
            serde_json::Value::Null
        }
    };
    for f in findings {
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
            serde_json::json!(format_ts(f.timestamp, f.granularity)),
        );
        m.insert("value".into(), jnum(f.value));
        m.insert("expected".into(), jnum(f.expected));
        m.insert("lower".into(), jnum(f.lower));
        m.insert("upper".into(), jnum(f.upper));
        m.insert("score".into(), jnum(f.score));
        m.insert("direction".into(), serde_json::json!(f.direction.as_str()));
        m.insert("check".into(), serde_json::json!(f.check.as_str()));
        m.insert(
            "wow_pct".into(),
            f.wow_pct.map(jnum).unwrap_or(serde_json::Value::Null),
        );
        m.insert(
            "yoy_pct".into(),
            f.yoy_pct.map(jnum).unwrap_or(serde_json::Value::Null),
        );
        writeln!(w, "{}", serde_json::Value::Object(m))?;
    }
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
            r.push(format_ts(f.timestamp, f.granularity));
            r.push(num(f.value));
            r.push(num(f.expected));
            r.push(format!("{} … {}", num(f.lower), num(f.upper)));
            r.push(format!("{:.1}", f.score));
            r.push(format!("{} {}", f.check, f.direction.as_str()));
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
