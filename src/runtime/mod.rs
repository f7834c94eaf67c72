//! Where each container runtime on the node reads a registry's trust, hence where regtrust
//! writes: one module per runtime, asked by sync's writer (`trust::layout`/`apply`), the
//! config-problem checks (`trust::checks`) and the probe's trust view, so there is one
//! answer. Everything under `--host-root` is read and written through `HostRoot`.
//!
//! - `root`: `HostRoot`, dir-handle (`openat`) reads and writes with one symlink policy.
//! - `containerd`: the config the node's containerd uses (stock, k3s, RKE2, microk8s, with
//!   `imports`), its CRI `config_path`, and its hosts-dir lookup.
//! - `hosts_toml`: containerd's hosts.toml, read by containerd's rules (the writer's
//!   foreign-file check and the view share it).
//! - `distro`: k3s/RKE2 `registries.yaml`, the hosts those distributions own.
//! - `docker`: `certs.d` and `daemon.json` `insecure-registries`.
//! - `crio`: containers/image's `certs.d` precedence and `registries.conf(.d)` mirrors and
//!   `insecure` entries.
//! - `system`: the OS trust store of every Linux family, as Go's `root_linux.go` lists it.
//! - `view`: what one runtime trusts for one host (the probe's input).
//!
//! [`detect`] says which runtimes a node runs, from evidence a `DirectoryOrCreate` hostPath
//! mount cannot fake (a config file, a socket, a binary), and why; [`Node`] is one pass's
//! reading of the node's runtime configs.

pub mod containerd;
pub mod crio;
pub mod distro;
pub mod docker;
pub mod hosts_toml;
pub mod root;
pub mod system;
pub mod view;

pub use root::HostRoot;

use crate::go::GoRuntime;
use crate::host::RegistryHost;
use crate::report::Problem;
use root::Kind;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Runtime {
    Docker,
    Containerd,
    Crio,
}

impl Runtime {
    pub const ALL: [Runtime; 3] = [Runtime::Docker, Runtime::Containerd, Runtime::Crio];

    /// The wire name, as in `--runtime` and in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Docker => "docker",
            Runtime::Containerd => "containerd",
            Runtime::Crio => "crio",
        }
    }

    pub fn parse(s: &str) -> Option<Runtime> {
        Runtime::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The stock `certs.d` dir, relative to the host root. Where containerd reads depends on
    /// its config: ask [`Node::trust_root`].
    pub fn certs_dir(self) -> &'static str {
        match self {
            Runtime::Docker => docker::CERTS_D,
            Runtime::Containerd => containerd::STOCK_CERTS_D,
            Runtime::Crio => crio::CERTS_D,
        }
    }
}

/// Why `--runtime` could not be read (a usage error, exit 2).
#[derive(Debug, thiserror::Error)]
#[error("--runtime {value:?}: unknown runtime {bad:?} (expected auto, or a comma list of docker, containerd, crio)")]
pub struct RuntimeSpecError {
    value: String,
    bad: String,
}

/// A runtime found on the node, and the files that show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    pub runtime: Runtime,
    /// Node paths (under the host root) of the config files, sockets and binaries seen.
    pub evidence: Vec<String>,
}

/// What counts as evidence that a runtime is installed: a regular file (config or binary)
/// or a socket. A `DirectoryOrCreate` hostPath mount creates only empty dirs, so it can
/// never fake one (issue 10 point 4).
#[derive(Clone, Copy)]
enum Proof {
    File,
    Socket,
    /// Any regular file in this dir (drop-in configs).
    DirWithFile,
}

const DOCKER_EVIDENCE: &[(&str, Proof)] = &[
    ("etc/docker/daemon.json", Proof::File),
    ("run/docker.sock", Proof::Socket),
    ("var/run/docker.sock", Proof::Socket),
    ("usr/bin/dockerd", Proof::File),
    ("usr/sbin/dockerd", Proof::File),
    ("usr/local/bin/dockerd", Proof::File),
];

const CONTAINERD_EVIDENCE: &[(&str, Proof)] = &[
    ("etc/containerd/config.toml", Proof::File),
    ("run/containerd/containerd.sock", Proof::Socket),
    ("usr/bin/containerd", Proof::File),
    ("usr/local/bin/containerd", Proof::File),
    (containerd::K3S_CONFIG, Proof::File),
    ("run/k3s/containerd/containerd.sock", Proof::Socket),
    (containerd::RKE2_CONFIG, Proof::File),
    (containerd::MICROK8S_TEMPLATE, Proof::File),
    (
        "var/snap/microk8s/common/run/containerd.sock",
        Proof::Socket,
    ),
];

