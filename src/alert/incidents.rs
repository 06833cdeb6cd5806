//! Incidents: which findings belong together, and which are news.
//!
//! Rules, per series (source + key) and lane ([`Lane`]: export problems,
//! data-health problems, statistical outliers — each its own incident, so
//! one kind never hides another):
//! - A finding within the close gap of the open incident's last finding
//!   extends it; a level shift followed by more findings is therefore one
//!   incident too. The gap is `close_after_periods` periods, and for
//!   sub-daily series at least `close_after_hours` (an episode of a 5-minute
//!   series flares up and calms down many times in an afternoon: one ask).
//! - The incident closes once the series has been evaluated normal for the
//!   gap after its last finding; a finding after that opens a new incident.
//! - A finding already stored for the same point and check (a re-run of the
//!   same evaluation: restart, cron overlap, `run --once` twice) goes to the
//!   incident it went to before and changes nothing; so does a late finding
//!   that falls inside a closed incident's span. Only genuinely new points
//!   open incidents, which is what makes re-runs silent.
//! - Backfill marks incidents whose last flagged period had ended by the
//!   start of the current review week as `past`: recorded, never announced.
//! - Export incidents (`late`, `missing`) belong to the source's `owner`
//!   (else `owners.default`); the others to the metric's owner.
//!
//! Must not: render or send anything; ownership is resolved from the config
//! given, not stored as truth.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use lettre::message::Mailbox;

use super::AlertError;
use crate::config::Config;
use crate::model::severity_cmp;
use crate::model::{Check, Finding, Lane, SeriesKey};
use crate::review;
use crate::store::{IncidentRow, NewIncident, Store, StoreError};

/// One series that an evaluation looked at, with or without findings (from `detect`).
use crate::model::Evaluated;

/// An incident with its findings (defined in `model`, shared with `render`).
pub use crate::model::Incident;

/// Who is told about an incident of `lane` in a series of `source`: export
/// problems go to the source's `owner` (else `owners.default`); data
/// problems on the export's rows (`stale`, `outage`, `bounds`,
/// `max_change`) to the source's `owner` when one is set, else the metric's
/// owner; outliers and restatements to the metric's owner (first matching
/// rule, else `owners.default`).
pub fn owner_for<'c>(
    config: &'c Config,
    lane: Lane,
    source: &str,
    key: &SeriesKey,
) -> Option<&'c Mailbox> {
    let source_owner = || {
        config
            .sources
            .iter()
            .find(|s| s.name == source)
            .and_then(|s| s.owner.as_ref())
    };
    match lane {
        Lane::Export => source_owner().or(config.owners.default.as_ref()),
        Lane::Health => source_owner().or_else(|| config.owners.owner_of(key)),
        Lane::Statistical | Lane::Restated => config.owners.owner_of(key),
    }
}

/// The findings an owner is asked about: a statistical finding on a period
/// that also has a data problem of the same series (a repeated value, a
/// zero, a missing period) is the data problem, not also an outlier, so it
/// is left out (the data problem is asked about once, in its own lane).
fn without_data_problem_echoes(findings: &[Finding]) -> Cow<'_, [Finding]> {
    let problems: BTreeSet<(&str, &SeriesKey, i64)> = findings
        .iter()
        .filter(|f| matches!(f.hit.check, Check::Stale | Check::Outage | Check::Missing))
        .map(|f| (f.source.as_str(), &f.key, f.hit.ts))
        .collect();
    let echo = |f: &&Finding| {
        Lane::of(f.hit.check) == Lane::Statistical
            && problems.contains(&(f.source.as_str(), &f.key, f.hit.ts))
    };
    if !findings.iter().any(|f| echo(&f)) {
        return Cow::Borrowed(findings);
    }
    Cow::Owned(findings.iter().filter(|f| !echo(f)).cloned().collect())
}

