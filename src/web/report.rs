//! The pre-read at a signed link, `/report/{token}`: the same page as
//! `callout report` for the token's week, and the link itself
//! (`callout report --link`, the report email).
//!
//! Reading the sources is the slow part of a report (seconds on a large
//! export), so the aggregated inputs are kept for one week and the store's
//! newest finished run: a page view after the next run reads the exports
//! again. The week's incidents and explanations are read from the store on
//! every view, so an answer given a minute ago is shown.
//!
//! Must not: write to the store or create it (the report only reads).

use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, Utc};

use super::routes::PageError;
use super::{AppState, WebError};
use crate::config::Config;
use crate::report::{self, Inputs, Span, WeekChoice};
use crate::store::Store;

/// What the cached inputs were read for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CacheKey {
    /// The report's week.
    week: NaiveDate,
    /// The newest finished run when they were read (`None`: no store yet).
    run: Option<i64>,
}

/// The inputs of the last report served (one entry: a review reads one week).
#[derive(Debug, Default)]
pub struct ReportCache(Mutex<Option<(CacheKey, Arc<Inputs>)>>);

impl ReportCache {
    fn get(&self, key: CacheKey) -> Option<Arc<Inputs>> {
        let slot = self.0.lock().ok()?;
        slot.as_ref()
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| Arc::clone(v))
    }

    fn put(&self, key: CacheKey, inputs: Arc<Inputs>) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some((key, inputs));
        }
    }
}

/// The signed link to the pre-read of `week`, made for the review after
/// `now`; valid until `link_valid_days` after that review. Reads (or
/// creates, for a generated key) the signing key.
pub fn link(cfg: &Config, week: Span, now: DateTime<Utc>) -> Result<String, WebError> {
    let web = cfg
        .web
        .as_ref()
        .ok_or_else(|| WebError::NotConfigured(cfg.path.clone()))?;
    let key = crate::links::key::load(&web.key)?;
    let review_at = crate::review::next_review(&cfg.review, now).with_timezone(&Utc);
    Ok(crate::links::report_url(
        web,
        &key,
        week.start,
        review_at,
        &cfg.review.name,
    ))
}

/// The report page of the week starting `week_start`, made for the review at
/// `review_at` (seconds). Blocking: call it off the async workers.
pub fn page(state: &AppState, week_start: NaiveDate, review_at: i64) -> Result<String, PageError> {
    let cfg = &state.config;
    let now = state.clock.now();
    let week =
        report::week(cfg, WeekChoice::Containing(week_start), now).ok_or(PageError::NotFound)?;
    let run = if cfg.store_path.exists() {
        Store::open(&cfg.store_path)?.latest_finished_run()?
    } else {
        None
    };
    let key = CacheKey {
        week: week.start,
        run,
    };
    let cached = match state.report_cache.get(key) {
        Some(c) => c,
        None => {
            let t = std::time::Instant::now();
            let fresh = Arc::new(report::gather(cfg, week, now).map_err(internal)?);
            tracing::info!(
                secs = t.elapsed().as_secs_f64(),
                week = %week.start,
                "report page: sources read"
            );
            state.report_cache.put(key, Arc::clone(&fresh));
            fresh
        }
    };
    let mut inputs = (*cached).clone();
    inputs.incidents = report::incidents(cfg, week).map_err(internal)?;
    let mut r = report::build(cfg, &inputs, week, now);
    if let Some(at) = DateTime::from_timestamp(review_at, 0) {
        report::set_review(&mut r, cfg, at);
    }
    Ok(report::html(&r))
}

fn internal(e: report::ReportError) -> PageError {
    match e {
        report::ReportError::Store(s) => PageError::Store(s),
        other => PageError::Internal(other.to_string()),
    }
}
