//! Known-answer tests of every detection method on synthetic daily series.
//!
//! Each series is generated from a fixed seed (level 1000, a multiplicative
//! weekly shape, 3% noise) so a test states exactly where a finding must and
//! must not appear. Everything goes through [`check`], which runs the
//! per-series kernel the way `detect` does.

#![allow(clippy::cast_possible_truncation, reason = "test data sizes are small")]

use std::ops::Range as Days;
use std::path::Path;

use chrono::{Datelike, Duration, NaiveDate};

use super::calendar::{self, Calendar};
use super::series::{self, Explained, SeriesInput};
use super::{Range, detect};
use crate::batch::{Batch, SeriesInfo};
use crate::config::MetricRule;
use crate::model::{
    Cause, Check, ExplainedSpan, Finding, Granularity, Hit, Persistence, SeriesKey, Side,
};

const DAY_MS: i64 = 86_400_000;
const LEVEL: f64 = 1000.0;
/// Noise on the log scale: about 3% of the value.
const SIGMA: f64 = 0.03;
/// Monday … Sunday.
const WEEK: [f64; 7] = [1.0, 1.05, 1.1, 1.05, 1.0, 0.8, 0.75];
/// Three years of days.
const YEARS3: usize = 1095;

/// Day 0 of every series: a Monday.
fn start() -> NaiveDate {
    NaiveDate::from_ymd_opt(2023, 1, 2).unwrap()
}

fn ms(d: NaiveDate) -> i64 {
    d.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_millis()
}

/// Timestamp of day `day` of a series.
fn day_ms(day: usize) -> i64 {
    ms(start()) + day as i64 * DAY_MS
}

/// Day number of a timestamp.
fn day_of(t: i64) -> i64 {
    (t - ms(start())).div_euclid(DAY_MS)
}

/// Day number of a date.
fn day_num(d: NaiveDate) -> usize {
    (d - start()).num_days() as usize
}

/// Black Friday of `year`.
fn black_friday(year: i32) -> NaiveDate {
    calendar::thanksgiving(year).unwrap() + Duration::days(1)
}

/// SplitMix64: deterministic, seedable, good enough for test noise.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    pub(super) fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub(super) fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.uniform(), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// Poisson (Knuth's method; fine for small means).
    pub(super) fn poisson(&mut self, mean: f64) -> f64 {
        let limit = (-mean).exp();
        let mut k = 0.0;
        let mut p = self.uniform();
        while p > limit {
            k += 1.0;
            p *= self.uniform();
        }
        k
    }
}

#[derive(Clone, Copy)]
enum Noise {
    /// Log-normal, 3%.
    Normal,
    /// Small counts: Poisson with this mean, capped at 6, no weekly shape.
    Counts(f64),
    /// Student t with this many degrees of freedom, scaled to the same 3% spread.
    StudentT(usize),
}

/// A synthetic daily series starting on [`start`].
#[derive(Clone)]
struct Series {
    ts: Vec<i64>,
    values: Vec<f64>,
}

impl Series {
    fn daily(days: usize, seed: u64, noise: Noise) -> Series {
        let mut rng = Rng(seed);
        let values = (0..days)
            .map(|i| {
                let wd = (start() + Duration::days(i as i64))
                    .weekday()
                    .num_days_from_monday() as usize;
                let shape = LEVEL * WEEK[wd];
                match noise {
                    Noise::Normal => shape * (SIGMA * rng.normal()).exp(),
                    Noise::Counts(mean) => rng.poisson(mean).min(6.0),
                    Noise::StudentT(df) => {
                        let z = rng.normal();
                        let chi2: f64 = (0..df).map(|_| rng.normal().powi(2)).sum();
                        let t = z / (chi2 / df as f64).sqrt();
                        let unit = ((df as f64 - 2.0) / df as f64).sqrt();
                        shape * (SIGMA * t * unit).exp()
                    }
                }
            })
            .collect();
        Series {
            ts: (0..days).map(day_ms).collect(),
            values,
        }
    }

    fn pos(&self, day: usize) -> usize {
        self.ts.binary_search(&day_ms(day)).unwrap()
    }

    /// Multiply the days in `days` by `factor`.
    fn scale(mut self, days: Days<usize>, factor: f64) -> Series {
        for d in days {
            let i = self.pos(d);
            self.values[i] *= factor;
        }
        self
    }

    fn set(mut self, day: usize, value: f64) -> Series {
        let i = self.pos(day);
        self.values[i] = value;
        self
    }

    /// Repeat the value of `days.start` over every day of `days`.
    fn freeze(mut self, days: Days<usize>) -> Series {
        let v = self.values[self.pos(days.start)];
        for d in days {
            let i = self.pos(d);
            self.values[i] = v;
        }
        self
    }

    /// Drop the days in `days` from the export.
    fn remove(mut self, days: Days<usize>) -> Series {
        let (a, b) = (day_ms(days.start), day_ms(days.end));
        let keep: Vec<bool> = self.ts.iter().map(|&t| t < a || t >= b).collect();
        let mut k = keep.iter();
        self.values.retain(|_| *k.next().unwrap());
        self.ts.retain(|&t| t < a || t >= b);
        self
    }

    /// The first `n` points, as if the export had ended there.
    fn prefix(&self, n: usize) -> Series {
        Series {
            ts: self.ts[..n].to_vec(),
            values: self.values[..n].to_vec(),
        }
    }
}

/// Run the kernel over the whole series, reporting on every point.
fn check(s: &Series, rule: &MetricRule, cal: &Calendar) -> Vec<Hit> {
    check_with(s, rule, cal, &Explained::NONE)
}

/// [`check`] with owners' explanations of the series.
fn check_with(s: &Series, rule: &MetricRule, cal: &Calendar, explained: &Explained) -> Vec<Hit> {
    let input = SeriesInput {
        ts: &s.ts,
        values: &s.values,
        granularity: Granularity::Day,
        rule,
        calendar: cal,
        events: Vec::new(),
        explained,
        from: i64::MIN,
        to: i64::MAX,
        end_ts: *s.ts.last().unwrap(),
    };
    series::evaluate(&input).hits
}

fn default_check(s: &Series) -> Vec<Hit> {
    check(
        s,
        &MetricRule::default_rule(),
        &Calendar::default_calendar(),
    )
}

/// One line per hit, for failure messages.
fn show(hits: &[Hit]) -> String {
    hits.iter()
        .map(|h| {
            format!(
                "\n  day {} {} {:?} value {:.1} expected {:.1} score {:.2} p {:.2e}",
                day_of(h.ts),
                h.check,
                h.side,
                h.value,
                h.expected,
                h.score,
                h.p_value
            )
        })
        .collect()
}

fn on_day(hits: &[Hit], day: usize) -> Vec<&Hit> {
    hits.iter().filter(|h| h.ts == day_ms(day)).collect()
}

fn statistical(hits: &[Hit]) -> usize {
    hits.iter().filter(|h| !h.check.is_data_health()).count()
}

/// A planted spike or dip is found on its day, with its direction, and
/// nothing fires in the clean month before it.
#[test]
fn planted_spike_and_dip() {
    // day 200 is Friday 2023-07-21, no holiday
    let day = 200;
    for (factor, dir) in [(1.4, Side::Up), (0.6, Side::Down)] {
        let s = Series::daily(300, 7, Noise::Normal).scale(day..day + 1, factor);
        let hits = default_check(&s);
        let here = on_day(&hits, day);
        assert!(
            here.iter()
                .any(|h| h.check == Check::Seasonal && h.side == dir),
            "x{factor}: no {dir:?} seasonal hit on day {day}:{}",
            show(&hits)
        );
        let before: Vec<Hit> = hits
            .iter()
            .filter(|h| (day_ms(day - 30)..day_ms(day)).contains(&h.ts))
            .cloned()
            .collect();
        assert!(
            before.is_empty(),
            "x{factor}: hits before:{}",
            show(&before)
        );
    }
}

