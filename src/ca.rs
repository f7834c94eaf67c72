//! CA inputs (`--ca [HOST=]PATH`): reading a PEM bundle or a mounted Secret dir holding
//! `ca.crt`, refusing what must never be installed (private keys, no certificate, over
//! 1 MiB, truncated or unparsable blocks), and the facts about each certificate that reports
//! and warnings need. A `CaBundle` that exists has passed validation; `to_pem` is the only
//! form regtrust ever writes. It also answers what a Go runtime would load from a file
//! (`go_loadable_certs`), which is how foreign trust files are judged.
//!
//! It does not know where files go (`trust` owns the runtimes' layouts) nor which host a
//! bundle applies to (`sync` decides that).

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use rustls_pki_types::pem::{self, PemObject as _, SectionKind};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer as _, X509Certificate};

use crate::report;

/// Largest CA input accepted (SPEC, Outputs: "an input over 1 MiB" is refused).
pub const MAX_CA_BYTES: u64 = 1 << 20;

/// Lowercase hex SHA-256, the digest used for certificate fingerprints, bundle digests and
/// the ownership ledger.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = String::with_capacity(64);
    for b in digest.as_ref() {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Why a file could not be read within a size limit.
#[derive(Debug, thiserror::Error)]
pub enum ReadCappedError {
    #[error("cannot read: {0}")]
    Io(#[from] io::Error),
    #[error("not a regular file")]
    NotAFile,
    #[error("{size} bytes; at most {limit} accepted")]
    TooLarge { size: u64, limit: u64 },
}

/// Read a regular file (symlinks followed) of at most `limit` bytes. The size is checked
/// from metadata before reading, and the read itself stops at `limit + 1` bytes, so a huge
/// or growing file is never read whole. FIFOs and devices are refused before opening them
/// (opening a FIFO would block). Also used by `pull_secret`, whose inputs are just as
/// untrusted.
pub fn read_capped(path: &Path, limit: u64) -> Result<Vec<u8>, ReadCappedError> {
    let meta = fs::metadata(path)?;
    if !meta.is_file() {
        return Err(ReadCappedError::NotAFile);
    }
    if meta.len() > limit {
        return Err(ReadCappedError::TooLarge {
            size: meta.len(),
            limit,
        });
    }
    let file = fs::File::open(path)?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        // The file grew between stat and read.
        return Err(ReadCappedError::TooLarge {
            size: bytes.len() as u64,
            limit,
        });
    }
    Ok(bytes)
}

/// A CA input that must not be installed. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("CA input {path}: cannot read it: {error}")]
    Io { path: String, error: io::Error },
    #[error(
        "CA input {path}: not a regular file (expected a PEM file or a directory holding ca.crt)"
    )]
    NotAFile { path: String },
    #[error(
        "CA input {path}: a directory without ca.crt (expected a mounted Secret holding ca.crt)"
    )]
    DirWithoutCa { path: String },
    #[error("CA input {path}: {size} bytes; at most {max} (1 MiB) accepted, refusing it", max = MAX_CA_BYTES)]
    TooLarge { path: String, size: u64 },
    #[error("CA input {path}: empty file; expected PEM certificates")]
    Empty { path: String },
    #[error("CA input {path}: holds a private key ({label:?} block); refusing to install it")]
    PrivateKey { path: String, label: String },
    #[error("CA input {path}: no PEM certificate found{}", if *.looks_der {
        "; it looks like DER (binary): convert it with `openssl x509 -inform der -in FILE -out ca.crt`"
    } else { "; expected -----BEGIN CERTIFICATE----- blocks" })]
    NoCertificate { path: String, looks_der: bool },
    #[error("CA input {path}: PEM block {label:?} opened on line {line} has no END line (truncated file?)")]
    Truncated {
        path: String,
        label: String,
        line: usize,
    },
    #[error("CA input {path}: malformed PEM on line {line}: {detail}")]
    MalformedPem {
        path: String,
        line: usize,
        detail: String,
    },
    #[error("CA input {path}: certificate {index} (line {line}) cannot be parsed: {reason}")]
    BadCertificate {
        path: String,
        index: usize,
        line: usize,
        reason: String,
    },
}

