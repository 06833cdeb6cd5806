//! The Dockerfile cannot be built in CI here (no container registry is
//! reachable for the base images; see README "Container"), so this checks that
//! its steps agree with the project: the build is `cargo build --release
//! --locked` (which `.ci/run` runs too, so a stale Cargo.lock fails CI), the
//! binary copied is the one that command makes, and the runtime user and
//! volume are the ones the README promises.
#![allow(clippy::unwrap_used)]

use crate::support::common;
use common::root;

/// One instruction: keyword (upper case), its text, and the stage it is in.
#[derive(Debug)]
struct Step {
    stage: usize,
    keyword: String,
    args: String,
}

/// Parse a Dockerfile: comments dropped, `\` continuations joined, one step
/// per instruction, stages counted by `FROM`.
fn parse(text: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut stage = 0;
    let mut current = String::new();
    for line in text.lines() {
        let t = line.trim();
        if current.is_empty() && (t.is_empty() || t.starts_with('#')) {
            continue;
        }
        if let Some(body) = t.strip_suffix('\\') {
            current.push_str(body);
            current.push(' ');
            continue;
        }
        current.push_str(t);
        let (keyword, args) = current.split_once(char::is_whitespace).unwrap();
        let keyword = keyword.to_ascii_uppercase();
        if keyword == "FROM" {
            stage += 1;
        }
        steps.push(Step {
            stage,
            keyword,
            args: args.split_whitespace().collect::<Vec<_>>().join(" "),
        });
        current.clear();
    }
    assert!(current.is_empty(), "unfinished instruction: {current}");
    steps
}

fn find<'a>(steps: &'a [Step], stage: usize, keyword: &str) -> Vec<&'a Step> {
    steps
        .iter()
        .filter(|s| s.stage == stage && s.keyword == keyword)
        .collect()
}

#[test]
fn dockerfile_builds_and_ships_what_cargo_build_locked_makes() {
    let text = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let steps = parse(&text);
    let froms = find(&steps, 1, "FROM");
    assert_eq!(froms.len(), 1);
    assert!(
        froms[0].args.ends_with(" AS build"),
        "first stage is the build stage: {froms:?}"
    );
    assert_eq!(
        steps.iter().filter(|s| s.keyword == "FROM").count(),
        2,
        "a build stage and a runtime stage"
    );

    // Build stage: the whole project at /src, built exactly as `.ci/run` builds it.
    let workdir = find(&steps, 1, "WORKDIR");
    assert_eq!(workdir.last().unwrap().args, "/src");
    assert!(
        find(&steps, 1, "COPY").iter().any(|s| s.args == ". ."),
        "the project is copied into the build stage"
    );
    assert!(
        !steps.iter().any(|s| s.args.contains("CARGO_TARGET_DIR")),
        "the target directory must stay /src/target"
    );
    let builds: Vec<&Step> = find(&steps, 1, "RUN")
        .into_iter()
        .filter(|s| s.args.contains("cargo build"))
        .collect();
    assert_eq!(builds.len(), 1, "{builds:?}");
    let build = &builds[0].args;
    assert!(
        build.contains("cargo build --release --locked &&")
            || build.ends_with("cargo build --release --locked"),
        "the build command is `cargo build --release --locked`: {build}"
    );
    // The binary `cargo build --release` makes is target/release/<package name>.
    let manifest: toml::Value =
        toml::from_str(&std::fs::read_to_string(root().join("Cargo.toml")).unwrap()).unwrap();
    let name = manifest["package"]["name"].as_str().unwrap();
    assert_eq!(manifest["package"]["default-run"].as_str(), Some(name));
    let made = format!("target/release/{name}");
    let copied_out = build
        .split("&&")
        .map(str::trim)
        .find(|c| c.contains(&made))
        .unwrap_or_else(|| panic!("nothing copies {made} out of the build: {build}"));
    let out_path = copied_out.split_whitespace().last().unwrap();
    assert!(
        build.contains("--mount=type=cache,target=/src/target"),
        "{made} is read from the same (cached) target directory: {build}"
    );

    // The build context keeps what `cargo build --locked` reads (a declared
    // bench target must exist even for a plain build).
    let ignored = std::fs::read_to_string(root().join(".dockerignore")).unwrap_or_default();
    for needed in ["Cargo.toml", "Cargo.lock", "src", "benches"] {
        assert!(
            !ignored
                .lines()
                .map(|l| l.trim().trim_end_matches('/'))
                .any(|l| l == needed || l == "*"),
            ".dockerignore leaves out {needed}, which the build needs"
        );
    }

    // Runtime stage: that file, on PATH under the entry point's name.
    let copies = find(&steps, 2, "COPY");
    assert_eq!(copies.len(), 1, "{copies:?}");
    let expected_copy = format!("--from=build {out_path} /usr/local/bin/{name}");
    assert_eq!(copies[0].args, expected_copy);
    assert_eq!(
        find(&steps, 2, "ENTRYPOINT")[0].args,
        format!("[\"{name}\"]")
    );

    // The user and the volume the README documents.
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert_eq!(find(&steps, 2, "USER")[0].args, "10001:10001");
    let setup = &find(&steps, 2, "RUN")[0].args;
    assert!(
        setup.contains("--uid 10001") && setup.contains("--gid 10001"),
        "{setup}"
    );
    assert!(readme.contains("uid 10001"), "README names the uid");
    assert_eq!(find(&steps, 2, "VOLUME")[0].args, "[\"/var/lib/callout\"]");
    assert!(
        setup.contains("install -d -o callout -g callout -m 0750 /var/lib/callout"),
        "the volume is owned by the runtime user: {setup}"
    );
    assert!(
        readme.contains("volume `/var/lib/callout`"),
        "README names the volume"
    );
}

#[test]
fn the_parser_joins_continuations_and_counts_stages() {
    let steps = parse("# c\nFROM a AS build\nRUN x \\\n  && y\n\nFROM b\n# inside\nUSER 1:1\n");
    let got: Vec<(usize, &str, &str)> = steps
        .iter()
        .map(|s| (s.stage, s.keyword.as_str(), s.args.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (1, "FROM", "a AS build"),
            (1, "RUN", "x && y"),
            (2, "FROM", "b"),
            (2, "USER", "1:1"),
        ]
    );
}
