//! Writing the pre-read to a file (`callout report`, the demo): gather,
//! build, render and write one page, refusing a week beyond the data; the
//! default file name. Returns what was written ([`Written`]); `main` prints it.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, NaiveDate, Utc};

use super::{ReportError, Span, build, calendar_of, gather, html, week_number};
use crate::config::Config;

/// Why `callout report` could not write its file.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Reading or aggregating failed.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// Every export ends before the week asked for: the page would be all
    /// n/a, so none is written.
    #[error(
        "no data in the week asked for, {}-W{:02} ({} – {}): the newest data in the exports is dated {newest}, so every number would be n/a; nothing written. For the week of the newest data: `--date {newest}`, with `--at \"{after} 08:00\"` to make it as of the morning after that week (and for the review after it)",
        week_number(*week).0,
        week_number(*week).1,
        week.start.format("%a %-d %b"),
        week.last().format("%a %-d %b %Y")
    )]
    NoDataInWeek {
        /// The week asked for (or the default one).
        week: Span,
        /// The newest day with data in any export.
        newest: NaiveDate,
        /// The day after the week of `newest` (a moment to suggest for `--at`).
        after: NaiveDate,
    },
    /// The output file could not be written.
    #[error("cannot write the report to `{}`: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The file `callout report` writes without `--output`: named by the week's
/// ISO number, in the current folder (`wbr-2025-W10.html`).
pub fn default_output(week: Span) -> PathBuf {
    let (y, w) = week_number(week);
    format!("wbr-{y}-W{w:02}.html").into()
}

/// A pre-read written to a file, for `main` to print: its `Display` is the
/// summary line, and each of `problems` (sources or plans left out, also
/// listed in the page) is an error line.
#[derive(Debug)]
pub struct Written {
    /// The week reported.
    pub week: Span,
    /// How many metrics the page shows.
    pub metrics: usize,
    /// The file written.
    pub output: PathBuf,
    /// What could not be used.
    pub problems: Vec<String>,
}

impl std::fmt::Display for Written {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "report: week of {} ({} metric(s)) written to `{}`",
            self.week.start,
            self.metrics,
            self.output.display()
        )
    }
}

/// `callout report`: gather, build and write the page of `week` to
/// `output`, and say what was written (the problems among it). When every
/// export ends before the week starts (a stale export, or a week asked for
/// beyond the data), nothing is written: the page would be all n/a
/// ([`WriteError::NoDataInWeek`]).
pub fn write(
    cfg: &Config,
    now: DateTime<Utc>,
    week: Span,
    output: &Path,
) -> Result<Written, WriteError> {
    let inputs = gather(cfg, week, now)?;
    if let Some(newest) = inputs.cube.newest_day()
        && newest < week.days().0
    {
        let newest = NaiveDate::default() + Duration::days(newest);
        return Err(WriteError::NoDataInWeek {
            week,
            newest,
            after: calendar_of(cfg).week_of(newest).end,
        });
    }
    let t = std::time::Instant::now();
    let report = build(cfg, &inputs, week, now);
    tracing::info!(secs = t.elapsed().as_secs_f64(), "report: built");
    let page = html(&report);
    tracing::info!(secs = t.elapsed().as_secs_f64(), "report: rendered");
    std::fs::write(output, page).map_err(|source| WriteError::Write {
        path: output.to_path_buf(),
        source,
    })?;
    Ok(Written {
        week,
        metrics: report.sections.iter().map(|s| s.metrics.len()).sum(),
        output: output.to_path_buf(),
        problems: report.problems,
    })
}
