//! Email text: the digest one owner receives, as subject, plain text and HTML.
//!
//! Pure: everything comes in as arguments (incidents, the review settings,
//! `now`), nothing is read from the clock, the store or the network. The
//! review calendar it phrases the subject around is [`crate::review`]'s.
//!
//! Must not: decide who gets what (that is `alert`), or send anything; it
//! imports nothing from `alert`.

pub mod chart;
pub mod raster;
pub mod reminders;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use lettre::message::Mailbox;

use crate::config::{ReviewConfig, SourceConfig};
use crate::model::{
    Check, Finding, Granularity, Incident, Lane, Side, format_ts, sort_by_severity,
};
use crate::review::{deadline, next_review};

/// A rendered digest.
#[derive(Debug, Clone, PartialEq)]
pub struct Digest {
    /// Subject line.
    pub subject: String,
    /// text/plain body.
    pub text: String,
    /// text/html body.
    pub html: String,
    /// Chart images the HTML shows inline (`cid:` links), at most [`MAX_CHARTS`].
    pub images: Vec<Image>,
}

/// An inline image of a message.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// Content-ID without angle brackets; the HTML refers to `cid:{cid}`.
    pub cid: String,
    /// PNG bytes.
    pub png: Vec<u8>,
}

impl Digest {
    /// The HTML part as a page a browser opens on its own: each inline chart
    /// (`cid:` link, which only a mail client resolves) becomes a `data:` URI.
    pub fn standalone_html(&self) -> String {
        use base64::Engine as _;
        let mut html = self.html.clone();
        for img in &self.images {
            let data = base64::engine::general_purpose::STANDARD.encode(&img.png);
            html = html.replace(
                &format!("src=\"cid:{}\"", img.cid),
                &format!("src=\"data:image/png;base64,{data}\""),
            );
        }
        html
    }
}

/// Incident id → the recent values of its series (the stored history, see
/// `crate::history`), from which a digest draws each item's chart.
pub type Charts = BTreeMap<i64, Vec<(i64, f64)>>;

/// How a digest item's metric stands against plan, in the report's words
/// and number formats (computed by `report::plan_line`; render only prints it).
#[derive(Debug, Clone, PartialEq)]
pub struct PlanLine {
    /// The period compared, e.g. "Month to date".
    pub period: String,
    /// The metric's value over it, formatted (`1,234`, `£5,600`).
    pub actual: String,
    /// The plan's target over it, formatted.
    pub plan: String,
    /// Actual against plan: `-5.1%` (or bps for rates).
    pub change: String,
}

impl PlanLine {
    /// `Month to date: 1,234 vs plan 1,300 (-5.1%)`.
    pub fn line(&self) -> String {
        format!(
            "{}: {} vs plan {} ({})",
            self.period, self.actual, self.plan, self.change
        )
    }
}

/// Incident id → its plan line, for items whose metric has plan targets.
pub type PlanLines = BTreeMap<i64, PlanLine>;

/// What the alert stage adds to a digest's items from the config.
#[derive(Debug, Clone, Default)]
pub struct ItemExtras {
    /// Per incident id, its "vs plan" line.
    pub plans: PlanLines,
    /// Per metric, its unit (`£`, `ms`), from `[[report.metric]]`.
    pub units: BTreeMap<String, String>,
    /// Said at the top of the digest: what the run's catch-up skipped.
    pub notice: Option<String>,
}

impl ItemExtras {
    /// The unit of incident `i`'s metric ("" when none).
    pub fn unit_of(&self, i: &Incident) -> &str {
        self.units.get(&i.key.metric).map_or("", String::as_str)
    }
}

/// Charts in one digest at most; further items link to their pages' charts.
pub const MAX_CHARTS: usize = 12;

/// Links to the explanation pages, signed by the alert stage (render has no
/// key); passed only when `[web]` is configured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Links {
    /// Incident id → the page where its owner explains it.
    pub incidents: BTreeMap<i64, String>,
    /// The page listing all the owner's open items.
    pub open_items: String,
}

/// The button-like "Explain this" link of one item (inline styles: mail
/// clients drop `<style>`).
fn explain_button(url: &str) -> String {
    format!(
        "<p><a href=\"{}\" style=\"display: inline-block; padding: 6px 14px; background: #1a56db; color: #ffffff; text-decoration: none; border-radius: 4px; font-weight: bold\">Explain this</a></p>\n",
        escape_html(url)
    )
}

/// `Wed 2 Dec 10:00`.
pub fn short_time(t: &DateTime<Tz>) -> String {
    t.format("%a %-d %b %H:%M").to_string()
}

/// Escape text for HTML element content and quoted attributes.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `1 outlier`, `3 outliers`.
pub fn count_outliers(n: usize) -> String {
    if n == 1 {
        "1 outlier".to_string()
    } else {
        format!("{n} outliers")
    }
}

pub use crate::fmt::{amount, group_thousands, num, pct, with_unit};

/// Deviation of a finding's actual from its expected value, in percent of expected.
pub fn deviation_pct(f: &Finding) -> Option<f64> {
    deviation(f.hit.value, f.hit.expected)
}

/// Deviation of `actual` from `expected`, in percent of expected.
pub fn deviation(actual: f64, expected: f64) -> Option<f64> {
    let d = (actual - expected) / expected.abs() * 100.0;
    (d.is_finite() && expected != 0.0).then_some(d)
}

