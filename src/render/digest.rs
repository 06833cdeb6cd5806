//! The digest one owner receives: its subject, plain text and HTML, and the
//! chart images the HTML shows inline. What it says is worked out once
//! ([`Parts`]); the text part writes it line by line, the HTML part through
//! maud templates.
//!
//! Pure: everything comes in as arguments (incidents, the review settings,
//! `now`), nothing is read from the clock, the store or the network. The
//! review calendar it phrases the subject around is [`crate::review`]'s.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use lettre::message::Mailbox;
use maud::{Markup, html};

use super::chart;
use super::layout::{explain_button, page};
use super::problems::{
    ExportLine, ProblemLine, export_lines, export_subject, problem_lines, problem_subject,
};
use super::reminders::Due;
use super::words::{count_outliers, greeting_name, numbers_label, period_label, series_label, why};
use crate::config::{ReviewConfig, SourceConfig};
use crate::fmt::{amount, pct, short_time};
use crate::model::{Incident, Lane, sort_by_severity};

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

impl Links {
    /// The page where incident `id`'s owner explains it.
    pub fn incident(&self, id: i64) -> Option<&String> {
        self.incidents.get(&id)
    }
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
    let parts = Parts::new(owner, incidents, review, sources, now, links, extras);
    let text = parts.text();
    let (html, images) = parts.html(charts);
    Digest {
        subject: parts.subject,
        text,
        html,
        images,
    }
}

/// What one digest says, in words, before it is laid out as text or HTML.
struct Parts<'a> {
    /// Outliers to explain, most severe first.
    items: Vec<Incident>,
    /// Data-health incidents, most severe first ([`Parts::problems`]' order).
    health: Vec<Incident>,
    /// One line per data-health incident.
    problems: Vec<ProblemLine>,
    /// One line per source and export problem.
    exports: Vec<ExportLine>,
    /// The subject line.
    subject: String,
    /// Whom the greeting names.
    name: String,
    /// The request to explain the outliers ...
    first: String,
    /// ... and by when (the deadline, or that it has passed).
    when: String,
    /// The sentence above the data problems.
    problems_intro: String,
    /// The sentence above the export problems.
    exports_intro: String,
    /// The last line: the review and every incident's number.
    footer: String,
    /// The signed page links, when `[web]` is configured.
    links: Option<&'a Links>,
    /// Plan lines, units and the run's notice.
    extras: &'a ItemExtras,
}

impl<'a> Parts<'a> {
    /// Sort the incidents into the digest's sections and phrase them.
    fn new(
        owner: &Mailbox,
        incidents: &[Incident],
        review: &ReviewConfig,
        sources: &[SourceConfig],
        now: DateTime<Utc>,
        links: Option<&'a Links>,
        extras: &'a ItemExtras,
    ) -> Self {
        let exports = export_lines(incidents, sources);
        let health = sorted(incidents, |l| l == Lane::Health);
        let problems = problem_lines(&health, extras);
        let items = sorted(incidents, |l| !matches!(l, Lane::Export | Lane::Health));
        let n = items.len();
        let due = Due::at(review, now);
        let subject = subject(review, due, now, n, &problems, &exports);
        let (first, when) = ask(review, due, now, n, links.is_some());
        // the footer numbers every incident in the order shown
        let ids: Vec<String> = items
            .iter()
            .chain(&health)
            .chain(&sorted(incidents, |l| l == Lane::Export))
            .map(|i| format!("#{}", i.id))
            .collect();
        let footer = footer(review, &ids);
        Parts {
            problems_intro: check_them(
                problems.len(),
                " in the data of exports you look after (not outliers: the numbers themselves look broken)",
            ),
            exports_intro: check_them(exports.len(), " in exports you look after"),
            items,
            health,
            problems,
            exports,
            subject,
            name: greeting_name(owner),
            first,
            when,
            footer,
            links,
            extras,
        }
    }

