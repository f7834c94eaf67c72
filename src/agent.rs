//! `regtrust agent`, the DaemonSet process (SPEC, Agent). It owns the loop and the current
//! report; the work itself lives elsewhere: `sync` reads and installs, `watch` turns
//! filesystem events into a signal, `probing` is the seam to the probe module, `push` sends
//! reports, `http` serves them, `crate::metrics` renders them.
//!
//! Tasks, all stopped by one shutdown signal:
//! - sync (this file): sync at start, then on every watch signal and every
//!   `--resync-interval`. Filesystem work (sync, watch registration) runs in
//!   `spawn_blocking`, never on the async threads. A signal that arrives during a sync costs
//!   one more sync (the `Notify` permit); event-driven syncs are rate-limited (a token
//!   bucket) so a busy neighbour file cannot spin the agent. A pass after an event that
//!   makes the report worse (a new problem: an input read half-written) is confirmed by
//!   another read one debounce later before it is logged or published; files are written
//!   at once either way, and an invalid input never degrades what is installed (`sync`).
//! - probe: at start, every `--probe-interval` (±10 % jitter) and after every change.
//! - push (`push`): the latest report after every probe round and every change, backing off
//!   while the aggregator is down, never delaying a sync.
//! - http (`http`): `/healthz`, `/readyz`, `/metrics`, `/report`.
//!
//! Logs are transitions (a file installed or removed, a problem appeared or cleared, a
//! verdict changed), never ticks. On SIGTERM/SIGINT it stops within the shutdown timeout
//! and leaves every installed CA in place.

pub mod http;
pub mod probing;
pub mod push;

use crate::cli::AgentArgs;
use crate::metrics::{self, Counters};
use crate::report::{rfc3339, RegistryReport, Report, TrustState};
use crate::sync::{sync_once, CaChoice, Config, Inputs};
use crate::watch::{self as dirwatch, Watch};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

/// How the agent runs, besides the inputs (`sync::Config`).
pub struct Options {
    pub probe_interval: Duration,
    pub resync_interval: Duration,
    /// Where reports go; none: no pushes.
    pub report: Option<push::Target>,
    pub backoff: push::Backoff,
    pub watch: dirwatch::Settings,
    /// Event-driven syncs: this many at once, then this many a second.
    pub event_burst: u32,
    pub event_rate: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            probe_interval: Duration::from_secs(60),
            resync_interval: Duration::from_secs(600),
            report: None,
            backoff: push::Backoff::default(),
            watch: dirwatch::Settings {
                debounce: Duration::from_millis(100),
                leading_edge: true,
            },
            event_burst: 32,
            event_rate: 20,
        }
    }
}

impl Options {
    pub fn from_args(a: &AgentArgs) -> Result<Options, push::TargetError> {
        let report = match &a.report_url {
            Some(url) => Some(push::Target::new(
                url,
                a.report_token_file.clone(),
                a.report_ca_file.as_deref(),
            )?),
            None => None,
        };
        Ok(Options {
            probe_interval: a.probe_interval,
            resync_interval: a.resync_interval,
            report,
            ..Options::default()
        })
    }
}

type StopRx = watch::Receiver<bool>;

