//! The `cause` of an unknown authority (SPEC, Probe verdicts): regtrust's own analysis of a
//! chain Go refused, over the Go port's parsed certificates. Which installed CA has the
//! issuer's name, whether its key signed the chain's top, whether an intermediate is
//! missing. Go says none of this; it lives here, outside `crate::go`, with the rest of the
//! probe's classification.

use crate::ca::sha256_hex;
use crate::go::verify::{check_signature_from, key_signed, VerifyOptions};
use crate::go::x509::{Certificate, KEY_USAGE_CERT_SIGN};

/// A certificate as the report shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFacts {
    /// Go's `pkix.Name.String()` form, e.g. `CN=Harbor CA,O=Example`.
    pub subject: String,
    /// Lowercase hex SHA-256 of the DER.
    pub sha256: String,
}

impl CertFacts {
    fn of(c: &Certificate) -> Self {
        CertFacts {
            subject: c.subject_string(),
            sha256: sha256_hex(&c.raw),
        }
    }
}

/// Why the chain does not reach a trusted CA (SPEC: `cause` of `unknown_authority`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorityCause {
    /// No installed CA has the issuer's name (or could have issued a missing intermediate).
    CaNotInstalled {
        /// The name the chain's top certificate says it was issued by.
        issuer: String,
    },
    /// An installed CA has the issuer's name but another key: the registry's CA was rotated
    /// (or the wrong CA file was installed).
    CaMismatch {
        issuer: String,
        /// The CA the server sent, when it sent its top certificate.
        server_ca: Option<CertFacts>,
        /// The installed CAs with that name.
        installed: Vec<CertFacts>,
    },
    /// The server sent no certificate for its issuer while an installed CA could anchor the
    /// intermediate it should have sent.
    MissingIntermediate {
        issuer: String,
        anchors: Vec<CertFacts>,
    },
    /// The installed CA has the issuer's name and key, but Go refuses the link (the CA may not
    /// sign certificates, or the child is SHA-1 signed): `reason` is Go's text. Wire code
    /// `ca_unusable` (an addition to SPEC's three: the CA is there, Go will not use it).
    CaUnusable { anchor: CertFacts, reason: String },
}

impl AuthorityCause {
    /// The SPEC wire code.
    pub fn code(&self) -> &'static str {
        match self {
            AuthorityCause::CaNotInstalled { .. } => "ca_not_installed",
            AuthorityCause::CaUnusable { .. } => "ca_unusable",
            AuthorityCause::CaMismatch { .. } => "ca_mismatch",
            AuthorityCause::MissingIntermediate { .. } => "missing_intermediate",
        }
    }
}

