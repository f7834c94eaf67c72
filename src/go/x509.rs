//! Go's certificate parser (`crypto/x509.ParseCertificate`, Go 1.19 `parser.go`, with the
//! release gates of later Go), reading DER with `der` (cryptobyte's rules), mirrored in Rust so
//! that regtrust accepts and rejects exactly the certificates the container runtimes accept
//! and reject, with Go's error text. It owns the certificate facts Go's verifier uses (names,
//! keys, extensions, Go's rendering of IPs, serials and quoted strings). It verifies nothing
//! (`verify` and `signature` do) and does no I/O.
//!
//! Where this mirror is knowingly incomplete: an ECDSA point is checked for length, prefix and
//! range but its on-curve check is done with plain big-integer arithmetic (same result as
//! Go's, slower).

pub use super::der::Oid;
use super::der::{tag, Der};
use super::version::{Answers, Asking, GoDebug, GoVersion, Rules};
use std::fmt::Write as _;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};
use x509_parser::num_bigint::BigUint;

// ---------------------------------------------------------------------------------------
// The certificate facts.

/// Go's `x509.SignatureAlgorithm` (the names are Go's `String()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureAlgorithm {
    Unknown,
    Md2Rsa,
    Md5Rsa,
    Sha1Rsa,
    Sha256Rsa,
    Sha384Rsa,
    Sha512Rsa,
    DsaSha1,
    DsaSha256,
    EcdsaSha1,
    EcdsaSha256,
    EcdsaSha384,
    EcdsaSha512,
    Sha256RsaPss,
    Sha384RsaPss,
    Sha512RsaPss,
    Ed25519,
}

/// The hash of a signature algorithm (`None` = Go's `crypto.Hash(0)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoHash {
    Md5,
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

/// Go's `x509.PublicKeyAlgorithm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicKeyAlgorithm {
    Unknown,
    Rsa,
    Dsa,
    Ecdsa,
    Ed25519,
}

impl PublicKeyAlgorithm {
    /// Go's `String()` (the unknown algorithm prints as its number).
    pub fn go_name(self) -> &'static str {
        match self {
            PublicKeyAlgorithm::Unknown => "0",
            PublicKeyAlgorithm::Rsa => "RSA",
            PublicKeyAlgorithm::Dsa => "DSA",
            PublicKeyAlgorithm::Ecdsa => "ECDSA",
            PublicKeyAlgorithm::Ed25519 => "Ed25519",
        }
    }
}

impl SignatureAlgorithm {
    /// Go's `String()`.
    pub fn go_name(self) -> &'static str {
        use SignatureAlgorithm::*;
        match self {
            Unknown => "0",
            Md2Rsa => "MD2-RSA",
            Md5Rsa => "MD5-RSA",
            Sha1Rsa => "SHA1-RSA",
            Sha256Rsa => "SHA256-RSA",
            Sha384Rsa => "SHA384-RSA",
            Sha512Rsa => "SHA512-RSA",
            DsaSha1 => "DSA-SHA1",
            DsaSha256 => "DSA-SHA256",
            EcdsaSha1 => "ECDSA-SHA1",
            EcdsaSha256 => "ECDSA-SHA256",
            EcdsaSha384 => "ECDSA-SHA384",
            EcdsaSha512 => "ECDSA-SHA512",
            Sha256RsaPss => "SHA256-RSAPSS",
            Sha384RsaPss => "SHA384-RSAPSS",
            Sha512RsaPss => "SHA512-RSAPSS",
            Ed25519 => "Ed25519",
        }
    }

    /// `signatureAlgorithmDetails`: the hash and the public key algorithm.
    pub fn details(self) -> (Option<GoHash>, PublicKeyAlgorithm) {
        use PublicKeyAlgorithm as P;
        use SignatureAlgorithm::*;
        match self {
            Unknown => (None, P::Unknown),
            Md2Rsa => (None, P::Rsa),
            Md5Rsa => (Some(GoHash::Md5), P::Rsa),
            Sha1Rsa => (Some(GoHash::Sha1), P::Rsa),
            Sha256Rsa | Sha256RsaPss => (Some(GoHash::Sha256), P::Rsa),
            Sha384Rsa | Sha384RsaPss => (Some(GoHash::Sha384), P::Rsa),
            Sha512Rsa | Sha512RsaPss => (Some(GoHash::Sha512), P::Rsa),
            DsaSha1 => (Some(GoHash::Sha1), P::Dsa),
            DsaSha256 => (Some(GoHash::Sha256), P::Dsa),
            EcdsaSha1 => (Some(GoHash::Sha1), P::Ecdsa),
            EcdsaSha256 => (Some(GoHash::Sha256), P::Ecdsa),
            EcdsaSha384 => (Some(GoHash::Sha384), P::Ecdsa),
            EcdsaSha512 => (Some(GoHash::Sha512), P::Ecdsa),
            Ed25519 => (None, P::Ed25519),
        }
    }

    pub fn is_rsa_pss(self) -> bool {
        matches!(
            self,
            SignatureAlgorithm::Sha256RsaPss
                | SignatureAlgorithm::Sha384RsaPss
                | SignatureAlgorithm::Sha512RsaPss
        )
    }
}

/// The named curves Go parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    P224,
    P256,
    P384,
    P521,
}

impl Curve {
    fn bits(self) -> usize {
        match self {
            Curve::P224 => 224,
            Curve::P256 => 256,
            Curve::P384 => 384,
            Curve::P521 => 521,
        }
    }

    /// (p, b) of y² = x³ − 3x + b over GF(p), from FIPS 186-4 D.1.2.
    fn params(self) -> (&'static str, &'static str) {
        match self {
            Curve::P224 => (
                "ffffffffffffffffffffffffffffffff000000000000000000000001",
                "b4050a850c04b3abf54132565044b0b7d7bfd8ba270b39432355ffb4",
            ),
            Curve::P256 => (
                "ffffffff00000001000000000000000000000000ffffffffffffffffffffffff",
                "5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b",
            ),
            Curve::P384 => (
                "fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffff",
                "b3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aef",
            ),
            Curve::P521 => (
                "01ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
                "0051953eb9618e1c9a1f929a21a0b68540eea2da725b99b315f3b8b489918ef109e156193951ec7e937b1652c0bd3bb1bf073573df883d2c34f1ef451fd46b503f00",
            ),
        }
    }

    /// `elliptic.Unmarshal` succeeds: uncompressed form, coordinates below p, on the curve.
    fn accepts_point(self, data: &[u8]) -> bool {
        let byte_len = self.bits().div_ceil(8);
        if data.len() != 1 + 2 * byte_len || data[0] != 4 {
            return false;
        }
        let (p_hex, b_hex) = self.params();
        let (Some(p), Some(b)) = (
            BigUint::parse_bytes(p_hex.as_bytes(), 16),
            BigUint::parse_bytes(b_hex.as_bytes(), 16),
        ) else {
            return false;
        };
        let x = BigUint::from_bytes_be(&data[1..1 + byte_len]);
        let y = BigUint::from_bytes_be(&data[1 + byte_len..]);
        if x >= p || y >= p {
            return false;
        }
        let y2 = (&y * &y) % &p;
        let x3 = (&x * &x % &p) * &x % &p;
        let three_x = (&x * 3u32) % &p;
        let rhs = ((x3 + &p - three_x) + b) % &p;
        y2 == rhs
    }
}

/// A parsed public key, as Go's `cert.PublicKey` would hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// Modulus without leading zero bytes; Go holds E as an `int`.
    Rsa {
        n: Vec<u8>,
        e: u64,
    },
    Ecdsa {
        curve: Curve,
        point: Vec<u8>,
    },
    Ed25519(Vec<u8>),
    /// Parsed by Go, but no signature is ever checked with it.
    Dsa {
        spki: Vec<u8>,
    },
    /// An algorithm Go does not know (`PublicKey == nil`).
    Unknown {
        spki: Vec<u8>,
    },
}

impl PublicKey {
    /// Go's `%T` of the key.
    pub fn go_type(&self) -> &'static str {
        match self {
            PublicKey::Rsa { .. } => "*rsa.PublicKey",
            PublicKey::Ecdsa { .. } => "*ecdsa.PublicKey",
            PublicKey::Ed25519(_) => "ed25519.PublicKey",
            PublicKey::Dsa { .. } => "*dsa.PublicKey",
            PublicKey::Unknown { .. } => "<nil>",
        }
    }

    /// The RSA modulus size in bits, for reports.
    pub fn rsa_bits(&self) -> Option<usize> {
        match self {
            PublicKey::Rsa { n, .. } => Some(bit_len(n)),
            _ => None,
        }
    }
}

pub(crate) fn bit_len(n: &[u8]) -> usize {
    let n = strip_leading_zeros(n);
    match n.first() {
        None => 0,
        Some(b) => (n.len() - 1) * 8 + (8 - b.leading_zeros() as usize),
    }
}

fn strip_leading_zeros(n: &[u8]) -> &[u8] {
    let first = n.iter().position(|b| *b != 0).unwrap_or(n.len());
    &n[first..]
}

/// The parts of `pkix.Name` regtrust needs, filled as `FillFromRDNSequence` does.
/// Values are Go strings: bytes, not necessarily UTF-8 (a T61String is copied raw).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Name {
    /// The last CN attribute, as in Go.
    pub common_name: Vec<u8>,
    pub organization: Vec<Vec<u8>>,
    /// Every attribute in order: (type, value), for display.
    pub attributes: Vec<Vec<(Oid, AttrValue)>>,
}

/// An attribute value as `pkix.AttributeTypeAndValue.Value` holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrValue {
    /// One of the six string types (the Go string's bytes).
    Text(Vec<u8>),
    /// Go 1.27+: any other ASN.1 value (`readASN1Any`), kept as its DER element. Such a value
    /// fills no named field (`FillFromRDNSequence` only takes strings).
    Der(Vec<u8>),
}

/// One entry of the extension list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    pub id: Oid,
    pub critical: bool,
    pub value: Vec<u8>,
}

/// Go's `ExtKeyUsage` values regtrust distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtKeyUsage {
    Any,
    ServerAuth,
    /// Another usage Go knows (clientAuth, codeSigning, ...).
    OtherKnown,
}

/// An IP range constraint (`net.IPNet`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpNet {
    pub ip: Vec<u8>,
    pub mask: Vec<u8>,
}

/// The name constraints Go enforces (DirectoryName and others are not).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameConstraints {
    pub permitted_dns: Vec<String>,
    pub excluded_dns: Vec<String>,
    pub permitted_ip: Vec<IpNet>,
    pub excluded_ip: Vec<IpNet>,
    pub permitted_email: Vec<String>,
    pub excluded_email: Vec<String>,
    pub permitted_uri: Vec<String>,
    pub excluded_uri: Vec<String>,
}

