//! The operator's first hour with `regtrust sync` (issue 15 points 1–3), on the real binary
//! and whole host trees: a whole Secret object or a base64 file as `--pull-secret`, a
//! hand-run sync next to the agent's state (`--prune`, `--dry-run`, a narrowed `--runtime`),
//! a mistyped `--host-root`, and the CA notes in the output. Each case snapshots the host
//! root before and after and compares it file by file (content and mtime).

use base64::Engine;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

type Tree = BTreeMap<PathBuf, (Vec<u8>, i128)>;

fn snapshot(root: &Path) -> Tree {
    fn walk(root: &Path, dir: &Path, out: &mut Tree) {
        let mut entries: Vec<PathBuf> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            let m = fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            if m.is_dir() {
                out.insert(rel, (b"<dir>".to_vec(), 0));
                walk(root, &p, out);
            } else {
                let mtime = m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128;
                out.insert(rel, (fs::read(&p).unwrap(), mtime));
            }
        }
    }
    let mut out = Tree::new();
    walk(root, root, &mut out);
    out
}

fn diff(before: &Tree, after: &Tree) -> Vec<String> {
    let mut out = Vec::new();
    for (p, n) in after {
        match before.get(p) {
            None => out.push(format!("+ {}", p.display())),
            Some(b) if b != n => out.push(format!("~ {}", p.display())),
            _ => {}
        }
    }
    for p in before.keys().filter(|p| !after.contains_key(*p)) {
        out.push(format!("- {}", p.display()));
    }
    out
}

fn ca_pem(cn: &str) -> String {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let key = rcgen::KeyPair::generate().unwrap();
    p.self_signed(&key).unwrap().pem()
}

struct Node {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    inputs: PathBuf,
}

impl Node {
    /// A host root with docker, containerd and CRI-O etc dirs.
    fn new() -> Node {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("host");
        for d in ["etc/docker", "etc/containerd", "etc/containers"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        fs::write(
            root.join("etc/containerd/config.toml"),
            "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d\"\n",
        )
        .unwrap();
        // `--runtime auto` finds each runtime by its config file (an empty dir proves nothing).
        fs::write(root.join("etc/docker/daemon.json"), "{}\n").unwrap();
        fs::create_dir_all(root.join("etc/crio")).unwrap();
        fs::write(root.join("etc/crio/crio.conf"), "[crio]\n").unwrap();
        let inputs = tmp.path().join("inputs");
        fs::create_dir_all(&inputs).unwrap();
        Node {
            _tmp: tmp,
            root,
            inputs,
        }
    }

    fn input(&self, name: &str, content: &str) -> String {
        let p = self.inputs.join(name);
        fs::write(&p, content).unwrap();
        p.display().to_string()
    }

    fn sync(&self, args: &[&str]) -> Output {
        let root = self.root.display().to_string();
        let mut c = Command::new(env!("CARGO_BIN_EXE_regtrust"));
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("REGTRUST_") {
                c.env_remove(k);
            }
        }
        c.arg("sync")
            .args(["--host-root", &root, "--node-name", "n1"])
            .args(args)
            .env("RUST_LOG", "warn");
        c.output().unwrap()
    }

    fn ca(&self, host: &str) -> PathBuf {
        self.root.join(format!("etc/docker/certs.d/{host}/ca.crt"))
    }

