//! Issue 10's proof with real parts: Debian's containerd, started the way each
//! distribution starts it (its CRI `config_path` pointing into a scratch host root laid out
//! as k3s, RKE2, microk8s, a custom root, or a config_path set only in an `imports`
//! drop-in), judged by kubelet's own call, CRI `PullImage`: it fails before
//! `regtrust sync --runtime auto` and pulls after. k3s with the host in registries.yaml
//! gets the problem and no file. A CRI-O-shaped node (empty etc/docker and etc/containerd
//! dirs, as the DaemonSet's DirectoryOrCreate mounts leave them) selects crio only and
//! skopeo pulls with what was written. The probe reads a RHEL-shaped OS bundle through its
//! /etc/pki links.

mod support;

use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::{skopeo_inspect, Containerd, Pki, Registry};

const UNKNOWN_AUTHORITY: &str = "x509: certificate signed by unknown authority";

fn regtrust(args: &[&str]) -> (Option<i32>, Value, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_regtrust"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("REGTRUST_") {
            c.env_remove(key);
        }
    }
    c.args(args).env("RUST_LOG", "warn");
    let out = support::run(c);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let v = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}\nstderr:\n{stderr}"));
    (out.status.code(), v, stderr)
}

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

/// A node shape: the files its distribution leaves, and the hosts dir its containerd reads
/// (a node path).
struct Shape {
    name: &'static str,
    files: Vec<(&'static str, &'static str)>,
    hosts_dir: &'static str,
}

fn shapes() -> Vec<Shape> {
    vec![
        Shape {
            name: "k3s",
            files: vec![(
                "var/lib/rancher/k3s/agent/etc/containerd/config.toml",
                "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/var/lib/rancher/k3s/agent/etc/containerd/certs.d\"\n",
            )],
            hosts_dir: "var/lib/rancher/k3s/agent/etc/containerd/certs.d",
        },
        Shape {
            name: "rke2",
            files: vec![(
                "var/lib/rancher/rke2/agent/etc/containerd/config.toml",
                "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/var/lib/rancher/rke2/agent/etc/containerd/certs.d\"\n",
            )],
            hosts_dir: "var/lib/rancher/rke2/agent/etc/containerd/certs.d",
        },
        Shape {
            name: "microk8s",
            files: vec![(
                "var/snap/microk8s/current/args/containerd-template.toml",
                "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"${SNAP_DATA}/args/certs.d\"\n",
            )],
            hosts_dir: "var/snap/microk8s/current/args/certs.d",
        },
        Shape {
            name: "custom root",
            files: vec![(
                "etc/containerd/config.toml",
                "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/hosts.d\"\n",
            )],
            hosts_dir: "etc/containerd/hosts.d",
        },
        Shape {
            name: "config_path only in an imports drop-in",
            files: vec![
                ("etc/containerd/config.toml", "version = 2\nimports = [\"/etc/containerd/conf.d/*.toml\"]\n"),
                (
                    "etc/containerd/conf.d/50-registry.toml",
                    "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/registry.d\"\n",
                ),
            ],
            hosts_dir: "etc/containerd/registry.d",
        },
    ]
}

