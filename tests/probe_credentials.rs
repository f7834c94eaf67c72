//! Issue 9 point 2's proof: the pull secret's credentials go only where the runtime would
//! send them, over TLS verified with that runtime's trust. `regtrust probe` (the real
//! binary, as CRI-O on a temp host root) against tiny HTTPS servers on loopback: a token
//! realm on another address (127.0.0.2) with a certificate the registry's trust does not
//! accept, a registry whose third connection presents another certificate, and a realm
//! over plain HTTP. Each server records what it received: no `Authorization` may reach one
//! the runtime's trust refuses, and the verdict is never `ok`.

mod support;

use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use support::tinytls::{certified, response, Handler, Silent, TinyTls};
use support::Pki;
use tempfile::TempDir;

const REGISTRY_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const REALM_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const USER: &str = "robot$ci";
const PASSWORD: &str = "s3cret-Pa55";

/// A host root whose CRI-O trust dir for `host` holds `ca`, and a pull secret for it.
struct Node {
    root: TempDir,
    host: String,
}

impl Node {
    fn new(host: SocketAddr, ca: &Path) -> Node {
        let root = tempfile::Builder::new()
            .prefix("regtrust-cred-node-")
            .tempdir()
            .expect("temp host root");
        let node = Node {
            root,
            host: host.to_string(),
        };
        let dir = node
            .root
            .path()
            .join("etc/containers/certs.d")
            .join(&node.host);
        std::fs::create_dir_all(&dir).expect("trust dir");
        std::fs::copy(ca, dir.join("ca.crt")).expect("install the CA");
        node
    }

    fn pull_secret(&self) -> PathBuf {
        use base64::Engine as _;
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
        let doc = serde_json::json!({ "auths": { &self.host: { "auth": auth } } });
        let path = self.root.path().join("pull-secret.json");
        std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).expect("write the pull secret");
        path
    }

    /// `regtrust probe HOST --runtime crio --output json --pull-secret ...`: exit code, the
    /// registry's report.
    fn probe(&self) -> (i32, Value) {
        let out = Command::new(env!("CARGO_BIN_EXE_regtrust"))
            .args(["probe", &self.host, "--runtime", "crio", "--output", "json"])
            .args(["--timeout", "10s", "--pull-secret"])
            .arg(self.pull_secret())
            .arg("--host-root")
            .arg(self.root.path())
            .env_remove("DOCKER_CONFIG")
            .env("HOME", self.root.path())
            .output()
            .expect("run regtrust probe");
        let text = String::from_utf8_lossy(&out.stdout);
        let report: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!(
                "regtrust probe printed no JSON ({e}):\n{text}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        assert!(
            !text.contains(PASSWORD),
            "the password is in the report: {text}"
        );
        (
            out.status.code().unwrap_or(-1),
            report["registries"][0].clone(),
        )
    }
}

/// The realm answers 200 with a token to anything (it is what the credentials reach).
fn realm_handler() -> Handler {
    Arc::new(|_req: &str| {
        response(
            "200 OK",
            &[("Content-Type", "application/json")],
            r#"{"token":"t","expires_in":300}"#,
        )
    })
}

/// A registry whose `/v2/` answers 401 with a Bearer challenge naming `realm`.
fn bearer_registry(realm: String) -> Handler {
    Arc::new(move |req: &str| {
        let challenge = format!("Bearer realm=\"{realm}\",service=\"harbor-registry\"");
        if req.starts_with("GET /v2/ ") {
            response(
                "401 Unauthorized",
                &[
                    ("Docker-Distribution-Api-Version", "registry/2.0"),
                    ("Www-Authenticate", &challenge),
                ],
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"unauthorized"}]}"#,
            )
        } else {
            response("404 Not Found", &[], "")
        }
    })
}

