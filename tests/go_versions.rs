//! The differential suite across Go releases: real Go 1.19, 1.22 and 1.23 (Debian's
//! `golang-1.19-go`, and `golang-1.22-go`/`golang-1.23-go` from bookworm-backports) decide
//! every case as a crypto/tls client does (`tests/go-oracle`), and regtrust's verifier run
//! with that Go version (`regtrust::go::verify`) must give the same verdict class, the same
//! bare `x509: ...` message byte for byte, and the same text crypto/tls prints
//! (`runtime_message`). Cases, all made at test time:
//! - the Go 1.19 case table (`tests/support/gocases.rs`, the §5.3 divergences);
//! - one chain per version-dependent rule (`version_cases` below: 1.22 name constraints,
//!   1.23 parse-time refusals and hostname rules, the GODEBUG switches, the hint Go adds for
//!   a presented self-signed certificate tried as a parent; and what these releases do where
//!   a rule modelled from a later Go changes the verdict: CVE-2025-58187, CVE-2026-32280,
//!   1.26's constraint check after chain building, 1.27's attribute value types);
//! - Go's own `name_constraints_test.go` table, read from each toolchain's installed sources
//!   and turned into chains by that toolchain (`tests/go-oracle/nctable`);
//! - Go's own `verify_test.go` table (real-world chains, times and names), read from the same
//!   sources with go/parser (`tests/go-oracle/verifytable`).

#[path = "support/gopki.rs"]
mod pki;

#[path = "support/gocases.rs"]
mod gocases;

use base64::Engine as _;
use pki::*;
use regtrust::go::verify::{verify, verify_chain, ParsedChain, TrustPool, VerifyOptions};
use regtrust::go::{GoDebug, GoVersion};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use time::OffsetDateTime;

const HOST: &str = "registry.test";

/// The toolchains under test: (go binary, Debian package).
const TOOLCHAINS: &[(&str, &str)] = &[
    ("/usr/lib/go-1.19/bin/go", "golang-1.19-go"),
    (
        "/usr/lib/go-1.22/bin/go",
        "golang-1.22-go (bookworm-backports)",
    ),
    (
        "/usr/lib/go-1.23/bin/go",
        "golang-1.23-go (bookworm-backports)",
    ),
];

struct Case {
    name: String,
    presented: Vec<Vec<u8>>,
    roots: Vec<Vec<u8>>,
    server_name: String,
    now: OffsetDateTime,
    godebug: String,
    /// regtrust says it cannot decide (a signature ring lacks): not compared.
    undecidable: bool,
}

fn go_cmd(go: &str, tmp: &Path) -> Command {
    let mut c = Command::new(go);
    c.env("GOCACHE", tmp.join("go-cache"))
        .env("GOPATH", tmp.join("go-path"))
        .env("GO111MODULE", "off")
        .env("GOFLAGS", "")
        .env("GOTOOLCHAIN", "local")
        .env("CGO_ENABLED", "0");
    c
}

