//! Slack and Teams, black-box, over real HTTP: the ten-region revenue export
//! with `rollups = ["total"]` and an owner rule `chat = [...]` naming a
//! `kind = "slack"` and a `kind = "teams"` `[[chat]]` (webhook URLs from
//! `webhook_env`) posts one message per channel per run, in Block Kit and
//! Adaptive Card shapes, with each item's numbers, why, the slice that drove
//! the total, an "Explain this" button and the chart image (a signed URL
//! `callout serve` answers with a PNG). Delivery: 5xx backs off, 429 waits
//! for `Retry-After`, 4xx gives up and says so; a mail relay that is down
//! never holds back chat; the webhook URL is never printed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a failed assumption in a test is a failed test"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use chrono::{Duration, NaiveDate};
use serde_json::Value;

use crate::rollups::{DROP, ONE, REGIONS, write_export_from};
use crate::support::common::{ClosedPort, serving_at, text};
use crate::support::sink::{Sink, messages};
use crate::support::webhook::{Hook, Post, check_adaptive_card, check_block_kit};

/// The export's first day: its last days are recent, so links made for them
/// (valid a year) still open today.
fn start() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 10, 1).unwrap()
}

fn day(d: i64) -> NaiveDate {
    start() + Duration::days(d)
}

/// The secret part of the webhook URLs: never in any output.
const SECRET: &str = "B0S3CR3T";

fn config(dir: &Path, smtp_port: u16, web: bool) -> PathBuf {
    config_with(dir, smtp_port, web, "")
}

fn config_with(dir: &Path, smtp_port: u16, web: bool, extra: &str) -> PathBuf {
    let web = if web {
        "[web]\nlisten = \"127.0.0.1:0\"\npublic_url = \"https://callout.example.com\"\nlink_valid_days = 366\n"
    } else {
        ""
    };
    let p = dir.join("callout.toml");
    std::fs::write(
        &p,
        format!(
            r#"[store]
path = "callout.db"

[[source]]
name = "shop"
path = "revenue.csv"
time_column = "date"
dimensions = ["region"]
expected_delay_hours = 1000000

[[metric]]
match = "revenue"
rollups = ["total"]

[[owners.rule]]
match = "revenue"
email = "Ana Ortiz <ana@example.com>"
chat = ["wbr-slack", "wbr-teams"]

[[chat]]
name = "wbr-slack"
kind = "slack"
webhook_env = "CALLOUT_TEST_SLACK"

[[chat]]
name = "wbr-teams"
kind = "teams"
webhook_env = "CALLOUT_TEST_TEAMS"

[alerts]
retry_base_secs = 30

[smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
from = "callout <callout@example.com>"
timeout_secs = 5

{web}
{extra}"#
        ),
    )
    .unwrap();
    p
}

/// A test's world: a folder with the ten-region export, a webhook server, a
/// real SMTP server and a config with `[web]` and `extra`.
fn world(extra: &str) -> (tempfile::TempDir, Hook, Sink, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    write_export_from(&dir.path().join("revenue.csv"), start());
    let hook = Hook::start();
    let sink = Sink::start(&dir.path().join("mail"), &[]);
    let cfg = config_with(dir.path(), sink.port, true, extra);
    (dir, hook, sink, cfg)
}

/// `callout ARGS --config CFG` with the webhooks pointed at `hook`, not started.
fn command(args: &[&str], cfg: &Path, hook: &Hook) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_callout"));
    c.args(args)
        .arg("--config")
        .arg(cfg)
        .env(
            "CALLOUT_TEST_SLACK",
            hook.url(&format!("/slack/T0/{SECRET}")),
        )
        .env(
            "CALLOUT_TEST_TEAMS",
            hook.url(&format!("/teams/wf/{SECRET}")),
        )
        .env_remove("CALLOUT_LOG");
    c
}

/// `callout ARGS --config CFG` with the webhooks pointed at `hook`, run.
fn callout(args: &[&str], cfg: &Path, hook: &Hook) -> Output {
    command(args, cfg, hook).output().unwrap()
}