/// `6 weeks of history`, `20 days of history`.
fn history_words(f: &Finding) -> String {
    let h = f.hit.history;
    let per_day = f.granularity.points_per_day();
    let (n, unit) = match f.granularity {
        Granularity::Week => (h, "week"),
        Granularity::Day if h >= 14 => (h / 7, "week"),
        Granularity::Day => (h, "day"),
        _ if h >= per_day * 14 => (h / (per_day * 7), "week"),
        _ if h >= per_day => (h / per_day, "day"),
        Granularity::Hour => (h, "hour"),
        Granularity::Minutes(_) => (h, "period"),
    };
    let s = if n == 1 { "" } else { "s" };
    format!("{n} {unit}{s} of history")
}

/// The level the seasonal check compares with, in words.
fn seasonal_baseline(g: Granularity) -> &'static str {
    match g {
        Granularity::Day => "the same weekday's usual level",
        Granularity::Week => "the usual weekly level",
        Granularity::Hour | Granularity::Minutes(_) => "the usual level for this hour of the week",
    }
}

/// One line saying why a finding is an outlier, in words.
pub fn why(f: &Finding) -> String {
    let side = match f.hit.side {
        Side::Down => "below",
        Side::Up => "above",
    };
    let amount = match deviation_pct(f) {
        Some(d) => format!("{:.0}% {side}", d.abs()),
        None => side.to_string(),
    };
    let mut line = match f.hit.check {
        Check::Seasonal => format!(
            "{amount} {}; {}",
            seasonal_baseline(f.granularity),
            history_words(f)
        ),
        Check::Variance => format!("{amount} its recent usual level; {}", history_words(f)),
        Check::Holiday => format!("{amount} the same holiday last year; {}", history_words(f)),
        Check::LevelShift => format!(
            "moved to a new level {amount} the previous one and stayed there; {}",
            history_words(f)
        ),
        Check::Outage => format!(
            "dropped to zero where it is usually around {}",
            num(f.hit.expected)
        ),
        Check::Missing => "no data arrived for this period".to_string(),
        Check::Stale => format!(
            "the same value ({}) repeated period after period",
            num(f.hit.value)
        ),
        // the note (the loader's error) follows
        Check::Late if f.key.is_export() => "the export could not be used".to_string(),
        Check::Late => "the newest data is overdue: the export has not been updated".to_string(),
        Check::Bounds => match (f.hit.value < f.hit.lower, f.hit.value > f.hit.upper) {
            (true, _) => format!(
                "{} is below the allowed minimum {}",
                num(f.hit.value),
                num(f.hit.lower)
            ),
            (_, true) => format!(
                "{} is above the allowed maximum {}",
                num(f.hit.value),
                num(f.hit.upper)
            ),
            _ => format!("{} is outside the allowed range", num(f.hit.value)),
        },
        Check::MaxChange => format!(
            "changed {} against the previous period, more than the metric allows",
            pct(deviation_pct(f))
        ),
        Check::Restated => {
            let (old, new) = restated_pair(f);
            format!(
                "value for {} restated from {old} to {new} after it was flagged",
                format_ts(f.hit.ts, f.granularity),
            )
        }
    };
    if let Some(note) = f.hit.note.as_deref().filter(|n| !n.is_empty()) {
        line.push_str("; ");
        line.push_str(note);
    }
    line
}

/// `revenue (region=eu, channel=web)`, or `revenue`.
fn series_label(i: &Incident) -> String {
    i.key.label()
}

/// `2020-11-29`, or `2020-11-27 to 2020-11-29 (3 periods flagged; figures
/// of the worst, 2020-11-28)`: an incident is shown by its worst finding
/// everywhere (digest, page, pre-read), with its span.
fn period_label(i: &Incident) -> String {
    let g = i.granularity;
    let n = i.periods();
    if n <= 1 || i.opened_at_ts == i.last_finding_ts {
        format_ts(i.last_finding_ts, g)
    } else {
        format!(
            "{} to {} ({n} periods flagged; figures of the worst, {})",
            format_ts(i.opened_at_ts, g),
            format_ts(i.last_finding_ts, g),
            format_ts(i.worst.hit.ts, g)
        )
    }
}

/// A restatement's old and new value in words: rounded like every number,
/// unless rounding would make them look equal; a gone period says so.
fn restated_pair(f: &Finding) -> (String, String) {
    let (old, new) = (num(f.hit.expected), num(f.hit.value));
    if f.hit.value.is_nan() {
        (
            old,
            "nothing (the period is gone from the export)".to_string(),
        )
    } else if old == new {
        (f.hit.expected.to_string(), f.hit.value.to_string())
    } else {
        (old, new)
    }
}

/// The numbers line: `580 vs expected 1,000 (normal range 900 to 1,100), -42.0%`;
/// for a restatement `now 450, was 580 when flagged, -22.4%`.
fn numbers_label(f: &Finding, unit: &str) -> String {
    if f.hit.check == Check::Restated {
        let (old, new) = restated_pair(f);
        return format!(
            "now {}, was {} when flagged, {}",
            with_unit(new, unit),
            with_unit(old, unit),
            pct(deviation_pct(f))
        );
    }
    format!(
        "{} vs expected {} (normal range {} to {}), {}",
        amount(f.hit.value, unit),
        amount(f.hit.expected, unit),
        amount(f.hit.lower, unit),
        amount(f.hit.upper, unit),
        pct(deviation_pct(f))
    )
}

