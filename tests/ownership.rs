//! Issue 9 points 4, 5 and 7 (state dir): ownership survives what a bad day does to a node.
//! - last known good: a pull secret that names no registry removes nothing; an owned file
//!   deleted or edited while its CA input is invalid comes back from the kept copy;
//! - the real `regtrust sync` killed with SIGKILL at random points of a 40-host pass, again
//!   and again: after a rerun and unmanaging the hosts, nothing of regtrust's is left;
//! - a full state dir (a small tmpfs mounted here; needs root), at every fill level;
//! - two passes at once, and a pass that finds the lock held;
//! - a state dir that is a symlink is refused.
//!
//! Randomness comes from a seed printed at the start (REGTRUST_TEST_SEED replays one).

mod agent_util;
mod support;

use regtrust::report::{Report, TrustState};
use regtrust::sync::{sync_once, CaSpec, Config};
use regtrust::trust::ledger::{self, LockWait, PassLock};
use regtrust::trust::Runtime;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CERTS_DIRS: [&str; 3] = [
    "etc/docker/certs.d",
    "etc/containerd/certs.d",
    "etc/containers/certs.d",
];

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

/// xorshift64*: enough randomness for kill delays, replayable from the printed seed.
struct Rng(u64);

impl Rng {
    fn from_env(test: &str) -> Rng {
        let seed = std::env::var("REGTRUST_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("{test}: REGTRUST_TEST_SEED={seed}");
        Rng(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

/// A host root with all three runtimes and their certs.d dirs (so that "nothing left"
/// means the tree is exactly as before), and a dir for inputs.
struct Node {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    inputs: PathBuf,
    state: PathBuf,
}

impl Node {
    fn new() -> Node {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("host");
        for d in CERTS_DIRS {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        fs::write(
            root.join("etc/containerd/config.toml"),
            "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d\"\n",
        )
        .unwrap();
        let inputs = tmp.path().join("inputs");
        fs::create_dir_all(&inputs).unwrap();
        let state = root.join("var/lib/regtrust");
        Node {
            _tmp: tmp,
            root,
            inputs,
            state,
        }
    }

    fn input(&self, name: &str, content: &[u8]) -> PathBuf {
        let p = self.inputs.join(name);
        fs::write(&p, content).unwrap();
        p
    }

    fn config(&self, hosts: &[String], ca: Option<&Path>) -> Config {
        Config {
            host_root: self.root.clone(),
            state_dir: self.state.clone(),
            runtimes: Runtime::ALL.to_vec(),
            replace_foreign: false,
            node: "test-node".into(),
            pull_secrets: vec![],
            cas: ca
                .map(|p| vec![CaSpec::parse(&p.display().to_string()).unwrap()])
                .unwrap_or_default(),
            registries: hosts
                .iter()
                .map(|h| regtrust::host::RegistryHost::parse(h).unwrap())
                .collect(),
            go_versions: Vec::new(),
        }
    }

    fn sync(&self, hosts: &[String], ca: Option<&Path>) -> Report {
        sync_once(&self.config(hosts, ca), time::OffsetDateTime::now_utc()).report
    }

    /// `regtrust sync --prune` (as the agent does) for these hosts with the global CA `ca`.
    fn command(&self, hosts: &[String], ca: Option<&Path>) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_regtrust"));
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("REGTRUST_") {
                c.env_remove(k);
            }
        }
        c.arg("sync")
            .arg("--host-root")
            .arg(&self.root)
            .arg("--state-dir")
            .arg(&self.state)
            .args([
                "--runtime",
                "docker,containerd,crio",
                "--output",
                "json",
                "--prune",
            ])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null());
        if !hosts.is_empty() {
            c.arg("--registry").arg(hosts.join(","));
        }
        if let Some(ca) = ca {
            c.arg("--ca").arg(ca);
        }
        c
    }

    /// Everything under etc/: path → file bytes (None for a dir).
    fn etc(&self) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
        let mut out = BTreeMap::new();
        walk(&self.root.join("etc"), &mut out);
        out
    }

    fn ledger(&self) -> ledger::Ledger {
        ledger::Ledger::load(&self.state).unwrap()
    }

    /// Trust files on disk that the saved ledger does not own with their content.
    fn unrecorded(&self) -> usize {
        self.not_in_ledger(true)
    }

    /// Trust files on disk whose path the saved ledger does not list at all: the window a
    /// pass killed before its ledger save leaves, which makes them foreign forever without
    /// the intent journal.
    fn unowned(&self) -> usize {
        self.not_in_ledger(false)
    }

    fn not_in_ledger(&self, by_content: bool) -> usize {
        let l = ledger::Ledger::load(&self.state).unwrap_or_default();
        self.etc()
            .iter()
            .filter(|(p, body)| {
                let rel = p.strip_prefix(&self.root).unwrap();
                let Some(body) = body else { return false };
                let sha = regtrust::ca::sha256_hex(body);
                ledger::is_trust_path(rel)
                    && match l.owned(rel) {
                        None => true,
                        Some(o) => by_content && o.sha256 != sha,
                    }
            })
            .count()
    }
}

fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Option<Vec<u8>>>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries {
        let p = e.unwrap().path();
        let m = fs::symlink_metadata(&p).unwrap();
        if m.is_dir() {
            out.insert(p.clone(), None);
            walk(&p, out);
        } else {
            out.insert(p.clone(), Some(fs::read(&p).unwrap_or_default()));
        }
    }
}