fn trust_paths(report: &Value, runtime: &str) -> Vec<(String, String)> {
    report["registries"][0]["trust"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .filter(|t| t["runtime"] == runtime)
                .map(|t| {
                    (
                        t["path"].as_str().unwrap_or_default().to_string(),
                        t["state"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn kubelet_pulls_after_sync_on_every_containerd_distribution() {
    let pki = Pki::new();
    let ca = pki.root("harbor-ca");
    let leaf = pki.server(&ca, "registry", &["127.0.0.1"]);
    // Harbor's CA rotated: the same registry reissued by another CA.
    let ca_b = pki.root("harbor-ca-b");
    let leaf_b = pki.server(&ca_b, "registry-b", &["127.0.0.1"]);
    let mut registry = Registry::tls(&leaf.chain_path, &leaf.key_path).start();
    registry.push_tiny_image(Some(&ca.cert_path));
    let host = registry.host();
    let inputs = tempfile::tempdir().unwrap();
    let ca_input = ca.write_to(inputs.path(), "ca.pem");
    let ca_arg = format!("{host}={}", ca_input.display());
    let ca_b_input = ca_b.write_to(inputs.path(), "ca-b.pem");
    let ca_b_arg = format!("{host}={}", ca_b_input.display());
    let sync = |root: &Path, ca_arg: &str| {
        regtrust(&[
            "sync",
            "--host-root",
            root.to_str().unwrap(),
            "--runtime",
            "auto",
            "--ca",
            ca_arg,
            "--output",
            "json",
        ])
    };

    for shape in shapes() {
        let scratch = tempfile::tempdir().unwrap();
        let root = scratch.path();
        // What the DaemonSet's DirectoryOrCreate mounts leave on every node.
        for d in [
            "etc/docker/certs.d",
            "etc/containerd/certs.d",
            "etc/containers/certs.d",
        ] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        for (rel, text) in &shape.files {
            write(root, rel, text);
        }
        let hosts_dir: PathBuf = root.join(shape.hosts_dir);
        let containerd = Containerd::start_cri(&hosts_dir);

        // Before: kubelet's pull fails. With no host dir containerd speaks plain HTTP to a
        // loopback registry (runtime-lab-facts trap 1) and gets a 400 from the TLS port; a
        // non-loopback registry says unknown authority.
        let before = containerd.cri_pull(&registry.image_ref());
        assert!(
            !before.ok
                && (before.x509().as_deref() == Some(UNKNOWN_AUTHORITY)
                    || before.stderr.contains("400 Bad Request")
                    || before.stderr.contains("HTTP response to HTTPS client")),
            "{}: before sync the CRI pull should fail, got: {}",
            shape.name,
            before.stderr
        );

        let (code, report, stderr) = sync(root, &ca_arg);
        assert_eq!(code, Some(0), "{}: {report:#}\n{stderr}", shape.name);
        let runtimes: Vec<&str> = report["runtimes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["runtime"].as_str().unwrap())
            .collect();
        assert_eq!(runtimes, ["containerd"], "{}: {report:#}", shape.name);
        let want_dir = format!("{}/{}/{host}/", root.display(), shape.hosts_dir);
        let paths = trust_paths(&report, "containerd");
        assert_eq!(
            paths,
            [
                (format!("{want_dir}ca.crt"), "installed".to_string()),
                (format!("{want_dir}hosts.toml"), "installed".to_string())
            ],
            "{}",
            shape.name
        );
        // Nothing for the runtimes the node does not run.
        assert!(fs::read_dir(root.join("etc/docker/certs.d"))
            .unwrap()
            .next()
            .is_none());
        assert!(fs::read_dir(root.join("etc/containers/certs.d"))
            .unwrap()
            .next()
            .is_none());

        containerd
            .cri_pull(&registry.image_ref())
            .assert_ok(&format!("{}: CRI PullImage after sync", shape.name));

        // Now containerd verifies TLS with what regtrust wrote where it reads: the
        // registry reissued by CA B is an unknown authority until sync installs CA B.
        registry.restart_with_tls(&leaf_b.chain_path, &leaf_b.key_path);
        containerd.cri_pull(&registry.image_ref()).assert_x509(
            &format!(
                "{}: CRI PullImage, registry rotated to CA B, before sync",
                shape.name
            ),
            UNKNOWN_AUTHORITY,
        );
        let (code, report, _) = sync(root, &ca_b_arg);
        assert_eq!(code, Some(0), "{}: {report:#}", shape.name);
        containerd
            .cri_pull(&registry.image_ref())
            .assert_ok(&format!(
                "{}: CRI PullImage after sync with CA B",
                shape.name
            ));
        registry.restart_with_tls(&leaf.chain_path, &leaf.key_path);
    }
}

#[test]
fn k3s_hosts_in_registries_yaml_get_the_fix_and_no_file() {
    let pki = Pki::new();
    let ca = pki.root("harbor-ca");
    let leaf = pki.server(&ca, "registry", &["127.0.0.1"]);
    let registry = Registry::tls(&leaf.chain_path, &leaf.key_path).start();
    registry.push_tiny_image(Some(&ca.cert_path));
    let host = registry.host();
    let inputs = tempfile::tempdir().unwrap();
    let ca_input = ca.write_to(inputs.path(), "ca.pem");

    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path();
    let shape = &shapes()[0];
    for (rel, text) in &shape.files {
        write(root, rel, text);
    }
    write(
        root,
        "etc/rancher/k3s/registries.yaml",
        &format!("mirrors:\n  \"{host}\":\n    endpoint:\n      - \"https://{host}\"\n"),
    );
    let hosts_dir = root.join(shape.hosts_dir);
    let containerd = Containerd::start_cri(&hosts_dir);

    let (code, report, _) = regtrust(&[
        "sync",
        "--host-root",
        root.to_str().unwrap(),
        "--ca",
        &format!("{host}={}", ca_input.display()),
        "--output",
        "json",
    ]);
    assert_eq!(code, Some(1), "{report:#}");
    let problems = report["problems"].as_array().unwrap();
    assert!(
        problems.iter().any(|p| p["source"]
            .as_str()
            .unwrap()
            .ends_with("etc/rancher/k3s/registries.yaml")
            && p["message"]
                .as_str()
                .unwrap()
                .contains(&format!("configs.\"{host}\".tls.ca_file"))),
        "{report:#}"
    );
    assert!(trust_paths(&report, "containerd").is_empty(), "{report:#}");
    assert!(
        !hosts_dir.join(&host).exists(),
        "regtrust wrote into k3s's own host dir"
    );
    assert!(!containerd.cri_pull(&registry.image_ref()).ok);
}

#[test]
fn a_crio_node_with_empty_docker_and_containerd_dirs_is_crio_only() {
    let pki = Pki::new();
    let ca = pki.root("harbor-ca");
    let leaf = pki.server(&ca, "registry", &["127.0.0.1"]);
    let registry = Registry::tls(&leaf.chain_path, &leaf.key_path).start();
    registry.push_tiny_image(Some(&ca.cert_path));
    let host = registry.host();
    let inputs = tempfile::tempdir().unwrap();
    let ca_input = ca.write_to(inputs.path(), "ca.pem");

    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path();
    for d in ["etc/docker", "etc/containerd", "etc/containers"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    write(root, "etc/crio/crio.conf", "[crio.image]\n");
    write(
        root,
        "etc/containers/registries.conf",
        "unqualified-search-registries = [\"docker.io\"]\n",
    );
    let dir = root.join("etc/containers/certs.d").join(&host);
    skopeo_inspect(&dir, &registry.image_ref()).assert_x509("before sync", UNKNOWN_AUTHORITY);

    let (code, report, _) = regtrust(&[
        "sync",
        "--host-root",
        root.to_str().unwrap(),
        "--ca",
        &format!("{host}={}", ca_input.display()),
        "--output",
        "json",
    ]);
    assert_eq!(code, Some(0), "{report:#}");
    assert!(
        report["problems"].as_array().is_none_or(|p| p.is_empty()),
        "{report:#}"
    );
    assert_eq!(
        report["runtimes"],
        serde_json::json!([{"runtime": "crio", "selected": true, "evidence": ["/etc/crio/crio.conf"]}])
    );
    assert_eq!(
        trust_paths(&report, "crio"),
        [(format!("{}/ca.crt", dir.display()), "installed".to_string())]
    );
    assert!(trust_paths(&report, "containerd").is_empty());
    assert!(!root.join("etc/containerd/certs.d").exists());
    skopeo_inspect(&dir, &registry.image_ref()).assert_ok("after sync");
}

#[test]
fn the_probe_reads_a_rhel_bundle_through_its_pki_links() {
    let pki = Pki::new();
    let ca = pki.root("corp-root");
    let leaf = pki.server(&ca, "registry", &["127.0.0.1"]);
    let registry = Registry::tls(&leaf.chain_path, &leaf.key_path).start();
    let host = registry.host();
    let probe = |root: &Path| {
        let (_, report, _) = regtrust(&[
            "probe",
            &host,
            "--host-root",
            root.to_str().unwrap(),
            "--runtime",
            "crio",
            "--output",
            "json",
        ]);
        report["registries"][0]["probes"][0]["verdict"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let pem = fs::read_to_string(&ca.cert_path).unwrap();

    // RHEL 9 / Fedora / Amazon Linux: the bundle is in /etc/pki, everything else links there.
    let rhel = tempfile::tempdir().unwrap();
    write(
        rhel.path(),
        "etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
        &pem,
    );
    fs::create_dir_all(rhel.path().join("etc/pki/tls/certs")).unwrap();
    fs::create_dir_all(rhel.path().join("etc/ssl")).unwrap();
    std::os::unix::fs::symlink(
        "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
        rhel.path().join("etc/pki/tls/certs/ca-bundle.crt"),
    )
    .unwrap();
    std::os::unix::fs::symlink("/etc/pki/tls/certs", rhel.path().join("etc/ssl/certs")).unwrap();
    assert_eq!(probe(rhel.path()), "ok");

    // Debian's bundle without the corporate root.
    let debian = tempfile::tempdir().unwrap();
    let other = pki.root("some-public-root");
    write(
        debian.path(),
        "etc/ssl/certs/ca-certificates.crt",
        &fs::read_to_string(&other.cert_path).unwrap(),
    );
    assert_eq!(probe(debian.path()), "unknown_authority");
}