/// `run --once` the morning after day `d` (plus `secs` seconds).
fn run_after(cfg: &Path, hook: &Hook, d: i64, secs: i64) -> Output {
    let at = (day(d + 1).and_hms_opt(8, 0, 0).unwrap() + Duration::seconds(secs))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    let out = callout(&["run", "--once", "--at", &at], cfg, hook);
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        !said.contains(SECRET),
        "the webhook URL was printed: {said}"
    );
    out
}

/// Every `text` in a JSON value, joined: what a reader of the message sees.
fn words(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(words).collect::<Vec<_>>().join("\n"),
        Value::Object(o) => o.values().map(words).collect::<Vec<_>>().join("\n"),
        _ => String::new(),
    }
}

/// The URLs of Slack's buttons and images.
fn slack_urls(p: &Value) -> (Vec<String>, Vec<String>) {
    let blocks = p["blocks"].as_array().unwrap();
    let buttons = blocks
        .iter()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().unwrap())
        .map(|e| e["url"].as_str().unwrap().to_string())
        .collect();
    let images = blocks
        .iter()
        .filter(|b| b["type"] == "image")
        .map(|b| b["image_url"].as_str().unwrap().to_string())
        .collect();
    (buttons, images)
}

/// The digests and the pre-read links among `posts`.
fn split_pre_read(posts: Vec<Post>) -> (Vec<Post>, Vec<Post>) {
    posts
        .into_iter()
        .partition(|p| !words(&p.json).contains("The pre-read is ready"))
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(30)))
        .build()
        .into()
}

#[test]
fn the_ten_region_drops_reach_slack_and_teams_with_the_slice_that_drove_them() {
    let (dir, hook, sink, cfg) = world("[report]\nchat = [\"wbr-slack\", \"wbr-teams\"]\n");

    // the day one region fell 45 %
    let out = run_after(&cfg, &hook, ONE, 0);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // the run is on the review's morning: the pre-read's link is posted too
    let (slack, slack_report) = split_pre_read(hook.posts_to("/slack/"));
    let (teams, teams_report) = split_pre_read(hook.posts_to("/teams/"));
    assert_eq!(
        (slack.len(), teams.len()),
        (1, 1),
        "one message per channel"
    );
    assert_eq!((slack_report.len(), teams_report.len()), (1, 1));
    check_block_kit(&slack_report[0].json);
    check_adaptive_card(&teams_report[0].json);
    let (buttons, _) = slack_urls(&slack_report[0].json);
    assert!(
        buttons[0].starts_with("https://callout.example.com/report/"),
        "{buttons:?}"
    );
    let (s, t) = (&slack[0].json, &teams[0].json);
    check_block_kit(s);
    check_adaptive_card(t);
    for said in [words(s), words(t)] {
        assert!(said.contains("revenue (total)"), "{said}");
        assert!(said.contains("What drove it"), "{said}");
        assert!(said.contains("region r09: -4"), "{said}");
        assert!(said.contains("% vs expected, explains "), "{said}");
        assert!(said.contains("Ana Ortiz"), "the owner is named: {said}");
        // one ask per cause, in chat too
        assert!(!said.contains("revenue (region=r09)"), "{said}");
    }
    // the owner's email went out as well
    assert_eq!(messages(&dir.path().join("mail")).len(), 1);

    // buttons open the explanation page; the image is a signed chart URL
    let (buttons, images) = slack_urls(s);
    assert_eq!(buttons.len(), 1, "{buttons:?}");
    assert!(buttons[0].starts_with("https://callout.example.com/e/"));
    assert_eq!(images.len(), 1, "{images:?}");
    let chart = images[0]
        .strip_prefix("https://callout.example.com/chart/")
        .expect("a chart URL");
    assert!(chart.ends_with(".png"));
    let card = words(t);
    assert!(
        card.contains(&buttons[0]) && card.contains(&images[0]),
        "{card}"
    );

    // the same morning again: nothing posted twice
    let out = run_after(&cfg, &hook, ONE, 60);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(hook.posts().len(), 4);

    // `callout serve` answers the chart URL with a PNG, and only it
    let log = dir.path().join("serve.log");
    let mut server = Command::new(env!("CARGO_BIN_EXE_callout"))
        .args(["serve", "--config"])
        .arg(&cfg)
        .env("CALLOUT_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let base = serving_at(&mut server, &log);
    let mut r = agent()
        .get(&format!("{base}/chart/{chart}"))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers().get("content-type").unwrap(), "image/png");
    let png = r.body_mut().read_to_vec().unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 1000);
    // a chart token opens no page, and a page token no chart
    let token = chart.trim_end_matches(".png");
    let r = agent().get(&format!("{base}/e/{token}")).call().unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let page = buttons[0].rsplit('/').next().unwrap();
    let r = agent()
        .get(&format!("{base}/chart/{page}.png"))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    // the page the button opens shows the slice that drove it as a table
    let mut r = agent().get(&format!("{base}/e/{page}")).call().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let html = r.body_mut().read_to_string().unwrap();
    assert!(
        html.contains("What drove it") && html.contains("region r09"),
        "{html}"
    );
    let _ = server.kill();
    let _ = server.wait();
    // and so does the incident list of the next review's pre-read
    let at = format!("{} 08:00", day(ONE + 8));
    let pre_read = dir.path().join("pre-read.html");
    let out = callout(
        &[
            "report",
            "--at",
            &at,
            "--output",
            pre_read.to_str().unwrap(),
        ],
        &cfg,
        &hook,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let html = std::fs::read_to_string(&pre_read).unwrap();
    assert!(
        html.contains("What drove it") && html.contains("region r09"),
        "pre-read"
    );

    // the day every region fell 13 %: the total is the item, most slices not
    let dir = tempfile::tempdir().unwrap();
    write_export_from(&dir.path().join("revenue.csv"), start());
    let hook = Hook::start();
    let cfg = config(dir.path(), sink.port, true);
    let out = run_after(&cfg, &hook, DROP, 0);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (slack, _) = split_pre_read(hook.posts_to("/slack/"));
    assert_eq!(slack.len(), 1);
    check_block_kit(&slack[0].json);
    let said = words(&slack[0].json);
    assert!(said.contains("revenue (total)"), "{said}");
    let slices = said.matches("revenue (region=").count();
    assert!(
        slices <= REGIONS / 2,
        "most slices are inside their band: {said}"
    );
}

