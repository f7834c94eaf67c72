//! Issue 4's proof of the agent, on real files and sockets: the real `agent::run` started
//! in-process on `127.0.0.1:0` (and the real binary where the process matters: SIGTERM,
//! exit codes), driven only through a Secret volume updated exactly as kubelet's
//! AtomicWriter does, the trust dirs, `/report`, `/metrics`, and a real HTTP receiver.
//! No sleeps: every wait polls a condition with a deadline. The resync interval is 10 min
//! in every test, so only watch events can explain what happens within a test.

mod agent_util;
mod support;

use agent_util::{
    all_hold, new_ca, pem_ders, report_ca, sample, Agent, Node, SecretVolume, DEADLINE,
};
use regtrust::agent::{push, Options};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::wait_for;

const HOST: &str = "harbor.test";

fn opts() -> Options {
    Options {
        resync_interval: Duration::from_secs(600),
        probe_interval: Duration::from_secs(600),
        ..Options::default()
    }
}

#[track_caller]
fn wait_all_hold(files: &[PathBuf], ca: &agent_util::TestCa, what: &str) {
    wait_for(what, DEADLINE, || all_hold(files, ca).then_some(()));
}

#[test]
fn atomic_writer_update_reaches_every_runtime_dir() {
    let node = Node::new();
    let inputs = tempfile::tempdir().unwrap();
    let (ca1, ca2) = (new_ca("ca-1"), new_ca("ca-2"));
    let vol = SecretVolume::create(
        &inputs.path().join("harbor-ca"),
        &[("ca.crt", ca1.pem.as_bytes())],
    );
    let agent = Agent::start(node.config(&[(HOST, vol.path())]), opts());
    let files = node.ca_files(HOST);
    assert_eq!(
        files.len(),
        6,
        "docker, containerd and crio, each as {HOST} and {HOST}:443"
    );

    agent.wait_ready();
    wait_all_hold(&files, &ca1, "the first CA in every runtime dir");
    assert_eq!(agent.get("/healthz").0, 200);

    vol.update(&[("ca.crt", ca2.pem.as_bytes())]);
    wait_all_hold(&files, &ca2, "the updated CA in every runtime dir");
    wait_for("/report to show the new CA", DEADLINE, || {
        (report_ca(&agent.report(), HOST) == [ca2.sha256.clone()]).then_some(())
    });
    let report = agent.report();
    assert_eq!(report["schema"], "regtrust.report/v1");
    assert_eq!(report["node"], "test-node");
    assert_eq!(report["problems"], serde_json::json!([]), "{report:#}");
    // containerd reads the CA only through the hosts.toml regtrust wrote beside it.
    let hosts_toml = node
        .path()
        .join("etc/containerd/certs.d")
        .join(HOST)
        .join("hosts.toml");
    assert!(std::fs::read_to_string(hosts_toml)
        .unwrap()
        .contains("ca = \"ca.crt\""));
    agent.stop().unwrap();
    assert!(all_hold(&files, &ca2), "stopping left the CAs in place");
}

#[test]
fn hundred_updates_end_with_the_last_ca_and_no_reader_sees_a_partial_file() {
    let node = Node::new();
    let inputs = tempfile::tempdir().unwrap();
    let cas: Vec<_> = (0..=100).map(|i| new_ca(&format!("ca-{i}"))).collect();
    let known: BTreeSet<Vec<u8>> = cas.iter().map(|c| c.der.clone()).collect();
    let vol = SecretVolume::create(
        &inputs.path().join("harbor-ca"),
        &[("ca.crt", cas[0].pem.as_bytes())],
    );
    let agent = Agent::start(node.config(&[(HOST, vol.path())]), opts());
    let files = node.ca_files(HOST);
    wait_all_hold(&files, &cas[0], "the first CA in every runtime dir");

    // A reader that keeps reading every installed ca.crt while the updates land: each read
    // must be whole PEM holding exactly one of the CAs (never empty, never a part).
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let bad: Arc<Mutex<Vec<String>>> = Arc::default();
    let reader = {
        let (stop, reads, bad, files, known) = (
            stop.clone(),
            reads.clone(),
            bad.clone(),
            files.clone(),
            known.clone(),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for f in &files {
                    let verdict = match std::fs::read(f) {
                        Ok(bytes) => match pem_ders(&bytes) {
                            Some(ders) if ders.len() == 1 && known.contains(&ders[0]) => None,
                            Some(_) => Some(format!("{}: not exactly one known CA", f.display())),
                            None => Some(format!(
                                "{}: {} bytes, not whole PEM",
                                f.display(),
                                bytes.len()
                            )),
                        },
                        Err(e) => Some(format!("{}: {e}", f.display())),
                    };
                    reads.fetch_add(1, Ordering::Relaxed);
                    if let Some(v) = verdict {
                        bad.lock().unwrap().push(v);
                    }
                }
            }
        })
    };

    for ca in &cas[1..] {
        vol.update(&[("ca.crt", ca.pem.as_bytes())]);
    }
    let last = &cas[100];
    wait_all_hold(&files, last, "the last of 100 CAs in every runtime dir");
    // Let the reader see the final state a few more times, then stop it.
    let seen = reads.load(Ordering::Relaxed);
    wait_for("the reader to keep reading", DEADLINE, || {
        (reads.load(Ordering::Relaxed) > seen + 60).then_some(())
    });
    stop.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    let bad = bad.lock().unwrap();
    assert!(
        bad.is_empty(),
        "{} of {} reads were not a whole CA: {:?}",
        bad.len(),
        reads.load(Ordering::Relaxed),
        &bad[..bad.len().min(5)]
    );
    wait_for("/report to show the last CA", DEADLINE, || {
        (report_ca(&agent.report(), HOST) == [last.sha256.clone()]).then_some(())
    });
}

