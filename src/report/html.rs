//! The pre-read as one self-contained HTML page: inline CSS and SVG, no
//! scripts, fonts or images from elsewhere, one metric per printed page.
//!
//! Built with maud, so metric names, dimension values, owners and their
//! explanations are always escaped text.

use chrono::Datelike;
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::{
    Compare, Drill, IncidentNote, MetricReport, Numbers, Point, Report, change, week_number,
};
use crate::config::report::{NumberFormat, ReportMetric};
use crate::render::chart::{self, Comparison, Panel, Stroke};

const CSS: &str = "
* { box-sizing: border-box; }
body { font: 14px/1.4 system-ui, -apple-system, 'Segoe UI', sans-serif; color: #1a1a1a; margin: 0; background: #f4f4f2; }
main { max-width: 1040px; margin: 0 auto; padding: 24px; }
header.cover h1 { margin: 0 0 4px; font-size: 24px; }
header.cover p { margin: 2px 0; color: #444; }
.problems { border-left: 4px solid #b00020; background: #fff4f4; padding: 8px 12px; margin: 12px 0; }
table { border-collapse: collapse; }
th, td { padding: 3px 8px; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
table.overview { width: 100%; background: #fff; margin: 12px 0 20px; }
table.overview th { border-bottom: 1px solid #999; }
table.overview td { border-bottom: 1px solid #eee; }
h2.section { margin: 28px 0 8px; font-size: 18px; text-transform: uppercase; letter-spacing: .05em; color: #555; }
section.metric { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 16px 18px; margin: 0 0 20px; }
section.metric > header { display: flex; justify-content: space-between; align-items: baseline; gap: 12px; }
section.metric h3 { margin: 0; font-size: 20px; }
.owner { color: #555; }
.body { display: grid; grid-template-columns: minmax(380px, max-content) minmax(0, 1fr); gap: 24px; align-items: start; margin-top: 8px; }
.chart { margin-top: 8px; }
table.box { width: 100%; font-variant-numeric: tabular-nums; }
table.box th { font-weight: 600; color: #444; }
table.box thead th { border-bottom: 1px solid #999; font-size: 12px; }
table.box td.value { font-weight: 600; }
table.box tr.week td.value { font-size: 18px; }
.up::before { content: '▲ '; font-size: 9px; }
.down::before { content: '▼ '; font-size: 9px; }
.up { color: #1b6e20; } .down { color: #b00020; }
h4 { margin: 14px 0 6px; font-size: 14px; }
.notes h4 { margin-top: 0; }
ul.incidents { margin: 0; padding: 0; list-style: none; }
ul.incidents li { border-left: 4px solid #2f5fb3; padding: 6px 10px; margin: 6px 0; background: #f6f8fc; }
ul.incidents li.unexplained { border-left-color: #b00020; background: #fff4f4; }
.flag { font-weight: 700; color: #b00020; }
.cause { font-weight: 600; }
blockquote { margin: 4px 0 0; padding: 0; font-style: italic; }
p.quiet { color: #666; margin: 4px 0; }
p.summary { margin: 4px 0; font-weight: 600; }
table.drill { font-variant-numeric: tabular-nums; }
table.drill thead th { border-bottom: 1px solid #999; font-size: 12px; }
table.drill tr.flagged td:first-child::after { content: ' ●'; color: #d6336c; }
@media (max-width: 760px) { .body { grid-template-columns: 1fr; } }
@media print {
  body { background: #fff; }
  main { max-width: none; padding: 0; }
  section.metric { break-before: page; border: none; padding: 0; }
  .up, .down { color: #000; }
}
";

/// A metric's value for people: separators, the rule's unit and decimals;
/// percentages for `format = \"percent\"`.
pub fn value(v: f64, rule: &ReportMetric) -> String {
    if !v.is_finite() {
        return "n/a".into();
    }
    let body = match rule.format {
        NumberFormat::Percent => {
            return format!("{:.*}%", rule.decimals.unwrap_or(2), v * 100.0);
        }
        NumberFormat::Number => match rule.decimals {
            Some(d) => crate::fmt::group_thousands(&format!("{v:.d$}")),
            None => crate::fmt::num(v),
        },
    };
    crate::fmt::with_unit(body, &rule.unit)
}

/// A short axis number: `2.15M`, `120k`, `950`.
fn compact(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{}M", crate::fmt::num(v / 1e6))
    } else if a >= 1e4 {
        format!("{}k", crate::fmt::num(v / 1e3))
    } else {
        crate::fmt::num(v)
    }
}

/// A change for people: `+3.2%`, or `-15 bps` for rates; with its sign
/// (`1.0` up, `-1.0` down, `0.0` flat). `None` when it cannot be computed.
pub(super) fn change_text(c: Compare, rule: &ReportMetric) -> Option<(String, f64)> {
    let d = change(c, &rule.format)?;
    let text = match rule.format {
        NumberFormat::Percent => format!("{d:+.0} bps"),
        NumberFormat::Number => format!("{d:+.1}%"),
    };
    let sign = if d > 0.0 {
        1.0
    } else if d < 0.0 {
        -1.0
    } else {
        0.0
    };
    Some((text, sign))
}

/// A change cell: `+3.2%` or `-15 bps`, with an up/down class.
fn delta(c: Compare, rule: &ReportMetric) -> Markup {
    let Some((text, sign)) = change_text(c, rule) else {
        return html! { span.na { "–" } };
    };
    let class = if sign > 0.0 {
        "up"
    } else if sign < 0.0 {
        "down"
    } else {
        "flat"
    };
    html! { span class=(class) { (text) } }
}

fn vs_plan(v: Option<f64>, plan: Option<f64>, rule: &ReportMetric) -> Markup {
    match plan {
        Some(p) => delta(
            Compare {
                value: v,
                prior: Some(p),
            },
            rule,
        ),
        None => html! { span.na { "–" } },
    }
}

fn box_table(n: &Numbers, rule: &ReportMetric, week_label: &str) -> Markup {
    let fmt = |v: Option<f64>| v.map_or_else(|| "n/a".to_string(), |v| value(v, rule));
    // (cell key, label, vs prior, vs last year for the week, plan)
    type Row<'a> = (&'a str, &'a str, Compare, Option<Compare>, Option<f64>);
    let rows: [Row<'_>; 4] = [
        (
            "week",
            week_label,
            n.week_wow,
            Some(n.week_yoy),
            n.plan_week,
        ),
        ("mtd", "MTD", n.mtd, None, n.plan_mtd),
        ("qtd", "QTD", n.qtd, None, n.plan_qtd),
        ("ytd", "YTD", n.ytd, None, n.plan_ytd),
    ];
    html! {
        table.box {
            thead { tr { th { } th { "Actual" } th { "WoW" } th { "YoY" } th { "vs plan" } } }
            tbody {
                @for (key, label, first, yoy, plan) in rows {
                    tr class=(key) {
                        th { (label) }
                        td.value data-cell=(key) { (fmt(first.value)) }
                        @if let Some(yoy) = yoy {
                            td data-cell="wow" { (delta(first, rule)) }
                            td data-cell="week-yoy" { (delta(yoy, rule)) }
                        } @else {
                            td { span.na { "–" } }
                            td data-cell=(format!("{key}-yoy")) { (delta(first, rule)) }
                        }
                        td data-cell=(format!("{key}-plan")) { (vs_plan(first.value, plan, rule)) }
                    }
                }
            }
        }
    }
}

/// The 6-12 chart of `m` as a [`Comparison`], handed to `draw` (the SVG of
/// the page or the PNG of the email: one picture).
pub(super) fn with_comparison<R>(
    m: &MetricReport,
    year: i32,
    draw: impl FnOnce(&Comparison<'_>) -> R,
) -> R {
    let series = |pts: &[Point]| {
        (
            pts.iter().map(|p| p.label.clone()).collect::<Vec<_>>(),
            pts.iter().map(|p| p.value).collect::<Vec<_>>(),
            pts.iter().map(|p| p.last_year).collect::<Vec<_>>(),
            pts.iter().map(|p| p.plan).collect::<Vec<_>>(),
            pts.iter().map(|p| p.incident).collect::<Vec<_>>(),
        )
    };
    let (wl, wv, wy, wp, wm) = series(&m.weeks);
    let (ml, mv, my, mp, mm) = series(&m.months);
    let wlines = [
        (Stroke::Solid, wv.as_slice()),
        (Stroke::Dashed, wy.as_slice()),
        (Stroke::Dotted, wp.as_slice()),
    ];
    let mlines = [
        (Stroke::Solid, mv.as_slice()),
        (Stroke::Dashed, my.as_slice()),
        (Stroke::Dotted, mp.as_slice()),
    ];
    let rule = &m.rule;
    // axis labels short and without the unit (it is in the heading)
    let axis = |v: f64| match rule.format {
        NumberFormat::Percent => format!("{:.2}%", v * 100.0),
        NumberFormat::Number => compact(v),
    };
    let unit = match rule.format {
        NumberFormat::Percent => "%".to_string(),
        NumberFormat::Number if rule.unit.is_empty() => rule.name.clone(),
        NumberFormat::Number => rule.unit.clone(),
    };
    let this_year = format!("{year} (this year)");
    let last_year = format!("{} (same weeks / months)", year - 1);
    let title = format!("{}: trailing 6 weeks and 12 months", rule.name);
    draw(&Comparison {
        title: &title,
        unit: &unit,
        legend: [&this_year, &last_year, "plan"],
        left: Panel {
            heading: "Trailing 6 weeks",
            labels: &wl,
            lines: &wlines,
            marked: &wm,
        },
        right: Panel {
            heading: "Trailing 12 months",
            labels: &ml,
            lines: &mlines,
            marked: &mm,
        },
        fmt: &axis,
    })
}

fn chart_of(m: &MetricReport, year: i32) -> Markup {
    with_comparison(m, year, chart::comparison_svg)
}

fn incident(i: &IncidentNote, rule: &ReportMetric, due: &str) -> Markup {
    let dev = crate::fmt::deviation(i.actual, i.expected);
    html! {
        li class=(if i.explanation.is_some() { "explained" } else { "unexplained" }) data-incident=(i.id) {
            strong { (i.series) } " · " (i.when()) ": "
            (value(i.actual, rule)) " vs " (value(i.expected, rule)) " expected"
            @if dev.is_some() { " (" (crate::fmt::pct(dev)) ")" }
            " · " (i.check)
            (crate::render::drivers::table(&i.drivers))
            @match &i.explanation {
                Some((cause, text)) => {
                    br;
                    (i.owner) ": " span.cause { (cause) }
                    @if !text.is_empty() { blockquote { "“" (text) "”" } }
                }
                None => {
                    br;
                    span.flag { "not explained (" (i.owner) ", due " (due) ")" }
                }
            }
        }
    }
}

fn drill(d: &Drill, rule: &ReportMetric) -> Markup {
    let any_plan = d.rows.iter().any(|r| r.plan.is_some());
    html! {
        p.summary { (d.summary) }
        table.drill {
            thead { tr { th { (d.dimension) } th { "Week" } th { "WoW" } th { "YoY" } @if any_plan { th { "vs plan" } } } }
            tbody {
                @for r in &d.rows {
                    tr class=(if r.incident { "flagged" } else { "" }) {
                        td { (r.value) }
                        td { (r.wow.value.map_or_else(|| "n/a".into(), |v| value(v, rule))) }
                        td { (delta(r.wow, rule)) }
                        td { (delta(r.yoy, rule)) }
                        @if any_plan { td { (vs_plan(r.wow.value, r.plan, rule)) } }
                    }
                }
            }
        }
    }
}

/// The calendar year of the report's week (its last day), for the legend.
pub(super) fn year_of(r: &Report) -> i32 {
    r.week.last().year()
}

fn anchor(name: &str) -> String {
    let slug: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("m-{slug}")
}

/// The report as one HTML page.
pub fn html(r: &Report) -> String {
    let (wy, wn) = week_number(r.week);
    let week_label = format!("Week {wn}");
    let range = format!(
        "{} – {}",
        r.week.start.format("%a %-d %b"),
        r.week.last().format("%a %-d %b %Y")
    );
    let due = r.due.format("%a %-d %b %H:%M").to_string();
    let year = year_of(r);
    let page: Markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (r.title) " · " (wy) "-W" (format!("{wn:02}")) }
                style { (PreEscaped(CSS)) (PreEscaped(chart::COMPARISON_CSS)) }
            }
            body {
                main {
                    header.cover {
                        h1 { (r.title) }
                        p { strong { (week_label) " (" (wy) ")" } " · " (range) }
                        p { "For the review on " (r.review_at.format("%a %-d %b %Y, %H:%M %Z")) " · explanations due " (due) }
                        p { "Data as of " (r.generated_at.format("%Y-%m-%d %H:%M UTC")) }
                    }
                    @if !r.problems.is_empty() {
                        div.problems {
                            strong { "Some data could not be used; numbers below leave it out:" }
                            ul { @for p in &r.problems { li { (p) } } }
                        }
                    }
                    table.overview {
                        thead { tr { th { "Metric" } th { (week_label) } th { "WoW" } th { "YoY" } th { "vs plan" } th { "Incidents" } } }
                        tbody {
                            @for s in &r.sections {
                                @for m in &s.metrics {
                                    @let open = m.incidents.iter().filter(|i| i.explanation.is_none()).count();
                                    tr {
                                        td { a href=(format!("#{}", anchor(&m.rule.name))) { (m.rule.name) } }
                                        td { (m.numbers.week_wow.value.map_or_else(|| "n/a".into(), |v| value(v, &m.rule))) }
                                        td { (delta(m.numbers.week_wow, &m.rule)) }
                                        td { (delta(m.numbers.week_yoy, &m.rule)) }
                                        td { (vs_plan(m.numbers.week_wow.value, m.numbers.plan_week, &m.rule)) }
                                        td {
                                            @if m.incidents.is_empty() { "–" }
                                            @else {
                                                (m.incidents.len())
                                                @if open > 0 { " (" span.flag { (open) " not explained" } ")" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    @for s in &r.sections {
                        @if let Some(name) = &s.name { h2.section { (name) } }
                        @for m in &s.metrics {
                            section.metric id=(anchor(&m.rule.name)) data-metric=(m.rule.name) {
                                header {
                                    h3 { (m.rule.name) }
                                    span.owner { "Owner: " (m.owner) }
                                }
                                div.chart { (chart_of(m, year)) }
                                div.body {
                                    (box_table(&m.numbers, &m.rule, &week_label))
                                    div.notes {
                                        h4 { "This week's incidents" }
                                        @if m.incidents.is_empty() {
                                            p.quiet { "None." }
                                        } @else {
                                            ul.incidents { @for i in &m.incidents { (incident(i, &m.rule, &due)) } }
                                        }
                                    }
                                }
                                @for d in &m.drills {
                                    h4 { "By " (d.dimension) }
                                    (drill(d, &m.rule))
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    page.into_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::report::Aggregate;

    fn rule(format: NumberFormat, unit: &str, decimals: Option<usize>) -> ReportMetric {
        ReportMetric {
            name: "m".into(),
            aggregate: Aggregate::Sum,
            format,
            unit: unit.into(),
            decimals,
        }
    }

    #[test]
    fn numbers_for_people() {
        let n = rule(NumberFormat::Number, "", None);
        assert_eq!(value(1_234_567.0, &n), "1,234,567");
        assert_eq!(
            value(-1_234.0, &rule(NumberFormat::Number, "£", Some(2))),
            "-£1,234.00"
        );
        assert_eq!(
            value(812.5, &rule(NumberFormat::Number, "ms", Some(0))),
            "812 ms"
        );
        assert_eq!(
            value(0.02146, &rule(NumberFormat::Percent, "", None)),
            "2.15%"
        );
        assert_eq!(compact(2_150_000.0), "2.15M");
        assert_eq!(compact(120_000.0), "120k");
        assert_eq!(compact(950.0), "950");
        let p = rule(NumberFormat::Percent, "", None);
        let c = Compare {
            value: Some(0.0215),
            prior: Some(0.0200),
        };
        assert!(delta(c, &p).into_string().contains("+15 bps"));
        let c = Compare {
            value: Some(90.0),
            prior: Some(100.0),
        };
        let s = delta(c, &n).into_string();
        assert!(s.contains("-10.0%") && s.contains("down"), "{s}");
    }
}
