//! `Containerd`: a private containerd daemon (root, state, temp, opt and both sockets in one
//! temp dir; CRI disabled for `ctr images pull --hosts-dir`, or on with a node's
//! `config_path` for kubelet's CRI `PullImage`) as a judge of a containerd `certs.d` tree. Needs root. It owns the daemon's lifetime (killed by
//! PID, leftover mounts under its dir unmounted, dir removed); it does not judge verdicts.

use super::{require_tool, run, wait_for, Daemon, Judge, READY_DEADLINE};
use std::path::{Path, PathBuf};
use std::process::Command;
use tempfile::TempDir;

/// The ctr namespace the harness pulls into.
pub const NAMESPACE: &str = "test";

/// A running private containerd.
pub struct Containerd {
    daemon: Daemon,
    dir: TempDir,
    socket: PathBuf,
    ctr: PathBuf,
}

impl Containerd {
    /// Start containerd and wait until `ctr version` answers on its socket.
    pub fn start() -> Containerd {
        Containerd::start_with(None)
    }

    /// Start containerd with its CRI plugin on (what kubelet talks to), reading registry
    /// hosts from `config_path` as a node's config.toml would set it; pull with
    /// [`Containerd::cri_pull`].
    pub fn start_cri(config_path: &Path) -> Containerd {
        Containerd::start_with(Some(config_path))
    }

    fn start_with(cri_config_path: Option<&Path>) -> Containerd {
        let binary = require_tool("containerd", "containerd");
        let ctr = require_tool("ctr", "containerd");
        assert!(
            is_root(),
            "the containerd tests start a private containerd daemon, which needs root: run the tests as root"
        );
        let dir = tempfile::Builder::new()
            .prefix("regtrust-containerd-")
            .tempdir()
            .expect("temp dir for containerd");
        let socket = dir.path().join("containerd.sock");
        let config = dir.path().join("config.toml");
        std::fs::write(&config, config_toml(dir.path(), &socket, cri_config_path))
            .expect("write config.toml");
        let mut command = Command::new(binary);
        command.arg("--config").arg(&config);
        let daemon = Daemon::spawn("containerd", command, &dir.path().join("containerd.log"));
        let mut containerd = Containerd {
            daemon,
            dir,
            socket,
            ctr,
        };
        containerd.wait_ready();
        containerd
    }

