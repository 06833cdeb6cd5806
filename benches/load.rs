//! Load speed: one daily long-format CSV (ordered by date, as a warehouse
//! dump is) through `source::load`, beside Polars' own `read_csv` of the same
//! file as the yardstick (issue 10: load within 1.5x of the bare reader).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a failed assumption in a bench is a failed bench"
)]

use std::io::Write;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use polars::prelude::*;

const SERIES: usize = 2_000;
const DAYS: usize = 365;

/// `date,metric,region,value`, every series on every day, sorted by date.
fn write_csv(path: &Path) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(f, "date,metric,region,value").unwrap();
    let regions = ["emea", "amer", "apac", "latam"];
    let mut seed = 7u64;
    for d in 0..DAYS {
        let date = chrono::NaiveDate::from_ymd_opt(2023, 1, 1).unwrap()
            + chrono::Duration::days(i64::try_from(d).unwrap());
        for s in 0..SERIES {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let v = 1000.0 + (seed >> 40) as f64 / 1e4;
            writeln!(f, "{date},metric_{:04},{},{v:.2}", s / 4, regions[s % 4]).unwrap();
        }
    }
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("daily.csv");
    write_csv(&path);
    let text = format!(
        "[[source]]\nname = \"daily\"\npath = \"{}\"\ntime_column = \"date\"\ndimensions = [\"region\"]\n",
        path.display()
    );
    let cfg = callout::config::compile_str(&text, Path::new("bench.toml"), &|_| None).unwrap();
    let src = &cfg.sources[0];
    // what a SQL source's `$from`/`$to` bind to; a file source ignores it
    let t = chrono::NaiveDate::from_ymd_opt(2024, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    let window = callout::source::sql::Window { from: t, to: t };
    let mut g = c.benchmark_group("load");
    g.throughput(Throughput::Elements((SERIES * DAYS) as u64));
    g.sample_size(10);
    g.bench_function("source::load, 2000 daily series x 1 year", |b| {
        b.iter(|| {
            let (batch, problems) = callout::source::load(src, &window).unwrap();
            assert!(problems.is_empty());
            assert_eq!(batch.series.len(), SERIES);
        })
    });
    g.bench_function("polars read_csv (try_parse_dates), same file", |b| {
        b.iter(|| {
            let df = LazyCsvReader::new(PlRefPath::new(path.to_str().unwrap()))
                .with_try_parse_dates(true)
                .finish()
                .unwrap()
                .collect()
                .unwrap();
            assert_eq!(df.height(), SERIES * DAYS);
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