/// A lasting drop is one level-shift incident at onset; after it the baseline
/// has re-anchored and the new level is normal.
#[test]
fn planted_level_shift_reported_once_then_reanchored() {
    let onset = 250;
    let s = Series::daily(400, 11, Noise::Normal).scale(onset..400, 0.75);
    let hits = default_check(&s);
    let shifts: Vec<&Hit> = hits
        .iter()
        .filter(|h| h.check == Check::LevelShift)
        .collect();
    assert_eq!(shifts.len(), 1, "level shifts:{}", show(&hits));
    let d = day_of(shifts[0].ts);
    assert!(
        (onset as i64..onset as i64 + 5).contains(&d),
        "shift reported on day {d}"
    );
    assert_eq!(shifts[0].side, Side::Down);
    let after: Vec<Hit> = hits
        .iter()
        .filter(|h| h.ts >= day_ms(onset + 10))
        .cloned()
        .collect();
    assert!(after.is_empty(), "not re-anchored:{}", show(&after));
}

/// Black Friday more than doubles sales every year: with the default calendar
/// it is compared with last year's Black Friday and never fires; without a
/// calendar it is an outlier against an ordinary Friday.
#[test]
fn recurring_holiday_does_not_fire() {
    let mut s = Series::daily(YEARS3, 3, Noise::Normal);
    let fridays: Vec<usize> = (2023..=2025).map(|y| day_num(black_friday(y))).collect();
    for &d in &fridays {
        s = s.scale(d..d + 1, 2.2);
    }

    let hits = default_check(&s);
    for &d in &fridays {
        assert!(
            on_day(&hits, d).is_empty(),
            "Black Friday (day {d}) fired with the default calendar:{}",
            show(&hits)
        );
    }

    let hits = check(&s, &MetricRule::default_rule(), &Calendar::none());
    let bf24 = day_num(black_friday(2024));
    assert!(
        on_day(&hits, bf24)
            .iter()
            .any(|h| h.check == Check::Seasonal && h.side == Side::Up),
        "no hit on Black Friday 2024 (day {bf24}) without a calendar:{}",
        show(&hits)
    );
}

/// A slice 25 % down on a day of December's shopping weeks (about 9.6 noise
/// units) is asked about: after three days of the season its own days are the
/// reference, on 1.5× the noise. Compared with last year's same date on 3× the
/// noise, as before, it was not (the season is three weeks of every year). The
/// season's other days stay quiet.
#[test]
fn a_drop_inside_the_december_season_is_caught() {
    let day = day_num(NaiveDate::from_ymd_opt(2025, 12, 10).unwrap());
    let s = Series::daily(YEARS3, 5, Noise::Normal).scale(day..day + 1, 0.75);
    let hits = default_check(&s);
    assert!(
        on_day(&hits, day)
            .iter()
            .any(|h| h.check == Check::Holiday && h.side == Side::Down),
        "no hit on 2025-12-10 (day {day}):{}",
        show(&hits)
    );
    // and says what it was judged against (`render::why` words it)
    assert!(on_day(&hits, day).iter().any(|h| {
        h.note
            .as_deref()
            .is_some_and(|n| n.contains(crate::model::SEASON_OWN))
    }));
    let december: Vec<&Hit> = hits
        .iter()
        .filter(|h| h.ts != day_ms(day))
        .filter(|h| {
            let d = start() + Duration::days(h.ts.div_euclid(86_400_000));
            d.month() == 12 && d.day() <= 23
        })
        .collect();
    assert!(
        december.is_empty(),
        "other December days fired: {december:?}"
    );
}

/// Clean normal noise: on average at most 2 findings of any kind per
/// three-year series (about 1.3 false alarms per 100 series-weeks, under the
/// target of 2, before FDR control), and no series that keeps firing (at
/// most 5 in three years: the threshold is 3.5 noise units). Without a calendar: holidays
/// are the subject of `recurring_holiday_does_not_fire`.
#[test]
fn clean_series_does_not_fire() {
    let seeds = 20;
    let mut total = 0;
    for seed in 1..=seeds {
        let s = Series::daily(YEARS3, 100 + seed, Noise::Normal);
        let hits = check(&s, &MetricRule::default_rule(), &Calendar::none());
        assert!(hits.len() <= 5, "seed {seed}:{}", show(&hits));
        total += hits.len();
    }
    assert!(
        total <= seeds as usize * 2,
        "{total} findings on {seeds} clean series"
    );
}

