//! TLS to PostgreSQL: the `sslmode` of the `--db` URL (libpq's values, as far as
//! tokio-postgres can carry them) and `--db-ca-file`, turned into a rustls client config
//! (ring provider) for `tokio-postgres-rustls`. It owns which server certificates each mode
//! accepts; it does not open connections (the pool does) or read the password.
//!
//! libpq, "SSL Support", table "SSL Mode Descriptions" (PostgreSQL 15 docs, libpq-ssl.html):
//! `disable` never encrypts; `prefer` (the default) and `require` encrypt without
//! authenticating the server, unless a root certificate file is given, and then the chain
//! is verified as with `verify-ca`; `verify-ca` verifies the chain to a trusted CA;
//! `verify-full` also verifies that the certificate names the host dialed. `allow` (clear
//! first, TLS on refusal) has no tokio-postgres equivalent and is refused.
//! tokio-postgres itself knows only disable, prefer and require (`config::SslMode`), so
//! the verifying modes are taken out of the URL here and passed to it as `require`, with
//! a verifier that does what they promise.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, RootCertStore, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `sslmode=` as libpq spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl Mode {
    pub fn parse(s: &str) -> Result<Mode, String> {
        Ok(match s {
            "disable" => Mode::Disable,
            "prefer" => Mode::Prefer,
            "require" => Mode::Require,
            "verify-ca" => Mode::VerifyCa,
            "verify-full" => Mode::VerifyFull,
            "allow" => {
                return Err("--db: sslmode=allow (clear text first, TLS only when the server insists) is not supported by tokio-postgres; use prefer, require, verify-ca or verify-full (README \"PostgreSQL\")".into())
            }
            other => {
                return Err(format!(
                    "--db: sslmode={other:?}: expected disable, prefer, require, verify-ca or verify-full"
                ))
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Disable => "disable",
            Mode::Prefer => "prefer",
            Mode::Require => "require",
            Mode::VerifyCa => "verify-ca",
            Mode::VerifyFull => "verify-full",
        }
    }

    /// What tokio-postgres is told: whether to ask for TLS and whether to insist.
    pub fn wire(self) -> tokio_postgres::config::SslMode {
        use tokio_postgres::config::SslMode;
        match self {
            Mode::Disable => SslMode::Disable,
            Mode::Prefer => SslMode::Prefer,
            Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
        }
    }
}

/// What the server's certificate must pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Encrypted, the server not authenticated (libpq's prefer/require without a CA).
    None,
    /// The chain to a trusted CA; any name.
    Chain,
    /// The chain, and the host of the URL among the certificate's names (DNS or IP SAN).
    ChainAndName,
}

/// The TLS settings of a target: mode, where the trusted CAs come from, what is checked.
#[derive(Debug, Clone)]
pub struct Settings {
    pub mode: Mode,
    /// `--db-ca-file`; `None`: the system bundle (for the verifying modes).
    pub ca_file: Option<PathBuf>,
}

impl Settings {
    pub fn check(&self) -> Check {
        match (self.mode, &self.ca_file) {
            (Mode::VerifyFull, _) => Check::ChainAndName,
            (Mode::VerifyCa, _) => Check::Chain,
            // libpq: a root certificate file makes prefer/require verify the chain.
            (Mode::Prefer | Mode::Require, Some(_)) => Check::Chain,
            (Mode::Prefer | Mode::Require | Mode::Disable, None) => Check::None,
            (Mode::Disable, Some(_)) => Check::None,
        }
    }

    /// The rustls client config (ring provider, TLS 1.2 and 1.3, no client certificate).
    /// Errors name the CA file and what is wrong with it.
    pub fn client_config(&self) -> Result<rustls::ClientConfig, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let check = self.check();
        let verifier: Arc<dyn ServerCertVerifier> = match check {
            Check::None => Arc::new(Unauthenticated {
                provider: provider.clone(),
            }),
            Check::Chain | Check::ChainAndName => {
                let roots = Arc::new(self.roots()?);
                let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                    .build()
                    .map_err(|e| format!("--db: building the certificate verifier: {e}"))?;
                if check == Check::Chain {
                    Arc::new(AnyName { webpki })
                } else {
                    webpki
                }
            }
        };
        Ok(rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("--db: TLS versions: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth())
    }

    fn roots(&self) -> Result<RootCertStore, String> {
        let (name, pem) = match &self.ca_file {
            Some(p) => (
                format!("--db-ca-file {}", p.display()),
                read_ca(p).map_err(|e| format!("--db-ca-file {}: {e}", p.display()))?,
            ),
            None => {
                let (p, pem) = crate::fleetapi::system_bundle().ok_or_else(|| {
                    format!(
                        "--db: sslmode={} verifies the server with the system CA bundle, and none was found (tried $SSL_CERT_FILE, {}); give the CA that signs the database's certificate with --db-ca-file",
                        self.mode.as_str(),
                        crate::fleetapi::SYSTEM_BUNDLES.join(", ")
                    )
                })?;
                (format!("the system CA bundle {}", p.display()), pem)
            }
        };
        use rustls_pki_types::pem::PemObject as _;
        let mut roots = RootCertStore::empty();
        let ders: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("{name}: not a PEM certificate bundle: {e}"))?;
        if ders.is_empty() {
            return Err(format!("{name}: no PEM certificate in it"));
        }
        let (added, _ignored) = roots.add_parsable_certificates(ders);
        if added == 0 {
            return Err(format!(
                "{name}: none of its certificates can be used as a trust anchor"
            ));
        }
        Ok(roots)
    }
}

