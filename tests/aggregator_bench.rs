//! Aggregator bench (ignored by default; speed is measured here, never asserted in tests):
//!
//! ```text
//! cargo test --test aggregator_bench -- --ignored --nocapture
//! ```
//!
//! Starts the real binary (`REGTRUST_BENCH_BIN` may name another build, e.g. a release
//! one), posts `nodes × rounds` reports of `registries` registries each from `clients`
//! concurrent HTTP clients, and prints reports/s, p50/p99/max POST latency, the time of
//! `GET /api/v1/registries`, `/api/v1/nodes` and `/` at that fleet size, the DB size and
//! the aggregator's peak RSS. Sizes come from `REGTRUST_BENCH_NODES` (1000),
//! `REGTRUST_BENCH_REGISTRIES` (10), `REGTRUST_BENCH_ROUNDS` (5), `REGTRUST_BENCH_CLIENTS` (32).

mod aggregator_support;

use aggregator_support::*;
use regtrust::report::Verdict;
use std::sync::{Arc, Mutex};
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
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// User + system CPU seconds the process has used (clock ticks at 100 Hz).
fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[test]
#[ignore = "bench: run with --ignored --nocapture"]
fn bench_aggregator() {
    let nodes = knob("REGTRUST_BENCH_NODES", 1000);
    let registries = knob("REGTRUST_BENCH_REGISTRIES", 10);
    let rounds = knob("REGTRUST_BENCH_ROUNDS", 5);
    let clients = knob("REGTRUST_BENCH_CLIENTS", 32);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("fleet.db");
    let (wtok, _) = token_files(dir.path());
    let mut agg = Binary::start_with(
        std::env::var("REGTRUST_BENCH_BIN").ok().as_deref(),
        &db,
        &["--token-file", wtok.to_str().unwrap()],
    );
    // Drain the aggregator's log so its pipe never fills.
    let stderr = std::mem::replace(&mut agg.stderr, std::sync::mpsc::channel().1);
    std::thread::spawn(move || while stderr.recv().is_ok() {});

    // Every body is built before the clock starts. A tenth of the nodes fail one registry,
    // and which tenth moves every round, so transitions are written too.
    let hosts: Vec<String> = (0..registries)
        .map(|i| format!("registry-{i:02}.example:8443"))
        .collect();
    let mut bodies = Vec::with_capacity(nodes * rounds);
    for round in 0..rounds {
        for n in 0..nodes {
            let regs: Vec<(&str, Verdict, &str, &str)> = hosts
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    if (n + round) % 10 == 0 && i == 0 {
                        (
                            h.as_str(),
                            Verdict::UnknownAuthority,
                            UNKNOWN_CA_MSG,
                            UNKNOWN_CA_FIX,
                        )
                    } else {
                        (h.as_str(), Verdict::Ok, "", "")
                    }
                })
                .collect();
            bodies.push(report(&format!("node-{n:05}"), &regs).to_json());
        }
    }
    let body_bytes: usize = bodies.iter().map(String::len).sum::<usize>() / bodies.len();
    let total = bodies.len();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let base = agg.base.clone();
    let cpu_before = cpu_secs(agg.child.id()).unwrap_or(0.0);
    let (elapsed, mut lat) = rt.block_on(async {
        let queue = Arc::new(Mutex::new(bodies));
        let lat: Arc<Mutex<Vec<Duration>>> = Arc::new(Mutex::new(Vec::with_capacity(total)));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let (queue, lat, base) = (queue.clone(), lat.clone(), base.clone());
            tasks.push(tokio::spawn(async move {
                let http = http();
                loop {
                    let Some(body) = queue.lock().unwrap().pop() else {
                        return;
                    };
                    let t = Instant::now();
                    let resp = http
                        .post(format!("{base}/api/v1/reports"))
                        .bearer_auth(WRITE_TOKEN)
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    assert!(resp.status().is_success());
                    let _ = resp.bytes().await;
                    lat.lock().unwrap().push(t.elapsed());
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let elapsed = start.elapsed();
        let lat = std::mem::take(&mut *lat.lock().unwrap());
        (elapsed, lat)
    });
    lat.sort();
    let cpu_post = cpu_secs(agg.child.id()).unwrap_or(0.0) - cpu_before;

    let read = |path: &str| -> (Duration, Duration, usize) {
        rt.block_on(async {
            let http = http();
            let mut times = Vec::new();
            let mut size = 0;
            for _ in 0..20 {
                let t = Instant::now();
                let resp = http.get(format!("{base}{path}")).send().await.unwrap();
                assert!(resp.status().is_success());
                size = resp.bytes().await.unwrap().len();
                times.push(t.elapsed());
            }
            times.sort();
            (pct(&times, 0.5), pct(&times, 0.99), size)
        })
    };
    let regs = read("/api/v1/registries");
    let nodes_q = read("/api/v1/nodes");
    let page = read("/");
    let db_bytes: u64 = ["fleet.db", "fleet.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.path().join(f)).ok())
        .map(|m| m.len())
        .sum();
    let rss = peak_rss_kib(agg.child.id());

    println!(
        "aggregator bench ({} build of the aggregator)",
        if std::env::var("REGTRUST_BENCH_BIN").is_ok() {
            "given"
        } else {
            "debug"
        }
    );
    println!(
        "  posted {total} reports ({nodes} nodes x {rounds} rounds, {registries} registries each, ~{body_bytes} bytes) from {clients} clients in {:.2} s",
        elapsed.as_secs_f64()
    );
    println!(
        "  throughput      {:.0} reports/s",
        total as f64 / elapsed.as_secs_f64()
    );
    println!(
        "  aggregator CPU  {:.2} s for the posts ({:.0} us per report)",
        cpu_post,
        cpu_post * 1e6 / total as f64
    );
    println!(
        "  POST latency    p50 {}  p99 {}  max {}",
        ms(pct(&lat, 0.5)),
        ms(pct(&lat, 0.99)),
        ms(*lat.last().unwrap())
    );
    println!(
        "  GET /api/v1/registries at {nodes} nodes: p50 {}  p99 {}  ({} bytes)",
        ms(regs.0),
        ms(regs.1),
        regs.2
    );
    println!(
        "  GET /api/v1/nodes      at {nodes} nodes: p50 {}  p99 {}  ({} bytes)",
        ms(nodes_q.0),
        ms(nodes_q.1),
        nodes_q.2
    );
    println!(
        "  GET /                  at {nodes} nodes: p50 {}  p99 {}  ({} bytes)",
        ms(page.0),
        ms(page.1),
        page.2
    );
    println!(
        "  DB size         {:.1} MiB (db + wal)",
        db_bytes as f64 / (1 << 20) as f64
    );
    if let Some(kib) = rss {
        println!("  aggregator peak RSS {:.1} MiB", kib as f64 / 1024.0);
    }
}