fn greeting_name(owner: &Mailbox) -> String {
    owner
        .name
        .as_deref()
        .filter(|n| !n.trim().is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| owner.email.to_string())
}

/// The request and deadline paragraph, without markup.
/// With `links`, the owner explains on the web page; without, by replying.
fn ask(review: &ReviewConfig, now: DateTime<Utc>, n: usize, links: bool) -> (String, String) {
    let next = next_review(review, now);
    let due = deadline(review, now);
    let tz = review.timezone.name();
    let each = if n == 1 { "it" } else { "each one" };
    let how = if links {
        format!("Please explain {each} with its \u{201c}Explain this\u{201d} link")
    } else {
        format!("Please reply to this email and explain {each}")
    };
    let first = format!(
        "callout found {} in metrics you own. {how}",
        count_outliers(n)
    );
    let when = if due.with_timezone(&Utc) > now {
        format!(
            "before {} ({tz}), {} hours before the {} on {}.",
            short_time(&due),
            review.due_hours_before,
            review.name,
            short_time(&next)
        )
    } else {
        format!(
            "as soon as possible: explanations were due {} ({tz}), and the {} is on {}.",
            short_time(&due),
            review.name,
            short_time(&next)
        )
    };
    (first, when)
}

/// The subject's part for outliers: it states the deadline (the review is a
/// `due_hours_before` later), e.g. `3 outliers to explain by Tue 1 Dec 10:00
/// (WBR Wed 2 Dec 10:00)`.
fn outliers_subject(review: &ReviewConfig, now: DateTime<Utc>, n: usize) -> String {
    let next = next_review(review, now);
    let due = deadline(review, now);
    if due.with_timezone(&Utc) > now {
        format!(
            "{} to explain by {} ({} {})",
            count_outliers(n),
            short_time(&due),
            review.name,
            short_time(&next)
        )
    } else {
        format!(
            "{} to explain now (were due {}; {} {})",
            count_outliers(n),
            short_time(&due),
            review.name,
            short_time(&next)
        )
    }
}

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
fn problem_lines(health: &[Incident], extras: &ItemExtras) -> Vec<ProblemLine> {
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
fn problem_subject(lines: &[ProblemLine]) -> String {
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
fn export_subject(lines: &[ExportLine]) -> String {
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

/// Render the digest for one owner. Outliers to explain (statistical and
/// data-health incidents) are shown most severe first; export problems
/// (late, missing) as one line per source after them. With `links` (`[web]`
/// configured), each outlier has its "Explain this" link and the digest one
/// to all the owner's open items. An item with a line in `plans` says how
/// its metric stands against plan.
#[allow(
    clippy::too_many_arguments,
    reason = "each is one independent input of the digest"
)]
pub fn digest(
    owner: &Mailbox,
    incidents: &[Incident],
    review: &ReviewConfig,
    sources: &[SourceConfig],
    now: DateTime<Utc>,
    links: Option<&Links>,
    charts: &Charts,
    extras: &ItemExtras,
) -> Digest {
    let plans = &extras.plans;
    let exports = export_lines(incidents, sources);
    let mut health: Vec<Incident> = incidents
        .iter()
        .filter(|i| i.lane == Lane::Health)
        .cloned()
        .collect();
    sort_by_severity(&mut health);
    let problems = problem_lines(&health, extras);
    let mut items: Vec<Incident> = incidents
        .iter()
        .filter(|i| !matches!(i.lane, Lane::Export | Lane::Health))
        .cloned()
        .collect();
    sort_by_severity(&mut items);
    let n = items.len();
    let mut parts = Vec::new();
    if n > 0 {
        parts.push(outliers_subject(review, now, n));
    }
    if !problems.is_empty() {
        parts.push(problem_subject(&problems));
    }
    if !exports.is_empty() {
        parts.push(export_subject(&exports));
    }
    let subject = format!("[callout] {}", parts.join("; "));
    let name = greeting_name(owner);
    let (first, when) = ask(review, now, n, links.is_some());
    let link_of = |id: i64| links.and_then(|l| l.incidents.get(&id));
    let open_items = links.filter(|_| n > 0).map(|l| {
        (
            "All your open items on one page, earlier weeks' included:",
            &l.open_items,
        )
    });
    let mut all = incidents.to_vec();
    sort_by_severity(&mut all);
    let ids: Vec<String> = items
        .iter()
        .chain(&health)
        .chain(all.iter().filter(|i| i.lane == Lane::Export))
        .map(|i| format!("#{}", i.id))
        .collect();
    let problems_intro = format!(
        "{} in the data of exports you look after (not outliers: the numbers themselves look broken). Please check {}; callout checks again on every run.",
        if problems.len() == 1 {
            "callout found a problem"
        } else {
            "callout found problems"
        },
        if problems.len() == 1 { "it" } else { "them" }
    );
    let exports_intro = format!(
        "{} in exports you look after. Please check {}; callout checks again on every run.",
        if exports.len() == 1 {
            "callout found a problem"
        } else {
            "callout found problems"
        },
        if exports.len() == 1 { "it" } else { "them" }
    );

    let mut text = String::new();
    let _ = writeln!(text, "Hello {name},");
    if let Some(note) = &extras.notice {
        let _ = write!(text, "\n{note}\n");
    }
    if n > 0 {
        let _ = write!(text, "\n{first}\n{when}\n");
    }
    for (k, i) in items.iter().enumerate() {
        let f = &i.worst;
        let _ = write!(
            text,
            "\n{}. {}\n   Period:    {}\n   Why:       {}\n   Actual:    {}\n   WoW / YoY: {} / {}\n   Check:     {} (source {})\n",
            k + 1,
            series_label(i),
            period_label(i),
            why(f),
            numbers_label(f, extras.unit_of(i)),
            pct(f.hit.wow_pct),
            pct(f.hit.yoy_pct),
            f.hit.check,
            i.source,
        );
        if let Some(p) = plans.get(&i.id) {
            let _ = writeln!(text, "   Plan:      {}", p.line());
        }
        // the URL alone on its line, so clients make it clickable whole
        match link_of(i.id) {
            Some(url) => {
                let _ = write!(text, "   Explain this:\n   {url}\n");
            }
            None => text.push_str("   Your explanation:\n"),
        }
    }
    if let Some((label, url)) = open_items {
        let _ = write!(text, "\n{label}\n{url}\n");
    }
    if !problems.is_empty() {
        let _ = write!(text, "\n{problems_intro}\n\n");
        for l in &problems {
            let _ = writeln!(text, "- {}", l.line);
            if let Some(url) = link_of(l.id) {
                let _ = writeln!(text, "  Note what you found:\n  {url}");
            }
        }
    }
    if !exports.is_empty() {
        let _ = write!(text, "\n{exports_intro}\n\n");
        for l in &exports {
            let _ = writeln!(text, "- {}", l.line);
        }
    }
    let footer = format!(
        "Sent by callout for the {}. Incidents {}.",
        review.name,
        ids.join(", ")
    );
    let _ = write!(text, "\n-- \n{footer}\n");

    let e = escape_html;
    let mut images = Vec::new();
    // an item's chart (up to MAX_CHARTS per digest): the image joins the
    // mail's parts, the tag goes where the item is
    let figure = |i: &Incident, images: &mut Vec<Image>| {
        let img = (images.len() < MAX_CHARTS)
            .then(|| chart_image(i, charts.get(&i.id)?, extras.unit_of(i)))
            .flatten();
        match img {
            Some((image, tag)) => {
                images.push(image);
                tag
            }
            None => String::new(),
        }
    };
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head>\n<body style=\"font-family: sans-serif; line-height: 1.4\">\n<p>Hello {},</p>\n",
        e(&subject),
        e(&name),
    );
    if let Some(note) = &extras.notice {
        let _ = writeln!(html, "<p><em>{}</em></p>", e(note));
    }
    if n > 0 {
        let _ = write!(
            html,
            "<p>{}\n<strong>{}</strong></p>\n<ol>\n",
            e(&first),
            e(&when)
        );
        for i in &items {
            let f = &i.worst;
            let figure = figure(i, &mut images);
            let _ = write!(
                html,
                "<li>\n<p><strong>{}</strong></p>\n{figure}<table cellpadding=\"2\">\n<tr><th align=\"left\">Period</th><td>{}</td></tr>\n<tr><th align=\"left\">Why</th><td>{}</td></tr>\n<tr><th align=\"left\">Actual</th><td>{}</td></tr>\n<tr><th align=\"left\">WoW / YoY</th><td>{} / {}</td></tr>\n<tr><th align=\"left\">Check</th><td>{} (source {})</td></tr>\n{}</table>\n{}</li>\n",
                e(&series_label(i)),
                e(&period_label(i)),
                e(&why(f)),
                e(&numbers_label(f, extras.unit_of(i))),
                e(&pct(f.hit.wow_pct)),
                e(&pct(f.hit.yoy_pct)),
                e(f.hit.check.as_str()),
                e(&i.source),
                plans.get(&i.id).map_or_else(String::new, |p| format!(
                    "<tr><th align=\"left\">Plan</th><td>{}</td></tr>\n",
                    e(&p.line())
                )),
                match link_of(i.id) {
                    Some(url) => explain_button(url),
                    None => "<p><em>Your explanation:</em></p>\n".to_string(),
                },
            );
        }
        let _ = writeln!(html, "</ol>");
        if let Some((_, url)) = open_items {
            let _ = writeln!(
                html,
                "<p>See <a href=\"{}\">all your open items</a> on one page, earlier weeks&#39; included.</p>",
                e(url),
            );
        }
    }
    if !problems.is_empty() {
        let _ = write!(html, "<p>{}</p>\n<ul>\n", e(&problems_intro));
        for (l, i) in problems.iter().zip(&health) {
            let link = link_of(l.id).map_or_else(String::new, |url| {
                format!(" <a href=\"{}\">Note what you found</a>", e(url))
            });
            // the chart shows what the words say: the flat line, the zeros
            let figure = figure(i, &mut images);
            let _ = writeln!(html, "<li><p>{}{link}</p>\n{figure}</li>", e(&l.line));
        }
        let _ = writeln!(html, "</ul>");
    }
    if !exports.is_empty() {
        let _ = write!(html, "<p>{}</p>\n<ul>\n", e(&exports_intro));
        for l in &exports {
            let _ = writeln!(html, "<li>{}</li>", e(&l.line));
        }
        let _ = writeln!(html, "</ul>");
    }
    let _ = write!(
        html,
        "<p style=\"color: #666\">{}</p>\n</body></html>\n",
        e(&footer)
    );
    Digest {
        subject,
        text,
        html,
        images,
    }
}