    /// The agent's state: two registries installed for every runtime, as a pruning pass
    /// (the agent's kind of pass) leaves it.
    fn agent_state(&self) -> (String, String) {
        let a = self.input("a.pem", &ca_pem("A CA"));
        let b = self.input("b.pem", &ca_pem("B CA"));
        let out = self.sync(&[
            "--prune",
            "--ca",
            &format!("a.local:5000={a}"),
            "--ca",
            &format!("b.local:5000={b}"),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(self.ca("a.local:5000").is_file() && self.ca("b.local:5000").is_file());
        (a, b)
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Point 1: `kubectl get secret X -o json` is read as the Secret it is; what cannot be
/// read (a Secret without a pull-secret key, YAML, a base64 file) is refused with the
/// command that gives the right file, and the pass writes and removes nothing.
#[test]
fn a_whole_secret_object_is_read_or_refused_and_nothing_is_lost() {
    let node = Node::new();
    let ca = node.input("harbor.pem", &ca_pem("Harbor CA"));
    let inner = r#"{"auths":{"harbor.local":{"auth":"cm9ib3Q6cHc="}}}"#;
    let object = |data: &str| {
        format!(
            r#"{{"apiVersion":"v1","kind":"Secret","metadata":{{"name":"regcred","namespace":"ci"}},"type":"kubernetes.io/dockerconfigjson","data":{data}}}"#
        )
    };
    let secret = node.input(
        "secret.json",
        &object(&format!(r#"{{".dockerconfigjson":"{}"}}"#, b64(inner))),
    );
    let out = node.sync(&["--pull-secret", &secret, "--ca", &ca]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(node.ca("harbor.local").is_file());
    for field in ["apiversion", "data", "kind", "metadata", "type", "data:443"] {
        assert!(
            !node.root.join("etc/docker/certs.d").join(field).exists(),
            "{field}"
        );
    }
    let good = snapshot(&node.root);

    let refused = [
        (
            object(r#"{"tls.crt":"AA=="}"#),
            r#"has no .data[".dockerconfigjson"] or .data[".dockercfg"]"#,
        ),
        (
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: regcred\n  namespace: ci\ndata:\n  .dockerconfigjson: eyJ9\n".to_string(),
            "a Kubernetes Secret object in YAML",
        ),
        (b64(inner), "decode it first: `base64 -d "),
        // The legacy-dockercfg reading of a non-Secret object would name `kind`, `data`...
        (
            r#"{"apiVersion":"v1","kind":"ConfigMap","data":{"x":"y"}}"#.to_string(),
            r#"a Kubernetes "ConfigMap" object, not a pull secret"#,
        ),
        // A key that is not a registry next to a good one.
        (
            r#"{"auths":{"harbor.local":{},"../etc":{}}}"#.to_string(),
            "nothing written or removed",
        ),
    ];
    for (doc, want) in refused {
        fs::write(&secret, &doc).unwrap();
        for prune in [false, true] {
            let mut args = vec!["--pull-secret", secret.as_str(), "--ca", ca.as_str()];
            if prune {
                args.push("--prune");
            }
            let out = node.sync(&args);
            let t = text(&out);
            assert_eq!(out.status.code(), Some(1), "{doc}: {t}");
            assert!(t.contains(want), "{doc}: {t}");
            assert!(
                !t.contains("kubelet rejects the whole secret"),
                "{doc}: {t}"
            );
            assert_eq!(
                diff(&good, &snapshot(&node.root)),
                Vec::<String>::new(),
                "{doc}"
            );
        }
    }
    // A held pass writes nothing new either: a second registry named next to a bad key.
    fs::write(&secret, r#"{"auths":{"new.local":{},"../etc":{}}}"#).unwrap();
    let out = node.sync(&["--pull-secret", &secret, "--ca", &ca, "--prune"]);
    assert!(
        text(&out).contains("would write (new); not written: pull secret"),
        "{}",
        text(&out)
    );
    assert_eq!(diff(&good, &snapshot(&node.root)), Vec::<String>::new());
}

/// Point 2: a hand-run sync (the probe's own suggested fix) adds its registry and leaves
/// the agent's others; `--prune` makes the pass the whole state; `--dry-run` prints the
/// plan and writes nothing; a narrowed `--runtime` leaves the other runtimes' files.
#[test]
fn a_hand_run_sync_does_not_undo_the_agent() {
    let node = Node::new();
    let (a, _b) = node.agent_state();
    let before = snapshot(&node.root);

    // The probe's fix line, pasted: only a.local is named. b.local stays.
    let out = node.sync(&["--ca", &format!("a.local:5000={a}")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(diff(&before, &snapshot(&node.root)), Vec::<String>::new());
    let t = text(&out);
    assert!(
        t.contains("kept: this pass does not name this registry; sync --prune would remove it"),
        "{t}"
    );

    // A narrowed runtime: containerd's files stay.
    let out = node.sync(&[
        "--runtime",
        "docker,crio",
        "--ca",
        &format!("a.local:5000={a}"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(diff(&before, &snapshot(&node.root)), Vec::<String>::new());
    assert!(
        text(&out).contains("kept: runtime containerd is not selected by --runtime"),
        "{}",
        text(&out)
    );

    // --dry-run --prune: the plan says what would go and what would be written; nothing moves.
    let c = node.input("c.pem", &ca_pem("C CA"));
    let out = node.sync(&[
        "--dry-run",
        "--prune",
        "--ca",
        &format!("a.local:5000={a}"),
        "--ca",
        &format!("c.local={c}"),
        "--output",
        "json",
    ]);
    assert_eq!(diff(&before, &snapshot(&node.root)), Vec::<String>::new());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let details: Vec<(String, String)> = v["registries"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| {
            r["trust"].as_array().unwrap().iter().map(|t| {
                (
                    r["host"].as_str().unwrap().to_string(),
                    t["detail"].as_str().unwrap().to_string(),
                )
            })
        })
        .collect();
    let has = |host: &str, d: &str| details.iter().any(|(h, x)| h == host && x.starts_with(d));
    assert!(
        has("c.local", "would write (new); not written: --dry-run"),
        "{details:?}"
    );
    assert!(has("b.local:5000", "would remove"), "{details:?}");
    assert!(
        details
            .iter()
            .any(|(h, x)| h == "a.local:5000" && x.is_empty()),
        "{details:?}"
    );
    assert_eq!(out.status.code(), Some(1), "the node differs from the plan");
    let out = node.sync(&["--dry-run", "--ca", &format!("c.local={c}")]);
    assert!(text(&out).starts_with("dry run: nothing is written or removed; the plan:"));
    assert_eq!(diff(&before, &snapshot(&node.root)), Vec::<String>::new());

    // --prune --runtime docker,crio: the pass is the whole state, containerd's files go.
    let out = node.sync(&[
        "--prune",
        "--runtime",
        "docker,crio",
        "--ca",
        &format!("a.local:5000={a}"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(node.ca("a.local:5000").is_file());
    assert!(!node.ca("b.local:5000").exists());
    assert!(!node
        .root
        .join("etc/containerd/certs.d/a.local:5000/ca.crt")
        .exists());
}

/// Point 3: no runtime under the host root is exit 1 saying so, and the CA notes show.
#[test]
fn no_runtime_is_not_success_and_ca_notes_show() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = tmp.path().join("ca.pem");
    fs::write(&ca, ca_pem("Typo CA")).unwrap();
    let root = tmp.path().join("not-the-node");
    fs::create_dir_all(&root).unwrap();
    let before = snapshot(tmp.path());
    let out = Command::new(env!("CARGO_BIN_EXE_regtrust"))
        .args(["sync", "--host-root"])
        .arg(&root)
        .arg("--ca")
        .arg(format!("h.local={}", ca.display()))
        .env_remove("REGTRUST_RUNTIME")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let t = text(&out);
    assert!(
        t.contains("no container runtime found under --host-root")
            && t.contains("--runtime docker,containerd,crio"),
        "{t}"
    );
    assert_eq!(diff(&before, &snapshot(tmp.path())), Vec::<String>::new());

    // A CA with a BOM, CRLF and text between blocks: installed, and each note is shown.
    let node = Node::new();
    let pem = ca_pem("Noted CA").replace('\n', "\r\n");
    let ca = node.input(
        "noted.pem",
        &format!(
            "\u{feff}{pem}some words\r\n{}",
            ca_pem("Second CA").replace('\n', "\r\n")
        ),
    );
    let arg = format!("n.local={ca}");
    let out = node.sync(&["--ca", &arg]);
    let t = text(&out);
    for note in [
        "ca note: starts with a UTF-8 byte-order mark",
        "ca note: CRLF line ends",
        "ca note:",
    ] {
        assert!(t.contains(note), "{note}: {t}");
    }
    let out = node.sync(&["--ca", &arg, "--output", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let notes = v["registries"][0]["ca"]["notes"].as_array().unwrap();
    assert!(notes.len() >= 3, "{notes:?}");
    assert!(
        notes.iter().any(|n| n.as_str().unwrap().contains("line")),
        "{notes:?}"
    );
}
