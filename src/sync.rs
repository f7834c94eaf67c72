//! One sync pass: read the inputs, validate them, work out the files every selected runtime
//! should have, apply, check the runtime configs, and describe it all as a report.
//! `regtrust sync` runs it once; the agent runs it on every change. Failing inputs are data
//! in the report, not early returns: one bad file never stops the other registries.

use crate::ca::CaBundle;
use crate::cli::{InputArgs, Output, SyncArgs};
use crate::host::RegistryHost;
use crate::pull_secret::PullSecrets;
use crate::report::{
    Problem, RegistryReport, Report, RuntimeDetection, TrustEntry, TrustState, Verdict,
};
use crate::runtime::Node;
use crate::trust::ledger::{self, LockWait, PassLock};
use crate::trust::{apply, checks, layout, Runtime};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A configuration error: exit code 2, nothing written.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--ca {value:?}: host {host:?}: {source}")]
    CaHost {
        value: String,
        host: String,
        source: crate::host::HostError,
    },
    #[error("--ca {value:?}: HOST must be a bare host[:port] (a CA applies to the whole registry, not a repository path): give --ca {host}=PATH")]
    CaHostPath { value: String, host: String },
    #[error("--ca {0:?}: empty path")]
    CaEmpty(String),
    #[error("--registry {value:?}: {source}")]
    Registry {
        value: String,
        source: crate::host::HostError,
    },
    #[error(transparent)]
    Runtime(#[from] layout::RuntimeSpecError),
    #[error("--host-root {0}: not a directory")]
    HostRoot(PathBuf),
    #[error("{0}")]
    GoVersion(String),
    #[error("--state-dir: {0}")]
    StateDir(#[from] ledger::StateDirError),
}

/// `--ca [HOST=]PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaSpec {
    pub host: Option<RegistryHost>,
    pub path: PathBuf,
}

impl CaSpec {
    /// `HOST=PATH` when the part before the first `=` has no `/`, or is a URL
    /// (`https://host[:port][/]`, accepted as `--registry` accepts it); `host/path=PATH`
    /// is refused (a CA is per host, not per repository); otherwise the whole value is a
    /// path (`./dir=x/ca.crt`, `/etc/ca=1.pem`).
    pub fn parse(value: &str) -> Result<CaSpec, ConfigError> {
        if let Some((host, path)) = value.split_once('=') {
            let lower = host.to_ascii_lowercase();
            let url = lower.starts_with("https://") || lower.starts_with("http://");
            let host_then_path = !url
                && host.contains('/')
                && !host.starts_with(['/', '.', '~'])
                && host.split('/').next().is_some_and(|h| {
                    (h.contains('.') || h.contains(':')) && RegistryHost::parse(h).is_ok()
                })
                && !std::path::Path::new(value).exists();
            if host_then_path {
                return Err(ConfigError::CaHostPath {
                    value: value.to_string(),
                    host: host.split('/').next().unwrap_or_default().to_string(),
                });
            }
            if url || (!host.contains('/') && !host.is_empty()) {
                let parsed = RegistryHost::parse(host).map_err(|source| match source {
                    crate::host::HostError::HasPath(_) => ConfigError::CaHostPath {
                        value: value.to_string(),
                        host: RegistryHost::parse(
                            lower
                                .trim_start_matches("https://")
                                .trim_start_matches("http://")
                                .split('/')
                                .next()
                                .unwrap_or_default(),
                        )
                        .map(|h| h.to_string())
                        .unwrap_or_else(|_| "HOST".into()),
                    },
                    source => ConfigError::CaHost {
                        value: value.to_string(),
                        host: host.to_string(),
                        source,
                    },
                })?;
                if path.is_empty() {
                    return Err(ConfigError::CaEmpty(value.to_string()));
                }
                return Ok(CaSpec {
                    host: Some(parsed),
                    path: PathBuf::from(path),
                });
            }
        }
        if value.is_empty() {
            return Err(ConfigError::CaEmpty(value.to_string()));
        }
        Ok(CaSpec {
            host: None,
            path: PathBuf::from(value),
        })
    }
}

