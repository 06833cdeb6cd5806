//! Text as spreadsheets write it: dates in ISO 8601 or a strftime form (or
//! Excel serial days), numbers with currency, thousands separators, a decimal
//! comma, percentages and error cells, and column headers that carry a unit.
//!
//! Below both `config` (which checks a `time_format` and names header units)
//! and `source` (which reads the cells): it imports neither.
//!
//! Pure functions on one value; the readers call them once per distinct
//! value of a column (dates) or once per cell (numbers), never with a
//! format guessed per row: a column has one format, given in the config
//! (`time_format`, `decimal`) or inferred by `callout init` from its values
//! ([`infer_time_format`]).

use chrono::format::{Parsed, StrftimeItems};
use chrono::{NaiveDate, NaiveDateTime, NaiveTime, Weekday};
use chrono_tz::Tz;

/// The decimal mark of numbers written as text (`decimal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Decimal {
    /// `1,234.56`
    #[default]
    Point,
    /// `1.234,56`
    Comma,
}

impl Decimal {
    /// The mark itself.
    pub fn mark(self) -> u8 {
        match self {
            Decimal::Point => b'.',
            Decimal::Comma => b',',
        }
    }
}

/// How a time column is written, when not ISO 8601: a strftime pattern
/// (chrono's, `%m/%d/%Y`, `%d %B %Y`, `%Y-%m` for months, `%G-W%V` for ISO
/// weeks, `%I:%M %p` for AM/PM) or `excel` (serial day numbers, 1900 system).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeFormat {
    spec: String,
}

/// Parse a date or datetime string to wall-clock ms in `tz`: `2024-01-31`,
/// `2024-01-31 10:00[:00]`, `2024-01-31T10:00:00[.fff][Z|+02:00]`.
pub fn parse_time_str(s: &str, tz: Tz) -> Option<i64> {
    let s = s.trim();
    if s.len() == 10 {
        let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
        return Some(crate::model::date_ms(d));
    }
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(crate::model::wall_ms(&dt.with_timezone(&tz)));
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, f) {
            return Some(n.and_utc().timestamp_millis());
        }
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f %z",
    ] {
        if let Ok(dt) = chrono::DateTime::parse_from_str(s, f) {
            return Some(crate::model::wall_ms(&dt.with_timezone(&tz)));
        }
    }
    None
}

/// The spec of Excel serial dates (days since 1899-12-30, a fraction is the time of day).
pub const EXCEL: &str = "excel";

impl TimeFormat {
    /// A format from its config text; `Err` says what is wrong with it.
    pub fn new(spec: &str) -> Result<TimeFormat, String> {
        if spec.eq_ignore_ascii_case(EXCEL) {
            return Ok(TimeFormat { spec: EXCEL.into() });
        }
        if spec.trim().is_empty() {
            return Err(
                "must not be empty: a strftime pattern such as \"%m/%d/%Y\", or \"excel\"".into(),
            );
        }
        if StrftimeItems::new(spec).any(|i| matches!(i, chrono::format::Item::Error)) {
            return Err(format!(
                "{spec:?} is not a strftime pattern (e.g. \"%m/%d/%Y\", \"%d.%m.%Y\", \"%b %d, %Y\", \"%Y-%m\", \"%G-W%V\", \"%m/%d/%Y %I:%M %p\", or \"excel\")"
            ));
        }
        let f = TimeFormat { spec: spec.into() };
        // a pattern must say at least the year and the month (or the ISO week)
        let has = |tokens: &[&str]| tokens.iter().any(|t| spec.contains(t));
        let year = has(&[
            "%Y", "%y", "%G", "%g", "%C", "%F", "%D", "%x", "%s", "%+", "%c",
        ]);
        let within = has(&[
            "%m", "%b", "%B", "%h", "%V", "%j", "%F", "%D", "%x", "%s", "%+", "%c",
        ]);
        if !(year && within) {
            return Err(format!(
                "{spec:?} does not say the year and the month (or ISO week) of a date, e.g. \"%d/%m/%Y\""
            ));
        }
        Ok(f)
    }

