//! SQL sources against a real PostgreSQL server: a throwaway cluster
//! (`initdb` + `pg_ctl` from Debian's `postgresql` package) started by the
//! test in a temp dir, as the `postgres` user when the tests run as root
//! (the server refuses to run as root). The same rows through a CSV file and
//! through a query give the same findings; broken URLs, unreachable servers,
//! failing queries and wrong columns are clear errors that name the source,
//! and the other sources still run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output};

use crate::support::common;
use common::{ClosedPort, root, text};

use crate::support::pg;
use pg::{Pg, QUERY_SOURCE, write_config};

fn callout(args: &[&str], url: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_callout"))
        .args(args)
        .env("CALLOUT_TEST_PG_URL", url)
        .output()
        .unwrap()
}

#[test]
fn a_query_gives_the_same_findings_as_the_file_and_bad_sql_sources_do_not_stop_the_others() {
    let pg = Pg::start();
    pg.load_fixture();
    let dir = tempfile::tempdir().unwrap();
    let csv = root().join("fixtures/shop_daily.csv");
    let file_source = format!(
        "[[source]]\nname = \"file\"\npath = \"{}\"\ndimensions = [\"region\"]\n",
        csv.display()
    );

    // the same rows, as a file and as a query: the same findings
    let run = |sources: &str, name: &str| -> (Output, String) {
        let cfg = write_config(dir.path(), sources);
        let out_csv = dir.path().join(format!("{name}.csv"));
        let out = callout(
            &[
                "backfill",
                "--config",
                cfg.to_str().unwrap(),
                "--quiet",
                "--output",
                out_csv.to_str().unwrap(),
            ],
            &pg.url(),
        );
        (out, std::fs::read_to_string(&out_csv).unwrap_or_default())
    };
    let (out, from_file) = run(&file_source, "file");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (out, from_sql) = run(QUERY_SOURCE, "sql");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        from_sql.lines().count() > 3,
        "the planted anomalies: {from_sql}"
    );
    assert_eq!(from_sql, from_file, "same rows, same findings");

    // $from binds to `history_days` before the first reported day: with three
    // days of history the spike of 2024-05-15 has no baseline to stand out from
    let cfg = write_config(dir.path(), &format!("{QUERY_SOURCE}history_days = 3\n"));
    let short = callout(
        &[
            "backfill",
            "--config",
            cfg.to_str().unwrap(),
            "--quiet",
            "--from",
            "2024-05-15",
        ],
        &pg.url(),
    );
    assert!(short.status.success(), "{}", text(&short.stderr));
    assert!(from_sql.contains("2024-05-15"), "{from_sql}");
    assert!(
        !text(&short.stdout).contains("2024-05-15"),
        "three days of history cannot judge the spike: {}",
        text(&short.stdout)
    );

    // each broken SQL source: a clear error naming it; the file source still runs
    let cases: [(&str, String, &str); 4] = [
        (
            "unreachable",
            QUERY_SOURCE.replace("warehouse", "unreachable"),
            "cannot connect to the database at 127.0.0.1",
        ),
        (
            "query error",
            QUERY_SOURCE
                .replace("warehouse", "typo")
                .replace("wbr.daily_metrics", "wbr.daily_metricz"),
            "relation \"wbr.daily_metricz\" does not exist",
        ),
        (
            "wrong columns",
            QUERY_SOURCE
                .replace("warehouse", "cols")
                .replace("metric, region, value", "metric, region, value AS amount"),
            "value",
        ),
        (
            "unset URL",
            QUERY_SOURCE
                .replace("warehouse", "nourl")
                .replace("CALLOUT_TEST_PG_URL", "CALLOUT_TEST_NO_SUCH_VAR"),
            "environment variable `CALLOUT_TEST_NO_SUCH_VAR`",
        ),
    ];
    let closed = ClosedPort::new();
    let dead = format!("postgresql://callout@127.0.0.1:{}/postgres", closed.port());
    // check-sources reads each source once and says which ones fail
    let broken: Vec<String> = cases[1..].iter().map(|c| c.1.clone()).collect();
    let cfg = write_config(
        dir.path(),
        &format!("{}\n{QUERY_SOURCE}\n{file_source}", broken.join("\n")),
    );
    let check = |at: &str| {
        let out = callout(
            &[
                "check-sources",
                "--config",
                cfg.to_str().unwrap(),
                "--at",
                at,
            ],
            &pg.url(),
        );
        (out.status.code(), text(&out.stdout))
    };
    let (code, said) = check("2024-07-03 08:00");
    assert_eq!(code, Some(1), "{said}");
    for name in ["typo", "cols", "nourl"] {
        assert!(
            said.contains(&format!("FAILED: source `{name}`: ")),
            "{name}: {said}"
        );
    }
    assert!(
        said.contains("source `warehouse`: ok, 4 series, 956 rows"),
        "{said}"
    );
    assert!(said.contains("source `file`: ok, 4 series"), "{said}");
    // two years later the query's window holds no rows: said so, with the window
    let (_, later) = check("2026-07-03 08:00");
    assert!(
        later.contains("FAILED: source `warehouse`: ")
            && later.contains("returned no rows for $from = 2025-05-29"),
        "{later}"
    );
    for (what, source, want) in cases {
        let cfg = write_config(dir.path(), &format!("{source}\n{file_source}"));
        let url = if what == "unreachable" {
            dead.as_str()
        } else {
            &pg.url()
        };
        let out = callout(
            &["backfill", "--config", cfg.to_str().unwrap(), "--quiet"],
            url,
        );
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{what}: {err}");
        assert!(err.contains(want), "{what}: wants {want:?} in {err}");
        assert!(
            err.contains("`SELECT day, metric"),
            "{what}: names the query: {err}"
        );
        assert!(
            !err.contains("postgresql://"),
            "{what}: never the URL: {err}"
        );
        assert!(
            text(&out.stdout).contains("2024-05-15"),
            "{what}: the file source still ran: {}",
            text(&out.stdout)
        );
    }
}

#[test]
fn check_config_validates_sql_sources_without_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        r#"
[[source]]
name = "a"
sql = "SELECT day, metric, value FROM t WHERE day >= $from AND region = $region"
url_env = "X"

[[source]]
name = "b"
sql = "SELECT 1"

[[source]]
name = "c"
path = "x.csv"
url_env = "X"
"#,
    );
    let out = callout(&["check-config", "--config", cfg.to_str().unwrap()], "");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("source[0].sql") && err.contains("$region"),
        "unknown placeholder: {err}"
    );
    assert!(
        err.contains("source[1].url_env") && err.contains("never from the config"),
        "no URL: {err}"
    );
    assert!(
        err.contains("source[2].url_env") && err.contains("only for SQL sources"),
        "{err}"
    );
    // a good one passes without any server
    let cfg = write_config(dir.path(), QUERY_SOURCE);
    let out = callout(&["check-config", "--config", cfg.to_str().unwrap()], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
}
