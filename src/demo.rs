//! `callout demo`: a newcomer's first run, on bundled data, with nothing else
//! needed (no network, no mail server, no checkout beside the binary).
//!
//! The demo exports (`fixtures/demo/`, made by `fixtures/make_demo.py`) and
//! the example config are compiled into the binary, so an installed binary
//! works from any directory. They are written into the demo folder with a
//! config pointing at them, a throwaway store beside it, and `[web]` on
//! 127.0.0.1 so the digests' links open on a local `callout serve`. The
//! history is replayed as of [`AT`] ([`crate::app::replay_history`]: what a
//! store that had run all along would send then) and the digests are written
//! as `.eml` and `.html`, never sent.
//!
//! Must not: send mail, open a network connection, or write outside the
//! demo folder (a folder holding anything but an earlier demo is refused).

use std::path::{Path, PathBuf};

use crate::app::{self, Announce};
use crate::clock::At;
use crate::report;

/// The moment the demo runs as: Monday morning after the data's last day
/// (Sunday 2025-03-09), before the Wednesday review, read in the review's
/// timezone.
pub const AT: &str = "2025-03-10 08:00";

/// Where the demo's web server listens, and what its links start with.
pub const LISTEN: &str = "127.0.0.1:8080";

/// The bundled exports: (file name in `data/`, content).
const EXPORTS: [(&str, &str); 3] = [
    (
        "shop_daily.csv",
        include_str!("../fixtures/demo/shop_daily.csv"),
    ),
    (
        "web_daily.csv",
        include_str!("../fixtures/demo/web_daily.csv"),
    ),
    ("plan.csv", include_str!("../fixtures/demo/plan.csv")),
];

/// The example config the demo config is made from.
const EXAMPLE_CONFIG: &str = include_str!("../config/callout.toml");

/// A file that marks a folder as the demo's, so running it again may replace it.
const MARKER: &str = ".callout-demo";

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The folder holds other files; the demo never writes over them.
    #[error(
        "`{}` exists and is not an earlier demo folder (no {MARKER} file): choose another with --out, or remove it",
        .0.display()
    )]
    NotADemoFolder(PathBuf),
    /// Writing a file failed.
    #[error("cannot write `{}`: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The generated config did not compile (a bug: the demo's test catches it).
    #[error("the demo config `{}` does not compile: {detail}", path.display())]
    Config {
        /// The config file.
        path: PathBuf,
        /// The compiler's problems.
        detail: String,
    },
    /// The run itself failed (the store).
    #[error(transparent)]
    Run(#[from] anyhow::Error),
}

/// The demo written and replayed, for `main` to print in order: the
/// replay's problems (error lines), then the pre-read of the same week
/// ([`Demo::pre_read`], with its own line and problems), then
/// [`Demo::lines`], what to open.
#[derive(Debug)]
pub struct Demo {
    /// The demo folder.
    pub out: PathBuf,
    /// The config written.
    pub config_path: PathBuf,
    /// The config, compiled.
    pub config: crate::config::Config,
    /// The moment it runs as ([`AT`] in the review's timezone).
    pub at: chrono::DateTime<chrono::Utc>,
    /// Digests written (`.eml`; each has a `.html` beside it).
    pub digests: Vec<PathBuf>,
    /// Incidents the digests announce.
    pub new_incidents: usize,
    /// What went wrong in the replay (sources, owners), in words.
    pub run_problems: Vec<String>,
}