fn run(mut c: Command, what: &str) -> Vec<u8> {
    let out = c
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run ({e})"));
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `go version` and `go env GOROOT` of a toolchain, failing with the package to install.
fn toolchain(go: &str, package: &str, tmp: &Path) -> (GoVersion, String, PathBuf) {
    assert!(
        Path::new(go).exists(),
        "{go} is missing: install the Debian package {package} (make deps does)"
    );
    let mut c = go_cmd(go, tmp);
    c.arg("env").arg("GOVERSION");
    let printed = String::from_utf8_lossy(&run(c, "go env GOVERSION"))
        .trim()
        .to_string();
    let version = GoVersion::parse(&printed).unwrap_or_else(|| panic!("{go}: version {printed:?}"));
    let mut c = go_cmd(go, tmp);
    c.arg("env").arg("GOROOT");
    let root = PathBuf::from(
        String::from_utf8_lossy(&run(c, "go env GOROOT"))
            .trim()
            .to_string(),
    );
    (version, printed, root)
}

fn build_oracle(go: &str, tmp: &Path, tag: &str) -> PathBuf {
    let bin = tmp.join(format!("go-oracle-{tag}"));
    let mut c = go_cmd(go, tmp);
    c.args(["build", "-o"])
        .arg(&bin)
        .arg(".")
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go-oracle"));
    run(c, "go build of the oracle");
    bin
}

/// The toolchain's own `name_constraints_test.go` as package main: everything before
/// `TestConstraintCases` (the table and its certificate makers), crypto/x509 dot-imported,
/// imports the cut-off part alone used blanked.
fn nc_table_source(goroot: &Path) -> String {
    let path = goroot.join("src/crypto/x509/name_constraints_test.go");
    let src = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: install the toolchain's -src package (golang-1.2x-src)",
            path.display()
        )
    });
    let cut = src
        .find("func TestConstraintCases")
        .expect("TestConstraintCases in name_constraints_test.go");
    let src = src[..cut].replacen("package x509", "package main", 1);
    let a = src.find("import (").expect("import block");
    let b = a + src[a..].find(')').expect("end of imports");
    let body = &src[b..];
    let mut imports = vec!["\t. \"crypto/x509\"".to_string()];
    for line in src[a + "import (".len()..b].lines() {
        let imp = line.trim();
        if imp.is_empty() {
            continue;
        }
        let name = imp.trim_matches('"').rsplit('/').next().unwrap_or_default();
        if body.contains(&format!("{name}.")) {
            imports.push(format!("\t{imp}"));
        } else {
            imports.push(format!("\t_ {imp}"));
        }
    }
    format!("{}import (\n{}\n{body}", &src[..a], imports.join("\n"))
}

/// Go's name-constraint table as chains, generated by that toolchain.
fn nc_cases(go: &str, goroot: &Path, tmp: &Path, tag: &str) -> Vec<Case> {
    let dir = tmp.join(format!("nctable-{tag}"));
    std::fs::create_dir_all(&dir).unwrap();
    let gen = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go-oracle/nctable/main.go");
    std::fs::copy(gen, dir.join("main.go")).unwrap();
    std::fs::write(dir.join("table.go"), nc_table_source(goroot)).unwrap();
    let bin = dir.join("nctable");
    let mut c = go_cmd(go, tmp);
    c.args(["build", "-o"]).arg(&bin).arg(".").current_dir(&dir);
    run(c, "go build of the name-constraints table");
    decode_cases(&run(Command::new(&bin), "nctable"))
}

/// Go's `verify_test.go` table (its literal rows: real-world chains and times), read from
/// the toolchain's sources with go/parser by that toolchain.
fn verify_table_cases(go: &str, goroot: &Path, tmp: &Path, tag: &str) -> Vec<Case> {
    let src = goroot.join("src/crypto/x509/verify_test.go");
    assert!(
        src.exists(),
        "{}: install the toolchain's -src package (golang-1.2x-src)",
        src.display()
    );
    let bin = tmp.join(format!("verifytable-{tag}"));
    let mut c = go_cmd(go, tmp);
    c.args(["build", "-o"])
        .arg(&bin)
        .arg(".")
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go-oracle/verifytable"));
    run(c, "go build of the verify_test.go reader");
    let mut c = Command::new(&bin);
    c.arg(&src);
    decode_cases(&run(c, "verifytable"))
}

/// Cases as the generators print them (base64 DER, RFC 3339 time).
fn decode_cases(out: &[u8]) -> Vec<Case> {
    let v: Vec<serde_json::Value> = serde_json::from_slice(out).expect("generated cases (json)");
    let b64 = |s: &serde_json::Value| {
        base64::engine::general_purpose::STANDARD
            .decode(s.as_str().unwrap_or_default())
            .expect("base64")
    };
    v.iter()
        .map(|c| Case {
            name: c["name"].as_str().unwrap_or_default().to_string(),
            presented: c["presented"]
                .as_array()
                .map(|a| a.iter().map(b64).collect())
                .unwrap_or_default(),
            roots: c["roots"]
                .as_array()
                .map(|a| a.iter().map(b64).collect())
                .unwrap_or_default(),
            server_name: String::new(),
            now: OffsetDateTime::parse(
                c["now"].as_str().unwrap_or_default(),
                &time::format_description::well_known::Rfc3339,
            )
            .expect("now"),
            godebug: String::new(),
            undecidable: false,
        })
        .collect()
}

