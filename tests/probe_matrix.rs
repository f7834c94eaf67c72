//! Issue 3's proof with real parts: `regtrust probe` against the Debian docker-registry over
//! TLS on loopback, one case per row of the matrix, each judged by a real Go client too:
//! the same trust dir (`<host-root>/etc/containers/certs.d/<host>`, CRI-O's dir) is given
//! to `skopeo inspect --cert-dir`. The verdict class must agree, and the `x509:` text must
//! be equal, times aside (skopeo 1.9 is built with Go 1.19, which prints the bare `x509:`
//! form). Cases without `x509:` text compare the Go text regtrust prints with skopeo's
//! where Go has one (plain HTTP on the port, a closed port).

mod support;

use serde_json::Value;
use std::io::{Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::{free_port, skopeo_inspect_with_creds, Judge, Pki, Registry, LOOPBACK_V4};
use tempfile::TempDir;

/// A node for one case: a host root whose CRI-O trust dir for `host` is also skopeo's
/// `--cert-dir`.
struct Node {
    root: TempDir,
    host: String,
}

impl Node {
    fn new(host: &str) -> Node {
        let root = tempfile::Builder::new()
            .prefix("regtrust-probe-node-")
            .tempdir()
            .expect("temp host root");
        std::fs::create_dir_all(root.path().join("etc/containers/certs.d"))
            .expect("etc/containers");
        Node {
            root,
            host: host.to_string(),
        }
    }

    /// `<root>/etc/containers/certs.d/<host>`.
    fn trust_dir(&self) -> PathBuf {
        self.root
            .path()
            .join("etc/containers/certs.d")
            .join(&self.host)
    }

    /// Put a PEM file into the trust dir as `name`.
    fn trust(&self, pem: &Path, name: &str) {
        std::fs::create_dir_all(self.trust_dir()).expect("create the trust dir");
        std::fs::copy(pem, self.trust_dir().join(name)).expect("copy a CA into the trust dir");
    }

    fn image(&self) -> String {
        format!("{}/library/tiny:1", self.host)
    }

    /// `regtrust probe HOST --output json` as CRI-O on this node; the exit code and report.
    fn probe(&self, extra: &[&str]) -> (i32, Value) {
        let out = Command::new(env!("CARGO_BIN_EXE_regtrust"))
            .args([
                "probe",
                &self.host,
                "--runtime",
                "crio",
                "--output",
                "json",
                "--timeout",
                "10s",
                // The judge, Debian's skopeo, is built with Go 1.19.8.
                "--go-version",
                "crio=1.19",
            ])
            .arg("--host-root")
            .arg(self.root.path())
            .args(extra)
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
        (out.status.code().unwrap_or(-1), report)
    }

    fn probe_text(&self) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_regtrust"))
            .args(["probe", &self.host, "--runtime", "crio", "--timeout", "10s"])
            .args(["--go-version", "crio=1.19"])
            .arg("--host-root")
            .arg(self.root.path())
            .env("HOME", self.root.path())
            .output()
            .expect("run regtrust probe");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn skopeo(&self, creds: Option<&str>) -> Judge {
        skopeo_inspect_with_creds(&self.trust_dir(), &self.image(), creds)
    }

    /// A pull secret naming this host, in the node's root.
    fn pull_secret(&self, user: &str, password: &str) -> PathBuf {
        use base64::Engine as _;
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let doc = serde_json::json!({ "auths": { &self.host: { "auth": auth } } });
        let path = self
            .root
            .path()
            .join(format!("pull-secret-{user}-{}.json", password.len()));
        std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).expect("write the pull secret");
        path
    }
}

/// The verdict class a Go client's failure text says (SPEC's verdict codes).
fn skopeo_class(j: &Judge) -> &'static str {
    let s = &j.stderr;
    if j.ok {
        return "ok";
    }
    let has = |t: &str| s.contains(t);
    if has("x509: certificate signed by unknown authority") {
        "unknown_authority"
    } else if has("x509: certificate has expired or is not yet valid") {
        "expired"
    } else if has("x509: certificate relies on legacy Common Name field") {
        "legacy_common_name"
    } else if has("x509: certificate is valid for")
        || has("x509: cannot validate certificate for")
        || has("x509: certificate is not valid for any names")
    {
        "hostname_mismatch"
    } else if has("no such host") || has("lookup ") && has("dial tcp") && !has("i/o timeout") {
        "dns_error"
    } else if has("connection refused") {
        "connection_refused"
    } else if has("i/o timeout") || has("TLS handshake timeout") {
        "timeout"
    } else if has("invalid status code from registry 5") {
        "registry_error"
    } else if has("invalid status code from registry") {
        "not_a_registry"
    } else if has("unauthorized") || has("invalid username/password") {
        "auth_failed"
    } else if has("x509: ") || has("tls: ") || has("http: server gave HTTP response") {
        "tls_error"
    } else {
        "other"
    }
}

