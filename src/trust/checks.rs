//! Problems in the trust dirs that make a correctly written CA useless, each with its fix
//! (issue 2 item 5; facts: semantics-trust.md §1–3, §7; runtime-lab-facts.md traps 2–6),
//! plus the runtime-config problems each runtime's module reports (`runtime::Node`).
//! Where each runtime reads comes from `runtime::Node`, never from a fixed path here.
//! Read-only: this module never writes.

use super::layout::{Runtime, CA_FILE};
use crate::ca;
use crate::host::RegistryHost;
use crate::report::Problem;
use crate::runtime::root::ReadError;
use crate::runtime::{HostRoot, Node};
use std::path::Path;

pub fn check(node: &Node, hosts: &[RegistryHost]) -> Vec<Problem> {
    // Every look below goes through the host root, links resolved inside it only.
    let root = &node.root;
    let host_root = root.path();
    let runtimes = &node.runtimes;
    let mut out = node.config_problems(hosts);
    for host in hosts {
        for dir_name in host.dir_names() {
            for &rt in runtimes {
                if let Some(trust_root) = node.trust_root(rt) {
                    host_dir_files(root, &trust_root.join(&dir_name), rt, &mut out);
                }
            }
            let containerd_root = runtimes
                .contains(&Runtime::Containerd)
                .then(|| node.trust_root(Runtime::Containerd))
                .flatten();
            if let Some(croot) = containerd_root {
                // The port of this spelling (`h` and `h:443` are both installed for `h:443`).
                let with_port = dir_name
                    .rsplit_once(':')
                    .filter(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
                if let Some((host_only, port)) = with_port {
                    let mangled = croot.join(format!("{host_only}_{port}_"));
                    if root.resolve(&mangled).is_ok() {
                        out.push(Problem::new(
                            display(host_root, &mangled),
                            format!(
                                "containerd reads this dir before {dir_name}/ (hosts dir lookup is <host>_<port>_, then <host>:<port>), \
                                 so it shadows the CA regtrust installs; fix: remove it or move its files into {dir_name}/"
                            ),
                        ));
                    }
                }
            }
            if runtimes.contains(&Runtime::Docker) || runtimes.contains(&Runtime::Crio) {
                let home = Path::new(crate::runtime::crio::HOME_CERTS_D).join(&dir_name);
                if root.resolve(&home).is_ok() {
                    out.push(Problem::new(
                        display(host_root, &home),
                        "CRI-O, podman and skopeo running as root read this dir first and ignore /etc/containers/certs.d \
                         and /etc/docker/certs.d for this host; fix: remove it, or put the CA there too",
                    ));
                }
            }
            if runtimes.contains(&Runtime::Docker) && !runtimes.contains(&Runtime::Crio) {
                let crio = Path::new(crate::runtime::crio::CERTS_D).join(&dir_name);
                if root.is_dir(&crio) {
                    out.push(Problem::new(
                        display(host_root, &crio),
                        "this dir exists (even empty, it counts) so CRI-O, podman and skopeo never read \
                         /etc/docker/certs.d for this host; fix: add crio to --runtime, or remove the dir",
                    ));
                }
            }
        }
    }
    out
}

fn display(host_root: &Path, rel: &Path) -> String {
    host_root.join(rel).display().to_string()
}

/// Stray client-cert halves break Docker and containers/image for the whole host; an
/// unparsable `*.crt` breaks containerd for the whole host (runtime-lab-facts traps 3, 5).
fn host_dir_files(root: &HostRoot, rel_dir: &Path, rt: Runtime, out: &mut Vec<Problem>) {
    let dir = root.display(rel_dir);
    let Ok(names) = root.list(rel_dir) else {
        return;
    };
    let has = |n: &str| names.iter().any(|x| x == n);
    for name in &names {
        let path = dir.join(name);
        if let Some(stem) = name.strip_suffix(".key") {
            if !has(&format!("{stem}.cert")) {
                out.push(Problem::new(
                    path.display().to_string(),
                    format!(
                        "a key with no {stem}.cert beside it: Docker, CRI-O, podman and skopeo fail every pull from this \
                         host (missing client certificate {stem}.cert for key {name}); fix: remove it (a CA needs no key on a node)"
                    ),
                ));
            }
        } else if let Some(stem) = name.strip_suffix(".cert") {
            if !has(&format!("{stem}.key")) {
                out.push(Problem::new(
                    path.display().to_string(),
                    format!(
                        "a client certificate with no {stem}.key: Docker, CRI-O, podman and skopeo fail every pull from this host \
                         (a CA must be named *.crt, not *.cert); fix: rename it to {stem}.crt if it is a CA"
                    ),
                ));
            }
        } else if name.ends_with(".crt") && name != CA_FILE && rt == Runtime::Containerd {
            if let Some(why) = unloadable(root, &rel_dir.join(name)) {
                out.push(Problem::new(
                    path.display().to_string(),
                    format!(
                        "{why}: containerd fails every pull from this host (unable to load CA cert); \
                         fix: remove it or replace it with a PEM certificate"
                    ),
                ));
            }
        }
    }
}

/// Why a `*.crt` would load no certificate in a Go runtime, if it would not.
fn unloadable(root: &HostRoot, rel: &Path) -> Option<String> {
    let bytes = match root.read(rel, ca::MAX_CA_BYTES) {
        Ok(b) => b,
        Err(ReadError::TooLarge { size, .. }) => {
            return Some(format!("{size} bytes, larger than any CA bundle"))
        }
        // Not a regular file, or gone: nothing a runtime would load as a CA file either.
        Err(_) => return None,
    };
    if ca::go_loadable_certs(&bytes).is_empty() {
        Some("holds no certificate a Go runtime can load".into())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// A host dir that links out of the host root is read where the node would read it
    /// (inside the root), never on this machine.
    #[test]
    fn checks_never_read_outside_the_host_root() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("junk.crt"), "not a cert").unwrap();
        fs::write(outside.path().join("ca.key"), "k").unwrap();
        let root = root_with(&[(
            "etc/containerd/config.toml",
            "[plugins.\"io.containerd.grpc.v1.cri\".registry]\nconfig_path = \"/etc/containerd/certs.d\"\n",
        ), ("etc/containerd/certs.d/", "")]);
        std::os::unix::fs::symlink(
            outside.path(),
            root.path().join("etc/containerd/certs.d/h:5000"),
        )
        .unwrap();
        let host = RegistryHost::parse("h:5000").unwrap();
        let got = check(&Node::read(root.path(), &[Runtime::Containerd]), &[host]);
        assert!(got.is_empty(), "{got:#?}");
    }

    fn root_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (p, content) in files {
            let path = dir.path().join(p);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            if p.ends_with('/') {
                fs::create_dir_all(&path).unwrap();
            } else {
                fs::write(path, content).unwrap();
            }
        }
        dir
    }

    /// A FIFO where a file should be must never block a sync (opening one waits for a writer).
    #[test]
    fn fifos_never_block() {
        let root = root_with(&[("etc/containerd/certs.d/h:5000/", "")]);
        let mkfifo = |p: &Path| {
            let ok = std::process::Command::new("mkfifo")
                .arg(p)
                .status()
                .unwrap()
                .success();
            assert!(ok, "mkfifo {}", p.display());
        };
        mkfifo(&root.path().join("etc/containerd/config.toml"));
        mkfifo(&root.path().join("etc/containerd/certs.d/h:5000/extra.crt"));
        let (tx, rx) = std::sync::mpsc::channel();
        let dir = root.path().to_path_buf();
        std::thread::spawn(move || {
            let host = RegistryHost::parse("h:5000").unwrap();
            let _ = tx.send(check(&Node::read(&dir, &[Runtime::Containerd]), &[host]));
        });
        let got = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("check() blocked on a FIFO");
        assert!(
            got.iter()
                .any(|p| p.source.ends_with("config.toml")
                    && p.message.contains("not a regular file")),
            "{got:#?}"
        );
    }

    #[test]
    fn host_dir_problems() {
        let root = root_with(&[
            ("etc/containerd/config.toml", "[plugins.\"io.containerd.grpc.v1.cri\".registry]\nconfig_path = \"/etc/containerd/certs.d\"\n"),
            ("etc/docker/certs.d/h:5000/ca.key", "k"),
            ("etc/docker/certs.d/h:5000/client.cert", "c"),
            ("etc/docker/certs.d/h:5000/pair.cert", "c"),
            ("etc/docker/certs.d/h:5000/pair.key", "k"),
            ("etc/containerd/certs.d/h:5000/junk.crt", "not a cert"),
            ("etc/containerd/certs.d/h_5000_/", ""),
            ("root/.config/containers/certs.d/h:5000/", ""),
            ("etc/containers/certs.d/h:5000/", ""),
        ]);
        let host = RegistryHost::parse("h:5000").unwrap();
        // Default-port spellings: `h` has no port to mangle, `h:443` has one; neither may be
        // sliced by the length of the other spelling's port (this panicked once).
        let default_port = [
            RegistryHost::parse("h:443").unwrap(),
            RegistryHost::parse("a").unwrap(),
        ];
        assert!(check(
            &Node::read(root.path(), &[Runtime::Containerd]),
            &default_port
        )
        .iter()
        .all(|p| !p.source.contains("certs.d/h:5000")));
        let got = check(
            &Node::read(root.path(), &[Runtime::Docker, Runtime::Containerd]),
            &[host],
        );
        let has = |path_end: &str, text: &str| {
            got.iter()
                .any(|p| p.source.ends_with(path_end) && p.message.contains(text))
        };
        assert!(
            has("h:5000/ca.key", "missing client certificate"),
            "{got:#?}"
        );
        assert!(has("h:5000/client.cert", "*.crt, not *.cert"), "{got:#?}");
        assert!(!got.iter().any(|p| p.source.contains("pair.")), "{got:#?}");
        assert!(has("junk.crt", "containerd fails every pull"), "{got:#?}");
        assert!(has("h_5000_", "shadows"), "{got:#?}");
        assert!(
            has(
                "root/.config/containers/certs.d/h:5000",
                "read this dir first"
            ),
            "{got:#?}"
        );
        assert!(
            has("etc/containers/certs.d/h:5000", "add crio to --runtime"),
            "{got:#?}"
        );
        assert_eq!(got.len(), 6, "{got:#?}");
    }
}