/// Name, series, rule, check, days it may fire on (the first is required), side.
type HealthCase = (&'static str, Series, MetricRule, Check, Days<usize>, Side);

/// Data-health checks fire exactly where the data is broken.
#[test]
fn data_health() {
    let base = Series::daily(200, 5, Noise::Normal);
    let rule = MetricRule::default_rule;
    // (name, series, rule, check, days it must fire on (first one required), side)
    let cases: Vec<HealthCase> = vec![
        (
            "stale 6 days",
            base.clone().freeze(100..106),
            rule(),
            Check::Stale,
            102..106,
            Side::Up,
        ),
        (
            "zero outage",
            base.clone().set(150, 0.0),
            rule(),
            Check::Outage,
            150..151,
            Side::Down,
        ),
        (
            "4-day gap",
            base.clone().remove(120..124),
            rule(),
            Check::Missing,
            120..121,
            Side::Down,
        ),
        (
            "below lower bound",
            base.clone().set(130, 400.0),
            MetricRule {
                lower_bound: Some(500.0),
                upper_bound: Some(2000.0),
                ..rule()
            },
            Check::Bounds,
            130..131,
            Side::Down,
        ),
        (
            "above upper bound",
            base.clone().set(140, 2500.0),
            MetricRule {
                lower_bound: Some(500.0),
                upper_bound: Some(2000.0),
                ..rule()
            },
            Check::Bounds,
            140..141,
            Side::Up,
        ),
        (
            // the weekly shape changes at most ~35% a day; a tripling is +200%
            // and the way back down (-67%) stays inside 80%
            "jump above max_pct_change",
            base.clone().scale(160..161, 3.0),
            MetricRule {
                max_pct_change: Some(80.0),
                ..rule()
            },
            Check::MaxChange,
            160..161,
            Side::Up,
        ),
    ];
    for (name, s, rule, want, days, dir) in cases {
        let hits = check(&s, &rule, &Calendar::default_calendar());
        let of_kind: Vec<&Hit> = hits.iter().filter(|h| h.check == want).collect();
        assert!(
            of_kind.first().is_some_and(|h| h.ts == day_ms(days.start)),
            "{name}: first {want} hit is not on day {}:{}",
            days.start,
            show(&hits)
        );
        assert!(
            of_kind
                .iter()
                .all(|h| days.contains(&(day_of(h.ts) as usize)) && h.side == dir),
            "{name}: {want} hits outside days {days:?} or not {dir:?}:{}",
            show(&hits)
        );
        if want == Check::Missing {
            assert!(of_kind[0].value.is_nan());
            assert_eq!(of_kind[0].note.as_deref(), Some("4 period(s) absent"));
        }
        // the clean series with the same rule does not fire this check
        let clean = check(&base, &rule, &Calendar::default_calendar());
        assert!(
            clean.iter().all(|h| h.check != want),
            "{name}: clean series fires {want}:{}",
            show(&clean)
        );
    }
}

/// Causality: the series cut after any point gives exactly the findings the
/// full series has up to that point.
#[test]
fn no_look_ahead() {
    let mut s = Series::daily(YEARS3, 21, Noise::Normal)
        .scale(200..201, 1.5)
        .scale(300..301, 0.6)
        .scale(500..YEARS3, 0.8)
        .freeze(800..806)
        .set(900, 0.0)
        .remove(700..704);
    for y in 2023..=2025 {
        let d = day_num(black_friday(y));
        s = s.scale(d..d + 1, 2.2);
    }
    let full = default_check(&s);
    assert!(
        full.len() >= 5,
        "too few findings to compare:{}",
        show(&full)
    );
    let dump = |hits: &[Hit]| -> Vec<String> { hits.iter().map(|h| format!("{h:?}")).collect() };
    for cut in [
        30,
        150,
        201,
        301,
        502,
        520,
        697,
        700,
        805,
        901,
        1000,
        s.ts.len(),
    ] {
        let part = s.prefix(cut);
        let last = *part.ts.last().unwrap();
        let upto: Vec<Hit> = full.iter().filter(|h| h.ts <= last).cloned().collect();
        assert_eq!(
            dump(&default_check(&part)),
            dump(&upto),
            "cut after point {cut} (day {})",
            day_of(last)
        );
    }
}

/// Materiality: for small counts (mean 3) a single 8 is Poisson noise, not
/// an alert.
#[test]
fn small_counts_are_not_material() {
    let day = 200;
    let s = Series::daily(365, 9, Noise::Counts(3.0)).set(day, 8.0);
    let hits = default_check(&s);
    assert!(on_day(&hits, day).is_empty(), "{}", show(&hits));
}

fn batch(series: &[(String, Series)]) -> Batch {
    let mut b = Batch {
        source: "b".into(),
        key_columns: vec!["metric".into()],
        ts: Vec::new(),
        values: Vec::new(),
        series: Vec::new(),
    };
    for (name, s) in series {
        b.series.push(SeriesInfo {
            key: SeriesKey {
                metric: name.clone(),
                dims: Vec::new(),
            },
            start: b.ts.len(),
            len: s.ts.len(),
            granularity: Granularity::Day,
        });
        b.ts.extend(&s.ts);
        b.values.extend(&s.values);
    }
    b
}

/// Benjamini–Hochberg across series. Each daily run (one timestamp) is one
/// family of tests: a real spike survives among 200 clean series, runs add
/// few false alarms (also when a high sensitivity floods BH with weak
/// candidates), and every candidate is either a finding or counted as dropped.
#[test]
fn fdr_across_series() {
    let spike_day = 300;
    let mut all: Vec<(String, Series)> = (0..200)
        .map(|i| {
            (
                format!("m{i:03}"),
                Series::daily(365, 1000 + i, Noise::Normal),
            )
        })
        .collect();
    all.push((
        "spike".into(),
        Series::daily(365, 7, Noise::Normal).scale(spike_day..spike_day + 1, 1.5),
    ));
    let b = batch(&all);
    let batches = std::slice::from_ref(&b);
    let base = "[[source]]\nname=\"b\"\npath=\"x.csv\"\n";
    let sensitive = "[[metric]]\nmatch=\"*\"\nsensitivity=2.0\n";
    for extra in ["", sensitive] {
        let cfg =
            crate::config::compile_str(&format!("{base}{extra}"), Path::new("t.toml"), &|_| None)
                .unwrap();
        let show_f = |det: &super::Detection| -> String {
            det.findings
                .iter()
                .map(|f| {
                    format!(
                        "\n  {} day {} {} p {:.2e}",
                        f.key,
                        day_of(f.hit.ts),
                        f.hit.check,
                        f.hit.p_value
                    )
                })
                .collect()
        };

        // three weeks of daily runs around the spike
        let mut false_alarms = Vec::new();
        let mut dropped = 0;
        for day in spike_day - 10..=spike_day + 10 {
            let run = Range {
                from: day_ms(day),
                to: day_ms(day),
            };
            let det = detect(batches, &cfg, &[run], &[], &|_, _| {});
            dropped += det.dropped_by_fdr;
            if day == spike_day {
                assert!(
                    det.findings.iter().any(|f| f.key.metric == "spike"
                        && f.hit.ts == day_ms(spike_day)
                        && f.hit.check == Check::Seasonal
                        && f.hit.side == Side::Up),
                    "{extra:?}: spike lost:{}",
                    show_f(&det)
                );
                assert!(det.findings.len() < 5, "{extra:?}:{}", show_f(&det));
            }
            false_alarms.extend(
                det.findings
                    .into_iter()
                    .filter(|f| f.key.metric != "spike")
                    .map(|f| format!("{} day {} {}", f.key, day_of(f.hit.ts), f.hit.check)),
            );
        }
        // 21 runs x 200 series = 600 series-weeks; at most 2 per 100
        assert!(false_alarms.len() <= 12, "{extra:?}: {false_alarms:#?}");
        if extra == sensitive {
            // about 4.5% of 200 series are candidates each day
            assert!(dropped > 100, "{extra:?}: BH dropped only {dropped}");
        }

        // the whole year in one pass: candidates are kept or counted as dropped
        let det = detect(batches, &cfg, &[Range::ALL], &[], &|_, _| {});
        let rule = cfg.rule_for("m000");
        let candidates: usize = all
            .iter()
            .map(|(_, s)| statistical(&check(s, rule, &Calendar::default_calendar())))
            .sum();
        let kept = det
            .findings
            .iter()
            .filter(|f| !f.hit.check.is_data_health())
            .count();
        assert_eq!(kept + det.dropped_by_fdr, candidates, "{extra:?}");
        // 200 series-years: at most 1 false alarm per 100 series-weeks (half the target of 2)
        assert!(det.findings.len() <= 104, "{extra:?}:{}", show_f(&det));
    }
}

/// Heavy-tailed noise (Student t with 3 degrees of freedom, like the bench's
/// heavy series) with no anomaly. A normal-noise threshold would flag such a
/// series every few weeks; the fitted t5 family keeps it to a handful of
/// findings in three years (at most 5 on average, about 3 per 100
/// series-weeks). Known gap: tails heavier than t5 still fire now and then,
/// see docs/detection.md.
#[test]
fn heavy_tailed_series_rarely_fires() {
    let seeds = 10;
    let mut total = 0;
    for seed in 1..=seeds {
        let s = Series::daily(YEARS3, 500 + seed, Noise::StudentT(3));
        let hits = check(&s, &MetricRule::default_rule(), &Calendar::none());
        let stat = statistical(&hits);
        assert!(stat <= 16, "seed {seed}:{}", show(&hits));
        total += stat;
    }
    assert!(
        total <= 5 * seeds as usize,
        "{total} statistical findings on {seeds} heavy-tailed series"
    );
}

/// Sub-daily data: hourly counts with a daily cycle (night trough) and a weekly
/// one (quiet weekends), 12 weeks. The hour-of-week shape absorbs both cycles,
/// so the clean weeks stay quiet, and a planted spike at one hour is found at
/// that hour.
#[test]
fn hourly_series_with_daily_and_weekly_cycles() {
    const HOUR_MS: i64 = 3_600_000;
    let hours = 12 * 7 * 24;
    let spike_at = 10 * 7 * 24 + 2 * 24 + 14; // week 10, Wednesday 14:00
    let mut rng = Rng(77);
    let ts: Vec<i64> = (0..hours)
        .map(|h| ms(start()) + h as i64 * HOUR_MS)
        .collect();
    let values: Vec<f64> = (0..hours)
        .map(|h| {
            let hour = (h % 24) as f64;
            let daily = 1.0 + 0.6 * (std::f64::consts::PI * (hour - 4.0) / 12.0).sin().max(-0.8);
            let weekly = WEEK[(h / 24) % 7];
            let mean = 400.0 * daily * weekly * if h == spike_at { 1.6 } else { 1.0 };
            (mean * (SIGMA * rng.normal()).exp()).round()
        })
        .collect();
    let rule = MetricRule::default_rule();
    let cal = Calendar::none();
    let input = SeriesInput {
        ts: &ts,
        values: &values,
        granularity: Granularity::Hour,
        rule: &rule,
        calendar: &cal,
        events: Vec::new(),
        explained: &Explained::NONE,
        from: i64::MIN,
        to: i64::MAX,
        end_ts: *ts.last().unwrap(),
    };
    let out = series::evaluate(&input);
    let at = |h: usize| {
        out.hits
            .iter()
            .any(|x| x.ts == ts[h] && x.check == Check::Seasonal && x.side == Side::Up)
    };
    assert!(at(spike_at), "spike not found:{}", show(&out.hits));
    let others = out.hits.iter().filter(|x| x.ts != ts[spike_at]).count();
    assert!(others <= 2, "clean hours fired:{}", show(&out.hits));
    assert!(
        out.evaluated > 24 * 7 * 8,
        "evaluated only {} hours",
        out.evaluated
    );
}

/// An owner's explanation of days `days` of metric `metric` in source `b`
/// (the source of [`batch`]).
fn span(
    metric: &str,
    days: Days<usize>,
    cause: Cause,
    persistence: Option<Persistence>,
) -> ExplainedSpan {
    ExplainedSpan {
        source: "b".into(),
        key: SeriesKey {
            metric: metric.into(),
            dims: Vec::new(),
        },
        from_ts: day_ms(days.start),
        to_ts: day_ms(days.end - 1),
        cause,
        persistence,
    }
}

/// The model's view of day `day` with the default rule and calendar: the
/// statistical hit of a probe, the series cut after `day` with that day tripled.
/// A tripled day is always an outlier, and the kernel is causal, so the hit's
/// expected value and normal range are exactly what the full series is judged
/// against on that day. `None` while the level is being (re)learned.
fn probe(s: &Series, day: usize, explained: &Explained) -> Option<Hit> {
    let cut = s.prefix(s.pos(day) + 1).scale(day..day + 1, 3.0);
    let rule = MetricRule::default_rule();
    check_with(&cut, &rule, &Calendar::default_calendar(), explained)
        .into_iter()
        .find(|h| h.ts == day_ms(day) && !h.check.is_data_health())
}

/// The true (noise-free) value of day `day` of a [`Noise::Normal`] series.
fn truth(day: usize) -> f64 {
    let wd = (start() + Duration::days(day as i64))
        .weekday()
        .num_days_from_monday() as usize;
    LEVEL * WEEK[wd]
}

/// Backfill one series (source `b`) through [`detect`], as `callout backfill` does.
fn backfill(series: &[(String, Series)], explained: &[ExplainedSpan]) -> Vec<Finding> {
    let b = batch(series);
    let cfg = crate::config::compile_str(
        "[[source]]\nname=\"b\"\npath=\"x.csv\"\n",
        Path::new("t.toml"),
        &|_| None,
    )
    .unwrap();
    detect(
        std::slice::from_ref(&b),
        &cfg,
        &[Range::ALL],
        explained,
        &|_, _| {},
    )
    .findings
}

fn show_findings(fs: &[Finding]) -> String {
    fs.iter()
        .map(|f| {
            format!(
                "\n  {} day {} {} {:?} value {:.1} expected {:.1}",
                f.key,
                day_of(f.hit.ts),
                f.hit.check,
                f.hit.side,
                f.hit.value,
                f.hit.expected
            )
        })
        .collect()
}

/// A four-day promotion (+40%) that the owner explained as a known event.
/// Without the explanation the kernel takes the promotion for a new level
/// (a level shift on its third day), so the ordinary days after it are judged
/// against the promotion's level and reported as drops. With it, the promotion
/// never feeds the baseline: the following days are judged against the level
/// before it. The promotion's own days are still reported either way (they
/// are what the owner explained).
#[test]
fn known_event_never_feeds_the_baseline() {
    let promo = 200..204; // Friday 2023-07-21 .. Monday
    let s = Series::daily(300, 7, Noise::Normal).scale(promo.clone(), 1.4);
    let spans = [span("m", promo.clone(), Cause::KnownEvent, None)];
    let series = [("m".to_string(), s.clone())];
    let without = backfill(&series, &[]);
    let with = backfill(&series, &spans);
    let explained = Explained::from_spans(&spans);

    let on = |fs: &[Finding], days: Days<usize>| -> Vec<Finding> {
        fs.iter()
            .filter(|f| (day_ms(days.start)..day_ms(days.end)).contains(&f.hit.ts))
            .cloned()
            .collect()
    };
    assert!(
        on(&with, promo.start..promo.start + 1)
            .iter()
            .any(|f| f.hit.side == Side::Up),
        "the explained outlier itself is still reported:{}",
        show_findings(&with)
    );
    assert_eq!(
        on(&with, 0..promo.start),
        on(&without, 0..promo.start),
        "before the explanation nothing changes"
    );
    let after = promo.end..promo.end + 30;
    let dragged = on(&without, after.clone());
    assert!(
        !dragged.is_empty() && dragged.iter().all(|f| f.hit.side == Side::Down),
        "without the explanation the days after the promotion look like drops:{}",
        show_findings(&without)
    );
    assert!(
        on(&with, after).is_empty(),
        "with it they are normal:{}",
        show_findings(&with)
    );

    // the expected values of the days after the promotion: without the
    // explanation 20-50% too high (the level's trimmed mean still holds most
    // of the four promotion days), with it within noise of the true level
    // (the first days after the promotion relearn the level without it and are not tested)
    for day in promo.end + 2..promo.end + 5 {
        let e_with = probe(&s, day, &explained).unwrap().expected;
        let e_without = probe(&s, day, &Explained::NONE).unwrap().expected;
        let t = truth(day);
        assert!(
            (e_with / t - 1.0).abs() < 0.05,
            "day {day}: expected {e_with:.1} with the explanation, true level {t:.1}"
        );
        let ratio = e_without / e_with;
        assert!(
            (1.2..1.5).contains(&ratio),
            "day {day}: expected {e_without:.1} without vs {e_with:.1} with the explanation"
        );
        assert!((e_with - t).abs() < (e_without - t).abs());
    }
    // the findings on those days carry the dragged expectation
    for f in &dragged {
        let t = truth(day_of(f.hit.ts) as usize);
        assert!(
            f.hit.expected > 1.15 * t,
            "day {}: expected {:.1}, true level {t:.1}",
            day_of(f.hit.ts),
            f.hit.expected
        );
    }
}

/// A lasting drop that the owner accepted as the new normal (the explanation
/// covers the incident: onset to the level-shift finding). Without it there is
/// one level-shift finding (and the drop's first days); with it the baseline
/// re-anchors at the onset and nothing from the onset on is reported.
#[test]
fn new_normal_re_anchors_without_further_alerts() {
    let onset = 250;
    let s = Series::daily(400, 11, Noise::Normal).scale(onset..400, 0.75);
    let rule = MetricRule::default_rule();
    let cal = Calendar::default_calendar();
    let without = check(&s, &rule, &cal);
    let shifts: Vec<&Hit> = without
        .iter()
        .filter(|h| h.check == Check::LevelShift)
        .collect();
    assert_eq!(shifts.len(), 1, "{}", show(&without));
    let shift_day = day_of(shifts[0].ts) as usize;
    let since = |hits: &[Hit]| -> Vec<Hit> {
        hits.iter()
            .filter(|h| h.ts >= day_ms(onset) && !h.check.is_data_health())
            .cloned()
            .collect()
    };
    assert!(!since(&without).is_empty());

    for cause in [Cause::BusinessChange, Cause::DataIssue] {
        let spans = [span(
            "m",
            onset..shift_day + 1,
            cause,
            Some(Persistence::NewNormal),
        )];
        let explained = Explained::from_spans(&spans);
        let with = check_with(&s, &rule, &cal, &explained);
        assert!(
            since(&with).is_empty(),
            "{cause:?}: reported after the accepted onset:{}",
            show(&with)
        );
        let before = |hits: &[Hit]| -> Vec<Hit> {
            hits.iter()
                .filter(|h| h.ts < day_ms(onset))
                .cloned()
                .collect()
        };
        assert_eq!(before(&with), before(&without));
        // judged against the new level from the first day after relearning it
        for day in onset + 8..onset + 12 {
            let e = probe(&s, day, &explained).unwrap().expected;
            let t = 0.75 * truth(day);
            assert!(
                (e / t - 1.0).abs() < 0.05,
                "{cause:?} day {day}: expected {e:.1}, new level {t:.1}"
            );
        }
    }
}

/// A fortnight of broken data (values jittered by ±8%, about 2.6 noise units:
/// mostly inside what the baseline accepts) explained as a data issue. With
/// the explanation those points never reach the noise scale or the tail fit, so
/// the normal range afterwards stays as narrow as the clean data's. Without it
/// the broken points widen the noise scale (the range is over 10% wider in the
/// following weeks) and, at the next refit, make the tail fit heavy (over 50%
/// wider), so a real outlier (+17%) two months later is missed; with the
/// explanation it is found.
#[test]
fn data_issue_stays_out_of_the_noise_scale() {
    let broken = 150..164;
    let outlier = 224;
    let mut s = Series::daily(300, 5, Noise::Normal);
    for d in broken.clone() {
        s = s.scale(d..d + 1, if d % 2 == 0 { 1.08 } else { 1.0 / 1.08 });
    }
    let s = s.scale(outlier..outlier + 1, 1.17);
    let spans = [span("m", broken.clone(), Cause::DataIssue, None)];
    let explained = Explained::from_spans(&spans);
    let rule = MetricRule::default_rule();
    let cal = Calendar::default_calendar();
    let with = check_with(&s, &rule, &cal, &explained);
    let without = check(&s, &rule, &cal);
    assert!(
        on_day(&with, outlier)
            .iter()
            .any(|h| h.check == Check::Seasonal && h.side == Side::Up),
        "outlier missed with the explanation:{}",
        show(&with)
    );
    assert!(
        on_day(&without, outlier).is_empty(),
        "outlier found without the explanation:{}",
        show(&without)
    );
    // the normal range (relative width): noise scale, then tail fit
    // (the first week after the fortnight relearns the level and is not tested)
    for (days, wider) in [
        (broken.end + 7..broken.end + 27, 1.1),
        (218..outlier + 1, 1.5),
    ] {
        for day in days {
            let width = |h: Hit| (h.upper - h.lower) / h.expected;
            let w_with = width(probe(&s, day, &explained).unwrap());
            let w_without = width(probe(&s, day, &Explained::NONE).unwrap());
            assert!(
                w_without > wider * w_with,
                "day {day}: range {w_without:.3} without vs {w_with:.3} with the explanation"
            );
        }
    }
}

/// Explanations keep causality: a span that starts after `t` changes nothing at
/// or before `t`, and with spans the series cut after any point gives exactly
/// the findings of the full series up to that point (also when the cut falls
/// inside a span).
#[test]
fn explanations_do_not_look_ahead() {
    let s = Series::daily(YEARS3, 21, Noise::Normal)
        .scale(500..504, 1.4)
        .scale(600..YEARS3, 0.8)
        .scale(800..801, 1.5);
    let spans = [
        span("m", 500..504, Cause::KnownEvent, None),
        span(
            "m",
            600..603,
            Cause::BusinessChange,
            Some(Persistence::NewNormal),
        ),
        span(
            "m",
            800..801,
            Cause::UnderInvestigation,
            Some(Persistence::OneOff),
        ),
    ];
    let explained = Explained::from_spans(&spans);
    let rule = MetricRule::default_rule();
    let cal = Calendar::default_calendar();
    let with = check_with(&s, &rule, &cal, &explained);
    let without = check(&s, &rule, &cal);
    let dump = |hits: &[Hit], upto: i64| -> Vec<String> {
        hits.iter()
            .filter(|h| h.ts < upto)
            .map(|h| format!("{h:?}"))
            .collect()
    };
    assert_eq!(dump(&with, day_ms(500)), dump(&without, day_ms(500)));
    assert_ne!(
        dump(&with, i64::MAX),
        dump(&without, i64::MAX),
        "the spans must matter for this test to mean anything"
    );
    for cut in [499, 501, 503, 520, 601, 602, 700, 800, 1000] {
        let part = s.prefix(cut);
        let last = *part.ts.last().unwrap();
        assert_eq!(
            dump(&check_with(&part, &rule, &cal, &explained), i64::MAX),
            dump(&with, last + 1),
            "cut after point {cut} (day {})",
            day_of(last)
        );
    }
}

/// A span applies to its own series only: the same span for another source,
/// another metric or the same metric with other dimensions changes nothing,
/// while the span on the right series changes that series and no other.
#[test]
fn explanations_apply_to_their_own_series_only() {
    let promo = 200..204;
    let s = Series::daily(300, 7, Noise::Normal).scale(promo.clone(), 1.4);
    let series = [("a".to_string(), s.clone()), ("b".to_string(), s)];
    let without = backfill(&series, &[]);
    let mut other_source = span("a", promo.clone(), Cause::KnownEvent, None);
    other_source.source = "elsewhere".into();
    let mut other_dims = span("a", promo.clone(), Cause::KnownEvent, None);
    other_dims.key.dims = vec![("region".into(), "eu".into())];
    let unrelated = [
        other_source,
        other_dims,
        span("zzz", promo.clone(), Cause::KnownEvent, None),
    ];
    assert_eq!(backfill(&series, &unrelated), without);

    let with = backfill(
        &series,
        &[span("b", promo.clone(), Cause::KnownEvent, None)],
    );
    let of = |fs: &[Finding], m: &str| -> Vec<Finding> {
        fs.iter().filter(|f| f.key.metric == m).cloned().collect()
    };
    assert_eq!(of(&with, "a"), of(&without, "a"));
    assert_ne!(
        of(&with, "b"),
        of(&without, "b"),
        "{}",
        show_findings(&with)
    );
}

/// Spans are merged per series (overlapping and touching ones become one); a
/// new-normal span wins over a cause that would exclude; causes without an
/// effect on the baseline are ignored.
#[test]
fn explained_spans_merge() {
    let d = |a: usize, b: usize| (day_ms(a), day_ms(b));
    // (spans, excluded intervals, accepted intervals)
    type Case = (Vec<ExplainedSpan>, Vec<(i64, i64)>, Vec<(i64, i64)>);
    let cases: Vec<Case> = vec![
        (
            vec![
                span("m", 20..21, Cause::KnownEvent, None),
                span("m", 12..15, Cause::DataIssue, None),
                span("m", 10..13, Cause::KnownEvent, None),
                span(
                    "m",
                    15..16,
                    Cause::BusinessChange,
                    Some(Persistence::OneOff),
                ),
            ],
            vec![d(10, 14), d(15, 15), d(20, 20)],
            vec![],
        ),
        (
            vec![
                span("m", 10..13, Cause::ExpectedSeasonal, None),
                span("m", 10..13, Cause::UnderInvestigation, None),
                span("m", 10..13, Cause::BusinessChange, None),
            ],
            vec![],
            vec![],
        ),
        (
            vec![
                span("m", 10..13, Cause::DataIssue, Some(Persistence::NewNormal)),
                span(
                    "m",
                    11..20,
                    Cause::BusinessChange,
                    Some(Persistence::NewNormal),
                ),
                span("m", 30..31, Cause::KnownEvent, None),
            ],
            vec![d(30, 30)],
            vec![d(10, 19)],
        ),
    ];
    for (spans, exclude, accept) in cases {
        let got = Explained::from_spans(&spans);
        assert_eq!(
            (&got.exclude, &got.accept),
            (&exclude, &accept),
            "{spans:?}"
        );
        assert_eq!(got.is_empty(), exclude.is_empty() && accept.is_empty());
    }
}

/// Run the kernel over `values` as a weekly series (weeks from [`start`]),
/// without holidays, reporting every point.
fn check_weekly(values: &[f64], rule: &MetricRule) -> Vec<Hit> {
    let ts: Vec<i64> = (0..values.len()).map(|w| day_ms(7 * w)).collect();
    let cal = Calendar::none();
    let input = SeriesInput {
        ts: &ts,
        values,
        granularity: Granularity::Week,
        rule,
        calendar: &cal,
        events: Vec::new(),
        explained: &Explained::NONE,
        from: i64::MIN,
        to: i64::MAX,
        end_ts: *ts.last().unwrap(),
    };
    series::evaluate(&input).hits
}

/// A weekly series with a yearly cycle (±20%) that repeats exactly: after a
/// year, last year's errors of the local model (which lags behind every turn
/// of the cycle) are added to the expected value, and the third year is
/// predicted much closer to the truth than the first.
#[test]
fn year_over_year_follows_a_yearly_cycle_on_weekly_data() {
    let mut rng = Rng(11);
    let truth =
        |w: usize| 1000.0 * (0.2 * (2.0 * std::f64::consts::PI * w as f64 / 52.0).sin()).exp();
    let values: Vec<f64> = (0..156)
        .map(|w| truth(w) * (0.01 * rng.normal()).exp())
        .collect();
    // every point reported, so each one's expected value can be read
    let mut rule = MetricRule::default_rule();
    rule.sensitivity = 1e6;
    rule.min_rel_change = 0.0;
    let hits = check_weekly(&values, &rule);
    let err = |weeks: Days<usize>| -> f64 {
        let e: Vec<f64> = hits
            .iter()
            .filter(|h| h.check == Check::Variance && weeks.contains(&(day_of(h.ts) as usize / 7)))
            .map(|h| (h.expected / truth(day_of(h.ts) as usize / 7)).ln().abs())
            .collect();
        assert!(
            e.len() >= 20,
            "too few points in {weeks:?}: {}",
            show(&hits)
        );
        e.iter().sum::<f64>() / e.len() as f64
    };
    let (first, third) = (err(20..52), err(124..156));
    assert!(
        third < 0.5 * first,
        "mean |log error| year 1 {first:.4}, year 3 {third:.4}"
    );
    // and no alert on a series that only repeats last year
    let quiet = check_weekly(&values, &MetricRule::default_rule());
    assert!(
        quiet.iter().all(|h| day_of(h.ts) < 7 * 60),
        "with last year in the model the later years raise nothing:{}",
        show(&quiet)
    );
}

/// A daily series whose weekend lift (+15–18%) is small against its noise (3%),
/// so a day of the lost shape barely stands out alone; pooled over two weeks it does.
#[test]
fn a_lost_weekly_shape_is_reported() {
    const SHAPE: [f64; 7] = [1.0, 1.0, 1.0, 1.0, 1.0, 1.15, 1.18];
    let lost = 300..321;
    let make = |lose: bool| -> Series {
        let mut rng = Rng(5);
        let values = (0..420)
            .map(|i| {
                let wd = (start() + Duration::days(i as i64))
                    .weekday()
                    .num_days_from_monday() as usize;
                let shape = if lose && lost.contains(&i) {
                    1.0
                } else {
                    SHAPE[wd]
                };
                LEVEL * shape * (SIGMA * rng.normal()).exp()
            })
            .collect();
        Series {
            ts: (0..420).map(day_ms).collect(),
            values,
        }
    };
    let shape_hits = |hits: &[Hit]| -> Vec<i64> {
        hits.iter()
            .filter(|h| {
                h.note
                    .as_deref()
                    .is_some_and(|n| n.starts_with("weekly shape lost"))
            })
            .map(|h| day_of(h.ts))
            .collect()
    };
    let with = default_check(&make(true));
    let found = shape_hits(&with);
    assert!(
        found.iter().any(|&d| (300..324).contains(&d)),
        "the lost shape was not reported: {found:?}{}",
        show(&with)
    );
    assert!(
        found.iter().all(|&d| (300..330).contains(&d)),
        "shape findings outside the change: {found:?}"
    );
    let clean = default_check(&make(false));
    assert_eq!(shape_hits(&clean), Vec::<i64>::new(), "{}", show(&clean));
}

/// Sub-daily data is evaluated after days, not weeks; counts repeating small
/// values are not stale; a lost row or half an hour without data is not a gap,
/// two hours are one. Six days of 5-minute Poisson counts with a daily cycle.
#[test]
fn five_minute_counts_warm_up_in_days() {
    const STEP: i64 = 300_000;
    let n = 6 * 288;
    let spike_at = 4 * 288 + 150; // day 4, 12:30
    let lost = [2 * 288 + 7, 3 * 288 + 100, 5 * 288 + 5];
    let half_hour = 3 * 288 + 200..3 * 288 + 206;
    let two_hours = 5 * 288 + 40..5 * 288 + 64;
    let mut rng = Rng(5);
    let mut ts = Vec::new();
    let mut values = Vec::new();
    for i in 0..n {
        let hour = (i % 288) as f64 / 12.0;
        let mean = 6.0 * (1.0 + 0.5 * (std::f64::consts::PI * (hour - 8.0) / 12.0).sin());
        let v = rng.poisson(mean) + if i == spike_at { 40.0 } else { 0.0 };
        if lost.contains(&i) || half_hour.contains(&i) || two_hours.contains(&i) {
            continue;
        }
        ts.push(ms(start()) + i as i64 * STEP);
        values.push(v);
    }
    let rule = MetricRule::default_rule();
    let cal = Calendar::none();
    let input = SeriesInput {
        ts: &ts,
        values: &values,
        granularity: Granularity::Minutes(5),
        rule: &rule,
        calendar: &cal,
        events: Vec::new(),
        explained: &Explained::NONE,
        from: i64::MIN,
        to: i64::MAX,
        end_ts: *ts.last().unwrap(),
    };
    let out = series::evaluate(&input);
    let at = |i: usize| ms(start()) + i as i64 * STEP;
    // evaluated from day 2 on (two days of day profile), not after 3 weeks
    assert_eq!(out.first_eval.map(|t| (t - at(0)) / (288 * STEP)), Some(2));
    assert!(
        out.hits
            .iter()
            .any(|h| h.ts == at(spike_at) && h.side == Side::Up && !h.check.is_data_health()),
        "spike not found:{}",
        show(&out.hits)
    );
    let missing: Vec<i64> = out
        .hits
        .iter()
        .filter(|h| h.check == Check::Missing)
        .map(|h| h.ts)
        .collect();
    assert_eq!(missing, vec![at(two_hours.start)], "{}", show(&out.hits));
    assert!(
        out.hits.iter().all(|h| h.check != Check::Stale),
        "small counts repeat by chance:{}",
        show(&out.hits)
    );
    let others = out
        .hits
        .iter()
        .filter(|h| h.ts != at(spike_at) && h.check != Check::Missing)
        .count();
    assert!(others <= 2, "clean periods fired:{}", show(&out.hits));
}

/// A 5-minute series of `days` days: a daily cycle around `level`, log-normal
/// noise `sigma`, each value passed through `edit(i, value)` and rounded to
/// two decimals (a gauge, not a count).
fn five_minute(
    days: usize,
    seed: u64,
    level: f64,
    sigma: f64,
    edit: impl Fn(usize, f64, &mut Rng) -> f64,
) -> (Vec<i64>, Vec<f64>) {
    let mut rng = Rng(seed);
    (0..days * 288)
        .map(|i| {
            let hour = (i % 288) as f64 / 12.0;
            let mean = level * (1.0 + 0.4 * (std::f64::consts::PI * (hour - 8.0) / 12.0).sin());
            let v = edit(i, mean * (sigma * rng.normal()).exp(), &mut rng);
            (
                ms(start()) + i as i64 * 300_000,
                (v * 100.0).round() / 100.0,
            )
        })
        .unzip()
}

fn check_five_minute(ts: &[i64], values: &[f64]) -> Vec<Hit> {
    let rule = MetricRule::default_rule();
    let cal = Calendar::none();
    let input = SeriesInput {
        ts,
        values,
        granularity: Granularity::Minutes(5),
        rule: &rule,
        calendar: &cal,
        events: Vec::new(),
        explained: &Explained::NONE,
        from: i64::MIN,
        to: i64::MAX,
        end_ts: *ts.last().unwrap(),
    };
    series::evaluate(&input).hits
}

fn noted<'a>(hits: &'a [Hit], prefix: &str) -> Vec<&'a Hit> {
    hits.iter()
        .filter(|h| h.note.as_deref().is_some_and(|n| n.starts_with(prefix)))
        .collect()
}

