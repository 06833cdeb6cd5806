//! The records of a CSV file as a person reads them, for the message of a
//! file whose fast read failed: each record's line (header = line 1; a
//! quoted field may hold newlines), its fields against the header's, the
//! UTF-8 of the columns the source reads, and the UTC offsets of its time
//! column. Polars says only "invalid utf-8 sequence" or "found more fields
//! than defined in 'Schema'" and fills a short record with nulls; this pass
//! says where.
//!
//! Read only for a file already known bad (the per-row work of a whole
//! extra pass is paid where a message is being worded), except
//! [`has_short_record`], which looks at a block's bytes only when its last
//! column came out with empty cells.

use std::io::BufRead;
use std::path::Path;

use super::SourceError;
use super::error::read_err;
use super::normalize::zoned_iso;
use super::offsets::{ZoneCheck, shown};
use crate::config::{Layout, MetricName, SourceConfig};

/// Up to this many characters of a record are quoted in a message.
const SHOWN_CHARS: usize = 80;

/// The header's columns and which of them the source reads.
struct Header {
    names: Vec<String>,
    /// Per column: read by the source (its UTF-8 is checked).
    used: Vec<bool>,
    /// The time column's index.
    time: Option<usize>,
}

impl Header {
    fn new(cfg: &SourceConfig, fields: &[&[u8]]) -> Header {
        let names: Vec<String> = fields
            .iter()
            .map(|f| String::from_utf8_lossy(unquote(f)).trim().to_string())
            .collect();
        let keys: Vec<&str> = std::iter::once(cfg.time_column.as_str())
            .chain(cfg.dimensions.iter().map(String::as_str))
            .collect();
        let used = names
            .iter()
            .map(|n| {
                keys.contains(&n.as_str())
                    || match &cfg.layout {
                        Layout::Long {
                            metric,
                            value_column,
                        } => n == value_column || matches!(metric, MetricName::Column(c) if c == n),
                        Layout::Wide { metrics: Some(m) } => m.contains(n),
                        Layout::Wide { metrics: None } => true,
                    }
            })
            .collect();
        let time = names.iter().position(|n| n == &cfg.time_column);
        Header { names, used, time }
    }
}

/// The first problem of the CSV file at `path` (fields split at
/// `delimiter`) that Polars words without its place (see the module doc),
/// as an error naming its line; `None` when there is none (or the file
/// cannot be read here: the whole read says why).
pub(super) fn problem(
    cfg: &SourceConfig,
    path: &Path,
    label: &str,
    delimiter: u8,
) -> Option<SourceError> {
    let file = std::fs::File::open(path).ok()?;
    let mut rd = std::io::BufReader::with_capacity(1 << 20, file);
    let mut rec = Vec::new();
    // the line the next record starts on
    let mut line = 1usize;
    let mut header: Option<Header> = None;
    // a blank line is a problem only when data follows it
    let mut blank = None;
    let mut zones = ZoneCheck::new(cfg.timezone);
    // each offset seen: its first line
    let mut offsets: Vec<(i32, usize)> = Vec::new();
    loop {
        rec.clear();
        if !read_record(&mut rd, &mut rec).ok()? {
            return None;
        }
        let start = line;
        line += rec.iter().filter(|&&b| b == b'\n').count();
        let mut body = strip_eol(&rec);
        if header.is_none() {
            // (Polars skips a UTF-8 BOM too)
            body = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
        }
        let fields = split(body, delimiter);
        if header.is_none() {
            if let Err(e) = std::str::from_utf8(body) {
                let at = e.valid_up_to();
                return Some(read_err(
                    cfg,
                    label,
                    format!(
                        "line {}, the header: {}{IN_EXCEL}",
                        start + newlines(&body[..at]),
                        not_utf8(body, at)
                    ),
                ));
            }
            header = Some(Header::new(cfg, &fields));
            continue;
        }
        let Some(h) = &header else {
            continue;
        };
        if body.is_empty() {
            blank.get_or_insert(start);
            continue;
        }
        if let Some(b) = blank.take() {
            return Some(read_err(
                cfg,
                label,
                format!("line {b} is blank, between rows of data; remove it"),
            ));
        }
        if fields.len() != h.names.len() {
            return Some(read_err(
                cfg,
                label,
                format!(
                    "line {start} has {} fields, the header (line 1) has {}: {}; {}",
                    fields.len(),
                    h.names.len(),
                    shown_text(body),
                    if fields.len() > h.names.len() {
                        format!(
                            "a value holding a {} must be in double quotes",
                            named(delimiter)
                        )
                    } else {
                        format!("an empty value still needs its {}", named(delimiter))
                    }
                ),
            ));
        }
        for (i, f) in fields.iter().enumerate() {
            if !h.used[i] {
                continue;
            }
            let f = unquote(f);
            if let Err(e) = std::str::from_utf8(f) {
                let at = offset_in(body, f) + e.valid_up_to();
                return Some(SourceError::BadColumn {
                    source_name: cfg.name.clone(),
                    file: label.to_string(),
                    column: h.names[i].clone(),
                    message: format!(
                        "line {}: {}{IN_EXCEL}",
                        start + newlines(&body[..at]),
                        not_utf8(f, e.valid_up_to())
                    ),
                });
            }
        }
        let Some(text) = h.time.map(|t| unquote(fields[t]).trim_ascii()) else {
            continue;
        };
        let Some(stamp) = zoned_iso(text) else {
            continue;
        };
        if !offsets.iter().any(|(o, _)| *o == stamp.offset) {
            offsets.push((stamp.offset, start));
        }
        if !zones.row(stamp) {
            let list: Vec<String> = offsets
                .iter()
                .map(|(o, l)| format!("{} (from line {l})", shown(*o)))
                .collect();
            return Some(SourceError::BadColumn {
                source_name: cfg.name.clone(),
                file: label.to_string(),
                column: cfg.time_column.clone(),
                message: format!(
                    "line {start}: {} is at UTC offset {}; the column mixes the offsets {} in a way no one timezone's daylight-saving changes explain, so the local time of its rows is unknown; export every timestamp with one offset (e.g. UTC), or in local time without an offset and set `timezone` on the source to that zone",
                    shown_text(text),
                    shown(stamp.offset),
                    list.join(", "),
                ),
            });
        }
    }
}

