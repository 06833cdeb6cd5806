//! The HTML pages: an incident's explanation page, the owner's open items,
//! the confirmation and the error pages.
//!
//! Pure: data in, markup out. maud escapes every interpolated value, so a
//! metric name, a dimension value or an owner's text can never become markup;
//! no HTML is built from strings here. Pages need no JavaScript; the CSS is
//! inline (one small block) and lays out for a phone first.

use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::fmt::{amount, num, pct};
use crate::model::{Cause, Check, Finding, Persistence, SeriesKey, format_ts};
use crate::render::chart::{self, Chart};
use crate::render::{deviation_pct, drivers};
use crate::store::IncidentRow;
use crate::store::explanations::ExplanationRow;
use crate::store::history::SeriesHistory;

/// Longest explanation accepted, in characters.
pub const MAX_TEXT_CHARS: usize = 2000;

/// Static CSS: no user data ever goes in here.
const CSS: &str = r#"
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;background:#f4f5f7}
main{max-width:780px;margin:0 auto;padding:16px}
header{font-size:14px;color:#5b6373;margin-bottom:4px}
h1{font-size:22px;line-height:1.3;margin:4px 0 12px;overflow-wrap:anywhere}
h2{font-size:17px;margin:0 0 8px}
section{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:14px 16px;margin:0 0 14px}
.lead{font-size:17px;margin:0 0 10px}
.dims{color:#5b6373;font-weight:normal}
.facts{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:8px 16px;margin:0}
.facts div{border-left:3px solid #dde1e7;padding-left:8px}
.facts dt{font-size:13px;color:#5b6373}
.facts dd{margin:0;font-weight:600;overflow-wrap:anywhere}
.why{margin:10px 0 0;color:#333}
.badge{display:inline-block;font-size:13px;padding:1px 8px;border-radius:10px;background:#e7eaf0;color:#333;vertical-align:middle}
.badge.open{background:#fde8e8;color:#9b1c1c}.badge.done{background:#e3f4e6;color:#1f6b33}
.notice{padding:10px 14px;border-radius:8px;margin:0 0 14px}
.notice.ok{background:#e3f4e6;border:1px solid #9fd3ad}
.notice.err{background:#fde8e8;border:1px solid #f0a8a8}
.tablewrap{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:14px}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eceef2;white-space:nowrap}
svg.chart{width:100%;height:auto;display:block}
.chart .grid{stroke:#eceef2;stroke-width:1}
.chart text{font-size:11px;fill:#5b6373}
.chart .series{fill:none;stroke:#2f5fb3;stroke-width:1.8}
.chart .band{fill:#2f9e44;fill-opacity:.18}
.chart .expected{stroke:#2f9e44;stroke-width:2}
.chart .mark{fill:#d6336c;stroke:#fff;stroke-width:1.5}
.legend{font-size:13px;color:#5b6373;margin:4px 0 12px}
.legend i{display:inline-block;width:12px;height:12px;vertical-align:-1px;margin:0 4px 0 10px;border-radius:2px}
fieldset{border:0;padding:0;margin:0 0 14px}
legend{font-weight:600;margin-bottom:6px}
label.choice{display:block;padding:8px 10px;border:1px solid #dde1e7;border-radius:6px;margin:0 0 6px;cursor:pointer}
label.choice:has(input:checked){border-color:#2f5fb3;background:#eef3fc}
label.choice input{margin-right:8px}
textarea{width:100%;min-height:140px;font:inherit;padding:8px;border:1px solid #b9c0cc;border-radius:6px}
.hint{font-size:13px;color:#5b6373;margin:4px 0 0}
button{font:inherit;font-weight:600;background:#2f5fb3;color:#fff;border:0;border-radius:6px;padding:12px 20px;width:100%;cursor:pointer}
@media(min-width:600px){button{width:auto}}
.expl{border-left:3px solid #b9c0cc;padding:2px 0 2px 10px;margin:0 0 10px}
.expl p{margin:2px 0;white-space:pre-wrap;overflow-wrap:anywhere}
.meta{font-size:13px;color:#5b6373}
ul.items{list-style:none;padding:0;margin:0}
ul.items li{padding:10px 0;border-bottom:1px solid #eceef2}
ul.items a{font-weight:600}
"#;

/// A whole HTML document around `body`.
pub fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex, nofollow";
                meta name="referrer" content="no-referrer";
                title { (title) " · callout" }
                style { (PreEscaped(CSS)) }
            }
            body { main { (body) } }
        }
    }
}

/// Everything the explanation page of one incident shows.
#[derive(Debug, Clone)]
pub struct IncidentView {
    /// The incident.
    pub incident: IncidentRow,
    /// Its findings, by time.
    pub findings: Vec<Finding>,
    /// The series' stored history for the charts.
    pub history: Option<SeriesHistory>,
    /// Every explanation of this incident, oldest first (the last one counts).
    pub explanations: Vec<ExplanationRow>,
    /// Current explanations of the series' other incidents, oldest first.
    pub earlier: Vec<ExplanationRow>,
    /// The review's name, e.g. "WBR".
    pub review_name: String,
    /// "Tue 1 Dec 10:00 GMT" while an answer is still wanted.
    pub deadline: Option<String>,
    /// Link back to the owner's list, when the page was reached from it.
    pub list_href: Option<String>,
    /// The metric's unit (`£`; "" none), as the digest and pre-read write it.
    pub unit: String,
}

/// What the form holds (echoed back when it was not accepted).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FormValues {
    /// Chosen cause.
    pub cause: Option<Cause>,
    /// Chosen persistence (level shifts).
    pub persistence: Option<Persistence>,
    /// The text.
    pub text: String,
}

/// A message at the top of the page.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// Nothing to say.
    None,
    /// The form was stored (`new`: a new row; otherwise it was already stored as is).
    Saved {
        /// A new row was stored (false: the same answer was already there).
        new: bool,
    },
    /// The form was not accepted, with every reason.
    Invalid(Vec<String>),
}

/// `orders` and `region=eu, channel=web` (or `total` for a roll-up).
fn series_parts(key: &SeriesKey) -> (String, String) {
    (key.metric.clone(), key.dims_label())
}

/// The finding the page leads with: the incident's worst, as its digest and
/// the pre-read show it ([`crate::model::worst_finding`]).
fn headline(v: &IncidentView) -> Option<&Finding> {
    crate::model::worst_finding(&v.findings)
}

fn period(i: &IncidentRow) -> String {
    if i.opened_at_ts == i.last_finding_ts {
        format_ts(i.opened_at_ts, i.granularity)
    } else {
        format!(
            "{} to {}",
            format_ts(i.opened_at_ts, i.granularity),
            format_ts(i.last_finding_ts, i.granularity)
        )
    }
}

fn utc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

fn explanation(e: &ExplanationRow, g: crate::model::Granularity) -> Markup {
    html! {
        div.expl {
            div.meta {
                (format_ts(e.opened_at_ts, g))
                @if e.last_finding_ts != e.opened_at_ts { " to " (format_ts(e.last_finding_ts, g)) }
                " · " strong { (e.cause.label()) }
                @if let Some(p) = e.persistence { " · " (persistence_label(p)) }
            }
            p { (e.text) }
            div.meta { (e.author) ", " (utc(e.created_at)) }
        }
    }
}

fn persistence_label(p: Persistence) -> &'static str {
    match p {
        Persistence::NewNormal => "the new normal",
        Persistence::OneOff => "a one-off",
    }
}

fn charts(v: &IncidentView) -> Markup {
    let Some(h) = &v.history else {
        return html! {
            p.meta { "No chart: callout keeps a copy of a series' recent values only while it has open or recent incidents, and this one predates it." }
        };
    };
    let (band, marks) = chart::bands_and_marks(&v.findings);
    let metric = &v.incident.key.metric;
    let (recent_fmt, year_fmt) = if h.granularity.is_dated() {
        ("%d %b", "%b %Y")
    } else {
        ("%d %b %H:%M", "%b %Y")
    };
    let recent_title = format!("{metric}, last 6 weeks");
    let year_title = format!("{metric}, last 12 months");
    html! {
        h2 { "Last 6 weeks" }
        (chart::svg(&Chart { title: &recent_title, points: &h.recent, band: &band, marks: &marks, x_format: recent_fmt, unit: &v.unit }))
        div.legend {
            i style="background:#2f5fb3" {} "value"
            i style="background:#d6336c;border-radius:6px" {} "flagged"
            i style="background:rgba(47,158,68,.3)" {} "normal range (bar: expected)"
        }
        h2 { "Last 12 months" }
        (chart::svg(&Chart { title: &year_title, points: &h.year, band: &band, marks: &marks, x_format: year_fmt, unit: &v.unit }))
        @if !h.granularity.is_dated() { p.meta { "Daily averages." } }
    }
}

fn form(v: &IncidentView, values: &FormValues) -> Markup {
    let shift = v.findings.iter().any(|f| f.hit.check == Check::LevelShift)
        || v.incident.worst_check == Check::LevelShift;
    let current = v.explanations.last();
    html! {
        form method="post" {
            fieldset {
                legend { "What caused it?" }
                @for c in Cause::ALL {
                    label.choice {
                        input type="radio" name="cause" value=(c.as_str()) required checked[values.cause == Some(c)];
                        (c.label())
                    }
                }
            }
            @if shift {
                fieldset {
                    legend { "Will the new level last?" }
                    label.choice {
                        input type="radio" name="persistence" value="new_normal" checked[values.persistence == Some(Persistence::NewNormal)];
                        "Yes, this is the new normal " span.meta { "(callout judges later values against it)" }
                    }
                    label.choice {
                        input type="radio" name="persistence" value="one_off" checked[values.persistence == Some(Persistence::OneOff)];
                        "No, a one-off " span.meta { "(these values never count as normal)" }
                    }
                    label.choice {
                        input type="radio" name="persistence" value="" checked[values.persistence.is_none()];
                        "Not sure yet"
                    }
                }
            }
            label for="text" { strong { "What happened?" } }
            textarea id="text" name="text" required maxlength=(MAX_TEXT_CHARS) { (values.text) }
            p.hint { "Shown at the " (v.review_name) " and next to this metric's future outliers. At most " (MAX_TEXT_CHARS) " characters." }
            p { button type="submit" { @if current.is_some() { "Update explanation" } @else { "Send explanation" } } }
        }
    }
}

/// The explanation page of one incident.
pub fn incident_page(v: &IncidentView, values: &FormValues, notice: &Notice) -> Markup {
    let i = &v.incident;
    let (metric, dims) = series_parts(&i.key);
    let head = headline(v);
    let explained = !v.explanations.is_empty();
    // an empty form on a page with an answer starts from that answer, ready to edit
    let prefilled;
    let values = match v.explanations.last() {
        Some(e) if *values == FormValues::default() => {
            prefilled = FormValues {
                cause: Some(e.cause),
                persistence: e.persistence,
                text: e.text.clone(),
            };
            &prefilled
        }
        _ => values,
    };
    let body = html! {
        header {
            "callout · " (v.review_name)
            @if let Some(href) = &v.list_href { " · " a href=(href) { "all my open items" } }
        }
        h1 {
            (metric)
            @if !dims.is_empty() { " " span.dims { "(" (dims) ")" } }
            " "
            @if explained { span.badge.done { "explained" } }
            @else if i.closed_at_ts.is_none() { span.badge.open { "needs your explanation" } }
            // a level shift closes once the new level is the baseline: the
            // series did not go back, it settled
            @else if v.findings.iter().any(|f| f.hit.check == Check::LevelShift) { span.badge { "settled at a new level, not explained" } }
            @else { span.badge { "back to normal, not explained" } }
        }
        @match notice {
            Notice::Saved { new: true } => div.notice.ok role="status" { strong { "Thank you, your explanation is saved." } " You can change it below; earlier versions are kept." },
            Notice::Saved { new: false } => div.notice.ok role="status" { strong { "Already saved." } " This explanation was stored before; nothing changed." },
            Notice::Invalid(problems) => div.notice.err role="alert" {
                strong { "Not saved:" }
                ul { @for p in problems { li { (p) } } }
            },
            Notice::None => {},
        }
        section {
            @if let Some(f) = head {
                p.lead {
                    strong { (format_ts(f.hit.ts, f.granularity)) } ": "
                    (amount(f.hit.value, &v.unit)) " against an expected " (amount(f.hit.expected, &v.unit))
                }
                dl.facts {
                    div { dt { "Period" } dd { (period(i)) } }
                    div { dt { "Actual" } dd { (amount(f.hit.value, &v.unit)) } }
                    div { dt { "Expected" } dd { (amount(f.hit.expected, &v.unit)) } }
                    div { dt { "Normal range" } dd { (amount(f.hit.lower, &v.unit)) " to " (amount(f.hit.upper, &v.unit)) } }
                    div { dt { "vs expected" } dd { (pct(deviation_pct(f))) } }
                    div { dt { "Week over week" } dd { (pct(f.hit.wow_pct)) } }
                    div { dt { "Year over year" } dd { (pct(f.hit.yoy_pct)) } }
                    div { dt { "Check" } dd { (f.hit.check.as_str()) } }
                }
                p.why { "Why flagged: " (drivers::why_without_drivers(f)) "." }
                // the slices that drove a total
                (drivers::table(&drivers::of(f)))
            } @else {
                p.lead { "Period: " (period(i)) " · " (i.worst_check.as_str()) }
            }
            @if let Some(d) = &v.deadline {
                @if !explained { p { strong { "Please explain by " (d) "." } } }
            }
            @if v.findings.len() > 1 {
                h2 { "Flagged periods" }
                div.tablewrap { table {
                    thead { tr { th { "Period" } th { "Actual" } th { "Expected" } th { "Normal range" } th { "WoW" } th { "YoY" } th { "Check" } } }
                    tbody { @for f in &v.findings { tr {
                        td { (format_ts(f.hit.ts, f.granularity)) }
                        td { (amount(f.hit.value, &v.unit)) } td { (amount(f.hit.expected, &v.unit)) }
                        td { (amount(f.hit.lower, &v.unit)) " to " (amount(f.hit.upper, &v.unit)) }
                        td { (pct(f.hit.wow_pct)) } td { (pct(f.hit.yoy_pct)) }
                        td { (f.hit.check.as_str()) }
                    } } }
                } }
            }
        }
        section { (charts(v)) }
        section {
            h2 { @if explained { "Your explanation" } @else { "Explain it" } }
            @if let Some(e) = v.explanations.last() {
                (explanation(e, i.granularity))
                @if v.explanations.len() > 1 {
                    details {
                        summary.meta { "Earlier versions (" (v.explanations.len() - 1) ")" }
                        @for e in v.explanations[..v.explanations.len() - 1].iter().rev() { (explanation(e, i.granularity)) }
                    }
                }
                h2 { "Change it" }
            }
            (form(v, values))
        }
        @if !v.earlier.is_empty() {
            section {
                h2 { "Earlier explanations for this series" }
                @for e in v.earlier.iter().rev() { (explanation(e, i.granularity)) }
            }
        }
    };
    layout(&metric, body)
}

/// One row of the owner's list.
#[derive(Debug, Clone)]
pub struct ListItem {
    /// The incident.
    pub incident: IncidentRow,
    /// Its headline finding, if stored.
    pub finding: Option<Finding>,
    /// Has an explanation.
    pub explained: bool,
    /// Relative link to its page.
    pub href: String,
}

/// "All my open items".
pub fn list_page(
    owner: &str,
    review_name: &str,
    deadline: Option<&str>,
    items: &[ListItem],
) -> Markup {
    let open = items.iter().filter(|i| !i.explained).count();
    let body = html! {
        header { "callout · " (review_name) }
        h1 { "Open items for " (owner) }
        section {
            @if items.is_empty() {
                p { "Nothing open: no outlier of yours is waiting for an explanation." }
            } @else {
                p.lead {
                    (open) " of " (items.len()) " still need an explanation"
                    @if let Some(d) = deadline { @if open > 0 { ", by " strong { (d) } } }
                    "."
                }
                ul.items { @for it in items {
                    li {
                        a href=(it.href) {
                            (it.incident.key.metric)
                            @let (_, dims) = series_parts(&it.incident.key);
                            @if !dims.is_empty() { " " span.dims { "(" (dims) ")" } }
                        }
                        " "
                        @if it.explained { span.badge.done { "explained" } } @else { span.badge.open { "needs explanation" } }
                        div.meta {
                            (period(&it.incident)) " · " (it.incident.worst_check.as_str())
                            @if let Some(f) = &it.finding { " · " (num(f.hit.value)) " vs expected " (num(f.hit.expected)) " (" (pct(deviation_pct(f))) ")" }
                        }
                    }
                } }
            }
        }
    };
    layout("Open items", body)
}

/// A page for a refused request: a heading and what to do next.
pub fn message_page(title: &str, lines: &[&str]) -> Markup {
    layout(
        title,
        html! {
            header { "callout" }
            h1 { (title) }
            section { @for l in lines { p { (l) } } }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Granularity, Hit, Side};

    fn finding(metric: &str) -> Finding {
        Finding {
            source: "s".into(),
            key: SeriesKey {
                metric: metric.into(),
                dims: vec![("region".into(), "<i>eu</i>".into())],
            },
            granularity: Granularity::Day,
            hit: Hit {
                ts: 86_400_000 * 100,
                value: 1820.0,
                expected: 1000.0,
                lower: 900.0,
                upper: 1100.0,
                score: 6.0,
                p_value: 1e-6,
                side: Side::Up,
                check: Check::LevelShift,
                wow_pct: Some(80.0),
                yoy_pct: None,
                history: 90,
                note: None,
            },
        }
    }

    fn view(metric: &str) -> IncidentView {
        let f = finding(metric);
        IncidentView {
            incident: IncidentRow {
                id: 1,
                source: "s".into(),
                key: f.key.clone(),
                lane: crate::model::Lane::Statistical,
                granularity: Granularity::Day,
                step_ms: 86_400_000,
                owner: Some("Ana <ana@example.com>".parse().unwrap()),
                opened_at_ts: f.hit.ts,
                last_finding_ts: f.hit.ts,
                last_evaluated_ts: f.hit.ts,
                closed_at_ts: None,
                worst_check: Check::LevelShift,
                worst_score: 6.0,
                past: false,
                announced: true,
                digest_id: None,
                created_run: 1,
            },
            history: Some(SeriesHistory {
                granularity: Granularity::Day,
                taken_at: 0,
                recent: (58..=100)
                    .map(|d| (d * 86_400_000, 1000.0))
                    .chain([(100 * 86_400_000 + 1, 1820.0)])
                    .collect(),
                year: (0..=100).map(|d| (d * 86_400_000, 1000.0)).collect(),
            }),
            findings: vec![f],
            explanations: vec![],
            earlier: vec![],
            review_name: "WBR".into(),
            deadline: Some("Tue 1 Dec 10:00 GMT".into()),
            list_href: None,
            unit: String::new(),
        }
    }

    #[test]
    fn page_shows_numbers_charts_and_a_form_with_escaped_names() {
        let html = incident_page(
            &view("<script>alert(1)</script>"),
            &FormValues::default(),
            &Notice::None,
        )
        .into_string();
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("region=&lt;i&gt;eu&lt;/i&gt;"));
        for needle in [
            "1,820",
            "1,000",
            "900 to 1,100",
            "+82.0%",
            "+80.0%",
            "level_shift",
            "Please explain by Tue 1 Dec 10:00 GMT",
        ] {
            assert!(html.contains(needle), "missing {needle}");
        }
        assert_eq!(
            html.matches("<svg").count(),
            2,
            "six weeks and twelve months"
        );
        assert!(
            html.contains("name=\"persistence\" value=\"new_normal\""),
            "level shift asks new normal vs one-off"
        );
        assert_eq!(html.matches("name=\"cause\"").count(), 5);
        assert!(html.contains("maxlength=\"2000\""));
    }

    #[test]
    fn owner_text_is_escaped_and_history_shown() {
        let mut v = view("orders");
        let e = |id, text: &str| ExplanationRow {
            id,
            incident_id: 1,
            opened_at_ts: 0,
            last_finding_ts: 0,
            cause: Cause::KnownEvent,
            persistence: None,
            text: text.into(),
            author: "Ana <ana@example.com>".into(),
            link_hash: "h".into(),
            created_at: 0,
        };
        v.explanations = vec![e(1, "first"), e(2, "<script>x()</script> promo")];
        v.earlier = vec![e(0, "old <b>one</b>")];
        let html =
            incident_page(&v, &FormValues::default(), &Notice::Saved { new: true }).into_string();
        assert!(
            !html.contains("<script>") && !html.contains("<b>one"),
            "{html}"
        );
        assert!(html.contains("&lt;script&gt;x()&lt;/script&gt; promo"));
        assert!(html.contains("Earlier versions (1)") && html.contains("first"));
        assert!(html.contains("Earlier explanations for this series"));
        assert!(html.contains("Thank you"));
        assert!(
            !html.contains("Please explain by"),
            "explained: no deadline nag"
        );
    }
}
