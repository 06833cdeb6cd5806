//! The pre-read as an email: the same report as the page, for mail clients.
//!
//! Mail clients do not render SVG and drop `<style>` blocks, so the email
//! is its own markup: inline styles, tables, and each metric's 6-12 chart as
//! an inline PNG (`render::chart::comparison_png` on the same `Comparison`
//! as the page's SVG) referred to by Content-ID. The PNG carries no text, so
//! a caption says what the lines are and the range they span. A text part
//! carries every number. With `[web]`, both link to the page version.
//!
//! Pure: a [`Report`] in, a [`Digest`] (subject, text, HTML, images) out;
//! `alert` queues it.

use std::fmt::Write as _;

use maud::{DOCTYPE, Markup, html};

use super::html::{change_text, value, with_comparison, year_of};
use super::{Compare, MetricReport, Point, Report, week_number};
use crate::config::report::ReportMetric;
use crate::render::chart::{self, COMPARISON_PNG_SIZE};
use crate::render::{Digest, Image};

const TEXT: &str = "#1a1a1a";
const QUIET: &str = "#555555";
const UP: &str = "#1b6e20";
const DOWN: &str = "#b00020";
const CELL: &str =
    "padding: 3px 8px; text-align: right; white-space: nowrap; border-bottom: 1px solid #eeeeee";
const HEAD: &str = "padding: 3px 8px; text-align: right; white-space: nowrap; border-bottom: 1px solid #999999; font-size: 12px; color: #444444";

/// `+3.2%` coloured by direction, or a dash.
fn delta(c: Compare, rule: &ReportMetric) -> Markup {
    match change_text(c, rule) {
        Some((t, sign)) => {
            let colour = if sign > 0.0 {
                UP
            } else if sign < 0.0 {
                DOWN
            } else {
                TEXT
            };
            html! { span style={"color: " (colour)} { (t) } }
        }
        None => html! { span style={"color: " (QUIET)} { "–" } },
    }
}

/// Actual against expected: `-34.6%`, as the page and the digest write it.
fn deviation(actual: f64, expected: f64) -> Option<String> {
    crate::fmt::deviation(actual, expected).map(|d| crate::fmt::pct(Some(d)))
}

fn plain_delta(c: Compare, rule: &ReportMetric) -> String {
    change_text(c, rule).map_or_else(|| "–".to_string(), |(t, _)| t)
}

fn vs_plan(v: Option<f64>, plan: Option<f64>) -> Compare {
    Compare {
        value: v,
        prior: plan,
    }
}

fn fmt(v: Option<f64>, rule: &ReportMetric) -> String {
    v.map_or_else(|| "n/a".to_string(), |v| value(v, rule))
}

/// `Mon 3 Mar – Sun 9 Mar 2025`.
fn range(r: &Report) -> String {
    format!(
        "{} – {}",
        r.week.start.format("%a %-d %b"),
        r.week.last().format("%a %-d %b %Y")
    )
}

/// The lowest and highest value drawn in one half of the chart (all lines):
/// each half has its own value axis.
fn drawn_range(points: &[Point]) -> Option<(f64, f64)> {
    crate::render::chart::extent(
        points
            .iter()
            .flat_map(|p| [p.value, p.last_year, p.plan])
            .flatten(),
    )
}

/// What one half of the chart shows, in words: `weekly totals of the last 6
/// weeks (27 Jan to 3 Mar), from 1.8M to 2.2M`.
fn half(what: &str, points: &[Point], rule: &ReportMetric) -> String {
    // month labels are the axis's `Mar 24`; in a sentence that reads as a day
    let words = |p: &Point| {
        chrono::NaiveDate::parse_from_str(&format!("1 {}", p.label), "%d %b %y")
            .map_or_else(|_| p.label.clone(), |d| d.format("%b %Y").to_string())
    };
    let first = points.first().map(words).unwrap_or_default();
    let last = points.last().map(words).unwrap_or_default();
    match drawn_range(points) {
        Some((lo, hi)) => format!(
            "{what} ({first} to {last}), from {} to {}",
            value(lo, rule),
            value(hi, rule)
        ),
        None => format!("{what} ({first} to {last}), no data"),
    }
}