/// Classify an `unknown_authority`: follow the presented chain from the leaf as far as the
/// server's certificates link up (by name and signature), then compare the top certificate's
/// issuer with the installed CA files. Both sides come as the runtime's Go parsed them (the
/// chain's parse shared by every runtime, the CA files' parse made when they loaded);
/// certificates Go refused are left out by the caller.
///
/// - nothing installed for the host: `ca_not_installed`;
/// - an installed CA has the issuer's name and key but Go refuses the link: `ca_unusable`;
/// - the server sent its leaf only and an installed CA could anchor the intermediate it
///   left out: `missing_intermediate`;
/// - otherwise the installed CAs are other CAs than the one the chain leads to (rotated, or
///   the wrong file): `ca_mismatch`, with the server's top CA when it sent one.
///
/// `opts` is the runtime's (its Go release decides why a link is refused); its server name
/// is not used.
pub fn unknown_authority_cause(
    certs: &[&Certificate],
    cas: &[&Certificate],
    opts: &VerifyOptions<'_>,
) -> AuthorityCause {
    let Some(mut top) = certs.first().copied() else {
        return AuthorityCause::CaNotInstalled {
            issuer: String::new(),
        };
    };
    let mut seen = vec![0usize];
    loop {
        if top.raw_issuer == top.raw_subject {
            break;
        }
        let next = certs.iter().copied().enumerate().find(|(i, c)| {
            !seen.contains(i) && c.raw_subject == top.raw_issuer && key_signed(top, c)
        });
        match next {
            Some((i, c)) => {
                seen.push(i);
                top = c;
            }
            None => break,
        }
    }
    let self_issued = top.raw_issuer == top.raw_subject;
    let issuer = top.issuer_string();
    let same_name: Vec<&Certificate> = cas
        .iter()
        .copied()
        .filter(|ca| ca.raw_subject == top.raw_issuer)
        .collect();
    // An installed CA with the right name and key: Go refused the link for another reason.
    let anchor = same_name.iter().find(|ca| {
        if self_issued {
            ca.public_key == top.public_key
        } else {
            // The key identifiers decide when ring cannot check the signature itself
            // (ECDSA with SHA-1): a rotated CA has a new key, so a new SKI.
            key_signed(top, ca)
                || (!top.authority_key_id.is_empty() && top.authority_key_id == ca.subject_key_id)
        }
    });
    if let Some(ca) = anchor {
        let reason = check_signature_from(top, ca, opts)
            .err()
            .unwrap_or_default();
        return AuthorityCause::CaUnusable {
            anchor: CertFacts::of(ca),
            reason,
        };
    }
    if !same_name.is_empty() {
        return AuthorityCause::CaMismatch {
            issuer,
            server_ca: self_issued.then(|| CertFacts::of(top)),
            installed: same_name.iter().map(|c| CertFacts::of(c)).collect(),
        };
    }
    if cas.is_empty() {
        return AuthorityCause::CaNotInstalled { issuer };
    }
    let top_is_ca = top.basic_constraints_valid && top.is_ca;
    if !self_issued && !top_is_ca {
        // Could an installed CA have issued the intermediate the server did not send?
        let anchors: Vec<CertFacts> = cas
            .iter()
            .copied()
            .filter(|ca| {
                (ca.version < 3 || (ca.basic_constraints_valid && ca.is_ca))
                    && (ca.key_usage == 0 || ca.key_usage & KEY_USAGE_CERT_SIGN != 0)
                    && (!ca.basic_constraints_valid || ca.max_path_len != 0)
            })
            .map(CertFacts::of)
            .collect();
        if !anchors.is_empty() {
            return AuthorityCause::MissingIntermediate { issuer, anchors };
        }
    }
    // The server's chain leads to another CA than any installed for the host. (A chain that
    // stops at an intermediate whose own issuer is also missing reads as this too.)
    AuthorityCause::CaMismatch {
        issuer,
        server_ca: (self_issued || top_is_ca).then(|| CertFacts::of(top)),
        installed: cas.iter().copied().map(CertFacts::of).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::go::pki::{Key, Spec};
    use crate::go::x509::parse_certificate_as;
    use crate::go::GoVersion;
    use time::OffsetDateTime;

    const CONSTRAINT_VIOLATION: &str =
        "x509: invalid signature: parent certificate cannot sign this kind of certificate";

    fn facts(i: &crate::go::pki::Issued) -> CertFacts {
        CertFacts::of(
            &parse_certificate_as(&i.der(), GoVersion::GO1_19, Default::default()).unwrap(),
        )
    }

    fn go(minor: u32) -> VerifyOptions<'static> {
        VerifyOptions::new("", OffsetDateTime::now_utc()).with_go(GoVersion::new(minor, 0))
    }

    /// The cause over DERs, each parsed as `opts`' Go parses it (refused ones left out).
    fn cause_as(
        presented: &[impl AsRef<[u8]>],
        installed: &[impl AsRef<[u8]>],
        opts: &VerifyOptions<'_>,
    ) -> AuthorityCause {
        fn parse_all(ders: &[impl AsRef<[u8]>], opts: &VerifyOptions<'_>) -> Vec<Certificate> {
            ders.iter()
                .filter_map(|d| {
                    parse_certificate_as(d.as_ref(), opts.go.modelled(), opts.godebug).ok()
                })
                .collect()
        }
        let (p, i) = (parse_all(presented, opts), parse_all(installed, opts));
        let p: Vec<&Certificate> = p.iter().collect();
        let i: Vec<&Certificate> = i.iter().collect();
        unknown_authority_cause(&p, &i, opts)
    }

    fn cause(presented: &[Vec<u8>], installed: &[Vec<u8>]) -> AuthorityCause {
        cause_as(presented, installed, &go(19))
    }

    #[test]
    fn unknown_authority_causes() {
        let now = OffsetDateTime::now_utc();
        let root = Spec::ca("Harbor CA", now).self_signed(Key::ecdsa());
        let rotated = Spec::ca("Harbor CA", now).self_signed(Key::ecdsa());
        let unrelated = Spec::ca("Other CA", now).self_signed(Key::ecdsa());
        let leaf = Spec::leaf("h.test", &["h.test"], now).signed_by(Key::ecdsa(), &rotated);
        let inter = Spec::ca("Harbor Issuing CA", now).signed_by(Key::ecdsa(), &root);
        let leaf_i = Spec::leaf("h.test", &["h.test"], now).signed_by(Key::ecdsa(), &inter);
        let mut s = Spec::ca("Harbor CA", now);
        s.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        let no_kcs = s.self_signed(Key::ecdsa());
        let leaf_nokcs = Spec::leaf("h.test", &["h.test"], now).signed_by(Key::ecdsa(), &no_kcs);
        let mut s = Spec::ca("Leaf Only CA", now);
        s.ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
        let pl0 = s.self_signed(Key::ecdsa());

        // The leaf was issued by the new "Harbor CA"; the node has the old one.
        let got = cause(&[leaf.der()], &[root.der(), unrelated.der()]);
        assert_eq!(
            got,
            AuthorityCause::CaMismatch {
                issuer: "CN=Harbor CA".into(),
                server_ca: None,
                installed: vec![facts(&root)],
            }
        );
        assert_eq!(got.code(), "ca_mismatch");
        // The server also sends its (new) CA: both sides have a fingerprint.
        let got = cause(&[leaf.der(), rotated.der()], &[root.der()]);
        assert_eq!(
            got,
            AuthorityCause::CaMismatch {
                issuer: "CN=Harbor CA".into(),
                server_ca: Some(facts(&rotated)),
                installed: vec![facts(&root)],
            }
        );
        // Leaf only, issued by an intermediate; the installed root could anchor it.
        let got = cause(&[leaf_i.der()], &[root.der()]);
        assert_eq!(
            got,
            AuthorityCause::MissingIntermediate {
                issuer: "CN=Harbor Issuing CA".into(),
                anchors: vec![facts(&root)],
            }
        );
        assert_eq!(got.code(), "missing_intermediate");
        // Nothing installed for the host.
        let none: [Vec<u8>; 0] = [];
        let got = cause(&[leaf_i.der()], &none);
        assert_eq!(
            got,
            AuthorityCause::CaNotInstalled {
                issuer: "CN=Harbor Issuing CA".into()
            }
        );
        assert_eq!(got.code(), "ca_not_installed");
        // Only a CA that may not have intermediates: another CA than the chain's.
        let got = cause(&[leaf_i.der()], &[pl0.der()]);
        assert_eq!(
            got,
            AuthorityCause::CaMismatch {
                issuer: "CN=Harbor Issuing CA".into(),
                server_ca: None,
                installed: vec![facts(&pl0)],
            }
        );
        // The server sends leaf + intermediate, the node has an unrelated CA: not a missing
        // intermediate but another CA, both sides named.
        let got = cause(&[leaf_i.der(), inter.der()], &[unrelated.der()]);
        assert_eq!(
            got,
            AuthorityCause::CaMismatch {
                issuer: "CN=Harbor CA".into(),
                server_ca: Some(facts(&inter)),
                installed: vec![facts(&unrelated)],
            }
        );
        // A self-signed server certificate, another CA installed.
        let got = cause(&[unrelated.der()], &[root.der()]);
        assert_eq!(
            got,
            AuthorityCause::CaMismatch {
                issuer: "CN=Other CA".into(),
                server_ca: Some(facts(&unrelated)),
                installed: vec![facts(&root)],
            }
        );
        // The right CA is installed but may not sign certificates (no keyCertSign).
        let got = cause(&[leaf_nokcs.der()], &[no_kcs.der()]);
        assert_eq!(
            got,
            AuthorityCause::CaUnusable {
                anchor: facts(&no_kcs),
                reason: CONSTRAINT_VIOLATION.into(),
            }
        );
        assert_eq!(got.code(), "ca_unusable");
        // The installed CA signed the leaf, with SHA-1: same CA, refused by Go.
        let tmp = crate::go::pki::TempDir::new();
        let rsa_ca = Spec::ca("Harbor RSA CA", now).self_signed(Key::rsa(2048));
        let (ca_crt, ca_key) = rsa_ca.write(&tmp, "ca");
        let leaf_key = Key::ecdsa().write_pem(&tmp, "leaf");
        let (_, sha1_leaf) = tmp.openssl_cert(
            "leaf",
            &leaf_key,
            "/CN=h.test",
            Some((&ca_crt, &ca_key)),
            "sha1",
            30,
            1,
            &["subjectAltName=DNS:h.test"],
        );
        let got = cause_as(&[&sha1_leaf], &[rsa_ca.der()], &go(19));
        assert_eq!(
            got,
            AuthorityCause::CaUnusable {
                anchor: facts(&rsa_ca),
                reason: "x509: cannot verify signature: insecure algorithm SHA1-RSA (temporarily override with GODEBUG=x509sha1=1)".into(),
            }
        );
        // Go 1.24 no longer offers the override.
        let got = cause_as(&[&sha1_leaf], &[rsa_ca.der()], &go(24));
        assert!(
            matches!(&got, AuthorityCause::CaUnusable { reason, .. }
                if reason == "x509: cannot verify signature: insecure algorithm SHA1-RSA"),
            "{got:?}"
        );
        // Hostile input: garbage on both sides.
        let got = cause(&[b"junk".to_vec()], &[b"junk".to_vec()]);
        assert_eq!(got.code(), "ca_not_installed");
        let got = cause(&[b"junk".to_vec()], &[root.der()]);
        assert_eq!(got.code(), "ca_not_installed");
    }

    #[test]
    fn facts_are_sha256_of_der() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
