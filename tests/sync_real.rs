//! Issue 2's proof with real parts: `regtrust sync` writes the trust files that real Go
//! clients read. skopeo (containers/image: CRI-O, podman) judges the docker and containers
//! `certs.d` dirs regtrust wrote, a private containerd judges its `certs.d` through
//! `ctr images pull --hosts-dir`, against the Debian docker-registry over TLS on loopback:
//! they fail before sync, pull after it, fail when the registry is reissued by a new CA
//! (a rotated Harbor CA), and pull again once the CA input follows and sync runs again.
//! Whole-tree writer tests and hostile inputs live elsewhere.

mod support;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::{skopeo_inspect, Ca, Containerd, Judge, Pki, Registry};

const UNKNOWN_AUTHORITY: &str = "x509: certificate signed by unknown authority";

/// The three trust locations of one host under a host root, and the judges for them.
struct Node<'a> {
    root: &'a Path,
    host: String,
    image: String,
    containerd: &'a Containerd,
}

impl Node<'_> {
    fn docker_dir(&self) -> PathBuf {
        self.root.join("etc/docker/certs.d").join(&self.host)
    }
    fn containers_dir(&self) -> PathBuf {
        self.root.join("etc/containers/certs.d").join(&self.host)
    }
    fn containerd_hosts(&self) -> PathBuf {
        self.root.join("etc/containerd/certs.d")
    }

    /// What each runtime's Go client says, keyed by runtime.
    fn judge(&self) -> BTreeMap<&'static str, Judge> {
        BTreeMap::from([
            ("docker", skopeo_inspect(&self.docker_dir(), &self.image)),
            ("crio", skopeo_inspect(&self.containers_dir(), &self.image)),
            (
                "containerd",
                self.containerd
                    .ctr_pull(&self.containerd_hosts(), &self.image),
            ),
        ])
    }

    #[track_caller]
    fn assert_all_pull(&self, step: &str) {
        for (runtime, judge) in self.judge() {
            judge.assert_ok(&format!("{step}: {runtime}"));
        }
    }

    #[track_caller]
    fn assert_all_unknown_authority(&self, step: &str) {
        for (runtime, judge) in self.judge() {
            judge.assert_x509(&format!("{step}: {runtime}"), UNKNOWN_AUTHORITY);
        }
    }

    /// Run `regtrust sync` for this host with `ca_input`; returns the report document.
    fn sync(&self, ca_input: &Path) -> Value {
        let mut c = Command::new(env!("CARGO_BIN_EXE_regtrust"));
        // Only the flags below configure it: no REGTRUST_* from the outer environment.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("REGTRUST_") {
                c.env_remove(key);
            }
        }
        c.arg("sync")
            .arg("--host-root")
            .arg(self.root)
            .args(["--runtime", "docker,containerd,crio", "--ca"])
            .arg(format!("{}={}", self.host, ca_input.display()))
            .args(["--output", "json"]);
        let out = support::run(c);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(0),
            "regtrust sync should succeed (exit 0)\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
        serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("sync --output json is not JSON ({e}):\n{stdout}"))
    }
}

