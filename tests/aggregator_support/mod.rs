//! Shared by the aggregator's integration tests: report documents, an in-process server on
//! port 0, and the real binary started on port 0 (its address read from its JSON log).
//! Servers listen on 127.0.0.1 only and are stopped in Drop.

#![allow(dead_code)]

pub mod pg;

use regtrust::aggregator::{api::Token, serve, Config};
use regtrust::report::{ProbeEntry, RegistryReport, Report, Verdict};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const WRITE_TOKEN: &str = "write-token-0123456789";
pub const READ_TOKEN: &str = "read-token-9876543210";

/// A report for `node` with one probe per registry: (host, verdict, message, fix).
pub fn report(node: &str, regs: &[(&str, Verdict, &str, &str)]) -> Report {
    let mut r = Report::new(node, time::OffsetDateTime::now_utc());
    for (host, verdict, message, fix) in regs {
        r.registries.push(RegistryReport {
            host: host.to_string(),
            verdict: *verdict,
            message: message.to_string(),
            trust: vec![],
            probes: vec![ProbeEntry {
                runtime: "containerd".into(),
                verdict: *verdict,
                message: message.to_string(),
                cause: if *verdict == Verdict::UnknownAuthority {
                    "ca_not_installed".into()
                } else {
                    String::new()
                },
                latency_ms: 3,
                server_chain: vec![],
                server_days_left: Some(300),
                warnings: vec![],
                fix: fix.to_string(),
                ca_days_left: None,
                trusted: vec![],
                anchor: None,
                runtime_version: String::new(),
                go_version: String::new(),
                runtime_message: String::new(),
            }],
            ca: None,
            harbor: None,
        });
    }
    r
}

pub const UNKNOWN_CA_MSG: &str = "x509: certificate signed by unknown authority";
pub const UNKNOWN_CA_FIX: &str = "give the registry's CA with --ca harbor.local=PATH";

/// An aggregator served in-process on 127.0.0.1:0 by the library's `serve`.
pub struct InProcess {
    pub base: String,
    pub db: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    dir: Option<tempfile::TempDir>,
}

pub struct Options {
    pub write_token: Option<&'static str>,
    pub read_token: Option<&'static str>,
    pub stale_after: Duration,
    pub body_limit: usize,
    pub bounds: regtrust::aggregator::Bounds,
    /// Another database than a fresh SQLite file in a temp dir (e.g. PostgreSQL).
    pub db: Option<regtrust::aggregator::store::DbTarget>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            write_token: Some(WRITE_TOKEN),
            read_token: None,
            stale_after: Duration::from_secs(180),
            body_limit: 1 << 20,
            bounds: Default::default(),
            db: None,
        }
    }
}

impl InProcess {
    pub async fn start(opts: Options) -> InProcess {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("fleet.db");
        let config = Config {
            db: opts.db.unwrap_or_else(|| db.clone().into()),
            write_token: opts.write_token.map(Token::new),
            read_token: opts.read_token.map(Token::new),
            stale_after: opts.stale_after,
            retention: Duration::from_secs(7 * 86400),
            forget_after: Duration::from_secs(86400),
            body_limit: opts.body_limit,
            bounds: opts.bounds,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            serve(listener, config, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        InProcess {
            base,
            db,
            stop: Some(tx),
            task: Some(task),
            dir: Some(dir),
        }
    }

    /// Graceful stop; the database is closed when this returns. The temp dir holding it
    /// lives as long as the returned handle.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
        self.dir.take().unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

pub async fn post(
    base: &str,
    token: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    let mut req = http()
        .post(format!("{base}/api/v1/reports"))
        .header("content-type", "application/json")
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

/// The real `regtrust aggregator` process, killed (SIGKILL) and reaped on drop.
pub struct Binary {
    pub child: Child,
    pub base: String,
    pub addr: String,
    /// Every stderr line after the listening line, as it arrives.
    pub stderr: mpsc::Receiver<String>,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_regtrust")
}

/// Write the token files into `dir`, with the trailing newline an editor leaves.
pub fn token_files(dir: &Path) -> (PathBuf, PathBuf) {
    let w = dir.join("write.token");
    let r = dir.join("read.token");
    std::fs::write(&w, format!("{WRITE_TOKEN}\n")).unwrap();
    std::fs::write(&r, format!("{READ_TOKEN}\n")).unwrap();
    (w, r)
}

impl Binary {
    /// Start `regtrust aggregator --listen 127.0.0.1:0 --db DB ARGS...` and wait (with a
    /// deadline) for its "aggregator listening" log line, which carries the bound address.
    pub fn start(db: &Path, args: &[&str]) -> Binary {
        Binary::start_with(None, db, args)
    }

    /// As `start`, with another build of the binary when `exe` is given.
    pub fn start_with(exe: Option<&str>, db: &Path, args: &[&str]) -> Binary {
        Binary::spawn(Command::new(exe.unwrap_or(bin())), db, args)
    }

    /// As `start`, with these variables added to the environment (as a pod spec sets them).
    pub fn start_env(db: &Path, args: &[&str], env: &[(String, String)]) -> Binary {
        let mut cmd = Command::new(bin());
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        Binary::spawn(cmd, db, args)
    }

    fn spawn(mut cmd: Command, db: &Path, args: &[&str]) -> Binary {
        let mut child = cmd
            .args([
                "--log-format",
                "json",
                "aggregator",
                "--listen",
                "127.0.0.1:0",
                "--db",
            ])
            .arg(db)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start regtrust aggregator");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                        if v["fields"]["message"] == "aggregator listening" {
                            let addr = v["fields"]["addr"].as_str().unwrap().to_string();
                            return Binary {
                                child,
                                base: format!("http://{addr}"),
                                addr,
                                stderr: rx,
                            };
                        }
                    }
                    seen.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    let status = child.wait().ok();
                    panic!(
                        "aggregator did not report listening within 30s (exit {status:?}); stderr:\n{}",
                        seen.join("\n")
                    );
                }
            }
        }
    }

    /// kill -9, and reap.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// kill -9, then every stderr line not yet taken: read until the pipe's reader thread
    /// sees the end (a line written before the kill may still be in the pipe or the
    /// channel; `try_recv` alone loses it).
    pub fn kill9_and_drain(&mut self) -> String {
        self.kill9();
        let mut log = String::new();
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_secs(10)) {
            log.push_str(&line);
            log.push('\n');
        }
        log
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Poll `cond` until it holds or the deadline passes (no sleeps as synchronisation).
pub async fn eventually<F, Fut>(what: &str, deadline: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = Instant::now() + deadline;
    loop {
        if cond().await {
            return;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