#[test]
fn reminders_and_escalations_reach_the_channel() {
    // review Fridays 10:00, explanations due Thursday 10:00, reminders from
    // Wednesday 10:00; the drop of Tuesday is asked about Wednesday 08:00
    let (_dir, hook, _sink, cfg) = world(
        "[review]\nweekday = \"fri\"\ntime = \"10:00\"\ntimezone = \"UTC\"\n\n\
         [reminders]\nhours_before_deadline = 24\nescalate_to = \"WBR leads <leads@example.com>\"\n",
    );
    let out = run_after(&cfg, &hook, ONE, 0);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(hook.posts_to("/slack/").len(), 1);
    // Wednesday noon: the owner has not answered; the channel is reminded
    let out = run_after(&cfg, &hook, ONE, 4 * 3600);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let slack = hook.posts_to("/slack/");
    assert_eq!(slack.len(), 2);
    check_block_kit(&slack[1].json);
    let said = words(&slack[1].json);
    assert!(
        said.contains("Reminder: 1 outlier to explain by Thu 8 Oct 10:00"),
        "{said}"
    );
    assert!(
        said.contains("revenue (total)") && said.contains("Explain this"),
        "{said}"
    );
    // again the same day: not twice
    run_after(&cfg, &hook, ONE, 5 * 3600);
    assert_eq!(hook.posts_to("/slack/").len(), 2);
    // Thursday noon, past the deadline: the escalation names the owner
    let out = run_after(&cfg, &hook, ONE + 1, 4 * 3600);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let teams = hook.posts_to("/teams/");
    assert_eq!(teams.len(), 3, "digest, reminder, escalation");
    check_adaptive_card(&teams[2].json);
    let said = words(&teams[2].json);
    assert!(
        said.contains("1 outlier still unexplained after the deadline"),
        "{said}"
    );
    assert!(said.contains("Ana Ortiz"), "{said}");
}

