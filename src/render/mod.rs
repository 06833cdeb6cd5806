//! Email text: the digest one owner receives, as subject, plain text and HTML.
//!
//! Pure: everything comes in as arguments (incidents, the review settings,
//! `now`), nothing is read from the clock, the store or the network. Also owns
//! the review calendar arithmetic (next review, deadline, start of the review
//! week) because the subject and body are phrased around it.
//!
//! Must not: decide who gets what (that is `alert`), or send anything.

pub mod chart;

use std::cmp::Ordering;
use std::fmt::Write as _;

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use lettre::message::Mailbox;

use crate::alert::Incident;
use crate::config::ReviewConfig;
use crate::model::{Check, Direction, Finding, Granularity, format_ts};

/// A rendered digest.
#[derive(Debug, Clone, PartialEq)]
pub struct Digest {
    /// Subject line.
    pub subject: String,
    /// text/plain body.
    pub text: String,
    /// text/html body.
    pub html: String,
}

/// The review time as a local instant; a time skipped by a DST change moves
/// one hour later, an ambiguous one takes the first occurrence.
fn resolve(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Tz>> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Some(t),
        LocalResult::None => tz
            .from_local_datetime(&(local + Duration::hours(1)))
            .earliest(),
    }
}

/// The first review strictly after `now`.
pub fn next_review(review: &ReviewConfig, now: DateTime<Utc>) -> DateTime<Tz> {
    let local = now.with_timezone(&review.timezone);
    let mut day = local.date_naive();
    for _ in 0..9 {
        if day.weekday() == review.weekday
            && let Some(t) = resolve(review.timezone, day.and_time(review.time))
            && t.with_timezone(&Utc) > now
        {
            return t;
        }
        match day.succ_opt() {
            Some(d) => day = d,
            None => break,
        }
    }
    local + Duration::days(7)
}

/// The last review at or before `now`: the start of the current review week.
pub fn previous_review(review: &ReviewConfig, now: DateTime<Utc>) -> DateTime<Tz> {
    let local = now.with_timezone(&review.timezone);
    let mut day = local.date_naive();
    for _ in 0..9 {
        if day.weekday() == review.weekday
            && let Some(t) = resolve(review.timezone, day.and_time(review.time))
            && t.with_timezone(&Utc) <= now
        {
            return t;
        }
        match day.pred_opt() {
            Some(d) => day = d,
            None => break,
        }
    }
    local - Duration::days(7)
}

/// When explanations are due: the next review minus `due_hours_before`.
pub fn deadline(review: &ReviewConfig, now: DateTime<Utc>) -> DateTime<Tz> {
    next_review(review, now) - Duration::hours(review.due_hours_before)
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

/// Severity rank: data-health problems first, then level shifts, then the rest.
fn rank(check: Check) -> u8 {
    if check.is_data_health() {
        2
    } else if check == Check::LevelShift {
        1
    } else {
        0
    }
}

/// Compare by severity (`Greater`: more severe): data-health checks before
/// statistical ones, then larger |score|.
pub fn severity_cmp(a_check: Check, a_score: f64, b_check: Check, b_score: f64) -> Ordering {
    let abs = |x: f64| if x.is_finite() { x.abs() } else { 0.0 };
    rank(a_check)
        .cmp(&rank(b_check))
        .then(abs(a_score).total_cmp(&abs(b_score)))
}

/// Order incidents most severe first (ties: metric, dimensions, id).
pub fn sort_by_severity(incidents: &mut [Incident]) {
    incidents.sort_by(|a, b| {
        severity_cmp(b.worst.check, b.worst.score, a.worst.check, a.worst.score)
            .then_with(|| a.key.cmp(&b.key))
            .then(a.id.cmp(&b.id))
    });
}

/// A number for people: thousands separators, few decimals, `n/a` for NaN.
pub fn num(x: f64) -> String {
    if !x.is_finite() {
        return "n/a".to_string();
    }
    let a = x.abs();
    let s = if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    };
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    let (sign, digits) = match s.strip_prefix('-') {
        Some(d) => ("-", d),
        None => ("", s.as_str()),
    };
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (digits, None),
    };
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if grouped == "0" && frac.is_none() {
        ""
    } else {
        sign
    };
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