/// What regtrust needs to know about one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFacts {
    pub der: Vec<u8>,
    /// RFC 4514 style (`CN=Harbor CA, O=Example`).
    pub subject: String,
    pub issuer: String,
    /// Lowercase hex SHA-256 of the DER.
    pub sha256: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// Go would accept it as an issuer (`CheckSignatureFrom`'s gate, semantics-trust §4.1):
    /// a v1 certificate, or a v3 one with `basicConstraints CA:TRUE` whose key usage (if
    /// any) includes keyCertSign.
    pub is_ca: bool,
    /// Why `is_ca` is false, for warnings.
    pub not_ca_reason: Option<&'static str>,
    /// Subject equals issuer (byte for byte); the signature is not checked.
    pub self_signed: bool,
}

impl CertFacts {
    /// Parse one DER certificate. Trailing bytes after it are refused, as Go's
    /// `x509.ParseCertificate` does ("x509: trailing data").
    pub fn from_der(der: &[u8]) -> Result<CertFacts, String> {
        let (rest, cert) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
        if !rest.is_empty() {
            return Err(format!(
                "{} bytes of trailing data after the certificate",
                rest.len()
            ));
        }
        let not_ca_reason = not_ca_reason(&cert)?;
        Ok(CertFacts {
            der: der.to_vec(),
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            sha256: sha256_hex(der),
            not_before: cert.validity().not_before.to_datetime(),
            not_after: cert.validity().not_after.to_datetime(),
            is_ca: not_ca_reason.is_none(),
            not_ca_reason,
            self_signed: cert.subject().as_raw() == cert.issuer().as_raw(),
        })
    }

    /// Whole days until `not_after`, rounded down: negative once expired (an hour after
    /// expiry is -1, not 0).
    pub fn days_left(&self, now: OffsetDateTime) -> i64 {
        (self.not_after - now).whole_seconds().div_euclid(86_400)
    }

    pub fn is_valid_at(&self, now: OffsetDateTime) -> bool {
        self.not_before <= now && now <= self.not_after
    }

    pub fn to_ca_cert(&self, now: OffsetDateTime) -> report::CaCert {
        report::CaCert {
            subject: self.subject.clone(),
            sha256: self.sha256.clone(),
            not_after: report::rfc3339(self.not_after),
            days_left: Some(self.days_left(now)),
        }
    }

    pub fn to_chain_cert(&self) -> report::ChainCert {
        report::ChainCert {
            subject: self.subject.clone(),
            issuer: self.issuer.clone(),
            sha256: self.sha256.clone(),
            not_after: report::rfc3339(self.not_after),
        }
    }

    /// `"CN=Harbor CA" (sha256 1a2b3c4d…)`, how warnings and notes name a certificate.
    fn label(&self) -> String {
        format!("{:?} (sha256 {}…)", self.subject, &self.sha256[..16])
    }
}

fn not_ca_reason(cert: &X509Certificate<'_>) -> Result<Option<&'static str>, String> {
    // X509Version(0) is v1: no extensions, and Go lets a v1 certificate act as a root.
    if cert.version().0 == 0 {
        return Ok(None);
    }
    let bc = cert.basic_constraints().map_err(|e| e.to_string())?;
    match bc {
        None => return Ok(Some("it has no basicConstraints extension")),
        Some(bc) if !bc.value.ca => return Ok(Some("its basicConstraints say CA:FALSE")),
        Some(_) => {}
    }
    if let Some(ku) = cert.key_usage().map_err(|e| e.to_string())? {
        if !ku.value.key_cert_sign() {
            return Ok(Some("its key usage lacks keyCertSign"));
        }
    }
    Ok(None)
}

/// A validated CA input: the certificates it holds (deduplicated, input order) and notes on
/// what was dropped or normalised on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaBundle {
    source: String,
    certs: Vec<CertFacts>,
    /// What was dropped or normalised, one sentence each (no file contents).
    pub notes: Vec<String>,
}