/// A uniform number in [0, 1) for jitter.
fn random_unit() -> f64 {
    use ring::rand::SecureRandom as _;
    let mut b = [0u8; 8];
    if ring::rand::SystemRandom::new().fill(&mut b).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

/// Run the agent until `shutdown` resolves. The listener is bound by the caller (tests
/// pass `127.0.0.1:0`). Installed CAs are left in place on the way out.
pub async fn run<F>(
    cfg: Config,
    opts: Options,
    listener: tokio::net::TcpListener,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let (publish, latest) = watch::channel(None);
    let shared = Arc::new(Shared::new(cfg, publish));
    let signal = Arc::new(Notify::new());
    let probe_now = Arc::new(Notify::new());
    let watcher = Arc::new(Mutex::new(Watch::new(signal.clone(), opts.watch)));

    let addr = listener.local_addr()?;
    tracing::info!(
        addr = %addr,
        node = %shared.cfg.node,
        runtimes = ?shared.cfg.runtimes.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        report_url = opts.report.as_ref().map(|t| t.url().to_string()).unwrap_or_default(),
        "agent started; serving /healthz, /readyz, /metrics and /report"
    );
    let server = {
        let mut stop = stop_rx.clone();
        // Bounded connections and header timeouts: a flood cannot take the sync loop's
        // file descriptors (crate::listen).
        tokio::spawn(crate::listen::serve(
            "agent",
            listener,
            http::router(shared.clone()),
            crate::listen::Limits::AGENT,
            async move {
                let _ = stop.wait_for(|s| *s).await;
            },
        ))
    };
    let prober = tokio::spawn(probe_loop(
        shared.clone(),
        probe_now.clone(),
        opts.probe_interval,
        stop_rx.clone(),
    ));
    let pusher = opts.report.map(|target| {
        tokio::spawn(push::run(
            target,
            opts.backoff,
            latest,
            shared.clone(),
            stop_rx.clone(),
        ))
    });

    let loop_opts = LoopOptions {
        resync_interval: opts.resync_interval,
        debounce: opts.watch.debounce,
        burst: opts.event_burst,
        rate: opts.event_rate,
    };
    sync_loop(&shared, &watcher, &signal, &probe_now, loop_opts, stop_rx).await;

    tracing::info!("stopping; installed CAs stay in place");
    prober.abort();
    if let Some(p) = pusher {
        p.abort();
    }
    match tokio::time::timeout(Duration::from_secs(2), server).await {
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "HTTP server stopped with an error"),
        Err(_) => tracing::warn!("HTTP connections still open after 2s; closing them"),
        _ => {}
    }
    Ok(())
}

/// `regtrust agent`: returns the process exit code (0 after SIGTERM/SIGINT; 2 for a
/// configuration error; 1 when the agent could not run).
pub fn run_cli(args: &AgentArgs) -> u8 {
    let cfg = match Config::from_args(&args.inputs) {
        Ok(c) => c,
        Err(e) => {
            crate::cli::print_error("agent", &e);
            return 2;
        }
    };
    let opts = match Options::from_args(args) {
        Ok(o) => o,
        Err(e) => {
            crate::cli::print_error("agent", &e);
            return 2;
        }
    };
    // One async thread is plenty (the work is a few syscalls and a small HTTP server); the
    // filesystem work runs on the blocking pool.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(4)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            crate::cli::print_error("agent", &format!("cannot start the async runtime: {e}"));
            return 1;
        }
    };
    let code = rt.block_on(async {
        let shutdown = match shutdown_signal() {
            Ok(s) => s,
            Err(e) => {
                crate::cli::print_error(
                    "agent",
                    &format!("cannot install the SIGTERM/SIGINT handlers: {e}"),
                );
                return 1;
            }
        };
        let listener = match tokio::net::TcpListener::bind(args.listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("regtrust agent: --listen {}: cannot bind: {e}", args.listen);
                return 2;
            }
        };
        match run(cfg, opts, listener, shutdown).await {
            Ok(()) => 0,
            Err(e) => {
                crate::cli::print_error("agent", &e);
                1
            }
        }
    });
    // A sync still in flight on the blocking pool finishes or is abandoned here; either
    // way the trust files are whole (atomic renames).
    rt.shutdown_timeout(Duration::from_secs(1));
    code
}

/// SIGTERM or SIGINT, registered now (not at first poll) so that a signal during the first
/// sync is not lost.
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        let which = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(signal = which, "shutting down");
    })
}

// ---------------------------------------------------------------------------------------
// State shared by the tasks and the HTTP handlers.

struct Shared {
    cfg: Arc<Config>,
    counters: Counters,
    ready: AtomicBool,
    current: Mutex<Current>,
    publish: watch::Sender<Option<Arc<Report>>>,
}

#[derive(Default)]
struct Current {
    synced: Option<Synced>,
    /// The last probe round, by host.
    probed: BTreeMap<String, RegistryReport>,
    report: Option<Arc<Report>>,
    last_sync: Option<i64>,
}

/// What one applied sync left: its report (watch trouble included) and the inputs it read.
struct Synced {
    report: Report,
    inputs: Arc<Inputs>,
    with_ca: BTreeSet<String>,
    invalid_ca: BTreeSet<String>,
}

