//! The Go oracle: real Go (`tests/go-oracle`, built with the Debian `golang-go` toolchain,
//! Go 1.19 like Debian's skopeo and containerd) decides every case of the Go-semantics
//! verifier's table, and must say exactly what the table says; and regtrust's pure entry
//! point (`regtrust::go::verify::verify`, run as that Go release) must say exactly what Go
//! said, byte for byte, on every case it can decide (the library's unit tests hold regtrust
//! to the same table).

#[path = "support/gopki.rs"]
mod pki;

#[path = "support/gocases.rs"]
mod gocases;

use base64::Engine as _;
use regtrust::go::verify::{verify, GoVerifyError, VerifyOptions};
use regtrust::go::{GoDebug, GoVersion};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Build the oracle once per run into cargo's per-test temp dir.
fn build_oracle() -> PathBuf {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let bin = tmp.join("go-oracle");
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/go-oracle");
    let out = Command::new("go")
        .args(["build", "-o"])
        .arg(&bin)
        .arg(".")
        .current_dir(&src)
        .env("GOCACHE", tmp.join("go-cache"))
        .env("GOPATH", tmp.join("go-path"))
        .env("GO111MODULE", "off")
        .env("GOFLAGS", "")
        .env("CGO_ENABLED", "0")
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `go` ({e}): install Go (Debian package `golang-go`) to run the Go oracle test")
        });
    assert!(
        out.status.success(),
        "go build of the oracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    bin
}

fn go_version() -> String {
    let out = Command::new("go")
        .arg("version")
        .output()
        .expect("go version");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn go_decides_every_case_as_the_table_says() {
    let bin = build_oracle();
    let cases = gocases::cases();
    let b64 = |v: &Vec<u8>| base64::engine::general_purpose::STANDARD.encode(v);
    let input: Vec<serde_json::Value> = cases
        .iter()
        .map(|c| {
            serde_json::json!({
                "name": c.name,
                "presented": c.presented.iter().map(b64).collect::<Vec<_>>(),
                "roots": c.roots.iter().map(b64).collect::<Vec<_>>(),
                "server_name": c.server_name,
                "now": pki::rfc3339(c.now),
                "allow_sha1": c.allow_sha1,
            })
        })
        .collect();
    let mut child = Command::new(&bin)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the oracle");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(serde_json::to_string(&input).expect("json").as_bytes())
            .expect("write cases");
    }
    let out = child.wait_with_output().expect("oracle output");
    assert!(
        out.status.success(),
        "oracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("results");
    assert_eq!(results.len(), cases.len());
    let version = go_version();
    let release = version
        .split_whitespace()
        .nth(2)
        .and_then(GoVersion::parse)
        .unwrap_or_else(|| panic!("cannot read the Go release from {version:?}"));
    let mut failures = Vec::new();
    let mut compared = 0;
    for (c, r) in cases.iter().zip(&results) {
        let got = r["result"].as_str().unwrap_or_default();
        let want = c.go.as_deref().unwrap_or("OK");
        if got != want {
            failures.push(format!(
                "{} [{}]\n   table: {want}\n      go: {got}",
                c.name, c.row
            ));
        }
        // regtrust, called directly with the same inputs, against what Go just said.
        let opts = VerifyOptions {
            server_name: &c.server_name,
            now: c.now,
            go: release,
            godebug: GoDebug {
                x509sha1: c.allow_sha1,
                ..GoDebug::default()
            },
        };
        let ours = match verify(&c.presented, &c.roots, &opts) {
            Ok(_) => "OK".to_string(),
            // A signature ring cannot check: regtrust says so instead of guessing.
            Err(GoVerifyError::Undecidable { .. }) if c.ours == gocases::Ours::Undecidable => {
                continue
            }
            Err(e) => e.message(),
        };
        compared += 1;
        if ours != got {
            failures.push(format!(
                "{} [{}]\n        go: {got}\n  regtrust: {ours}",
                c.name, c.row
            ));
        }
    }
    assert!(
        compared * 10 >= cases.len() * 9,
        "regtrust decided only {compared} of {} cases",
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "{} ({}) disagrees with the table in {} of {} cases:\n{}",
        go_version(),
        bin.display(),
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
