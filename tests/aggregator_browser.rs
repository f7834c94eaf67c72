//! The fleet page in a real browser: Debian's `chromium`, headless, loads `/` from the real
//! aggregator on loopback; the test finds the failing node and registry in the rendered
//! DOM, checks that a hostile node name stayed text, and keeps a screenshot at
//! `artifacts/fleet-page.png`.

mod aggregator_support;

use aggregator_support::*;
use regtrust::report::Verdict;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn chromium() -> PathBuf {
    for dir in std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
    {
        for name in ["chromium", "chromium-browser"] {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!("chromium not found on PATH: apt-get install chromium");
}

/// Run headless chromium with `args` on `url`; stdout goes to a file, the run has a
/// deadline and is killed past it.
fn run_chromium(profile: &Path, out: &Path, args: &[String], url: &str) -> String {
    let stdout = std::fs::File::create(out).unwrap();
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium (apt-get install chromium)");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium {args:?} exited with {status}");
            return std::fs::read_to_string(out).unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium {args:?} did not finish within 120s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The text of the first `<table id="ID">...</table>` in the DOM.
fn table<'a>(dom: &'a str, id: &str) -> &'a str {
    let start = dom
        .find(&format!("<table id=\"{id}\""))
        .unwrap_or_else(|| panic!("no table #{id} in the rendered DOM:\n{dom}"));
    let end = dom[start..].find("</table>").unwrap() + start;
    &dom[start..end]
}

#[test]
fn the_fleet_page_renders_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let (wtok, _) = token_files(dir.path());
    let agg = Binary::start(
        &dir.path().join("fleet.db"),
        &["--token-file", wtok.to_str().unwrap()],
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for r in [
            report(
                "node-ok-1",
                &[
                    ("harbor.local", Verdict::Ok, "", ""),
                    ("quay.local:8443", Verdict::Ok, "", ""),
                ],
            ),
            report(
                "node-ok-2",
                &[
                    ("harbor.local", Verdict::Ok, "", ""),
                    ("quay.local:8443", Verdict::Ok, "", ""),
                ],
            ),
            report(
                "node-new-7",
                &[
                    (
                        "harbor.local",
                        Verdict::UnknownAuthority,
                        UNKNOWN_CA_MSG,
                        UNKNOWN_CA_FIX,
                    ),
                    ("quay.local:8443", Verdict::Ok, "", ""),
                ],
            ),
            report(
                "<script>alert(1)</script>",
                &[(
                    "quay.local:8443",
                    Verdict::Expired,
                    "x509: certificate has expired or is not yet valid",
                    "renew the registry's certificate",
                )],
            ),
        ] {
            assert_eq!(
                post(&agg.base, Some(WRITE_TOKEN), r.to_json())
                    .await
                    .status(),
                200
            );
        }
    });
    let url = format!("{}/", agg.base);

    let dom = run_chromium(
        &dir.path().join("profile-dom"),
        &dir.path().join("dom.html"),
        &["--dump-dom".to_string()],
        &url,
    );
    let failing = table(&dom, "failing");
    let row = failing
        .split("<tr")
        .find(|r| r.contains("node-new-7"))
        .unwrap_or_else(|| panic!("node-new-7 not in the failing table:\n{failing}"));
    assert!(row.contains("harbor.local"), "{row}");
    assert!(row.contains("unknown_authority"), "{row}");
    assert!(row.contains(UNKNOWN_CA_MSG), "{row}");
    let summary = table(&dom, "summary");
    assert!(summary.contains("harbor.local") && summary.contains("unknown_authority"));
    // The hostile name is text in the DOM, not an element: the browser serialises it
    // escaped, and no script element exists at all.
    assert!(
        dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{dom}"
    );
    assert!(
        !dom.contains("<script"),
        "a script element reached the DOM:\n{dom}"
    );

    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let png = artifacts.join("fleet-page.png");
    let _ = std::fs::remove_file(&png);
    run_chromium(
        &dir.path().join("profile-shot"),
        &dir.path().join("shot.out"),
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1280,900".to_string(),
            "--hide-scrollbars".to_string(),
        ],
        &url,
    );
    let bytes = std::fs::read(&png).expect("chromium wrote no screenshot");
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "screenshot is not a PNG"
    );
    eprintln!("screenshot: {}", png.display());
}