/// Store the findings of one evaluation, update incidents, and return every
/// incident that is not announced yet (and not past), with owners resolved
/// from `config`. All in one transaction: a crash leaves the previous state.
///
/// `evaluated` lists the series the evaluation looked at (with or without
/// findings); their `last_ts` is what closes incidents. With `backfill`,
/// incidents whose last finding is older than the start of the current review
/// week (the last review before `now`) are marked past and never announced.
pub fn record(
    store: &mut Store,
    run_id: i64,
    findings: &[Finding],
    evaluated: &[Evaluated],
    config: &Config,
    now: DateTime<Utc>,
    backfill: bool,
) -> Result<Vec<Incident>, AlertError> {
    let close = Close {
        periods: i64::from(config.alerts.close_after_periods.max(1)),
        sub_daily_ms: i64::from(config.alerts.close_after_hours) * 3_600_000,
    };
    let kept = super::causes::one_ask_per_cause(config, without_data_problem_echoes(findings));
    let findings: &[Finding] = &kept;
    store.transaction(|s| {
        let mut by_series: BTreeMap<(&str, &SeriesKey), Vec<&Finding>> = BTreeMap::new();
        for f in findings {
            by_series
                .entry((f.source.as_str(), &f.key))
                .or_default()
                .push(f);
        }
        let evals: BTreeMap<(&str, &SeriesKey), &Evaluated> = evaluated
            .iter()
            .map(|e| ((e.source.as_str(), &e.key), e))
            .collect();
        let series: BTreeSet<(&str, &SeriesKey)> =
            by_series.keys().chain(evals.keys()).copied().collect();
        let mut opened = 0;
        for (source, key) in series {
            let fs = by_series
                .get(&(source, key))
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            for lane in Lane::ALL {
                let in_lane: Vec<&Finding> = fs
                    .iter()
                    .copied()
                    .filter(|f| Lane::of(f.hit.check) == lane)
                    .collect();
                let owner = owner_for(config, lane, source, key).cloned();
                if lane == Lane::Restated {
                    opened += record_restated(s, run_id, &in_lane, owner)?;
                    continue;
                }
                opened += update_series(
                    s,
                    run_id,
                    (source, key, lane),
                    &in_lane,
                    evals.get(&(source, key)).copied(),
                    close,
                    owner,
                )?;
            }
        }
        let mut past = 0;
        if backfill {
            // Periods that had ended by the last review were reviewed then.
            let start = crate::model::wall_ms(&review::previous_review(&config.review, now));
            past = s.mark_past_before(start)?;
        }
        let pending = s.pending_incidents()?;
        tracing::info!(
            run = run_id,
            findings = findings.len(),
            opened,
            past,
            pending = pending.len(),
            "recorded incidents"
        );
        let mut out = Vec::with_capacity(pending.len());
        for row in pending {
            out.extend(load(s, row, config)?);
        }
        Ok(out)
    })
}

/// When an open incident is over: `alerts.close_after_periods` normal
/// periods, and for sub-daily series at least `alerts.close_after_hours`.
#[derive(Clone, Copy)]
struct Close {
    periods: i64,
    sub_daily_ms: i64,
}

impl Close {
    /// The quiet stretch (ms) after its last finding that ends an incident
    /// of a series with `step` ms between points.
    fn gap(self, step: i64) -> i64 {
        let periods = self.periods.saturating_mul(step);
        if step < crate::model::MS_PER_DAY {
            periods.max(self.sub_daily_ms)
        } else {
            periods
        }
    }
}

/// Severity ordering of a finding against an incident's worst so far.
fn worse(f: &Finding, row: &IncidentRow) -> bool {
    severity_cmp(f.hit.check, f.hit.score, row.worst_check, row.worst_score).is_gt()
}

fn absorb(row: &mut IncidentRow, f: &Finding) {
    if worse(f, row) {
        row.worst_check = f.hit.check;
        row.worst_score = f.hit.score;
    }
    row.opened_at_ts = row.opened_at_ts.min(f.hit.ts);
    row.last_finding_ts = row.last_finding_ts.max(f.hit.ts);
    row.last_evaluated_ts = row.last_evaluated_ts.max(f.hit.ts);
}

