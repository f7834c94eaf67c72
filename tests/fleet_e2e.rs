//! Issue 5's end-to-end proof with real processes: the Debian docker-registry over TLS with a
//! private CA, the `regtrust aggregator` binary, and two `regtrust agent` binaries (two host
//! roots, two node names), one given the CA and one not. `regtrust report --failing` must
//! list exactly the second, with `unknown_authority`.

mod support;

use serde_json::Value;
use std::path::Path;
use std::process::Command;
use support::{free_port, wait_for, Daemon, Pki, Registry, LOOPBACK_V4};

const DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

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

/// A node's host root: all three runtimes, containerd reading certs.d.
fn node_root(dir: &Path) {
    for d in ["etc/docker", "etc/containers", "etc/containerd"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::write(
        dir.join("etc/containerd/config.toml"),
        "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d\"\n",
    )
    .unwrap();
    // `--runtime auto` finds each runtime by its config file (an empty dir proves nothing).
    std::fs::write(dir.join("etc/docker/daemon.json"), "{}\n").unwrap();
    std::fs::create_dir_all(dir.join("etc/crio")).unwrap();
    std::fs::write(dir.join("etc/crio/crio.conf"), "[crio]\n").unwrap();
}

/// `regtrust report ... --output json` and its exit code.
fn fleet(url: &str, extra: &[&str]) -> (Option<i32>, Value) {
    let out = regtrust()
        .args(["report", "--url", url, "--output", "json"])
        .args(extra)
        .output()
        .unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code(), v)
}

/// Every (node, registry, verdict) the JSON output names.
fn verdicts(v: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let nodes = v
        .get("nodes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for n in nodes {
        let name = n["node"].as_str().unwrap_or_default().to_string();
        for r in n["registries"].as_array().cloned().unwrap_or_default() {
            out.push((
                name.clone(),
                r["registry"]
                    .as_str()
                    .or(r["host"].as_str())
                    .unwrap_or_default()
                    .to_string(),
                r["verdict"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    out.sort();
    out
}

#[test]
fn report_failing_lists_exactly_the_node_without_the_ca() {
    let pki = Pki::new();
    let ca = pki.root("fleet-ca");
    let leaf = pki.server(&ca, "fleet-registry", &["127.0.0.1"]);
    let registry = Registry::tls(&leaf.chain_path, &leaf.key_path).start();
    let host = registry.host();

    let tmp = tempfile::tempdir().unwrap();
    let token = tmp.path().join("token");
    std::fs::write(&token, "fleet-e2e-token\n").unwrap();
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

    let ca_input = ca.write_to(tmp.path(), "harbor-ca.pem");
    let mut agents = Vec::new();
    for (node, with_ca) in [("node-with-ca", true), ("node-without-ca", false)] {
        let root = tmp.path().join(node);
        node_root(&root);
        let mut c = regtrust();
        c.args(["agent", "--node-name", node, "--registry", &host])
            .arg("--host-root")
            .arg(&root)
            .args([
                "--report-url",
                &format!("{url}/api/v1/reports"),
                "--report-token-file",
            ])
            .arg(&token)
            .args(["--listen", &format!("127.0.0.1:{}", free_port(LOOPBACK_V4))]);
        if with_ca {
            c.arg("--ca").arg(format!("{host}={}", ca_input.display()));
        }
        agents.push(Daemon::spawn(
            "regtrust agent",
            c,
            &tmp.path().join(format!("{node}.log")),
        ));
    }

    // Both nodes have reported a probed verdict.
    let all = wait_for(
        "both nodes' probed verdicts at the aggregator",
        DEADLINE,
        || {
            for a in agents.iter_mut() {
                if let Some(log) = a.exited() {
                    panic!("an agent exited: {log}");
                }
            }
            let (_, v) = fleet(&url, &[]);
            let got = verdicts(&v);
            (got.len() == 2 && got.iter().all(|(_, _, verdict)| verdict != "unknown"))
                .then_some(got)
        },
    );
    assert_eq!(
        all,
        [
            ("node-with-ca".to_string(), host.clone(), "ok".to_string()),
            (
                "node-without-ca".to_string(),
                host.clone(),
                "unknown_authority".to_string()
            ),
        ],
        "aggregator log:\n{}",
        aggregator.log()
    );

    // --failing: exactly the second node, with unknown_authority; exit 1.
    let (code, v) = fleet(&url, &["--failing"]);
    assert_eq!(code, Some(1), "{v:#}");
    assert_eq!(
        verdicts(&v),
        [(
            "node-without-ca".to_string(),
            host.clone(),
            "unknown_authority".to_string()
        )],
        "{v:#}"
    );
    // And the table a person reads says the same.
    let out = regtrust()
        .args(["report", "--url", &url, "--failing"])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{table}");
    assert!(
        table.contains("node-without-ca") && table.contains("unknown_authority"),
        "{table}"
    );
    assert!(!table.contains("node-with-ca "), "{table}");
}
