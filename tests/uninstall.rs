//! `regtrust agent --uninstall` on the real binary (issue 15 point 6): every file regtrust
//! owns goes, with the host dirs it created and its state dir; foreign and edited files
//! stay; the idling uninstaller also removes what a still-running agent writes after it
//! began, and exits 0 on SIGTERM.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_regtrust"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("REGTRUST_") {
            c.env_remove(k);
        }
    }
    c.env("RUST_LOG", "info");
    c
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ca_pem(cn: &str) -> String {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate().unwrap();
    p.self_signed(&key).unwrap().pem()
}

/// Every path under `root`, sorted (dirs included).
fn listing(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(root).unwrap().display().to_string());
            if p.is_dir() && !p.is_symlink() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

fn install(root: &Path, ca: &Path) {
    let out = bin()
        .args([
            "sync",
            "--prune",
            "--runtime",
            "docker,containerd,crio",
            "--host-root",
        ])
        .arg(root)
        .arg("--ca")
        .arg(format!("a.local:5000={}", ca.display()))
        .arg("--ca")
        .arg(format!("b.local={}", ca.display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::yield_now();
        std::thread::park_timeout(Duration::from_millis(50));
    }
}

struct Node {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    ca: PathBuf,
}

fn node() -> Node {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("host");
    for d in [
        "etc/docker/certs.d",
        "etc/containerd/certs.d",
        "etc/containers",
    ] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::write(
        root.join("etc/containerd/config.toml"),
        "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d\"\n",
    )
    .unwrap();
    let ca = tmp.path().join("ca.pem");
    fs::write(&ca, ca_pem("Uninstall CA")).unwrap();
    Node {
        _tmp: tmp,
        root,
        ca,
    }
}

#[test]
fn uninstall_removes_what_regtrust_owns_and_nothing_else() {
    let n = node();
    // A foreign registry's CA the admin put there, before regtrust ran.
    fs::create_dir_all(n.root.join("etc/docker/certs.d/theirs.local")).unwrap();
    fs::write(
        n.root.join("etc/docker/certs.d/theirs.local/ca.crt"),
        "theirs",
    )
    .unwrap();
    let before = listing(&n.root);
    install(&n.root, &n.ca);
    assert!(n.root.join("var/lib/regtrust/ledger.json").is_file());
    assert!(n
        .root
        .join("etc/containers/certs.d/b.local/ca.crt")
        .is_file());
    // Someone edits one owned file: it is theirs now, and stays.
    let edited = n.root.join("etc/docker/certs.d/b.local/ca.crt");
    fs::write(&edited, "edited by hand").unwrap();

    let out = bin()
        .args(["agent", "--uninstall", "--exit", "--host-root"])
        .arg(&n.root)
        .output()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("removed") && t.contains("left in place"), "{t}");
    assert!(t.contains("uninstall done"), "{t}");
    assert_eq!(fs::read_to_string(&edited).unwrap(), "edited by hand");
    let mut want = before.clone();
    want.extend([
        // The runtimes' certs.d dirs stay (kubelet's hostPath DirectoryOrCreate makes them
        // in the DaemonSet, and containerd's config_path may name one).
        "etc/containers/certs.d".to_string(),
        "etc/docker/certs.d/b.local".to_string(),
        "etc/docker/certs.d/b.local/ca.crt".to_string(),
    ]);
    want.sort();
    // The state dir (var/lib/regtrust) and every host dir regtrust made are gone; `var/lib`
    // was made by the ledger's create_dir_all and is left (regtrust does not track it).
    let after: Vec<String> = listing(&n.root)
        .into_iter()
        .filter(|p| p != "var" && p != "var/lib")
        .collect();
    assert_eq!(after, want);
    // A second run finds nothing and is still clean.
    let out = bin()
        .args(["agent", "--uninstall", "--exit", "--host-root"])
        .arg(&n.root)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn the_idling_uninstaller_removes_late_writes_and_stops_on_sigterm() {
    let n = node();
    install(&n.root, &n.ca);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = bin()
        .args([
            "agent",
            "--uninstall",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--host-root",
        ])
        .arg(&n.root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ledger = n.root.join("var/lib/regtrust/ledger.json");
    let a = n.root.join("etc/docker/certs.d/a.local:5000/ca.crt");
    wait_for("the first uninstall pass", || {
        !ledger.exists() && !a.exists()
    });
    // The agent, still running during a pre-delete hook, writes again.
    install(&n.root, &n.ca);
    wait_for("the late files to go", || !ledger.exists() && !a.exists());
    assert!(child.try_wait().unwrap().is_none(), "it idles");
    // Ready once clean: `kubectl rollout status` on the hook waits for every node.
    wait_for("/readyz 200", || {
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
            .arg(format!("http://127.0.0.1:{port}/readyz"))
            .output()
            .expect("curl (Debian package curl)");
        out.stdout == b"200"
    });
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    assert_eq!(child.wait().unwrap().code(), Some(0));
}
