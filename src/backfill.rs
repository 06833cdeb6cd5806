//! `callout backfill`: history through the same pipeline as the daemon.
//!
//! Every point in the range is evaluated with only the data at or before it
//! (the kernels are causal). `main` writes the findings ([`write_findings`]:
//! a file, or CSV on its stdout) and prints [`summary`]; this module prints
//! nothing. Nothing is sent unless `--send` is given (the store step is
//! `app::record_backfill`). Before any work, [`check_output`] refuses an
//! `--output` file that is an input or has an unknown extension.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::NaiveDate;

use crate::config::Config;
use crate::model::ExplainedSpan;
use crate::output::{self, OutputFormat};
use crate::pipeline::{self, Evaluation, Window};
use crate::store::Store;

/// Why `--output` cannot be used (exit 2, before anything is read).
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The extension names no format callout writes.
    #[error(
        "--output `{}`: cannot tell the format from {}; use one of {} (any case), or `-` for CSV on stdout",
        path.display(),
        match ext { Some(e) => format!("the extension `.{e}`"), None => "a name without extension".into() },
        OutputFormat::supported()
    )]
    UnknownFormat {
        /// The `--output` path.
        path: PathBuf,
        /// Its extension, if any.
        ext: Option<String>,
    },
    /// The file is one of the inputs, which findings would overwrite.
    #[error(
        "--output `{}` is {input}: writing findings there would overwrite it; choose another file",
        path.display()
    )]
    IsInput {
        /// The `--output` path.
        path: PathBuf,
        /// Which input, e.g. "the export of source `shop`".
        input: String,
    },
}

/// The format to write `--output` in, after refusing a path that is the config
/// file or a file of a source (compared as canonical paths, so `./a/../x.csv`
/// and symlinks are caught), or whose extension is not a format callout writes.
/// `None` for stdout (`-` or no `--output`).
pub fn check_output(
    cfg: &Config,
    path: Option<&Path>,
) -> Result<Option<OutputFormat>, OutputError> {
    let Some(path) = path.filter(|p| p.as_os_str() != "-") else {
        return Ok(None);
    };
    let target = canonical(path);
    let is_input = |input: String| OutputError::IsInput {
        path: path.to_path_buf(),
        input,
    };
    if canonical(&cfg.path) == target {
        return Err(is_input(format!(
            "the config file `{}`",
            cfg.path.display()
        )));
    }
    for s in &cfg.sources {
        if s.files().iter().any(|f| canonical(f) == target) {
            return Err(is_input(format!("an export of source `{}`", s.name)));
        }
    }
    OutputFormat::for_path(path)
        .map(Some)
        .ok_or_else(|| OutputError::UnknownFormat {
            path: path.to_path_buf(),
            ext: path.extension().map(|e| e.to_string_lossy().into_owned()),
        })
}

/// The canonical form of a path that may not exist yet (its folder's canonical
/// form joined with its name).
fn canonical(p: &Path) -> PathBuf {
    if let Ok(c) = p.canonicalize() {
        return c;
    }
    match (p.parent(), p.file_name()) {
        (Some(dir), Some(name)) => {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            dir.canonicalize()
                .map(|d| d.join(name))
                .unwrap_or_else(|_| p.to_path_buf())
        }
        _ => p.to_path_buf(),
    }
}

/// The range a backfill evaluates: its flags as values (`main` turns the
/// parsed `backfill` flags into these).
#[derive(Debug, Clone, Copy, Default)]
pub struct BackfillOptions {
    /// First date to report; earlier data is still used as history.
    pub from: Option<NaiveDate>,
    /// Last date to evaluate; later data is ignored.
    pub to: Option<NaiveDate>,
}

/// How far a backfill is, for a progress display the caller owns (the CLI's
/// bar on a terminal); this module never draws one.
pub trait Progress: Sync {
    /// `done` of `total` series detected so far.
    fn detecting(&self, done: usize, total: usize);
    /// Detection is over (what follows is quick: restatements, the summary).
    fn detected(&self);
}

/// Evaluate history as the daemon would have, point by point, over
/// `options`' range; the evaluation is returned for the findings file, the
/// store step, the summary ([`summary`]) and the exit code.
pub fn run(
    cfg: &Config,
    options: BackfillOptions,
    progress: &dyn Progress,
) -> anyhow::Result<Evaluation> {
    let window = Window::Dates(options.from, options.to);
    // the config's store, when it exists (a backfill without `--store` never
    // creates one): owners' explanations shape the baseline exactly as in the
    // daemon, and its flagged values are checked for restatements
    let store = if cfg.store_path.exists() {
        Some(Store::open(&cfg.store_path)?)
    } else {
        None
    };
    let explained: Vec<ExplainedSpan> = match &store {
        Some(s) => s.explained_spans()?,
        None => Vec::new(),
    };
    let mut ev = pipeline::evaluate(cfg, window, None, &explained, &|done, total| {
        progress.detecting(done, total);
    });
    progress.detected();
    // flagged periods whose value moved since, when there is a store to know them
    if let Some(s) = &store {
        pipeline::add_restated(cfg, &mut ev, s.flagged_values()?);
    }
    Ok(ev)
}

/// Write `ev`'s findings (the window already ends at `--to`) to the file
/// `path` in `format`, or as CSV to `stdout` without one (`-` or no `--output`).
pub fn write_findings(
    ev: &Evaluation,
    path: Option<&Path>,
    format: Option<OutputFormat>,
    stdout: impl std::io::Write,
) -> anyhow::Result<()> {
    let findings = &ev.detection.findings;
    let keys = ev.key_columns();
    match (path, format) {
        (Some(p), Some(format)) => {
            let f = std::fs::File::create(p)
                .with_context(|| format!("cannot create findings file `{}`", p.display()))?;
            output::write(format, std::io::BufWriter::new(f), findings, &keys)
                .with_context(|| format!("writing findings file `{}`", p.display()))
        }
        _ => output::write_csv(stdout, findings, &keys).context("writing findings to stdout"),
    }
}

/// The line that sums a backfill up: sources, series, rows, points,
/// findings by check, FDR drops, errors and warnings, timings.
pub fn summary(ev: &Evaluation) -> String {
    let findings = &ev.detection.findings;
    let series = ev.series();
    let points: usize = ev.detection.evaluated.iter().map(|e| e.points).sum();
    let mut by_check: BTreeMap<&str, usize> = BTreeMap::new();
    for f in findings {
        *by_check.entry(f.hit.check.as_str()).or_default() += 1;
    }
    let checks = if by_check.is_empty() {
        "none".to_string()
    } else {
        by_check
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "backfill: {} source(s), {series} series, {} rows, {points} points evaluated, {} finding(s) ({checks}); {} dropped by FDR; {} error(s), {} warning(s); load {:.2}s, detect {:.2}s",
        ev.sources(),
        ev.rows,
        findings.len(),
        ev.detection.dropped_by_fdr,
        ev.errors.len(),
        ev.warnings.len(),
        ev.load_time.as_secs_f64(),
        ev.detect_time.as_secs_f64(),
    )
}