    /// The format as written in the config.
    pub fn spec(&self) -> &str {
        &self.spec
    }

    /// Wall-clock ms in `tz` of one value; `None` when it does not fit the
    /// format. A month without a day is its first day, an ISO week without a
    /// weekday its Monday, a date without a time its midnight; a value with a
    /// UTC offset moves to `tz`.
    pub fn parse(&self, s: &str, tz: Tz) -> Option<i64> {
        let s = s.trim();
        if self.spec == EXCEL {
            return excel_ms(s.parse().ok()?);
        }
        let mut p = Parsed::new();
        chrono::format::parse(&mut p, s, StrftimeItems::new(&self.spec)).ok()?;
        if p.timestamp().is_some() {
            let dt = chrono::DateTime::from_timestamp(p.timestamp()?, p.nanosecond().unwrap_or(0))?;
            return Some(crate::model::wall_ms(&dt.with_timezone(&tz)));
        }
        if p.isoweek().is_some() && p.weekday().is_none() {
            p.set_weekday(Weekday::Mon).ok()?;
        }
        if p.day().is_none() && p.ordinal().is_none() && p.isoweek().is_none() {
            p.set_day(1).ok()?;
        }
        let date = p.to_naive_date().ok()?;
        let time = if p.hour_mod_12().is_some() {
            // an hour of a 12-hour clock without its AM/PM is no time
            p.hour_div_12()?;
            if p.minute().is_none() {
                p.set_minute(0).ok()?;
            }
            p.to_naive_time().ok()?
        } else {
            NaiveTime::MIN
        };
        let naive = date.and_time(time).and_utc().timestamp_millis();
        match p.offset() {
            None => Some(naive),
            Some(offset) => {
                let utc = naive.checked_sub(i64::from(offset) * 1000)?;
                let dt = chrono::DateTime::from_timestamp_millis(utc)?;
                Some(crate::model::wall_ms(&dt.with_timezone(&tz)))
            }
        }
    }
}

/// An Excel serial date (1900 date system: day 1 is 1900-01-01, with the
/// phantom 1900-02-29, so days count from 1899-12-30 after February 1900)
/// → ms since 1970 (wall clock); the fraction is the time of day, to the ms.
pub fn excel_ms(serial: f64) -> Option<i64> {
    // 1899-12-30 is day 0; 1970-01-01 is day 25569
    if !serial.is_finite() || !(1.0..2_958_466.0).contains(&serial) {
        return None;
    }
    let ms = (serial - 25_569.0) * 86_400_000.0;
    // rounded to the ms: a time of day is stored as a binary fraction
    #[allow(clippy::cast_possible_truncation)]
    Some(ms.round() as i64)
}

/// Date patterns tried by [`infer_time_format`], in order of preference
/// where several read every value (ISO 8601 is tried before any).
const DATES: &[&str] = &[
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%d.%m.%Y",
    "%Y/%m/%d",
    "%d-%m-%Y",
    "%m-%d-%Y",
    "%Y.%m.%d",
    "%m/%d/%y",
    "%d/%m/%y",
    "%d.%m.%y",
    "%b %d, %Y",
    "%B %d, %Y",
    "%b %d %Y",
    "%d %b %Y",
    "%d %B %Y",
    "%d-%b-%Y",
    "%d-%b-%y",
    "%a, %d %b %Y",
    "%A, %B %d, %Y",
    "%Y%m%d",
];

/// Month and week patterns (a row per month or per ISO week).
const PERIODS: &[&str] = &[
    "%Y-%m", "%Y/%m", "%m/%Y", "%b %Y", "%B %Y", "%b-%y", "%G-W%V", "%GW%V",
];

/// Times of day tried after each date pattern.
const TIMES: &[&str] = &[
    " %H:%M",
    " %H:%M:%S",
    " %I:%M %p",
    " %I:%M:%S %p",
    " %I:%M%p",
    " %H:%M:%S%.f",
];