/// Go's `x509.Certificate`, the fields its verifier reads.
#[derive(Debug, Clone)]
pub struct Certificate {
    pub raw: Vec<u8>,
    pub raw_tbs: Vec<u8>,
    /// 1, 2 or 3 (Go's one-indexed version).
    pub version: u8,
    /// Two's-complement contents of the serial INTEGER.
    pub serial: Vec<u8>,
    pub signature_algorithm: SignatureAlgorithm,
    pub raw_issuer: Vec<u8>,
    pub issuer: Name,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub raw_subject: Vec<u8>,
    pub subject: Name,
    pub raw_spki: Vec<u8>,
    pub public_key_algorithm: PublicKeyAlgorithm,
    pub public_key: PublicKey,
    pub extensions: Vec<Extension>,
    /// Go's `KeyUsage` bits (bit i = i-th named bit; keyCertSign = 1 << 5).
    pub key_usage: u16,
    pub basic_constraints_valid: bool,
    pub is_ca: bool,
    /// -1 when absent.
    pub max_path_len: i64,
    pub dns_names: Vec<String>,
    pub email_addresses: Vec<String>,
    pub ip_addresses: Vec<Vec<u8>>,
    pub uris: Vec<String>,
    pub name_constraints: NameConstraints,
    pub ext_key_usage: Vec<ExtKeyUsage>,
    pub unknown_ext_key_usage: Vec<Oid>,
    pub subject_key_id: Vec<u8>,
    pub authority_key_id: Vec<u8>,
    pub unhandled_critical_extensions: Vec<Oid>,
    pub signature: Vec<u8>,
}

pub const KEY_USAGE_CERT_SIGN: u16 = 1 << 5;

const OID_SAN: [u32; 4] = [2, 5, 29, 17];
const OID_NAME_CONSTRAINTS: [u32; 4] = [2, 5, 29, 30];
const OID_AIA: [u32; 9] = [1, 3, 6, 1, 5, 5, 7, 1, 1];
pub(crate) const OID_CN: [u32; 4] = [2, 5, 4, 3];
pub(crate) const OID_O: [u32; 4] = [2, 5, 4, 10];

impl Certificate {
    /// `hasSANExtension`.
    pub fn has_san_extension(&self) -> bool {
        self.extensions.iter().any(|e| e.id == OID_SAN)
    }

    /// The raw value of the SAN extension (`getSANExtension`).
    pub fn san_extension(&self) -> Option<&[u8]> {
        self.extensions
            .iter()
            .find(|e| e.id == OID_SAN)
            .map(|e| e.value.as_slice())
    }

    /// `hasNameConstraints`.
    pub fn has_name_constraints(&self) -> bool {
        self.extensions.iter().any(|e| e.id == OID_NAME_CONSTRAINTS)
    }

    /// Go's `SerialNumber.String()` (decimal, `-` when negative).
    pub fn serial_decimal(&self) -> String {
        let s = &self.serial;
        if s.first().is_some_and(|b| b & 0x80 != 0) {
            let neg: Vec<u8> = s.iter().map(|b| !b).collect();
            let v = BigUint::from_bytes_be(&neg) + 1u32;
            format!("-{v}")
        } else {
            BigUint::from_bytes_be(s).to_string()
        }
    }

    /// The subject in Go's `pkix.Name.String()` form (RFC 2253 order, last RDN first).
    pub fn subject_string(&self) -> String {
        self.subject.go_string()
    }

    pub fn issuer_string(&self) -> String {
        self.issuer.go_string()
    }
}

impl Name {
    /// An RFC 2253 rendering close to Go's `pkix.Name.String()`: attribute short names for
    /// the common types, dotted OIDs otherwise, RDNs in reverse order.
    pub fn go_string(&self) -> String {
        let mut out = String::new();
        for (i, rdn) in self.attributes.iter().rev().enumerate() {
            if i > 0 {
                out.push(',');
            }
            for (j, (oid, value)) in rdn.iter().enumerate() {
                if j > 0 {
                    out.push('+');
                }
                let short = match oid.as_slice() {
                    [2, 5, 4, 3] => "CN".to_string(),
                    [2, 5, 4, 5] => "SERIALNUMBER".to_string(),
                    [2, 5, 4, 6] => "C".to_string(),
                    [2, 5, 4, 7] => "L".to_string(),
                    [2, 5, 4, 8] => "ST".to_string(),
                    [2, 5, 4, 9] => "STREET".to_string(),
                    [2, 5, 4, 10] => "O".to_string(),
                    [2, 5, 4, 11] => "OU".to_string(),
                    [2, 5, 4, 17] => "POSTALCODE".to_string(),
                    other => other
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join("."),
                };
                match value {
                    AttrValue::Text(value) => {
                        out.push_str(&short);
                        out.push('=');
                        out.push_str(&escape_rdn_value(&String::from_utf8_lossy(value)));
                    }
                    // pkix.RDNSequence.String: a non-string value of another type is
                    // `oid=#hex(DER)`; one of the named types shows nowhere (Name.String
                    // renders the named fields, which only take strings).
                    AttrValue::Der(der) if short.contains('.') => {
                        out.push_str(&short);
                        out.push_str("=#");
                        out.push_str(&hex(der));
                    }
                    AttrValue::Der(_) => {}
                }
            }
        }
        out
    }
}

/// pkix's `escape`: RFC 2253 escaping of `,+"\<>;`, a leading `#` or space and a trailing
/// space.
fn escape_rdn_value(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    for (i, c) in chars.iter().enumerate() {
        let escape = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (*c == ' ' || *c == '#'))
            || (i == chars.len() - 1 && *c == ' ');
        if escape {
            out.push('\\');
        }
        out.push(*c);
    }
    out
}

// ---------------------------------------------------------------------------------------
// Parsing.

type PResult<T> = Result<T, String>;

fn err<T>(msg: &str) -> PResult<T> {
    Err(msg.to_string())
}

/// `x509.ParseCertificate` of the newest modelled Go: the certificate, or Go's error text
/// (`x509: ...`).
pub fn parse_certificate(der: &[u8]) -> PResult<Certificate> {
    parse_certificate_as(der, GoVersion::NEWEST, GoDebug::default())
}

/// `x509.ParseCertificate` as Go `go` with `godebug` parses it (the parse-time refusals added
/// by later releases are gated on `go`).
pub fn parse_certificate_as(der: &[u8], go: GoVersion, godebug: GoDebug) -> PResult<Certificate> {
    parse_certificate_asking(der, go, godebug).0
}

/// `parse_certificate_as`, and the questions the parse asked of the release: the same
/// parse holds for every release that answers them the same (`Answers::hold_for`), so a
/// chain judged for several releases is parsed once unless it meets a rule they differ on.
pub fn parse_certificate_asking(
    der: &[u8],
    go: GoVersion,
    godebug: GoDebug,
) -> (PResult<Certificate>, Answers) {
    #[cfg(test)]
    parse_count::count(der);
    let asking = Asking::new(go);
    let cert = parse_certificate_inner(der, &asking, godebug).and_then(|cert| {
        if der.len() != cert.raw.len() {
            return err("x509: trailing data");
        }
        Ok(cert)
    });
    (cert, asking.answers())
}

/// How often `ParseCertificate` ran on each DER (in this test process): the tests that hold
/// the probe to one parse per presented certificate count with it. Tests make their own
/// certificates, so counts of different tests never mix.
#[cfg(test)]
pub(crate) mod parse_count {
    use std::collections::HashMap;
    use std::sync::Mutex;

    static COUNTS: Mutex<Option<HashMap<Vec<u8>, usize>>> = Mutex::new(None);

    pub(super) fn count(der: &[u8]) {
        let mut c = COUNTS.lock().unwrap_or_else(|p| p.into_inner());
        *c.get_or_insert_with(HashMap::new)
            .entry(der.to_vec())
            .or_default() += 1;
    }

    /// How many times `der` was parsed so far.
    pub fn of(der: &[u8]) -> usize {
        let c = COUNTS.lock().unwrap_or_else(|p| p.into_inner());
        c.as_ref().and_then(|c| c.get(der).copied()).unwrap_or(0)
    }
}

fn parse_certificate_inner(der: &[u8], go: impl Rules, godebug: GoDebug) -> PResult<Certificate> {
    let mut input = Der::new(der);
    let raw = input
        .read_element(tag::SEQUENCE)
        .ok_or("x509: malformed certificate")?;
    let mut input = Der::new(raw);
    let inner = input
        .read(tag::SEQUENCE)
        .ok_or("x509: malformed certificate")?;
    let mut input = Der::new(inner);

    let raw_tbs = input
        .read_element(tag::SEQUENCE)
        .ok_or("x509: malformed tbs certificate")?;
    let mut tbs = Der::new(raw_tbs);
    let tbs_inner = tbs
        .read(tag::SEQUENCE)
        .ok_or("x509: malformed tbs certificate")?;
    let mut tbs = Der::new(tbs_inner);

    // ReadOptionalASN1Integer([0] EXPLICIT, default 0)
    let version: i64 = match tbs
        .read_optional(tag::ctx_cons(0))
        .ok_or("x509: malformed version")?
    {
        None => 0,
        Some(v) => {
            let mut d = Der::new(v);
            let n = d.read_i64().ok_or("x509: malformed version")?;
            if !d.is_empty() {
                return err("x509: malformed version");
            }
            n
        }
    };
    if version < 0 {
        return err("x509: malformed version");
    }
    let version = version + 1;
    if version > 3 {
        return err("x509: invalid version");
    }
    let version = version as u8;

    let serial = tbs
        .read_integer_bytes()
        .ok_or("x509: malformed serial number")?
        .to_vec();
    // go1.23.5 parser.go:872-878: a negative serial is refused unless x509negativeserial=1.
    if serial[0] & 0x80 != 0 && !godebug.x509negativeserial && go.at_least(23) {
        return err("x509: negative serial number");
    }

    let sig_ai_seq = tbs
        .read(tag::SEQUENCE)
        .ok_or("x509: malformed signature algorithm identifier")?;
    let outer_sig_ai_seq = input
        .read(tag::SEQUENCE)
        .ok_or("x509: malformed algorithm identifier")?;
    if outer_sig_ai_seq != sig_ai_seq {
        return err("x509: inner and outer signature algorithm identifiers don't match");
    }
    let sig_ai = parse_ai(sig_ai_seq, go)?;
    let signature_algorithm = signature_algorithm_from_ai(&sig_ai);

    let raw_issuer = tbs
        .read_element(tag::SEQUENCE)
        .ok_or("x509: malformed issuer")?;
    let issuer = parse_name(raw_issuer, go)?;

    let validity = tbs.read(tag::SEQUENCE).ok_or("x509: malformed validity")?;
    let mut validity = Der::new(validity);
    let not_before = parse_time(&mut validity)?;
    let not_after = parse_time(&mut validity)?;

    let raw_subject = tbs
        .read_element(tag::SEQUENCE)
        .ok_or("x509: malformed issuer")?;
    let subject = parse_name(raw_subject, go)?;

    let raw_spki = tbs
        .read_element(tag::SEQUENCE)
        .ok_or("x509: malformed spki")?;
    let (public_key_algorithm, public_key) = parse_spki_as(raw_spki, go)?;

    let mut extensions = Vec::new();
    if version > 1 {
        skip_optional(&mut tbs, tag::ctx(1)).ok_or("x509: malformed issuerUniqueID")?;
        skip_optional(&mut tbs, tag::ctx(2)).ok_or("x509: malformed subjectUniqueID")?;
        if version == 3 {
            let exts = tbs
                .read_optional(tag::ctx_cons(3))
                .ok_or("x509: malformed extensions")?;
            if let Some(exts) = exts {
                let mut exts = Der::new(exts);
                let seq = exts
                    .read(tag::SEQUENCE)
                    .ok_or("x509: malformed extensions")?;
                let mut seq = Der::new(seq);
                while !seq.is_empty() {
                    let ext = seq.read(tag::SEQUENCE).ok_or("x509: malformed extension")?;
                    let ext = parse_extension(ext, go)?;
                    if extensions.iter().any(|e: &Extension| e.id == ext.id) {
                        // go1.23.5 parser.go:992 names the OID; go1.19.8 did not.
                        if go.at_least(23) {
                            return Err(format!(
                                "x509: certificate contains duplicate extension with OID \"{}\"",
                                oid_string(&ext.id)
                            ));
                        }
                        return err("x509: certificate contains duplicate extensions");
                    }
                    extensions.push(ext);
                }
            }
        }
    }

    let signature = input
        .read_bit_string()
        .ok_or("x509: malformed signature")?
        .right_align();

    let mut cert = Certificate {
        raw: raw.to_vec(),
        raw_tbs: raw_tbs.to_vec(),
        version,
        serial,
        signature_algorithm,
        raw_issuer: raw_issuer.to_vec(),
        issuer,
        not_before,
        not_after,
        raw_subject: raw_subject.to_vec(),
        subject,
        raw_spki: raw_spki.to_vec(),
        public_key_algorithm,
        public_key,
        extensions,
        key_usage: 0,
        basic_constraints_valid: false,
        is_ca: false,
        max_path_len: -1,
        dns_names: Vec::new(),
        email_addresses: Vec::new(),
        ip_addresses: Vec::new(),
        uris: Vec::new(),
        name_constraints: NameConstraints::default(),
        ext_key_usage: Vec::new(),
        unknown_ext_key_usage: Vec::new(),
        subject_key_id: Vec::new(),
        authority_key_id: Vec::new(),
        unhandled_critical_extensions: Vec::new(),
        signature,
    };
    process_extensions(&mut cert, go)?;
    Ok(cert)
}

