//! The config compiler's known-answer tests: texts in, problems (key and
//! words) out.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

/// A source every case gets (after the case's own text, so the case's
/// `[[source]]`, if any, is `source[0]`).
const BASE: &str = "\n[[source]]\nname = \"base\"\npath = \"base.csv\"\n";

fn env(k: &str) -> Option<String> {
    match k {
        "WIN_DIR" => Some(r"C:\data\exports".into()),
        "HOST" => Some("mail.example.com".into()),
        "TWO_LINES" => Some("first\nsecond \"quoted\"\r\n".into()),
        _ => None,
    }
}

fn compile(text: &str) -> Result<Config, Vec<ConfigProblem>> {
    compile_str(
        &format!("{text}{BASE}"),
        Path::new("/etc/callout/c.toml"),
        &env,
    )
    .map_err(|e| match e {
        ConfigError::Invalid { problems, .. } => problems,
        ConfigError::Read { .. } => unreachable!("compile_str reads no file"),
    })
}

/// `text` must give exactly the problems `expected` — `(key, message fragment)`
/// pairs, in any order; no pairs: it must compile.
fn check(text: &str, expected: &[(&str, &str)]) {
    let problems = match compile(text) {
        Ok(_) => Vec::new(),
        Err(p) => p,
    };
    for (key, fragment) in expected {
        assert!(
            problems
                .iter()
                .any(|p| p.key == *key && p.message.contains(fragment)),
            "case {text:?}: no problem `{key}` containing {fragment:?} in {problems:#?}"
        );
    }
    assert_eq!(
        problems.len(),
        expected.len(),
        "case {text:?}: problems {problems:#?}"
    );
}

#[test]
fn good_values_compile() {
    for text in [
        "",
        "[detection]\nfdr = 0.1",
        "[schedule]\nrun_timeout_secs = 60\ncron = [\"0 0 7 * * *\", \"0 0 19 * * *\"]",
        "[review]\nweekday = \"Thursday\"\ntime = \"09:30\"\nexplanations_due_hours = 0",
        "[[source]]\npath = \"a.csv\"\ntimeout_secs = 86400\nexpected_delay_hours = 1000000",
        "[[source]]\npath = \"a.csv\"\nformat = \"jsonl\"\nlayout = \"wide\"",
        "[[metric]]\nmatch = \"rev*\"\ndirection = \"down\"\nscale = \"log\"\nsensitivity = 2.5\nmin_history = 8\nstale_periods = 2\nmax_pct_change = 50\nbounds = { lower = 0, upper = 10 }",
        "[smtp]\nhost = \"h\"\nfrom = \"a@b.c\"\nport = 2525\nsecurity = \"none\"\ntimeout_secs = 3600",
        "[alerts]\nclose_after_periods = 1\nretry_base_secs = 0",
        "[[event]]\nname = \"sale\"\nstart = \"2024-01-01\"\naction = \"annotate\"",
    ] {
        check(text, &[]);
    }
}

#[test]
fn spreadsheet_keys_are_compiled_and_checked() {
    let text = "[[source]]\npath = \"w.csv\"\nlayout = \"wide\"\nmetrics = [\"Revenue ($)\", \"Orders (#)\", \"Conversion %\"]\ntime_format = \"%m/%d/%Y\"\ndecimal = \",\"\nencoding = \"latin1\"\ndelimiter = \"tab\"\n[[report.metric]]\nname = \"orders\"\nunit = \"orders\"\n";
    check(text, &[]);
    let cfg = compile(text).unwrap();
    let d = &cfg.sources[0].dialect;
    assert_eq!(d.time_format.as_ref().map(|f| f.spec()), Some("%m/%d/%Y"));
    assert_eq!(d.decimal, Decimal::Comma);
    assert_eq!(d.encoding, Some(encoding_rs::WINDOWS_1252));
    assert_eq!(d.delimiter, Some(b'\t'));
    // the headers' units, unless [[report.metric]] says otherwise
    assert_eq!(cfg.report.metric("revenue").unit, "$");
    assert_eq!(cfg.report.metric("conversion").unit, "%");
    assert_eq!(cfg.report.metric("orders").unit, "orders");
    assert_eq!(
        d.describe().as_deref(),
        Some("time_format \"%m/%d/%Y\", decimal \",\", delimiter tab, encoding windows-1252")
    );
    let wb = compile("[[source]]\npath = \"WBR.XLSX\"\nsheet = \"Data\"\nheader_row = 3").unwrap();
    assert_eq!(wb.sources[0].format, Format::Workbook);
    assert_eq!(wb.sources[0].dialect.header_row, Some(3));
    check(
        "[[source]]\npath = \"a.csv\"\ntime_format = \"%d/%m\"\ndecimal = \";\"\nencoding = \"klingon\"\ndelimiter = \"ab\"\nsheet = \"Data\"\nheader_row = 0",
        &[
            ("source[0].time_format", "year"),
            ("source[0].decimal", "\".\""),
            ("source[0].encoding", "klingon"),
            ("source[0].delimiter", "one character"),
            ("source[0].sheet", "only for workbooks"),
            ("source[0].header_row", "between 1"),
        ],
    );
    check(
        "[[source]]\npath = \"a.parquet\"\nencoding = \"utf-8\"",
        &[("source[0].encoding", "only for CSV")],
    );
}