fn temps(tree: &BTreeMap<PathBuf, Option<Vec<u8>>>) -> Vec<&PathBuf> {
    tree.keys()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.contains(".regtrust-") && n.ends_with(".tmp"))
        })
        .collect()
}

fn hosts(n: usize, prefix: &str) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}.test:5000")).collect()
}

fn states(r: &Report) -> Vec<(String, TrustState, String)> {
    r.registries
        .iter()
        .flat_map(|reg| {
            reg.trust
                .iter()
                .map(|t| (t.path.clone(), t.state, t.detail.clone()))
        })
        .collect()
}

/// Unmanage everything and check that the trust dirs are exactly as at the start and the
/// ledger owns nothing.
#[track_caller]
fn assert_nothing_left(node: &Node, initial: &BTreeMap<PathBuf, Option<Vec<u8>>>, what: &str) {
    let report = node.sync(&[], None);
    let now = node.etc();
    let extra: Vec<_> = now.keys().filter(|p| !initial.contains_key(*p)).collect();
    assert!(
        extra.is_empty(),
        "{what}: left behind after unmanaging every host: {extra:#?}\n{:#?}",
        report.problems
    );
    assert_eq!(&now, initial, "{what}: the trust dirs changed");
    assert!(
        node.ledger().files.is_empty(),
        "{what}: {:#?}",
        node.ledger()
    );
}

// ---------------------------------------------------------------------------------------
// Point 4 (a): a pull secret that names no registry removes nothing.

