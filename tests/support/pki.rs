//! Test PKI generated at test time, written as PEM files into a temp dir: root CAs,
//! intermediates, server leaves (DNS and IP SANs, CN-only, self-signed, expired, not yet
//! valid). rcgen signs everything it can; the `openssl` CLI makes RSA keys (ring cannot
//! generate them) and SHA-1 signatures (rcgen cannot produce them). It does not judge
//! certificates: the real clients and regtrust do.
//!
//! ```ignore
//! let pki = Pki::new();
//! let root = pki.root("root-a");
//! let int = pki.cert("int-a").signed_by(&root).ca();
//! let leaf = pki.cert("registry").signed_by(&int).ip(LOOPBACK_V4).leaf();
//! // leaf.cert_path: the leaf alone; leaf.chain_path: leaf + intermediate; leaf.key_path.
//! ```

use super::{require_tool, run_ok};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType, SubjectPublicKeyInfo,
};
use rustls_pki_types::pem::PemObject;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use tempfile::TempDir;
use time::{Duration, OffsetDateTime};

/// The key a certificate is issued for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// ECDSA P-256 from rcgen (the default: fast).
    EcdsaP256,
    /// RSA of this many bits from `openssl genpkey`. A key that signs (a CA, a self-signed
    /// leaf) needs at least 2048 bits: ring refuses smaller RSA keys.
    Rsa(u32),
}

/// A temp dir holding the PEM files of one test's PKI. Keep it alive as long as the files
/// are used (a registry reads its certificate at start).
pub struct Pki {
    dir: TempDir,
}

/// A CA that can sign: a root or an intermediate.
pub struct Ca {
    pub name: String,
    pub cert_pem: String,
    /// The CA certificate alone (what a node installs as `ca.crt`).
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    cert: rcgen::Certificate,
    key: KeyPair,
    /// This certificate and the intermediates above it, root excluded (what a server
    /// appends after its leaf). Empty for a root.
    chain_pem: String,
}

/// A server certificate and its key.
pub struct Leaf {
    pub name: String,
    pub cert_pem: String,
    /// The leaf alone (serving it without intermediates: the "missing intermediate" case).
    pub cert_path: PathBuf,
    /// The leaf followed by its issuer's intermediates (what a server should present).
    pub chain_path: PathBuf,
    pub key_path: PathBuf,
}

/// What to issue; finish with [`CertSpec::ca`] or [`CertSpec::leaf`].
pub struct CertSpec<'a> {
    pki: &'a Pki,
    name: String,
    issuer: Option<&'a Ca>,
    sans: Vec<SanType>,
    common_name: Option<String>,
    validity: Option<(OffsetDateTime, OffsetDateTime)>,
    key: KeyKind,
    is_ca: bool,
    sha1: bool,
}

impl Pki {
    pub fn new() -> Pki {
        Pki {
            dir: tempfile::Builder::new()
                .prefix("regtrust-pki-")
                .tempdir()
                .expect("create a temp dir for the test PKI"),
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Start a certificate named `name` (its file stem and default Common Name).
    pub fn cert(&self, name: &str) -> CertSpec<'_> {
        assert!(
            !name.is_empty() && !name.contains(['/', '\0']) && name != "." && name != "..",
            "PKI names are file stems; got {name:?}"
        );
        CertSpec {
            pki: self,
            name: name.to_string(),
            issuer: None,
            sans: Vec::new(),
            common_name: None,
            validity: None,
            key: KeyKind::EcdsaP256,
            is_ca: false,
            sha1: false,
        }
    }

    /// A root CA with default validity (yesterday to ten years on).
    pub fn root(&self, name: &str) -> Ca {
        self.cert(name).ca()
    }

    /// A server leaf for `sans` (IP literals become IP SANs, the rest DNS SANs), signed by
    /// `issuer`.
    pub fn server(&self, issuer: &Ca, name: &str, sans: &[&str]) -> Leaf {
        let mut spec = self.cert(name).signed_by(issuer);
        for san in sans {
            spec = spec.san(san);
        }
        spec.leaf()
    }

    /// Write an arbitrary file into the PKI dir (odd CA inputs: a BOM, a key, garbage).
    pub fn write(&self, file: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.dir().join(file);
        std::fs::write(&path, contents)
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        path
    }

    fn create(&self, file: &str, contents: &str) -> PathBuf {
        use std::io::Write;
        let path = self.dir().join(file);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("creating {} (names must be unique): {e}", path.display()));
        f.write_all(contents.as_bytes())
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        path
    }
}

