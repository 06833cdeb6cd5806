//! A small labelled bench made inside the project, for the detection-quality
//! regression guard: daily business series with growth, a weekly shape, the
//! holidays of the `default` calendar (normal, recurring every year) and
//! multiplicative noise, with planted spikes, dips, lasting level shifts and
//! lost weekly shapes (`pattern_change`) whose dates are written as labels. Scored the way the shared bench's
//! `score.py` scores (a finding counts for a label inside `[start, end + 3 days]`;
//! false alerts are runs of consecutive false days), so the numbers are
//! comparable in spirit, while nothing outside the project is read.
//!
//! Deterministic: a seeded splitmix64, no `rand` crate, so the data — and the
//! measured floors in tests/it/cli.rs — do not move when a dependency does.

// Test support: a failed unwrap is a failed test; the casts are of small counts.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use chrono::{Datelike, Duration, NaiveDate, Weekday};

/// Days before evaluation starts (the warm-up, as `score.py`'s `eval_from`).
pub const WARMUP_DAYS: i64 = 120;
/// Days after a label's end that a finding still counts for it (daily series).
const LAG_DAYS: i64 = 3;

const METRICS: [&str; 6] = [
    "orders", "revenue", "signups", "sessions", "tickets", "refunds",
];
const REGIONS: [&str; 8] = ["na", "eu", "uk", "jp", "in", "br", "mx", "au"];

/// One planted anomaly.
#[derive(Debug, Clone)]
pub struct Label {
    /// Series key.
    pub metric: String,
    /// Series key.
    pub region: String,
    /// First anomalous day.
    pub start: NaiveDate,
    /// Last day that still counts as the anomaly itself.
    pub end: NaiveDate,
    /// `spike`, `dip`, `level_shift` or `pattern_change`.
    pub kind: &'static str,
}

/// What the generator made.
#[derive(Debug)]
pub struct Bench {
    /// Every planted anomaly.
    pub labels: Vec<Label>,
    /// First evaluated day.
    pub eval_from: NaiveDate,
    /// Last day in the export.
    pub last_day: NaiveDate,
    /// Number of series.
    pub series: usize,
}

/// The score, as `score.py` (and `score_ops.py`) report it.
#[derive(Debug, Clone)]
pub struct Score {
    /// Flagged (series, period) points inside a label's window, over all flagged points.
    pub precision: f64,
    /// Labels with at least one finding inside their window.
    pub recall: f64,
    /// Harmonic mean of the two.
    pub f1: f64,
    /// Runs of consecutive false periods per 100 series-weeks evaluated.
    pub false_alerts_per_100_series_weeks: f64,
    /// The labels nobody was told about: `metric/region kind start`.
    pub missed: Vec<String>,
}

