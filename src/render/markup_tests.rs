//! The rule that keeps HTML in templates: no string literal in `src/`
//! outside test code holds an HTML tag (`<p>`, `</td>`, `<a href=…`,
//! `<!DOCTYPE`), `PreEscaped("<…")` included. Every piece of HTML is a maud
//! template, so what a person or a config wrote is escaped by construction;
//! a tag in a string is how a hand-built, hand-escaped page starts again.
//!
//! Test code is exempt: items under `#[cfg(test)]` and files named `tests.rs`
//! or `*_tests.rs` (they assert on HTML and feed names with markup in them).
//! The scan reads Rust's literals properly (comments, raw strings, char
//! literals, lifetimes), so a `Vec<String>` in a doc comment or `"a < b"` in
//! a message is not a tag; only the names of HTML and SVG elements are.

use std::path::{Path, PathBuf};

/// The elements of HTML and of the SVG callout draws: `<` and one of these
/// (or `/` and one of these) followed by a space, `>` or `/` is a tag.
const ELEMENTS: &[&str] = &[
    "a",
    "abbr",
    "address",
    "area",
    "article",
    "aside",
    "audio",
    "b",
    "base",
    "bdi",
    "bdo",
    "blockquote",
    "body",
    "br",
    "button",
    "canvas",
    "caption",
    "center",
    "circle",
    "cite",
    "code",
    "col",
    "colgroup",
    "dd",
    "defs",
    "del",
    "details",
    "dfn",
    "dialog",
    "div",
    "dl",
    "dt",
    "ellipse",
    "em",
    "embed",
    "fieldset",
    "figcaption",
    "figure",
    "font",
    "footer",
    "form",
    "g",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "head",
    "header",
    "hr",
    "html",
    "i",
    "iframe",
    "img",
    "input",
    "ins",
    "kbd",
    "label",
    "legend",
    "li",
    "line",
    "link",
    "main",
    "mark",
    "meta",
    "nav",
    "noscript",
    "ol",
    "optgroup",
    "option",
    "p",
    "path",
    "picture",
    "polygon",
    "polyline",
    "pre",
    "q",
    "rect",
    "s",
    "samp",
    "script",
    "section",
    "select",
    "small",
    "span",
    "strong",
    "style",
    "sub",
    "summary",
    "sup",
    "svg",
    "table",
    "tbody",
    "td",
    "template",
    "text",
    "textarea",
    "tfoot",
    "th",
    "thead",
    "title",
    "tr",
    "tspan",
    "u",
    "ul",
    "video",
    "wbr",
];

/// SVG shapes, whose tags always carry attributes (`<path d="…"`): a bare
/// `<path>` or `<text>` is a placeholder in a message, not markup.
const SHAPES: &[&str] = &[
    "circle", "defs", "ellipse", "g", "line", "path", "polygon", "polyline", "rect", "text",
    "tspan",
];

/// A string literal: where it starts and what is between its quotes.
#[derive(Debug)]
struct Literal {
    line: usize,
    text: String,
}

/// The tag a literal holds, if any: `<p>`, `</td>`, `<a href`, `<!DOCTYPE`.
fn tag_in(text: &str) -> Option<&str> {
    let lower = text.to_ascii_lowercase();
    for (at, _) in lower.match_indices('<') {
        let rest = &lower[at + 1..];
        if rest.starts_with("!doctype") {
            return Some(&text[at..(at + 9).min(text.len())]);
        }
        let name_start = usize::from(rest.starts_with('/'));
        let name: &str = rest[name_start..]
            .split(|c: char| !c.is_ascii_alphanumeric())
            .next()
            .unwrap_or("");
        let after = rest[name_start + name.len()..].chars().next();
        let ends = matches!(after, Some(c) if c.is_whitespace() || c == '>' || c == '/')
            || (after.is_none() && name_start == 0 && !name.is_empty());
        let placeholder = name_start == 0 && after == Some('>') && SHAPES.contains(&name);
        if ends && ELEMENTS.contains(&name) && !placeholder {
            let end = (at + 1 + name_start + name.len() + 1).min(text.len());
            return Some(&text[at..end]);
        }
    }
    None
}

/// A token of Rust source, as far as the rule needs: literals, the
/// punctuation that delimits items and attributes, and words.
#[derive(Debug, PartialEq)]
enum Token {
    Str(usize, String),
    Punct(char),
    Word(String),
}