const CRIO_EVIDENCE: &[(&str, Proof)] = &[
    ("etc/crio/crio.conf", Proof::File),
    ("etc/crio/crio.conf.d", Proof::DirWithFile),
    ("run/crio/crio.sock", Proof::Socket),
    ("var/run/crio/crio.sock", Proof::Socket),
    ("usr/bin/crio", Proof::File),
    ("usr/local/bin/crio", Proof::File),
];

/// The paths (relative to the host root) that show `rt` is installed, in the order looked at.
pub fn evidence_paths(rt: Runtime) -> Vec<&'static str> {
    let table = match rt {
        Runtime::Docker => DOCKER_EVIDENCE,
        Runtime::Containerd => CONTAINERD_EVIDENCE,
        Runtime::Crio => CRIO_EVIDENCE,
    };
    table.iter().map(|(p, _)| *p).collect()
}

fn evidence(root: &HostRoot, table: &[(&str, Proof)]) -> Vec<String> {
    let mut out = Vec::new();
    for (rel, proof) in table {
        let rel = Path::new(rel);
        let ok = match proof {
            Proof::File => root.is_file(rel),
            Proof::Socket => root
                .resolve(rel)
                .ok()
                .and_then(|r| root.kind(&r).ok())
                .is_some_and(|k| k == Kind::Special),
            Proof::DirWithFile => root
                .list(rel)
                .is_ok_and(|names| names.iter().any(|n| root.is_file(&rel.join(n)))),
        };
        if ok {
            out.push(format!("/{}", rel.display()));
        }
    }
    out
}

/// The runtimes this node runs, each with its evidence, in [`Runtime::ALL`] order.
pub fn detect(host_root: &Path) -> Vec<Detected> {
    let root = HostRoot::new(host_root);
    [
        (Runtime::Docker, DOCKER_EVIDENCE),
        (Runtime::Containerd, CONTAINERD_EVIDENCE),
        (Runtime::Crio, CRIO_EVIDENCE),
    ]
    .into_iter()
    .filter_map(|(runtime, table)| {
        let evidence = evidence(&root, table);
        (!evidence.is_empty()).then_some(Detected { runtime, evidence })
    })
    .collect()
}

/// `auto` picks each runtime [`detect`] finds; otherwise a comma list.
pub fn select_runtimes(spec: &str, host_root: &Path) -> Result<Vec<Runtime>, RuntimeSpecError> {
    if spec.trim() == "auto" {
        return Ok(detect(host_root).into_iter().map(|d| d.runtime).collect());
    }
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let r = Runtime::parse(part).ok_or_else(|| RuntimeSpecError {
            value: spec.to_string(),
            bad: part.to_string(),
        })?;
        if !out.contains(&r) {
            out.push(r);
        }
    }
    out.sort();
    Ok(out)
}

/// One pass's reading of the node's runtime configs: each is read once and asked by the
/// writer, the checks and the probe.
#[derive(Debug)]
pub struct Node {
    pub root: HostRoot,
    pub runtimes: Vec<Runtime>,
    pub containerd: containerd::Config,
    pub docker: docker::Config,
    pub crio: crio::Config,
}

impl Node {
    pub fn read(host_root: &Path, runtimes: &[Runtime]) -> Node {
        let root = HostRoot::new(host_root);
        Node {
            containerd: containerd::Config::read(&root),
            docker: docker::Config::read(&root),
            crio: crio::Config::read(&root),
            root,
            runtimes: runtimes.to_vec(),
        }
    }

    /// The dir (relative to the host root) holding the per-host dirs `rt` reads first, or
    /// None when `rt` reads none (containerd without `config_path`, or whose config does
    /// not parse): then nothing is written or claimed installed for it.
    pub fn trust_root(&self, rt: Runtime) -> Option<PathBuf> {
        match rt {
            Runtime::Docker => Some(PathBuf::from(docker::CERTS_D)),
            Runtime::Crio => Some(PathBuf::from(crio::CERTS_D)),
            Runtime::Containerd => self.containerd.write_root(),
        }
    }

    /// False when the distribution owns `host` for `rt` (k3s/RKE2 registries.yaml names it):
    /// regtrust writes nothing there.
    pub fn writes_for(&self, rt: Runtime, host: &RegistryHost) -> bool {
        rt != Runtime::Containerd || self.containerd.distro_owner(host).is_none()
    }

    /// False when a runtime config that decides where files go could not be read: nothing
    /// is treated as stale this pass (it may name those dirs again once fixed).
    pub fn complete(&self) -> bool {
        !self.runtimes.contains(&Runtime::Containerd) || !self.containerd.is_broken()
    }

