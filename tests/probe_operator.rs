//! `regtrust probe` against real registries for the operator's common cases (issue 15 point
//! 4): a plain-HTTP registry reads as kubelet prints it, and an auth-required registry
//! probed without credentials says anonymous pulls get 401.

mod support;

use serde_json::Value;
use std::fs;
use std::path::Path;
use std::process::Command;
use support::{Pki, Registry};

fn probe(host: &str, root: &Path) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_regtrust"))
        .args([
            "probe",
            host,
            "--runtime",
            "docker",
            "--output",
            "json",
            "--timeout",
            "10s",
            "--host-root",
        ])
        .arg(root)
        .env_remove("DOCKER_CONFIG")
        .env_remove("REGTRUST_PULL_SECRET")
        .env("HOME", root)
        .output()
        .expect("run regtrust probe");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn plain_http_reads_as_kubelet_prints_it() {
    let reg = Registry::plain_http().start();
    let root = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join("etc/docker")).unwrap();
    let r = probe(&reg.host(), root.path());
    let p = &r["registries"][0]["probes"][0];
    assert!(
        p["message"]
            .as_str()
            .unwrap()
            .contains("http: server gave HTTP response to HTTPS client"),
        "{p}"
    );
}

#[test]
fn an_auth_registry_probed_without_credentials_says_anonymous_pulls_get_401() {
    let pki = Pki::new();
    let ca = pki.root("auth-ca");
    let leaf = pki.server(&ca, "registry", &["127.0.0.1"]);
    let reg = Registry::tls(&leaf.chain_path, &leaf.key_path)
        .htpasswd("robot", "s3cret-pw")
        .start();
    let root = tempfile::tempdir().unwrap();
    let dir = root
        .path()
        .join(format!("etc/docker/certs.d/{}", reg.host()));
    fs::create_dir_all(&dir).unwrap();
    fs::copy(&ca.cert_path, dir.join("ca.crt")).unwrap();
    let r = probe(&reg.host(), root.path());
    let p = &r["registries"][0]["probes"][0];
    assert_eq!(p["verdict"], "ok", "{p}");
    let warnings = p["warnings"].to_string();
    assert!(
        warnings.contains("anonymous pulls get 401 Unauthorized"),
        "{warnings}"
    );
}