fn skip_optional(d: &mut Der<'_>, t: u8) -> Option<()> {
    d.read_optional(t).map(|_| ())
}

/// `pkix.AlgorithmIdentifier`: the OID and the full parameter element (empty if absent).
struct AlgorithmIdentifier {
    oid: Oid,
    params: Vec<u8>,
}

/// cryptobyte's `ReadASN1ObjectIdentifier` as `go` vendors it: minimal subidentifiers from Go
/// 1.22 (see `Der::read_oid_minimal`; the x/crypto of 1.20 and 1.21 was not read, they are
/// judged as 1.19).
///
/// The release is asked only when the two readings differ (a non-minimal subidentifier):
/// an OID both read alike says nothing about the release (see `Answers`). Both readings
/// take the same element when both succeed; when both fail, the caller's error is the same.
fn read_oid_as(d: &mut Der<'_>, go: impl Rules) -> Option<Oid> {
    let mut old = *d;
    let lax = old.read_oid();
    let minimal = d.read_oid_minimal();
    if lax == minimal || go.at_least(22) {
        minimal
    } else {
        *d = old;
        lax
    }
}

/// `parseAI` (cryptobyte, `go`'s OID rules); the PSS parameters go through encoding/asn1,
/// which wants minimal OIDs in every release (`pss_algorithm`).
fn parse_ai(der: &[u8], go: impl Rules) -> PResult<AlgorithmIdentifier> {
    let mut d = Der::new(der);
    let oid = read_oid_as(&mut d, go).ok_or("x509: malformed OID")?;
    if d.is_empty() {
        return Ok(AlgorithmIdentifier {
            oid,
            params: Vec::new(),
        });
    }
    let (_, params) = d.read_any_element().ok_or("x509: malformed parameters")?;
    Ok(AlgorithmIdentifier {
        oid,
        params: params.to_vec(),
    })
}

const NULL_BYTES: [u8; 2] = [0x05, 0x00];

/// `getSignatureAlgorithmFromAI`.
fn signature_algorithm_from_ai(ai: &AlgorithmIdentifier) -> SignatureAlgorithm {
    use SignatureAlgorithm::*;
    let oid = ai.oid.as_slice();
    if oid == [1, 3, 101, 112] && !ai.params.is_empty() {
        return Unknown;
    }
    match oid {
        [1, 2, 840, 113549, 1, 1, 2] => Md2Rsa,
        [1, 2, 840, 113549, 1, 1, 4] => Md5Rsa,
        [1, 2, 840, 113549, 1, 1, 5] | [1, 3, 14, 3, 2, 29] => Sha1Rsa,
        [1, 2, 840, 113549, 1, 1, 11] => Sha256Rsa,
        [1, 2, 840, 113549, 1, 1, 12] => Sha384Rsa,
        [1, 2, 840, 113549, 1, 1, 13] => Sha512Rsa,
        [1, 2, 840, 10040, 4, 3] => DsaSha1,
        [2, 16, 840, 1, 101, 3, 4, 3, 2] => DsaSha256,
        [1, 2, 840, 10045, 4, 1] => EcdsaSha1,
        [1, 2, 840, 10045, 4, 3, 2] => EcdsaSha256,
        [1, 2, 840, 10045, 4, 3, 3] => EcdsaSha384,
        [1, 2, 840, 10045, 4, 3, 4] => EcdsaSha512,
        [1, 3, 101, 112] => Ed25519,
        [1, 2, 840, 113549, 1, 1, 10] => pss_algorithm(&ai.params).unwrap_or(Unknown),
        _ => Unknown,
    }
}

/// The RSA-PSS parameter buckets Go accepts: MGF1 with the message hash, salt length equal
/// to the hash length, trailer 1.
fn pss_algorithm(params: &[u8]) -> Option<SignatureAlgorithm> {
    // encoding/asn1 into pssParameters{Hash [0], MGF [1], SaltLength [2], TrailerField [3] opt}
    let mut d = Der::new(params);
    let seq = d.read(tag::SEQUENCE)?;
    let mut s = Der::new(seq);
    let hash = Der::new(s.read(tag::ctx_cons(0))?).read(tag::SEQUENCE)?;
    let mgf = Der::new(s.read(tag::ctx_cons(1))?).read(tag::SEQUENCE)?;
    let salt = Der::new(s.read(tag::ctx_cons(2))?).read_i64()?;
    let trailer = match s.read_optional(tag::ctx_cons(3))? {
        None => 1,
        Some(t) => Der::new(t).read_i64()?,
    };
    let strict = GoVersion::NEWEST;
    let hash = parse_ai(hash, strict).ok()?;
    let mgf = parse_ai(mgf, strict).ok()?;
    let mgf_hash = parse_ai(Der::new(&mgf.params).read(tag::SEQUENCE)?, strict).ok()?;
    let null_or_empty = |p: &[u8]| p.is_empty() || p == NULL_BYTES;
    if !null_or_empty(&hash.params)
        || mgf.oid != [1, 2, 840, 113549, 1, 1, 8]
        || mgf_hash.oid != hash.oid
        || !null_or_empty(&mgf_hash.params)
        || trailer != 1
    {
        return None;
    }
    match (hash.oid.as_slice(), salt) {
        ([2, 16, 840, 1, 101, 3, 4, 2, 1], 32) => Some(SignatureAlgorithm::Sha256RsaPss),
        ([2, 16, 840, 1, 101, 3, 4, 2, 2], 48) => Some(SignatureAlgorithm::Sha384RsaPss),
        ([2, 16, 840, 1, 101, 3, 4, 2, 3], 64) => Some(SignatureAlgorithm::Sha512RsaPss),
        _ => None,
    }
}

/// `isPrintable` (Go also lets `*` and `&` through).
fn is_printable(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || (b'\''..=b')').contains(&b)
        || (b'+'..=b'/').contains(&b)
        || matches!(b, b' ' | b':' | b'=' | b'?' | b'*' | b'&')
}

/// `parseASN1String`.
fn parse_asn1_string(t: u8, value: &[u8]) -> Result<Vec<u8>, String> {
    match t {
        tag::T61_STRING => Ok(value.to_vec()),
        tag::PRINTABLE_STRING => {
            if value.iter().all(|b| is_printable(*b)) {
                Ok(value.to_vec())
            } else {
                Err("invalid PrintableString".into())
            }
        }
        tag::UTF8_STRING => {
            if std::str::from_utf8(value).is_ok() {
                Ok(value.to_vec())
            } else {
                Err("invalid UTF-8 string".into())
            }
        }
        tag::BMP_STRING => {
            if value.len() % 2 != 0 {
                return Err("invalid BMPString".into());
            }
            let mut v = value;
            if v.len() >= 2 && v[v.len() - 1] == 0 && v[v.len() - 2] == 0 {
                v = &v[..v.len() - 2];
            }
            let units: Vec<u16> = v
                .chunks_exact(2)
                .map(|c| (u16::from(c[0]) << 8) | u16::from(c[1]))
                .collect();
            Ok(String::from_utf16_lossy(&units).into_bytes())
        }
        tag::IA5_STRING => {
            if value.is_ascii() {
                Ok(value.to_vec())
            } else {
                Err("invalid IA5String".into())
            }
        }
        tag::NUMERIC_STRING => {
            if value.iter().all(|b| b.is_ascii_digit() || *b == b' ') {
                Ok(value.to_vec())
            } else {
                Err("invalid NumericString".into())
            }
        }
        other => Err(format!("unsupported string type: {other}")),
    }
}