    /// The explanation page of incident `id`, when there are links.
    fn link_of(&self, id: i64) -> Option<&'a String> {
        self.links.and_then(|l| l.incident(id))
    }

    /// The page of all the owner's open items, when there are links and outliers.
    fn open_items(&self) -> Option<&'a str> {
        self.links
            .filter(|_| !self.items.is_empty())
            .map(|l| l.open_items.as_str())
    }

    /// The text/plain part.
    fn text(&self) -> String {
        let mut text = String::new();
        let _ = writeln!(text, "Hello {},", self.name);
        if let Some(note) = &self.extras.notice {
            let _ = write!(text, "\n{note}\n");
        }
        if !self.items.is_empty() {
            let _ = write!(text, "\n{}\n{}\n", self.first, self.when);
        }
        for (k, i) in self.items.iter().enumerate() {
            self.item_text(&mut text, k + 1, i);
        }
        if let Some(url) = self.open_items() {
            let _ = write!(
                text,
                "\nAll your open items on one page, earlier weeks' included:\n{url}\n"
            );
        }
        if !self.problems.is_empty() {
            let _ = write!(text, "\n{}\n\n", self.problems_intro);
            for l in &self.problems {
                let _ = writeln!(text, "- {}", l.line);
                if let Some(url) = self.link_of(l.id) {
                    let _ = writeln!(text, "  Note what you found:\n  {url}");
                }
            }
        }
        if !self.exports.is_empty() {
            let _ = write!(text, "\n{}\n\n", self.exports_intro);
            for l in &self.exports {
                let _ = writeln!(text, "- {}", l.line);
            }
        }
        let _ = write!(text, "\n-- \n{}\n", self.footer);
        text
    }

    /// Outlier number `k` in the text part.
    fn item_text(&self, text: &mut String, k: usize, i: &Incident) {
        let f = &i.worst;
        let _ = write!(
            text,
            "\n{k}. {}\n   Period:    {}\n   Why:       {}\n   Actual:    {}\n   WoW / YoY: {} / {}\n   Check:     {} (source {})\n",
            series_label(i),
            period_label(i),
            // a note of several lines (the slices that drove a total) stays
            // under its label
            why(f).replace('\n', "\n              "),
            numbers_label(f, self.extras.unit_of(i)),
            pct(f.hit.wow_pct),
            pct(f.hit.yoy_pct),
            f.hit.check,
            i.source,
        );
        if let Some(p) = self.extras.plans.get(&i.id) {
            let _ = writeln!(text, "   Plan:      {}", p.line());
        }
        // the URL alone on its line, so clients make it clickable whole
        match self.link_of(i.id) {
            Some(url) => {
                let _ = write!(text, "   Explain this:\n   {url}\n");
            }
            None => text.push_str("   Your explanation:\n"),
        }
    }

    /// The text/html part and the chart images it shows.
    fn html(&self, charts: &Charts) -> (String, Vec<Image>) {
        let mut figures = Figures {
            charts,
            extras: self.extras,
            images: Vec::new(),
        };
        let body = html! {
            p { "Hello " (self.name) "," }
            @if let Some(note) = &self.extras.notice {
                p { em { (note) } }
            }
            @if !self.items.is_empty() {
                p { (self.first) " " strong { (self.when) } }
                ol {
                    @for i in &self.items {
                        (self.item_html(i, figures.of(i)))
                    }
                }
                @if let Some(url) = self.open_items() {
                    p { "See " a href=(url) { "all your open items" } " on one page, earlier weeks' included." }
                }
            }
            @if !self.problems.is_empty() {
                p { (self.problems_intro) }
                ul {
                    @for (l, i) in self.problems.iter().zip(&self.health) {
                        li {
                            p {
                                (l.line)
                                @if let Some(url) = self.link_of(l.id) {
                                    " " a href=(url) { "Note what you found" }
                                }
                            }
                            // the chart shows what the words say: the flat line, the zeros
                            @if let Some(figure) = figures.of(i) { (figure) }
                        }
                    }
                }
            }
            @if !self.exports.is_empty() {
                p { (self.exports_intro) }
                ul {
                    @for l in &self.exports {
                        li { (l.line) }
                    }
                }
            }
            p style="color: #666" { (self.footer) }
        };
        (page(&self.subject, body), figures.images)
    }

    /// One outlier in the HTML part, with its chart when it has one.
    fn item_html(&self, i: &Incident, figure: Option<Markup>) -> Markup {
        let f = &i.worst;
        html! {
            li {
                p { strong { (series_label(i)) } }
                @if let Some(figure) = figure { (figure) }
                table cellpadding="2" {
                    (row("Period", &period_label(i)))
                    (row("Why", &why(f)))
                    (row("Actual", &numbers_label(f, self.extras.unit_of(i))))
                    (row("WoW / YoY", &format!("{} / {}", pct(f.hit.wow_pct), pct(f.hit.yoy_pct))))
                    (row("Check", &format!("{} (source {})", f.hit.check.as_str(), i.source)))
                    @if let Some(p) = self.extras.plans.get(&i.id) {
                        (row("Plan", &p.line()))
                    }
                }
                @match self.link_of(i.id) {
                    Some(url) => { (explain_button(url)) }
                    None => { p { em { "Your explanation:" } } }
                }
            }
        }
    }
}

/// `Sent by callout for the WBR. Incidents #3, #4.`: every message's last line.
pub(super) fn footer(review: &ReviewConfig, ids: &[String]) -> String {
    format!(
        "Sent by callout for the {}. Incidents {}.",
        review.name,
        ids.join(", ")
    )
}

/// The incidents whose lane passes `keep`, most severe first.
pub(super) fn sorted(incidents: &[Incident], keep: impl Fn(Lane) -> bool) -> Vec<Incident> {
    let mut v: Vec<Incident> = incidents.iter().filter(|i| keep(i.lane)).cloned().collect();
    sort_by_severity(&mut v);
    v
}

