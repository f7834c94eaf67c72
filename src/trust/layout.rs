//! The files regtrust writes for one host and runtime: which file names, under which host
//! dir, for which host spelling. Where the host dirs live is the runtime's answer
//! (`runtime::Node::trust_root`: containerd's configured `config_path`, the distro's dir).
//! Facts: shared/reference/semantics-trust.md §1 (Docker), §2 (containerd), §3
//! (containers/image), runtime-lab-facts.md (traps 1, 6).

use crate::host::RegistryHost;
use std::path::{Path, PathBuf};

pub use crate::runtime::{select_runtimes, Runtime, RuntimeSpecError};

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

/// The host dir (relative to the host root) for one spelling of the host, in the runtime's
/// stock trust root.
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

/// The files regtrust wants for one host and runtime in the runtime's stock trust root.
pub fn targets_for(host: &RegistryHost, runtime: Runtime, ca_pem: &[u8]) -> Vec<Target> {
    targets_in(host, runtime, Path::new(runtime.certs_dir()), ca_pem)
}

/// The files regtrust wants for one host and runtime under `trust_root` (relative to the
/// host root), given the canonical CA PEM.
pub fn targets_in(
    host: &RegistryHost,
    runtime: Runtime,
    trust_root: &Path,
    ca_pem: &[u8],
) -> Vec<Target> {
    let mut out = Vec::new();
    for dir_name in host.dir_names() {
        let dir = trust_root.join(&dir_name);
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
}