impl Synced {
    fn new(report: Report, inputs: Inputs) -> Synced {
        let mut with_ca = BTreeSet::new();
        let mut invalid_ca = BTreeSet::new();
        for (host, choice) in &inputs.hosts {
            match choice {
                CaChoice::Valid(_) => {
                    with_ca.insert(host.to_string());
                }
                CaChoice::Invalid { .. } => {
                    with_ca.insert(host.to_string());
                    invalid_ca.insert(host.to_string());
                }
                CaChoice::None => {}
            }
        }
        Synced {
            report,
            inputs: Arc::new(inputs),
            with_ca,
            invalid_ca,
        }
    }

    fn hosts(&self) -> BTreeSet<String> {
        self.inputs.hosts.keys().map(|h| h.to_string()).collect()
    }
}

impl Shared {
    fn new(cfg: Config, publish: watch::Sender<Option<Arc<Report>>>) -> Shared {
        Shared {
            cfg: Arc::new(cfg),
            counters: Counters::default(),
            ready: AtomicBool::new(false),
            current: Mutex::new(Current::default()),
            publish,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    fn report(&self) -> Option<Arc<Report>> {
        self.lock().report.clone()
    }

    fn metrics(&self) -> String {
        let cur = self.lock();
        let empty = BTreeSet::new();
        let fallback;
        let report = match &cur.report {
            Some(r) => r.as_ref(),
            None => {
                fallback = Report::new(self.cfg.node.clone(), time::OffsetDateTime::now_utc());
                &fallback
            }
        };
        metrics::render(&metrics::View {
            report,
            runtimes: &self.cfg.runtimes,
            invalid_ca: cur.synced.as_ref().map_or(&empty, |s| &s.invalid_ca),
            with_ca: cur.synced.as_ref().map_or(&empty, |s| &s.with_ca),
            counters: &self.counters,
            ready: self.is_ready(),
            last_sync: cur.last_sync,
        })
    }

    /// True when `new` has a problem, or a trust file needing attention, that the applied
    /// state does not.
    fn would_worsen(&self, new: &Report) -> bool {
        let cur = self.lock();
        let Some(old) = cur.synced.as_ref().map(|s| &s.report) else {
            return false;
        };
        let old_problems = problem_keys(old);
        let old_attention = attention(old);
        !problem_keys(new).is_subset(&old_problems)
            || attention(new)
                .into_iter()
                .any(|(k, v)| old_attention.get(&k) != Some(&v))
    }

    /// Make a sync the current state; log what changed; publish when anything did.
    /// Returns whether anything changed (then a probe round follows).
    fn apply_sync(&self, synced: Synced) -> bool {
        let now = time::OffsetDateTime::now_utc();
        let mut cur = self.lock();
        let notes = sync_notes(cur.synced.as_ref(), &synced);
        let changed = match &cur.synced {
            None => true,
            Some(old) => wrote(&synced.report) || steady(old) != steady(&synced),
        };
        cur.synced = Some(synced);
        cur.last_sync = Some(now.unix_timestamp());
        if changed || cur.report.is_none() {
            let report = Arc::new(compose(&cur, now));
            cur.report = Some(report.clone());
            // Under the lock: what /report shows has been handed to the pusher.
            self.publish.send_replace(Some(report));
        }
        drop(cur);
        emit(&notes);
        self.ready.store(true, Ordering::Release);
        changed
    }

    fn for_probe(&self) -> Option<(Arc<Inputs>, Report)> {
        let cur = self.lock();
        cur.synced
            .as_ref()
            .map(|s| (s.inputs.clone(), s.report.clone()))
    }

    fn apply_probe(&self, registries: Vec<RegistryReport>) {
        let now = time::OffsetDateTime::now_utc();
        let mut cur = self.lock();
        let probed: BTreeMap<String, RegistryReport> = registries
            .into_iter()
            .map(|r| (r.host.clone(), r))
            .collect();
        let notes = verdict_notes(&cur.probed, &probed);
        cur.probed = probed;
        let report = Arc::new(compose(&cur, now));
        cur.report = Some(report.clone());
        self.publish.send_replace(Some(report));
        drop(cur);
        emit(&notes);
    }
}

/// The current report: the latest sync's, with each registry's verdict, message, probes and
/// Harbor health from the latest probe round.
fn compose(cur: &Current, now: time::OffsetDateTime) -> Report {
    let Some(synced) = &cur.synced else {
        return Report::new("", now);
    };
    let mut report = synced.report.clone();
    report.generated_at = rfc3339(now);
    for reg in &mut report.registries {
        if let Some(p) = cur.probed.get(&reg.host) {
            reg.verdict = p.verdict;
            reg.probes = p.probes.clone();
            reg.harbor = p.harbor.clone();
            if !p.message.is_empty() {
                reg.message = p.message.clone();
            }
        }
    }
    report
}

/// True when the pass wrote or removed a file.
fn wrote(r: &Report) -> bool {
    r.registries
        .iter()
        .flat_map(|reg| &reg.trust)
        .any(|t| matches!(t.state, TrustState::Installed | TrustState::Removed))
}

/// A sync's lasting content: what one pass did (`installed`, `removed`) is folded into
/// the state it leaves, so the quiet pass after a write is not a change of its own (no
/// second probe round and push for one update).
fn steady(
    s: &Synced,
) -> (
    BTreeSet<String>,
    Vec<RegistryReport>,
    BTreeSet<(&str, &str)>,
) {
    let hosts = s.hosts();
    let registries = s
        .report
        .registries
        .iter()
        .filter(|r| hosts.contains(&r.host))
        .map(|r| {
            let mut r = r.clone();
            r.trust.retain(|t| t.state != TrustState::Removed);
            for t in &mut r.trust {
                if t.state == TrustState::Installed {
                    t.state = TrustState::Unchanged;
                    t.detail.clear();
                }
            }
            r
        })
        .collect();
    (hosts, registries, problem_keys(&s.report))
}

fn problem_keys(r: &Report) -> BTreeSet<(&str, &str)> {
    r.problems
        .iter()
        .map(|p| (p.source.as_str(), p.message.as_str()))
        .collect()
}

/// Trust files needing attention, by path.
fn attention(r: &Report) -> BTreeMap<String, TrustState> {
    r.registries
        .iter()
        .flat_map(|reg| &reg.trust)
        .filter(|t| t.state.needs_attention())
        .map(|t| (t.path.clone(), t.state))
        .collect()
}

fn needs_attention(r: &Report) -> bool {
    !r.problems.is_empty() || !attention(r).is_empty()
}

// ---------------------------------------------------------------------------------------
// Transitions worth a log line.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Info,
    Warn,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Note {
    level: Level,
    what: &'static str,
    subject: String,
    detail: String,
}

fn note(level: Level, what: &'static str, subject: &str, detail: String) -> Note {
    Note {
        level,
        what,
        subject: subject.to_string(),
        detail,
    }
}

fn emit(notes: &[Note]) {
    for n in notes {
        match n.level {
            Level::Info => {
                tracing::info!(subject = %n.subject, detail = %n.detail, "{}", n.what)
            }
            Level::Warn => {
                tracing::warn!(subject = %n.subject, detail = %n.detail, "{}", n.what)
            }
        }
    }
}

/// Files written or removed by one pass (facts on disk, logged whether or not the pass is
/// applied).
fn file_notes(r: &Report) -> Vec<Note> {
    let mut out = Vec::new();
    for reg in &r.registries {
        for t in &reg.trust {
            let what = match (t.state, t.path.ends_with("/ca.crt")) {
                (TrustState::Installed, true) => "CA installed",
                (TrustState::Installed, false) => "trust file installed",
                (TrustState::Removed, true) => "CA removed",
                (TrustState::Removed, false) => "trust file removed",
                _ => continue,
            };
            let detail = if t.detail.is_empty() {
                format!("{} for {}", t.runtime, reg.host)
            } else {
                format!("{} for {}: {}", t.runtime, reg.host, t.detail)
            };
            out.push(note(Level::Info, what, &t.path, detail));
        }
    }
    out
}

/// Hosts managed or dropped, problems appearing or clearing, trust files needing attention
/// or fine again.
fn sync_notes(old: Option<&Synced>, new: &Synced) -> Vec<Note> {
    let mut out = Vec::new();
    let (old_hosts, old_problems, old_attention) = match old {
        Some(o) => (o.hosts(), problem_keys(&o.report), attention(&o.report)),
        None => Default::default(),
    };
    let new_hosts = new.hosts();
    for h in new_hosts.difference(&old_hosts) {
        out.push(note(Level::Info, "registry managed", h, String::new()));
    }
    for h in old_hosts.difference(&new_hosts) {
        out.push(note(
            Level::Info,
            "registry no longer managed",
            h,
            String::new(),
        ));
    }
    let new_problems = problem_keys(&new.report);
    for (source, message) in new_problems.difference(&old_problems) {
        out.push(note(Level::Warn, "problem", source, message.to_string()));
    }
    for (source, message) in old_problems.difference(&new_problems) {
        out.push(note(
            Level::Info,
            "problem cleared",
            source,
            message.to_string(),
        ));
    }
    let new_attention = attention(&new.report);
    for (path, state) in &new_attention {
        if old_attention.get(path) != Some(state) {
            let detail = new
                .report
                .registries
                .iter()
                .flat_map(|r| &r.trust)
                .find(|t| &t.path == path)
                .map(|t| format!("{}: {}", state.as_str(), t.detail))
                .unwrap_or_default();
            out.push(note(
                Level::Warn,
                "trust file needs attention",
                path,
                detail,
            ));
        }
    }
    for path in old_attention.keys() {
        if !new_attention.contains_key(path) {
            out.push(note(
                Level::Info,
                "trust file fine again",
                path,
                String::new(),
            ));
        }
    }
    out
}

/// Verdicts per registry and runtime that changed (a first verdict counts, `unknown` does
/// not).
fn verdict_notes(
    old: &BTreeMap<String, RegistryReport>,
    new: &BTreeMap<String, RegistryReport>,
) -> Vec<Note> {
    let views = |m: &BTreeMap<String, RegistryReport>| {
        let mut out = BTreeMap::new();
        for (host, r) in m {
            for p in &r.probes {
                out.insert(
                    (host.clone(), p.runtime.clone()),
                    (p.verdict, p.message.clone()),
                );
            }
        }
        out
    };
    let (before, after) = (views(old), views(new));
    let mut out = Vec::new();
    for ((host, runtime), (verdict, message)) in &after {
        let prev = before.get(&(host.clone(), runtime.clone())).map(|v| v.0);
        if prev == Some(*verdict) || (prev.is_none() && *verdict == crate::report::Verdict::Unknown)
        {
            continue;
        }
        let level = if verdict.is_failure() {
            Level::Warn
        } else {
            Level::Info
        };
        let from = prev.map_or("none", |v| v.as_str());
        let detail = if message.is_empty() {
            format!("{runtime}: {from} -> {verdict}")
        } else {
            format!("{runtime}: {from} -> {verdict}: {message}")
        };
        out.push(note(level, "verdict changed", host, detail));
    }
    out
}

// ---------------------------------------------------------------------------------------
// The sync task.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    Start,
    Event,
    Confirm,
    Resync,
}

#[derive(Debug, Clone, Copy)]
struct LoopOptions {
    resync_interval: Duration,
    debounce: Duration,
    burst: u32,
    rate: u32,
}

/// A token bucket for event-driven syncs.
struct Bucket {
    tokens: f64,
    burst: f64,
    per_second: f64,
    last: Instant,
}

impl Bucket {
    fn new(burst: u32, per_second: u32, now: Instant) -> Bucket {
        Bucket {
            tokens: f64::from(burst.max(1)),
            burst: f64::from(burst.max(1)),
            per_second: f64::from(per_second.max(1)),
            last: now,
        }
    }