#[test]
fn two_runs_at_once_post_each_message_once() {
    let (dir, hook, _sink, cfg) = world("[report]\nchat = [\"wbr-slack\", \"wbr-teams\"]\n");
    // a slow webhook: both runs reach the outbox while the other is posting
    hook.lag(400);
    let at = format!("{} 08:00", day(ONE + 1));
    let spawn = || {
        command(&["run", "--once", "--at", &at], &cfg, &hook)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // each waited for on its own thread: neither's pipes hold up the other
    let (a, b) = std::thread::scope(|sc| {
        let (a, b) = (spawn(), spawn());
        let a = sc.spawn(move || a.wait_with_output().unwrap());
        let b = sc.spawn(move || b.wait_with_output().unwrap());
        (a.join().unwrap(), b.join().unwrap())
    });
    let said = format!(
        "{}{}{}{}",
        text(&a.stdout),
        text(&a.stderr),
        text(&b.stdout),
        text(&b.stderr)
    );
    for out in [&a, &b] {
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    // the runs met: one found messages the other was posting
    assert!(said.contains("being sent by another run"), "{said}");
    // the digest and the pre-read link in each channel, each once
    let posts = hook.posts();
    let mut bodies: Vec<String> = posts.iter().map(|p| p.json.to_string()).collect();
    assert_eq!(
        bodies.len(),
        4,
        "{:#?}",
        posts.iter().map(|p| &p.line).collect::<Vec<_>>()
    );
    bodies.sort();
    bodies.dedup();
    assert_eq!(bodies.len(), 4, "a message was posted twice");
    assert_eq!(messages(&dir.path().join("mail")).len(), 1, "one digest");
}

#[test]
fn chat_retries_waits_for_retry_after_and_gives_up_on_a_bad_webhook() {
    let dir = tempfile::tempdir().unwrap();
    write_export_from(&dir.path().join("revenue.csv"), start());
    let hook = Hook::start();
    // the mail relay is down all along: chat must not wait for it
    let relay = ClosedPort::new();
    let cfg = config(dir.path(), relay.port(), false);
    // requests reach the hook in the config's order: slack, then teams
    hook.answer(503, &[], "upstream busy");
    hook.answer(404, &[], "no_service");

    let out = run_after(&cfg, &hook, ONE, 0);
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        !out.status.success(),
        "failures make the run exit 1: {said}"
    );
    assert!(
        said.contains("posting to chat `wbr-slack` (slack) failed: HTTP 503"),
        "{said}"
    );
    assert!(
        said.contains("chat `wbr-teams`") && said.contains("HTTP 404"),
        "{said}"
    );
    assert!(said.contains("given up"), "{said}");
    assert_eq!(hook.posts_to("/slack/").len(), 1);
    assert_eq!(hook.posts_to("/teams/").len(), 1);

    // after the 30 s backoff: Slack is busy and asks for two minutes
    hook.answer(429, &[("Retry-After", "120")], "rate_limited");
    run_after(&cfg, &hook, ONE, 40);
    assert_eq!(hook.posts_to("/slack/").len(), 2);
    // a minute later it is still waiting; the bad webhook is not tried again
    run_after(&cfg, &hook, ONE, 100);
    assert_eq!(hook.posts_to("/slack/").len(), 2);
    // after Retry-After: posted
    run_after(&cfg, &hook, ONE, 200);
    let slack = hook.posts_to("/slack/");
    assert_eq!(slack.len(), 3);
    assert_eq!(slack[0].json, slack[2].json, "the same message, retried");
    check_block_kit(&slack[2].json);
    assert_eq!(hook.posts_to("/teams/").len(), 1, "given up, never retried");

    // the outbox: the digest still waits for the relay, Teams is given up
    let out = callout(&["outbox"], &cfg, &hook);
    let listing = text(&out.stdout);
    assert!(listing.contains("wbr-teams"), "{listing}");
    assert!(listing.contains("ana@example.com"), "{listing}");
    assert!(!listing.contains(SECRET));
}

#[test]
fn slack_gets_the_message_without_images_it_cannot_download() {
    let (_dir, hook, _sink, cfg) = world("");
    // what Slack answers when it cannot fetch an image_url
    hook.answer(400, &[], "invalid_blocks");
    let out = run_after(&cfg, &hook, ONE, 0);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let slack = hook.posts_to("/slack/");
    let (with, without) = (&slack[0].json, &slack[1].json);
    assert_eq!(slack_urls(with).1.len(), 1, "first with its chart");
    assert!(slack_urls(without).1.is_empty(), "then without");
    check_block_kit(without);
    assert!(words(without).contains("What drove it"));
    assert!(!slack_urls(without).0.is_empty(), "the button stays");
}

#[test]
fn test_chat_posts_and_names_what_went_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Hook::start();
    std::fs::write(dir.path().join("revenue.csv"), "date,metric,region,value\n").unwrap();
    let cfg = config(dir.path(), 25, true);
    let out = callout(&["test-chat", "--to", "wbr-teams"], &cfg, &hook);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("test message posted to chat `wbr-teams` (teams)"));
    let posts = hook.posts_to("/teams/");
    assert_eq!(posts.len(), 1);
    check_adaptive_card(&posts[0].json);

    hook.answer(410, &[], "channel_is_archived");
    let out = callout(&["test-chat", "--to", "wbr-slack"], &cfg, &hook);
    let said = text(&out.stderr);
    assert!(!out.status.success());
    assert!(said.contains("HTTP 410: channel_is_archived"), "{said}");
    assert!(
        said.contains("CALLOUT_TEST_SLACK"),
        "names where the URL comes from: {said}"
    );
    assert!(!said.contains(SECRET), "{said}");

    let out = callout(&["test-chat", "--to", "wbr"], &cfg, &hook);
    let said = text(&out.stderr);
    assert!(
        said.contains("no [[chat]] named `wbr`") && said.contains("wbr-slack, wbr-teams"),
        "{said}"
    );
}

