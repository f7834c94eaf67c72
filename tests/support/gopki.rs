//! Test PKI made at test time: rcgen for most certificates, the `openssl` command for what
//! rcgen cannot make (RSA keys, SHA-1 signatures, v1 certificates, RSA-1024). Shared by the
//! library's unit tests (included with `#[path]`) and the integration tests, so it uses only
//! rcgen, time, tempfile and std, never the crate itself.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use time::OffsetDateTime;

/// Run `openssl` with `args`; fails the test (with the package to install) when it is missing
/// or the command fails.
pub fn openssl(args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
    use std::io::Write;
    let mut cmd = Command::new("openssl");
    cmd.args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => panic!(
            "cannot run `openssl` ({e}): install openssl (Debian package `openssl`) to run these tests"
        ),
    };
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .expect("write to openssl");
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().expect("openssl output");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

pub fn pem_to_der(pem: &str) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .expect("a CERTIFICATE block")
        .to_vec()
}

pub fn der_to_pem(der: &[u8]) -> String {
    let pem = openssl(&["x509", "-inform", "DER", "-outform", "PEM"], Some(der));
    String::from_utf8(pem).expect("PEM")
}

/// A fresh RSA key from openssl, as PKCS#8 DER.
pub fn openssl_rsa_pkcs8(bits: u32) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject;
    let bits = format!("rsa_keygen_bits:{bits}");
    let pem = openssl(&["genpkey", "-algorithm", "RSA", "-pkeyopt", &bits], None);
    rustls_pki_types::PrivatePkcs8KeyDer::from_pem_slice(&pem)
        .expect("openssl genpkey writes PKCS#8")
        .secret_pkcs8_der()
        .to_vec()
}

/// The SubjectPublicKeyInfo (DER) of a PEM private key file.
pub fn openssl_spki_der(key_pem: &Path) -> Vec<u8> {
    openssl(
        &[
            "pkey",
            "-in",
            key_pem.to_str().expect("utf-8 path"),
            "-pubout",
            "-outform",
            "DER",
        ],
        None,
    )
}

/// A temp dir that holds key and certificate files for openssl.
pub struct TempDir {
    dir: tempfile::TempDir,
}

impl Default for TempDir {
    fn default() -> Self {
        Self::new()
    }
}

impl TempDir {
    pub fn new() -> Self {
        TempDir {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, data).expect("write temp file");
        p
    }

