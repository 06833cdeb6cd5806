//! A throwaway PostgreSQL cluster for tests (`initdb` + `pg_ctl` from
//! Debian's `postgresql` package) in a temp dir, run as the `postgres` user
//! when the tests run as root (the server refuses to run as root), loaded
//! with the fixture's daily rows.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use super::common::{root, text};

/// The PostgreSQL server binaries: Debian keeps them out of PATH.
fn pg_bin(name: &str) -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path().join("bin").join(name)))
                .filter(|p| p.exists())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.pop().unwrap_or_else(|| {
        panic!("PostgreSQL server binaries not found under /usr/lib/postgresql (apt-get install postgresql)")
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| text(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A command run as the `postgres` user when we are root.
fn as_pg_user(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// A throwaway cluster, stopped and removed on drop.
pub struct Pg {
    dir: tempfile::TempDir,
}

impl Pg {
    /// Start a cluster listening on a Unix socket in its own temp dir, no TCP
    /// (`pg_ctl` cannot say which port it got, and a port picked beforehand
    /// could be taken by then), with trust authentication, user `callout`.
    pub fn start() -> Pg {
        let dir = tempfile::tempdir().unwrap();
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown the cluster dir to postgres");
        }
        let data = dir.path().join("data");
        let out = as_pg_user(&pg_bin("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "callout", "--no-sync"])
            .output()
            .unwrap();
        assert!(out.status.success(), "initdb: {}", text(&out.stderr));
        // the socket is <dir>/.s.PGSQL.5432; 5432 only names the file
        let opts = format!(
            "-p 5432 -k {} -c listen_addresses='' -c fsync=off",
            dir.path().display()
        );
        let out = as_pg_user(&pg_bin("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .args(["-o", &opts, "-l"])
            .arg(dir.path().join("log"))
            .args(["-w", "start"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start: {} {}",
            text(&out.stdout),
            text(&out.stderr)
        );
        Pg { dir }
    }

    /// The URL of its `postgres` database: the host is the socket's folder,
    /// percent-encoded.
    pub fn url(&self) -> String {
        let dir = self.dir.path().to_str().unwrap();
        let host: String = dir
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        format!("postgresql://callout@{host}/postgres")
    }

    /// The fixture's daily rows as `wbr.daily_metrics(day date, metric, region, value)`;
    /// `value` is `numeric`, what sums and money columns are in PostgreSQL.
    pub fn load_fixture(&self) {
        let mut c = postgres::Client::connect(&self.url(), postgres::NoTls).unwrap();
        c.batch_execute(
            "CREATE SCHEMA wbr;
             CREATE TABLE wbr.daily_metrics (day date, metric text, region text, value numeric);",
        )
        .unwrap();
        let csv = std::fs::read(root().join("fixtures/shop_daily.csv")).unwrap();
        let mut w = c
            .copy_in("COPY wbr.daily_metrics FROM STDIN (FORMAT csv, HEADER true)")
            .unwrap();
        std::io::Write::write_all(&mut w, &csv).unwrap();
        w.finish().unwrap();
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let _ = as_pg_user(&pg_bin("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

/// A config of `sources` with a review calendar and a default owner.
pub fn write_config(dir: &Path, sources: &str) -> PathBuf {
    let p = dir.join("callout.toml");
    std::fs::write(
        &p,
        format!(
            r#"
[review]
weekday = "wed"
time = "10:00"
timezone = "Europe/London"

{sources}

[owners]
default = "Team <team@example.com>"
"#
        ),
    )
    .unwrap();
    p
}

/// A SQL source over the fixture's table, its URL from `CALLOUT_TEST_PG_URL`.
pub const QUERY_SOURCE: &str = r#"
[[source]]
name = "warehouse"
sql = "SELECT day, metric, region, value FROM wbr.daily_metrics WHERE day >= $from AND day <= $to ORDER BY day"
url_env = "CALLOUT_TEST_PG_URL"
time_column = "day"
dimensions = ["region"]
"#;