/// splitmix64: tiny, well mixed, and stable across platforms (the ops bench uses it too).
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Uniform in [0, n).
    pub fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize
    }

    /// Standard normal (Box–Muller).
    pub fn gauss(&mut self) -> f64 {
        let u = 1.0 - self.unit();
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

fn thanksgiving(year: i32) -> NaiveDate {
    NaiveDate::from_weekday_of_month_opt(year, 11, Weekday::Thu, 4).unwrap()
}

/// Recurring calendar effects (normal every year), as the shared bench has them.
fn holiday_effect(day: NaiveDate, style: usize) -> f64 {
    let y = day.year();
    let tg = thanksgiving(y);
    let (bf, cm) = (tg + Duration::days(1), tg + Duration::days(4));
    let xmas = NaiveDate::from_ymd_opt(y, 12, 25).unwrap();
    let ny = NaiveDate::from_ymd_opt(y, 1, 1).unwrap();
    match style {
        // retail
        0 => {
            if day == bf {
                2.2
            } else if day == cm {
                1.9
            } else if tg < day && day < xmas && (xmas - day).num_days() <= 24 {
                1.25
            } else if day == xmas {
                0.55
            } else if day == ny {
                0.7
            } else {
                1.0
            }
        }
        // b2b
        1 => {
            if [tg, bf, xmas, ny].contains(&day) {
                0.35
            } else if xmas < day && day.month() == 12 {
                0.6
            } else {
                1.0
            }
        }
        _ => 1.0,
    }
}

/// Write `metrics_daily.csv` (date,metric,region,value) into `dir` and return
/// the labels. `days` from Monday 2022-01-03.
pub fn generate(dir: &Path, seed: u64, days: i64) -> Bench {
    let mut rng = Rng(seed);
    let first = NaiveDate::from_ymd_opt(2022, 1, 3).unwrap();
    let eval_from = first + Duration::days(WARMUP_DAYS);
    let n = usize::try_from(days).unwrap();
    let eval_idx = usize::try_from(WARMUP_DAYS).unwrap();
    let mut labels = Vec::new();
    let mut csv = String::from("date,metric,region,value\n");
    let mut series = 0;
    for metric in METRICS {
        for region in REGIONS {
            series += 1;
            let level = rng.uniform(500f64.ln(), 1e6f64.ln()).exp();
            let growth = rng.uniform(-0.10, 0.30);
            let style = rng.below(3);
            let week: [f64; 7] = match style {
                0 => [1.0, 0.97, 0.98, 1.0, 1.05, 1.2, 1.25],
                1 => {
                    let w = rng.uniform(0.3, 0.6);
                    [1.05, 1.08, 1.06, 1.04, 0.98, w, w * 0.9]
                }
                _ => std::array::from_fn(|_| 1.0 + rng.uniform(-0.03, 0.03)),
            };
            let sigma = rng.uniform(0.03, 0.08);
            let mut values: Vec<f64> = (0..n)
                .map(|i| {
                    let day = first + Duration::days(i as i64);
                    let t_years = i as f64 / 365.25;
                    level
                        * (growth * t_years).exp()
                        * week[day.weekday().num_days_from_monday() as usize]
                        * holiday_effect(day, style)
                        * (sigma * rng.gauss()).exp()
                })
                .collect();
            // About 40% of series stay clean; the rest get one or two anomalies
            // at least 45 days apart, after warm-up and 30 days before the end.
            let planted = [0, 0, 1, 1, 2][rng.below(5)];
            let mut taken: Vec<usize> = Vec::new();
            for _ in 0..planted {
                let Some(i) = (0..20)
                    .map(|_| eval_idx + rng.below(n - 30 - eval_idx))
                    .find(|i| taken.iter().all(|j| i.abs_diff(*j) > 45))
                else {
                    continue;
                };
                taken.push(i);
                let (kind, span) = match rng.below(6) {
                    0 | 1 => {
                        values[i] *= (rng.uniform(6.0, 10.0) * sigma).exp();
                        ("spike", 1)
                    }
                    2 | 3 => {
                        let span = 1 + rng.below(2);
                        let keep = 1.0 - rng.uniform(0.4, 0.7);
                        for v in &mut values[i..i + span] {
                            *v *= keep;
                        }
                        ("dip", span)
                    }
                    // the weekly shape lost for two to four weeks (flat series have none
                    // to lose: a spike instead, as the shared bench does)
                    5 if style != 2 => {
                        let span = 14 + rng.below(15);
                        for (k, v) in values[i..i + span].iter_mut().enumerate() {
                            let day = first + Duration::days((i + k) as i64);
                            *v /= week[day.weekday().num_days_from_monday() as usize];
                        }
                        ("pattern_change", span)
                    }
                    5 => {
                        values[i] *= (7.0 * sigma).exp();
                        ("spike", 1)
                    }
                    _ => {
                        let sign = if rng.below(2) == 0 { -1.0 } else { 1.0 };
                        let factor = (sign * rng.uniform(5.0, 8.0) * sigma).exp();
                        // Lasting: the new level holds to the end of the export.
                        for v in &mut values[i..] {
                            *v *= factor;
                        }
                        ("level_shift", 7)
                    }
                };
                labels.push(Label {
                    metric: metric.to_string(),
                    region: region.to_string(),
                    start: first + Duration::days(i as i64),
                    end: first + Duration::days((i + span - 1).min(n - 1) as i64),
                    kind,
                });
            }
            for (i, v) in values.iter().enumerate() {
                let day = first + Duration::days(i as i64);
                // Counts are integers, revenue is money; both as exports have them.
                if metric == "revenue" {
                    writeln!(csv, "{day},{metric},{region},{v:.2}").unwrap();
                } else {
                    writeln!(csv, "{day},{metric},{region},{}", v.round()).unwrap();
                }
            }
        }
    }
    std::fs::write(dir.join("metrics_daily.csv"), csv).unwrap();
    Bench {
        labels,
        eval_from,
        last_day: first + Duration::days(days - 1),
        series,
    }
}

/// Score a findings CSV (columns `metric`, `region`, `timestamp`) against the
/// bench, with `score.py`'s rules.
pub fn score(bench: &Bench, findings: &Path) -> Score {
    let mut rd = csv::Reader::from_path(findings).unwrap();
    let headers = rd.headers().unwrap().clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("findings have no `{name}` column: {headers:?}"))
    };
    let (m, r, t) = (col("metric"), col("region"), col("timestamp"));
    // Repeated (series, day) rows count once, as in score.py.
    let mut points: BTreeSet<((String, String), NaiveDate)> = BTreeSet::new();
    for row in rd.records() {
        let row = row.unwrap();
        let day = NaiveDate::parse_from_str(&row[t][..10], "%Y-%m-%d").unwrap();
        if day >= bench.eval_from {
            points.insert(((row[m].to_string(), row[r].to_string()), day));
        }
    }
    let window = |l: &Label| (l.start, l.end + Duration::days(LAG_DAYS));
    let mut by_key: HashMap<(String, String), Vec<&Label>> = HashMap::new();
    for l in &bench.labels {
        by_key
            .entry((l.metric.clone(), l.region.clone()))
            .or_default()
            .push(l);
    }
    let mut true_points = 0usize;
    let mut false_by_key: BTreeMap<&(String, String), Vec<NaiveDate>> = BTreeMap::new();
    for (key, day) in &points {
        let hit = by_key.get(key).is_some_and(|ls| {
            ls.iter().any(|l| {
                let (lo, hi) = window(l);
                lo <= *day && *day <= hi
            })
        });
        if hit {
            true_points += 1;
        } else {
            false_by_key.entry(key).or_default().push(*day);
        }
    }
    let missed: Vec<String> = bench
        .labels
        .iter()
        .filter(|l| {
            let (lo, hi) = window(l);
            let key = (l.metric.clone(), l.region.clone());
            !points
                .iter()
                .any(|(k, d)| *k == key && lo <= *d && *d <= hi)
        })
        .map(|l| format!("{}/{} {} {}", l.metric, l.region, l.kind, l.start))
        .collect();
    let detected = bench.labels.len() - missed.len();
    // A false alert is a run of consecutive false days (what an owner receives).
    let false_alerts: usize = false_by_key
        .values()
        .map(|days| {
            1 + days
                .windows(2)
                .filter(|w| (w[1] - w[0]).num_days() > 1)
                .count()
        })
        .sum();
    let weeks = ((bench.last_day - bench.eval_from).num_days() as f64 / 7.0).max(1.0);
    let precision = if points.is_empty() {
        0.0
    } else {
        true_points as f64 / points.len() as f64
    };
    let recall = if bench.labels.is_empty() {
        0.0
    } else {
        detected as f64 / bench.labels.len() as f64
    };
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    Score {
        precision,
        recall,
        f1,
        false_alerts_per_100_series_weeks: 100.0 * false_alerts as f64
            / (bench.series as f64 * weeks),
        missed,
    }
}
