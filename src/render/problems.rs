//! Problems with the data rather than outliers in it, as lines for the data
//! team: export incidents (late, missing, unreadable) one line per source and
//! problem, data-health incidents (stale, outage, bounds, max change) one
//! line each, and the subject words for both.
//!
//! Must not: decide who hears about them (that is `alert`) or carry markup.

use std::collections::{BTreeMap, BTreeSet};

use super::ItemExtras;
use super::words::{period_label, series_label, why};
use crate::config::SourceConfig;
use crate::fmt::amount;
use crate::model::{Check, Finding, Granularity, Incident, Lane, format_ts};

/// Series time (naive wall-clock ms of the source) as `2024-07-02 06:00`.
fn wall_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.naive_utc().format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// `a` or `a to b` for a span of periods.
fn span(lo: i64, hi: i64, g: Granularity) -> String {
    if lo == hi {
        format_ts(lo, g)
    } else {
        format!("{} to {}", format_ts(lo, g), format_ts(hi, g))
    }
}

/// `; 2 series affected: orders (region=eu), visits` — names only when few.
fn affected(labels: &[String]) -> String {
    let n = labels.len();
    if n <= 3 {
        format!("; {n} series affected: {}", labels.join(", "))
    } else {
        format!("; {n} series affected")
    }
}

/// One export problem of one source, for the data team.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportLine {
    /// Source name.
    pub source: String,
    /// `late` or `missing data`, for the subject.
    pub what: &'static str,
    /// The whole line, e.g. `shop: export late, newest data 2024-06-30,
    /// expected by 2024-07-02 00:00 (UTC); 60 series affected`.
    pub line: String,
}

/// Export incidents (late, missing) as one line per source and problem,
/// instead of one item per series: the data team fixes one export, not 60
/// metrics. `sources` gives each source's expected delay and timezone.
pub fn export_lines(incidents: &[Incident], sources: &[SourceConfig]) -> Vec<ExportLine> {
    #[derive(Default)]
    struct Acc {
        /// Newest data before each late series' gap, with its granularity.
        late: Vec<(i64, Granularity)>,
        late_series: Vec<String>,
        /// Every missing period, with its granularity.
        missing: Vec<(i64, Granularity)>,
        missing_series: Vec<String>,
    }
    let mut by_source: BTreeMap<&str, Acc> = BTreeMap::new();
    let mut unreadable = Vec::new();
    for i in incidents.iter().filter(|i| i.lane == Lane::Export) {
        if i.key.is_export() {
            // the export itself: its newest problem, in the loader's words
            if let Some(f) = i.findings.iter().max_by_key(|f| f.hit.ts) {
                let since = if i.opened_at_ts < f.hit.ts {
                    format!(" (since {})", format_ts(i.opened_at_ts, f.granularity))
                } else {
                    String::new()
                };
                unreadable.push(ExportLine {
                    source: i.source.clone(),
                    what: "unreadable",
                    line: format!(
                        "{}: the export could not be used on {}{since}: {}",
                        i.source,
                        format_ts(f.hit.ts, f.granularity),
                        f.hit.note.as_deref().unwrap_or("no detail")
                    ),
                });
            }
            continue;
        }
        let acc = by_source.entry(i.source.as_str()).or_default();
        // The newest late finding: it starts at the first absent period.
        if let Some(f) = i
            .findings
            .iter()
            .filter(|f| f.hit.check == Check::Late)
            .max_by_key(|f| f.hit.ts)
        {
            let newest = f.hit.ts.saturating_sub(f.granularity.step_ms());
            acc.late.push((newest, f.granularity));
            acc.late_series.push(series_label(i));
        }
        let missing: Vec<&Finding> = i
            .findings
            .iter()
            .filter(|f| f.hit.check == Check::Missing)
            .collect();
        if !missing.is_empty() {
            acc.missing
                .extend(missing.iter().map(|f| (f.hit.ts, f.granularity)));
            acc.missing_series.push(series_label(i));
        }
    }
    let mut out = Vec::new();
    for (source, acc) in by_source {
        let cfg = sources.iter().find(|s| s.name == source);
        if let (Some(lo), Some(hi)) = (
            acc.late.iter().min_by_key(|(t, _)| *t),
            acc.late.iter().max_by_key(|(t, _)| *t),
        ) {
            let newest = span(lo.0, hi.0, hi.1);
            // As detect::late decides it: the period after the newest one
            // must have ended `expected_delay` ago.
            let due = cfg.map(|c| {
                let delay = i64::try_from(c.expected_delay.as_millis()).unwrap_or(i64::MAX);
                let at =
                    hi.0.saturating_add(hi.1.step_ms())
                        .saturating_add(hi.1.ends_after(c.dialect.period_end))
                        .saturating_add(delay);
                format!(", expected by {} ({})", wall_time(at), c.timezone.name())
            });
            out.push(ExportLine {
                source: source.to_string(),
                what: "late",
                line: format!(
                    "{source}: export late, newest data {newest}{}{}",
                    due.unwrap_or_default(),
                    affected(&acc.late_series)
                ),
            });
        }
        if let (Some(lo), Some(hi)) = (
            acc.missing.iter().min_by_key(|(t, _)| *t),
            acc.missing.iter().max_by_key(|(t, _)| *t),
        ) {
            let periods: BTreeSet<i64> = acc.missing.iter().map(|(t, _)| *t).collect();
            let when = if periods.len() == 1 {
                format!("no data for {}", format_ts(hi.0, hi.1))
            } else {
                format!(
                    "no data for {} periods between {}",
                    periods.len(),
                    span(lo.0, hi.0, hi.1).replace(" to ", " and ")
                )
            };
            out.push(ExportLine {
                source: source.to_string(),
                what: "missing data",
                line: format!("{source}: {when}{}", affected(&acc.missing_series)),
            });
        }
    }
    out.extend(unreadable);
    out
}

