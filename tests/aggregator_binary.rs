//! The real `regtrust` binary as the aggregator and as `regtrust report`: start-up refusals,
//! durability across kill -9 under 20 concurrent posting clients, the report CLI's table,
//! JSON and exit codes, and staleness.

mod aggregator_support;

use aggregator_support::*;
use regtrust::aggregator::fleet::{NodeState, NodesDoc};
use regtrust::report::{Report, Verdict};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The binary with no REGTRUST_* variable inherited from whoever runs the tests.
fn regtrust() -> Command {
    let mut c = Command::new(bin());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("REGTRUST_") {
            c.env_remove(k);
        }
    }
    c
}

fn run(args: &[&str]) -> Output {
    regtrust().args(args).output().expect("run regtrust")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn the_aggregator_refuses_to_start_unsafely() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let db = db.to_str().unwrap();
    let empty = dir.path().join("empty.token");
    std::fs::write(&empty, "\n").unwrap();
    let empty = empty.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--listen", "0.0.0.0:0"], "no --token-file"),
        (vec!["--listen", "127.0.0.1:0"], "no --token-file"),
        (
            vec!["--listen", "0.0.0.0:0", "--allow-open-loopback"],
            "needs a loopback",
        ),
        (
            vec![
                "--listen",
                "127.0.0.1:0",
                "--token-file",
                "/nonexistent/token",
            ],
            "/nonexistent/token",
        ),
        (
            vec!["--listen", "127.0.0.1:0", "--token-file", empty],
            "empty",
        ),
        (vec!["--stale-after", "soon"], "--stale-after"),
        (vec!["--body-limit", "lots"], "--body-limit"),
        (vec!["--listen", "localhost"], "--listen"),
    ];
    for (extra, part) in cases {
        let mut argv = vec!["aggregator", "--db", db];
        argv.extend_from_slice(&extra);
        let out = run(&argv);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{extra:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(part),
            "{extra:?}: {}",
            text(&out.stderr)
        );
    }
    // An unusable database is a configuration error too, named in the message.
    let out = run(&[
        "aggregator",
        "--listen",
        "127.0.0.1:0",
        "--allow-open-loopback",
        "--db",
        "/nonexistent/dir/a.db",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("/nonexistent/dir/a.db"));
    // The environment names every flag.
    let out = regtrust()
        .args(["aggregator"])
        .env("REGTRUST_DB", db)
        .env("REGTRUST_LISTEN", "0.0.0.0:0")
        .env("REGTRUST_ALLOW_OPEN_LOOPBACK", "true")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("needs a loopback"));
}