/// A signed percentage with one decimal, or `n/a`.
pub fn pct(x: Option<f64>) -> String {
    match x {
        Some(v) if v.is_finite() => format!("{v:+.1}%"),
        _ => "n/a".to_string(),
    }
}

/// Deviation of actual from expected, in percent of expected.
pub fn deviation_pct(f: &Finding) -> Option<f64> {
    let d = (f.value - f.expected) / f.expected.abs() * 100.0;
    (d.is_finite() && f.expected != 0.0).then_some(d)
}

/// `6 weeks of history`, `20 days of history`.
fn history_words(f: &Finding) -> String {
    let h = f.history;
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
    let side = match f.direction {
        Direction::Down => "below",
        Direction::Up => "above",
        Direction::Both => {
            if f.value < f.expected {
                "below"
            } else {
                "above"
            }
        }
    };
    let amount = match deviation_pct(f) {
        Some(d) => format!("{:.0}% {side}", d.abs()),
        None => side.to_string(),
    };
    let mut line = match f.check {
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
            num(f.expected)
        ),
        Check::Missing => "no data arrived for this period".to_string(),
        Check::Stale => format!(
            "the same value ({}) repeated period after period",
            num(f.value)
        ),
        Check::Late => "the newest data is overdue: the export has not been updated".to_string(),
        Check::Bounds => match (f.value < f.lower, f.value > f.upper) {
            (true, _) => format!(
                "{} is below the allowed minimum {}",
                num(f.value),
                num(f.lower)
            ),
            (_, true) => format!(
                "{} is above the allowed maximum {}",
                num(f.value),
                num(f.upper)
            ),
            _ => format!("{} is outside the allowed range", num(f.value)),
        },
        Check::MaxChange => format!(
            "changed {} against the previous period, more than the metric allows",
            pct(deviation_pct(f))
        ),
    };
    if let Some(note) = f.note.as_deref().filter(|n| !n.is_empty()) {
        line.push_str("; ");
        line.push_str(note);
    }
    line
}

/// `revenue (region=eu, channel=web)`, or `revenue`.
fn series_label(i: &Incident) -> String {
    if i.key.dims.is_empty() {
        i.key.metric.clone()
    } else {
        let dims: Vec<String> = i.key.dims.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{} ({})", i.key.metric, dims.join(", "))
    }
}

/// `2020-11-29`, or `2020-11-27 to 2020-11-29 (3 periods flagged)`.
fn period_label(i: &Incident) -> String {
    let g = i.granularity;
    let n = i.periods();
    if n <= 1 || i.opened_at_ts == i.last_finding_ts {
        format_ts(i.last_finding_ts, g)
    } else {
        format!(
            "{} to {} ({n} periods flagged)",
            format_ts(i.opened_at_ts, g),
            format_ts(i.last_finding_ts, g)
        )
    }
}