impl Default for Pki {
    fn default() -> Self {
        Pki::new()
    }
}

impl Ca {
    /// Copy the CA certificate to `dir/file`, creating `dir` (a `certs.d` host dir, a
    /// skopeo cert dir, a CA input for regtrust).
    pub fn write_to(&self, dir: &Path, file: &str) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        let path = dir.join(file);
        std::fs::write(&path, &self.cert_pem)
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        path
    }

    pub fn der(&self) -> &[u8] {
        self.cert.der()
    }

    /// Lower-case hex SHA-256 of the DER certificate (the fingerprint reports show).
    pub fn sha256_hex(&self) -> String {
        sha256_hex(self.der())
    }
}

impl Leaf {
    pub fn sha256_hex(&self) -> String {
        let der = rustls_pki_types::CertificateDer::from_pem_slice(self.cert_pem.as_bytes())
            .expect("a leaf this harness wrote parses");
        sha256_hex(&der)
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl<'a> CertSpec<'a> {
    /// Sign with `issuer` (otherwise the certificate is self-signed).
    pub fn signed_by(mut self, issuer: &'a Ca) -> Self {
        self.issuer = Some(issuer);
        self
    }

    /// A DNS SAN.
    pub fn dns(mut self, name: &str) -> Self {
        let name = name
            .to_string()
            .try_into()
            .unwrap_or_else(|e| panic!("DNS SAN {name:?}: {e}"));
        self.sans.push(SanType::DnsName(name));
        self
    }

    /// An IP SAN.
    pub fn ip(mut self, ip: IpAddr) -> Self {
        self.sans.push(SanType::IpAddress(ip));
        self
    }

    /// An IP SAN for an IP literal, a DNS SAN otherwise.
    pub fn san(self, san: &str) -> Self {
        match san.parse::<IpAddr>() {
            Ok(ip) => self.ip(ip),
            Err(_) => self.dns(san),
        }
    }

    /// The subject Common Name (default: the name given to [`Pki::cert`]). With no SANs this
    /// makes the CN-only certificate Go refuses ("relies on legacy Common Name field").
    pub fn cn(mut self, cn: &str) -> Self {
        self.common_name = Some(cn.to_string());
        self
    }

    pub fn validity(mut self, not_before: OffsetDateTime, not_after: OffsetDateTime) -> Self {
        self.validity = Some((not_before, not_after));
        self
    }

    /// Valid from 30 days ago until yesterday.
    pub fn expired(self) -> Self {
        let now = OffsetDateTime::now_utc();
        self.validity(now - Duration::days(30), now - Duration::days(1))
    }

    /// Valid from tomorrow for 30 days.
    pub fn not_yet_valid(self) -> Self {
        let now = OffsetDateTime::now_utc();
        self.validity(now + Duration::days(1), now + Duration::days(30))
    }

    pub fn key(mut self, key: KeyKind) -> Self {
        self.key = key;
        self
    }

    /// For a leaf: mark it `CA:TRUE` (a self-signed server certificate that is also its own
    /// CA, as some appliances make).
    pub fn ca_flag(mut self, is_ca: bool) -> Self {
        self.is_ca = is_ca;
        self
    }

    /// Sign with SHA-1 (through the openssl CLI; leaf only, default validity).
    pub fn sha1(mut self) -> Self {
        self.sha1 = true;
        self
    }

    /// Issue a CA (a root unless [`CertSpec::signed_by`] was called).
    pub fn ca(self) -> Ca {
        assert!(
            !self.sha1,
            "{}: SHA-1 is supported for leaves only",
            self.name
        );
        let now = OffsetDateTime::now_utc();
        let (nb, na) = self
            .validity
            .unwrap_or((now - Duration::days(1), now + Duration::days(3650)));
        let mut params = self.params(nb, na);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = self.signing_key();
        let cert = match self.issuer {
            Some(issuer) => params.signed_by(&key, &issuer.cert, &issuer.key),
            None => params.self_signed(&key),
        }
        .unwrap_or_else(|e| panic!("issuing CA {}: {e}", self.name));
        let cert_pem = cert.pem();
        let chain_pem = match self.issuer {
            Some(issuer) => format!("{cert_pem}{}", issuer.chain_pem),
            None => String::new(),
        };
        let cert_path = self.pki.create(&format!("{}.crt", self.name), &cert_pem);
        let key_path = self
            .pki
            .create(&format!("{}.key", self.name), &key.serialize_pem());
        Ca {
            name: self.name,
            cert_pem,
            cert_path,
            key_path,
            cert,
            key,
            chain_pem,
        }
    }

    /// Issue a server leaf (self-signed unless [`CertSpec::signed_by`] was called).
    pub fn leaf(self) -> Leaf {
        if self.sha1 {
            return self.openssl_sha1_leaf();
        }
        let now = OffsetDateTime::now_utc();
        let (nb, na) = self
            .validity
            .unwrap_or((now - Duration::hours(1), now + Duration::days(90)));
        let mut params = self.params(nb, na);
        params.is_ca = if self.is_ca {
            IsCa::Ca(BasicConstraints::Unconstrained)
        } else {
            IsCa::ExplicitNoCa
        };
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        if self.is_ca {
            params.key_usages.push(KeyUsagePurpose::KeyCertSign);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let (key_pem, cert) = match self.issuer {
            Some(issuer) => {
                let (key_pem, public) = self.public_key();
                (
                    key_pem,
                    params.signed_by(&public, &issuer.cert, &issuer.key),
                )
            }
            None => {
                let key = self.signing_key();
                (key.serialize_pem(), params.self_signed(&key))
            }
        };
        let cert = cert.unwrap_or_else(|e| panic!("issuing leaf {}: {e}", self.name));
        let chain = self.issuer.map(|i| i.chain_pem.as_str()).unwrap_or("");
        self.finish_leaf(cert.pem(), chain, &key_pem)
    }

    fn finish_leaf(&self, cert_pem: String, chain: &str, key_pem: &str) -> Leaf {
        let cert_path = self.pki.create(&format!("{}.crt", self.name), &cert_pem);
        let chain_path = self.pki.create(
            &format!("{}.chain.crt", self.name),
            &format!("{cert_pem}{chain}"),
        );
        let key_path = self.pki.create(&format!("{}.key", self.name), key_pem);
        Leaf {
            name: self.name.clone(),
            cert_pem,
            cert_path,
            chain_path,
            key_path,
        }
    }

    fn params(&self, not_before: OffsetDateTime, not_after: OffsetDateTime) -> CertificateParams {
        let mut params = CertificateParams::default();
        params.not_before = not_before;
        params.not_after = not_after;
        params.subject_alt_names = self.sans.clone();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(
            DnType::CommonName,
            self.common_name
                .clone()
                .unwrap_or_else(|| self.name.clone()),
        );
        params
            .distinguished_name
            .push(DnType::OrganizationName, "regtrust tests");
        params.use_authority_key_identifier_extension = self.issuer.is_some();
        params
    }

    /// A key that rcgen can sign with.
    fn signing_key(&self) -> KeyPair {
        match self.key {
            KeyKind::EcdsaP256 => KeyPair::generate().expect("generate an ECDSA P-256 key"),
            KeyKind::Rsa(bits) => {
                assert!(
                    bits >= 2048,
                    "{}: ring cannot sign with an RSA key of {bits} bits; sign with another key",
                    self.name
                );
                KeyPair::from_pem(&openssl_rsa_key(bits))
                    .unwrap_or_else(|e| panic!("loading the RSA key for {}: {e}", self.name))
            }
        }
    }

    /// The private key PEM to serve and the public key to certify.
    fn public_key(&self) -> (String, SubjectPublicKeyInfo) {
        match self.key {
            KeyKind::EcdsaP256 => {
                let k = KeyPair::generate().expect("generate an ECDSA P-256 key");
                let spki = SubjectPublicKeyInfo::from_der(&k.public_key_der())
                    .expect("rcgen reads its own public key");
                (k.serialize_pem(), spki)
            }
            KeyKind::Rsa(bits) => {
                let key_pem = openssl_rsa_key(bits);
                let spki = openssl_public_key(&key_pem);
                let spki = SubjectPublicKeyInfo::from_pem(&spki).unwrap_or_else(|e| {
                    panic!("reading the RSA public key for {}: {e}", self.name)
                });
                (key_pem, spki)
            }
        }
    }

    /// rcgen cannot sign with SHA-1; openssl can (OpenSSL 3 still signs SHA-1 on request).
    fn openssl_sha1_leaf(self) -> Leaf {
        let issuer = self
            .issuer
            .unwrap_or_else(|| panic!("{}: a SHA-1 leaf needs an issuer", self.name));
        assert!(
            self.validity.is_none() && !self.is_ca,
            "{}: a SHA-1 leaf takes the default validity and no CA flag",
            self.name
        );
        let openssl = require_tool("openssl", "openssl");
        let work = tempfile::tempdir().expect("temp dir for openssl");
        let key_pem = match self.key {
            KeyKind::Rsa(bits) => openssl_rsa_key(bits),
            KeyKind::EcdsaP256 => {
                let mut c = Command::new(&openssl);
                c.args([
                    "genpkey",
                    "-algorithm",
                    "EC",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                ]);
                String::from_utf8(run_ok(c, "openssl genpkey EC").stdout).expect("PEM is ASCII")
            }
        };
        let key = work.path().join("leaf.key");
        std::fs::write(&key, &key_pem).expect("write leaf key");
        let sans: Vec<String> = self
            .sans
            .iter()
            .map(|s| match s {
                SanType::DnsName(n) => format!("DNS:{}", n.as_str()),
                SanType::IpAddress(ip) => format!("IP:{ip}"),
                other => panic!("{}: unsupported SAN {other:?}", self.name),
            })
            .collect();
        let mut ext = String::from(
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
        );
        if !sans.is_empty() {
            ext.push_str(&format!("subjectAltName={}\n", sans.join(",")));
        }
        let ext_path = work.path().join("ext.cnf");
        std::fs::write(&ext_path, ext).expect("write openssl extension file");
        let cn = self
            .common_name
            .clone()
            .unwrap_or_else(|| self.name.clone());
        let csr = work.path().join("leaf.csr");
        let mut c = Command::new(&openssl);
        c.args(["req", "-new", "-key"])
            .arg(&key)
            .args(["-subj", &format!("/O=regtrust tests/CN={cn}"), "-out"])
            .arg(&csr);
        run_ok(c, "openssl req");
        let serial = format!("0x{}", &sha256_hex(key_pem.as_bytes())[..16]);
        let mut c = Command::new(&openssl);
        c.args([
            "x509",
            "-req",
            "-sha1",
            "-days",
            "30",
            "-set_serial",
            &serial,
            "-in",
        ])
        .arg(&csr)
        .arg("-CA")
        .arg(&issuer.cert_path)
        .arg("-CAkey")
        .arg(&issuer.key_path)
        .arg("-extfile")
        .arg(&ext_path);
        let cert_pem =
            String::from_utf8(run_ok(c, "openssl x509 -req -sha1").stdout).expect("PEM is ASCII");
        self.finish_leaf(cert_pem, &issuer.chain_pem, &key_pem)
    }
}

/// A PKCS#8 RSA private key from `openssl genpkey`.
fn openssl_rsa_key(bits: u32) -> String {
    let mut c = Command::new(require_tool("openssl", "openssl"));
    c.args([
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        &format!("rsa_keygen_bits:{bits}"),
    ]);
    String::from_utf8(run_ok(c, "openssl genpkey RSA").stdout).expect("PEM is ASCII")
}

fn openssl_public_key(key_pem: &str) -> String {
    let work = tempfile::tempdir().expect("temp dir for openssl");
    let key = work.path().join("k.pem");
    std::fs::write(&key, key_pem).expect("write key");
    let mut c = Command::new(require_tool("openssl", "openssl"));
    c.args(["pkey", "-pubout", "-in"]).arg(&key);
    String::from_utf8(run_ok(c, "openssl pkey -pubout").stdout).expect("PEM is ASCII")
}
