//! `probe`: checks each registry from this node the way its container runtimes would, and
//! names the cause while there is time to fix it. One TLS handshake per host captures the
//! presented chain; each runtime's trust view then decides with Go's own rules; one HTTP
//! check (`/v2/`, credentials, Harbor health) follows when some runtime accepts the TLS.
//! Hosts are probed concurrently, each within its timeout, so a sweep costs about the
//! slowest host.
//!
//! Layout:
//! - what each runtime trusts for a host comes from `runtime::Node::view` (the runtime's own
//!   module) and `runtime::system` (the OS roots).
//! - `net`: resolve, connect, handshake; failures in Go's words.
//! - `crate::go` (re-exported here as `gox509`, `signature`, `goverify`): the Go port, the
//!   verdict of record.
//! - `cause`: the `cause` of an unknown authority (regtrust's analysis, not Go's).
//! - `capture`: a permissive rustls verifier that records the presented chain and checks
//!   handshake signatures itself.
//! - `classify`: one runtime's TLS verdict, cause, fix and expiry warnings.
//! - `registry`: `GET /v2/`, challenges, token and basic-auth checks of the pull secret.
//! - `credtls`: the trust every connection carrying credentials is verified with.
//! - `harbor`: Harbor's `/api/v2.0/health`, and whether an untrusted registry is Harbor (for
//!   the getcert hint only).
//! - `text`: the report for people.
//!
//! Entry points: [`probe_all`] (the agent's periodic rounds) and [`run_cli`]
//! (`regtrust probe`).

pub mod capture;
pub mod cause;
pub mod classify;
pub mod credtls;
pub mod harbor;
pub mod net;
pub mod registry;
pub mod runtime_go;
pub mod text;

// The Go port moved to `crate::go`; these names keep the probe's own spellings.
pub use crate::go::signature;
pub use crate::go::verify as goverify;
pub use crate::go::x509 as gox509;

#[cfg(test)]
pub(crate) use crate::go::pki;

use crate::ca::CaBundle;
use crate::cli::{Output, ProbeArgs};
use crate::host::RegistryHost;
use crate::report::{
    worst, CaCert, CaSummary, HarborHealth, ProbeEntry, RegistryReport, Report, Verdict,
};
use crate::runtime::view::{RuntimeView, SystemRoots};
use crate::sync::{self, CaChoice, Config, Inputs};
use classify::{Presented, TlsDecision, ViewTrust};
use registry::{Cred, HttpVerdict};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// Default per-host timeout of `regtrust probe`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Probe `hosts` concurrently, each within `timeout`, as this node's selected runtimes
/// (`cfg.runtimes`; the system roots alone when none is installed) would see them. Uses the
/// inputs for credentials (`inputs.secrets`) and to word fixes (`inputs.hosts`' CA). One
/// report per host, in the order given. Never fails: every failure is a verdict.
pub async fn probe_all(
    cfg: &Config,
    inputs: &Inputs,
    hosts: &[RegistryHost],
    timeout: Duration,
) -> Vec<RegistryReport> {
    let host_root = cfg.host_root.clone();
    let runtimes = cfg.runtimes.clone();
    let go_overrides = cfg.go_versions.clone();
    let hs = hosts.to_vec();
    // Reading the trust files is plain blocking I/O: off the async threads.
    let loaded = tokio::task::spawn_blocking(move || {
        let system = crate::runtime::system::system_roots_cached(&host_root);
        let node = crate::runtime::Node::read(&host_root, &runtimes);
        // The Go of each runtime, read once per round (the binaries are cached by stamp).
        let gos = runtime_gos(&node, &go_overrides);
        // Each view with its trust pool, built once per round (the system pool once per Go
        // release) and used for every connection of its registry's probe.
        let views: Vec<Vec<ViewTrust>> = hs
            .iter()
            .map(|h| view_trusts(&node, h, &gos, &system))
            .collect();
        (system, views, gos)
    })
    .await;
    let (system, views, gos) = match loaded {
        Ok(v) => v,
        Err(e) => {
            return hosts
                .iter()
                .map(|h| failed_report(h, &format!("reading the trust files failed: {e}")))
                .collect()
        }
    };
    let gos = Arc::new(gos);
    let mut tasks = tokio::task::JoinSet::new();
    for (i, (host, views)) in hosts.iter().cloned().zip(views).enumerate() {
        let job = HostJob {
            gos: gos.clone(),
            creds: credentials(inputs, &host),
            expected: match inputs.hosts.get(&host) {
                Some(CaChoice::Valid(b)) => Some(b.clone()),
                _ => None,
            },
            host,
            views,
            system: system.clone(),
            timeout,
        };
        tasks.spawn(async move { (i, probe_host(job).await) });
    }
    let mut out: Vec<Option<(RegistryReport, bool)>> = vec![None; hosts.len()];
    while let Some(done) = tasks.join_next().await {
        if let Ok((i, report)) = done {
            out[i] = Some(report);
        }
    }
    out.into_iter()
        .zip(hosts)
        .map(|(r, h)| r.unwrap_or_else(|| (failed_report(h, "the probe task failed"), false)))
        .map(|(mut r, harbor_untrusted)| {
            let harbor = r.harbor.is_some() || harbor_untrusted;
            for p in &mut r.probes {
                p.fix = paste_safe_fix(&p.fix, &cfg.host_root, harbor);
            }
            r
        })
        .collect()
}

