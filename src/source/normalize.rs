//! Column kernels that normalise a selected export (time → wall-clock ms,
//! value → f64, keys checked) and cut one sorted series (duplicate
//! timestamps, bad values, granularity); `rows` orders the rows between.

use chrono::NaiveDate;
use chrono_tz::Tz;
use polars::prelude::*;

use super::offsets::{OffsetRun, Stamp};
use super::{METRIC, SourceError, TS, VALUE};
use crate::config::{Duplicates, SourceConfig};
use crate::model::{Granularity, MS_PER_DAY};
use crate::text::Decimal;
use crate::text::{Number, parse_time_str};

fn bad(cfg: &SourceConfig, file: &str, column: &str, message: String) -> SourceError {
    SourceError::BadColumn {
        source_name: cfg.name.clone(),
        file: file.to_string(),
        column: column.to_string(),
        message,
    }
}

/// The time column as wall-clock ms, with the number of empty cells (each
/// held as 0; the caller reports them). Messages number rows by `rows`
/// ([`Numbering`]).
///
/// Dates and naive datetimes are integer arithmetic on Polars' parsed
/// column; an aware datetime moves to the source zone by [`Offsets`].
fn times(
    cfg: &SourceConfig,
    c: &Column,
    file: &str,
    rows: Numbering<'_>,
) -> Result<(Vec<i64>, usize), SourceError> {
    let tc = cfg.time_column.as_str();
    let err = |e: PolarsError| bad(cfg, file, tc, e.to_string());
    let mut out = Vec::with_capacity(c.len());
    match c.dtype() {
        DataType::Date => {
            let days = c.cast(&DataType::Int32).map_err(err)?;
            let days = days.i32().map_err(err)?;
            let day_ms = |d: i64| d.checked_mul(MS_PER_DAY);
            if !all_plausible(days.min().map(i64::from), days.max().map(i64::from), day_ms)
                && let Some(e) = implausible(
                    cfg,
                    file,
                    rows,
                    days.iter().map(|d| d.map(i64::from)),
                    day_ms,
                    None,
                )
            {
                return Err(e);
            }
            if days.null_count() == 0 {
                for arr in days.downcast_iter() {
                    out.extend(arr.values().iter().map(|&d| i64::from(d) * MS_PER_DAY));
                }
            } else {
                out.extend(
                    days.iter()
                        .map(|d| d.map_or(0, |d| i64::from(d) * MS_PER_DAY)),
                );
            }
            Ok((out, days.null_count()))
        }
        DataType::Datetime(unit, tz) => {
            let div = match unit {
                TimeUnit::Nanoseconds => 1_000_000,
                TimeUnit::Microseconds => 1_000,
                TimeUnit::Milliseconds => 1,
            };
            let raw = c.cast(&DataType::Int64).map_err(err)?;
            let raw = raw.i64().map_err(err)?;
            let to_ms = |v: i64| Some(v.div_euclid(div));
            let (lo, hi) = (raw.min(), raw.max());
            if !all_plausible(lo, hi, to_ms)
                && let Some(e) = implausible(cfg, file, rows, raw.iter(), to_ms, Some(*unit))
            {
                return Err(e);
            }
            if let (Some(lo), Some(hi)) = (lo, hi)
                && let Some(message) = squashed(lo, hi, *unit, raw.len() - raw.null_count())
            {
                return Err(bad(cfg, file, tc, message));
            }
            if tz.is_none() && raw.null_count() == 0 {
                // naive, no empty cell (the usual block): slices, no Options
                for arr in raw.downcast_iter() {
                    out.extend(arr.values().iter().map(|&v| v.div_euclid(div)));
                }
                return Ok((out, 0));
            }
            let mut offsets = tz.is_some().then(|| Offsets::new(cfg.timezone));
            let mut empty = 0;
            for v in raw.iter() {
                let ms = v.map(|v| v.div_euclid(div));
                let wall = match &mut offsets {
                    Some(o) => ms.and_then(|ms| o.wall(ms)),
                    None => ms,
                };
                empty += usize::from(wall.is_none());
                out.push(wall.unwrap_or(0));
            }
            Ok((out, empty))
        }
        DataType::String => {
            let s = c.str().map_err(err)?;
            let (out, empty) = text_times(cfg, s, file, rows)?;
            let (lo, hi) = (out.iter().min().copied(), out.iter().max().copied());
            if !all_plausible(lo, hi, Some)
                && let Some(e) = implausible(
                    cfg,
                    file,
                    rows,
                    s.iter().zip(&out).map(|(v, &t)| v.map(|_| t)),
                    Some,
                    None,
                )
            {
                return Err(e);
            }
            Ok((out, empty))
        }
        // numbers written for a `time_format` (`20250306` as `%Y%m%d`,
        // Excel serial days): read as text
        dt if dt.is_primitive_numeric() && cfg.dialect.time_format.is_some() => {
            let text = c.cast(&DataType::String).map_err(err)?;
            times(cfg, &text, file, rows)
        }
        other => Err(bad(
            cfg,
            file,
            tc,
            format!("has type {other}, expected a date, datetime or ISO string"),
        )),
    }
}

