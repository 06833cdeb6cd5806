//! Workbooks (.xlsx, .xlsm, .xlsb, .xls, .ods) read through calamine: the
//! sheet named by `sheet` or the first holding a table with a date column
//! and a number column, its header row given by `header_row` or found below
//! any title rows, cells as typed values (dates as dates, formulas as their
//! cached values).
//!
//! Owns the sheet → frame step only; the loader (`source/mod.rs`, `whole.rs`) selects
//! and normalises the frame like any whole-read export. The file is read
//! into memory whole (calamine needs the whole zip or compound file), and
//! its kind comes from its content as much as its name: a URL's downloaded
//! copy has no extension, and an encrypted `.xlsx` is a compound file.

use std::io::Cursor;
use std::path::Path;

use calamine::{Data, Range, Reader, Sheets};
use chrono::{NaiveDate, NaiveDateTime};
use polars::prelude::*;

use crate::config::SourceConfig;

/// A workbook's table as a frame: one column per header cell.
#[derive(Debug)]
pub struct Table {
    /// The sheet read.
    pub sheet: String,
    /// Its header row, 1-based as the spreadsheet shows it.
    pub header_row: usize,
    /// The rows below the header: dates as `Datetime(ms)`, numbers as f64,
    /// text as text (per column, the type all its cells share, else text).
    pub frame: DataFrame,
    /// The sheet row (1-based) of each frame row: blank rows are left out,
    /// and a message about a cell names the row the spreadsheet shows.
    pub rows: Vec<usize>,
}

/// The table of the workbook at `path`: the sheet named (or found), the
/// header row given (or found), at most `limit` rows. `Err` says what is
/// wrong in words that name the file's sheets when one is missing.
pub fn read_table(
    path: &Path,
    sheet: Option<&str>,
    header_row: Option<usize>,
    limit: Option<usize>,
) -> Result<Table, String> {
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into(),
    );
    read_named(path, &name, sheet, header_row, limit)
}

/// [`read_table`] with the file called `name` in messages (a URL's
/// downloaded copy is a temp file without a telling name).
pub(super) fn read_named(
    path: &Path,
    name: &str,
    sheet: Option<&str>,
    header_row: Option<usize>,
    limit: Option<usize>,
) -> Result<Table, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {name}: {e}"))?;
    read_table_bytes(bytes, name, sheet, header_row, limit)
}

/// [`read_table`] of a workbook held in memory (an S3 object), called
/// `name` in messages; its extension, if any, picks the reader's error.
pub fn read_table_bytes(
    bytes: Vec<u8>,
    name: &str,
    sheet: Option<&str>,
    header_row: Option<usize>,
    limit: Option<usize>,
) -> Result<Table, String> {
    if bytes.is_empty() {
        return Err(format!("{name} is empty"));
    }
    let mut book = open(bytes, name)?;
    table(&mut book, name, sheet, header_row, limit)
}

/// The first bytes of a compound file (`.xls`, or an encrypted OOXML).
const CFB_MAGIC: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

/// What calamine needs to open a workbook from memory.
type Book = Sheets<Cursor<Vec<u8>>>;

/// Open the workbook by its content (calamine tries each reader). When none
/// reads it, a compound file may be an encrypted workbook, which the
/// readers' own checks tell; else the reader of the extension words why.
fn open(bytes: Vec<u8>, name: &str) -> Result<Book, String> {
    use calamine::{Xls, XlsError, Xlsb, Xlsx, XlsxError, open_workbook_from_rs};
    let compound = bytes.starts_with(&CFB_MAGIC);
    let data = Cursor::new(bytes);
    let e = match calamine::open_workbook_auto_from_rs(data.clone()) {
        Ok(book) => return Ok(book),
        Err(e) => e,
    };
    let password = compound
        && (matches!(
            open_workbook_from_rs::<Xlsx<_>, _>(data.clone()),
            Err(XlsxError::Password)
        ) || matches!(
            open_workbook_from_rs::<Xls<_>, _>(data.clone()),
            Err(XlsError::Password)
        ));
    if password {
        return Err(format!(
            "{name} is password-protected; save it without a password or export CSV"
        ));
    }
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    let why = match ext.as_str() {
        "xlsx" | "xlsm" => open_workbook_from_rs::<Xlsx<_>, _>(data)
            .err()
            .map(|e| e.to_string()),
        "xlsb" => open_workbook_from_rs::<Xlsb<_>, _>(data)
            .err()
            .map(|e| e.to_string()),
        "xls" => open_workbook_from_rs::<Xls<_>, _>(data)
            .err()
            .map(|e| e.to_string()),
        _ => None,
    }
    .unwrap_or_else(|| e.to_string());
    Err(format!(
        "{name} is not a workbook calamine can read (.xlsx, .xlsm, .xlsb, .xls, .ods): {why}"
    ))
}

