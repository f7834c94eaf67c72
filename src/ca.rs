//! CA inputs (`--ca [HOST=]PATH`): reading a PEM bundle or a mounted Secret dir holding
//! `ca.crt`, refusing what must never be installed (private keys, no certificate, over
//! 1 MiB, truncated or unparsable blocks), and the facts about each certificate that reports
//! and warnings need. A `CaBundle` that exists has passed validation; `to_pem` is the only
//! form regtrust ever writes. It also answers what a Go runtime would load from a file
//! (`go_loadable_certs`, `go_loadable_certs_as` for a runtime's own Go release), decided by
//! the Go port (`crate::go`), which is how foreign trust files and runtime views are judged;
//! x509-parser only reads the display facts (`CertFacts`) and validates regtrust's own inputs.
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

use crate::go::GoRuntime;
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
    // O_NONBLOCK: if a FIFO is swapped in between the stat and the open, the open returns
    // at once instead of waiting for a writer. It changes nothing for a regular file.
    let file = {
        use std::os::unix::fs::OpenOptionsExt;
        fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)?
    };
    if !file.metadata()?.is_file() {
        return Err(ReadCappedError::NotAFile);
    }
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
            // Names come from whoever made the certificate: never raw control characters.
            subject: crate::report::printable(&cert.subject().to_string()),
            issuer: crate::report::printable(&cert.issuer().to_string()),
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
                 CRI-O) would not see the first certificate (containerd refuses the file when \
                 nothing else loads); regtrust writes the certificates re-encoded without it"
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
            notes: self.notes.clone(),
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
pub fn pem_block(der: &[u8]) -> String {
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

/// What a Go runtime (`x509.CertPool.AppendCertsFromPEM` looping over `pem.Decode`) of the
/// newest modelled release would actually load from this file's bytes, decided by the Go
/// port (`crate::go::pem`): what regtrust assumes where the runtime's Go is not known (sync
/// and its checks). Returns the DERs it would load. Docker and CRI-O then silently use what
/// loaded; containerd fails the host when nothing did.
pub fn go_loadable_certs(bytes: &[u8]) -> Vec<Vec<u8>> {
    crate::go::pem::append_certs_from_pem(bytes)
}

/// `go_loadable_certs` for a runtime built with a known Go (`go`): that release's parse
/// rules decide which blocks load (Go 1.23 skips a negative serial Go 1.19 loads). The
/// certificates come back parsed, with what each parse asked of the release, for the
/// runtime's trust pool (and for pools of other releases where the parse holds).
pub fn go_loadable_certs_as(
    bytes: &[u8],
    go: &GoRuntime,
) -> Vec<(crate::go::x509::Certificate, crate::go::version::Answers)> {
    let (release, godebug) = go.rules();
    crate::go::pem::append_certs_from_pem_asking(bytes, release, godebug)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    use time::{Duration, OffsetDateTime};

    struct Pki {
        ca: rcgen::Certificate,
        ca_key: KeyPair,
        other_ca: rcgen::Certificate,
        leaf: rcgen::Certificate,
        expired_ca: rcgen::Certificate,
        future_ca: rcgen::Certificate,
        no_certsign_ca: rcgen::Certificate,
    }

    fn ca_params(cn: &str) -> CertificateParams {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        p
    }

    fn pki() -> Pki {
        let now = OffsetDateTime::now_utc();
        let ca_key = KeyPair::generate().unwrap();
        let ca = ca_params("Test CA").self_signed(&ca_key).unwrap();
        let other_ca = ca_params("Other CA")
            .self_signed(&KeyPair::generate().unwrap())
            .unwrap();
        let mut leaf_params = CertificateParams::new(vec!["harbor.local".to_string()]).unwrap();
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "harbor.local");
        let leaf = leaf_params
            .signed_by(&KeyPair::generate().unwrap(), &ca, &ca_key)
            .unwrap();
        let mut expired = ca_params("Expired CA");
        expired.not_before = now - Duration::days(400);
        expired.not_after = now - Duration::days(30);
        let expired_ca = expired.self_signed(&KeyPair::generate().unwrap()).unwrap();
        let mut future = ca_params("Future CA");
        future.not_before = now + Duration::days(10);
        future.not_after = now + Duration::days(400);
        let future_ca = future.self_signed(&KeyPair::generate().unwrap()).unwrap();
        let mut no_certsign = ca_params("No CertSign CA");
        no_certsign.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let no_certsign_ca = no_certsign
            .self_signed(&KeyPair::generate().unwrap())
            .unwrap();
        Pki {
            ca,
            ca_key,
            other_ca,
            leaf,
            expired_ca,
            future_ca,
            no_certsign_ca,
        }
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    #[test]
    fn sha256_hex_known_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn accepted_inputs() {
        let p = pki();
        let ca = p.ca.pem();
        let other = p.other_ca.pem();
        let crlf = ca.replace('\n', "\r\n");
        let indented = ca.lines().map(|l| format!("  {l}\n")).collect::<String>();
        let crl = "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n";
        let trusted =
            "-----BEGIN TRUSTED CERTIFICATE-----\nAAAA\n-----END TRUSTED CERTIFICATE-----\n";
        let headers = format!(
            "-----BEGIN CERTIFICATE-----\nProc-Type: 4,FOO\n\n{}",
            ca.trim_start_matches("-----BEGIN CERTIFICATE-----\n")
        );
        // (case, bytes, certificates kept, a note that must appear)
        let cases: Vec<(&str, Vec<u8>, usize, Option<&str>)> = vec![
            ("good single", ca.clone().into_bytes(), 1, None),
            (
                "bundle of two",
                cat(&[ca.as_bytes(), other.as_bytes()]),
                2,
                None,
            ),
            (
                "bundle with a duplicate",
                cat(&[ca.as_bytes(), other.as_bytes(), ca.as_bytes()]),
                2,
                Some("duplicates certificate 1"),
            ),
            (
                "BOM",
                cat(&[b"\xEF\xBB\xBF", ca.as_bytes()]),
                1,
                Some("byte-order mark"),
            ),
            (
                "BOM hides the first of two for Go",
                cat(&[b"\xEF\xBB\xBF", ca.as_bytes(), other.as_bytes()]),
                2,
                Some("would load 1 of its 2"),
            ),
            ("CRLF", crlf.clone().into_bytes(), 1, Some("CRLF")),
            (
                "leading junk text",
                cat(&[
                    b"subject=CN = Test CA\nissuer=CN = Test CA\n",
                    ca.as_bytes(),
                ]),
                1,
                Some("2 line(s) of text outside PEM blocks dropped (line 1, 2)"),
            ),
            (
                "text between blocks",
                cat(&[ca.as_bytes(), b"\n# the other one\n", other.as_bytes()]),
                2,
                Some("text outside PEM blocks"),
            ),
            (
                "leading spaces",
                indented.clone().into_bytes(),
                1,
                Some("blanks before the BEGIN line on line 1"),
            ),
            (
                "a CRL block",
                cat(&[crl.as_bytes(), ca.as_bytes()]),
                1,
                Some("\"X509 CRL\" block (line 1) dropped"),
            ),
            (
                "a TRUSTED CERTIFICATE block",
                cat(&[ca.as_bytes(), trusted.as_bytes()]),
                1,
                Some("openssl x509"),
            ),
            (
                "a certificate block with headers",
                cat(&[headers.as_bytes(), other.as_bytes()]),
                1,
                Some("PEM headers"),
            ),
            (
                "expired CA (flagged, not refused)",
                p.expired_ca.pem().into_bytes(),
                1,
                None,
            ),
            (
                "leaf (flagged, not refused)",
                p.leaf.pem().into_bytes(),
                1,
                None,
            ),
            (
                "no trailing newline",
                ca.trim_end().as_bytes().to_vec(),
                1,
                None,
            ),
        ];
        for (case, bytes, want, note) in cases {
            let b = CaBundle::from_pem("/in/ca.pem", &bytes)
                .unwrap_or_else(|e| panic!("{case}: refused: {e}"));
            assert_eq!(b.certificates().len(), want, "{case}");
            assert_eq!(b.source(), "/in/ca.pem");
            if let Some(note) = note {
                assert!(
                    b.notes.iter().any(|n| n.contains(note)),
                    "{case}: no note containing {note:?} in {:?}",
                    b.notes
                );
            } else {
                assert!(b.notes.is_empty(), "{case}: {:?}", b.notes);
            }
            // What is written is what Go would load, whole.
            let ders: Vec<Vec<u8>> = b.certificates().iter().map(|c| c.der.clone()).collect();
            assert_eq!(go_loadable_certs(&b.to_pem()), ders, "{case}");
        }
    }

    #[test]
    fn refused_inputs() {
        let p = pki();
        let ca = p.ca.pem();
        let key = p.ca_key.serialize_pem();
        let block = |label: &str| format!("-----BEGIN {label}-----\nAAAA\n-----END {label}-----\n");
        let truncated = &ca[..ca.len() / 2];
        let bad_der = "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n";
        let bad_b64 = "-----BEGIN CERTIFICATE-----\n!!!!notbase64\n-----END CERTIFICATE-----\n";
        let big = vec![b'A'; MAX_CA_BYTES as usize + 1];
        // (case, bytes, substring of the error)
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            (
                "key alone",
                key.clone().into_bytes(),
                "holds a private key (\"PRIVATE KEY\" block); refusing to install it",
            ),
            (
                "key after a valid cert",
                cat(&[ca.as_bytes(), key.as_bytes()]),
                "holds a private key",
            ),
            (
                "key before a valid cert",
                cat(&[key.as_bytes(), ca.as_bytes()]),
                "holds a private key",
            ),
            (
                "RSA key",
                cat(&[ca.as_bytes(), block("RSA PRIVATE KEY").as_bytes()]),
                "\"RSA PRIVATE KEY\"",
            ),
            (
                "EC key",
                block("EC PRIVATE KEY").into_bytes(),
                "\"EC PRIVATE KEY\"",
            ),
            (
                "encrypted key",
                cat(&[ca.as_bytes(), block("ENCRYPTED PRIVATE KEY").as_bytes()]),
                "\"ENCRYPTED PRIVATE KEY\"",
            ),
            (
                "OPENSSH key",
                cat(&[ca.as_bytes(), block("OPENSSH PRIVATE KEY").as_bytes()]),
                "\"OPENSSH PRIVATE KEY\"",
            ),
            (
                "DSA key",
                block("DSA PRIVATE KEY").into_bytes(),
                "\"DSA PRIVATE KEY\"",
            ),
            (
                "key behind a BOM",
                cat(&[b"\xEF\xBB\xBF", key.as_bytes()]),
                "holds a private key",
            ),
            (
                "indented key",
                format!("   {key}").into_bytes(),
                "holds a private key",
            ),
            (
                "key glued to junk",
                format!("junk{key}").into_bytes(),
                "holds a private key",
            ),
            (
                "garbage",
                b"\x00\xff\x13garbage\x01 bytes".to_vec(),
                "no PEM certificate found; expected",
            ),
            (
                "truncated",
                truncated.as_bytes().to_vec(),
                "PEM block \"CERTIFICATE\" opened on line 1 has no END line",
            ),
            (
                "truncated before a good one",
                cat(&[truncated.as_bytes(), b"\n", p.other_ca.pem().as_bytes()]),
                "has no END line",
            ),
            (
                "DER bytes",
                p.ca.der().to_vec(),
                "looks like DER (binary): convert it with `openssl x509 -inform der",
            ),
            ("empty", Vec::new(), "empty file"),
            ("only whitespace", b" \n\t\n".to_vec(), "empty file"),
            ("only a BOM", b"\xEF\xBB\xBF".to_vec(), "empty file"),
            (
                "only a CRL",
                block("X509 CRL").into_bytes(),
                "no PEM certificate found",
            ),
            (
                "only a trusted certificate",
                block("TRUSTED CERTIFICATE").into_bytes(),
                "no PEM certificate found",
            ),
            (
                "certificate x509-parser cannot parse",
                bad_der.as_bytes().to_vec(),
                "certificate 1 (line 1) cannot be parsed",
            ),
            (
                "bad base64",
                bad_b64.as_bytes().to_vec(),
                "malformed PEM on line 1: the certificate block is not valid base64",
            ),
            (
                "END without BEGIN",
                b"-----END CERTIFICATE-----\n".to_vec(),
                "an END line without a BEGIN line",
            ),
            (
                "mismatched END",
                b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END X509 CRL-----\n".to_vec(),
                "does not close the \"CERTIFICATE\" block",
            ),
            (
                "bad BEGIN line",
                b"-----BEGIN CERTIFICATE\nAAAA\n".to_vec(),
                "a BEGIN line that is not",
            ),
            (
                "over 1 MiB",
                big,
                "1048577 bytes; at most 1048576 (1 MiB) accepted",
            ),
        ];
        for (case, bytes, want) in cases {
            match CaBundle::from_pem("/in/ca.pem", &bytes) {
                Ok(b) => panic!(
                    "{case}: accepted with {} certificates",
                    b.certificates().len()
                ),
                Err(e) => {
                    let msg = e.to_string();
                    assert!(msg.starts_with("CA input /in/ca.pem: "), "{case}: {msg}");
                    assert!(msg.contains(want), "{case}: {msg:?} lacks {want:?}");
                    // Never any key material in the message.
                    assert!(
                        !msg.contains("AAAA") && !msg.contains("MII"),
                        "{case}: {msg}"
                    );
                }
            }
        }
    }

    #[test]
    fn to_pem_is_canonical_and_byte_stable() {
        let p = pki();
        let ca = p.ca.pem();
        let other = p.other_ca.pem();
        let clean = CaBundle::from_pem("a", &cat(&[ca.as_bytes(), other.as_bytes()])).unwrap();
        let messy_input = cat(&[
            b"\xEF\xBB\xBFjunk\r\n",
            ca.replace('\n', "\r\n").as_bytes(),
            b"  ",
            other.as_bytes(),
            ca.as_bytes(),
        ]);
        let messy = CaBundle::from_pem("b", &messy_input).unwrap();
        assert_eq!(clean.to_pem(), messy.to_pem());
        assert_eq!(clean.digest(), messy.digest());
        assert_eq!(clean.digest(), sha256_hex(&clean.to_pem()));
        assert!(clean.same_certificates(&messy));
        let again = CaBundle::from_pem("c", &clean.to_pem()).unwrap();
        assert_eq!(again.to_pem(), clean.to_pem());
        assert!(again.notes.is_empty(), "{:?}", again.notes);
        let text = String::from_utf8(clean.to_pem()).unwrap();
        assert_eq!(text.matches("-----BEGIN CERTIFICATE-----\n").count(), 2);
        assert!(text.ends_with("-----END CERTIFICATE-----\n"));
        for line in text.lines() {
            assert!(line.len() <= 64 || line.starts_with("-----"), "{line}");
        }
        let reversed = CaBundle::from_pem("d", &cat(&[other.as_bytes(), ca.as_bytes()])).unwrap();
        assert!(reversed.same_certificates(&clean));
        assert_ne!(reversed.to_pem(), clean.to_pem(), "input order is kept");
        let only_ca = CaBundle::from_pem("e", ca.as_bytes()).unwrap();
        assert!(!only_ca.same_certificates(&clean));
    }

    #[test]
    fn facts_and_warnings() {
        let p = pki();
        let now = OffsetDateTime::now_utc();
        let ca = CertFacts::from_der(p.ca.der()).unwrap();
        assert_eq!(ca.subject, "CN=Test CA");
        assert_eq!(ca.issuer, "CN=Test CA");
        assert!(ca.is_ca && ca.self_signed && ca.is_valid_at(now));
        assert_eq!(ca.sha256, sha256_hex(p.ca.der()));
        assert!(ca.days_left(now) > 1000);
        let leaf = CertFacts::from_der(p.leaf.der()).unwrap();
        assert!(!leaf.is_ca && !leaf.self_signed);
        assert_eq!(leaf.issuer, "CN=Test CA");
        assert_eq!(
            leaf.not_ca_reason,
            Some("it has no basicConstraints extension")
        );
        let expired = CertFacts::from_der(p.expired_ca.der()).unwrap();
        assert_eq!(expired.days_left(now), -30);
        assert_eq!(
            expired.days_left(expired.not_after + Duration::hours(1)),
            -1
        );
        assert_eq!(expired.days_left(expired.not_after - Duration::hours(1)), 0);
        let cc = expired.to_ca_cert(now);
        assert_eq!(cc.days_left, Some(-30));
        assert_eq!(cc.not_after, report::rfc3339(expired.not_after));
        let chain = leaf.to_chain_cert();
        assert_eq!(
            (chain.subject.as_str(), chain.issuer.as_str()),
            ("CN=harbor.local", "CN=Test CA")
        );
        assert!(CertFacts::from_der(b"\x30\x03\x02\x01\x01").is_err());
        let mut trailing = p.ca.der().to_vec();
        trailing.push(0);
        assert!(CertFacts::from_der(&trailing)
            .unwrap_err()
            .contains("trailing data"));

        // (case, PEM, substring of the one warning expected, or None)
        let cases: Vec<(&str, String, Option<&str>)> = vec![
            ("good CA", p.ca.pem(), None),
            ("expired CA", p.expired_ca.pem(), Some("expired on")),
            (
                "not yet valid",
                p.future_ca.pem(),
                Some("is not valid before"),
            ),
            (
                "leaf",
                p.leaf.pem(),
                Some("is not a CA (it has no basicConstraints extension)"),
            ),
            (
                "CA without keyCertSign",
                p.no_certsign_ca.pem(),
                Some("key usage lacks keyCertSign"),
            ),
        ];
        for (case, pem, want) in cases {
            let b = CaBundle::from_pem(case, pem.as_bytes()).unwrap();
            let w = b.warnings(now);
            match want {
                None => assert!(w.is_empty(), "{case}: {w:?}"),
                Some(s) => {
                    assert_eq!(w.len(), 1, "{case}: {w:?}");
                    assert!(w[0].contains(s), "{case}: {w:?}");
                }
            }
            let summary = b.summary(now);
            assert_eq!(summary.source, case);
            assert_eq!(summary.certificates.len(), 1);
        }
    }

    /// (case, bytes, DERs Go would load)
    type GoCase = (&'static str, Vec<u8>, Vec<Vec<u8>>);

    #[test]
    fn go_loadable_certs_cases() {
        let p = pki();
        let ca = p.ca.pem();
        let other = p.other_ca.pem();
        let (a, b) = (p.ca.der().to_vec(), p.other_ca.der().to_vec());
        let headers = format!(
            "-----BEGIN CERTIFICATE-----\nProc-Type: 4,FOO\n\n{}",
            ca.trim_start_matches("-----BEGIN CERTIFICATE-----\n")
        );
        let bad_der = "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n";
        let trusted = ca.replace("CERTIFICATE", "TRUSTED CERTIFICATE");
        // (case, bytes, DERs Go would load)
        let cases: Vec<GoCase> = vec![
            ("plain", ca.clone().into_bytes(), vec![a.clone()]),
            ("BOM", cat(&[b"\xEF\xBB\xBF", ca.as_bytes()]), vec![]),
            (
                "BOM hides only the first",
                cat(&[b"\xEF\xBB\xBF", ca.as_bytes(), other.as_bytes()]),
                vec![b.clone()],
            ),
            (
                "leading newline",
                cat(&[b"\n", ca.as_bytes()]),
                vec![a.clone()],
            ),
            ("leading spaces", cat(&[b"  ", ca.as_bytes()]), vec![]),
            (
                "two certs",
                cat(&[ca.as_bytes(), other.as_bytes()]),
                vec![a.clone(), b.clone()],
            ),
            (
                "CRLF",
                ca.replace('\n', "\r\n").into_bytes(),
                vec![a.clone()],
            ),
            (
                "junk lines before",
                cat(&[b"subject=x\n", ca.as_bytes()]),
                vec![a.clone()],
            ),
            (
                "junk on the BEGIN line",
                cat(&[b"junk", ca.as_bytes()]),
                vec![],
            ),
            ("headers", headers.into_bytes(), vec![]),
            (
                "not parseable",
                cat(&[bad_der.as_bytes(), other.as_bytes()]),
                vec![b.clone()],
            ),
            ("TRUSTED CERTIFICATE", trusted.into_bytes(), vec![]),
            ("truncated", ca.as_bytes()[..ca.len() - 10].to_vec(), vec![]),
            ("empty", vec![], vec![]),
            ("DER", a.clone(), vec![]),
        ];
        for (case, bytes, want) in cases {
            assert_eq!(go_loadable_certs(&bytes), want, "{case}");
        }
    }

    #[test]
    fn hostile_pem_stays_linear() {
        // 1 MiB of BEGIN lines, with or without one END far away: quadratic in Go's
        // algorithm, must finish promptly here (and load nothing).
        let begins = "-----BEGIN A-----\n".repeat(55_000);
        let with_end = format!("{begins}\n-----END B-----\n");
        for bytes in [begins.as_bytes(), with_end.as_bytes()] {
            assert!(go_loadable_certs(bytes).is_empty());
            assert!(CaBundle::from_pem("x", bytes).is_err());
        }
    }

    #[test]
    fn read_files_dirs_and_links() {
        let p = pki();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("ca.pem"), p.ca.pem()).unwrap();
        std::fs::write(d.join("ca.key"), p.ca_key.serialize_pem()).unwrap();
        std::os::unix::fs::symlink(d.join("ca.pem"), d.join("link.pem")).unwrap();
        std::os::unix::fs::symlink(d.join("ca.key"), d.join("link-to-key.pem")).unwrap();
        std::os::unix::fs::symlink(d.join("nowhere"), d.join("dangling.pem")).unwrap();
        // A mounted Secret: ca.crt -> ..data/ca.crt, ..data -> ..2026_01_01_00_00_00.1
        let secret = d.join("secret");
        let ts = secret.join("..2026_01_01_00_00_00.1");
        std::fs::create_dir_all(&ts).unwrap();
        std::fs::write(ts.join("ca.crt"), p.ca.pem()).unwrap();
        std::fs::write(ts.join("tls.key"), p.ca_key.serialize_pem()).unwrap();
        std::os::unix::fs::symlink("..2026_01_01_00_00_00.1", secret.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/ca.crt", secret.join("ca.crt")).unwrap();
        std::fs::create_dir(d.join("empty-dir")).unwrap();
        // 10 MB, sparse: refused from metadata, never read.
        let huge = std::fs::File::create(d.join("huge.pem")).unwrap();
        huge.set_len(10 * 1024 * 1024).unwrap();

        let ok = |name: &str| {
            let b = CaBundle::read(&d.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(b.certificates().len(), 1, "{name}");
            b
        };
        ok("ca.pem");
        ok("link.pem");
        let s = ok("secret");
        assert_eq!(s.source(), secret.join("ca.crt").display().to_string());

        let cases: Vec<(PathBuf, &str)> = vec![
            (d.join("link-to-key.pem"), "holds a private key"),
            (d.join("ca.key"), "holds a private key"),
            (d.join("empty-dir"), "a directory without ca.crt"),
            (d.join("huge.pem"), "10485760 bytes; at most 1048576"),
            (d.join("missing.pem"), "cannot read it"),
            (d.join("dangling.pem"), "cannot read it"),
            (PathBuf::from("/dev/null"), "not a regular file"),
        ];
        for (path, want) in cases {
            let e = CaBundle::read(&path).unwrap_err().to_string();
            let shown = path.display().to_string();
            assert!(e.starts_with(&format!("CA input {shown}")), "{e}");
            assert!(e.contains(want), "{shown}: {e:?} lacks {want:?}");
        }
    }

    #[test]
    fn read_capped_stops_at_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"12345").unwrap();
        assert_eq!(read_capped(&f, 5).unwrap(), b"12345");
        assert!(matches!(
            read_capped(&f, 4),
            Err(ReadCappedError::TooLarge { size: 5, limit: 4 })
        ));
        assert!(matches!(
            read_capped(dir.path(), 4),
            Err(ReadCappedError::NotAFile)
        ));
    }
}
