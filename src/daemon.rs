//! The daemon: `callout run` without `--once`.
//!
//! Sleeps until the schedule's next fire time ([`crate::schedule`]), runs one
//! evaluation cycle off the async workers, and repeats. It owns *when* cycles
//! run and how the process reacts to signals; it must not know what a cycle
//! does (that is [`crate::app`]) and it never reads the config file except to
//! reload it on SIGHUP.
//!
//! # Guarantees
//! - Runs never overlap: the loop awaits each cycle. A fire time that passes
//!   while a run is in progress is skipped (and logged), not queued. A run that
//!   exceeds `schedule.run_timeout` is abandoned; since a blocking thread cannot
//!   be stopped, no new run starts until the abandoned one has returned.
//! - SIGTERM / SIGINT: the run in progress finishes — bounded by its
//!   `run_timeout`, after which the daemon exits anyway — then [`run`] returns
//!   `Ok(())` (exit code 0).
//! - SIGHUP: the config file is compiled again; a broken new config is logged
//!   with every problem and the old one is kept.
//!
//! Shutdown is one [`CancellationToken`]; reloads are messages on a channel.
//! With a `[web]` table the web server ([`crate::web`]) runs beside the loop
//! and stops on the same token.
//! Both are fed by a small signal task, so the loop itself is driven in unit
//! tests without sending real signals.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::clock::{Clock, SystemClock};
use crate::config::{self, Config, ConfigError};
use crate::schedule;

/// Environment variable that, when `1`/`true`/`yes`, runs one cycle right at
/// start-up before following the schedule (see [`Options::run_at_start`]).
pub const RUN_AT_START_ENV: &str = "CALLOUT_RUN_AT_START";

/// Longest single sleep. The daemon wakes at least this often to re-read the
/// wall clock, so a suspended VM or a stepped clock delays a run by at most this.
const MAX_NAP: Duration = Duration::from_secs(60);

/// At most this many skipped fire times are counted for the log line.
const MAX_MISSED_COUNTED: usize = 10_000;

/// One evaluation cycle: the config in force and the scheduled time it runs
/// for. Synchronous and CPU-heavy; always called on a blocking thread.
pub type Cycle = Arc<dyn Fn(&Config, DateTime<Utc>) -> anyhow::Result<()> + Send + Sync>;

/// Compiles the config file again on SIGHUP.
pub type Loader = Arc<dyn Fn(&Path) -> Result<Config, ConfigError> + Send + Sync>;

/// How the daemon runs: flags, not config.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Run one cycle immediately at start-up, then follow the schedule. Useful
    /// for tests and for checking a new deployment without waiting for cron.
    pub run_at_start: bool,
}

impl Options {
    /// Options from the environment: [`RUN_AT_START_ENV`].
    pub fn from_env() -> Self {
        let run_at_start = std::env::var(RUN_AT_START_ENV).is_ok_and(|v| truthy(&v));
        Options { run_at_start }
    }
}

/// `1`, `true` or `yes`, in any case.
fn truthy(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes"
    )
}

/// Run the daemon until SIGTERM or SIGINT, with [`Options::from_env`].
///
/// `initial` is the already-compiled config read from `config_path`; the path
/// is read again only on SIGHUP. Returns `Ok(())` after a clean shutdown.
///
/// A run abandoned after its timeout may still occupy a blocking thread when
/// this returns; a caller that owns the runtime should shut it down with
/// `shutdown_timeout`/`shutdown_background` rather than drop it (dropping waits
/// for blocking threads). [`run_blocking`] does that.
pub async fn run(config_path: PathBuf, initial: Config) -> anyhow::Result<()> {
    run_with(config_path, initial, Options::from_env()).await
}