/// Split Rust source into [`Token`]s, skipping comments, char literals and
/// lifetimes; raw and byte strings are literals like any other.
fn tokens(src: &str) -> Vec<Token> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    let at = |k: usize| c.get(k).copied().unwrap_or('\0');
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            loop {
                if at(i) == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if at(i) == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else if i >= c.len() {
                    break;
                } else {
                    if c[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if ch == '"' {
            let start = line;
            let mut s = String::new();
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    s.push(c[i]);
                    i += 1;
                }
                if at(i) == '\n' {
                    line += 1;
                }
                s.push(at(i));
                i += 1;
            }
            i += 1;
            out.push(Token::Str(start, s));
        } else if ch == '\'' {
            if at(i + 1) == '\\' {
                // an escaped char literal: '\'', '\n', '\u{201c}'
                i += 3;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                // a lifetime or a label
                i += 1;
            }
        } else if ch.is_alphanumeric() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            // raw strings: r"…", r#"…"#, br"…", and byte/C strings: b"…", c"…"
            let raw = matches!(word.as_str(), "r" | "br" | "cr") && (at(i) == '"' || at(i) == '#');
            if raw {
                let mut hashes = 0;
                while at(i) == '#' {
                    hashes += 1;
                    i += 1;
                }
                if at(i) == '"' {
                    let start = line;
                    i += 1;
                    let mut s = String::new();
                    loop {
                        if i >= c.len() {
                            break;
                        }
                        if c[i] == '"' && (1..=hashes).all(|k| at(i + k) == '#') {
                            i += 1 + hashes;
                            break;
                        }
                        if c[i] == '\n' {
                            line += 1;
                        }
                        s.push(c[i]);
                        i += 1;
                    }
                    out.push(Token::Str(start, s));
                    continue;
                }
            }
            if !(matches!(word.as_str(), "b" | "c") && at(i) == '"') {
                out.push(Token::Word(word));
            }
        } else {
            if !ch.is_whitespace() {
                out.push(Token::Punct(ch));
            }
            i += 1;
        }
    }
    out
}

/// The string literals of `src` outside test code: the item after each
/// `#[cfg(test)]` (a module, function or `use`) is left out whole.
fn literals_outside_tests(src: &str) -> Vec<Literal> {
    let t = tokens(src);
    let cfg_test = [
        Token::Punct('#'),
        Token::Punct('['),
        Token::Word("cfg".into()),
        Token::Punct('('),
        Token::Word("test".into()),
        Token::Punct(')'),
        Token::Punct(']'),
    ];
    let mut out = Vec::new();
    let mut i = 0;
    while i < t.len() {
        if t[i..].starts_with(&cfg_test) {
            i += cfg_test.len();
            // to the item's body or its end, past any further attributes
            let mut depth = 0i32;
            while i < t.len() {
                match t[i] {
                    Token::Punct('(' | '[') => depth += 1,
                    Token::Punct(')' | ']') => depth -= 1,
                    Token::Punct(';') if depth == 0 => break,
                    Token::Punct('{') if depth == 0 => {
                        let mut braces = 0;
                        while i < t.len() {
                            match t[i] {
                                Token::Punct('{') => braces += 1,
                                Token::Punct('}') => {
                                    braces -= 1;
                                    if braces == 0 {
                                        break;
                                    }
                                }
                                _ => {}
                            }
                            i += 1;
                        }
                        break;
                    }
                    _ => {}
                }
                i += 1;
            }
        } else if let Token::Str(line, text) = &t[i] {
            out.push(Literal {
                line: *line,
                text: text.clone(),
            });
        }
        i += 1;
    }
    out
}

/// Every `.rs` file under `dir`, test files (`tests.rs`, `*_tests.rs`) left out.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if p.is_dir() {
            sources(&p, out);
        } else if name.ends_with(".rs") && name != "tests.rs" && !name.ends_with("_tests.rs") {
            out.push(p);
        }
    }
}

/// Each `path:line: literal (tag)` that breaks the rule in `src`.
fn offences(path: &str, src: &str) -> Vec<String> {
    literals_outside_tests(src)
        .into_iter()
        .filter_map(|l| {
            tag_in(&l.text).map(|tag| format!("{path}:{}: {:?} ({tag})", l.line, l.text))
        })
        .collect()
}

#[test]
fn no_string_literal_outside_tests_holds_an_html_tag() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    sources(&root.join("src"), &mut files);
    assert!(files.len() > 50, "{files:?}");
    let mut found = Vec::new();
    for f in &files {
        let src = std::fs::read_to_string(f).unwrap();
        let rel = f.strip_prefix(root).unwrap().display().to_string();
        found.extend(offences(&rel, &src));
    }
    assert!(
        found.is_empty(),
        "HTML belongs in maud templates (html! {{ … }}), not in strings:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_scan_finds_tags_and_only_tags() {
    let src = r####"
//! A doc comment may say `<p>` and `Vec<String>`.
/* a block comment with <table> /* nested <td> */ still a comment </table> */
fn page() -> String {
    let a = 'a';
    let quote = '"';
    let esc = '\'';
    let b = b"<p>";
    let r = r#"<td align="left">"#;
    let ok = ["a < b", "Vec<String>", "<stdout>", "x <- y", "<=", "use <path>?"];
    format!("<p>{}</p>", a)
}
fn more<'a>(x: &'a str) -> &'a str { "<!DOCTYPE html>" }
fn esc() -> &'static str { "\"</ul>" }
fn pre() -> maud::PreEscaped<&'static str> { maud::PreEscaped("<br>") }
fn svg() -> &'static str { "<path d=\"M0 0\"/>" }
#[cfg(test)]
mod tests {
    const FIXTURE: &str = "<b>rev</b>";
    fn inner() { let s = "{"; let t = "<i>"; }
}
#[cfg(test)]
fn helper() -> &'static str { "<em>x</em>" }
fn after() -> &'static str { "<li>" }
"####;
    let found: Vec<String> = literals_outside_tests(src)
        .iter()
        .filter_map(|l| tag_in(&l.text).map(|tag| format!("{}: {tag}", l.line)))
        .collect();
    let want = [
        "8: <p>",
        "9: <td ",
        "11: <p>",
        "13: <!DOCTYPE",
        "14: </ul>",
        "15: <br>",
        "16: <path ",
        "24: <li>",
    ];
    assert_eq!(found, want);
}
