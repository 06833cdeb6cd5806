//! A small labelled bench of sub-daily operational series made inside the
//! project, for the ops detection-quality guard: hourly and 5-minute series
//! (counts with Poisson noise, latencies, utilisation) with a daily cycle,
//! sometimes a weekend dip, short histories (2–4 weeks of 5-minute data, 6–9
//! of hourly) and the dirt real exports carry, which is *not* anomalous: rows
//! stamped a few seconds late, a repeated timestamp now and then, a single lost
//! row now and then. Planted anomalies: spike, dip, level_shift, outage, stuck,
//! variance, ramp, missing. Scored the way the shared bench's `score_ops.py`
//! scores (findings floored to the period grid, a label counts if a finding
//! falls in `[start, end + lag]`, lag 6 periods for 5-minute and 3 for hourly
//! data; false alerts are runs of false points with gaps of at most 3 periods;
//! each series is scored from its first quarter on, at least 2 days).
//!
//! Deterministic: a seeded splitmix64, so the measured floors do not move
//! when a dependency does.

// Test support: a failed unwrap is a failed test; the casts are of small counts.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use chrono::{DateTime, Datelike, NaiveDateTime, Timelike};

/// One planted anomaly (times in Unix seconds, on the series' grid).
#[derive(Debug, Clone)]
pub struct Label {
    /// Series key.
    pub metric: String,
    /// Series key.
    pub host: String,
    /// First anomalous period.
    pub start: i64,
    /// Last period that is the anomaly itself.
    pub end: i64,
    /// What was planted.
    pub kind: &'static str,
}

/// One series as the scorer needs it.
#[derive(Debug, Clone)]
pub struct Meta {
    /// Seconds between points.
    pub step: i64,
    /// First scored period.
    pub eval_start: i64,
    /// Last period.
    pub end: i64,
}

/// What the generator made.
#[derive(Debug)]
pub struct Bench {
    /// Every planted anomaly.
    pub labels: Vec<Label>,
    /// Every series by (metric, host).
    pub series: HashMap<(String, String), Meta>,
}

use super::bench::Rng;
/// The business bench's generator and score.
pub use super::bench::Score;

/// Draws the ops bench needs beyond the business bench's.
trait OpsDraws {
    fn poisson(&mut self, lam: f64) -> f64;
}

impl OpsDraws for Rng {
    /// Poisson (Knuth for small means, normal above 30).
    fn poisson(&mut self, lam: f64) -> f64 {
        if lam > 30.0 {
            return (lam + lam.sqrt() * self.gauss()).round().max(0.0);
        }
        let (l, mut k, mut p) = ((-lam).exp(), 0.0, 1.0);
        loop {
            p *= self.unit();
            if p <= l {
                return k;
            }
            k += 1.0;
        }
    }
}

const METRICS: [(&str, &str); 5] = [
    ("requests", "count"),
    ("errors", "count"),
    ("p99_latency_ms", "latency"),
    ("cpu_util_pct", "util"),
    ("orders", "count"),
];
const KINDS: [&str; 10] = [
    "spike",
    "spike",
    "dip",
    "level_shift",
    "level_shift",
    "outage",
    "stuck",
    "variance",
    "ramp",
    "missing",
];
/// 2025-06-30 00:00 UTC: every series ends here.
const END: i64 = 1_751_241_600;