/// The rows of the box: (label, this period, vs prior, vs last year, vs plan).
fn rows(
    m: &MetricReport,
    week_label: &str,
) -> Vec<(String, Option<f64>, String, Compare, Compare, Compare)> {
    let n = &m.numbers;
    let none = Compare::default();
    vec![
        (
            week_label.to_string(),
            n.week_wow.value,
            "WoW".to_string(),
            n.week_wow,
            n.week_yoy,
            vs_plan(n.week_wow.value, n.plan_week),
        ),
        (
            "MTD".into(),
            n.mtd.value,
            String::new(),
            none,
            n.mtd,
            vs_plan(n.mtd.value, n.plan_mtd),
        ),
        (
            "QTD".into(),
            n.qtd.value,
            String::new(),
            none,
            n.qtd,
            vs_plan(n.qtd.value, n.plan_qtd),
        ),
        (
            "YTD".into(),
            n.ytd.value,
            String::new(),
            none,
            n.ytd,
            vs_plan(n.ytd.value, n.plan_ytd),
        ),
    ]
}

fn metric_html(m: &MetricReport, week_label: &str, due: &str, img: Option<&Image>) -> Markup {
    let rule = &m.rule;
    let (w, h) = COMPARISON_PNG_SIZE;
    let caption = format!(
        "Left: {}. Right: {}.",
        half("weekly totals of the last 6 weeks", &m.weeks, rule),
        half("monthly totals of the last 12 months", &m.months, rule)
    );
    html! {
        table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="margin: 18px 0 4px; border-top: 2px solid #2f5fb3" {
            tr {
                td style="padding: 8px 0 2px; font-size: 18px; font-weight: bold" { (rule.name) }
                td style={"padding: 8px 0 2px; text-align: right; color: " (QUIET)} { "Owner: " (m.owner) }
            }
        }
        @if let Some(img) = img {
            img src={"cid:" (img.cid)} width=(w) height=(h)
                alt={"Chart of " (rule.name) ": this year solid blue, last year dashed grey, plan dotted orange"}
                style={"display: block; width: 100%; max-width: " (w) "px; height: auto; border: 1px solid #dddddd"};
            p style={"margin: 2px 0 8px; font-size: 12px; color: " (QUIET)} {
                "Blue: this year · grey dashed: last year · orange dotted: plan · pink column: a week with an incident. "
                (caption)
            }
        }
        table cellpadding="0" cellspacing="0" style="border-collapse: collapse; font-size: 14px" {
            tr {
                th style=(HEAD) {}
                th style=(HEAD) { "Actual" }
                th style=(HEAD) { "WoW" }
                th style=(HEAD) { "YoY" }
                th style=(HEAD) { "vs plan" }
            }
            @for (label, v, prior_label, prior, yoy, plan) in rows(m, week_label) {
                tr {
                    th style={(CELL) "; text-align: left"} { (label) }
                    td style={(CELL) "; font-weight: bold"} { (fmt(v, rule)) }
                    td style=(CELL) { @if prior_label.is_empty() { "–" } @else { (delta(prior, rule)) } }
                    td style=(CELL) { (delta(yoy, rule)) }
                    td style=(CELL) { (delta(plan, rule)) }
                }
            }
        }
        @if m.incidents.is_empty() {
            p style={"margin: 8px 0; color: " (QUIET)} { "No incidents this week." }
        } @else {
            p style="margin: 10px 0 4px; font-weight: bold" { "This week's incidents" }
            @for i in &m.incidents {
                @let border = if i.explanation.is_some() { "#2f5fb3" } else { DOWN };
                div style={"border-left: 4px solid " (border) "; padding: 4px 10px; margin: 4px 0; background: #f6f8fc"} {
                    strong { (i.series) } " · " (i.when()) ": "
                    (value(i.actual, rule)) " vs " (value(i.expected, rule)) " expected"
                    @if let Some(d) = deviation(i.actual, i.expected) { " (" (d) ")" }
                    " · " (i.check)
                    (crate::render::drivers::table(&i.drivers))
                    br;
                    @match &i.explanation {
                        Some((cause, text)) => {
                            (i.owner) ": " strong { (cause) }
                            @if !text.is_empty() { " — " em { "“" (text) "”" } }
                        }
                        None => span style={"color: " (DOWN) "; font-weight: bold"} { "not explained (" (i.owner) ", due " (due) ")" },
                    }
                }
            }
        }
        @for d in &m.drills {
            p style="margin: 8px 0 0" { strong { "By " (d.dimension) ": " } (d.summary) }
        }
    }
}

