//! Admin-view bench (ignored by default; speed is measured here, never asserted in tests):
//! issue 13's fleet of 5,000 nodes × 10 registries, each node with two runtimes that trust
//! one CA (half the nodes) or the old and the new CA (the other half) for every registry,
//! PEMs included; 10% of the nodes fail one registry; one registry's server certificate
//! expires within 30 days. Against that one seeded fleet it measures:
//! `/` (bytes, p50/p99), `/?page=2`, `/registries/{host}`, `/nodes/{node}`,
//! `/api/v1/registries` and `/api/v1/nodes?failing=true` (p50/p99 of 200 sequential reads
//! each), and `POST /api/v1/preflight` with a new chain (the first, cold call separately).
//!
//! ```text
//! cargo build --release --bin regtrust
//! cargo test --test admin_bench -- --ignored --nocapture
//! ```
//! The aggregator measured is `target/release/regtrust` when present (else
//! `REGTRUST_BENCH_BIN`, else the debug build, and the output says which). Sizes:
//! `REGTRUST_BENCH_NODES` (5000), `REGTRUST_BENCH_REGISTRIES` (10).

mod aggregator_support;

use aggregator_support::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use regtrust::report::{ChainCert, ProbeEntry, RegistryReport, Report, TrustedCa, Verdict};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn ca(cn: &str) -> Ca {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let cert = p.self_signed(&key).unwrap();
    Ca { cert, key }
}

fn leaf(issuer: &Ca, host: &str, days: i64) -> rcgen::Certificate {
    let mut p = CertificateParams::new(vec![host.to_string()]).unwrap();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, host);
    p.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    p.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(days);
    let key = KeyPair::generate().unwrap();
    p.signed_by(&key, &issuer.cert, &issuer.key).unwrap()
}

fn sha(der: &[u8]) -> String {
    regtrust::ca::sha256_hex(der)
}

fn trusted(c: &rcgen::Certificate, cn: &str, file: &str) -> TrustedCa {
    TrustedCa {
        subject: format!("CN={cn}"),
        sha256: sha(c.der()),
        not_after: "2035-01-01T00:00:00Z".into(),
        days_left: 3000,
        file: file.into(),
        pem: c.pem(),
    }
}

fn aggregator_exe() -> (Option<String>, &'static str) {
    if let Ok(b) = std::env::var("REGTRUST_BENCH_BIN") {
        return (Some(b), "REGTRUST_BENCH_BIN");
    }
    let release = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/regtrust");
    if release.is_file() {
        return (Some(release.display().to_string()), "release");
    }
    (
        None,
        "DEBUG build (no target/release/regtrust): figures are not the product's",
    )
}

async fn times(
    client: &reqwest::Client,
    url: &str,
    n: usize,
    body: Option<&str>,
) -> (Vec<Duration>, usize) {
    let mut out = Vec::with_capacity(n);
    let mut bytes = 0;
    for _ in 0..n {
        let start = Instant::now();
        let req = match body {
            Some(b) => client
                .post(url)
                .header("content-type", "application/json")
                .body(b.to_string()),
            None => client.get(url),
        };
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 200, "{url}");
        bytes = r.bytes().await.unwrap().len();
        out.push(start.elapsed());
    }
    out.sort();
    (out, bytes)
}

