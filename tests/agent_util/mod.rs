//! Shared by the agent's integration tests: kubelet's AtomicWriter done by hand on a temp
//! "Secret volume", test CAs, a host root with all three runtimes, the real agent started
//! in-process on `127.0.0.1:0`, and a plain HTTP/1.0 client for its endpoints. The agent
//! itself is never mocked: tests drive it through files and sockets only.

#![allow(dead_code)]

use regtrust::agent::{self, Options};
use regtrust::cli::InputArgs;
use regtrust::sync::Config;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How long a condition may take in a test before it fails: generous for a loaded CI
/// machine; a healthy run takes milliseconds.
pub const DEADLINE: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------
// kubelet's AtomicWriter (shared/reference/semantics-protocols.md §4.1, §4.2).

/// A Secret volume dir written the way kubelet writes it: real files in a
/// `..<timestamp>.<random>` dir, `..data` a relative symlink to it, and each key a
/// user-visible symlink `<key> -> ..data/<key>`.
pub struct SecretVolume {
    dir: PathBuf,
}

static TS_SEQ: AtomicU64 = AtomicU64::new(0);

impl SecretVolume {
    /// The first write of a volume (kubelet's `Write` with no `..data` yet).
    pub fn create(dir: &Path, files: &[(&str, &[u8])]) -> SecretVolume {
        std::fs::create_dir_all(dir).unwrap();
        let v = SecretVolume {
            dir: dir.to_path_buf(),
        };
        v.update(files);
        v
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// One update, step for step as AtomicWriter.Write (§4.2):
    /// 2. readlink(..data) -> old ts dir; 3. its names; 5. MkdirTemp(dir,
    /// "..YYYY_MM_DD_HH_MM_SS.") + chmod 0755; 6. write every file + chmod 0644;
    /// 8. symlink(<ts dir>, "..data_tmp"); 9. rename("..data_tmp", "..data");
    /// 10. user-visible symlinks for new names; 11. remove those of deleted names;
    /// 12. RemoveAll(old ts dir).
    pub fn update(&self, files: &[(&str, &[u8])]) {
        let data = self.dir.join("..data");
        let old = std::fs::read_link(&data).ok();
        let old_names: Vec<String> = match &old {
            Some(ts) => std::fs::read_dir(self.dir.join(ts))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect(),
            None => vec![],
        };
        let ts = self.mkdir_temp();
        for (name, bytes) in files {
            let p = self.dir.join(&ts).join(name);
            std::fs::write(&p, bytes).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let tmp = self.dir.join("..data_tmp");
        symlink(&ts, &tmp).unwrap();
        std::fs::rename(&tmp, &data).unwrap();
        for (name, _) in files {
            let visible = self.dir.join(name);
            if std::fs::symlink_metadata(&visible).is_err() {
                symlink(Path::new("..data").join(name), &visible).unwrap();
            }
        }
        for name in &old_names {
            if !files.iter().any(|(n, _)| n == name) {
                std::fs::remove_file(self.dir.join(name)).unwrap();
            }
        }
        if let Some(old) = old {
            std::fs::remove_dir_all(self.dir.join(old)).unwrap();
        }
    }

    /// `os.MkdirTemp(dir, "..2006_01_02_15_04_05.")`: the prefix plus a random number,
    /// created 0700, then chmod 0755.
    fn mkdir_temp(&self) -> String {
        let fmt =
            time::macros::format_description!("..[year]_[month]_[day]_[hour]_[minute]_[second].");
        loop {
            let now = time::OffsetDateTime::now_utc();
            let seq = TS_SEQ.fetch_add(1, Ordering::Relaxed);
            let name = format!(
                "{}{}",
                now.format(&fmt).unwrap(),
                (u64::from(now.nanosecond()) ^ (seq << 20) ^ u64::from(std::process::id()))
                    % 4_294_967_296
            );
            let p = self.dir.join(&name);
            match std::fs::DirBuilder::new().create(&p) {
                Ok(()) => {
                    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
                    return name;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => panic!("mkdir {}: {e}", p.display()),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Test CAs.

pub struct TestCa {
    pub pem: String,
    pub der: Vec<u8>,
    pub sha256: String,
}

pub fn new_ca(name: &str) -> TestCa {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(365);
    let cert = params.self_signed(&key).unwrap();
    TestCa {
        pem: cert.pem(),
        der: cert.der().to_vec(),
        sha256: regtrust::ca::sha256_hex(cert.der()),
    }
}

/// The DER of every certificate in PEM bytes; `None` when the bytes are not whole PEM
/// (a partial file).
pub fn pem_ders(bytes: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for c in CertificateDer::pem_slice_iter(bytes) {
        out.push(c.ok()?.to_vec());
    }
    if out.is_empty() {
        None
    } else {
        Some(out)
    }
}

// ---------------------------------------------------------------------------------------
// The node: a host root with docker, containerd (pointed at certs.d) and CRI-O.

pub struct Node {
    pub root: tempfile::TempDir,
}

impl Node {
    pub fn new() -> Node {
        let root = tempfile::Builder::new()
            .prefix("regtrust-node-")
            .tempdir()
            .unwrap();
        for d in ["etc/docker", "etc/containerd", "etc/containers"] {
            std::fs::create_dir_all(root.path().join(d)).unwrap();
        }
        std::fs::write(
            root.path().join("etc/containerd/config.toml"),
            "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d\"\n",
        )
        .unwrap();
        // `--runtime auto` finds each runtime by its config file (an empty dir proves nothing).
        std::fs::write(root.path().join("etc/docker/daemon.json"), "{}\n").unwrap();
        std::fs::create_dir_all(root.path().join("etc/crio")).unwrap();
        std::fs::write(root.path().join("etc/crio/crio.conf"), "[crio]\n").unwrap();
        Node { root }
    }

    pub fn path(&self) -> &Path {
        self.root.path()
    }

    /// Every `ca.crt` the runtimes read for `host` (a bare host also under `host:443`).
    pub fn ca_files(&self, host: &str) -> Vec<PathBuf> {
        let h = regtrust::host::RegistryHost::parse(host).unwrap();
        let mut out = Vec::new();
        for certs in [
            "etc/docker/certs.d",
            "etc/containerd/certs.d",
            "etc/containers/certs.d",
        ] {
            for name in h.dir_names() {
                out.push(self.path().join(certs).join(name).join("ca.crt"));
            }
        }
        out
    }

    /// The sync configuration for `--ca HOST=PATH` inputs on this node.
    pub fn config(&self, cas: &[(&str, &Path)]) -> Config {
        Config::from_args(&InputArgs {
            pull_secret: vec![],
            ca: cas
                .iter()
                .map(|(h, p)| format!("{h}={}", p.display()))
                .collect(),
            registry: vec![],
            host_root: self.path().to_path_buf(),
            state_dir: None,
            runtime: "auto".into(),
            replace_foreign: false,
            node_name: Some("test-node".into()),
            go_version: Vec::new(),
        })
        .unwrap()
    }
}

/// True when every file holds exactly this CA (and nothing else).
pub fn all_hold(files: &[PathBuf], ca: &TestCa) -> bool {
    files.iter().all(|f| {
        std::fs::read(f)
            .ok()
            .and_then(|b| pem_ders(&b))
            .is_some_and(|ders| ders == [ca.der.clone()])
    })
}

// ---------------------------------------------------------------------------------------
// The agent, in-process.

/// The real agent on its own tokio runtime, serving on `127.0.0.1:0`; stopped on drop.
pub struct Agent {
    rt: Option<tokio::runtime::Runtime>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    pub addr: SocketAddr,
}

impl Agent {
    pub fn start(cfg: Config, opts: Options) -> Agent {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let done = rt.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            agent::run(cfg, opts, listener, async {
                let _ = stopped.await;
            })
            .await
        });
        Agent {
            rt: Some(rt),
            stop: Some(stop),
            done: Some(done),
            addr,
        }
    }

    /// `GET path` over a fresh connection: (status, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(self.addr, path)
    }

    pub fn wait_ready(&self) {
        crate::support::wait_for("the agent's /readyz to answer 200", DEADLINE, || {
            (self.get("/readyz").0 == 200).then_some(())
        });
    }

    pub fn report(&self) -> serde_json::Value {
        let (status, body) = self.get("/report");
        assert_eq!(status, 200, "/report: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("/report is not JSON ({e}): {body}"))
    }

    pub fn metrics(&self) -> String {
        let (status, body) = self.get("/metrics");
        assert_eq!(status, 200, "/metrics: {body}");
        body
    }

    /// Stop as SIGTERM would and return what `run` returned.
    pub fn stop(mut self) -> std::io::Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> std::io::Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let mut result = Ok(());
        if let (Some(rt), Some(done)) = (self.rt.as_ref(), self.done.take()) {
            result = rt
                .block_on(async { tokio::time::timeout(Duration::from_secs(5), done).await })
                .map_err(|_| std::io::Error::other("the agent did not stop within 5s"))
                .and_then(|joined| joined.map_err(std::io::Error::other)?);
        }
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
        result
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// A minimal HTTP/1.0 GET (one request per connection; the server closes).
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("GET {path}: no status line in {head:?}"));
    (status, body.to_string())
}

/// The value of the sample whose line starts with `series` (`name{labels}` exactly).
pub fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// The registry entry for `host` in a report.
pub fn registry<'a>(report: &'a serde_json::Value, host: &str) -> &'a serde_json::Value {
    report["registries"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["host"] == host))
        .unwrap_or_else(|| panic!("no registry {host} in {report:#}"))
}

/// The sha256 of each CA certificate the report says is installed for `host`.
pub fn report_ca(report: &serde_json::Value, host: &str) -> Vec<String> {
    registry(report, host)["ca"]["certificates"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| c["sha256"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}