    /// `openssl genpkey` RSA key, PEM file.
    pub fn openssl_rsa_key_pem(&self, name: &str, bits: u32) -> PathBuf {
        let p = self.path(&format!("{name}.key"));
        let bits = format!("rsa_keygen_bits:{bits}");
        openssl(
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                &bits,
                "-out",
                p.to_str().expect("utf-8"),
            ],
            None,
        );
        p
    }

    /// `openssl genpkey` key of another kind: `EC:<curve>` (e.g. `EC:P-521`) or `DSA`.
    pub fn openssl_key_pem(&self, name: &str, kind: &str) -> PathBuf {
        let p = self.path(&format!("{name}.key"));
        let out = p.to_str().expect("utf-8");
        if kind == "DSA" {
            let params = self.path(&format!("{name}.params"));
            let params = params.to_str().expect("utf-8");
            openssl(
                &[
                    "genpkey",
                    "-genparam",
                    "-algorithm",
                    "DSA",
                    "-pkeyopt",
                    "dsa_paramgen_bits:1024",
                    "-out",
                    params,
                ],
                None,
            );
            openssl(&["genpkey", "-paramfile", params, "-out", out], None);
        } else {
            let curve = kind.trim_start_matches("EC:");
            let opt = format!("ec_paramgen_curve:{curve}");
            openssl(
                &["genpkey", "-algorithm", "EC", "-pkeyopt", &opt, "-out", out],
                None,
            );
        }
        p
    }

    /// Sign `msg` with the key file; `hash` like "SHA-256"; PSS uses salt = hash length.
    pub fn openssl_sign(&self, key: &Path, msg: &[u8], hash: &str, pss: bool) -> Vec<u8> {
        let md = format!("-{}", hash.to_ascii_lowercase().replace('-', ""));
        let mut args = vec!["dgst", md.as_str(), "-sign", key.to_str().expect("utf-8")];
        if pss {
            args.extend([
                "-sigopt",
                "rsa_padding_mode:pss",
                "-sigopt",
                "rsa_pss_saltlen:digest",
            ]);
        }
        openssl(&args, Some(msg))
    }

    /// An openssl certificate. `issuer` = (cert PEM file, key file) or `None` for
    /// self-signed. `ext` = lines of an OpenSSL extension section (empty = a v1 certificate).
    #[allow(clippy::too_many_arguments)]
    pub fn openssl_cert(
        &self,
        name: &str,
        key: &Path,
        subject: &str,
        issuer: Option<(&Path, &Path)>,
        digest: &str,
        days: u32,
        serial: impl std::fmt::Display,
        ext: &[&str],
    ) -> (PathBuf, Vec<u8>) {
        self.openssl_cert_with(name, key, subject, issuer, digest, days, serial, ext, &[])
    }

    /// `openssl_cert` with extra `openssl x509` arguments (e.g. `-sigopt` for PSS).
    #[allow(clippy::too_many_arguments)]
    pub fn openssl_cert_with(
        &self,
        name: &str,
        key: &Path,
        subject: &str,
        issuer: Option<(&Path, &Path)>,
        digest: &str,
        days: u32,
        serial: impl std::fmt::Display,
        ext: &[&str],
        extra: &[&str],
    ) -> (PathBuf, Vec<u8>) {
        let csr = self.path(&format!("{name}.csr"));
        let out = self.path(&format!("{name}.pem"));
        let key_s = key.to_str().expect("utf-8");
        openssl(
            &[
                "req",
                "-new",
                "-key",
                key_s,
                "-subj",
                subject,
                "-out",
                csr.to_str().expect("utf-8"),
            ],
            None,
        );
        let days = days.to_string();
        let serial = serial.to_string();
        let dg = format!("-{digest}");
        let mut args: Vec<String> = vec![
            "x509".into(),
            "-req".into(),
            "-in".into(),
            csr.to_str().expect("utf-8").into(),
            "-out".into(),
            out.to_str().expect("utf-8").into(),
            dg,
            "-days".into(),
            days,
            "-set_serial".into(),
            serial,
        ];
        match issuer {
            None => args.extend(["-signkey".into(), key_s.into()]),
            Some((ca, ca_key)) => args.extend([
                "-CA".into(),
                ca.to_str().expect("utf-8").into(),
                "-CAkey".into(),
                ca_key.to_str().expect("utf-8").into(),
            ]),
        }
        if !ext.is_empty() {
            let mut cnf = String::from("[v3]\n");
            for l in ext {
                cnf.push_str(l);
                cnf.push('\n');
            }
            let cnf_path = self.write(&format!("{name}.cnf"), cnf.as_bytes());
            args.extend([
                "-extfile".into(),
                cnf_path.to_str().expect("utf-8").into(),
                "-extensions".into(),
                "v3".into(),
            ]);
        }
        args.extend(extra.iter().map(|a| a.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        openssl(&args, None);
        let pem = std::fs::read_to_string(&out).expect("openssl certificate");
        (out, pem_to_der(&pem))
    }
}

/// A whole-second time, `secs` from `base`.
pub fn at(base: OffsetDateTime, secs: i64) -> OffsetDateTime {
    (base + time::Duration::seconds(secs))
        .replace_nanosecond(0)
        .expect("valid")
}

/// Go's `time.RFC3339` for a UTC time.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}

pub const DAY: i64 = 86_400;

/// An rcgen key pair with its PEM (for handing to openssl).
pub struct Key {
    pub pair: rcgen::KeyPair,
}

impl Key {
    pub fn ecdsa() -> Key {
        Key {
            pair: rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("P-256"),
        }
    }

    pub fn ed25519() -> Key {
        Key {
            pair: rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("Ed25519"),
        }
    }

    /// RSA-2048 (or more) from openssl; rcgen signs with it through ring.
    pub fn rsa(bits: u32) -> Key {
        let der = openssl_rsa_pkcs8(bits);
        let der = rustls_pki_types::PrivatePkcs8KeyDer::from(der);
        Key {
            pair: rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_RSA_SHA256)
                .expect("RSA key"),
        }
    }

    pub fn write_pem(&self, dir: &TempDir, name: &str) -> PathBuf {
        dir.write(&format!("{name}.key"), self.pair.serialize_pem().as_bytes())
    }
}

