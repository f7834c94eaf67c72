//! `Registry`: the Debian `docker-registry` (CNCF distribution 2.8) run privately on a
//! loopback port with a generated `config.yml`: TLS with a given certificate file (leaf,
//! optionally followed by intermediates) and key, or plain HTTP; filesystem storage in a temp
//! dir; optional htpasswd (bcrypt) auth. Restarting with a new certificate keeps the port and
//! the stored images (a rotated Harbor CA). Pushing the test image lives in `image`.

use super::{free_port, require_tool, run_ok, wait_for, Daemon, LOOPBACK_V4, READY_DEADLINE};
use std::net::{IpAddr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tempfile::TempDir;

/// The repository and tag the harness pushes (see `image`).
pub const TINY_REPO: &str = "library/tiny";
pub const TINY_TAG: &str = "1";

/// How to start a registry.
pub struct RegistryBuilder {
    ip: IpAddr,
    tls: Option<(PathBuf, PathBuf)>,
    auth: Option<(String, String)>,
}

/// A running docker-registry; killed by PID and its files removed when dropped.
pub struct Registry {
    // Field order is drop order: the daemon dies before its dir is removed.
    daemon: Daemon,
    dir: TempDir,
    ip: IpAddr,
    port: u16,
    tls: Option<(PathBuf, PathBuf)>,
    auth: Option<(String, String)>,
}

impl Registry {
    /// Serve TLS with `cert` (PEM: the leaf, then any intermediates to present) and `key`.
    pub fn tls(cert: &Path, key: &Path) -> RegistryBuilder {
        RegistryBuilder {
            ip: LOOPBACK_V4,
            tls: Some((cert.to_path_buf(), key.to_path_buf())),
            auth: None,
        }
    }

    /// Serve plain HTTP (the "plain HTTP on the port" probe case).
    pub fn plain_http() -> RegistryBuilder {
        RegistryBuilder {
            ip: LOOPBACK_V4,
            tls: None,
            auth: None,
        }
    }

    /// `127.0.0.1:PORT` or `[::1]:PORT`, as an image reference spells it.
    pub fn host(&self) -> String {
        SocketAddr::new(self.ip, self.port).to_string()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// `https://HOST` or `http://HOST`.
    pub fn base_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.host())
    }

    /// The reference of the image `push_tiny_image` pushes.
    pub fn image_ref(&self) -> String {
        format!("{}/{TINY_REPO}:{TINY_TAG}", self.host())
    }

    /// `user:password` when htpasswd auth is on.
    pub fn creds(&self) -> Option<String> {
        self.auth.as_ref().map(|(u, p)| format!("{u}:{p}"))
    }

    pub fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    /// What the registry logged so far (for assertion messages).
    pub fn log(&self) -> String {
        self.daemon.log()
    }

    /// Stop, then start again on the same port and storage, serving `cert` and `key`: the
    /// registry's certificate was reissued (by a new CA, in the rotation scenario).
    pub fn restart_with_tls(&mut self, cert: &Path, key: &Path) {
        self.tls = Some((cert.to_path_buf(), key.to_path_buf()));
        self.daemon.stop();
        self.daemon = launch(
            self.dir.path(),
            self.ip,
            self.port,
            self.tls.as_ref(),
            self.auth.is_some(),
        )
        .unwrap_or_else(|log| panic!("restarting docker-registry on {}: {log}", self.host()));
    }
}

