//! S3 sources against a real S3 server: moto's standalone server
//! (`tests/s3_server.py`, `pip install 'moto[server]'`) started by the test
//! with request signing checked, holding the fixture's rows as CSV parts and
//! as Parquet. The same rows through a file, S3 (CSV glob and Parquet) and SQL
//! (the throwaway PostgreSQL cluster of `support/pg.rs`) give the same
//! findings; a missing bucket, a missing key, wrong credentials and a bad
//! object of a glob are clear errors naming the source and the bucket or key,
//! and the other sources still run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use crate::support::common;
use common::{root, text};

use crate::support::pg;
use pg::{Pg, QUERY_SOURCE, write_config};

/// The S3 server, stopped on drop (its stdin closes, then it is killed).
struct S3 {
    child: Child,
    port: u16,
    key_id: String,
    secret: String,
}

impl S3 {
    /// Start moto with `puts` (`bucket/key`, local file) uploaded.
    fn start(puts: &[(&str, PathBuf)]) -> S3 {
        let mut cmd = Command::new("python3");
        cmd.arg(root().join("tests/s3_server.py"))
            .args(["--port", "0"]);
        for (target, file) in puts {
            cmd.arg("--put").arg(format!("{target}={}", file.display()));
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 tests/s3_server.py (pip install 'moto[server]')");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let parts: Vec<&str> = line.split_whitespace().collect();
        assert!(
            parts.len() == 4 && parts[0] == "ready",
            "tests/s3_server.py did not start (is moto[server] installed?): {line:?}"
        );
        S3 {
            port: parts[1].parse().unwrap(),
            key_id: parts[2].to_string(),
            secret: parts[3].to_string(),
            child,
        }
    }

    /// `[[source]]` keys that point an S3 source at this server.
    fn keys(&self) -> String {
        format!(
            "endpoint_url = \"http://127.0.0.1:{}\"\nregion = \"us-east-1\"\npath_style = true\n",
            self.port
        )
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run callout with the server's credentials in the environment (the AWS
/// way); `secret` replaces the real secret access key.
fn callout(args: &[&str], s3: &S3, secret: &str, pg_url: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_callout"))
        .args(args)
        .env("AWS_ACCESS_KEY_ID", &s3.key_id)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_S3")
        .env("CALLOUT_TEST_PG_URL", pg_url)
        .output()
        .unwrap()
}

/// The fixture as Parquet, with a real date column (Polars writes it).
fn parquet_of(csv: &Path, out: &Path) {
    use polars::prelude::*;
    let mut df = CsvReadOptions::default()
        .with_has_header(true)
        .map_parse_options(|o| o.with_try_parse_dates(true))
        .try_into_reader_with_file_path(Some(csv.to_path_buf()))
        .unwrap()
        .finish()
        .unwrap();
    assert_eq!(df.column("date").unwrap().dtype(), &DataType::Date);
    ParquetWriter::new(std::fs::File::create(out).unwrap())
        .finish(&mut df)
        .unwrap();
}

/// The fixture as an Excel workbook: a title row above the header, dates as
/// date cells, values as numbers.
fn workbook_of(csv: &Path, out: &Path) {
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.write_string(0, 0, "Shop, daily").unwrap();
    let date = Format::new().set_num_format("yyyy-mm-dd");
    let text = std::fs::read_to_string(csv).unwrap();
    for (i, line) in text.lines().enumerate() {
        let row = u32::try_from(i).unwrap() + 2;
        for (c, cell) in line.split(',').enumerate() {
            let c = u16::try_from(c).unwrap();
            if i > 0 && c == 0 {
                let at = ExcelDateTime::parse_from_str(cell).unwrap();
                sheet
                    .write_datetime_with_format(row, c, &at, &date)
                    .unwrap();
            } else if let (true, Ok(x)) = (i > 0, cell.parse::<f64>()) {
                sheet.write_number(row, c, x).unwrap();
            } else {
                sheet.write_string(row, c, cell).unwrap();
            }
        }
    }
    book.save(out).unwrap();
}

#[test]
fn s3_gives_the_same_findings_as_a_file_and_sql_and_bad_s3_sources_do_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let csv = root().join("fixtures/shop_daily.csv");
    // the export as two CSV parts (a glob over keys), as Parquet, and a
    // folder where one part lacks the value column
    let full = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = full.lines().collect();
    let half = lines.len() / 2;
    let part = |name: &str, rows: &[&str]| -> PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, format!("{}\n{}\n", lines[0], rows.join("\n"))).unwrap();
        p
    };
    let part1 = part("part-1.csv", &lines[1..half]);
    let part2 = part("part-2.csv", &lines[half..]);
    let broken = dir.path().join("broken.csv");
    std::fs::write(
        &broken,
        "date,metric,region,amount\n2024-01-01,orders,eu,1\n",
    )
    .unwrap();
    let parquet = dir.path().join("shop_daily.parquet");
    parquet_of(&csv, &parquet);
    let xlsx = dir.path().join("shop_daily.xlsx");
    workbook_of(&csv, &xlsx);
    let s3 = S3::start(&[
        ("exports/xlsx/shop_daily.xlsx", xlsx),
        ("exports/csv/part-1.csv", part1),
        ("exports/csv/part-2.csv", part2),
        ("exports/csv/readme.txt", csv.clone()),
        ("exports/parquet/shop_daily.parquet", parquet),
        ("exports/mixed/a.csv", csv.clone()),
        ("exports/mixed/b.csv", broken),
    ]);
    let pg = Pg::start();
    pg.load_fixture();