/// A time column read as text → wall-clock ms (0 for an empty cell) and
/// the number of empty cells: with the source's `time_format`, else as ISO
/// 8601 ([`parse_time_str`]). Each distinct text is parsed once (a
/// date-ordered export repeats every date once per series). A value that
/// does not parse names its row and the format tried; without a
/// `time_format`, the message offers the one the column's values fit.
fn text_times(
    cfg: &SourceConfig,
    s: &StringChunked,
    file: &str,
    rows: Numbering<'_>,
) -> Result<(Vec<i64>, usize), SourceError> {
    let tc = cfg.time_column.as_str();
    let format = cfg.dialect.time_format.as_ref();
    let parse = |v: &str| match format {
        Some(f) => f.parse(v, cfg.timezone),
        None => parse_time_str(v, cfg.timezone),
    };
    let mut out = Vec::with_capacity(s.len());
    let mut empty = 0;
    let mut seen: PlHashMap<&str, Option<i64>> = PlHashMap::new();
    let mut last: Option<(&str, i64)> = None;
    for (row, v) in s.iter().enumerate() {
        let Some(v) = v.filter(|v| !v.trim().is_empty()) else {
            empty += 1;
            out.push(0);
            continue;
        };
        if let Some((lv, lt)) = last
            && lv == v
        {
            out.push(lt);
            continue;
        }
        let t = *seen.entry(v).or_insert_with(|| parse(v));
        let Some(t) = t else {
            let row = rows.shown(row);
            let message = match format {
                Some(f) => format!("row {row}: {v:?} does not fit time_format {:?}", f.spec()),
                None => {
                    let sample: Vec<&str> = s.iter().flatten().take(2000).collect();
                    let hint = match crate::text::infer_time_format(&sample, false) {
                        Ok(Some(g)) => format!(
                            "; its values look like {:?}: set time_format = {:?} on the source",
                            g.format.spec(),
                            g.format.spec()
                        ),
                        _ => "; set time_format (strftime, e.g. \"%d/%m/%Y\") on the source".into(),
                    };
                    format!(
                        "row {row}: {v:?} is not an ISO date or datetime (e.g. 2024-01-31 or 2024-01-31T10:00:00){hint}"
                    )
                }
            };
            return Err(bad(cfg, file, tc, message));
        };
        last = Some((v, t));
        out.push(t);
    }
    Ok((out, empty))
}

/// How a frame's rows are numbered in messages: a wide export's rows come
/// in blocks of `block` rows, one per metric column, and a row is counted
/// within its block from 1 — or, for a workbook, by the spreadsheet row
/// each data row came from (`sheet`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Numbering<'a> {
    block: usize,
    sheet: Option<&'a [usize]>,
}

impl Numbering<'_> {
    /// The number a person finds frame row `row` (0-based) by.
    fn shown(&self, row: usize) -> usize {
        let r = row % self.block.max(1);
        self.sheet.and_then(|s| s.get(r).copied()).unwrap_or(r + 1)
    }
}

/// 1800-01-01 and 2200-01-01 (ms since 1970): an export's timestamps lie
/// between; one outside is a misread column (a wrong unit, a garbled
/// year), not a date.
const EARLIEST_MS: i64 = -5_364_662_400_000;
const LATEST_MS: i64 = 7_258_118_400_000;

/// Dates from 1990 to 2099 (ms since 1970), where a number read in another
/// unit must land to be offered as the likely reading.
const LIKELY_MS: std::ops::Range<i64> = 631_152_000_000..4_102_444_800_000;

/// True for a timestamp (ms) that can be a date of an export: within the
/// plausible years, or a placeholder: `0001-01-01` (left out per series
/// with the other placeholders, see [`placeholders`]) or `9999-12-31`
/// ("no end", left out per series as a row dated in the future).
fn plausible(ms: i64) -> bool {
    (EARLIEST_MS..LATEST_MS).contains(&ms)
        || [DAY_ONE, LAST_DAY].contains(&ms.div_euclid(MS_PER_DAY))
}

/// `9999-12-31` in days since 1970: "no end" in many systems.
const LAST_DAY: i64 = 2_932_896;

/// True when the smallest and largest value of a column (`to_ms` makes them
/// ms) say every value is plausible; when not, a row has to be looked for.
fn all_plausible(lo: Option<i64>, hi: Option<i64>, to_ms: impl Fn(i64) -> Option<i64>) -> bool {
    let inside = |v: Option<i64>| {
        v.is_none_or(|v| to_ms(v).is_some_and(|t| (EARLIEST_MS..LATEST_MS).contains(&t)))
    };
    inside(lo) && inside(hi)
}

/// The error for a time column with values that are no plausible dates:
/// the first such row (numbered by `rows`: within its metric column of a wide
/// export), shown as a date, and the reading another unit would give it.
/// `None` when every value is plausible after all (placeholders only).
fn implausible(
    cfg: &SourceConfig,
    file: &str,
    rows: Numbering<'_>,
    raw: impl Iterator<Item = Option<i64>>,
    to_ms: impl Fn(i64) -> Option<i64>,
    unit: Option<TimeUnit>,
) -> Option<SourceError> {
    let (mut first, mut count, mut total) = (None, 0usize, 0usize);
    for (row, v) in raw.enumerate() {
        let Some(v) = v else { continue };
        total += 1;
        if !to_ms(v).is_some_and(plausible) {
            count += 1;
            first.get_or_insert((row, v));
        }
    }
    let (row, v) = first?;
    let shown_ms = to_ms(v)
        .filter(|&t| chrono::DateTime::from_timestamp_millis(t).is_some())
        .map_or_else(|| format!("the number {v}"), shown);
    let hint = unit
        .and_then(|u| other_unit(v, u).find(|(_, t)| LIKELY_MS.contains(t)))
        .map(|(name, t)| {
            format!(
                "; read as {name} since 1970 the stored number {v} would be {}: check the unit the column was written with",
                shown(t)
            )
        })
        .unwrap_or_default();
    Some(bad(
        cfg,
        file,
        &cfg.time_column,
        format!(
            "row {}: {shown_ms} is no plausible date (outside the years 1800 to 2199){hint}; {count} of {total} timestamp(s) like it; the file is left out",
            rows.shown(row)
        ),
    ))
}

