//! The trust view: which certificates a runtime on this node would trust for one registry,
//! and where each came from (semantics-trust.md §1–3, §4.4, §6.1). The types live here; each
//! runtime's module (`docker`, `containerd`, `crio`) computes its own view from disk by its
//! own rules, and `system` loads the OS roots. Which certificates of a CA file load is the Go
//! port's `AppendCertsFromPEM` for the runtime's Go release (`Node::view_as`), and each view
//! builds the runtime's trust pool from the parses made then (`RuntimeView::trust_pool`). The
//! probe asks `Node::view_as`; it never connects anywhere from here and never decides a verdict.

use super::HostRoot;
use crate::ca::{self, CertFacts};
use crate::go::verify::TrustPool;
use crate::go::version::Answers;
use crate::go::x509::{parse_certificate_as, parse_certificate_asking, Certificate};
use crate::go::GoRuntime;
use std::collections::HashSet;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// Largest trust file read. Go has no limit; a bundle this large is not a bundle.
pub const MAX_TRUST_FILE: u64 = 16 << 20;

/// One certificate a runtime trusts, with the file it came from and Go's parse of it (by
/// the release that loaded it, so the runtime's trust pool does not parse it again). Its
/// report facts are computed on first use: a node has hundreds of system roots and a probe
/// shows a few.
#[derive(Debug, Clone)]
pub struct Anchor {
    der: Vec<u8>,
    /// Lowercase hex SHA-256 of the DER.
    pub sha256: String,
    /// The file as the node names it, under the host root.
    pub file: PathBuf,
    /// `ParseCertificate` of the release in `go`, and what it asked of the release.
    cert: Arc<Certificate>,
    answers: Answers,
    go: GoRuntime,
    facts: OnceLock<CertFacts>,
}

impl Anchor {
    /// None when the newest modelled Go does not parse the DER (it would not have loaded it).
    pub fn new(der: Vec<u8>, file: &Path) -> Option<Anchor> {
        Anchor::new_as(der, file, &GoRuntime::default())
    }

    /// `new` for a runtime built with `go`: None when that release does not parse the DER.
    pub fn new_as(der: Vec<u8>, file: &Path, go: &GoRuntime) -> Option<Anchor> {
        let (release, godebug) = go.rules();
        let (cert, answers) = parse_certificate_asking(&der, release, godebug);
        Some(Anchor::parsed(cert.ok()?, answers, file, go))
    }

    /// A certificate `go` loaded (parsed by that release, asking `answers`).
    fn parsed(cert: Certificate, answers: Answers, file: &Path, go: &GoRuntime) -> Anchor {
        Anchor {
            sha256: ca::sha256_hex(&cert.raw),
            der: cert.raw.clone(),
            file: file.to_path_buf(),
            cert: Arc::new(cert),
            answers,
            go: *go,
            facts: OnceLock::new(),
        }
    }

    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// Go's parse of this certificate by `go`'s rules: the one made when it loaded, when the
    /// GODEBUG switches are the same and `go`'s release answers every question that parse
    /// asked as the loading release did (`Answers::hold_for`), else None (parse the DER
    /// with `go`'s rules).
    pub fn parsed_by(&self, go: &GoRuntime) -> Option<Arc<Certificate>> {
        let ((mine, my_debug), (theirs, their_debug)) = (self.go.rules(), go.rules());
        (my_debug == their_debug && (mine == theirs || self.answers.hold_for(theirs)))
            .then(|| self.cert.clone())
    }

    /// Go's parse of this certificate by `go`'s rules, made now (None when that release
    /// refuses it): for an anchor loaded by other rules than the runtime judging it.
    pub fn parse_as(&self, go: &GoRuntime) -> Option<Arc<Certificate>> {
        let (release, godebug) = go.rules();
        parse_certificate_as(&self.der, release, godebug)
            .ok()
            .map(Arc::new)
    }