#[test]
fn five_minute_slow_ramp_reported_once() {
    // day 11 from 00:00: a climb of 40 % (7 noise units) spread over 12 hours,
    // which then stays; the level's trend follows it
    let ramp = 11 * 288..11 * 288 + 144;
    let (ts, values) = five_minute(13, 21, 300.0, 0.05, |i, v, _| {
        let f = (i.saturating_sub(ramp.start) as f64 / 144.0).min(1.0);
        v * (0.34 * f).exp()
    });
    let hits = check_five_minute(&ts, &values);
    let ramps = noted(&hits, "gradual change");
    assert_eq!(ramps.len(), 1, "{}", show(&hits));
    let r = ramps[0];
    assert!(
        (ts[ramp.start]..=ts[ramp.end - 1]).contains(&r.ts)
            && r.check == Check::LevelShift
            && r.side == Side::Up
            && r.p_value < 1e-6,
        "{}",
        show(&hits)
    );
    // the same series without it raises no ramp and no burst
    let (ts, values) = five_minute(13, 21, 300.0, 0.05, |_, v, _| v);
    let hits = check_five_minute(&ts, &values);
    assert!(noted(&hits, "noise burst").is_empty(), "{}", show(&hits));
    assert!(noted(&hits, "gradual change").is_empty(), "{}", show(&hits));
}

