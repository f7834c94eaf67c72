//! Issue 13's rotation proof with real processes: the Debian docker-registry over TLS with
//! an "old" private CA, the `regtrust aggregator` binary, and four `regtrust agent`
//! binaries (scratch host roots): two given only the old CA, two given the bundle old + new.
//! Then, before the registry changes anything:
//! - the registry page shows the CA fingerprint distribution (old CA: 4 nodes, new: 2);
//! - each report carries the trusted CAs' PEMs (public certificates only);
//! - `regtrust report --preflight NEW-CHAIN --registry HOST` predicts that exactly the
//!   old-only nodes would fail (exit 1), and `regtrust probe HOST --chain NEW-CHAIN` on an
//!   old-only host root says the same offline;
//! - `regtrust report --image HOST/team/app:1` normalises to HOST and exits 0.
//!
//! Then the registry switches to the new chain, and the agents' own probes must agree with
//! the pre-flight's prediction, node by node; `--image` now exits 1, and 0 with `--node` on
//! a node that trusts both.

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use support::{free_port, wait_for, Daemon, Pki, Registry, LOOPBACK_V4};

const DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

fn regtrust() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_regtrust"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("REGTRUST_") {
            c.env_remove(k);
        }
    }
    c.env("RUST_LOG", "info");
    c
}

/// A node's host root: docker and containerd (reading certs.d).
fn node_root(dir: &Path) {
    for d in ["etc/docker", "etc/containerd"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::write(
        dir.join("etc/containerd/config.toml"),
        "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d\"\n",
    )
    .unwrap();
    // `--runtime auto` finds docker by its config file (an empty dir is no evidence).
    std::fs::write(dir.join("etc/docker/daemon.json"), "{}\n").unwrap();
}

/// `regtrust ARGS --output json`: exit code, JSON, stderr.
fn json(args: &[&str]) -> (Option<i32>, Value, String) {
    let out = regtrust()
        .args(args)
        .args(["--output", "json"])
        .output()
        .unwrap();
    (
        out.status.code(),
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// node → its verdict for the registry, from `GET /api/v1/nodes`.
fn verdicts(url: &str) -> BTreeMap<String, String> {
    let (_, v, _) = json(&["report", "--url", url]);
    let mut out = BTreeMap::new();
    for n in v["nodes"].as_array().cloned().unwrap_or_default() {
        for r in n["registries"].as_array().cloned().unwrap_or_default() {
            out.insert(
                n["node"].as_str().unwrap_or_default().to_string(),
                r["verdict"].as_str().unwrap_or_default().to_string(),
            );
        }
    }
    out
}

fn get(url: &str) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let r = reqwest::get(url).await.unwrap();
        assert_eq!(r.status(), 200, "{url}");
        r.text().await.unwrap()
    })
}

/// A screenshot of `url` by Debian's headless chromium, kept in `artifacts/NAME`.
fn screenshot(url: &str, name: &str) {
    let chromium = support::require_tool("chromium", "chromium");
    let profile = tempfile::tempdir().unwrap();
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let png = artifacts.join(name);
    let _ = std::fs::remove_file(&png);
    let mut c = Command::new(chromium);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--window-size=1280,1100",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .arg(format!("--screenshot={}", png.display()))
    .arg(url)
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    // Not `output()`: chromium's helper processes may keep pipes open after it exits.
    let mut child = c
        .spawn()
        .expect("start chromium (apt-get install chromium)");
    let status = wait_for("chromium to write the screenshot", DEADLINE, || {
        child.try_wait().unwrap()
    });
    assert!(
        status.success(),
        "chromium --screenshot exited with {status}"
    );
    let bytes = std::fs::read(&png).expect("chromium wrote no screenshot");
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{name} is not a PNG"
    );
}

/// The `<tr>` of `table` whose text contains `needle`.
fn row<'a>(html: &'a str, table: &str, needle: &str) -> &'a str {
    let start = html
        .find(&format!("<table id=\"{table}\""))
        .unwrap_or_else(|| panic!("no table #{table}:\n{html}"));
    let end = html[start..].find("</table>").unwrap() + start;
    html[start..end]
        .split("<tr")
        .find(|r| r.contains(needle))
        .unwrap_or_else(|| panic!("no row with {needle} in #{table}:\n{}", &html[start..end]))
}