/// `[callout] ` and the subject's parts: outliers, data problems, export problems.
pub(super) fn subject(
    review: &ReviewConfig,
    due: Due,
    now: DateTime<Utc>,
    n: usize,
    problems: &[ProblemLine],
    exports: &[ExportLine],
) -> String {
    let mut parts = Vec::new();
    if n > 0 {
        parts.push(outliers_subject(review, due, now, n));
    }
    if !problems.is_empty() {
        parts.push(problem_subject(problems));
    }
    if !exports.is_empty() {
        parts.push(export_subject(exports));
    }
    format!("[callout] {}", parts.join("; "))
}

/// `callout found a problem{what}. Please check it; …`, or problems and them for `n` > 1.
fn check_them(n: usize, what: &str) -> String {
    let (found, it) = if n == 1 {
        ("callout found a problem", "it")
    } else {
        ("callout found problems", "them")
    };
    format!("{found}{what}. Please check {it}; callout checks again on every run.")
}

/// One row of an item's table: the label, then the value.
fn row(label: &str, value: &str) -> Markup {
    html! {
        tr {
            th align="left" { (label) }
            td {
                @for (k, line) in value.split('\n').enumerate() {
                    @if k > 0 { br; }
                    (line)
                }
            }
        }
    }
}

/// The charts a digest shows: up to [`MAX_CHARTS`], in the order asked for.
struct Figures<'a> {
    /// The history of each incident's series.
    charts: &'a Charts,
    /// Each metric's unit, for the axis and caption.
    extras: &'a ItemExtras,
    /// The images so far: they join the mail's parts.
    images: Vec<Image>,
}

impl Figures<'_> {
    /// Incident `i`'s chart and caption, its image kept for the mail;
    /// `None` past [`MAX_CHARTS`] or when there is nothing to draw.
    fn of(&mut self, i: &Incident) -> Option<Markup> {
        if self.images.len() >= MAX_CHARTS {
            return None;
        }
        let (image, figure) = chart_image(i, self.charts.get(&i.id)?, self.extras.unit_of(i))?;
        self.images.push(image);
        Some(figure)
    }
}
/// The request and deadline paragraph, without markup.
/// With `links`, the owner explains on the web page; without, by replying.
pub(super) fn ask(
    review: &ReviewConfig,
    due: Due,
    now: DateTime<Utc>,
    n: usize,
    links: bool,
) -> (String, String) {
    let (next, due_at) = (due.review_at, due.deadline);
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
    let when = if due.ahead_of(now) {
        format!(
            "before {} ({tz}), {} hours before the {} on {}.",
            short_time(&due_at),
            review.due_hours_before,
            review.name,
            short_time(&next)
        )
    } else {
        format!(
            "as soon as possible: explanations were due {} ({tz}), and the {} is on {}.",
            short_time(&due_at),
            review.name,
            short_time(&next)
        )
    };
    (first, when)
}

/// The subject's part for outliers: it states the deadline (the review is a
/// `due_hours_before` later), e.g. `3 outliers to explain by Tue 1 Dec 10:00
/// (WBR Wed 2 Dec 10:00)`.
fn outliers_subject(review: &ReviewConfig, due: Due, now: DateTime<Utc>, n: usize) -> String {
    let (next, due_at) = (due.review_at, due.deadline);
    if due.ahead_of(now) {
        format!(
            "{} to explain by {} ({} {})",
            count_outliers(n),
            short_time(&due_at),
            review.name,
            short_time(&next)
        )
    } else {
        format!(
            "{} to explain now (were due {}; {} {})",
            count_outliers(n),
            short_time(&due_at),
            review.name,
            short_time(&next)
        )
    }
}

/// The chart of one digest item as PNG bytes (a chat preview inlines it).
pub fn chart_png(i: &Incident, recent: &[(i64, f64)], unit: &str) -> Option<Vec<u8>> {
    chart_image(i, recent, unit).map(|(image, _)| image.png)
}

/// The chart of one digest item (its series' last six weeks, the flagged
/// points and their normal ranges) as an inline PNG, with the image
/// element and caption that show it; `None` when there is nothing to draw.
fn chart_image(i: &Incident, recent: &[(i64, f64)], unit: &str) -> Option<(Image, Markup)> {
    let (band, marks) = chart::bands_and_marks(&i.findings);
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
    let alt = format!(
        "Chart of {title}: from {} to {}, flagged points in red",
        amount(lo, unit),
        amount(hi, unit)
    );
    let figure = html! {
        img src={ "cid:" (cid) } width=(w) height=(h) alt=(alt)
            style={ "display: block; width: 100%; max-width: " (w) "px; height: auto; border: 1px solid #dddddd" };
        p style="margin: 2px 0 8px; color: #666666; font-size: 12px" { (caption) }
    };
    Some((Image { cid, png }, figure))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Check;
    use crate::render::raster;
    use crate::render::tests::{ana, day, finding, incident, late_export, now, review, sources};
    use chrono::TimeZone;

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
        insta::assert_snapshot!(d.html.replace("><", ">\n<"));
        assert!(d.html.contains("<strong>&lt;b&gt;rev&lt;/b&gt; (team &amp; co=&quot;R&amp;D&quot; &lt;eu&gt;)</strong>"), "{}", d.html);
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