#[test]
fn five_minute_small_counts_raise_no_burst_or_ramp() {
    let mut rng = Rng(8);
    let n = 14 * 288;
    let ts: Vec<i64> = (0..n).map(|i| ms(start()) + i as i64 * 300_000).collect();
    let values: Vec<f64> = (0..n)
        .map(|i| {
            let hour = (i % 288) as f64 / 12.0;
            rng.poisson(3.0 * (1.0 + 0.5 * (std::f64::consts::PI * (hour - 8.0) / 12.0).sin()))
        })
        .collect();
    let hits = check_five_minute(&ts, &values);
    assert!(noted(&hits, "noise burst").is_empty(), "{}", show(&hits));
    assert!(noted(&hits, "gradual change").is_empty(), "{}", show(&hits));
}

#[test]
fn gauge_pinned_at_its_cap_is_not_an_alert_every_hour() {
    // a utilisation around 60 % that doubles on day 6 and is clipped at 100:
    // pinned for most of each day, dipping below the cap at night
    let (ts, values) = five_minute(12, 4, 60.0, 0.05, |i, v, _| {
        if i >= 6 * 288 {
            (2.0 * v).min(100.0)
        } else {
            v
        }
    });
    let hits = check_five_minute(&ts, &values);
    let late: Vec<&Hit> = hits
        .iter()
        .filter(|h| h.ts >= ts[7 * 288] && !h.check.is_data_health())
        .collect();
    assert!(
        late.len() <= 3,
        "{} after the first pinned day:{}",
        late.len(),
        show(&hits)
    );
}