/// What [`infer_time_format`] settled on.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeGuess {
    /// The format that reads every value.
    pub format: TimeFormat,
    /// Why another format might be meant (several read every value), for a
    /// `# CHECK:` line; `None` when nothing else fits.
    pub doubt: Option<String>,
}

/// The format of a time column from its values (empty cells left out):
/// `Ok(None)` when they are ISO 8601 (no `time_format` needed). Of the
/// patterns that read every value as a date from 1900 to 2199, the one
/// whose dates are the most regularly spaced wins (a day over 12 settles
/// month-first against day-first at once, since one of them fails it);
/// `prefer_day_first` breaks a tie (a `;`-separated or decimal-comma file).
/// `Err` names a value no pattern reads.
pub fn infer_time_format(
    values: &[&str],
    prefer_day_first: bool,
) -> Result<Option<TimeGuess>, String> {
    let mut distinct: Vec<&str> = values
        .iter()
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.is_empty() {
        return Err("the time column has no values".into());
    }
    if distinct
        .iter()
        .all(|v| parse_time_str(v, Tz::UTC).is_some())
    {
        return Ok(None);
    }
    let plausible = |ms: i64| (-2_208_988_800_000..7_258_118_400_000).contains(&ms);
    let mut fits: Vec<(String, Vec<i64>)> = Vec::new();
    let try_spec = |spec: String| -> Option<(String, Vec<i64>)> {
        let f = TimeFormat::new(&spec).ok()?;
        let ms = distinct
            .iter()
            .map(|v| f.parse(v, Tz::UTC).filter(|&t| plausible(t)))
            .collect::<Option<Vec<i64>>>()?;
        Some((spec, ms))
    };
    fits.extend(
        DATES
            .iter()
            .chain(PERIODS)
            .filter_map(|d| try_spec((*d).to_string())),
    );
    if fits.is_empty() {
        for d in DATES.iter().chain(&["%Y-%m-%d"]) {
            fits.extend(TIMES.iter().filter_map(|t| try_spec(format!("{d}{t}"))));
        }
    }
    let all_numbers = distinct.iter().all(|v| v.parse::<f64>().is_ok());
    if fits.is_empty() && all_numbers {
        // serial days of 1990..2100 (a number column read from a workbook or a CSV)
        fits.extend(try_spec(EXCEL.to_string()));
        fits.retain(|(_, ms)| {
            ms.iter()
                .all(|&t| (631_152_000_000..4_102_444_800_000).contains(&t))
        });
    }
    if fits.is_empty() {
        let shown = distinct
            .iter()
            .find(|v| parse_time_str(v, Tz::UTC).is_none())
            .unwrap_or(&distinct[0]);
        return Err(format!(
            "{shown:?} is not a date in any form callout knows; set `time_format` (strftime, e.g. \"%d/%m/%Y\")"
        ));
    }
    // the most regular reading: fewest distinct steps between sorted dates
    let steps = |ms: &[i64]| {
        let mut sorted = ms.to_vec();
        sorted.sort_unstable();
        let mut d: Vec<i64> = sorted.windows(2).map(|w| w[1] - w[0]).collect();
        d.sort_unstable();
        d.dedup();
        d.len()
    };
    let day_first = |s: &str| s.starts_with("%d");
    let best = fits
        .iter()
        .enumerate()
        .min_by_key(|(i, (spec, ms))| (steps(ms), day_first(spec) != prefer_day_first, *i))
        .map(|(i, _)| i)
        .unwrap_or(0);
    let (spec, read) = fits.swap_remove(best);
    // a pattern reading the same dates (`%B` takes `Mar` as `%b` does) means nothing else
    fits.retain(|(_, ms)| *ms != read);
    let doubt = (!fits.is_empty()).then(|| {
        let others: Vec<String> = fits.iter().map(|(s, _)| format!("{s:?}")).collect();
        format!(
            "{} also read(s) every date; {spec:?} gives the most regular spacing{}",
            others.join(", "),
            if prefer_day_first {
                " (day first, as in a ;-separated file)"
            } else {
                ""
            }
        )
    });
    Ok(Some(TimeGuess {
        format: TimeFormat { spec },
        doubt,
    }))
}

