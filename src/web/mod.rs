//! The web server: owners answer through signed links; operators get
//! `/healthz` and `/metrics`.
//!
//! Layout: link signing (the key, the tokens, the URLs mails carry) lives
//! below in [`crate::links`], shared with `alert`; [`pages`]
//! renders HTML (maud, auto-escaped); [`routes`] are the handlers; [`report`]
//! serves the pre-read at a signed link (with a cache of its inputs); [`ops`]
//! decides health and writes metrics text.
//!
//! Served by `callout serve` alone, or by the daemon beside its scheduler
//! (same cancellation token). Axum on the process's tokio runtime; store work
//! on blocking threads.
//!
//! Must not: log a token or a full request URI (a link is a credential: the
//! request log names the route template, e.g. `/e/{token}`, never the path);
//! decide anything about detection or alerting.

pub mod ops;
pub mod pages;
pub mod report;
pub mod routes;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::{Config, WebConfig};
use crate::links::key;
use crate::links::tokens::Key;

/// Largest request body accepted (the form is at most a few KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The config has no `[web]` table.
    #[error("config `{0}` has no [web] table (listen, public_url): nothing to serve")]
    NotConfigured(std::path::PathBuf),
    /// The signing key could not be had.
    #[error(transparent)]
    Key(#[from] key::KeyError),
    /// The address could not be bound.
    #[error("[web] listen: cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The server failed while running.
    #[error("web server on {addr}: {source}")]
    Serve {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// What every handler shares.
pub struct AppState {
    /// The config the server started with (a SIGHUP reload of the daemon
    /// does not change the web server's; restart to change `[web]`).
    pub config: Config,
    /// The link-signing key.
    pub key: Key,
    /// Where "now" comes from (token expiry, health).
    pub clock: Arc<dyn Clock>,
    /// When the server started: before the first scheduled run, health counts from here.
    pub up_since: DateTime<Utc>,
    /// The pre-read's aggregated inputs, kept until the next run (see [`report`]).
    pub report_cache: report::ReportCache,
}

/// The router over `state`: pages, form posts, `/healthz`, `/metrics`.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/e/{token}", get(routes::link).post(routes::link_post))
        .route("/e/{token}/{id}", get(routes::item).post(routes::item_post))
        .route("/report/{token}", get(routes::report))
        .route("/chart/{file}", get(routes::chart))
        .route("/healthz", get(routes::healthz))
        .route("/metrics", get(routes::metrics))
        // route_layer: runs after routing, so the log can name the route template
        .route_layer(middleware::from_fn(log_request))
        .fallback(routes::not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

/// One log line per request: method, route template, status, duration.
/// Never the URI: it carries the token.
async fn log_request(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let start = Instant::now();
    let resp = next.run(req).await;
    tracing::info!(
        method = %method,
        route = %route,
        status = resp.status().as_u16(),
        ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
        "http request"
    );
    resp
}

/// Pages are private and never framed, cached or sent on as a referrer.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, k: HeaderName, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(h, header::CACHE_CONTROL, "no-store");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    resp
}

/// A bound server, ready to run.
pub struct Server {
    listener: tokio::net::TcpListener,
    router: Router,
    addr: SocketAddr,
    /// `[web] public_url`, for the line that says where the server is.
    public_url: String,
}

impl Server {
    /// Load the key and bind `[web] listen`, so a bad address or key fails at start-up.
    pub async fn bind(config: Config, clock: Arc<dyn Clock>) -> Result<Server, WebError> {
        let web: WebConfig = config
            .web
            .clone()
            .ok_or_else(|| WebError::NotConfigured(config.path.clone()))?;
        let key = key::load(&web.key)?;
        let listener = tokio::net::TcpListener::bind(web.listen)
            .await
            .map_err(|source| WebError::Bind {
                addr: web.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| WebError::Bind {
            addr: web.listen,
            source,
        })?;
        let up_since = clock.now();
        let public_url = web.public_url.clone();
        let state = Arc::new(AppState {
            config,
            key,
            clock,
            up_since,
            report_cache: report::ReportCache::default(),
        });
        Ok(Server {
            listener,
            router: router(state),
            addr,
            public_url,
        })
    }

    /// The bound address (the real port when `listen` asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the bound server answers, for the person who started it:
    /// `serving on http://127.0.0.1:8080 (public URL https://…)`.
    pub fn serving_line(&self) -> String {
        format!(
            "serving on http://{} (public URL {})",
            self.addr, self.public_url
        )
    }

    /// Serve until `shutdown` is cancelled, then finish requests in flight.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), WebError> {
        let addr = self.addr;
        tracing::info!(%addr, "web server listening");
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
            .map_err(|source| WebError::Serve { addr, source })?;
        tracing::info!("web server stopped");
        Ok(())
    }
}

/// `callout serve`: the web server alone, until SIGTERM or SIGINT; "now"
/// comes from `clock` (the system's, or one moved by `--at`). `bound` is
/// called once the address is bound (with the server, for its
/// [`Server::serving_line`]): the caller says where it answers.
pub fn serve_blocking(
    config: Config,
    clock: Arc<dyn Clock>,
    bound: impl FnOnce(&Server),
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("callout-web")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let signals = stop_on_signal(shutdown.clone())?;
        let server = Server::bind(config, clock).await?;
        // said once bound, so the address is one that answers (the real port for `:0`)
        bound(&server);
        let result = server.run(shutdown).await;
        signals.abort();
        Ok::<_, anyhow::Error>(result?)
    })
}

