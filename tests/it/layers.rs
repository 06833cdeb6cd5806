//! The layers test: "data flows down, no import circles" checked, not just
//! stated. Every `crate::` path in src/ (in `use` lines and inline, test code
//! included, comments left out) is read as an edge from the top-level module of
//! its file to the top-level module it names; an edge missing from [`ALLOWED`]
//! fails, and so does a circle in the table itself, so allowing an edge that
//! closes one is refused too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::support::rust_source::{Token, rust_files, tokens};

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
    ("rollup", &["batch", "config", "model"]),
    ("contribution", &["batch", "model"]),
    ("derived", &["batch", "config", "fmt", "model"]),
    ("restated", &["batch", "model"]),
    ("store", &["batch", "config", "model"]),
    ("history", &["batch", "model", "source", "store"]),
    ("output", &["fmt", "model"]),
    // One evaluation, then words, the pre-read and the alerts built on it.
    (
        "pipeline",
        &[
            "batch",
            "config",
            "contribution",
            "derived",
            "detect",
            "fmt",
            "history",
            "model",
            "output",
            "restated",
            "rollup",
            "source",
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

/// The top-level modules named by each `crate::` path of `src` (comments and
/// string literals are not code): `crate::a::b` names `a`; `crate::{a,
/// b::c}` names `a` and `b`; `$crate::` in a macro names nothing.
fn named_modules(src: &str) -> BTreeSet<String> {
    let t = tokens(src);
    let word = |k: usize| match t.get(k) {
        Some(Token::Word(w)) => Some(w.clone()),
        _ => None,
    };
    let punct = |k: usize, c: char| t.get(k) == Some(&Token::Punct(c));
    let mut found = BTreeSet::new();
    for i in 0..t.len() {
        let is_path = word(i).as_deref() == Some("crate")
            && punct(i + 1, ':')
            && punct(i + 2, ':')
            && !(i > 0 && punct(i - 1, '$'));
        if !is_path {
            continue;
        }
        if punct(i + 3, '{') {
            // the first word of each item of the group, at its own depth
            let (mut depth, mut first) = (0, true);
            for tok in t.iter().skip(i + 4) {
                match tok {
                    Token::Punct('{') => depth += 1,
                    Token::Punct('}') if depth == 0 => break,
                    Token::Punct('}') => depth -= 1,
                    Token::Punct(',') if depth == 0 => first = true,
                    Token::Word(w) if depth == 0 && first => {
                        found.insert(w.clone());
                        first = false;
                    }
                    _ => {}
                }
            }
        } else if let Some(m) = word(i + 3) {
            found.insert(m);
        }
    }
    found.remove("self");
    found
}

/// The module graph of src/: top-level module → the modules it names, with
/// one file that names each (for the message).
fn graph(src: &Path) -> BTreeMap<String, BTreeMap<String, String>> {
    let files = rust_files(src);
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
        for to in named_modules(&text) {
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
    let code = "use crate::{model::{A, B}, fmt};\nfn f() { crate::source::load(); }\n// crate::web::x\n\
         let s = \"crate::alert\";";
    let found: Vec<String> = named_modules(code).into_iter().collect();
    assert_eq!(found, ["fmt", "model", "source"]);
}