/// [`run`] with explicit options (for a CLI flag instead of the environment).
pub async fn run_with(
    config_path: PathBuf,
    initial: Config,
    options: Options,
) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    // Capacity 1: reloads requested while one is pending are merged into it.
    let (reload_tx, reload_rx) = mpsc::channel(1);
    // Install the handlers before anything else, so an early SIGTERM is not fatal.
    let signals = listen_for_signals(shutdown.clone(), reload_tx)?;
    // The web server (when [web] is configured) runs beside the scheduler and
    // stops with it; binding first makes a bad address fail at start-up.
    let web = match &initial.web {
        Some(_) => Some(crate::web::Server::bind(initial.clone(), Arc::new(SystemClock)).await?),
        None => None,
    };
    let web = web.map(|server| tokio::spawn(server.run(shutdown.clone())));
    let daemon = Daemon {
        config_path,
        config: Arc::new(initial),
        clock: Arc::new(SystemClock),
        cycle: Arc::new(production_cycle),
        load: Arc::new(|p: &Path| config::load(p)),
        options,
        abandoned: None,
    };
    let result = daemon.run(shutdown.clone(), reload_rx).await;
    signals.abort();
    shutdown.cancel();
    if let Some(web) = web {
        match web.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => error!("{e}"),
            Err(e) => error!("web server task failed: {e}"),
        }
    }
    result
}

/// [`run`] on a runtime of its own: the synchronous entry point for `main`.
pub fn run_blocking(config_path: PathBuf, initial: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("callout")
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(run(config_path, initial));
    // Do not wait for a run abandoned after its timeout or grace period: its
    // work is lost either way, and waiting could block the exit indefinitely.
    runtime.shutdown_timeout(Duration::from_millis(200));
    result
}

/// The cycle the daemon runs in production.
fn production_cycle(cfg: &Config, now: DateTime<Utc>) -> anyhow::Result<()> {
    crate::app::run_cycle(cfg, now)
}

/// What a signal asks the daemon to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    /// Finish the run in progress, then exit 0 (SIGTERM, SIGINT).
    Shutdown(&'static str),
    /// Compile the config file again (SIGHUP).
    Reload,
}

/// Install the signal handlers and spawn the task that turns signals into a
/// cancelled `shutdown` token or a message on `reload`.
#[cfg(unix)]
fn listen_for_signals(
    shutdown: CancellationToken,
    reload: mpsc::Sender<()>,
) -> anyhow::Result<JoinHandle<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let install = |kind: SignalKind, name: &str| {
        signal(kind).with_context(|| format!("cannot install the {name} handler"))
    };
    let mut term = install(SignalKind::terminate(), "SIGTERM")?;
    let mut int = install(SignalKind::interrupt(), "SIGINT")?;
    let mut hup = install(SignalKind::hangup(), "SIGHUP")?;
    Ok(tokio::spawn(async move {
        loop {
            let signal = tokio::select! {
                Some(()) = term.recv() => Signal::Shutdown("SIGTERM"),
                Some(()) = int.recv() => Signal::Shutdown("SIGINT"),
                Some(()) = hup.recv() => Signal::Reload,
                else => break,
            };
            dispatch(signal, &shutdown, &reload);
        }
    }))
}

/// Without Unix signals only Ctrl-C (shutdown) exists.
#[cfg(not(unix))]
fn listen_for_signals(
    shutdown: CancellationToken,
    reload: mpsc::Sender<()>,
) -> anyhow::Result<JoinHandle<()>> {
    Ok(tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            dispatch(Signal::Shutdown("Ctrl-C"), &shutdown, &reload);
        }
    }))
}

fn dispatch(signal: Signal, shutdown: &CancellationToken, reload: &mpsc::Sender<()>) {
    match signal {
        Signal::Shutdown(name) if shutdown.is_cancelled() => {
            warn!(
                signal = name,
                "already stopping; waiting for the run in progress (SIGKILL stops now)"
            );
        }
        Signal::Shutdown(name) => {
            info!(signal = name, "shutdown requested");
            shutdown.cancel();
        }
        Signal::Reload => {
            info!(signal = "SIGHUP", "config reload requested");
            // Full: a reload is already pending and will read the newest file.
            let _ = reload.try_send(());
        }
    }
}

/// The scheduling loop and the state it carries between runs.
struct Daemon {
    /// Read again on reload.
    config_path: PathBuf,
    /// The config in force; shared with the blocking thread of a run.
    config: Arc<Config>,
    /// Where "now" comes from, so tests can run on a controlled clock.
    clock: Arc<dyn Clock>,
    /// What a run does.
    cycle: Cycle,
    /// How a reload compiles the config file.
    load: Loader,
    /// Flags.
    options: Options,
    /// A run that exceeded its timeout and may still be running on its
    /// blocking thread; no new run starts until it has returned.
    abandoned: Option<JoinHandle<anyhow::Result<()>>>,
}

