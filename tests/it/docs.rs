//! ARCHITECTURE.md stays a map: short enough to read in one sitting (the
//! measurements and long-form notes live in docs/), and true: every path it
//! names exists, so a moved file is a failing test rather than a stale map.

use std::path::Path;

/// The most lines ARCHITECTURE.md may have (issue 23: a map, not a log).
const MAX_LINES: usize = 250;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn architecture() -> String {
    std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap()
}

#[test]
fn architecture_md_is_a_map_of_at_most_250_lines() {
    let lines = architecture().lines().count();
    assert!(
        lines <= MAX_LINES,
        "ARCHITECTURE.md has {lines} lines (at most {MAX_LINES}): move measurements to \
         docs/perf.md and long-form notes to docs/design.md"
    );
}

/// Paths in backticks that start at the project root (`src/…`, `tests/…`).
fn named_paths(text: &str) -> Vec<String> {
    const ROOTS: [&str; 5] = ["src/", "tests/", "benches/", "docs/", "config/"];
    let mut out = Vec::new();
    for (i, part) in text.split('`').enumerate() {
        // odd parts are inside backticks
        if i % 2 == 1 && ROOTS.iter().any(|r| part.starts_with(r)) && !part.contains(' ') {
            out.push(part.trim_end_matches(['/', ',', '.']).to_string());
        }
    }
    // markdown links to docs: (docs/x.md)
    for (at, _) in text.match_indices("](") {
        let rest = &text[at + 2..];
        if let Some(end) = rest.find(')') {
            let target = &rest[..end];
            if !target.contains("://") {
                out.push(target.to_string());
            }
        }
    }
    out
}

#[test]
fn every_path_architecture_md_names_exists() {
    let text = architecture();
    let paths = named_paths(&text);
    assert!(paths.len() > 20, "the map names files: {paths:?}");
    let missing: Vec<&String> = paths.iter().filter(|p| !root().join(p).exists()).collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names paths that do not exist (moved? update the map): {missing:?}"
    );
}

#[test]
fn the_path_reader_finds_code_paths_and_links() {
    let found = named_paths("see `src/a.rs` and `tests/it/`, not `foo.rs`; [x](docs/y.md)");
    assert_eq!(found, ["src/a.rs", "tests/it", "docs/y.md"]);
}
