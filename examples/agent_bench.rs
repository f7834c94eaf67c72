//! Benchmarks of the `regtrust agent` binary (issue 4; README material). Not a test: it
//! measures, prints, and asserts nothing.
//!
//! Build the agent in release once, then drive it (the driver itself can be a debug build;
//! it only renames, copies and polls):
//!
//! ```text
//! cargo build --release
//! cargo run --example agent_bench -- latency --agent target/release/regtrust --swaps 200
//! cargo run --example agent_bench -- idle --agent target/release/regtrust --seconds 600 --registries 10
//! ```
//!
//! `--dir DIR` puts the host root, the volumes and the floor under DIR (default: the temp
//! dir); `--dir /dev/shm` takes the disk's fsync out of both figures.
//!
//! `latency`: a Secret volume is updated the way kubelet's AtomicWriter does it (new
//! `..<timestamp>` dir, file written, `..data_tmp` renamed over `..data`, old dir removed),
//! `--swaps` times, 300 ms apart. For each swap it times, from the rename of `..data`, when
//! the new CA is in all three runtime dirs (docker, containerd, CRI-O) as written by the
//! agent, and, in the same run on the same volume, by the floor: a plain
//! `inotifywait -m -e moved_to` + three `cp` loop (inotify-tools). Prints p50/p90/p99/max.
//!
//! `idle`: the agent with `--registries` registries, each with its own Secret volume and
//! CA, left alone for `--seconds`; prints VmHWM and VmRSS from /proc/PID/status and the
//! CPU seconds (utime + stime from /proc/PID/stat) used over the idle period.

use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str, default: &str| -> String {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
            .unwrap_or_else(|| default.to_string())
    };
    let agent = PathBuf::from(flag("--agent", "target/release/regtrust"));
    assert!(
        agent.is_file(),
        "{}: not found; run `cargo build --release` first",
        agent.display()
    );
    match args.first().map(String::as_str) {
        Some("latency") => latency(
            &agent,
            flag("--swaps", "200").parse().unwrap(),
            &base(&flag("--dir", "")),
        ),
        Some("idle") => idle(
            &agent,
            &base(&flag("--dir", "")),
            flag("--seconds", "600").parse().unwrap(),
            flag("--registries", "10").parse().unwrap(),
        ),
        _ => {
            eprintln!("usage: agent_bench latency|idle [--agent PATH] [--dir DIR] [--swaps N] [--seconds S] [--registries N]");
            std::process::exit(2);
        }
    }
}

// ---------------------------------------------------------------------------------------

/// A kubelet-style Secret volume (see tests/agent_util for the step-by-step version).
struct Volume {
    dir: PathBuf,
    seq: u64,
}

impl Volume {
    fn create(dir: &Path, ca_pem: &[u8]) -> Volume {
        std::fs::create_dir_all(dir).unwrap();
        let mut v = Volume {
            dir: dir.to_path_buf(),
            seq: 0,
        };
        v.swap(ca_pem);
        symlink("..data/ca.crt", dir.join("ca.crt")).unwrap();
        v
    }