/// True when `block` (whole records, no header, which Polars parsed with
/// fields split at `delimiter`: no record has more than `fields` fields)
/// holds a record with fewer, or a blank one (Polars fills both with nulls).
pub(super) fn has_short_record(block: &[u8], fields: usize, delimiter: u8) -> bool {
    if !block.contains(&b'"') {
        // no quotes: every record has its `fields - 1` delimiters unless one
        // is short (a count the compiler vectorises, for an export whose
        // last column has empty cells all along)
        let (commas, newlines) = delimiters_and_newlines(block, delimiter);
        let records = newlines + usize::from(block.last().is_some_and(|&b| b != b'\n'));
        return commas < records * fields.saturating_sub(1);
    }
    let (mut quoted, mut n, mut open) = (false, 1, false);
    for &b in block {
        match b {
            b'"' => quoted = !quoted,
            b if b == delimiter && !quoted => n += 1,
            b'\n' if !quoted => {
                if n < fields {
                    return true;
                }
                (n, open) = (1, false);
                continue;
            }
            _ => {}
        }
        open = true;
    }
    open && n < fields
}

/// The `delimiter`s and newlines in `b`, counted in runs of 255 bytes into
/// byte counters, which the compiler turns into vector compares and adds.
fn delimiters_and_newlines(b: &[u8], delimiter: u8) -> (usize, usize) {
    let (mut commas, mut newlines) = (0, 0);
    for run in b.chunks(255) {
        let (mut c, mut n) = (0u8, 0u8);
        for &x in run {
            c += u8::from(x == delimiter);
            n += u8::from(x == b'\n');
        }
        commas += usize::from(c);
        newlines += usize::from(n);
    }
    (commas, newlines)
}

/// Read one record (through a newline outside quotes, or to the end of the
/// file) onto `rec`; `false` at the end of the file.
fn read_record(rd: &mut impl BufRead, rec: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut quotes = 0usize;
    loop {
        let from = rec.len();
        if rd.read_until(b'\n', rec)? == 0 {
            return Ok(!rec.is_empty());
        }
        quotes += rec[from..].iter().filter(|&&b| b == b'"').count();
        if quotes % 2 == 0 {
            return Ok(true);
        }
    }
}

