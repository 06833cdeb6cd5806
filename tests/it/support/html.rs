//! A small HTML parser for tests: elements with attributes and text, void
//! elements closed implicitly, entities decoded. Enough for pages callout
//! writes (maud output), so tests can check structure instead of substrings.

/// An element.
#[derive(Debug, Default)]
pub struct Node {
    /// Tag name, lower case ("" for the document).
    pub tag: String,
    /// Attributes, decoded.
    pub attrs: Vec<(String, String)>,
    /// Children in order.
    pub children: Vec<Child>,
}

/// An element's child.
#[derive(Debug)]
pub enum Child {
    /// A nested element.
    El(Node),
    /// Text, decoded.
    Text(String),
}

const VOID: [&str; 8] = ["meta", "link", "br", "img", "input", "hr", "col", "source"];

/// Decode the entities maud writes (and numeric ones).
pub fn decode(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';') else { break };
        let ent = &rest[1..end];
        let c = match ent {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn parse_attrs(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] as char).is_whitespace() {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i] != b'=' && !(b[i] as char).is_whitespace() {
            i += 1;
        }
        if start == i {
            i += 1;
            continue;
        }
        let name = s[start..i].to_ascii_lowercase();
        if i < b.len() && b[i] == b'=' {
            i += 1;
            let (v, next) = if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                let q = b[i];
                let end = s[i + 1..].find(q as char).map_or(b.len(), |e| i + 1 + e);
                (&s[i + 1..end], end + 1)
            } else {
                let end = s[i..].find(char::is_whitespace).map_or(b.len(), |e| i + e);
                (&s[i..end], end)
            };
            out.push((name, decode(v)));
            i = next;
        } else {
            out.push((name, String::new()));
        }
    }
    out
}

/// Parse a page into its document node. Panics on a stray end tag.
pub fn parse(s: &str) -> Node {
    let mut stack = vec![Node::default()];
    let mut rest = s;
    while !rest.is_empty() {
        let Some(i) = rest.find('<') else {
            stack
                .last_mut()
                .unwrap()
                .children
                .push(Child::Text(decode(rest)));
            break;
        };
        if i > 0 {
            stack
                .last_mut()
                .unwrap()
                .children
                .push(Child::Text(decode(&rest[..i])));
        }
        rest = &rest[i..];
        let end = rest.find('>').expect("an unclosed tag");
        let inner = &rest[1..end];
        rest = &rest[end + 1..];
        if inner.starts_with('!') {
            continue;
        }
        if let Some(name) = inner.strip_prefix('/') {
            let name = name.trim().to_ascii_lowercase();
            let node = stack.pop().unwrap();
            assert_eq!(node.tag, name, "end tag </{name}> closes <{}>", node.tag);
            stack.last_mut().unwrap().children.push(Child::El(node));
            continue;
        }
        let self_closing = inner.ends_with('/');
        let inner = inner.trim_end_matches('/');
        let (tag, attrs) = inner.split_once(char::is_whitespace).unwrap_or((inner, ""));
        let node = Node {
            tag: tag.to_ascii_lowercase(),
            attrs: parse_attrs(attrs),
            children: Vec::new(),
        };
        if self_closing || VOID.contains(&node.tag.as_str()) {
            stack.last_mut().unwrap().children.push(Child::El(node));
        } else {
            stack.push(node);
        }
    }
    assert_eq!(stack.len(), 1, "unclosed <{}>", stack.last().unwrap().tag);
    stack.pop().unwrap()
}

impl Node {
    /// An attribute's value.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether `class` lists `c`.
    pub fn has_class(&self, c: &str) -> bool {
        self.attr("class")
            .is_some_and(|v| v.split_whitespace().any(|x| x == c))
    }

    /// All text inside, concatenated.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for c in &self.children {
            match c {
                Child::El(n) => out.push_str(&n.text()),
                Child::Text(t) => out.push_str(t),
            }
        }
        out
    }

    /// Every element inside (depth first) that `pred` accepts.
    pub fn find_all<'a>(&'a self, pred: &dyn Fn(&Node) -> bool) -> Vec<&'a Node> {
        let mut out = Vec::new();
        for c in &self.children {
            if let Child::El(n) = c {
                if pred(n) {
                    out.push(n);
                }
                out.extend(n.find_all(pred));
            }
        }
        out
    }

    /// The first element inside that `pred` accepts.
    pub fn find<'a>(&'a self, pred: &dyn Fn(&Node) -> bool) -> Option<&'a Node> {
        self.find_all(pred).into_iter().next()
    }
}