    fn wait_ready(&mut self) {
        let socket = self.socket.clone();
        let ctr = self.ctr.clone();
        let daemon = &mut self.daemon;
        wait_for("containerd to answer `ctr version`", READY_DEADLINE, || {
            if let Some(log) = daemon.exited() {
                panic!("{log}");
            }
            if !socket.exists() {
                return None;
            }
            let mut c = Command::new(&ctr);
            c.arg("--address").arg(&socket).arg("version");
            run(c).status.success().then_some(())
        });
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    /// What containerd logged so far.
    pub fn log(&self) -> String {
        self.daemon.log()
    }

    /// kubelet's pull: CRI `PullImage` on this daemon's socket (needs [`Containerd::start_cri`]).
    pub fn cri_pull(&self, image_ref: &str) -> Judge {
        super::cri::cri_pull(&self.socket, image_ref)
    }

    /// `ctr images pull --hosts-dir HOSTS_DIR IMAGE_REF`, anonymously. The hosts dir is
    /// re-read on every pull, so a test can change it between pulls without a restart.
    pub fn ctr_pull(&self, hosts_dir: &Path, image_ref: &str) -> Judge {
        self.ctr_pull_with_creds(hosts_dir, image_ref, None)
    }

    /// Like [`Containerd::ctr_pull`], with `user:password` when given.
    pub fn ctr_pull_with_creds(
        &self,
        hosts_dir: &Path,
        image_ref: &str,
        creds: Option<&str>,
    ) -> Judge {
        let mut c = Command::new(&self.ctr);
        c.arg("--address")
            .arg(&self.socket)
            .args(["--namespace", NAMESPACE, "images", "pull"])
            // native: no overlay mounts to leak, and it works where /tmp is itself overlayfs.
            .args(["--snapshotter", "native", "--hosts-dir"])
            .arg(hosts_dir);
        if let Some(creds) = creds {
            c.arg("--user").arg(creds);
        }
        c.arg(image_ref);
        let out = run(c);
        Judge {
            ok: out.status.success(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        self.daemon.stop();
        // A pull killed mid-unpack can leave a temp mount under the root; the dir cannot be
        // removed while anything is mounted there.
        for mount in mounts_under(self.dir.path()) {
            let _ = Command::new("umount").arg("-l").arg(&mount).status();
        }
    }
}

/// Write `<hosts_dir>/<host>/hosts.toml` with `server = "https://HOST"` and one host entry
/// for it, referencing `ca` (an absolute path) when given. Without `ca` containerd verifies
/// against the system roots only. Returns the host dir.
pub fn write_hosts_toml(hosts_dir: &Path, host: &str, ca: Option<&Path>) -> PathBuf {
    let q = |s: &str| serde_json::to_string(s).expect("quote a TOML string");
    let dir = hosts_dir.join(host);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    let url = format!("https://{host}");
    // The host table is required: containerd 1.6 (go-toml v1, `getSortedHosts`) rejects a
    // hosts.toml without one, even with a top-level `ca`, and falls back to the Docker layout
    // (plain HTTP to a loopback host: "400 Bad Request"). Seen here with Debian's 1.6.20.
    let mut toml = format!(
        "server = {}\n\n[host.{}]\n  capabilities = [\"pull\", \"resolve\"]\n",
        q(&url),
        q(&url)
    );
    if let Some(ca) = ca {
        assert!(
            ca.is_absolute(),
            "hosts.toml ca path must be absolute: {}",
            ca.display()
        );
        toml.push_str(&format!("  ca = {}\n", q(&ca.to_string_lossy())));
    }
    std::fs::write(dir.join("hosts.toml"), toml).expect("write hosts.toml");
    dir
}

fn config_toml(dir: &Path, socket: &Path, cri_config_path: Option<&Path>) -> String {
    let q = |p: &Path| serde_json::to_string(&p.to_string_lossy()).expect("quote a TOML string");
    let Some(config_path) = cri_config_path else {
        return base_config(dir, socket)
            .replace("CRI_PLUGIN_LINE", "  \"io.containerd.grpc.v1.cri\",\n");
    };
    for d in ["cni-conf", "cni-bin"] {
        std::fs::create_dir_all(dir.join(d)).expect("CNI dirs for the CRI plugin");
    }
    // The CRI plugin as a node runs it, minus what a pull does not need: CNI dirs in the
    // temp dir (no pod networking), the native snapshotter (no overlay mounts to leak),
    // a loopback streaming server on a free port.
    format!(
        r#"{base}
[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  disable_apparmor = true
  disable_cgroup = true
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
  [plugins."io.containerd.grpc.v1.cri".cni]
    conf_dir = {cni_conf}
    bin_dir = {cni_bin}
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = {config_path}
"#,
        base = base_config(dir, socket).replace("CRI_PLUGIN_LINE", ""),
        cni_conf = q(&dir.join("cni-conf")),
        cni_bin = q(&dir.join("cni-bin")),
        config_path = q(config_path),
    )
}

fn base_config(dir: &Path, socket: &Path) -> String {
    let q = |p: &Path| serde_json::to_string(&p.to_string_lossy()).expect("quote a TOML string");
    format!(
        r#"version = 2
root = {root}
state = {state}
temp = {temp}
# The CRI plugin wants CNI and cgroups; ctr pulls without it. The others only log noise.
disabled_plugins = [
CRI_PLUGIN_LINE  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = {socket}

[ttrpc]
  address = {ttrpc}

[debug]
  level = "info"

[plugins."io.containerd.internal.v1.opt"]
  path = {opt}
"#,
        root = q(&dir.join("root")),
        state = q(&dir.join("state")),
        temp = q(&dir.join("tmp")),
        socket = q(socket),
        ttrpc = q(&dir.join("containerd.sock.ttrpc")),
        opt = q(&dir.join("opt")),
    )
}

/// Mount points under `dir`, deepest first, from /proc/self/mountinfo.
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut mounts: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| p.starts_with(dir))
        .collect();
    mounts.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    mounts
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}