    /// Take a token; how long to wait first when none is left.
    fn take(&mut self, now: Instant) -> Option<Duration> {
        let refill = now.saturating_duration_since(self.last).as_secs_f64() * self.per_second;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.last = now;
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            None
        } else {
            Some(Duration::from_secs_f64(-self.tokens / self.per_second))
        }
    }
}

/// What one blocking step produced.
struct Step {
    report: Report,
    inputs: Inputs,
    files: Vec<Note>,
}

/// Up to this many extra passes when a pass made new dirs to watch.
const MAX_REREADS: usize = 3;

/// One sync step, on the blocking pool: (at start: register the watches first, so nothing
/// between the read and the watch is missed), sync, register the dirs the sync created,
/// and if there were any, sync again for the same reason.
fn step(cfg: &Config, watcher: &Mutex<Watch>, register_first: bool) -> Step {
    let mut w = watcher.lock().unwrap_or_else(PoisonError::into_inner);
    if register_first {
        w.update(&dirwatch::dirs_to_watch(cfg));
    }
    let mut result = sync_once(cfg, time::OffsetDateTime::now_utc());
    let mut files = file_notes(&result.report);
    for _ in 0..MAX_REREADS {
        if w.update(&dirwatch::dirs_to_watch(cfg)).added.is_empty() {
            break;
        }
        result = sync_once(cfg, time::OffsetDateTime::now_utc());
        files.extend(file_notes(&result.report));
    }
    let mut report = result.report;
    report.problems.extend(w.problems());
    Step {
        report,
        inputs: result.inputs,
        files,
    }
}

