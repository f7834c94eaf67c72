//! Go's `encoding/pem.Decode`, `encoding/base64` decoding and the loop of
//! `x509.CertPool.AppendCertsFromPEM` (what docker, containerd and CRI-O run on every
//! `*.crt`), ported so regtrust knows exactly which certificates a Go runtime loads from a
//! file. Pure: bytes in, DER out.

use super::version::{Answers, GoDebug, GoVersion};
use super::x509::{parse_certificate_asking, Certificate};
use base64::Engine as _;

/// The loop of `x509.CertPool.AppendCertsFromPEM` (crypto/x509/cert_pool.go, unchanged from
/// go1.19 to go1.25) of the newest modelled Go: see `append_certs_from_pem_as`. Returns the
/// DERs it would load, in order.
pub fn append_certs_from_pem(bytes: &[u8]) -> Vec<Vec<u8>> {
    append_certs_from_pem_as(bytes, GoVersion::NEWEST, GoDebug::default())
        .into_iter()
        .map(|c| c.raw)
        .collect()
}

/// The loop of `x509.CertPool.AppendCertsFromPEM` as Go `go` with `godebug` runs it: decode
/// each block, skip those that are not `CERTIFICATE` or carry headers, skip certificates
/// that release's `ParseCertificate` refuses (Go 1.23 refuses some that Go 1.19 loads). Go
/// only sees a BEGIN line at the very start of the data or right after a `\n` (a UTF-8 BOM or
/// leading spaces hide the first block). Returns the certificates it would load, in order,
/// parsed (so the caller need not parse them again).
pub fn append_certs_from_pem_as(bytes: &[u8], go: GoVersion, godebug: GoDebug) -> Vec<Certificate> {
    append_certs_from_pem_asking(bytes, go, godebug)
        .into_iter()
        .map(|(c, _)| c)
        .collect()
}

/// `append_certs_from_pem_as`, each certificate with what its parse asked of the release
/// (`x509::parse_certificate_asking`), so another release can take the parse where it holds.
pub fn append_certs_from_pem_asking(
    bytes: &[u8],
    go: GoVersion,
    godebug: GoDebug,
) -> Vec<(Certificate, Answers)> {
    let mut out = Vec::new();
    let ends = GoEnds::new(bytes);
    let mut rest = bytes;
    while !rest.is_empty() {
        let Some((block, next)) = go_pem_decode(rest, &ends) else {
            break;
        };
        rest = next;
        if block.kind != b"CERTIFICATE" || block.has_headers {
            continue;
        }
        if let (Ok(c), asked) = parse_certificate_asking(&block.bytes, go, godebug) {
            out.push((c, asked));
        }
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

pub struct GoBlock<'a> {
    pub kind: &'a [u8],
    pub has_headers: bool,
    pub bytes: Vec<u8>,
}

const PEM_START: &[u8] = b"\n-----BEGIN ";
const PEM_END: &[u8] = b"\n-----END ";
const PEM_EOL: &[u8] = b"-----";

/// Where every `\n-----END ` of the whole input is, found once. Go searches for the END
/// line again from each BEGIN, which is quadratic on a hostile file of BEGIN lines; a
/// lookup here keeps it linear with the same answers.
pub struct GoEnds {
    total: usize,
    at: Vec<usize>,
}

impl GoEnds {
    pub fn new(data: &[u8]) -> GoEnds {
        let at = data
            .windows(PEM_END.len())
            .enumerate()
            .filter(|(_, w)| *w == PEM_END)
            .map(|(i, _)| i)
            .collect();
        GoEnds {
            total: data.len(),
            at,
        }
    }

    /// `find(rest, PEM_END)`, for `rest` a suffix of the data.
    fn find_in(&self, rest: &[u8]) -> Option<usize> {
        let offset = self.total - rest.len();
        let k = self.at.partition_point(|p| *p < offset);
        self.at.get(k).map(|p| p - offset)
    }
}

/// A port of Go's `encoding/pem.Decode` (src/encoding/pem/pem.go): the next block and the
/// rest of the data after it, or None when no further block decodes. `data` is a suffix of
/// the input `ends` was built from.
pub fn go_pem_decode<'a>(data: &'a [u8], ends: &GoEnds) -> Option<(GoBlock<'a>, &'a [u8])> {
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
            match ends.find_in(rest) {
                Some(i) => (i, i + PEM_END.len()),
                // Go would `continue`, but no later block can find an END either.
                None => return None,
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
pub fn go_std_base64(input: &[u8]) -> Result<Vec<u8>, base64::DecodeError> {
    go_base64(input, true)
}

/// Go's `StdEncoding` (`padded`) or `RawStdEncoding` decoding: `\r` and `\n` are skipped,
/// anything else outside the standard alphabet is an error.
pub fn go_base64(input: &[u8], padded: bool) -> Result<Vec<u8>, base64::DecodeError> {
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
