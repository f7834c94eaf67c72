//! The runtimes' trust-dir layouts: which file, under which dir, for which host spelling.
//! Facts: shared/reference/semantics-trust.md §1 (Docker), §2 (containerd), §3
//! (containers/image), runtime-lab-facts.md (traps 1, 6).

use crate::host::RegistryHost;
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

    /// The dir whose existence under the host root means the runtime is installed.
    pub fn etc_dir(self) -> &'static str {
        match self {
            Runtime::Docker => "etc/docker",
            Runtime::Containerd => "etc/containerd",
            Runtime::Crio => "etc/containers",
        }
    }

    /// The `certs.d` dir, relative to the host root.
    pub fn certs_dir(self) -> &'static str {
        match self {
            Runtime::Docker => "etc/docker/certs.d",
            Runtime::Containerd => "etc/containerd/certs.d",
            Runtime::Crio => "etc/containers/certs.d",
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

/// `auto` picks each runtime whose etc dir exists under the host root (SPEC, Outputs).
pub fn select_runtimes(spec: &str, host_root: &Path) -> Result<Vec<Runtime>, RuntimeSpecError> {
    if spec.trim() == "auto" {
        return Ok(Runtime::ALL
            .into_iter()
            .filter(|r| host_root.join(r.etc_dir()).is_dir())
            .collect());
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

/// What a target file is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileKind {
    /// `ca.crt`: the CA bundle. Every runtime reads `*.crt` as CAs.
    Ca,
    /// containerd's `hosts.toml`, written only where none exists.
    HostsToml,
}

/// One file regtrust wants on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: RegistryHost,
    pub runtime: Runtime,
    pub kind: FileKind,
    /// Relative to the host root, e.g. `etc/docker/certs.d/harbor.local:8443/ca.crt`.
    pub rel_path: PathBuf,
    pub content: Vec<u8>,
}

pub const CA_FILE: &str = "ca.crt";
pub const HOSTS_TOML: &str = "hosts.toml";

/// The host dir (relative to the host root) for one spelling of the host.
pub fn host_dir(runtime: Runtime, dir_name: &str) -> PathBuf {
    Path::new(runtime.certs_dir()).join(dir_name)
}

/// The `hosts.toml` regtrust owns for a containerd host dir. Without it containerd speaks
/// plain HTTP to loopback hosts (runtime-lab-facts trap 1); with it, containerd reads only
/// what it lists, so it must name the CA. The CA path is relative: containerd resolves
/// `ca` against the host dir (`makeAbsPath`), which also keeps it right under `--hosts-dir`.
/// The `[host]` table is there because containerd 1.x rejects a hosts.toml without one and
/// falls back to the loose-file layout (semantics-trust.md §2.3).
pub fn hosts_toml(dir_name: &str) -> Vec<u8> {
    format!(
        "# Written by regtrust for {dir_name}. regtrust owns this file and keeps it in step\n\
         # with ca.crt; a hosts.toml that regtrust did not write is never touched.\n\
         server = \"https://{dir_name}\"\n\
         \n\
         [host.\"https://{dir_name}\"]\n  \
         ca = \"{CA_FILE}\"\n"
    )
    .into_bytes()
}

/// The files regtrust wants for one host and runtime, given the canonical CA PEM.
pub fn targets_for(host: &RegistryHost, runtime: Runtime, ca_pem: &[u8]) -> Vec<Target> {
    let mut out = Vec::new();
    for dir_name in host.dir_names() {
        let dir = host_dir(runtime, &dir_name);
        out.push(Target {
            host: host.clone(),
            runtime,
            kind: FileKind::Ca,
            rel_path: dir.join(CA_FILE),
            content: ca_pem.to_vec(),
        });
        if runtime == Runtime::Containerd {
            out.push(Target {
                host: host.clone(),
                runtime,
                kind: FileKind::HostsToml,
                rel_path: dir.join(HOSTS_TOML),
                content: hosts_toml(&dir_name),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_follow_each_runtime_layout() {
        let host = RegistryHost::parse("harbor.local:8443").unwrap();
        let paths = |r| {
            targets_for(&host, r, b"PEM")
                .into_iter()
                .map(|t| t.rel_path.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            paths(Runtime::Docker),
            ["etc/docker/certs.d/harbor.local:8443/ca.crt"]
        );
        assert_eq!(
            paths(Runtime::Crio),
            ["etc/containers/certs.d/harbor.local:8443/ca.crt"]
        );
        assert_eq!(
            paths(Runtime::Containerd),
            [
                "etc/containerd/certs.d/harbor.local:8443/ca.crt",
                "etc/containerd/certs.d/harbor.local:8443/hosts.toml"
            ]
        );
        let bare = RegistryHost::parse("harbor.local").unwrap();
        let docker: Vec<_> = targets_for(&bare, Runtime::Docker, b"PEM")
            .into_iter()
            .map(|t| t.rel_path)
            .collect();
        assert_eq!(
            docker,
            [
                PathBuf::from("etc/docker/certs.d/harbor.local/ca.crt"),
                PathBuf::from("etc/docker/certs.d/harbor.local:443/ca.crt")
            ]
        );
    }

    #[test]
    fn hosts_toml_is_valid_toml_naming_the_ca() {
        let v: toml::Value =
            toml::from_str(std::str::from_utf8(&hosts_toml("127.0.0.1:5000")).unwrap()).unwrap();
        assert_eq!(v["server"].as_str(), Some("https://127.0.0.1:5000"));
        assert_eq!(
            v["host"]["https://127.0.0.1:5000"]["ca"].as_str(),
            Some("ca.crt")
        );
    }

    #[test]
    fn runtime_spec() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc/containerd")).unwrap();
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
