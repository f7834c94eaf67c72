//! `regtrust sync` as a process: exit codes (0 all good, 1 needs attention, 2 usage or
//! configuration error), the JSON document on stdout, and the REGTRUST_* environment.

use std::path::Path;
use std::process::{Command, Output};

fn regtrust(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_regtrust"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("REGTRUST_") {
            c.env_remove(k);
        }
    }
    c.args(args)
        .envs(env.iter().copied())
        .env("RUST_LOG", "warn");
    c.output().unwrap()
}

fn scratch_node() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("host/etc/docker")).unwrap();
    // `--runtime auto` needs evidence an empty dir cannot fake: Docker's config file.
    std::fs::write(dir.path().join("host/etc/docker/daemon.json"), "{}\n").unwrap();
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "CLI CA");
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate().unwrap();
    std::fs::write(
        dir.path().join("ca.pem"),
        p.self_signed(&key).unwrap().pem(),
    )
    .unwrap();
    dir
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn exit_codes() {
    let dir = scratch_node();
    let root = s(&dir.path().join("host"));
    let ca = format!("harbor.local:8443={}", s(&dir.path().join("ca.pem")));
    // Good: docker only (auto), installed, exit 0, a report on stdout.
    let out = regtrust(
        &[
            "sync",
            "--host-root",
            &root,
            "--ca",
            &ca,
            "--output",
            "json",
        ],
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["schema"], "regtrust.report/v1");
    assert_eq!(v["registries"][0]["trust"][0]["state"], "installed");
    assert_eq!(
        v["registries"][0]["trust"].as_array().unwrap().len(),
        1,
        "only docker exists on this node"
    );

    // Needs attention: an invalid CA input (a key) → exit 1, still a report.
    std::fs::write(
        dir.path().join("key.pem"),
        "-----BEGIN EC PRIVATE KEY-----\nAA==\n-----END EC PRIVATE KEY-----\n",
    )
    .unwrap();
    let bad = format!("harbor.local:8443={}", s(&dir.path().join("key.pem")));
    let out = regtrust(&["sync", "--host-root", &root, "--ca", &bad], &[]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("private key") && text.contains("key.pem"),
        "{text}"
    );
    assert!(!text.contains("AA=="), "key material in the output: {text}");

    // Usage and configuration errors → exit 2, nothing written.
    for args in [
        vec!["sync", "--host-root", &root, "--registry", "../etc"],
        vec!["sync", "--host-root", &root, "--runtime", "podman"],
        vec!["sync", "--host-root", "/nonexistent/root"],
        vec!["sync", "--host-root", &root, "--ca", "bad host=x"],
        vec!["sync", "--output", "yaml"],
        vec!["sync", "--no-such-flag"],
    ] {
        let out = regtrust(&args, &[]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
}

#[test]
fn flags_also_read_the_environment() {
    let dir = scratch_node();
    let root = s(&dir.path().join("host"));
    let ca = format!("env.local:5000={}", s(&dir.path().join("ca.pem")));
    let out = regtrust(
        &["sync", "--output", "json"],
        &[
            ("REGTRUST_HOST_ROOT", &root),
            ("REGTRUST_CA", &ca),
            ("REGTRUST_RUNTIME", "docker,crio"),
            ("REGTRUST_NODE_NAME", "env-node"),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["node"], "env-node");
    assert!(dir
        .path()
        .join("host/etc/containers/certs.d/env.local:5000/ca.crt")
        .is_file());
    assert!(dir
        .path()
        .join("host/var/lib/regtrust/ledger.json")
        .is_file());
}
