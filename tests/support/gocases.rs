//! The Go-semantics verifier's case table: one chain per row of the divergence list
//! (semantics-trust.md §5.3) and per Go message of §4.2, each with Go 1.19's exact result.
//! The library's unit tests check regtrust's verifier against `go`; the oracle test
//! (`tests/goverify_go.rs`) checks real Go against the same `go`, so the two agree byte
//! for byte. PKI is made at test time (rcgen, and openssl where rcgen cannot).

#![allow(dead_code)]

use super::pki::*;
use rcgen::{
    BasicConstraints, CidrSubnet, ExtendedKeyUsagePurpose as Eku, GeneralSubtree, IsCa,
    KeyUsagePurpose as Ku, NameConstraints, SanType,
};
use time::OffsetDateTime;

/// What regtrust's verifier says compared with Go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ours {
    SameAsGo,
    /// A signature ring cannot check (ECDSA with SHA-512): regtrust says it cannot decide.
    Undecidable,
}

pub struct Case {
    pub name: String,
    /// The row of semantics-trust.md §5.3 (or §4.2) this case pins.
    pub row: &'static str,
    pub presented: Vec<Vec<u8>>,
    pub roots: Vec<Vec<u8>>,
    pub server_name: String,
    pub now: OffsetDateTime,
    pub allow_sha1: bool,
    /// Go's result: `None` = verified, else its exact error text.
    pub go: Option<String>,
    /// The verdict code regtrust must give.
    pub verdict: &'static str,
    pub ours: Ours,
}

const HOST: &str = "registry.test";
const UA: &str = "x509: certificate signed by unknown authority";
const CONSTRAINT: &str =
    "x509: invalid signature: parent certificate cannot sign this kind of certificate";

fn ua_hint(err: &str, name: &str) -> String {
    format!("{UA} (possibly because of {err:?} while trying to verify candidate authority certificate {name:?})")
}

fn expired(now: OffsetDateTime, when: &str, t: OffsetDateTime) -> String {
    format!(
        "x509: certificate has expired or is not yet valid: current time {} is {when} {}",
        rfc3339(now),
        rfc3339(t)
    )
}

fn dns(name: &str) -> SanType {
    SanType::DnsName(name.try_into().expect("ia5"))
}

fn ip(s: &str) -> SanType {
    SanType::IpAddress(s.parse().expect("ip"))
}

struct Table {
    now: OffsetDateTime,
    cases: Vec<Case>,
}

impl Table {
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        name: &str,
        row: &'static str,
        presented: Vec<Vec<u8>>,
        roots: Vec<Vec<u8>>,
        server_name: &str,
        go: Option<String>,
        verdict: &'static str,
    ) -> &mut Case {
        self.cases.push(Case {
            name: name.into(),
            row,
            presented,
            roots,
            server_name: server_name.into(),
            now: self.now,
            allow_sha1: false,
            go,
            verdict,
            ours: Ours::SameAsGo,
        });
        self.cases.last_mut().expect("just pushed")
    }
}

