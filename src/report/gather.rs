//! The pre-read's I/O: the sources (through `pipeline::load_as_of_moment`,
//! rows after "now" left out), aggregated into daily totals ([`Cube`]); the
//! plan files; the store's incidents of the chart's weeks with their findings
//! and explanations. Only reads: a report never creates or changes the store.

use chrono::{DateTime, Utc};

use super::data::Cube;
use super::model::{Inputs, StoredIncident};
use super::plan::{self, Plan};
use super::{CHART_WEEKS, ReportError, Span, YEAR_WEEKS_DAYS, calendar_of};
use crate::config::Config;
use crate::model::{Lane, MS_PER_DAY};
use crate::store::Store;

/// Read what a report of `week` needs: every source (rows after `now` left
/// out, silently when `now` is a past moment: `pipeline::load_as_of_moment`), the plans, and the incidents of the chart's weeks with their
/// findings and explanations (only when the store file exists: a report
/// never creates one).
pub fn gather(cfg: &Config, week: Span, now: DateTime<Utc>) -> Result<Inputs, ReportError> {
    let t = std::time::Instant::now();
    // all history: the charts and last year's to-date figures reach back two years
    let loaded =
        crate::pipeline::load_as_of_moment(cfg, now, crate::pipeline::Window::Dates(None, None));
    tracing::info!(secs = t.elapsed().as_secs_f64(), "report: sources loaded");
    let mut problems: Vec<String> = loaded.errors.iter().map(ToString::to_string).collect();
    let t = std::time::Instant::now();
    // the drill-down's weeks: this one, the one before, the same one last year
    let slice_days = [week, week.shift(-7), week.shift(-YEAR_WEEKS_DAYS)].map(|w| w.days());
    let cube = aggregate(cfg, &loaded, &slice_days, &mut problems)?;
    tracing::info!(secs = t.elapsed().as_secs_f64(), "report: aggregated");
    let (plan, plan_errors) = plans(cfg);
    problems.extend(plan_errors.iter().map(ToString::to_string));
    let incidents = incidents(cfg, week)?;
    Ok(Inputs {
        cube,
        plan,
        incidents,
        problems,
    })
}

/// The cube of every source, in the config's order: a whole batch at once, a
/// source larger than `detection.memory_budget` one chunk at a time (only one
/// chunk's rows in memory). A chunk that cannot be read back is a problem of
/// the report, the others still count.
fn aggregate(
    cfg: &Config,
    loaded: &crate::pipeline::Loaded,
    slice_days: &[(i64, i64)],
    problems: &mut Vec<String>,
) -> Result<Cube, ReportError> {
    let mut cube = Cube::default();
    for s in &cfg.sources {
        if let Some(b) = loaded.batches.iter().find(|b| b.source == s.name) {
            cube.add(b, slice_days)?;
        } else if let Some(c) = loaded.chunked.iter().find(|c| c.source == s.name) {
            let first = cube.order.len();
            for chunk in &c.chunks {
                match chunk.read() {
                    Ok(b) => cube.add(&b, slice_days)?,
                    Err(e) => problems.push(e.to_string()),
                }
            }
            // a whole batch meets its metrics in key order; chunks come in
            // hash order, so the metrics this source added are put in key order
            cube.order[first..].sort();
        }
    }
    Ok(cube)
}

/// Every configured `[[plan]]`, read; a plan that cannot be read is among the
/// errors and left out.
pub fn plans(cfg: &Config) -> (Plan, Vec<plan::PlanError>) {
    plan::load(&cfg.report.plans, &calendar_of(cfg))
}

/// The store's incidents touching the chart's six weeks up to `week`, with
/// their findings and current explanations (none when the store file does
/// not exist: a report never creates one). Cheap next to [`gather`]'s
/// sources, so the web page reads it on every request (answers given a
/// minute ago show).
pub fn incidents(cfg: &Config, week: Span) -> Result<Vec<StoredIncident>, ReportError> {
    let mut incidents = Vec::new();
    if cfg.store_path.exists() {
        let store = Store::open(&cfg.store_path)?;
        // the chart's six weeks: from the first one's start to the report week's end
        let (a, _) = week.shift(-7 * (CHART_WEEKS as i64 - 1)).days();
        let (a, b) = (a * MS_PER_DAY, week.days().1 * MS_PER_DAY);
        for row in store.incidents()? {
            if row.lane == Lane::Export || row.opened_at_ts >= b || row.last_finding_ts < a {
                continue;
            }
            let findings = store.findings_of_incident(row.id)?;
            let explanation = store.latest_explanation(row.id)?;
            incidents.push(StoredIncident {
                row,
                findings,
                explanation,
            });
        }
    }
    Ok(incidents)
}