#[test]
fn s3_sources_are_checked_without_connecting() {
    let text = "[[source]]\npath = \"s3://exports/wbr/*.parquet\"\nendpoint_url = \"http://127.0.0.1:9000\"\nregion = \"us-east-1\"\npath_style = true";
    check(text, &[]);
    let cfg = compile(text).unwrap();
    let Location::S3(s3) = &cfg.sources[0].location else {
        panic!("not an S3 source: {:?}", cfg.sources[0].location)
    };
    assert_eq!(
        (s3.bucket.as_str(), s3.key.as_str()),
        ("exports", "wbr/*.parquet")
    );
    assert_eq!(cfg.sources[0].format, Format::Parquet);
    assert_eq!(s3.path_style, Some(true));
    for (text, key, fragment) in [
        ("path = \"s3://exports\"", "source[0].path", "names no key"),
        (
            "path = \"s3://exports/daily/\"",
            "source[0].path",
            "names a folder",
        ),
        (
            "path = \"s3://Ex_ports/a.csv\"",
            "source[0].path",
            "not a bucket name",
        ),
        (
            "path = \"gs://exports/a.csv\"",
            "source[0].path",
            "gs:// is not a source kind",
        ),
        (
            "path = \"s3://exports/a.csv\"\nendpoint_url = \"minio:9000\"",
            "source[0].endpoint_url",
            "must start with http:// or https://",
        ),
        (
            "path = \"s3://exports/a.csv\"\nendpoint_url = \"https://key:secret@minio:9000\"",
            "source[0].endpoint_url",
            "never from the config",
        ),
        // without a scheme too, and the address (with its secret) is not echoed
        (
            "path = \"s3://exports/a.csv\"\nendpoint_url = \"key:secret@minio:9000\"",
            "source[0].endpoint_url",
            "never from the config",
        ),
        (
            "path = \"a.csv\"\npath_style = true",
            "source[0].path_style",
            "only for S3 sources",
        ),
        (
            "url = \"https://x/a.csv\"\nregion = \"eu\"",
            "source[0].region",
            "only for S3 sources",
        ),
    ] {
        check(&format!("[[source]]\n{text}"), &[(key, fragment)]);
    }
}

