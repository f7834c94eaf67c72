//! Keeps `ca::go_loadable_certs` honest: the same files are read by a real Go program (the
//! loop of `x509.CertPool.AppendCertsFromPEM`, which docker, containerd and CRI-O use on
//! every `*.crt`) and by the Rust port, and the certificates each loads must agree, file by
//! file. It also checks that what `CaBundle::to_pem` writes is loaded whole by Go.
//! Needs the Go toolchain (Debian package `golang-go`); runs offline (standard library only).

use std::path::{Path, PathBuf};
use std::process::Command;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use regtrust::ca::{go_loadable_certs, sha256_hex, CaBundle};

const GO_PROGRAM: &str = r#"
// For each file argument, print one line: the file name, then the SHA-256 of every
// certificate x509.CertPool.AppendCertsFromPEM would add, in order.
package main

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
)

func main() {
	for _, name := range os.Args[1:] {
		data, err := os.ReadFile(name)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		line := name
		// The loop of AppendCertsFromPEM (crypto/x509/cert_pool.go).
		for len(data) > 0 {
			var block *pem.Block
			block, data = pem.Decode(data)
			if block == nil {
				break
			}
			if block.Type != "CERTIFICATE" || len(block.Headers) != 0 {
				continue
			}
			if _, err := x509.ParseCertificate(block.Bytes); err != nil {
				continue
			}
			sum := sha256.Sum256(block.Bytes)
			line += " " + hex.EncodeToString(sum[:])
		}
		fmt.Println(line)
	}
}
"#;

fn ca(cn: &str) -> rcgen::Certificate {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.self_signed(&KeyPair::generate().unwrap()).unwrap()
}

/// Run the Go program over `files`; file name → SHA-256s loaded.
fn go_loads(work: &Path, files: &[PathBuf]) -> Vec<(String, Vec<String>)> {
    let go = which("go").unwrap_or_else(|| {
        panic!("the Go toolchain is needed for this test: install the Debian package golang-go")
    });
    let src = work.join("append_certs.go");
    std::fs::write(&src, GO_PROGRAM).unwrap();
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("go-cache");
    let out = Command::new(go)
        .arg("run")
        .arg(&src)
        .args(files)
        .current_dir(work)
        .env("GOCACHE", &cache)
        .env("GOPATH", work.join("gopath"))
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "")
        .env("CGO_ENABLED", "0")
        .output()
        .expect("run go");
    assert!(
        out.status.success(),
        "go run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let mut parts = l.split(' ');
            let name = parts.next().unwrap().to_string();
            (name, parts.map(str::to_string).collect())
        })
        .collect()
}

fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// Deterministic variations of a two-certificate bundle that stress every rule of Go's
/// `pem.Decode`: where a BEGIN line may start, headers, END-line trailers, whitespace,
/// truncation anywhere.
fn variants(a: &str, b: &str) -> Vec<(String, Vec<u8>)> {
    let two = format!("{a}{b}");
    let mut v: Vec<(String, Vec<u8>)> = vec![
        ("plain".into(), two.clone().into_bytes()),
        ("bom".into(), [b"\xEF\xBB\xBF", two.as_bytes()].concat()),
        ("leading-newline".into(), format!("\n{two}").into_bytes()),
        ("leading-spaces".into(), format!("  {two}").into_bytes()),
        ("leading-tab".into(), format!("\t{two}").into_bytes()),
        ("crlf".into(), two.replace('\n', "\r\n").into_bytes()),
        ("cr-only".into(), two.replace('\n', "\r").into_bytes()),
        (
            "indented-body".into(),
            two.lines()
                .map(|l| format!("  {l}\n"))
                .collect::<String>()
                .into_bytes(),
        ),
        (
            "trailing-blanks".into(),
            two.lines()
                .map(|l| format!("{l} \t\n"))
                .collect::<String>()
                .into_bytes(),
        ),
        (
            "junk-lines".into(),
            format!("subject=x\nissuer=y\n{a}# note\n{b}").into_bytes(),
        ),
        (
            "junk-before-begin".into(),
            format!("junk{a}{b}").into_bytes(),
        ),
        (
            "junk-after-end".into(),
            format!("{}junk\n{b}", a.trim_end()).into_bytes(),
        ),
        (
            "no-newline-between".into(),
            format!("{}{b}", a.trim_end()).into_bytes(),
        ),
        (
            "no-final-newline".into(),
            two.trim_end().as_bytes().to_vec(),
        ),
        (
            "headers".into(),
            two.replacen(
                "-----BEGIN CERTIFICATE-----\n",
                "-----BEGIN CERTIFICATE-----\nProc-Type: 4,X\n\n",
                1,
            )
            .into_bytes(),
        ),
        (
            "trusted-certificate".into(),
            two.replacen("CERTIFICATE-----", "TRUSTED CERTIFICATE-----", 2)
                .into_bytes(),
        ),
        (
            "mismatched-end".into(),
            two.replacen("-----END CERTIFICATE-----", "-----END X509 CRL-----", 1)
                .into_bytes(),
        ),
        (
            "lowercase-label".into(),
            two.replacen("CERTIFICATE", "certificate", 2).into_bytes(),
        ),
        ("body-with-spaces".into(), {
            let mut lines: Vec<String> = two.lines().map(str::to_string).collect();
            lines[2] = lines[2].chars().flat_map(|c| [c, ' ']).collect();
            (lines.join("\n") + "\n").into_bytes()
        }),
        ("empty".into(), Vec::new()),
    ];
    let bytes = two.as_bytes();
    for cut in (0..bytes.len()).step_by(37) {
        v.push((format!("truncated-{cut}"), bytes[..cut].to_vec()));
        let mut dropped = bytes.to_vec();
        dropped.remove(cut);
        v.push((format!("dropped-byte-{cut}"), dropped));
    }
    v
}

#[test]
fn rust_port_agrees_with_go() {
    let (a, b) = (ca("Differential CA A"), ca("Differential CA B"));
    let work = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let mut ours = Vec::new();
    for (name, bytes) in variants(&a.pem(), &b.pem()) {
        let path = work.path().join(format!("{name}.crt"));
        std::fs::write(&path, &bytes).unwrap();
        let loaded: Vec<String> = go_loadable_certs(&bytes)
            .iter()
            .map(|d| sha256_hex(d))
            .collect();
        ours.push((path.display().to_string(), loaded));
        // And what regtrust would write from it, when it accepts it, Go loads whole.
        if let Ok(bundle) = CaBundle::from_pem(&name, &bytes) {
            let path = work.path().join(format!("{name}.written.crt"));
            std::fs::write(&path, bundle.to_pem()).unwrap();
            let all: Vec<String> = bundle
                .certificates()
                .iter()
                .map(|c| c.sha256.clone())
                .collect();
            ours.push((path.display().to_string(), all));
            files.push(path);
        }
        files.push(work.path().join(format!("{name}.crt")));
    }
    let theirs = go_loads(work.path(), &files);
    let mut ours_sorted = ours.clone();
    ours_sorted.sort();
    let mut theirs_sorted = theirs.clone();
    theirs_sorted.sort();
    assert_eq!(ours_sorted.len(), theirs_sorted.len());
    let mut disagreements = Vec::new();
    for (o, t) in ours_sorted.iter().zip(&theirs_sorted) {
        assert_eq!(o.0, t.0);
        if o.1 != t.1 {
            disagreements.push(format!("{}: rust {:?} go {:?}", o.0, o.1, t.1));
        }
    }
    assert!(disagreements.is_empty(), "{disagreements:#?}");
    // The table covered the interesting outcomes: all, some, none.
    let counts: Vec<usize> = theirs.iter().map(|t| t.1.len()).collect();
    for n in [0, 1, 2] {
        assert!(counts.contains(&n), "no variant where Go loads {n}");
    }
}