impl CaBundle {
    /// Read a PEM file, or a directory holding `ca.crt` (a mounted Secret such as Harbor's;
    /// its `ca.crt` is a symlink into `..data/`, followed). The source recorded is the path
    /// as given (plus `/ca.crt` for a dir), never the `..data` target, which changes on
    /// every Secret update.
    pub fn read(path: &Path) -> Result<CaBundle, CaError> {
        let shown = |p: &Path| p.display().to_string();
        let meta = fs::metadata(path).map_err(|error| CaError::Io {
            path: shown(path),
            error,
        })?;
        let file: PathBuf = if meta.is_dir() {
            let f = path.join("ca.crt");
            if !f.exists() {
                return Err(CaError::DirWithoutCa { path: shown(path) });
            }
            f
        } else {
            path.to_path_buf()
        };
        let source = shown(&file);
        let bytes = read_capped(&file, MAX_CA_BYTES).map_err(|e| match e {
            ReadCappedError::Io(error) => CaError::Io {
                path: source.clone(),
                error,
            },
            ReadCappedError::NotAFile => CaError::NotAFile {
                path: source.clone(),
            },
            ReadCappedError::TooLarge { size, .. } => CaError::TooLarge {
                path: source.clone(),
                size,
            },
        })?;
        CaBundle::from_pem(&source, &bytes)
    }

    /// Validate PEM bytes. `source` names the input in errors and notes.
    pub fn from_pem(source: &str, bytes: &[u8]) -> Result<CaBundle, CaError> {
        let path = || source.to_string();
        if bytes.len() as u64 > MAX_CA_BYTES {
            return Err(CaError::TooLarge {
                path: path(),
                size: bytes.len() as u64,
            });
        }
        if bytes.is_empty() {
            return Err(CaError::Empty { path: path() });
        }
        // Before anything else, and over the raw bytes: a key anywhere (after a valid
        // certificate, behind a BOM, in a block type PemObject does not know) refuses the file.
        if let Some(label) = private_key_label(bytes) {
            return Err(CaError::PrivateKey {
                path: path(),
                label,
            });
        }
        let mut notes = Vec::new();
        let mut body = bytes;
        if let Some(rest) = body.strip_prefix(b"\xEF\xBB\xBF") {
            notes.push(
                "starts with a UTF-8 byte-order mark: Go's PEM decoder (docker, containerd, \
                 CRI-O) would not see the first certificate (containerd refuses the file); \
                 regtrust writes the certificates re-encoded without it"
                    .to_string(),
            );
            body = rest;
        }
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(CaError::Empty { path: path() });
        }
        if body.windows(2).any(|w| w == b"\r\n") {
            notes.push("CRLF line ends; re-encoded with LF".to_string());
        }