/// The readings of `v` (stored in `unit`) in the other units a column may
/// have been written with, as ms: `(unit name, ms)`.
fn other_unit(v: i64, unit: TimeUnit) -> impl Iterator<Item = (&'static str, i64)> {
    [
        ("seconds", None, v.checked_mul(1000)),
        ("milliseconds", Some(TimeUnit::Milliseconds), Some(v)),
        (
            "microseconds",
            Some(TimeUnit::Microseconds),
            Some(v.div_euclid(1000)),
        ),
        (
            "nanoseconds",
            Some(TimeUnit::Nanoseconds),
            Some(v.div_euclid(1_000_000)),
        ),
    ]
    .into_iter()
    .filter(move |(_, u, _)| *u != Some(unit))
    .filter_map(|(name, _, t)| Some((name, t?)))
}

/// A datetime column whose `n` values (stored in `unit`, from `lo` to `hi`)
/// all fall within a day of 1970-01-01 but are not all one, while another
/// unit would make them dates of our time: a column written in another
/// unit (seconds into nanoseconds), as a message.
fn squashed(lo: i64, hi: i64, unit: TimeUnit, n: usize) -> Option<String> {
    let div = match unit {
        TimeUnit::Nanoseconds => 1_000_000,
        TimeUnit::Microseconds => 1_000,
        TimeUnit::Milliseconds => 1,
    };
    let (lo_ms, hi_ms) = (lo.div_euclid(div), hi.div_euclid(div));
    if lo == hi || lo_ms < -MS_PER_DAY || hi_ms >= 2 * MS_PER_DAY {
        return None;
    }
    let (name, from, to) = other_unit(lo, unit)
        .zip(other_unit(hi, unit))
        .map(|((name, a), (_, b))| (name, a, b))
        .find(|(_, a, b)| LIKELY_MS.contains(a) && LIKELY_MS.contains(b))?;
    Some(format!(
        "all {n} timestamps fall on the first days of Unix time ({} to {}); read as {name} since 1970 the stored numbers {lo} to {hi} would run from {} to {}: check the unit the column was written with; the file is left out",
        shown_exact(lo_ms),
        shown_exact(hi_ms),
        shown(from),
        shown(to)
    ))
}

/// A timestamp with its time of day, whatever it is.
fn shown_exact(t: i64) -> String {
    crate::model::format_ts(t, Granularity::Hour)
}

const MS_PER_HOUR: i64 = 3_600_000;

/// A zone's offset from UTC, looked up once per hour of UTC time rather than
/// per row: when both ends of the hour have the same offset the whole hour
/// has it (a zone changes its offset at most once within an hour); an hour
/// with a change is converted row by row.
struct Offsets {
    tz: Tz,
    /// The hour (ms since 1970 / 1 h) last looked up.
    hour: i64,
    /// Its offset in ms, `None` for an hour converted row by row.
    offset: Option<i64>,
}

impl Offsets {
    fn new(tz: Tz) -> Offsets {
        Offsets {
            tz,
            hour: i64::MIN,
            offset: None,
        }
    }

    /// Wall-clock ms in the zone of the UTC instant `ms` (`None` out of range).
    fn wall(&mut self, ms: i64) -> Option<i64> {
        let hour = ms.div_euclid(MS_PER_HOUR);
        if hour != self.hour {
            self.hour = hour;
            let start = hour.checked_mul(MS_PER_HOUR);
            let at = |t: Option<i64>| t.and_then(|t| Some(self.per_row(t)? - t));
            let (a, b) = (
                at(start),
                at(start.and_then(|s| s.checked_add(MS_PER_HOUR - 1))),
            );
            self.offset = a.filter(|_| a == b);
        }
        match self.offset {
            Some(o) => Some(ms + o),
            None => self.per_row(ms),
        }
    }

    fn per_row(&self, ms: i64) -> Option<i64> {
        let utc = chrono::DateTime::from_timestamp_millis(ms)?;
        Some(crate::model::wall_ms(&utc.with_timezone(&self.tz)))
    }
}