    /// Every dir regtrust writes into for the selected runtimes (for the watcher).
    pub fn trust_roots(&self) -> Vec<PathBuf> {
        self.runtimes
            .iter()
            .filter_map(|&r| self.trust_root(r))
            .collect()
    }

    /// Runtime-config problems that make a correctly written CA useless or change what the
    /// runtime verifies, each with its fix.
    pub fn config_problems(&self, hosts: &[RegistryHost]) -> Vec<Problem> {
        let mut out = Vec::new();
        for &rt in &self.runtimes {
            match rt {
                Runtime::Containerd => out.extend(self.containerd.problems(&self.root, hosts)),
                Runtime::Docker => out.extend(self.docker.problems(&self.root, hosts)),
                Runtime::Crio => out.extend(self.crio.problems(&self.root, hosts)),
            }
        }
        out
    }

    /// What `rt` trusts for `host`, its config's insecure entries included (Docker's
    /// `insecure-registries`, CRI-O's `insecure = true`: no verification at all).
    pub fn view(&self, rt: Runtime, host: &RegistryHost) -> view::RuntimeView {
        self.view_as(rt, host, &GoRuntime::default())
    }

    /// `view` for a runtime built with `go` (`probe::runtime_go`): that release's
    /// `ParseCertificate` decides which certificates of its CA files load.
    pub fn view_as(&self, rt: Runtime, host: &RegistryHost, go: &GoRuntime) -> view::RuntimeView {
        let mut v = match rt {
            Runtime::Docker => docker::view(&self.root, host, go),
            Runtime::Containerd => self.containerd.view(&self.root, host, go),
            Runtime::Crio => crio::view(&self.root, host, go),
        };
        let insecure = match rt {
            Runtime::Docker => self.docker.insecure_entry(host).map(|e| {
                format!(
                    "{}: insecure-registries lists {e:?}",
                    self.root.display(Path::new(docker::DAEMON_JSON)).display()
                )
            }),
            Runtime::Crio => self
                .crio
                .entries_for(host)
                .into_iter()
                .find(|e| e.insecure)
                .map(|e| {
                    format!(
                        "{}: registry {:?} is insecure",
                        self.root.display(&e.file).display(),
                        e.prefix
                    )
                }),
            Runtime::Containerd => None,
        };
        if let Some(why) = insecure {
            v.skip_verify = true;
            v.notes.push(format!(
                "{why}: {} does not verify TLS for {host}",
                rt.as_str()
            ));
        }
        v.install_dir = self
            .trust_root(rt)
            .filter(|_| self.writes_for(rt, host))
            .map(|r| Path::new("/").join(r).join(host.as_str()));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn auto_needs_evidence_an_empty_dir_cannot_fake() {
        let dir = tempfile::tempdir().unwrap();
        // What the DaemonSet's DirectoryOrCreate mounts leave on every node.
        for d in [
            "etc/docker/certs.d",
            "etc/containerd/certs.d",
            "etc/containers/certs.d",
        ] {
            fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        assert_eq!(select_runtimes("auto", dir.path()).unwrap(), []);
        fs::create_dir_all(dir.path().join("etc/crio/crio.conf.d")).unwrap();
        assert_eq!(select_runtimes("auto", dir.path()).unwrap(), []);
        fs::write(
            dir.path().join("etc/crio/crio.conf.d/10-crio.conf"),
            "[crio]\n",
        )
        .unwrap();
        let got = detect(dir.path());
        assert_eq!(
            got,
            [Detected {
                runtime: Runtime::Crio,
                evidence: vec!["/etc/crio/crio.conf.d".into()]
            }]
        );
        fs::create_dir_all(dir.path().join("var/lib/rancher/k3s/agent/etc/containerd")).unwrap();
        fs::write(dir.path().join(containerd::K3S_CONFIG), "version = 2\n").unwrap();
        let sock = dir.path().join("run/containerd/containerd.sock");
        fs::create_dir_all(sock.parent().unwrap()).unwrap();
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let got = detect(dir.path());
        assert_eq!(got[0].runtime, Runtime::Containerd);
        assert_eq!(
            got[0].evidence,
            [
                "/run/containerd/containerd.sock",
                "/var/lib/rancher/k3s/agent/etc/containerd/config.toml"
            ]
        );
        // A dir where the socket should be is no socket.
        fs::create_dir_all(dir.path().join("run/docker.sock")).unwrap();
        assert!(!detect(dir.path())
            .iter()
            .any(|d| d.runtime == Runtime::Docker));
    }

    #[test]
    fn views_carry_insecure_entries_and_the_install_dir() {
        let dir = tempfile::tempdir().unwrap();
        let w = |rel: &str, text: &str| {
            let p = dir.path().join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        };
        w(
            docker::DAEMON_JSON,
            "{\"insecure-registries\":[\"h:5000\"]}",
        );
        w(
            crio::REGISTRIES_CONF,
            "[[registry]]\nlocation = \"other:5000\"\ninsecure = true\n",
        );
        w(
            containerd::K3S_CONFIG,
            "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/var/lib/rancher/k3s/agent/etc/containerd/certs.d\"\n",
        );
        w(
            "etc/rancher/k3s/registries.yaml",
            "mirrors:\n  other:5000: {}\n",
        );
        let node = Node::read(dir.path(), &Runtime::ALL);
        let h = RegistryHost::parse("h:5000").unwrap();
        let other = RegistryHost::parse("other:5000").unwrap();
        let d = node.view(Runtime::Docker, &h);
        assert!(
            d.skip_verify && d.notes.iter().any(|n| n.contains("insecure-registries")),
            "{d:?}"
        );
        assert!(!node.view(Runtime::Docker, &other).skip_verify);
        assert!(node.view(Runtime::Crio, &other).skip_verify);
        assert!(!node.view(Runtime::Crio, &h).skip_verify);
        assert_eq!(
            node.view(Runtime::Containerd, &h).install_dir.unwrap(),
            Path::new("/var/lib/rancher/k3s/agent/etc/containerd/certs.d/h:5000")
        );
        // k3s owns `other:5000` (registries.yaml): regtrust installs nothing there.
        assert_eq!(node.view(Runtime::Containerd, &other).install_dir, None);
        assert_eq!(
            node.view(Runtime::Crio, &h).install_dir.unwrap(),
            Path::new("/etc/containers/certs.d/h:5000")
        );
    }

    /// What a CA file loads follows the runtime's Go release: a CA with a negative serial
    /// loads for a Go 1.19 runtime and not for a Go 1.23 one (go1.23.5 parser.go:872), so
    /// docker 1.23 ignores the file and containerd 1.23 fails the host, as they would.
    #[test]
    fn ca_files_load_by_the_runtimes_go() {
        use crate::go::pki::{Key, TempDir};
        use crate::go::{GoRuntime, GoVersion};
        let tmp = TempDir::new();
        let key = Key::ecdsa().write_pem(&tmp, "ca");
        let (_, der) = tmp.openssl_cert(
            "ca",
            &key,
            "/CN=Negative Serial CA",
            None,
            "sha256",
            30,
            "-5",
            &["basicConstraints=critical,CA:TRUE", "keyUsage=keyCertSign"],
        );
        let pem = crate::ca::pem_block(&der);
        let dir = tempfile::tempdir().unwrap();
        for rel in [
            "etc/docker/certs.d/h/ca.crt",
            "etc/containerd/certs.d/h/ca.crt",
        ] {
            let p = dir.path().join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, &pem).unwrap();
        }
        let node = Node::read(dir.path(), &Runtime::ALL);
        let h = RegistryHost::parse("h").unwrap();
        let go = |minor| GoRuntime {
            go: GoVersion::new(minor, 0),
            ..GoRuntime::default()
        };
        for rt in [Runtime::Docker, Runtime::Containerd] {
            let v = node.view_as(rt, &h, &go(19));
            assert_eq!(v.host_cas.len(), 1, "{rt:?} on Go 1.19: {v:?}");
            assert_eq!(v.fatal, None, "{rt:?}");
        }
        let docker = node.view_as(Runtime::Docker, &h, &go(23));
        assert!(docker.host_cas.is_empty(), "{docker:?}");
        assert!(
            docker
                .notes
                .iter()
                .any(|n| n.contains("loads no certificate")),
            "{docker:?}"
        );
        let containerd = node.view_as(Runtime::Containerd, &h, &go(23));
        assert!(
            containerd
                .fatal
                .as_deref()
                .is_some_and(|f| f.starts_with("unable to load CA cert")),
            "{containerd:?}"
        );
        // With GODEBUG=x509negativeserial=1 Go 1.23 loads it again.
        let mut lenient = go(23);
        lenient.godebug.x509negativeserial = true;
        assert_eq!(
            node.view_as(Runtime::Docker, &h, &lenient).host_cas.len(),
            1
        );
    }

    #[test]
    fn runtime_spec() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("etc/containerd")).unwrap();
        fs::write(
            dir.path().join("etc/containerd/config.toml"),
            "version = 2\n",
        )
        .unwrap();
        assert_eq!(
            select_runtimes("auto", dir.path()).unwrap(),
            [Runtime::Containerd]
        );
        assert_eq!(
            select_runtimes("crio, docker,docker", dir.path()).unwrap(),
            [Runtime::Docker, Runtime::Crio]
        );
        let err = select_runtimes("docker,podman", dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"podman\""), "{err}");
    }
}