#[test]
fn owned_files_deleted_edited_or_wiped_are_restored() {
    let node = Node::new();
    let inputs = tempfile::tempdir().unwrap();
    let ca = new_ca("ca");
    let vol = SecretVolume::create(
        &inputs.path().join("harbor-ca"),
        &[("ca.crt", ca.pem.as_bytes())],
    );
    let agent = Agent::start(node.config(&[(HOST, vol.path())]), opts());
    let files = node.ca_files(HOST);
    wait_all_hold(&files, &ca, "the CA in every runtime dir");
    let docker = node
        .path()
        .join("etc/docker/certs.d")
        .join(HOST)
        .join("ca.crt");
    let crio = node
        .path()
        .join("etc/containers/certs.d")
        .join(HOST)
        .join("ca.crt");
    let containerd_toml = node
        .path()
        .join("etc/containerd/certs.d")
        .join(HOST)
        .join("hosts.toml");
    let toml_before = std::fs::read(&containerd_toml).unwrap();

    std::fs::remove_file(&docker).unwrap();
    wait_all_hold(&files, &ca, "the deleted docker ca.crt restored");

    let other = new_ca("someone-else");
    std::fs::write(&crio, other.pem.as_bytes()).unwrap();
    wait_all_hold(&files, &ca, "the hand-edited crio ca.crt restored");

    std::fs::write(&containerd_toml, "server = \"https://elsewhere\"\n").unwrap();
    wait_for("the edited hosts.toml restored", DEADLINE, || {
        (std::fs::read(&containerd_toml).ok()? == toml_before).then_some(())
    });

    // Wipe docker's whole certs.d (moved away in one step, then deleted): restored, and the
    // new dirs are watched again: a second deletion inside them is restored too.
    let certs_d = node.path().join("etc/docker/certs.d");
    let aside = node.path().join("etc/docker/certs.d.wiped");
    std::fs::rename(&certs_d, &aside).unwrap();
    std::fs::remove_dir_all(&aside).unwrap();
    wait_all_hold(&files, &ca, "docker's wiped certs.d restored");
    std::fs::remove_file(&docker).unwrap();
    wait_all_hold(&files, &ca, "a file in the recreated dir restored");

    let report = agent.report();
    assert_eq!(report["problems"], serde_json::json!([]), "{report:#}");
    let m = agent.metrics();
    assert_eq!(sample(&m, "regtrust_problems"), Some(0.0), "{m}");
}

