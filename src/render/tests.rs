//! Fixtures every render test shares (a review, findings, incidents, the
//! test config's sources) and the snapshot tests of the emails: the digest
//! (text and HTML), a reminder, an escalation, built from fixed inputs (no
//! clock), compared with the `.snap` files under `snapshots/`.

use chrono::TimeZone;
use chrono::{DateTime, NaiveTime, Utc, Weekday};
use lettre::message::Mailbox;

use super::reminders::{Due, escalation, reminder};
use super::{Charts, Digest, ItemExtras, Links, PlanLine, digest};
use crate::config::{ReviewConfig, SourceConfig};
use crate::model::{
    Check, Finding, Granularity, Hit, Incident, Lane, SeriesKey, Side, sort_by_severity,
};

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
pub(crate) fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2020, 11, 30, 7, 0, 0).unwrap()
}

pub(crate) fn day(d: u32) -> i64 {
    Utc.with_ymd_and_hms(2020, 11, d, 0, 0, 0)
        .unwrap()
        .timestamp_millis()
}

pub(crate) fn finding(metric: &str, dims: &[(&str, &str)], check: Check, score: f64) -> Finding {
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

pub(crate) fn ana() -> Mailbox {
    "Ana Ortiz <ana@example.com>".parse().unwrap()
}

/// The test config's sources (`shop`: 24 h expected delay, UTC).
pub(crate) fn sources() -> Vec<SourceConfig> {
    let text = "[[source]]\nname = \"shop\"\npath = \"shop.csv\"\ntime_column = \"date\"\ndimensions = [\"region\"]\n";
    crate::config::compile_str(
        text,
        std::path::Path::new("/tmp/callout-test.toml"),
        &|_| None,
    )
    .unwrap()
    .sources
}

/// A late export of 60 series: `detect::late` reports one finding per series.
pub(crate) fn late_export(n: usize) -> Vec<Incident> {
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

/// The emails of one fixed week, every section filled: two outliers (one
/// with a chart, a plan line and a unit, one with markup in its name), a
/// repeated value with its chart, a late export of three series, a missing
/// period, a run notice; with and without links; a reminder with and without
/// links, and an escalation. Names carry quotes, ampersands and angle
/// brackets so the snapshots show the escaping.
fn emails() -> Vec<(&'static str, Digest)> {
    let mut a = finding(
        "revenue",
        &[("region", "eu & \"co\"")],
        Check::Seasonal,
        -5.0,
    );
    a.hit.ts = day(29);
    let mut inc_a = incident(4, a.clone());
    let mut a_early = a.clone();
    a_early.hit.ts = day(27);
    a_early.hit.score = -4.0;
    inc_a.opened_at_ts = day(27);
    inc_a.findings = vec![a_early, a];
    let mut b = finding("orders<b>", &[], Check::Seasonal, 4.0);
    b.hit.side = Side::Up;
    b.hit.value = 1500.0;
    let inc_b = incident(5, b);
    let mut m = finding("sessions", &[("region", "us")], Check::Stale, 0.0);
    m.hit.wow_pct = None;
    let mut inc_m = incident(9, m);
    inc_m.opened_at_ts = day(26);
    let mut items = vec![inc_a, inc_b, inc_m];
    items.extend(late_export(3));
    let mut g1 = finding("orders", &[("region", "eu")], Check::Missing, 0.0);
    g1.hit.ts = day(27);
    items.push(incident(20, g1));
    let recent: Vec<(i64, f64)> = (0..42)
        .map(|d| {
            (
                day(29) - (41 - d) * 86_400_000,
                1000.0 + (d % 7) as f64 * 10.0,
            )
        })
        .collect();
    let charts: Charts = [
        (4, recent.clone()),
        (9, recent.iter().map(|(t, _)| (*t, 580.0)).collect()),
    ]
    .into_iter()
    .collect();
    let extras = ItemExtras {
        plans: [(
            4,
            PlanLine {
                period: "Month to date".into(),
                actual: "£12,300".into(),
                plan: "£13,000".into(),
                change: "-5.4%".into(),
            },
        )]
        .into(),
        units: [("revenue".to_string(), "£".to_string())].into(),
        notice: Some("Catch-up skipped 2 runs <between> Sat & Sun.".into()),
    };
    let links = Links {
        incidents: [
            (4, "https://c.example/e/t4?a=1&b=2".to_string()),
            (5, "https://c.example/e/t5".to_string()),
            (9, "https://c.example/e/t9".to_string()),
        ]
        .into_iter()
        .collect(),
        open_items: "https://c.example/e/all".into(),
    };
    let owner: Mailbox = "O'Brien \"Ana\" <ob@example.com>".parse().unwrap();
    let with_links = digest(
        &owner,
        &items,
        &review(),
        &sources(),
        now(),
        Some(&links),
        &charts,
        &extras,
    );
    let without = digest(
        &ana(),
        &items[..3],
        &review(),
        &sources(),
        now(),
        None,
        &Charts::new(),
        &ItemExtras::default(),
    );
    let tz = chrono_tz::Europe::London;
    let due = Due {
        deadline: tz.with_ymd_and_hms(2020, 12, 1, 10, 0, 0).unwrap(),
        review_at: tz.with_ymd_and_hms(2020, 12, 2, 10, 0, 0).unwrap(),
    };
    let wbr: Mailbox = "WBR organisers <wbr@example.com>".parse().unwrap();
    let rem_links = reminder(
        &owner,
        &items[..3],
        &review(),
        due,
        std::slice::from_ref(&wbr),
        Some(&links),
    );
    let rem = reminder(&ana(), &items[..2], &review(), due, &[], None);
    let sam: Mailbox = "Sam <sam@example.com>".parse().unwrap();
    let esc = escalation(
        &wbr,
        &[
            (owner.clone(), items[..2].to_vec()),
            (sam, vec![items[2].clone()]),
        ],
        &review(),
        due,
    );
    vec![
        ("digest_links", with_links),
        ("digest_plain", without),
        ("reminder_links", rem_links),
        ("reminder_plain", rem),
        ("escalation", esc),
    ]
}

/// One element per line: the HTML as sent has none, and a snapshot diff
/// should point at the element that changed.
fn lines(html: &str) -> String {
    html.replace("><", ">\n<")
}

#[test]
fn snapshots_of_the_digest_the_reminder_and_the_escalation() {
    for (name, d) in emails() {
        let cids: Vec<&str> = d.images.iter().map(|i| i.cid.as_str()).collect();
        let head = format!("Subject: {}\nImages: {cids:?}\n", d.subject);
        insta::assert_snapshot!(format!("{name}_text"), format!("{head}\n{}", d.text));
        insta::assert_snapshot!(format!("{name}_html"), lines(&d.html));
        // escaped by construction: no name, metric or URL became markup
        for raw in ["<b>", "<between>", "\"co\"", "&b="] {
            assert!(
                !d.html.contains(raw),
                "{name}: {raw} unescaped in {}",
                d.html
            );
        }
    }
}
