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

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
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

/// Where the daemon's time comes from and how it waits for a given time: the
/// wall clock and tokio's timer in production, a clock moved by hand in tests
/// (so the loop's timing is tested without waiting on, or measuring, real time).
pub trait Timer: Clock {
    /// A future that resolves once [`Clock::now`] reads `at` or later.
    fn sleep_until(&self, at: DateTime<Utc>) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

impl Timer for SystemClock {
    /// Sleeps in naps of at most [`MAX_NAP`], re-reading the wall clock after
    /// each, so a stepped clock or a suspended VM is noticed.
    fn sleep_until(&self, at: DateTime<Utc>) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            loop {
                match (at - self.now()).to_std() {
                    Ok(left) if !left.is_zero() => tokio::time::sleep(left.min(MAX_NAP)).await,
                    _ => return,
                }
            }
        })
    }
}

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
///
/// `web_bound` is called once with the web server (when `[web]` is
/// configured) as soon as it is bound, before the first run: the caller
/// says where it answers ([`crate::web::Server::serving_line`]); the daemon
/// prints nothing itself. During the loop it only logs (tracing).
pub async fn run(
    config_path: PathBuf,
    initial: Config,
    web_bound: impl FnOnce(&crate::web::Server),
) -> anyhow::Result<()> {
    run_with(config_path, initial, Options::from_env(), web_bound).await
}

