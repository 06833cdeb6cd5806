//! SQL sources: a query on a PostgreSQL-wire database (PostgreSQL, Redshift
//! and other warehouses that speak it) whose result is the export.
//!
//! The query's `$from` and `$to` become bound parameters (`$1`, `$2`), never
//! text spliced into it; their type is the one the server infers from the
//! query (a `date` column compared with `$from` gets a date). Rows are
//! streamed into typed column buffers, one per result column, and the frame
//! then goes through the same selection and normalisation as a file's, so a
//! query and a CSV of the same rows give the same series. The database URL is
//! read at load time from `url_env` or `url_file` and never appears in a
//! message: errors name the source and the query.

use chrono::{Datelike, NaiveDate, NaiveDateTime, TimeZone};
use polars::prelude::*;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{ToSql, Type};

use super::SourceError;
use crate::config::syntax::{placeholder_ranges, placeholders};
use crate::config::{SourceConfig, SqlSource};

/// The evaluation window a query may use, as wall-clock times in the
/// source's timezone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// `$from`: the first period the evaluation needs (history included).
    pub from: NaiveDateTime,
    /// `$to`: the evaluation clock.
    pub to: NaiveDateTime,
}

/// The query with `$from`/`$to` as `$1`, `$2` (numbered in order of first
/// use) and the names in that order.
fn numbered(query: &str) -> (String, Vec<String>) {
    let names = placeholders(query);
    let mut text = String::with_capacity(query.len());
    let mut last = 0;
    for (name, range) in placeholder_ranges(query) {
        let n = names.iter().position(|x| *x == name).map_or(0, |p| p + 1);
        text.push_str(&query[last..range.start]);
        text.push_str(&format!("${n}"));
        last = range.end;
    }
    text.push_str(&query[last..]);
    (text, names)
}

fn error(cfg: &SourceConfig, sql: &SqlSource, message: impl std::fmt::Display) -> SourceError {
    SourceError::Read {
        source_name: cfg.name.clone(),
        file: crate::config::Location::Sql(sql.clone()).label(),
        message: message.to_string(),
    }
}

/// A server error with its detail and hint, which name the column or the
/// syntax problem; the rest of the driver's message adds nothing.
fn db_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut m = db.message().to_string();
            if let Some(d) = db.detail() {
                m.push_str(&format!(" ({d})"));
            }
            if let Some(h) = db.hint() {
                m.push_str(&format!("; hint: {h}"));
            }
            m
        }
        None => e.to_string(),
    }
}

/// A window bound in the parameter type the server inferred.
fn bind(
    cfg: &SourceConfig,
    t: NaiveDateTime,
    ty: &Type,
    name: &str,
) -> Result<Box<dyn ToSql + Sync>, String> {
    Ok(match *ty {
        Type::DATE => Box::new(t.date()),
        Type::TIMESTAMP => Box::new(t),
        Type::TIMESTAMPTZ => Box::new(
            cfg.timezone
                .from_local_datetime(&t)
                .earliest()
                .map_or_else(|| t.and_utc(), |l| l.with_timezone(&chrono::Utc)),
        ),
        Type::TEXT | Type::VARCHAR | Type::UNKNOWN => {
            Box::new(t.format("%Y-%m-%d %H:%M:%S").to_string())
        }
        ref other => {
            return Err(format!(
                "`${name}` is used as {other}; callout binds it as a date or timestamp: compare it with a date or timestamp column, or cast it (`${name}::date`)"
            ));
        }
    })
}

/// A `numeric` value as f64 (what `SUM(…)` returns in PostgreSQL; a metric
/// needs no more than f64's 15 digits). Decoded from the binary format:
/// digit count, weight (of the first base-10000 digit), sign, display
/// scale, then the base-10000 digits.
struct Numeric(f64);