#[test]
#[ignore]
fn bench_admin_views() {
    let nodes = knob("REGTRUST_BENCH_NODES", 5000);
    let regs = knob("REGTRUST_BENCH_REGISTRIES", 10);
    let (exe, which) = aggregator_exe();
    let dir = tempfile::tempdir().unwrap();
    let (wtok, _) = token_files(dir.path());
    let agg = Binary::start_with(
        exe.as_deref(),
        &dir.path().join("fleet.db"),
        &["--token-file", wtok.to_str().unwrap()],
    );
    let old = ca("Harbor Old CA");
    let new = ca("Harbor New CA");
    let hosts: Vec<String> = (0..regs).map(|i| format!("reg-{i}.bench:5000")).collect();
    let old_leaves: Vec<rcgen::Certificate> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let name = h.split(':').next().unwrap();
            leaf(&old, name, if i == regs - 1 { 12 } else { 300 })
        })
        .collect();
    let new_leaf = leaf(&new, hosts[0].split(':').next().unwrap(), 300);
    let t_old_d = trusted(&old.cert, "Harbor Old CA", "/etc/docker/certs.d/h/ca.crt");
    let t_new_d = trusted(&new.cert, "Harbor New CA", "/etc/docker/certs.d/h/ca.crt");
    let mut t_old_c = t_old_d.clone();
    t_old_c.file = "/etc/containerd/certs.d/h/ca.crt".into();
    let mut t_new_c = t_new_d.clone();
    t_new_c.file = "/etc/containerd/certs.d/h/ca.crt".into();
    let now = time::OffsetDateTime::now_utc();
    let bodies: Vec<String> = (0..nodes)
        .map(|n| {
            let mut r = Report::new(format!("node-{n:05}"), now);
            for (i, h) in hosts.iter().enumerate() {
                let verdict = if i == 3 && n % 10 == 0 {
                    Verdict::UnknownAuthority
                } else {
                    Verdict::Ok
                };
                let chain = vec![ChainCert {
                    subject: format!("CN={}", h.split(':').next().unwrap()),
                    issuer: "CN=Harbor Old CA".into(),
                    sha256: sha(old_leaves[i].der()),
                    not_after: regtrust::report::rfc3339(
                        now + time::Duration::days(if i == regs - 1 { 12 } else { 300 }),
                    ),
                }];
                let probe = |runtime: &str, trusted: Vec<TrustedCa>| ProbeEntry {
                    runtime: runtime.into(),
                    verdict,
                    message: if verdict == Verdict::Ok {
                        String::new()
                    } else {
                        "x509: certificate signed by unknown authority".into()
                    },
                    cause: String::new(),
                    latency_ms: 3,
                    server_chain: chain.clone(),
                    server_days_left: Some(300),
                    warnings: vec![],
                    fix: String::new(),
                    ca_days_left: Some(3000),
                    trusted,
                    anchor: None,
                    runtime_version: String::new(),
                    go_version: "go1.22.7".into(),
                    runtime_message: String::new(),
                };
                let (d, c) = if n % 2 == 0 {
                    (vec![t_old_d.clone()], vec![t_old_c.clone()])
                } else {
                    (
                        vec![t_old_d.clone(), t_new_d.clone()],
                        vec![t_old_c.clone(), t_new_c.clone()],
                    )
                };
                r.registries.push(RegistryReport {
                    host: h.clone(),
                    verdict,
                    message: String::new(),
                    trust: vec![],
                    probes: vec![probe("docker", d), probe("containerd", c)],
                    ca: None,
                    harbor: None,
                });
            }
            r.to_json()
        })
        .collect();
    let report_bytes = bodies.iter().map(String::len).sum::<usize>() / nodes.max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let base = agg.base.clone();
    rt.block_on(async move {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap();
        let bodies = Arc::new(bodies);
        let seed_start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for w in 0..16 {
            let bodies = Arc::clone(&bodies);
            let client = client.clone();
            let url = format!("{base}/api/v1/reports");
            tasks.spawn(async move {
                for i in (w..bodies.len()).step_by(16) {
                    let r = client
                        .post(&url)
                        .bearer_auth(WRITE_TOKEN)
                        .header("content-type", "application/json")
                        .body(bodies[i].clone())
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 200);
                }
            });
        }
        while let Some(t) = tasks.join_next().await {
            t.unwrap();
        }
        let seeded = seed_start.elapsed();
        println!(
            "aggregator: {which}\nseeded {nodes} nodes × {regs} registries ({report_bytes} bytes per report) in {}",
            ms(seeded)
        );
        let chain = serde_json::json!({
            "registry": hosts[0],
            "chain_pem": new_leaf.pem(),
        })
        .to_string();
        let pf_url = format!("{base}/api/v1/preflight");
        let (cold, _) = times(&client, &pf_url, 1, Some(&chain)).await;
        let (pf, pf_bytes) = times(&client, &pf_url, 10, Some(&chain)).await;
        let overview = format!("{base}/");
        let (page, page_bytes) = times(&client, &overview, 20, None).await;
        let (page2, page2_bytes) = times(&client, &format!("{base}/?page=2"), 20, None).await;
        let (pq, pq_bytes) = times(&client, &format!("{base}/?q=node-0499"), 20, None).await;
        let (reg, reg_bytes) = times(
            &client,
            &format!("{base}/registries/{}", hosts[0]),
            20,
            None,
        )
        .await;
        let (node, node_bytes) = times(&client, &format!("{base}/nodes/node-00010"), 20, None).await;
        let (regs_api, regs_bytes) =
            times(&client, &format!("{base}/api/v1/registries"), 200, None).await;
        let (failing, failing_bytes) = times(
            &client,
            &format!("{base}/api/v1/nodes?failing=true"),
            200,
            None,
        )
        .await;
        let row = |what: &str, t: &[Duration], bytes: usize| {
            println!(
                "{what:<34} p50 {:>9}  p99 {:>9}  {:>9} bytes",
                ms(pct(t, 0.5)),
                ms(pct(t, 0.99)),
                bytes
            );
        };
        row("POST /api/v1/preflight (cold)", &cold, pf_bytes);
        row("POST /api/v1/preflight", &pf, pf_bytes);
        row("GET / (page 1)", &page, page_bytes);
        row("GET /?page=2", &page2, page2_bytes);
        row("GET /?q=node-0499", &pq, pq_bytes);
        row("GET /registries/reg-0.bench:5000", &reg, reg_bytes);
        row("GET /nodes/node-00010", &node, node_bytes);
        row("GET /api/v1/registries", &regs_api, regs_bytes);
        row("GET /api/v1/nodes?failing=true", &failing, failing_bytes);
        println!(
            "targets: / < 2 MB {} and < 0.5 s {}; /api/v1/registries p99 <= 50 ms {}; failing p99 <= 50 ms {}; pre-flight <= 1 s {}",
            page_bytes < 2_000_000,
            pct(&page, 0.99) < Duration::from_millis(500),
            pct(&regs_api, 0.99) <= Duration::from_millis(50),
            pct(&failing, 0.99) <= Duration::from_millis(50),
            pct(&pf, 0.99) <= Duration::from_secs(1) && cold[0] <= Duration::from_secs(1),
        );
    });
    // After a restart the facts cache is empty: the first read that needs facts reads every
    // node's report back from the store.
    let mut agg = agg;
    agg.kill9();
    let agg = Binary::start_with(
        exe.as_deref(),
        &dir.path().join("fleet.db"),
        &["--token-file", wtok.to_str().unwrap()],
    );
    let url = format!("{}/registries/reg-0.bench:5000", agg.base);
    rt.block_on(async move {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap();
        let (first, _) = times(&client, &url, 1, None).await;
        let (then, _) = times(&client, &url, 10, None).await;
        println!(
            "after a restart: first /registries/… {} (reads {nodes} reports back), then p50 {}",
            ms(first[0]),
            ms(pct(&then, 0.5))
        );
    });
}
