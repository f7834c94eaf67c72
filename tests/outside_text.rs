//! Issue 9 point 7's proof (outside text and secrets), with the real binary: text from a
//! report, a server or a pull secret can neither drive a terminal (ESC, BEL), nor reorder or
//! hide what an admin reads (U+202E RIGHT-TO-LEFT OVERRIDE, zero-width characters), on the
//! table, the page, the JSON and the error paths; and a pull-secret key with userinfo
//! (`https://robot:PASSWORD@harbor.local`) never shows its password in a report, a problem,
//! a log line or an error.

mod aggregator_support;
mod support;

use aggregator_support::{report, Binary, READ_TOKEN, WRITE_TOKEN};
use regtrust::report::Verdict;
use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::process::Command;

const PASSWORD: &str = "Sup3r-PASSWORD";
/// Characters that must never reach a terminal or a page as themselves.
const HOSTILE: [char; 7] = [
    '\u{1b}', '\u{7}', '\u{202e}', '\u{2066}', '\u{200b}', '\u{200d}', '\u{feff}',
];

fn assert_clean(what: &str, text: &str) {
    if let Some(c) = text.chars().find(|c| HOSTILE.contains(c)) {
        panic!("{what} carries the raw character {c:?}:\n{text:?}");
    }
}

fn regtrust(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_regtrust"))
        .args(args)
        .env_remove("DOCKER_CONFIG")
        .output()
        .expect("run regtrust");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A node named with a right-to-left override and a registry message with ESC, BEL and
/// zero-width characters: the aggregator takes them, and `regtrust report` (table and JSON)
/// and the page show them escaped; the JSON still reads back the same strings.
#[test]
fn hostile_report_text_is_shown_escaped_in_the_table_json_and_page() {
    let tmp = tempfile::tempdir().unwrap();
    let (write, read) = aggregator_support::token_files(tmp.path());
    let agg = Binary::start(
        &tmp.path().join("fleet.db"),
        &[
            "--token-file",
            &write.display().to_string(),
            "--read-token-file",
            &read.display().to_string(),
        ],
    );
    let node = "evil\u{202e}gpj.exe";
    let message =
        "x509: \u{1b}]0;pwned\u{7}\u{1b}[2J zero\u{200b}width\u{200d} \u{2066}iso\u{2069}\u{feff}";
    let doc = report(
        node,
        &[("harbor.local", Verdict::UnknownAuthority, message, "fix it")],
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = rt.block_on(async {
        aggregator_support::post(&agg.base, Some(WRITE_TOKEN), doc.to_json())
            .await
            .status()
    });
    assert!(status.is_success(), "{status}");

    let token_file = read.display().to_string();
    let (code, table, stderr) =
        regtrust(&["report", "--url", &agg.base, "--token-file", &token_file]);
    assert_eq!(code, Some(1), "{table}\n{stderr}");
    assert_clean("the report table", &table);
    assert_clean("report's stderr", &stderr);
    // The table's fields pass `report::printable` (Rust's `\u{..}` notation) before the
    // terminal; JSON output keeps JSON's `\uXXXX` (checked below).
    assert!(table.contains("evil\\u{202e}gpj.exe"), "{table}");

    let (_, json, _) = regtrust(&[
        "report",
        "--url",
        &agg.base,
        "--token-file",
        &token_file,
        "--output",
        "json",
    ]);
    assert_clean("the report JSON", &json);
    let v: serde_json::Value = serde_json::from_str(&json).expect("still valid JSON");
    assert_eq!(v["nodes"][0]["node"], node, "{v:#}");

    let page = rt.block_on(async {
        aggregator_support::http()
            .get(format!("{}/", agg.base))
            .bearer_auth(READ_TOKEN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    assert_clean("the page", &page);
    assert!(page.contains("evil\\u{202e}gpj.exe"), "{page}");
}

/// A server that answers one request with `body` (HTTP/1.0, then closes). The thread
/// gives up after 30 s without a connection and returns whether a client came, so a
/// client that never connects fails the test instead of hanging it.
fn canned(body: &'static str) -> (String, std::thread::JoinHandle<bool>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let thread = std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            match listener.accept() {
                Ok((mut s, _)) => {
                    s.set_nonblocking(false).unwrap();
                    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
                        .unwrap();
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf);
                    let _ = write!(
                        s,
                        "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    return true;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if std::time::Instant::now() > deadline {
                        return false;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => panic!("accept: {e}"),
            }
        }
    });
    (base, thread)
}

const HOSTILE_STATE: &str = r#"{"generated_at":"2026-01-01T00:00:00Z","stale_after_seconds":180,"nodes":[{"node":"n","state":"\u001b]0;pwned\u0007\u001b[2J\u202e","worst":"ok","stale":false,"last_report_at":"2026-01-01T00:00:00Z","last_report_age_seconds":1,"generated_at":"2026-01-01T00:00:00Z","agent_version":"1","problems":0,"registries":[]}]}"#;

/// serde quotes an unknown variant raw (`unknown variant `...``): an answer whose node state
/// is an escape sequence reached `regtrust report`'s stderr as one. Now it is escaped.
#[test]
fn a_serde_error_quoting_hostile_text_reaches_stderr_escaped() {
    let (base, server) = canned(HOSTILE_STATE);
    let (code, stdout, stderr) = regtrust(&["report", "--url", &base]);
    assert!(server.join().unwrap(), "regtrust report never asked {base}");
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    assert!(stderr.contains("unknown variant"), "{stderr}");
    assert_clean("report's stderr", &stderr);
    assert!(stderr.contains("\\u{1b}"), "{stderr}");
}

/// Userinfo in `--url` is refused before any connection (the shared client,
/// `fleetapi::parse_url`), and the refusal never shows the password.
#[test]
fn userinfo_in_the_report_url_is_refused_unshown_and_unsent() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://robot:{PASSWORD}@{}", listener.local_addr().unwrap());
    let (code, stdout, stderr) = regtrust(&["report", "--url", &url]);
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    assert!(stderr.contains("credentials in the URL"), "{stderr}");
    assert!(!stderr.contains(PASSWORD), "{stderr}");
    assert!(!stdout.contains(PASSWORD), "{stdout}");
    assert_clean("report's stderr", &stderr);
    // regtrust has exited: a connection it made would wait in the backlog.
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("regtrust connected with credentials in the URL: {other:?}"),
    }
}

