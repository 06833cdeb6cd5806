//! `[web]`: the signed-link pages' address, port and key.

use super::*;

impl Compiler {
    /// `[web]`; the generated key lives beside the store, so both move together.
    pub(super) fn web(&mut self, w: raw::RawWeb, store_path: &Path) -> Option<WebConfig> {
        let listen = match w.listen.as_deref() {
            None => {
                self.problem(
                    "web.listen",
                    "missing: the address to serve on, e.g. \"127.0.0.1:8080\"".into(),
                );
                None
            }
            Some(l) => match l.parse::<std::net::SocketAddr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    self.problem(
                        "web.listen",
                        format!("not an IP address and port {l:?} (e.g. \"127.0.0.1:8080\" or \"[::1]:8080\")"),
                    );
                    None
                }
            },
        };
        let public_url = match w.public_url.as_deref().map(str::trim) {
            None => {
                self.problem(
                    "web.public_url",
                    "missing: the base URL owners open links at, e.g. \"https://callout.example.com\"".into(),
                );
                None
            }
            Some(u) => match http_url(u) {
                Ok(()) if !u.contains(['?', '#', ' ']) => Some(u.trim_end_matches('/').to_string()),
                Ok(()) => {
                    self.problem(
                        "web.public_url",
                        format!("not a base URL {u:?} (no query or fragment, e.g. \"https://callout.example.com\")"),
                    );
                    None
                }
                Err(e) => {
                    self.problem(
                        "web.public_url",
                        format!("{e}, e.g. \"https://callout.example.com\""),
                    );
                    None
                }
            },
        };
        let key = match (w.secret_file, w.secret_env) {
            (Some(_), Some(_)) => {
                self.problem(
                    "web.secret_file",
                    "give secret_file or secret_env, not both (or neither: a key is generated beside the store)".into(),
                );
                None
            }
            (Some(f), None) => Some(KeySource::Secret(Secret::File(self.path(&f)))),
            (None, Some(e)) => Some(KeySource::Secret(Secret::Env(e))),
            (None, None) => {
                let dir = store_path.parent().unwrap_or(Path::new(""));
                Some(KeySource::Generated(dir.join("callout-web.key")))
            }
        };
        let link_valid_days = match w.link_valid_days {
            Some(d) if !(1..=366).contains(&d) => {
                self.problem(
                    "web.link_valid_days",
                    format!("must be between 1 and 366, got {d}"),
                );
                DEFAULT_LINK_VALID_DAYS
            }
            Some(d) => d,
            None => DEFAULT_LINK_VALID_DAYS,
        };
        Some(WebConfig {
            listen: listen?,
            public_url: public_url?,
            key: key?,
            link_valid_days,
        })
    }
}
