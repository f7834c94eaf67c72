//! The probe's bench (README figures), not a test: ignored by default, it asserts nothing
//! about time. Run it with
//! `cargo test --test probe_bench -- --ignored --nocapture` (needs hyperfine).
//!
//! 1. One `regtrust probe` against one docker-registry vs one `skopeo inspect` of the same
//!    registry with the same trust dir and the same system roots: median wall time and
//!    mean CPU (user + system) per run, as reported by hyperfine, and their ratio.
//! 2. A sweep of 50 registries (50 docker-registry processes) in one `regtrust probe`, vs
//!    one probe; and the same sweep with one host that never answers (`--timeout 2s`): the
//!    sweep costs about the slowest host.
//! 3. The agent's view: `probe_all` over the 50 registries in one process, first round (system
//!    roots loaded) and a warm round (system roots cached), median of 10 rounds.

mod support;

use serde_json::Value;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use support::skopeo::policy_file;
use support::{require_tool, Pki, Registry, LOOPBACK_V4};

/// A host root with the machine's system roots copied in (as Go reads them: the bundle and
/// every file of /etc/ssl/certs, same-dir hash links left out) and a CRI-O trust dir per
/// host holding `ca`.
fn node(hosts: &[String], ca: &Path) -> tempfile::TempDir {
    let root = tempfile::Builder::new()
        .prefix("regtrust-bench-node-")
        .tempdir()
        .unwrap();
    let certs = root.path().join("etc/ssl/certs");
    std::fs::create_dir_all(&certs).unwrap();
    for entry in std::fs::read_dir("/etc/ssl/certs").unwrap().flatten() {
        let path = entry.path();
        if let Ok(target) = std::fs::read_link(&path) {
            if !target.to_string_lossy().contains('/') {
                continue;
            }
        }
        if let Ok(bytes) = std::fs::read(&path) {
            std::fs::write(certs.join(entry.file_name()), bytes).unwrap();
        }
    }
    for h in hosts {
        let dir = root.path().join("etc/containers/certs.d").join(h);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(ca, dir.join("ca.crt")).unwrap();
    }
    root
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// hyperfine's figures for each command: (median wall s, mean user+system s).
fn hyperfine(name: &str, runs: u32, commands: &[String]) -> Vec<(f64, f64)> {
    let out = tempfile::NamedTempFile::new().unwrap();
    let mut c = Command::new(require_tool("hyperfine", "hyperfine"));
    c.args([
        "--warmup",
        "3",
        "--runs",
        &runs.to_string(),
        "-N",
        "-i",
        "--export-json",
    ])
    .arg(out.path())
    .args(commands);
    let status = c.status().expect("run hyperfine");
    assert!(status.success(), "{name}: hyperfine failed");
    let v: Value = serde_json::from_slice(&std::fs::read(out.path()).unwrap()).unwrap();
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["median"].as_f64().unwrap(),
                r["user"].as_f64().unwrap() + r["system"].as_f64().unwrap(),
            )
        })
        .collect()
}

fn ms(s: f64) -> String {
    format!("{:.1} ms", s * 1000.0)
}

fn probe_cmd(root: &Path, hosts: &[String], extra: &str) -> String {
    format!(
        "{} probe {} --runtime crio --output json --host-root {} {extra}",
        env!("CARGO_BIN_EXE_regtrust"),
        hosts.join(" "),
        shell_quote(&root.display().to_string())
    )
}