#[test]
fn a_pull_secret_that_names_no_registry_removes_nothing() {
    let node = Node::new();
    let ca = node.input("ca.pem", ca_pem("Harbor CA").as_bytes());
    let secret = node.input(
        "config.json",
        br#"{"auths":{"harbor.test:8443":{"auth":"dXNlcjpwYXNz"}}}"#,
    );
    let mut cfg = node.config(&[], Some(&ca));
    cfg.pull_secrets = vec![secret.clone()];
    let first = sync_once(&cfg, time::OffsetDateTime::now_utc()).report;
    assert!(!first.needs_attention(), "{:#?}", first.problems);
    let installed = node.etc();
    let docker = node.root.join("etc/docker/certs.d/harbor.test:8443/ca.crt");
    assert!(installed.contains_key(&docker));

    let emptied: [(&str, &[u8]); 7] = [
        ("auths {}", br#"{"auths":{}}"#),
        ("auths null", br#"{"auths":null}"#),
        ("no auths", br#"{"credsStore":"desktop"}"#),
        ("legacy {}", b"{}"),
        ("empty file", b""),
        ("whitespace", b" \n\t\n"),
        ("truncated", br#"{"auths":{"harbor.te"#),
    ];
    for (what, bytes) in emptied {
        fs::write(&secret, bytes).unwrap();
        let report = sync_once(&cfg, time::OffsetDateTime::now_utc()).report;
        assert_eq!(node.etc(), installed, "{what}: something was removed");
        assert!(report.needs_attention(), "{what}: {report:#?}");
        let source = format!("pull secret {}", secret.display());
        assert!(
            report.problems.iter().any(|p| p.source == source),
            "{what}: {:#?}",
            report.problems
        );
        assert!(
            !states(&report)
                .iter()
                .any(|(_, s, _)| *s == TrustState::Removed),
            "{what}: {report:#?}"
        );
        assert_eq!(node.ledger().files.len(), 4, "{what}: ownership kept");
    }

    // A valid secret that names another registry: now the old host is stale.
    fs::write(
        &secret,
        br#"{"auths":{"other.test":{"auth":"dXNlcjpwYXNz"}}}"#,
    )
    .unwrap();
    let report = sync_once(&cfg, time::OffsetDateTime::now_utc()).report;
    assert!(!docker.exists(), "{report:#?}");
    assert!(!node
        .root
        .join("etc/docker/certs.d/harbor.test:8443")
        .exists());
    assert!(node
        .root
        .join("etc/docker/certs.d/other.test/ca.crt")
        .exists());
}

// ---------------------------------------------------------------------------------------
// Point 4 (b): restore from the kept copy while the CA input is invalid.

#[test]
fn owned_files_come_back_from_the_last_good_copy_while_the_ca_input_is_invalid() {
    let node = Node::new();
    let good = ca_pem("Good CA");
    let ca = node.input("ca.pem", good.as_bytes());
    let host = vec!["harbor.test:8443".to_string()];
    node.sync(&host, Some(&ca));
    let installed = node.etc();
    let dir = |certs: &str| node.root.join(certs).join("harbor.test:8443");
    let docker = dir("etc/docker/certs.d").join("ca.crt");
    let crio = dir("etc/containers/certs.d").join("ca.crt");
    let toml = dir("etc/containerd/certs.d").join("hosts.toml");
    let containerd_dir = dir("etc/containerd/certs.d");

    for (n, bad) in [
        b"garbage".as_slice(),
        b"",
        b"-----BEGIN CERTIFICATE-----\nMIIB",
    ]
    .into_iter()
    .enumerate()
    {
        fs::write(&ca, bad).unwrap();
        fs::remove_file(&docker).unwrap();
        fs::write(&crio, ca_pem("someone else")).unwrap();
        fs::write(&toml, "server = \"https://elsewhere\"\n").unwrap();
        if n == 2 {
            // The whole host dir, too.
            fs::remove_dir_all(&containerd_dir).unwrap();
        }
        let report = node.sync(&host, Some(&ca));
        assert_eq!(node.etc(), installed, "input {bad:?}: not restored");
        assert!(report.needs_attention());
        let st = states(&report);
        let restored: Vec<_> = st
            .iter()
            .filter(|(_, s, d)| *s == TrustState::Installed && d.contains("last good"))
            .collect();
        assert!(restored.len() >= 3, "input {bad:?}: {st:#?}");
        assert!(
            !st.iter().any(|(_, s, _)| s.needs_attention()),
            "input {bad:?}: {st:#?}"
        );
        // No duplicate entries for a path.
        let mut paths: Vec<_> = st.iter().map(|(p, _, _)| p.clone()).collect();
        paths.sort();
        paths.dedup();
        assert_eq!(paths.len(), st.len(), "{st:#?}");
        // A pass with nothing changed writes nothing and says the copy stays.
        let again = node.sync(&host, Some(&ca));
        assert!(
            states(&again)
                .iter()
                .all(|(_, s, d)| *s == TrustState::Unchanged && d.contains("last good")),
            "{again:#?}"
        );
    }

    // A ledger from before the copies were kept (no last-good dir): the copy is taken from
    // disk on the first invalid pass, and used after a deletion.
    fs::write(&ca, good.as_bytes()).unwrap();
    node.sync(&host, Some(&ca));
    fs::remove_dir_all(node.state.join(ledger::LAST_GOOD_DIR)).unwrap();
    fs::write(&ca, b"garbage").unwrap();
    node.sync(&host, Some(&ca));
    fs::remove_file(&docker).unwrap();
    node.sync(&host, Some(&ca));
    assert_eq!(node.etc(), installed);

    // A kept copy that was tampered with is not used (its digest is its name): with every
    // ca.crt gone there is no good copy left, and nothing is installed.
    for e in fs::read_dir(node.state.join(ledger::LAST_GOOD_DIR)).unwrap() {
        fs::write(e.unwrap().path(), ca_pem("planted")).unwrap();
    }
    let cas = [docker.clone(), crio.clone(), containerd_dir.join("ca.crt")];
    for f in &cas {
        fs::remove_file(f).unwrap();
    }
    let report = node.sync(&host, Some(&ca));
    for f in &cas {
        assert!(
            !f.exists(),
            "a tampered copy was installed at {}",
            f.display()
        );
        assert!(
            states(&report)
                .iter()
                .any(|(p, s, _)| *p == f.display().to_string() && *s == TrustState::Missing),
            "{report:#?}"
        );
    }
}

/// The same in the real agent: a deleted ca.crt comes back while the input is invalid.
#[test]
fn the_agent_restores_from_the_last_good_copy_while_the_input_is_invalid() {
    use agent_util::{all_hold, new_ca, Agent, Node as AgentNode, SecretVolume, DEADLINE};
    let node = AgentNode::new();
    let inputs = tempfile::tempdir().unwrap();
    let good = new_ca("good");
    let host = "harbor.test";
    let vol = SecretVolume::create(
        &inputs.path().join("harbor-ca"),
        &[("ca.crt", good.pem.as_bytes())],
    );
    let opts = regtrust::agent::Options {
        resync_interval: Duration::from_secs(600),
        probe_interval: Duration::from_secs(600),
        ..Default::default()
    };
    let agent = Agent::start(node.config(&[(host, vol.path())]), opts);
    let files = node.ca_files(host);
    support::wait_for("the CA in every runtime dir", DEADLINE, || {
        all_hold(&files, &good).then_some(())
    });
    vol.update(&[("ca.crt", b"not a certificate\n")]);
    let source = format!("CA input {}", vol.path().display());
    support::wait_for("the invalid input reported", DEADLINE, || {
        let (status, body) = agent.get("/report");
        let report: serde_json::Value =
            serde_json::from_str(&body).ok().filter(|_| status == 200)?;
        report["problems"]
            .as_array()?
            .iter()
            .any(|p| p["source"] == source.as_str())
            .then_some(())
    });
    let mut took = Vec::new();
    for (n, f) in files.iter().enumerate() {
        if n % 2 == 0 {
            fs::remove_file(f).unwrap();
        } else {
            fs::write(f, new_ca("someone else").pem).unwrap();
        }
        let start = Instant::now();
        support::wait_for("the last good CA restored", DEADLINE, || {
            all_hold(&files, &good).then_some(())
        });
        took.push(start.elapsed());
    }
    // Figures, not assertions (README, "Ownership"): the issue asks for 1 s.
    eprintln!("restore times while the input is invalid: {took:?}");
}

// ---------------------------------------------------------------------------------------
// Point 7: a state dir that is a symlink.

#[test]
fn a_state_dir_that_is_a_symlink_is_refused() {
    let mut node = Node::new();
    let ca = node.input("ca.pem", ca_pem("CA").as_bytes());
    let victim = node.inputs.join("victim");
    fs::create_dir_all(&victim).unwrap();
    fs::write(victim.join("ledger.json"), "keep me").unwrap();
    let args = |state: Option<PathBuf>| regtrust::cli::InputArgs {
        pull_secret: vec![],
        ca: vec![format!("harbor.test={}", ca.display())],
        registry: vec![],
        host_root: node.root.clone(),
        state_dir: state,
        runtime: "auto".into(),
        replace_foreign: false,
        node_name: Some("n".into()),
        go_version: Vec::new(),
    };
    // --state-dir itself a link; the default state dir a link; a dir on its way a link.
    let link = node.inputs.join("state-link");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let err = Config::from_args(&args(Some(link.clone())))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("symlink") && err.contains(&link.display().to_string()),
        "{err}"
    );
    fs::create_dir_all(node.root.join("var/lib")).unwrap();
    std::os::unix::fs::symlink(&victim, node.root.join("var/lib/regtrust")).unwrap();
    let err = Config::from_args(&args(None)).unwrap_err().to_string();
    assert!(err.contains("var/lib/regtrust is a symlink"), "{err}");
    fs::remove_file(node.root.join("var/lib/regtrust")).unwrap();
    fs::remove_dir(node.root.join("var/lib")).unwrap();
    std::os::unix::fs::symlink(&victim, node.root.join("var/lib")).unwrap();
    let err = Config::from_args(&args(None)).unwrap_err().to_string();
    assert!(err.contains("var/lib is a symlink"), "{err}");

    // The binary: exit 2, the message, nothing written anywhere.
    let real_state = std::mem::replace(&mut node.state, link.clone());
    let out = node
        .command(&["harbor.test".into()], Some(&ca))
        .output()
        .unwrap();
    node.state = real_state;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("symlink"), "{stderr}");

    // A link swapped in after the configuration was read (the agent's case): the pass
    // refuses, says so, and writes nothing through it.
    let mut cfg = node.config(&["harbor.test".into()], Some(&ca));
    cfg.state_dir = link.clone();
    let before = node.etc();
    let report = sync_once(&cfg, time::OffsetDateTime::now_utc()).report;
    assert_eq!(node.etc(), before);
    assert_eq!(
        fs::read_to_string(victim.join("ledger.json")).unwrap(),
        "keep me"
    );
    assert_eq!(fs::read_dir(&victim).unwrap().count(), 1);
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.message.contains("symlink") && p.message.contains("nothing was installed")),
        "{:#?}",
        report.problems
    );
}