/// `"a", "b"`: names as a message lists them.
fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The table of the sheet named, or of the first sheet holding one with a
/// date column and a number column.
fn table(
    book: &mut Book,
    name: &str,
    sheet: Option<&str>,
    header_row: Option<usize>,
    limit: Option<usize>,
) -> Result<Table, String> {
    let names = book.sheet_names();
    if let Some(want) = sheet {
        // the tab's name as written; else one that differs only in case or spaces
        let like: Vec<&String> = names
            .iter()
            .filter(|n| n.trim().eq_ignore_ascii_case(want.trim()))
            .collect();
        let found = match names.iter().find(|n| *n == want) {
            Some(n) => n,
            None if like.len() == 1 => like[0],
            None => {
                return Err(format!(
                    "no sheet {want:?} in {name}; its sheets are {}",
                    quoted(&names)
                ));
            }
        };
        let range = book
            .worksheet_range(found)
            .map_err(|e| format!("sheet {found:?} of {name} cannot be read: {e}"))?;
        let grid = Grid(&range);
        let header = match header_row {
            Some(r) => r,
            None => grid.header().ok_or_else(|| {
                format!(
                    "sheet {found:?} of {name}: {}; set `header_row` to the row of the column names",
                    grid.no_header()
                )
            })?,
        };
        return grid
            .table(found, header, limit)
            .map_err(|e| format!("sheet {found:?} of {name}: {e}"));
    }
    let mut why = Vec::new();
    for n in &names {
        let range = match book.worksheet_range(n) {
            Ok(r) => r,
            Err(e) => {
                why.push(format!("{n:?} cannot be read ({e})"));
                continue;
            }
        };
        let grid = Grid(&range);
        let Some(header) = header_row.or_else(|| grid.header()) else {
            why.push(format!("{n:?}: {}", grid.no_header()));
            continue;
        };
        match grid.table(n, header, limit) {
            Ok(t) => match lacks(&t.frame) {
                None => return Ok(t),
                Some(lack) => why.push(format!("{n:?}: {lack}")),
            },
            Err(e) => why.push(format!("{n:?}: {e}")),
        }
    }
    Err(format!(
        "no sheet of {name} holds a table with a date column and a number column ({}); name it with `sheet` (and its header row with `header_row`)",
        why.join("; ")
    ))
}

/// What a table lacks to be an export: a date column and a number column.
/// A column of plausible serial dates (the date format lost) counts as the
/// dates when another column holds numbers.
fn lacks(frame: &DataFrame) -> Option<&'static str> {
    let cols = frame.columns();
    let numbers = cols.iter().filter(|c| c.dtype() == &DataType::Float64);
    let serials = numbers.clone().filter(|c| {
        c.f64().is_ok_and(|f| {
            f.len() > f.null_count() && f.iter().flatten().all(|x| SERIALS.contains(&x))
        })
    });
    let dated = cols
        .iter()
        .any(|c| matches!(c.dtype(), DataType::Datetime(..)));
    let (numbers, serials) = (numbers.count(), serials.count());
    match (dated || (serials > 0 && numbers > 1), numbers > 0) {
        (true, true) => None,
        (false, true) => Some("no column of dates"),
        (true, false) => Some("no column of numbers"),
        (false, false) => Some("no column of dates and none of numbers"),
    }
}

