//! The messages an operator's common mistakes get, on the real binary (issue 15 points 4
//! and 5): `--ca` URL and path forms, "the last good CA stays installed" only when one is,
//! `--help` on repeatable flags and probe's own flags, `report --url` mistakes, the read
//! token, durations, the 405 hint, `report --forget` and `--forget-after`.

mod aggregator_support;

use aggregator_support::*;
use regtrust::report::Verdict;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

fn regtrust(args: &[&str]) -> Output {
    let mut c = Command::new(bin());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("REGTRUST_") {
            c.env_remove(k);
        }
    }
    c.args(args).env("RUST_LOG", "warn").output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ca_pem(cn: &str) -> String {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate().unwrap();
    p.self_signed(&key).unwrap().pem()
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn ca_forms_and_the_last_good_ca() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("host");
    fs::create_dir_all(root.join("etc/docker")).unwrap();
    // A docker node, as auto-detection sees one.
    fs::write(root.join("etc/docker/daemon.json"), "{}").unwrap();
    let root = s(&root);
    let ca = dir.path().join("ca.pem");
    fs::write(&ca, ca_pem("Forms CA")).unwrap();
    // A URL is accepted, as --registry accepts it; the trust dir is the bare host.
    let out = regtrust(&[
        "sync",
        "--host-root",
        &root,
        "--ca",
        &format!("https://Harbor.Local:8443/={}", s(&ca)),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(dir
        .path()
        .join("host/etc/docker/certs.d/harbor.local:8443/ca.crt")
        .is_file());
    // A repository path is refused, naming what to give.
    for v in [
        format!("harbor.local/library={}", s(&ca)),
        format!("https://harbor.local/v2/library={}", s(&ca)),
    ] {
        let out = regtrust(&["sync", "--host-root", &root, "--ca", &v]);
        assert_eq!(out.status.code(), Some(2), "{v}");
        let t = text(&out);
        assert!(
            t.contains("HOST must be a bare host[:port]")
                && t.contains("give --ca harbor.local=PATH"),
            "{t}"
        );
    }
    // An invalid CA: "stays installed" only where a CA is installed.
    let key = dir.path().join("key.pem");
    fs::write(
        &key,
        "-----BEGIN EC PRIVATE KEY-----\nAA==\n-----END EC PRIVATE KEY-----\n",
    )
    .unwrap();
    let out = regtrust(&[
        "sync",
        "--host-root",
        &root,
        "--ca",
        &format!("new.local={}", s(&key)),
    ]);
    let t = text(&out);
    assert!(!t.contains("the last good CA stays installed"), "{t}");
    assert!(t.contains("no CA was installed for it before"), "{t}");
    let out = regtrust(&[
        "sync",
        "--host-root",
        &root,
        "--ca",
        &format!("harbor.local:8443={}", s(&key)),
    ]);
    assert!(
        text(&out).contains("the last good CA stays installed"),
        "{}",
        text(&out)
    );
}

#[test]
fn help_says_what_repeats_and_probe_lists_only_its_flags() {
    let sync = text(&regtrust(&["sync", "--help"]));
    for flag in ["--pull-secret", "--ca", "--registry"] {
        let line = sync
            .lines()
            .skip_while(|l| !l.trim_start().starts_with(flag))
            .take(4)
            .collect::<String>();
        assert!(
            line.contains("Repeatable, and takes a comma-separated list"),
            "{flag}: {line}"
        );
    }
    assert!(
        sync.contains("--prune") && sync.contains("--dry-run"),
        "{sync}"
    );
    let probe = text(&regtrust(&["probe", "--help"]));
    for flag in ["--state-dir", "--replace-foreign", "--prune", "--dry-run"] {
        assert!(!probe.contains(flag), "probe --help lists {flag}:\n{probe}");
    }
    assert!(probe.contains("--pull-secret") && probe.contains("--host-root"));
    let agent = text(&regtrust(&["agent", "--help"]));
    assert!(agent.contains("--uninstall"), "{agent}");
    let top = text(&regtrust(&["--help"]));
    assert!(top.contains("it prunes what it installed"), "{top}");
}

#[test]
fn durations_read_as_operators_type_them() {
    for d in ["90s", "1m30s", "1.5m"] {
        // A real parse: a bad duration is exit 2 before anything runs, so reaching the
        // connection error (exit 2 with another message) proves the value was accepted.
        let out = regtrust(&["report", "--url", "http://127.0.0.1:1", "--timeout", d]);
        let t = text(&out);
        assert!(!t.contains("invalid value"), "{d}: {t}");
        assert!(t.contains("127.0.0.1:1"), "{d}: {t}");
    }
    let out = regtrust(&["report", "--url", "http://127.0.0.1:1", "--timeout", "1,5m"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("e.g. 500ms, 90s, 1m30s, 1.5m"),
        "{}",
        text(&out)
    );
}

#[test]
fn report_url_mistakes_say_what_to_give() {
    for (url, want) in [
        (
            "aggregator:9811",
            "no scheme; give the aggregator's base URL",
        ),
        (
            "http://agg:9811/api/v1/reports",
            "that is where agents post reports",
        ),
        ("http://node-1:9810", "an agent's own endpoint"),
    ] {
        let out = regtrust(&["report", "--url", url]);
        assert_eq!(out.status.code(), Some(2), "{url}");
        assert!(text(&out).contains(want), "{url}: {}", text(&out));
    }
}

#[test]
fn read_token_forget_and_forget_after() {
    let dir = tempfile::tempdir().unwrap();
    let (wtok, rtok) = token_files(dir.path());
    let db = dir.path().join("fleet.db");
    let agg = Binary::start(
        &db,
        &[
            "--token-file",
            wtok.to_str().unwrap(),
            "--read-token-file",
            rtok.to_str().unwrap(),
        ],
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for node in ["gone-node", "kept-node"] {
            let r = report(node, &[("harbor.local", Verdict::Ok, "", "")]);
            assert!(post(&agg.base, Some(WRITE_TOKEN), r.to_json())
                .await
                .status()
                .is_success());
        }
    });
    // No token sent: it needs one (never "refused"); a wrong one: refused.
    let out = regtrust(&["report", "--url", &agg.base]);
    assert_eq!(out.status.code(), Some(2));
    let t = text(&out);
    assert!(
        t.contains("needs a read token") && !t.contains("refused"),
        "{t}"
    );
    let wrong = dir.path().join("wrong.token");
    fs::write(&wrong, "nope\n").unwrap();
    let out = regtrust(&[
        "report",
        "--url",
        &agg.base,
        "--token-file",
        s(&wrong).as_str(),
    ]);
    assert!(
        text(&out).contains("refused the read token"),
        "{}",
        text(&out)
    );

    // --forget with the read token: refused, saying which token it needs.
    let out = regtrust(&[
        "report",
        "--url",
        &agg.base,
        "--token-file",
        rtok.to_str().unwrap(),
        "--forget",
        "gone-node",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("--forget needs --token-file with the agents' write token"),
        "{}",
        text(&out)
    );
    // With the write token: forgotten (exit 0), then unknown (exit 1).
    let forget = || {
        regtrust(&[
            "report",
            "--url",
            &agg.base,
            "--token-file",
            wtok.to_str().unwrap(),
            "--forget",
            "gone-node",
        ])
    };
    let out = forget();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("forgot node \"gone-node\""));
    let out = forget();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let out = regtrust(&[
        "report",
        "--url",
        &agg.base,
        "--token-file",
        rtok.to_str().unwrap(),
        "--output",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let nodes: Vec<&str> = v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["node"].as_str().unwrap())
        .collect();
    assert_eq!(nodes, ["kept-node"]);
    drop(agg);

    // --forget-after: must exceed --stale-after; a silent node goes by itself.
    let out = regtrust(&[
        "aggregator",
        "--db",
        s(&db).as_str(),
        "--allow-open-loopback",
        "--listen",
        "127.0.0.1:0",
        "--stale-after",
        "3m",
        "--forget-after",
        "1m",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("must be longer than --stale-after"),
        "{}",
        text(&out)
    );
    let agg = Binary::start(
        &db,
        &[
            "--token-file",
            wtok.to_str().unwrap(),
            "--stale-after",
            "500ms",
            "--forget-after",
            "1s",
        ],
    );
    rt.block_on(async {
        eventually(
            "the silent node to be forgotten",
            Duration::from_secs(30),
            || {
                let base = agg.base.clone();
                async move {
                    let resp = http()
                        .get(format!("{base}/api/v1/nodes/kept-node"))
                        .send()
                        .await
                        .unwrap();
                    resp.status() == reqwest::StatusCode::NOT_FOUND
                }
            },
        )
        .await;
    });
}

#[test]
fn the_aggregator_says_listening_only_after_its_database_opens() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the database file should be: opening it fails.
    let db = dir.path().join("db-is-a-dir");
    fs::create_dir_all(&db).unwrap();
    let out = regtrust(&[
        "aggregator",
        "--db",
        s(&db).as_str(),
        "--allow-open-loopback",
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        !text(&out).contains("aggregator listening"),
        "{}",
        text(&out)
    );
}

/// An agent whose --report-url is the aggregator's base URL (the page answers POST with 405)
/// says to add /api/v1/reports.
#[test]
fn a_report_url_without_the_path_says_to_add_it() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let (wtok, _) = token_files(dir.path());
    let agg = Binary::start(
        &dir.path().join("fleet.db"),
        &["--token-file", wtok.to_str().unwrap()],
    );
    let root = dir.path().join("host");
    fs::create_dir_all(root.join("etc/docker")).unwrap();
    let mut agent = Command::new(bin())
        .args([
            "--log-format",
            "json",
            "agent",
            "--listen",
            "127.0.0.1:0",
            "--registry",
            "127.0.0.1:1",
            "--host-root",
        ])
        .arg(&root)
        .args([
            "--report-url",
            &format!("{}/", agg.base),
            "--report-token-file",
        ])
        .arg(&wtok)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = agent.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    let found = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            // The push failure's error field, as `Binary::spawn` reads its line: a substring of
            // the whole text line also matched a timestamp's digits (18:59:58.244056Z held
            // "405", and the verdict line was taken for the push failure).
            Ok(l) => {
                let v: serde_json::Value = serde_json::from_str(&l).unwrap_or_default();
                match v["fields"]["error"].as_str() {
                    Some(e) if e.starts_with("the aggregator answered 405") => {
                        break Some(e.to_string())
                    }
                    _ => seen.push(l),
                }
            }
            Err(_) => break None,
        }
    };
    let _ = agent.kill();
    let _ = agent.wait();
    let line = found.unwrap_or_else(|| panic!("no 405 push failure logged:\n{}", seen.join("\n")));
    assert!(line.contains("add /api/v1/reports"), "{line}");
}