/// One cell of a number column as a spreadsheet writes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    /// A number (NaN and infinities as written: the series checks report them).
    Value(f64),
    /// Empty, a dash, `n/a` or a spreadsheet error (`#N/A`, `#DIV/0!`…): no value.
    Missing,
    /// Not a number.
    Bad,
}

/// Text that means "no value" in a spreadsheet (compared without case).
const MISSING: &[&str] = &[
    "-",
    "--",
    "—",
    "–",
    "n/a",
    "na",
    "n.a.",
    "#n/a",
    "#n/a!",
    "#div/0!",
    "#value!",
    "#ref!",
    "#num!",
    "#name?",
    "#null!",
    "#error!",
    "#getting_data",
    "null",
    "none",
    "(blank)",
    "..",
    ".",
    "?",
];

/// Currency symbols written before or after a number.
const CURRENCY: &[char] = &[
    '$', '£', '€', '¥', '₹', '₩', '₽', '₺', '₪', '฿', '¢', '₫', '₴', '₦', '₱',
];

/// A cell as a number: currency symbols or codes before or after (`$`,
/// `USD`, `€`, `kr`), thousands separators (`,` `.` space, no-break space or
/// `'`, in groups of three), the `decimal` mark, `12.5%` as 12.5 (the number
/// as written; the `%` is its unit), `(1,234)` and a trailing minus as
/// negative, `1.2e3`; see [`Number`] for the rest.
pub fn parse_number(cell: &str, decimal: Decimal) -> Number {
    let s = cell.trim_matches(|c: char| c.is_whitespace());
    if s.is_empty() || MISSING.iter().any(|m| s.eq_ignore_ascii_case(m)) {
        return Number::Missing;
    }
    if let Ok(x) = s.parse::<f64>() {
        // plain numbers (and NaN, inf) as Rust reads them; a decimal comma
        // file's `1.234` is a thousand, not one and a bit
        if decimal == Decimal::Point || !s.contains('.') {
            return Number::Value(x);
        }
    }
    match number_core(s, decimal) {
        Some(x) => Number::Value(x),
        None => Number::Bad,
    }
}

/// The unit a cell writes around its number: a currency symbol or code, or
/// `%`; `None` for a bare number.
pub fn number_unit(cell: &str) -> Option<String> {
    units_off(cell.trim()).unit.map(str::to_string)
}

/// Letters written as a currency beside a number: an ISO 4217 code (three
/// capitals, `USD`) or one of these (`kr 12`, `12 zł`, `R$ 12`, `Rs. 12`).
const CURRENCY_WORDS: &[&str] = &[
    "kr", "Kr", "kr.", "zł", "Fr", "Fr.", "CHF", "Rs", "Rs.", "R", "Ft", "Kč", "lei", "US$", "R$",
    "A$", "C$", "NZ$", "HK$", "S$", "Mex$",
];

/// True for text written as a number's unit: currency symbols, `%`, or a
/// currency word ([`CURRENCY_WORDS`], three capitals).
fn is_unit_text(t: &str) -> bool {
    let t = t.trim();
    !t.is_empty()
        && (t.chars().all(|c| CURRENCY.contains(&c) || c == '%')
            || CURRENCY_WORDS.contains(&t)
            || (t.len() == 3 && t.bytes().all(|b| b.is_ascii_uppercase())))
}

/// A cell with its signs and units taken off: `-$1,234`, `$-1,234`,
/// `(1,234)`, `1,234 USD-`. Letters that are no currency (`bad17`) stay
/// (and fail the number).
struct Bare<'a> {
    negative: bool,
    number: &'a str,
    /// The first unit taken off (a currency or `%`).
    unit: Option<&'a str>,
}