/// `readASN1Any` (Go 1.27 parser.go, go.dev/issue/75260): an attribute value of any ASN.1
/// type, where Go 1.19-1.26 refused every non-string one as `unsupported string type: N`
/// (e.g. a BIT STRING x500UniqueIdentifier, go.dev/issue/77900 against 1.26.0). Read in
/// the Go 1.27-dev `crypto/x509` source dump (parser.go readASN1Any and its use in
/// parseName; pkix.go's AttributeTypeAndValue doc lists the same types); not backported:
/// the 1.26 point releases keep parseASN1String alone. Error texts are the dump's.
fn read_asn1_any(d: &mut Der<'_>) -> Result<AttrValue, String> {
    let (t, full) = d.read_any_element().ok_or("invalid ASN.1 element")?;
    let mut el = Der::new(full);
    let ok = |b: bool, what: &str| {
        if b {
            Ok(AttrValue::Der(full.to_vec()))
        } else {
            Err(what.to_string())
        }
    };
    match t {
        tag::T61_STRING
        | tag::PRINTABLE_STRING
        | tag::UTF8_STRING
        | tag::BMP_STRING
        | tag::IA5_STRING
        | tag::NUMERIC_STRING => {
            let value = el.read(t).ok_or("invalid ASN.1 element")?;
            parse_asn1_string(t, value).map(AttrValue::Text)
        }
        // ReadASN1Integer into an int64: minimal, at most 8 bytes.
        tag::INTEGER => ok(el.read_i64().is_some(), "invalid ASN.1 integer"),
        tag::BIT_STRING => ok(el.read_bit_string().is_some(), "invalid ASN.1 BIT STRING"),
        tag::OCTET_STRING => ok(
            el.read(tag::OCTET_STRING).is_some(),
            "invalid ASN.1 OCTET STRING",
        ),
        tag::OID => ok(
            el.read_oid_minimal().is_some(),
            "invalid ASN.1 OBJECT IDENTIFIER",
        ),
        tag::UTC_TIME | tag::GENERALIZED_TIME => {
            parse_time(&mut el).map(|_| AttrValue::Der(full.to_vec()))
        }
        tag::BOOLEAN => ok(el.read_bool().is_some(), "invalid ASN.1 BOOLEAN"),
        // NULL (its contents are not looked at) and everything else, as an asn1.RawValue.
        _ => Ok(AttrValue::Der(full.to_vec())),
    }
}

/// `parseName` + `FillFromRDNSequence`.
fn parse_name(raw: &[u8], go: impl Rules) -> PResult<Name> {
    let mut d = Der::new(raw);
    let seq = d.read(tag::SEQUENCE).ok_or("x509: invalid RDNSequence")?;
    let mut seq = Der::new(seq);
    let mut name = Name::default();
    while !seq.is_empty() {
        let set = seq.read(tag::SET).ok_or("x509: invalid RDNSequence")?;
        let mut set = Der::new(set);
        let mut rdn = Vec::new();
        while !set.is_empty() {
            let atav = set
                .read(tag::SEQUENCE)
                .ok_or("x509: invalid RDNSequence: invalid attribute")?;
            let mut atav = Der::new(atav);
            let oid = read_oid_as(&mut atav, go)
                .ok_or("x509: invalid RDNSequence: invalid attribute type")?;
            // Both readings, each as the error it returns; the release is asked only when
            // they differ (a value that is not one of the six string types, or a string
            // whose element the two read differently).
            let wrap =
                |e: String| format!("x509: invalid RDNSequence: invalid attribute value: {e}");
            let mut old_atav = atav;
            let before_27 = match old_atav.read_any() {
                None => Err("x509: invalid RDNSequence: invalid attribute value".to_string()),
                Some((t, value)) => parse_asn1_string(t, value)
                    .map(AttrValue::Text)
                    .map_err(wrap),
            };
            let from_27 = read_asn1_any(&mut atav).map_err(wrap);
            let value = if before_27 == from_27 || go.at_least(27) {
                from_27
            } else {
                before_27
            }?;
            let AttrValue::Text(value) = value else {
                rdn.push((oid, value));
                continue;
            };
            if oid == OID_CN {
                name.common_name = value.clone();
            } else if oid == OID_O {
                name.organization.push(value.clone());
            }
            rdn.push((oid, AttrValue::Text(value)));
        }
        name.attributes.push(rdn);
    }
    Ok(name)
}

/// `parseTime`: UTCTime or GeneralizedTime, with cryptobyte's format round-trip rule.
fn parse_time(d: &mut Der<'_>) -> PResult<OffsetDateTime> {
    if d.peek(tag::UTC_TIME) {
        let v = d.read(tag::UTC_TIME).ok_or("x509: malformed UTCTime")?;
        parse_utc_time(v).ok_or_else(|| "x509: malformed UTCTime".to_string())
    } else if d.peek(tag::GENERALIZED_TIME) {
        let v = d
            .read(tag::GENERALIZED_TIME)
            .ok_or("x509: malformed GeneralizedTime")?;
        parse_generalized_time(v).ok_or_else(|| "x509: malformed GeneralizedTime".to_string())
    } else {
        err("x509: unsupported time format")
    }
}

fn digits(s: &[u8]) -> Option<u32> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0u32, |a, b| a * 10 + u32::from(b - b'0')))
}

/// Go's `Z0700` zone: `Z`, or `+hhmm` / `-hhmm` (a zero offset must be written `Z`, or the
/// round-trip check fails).
fn parse_zone(s: &[u8]) -> Option<UtcOffset> {
    match s {
        b"Z" => Some(UtcOffset::UTC),
        [sign @ (b'+' | b'-'), h1, h2, m1, m2] => {
            let h = digits(&[*h1, *h2])?;
            let m = digits(&[*m1, *m2])?;
            if h > 99 || m > 59 {
                return None;
            }
            let secs = (h * 3600 + m * 60) as i32;
            if secs == 0 {
                return None;
            }
            UtcOffset::from_whole_seconds(if *sign == b'-' { -secs } else { secs }).ok()
        }
        _ => None,
    }
}

fn make_time(
    year: i32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    offset: UtcOffset,
) -> Option<OffsetDateTime> {
    let month = Month::try_from(u8::try_from(month).ok()?).ok()?;
    let date = Date::from_calendar_date(year, month, u8::try_from(day).ok()?).ok()?;
    let time = Time::from_hms(
        u8::try_from(hour).ok()?,
        u8::try_from(minute).ok()?,
        u8::try_from(second).ok()?,
    )
    .ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_offset(offset))
}

fn parse_utc_time(v: &[u8]) -> Option<OffsetDateTime> {
    // "060102150405Z0700", then the minute-precision fallback "0601021504Z0700".
    let (fields, zone, with_seconds) = if v.len() >= 13 && parse_zone(&v[12..]).is_some() {
        (&v[..12], &v[12..], true)
    } else if v.len() >= 11 {
        (&v[..10], &v[10..], false)
    } else {
        return None;
    };
    let offset = parse_zone(zone)?;
    let yy = digits(&fields[0..2])?;
    let month = digits(&fields[2..4])?;
    let day = digits(&fields[4..6])?;
    let hour = digits(&fields[6..8])?;
    let minute = digits(&fields[8..10])?;
    let second = if with_seconds {
        digits(&fields[10..12])?
    } else {
        0
    };
    // time.Parse "06": 69..99 -> 19xx, else 20xx; then cryptobyte maps >= 2050 back a century.
    let mut year = if yy >= 69 { 1900 + yy } else { 2000 + yy } as i32;
    if year >= 2050 {
        year -= 100;
    }
    make_time(year, month, day, hour, minute, second, offset)
}

fn parse_generalized_time(v: &[u8]) -> Option<OffsetDateTime> {
    // "20060102150405Z0700", nothing else round-trips.
    if v.len() < 15 {
        return None;
    }
    let offset = parse_zone(&v[14..])?;
    let year = digits(&v[0..4])? as i32;
    make_time(
        year,
        digits(&v[4..6])?,
        digits(&v[6..8])?,
        digits(&v[8..10])?,
        digits(&v[10..12])?,
        digits(&v[12..14])?,
        offset,
    )
}

/// Go's `time.RFC3339` rendering (whole seconds, `Z` for UTC, else `±hh:mm`).
pub fn format_rfc3339(t: OffsetDateTime) -> String {
    let mut s = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let off = t.offset().whole_seconds();
    if off == 0 {
        s.push('Z');
    } else {
        let sign = if off < 0 { '-' } else { '+' };
        let a = off.unsigned_abs();
        let _ = write!(s, "{sign}{:02}:{:02}", a / 3600, (a % 3600) / 60);
    }
    s
}

/// Parse a SubjectPublicKeyInfo element the way Go 1.19 does (`parsePublicKey`).
pub fn parse_spki(raw_spki: &[u8]) -> PResult<(PublicKeyAlgorithm, PublicKey)> {
    parse_spki_as(raw_spki, GoVersion::GO1_19)
}

/// `parse_spki` with the OID rules of `go`.
pub fn parse_spki_as(raw_spki: &[u8], go: impl Rules) -> PResult<(PublicKeyAlgorithm, PublicKey)> {
    let mut d = Der::new(raw_spki);
    let spki = d.read(tag::SEQUENCE).ok_or("x509: malformed spki")?;
    let mut spki = Der::new(spki);
    let pk_ai = spki
        .read(tag::SEQUENCE)
        .ok_or("x509: malformed public key algorithm identifier")?;
    let pk_ai = parse_ai(pk_ai, go)?;
    let algo = match pk_ai.oid.as_slice() {
        [1, 2, 840, 113549, 1, 1, 1] => PublicKeyAlgorithm::Rsa,
        [1, 2, 840, 10040, 4, 1] => PublicKeyAlgorithm::Dsa,
        [1, 2, 840, 10045, 2, 1] => PublicKeyAlgorithm::Ecdsa,
        [1, 3, 101, 112] => PublicKeyAlgorithm::Ed25519,
        _ => PublicKeyAlgorithm::Unknown,
    };
    let spk = spki
        .read_bit_string()
        .ok_or("x509: malformed subjectPublicKey")?;
    let data = spk.right_align();
    let key = match algo {
        PublicKeyAlgorithm::Rsa => {
            if pk_ai.params != NULL_BYTES {
                return err("x509: RSA key missing NULL parameters");
            }
            let mut d = Der::new(&data);
            let seq = d
                .read(tag::SEQUENCE)
                .ok_or("x509: invalid RSA public key")?;
            let mut seq = Der::new(seq);
            let n = seq
                .read_integer_bytes()
                .ok_or("x509: invalid RSA modulus")?;
            let e = seq.read_i64().ok_or("x509: invalid RSA public exponent")?;
            if n[0] & 0x80 != 0 || n.iter().all(|b| *b == 0) {
                return err("x509: RSA modulus is not a positive number");
            }
            if e <= 0 {
                return err("x509: RSA public exponent is not a positive number");
            }
            PublicKey::Rsa {
                n: strip_leading_zeros(n).to_vec(),
                e: e as u64,
            }
        }
        PublicKeyAlgorithm::Ecdsa => {
            let mut p = Der::new(&pk_ai.params);
            let curve_oid = read_oid_as(&mut p, go).ok_or("x509: invalid ECDSA parameters")?;
            let curve = match curve_oid.as_slice() {
                [1, 3, 132, 0, 33] => Curve::P224,
                [1, 2, 840, 10045, 3, 1, 7] => Curve::P256,
                [1, 3, 132, 0, 34] => Curve::P384,
                [1, 3, 132, 0, 35] => Curve::P521,
                _ => return err("x509: unsupported elliptic curve"),
            };
            if !curve.accepts_point(&data) {
                return err("x509: failed to unmarshal elliptic curve point");
            }
            PublicKey::Ecdsa { curve, point: data }
        }
        PublicKeyAlgorithm::Ed25519 => {
            if !pk_ai.params.is_empty() {
                return err("x509: Ed25519 key encoded with illegal parameters");
            }
            if data.len() != 32 {
                return err("x509: wrong Ed25519 public key size");
            }
            PublicKey::Ed25519(data)
        }
        PublicKeyAlgorithm::Dsa => {
            let mut d = Der::new(&data);
            let y = d
                .read_integer_bytes()
                .ok_or("x509: invalid DSA public key")?;
            let mut p = Der::new(&pk_ai.params);
            let params = p
                .read(tag::SEQUENCE)
                .ok_or("x509: invalid DSA parameters")?;
            let mut params = Der::new(params);
            let mut ints = Vec::new();
            for _ in 0..3 {
                ints.push(
                    params
                        .read_integer_bytes()
                        .ok_or("x509: invalid DSA parameters")?,
                );
            }
            let positive = |v: &[u8]| v[0] & 0x80 == 0 && v.iter().any(|b| *b != 0);
            if !positive(y) || !ints.iter().all(|v| positive(v)) {
                return err("x509: zero or negative DSA parameter");
            }
            PublicKey::Dsa {
                spki: raw_spki.to_vec(),
            }
        }
        PublicKeyAlgorithm::Unknown => PublicKey::Unknown {
            spki: raw_spki.to_vec(),
        },
    };
    Ok((algo, key))
}

