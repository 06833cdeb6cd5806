//! The layers test: "data flows down, no import circles" checked, not just
//! stated. Every `crate::` path in src/ (in `use` lines and inline, test code
//! included, comments left out) is read as an edge from the top-level module of
//! its file to the top-level module it names; an edge missing from [`ALLOWED`]
//! fails, and so does a circle in the table itself, so allowing an edge that
//! closes one is refused too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What each top-level module of src/ may import, lowest layers first. A module
/// missing here may import nothing of the crate. `main.rs` is a separate binary
/// (it imports `callout::`), so it is not a node.
const ALLOWED: &[(&str, &[&str])] = &[
    // Plain data and the leaves every layer may use.
    ("model", &[]),
    ("fmt", &[]),
    ("clock", &[]),
    ("text", &["model"]),
    ("batch", &["model"]),
    ("config", &["model", "text"]),
    ("links", &["config", "model"]),
    ("review", &["config", "model"]),
    ("schedule", &["clock", "config", "review"]),
    // Reading exports, detection, the store: side by side, never each other
    // (the store only keeps what the others produce).
    ("source", &["batch", "config", "fmt", "model", "text"]),
    ("detect", &["batch", "config", "model"]),
    ("restated", &["batch", "model"]),
    ("store", &["batch", "config", "model"]),
    ("history", &["batch", "model", "source", "store"]),
    ("output", &["fmt", "model"]),
    // One evaluation, then words, the pre-read and the alerts built on it.
    (
        "pipeline",
        &[
            "batch", "config", "detect", "fmt", "history", "model", "output", "restated", "source",
            "store",
        ],
    ),
    (
        "render",
        &["config", "fmt", "history", "links", "model", "review"],
    ),
    (
        "report",
        &[
            "batch", "config", "fmt", "model", "pipeline", "render", "review", "source", "store",
        ],
    ),
    (
        "alert",
        &[
            "config", "fmt", "history", "links", "model", "render", "report", "review", "store",
        ],
    ),
    // Commands and servers.
    (
        "app",
        &[
            "alert", "clock", "config", "history", "model", "output", "pipeline", "review", "store",
        ],
    ),
    (
        "backfill",
        &["config", "model", "output", "pipeline", "store"],
    ),
    (
        "web",
        &[
            "clock", "config", "fmt", "links", "model", "render", "report", "review", "schedule",
            "store",
        ],
    ),
    ("daemon", &["app", "clock", "config", "schedule", "web"]),
    ("demo", &["app", "clock", "config", "report"]),
    (
        "init",
        &["config", "model", "review", "schedule", "source", "text"],
    ),
    // The command line on top: the only layer that prints or knows clap.
    (
        "cli",
        &[
            "app", "backfill", "clock", "config", "daemon", "demo", "init", "model", "output",
            "pipeline", "report", "source", "web",
        ],
    ),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file without its comments (line comments, doc comments and
/// block comments), string contents kept out too so a message that mentions
/// `crate::x` is not an import.
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' && b.get(i + 2) == Some(&b'\'') {
            // A char literal such as '"' (lifetimes have no closing quote).
            i += 3;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

/// The top-level modules named by each `crate::` path of `code`: `crate::a::b`
/// names `a`; `crate::{a, b::c}` names `a` and `b`.
fn named_modules(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let word = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (at, _) in code.match_indices("crate::") {
        // `callout::crate` does not exist; skip `$crate::` in macros.
        if code[..at].ends_with('$') {
            continue;
        }
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level items of the group: split on commas at brace depth 0.
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.insert(word(item.trim()));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 {
                    item.push(c);
                }
            }
            found.insert(word(item.trim()));
        } else {
            found.insert(word(rest));
        }
    }
    found.retain(|m| !m.is_empty() && m != "self");
    found
}

/// The module graph of src/: top-level module → the modules it names, with
/// one file that names each (for the message).
fn graph(src: &Path) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut g: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "main" || module == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        for to in named_modules(&code_only(&text)) {
            if to != module {
                g.entry(module.clone())
                    .or_default()
                    .entry(to)
                    .or_insert_with(|| rel.display().to_string());
            }
        }
    }
    g
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn every_import_is_an_allowed_edge() {
    let allowed: BTreeMap<&str, BTreeSet<&str>> = ALLOWED
        .iter()
        .map(|(m, to)| (*m, to.iter().copied().collect()))
        .collect();
    let mut wrong = Vec::new();
    for (from, tos) in graph(&src()) {
        for (to, file) in tos {
            let ok = allowed
                .get(from.as_str())
                .is_some_and(|a| a.contains(to.as_str()));
            if !ok {
                wrong.push(format!("{from} -> {to} (src/{file})"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers (tests/it/layers.rs ALLOWED; move shared data down \
         instead of allowing an edge up):\n  {}",
        wrong.join("\n  ")
    );
}

#[test]
fn the_allowed_table_has_no_circle_and_names_real_modules() {
    // Every module of the table is listed before the modules that use it, so
    // an edge to a later entry (or to itself) is a circle in the making.
    let order: Vec<&str> = ALLOWED.iter().map(|(m, _)| *m).collect();
    for (i, (m, to)) in ALLOWED.iter().enumerate() {
        for t in *to {
            let at = order.iter().position(|o| o == t);
            assert!(
                at.is_some_and(|at| at < i),
                "`{m}` may import `{t}`, which is not listed above it: a circle, or a module \
                 the table does not know"
            );
        }
    }
    let on_disk: BTreeSet<String> = std::fs::read_dir(src())
        .unwrap()
        .map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().to_string();
            name.trim_end_matches(".rs").to_string()
        })
        .filter(|m| m != "main" && m != "lib")
        .collect();
    let listed: BTreeSet<String> = order.iter().map(|m| m.to_string()).collect();
    assert_eq!(
        on_disk, listed,
        "the table lists exactly the modules of src/"
    );
}

#[test]
fn the_reader_finds_inline_and_grouped_paths() {
    // The reader itself: a grouped use, an inline path, and a comment that
    // must not count.
    let code = code_only(
        "use crate::{model::{A, B}, fmt};\nfn f() { crate::source::load(); }\n// crate::web::x\n\
         let s = \"crate::alert\";",
    );
    let found: Vec<String> = named_modules(&code).into_iter().collect();
    assert_eq!(found, ["fmt", "model", "source"]);
}
