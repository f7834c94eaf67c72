//! A permissive rustls `ServerCertVerifier` that records the chain a registry presents and
//! accepts it, so that `goverify` (Go's rules) can decide on it afterwards; and the rustls
//! `ClientConfig` (ring provider) that uses it. It owns the TLS handshake-signature checks:
//! rustls' own helpers re-parse the leaf with webpki's strict rules and would fail
//! certificates Go accepts (v1, RSA under 2048 bits, unknown critical extensions), so the
//! leaf's key is taken from its SubjectPublicKeyInfo alone (`gox509::spki_of_certificate`,
//! parsed as Go parses keys) and checked with `signature`. It does not judge the chain (the
//! chain is accepted here on purpose) and sends nothing secret over the connection on its own.
//! `JudgedVerifier` is its strict sibling for every connection that carries credentials: it
//! accepts a chain only when the runtime's trust view does (`credtls`).
//!
//! Signature schemes offered: ECDSA P-256/SHA-256, P-384/SHA-384, Ed25519, RSA-PSS and
//! RSA PKCS#1 with SHA-256/384/512. Go 1.19 also offers SHA-1 schemes for TLS 1.2 and
//! ECDSA P-521; a server that can only sign those fails here but not in Go (rare).

use super::gox509;
use super::signature::{self, Hash, Scheme, SigError};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, SignatureScheme};
use std::sync::{Arc, Mutex};

/// Where the verifier leaves the presented chain; clone it into the verifier and read it after
/// the handshake (also after a failed one: the chain is recorded before any signature check).
#[derive(Debug, Clone, Default)]
pub struct ChainCapture {
    inner: Arc<Mutex<Option<Vec<Vec<u8>>>>>,
}

impl ChainCapture {
    pub fn new() -> Self {
        Self::default()
    }

    /// The chain of the last handshake as the server sent it (leaf first, DER), if any.
    pub fn chain(&self) -> Option<Vec<Vec<u8>>> {
        self.inner.lock().ok().and_then(|g| g.clone())
    }

    fn record(&self, chain: Vec<Vec<u8>>) {
        if let Ok(mut g) = self.inner.lock() {
            *g = Some(chain);
        }
    }
}

/// Accepts any chain, records it, and checks handshake signatures with the leaf's key.
#[derive(Debug)]
pub struct CaptureVerifier {
    capture: ChainCapture,
}

impl CaptureVerifier {
    pub fn new(capture: ChainCapture) -> Self {
        CaptureVerifier { capture }
    }
}

const SCHEMES: [SignatureScheme; 9] = [
    SignatureScheme::ECDSA_NISTP256_SHA256,
    SignatureScheme::ECDSA_NISTP384_SHA384,
    SignatureScheme::ED25519,
    SignatureScheme::RSA_PSS_SHA256,
    SignatureScheme::RSA_PSS_SHA384,
    SignatureScheme::RSA_PSS_SHA512,
    SignatureScheme::RSA_PKCS1_SHA256,
    SignatureScheme::RSA_PKCS1_SHA384,
    SignatureScheme::RSA_PKCS1_SHA512,
];

impl ServerCertVerifier for CaptureVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let mut chain = Vec::with_capacity(1 + intermediates.len());
        chain.push(end_entity.to_vec());
        chain.extend(intermediates.iter().map(|c| c.to_vec()));
        self.capture.record(chain);
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_handshake_signature(message, cert, dss.scheme, dss.signature(), false)
            .map(|()| HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_handshake_signature(message, cert, dss.scheme, dss.signature(), true)
            .map(|()| HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        SCHEMES.to_vec()
    }
}