/// The time column of a block read as text (see `schema::text_time`) as
/// datetimes in ms, parsed here by [`naive_iso_ms`] (or [`zoned_iso`] when
/// `zoned`): Polars parses `2024-01-31` and `2024-01-31 10:00:00` through
/// chrono, format string and all, at every row. `Err` when a cell is not of
/// that form; the file is then read whole, which parses the column the way
/// Polars does. A zoned column comes back in UTC with the offsets its rows
/// were written with, for the check that one zone explains them (`offsets`).
pub(super) fn iso_times(
    cfg: &SourceConfig,
    mut df: DataFrame,
    file: &str,
    zoned: bool,
) -> Result<(DataFrame, Option<OffsetRun>), SourceError> {
    let tc = cfg.time_column.as_str();
    let err = |e: PolarsError| bad(cfg, file, tc, e.to_string());
    let text = df.column(tc).map_err(err)?.str().map_err(err)?;
    let mut run = zoned.then(OffsetRun::default);
    // (a row whose text equals the row before's has its stamp: the offsets
    // see only the rows parsed, which changes nothing they are told)
    let mut parse = |v: &str| {
        let stamp = if zoned {
            zoned_iso(v.as_bytes())
        } else {
            naive_iso_ms(v.as_bytes()).map(|ms| Stamp { ms, offset: 0 })
        };
        let stamp = stamp
            .ok_or_else(|| bad(cfg, file, tc, format!("{v:?} is not a plain ISO datetime")))?;
        if let Some(run) = &mut run {
            run.push(stamp);
        }
        Ok::<i64, SourceError>(stamp.ms)
    };
    let ms = if text.null_count() == 0 {
        let mut ms = Vec::with_capacity(text.len());
        // an export ordered by time repeats each time for every series:
        // the same text as the row before is the same number
        let mut last: Option<(&str, i64)> = None;
        for arr in text.downcast_iter() {
            for v in arr.values_iter() {
                let t = match last {
                    Some((lv, lt)) if lv == v => lt,
                    _ => parse(v)?,
                };
                last = Some((v, t));
                ms.push(t);
            }
        }
        Int64Chunked::from_vec(tc.into(), ms)
    } else {
        let mut ms: Vec<Option<i64>> = Vec::with_capacity(text.len());
        for v in text.iter() {
            ms.push(v.map(&mut parse).transpose()?);
        }
        Int64Chunked::from_iter_options(tc.into(), ms.into_iter())
    };
    let zone = zoned.then_some(TimeZone::UTC);
    let col = ms.into_datetime(TimeUnit::Milliseconds, zone).into_series();
    df.with_column(Column::from(col)).map_err(err)?;
    Ok((df, run))
}