/// The `state` of each runtime's trust entry for `host` in a report document.
fn trust_states(report: &Value, host: &str) -> BTreeMap<String, String> {
    assert_eq!(report["schema"], "regtrust.report/v1", "report: {report:#}");
    let registry = report["registries"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["host"] == host))
        .unwrap_or_else(|| panic!("no registry {host} in the report: {report:#}"));
    registry["trust"]
        .as_array()
        .unwrap_or_else(|| panic!("registry {host} has no trust list: {report:#}"))
        .iter()
        .map(|t| {
            (
                t["runtime"].as_str().unwrap_or_default().to_string(),
                t["state"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn all_states(state: &str) -> BTreeMap<String, String> {
    ["containerd", "crio", "docker"]
        .into_iter()
        .map(|r| (r.to_string(), state.to_string()))
        .collect()
}

/// The certificates (DER) in a PEM file: regtrust re-encodes, so compare certificates, not
/// bytes.
fn certs_in(path: &Path) -> Vec<Vec<u8>> {
    CertificateDer::pem_file_iter(path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .map(|c| c.expect("a PEM certificate").to_vec())
        .collect()
}

#[track_caller]
fn assert_installed(node: &Node<'_>, ca: &Ca) {
    let expected = vec![ca.der().to_vec()];
    let files = [
        node.docker_dir().join("ca.crt"),
        node.containers_dir().join("ca.crt"),
        node.containerd_hosts().join(&node.host).join("ca.crt"),
    ];
    for file in &files {
        assert_eq!(
            certs_in(file),
            expected,
            "{} holds CA {}",
            file.display(),
            ca.name
        );
    }
    let hosts_toml = node.containerd_hosts().join(&node.host).join("hosts.toml");
    let toml = std::fs::read_to_string(&hosts_toml)
        .unwrap_or_else(|e| panic!("reading {}: {e}", hosts_toml.display()));
    assert!(
        toml.contains(&format!("https://{}", node.host)),
        "{} names the https server:\n{toml}",
        hosts_toml.display()
    );
}

#[test]
fn sync_makes_every_runtime_pull_through_a_ca_rotation() {
    let containerd = Containerd::start();
    let pki = Pki::new();
    let ca_a = pki.root("harbor-ca-a");
    let leaf_a = pki.server(&ca_a, "registry-a", &["127.0.0.1"]);
    let mut registry = Registry::tls(&leaf_a.chain_path, &leaf_a.key_path).start();
    registry.push_tiny_image(Some(&ca_a.cert_path));

    let host_root = tempfile::tempdir().unwrap();
    let inputs = tempfile::tempdir().unwrap();
    let ca_input = ca_a.write_to(inputs.path(), "harbor-ca.pem");
    let node = Node {
        root: host_root.path(),
        host: registry.host(),
        image: registry.image_ref(),
        containerd: &containerd,
    };

    // 1. Before sync nothing is trusted. skopeo: unknown authority. containerd, with no
    // host dir at all, speaks plain HTTP to a loopback registry (runtime-lab-facts trap 1)
    // and gets a 400 from the TLS port; a non-loopback registry would say unknown authority.
    for runtime in ["docker", "crio"] {
        let dir = if runtime == "docker" {
            node.docker_dir()
        } else {
            node.containers_dir()
        };
        skopeo_inspect(&dir, &node.image)
            .assert_x509(&format!("before sync: {runtime}"), UNKNOWN_AUTHORITY);
    }
    let j = containerd.ctr_pull(&node.containerd_hosts(), &node.image);
    assert!(
        !j.ok && (j.x509().as_deref() == Some(UNKNOWN_AUTHORITY) || j.stderr.contains("400 Bad Request")),
        "before sync: containerd should fail (unknown authority or plain HTTP to the TLS port), got:\n{}",
        j.stderr
    );

    // 2. sync installs CA A for all three runtimes: every client pulls.
    let report = node.sync(&ca_input);
    assert_eq!(trust_states(&report, &node.host), all_states("installed"));
    assert_installed(&node, &ca_a);
    node.assert_all_pull("after sync with CA A");

    // A pass with nothing changed leaves everything as it is.
    let report = node.sync(&ca_input);
    assert_eq!(trust_states(&report, &node.host), all_states("unchanged"));

    // 3. Harbor's CA is rotated: the registry now serves a leaf from CA B.
    let ca_b = pki.root("harbor-ca-b");
    let leaf_b = pki.server(&ca_b, "registry-b", &["127.0.0.1"]);
    registry.restart_with_tls(&leaf_b.chain_path, &leaf_b.key_path);
    node.assert_all_unknown_authority("registry reissued by CA B, node still trusts CA A");

    // 4. The CA input follows (the mounted Secret is updated) and sync runs again.
    ca_b.write_to(inputs.path(), "harbor-ca.pem");
    let report = node.sync(&ca_input);
    assert_eq!(trust_states(&report, &node.host), all_states("installed"));
    assert_installed(&node, &ca_b);
    node.assert_all_pull("after sync with CA B");
}