/// Check a TLS handshake signature (ServerKeyExchange in 1.2, CertificateVerify in 1.3) made
/// with the key of `cert_der`, without judging the certificate itself.
pub fn verify_handshake_signature(
    message: &[u8],
    cert_der: &[u8],
    scheme: SignatureScheme,
    sig: &[u8],
    tls13: bool,
) -> Result<(), Error> {
    let spki = gox509::spki_of_certificate(cert_der)
        .ok_or(Error::InvalidCertificate(CertificateError::BadEncoding))?;
    let (_, key) = gox509::parse_spki(spki)
        .map_err(|e| Error::General(format!("server certificate key cannot be used: {e}")))?;
    let s = match scheme {
        SignatureScheme::RSA_PKCS1_SHA256 if !tls13 => Scheme::RsaPkcs1(Hash::Sha256),
        SignatureScheme::RSA_PKCS1_SHA384 if !tls13 => Scheme::RsaPkcs1(Hash::Sha384),
        SignatureScheme::RSA_PKCS1_SHA512 if !tls13 => Scheme::RsaPkcs1(Hash::Sha512),
        SignatureScheme::RSA_PSS_SHA256 => Scheme::RsaPss(Hash::Sha256),
        SignatureScheme::RSA_PSS_SHA384 => Scheme::RsaPss(Hash::Sha384),
        SignatureScheme::RSA_PSS_SHA512 => Scheme::RsaPss(Hash::Sha512),
        SignatureScheme::ECDSA_NISTP256_SHA256 => Scheme::Ecdsa(Hash::Sha256),
        SignatureScheme::ECDSA_NISTP384_SHA384 => Scheme::Ecdsa(Hash::Sha384),
        SignatureScheme::ED25519 => Scheme::Ed25519,
        _ => return Err(unadvertised()),
    };
    // In TLS 1.3 an ECDSA scheme names the curve too (RFC 8446 §4.2.3).
    if tls13 {
        if let gox509::PublicKey::Ecdsa { curve, .. } = &key {
            let want = match scheme {
                SignatureScheme::ECDSA_NISTP256_SHA256 => gox509::Curve::P256,
                _ => gox509::Curve::P384,
            };
            if matches!(s, Scheme::Ecdsa(_)) && *curve != want {
                return Err(Error::InvalidCertificate(CertificateError::BadSignature));
            }
        }
    }
    match signature::verify(&key, s, message, sig) {
        Ok(()) => Ok(()),
        Err(SigError::Invalid) | Err(SigError::WrongKeyType) => {
            Err(Error::InvalidCertificate(CertificateError::BadSignature))
        }
        Err(SigError::Unsupported(what)) => Err(Error::General(format!(
            "cannot check the server's handshake signature: {what}"
        ))),
    }
}

/// Decides whether one connection may carry the pull secret's credentials: `chain` is what
/// the server presented (leaf first, DER), `server` the name (or IP) dialed. `Err` holds why
/// not (the connection is then refused before a request is written).
pub trait ConnectionJudge: Send + Sync + std::fmt::Debug {
    fn judge(&self, chain: &[Vec<u8>], server: &ServerName<'_>) -> Result<(), String>;
}

/// The verifier of every connection that may carry credentials: unlike [`CaptureVerifier`]
/// it accepts a chain only when its [`ConnectionJudge`] (the trust view of the runtime being
/// judged, with Go's rules) does. Handshake signatures are checked as the capture does.
#[derive(Debug)]
pub struct JudgedVerifier {
    judge: Arc<dyn ConnectionJudge>,
}

impl ServerCertVerifier for JudgedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let mut chain = Vec::with_capacity(1 + intermediates.len());
        chain.push(end_entity.to_vec());
        chain.extend(intermediates.iter().map(|c| c.to_vec()));
        self.judge
            .judge(&chain, server_name)
            .map(|()| ServerCertVerified::assertion())
            .map_err(Error::General)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_handshake_signature(message, cert, dss.scheme, dss.signature(), false)
            .map(|()| HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_handshake_signature(message, cert, dss.scheme, dss.signature(), true)
            .map(|()| HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        SCHEMES.to_vec()
    }
}

/// A client config like [`client_config`] whose verifier is `judge`: for the connections
/// that carry credentials (registry and token realm, first and later connections alike).
pub fn judged_config(judge: Arc<dyn ConnectionJudge>) -> Result<rustls::ClientConfig, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(JudgedVerifier { judge }))
        .with_no_client_auth())
}