    /// One AtomicWriter update; returns the instant just before `..data` is replaced.
    fn swap(&mut self, ca_pem: &[u8]) -> Instant {
        let data = self.dir.join("..data");
        let old = std::fs::read_link(&data).ok();
        self.seq += 1;
        let now = time::OffsetDateTime::now_utc();
        let ts = format!(
            "..{:04}_{:02}_{:02}_{:02}_{:02}_{:02}.{}",
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute(),
            now.second(),
            1_000_000 + self.seq
        );
        let tsdir = self.dir.join(&ts);
        std::fs::create_dir(&tsdir).unwrap();
        std::fs::set_permissions(&tsdir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(tsdir.join("ca.crt"), ca_pem).unwrap();
        std::fs::set_permissions(tsdir.join("ca.crt"), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        let tmp = self.dir.join("..data_tmp");
        symlink(&ts, &tmp).unwrap();
        let at = Instant::now();
        std::fs::rename(&tmp, &data).unwrap();
        if let Some(old) = old {
            std::fs::remove_dir_all(self.dir.join(old)).unwrap();
        }
        at
    }
}

fn new_ca(name: &str) -> String {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.self_signed(&key).unwrap().pem()
}

/// What the agent writes for this PEM (its canonical re-encoding).
fn canonical(pem: &str) -> Vec<u8> {
    regtrust::ca::CaBundle::from_pem("bench", pem.as_bytes())
        .unwrap()
        .to_pem()
}

fn node_root(base: &Path) -> PathBuf {
    let root = base.join("host");
    for d in ["etc/docker", "etc/containerd", "etc/containers"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(
        root.join("etc/containerd/config.toml"),
        "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d\"\n",
    )
    .unwrap();
    root
}

/// The agent process; killed by PID when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A process group (the floor's shell pipeline), ended by its id when dropped.
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

fn start_agent(agent: &Path, root: &Path, cas: &[String], log: &Path) -> Proc {
    let mut c = Command::new(agent);
    c.arg("agent")
        .arg("--host-root")
        .arg(root)
        .args(["--listen", "127.0.0.1:0"])
        .args(["--probe-interval", "60s", "--resync-interval", "10m"])
        .args(["--node-name", "bench"]);
    for ca in cas {
        c.arg("--ca").arg(ca);
    }
    let f = std::fs::File::create(log).unwrap();
    Proc(
        c.env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .unwrap(),
    )
}

fn wait_until(what: &str, deadline: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn holds(files: &[PathBuf], want: &[u8]) -> bool {
    files
        .iter()
        .all(|f| std::fs::read(f).is_ok_and(|b| b == want))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn summary(name: &str, mut v: Vec<Duration>) -> Duration {
    v.sort();
    println!(
        "{name:<28} n={:<4} p50={:>7.2} ms  p90={:>7.2} ms  p99={:>7.2} ms  max={:>7.2} ms",
        v.len(),
        ms(percentile(&v, 0.5)),
        ms(percentile(&v, 0.9)),
        ms(percentile(&v, 0.99)),
        ms(*v.last().unwrap())
    );
    percentile(&v, 0.99)
}

/// A temp dir for the host root, volumes and floor, under `--dir` when given (e.g. a tmpfs,
/// to take the disk's fsync out of the figure).
fn base(dir: &str) -> tempfile::TempDir {
    let mut b = tempfile::Builder::new();
    b.prefix("regtrust-bench-");
    if dir.is_empty() {
        b.tempdir().unwrap()
    } else {
        b.tempdir_in(dir).unwrap()
    }
}

fn latency(agent: &Path, swaps: usize, base: &tempfile::TempDir) {
    let root = node_root(base.path());
    let host = "registry.bench:5000";
    eprintln!("generating {} CAs...", swaps + 1);
    let cas: Vec<String> = (0..=swaps)
        .map(|i| new_ca(&format!("bench-ca-{i}")))
        .collect();
    let mut vol = Volume::create(&base.path().join("vol"), cas[0].as_bytes());

    let agent_files: Vec<PathBuf> = ["etc/docker", "etc/containerd", "etc/containers"]
        .iter()
        .map(|d| root.join(d).join("certs.d").join(host).join("ca.crt"))
        .collect();
    let floor_dirs: Vec<PathBuf> = ["docker", "containerd", "crio"]
        .iter()
        .map(|d| base.path().join("floor").join(d))
        .collect();
    for d in &floor_dirs {
        std::fs::create_dir_all(d).unwrap();
    }
    let floor_files: Vec<PathBuf> = floor_dirs.iter().map(|d| d.join("ca.crt")).collect();

    let agent_proc = start_agent(
        agent,
        &root,
        &[format!("{host}={}", vol.dir.display())],
        &base.path().join("agent.log"),
    );
    wait_until("the agent's first install", Duration::from_secs(20), || {
        holds(&agent_files, &canonical(&cas[0]))
    });

    // The floor: the plainest thing that could work, reacting only to the `..data` rename.
    let script = format!(
        "exec inotifywait -m -q -e moved_to --format %f '{vol}' | while read -r f; do \
           if [ \"$f\" = ..data ]; then cp '{vol}/ca.crt' '{a}'; cp '{vol}/ca.crt' '{b}'; cp '{vol}/ca.crt' '{c}'; fi; \
         done",
        vol = vol.dir.display(),
        a = floor_files[0].display(),
        b = floor_files[1].display(),
        c = floor_files[2].display(),
    );
    let mut floor = Command::new("bash");
    floor
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    let _floor = Group(floor.spawn().expect("bash and inotify-tools"));
    // inotifywait needs a moment to set its watch: warm-up swaps (not measured) until the
    // floor reacts.
    let start = Instant::now();
    loop {
        let warm = new_ca("warm-up");
        vol.swap(warm.as_bytes());
        let at = Instant::now();
        while at.elapsed() < Duration::from_millis(500) && !holds(&floor_files, warm.as_bytes()) {
            std::thread::sleep(Duration::from_millis(1));
        }
        if holds(&floor_files, warm.as_bytes()) {
            wait_until("the agent's warm-up copy", Duration::from_secs(20), || {
                holds(&agent_files, &canonical(&warm))
            });
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the floor (inotifywait) never reacted"
        );
    }
    std::thread::sleep(Duration::from_millis(300));

    let mut agent_lat = Vec::with_capacity(swaps);
    let mut floor_lat = Vec::with_capacity(swaps);
    for (i, ca) in cas.iter().enumerate().skip(1) {
        let want_agent = canonical(ca);
        let at = vol.swap(ca.as_bytes());
        let (mut a, mut f) = (None, None);
        while a.is_none() || f.is_none() {
            if a.is_none() && holds(&agent_files, &want_agent) {
                a = Some(at.elapsed());
            }
            if f.is_none() && holds(&floor_files, ca.as_bytes()) {
                f = Some(at.elapsed());
            }
            assert!(
                at.elapsed() < Duration::from_secs(10),
                "swap {i}: timed out"
            );
            std::thread::sleep(Duration::from_micros(100));
        }
        agent_lat.push(a.unwrap());
        floor_lat.push(f.unwrap());
        // Secret updates are seconds apart in life; 300 ms lets each settle.
        std::thread::sleep(Duration::from_millis(300));
    }
    println!("..data swap -> new ca.crt in all 3 runtime dirs, {swaps} swaps:");
    let a = summary("regtrust agent (release)", agent_lat);
    let f = summary("floor: inotifywait + 3x cp", floor_lat);
    println!("agent p99 / floor p99 = {:.2}", ms(a) / ms(f));
    print_proc(agent_proc.0.id());
}

fn idle(agent: &Path, base: &tempfile::TempDir, seconds: u64, registries: usize) {
    let root = node_root(base.path());
    let mut specs = Vec::new();
    let mut files = Vec::new();
    for i in 0..registries {
        let pem = new_ca(&format!("idle-ca-{i}"));
        let host = format!("registry-{i}.bench:5000");
        let vol = Volume::create(&base.path().join(format!("vol-{i}")), pem.as_bytes());
        specs.push(format!("{host}={}", vol.dir.display()));
        files.push((
            root.join("etc/containers/certs.d")
                .join(&host)
                .join("ca.crt"),
            canonical(&pem),
        ));
    }
    let proc = start_agent(agent, &root, &specs, &base.path().join("agent.log"));
    let pid = proc.0.id();
    wait_until("every CA installed", Duration::from_secs(20), || {
        files
            .iter()
            .all(|(f, want)| std::fs::read(f).is_ok_and(|b| &b == want))
    });
    // Let the start-up (first sync, trailing debounce of its own writes) finish.
    std::thread::sleep(Duration::from_secs(2));
    let t0 = cpu_ticks(pid);
    let start = Instant::now();
    println!("idle: {registries} registries, {seconds} s, agent pid {pid}");
    std::thread::sleep(Duration::from_secs(seconds));
    let elapsed = start.elapsed().as_secs_f64();
    let ticks = cpu_ticks(pid) - t0;
    let hz = clk_tck();
    let cpu = ticks as f64 / hz;
    println!(
        "CPU: {cpu:.3} s over {elapsed:.0} s idle = {:.3} ms per second (utime+stime, {hz} ticks/s)",
        cpu * 1e3 / elapsed
    );
    print_proc(pid);
}

fn print_proc(pid: u32) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    for l in status.lines() {
        if l.starts_with("VmHWM") || l.starts_with("VmRSS") || l.starts_with("Threads") {
            println!("{}", l.split_whitespace().collect::<Vec<_>>().join(" "));
        }
    }
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the ")" that ends the command name: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

fn clk_tck() -> f64 {
    let out = Command::new("getconf").arg("CLK_TCK").output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(100.0)
}
