//! The rotation pre-flight (`POST /api/v1/preflight`): given a server chain a registry is
//! about to present, what would each node's runtimes say? Each runtime is judged by the
//! probe's own decision (`probe::classify::decide_tls`, Go's `Verify` mirrored) over the
//! CA certificates that node reported trusting for the registry (their PEMs travel in the
//! reports). Nodes trusting the same CAs give the same answer, so each distinct (runtime,
//! trust set) is verified once. System roots are not in reports: a runtime is judged on
//! its registry CAs alone (a private Harbor CA is never in the system roots).

use super::facts::NodeFacts;
use crate::go::GoVersion;
use crate::host::RegistryHost;
use crate::probe::classify::{self, Presented};
use crate::report::{ChainCert, Verdict};
use crate::runtime::view::{Anchor, RuntimeView, SystemRoots};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// The request body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreflightRequest {
    pub registry: String,
    pub chain_pem: String,
}

/// The answer (and `regtrust report --preflight --output json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreflightDoc {
    pub generated_at: String,
    pub registry: String,
    /// The chain judged, as parsed.
    pub chain: Vec<ChainCert>,
    /// Nodes that report the registry.
    pub nodes_total: usize,
    /// Nodes on which some runtime would refuse the chain (or cannot be judged).
    pub would_fail: usize,
    pub nodes: Vec<PreflightNode>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreflightNode {
    pub node: String,
    /// The worst runtime verdict.
    pub verdict: Verdict,
    /// Silent for longer than `--stale-after`: its trust view may be out of date.
    pub stale: bool,
    pub runtimes: Vec<PreflightRuntime>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreflightRuntime {
    pub runtime: String,
    /// The Go release the verdict follows (`go1.19`), as the node reported it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub go_version: String,
    pub verdict: Verdict,
    #[serde(default)]
    pub message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cause: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fix: String,
}

impl PreflightDoc {
    /// Exit code 1 of `report --preflight`: some node would fail (or cannot be judged).
    pub fn any_would_fail(&self) -> bool {
        self.would_fail > 0
    }
}

/// The chain in `chain_pem`: certificates only (a private key anywhere refuses it), leaf
/// first as given. Errors name the field.
pub fn parse_chain(source: &str, pem: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let bundle = crate::ca::CaBundle::from_pem(source, pem).map_err(|e| e.to_string())?;
    Ok(bundle
        .certificates()
        .iter()
        .map(|c| c.der.clone())
        .collect())
}

/// Whether a node's verdict counts as failing the pre-flight.
fn fails(v: Verdict) -> bool {
    v != Verdict::Ok
}

/// What a runtime's verdict depends on: the runtime, its Go, and the CAs it trusts (with
/// the files, which a fix names).
type TrustKey<'a> = (Arc<str>, GoVersion, Vec<(&'a str, &'a str)>);

/// Judge `chain` for `host` on every node of `facts` that reports it. `stale` says which
/// nodes are stale; `now` is the clock the chain is judged at.
pub fn run(
    host: &RegistryHost,
    chain: Vec<Vec<u8>>,
    facts: &[Arc<NodeFacts>],
    stale: impl Fn(&str) -> bool,
    now: time::OffsetDateTime,
) -> PreflightDoc {
    let presented = Presented::new(chain);
    let dial = crate::probe::endpoint(host);
    let system = SystemRoots::default();
    let mut memo: HashMap<TrustKey<'_>, PreflightRuntime> = HashMap::new();
    let mut nodes = Vec::new();
    for f in facts {
        let Some(reg) = f.registry(host.as_str()) else {
            continue;
        };
        let mut runtimes = Vec::with_capacity(reg.runtimes.len());
        for rt in &reg.runtimes {
            // The files are in the key too: a fix names the file the node reads.
            let key: Vec<(&str, &str)> = rt
                .trusted
                .iter()
                .map(|t| (t.cert.sha256.as_str(), &*t.file))
                .collect();
            let judged = memo
                .entry((Arc::clone(&rt.runtime), rt.go.go, key))
                .or_insert_with(|| judge(rt, &presented, &system, &dial, now))
                .clone();
            runtimes.push(judged);
        }
        if runtimes.is_empty() {
            runtimes.push(PreflightRuntime {
                runtime: "-".into(),
                go_version: String::new(),
                verdict: Verdict::Unknown,
                message: "this node has not probed the registry yet (a sync-only report): nothing to judge with".into(),
                cause: String::new(),
                fix: String::new(),
            });
        }
        let verdict = runtimes
            .iter()
            .map(|r| r.verdict)
            .max()
            .unwrap_or(Verdict::Unknown);
        nodes.push(PreflightNode {
            node: f.node.clone(),
            verdict,
            stale: stale(&f.node),
            runtimes,
        });
    }
    let would_fail = nodes.iter().filter(|n| fails(n.verdict)).count();
    PreflightDoc {
        generated_at: crate::report::rfc3339(now),
        registry: host.as_str().to_string(),
        chain: presented.server_chain(),
        nodes_total: nodes.len(),
        would_fail,
        nodes,
    }
}

fn judge(
    rt: &super::facts::RuntimeFacts,
    chain: &Presented,
    system: &SystemRoots,
    dial: &RegistryHost,
    now: time::OffsetDateTime,
) -> PreflightRuntime {
    let mut out = PreflightRuntime {
        runtime: rt.runtime.to_string(),
        go_version: rt.go_version.to_string(),
        verdict: Verdict::Unknown,
        message: String::new(),
        cause: String::new(),
        fix: String::new(),
    };
    let mut host_cas = Vec::with_capacity(rt.trusted.len());
    for t in &rt.trusted {
        let Some(anchor) = t
            .cert
            .der
            .clone()
            .and_then(|der| Anchor::new_as(der, Path::new(&*t.file), &rt.go))
        else {
            out.message = format!(
                "the node reported CA {} without its certificate (an agent older than the pre-flight): upgrade the agent to judge this node",
                t.cert.sha256
            );
            return out;
        };
        host_cas.push(anchor);
    }
    let view = RuntimeView {
        runtime: rt.runtime.to_string(),
        dir: None,
        host_cas,
        fatal: None,
        skip_verify: false,
        notes: Vec::new(),
        ignores_certs_d: false,
        install_dir: None,
        go: rt.go,
    };
    let d = classify::decide_tls(&view, system, chain, dial, now, None, &rt.go);
    out.verdict = d.verdict;
    out.message = d.message;
    out.cause = d.cause;
    out.fix = d.fix;
    if out.verdict != Verdict::Ok && rt.trusted.is_empty() {
        out.message.push_str(
            " (this runtime trusts no registry CA for the host; judged without system roots, which reports do not carry)",
        );
    }
    out
}