/// A fix line as an operator pastes it (issue 15 points 2 and 4): the `regtrust sync`
/// it names carries the probe's `--host-root` when that is not `/`, and Harbor's getcert
/// hint stays only where the registry was seen to be Harbor (its `/api/v2.0/health` over a
/// trusted connection, or `harbor::identify` over the untrusted one).
fn paste_safe_fix(fix: &str, host_root: &std::path::Path, harbor: bool) -> String {
    let mut out = fix.to_string();
    if !harbor {
        if let Some(at) = out.find("; Harbor publishes it at ") {
            let end = out[at..]
                .find("getcert")
                .map(|i| at + i + "getcert".len())
                .unwrap_or(out.len());
            out.replace_range(at..end, "");
        }
    }
    if host_root != std::path::Path::new("/") {
        let root = host_root.display().to_string();
        let quoted = if root
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:@".contains(&b))
        {
            root
        } else {
            format!("'{}'", root.replace('\'', r"'\''"))
        };
        out = out
            .replace(
                "`regtrust sync --ca ",
                &format!("`regtrust sync --host-root {quoted} --ca "),
            )
            .replace(
                "`regtrust sync`",
                &format!("`regtrust sync --host-root {quoted}`"),
            );
    }
    out
}

/// The credentials kubelet would try for `host`, in its order; entries without any are
/// skipped (kubelet pulls anonymously with them).
fn credentials(inputs: &Inputs, host: &RegistryHost) -> Vec<Cred> {
    inputs
        .secrets
        .credentials_for(host)
        .into_iter()
        .filter(|c| c.has_secret())
        .map(|c| Cred::new(&c.username, c.password(), c.source.display().to_string()))
        .collect()
}

fn failed_report(host: &RegistryHost, why: &str) -> RegistryReport {
    RegistryReport {
        host: host.to_string(),
        verdict: Verdict::Unknown,
        message: why.to_string(),
        trust: Vec::new(),
        probes: Vec::new(),
        ca: None,
        harbor: None,
    }
}

struct HostJob {
    /// The Go of each runtime, by wire name.
    gos: Arc<BTreeMap<String, runtime_go::RuntimeGo>>,
    host: RegistryHost,
    views: Vec<ViewTrust>,
    system: Arc<SystemRoots>,
    creds: Vec<Cred>,
    expected: Option<Arc<CaBundle>>,
    timeout: Duration,
}

impl HostJob {
    fn go_of(&self, view: &RuntimeView) -> runtime_go::RuntimeGo {
        self.gos.get(&view.runtime).cloned().unwrap_or_default()
    }
}

