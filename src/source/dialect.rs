//! How a CSV export writes its bytes: the text encoding (a BOM, UTF-16,
//! a legacy code page) and the field delimiter, found in the file's head
//! or given by the source's `encoding` and `delimiter`.
//!
//! Only a file's head is looked at here ([`HEAD`] bytes). A file in an
//! encoding other than UTF-8 is copied to UTF-8 ([`transcode`]) and the
//! copy read in its place, so the readers after this one only ever see
//! UTF-8 and the delimiter.

use std::io::{Read, Write};
use std::path::Path;

use encoding_rs::{CoderResult, Encoding};

use crate::config::Dialect;

/// Bytes of a file's head read to find its dialect.
pub const HEAD: usize = 64 << 10;

/// The delimiters looked for, in the order that breaks a tie.
const CANDIDATES: [u8; 4] = [b',', b';', b'\t', b'|'];

/// Lines after the header that decide between delimiters the header has.
const SAMPLE_LINES: usize = 20;

/// A CSV file's encoding and delimiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvDialect {
    /// The field delimiter.
    pub delimiter: u8,
    /// The text encoding; `None`: UTF-8 (after a BOM, if any).
    pub encoding: Option<&'static Encoding>,
}

/// The dialect of a CSV file from its first bytes: a BOM names the
/// encoding; bytes that are not UTF-8 are read as Windows-1252 (what Excel
/// writes on Windows in western Europe and the Americas); the delimiter is
/// [`header_delimiter`]'s.
pub fn sniff(head: &[u8]) -> CsvDialect {
    let (encoding, text) = match Encoding::for_bom(head) {
        Some((enc, bom)) if enc == encoding_rs::UTF_8 => (None, decode(&head[bom..], None)),
        Some((enc, bom)) => (Some(enc), decode(&head[bom..], Some(enc))),
        None if utf8_cut(head) => (None, decode(head, None)),
        None => (
            Some(encoding_rs::WINDOWS_1252),
            decode(head, Some(encoding_rs::WINDOWS_1252)),
        ),
    };
    CsvDialect {
        delimiter: header_delimiter(&text),
        encoding,
    }
}

/// How the loader reads one CSV file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadAs {
    /// The field delimiter: the source's `delimiter`, else sniffed.
    pub delimiter: u8,
    /// The encoding the file is copied to UTF-8 from before it is read;
    /// `None`: read as it is (UTF-8, a UTF-8 BOM skipped).
    pub transcode: Option<&'static Encoding>,
}

/// How the loader reads a CSV file whose first bytes are `head`, given the
/// source's keys: a BOM names the encoding (over the `encoding` key: Excel
/// writes one only when it is right); without one, the `encoding` key, else
/// UTF-8. Bytes that are not UTF-8 without an `encoding` key are read as
/// UTF-8 and fail there, with a hint to set the key: guessing a code page
/// would turn a wrong guess into wrong series names. The delimiter is the
/// `delimiter` key's, else [`header_delimiter`]'s.
pub fn read_as(keys: &Dialect, head: &[u8]) -> ReadAs {
    let (encoding, bom) = match Encoding::for_bom(head) {
        Some((enc, bom)) => (enc, bom),
        None => (keys.encoding.unwrap_or(encoding_rs::UTF_8), 0),
    };
    let transcode = (encoding != encoding_rs::UTF_8).then_some(encoding);
    let delimiter = keys
        .delimiter
        .unwrap_or_else(|| header_delimiter(&decode(&head[bom..], transcode)));
    ReadAs {
        delimiter,
        transcode,
    }
}

/// True when `head` is UTF-8 but for a character cut at its end.
fn utf8_cut(head: &[u8]) -> bool {
    match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    }
}

/// `bytes` as text in `encoding` (`None`: UTF-8), malformed sequences replaced.
pub fn decode(bytes: &[u8], encoding: Option<&'static Encoding>) -> String {
    encoding
        .unwrap_or(encoding_rs::UTF_8)
        .decode_without_bom_handling(bytes)
        .0
        .into_owned()
}

/// The delimiter of a CSV's head (`text`, from its header line on): of `,`
/// `;` tab `|` outside quotes on the header line, the one found as often on
/// each of the next complete lines (up to [`SAMPLE_LINES`]) and most often
/// on the header; when none is as frequent on every line, the most frequent
/// on the header; `,` when the header has none.
pub fn header_delimiter(text: &str) -> u8 {
    // per line (a quoted newline continues it): each candidate's count
    let mut lines: Vec<[usize; 4]> = Vec::new();
    let mut counts = [0usize; 4];
    let mut quoted = false;
    for b in text.bytes() {
        match b {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => {
                lines.push(counts);
                counts = [0; 4];
                if lines.len() > SAMPLE_LINES {
                    break;
                }
            }
            b => {
                if !quoted && let Some(i) = CANDIDATES.iter().position(|&c| c == b) {
                    counts[i] += 1;
                }
            }
        }
    }
    // a header without a line end is a line; a cut data line is not
    if lines.is_empty() {
        lines.push(counts);
    }
    let header = lines[0];
    // a blank line (the end of the data) decides nothing
    let rows: Vec<&[usize; 4]> = lines[1..]
        .iter()
        .filter(|c| c.iter().any(|&n| n > 0))
        .collect();
    let best = |eligible: &dyn Fn(usize) -> bool| {
        (0..CANDIDATES.len())
            .filter(|&i| header[i] > 0 && eligible(i))
            .max_by_key(|&i| (header[i], std::cmp::Reverse(i)))
    };
    best(&|i| rows.iter().all(|r| r[i] == header[i]))
        .or_else(|| best(&|_| true))
        .map_or(b',', |i| CANDIDATES[i])
}