/// Cancel `shutdown` on SIGTERM or SIGINT.
fn stop_on_signal(shutdown: CancellationToken) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    #[cfg(unix)]
    {
        use anyhow::Context as _;
        use tokio::signal::unix::{SignalKind, signal};
        let mut term =
            signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
        let mut int =
            signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?;
        Ok(tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tracing::info!("shutdown requested");
            shutdown.cancel();
        }))
    }
    #[cfg(not(unix))]
    {
        Ok(tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            shutdown.cancel();
        }))
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{KeySource, Secret, compile_str};
    use std::path::Path;

    const BASE: &str = "[[source]]\nname = \"s\"\npath = \"x.csv\"\n";

    fn compile(web: &str) -> Result<crate::config::Config, String> {
        compile_str(
            &format!("{BASE}{web}"),
            Path::new("/etc/callout/callout.toml"),
            &|_| None,
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn web_section_compiles_with_defaults_and_a_generated_key_beside_the_store() {
        let c = compile("[store]\npath = \"/var/lib/callout/callout.db\"\n[web]\nlisten = \"127.0.0.1:8080\"\npublic_url = \"https://callout.example.com/\"\n").unwrap();
        let w = c.web.unwrap();
        assert_eq!(w.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(w.public_url, "https://callout.example.com");
        assert_eq!(w.link_valid_days, 14);
        assert_eq!(
            w.key,
            KeySource::Generated("/var/lib/callout/callout-web.key".into())
        );
        assert!(compile("").unwrap().web.is_none(), "no [web]: no server");
        let c = compile("[web]\nlisten = \"[::1]:80\"\npublic_url = \"http://h\"\nsecret_file = \"k\"\nlink_valid_days = 30\n").unwrap();
        let w = c.web.unwrap();
        assert_eq!(
            w.key,
            KeySource::Secret(Secret::File("/etc/callout/k".into()))
        );
        assert_eq!(w.link_valid_days, 30);
    }

    #[test]
    fn web_section_problems_are_all_named() {
        let e = compile("[web]\nlisten = \"localhost\"\npublic_url = \"callout.example.com\"\nsecret_file = \"a\"\nsecret_env = \"B\"\nlink_valid_days = 0\nport = 1\n").unwrap_err();
        for needle in [
            "web.listen",
            "web.public_url",
            "web.secret_file",
            "web.link_valid_days",
            "port: unknown key",
        ] {
            assert!(e.contains(needle), "missing {needle} in {e}");
        }
        let e = compile("[web]\n").unwrap_err();
        assert!(
            e.contains("web.listen: missing") && e.contains("web.public_url: missing"),
            "{e}"
        );
    }
}