    /// Display facts (subject, issuer, validity as the report prints them).
    pub fn facts(&self) -> &CertFacts {
        self.facts.get_or_init(|| {
            CertFacts::from_der(&self.der).unwrap_or_else(|why| CertFacts {
                der: self.der.clone(),
                subject: format!("(unparsable: {why})"),
                issuer: String::new(),
                sha256: self.sha256.clone(),
                not_before: time::OffsetDateTime::UNIX_EPOCH,
                not_after: time::OffsetDateTime::UNIX_EPOCH,
                is_ca: false,
                not_ca_reason: None,
                self_signed: false,
            })
        })
    }
}

/// The node's system roots as a Go runtime loads them (the newest modelled release decides
/// which blocks load; an older Go judging them re-parses each in its pool).
#[derive(Debug, Clone, Default)]
pub struct SystemRoots {
    pub anchors: Vec<Anchor>,
    /// The bundle file Go would use, if any was readable.
    pub bundle: Option<PathBuf>,
    /// `SystemCertPool()` per Go release, built on first use: every runtime view on the same
    /// release extends the same pool instead of parsing the system roots again.
    pools: Arc<Mutex<Vec<Arc<TrustPool>>>>,
}

impl SystemRoots {
    /// System roots from anchors already loaded (tests, and callers without a host root).
    pub fn with_anchors(anchors: Vec<Anchor>) -> SystemRoots {
        SystemRoots {
            anchors,
            ..SystemRoots::default()
        }
    }

    /// Go's `SystemCertPool()` for a runtime on `go`, parsed once per release.
    pub fn pool(&self, go: &GoRuntime) -> Arc<TrustPool> {
        let (release, godebug) = go.rules();
        let mut pools = match self.pools.lock() {
            Ok(p) => p,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(p) = pools.iter().find(|p| p.release() == (release, godebug)) {
            return p.clone();
        }
        let entries: Vec<(&[u8], Option<Arc<Certificate>>)> = self
            .anchors
            .iter()
            .map(|a| (a.der(), a.parsed_by(go)))
            .collect();
        let none: [&[u8]; 0] = [];
        let pool = Arc::new(TrustPool::new_as(&none, release, godebug).with_more(&entries));
        pools.push(pool.clone());
        pool
    }
}

/// What one runtime trusts for one host.
#[derive(Debug, Clone)]
pub struct RuntimeView {
    /// The runtime's wire name (`docker`, `containerd`, `crio`, or `system` when no runtime
    /// is installed: the system roots alone).
    pub runtime: String,
    /// The host dir the runtime reads for this host, when one exists.
    pub dir: Option<PathBuf>,
    /// The host-specific CAs this runtime adds to the system roots, in the order it loads
    /// them.
    pub host_cas: Vec<Anchor>,
    /// The runtime fails every pull from this host before any TLS (a stray `.key`, a CA file
    /// containerd cannot load): its own words.
    pub fatal: Option<String>,
    /// The runtime does not verify the server at all (containerd `skip_verify = true`).
    pub skip_verify: bool,
    /// Facts the admin should know about how this view was formed (a file that loads no
    /// certificate, containerd ignoring certs.d).
    pub notes: Vec<String>,
    /// containerd ignores its certs.d: what to change (for the fix line).
    pub ignores_certs_d: bool,
    /// Where regtrust installs this host's CA for this runtime, as the node names it (the
    /// runtime's trust root, which follows its config); None when it installs none.
    pub install_dir: Option<PathBuf>,
    /// The Go whose `AppendCertsFromPEM` decided which of the CA files' certificates load
    /// (the runtime's own, where known).
    pub go: GoRuntime,
}

impl RuntimeView {
    pub(crate) fn new(runtime: &str) -> RuntimeView {
        RuntimeView {
            runtime: runtime.to_string(),
            dir: None,
            host_cas: Vec::new(),
            fatal: None,
            skip_verify: false,
            notes: Vec::new(),
            ignores_certs_d: false,
            install_dir: None,
            go: GoRuntime::default(),
        }
    }

    /// `new` for a runtime built with `go`.
    pub(crate) fn new_as(runtime: &str, go: &GoRuntime) -> RuntimeView {
        RuntimeView {
            go: *go,
            ..RuntimeView::new(runtime)
        }
    }