/// How a call to [`Daemon::run_once`] ended, for the loop and for tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunEnd {
    /// The cycle returned `Ok`.
    Completed,
    /// The cycle returned an error or panicked; the daemon carries on.
    Failed,
    /// The cycle exceeded `run_timeout` (or the grace period) and was abandoned.
    TimedOut,
    /// Not started: an abandoned run was still going.
    Skipped,
}

impl Daemon {
    async fn run(
        mut self,
        shutdown: CancellationToken,
        mut reloads: mpsc::Receiver<()>,
    ) -> anyhow::Result<()> {
        info!(
            config = %self.config_path.display(),
            crons = %cron_list(&self.config),
            timezone = %self.config.schedule.timezone,
            run_at_start = self.options.run_at_start,
            "daemon started"
        );
        // The last fire time handled: the next one must be later even if the
        // wall clock reads slightly earlier after waking up.
        let mut last_fire: Option<DateTime<Utc>> = None;
        if self.options.run_at_start && !shutdown.is_cancelled() {
            let now = self.clock.now();
            self.run_once(now, &shutdown).await;
        }
        while !shutdown.is_cancelled() {
            let now = self.clock.now();
            let after = last_fire.map_or(now, |f| f.max(now));
            let next = schedule::next_fire(&self.config.schedule, after);
            match &next {
                Some(at) => info!(next_run = %at, "waiting for the next run"),
                None => warn!(
                    "the schedule never fires again; waiting for SIGHUP with a new config, or SIGTERM"
                ),
            }
            let next = next.map(|t| t.with_timezone(&Utc));
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                Some(()) = reloads.recv() => {
                    self.reload();
                    continue;
                }
                () = wait_until(self.clock.as_ref(), next) => {}
            }
            let Some(fire_at) = next else { continue };
            last_fire = Some(fire_at);
            self.run_once(fire_at, &shutdown).await;
            let missed = schedule::fires_between(
                &self.config.schedule,
                fire_at,
                self.clock.now(),
                MAX_MISSED_COUNTED,
            );
            if missed > 0 {
                warn!(
                    missed,
                    "fire time(s) passed while the run was in progress; skipped, not queued"
                );
            }
        }
        info!("daemon stopped");
        Ok(())
    }

    /// Run one cycle for `scheduled` on a blocking thread and wait for it,
    /// within `run_timeout`. A shutdown request does not interrupt the run.
    async fn run_once(&mut self, scheduled: DateTime<Utc>, shutdown: &CancellationToken) -> RunEnd {
        if let Some(previous) = &self.abandoned {
            if !previous.is_finished() {
                warn!(
                    scheduled = %scheduled,
                    "the previous run, abandoned after its timeout, is still going; skipping this run so runs never overlap"
                );
                return RunEnd::Skipped;
            }
            self.abandoned = None;
        }
        let config = Arc::clone(&self.config);
        let cycle = Arc::clone(&self.cycle);
        let timeout = config.schedule.run_timeout;
        let started = tokio::time::Instant::now();
        let deadline = started + timeout;
        info!(scheduled = %scheduled, timeout_secs = timeout.as_secs(), "run started");
        let mut handle = tokio::task::spawn_blocking(move || cycle(&config, scheduled));
        let mut stopping = shutdown.is_cancelled();
        let outcome = loop {
            tokio::select! {
                r = tokio::time::timeout_at(deadline, &mut handle) => break r,
                () = shutdown.cancelled(), if !stopping => {
                    stopping = true;
                    let grace = deadline.saturating_duration_since(tokio::time::Instant::now());
                    info!(grace_secs = grace.as_secs(), "letting the run in progress finish before exiting");
                }
            }
        };
        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match outcome {
            Ok(Ok(Ok(()))) => {
                info!(scheduled = %scheduled, elapsed_ms, "run completed");
                RunEnd::Completed
            }
            Ok(Ok(Err(e))) => {
                error!(scheduled = %scheduled, elapsed_ms, error = format!("{e:#}"), "run failed");
                RunEnd::Failed
            }
            Ok(Err(join)) => {
                error!(scheduled = %scheduled, elapsed_ms, error = %join, "run panicked");
                RunEnd::Failed
            }
            Err(_elapsed) => {
                if shutdown.is_cancelled() {
                    error!(
                        scheduled = %scheduled,
                        timeout_secs = timeout.as_secs(),
                        "the run in progress did not finish within the grace period (run_timeout); exiting anyway"
                    );
                } else {
                    error!(
                        scheduled = %scheduled,
                        timeout_secs = timeout.as_secs(),
                        "run exceeded run_timeout and was abandoned; no new run starts until it returns"
                    );
                }
                self.abandoned = Some(handle);
                RunEnd::TimedOut
            }
        }
    }

    /// Compile the config file again; keep the old config if that fails.
    fn reload(&mut self) {
        let path = self.config_path.display().to_string();
        match (self.load)(&self.config_path) {
            Ok(new) => {
                self.config = Arc::new(new);
                info!(
                    config = %path,
                    crons = %cron_list(&self.config),
                    timezone = %self.config.schedule.timezone,
                    "config reloaded"
                );
            }
            Err(e) => {
                error!(config = %path, error = %e, "config reload failed; keeping the previous config");
            }
        }
    }
}