/// Find the SubjectPublicKeyInfo of a certificate by walking the TBS structure only, so that a
/// certificate Go (or any strict parser) rejects for other reasons still yields its key.
pub fn spki_of_certificate(der: &[u8]) -> Option<&[u8]> {
    let mut d = Der::new(der);
    let cert = d.read(tag::SEQUENCE)?;
    let mut cert = Der::new(cert);
    let tbs = cert.read(tag::SEQUENCE)?;
    let mut tbs = Der::new(tbs);
    tbs.read_optional(tag::ctx_cons(0))?;
    tbs.read(tag::INTEGER)?;
    tbs.read(tag::SEQUENCE)?; // signature algorithm
    tbs.read(tag::SEQUENCE)?; // issuer
    tbs.read(tag::SEQUENCE)?; // validity
    tbs.read(tag::SEQUENCE)?; // subject
    tbs.read_element(tag::SEQUENCE)
}

fn parse_extension(der: &[u8], go: impl Rules) -> PResult<Extension> {
    let mut d = Der::new(der);
    let id = read_oid_as(&mut d, go).ok_or("x509: malformed extension OID field")?;
    let mut critical = false;
    if d.peek(tag::BOOLEAN) {
        critical = d
            .read_bool()
            .ok_or("x509: malformed extension critical field")?;
    }
    let value = d
        .read(tag::OCTET_STRING)
        .ok_or("x509: malformed extension value field")?;
    Ok(Extension {
        id,
        critical,
        value: value.to_vec(),
    })
}

/// `isIA5String` (every rune ASCII; any byte >= 0x80 fails).
fn ia5(s: &[u8]) -> Result<String, String> {
    if s.is_ascii() {
        Ok(String::from_utf8_lossy(s).into_owned())
    } else {
        Err(format!(
            "x509: {} cannot be encoded as an IA5String",
            go_quote(s)
        ))
    }
}

/// `forEachSAN`: calls back with (tag ^ 0x80, data).
pub(crate) fn for_each_san(
    der: &[u8],
    mut f: impl FnMut(u8, &[u8]) -> Result<(), String>,
) -> Result<(), String> {
    let mut d = Der::new(der);
    let seq = d
        .read(tag::SEQUENCE)
        .ok_or("x509: invalid subject alternative names")?;
    let mut seq = Der::new(seq);
    while !seq.is_empty() {
        let (t, data) = seq
            .read_any()
            .ok_or("x509: invalid subject alternative name")?;
        f(t ^ 0x80, data)?;
    }
    Ok(())
}

pub(crate) const NAME_TYPE_EMAIL: u8 = 1;
pub(crate) const NAME_TYPE_DNS: u8 = 2;
pub(crate) const NAME_TYPE_URI: u8 = 6;
pub(crate) const NAME_TYPE_IP: u8 = 7;

/// `parseSANExtension`.
fn parse_san(cert: &mut Certificate, value: &[u8], go: impl Rules) -> PResult<()> {
    let mut dns = Vec::new();
    let mut emails = Vec::new();
    let mut ips = Vec::new();
    let mut uris = Vec::new();
    for_each_san(value, |t, data| {
        match t {
            NAME_TYPE_EMAIL => {
                emails.push(ia5(data).map_err(|_| "x509: SAN rfc822Name is malformed")?);
            }
            NAME_TYPE_DNS => {
                dns.push(ia5(data).map_err(|_| "x509: SAN dNSName is malformed")?);
            }
            NAME_TYPE_URI => {
                let s =
                    ia5(data).map_err(|_| "x509: SAN uniformResourceIdentifier is malformed")?;
                // go1.19.8 parser.go parseSANExtension: url.Parse, then the host's labels.
                let url = super::url::parse(&s).map_err(|e| {
                    format!("x509: cannot parse URI {}: {e}", go_quote(s.as_bytes()))
                })?;
                let host = url.host.as_str();
                if !host.is_empty() && domain_to_reverse_labels(host, go).is_none() {
                    return Err(format!(
                        "x509: cannot parse URI {}: invalid domain",
                        go_quote(s.as_bytes())
                    ));
                }
                uris.push(s);
            }
            NAME_TYPE_IP => match data.len() {
                4 | 16 => ips.push(data.to_vec()),
                n => return Err(format!("x509: cannot parse IP address of length {n}")),
            },
            _ => {}
        }
        Ok(())
    })?;
    cert.dns_names = dns;
    cert.email_addresses = emails;
    cert.ip_addresses = ips;
    cert.uris = uris;
    Ok(())
}

/// `domainToReverseLabels`.
pub(crate) fn domain_to_reverse_labels(domain: &str, go: impl Rules) -> Option<Vec<&str>> {
    let mut labels = Vec::new();
    let mut d = domain;
    while !d.is_empty() {
        match d.rfind('.') {
            None => {
                labels.push(d);
                d = "";
            }
            Some(i) => {
                labels.push(&d[i + 1..]);
                d = &d[..i];
                // go1.23.5 verify.go:370-374: a leading period is an empty first label
                // (so `.example.com` is no longer a valid domain).
                if i == 0 && go.at_least(23) {
                    labels.push("");
                }
            }
        }
    }
    if labels.first().is_some_and(|l| l.is_empty()) {
        return None;
    }
    for l in &labels {
        if l.is_empty() || l.chars().any(|c| (c as u32) < 33 || (c as u32) > 126) {
            return None;
        }
    }
    Some(labels)
}

/// `domainNameValid` (parser.go), the alloc-less check that replaced `domainToReverseLabels`
/// for SANs and constraints in the CVE-2025-58187 fix (GO-2025-4007, go.dev/cl/709854;
/// go1.24.8 and go1.25.2). Ported from the form the follow-up of go.dev/issue/75835 left
/// (go1.24.9, go1.25.3 and later), read in a `crypto/x509` source dump of Go 1.27-dev (its
/// cert_pool.go says "This changed in Go 1.27"): empty is valid, a trailing period is not,
/// a constraint may start with one period, every label is non-empty and of bytes 33..=126.
/// The stricter checks 1.24.8 and 1.25.2 had for one week (no empty name, no leading
/// period in a SAN, 253/63-byte limits, dNSName SANs refused at parse time as `x509: SAN
/// dNSName is malformed`) survive only as commented-out `TODO(#75835)` lines there and are
/// not modelled.
pub(crate) fn domain_name_valid(s: &str, constraint: bool) -> bool {
    let b = s.as_bytes();
    let Some(&last) = b.last() else {
        return true;
    };
    if last == b'.' {
        return false;
    }
    let b = match b.split_first() {
        Some((b'.', rest)) if constraint => rest,
        _ => b,
    };
    b.split(|c| *c == b'.')
        .all(|label| !label.is_empty() && label.iter().all(|c| (33..=126).contains(c)))
}

/// Whether a dNSName, rfc822Name (domain form) or URI constraint parses, as `go`'s
/// `parseNameConstraintsExtension` asks. Before the CVE-2025-58187 fix: the constraint
/// without one leading period through `domainToReverseLabels` (go1.23.5 parser.go:566-573);
/// from it (go1.24.8, go1.25.2, every 1.26): `domainNameValid(domain, true)`, which also
/// refuses a lone `.` (its trailing period), where the older check saw an empty domain.
/// The release is asked only when the two checks disagree on `domain`.
fn constraint_domain_valid(domain: &str, go: impl Rules) -> bool {
    let fixed = domain_name_valid(domain, true);
    let before = domain_to_reverse_labels(domain.strip_prefix('.').unwrap_or(domain), go).is_some();
    if fixed == before || go.has_backport(26, &[(24, 8), (25, 2)]) {
        fixed
    } else {
        before
    }
}

/// `isValidIPMask`.
fn is_valid_ip_mask(mask: &[u8]) -> bool {
    let mut seen_zero = false;
    for b in mask {
        if seen_zero {
            if *b != 0 {
                return false;
            }
            continue;
        }
        match b {
            0x00 | 0x80 | 0xc0 | 0xe0 | 0xf0 | 0xf8 | 0xfc | 0xfe => seen_zero = true,
            0xff => {}
            _ => return false,
        }
    }
    true
}