    /// The roots Go would verify with, in the trust pool's order (`trust_pool`): the system
    /// pool, then this runtime's CAs (duplicates dropped, as `CertPool.AddCert` does).
    pub fn roots<'a>(&'a self, system: &'a SystemRoots) -> Vec<&'a Anchor> {
        system
            .anchors
            .iter()
            .chain(self.extra_cas(system))
            .collect()
    }

    /// This runtime's CAs that the system pool does not already hold, first occurrences.
    fn extra_cas<'a>(&'a self, system: &SystemRoots) -> Vec<&'a Anchor> {
        let in_system: HashSet<&str> = system.anchors.iter().map(|a| a.sha256.as_str()).collect();
        let mut seen = HashSet::new();
        self.host_cas
            .iter()
            .filter(|a| !in_system.contains(a.sha256.as_str()) && seen.insert(a.sha256.as_str()))
            .collect()
    }

    /// The runtime's trust pool for this host, in `roots` order: the system pool of `go`'s
    /// release (parsed once per release) extended with this view's CAs (parsed when they
    /// loaded, when `go` is the release they loaded with). `CertRef::Root(i)` is
    /// `roots(system)[i]`.
    pub fn trust_pool(&self, system: &SystemRoots, go: &GoRuntime) -> TrustPool {
        let more: Vec<(&[u8], Option<Arc<Certificate>>)> = self
            .extra_cas(system)
            .into_iter()
            .map(|a| (a.der(), a.parsed_by(go)))
            .collect();
        system.pool(go).with_more(&more)
    }
}

/// No runtime is installed (a workstation): the system roots alone, under the name
/// `system`.
pub fn system_only_view() -> RuntimeView {
    RuntimeView::new("system")
}

/// The certificates a runtime on `go` would load from a CA file, remembered with the file
/// (Go's `AppendCertsFromPEM` of that release: the Go port decides, parsing each once).
pub(crate) fn add_pem(
    out: &mut Vec<Anchor>,
    seen: &mut HashSet<String>,
    bytes: &[u8],
    file: &Path,
    go: &GoRuntime,
) -> usize {
    add_loaded(out, seen, ca::go_loadable_certs_as(bytes, go), file, go)
}

/// `add_pem` for certificates already loaded by `go` (`ca::go_loadable_certs_as`).
pub(crate) fn add_loaded(
    out: &mut Vec<Anchor>,
    seen: &mut HashSet<String>,
    certs: Vec<(Certificate, Answers)>,
    file: &Path,
    go: &GoRuntime,
) -> usize {
    let mut added = 0;
    for (cert, answers) in certs {
        let anchor = Anchor::parsed(cert, answers, file, go);
        if seen.insert(anchor.sha256.clone()) {
            out.push(anchor);
            added += 1;
        }
    }
    added
}

/// `/etc/x` → `etc/x`: a node path as a path relative to the host root.
pub(crate) fn strip_root(p: &Path) -> PathBuf {
    p.components()
        .filter(|c| !matches!(c, Component::RootDir | Component::Prefix(_)))
        .collect()
}

/// Read a file as the runtime would (links resolved inside the root); NotFound when absent.
pub(crate) fn read_in_root(root: &HostRoot, rel: &Path, limit: u64) -> io::Result<Vec<u8>> {
    root.read(rel, limit).map_err(io::Error::from)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::fs;
    use std::os::unix::fs::symlink;

    /// A self-signed certificate's PEM, distinct per name.
    pub fn pem(name: &str) -> String {
        rcgen::generate_simple_self_signed(vec![name.to_string()])
            .unwrap()
            .cert
            .pem()
    }

    pub fn sha_of(p: &str) -> String {
        use rustls_pki_types::pem::PemObject as _;
        let der = rustls_pki_types::CertificateDer::from_pem_slice(p.as_bytes()).unwrap();
        crate::ca::sha256_hex(&der)
    }

    /// A host root from (relative path, content) pairs; a path ending in `/` is a dir, a
    /// content starting with `->` a symlink.
    pub fn root_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (p, content) in files {
            let path = dir.path().join(p);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            if p.ends_with('/') {
                fs::create_dir_all(&path).unwrap();
            } else if let Some(target) = content.strip_prefix("->") {
                symlink(target, &path).unwrap();
            } else {
                fs::write(path, content).unwrap();
            }
        }
        dir
    }
}