/// The cron expressions of `cfg`, for logs.
fn cron_list(cfg: &Config) -> String {
    let exprs: Vec<&str> = cfg
        .schedule
        .crons
        .iter()
        .map(cron::Schedule::source)
        .collect();
    exprs.join(", ")
}

/// Sleep until the wall clock reads `at` (forever if `None`), waking at least
/// every [`MAX_NAP`] to re-read the clock.
async fn wait_until(clock: &dyn Clock, at: Option<DateTime<Utc>>) {
    let Some(at) = at else {
        return std::future::pending().await;
    };
    loop {
        match (at - clock.now()).to_std() {
            Ok(left) if !left.is_zero() => tokio::time::sleep(left.min(MAX_NAP)).await,
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn config(cron: &str, run_timeout_secs: u64) -> Config {
        let text = format!(
            "[store]\npath = \"state.db\"\n\n[schedule]\ncron = \"{cron}\"\ntimezone = \"UTC\"\nrun_timeout_secs = {run_timeout_secs}\n\n[[source]]\nname = \"s\"\npath = \"s.csv\"\ntime_column = \"date\"\n"
        );
        config::compile_str(&text, Path::new("/nonexistent/callout.toml"), &|_| None).unwrap()
    }

    /// A cycle that records the cron of the config it ran with, sleeping `work` first.
    struct Recorder {
        started: AtomicUsize,
        completed: Mutex<Vec<String>>,
    }

    fn recorder(work: Duration) -> (Arc<Recorder>, Cycle) {
        let rec = Arc::new(Recorder {
            started: AtomicUsize::new(0),
            completed: Mutex::new(Vec::new()),
        });
        let r = Arc::clone(&rec);
        let cycle: Cycle = Arc::new(move |cfg: &Config, _now| {
            r.started.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(work);
            r.completed.lock().unwrap().push(cron_list(cfg));
            Ok(())
        });
        (rec, cycle)
    }

    fn daemon(cfg: Config, cycle: Cycle, load: Loader, run_at_start: bool) -> Daemon {
        Daemon {
            config_path: PathBuf::from("/nonexistent/callout.toml"),
            config: Arc::new(cfg),
            clock: Arc::new(SystemClock),
            cycle,
            load,
            options: Options { run_at_start },
            abandoned: None,
        }
    }

    fn never_loads() -> Loader {
        Arc::new(|p: &Path| {
            Err(ConfigError::Invalid {
                path: p.to_path_buf(),
                problems: vec![],
            })
        })
    }

    async fn wait_for(what: &str, cond: impl Fn() -> bool) {
        let give_up = tokio::time::Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(
                tokio::time::Instant::now() < give_up,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_lets_the_run_in_progress_finish() {
        // A yearly schedule: only the start-up run happens.
        let (rec, cycle) = recorder(Duration::from_millis(400));
        let d = daemon(config("0 0 0 1 1 *", 60), cycle, never_loads(), true);
        let shutdown = CancellationToken::new();
        let (_tx, rx) = mpsc::channel(1);
        let task = tokio::spawn(d.run(shutdown.clone(), rx));
        wait_for("the run to start", || {
            rec.started.load(Ordering::SeqCst) == 1
        })
        .await;
        shutdown.cancel();
        task.await.unwrap().unwrap();
        assert_eq!(
            rec.completed.lock().unwrap().len(),
            1,
            "the run finished before the daemon returned"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn grace_period_is_bounded_by_run_timeout() {
        let (rec, cycle) = recorder(Duration::from_secs(3));
        let d = daemon(config("0 0 0 1 1 *", 1), cycle, never_loads(), true);
        let shutdown = CancellationToken::new();
        let (_tx, rx) = mpsc::channel(1);
        let started = std::time::Instant::now();
        let task = tokio::spawn(d.run(shutdown.clone(), rx));
        wait_for("the run to start", || {
            rec.started.load(Ordering::SeqCst) == 1
        })
        .await;
        shutdown.cancel();
        task.await.unwrap().unwrap();
        assert!(
            started.elapsed() < Duration::from_millis(2500),
            "took {:?}",
            started.elapsed()
        );
        assert!(rec.completed.lock().unwrap().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn scheduled_runs_do_not_overlap_and_reloads_apply() {
        // Every second, each run taking 1.3 s: fire times pass during runs and
        // are skipped, so there is never more than one run at a time.
        let running = Arc::new(AtomicUsize::new(0));
        let overlaps = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(Mutex::new(Vec::<String>::new()));
        let (r, o, dn) = (
            Arc::clone(&running),
            Arc::clone(&overlaps),
            Arc::clone(&done),
        );
        let cycle: Cycle = Arc::new(move |cfg: &Config, _| {
            if r.fetch_add(1, Ordering::SeqCst) > 0 {
                o.fetch_add(1, Ordering::SeqCst);
            }
            std::thread::sleep(Duration::from_millis(1300));
            r.fetch_sub(1, Ordering::SeqCst);
            dn.lock().unwrap().push(cron_list(cfg));
            Ok(())
        });
        let loads = Arc::new(AtomicUsize::new(0));
        let l = Arc::clone(&loads);
        // First reload: broken (old config kept); second: a new schedule.
        let load: Loader = Arc::new(move |p: &Path| {
            if l.fetch_add(1, Ordering::SeqCst) == 0 {
                config::compile_str("[schedule]\ncron = \"nonsense\"\n", p, &|_| None)
            } else {
                Ok(config("*/1 * * * * *", 60))
            }
        });
        let d = daemon(config("* * * * * *", 60), cycle, load, false);
        let shutdown = CancellationToken::new();
        let (tx, rx) = mpsc::channel(1);
        let task = tokio::spawn(d.run(shutdown.clone(), rx));
        wait_for("two runs", || done.lock().unwrap().len() >= 2).await;
        tx.send(()).await.unwrap();
        wait_for("the broken reload", || loads.load(Ordering::SeqCst) == 1).await;
        let before = done.lock().unwrap().len();
        wait_for("a run after the broken reload", || {
            done.lock().unwrap().len() > before
        })
        .await;
        tx.send(()).await.unwrap();
        wait_for("the good reload", || loads.load(Ordering::SeqCst) == 2).await;
        wait_for("a run with the new config", || {
            done.lock().unwrap().iter().any(|c| c == "*/1 * * * * *")
        })
        .await;
        shutdown.cancel();
        task.await.unwrap().unwrap();
        assert_eq!(overlaps.load(Ordering::SeqCst), 0);
        let done = done.lock().unwrap();
        let old = done
            .iter()
            .take_while(|c| c.as_str() == "* * * * * *")
            .count();
        assert!(
            old >= 3,
            "runs with the old config continued after the broken reload: {done:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_run_does_not_stop_the_daemon() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&calls);
        let cycle: Cycle = Arc::new(move |_: &Config, _| {
            c.fetch_add(1, Ordering::SeqCst);
            anyhow::bail!("source `shop` unreadable")
        });
        let d = daemon(config("* * * * * *", 60), cycle, never_loads(), true);
        let shutdown = CancellationToken::new();
        let (_tx, rx) = mpsc::channel(1);
        let task = tokio::spawn(d.run(shutdown.clone(), rx));
        wait_for("a scheduled run after the failed one", || {
            calls.load(Ordering::SeqCst) >= 2
        })
        .await;
        shutdown.cancel();
        task.await.unwrap().unwrap();
    }

    #[test]
    fn run_at_start_values() {
        // Only the parsing: the variable itself is process-global.
        for (v, want) in [
            ("1", true),
            ("true", true),
            (" YES", true),
            ("0", false),
            ("", false),
            ("no", false),
        ] {
            assert_eq!(truthy(v), want, "{v:?}");
        }
    }
}