        let lines = scan_pem(source, body, &mut notes)?;
        let mut certs: Vec<CertFacts> = Vec::new();
        // PemObject decodes the cleaned certificate blocks; every other block was already
        // dropped (with a note) by `scan_pem`.
        for (index, item) in
            <(SectionKind, Vec<u8>)>::pem_slice_iter(lines.cleaned.as_bytes()).enumerate()
        {
            let line = lines.cert_lines.get(index).copied().unwrap_or(0);
            let (kind, der) = item.map_err(|e| CaError::MalformedPem {
                path: path(),
                line,
                detail: pem_error_detail(&e),
            })?;
            if kind != SectionKind::Certificate {
                continue;
            }
            let facts = CertFacts::from_der(&der).map_err(|reason| CaError::BadCertificate {
                path: path(),
                index: index + 1,
                line,
                reason,
            })?;
            if let Some(first) = certs.iter().position(|c| c.sha256 == facts.sha256) {
                notes.push(format!(
                    "certificate {} (line {line}) duplicates certificate {}; written once",
                    index + 1,
                    first + 1
                ));
                continue;
            }
            certs.push(facts);
        }
        if certs.is_empty() {
            return Err(CaError::NoCertificate {
                path: path(),
                looks_der: bytes.first() == Some(&0x30),
            });
        }
        let go_sees = go_loadable_certs(bytes);
        let go_distinct = certs.iter().filter(|c| go_sees.contains(&c.der)).count();
        if go_distinct < certs.len() {
            notes.push(format!(
                "a Go runtime reading this file as written would load {go_distinct} of its {} \
                 certificates; regtrust writes all of them re-encoded",
                certs.len()
            ));
        }
        Ok(CaBundle {
            source: source.to_string(),
            certs,
            notes,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn certificates(&self) -> &[CertFacts] {
        &self.certs
    }

    /// The canonical PEM regtrust writes: each certificate as a `CERTIFICATE` block in
    /// 64-column base64 with LF line ends, deduplicated, in input order. The same
    /// certificates always give the same bytes, so an unchanged input never rewrites a file.
    pub fn to_pem(&self) -> Vec<u8> {
        let mut out = String::new();
        for cert in &self.certs {
            out.push_str(&pem_block(&cert.der));
        }
        out.into_bytes()
    }

    /// SHA-256 hex of `to_pem()`: what the ledger records for a written file.
    pub fn digest(&self) -> String {
        sha256_hex(&self.to_pem())
    }

    /// True when both hold the same set of certificates (order and encoding ignored), e.g.
    /// a foreign `ca.crt` that already says what regtrust would write.
    pub fn same_certificates(&self, other: &CaBundle) -> bool {
        let mut a: Vec<&str> = self.certs.iter().map(|c| c.sha256.as_str()).collect();
        let mut b: Vec<&str> = other.certs.iter().map(|c| c.sha256.as_str()).collect();
        a.sort_unstable();
        b.sort_unstable();
        a == b
    }

    pub fn summary(&self, now: OffsetDateTime) -> report::CaSummary {
        report::CaSummary {
            source: self.source.clone(),
            certificates: self.certs.iter().map(|c| c.to_ca_cert(now)).collect(),
        }
    }

    /// Certificates that are installed but will not do what the admin expects.
    pub fn warnings(&self, now: OffsetDateTime) -> Vec<String> {
        let mut out = Vec::new();
        for c in &self.certs {
            if now > c.not_after {
                out.push(format!(
                    "CA {} expired on {}: Go runtimes reject every chain through it",
                    c.label(),
                    report::rfc3339(c.not_after)
                ));
            } else if now < c.not_before {
                out.push(format!(
                    "CA {} is not valid before {}: Go runtimes reject chains through it until then",
                    c.label(),
                    report::rfc3339(c.not_before)
                ));
            }
            if let Some(reason) = c.not_ca_reason {
                out.push(format!(
                    "certificate {} is not a CA ({reason}): Go trusts it only when the registry \
                     serves this exact certificate, never as an issuer",
                    c.label()
                ));
            }
        }
        out
    }
}

/// One certificate as a PEM block: 64-column standard base64, LF line ends.
fn pem_block(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 64);
    out.push_str("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        // base64 output is ASCII.
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// The label of the first BEGIN line anywhere in `bytes` whose label names a private key
/// (`PRIVATE KEY`, `RSA PRIVATE KEY`, `ENCRYPTED PRIVATE KEY`, `OPENSSH PRIVATE KEY`, ...).
/// Searched over raw bytes, not lines, so nothing hides it (BOM, indentation, junk before it
/// on the same line, CR-only line ends).
fn private_key_label(bytes: &[u8]) -> Option<String> {
    const BEGIN: &[u8] = b"-----BEGIN";
    let mut at = 0;
    while let Some(i) = find(&bytes[at..], BEGIN) {
        let start = at + i + BEGIN.len();
        let rest = &bytes[start..];
        let end = rest
            .iter()
            .position(|b| matches!(b, b'\n' | b'\r'))
            .unwrap_or(rest.len());
        let line = &rest[..end];
        let label_end = find(line, b"-----").unwrap_or(line.len());
        let label = String::from_utf8_lossy(&line[..label_end])
            .trim()
            .to_ascii_uppercase();
        if label.contains("PRIVATE KEY") {
            // Only the label, never the key, goes into the error.
            return Some(label.chars().take(64).collect());
        }
        at = start;
    }
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The certificate blocks of a PEM file, cleaned for PemObject, and where each started.
struct ScannedPem {
    /// Only CERTIFICATE blocks, each line trimmed, LF line ends.
    cleaned: String,
    /// 1-based line of each certificate block's BEGIN line, in order.
    cert_lines: Vec<usize>,
}

/// Walk the lines once: check the block structure (every BEGIN has its END; a BEGIN inside
/// an open block means the first one was truncated, which PemObject would silently skip),
/// keep only CERTIFICATE blocks, and note what is dropped. Lines are trimmed of surrounding
/// blanks, so an indented BEGIN line (which Go would not see) still counts.
fn scan_pem(source: &str, body: &[u8], notes: &mut Vec<String>) -> Result<ScannedPem, CaError> {
    let mut cleaned = String::new();
    let mut cert_lines = Vec::new();
    let mut junk_lines: Vec<usize> = Vec::new();
    let mut indented: Vec<usize> = Vec::new();
    // (label, line of BEGIN, header lines seen, buffered lines of this block)
    let mut open: Option<(String, usize, bool, Vec<String>)> = None;
    let mut line_no = 0;
    for raw in body.split(|b| *b == b'\n') {
        line_no += 1;
        let trimmed = trim_blank(raw);
        let text = String::from_utf8_lossy(trimmed);
        match &mut open {
            None => {
                if let Some(after) = text.strip_prefix("-----BEGIN") {
                    let label = section_label(after).ok_or_else(|| CaError::MalformedPem {
                        path: source.to_string(),
                        line: line_no,
                        detail: "a BEGIN line that is not \"-----BEGIN LABEL-----\"".to_string(),
                    })?;
                    if raw.first().is_some_and(|b| matches!(b, b' ' | b'\t')) {
                        indented.push(line_no);
                    }
                    open = Some((label, line_no, false, vec![text.into_owned()]));
                } else if text.starts_with("-----END") {
                    return Err(CaError::MalformedPem {
                        path: source.to_string(),
                        line: line_no,
                        detail: "an END line without a BEGIN line".to_string(),
                    });
                } else if !trimmed.is_empty() {
                    junk_lines.push(line_no);
                }
            }
            Some((label, begin, headers, buf)) => {
                if text.starts_with("-----BEGIN") {
                    return Err(CaError::Truncated {
                        path: source.to_string(),
                        label: label.clone(),
                        line: *begin,
                    });
                }
                if let Some(after) = text.strip_prefix("-----END") {
                    if section_label(after).as_deref() != Some(label.as_str()) {
                        return Err(CaError::MalformedPem {
                            path: source.to_string(),
                            line: line_no,
                            detail: format!(
                                "the END line does not close the {label:?} block opened on line {begin}"
                            ),
                        });
                    }
                    buf.push(text.into_owned());
                    if label != "CERTIFICATE" {
                        notes.push(format!(
                            "a {label:?} block (line {begin}) dropped: only CERTIFICATE blocks are installed{}",
                            match label.as_str() {
                                "TRUSTED CERTIFICATE" =>
                                    "; convert it with `openssl x509 -in FILE -out ca.crt`",
                                "PKCS7" =>
                                    "; extract its certificates with `openssl pkcs7 -print_certs -in FILE`",
                                _ => "",
                            }
                        ));
                    } else if *headers {
                        notes.push(format!(
                            "the CERTIFICATE block on line {begin} has PEM headers; Go skips such blocks, so it is dropped"
                        ));
                    } else {
                        cert_lines.push(*begin);
                        for l in buf.iter() {
                            cleaned.push_str(l);
                            cleaned.push('\n');
                        }
                    }
                    open = None;
                } else if trimmed.contains(&b':') {
                    *headers = true;
                } else if !trimmed.is_empty() {
                    buf.push(text.into_owned());
                }
            }
        }
    }
    if let Some((label, begin, _, _)) = open {
        return Err(CaError::Truncated {
            path: source.to_string(),
            label,
            line: begin,
        });
    }
    if !junk_lines.is_empty() {
        notes.push(format!(
            "{} line(s) of text outside PEM blocks dropped (line {})",
            junk_lines.len(),
            line_list(&junk_lines)
        ));
    }
    if !indented.is_empty() {
        notes.push(format!(
            "blanks before the BEGIN line on line {}: Go would not see those blocks; re-encoded",
            line_list(&indented)
        ));
    }
    Ok(ScannedPem {
        cleaned,
        cert_lines,
    })
}

/// `" LABEL-----"` (what follows `-----BEGIN` / `-----END`) → `LABEL`.
fn section_label(after: &str) -> Option<String> {
    let label = after.strip_prefix(' ')?.strip_suffix("-----")?;
    if label.is_empty() || label.contains("-----") {
        return None;
    }
    Some(label.to_string())
}

fn trim_blank(b: &[u8]) -> &[u8] {
    let is_blank = |c: &u8| matches!(c, b' ' | b'\t' | b'\r');
    let start = b.iter().position(|c| !is_blank(c)).unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !is_blank(c))
        .map_or(start, |i| i + 1);
    &b[start..end]
}

fn line_list(lines: &[usize]) -> String {
    let mut s: Vec<String> = lines.iter().take(5).map(|n| n.to_string()).collect();
    if lines.len() > 5 {
        s.push("…".to_string());
    }
    s.join(", ")
}

fn pem_error_detail(e: &pem::Error) -> String {
    match e {
        pem::Error::Base64Decode(_) => "the certificate block is not valid base64".to_string(),
        pem::Error::MissingSectionEnd { .. } => "a block has no END line".to_string(),
        pem::Error::IllegalSectionStart { .. } => "a malformed BEGIN line".to_string(),
        pem::Error::SectionTooLarge => "a block is too large".to_string(),
        _ => "unreadable PEM".to_string(),
    }
}

/// What a Go runtime (`x509.CertPool.AppendCertsFromPEM` looping over `pem.Decode`) would
/// actually load from this file's bytes. Go only sees a BEGIN line at the very start of the
/// data or right after a `\n` (a UTF-8 BOM or leading spaces hide the first block), skips
/// blocks that are not `CERTIFICATE` or have headers, and skips certificates that
/// `x509.ParseCertificate` rejects (approximated here by x509-parser plus Go's "no trailing
/// data" rule; Go ≥ 1.23 is stricter about serial numbers). Returns the DERs it would load.
/// Docker and CRI-O then silently use what loaded; containerd fails the host when nothing did.
pub fn go_loadable_certs(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let Some((block, next)) = go_pem_decode(rest) else {
            break;
        };
        rest = next;
        if block.kind != b"CERTIFICATE" || block.has_headers {
            continue;
        }
        if CertFacts::from_der(&block.bytes).is_ok() {
            out.push(block.bytes);
        }
    }
    out
}

struct GoBlock<'a> {
    kind: &'a [u8],
    has_headers: bool,
    bytes: Vec<u8>,
}

/// A port of Go's `encoding/pem.Decode` (src/encoding/pem/pem.go): the next block and the
/// rest of the data after it, or None when no further block decodes.
fn go_pem_decode(data: &[u8]) -> Option<(GoBlock<'_>, &[u8])> {
    const PEM_START: &[u8] = b"\n-----BEGIN ";
    const PEM_END: &[u8] = b"\n-----END ";
    const PEM_EOL: &[u8] = b"-----";
    let mut rest = data;
    loop {
        if rest.starts_with(&PEM_START[1..]) {
            rest = &rest[PEM_START.len() - 1..];
        } else if let Some(i) = find(rest, PEM_START) {
            rest = &rest[i + PEM_START.len()..];
        } else {
            return None;
        }
        let (type_line, after_type) = go_get_line(rest);
        rest = after_type;
        let Some(kind) = type_line.strip_suffix(PEM_EOL) else {
            continue;
        };
        let mut has_headers = false;
        loop {
            if rest.is_empty() {
                return None;
            }
            let (line, next) = go_get_line(rest);
            if !line.contains(&b':') {
                break;
            }
            has_headers = true;
            rest = next;
        }
        let (end_index, end_trailer_index) = if !has_headers && rest.starts_with(&PEM_END[1..]) {
            (0, PEM_END.len() - 1)
        } else {
            match find(rest, PEM_END) {
                Some(i) => (i, i + PEM_END.len()),
                None => continue,
            }
        };
        let end_trailer = &rest[end_trailer_index..];
        let end_trailer_len = kind.len() + PEM_EOL.len();
        if end_trailer.len() < end_trailer_len {
            continue;
        }
        let rest_of_end_line = &end_trailer[end_trailer_len..];
        let end_trailer = &end_trailer[..end_trailer_len];
        if !end_trailer.starts_with(kind) || !end_trailer.ends_with(PEM_EOL) {
            continue;
        }
        if !go_get_line(rest_of_end_line).0.is_empty() {
            continue;
        }
        let b64: Vec<u8> = rest[..end_index]
            .iter()
            .copied()
            .filter(|b| !matches!(b, b' ' | b'\t'))
            .collect();
        let Ok(bytes) = go_std_base64(&b64) else {
            continue;
        };
        let (_, after) = go_get_line(&rest[end_index + PEM_END.len() - 1..]);
        return Some((
            GoBlock {
                kind,
                has_headers,
                bytes,
            },
            after,
        ));
    }
}

/// Go's `getLine`: up to `\n` (a `\r` before it dropped), trailing spaces and tabs trimmed.
fn go_get_line(data: &[u8]) -> (&[u8], &[u8]) {
    let (mut i, j) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (i, i + 1),
        None => (data.len(), data.len()),
    };
    if j > i && i > 0 && data[i - 1] == b'\r' {
        i -= 1;
    }
    let mut line = &data[..i];
    while let [head @ .., b' ' | b'\t'] = line {
        line = head;
    }
    (line, &data[j..])
}

/// Go's `base64.StdEncoding.Decode`: padded standard alphabet, `\r` and `\n` skipped,
/// non-zero trailing bits tolerated.
pub(crate) fn go_std_base64(input: &[u8]) -> Result<Vec<u8>, base64::DecodeError> {
    go_base64(input, true)
}

/// Go's `StdEncoding` (`padded`) or `RawStdEncoding` decoding: `\r` and `\n` are skipped,
/// anything else outside the standard alphabet is an error.
pub(crate) fn go_base64(input: &[u8], padded: bool) -> Result<Vec<u8>, base64::DecodeError> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    let mode = if padded {
        DecodePaddingMode::RequireCanonical
    } else {
        DecodePaddingMode::RequireNone
    };
    let engine = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(mode),
    );
    let clean: Vec<u8> = input
        .iter()
        .copied()
        .filter(|b| !matches!(b, b'\r' | b'\n'))
        .collect();
    engine.decode(clean)
}
