//! What each node trusts and sees, per registry and runtime, taken from its latest report:
//! the CA certificates a runtime trusts (with their DER, for the pre-flight), the server
//! chain it was shown, its verdict. The store keeps verdict rows; these facts are the rest
//! of the report the admin pages and the pre-flight need.
//!
//! `FactsCache` holds them keyed on what the store says is a node's latest report
//! (`received_ms` and `generated_at` of its row): filled when a report is stored, and read
//! back from the store for a node whose row names another report (after a restart, or a
//! write the cache did not see), so the facts never disagree with the rows. Certificates
//! and file names are interned: 5,000 nodes trusting the same CA hold one copy of it.
//! The pure rollups over facts (fingerprint distribution, chains seen, expiring
//! certificates) are here too; `page` shows them.

use super::fleet::NodeRow;
use super::store::{Store, StoreError};
use crate::probe::classify::GoRuntime;
use crate::report::{Report, Verdict};
use rustls_pki_types::pem::PemObject as _;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, Weak};

/// A certificate some node named (a CA it trusts or one of the server chain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cert {
    pub sha256: String,
    pub subject: String,
    pub issuer: String,
    /// As reported (RFC 3339).
    pub not_after: String,
    /// `not_after` in Unix seconds; None when the report's time does not parse.
    pub not_after_s: Option<i64>,
    /// The DER, when the node sent the PEM and it hashes to `sha256`.
    pub der: Option<Vec<u8>>,
}

impl Cert {
    /// Whole days left at `now_s`, rounded down as the probe rounds them (negative once
    /// expired).
    pub fn days_left(&self, now_s: i64) -> Option<i64> {
        self.not_after_s.map(|t| (t - now_s).div_euclid(86_400))
    }
}

/// One CA a runtime trusts for a host, and the file it reads it from.
#[derive(Debug, Clone)]
pub struct TrustedFact {
    pub cert: Arc<Cert>,
    pub file: Arc<str>,
}

#[derive(Debug, Clone)]
pub struct RuntimeFacts {
    pub runtime: Arc<str>,
    /// The Go the runtime runs on, from the report's `go_version` (the newest modelled
    /// when the agent did not say): the pre-flight judges with that Go's rules.
    pub go: GoRuntime,
    /// As reported (`go1.19.8`); empty when unknown.
    pub go_version: Arc<str>,
    pub verdict: Verdict,
    pub trusted: Vec<TrustedFact>,
    /// Leaf first, as the server presented it.
    pub chain: Vec<Arc<Cert>>,
}

#[derive(Debug, Clone)]
pub struct RegistryFacts {
    pub host: String,
    pub runtimes: Vec<RuntimeFacts>,
}

#[derive(Debug, Clone)]
pub struct NodeFacts {
    pub node: String,
    pub received_ms: i64,
    pub generated_at: String,
    /// Sorted by host.
    pub registries: Vec<RegistryFacts>,
}

impl NodeFacts {
    pub fn registry(&self, host: &str) -> Option<&RegistryFacts> {
        self.registries
            .binary_search_by(|r| r.host.as_str().cmp(host))
            .ok()
            .map(|i| &self.registries[i])
    }
}

#[derive(Default)]
struct Interner {
    certs: HashMap<String, Weak<Cert>>,
    files: HashMap<String, Weak<str>>,
    swept_at: usize,
}

impl Interner {
    fn cert(&mut self, c: Cert) -> Arc<Cert> {
        if let Some(old) = self.certs.get(&c.sha256).and_then(Weak::upgrade) {
            // A copy without DER (a chain entry, an old agent) is upgraded by one with it.
            if old.der.is_some() || c.der.is_none() {
                return old;
            }
        }
        self.sweep();
        let a = Arc::new(c);
        self.certs.insert(a.sha256.clone(), Arc::downgrade(&a));
        a
    }

    fn file(&mut self, f: &str) -> Arc<str> {
        if let Some(old) = self.files.get(f).and_then(Weak::upgrade) {
            return old;
        }
        self.sweep();
        let a: Arc<str> = Arc::from(f);
        self.files.insert(f.to_string(), Arc::downgrade(&a));
        a
    }

    /// Drop entries nobody holds any more, once the maps doubled since the last sweep.
    fn sweep(&mut self) {
        let len = self.certs.len() + self.files.len();
        if len > 1024 && len > 2 * self.swept_at {
            self.certs.retain(|_, w| w.strong_count() > 0);
            self.files.retain(|_, w| w.strong_count() > 0);
            self.swept_at = self.certs.len() + self.files.len();
        }
    }
}