#[test]
fn out_of_range_numbers_name_key_and_range() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "[detection]\nfdr = 1.5",
            "detection.fdr",
            "must be > 0 and < 1, got 1.5",
        ),
        ("[detection]\nfdr = 0", "detection.fdr", "> 0 and < 1"),
        ("[detection]\nfdr = nan", "detection.fdr", "got NaN"),
        (
            "[schedule]\nrun_timeout_secs = 9223372036854775807",
            "schedule.run_timeout_secs",
            "between 1 and 604800 seconds, got 9223372036854775807",
        ),
        (
            "[schedule]\nrun_timeout_secs = 0",
            "schedule.run_timeout_secs",
            "between 1 and",
        ),
        (
            "[[source]]\npath = \"a.csv\"\ntimeout_secs = 9223372036854775807",
            "source[0].timeout_secs",
            "between 1 and 86400 seconds",
        ),
        (
            "[[source]]\npath = \"a.csv\"\ntimeout_secs = 0",
            "source[0].timeout_secs",
            "got 0",
        ),
        (
            "[[source]]\npath = \"a.csv\"\ntimeout_secs = -5",
            "source[0].timeout_secs",
            "got -5",
        ),
        (
            "[[source]]\npath = \"a.csv\"\nexpected_delay_hours = 1e300",
            "source[0].expected_delay_hours",
            "must be >= 0 and <= 1000000, got 1e300",
        ),
        (
            "[[source]]\npath = \"a.csv\"\nexpected_delay_hours = -1",
            "source[0].expected_delay_hours",
            ">= 0",
        ),
        (
            "[review]\nexplanations_due_hours = 200",
            "review.explanations_due_hours",
            "between 0 and 144 hours",
        ),
        (
            "[[metric]]\nmatch = \"*\"\nsensitivity = 0",
            "metric[0].sensitivity",
            "> 0 and <= 1000",
        ),
        (
            "[[metric]]\nmatch = \"*\"\nsensitivity = inf",
            "metric[0].sensitivity",
            "got inf",
        ),
        (
            "[[metric]]\nmatch = \"*\"\nmin_history = 0",
            "metric[0].min_history",
            "between 1 and 100000 periods",
        ),
        (
            "[[metric]]\nmatch = \"*\"\nstale_periods = 1",
            "metric[0].stale_periods",
            "between 2 and 10000",
        ),
        (
            "[[metric]]\nmatch = \"*\"\nmin_abs_change = -1",
            "metric[0].min_abs_change",
            "finite and >= 0",
        ),
        (
            "[[metric]]\nmatch = \"*\"\nmin_rel_change = inf",
            "metric[0].min_rel_change",
            "finite and >= 0",
        ),
        (
            "[[metric]]\nmatch = \"*\"\nmax_pct_change = -3",
            "metric[0].max_pct_change",
            "> 0 and <= 1000000000",
        ),
        (
            "[[metric]]\nmatch = \"*\"\nbounds = { lower = nan }",
            "metric[0].bounds.lower",
            "a finite number",
        ),
        (
            "[[metric]]\nmatch = \"*\"\nbounds = { lower = 5, upper = 1 }",
            "metric[0].bounds",
            "lower (5) is above upper (1)",
        ),
        (
            "[smtp]\nhost = \"h\"\nfrom = \"a@b.c\"\nport = 0",
            "smtp.port",
            "between 1 and 65535",
        ),
        (
            "[smtp]\nhost = \"h\"\nfrom = \"a@b.c\"\nport = 70000",
            "smtp.port",
            "got 70000",
        ),
        (
            "[smtp]\nhost = \"h\"\nfrom = \"a@b.c\"\ntimeout_secs = 0",
            "smtp.timeout_secs",
            "between 1 and 3600 seconds",
        ),
        (
            "[alerts]\nclose_after_periods = 0",
            "alerts.close_after_periods",
            "between 1 and 1000",
        ),
        (
            "[alerts]\nclose_after_hours = 200",
            "alerts.close_after_hours",
            "between 0 and 168 hours",
        ),
        (
            "[alerts]\nretry_base_secs = -1",
            "alerts.retry_base_secs",
            "between 0 and 86400 seconds",
        ),
    ];
    for (text, key, fragment) in cases {
        check(text, &[(key, fragment)]);
    }
}

#[test]
fn a_long_source_takes_a_metric_column_or_one_metric() {
    let cfg = compile("[[source]]\npath = \"signups.csv\"\nmetric = \"signups\"\n").unwrap();
    assert_eq!(
        cfg.sources[0].layout,
        Layout::Long {
            metric: MetricName::Fixed("signups".into()),
            value_column: "value".into()
        }
    );
    assert_eq!(
        cfg.sources[1].layout,
        Layout::Long {
            metric: MetricName::Column("metric".into()),
            value_column: "value".into()
        }
    );
    check(
        "[[source]]\npath = \"a.csv\"\nmetric = \"a\"\nmetric_column = \"m\"",
        &[("source[0].metric", "not both")],
    );
    check(
        "[[source]]\npath = \"a.csv\"\nlayout = \"wide\"\nmetric = \"a\"",
        &[("source[0].metric", "only for layout = \"long\"")],
    );
    check(
        "[[source]]\npath = \"a.csv\"\nmetric = \" \"",
        &[("source[0].metric", "must not be empty")],
    );
    check(
        "[[source]]\npath = \"a.csv\"\ngranularity = \"7min\"",
        &[("source[0].granularity", "30min")],
    );
    check("[[source]]\npath = \"a.csv\"\ngranularity = \"30min\"", &[]);
}

