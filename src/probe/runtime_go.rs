//! Which Go each runtime on this node runs on: find the runtime's binary under the host root
//! (the usual install paths and the distributions' own), read its Go build info
//! (`crate::go::buildinfo`, pure) and its version (the main module's version, else the
//! distribution's package database), and apply `--go-version RUNTIME=X.Y` overrides. The
//! verdict then uses the rules of that Go; unknown means the newest modelled.
//!
//! Binaries are read through `HostRoot::read` (symlinks resolved inside the root, capped,
//! never blocking) and remembered by (size, mtime, inode), so a probe round reads a 50 MB
//! binary once, not every minute.

use super::classify::GoRuntime;
use crate::go::buildinfo::{read_build_info, BuildInfo};
use crate::go::{GoDebug, GoVersion};
use crate::runtime::root::HostRoot;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Largest runtime binary read (k3s and rke2 bundle everything: about 70–200 MB).
const MAX_BINARY: u64 = 512 << 20;
/// Largest dpkg status file read.
const MAX_DPKG_STATUS: u64 = 64 << 20;

/// What the report says about one runtime's build.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RuntimeGo {
    /// The runtime's version (`v2.0.4`, `1.6.20~ds1-1+b1`), empty when unknown.
    pub runtime_version: String,
    /// The Go release its binary names (`go1.19.8`), or the override; empty when unknown.
    pub go_version: String,
    /// What the verdict is computed with.
    pub go: GoRuntime,
    /// The binary read, under the host root (for notes).
    pub binary: Option<PathBuf>,
}

/// Where each runtime's binary lives, in the order looked at: upstream and distribution
/// packages (`/usr/bin`), manual installs (`/usr/local/bin`), and the bundles that ship
/// their own containerd (k3s: one multi-call binary; RKE2: `/var/lib/rancher/rke2/bin`).
pub fn binary_candidates(runtime: &str) -> &'static [&'static str] {
    match runtime {
        "containerd" => &[
            "usr/bin/containerd",
            "usr/local/bin/containerd",
            "usr/sbin/containerd",
            "opt/containerd/bin/containerd",
            "var/lib/rancher/rke2/bin/containerd",
            "usr/local/bin/k3s",
            "usr/bin/k3s",
        ],
        "docker" => &[
            "usr/bin/dockerd",
            "usr/local/bin/dockerd",
            "usr/sbin/dockerd",
        ],
        "crio" => &["usr/bin/crio", "usr/local/bin/crio", "usr/sbin/crio"],
        "k3s" => &["usr/local/bin/k3s", "usr/bin/k3s"],
        "rke2" => &["usr/local/bin/rke2", "usr/bin/rke2", "opt/rke2/bin/rke2"],
        _ => &[],
    }
}

/// The Debian/Ubuntu packages that install each runtime (for its version when the binary
/// does not carry one, as Debian's builds do not).
fn dpkg_packages(runtime: &str) -> &'static [&'static str] {
    match runtime {
        "containerd" => &["containerd", "containerd.io"],
        "docker" => &["docker.io", "docker-ce", "moby-engine"],
        "crio" => &["cri-o"],
        _ => &[],
    }
}

type Stamp = (u64, i64, i64);
/// (host root, binary) → what was read at that stamp.
type Cache = HashMap<(PathBuf, PathBuf), (Stamp, Option<BuildInfo>)>;

static CACHE: Mutex<Option<Cache>> = Mutex::new(None);

fn build_info_cached(root: &HostRoot, rel: &Path) -> Option<BuildInfo> {
    let stamp = root.file_stamp(rel)?;
    let key = (root.path().to_path_buf(), rel.to_path_buf());
    if let Ok(guard) = CACHE.lock() {
        if let Some((s, info)) = guard.as_ref().and_then(|m| m.get(&key)) {
            if *s == stamp {
                return info.clone();
            }
        }
    }
    let info = root
        .read(rel, MAX_BINARY)
        .ok()
        .and_then(|data| read_build_info(&data).ok());
    if let Ok(mut guard) = CACHE.lock() {
        guard
            .get_or_insert_with(HashMap::new)
            .insert(key, (stamp, info.clone()));
    }
    info
}

/// The version dpkg installed of the first of `packages` (`Status: install ok installed`).
fn dpkg_version(root: &HostRoot, packages: &[&str]) -> Option<String> {
    if packages.is_empty() {
        return None;
    }
    let status = root
        .read(Path::new("var/lib/dpkg/status"), MAX_DPKG_STATUS)
        .ok()?;
    let status = String::from_utf8_lossy(&status);
    let mut found: HashMap<&str, String> = HashMap::new();
    for para in status.split("\n\n") {
        let field = |name: &str| {
            para.lines()
                .find_map(|l| l.strip_prefix(name).map(str::trim))
        };
        let (Some(pkg), Some(version)) = (field("Package:"), field("Version:")) else {
            continue;
        };
        if !field("Status:").is_some_and(|s| s.ends_with(" installed")) {
            continue;
        }
        if packages.contains(&pkg) {
            found.insert(pkg, crate::report::printable(version));
        }
    }
    packages.iter().find_map(|p| found.remove(p))
}