// ---------------------------------------------------------------------------------------
// Point 5: the pass lock.

#[test]
fn a_pass_waits_for_the_lock_or_exits_2() {
    let node = Node::new();
    let ca = node.input("ca.pem", ca_pem("CA").as_bytes());
    let h = vec!["harbor.test".to_string()];
    let lock = PassLock::acquire(&node.state, &node.root, LockWait::Forever, |_| {}).unwrap();
    let before = node.etc();

    // Gives up after --lock-wait: exit 2, a clear message, nothing written.
    let out = node
        .command(&h, Some(&ca))
        .args(["--lock-wait", "300ms"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("another regtrust pass") && stderr.contains("lock"),
        "{stderr}"
    );
    assert_eq!(node.etc(), before);

    // Waits: says so, writes nothing while the lock is held, then runs.
    let mut child = node
        .command(&h, Some(&ca))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    support::wait_for("sync to say it waits", agent_util::DEADLINE, || {
        use std::io::Read;
        let mut buf = [0u8; 256];
        let n = err.read(&mut buf).ok()?;
        seen.extend_from_slice(&buf[..n]);
        String::from_utf8_lossy(&seen)
            .contains("waiting")
            .then_some(())
    });
    assert_eq!(node.etc(), before, "wrote while another pass held the lock");
    drop(lock);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(node
        .root
        .join("etc/docker/certs.d/harbor.test/ca.crt")
        .exists());
}

/// Two `regtrust sync` at once (an admin's and another), each for its own 20 hosts, many
/// times: every file either wrote is owned, so unmanaging leaves nothing.
#[test]
fn two_concurrent_passes_lose_no_ownership() {
    let node = Node::new();
    let initial = node.etc();
    let ca = node.input("ca.pem", ca_pem("CA").as_bytes());
    let (a, b) = (hosts(20, "a"), hosts(20, "b"));
    let rounds = 12;
    let mut overlapped = 0;
    for round in 0..rounds {
        let spawn = |h: &[String]| {
            node.command(h, Some(&ca))
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (pa, pb) = (spawn(&a), spawn(&b));
        let (oa, ob) = (
            pa.wait_with_output().unwrap(),
            pb.wait_with_output().unwrap(),
        );
        for o in [&oa, &ob] {
            let stderr = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(0), "round {round}: {stderr}");
            if stderr.contains("waiting") {
                overlapped += 1;
            }
        }
        assert_eq!(node.unrecorded(), 0, "round {round}: files not owned");
        assert_nothing_left(&node, &initial, &format!("round {round}"));
    }
    eprintln!("{overlapped} of {rounds} rounds had one pass wait for the other");
    assert!(
        overlapped >= rounds / 2,
        "the passes did not overlap often enough to prove anything ({overlapped}/{rounds})"
    );
}

// ---------------------------------------------------------------------------------------
// Point 5: kill -9 at random points of a 40-host pass.

#[test]
fn sigkill_at_random_points_of_a_40_host_pass_loses_no_ownership() {
    let mut rng = Rng::from_env("sigkill");
    let node = Node::new();
    let initial = node.etc();
    let cas = [
        node.input("a.pem", ca_pem("CA a").as_bytes()),
        node.input("b.pem", ca_pem("CA b").as_bytes()),
        node.input("c.pem", ca_pem("CA c").as_bytes()),
    ];
    // Each pass manages 40 of these 80 hosts (a window at a random offset): every pass
    // installs new hosts, removes stale ones and rotates the CA of the rest.
    let pool = hosts(80, "reg");
    let window_of = |rng: &mut Rng| {
        let at = rng.below(41) as usize;
        pool[at..at + 40].to_vec()
    };

    // How long a whole pass takes here (on another root): kills land within that.
    let calib = Node::new();
    let start = Instant::now();
    let out = calib.command(&pool[..40], Some(&cas[0])).output().unwrap();
    let full = start.elapsed();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let rounds = 40;
    let (mut killed, mut window, mut strays) = (0, 0, 0);
    for round in 0..rounds {
        // Alternate CAs: kills land in first installs, rotations and restores.
        let ca = &cas[round % 2];
        let h = window_of(&mut rng);
        let mut child = node
            .command(&h, Some(ca))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let delay = Duration::from_micros(rng.below(full.as_micros() as u64 * 11 / 10));
        std::thread::sleep(delay);
        let _ = child.kill();
        let status = child.wait().unwrap();
        if status.signal() == Some(9) {
            killed += 1;
        }
        // Evidence that the kill hit the window that loses ownership without a journal.
        if node.unowned() > 0 {
            window += 1;
        }
        if !temps(&node.etc()).is_empty() {
            strays += 1;
        }
        // Now and then a file deleted between kills (restores get killed too).
        if round % 5 == 4 {
            let _ = fs::remove_file(node.root.join("etc/docker/certs.d/reg-40.test:5000/ca.crt"));
        }
    }
    eprintln!(
        "full pass {full:?}; {killed} of {rounds} passes killed, {window} left files the ledger \
         did not list yet, {strays} left temp files"
    );
    assert!(
        window >= 5,
        "only {window} of {rounds} kills landed between a rename and the ledger save; \
         the test proves nothing"
    );

    // A rerun with a third CA (a rotation): no conflict, every file owned, no temp files.
    let h = window_of(&mut rng);
    let out = node.command(&h, Some(&cas[2])).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(!stdout.contains("\"conflict\""), "{stdout}");
    let tree = node.etc();
    assert_eq!(temps(&tree), Vec::<&PathBuf>::new());
    assert_eq!(node.unrecorded(), 0);
    assert_eq!(node.ledger().files.len(), 40 * 4);
    assert!(!node.state.join(ledger::JOURNAL_FILE).exists());
    assert_nothing_left(&node, &initial, "after the kills");
    assert_eq!(
        fs::read_dir(node.state.join(ledger::LAST_GOOD_DIR))
            .map(|d| d.count())
            .unwrap_or(0),
        0,
        "kept copies of files no longer owned"
    );
}

// ---------------------------------------------------------------------------------------
// Point 5: a full state dir.

/// A tmpfs mounted for the test (root needed), unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .expect("mount(8) from util-linux is needed");
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs as the state dir and must run as root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Fill the filesystem of `dir` with `filler`, then free `free` bytes.
fn fill_leaving(filler: &Path, free: u64) {
    use std::io::Write;
    let mut f = fs::File::create(filler).unwrap();
    let chunk = vec![0u8; 4096];
    loop {
        match f.write_all(&chunk) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(e) => panic!("filling {}: {e}", filler.display()),
        }
    }
    let len = f.metadata().unwrap().len();
    f.set_len(len.saturating_sub(free)).unwrap();
}