/// One host's report, and whether it was identified as Harbor over a connection no runtime
/// trusted (it decides the getcert hint, nothing else).
async fn probe_host(job: HostJob) -> (RegistryReport, bool) {
    let start = Instant::now();
    let deadline = start + job.timeout;
    let now = OffsetDateTime::now_utc();
    let host = &job.host;
    let dial = endpoint(host);
    let capture = capture::ChainCapture::new();
    let handshake = match capture::client_config(&capture) {
        Ok(config) => net::handshake(&dial, Arc::new(config), || capture.chain(), deadline).await,
        Err(e) => Err(net::NetFailure {
            verdict: Verdict::TlsError,
            message: format!("tls: cannot build a client config: {e}"),
        }),
    };

    let mut harbor: Option<HarborHealth> = None;
    let mut harbor_untrusted = false;
    let mut entries = Vec::new();
    match handshake {
        Err(failure) => {
            let fix = net_fix(&failure, &dial, job.timeout);
            for view in job.views.iter().map(|t| &t.view) {
                let mut e = entry(view, now);
                e.warnings = classify::expiry_warnings(
                    &Presented::new(Vec::new()),
                    view,
                    None,
                    &job.system,
                    now,
                );
                e.warnings.extend(view.notes.iter().cloned());
                e.verdict = failure.verdict;
                e.message = failure.message.clone();
                e.fix = fix.clone();
                entries.push(e);
            }
        }
        Ok(hs) => {
            let chain = Arc::new(Presented::new(hs.chain));
            let decisions = decide_all(
                &job.views,
                &job.system,
                &chain,
                &dial,
                now,
                job.expected.as_deref(),
            );
            // The HTTP check's connections are judged by the views that accepted the
            // first one (`credtls`), with the same pools and the chain parsed already;
            // `slot[i]` is view i's place among them.
            let mut accepting = Vec::new();
            let mut slot = vec![None; job.views.len()];
            for (i, (t, d)) in job.views.iter().zip(&decisions).enumerate() {
                if d.verdict == Verdict::Ok {
                    slot[i] = Some(accepting.len());
                    accepting.push(t.clone());
                }
            }
            let judge = credtls::ViewJudge::new(
                &dial,
                accepting,
                job.system.clone(),
                now,
                Some(chain.clone()),
            );
            let http = if slot.iter().any(Option::is_some) {
                let (http, h) =
                    http_check(&dial, hs.addr, &job.creds, judge.clone(), deadline).await;
                harbor = h;
                Some(http)
            } else {
                // No runtime trusts the certificate: the CA is the fix, and for Harbor the
                // fix names getcert, so ask whether it is Harbor (no credentials sent).
                if decisions.iter().any(|d| d.cause == "ca_not_installed") {
                    harbor_untrusted = untrusted_is_harbor(&dial, hs.addr, deadline).await;
                }
                None
            };
            for (i, (view, d)) in job.views.iter().map(|t| &t.view).zip(decisions).enumerate() {
                let refused = slot[i].and_then(|k| judge.rejection(k));
                let mut e = entry(view, now);
                e.runtime_version = job.go_of(view).runtime_version;
                e.go_version = job.go_of(view).go_version;
                e.server_chain = chain.server_chain();
                e.server_days_left = chain.leaf().map(|l| l.days_left(now));
                e.warnings =
                    classify::expiry_warnings(&chain, view, d.anchor.as_ref(), &job.system, now);
                e.warnings.extend(view.notes.iter().cloned());
                e.anchor = d.anchor;
                match (&http, d.verdict) {
                    (Some(_), Verdict::Ok) if refused.is_some() => {
                        if let Some(r) = refused {
                            e.verdict = r.verdict;
                            e.message = r.message;
                            e.cause = r.cause;
                            e.fix = r.fix;
                        }
                    }
                    (Some(h), Verdict::Ok) => {
                        e.verdict = h.verdict;
                        e.message = h.message.clone();
                        e.fix = h.fix.clone();
                        e.warnings.extend(h.warnings.iter().cloned());
                    }
                    _ => {
                        e.verdict = d.verdict;
                        if d.runtime_message != d.message {
                            e.runtime_message = d.runtime_message;
                        }
                        e.message = d.message;
                        e.cause = d.cause;
                        e.fix = d.fix;
                    }
                }
                entries.push(e);
            }
        }
    }
    let latency = start.elapsed().as_millis().min(u64::MAX as u128) as u64;
    if let Some(w) = harbor.as_ref().and_then(harbor::unhealthy_warning) {
        for e in &mut entries {
            e.warnings.push(w.clone());
        }
    }
    for e in &mut entries {
        e.latency_ms = latency;
    }
    let verdict = worst(entries.iter().map(|e| e.verdict));
    let message = entries
        .iter()
        .find(|e| e.verdict == verdict)
        .map(|e| e.message.clone())
        .unwrap_or_default();
    let report = RegistryReport {
        host: host.to_string(),
        verdict,
        message,
        trust: Vec::new(),
        ca: ca_summary(
            job.expected.as_deref(),
            job.views.iter().map(|t| &t.view),
            now,
        ),
        probes: entries,
        harbor,
    };
    (report, harbor_untrusted)
}