fn fmt(t: i64) -> String {
    DateTime::from_timestamp(t, 0)
        .unwrap()
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// Write `metrics_ops.csv` (timestamp,metric,host,value) into `dir`: `n`
/// series, half of them at 5 minutes.
pub fn generate(dir: &Path, seed: u64, n: usize) -> Bench {
    let mut rng = Rng(seed);
    let mut labels = Vec::new();
    let mut series = HashMap::new();
    let mut rows: Vec<(i64, String)> = Vec::new();
    for idx in 0..n {
        let (metric, kind) = METRICS[idx % METRICS.len()];
        let host = format!("h{idx:02}");
        let five = idx % 2 == 0;
        let step: i64 = if five { 300 } else { 3600 };
        let weeks = if five {
            2 + rng.below(3)
        } else {
            6 + rng.below(4)
        } as i64;
        let len = (weeks * 7 * 86_400 / step) as usize;
        let start = END - step * len as i64;
        let level = match kind {
            "count" => rng.uniform(20f64.ln(), 3000f64.ln()).exp(),
            "latency" => rng.uniform(80.0, 1500.0),
            _ => rng.uniform(15.0, 60.0),
        };
        let amp = if rng.below(4) == 0 {
            0.0
        } else {
            rng.uniform(0.3, 0.9)
        };
        let peak = rng.uniform(11.0, 20.0);
        let weekend = if rng.below(4) == 0 {
            rng.uniform(0.4, 0.8)
        } else {
            1.0
        };
        let sigma = rng.uniform(0.03, 0.12);
        let (jitter, dups, gaps) = (rng.below(5) == 0, rng.below(6) == 0, rng.below(3) == 0);
        let expected = |i: usize| {
            let t = DateTime::from_timestamp(start + step * i as i64, 0).unwrap();
            let hour = f64::from(t.hour()) + f64::from(t.minute()) / 60.0;
            let mut m =
                level * (1.0 + amp * 0.5 * ((hour - peak) / 24.0 * std::f64::consts::TAU).cos());
            if t.weekday().num_days_from_monday() >= 5 {
                m *= weekend;
            }
            m
        };
        let eff_sd = |m: f64| {
            (sigma * sigma
                + if kind == "count" {
                    1.0 / m.max(1.0)
                } else {
                    0.0
                })
            .sqrt()
        };
        let noise = |rng: &mut Rng, m: f64, scale: f64| {
            let s = sigma * scale;
            if kind == "count" && m < 50.0 {
                let lam = m * (s / 2.0 * rng.gauss()).exp();
                rng.poisson(lam)
            } else {
                m * (s * rng.gauss()).exp()
            }
        };
        let mut vals: Vec<Option<f64>> = (0..len)
            .map(|i| Some(noise(&mut rng, expected(i), 1.0)))
            .collect();
        let eval_idx = (len / 4).max((2 * 86_400 / step) as usize);
        let per_hour = (3600 / step) as usize;
        if rng.unit() < 0.6 {
            let i = eval_idx + rng.below(len - 12 * per_hour - eval_idx);
            let kind_a = KINDS[rng.below(KINDS.len())];
            let span = match kind_a {
                "spike" => {
                    let k = rng.uniform(6.0, 12.0) * eff_sd(expected(i));
                    vals[i] = vals[i].map(|v| v * k.exp());
                    1
                }
                "dip" => {
                    let span = 1 + rng.below(3);
                    let keep = 1.0 - rng.uniform(0.5, 0.9);
                    for v in vals[i..i + span].iter_mut().flatten() {
                        *v *= keep;
                    }
                    span
                }
                "level_shift" => {
                    let sign = if rng.below(2) == 0 { -1.0 } else { 1.0 };
                    let k = sign * rng.uniform(4.0, 8.0) * eff_sd(expected(i));
                    for v in vals[i..].iter_mut().flatten() {
                        *v *= k.exp();
                    }
                    3 * per_hour
                }
                "outage" => {
                    let span = (2 + rng.below(5)) * (per_hour / 2).max(1);
                    vals[i..i + span].fill(Some(0.0));
                    span
                }
                "stuck" => {
                    let span = (2 + rng.below(7)) * per_hour;
                    let v = vals[i - 1];
                    vals[i..i + span].fill(v);
                    span
                }
                "variance" => {
                    let span = (2 + rng.below(5)) * per_hour;
                    for (j, v) in vals.iter_mut().enumerate().skip(i).take(span) {
                        *v = Some(noise(&mut rng, expected(j), 6.0));
                    }
                    span
                }
                "ramp" => {
                    let span = (6 + rng.below(19)) * per_hour;
                    let top = rng.uniform(0.6, 1.5);
                    for (j, v) in vals.iter_mut().enumerate().skip(i) {
                        let f = ((j - i) as f64 / span as f64).min(1.0);
                        if let Some(v) = v {
                            *v *= (top * f).exp();
                        }
                    }
                    span
                }
                _ => {
                    let span = (3 + rng.below(10)) * per_hour;
                    vals[i..i + span].fill(None);
                    span
                }
            };
            labels.push(Label {
                metric: metric.to_string(),
                host: host.clone(),
                start: start + step * i as i64,
                end: start + step * (i + span - 1).min(len - 1) as i64,
                kind: kind_a,
            });
        }
        for (i, v) in vals.iter().enumerate() {
            let Some(v) = *v else { continue };
            if gaps && rng.unit() < 0.004 {
                continue; // a lost scrape
            }
            let mut t = start + step * i as i64;
            if jitter && rng.unit() < 0.3 {
                t += 1 + rng.below(9) as i64;
            }
            let shown = |v: f64| match kind {
                "count" => format!("{}", v.round().max(0.0)),
                "util" => format!("{:.2}", v.clamp(0.0, 100.0)),
                _ => format!("{:.2}", v.max(0.0)),
            };
            rows.push((t, format!("{},{metric},{host},{}", fmt(t), shown(v))));
            if dups && rng.unit() < 0.003 {
                let again = v * (0.01 * rng.gauss()).exp();
                rows.push((t, format!("{},{metric},{host},{}", fmt(t), shown(again))));
            }
        }
        series.insert(
            (metric.to_string(), host),
            Meta {
                step,
                eval_start: start + step * eval_idx as i64,
                end: END - step,
            },
        );
    }
    rows.sort_by_key(|r| r.0);
    let mut csv = String::from("timestamp,metric,host,value\n");
    for (_, r) in rows {
        writeln!(csv, "{r}").unwrap();
    }
    std::fs::write(dir.join("metrics_ops.csv"), csv).unwrap();
    Bench { labels, series }
}

/// Score a findings CSV (columns `metric`, `host`, `timestamp`) with
/// `score_ops.py`'s rules.
pub fn score(bench: &Bench, findings: &Path) -> Score {
    let mut rd = csv::Reader::from_path(findings).unwrap();
    let headers = rd.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (m, h, t) = (col("metric"), col("host"), col("timestamp"));
    let mut points: BTreeSet<((String, String), i64)> = BTreeSet::new();
    for row in rd.records() {
        let row = row.unwrap();
        let key = (row[m].to_string(), row[h].to_string());
        let Some(meta) = bench.series.get(&key) else {
            continue;
        };
        let ts = NaiveDateTime::parse_from_str(&row[t][..19], "%Y-%m-%dT%H:%M:%S")
            .unwrap()
            .and_utc()
            .timestamp();
        let per = ts.div_euclid(meta.step);
        if per >= meta.eval_start / meta.step {
            points.insert((key, per));
        }
    }
    let window = |l: &Label| {
        let step = bench.series[&(l.metric.clone(), l.host.clone())].step;
        let lag = if step == 300 { 6 } else { 3 };
        (l.start / step, l.end / step + lag)
    };
    let mut true_points = 0usize;
    let mut false_by_key: BTreeMap<&(String, String), Vec<i64>> = BTreeMap::new();
    for (key, per) in &points {
        let hit = bench.labels.iter().any(|l| {
            let (lo, hi) = window(l);
            l.metric == key.0 && l.host == key.1 && lo <= *per && *per <= hi
        });
        if hit {
            true_points += 1;
        } else {
            false_by_key.entry(key).or_default().push(*per);
        }
    }
    let missed: Vec<String> = bench
        .labels
        .iter()
        .filter(|l| {
            let (lo, hi) = window(l);
            !points
                .iter()
                .any(|(k, p)| k.0 == l.metric && k.1 == l.host && lo <= *p && *p <= hi)
        })
        .map(|l| format!("{}/{} {} {}", l.metric, l.host, l.kind, fmt(l.start)))
        .collect();
    let false_alerts: usize = false_by_key
        .values()
        .map(|ps| 1 + ps.windows(2).filter(|w| w[1] - w[0] > 3).count())
        .sum();
    let weeks: f64 = bench
        .series
        .values()
        .map(|s| (s.end - s.eval_start) as f64 / (7.0 * 86_400.0))
        .sum();
    let precision = if points.is_empty() {
        0.0
    } else {
        true_points as f64 / points.len() as f64
    };
    let recall = if bench.labels.is_empty() {
        0.0
    } else {
        (bench.labels.len() - missed.len()) as f64 / bench.labels.len() as f64
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
        false_alerts_per_100_series_weeks: 100.0 * false_alerts as f64 / weeks.max(1.0),
        missed,
    }
}