/// Write the config and start the daemon; `Err(log)` when it exits before accepting.
fn launch(
    dir: &Path,
    ip: IpAddr,
    port: u16,
    tls: Option<&(PathBuf, PathBuf)>,
    auth: bool,
) -> Result<Daemon, String> {
    let binary = require_tool("docker-registry", "docker-registry");
    let config = dir.join("config.yml");
    std::fs::write(&config, config_yaml(dir, ip, port, tls, auth))
        .expect("write registry config.yml");
    let mut command = Command::new(binary);
    command.arg("serve").arg(&config);
    // The registry reads REGISTRY_* overrides from its environment: none of ours.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("REGISTRY_") {
            command.env_remove(key);
        }
    }
    let mut daemon = Daemon::spawn("docker-registry", command, &dir.join("registry.log"));
    let addr = SocketAddr::new(ip, port);
    // Ready = the port accepts. Each probe connection makes a TLS registry log a harmless
    // "http: TLS handshake error ... EOF".
    let outcome = wait_for(
        "docker-registry to accept connections",
        READY_DEADLINE,
        || {
            if let Some(log) = daemon.exited() {
                return Some(Err(log));
            }
            TcpStream::connect_timeout(&addr, Duration::from_millis(200))
                .ok()
                .map(|_| Ok(()))
        },
    );
    outcome.map(|()| daemon)
}

fn config_yaml(
    dir: &Path,
    ip: IpAddr,
    port: u16,
    tls: Option<&(PathBuf, PathBuf)>,
    auth: bool,
) -> String {
    // JSON strings are valid YAML scalars: quote every value that way.
    let q = |s: &str| serde_json::to_string(s).expect("quote a YAML scalar");
    let p = |p: &Path| q(&p.to_string_lossy());
    let mut yaml = format!(
        "version: 0.1\n\
         log:\n  level: info\n  accesslog:\n    disabled: true\n\
         storage:\n  filesystem:\n    rootdirectory: {}\n  maintenance:\n    uploadpurging:\n      enabled: false\n\
         http:\n  addr: {}\n",
        p(&dir.join("storage")),
        q(&SocketAddr::new(ip, port).to_string()),
    );
    if let Some((cert, key)) = tls {
        yaml.push_str(&format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            p(cert),
            p(key)
        ));
    }
    if auth {
        yaml.push_str(&format!(
            "auth:\n  htpasswd:\n    realm: regtrust-test\n    path: {}\n",
            p(&dir.join("htpasswd"))
        ));
    }
    yaml
}

impl RegistryBuilder {
    /// Listen on `[::1]` instead of `127.0.0.1`. Note: skopeo 1.9 and ctr 1.6 cannot parse an
    /// image reference with an IPv6 literal, so such a registry serves probes, not pulls.
    pub fn ipv6(mut self) -> Self {
        self.ip = IpAddr::V6(Ipv6Addr::LOCALHOST);
        self
    }

    /// Listen on `ip` (an address the test configured, e.g. a veth end) instead of loopback.
    pub fn on_ip(mut self, ip: IpAddr) -> Self {
        self.ip = ip;
        self
    }

    /// Require basic auth with this user (bcrypt entry made by `htpasswd -Bbn`).
    pub fn htpasswd(mut self, user: &str, password: &str) -> Self {
        self.auth = Some((user.to_string(), password.to_string()));
        self
    }

    pub fn start(self) -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("regtrust-registry-")
            .tempdir()
            .expect("temp dir for the registry");
        if let Some((user, password)) = &self.auth {
            let mut c = Command::new(require_tool("htpasswd", "apache2-utils"));
            c.args(["-Bbn", user, password]);
            let out = run_ok(c, "htpasswd -Bbn");
            std::fs::write(dir.path().join("htpasswd"), out.stdout).expect("write htpasswd");
        }
        // The free port may be taken between probing and binding: try a few.
        let mut last = String::new();
        for _ in 0..3 {
            let port = free_port(self.ip);
            match launch(
                dir.path(),
                self.ip,
                port,
                self.tls.as_ref(),
                self.auth.is_some(),
            ) {
                Ok(daemon) => {
                    return Registry {
                        daemon,
                        dir,
                        ip: self.ip,
                        port,
                        tls: self.tls,
                        auth: self.auth,
                    }
                }
                Err(log) => last = log,
            }
        }
        panic!("docker-registry did not start: {last}");
    }
}