fn unix_seconds(rfc: &str) -> Option<i64> {
    time::OffsetDateTime::parse(rfc, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// The DER of a reported PEM, only when it is one certificate hashing to the reported
/// sha256 (a node cannot make the aggregator judge with a certificate it did not name).
fn der_of(pem: &str, sha256: &str) -> Option<Vec<u8>> {
    if pem.is_empty() {
        return None;
    }
    let der = rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).ok()?;
    let want = sha256.replace(':', "").to_ascii_lowercase();
    (crate::ca::sha256_hex(der.as_ref()) == want).then(|| der.as_ref().to_vec())
}

/// Every node's facts, cached (see the module comment).
#[derive(Default)]
pub struct FactsCache {
    nodes: Mutex<HashMap<String, Arc<NodeFacts>>>,
    interner: Mutex<Interner>,
    /// One read-back at a time: a request arriving while the start-up warm-up (or another
    /// request) reads reports back waits for it instead of reading them all again.
    fill: tokio::sync::Mutex<()>,
}

/// Reports read back from the store at once at most.
const READ_BACK_CONCURRENCY: usize = 64;

impl FactsCache {
    /// The facts of `report`, received at `received_ms`.
    pub fn build(&self, report: &Report, received_ms: i64) -> NodeFacts {
        let mut interner = self.interner.lock().unwrap_or_else(|e| e.into_inner());
        let mut registries: Vec<RegistryFacts> = report
            .registries
            .iter()
            .map(|r| RegistryFacts {
                host: crate::host::RegistryHost::parse(&r.host)
                    .map(|h| h.as_str().to_string())
                    .unwrap_or_else(|_| r.host.clone()),
                runtimes: r
                    .probes
                    .iter()
                    .map(|p| RuntimeFacts {
                        runtime: interner.file(&p.runtime),
                        go: GoRuntime {
                            go: crate::go::GoVersion::parse(&p.go_version).unwrap_or_default(),
                            ..GoRuntime::default()
                        },
                        go_version: interner.file(&p.go_version),
                        verdict: p.verdict,
                        trusted: p
                            .trusted
                            .iter()
                            .map(|t| TrustedFact {
                                cert: interner.cert(Cert {
                                    sha256: t.sha256.clone(),
                                    subject: t.subject.clone(),
                                    issuer: String::new(),
                                    not_after: t.not_after.clone(),
                                    not_after_s: unix_seconds(&t.not_after),
                                    der: der_of(&t.pem, &t.sha256),
                                }),
                                file: interner.file(&t.file),
                            })
                            .collect(),
                        chain: p
                            .server_chain
                            .iter()
                            .map(|c| {
                                interner.cert(Cert {
                                    sha256: c.sha256.clone(),
                                    subject: c.subject.clone(),
                                    issuer: c.issuer.clone(),
                                    not_after: c.not_after.clone(),
                                    not_after_s: unix_seconds(&c.not_after),
                                    der: None,
                                })
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect();
        registries.sort_by(|a, b| a.host.cmp(&b.host));
        NodeFacts {
            node: report.node.clone(),
            received_ms,
            generated_at: report.generated_at.clone(),
            registries,
        }
    }

    /// Remember the facts of a report just stored.
    pub fn insert(&self, facts: NodeFacts) {
        let mut nodes = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
        nodes.insert(facts.node.clone(), Arc::new(facts));
    }

    /// The facts of every row's report, in the rows' order. A node whose cached facts are
    /// not of the report its row names is read back from the store; nodes gone from the
    /// rows are dropped from the cache.
    pub async fn current(
        &self,
        store: &Store,
        rows: &[Arc<NodeRow>],
    ) -> Result<Vec<Arc<NodeFacts>>, StoreError> {
        let fresh = |f: &NodeFacts, r: &NodeRow| {
            f.received_ms == r.received_ms && f.generated_at == r.generated_at
        };
        let missing = |prune: bool| -> Vec<String> {
            let mut nodes = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
            if prune && nodes.len() > rows.len() {
                let live: BTreeSet<&str> = rows.iter().map(|r| r.node.as_str()).collect();
                nodes.retain(|n, _| live.contains(n.as_str()));
            }
            rows.iter()
                .filter(|r| !nodes.get(&r.node).is_some_and(|f| fresh(f, r)))
                .map(|r| r.node.clone())
                .collect()
        };
        if !missing(true).is_empty() {
            let _one_at_a_time = self.fill.lock().await;
            // What is still missing once any read-back before us finished.
            let missing = missing(false);
            for batch in missing.chunks(READ_BACK_CONCURRENCY) {
                let mut tasks = tokio::task::JoinSet::new();
                for node in batch {
                    let store = store.clone();
                    let node = node.clone();
                    tasks.spawn(async move { store.node(node).await });
                }
                let mut records = Vec::new();
                while let Some(done) = tasks.join_next().await {
                    if let Ok(Some(rec)) = done.map_err(|_| StoreError::Gone)? {
                        records.push(rec);
                    }
                }
                // Parsing reports is CPU work: off the async threads.
                let parsed = tokio::task::spawn_blocking(move || {
                    records
                        .into_iter()
                        .map(|rec| (Report::from_json(rec.report_json.as_bytes()), rec.row))
                        .collect::<Vec<_>>()
                })
                .await
                .map_err(|_| StoreError::Gone)?;
                for (report, row) in parsed {
                    // An unreadable stored report (it was admitted, so this takes a newer
                    // schema) gives a node with no facts rather than no page.
                    let facts = match report {
                        Ok(report) => self.build(&report, row.received_ms),
                        Err(_) => NodeFacts {
                            node: row.node.clone(),
                            received_ms: row.received_ms,
                            generated_at: row.generated_at.clone(),
                            registries: Vec::new(),
                        },
                    };
                    self.insert(facts);
                }
            }
        }
        let nodes = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
        Ok(rows
            .iter()
            .filter_map(|r| nodes.get(&r.node).filter(|f| fresh(f, r)).cloned())
            .collect())
    }
}

/// Fill the cache from the store (at start, so the first page after a restart is fast).
pub async fn warm(state: Arc<super::api::AppState>) {
    let started = std::time::Instant::now();
    match state.store.fleet().await {
        Ok(rows) => match state.facts.current(&state.store, &rows).await {
            Ok(f) => tracing::debug!(
                nodes = f.len(),
                ms = started.elapsed().as_millis() as u64,
                "node facts read"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "reading the node facts at start failed; the first page will read them")
            }
        },
        Err(e) => tracing::warn!(error = %e, "reading the fleet at start failed"),
    }
}

/// How many nodes trust one CA for a registry: `all` counts nodes on which every runtime
/// reporting the registry trusts it (what a rotation needs), `some` those on which only
/// some runtimes do.
#[derive(Debug, Clone)]
pub struct CaCount {
    pub cert: Arc<Cert>,
    pub nodes: Vec<String>,
    pub partial_nodes: Vec<String>,
}

/// The CA fingerprint distribution of `host` over `facts`, most trusted first.
pub fn ca_distribution(facts: &[Arc<NodeFacts>], host: &str) -> Vec<CaCount> {
    let mut by: BTreeMap<&str, CaCount> = BTreeMap::new();
    for f in facts {
        let Some(reg) = f.registry(host) else {
            continue;
        };
        // sha256 → how many runtimes of this node trust it
        let mut here: BTreeMap<&str, (usize, &Arc<Cert>)> = BTreeMap::new();
        for rt in &reg.runtimes {
            let mut seen = BTreeSet::new();
            for t in &rt.trusted {
                if seen.insert(t.cert.sha256.as_str()) {
                    here.entry(t.cert.sha256.as_str()).or_insert((0, &t.cert)).0 += 1;
                }
            }
        }
        for (sha, (n, cert)) in here {
            let c = by.entry(sha).or_insert_with(|| CaCount {
                cert: Arc::clone(cert),
                nodes: Vec::new(),
                partial_nodes: Vec::new(),
            });
            if n == reg.runtimes.len() {
                c.nodes.push(f.node.clone());
            } else {
                c.partial_nodes.push(f.node.clone());
            }
        }
    }
    let mut out: Vec<CaCount> = by.into_values().collect();
    out.sort_by(|a, b| {
        b.nodes
            .len()
            .cmp(&a.nodes.len())
            .then_with(|| a.cert.subject.cmp(&b.cert.subject))
            .then_with(|| a.cert.sha256.cmp(&b.cert.sha256))
    });
    out
}

/// Nodes grouped by the server chain they were shown for `host` (leaf first).
#[derive(Debug, Clone)]
pub struct ChainSeen {
    pub chain: Vec<Arc<Cert>>,
    pub nodes: Vec<String>,
}

pub fn chains_seen(facts: &[Arc<NodeFacts>], host: &str) -> Vec<ChainSeen> {
    let mut by: BTreeMap<Vec<&str>, ChainSeen> = BTreeMap::new();
    for f in facts {
        let Some(reg) = f.registry(host) else {
            continue;
        };
        let Some(rt) = reg.runtimes.iter().find(|r| !r.chain.is_empty()) else {
            continue;
        };
        let key: Vec<&str> = rt.chain.iter().map(|c| c.sha256.as_str()).collect();
        by.entry(key)
            .or_insert_with(|| ChainSeen {
                chain: rt.chain.clone(),
                nodes: Vec::new(),
            })
            .nodes
            .push(f.node.clone());
    }
    let mut out: Vec<ChainSeen> = by.into_values().collect();
    out.sort_by_key(|c| std::cmp::Reverse(c.nodes.len()));
    out
}

/// A certificate (a CA nodes trust, or a server certificate they were shown) that expires
/// within the window.
#[derive(Debug, Clone)]
pub struct Expiring {
    pub cert: Arc<Cert>,
    /// `CA` or `server`.
    pub kind: &'static str,
    pub days_left: i64,
    pub registries: BTreeSet<String>,
    pub nodes: usize,
}

/// Every certificate with at most `within_days` days left at `now_s` (expired ones
/// included), soonest first, among the nodes `keep` lets through.
pub fn expiring(
    facts: &[Arc<NodeFacts>],
    now_s: i64,
    within_days: i64,
    keep: impl Fn(&str) -> bool,
) -> Vec<Expiring> {
    let mut by: BTreeMap<(&str, &'static str), (Expiring, String)> = BTreeMap::new();
    for f in facts.iter().filter(|f| keep(&f.node)) {
        for reg in &f.registries {
            for rt in &reg.runtimes {
                let trusted = rt.trusted.iter().map(|t| (&t.cert, "CA"));
                let leaf = rt.chain.first().map(|c| (c, "server"));
                for (cert, kind) in trusted.chain(leaf) {
                    let Some(days) = cert.days_left(now_s) else {
                        continue;
                    };
                    if days > within_days {
                        continue;
                    }
                    let e = by.entry((cert.sha256.as_str(), kind)).or_insert_with(|| {
                        (
                            Expiring {
                                cert: Arc::clone(cert),
                                kind,
                                days_left: days,
                                registries: BTreeSet::new(),
                                nodes: 0,
                            },
                            String::new(),
                        )
                    });
                    e.0.registries.insert(reg.host.clone());
                    // Count each node once per certificate.
                    if e.1 != f.node {
                        e.1 = f.node.clone();
                        e.0.nodes += 1;
                    }
                }
            }
        }
    }
    let mut out: Vec<Expiring> = by.into_values().map(|(e, _)| e).collect();
    out.sort_by(|a, b| {
        a.days_left
            .cmp(&b.days_left)
            .then_with(|| a.cert.subject.cmp(&b.cert.subject))
    });
    out
}

/// The highlight step of a certificate with `days` left: 1, 3, 7 or 14 (the first it is
/// within), else None.
pub fn expiry_step(days: i64) -> Option<i64> {
    [1, 3, 7, 14].into_iter().find(|s| days <= *s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{ChainCert, ProbeEntry, RegistryReport, TrustedCa};

    fn probe(runtime: &str, trusted: &[(&str, &str)], chain: &[&str]) -> ProbeEntry {
        ProbeEntry {
            runtime: runtime.into(),
            verdict: Verdict::Ok,
            message: String::new(),
            cause: String::new(),
            latency_ms: 0,
            server_chain: chain
                .iter()
                .map(|s| ChainCert {
                    subject: format!("CN={s}"),
                    issuer: String::new(),
                    sha256: s.to_string(),
                    not_after: "1970-01-11T00:00:00Z".into(),
                })
                .collect(),
            server_days_left: None,
            warnings: vec![],
            fix: String::new(),
            ca_days_left: None,
            trusted: trusted
                .iter()
                .map(|(sha, not_after)| TrustedCa {
                    subject: format!("CN={sha}"),
                    sha256: sha.to_string(),
                    not_after: not_after.to_string(),
                    days_left: 0,
                    file: "/etc/docker/certs.d/h/ca.crt".into(),
                    pem: String::new(),
                })
                .collect(),
            anchor: None,
            runtime_version: String::new(),
            go_version: String::new(),
            runtime_message: String::new(),
        }
    }

    fn node(cache: &FactsCache, name: &str, probes: Vec<ProbeEntry>) -> Arc<NodeFacts> {
        let mut r = Report::new(name, time::OffsetDateTime::UNIX_EPOCH);
        r.registries.push(RegistryReport {
            host: "H".into(),
            verdict: Verdict::Ok,
            message: String::new(),
            trust: vec![],
            probes,
            ca: None,
            harbor: None,
        });
        Arc::new(cache.build(&r, 0))
    }

    const FAR: &str = "2100-01-01T00:00:00Z";

    #[test]
    fn fingerprints_count_nodes_where_every_runtime_trusts_the_ca() {
        let c = FactsCache::default();
        let facts = vec![
            node(&c, "old-1", vec![probe("docker", &[("old", FAR)], &[])]),
            node(
                &c,
                "both-1",
                vec![
                    probe("docker", &[("old", FAR), ("new", FAR)], &[]),
                    probe("containerd", &[("new", FAR), ("old", FAR)], &[]),
                ],
            ),
            node(
                &c,
                "half-1",
                vec![
                    probe("docker", &[("old", FAR), ("new", FAR)], &[]),
                    probe("containerd", &[("old", FAR)], &[]),
                ],
            ),
        ];
        let d = ca_distribution(&facts, "h");
        let got: Vec<(&str, Vec<&str>, Vec<&str>)> = d
            .iter()
            .map(|c| {
                (
                    c.cert.sha256.as_str(),
                    c.nodes.iter().map(String::as_str).collect(),
                    c.partial_nodes.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("old", vec!["old-1", "both-1", "half-1"], vec![]),
                ("new", vec!["both-1"], vec!["half-1"]),
            ]
        );
        // One copy of a CA however many nodes trust it.
        assert!(Arc::ptr_eq(
            &facts[0].registries[0].runtimes[0].trusted[0].cert,
            &facts[1].registries[0].runtimes[0].trusted[0].cert
        ));
        assert!(ca_distribution(&facts, "other").is_empty());
    }

    #[test]
    fn expiring_groups_by_certificate_and_rounds_down() {
        let c = FactsCache::default();
        let facts = vec![
            node(
                &c,
                "a",
                vec![probe(
                    "docker",
                    &[("soon", "1970-01-08T00:00:00Z"), ("far", FAR)],
                    &["leaf"],
                )],
            ),
            node(
                &c,
                "b",
                vec![
                    probe("docker", &[("soon", "1970-01-08T00:00:00Z")], &["leaf"]),
                    probe("crio", &[("soon", "1970-01-08T00:00:00Z")], &["leaf"]),
                ],
            ),
        ];
        // 1 hour after the epoch: 6 days and 23 hours left read "6".
        let e = expiring(&facts, 3600, 30, |_| true);
        let got: Vec<(&str, &str, i64, usize)> = e
            .iter()
            .map(|e| (e.cert.sha256.as_str(), e.kind, e.days_left, e.nodes))
            .collect();
        assert_eq!(got, vec![("soon", "CA", 6, 2), ("leaf", "server", 9, 2)]);
        let only_a = expiring(&facts, 3600, 30, |n| n == "a");
        assert_eq!(only_a[0].nodes, 1);
        assert!(expiring(&facts, 3600, 5, |_| true).is_empty());
        assert_eq!(
            [0, 1, 2, 3, 5, 7, 10, 14, 15, -3].map(expiry_step),
            [
                Some(1),
                Some(1),
                Some(3),
                Some(3),
                Some(7),
                Some(7),
                Some(14),
                Some(14),
                None,
                Some(1)
            ]
        );
    }

    #[test]
    fn a_pem_counts_only_when_it_is_the_certificate_named() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["x".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let pem = cert.pem();
        let sha = crate::ca::sha256_hex(cert.der());
        assert_eq!(der_of(&pem, &sha).as_deref(), Some(cert.der().as_ref()));
        assert_eq!(der_of(&pem, &"00".repeat(32)), None);
        assert_eq!(der_of("garbage", &sha), None);
        assert_eq!(der_of("", &sha), None);
    }
}