/// The chart of one digest item (its series' last six weeks, the flagged
/// points and their normal ranges) as an inline PNG, with the `<img>` tag
/// and caption that show it; `None` when there is nothing to draw.
fn chart_image(i: &Incident, recent: &[(i64, f64)], unit: &str) -> Option<(Image, String)> {
    let band: Vec<chart::Band> = i
        .findings
        .iter()
        .map(|f| chart::Band {
            ts: f.hit.ts,
            lower: f.hit.lower,
            upper: f.hit.upper,
            expected: f.hit.expected,
        })
        .collect();
    let marks: Vec<(i64, f64)> = i.findings.iter().map(|f| (f.hit.ts, f.hit.value)).collect();
    let title = format!("{}, last 6 weeks", series_label(i));
    let c = chart::Chart {
        title: &title,
        points: recent,
        band: &band,
        marks: &marks,
        x_format: "%d %b",
        unit,
    };
    let png = chart::png(&c)?;
    let (lo, hi) = chart::value_range(&c)?;
    let cid = format!("chart-{}@callout", i.id);
    let (w, h) = chart::PNG_SIZE;
    // the legend names only what is drawn: a data problem has no range
    let ranged = band
        .iter()
        .any(|b| b.lower.is_finite() && b.upper.is_finite());
    let caption = format!(
        "Last 6 weeks, from {} to {}. Red: flagged{}.",
        amount(lo, unit),
        amount(hi, unit),
        if ranged {
            "; green: normal range (bar: expected)"
        } else {
            ""
        }
    );
    let tag = format!(
        "<img src=\"cid:{}\" width=\"{w}\" height=\"{h}\" alt=\"{}\" style=\"display: block; width: 100%; max-width: {w}px; height: auto; border: 1px solid #dddddd\">\n<p style=\"margin: 2px 0 8px; color: #666666; font-size: 12px\">{}</p>\n",
        escape_html(&cid),
        escape_html(&format!(
            "Chart of {title}: from {} to {}, flagged points in red",
            amount(lo, unit),
            amount(hi, unit)
        )),
        escape_html(&caption),
    );
    Some((Image { cid, png }, tag))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::{Hit, SeriesKey};
    use chrono::TimeZone;
    use chrono::{NaiveTime, Weekday};

    pub(crate) fn review() -> ReviewConfig {
        ReviewConfig {
            name: "WBR".into(),
            weekday: Weekday::Wed,
            time: NaiveTime::from_hms_opt(10, 0, 0).unwrap(),
            timezone: chrono_tz::Europe::London,
            due_hours_before: 24,
        }
    }

    /// Monday 30 Nov 2020, 07:00 UTC.
    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2020, 11, 30, 7, 0, 0).unwrap()
    }

    fn day(d: u32) -> i64 {
        Utc.with_ymd_and_hms(2020, 11, d, 0, 0, 0)
            .unwrap()
            .timestamp_millis()
    }

    pub(crate) fn finding(
        metric: &str,
        dims: &[(&str, &str)],
        check: Check,
        score: f64,
    ) -> Finding {
        Finding {
            source: "shop".into(),
            key: SeriesKey {
                metric: metric.into(),
                dims: dims
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            },
            granularity: Granularity::Day,
            hit: Hit {
                ts: day(29),
                value: 580.0,
                expected: 1000.0,
                lower: 900.0,
                upper: 1100.0,
                score,
                p_value: 1e-5,
                side: Side::Down,
                check,
                wow_pct: Some(-40.123),
                yoy_pct: None,
                history: 42,
                note: None,
            },
        }
    }

    pub(crate) fn incident(id: i64, f: Finding) -> Incident {
        Incident {
            id,
            source: f.source.clone(),
            key: f.key.clone(),
            lane: Lane::of(f.hit.check),
            granularity: f.granularity,
            owner: None,
            opened_at_ts: f.hit.ts,
            last_finding_ts: f.hit.ts,
            closed_at_ts: None,
            findings: vec![f.clone()],
            worst: f,
        }
    }

    fn ana() -> Mailbox {
        "Ana Ortiz <ana@example.com>".parse().unwrap()
    }

    #[test]
    fn numbers_for_people() {
        let cases = [
            (1234567.8, "1,234,568"),
            (-1500.0, "-1,500"),
            (580.0, "580"),
            (12.25, "12.2"),
            (1.5, "1.5"),
            (0.01234, "0.0123"),
            (0.0, "0"),
            (f64::NAN, "n/a"),
            // tiny values keep their significant digits, never "0"
            (1.2e-4, "0.00012"),
            (0.000_123_456, "0.000123"),
            (-4.56e-5, "-0.0000456"),
            (1e-300, "1e-300"),
            (-1.23456e-9, "-1.23e-9"),
        ];
        for (x, want) in cases {
            assert_eq!(num(x), want, "num({x})");
        }
        assert_eq!(pct(Some(-42.0)), "-42.0%");
        assert_eq!(pct(Some(3.04)), "+3.0%");
        assert_eq!(pct(None), "n/a");
    }

    #[test]
    fn why_in_words() {
        let cases = [
            (
                finding("revenue", &[], Check::Seasonal, -5.0),
                "42% below the same weekday's usual level; 6 weeks of history",
            ),
            (
                {
                    let mut f = finding("orders", &[], Check::Holiday, -5.0);
                    f.hit.note = Some("Christmas".into());
                    f.hit.history = 10;
                    f
                },
                "42% below the same holiday last year; 10 days of history; Christmas",
            ),
            (
                {
                    let mut f = finding("orders", &[], Check::Missing, 0.0);
                    f.hit.value = f64::NAN;
                    f
                },
                "no data arrived for this period",
            ),
            (
                {
                    let mut f = finding("orders", &[], Check::Bounds, 0.0);
                    f.hit.value = -3.0;
                    f.hit.lower = 0.0;
                    f
                },
                "-3 is below the allowed minimum 0",
            ),
            (
                {
                    let mut f = finding("visits", &[], Check::Seasonal, 6.0);
                    f.granularity = Granularity::Hour;
                    f.hit.side = Side::Up;
                    f.hit.value = 1500.0;
                    f.hit.history = 24 * 7 * 3 + 5;
                    f
                },
                "50% above the usual level for this hour of the week; 3 weeks of history",
            ),
        ];
        for (f, want) in cases {
            assert_eq!(why(&f), want, "{:?}", f.hit.check);
        }
    }

    #[test]
    fn severity_orders_data_health_then_score() {
        let mut items = vec![
            incident(1, finding("a", &[], Check::Seasonal, -3.0)),
            incident(2, finding("b", &[], Check::Seasonal, 9.0)),
            incident(3, finding("c", &[], Check::Missing, 0.0)),
            incident(4, finding("d", &[], Check::LevelShift, 2.0)),
        ];
        sort_by_severity(&mut items);
        let ids: Vec<i64> = items.iter().map(|i| i.id).collect();
        assert_eq!(ids, vec![3, 4, 2, 1]);
    }

    /// The test config's sources (`shop`: 24 h expected delay, UTC).
    fn sources() -> Vec<SourceConfig> {
        let text = "[[source]]\nname = \"shop\"\npath = \"shop.csv\"\ntime_column = \"date\"\ndimensions = [\"region\"]\n";
        crate::config::compile_str(
            text,
            std::path::Path::new("/tmp/callout-test.toml"),
            &|_| None,
        )
        .unwrap()
        .sources
    }

    #[test]
    fn subject_states_the_deadline_not_the_review_time() {
        let one = [incident(1, finding("revenue", &[], Check::Seasonal, -5.0))];
        let d = digest(
            &ana(),
            &one,
            &review(),
            &sources(),
            now(),
            None,
            &Charts::new(),
            &ItemExtras::default(),
        );
        assert_eq!(
            d.subject,
            "[callout] 1 outlier to explain by Tue 1 Dec 10:00 (WBR Wed 2 Dec 10:00)"
        );
        let three = [
            incident(1, finding("a", &[], Check::Seasonal, -5.0)),
            incident(2, finding("b", &[], Check::Seasonal, -5.0)),
            incident(3, finding("c", &[], Check::Seasonal, -5.0)),
        ];
        let d = digest(
            &ana(),
            &three,
            &review(),
            &sources(),
            now(),
            None,
            &Charts::new(),
            &ItemExtras::default(),
        );
        assert_eq!(
            d.subject,
            "[callout] 3 outliers to explain by Tue 1 Dec 10:00 (WBR Wed 2 Dec 10:00)"
        );
        // After the deadline the subject says so instead of naming a past time as "by".
        let late = Utc.with_ymd_and_hms(2020, 12, 1, 12, 0, 0).unwrap();
        let d = digest(
            &ana(),
            &one,
            &review(),
            &sources(),
            late,
            None,
            &Charts::new(),
            &ItemExtras::default(),
        );
        assert_eq!(
            d.subject,
            "[callout] 1 outlier to explain now (were due Tue 1 Dec 10:00; WBR Wed 2 Dec 10:00)"
        );
    }

    /// A late export of 60 series: `detect::late` reports one finding per series.
    fn late_export(n: usize) -> Vec<Incident> {
        (0..n)
            .map(|k| {
                let mut f = finding("m", &[("region", &format!("r{k:02}"))], Check::Late, 0.0);
                f.hit.value = f64::NAN;
                f.hit.expected = f64::NAN;
                f.hit.lower = f64::NAN;
                f.hit.upper = f64::NAN;
                f.hit.wow_pct = None;
                f.hit.note = Some("newest data is for 2020-11-28; expected by now".into());
                incident(100 + k as i64, f)
            })
            .collect()
    }

    #[test]
    fn each_outlier_carries_its_chart_as_an_inline_png_and_export_lines_do_not() {
        let outlier = incident(
            4,
            finding("orders<b>", &[("region", "eu")], Check::Seasonal, -5.0),
        );
        let other = incident(5, finding("revenue", &[], Check::Seasonal, -4.0));
        let late = late_export(3);
        let recent: Vec<(i64, f64)> = (0..42)
            .map(|d| {
                (
                    day(29) - (41 - d) * 86_400_000,
                    1000.0 + (d % 7) as f64 * 10.0,
                )
            })
            .collect();
        // a chart for the outlier and for the late export's series; none for `revenue`
        let mut charts: Charts = [(4, recent.clone())].into_iter().collect();
        for l in &late {
            charts.insert(l.id, recent.clone());
        }
        let mut items = vec![outlier, other];
        items.extend(late);
        let d = digest(
            &ana(),
            &items,
            &review(),
            &sources(),
            now(),
            None,
            &charts,
            &ItemExtras::default(),
        );
        assert_eq!(d.images.len(), 1, "one chart: the outlier with history");
        let img = &d.images[0];
        assert_eq!(img.cid, "chart-4@callout");
        let png = raster::decode(&img.png).unwrap();
        assert_eq!(png.width(), chart::PNG_SIZE.0 * 2);
        let tag = format!("<img src=\"cid:{}\"", img.cid);
        assert_eq!(d.html.matches("<img ").count(), 1, "{}", d.html);
        // under its own item, before the next one
        let at = d.html.find(&tag).unwrap();
        assert!(d.html.find("orders&lt;b&gt;").unwrap() < at, "{}", d.html);
        assert!(at < d.html.find("<strong>revenue").unwrap(), "{}", d.html);
        // alt text and caption: escaped, with the range drawn
        assert!(d.html.contains("alt=\"Chart of orders&lt;b&gt; (region=eu), last 6 weeks: from 580 to 1,060, flagged points in red\""), "{}", d.html);
        assert!(!d.html.contains("orders<b>"), "{}", d.html);
        assert!(!d.text.contains("cid:"), "{}", d.text);
    }

    #[test]
    fn a_late_export_is_one_line_per_source_for_the_data_team() {
        let items = late_export(60);
        let data: Mailbox = "Data team <data@example.com>".parse().unwrap();
        let d = digest(
            &data,
            &items,
            &review(),
            &sources(),
            now(),
            None,
            &Charts::new(),
            &ItemExtras::default(),
        );
        assert_eq!(d.subject, "[callout] export problem: shop late");
        let line = "shop: export late, newest data 2020-11-28, expected by 2020-12-01 00:00 (UTC); 60 series affected";
        assert!(d.text.contains(&format!("- {line}\n")), "{}", d.text);
        assert_eq!(d.text.matches("shop:").count(), 1, "{}", d.text);
        assert!(!d.text.contains("Your explanation"), "{}", d.text);
        assert!(!d.text.contains("n/a"), "{}", d.text);
        assert!(d.html.contains(&format!("<li>{line}</li>")), "{}", d.html);

        // Missing periods and a few series: named, in the same digest as an outlier.
        let mut m1 = finding("orders", &[("region", "eu")], Check::Missing, 0.0);
        m1.hit.ts = day(27);
        let mut m2 = m1.clone();
        m2.hit.ts = day(28);
        let mut gap = incident(7, m2.clone());
        gap.findings = vec![m1, m2];
        let outlier = incident(8, finding("revenue", &[], Check::Seasonal, -5.0));
        let d = digest(
            &data,
            &[gap, outlier],
            &review(),
            &sources(),
            now(),
            None,
            &Charts::new(),
            &ItemExtras::default(),
        );
        assert_eq!(
            d.subject,
            "[callout] 1 outlier to explain by Tue 1 Dec 10:00 (WBR Wed 2 Dec 10:00); export problem: shop missing data"
        );
        assert!(
            d.text.contains("- shop: no data for 2 periods between 2020-11-27 and 2020-11-28; 1 series affected: orders (region=eu)\n"),
            "{}",
            d.text
        );
        assert_eq!(d.text.matches("Your explanation").count(), 1, "{}", d.text);
    }

    #[test]
    fn plain_text_snapshot() {
        let mut a = finding("revenue", &[("region", "eu")], Check::Seasonal, -5.0);
        a.hit.ts = day(29);
        let mut inc_a = incident(7, a.clone());
        let mut a_early = a.clone();
        a_early.hit.ts = day(27);
        a_early.hit.score = -4.0;
        inc_a.opened_at_ts = day(27);
        inc_a.findings = vec![a_early, a];
        let mut m = finding("orders", &[], Check::Stale, 0.0);
        m.hit.wow_pct = None;
        // the metric's unit on every figure of its item
        let extras = ItemExtras {
            units: [("revenue".to_string(), "£".to_string())].into(),
            ..ItemExtras::default()
        };
        let d = digest(
            &ana(),
            &[inc_a, incident(9, m)],
            &review(),
            &sources(),
            now(),
            None,
            &Charts::new(),
            &extras,
        );
        // the repeated value is a data problem in its own section, saying
        // what is known (no normal range of n/a); the outlier is shown by its
        // worst finding, with its span
        let want = "\
Hello Ana Ortiz,

callout found 1 outlier in metrics you own. Please reply to this email and explain it
before Tue 1 Dec 10:00 (Europe/London), 24 hours before the WBR on Wed 2 Dec 10:00.

1. revenue (region=eu)
   Period:    2020-11-27 to 2020-11-29 (2 periods flagged; figures of the worst, 2020-11-29)
   Why:       42% below the same weekday's usual level; 6 weeks of history
   Actual:    £580 vs expected £1,000 (normal range £900 to £1,100), -42.0%
   WoW / YoY: -40.1% / n/a
   Check:     seasonal (source shop)
   Your explanation:

callout found a problem in the data of exports you look after (not outliers: the numbers themselves look broken). Please check it; callout checks again on every run.

- shop: orders: the same value 580 in every period since 2020-11-29 (1 period flagged)

-- 
Sent by callout for the WBR. Incidents #7, #9.
";
        assert_eq!(d.text, want);
    }

    #[test]
    fn html_snapshot_escapes_names_and_values() {
        let f = finding(
            "<b>rev</b>",
            &[("team & co", "\"R&D\" <eu>")],
            Check::Seasonal,
            -5.0,
        );
        let owner: Mailbox = "O'Brien <ob@example.com>".parse().unwrap();
        let d = digest(
            &owner,
            &[incident(1, f)],
            &review(),
            &sources(),
            now(),
            None,
            &Charts::new(),
            &ItemExtras::default(),
        );
        let want = "\
<!DOCTYPE html>
<html><head><meta charset=\"utf-8\"><title>[callout] 1 outlier to explain by Tue 1 Dec 10:00 (WBR Wed 2 Dec 10:00)</title></head>
<body style=\"font-family: sans-serif; line-height: 1.4\">
<p>Hello O&#39;Brien,</p>
<p>callout found 1 outlier in metrics you own. Please reply to this email and explain it
<strong>before Tue 1 Dec 10:00 (Europe/London), 24 hours before the WBR on Wed 2 Dec 10:00.</strong></p>
<ol>
<li>
<p><strong>&lt;b&gt;rev&lt;/b&gt; (team &amp; co=&quot;R&amp;D&quot; &lt;eu&gt;)</strong></p>
<table cellpadding=\"2\">
<tr><th align=\"left\">Period</th><td>2020-11-29</td></tr>
<tr><th align=\"left\">Why</th><td>42% below the same weekday&#39;s usual level; 6 weeks of history</td></tr>
<tr><th align=\"left\">Actual</th><td>580 vs expected 1,000 (normal range 900 to 1,100), -42.0%</td></tr>
<tr><th align=\"left\">WoW / YoY</th><td>-40.1% / n/a</td></tr>
<tr><th align=\"left\">Check</th><td>seasonal (source shop)</td></tr>
</table>
<p><em>Your explanation:</em></p>
</li>
</ol>
<p style=\"color: #666\">Sent by callout for the WBR. Incidents #1.</p>
</body></html>
";
        assert_eq!(d.html, want);
        assert!(!d.html.contains("<b>rev"), "raw markup leaked");
    }

    #[test]
    fn with_links_each_outlier_gets_its_explain_link_and_the_digest_one_to_all_items() {
        let evil = finding("<img src=x onerror=alert(1)>", &[], Check::Seasonal, -9.0);
        let plain = finding("orders", &[], Check::Seasonal, -5.0);
        let mut gap = finding("orders", &[], Check::Missing, 0.0);
        gap.source = "shop".into();
        let items = [incident(7, evil), incident(8, plain), incident(9, gap)];
        let links = Links {
            incidents: [
                (7, "https://c.example/e/t7\"><script>".to_string()),
                (8, "https://c.example/e/t8".to_string()),
                (9, "https://c.example/e/t9".to_string()),
            ]
            .into_iter()
            .collect(),
            open_items: "https://c.example/e/all".into(),
        };
        let d = digest(
            &ana(),
            &items,
            &review(),
            &sources(),
            now(),
            Some(&links),
            &Charts::new(),
            &ItemExtras::default(),
        );
        // plain text: each URL alone on its line, under its item; no "reply"
        let t = &d.text;
        assert!(t.contains("\n   https://c.example/e/t8\n"), "{t}");
        assert!(t.contains("\nhttps://c.example/e/all\n"), "{t}");
        assert!(!t.contains("reply to this email"), "{t}");
        assert!(!t.contains("Your explanation"), "{t}");
        assert!(
            t.find("<img").unwrap() < t.find("e/t7").unwrap()
                && t.find("e/t7").unwrap() < t.find("2. orders").unwrap(),
            "{t}"
        );
        // export problems are checked, not explained: no link
        assert!(!t.contains("e/t9"), "{t}");
        // HTML: one button per outlier, escaped around and inside the link
        let h = &d.html;
        assert_eq!(h.matches(">Explain this</a>").count(), 2, "{h}");
        assert!(h.contains("href=\"https://c.example/e/t8\""), "{h}");
        assert!(h.contains("href=\"https://c.example/e/all\""), "{h}");
        assert!(!h.contains("<img") && !h.contains("<script>"), "{h}");
        assert!(h.contains("&lt;img src=x onerror=alert(1)&gt;"), "{h}");
        assert!(h.contains("t7&quot;&gt;&lt;script&gt;"), "{h}");
        assert!(
            h.contains("with its \u{201c}Explain this\u{201d} link"),
            "{h}"
        );
    }

    #[test]
    fn a_passed_deadline_asks_for_an_answer_as_soon_as_possible() {
        let late = Utc.with_ymd_and_hms(2020, 12, 1, 12, 0, 0).unwrap();
        let d = digest(
            &ana(),
            &[incident(1, finding("a", &[], Check::Seasonal, -5.0))],
            &review(),
            &sources(),
            late,
            None,
            &Charts::new(),
            &ItemExtras::default(),
        );
        assert!(
            d.text
                .contains("as soon as possible: explanations were due Tue 1 Dec 10:00"),
            "{}",
            d.text
        );
    }
}