fn metric_text(out: &mut String, m: &MetricReport, week_label: &str, due: &str) {
    let rule = &m.rule;
    let _ = writeln!(out, "\n{} (owner: {})", rule.name, m.owner);
    for (label, v, prior_label, prior, yoy, plan) in rows(m, week_label) {
        let mut line = format!("  {label:<8} {:>14}", fmt(v, rule));
        if !prior_label.is_empty() {
            let _ = write!(line, "   WoW {}", plain_delta(prior, rule));
        }
        let _ = write!(line, "   YoY {}", plain_delta(yoy, rule));
        if plan.prior.is_some() {
            let _ = write!(line, "   vs plan {}", plain_delta(plan, rule));
        }
        let _ = writeln!(out, "{line}");
    }
    for i in &m.incidents {
        let _ = writeln!(
            out,
            "  * {} {}: {} vs {} expected{} ({})",
            i.series,
            i.when(),
            value(i.actual, rule),
            value(i.expected, rule),
            deviation(i.actual, i.expected).map_or_else(String::new, |d| format!(" ({d})")),
            i.check
        );
        for d in &i.drivers {
            let _ = writeln!(out, "    drove it: {}", d.line());
        }
        match &i.explanation {
            Some((cause, text)) if text.is_empty() => {
                let _ = writeln!(out, "    {}: {cause}", i.owner);
            }
            Some((cause, text)) => {
                let _ = writeln!(out, "    {}: {cause}: \"{text}\"", i.owner);
            }
            None => {
                let _ = writeln!(out, "    NOT EXPLAINED ({}, due {due})", i.owner);
            }
        }
    }
    for d in &m.drills {
        let _ = writeln!(out, "  By {}: {}", d.dimension, d.summary);
    }
}

/// A metric and its chart image.
type Item<'a> = (&'a MetricReport, Option<&'a Image>);