    let s3_source = |name: &str, path: &str| {
        format!(
            "[[source]]\nname = \"{name}\"\npath = \"{path}\"\ndimensions = [\"region\"]\n{}",
            s3.keys()
        )
    };
    let file_source = format!(
        "[[source]]\nname = \"file\"\npath = \"{}\"\ndimensions = [\"region\"]\n",
        csv.display()
    );
    let run = |sources: &str, name: &str, secret: &str| -> (Output, String) {
        let cfg = write_config(dir.path(), sources);
        let out_csv = dir.path().join(format!("{name}.out.csv"));
        let _ = std::fs::remove_file(&out_csv);
        let out = callout(
            &[
                "backfill",
                "--config",
                cfg.to_str().unwrap(),
                "--quiet",
                "--output",
                out_csv.to_str().unwrap(),
            ],
            &s3,
            secret,
            &pg.url(),
        );
        (out, std::fs::read_to_string(&out_csv).unwrap_or_default())
    };

    // the same rows through a file, S3 (CSV parts, Parquet) and SQL: the same findings
    let (out, from_file) = run(&file_source, "file", &s3.secret);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        from_file.lines().count() > 3 && from_file.contains("2024-05-15"),
        "the planted anomalies: {from_file}"
    );
    for (name, source) in [
        ("s3-csv", s3_source("s3csv", "s3://exports/csv/*.csv")),
        (
            "s3-parquet",
            s3_source("s3parquet", "s3://exports/parquet/shop_daily.parquet"),
        ),
        (
            "s3-xlsx",
            s3_source("s3xlsx", "s3://exports/xlsx/shop_daily.xlsx"),
        ),
        ("sql", QUERY_SOURCE.to_string()),
    ] {
        let (out, found) = run(&source, name, &s3.secret);
        assert!(out.status.success(), "{name}: {}", text(&out.stderr));
        assert_eq!(found, from_file, "{name}: same rows, same findings");
    }

    // each broken S3 source: a clear error naming it and the bucket or key;
    // the file source in the same config still runs, and the run exits 1
    let cases = [
        (
            "missing bucket",
            s3_source("nobucket", "s3://no-such-bucket/shop.csv"),
            s3.secret.clone(),
            "bucket `no-such-bucket` does not exist",
        ),
        (
            "missing bucket (glob)",
            s3_source("nobucketglob", "s3://no-such-bucket/csv/*.csv"),
            s3.secret.clone(),
            "bucket `no-such-bucket` does not exist",
        ),
        (
            "missing key",
            s3_source("nokey", "s3://exports/csv/part-9.csv"),
            s3.secret.clone(),
            "no object `s3://exports/csv/part-9.csv`",
        ),
        (
            "glob matches nothing",
            s3_source("noglob", "s3://exports/csv/*.parquet"),
            s3.secret.clone(),
            "no file matches `s3://exports/csv/*.parquet`",
        ),
        (
            "wrong secret",
            s3_source("creds", "s3://exports/csv/part-1.csv"),
            "wrong-secret-0123456789".to_string(),
            "refused the credentials for bucket `exports`",
        ),
        (
            "wrong secret (glob)",
            s3_source("credsglob", "s3://exports/csv/*.csv"),
            "wrong-secret-0123456789".to_string(),
            "refused the credentials for bucket `exports`",
        ),
    ];
    for (what, source, secret, want) in &cases {
        let (out, found) = run(&format!("{source}\n{file_source}"), "broken", secret);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{what}: {err}");
        let name = source.split('"').nth(1).unwrap();
        assert!(
            err.contains(&format!("source `{name}`: ")) && err.contains(want),
            "{what}: wants {want:?} in {err}"
        );
        for secret in [secret.as_str(), s3.secret.as_str()] {
            assert!(!err.contains(secret), "{what}: never a secret: {err}");
        }
        assert_eq!(found, from_file, "{what}: the file source still ran");
    }

    // a missing workbook object is worded once, like any other object (the
    // store's error went through the wording twice before)
    let (out, found) = run(
        &format!(
            "{}\n{file_source}",
            s3_source("noxlsx", "s3://exports/xlsx/none.xlsx")
        ),
        "broken",
        &s3.secret,
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let want = "no object `s3://exports/xlsx/none.xlsx`";
    assert_eq!(err.matches(want).count(), 1, "{err}");
    assert!(err.contains("source `noxlsx`: "), "{err}");
    assert_eq!(found, from_file, "the file source still ran");

    // one bad object of a glob is named; the other object is read
    let (out, found) = run(
        &s3_source("mixed", "s3://exports/mixed/*.csv"),
        "mixed",
        &s3.secret,
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("source `mixed`: `s3://exports/mixed/b.csv` has no column `value`"),
        "{err}"
    );
    assert!(!err.contains("mixed/a.csv"), "{err}");
    assert_eq!(found, from_file, "a.csv still read");

    // check-sources connects and says per source: ok, or what is wrong
    let cfg = write_config(
        dir.path(),
        &format!(
            "{}\n{}\n{}",
            s3_source("s3csv", "s3://exports/csv/*.csv"),
            s3_source("s3parquet", "s3://exports/parquet/*.parquet"),
            cases[0].1
        ),
    );
    let out = callout(
        &[
            "check-sources",
            "--config",
            cfg.to_str().unwrap(),
            "--at",
            "2024-07-03 08:00",
        ],
        &s3,
        &s3.secret,
        &pg.url(),
    );
    let said = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("source `s3csv`: ok, 4 series, 956 rows"),
        "{said}"
    );
    assert!(
        said.contains("source `s3parquet`: ok, 4 series, 956 rows"),
        "{said}"
    );
    assert!(
        said.contains("FAILED: source `nobucket`: ")
            && said.contains("bucket `no-such-bucket` does not exist"),
        "{said}"
    );
}

#[test]
fn check_config_validates_s3_urls_without_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        r#"
[[source]]
name = "a"
path = "s3://exports"

[[source]]
name = "b"
path = "s3://Bad_Bucket/x.csv"
endpoint_url = "ftp://127.0.0.1:9000"

[[source]]
name = "c"
path = "x.csv"
region = "eu-west-1"

[[source]]
name = "d"
path = "gs://exports/x.csv"
"#,
    );
    let out = Command::new(env!("CARGO_BIN_EXE_callout"))
        .args(["check-config", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for (key, want) in [
        ("source[0].path", "names no key"),
        ("source[1].path", "not a bucket name"),
        ("source[2].region", "only for S3 sources"),
        ("source[3].path", "gs:// is not a source kind"),
    ] {
        assert!(err.contains(key) && err.contains(want), "{key}: {err}");
    }
    // a good one passes with no server anywhere
    let cfg = write_config(
        dir.path(),
        r#"
[[source]]
name = "exports"
path = "s3://exports/wbr/*.parquet"
endpoint_url = "http://127.0.0.1:1"
region = "us-east-1"
path_style = true
"#,
    );
    let out = Command::new(env!("CARGO_BIN_EXE_callout"))
        .args(["check-config", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}