/// Build every case. Slow-ish (RSA keys from openssl): build once per test binary.
pub fn cases() -> Vec<Case> {
    let start = OffsetDateTime::now_utc();
    let now = at(start, 3600);
    let tmp = TempDir::new();
    let mut t = Table {
        now,
        cases: Vec::new(),
    };

    let root = Spec::ca("Regtrust Test Root", now).self_signed(Key::ecdsa());
    let leaf = Spec::leaf(HOST, &[HOST], now).signed_by(Key::ecdsa(), &root);
    let other_root = Spec::ca("Some Other Root", now).self_signed(Key::ecdsa());

    // --- the basics ---------------------------------------------------------------------
    t.add(
        "good",
        "-",
        vec![leaf.der()],
        vec![root.der()],
        HOST,
        None,
        "ok",
    );
    t.add(
        "ca not installed",
        "D23",
        vec![leaf.der()],
        vec![other_root.der()],
        HOST,
        Some(UA.into()),
        "unknown_authority",
    );
    t.add(
        "unparsable pool entries are skipped",
        "§6.1",
        vec![leaf.der()],
        vec![b"not a certificate".to_vec(), vec![], root.der()],
        HOST,
        None,
        "ok",
    );
    t.add(
        "no roots at all",
        "§4.2",
        vec![leaf.der()],
        vec![],
        HOST,
        Some(UA.into()),
        "unknown_authority",
    );

    // --- rotated CA: a candidate with the right name and another key ----------------------
    let old_root = Spec::ca("Regtrust Test Root", now).self_signed(Key::ecdsa());
    t.add(
        "rotated ECDSA CA",
        "§4.2 hint",
        vec![leaf.der()],
        vec![old_root.der()],
        HOST,
        Some(ua_hint(
            "x509: ECDSA verification failure",
            "Regtrust Test Root",
        )),
        "unknown_authority",
    );
    t.add(
        "old and new CA both installed",
        "§4.2 hint",
        vec![leaf.der()],
        vec![old_root.der(), root.der()],
        HOST,
        None,
        "ok",
    );
    let rsa_root = Spec::ca("Regtrust RSA Root", now).self_signed(Key::rsa(2048));
    let rsa_leaf = Spec::leaf(HOST, &[HOST], now).signed_by(Key::ecdsa(), &rsa_root);
    let rsa_old = Spec::ca("Regtrust RSA Root", now).self_signed(Key::rsa(2048));
    t.add(
        "RSA-signed chain",
        "-",
        vec![rsa_leaf.der()],
        vec![rsa_root.der()],
        HOST,
        None,
        "ok",
    );
    t.add(
        "rotated RSA CA",
        "§4.2 hint",
        vec![rsa_leaf.der()],
        vec![rsa_old.der()],
        HOST,
        Some(ua_hint(
            "crypto/rsa: verification error",
            "Regtrust RSA Root",
        )),
        "unknown_authority",
    );
    let ed_root = Spec::ca("Regtrust Ed25519 Root", now).self_signed(Key::ed25519());
    let ed_leaf = Spec::leaf(HOST, &[HOST], now).signed_by(Key::ed25519(), &ed_root);
    let ed_old = Spec::ca("Regtrust Ed25519 Root", now).self_signed(Key::ed25519());
    t.add(
        "Ed25519 chain",
        "-",
        vec![ed_leaf.der()],
        vec![ed_root.der()],
        HOST,
        None,
        "ok",
    );
    t.add(
        "rotated Ed25519 CA",
        "§4.2 hint",
        vec![ed_leaf.der()],
        vec![ed_old.der()],
        HOST,
        Some(ua_hint(
            "x509: Ed25519 verification failure",
            "Regtrust Ed25519 Root",
        )),
        "unknown_authority",
    );
    t.add(
        "ECDSA key where the signature says RSA",
        "§4.2 hint",
        vec![rsa_leaf.der()],
        vec![{
            let mut s = Spec::ca("Regtrust RSA Root", now);
            s.serial = 2;
            s.self_signed(Key::ecdsa()).der()
        }],
        HOST,
        Some(ua_hint(
            "x509: signature algorithm specifies an RSA public key, but have public key of type *ecdsa.PublicKey",
            "Regtrust RSA Root",
        )),
        "unknown_authority",
    );

    // --- validity ------------------------------------------------------------------------
    let mut s = Spec::leaf(HOST, &[HOST], now);
    s.not_before = at(now, -10 * DAY);
    s.not_after = at(now, -DAY);
    let expired_leaf = s.signed_by(Key::ecdsa(), &root);
    t.add(
        "expired leaf",
        "D26",
        vec![expired_leaf.der()],
        vec![root.der()],
        HOST,
        Some(expired(now, "after", s.not_after)),
        "expired",
    );
    let mut s = Spec::leaf(HOST, &[HOST], now);
    s.not_before = at(now, DAY);
    s.not_after = at(now, 10 * DAY);
    let future_leaf = s.signed_by(Key::ecdsa(), &root);
    t.add(
        "not yet valid leaf",
        "§4.2",
        vec![future_leaf.der()],
        vec![root.der()],
        HOST,
        Some(expired(now, "before", s.not_before)),
        "expired",
    );
    let mut s = Spec::ca("Regtrust Expired Root", now);
    s.not_before = at(now, -100 * DAY);
    s.not_after = at(now, -DAY);
    let expired_root = s.self_signed(Key::ecdsa());
    let leaf_under_expired = Spec::leaf(HOST, &[HOST], now).signed_by(Key::ecdsa(), &expired_root);
    t.add(
        "expired root",
        "D8",
        vec![leaf_under_expired.der()],
        vec![expired_root.der()],
        HOST,
        Some(expired(now, "after", s.not_after)),
        "expired",
    );
    let mut s = Spec::ca("Regtrust Future Root", now);
    s.not_before = at(now, DAY);
    let future_root = s.self_signed(Key::ecdsa());
    let leaf_under_future = Spec::leaf(HOST, &[HOST], now).signed_by(Key::ecdsa(), &future_root);
    t.add(
        "not yet valid root",
        "D8",
        vec![leaf_under_future.der()],
        vec![future_root.der()],
        HOST,
        Some(expired(now, "before", s.not_before)),
        "expired",
    );

    // --- hostnames -----------------------------------------------------------------------
    let wrong = Spec::leaf("other.test", &["other.test"], now).signed_by(Key::ecdsa(), &root);
    t.add(
        "wrong host",
        "§4.2",
        vec![wrong.der()],
        vec![root.der()],
        HOST,
        Some("x509: certificate is valid for other.test, not registry.test".into()),
        "hostname_mismatch",
    );
    let two = Spec::leaf("a.test", &["a.test", "b.test"], now).signed_by(Key::ecdsa(), &root);
    t.add(
        "wrong host, two SANs",
        "§4.2",
        vec![two.der()],
        vec![root.der()],
        HOST,
        Some("x509: certificate is valid for a.test, b.test, not registry.test".into()),
        "hostname_mismatch",
    );
    let cn_only = Spec::leaf(HOST, &[], now).signed_by(Key::ecdsa(), &root);
    t.add(
        "CN-only leaf",
        "D1",
        vec![cn_only.der()],
        vec![root.der()],
        HOST,
        Some("x509: certificate relies on legacy Common Name field, use SANs instead".into()),
        "legacy_common_name",
    );
    let cn_other = Spec::leaf("other.test", &[], now).signed_by(Key::ecdsa(), &root);
    t.add(
        "CN-only leaf, CN for another host",
        "§4.2",
        vec![cn_other.der()],
        vec![root.der()],
        HOST,
        Some(
            "x509: certificate is not valid for any names, but wanted to match registry.test"
                .into(),
        ),
        "hostname_mismatch",
    );
    t.add(
        "IP host without IP SANs",
        "D22",
        vec![leaf.der()],
        vec![root.der()],
        "127.0.0.1",
        Some("x509: cannot validate certificate for 127.0.0.1 because it doesn't contain any IP SANs".into()),
        "hostname_mismatch",
    );
    let mut s = Spec::leaf(HOST, &[HOST], now);
    s.sans.push(ip("127.0.0.1"));
    s.sans.push(ip("::1"));
    let ip_leaf = s.signed_by(Key::ecdsa(), &root);
    t.add(
        "IP host with IP SAN",
        "D22",
        vec![ip_leaf.der()],
        vec![root.der()],
        "127.0.0.1",
        None,
        "ok",
    );
    t.add(
        "bracketed IPv6 host with IP SAN",
        "D22",
        vec![ip_leaf.der()],
        vec![root.der()],
        "[::1]",
        None,
        "ok",
    );
    t.add(
        "IP host not among IP SANs",
        "D22",
        vec![ip_leaf.der()],
        vec![root.der()],
        "10.0.0.5",
        Some("x509: certificate is valid for 127.0.0.1, ::1, not 10.0.0.5".into()),
        "hostname_mismatch",
    );
    t.add(
        "bracketed IPv6 host without IP SANs",
        "D22",
        vec![leaf.der()],
        vec![root.der()],
        "[::1]",
        Some(
            "x509: cannot validate certificate for ::1 because it doesn't contain any IP SANs"
                .into(),
        ),
        "hostname_mismatch",
    );
    let mut s = Spec::leaf(HOST, &[], now);
    s.sans = vec![ip("::ffff:127.0.0.1"), ip("2001:db8::1")];
    let mapped = s.signed_by(Key::ecdsa(), &root);
    t.add(
        "IPv4 host against an IPv4-mapped IPv6 SAN",
        "D22",
        vec![mapped.der()],
        vec![root.der()],
        "127.0.0.1",
        None,
        "ok",
    );
    t.add(
        "IP SANs printed the way Go prints them",
        "D22",
        vec![mapped.der()],
        vec![root.der()],
        "10.0.0.5",
        Some("x509: certificate is valid for 127.0.0.1, 2001:db8::1, not 10.0.0.5".into()),
        "hostname_mismatch",
    );
    t.add(
        "DNS host against IP SANs only",
        "D22",
        vec![mapped.der()],
        vec![root.der()],
        HOST,
        Some(
            "x509: certificate is not valid for any names, but wanted to match registry.test"
                .into(),
        ),
        "hostname_mismatch",
    );
    let cn_ip = Spec::leaf("10.0.0.5", &[], now).signed_by(Key::ecdsa(), &root);
    t.add(
        "IP host, CN-only leaf with that IP",
        "D1",
        vec![cn_ip.der()],
        vec![root.der()],
        "10.0.0.5",
        Some("x509: certificate relies on legacy Common Name field, use SANs instead".into()),
        "legacy_common_name",
    );
    let wild = Spec::leaf("*.test", &["*.test"], now).signed_by(Key::ecdsa(), &root);
    t.add(
        "wildcard matches one label",
        "-",
        vec![wild.der()],
        vec![root.der()],
        HOST,
        None,
        "ok",
    );
    t.add(
        "wildcard does not match two labels",
        "-",
        vec![wild.der()],
        vec![root.der()],
        "a.registry.test",
        Some("x509: certificate is valid for *.test, not a.registry.test".into()),
        "hostname_mismatch",
    );
    t.add(
        "host case and trailing dot",
        "-",
        vec![leaf.der()],
        vec![root.der()],
        "Registry.TEST.",
        None,
        "ok",
    );
    let under =
        Spec::leaf("my_registry.test", &["my_registry.test"], now).signed_by(Key::ecdsa(), &root);
    t.add(
        "underscore in host",
        "D21",
        vec![under.der()],
        vec![root.der()],
        "my_registry.test",
        None,
        "ok",
    );

    // Go's matching rules, one SAN each: (pattern, host, matches).
    let rules = [
        ("registry.test", "REGISTRY.test", true),
        ("REGISTRY.TEST", "registry.test", true),
        ("registry.test", "registry.test.", true),
        // a pattern keeps its trailing dot, is no valid hostname, so only matches exactly
        ("registry.test.", "registry.test", false),
        ("registry.test.", "registry.test.", true),
        ("*.registry.test", "registry.test", false),
        ("r*.test", "registry.test", false),
        ("*", "registry", true),
        ("*.test", "-bad.test", false),
        ("-bad.test", "-bad.test", true),
        ("a..b.test", "a..b.test", true),
    ];
    for (i, (pattern, host, matches)) in rules.into_iter().enumerate() {
        let mut s = Spec::leaf(pattern, &[pattern], now);
        s.serial = 200 + i as u64;
        let l = s.signed_by(Key::ecdsa(), &root);
        let go =
            (!matches).then(|| format!("x509: certificate is valid for {pattern}, not {host}"));
        let verdict = if matches { "ok" } else { "hostname_mismatch" };
        t.add(
            &format!("SAN {pattern:?} vs host {host:?}"),
            "§4.1",
            vec![l.der()],
            vec![root.der()],
            host,
            go,
            verdict,
        );
    }

    // --- error order ---------------------------------------------------------------------
    let mut s = Spec::leaf("other.test", &["other.test"], now);
    s.not_before = at(now, -10 * DAY);
    s.not_after = at(now, -DAY);
    let all_bad = s.signed_by(Key::ecdsa(), &root);
    t.add(
        "expired + wrong name + unknown CA: expiry wins",
        "D26",
        vec![all_bad.der()],
        vec![other_root.der()],
        HOST,
        Some(expired(now, "after", s.not_after)),
        "expired",
    );
    t.add(
        "wrong name + unknown CA: hostname wins",
        "D25",
        vec![wrong.der()],
        vec![other_root.der()],
        HOST,
        Some("x509: certificate is valid for other.test, not registry.test".into()),
        "hostname_mismatch",
    );
    t.add(
        "expired + unknown CA",
        "D26",
        vec![expired_leaf.der()],
        vec![other_root.der()],
        HOST,
        Some(expired(now, "after", at(now, -DAY))),
        "expired",
    );

    // --- intermediates -------------------------------------------------------------------
    let inter = Spec::ca("Regtrust Intermediate", now).signed_by(Key::ecdsa(), &root);
    let leaf_i = Spec::leaf(HOST, &[HOST], now).signed_by(Key::ecdsa(), &inter);
    t.add(
        "missing intermediate",
        "D23",
        vec![leaf_i.der()],
        vec![root.der()],
        HOST,
        Some(UA.into()),
        "unknown_authority",
    );
    t.add(
        "intermediate served",
        "-",
        vec![leaf_i.der(), inter.der()],
        vec![root.der()],
        HOST,
        None,
        "ok",
    );
    t.add(
        "intermediate in the CA file",
        "D5",
        vec![leaf_i.der()],
        vec![inter.der()],
        HOST,
        None,
        "ok",
    );
    let mut s = Spec::ca("Regtrust Expired Intermediate", now);
    s.not_before = at(now, -100 * DAY);
    s.not_after = at(now, -DAY);
    let inter_exp = s.signed_by(Key::ecdsa(), &root);
    let leaf_ie = Spec::leaf(HOST, &[HOST], now).signed_by(Key::ecdsa(), &inter_exp);
    t.add(
        "expired intermediate",
        "D9",
        vec![leaf_ie.der(), inter_exp.der()],
        vec![root.der()],
        HOST,
        Some(expired(now, "after", s.not_after)),
        "expired",
    );
    let mut s = Spec::ca("Regtrust NoBC Intermediate", now);
    s.ca = IsCa::NoCa;
    let inter_nobc = s.signed_by(Key::ecdsa(), &root);
    let leaf_nobc = Spec::leaf(HOST, &[HOST], now).signed_by(Key::ecdsa(), &inter_nobc);
    t.add(
        "v3 intermediate without basicConstraints",
        "D7",
        vec![leaf_nobc.der(), inter_nobc.der()],
        vec![root.der()],
        HOST,
        Some(ua_hint(CONSTRAINT, "Regtrust NoBC Intermediate")),
        "unknown_authority",
    );
    // pathLen 0 on the root, one intermediate below it.
    let mut s = Spec::ca("Regtrust PathLen0 Root", now);
    s.ca = IsCa::Ca(BasicConstraints::Constrained(0));
    let root_pl0 = s.self_signed(Key::ecdsa());
    let inter_pl0 =
        Spec::ca("Regtrust PathLen Intermediate", now).signed_by(Key::ecdsa(), &root_pl0);
    let leaf_pl0 = Spec::leaf(HOST, &[HOST], now).signed_by(Key::ecdsa(), &inter_pl0);
    t.add(
        "pathLen violation",
        "§4.2",
        vec![leaf_pl0.der(), inter_pl0.der()],
        vec![root_pl0.der()],
        HOST,
        Some("x509: too many intermediates for path length constraint".into()),
        "tls_error",
    );
    // Seven intermediates: Go has no depth limit (webpki stops at six).
    let mut chain = vec![];
    let mut issuer = Spec::ca("Deep Root", now).self_signed(Key::ecdsa());
    let deep_root = issuer.der();
    for i in 0..7 {
        let next =
            Spec::ca(&format!("Deep Intermediate {i}"), now).signed_by(Key::ecdsa(), &issuer);
        chain.push(next.der());
        issuer = next;
    }
    let deep_leaf = Spec::leaf(HOST, &[HOST], now).signed_by(Key::ecdsa(), &issuer);
    chain.reverse();
    let mut presented = vec![deep_leaf.der()];
    presented.extend(chain);
    t.add(
        "seven intermediates",
        "D28",
        presented,
        vec![deep_root],
        HOST,
        None,
        "ok",
    );

    // --- pinned leaves -------------------------------------------------------------------
    let mut s = Spec::leaf(HOST, &[HOST], now);
    s.ca = IsCa::Ca(BasicConstraints::Unconstrained);
    s.key_usages = vec![Ku::DigitalSignature, Ku::KeyCertSign];
    let ss_ca = s.self_signed(Key::ecdsa());
    t.add(
        "self-signed CA:TRUE leaf pinned as the CA",
        "D2",
        vec![ss_ca.der()],
        vec![ss_ca.der()],
        HOST,
        None,
        "ok",
    );
    t.add(
        "self-signed CA:TRUE leaf not pinned",
        "D2",
        vec![ss_ca.der()],
        vec![root.der()],
        HOST,
        Some(UA.into()),
        "unknown_authority",
    );
    let mut s = Spec::leaf(HOST, &[HOST], now);
    s.ca = IsCa::NoCa;
    let ss_plain = s.self_signed(Key::ecdsa());
    t.add(
        "self-signed leaf without basicConstraints pinned",
        "D3",
        vec![ss_plain.der()],
        vec![ss_plain.der()],
        HOST,
        None,
        "ok",
    );
    t.add(
        "pinned non-self-signed leaf",
        "D4",
        vec![leaf.der()],
        vec![leaf.der()],
        HOST,
        None,
        "ok",
    );
    t.add(
        "pinned leaf, wrong host: hostname first",
        "D4",
        vec![wrong.der()],
        vec![wrong.der()],
        HOST,
        Some("x509: certificate is valid for other.test, not registry.test".into()),
        "hostname_mismatch",
    );
    t.add(
        "pinned leaf, expired",
        "D4",
        vec![expired_leaf.der()],
        vec![expired_leaf.der()],
        HOST,
        Some(expired(now, "after", at(now, -DAY))),
        "expired",
    );

    // --- CA shape (CheckSignatureFrom gates) ---------------------------------------------
    let mut s = Spec::ca("Regtrust NoKeyCertSign Root", now);
    s.key_usages = vec![Ku::DigitalSignature, Ku::CrlSign];
    let root_nokcs = s.self_signed(Key::ecdsa());
    let leaf_nokcs = Spec::leaf(HOST, &[HOST], now).signed_by(Key::ecdsa(), &root_nokcs);
    t.add(
        "CA without keyCertSign",
        "D20",
        vec![leaf_nokcs.der()],
        vec![root_nokcs.der()],
        HOST,
        Some(ua_hint(CONSTRAINT, "Regtrust NoKeyCertSign Root")),
        "unknown_authority",
    );
    let mut s = Spec::ca("Regtrust NoBC Root", now);
    s.ca = IsCa::NoCa;
    let root_nobc = s.self_signed(Key::ecdsa());
    let leaf_rnobc = Spec::leaf(HOST, &[HOST], now).signed_by(Key::ecdsa(), &root_nobc);
    t.add(
        "v3 root without basicConstraints",
        "D29",
        vec![leaf_rnobc.der()],
        vec![root_nobc.der()],
        HOST,
        Some(ua_hint(CONSTRAINT, "Regtrust NoBC Root")),
        "unknown_authority",
    );
    let mut s = Spec::ca("Regtrust CAFalse Root", now);
    s.ca = IsCa::ExplicitNoCa;
    let root_caf = s.self_signed(Key::ecdsa());
    let leaf_caf = Spec::leaf(HOST, &[HOST], now).signed_by(Key::ecdsa(), &root_caf);
    t.add(
        "root with CA:FALSE",
        "D29",
        vec![leaf_caf.der()],
        vec![root_caf.der()],
        HOST,
        Some(ua_hint(CONSTRAINT, "Regtrust CAFalse Root")),
        "unknown_authority",
    );
    // Hint names: the first O when there is no CN, else the serial.
    let mut s = Spec::ca("unused", now);
    s.cn = None;
    s.org = Some("Regtrust Org".into());
    s.key_usages = vec![Ku::DigitalSignature];
    let root_o = s.self_signed(Key::ecdsa());
    let leaf_o = Spec::leaf(HOST, &[HOST], now).signed_by(Key::ecdsa(), &root_o);
    t.add(
        "hint names the first O",
        "§4.2",
        vec![leaf_o.der()],
        vec![root_o.der()],
        HOST,
        Some(ua_hint(CONSTRAINT, "Regtrust Org")),
        "unknown_authority",
    );
    let mut s = Spec::ca("unused", now);
    s.cn = None;
    s.org = None;
    s.sans = vec![dns("ca.test")];
    s.serial = 4242;
    s.key_usages = vec![Ku::DigitalSignature];
    let root_serial = s.self_signed(Key::ecdsa());
    let leaf_serial = Spec::leaf(HOST, &[HOST], now).signed_by(Key::ecdsa(), &root_serial);
    t.add(
        "hint names the serial",
        "§4.2",
        vec![leaf_serial.der()],
        vec![root_serial.der()],
        HOST,
        Some(ua_hint(CONSTRAINT, "serial:4242")),
        "unknown_authority",
    );

    // --- extensions ----------------------------------------------------------------------
    // certificatePolicies { anyPolicy }, critical: Go parses it, webpki refuses.
    let policies = vec![0x30, 0x08, 0x30, 0x06, 0x06, 0x04, 0x55, 0x1d, 0x20, 0x00];
    let mut s = Spec::leaf(HOST, &[HOST], now);
    s.custom.push(ext(&[2, 5, 29, 32], policies.clone(), true));
    let leaf_pol = s.signed_by(Key::ecdsa(), &root);
    t.add(
        "critical certificatePolicies on the leaf",
        "D14",
        vec![leaf_pol.der()],
        vec![root.der()],
        HOST,
        None,
        "ok",
    );
    let mut s = Spec::ca("Regtrust Policy Intermediate", now);
    s.custom.push(ext(&[2, 5, 29, 32], policies, true));
    let inter_pol = s.signed_by(Key::ecdsa(), &root);
    let leaf_ipol = Spec::leaf(HOST, &[HOST], now).signed_by(Key::ecdsa(), &inter_pol);
    t.add(
        "critical certificatePolicies on an intermediate",
        "D14",
        vec![leaf_ipol.der(), inter_pol.der()],
        vec![root.der()],
        HOST,
        None,
        "ok",
    );
    // policyConstraints { requireExplicitPolicy 0 } and inhibitAnyPolicy 0, critical: Go 1.19
    // does not parse them (Go 1.24 does).
    let mut s = Spec::ca("Regtrust PolicyConstraints Intermediate", now);
    s.custom.push(ext(
        &[2, 5, 29, 36],
        vec![0x30, 0x03, 0x80, 0x01, 0x00],
        true,
    ));
    let inter_pc = s.signed_by(Key::ecdsa(), &root);
    let leaf_pc = Spec::leaf(HOST, &[HOST], now).signed_by(Key::ecdsa(), &inter_pc);
    t.add(
        "critical policyConstraints on an intermediate",
        "D14",
        vec![leaf_pc.der(), inter_pc.der()],
        vec![root.der()],
        HOST,
        Some("x509: unhandled critical extension".into()),
        "tls_error",
    );
    let mut s = Spec::leaf(HOST, &[HOST], now);
    s.custom
        .push(ext(&[2, 5, 29, 54], vec![0x02, 0x01, 0x00], true));
    let leaf_iap = s.signed_by(Key::ecdsa(), &root);
    t.add(
        "critical inhibitAnyPolicy on the leaf",
        "D14",
        vec![leaf_iap.der()],
        vec![root.der()],
        HOST,
        Some("x509: unhandled critical extension".into()),
        "tls_error",
    );
    let unknown_oid: &[u64] = &[1, 3, 6, 1, 4, 1, 55555, 1];
    let mut s = Spec::ca("Regtrust Critical Root", now);
    s.custom.push(ext(unknown_oid, vec![0x05, 0x00], true));
    let root_crit = s.self_signed(Key::ecdsa());
    let leaf_rcrit = Spec::leaf(HOST, &[HOST], now).signed_by(Key::ecdsa(), &root_crit);
    t.add(
        "unknown critical extension on the root",
        "D15",
        vec![leaf_rcrit.der()],
        vec![root_crit.der()],
        HOST,
        Some("x509: unhandled critical extension".into()),
        "tls_error",
    );
    let mut s = Spec::leaf(HOST, &[HOST], now);
    s.custom.push(ext(unknown_oid, vec![0x05, 0x00], true));
    let leaf_crit = s.signed_by(Key::ecdsa(), &root);
    t.add(
        "unknown critical extension on the leaf",
        "§4.2",
        vec![leaf_crit.der()],
        vec![root.der()],
        HOST,
        Some("x509: unhandled critical extension".into()),
        "tls_error",
    );
    let mut s = Spec::leaf(HOST, &[HOST], now);
    s.custom.push(ext(unknown_oid, vec![0x05, 0x00], false));
    let leaf_noncrit = s.signed_by(Key::ecdsa(), &root);
    t.add(
        "unknown non-critical extension",
        "-",
        vec![leaf_noncrit.der()],
        vec![root.der()],
        HOST,
        None,
        "ok",
    );
    // authorityInfoAccess { caIssuers "http://x.test/ca" } marked critical: Go 1.19 parses
    // it and accepts (newer Go refuses it at parse time).
    let aia = {
        let uri = b"http://x.test/ca";
        let mut access = vec![0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x02];
        access.push(0x86);
        access.push(uri.len() as u8);
        access.extend_from_slice(uri);
        let mut seq = vec![0x30, access.len() as u8];
        seq.extend(access);
        let mut outer = vec![0x30, seq.len() as u8];
        outer.extend(seq);
        outer
    };
    let mut s = Spec::leaf(HOST, &[HOST], now);
    s.custom.push(ext(&[1, 3, 6, 1, 5, 5, 7, 1, 1], aia, true));
    let leaf_aia = s.signed_by(Key::ecdsa(), &root);
    t.add(
        "critical authorityInfoAccess",
        "§6.3",
        vec![leaf_aia.der()],
        vec![root.der()],
        HOST,
        None,
        "ok",
    );
    let mut s = Spec::leaf(HOST, &[HOST], now);
    s.custom.push(ext(&[2, 5, 29, 19], vec![0x30, 0x00], false));
    let leaf_dup = s.signed_by(Key::ecdsa(), &root);
    t.add(
        "duplicate extension",
        "D24",
        vec![leaf_dup.der()],
        vec![root.der()],
        HOST,
        Some("tls: failed to parse certificate from server: x509: certificate contains duplicate extensions".into()),
        "tls_error",
    );

    // --- extended key usage --------------------------------------------------------------
    let mut s = Spec::leaf(HOST, &[HOST], now);
    s.ekus = vec![Eku::Any];
    let leaf_any = s.signed_by(Key::ecdsa(), &root);
    t.add(
        "anyExtendedKeyUsage only",
        "D17",
        vec![leaf_any.der()],
        vec![root.der()],
        HOST,
        None,
        "ok",
    );
    let mut s = Spec::leaf(HOST, &[HOST], now);
    s.ekus = vec![Eku::ClientAuth];
    let leaf_client = s.signed_by(Key::ecdsa(), &root);
    t.add(
        "clientAuth-only leaf",
        "D18",
        vec![leaf_client.der()],
        vec![root.der()],
        HOST,
        Some("x509: certificate specifies an incompatible key usage".into()),
        "tls_error",
    );
    t.add(
        "clientAuth-only leaf, wrong host: hostname first",
        "D18",
        vec![leaf_client.der()],
        vec![root.der()],
        "other.test",
        Some("x509: certificate is valid for registry.test, not other.test".into()),
        "hostname_mismatch",
    );
    let mut s = Spec::ca("Regtrust ClientAuth Intermediate", now);
    s.ekus = vec![Eku::ClientAuth];
    let inter_client = s.signed_by(Key::ecdsa(), &root);
    let leaf_uc = Spec::leaf(HOST, &[HOST], now).signed_by(Key::ecdsa(), &inter_client);
    t.add(
        "clientAuth-only intermediate",
        "D18",
        vec![leaf_uc.der(), inter_client.der()],
        vec![root.der()],
        HOST,
        Some("x509: certificate specifies an incompatible key usage".into()),
        "tls_error",
    );
    let mut s = Spec::leaf(HOST, &[HOST], now);
    s.ekus = vec![];
    s.custom.push(ext(&[2, 5, 29, 37], vec![0x30, 0x00], false));
    let leaf_empty_eku = s.signed_by(Key::ecdsa(), &root);
    t.add(
        "empty EKU extension",
        "D19",
        vec![leaf_empty_eku.der()],
        vec![root.der()],
        HOST,
        None,
        "ok",
    );

    // --- name constraints ----------------------------------------------------------------
    let mut s = Spec::ca("Regtrust Constrained Root", now);
    s.name_constraints = Some(NameConstraints {
        permitted_subtrees: vec![GeneralSubtree::DnsName("example.com".into())],
        excluded_subtrees: vec![],
    });
    let root_nc = s.self_signed(Key::ecdsa());
    let leaf_nc = Spec::leaf(HOST, &[HOST], now).signed_by(Key::ecdsa(), &root_nc);
    t.add(
        "name not permitted by the root",
        "D16",
        vec![leaf_nc.der()],
        vec![root_nc.der()],
        HOST,
        Some("x509: a root or intermediate certificate is not authorized to sign for this name: DNS name \"registry.test\" is not permitted by any constraint".into()),
        "tls_error",
    );
    let leaf_ok_nc =
        Spec::leaf("r.example.com", &["r.example.com"], now).signed_by(Key::ecdsa(), &root_nc);
    t.add(
        "name permitted by the root",
        "D16",
        vec![leaf_ok_nc.der()],
        vec![root_nc.der()],
        "r.example.com",
        None,
        "ok",
    );
    let mut s = Spec::ca("Regtrust Excluding Intermediate", now);
    s.name_constraints = Some(NameConstraints {
        permitted_subtrees: vec![],
        excluded_subtrees: vec![GeneralSubtree::DnsName("registry.test".into())],
    });
    let inter_ex = s.signed_by(Key::ecdsa(), &root);
    let leaf_ex = Spec::leaf(HOST, &[HOST], now).signed_by(Key::ecdsa(), &inter_ex);
    t.add(
        "name excluded by an intermediate",
        "D16",
        vec![leaf_ex.der(), inter_ex.der()],
        vec![root.der()],
        HOST,
        Some("x509: a root or intermediate certificate is not authorized to sign for this name: DNS name \"registry.test\" is excluded by constraint \"registry.test\"".into()),
        "tls_error",
    );
    let mut s = Spec::ca("Regtrust IP Constrained Root", now);
    s.name_constraints = Some(NameConstraints {
        permitted_subtrees: vec![
            GeneralSubtree::DnsName("registry.test".into()),
            GeneralSubtree::IpAddress(CidrSubnet::V4([10, 0, 0, 0], [255, 0, 0, 0])),
        ],
        excluded_subtrees: vec![],
    });
    let root_ipnc = s.self_signed(Key::ecdsa());
    let mut s = Spec::leaf(HOST, &[HOST], now);
    s.sans.push(ip("127.0.0.1"));
    let leaf_ipnc = s.signed_by(Key::ecdsa(), &root_ipnc);
    t.add(
        "IP SAN not permitted by the root",
        "D16",
        vec![leaf_ipnc.der()],
        vec![root_ipnc.der()],
        HOST,
        Some("x509: a root or intermediate certificate is not authorized to sign for this name: IP address \"127.0.0.1\" is not permitted by any constraint".into()),
        "tls_error",
    );

    // --- openssl-made certificates: SHA-1, v1, RSA-1024, PSS, ECDSA-SHA512, DSA ----------
    let (rsa_root_crt, rsa_root_key) = rsa_root.write(&tmp, "rsa_root");
    let (root_crt, root_key) = root.write(&tmp, "root");
    let leaf_key = Key::ecdsa().write_pem(&tmp, "leaf_ec");
    let leaf_ext: &[&str] = &[
        "subjectAltName=DNS:registry.test",
        "basicConstraints=critical,CA:FALSE",
        "extendedKeyUsage=serverAuth",
    ];
    let ca_ext: &[&str] = &[
        "basicConstraints=critical,CA:TRUE",
        "keyUsage=critical,keyCertSign,cRLSign",
    ];
    let (_, sha1_leaf) = tmp.openssl_cert(
        "sha1_leaf",
        &leaf_key,
        "/CN=registry.test",
        Some((&rsa_root_crt, &rsa_root_key)),
        "sha1",
        30,
        500,
        leaf_ext,
    );
    t.add(
        "SHA-1 leaf under a trusted root",
        "D10",
        vec![sha1_leaf.clone()],
        vec![rsa_root.der()],
        HOST,
        Some(ua_hint(
            "x509: cannot verify signature: insecure algorithm SHA1-RSA (temporarily override with GODEBUG=x509sha1=1)",
            "Regtrust RSA Root",
        )),
        "unknown_authority",
    );
    t.add(
        "SHA-1 leaf with GODEBUG=x509sha1=1",
        "D10",
        vec![sha1_leaf],
        vec![rsa_root.der()],
        HOST,
        None,
        "ok",
    )
    .allow_sha1 = true;
    let (_, md5_leaf) = tmp.openssl_cert(
        "md5_leaf",
        &leaf_key,
        "/CN=registry.test",
        Some((&rsa_root_crt, &rsa_root_key)),
        "md5",
        30,
        513,
        leaf_ext,
    );
    t.add(
        "MD5 leaf under a trusted root",
        "§4.2",
        vec![md5_leaf],
        vec![rsa_root.der()],
        HOST,
        Some(ua_hint(
            "x509: cannot verify signature: insecure algorithm MD5-RSA",
            "Regtrust RSA Root",
        )),
        "unknown_authority",
    );
    let (_, ec_sha1_leaf) = tmp.openssl_cert(
        "ec_sha1_leaf",
        &leaf_key,
        "/CN=registry.test",
        Some((&root_crt, &root_key)),
        "sha1",
        30,
        501,
        leaf_ext,
    );
    t.add(
        "ECDSA-SHA1 leaf under a trusted root",
        "D10",
        vec![ec_sha1_leaf],
        vec![root.der()],
        HOST,
        Some(ua_hint(
            "x509: cannot verify signature: insecure algorithm ECDSA-SHA1 (temporarily override with GODEBUG=x509sha1=1)",
            "Regtrust Test Root",
        )),
        "unknown_authority",
    );
    let sha1_root_key = tmp.openssl_rsa_key_pem("sha1_root", 2048);
    let (sha1_root_crt, sha1_root) = tmp.openssl_cert(
        "sha1_root",
        &sha1_root_key,
        "/CN=Regtrust SHA1 Root",
        None,
        "sha1",
        30,
        7,
        ca_ext,
    );
    let (_, leaf_under_sha1) = tmp.openssl_cert(
        "leaf_under_sha1",
        &leaf_key,
        "/CN=registry.test",
        Some((&sha1_root_crt, &sha1_root_key)),
        "sha256",
        30,
        502,
        leaf_ext,
    );
    t.add(
        "SHA-1 self-signed root",
        "D11",
        vec![leaf_under_sha1],
        vec![sha1_root],
        HOST,
        None,
        "ok",
    );
    let v1_key = Key::ecdsa().write_pem(&tmp, "v1_root");
    let (v1_crt, v1_root) = tmp.openssl_cert(
        "v1_root",
        &v1_key,
        "/CN=Regtrust V1 Root",
        None,
        "sha256",
        30,
        8,
        &[],
    );
    assert_eq!(cert_version(&v1_root), 1, "openssl made a v1 root");
    let (_, leaf_under_v1) = tmp.openssl_cert(
        "leaf_under_v1",
        &leaf_key,
        "/CN=registry.test",
        Some((&v1_crt, &v1_key)),
        "sha256",
        30,
        503,
        leaf_ext,
    );
    t.add(
        "v1 root",
        "D6",
        vec![leaf_under_v1],
        vec![v1_root],
        HOST,
        None,
        "ok",
    );
    let v1_inter_key = Key::ecdsa().write_pem(&tmp, "v1_inter");
    let (v1_inter_crt, v1_inter) = tmp.openssl_cert(
        "v1_inter",
        &v1_inter_key,
        "/CN=Regtrust V1 Intermediate",
        Some((&root_crt, &root_key)),
        "sha256",
        30,
        9,
        &[],
    );
    let (_, leaf_under_v1i) = tmp.openssl_cert(
        "leaf_under_v1i",
        &leaf_key,
        "/CN=registry.test",
        Some((&v1_inter_crt, &v1_inter_key)),
        "sha256",
        30,
        504,
        leaf_ext,
    );
    t.add(
        "v1 intermediate",
        "D7",
        vec![leaf_under_v1i, v1_inter],
        vec![root.der()],
        HOST,
        Some("x509: certificate is not authorized to sign other certificates".into()),
        "tls_error",
    );
    let small_root_key = tmp.openssl_rsa_key_pem("small_root", 1024);
    let (small_root_crt, small_root) = tmp.openssl_cert(
        "small_root",
        &small_root_key,
        "/CN=Regtrust RSA-1024 Root",
        None,
        "sha256",
        30,
        10,
        ca_ext,
    );
    let small_leaf_key = tmp.openssl_rsa_key_pem("small_leaf", 1024);
    for digest in ["sha256", "sha384", "sha512"] {
        let (_, small_leaf) = tmp.openssl_cert(
            &format!("small_leaf_{digest}"),
            &small_leaf_key,
            "/CN=registry.test",
            Some((&small_root_crt, &small_root_key)),
            digest,
            30,
            505,
            leaf_ext,
        );
        t.add(
            &format!("RSA-1024 root and leaf, {digest}"),
            "D12",
            vec![small_leaf],
            vec![small_root.clone()],
            HOST,
            None,
            "ok",
        );
    }
    let (_, pss_leaf) = tmp.openssl_cert_with(
        "pss_leaf",
        &leaf_key,
        "/CN=registry.test",
        Some((&rsa_root_crt, &rsa_root_key)),
        "sha256",
        30,
        506,
        leaf_ext,
        &[
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:digest",
        ],
    );
    t.add(
        "RSA-PSS signed leaf",
        "-",
        vec![pss_leaf],
        vec![rsa_root.der()],
        HOST,
        None,
        "ok",
    );
    let (_, small_pss_leaf) = tmp.openssl_cert_with(
        "small_pss_leaf",
        &small_leaf_key,
        "/CN=registry.test",
        Some((&small_root_crt, &small_root_key)),
        "sha256",
        30,
        507,
        leaf_ext,
        &[
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:digest",
        ],
    );
    t.add(
        "RSA-PSS by an RSA-1024 root",
        "D12",
        vec![small_pss_leaf],
        vec![small_root],
        HOST,
        None,
        "ok",
    );
    let (_, ec512_leaf) = tmp.openssl_cert(
        "ec512_leaf",
        &leaf_key,
        "/CN=registry.test",
        Some((&root_crt, &root_key)),
        "sha512",
        30,
        508,
        leaf_ext,
    );
    t.add(
        "ECDSA-SHA512 signature (no ring algorithm)",
        "-",
        vec![ec512_leaf],
        vec![root.der()],
        HOST,
        None,
        "ok",
    )
    .ours = Ours::Undecidable;

    // Serials: Go 1.19 takes negative and > 20-octet serials (Go 1.23 refuses both at
    // parse time); a hint certificate without CN and O is named by its decimal serial.
    let (_, neg_serial_leaf) = tmp.openssl_cert(
        "neg_serial_leaf",
        &leaf_key,
        "/CN=registry.test",
        Some((&root_crt, &root_key)),
        "sha256",
        30,
        "-5",
        leaf_ext,
    );
    t.add(
        "negative serial",
        "D24",
        vec![neg_serial_leaf],
        vec![root.der()],
        HOST,
        None,
        "ok",
    );
    let (_, long_serial_leaf) = tmp.openssl_cert(
        "long_serial_leaf",
        &leaf_key,
        "/CN=registry.test",
        Some((&root_crt, &root_key)),
        "sha256",
        30,
        "0x0102030405060708090a0b0c0d0e0f101112131415",
        leaf_ext,
    );
    t.add(
        "21-octet serial",
        "D24",
        vec![long_serial_leaf],
        vec![root.der()],
        HOST,
        None,
        "ok",
    );
    let ou_key = Key::ecdsa().write_pem(&tmp, "ou_root");
    let (ou_crt, ou_root) = tmp.openssl_cert(
        "ou_root",
        &ou_key,
        "/OU=Only OU",
        None,
        "sha256",
        30,
        "-5",
        &[
            "basicConstraints=critical,CA:TRUE",
            "keyUsage=critical,digitalSignature",
        ],
    );
    let (_, leaf_under_ou) = tmp.openssl_cert(
        "leaf_under_ou",
        &leaf_key,
        "/CN=registry.test",
        Some((&ou_crt, &ou_key)),
        "sha256",
        30,
        509,
        leaf_ext,
    );
    t.add(
        "hint names a negative serial",
        "§4.2",
        vec![leaf_under_ou],
        vec![ou_root],
        HOST,
        Some(ua_hint(CONSTRAINT, "serial:-5")),
        "unknown_authority",
    );

    // Other key types: a DSA leaf verifies but crypto/tls refuses its key; P-521 keys parse
    // (ring cannot check a P-521 signature: regtrust says it cannot decide).
    let dsa_key = tmp.openssl_key_pem("dsa_leaf", "DSA");
    let (_, dsa_leaf) = tmp.openssl_cert(
        "dsa_leaf",
        &dsa_key,
        "/CN=registry.test",
        Some((&root_crt, &root_key)),
        "sha256",
        30,
        510,
        leaf_ext,
    );
    t.add(
        "DSA leaf key",
        "-",
        vec![dsa_leaf],
        vec![root.der()],
        HOST,
        Some(
            "tls: server's certificate contains an unsupported type of public key: *dsa.PublicKey"
                .into(),
        ),
        "tls_error",
    );
    let p521_key = tmp.openssl_key_pem("p521", "EC:P-521");
    let (_, p521_leaf) = tmp.openssl_cert(
        "p521_leaf",
        &p521_key,
        "/CN=registry.test",
        Some((&root_crt, &root_key)),
        "sha256",
        30,
        511,
        leaf_ext,
    );
    t.add(
        "P-521 leaf key under a P-256 root",
        "-",
        vec![p521_leaf],
        vec![root.der()],
        HOST,
        None,
        "ok",
    );
    let (p521_root_crt, p521_root) = tmp.openssl_cert(
        "p521_root",
        &p521_key,
        "/CN=Regtrust P-521 Root",
        None,
        "sha512",
        30,
        12,
        ca_ext,
    );
    let (_, leaf_under_p521) = tmp.openssl_cert(
        "leaf_under_p521",
        &leaf_key,
        "/CN=registry.test",
        Some((&p521_root_crt, &p521_key)),
        "sha512",
        30,
        512,
        leaf_ext,
    );
    t.add(
        "P-521 root signature (no ring algorithm)",
        "-",
        vec![leaf_under_p521],
        vec![p521_root],
        HOST,
        None,
        "ok",
    )
    .ours = Ours::Undecidable;
    let p384_root = {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).expect("P-384");
        Spec::ca("Regtrust P-384 Root", now).self_signed(Key { pair })
    };
    let leaf_p384 = Spec::leaf(HOST, &[HOST], now).signed_by(Key::ecdsa(), &p384_root);
    t.add(
        "P-384 root",
        "-",
        vec![leaf_p384.der()],
        vec![p384_root.der()],
        HOST,
        None,
        "ok",
    );

    // A root with a malformed extension does not parse, so Go never adds it to the pool.
    let mut s = Spec::ca("Regtrust Test Root", now);
    s.serial = 77;
    s.custom.push(ext(&[2, 5, 29, 15], vec![0x05, 0x00], false));
    let broken_root = s.self_signed(root_key_pair_clone(&root));
    t.add(
        "unparsable copy of the root is skipped",
        "§6.1",
        vec![leaf.der()],
        vec![broken_root.der()],
        HOST,
        Some(UA.into()),
        "unknown_authority",
    );

    // Go 1.19 applies a CA's name constraints to the CA's own SANs too.
    let mut s = Spec::ca("Regtrust Self-Constrained Root", now);
    s.sans = vec![dns("ca.other")];
    s.name_constraints = Some(NameConstraints {
        permitted_subtrees: vec![GeneralSubtree::DnsName("registry.test".into())],
        excluded_subtrees: vec![],
    });
    let root_self_nc = s.self_signed(Key::ecdsa());
    let leaf_self_nc = Spec::leaf(HOST, &[HOST], now).signed_by(Key::ecdsa(), &root_self_nc);
    t.add(
        "name constraints apply to the CA's own SANs",
        "D16",
        vec![leaf_self_nc.der()],
        vec![root_self_nc.der()],
        HOST,
        Some("x509: a root or intermediate certificate is not authorized to sign for this name: DNS name \"ca.other\" is not permitted by any constraint".into()),
        "tls_error",
    );

    // --- the signature check budget ------------------------------------------------------
    let mut roots = Vec::new();
    for i in 0..101 {
        let mut s = Spec::ca("Regtrust Test Root", now);
        s.serial = 1000 + i;
        roots.push(s.self_signed(Key::ecdsa()).der());
    }
    t.add(
        "more than 100 candidates with the right name",
        "§4.1",
        vec![leaf.der()],
        roots,
        HOST,
        Some(
            "x509: signature check attempts limit reached while verifying certificate chain".into(),
        ),
        "tls_error",
    );

    t.cases
}

/// The same key pair again (rcgen key pairs do not clone).
fn root_key_pair_clone(i: &Issued) -> Key {
    let der = rustls_pki_types::PrivatePkcs8KeyDer::from(i.key.pair.serialize_der());
    Key {
        pair: rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, i.key.pair.algorithm())
            .expect("same key"),
    }
}

/// The X.509 version of a DER certificate (1-based), read with x509-parser.
fn cert_version(der: &[u8]) -> u32 {
    let (_, c) = x509_parser::parse_x509_certificate(der).expect("parse");
    c.tbs_certificate.version.0 + 1
}