/// The pre-read as an email; `link` is the signed URL of the page version.
/// Charts whose PNG cannot be drawn (no data) are left out, never the mail.
pub fn email(r: &Report, link: Option<&str>) -> Digest {
    let (_, wn) = week_number(r.week);
    let week_label = format!("Week {wn}");
    let range = range(r);
    let due = r.due.format("%a %-d %b %H:%M").to_string();
    let review = r.review_at.format("%a %-d %b %Y, %H:%M %Z").to_string();
    let subject = format!("[callout] {}: week {wn}, {range}", r.title);
    let year = year_of(r);
    let metrics: Vec<&MetricReport> = r.sections.iter().flat_map(|s| &s.metrics).collect();
    let mut images = Vec::new();
    let mut image_of = Vec::new();
    for (n, m) in metrics.iter().enumerate() {
        let png = with_comparison(m, year, chart::comparison_png);
        image_of.push(png.map(|png| {
            images.push(Image {
                cid: format!("report-{}-{n}@callout", r.week.start),
                png,
            });
            images.len() - 1
        }));
    }
    // each metric with its chart, by section
    let mut k = 0;
    let sections: Vec<(Option<&String>, Vec<Item<'_>>)> = r
        .sections
        .iter()
        .map(|s| {
            let items = s
                .metrics
                .iter()
                .map(|m| {
                    let img = image_of
                        .get(k)
                        .copied()
                        .flatten()
                        .and_then(|i| images.get(i));
                    k += 1;
                    (m, img)
                })
                .collect();
            (s.name.as_ref(), items)
        })
        .collect();
    let open_count = |m: &MetricReport| {
        m.incidents
            .iter()
            .filter(|i| i.explanation.is_none())
            .count()
    };

    let page: Markup = html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { (subject) } }
            body style={"margin: 0; padding: 16px; font-family: sans-serif; font-size: 14px; line-height: 1.4; color: " (TEXT)} {
                div style="max-width: 680px" {
                    h1 style="margin: 0 0 4px; font-size: 22px" { (r.title) }
                    p style="margin: 2px 0" { strong { (week_label) } " · " (range) }
                    p style={"margin: 2px 0; color: " (QUIET)} { "For the review on " (review) " · explanations due " (due) }
                    @if let Some(url) = link {
                        p style="margin: 12px 0" {
                            a href=(url) style="display: inline-block; padding: 6px 14px; background: #1a56db; color: #ffffff; text-decoration: none; border-radius: 4px; font-weight: bold" {
                                "Open the pre-read in the browser"
                            }
                        }
                    }
                    @if !r.problems.is_empty() {
                        div style="border-left: 4px solid #b00020; background: #fff4f4; padding: 6px 10px; margin: 10px 0" {
                            strong { "Some data could not be used; numbers below leave it out:" }
                            ul style="margin: 4px 0" { @for p in &r.problems { li { (p) } } }
                        }
                    }
                    table cellpadding="0" cellspacing="0" style="border-collapse: collapse; margin: 12px 0; font-size: 14px" {
                        tr {
                            th style={(HEAD) "; text-align: left"} { "Metric" }
                            th style=(HEAD) { (week_label) }
                            th style=(HEAD) { "WoW" }
                            th style=(HEAD) { "YoY" }
                            th style=(HEAD) { "vs plan" }
                            th style=(HEAD) { "Incidents" }
                        }
                        @for m in &metrics {
                            tr {
                                td style={(CELL) "; text-align: left"} { (m.rule.name) }
                                td style=(CELL) { (fmt(m.numbers.week_wow.value, &m.rule)) }
                                td style=(CELL) { (delta(m.numbers.week_wow, &m.rule)) }
                                td style=(CELL) { (delta(m.numbers.week_yoy, &m.rule)) }
                                td style=(CELL) { (delta(vs_plan(m.numbers.week_wow.value, m.numbers.plan_week), &m.rule)) }
                                td style=(CELL) {
                                    @if m.incidents.is_empty() { "–" }
                                    @else {
                                        (m.incidents.len())
                                        @let open = open_count(m);
                                        @if open > 0 { " (" span style={"color: " (DOWN) "; font-weight: bold"} { (open) " not explained" } ")" }
                                    }
                                }
                            }
                        }
                    }
                    @for (name, items) in &sections {
                        @if let Some(name) = name {
                            h2 style={"margin: 26px 0 0; font-size: 16px; text-transform: uppercase; letter-spacing: 1px; color: " (QUIET)} { (name) }
                        }
                        @for (m, img) in items {
                            (metric_html(m, &week_label, &due, *img))
                        }
                    }
                    p style={"margin: 24px 0 0; font-size: 12px; color: " (QUIET)} {
                        "Sent by callout for the review on " (r.review_at.format("%a %-d %b %H:%M")) ". Data as of " (r.generated_at.format("%Y-%m-%d %H:%M UTC")) "."
                    }
                }
            }
        }
    };

    let mut text = String::new();
    let _ = writeln!(text, "{}\n{week_label} · {range}", r.title);
    let _ = writeln!(text, "For the review on {review} · explanations due {due}");
    if let Some(url) = link {
        let _ = write!(
            text,
            "\nThe pre-read in the browser, with every chart:\n{url}\n"
        );
    }
    if !r.problems.is_empty() {
        let _ = writeln!(
            text,
            "\nSome data could not be used; numbers below leave it out:"
        );
        for p in &r.problems {
            let _ = writeln!(text, "- {p}");
        }
    }
    for s in &r.sections {
        if let Some(name) = &s.name {
            let _ = write!(text, "\n== {} ==\n", name.to_uppercase());
        }
        for m in &s.metrics {
            metric_text(&mut text, m, &week_label, &due);
        }
    }
    let _ = write!(
        text,
        "\n-- \nSent by callout for the review on {}. Data as of {}.\n",
        r.review_at.format("%a %-d %b %H:%M"),
        r.generated_at.format("%Y-%m-%d %H:%M UTC")
    );
    Digest {
        subject,
        text,
        html: page.into_string(),
        images,
    }
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone, Utc};

    use super::super::{IncidentNote, WeekChoice, build, gather, week};
    use super::*;

    /// The pre-read email of the shipped config on the demo exports, for a
    /// fixed moment, with one explained and one open incident added: its
    /// subject, text, HTML and images, compared with the snapshots.
    #[test]
    fn snapshot_of_the_report_email() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = super::super::tests::shipped_config(dir.path());
        let now = Utc.with_ymd_and_hms(2025, 3, 10, 8, 0, 0).unwrap();
        let week = week(&cfg, WeekChoice::Default, now).unwrap();
        let inputs = gather(&cfg, week, now).unwrap();
        let mut r = build(&cfg, &inputs, week, now);
        let day = |d| NaiveDate::from_ymd_opt(2025, 3, d).unwrap();
        let note = |id, explanation| IncidentNote {
            id,
            series: "orders{region=eu & \"co\"}".into(),
            check: "seasonal".into(),
            day: day(6),
            first: day(5),
            last: day(6),
            actual: 580.0,
            expected: 1000.0,
            owner: "Ana <ana@example.com>".into(),
            explanation,
            drivers: Vec::new(),
        };
        let m = &mut r.sections[0].metrics[0];
        m.incidents.push(note(
            7,
            Some(("promo".into(), "Black Friday <b>early</b>".into())),
        ));
        m.incidents.push(note(8, None));
        let d = email(&r, Some("https://c.example/r/token?a=1&b=2"));
        let images: Vec<&str> = d.images.iter().map(|i| i.cid.as_str()).collect();
        insta::assert_snapshot!(
            "report_email_text",
            format!("Subject: {}\nImages: {images:?}\n\n{}", d.subject, d.text)
        );
        insta::assert_snapshot!("report_email_html", d.html.replace("><", ">\n<"));
        assert!(!d.html.contains("<b>early"), "{}", d.html);
    }
}