/// One hit with every f64 as its bits, so NaN, -0.0 and the last bit count.
fn bits(h: &Hit) -> String {
    let b = |x: f64| x.to_bits();
    format!(
        "{} {} {} {} {} {} {} {:?} {:?} {:?} {:?} {} {:?}",
        h.ts,
        b(h.value),
        b(h.expected),
        b(h.lower),
        b(h.upper),
        b(h.score),
        b(h.p_value),
        h.side,
        h.check,
        h.wow_pct.map(b),
        h.yoy_pct.map(b),
        h.history,
        h.note
    )
}

/// The kernel resumed from a checkpoint finds exactly what a full walk finds.
/// For series `(ts, values)` of granularity `g`: a first run over the points
/// before `cut` (report range from `ts[k]`) saves its state before point `k`;
/// the state is encoded and decoded; a second run over every point, reporting
/// from `ts[m]` (`m >= k`), resumes from it. Its findings, every f64 by its
/// bits, equal a full walk's, and so does the state it saves in turn (a chain
/// of runs stays exact). Returns how many findings were compared.
fn resume_equals_full(
    ts: &[i64],
    values: &[f64],
    g: Granularity,
    rule: &MetricRule,
    cal: &Calendar,
    explained: &Explained,
    (k, m): (usize, usize),
) -> usize {
    use super::checkpoint;
    let input = |n: usize, from: usize| SeriesInput {
        ts: &ts[..n],
        values: &values[..n],
        granularity: g,
        rule,
        calendar: cal,
        events: Vec::new(),
        explained,
        from: ts[from],
        to: i64::MAX,
        end_ts: ts[n - 1],
    };
    let n = ts.len();
    let cut = (m + 1).min(n);
    let first = series::evaluate_from(&input(cut, k), None, Some(k));
    assert!(!first.resumed);
    let state = first.state.expect("state saved");
    assert_eq!(state.next(), k);
    let bytes = checkpoint::encode(&state);
    let decoded = checkpoint::decode(&bytes).expect("state decodes");
    assert_eq!(checkpoint::encode(&decoded).len(), bytes.len());
    // a truncated or unknown encoding is no state (a full walk), never a panic
    assert!(checkpoint::decode(&bytes[..bytes.len() / 2]).is_none());

    let save = (m + n) / 2;
    let full = series::evaluate_from(&input(n, m), None, Some(save));
    let resumed = series::evaluate_from(&input(n, m), Some(decoded), Some(save));
    assert!(resumed.resumed, "{g:?} k={k}: the state did not fit");
    let show_all = |hs: &[Hit]| hs.iter().map(bits).collect::<Vec<_>>();
    assert_eq!(
        show_all(&resumed.out.hits),
        show_all(&full.out.hits),
        "{g:?} k={k} m={m}"
    );
    assert_eq!(
        (
            resumed.out.evaluated,
            resumed.out.first_eval,
            resumed.out.last_eval
        ),
        (full.out.evaluated, full.out.first_eval, full.out.last_eval)
    );
    // the next checkpoint, resumed again over the rest, still matches
    let later = |st| {
        let from = (save + n) / 2;
        let w = series::evaluate_from(&input(n, from), st, None);
        show_all(&w.out.hits)
    };
    let (s_full, s_res) = (full.state.unwrap(), resumed.state.unwrap());
    let round = |s: &super::kernel::KernelState| checkpoint::decode(&checkpoint::encode(s));
    assert_eq!(later(round(&s_res)), later(round(&s_full)));
    assert_eq!(later(round(&s_res)), later(None));
    full.out.hits.len()
}