/// A record without its line end (`\n` or `\r\n`).
fn strip_eol(rec: &[u8]) -> &[u8] {
    let rec = rec.strip_suffix(b"\n").unwrap_or(rec);
    rec.strip_suffix(b"\r").unwrap_or(rec)
}

/// The fields of a record, split at `delimiter`s outside double quotes.
fn split(body: &[u8], delimiter: u8) -> Vec<&[u8]> {
    let (mut fields, mut from, mut quoted) = (Vec::new(), 0, false);
    for (i, &b) in body.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b if b == delimiter && !quoted => {
                fields.push(&body[from..i]);
                from = i + 1;
            }
            _ => {}
        }
    }
    fields.push(&body[from..]);
    fields
}

/// A delimiter in words.
fn named(delimiter: u8) -> String {
    match delimiter {
        b',' => "comma".into(),
        b';' => "semicolon".into(),
        b'\t' => "tab".into(),
        d => format!("`{}`", char::from(d)),
    }
}

/// A field without its surrounding double quotes.
fn unquote(f: &[u8]) -> &[u8] {
    f.strip_prefix(b"\"")
        .and_then(|f| f.strip_suffix(b"\""))
        .unwrap_or(f)
}

/// Where `part` (a subslice of `whole`) begins in it.
fn offset_in(whole: &[u8], part: &[u8]) -> usize {
    (part.as_ptr() as usize).saturating_sub(whole.as_ptr() as usize)
}

fn newlines(b: &[u8]) -> usize {
    b.iter().filter(|&&c| c == b'\n').count()
}

/// Bytes quoted in a message: as text (invalid UTF-8 replaced), cut at
/// [`SHOWN_CHARS`] characters.
fn shown_text(b: &[u8]) -> String {
    let text = String::from_utf8_lossy(b);
    let mut shown: String = text.chars().take(SHOWN_CHARS).collect();
    if shown.len() < text.len() {
        shown.push('…');
    }
    format!("{shown:?}")
}

/// Windows-1252's characters for the bytes 0x80 to 0x9F (`None`: unused);
/// from 0xA0 on it is Latin-1, whose bytes are the Unicode code points.
const CP1252_HIGH: [Option<char>; 32] = [
    Some('€'),
    None,
    Some('‚'),
    Some('ƒ'),
    Some('„'),
    Some('…'),
    Some('†'),
    Some('‡'),
    Some('ˆ'),
    Some('‰'),
    Some('Š'),
    Some('‹'),
    Some('Œ'),
    None,
    Some('Ž'),
    None,
    None,
    Some('‘'),
    Some('’'),
    Some('“'),
    Some('”'),
    Some('•'),
    Some('–'),
    Some('—'),
    Some('˜'),
    Some('™'),
    Some('š'),
    Some('›'),
    Some('œ'),
    None,
    Some('ž'),
    Some('Ÿ'),
];

/// A byte as Windows-1252 reads it.
fn cp1252(b: u8) -> Option<char> {
    match b {
        0x80..=0x9F => CP1252_HIGH[usize::from(b - 0x80)],
        _ => Some(char::from(b)),
    }
}

/// What is wrong with `text`, whose byte `at` begins no UTF-8 character:
/// the byte, the text as Windows-1252 (Excel's "CSV" on Windows) would
/// read it, and what to do.
pub(super) fn not_utf8(text: &[u8], at: usize) -> String {
    let byte = text.get(at).copied().unwrap_or_default();
    // (a long text is quoted around the byte; Windows-1252 has a byte a character)
    let (from, to) = (at.saturating_sub(30), at.saturating_add(30).min(text.len()));
    let as_cp1252: Option<String> = text[from..to].iter().map(|&b| cp1252(b)).collect();
    let as_cp1252 = as_cp1252.map(|t| {
        let cut = |yes: bool| if yes { "…" } else { "" };
        format!("{}{t}{}", cut(from > 0), cut(to < text.len()))
    });
    let reading = match (cp1252(byte), as_cp1252) {
        (Some(c), Some(t)) => {
            format!(" (`{c}` in Windows-1252 or Latin-1, which would read {t:?})")
        }
        _ => String::new(),
    };
    format!("byte 0x{byte:02X} is not UTF-8{reading}; save the file as UTF-8")
}