#[test]
fn unknown_words_list_the_choices() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "[[source]]\npath = \"a.csv\"\nformat = \"docx\"",
            "source[0].format",
            r#"must be one of "csv", "parquet", "ndjson", "jsonl", "json", "xlsx", "xls", "ods", "excel", "workbook", got "docx""#,
        ),
        (
            "[[source]]\npath = \"a.csv\"\nlayout = \"tall\"",
            "source[0].layout",
            r#"must be one of "long", "wide", got "tall""#,
        ),
        (
            "[[metric]]\nmatch = \"*\"\ndirection = \"sideways\"",
            "metric[0].direction",
            r#""up", "down", "both", got "sideways""#,
        ),
        (
            "[[metric]]\nmatch = \"*\"\nscale = \"sqrt\"",
            "metric[0].scale",
            r#""auto", "log", "linear""#,
        ),
        (
            "[smtp]\nhost = \"h\"\nfrom = \"a@b.c\"\nsecurity = \"ssl\"",
            "smtp.security",
            r#""starttls", "tls", "none", got "ssl""#,
        ),
        (
            "[[event]]\nstart = \"2024-01-01\"\naction = \"mute\"",
            "event[0].action",
            r#""excuse", "annotate""#,
        ),
    ];
    for (text, key, fragment) in cases {
        check(text, &[(key, fragment)]);
    }
}

#[test]
fn unknown_keys_have_their_real_path() {
    check(
        "[detection]\nfdrr = 0.1",
        &[("detection.fdrr", "unknown key")],
    );
    check(
        "[[source]]\npath = \"a.csv\"\n\n[[source]]\npath = \"b.csv\"\n\n[[source]]\npth = \"c.csv\"\npath = \"c.csv\"",
        &[("source[2].pth", "unknown key")],
    );
    check(
        "[[metric]]\nmatch = \"*\"\nbounds = { lowr = 1 }",
        &[("metric[0].bounds.lowr", "unknown key")],
    );
    check(
        "[alerts]\nmax_attempts_per_run = 3",
        &[("alerts.max_attempts_per_run", "removed")],
    );
}

#[test]
fn unknown_keys_suggest_a_close_key_of_their_table() {
    for (text, key, message) in [
        (
            "[detection]\nfdrr = 0.1",
            "detection.fdrr",
            "unknown key; did you mean `fdr`?",
        ),
        (
            "[[source]]\npath = \"a.csv\"\n[[source]]\npath = \"b.csv\"\nvalue_colum = \"v\"",
            "source[1].value_colum",
            "unknown key; did you mean `value_column`?",
        ),
        (
            "[[metric]]\nmatch = \"*\"\nbounds = { lowr = 1 }",
            "metric[0].bounds.lowr",
            "unknown key; did you mean `lower`?",
        ),
        (
            "[[owners.rule]]\nmacth = \"*\"\nemail = \"a@b.c\"",
            "owners.rule[0].macth",
            "unknown key; did you mean `match`?",
        ),
        (
            "[schedule]\nTimezone = \"UTC\"",
            "schedule.Timezone",
            "unknown key; did you mean `timezone`?",
        ),
        (
            "[scheduel]\ncron = \"0 0 7 * * *\"",
            "scheduel",
            "unknown key; did you mean `schedule`?",
        ),
        // keys of another table are not suggested, nor far ones
        ("[detection]\nhost = \"x\"", "detection.host", "unknown key"),
        (
            "[[source]]\npath = \"a.csv\"\ncolour = \"blue\"",
            "source[0].colour",
            "unknown key",
        ),
    ] {
        let problems = compile(text).unwrap_err();
        assert_eq!(
            problems,
            vec![ConfigProblem {
                key: key.into(),
                message: message.into()
            }],
            "{text}"
        );
    }
}

#[test]
fn every_type_error_is_reported_at_once() {
    check(
        "[schedule]\nrun_timeout_secs = \"x\"\n[detection]\nfdr = \"z\"\n[smtp]\nport = \"y\"\nhost = 1\nfrom = \"a@b.c\"\n[[source]]\npath = \"a.csv\"\ndimensions = [\"region\", 3]",
        &[
            ("schedule.run_timeout_secs", "invalid type"),
            ("detection.fdr", "invalid type"),
            ("smtp.port", "invalid type"),
            ("smtp.host", "invalid type"),
            ("source[0].dimensions[1]", "invalid type"),
        ],
    );
    // type errors and semantic errors together, in one run
    check(
        "[detection]\nfdr = \"z\"\n[alerts]\nclose_after_periods = 0",
        &[
            ("detection.fdr", "invalid type"),
            ("alerts.close_after_periods", "between 1 and 1000"),
        ],
    );
}