/// Daily (with holidays, a spike, a level shift, a frozen stretch, a gap and
/// an owner's explanation), daily counts, weekly with a yearly cycle, hourly
/// and 5-minute series: resumed at several points, each equals the full walk.
#[test]
fn resumed_walk_equals_full_walk() {
    let daily = Series::daily(YEARS3, 21, Noise::Normal)
        .scale(400..401, 1.6)
        .scale(700..YEARS3, 1.3)
        .freeze(500..512)
        .remove(600..604);
    let spans = [ExplainedSpan {
        source: "s".into(),
        key: SeriesKey {
            metric: "m".into(),
            dims: Vec::new(),
        },
        from_ts: day_ms(800),
        to_ts: day_ms(810),
        cause: Cause::KnownEvent,
        persistence: Some(Persistence::OneOff),
    }];
    let explained = Explained::from_spans(&spans);
    let rule = MetricRule::default_rule();
    let cal = Calendar::default_calendar();
    let none = Calendar::none();
    let mut compared = 0;
    for (k, m) in [(30, 30), (200, 210), (420, 700), (760, 900), (1080, 1085)] {
        compared += resume_equals_full(
            &daily.ts,
            &daily.values,
            Granularity::Day,
            &rule,
            &cal,
            &explained,
            (k, m),
        );
    }
    let counts = Series::daily(400, 5, Noise::Counts(2.0));
    for (k, m) in [(50, 60), (300, 300)] {
        compared += resume_equals_full(
            &counts.ts,
            &counts.values,
            Granularity::Day,
            &rule,
            &none,
            &Explained::NONE,
            (k, m),
        );
    }
    // weekly, a yearly cycle: the year-over-year errors cross the checkpoint
    let mut rng = Rng(12);
    let weekly_ts: Vec<i64> = (0..160).map(|w| day_ms(7 * w)).collect();
    let weekly: Vec<f64> = (0..160)
        .map(|w| {
            let spike = if w == 130 { 1.5 } else { 1.0 };
            spike
                * 1000.0
                * (0.2 * (2.0 * std::f64::consts::PI * w as f64 / 52.0).sin()).exp()
                * (0.02 * rng.normal()).exp()
        })
        .collect();
    for (k, m) in [(20, 20), (60, 100), (125, 128)] {
        compared += resume_equals_full(
            &weekly_ts,
            &weekly,
            Granularity::Week,
            &rule,
            &cal,
            &Explained::NONE,
            (k, m),
        );
    }
    // hourly: daily and weekly cycles, a spike and a level shift
    const HOUR_MS: i64 = 3_600_000;
    let hours = 10 * 7 * 24;
    let mut rng = Rng(78);
    let hourly_ts: Vec<i64> = (0..hours)
        .map(|h| ms(start()) + h as i64 * HOUR_MS)
        .collect();
    let hourly: Vec<f64> = (0..hours)
        .map(|h| {
            let hour = (h % 24) as f64;
            let daily = 1.0 + 0.6 * (std::f64::consts::PI * (hour - 4.0) / 12.0).sin().max(-0.8);
            let bump = if h == 900 { 1.7 } else { 1.0 } * if h >= 1300 { 1.25 } else { 1.0 };
            (400.0 * daily * WEEK[(h / 24) % 7] * bump * (SIGMA * rng.normal()).exp()).round()
        })
        .collect();
    for (k, m) in [(100, 100), (700, 880), (1290, 1400)] {
        compared += resume_equals_full(
            &hourly_ts,
            &hourly,
            Granularity::Hour,
            &rule,
            &none,
            &Explained::NONE,
            (k, m),
        );
    }
    // 5-minute counts with a gauge pinned at a cap and a noise burst
    const STEP: i64 = 300_000;
    let n = 8 * 288;
    let mut rng = Rng(6);
    let five_ts: Vec<i64> = (0..n).map(|i| ms(start()) + i as i64 * STEP).collect();
    let five: Vec<f64> = (0..n)
        .map(|i| {
            let hour = (i % 288) as f64 / 12.0;
            let mean = 6.0 * (1.0 + 0.5 * (std::f64::consts::PI * (hour - 8.0) / 12.0).sin());
            let burst = if (1500..1530).contains(&i) { 3.0 } else { 1.0 };
            rng.poisson(mean * burst) + if i == 1200 { 40.0 } else { 0.0 }
        })
        .collect();
    for (k, m) in [(600, 600), (1190, 1400), (2000, 2100)] {
        compared += resume_equals_full(
            &five_ts,
            &five,
            Granularity::Minutes(5),
            &rule,
            &none,
            &Explained::NONE,
            (k, m),
        );
    }
    // the comparisons were about findings, not empty lists
    assert!(compared > 50, "only {compared} findings compared");
}