/// Whether `host` (at `addr`, the address the handshake used) is Harbor, asked over a
/// connection whose certificate is accepted unverified: no runtime trusts it, so the pull
/// secret's credentials never go there (issue 9 point 2, `credtls`). The client has no
/// credentials, no cookies and follows no redirect; the answer decides the getcert hint only.
async fn untrusted_is_harbor(
    host: &RegistryHost,
    addr: std::net::SocketAddr,
    deadline: Instant,
) -> bool {
    let Ok(tls) = capture::client_config(&capture::ChainCapture::new()) else {
        return false;
    };
    let mut builder = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .no_proxy()
        .http1_only()
        .user_agent(concat!("regtrust/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none());
    if !host.is_ip() {
        builder = builder.resolve(host.name(), addr);
    }
    match builder.build() {
        Ok(client) => harbor::identify(&client, &format!("https://{host}"), deadline).await,
        Err(_) => false,
    }
}

/// The Go of each selected runtime (the system roots' view when none is), read once per
/// round: it decides both what the runtime's CA files load and the verdict.
fn runtime_gos(
    node: &crate::runtime::Node,
    overrides: &[(String, crate::go::GoVersion)],
) -> BTreeMap<String, runtime_go::RuntimeGo> {
    let names: Vec<String> = if node.runtimes.is_empty() {
        vec![crate::runtime::view::system_only_view().runtime]
    } else {
        node.runtimes
            .iter()
            .map(|r| r.as_str().to_string())
            .collect()
    };
    names
        .into_iter()
        .map(|n| {
            let go = runtime_go::runtime_go(&node.root, &n, overrides);
            (n, go)
        })
        .collect()
}

/// What each runtime trusts for `host`, loaded by its own Go, with its trust pool.
fn view_trusts(
    node: &crate::runtime::Node,
    host: &RegistryHost,
    gos: &BTreeMap<String, runtime_go::RuntimeGo>,
    system: &SystemRoots,
) -> Vec<ViewTrust> {
    let go_of = |name: &str| gos.get(name).map(|g| g.go).unwrap_or_default();
    let views: Vec<RuntimeView> = if node.runtimes.is_empty() {
        vec![crate::runtime::view::system_only_view()]
    } else {
        node.runtimes
            .iter()
            .map(|&r| node.view_as(r, host, &go_of(r.as_str())))
            .collect()
    };
    views
        .into_iter()
        .map(|v| {
            let go = go_of(&v.runtime);
            ViewTrust::new(v, system, go)
        })
        .collect()
}

/// Every view's TLS decision on one presented chain: the chain is parsed once per Go
/// release among the views (`Presented::parsed`), each view judges with its own pool.
fn decide_all(
    views: &[ViewTrust],
    system: &SystemRoots,
    chain: &Presented,
    host: &RegistryHost,
    now: OffsetDateTime,
    expected: Option<&CaBundle>,
) -> Vec<TlsDecision> {
    views
        .iter()
        .map(|t| classify::decide(t, system, chain, host, now, expected))
        .collect()
}

/// A probe entry for `view` before any verdict: what it trusts for the host.
fn entry(view: &RuntimeView, now: OffsetDateTime) -> ProbeEntry {
    ProbeEntry {
        runtime: view.runtime.clone(),
        verdict: Verdict::Unknown,
        message: String::new(),
        cause: String::new(),
        latency_ms: 0,
        server_chain: Vec::new(),
        server_days_left: None,
        warnings: Vec::new(),
        fix: String::new(),
        ca_days_left: view.host_cas.iter().map(|a| a.facts().days_left(now)).min(),
        trusted: classify::trusted(view, now),
        anchor: None,
        runtime_version: String::new(),
        go_version: String::new(),
        runtime_message: String::new(),
    }
}

/// The CA the report shows for the registry: the input regtrust manages, else what the
/// first runtime reads for the host.
fn ca_summary<'a>(
    expected: Option<&CaBundle>,
    mut views: impl Iterator<Item = &'a RuntimeView>,
    now: OffsetDateTime,
) -> Option<CaSummary> {
    if let Some(b) = expected {
        return Some(b.summary(now));
    }
    let view = views.find(|v| !v.host_cas.is_empty())?;
    let mut by_file: BTreeMap<&PathBuf, Vec<CaCert>> = BTreeMap::new();
    for a in &view.host_cas {
        by_file
            .entry(&a.file)
            .or_default()
            .push(a.facts().to_ca_cert(now));
    }
    let (file, certificates) = by_file.into_iter().next()?;
    Some(CaSummary {
        source: file.display().to_string(),
        certificates,
        notes: Vec::new(),
    })
}

/// `/v2/` and the credentials over a second connection pinned to the address the handshake
/// used; Harbor's health when the challenge says Harbor. Every connection (this one, the
/// token realm's, any later one) is verified by `judge` before a byte is written.
async fn http_check(
    host: &RegistryHost,
    addr: std::net::SocketAddr,
    creds: &[Cred],
    judge: Arc<credtls::ViewJudge>,
    deadline: Instant,
) -> (HttpVerdict, Option<HarborHealth>) {
    let tls = match capture::judged_config(judge.clone()) {
        Ok(c) => c,
        Err(e) => {
            return (
                HttpVerdict {
                    verdict: Verdict::TlsError,
                    message: format!("tls: cannot build a client config: {e}"),
                    fix: String::new(),
                    challenges: Vec::new(),
                    warnings: Vec::new(),
                },
                None,
            )
        }
    };
    let mut builder = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .no_proxy()
        .http1_only()
        .user_agent(concat!("regtrust/", env!("CARGO_PKG_VERSION")))
        .redirect(registry::redirect_policy());
    if !host.is_ip() {
        builder = builder.resolve(host.name(), addr);
    }
    let client = match builder.build() {
        Ok(c) => c,
        Err(e) => {
            return (
                HttpVerdict {
                    verdict: Verdict::RegistryError,
                    message: format!("cannot build an HTTP client: {e}"),
                    fix: String::new(),
                    challenges: Vec::new(),
                    warnings: Vec::new(),
                },
                None,
            )
        }
    };
    let base = format!("https://{host}");
    let verdict = registry::check(&client, &base, creds, deadline).await;
    // Harbor's health is regtrust's own request, not the runtime's: it judges nothing.
    judge.freeze();
    let health = if harbor::looks_like_harbor(&verdict.challenges) {
        harbor::health(&client, &base, deadline).await
    } else {
        None
    };
    (verdict, health)
}

fn net_fix(f: &net::NetFailure, host: &RegistryHost, timeout: Duration) -> String {
    match f.verdict {
        Verdict::DnsError => format!(
            "{} does not resolve from this node: fix DNS or /etc/hosts (the runtime resolves names as this node does)",
            host.name()
        ),
        Verdict::ConnectionRefused => format!(
            "nothing accepts connections at {} from this node: check the registry runs and listens on this port, and firewalls",
            host.authority()
        ),
        Verdict::Timeout => format!(
            "no answer from {host} within {}: check firewalls, network policies and proxies between this node and the registry",
            show_duration(timeout)
        ),
        _ if f.message.starts_with("http: server gave HTTP") => format!(
            "{host} speaks plain HTTP on this port: serve TLS there (runtimes pull over HTTPS unless the registry is configured as insecure)"
        ),
        _ if f.message.contains("first record does not look like") => format!(
            "{host} does not speak TLS on this port: check the port"
        ),
        _ => "the TLS handshake failed: check the registry's TLS setup (TLS 1.2 or 1.3 with ECDHE ciphers; no client certificate required)".into(),
    }
}

fn show_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// The user's docker config (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`),
/// `probe`'s default pull secret on a workstation (SPEC, Inputs).
pub fn docker_config_path() -> Option<PathBuf> {
    let path = match std::env::var_os("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("config.json"),
        None => PathBuf::from(std::env::var_os("HOME").filter(|v| !v.is_empty())?)
            .join(".docker/config.json"),
    };
    path.is_file().then_some(path)
}

/// Why `regtrust probe` cannot start (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum ProbeSetupError {
    #[error(transparent)]
    Config(#[from] sync::ConfigError),
    #[error("host argument {value:?}: {source}")]
    Host {
        value: String,
        source: crate::host::HostError,
    },
    #[error(
        "nothing to probe: give HOST arguments, --registry, --ca HOST=PATH or --pull-secret \
         (no docker config was found either)"
    )]
    NoHosts,
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