/// The demo config: the example config with its paths moved into the demo
/// folder and a `[web]` table on 127.0.0.1 (the example leaves it commented out).
pub fn demo_config() -> String {
    let body = EXAMPLE_CONFIG
        .replace("../fixtures/demo/", "data/")
        .replace("path = \"../callout.db\"", "path = \"callout.db\"");
    format!(
        "# Written by `callout demo` from the example config (config/callout.toml in the\n\
         # source), with the bundled exports in data/ and a throwaway store here.\n\
         # Nothing is sent: the demo renders digests to digests/ instead.\n\n\
         {body}\n\
         # The demo's web server: the digests' links point here. Start it with\n\
         #   callout serve --config <this file> --at \"{AT}\"\n\
         # (if port 8080 is taken, change both lines and run the demo again).\n\
         [web]\n\
         listen = \"{LISTEN}\"\n\
         public_url = \"http://{LISTEN}\"\n"
    )
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DemoError + '_ {
    move |source| DemoError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Make `out` ready: create it, or clear an earlier demo's store and digests;
/// refuse a folder with anything else in it.
fn prepare(out: &Path) -> Result<(), DemoError> {
    if out.exists() {
        let empty = std::fs::read_dir(out).map_err(io(out))?.next().is_none();
        if !empty && !out.join(MARKER).is_file() {
            return Err(DemoError::NotADemoFolder(out.to_path_buf()));
        }
        for name in ["callout.db", "callout.db-wal", "callout.db-shm"] {
            let p = out.join(name);
            if p.exists() {
                std::fs::remove_file(&p).map_err(io(&p))?;
            }
        }
        let digests = out.join("digests");
        if digests.exists() {
            std::fs::remove_dir_all(&digests).map_err(io(&digests))?;
        }
    }
    std::fs::create_dir_all(out.join("data")).map_err(io(out))?;
    let marker = out.join(MARKER);
    std::fs::write(
        &marker,
        "written by `callout demo`; running it again replaces this folder's demo files\n",
    )
    .map_err(io(&marker))?;
    Ok(())
}

/// `callout demo --out DIR`: write the demo and replay its history as of
/// [`AT`], rendering the digests into `digests/`. The pre-read and what to
/// open follow from the returned [`Demo`]; `main` prints.
pub fn run(out: &Path) -> Result<Demo, DemoError> {
    prepare(out)?;
    for (name, content) in EXPORTS {
        let p = out.join("data").join(name);
        std::fs::write(&p, content).map_err(io(&p))?;
    }
    let config_path = out.join("callout.toml");
    std::fs::write(&config_path, demo_config()).map_err(io(&config_path))?;
    let cfg = crate::config::load(&config_path).map_err(|e| DemoError::Config {
        path: config_path.clone(),
        detail: e.to_string(),
    })?;
    let at = AT
        .parse::<At>()
        .and_then(|a| a.resolve(cfg.review.timezone))
        .map_err(|detail| DemoError::Config {
            path: config_path.clone(),
            detail,
        })?;
    let digests_dir = out.join("digests");
    let replay = app::replay_history(&cfg, at, Announce::DryRun(Some(&digests_dir)))?;
    let mut digests: Vec<PathBuf> = std::fs::read_dir(&digests_dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "eml"))
                .collect()
        })
        .unwrap_or_default();
    digests.sort();
    Ok(Demo {
        out: out.to_path_buf(),
        config_path,
        config: cfg,
        at,
        digests,
        new_incidents: replay.alerts.new_incidents,
        run_problems: replay.problems(),
    })
}

impl Demo {
    /// The pre-read's file.
    pub fn report_path(&self) -> PathBuf {
        self.out.join("report.html")
    }

    /// Write the pre-read of the same week, from the same store (its
    /// explanations), to [`Demo::report_path`].
    pub fn pre_read(&self) -> Result<report::Written, report::WriteError> {
        let week = report::default_week(&self.config, self.at);
        report::write(&self.config, self.at, week, &self.report_path())
    }

    /// What was written and what to open, one line each.
    pub fn lines(&self) -> Vec<String> {
        let shown = |p: &Path| p.display().to_string();
        let mut lines = vec![
            format!(
                "demo: the bundled exports, run as of {AT} ({}); nothing was sent. In `{}`:",
                self.config.review.timezone,
                shown(&self.out)
            ),
            format!(
                "  {}  the config (sources, owners, review; [web] on {LISTEN})",
                shown(&self.config_path)
            ),
            format!(
                "  {}/  the exports: a shop's orders, revenue and web traffic",
                shown(&self.out.join("data"))
            ),
        ];
        for d in &self.digests {
            lines.push(format!("  {}  and .html", shown(d)));
        }
        lines.push(format!(
            "{} digest(s) for {} incident(s). Open one in a browser:",
            self.digests.len(),
            self.new_incidents
        ));
        if let Some(first) = self.digests.first() {
            lines.push(format!("  {}", shown(&first.with_extension("html"))));
        }
        lines.push(
            "The WBR pre-read of the same week (every metric's 6-12 chart, its numbers, its owners' explanations):".into(),
        );
        lines.push(format!("  {}", shown(&self.report_path())));
        lines.push(
            "Its \"Explain this\" links open on the demo's web server (Ctrl-C stops it):".into(),
        );
        lines.push(format!(
            "  callout serve --config {} --at \"{AT}\"",
            shown(&self.config_path)
        ));
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_config_points_into_the_demo_folder_and_compiles() {
        let text = demo_config();
        assert!(!text.contains("../"), "a path still leaves the demo folder");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("callout.toml");
        let cfg = crate::config::compile_str(&text, &path, &|_| None).unwrap();
        let web = cfg.web.unwrap();
        assert_eq!(web.listen.to_string(), LISTEN);
        assert_eq!(web.public_url, format!("http://{LISTEN}"));
        assert_eq!(cfg.store_path, dir.path().join("callout.db"));
        for s in &cfg.sources {
            let crate::config::Location::Path(p) = &s.location else {
                panic!("{} is not a file", s.name);
            };
            assert!(
                p.starts_with(dir.path().join("data").to_str().unwrap()),
                "{p}"
            );
        }
    }

    #[test]
    fn a_folder_with_other_files_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        assert!(matches!(run(dir.path()), Err(DemoError::NotADemoFolder(_))));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("notes.txt")).unwrap(),
            "mine"
        );
    }
}