/// A token realm on another host is fetched with the registry's trust (as containerd and
/// docker do): one whose certificate that trust refuses gets no credentials and the verdict
/// is that refusal, with the cause `realm_untrusted`; one signed by the registry's CA gets
/// them and the verdict is ok.
#[test]
fn a_realm_on_another_host_must_pass_the_registrys_trust() {
    let pki = Pki::new();
    let ca = pki.root("registry-ca");
    let leaf = pki.server(&ca, "registry", &["127.0.0.1"]);
    let stranger = pki.root("stranger-ca");
    let untrusted_realm = pki.server(&stranger, "realm-untrusted", &["127.0.0.2"]);
    let trusted_realm = pki.server(&ca, "realm-trusted", &["127.0.0.2"]);

    for (label, realm_leaf, want_ok) in [
        ("untrusted realm", &untrusted_realm, false),
        ("trusted realm", &trusted_realm, true),
    ] {
        let realm = TinyTls::start(
            REALM_IP,
            vec![certified(&realm_leaf.chain_path, &realm_leaf.key_path)],
            |_| realm_handler(),
        );
        let realm_url = format!("https://{}/service/token", realm.addr);
        let registry = TinyTls::start(
            REGISTRY_IP,
            vec![certified(&leaf.chain_path, &leaf.key_path)],
            |_| bearer_registry(realm_url.clone()),
        );
        let node = Node::new(registry.addr, &ca.cert_path);
        let (code, r) = node.probe();
        let p = &r["probes"][0];
        if want_ok {
            assert_eq!(r["verdict"], "ok", "{label}: {r:#}");
            assert_eq!(code, 0, "{label}: {r:#}");
            assert_eq!(
                realm.authorized().len(),
                1,
                "{label}: {:?}",
                realm.requests()
            );
        } else {
            assert_eq!(r["verdict"], "unknown_authority", "{label}: {r:#}");
            assert_eq!(p["cause"], "realm_untrusted", "{label}: {r:#}");
            assert_eq!(
                p["message"], "x509: certificate signed by unknown authority",
                "{label}: {r:#}"
            );
            let fix = p["fix"].as_str().unwrap();
            assert!(fix.contains("token service 127.0.0.2 "), "{fix}");
            assert_eq!(code, 1);
            assert!(
                realm.requests().is_empty(),
                "{label}: the realm received {:?}",
                realm.requests()
            );
        }
        assert!(
            registry.authorized().is_empty(),
            "{label}: {:?}",
            registry.requests()
        );
    }
}

/// A registry with Basic auth whose first two connections (the probe's handshake, the
/// anonymous `/v2/`) present the trusted certificate and later ones another: the
/// connection that would carry the password is refused before a byte is written, and the
/// verdict says so (`connection_untrusted`).
#[test]
fn a_later_connection_with_another_certificate_gets_no_credentials() {
    let pki = Pki::new();
    let ca = pki.root("lb-ca");
    let good = pki.server(&ca, "backend-good", &["127.0.0.1"]);
    let stranger = pki.root("interceptor-ca");
    let bad = pki.server(&stranger, "backend-bad", &["127.0.0.1"]);
    let registry = TinyTls::start(
        REGISTRY_IP,
        vec![
            certified(&good.chain_path, &good.key_path),
            certified(&good.chain_path, &good.key_path),
            certified(&bad.chain_path, &bad.key_path),
        ],
        |_| {
            Arc::new(|req: &str| {
                let authorized = req
                    .lines()
                    .any(|l| l.to_ascii_lowercase().starts_with("authorization:"));
                if authorized {
                    response("200 OK", &[], "{}")
                } else {
                    response(
                        "401 Unauthorized",
                        &[("Www-Authenticate", "Basic realm=\"registry\"")],
                        "",
                    )
                }
            })
        },
    );
    let node = Node::new(registry.addr, &ca.cert_path);
    let (code, r) = node.probe();
    let p = &r["probes"][0];
    assert_eq!(r["verdict"], "unknown_authority", "{r:#}");
    assert_eq!(p["cause"], "connection_untrusted", "{r:#}");
    assert_eq!(code, 1);
    assert!(
        registry.authorized().is_empty(),
        "credentials went over the untrusted connection: {:?}",
        registry.requests()
    );
    assert_eq!(registry.requests().len(), 1, "{:?}", registry.requests());
}

/// A realm over plain HTTP is never sent the password: the probe does not connect to it,
/// the verdict stays ok (TLS and the registry are fine) with the warning that auth was not
/// checked and why, and the exit code says it needs attention.
#[test]
fn a_plain_http_realm_is_not_sent_credentials() {
    let pki = Pki::new();
    let ca = pki.root("plain-realm-ca");
    let leaf = pki.server(&ca, "registry", &["127.0.0.1"]);
    let realm = Silent::bind(REALM_IP);
    let realm_url = format!("http://{}/service/token", realm.addr);
    let registry = TinyTls::start(
        REGISTRY_IP,
        vec![certified(&leaf.chain_path, &leaf.key_path)],
        |_| bearer_registry(realm_url.clone()),
    );
    let node = Node::new(registry.addr, &ca.cert_path);
    let (code, r) = node.probe();
    assert_eq!(r["verdict"], "ok", "{r:#}");
    let warnings: Vec<&str> = r["probes"][0]["warnings"]
        .as_array()
        .map(|w| w.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(
        warnings.iter().any(|w| w.starts_with("auth not checked: ")
            && w.contains(&realm_url)
            && w.contains("plain HTTP")
            && w.contains("in clear")),
        "{r:#}"
    );
    assert_eq!(code, 1, "auth not checked needs attention");
    assert!(
        !realm.connected(),
        "the probe connected to the plain-HTTP realm"
    );
}