#[test]
fn a_full_state_dir_never_leaves_files_regtrust_cannot_remove() {
    let mut node = Node::new();
    let mnt = node._tmp.path().join("state-tmpfs");
    let _tmpfs = Tmpfs::mount(&mnt, "1m");
    node.state = mnt.join("state");
    let filler = mnt.join("filler");
    let initial = node.etc();
    let ca = node.input("ca.pem", ca_pem("CA").as_bytes());
    let h = hosts(40, "reg");
    let mut failed = 0;
    for pages in (0..=64).step_by(4) {
        fill_leaving(&filler, pages * 4096);
        let report = node.sync(&h, Some(&ca));
        let st = states(&report);
        assert!(
            !st.iter().any(|(_, s, _)| *s == TrustState::Conflict),
            "{pages} pages free: {st:#?}"
        );
        if report.needs_attention() {
            failed += 1;
            let all: String = format!("{:?}", report.problems) + &format!("{st:?}");
            assert!(
                all.contains("No space left") || all.contains("os error 28"),
                "{pages} pages free: the error names the full disk: {all}"
            );
        }
        // Disk space back: the next pass owns everything, and unmanaging leaves nothing.
        fs::remove_file(&filler).unwrap();
        let report = node.sync(&h, Some(&ca));
        assert!(
            !report.needs_attention(),
            "{pages} pages free, then room: {report:#?}"
        );
        assert_eq!(node.unrecorded(), 0, "{pages} pages free");
        assert_nothing_left(&node, &initial, &format!("{pages} pages free"));
        fs::remove_dir_all(&node.state).unwrap();
    }
    assert!(failed >= 3, "only {failed} fill levels made the pass fail");
}