/// A data problem on an export's rows (`stale`, `outage`, `bounds`,
/// `max_change`): checked and fixed at the source, not explained as an
/// outlier, so it is a line of its own section, once per incident, saying
/// what is known.
#[derive(Debug, Clone, PartialEq)]
pub struct ProblemLine {
    /// The incident.
    pub id: i64,
    /// `stale`, `outage`, … for the subject.
    pub what: &'static str,
    /// The series, for the subject.
    pub series: String,
    /// The whole line, e.g. `web: sessions (region=eu): the same value
    /// 69,860 in every period since 2025-03-06 (4 periods)`.
    pub line: String,
}

/// Data-health incidents (the caller's, in its order) as [`ProblemLine`]s,
/// one each, in the same order.
pub(super) fn problem_lines(health: &[Incident], extras: &ItemExtras) -> Vec<ProblemLine> {
    health
        .iter()
        .map(|i| {
            let f = &i.worst;
            let g = i.granularity;
            let unit = extras.unit_of(i);
            let since = format_ts(i.opened_at_ts, g);
            let n = i.periods();
            let periods = if n == 1 {
                "1 period".to_string()
            } else {
                format!("{n} periods")
            };
            let known = match f.hit.check {
                Check::Stale => format!(
                    "the same value {} in every period since {since} ({periods} flagged)",
                    amount(f.hit.value, unit)
                ),
                Check::Outage => format!(
                    "zero since {since} ({periods} flagged), where it is usually around {}",
                    amount(f.hit.expected, unit)
                ),
                _ => format!("{}: {} ({periods} flagged)", period_label(i), why(f)),
            };
            ProblemLine {
                id: i.id,
                what: f.hit.check.as_str(),
                series: series_label(i),
                line: format!("{}: {}: {known}", i.source, series_label(i)),
            }
        })
        .collect()
}

/// `data problem: sessions (region=eu) stale`, joined by commas.
pub(super) fn problem_subject(lines: &[ProblemLine]) -> String {
    let noun = if lines.len() == 1 {
        "data problem"
    } else {
        "data problems"
    };
    let words: Vec<String> = lines
        .iter()
        .map(|l| format!("{} {}", l.series, l.what))
        .collect();
    format!("{noun}: {}", words.join(", "))
}

/// `shop late`, `shop late and missing data`, per source, joined by commas.
pub(super) fn export_subject(lines: &[ExportLine]) -> String {
    let mut parts: Vec<(String, Vec<&str>)> = Vec::new();
    for l in lines {
        match parts.iter_mut().find(|(s, _)| *s == l.source) {
            Some((_, whats)) => whats.push(l.what),
            None => parts.push((l.source.clone(), vec![l.what])),
        }
    }
    let words: Vec<String> = parts
        .iter()
        .map(|(s, w)| format!("{s} {}", w.join(" and ")))
        .collect();
    let noun = if words.len() == 1 {
        "export problem"
    } else {
        "export problems"
    };
    format!("{noun}: {}", words.join(", "))
}