/// Apply one series' findings of one lane and its evaluation; returns
/// incidents opened.
fn update_series(
    s: &Store,
    run_id: i64,
    (source, key, lane): (&str, &SeriesKey, Lane),
    findings: &[&Finding],
    eval: Option<&Evaluated>,
    close: Close,
    owner: Option<Mailbox>,
) -> Result<usize, StoreError> {
    let step = eval
        .map(|e| e.step_ms)
        .filter(|&x| x > 0)
        .or_else(|| findings.first().map(|f| f.granularity.step_ms()))
        .unwrap_or(1)
        .max(1);
    let gap = close.gap(step);
    let mut sorted = findings.to_vec();
    sorted.sort_by_key(|f| (f.hit.ts, f.hit.check));
    let mut open = s.open_incident(source, key, lane)?;
    let mut opened = 0;
    for f in sorted {
        if let Some(id) = s.known_incident_of(f)? {
            s.insert_finding(run_id, f, Some(id))?;
            continue;
        }
        if let Some(mut closed) = s.closed_incident_covering(source, key, lane, f.hit.ts)? {
            // Late news about a period that is over: keep it, announce nothing.
            if worse(f, &closed) {
                closed.worst_check = f.hit.check;
                closed.worst_score = f.hit.score;
                s.update_incident(&closed)?;
            }
            s.insert_finding(run_id, f, Some(closed.id))?;
            continue;
        }
        match open.as_mut() {
            Some(inc)
                if f.hit.ts <= inc.last_finding_ts.saturating_add(gap)
                    && f.hit.ts >= inc.opened_at_ts.saturating_sub(gap) =>
            {
                absorb(inc, f);
                inc.step_ms = step;
                s.insert_finding(run_id, f, Some(inc.id))?;
            }
            Some(inc) if f.hit.ts < inc.opened_at_ts => {
                // New news about a period well before the open incident (a
                // revised export): its own incident, already over.
                let id = s.insert_incident(&NewIncident {
                    first: f,
                    step_ms: step,
                    owner: owner.clone(),
                    last_evaluated_ts: f.hit.ts,
                    run_id,
                    closed_at_ts: Some(f.hit.ts.saturating_add(gap)),
                })?;
                s.insert_finding(run_id, f, Some(id))?;
                opened += 1;
            }
            _ => {
                if let Some(mut inc) = open.take() {
                    // The periods between were evaluated without findings.
                    inc.closed_at_ts = Some(inc.last_finding_ts.saturating_add(gap));
                    s.update_incident(&inc)?;
                }
                let id = s.insert_incident(&NewIncident {
                    first: f,
                    step_ms: step,
                    owner: owner.clone(),
                    last_evaluated_ts: f.hit.ts,
                    run_id,
                    closed_at_ts: None,
                })?;
                s.insert_finding(run_id, f, Some(id))?;
                open = s.incident(id)?;
                opened += 1;
            }
        }
    }
    if let Some(mut inc) = open {
        if let Some(e) = eval {
            inc.last_evaluated_ts = inc.last_evaluated_ts.max(e.last_ts);
        }
        if inc.last_evaluated_ts.saturating_sub(inc.last_finding_ts) >= gap {
            inc.closed_at_ts = Some(inc.last_finding_ts.saturating_add(gap));
        }
        s.update_incident(&inc)?;
    }
    Ok(opened)
}

/// One run's `restated` findings of one series: one new incident, closed at
/// once (a restatement has no duration, and an open one would swallow the next
/// run's). Never matched against earlier findings of the same period: the
/// caller only passes a value that differs from the newest one stored, so
/// each is news. Returns incidents opened (0 or 1).
fn record_restated(
    s: &Store,
    run_id: i64,
    findings: &[&Finding],
    owner: Option<Mailbox>,
) -> Result<usize, StoreError> {
    let Some(first) = findings.iter().min_by_key(|f| f.hit.ts) else {
        return Ok(0);
    };
    let last = findings
        .iter()
        .map(|f| f.hit.ts)
        .max()
        .unwrap_or(first.hit.ts);
    let id = s.insert_incident(&NewIncident {
        first,
        step_ms: first.granularity.step_ms(),
        owner,
        last_evaluated_ts: last,
        run_id,
        closed_at_ts: Some(last),
    })?;
    let mut row = s.incident(id)?;
    for f in findings {
        if let Some(inc) = row.as_mut() {
            absorb(inc, f);
        }
        s.insert_finding(run_id, f, Some(id))?;
    }
    if let Some(inc) = row {
        s.update_incident(&inc)?;
    }
    Ok(1)
}