/// [`Bare`] of a cell (trimmed).
fn units_off(s: &str) -> Bare<'_> {
    let mut negative = false;
    let mut unit = None;
    let mut s = s;
    if let Some(inner) = s.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
        negative = true;
        s = inner.trim();
    }
    // signs and units in either order
    let is_unit = |c: char| CURRENCY.contains(&c) || c.is_alphabetic() || matches!(c, '%' | '.');
    let space = |c: char| c.is_whitespace();
    for _ in 0..2 {
        if let Some(r) = s.strip_prefix(['-', '−']) {
            negative = !negative;
            s = r.trim_start_matches(space);
        } else if let Some(r) = s.strip_prefix('+') {
            s = r.trim_start_matches(space);
        }
        let r = s.trim_start_matches(is_unit);
        let taken = &s[..s.len() - r.len()];
        if !taken.is_empty() && is_unit_text(taken) {
            unit = unit.or(Some(taken.trim()));
            s = r.trim_start_matches(space);
        }
    }
    for _ in 0..2 {
        if let Some(r) = s.strip_suffix(['-', '−']) {
            negative = !negative;
            s = r.trim_end_matches(space);
        }
        let r = s.trim_end_matches(|c: char| c != '.' && is_unit(c));
        let taken = &s[r.len()..];
        if !taken.is_empty() && is_unit_text(taken) {
            unit = unit.or(Some(taken.trim()));
            s = r.trim_end_matches(space);
        }
    }
    Bare {
        negative,
        number: s,
        unit,
    }
}

/// [`parse_number`] past the plain cases: signs, units, separators.
fn number_core(s: &str, decimal: Decimal) -> Option<f64> {
    let Bare {
        negative,
        number: s,
        ..
    } = units_off(s);
    if s.is_empty() {
        return None;
    }
    let mark = char::from(decimal.mark());
    let (int, frac) = match s.rsplit_once(mark) {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    let group =
        |c: char| c != mark && matches!(c, ',' | '.' | ' ' | '\u{a0}' | '\u{202f}' | '\'' | '’');
    let mut digits = String::with_capacity(s.len());
    let mut groups = int.split(group);
    let first = groups.next()?;
    let grouped = int.contains(group);
    if first.is_empty()
        || !first.bytes().all(|b| b.is_ascii_digit())
        || (grouped && first.len() > 3)
    {
        return None;
    }
    digits.push_str(first);
    for g in groups {
        if g.len() != 3 || !g.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.push_str(g);
    }
    if let Some(f) = frac {
        // the fraction, then an optional exponent
        let (f, exp) = match f.find(['e', 'E']) {
            Some(at) => (&f[..at], Some(&f[at + 1..])),
            None => (f, None),
        };
        if !f.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.push('.');
        digits.push_str(f);
        if let Some(e) = exp {
            let e = e.strip_prefix('+').unwrap_or(e);
            let digits_only = e.strip_prefix('-').unwrap_or(e);
            if digits_only.is_empty() || !digits_only.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            digits.push('e');
            digits.push_str(e);
        }
    }
    let x: f64 = digits.parse().ok()?;
    Some(if negative { -x } else { x })
}

/// A column header as a metric: its slug (the metric's name) and the unit
/// it carries, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Lower case, letters and digits, `_` between words: `Revenue ($)` → `revenue`.
    pub slug: String,
    /// `$` from `Revenue ($)`, `%` from `Conversion %`, `ms` from `Latency [ms]`;
    /// `None` for none, or a count sign (`#`, `count`, `qty`).
    pub unit: Option<String>,
}