/// What `regtrust probe` will do: the configuration, the inputs read, the hosts to probe.
pub struct Plan {
    pub cfg: Config,
    pub inputs: Inputs,
    pub hosts: Vec<RegistryHost>,
    /// The user's docker config, read because no `--pull-secret` was given. Its problems
    /// (a credential-helper entry is normal on a workstation) are shown but need no action.
    pub implicit_docker_config: Option<PathBuf>,
}

/// Hosts from the arguments, else from the inputs (pull secrets, `--ca HOST=`,
/// `--registry`), else, with no input at all, from the user's docker config. With no
/// `--pull-secret`, the docker config is also where credentials come from (SPEC, Inputs).
pub fn plan(args: &ProbeArgs) -> Result<Plan, ProbeSetupError> {
    let mut cfg = Config::from_args(&args.inputs.to_input_args())?;
    let mut arg_hosts: Vec<RegistryHost> = Vec::new();
    for v in &args.hosts {
        let h = RegistryHost::parse(v).map_err(|source| ProbeSetupError::Host {
            value: v.clone(),
            source,
        })?;
        if !arg_hosts.contains(&h) {
            arg_hosts.push(h);
        }
    }
    let own = sync::read_inputs(&cfg);
    let implicit = if cfg.pull_secrets.is_empty() {
        docker_config_path()
    } else {
        None
    };
    let (inputs, hosts) = match &implicit {
        None => {
            let hosts = if arg_hosts.is_empty() {
                own.hosts.keys().cloned().collect()
            } else {
                arg_hosts
            };
            (own, hosts)
        }
        Some(path) => {
            cfg.pull_secrets.push(path.clone());
            let with = sync::read_inputs(&cfg);
            let hosts = if !arg_hosts.is_empty() {
                arg_hosts
            } else if !own.hosts.is_empty() {
                own.hosts.keys().cloned().collect()
            } else {
                with.hosts.keys().cloned().collect()
            };
            (with, hosts)
        }
    };
    if hosts.is_empty() {
        return Err(ProbeSetupError::NoHosts);
    }
    Ok(Plan {
        cfg,
        inputs,
        hosts,
        implicit_docker_config: implicit,
    })
}

