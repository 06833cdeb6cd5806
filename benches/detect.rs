//! Detection speed: the whole kernel + FDR pass over synthetic daily series.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    reason = "a failed assumption in a test or bench is a failed test"
)]

use std::path::Path;

use callout::detect::{Range, detect};
use callout::model::{Granularity, SeriesKey};
use callout::source::{Batch, SeriesInfo};
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

criterion_group!(benches, bench);
criterion_main!(benches);
