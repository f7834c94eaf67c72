//! Keeps the Go ports honest by running real Go on the same inputs:
//! - `ca::go_loadable_certs` against the loop of `x509.CertPool.AppendCertsFromPEM` (what
//!   docker, containerd and CRI-O run on every `*.crt`), file by file; and what
//!   `CaBundle::to_pem` writes must load whole.
//! - `pull_secret`'s `auth` decoding against kubelet's `decodeDockerConfigFieldAuth`
//!   (kubernetes pkg/credentialprovider/config.go, copied verbatim below).
//!
//! Needs the Go toolchain (Debian package `golang-go`); runs offline (standard library only).

use std::path::{Path, PathBuf};
use std::process::Command;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use regtrust::ca::{go_loadable_certs, sha256_hex, CaBundle};
use regtrust::pull_secret::PullSecrets;

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

/// `go run` a one-file program with `args`; its stdout.
fn go_run(work: &Path, name: &str, program: &str, args: &[PathBuf]) -> String {
    let go = which("go").unwrap_or_else(|| {
        panic!("the Go toolchain is needed for this test: install the Debian package golang-go")
    });
    let src = work.join(name);
    std::fs::write(&src, program).unwrap();
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("go-cache");
    let out = Command::new(go)
        .arg("run")
        .arg(&src)
        .args(args)
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
        "go run {name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Run the AppendCertsFromPEM program over `files`; file name → SHA-256s loaded.
fn go_loads(work: &Path, files: &[PathBuf]) -> Vec<(String, Vec<String>)> {
    go_run(work, "append_certs.go", GO_PROGRAM, files)
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

const GO_AUTH_PROGRAM: &str = r#"
// Reads a JSON array of auth values; prints, per value, "ERR" or "OK <hex user> <hex pass>".
package main

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// Verbatim from kubernetes pkg/credentialprovider/config.go.
func decodeDockerConfigFieldAuth(field string) (username, password string, err error) {

	var decoded []byte

	// StdEncoding can only decode padded string
	// RawStdEncoding can only decode unpadded string
	if strings.HasSuffix(strings.TrimSpace(field), "=") {
		// decode padded data
		decoded, err = base64.StdEncoding.DecodeString(field)
	} else {
		// decode unpadded data
		decoded, err = base64.RawStdEncoding.DecodeString(field)
	}

	if err != nil {
		return
	}

	parts := strings.SplitN(string(decoded), ":", 2)
	if len(parts) != 2 {
		err = fmt.Errorf("unable to parse auth field, must be formatted as base64(username:password)")
		return
	}

	username = parts[0]
	password = parts[1]

	return
}

func main() {
	data, err := os.ReadFile(os.Args[1])
	if err != nil {
		panic(err)
	}
	var fields []string
	if err := json.Unmarshal(data, &fields); err != nil {
		panic(err)
	}
	for _, f := range fields {
		u, p, err := decodeDockerConfigFieldAuth(f)
		if err != nil {
			fmt.Println("ERR")
			continue
		}
		fmt.Println("OK", hex.EncodeToString([]byte(u)), hex.EncodeToString([]byte(p)))
	}
}
"#;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn auth_values() -> Vec<String> {
    use base64::Engine as _;
    let std = base64::engine::general_purpose::STANDARD;
    let raw = base64::engine::general_purpose::STANDARD_NO_PAD;
    let url = base64::engine::general_purpose::URL_SAFE;
    let texts: [&[u8]; 12] = [
        b"user:pass",
        b"u:",
        b":p",
        b":",
        b"robot$proj+ci:pa:ss:word",
        b"nocolon",
        "\u{fc}ser:\u{f1}".as_bytes(),
        b"user:\0nul",
        b"user:\xff\xfe",
        b"\xff:pass",
        b"user:??>>??>>",
        b"a",
    ];
    let mut v = Vec::new();
    for t in texts {
        let padded = std.encode(t);
        let unpadded = raw.encode(t);
        v.push(padded.clone());
        v.push(unpadded.clone());
        v.push(url.encode(t));
        v.push(format!("{padded}\n"));
        v.push(format!("\r\n{padded}"));
        v.push(format!(" {padded}"));
        v.push(format!("{padded} "));
        v.push(format!("{unpadded} "));
        v.push(format!("{padded}\t"));
        v.push(format!("{unpadded}="));
        v.push(format!("{padded}="));
        let wrapped: String = padded
            .as_bytes()
            .chunks(4)
            .map(|c| format!("{}\r\n", std::str::from_utf8(c).unwrap()))
            .collect();
        v.push(wrapped);
        let mid = padded.len() / 2;
        v.push(format!("{} {}", &padded[..mid], &padded[mid..]));
        v.push(format!("{}={}", &padded[..mid], &padded[mid..]));
    }
    for s in [
        "YQ",
        "YQ=",
        "YQ==",
        "YR==",
        "YR",
        "Y",
        "Y===",
        "====",
        "=",
        "dXNlcjpwYXNzMR==",
        "dXNlcjpwYXNz\u{a0}",
        "dXNlcjpwYXNz=\u{a0}",
        "\u{2003}dXNlcjpw=",
        "dXNl\ncjpw\rYXNz",
    ] {
        v.push(s.to_string());
    }
    v
}

/// What regtrust makes of one auth value, in the Go program's terms.
fn ours(auth: &str) -> String {
    let doc = serde_json::json!({"auths": {"h.local": {"auth": auth}}}).to_string();
    let s = PullSecrets::parse(Path::new("/in/x"), doc.as_bytes());
    if s.problems
        .iter()
        .any(|p| p.message.contains("malformed auth"))
    {
        return "ERR".into();
    }
    if s.problems.iter().any(|p| p.message.contains("not UTF-8")) {
        return "OK not-utf8".into();
    }
    let c = &s.credentials[0];
    format!(
        "OK {} {}",
        hex(c.username.as_bytes()),
        hex(c.password().as_bytes())
    )
}

#[test]
fn auth_decoding_agrees_with_kubelet() {
    let work = tempfile::tempdir().unwrap();
    let values = auth_values();
    let input = work.path().join("auths.json");
    std::fs::write(&input, serde_json::to_vec(&values).unwrap()).unwrap();
    let go = go_run(work.path(), "auth.go", GO_AUTH_PROGRAM, &[input]);
    let go: Vec<&str> = go.lines().collect();
    assert_eq!(go.len(), values.len());
    let mut disagreements = Vec::new();
    let (mut ok, mut err) = (0, 0);
    for (value, theirs) in values.iter().zip(go) {
        let mine = ours(value);
        let agree = if mine == "OK not-utf8" {
            // kubelet keeps the raw bytes; regtrust reports it cannot use them.
            let parts: Vec<&str> = theirs.split(' ').collect();
            parts[0] == "OK"
                && parts[1..].iter().any(|h| {
                    let bytes: Vec<u8> = (0..h.len())
                        .step_by(2)
                        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                        .collect();
                    String::from_utf8(bytes).is_err()
                })
        } else {
            mine == theirs
        };
        if !agree {
            disagreements.push(format!("{value:?}: regtrust {mine:?}, kubelet {theirs:?}"));
        }
        if theirs == "ERR" {
            err += 1;
        } else {
            ok += 1;
        }
    }
    assert!(disagreements.is_empty(), "{disagreements:#?}");
    assert!(
        ok > 20 && err > 20,
        "the table covers both outcomes: {ok} ok, {err} err"
    );
}