/// An incident row with its findings and current owner; `None` if it has no findings.
pub(super) fn load(
    s: &Store,
    row: IncidentRow,
    config: &Config,
) -> Result<Option<Incident>, StoreError> {
    let findings = s.findings_of_incident(row.id)?;
    let Some(worst) = crate::model::worst_finding(&findings).cloned() else {
        return Ok(None);
    };
    Ok(Some(Incident {
        id: row.id,
        owner: owner_for(config, row.lane, &row.source, &row.key).cloned(),
        source: row.source,
        key: row.key,
        lane: row.lane,
        granularity: row.granularity,
        opened_at_ts: row.opened_at_ts,
        last_finding_ts: row.last_finding_ts,
        closed_at_ts: row.closed_at_ts,
        findings,
        worst,
    }))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::Granularity;
    use crate::model::{Check, Hit, Side};
    use crate::store::RunKind;
    use chrono::TimeZone;

    pub(crate) const DAY: i64 = 86_400_000;

    /// A config with owners and SMTP on `port` (plain), close after 3 periods.
    pub(crate) fn config(port: u16) -> Config {
        let text = format!(
            r#"
[store]
path = "state.db"
[review]
name = "WBR"
weekday = "wed"
time = "10:00"
timezone = "Europe/London"
explanations_due_hours = 24
[[source]]
name = "shop"
path = "shop.csv"
time_column = "date"
dimensions = ["region"]
[owners]
[[owners.rule]]
match = "revenue*"
email = "Ana Ortiz <ana@example.com>"
[[owners.rule]]
match = "orders"
email = "Sam Lee <sam@example.com>"
[[owners.rule]]
match = "refunds"
email = "Rejected Owner <reject-me@example.com>"
[smtp]
host = "127.0.0.1"
port = {port}
security = "none"
from = "callout <callout@example.com>"
reply_to = "WBR team <wbr@example.com>"
list_id = "wbr.example.com"
timeout_secs = 5
[alerts]
close_after_periods = 3
retry_base_secs = 60
"#
        );
        crate::config::compile_str(
            &text,
            std::path::Path::new("/tmp/callout-test.toml"),
            &|_| None,
        )
        .unwrap()
    }

    /// Day `d` of November 2020 (or later), series time.
    pub(crate) fn day(d: i64) -> i64 {
        Utc.with_ymd_and_hms(2020, 11, 1, 0, 0, 0)
            .unwrap()
            .timestamp_millis()
            + (d - 1) * DAY
    }

    /// Monday 30 Nov 2020 07:00 UTC: the review week started Wed 25 Nov 10:00.
    pub(crate) fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2020, 11, 30, 7, 0, 0).unwrap()
    }

    pub(crate) fn key(metric: &str, region: &str) -> SeriesKey {
        SeriesKey {
            metric: metric.into(),
            dims: vec![("region".into(), region.into())],
        }
    }

    pub(crate) fn finding(metric: &str, region: &str, d: i64, check: Check) -> Finding {
        Finding {
            source: "shop".into(),
            key: key(metric, region),
            granularity: Granularity::Day,
            hit: Hit {
                ts: day(d),
                value: 580.0,
                expected: 1000.0,
                lower: 900.0,
                upper: 1100.0,
                score: -5.0,
                p_value: 1e-5,
                side: Side::Down,
                check,
                wow_pct: Some(-40.0),
                yoy_pct: Some(-35.0),
                history: 42,
                note: None,
            },
        }
    }

    pub(crate) fn evaluated(metric: &str, region: &str, d: i64) -> Evaluated {
        Evaluated {
            source: "shop".into(),
            key: key(metric, region),
            last_ts: day(d),
            step_ms: DAY,
            points: 1,
        }
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        store: Store,
        config: Config,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        Fixture {
            _dir: dir,
            store,
            config: config(25),
        }
    }

    impl Fixture {
        /// One daily evaluation of `revenue/eu` at day `d`, with or without a finding.
        fn day_run(&mut self, d: i64, hit: Option<Check>, backfill: bool) -> Vec<Incident> {
            let run = self.store.begin_run(RunKind::Once, now()).unwrap();
            let fs: Vec<Finding> = hit
                .map(|c| finding("revenue", "eu", d, c))
                .into_iter()
                .collect();
            record(
                &mut self.store,
                run,
                &fs,
                &[evaluated("revenue", "eu", d)],
                &self.config,
                now(),
                backfill,
            )
            .unwrap()
        }

        /// Mark what `record` returned as announced, as `queue_digests` would.
        fn announce(&self, incidents: &[Incident]) {
            let ids: Vec<i64> = incidents.iter().map(|i| i.id).collect();
            self.store.mark_announced(&ids, None).unwrap();
        }
    }

    #[test]
    fn consecutive_findings_are_one_incident_and_rerunning_is_silent() {
        let mut fx = fixture();
        let new = fx.day_run(10, Some(Check::Seasonal), false);
        assert_eq!(new.len(), 1);
        assert_eq!(
            new[0]
                .owner
                .as_ref()
                .map(|m| m.email.to_string())
                .as_deref(),
            Some("ana@example.com")
        );
        fx.announce(&new);
        // The same evaluation again: nothing new.
        assert!(fx.day_run(10, Some(Check::Seasonal), false).is_empty());
        // Next day, and two days later (one normal day between): same incident.
        assert!(fx.day_run(11, Some(Check::Seasonal), false).is_empty());
        assert!(fx.day_run(12, None, false).is_empty());
        assert!(fx.day_run(13, Some(Check::Variance), false).is_empty());
        let all = fx.store.incidents().unwrap();
        assert_eq!(all.len(), 1, "{all:?}");
        assert_eq!(
            (all[0].opened_at_ts, all[0].last_finding_ts),
            (day(10), day(13))
        );
        assert_eq!(all[0].closed_at_ts, None);
    }

    #[test]
    fn closes_after_normal_periods_and_a_later_finding_is_new() {
        let mut fx = fixture();
        let first = fx.day_run(10, Some(Check::Seasonal), false);
        fx.announce(&first);
        fx.day_run(11, None, false);
        fx.day_run(12, None, false);
        assert_eq!(
            fx.store.incidents().unwrap()[0].closed_at_ts,
            None,
            "2 normal days"
        );
        fx.day_run(13, None, false);
        assert_eq!(
            fx.store.incidents().unwrap()[0].closed_at_ts,
            Some(day(13)),
            "3 normal days close it"
        );
        let again = fx.day_run(14, Some(Check::Seasonal), false);
        assert_eq!(again.len(), 1);
        assert_ne!(again[0].id, first[0].id);
        // Re-running the old evaluation after the close still opens nothing
        // and leaves both spans alone.
        fx.announce(&again);
        assert!(fx.day_run(10, Some(Check::Seasonal), false).is_empty());
        let spans: Vec<(i64, i64, Option<i64>)> = fx
            .store
            .incidents()
            .unwrap()
            .iter()
            .map(|i| (i.opened_at_ts, i.last_finding_ts, i.closed_at_ts))
            .collect();
        assert_eq!(
            spans,
            vec![(day(10), day(10), Some(day(13))), (day(14), day(14), None)]
        );
        // A genuinely new finding long before the open incident (a revised
        // export) is its own, already closed, incident.
        let revised = fx.day_run(5, Some(Check::Seasonal), false);
        assert_eq!(revised.len(), 1);
        assert_eq!(revised[0].closed_at_ts, Some(day(8)));
        assert_eq!(
            fx.store
                .open_incident("shop", &key("revenue", "eu"), Lane::Statistical)
                .unwrap()
                .map(|i| i.id),
            Some(again[0].id)
        );
    }

    /// A 5-minute series that flares up again within `close_after_hours`
    /// (12 by default) is one episode, asked once; after half a day quiet a
    /// new flare is a new incident. With the hours at 0, three quiet periods
    /// (15 minutes) end an incident, as they end a daily one after 3 days.
    #[test]
    fn a_sub_daily_episode_lasts_until_half_a_day_is_quiet() {
        const MIN5: i64 = 300_000;
        let flare = |k: i64| {
            let mut f = finding("revenue", "eu", 10, Check::Seasonal);
            f.granularity = Granularity::Minutes(5);
            f.hit.ts = day(10) + k * MIN5;
            f
        };
        // flares at 0:00, 0:30, 5:00 and 16:55 (11 h 55 quiet), then 5:00
        // the next day (12 h 5 quiet): two incidents
        let ks = [0, 6, 60, 60 + 143, 60 + 143 + 145];
        for (hours, want) in [(None, 2), (Some(0), 5)] {
            let mut fx = fixture();
            if let Some(h) = hours {
                fx.config.alerts.close_after_hours = h;
            }
            let run = fx.store.begin_run(RunKind::Once, now()).unwrap();
            let fs: Vec<Finding> = ks.iter().map(|&k| flare(k)).collect();
            let mut eval = evaluated("revenue", "eu", 10);
            eval.step_ms = MIN5;
            eval.last_ts = day(12);
            record(&mut fx.store, run, &fs, &[eval], &fx.config, now(), false).unwrap();
            let all = fx.store.incidents().unwrap();
            let opened: Vec<i64> = all
                .iter()
                .map(|i| (i.opened_at_ts - day(10)) / MIN5)
                .collect();
            assert_eq!(all.len(), want, "{hours:?}: opened at {opened:?}");
            if want == 2 {
                assert_eq!(opened, vec![0, 60 + 143 + 145]);
                assert_eq!(all[0].last_finding_ts, flare(60 + 143).hit.ts);
            }
        }
    }

    #[test]
    fn a_gap_longer_than_the_close_window_splits_incidents_in_one_evaluation() {
        let mut fx = fixture();
        let run = fx.store.begin_run(RunKind::Once, now()).unwrap();
        let fs = [
            finding("revenue", "eu", 3, Check::Seasonal),
            finding("revenue", "eu", 4, Check::Seasonal),
            finding("revenue", "eu", 9, Check::Seasonal),
        ];
        let new = record(
            &mut fx.store,
            run,
            &fs,
            &[evaluated("revenue", "eu", 9)],
            &fx.config,
            now(),
            false,
        )
        .unwrap();
        assert_eq!(new.len(), 2);
        assert_eq!(new[0].periods(), 2);
        assert_eq!(new[0].closed_at_ts, Some(day(7)));
        assert_eq!(new[1].closed_at_ts, None);
    }

    #[test]
    fn unannounced_incidents_come_back_until_queued() {
        // A crash between `record` and `queue_digests` loses nothing.
        let mut fx = fixture();
        let first = fx.day_run(10, Some(Check::Seasonal), false);
        assert_eq!(first.len(), 1);
        let again = fx.day_run(11, None, false);
        assert_eq!(
            again.iter().map(|i| i.id).collect::<Vec<_>>(),
            vec![first[0].id]
        );
        fx.announce(&again);
        assert!(fx.day_run(12, None, false).is_empty());
    }

    #[test]
    fn a_level_shift_followed_by_findings_is_one_incident() {
        let mut fx = fixture();
        let new = fx.day_run(10, Some(Check::LevelShift), false);
        assert_eq!(new.len(), 1);
        fx.announce(&new);
        for d in 11..=14 {
            assert!(
                fx.day_run(d, Some(Check::Seasonal), false).is_empty(),
                "day {d}"
            );
        }
        let all = fx.store.incidents().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(
            all[0].worst_check,
            Check::LevelShift,
            "shift outranks later outliers"
        );
        let findings = fx.store.findings_of_incident(all[0].id).unwrap();
        assert_eq!(findings.len(), 5);
    }

    #[test]
    fn each_series_has_its_own_incidents_one_per_lane() {
        let mut fx = fixture();
        let run = fx.store.begin_run(RunKind::Once, now()).unwrap();
        let mut missing = finding("orders", "eu", 10, Check::Missing);
        missing.hit.value = f64::NAN;
        missing.hit.score = 0.0;
        let fs = [
            finding("orders", "eu", 11, Check::Seasonal),
            missing,
            finding("orders", "us", 10, Check::Seasonal),
            finding("misc", "us", 10, Check::Seasonal),
        ];
        let new = record(&mut fx.store, run, &fs, &[], &fx.config, now(), false).unwrap();
        assert_eq!(new.len(), 4);
        let eu: Vec<&Incident> = new
            .iter()
            .filter(|i| i.key == key("orders", "eu"))
            .collect();
        let lanes: Vec<(Lane, Check, usize)> = eu
            .iter()
            .map(|i| (i.lane, i.worst.hit.check, i.findings.len()))
            .collect();
        assert_eq!(
            lanes,
            vec![
                (Lane::Export, Check::Missing, 1),
                (Lane::Statistical, Check::Seasonal, 1)
            ]
        );
        assert!(eu[0].worst.hit.value.is_nan(), "NaN survives the store");
        // The export problem is not Sam's: no source owner and no default here.
        assert_eq!(eu[0].owner, None);
        assert_eq!(
            eu[1].owner.as_ref().map(|o| o.email.to_string()).as_deref(),
            Some("sam@example.com")
        );
        let misc = new.iter().find(|i| i.key.metric == "misc").unwrap();
        assert_eq!(misc.owner, None, "no rule and no default owner");
    }

    #[test]
    fn a_data_problem_is_asked_once_and_goes_to_the_sources_owner() {
        let mut fx = fixture();
        fx.config.sources[0].owner = Some("Data team <data@example.com>".parse().unwrap());
        let run = fx.store.begin_run(RunKind::Once, now()).unwrap();
        // a repeated value, also far from the weekday's usual level: one
        // data problem, not also an outlier
        let mut stale = finding("orders", "eu", 10, Check::Stale);
        stale.hit.score = 0.0;
        let fs = [
            stale,
            finding("orders", "eu", 10, Check::Seasonal),
            finding("orders", "us", 10, Check::Seasonal),
        ];
        let new = record(&mut fx.store, run, &fs, &[], &fx.config, now(), false).unwrap();
        let got: Vec<(String, Check, Option<String>)> = new
            .iter()
            .map(|i| {
                (
                    i.key.to_string(),
                    i.worst.hit.check,
                    i.owner.as_ref().map(|o| o.email.to_string()),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "orders{region=eu}".to_string(),
                    Check::Stale,
                    Some("data@example.com".to_string())
                ),
                (
                    "orders{region=us}".to_string(),
                    Check::Seasonal,
                    Some("sam@example.com".to_string())
                ),
            ]
        );
        // without a source owner, the metric's owner checks it
        fx.config.sources[0].owner = None;
        let run = fx.store.begin_run(RunKind::Once, now()).unwrap();
        let mut stale = finding("orders", "eu", 11, Check::Stale);
        stale.hit.score = 0.0;
        let new = record(&mut fx.store, run, &[stale], &[], &fx.config, now(), false).unwrap();
        let eu = new.iter().find(|i| i.key == key("orders", "eu")).unwrap();
        assert_eq!(
            eu.owner.as_ref().map(|o| o.email.to_string()).as_deref(),
            Some("sam@example.com")
        );
    }

    #[test]
    fn a_late_export_does_not_swallow_a_later_outlier_nor_the_reverse() {
        let mut fx = fixture();
        // The export stopped after day 9: `late` from day 10, announced.
        let late = fx.day_run(10, Some(Check::Late), false);
        assert_eq!(late.len(), 1);
        assert_eq!(late[0].lane, Lane::Export);
        fx.announce(&late);
        // Data arrives again and day 11 is a strong seasonal outlier: news.
        let run = fx.store.begin_run(RunKind::Once, now()).unwrap();
        let mut f = finding("revenue", "eu", 11, Check::Seasonal);
        f.hit.p_value = 1e-27;
        f.hit.score = -12.0;
        let new = record(
            &mut fx.store,
            run,
            &[f],
            &[evaluated("revenue", "eu", 11)],
            &fx.config,
            now(),
            false,
        )
        .unwrap();
        assert_eq!(new.len(), 1, "{new:?}");
        assert_ne!(new[0].id, late[0].id);
        assert_eq!(
            (new[0].lane, new[0].worst.hit.check),
            (Lane::Statistical, Check::Seasonal)
        );
        fx.announce(&new);
        // The other way round: an open outlier incident does not hide a
        // data-health problem, and the late incident stays separate.
        let stale = fx.day_run(12, Some(Check::Stale), false);
        assert_eq!(stale.len(), 1, "{stale:?}");
        assert_eq!(stale[0].lane, Lane::Health);
        fx.announce(&stale);
        // A finding of a lane that already has an open incident joins it.
        assert!(fx.day_run(13, Some(Check::Variance), false).is_empty());
        assert_eq!(fx.store.incidents().unwrap().len(), 3);
    }

    #[test]
    fn export_problems_go_to_the_source_owner_and_outliers_to_the_metric_owner() {
        let mut fx = fixture();
        let data: Mailbox = "Data <data@example.com>".parse().unwrap();
        let team: Mailbox = "Team <team@example.com>".parse().unwrap();
        fx.config.sources[0].owner = Some(data.clone());
        let run = fx.store.begin_run(RunKind::Once, now()).unwrap();
        let fs = [
            finding("revenue", "eu", 10, Check::Late),
            finding("orders", "eu", 10, Check::Missing),
            finding("revenue", "us", 10, Check::Seasonal),
        ];
        let new = record(&mut fx.store, run, &fs, &[], &fx.config, now(), false).unwrap();
        let owners: Vec<(String, Option<String>)> = new
            .iter()
            .map(|i| {
                (
                    format!("{} {}", i.key, i.worst.hit.check),
                    i.owner.as_ref().map(|o| o.email.to_string()),
                )
            })
            .collect();
        assert_eq!(new.len(), 3, "{owners:?}");
        for i in &new {
            let want = match i.worst.hit.check {
                Check::Late | Check::Missing => "data@example.com",
                _ => "ana@example.com",
            };
            let got = i.owner.as_ref().map(|o| o.email.to_string());
            assert_eq!(got.as_deref(), Some(want), "{owners:?}");
        }
        // Without a source owner: owners.default, never the metric's rule.
        fx.config.sources[0].owner = None;
        assert_eq!(
            owner_for(&fx.config, Lane::Export, "shop", &key("revenue", "eu")),
            None
        );
        fx.config.owners.default = Some(team.clone());
        assert_eq!(
            owner_for(&fx.config, Lane::Export, "shop", &key("revenue", "eu")),
            Some(&team)
        );
        assert_eq!(
            owner_for(&fx.config, Lane::Statistical, "shop", &key("revenue", "eu"))
                .map(|m| m.email.to_string()),
            Some("ana@example.com".to_string())
        );
    }

    #[test]
    fn backfill_keeps_data_dated_on_the_review_day_announceable() {
        let mut fx = fixture();
        // Wed 2 Dec 2020 12:00 UTC: the WBR (Wed 10:00 London) was two hours ago.
        let at = Utc.with_ymd_and_hms(2020, 12, 2, 12, 0, 0).unwrap();
        let run = fx.store.begin_run(RunKind::Backfill, at).unwrap();
        let fs = [
            // Tue 1 Dec: complete before the review, so reviewed there.
            finding("revenue", "eu", 31, Check::Seasonal),
            // Wed 2 Dec (00:00): the review day itself, not over at 10:00.
            finding("revenue", "us", 32, Check::Seasonal),
        ];
        let evals = [
            evaluated("revenue", "eu", 32),
            evaluated("revenue", "us", 32),
        ];
        let pending = record(&mut fx.store, run, &fs, &evals, &fx.config, at, true).unwrap();
        let keys: Vec<&SeriesKey> = pending.iter().map(|i| &i.key).collect();
        assert_eq!(keys, vec![&key("revenue", "us")]);
    }

    #[test]
    fn backfill_marks_old_incidents_past_and_the_daemon_never_announces_them() {
        let mut fx = fixture();
        let run = fx.store.begin_run(RunKind::Backfill, now()).unwrap();
        // Old incident (days 2-3) and a recent one (day 28, after Wed 25 Nov 10:00).
        let fs = [
            finding("revenue", "eu", 2, Check::Seasonal),
            finding("revenue", "eu", 3, Check::Seasonal),
            finding("revenue", "eu", 28, Check::Seasonal),
        ];
        let pending = record(
            &mut fx.store,
            run,
            &fs,
            &[evaluated("revenue", "eu", 29)],
            &fx.config,
            now(),
            true,
        )
        .unwrap();
        assert_eq!(pending.len(), 1, "only the recent incident is announceable");
        assert_eq!(pending[0].opened_at_ts, day(28));
        let all = fx.store.incidents().unwrap();
        assert_eq!(all.len(), 2);
        assert!(all[0].past && !all[1].past);
        // A daemon run afterwards (re-reporting history) announces nothing past.
        let run = fx.store.begin_run(RunKind::Run, now()).unwrap();
        let again = record(
            &mut fx.store,
            run,
            &fs,
            &[evaluated("revenue", "eu", 29)],
            &fx.config,
            now(),
            false,
        )
        .unwrap();
        let ids: Vec<i64> = again.iter().map(|i| i.id).collect();
        assert_eq!(ids, vec![all[1].id]);
    }
}
