//! A real HTTP server standing in for Slack's and Teams' webhook endpoints:
//! it listens on a TCP port of its own, reads each request (HTTP/1.1, a
//! `Content-Length` body), keeps it, and answers from a script (status,
//! headers, body; `200 ok` once the script is spent). The checks of the
//! payloads' shapes (Block Kit, Adaptive Card) are [`check_block_kit`] and
//! [`check_adaptive_card`].

#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use serde_json::Value;

/// One request received.
#[derive(Debug, Clone)]
pub struct Post {
    /// Method and path: `POST /slack/T0/B0/secret`.
    pub line: String,
    /// Header names (lowercase) and values.
    pub headers: Vec<(String, String)>,
    /// The body as JSON (`Value::Null` when it is not JSON).
    pub json: Value,
}

impl Post {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An answer: status, extra headers, body.
pub type Answer = (u16, Vec<(String, String)>, String);

/// The server; it runs until the test process ends.
pub struct Hook {
    pub port: u16,
    posts: Arc<Mutex<Vec<Post>>>,
    script: Arc<Mutex<VecDeque<Answer>>>,
    /// Milliseconds each answer waits (a slow webhook).
    lag: Arc<std::sync::atomic::AtomicU64>,
}

impl Hook {
    pub fn start() -> Hook {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let posts: Arc<Mutex<Vec<Post>>> = Arc::default();
        let script: Arc<Mutex<VecDeque<Answer>>> = Arc::default();
        let lag: Arc<std::sync::atomic::AtomicU64> = Arc::default();
        let (p, s, l) = (Arc::clone(&posts), Arc::clone(&script), Arc::clone(&lag));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let mut headers = Vec::new();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.trim().split_once(':') {
                        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                    }
                }
                let len: usize = headers
                    .iter()
                    .find(|(k, _)| k == "content-length")
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0; len];
                if reader.read_exact(&mut body).is_err() {
                    continue;
                }
                p.lock().unwrap().push(Post {
                    line: line.trim().to_string(),
                    headers,
                    json: serde_json::from_slice(&body).unwrap_or(Value::Null),
                });
                let wait = l.load(std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(std::time::Duration::from_millis(wait));
                let (status, extra, text) =
                    s.lock()
                        .unwrap()
                        .pop_front()
                        .unwrap_or((200, Vec::new(), "ok".into()));
                let mut resp = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n",
                    text.len()
                );
                for (k, v) in extra {
                    resp.push_str(&format!("{k}: {v}\r\n"));
                }
                resp.push_str("\r\n");
                resp.push_str(&text);
                let _ = conn.write_all(resp.as_bytes());
            }
        });
        Hook {
            port,
            posts,
            script,
            lag,
        }
    }

    /// Answer every request `ms` milliseconds late from now on.
    pub fn lag(&self, ms: u64) {
        self.lag.store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Answer the next request with this.
    pub fn answer(&self, status: u16, headers: &[(&str, &str)], body: &str) {
        self.script.lock().unwrap().push_back((
            status,
            headers
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
            body.to_string(),
        ));
    }

    /// Every request so far.
    pub fn posts(&self) -> Vec<Post> {
        self.posts.lock().unwrap().clone()
    }

    /// The requests to paths starting with `prefix`.
    pub fn posts_to(&self, prefix: &str) -> Vec<Post> {
        self.posts()
            .into_iter()
            .filter(|p| p.line.starts_with(&format!("POST {prefix}")))
            .collect()
    }
}

fn text_of(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

/// A Block Kit text object of `kind` of at most `max` characters.
fn check_text(t: &Value, kinds: &[&str], max: usize) {
    assert!(kinds.contains(&text_of(&t["type"])), "text type: {t}");
    let s = text_of(&t["text"]);
    assert!(
        !s.is_empty() && s.chars().count() <= max,
        "text length: {t}"
    );
}

/// An incoming-webhook payload in Slack's shape: `text` and `blocks` at the
/// top level, at most 50 blocks of known types, each with the fields and
/// limits Slack enforces (header ≤ 150, section ≤ 3000, button ≤ 75 with a
/// URL and a unique `action_id`, image with `image_url` and `alt_text`).
pub fn check_block_kit(p: &Value) {
    assert!(!text_of(&p["text"]).is_empty(), "fallback text: {p}");
    let blocks = p["blocks"].as_array().expect("top-level blocks");
    assert!(
        !blocks.is_empty() && blocks.len() <= 50,
        "{} blocks",
        blocks.len()
    );
    let mut ids = Vec::new();
    for b in blocks {
        match text_of(&b["type"]) {
            "header" => check_text(&b["text"], &["plain_text"], 150),
            "section" => check_text(&b["text"], &["mrkdwn", "plain_text"], 3000),
            "divider" => {}
            "image" => {
                let url = text_of(&b["image_url"]);
                assert!(url.starts_with("http"), "{b}");
                assert!(!text_of(&b["alt_text"]).is_empty(), "{b}");
            }
            "actions" => {
                let els = b["elements"].as_array().expect("elements");
                assert!(!els.is_empty() && els.len() <= 25, "{b}");
                for e in els {
                    assert_eq!(text_of(&e["type"]), "button", "{e}");
                    check_text(&e["text"], &["plain_text"], 75);
                    assert!(text_of(&e["url"]).starts_with("http"), "{e}");
                    let id = text_of(&e["action_id"]).to_string();
                    assert!(!ids.contains(&id), "action_id {id} twice");
                    ids.push(id);
                }
            }
            "context" => {
                for e in b["elements"].as_array().expect("elements") {
                    check_text(e, &["mrkdwn", "plain_text"], 3000);
                }
            }
            other => panic!("unknown block type {other}: {b}"),
        }
    }
}

/// A Teams Workflows-webhook payload: a `message` with one attachment of
/// content type `application/vnd.microsoft.card.adaptive` holding an
/// `AdaptiveCard` (version 1.x) whose elements are of known types with their
/// required fields.
pub fn check_adaptive_card(p: &Value) {
    assert_eq!(text_of(&p["type"]), "message", "{p}");
    let att = p["attachments"].as_array().expect("attachments");
    assert_eq!(att.len(), 1, "{p}");
    assert_eq!(
        text_of(&att[0]["contentType"]),
        "application/vnd.microsoft.card.adaptive"
    );
    let card = &att[0]["content"];
    assert_eq!(text_of(&card["type"]), "AdaptiveCard");
    assert!(text_of(&card["version"]).starts_with("1."), "{card}");
    fn element(e: &Value) {
        match text_of(&e["type"]) {
            "TextBlock" => assert!(!text_of(&e["text"]).is_empty(), "{e}"),
            "FactSet" => {
                for f in e["facts"].as_array().expect("facts") {
                    text_of(&f["title"]);
                    text_of(&f["value"]);
                }
            }
            "Image" => assert!(text_of(&e["url"]).starts_with("http"), "{e}"),
            "Container" => e["items"]
                .as_array()
                .expect("items")
                .iter()
                .for_each(element),
            "ActionSet" => {
                for a in e["actions"].as_array().expect("actions") {
                    assert_eq!(text_of(&a["type"]), "Action.OpenUrl", "{a}");
                    assert!(!text_of(&a["title"]).is_empty());
                    assert!(text_of(&a["url"]).starts_with("http"), "{a}");
                }
            }
            other => panic!("unknown element {other}: {e}"),
        }
    }
    card["body"]
        .as_array()
        .expect("body")
        .iter()
        .for_each(element);
}