fn dns(name: &str) -> rcgen::SanType {
    rcgen::SanType::DnsName(name.try_into().expect("ia5"))
}

/// DER of `SEQUENCE { SEQUENCE { OID 1.2.<2^31> } }`: a certificate policy with an arc
/// larger than 31 bits.
fn big_arc_policies() -> Vec<u8> {
    let oid = [0x2a, 0x88, 0x80, 0x80, 0x80, 0x00];
    let mut inner = vec![0x06, oid.len() as u8];
    inner.extend_from_slice(&oid);
    let mut pi = vec![0x30, inner.len() as u8];
    pi.extend(inner);
    let mut seq = vec![0x30, pi.len() as u8];
    seq.extend(pi);
    seq
}

/// One chain per rule that differs between Go releases (and the Go 1.19 gaps of issue 11).
fn version_cases(now: OffsetDateTime, tmp: &TempDir) -> Vec<Case> {
    let mut out = Vec::new();
    let mut add = |name: &str, presented: Vec<Vec<u8>>, roots: Vec<Vec<u8>>, sn: &str, gd: &str| {
        out.push(Case {
            name: name.into(),
            presented,
            roots,
            server_name: sn.into(),
            now,
            godebug: gd.into(),
            undecidable: false,
        })
    };
    // An openssl CA for what rcgen cannot make (negative serials, critical AKI/SKI/AIA, SHA-1).
    let ca = Spec::ca("Version Rules CA", now).self_signed(Key::rsa(2048));
    let (ca_crt, ca_key) = ca.write(tmp, "vca");
    let leaf_key = Key::ecdsa().write_pem(tmp, "vleaf");
    let san = "subjectAltName=DNS:registry.test";
    let openssl_leaf = |name: &str, serial: &str, digest: &str, ext: &[&str]| {
        let mut e = vec![san];
        e.extend_from_slice(ext);
        tmp.openssl_cert(
            name,
            &leaf_key,
            "/CN=registry.test",
            Some((&ca_crt, &ca_key)),
            digest,
            30,
            serial,
            &e,
        )
        .1
    };
    let neg = openssl_leaf("neg", "-5", "sha256", &[]);
    let aki = openssl_leaf(
        "aki",
        "7",
        "sha256",
        &["authorityKeyIdentifier=critical,keyid:always"],
    );
    let ski = openssl_leaf(
        "ski",
        "8",
        "sha256",
        &["subjectKeyIdentifier=critical,hash"],
    );
    let aia = openssl_leaf(
        "aia",
        "9",
        "sha256",
        &["authorityInfoAccess=critical,OCSP;URI:http://ocsp.registry.test/"],
    );
    let sha1 = openssl_leaf("sha1", "10", "sha1", &[]);
    let roots = vec![ca.der()];
    add(
        "negative serial, the build's default GODEBUG",
        vec![neg.clone()],
        roots.clone(),
        HOST,
        "",
    );
    add(
        "negative serial with x509negativeserial=1",
        vec![neg.clone()],
        roots.clone(),
        HOST,
        "x509negativeserial=1",
    );
    // A runtime whose go.mod says 1.23 runs with x509negativeserial=0 (the oracle's
    // GOPATH build defaults to 1.20's `=1`: the environment setting overrides it).
    add(
        "1.23: negative serial, x509negativeserial=0",
        vec![neg.clone()],
        roots.clone(),
        HOST,
        "x509negativeserial=0",
    );
    add("1.23: critical AKI", vec![aki], roots.clone(), HOST, "");
    add("1.23: critical SKI", vec![ski], roots.clone(), HOST, "");
    add("1.23: critical AIA", vec![aia], roots.clone(), HOST, "");
    add("SHA-1 leaf", vec![sha1.clone()], roots.clone(), HOST, "");
    add(
        "SHA-1 leaf, x509sha1=1",
        vec![sha1],
        roots.clone(),
        HOST,
        "x509sha1=1",
    );

    let root = Spec::ca("Version Rules Root", now).self_signed(Key::ecdsa());
    let roots = vec![root.der()];
    // Duplicate extensions: the OID is named from 1.23.
    let mut s = Spec::leaf(HOST, &[HOST], now);
    s.custom = vec![
        ext(&[1, 2, 3, 4], vec![0x05, 0x00], false),
        ext(&[1, 2, 3, 4], vec![0x05, 0x00], false),
    ];
    add(
        "1.23: duplicate extension",
        vec![s.signed_by(Key::ecdsa(), &root).der()],
        roots.clone(),
        HOST,
        "",
    );
    // A malformed basicConstraints: Go 1.19 says which read failed.
    let mut s = Spec::leaf(HOST, &[HOST], now);
    s.ca = rcgen::IsCa::NoCa;
    s.custom = vec![ext(&[2, 5, 29, 19], vec![0x30, 0x03, 0x01, 0x01], false)];
    add(
        "1.22: invalid basic constraints text",
        vec![s.signed_by(Key::ecdsa(), &root).der()],
        roots.clone(),
        HOST,
        "",
    );
    // A certificate policy OID with an arc over 31 bits: accepted from 1.22.
    let mut s = Spec::leaf(HOST, &[HOST], now);
    s.custom = vec![ext(&[2, 5, 29, 32], big_arc_policies(), false)];
    add(
        "1.22: policy OID with a large arc",
        vec![s.signed_by(Key::ecdsa(), &root).der()],
        roots.clone(),
        HOST,
        "",
    );
    // Hostnames: a bare `*` (1.23 refuses it as a pattern) and a wildcard TLD.
    let s = Spec::leaf("star", &["*"], now);
    add(
        "1.23: bare wildcard SAN",
        vec![s.signed_by(Key::ecdsa(), &root).der()],
        roots.clone(),
        "localhost",
        "",
    );
    let s = Spec::leaf("tld", &["*.test"], now);
    add(
        "wildcard-only TLD SAN",
        vec![s.signed_by(Key::ecdsa(), &root).der()],
        roots.clone(),
        HOST,
        "",
    );
    // A URI SAN whose host starts with a period: refused at parse time from 1.23.
    let mut s = Spec::leaf(HOST, &[HOST], now);
    s.sans.push(rcgen::SanType::URI(
        "https://.registry.test/".try_into().expect("ia5"),
    ));
    add(
        "1.23: URI SAN with a leading-period host",
        vec![s.signed_by(Key::ecdsa(), &root).der()],
        roots.clone(),
        HOST,
        "",
    );
    // Name constraints on the root.
    let mut rs = Spec::ca("Constrained Root", now);
    rs.name_constraints = Some(rcgen::NameConstraints {
        permitted_subtrees: vec![rcgen::GeneralSubtree::DnsName("registry.test".into())],
        excluded_subtrees: vec![],
    });
    let croot = rs.self_signed(Key::ecdsa());
    let s = Spec::leaf(HOST, &[HOST, ".foo.registry.test"], now);
    add(
        "1.23: leading-period dNSName under a constraint",
        vec![s.signed_by(Key::ecdsa(), &croot).der()],
        vec![croot.der()],
        HOST,
        "",
    );
    // 1.22 checks the SANs of every certificate on the chain, the intermediate's too.
    let mut is = Spec::ca("Inter With SAN", now);
    is.sans = vec![dns("evil.example")];
    let inter = is.signed_by(Key::ecdsa(), &croot);
    let leaf = Spec::leaf(HOST, &[HOST], now).signed_by(Key::ecdsa(), &inter);
    add(
        "1.22: an intermediate's SAN under the root's constraint",
        vec![leaf.der(), inter.der()],
        vec![croot.der()],
        HOST,
        "",
    );
    // The hint: a presented self-signed certificate named as the issuer, another key.
    let issuer = Spec::ca("Harbor CA", now).self_signed(Key::ecdsa());
    let impostor = Spec::ca("Harbor CA", now).self_signed(Key::ecdsa());
    let leaf = Spec::leaf(HOST, &[HOST], now).signed_by(Key::ecdsa(), &issuer);
    add(
        "hint: presented self-signed candidate",
        vec![leaf.der(), impostor.der()],
        vec![root.der()],
        HOST,
        "",
    );
    add(
        "hint: a self-signed leaf tried as its own parent",
        vec![impostor.der()],
        vec![issuer.der()],
        "Harbor CA",
        "",
    );
    // A non-minimal OID (a subidentifier led by 0x80): cryptobyte's readBase128Int refuses
    // it from the x/crypto that Go 1.22 vendors (go1.22.12
    // src/vendor/golang.org/x/crypto/cryptobyte/asn1.go:436-440), not in Go 1.19's. The
    // extension OID 1.2.3.128 (`2a 03 81 00`) is rewritten as `2a 03 80 05` (1.2.3.5 with a
    // padding octet, same length); the certificate is its own root, so no signature is read.
    let mut s = Spec::leaf(HOST, &[HOST], now);
    s.custom = vec![ext(&[1, 2, 3, 128], vec![0x05, 0x00], false)];
    let mut der = s.self_signed(Key::ecdsa()).der();
    let at_oid = der
        .windows(6)
        .position(|w| w == [0x06, 0x04, 0x2a, 0x03, 0x81, 0x00])
        .expect("the extension OID");
    der[at_oid + 4..at_oid + 6].copy_from_slice(&[0x80, 0x05]);
    add(
        "1.22: a non-minimal extension OID",
        vec![der.clone()],
        vec![der],
        HOST,
        "",
    );
    // The releases before the rules regtrust models from later Go (src/go/verify.rs, x509.rs)
    // say what those rules replaced:
    // CVE-2026-32280 (1.25.9/1.26.2): before it, copies of the leaf skipped as already in the
    // chain do not count against the 100 signature checks.
    let pem = Key::ecdsa().pair.serialize_pem();
    let looped = Spec::leaf(HOST, &[HOST], now);
    let copies: Vec<Vec<u8>> = (0..=101u64)
        .map(|i| {
            let mut copy = looped.clone();
            copy.serial = 1000 + i;
            let key = Key {
                pair: rcgen::KeyPair::from_pem(&pem).expect("key"),
            };
            copy.self_signed(key).der()
        })
        .collect();
    add(
        "before CVE-2026-32280: a self-issued leaf with 101 copies of itself",
        copies,
        vec![root.der()],
        HOST,
        "",
    );
    // 1.26 checks name constraints after chain building: before, the constrained root fails
    // as a candidate and its expired twin's error is returned.
    let twin_pem = Key::ecdsa().pair.serialize_pem();
    let twin_key = || Key {
        pair: rcgen::KeyPair::from_pem(&twin_pem).expect("key"),
    };
    let mut constrained = Spec::ca("Twin Root", now);
    constrained.name_constraints = Some(rcgen::NameConstraints {
        permitted_subtrees: vec![rcgen::GeneralSubtree::DnsName("other.test".into())],
        excluded_subtrees: vec![],
    });
    let constrained = constrained.self_signed(twin_key());
    let mut expired = Spec::ca("Twin Root", now);
    expired.not_before = at(now, -30 * DAY);
    expired.not_after = at(now, -DAY);
    let expired = expired.self_signed(twin_key());
    let leaf = Spec::leaf(HOST, &[HOST], now).signed_by(Key::ecdsa(), &constrained);
    add(
        "before 1.26: a constrained root and its expired twin",
        vec![leaf.der()],
        vec![constrained.der(), expired.der()],
        HOST,
        "",
    );
    // CVE-2025-58187 (1.24.8/1.25.2): before it, a lone `.` constraint parses and permits
    // every name.
    let mut dot = Spec::ca("Dot Root", now);
    dot.name_constraints = Some(rcgen::NameConstraints {
        permitted_subtrees: vec![rcgen::GeneralSubtree::DnsName(".".into())],
        excluded_subtrees: vec![],
    });
    let dot = dot.self_signed(Key::ecdsa());
    let leaf = Spec::leaf(HOST, &[HOST], now).signed_by(Key::ecdsa(), &dot);
    add(
        "before CVE-2025-58187: a lone period constraint",
        vec![leaf.der(), dot.der()],
        vec![dot.der()],
        HOST,
        "",
    );
    // go.dev/issue/75260 (1.27): before it, a UniversalString in the subject is refused.
    let mut p = rcgen::CertificateParams::new(vec![HOST.to_string()]).expect("params");
    p.distinguished_name.push(
        rcgen::DnType::CustomDnType(vec![2, 5, 4, 45]),
        rcgen::DnValue::UniversalString(
            rcgen::UniversalString::try_from("id".to_string()).expect("universal"),
        ),
    );
    p.not_before = at(now, -DAY);
    p.not_after = at(now, DAY);
    let leaf = p
        .signed_by(&Key::ecdsa().pair, &root.cert, &root.key.pair)
        .expect("leaf")
        .der()
        .to_vec();
    add(
        "before 1.27: a UniversalString in the subject",
        vec![leaf],
        vec![root.der()],
        HOST,
        "",
    );
    out
}