/// The metric a column header names. The unit is a trailing `(…)` or `[…]`
/// of at most 12 characters, or a `%`, `$`, `£`, `€` at either end; the slug
/// is the rest in lower case with each run of other characters one `_`
/// (`Avg. Order Value` → `avg_order_value`, `Umsatz (€)` → `umsatz`). A
/// header that is only a unit keeps it in the slug.
pub fn header(h: &str) -> Header {
    let t = h.trim();
    let mut name = t;
    let mut unit: Option<String> = None;
    if let Some(open) = t.rfind(['(', '['])
        && let Some(inner) = t[open + 1..].strip_suffix([')', ']'])
        && !inner.trim().is_empty()
        && inner.chars().count() <= 12
        && !t[..open].trim().is_empty()
    {
        name = t[..open].trim();
        unit = Some(inner.trim().to_string());
    } else {
        let symbol = |c: char| c == '%' || CURRENCY.contains(&c);
        if let Some(c) = t.chars().last().filter(|&c| symbol(c)) {
            let rest = t[..t.len() - c.len_utf8()].trim();
            if !rest.is_empty() {
                name = rest.trim_end_matches(['-', ':', ',']).trim();
                unit = Some(c.to_string());
            }
        } else if let Some(c) = t.chars().next().filter(|&c| symbol(c)) {
            let rest = t[c.len_utf8()..].trim();
            if !rest.is_empty() {
                name = rest.trim_start_matches(['-', ':']).trim();
                unit = Some(c.to_string());
            }
        }
    }
    let unit = unit.filter(|u| {
        !matches!(
            u.to_lowercase().as_str(),
            "#" | "n" | "no" | "no." | "count" | "qty" | "number"
        )
    });
    Header {
        slug: slug(name),
        unit,
    }
}