/// The numbers line: `580 vs expected 1,000 (normal range 900 to 1,100), -42.0%`.
fn numbers_label(f: &Finding) -> String {
    format!(
        "{} vs expected {} (normal range {} to {}), {}",
        num(f.value),
        num(f.expected),
        num(f.lower),
        num(f.upper),
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
fn ask(review: &ReviewConfig, now: DateTime<Utc>, n: usize) -> (String, String) {
    let next = next_review(review, now);
    let due = deadline(review, now);
    let tz = review.timezone.name();
    let each = if n == 1 { "it" } else { "each one" };
    let first = format!(
        "callout found {} in metrics you own. Please reply to this email and explain {each}",
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

/// Render the digest for one owner. Incidents are shown most severe first.
pub fn digest(
    owner: &Mailbox,
    incidents: &[Incident],
    review: &ReviewConfig,
    now: DateTime<Utc>,
) -> Digest {
    let mut items = incidents.to_vec();
    sort_by_severity(&mut items);
    let n = items.len();
    let next = next_review(review, now);
    let subject = format!(
        "[callout] {} to explain before {} {}",
        count_outliers(n),
        short_time(&next),
        review.name
    );
    let name = greeting_name(owner);
    let (first, when) = ask(review, now, n);
    let ids: Vec<String> = items.iter().map(|i| format!("#{}", i.id)).collect();

    let mut text = String::new();
    let _ = write!(text, "Hello {name},\n\n{first}\n{when}\n");
    for (k, i) in items.iter().enumerate() {
        let f = &i.worst;
        let _ = write!(
            text,
            "\n{}. {}\n   Period:    {}\n   Why:       {}\n   Actual:    {}\n   WoW / YoY: {} / {}\n   Check:     {} (source {})\n   Your explanation:\n",
            k + 1,
            series_label(i),
            period_label(i),
            why(f),
            numbers_label(f),
            pct(f.wow_pct),
            pct(f.yoy_pct),
            f.check,
            i.source,
        );
    }
    let footer = format!(
        "Sent by callout for the {}. Incidents {}.",
        review.name,
        ids.join(", ")
    );
    let _ = write!(text, "\n-- \n{footer}\n");

    let e = escape_html;
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head>\n<body style=\"font-family: sans-serif; line-height: 1.4\">\n<p>Hello {},</p>\n<p>{}\n<strong>{}</strong></p>\n<ol>\n",
        e(&subject),
        e(&name),
        e(&first),
        e(&when)
    );
    for i in &items {
        let f = &i.worst;
        let _ = write!(
            html,
            "<li>\n<p><strong>{}</strong></p>\n<table cellpadding=\"2\">\n<tr><th align=\"left\">Period</th><td>{}</td></tr>\n<tr><th align=\"left\">Why</th><td>{}</td></tr>\n<tr><th align=\"left\">Actual</th><td>{}</td></tr>\n<tr><th align=\"left\">WoW / YoY</th><td>{} / {}</td></tr>\n<tr><th align=\"left\">Check</th><td>{} (source {})</td></tr>\n</table>\n<p><em>Your explanation:</em></p>\n</li>\n",
            e(&series_label(i)),
            e(&period_label(i)),
            e(&why(f)),
            e(&numbers_label(f)),
            e(&pct(f.wow_pct)),
            e(&pct(f.yoy_pct)),
            e(f.check.as_str()),
            e(&i.source),
        );
    }
    let _ = write!(
        html,
        "</ol>\n<p style=\"color: #666\">{}</p>\n</body></html>\n",
        e(&footer)
    );
    Digest {
        subject,
        text,
        html,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SeriesKey;
    use chrono::{NaiveTime, Weekday};

    fn review() -> ReviewConfig {
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

    fn finding(metric: &str, dims: &[(&str, &str)], check: Check, score: f64) -> Finding {
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
            timestamp: day(29),
            value: 580.0,
            expected: 1000.0,
            lower: 900.0,
            upper: 1100.0,
            score,
            p_value: 1e-5,
            direction: Direction::Down,
            check,
            wow_pct: Some(-40.123),
            yoy_pct: None,
            history: 42,
            note: None,
        }
    }

    fn incident(id: i64, f: Finding) -> Incident {
        Incident {
            id,
            source: f.source.clone(),
            key: f.key.clone(),
            granularity: f.granularity,
            owner: None,
            opened_at_ts: f.timestamp,
            last_finding_ts: f.timestamp,
            closed_at_ts: None,
            findings: vec![f.clone()],
            worst: f,
        }
    }

    fn ana() -> Mailbox {
        "Ana Ortiz <ana@example.com>".parse().unwrap()
    }

    #[test]
    fn review_arithmetic() {
        assert_eq!(
            short_time(&next_review(&review(), now())),
            "Wed 2 Dec 10:00"
        );
        assert_eq!(short_time(&deadline(&review(), now())), "Tue 1 Dec 10:00");
        assert_eq!(
            short_time(&previous_review(&review(), now())),
            "Wed 25 Nov 10:00"
        );
        // At the review instant the next one is a week later.
        let at = Utc.with_ymd_and_hms(2020, 12, 2, 10, 0, 0).unwrap();
        assert_eq!(short_time(&next_review(&review(), at)), "Wed 9 Dec 10:00");
        assert_eq!(
            short_time(&previous_review(&review(), at)),
            "Wed 2 Dec 10:00"
        );
        // Summer time: 10:00 London is 09:00 UTC.
        let summer = Utc.with_ymd_and_hms(2021, 6, 30, 9, 30, 0).unwrap();
        assert_eq!(
            short_time(&next_review(&review(), summer)),
            "Wed 7 Jul 10:00"
        );
    }

    #[test]
    fn numbers_for_people() {
        let cases = [
            (1234567.8, "1,234,568"),
            (-1500.0, "-1,500"),
            (580.0, "580"),
            (12.25, "12.2"),
            (1.5, "1.5"),
            (0.01234, "0.012"),
            (0.0, "0"),
            (f64::NAN, "n/a"),
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
                    f.note = Some("Christmas".into());
                    f.history = 10;
                    f
                },
                "42% below the same holiday last year; 10 days of history; Christmas",
            ),
            (
                {
                    let mut f = finding("orders", &[], Check::Missing, 0.0);
                    f.value = f64::NAN;
                    f
                },
                "no data arrived for this period",
            ),
            (
                {
                    let mut f = finding("orders", &[], Check::Bounds, 0.0);
                    f.value = -3.0;
                    f.lower = 0.0;
                    f
                },
                "-3 is below the allowed minimum 0",
            ),
            (
                {
                    let mut f = finding("visits", &[], Check::Seasonal, 6.0);
                    f.granularity = Granularity::Hour;
                    f.direction = Direction::Up;
                    f.value = 1500.0;
                    f.history = 24 * 7 * 3 + 5;
                    f
                },
                "50% above the usual level for this hour of the week; 3 weeks of history",
            ),
        ];
        for (f, want) in cases {
            assert_eq!(why(&f), want, "{:?}", f.check);
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

    #[test]
    fn subject_counts_and_names_the_review() {
        let one = [incident(1, finding("revenue", &[], Check::Seasonal, -5.0))];
        let d = digest(&ana(), &one, &review(), now());
        assert_eq!(
            d.subject,
            "[callout] 1 outlier to explain before Wed 2 Dec 10:00 WBR"
        );
        let three = [
            incident(1, finding("a", &[], Check::Seasonal, -5.0)),
            incident(2, finding("b", &[], Check::Seasonal, -5.0)),
            incident(3, finding("c", &[], Check::Seasonal, -5.0)),
        ];
        let d = digest(&ana(), &three, &review(), now());
        assert_eq!(
            d.subject,
            "[callout] 3 outliers to explain before Wed 2 Dec 10:00 WBR"
        );
    }

    #[test]
    fn plain_text_snapshot() {
        let mut a = finding("revenue", &[("region", "eu")], Check::Seasonal, -5.0);
        a.timestamp = day(29);
        let mut inc_a = incident(7, a.clone());
        let mut a_early = a.clone();
        a_early.timestamp = day(27);
        a_early.score = -4.0;
        inc_a.opened_at_ts = day(27);
        inc_a.findings = vec![a_early, a];
        let mut m = finding("orders", &[], Check::Missing, 0.0);
        m.value = f64::NAN;
        m.wow_pct = None;
        let d = digest(&ana(), &[inc_a, incident(9, m)], &review(), now());
        let want = "\
Hello Ana Ortiz,

callout found 2 outliers in metrics you own. Please reply to this email and explain each one
before Tue 1 Dec 10:00 (Europe/London), 24 hours before the WBR on Wed 2 Dec 10:00.

1. orders
   Period:    2020-11-29
   Why:       no data arrived for this period
   Actual:    n/a vs expected 1,000 (normal range 900 to 1,100), n/a
   WoW / YoY: n/a / n/a
   Check:     missing (source shop)
   Your explanation:

2. revenue (region=eu)
   Period:    2020-11-27 to 2020-11-29 (2 periods flagged)
   Why:       42% below the same weekday's usual level; 6 weeks of history
   Actual:    580 vs expected 1,000 (normal range 900 to 1,100), -42.0%
   WoW / YoY: -40.1% / n/a
   Check:     seasonal (source shop)
   Your explanation:

-- 
Sent by callout for the WBR. Incidents #9, #7.
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
        let d = digest(&owner, &[incident(1, f)], &review(), now());
        let want = "\
<!DOCTYPE html>
<html><head><meta charset=\"utf-8\"><title>[callout] 1 outlier to explain before Wed 2 Dec 10:00 WBR</title></head>
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
    fn a_passed_deadline_asks_for_an_answer_as_soon_as_possible() {
        let late = Utc.with_ymd_and_hms(2020, 12, 1, 12, 0, 0).unwrap();
        let d = digest(
            &ana(),
            &[incident(1, finding("a", &[], Check::Seasonal, -5.0))],
            &review(),
            late,
        );
        assert!(
            d.text
                .contains("as soon as possible: explanations were due Tue 1 Dec 10:00"),
            "{}",
            d.text
        );
    }
}