fn b64(v: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(v)
}

#[test]
fn regtrust_says_what_each_go_release_says() {
    let tmp_path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("go-versions");
    std::fs::create_dir_all(&tmp_path).unwrap();
    let tmp = TempDir::new();
    let base = gocases::cases();
    let now = base.first().map(|c| c.now).expect("cases");
    let extra = version_cases(now, &tmp);
    let mut report = Vec::new();
    // What Go said per rule case and release: each rule must change something between 1.19
    // and the release that introduced it, or the case proves nothing.
    let mut by_rule: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    let mut failures = Vec::new();
    // Each presented chain as the earlier releases parsed it: a release takes a parse that
    // holds for it from these (`ParsedChain::sharing`, as a probe over runtimes on several
    // releases does), and must say exactly what its own fresh parse says.
    let mut parsed_before: std::collections::HashMap<Vec<Vec<u8>>, Vec<ParsedChain>> =
        Default::default();
    let mut shared_parses = 0usize;
    for (go, package) in TOOLCHAINS {
        let (version, printed, goroot) = toolchain(go, package, &tmp_path);
        let tag = printed.clone();
        let oracle = build_oracle(go, &tmp_path, &tag);
        // The oracle runs with the GODEBUG defaults its build compiled in (GOPATH mode: those
        // of Go 1.20), read from its build info as regtrust reads a runtime's.
        let defaults = regtrust::go::buildinfo::read_build_info(&std::fs::read(&oracle).unwrap())
            .expect("the oracle's build info")
            .default_godebug;
        let mut cases: Vec<Case> = base
            .iter()
            .map(|c| Case {
                name: format!("gocases: {}", c.name),
                presented: c.presented.clone(),
                roots: c.roots.clone(),
                server_name: c.server_name.clone(),
                now: c.now,
                godebug: if c.allow_sha1 {
                    "x509sha1=1".into()
                } else {
                    String::new()
                },
                undecidable: c.ours == gocases::Ours::Undecidable,
            })
            .collect();
        let n_table = cases.len();
        cases.extend(version_cases_clone(&extra));
        let n_rules = cases.len() - n_table;
        let nc = nc_cases(go, &goroot, &tmp_path, &tag);
        let n_nc = nc.len();
        assert!(
            n_nc > 50,
            "{printed}: only {n_nc} name-constraint cases read"
        );
        cases.extend(nc);
        let vt = verify_table_cases(go, &goroot, &tmp_path, &tag);
        let n_vt = vt.len();
        assert!(
            n_vt > 20,
            "{printed}: only {n_vt} verify_test.go cases read"
        );
        cases.extend(vt);

        let input: Vec<serde_json::Value> = cases
            .iter()
            .map(|c| {
                serde_json::json!({
                    "name": c.name,
                    "presented": c.presented.iter().map(|d| b64(d)).collect::<Vec<_>>(),
                    "roots": c.roots.iter().map(|d| b64(d)).collect::<Vec<_>>(),
                    "server_name": c.server_name,
                    "now": rfc3339(c.now),
                    "godebug": c.godebug,
                })
            })
            .collect();
        let mut child = Command::new(&oracle)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run the oracle");
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().expect("stdin");
            stdin
                .write_all(serde_json::to_string(&input).unwrap().as_bytes())
                .expect("write cases");
        }
        let out = child.wait_with_output().expect("oracle output");
        assert!(
            out.status.success(),
            "oracle {printed}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let results: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(results.len(), cases.len());
        let mut compared = 0;
        for (c, r) in cases.iter().zip(&results) {
            if c.undecidable {
                continue;
            }
            compared += 1;
            if c.name.starts_with("rule: 1.2") {
                by_rule.entry(c.name.clone()).or_default().push(
                    r["runtime"]
                        .as_str()
                        .unwrap_or_default()
                        .replace("tls: failed to verify certificate: ", ""),
                );
            }
            let opts = VerifyOptions {
                server_name: &c.server_name,
                now: c.now,
                go: version,
                godebug: GoDebug::parse(&defaults).with(&c.godebug),
            };
            let said = |r: Result<_, regtrust::go::verify::GoVerifyError>| match r {
                Ok(_) => ("OK".to_string(), "ok".to_string(), "OK".to_string()),
                Err(e) => (
                    e.message(),
                    format!("{:?}", e.verdict()),
                    e.runtime_message(version),
                ),
            };
            let (msg, class, runtime) = said(verify(&c.presented, &c.roots, &opts));
            let earlier: Vec<&ParsedChain> = parsed_before
                .get(&c.presented)
                .map(|v| v.iter().collect())
                .unwrap_or_default();
            let shared = ParsedChain::sharing(&c.presented, version, opts.godebug, &earlier);
            drop(earlier);
            let pool = TrustPool::new_as(&c.roots, version, opts.godebug);
            let via_shared = said(verify_chain(&shared, &pool, &opts));
            if via_shared != (msg.clone(), class.clone(), runtime.clone()) {
                failures.push(format!(
                    "{printed} {}: a parse shared from an earlier release says {via_shared:?}, its own parse {:?}",
                    c.name,
                    (&msg, &class, &runtime)
                ));
            }
            shared_parses += 1;
            parsed_before
                .entry(c.presented.clone())
                .or_default()
                .push(shared);
            let want_class = r["class"].as_str().unwrap_or_default().replace('_', "");
            let want = (
                r["result"].as_str().unwrap_or_default(),
                r["runtime"].as_str().unwrap_or_default(),
            );
            if (msg.as_str(), runtime.as_str()) != want
                || class.to_lowercase() != want_class.to_lowercase()
            {
                failures.push(format!(
                    "{printed} {}\n      go: {} [{}]\n         {}\n regtrust: {msg} [{class}]\n         {runtime}",
                    c.name, want.0, r["class"], want.1
                ));
            }
        }
        report.push(format!(
            "{printed}: {compared} cases ({n_table} table, {n_rules} version rules, {n_nc} from name_constraints_test.go, {n_vt} from verify_test.go)"
        ));
    }
    assert!(
        failures.is_empty(),
        "{} disagreements:\n{}\n({})",
        failures.len(),
        failures.join("\n"),
        report.join("; ")
    );
    for (rule, said) in &by_rule {
        let introduced: u32 = rule["rule: 1.".len()..]
            .split(':')
            .next()
            .and_then(|m| m.parse().ok())
            .expect("rule names start with the release");
        // said[0] is Go 1.19, said[1] 1.22, said[2] 1.23.
        let at = if introduced <= 22 { 1 } else { 2 };
        assert_ne!(
            said[0], said[at],
            "{rule}: Go 1.19 and the release that changed it say the same: the case proves nothing"
        );
    }
    assert!(
        shared_parses > 500,
        "only {shared_parses} shared parses compared"
    );
    eprintln!("{}", report.join("\n"));
}

fn version_cases_clone(cases: &[Case]) -> Vec<Case> {
    cases
        .iter()
        .map(|c| Case {
            name: format!("rule: {}", c.name),
            presented: c.presented.clone(),
            roots: c.roots.clone(),
            server_name: c.server_name.clone(),
            now: c.now,
            godebug: c.godebug.clone(),
            undecidable: c.undecidable,
        })
        .collect()
}
