//! The trust view: which certificates a runtime on this node would trust for one registry,
//! computed from disk the way that runtime computes it (semantics-trust.md §1–3, §4.4,
//! §6.1; runtime-lab-facts.md traps 2–6), and where each certificate came from.
//!
//! - System roots as Go loads them on Linux: the first readable of Go's bundle files, plus
//!   every file in `/etc/ssl/certs` and `/etc/pki/tls/certs` (same-dir symlinks skipped).
//! - docker: `*.crt` in `etc/docker/certs.d/<host>`; a `.cert` without its `.key` (or the
//!   reverse) fails every pull.
//! - containerd: only when the CRI `config_path` is set; per root `<host>_<port>_`, then
//!   `<host:port>`, then `_default`; `hosts.toml` `ca` entries when one parses, else loose
//!   `*.crt`; a CA file Go loads nothing from fails every pull.
//! - crio (containers/image): the first existing of `root/.config/containers/certs.d/<host>`,
//!   `etc/containers/certs.d/<host>`, `etc/docker/certs.d/<host>`.
//!
//! Everything is read under `--host-root`, symlinks resolved inside it (an absolute link
//! target means the node's path, not ours). Plain synchronous code: callers on tokio use
//! `spawn_blocking`. It never connects anywhere and never decides a verdict.

use crate::ca::{self, CertFacts};
use crate::host::RegistryHost;
use crate::trust::Runtime;
use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;
use x509_parser::prelude::{FromDer as _, X509Certificate};

/// Go's `certFiles` for Linux (`crypto/x509/root_linux.go`), in order; the first readable
/// one is used.
pub const GO_CERT_FILES: [&str; 6] = [
    "etc/ssl/certs/ca-certificates.crt",
    "etc/pki/tls/certs/ca-bundle.crt",
    "etc/ssl/ca-bundle.pem",
    "etc/pki/tls/cacert.pem",
    "etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "etc/ssl/cert.pem",
];

/// Go's `certDirectories` for Linux: every file in them is read.
pub const GO_CERT_DIRS: [&str; 2] = ["etc/ssl/certs", "etc/pki/tls/certs"];

/// Largest trust file read. Go has no limit; a bundle this large is not a bundle.
const MAX_TRUST_FILE: u64 = 16 << 20;
/// containerd's config and hosts.toml.
const MAX_TOML: u64 = 1 << 20;
/// Symlinks followed while resolving one path (Linux's own limit).
const MAX_LINKS: usize = 40;

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
}