/// The validated configuration of sync, probe and agent.
#[derive(Debug, Clone)]
pub struct Config {
    pub host_root: PathBuf,
    pub state_dir: PathBuf,
    pub runtimes: Vec<Runtime>,
    pub replace_foreign: bool,
    pub node: String,
    pub pull_secrets: Vec<PathBuf>,
    pub cas: Vec<CaSpec>,
    pub registries: Vec<RegistryHost>,
    /// `--go-version RUNTIME=X.Y`: the Go a runtime's verdict follows, over its binary's.
    pub go_versions: Vec<(String, crate::go::GoVersion)>,
}

impl Config {
    pub fn from_args(a: &InputArgs) -> Result<Config, ConfigError> {
        if !a.host_root.is_dir() {
            return Err(ConfigError::HostRoot(a.host_root.clone()));
        }
        let cas =
            a.ca.iter()
                .map(|v| CaSpec::parse(v))
                .collect::<Result<Vec<_>, _>>()?;
        let registries = a
            .registry
            .iter()
            .map(|v| {
                RegistryHost::parse(v).map_err(|source| ConfigError::Registry {
                    value: v.clone(),
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let runtimes = layout::select_runtimes(&a.runtime, &a.host_root)?;
        let go_versions = a
            .go_version
            .iter()
            .map(|v| crate::probe::runtime_go::parse_override(v).map_err(ConfigError::GoVersion))
            .collect::<Result<Vec<_>, _>>()?;
        let state_dir = a
            .state_dir
            .clone()
            .unwrap_or_else(|| a.host_root.join("var/lib/regtrust"));
        ledger::check_state_dir(&state_dir, &a.host_root)?;
        Ok(Config {
            state_dir,
            host_root: a.host_root.clone(),
            runtimes,
            replace_foreign: a.replace_foreign,
            node: node_name(a.node_name.as_deref()),
            pull_secrets: a.pull_secret.clone(),
            cas,
            registries,
            go_versions,
        })
    }
}

/// `--node-name`, else `$NODE_NAME` (clap reads both), else the kernel's hostname.
pub fn node_name(flag: Option<&str>) -> String {
    if let Some(n) = flag.filter(|n| !n.trim().is_empty()) {
        return n.trim().to_string();
    }
    if let Ok(n) = std::env::var("NODE_NAME") {
        if !n.trim().is_empty() {
            return n.trim().to_string();
        }
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

/// The CA regtrust should install for a host.
#[derive(Debug, Clone)]
pub enum CaChoice {
    /// No CA input applies: the runtime uses the system roots, regtrust installs nothing.
    None,
    Valid(Arc<CaBundle>),
    /// The input applies but is invalid now: keep what is installed (last known good).
    Invalid {
        source: String,
    },
}

/// Everything read from the inputs in one pass.
#[derive(Debug)]
pub struct Inputs {
    pub hosts: BTreeMap<RegistryHost, CaChoice>,
    pub secrets: PullSecrets,
    pub problems: Vec<Problem>,
    /// False when some input file could not be read at all (then nothing is stale).
    pub complete: bool,
}

pub fn read_inputs(cfg: &Config) -> Inputs {
    let secrets = PullSecrets::read_all(&cfg.pull_secrets);
    let mut problems = secrets.problems.clone();
    let complete = secrets.incomplete.is_empty();

    let mut global: Option<CaChoice> = None;
    let mut per_host: BTreeMap<RegistryHost, CaChoice> = BTreeMap::new();
    let mut invalid = Vec::new();
    let mut complete = complete;
    for spec in &cfg.cas {
        if is_unfilled_secret_volume(&spec.path) {
            // An optional Secret that does not exist (yet): kubelet mounts an empty dir and
            // fills it in when the Secret appears. Not a problem (the manifests mount the CA
            // optionally), and no CA to install; nothing is removed this pass either, so a CA
            // installed before the Secret went away stays.
            complete = false;
            continue;
        }
        let choice = match CaBundle::read(&spec.path) {
            Ok(b) => CaChoice::Valid(Arc::new(b)),
            Err(e) => {
                // The error names the file; the problem's source carries it instead.
                let source = format!("CA input {}", spec.path.display());
                let full = e.to_string();
                let why = full.strip_prefix(&format!("{source}: ")).unwrap_or(&full);
                invalid.push((spec.host.clone(), source, why.to_string()));
                CaChoice::Invalid {
                    source: spec.path.display().to_string(),
                }
            }
        };
        match &spec.host {
            Some(h) => {
                per_host.insert(h.clone(), choice);
            }
            None => global = Some(choice),
        }
    }

    let mut hosts: BTreeMap<RegistryHost, CaChoice> = BTreeMap::new();
    let managed = secrets
        .hosts
        .keys()
        .chain(cfg.registries.iter())
        .chain(per_host.keys());
    for h in managed {
        let choice = per_host
            .get(h)
            .or(global.as_ref())
            .cloned()
            .unwrap_or(CaChoice::None);
        hosts.insert(h.clone(), choice);
    }
    for (host, source, why) in invalid {
        // "The last good CA stays installed" only where one is (issue 15 point 4).
        let affected: Vec<&RegistryHost> = match &host {
            Some(h) => vec![h],
            None => hosts
                .iter()
                .filter(|(h, _)| !per_host.contains_key(*h))
                .map(|(h, _)| h)
                .collect(),
        };
        let installed = affected.iter().any(|h| ca_installed(cfg, h));
        let tail = if installed {
            "; the last good CA stays installed".to_string()
        } else if affected.is_empty() {
            "; no registry uses it yet".to_string()
        } else {
            "; no CA was installed for it before, so none is installed now".to_string()
        };
        problems.push(Problem::new(source, format!("{why}{tail}")));
    }
    if hosts.len() > MAX_MANAGED_HOSTS {
        // A secret with thousands of keys must not fill the node's /etc, its probe rounds
        // and its report: manage the first hosts in sorted order, report the rest, and
        // remove nothing this pass (a dropped host may own files; they stay).
        let dropped: Vec<RegistryHost> = hosts.keys().skip(MAX_MANAGED_HOSTS).cloned().collect();
        for h in &dropped {
            hosts.remove(h);
        }
        problems.push(Problem::new(
            "inputs",
            format!(
                "{} registries named; regtrust manages at most {MAX_MANAGED_HOSTS} (the first in sorted order) \
                 and installs nothing for the other {}, from {}",
                MAX_MANAGED_HOSTS + dropped.len(),
                dropped.len(),
                dropped.first().map(|h| h.as_str()).unwrap_or_default()
            ),
        ));
        complete = false;
    }
    Inputs {
        hosts,
        secrets,
        problems,
        complete,
    }
}

/// Whether any selected runtime has a `ca.crt` for `host` now.
fn ca_installed(cfg: &Config, host: &RegistryHost) -> bool {
    cfg.runtimes.iter().any(|&rt| {
        host.dir_names().iter().any(|d| {
            let rel = layout::host_dir(rt, d).join(layout::CA_FILE);
            matches!(
                apply::observe(&cfg.host_root, &rel),
                crate::trust::plan::OnDisk::File { .. }
            )
        })
    })
}

/// A directory with no entries at all: what kubelet mounts for an optional Secret volume
/// whose Secret does not exist. A Secret kubelet has projected always has `..data` (even a
/// Secret without the key, which stays a problem: CaError::DirWithoutCa).
fn is_unfilled_secret_volume(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
        && std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_none())
}

/// The most registries one node manages: the aggregator admits 256 per report.
pub const MAX_MANAGED_HOSTS: usize = 256;

/// The result of one pass.
pub struct SyncResult {
    pub report: Report,
    /// True when a file changed on disk.
    pub wrote: bool,
    pub inputs: Inputs,
}

/// How a pass treats what it does not name (issue 15 point 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassMode {
    /// Remove owned files the pass does not want (the agent: its inputs are the whole
    /// desired state). Without it, nothing owned is removed: a hand-run `sync --ca H=CA`
    /// adds H and leaves every other registry, and every other runtime, as it is.
    pub prune: bool,
    /// Print the plan, change nothing.
    pub dry_run: bool,
}

impl PassMode {
    /// The agent's passes.
    pub const AGENT: PassMode = PassMode {
        prune: true,
        dry_run: false,
    };
}

/// One agent pass (prunes what its inputs no longer name).
pub fn sync_once(cfg: &Config, now: time::OffsetDateTime) -> SyncResult {
    sync_pass(cfg, now, PassMode::AGENT)
}

/// One pass, holding the state dir's lock (waiting for a pass that holds it: the agent's
/// way; issue 9 point 5). When the lock cannot be taken at all, the pass writes and
/// removes nothing and its report says why.
pub fn sync_pass(cfg: &Config, now: time::OffsetDateTime, mode: PassMode) -> SyncResult {
    let inputs = read_inputs(cfg);
    if !needs_lock(mode, &inputs) {
        return sync_locked(cfg, now, mode, inputs, None);
    }
    let waiting = |lock: &std::path::Path| {
        tracing::info!(lock = %lock.display(), "another regtrust pass holds the lock; waiting for it");
    };
    match PassLock::acquire(&cfg.state_dir, &cfg.host_root, LockWait::Forever, waiting) {
        Ok(lock) => sync_locked(cfg, now, mode, inputs, Some(&lock)),
        Err(e) => refused_pass(cfg, now, inputs, &e),
    }
}

/// A dry run, or a pass held by its pull secrets, changes nothing on disk, not even the
/// state dir (its lock file): it takes no lock.
pub fn needs_lock(mode: PassMode, inputs: &Inputs) -> bool {
    crate::sync_mode::hold_reason(mode, &inputs.secrets).is_none()
}

/// A pass that could not lock the state dir: the inputs as read, nothing done.
fn refused_pass(
    cfg: &Config,
    now: time::OffsetDateTime,
    inputs: Inputs,
    e: &ledger::LockError,
) -> SyncResult {
    let mut report = Report::new(cfg.node.clone(), now);
    report.registries = inputs
        .hosts
        .keys()
        .map(|h| RegistryReport {
            host: h.to_string(),
            verdict: Verdict::Unknown,
            message: "nothing installed or removed: the state dir cannot be used".into(),
            trust: Vec::new(),
            probes: Vec::new(),
            ca: None,
            harbor: None,
        })
        .collect();
    report.problems.push(Problem::new(
        format!("state dir {}", cfg.state_dir.display()),
        format!("{e}; nothing was installed or removed in this pass"),
    ));
    report.problems.extend(inputs.problems.iter().cloned());
    SyncResult {
        report,
        wrote: false,
        inputs,
    }
}

/// One pass on inputs read just before; the caller holds the state dir's lock (`lock`;
/// None only when `needs_lock` says so).
pub fn sync_locked(
    cfg: &Config,
    now: time::OffsetDateTime,
    mode: PassMode,
    inputs: Inputs,
    lock: Option<&PassLock>,
) -> SyncResult {
    // The runtime configs, read once for the writer, the checks and the report.
    let node = Node::read(&cfg.host_root, &cfg.runtimes);
    let mut targets = Vec::new();
    let mut retained = BTreeSet::new();
    let owned_now = ledger::Ledger::load(&cfg.state_dir).ok();
    for (host, choice) in &inputs.hosts {
        match choice {
            CaChoice::Valid(bundle) => {
                let pem = bundle.to_pem();
                for &rt in &cfg.runtimes {
                    let Some(root) = node.trust_root(rt).filter(|_| node.writes_for(rt, host))
                    else {
                        continue;
                    };
                    targets.extend(layout::targets_in(host, rt, &root, &pem));
                }
            }
            CaChoice::Invalid { .. } => {
                retained.insert(host.to_string());
                if let Some(l) = &owned_now {
                    targets.extend(last_good_targets(cfg, l, host, lock.is_some()));
                }
            }
            CaChoice::None => {}
        }
    }
    let kept = crate::sync_mode::keep_unnamed(cfg, mode, &targets, &mut retained);
    let hold = crate::sync_mode::hold_reason(mode, &inputs.secrets);
    let outcome = apply::apply(&apply::ApplyRequest {
        host_root: &cfg.host_root,
        state_dir: &cfg.state_dir,
        targets: &targets,
        retained_hosts: &retained,
        remove_stale: inputs.complete && node.complete(),
        replace_foreign: cfg.replace_foreign,
        hold: hold.as_deref(),
    });
    let wrote = outcome.files.iter().any(|f| f.wrote);

    let mut report = Report::new(cfg.node.clone(), now);
    report.runtimes = crate::runtime::detect(&cfg.host_root)
        .into_iter()
        .map(|d| RuntimeDetection {
            runtime: d.runtime.as_str().to_string(),
            selected: cfg.runtimes.contains(&d.runtime),
            evidence: d.evidence,
        })
        .collect();
    for &rt in &cfg.runtimes {
        if !report.runtimes.iter().any(|d| d.runtime == rt.as_str()) {
            report.runtimes.push(RuntimeDetection {
                runtime: rt.as_str().to_string(),
                selected: true,
                evidence: vec!["--runtime".to_string()],
            });
        }
    }
    let mut by_host: BTreeMap<String, RegistryReport> = BTreeMap::new();
    for (host, choice) in &inputs.hosts {
        let mut r = RegistryReport {
            host: host.to_string(),
            verdict: Verdict::Unknown,
            message: String::new(),
            trust: Vec::new(),
            probes: Vec::new(),
            ca: None,
            harbor: None,
        };
        match choice {
            CaChoice::Valid(bundle) => {
                r.ca = Some(bundle.summary(now));
                for w in bundle.warnings(now) {
                    report.problems.push(Problem::new(
                        bundle.source().to_string(),
                        format!("{w} (installed for {host}, but flagged)"),
                    ));
                }
            }
            CaChoice::Invalid { source } => {
                r.trust = retained_entries(cfg, &node, host, source);
            }
            CaChoice::None => {}
        }
        by_host.insert(host.to_string(), r);
    }
    for f in &outcome.files {
        let r = by_host
            .entry(f.host.clone())
            .or_insert_with(|| RegistryReport {
                host: f.host.clone(),
                verdict: Verdict::Unknown,
                message: "no longer managed".into(),
                trust: Vec::new(),
                probes: Vec::new(),
                ca: None,
                harbor: None,
            });
        let mut entry = TrustEntry {
            runtime: f.runtime.clone(),
            path: f.path.display().to_string(),
            state: f.state,
            detail: f.detail.clone(),
        };
        // A host whose CA input is invalid: its owned files were kept (or restored) from
        // the last good copy; say so in place of the plain "stays installed" entry.
        if let Some(CaChoice::Invalid { source }) = RegistryHost::parse(&f.host)
            .ok()
            .and_then(|h| inputs.hosts.get(&h))
        {
            match entry.state {
                TrustState::Unchanged if entry.detail.is_empty() => {
                    entry.detail =
                        format!("CA input {source} is invalid; the last good CA stays installed")
                }
                TrustState::Installed => {
                    entry.detail = format!(
                        "restored the last good copy (kept in the state dir): it was deleted or changed, \
                         and CA input {source} is invalid"
                    )
                }
                _ => {}
            }
            r.trust.retain(|t| t.path != entry.path);
        }
        r.trust.push(entry);
    }
    crate::sync_mode::report_kept(cfg, &kept, &mut by_host);
    report.registries = by_host.into_values().collect();
    report.problems.extend(inputs.problems.iter().cloned());
    if let (Some(why), false) = (&hold, mode.dry_run) {
        report.problems.push(Problem::new(
            "pull secrets",
            format!("nothing written or removed: {why}"),
        ));
    }
    let hosts: Vec<RegistryHost> = inputs.hosts.keys().cloned().collect();
    report.problems.extend(checks::check(&node, &hosts));
    let ledger = apply_ledger_source(cfg);
    report.problems.extend(
        outcome
            .ledger_problems
            .iter()
            .map(|m| Problem::new(ledger.clone(), m.clone())),
    );
    SyncResult {
        report,
        wrote,
        inputs,
    }
}

fn apply_ledger_source(cfg: &Config) -> String {
    crate::trust::ledger::Ledger::path(&cfg.state_dir)
        .display()
        .to_string()
}

/// For a host whose CA input is invalid: the files regtrust owns for it, with the content
/// it last wrote (kept in the state dir), so one deleted or edited is restored. A ledger
/// from before the copies were kept: the copy is taken from the disk while it still
/// matches (`keep`: not in a dry run).
fn last_good_targets(
    cfg: &Config,
    owned: &ledger::Ledger,
    host: &RegistryHost,
    keep: bool,
) -> Vec<layout::Target> {
    let mut out = Vec::new();
    for (rel, o) in &owned.files {
        if o.host != host.as_str() {
            continue;
        }
        let Some(&runtime) = cfg.runtimes.iter().find(|r| r.as_str() == o.runtime) else {
            continue;
        };
        let kind = match rel.file_name().and_then(|n| n.to_str()) {
            Some(layout::CA_FILE) => layout::FileKind::Ca,
            Some(layout::HOSTS_TOML) => layout::FileKind::HostsToml,
            _ => continue,
        };
        let content =
            ledger::last_good(&cfg.state_dir, &o.sha256).or_else(|| {
                match apply::observe(&cfg.host_root, rel) {
                    crate::trust::plan::OnDisk::File {
                        bytes,
                        truncated: false,
                    } if crate::ca::sha256_hex(&bytes) == o.sha256 => {
                        if keep {
                            ledger::keep_last_good(&cfg.state_dir, &bytes).ok()?;
                        }
                        Some(bytes)
                    }
                    _ => None,
                }
            });
        if let Some(content) = content {
            out.push(layout::Target {
                host: host.clone(),
                runtime,
                kind,
                rel_path: rel.clone(),
                content,
            });
        }
    }
    out
}

/// For a host whose CA input is invalid: say what stays installed.
fn retained_entries(
    cfg: &Config,
    node: &Node,
    host: &RegistryHost,
    source: &str,
) -> Vec<TrustEntry> {
    let mut out = Vec::new();
    for &rt in &cfg.runtimes {
        let Some(root) = node.trust_root(rt).filter(|_| node.writes_for(rt, host)) else {
            continue;
        };
        for dir_name in host.dir_names() {
            let rel = root.join(&dir_name).join(layout::CA_FILE);
            let path = cfg.host_root.join(&rel);
            let (state, detail) = match apply::observe(&cfg.host_root, &rel) {
                crate::trust::plan::OnDisk::File { .. } => (
                    TrustState::Unchanged,
                    format!("CA input {source} is invalid; the last good CA stays installed"),
                ),
                _ => (
                    TrustState::Missing,
                    format!("CA input {source} is invalid and no CA was installed before"),
                ),
            };
            out.push(TrustEntry {
                runtime: rt.as_str().to_string(),
                path: path.display().to_string(),
                state,
                detail,
            });
        }
    }
    out
}

/// Run `regtrust sync` and return the process exit code.
pub fn run_cli(args: &SyncArgs) -> u8 {
    let cfg = match Config::from_args(&args.inputs) {
        Ok(c) => c,
        Err(e) => {
            crate::cli::print_error("sync", &e);
            return 2;
        }
    };
    if cfg.runtimes.is_empty() {
        eprintln!("regtrust sync: {}", crate::sync_mode::no_runtime(&cfg));
        return 1;
    }
    let mode = PassMode {
        prune: args.prune,
        dry_run: args.dry_run,
    };
    // The lock (not for a pass that changes nothing): waiting at most --lock-wait for
    // another pass, then exit 2 having written nothing.
    let inputs = read_inputs(&cfg);
    let lock = if !needs_lock(mode, &inputs) {
        None
    } else {
        let waiting = |lock: &std::path::Path| {
            eprintln!(
                "regtrust sync: another regtrust pass (the agent, or another sync) holds {}; waiting up to {:?}",
                lock.display(),
                args.lock_wait
            );
        };
        match PassLock::acquire(
            &cfg.state_dir,
            &cfg.host_root,
            LockWait::For(args.lock_wait),
            waiting,
        ) {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("regtrust sync: {e}");
                return 2;
            }
        }
    };
    let result = sync_locked(
        &cfg,
        time::OffsetDateTime::now_utc(),
        mode,
        inputs,
        lock.as_ref(),
    );
    drop(lock);
    match args.output {
        Output::Json => crate::cli::emit(&format!("{}\n", result.report.to_json())),
        Output::Text if mode.dry_run => crate::cli::emit(&format!(
            "dry run: nothing is written or removed; the plan:\n{}",
            result.report.to_text()
        )),
        Output::Text => crate::cli::emit(&result.report.to_text()),
    }
    u8::from(result.report.needs_attention())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(root: &Path, cas: &[&Path], registries: &[&str]) -> Config {
        Config {
            host_root: root.to_path_buf(),
            state_dir: root.join("var/lib/regtrust"),
            runtimes: vec![],
            replace_foreign: false,
            node: "n".into(),
            pull_secrets: vec![],
            cas: cas
                .iter()
                .map(|p| CaSpec::parse(&p.to_string_lossy()).unwrap())
                .collect(),
            registries: registries
                .iter()
                .map(|r| RegistryHost::parse(r).unwrap())
                .collect(),
            go_versions: Vec::new(),
        }
    }

    #[test]
    fn an_absent_optional_ca_secret_is_no_problem_and_removes_nothing() {
        let d = tempfile::tempdir().unwrap();
        // kubelet's empty dir for an optional Secret that does not exist.
        let unfilled = d.path().join("ca");
        std::fs::create_dir(&unfilled).unwrap();
        let inputs = read_inputs(&config(d.path(), &[&unfilled], &["harbor.example.com"]));
        assert!(inputs.problems.is_empty(), "{:?}", inputs.problems);
        assert!(
            !inputs.complete,
            "nothing stale is removed while the CA is absent"
        );
        let h = RegistryHost::parse("harbor.example.com").unwrap();
        assert!(matches!(inputs.hosts[&h], CaChoice::None));

        // A projected Secret without the key (..data present, no ca.crt) stays a problem.
        let projected = d.path().join("projected");
        std::fs::create_dir_all(projected.join("..2026_01_01_00_00_00.1")).unwrap();
        std::os::unix::fs::symlink("..2026_01_01_00_00_00.1", projected.join("..data")).unwrap();
        let inputs = read_inputs(&config(d.path(), &[&projected], &["harbor.example.com"]));
        assert_eq!(inputs.problems.len(), 1, "{:?}", inputs.problems);
        assert!(inputs.problems[0].message.contains("without ca.crt"));
        assert!(matches!(inputs.hosts[&h], CaChoice::Invalid { .. }));

        // A missing path is still a problem (a typo is not an absent Secret).
        let inputs = read_inputs(&config(
            d.path(),
            &[&d.path().join("typo")],
            &["harbor.example.com"],
        ));
        assert_eq!(inputs.problems.len(), 1, "{:?}", inputs.problems);
    }

    #[test]
    fn ca_spec_forms() {
        let ok = [
            (
                "harbor.local=/ca/ca.crt",
                Some("harbor.local"),
                "/ca/ca.crt",
            ),
            (
                "harbor.local:8443=ca.pem",
                Some("harbor.local:8443"),
                "ca.pem",
            ),
            ("/etc/regtrust/ca", None, "/etc/regtrust/ca"),
            ("./dir=with=equals/ca.crt", None, "./dir=with=equals/ca.crt"),
            ("ca.crt", None, "ca.crt"),
        ];
        for (v, host, path) in ok {
            let s = CaSpec::parse(v).unwrap();
            assert_eq!(s.host.as_ref().map(|h| h.as_str()), host, "{v}");
            assert_eq!(s.path, PathBuf::from(path), "{v}");
        }
        // URLs, as --registry takes them.
        for (v, host) in [
            ("https://harbor.local=ca.pem", "harbor.local"),
            ("https://Harbor.Local:8443/=ca.pem", "harbor.local:8443"),
            ("http://10.0.0.5:5000=ca.pem", "10.0.0.5:5000"),
        ] {
            let s = CaSpec::parse(v).unwrap();
            assert_eq!(s.host.as_ref().map(|h| h.as_str()), Some(host), "{v}");
            assert_eq!(s.path, PathBuf::from("ca.pem"), "{v}");
        }
        for (v, want) in [
            ("harbor.local/library=ca.pem", "give --ca harbor.local=PATH"),
            (
                "https://harbor.local:8443/v2/x=ca.pem",
                "give --ca harbor.local:8443=PATH",
            ),
        ] {
            let e = CaSpec::parse(v).unwrap_err().to_string();
            assert!(
                e.contains("HOST must be a bare host[:port]") && e.contains(want),
                "{v}: {e}"
            );
        }
        for bad in ["", "harbor.local=", "a b=ca.crt", "..=ca.crt"] {
            assert!(CaSpec::parse(bad).is_err(), "{bad}");
        }
    }
}