/// A plain ISO datetime as [`naive_iso_ms`] reads it, then its UTC offset:
/// `Z`, `+HH:MM` or `+HHMM` (as Polars' `%z` and RFC 3339 write them) → the
/// instant (ms since 1970, UTC) and the offset. `None` for anything else,
/// a date alone included.
pub(super) fn zoned_iso(s: &[u8]) -> Option<Stamp> {
    fn two(s: &[u8]) -> Option<i32> {
        match s {
            [a @ b'0'..=b'9', b @ b'0'..=b'9'] => {
                Some(i32::from(a - b'0') * 10 + i32::from(b - b'0'))
            }
            _ => None,
        }
    }
    let n = s.len();
    let (naive, offset) = if matches!(s.last(), Some(b'Z' | b'z')) {
        (&s[..n - 1], 0)
    } else {
        // `+HH:MM` or `+HHMM`
        let at = if n >= 6 && s[n - 3] == b':' {
            n - 6
        } else {
            n.checked_sub(5)?
        };
        let (naive, tail) = s.split_at(at);
        let sign = match tail.first()? {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let (h, m) = (two(&tail[1..3])?, two(&tail[tail.len() - 2..])?);
        if h > 23 || m > 59 {
            return None;
        }
        (naive, sign * (h * 3600 + m * 60))
    };
    // a time of day comes before an offset (`2024-01-31T10:00`)
    if naive.len() < 16 {
        return None;
    }
    let ms = naive_iso_ms(naive)?.checked_sub(i64::from(offset) * 1000)?;
    Some(Stamp { ms, offset })
}

/// `YYYY-MM-DD`, optionally followed by `T` or a space and `HH:MM`,
/// `HH:MM:SS` or `HH:MM:SS.f` (1 to 9 digits) → ms since 1970, the value
/// Polars' datetime patterns give (microseconds, floored to ms). `None` for
/// anything else, an impossible date or time, or a leap second.
pub(super) fn naive_iso_ms(s: &[u8]) -> Option<i64> {
    fn num(s: &[u8]) -> Option<i64> {
        s.iter().try_fold(0i64, |n, &b| {
            b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0'))
        })
    }
    if s.len() < 10 || s[4] != b'-' || s[7] != b'-' {
        return None;
    }
    let (y, m, d) = (num(&s[..4])?, num(&s[5..7])?, num(&s[8..10])?);
    // chrono's calendar (an impossible date is none); plain integer work
    let date = NaiveDate::from_ymd_opt(
        i32::try_from(y).ok()?,
        u32::try_from(m).ok()?,
        u32::try_from(d).ok()?,
    )?;
    let mut ms = crate::model::date_ms(date);
    let rest = &s[10..];
    if rest.is_empty() {
        return Some(ms);
    }
    if rest.len() < 6 || !matches!(rest[0], b'T' | b' ') || rest[3] != b':' {
        return None;
    }
    let (h, mi) = (num(&rest[1..3])?, num(&rest[4..6])?);
    if h > 23 || mi > 59 {
        return None;
    }
    ms += h * MS_PER_HOUR + mi * 60_000;
    let rest = &rest[6..];
    if rest.is_empty() {
        return Some(ms);
    }
    if rest.len() < 3 || rest[0] != b':' {
        return None;
    }
    let sec = num(&rest[1..3])?;
    if sec > 59 {
        return None;
    }
    ms += sec * 1000;
    let rest = &rest[3..];
    if rest.is_empty() {
        return Some(ms);
    }
    let digits = &rest[1..];
    if rest[0] != b'.' || digits.is_empty() || digits.len() > 9 {
        return None;
    }
    num(digits)?;
    // the first three digits are the ms; the rest is below the floor
    let frac = digits.iter().chain(b"00").take(3);
    Some(ms + frac.fold(0, |n, &b| n * 10 + i64::from(b - b'0')))
}

/// The value column as f64; a non-numeric cell is an error naming its column
/// and row (`locate` maps a row of the frame to both).
fn values(
    cfg: &SourceConfig,
    c: &Column,
    file: &str,
    locate: &dyn Fn(usize) -> (String, usize),
) -> Result<Float64Chunked, SourceError> {
    let (column, _) = locate(0);
    let err = |e: PolarsError| bad(cfg, file, &column, e.to_string());
    if c.dtype().is_primitive_numeric() {
        let f = c.cast(&DataType::Float64).map_err(err)?;
        return Ok(f.f64().map_err(err)?.clone());
    }
    if c.dtype() == &DataType::Null {
        return Err(bad(cfg, file, &column, "has no values at all".into()));
    }
    let s = c.cast(&DataType::String).map_err(err)?;
    let s = s.str().map_err(err)?;
    let decimal = cfg.dialect.decimal;
    let mut out: Vec<Option<f64>> = Vec::with_capacity(s.len());
    for (row, v) in s.iter().enumerate() {
        let Some(v) = v else {
            out.push(None);
            continue;
        };
        match crate::text::parse_number(v, decimal) {
            Number::Value(x) => out.push(Some(x)),
            Number::Missing => out.push(None),
            Number::Bad => {
                let (column, row) = locate(row);
                let hint = match (&cfg.layout, decimal) {
                    (crate::config::Layout::Wide { metrics: None }, _) => {
                        "; list the metric columns in `metrics` to leave text columns out"
                    }
                    (_, Decimal::Point) if v.contains(',') => {
                        " (read with decimal = \".\"; a decimal comma needs decimal = \",\" on the source)"
                    }
                    (_, Decimal::Comma) => " (read with decimal = \",\")",
                    _ => "",
                };
                return Err(bad(
                    cfg,
                    file,
                    &column,
                    format!("row {row}: {:?} is not a number{hint}", v.trim()),
                ));
            }
        }
    }
    Ok(Float64Chunked::from_iter_options(
        VALUE.into(),
        out.into_iter(),
    ))
}

/// Key columns of a normalised frame: `metric`, then the dimensions.
pub(super) fn key_columns(cfg: &SourceConfig) -> Vec<String> {
    let mut k = vec![METRIC.to_string()];
    k.extend(cfg.dimensions.iter().cloned());
    k
}

/// One file's selected rows `__ts, metric, dims…, __value` → the normalised
/// frame `metric, dims… (text), __ts (i64 ms), __value (f64)`, empty values
/// dropped. `wide` names the metric columns of a wide export in block order;
/// with the frame come the values each of them held (a column with none gives
/// no series, which is reported).
pub(super) fn frame(
    cfg: &SourceConfig,
    df: DataFrame,
    file: &str,
    wide: &[String],
) -> Result<(DataFrame, Vec<usize>), SourceError> {
    frame_numbered(cfg, df, file, wide, None)
}

/// [`frame`] of a workbook's table, whose messages name each row by its
/// spreadsheet row (`sheet_rows`, one per data row of the table).
pub(super) fn frame_numbered(
    cfg: &SourceConfig,
    df: DataFrame,
    file: &str,
    wide: &[String],
    sheet_rows: Option<&[usize]>,
) -> Result<(DataFrame, Vec<usize>), SourceError> {
    let block = if wide.is_empty() {
        df.height()
    } else {
        df.height() / wide.len()
    };
    let rows = Numbering {
        block,
        sheet: sheet_rows,
    };
    let locate = |row: usize| -> (String, usize) {
        let column = match &cfg.layout {
            crate::config::Layout::Long { value_column, .. } => value_column.clone(),
            crate::config::Layout::Wide { .. } => {
                wide.get(row / block.max(1)).cloned().unwrap_or_default()
            }
        };
        (column, rows.shown(row))
    };
    let err = |e: PolarsError| bad(cfg, file, "", e.to_string());
    let (ts, empty_ts) = times(cfg, df.column(TS).map_err(err)?, file, rows)?;
    let vals = values(cfg, df.column(VALUE).map_err(err)?, file, &locate)?;
    let key_columns = key_columns(cfg);
    let mut cols: Vec<Column> = Vec::with_capacity(key_columns.len() + 2);
    for k in &key_columns {
        let c = df
            .column(k)
            .map_err(err)?
            .cast(&DataType::String)
            .map_err(err)?;
        if c.null_count() > 0 {
            let shown = if k == METRIC {
                match &cfg.layout {
                    crate::config::Layout::Long {
                        metric: crate::config::MetricName::Column(c),
                        ..
                    } => c.clone(),
                    _ => k.clone(),
                }
            } else {
                k.clone()
            };
            return Err(bad(
                cfg,
                file,
                &shown,
                format!("{} empty key value(s); every row needs one", c.null_count()),
            ));
        }
        cols.push(c);
    }
    if empty_ts > 0 {
        return Err(bad(
            cfg,
            file,
            &cfg.time_column,
            format!("{empty_ts} empty timestamp(s)"),
        ));
    }
    cols.push(Column::new(TS.into(), ts));
    cols.push(vals.into_series().into());
    let h = df.height();
    let frame = DataFrame::new(h, cols).map_err(err)?;
    // an empty cell is a period without data (the missing check reports gaps);
    // NaN and infinities stay in and are reported per series
    let present = frame.column(VALUE).map_err(err)?.is_not_null();
    let filled = (0..wide.len())
        .map(|i| {
            let from = i64::try_from(i * block).unwrap_or(i64::MAX);
            present.slice(from, block).num_trues()
        })
        .collect();
    if present.all() {
        Ok((frame, filled))
    } else {
        Ok((frame.filter(&present).map_err(err)?, filled))
    }
}

/// A timestamp in a message: a date at midnight, else a datetime.
fn shown(t: i64) -> String {
    let g = if t % MS_PER_DAY == 0 {
        Granularity::Day
    } else {
        Granularity::Hour
    };
    crate::model::format_ts(t, g)
}

/// `t` on the period grid of `g`: dated granularities keep the date (any
/// time of day belongs to that day), finer ones go to the nearest period
/// (`12:00:01` and `11:59:59` are both the 12:00 hour).
fn snap(t: i64, g: Granularity) -> i64 {
    match g {
        Granularity::Day | Granularity::Week => t.div_euclid(MS_PER_DAY) * MS_PER_DAY,
        _ => {
            let step = g.step_ms();
            (t + step / 2).div_euclid(step) * step
        }
    }
}

/// One series: snap its timestamps to the period grid, append its finite
/// points to `out_ts`/`out_v` (NaN and infinities are dropped and reported),
/// combine rows of one period by the source's `duplicates` policy, find the
/// spacing. On `Err` the caller discards what was appended.
pub(super) fn series_slice(
    cfg: &SourceConfig,
    ts: &[i64],
    vals: &[f64],
    out_ts: &mut Vec<i64>,
    out_v: &mut Vec<f64>,
) -> Result<(Granularity, Option<String>), String> {
    let skip = placeholders(ts);
    let placeholder = (skip > 0).then(|| {
        let mut days: Vec<String> = ts[..skip]
            .iter()
            .map(|&t| crate::model::format_ts(t, Granularity::Day))
            .collect();
        days.dedup();
        format!(
            "{skip} row(s) dated {}, a placeholder for \"no date\" far before the rest of the series (which starts {}): left out",
            days.join(", "),
            shown(ts[skip])
        )
    });
    let (ts, vals) = (&ts[skip..], &vals[skip..]);
    let g = match cfg.granularity {
        Some(g) => g,
        None => infer_granularity(ts).ok_or_else(|| {
            if monthly(ts) {
                "one row per month: callout evaluates series from a minute to a week apart, not monthly ones yet; export the weeks or days the months are made of".to_string()
            } else {
                format!("cannot infer the granularity from its timestamps; declare `granularity` for source `{}`", cfg.name)
            }
        })?,
    };
    // snapping is monotone, so the series stays sorted; a copy only when needed
    let snapped: std::borrow::Cow<'_, [i64]> = if ts.iter().all(|&t| snap(t, g) == t) {
        std::borrow::Cow::Borrowed(ts)
    } else {
        std::borrow::Cow::Owned(ts.iter().map(|&t| snap(t, g)).collect())
    };
    let ts = &snapped[..];
    if cfg.duplicates == Duplicates::Error
        && let Some(w) = ts.windows(2).position(|w| w[0] == w[1])
    {
        return Err(format!(
            "duplicate timestamp {} (each series may have one row per period; set `duplicates` = \"first\", \"last\", \"sum\" or \"mean\" on the source to combine them); series skipped",
            shown(ts[w])
        ));
    }
    let before = out_ts.len();
    let mut bad = 0usize;
    let mut first_bad = None;
    // rows already combined into the newest output point (for `mean`)
    let mut in_last = 0usize;
    for (&x, &y) in ts.iter().zip(vals) {
        if !y.is_finite() {
            bad += 1;
            first_bad.get_or_insert(x);
            continue;
        }
        let same = out_ts.len() > before && out_ts.last() == Some(&x);
        if !same {
            if cfg.duplicates == Duplicates::Mean && in_last > 1 {
                if let Some(v) = out_v.last_mut() {
                    *v /= in_last as f64;
                }
            }
            out_ts.push(x);
            out_v.push(y);
            in_last = 1;
            continue;
        }
        in_last += 1;
        if let Some(v) = out_v.last_mut() {
            match cfg.duplicates {
                Duplicates::Error | Duplicates::First => {}
                Duplicates::Last => *v = y,
                Duplicates::Sum | Duplicates::Mean => *v += y,
            }
        }
    }
    if cfg.duplicates == Duplicates::Mean && in_last > 1 {
        if let Some(v) = out_v.last_mut() {
            *v /= in_last as f64;
        }
    }
    let dropped = first_bad.map(|x| {
        format!(
            "{bad} NaN or infinite value(s), first at {}; those points are treated as missing",
            shown(x)
        )
    });
    if out_ts.len() == before {
        return Err("no numeric values".into());
    }
    let note = match (placeholder, dropped) {
        (Some(p), Some(d)) => Some(format!("{p}; {d}")),
        (p, d) => p.or(d),
    };
    Ok((g, note))
}

