//! Rust source read as the source-reading tests need it (the layers test,
//! the no-HTML-in-strings test): the `.rs` files of a tree, and one lexer
//! that knows comments, string literals (raw, byte, C), char literals and
//! lifetimes, so a path in a comment or a tag in a message is never code.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, sorted.
pub fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out
}

/// A token of Rust source, as far as the source-reading tests need:
/// literals, punctuation and words.
#[derive(Debug, PartialEq)]
pub enum Token {
    /// A string literal (raw, byte and C strings too): its line and text.
    Str(usize, String),
    /// One punctuation character.
    Punct(char),
    /// An identifier or a keyword (or a number).
    Word(String),
}

/// Split Rust source into [`Token`]s, skipping comments, char literals and
/// lifetimes; raw and byte strings are literals like any other.
pub fn tokens(src: &str) -> Vec<Token> {
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