/// Replace every RFC 3339 time (`2025-01-02T03:04:05Z`, `...+02:00`) with `<time>`.
fn times_aside(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    let digit = |j: usize| b.get(j).is_some_and(u8::is_ascii_digit);
    while i < b.len() {
        let looks = (0..4).all(|k| digit(i + k))
            && b.get(i + 4) == Some(&b'-')
            && b.get(i + 10) == Some(&b'T')
            && b.get(i + 13) == Some(&b':');
        if looks {
            let mut j = i + 19;
            if b.get(j) == Some(&b'.') {
                j += 1;
                while digit(j) {
                    j += 1;
                }
            }
            match b.get(j) {
                Some(b'Z') => j += 1,
                Some(b'+') | Some(b'-') => j += 6,
                _ => {}
            }
            out.push_str("<time>");
            i = j.min(b.len());
        } else {
            let ch = s[i..].chars().next().unwrap_or('?');
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// The one registry of a probe report.
fn registry(report: &Value) -> &Value {
    let regs = report["registries"].as_array().expect("registries");
    assert_eq!(regs.len(), 1, "{report:#}");
    &regs[0]
}

/// regtrust and skopeo agree: same class (= `want`), and equal `x509:` text (times aside).
#[track_caller]
fn agree(case: &str, node: &Node, extra: &[&str], creds: Option<&str>, want: &str) -> Value {
    let (code, report) = node.probe(extra);
    let judge = node.skopeo(creds);
    let reg = registry(&report).clone();
    let probe = &reg["probes"][0];
    assert_eq!(
        reg["verdict"], want,
        "{case}: regtrust's verdict\n{report:#}"
    );
    assert_eq!(probe["runtime"], "crio", "{case}");
    assert_eq!(
        skopeo_class(&judge),
        want,
        "{case}: skopeo's class; its stderr:\n{}",
        judge.stderr
    );
    assert_eq!(
        code,
        if want == "ok" { 0 } else { 1 },
        "{case}: exit code\n{report:#}"
    );
    let ours = probe["message"].as_str().unwrap_or("");
    match judge.x509() {
        Some(theirs) => assert_eq!(
            times_aside(ours),
            times_aside(&theirs),
            "{case}: the x509 text differs\nskopeo stderr:\n{}",
            judge.stderr
        ),
        None => assert!(
            !ours.contains("x509:"),
            "{case}: regtrust says {ours:?}, skopeo has no x509 text:\n{}",
            judge.stderr
        ),
    }
    if want != "ok" {
        assert!(
            !probe["fix"].as_str().unwrap_or("").is_empty(),
            "{case}: no fix\n{report:#}"
        );
    }
    reg
}

const IP: &str = "127.0.0.1";

#[test]
fn good() {
    let pki = Pki::new();
    let ca = pki.root("good-ca");
    let leaf = pki.server(&ca, "good", &[IP]);
    let reg = Registry::tls(&leaf.cert_path, &leaf.key_path).start();
    reg.push_tiny_image(Some(&ca.cert_path));
    let node = Node::new(&reg.host());
    node.trust(&ca.cert_path, "ca.crt");
    let r = agree("good", &node, &[], None, "ok");
    let p = &r["probes"][0];
    assert_eq!(p["server_chain"][0]["sha256"], leaf.sha256_hex());
    assert_eq!(p["anchor"]["sha256"], ca.sha256_hex());
    assert!(p["anchor"]["file"].as_str().unwrap().ends_with("/ca.crt"));
    assert_eq!(p["trusted"][0]["sha256"], ca.sha256_hex());
    assert!(p["server_days_left"].as_i64().unwrap() >= 88);
    assert!(
        p["warnings"].as_array().is_none_or(|w| w.is_empty()),
        "{r:#}"
    );
}

#[test]
fn ca_not_installed() {
    let pki = Pki::new();
    let ca = pki.root("lonely-ca");
    let leaf = pki.server(&ca, "lonely", &[IP]);
    let reg = Registry::tls(&leaf.cert_path, &leaf.key_path).start();
    let node = Node::new(&reg.host());
    std::fs::create_dir_all(node.trust_dir()).unwrap();
    let r = agree("ca not installed", &node, &[], None, "unknown_authority");
    assert_eq!(r["probes"][0]["cause"], "ca_not_installed");
    assert!(r["probes"][0]["fix"]
        .as_str()
        .unwrap()
        .contains("install the registry's CA"));
}

#[test]
fn rotated_ca() {
    let pki = Pki::new();
    let old = pki.cert("harbor-ca-2024").cn("Harbor CA").ca();
    let new = pki.cert("harbor-ca-2025").cn("Harbor CA").ca();
    let before = pki.server(&old, "harbor-before", &[IP]);
    let after = pki.server(&new, "harbor-after", &[IP]);
    let mut reg = Registry::tls(&before.cert_path, &before.key_path).start();
    reg.push_tiny_image(Some(&old.cert_path));
    let node = Node::new(&reg.host());
    node.trust(&old.cert_path, "ca.crt");
    agree("before rotation", &node, &[], None, "ok");
    // Harbor's CA is rotated; the node still trusts the old one.
    reg.restart_with_tls(&after.chain_path, &after.key_path);
    let r = agree("after rotation", &node, &[], None, "unknown_authority");
    let p = &r["probes"][0];
    assert_eq!(p["cause"], "ca_mismatch", "{r:#}");
    assert_eq!(p["trusted"][0]["sha256"], old.sha256_hex());
    let fix = p["fix"].as_str().unwrap();
    assert!(
        fix.contains("rotated") && fix.contains(&old.sha256_hex()[..16]),
        "{fix}"
    );
    let text = node.probe_text();
    assert!(text.contains("unknown_authority (ca_mismatch)"), "{text}");
    assert!(
        text.contains("fix: the registry's CA was rotated"),
        "{text}"
    );
    // With the new CA as the input, the fix says sync would repair it.
    let (_, report) = node.probe(&[
        "--ca",
        &format!("{}={}", reg.host(), new.cert_path.display()),
    ]);
    let fix = registry(&report)["probes"][0]["fix"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(fix.contains("regtrust sync"), "{fix}");
}

#[test]
fn expired_leaf() {
    let pki = Pki::new();
    let ca = pki.root("exp-ca");
    let leaf = pki.cert("expired").signed_by(&ca).san(IP).expired().leaf();
    let reg = Registry::tls(&leaf.cert_path, &leaf.key_path).start();
    let node = Node::new(&reg.host());
    node.trust(&ca.cert_path, "ca.crt");
    let r = agree("expired leaf", &node, &[], None, "expired");
    let p = &r["probes"][0];
    assert!(p["server_days_left"].as_i64().unwrap() < 0);
    let warnings = p["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("expired on")),
        "{r:#}"
    );
}

#[test]
fn not_yet_valid_leaf() {
    let pki = Pki::new();
    let ca = pki.root("nyv-ca");
    let leaf = pki
        .cert("not-yet")
        .signed_by(&ca)
        .san(IP)
        .not_yet_valid()
        .leaf();
    let reg = Registry::tls(&leaf.cert_path, &leaf.key_path).start();
    let node = Node::new(&reg.host());
    node.trust(&ca.cert_path, "ca.crt");
    let r = agree("not yet valid", &node, &[], None, "expired");
    assert!(
        r["probes"][0]["fix"].as_str().unwrap().contains("clock"),
        "{r:#}"
    );
}

#[test]
fn wrong_host() {
    let pki = Pki::new();
    let ca = pki.root("wrong-ca");
    let leaf = pki.server(&ca, "wrong", &["registry.example"]);
    let reg = Registry::tls(&leaf.cert_path, &leaf.key_path).start();
    // `localhost` resolves to ::1 first here; the registry listens on 127.0.0.1 only, so
    // this also proves the fall-back to the next address.
    let node = Node::new(&format!("localhost:{}", reg.port()));
    node.trust(&ca.cert_path, "ca.crt");
    agree("wrong host", &node, &[], None, "hostname_mismatch");
}

#[test]
fn cn_only() {
    let pki = Pki::new();
    let ca = pki.root("cn-ca");
    let leaf = pki.cert("cn-only").signed_by(&ca).cn(IP).leaf();
    let reg = Registry::tls(&leaf.cert_path, &leaf.key_path).start();
    let node = Node::new(&reg.host());
    node.trust(&ca.cert_path, "ca.crt");
    agree("CN only", &node, &[], None, "legacy_common_name");
}

#[test]
fn ip_host_without_ip_sans() {
    let pki = Pki::new();
    let ca = pki.root("ipsan-ca");
    let leaf = pki.server(&ca, "dns-only", &["registry.example"]);
    let reg = Registry::tls(&leaf.cert_path, &leaf.key_path).start();
    let node = Node::new(&reg.host());
    node.trust(&ca.cert_path, "ca.crt");
    agree(
        "IP host without IP SANs",
        &node,
        &[],
        None,
        "hostname_mismatch",
    );
}

#[test]
fn missing_intermediate() {
    let pki = Pki::new();
    let root = pki.root("mi-root");
    let int = pki.cert("mi-int").signed_by(&root).ca();
    let leaf = pki.server(&int, "mi-leaf", &[IP]);
    let reg = Registry::tls(&leaf.cert_path, &leaf.key_path).start();
    let node = Node::new(&reg.host());
    node.trust(&root.cert_path, "ca.crt");
    let r = agree(
        "missing intermediate",
        &node,
        &[],
        None,
        "unknown_authority",
    );
    assert_eq!(r["probes"][0]["cause"], "missing_intermediate", "{r:#}");
    assert!(r["probes"][0]["fix"]
        .as_str()
        .unwrap()
        .contains("full chain"));
}

#[test]
fn intermediate_served() {
    let pki = Pki::new();
    let root = pki.root("is-root");
    let int = pki.cert("is-int").signed_by(&root).ca();
    let leaf = pki.server(&int, "is-leaf", &[IP]);
    let reg = Registry::tls(&leaf.chain_path, &leaf.key_path).start();
    reg.push_tiny_image(Some(&root.cert_path));
    let node = Node::new(&reg.host());
    node.trust(&root.cert_path, "ca.crt");
    let r = agree("intermediate served", &node, &[], None, "ok");
    assert_eq!(r["probes"][0]["server_chain"].as_array().unwrap().len(), 2);
    assert_eq!(r["probes"][0]["anchor"]["sha256"], root.sha256_hex());
}

#[test]
fn self_signed_leaf_pinned_as_the_ca() {
    let pki = Pki::new();
    // A CA:TRUE self-signed server certificate (rustls' default verifier refuses it as
    // CaUsedAsEndEntity; Go accepts a leaf that is in the pool).
    let leaf = pki.cert("pinned").san(IP).ca_flag(true).leaf();
    let reg = Registry::tls(&leaf.cert_path, &leaf.key_path).start();
    reg.push_tiny_image(Some(&leaf.cert_path));
    let node = Node::new(&reg.host());
    node.trust(&leaf.cert_path, "ca.crt");
    agree("self-signed CA:TRUE leaf pinned", &node, &[], None, "ok");
}

#[test]
fn self_signed_non_ca_leaf_pinned() {
    let pki = Pki::new();
    let leaf = pki.cert("pinned-noca").san(IP).leaf();
    let reg = Registry::tls(&leaf.cert_path, &leaf.key_path).start();
    reg.push_tiny_image(Some(&leaf.cert_path));
    let node = Node::new(&reg.host());
    node.trust(&leaf.cert_path, "ca.crt");
    agree("self-signed CA:FALSE leaf pinned", &node, &[], None, "ok");
}

#[test]
fn sha1_signed_leaf() {
    let pki = Pki::new();
    let ca = pki.root("sha1-ca");
    let leaf = pki.cert("sha1-leaf").signed_by(&ca).san(IP).sha1().leaf();
    let reg = Registry::tls(&leaf.cert_path, &leaf.key_path).start();
    let node = Node::new(&reg.host());
    node.trust(&ca.cert_path, "ca.crt");
    let r = agree("SHA-1 leaf", &node, &[], None, "unknown_authority");
    // The right CA is installed (ring cannot check ECDSA-SHA1: the key identifiers say so),
    // and Go refuses it: its own cause, not "not installed".
    assert_eq!(r["probes"][0]["cause"], "ca_unusable", "{r:#}");
    assert!(
        r["probes"][0]["fix"].as_str().unwrap().contains("SHA-1"),
        "{r:#}"
    );
}

#[test]
fn plain_http_on_the_port() {
    let reg = Registry::plain_http().start();
    let node = Node::new(&reg.host());
    let r = agree("plain HTTP", &node, &[], None, "tls_error");
    let ours = r["probes"][0]["message"].as_str().unwrap();
    assert_eq!(ours, "http: server gave HTTP response to HTTPS client");
    assert!(node.skopeo(None).stderr.contains(ours));
}

#[test]
fn closed_port() {
    let port = free_port(LOOPBACK_V4);
    let node = Node::new(&format!("{IP}:{port}"));
    let r = agree("closed port", &node, &[], None, "connection_refused");
    let ours = r["probes"][0]["message"].as_str().unwrap();
    assert_eq!(
        ours,
        format!("dial tcp {IP}:{port}: connect: connection refused")
    );
    assert!(node.skopeo(None).stderr.contains(ours));
}

#[test]
fn basic_auth_right_and_wrong_password() {
    let pki = Pki::new();
    let ca = pki.root("auth-ca");
    let leaf = pki.server(&ca, "auth", &[IP]);
    let reg = Registry::tls(&leaf.cert_path, &leaf.key_path)
        .htpasswd("alice", "right-horse-battery")
        .start();
    reg.push_tiny_image(Some(&ca.cert_path));
    let node = Node::new(&reg.host());
    node.trust(&ca.cert_path, "ca.crt");

    // Without credentials the registry is live (401 with a Basic challenge): TLS is ok, and
    // the warning that anonymous pulls get 401 (issue 15) makes it need attention (exit 1).
    let (code, report) = node.probe(&[]);
    assert_eq!(registry(&report)["verdict"], "ok", "{report:#}");
    assert!(
        report.to_string().contains("anonymous pulls get 401"),
        "{report:#}"
    );
    assert_eq!(code, 1);

    let right = node.pull_secret("alice", "right-horse-battery");
    let arg = right.display().to_string();
    agree(
        "right password",
        &node,
        &["--pull-secret", &arg],
        Some("alice:right-horse-battery"),
        "ok",
    );

    let wrong = node.pull_secret("alice", "wrong");
    let arg = wrong.display().to_string();
    let (_, report) = node.probe(&["--pull-secret", &arg]);
    let json = report.to_string();
    assert!(
        !json.contains("wrong\""),
        "the password leaked into the report: {json}"
    );
    let r = agree(
        "wrong password",
        &node,
        &["--pull-secret", &arg],
        Some("alice:wrong"),
        "auth_failed",
    );
    let fix = r["probes"][0]["fix"].as_str().unwrap();
    assert!(fix.contains("\"alice\"") && fix.contains(&arg), "{fix}");
}

/// What a tiny test server answers to one request head (`GET /path HTTP/1.1` and headers).
type Handler = Arc<dyn Fn(&str) -> Vec<u8> + Send + Sync>;

/// A tiny blocking rustls HTTPS server on 127.0.0.1:0 that answers each request with
/// `handler`, one connection at a time, `Connection: close`. Stopped and joined on drop.
struct TinyHttps {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TinyHttps {
    fn start(cert: &Path, key: &Path, handler: impl Fn(SocketAddr) -> Handler) -> TinyHttps {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .expect("read the server certificate")
            .collect::<Result<_, _>>()
            .expect("parse the server certificate");
        let key = PrivateKeyDer::from_pem_file(key).expect("read the server key");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server certificate and key");
        let config = Arc::new(config);
        let listener = TcpListener::bind(SocketAddr::new(LOOPBACK_V4, 0)).expect("bind");
        let addr = listener.local_addr().expect("local addr");
        listener.set_nonblocking(true).expect("nonblocking");
        let handler = handler(addr);
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                let (sock, _) = match listener.accept() {
                    Ok(s) => s,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        // Polling interval of the accept loop, not a synchronisation.
                        std::thread::sleep(Duration::from_millis(2));
                        continue;
                    }
                    Err(_) => break,
                };
                let _ = serve_one(config.clone(), sock, &handler);
            }
        });
        TinyHttps {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

fn serve_one(
    config: Arc<rustls::ServerConfig>,
    mut sock: TcpStream,
    handler: &Handler,
) -> std::io::Result<()> {
    sock.set_nonblocking(false)?;
    sock.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut conn = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tls.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        req.extend_from_slice(&buf[..n]);
    }
    tls.write_all(&handler(&String::from_utf8_lossy(&req)))?;
    tls.flush()?;
    conn.send_close_notify();
    let _ = conn.complete_io(&mut sock);
    Ok(())
}

impl Drop for TinyHttps {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An HTTP/1.1 response with `Connection: close`.
fn response(status: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str("\r\n");
    r.push_str(body);
    r.into_bytes()
}

#[test]
fn https_server_that_is_not_a_registry() {
    let pki = Pki::new();
    let ca = pki.root("web-ca");
    let leaf = pki.server(&ca, "web", &[IP]);
    let server = TinyHttps::start(&leaf.cert_path, &leaf.key_path, |_| {
        Arc::new(|_| {
            response(
                "404 Not Found",
                &[("Content-Type", "text/plain")],
                "404 page not found\n",
            )
        })
    });
    let node = Node::new(&server.addr.to_string());
    node.trust(&ca.cert_path, "ca.crt");
    let r = agree("not a registry", &node, &[], None, "not_a_registry");
    assert!(
        r["probes"][0]["message"].as_str().unwrap().contains("404"),
        "{r:#}"
    );
}

#[test]
fn https_server_with_a_web_page_at_v2() {
    // 200 OK, an HTML page, no Docker-Distribution-API-Version: a web server, not a registry.
    let pki = Pki::new();
    let ca = pki.root("web-ca");
    let leaf = pki.server(&ca, "web", &[IP]);
    let server = TinyHttps::start(&leaf.cert_path, &leaf.key_path, |_| {
        Arc::new(|_| {
            response(
                "200 OK",
                &[("Content-Type", "text/html")],
                "<!DOCTYPE html><html><body>Welcome to nginx!</body></html>\n",
            )
        })
    });
    let node = Node::new(&server.addr.to_string());
    node.trust(&ca.cert_path, "ca.crt");
    let (code, report) = node.probe(&[]);
    let r = registry(&report);
    assert_eq!(r["verdict"], "not_a_registry", "{report:#}");
    assert_eq!(code, 1);
    assert!(
        r["probes"][0]["message"]
            .as_str()
            .unwrap()
            .contains("200 OK with an HTML page and no Docker-Distribution-API-Version header"),
        "{report:#}"
    );
}

#[test]
fn the_report_names_the_go_of_debians_containerd() {
    // A node root holding Debian's own containerd (built with Go 1.19) and dpkg's status.
    let pki = Pki::new();
    let ca = pki.root("go-ca");
    let leaf = pki.server(&ca, "go", &[IP]);
    let server = TinyHttps::start(&leaf.cert_path, &leaf.key_path, |_| {
        Arc::new(|_| response("404 Not Found", &[], ""))
    });
    let node = Node::new(&server.addr.to_string());
    let bin = node.root.path().join("usr/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy("/usr/bin/containerd", bin.join("containerd"))
        .expect("/usr/bin/containerd is needed: install the Debian package containerd");
    let dpkg = node.root.path().join("var/lib/dpkg");
    std::fs::create_dir_all(&dpkg).unwrap();
    std::fs::copy("/var/lib/dpkg/status", dpkg.join("status")).expect("dpkg's status");
    let want_version = String::from_utf8(
        Command::new("dpkg-query")
            .args(["-W", "-f", "${Version}", "containerd"])
            .output()
            .expect("dpkg-query")
            .stdout,
    )
    .unwrap();
    let want_go = String::from_utf8(
        Command::new("go")
            .args(["version", "/usr/bin/containerd"])
            .output()
            .expect("go version")
            .stdout,
    )
    .unwrap();
    let want_go = want_go
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    assert!(want_go.starts_with("go1.19"), "{want_go}");
    let out = Command::new(env!("CARGO_BIN_EXE_regtrust"))
        .args([
            "probe",
            &node.host,
            "--runtime",
            "containerd",
            "--output",
            "json",
        ])
        .arg("--host-root")
        .arg(node.root.path())
        .env("HOME", node.root.path())
        .output()
        .expect("run regtrust probe");
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    let p = &registry(&report)["probes"][0];
    assert_eq!(p["runtime"], "containerd", "{report:#}");
    assert_eq!(p["go_version"], want_go.as_str(), "{report:#}");
    assert_eq!(p["runtime_version"], want_version.as_str(), "{report:#}");
    // Go 1.19 prints the bare x509 text: no runtime_message differs from it.
    assert!(p.get("runtime_message").is_none(), "{report:#}");
    // Told it is Go 1.22, the same node prints crypto/tls's wrapper.
    let out = Command::new(env!("CARGO_BIN_EXE_regtrust"))
        .args([
            "probe",
            &node.host,
            "--runtime",
            "containerd",
            "--output",
            "json",
        ])
        .args(["--go-version", "containerd=1.22"])
        .arg("--host-root")
        .arg(node.root.path())
        .env("HOME", node.root.path())
        .output()
        .expect("run regtrust probe");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let p = &registry(&report)["probes"][0];
    assert_eq!(p["go_version"], "go1.22.0", "{report:#}");
    assert_eq!(
        p["runtime_message"].as_str().unwrap_or_default(),
        format!(
            "tls: failed to verify certificate: {}",
            p["message"].as_str().unwrap_or_default()
        ),
        "{report:#}"
    );
}

#[test]
fn name_that_does_not_resolve() {
    let node = Node::new("registry.invalid:5000");
    let (code, report) = node.probe(&[]);
    let r = registry(&report);
    assert_eq!(r["verdict"], "dns_error", "{report:#}");
    assert_eq!(code, 1);
    assert_eq!(
        r["probes"][0]["message"],
        "dial tcp: lookup registry.invalid: no such host"
    );
    let judge = node.skopeo(None);
    assert_eq!(skopeo_class(&judge), "dns_error", "{}", judge.stderr);
}

#[test]
fn silent_server_is_a_timeout() {
    // Accepts TCP, never speaks: only regtrust is judged (Go's TLS handshake timeout is
    // 10 s; skopeo would take that long).
    let listener = TcpListener::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)).unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let node = Node::new(&host);
    let out = Command::new(env!("CARGO_BIN_EXE_regtrust"))
        .args([
            "probe",
            &host,
            "--runtime",
            "crio",
            "--output",
            "json",
            "--timeout",
            "300ms",
        ])
        .arg("--host-root")
        .arg(node.root.path())
        .env("HOME", node.root.path())
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = registry(&report);
    assert_eq!(r["verdict"], "timeout", "{report:#}");
    assert_eq!(r["probes"][0]["message"], "net/http: TLS handshake timeout");
    drop(listener);
}

#[test]
fn the_json_is_the_report_document() {
    let pki = Pki::new();
    let ca = pki.root("doc-ca");
    let leaf = pki.server(&ca, "doc", &[IP]);
    let reg = Registry::tls(&leaf.cert_path, &leaf.key_path).start();
    let node = Node::new(&reg.host());
    node.trust(&ca.cert_path, "ca.crt");
    let closed = format!("{IP}:{}", free_port(LOOPBACK_V4));
    let out = Command::new(env!("CARGO_BIN_EXE_regtrust"))
        .args([
            "probe",
            &reg.host(),
            &closed,
            "--runtime",
            "crio,docker",
            "--output",
            "json",
        ])
        .arg("--host-root")
        .arg(node.root.path())
        .args(["--node-name", "node-7"])
        .env("HOME", node.root.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report = regtrust::report::Report::from_json(&out.stdout).expect("a valid report document");
    assert_eq!(report.node, "node-7");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    for k in [
        "schema",
        "node",
        "agent_version",
        "generated_at",
        "registries",
        "problems",
    ] {
        assert!(v.get(k).is_some(), "{k}");
    }
    assert_eq!(v["schema"], "regtrust.report/v1");
    let regs = v["registries"].as_array().unwrap();
    assert_eq!(regs[0]["host"], reg.host());
    assert_eq!(regs[1]["host"], closed);
    // docker reads no CA for the host here: unknown authority; crio trusts it: ok. The
    // registry's verdict is the worst.
    assert_eq!(regs[0]["verdict"], "unknown_authority");
    let by_rt = |rt: &str| {
        regs[0]["probes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["runtime"] == rt)
            .unwrap()
            .clone()
    };
    assert_eq!(by_rt("crio")["verdict"], "ok");
    assert_eq!(by_rt("docker")["verdict"], "unknown_authority");
    for k in [
        "runtime",
        "verdict",
        "message",
        "latency_ms",
        "server_chain",
    ] {
        assert!(by_rt("docker").get(k).is_some(), "probe key {k}");
    }
    for k in ["subject", "issuer", "sha256", "not_after"] {
        assert!(
            by_rt("docker")["server_chain"][0].get(k).is_some(),
            "chain key {k}"
        );
    }
    assert_eq!(regs[1]["verdict"], "connection_refused");
}

#[test]
fn times_aside_replaces_rfc3339() {
    assert_eq!(
        times_aside("current time 2025-01-02T03:04:05Z is after 2024-12-31T00:00:00+02:00"),
        "current time <time> is after <time>"
    );
    assert_eq!(times_aside("no time here"), "no time here");
}

/// Harbor cannot run here: a Harbor-shaped server speaks its protocol as Harbor's own code
/// and tests define it (semantics-protocols.md §1.3, §2.1): `/v2/` answers 401 with
/// `Bearer realm="https://HOST/service/token",service="harbor-registry"`; the token service
/// answers 401 to bad credentials only when no scope is asked (with a scope it hands out an
/// empty token, so a probe that sent one would call a wrong password fine); `/api/v2.0/health`
/// answers 200 with `"status": "unhealthy"`.
#[test]
fn harbor_token_auth_and_health() {
    use base64::Engine as _;
    let pki = Pki::new();
    let ca = pki.root("harbor-ca");
    let leaf = pki.server(&ca, "harbor", &[IP]);
    let server = TinyHttps::start(&leaf.cert_path, &leaf.key_path, |addr| {
        let good = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("robot$ci:s3cret")
        );
        Arc::new(move |req: &str| {
            let line = req.lines().next().unwrap_or("");
            let auth = req.lines().find_map(|l| {
                l.strip_prefix("authorization: ")
                    .or_else(|| l.strip_prefix("Authorization: "))
            });
            if line.starts_with("GET /v2/ ") {
                let challenge = format!(
                    "Bearer realm=\"https://{addr}/service/token\",service=\"harbor-registry\""
                );
                response(
                    "401 Unauthorized",
                    &[
                        ("Docker-Distribution-Api-Version", "registry/2.0"),
                        ("Www-Authenticate", &challenge),
                        ("Content-Type", "application/json"),
                    ],
                    r#"{"errors":[{"code":"UNAUTHORIZED","message":"unauthorized: unauthorized"}]}"#,
                )
            } else if line.starts_with("GET /service/token?") {
                let asks_scope = line.contains("scope=");
                if !line.contains("service=harbor-registry") {
                    response("400 Bad Request", &[], "Unable to handle service")
                } else if asks_scope || auth == Some(good.as_str()) {
                    response(
                        "200 OK",
                        &[("Content-Type", "application/json")],
                        r#"{"token":"t","expires_in":1800}"#,
                    )
                } else {
                    response("401 Unauthorized", &[], "")
                }
            } else if line.starts_with("GET /api/v2.0/health ") {
                response(
                    "200 OK",
                    &[("Content-Type", "application/json")],
                    r#"{"status":"unhealthy","components":[{"name":"core","status":"healthy"},{"name":"redis","status":"unhealthy","error":"dial tcp 10.0.0.5:6379: connect: connection refused"}]}"#,
                )
            } else {
                response("404 Not Found", &[], "404 page not found\n")
            }
        })
    });
    let node = Node::new(&server.addr.to_string());
    node.trust(&ca.cert_path, "ca.crt");

    let (code, report) = node.probe(&[]);
    let r = registry(&report);
    assert_eq!(r["verdict"], "ok", "{report:#}");
    assert_eq!(r["harbor"]["status"], "unhealthy");
    assert_eq!(r["harbor"]["components"][1]["name"], "redis");
    let warnings = r["probes"][0]["warnings"].as_array().unwrap();
    assert!(
        warnings.iter().any(|w| w
            .as_str()
            .unwrap()
            .starts_with("Harbor reports itself unhealthy: redis unhealthy")),
        "{report:#}"
    );
    assert_eq!(code, 1, "an unhealthy Harbor needs attention");

    let right = node.pull_secret("robot$ci", "s3cret");
    let (_, report) = node.probe(&["--pull-secret", &right.display().to_string()]);
    assert_eq!(registry(&report)["verdict"], "ok", "{report:#}");

    let wrong = node.pull_secret("robot$ci", "nope");
    let (_, report) = node.probe(&["--pull-secret", &wrong.display().to_string()]);
    let r = registry(&report);
    assert_eq!(r["verdict"], "auth_failed", "{report:#}");
    let msg = r["probes"][0]["message"].as_str().unwrap();
    assert!(
        msg.contains("/service/token?service=harbor-registry") && msg.ends_with("401 Unauthorized"),
        "{msg}"
    );
    assert!(
        !report.to_string().contains("nope"),
        "the password leaked: {report}"
    );
}

#[test]
fn sha1_leaf_from_an_rsa_ca() {
    let pki = Pki::new();
    let ca = pki
        .cert("sha1-rsa-ca")
        .key(support::KeyKind::Rsa(2048))
        .ca();
    let leaf = pki
        .cert("sha1-rsa-leaf")
        .signed_by(&ca)
        .san(IP)
        .sha1()
        .leaf();
    let reg = Registry::tls(&leaf.cert_path, &leaf.key_path).start();
    let node = Node::new(&reg.host());
    node.trust(&ca.cert_path, "ca.crt");
    let r = agree("SHA-1 leaf, RSA CA", &node, &[], None, "unknown_authority");
    // The right CA is installed; Go refuses the SHA-1 link: the CA is unusable.
    assert_eq!(r["probes"][0]["cause"], "ca_unusable", "{r:#}");
    assert!(
        r["probes"][0]["fix"].as_str().unwrap().contains("SHA-1"),
        "{r:#}"
    );
}

/// `regtrust probe` on a workstation: with no input at all the user's docker config names
/// the hosts; any input (or a HOST argument) replaces that list, and the docker config
/// still lends its credentials. Usage errors exit 2.
#[test]
fn workstation_defaults_and_usage_errors() {
    let home = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let closed = format!("{IP}:{}", free_port(LOOPBACK_V4));
    let other = format!("{IP}:{}", free_port(LOOPBACK_V4));
    std::fs::create_dir_all(home.path().join(".docker")).unwrap();
    std::fs::write(
        home.path().join(".docker/config.json"),
        serde_json::to_vec(&serde_json::json!({
            "auths": { &closed: { "auth": "dTpw" }, "helper.example": {} },
            "credsStore": "desktop"
        }))
        .unwrap(),
    )
    .unwrap();
    let run = |args: &[&str], env_home: &Path, docker_config: Option<&Path>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_regtrust"));
        c.arg("probe")
            .args(args)
            .arg("--host-root")
            .arg(root.path())
            .args(["--output", "json", "--timeout", "2s"])
            .env("HOME", env_home)
            .env_remove("DOCKER_CONFIG")
            .env_remove("REGTRUST_PULL_SECRET")
            .env_remove("REGTRUST_REGISTRY")
            .env_remove("REGTRUST_CA");
        if let Some(d) = docker_config {
            c.env("DOCKER_CONFIG", d);
        }
        let out = c.output().unwrap();
        let hosts: Vec<String> = serde_json::from_slice::<Value>(&out.stdout)
            .map(|v| {
                v["registries"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["host"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default();
        (
            out.status.code().unwrap_or(-1),
            hosts,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, hosts, _) = run(&[], home.path(), None);
    assert_eq!(hosts, [closed.clone(), "helper.example".to_string()]);
    assert_eq!(code, 1);
    let (_, hosts, _) = run(&["--registry", &other], home.path(), None);
    assert_eq!(hosts, [other.as_str()]);
    let (_, hosts, _) = run(&[&other], home.path(), None);
    assert_eq!(hosts, [other.as_str()]);
    // $DOCKER_CONFIG names the dir holding config.json.
    let (_, hosts, _) = run(&[], root.path(), Some(&home.path().join(".docker")));
    assert_eq!(hosts.len(), 2);

    let empty_home = tempfile::tempdir().unwrap();
    let (code, _, err) = run(&[], empty_home.path(), None);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("nothing to probe"), "{err}");
    for bad in [
        &["a b"][..],
        &["--timeout", "soon", IP],
        &["--runtime", "podman", IP],
    ] {
        let (code, _, err) = run(bad, empty_home.path(), None);
        assert_eq!(code, 2, "{bad:?}: {err}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_regtrust"))
        .args(["probe", IP, "--host-root", "/nonexistent/regtrust-root"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