/// `name` in lower case, letters and digits only, one `_` for each run of
/// anything else, none at the ends; `metric` when nothing is left.
pub fn slug(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut gap = false;
    for c in name.chars() {
        if c.is_alphanumeric() {
            if gap && !out.is_empty() {
                out.push('_');
            }
            gap = false;
            out.extend(c.to_lowercase());
        } else {
            gap = true;
        }
    }
    if out.is_empty() {
        out.push_str("metric");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MS_PER_DAY;

    fn ms(y: i32, m: u32, d: u32) -> i64 {
        crate::model::date_ms(NaiveDate::from_ymd_opt(y, m, d).unwrap())
    }

    fn read(spec: &str, v: &str) -> Option<i64> {
        TimeFormat::new(spec).unwrap().parse(v, Tz::UTC)
    }

    #[test]
    fn parses_common_time_formats() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let day = parse_time_str("2024-01-31", tz).unwrap();
        assert_eq!(day % MS_PER_DAY, 0);
        let a = parse_time_str("2024-01-31T10:00:00", tz).unwrap();
        assert_eq!(a - day, 10 * 3_600_000);
        // 09:00 UTC is 10:00 in Berlin (winter)
        assert_eq!(parse_time_str("2024-01-31T09:00:00Z", tz), Some(a));
        assert_eq!(parse_time_str("2024-01-31 11:00:00+02:00", tz), Some(a));
        assert_eq!(parse_time_str("31/01/2024", tz), None);
    }

    #[test]
    fn dates_in_many_forms() {
        let d = ms(2025, 3, 6);
        for (spec, v) in [
            ("%m/%d/%Y", "03/06/2025"),
            ("%m/%d/%Y", "3/6/2025"),
            ("%d/%m/%Y", "06/03/2025"),
            ("%d.%m.%Y", "06.03.2025"),
            ("%Y/%m/%d", "2025/03/06"),
            ("%b %d, %Y", "Mar 6, 2025"),
            ("%d %B %Y", "6 March 2025"),
            ("%d-%b-%Y", "06-Mar-2025"),
            ("%d-%b-%y", "06-mar-25"),
            ("%Y%m%d", "20250306"),
            ("%A, %B %d, %Y", "Thursday, March 06, 2025"),
        ] {
            assert_eq!(read(spec, v), Some(d), "{spec} {v}");
        }
        assert_eq!(read("%Y-%m", "2025-03"), Some(ms(2025, 3, 1)));
        assert_eq!(read("%b %Y", "Mar 2025"), Some(ms(2025, 3, 1)));
        // ISO week 10 of 2025 starts on Monday 3 March
        assert_eq!(read("%G-W%V", "2025-W10"), Some(ms(2025, 3, 3)));
        assert_eq!(
            read("%m/%d/%Y %I:%M %p", "3/6/2025 1:30 PM"),
            Some(d + 13 * 3_600_000 + 30 * 60_000)
        );
        assert_eq!(
            read("%m/%d/%Y %I:%M %p", "3/6/2025 12:05 AM"),
            Some(d + 5 * 60_000)
        );
        assert_eq!(read("excel", "45722"), Some(d));
        assert_eq!(read("excel", "45722.75"), Some(d + 18 * 3_600_000));
        assert_eq!(read("%d/%m/%Y", "31/02/2025"), None);
        assert_eq!(read("%m/%d/%Y", "13/06/2025"), None);
        // a zoned value lands on the wall clock of the source zone
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        assert_eq!(
            TimeFormat::new("%d.%m.%Y %H:%M %z")
                .unwrap()
                .parse("06.03.2025 12:00 +0000", berlin),
            Some(d + 13 * 3_600_000)
        );
    }

    #[test]
    fn bad_formats_are_refused_with_words() {
        assert!(TimeFormat::new("%Q/%m").unwrap_err().contains("strftime"));
        assert!(TimeFormat::new("%d/%m").unwrap_err().contains("year"));
        assert!(TimeFormat::new("").is_err());
        assert!(TimeFormat::new("EXCEL").is_ok());
    }

    #[test]
    fn a_day_over_12_settles_the_order() {
        let us = infer_time_format(&["03/06/2023", "03/13/2023", "03/20/2023"], false)
            .unwrap()
            .unwrap();
        assert_eq!(us.format.spec(), "%m/%d/%Y");
        assert_eq!(us.doubt, None);
        let eu = infer_time_format(&["06/03/2023", "13/03/2023", "20/03/2023"], false)
            .unwrap()
            .unwrap();
        assert_eq!(eu.format.spec(), "%d/%m/%Y");
        assert_eq!(eu.doubt, None);
        // nothing settles it: the regular reading (weekly), said as a doubt
        let both = infer_time_format(&["01/02/2023", "01/09/2023"], false)
            .unwrap()
            .unwrap();
        assert_eq!(both.format.spec(), "%m/%d/%Y");
        assert!(both.doubt.unwrap().contains("%d/%m/%Y"));
        // a tie on spacing: day first in a ;-separated file
        let tie = infer_time_format(&["01/02/2023"], true).unwrap().unwrap();
        assert_eq!(tie.format.spec(), "%d/%m/%Y");
    }

    #[test]
    fn inference_knows_names_months_weeks_and_serials() {
        let spec = |v: &[&str]| {
            infer_time_format(v, false)
                .unwrap()
                .map(|g| g.format.spec().to_string())
        };
        assert_eq!(spec(&["2025-03-06", "2025-03-07"]), None);
        assert_eq!(
            spec(&["Mar 6, 2025", "Mar 13, 2025"]).as_deref(),
            Some("%b %d, %Y")
        );
        let named = infer_time_format(&["Mar 6, 2025", "Mar 13, 2025"], true).unwrap();
        assert_eq!(named.and_then(|g| g.doubt), None);
        assert_eq!(
            spec(&["6 March 2025", "13 March 2025"]).as_deref(),
            Some("%d %B %Y")
        );
        assert_eq!(spec(&["2025-03", "2025-04"]).as_deref(), Some("%Y-%m"));
        assert_eq!(spec(&["2025-W10", "2025-W11"]).as_deref(), Some("%G-W%V"));
        assert_eq!(
            spec(&["06.03.2025", "13.03.2025"]).as_deref(),
            Some("%d.%m.%Y")
        );
        assert_eq!(spec(&["45722", "45723"]).as_deref(), Some("excel"));
        assert_eq!(
            spec(&["3/6/2025 1:30 PM", "3/6/2025 2:30 PM", "3/13/2025 2:30 PM"]).as_deref(),
            Some("%m/%d/%Y %I:%M %p")
        );
        let e = infer_time_format(&["soon", "later"], false).unwrap_err();
        assert!(e.contains("\"later\"") || e.contains("\"soon\""), "{e}");
    }

    #[test]
    fn numbers_as_spreadsheets_write_them() {
        let p = |s| parse_number(s, Decimal::Point);
        let c = |s| parse_number(s, Decimal::Comma);
        assert_eq!(p("$261,059.24"), Number::Value(261_059.24));
        assert_eq!(p("4,168"), Number::Value(4168.0));
        assert_eq!(p("£1,234"), Number::Value(1234.0));
        assert_eq!(p("1,234 USD"), Number::Value(1234.0));
        assert_eq!(p("USD 1,234.5"), Number::Value(1234.5));
        assert_eq!(p("12.5%"), Number::Value(12.5));
        assert_eq!(p("(1,234)"), Number::Value(-1234.0));
        assert_eq!(p("-$1,234.50"), Number::Value(-1234.5));
        assert_eq!(p("$-1,234.50"), Number::Value(-1234.5));
        assert_eq!(p("1234-"), Number::Value(-1234.0));
        assert_eq!(p("1.2e3"), Number::Value(1200.0));
        assert_eq!(p("1'234'567"), Number::Value(1_234_567.0));
        assert_eq!(p(" 7 "), Number::Value(7.0));
        assert_eq!(c("1.234,56"), Number::Value(1234.56));
        assert_eq!(c("€ 1.234,56"), Number::Value(1234.56));
        assert_eq!(c("1 234,56"), Number::Value(1234.56));
        assert_eq!(c("1\u{a0}234,56 €"), Number::Value(1234.56));
        assert_eq!(c("12,5 %"), Number::Value(12.5));
        assert_eq!(c("1.234"), Number::Value(1234.0));
        assert_eq!(c("-3"), Number::Value(-3.0));
        assert_eq!(c("1,2e3"), Number::Value(1200.0));
        for missing in [
            "", " ", "-", "—", "n/a", "N/A", "#N/A", "#DIV/0!", "#VALUE!", "null",
        ] {
            assert_eq!(p(missing), Number::Missing, "{missing:?}");
        }
        // a comma in groups that are not of three is no thousands separator
        assert_eq!(p("1,5"), Number::Bad);
        assert_eq!(c("1.5"), Number::Bad);
        assert_eq!(p("12,34,567"), Number::Bad);
        assert_eq!(p("abc"), Number::Bad);
        assert_eq!(p("bad17"), Number::Bad);
        assert_eq!(p("17 apples"), Number::Bad);
        assert_eq!(p("kr 1,234"), Number::Value(1234.0));
        assert_eq!(p("Rs. 1,234.5"), Number::Value(1234.5));
        assert_eq!(c("12,5 zł"), Number::Value(12.5));
        assert_eq!(p("1.2.3"), Number::Bad);
        assert!(matches!(p("NaN"), Number::Value(x) if x.is_nan()));
    }

    #[test]
    fn the_unit_written_around_a_number() {
        assert_eq!(number_unit("$261,059.24").as_deref(), Some("$"));
        assert_eq!(number_unit("12.5%").as_deref(), Some("%"));
        assert_eq!(number_unit("1.234,56 €").as_deref(), Some("€"));
        assert_eq!(number_unit("(USD 12)").as_deref(), Some("USD"));
        assert_eq!(number_unit("1.2e3"), None);
        assert_eq!(number_unit("4,168"), None);
    }

    #[test]
    fn headers_give_a_slug_and_a_unit() {
        let h = |s: &str| {
            let h = header(s);
            (h.slug, h.unit)
        };
        assert_eq!(h("Revenue ($)"), ("revenue".into(), Some("$".into())));
        assert_eq!(h("Orders (#)"), ("orders".into(), None));
        assert_eq!(h("Conversion %"), ("conversion".into(), Some("%".into())));
        assert_eq!(h("% Returning"), ("returning".into(), Some("%".into())));
        assert_eq!(h("Latency [ms]"), ("latency".into(), Some("ms".into())));
        assert_eq!(
            h("Avg. Order Value (USD)"),
            ("avg_order_value".into(), Some("USD".into()))
        );
        assert_eq!(h("Umsatz (€)"), ("umsatz".into(), Some("€".into())));
        assert_eq!(h("revenue"), ("revenue".into(), None));
        assert_eq!(h("page_views"), ("page_views".into(), None));
        assert_eq!(h("Größe"), ("größe".into(), None));
        assert_eq!(h("%"), ("metric".into(), None));
    }
}
