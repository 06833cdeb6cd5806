//! Detection speed: the whole kernel + FDR pass over synthetic daily series,
//! and each state component of the kernel alone over one long daily series.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    reason = "a failed assumption in a test or bench is a failed test"
)]

use std::path::Path;

use callout::batch::{Batch, SeriesInfo};
use callout::detect::health::{Health, HealthContext};
use callout::detect::level::Level;
use callout::detect::noise::Noise;
use callout::detect::seasonal::SeasonalProfile;
use callout::detect::shift::ShiftDetector;
use callout::detect::{Range, detect, stats};
use callout::model::{Check, Hit};
use callout::model::{Granularity, SeriesKey};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn batch(series: usize, days: usize) -> Batch {
    let mut ts = Vec::with_capacity(series * days);
    let mut values = Vec::with_capacity(series * days);
    let mut infos = Vec::with_capacity(series);
    let mut seed = 42u64;
    let mut noise = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((seed >> 11) as f64 / (1u64 << 53) as f64) - 0.5
    };
    let shape = [1.0, 0.97, 0.98, 1.0, 1.05, 1.2, 1.25];
    for s in 0..series {
        let start = ts.len();
        for d in 0..days {
            let t = (19_358 + d as i64) * 86_400_000; // from 2023-01-01
            ts.push(t);
            values.push(1000.0 * (1.0 + s as f64 / 100.0) * shape[d % 7] * (1.0 + 0.1 * noise()));
        }
        infos.push(SeriesInfo {
            key: SeriesKey {
                metric: format!("m{s}"),
                dims: vec![("region".into(), "eu".into())],
            },
            start,
            len: days,
            granularity: Granularity::Day,
        });
    }
    Batch {
        source: "bench".into(),
        key_columns: vec!["metric".into(), "region".into()],
        ts,
        values,
        series: infos,
    }
}

fn bench(c: &mut Criterion) {
    let cfg = callout::config::compile_str(
        "[[source]]\nname = \"bench\"\npath = \"x.csv\"\n",
        Path::new("bench.toml"),
        &|_| None,
    )
    .expect("config");
    let b = batch(200, 1095);
    let mut g = c.benchmark_group("detect");
    g.throughput(Throughput::Elements(b.rows() as u64));
    g.sample_size(10);
    g.bench_function("200 daily series x 3 years", |bench| {
        bench.iter(|| {
            detect(
                std::slice::from_ref(&b),
                &cfg,
                &[Range::ALL],
                &[],
                &|_, _| {},
            )
        })
    });
    g.finish();
}

/// Residual-like values: uniform noise in ±0.05 with a spike now and then.
fn residuals(n: usize) -> Vec<f64> {
    let mut seed = 7u64;
    (0..n)
        .map(|i| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = ((seed >> 11) as f64 / (1u64 << 53) as f64) - 0.5;
            if i % 97 == 0 { 1.0 } else { 0.1 * u }
        })
        .collect()
}

const DAYS: usize = 3650;
const DAY_MS: i64 = 86_400_000;

fn components(c: &mut Criterion) {
    let r = residuals(DAYS);
    let mut g = c.benchmark_group("component");
    g.throughput(Throughput::Elements(DAYS as u64));
    g.sample_size(20);
    g.bench_function("noise: scale and tail family, 10 years daily", |b| {
        b.iter(|| {
            let mut n = Noise::new(300, 28, stats::HEAVY_DF, false);
            for &x in &r {
                n.push_residual(x);
                n.push_deviation(x.abs() / 0.03);
                n.refresh();
            }
            n.sigma()
        })
    });
    g.bench_function("level: level and slope, 10 years daily", |b| {
        let profile = [0.01, 0.02, 0.0, -0.01, 0.03, -0.02, -0.03];
        b.iter(|| {
            let mut l = Level::new(7, 14, true);
            let mut acc = 0.0;
            for (t, &x) in r.iter().enumerate() {
                let t = t as i64;
                if l.ready() {
                    acc += l.at(t, &profile);
                }
                l.push((t, 5.0 + x, (t % 7) as usize));
                l.refresh_slope(&profile, (t / 7) as u64);
            }
            acc
        })
    });
    g.bench_function("seasonal: weekday profile, 10 years daily", |b| {
        b.iter(|| {
            let mut p = SeasonalProfile::new(DAY_MS, 3, 7, 1, 12, true);
            for (d, &x) in r.iter().enumerate() {
                let t = d as i64 * DAY_MS;
                p.roll(t);
                p.push(p.slot(t), 5.0 + x);
            }
            p.at(0)
        })
    });
    g.bench_function("shift: CUSUM and runs, 10 years daily", |b| {
        b.iter(|| {
            let mut s = ShiftDetector::new(3);
            let mut shifts = 0;
            for (t, &x) in r.iter().enumerate() {
                let p = (t as i64, x, t % 7);
                if s.cusum_step(x / 0.03, p).is_some() {
                    shifts += 1;
                    s.reset();
                } else if x.abs() < 0.09 {
                    s.inside();
                } else if s.outside(p, x > 0.0).is_some() {
                    shifts += 1;
                    s.reset();
                }
            }
            shifts
        })
    });
    g.bench_function("health: gaps, repeats, bounds, 10 years daily", |b| {
        let ts: Vec<i64> = (0..DAYS as i64).map(|d| d * DAY_MS).collect();
        let ys: Vec<f64> = r.iter().map(|x| (1000.0 * (1.0 + x)).round()).collect();
        let rule = callout::config::MetricRule::default_rule();
        b.iter(|| {
            let mut h = Health::new(Granularity::Day, &rule);
            let mut out = Vec::new();
            for i in 0..ts.len() {
                let base = |check: Check| Hit::blank(ts[i], ys[i], check, i);
                let cx = HealthContext {
                    from: 0,
                    to: i64::MAX,
                    last_expected: 1000.0,
                    warm: true,
                    base_hit: &base,
                };
                h.check(&ts, &ys, i, &rule, &cx, &mut out);
            }
            out.len()
        })
    });
    g.finish();
}

criterion_group!(benches, bench, components);
criterion_main!(benches);