#[test]
fn check_config_validates_chat_without_reading_the_webhook() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("revenue.csv"), "date,metric,region,value\n").unwrap();
    // valid, with the variables unset: check-config and backfill need no URL
    let cfg = config(dir.path(), 25, false);
    let out = Command::new(env!("CARGO_BIN_EXE_callout"))
        .args(["check-config", "--config"])
        .arg(&cfg)
        .env_remove("CALLOUT_TEST_SLACK")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stderr);
    assert!(
        said.contains("chat `wbr-slack`: the config has no [web] table"),
        "{said}"
    );
    assert!(!said.contains("CALLOUT_TEST_SLACK"), "{said}");
    // backfill neither: the same config, a real export, no webhook variables
    write_export_from(&dir.path().join("revenue.csv"), start());
    let out = Command::new(env!("CARGO_BIN_EXE_callout"))
        .args(["backfill", "--quiet", "--config"])
        .arg(&cfg)
        .args(["--output", dir.path().join("f.csv").to_str().unwrap()])
        .env_remove("CALLOUT_TEST_SLACK")
        .env_remove("CALLOUT_TEST_TEAMS")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("webhook"),
        "{}",
        text(&out.stderr)
    );

    let base = std::fs::read_to_string(&cfg).unwrap();
    for (from, to, key, words) in [
        (
            "kind = \"teams\"",
            "kind = \"discord\"",
            "chat[1].kind",
            "must be one of \"slack\", \"teams\"",
        ),
        (
            "chat = [\"wbr-slack\", \"wbr-teams\"]",
            "chat = [\"wbr-slak\"]",
            "owners.rule[0].chat",
            "no [[chat]] named \"wbr-slak\"; did you mean \"wbr-slack\"?",
        ),
        (
            "webhook_env = \"CALLOUT_TEST_TEAMS\"",
            "webhook = \"https://x\"",
            "chat[1].webhook",
            "never read inline",
        ),
        (
            "webhook_env = \"CALLOUT_TEST_TEAMS\"",
            "",
            "chat[1].webhook_env",
            "missing",
        ),
        (
            "email = \"Ana Ortiz <ana@example.com>\"\nchat = [\"wbr-slack\", \"wbr-teams\"]",
            "",
            "owners.rule[0].email",
            "or `chat =",
        ),
        (
            "[alerts]",
            "[report]\nchat = [\"wbr\"]\n\n[alerts]",
            "report.chat",
            "no [[chat]] named \"wbr\"",
        ),
    ] {
        assert!(base.contains(from), "{from}");
        std::fs::write(&cfg, base.replacen(from, to, 1)).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_callout"))
            .args(["check-config", "--config"])
            .arg(&cfg)
            .output()
            .unwrap();
        let said = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{key}: {said}");
        assert!(said.contains(key) && said.contains(words), "{key}: {said}");
    }
}