/// A sheet's cells by absolute position (0-based row, column).
struct Grid<'a>(&'a Range<Data>);

impl Grid<'_> {
    fn cell(&self, row: u32, col: u32) -> &Data {
        self.0.get_value((row, col)).unwrap_or(&Data::Empty)
    }

    /// The columns of the used range.
    fn cols(&self) -> std::ops::RangeInclusive<u32> {
        match (self.0.start(), self.0.end()) {
            (Some(s), Some(e)) => s.1..=e.1,
            #[allow(clippy::reversed_empty_ranges)]
            _ => 1..=0,
        }
    }

    /// The rows of the used range.
    fn rows(&self) -> std::ops::RangeInclusive<u32> {
        match (self.0.start(), self.0.end()) {
            (Some(s), Some(e)) => s.0..=e.0,
            #[allow(clippy::reversed_empty_ranges)]
            _ => 1..=0,
        }
    }

    fn blank(&self, row: u32) -> bool {
        self.cols().all(|c| is_empty(self.cell(row, c)))
    }

    /// The header row (1-based): the first row with at least two text
    /// cells whose next non-blank row holds a date or a number. Title rows
    /// above it (one cell of text, blank rows) are passed over.
    fn header(&self) -> Option<usize> {
        let rows = self.rows();
        let end = *rows.end();
        for r in rows {
            let texts = self
                .cols()
                .filter(|&c| matches!(self.cell(r, c), Data::String(s) if !s.trim().is_empty()))
                .count();
            if texts < 2 {
                continue;
            }
            let next = (r + 1..=end).find(|&n| !self.blank(n));
            let data = next.is_some_and(|n| {
                self.cols().any(|c| {
                    matches!(
                        self.cell(n, c),
                        Data::Int(_) | Data::Float(_) | Data::DateTime(_) | Data::DateTimeIso(_)
                    )
                })
            });
            if data {
                return usize::try_from(r).ok().map(|r| r + 1);
            }
        }
        None
    }

    /// Why [`Grid::header`] found none, in a few words.
    fn no_header(&self) -> String {
        let cells = self
            .rows()
            .map(|r| self.cols().filter(|&c| !is_empty(self.cell(r, c))).count())
            .sum::<usize>();
        match cells {
            0 => "it is empty".into(),
            1 => "it holds one cell, no table".into(),
            n => format!(
                "no header row among its {n} cells (a row of at least two column names above a row of dates or numbers)"
            ),
        }
    }

    /// The table whose header is on row `header` (1-based): one column per
    /// header cell or column of data, at most `limit` non-blank rows.
    fn table(&self, sheet: &str, header: usize, limit: Option<usize>) -> Result<Table, String> {
        let rows = self.rows();
        let (first, last) = (*rows.start(), *rows.end());
        let h = header
            .checked_sub(1)
            .and_then(|h| u32::try_from(h).ok())
            .ok_or_else(|| format!("header_row {header} is no row"))?;
        if rows.is_empty() || h > last || h < first || self.blank(h) {
            return Err(format!("row {header} (header_row) is empty"));
        }
        let data: Vec<u32> = (h + 1..=last)
            .filter(|&r| !self.blank(r))
            .take(limit.unwrap_or(usize::MAX))
            .collect();
        let mut names: Vec<String> = Vec::new();
        let mut columns: Vec<Column> = Vec::new();
        for c in self.cols() {
            let head = text(self.cell(h, c)).unwrap_or_default();
            let cells: Vec<&Data> = data.iter().map(|&r| self.cell(r, c)).collect();
            if head.is_empty() && cells.iter().all(|d| is_empty(d)) {
                continue;
            }
            let mut name = if head.is_empty() {
                format!("column_{}", c + 1)
            } else {
                head
            };
            // as Polars names a CSV's repeated header, which the loader reports
            let repeats = names.iter().filter(|n| **n == name).count();
            names.push(name.clone());
            if repeats > 0 {
                name = format!("{name}_duplicated_{}", repeats - 1);
            }
            columns.push(column(&name, &cells).map_err(|e| format!("column {name:?}: {e}"))?);
        }
        if columns.is_empty() {
            return Err(format!("row {header} (header_row) is empty"));
        }
        let frame = DataFrame::new(data.len(), columns).map_err(|e| e.to_string())?;
        Ok(Table {
            sheet: sheet.to_string(),
            header_row: header,
            frame,
            rows: data.iter().map(|&r| r as usize + 1).collect(),
        })
    }
}