/// Docker Hub is named `docker.io` (`index.docker.io` in docker configs) but served by
/// `registry-1.docker.io`, which the runtimes dial instead; every other host is dialed as
/// spelled.
pub fn endpoint(host: &RegistryHost) -> RegistryHost {
    match host.as_str() {
        "docker.io" | "index.docker.io" => {
            RegistryHost::parse("registry-1.docker.io").unwrap_or_else(|_| host.clone())
        }
        _ => host.clone(),
    }
}

/// The whole probe as a report document.
pub async fn probe_report(
    cfg: &Config,
    inputs: &Inputs,
    hosts: &[RegistryHost],
    timeout: Duration,
) -> Report {
    let mut report = Report::new(cfg.node.clone(), OffsetDateTime::now_utc());
    report.registries = probe_all(cfg, inputs, hosts, timeout).await;
    report.problems = inputs.problems.clone();
    report
}

/// Exit code 1 (SPEC): a verdict other than ok, an input problem, or a warning (a
/// certificate expiring within 30 days, an unhealthy Harbor): all need attention.
/// Problems of the implicitly read docker config do not count.
pub fn needs_attention(report: &Report, implicit_docker_config: Option<&std::path::Path>) -> bool {
    let implicit = implicit_docker_config.map(|p| p.display().to_string());
    let problem = report.problems.iter().any(|p| match &implicit {
        Some(path) => !p.source.contains(path.as_str()),
        None => true,
    });
    problem
        || report.registries.iter().any(|r| {
            r.verdict != Verdict::Ok
                || r.trust.iter().any(|t| t.state.needs_attention())
                || r.probes.iter().any(|p| !p.warnings.is_empty())
        })
}

/// `regtrust probe HOST --chain CHAIN.pem`: what each runtime on this node would say if
/// the host served `chain` (leaf first), with this node's trust view, at `now`. Offline:
/// the same decision as a probe's TLS part (`decide_all`: one parse of the chain per Go
/// release, one pool per view), no network.
pub fn judge_chain(
    cfg: &Config,
    inputs: &Inputs,
    hosts: &[RegistryHost],
    chain: Vec<Vec<u8>>,
    now: OffsetDateTime,
) -> Report {
    let system = crate::runtime::system::system_roots_cached(&cfg.host_root);
    let node = crate::runtime::Node::read(&cfg.host_root, &cfg.runtimes);
    // One parse of the chain per Go release, for every host and runtime.
    let presented = Presented::new(chain);
    let gos = runtime_gos(&node, &cfg.go_versions);
    let mut report = Report::new(cfg.node.clone(), now);
    for host in hosts {
        let views = view_trusts(&node, host, &gos, &system);
        let expected = match inputs.hosts.get(host) {
            Some(CaChoice::Valid(b)) => Some(b.clone()),
            _ => None,
        };
        let dial = endpoint(host);
        let decisions = decide_all(&views, &system, &presented, &dial, now, expected.as_deref());
        let mut entries = Vec::new();
        for (view, d) in views.iter().map(|t| &t.view).zip(decisions) {
            let go = gos.get(&view.runtime).cloned().unwrap_or_default();
            let mut e = entry(view, now);
            e.runtime_version = go.runtime_version;
            e.go_version = go.go_version;
            if d.runtime_message != d.message {
                e.runtime_message = d.runtime_message;
            }
            e.server_chain = presented.server_chain();
            e.server_days_left = presented.leaf().map(|l| l.days_left(now));
            e.warnings =
                classify::expiry_warnings(&presented, view, d.anchor.as_ref(), &system, now);
            e.warnings.extend(view.notes.iter().cloned());
            e.anchor = d.anchor;
            e.verdict = d.verdict;
            e.message = d.message;
            e.cause = d.cause;
            // As the live probe's (`paste_safe_fix`); offline, no registry was seen to be
            // Harbor, so its getcert hint goes.
            e.fix = paste_safe_fix(&d.fix, &cfg.host_root, false);
            entries.push(e);
        }
        let verdict = worst(entries.iter().map(|e| e.verdict));
        let message = entries
            .iter()
            .find(|e| e.verdict == verdict)
            .map(|e| e.message.clone())
            .unwrap_or_default();
        report.registries.push(RegistryReport {
            host: host.to_string(),
            verdict,
            message,
            trust: Vec::new(),
            ca: ca_summary(expected.as_deref(), views.iter().map(|t| &t.view), now),
            probes: entries,
            harbor: None,
        });
    }
    report.problems = inputs.problems.clone();
    report
}