/// An issued certificate with its key, usable as an rcgen issuer.
pub struct Issued {
    pub cert: rcgen::Certificate,
    pub key: Key,
}

impl Issued {
    pub fn der(&self) -> Vec<u8> {
        self.cert.der().to_vec()
    }

    /// Write cert and key for openssl; returns (cert file, key file).
    pub fn write(&self, dir: &TempDir, name: &str) -> (PathBuf, PathBuf) {
        let c = dir.write(&format!("{name}.crt"), self.cert.pem().as_bytes());
        (c, self.key.write_pem(dir, name))
    }
}

/// Certificate parameters with the fields the tests vary.
#[derive(Clone)]
pub struct Spec {
    pub cn: Option<String>,
    pub org: Option<String>,
    pub sans: Vec<rcgen::SanType>,
    pub ca: rcgen::IsCa,
    pub key_usages: Vec<rcgen::KeyUsagePurpose>,
    pub ekus: Vec<rcgen::ExtendedKeyUsagePurpose>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub serial: u64,
    pub custom: Vec<rcgen::CustomExtension>,
    pub name_constraints: Option<rcgen::NameConstraints>,
}

impl Spec {
    /// A CA: CA:TRUE, keyCertSign + cRLSign, valid from a day before `now` for 30 days.
    pub fn ca(cn: &str, now: OffsetDateTime) -> Spec {
        Spec {
            cn: Some(cn.into()),
            org: None,
            sans: vec![],
            ca: rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained),
            key_usages: vec![
                rcgen::KeyUsagePurpose::KeyCertSign,
                rcgen::KeyUsagePurpose::CrlSign,
            ],
            ekus: vec![],
            not_before: at(now, -DAY),
            not_after: at(now, 30 * DAY),
            serial: 1,
            custom: vec![],
            name_constraints: None,
        }
    }

    /// A server leaf for `dns` names, serverAuth.
    pub fn leaf(cn: &str, dns: &[&str], now: OffsetDateTime) -> Spec {
        Spec {
            cn: Some(cn.into()),
            org: None,
            sans: dns
                .iter()
                .map(|d| rcgen::SanType::DnsName((*d).try_into().expect("ia5")))
                .collect(),
            ca: rcgen::IsCa::ExplicitNoCa,
            key_usages: vec![rcgen::KeyUsagePurpose::DigitalSignature],
            ekus: vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth],
            not_before: at(now, -DAY),
            not_after: at(now, 30 * DAY),
            serial: 100,
            custom: vec![],
            name_constraints: None,
        }
    }

    fn params(&self) -> rcgen::CertificateParams {
        let mut p = rcgen::CertificateParams::default();
        let mut dn = rcgen::DistinguishedName::new();
        if let Some(o) = &self.org {
            dn.push(rcgen::DnType::OrganizationName, o.as_str());
        }
        if let Some(cn) = &self.cn {
            dn.push(rcgen::DnType::CommonName, cn.as_str());
        }
        p.distinguished_name = dn;
        p.subject_alt_names = self.sans.clone();
        p.is_ca = self.ca.clone();
        p.key_usages = self.key_usages.clone();
        p.extended_key_usages = self.ekus.clone();
        p.not_before = self.not_before;
        p.not_after = self.not_after;
        p.serial_number = Some(rcgen::SerialNumber::from(self.serial));
        p.custom_extensions = self.custom.clone();
        p.name_constraints = self.name_constraints.clone();
        p.use_authority_key_identifier_extension = true;
        p
    }

    pub fn self_signed(&self, key: Key) -> Issued {
        let cert = self.params().self_signed(&key.pair).expect("self-signed");
        Issued { cert, key }
    }

    pub fn signed_by(&self, key: Key, issuer: &Issued) -> Issued {
        let cert = self
            .params()
            .signed_by(&key.pair, &issuer.cert, &issuer.key.pair)
            .expect("signed");
        Issued { cert, key }
    }
}

/// A custom extension, critical or not.
pub fn ext(oid: &[u64], content: Vec<u8>, critical: bool) -> rcgen::CustomExtension {
    let mut e = rcgen::CustomExtension::from_oid_content(oid, content);
    e.set_criticality(critical);
    e
}