/// A pull-secret key with userinfo: the problem names the key with `***` for the userinfo,
/// in `sync` and `probe` (JSON and text, stdout and stderr).
#[test]
fn userinfo_in_a_pull_secret_key_is_redacted_everywhere() {
    use base64::Engine as _;
    let root = tempfile::tempdir().unwrap();
    for d in ["etc/containers/certs.d", "etc/docker"] {
        std::fs::create_dir_all(root.path().join(d)).unwrap();
    }
    let auth = base64::engine::general_purpose::STANDARD.encode("robot:pw");
    let secret = root.path().join("pull-secret.json");
    let key = format!("https://robot:{PASSWORD}@harbor.local");
    let doc = serde_json::json!({ "auths": {
        key.as_str(): { "auth": auth },
        "harbor.local": { "auth": auth },
    } });
    std::fs::write(&secret, serde_json::to_vec(&doc).unwrap()).unwrap();
    let host_root = root.path().display().to_string();
    let secret_arg = secret.display().to_string();
    let common = [
        "--host-root",
        host_root.as_str(),
        "--runtime",
        "crio",
        "--pull-secret",
        secret_arg.as_str(),
    ];
    let mut seen_problem = false;
    for (cmd, output) in [
        ("sync", "json"),
        ("sync", "text"),
        ("probe", "json"),
        ("probe", "text"),
    ] {
        let mut args = vec![cmd];
        args.extend(common);
        args.extend(["--output", output]);
        if cmd == "probe" {
            args.extend(["--timeout", "2s", "harbor.local"]);
        }
        let (_, stdout, stderr) = regtrust(&args);
        for (stream, text) in [("stdout", &stdout), ("stderr", &stderr)] {
            assert!(
                !text.contains(PASSWORD),
                "{cmd} --output {output}: the password is on {stream}:\n{text}"
            );
        }
        seen_problem |= stdout.contains("https://***@harbor.local");
    }
    assert!(seen_problem, "the key's problem is not reported at all");
}