/// True for a cell without a value (empty, or only spaces).
fn is_empty(d: &Data) -> bool {
    match d {
        Data::Empty => true,
        Data::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

/// A date or datetime cell as wall-clock ms (`None` for a time of day or
/// an ISO text that is no date).
fn date_ms(d: &Data) -> Option<i64> {
    let dt = match d {
        Data::DateTime(x) if x.is_datetime() => x.as_datetime()?,
        Data::DateTimeIso(s) => s.parse::<NaiveDateTime>().ok().or_else(|| {
            s.parse::<NaiveDate>()
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })?,
        _ => return None,
    };
    Some(dt.and_utc().timestamp_millis())
}

/// Wall-clock ms in ISO 8601: a date at midnight, else a datetime.
fn iso(ms: i64) -> String {
    let Some(t) = chrono::DateTime::from_timestamp_millis(ms).map(|t| t.naive_utc()) else {
        return ms.to_string();
    };
    if t.time() == chrono::NaiveTime::MIN {
        t.format("%Y-%m-%d").to_string()
    } else {
        t.format("%Y-%m-%d %H:%M:%S%.f").to_string()
    }
}

/// A number cell's value (a duration counts as its days).
fn number(d: &Data) -> Option<f64> {
    match d {
        Data::Float(x) => Some(*x),
        #[allow(clippy::cast_precision_loss)]
        Data::Int(x) => Some(*x as f64),
        Data::DateTime(x) if !x.is_datetime() => Some(x.as_f64()),
        _ => None,
    }
}

/// A cell as text: numbers as Rust writes them (`101`, `12.5`), dates in
/// ISO 8601; `None` for an empty or error cell.
fn text(d: &Data) -> Option<String> {
    if let Some(ms) = date_ms(d) {
        return Some(iso(ms));
    }
    if let Some(x) = number(d) {
        return Some(x.to_string());
    }
    match d {
        Data::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Data::Bool(b) => Some(if *b { "TRUE" } else { "FALSE" }.into()),
        Data::DateTimeIso(s) | Data::DurationIso(s) => Some(s.clone()),
        _ => None,
    }
}

/// Serial dates of the years 1990 to 2099: a number in this range in a
/// date column is a date whose cell lost its date format.
const SERIALS: std::ops::Range<f64> = 32_874.0..73_051.0;

/// One column of cells in the type they share: dates (with numbers that
/// are plausible serial dates among them), numbers (booleans as 0/1), else
/// text. Error cells (`#N/A`, `#DIV/0!`) and empty ones are nulls.
fn column(name: &str, cells: &[&Data]) -> Result<Column, String> {
    let (mut dates, mut numbers, mut serials, mut bools, mut texts) = (0, 0, 0, 0, 0);
    for d in cells {
        if is_empty(d) || matches!(d, Data::Error(_)) {
            continue;
        }
        if date_ms(d).is_some() {
            dates += 1;
        } else if let Some(x) = number(d) {
            numbers += 1;
            serials += usize::from(SERIALS.contains(&x));
        } else if matches!(d, Data::Bool(_)) {
            bools += 1;
        } else {
            texts += 1;
        }
    }
    let as_text = texts > 0 || (dates > 0 && (serials < numbers || bools > 0));
    let out = if as_text {
        let v: Vec<Option<String>> = cells.iter().map(|d| text(d)).collect();
        Series::new(name.into(), v)
    } else if dates > 0 {
        let v: Vec<Option<i64>> = cells
            .iter()
            .map(|d| date_ms(d).or_else(|| number(d).and_then(crate::text::excel_ms)))
            .collect();
        Series::new(name.into(), v)
            .cast(&DataType::Datetime(TimeUnit::Milliseconds, None))
            .map_err(|e| e.to_string())?
    } else {
        let v: Vec<Option<f64>> = cells
            .iter()
            .map(|d| match d {
                Data::Bool(b) => Some(f64::from(u8::from(*b))),
                d => number(d),
            })
            .collect();
        Series::new(name.into(), v)
    };
    Ok(out.into())
}

/// The table as the source reads it: a time column of numbers, every one
/// a plausible serial date (1990 to 2099), as Excel serial dates when the
/// source gives no `time_format` (with one, `normalize` reads the column by
/// it, `excel` included); dimension and metric-name columns of numbers as
/// text (`101`, not `101.0`).
pub(super) fn for_source(cfg: &SourceConfig, mut table: Table) -> Result<Table, String> {
    let tc = cfg.time_column.as_str();
    if let Ok(c) = table.frame.column(tc)
        && c.dtype() == &DataType::Float64
        && cfg.dialect.time_format.is_none()
    {
        let f = c.f64().map_err(|e| e.to_string())?;
        if f.iter().flatten().all(|x| SERIALS.contains(&x)) {
            let ms: Vec<Option<i64>> = f
                .iter()
                .map(|x| x.and_then(crate::text::excel_ms))
                .collect();
            let s = Series::new(tc.into(), ms)
                .cast(&DataType::Datetime(TimeUnit::Milliseconds, None))
                .map_err(|e| e.to_string())?;
            table
                .frame
                .replace(tc, s.into_column())
                .map_err(|e| e.to_string())?;
        }
    }
    let mut keys: Vec<&str> = cfg.dimensions.iter().map(String::as_str).collect();
    if let crate::config::Layout::Long {
        metric: crate::config::MetricName::Column(m),
        ..
    } = &cfg.layout
    {
        keys.push(m);
    }
    for k in keys {
        if let Ok(c) = table.frame.column(k)
            && c.dtype() == &DataType::Float64
        {
            let f = c.f64().map_err(|e| e.to_string())?;
            let v: Vec<Option<String>> = f.iter().map(|x| x.map(|x| x.to_string())).collect();
            table
                .frame
                .replace(k, Series::new(k.into(), v).into_column())
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]

    use std::path::PathBuf;

    use rust_xlsxwriter::{ExcelDateTime, Format as Cell, Formula, Workbook};

    use super::*;
    use crate::batch::Batch;
    use crate::source::tests::any_window;
    use crate::source::{SourceError, load};

    fn source(path: &str, extra: &str) -> SourceConfig {
        let text = format!(
            "[[source]]\nname = \"s\"\npath = \"{path}\"\ntime_column = \"Week Ending\"\nlayout = \"wide\"\n{extra}\n"
        );
        crate::config::compile_str(&text, Path::new("/tmp/c.toml"), &|_| None)
            .unwrap()
            .sources[0]
            .clone()
    }

    /// Sunday 2024-01-07 plus `w` weeks.
    fn sunday(w: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 1, 7).unwrap() + chrono::Days::new(u64::from(w) * 7)
    }

    /// Orders of week `w`, as the sheet holds them.
    fn orders(w: u32) -> f64 {
        f64::from(100 + w * 3)
    }

    /// `wbr.xlsx` in `dir` as an analyst keeps it: a Notes sheet first
    /// (one line of text), then "Weekly": a title on row 1, row 2 blank, the
    /// header on row 3, twelve weeks from row 4 with the week as a date, a
    /// revenue per week, a conversion formula with its cached result and a
    /// column whose header cell was left empty; a blank row after week 5.
    /// `bad`: text written in the Orders cell of that week.
    fn weekly(dir: &Path, bad: Option<(u32, &str)>) -> PathBuf {
        let mut book = Workbook::new();
        let date = Cell::new().set_num_format("dd/mm/yyyy");
        let notes = book.add_worksheet();
        notes.set_name("Notes").unwrap();
        notes
            .write_string(0, 0, "Exported every Monday from the warehouse.")
            .unwrap();
        let sheet = book.add_worksheet();
        sheet.set_name("Weekly").unwrap();
        sheet.write_string(0, 0, "Weekly business review").unwrap();
        for (c, h) in ["Week Ending", " Orders ", "Revenue", "Conversion"]
            .iter()
            .enumerate()
        {
            sheet.write_string(2, c as u16, *h).unwrap();
        }
        let mut row = 3;
        for w in 0..12 {
            let d = sunday(w);
            let at =
                ExcelDateTime::from_ymd(d.year() as u16, d.month() as u8, d.day() as u8).unwrap();
            sheet
                .write_datetime_with_format(row, 0, &at, &date)
                .unwrap();
            match bad {
                Some((b, text)) if b == w => sheet.write_string(row, 1, text).unwrap(),
                _ => sheet.write_number(row, 1, orders(w)).unwrap(),
            };
            sheet.write_number(row, 2, orders(w) * 12.5).unwrap();
            let f = format!("=B{0}/C{0}", row + 1);
            let cached = (orders(w) / (orders(w) * 12.5)).to_string();
            sheet
                .write_formula(row, 3, Formula::new(f).set_result(cached))
                .unwrap();
            sheet.write_number(row, 4, f64::from(w)).unwrap();
            row += if w == 5 { 2 } else { 1 };
        }
        let path = dir.join("wbr.xlsx");
        book.save(&path).unwrap();
        path
    }

    use chrono::Datelike;

    /// The series of a batch by name, each as (date, value) points.
    fn series(b: &Batch) -> Vec<(String, Vec<(NaiveDate, f64)>)> {
        b.series
            .iter()
            .map(|s| {
                let points = b
                    .ts_of(s)
                    .iter()
                    .zip(b.values_of(s))
                    .map(|(&t, &v)| {
                        let d = chrono::DateTime::from_timestamp_millis(t).unwrap();
                        (d.date_naive(), v)
                    })
                    .collect();
                (s.key.to_string(), points)
            })
            .collect()
    }

    fn check_weekly(b: &Batch) {
        let got = series(b);
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        // each metric is its header's slug
        assert_eq!(names, ["column_5", "conversion", "orders", "revenue"]);
        for (name, points) in &got {
            assert_eq!(points.len(), 12, "{name}");
            for (w, (d, v)) in (0..).zip(points) {
                // the week ending as the sheet shows it: that Sunday
                assert_eq!(*d, sunday(w), "{name}");
                assert_eq!(d.weekday(), chrono::Weekday::Sun);
                let want = match name.as_str() {
                    "orders" => orders(w),
                    "revenue" => orders(w) * 12.5,
                    "conversion" => 0.08,
                    _ => f64::from(w),
                };
                assert!((v - want).abs() < 1e-9, "{name} week {w}: {v} != {want}");
            }
        }
    }

    #[test]
    fn a_weekly_sheet_below_its_title_is_found_past_a_notes_sheet() {
        let dir = tempfile::tempdir().unwrap();
        let path = weekly(dir.path(), None);
        let t = read_table(&path, None, None, None).unwrap();
        assert_eq!((t.sheet.as_str(), t.header_row), ("Weekly", 3));
        assert_eq!(t.rows[..7], [4, 5, 6, 7, 8, 9, 11]);
        let (b, problems) = load(&source(&path.display().to_string(), ""), &any_window()).unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        check_weekly(&b);
        // the head, as `callout init` reads it
        let head = read_table(&path, None, None, Some(2)).unwrap();
        assert_eq!(head.frame.height(), 2);
    }

    #[test]
    fn the_sheet_and_header_row_can_be_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = weekly(dir.path(), None).display().to_string();
        for extra in [
            "sheet = \"Weekly\"",
            "header_row = 3",
            "sheet = \"Weekly\"\nheader_row = 3",
            // a tab's name as typed differently
            "sheet = \"weekly \"",
        ] {
            let (b, problems) = load(&source(&path, extra), &any_window()).unwrap();
            assert!(problems.is_empty(), "{extra}: {problems:?}");
            check_weekly(&b);
        }
        // the title row as header: no such columns
        let err = load(
            &source(&path, "sheet = \"Weekly\"\nheader_row = 1"),
            &any_window(),
        )
        .unwrap_err();
        let msg = err[0].to_string();
        assert!(msg.contains("no column `Week Ending`"), "{msg}");
        assert!(msg.contains("(sheet \"Weekly\")"), "{msg}");
    }

    #[test]
    fn a_missing_sheet_is_named_with_the_sheets_there() {
        let dir = tempfile::tempdir().unwrap();
        let path = weekly(dir.path(), None).display().to_string();
        let err = load(&source(&path, "sheet = \"Data\""), &any_window()).unwrap_err();
        let msg = err[0].to_string();
        assert!(
            msg.contains("no sheet \"Data\" in wbr.xlsx; its sheets are \"Notes\", \"Weekly\""),
            "{msg}"
        );
        // no sheet with a table: each says why
        let mut book = Workbook::new();
        book.add_worksheet()
            .set_name("Notes")
            .unwrap()
            .write_string(0, 0, "nothing here")
            .unwrap();
        let only_text = book.add_worksheet();
        only_text.write_string(0, 0, "Week Ending").unwrap();
        only_text.write_string(0, 1, "Orders").unwrap();
        only_text.write_string(1, 0, "soon").unwrap();
        let empty = dir.path().join("empty.xlsx");
        book.save(&empty).unwrap();
        let msg = read_table(&empty, None, None, None).unwrap_err();
        assert!(
            msg.starts_with("no sheet of empty.xlsx holds a table with a date column and a number column (\"Notes\": it holds one cell, no table; \"Sheet2\": no header row"),
            "{msg}"
        );
    }

    #[test]
    fn a_text_cell_in_a_metric_column_is_named_by_file_sheet_column_and_row() {
        let dir = tempfile::tempdir().unwrap();
        // week 7 is on sheet row 12 (below the blank row after week 5)
        let path = weekly(dir.path(), Some((7, "about 120")));
        let err = load(&source(&path.display().to_string(), ""), &any_window()).unwrap_err();
        let msg = err[0].to_string();
        assert!(
            matches!(&err[0], SourceError::BadColumn { column, .. } if column == "Orders"),
            "{msg}"
        );
        assert!(
            msg.contains("wbr.xlsx (sheet \"Weekly\")` column `Orders`: row 12: \"about 120\""),
            "{msg}"
        );
    }

    /// A compound file holding an `EncryptedPackage` stream: what Excel
    /// writes for a workbook saved with a password (the stream is empty
    /// here; its presence is what tells).
    fn encrypted() -> Vec<u8> {
        const END: u32 = 0xFFFF_FFFE;
        const FREE: u32 = 0xFFFF_FFFF;
        let mut out = vec![0u8; 512 * 3];
        let put = |out: &mut Vec<u8>, at: usize, v: u32| {
            out[at..at + 4].copy_from_slice(&v.to_le_bytes());
        };
        out[..8].copy_from_slice(&CFB_MAGIC);
        out[24..26].copy_from_slice(&0x3Eu16.to_le_bytes());
        out[26..28].copy_from_slice(&3u16.to_le_bytes());
        out[28..30].copy_from_slice(&0xFFFEu16.to_le_bytes());
        out[30..32].copy_from_slice(&9u16.to_le_bytes());
        out[32..34].copy_from_slice(&6u16.to_le_bytes());
        put(&mut out, 44, 1); // one FAT sector
        put(&mut out, 48, 1); // the directory in sector 1
        put(&mut out, 56, 4096);
        put(&mut out, 60, END); // no mini FAT
        put(&mut out, 68, END); // no DIFAT sectors
        put(&mut out, 76, 0); // the FAT in sector 0
        for i in 1..109 {
            put(&mut out, 76 + i * 4, FREE);
        }
        // sector 0, the FAT: itself, then the directory's chain of one
        put(&mut out, 512, 0xFFFF_FFFD);
        put(&mut out, 516, END);
        for i in 2..128 {
            put(&mut out, 512 + i * 4, FREE);
        }
        // sector 1, the directory: the root and the encrypted package
        for (i, name) in ["Root Entry", "EncryptedPackage"].iter().enumerate() {
            let at = 1024 + i * 128;
            let utf16: Vec<u8> = name.encode_utf16().flat_map(u16::to_le_bytes).collect();
            out[at..at + utf16.len()].copy_from_slice(&utf16);
            out[at + 64..at + 66]
                .copy_from_slice(&u16::try_from(utf16.len() + 2).unwrap().to_le_bytes());
            out[at + 66] = if i == 0 { 5 } else { 2 };
            put(&mut out, at + 116, END);
        }
        out
    }

    #[test]
    fn an_encrypted_or_broken_workbook_is_a_clear_error_and_spares_the_others() {
        let dir = tempfile::tempdir().unwrap();
        weekly(dir.path(), None);
        std::fs::write(dir.path().join("locked.xlsx"), encrypted()).unwrap();
        std::fs::write(dir.path().join("x-broken.xlsx"), b"PK\x03\x04 not a zip").unwrap();
        let msg = read_table(&dir.path().join("locked.xlsx"), None, None, None).unwrap_err();
        assert_eq!(
            msg,
            "locked.xlsx is password-protected; save it without a password or export CSV"
        );
        let glob = dir.path().join("*.xlsx").display().to_string();
        let (b, problems) = load(&source(&glob, ""), &any_window()).unwrap();
        check_weekly(&b);
        let said: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(said.len(), 2, "{said:?}");
        assert!(
            said[0].contains("locked.xlsx is password-protected"),
            "{said:?}"
        );
        assert!(
            said[1].contains("x-broken.xlsx is not a workbook calamine can read"),
            "{said:?}"
        );
        // the same bytes from memory (an S3 object) say the same
        let msg = read_table_bytes(encrypted(), "locked.xlsx", None, None, None).unwrap_err();
        assert!(msg.contains("password-protected"), "{msg}");
    }

    #[test]
    fn serial_numbers_in_the_time_column_are_dates() {
        // dates written as plain numbers (the date format lost), a dimension
        // of store numbers, an error cell and a dash in a value column
        let dir = tempfile::tempdir().unwrap();
        let mut book = Workbook::new();
        let sheet = book.add_worksheet();
        for (c, h) in ["Week Ending", "Store", "Orders"].iter().enumerate() {
            sheet.write_string(0, c as u16, *h).unwrap();
        }
        for w in 0..8u32 {
            let serial = 45_298.0 + f64::from(w * 7); // 2024-01-07
            let r = w + 1;
            sheet.write_number(r, 0, serial).unwrap();
            sheet.write_number(r, 1, 101.0).unwrap();
            match w {
                3 => sheet
                    .write_formula(r, 2, Formula::new("=1/0").set_result("#DIV/0!"))
                    .unwrap(),
                _ => sheet.write_number(r, 2, orders(w)).unwrap(),
            };
        }
        let path = dir.path().join("stores.xlsx");
        book.save(&path).unwrap();
        let path = path.display().to_string();
        for extra in ["", "time_format = \"excel\""] {
            let cfg = source(
                &path,
                &format!("{extra}\ndimensions = [\"Store\"]\nmetrics = [\"Orders\"]"),
            );
            let (b, problems) = load(&cfg, &any_window()).unwrap();
            assert!(problems.is_empty(), "{problems:?}");
            let got = series(&b);
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].0, "orders{Store=101}");
            let weeks: Vec<u32> = vec![0, 1, 2, 4, 5, 6, 7];
            let want: Vec<(NaiveDate, f64)> =
                weeks.iter().map(|&w| (sunday(w), orders(w))).collect();
            assert_eq!(got[0].1, want, "{extra}");
        }
    }
}