#[test]
#[ignore = "bench: run with --ignored --nocapture"]
fn bench_probe_vs_skopeo_and_a_sweep_of_50() {
    let pki = Pki::new();
    let ca = pki.root("bench-ca");
    let leaf = pki.server(&ca, "bench", &["127.0.0.1"]);

    // 1. One probe vs one skopeo inspect.
    let reg = Registry::tls(&leaf.cert_path, &leaf.key_path).start();
    reg.push_tiny_image(Some(&ca.cert_path));
    let one = vec![reg.host()];
    let root = node(&one, &ca.cert_path);
    let (policy_dir, policy) = policy_file();
    let skopeo = format!(
        "env CONTAINERS_REGISTRIES_CONF={} {} --policy {} --registries.d {} --tmpdir {} inspect --raw --retry-times 0 --cert-dir {} --no-creds docker://{}",
        shell_quote(&policy_dir.path().join("registries.conf").display().to_string()),
        require_tool("skopeo", "skopeo").display(),
        shell_quote(&policy.display().to_string()),
        shell_quote(&policy_dir.path().join("registries.d").display().to_string()),
        shell_quote(&policy_dir.path().display().to_string()),
        shell_quote(
            &root
                .path()
                .join("etc/containers/certs.d")
                .join(reg.host())
                .display()
                .to_string()
        ),
        reg.image_ref()
    );
    let probe = probe_cmd(root.path(), &one, "");
    let r = hyperfine("one", 30, &[probe.clone(), skopeo]);
    let (p, s) = (r[0], r[1]);
    println!(
        "\none registry: regtrust probe {} wall, {} CPU; skopeo inspect {} wall, {} CPU; \
         probe/skopeo = {:.2} wall, {:.2} CPU",
        ms(p.0),
        ms(p.1),
        ms(s.0),
        ms(s.1),
        p.0 / s.0,
        p.1 / s.1
    );

    // 2. A sweep of 50 registries.
    let regs: Vec<Registry> = (0..50)
        .map(|_| Registry::tls(&leaf.cert_path, &leaf.key_path).start())
        .collect();
    let hosts: Vec<String> = regs.iter().map(|r| r.host()).collect();
    // One host that accepts TCP and never answers.
    let silent = TcpListener::bind(SocketAddr::new(LOOPBACK_V4, 0)).unwrap();
    let mut with_silent = hosts.clone();
    with_silent[49] = silent.local_addr().unwrap().to_string();
    let mut all = hosts.clone();
    all.push(with_silent[49].clone());
    let root50 = node(&all, &ca.cert_path);
    let r = hyperfine(
        "sweep",
        10,
        &[
            probe_cmd(root50.path(), &hosts[..1], ""),
            probe_cmd(root50.path(), &hosts, ""),
            probe_cmd(root50.path(), &with_silent, "--timeout 2s"),
        ],
    );
    println!(
        "sweep: 1 registry {} wall; 50 registries {} wall, {} CPU ({:.1}x one probe); \
         50 with one silent host and --timeout 2s: {} wall\n",
        ms(r[0].0),
        ms(r[1].0),
        ms(r[1].1),
        r[1].0 / r[0].0,
        ms(r[2].0)
    );
    drop(silent);

    // 3. In-process rounds, as the agent runs them.
    let args = regtrust::cli::InputArgs {
        pull_secret: vec![],
        ca: vec![],
        registry: vec![],
        host_root: root50.path().to_path_buf(),
        state_dir: None,
        runtime: "crio".into(),
        replace_foreign: false,
        node_name: Some("bench".into()),
        go_version: Vec::new(),
    };
    let cfg = regtrust::sync::Config::from_args(&args).unwrap();
    let inputs = regtrust::sync::read_inputs(&cfg);
    let parsed: Vec<regtrust::host::RegistryHost> =
        hosts.iter().map(|h| h.parse().unwrap()).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let round = || {
        let t = std::time::Instant::now();
        let reports = rt.block_on(regtrust::probe::probe_all(
            &cfg,
            &inputs,
            &parsed,
            std::time::Duration::from_secs(10),
        ));
        assert!(reports
            .iter()
            .all(|r| r.verdict == regtrust::report::Verdict::Ok));
        t.elapsed().as_secs_f64()
    };
    let first = round();
    let mut warm: Vec<f64> = (0..10).map(|_| round()).collect();
    warm.sort_by(|a, b| a.total_cmp(b));
    println!(
        "probe_all over 50 registries in one process: first round {}, warm round median {}\n",
        ms(first),
        ms(warm[5])
    );
    let _keep: Vec<PathBuf> = vec![policy];
}