#[test]
fn an_invalid_input_keeps_the_last_good_ca_and_is_a_problem() {
    let node = Node::new();
    let inputs = tempfile::tempdir().unwrap();
    let (good, next) = (new_ca("good"), new_ca("next"));
    let vol = SecretVolume::create(
        &inputs.path().join("harbor-ca"),
        &[("ca.crt", good.pem.as_bytes())],
    );
    let agent = Agent::start(node.config(&[(HOST, vol.path())]), opts());
    let files = node.ca_files(HOST);
    wait_all_hold(&files, &good, "the good CA in every runtime dir");
    let valid = format!("regtrust_ca_input_valid{{registry=\"{HOST}\"}}");
    wait_for("the CA input shown valid in /metrics", DEADLINE, || {
        (sample(&agent.metrics(), &valid) == Some(1.0)).then_some(())
    });

    // A CA input problem names the input as `CA input PATH` (the reason follows it).
    let source = format!("CA input {}", vol.path().display());
    let bad_inputs: [(&str, Vec<u8>); 3] = [
        ("garbage", b"this is not a certificate\n".to_vec()),
        ("a private key", format!("{}-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n", good.pem).into_bytes()),
        ("empty", vec![]),
    ];
    for (what, bytes) in bad_inputs {
        vol.update(&[("ca.crt", &bytes)]);
        wait_for(
            &format!("{what}: a problem naming {source} in /report"),
            DEADLINE,
            || {
                let report = agent.report();
                report["problems"]
                    .as_array()?
                    .iter()
                    .any(|p| p["source"] == source.as_str())
                    .then_some(())
            },
        );
        let m = agent.metrics();
        assert_eq!(sample(&m, &valid), Some(0.0), "{what}: {m}");
        assert!(
            sample(&m, "regtrust_problems").unwrap_or(0.0) >= 1.0,
            "{what}: {m}"
        );
        assert!(
            all_hold(&files, &good),
            "{what}: the last good CA stays installed"
        );
        let report = agent.report();
        let states: BTreeSet<String> = agent_util::registry(&report, HOST)["trust"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["state"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            states,
            BTreeSet::from(["unchanged".to_string()]),
            "{what}: {report:#}"
        );
        // Key material never reaches the report.
        assert!(!report.to_string().contains("PRIVATE KEY"), "{report:#}");
    }

    vol.update(&[("ca.crt", next.pem.as_bytes())]);
    wait_all_hold(&files, &next, "a valid input again installs its CA");
    wait_for("the problem to clear", DEADLINE, || {
        let m = agent.metrics();
        (sample(&m, "regtrust_problems") == Some(0.0) && sample(&m, &valid) == Some(1.0))
            .then_some(())
    });
}

#[test]
fn a_half_written_input_is_read_again_before_it_is_reported() {
    // A plain file edited in place (not a Secret volume): the agent reacts to the first
    // write and may read half a file. That pass must not reach the report; the next read
    // (after the rest is written) wins. A long debounce keeps the confirmation read out of
    // the way, so the test controls every step.
    let node = Node::new();
    let inputs = tempfile::tempdir().unwrap();
    let (ca1, ca2) = (new_ca("ca-1"), new_ca("ca-2"));
    let file = inputs.path().join("ca.pem");
    std::fs::write(&file, ca1.pem.as_bytes()).unwrap();
    let mut o = opts();
    o.watch.debounce = Duration::from_secs(30);
    let agent = Agent::start(node.config(&[(HOST, &file)]), o);
    let files = node.ca_files(HOST);
    wait_all_hold(&files, &ca1, "the first CA");
    // Ready: the start pass is applied, so every later pass comes from an event.
    agent.wait_ready();
    let problem_passes = "regtrust_sync_total{result=\"problem\"}";
    assert_eq!(sample(&agent.metrics(), problem_passes), Some(0.0));

    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&file)
        .unwrap();
    let half = ca2.pem.len() / 2;
    f.write_all(&ca2.pem.as_bytes()[..half]).unwrap();
    f.flush().unwrap();
    wait_for("a pass that read the half-written file", DEADLINE, || {
        (sample(&agent.metrics(), problem_passes)? >= 1.0).then_some(())
    });
    let report = agent.report();
    assert_eq!(report["problems"], serde_json::json!([]), "{report:#}");
    assert!(
        all_hold(&files, &ca1),
        "the half file never replaces the CA"
    );

    f.write_all(&ca2.pem.as_bytes()[half..]).unwrap();
    drop(f);
    wait_all_hold(&files, &ca2, "the whole new CA installed");
    wait_for("/report to show the new CA", DEADLINE, || {
        (report_ca(&agent.report(), HOST) == [ca2.sha256.clone()]).then_some(())
    });
    let report = agent.report();
    assert_eq!(report["problems"], serde_json::json!([]), "{report:#}");
    assert_eq!(sample(&agent.metrics(), "regtrust_problems"), Some(0.0));
}

// ---------------------------------------------------------------------------------------
// Pushing to a report receiver that refuses for a while.

#[derive(Default)]
struct Inbox {
    refuse: bool,
    refused: u64,
    /// (Authorization header, body) of each accepted push.
    accepted: Vec<(String, serde_json::Value)>,
}

/// A real HTTP receiver on 127.0.0.1:0 (axum), answering 503 while `refuse` is set.
struct Receiver {
    inbox: Arc<Mutex<Inbox>>,
    url: String,
    _rt: tokio::runtime::Runtime,
}