#[test]
fn every_answered_report_survives_kill_9() {
    const CLIENTS: usize = 20;
    const BEFORE_KILL: usize = 400;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("fleet.db");
    let (wtok, _) = token_files(dir.path());
    let mut agg = Binary::start(&db, &["--token-file", wtok.to_str().unwrap()]);
    let base = agg.base.clone();
    let acked: Arc<Mutex<Vec<Report>>> = Arc::default();
    let answered = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let rt = rt();
    rt.block_on(async {
        let mut clients = Vec::new();
        for c in 0..CLIENTS {
            let (base, acked, answered, refused) = (
                base.clone(),
                acked.clone(),
                answered.clone(),
                refused.clone(),
            );
            clients.push(tokio::spawn(async move {
                let http = http();
                for j in 0.. {
                    let verdict = if j % 3 == 0 {
                        Verdict::UnknownAuthority
                    } else {
                        Verdict::Ok
                    };
                    let r = report(
                        &format!("client{c:02}-report{j:05}"),
                        &[
                            ("harbor.local", verdict, "m", ""),
                            ("quay.local", Verdict::Ok, "", ""),
                        ],
                    );
                    let sent = http
                        .post(format!("{base}/api/v1/reports"))
                        .bearer_auth(WRITE_TOKEN)
                        .body(r.to_json())
                        .send()
                        .await;
                    match sent {
                        Ok(resp) if resp.status().is_success() => {
                            acked.lock().unwrap().push(r);
                            answered.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(resp) => panic!("unexpected status {}", resp.status()),
                        // The aggregator is gone: this client stops.
                        Err(_) => {
                            refused.fetch_add(1, Ordering::SeqCst);
                            return;
                        }
                    }
                }
            }));
        }
        let a = answered.clone();
        eventually(
            "reports answered before the kill",
            Duration::from_secs(120),
            || {
                let a = a.clone();
                async move { a.load(Ordering::SeqCst) >= BEFORE_KILL }
            },
        )
        .await;
        agg.kill9();
        for c in clients {
            c.await.unwrap();
        }
    });
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= BEFORE_KILL);
    assert_eq!(
        refused.load(Ordering::SeqCst),
        CLIENTS,
        "every client was cut off mid-way"
    );

    // Restart on the same database: everything that was answered 2xx is there, intact.
    let agg = Binary::start(&db, &["--token-file", wtok.to_str().unwrap()]);
    rt.block_on(async {
        let doc: NodesDoc = http()
            .get(format!("{}/api/v1/nodes", agg.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let stored: std::collections::HashSet<&str> =
            doc.nodes.iter().map(|n| n.node.as_str()).collect();
        let lost: Vec<&str> = acked
            .iter()
            .map(|r| r.node.as_str())
            .filter(|n| !stored.contains(n))
            .collect();
        assert!(lost.is_empty(), "{} answered reports lost: {lost:?}", lost.len());
        // Spot-check whole documents, first and last answered of the run.
        for r in [&acked[0], &acked[acked.len() - 1]] {
            let v: serde_json::Value = http()
                .get(format!("{}/api/v1/nodes/{}", agg.base, r.node))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(&Report::from_json(v["report"].to_string().as_bytes()).unwrap(), r);
        }
        eprintln!(
            "durability: {} reports answered before kill -9, all {} present after restart ({} nodes stored)",
            acked.len(),
            acked.len(),
            doc.nodes.len()
        );
    });
}

/// Post the two-node fleet used by the CLI tests.
fn post_fleet(base: &str) {
    rt().block_on(async {
        let a = report(
            "node-a",
            &[
                ("harbor.local", Verdict::Ok, "", ""),
                ("quay.local:8443", Verdict::Ok, "", ""),
            ],
        );
        let b = report(
            "node-b",
            &[
                (
                    "harbor.local",
                    Verdict::UnknownAuthority,
                    UNKNOWN_CA_MSG,
                    UNKNOWN_CA_FIX,
                ),
                ("quay.local:8443", Verdict::Ok, "", ""),
            ],
        );
        for r in [a, b] {
            assert_eq!(
                post(base, Some(WRITE_TOKEN), r.to_json()).await.status(),
                200
            );
        }
    });
}

fn report_cli(base: &str, token: &Path, extra: &[&str]) -> Output {
    let mut argv = vec![
        "report",
        "--url",
        base,
        "--token-file",
        token.to_str().unwrap(),
    ];
    argv.extend_from_slice(extra);
    run(&argv)
}

#[test]
fn report_prints_the_fleet_and_exits_by_it() {
    let dir = tempfile::tempdir().unwrap();
    let (wtok, rtok) = token_files(dir.path());
    let agg = Binary::start(
        &dir.path().join("fleet.db"),
        &[
            "--token-file",
            wtok.to_str().unwrap(),
            "--read-token-file",
            rtok.to_str().unwrap(),
        ],
    );
    post_fleet(&agg.base);

    let out = report_cli(&agg.base, &rtok, &[]);
    let table = text(&out.stdout);
    println!("$ regtrust report --url URL --token-file read.token\n{table}");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 5, "{table}");
    assert!(
        lines[0].starts_with("NODE     STATE     REGISTRY          VERDICT"),
        "{table}"
    );
    let words = |l: &str| l.split_whitespace().map(String::from).collect::<Vec<_>>();
    assert_eq!(words(lines[1])[..4], ["node-a", "ok", "harbor.local", "ok"]);
    assert_eq!(
        words(lines[3])[..5],
        [
            "node-b",
            "failing",
            "harbor.local",
            "unknown_authority",
            "(ca_not_installed)"
        ]
    );
    assert!(lines[3].contains(UNKNOWN_CA_MSG) && lines[3].contains(UNKNOWN_CA_FIX));

    let out = report_cli(&agg.base, &rtok, &["--failing"]);
    let table = text(&out.stdout);
    println!("$ regtrust report --url URL --token-file read.token --failing\n{table}");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(table.lines().count(), 2, "{table}");
    assert!(table.lines().nth(1).unwrap().starts_with("node-b"));

    let out = report_cli(&agg.base, &rtok, &["--failing", "--output", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let doc: NodesDoc = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc.nodes.len(), 1);
    assert_eq!(doc.nodes[0].node, "node-b");
    assert_eq!(
        doc.nodes[0].registries[0].verdict,
        Verdict::UnknownAuthority
    );

    // Filters that leave only healthy rows exit 0.
    for extra in [
        vec!["--registry", "QUAY.local:8443"],
        vec!["--node", "node-a"],
        vec!["--registry", "quay.local:8443", "--failing"],
    ] {
        let out = report_cli(&agg.base, &rtok, &extra);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{extra:?}: {}",
            text(&out.stderr)
        );
    }
    let out = report_cli(
        &agg.base,
        &rtok,
        &["--node", "node-b", "--registry", "harbor.local"],
    );
    assert_eq!(out.status.code(), Some(1));
    let out = report_cli(&agg.base, &rtok, &["--node", "node-z"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("has not reported"));

    // Usage, configuration and connection errors exit 2.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["report", "--url", &agg.base], "401"),
        (
            vec![
                "report",
                "--url",
                &agg.base,
                "--token-file",
                wtok.to_str().unwrap(),
            ],
            "read token",
        ),
        (
            vec![
                "report",
                "--url",
                &closed_url,
                "--token-file",
                rtok.to_str().unwrap(),
            ],
            "127.0.0.1",
        ),
        // One CA rule with the agent: --ca-file, else the system bundle.
        (
            vec![
                "report",
                "--url",
                "https://127.0.0.1:1",
                "--ca-file",
                "/nonexistent/ca.pem",
            ],
            "--ca-file /nonexistent/ca.pem",
        ),
        (vec!["report", "--url", "ftp://x"], "scheme"),
        (
            vec!["report", "--url", &agg.base, "--registry", "../x"],
            "not a registry host",
        ),
        (
            vec!["report", "--url", &agg.base, "--output", "yaml"],
            "yaml",
        ),
        (vec!["report"], "--url"),
    ];
    for (argv, part) in cases {
        let out = run(&argv);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{argv:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(part),
            "{argv:?}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn silent_nodes_become_stale_and_report_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let (wtok, rtok) = token_files(dir.path());
    let agg = Binary::start(
        &dir.path().join("fleet.db"),
        &[
            "--token-file",
            wtok.to_str().unwrap(),
            "--stale-after",
            "1s",
        ],
    );
    rt().block_on(async {
        let r = report("node-a", &[("harbor.local", Verdict::Ok, "", "")]);
        assert_eq!(
            post(&agg.base, Some(WRITE_TOKEN), r.to_json())
                .await
                .status(),
            200
        );
    });
    // Poll until the node has been silent for longer than --stale-after.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let out = report_cli(&agg.base, &rtok, &["--output", "json"]);
        let doc: NodesDoc = serde_json::from_slice(&out.stdout).unwrap();
        if doc.nodes[0].state == NodeState::Stale {
            assert_eq!(out.status.code(), Some(1));
            assert!(doc.nodes[0].stale);
            let table = report_cli(&agg.base, &rtok, &["--failing"]);
            assert!(text(&table.stdout).contains("node-a   stale"));
            break;
        }
        assert_eq!(out.status.code(), Some(0));
        assert!(
            std::time::Instant::now() < deadline,
            "node-a never became stale"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sigterm_stops_the_aggregator_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (wtok, _) = token_files(dir.path());
    let db = dir.path().join("fleet.db");
    let mut agg = Binary::start(&db, &["--token-file", wtok.to_str().unwrap()]);
    rt().block_on(async {
        let r = report("node-a", &[("harbor.local", Verdict::Ok, "", "")]);
        assert_eq!(
            post(&agg.base, Some(WRITE_TOKEN), r.to_json())
                .await
                .status(),
            200
        );
    });
    let killed = Command::new("kill")
        .args(["-TERM", &agg.child.id().to_string()])
        .status()
        .expect("run kill (procps)");
    assert!(killed.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = agg.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no exit within 10s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
    // The WAL was checkpointed into the database at the clean stop.
    let wal = std::fs::metadata(dir.path().join("fleet.db-wal"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert_eq!(wal, 0);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM nodes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
}

/// A TLS server (rustls, ring) on 127.0.0.1:0 with a certificate for 127.0.0.1 (and `dns`)
/// signed by a fresh CA named `ca_name`, sent alone or with the CA (`send_ca`); each accepted
/// connection goes to `serve` on the server's own thread. Returns the port and the CA's PEM.
/// A client that does not trust the CA aborts the handshake; that connection is dropped.
fn tls_server<F, Fut>(ca_name: &str, dns: &[&str], send_ca: bool, serve: F) -> (u16, String)
where
    F: Fn(tokio_rustls::server::TlsStream<tokio::net::TcpStream>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, ca_name);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut leaf =
        CertificateParams::new(dns.iter().map(|d| d.to_string()).collect::<Vec<_>>()).unwrap();
    leaf.subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
    let leaf = leaf.signed_by(&key, &ca_cert, &ca_key).unwrap();
    let mut chain = vec![leaf.der().clone()];
    if send_ca {
        chain.push(ca_cert.der().clone());
    }
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        chain,
        rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let local = tokio::task::LocalSet::new();
        let serve = std::rc::Rc::new(serve);
        local.block_on(&rt, async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, serve) = (acceptor.clone(), serve.clone());
                // The handshake in the connection's own task: a stalled one blocks no other.
                tokio::task::spawn_local(async move {
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        serve(tls).await;
                    }
                });
            }
        });
    });
    (port, ca_cert.pem())
}

