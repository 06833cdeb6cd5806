//! `${VAR}` expansion in the config text, before it is parsed: in values
//! only, escaped for the string it lands in, and refused where it cannot go.

use super::*;

impl Compiler {
    /// Replace `${VAR}` in values, never in comments. In a basic string the value
    /// is escaped for TOML; in a literal string (`'…'`) it goes in as it is,
    /// because TOML reads no escapes there.
    pub(super) fn substitute_env(
        &mut self,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> String {
        #[derive(Clone, Copy, PartialEq)]
        enum At {
            Bare,
            Comment,
            Basic,
            MultiBasic,
            Literal,
            MultiLiteral,
        }
        let mut out = String::with_capacity(text.len());
        let mut at = At::Bare;
        let mut line = 1;
        let mut rest = text;
        while let Some(ch) = rest.chars().next() {
            let starts = |p: &str| rest.starts_with(p);
            // how many bytes to copy as they are, and the state after them
            let (take, next) = match at {
                At::Bare if ch == '#' => (1, At::Comment),
                At::Bare if starts("\"\"\"") => (3, At::MultiBasic),
                At::Bare if ch == '"' => (1, At::Basic),
                At::Bare if starts("'''") => (3, At::MultiLiteral),
                At::Bare if ch == '\'' => (1, At::Literal),
                At::Comment if ch == '\n' => (1, At::Bare),
                At::Basic | At::MultiBasic if ch == '\\' => {
                    (1 + rest[1..].chars().next().map_or(0, char::len_utf8), at)
                }
                At::Basic if ch == '"' || ch == '\n' => (1, At::Bare),
                At::MultiBasic if starts("\"\"\"") => (3, At::Bare),
                At::Literal if ch == '\'' || ch == '\n' => (1, At::Bare),
                At::MultiLiteral if starts("'''") => (3, At::Bare),
                _ if at != At::Comment && starts("${") => {
                    if let Some(j) = rest.find('}').filter(|j| !rest[..*j].contains('\n')) {
                        let name = &rest[2..j];
                        match env(name) {
                            Some(v) if matches!(at, At::Basic | At::MultiBasic) => {
                                out.push_str(&escape_basic(&v));
                            }
                            // TOML has no way to write a line break there
                            Some(v) if at != At::MultiLiteral && v.contains(['\n', '\r']) => {
                                let place = if at == At::Literal {
                                    "a 'literal' string"
                                } else {
                                    "a value outside quotes"
                                };
                                self.problem(
                                    &format!("line {line}"),
                                    format!("environment variable `{name}` holds a line break, which {place} cannot hold; write \"${{{name}}}\" (in a \"basic\" string it is escaped)"),
                                );
                            }
                            Some(v) => out.push_str(&v),
                            None => self.problem(
                                &format!("line {line}"),
                                format!("environment variable `{name}` is not set (referenced as ${{{name}}})"),
                            ),
                        }
                        rest = &rest[j + 1..];
                        continue;
                    }
                    (2, at)
                }
                _ => (ch.len_utf8(), at),
            };
            let take = take.min(rest.len());
            line += rest[..take].matches('\n').count();
            out.push_str(&rest[..take]);
            rest = &rest[take..];
            at = next;
        }
        out
    }
}

/// `v` escaped for a TOML basic string (`"…"` or `"""…"""`): backslash, quote
/// and every control character but tab, so a line break stays in the value.
pub(super) fn escape_basic(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push('\t'),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}