impl Receiver {
    fn start() -> Receiver {
        use axum::body::Bytes;
        use axum::extract::State;
        use axum::http::{HeaderMap, StatusCode};
        let inbox = Arc::new(Mutex::new(Inbox {
            refuse: true,
            ..Inbox::default()
        }));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/api/v1/reports", listener.local_addr().unwrap());
        async fn post(
            State(inbox): State<Arc<Mutex<Inbox>>>,
            headers: HeaderMap,
            body: Bytes,
        ) -> StatusCode {
            let mut inbox = inbox.lock().unwrap();
            if inbox.refuse {
                inbox.refused += 1;
                return StatusCode::SERVICE_UNAVAILABLE;
            }
            let auth = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            match serde_json::from_slice(&body) {
                Ok(v) => {
                    inbox.accepted.push((auth, v));
                    StatusCode::OK
                }
                Err(_) => StatusCode::BAD_REQUEST,
            }
        }
        let app = axum::Router::new()
            .route("/api/v1/reports", axum::routing::post(post))
            .with_state(inbox.clone());
        rt.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
        Receiver {
            inbox,
            url,
            _rt: rt,
        }
    }
}

#[test]
fn pushes_back_off_while_refused_never_block_sync_and_the_latest_report_arrives() {
    let node = Node::new();
    let inputs = tempfile::tempdir().unwrap();
    let (ca1, ca2) = (new_ca("ca-1"), new_ca("ca-2"));
    let vol = SecretVolume::create(
        &inputs.path().join("harbor-ca"),
        &[("ca.crt", ca1.pem.as_bytes())],
    );
    let token = inputs.path().join("token");
    std::fs::write(&token, "tok-1\n").unwrap();
    let receiver = Receiver::start();
    let mut o = opts();
    o.report = Some(push::Target::new(&receiver.url, Some(token.clone()), None).unwrap());
    o.backoff = push::Backoff {
        base: Duration::from_millis(20),
        cap: Duration::from_millis(200),
    };
    let agent = Agent::start(node.config(&[(HOST, vol.path())]), o);
    let files = node.ca_files(HOST);
    wait_all_hold(&files, &ca1, "the first CA");
    wait_for("three refused pushes", DEADLINE, || {
        (receiver.inbox.lock().unwrap().refused >= 3).then_some(())
    });

    // While the receiver refuses, the Secret changes: the agent syncs all the same.
    let syncs_before = sample(&agent.metrics(), "regtrust_sync_total{result=\"ok\"}").unwrap();
    vol.update(&[("ca.crt", ca2.pem.as_bytes())]);
    wait_all_hold(
        &files,
        &ca2,
        "the new CA installed while the receiver refuses",
    );
    {
        let inbox = receiver.inbox.lock().unwrap();
        assert!(inbox.accepted.is_empty(), "the receiver was still refusing");
    }
    // The files are written before the pass is counted: wait for the count.
    let m = wait_for("the sync during the refusal counted", DEADLINE, || {
        let m = agent.metrics();
        (sample(&m, "regtrust_sync_total{result=\"ok\"}")? > syncs_before).then_some(m)
    });
    assert!(
        sample(&m, "regtrust_report_push_total{result=\"error\"}").unwrap() >= 3.0,
        "{m}"
    );
    assert_eq!(
        sample(&m, "regtrust_report_push_total{result=\"ok\"}"),
        Some(0.0),
        "{m}"
    );

    // The token rotates, then the receiver accepts: the latest report (CA 2) arrives with
    // the new token, and the reports made during the refusal are not replayed (at most the
    // one already in flight when the receiver turned comes before it).
    wait_for("/report to show the new CA", DEADLINE, || {
        (report_ca(&agent.report(), HOST) == [ca2.sha256.clone()]).then_some(())
    });
    std::fs::write(&token, "tok-2\r\n").unwrap();
    receiver.inbox.lock().unwrap().refuse = false;
    let (auth, last) = wait_for("the latest report accepted", DEADLINE, || {
        let inbox = receiver.inbox.lock().unwrap();
        let (auth, last) = inbox.accepted.last()?;
        (report_ca(last, HOST) == [ca2.sha256.clone()]).then(|| (auth.clone(), last.clone()))
    });
    assert_eq!(auth, "Bearer tok-2");
    assert_eq!(last["schema"], "regtrust.report/v1");
    assert!(receiver.inbox.lock().unwrap().accepted.len() <= 2);
    wait_for("the push counter", DEADLINE, || {
        (sample(
            &agent.metrics(),
            "regtrust_report_push_total{result=\"ok\"}",
        )? >= 1.0)
            .then_some(())
    });
}