/// `0001-01-01` in days since 1970: .NET's and Java's "no date".
const DAY_ONE: i64 = -719_162;

/// Days exports write for "no date" (days since 1970): Excel's day zero
/// 1899-12-30, the day after, 1900-01-01, Unix time's zero 1970-01-01 (and
/// 1969-12-31, where it is read west of UTC) and `0001-01-01`.
const PLACEHOLDER_DAYS: [i64; 6] = [-25_569, -25_568, -25_567, -1, 0, DAY_ONE];

/// A placeholder day is taken for one only this far before the rest of its series.
const PLACEHOLDER_GAP: i64 = 365 * MS_PER_DAY;

/// How many of a sorted series' first rows are dated on placeholder days
/// more than [`PLACEHOLDER_GAP`] before the rest (none when the whole series
/// is, or runs on from them: a series may really begin in 1970).
fn placeholders(ts: &[i64]) -> usize {
    let lead = ts
        .iter()
        .take_while(|t| PLACEHOLDER_DAYS.contains(&t.div_euclid(MS_PER_DAY)))
        .count();
    match (lead.checked_sub(1).and_then(|l| ts.get(l)), ts.get(lead)) {
        (Some(&last), Some(&next)) if next - last > PLACEHOLDER_GAP => lead,
        _ => 0,
    }
}