fn unadvertised() -> Error {
    Error::PeerMisbehaved(rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme)
}

/// A client config (ring provider, TLS 1.2 and 1.3, no client certificate) whose verifier
/// records the chain into `capture` and accepts it. One config per probed connection keeps
/// captures apart. The caller may set ALPN before use.
pub fn client_config(capture: &ChainCapture) -> Result<rustls::ClientConfig, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(CaptureVerifier::new(capture.clone())))
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::pki::{self, Issued, Key, Spec, TempDir};
    use rustls::pki_types::PrivateKeyDer;
    use std::net::SocketAddr;
    use std::time::{Duration, Instant};
    use time::OffsetDateTime;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Pairs a chain with any signing key (also one that does not match the leaf).
    #[derive(Debug)]
    struct FixedResolver(Arc<rustls::sign::CertifiedKey>);

    impl rustls::server::ResolvesServerCert for FixedResolver {
        fn resolve(
            &self,
            _hello: rustls::server::ClientHello<'_>,
        ) -> Option<Arc<rustls::sign::CertifiedKey>> {
            Some(self.0.clone())
        }
    }

    /// A tokio-rustls server on 127.0.0.1:0 presenting `chain`, signing with `key`, that
    /// completes handshakes and answers one byte per connection.
    async fn serve(
        chain: Vec<Vec<u8>>,
        key: &Key,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> SocketAddr {
        let der = PrivateKeyDer::try_from(key.pair.serialize_der()).expect("key der");
        let signer = rustls::crypto::ring::sign::any_supported_type(&der).expect("signing key");
        let certified = rustls::sign::CertifiedKey::new(
            chain.into_iter().map(CertificateDer::from).collect(),
            signer,
        );
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .expect("versions")
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(FixedResolver(Arc::new(certified))));
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(tcp).await {
                        let mut request = [0u8; 64];
                        let _ = tls.read(&mut request).await;
                        let _ = tls.write_all(b"!").await;
                        let _ = tls.shutdown().await;
                    }
                });
            }
        });
        addr
    }

    /// Handshake with the capture config; returns the outcome and what was captured.
    async fn probe(
        addr: SocketAddr,
        name: &str,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> (Result<(), String>, Option<Vec<Vec<u8>>>) {
        let capture = ChainCapture::new();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .expect("versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(CaptureVerifier::new(capture.clone())))
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let server_name = ServerName::try_from(name.to_string()).expect("name");
        let result = match connector.connect(server_name, tcp).await {
            Ok(mut tls) => {
                let mut b = [0u8; 1];
                match tls.write_all(b"GET / HTTP/1.0\r\n\r\n").await {
                    Ok(()) => tls
                        .read_exact(&mut b)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                }
            }
            Err(e) => Err(e.to_string()),
        };
        (result, capture.chain())
    }

    const BOTH: &[&rustls::SupportedProtocolVersion] =
        &[&rustls::version::TLS13, &rustls::version::TLS12];
    const TLS12: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];
    const TLS13: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];

    fn self_signed_ca_leaf(now: OffsetDateTime, key: Key) -> Issued {
        let mut s = Spec::leaf("registry.test", &["registry.test"], now);
        s.ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        s.key_usages = vec![
            rcgen::KeyUsagePurpose::DigitalSignature,
            rcgen::KeyUsagePurpose::KeyCertSign,
        ];
        s.self_signed(key)
    }

    /// webpki rejects a self-signed CA:TRUE leaf even when it is the trust anchor
    /// (`CaUsedAsEndEntity`); Go accepts it. The capture handshake completes and records
    /// exactly the served chain, over TLS 1.2 and 1.3, for ECDSA, Ed25519 and RSA keys.
    #[tokio::test]
    async fn captures_chains_webpki_rejects() {
        let now = OffsetDateTime::now_utc();
        type MakeKey = Box<dyn Fn() -> Key>;
        let keys: Vec<(&str, MakeKey)> = vec![
            ("ecdsa", Box::new(Key::ecdsa)),
            ("ed25519", Box::new(Key::ed25519)),
            ("rsa", Box::new(|| Key::rsa(2048))),
        ];
        for (label, make) in keys {
            let leaf = self_signed_ca_leaf(now, make());
            let chain = vec![leaf.der()];
            // The strict default verifier, trusting exactly this certificate, refuses it.
            let mut roots = rustls::RootCertStore::empty();
            roots.add(CertificateDer::from(leaf.der())).expect("anchor");
            let strict = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                Arc::new(rustls::crypto::ring::default_provider()),
            )
            .build()
            .expect("verifier");
            let strict_result = strict.verify_server_cert(
                &CertificateDer::from(leaf.der()),
                &[],
                &ServerName::try_from("registry.test").expect("name"),
                &[],
                UnixTime::now(),
            );
            assert!(strict_result.is_err(), "{label}: webpki accepted it");

            for versions in [TLS12, TLS13] {
                let addr = serve(chain.clone(), &leaf.key, versions).await;
                let (result, captured) = probe(addr, "registry.test", BOTH).await;
                assert_eq!(result, Ok(()), "{label} {versions:?}");
                assert_eq!(captured.as_ref(), Some(&chain), "{label} {versions:?}");
            }
        }
    }

    /// A served intermediate is captured in order; an IP host works without SNI.
    #[tokio::test]
    async fn captures_the_whole_chain_in_order() {
        let now = OffsetDateTime::now_utc();
        let root = Spec::ca("Root", now).self_signed(Key::ecdsa());
        let inter = Spec::ca("Inter", now).signed_by(Key::ecdsa(), &root);
        let leaf =
            Spec::leaf("registry.test", &["registry.test"], now).signed_by(Key::ecdsa(), &inter);
        let chain = vec![leaf.der(), inter.der(), root.der()];
        let addr = serve(chain.clone(), &leaf.key, BOTH).await;
        let (result, captured) = probe(addr, "127.0.0.1", BOTH).await;
        assert_eq!(result, Ok(()));
        assert_eq!(captured, Some(chain));
    }

    /// A server whose handshake signature is not made by the leaf's key must fail, over
    /// both versions; the chain is still captured for the report.
    #[tokio::test]
    async fn a_bad_handshake_signature_fails() {
        let now = OffsetDateTime::now_utc();
        let leaf = self_signed_ca_leaf(now, Key::ecdsa());
        let impostor = Key::ecdsa();
        for versions in [TLS12, TLS13] {
            let addr = serve(vec![leaf.der()], &impostor, versions).await;
            let (result, captured) = probe(addr, "registry.test", BOTH).await;
            let e = result.expect_err("handshake must fail");
            assert!(e.contains("BadSignature") || e.contains("signature"), "{e}");
            assert_eq!(captured, Some(vec![leaf.der()]));
        }
    }

    /// openssl s_server on a free loopback port, killed on drop.
    struct OpensslServer {
        child: std::process::Child,
        addr: SocketAddr,
    }

    impl OpensslServer {
        fn start(cert: &std::path::Path, key: &std::path::Path, version_flag: &str) -> Self {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let child = std::process::Command::new("openssl")
                .args(["s_server", "-quiet", "-www", "-accept"])
                .arg(addr.to_string())
                .arg("-cert")
                .arg(cert)
                .arg("-key")
                .arg(key)
                .args([version_flag, "-cipher", "DEFAULT:@SECLEVEL=0"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot run `openssl s_server` ({e}): install openssl (Debian package `openssl`)")
                });
            let server = OpensslServer { child, addr };
            let deadline = Instant::now() + Duration::from_secs(10);
            while std::net::TcpStream::connect(addr).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "openssl s_server did not listen on {addr}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            server
        }
    }

    impl Drop for OpensslServer {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// An RSA-1024 leaf (rejected by webpki and by ring's 2048-bit minimum for PSS): the
    /// handshake signature (PSS in TLS 1.3, PSS or PKCS#1 in TLS 1.2) checks through the
    /// big-integer fallback, the handshake completes, the chain is captured.
    #[tokio::test]
    async fn rsa_1024_server_handshakes() {
        let tmp = TempDir::new();
        let key = tmp.openssl_rsa_key_pem("small", 1024);
        let (cert, der) = tmp.openssl_cert(
            "small",
            &key,
            "/CN=registry.test",
            None,
            "sha256",
            30,
            1,
            &["subjectAltName=DNS:registry.test"],
        );
        for flag in ["-tls1_3", "-tls1_2"] {
            let server = OpensslServer::start(&cert, &key, flag);
            let (result, captured) = probe(server.addr, "registry.test", BOTH).await;
            assert_eq!(result, Ok(()), "{flag}");
            assert_eq!(captured, Some(vec![der.clone()]), "{flag}");
        }
    }

    #[test]
    fn handshake_signature_table() {
        use ring::signature::{EcdsaKeyPair, KeyPair as _};
        let now = OffsetDateTime::now_utc();
        let rng = ring::rand::SystemRandom::new();
        let alg = &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("key");
        let kp = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).expect("key");
        let _ = kp.public_key();
        let pair = rcgen::KeyPair::try_from(pkcs8.as_ref()).expect("rcgen key");
        let cert = Spec::leaf("r.test", &["r.test"], now).self_signed(Key { pair });
        let other = Spec::leaf("r.test", &["r.test"], now).self_signed(Key::ecdsa());
        let msg = b"transcript";
        let sig = kp.sign(&rng, msg).expect("sign");
        let sig = sig.as_ref();
        let p256 = SignatureScheme::ECDSA_NISTP256_SHA256;
        // (cert, message, scheme, tls13, ok)
        type Case<'a> = (&'a [u8], &'a [u8], SignatureScheme, bool, bool);
        let cases: &[Case] = &[
            (&cert.der(), msg, p256, true, true),
            (&cert.der(), msg, p256, false, true),
            (&cert.der(), b"other message", p256, true, false),
            (&other.der(), msg, p256, true, false),
            // wrong curve for the TLS 1.3 scheme; in TLS 1.2 the hash is all it names
            (
                &cert.der(),
                msg,
                SignatureScheme::ECDSA_NISTP384_SHA384,
                true,
                false,
            ),
            (
                &cert.der(),
                msg,
                SignatureScheme::RSA_PSS_SHA256,
                true,
                false,
            ),
            (
                &cert.der(),
                msg,
                SignatureScheme::RSA_PKCS1_SHA256,
                true,
                false,
            ),
            (
                &cert.der(),
                msg,
                SignatureScheme::ECDSA_SHA1_Legacy,
                false,
                false,
            ),
            (b"garbage", msg, p256, true, false),
            (b"", msg, p256, true, false),
        ];
        for (i, (c, m, scheme, tls13, ok)) in cases.iter().enumerate() {
            let got = verify_handshake_signature(m, c, *scheme, sig, *tls13);
            assert_eq!(got.is_ok(), *ok, "case {i}: {got:?}");
        }
        let _ = pki::DAY;
    }

    #[test]
    fn config_uses_the_capture_verifier() {
        let capture = ChainCapture::new();
        let config = client_config(&capture).expect("config");
        assert!(config.alpn_protocols.is_empty());
        assert_eq!(capture.chain(), None);
    }
}