// ---------------------------------------------------------------------------------------
// The real binary.

/// `regtrust agent` as a child process, killed by PID when dropped.
struct Process {
    child: std::process::Child,
    log: PathBuf,
}

impl Process {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The address from the JSON "agent started" log line.
    fn wait_addr(&mut self) -> std::net::SocketAddr {
        wait_for("the agent's start log line", DEADLINE, || {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the agent exited ({status}):\n{}", self.log());
            }
            self.log().lines().find_map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).ok()?;
                v["fields"]["addr"].as_str()?.parse().ok()
            })
        })
    }

    fn wait_exit(&mut self, deadline: Duration) -> std::process::ExitStatus {
        wait_for("the agent to exit", deadline, || {
            self.child.try_wait().unwrap()
        })
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_agent(args: &[&str], envs: &[(&str, &str)], log_dir: &Path) -> Process {
    let log = log_dir.join("agent.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_regtrust"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("REGTRUST_") {
            c.env_remove(key);
        }
    }
    c.arg("--log-format")
        .arg("json")
        .arg("agent")
        .args(args)
        .envs(envs.iter().copied());
    let child = c
        .stdin(std::process::Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    Process { child, log }
}

fn signal(p: &Process, sig: &str) {
    let kill = support::require_tool("kill", "procps");
    let status = std::process::Command::new(kill)
        .arg(format!("-{sig}"))
        .arg(p.child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn sigterm_and_sigint_exit_zero_quickly_and_leave_the_cas() {
    for sig in ["TERM", "INT"] {
        let node = Node::new();
        let inputs = tempfile::tempdir().unwrap();
        let ca = new_ca("ca");
        let vol = SecretVolume::create(
            &inputs.path().join("harbor-ca"),
            &[("ca.crt", ca.pem.as_bytes())],
        );
        let ca_flag = format!("{HOST}={}", vol.path().display());
        let root = node.path().display().to_string();
        // Flags from the environment too (SPEC: every flag reads REGTRUST_<FLAG>).
        let mut p = spawn_agent(
            &["--ca", &ca_flag],
            &[
                ("REGTRUST_HOST_ROOT", &root),
                ("REGTRUST_LISTEN", "127.0.0.1:0"),
                ("REGTRUST_PROBE_INTERVAL", "10m"),
                ("REGTRUST_RESYNC_INTERVAL", "10m"),
                ("REGTRUST_NODE_NAME", "sig-node"),
            ],
            inputs.path(),
        );
        let addr = p.wait_addr();
        wait_for("/readyz 200", DEADLINE, || {
            (agent_util::http_get(addr, "/readyz").0 == 200).then_some(())
        });
        let files = node.ca_files(HOST);
        wait_all_hold(&files, &ca, "the CA installed by the real binary");
        let (_, report) = agent_util::http_get(addr, "/report");
        assert!(report.contains("\"sig-node\""), "{report}");

        signal(&p, sig);
        // SPEC: exit 0 within 5 s.
        let status = p.wait_exit(Duration::from_secs(5));
        assert_eq!(status.code(), Some(0), "SIG{sig}: {status}\n{}", p.log());
        assert!(all_hold(&files, &ca), "SIG{sig}: the CAs stay in place");
        let log = p.log();
        assert!(log.contains("installed CAs stay in place"), "{log}");
        assert!(log.contains("CA installed"), "{log}");
    }
}

#[test]
fn configuration_errors_exit_2_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().display().to_string();
    let cases: [(&[&str], &str); 6] = [
        (&["--probe-interval", "0s"], "--probe-interval"),
        (&["--resync-interval", "soon"], "--resync-interval"),
        (&["--report-url", "ftp://agg/x"], "--report-url"),
        (&["--report-url", "http://user:secret@agg/x"], "credentials"),
        (&["--listen", "not-an-address"], "--listen"),
        (&["--runtime", "podman"], "--runtime"),
    ];
    for (args, flag) in cases {
        let mut all = vec!["--host-root", root.as_str(), "--listen", "127.0.0.1:0"];
        if args[0] == "--listen" {
            all.truncate(2);
        }
        all.extend_from_slice(args);
        let mut p = spawn_agent(&all, &[], dir.path());
        let status = p.wait_exit(DEADLINE);
        let log = p.log();
        assert_eq!(status.code(), Some(2), "{args:?}: {log}");
        assert!(log.contains(flag), "{args:?}: {log}");
        assert!(!log.contains("secret"), "{args:?}: {log}");
    }
}