fn read_ca(path: &Path) -> Result<Vec<u8>, String> {
    use crate::ca::ReadCappedError;
    crate::ca::read_capped(path, crate::fleetapi::MAX_CA_FILE).map_err(|e| match e {
        ReadCappedError::TooLarge { .. } => {
            format!("larger than {} bytes", crate::fleetapi::MAX_CA_FILE)
        }
        other => other.to_string(),
    })
}

/// verify-ca: webpki's chain verification, the name not required (webpki checks the name
/// last, after the chain: rustls 0.23 `WebPkiServerVerifier::verify_server_cert`, so a
/// name error means the chain passed).
#[derive(Debug)]
struct AnyName {
    webpki: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match self
            .webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// prefer/require without a CA (libpq's meaning): any certificate; the handshake is still
/// signed by the key of the certificate presented. Encrypts, does not authenticate.
#[derive(Debug)]
struct Unauthenticated {
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Unauthenticated {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Take libpq's TLS parameters out of the URL's query (tokio-postgres refuses
/// `verify-ca`/`verify-full` and knows no `sslrootcert`): the URL without them, and the mode
/// (`prefer` when absent, as libpq). Errors never repeat the URL (it may hold a password).
pub fn split_url(url: &str) -> Result<(String, Mode), String> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), Mode::Prefer));
    };
    let mut mode = Mode::Prefer;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v);
        match k {
            "sslmode" => mode = Mode::parse(&v)?,
            "sslrootcert" => {
                return Err("--db: sslrootcert= in the URL is not read; give the CA file as --db-ca-file (README \"PostgreSQL\")".into())
            }
            "sslcert" | "sslkey" | "sslpassword" | "sslcrl" | "sslcrldir" | "sslsni" => {
                return Err(format!(
                    "--db: {k}= is not supported by this build (no client certificates or CRLs for PostgreSQL); authenticate with the password (README \"PostgreSQL\")"
                ))
            }
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, mode))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (b[i], b.get(i + 1).copied(), b.get(i + 2).copied()) {
            (b'%', Some(h), Some(l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push(u8::try_from(hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)).unwrap_or(0));
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_up_their_tls_parameters() {
        for (url, want_url, want) in [
            ("postgres://u@h/d", "postgres://u@h/d", Mode::Prefer),
            (
                "postgres://u@h/d?sslmode=verify-full",
                "postgres://u@h/d",
                Mode::VerifyFull,
            ),
            (
                "postgres://u@h/d?connect_timeout=3&sslmode=verify%2Dca&application_name=x",
                "postgres://u@h/d?connect_timeout=3&application_name=x",
                Mode::VerifyCa,
            ),
            (
                "postgres://u@h/d?sslmode=disable",
                "postgres://u@h/d",
                Mode::Disable,
            ),
            (
                "postgres://u@h/d?sslmode=require",
                "postgres://u@h/d",
                Mode::Require,
            ),
        ] {
            assert_eq!(
                split_url(url).unwrap(),
                (want_url.to_string(), want),
                "{url}"
            );
        }
        for (url, want) in [
            ("postgres://u:s3cr@h/d?sslmode=allow", "not supported"),
            ("postgres://u:s3cr@h/d?sslmode=verify", "expected disable"),
            ("postgres://u:s3cr@h/d?sslrootcert=/ca.pem", "--db-ca-file"),
            (
                "postgres://u:s3cr@h/d?sslcert=/c.pem",
                "no client certificates",
            ),
        ] {
            let e = split_url(url).unwrap_err();
            assert!(e.contains(want), "{url}: {e}");
            assert!(!e.contains("s3cr"), "{url}: {e}");
        }
    }

    #[test]
    fn each_mode_checks_what_libpq_says() {
        let ca = Some(PathBuf::from("/ca.pem"));
        for (mode, ca_file, want) in [
            (Mode::Prefer, None, Check::None),
            (Mode::Require, None, Check::None),
            (Mode::Require, ca.clone(), Check::Chain),
            (Mode::Prefer, ca.clone(), Check::Chain),
            (Mode::VerifyCa, None, Check::Chain),
            (Mode::VerifyCa, ca.clone(), Check::Chain),
            (Mode::VerifyFull, None, Check::ChainAndName),
            (Mode::VerifyFull, ca.clone(), Check::ChainAndName),
        ] {
            assert_eq!(Settings { mode, ca_file }.check(), want, "{mode:?}");
        }
    }
}