/// The Go and version of `runtime` under `root`; `overrides` (`--go-version`) win.
pub fn runtime_go(root: &HostRoot, runtime: &str, overrides: &[(String, GoVersion)]) -> RuntimeGo {
    let mut out = RuntimeGo::default();
    for rel in binary_candidates(runtime) {
        let rel = Path::new(rel);
        if let Some(info) = build_info_cached(root, rel) {
            out.binary = Some(root.display(rel));
            if let Some(v) = GoVersion::parse(&info.go_version) {
                out.go.go = v;
                out.go_version = info.go_version.clone();
            }
            // The defaults compiled in for the module's `go` line (the runtime's environment
            // GODEBUG is not seen from here).
            out.go.godebug = GoDebug::parse(&info.default_godebug);
            if !info.module_version.is_empty() && info.module_version != "(devel)" {
                out.runtime_version = crate::report::printable(&info.module_version);
            }
            break;
        }
    }
    if out.runtime_version.is_empty() && out.binary.is_some() {
        out.runtime_version = dpkg_version(root, dpkg_packages(runtime)).unwrap_or_default();
    }
    if let Some((_, v)) = overrides.iter().rev().find(|(r, _)| r == runtime) {
        out.go.go = *v;
        out.go_version = v.to_string();
    }
    out
}

/// `RUNTIME=X.Y` (`containerd=1.22`, `crio=go1.23.4`).
pub fn parse_override(s: &str) -> Result<(String, GoVersion), String> {
    let (rt, v) = s
        .split_once('=')
        .ok_or_else(|| format!("--go-version {s:?}: expected RUNTIME=X.Y, e.g. containerd=1.22"))?;
    let rt = rt.trim();
    if binary_candidates(rt).is_empty() && rt != "system" {
        return Err(format!(
            "--go-version {s:?}: unknown runtime {rt:?} (docker, containerd, crio, k3s, rke2, system)"
        ));
    }
    let v = GoVersion::parse(v).ok_or_else(|| {
        format!("--go-version {s:?}: {v:?} is not a Go version (expected e.g. 1.22 or go1.22.5)")
    })?;
    Ok((rt.to_string(), v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_parse_and_refuse() {
        assert_eq!(
            parse_override("containerd=1.22"),
            Ok(("containerd".into(), GoVersion::new(22, 0)))
        );
        assert_eq!(
            parse_override("crio=go1.23.4"),
            Ok(("crio".into(), GoVersion::new(23, 4)))
        );
        for bad in ["containerd", "podman=1.22", "containerd=banana", "=1.2"] {
            let e = parse_override(bad).unwrap_err();
            assert!(e.contains("--go-version"), "{e}");
        }
    }

    #[test]
    fn a_node_root_with_debians_containerd_names_its_go() {
        let tmp = tempfile::tempdir().unwrap();
        let bin = tmp.path().join("usr/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::copy("/usr/bin/containerd", bin.join("containerd"))
            .expect("/usr/bin/containerd is needed: install the Debian package containerd");
        std::fs::create_dir_all(tmp.path().join("var/lib/dpkg")).unwrap();
        std::fs::write(
            tmp.path().join("var/lib/dpkg/status"),
            "Package: runc\nStatus: install ok installed\nVersion: 1.1.5\n\n\
             Package: containerd\nStatus: install ok installed\nVersion: 1.6.20~ds1-1+b1\n",
        )
        .unwrap();
        let root = HostRoot::new(tmp.path());
        let got = runtime_go(&root, "containerd", &[]);
        assert!(got.go_version.starts_with("go1.19."), "{got:?}");
        assert_eq!(got.go.go.minor, 19);
        assert_eq!(got.runtime_version, "1.6.20~ds1-1+b1");
        // Nothing installed: unknown, judged as the newest modelled Go.
        let got = runtime_go(&root, "crio", &[]);
        assert_eq!(got, RuntimeGo::default());
        assert_eq!(got.go.go, GoVersion::NEWEST);
        // The override wins.
        let got = runtime_go(
            &root,
            "containerd",
            &[("containerd".into(), GoVersion::new(23, 0))],
        );
        assert_eq!((got.go.go.minor, got.go_version.as_str()), (23, "go1.23.0"));
        // A garbage binary is unknown, not an error.
        std::fs::write(bin.join("crio"), b"\x7fELF not really").unwrap();
        assert_eq!(runtime_go(&root, "crio", &[]).go_version, "");
    }
}
