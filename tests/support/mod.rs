//! The real-parts test harness shared by the integration tests (`mod support;`): a test PKI,
//! the Debian `docker-registry` over TLS, a one-layer image pushed to it, `skopeo` and a
//! private `containerd` as judges. It owns starting, waiting for and stopping those parts;
//! it knows nothing about regtrust itself (the tests drive the `regtrust` binary).
//!
//! Rules it keeps: loopback only, free ports, processes stopped by PID in `Drop`, files in
//! temp dirs, no sleeps to synchronise (poll a condition with a deadline). A missing tool
//! fails the test with the Debian package to install.
//!
//! Layout:
//! - `pki`: CAs, intermediates and leaves written as PEM (rcgen; openssl for SHA-1/RSA).
//! - `registry`: `Registry`, the docker-registry daemon (TLS or plain HTTP, htpasswd auth).
//! - `image`: the hand-built OCI layout and its push with `skopeo copy`.
//! - `skopeo`: `skopeo_inspect`, a Go client's verdict on a cert dir.
//! - `containerd`: `Containerd`, a private daemon, and `ctr_pull` with a hosts dir.
//! - `cri`: kubelet's CRI `PullImage` over gRPC on containerd's socket (no crictl in Debian).
//! - `manifests`: the kustomize base and the Helm chart rendered, as JSON objects.
//! - `tinytls`: a tiny HTTPS server choosing its certificate per connection, recording requests.

// Each test binary uses a different part of the harness.
#![allow(dead_code, unused_imports)]

pub mod containerd;
pub mod cri;
pub mod image;
pub mod manifests;
pub mod pki;
pub mod registry;
pub mod skopeo;
pub mod tinytls;

pub use containerd::{write_hosts_toml, Containerd};
pub use pki::{Ca, KeyKind, Leaf, Pki};
pub use registry::Registry;
pub use skopeo::{skopeo_inspect, skopeo_inspect_with_creds};

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long a daemon may take to become ready, and a client command to finish. Generous:
/// CI machines are slow and shared; a healthy run takes a fraction of it.
pub const READY_DEADLINE: Duration = Duration::from_secs(20);
pub const COMMAND_DEADLINE: Duration = Duration::from_secs(60);

/// What a real client said about one pull or inspect.
#[derive(Debug, Clone)]
pub struct Judge {
    pub ok: bool,
    pub stderr: String,
}

impl Judge {
    /// The `x509: ...` text in the client's error, if any (see [`x509_text`]).
    pub fn x509(&self) -> Option<String> {
        x509_text(&self.stderr)
    }

    /// Panics with the client's stderr unless it succeeded.
    #[track_caller]
    pub fn assert_ok(&self, what: &str) {
        assert!(self.ok, "{what}: expected success, got:\n{}", self.stderr);
    }

    /// Panics unless it failed with exactly this `x509:` text.
    #[track_caller]
    pub fn assert_x509(&self, what: &str, expected: &str) {
        assert!(!self.ok, "{what}: expected `{expected}`, but it succeeded");
        assert_eq!(
            self.x509().as_deref(),
            Some(expected),
            "{what}: stderr was:\n{}",
            self.stderr
        );
    }
}

/// The first `x509: ...` message in a Go client's stderr, unwrapped from the client's
/// framing. skopeo logs through logrus (`level=fatal msg="... x509: ..."`, quoted and
/// escaped); ctr prints `ctr: ...: x509: ...` plainly. Go ≥ 1.20 would add
/// `tls: failed to verify certificate: ` before it; the text from `x509:` on is the same.
pub fn x509_text(stderr: &str) -> Option<String> {
    let line = stderr.lines().find(|l| l.contains("x509: "))?;
    let start = line.find("x509: ")?;
    let quoted = line[..start].contains("msg=\"");
    if !quoted {
        return Some(line[start..].trim_end().to_string());
    }
    // Inside a logrus quoted value: undo Go's %q escapes up to the closing quote.
    let mut out = String::new();
    let mut chars = line[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => break,
            },
            '"' => break,
            c => out.push(c),
        }
    }
    Some(out)
}

/// The path of a tool the harness needs; fails the test naming the Debian package when the
/// tool is not installed.
#[track_caller]
pub fn require_tool(binary: &str, debian_package: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin"] {
        let path = Path::new(dir).join(binary);
        if path.is_file() {
            return path;
        }
    }
    panic!("`{binary}` not found: install the Debian package {debian_package} (apt-get install {debian_package})");
}

/// A TCP port free on `ip` right now. The caller binds it soon after; a daemon that then
/// loses the race fails to start, and its starter retries with a new port.
pub fn free_port(ip: IpAddr) -> u16 {
    let listener = TcpListener::bind(SocketAddr::new(ip, 0))
        .unwrap_or_else(|e| panic!("binding {ip}:0 to find a free port: {e}"));
    listener
        .local_addr()
        .expect("local_addr of a bound listener")
        .port()
}

pub const LOOPBACK_V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Poll `ready` until it returns `Some`, failing with `what` at the deadline. The short pause
/// between attempts is a polling interval, not a synchronising sleep: the condition decides.
#[track_caller]
pub fn wait_for<T>(what: &str, deadline: Duration, mut ready: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = ready() {
            return v;
        }
        if start.elapsed() > deadline {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Run a client command to completion under coreutils `timeout`, so a hung client fails the
/// test instead of hanging it. Returns the exit status and both outputs.
pub fn run(command: Command) -> Output {
    let program = command.get_program().to_string_lossy().into_owned();
    let mut timed = Command::new(require_tool("timeout", "coreutils"));
    timed
        .arg("--kill-after=5")
        .arg(COMMAND_DEADLINE.as_secs().to_string())
        .arg(command.get_program())
        .args(command.get_args());
    for (k, v) in command.get_envs() {
        match v {
            Some(v) => timed.env(k, v),
            None => timed.env_remove(k),
        };
    }
    if let Some(dir) = command.get_current_dir() {
        timed.current_dir(dir);
    }
    let out = timed
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    if out.status.code() == Some(124) || out.status.code() == Some(137) {
        panic!(
            "{program} did not finish within {COMMAND_DEADLINE:?}; stderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// Like [`run`], but panics unless the command succeeded.
#[track_caller]
pub fn run_ok(command: Command, what: &str) -> Output {
    let out = run(command);
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A daemon we started: killed by its PID and reaped when dropped.
pub struct Daemon {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Daemon {
    /// Spawn `command` with stdout and stderr appended to `log` (a file, never a pipe: an
    /// undrained pipe would block a chatty daemon).
    pub fn spawn(name: &'static str, mut command: Command, log: &Path) -> Daemon {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("opening {name} log {}: {e}", log.display()));
        let err = file.try_clone().expect("clone log file handle");
        let child = command
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Daemon {
            name,
            child,
            log: log.to_path_buf(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(log)` if the daemon has exited (it should not have).
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!(
                "{} exited ({status}); its log:\n{}",
                self.name,
                self.log()
            )),
            Ok(None) => None,
            Err(e) => Some(format!("{}: waiting: {e}", self.name)),
        }
    }

    /// What the daemon logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kill by PID and reap, so the port and files are free when this returns.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}