#[test]
fn the_preflight_predicts_the_rotation_and_the_fingerprints_show_its_progress() {
    let pki = Pki::new();
    let old_ca = pki.root("harbor-old-ca");
    let new_ca = pki.root("harbor-new-ca");
    let old_leaf = pki.server(&old_ca, "harbor-old", &["127.0.0.1"]);
    let new_leaf = pki.server(&new_ca, "harbor-new", &["127.0.0.1"]);
    let mut registry = Registry::tls(&old_leaf.chain_path, &old_leaf.key_path).start();
    let host = registry.host();

    let tmp = tempfile::tempdir().unwrap();
    let token = tmp.path().join("token");
    std::fs::write(&token, "rotation-token\n").unwrap();
    let agg_port = free_port(LOOPBACK_V4);
    let url = format!("http://127.0.0.1:{agg_port}");
    let mut agg_cmd = regtrust();
    agg_cmd
        .args([
            "aggregator",
            "--listen",
            &format!("127.0.0.1:{agg_port}"),
            "--db",
        ])
        .arg(tmp.path().join("fleet.db"))
        .arg("--token-file")
        .arg(&token);
    let mut aggregator = Daemon::spawn(
        "regtrust aggregator",
        agg_cmd,
        &tmp.path().join("aggregator.log"),
    );
    wait_for("the aggregator to answer", DEADLINE, || {
        if let Some(log) = aggregator.exited() {
            panic!("the aggregator exited: {log}");
        }
        std::net::TcpStream::connect(("127.0.0.1", agg_port)).ok()
    });

    let old_only = old_ca.write_to(tmp.path(), "old.pem");
    let bundle = tmp.path().join("bundle.pem");
    std::fs::write(&bundle, format!("{}{}", old_ca.cert_pem, new_ca.cert_pem)).unwrap();
    let nodes = [
        ("old-1", &old_only),
        ("old-2", &old_only),
        ("both-1", &bundle),
        ("both-2", &bundle),
    ];
    let mut agents = Vec::new();
    for (node, ca) in nodes {
        let root = tmp.path().join(node);
        node_root(&root);
        let mut c = regtrust();
        c.args(["agent", "--node-name", node])
            .arg("--host-root")
            .arg(&root)
            .arg("--ca")
            .arg(format!("{host}={}", ca.display()))
            // Both runtimes, whatever `auto` would find in a scratch root.
            .args(["--runtime", "docker,containerd"])
            .args([
                "--probe-interval",
                "1s",
                "--report-url",
                &format!("{url}/api/v1/reports"),
                "--report-token-file",
            ])
            .arg(&token)
            .args(["--listen", &format!("127.0.0.1:{}", free_port(LOOPBACK_V4))]);
        agents.push(Daemon::spawn(
            "regtrust agent",
            c,
            &tmp.path().join(format!("{node}.log")),
        ));
    }
    let check_agents = |agents: &mut Vec<Daemon>| {
        for a in agents.iter_mut() {
            if let Some(log) = a.exited() {
                panic!("an agent exited: {log}");
            }
        }
    };
    let all_ok: BTreeMap<String, String> = nodes
        .iter()
        .map(|(n, _)| (n.to_string(), "ok".to_string()))
        .collect();
    wait_for("all four nodes ok with the old chain", DEADLINE, || {
        check_agents(&mut agents);
        (verdicts(&url) == all_ok).then_some(())
    });

    // The fingerprint distribution: every node trusts the old CA, two the new one.
    let page = get(&format!("{url}/registries/{host}"));
    let old_row = row(&page, "fingerprints", &old_ca.sha256_hex());
    assert!(old_row.contains("trusted by 4 nodes"), "{old_row}");
    let new_row = row(&page, "fingerprints", &new_ca.sha256_hex());
    assert!(new_row.contains("trusted by 2 nodes"), "{new_row}");
    assert!(
        new_row.contains("both-1") && new_row.contains("both-2") && !new_row.contains("old-1"),
        "{new_row}"
    );
    let chain_row = row(&page, "chains", &old_leaf.sha256_hex());
    assert!(chain_row.contains("4 nodes"), "{chain_row}");
    screenshot(
        &format!("{url}/registries/{host}"),
        "rotation-registry-page.png",
    );
    screenshot(&format!("{url}/nodes/both-1"), "rotation-node-page.png");

    // The report carries each trusted CA's PEM beside its sha256: the certificate, no key.
    let node_doc: Value =
        serde_json::from_str(&get(&format!("{url}/api/v1/nodes/both-1"))).unwrap();
    let raw = node_doc["report"].to_string();
    assert!(!raw.contains("PRIVATE KEY"), "{raw}");
    let probes = node_doc["report"]["registries"][0]["probes"]
        .as_array()
        .unwrap();
    assert!(!probes.is_empty(), "{raw}");
    for p in probes {
        let trusted = p["trusted"].as_array().unwrap();
        assert_eq!(trusted.len(), 2, "{p}");
        for t in trusted {
            let pem = t["pem"].as_str().unwrap();
            let sha = t["sha256"].as_str().unwrap();
            let want = if sha == old_ca.sha256_hex() {
                &old_ca.cert_pem
            } else {
                &new_ca.cert_pem
            };
            assert_eq!(pem.trim(), want.trim(), "{t}");
        }
    }

    // The pre-flight with the new chain: exactly the old-only nodes would fail.
    let new_chain = new_leaf.chain_path.to_str().unwrap();
    let (code, pf, err) = json(&[
        "report",
        "--url",
        &url,
        "--preflight",
        new_chain,
        "--registry",
        &host,
    ]);
    assert_eq!(code, Some(1), "{pf:#} {err}");
    assert_eq!(pf["registry"], host.as_str());
    assert_eq!(pf["would_fail"], 2, "{pf:#}");
    let predicted: BTreeMap<String, String> = pf["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["node"].as_str().unwrap().to_string(),
                n["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: BTreeMap<String, String> = [
        ("both-1", "ok"),
        ("both-2", "ok"),
        ("old-1", "unknown_authority"),
        ("old-2", "unknown_authority"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(predicted, want, "{pf:#}");
    for n in pf["nodes"].as_array().unwrap() {
        let runtimes = n["runtimes"].as_array().unwrap();
        assert_eq!(runtimes.len(), 2, "docker and containerd: {n}");
        if n["verdict"] == "unknown_authority" {
            let m = runtimes[0]["message"].as_str().unwrap();
            assert!(
                m.contains("x509: certificate signed by unknown authority"),
                "{m}"
            );
        }
    }
    // The old chain is fine everywhere: exit 0.
    let (code, pf_old, err) = json(&[
        "report",
        "--url",
        &url,
        "--preflight",
        old_leaf.chain_path.to_str().unwrap(),
        "--registry",
        &host,
    ]);
    assert_eq!(code, Some(0), "{pf_old:#} {err}");
    assert_eq!(pf_old["would_fail"], 0);
    // The table a person reads.
    let out = regtrust()
        .args(["report", "--url", &url, "--preflight", new_chain])
        .args(["--registry", &host])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{table}");
    assert!(table.contains("2 of 4 nodes would fail."), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("old-1") && l.contains("unknown_authority")),
        "{table}"
    );

    // Offline on one node: the same verdicts from the node's own trust files.
    for (node, want_code, want) in [("old-1", 1, "unknown_authority"), ("both-1", 0, "ok")] {
        let out = regtrust()
            .args(["probe", &host, "--chain", new_chain, "--output", "json"])
            .arg("--host-root")
            .arg(tmp.path().join(node))
            .args(["--runtime", "docker,containerd"])
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        assert_eq!(
            out.status.code(),
            Some(want_code),
            "{node}: {v:#} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for p in v["registries"][0]["probes"].as_array().unwrap() {
            assert_eq!(p["verdict"], want, "{node}: {p}");
            assert_eq!(
                p["server_chain"][0]["sha256"],
                new_leaf.sha256_hex().as_str()
            );
        }
    }

    // --image: the reference normalises to the registry host; everyone pulls today.
    let image = format!("{host}/team/app:1");
    let (code, img, err) = json(&["report", "--url", &url, "--image", &image]);
    assert_eq!(code, Some(0), "{img:#} {err}");
    assert_eq!(img["registry"], host.as_str());
    assert_eq!(img["nodes"].as_array().unwrap().len(), 4);

    // The switch: the registry now serves the new chain. The agents' own probes must
    // agree with the pre-flight, node by node.
    registry.restart_with_tls(&new_leaf.chain_path, &new_leaf.key_path);
    wait_for(
        "the agents' verdicts on the new chain to match the pre-flight",
        DEADLINE,
        || {
            check_agents(&mut agents);
            (verdicts(&url) == want).then_some(())
        },
    );
    let (code, img, err) = json(&["report", "--url", &url, "--image", &image]);
    assert_eq!(code, Some(1), "{img:#} {err}");
    assert_eq!(img["cannot_pull"], 2, "{img:#}");
    let (code, img, err) = json(&[
        "report", "--url", &url, "--image", &image, "--node", "both-1",
    ]);
    assert_eq!(code, Some(0), "{img:#} {err}");
    assert_eq!(img["nodes"][0]["node"], "both-1");
    assert_eq!(img["nodes"][0]["verdict"], "ok");
    let (code, img, _) = json(&[
        "report", "--url", &url, "--image", &image, "--node", "old-2",
    ]);
    assert_eq!(code, Some(1), "{img:#}");
    assert_eq!(img["nodes"][0]["verdict"], "unknown_authority");
    for a in agents.iter_mut() {
        a.stop();
    }
    aggregator.stop();
}