/// `parseNameConstraintsExtension`: returns `unhandled`.
fn parse_name_constraints(cert: &mut Certificate, value: &[u8], go: impl Rules) -> PResult<bool> {
    let invalid = "x509: invalid NameConstraints extension";
    let mut outer = Der::new(value);
    let toplevel = outer.read(tag::SEQUENCE).ok_or(invalid)?;
    if !outer.is_empty() {
        return err(invalid);
    }
    let mut toplevel = Der::new(toplevel);
    let permitted = toplevel.read_optional(tag::ctx_cons(0)).ok_or(invalid)?;
    let excluded = toplevel.read_optional(tag::ctx_cons(1)).ok_or(invalid)?;
    if !toplevel.is_empty() {
        return err(invalid);
    }
    let empty = permitted.is_none_or(<[u8]>::is_empty) && excluded.is_none_or(<[u8]>::is_empty);
    if empty {
        return err("x509: empty name constraints extension");
    }
    let mut unhandled = false;
    type Values = (Vec<String>, Vec<IpNet>, Vec<String>, Vec<String>);
    let mut get_values = |subtrees: &[u8]| -> PResult<Values> {
        let mut v: Values = Default::default();
        let mut d = Der::new(subtrees);
        while !d.is_empty() {
            let seq = d.read(tag::SEQUENCE).ok_or(invalid)?;
            let (t, value) = Der::new(seq).read_any().ok_or(invalid)?;
            match t {
                x if x == tag::ctx(2) => {
                    let domain =
                        ia5(value).map_err(|e| format!("x509: invalid constraint value: {e}"))?;
                    if !constraint_domain_valid(&domain, go) {
                        return Err(format!(
                            "x509: failed to parse dnsName constraint {}",
                            go_quote(domain.as_bytes())
                        ));
                    }
                    v.0.push(domain);
                }
                x if x == tag::ctx(7) => {
                    let (ip, mask) = match value.len() {
                        8 => (&value[..4], &value[4..]),
                        32 => (&value[..16], &value[16..]),
                        l => {
                            return Err(format!(
                                "x509: IP constraint contained value of length {l}"
                            ))
                        }
                    };
                    if !is_valid_ip_mask(mask) {
                        return Err(format!(
                            "x509: IP constraint contained invalid mask {}",
                            hex(mask)
                        ));
                    }
                    v.1.push(IpNet {
                        ip: ip.to_vec(),
                        mask: mask.to_vec(),
                    });
                }
                x if x == tag::ctx(1) => {
                    let c =
                        ia5(value).map_err(|e| format!("x509: invalid constraint value: {e}"))?;
                    let bad = || {
                        format!(
                            "x509: failed to parse rfc822Name constraint {}",
                            go_quote(c.as_bytes())
                        )
                    };
                    if c.contains('@') {
                        if parse_rfc2821_mailbox(&c, go).is_none() {
                            return Err(bad());
                        }
                    } else if !constraint_domain_valid(&c, go) {
                        return Err(bad());
                    }
                    v.2.push(c);
                }
                x if x == tag::ctx(6) => {
                    let domain =
                        ia5(value).map_err(|e| format!("x509: invalid constraint value: {e}"))?;
                    if parse_go_ip(&domain).is_some() {
                        return Err(format!(
                            "x509: failed to parse URI constraint {}: cannot be IP address",
                            go_quote(domain.as_bytes())
                        ));
                    }
                    if !constraint_domain_valid(&domain, go) {
                        return Err(format!(
                            "x509: failed to parse URI constraint {}",
                            go_quote(domain.as_bytes())
                        ));
                    }
                    v.3.push(domain);
                }
                _ => unhandled = true,
            }
        }
        Ok(v)
    };
    let p = get_values(permitted.unwrap_or_default())?;
    let x = get_values(excluded.unwrap_or_default())?;
    cert.name_constraints = NameConstraints {
        permitted_dns: p.0,
        permitted_ip: p.1,
        permitted_email: p.2,
        permitted_uri: p.3,
        excluded_dns: x.0,
        excluded_ip: x.1,
        excluded_email: x.2,
        excluded_uri: x.3,
    };
    Ok(unhandled)
}

/// `rfc2821Mailbox`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mailbox {
    pub local: Vec<u8>,
    pub domain: String,
}

/// `parseRFC2821Mailbox`.
pub(crate) fn parse_rfc2821_mailbox(input: &str, go: impl Rules) -> Option<Mailbox> {
    let mut inp = input.as_bytes();
    if inp.is_empty() {
        return None;
    }
    let mut local = Vec::with_capacity(inp.len() / 2);
    if inp[0] == b'"' {
        inp = &inp[1..];
        loop {
            let (&c, rest) = inp.split_first()?;
            inp = rest;
            match c {
                b'"' => break,
                b'\\' => {
                    let (&n, rest) = inp.split_first()?;
                    if n == 11 || n == 12 || (1..=9).contains(&n) || (14..=127).contains(&n) {
                        local.push(n);
                        inp = rest;
                    } else {
                        return None;
                    }
                }
                11 | 12 | 32 | 33 | 127 => local.push(c),
                c if (1..=8).contains(&c)
                    || (14..=31).contains(&c)
                    || (35..=91).contains(&c)
                    || (93..=126).contains(&c) =>
                {
                    local.push(c)
                }
                _ => return None,
            }
        }
    } else {
        while let Some(&c) = inp.first() {
            let mut c = c;
            if c == b'\\' {
                inp = &inp[1..];
                c = *inp.first()?;
            } else if !(c.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&c)) {
                break;
            }
            local.push(c);
            inp = &inp[1..];
        }
        if local.is_empty()
            || local[0] == b'.'
            || local[local.len() - 1] == b'.'
            || local.windows(2).any(|w| w == b"..")
        {
            return None;
        }
    }
    if inp.first() != Some(&b'@') {
        return None;
    }
    let domain = std::str::from_utf8(&inp[1..]).ok()?;
    domain_to_reverse_labels(domain, go)?;
    Some(Mailbox {
        local,
        domain: domain.to_string(),
    })
}

/// `extKeyUsageFromOID`.
fn ext_key_usage_from_oid(oid: &[u32]) -> Option<ExtKeyUsage> {
    match oid {
        [2, 5, 29, 37, 0] => Some(ExtKeyUsage::Any),
        [1, 3, 6, 1, 5, 5, 7, 3, 1] => Some(ExtKeyUsage::ServerAuth),
        [1, 3, 6, 1, 5, 5, 7, 3, 2..=9]
        | [1, 3, 6, 1, 4, 1, 311, 10, 3, 3]
        | [2, 16, 840, 1, 113730, 4, 1]
        | [1, 3, 6, 1, 4, 1, 311, 2, 1, 22]
        | [1, 3, 6, 1, 4, 1, 311, 61, 1, 1] => Some(ExtKeyUsage::OtherKnown),
        _ => None,
    }
}

/// `processExtensions`.
fn process_extensions(cert: &mut Certificate, go: impl Rules) -> PResult<()> {
    // go1.22.12 parser.go:337-347 dropped the " a"/" b"/" c" suffixes go1.19.8 printed
    // (1.20 and 1.21 not read: judged as 1.19).
    let bc = |suffix: &'static str| -> &'static str {
        match (go.at_least(22), suffix) {
            (true, _) => "x509: invalid basic constraints",
            (false, "a") => "x509: invalid basic constraints a",
            (false, "b") => "x509: invalid basic constraints b",
            _ => "x509: invalid basic constraints c",
        }
    };
    let extensions = cert.extensions.clone();
    for e in &extensions {
        let mut unhandled = false;
        let id = e.id.as_slice();
        if let [2, 5, 29, n] = id {
            match n {
                15 => {
                    let bits = Der::new(&e.value)
                        .read_bit_string()
                        .ok_or("x509: invalid key usage")?;
                    let mut usage = 0u16;
                    for i in 0..9 {
                        if bits.at(i) {
                            usage |= 1 << i;
                        }
                    }
                    cert.key_usage = usage;
                }
                19 => {
                    let mut d = Der::new(&e.value);
                    let seq = d.read(tag::SEQUENCE).ok_or_else(|| bc("a"))?;
                    let mut seq = Der::new(seq);
                    let mut is_ca = false;
                    if seq.peek(tag::BOOLEAN) {
                        is_ca = seq.read_bool().ok_or_else(|| bc("b"))?;
                    }
                    let mut max_path_len = -1;
                    if !seq.is_empty() && seq.peek(tag::INTEGER) {
                        max_path_len = seq.read_i64().ok_or_else(|| bc("c"))?;
                    }
                    cert.is_ca = is_ca;
                    cert.max_path_len = max_path_len;
                    cert.basic_constraints_valid = true;
                }
                17 => {
                    parse_san(cert, &e.value, go)?;
                    if cert.dns_names.is_empty()
                        && cert.email_addresses.is_empty()
                        && cert.ip_addresses.is_empty()
                        && cert.uris.is_empty()
                    {
                        unhandled = true;
                    }
                }
                30 => unhandled = parse_name_constraints(cert, &e.value, go)?,
                31 => parse_crl_distribution_points(&e.value)?,
                35 => {
                    // go1.23.5 parser.go:421-424 (parseAuthorityKeyIdentifier).
                    if e.critical && go.at_least(23) {
                        return err("x509: authority key identifier incorrectly marked critical");
                    }
                    let mut d = Der::new(&e.value);
                    let akid = d
                        .read(tag::SEQUENCE)
                        .ok_or("x509: invalid authority key identifier")?;
                    let mut akid = Der::new(akid);
                    if akid.peek(tag::ctx(0)) {
                        cert.authority_key_id = akid
                            .read(tag::ctx(0))
                            .ok_or("x509: invalid authority key identifier")?
                            .to_vec();
                    }
                }
                37 => {
                    let bad = "x509: invalid extended key usages";
                    let mut d = Der::new(&e.value);
                    let seq = d.read(tag::SEQUENCE).ok_or(bad)?;
                    let mut seq = Der::new(seq);
                    let mut known = Vec::new();
                    let mut unknown = Vec::new();
                    while !seq.is_empty() {
                        let oid = read_oid_as(&mut seq, go).ok_or(bad)?;
                        match ext_key_usage_from_oid(&oid) {
                            Some(k) => known.push(k),
                            None => unknown.push(oid),
                        }
                    }
                    cert.ext_key_usage = known;
                    cert.unknown_ext_key_usage = unknown;
                }
                14 => {
                    // go1.23.5 parser.go:757-760.
                    if e.critical && go.at_least(23) {
                        return err("x509: subject key identifier incorrectly marked critical");
                    }
                    cert.subject_key_id = Der::new(&e.value)
                        .read(tag::OCTET_STRING)
                        .ok_or("x509: invalid subject key identifier")?
                        .to_vec();
                }
                32 => {
                    let bad = "x509: invalid certificate policies";
                    let mut d = Der::new(&e.value);
                    let seq = d.read(tag::SEQUENCE).ok_or(bad)?;
                    let mut seq = Der::new(seq);
                    while !seq.is_empty() {
                        let cp = seq.read(tag::SEQUENCE).ok_or(bad)?;
                        // go1.22.12 parser.go:443-451: any minimally encoded OID
                        // (newOIDFromDER, oid.go:27), arcs of any size; before, an
                        // encoding/asn1 OID. The release is asked only when they disagree.
                        let from_22 = Der::new(cp).read(tag::OID).is_some_and(new_oid_from_der_ok);
                        let before_22 = Der::new(cp).read_oid().is_some();
                        let ok = if from_22 == before_22 || go.at_least(22) {
                            from_22
                        } else {
                            before_22
                        };
                        if !ok {
                            return err(bad);
                        }
                    }
                }
                _ => unhandled = true,
            }
        } else if id == OID_AIA {
            // go1.23.5 parser.go:784-787.
            if e.critical && go.at_least(23) {
                return err("x509: authority info access incorrectly marked critical");
            }
            let bad = "x509: invalid authority info access";
            let mut d = Der::new(&e.value);
            let seq = d.read(tag::SEQUENCE).ok_or(bad)?;
            let mut seq = Der::new(seq);
            while !seq.is_empty() {
                let aia = seq.read(tag::SEQUENCE).ok_or(bad)?;
                let mut aia = Der::new(aia);
                read_oid_as(&mut aia, go).ok_or(bad)?;
                if !aia.peek(tag::ctx(6)) {
                    continue;
                }
                aia.read(tag::ctx(6)).ok_or(bad)?;
            }
        } else {
            unhandled = true;
        }
        if e.critical && unhandled {
            cert.unhandled_critical_extensions.push(e.id.clone());
        }
    }
    Ok(())
}

