//! Docker (moby): where it reads a registry's CA and what in its config changes that.
//! - `certs.d/<host>` named exactly as the image reference spells the host; `*.crt`
//!   appended to the system pool (a file that loads nothing is silently ignored); a `.cert`
//!   needs its `.key` and the reverse (moby v24.0.0 `registry/registry.go`
//!   `ReadCertsDirectory`, with containers/image's twin in `crio`).
//! - `/etc/docker/daemon.json` `insecure-registries` (host[:port] or CIDR): Docker skips
//!   verification for those entirely (moby v24.0.0 `registry/config.go`
//!   `isSecureIndex`/`newServiceConfig`), so a CA installed for them is never used.
//!
//! Read-only: the writer asks `Node::trust_root`.

use super::view::{add_loaded, read_in_root, RuntimeView, MAX_TRUST_FILE};
use super::HostRoot;
use crate::ca;
use crate::go::GoRuntime;
use crate::host::RegistryHost;
use crate::report::Problem;
use std::collections::HashSet;
use std::io;
use std::net::IpAddr;
use std::path::Path;

pub const CERTS_D: &str = "etc/docker/certs.d";
pub const DAEMON_JSON: &str = "etc/docker/daemon.json";
const MAX_DAEMON_JSON: u64 = 1 << 20;

/// What `daemon.json` says that matters for trust.
#[derive(Debug, Default)]
pub struct Config {
    /// `insecure-registries` as written.
    pub insecure: Vec<String>,
    /// daemon.json exists but cannot be used (dockerd would not start with it).
    pub broken: Option<String>,
}

impl Config {
    pub fn read(root: &HostRoot) -> Config {
        let rel = Path::new(DAEMON_JSON);
        let bytes = match root.read(rel, MAX_DAEMON_JSON) {
            Ok(b) => b,
            Err(super::root::ReadError::Missing) => return Config::default(),
            Err(e) => {
                return Config {
                    broken: Some(format!("cannot read: {e}")),
                    ..Config::default()
                }
            }
        };
        let doc: serde_json::Value = match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(e) => {
                return Config {
                    broken: Some(format!(
                        "does not parse as JSON ({e}); dockerd will not start with it"
                    )),
                    ..Config::default()
                }
            }
        };
        let insecure = match doc.get("insecure-registries") {
            None => Vec::new(),
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            Some(_) => {
                return Config {
                    broken: Some("`insecure-registries` is not a list".into()),
                    ..Config::default()
                }
            }
        };
        Config {
            insecure,
            broken: None,
        }
    }

    /// The `insecure-registries` entry that covers `host`, if any.
    pub fn insecure_entry(&self, host: &RegistryHost) -> Option<&str> {
        self.insecure
            .iter()
            .find(|e| insecure_covers(e, host))
            .map(String::as_str)
    }

    pub fn problems(&self, root: &HostRoot, hosts: &[RegistryHost]) -> Vec<Problem> {
        let source = root.display(Path::new(DAEMON_JSON)).display().to_string();
        let mut out = Vec::new();
        if let Some(why) = &self.broken {
            out.push(Problem::new(source.clone(), why.clone()));
        }
        for host in hosts {
            if let Some(entry) = self.insecure_entry(host) {
                out.push(Problem::new(
                    source.clone(),
                    format!(
                        "insecure-registries lists {entry:?}: Docker does not verify TLS for {host} at all, so the CA \
                         regtrust installs is never used and any server is accepted; fix: remove it from insecure-registries \
                         and restart dockerd"
                    ),
                ));
            }
        }
        out
    }
}

/// An `insecure-registries` entry is a CIDR (IP hosts inside it) or a `host[:port]` index
/// name compared as written (moby `isSecureIndex`).
fn insecure_covers(entry: &str, host: &RegistryHost) -> bool {
    let entry = entry
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    if let Some((net, bits)) = entry.split_once('/') {
        let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
            return false;
        };
        let name = host.name().trim_start_matches('[').trim_end_matches(']');
        let Ok(ip) = name.parse::<IpAddr>() else {
            return false;
        };
        return match (net, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) if bits <= 32 => {
                let mask = if bits == 0 {
                    0
                } else {
                    u32::MAX << (32 - bits)
                };
                u32::from(n) & mask == u32::from(i) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(i)) if bits <= 128 => {
                let mask = if bits == 0 {
                    0
                } else {
                    u128::MAX << (128 - bits)
                };
                u128::from(n) & mask == u128::from(i) & mask
            }
            _ => false,
        };
    }
    host.dir_names()
        .iter()
        .any(|d| d.eq_ignore_ascii_case(entry))
}

