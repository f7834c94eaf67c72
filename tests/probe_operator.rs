//! `regtrust probe` against real registries for the operator's common cases (issue 15 point
//! 4): a plain-HTTP registry reads as kubelet prints it, an auth-required registry probed
//! without credentials says anonymous pulls get 401, and Harbor's getcert hint appears for
//! a Harbor whose CA is not installed (seen through its systeminfo or health, asked without
//! credentials) and never for another registry.

mod support;

use serde_json::Value;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use support::tinytls::{certified, response, Handler, TinyTls};
use support::{Pki, Registry};

const USER: &str = "robot$ci";
const PASSWORD: &str = "s3cret-Pa55";

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

/// `regtrust probe HOST --runtime docker --output json` with a pull secret holding
/// credentials for `host`, under an empty docker trust dir (the CA is not installed).
fn probe_with_secret(host: &str, root: &Path) -> Value {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let secret = root.join("pull-secret.json");
    let doc = serde_json::json!({ "auths": { host: { "auth": auth } } });
    fs::write(&secret, serde_json::to_vec(&doc).unwrap()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_regtrust"))
        .args(["probe", host, "--runtime", "docker", "--output", "json"])
        .args(["--timeout", "10s", "--pull-secret"])
        .arg(&secret)
        .arg("--host-root")
        .arg(root)
        .env_remove("DOCKER_CONFIG")
        .env("HOME", root)
        .output()
        .expect("run regtrust probe");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains(PASSWORD), "the password is in the report");
    assert_eq!(out.status.code(), Some(1), "{text}");
    serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "no JSON ({e}): {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// A Harbor as seen from outside: `/v2/` answers 401 with Harbor's Bearer challenge, and
/// either `/api/v2.0/systeminfo` (anonymous `GeneralInfo`) or only `/api/v2.0/health`
/// answers with Harbor's JSON (semantics-protocols.md §2.1, §2.2); everything else is 404.
fn harbor_handler(addr: std::net::SocketAddr, systeminfo: bool) -> Handler {
    Arc::new(move |req: &str| {
        let path = req.split(' ').nth(1).unwrap_or("");
        match path {
            "/v2/" => response(
                "401 Unauthorized",
                &[
                    ("Docker-Distribution-Api-Version", "registry/2.0"),
                    (
                        "Www-Authenticate",
                        &format!(
                            "Bearer realm=\"https://{addr}/service/token\",service=\"harbor-registry\""
                        ),
                    ),
                ],
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"unauthorized: unauthorized"}]}"#,
            ),
            "/api/v2.0/systeminfo" if systeminfo => response(
                "200 OK",
                &[("Content-Type", "application/json")],
                r#"{"auth_mode":"db_auth","banner_message":"","primary_auth_mode":false,"self_registration":false}"#,
            ),
            "/api/v2.0/health" if !systeminfo => response(
                "200 OK",
                &[("Content-Type", "application/json")],
                r#"{"status":"healthy","components":[{"name":"core","status":"healthy"},{"name":"registry","status":"healthy"}]}"#,
            ),
            _ => response(
                "404 Not Found",
                &[("Content-Type", "application/json")],
                r#"{"errors":[{"code":"NOT_FOUND","message":"not found"}]}"#,
            ),
        }
    })
}

/// The CA is not installed, so no connection is trusted: regtrust still tells Harbor apart
/// (systeminfo, else health, asked anonymously) and its fix names getcert; the pull
/// secret's credentials reach no request, and nothing the unverified answers said is
/// reported as Harbor's health.
#[test]
fn an_untrusted_harbor_gets_the_getcert_hint_without_credentials() {
    let pki = Pki::new();
    let ca = pki.root("harbor-ca-not-installed");
    let leaf = pki.server(&ca, "harbor", &["127.0.0.1"]);
    for (label, systeminfo, asked) in [
        ("systeminfo", true, "GET /api/v2.0/systeminfo "),
        ("health only", false, "GET /api/v2.0/health "),
    ] {
        let harbor = TinyTls::start(
            "127.0.0.1".parse().unwrap(),
            vec![certified(&leaf.chain_path, &leaf.key_path)],
            |addr| harbor_handler(addr, systeminfo),
        );
        let host = harbor.addr.to_string();
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("etc/docker")).unwrap();
        let r = probe_with_secret(&host, root.path());
        let reg = &r["registries"][0];
        let p = &reg["probes"][0];
        assert_eq!(p["verdict"], "unknown_authority", "{label}: {p}");
        assert_eq!(p["cause"], "ca_not_installed", "{label}: {p}");
        let fix = p["fix"].as_str().unwrap();
        assert!(
            fix.contains(&format!(
                "Harbor publishes it at https://{host}/api/v2.0/systeminfo/getcert"
            )),
            "{label}: {fix}"
        );
        assert!(reg.get("harbor").is_none(), "{label}: {reg}");
        let requests = harbor.requests();
        assert!(
            requests.iter().any(|r| r.starts_with(asked)),
            "{label}: {requests:?}"
        );
        assert_eq!(harbor.authorized(), Vec::<String>::new(), "{label}");
    }
}

/// Another registry (Debian's docker-registry, the CNCF distribution) with a CA that is not
/// installed gets the CA fix without any Harbor wording.
#[test]
fn an_untrusted_plain_registry_gets_no_harbor_hint() {
    let pki = Pki::new();
    let ca = pki.root("registry-ca-not-installed");
    let leaf = pki.server(&ca, "registry", &["127.0.0.1"]);
    let reg = Registry::tls(&leaf.chain_path, &leaf.key_path).start();
    let root = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join("etc/docker")).unwrap();
    let r = probe_with_secret(&reg.host(), root.path());
    let p = &r["registries"][0]["probes"][0];
    assert_eq!(p["verdict"], "unknown_authority", "{p}");
    assert_eq!(p["cause"], "ca_not_installed", "{p}");
    let fix = p["fix"].as_str().unwrap();
    assert!(
        fix.contains("`regtrust sync --host-root ")
            && fix.contains(&format!(" --ca {}=CA.crt`", reg.host())),
        "{fix}"
    );
    assert!(!fix.contains("Harbor") && !fix.contains("getcert"), "{fix}");
}