/// True when every step between the timestamps is a calendar month (28 to 31 days).
fn monthly(ts: &[i64]) -> bool {
    ts.len() >= 2
        && ts
            .windows(2)
            .all(|w| (28 * MS_PER_DAY..=31 * MS_PER_DAY).contains(&(w[1] - w[0])))
}

/// Median spacing mapped to a granularity; a single point counts as daily.
pub fn infer_granularity(ts: &[i64]) -> Option<Granularity> {
    if ts.len() < 2 {
        return Some(if ts.first().is_some_and(|t| t % MS_PER_DAY != 0) {
            Granularity::Hour
        } else {
            Granularity::Day
        });
    }
    // repeated timestamps (combined later by the `duplicates` policy) are no spacing
    let mut d: Vec<i64> = ts
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|&x| x > 0)
        .collect();
    if d.is_empty() {
        return infer_granularity(&ts[..1]);
    }
    let mid = d.len() / 2;
    let (_, m, _) = d.select_nth_unstable(mid);
    let m = *m;
    let min = d.iter().copied().min().unwrap_or(m);
    // timestamps a few seconds off the grid (`12:00:03`, `13:00:01`) still
    // mean hourly; their exact spacing is never a whole number of minutes
    let nearest_minute = (m + 30_000).div_euclid(60_000) * 60_000;
    Granularity::from_step_ms(m)
        .or_else(|| {
            ((m - nearest_minute).abs() * 100 <= m)
                .then(|| Granularity::from_step_ms(nearest_minute))
                .flatten()
        })
        .or_else(|| Granularity::from_step_ms(min))
        .or_else(|| {
            // daylight-saving days are 23 or 25 hours of wall clock
            if (m - MS_PER_DAY).abs() <= 3_600_000 {
                Some(Granularity::Day)
            } else {
                None
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aware_times_move_to_the_zone_like_a_per_row_conversion() {
        // around the 2024 changes of Berlin (whole hours), Lord Howe (half an
        // hour, at 2:00 local) and a zone without changes; an odd step meets
        // every minute of the hour, unsorted rows revisit hours
        for (zone, from) in [
            ("Europe/Berlin", 1_711_846_800_000_i64),
            ("Europe/Berlin", 1_729_990_800_000),
            ("Australia/Lord_Howe", 1_712_415_600_000),
            ("Australia/Lord_Howe", 1_728_142_200_000),
            ("Asia/Kathmandu", 1_711_846_800_000),
        ] {
            let tz: Tz = zone.parse().unwrap();
            let mut o = Offsets::new(tz);
            let mut ms: Vec<i64> = (0..400).map(|k| from - 3 * H + k * 97_003).collect();
            ms.extend([from + H, from - H, from]);
            for t in ms {
                let want = chrono::DateTime::from_timestamp_millis(t)
                    .map(|utc| crate::model::wall_ms(&utc.with_timezone(&tz)));
                assert_eq!(o.wall(t), want, "{zone} at {t}");
            }
        }
        assert_eq!(Offsets::new(chrono_tz::UTC).wall(i64::MAX), None);
    }

    #[test]
    fn plain_iso_datetimes_parse_as_polars_parses_them() {
        let cells = [
            "2024-02-29 23:59:59.999999",
            "1969-12-31T23:59:59.5",
            "1900-03-01 12:34:56.7",
            "2025-02-10 00:00",
            "2025-02-10T08:05:03",
            "2000-12-31 00:00:00.000000001",
            "1600-01-01 00:00:00",
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        std::fs::write(&path, format!("t\n{}\n", cells.join("\n"))).unwrap();
        let df = CsvReadOptions::default()
            .map_parse_options(|o| o.with_try_parse_dates(true))
            .try_into_reader_with_file_path(Some(path))
            .unwrap()
            .finish()
            .unwrap();
        let col = df.column("t").unwrap();
        assert_eq!(
            col.dtype(),
            &DataType::Datetime(TimeUnit::Microseconds, None)
        );
        let us = col.cast(&DataType::Int64).unwrap();
        for (cell, us) in cells.iter().zip(us.i64().unwrap().iter()) {
            let want = us.unwrap().div_euclid(1000);
            assert_eq!(naive_iso_ms(cell.as_bytes()), Some(want), "{cell}");
        }
        for cell in [
            "2024-02-30 00:00:00",
            "2023-02-29",
            "2024-1-01 00:00",
            "2024-01-01 24:00:00",
            "2024-01-01 10:00:60",
            "2024-01-01T10:00:00Z",
            "2024-01-01 10:00:00.",
            "2024-01-01 10:00:00.1234567890",
            " 2024-01-01",
            "2024/01/01 10:00",
            "2024-01-01T1000",
        ] {
            assert_eq!(naive_iso_ms(cell.as_bytes()), None, "{cell}");
        }
    }

    fn source(extra: &str) -> SourceConfig {
        let text = format!(
            "[store]\npath = \"s.db\"\n\n[[source]]\nname = \"s\"\npath = \"s.csv\"\n{extra}\n"
        );
        let cfg = crate::config::compile_str(&text, std::path::Path::new("/tmp/c.toml"), &|_| None)
            .unwrap();
        cfg.sources[0].clone()
    }

    const H: i64 = 3_600_000;

    /// Run one series through the kernel: the points kept, or the error.
    fn check(extra: &str, ts: &[i64], vals: &[f64]) -> Result<Vec<(i64, f64)>, String> {
        let cfg = source(extra);
        let (mut out_ts, mut out_v) = (vec![], vec![]);
        series_slice(&cfg, ts, vals, &mut out_ts, &mut out_v)?;
        Ok(out_ts.into_iter().zip(out_v).collect())
    }

    #[test]
    fn duplicates_follow_the_source_policy() {
        // hour 1 appears three times (file order 2, 3, 7), hour 0 once
        let ts = [0, H, H, H, 2 * H];
        let v = [1.0, 2.0, 3.0, 7.0, 5.0];
        let g = "granularity = \"hour\"";
        let err = check(g, &ts, &v).unwrap_err();
        assert!(
            err.contains("duplicate timestamp 1970-01-01T01:00"),
            "{err}"
        );
        assert!(err.contains("`duplicates`"), "{err}");
        for (policy, want) in [("first", 2.0), ("last", 7.0), ("sum", 12.0), ("mean", 4.0)] {
            let got = check(&format!("{g}\nduplicates = \"{policy}\""), &ts, &v).unwrap();
            assert_eq!(got, vec![(0, 1.0), (H, want), (2 * H, 5.0)], "{policy}");
        }
        // a NaN duplicate is dropped (and reported), not averaged in
        let got = check(
            &format!("{g}\nduplicates = \"mean\""),
            &[0, H, H],
            &[1.0, 4.0, f64::NAN],
        )
        .unwrap();
        assert_eq!(got, vec![(0, 1.0), (H, 4.0)]);
    }

    #[test]
    fn irregular_timestamps_snap_to_the_period_grid() {
        // 12:00:01 and 11:59:59 are the 12:00 hour; with `mean` they are one point
        let s = 1000;
        let ts = [11 * H, 12 * H - s, 12 * H + s, 13 * H + 2 * s, 14 * H];
        let v = [1.0, 2.0, 4.0, 5.0, 6.0];
        let got = check("duplicates = \"mean\"", &ts, &v).unwrap();
        assert_eq!(
            got,
            vec![(11 * H, 1.0), (12 * H, 3.0), (13 * H, 5.0), (14 * H, 6.0)]
        );
        // with the default policy the snapped pair is a duplicate
        let err = check("", &ts, &v).unwrap_err();
        assert!(
            err.contains("duplicate timestamp 1970-01-01T12:00"),
            "{err}"
        );
        // a daily export with times of day keeps each row's date
        let d = MS_PER_DAY;
        let got = check(
            "granularity = \"day\"",
            &[9 * H, d + 23 * H, 2 * d],
            &[1.0, 2.0, 3.0],
        )
        .unwrap();
        assert_eq!(got, vec![(0, 1.0), (d, 2.0), (2 * d, 3.0)]);
    }

    #[test]
    fn infers_granularity_from_median_spacing() {
        let d = MS_PER_DAY;
        assert_eq!(
            infer_granularity(&[0, d, 2 * d, 5 * d, 6 * d]),
            Some(Granularity::Day)
        );
        assert_eq!(
            infer_granularity(&[0, 7 * d, 14 * d]),
            Some(Granularity::Week)
        );
        assert_eq!(
            infer_granularity(&[0, 300_000, 600_000]),
            Some(Granularity::Minutes(5))
        );
        assert_eq!(infer_granularity(&[0, 30 * d, 61 * d]), None);
        // a few seconds of jitter on every row is still hourly
        assert_eq!(
            infer_granularity(&[3_000, 3_601_000, 7_202_000, 10_799_000]),
            Some(Granularity::Hour)
        );
        // repeated timestamps are not a spacing
        assert_eq!(
            infer_granularity(&[0, 0, d, d, 2 * d, 2 * d]),
            Some(Granularity::Day)
        );
    }

    #[test]
    fn placeholder_dates_far_before_a_series_are_left_out() {
        let d = MS_PER_DAY;
        let y2025 = 20_148 * d;
        let cfg = source("granularity = \"day\"");
        let cut = |ts: &[i64]| {
            let vals: Vec<f64> = (0..ts.len()).map(|i| i as f64).collect();
            let (mut out_ts, mut out_v) = (vec![], vec![]);
            let (_, note) = series_slice(&cfg, ts, &vals, &mut out_ts, &mut out_v).unwrap();
            (out_ts, note)
        };
        // Excel's day zero and Unix time's, years before the series
        let (kept, note) = cut(&[-25_569 * d, 0, 0, y2025, y2025 + d]);
        assert_eq!(kept, vec![y2025, y2025 + d]);
        let note = note.unwrap();
        assert!(
            note.starts_with("3 row(s) dated 1899-12-30, 1970-01-01, a placeholder"),
            "{note}"
        );
        assert!(note.contains("which starts 2025-03-01"), "{note}");
        // a series that really runs on from 1970-01-01, or is one placeholder, is kept
        assert_eq!(cut(&[0, d, 2 * d]), (vec![0, d, 2 * d], None));
        assert_eq!(cut(&[0]), (vec![0], None));
        // a placeholder day a few months before the rest is a date
        let (kept, note) = cut(&[-25_567 * d, -25_567 * d + 100 * d]);
        assert_eq!((kept.len(), note), (2, None));
    }
}