impl RuntimeView {
    fn new(runtime: &str) -> RuntimeView {
        RuntimeView {
            runtime: runtime.to_string(),
            dir: None,
            host_cas: Vec::new(),
            fatal: None,
            skip_verify: false,
            notes: Vec::new(),
            ignores_certs_d: false,
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

/// Load the system roots under `host_root` as Go does (`loadSystemRoots`). Unreadable
/// files are skipped, as Go skips them. `SSL_CERT_FILE`/`SSL_CERT_DIR` in the runtime's
/// own environment are not looked at.
pub fn system_roots(host_root: &Path) -> SystemRoots {
    let mut out = SystemRoots::default();
    let mut seen = HashSet::new();
    // Go reads the bundle again when it also sits in a cert dir (Debian's
    // /etc/ssl/certs/ca-certificates.crt) and drops the duplicates; reading each resolved
    // file once gives the same pool.
    let mut read: HashSet<PathBuf> = HashSet::new();
    for rel in GO_CERT_FILES {
        let Ok(resolved) = resolve_in_root(host_root, Path::new(rel)) else {
            continue;
        };
        if let Ok(bytes) = read_in_root(host_root, Path::new(rel), MAX_TRUST_FILE) {
            let file = host_root.join(rel);
            add_pem(&mut out.anchors, &mut seen, &bytes, &file);
            out.bundle = Some(file);
            read.insert(resolved);
            break;
        }
    }
    for dir in GO_CERT_DIRS {
        let Ok(names) = list_dir_in_root(host_root, Path::new(dir)) else {
            continue;
        };
        for name in names {
            let rel = Path::new(dir).join(&name);
            // Go's readUniqueDirectoryEntries: a symlink whose target has no `/` points
            // into the same dir (the OpenSSL hash links), and is skipped.
            if let Ok(target) = fs::read_link(host_root.join(&rel)) {
                if !target.as_os_str().as_encoded_bytes().contains(&b'/') {
                    continue;
                }
            }
            let fresh = resolve_in_root(host_root, &rel).is_ok_and(|r| read.insert(r));
            if !fresh {
                continue;
            }
            if let Ok(bytes) = read_in_root(host_root, &rel, MAX_TRUST_FILE) {
                add_pem(&mut out.anchors, &mut seen, &bytes, &host_root.join(&rel));
            }
        }
    }
    out
}

/// The files the system roots come from, each with its size and modification time.
type Signature = Vec<(PathBuf, u64, Option<SystemTime>)>;

/// System roots already loaded, per host root, with the signature they were loaded from.
static SYSTEM_CACHE: Mutex<Vec<(PathBuf, Signature, Arc<SystemRoots>)>> = Mutex::new(Vec::new());
const SYSTEM_CACHE_ROOTS: usize = 4;

fn signature(host_root: &Path) -> Signature {
    let mut sig = Vec::new();
    let mut add = |rel: PathBuf| {
        if let Ok(meta) = resolve_in_root(host_root, &rel).and_then(fs::metadata) {
            sig.push((rel, meta.len(), meta.modified().ok()));
        }
    };
    for rel in GO_CERT_FILES {
        add(PathBuf::from(rel));
    }
    for dir in GO_CERT_DIRS {
        for name in list_dir_in_root(host_root, Path::new(dir)).unwrap_or_default() {
            add(Path::new(dir).join(name));
        }
    }
    sig
}

/// [`system_roots`], loaded again only when one of its files changed (size or mtime), a
/// file appeared or one went away. The agent probes every minute; the system bundle
/// rarely changes (and a Go runtime itself loads it once, at start).
pub fn system_roots_cached(host_root: &Path) -> Arc<SystemRoots> {
    let sig = signature(host_root);
    if let Ok(cache) = SYSTEM_CACHE.lock() {
        if let Some((_, _, roots)) = cache.iter().find(|(r, s, _)| r == host_root && *s == sig) {
            return roots.clone();
        }
    }
    let roots = Arc::new(system_roots(host_root));
    if let Ok(mut cache) = SYSTEM_CACHE.lock() {
        cache.retain(|(r, _, _)| r != host_root);
        if cache.len() >= SYSTEM_CACHE_ROOTS {
            cache.remove(0);
        }
        cache.push((host_root.to_path_buf(), sig, roots.clone()));
    }
    roots
}

/// What `runtime` trusts for `host` under `host_root`.
pub fn runtime_view(host_root: &Path, runtime: Runtime, host: &RegistryHost) -> RuntimeView {
    match runtime {
        Runtime::Docker => docker_view(host_root, host),
        Runtime::Containerd => containerd_view(host_root, host),
        Runtime::Crio => crio_view(host_root, host),
    }
}

/// No runtime is installed (a workstation): the system roots alone, under the name
/// `system`.
pub fn system_only_view() -> RuntimeView {
    RuntimeView::new("system")
}

/// The `*.crt` files Go would load from a CA file, remembered with the file.
fn add_pem(out: &mut Vec<Anchor>, seen: &mut HashSet<String>, bytes: &[u8], file: &Path) -> usize {
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

/// Docker (`registry.ReadCertsDirectory`): `certs.d/<host>` named exactly as the image
/// reference spells the host; `*.crt` appended to the system pool (a file that loads
/// nothing is silently ignored); a `.cert` needs its `.key` and the reverse.
fn docker_view(host_root: &Path, host: &RegistryHost) -> RuntimeView {
    let mut v = RuntimeView::new(Runtime::Docker.as_str());
    let rel = Path::new(Runtime::Docker.certs_dir()).join(host.as_str());
    if !is_dir_in_root(host_root, &rel) {
        return v;
    }
    v.dir = Some(host_root.join(&rel));
    read_docker_style(host_root, &rel, &mut v, DockerFlavour::Moby);
    v
}

/// containers/image (`dockerCertDir`): the first existing dir wins, no merging.
fn crio_view(host_root: &Path, host: &RegistryHost) -> RuntimeView {
    let mut v = RuntimeView::new(Runtime::Crio.as_str());
    let candidates = [
        Path::new("root/.config/containers/certs.d").join(host.as_str()),
        Path::new(Runtime::Crio.certs_dir()).join(host.as_str()),
        Path::new(Runtime::Docker.certs_dir()).join(host.as_str()),
    ];
    let Some(rel) = candidates.iter().find(|r| is_dir_in_root(host_root, r)) else {
        return v;
    };
    v.dir = Some(host_root.join(rel));
    read_docker_style(host_root, rel, &mut v, DockerFlavour::ContainersImage);
    v
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum DockerFlavour {
    Moby,
    ContainersImage,
}

/// The `*.crt` / `*.cert` / `*.key` rules shared by Docker and containers/image
/// (`tlsconfig`-style `SetupCertificates`), in `os.ReadDir` order (sorted by name).
fn read_docker_style(host_root: &Path, rel: &Path, v: &mut RuntimeView, flavour: DockerFlavour) {
    let names = match list_dir_in_root(host_root, rel) {
        Ok(n) => n,
        Err(e) => {
            if flavour == DockerFlavour::Moby {
                v.fatal = Some(format!("open {}: {}", host_root.join(rel).display(), e));
            } else {
                // containers/image skips a dir it may not read (debug log only).
                v.notes.push(format!(
                    "{}: cannot list ({e}); CRI-O skips it",
                    host_root.join(rel).display()
                ));
            }
            return;
        }
    };
    let mut seen: HashSet<String> = HashSet::new();
    for name in &names {
        let file_rel = rel.join(name);
        let shown = host_root.join(&file_rel);
        if name.ends_with(".crt") {
            match read_in_root(host_root, &file_rel, MAX_TRUST_FILE) {
                Ok(bytes) => {
                    if add_pem(&mut v.host_cas, &mut seen, &bytes, &shown) == 0
                        && ca::go_loadable_certs(&bytes).is_empty()
                    {
                        v.notes.push(format!(
                            "{}: loads no certificate (not PEM a Go runtime reads); ignored",
                            shown.display()
                        ));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    v.notes
                        .push(format!("{}: dangling symlink; ignored", shown.display()));
                }
                Err(e) => {
                    v.fatal = Some(format!("open {}: {e}", shown.display()));
                    return;
                }
            }
        } else if let Some(stem) = name.strip_suffix(".cert") {
            let key = format!("{stem}.key");
            if !names.contains(&key) {
                let tail = match flavour {
                    DockerFlavour::Moby => "CA certificates must use the extension .crt",
                    DockerFlavour::ContainersImage => {
                        "Note that CA certificates should use the extension .crt"
                    }
                };
                v.fatal = Some(format!(
                    "missing key {key} for client certificate {name}. {tail}"
                ));
                return;
            }
        } else if let Some(stem) = name.strip_suffix(".key") {
            let cert = format!("{stem}.cert");
            if !names.contains(&cert) {
                v.fatal = Some(format!("missing client certificate {cert} for key {name}"));
                return;
            }
        }
    }
}

/// containerd's CRI registry `config_path`, as the node's config.toml says.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ConfigPath {
    /// Set: the roots, in order.
    Roots(Vec<String>),
    /// Unset: certs.d is ignored. containerd 1.x still honours
    /// `registry.configs."<host>".tls.ca_file` (here, if any).
    Unset { ca_file: Option<String> },
    /// config.toml could not be read or parsed: containerd would not start with it.
    Broken(String),
}

fn containerd_config_path(host_root: &Path, host: &RegistryHost) -> ConfigPath {
    let rel = Path::new("etc/containerd/config.toml");
    let bytes = match read_in_root(host_root, rel, MAX_TOML) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return ConfigPath::Unset { ca_file: None };
        }
        Err(e) => {
            return ConfigPath::Broken(format!(
                "{}: cannot read: {e}",
                host_root.join(rel).display()
            ))
        }
    };
    let doc: toml::Table = match std::str::from_utf8(&bytes)
        .map_err(|e| e.to_string())
        .and_then(|t| toml::from_str(t).map_err(|e| e.message().to_string()))
    {
        Ok(d) => d,
        Err(e) => {
            return ConfigPath::Broken(format!(
                "{}: does not parse: {e}",
                host_root.join(rel).display()
            ))
        }
    };
    let registry =
        |plugin: &str| -> Option<&toml::Value> { doc.get("plugins")?.get(plugin)?.get("registry") };
    for plugin in ["io.containerd.cri.v1.images", "io.containerd.grpc.v1.cri"] {
        if let Some(toml::Value::String(s)) = registry(plugin).and_then(|r| r.get("config_path")) {
            let roots: Vec<String> = s
                .split(':')
                .filter(|r| !r.is_empty())
                .map(str::to_string)
                .collect();
            if !roots.is_empty() {
                return ConfigPath::Roots(roots);
            }
        }
    }
    let ca_file = registry("io.containerd.grpc.v1.cri")
        .and_then(|r| r.get("configs"))
        .and_then(|c| c.get(host.as_str()))
        .and_then(|h| h.get("tls"))
        .and_then(|t| t.get("ca_file"))
        .and_then(|f| f.as_str())
        .filter(|f| !f.is_empty())
        .map(str::to_string);
    ConfigPath::Unset { ca_file }
}

/// containerd (`remotes/docker/config/hosts.go`, CRI `registryHosts`).
fn containerd_view(host_root: &Path, host: &RegistryHost) -> RuntimeView {
    let mut v = RuntimeView::new(Runtime::Containerd.as_str());
    let roots = match containerd_config_path(host_root, host) {
        ConfigPath::Roots(r) => r,
        ConfigPath::Unset { ca_file } => {
            v.ignores_certs_d = true;
            v.notes.push(
                "containerd's CRI registry config_path is unset in etc/containerd/config.toml: \
                 kubelet pulls ignore certs.d and use the system roots"
                    .into(),
            );
            if let Some(f) = ca_file {
                load_ca_files(host_root, Path::new("/"), &[f], &mut v);
            }
            return v;
        }
        ConfigPath::Broken(why) => {
            v.fatal = Some(format!("containerd cannot use its config: {why}"));
            return v;
        }
    };
    let mut names = Vec::new();
    if let Some(port) = host.port() {
        let bare = &host.as_str()[..host.as_str().len() - port.len() - 1];
        names.push(format!("{bare}_{port}_"));
    }
    names.push(host.as_str().to_string());
    names.push("_default".to_string());
    // hostDirFromRoots: the first root that yields a dir wins; roots are not merged.
    let found = roots.iter().find_map(|root| {
        names.iter().find_map(|n| {
            let rel = strip_root(Path::new(root)).join(n);
            is_dir_in_root(host_root, &rel).then_some(rel)
        })
    });
    let Some(rel) = found else {
        return v;
    };
    v.dir = Some(host_root.join(&rel));
    let toml_rel = rel.join("hosts.toml");
    match read_in_root(host_root, &toml_rel, MAX_TOML) {
        Ok(bytes) if !bytes.is_empty() => match crate::trust::hosts_toml::cas_for(&bytes, host) {
            Ok(crate::trust::hosts_toml::HostsToml { cas, skip_verify }) => {
                v.skip_verify = skip_verify;
                let dir = Path::new("/").join(&rel);
                load_ca_files(host_root, &dir, &cas, &mut v);
                if cas.is_empty() && !skip_verify {
                    v.notes.push(format!(
                        "{}: names no CA for {host}, and with a hosts.toml containerd ignores loose *.crt files",
                        host_root.join(&toml_rel).display()
                    ));
                }
                return v;
            }
            Err(why) => {
                v.notes.push(format!(
                    "{}: {why}; containerd falls back to the loose *.crt files",
                    host_root.join(&toml_rel).display()
                ));
            }
        },
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            v.fatal = Some(format!(
                "{}: cannot read: {e}",
                host_root.join(&toml_rel).display()
            ));
            return v;
        }
    }
    // loadCertFiles: every non-dir `*.crt` is a CA file (a hard error if it loads
    // nothing); a `.cert` is a client certificate, with `<stem>.key` when present.
    let names = list_dir_in_root(host_root, &rel).unwrap_or_default();
    let mut crt = Vec::new();
    for name in &names {
        let file_rel = rel.join(name);
        if is_dir_in_root(host_root, &file_rel) {
            continue;
        }
        if name.ends_with(".crt") {
            crt.push(name.clone());
        } else if let Some(stem) = name.strip_suffix(".cert") {
            if !names.contains(&format!("{stem}.key")) {
                v.fatal = Some(format!(
                    "failed to load X509 key pair {:?}: no {stem}.key beside it and no key inside it",
                    host_root.join(&file_rel).display().to_string()
                ));
                return v;
            }
        }
    }
    let dir = Path::new("/").join(&rel);
    load_ca_files(host_root, &dir, &crt, &mut v);
    v
}

/// Load containerd CA files (`ca` entries or loose `*.crt`): relative paths are relative to
/// the host dir; a file Go loads nothing from is `unable to load CA cert`.
fn load_ca_files(host_root: &Path, dir: &Path, files: &[String], v: &mut RuntimeView) {
    let mut seen: HashSet<String> = v.host_cas.iter().map(|a| a.sha256.clone()).collect();
    for f in files {
        let node_path = if Path::new(f).is_absolute() {
            PathBuf::from(f)
        } else {
            dir.join(f)
        };
        let rel = strip_root(&node_path);
        let shown = host_root.join(&rel);
        match read_in_root(host_root, &rel, MAX_TRUST_FILE) {
            Ok(bytes) => {
                if ca::go_loadable_certs(&bytes).is_empty() {
                    v.fatal = Some(format!(
                        "unable to load CA cert {:?}",
                        node_path.display().to_string()
                    ));
                    return;
                }
                add_pem(&mut v.host_cas, &mut seen, &bytes, &shown);
            }
            Err(e) => {
                v.fatal = Some(format!(
                    "unable to read CA cert {:?}: {e}",
                    node_path.display().to_string()
                ));
                return;
            }
        }
    }
}

/// `/etc/x` → `etc/x`: a node path as a path relative to the host root.
fn strip_root(p: &Path) -> PathBuf {
    p.components()
        .filter(|c| !matches!(c, Component::RootDir | Component::Prefix(_)))
        .collect()
}

/// Resolve `rel` under `root` as the node's kernel would resolve `/rel`: symlinks followed,
/// absolute targets taken from the node's root, `..` never climbing above it.
pub fn resolve_in_root(root: &Path, rel: &Path) -> io::Result<PathBuf> {
    let mut done = PathBuf::new();
    let mut todo: Vec<std::ffi::OsString> = rel
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut links = 0;
    while let Some(part) = todo.pop() {
        if part == ".." {
            done.pop();
            continue;
        }
        let next = done.join(&part);
        match fs::symlink_metadata(root.join(&next)) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(io::Error::other("too many levels of symbolic links"));
                }
                let target = fs::read_link(root.join(&next))?;
                if target.is_absolute() {
                    done = PathBuf::new();
                }
                for c in target.components().rev() {
                    match c {
                        Component::Normal(s) => todo.push(s.to_os_string()),
                        Component::ParentDir => todo.push("..".into()),
                        _ => {}
                    }
                }
            }
            Ok(_) => done = next,
            Err(e) if e.kind() == io::ErrorKind::NotFound && todo.is_empty() => {
                return Err(e);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(root.join(done))
}

fn read_in_root(root: &Path, rel: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let path = resolve_in_root(root, rel)?;
    ca::read_capped(&path, limit).map_err(|e| match e {
        ca::ReadCappedError::Io(e) => e,
        other => io::Error::other(other.to_string()),
    })
}

fn is_dir_in_root(root: &Path, rel: &Path) -> bool {
    resolve_in_root(root, rel).is_ok_and(|p| p.is_dir())
}

/// File names in a dir under the root, sorted as Go's `os.ReadDir` sorts them.
fn list_dir_in_root(root: &Path, rel: &Path) -> io::Result<Vec<String>> {
    let dir = resolve_in_root(root, rel)?;
    let mut names: Vec<String> = fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A self-signed certificate's PEM, distinct per name.
    fn pem(name: &str) -> String {
        rcgen::generate_simple_self_signed(vec![name.to_string()])
            .unwrap()
            .cert
            .pem()
    }

    fn sha_of(p: &str) -> String {
        use rustls_pki_types::pem::PemObject as _;
        let der = rustls_pki_types::CertificateDer::from_pem_slice(p.as_bytes()).unwrap();
        ca::sha256_hex(&der)
    }

    /// A host root from (relative path, content) pairs; a path ending in `/` is a dir, a
    /// content starting with `->` a symlink.
    fn root_with(files: &[(&str, &str)]) -> tempfile::TempDir {
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

    fn shas(v: &RuntimeView) -> Vec<String> {
        v.host_cas.iter().map(|a| a.sha256.clone()).collect()
    }

    const CRI_ON: &str = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d\"\n";

    #[test]
    fn docker_reads_crt_files_only_and_fails_on_stray_halves() {
        let (a, b) = (pem("a"), pem("b"));
        let h = RegistryHost::parse("h:5000").unwrap();
        let d = "etc/docker/certs.d/h:5000";
        type Files = Vec<(String, String)>;
        let cases: Vec<(Files, Vec<String>, Option<&str>)> = vec![
            (vec![(format!("{d}/ca.crt"), a.clone())], vec![sha_of(&a)], None),
            // ca.pem is ignored; a garbage .crt loads nothing and is noted; order is by name.
            (
                vec![
                    (format!("{d}/z.crt"), a.clone()),
                    (format!("{d}/b.crt"), b.clone()),
                    (format!("{d}/ca.pem"), pem("c")),
                    (format!("{d}/junk.crt"), "not a cert".into()),
                ],
                vec![sha_of(&b), sha_of(&a)],
                None,
            ),
            (
                vec![(format!("{d}/ca.crt"), a.clone()), (format!("{d}/ca.key"), "k".into())],
                vec![],
                Some("missing client certificate ca.cert for key ca.key"),
            ),
            (
                vec![(format!("{d}/ca.cert"), a.clone())],
                vec![],
                Some("missing key ca.key for client certificate ca.cert. CA certificates must use the extension .crt"),
            ),
            (
                vec![(format!("{d}/c.cert"), a.clone()), (format!("{d}/c.key"), "k".into()), (format!("{d}/ca.crt"), b.clone())],
                vec![sha_of(&b)],
                None,
            ),
            // A private key inside a .crt is not a certificate: nothing loads from it.
            (
                vec![(format!("{d}/ca.crt"), "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".into())],
                vec![],
                None,
            ),
            (vec![], vec![], None),
        ];
        for (files, want, fatal) in cases {
            let refs: Vec<(&str, &str)> = files
                .iter()
                .map(|(p, c)| (p.as_str(), c.as_str()))
                .collect();
            let root = root_with(&refs);
            let v = runtime_view(root.path(), Runtime::Docker, &h);
            assert_eq!(v.fatal.as_deref(), fatal, "{files:?}");
            if fatal.is_none() {
                assert_eq!(shas(&v), want, "{files:?}");
            }
        }
    }

    #[test]
    fn crio_takes_the_first_existing_dir() {
        let (a, b) = (pem("a"), pem("b"));
        let h = RegistryHost::parse("h:5000").unwrap();
        // An empty dir in root's home shadows everything.
        let root = root_with(&[
            ("root/.config/containers/certs.d/h:5000/", ""),
            ("etc/containers/certs.d/h:5000/ca.crt", &a),
        ]);
        let v = runtime_view(root.path(), Runtime::Crio, &h);
        assert!(v.host_cas.is_empty());
        assert!(v
            .dir
            .unwrap()
            .ends_with("root/.config/containers/certs.d/h:5000"));
        let root = root_with(&[
            ("etc/containers/certs.d/h:5000/ca.crt", &a),
            ("etc/docker/certs.d/h:5000/ca.crt", &b),
        ]);
        assert_eq!(
            shas(&runtime_view(root.path(), Runtime::Crio, &h)),
            [sha_of(&a)]
        );
        let root = root_with(&[("etc/docker/certs.d/h:5000/ca.crt", &b)]);
        assert_eq!(
            shas(&runtime_view(root.path(), Runtime::Crio, &h)),
            [sha_of(&b)]
        );
        let v = runtime_view(
            root.path(),
            Runtime::Crio,
            &RegistryHost::parse("other").unwrap(),
        );
        assert!(v.dir.is_none() && v.host_cas.is_empty() && v.fatal.is_none());
        let root = root_with(&[("etc/containers/certs.d/h:5000/ca.key", "k")]);
        assert_eq!(
            runtime_view(root.path(), Runtime::Crio, &h)
                .fatal
                .as_deref(),
            Some("missing client certificate ca.cert for key ca.key")
        );
    }

    #[test]
    fn containerd_follows_config_path_and_hosts_toml() {
        let (a, b, c) = (pem("a"), pem("b"), pem("c"));
        let h = RegistryHost::parse("h:5000").unwrap();
        let d = "etc/containerd/certs.d";
        struct Case<'a> {
            name: &'a str,
            files: Vec<(String, String)>,
            want: Vec<String>,
            fatal: Option<&'a str>,
            ignores: bool,
            skip_verify: bool,
        }
        let case = |name, files: Vec<(String, String)>, want, fatal, ignores| Case {
            name,
            files,
            want,
            fatal,
            ignores,
            skip_verify: false,
        };
        let cfg = |extra: Vec<(String, String)>| {
            let mut v = vec![("etc/containerd/config.toml".to_string(), CRI_ON.to_string())];
            v.extend(extra);
            v
        };
        let mut cases = vec![
            case("no config: certs.d ignored", vec![(format!("{d}/h:5000/ca.crt"), a.clone())], vec![], None, true),
            case(
                "config_path unset, 1.x ca_file honoured",
                vec![
                    (
                        "etc/containerd/config.toml".into(),
                        "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"h:5000\".tls]\n  ca_file = \"/etc/pki/h.pem\"\n".to_string(),
                    ),
                    ("etc/pki/h.pem".into(), b.clone()),
                    (format!("{d}/h:5000/ca.crt"), a.clone()),
                ],
                vec![sha_of(&b)],
                None,
                true,
            ),
            case("loose ca.crt", cfg(vec![(format!("{d}/h:5000/ca.crt"), a.clone())]), vec![sha_of(&a)], None, false),
            case(
                "h_5000_ shadows h:5000",
                cfg(vec![(format!("{d}/h:5000/ca.crt"), a.clone()), (format!("{d}/h_5000_/ca.crt"), b.clone())]),
                vec![sha_of(&b)],
                None,
                false,
            ),
            case("_default", cfg(vec![(format!("{d}/_default/ca.crt"), c.clone())]), vec![sha_of(&c)], None, false),
            case(
                "hosts.toml ca entries only; loose crt ignored",
                cfg(vec![
                    (format!("{d}/h:5000/hosts.toml"), "server = \"https://h:5000\"\n[host.\"https://h:5000\"]\n  ca = [\"mine.pem\", \"/etc/abs.pem\"]\n".into()),
                    (format!("{d}/h:5000/mine.pem"), b.clone()),
                    ("etc/abs.pem".into(), c.clone()),
                    (format!("{d}/h:5000/ca.crt"), a.clone()),
                ]),
                vec![sha_of(&b), sha_of(&c)],
                None,
                false,
            ),
            case(
                "hosts.toml for a mirror only: nothing for the origin",
                cfg(vec![
                    (format!("{d}/h:5000/hosts.toml"), "server = \"https://other:443\"\n[host.\"https://mirror:5000\"]\n  ca = \"ca.crt\"\n".into()),
                    (format!("{d}/h:5000/ca.crt"), a.clone()),
                ]),
                vec![],
                None,
                false,
            ),
            case(
                "hosts.toml without [host]: 1.x falls back to loose files",
                cfg(vec![
                    (format!("{d}/h:5000/hosts.toml"), "server = \"https://h:5000\"\nca = \"other.pem\"\n".into()),
                    (format!("{d}/h:5000/ca.crt"), a.clone()),
                ]),
                vec![sha_of(&a)],
                None,
                false,
            ),
            case(
                "unparsable hosts.toml falls back",
                cfg(vec![(format!("{d}/h:5000/hosts.toml"), "[[[".into()), (format!("{d}/h:5000/ca.crt"), a.clone())]),
                vec![sha_of(&a)],
                None,
                false,
            ),
            case(
                "a loose crt that loads nothing fails the host",
                cfg(vec![(format!("{d}/h:5000/ca.crt"), a.clone()), (format!("{d}/h:5000/junk.crt"), "junk".into())]),
                vec![],
                Some("unable to load CA cert \"/etc/containerd/certs.d/h:5000/junk.crt\""),
                false,
            ),
            case(
                "a listed ca that is missing fails the host",
                cfg(vec![(format!("{d}/h:5000/hosts.toml"), "[host.\"https://h:5000\"]\n  ca = \"nope.crt\"\n".into())]),
                vec![],
                Some("unable to read CA cert \"/etc/containerd/certs.d/h:5000/nope.crt\""),
                false,
            ),
            case("broken config.toml", vec![("etc/containerd/config.toml".into(), "[[[".into())], vec![], Some("containerd cannot use its config"), false),
        ];
        cases.push(Case {
            name: "skip_verify",
            files: cfg(vec![(
                format!("{d}/h:5000/hosts.toml"),
                "[host.\"https://h:5000\"]\n  skip_verify = true\n".into(),
            )]),
            want: vec![],
            fatal: None,
            ignores: false,
            skip_verify: true,
        });
        for c in cases {
            let refs: Vec<(&str, &str)> = c
                .files
                .iter()
                .map(|(p, x)| (p.as_str(), x.as_str()))
                .collect();
            let root = root_with(&refs);
            let v = runtime_view(root.path(), Runtime::Containerd, &h);
            match c.fatal {
                Some(f) => assert!(
                    v.fatal.as_deref().is_some_and(|x| x.starts_with(f)),
                    "{}: {:?}",
                    c.name,
                    v.fatal
                ),
                None => {
                    assert_eq!(v.fatal, None, "{}", c.name);
                    assert_eq!(shas(&v), c.want, "{}", c.name);
                }
            }
            assert_eq!(v.ignores_certs_d, c.ignores, "{}", c.name);
            assert_eq!(v.skip_verify, c.skip_verify, "{}", c.name);
        }
    }

    #[test]
    fn system_roots_as_go_loads_them() {
        let (a, b, c, d) = (pem("a"), pem("b"), pem("c"), pem("d"));
        let root = root_with(&[
            // The first readable bundle only.
            ("etc/pki/tls/certs/ca-bundle.crt", &a),
            ("etc/ssl/cert.pem", &b),
            // Every file of the cert dirs, any name; an absolute symlink is the node's path.
            ("etc/ssl/certs/extra.pem", &c),
            ("usr/share/ca-certificates/d.crt", &d),
            ("etc/ssl/certs/d.pem", "->/usr/share/ca-certificates/d.crt"),
            ("etc/ssl/certs/garbage", "\u{0}\u{1}junk"),
            (
                "etc/ssl/certs/key.pem",
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            ),
            ("etc/ssl/certs/sub/", ""),
        ]);
        let s = system_roots(root.path());
        let got: Vec<String> = s.anchors.iter().map(|a| a.sha256.clone()).collect();
        // ca-bundle.crt also sits in etc/pki/tls/certs: read once (deduplicated).
        assert_eq!(got, [sha_of(&a), sha_of(&d), sha_of(&c)]);
        assert!(s
            .bundle
            .unwrap()
            .ends_with("etc/pki/tls/certs/ca-bundle.crt"));
        assert!(system_roots(tempfile::tempdir().unwrap().path())
            .anchors
            .is_empty());
    }

    #[test]
    fn symlinks_stay_inside_the_host_root() {
        let a = pem("inside");
        let root = root_with(&[
            ("etc/target.pem", &a),
            ("etc/docker/certs.d/h/abs.crt", "->/etc/target.pem"),
            (
                "etc/docker/certs.d/h/up.crt",
                "->../../../../../../../../etc/target.pem",
            ),
            ("etc/docker/certs.d/h/loop.crt", "->loop.crt"),
            ("etc/docker/certs.d/h/dangling.crt", "->/nowhere"),
        ]);
        let h = RegistryHost::parse("h").unwrap();
        let v = runtime_view(root.path(), Runtime::Docker, &h);
        // Both links resolve to the host root's etc/target.pem (one certificate, deduped),
        // never the machine's /etc; the loop is an error Docker fails on.
        assert_eq!(
            v.fatal.as_deref().map(|f| f.contains("loop.crt")),
            Some(true),
            "{v:?}"
        );
        let rel = Path::new("etc/docker/certs.d/h/up.crt");
        assert_eq!(
            resolve_in_root(root.path(), rel).unwrap(),
            root.path().join("etc/target.pem")
        );
        assert_eq!(
            resolve_in_root(root.path(), Path::new("etc/docker/certs.d/h/abs.crt")).unwrap(),
            root.path().join("etc/target.pem")
        );
        assert!(
            resolve_in_root(root.path(), Path::new("etc/docker/certs.d/h/dangling.crt")).is_err()
        );
    }

    #[test]
    fn the_system_cache_notices_changes() {
        let (a, b) = (pem("a"), pem("b"));
        let root = root_with(&[("etc/ssl/certs/ca-certificates.crt", &a)]);
        let first = system_roots_cached(root.path());
        assert!(Arc::ptr_eq(&first, &system_roots_cached(root.path())));
        fs::write(root.path().join("etc/ssl/certs/extra.pem"), &b).unwrap();
        let second = system_roots_cached(root.path());
        let got: Vec<&str> = second.anchors.iter().map(|x| x.sha256.as_str()).collect();
        assert_eq!(got, [sha_of(&a), sha_of(&b)]);
        fs::remove_file(root.path().join("etc/ssl/certs/extra.pem")).unwrap();
        assert_eq!(system_roots_cached(root.path()).anchors.len(), 1);
    }

    #[test]
    fn huge_files_are_not_read() {
        let root = root_with(&[("etc/ssl/certs/", "")]);
        let f = fs::File::create(root.path().join("etc/ssl/certs/huge.pem")).unwrap();
        f.set_len(MAX_TRUST_FILE + 1).unwrap();
        assert!(system_roots(root.path()).anchors.is_empty());
    }

    #[test]
    fn authorities_match_like_urls() {
        let h = RegistryHost::parse("h:5000").unwrap();
        let bare = RegistryHost::parse("h").unwrap();
        let cases = [
            ("https://h:5000", &h, true),
            ("https://H:5000/v2", &h, true),
            ("h:5000", &h, true),
            ("https://h:5001", &h, false),
            ("https://h", &bare, true),
            ("https://h:443", &bare, true),
            ("http://h", &bare, false),
            ("https://other", &bare, false),
            ("https://", &bare, false),
            ("https://a b", &bare, false),
        ];
        for (url, host, want) in cases {
            assert_eq!(
                crate::trust::hosts_toml::same_authority(url, host),
                want,
                "{url} vs {host}"
            );
        }
    }
}