/// What a CSV adds to [`not_utf8`]'s advice: where Excel chooses UTF-8,
/// or the key that reads the file as it is.
const IN_EXCEL: &str = concat!(
    " (in Excel: \"CSV UTF-8\"), ",
    "or set `encoding = \"windows-1252\"` on the source if it was saved as Excel's \"CSV\" on Windows (or another code page: its name)"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::tests::source;

    /// The problem [`problem`] finds in a file of `bytes`, as text.
    fn check(bytes: &[u8]) -> Option<String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.csv");
        std::fs::write(&path, bytes).unwrap();
        problem(&source(&path, ""), &path, "m.csv", b',').map(|e| e.to_string())
    }

    const HEAD: &str = "date,metric,region,value,note\n";

    #[test]
    fn problems_are_named_by_the_line_a_person_counts() {
        // a quoted newline (line 3) moves the later records down a line
        let rows = "2024-01-01,a,\"north\nwest\",1,\n2024-01-02,a,eu,2,\"x, y\"\r\n";
        assert_eq!(check(format!("{HEAD}{rows}").as_bytes()), None);
        let got = check(format!("{HEAD}{rows}2024-01-03,a,eu,3,,9\n").as_bytes()).unwrap();
        assert!(
            got.contains("line 5 has 6 fields, the header (line 1) has 5"),
            "{got}"
        );
        let got = check(format!("{HEAD}{rows}2024-01-03,a,eu").as_bytes()).unwrap();
        assert!(got.contains("line 5 has 3 fields"), "{got}");
        // a blank line at the end is no problem; inside the data it is
        assert_eq!(check(format!("{HEAD}{rows}\n\n").as_bytes()), None);
        let got = check(format!("{HEAD}{rows}\r\n2024-01-03,a,eu,3,\n").as_bytes()).unwrap();
        assert!(got.contains("line 5 is blank"), "{got}");
    }

    #[test]
    fn bytes_that_are_not_utf8_are_named_with_their_column() {
        let mut bytes = format!("{HEAD}2024-01-01,a,\"north\nwest\",1,\n").into_bytes();
        // in a column the source does not read: no problem
        bytes.extend_from_slice(b"2024-01-02,a,eu,2,caf\xe9\n");
        assert_eq!(check(&bytes), None);
        bytes.extend_from_slice(b"2024-01-03,a,\"M\xfcnchen\n\x80\",3,\n");
        let got = check(&bytes).unwrap();
        assert!(got.contains("column `region`: line 5: byte 0xFC"), "{got}");
        assert!(
            got.contains("`ü`") && got.contains("\"München\\n€\""),
            "{got}"
        );
        let got = check(b"date,metric,r\xe9gion,value\n").unwrap();
        assert!(got.contains("line 1, the header: byte 0xE9"), "{got}");
    }

    #[test]
    fn offsets_one_zone_does_not_explain_are_listed() {
        let rows = |offsets: &[&str]| -> String {
            let mut s = HEAD.to_string();
            for (h, o) in offsets.iter().enumerate() {
                s.push_str(&format!("2024-03-01T{h:02}:00:00{o},a,eu,1,\n"));
            }
            s
        };
        assert_eq!(check(rows(&["+01:00"; 5]).as_bytes()), None);
        let got = check(rows(&["Z", "Z", "+05:30", "Z"]).as_bytes()).unwrap();
        assert!(
            got.contains("line 4: \"2024-03-01T02:00:00+05:30\" is at UTC offset +05:30"),
            "{got}"
        );
        assert!(
            got.contains("+00:00 (from line 2), +05:30 (from line 4)"),
            "{got}"
        );
    }

    #[test]
    fn a_block_with_a_short_record_is_told_from_one_with_empty_cells() {
        assert!(!has_short_record(b"a,b,c\n\"x,\ny\",,\n1,2,", 3, b','));
        for first in ["a,", "\"q\","] {
            let has = |b: &str| has_short_record(format!("{first}{b}").as_bytes(), 3, b',');
            assert!(has("b,c\n1,2\n3,4,5\n"));
            assert!(has("b,c\n\r\n3,4,5\n"));
            assert!(has("b,c\n3,4"));
            assert!(!has("b,c\n3,4,\r\n,,\n"));
        }
    }
}