/// `newOIDFromDER` (go1.22.12 oid.go:27): non-empty, the last octet ends a subidentifier, no
/// subidentifier starts with 0x80.
fn new_oid_from_der_ok(der: &[u8]) -> bool {
    if der.is_empty() || der[der.len() - 1] & 0x80 != 0 {
        return false;
    }
    let mut start = 0;
    for (i, &v) in der.iter().enumerate() {
        if i == start && v == 0x80 {
            return false;
        }
        if v & 0x80 == 0 {
            start = i + 1;
        }
    }
    true
}

/// `asn1.ObjectIdentifier.String()`: `2.5.29.19`.
pub fn oid_string(oid: &[u32]) -> String {
    let parts: Vec<String> = oid.iter().map(u32::to_string).collect();
    parts.join(".")
}

fn parse_crl_distribution_points(value: &[u8]) -> PResult<()> {
    let mut d = Der::new(value);
    let seq = d
        .read(tag::SEQUENCE)
        .ok_or("x509: invalid CRL distribution points")?;
    let mut seq = Der::new(seq);
    let bad = "x509: invalid CRL distribution point";
    while !seq.is_empty() {
        let dp = seq.read(tag::SEQUENCE).ok_or(bad)?;
        let mut dp = Der::new(dp);
        let Some(name) = dp.read_optional(tag::ctx_cons(0)).ok_or(bad)? else {
            continue;
        };
        let mut name = Der::new(name);
        let full = name.read(tag::ctx_cons(0)).ok_or(bad)?;
        let mut full = Der::new(full);
        while !full.is_empty() {
            if !full.peek(tag::ctx(6)) {
                break;
            }
            full.read(tag::ctx(6)).ok_or(bad)?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Go's renderings.

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter()
        .fold(String::with_capacity(b.len() * 2), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        })
}

/// `net.ParseIP`: IPv4 dotted decimal without leading zeros, or IPv6 (no zone).
pub fn parse_go_ip(s: &str) -> Option<Vec<u8>> {
    for c in s.bytes() {
        match c {
            b'.' => return parse_go_ipv4(s).map(|v| v.to_vec()),
            b':' => {
                return s
                    .parse::<std::net::Ipv6Addr>()
                    .ok()
                    .map(|a| a.octets().to_vec())
            }
            _ => {}
        }
    }
    None
}

fn parse_go_ipv4(s: &str) -> Option<[u8; 4]> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut out = [0u8; 4];
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if p.len() > 1 && p.starts_with('0') {
            return None;
        }
        out[i] = p.parse::<u8>().ok()?;
    }
    Some(out)
}

/// `net.IP.To4` on 4- or 16-byte addresses.
pub(crate) fn ip_to4(ip: &[u8]) -> Option<[u8; 4]> {
    match ip.len() {
        4 => ip.try_into().ok(),
        16 if ip[..10].iter().all(|b| *b == 0) && ip[10] == 0xff && ip[11] == 0xff => {
            ip[12..].try_into().ok()
        }
        _ => None,
    }
}

/// `net.IP.String`.
pub fn go_ip_string(ip: &[u8]) -> String {
    if ip.is_empty() {
        return "<nil>".into();
    }
    if let Some(v4) = ip_to4(ip) {
        return format!("{}.{}.{}.{}", v4[0], v4[1], v4[2], v4[3]);
    }
    if ip.len() != 16 {
        return format!("?{}", hex(ip));
    }
    let (mut e0, mut e1): (isize, isize) = (-1, -1);
    let mut i = 0usize;
    while i < 16 {
        let mut j = i;
        while j < 16 && ip[j] == 0 && ip[j + 1] == 0 {
            j += 2;
        }
        if j > i && (j - i) as isize > e1 - e0 {
            e0 = i as isize;
            e1 = j as isize;
            i = j;
        }
        i += 2;
    }
    if e1 - e0 <= 2 {
        e0 = -1;
        e1 = -1;
    }
    let mut out = String::new();
    let mut i = 0usize;
    while i < 16 {
        if i as isize == e0 {
            out.push_str("::");
            i = e1 as usize;
            if i >= 16 {
                break;
            }
        } else if i > 0 {
            out.push(':');
        }
        let _ = write!(out, "{:x}", (u32::from(ip[i]) << 8) | u32::from(ip[i + 1]));
        i += 2;
    }
    out
}

/// `(*net.IPNet).String`.
pub(crate) fn go_ipnet_string(n: &IpNet) -> String {
    let ip: Vec<u8> = match ip_to4(&n.ip) {
        Some(v4) => v4.to_vec(),
        None if n.ip.len() == 16 => n.ip.clone(),
        None => return "<nil>".into(),
    };
    let mask: &[u8] = match n.mask.len() {
        4 if ip.len() == 4 => &n.mask,
        16 if ip.len() == 4 => &n.mask[12..],
        16 => &n.mask,
        _ => return "<nil>".into(),
    };
    match simple_mask_length(mask) {
        Some(l) => format!("{}/{l}", go_ip_string(&ip)),
        None => format!("{}/{}", go_ip_string(&ip), hex(mask)),
    }
}

fn simple_mask_length(mask: &[u8]) -> Option<usize> {
    let mut n = 0;
    for (i, &v) in mask.iter().enumerate() {
        if v == 0xff {
            n += 8;
            continue;
        }
        let mut v = v;
        while v & 0x80 != 0 {
            n += 1;
            v <<= 1;
        }
        if v != 0 || mask[i + 1..].iter().any(|b| *b != 0) {
            return None;
        }
        break;
    }
    Some(n)
}

