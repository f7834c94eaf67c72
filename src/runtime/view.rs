//! The trust view: which certificates a runtime on this node would trust for one registry,
//! and where each came from (semantics-trust.md §1–3, §4.4, §6.1). The types live here; each
//! runtime's module (`docker`, `containerd`, `crio`) computes its own view from disk by its
//! own rules, and `system` loads the OS roots. The probe asks `Node::view`; it never
//! connects anywhere from here and never decides a verdict.

use super::HostRoot;
use crate::ca::{self, CertFacts};
use std::collections::HashSet;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;
use x509_parser::prelude::{FromDer as _, X509Certificate};

/// Largest trust file read. Go has no limit; a bundle this large is not a bundle.
pub const MAX_TRUST_FILE: u64 = 16 << 20;

/// One certificate a runtime trusts, with the file it came from. Its report facts are
/// computed on first use: a node has hundreds of system roots and a probe shows a few.
#[derive(Debug, Clone)]
pub struct Anchor {
    der: Vec<u8>,
    /// The raw DER subject, to find candidate issuers by byte equality as Go does.
    pub raw_subject: Vec<u8>,
    /// Lowercase hex SHA-256 of the DER.
    pub sha256: String,
    /// The file as the node names it, under the host root.
    pub file: PathBuf,
    facts: OnceLock<CertFacts>,
}

impl Anchor {
    /// None when the DER does not parse (Go would not have loaded it).
    pub fn new(der: Vec<u8>, file: &Path) -> Option<Anchor> {
        let raw_subject = {
            let (_, cert) = X509Certificate::from_der(&der).ok()?;
            cert.subject().as_raw().to_vec()
        };
        Some(Anchor {
            sha256: ca::sha256_hex(&der),
            der,
            raw_subject,
            file: file.to_path_buf(),
            facts: OnceLock::new(),
        })
    }

    pub fn der(&self) -> &[u8] {
        &self.der
    }

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

/// The node's system roots as a Go runtime loads them.
#[derive(Debug, Clone, Default)]
pub struct SystemRoots {
    pub anchors: Vec<Anchor>,
    /// The bundle file Go would use, if any was readable.
    pub bundle: Option<PathBuf>,
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
        }
    }

    /// The roots Go would verify with: the system pool, then this runtime's CAs
    /// (duplicates dropped, as `CertPool.AddCert` does).
    pub fn roots<'a>(&'a self, system: &'a SystemRoots) -> Vec<&'a Anchor> {
        let mut seen = HashSet::new();
        system
            .anchors
            .iter()
            .chain(self.host_cas.iter())
            .filter(|a| seen.insert(a.sha256.as_str()))
            .collect()
    }
}

/// No runtime is installed (a workstation): the system roots alone, under the name
/// `system`.
pub fn system_only_view() -> RuntimeView {
    RuntimeView::new("system")
}

/// The `*.crt` files Go would load from a CA file, remembered with the file.
pub(crate) fn add_pem(
    out: &mut Vec<Anchor>,
    seen: &mut HashSet<String>,
    bytes: &[u8],
    file: &Path,
) -> usize {
    let mut added = 0;
    for der in ca::go_loadable_certs(bytes) {
        let Some(anchor) = Anchor::new(der, file) else {
            continue;
        };
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