/// Run `regtrust probe` and return the process exit code.
pub fn run_cli(args: &ProbeArgs) -> u8 {
    let plan = match plan(args) {
        Ok(p) => p,
        Err(e) => {
            crate::cli::print_error("probe", &e);
            return 2;
        }
    };
    if let Some(path) = &args.chain {
        let chain = match crate::ca::CaBundle::read(path) {
            Ok(b) => b.certificates().iter().map(|c| c.der.clone()).collect(),
            Err(e) => {
                eprintln!("regtrust probe: --chain: {e}");
                return 2;
            }
        };
        let report = judge_chain(
            &plan.cfg,
            &plan.inputs,
            &plan.hosts,
            chain,
            OffsetDateTime::now_utc(),
        );
        match args.output {
            Output::Json => crate::cli::emit(&format!("{}\n", report.to_json())),
            Output::Text => crate::cli::emit(&text::render(&report)),
        }
        return u8::from(needs_attention(
            &report,
            plan.implicit_docker_config.as_deref(),
        ));
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ProbeSetupError::Runtime)
    {
        Ok(rt) => rt,
        Err(e) => {
            crate::cli::print_error("probe", &e);
            return 2;
        }
    };
    let report = rt.block_on(probe_report(
        &plan.cfg,
        &plan.inputs,
        &plan.hosts,
        args.timeout,
    ));
    match args.output {
        Output::Json => crate::cli::emit(&format!("{}\n", report.to_json())),
        Output::Text => crate::cli::emit(&text::render(&report)),
    }
    u8::from(needs_attention(
        &report,
        plan.implicit_docker_config.as_deref(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 11 point 4: a probe over three runtimes (on Go 1.19, 1.22 and 1.23, whose parse
    /// rules differ where these certificates do not reach) parses each presented certificate once
    /// (it was about 11 times: twice for display, then once per runtime for `Verify`, once
    /// for the cause and once for the CA input's check), each system root once, and each
    /// installed CA once per runtime that loads it (the pool reuses that parse). The case is
    /// the costliest: an unknown authority (the CA was rotated) with a CA input to check.
    #[test]
    fn three_runtimes_parse_each_presented_certificate_once() {
        use crate::ca::pem_block as der_to_pem;
        use crate::go::pki::{Key, Spec};
        use crate::go::x509::parse_count;
        let now = OffsetDateTime::now_utc();
        let old_ca = Spec::ca("Harbor CA", now).self_signed(Key::ecdsa());
        let new_ca = Spec::ca("Harbor CA", now).self_signed(Key::ecdsa());
        let system_ca = Spec::ca("System CA", now).self_signed(Key::ecdsa());
        let int = Spec::ca("Harbor Issuing CA", now).signed_by(Key::ecdsa(), &new_ca);
        let leaf = Spec::leaf("reg.test", &["reg.test"], now).signed_by(Key::ecdsa(), &int);
        let old_pem = der_to_pem(&old_ca.der());
        let root = crate::runtime::view::tests::root_with(&[
            (
                "etc/ssl/certs/ca-certificates.crt",
                &der_to_pem(&system_ca.der()),
            ),
            ("etc/docker/certs.d/reg.test/ca.crt", &old_pem),
            ("etc/containerd/certs.d/reg.test/ca.crt", &old_pem),
            ("etc/containers/certs.d/reg.test/ca.crt", &old_pem),
        ]);
        let host = RegistryHost::parse("reg.test").unwrap();
        let cfg = Config {
            host_root: root.path().to_path_buf(),
            state_dir: root.path().join("state"),
            runtimes: vec![
                crate::trust::Runtime::Docker,
                crate::trust::Runtime::Containerd,
                crate::trust::Runtime::Crio,
            ],
            replace_foreign: false,
            node: "n".into(),
            pull_secrets: Vec::new(),
            cas: Vec::new(),
            registries: vec![host.clone()],
            // Three Go releases whose parse-time rules differ (1.22's OIDs, 1.23's
            // refusals): none of them applies to these certificates, so one parse serves all.
            go_versions: vec![
                ("docker".into(), crate::go::GoVersion::new(19, 8)),
                ("containerd".into(), crate::go::GoVersion::new(22, 12)),
                ("crio".into(), crate::go::GoVersion::new(23, 5)),
            ],
        };
        let input = CaBundle::from_pem("new.crt", der_to_pem(&new_ca.der()).as_bytes()).unwrap();
        let inputs = Inputs {
            hosts: [(host.clone(), CaChoice::Valid(Arc::new(input)))].into(),
            secrets: Default::default(),
            problems: Vec::new(),
            complete: true,
        };
        let chain = vec![leaf.der(), int.der()];
        let report = judge_chain(&cfg, &inputs, &[host], chain.clone(), now);

        let probes = &report.registries[0].probes;
        let seen: Vec<(&str, &str)> = probes
            .iter()
            .map(|p| (p.runtime.as_str(), p.cause.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                ("docker", "ca_mismatch"),
                ("containerd", "ca_mismatch"),
                ("crio", "ca_mismatch")
            ],
            "{probes:#?}"
        );
        assert!(
            probes.iter().all(|p| p.fix.contains("verifies this chain")),
            "the CA input was checked: {probes:#?}"
        );
        // The offline judgement's fix lines are the live probe's: the sync they name runs
        // on this host root, and no Harbor hint (nothing was seen to be Harbor).
        let sync = format!("`regtrust sync --host-root {}`", root.path().display());
        assert!(
            probes
                .iter()
                .all(|p| p.fix.contains(&sync) && !p.fix.contains("Harbor publishes")),
            "{probes:#?}"
        );
        for (name, der) in [("leaf", &chain[0]), ("intermediate", &chain[1])] {
            assert_eq!(parse_count::of(der), 1, "the presented {name}");
        }
        assert_eq!(parse_count::of(&system_ca.der()), 1, "the system root");
        assert_eq!(
            parse_count::of(&old_ca.der()),
            3,
            "the installed CA, once per runtime"
        );
    }

    #[test]
    fn fix_lines_are_safe_to_paste() {
        let fix =
            "install the registry's CA (\"CN=x\") for docker: /etc/docker/certs.d/h:5000/ca.crt \
                   (`regtrust sync --ca h:5000=CA.crt`; Harbor publishes it at \
                   https://h:5000/api/v2.0/systeminfo/getcert)";
        let plain = paste_safe_fix(fix, std::path::Path::new("/"), false);
        assert!(
            !plain.contains("Harbor") && plain.ends_with("=CA.crt`)"),
            "{plain}"
        );
        let harbor = paste_safe_fix(fix, std::path::Path::new("/host"), true);
        assert!(harbor.contains("getcert"), "{harbor}");
        assert!(
            harbor.contains("`regtrust sync --host-root /host --ca h:5000=CA.crt`"),
            "{harbor}"
        );
        let odd = paste_safe_fix(fix, std::path::Path::new("/my node"), false);
        assert!(odd.contains("--host-root '/my node' --ca"), "{odd}");
        let bare = paste_safe_fix(
            "the CA input verifies this chain: run `regtrust sync` to install it",
            std::path::Path::new("/host"),
            false,
        );
        assert!(
            bare.ends_with("run `regtrust sync --host-root /host` to install it"),
            "{bare}"
        );
        let at_root = paste_safe_fix("run `regtrust sync` now", std::path::Path::new("/"), false);
        assert_eq!(at_root, "run `regtrust sync` now");
    }

    /// The agent spawns `probe_all` on its runtime: its future must be `Send`.
    #[allow(dead_code)]
    fn probe_all_is_send(cfg: &Config, inputs: &Inputs) {
        fn send<T: Send>(_: &T) {}
        send(&probe_all(cfg, inputs, &[], DEFAULT_TIMEOUT));
    }

    #[test]
    fn docker_hub_is_dialed_where_runtimes_dial_it() {
        for (h, want) in [
            ("docker.io", "registry-1.docker.io"),
            ("index.docker.io", "registry-1.docker.io"),
            ("docker.io:5000", "docker.io:5000"),
            ("harbor.local", "harbor.local"),
        ] {
            assert_eq!(
                endpoint(&RegistryHost::parse(h).unwrap()).as_str(),
                want,
                "{h}"
            );
        }
    }

    #[test]
    fn implicit_docker_config_problems_need_no_action() {
        let mut r = Report::new("n", OffsetDateTime::UNIX_EPOCH);
        r.problems.push(crate::report::Problem::new(
            "pull secret /home/u/.docker/config.json",
            "credentials live in a credential helper",
        ));
        let implicit = PathBuf::from("/home/u/.docker/config.json");
        assert!(!needs_attention(&r, Some(&implicit)));
        assert!(needs_attention(&r, None));
        r.problems
            .push(crate::report::Problem::new("/etc/regtrust/ca.crt", "bad"));
        assert!(needs_attention(&r, Some(&implicit)));
    }
}