async fn maybe_sleep_until(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

async fn sync_loop(
    shared: &Arc<Shared>,
    watcher: &Arc<Mutex<Watch>>,
    signal: &Arc<Notify>,
    probe_now: &Arc<Notify>,
    opts: LoopOptions,
    mut stop: StopRx,
) {
    let mut bucket = Bucket::new(opts.burst, opts.rate, Instant::now());
    let mut trigger = Trigger::Start;
    let mut confirm_at: Option<Instant> = None;
    loop {
        let task = {
            let cfg = shared.cfg.clone();
            let watcher = watcher.clone();
            let first = trigger == Trigger::Start;
            tokio::task::spawn_blocking(move || step(&cfg, &watcher, first))
        };
        let step = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => return,
            joined = task => joined,
        };
        match step {
            Ok(step) => {
                shared.counters.sync(needs_attention(&step.report));
                emit(&step.files);
                let synced = Synced::new(step.report, step.inputs);
                if trigger == Trigger::Event && shared.would_worsen(&synced.report) {
                    // Maybe a half-written input: read again one debounce later.
                    confirm_at.get_or_insert(Instant::now() + opts.debounce);
                } else {
                    confirm_at = None;
                    if shared.apply_sync(synced) {
                        probe_now.notify_one();
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "sync pass panicked; retrying at the next event or resync");
            }
        }
        let next_resync = Instant::now() + opts.resync_interval;
        trigger = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => return,
            _ = maybe_sleep_until(confirm_at) => Trigger::Confirm,
            _ = signal.notified() => Trigger::Event,
            _ = tokio::time::sleep_until(next_resync) => Trigger::Resync,
        };
        if trigger == Trigger::Event {
            if let Some(wait) = bucket.take(Instant::now()) {
                tokio::select! {
                    biased;
                    _ = stop.wait_for(|s| *s) => return,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The probe task.

async fn probe_loop(
    shared: Arc<Shared>,
    probe_now: Arc<Notify>,
    interval: Duration,
    mut stop: StopRx,
) {
    loop {
        let wait = interval.mul_f64(0.9 + 0.2 * random_unit());
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => return,
            _ = probe_now.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
        let Some((inputs, synced)) = shared.for_probe() else {
            continue;
        };
        let registries = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => return,
            r = probing::probe_round(&shared.cfg, &inputs, &synced) => r,
        };
        shared.apply_probe(registries);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{ProbeEntry, Problem, TrustEntry, Verdict};

    #[test]
    fn bucket_allows_a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(3, 10, t0);
        assert_eq!(b.take(t0), None);
        assert_eq!(b.take(t0), None);
        assert_eq!(b.take(t0), None);
        let wait = b.take(t0).unwrap();
        assert!(
            wait.abs_diff(Duration::from_millis(100)) < Duration::from_millis(1),
            "{wait:?}"
        );
        // After that wait, the token is there; the next one waits another 1/rate.
        let t1 = t0 + wait;
        let wait2 = b.take(t1).unwrap();
        assert!(
            wait2.abs_diff(Duration::from_millis(100)) < Duration::from_millis(1),
            "{wait2:?}"
        );
        // A quiet second refills up to the burst, not beyond.
        let t2 = t1 + Duration::from_secs(10);
        for _ in 0..3 {
            assert_eq!(b.take(t2), None);
        }
        assert!(b.take(t2).is_some());
    }

    fn reg(host: &str, trust: &[(&str, TrustState)], probes: &[(&str, Verdict)]) -> RegistryReport {
        RegistryReport {
            host: host.into(),
            verdict: Verdict::Unknown,
            message: String::new(),
            trust: trust
                .iter()
                .map(|(path, state)| TrustEntry {
                    runtime: "docker".into(),
                    path: path.to_string(),
                    state: *state,
                    detail: String::new(),
                })
                .collect(),
            probes: probes
                .iter()
                .map(|(rt, v)| ProbeEntry {
                    runtime: rt.to_string(),
                    verdict: *v,
                    message: String::new(),
                    cause: String::new(),
                    latency_ms: 0,
                    server_chain: vec![],
                    server_days_left: None,
                    warnings: vec![],
                    fix: String::new(),
                    ca_days_left: None,
                    trusted: vec![],
                    anchor: None,
                    runtime_version: String::new(),
                    go_version: String::new(),
                    runtime_message: String::new(),
                })
                .collect(),
            ca: None,
            harbor: None,
        }
    }

    fn synced(regs: Vec<RegistryReport>, problems: &[(&str, &str)]) -> Synced {
        let mut report = Report::new("n", time::OffsetDateTime::UNIX_EPOCH);
        let mut hosts = BTreeMap::new();
        for r in &regs {
            hosts.insert(
                crate::host::RegistryHost::parse(&r.host).unwrap(),
                CaChoice::None,
            );
        }
        report.registries = regs;
        report.problems = problems.iter().map(|(s, m)| Problem::new(*s, *m)).collect();
        Synced::new(
            report,
            Inputs {
                hosts,
                secrets: Default::default(),
                problems: vec![],
                complete: true,
            },
        )
    }

    type Summary = Vec<(Level, &'static str, String)>;

    fn summary(notes: &[Note]) -> Summary {
        notes
            .iter()
            .map(|n| (n.level, n.what, n.subject.clone()))
            .collect()
    }

    #[test]
    fn sync_transitions() {
        use Level::*;
        let ok = TrustState::Unchanged;
        let cases: Vec<(Option<Synced>, Synced, Summary)> = vec![
            (
                None,
                synced(vec![reg("a", &[("/d/a/ca.crt", ok)], &[])], &[]),
                vec![(Info, "registry managed", "a".into())],
            ),
            (
                Some(synced(vec![reg("a", &[("/d/a/ca.crt", ok)], &[])], &[])),
                synced(vec![reg("a", &[("/d/a/ca.crt", ok)], &[])], &[]),
                vec![],
            ),
            (
                Some(synced(vec![reg("a", &[], &[])], &[])),
                synced(vec![reg("a", &[], &[])], &[("/ca", "no certificate")]),
                vec![(Warn, "problem", "/ca".into())],
            ),
            (
                Some(synced(
                    vec![reg("a", &[], &[])],
                    &[("/ca", "no certificate")],
                )),
                synced(vec![reg("a", &[], &[])], &[]),
                vec![(Info, "problem cleared", "/ca".into())],
            ),
            (
                Some(synced(vec![reg("a", &[("/d/a/ca.crt", ok)], &[])], &[])),
                synced(
                    vec![reg("a", &[("/d/a/ca.crt", TrustState::Conflict)], &[])],
                    &[],
                ),
                vec![(Warn, "trust file needs attention", "/d/a/ca.crt".into())],
            ),
            (
                Some(synced(
                    vec![reg("a", &[("/d/a/ca.crt", TrustState::Conflict)], &[])],
                    &[],
                )),
                synced(vec![reg("a", &[("/d/a/ca.crt", ok)], &[])], &[]),
                vec![(Info, "trust file fine again", "/d/a/ca.crt".into())],
            ),
            (
                Some(synced(vec![reg("a", &[], &[]), reg("b", &[], &[])], &[])),
                synced(vec![reg("a", &[], &[])], &[]),
                vec![(Info, "registry no longer managed", "b".into())],
            ),
        ];
        for (i, (old, new, want)) in cases.into_iter().enumerate() {
            let got = sync_notes(old.as_ref(), &new);
            assert_eq!(summary(&got), want, "case {i}");
        }
    }

    #[test]
    fn the_quiet_pass_after_a_write_is_not_a_change() {
        let ok = TrustState::Unchanged;
        let quiet = synced(vec![reg("a", &[("/d/a/ca.crt", ok)], &[])], &[]);
        let cases = [
            // (pass, wrote, same steady state as the quiet pass)
            (
                synced(
                    vec![reg("a", &[("/d/a/ca.crt", TrustState::Installed)], &[])],
                    &[],
                ),
                true,
                true,
            ),
            (
                synced(
                    vec![reg(
                        "a",
                        &[("/d/a/ca.crt", ok), ("/x/b/ca.crt", TrustState::Removed)],
                        &[],
                    )],
                    &[],
                ),
                true,
                true,
            ),
            (
                synced(vec![reg("a", &[("/d/a/ca.crt", ok)], &[])], &[]),
                false,
                true,
            ),
            (
                synced(
                    vec![reg("a", &[("/d/a/ca.crt", ok)], &[])],
                    &[("/ca", "bad")],
                ),
                false,
                false,
            ),
            (
                synced(
                    vec![reg("a", &[("/d/a/ca.crt", TrustState::Conflict)], &[])],
                    &[],
                ),
                false,
                false,
            ),
            (
                synced(
                    vec![reg("a", &[("/d/a/ca.crt", ok)], &[]), reg("c", &[], &[])],
                    &[],
                ),
                false,
                false,
            ),
        ];
        for (i, (pass, w, same)) in cases.iter().enumerate() {
            assert_eq!(wrote(&pass.report), *w, "case {i}");
            assert_eq!(steady(pass) == steady(&quiet), *same, "case {i}");
        }
    }

    #[test]
    fn file_transitions() {
        let r = synced(
            vec![reg(
                "a",
                &[
                    ("/d/a/ca.crt", TrustState::Installed),
                    ("/c/a/hosts.toml", TrustState::Installed),
                    ("/x/a/ca.crt", TrustState::Removed),
                    ("/y/a/ca.crt", TrustState::Unchanged),
                ],
                &[],
            )],
            &[],
        );
        assert_eq!(
            summary(&file_notes(&r.report)),
            vec![
                (Level::Info, "CA installed", "/d/a/ca.crt".into()),
                (
                    Level::Info,
                    "trust file installed",
                    "/c/a/hosts.toml".into()
                ),
                (Level::Info, "CA removed", "/x/a/ca.crt".into()),
            ]
        );
    }

    #[test]
    fn verdict_transitions() {
        let m = |regs: Vec<RegistryReport>| -> BTreeMap<String, RegistryReport> {
            regs.into_iter().map(|r| (r.host.clone(), r)).collect()
        };
        let cases = vec![
            (
                m(vec![]),
                m(vec![reg("a", &[], &[("docker", Verdict::Unknown)])]),
                vec![],
            ),
            (
                m(vec![]),
                m(vec![reg("a", &[], &[("docker", Verdict::Ok)])]),
                vec![(Level::Info, "verdict changed", "a".to_string())],
            ),
            (
                m(vec![reg("a", &[], &[("docker", Verdict::Ok)])]),
                m(vec![reg("a", &[], &[("docker", Verdict::Ok)])]),
                vec![],
            ),
            (
                m(vec![reg("a", &[], &[("docker", Verdict::Ok)])]),
                m(vec![reg(
                    "a",
                    &[],
                    &[("docker", Verdict::UnknownAuthority)],
                )]),
                vec![(Level::Warn, "verdict changed", "a".to_string())],
            ),
        ];
        for (i, (old, new, want)) in cases.into_iter().enumerate() {
            assert_eq!(summary(&verdict_notes(&old, &new)), want, "case {i}");
        }
    }

    #[test]
    fn compose_takes_verdicts_from_probes_and_trust_from_sync() {
        let mut cur = Current {
            synced: Some(synced(
                vec![reg("a", &[("/d/a/ca.crt", TrustState::Unchanged)], &[])],
                &[],
            )),
            ..Current::default()
        };
        let mut probed = reg(
            "a",
            &[("/stale", TrustState::Error)],
            &[("docker", Verdict::Ok)],
        );
        probed.verdict = Verdict::Ok;
        cur.probed.insert("a".into(), probed);
        let r = compose(
            &cur,
            time::OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(5),
        );
        assert_eq!(r.generated_at, "1970-01-01T00:00:05Z");
        assert_eq!(r.registries[0].verdict, Verdict::Ok);
        assert_eq!(r.registries[0].probes.len(), 1);
        assert_eq!(r.registries[0].trust[0].path, "/d/a/ca.crt");
    }

    #[test]
    fn random_unit_is_in_range() {
        for _ in 0..1000 {
            let u = random_unit();
            assert!((0.0..1.0).contains(&u), "{u}");
        }
    }
}