/// A TLS endpoint answering every request with `body` (certificate for localhost and
/// 127.0.0.1 by a fresh CA). Returns the port and the CA's PEM.
fn tls_endpoint(body: String) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = Arc::new(body);
    tls_server(
        "regtrust test aggregator CA",
        &["localhost"],
        false,
        move |mut tls| {
            let body = body.clone();
            async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
                let _ = tls.write_all(resp.as_bytes()).await;
                let _ = tls.shutdown().await;
            }
        },
    )
}

#[test]
fn report_reads_an_https_aggregator_with_its_ca_file() {
    let doc = serde_json::json!({
        "generated_at": "2030-01-01T00:00:00Z",
        "stale_after_seconds": 180,
        "nodes": [{
            "node": "node-a", "state": "ok", "worst": "ok", "stale": false,
            "last_report_at": "2030-01-01T00:00:00Z", "last_report_age_seconds": 3,
            "generated_at": "2030-01-01T00:00:00Z", "agent_version": "0.1.0", "problems": 0,
            "registries": [{"registry": "harbor.local", "verdict": "ok", "since": "2030-01-01T00:00:00Z", "message": ""}]
        }]
    });
    let (port, ca_pem) = tls_endpoint(doc.to_string());
    let (_, other_ca) = tls_endpoint(String::new());
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let wrong = dir.path().join("other-ca.pem");
    std::fs::write(&wrong, other_ca).unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let url = format!("https://127.0.0.1:{port}");

    let out = run(&["report", "--url", &url, "--ca-file", ca.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("node-a   ok"),
        "{}",
        text(&out.stdout)
    );

    let out = run(&[
        "report",
        "--url",
        &url,
        "--ca-file",
        wrong.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).to_lowercase().contains("certificate"),
        "{}",
        text(&out.stderr)
    );
    for bad in [garbage.to_str().unwrap(), "/nonexistent/ca.pem"] {
        let out = run(&["report", "--url", &url, "--ca-file", bad]);
        assert_eq!(out.status.code(), Some(2));
        assert!(text(&out.stderr).contains(bad), "{}", text(&out.stderr));
        assert!(!text(&out.stderr).contains("AAAA"), "file content leaked");
    }
}

/// What one of two racing starts did: listens (killed on drop) or exited.
enum Start {
    Listened(std::process::Child),
    Exited(i32, String),
}

/// Start `regtrust aggregator` on `db` and see it to "listening" or to its exit (deadline).
fn start_and_see(db: &Path) -> std::thread::JoinHandle<Start> {
    use std::io::BufRead;
    let mut child = regtrust()
        .args([
            "--log-format",
            "json",
            "aggregator",
            "--listen",
            "127.0.0.1:0",
            "--allow-open-loopback",
            "--db",
        ])
        .arg(db)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::spawn(move || {
        let stderr = child.stderr.take().unwrap();
        let mut seen = String::new();
        let mut lines = std::io::BufReader::new(stderr).lines();
        while let Some(Ok(line)) = lines.next() {
            if line.contains("aggregator listening") {
                // Keep draining stderr so the process never blocks on a full pipe.
                std::thread::spawn(move || for _ in lines.by_ref() {});
                return Start::Listened(child);
            }
            seen.push_str(&line);
            seen.push('\n');
        }
        let status = child.wait().unwrap();
        Start::Exited(status.code().unwrap_or(-1), seen)
    })
}

/// Two aggregators started at the same moment on one new SQLite file, again and again:
/// exactly one serves, the other exits 2 saying the database is in use; never a schema
/// race ("table nodes already exists") and never two serving one file with private views.
#[test]
fn two_aggregators_started_at_once_on_one_sqlite_file_do_not_race_the_schema() {
    for i in 0..8 {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("fleet.db");
        let (a, b) = (start_and_see(&db), start_and_see(&db));
        let mut outcomes = [a.join().unwrap(), b.join().unwrap()];
        let mut listened = 0;
        for o in &outcomes {
            match o {
                Start::Listened(_) => listened += 1,
                Start::Exited(code, err) => {
                    assert_eq!(*code, 2, "round {i}: {err}");
                    assert!(
                        err.contains("is in use by another regtrust aggregator")
                            && err.contains("PostgreSQL"),
                        "round {i}: {err}"
                    );
                }
            }
        }
        assert_eq!(
            listened, 1,
            "round {i}: exactly one aggregator serves the file"
        );
        for o in &mut outcomes {
            if let Start::Listened(child) = o {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        // The file is whole: a third start works and reads the schema.
        match start_and_see(&db).join().unwrap() {
            Start::Listened(mut child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
            Start::Exited(code, err) => panic!("round {i}: restart exited {code}: {err}"),
        }
    }
}

/// A TLS front for the aggregator at `backend`, as an ingress terminates TLS before a
/// Service: a certificate for 127.0.0.1 signed by a fresh CA named `ca_name` (sent with its
/// CA), each connection copied both ways to the backend. Returns the port and the CA's PEM.
fn tls_front(backend: std::net::SocketAddr, ca_name: &str) -> (u16, String) {
    tls_server(ca_name, &[], true, move |mut tls| async move {
        let Ok(mut up) = tokio::net::TcpStream::connect(backend).await else {
            return;
        };
        let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
    })
}

/// `regtrust report` with only `SSL_CERT_FILE` (or nothing) set for its roots.
fn report_with_roots(url: &str, token: &Path, ssl_cert_file: Option<&Path>) -> Output {
    let mut c = regtrust();
    c.args(["report", "--url", url, "--token-file"])
        .arg(token)
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR");
    if let Some(f) = ssl_cert_file {
        c.env("SSL_CERT_FILE", f);
    }
    c.output().expect("run regtrust report")
}

/// Issue 15 point 4: an https aggregator whose certificate chains to a CA of the system
/// roots (the bundle `SSL_CERT_FILE` names, read as Go reads it) works without --ca-file,
/// as the agent's push does; with roots that lack its CA, the error names the URL, the
/// bundle it was verified with and the flag to pass.
#[test]
fn report_reads_an_https_aggregator_through_the_system_roots() {
    let dir = tempfile::tempdir().unwrap();
    let (wtok, rtok) = token_files(dir.path());
    let agg = Binary::start(
        &dir.path().join("fleet.db"),
        &[
            "--token-file",
            wtok.to_str().unwrap(),
            "--read-token-file",
            rtok.to_str().unwrap(),
        ],
    );
    rt().block_on(async {
        let r = report("node-a", &[("harbor.local", Verdict::Ok, "", "")]);
        assert_eq!(
            post(&agg.base, Some(WRITE_TOKEN), r.to_json())
                .await
                .status(),
            200
        );
    });
    let (port, ca_pem) = tls_front(agg.addr.parse().unwrap(), "regtrust test public CA");
    let (_, unrelated_pem) = tls_front(agg.addr.parse().unwrap(), "another public CA");
    let url = format!("https://127.0.0.1:{port}");
    // A system bundle: several CAs, the aggregator's among them.
    let bundle = dir.path().join("ca-certificates.crt");
    std::fs::write(&bundle, format!("{unrelated_pem}{ca_pem}")).unwrap();
    let out = report_with_roots(&url, &rtok, Some(&bundle));
    println!(
        "$ SSL_CERT_FILE={} regtrust report --url {url} --token-file read.token\n{}{}",
        bundle.display(),
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("node-a   ok"),
        "{}",
        text(&out.stdout)
    );

    // Roots without the aggregator's CA: this bundle, then the machine's own.
    let other = dir.path().join("other-roots.crt");
    std::fs::write(&other, &unrelated_pem).unwrap();
    let out = report_with_roots(&url, &rtok, Some(&other));
    let err = text(&out.stderr);
    println!(
        "$ SSL_CERT_FILE={} regtrust report --url {url} ...\n{err}",
        other.display()
    );
    assert_eq!(out.status.code(), Some(2), "{err}");
    for want in [
        url.as_str(),
        "--ca-file",
        other.to_str().unwrap(),
        "UnknownIssuer",
    ] {
        assert!(err.contains(want), "{want}: {err}");
    }
    let out = report_with_roots(&url, &rtok, None);
    let err = text(&out.stderr);
    println!("$ regtrust report --url {url} ...\n{err}");
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&url) && err.contains("--ca-file"), "{err}");
}