#[test]
fn env_vars_expand_in_values_only() {
    // a reference in a comment is left alone, set or not
    check(
        "[store]\npath = \"s.db\" # was ${UNSET_VAR}\n# ${ALSO_UNSET}",
        &[],
    );
    check(
        "[store]\npath = \"${UNSET_VAR}\"",
        &[("line 2", "`UNSET_VAR` is not set")],
    );
    let cfg = compile("[store]\npath = '${WIN_DIR}' # ${UNSET}").unwrap();
    assert!(
        cfg.store_path.ends_with(r"C:\data\exports"),
        "{:?}",
        cfg.store_path
    );
    let cfg = compile("[store]\npath = \"${WIN_DIR}\"").unwrap();
    assert!(
        cfg.store_path.ends_with(r"C:\data\exports"),
        "{:?}",
        cfg.store_path
    );
    let cfg = compile("[smtp]\nhost = \"${HOST}\"\nfrom = \"a@b.c\" # \"${UNSET}\"").unwrap();
    assert_eq!(cfg.smtp.unwrap().host, "mail.example.com");
}

#[test]
fn env_values_with_line_breaks_are_escaped_or_refused() {
    let cfg = compile("[review]\nname = \"${TWO_LINES}\"").unwrap();
    assert_eq!(cfg.review.name, "first\nsecond \"quoted\"\r\n");
    let cfg = compile("[review]\nname = \"\"\"${TWO_LINES}\"\"\"").unwrap();
    assert_eq!(cfg.review.name, "first\nsecond \"quoted\"\r\n");
    // a multi-line literal string holds it as it is
    let cfg = compile("[review]\nname = '''${HOST}\n${HOST}'''").unwrap();
    assert_eq!(cfg.review.name, "mail.example.com\nmail.example.com");
    check(
        "[review]\nname = '${TWO_LINES}'",
        &[(
            "line 2",
            "environment variable `TWO_LINES` holds a line break, which a 'literal' string cannot hold; write \"${TWO_LINES}\"",
        )],
    );
    check(
        "[review]\nexplanations_due_hours = ${TWO_LINES}",
        &[(
            "line 2",
            "`TWO_LINES` holds a line break, which a value outside quotes",
        )],
    );
}

#[test]
fn cron_problems_are_one_line_with_the_fix() {
    let problems = |text: &str| compile(text).err().unwrap_or_default();
    let p = problems("[schedule]\ncron = \"0 7 * * 1-5\"");
    assert_eq!(
        p,
        vec![ConfigProblem {
            key: "schedule.cron".into(),
            message: "`0 7 * * 1-5` has 5 fields; callout's cron has 6, seconds first: try `0 0 7 * * 1-5`".into(),
        }]
    );
    let cases: &[(&str, &str, &str)] = &[
        (
            "cron = [\"0 0 7 * * *\", \"30  7 * * Mon\"]",
            "schedule.cron[1]",
            "`30  7 * * Mon` has 5 fields; callout's cron has 6, seconds first: try `0 30 7 * * Mon`",
        ),
        (
            "cron = \"every day\"",
            "schedule.cron",
            "`every day` has 2 field(s); callout's cron has 6, seconds first, and an optional 7th, the year",
        ),
        (
            "cron = \"0 0 7 * * Mon-Fxi\"",
            "schedule.cron",
            "`0 0 7 * * Mon-Fxi` is not a valid cron expression: 'Fxi' is not a valid day of the week.",
        ),
        (
            "cron = \" \"",
            "schedule.cron",
            "is empty; callout's cron has 6 fields",
        ),
        (
            "cron = \"0 0 0 30 2 *\"",
            "schedule.cron",
            "`0 0 0 30 2 *` never fires: no time in the 8 years from 2025-01-01 matches it",
        ),
        (
            "cron = [\"0 0 7 * * *\", \"0 0 0 31 4,6,9,11 *\"]",
            "schedule.cron[1]",
            "never fires",
        ),
    ];
    for (text, key, fragment) in cases {
        let text = format!("[schedule]\n{text}");
        check(&text, &[(key, fragment)]);
        for p in problems(&text) {
            assert!(!p.message.contains('\n'), "{text}: {p:?}");
            assert!(!p.message.contains('^'), "{text}: {p:?}");
        }
    }
    // rare but real: the 29th of February, a day that is in some months
    check(
        "[schedule]\ncron = [\"0 0 0 29 2 *\", \"0 0 9 31 * *\"]",
        &[],
    );
}