impl<'a> postgres::types::FromSql<'a> for Numeric {
    fn from_sql(
        _: &Type,
        raw: &'a [u8],
    ) -> Result<Numeric, Box<dyn std::error::Error + Sync + Send>> {
        let word = |i: usize| -> Result<i16, Box<dyn std::error::Error + Sync + Send>> {
            let b = raw.get(2 * i..2 * i + 2).ok_or("truncated numeric")?;
            Ok(i16::from_be_bytes([b[0], b[1]]))
        };
        let (n, weight) = (usize::try_from(word(0)?)?, i32::from(word(1)?));
        let sign = u16::from_be_bytes(word(2)?.to_be_bytes());
        match sign {
            0xC000 => return Ok(Numeric(f64::NAN)),
            0xD000 => return Ok(Numeric(f64::INFINITY)),
            0xF000 => return Ok(Numeric(f64::NEG_INFINITY)),
            _ => {}
        }
        // as decimal text, parsed once: rounded exactly as the same number in a CSV
        let mut text = String::from(if sign == 0x4000 { "-0." } else { "0." });
        for k in 0..n {
            text.push_str(&format!("{:04}", word(4 + k)?));
        }
        text.push_str(&format!("0e{}", 4 * (weight + 1)));
        Ok(Numeric(text.parse()?))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
}

/// One result column's values as they stream in.
enum Buffer {
    Text(Vec<Option<String>>),
    Float(Vec<Option<f64>>),
    Date(Vec<Option<i32>>),
    /// Wall-clock ms in the source's timezone.
    Time(Vec<Option<i64>>),
}

impl Buffer {
    fn for_type(ty: &Type) -> Option<Buffer> {
        Some(match *ty {
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => Buffer::Text(Vec::new()),
            Type::FLOAT8 | Type::FLOAT4 | Type::INT2 | Type::INT4 | Type::INT8 | Type::NUMERIC => {
                Buffer::Float(Vec::new())
            }
            Type::DATE => Buffer::Date(Vec::new()),
            Type::TIMESTAMP | Type::TIMESTAMPTZ => Buffer::Time(Vec::new()),
            _ => return None,
        })
    }

    /// Append column `i` of `row` (of type `ty`).
    fn push(
        &mut self,
        row: &postgres::Row,
        i: usize,
        ty: &Type,
        tz: chrono_tz::Tz,
    ) -> Result<(), postgres::Error> {
        match self {
            Buffer::Text(v) => v.push(row.try_get::<_, Option<String>>(i)?),
            Buffer::Float(v) => v.push(match *ty {
                Type::FLOAT8 => row.try_get::<_, Option<f64>>(i)?,
                Type::FLOAT4 => row.try_get::<_, Option<f32>>(i)?.map(f64::from),
                Type::INT2 => row.try_get::<_, Option<i16>>(i)?.map(f64::from),
                Type::INT4 => row.try_get::<_, Option<i32>>(i)?.map(f64::from),
                Type::NUMERIC => row.try_get::<_, Option<Numeric>>(i)?.map(|n| n.0),
                // counts above 2^53 lose their last digits, as in a CSV read as floats
                _ => row.try_get::<_, Option<i64>>(i)?.map(|x| x as f64),
            }),
            Buffer::Date(v) => v.push(
                row.try_get::<_, Option<NaiveDate>>(i)?
                    // days since 1970-01-01 (day 719,163 of the common era)
                    .map(|d| d.num_days_from_ce() - 719_163),
            ),
            Buffer::Time(v) => v.push(if *ty == Type::TIMESTAMPTZ {
                row.try_get::<_, Option<chrono::DateTime<chrono::Utc>>>(i)?
                    .map(|t| crate::model::wall_ms(&t.with_timezone(&tz)))
            } else {
                row.try_get::<_, Option<NaiveDateTime>>(i)?
                    .map(|t| t.and_utc().timestamp_millis())
            }),
        }
        Ok(())
    }

    fn len(&self) -> usize {
        match self {
            Buffer::Text(v) => v.len(),
            Buffer::Float(v) => v.len(),
            Buffer::Date(v) => v.len(),
            Buffer::Time(v) => v.len(),
        }
    }