/// A state saved for another scale is not used: the walk starts from point
/// 0 and finds what a full walk finds.
#[test]
fn a_state_that_does_not_fit_is_not_resumed() {
    let s = Series::daily(300, 3, Noise::Normal).scale(250..251, 1.8);
    // the same series shifted below zero: linear scale, not log
    let linear: Vec<f64> = s.values.iter().map(|v| v - 1100.0).collect();
    let rule = MetricRule::default_rule();
    let cal = Calendar::default_calendar();
    let events = Vec::new;
    fn input<'a>(
        s: &'a Series,
        values: &'a [f64],
        rule: &'a MetricRule,
        cal: &'a Calendar,
        events: Vec<&'a crate::config::EventConfig>,
        explained: &'a Explained,
    ) -> SeriesInput<'a> {
        SeriesInput {
            ts: &s.ts,
            values,
            granularity: Granularity::Day,
            rule,
            calendar: cal,
            events,
            explained,
            from: s.ts[200],
            to: i64::MAX,
            end_ts: *s.ts.last().unwrap(),
        }
    }
    let none = Explained::NONE;
    let input = |values| input(&s, values, &rule, &cal, events(), &none);
    let logged = series::evaluate_from(&input(&s.values), None, Some(150));
    let state = logged.state.expect("state saved");
    let same = series::evaluate_from(&input(&s.values), Some(state.clone()), None);
    assert!(same.resumed);
    let other = series::evaluate_from(&input(&linear), Some(state), None);
    assert!(!other.resumed, "a log-scale state resumed a linear series");
    let full = series::evaluate(&input(&linear));
    assert!(!full.hits.is_empty());
    assert_eq!(
        other.out.hits.iter().map(bits).collect::<Vec<_>>(),
        full.hits.iter().map(bits).collect::<Vec<_>>()
    );
}

/// The layout in every checkpoint's fingerprint names the fields of every
/// component (daily and sub-daily ones), and is the same text every time.
#[test]
fn state_layout_names_every_component() {
    let l = series::layout();
    for field in [
        "resid", "tail", "halves", "how_hist", "recent", "levels", "cusum",
    ] {
        assert!(l.contains(field), "{field} not in {l}");
    }
    assert_eq!(l, series::layout());
}