/// What Docker trusts for `host`.
pub fn view(root: &HostRoot, host: &RegistryHost, go: &GoRuntime) -> RuntimeView {
    let mut v = RuntimeView::new_as(super::Runtime::Docker.as_str(), go);
    let rel = Path::new(CERTS_D).join(host.as_str());
    if !root.is_dir(&rel) {
        return v;
    }
    v.dir = Some(root.display(&rel));
    read_docker_style(root, &rel, &mut v, DockerFlavour::Moby);
    v
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum DockerFlavour {
    Moby,
    ContainersImage,
}

/// The `*.crt` / `*.cert` / `*.key` rules shared by Docker and containers/image
/// (`tlsconfig`-style `SetupCertificates`), in `os.ReadDir` order (sorted by name).
pub(crate) fn read_docker_style(
    root: &HostRoot,
    rel: &Path,
    v: &mut RuntimeView,
    flavour: DockerFlavour,
) {
    let names = match root.list(rel) {
        Ok(n) => n,
        Err(e) => {
            if flavour == DockerFlavour::Moby {
                v.fatal = Some(format!("open {}: {}", root.display(rel).display(), e));
            } else {
                // containers/image skips a dir it may not read (debug log only).
                v.notes.push(format!(
                    "{}: cannot list ({e}); CRI-O skips it",
                    root.display(rel).display()
                ));
            }
            return;
        }
    };
    let mut seen: HashSet<String> = HashSet::new();
    for name in &names {
        let file_rel = rel.join(name);
        let shown = root.display(&file_rel);
        if name.ends_with(".crt") {
            match read_in_root(root, &file_rel, MAX_TRUST_FILE) {
                Ok(bytes) => {
                    let loaded = ca::go_loadable_certs_as(&bytes, &v.go);
                    let none = loaded.is_empty();
                    add_loaded(&mut v.host_cas, &mut seen, loaded, &shown, &v.go);
                    if none {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::view::tests::{pem, root_with, sha_of};

    #[test]
    fn insecure_registries_cover_hosts_and_cidrs() {
        let cases = [
            ("h:5000", "h:5000", true),
            ("H:5000", "h:5000", true),
            ("h", "h:5000", false),
            ("http://h:5000/", "h:5000", true),
            ("10.0.0.0/8", "10.1.2.3:5000", true),
            ("10.0.0.0/8", "11.1.2.3:5000", false),
            ("10.0.0.0/8", "harbor.local", false),
            ("::1/128", "[::1]:5000", true),
            ("garbage/xx", "h", false),
            ("h", "h", true),
            ("h:443", "h", true),
        ];
        for (entry, host, want) in cases {
            let h = RegistryHost::parse(host).unwrap();
            assert_eq!(insecure_covers(entry, &h), want, "{entry} vs {host}");
        }
    }

    #[test]
    fn daemon_json_problems() {
        let h = RegistryHost::parse("h:5000").unwrap();
        for (text, want) in [
            (
                r#"{"insecure-registries":["h:5000"]}"#,
                Some("does not verify TLS for h:5000"),
            ),
            (r#"{"insecure-registries":["other:5000"]}"#, None),
            (r#"{"insecure-registries":"h:5000"}"#, Some("is not a list")),
            ("{", Some("does not parse as JSON")),
            ("{}", None),
        ] {
            let root = root_with(&[(DAEMON_JSON, text)]);
            let r = HostRoot::new(root.path());
            let got = Config::read(&r).problems(&r, std::slice::from_ref(&h));
            match want {
                None => assert!(got.is_empty(), "{text}: {got:?}"),
                Some(w) => assert!(
                    got.len() == 1
                        && got[0].message.contains(w)
                        && got[0].source.ends_with("daemon.json"),
                    "{text}: {got:?}"
                ),
            }
        }
    }

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
            (vec![], vec![], None),
        ];
        for (files, want, fatal) in cases {
            let refs: Vec<(&str, &str)> = files
                .iter()
                .map(|(p, c)| (p.as_str(), c.as_str()))
                .collect();
            let root = root_with(&refs);
            let v = view(&HostRoot::new(root.path()), &h, &GoRuntime::default());
            assert_eq!(v.fatal.as_deref(), fatal, "{files:?}");
            if fatal.is_none() {
                assert_eq!(
                    v.host_cas
                        .iter()
                        .map(|a| a.sha256.clone())
                        .collect::<Vec<_>>(),
                    want,
                    "{files:?}"
                );
            }
        }
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
        let r = HostRoot::new(root.path());
        let v = view(&r, &h, &GoRuntime::default());
        // Both links resolve to the host root's etc/target.pem, never the machine's /etc;
        // the loop is an error Docker fails on.
        assert_eq!(
            v.fatal.as_deref().map(|f| f.contains("loop.crt")),
            Some(true),
            "{v:?}"
        );
        for l in ["up.crt", "abs.crt"] {
            assert_eq!(
                r.resolve(&Path::new("etc/docker/certs.d/h").join(l))
                    .unwrap(),
                Path::new("etc/target.pem")
            );
        }
        assert!(r
            .resolve(Path::new("etc/docker/certs.d/h/dangling.crt"))
            .is_err());
    }
}