    fn into_column(self, name: &str) -> PolarsResult<Column> {
        let name = PlSmallStr::from(name);
        Ok(match self {
            Buffer::Text(v) => Column::new(name, v),
            Buffer::Float(v) => Column::new(name, v),
            Buffer::Date(v) => Column::new(name, v).cast(&DataType::Date)?,
            Buffer::Time(v) => {
                Column::new(name, v).cast(&DataType::Datetime(TimeUnit::Milliseconds, None))?
            }
        })
    }
}

/// Run the query over `window` and return its result as a frame with the
/// query's column names and types (text, float, date, datetime).
pub(super) fn query(
    cfg: &SourceConfig,
    sql: &SqlSource,
    window: &Window,
) -> Result<DataFrame, SourceError> {
    let err = |m: String| error(cfg, sql, m);
    let url = sql.url.read().map_err(|e| {
        err(format!(
            "cannot read the database URL from {}: {e}",
            sql.url.describe()
        ))
    })?;
    let mut pg: postgres::Config = url.parse().map_err(|e| {
        err(format!(
            "the database URL in {} is not a PostgreSQL URL (postgresql://user@host:port/db): {e}",
            sql.url.describe()
        ))
    })?;
    let timeout_ms = cfg.timeout.as_millis();
    pg.connect_timeout(cfg.timeout);
    // the server stops a statement that runs past the source's timeout
    pg.options(&format!("-c statement_timeout={timeout_ms}"));
    pg.application_name("callout");
    let mut client = pg.connect(postgres::NoTls).map_err(|e| {
        let hosts: Vec<String> = pg
            .get_hosts()
            .iter()
            .map(|h| match h {
                postgres::config::Host::Tcp(h) => h.clone(),
                #[cfg(unix)]
                postgres::config::Host::Unix(p) => p.display().to_string(),
            })
            .collect();
        err(format!(
            "cannot connect to the database at {} (URL from {}): {}",
            hosts.join(", "),
            sql.url.describe(),
            db_message(&e)
        ))
    })?;
    let (text, names) = numbered(&sql.query);
    let stmt = client
        .prepare(&text)
        .map_err(|e| err(format!("the query failed: {}", db_message(&e))))?;
    let mut params: Vec<Box<dyn ToSql + Sync>> = Vec::with_capacity(names.len());
    for (name, ty) in names.iter().zip(stmt.params()) {
        let t = if name == "from" {
            window.from
        } else {
            window.to
        };
        params.push(bind(cfg, t, ty, name).map_err(&err)?);
    }
    let columns: Vec<(String, Type)> = stmt
        .columns()
        .iter()
        .map(|c| (c.name().to_string(), c.type_().clone()))
        .collect();
    let mut buffers: Vec<Buffer> = Vec::with_capacity(columns.len());
    for (name, ty) in &columns {
        buffers.push(Buffer::for_type(ty).ok_or_else(|| {
            err(format!(
                "column `{name}` is of type {ty}; callout reads text, number, date and timestamp columns: cast it in the query (e.g. `{name}::text`, `{name}::float8`)"
            ))
        })?);
    }
    let mut rows = client
        .query_raw(
            &stmt,
            params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)),
        )
        .map_err(|e| err(format!("the query failed: {}", db_message(&e))))?;
    while let Some(row) = rows.next().map_err(|e| {
        err(format!(
            "the query failed while reading rows: {}",
            db_message(&e)
        ))
    })? {
        for (i, b) in buffers.iter_mut().enumerate() {
            b.push(&row, i, &columns[i].1, cfg.timezone)
                .map_err(|e| err(format!("column `{}`: {e}", columns[i].0)))?;
        }
    }
    let height = buffers.first().map_or(0, Buffer::len);
    let cols: Vec<Column> = buffers
        .into_iter()
        .zip(&columns)
        .map(|(b, (name, _))| b.into_column(name))
        .collect::<PolarsResult<_>>()
        .map_err(|e| err(e.to_string()))?;
    DataFrame::new(height, cols).map_err(|e| err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_outside_literals() {
        let q = "SELECT day, '$to is text' AS \"$x\", value FROM t WHERE day >= $from AND day <= $to AND day > $from";
        let (text, names) = numbered(q);
        assert_eq!(names, ["from", "to"]);
        assert_eq!(
            text,
            "SELECT day, '$to is text' AS \"$x\", value FROM t WHERE day >= $1 AND day <= $2 AND day > $1"
        );
    }

    fn numeric(weight: i16, sign: u16, digits: &[i16]) -> f64 {
        let mut raw = Vec::new();
        for w in [i16::try_from(digits.len()).unwrap(), weight] {
            raw.extend_from_slice(&w.to_be_bytes());
        }
        raw.extend_from_slice(&sign.to_be_bytes());
        raw.extend_from_slice(&2i16.to_be_bytes());
        for d in digits {
            raw.extend_from_slice(&d.to_be_bytes());
        }
        <Numeric as postgres::types::FromSql>::from_sql(&Type::NUMERIC, &raw)
            .unwrap()
            .0
    }

    #[test]
    fn numeric_decodes_like_the_same_number_in_text() {
        assert_eq!(
            numeric(1, 0, &[25, 3357, 5200]),
            "253357.52".parse::<f64>().unwrap()
        );
        assert_eq!(numeric(-1, 0x4000, &[12]), -0.0012);
        assert_eq!(numeric(2, 0, &[1]), 1e8);
        assert_eq!(numeric(0, 0, &[]), 0.0);
        assert!(numeric(0, 0xC000, &[]).is_nan());
        assert!(<Numeric as postgres::types::FromSql>::from_sql(&Type::NUMERIC, &[0, 1]).is_err());
    }
}
