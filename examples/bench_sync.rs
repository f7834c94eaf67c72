//! Bench: one `regtrust sync` pass for 1, 10 and 100 registries on three runtimes.
//! Wall time of the first pass (everything installed) and of a pass where nothing changed
//! (median of runs; it must write nothing), and the peak RSS of the real binary for each,
//! measured with GNU time (`apt-get install time`).
//!
//! Run: `make bench` (or `cargo run --release --example bench_sync`).

use regtrust::sync::{sync_once, CaSpec, Config};
use regtrust::trust::Runtime;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const RUNS: usize = 21;

fn main() {
    let bin = release_binary();
    println!("| registries | files | first pass | unchanged pass (median of {RUNS}) | peak RSS first | peak RSS unchanged |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for n in [1usize, 10, 100] {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = setup(tmp.path(), n);
        let t = Instant::now();
        let first = sync_once(&cfg, time::OffsetDateTime::now_utc());
        let first_time = t.elapsed();
        assert!(
            first.wrote && !first.report.needs_attention(),
            "{:#?}",
            first.report.problems
        );
        let files: usize = first.report.registries.iter().map(|r| r.trust.len()).sum();
        let mut times: Vec<Duration> = (0..RUNS)
            .map(|_| {
                let t = Instant::now();
                let r = sync_once(&cfg, time::OffsetDateTime::now_utc());
                let d = t.elapsed();
                assert!(!r.wrote, "an unchanged pass wrote");
                d
            })
            .collect();
        times.sort();
        let median = times[RUNS / 2];

        // Peak memory of the real binary: a fresh host root for the first pass, then again.
        let tmp2 = tempfile::tempdir().unwrap();
        let cfg2 = setup(tmp2.path(), n);
        let rss_first = peak_rss(&bin, &cfg2);
        let rss_again = peak_rss(&bin, &cfg2);
        println!(
            "| {n} | {files} | {:.2} ms | {:.2} ms | {} KiB | {} KiB |",
            ms(first_time),
            ms(median),
            rss_first,
            rss_again
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn setup(dir: &Path, n: usize) -> Config {
    let root = dir.join("host");
    for d in ["etc/docker", "etc/containerd", "etc/containers"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(
        root.join("etc/containerd/config.toml"),
        "[plugins.\"io.containerd.grpc.v1.cri\".registry]\nconfig_path = \"/etc/containerd/certs.d\"\n",
    )
    .unwrap();
    let cas = (0..n)
        .map(|i| {
            let path = dir.join(format!("ca-{i}.pem"));
            std::fs::write(&path, ca_pem(&format!("Bench CA {i}"))).unwrap();
            CaSpec::parse(&format!("registry-{i}.bench.local:5000={}", path.display())).unwrap()
        })
        .collect();
    Config {
        host_root: root.clone(),
        state_dir: root.join("var/lib/regtrust"),
        runtimes: Runtime::ALL.to_vec(),
        replace_foreign: false,
        node: "bench".into(),
        pull_secrets: vec![],
        cas,
        registries: vec![],
        go_versions: Vec::new(),
    }
}

fn ca_pem(cn: &str) -> String {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate().unwrap();
    p.self_signed(&key).unwrap().pem()
}

fn release_binary() -> PathBuf {
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--locked", "--bin", "regtrust"])
        .status()
        .expect("cargo build");
    assert!(status.success());
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    PathBuf::from(target).join("release/regtrust")
}

/// Max RSS in KiB of one `regtrust sync` run, from GNU time's `%M`.
fn peak_rss(bin: &Path, cfg: &Config) -> u64 {
    let mut cmd = Command::new("/usr/bin/time");
    cmd.args(["-f", "%M", "--"]).arg(bin).args([
        "sync",
        "--output",
        "json",
        "--runtime",
        "docker,containerd,crio",
    ]);
    cmd.arg("--host-root").arg(&cfg.host_root);
    for ca in &cfg.cas {
        cmd.arg("--ca").arg(format!(
            "{}={}",
            ca.host.as_ref().unwrap(),
            ca.path.display()
        ));
    }
    let out = cmd
        .output()
        .expect("/usr/bin/time missing: apt-get install time");
    let stderr = String::from_utf8_lossy(&out.stderr);
    stderr
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no RSS figure from GNU time: {stderr}"))
}
