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

/// A CA or server certificate as a report names it, expiring `days` days (and an hour)
/// from now.
fn cert_in(days: i64) -> String {
    regtrust::report::rfc3339(
        time::OffsetDateTime::now_utc() + time::Duration::days(days) + time::Duration::hours(1),
    )
}

fn trusted(subject: &str, sha: &str, days: i64) -> regtrust::report::TrustedCa {
    regtrust::report::TrustedCa {
        subject: subject.into(),
        sha256: sha.into(),
        not_after: cert_in(days),
        days_left: days,
        file: "/etc/containerd/certs.d/harbor.local/ca.crt".into(),
        pem: String::new(),
    }
}

/// `href="..."` of the first link in `dom` whose target starts with `prefix`.
fn link<'a>(dom: &'a str, prefix: &str) -> &'a str {
    let at = dom
        .find(&format!("href=\"{prefix}"))
        .unwrap_or_else(|| panic!("no link to {prefix}... in:\n{dom}"));
    let rest = &dom[at + 6..];
    &rest[..rest.find('"').unwrap()]
}

#[test]
fn the_admin_pages_navigate_filter_and_count_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let (wtok, _) = token_files(dir.path());
    let agg = Binary::start(
        &dir.path().join("fleet.db"),
        &["--token-file", wtok.to_str().unwrap()],
    );
    let old_sha = "0a".repeat(32);
    let new_sha = "0b".repeat(32);
    let quay_sha = "0c".repeat(32);
    let leaf_sha = "0d".repeat(32);
    let mut reports = Vec::new();
    let mut a = report("node-a-1", &[("harbor.local", Verdict::Ok, "", "")]);
    a.registries[0].probes[0].trusted = vec![
        trusted("CN=Harbor Old CA", &old_sha, 5),
        trusted("CN=Harbor New CA", &new_sha, 700),
    ];
    a.registries[0].probes[0].server_chain = vec![regtrust::report::ChainCert {
        subject: "CN=harbor.local".into(),
        issuer: "CN=Harbor Old CA".into(),
        sha256: leaf_sha.clone(),
        not_after: cert_in(2),
    }];
    reports.push(a);
    let mut b = report(
        "node-b-7",
        &[(
            "harbor.local",
            Verdict::UnknownAuthority,
            UNKNOWN_CA_MSG,
            UNKNOWN_CA_FIX,
        )],
    );
    b.registries[0].probes[0].trusted = vec![trusted("CN=Harbor Old CA", &old_sha, 5)];
    reports.push(b);
    let mut c = report("node-c-3", &[("quay.local:8443", Verdict::Ok, "", "")]);
    c.registries[0].probes[0].trusted = vec![trusted("CN=Quay CA", &quay_sha, 12)];
    reports.push(c);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for r in reports {
            assert_eq!(
                post(&agg.base, Some(WRITE_TOKEN), r.to_json())
                    .await
                    .status(),
                200
            );
        }
    });
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let mut n = 0;
    let mut dom_of = |url: &str| {
        n += 1;
        run_chromium(
            &dir.path().join(format!("profile-{n}")),
            &dir.path().join(format!("dom-{n}.html")),
            &["--dump-dom".to_string()],
            url,
        )
    };
    let shot = |url: &str, name: &str| {
        let png = artifacts.join(name);
        let _ = std::fs::remove_file(&png);
        run_chromium(
            &dir.path().join(format!("profile-shot-{name}")),
            &dir.path().join(format!("{name}.out")),
            &[
                format!("--screenshot={}", png.display()),
                "--window-size=1280,1000".to_string(),
                "--hide-scrollbars".to_string(),
            ],
            url,
        );
        let bytes = std::fs::read(&png).expect("chromium wrote no screenshot");
        assert!(
            bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{name} is not a PNG"
        );
        eprintln!("screenshot: {}", png.display());
    };

    // The overview: the failing node links to its page; the expiry list is highlighted.
    let overview = format!("{}/", agg.base);
    let dom = dom_of(&overview);
    let expiring = table(&dom, "expiring");
    let old_row = expiring
        .split("<tr")
        .find(|r| r.contains(&old_sha))
        .unwrap_or_else(|| panic!("old CA not in the expiry list:\n{expiring}"));
    assert!(
        old_row.contains("exp-7") && old_row.contains("5 days") && old_row.contains(">2<"),
        "5 days left, 2 nodes: {old_row}"
    );
    let leaf_row = expiring
        .split("<tr")
        .find(|r| r.contains(&leaf_sha))
        .unwrap();
    assert!(
        leaf_row.contains("exp-3") && leaf_row.contains("2 days") && leaf_row.contains("server"),
        "{leaf_row}"
    );
    let quay_row = expiring
        .split("<tr")
        .find(|r| r.contains(&quay_sha))
        .unwrap();
    assert!(
        quay_row.contains("exp-14") && quay_row.contains("12 days"),
        "{quay_row}"
    );
    assert!(
        !expiring.contains(&new_sha),
        "700 days is not expiring: {expiring}"
    );
    shot(&overview, "fleet-overview.png");

    // overview → node
    let failing = table(&dom, "failing");
    let node_href = link(failing, "/nodes/");
    assert_eq!(node_href, "/nodes/node-b-7");
    let node_url = format!("{}{node_href}", agg.base);
    let node_dom = dom_of(&node_url);
    assert!(
        node_dom.contains("id=\"node-name\">node-b-7<"),
        "{node_dom}"
    );
    let verdicts = table(&node_dom, "verdicts");
    assert!(verdicts.contains("unknown_authority") && verdicts.contains(UNKNOWN_CA_FIX));
    let cas = table(&node_dom, "trusted");
    assert!(cas.contains(&old_sha) && cas.contains("5 days"), "{cas}");
    shot(&node_url, "node-page.png");

    // node → registry: the fingerprint distribution with counts in the same row.
    let reg_href = link(verdicts, "/registries/");
    assert_eq!(reg_href, "/registries/harbor.local");
    let reg_url = format!("{}{reg_href}", agg.base);
    let reg_dom = dom_of(&reg_url);
    let fps = table(&reg_dom, "fingerprints");
    let old = fps.split("<tr").find(|r| r.contains(&old_sha)).unwrap();
    assert!(
        old.contains("CA CN=Harbor Old CA") && old.contains("trusted by 2 nodes"),
        "{old}"
    );
    let new = fps.split("<tr").find(|r| r.contains(&new_sha)).unwrap();
    assert!(
        new.contains("trusted by 1 nodes") && new.contains("node-a-1") && !new.contains("node-b-7"),
        "{new}"
    );
    let by_verdict = table(&reg_dom, "by-verdict");
    assert!(by_verdict.contains("ca_not_installed") && by_verdict.contains("node-b-7"));
    shot(&reg_url, "registry-page.png");
    // A port in the host reads raw in the address.
    let quay_dom = dom_of(&format!("{}/registries/quay.local:8443", agg.base));
    assert!(table(&quay_dom, "fingerprints").contains("trusted by 1 nodes"));

    // The filter narrows every section naming nodes, and finds an ok node.
    let filtered_url = format!("{}/?q=A-1", agg.base);
    let filtered = dom_of(&filtered_url);
    let matching = table(&filtered, "matching");
    assert!(matching.contains("node-a-1") && !matching.contains("node-b-7"));
    assert!(filtered.contains("No node is failing."), "{filtered}");
    let events = table(&filtered, "events");
    assert!(
        events.contains("node-a-1") && !events.contains("node-b-7"),
        "{events}"
    );
    let exp = table(&filtered, "expiring");
    let old = exp.split("<tr").find(|r| r.contains(&old_sha)).unwrap();
    assert!(old.contains(">1<"), "one matching node trusts it: {old}");
    assert!(!exp.contains(&quay_sha), "{exp}");
    shot(&filtered_url, "fleet-filtered.png");
}
