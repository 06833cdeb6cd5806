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

use std::path::Path;

use crate::support::rust_source::{Token, rust_files, tokens};

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

/// Whether `path` is a test file (`tests.rs`, `*_tests.rs`), exempt from the rule.
fn is_test_file(path: &Path) -> bool {
    let name = path.file_name().unwrap().to_string_lossy();
    name == "tests.rs" || name.ends_with("_tests.rs")
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
    let files: Vec<_> = rust_files(&root.join("src"))
        .into_iter()
        .filter(|f| !is_test_file(f))
        .collect();
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