#[test]
fn bad_addresses_say_what_is_wrong() {
    for (value, fragment) in [
        (
            "anna.example.com",
            "`anna.example.com` is not an email address (no @)",
        ),
        ("Anna <anna.example.com>", "(no @)"),
        ("@example.com", "(nothing before the @)"),
        ("anna@", "(nothing after the @)"),
        (
            "anna@exa mple.com",
            "`exa mple.com` after the @ is not a domain",
        ),
        ("Anna <anna@example.com", "(unbalanced < >)"),
        ("", "(it is empty)"),
    ] {
        check(
            &format!("[owners]\ndefault = {value:?}"),
            &[("owners.default", fragment)],
        );
    }
    check(
        "[[owners.rule]]\nmatch = \"*\"\nemail = \"a@b.c\"\nescalate_to = \"boss\"",
        &[(
            "owners.rule[0].escalate_to",
            "`boss` is not an email address (no @)",
        )],
    );
    assert!(parse_mailbox("Ana B. <ana@example.com>").is_ok());
    assert_eq!(
        parse_mailbox("anna.example.com").unwrap_err(),
        "`anna.example.com` is not an email address (no @)"
    );
}

#[test]
fn urls_without_a_host_are_refused() {
    check(
        "[[source]]\nurl = \"http://\"",
        &[(
            "source[0].url",
            "\"http://\" is not a URL: it names no host",
        )],
    );
    check(
        "[[source]]\nurl = \"https://:8080/a.csv\"",
        &[("source[0].url", "is not a URL")],
    );
    check(
        "[[source]]\nurl = \"https://exports.example.com:99999/a.csv\"",
        &[("source[0].url", "is not a URL: invalid port number")],
    );
    check(
        "[[source]]\nurl = \"https://exports.example.com/a.csv?day=1\"",
        &[],
    );
    check(
        "[[source]]\npath = \"s3://exports/a.csv\"\nendpoint_url = \"http://\"",
        &[("source[0].endpoint_url", "names no host")],
    );
    check(
        "[web]\nlisten = \"127.0.0.1:8080\"\npublic_url = \"https://\"",
        &[(
            "web.public_url",
            "\"https://\" is not a URL: it names no host",
        )],
    );
    check(
        "[web]\nlisten = \"127.0.0.1:8080\"\npublic_url = \"https://callout.example.com/?x=1\"",
        &[("web.public_url", "no query")],
    );
}

#[test]
fn memory_budget_is_a_size_with_a_unit() {
    for (text, bytes) in [
        ("512MB", 512_000_000),
        ("1.5 GiB", 1_610_612_736),
        ("2gb", 2_000_000_000),
        ("3000000", 3_000_000),
    ] {
        let cfg = compile(&format!("[detection]\nmemory_budget = {text:?}")).unwrap();
        assert_eq!(cfg.detection.memory_budget, Some(bytes), "{text}");
    }
    assert_eq!(compile("").unwrap().detection.memory_budget, None);
    for (text, fragment) in [
        ("\"512 apples\"", "must be a size such as \"512MB\""),
        ("\"MB\"", "must be a size"),
        ("\"-5MB\"", "must be a size"),
        ("\"100KB\"", "between 1MB and 1000TB, got \"100KB\""),
        ("\"2000TB\"", "between 1MB and 1000TB"),
        ("512", "invalid type: integer"),
    ] {
        check(
            &format!("[detection]\nmemory_budget = {text}"),
            &[("detection.memory_budget", fragment)],
        );
    }
}

#[test]
fn defaults_are_the_named_consts() {
    let cfg = compile("").unwrap();
    assert_eq!(
        cfg.schedule.run_timeout,
        Duration::from_secs(raw::DEFAULT_RUN_TIMEOUT_SECS)
    );
    assert_eq!(cfg.detection.fdr, raw::DEFAULT_FDR);
    assert_eq!(
        cfg.sources[0].timeout,
        Duration::from_secs(raw::DEFAULT_URL_TIMEOUT_SECS)
    );
    assert_eq!(cfg.review.weekday, raw::DEFAULT_REVIEW_WEEKDAY);
    assert_eq!(
        cfg.alerts.close_after_periods,
        raw::DEFAULT_CLOSE_AFTER_PERIODS
    );
    assert_eq!(cfg.alerts.close_after_hours, raw::DEFAULT_CLOSE_AFTER_HOURS);
}