/// [`run`] with explicit options (for a CLI flag instead of the environment).
pub async fn run_with(
    config_path: PathBuf,
    initial: Config,
    options: Options,
    web_bound: impl FnOnce(&crate::web::Server),
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
    let web = web.map(|server| {
        web_bound(&server);
        tokio::spawn(server.run(shutdown.clone()))
    });
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
pub fn run_blocking(
    config_path: PathBuf,
    initial: Config,
    web_bound: impl FnOnce(&crate::web::Server),
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("callout")
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(run(config_path, initial, web_bound));
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
    /// Where "now" comes from and how waits end, so tests control time.
    clock: Arc<dyn Timer>,
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
        // The deadline is on the daemon's clock (the wall clock in production),
        // like the schedule; a timeout too large to represent never expires.
        let started = self.clock.now();
        let deadline = chrono::Duration::from_std(timeout)
            .ok()
            .and_then(|t| started.checked_add_signed(t));
        info!(scheduled = %scheduled, timeout_secs = timeout.as_secs(), "run started");
        let mut handle = tokio::task::spawn_blocking(move || cycle(&config, scheduled));
        let mut stopping = shutdown.is_cancelled();
        let outcome = loop {
            tokio::select! {
                r = &mut handle => break Some(r),
                () = wait_until(self.clock.as_ref(), deadline) => break None,
                () = shutdown.cancelled(), if !stopping => {
                    stopping = true;
                    let grace_secs = deadline.map_or(i64::MAX, |d| (d - self.clock.now()).num_seconds().max(0));
                    info!(grace_secs, "letting the run in progress finish before exiting");
                }
            }
        };
        let elapsed_ms = (self.clock.now() - started).num_milliseconds();
        match outcome {
            Some(Ok(Ok(()))) => {
                info!(scheduled = %scheduled, elapsed_ms, "run completed");
                RunEnd::Completed
            }
            Some(Ok(Err(e))) => {
                error!(scheduled = %scheduled, elapsed_ms, error = format!("{e:#}"), "run failed");
                RunEnd::Failed
            }
            Some(Err(join)) => {
                error!(scheduled = %scheduled, elapsed_ms, error = %join, "run panicked");
                RunEnd::Failed
            }
            None => {
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

/// Sleep until the clock reads `at` (forever if `None`).
async fn wait_until(clock: &dyn Timer, at: Option<DateTime<Utc>>) {
    match at {
        Some(at) => clock.sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    //! The loop on a clock the test moves by hand ([`ManualClock`]) and cycles
    //! that block until the test releases them. Tests run on a current-thread
    //! runtime, so the daemon task only moves when the test awaits or yields.
    //! Nothing here waits on or measures the wall clock (timeouts below only
    //! turn a hang into a failure), so a loaded machine cannot fail these tests.

    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use chrono::TimeZone;
    use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
    use tokio::sync::watch;

    use super::*;

    /// Turns a hang (an expected event that never comes) into a test failure.
    const HANG: Duration = Duration::from_secs(120);

    fn config(cron: &str, run_timeout_secs: u64) -> Config {
        let text = format!(
            "[store]\npath = \"state.db\"\n\n[schedule]\ncron = \"{cron}\"\ntimezone = \"UTC\"\nrun_timeout_secs = {run_timeout_secs}\n\n[[source]]\nname = \"s\"\npath = \"s.csv\"\ntime_column = \"date\"\n"
        );
        config::compile_str(&text, Path::new("/nonexistent/callout.toml"), &|_| None).unwrap()
    }

    /// A clock that moves only when the test moves it, and tells the test
    /// what the daemon is waiting for.
    struct ManualClock {
        now: watch::Sender<DateTime<Utc>>,
        /// The time of the latest `sleep_until` call.
        waiting_for: watch::Sender<Option<DateTime<Utc>>>,
    }

    impl ManualClock {
        fn new(start: DateTime<Utc>) -> Arc<Self> {
            Arc::new(ManualClock {
                now: watch::Sender::new(start),
                waiting_for: watch::Sender::new(None),
            })
        }

        fn advance(&self, by: chrono::Duration) {
            self.now.send_modify(|t| *t += by);
        }

        fn set(&self, at: DateTime<Utc>) {
            self.now.send_replace(at);
        }

        /// Wait until the daemon sleeps until `at` (fails the test if it never does).
        async fn sleeper_at(&self, at: DateTime<Utc>) {
            let mut rx = self.waiting_for.subscribe();
            tokio::time::timeout(HANG, rx.wait_for(|w| *w == Some(at)))
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "the daemon never waited for {at}; last wait: {:?}",
                        *self.waiting_for.borrow()
                    )
                })
                .unwrap();
        }
    }

    impl Clock for ManualClock {
        fn now(&self) -> DateTime<Utc> {
            *self.now.borrow()
        }
    }

    impl Timer for ManualClock {
        fn sleep_until(&self, at: DateTime<Utc>) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
            self.waiting_for.send_replace(Some(at));
            let mut now = self.now.subscribe();
            Box::pin(async move {
                // The sender lives as long as the clock, which outlives this future.
                let _ = now.wait_for(|t| *t >= at).await;
            })
        }
    }

    /// A quarter second past a full second, so every-second fire times are exact.
    fn start() -> DateTime<Utc> {
        at(9, 0, 0) + chrono::Duration::milliseconds(250)
    }

    fn at(h: u32, m: u32, sec: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, 4, h, m, sec).unwrap()
    }

    /// The test's side of a scripted cycle: each run reports its scheduled
    /// time and config, then blocks until the test releases it.
    struct Script {
        started: UnboundedReceiver<(DateTime<Utc>, String)>,
        release: std::sync::mpsc::Sender<anyhow::Result<()>>,
        completed: Arc<AtomicUsize>,
        overlaps: Arc<AtomicUsize>,
    }

    impl Script {
        /// The next run's (scheduled time, cron list).
        async fn started(&mut self) -> (DateTime<Utc>, String) {
            tokio::time::timeout(HANG, self.started.recv())
                .await
                .expect("no run started")
                .unwrap()
        }

        fn finish(&self, result: anyhow::Result<()>) {
            self.release.send(result).unwrap();
        }
    }

    fn scripted() -> (Script, Cycle) {
        let (started_tx, started) = unbounded_channel();
        let (release, release_rx) = std::sync::mpsc::channel::<anyhow::Result<()>>();
        let release_rx = Mutex::new(release_rx);
        let completed = Arc::new(AtomicUsize::new(0));
        let overlaps = Arc::new(AtomicUsize::new(0));
        let running = AtomicUsize::new(0);
        let (c, o) = (Arc::clone(&completed), Arc::clone(&overlaps));
        let cycle: Cycle = Arc::new(move |cfg: &Config, now| {
            if running.fetch_add(1, Ordering::SeqCst) > 0 {
                o.fetch_add(1, Ordering::SeqCst);
            }
            let _ = started_tx.send((now, cron_list(cfg)));
            // A dropped Script (end of test) lets every blocked run return.
            let result = release_rx.lock().unwrap().recv().unwrap_or(Ok(()));
            running.fetch_sub(1, Ordering::SeqCst);
            c.fetch_add(1, Ordering::SeqCst);
            result
        });
        let script = Script {
            started,
            release,
            completed,
            overlaps,
        };
        (script, cycle)
    }

    fn daemon(
        cfg: Config,
        clock: &Arc<ManualClock>,
        cycle: Cycle,
        load: Loader,
        run_at_start: bool,
    ) -> Daemon {
        Daemon {
            config_path: PathBuf::from("/nonexistent/callout.toml"),
            config: Arc::new(cfg),
            clock: Arc::clone(clock) as Arc<dyn Timer>,
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

    /// Let the daemon task run everything it can without time passing.
    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn shutdown_lets_the_run_in_progress_finish() {
        // A yearly schedule: only the start-up run happens.
        let clock = ManualClock::new(start());
        let (mut s, cycle) = scripted();
        let d = daemon(
            config("0 0 0 1 1 *", 60),
            &clock,
            cycle,
            never_loads(),
            true,
        );
        let shutdown = CancellationToken::new();
        let (_tx, rx) = mpsc::channel(1);
        let mut task = tokio::spawn(d.run(shutdown.clone(), rx));
        s.started().await;
        shutdown.cancel();
        clock.advance(chrono::Duration::seconds(59));
        settle().await;
        assert!(
            !task.is_finished(),
            "returned while the run was still in progress"
        );
        s.finish(Ok(()));
        tokio::time::timeout(HANG, &mut task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(s.completed.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn grace_period_is_bounded_by_run_timeout() {
        let clock = ManualClock::new(start());
        let (mut s, cycle) = scripted();
        let d = daemon(
            config("0 0 0 1 1 *", 600),
            &clock,
            cycle,
            never_loads(),
            true,
        );
        let shutdown = CancellationToken::new();
        let (_tx, rx) = mpsc::channel(1);
        let mut task = tokio::spawn(d.run(shutdown.clone(), rx));
        s.started().await;
        shutdown.cancel();
        // The run never finishes: the daemon waits out run_timeout, no longer.
        clock.advance(chrono::Duration::seconds(599));
        settle().await;
        assert!(!task.is_finished(), "gave up before run_timeout");
        clock.advance(chrono::Duration::seconds(2));
        tokio::time::timeout(HANG, &mut task)
            .await
            .expect("still waiting after run_timeout")
            .unwrap()
            .unwrap();
        assert_eq!(s.completed.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn scheduled_runs_do_not_overlap_and_reloads_apply() {
        let loads = Arc::new(AtomicUsize::new(0));
        let l = Arc::clone(&loads);
        // First reload: broken (old config kept); second: a new schedule.
        let load: Loader = Arc::new(move |p: &Path| {
            if l.fetch_add(1, Ordering::SeqCst) == 0 {
                config::compile_str("[schedule]\ncron = \"nonsense\"\n", p, &|_| None)
            } else {
                Ok(config("*/2 * * * * *", 60))
            }
        });
        let clock = ManualClock::new(start());
        let (mut s, cycle) = scripted();
        let d = daemon(config("* * * * * *", 60), &clock, cycle, load, false);
        let shutdown = CancellationToken::new();
        let (tx, rx) = mpsc::channel(1);
        let mut task = tokio::spawn(d.run(shutdown.clone(), rx));

        // Every second; the first run takes 1.3 s, so the fire time inside it
        // (09:00:02) is skipped, not queued or run alongside.
        clock.sleeper_at(at(9, 0, 1)).await;
        clock.set(at(9, 0, 1));
        let (t, cron) = s.started().await;
        assert_eq!((t, cron.as_str()), (at(9, 0, 1), "* * * * * *"));
        clock.advance(chrono::Duration::milliseconds(1300));
        s.finish(Ok(()));
        clock.sleeper_at(at(9, 0, 3)).await;
        clock.set(at(9, 0, 3));
        let (t, _) = s.started().await;
        assert_eq!(t, at(9, 0, 3));

        // A broken config arrives during a run: the old one stays in force.
        tx.send(()).await.unwrap();
        s.finish(Ok(()));
        clock.sleeper_at(at(9, 0, 4)).await;
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        clock.set(at(9, 0, 4));
        let (t, cron) = s.started().await;
        assert_eq!((t, cron.as_str()), (at(9, 0, 4), "* * * * * *"));

        // A good one is picked up before the next run: every other second.
        tx.send(()).await.unwrap();
        s.finish(Ok(()));
        clock.sleeper_at(at(9, 0, 6)).await;
        assert_eq!(loads.load(Ordering::SeqCst), 2);
        clock.set(at(9, 0, 6));
        let (t, cron) = s.started().await;
        assert_eq!((t, cron.as_str()), (at(9, 0, 6), "*/2 * * * * *"));

        shutdown.cancel();
        s.finish(Ok(()));
        tokio::time::timeout(HANG, &mut task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(s.overlaps.load(Ordering::SeqCst), 0);
        assert_eq!(s.completed.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn a_failing_run_does_not_stop_the_daemon() {
        let clock = ManualClock::new(start());
        let (mut s, cycle) = scripted();
        let d = daemon(
            config("* * * * * *", 60),
            &clock,
            cycle,
            never_loads(),
            true,
        );
        let shutdown = CancellationToken::new();
        let (_tx, rx) = mpsc::channel(1);
        let mut task = tokio::spawn(d.run(shutdown.clone(), rx));
        let (t, _) = s.started().await;
        assert_eq!(t, start(), "the start-up run is for now");
        s.finish(Err(anyhow::anyhow!("source `shop` unreadable")));
        clock.sleeper_at(at(9, 0, 1)).await;
        clock.set(at(9, 0, 1));
        let (t, _) = s.started().await;
        assert_eq!(t, at(9, 0, 1));
        shutdown.cancel();
        s.finish(Ok(()));
        tokio::time::timeout(HANG, &mut task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(s.completed.load(Ordering::SeqCst), 2);
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
