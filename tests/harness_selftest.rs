//! Proves the real-parts harness (`tests/support`) works without regtrust: the test PKI says
//! what it claims, docker-registry serves it, and skopeo and containerd judge a cert dir the
//! way the runtimes do (trust missing → unknown authority, CA installed → pull, CA rotated →
//! unknown authority again). If this file fails, the other real-parts tests prove nothing.

mod support;

use std::net::{IpAddr, Ipv6Addr, SocketAddr, TcpStream};
use support::{
    skopeo_inspect, skopeo_inspect_with_creds, write_hosts_toml, x509_text, Containerd, Pki,
    Registry, LOOPBACK_V4,
};
use x509_parser::prelude::*;

const UNKNOWN_AUTHORITY: &str = "x509: certificate signed by unknown authority";

fn parse(pem: &str) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .expect("harness PEM parses")
        .to_vec()
}

#[test]
fn x509_text_unwraps_each_clients_framing() {
    let cases = [
        (
            "skopeo (logrus, quoted)",
            r#"time="2026-01-01T00:00:00Z" level=fatal msg="Error parsing image name \"docker://127.0.0.1:5000/library/tiny:1\": pinging container registry 127.0.0.1:5000: Get \"https://127.0.0.1:5000/v2/\": x509: certificate signed by unknown authority""#,
            Some(UNKNOWN_AUTHORITY),
        ),
        (
            "skopeo, quotes inside the x509 text",
            r#"time="x" level=fatal msg="pinging: x509: certificate is valid for \"a\", not b""#,
            Some(r#"x509: certificate is valid for "a", not b"#),
        ),
        (
            "ctr (plain)",
            "ctr: failed to resolve reference \"127.0.0.1:5000/library/tiny:1\": failed to do request: Head \"https://127.0.0.1:5000/v2/library/tiny/manifests/1\": x509: certificate signed by unknown authority\n",
            Some(UNKNOWN_AUTHORITY),
        ),
        (
            "Go >= 1.20 wrapping",
            "Get \"https://h/v2/\": tls: failed to verify certificate: x509: certificate has expired or is not yet valid: current time X is after Y",
            Some("x509: certificate has expired or is not yet valid: current time X is after Y"),
        ),
        ("no x509 text", "ctr: ... 400 Bad Request", None),
        ("empty", "", None),
    ];
    for (name, stderr, expected) in cases {
        assert_eq!(x509_text(stderr).as_deref(), expected, "case {name}");
    }
}

#[test]
fn pki_issues_what_it_claims() {
    let pki = Pki::new();
    let root = pki.root("root");
    let int = pki.cert("int").signed_by(&root).ca();
    let leaf = pki
        .cert("leaf")
        .signed_by(&int)
        .dns("registry.test")
        .ip(LOOPBACK_V4)
        .leaf();
    let cn_only = pki.cert("cn-only").signed_by(&root).cn("127.0.0.1").leaf();
    let expired_leaf = pki
        .cert("expired")
        .signed_by(&root)
        .ip(LOOPBACK_V4)
        .expired()
        .leaf();
    let future = pki
        .cert("future")
        .signed_by(&root)
        .ip(LOOPBACK_V4)
        .not_yet_valid()
        .leaf();
    let self_signed = pki.cert("self").ip(LOOPBACK_V4).leaf();
    let sha1 = pki
        .cert("sha1")
        .signed_by(&root)
        .ip(LOOPBACK_V4)
        .sha1()
        .leaf();
    let rsa_root = pki.cert("rsa-root").key(support::KeyKind::Rsa(2048)).ca();
    let rsa_small = pki
        .cert("rsa-1024")
        .signed_by(&rsa_root)
        .key(support::KeyKind::Rsa(1024))
        .ip(LOOPBACK_V4)
        .leaf();

    let der = parse(&root.cert_pem);
    let (_, c) = X509Certificate::from_der(&der).unwrap();
    assert!(c.is_ca(), "root is a CA");
    assert_eq!(c.subject(), c.issuer(), "root is self-signed");

    let der = parse(&leaf.cert_pem);
    let (_, c) = X509Certificate::from_der(&der).unwrap();
    assert!(!c.is_ca());
    assert_eq!(c.issuer().to_string(), "CN=int, O=regtrust tests");
    let sans = c.subject_alternative_name().unwrap().unwrap().value;
    assert_eq!(sans.general_names.len(), 2, "one DNS and one IP SAN");
    let chain = std::fs::read_to_string(&leaf.chain_path).unwrap();
    assert_eq!(
        chain.matches("BEGIN CERTIFICATE").count(),
        2,
        "leaf + intermediate"
    );
    assert_eq!(
        std::fs::read_to_string(&leaf.cert_path)
            .unwrap()
            .matches("BEGIN CERTIFICATE")
            .count(),
        1
    );

    let der = parse(&cn_only.cert_pem);
    let (_, c) = X509Certificate::from_der(&der).unwrap();
    assert!(
        c.subject_alternative_name().unwrap().is_none(),
        "CN-only has no SAN extension"
    );

    let now = ASN1Time::now();
    let der = parse(&expired_leaf.cert_pem);
    let (_, c) = X509Certificate::from_der(&der).unwrap();
    assert!(c.validity().not_after < now);
    let der = parse(&future.cert_pem);
    let (_, c) = X509Certificate::from_der(&der).unwrap();
    assert!(c.validity().not_before > now);

    let der = parse(&self_signed.cert_pem);
    let (_, c) = X509Certificate::from_der(&der).unwrap();
    assert_eq!(c.subject(), c.issuer());
    assert!(!c.is_ca());

    let der = parse(&sha1.cert_pem);
    let (_, c) = X509Certificate::from_der(&der).unwrap();
    assert_eq!(
        c.signature_algorithm.algorithm.to_id_string(),
        "1.2.840.10045.4.1",
        "ecdsa-with-SHA1"
    );
    assert!(c.subject_alternative_name().unwrap().is_some());

    let der = parse(&rsa_small.cert_pem);
    let (_, c) = X509Certificate::from_der(&der).unwrap();
    match c.public_key().parsed().unwrap() {
        x509_parser::public_key::PublicKey::RSA(k) => assert_eq!(k.key_size(), 1024),
        other => panic!("expected an RSA key, got {other:?}"),
    }
}

/// skopeo: nothing trusted → unknown authority; the CA as ca.crt → ok; the registry
/// reissued by a new CA → unknown authority again.
#[test]
fn skopeo_judges_a_cert_dir_through_rotation() {
    let pki = Pki::new();
    let ca_a = pki.root("ca-a");
    let leaf_a = pki.server(&ca_a, "registry-a", &["127.0.0.1"]);
    let mut registry = Registry::tls(&leaf_a.chain_path, &leaf_a.key_path).start();
    registry.push_tiny_image(Some(&ca_a.cert_path));
    let certs = tempfile::tempdir().unwrap();
    let image = registry.image_ref();

    skopeo_inspect(certs.path(), &image).assert_x509("nothing trusted", UNKNOWN_AUTHORITY);
    ca_a.write_to(certs.path(), "ca.crt");
    skopeo_inspect(certs.path(), &image).assert_ok("CA A trusted");

    let ca_b = pki.root("ca-b");
    let leaf_b = pki.server(&ca_b, "registry-b", &["127.0.0.1"]);
    let port = registry.port();
    registry.restart_with_tls(&leaf_b.chain_path, &leaf_b.key_path);
    assert_eq!(registry.port(), port, "restart keeps the port");
    skopeo_inspect(certs.path(), &image).assert_x509("registry rotated to CA B", UNKNOWN_AUTHORITY);
    ca_b.write_to(certs.path(), "ca.crt");
    skopeo_inspect(certs.path(), &image).assert_ok("CA B trusted, image kept across restart");
}

/// ctr with a hosts dir: the same three steps. Also pins runtime-lab-facts trap 1: a host
/// dir holding only ca.crt makes containerd speak plain HTTP to a loopback registry.
#[test]
fn ctr_judges_a_hosts_dir_through_rotation() {
    let containerd = Containerd::start();
    let pki = Pki::new();
    let ca_a = pki.root("ca-a");
    let leaf_a = pki.server(&ca_a, "registry-a", &["127.0.0.1"]);
    let mut registry = Registry::tls(&leaf_a.chain_path, &leaf_a.key_path).start();
    registry.push_tiny_image(Some(&ca_a.cert_path));
    let image = registry.image_ref();
    let hosts = tempfile::tempdir().unwrap();
    let host = registry.host();

    // Trap 1: ca.crt alone → plain HTTP to the TLS port.
    let host_dir = hosts.path().join(&host);
    let ca_file = ca_a.write_to(&host_dir, "ca.crt");
    let j = containerd.ctr_pull(hosts.path(), &image);
    assert!(
        !j.ok && j.x509().is_none(),
        "ca.crt alone: expected a plain-HTTP failure, got:\n{}",
        j.stderr
    );
    assert!(
        j.stderr.contains("400 Bad Request"),
        "ca.crt alone: {}",
        j.stderr
    );

    write_hosts_toml(hosts.path(), &host, None);
    containerd
        .ctr_pull(hosts.path(), &image)
        .assert_x509("hosts.toml without ca", UNKNOWN_AUTHORITY);
    write_hosts_toml(hosts.path(), &host, Some(&ca_file));
    containerd
        .ctr_pull(hosts.path(), &image)
        .assert_ok("CA A referenced");

    let ca_b = pki.root("ca-b");
    let leaf_b = pki.server(&ca_b, "registry-b", &["127.0.0.1"]);
    registry.restart_with_tls(&leaf_b.chain_path, &leaf_b.key_path);
    containerd
        .ctr_pull(hosts.path(), &image)
        .assert_x509("registry rotated to CA B", UNKNOWN_AUTHORITY);
    ca_b.write_to(&host_dir, "ca.crt");
    containerd
        .ctr_pull(hosts.path(), &image)
        .assert_ok("CA B referenced");
}

/// Intermediates, htpasswd auth, plain HTTP and an IPv6 bind: the other registry modes the
/// probe matrix uses.
#[test]
fn registry_modes_behave_as_configured() {
    let pki = Pki::new();
    let root = pki.root("root");
    let int = pki.cert("int").signed_by(&root).ca();
    let leaf = pki.server(&int, "leaf", &["127.0.0.1"]);
    let certs = tempfile::tempdir().unwrap();
    root.write_to(certs.path(), "ca.crt");

    // Served with its intermediate, then without.
    let mut registry = Registry::tls(&leaf.chain_path, &leaf.key_path)
        .htpasswd("alice", "right-password")
        .start();
    registry.push_tiny_image(Some(&root.cert_path));
    let image = registry.image_ref();
    skopeo_inspect_with_creds(certs.path(), &image, registry.creds().as_deref())
        .assert_ok("intermediate served, right password");
    let j = skopeo_inspect(certs.path(), &image);
    assert!(
        !j.ok && j.stderr.contains("unauthorized"),
        "no credentials: {}",
        j.stderr
    );
    let j = skopeo_inspect_with_creds(certs.path(), &image, Some("alice:wrong"));
    assert!(
        !j.ok && j.stderr.contains("unauthorized"),
        "wrong password: {}",
        j.stderr
    );
    registry.restart_with_tls(&leaf.cert_path, &leaf.key_path);
    skopeo_inspect_with_creds(certs.path(), &image, registry.creds().as_deref())
        .assert_x509("intermediate missing", UNKNOWN_AUTHORITY);

    // Plain HTTP on the port.
    let plain = Registry::plain_http().start();
    plain.push_tiny_image(None);
    let j = skopeo_inspect(certs.path(), &plain.image_ref());
    assert!(
        !j.ok
            && j.stderr
                .contains("server gave HTTP response to HTTPS client"),
        "plain HTTP: {}",
        j.stderr
    );

    // IPv6 loopback bind (serves probes; the Go clients here cannot spell the reference).
    let v6 = pki.server(&root, "v6", &["::1"]);
    let registry6 = Registry::tls(&v6.chain_path, &v6.key_path).ipv6().start();
    assert_eq!(registry6.host(), format!("[::1]:{}", registry6.port()));
    TcpStream::connect(SocketAddr::new(
        IpAddr::V6(Ipv6Addr::LOCALHOST),
        registry6.port(),
    ))
    .expect("the [::1] registry accepts");
}