/// The first [`HEAD`] bytes of the file at `path` (all of a shorter one).
pub fn read_head(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(HEAD);
    std::fs::File::open(path)?
        .take(HEAD as u64)
        .read_to_end(&mut head)?;
    Ok(head)
}

/// Copy `from` to `to` as UTF-8, decoding `encoding` (a BOM in the input
/// overrides it and is left out), a block at a time: the text is never in
/// memory whole. Malformed sequences become U+FFFD.
pub fn transcode(
    from: &mut impl Read,
    to: &mut impl Write,
    encoding: &'static Encoding,
) -> std::io::Result<()> {
    const BLOCK: usize = 1 << 20;
    let mut decoder = encoding.new_decoder();
    let mut input = vec![0u8; BLOCK];
    // room for any block's text (UTF-16 and single-byte code pages grow at most threefold)
    let mut output = vec![0u8; 3 * BLOCK + 16];
    loop {
        let got = match from.read(&mut input) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let last = got == 0;
        let mut src = &input[..got];
        loop {
            let (result, read, written, _) = decoder.decode_to_utf8(src, &mut output, last);
            to.write_all(&output[..written])?;
            src = &src[read..];
            if result == CoderResult::InputEmpty {
                break;
            }
        }
        if last {
            return to.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_the_delimiter_and_encoding_of_a_head() {
        let check = |head: &[u8], delimiter: u8, encoding: Option<&'static Encoding>| {
            assert_eq!(
                sniff(head),
                CsvDialect {
                    delimiter,
                    encoding
                },
                "{:?}",
                String::from_utf8_lossy(head)
            );
        };
        check(b"date,metric,value\n2024-01-01,a,1\n", b',', None);
        check(b"date;metric;value\r\n2024-01-01;a;1,5\r\n", b';', None);
        check(b"date\tmetric\tvalue\n2024-01-01\ta\t1\n", b'\t', None);
        check(b"date|metric|value\n", b'|', None);
        // one column, no line end: a comma
        check(b"value", b',', None);
        // a delimiter inside quotes does not count, nor a decimal comma in the rows
        check(
            b"\"Umsatz, EUR\";Datum;Stadt\n\"1.234,56\";01.02.2024;K\xc3\xb6ln\n",
            b';',
            None,
        );
        // the header has two candidates: the one the rows have as often wins
        check(
            b"date;a,b;c\n2024-01-01;1;2\n2024-01-02;3;4\n2024-01-03;5",
            b';',
            None,
        );
        check(
            b"date,a;b,c\n2024-01-01,1,2\n2024-01-02,3,4\n\n",
            b',',
            None,
        );
        // a BOM, UTF-8 and UTF-16
        check(b"\xef\xbb\xbfdate;value\n", b';', None);
        let utf16: Vec<u8> = "date\tregion\tvalue\r\n2024-01-01\tD\u{fc}sseldorf\t1\r\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let with_bom = [&[0xff, 0xfe][..], &utf16].concat();
        check(&with_bom, b'\t', Some(encoding_rs::UTF_16LE));
        // Windows-1252, and UTF-8 cut inside a character at the end of the head
        check(
            b"date;Stadt\n2024-01-01;D\xfcsseldorf\n",
            b';',
            Some(encoding_rs::WINDOWS_1252),
        );
        check(b"date,city\n2024-01-01,D\xc3", b',', None);
    }

    #[test]
    fn the_keys_decide_over_the_head_but_a_bom_over_the_encoding_key() {
        let cp1252 = Dialect {
            encoding: Some(encoding_rs::WINDOWS_1252),
            ..Dialect::default()
        };
        let head = b"date;Stadt\n2024-01-01;D\xfcsseldorf\n";
        // without the key, not UTF-8 is read as UTF-8 (and fails there)
        assert_eq!(
            read_as(&Dialect::default(), head),
            ReadAs {
                delimiter: b';',
                transcode: None
            }
        );
        assert_eq!(
            read_as(&cp1252, head),
            ReadAs {
                delimiter: b';',
                transcode: Some(encoding_rs::WINDOWS_1252)
            }
        );
        let tab = Dialect {
            delimiter: Some(b'\t'),
            ..Dialect::default()
        };
        assert_eq!(read_as(&tab, head).delimiter, b'\t');
        assert_eq!(
            read_as(&cp1252, b"\xef\xbb\xbfdate;x\n"),
            ReadAs {
                delimiter: b';',
                transcode: None
            }
        );
        assert_eq!(
            read_as(&Dialect::default(), b"\xfe\xff\x00a\x00\t\x00b\x00\n").transcode,
            Some(encoding_rs::UTF_16BE)
        );
    }

    #[test]
    fn transcodes_in_blocks_whatever_their_cuts() {
        let text = "date\tStadt\r\n2024-01-01\tD\u{fc}sseldorf \u{20ac}\r\n".repeat(40_000);
        let utf16: Vec<u8> = [0xff, 0xfe]
            .into_iter()
            .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        // a reader that hands out odd lengths cuts characters in two
        struct Odd<'a>(&'a [u8]);
        impl Read for Odd<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = buf.len().min(self.0.len()).min(7777);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut out = Vec::new();
        transcode(&mut Odd(&utf16), &mut out, encoding_rs::UTF_8).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), text);
        let (cp1252, _, _) = encoding_rs::WINDOWS_1252.encode(&text);
        let mut out = Vec::new();
        transcode(&mut Odd(&cp1252), &mut out, encoding_rs::WINDOWS_1252).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), text);
    }
}
