//! How a CSV export writes its bytes: the text encoding (a BOM, UTF-16,
//! a legacy code page) and the field delimiter, found in the file's head
//! or given by the source's `encoding` and `delimiter`.

use encoding_rs::Encoding;

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
/// the one of `,` `;` tab `|` found most often outside quotes on the header
/// line (`,` when none is).
pub fn sniff(head: &[u8]) -> CsvDialect {
    let (encoding, text) = match Encoding::for_bom(head) {
        Some((enc, bom)) if enc == encoding_rs::UTF_8 => (None, decode(&head[bom..], None)),
        Some((enc, bom)) => (Some(enc), decode(&head[bom..], Some(enc))),
        None if std::str::from_utf8(head).is_ok() || utf8_cut(head) => (None, decode(head, None)),
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

/// The delimiter of a header line: the most frequent of `,` `;` tab `|`
/// outside quotes on the first line, `,` when none is there.
pub fn header_delimiter(text: &str) -> u8 {
    let mut counts = [0usize; 4];
    let candidates = [b',', b';', b'\t', b'|'];
    let mut quoted = false;
    for b in text.bytes() {
        match b {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => break,
            b => {
                if !quoted && let Some(i) = candidates.iter().position(|&c| c == b) {
                    counts[i] += 1;
                }
            }
        }
    }
    let best = (0..4)
        .max_by_key(|&i| (counts[i], std::cmp::Reverse(i)))
        .unwrap_or(0);
    if counts[best] == 0 {
        b','
    } else {
        candidates[best]
    }
}