/// Go's `strconv.Quote` (`%q`) of a Go string (bytes, possibly invalid UTF-8).
///
/// Go's `IsPrint` covers the Unicode letter, mark, number, punctuation and symbol classes plus
/// U+0020; here a non-ASCII character counts as printable unless it is a control or a space
/// character, which agrees with Go except for format characters such as U+200B.
pub fn go_quote(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut rest = s;
    while !rest.is_empty() {
        let (c, width) = match std::str::from_utf8(rest) {
            Ok(v) => {
                let c = v.chars().next().unwrap_or('\u{fffd}');
                (Some(c), c.len_utf8())
            }
            Err(e) if e.valid_up_to() > 0 => {
                let v = std::str::from_utf8(&rest[..e.valid_up_to()]).unwrap_or("");
                let c = v.chars().next().unwrap_or('\u{fffd}');
                (Some(c), c.len_utf8())
            }
            Err(_) => (None, 1),
        };
        match c {
            None => {
                let _ = write!(out, "\\x{:02x}", rest[0]);
            }
            Some(c) => match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\x07' => out.push_str("\\a"),
                '\x08' => out.push_str("\\b"),
                '\x0c' => out.push_str("\\f"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\x0b' => out.push_str("\\v"),
                c if c.is_ascii() => {
                    if (' '..='~').contains(&c) {
                        out.push(c);
                    } else {
                        let _ = write!(out, "\\x{:02x}", c as u32);
                    }
                }
                c if !c.is_control() && !c.is_whitespace() => out.push(c),
                c if (c as u32) < 0x10000 => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => {
                    let _ = write!(out, "\\U{:08x}", c as u32);
                }
            },
        }
        rest = &rest[width..];
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_or_fail() {
        let cases: &[(&[u8], bool, Option<&str>)] = &[
            (b"250102030405Z", true, Some("2025-01-02T03:04:05Z")),
            (b"500102030405Z", true, Some("1950-01-02T03:04:05Z")),
            (b"491231235959Z", true, Some("2049-12-31T23:59:59Z")),
            (b"2501020304Z", true, Some("2025-01-02T03:04:00Z")),
            (
                b"250102030405+0100",
                true,
                Some("2025-01-02T03:04:05+01:00"),
            ),
            (b"250102030405+0000", true, None),
            (b"250230030405Z", true, None),
            (b"250102030460Z", true, None),
            (b"25010203040Z", true, None),
            (b"20250102030405Z", false, Some("2025-01-02T03:04:05Z")),
            (b"99991231235959Z", false, Some("9999-12-31T23:59:59Z")),
            (b"20250102030405.5Z", false, None),
            (b"20250102030405", false, None),
            (b"2025010203Z", false, None),
        ];
        for (input, utc, want) in cases {
            let got = if *utc {
                parse_utc_time(input)
            } else {
                parse_generalized_time(input)
            };
            assert_eq!(
                got.map(format_rfc3339).as_deref(),
                *want,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn go_ip_strings() {
        let cases: &[(&[u8], &str)] = &[
            (&[10, 0, 0, 5], "10.0.0.5"),
            (
                &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 5],
                "10.0.0.5",
            ),
            (&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], "::1"),
            (
                &[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1],
                "2001:db8::1:0:0:1",
            ),
            (
                &[0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 0],
                "2001:db8:1:1:1:1:1:0",
            ),
            (
                &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4],
                "::102:304",
            ),
            (&[1, 2, 3], "?010203"),
        ];
        for (ip, want) in cases {
            assert_eq!(go_ip_string(ip), *want);
        }
    }

    #[test]
    fn go_ip_parsing() {
        let cases: &[(&str, Option<&str>)] = &[
            ("10.0.0.5", Some("10.0.0.5")),
            ("010.0.0.5", None),
            ("10.0.0", None),
            ("10.0.0.256", None),
            ("::1", Some("::1")),
            ("::ffff:10.0.0.5", Some("10.0.0.5")),
            ("fe80::1%eth0", None),
            ("registry.local", None),
            ("", None),
        ];
        for (s, want) in cases {
            assert_eq!(
                parse_go_ip(s).map(|ip| go_ip_string(&ip)).as_deref(),
                *want,
                "{s}"
            );
        }
    }

    #[test]
    fn go_quote_escapes_like_strconv() {
        let cases: &[(&[u8], &str)] = &[
            (b"Harbor CA", r#""Harbor CA""#),
            (b"a\"b\\c", r#""a\"b\\c""#),
            (b"tab\there\n", r#""tab\there\n""#),
            (b"\x01\x7f", r#""\x01\x7f""#),
            (b"\xff\xfe", r#""\xff\xfe""#),
            ("Zürich".as_bytes(), "\"Zürich\""),
            ("a\u{a0}b".as_bytes(), r#""a\u00a0b""#),
        ];
        for (s, want) in cases {
            assert_eq!(go_quote(s), *want);
        }
    }

    /// `domainNameValid` as the Go 1.27-dev parser.go dump has it (the form of go1.24.9 and
    /// go1.25.3 on), and where constraint parsing switched to it: a lone `.` constraint,
    /// which `domainToReverseLabels` of the trimmed domain took for the empty domain, is
    /// refused from go1.24.8 / go1.25.2 (CVE-2025-58187).
    #[test]
    fn domain_name_valid_as_the_cve_2025_58187_fix_has_it() {
        for (s, as_name, as_constraint) in [
            ("", true, true),
            ("a.example.com", true, true),
            (".example.com", false, true),
            ("..example.com", false, false),
            (".", false, false),
            ("example.com.", false, false),
            ("a..b", false, false),
            ("a b", false, false),
            ("a\u{7f}b", false, false),
            ("*.example.com", true, true),
            ("a:8080", true, true),
        ] {
            assert_eq!(domain_name_valid(s, false), as_name, "{s:?} as a name");
            assert_eq!(
                domain_name_valid(s, true),
                as_constraint,
                "{s:?} as a constraint"
            );
        }
        for (go, dot_ok) in [
            (GoVersion::new(23, 5), true),
            (GoVersion::new(24, 7), true),
            (GoVersion::new(24, 8), false),
            (GoVersion::new(25, 1), true),
            (GoVersion::new(25, 2), false),
            (GoVersion::new(25, 3), false),
            (GoVersion::new(26, 0), false),
            (GoVersion::new(27, 0), false),
        ] {
            assert_eq!(constraint_domain_valid(".", go), dot_ok, "{go}");
            // What both forms agree on.
            assert!(constraint_domain_valid(".example.com", go), "{go}");
            assert!(constraint_domain_valid("", go), "{go}");
            assert!(!constraint_domain_valid("example.com.", go), "{go}");
        }
    }

    /// From Go 1.22 (the x/crypto it vendors) an OID whose subidentifier is padded with a
    /// leading 0x80 is malformed; Go 1.19 reads it (tests/go_versions.rs checks both against
    /// the real toolchains).
    #[test]
    fn non_minimal_oids_are_malformed_from_go_1_22() {
        use super::super::pki::{ext, Key, Spec};
        let now = OffsetDateTime::now_utc();
        let mut s = Spec::leaf("r.test", &["r.test"], now);
        s.custom = vec![ext(&[1, 2, 3, 128], vec![0x05, 0x00], false)];
        let mut der = s.self_signed(Key::ecdsa()).der();
        let at = der
            .windows(6)
            .position(|w| w == [0x06, 0x04, 0x2a, 0x03, 0x81, 0x00])
            .expect("the extension OID");
        der[at + 4..at + 6].copy_from_slice(&[0x80, 0x05]);
        let parse = |go| parse_certificate_as(&der, go, GoDebug::default()).map(|_| ());
        assert_eq!(parse(GoVersion::GO1_19), Ok(()));
        for go in [
            GoVersion::new(22, 0),
            GoVersion::new(23, 5),
            GoVersion::new(27, 0),
        ] {
            assert_eq!(
                parse(go),
                Err("x509: malformed extension OID field".to_string()),
                "{go}"
            );
        }
    }

    /// DER TLV with a short length.
    fn tlv(t: u8, content: &[u8]) -> Vec<u8> {
        assert!(content.len() < 128);
        let mut v = vec![t, content.len() as u8];
        v.extend_from_slice(content);
        v
    }

    /// A Name of one attribute `oid` (DER contents) = `value` (a whole element).
    fn one_attribute_name(oid: &[u8], value: &[u8]) -> Vec<u8> {
        let mut atav = tlv(tag::OID, oid);
        atav.extend_from_slice(value);
        tlv(tag::SEQUENCE, &tlv(tag::SET, &tlv(tag::SEQUENCE, &atav)))
    }

    /// Go 1.27's `readASN1Any` (go.dev/issue/75260): attribute values of any ASN.1 type
    /// load, with its own errors for malformed ones; Go 1.26 refuses each non-string type.
    #[test]
    fn attribute_values_of_any_type_from_go_1_27() {
        const UNIQUE_ID: &[u8] = &[0x55, 0x04, 0x2d]; // 2.5.4.45 x500UniqueIdentifier
        const CN: &[u8] = &[0x55, 0x04, 0x03];
        let prefix = "x509: invalid RDNSequence: invalid attribute value";
        let (go26, go27) = (GoVersion::new(26, 9), GoVersion::new(27, 0));
        let cases: &[(&[u8], Option<&str>, Option<&str>)] = &[
            // (value element, 1.26 error after the prefix, 1.27 error after the prefix)
            (
                &[0x03, 0x02, 0x00, 0x41],
                Some(": unsupported string type: 3"),
                None,
            ),
            (
                &[0x02, 0x01, 0x05],
                Some(": unsupported string type: 2"),
                None,
            ),
            (
                &[0x04, 0x01, 0x41],
                Some(": unsupported string type: 4"),
                None,
            ),
            (
                &[0x06, 0x03, 0x2a, 0x03, 0x04],
                Some(": unsupported string type: 6"),
                None,
            ),
            (
                &[0x01, 0x01, 0xff],
                Some(": unsupported string type: 1"),
                None,
            ),
            (&[0x05, 0x00], Some(": unsupported string type: 5"), None),
            (
                b"\x17\x0d250102030405Z",
                Some(": unsupported string type: 23"),
                None,
            ),
            // A UniversalString, a SEQUENCE: asn1.RawValue in 1.27.
            (
                &[0x1c, 0x04, 0, 0, 0, 0x41],
                Some(": unsupported string type: 28"),
                None,
            ),
            (&[0x30, 0x00], Some(": unsupported string type: 48"), None),
            // Malformed values of the new types.
            (
                &[0x02, 0x02, 0x00, 0x05],
                Some(": unsupported string type: 2"),
                Some(": invalid ASN.1 integer"),
            ),
            (
                &[0x02, 0x09, 1, 0, 0, 0, 0, 0, 0, 0, 0],
                Some(": unsupported string type: 2"),
                Some(": invalid ASN.1 integer"),
            ),
            (
                &[0x03, 0x02, 0x08, 0x00],
                Some(": unsupported string type: 3"),
                Some(": invalid ASN.1 BIT STRING"),
            ),
            (
                &[0x06, 0x00],
                Some(": unsupported string type: 6"),
                Some(": invalid ASN.1 OBJECT IDENTIFIER"),
            ),
            (
                &[0x01, 0x01, 0x01],
                Some(": unsupported string type: 1"),
                Some(": invalid ASN.1 BOOLEAN"),
            ),
            (
                b"\x17\x03abc",
                Some(": unsupported string type: 23"),
                Some(": x509: malformed UTCTime"),
            ),
            // Strings and unreadable elements are judged as before, the latter in other words.
            (&[0x13, 0x01, b'a'], None, None),
            (
                &[0x13, 0x01, b'_'],
                Some(": invalid PrintableString"),
                Some(": invalid PrintableString"),
            ),
            (
                &[0x1f, 0x81, 0x01, 0x00],
                Some(""),
                Some(": invalid ASN.1 element"),
            ),
        ];
        for (value, e26, e27) in cases {
            let der = one_attribute_name(UNIQUE_ID, value);
            for (go, want) in [(go26, e26), (go27, e27)] {
                let got = parse_name(&der, go).map(|_| ());
                let want = match want {
                    None => Ok(()),
                    Some(tail) => Err(format!("{prefix}{tail}")),
                };
                assert_eq!(got, want, "{go} {value:02x?}");
            }
        }
        // A non-string value fills no named field: a CN given as an INTEGER is no CN, and
        // shows nowhere in the rendering; another type's shows as `oid=#hex`.
        let name = parse_name(&one_attribute_name(CN, &[0x02, 0x01, 0x05]), go27).unwrap();
        assert!(name.common_name.is_empty());
        assert_eq!(name.go_string(), "");
        let name = parse_name(
            &one_attribute_name(UNIQUE_ID, &[0x03, 0x02, 0x00, 0x41]),
            go27,
        )
        .unwrap();
        assert_eq!(name.go_string(), "2.5.4.45=#03020041");
        let name = parse_name(&one_attribute_name(CN, &[0x13, 0x01, b'a']), go27).unwrap();
        assert_eq!(name.common_name, b"a");
    }

    #[test]
    fn domains_and_mailboxes() {
        assert_eq!(
            domain_to_reverse_labels("a.example.com", GoVersion::GO1_19),
            Some(vec!["com", "example", "a"])
        );
        for bad in ["example.com.", "a..b", "a b.c", ""] {
            if bad.is_empty() {
                assert_eq!(
                    domain_to_reverse_labels(bad, GoVersion::GO1_19),
                    Some(vec![])
                );
            } else {
                assert_eq!(
                    domain_to_reverse_labels(bad, GoVersion::GO1_19),
                    None,
                    "{bad}"
                );
            }
        }
        let m = parse_rfc2821_mailbox("ops@example.com", GoVersion::GO1_19).unwrap();
        assert_eq!(
            (m.local.as_slice(), m.domain.as_str()),
            (&b"ops"[..], "example.com")
        );
        assert!(parse_rfc2821_mailbox("\"a b\"@example.com", GoVersion::GO1_19).is_some());
        // Go accepts an empty domain ("a@"): domainToReverseLabels("") succeeds.
        assert!(parse_rfc2821_mailbox("a@", GoVersion::GO1_19).is_some());
        for bad in [
            "",
            "@example.com",
            ".a@example.com",
            "a..b@example.com",
            "a",
        ] {
            assert!(
                parse_rfc2821_mailbox(bad, GoVersion::GO1_19).is_none(),
                "{bad}"
            );
        }
    }

    #[test]
    fn hostile_input_never_panics() {
        let mut inputs: Vec<Vec<u8>> = vec![
            vec![],
            b"garbage".to_vec(),
            b"-----BEGIN CERTIFICATE-----".to_vec(),
            b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----"
                .to_vec(),
            b"../../etc/passwd".to_vec(),
            vec![0x30; 4096],
            vec![0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
        ];
        // every prefix and single-byte corruption of a nested structure
        let nested = [
            0x30, 0x0a, 0x30, 0x08, 0xa0, 0x03, 0x02, 0x01, 0x02, 0x02, 0x01, 0x05,
        ];
        for i in 0..nested.len() {
            inputs.push(nested[..i].to_vec());
            let mut c = nested.to_vec();
            c[i] ^= 0xff;
            inputs.push(c);
        }
        // huge: 1 MiB of nested SEQUENCE headers
        let mut huge = Vec::new();
        for _ in 0..(1 << 18) {
            huge.extend_from_slice(&[0x30, 0x80]);
        }
        inputs.push(huge);
        for input in &inputs {
            assert!(parse_certificate(input).is_err());
            let _ = spki_of_certificate(input);
            let _ = parse_spki(input);
        }
    }

    #[test]
    fn curve_points_are_checked() {
        // The P-256 generator is on the curve; flipping a bit of y takes it off.
        let gx = "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296";
        let gy = "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5";
        let mut point = vec![4u8];
        point.extend((0..32).map(|i| u8::from_str_radix(&gx[2 * i..2 * i + 2], 16).unwrap()));
        point.extend((0..32).map(|i| u8::from_str_radix(&gy[2 * i..2 * i + 2], 16).unwrap()));
        assert!(Curve::P256.accepts_point(&point));
        let mut bad = point.clone();
        bad[64] ^= 1;
        assert!(!Curve::P256.accepts_point(&bad));
        let mut compressed = point[..33].to_vec();
        compressed[0] = 2;
        assert!(!Curve::P256.accepts_point(&compressed));
    }
}
