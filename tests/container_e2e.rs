//! Issue 12's proof that the image and the manifests work together under a real runtime:
//! `make image`'s OCI archive (packaging/image/build.sh) imported into a private containerd,
//! and the aggregator and the agent run with the pod specs READ FROM the rendered manifests
//! (`kubectl kustomize daemonset`, and the Helm chart's default render), translated into OCI
//! runtime specs the way kubelet and containerd's CRI would:
//! - image entrypoint and cmd, replaced by the container's command and args;
//! - env: plain values, the downward API (spec.nodeName, metadata.namespace) and kubelet's
//!   `$(VAR)` expansion;
//! - every hostPath bound (read-only where the manifest says so) from a scratch node root of
//!   the Debian/kubeadm containerd shape, honouring the hostPath type (`Directory` must
//!   exist, `DirectoryOrCreate` is created);
//! - Secret volumes laid out as kubelet's AtomicWriter does (`..data` link, defaultMode,
//!   fsGroup ownership), items projected; an optional Secret that is absent is an empty dir;
//! - the security context: user and group, fsGroup as a supplementary group, runAsNonRoot,
//!   capabilities, no privilege escalation, read-only root, the RuntimeDefault seccomp
//!   profile (containerd's own default, taken from `ctr`);
//! - resource limits as cgroup limits (memory limit, CFS quota, CPU shares);
//! - hostNetwork as the node's network namespace (a private one this test creates), the
//!   aggregator in a pod network namespace of its own, a veth between them.
//!
//! Checked: the probes' own paths (`/healthz`, `/readyz`) and `/metrics`; the CA files at the
//! right paths with owner and mode; a `..data` swap of the CA followed within one second
//! (SPEC, Agent); a push reaching the aggregator container; `regtrust report` against it
//! exits 0; SIGTERM stops both with status 0 and leaves the CAs; the cgroup limits, the
//! process's uid, capabilities, no_new_privs and seccomp mode as the kernel reports them.
//! Every query of the Grafana dashboard names a metric these containers serve.
//!
//! The stand-ins, said plainly: kubelet and the CRI are this file (no kubelet runs); cluster
//! DNS is an /etc/hosts line naming the aggregator's Service; the Service is the aggregator
//! pod's address. Needs root, containerd, buildah, iproute2, curl and the tools
//! `make check-deploy` installs under target/ci-tools; a missing one fails the test naming it.

mod support;

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::manifests::{self, rendered, repo, workload};
use support::{require_tool, run, run_ok, wait_for, Containerd, Pki, Registry};

const DEADLINE: Duration = Duration::from_secs(30);
const NAMESPACE: &str = "regtrust-e2e";
const NODE_NAME: &str = "node-1";

// ---------------------------------------------------------------------------------------
// The image and the renderings.

/// The image config the CRI would read: entrypoint, cmd, env, user, working dir.
struct ImageConfig {
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    env: Vec<String>,
    user: String,
    workdir: String,
}

/// `make image`, as the Makefile runs it (incremental: cargo rebuilds only what changed).
fn build_image() -> PathBuf {
    require_tool("buildah", "buildah");
    require_tool("musl-gcc", "musl-tools");
    // The build takes minutes on a cold cache: no `run` deadline around it.
    let out = Command::new(repo().join("packaging/image/build.sh"))
        .output()
        .expect("running packaging/image/build.sh");
    assert!(
        out.status.success(),
        "make image failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let archive = repo().join("target/image/regtrust.oci.tar");
    assert!(
        archive.is_file(),
        "{} missing after make image",
        archive.display()
    );
    archive
}

fn tar_member(archive: &Path, member: &str) -> Vec<u8> {
    let mut c = Command::new(require_tool("tar", "tar"));
    c.arg("-xOf").arg(archive).arg(member);
    run_ok(c, &format!("tar -xOf {} {member}", archive.display())).stdout
}

fn blob(archive: &Path, digest: &str) -> Value {
    let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
    serde_json::from_slice(&tar_member(archive, &format!("blobs/sha256/{hex}"))).unwrap()
}

/// The archive's one image: its ref name and config.
fn image_config(archive: &Path) -> (String, ImageConfig) {
    let index: Value = serde_json::from_slice(&tar_member(archive, "index.json")).unwrap();
    let manifests = index["manifests"].as_array().expect("index.json manifests");
    assert_eq!(manifests.len(), 1, "one image in the archive: {index}");
    let name = manifests[0]["annotations"]["org.opencontainers.image.ref.name"]
        .as_str()
        .expect("the archive names its image (oci-archive:FILE:TAG)")
        .to_string();
    let manifest = blob(archive, manifests[0]["digest"].as_str().unwrap());
    let config = blob(archive, manifest["config"]["digest"].as_str().unwrap());
    let c = &config["config"];
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    };
    (
        name,
        ImageConfig {
            entrypoint: strings(&c["Entrypoint"]),
            cmd: strings(&c["Cmd"]),
            env: strings(&c["Env"]),
            user: c["User"].as_str().unwrap_or("").to_string(),
            workdir: c["WorkingDir"].as_str().unwrap_or("").to_string(),
        },
    )
}

/// `kubectl kustomize daemonset` and the chart's default render.
fn renderings(scratch: &Path) -> Vec<(&'static str, &'static Shape, Vec<Value>)> {
    let venv_kubectl = repo().join("target/ci-tools/venv/bin/kubectl");
    let kubectl = if venv_kubectl.is_file() {
        venv_kubectl
    } else {
        require_tool("kubectl", "kubernetes-client")
    };
    let kustomize = |dir: &Path, name: &str| -> Vec<Value> {
        let mut c = Command::new(&kubectl);
        c.arg("kustomize").arg(dir);
        let out = run_ok(c, &format!("kubectl kustomize {}", dir.display())).stdout;
        let file = scratch.join(format!("{name}.yaml"));
        std::fs::write(&file, out).unwrap();
        rendered(&file)
    };
    // An operator's overlay using a component (paths relative, as kustomize wants).
    let overlay = |component: &str| -> PathBuf {
        let dir = repo().join(format!("target/container-e2e-overlay-{component}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("kustomization.yaml"),
            format!(
                "resources: [../../daemonset]\ncomponents: [../../daemonset/components/{component}]\n"
            ),
        )
        .unwrap();
        dir
    };
    vec![
        (
            "kustomize base",
            &CONTAINERD,
            kustomize(&repo().join("daemonset"), "base"),
        ),
        (
            "helm default",
            &CONTAINERD,
            rendered(&repo().join("packaging/helm/regtrust")),
        ),
        (
            "kustomize base + components/crio",
            &CRIO,
            kustomize(&overlay("crio"), "crio"),
        ),
        (
            "kustomize base + components/k3s",
            &K3S,
            kustomize(&overlay("k3s"), "k3s"),
        ),
        (
            "helm ci/rke2-values.yaml",
            &RKE2,
            manifests::chart_with("rke2-values.yaml"),
        ),
        (
            "kustomize base + components/microk8s",
            &MICROK8S,
            kustomize(&overlay("microk8s"), "microk8s"),
        ),
    ]
}

// ---------------------------------------------------------------------------------------
// Network namespaces: the node's (hostNetwork), the aggregator pod's, a veth to each.

struct Net {
    node_ns: String,
    pod_ns: String,
    /// The host's end of the host-node veth (the registry listens here).
    host_ip: Ipv4Addr,
    /// The node's address toward the host.
    node_ip: Ipv4Addr,
    /// The aggregator pod's address (its Service stands in as this address).
    pod_ip: Ipv4Addr,
}

fn ip(args: &[&str]) {
    let mut c = Command::new(require_tool("ip", "iproute2"));
    c.args(args);
    run_ok(c, &format!("ip {}", args.join(" ")));
}

impl Net {
    fn create(n: u8) -> Net {
        let id = format!("{}-{n}", std::process::id());
        // A /24 per run: 10.213.<n>.0 (n differs per scenario).
        let net = Net {
            node_ns: format!("rt-node-{id}"),
            pod_ns: format!("rt-pod-{id}"),
            host_ip: Ipv4Addr::new(10, 213, n, 1),
            node_ip: Ipv4Addr::new(10, 213, n, 2),
            pod_ip: Ipv4Addr::new(10, 213, n, 6),
        };
        let (h, nh, np, p) = (
            format!("rth{id}"),
            format!("rtn{id}"),
            format!("rtq{id}"),
            format!("rtp{id}"),
        );
        let sub = |last: u8| format!("10.213.{n}.{last}/30");
        ip(&["netns", "add", &net.node_ns]);
        ip(&["netns", "add", &net.pod_ns]);
        for ns in [&net.node_ns, &net.pod_ns] {
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        // host <-> node: 10.213.n.1 / .2
        ip(&["link", "add", &h, "type", "veth", "peer", "name", &nh]);
        ip(&["link", "set", &nh, "netns", &net.node_ns]);
        ip(&["addr", "add", &sub(1), "dev", &h]);
        ip(&["link", "set", &h, "up"]);
        ip(&["-n", &net.node_ns, "addr", "add", &sub(2), "dev", &nh]);
        ip(&["-n", &net.node_ns, "link", "set", &nh, "up"]);
        // node <-> aggregator pod: 10.213.n.5 / .6
        ip(&["link", "add", &np, "type", "veth", "peer", "name", &p]);
        ip(&["link", "set", &np, "netns", &net.node_ns]);
        ip(&["link", "set", &p, "netns", &net.pod_ns]);
        ip(&["-n", &net.node_ns, "addr", "add", &sub(5), "dev", &np]);
        ip(&["-n", &net.node_ns, "link", "set", &np, "up"]);
        ip(&["-n", &net.pod_ns, "addr", "add", &sub(6), "dev", &p]);
        ip(&["-n", &net.pod_ns, "link", "set", &p, "up"]);
        net
    }

    fn path(ns: &str) -> String {
        format!("/var/run/netns/{ns}")
    }

    /// `curl` from inside the node's network namespace: (HTTP status, body).
    fn curl(&self, url: &str) -> Option<(u16, String)> {
        let mut c = Command::new(require_tool("ip", "iproute2"));
        c.args(["netns", "exec", &self.node_ns])
            .arg(require_tool("curl", "curl"))
            .args(["-sS", "--max-time", "5", "-w", "\n%{http_code}", url]);
        let out = run(c);
        if !out.status.success() {
            return None;
        }
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n')?;
        Some((code.trim().parse().ok()?, body.to_string()))
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth ends in it, and so their peers.
        for ns in [&self.node_ns, &self.pod_ns] {
            let _ = Command::new("ip").args(["netns", "delete", ns]).status();
        }
    }
}

// ---------------------------------------------------------------------------------------
// kubelet's volumes.

/// kubelet's AtomicWriter (shared/reference/semantics-protocols.md §4): files in a
/// `..<timestamp>` dir, `..data` a relative link to it swapped by rename, each key a link
/// `<key> -> ..data/<key>`. Modes and group as kubelet sets them for a Secret volume.
struct AtomicVolume {
    dir: PathBuf,
    mode: u32,
    gid: Option<u32>,
    seq: u32,
}

impl AtomicVolume {
    fn create(dir: &Path, mode: u32, gid: Option<u32>) -> AtomicVolume {
        std::fs::create_dir_all(dir).unwrap();
        if let Some(gid) = gid {
            std::os::unix::fs::chown(dir, None, Some(gid)).unwrap();
        }
        AtomicVolume {
            dir: dir.to_path_buf(),
            mode,
            gid,
            seq: 0,
        }
    }

    fn write(&mut self, files: &[(String, Vec<u8>)]) {
        self.seq += 1;
        let ts = format!("..2026_01_01_00_00_{:02}.{}", self.seq, std::process::id());
        let ts_dir = self.dir.join(&ts);
        std::fs::create_dir(&ts_dir).unwrap();
        std::fs::set_permissions(&ts_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        for (name, bytes) in files {
            let p = ts_dir.join(name);
            std::fs::write(&p, bytes).unwrap();
            // kubelet's SetVolumeOwnership with an fsGroup: group fsGroup, and read for the
            // group on a read-only volume (roMask 0440).
            let mut mode = self.mode;
            if let Some(gid) = self.gid {
                std::os::unix::fs::chown(&p, None, Some(gid)).unwrap();
                mode |= 0o440;
            }
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        let old = std::fs::read_link(self.dir.join("..data")).ok();
        let tmp = self.dir.join("..data_tmp");
        symlink(&ts, &tmp).unwrap();
        std::fs::rename(&tmp, self.dir.join("..data")).unwrap();
        for (name, _) in files {
            let visible = self.dir.join(name);
            if std::fs::symlink_metadata(&visible).is_err() {
                symlink(Path::new("..data").join(name), &visible).unwrap();
            }
        }
        if let Some(old) = old {
            std::fs::remove_dir_all(self.dir.join(old)).unwrap();
        }
    }
}

/// The data of the Secrets and ConfigMaps "in the cluster": the rendering's own (the chart
/// creates the report token) and the ones an operator creates (README, Deploying).
type Objects = BTreeMap<String, BTreeMap<String, Vec<u8>>>;

fn cluster_secrets(docs: &[Value], given: &Objects) -> Objects {
    let mut out = given.clone();
    for d in docs.iter().filter(|d| d["kind"] == "Secret") {
        let name = d["metadata"]["name"].as_str().unwrap().to_string();
        let mut data = BTreeMap::new();
        if let Some(m) = d["data"].as_object() {
            for (k, v) in m {
                let b64 = v.as_str().unwrap();
                data.insert(k.clone(), base64_decode(b64));
            }
        }
        if let Some(m) = d["stringData"].as_object() {
            for (k, v) in m {
                data.insert(k.clone(), v.as_str().unwrap().as_bytes().to_vec());
            }
        }
        out.insert(name, data);
    }
    out
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .unwrap_or_else(|e| panic!("Secret data is not base64: {e}"))
}

/// A volume's `items` (key, path), or None for every key.
type Items = Option<Vec<(String, String)>>;

/// A pod's volumes made on the "node": name -> host path, and the Secret volumes by name.
struct PodVolumes {
    paths: BTreeMap<String, PathBuf>,
    secrets: BTreeMap<String, (AtomicVolume, Items)>,
}

fn octal_mode(v: &Value, default: u32) -> u32 {
    v.as_u64().map(|m| m as u32).unwrap_or(default)
}

fn prepare_volumes(pod: &Value, node_root: &Path, scratch: &Path, secrets: &Objects) -> PodVolumes {
    let fs_group = pod["securityContext"]["fsGroup"].as_u64().map(|g| g as u32);
    let mut out = PodVolumes {
        paths: BTreeMap::new(),
        secrets: BTreeMap::new(),
    };
    for v in pod["volumes"].as_array().cloned().unwrap_or_default() {
        let name = v["name"].as_str().unwrap().to_string();
        let path = if let Some(h) = v.get("hostPath") {
            let p = h["path"].as_str().unwrap();
            let src = node_root.join(p.trim_start_matches('/'));
            match h["type"].as_str().unwrap_or("") {
                "Directory" => assert!(
                    src.is_dir(),
                    "hostPath {p} (type Directory) is not on the node: kubelet would not start \
                     the pod on this node shape"
                ),
                // "" is unchecked by kubelet, and containerd's CRI creates a missing source.
                "DirectoryOrCreate" | "" => {
                    if !src.exists() {
                        std::fs::create_dir_all(&src).unwrap();
                    }
                }
                other => panic!("hostPath type {other} of volume {name}: not emulated here"),
            }
            src
        } else if let Some(s) = v.get("secret").or_else(|| v.get("configMap")) {
            let secret_name = s["secretName"]
                .as_str()
                .or_else(|| s["name"].as_str())
                .unwrap();
            let dir = scratch.join("volumes").join(&name);
            let mut vol =
                AtomicVolume::create(&dir, octal_mode(&s["defaultMode"], 0o644), fs_group);
            let items: Option<Vec<(String, String)>> = s["items"].as_array().map(|items| {
                items
                    .iter()
                    .map(|i| {
                        (
                            i["key"].as_str().unwrap().to_string(),
                            i["path"].as_str().unwrap().to_string(),
                        )
                    })
                    .collect()
            });
            match secrets.get(secret_name) {
                Some(data) => vol.write(&project(data, &items)),
                None => assert!(
                    s["optional"].as_bool().unwrap_or(false),
                    "volume {name}: Secret {secret_name} does not exist and is not optional"
                ),
            }
            out.secrets.insert(name.clone(), (vol, items));
            dir
        } else if v.get("emptyDir").is_some() {
            let dir = scratch.join("volumes").join(&name);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
            dir
        } else if v.get("persistentVolumeClaim").is_some() {
            let dir = scratch.join("volumes").join(&name);
            std::fs::create_dir_all(&dir).unwrap();
            // fsGroup on a PVC: group-owned, setgid, group-writable.
            if let Some(gid) = fs_group {
                std::os::unix::fs::chown(&dir, Some(0), Some(gid)).unwrap();
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o2775)).unwrap();
            }
            dir
        } else {
            panic!("volume {name}: kind not emulated here: {v}");
        };
        out.paths.insert(name, path);
    }
    out
}

/// The files a Secret volume shows: every key, or only the listed items under their paths.
fn project(
    data: &BTreeMap<String, Vec<u8>>,
    items: &Option<Vec<(String, String)>>,
) -> Vec<(String, Vec<u8>)> {
    match items {
        None => data.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        Some(items) => items
            .iter()
            .filter_map(|(key, path)| data.get(key).map(|v| (path.clone(), v.clone())))
            .collect(),
    }
}

// ---------------------------------------------------------------------------------------
// The pod spec as an OCI runtime spec.

/// kubelet's `$(VAR)` expansion (pkg/kubelet/container/expansion): a defined name is
/// replaced, `$$` is a literal `$`, anything else stays as written.
fn expand(s: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(inner) = after.strip_prefix('(') {
            match inner.find(')') {
                Some(j) if vars.contains_key(&inner[..j]) => {
                    out.push_str(&vars[&inner[..j]]);
                    rest = &inner[j + 1..];
                }
                _ => {
                    out.push('$');
                    rest = after;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Parses Kubernetes quantities the manifests use: `100m`, `1`, `64Mi`, `1Gi`.
fn cpu_millis(q: &str) -> u64 {
    match q.strip_suffix('m') {
        Some(m) => m.parse().unwrap(),
        None => q.parse::<u64>().unwrap() * 1000,
    }
}

fn bytes(q: &str) -> u64 {
    for (suffix, mult) in [("Ki", 1u64 << 10), ("Mi", 1 << 20), ("Gi", 1 << 30)] {
        if let Some(n) = q.strip_suffix(suffix) {
            return n.parse::<u64>().unwrap() * mult;
        }
    }
    q.parse().unwrap()
}

/// containerd's default capability set (oci/spec.go, v1.6.20 `defaultUnixCaps`), what a
/// container keeps unless its securityContext drops it.
const DEFAULT_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

struct PodRun<'a> {
    id: String,
    pod: &'a Value,
    namespace: &'a str,
    netns: String,
    rootfs: PathBuf,
    volumes: &'a PodVolumes,
    etc_hosts: PathBuf,
    resolv_conf: PathBuf,
    cgroup: String,
}

/// What the process gets, as the CRI computes it; also returned for the checks.
struct Process {
    uid: u32,
    args: Vec<String>,
}

fn oci_spec(base: &Value, image: &ImageConfig, r: &PodRun) -> (Value, Process) {
    let pod = r.pod;
    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1, "one container per pod");
    let c = &containers[0];
    let psc = &pod["securityContext"];
    let csc = &c["securityContext"];
    let mut spec = base.clone();

    // Command and args over entrypoint and cmd (Kubernetes: "command" replaces the
    // entrypoint and drops cmd; "args" replaces cmd).
    let strings = |v: &Value| -> Option<Vec<String>> {
        v.as_array()
            .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
    };
    let mut env: Vec<(String, String)> = image
        .env
        .iter()
        .map(|e| {
            let (k, v) = e.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect();
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    for e in c["env"].as_array().cloned().unwrap_or_default() {
        let name = e["name"].as_str().unwrap().to_string();
        let value = if let Some(v) = e["value"].as_str() {
            expand(v, &vars)
        } else if let Some(path) = e["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
            match path {
                "spec.nodeName" => NODE_NAME.to_string(),
                "metadata.namespace" => r.namespace.to_string(),
                other => panic!("env {name}: fieldRef {other} not emulated here"),
            }
        } else {
            panic!("env {name}: source not emulated here: {e}");
        };
        vars.insert(name.clone(), value.clone());
        env.retain(|(k, _)| *k != name);
        env.push((name, value));
    }
    let expand_all =
        |v: Vec<String>| -> Vec<String> { v.iter().map(|s| expand(s, &vars)).collect() };
    let args = match (strings(&c["command"]), strings(&c["args"])) {
        (Some(cmd), args) => [expand_all(cmd), expand_all(args.unwrap_or_default())].concat(),
        (None, Some(args)) => [image.entrypoint.clone(), expand_all(args)].concat(),
        (None, None) => [image.entrypoint.clone(), image.cmd.clone()].concat(),
    };

    // The user: the container's, else the pod's, else the image's.
    let (image_uid, image_gid) = match image.user.split_once(':') {
        Some((u, g)) => (u.parse::<u64>().unwrap(), g.parse::<u64>().unwrap()),
        None if image.user.is_empty() => (0, 0),
        None => (image.user.parse().unwrap(), 0),
    };
    let pick = |key: &str| csc[key].as_u64().or_else(|| psc[key].as_u64());
    let uid = pick("runAsUser").unwrap_or(image_uid) as u32;
    let gid = pick("runAsGroup").unwrap_or(image_gid) as u32;
    let non_root = csc["runAsNonRoot"]
        .as_bool()
        .or_else(|| psc["runAsNonRoot"].as_bool())
        .unwrap_or(false);
    assert!(
        !(non_root && uid == 0),
        "runAsNonRoot with uid 0: kubelet would refuse to start the container"
    );
    let mut groups: Vec<u32> = psc["supplementalGroups"]
        .as_array()
        .map(|a| a.iter().map(|g| g.as_u64().unwrap() as u32).collect())
        .unwrap_or_default();
    if let Some(fs) = psc["fsGroup"].as_u64() {
        groups.push(fs as u32);
    }

    // Capabilities: containerd's defaults, minus drop (ALL = every one), plus add.
    let drop: Vec<String> = strings(&csc["capabilities"]["drop"]).unwrap_or_default();
    let add: Vec<String> = strings(&csc["capabilities"]["add"]).unwrap_or_default();
    let mut caps: Vec<String> = if drop.iter().any(|d| d == "ALL") {
        vec![]
    } else {
        DEFAULT_CAPS
            .iter()
            .filter(|cap| !drop.iter().any(|d| format!("CAP_{d}") == **cap))
            .map(|s| s.to_string())
            .collect()
    };
    caps.extend(add.iter().map(|a| format!("CAP_{a}")));

    let process = &mut spec["process"];
    process["args"] = json!(args);
    process["env"] = json!(env
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>());
    process["cwd"] = json!(if image.workdir.is_empty() {
        "/"
    } else {
        &image.workdir
    });
    process["user"] = json!({"uid": uid, "gid": gid, "additionalGids": groups});
    process["capabilities"] = json!({
        "bounding": caps, "effective": caps, "permitted": caps, "inheritable": [], "ambient": []
    });
    process["noNewPrivileges"] = json!(csc["allowPrivilegeEscalation"] == json!(false));
    process["terminal"] = json!(false);

    spec["root"] = json!({
        "path": r.rootfs,
        "readonly": csc["readOnlyRootFilesystem"] == json!(true),
    });
    spec["hostname"] = json!(if pod["hostNetwork"] == json!(true) {
        NODE_NAME
    } else {
        &r.id
    });

    // Mounts: the runtime's defaults, then /etc/hosts and resolv.conf (kubelet's), then the
    // volumes, sorted so a parent is mounted before what is mounted inside it (the CRI's
    // sortMounts).
    let mut mounts: Vec<Value> = spec["mounts"].as_array().cloned().unwrap_or_default();
    for (dst, src) in [
        ("/etc/hosts", &r.etc_hosts),
        ("/etc/resolv.conf", &r.resolv_conf),
    ] {
        mounts.push(json!({"destination": dst, "type": "bind", "source": src,
                           "options": ["rbind", "ro", "nosuid", "nodev", "noexec"]}));
    }
    let mut volume_mounts: Vec<Value> = vec![];
    for m in c["volumeMounts"].as_array().cloned().unwrap_or_default() {
        let name = m["name"].as_str().unwrap();
        let src = r
            .volumes
            .paths
            .get(name)
            .unwrap_or_else(|| panic!("volumeMount {name}: no such volume"));
        let ro = m["readOnly"] == json!(true);
        let mut options = vec!["rbind", "rprivate"];
        options.push(if ro { "ro" } else { "rw" });
        volume_mounts.push(json!({"destination": m["mountPath"], "type": "bind",
                                  "source": src, "options": options}));
    }
    volume_mounts.sort_by_key(|m| {
        Path::new(m["destination"].as_str().unwrap())
            .components()
            .count()
    });
    mounts.extend(volume_mounts);
    spec["mounts"] = json!(mounts);

    // Namespaces: new ones, the network one joined (node's or pod's).
    let linux = &mut spec["linux"];
    let mut namespaces: Vec<Value> = linux["namespaces"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|n| n["type"] != "network")
        .collect();
    namespaces.push(json!({"type": "network", "path": r.netns}));
    linux["namespaces"] = json!(namespaces);

    // Resources: limits as cgroup limits, the CPU request as shares (kubelet's
    // MilliCPUToShares and MilliCPUToQuota, period 100 ms).
    let res = &c["resources"];
    let mut resources = linux["resources"].as_object().cloned().unwrap_or_default();
    if let Some(m) = res["limits"]["memory"].as_str() {
        resources.insert("memory".into(), json!({"limit": bytes(m)}));
    }
    let mut cpu = Map::new();
    if let Some(q) = res["limits"]["cpu"].as_str() {
        cpu.insert("quota".into(), json!(cpu_millis(q) * 100_000 / 1000));
        cpu.insert("period".into(), json!(100_000));
    }
    if let Some(q) = res["requests"]["cpu"].as_str() {
        cpu.insert("shares".into(), json!((cpu_millis(q) * 1024 / 1000).max(2)));
    }
    resources.insert("cpu".into(), Value::Object(cpu));
    linux["resources"] = Value::Object(resources);
    linux["cgroupsPath"] = json!(r.cgroup);

    // RuntimeDefault is containerd's default profile, which `base` carries (ctr --seccomp).
    let seccomp = csc["seccompProfile"]["type"]
        .as_str()
        .or_else(|| psc["seccompProfile"]["type"].as_str());
    match seccomp {
        Some("RuntimeDefault") => assert!(linux["seccomp"].is_object(), "base spec has seccomp"),
        Some(other) => panic!("seccompProfile {other}: not emulated here"),
        None => {
            linux.as_object_mut().unwrap().remove("seccomp");
        }
    }
    (spec, Process { uid, args })
}

// ---------------------------------------------------------------------------------------
// Containers under the private containerd.

struct Pods<'a> {
    containerd: &'a Containerd,
    ctr: PathBuf,
    ids: Vec<String>,
    rootfs: Vec<PathBuf>,
    cgroup_parent: String,
}

impl<'a> Pods<'a> {
    fn ctr(&self) -> Command {
        let mut c = Command::new(&self.ctr);
        c.arg("--address")
            .arg(self.containerd.socket())
            .args(["--namespace", NAMESPACE]);
        c
    }

    fn ctr_ok(&self, args: &[&str]) -> String {
        let mut c = self.ctr();
        c.args(args);
        let out = run_ok(c, &format!("ctr {}", args.join(" ")));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// containerd's own default spec for the image, with the read-only root and its default
    /// seccomp profile: the base the CRI builds on. Taken from a container created and
    /// removed again, never started.
    fn default_spec(&self, image: &str) -> Value {
        let id = format!("spec-probe-{}", std::process::id());
        self.ctr_ok(&[
            "containers",
            "create",
            "--snapshotter",
            "native",
            "--read-only",
            "--seccomp",
            image,
            &id,
        ]);
        let info: Value = serde_json::from_str(&self.ctr_ok(&["containers", "info", &id])).unwrap();
        self.ctr_ok(&["containers", "delete", &id]);
        info["Spec"].clone()
    }

    /// The image's filesystem, writable for runc to make mount points, then mounted
    /// read-only as root by the spec (what containerd's snapshotter gives the CRI).
    fn mount_rootfs(&mut self, image: &str, dir: &Path) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        self.ctr_ok(&[
            "images",
            "mount",
            "--snapshotter",
            "native",
            "--rw",
            image,
            dir.to_str().unwrap(),
        ]);
        self.rootfs.push(dir.to_path_buf());
        dir.to_path_buf()
    }

    fn start(&mut self, id: &str, spec: &Value, dir: &Path) -> u32 {
        let spec_file = dir.join(format!("{id}.json"));
        std::fs::write(&spec_file, serde_json::to_vec_pretty(spec).unwrap()).unwrap();
        let log = dir.join(format!("{id}.log"));
        let pid_file = dir.join(format!("{id}.pid"));
        self.ctr_ok(&[
            "run",
            "--detach",
            "--config",
            spec_file.to_str().unwrap(),
            "--log-uri",
            &format!("file://{}", log.display()),
            "--pid-file",
            pid_file.to_str().unwrap(),
            id,
        ]);
        self.ids.push(id.to_string());
        std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    /// The task's status word in `ctr task ls` (RUNNING, STOPPED, ...).
    fn status(&self, id: &str) -> Option<String> {
        let out = self.ctr_ok(&["tasks", "ls"]);
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(id))
            .and_then(|l| l.split_whitespace().nth(2).map(str::to_string))
    }

    /// SIGTERM, as kubelet sends it, then the exit status.
    fn terminate(&self, id: &str) -> u32 {
        self.ctr_ok(&["tasks", "kill", "--signal", "SIGTERM", id]);
        wait_for(&format!("{id} to stop after SIGTERM"), DEADLINE, || {
            (self.status(id).as_deref() == Some("STOPPED")).then_some(())
        });
        let mut c = self.ctr();
        c.args(["tasks", "delete", id]);
        let out = run(c);
        // ctr prints nothing and exits with the task's status when it is not 0.
        out.status.code().expect("ctr tasks delete exit code") as u32
    }
}

impl Drop for Pods<'_> {
    fn drop(&mut self) {
        for id in &self.ids {
            let mut c = self.ctr();
            c.args(["tasks", "kill", "--signal", "SIGKILL", id]);
            let _ = run(c);
            let mut c = self.ctr();
            c.args(["tasks", "delete", "--force", id]);
            let _ = run(c);
            let mut c = self.ctr();
            c.args(["containers", "delete", id]);
            let _ = run(c);
        }
        for dir in &self.rootfs {
            let mut c = self.ctr();
            c.args(["images", "unmount", "--rm"]).arg(dir);
            let _ = run(c);
        }
        for controller in [
            // v1 controllers, then "" for the v2 unified hierarchy.
            "memory", "cpu", "cpuacct", "pids", "blkio", "devices", "freezer", "cpuset", "systemd",
            "",
        ] {
            let dir = Path::new("/sys/fs/cgroup")
                .join(controller)
                .join(self.cgroup_parent.trim_start_matches('/'));
            if let Ok(entries) = std::fs::read_dir(&dir) {
                for e in entries.flatten() {
                    if e.path().is_dir() {
                        let _ = std::fs::remove_dir(e.path());
                    }
                }
                let _ = std::fs::remove_dir(&dir);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Checks.

/// `/proc/PID/status` fields.
fn proc_status(pid: u32) -> BTreeMap<String, String> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

fn cgroup_value(controller: &str, path: &str, file: &str) -> String {
    let p = Path::new("/sys/fs/cgroup")
        .join(controller)
        .join(path.trim_start_matches('/'))
        .join(file);
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
        .trim()
        .to_string()
}

/// The probe's path and port as the manifest names them (a named port resolved).
fn probe_url(c: &Value, probe: &str, ip: Ipv4Addr) -> String {
    let get = &c[probe]["httpGet"];
    let port = match &get["port"] {
        Value::Number(n) => n.as_u64().unwrap(),
        Value::String(name) => c["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == json!(name))
            .unwrap_or_else(|| panic!("{probe}: no port named {name}"))["containerPort"]
            .as_u64()
            .unwrap(),
        other => panic!("{probe}: port {other}"),
    };
    format!("http://{ip}:{port}{}", get["path"].as_str().unwrap())
}

/// Metric names in a Prometheus text exposition (from its `# TYPE` lines and samples).
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    text.lines()
        .filter_map(|l| {
            if let Some(rest) = l.strip_prefix("# TYPE ") {
                rest.split_whitespace().next().map(str::to_string)
            } else if l.starts_with('#') || l.is_empty() {
                None
            } else {
                l.split(['{', ' ']).next().map(str::to_string)
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------

/// A node shape: what a distribution leaves on a node, and where its runtime reads trust.
struct Shape {
    name: &'static str,
    /// Files (path under the node root, contents) the distribution leaves there.
    files: &'static [(&'static str, &'static str)],
    /// The dir regtrust must write `<host>/` into, and the files it writes there.
    trust_dir: &'static str,
    trust_files: &'static [&'static str],
    /// Dirs the pod must not create on this node.
    absent: &'static [&'static str],
}

/// The Debian/kubeadm containerd node: containerd's config with config_path and its binary.
const CONTAINERD: Shape = Shape {
    name: "containerd",
    files: &[
        (
            "etc/containerd/config.toml",
            "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d\"\n",
        ),
        ("usr/bin/containerd", "#!/bin/sh\n"),
    ],
    trust_dir: "etc/containerd/certs.d",
    trust_files: &["ca.crt", "hosts.toml"],
    absent: &["etc/docker", "etc/containers", "etc/crio", "var/lib/rancher", "var/snap"],
};

/// A CRI-O node (the crio component): its config and binary, no containerd, no Docker.
const CRIO: Shape = Shape {
    name: "crio",
    files: &[
        ("etc/crio/crio.conf", "[crio]\n"),
        ("usr/bin/crio", "#!/bin/sh\n"),
    ],
    trust_dir: "etc/containers/certs.d",
    trust_files: &["ca.crt"],
    absent: &[
        "etc/docker",
        "etc/containerd",
        "var/lib/rancher",
        "var/snap",
    ],
};

/// k3s and RKE2: the containerd config they generate (config_path = its certs.d) and the
/// binary; nothing in /etc/containerd.
const K3S: Shape = Shape {
    name: "k3s",
    files: &[
        (
            "var/lib/rancher/k3s/agent/etc/containerd/config.toml",
            "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/var/lib/rancher/k3s/agent/etc/containerd/certs.d\"\n",
        ),
        ("usr/local/bin/k3s", "#!/bin/sh\n"),
    ],
    trust_dir: "var/lib/rancher/k3s/agent/etc/containerd/certs.d",
    trust_files: &["ca.crt", "hosts.toml"],
    absent: &["etc/docker", "etc/containers", "etc/containerd", "var/lib/rancher/rke2", "var/snap"],
};

const RKE2: Shape = Shape {
    name: "rke2",
    files: &[
        (
            "var/lib/rancher/rke2/agent/etc/containerd/config.toml",
            "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/var/lib/rancher/rke2/agent/etc/containerd/certs.d\"\n",
        ),
        ("usr/local/bin/rke2", "#!/bin/sh\n"),
    ],
    trust_dir: "var/lib/rancher/rke2/agent/etc/containerd/certs.d",
    trust_files: &["ca.crt", "hosts.toml"],
    absent: &["etc/docker", "etc/containers", "etc/containerd", "var/lib/rancher/k3s", "var/snap"],
};

/// microk8s: the template with the literal ${SNAP_DATA} its containerd resolves.
const MICROK8S: Shape = Shape {
    name: "microk8s",
    files: &[(
        "var/snap/microk8s/current/args/containerd-template.toml",
        "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"${SNAP_DATA}/args/certs.d\"\n",
    )],
    trust_dir: "var/snap/microk8s/current/args/certs.d",
    trust_files: &["ca.crt", "hosts.toml"],
    absent: &["etc/docker", "etc/containers", "etc/containerd", "var/lib/rancher"],
};

/// Lay the shape out, with the machine's OS bundle as the node's.
fn node_shape(root: &Path, shape: &Shape) {
    let w = |p: &str, body: &[u8]| {
        let p = root.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    };
    // Every node has /usr and /etc.
    std::fs::create_dir_all(root.join("usr/bin")).unwrap();
    for (path, body) in shape.files {
        w(path, body.as_bytes());
    }
    let bundle = std::fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default();
    w("etc/ssl/certs/ca-certificates.crt", &bundle);
}

#[test]
fn the_image_runs_the_rendered_pod_specs_under_containerd() {
    for tool in [("ip", "iproute2"), ("curl", "curl"), ("tar", "tar")] {
        require_tool(tool.0, tool.1);
    }
    let scratch = tempfile::Builder::new()
        .prefix("regtrust-container-e2e-")
        .tempdir()
        .unwrap();
    let archive = build_image();
    let (image_name, image) = image_config(&archive);
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        image_name,
        format!("regtrust:{version}"),
        "the archive's tag"
    );
    assert_eq!(image.user, "65532:65532", "the image's user");
    dockerfile_matches(&image);
    let renderings = renderings(scratch.path());

    let containerd = Containerd::start();
    let mut ctr = Command::new(require_tool("ctr", "containerd"));
    ctr.arg("--address")
        .arg(containerd.socket())
        .args([
            "--namespace",
            NAMESPACE,
            "images",
            "import",
            "--snapshotter",
            "native",
        ])
        .arg(&archive);
    run_ok(ctr, "ctr images import");
    let mut ls = Command::new(require_tool("ctr", "containerd"));
    ls.arg("--address").arg(containerd.socket()).args([
        "--namespace",
        NAMESPACE,
        "images",
        "ls",
        "-q",
    ]);
    let names = String::from_utf8_lossy(&run_ok(ls, "ctr images ls").stdout).into_owned();
    let imported: Vec<&str> = names.lines().collect();
    assert_eq!(imported.len(), 1, "one image imported: {names}");
    let imported = imported[0].to_string();

    for (n, (what, shape, docs)) in renderings.iter().enumerate() {
        scenario(
            what,
            shape,
            docs,
            &containerd,
            &image,
            &imported,
            version,
            &scratch.path().join(format!("s{n}")),
            (n as u8) + 1 + (std::process::id() % 100) as u8 * 2,
        );
    }
    musl_dns_error_reads_as_go(
        &scratch.path().join("dns"),
        200 + (std::process::id() % 50) as u8,
    );
}

#[allow(clippy::too_many_arguments)]
fn scenario(
    what: &str,
    shape: &Shape,
    docs: &[Value],
    containerd: &Containerd,
    image: &ImageConfig,
    imported: &str,
    version: &str,
    dir: &Path,
    subnet: u8,
) {
    std::fs::create_dir_all(dir).unwrap();
    let agent_w = workload(docs, "DaemonSet");
    let agg_w = workload(docs, "Deployment");
    let agent_pod = &agent_w["spec"]["template"]["spec"];
    let agg_pod = &agg_w["spec"]["template"]["spec"];
    let agent_c = &agent_pod["containers"][0];
    let agg_c = &agg_pod["containers"][0];
    assert_eq!(
        agent_pod["hostNetwork"],
        json!(true),
        "{what}: the agent is on the host network"
    );

    // The image the manifests name must be this version's; the archive is tagged as that.
    let image_ref = agent_c["image"].as_str().unwrap();
    assert_eq!(
        agg_c["image"].as_str().unwrap(),
        image_ref,
        "{what}: one image"
    );
    assert!(
        image_ref.ends_with(&format!(":{version}")),
        "{what}: the manifests name {image_ref}, not this version ({version})"
    );
    let full_ref = if image_ref.split('/').next().unwrap().contains('.') {
        image_ref.to_string()
    } else {
        format!("docker.io/library/{image_ref}")
    };
    let mut pods = Pods {
        containerd,
        ctr: require_tool("ctr", "containerd"),
        ids: vec![],
        rootfs: vec![],
        cgroup_parent: format!("/regtrust-e2e-{}-{subnet}", std::process::id()),
    };
    pods.ctr_ok(&["images", "tag", "--force", imported, &full_ref]);
    let base_spec = pods.default_spec(&full_ref);

    let net = Net::create(subnet);

    // The registry on the host's veth end, its certificate signed by root A.
    let pki = Pki::new();
    let root_a = pki.root("root-a");
    let root_b = pki.root("root-b");
    let leaf = pki
        .cert("registry")
        .signed_by(&root_a)
        .ip(IpAddr::V4(net.host_ip))
        .leaf();
    let registry = Registry::tls(&leaf.chain_path, &leaf.key_path)
        .on_ip(IpAddr::V4(net.host_ip))
        .start();
    let host = registry.host();

    // What an operator creates (README, Deploying), and what the rendering creates itself.
    let pull_secret = json!({"auths": {host.clone(): {"auth": "dXNlcjpwYXNz"}}}).to_string();
    let mut given: Objects = BTreeMap::new();
    given.insert(
        "regtrust-pull-secret".into(),
        BTreeMap::from([(".dockerconfigjson".to_string(), pull_secret.into_bytes())]),
    );
    given.insert(
        "regtrust-ca".into(),
        BTreeMap::from([("ca.crt".to_string(), root_a.cert_pem.clone().into_bytes())]),
    );
    given.insert(
        "regtrust-report-token".into(),
        BTreeMap::from([("token".to_string(), b"e2e-token-0123456789abcdef".to_vec())]),
    );
    let secrets = cluster_secrets(docs, &given);

    let node_root = dir.join("node");
    node_shape(&node_root, shape);
    let mut agent_vols = prepare_volumes(agent_pod, &node_root, &dir.join("agent"), &secrets);
    let agg_vols = prepare_volumes(agg_pod, &node_root, &dir.join("aggregator"), &secrets);

    // kubelet's /etc/hosts and resolv.conf; the Service name as cluster DNS would answer it.
    let agg_ns = agg_w["metadata"]["namespace"].as_str().unwrap();
    let agent_ns = agent_w["metadata"]["namespace"].as_str().unwrap();
    let svc = docs
        .iter()
        .find(|d| d["kind"] == "Service")
        .expect("the aggregator's Service");
    let svc_name = svc["metadata"]["name"].as_str().unwrap();
    let hosts = dir.join("hosts");
    std::fs::write(
        &hosts,
        format!(
            "127.0.0.1 localhost\n{} {svc_name}.{agg_ns}.svc {svc_name}.{agg_ns}.svc.cluster.local\n",
            net.pod_ip
        ),
    )
    .unwrap();
    let resolv = dir.join("resolv.conf");
    std::fs::write(
        &resolv,
        "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
    )
    .unwrap();

    // The aggregator, then the agent.
    let agg_run = PodRun {
        id: format!("aggregator-{subnet}"),
        pod: agg_pod,
        namespace: agg_ns,
        netns: Net::path(&net.pod_ns),
        rootfs: pods.mount_rootfs(&full_ref, &dir.join("rootfs-aggregator")),
        volumes: &agg_vols,
        etc_hosts: hosts.clone(),
        resolv_conf: resolv.clone(),
        cgroup: format!("{}/aggregator", pods.cgroup_parent),
    };
    let (agg_spec, agg_proc) = oci_spec(&base_spec, image, &agg_run);
    assert_eq!(
        agg_proc.args,
        ["/usr/local/bin/regtrust", "aggregator"],
        "{what}"
    );
    let agg_pid = pods.start(&agg_run.id, &agg_spec, dir);
    let agg_health = probe_url(agg_c, "livenessProbe", net.pod_ip);
    wait_for(
        &format!("{what}: aggregator {agg_health}"),
        DEADLINE,
        || net.curl(&agg_health).filter(|(code, _)| *code == 200),
    );

    let agent_run = PodRun {
        id: format!("agent-{subnet}"),
        pod: agent_pod,
        namespace: agent_ns,
        netns: Net::path(&net.node_ns),
        rootfs: pods.mount_rootfs(&full_ref, &dir.join("rootfs-agent")),
        volumes: &agent_vols,
        etc_hosts: hosts.clone(),
        resolv_conf: resolv.clone(),
        cgroup: format!("{}/agent", pods.cgroup_parent),
    };
    let (agent_spec, agent_proc) = oci_spec(&base_spec, image, &agent_run);
    assert_eq!(agent_proc.uid, 0, "{what}: the agent runs as uid 0");
    assert_eq!(
        agg_proc.uid, 65532,
        "{what}: the aggregator runs as nonroot"
    );
    let agent_pid = pods.start(&agent_run.id, &agent_spec, dir);
    let log = |id: &str| std::fs::read_to_string(dir.join(format!("{id}.log"))).unwrap_or_default();

    for probe in ["livenessProbe", "readinessProbe"] {
        let url = probe_url(agent_c, probe, net.node_ip);
        wait_for(&format!("{what}: agent {url}"), DEADLINE, || {
            net.curl(&url).filter(|(code, _)| *code == 200)
        });
    }

    // The kernel's view of both processes: user, no capabilities, no_new_privs, seccomp.
    for (pid, uid) in [(agent_pid, "0"), (agg_pid, "65532")] {
        let s = proc_status(pid);
        assert_eq!(
            s["Uid"].split_whitespace().next(),
            Some(uid),
            "{what}: pid {pid} uid"
        );
        assert_eq!(
            s["CapEff"], "0000000000000000",
            "{what}: pid {pid} capabilities"
        );
        assert_eq!(
            s["CapBnd"], "0000000000000000",
            "{what}: pid {pid} bounding set"
        );
        assert_eq!(s["NoNewPrivs"], "1", "{what}: pid {pid} no_new_privs");
        assert_eq!(s["Seccomp"], "2", "{what}: pid {pid} seccomp filter");
        let mountinfo = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
        let root = mountinfo
            .lines()
            .find(|l| l.split(' ').nth(4) == Some("/"))
            .expect("a / mount");
        assert!(
            root.split(' ')
                .nth(5)
                .unwrap()
                .split(',')
                .any(|o| o == "ro"),
            "{what}: / is read-only: {root}"
        );
    }
    // Resource limits as cgroup limits (cgroup v1 files, or v2's unified ones).
    let limits = &agent_c["resources"]["limits"];
    let memory = bytes(limits["memory"].as_str().unwrap()).to_string();
    let quota = (cpu_millis(limits["cpu"].as_str().unwrap()) * 100).to_string();
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        assert_eq!(
            cgroup_value("", &agent_run.cgroup, "memory.max"),
            memory,
            "{what}: memory.max"
        );
        assert_eq!(
            cgroup_value("", &agent_run.cgroup, "cpu.max"),
            format!("{quota} 100000"),
            "{what}: cpu.max"
        );
    } else {
        assert_eq!(
            cgroup_value("memory", &agent_run.cgroup, "memory.limit_in_bytes"),
            memory,
            "{what}: the agent's memory limit"
        );
        assert_eq!(
            cgroup_value("cpu", &agent_run.cgroup, "cpu.cfs_quota_us"),
            quota,
            "{what}: the agent's CPU limit"
        );
    }

    // The CA where the shape's runtime reads it, root-owned, world-readable.
    let ca_dir = node_root.join(shape.trust_dir).join(&host);
    let ca_file = ca_dir.join("ca.crt");
    wait_for(&format!("{what}: {}", ca_file.display()), DEADLINE, || {
        std::fs::read_to_string(&ca_file)
            .ok()
            .filter(|s| s.contains(root_a.cert_pem.trim()))
    });
    for f in shape.trust_files {
        let f = ca_dir.join(f);
        let m = std::fs::metadata(&f).unwrap_or_else(|e| panic!("{what}: {}: {e}", f.display()));
        assert_eq!((m.uid(), m.gid()), (0, 0), "{what}: {} owner", f.display());
        assert_eq!(m.mode() & 0o7777, 0o644, "{what}: {} mode", f.display());
    }
    // Nothing was created for runtimes the node does not run.
    for absent in shape.absent {
        assert!(
            !node_root.join(absent).exists(),
            "{what} on a {} node: the pod created {absent} on the node",
            shape.name
        );
    }

    // The probe is ok, the metrics say so, and the push reached the aggregator.
    let metrics_url = format!(
        "http://{}:{}/metrics",
        net.node_ip, agent_c["ports"][0]["containerPort"]
    );
    let agent_metrics = wait_for(
        &format!("{what}: agent verdict ok in /metrics"),
        DEADLINE,
        || {
            net.curl(&metrics_url).map(|(_, b)| b).filter(|b| {
                b.lines().any(|l| {
                    l.starts_with("regtrust_registry_verdict{")
                        && l.contains(&format!("registry=\"{host}\""))
                        && l.contains("verdict=\"ok\"")
                        && l.ends_with(" 1")
                })
            })
        },
    );
    // The default install on this shape raises no false problem.
    assert!(
        agent_metrics.lines().any(|l| l == "regtrust_problems 0"),
        "{what}: the agent reports problems on a plain containerd node:\n{}",
        net.curl(&format!(
            "http://{}:{}/report",
            net.node_ip, agent_c["ports"][0]["containerPort"]
        ))
        .map(|(_, b)| b)
        .unwrap_or_default()
    );
    let agg_base = format!(
        "http://{}:{}",
        net.pod_ip, agg_c["ports"][0]["containerPort"]
    );
    let agg_metrics = wait_for(
        &format!("{what}: the push in the aggregator's /metrics"),
        DEADLINE,
        || {
            net.curl(&format!("{agg_base}/metrics"))
                .map(|(_, b)| b)
                .filter(|b| {
                    b.contains("regtrust_fleet_reports_total{result=\"stored\"}")
                        && !b.contains("regtrust_fleet_reports_total{result=\"stored\"} 0")
                })
        },
    );
    let mut report = Command::new(require_tool("ip", "iproute2"));
    report
        .args(["netns", "exec", &net.node_ns])
        .arg(env!("CARGO_BIN_EXE_regtrust"))
        .args(["report", "--url", &agg_base]);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("REGTRUST_") {
            report.env_remove(k);
        }
    }
    let out = run(report);
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what}: regtrust report:\n{table}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        table.contains(NODE_NAME),
        "{what}: the report names {NODE_NAME}:\n{table}"
    );

    // The Grafana dashboard's queries name metrics these containers serve.
    let served: std::collections::BTreeSet<String> = metric_names(&agent_metrics)
        .union(&metric_names(&agg_metrics))
        .cloned()
        .collect();
    for m in dashboard_metrics() {
        assert!(
            served.contains(&m),
            "{what}: the dashboard queries {m}, which neither container serves"
        );
    }

    // A ..data swap of the CA Secret: the node has CA B within one second.
    let (agent_id, agg_id) = (agent_run.id.clone(), agg_run.id.clone());
    drop(agent_run);
    let (ca_vol, items) = agent_vols
        .secrets
        .get_mut("ca")
        .expect("the agent's ca volume");
    let data = BTreeMap::from([("ca.crt".to_string(), root_b.cert_pem.clone().into_bytes())]);
    ca_vol.write(&project(&data, items));
    wait_for(
        &format!("{what}: CA B on the node within one second of the ..data swap"),
        Duration::from_secs(1),
        || {
            std::fs::read_to_string(&ca_file)
                .ok()
                .filter(|s| s.contains(root_b.cert_pem.trim()))
        },
    );

    // SIGTERM stops both cleanly; the CA stays.
    assert_eq!(
        pods.terminate(&agent_id),
        0,
        "{what}: agent exit status; log:\n{}",
        log(&agent_id)
    );
    assert_eq!(
        pods.terminate(&agg_id),
        0,
        "{what}: aggregator exit status; log:\n{}",
        log(&agg_id)
    );
    assert!(
        std::fs::read_to_string(&ca_file)
            .unwrap()
            .contains(root_b.cert_pem.trim()),
        "{what}: the CA stays after the agent stopped"
    );
    // The aggregator wrote its database as nonroot on its volume.
    let db = std::fs::read_dir(&agg_vols.paths["data"])
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().ends_with(".db"))
        .expect("the aggregator's database");
    assert_eq!(
        db.metadata().unwrap().uid(),
        65532,
        "{what}: database owner"
    );
    eprintln!(
        "{what}: agent pid {agent_pid} ({:?}) and aggregator pid {agg_pid} ({:?}) ran; CA at {}; \
         agent log:\n{}",
        agent_proc.args,
        agg_proc.args,
        ca_file.display(),
        log(&agent_id)
            .lines()
            .take(8)
            .collect::<Vec<_>>()
            .join("\n")
    );
    drop(registry);
}

/// packaging/Dockerfile's final stage gives the same image as `make image`: FROM scratch, the
/// tree packaging/image/rootfs.sh lays out (the same script both builds run), and the same
/// user, working dir, entrypoint and cmd as the archive's config.
fn dockerfile_matches(image: &ImageConfig) {
    let text = std::fs::read_to_string(repo().join("packaging/Dockerfile")).unwrap();
    let last = text.rsplit("\nFROM ").next().unwrap();
    let directive = |name: &str| -> String {
        last.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("packaging/Dockerfile's last stage has no {name}"))
            .trim()
            .to_string()
    };
    let json_list = |v: &str| -> Vec<String> { serde_json::from_str(v).unwrap() };
    assert!(
        last.starts_with("scratch"),
        "the Dockerfile's image is FROM scratch"
    );
    assert_eq!(directive("COPY"), "--from=build /rootfs/ /");
    assert!(
        text.contains("packaging/image/rootfs.sh"),
        "the Dockerfile lays out with rootfs.sh"
    );
    assert_eq!(directive("USER"), image.user);
    assert_eq!(directive("WORKDIR"), image.workdir);
    assert_eq!(json_list(&directive("ENTRYPOINT")), image.entrypoint);
    assert_eq!(json_list(&directive("CMD")), image.cmd);
}

/// A resolver that answers NXDOMAIN to every query (header flags 0x8183, the question echoed),
/// for the musl check below.
const NXDOMAIN_SERVER: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 53))
print("ready", flush=True)
while True:
    q, peer = s.recvfrom(4096)
    if len(q) >= 12:
        s.sendto(q[:2] + b"\x81\x83" + q[4:6] + b"\x00" * 6 + q[12:], peer)
        print("answered NXDOMAIN", flush=True)
"#;

/// The image's own binary (musl) says Go's `dial tcp: lookup H: no such host` for a name the
/// node's resolver answers NXDOMAIN to, as kubelet would print it; musl's own words are
/// `Name does not resolve`. Run in the node's network namespace, whose resolv.conf
/// (`ip netns exec` binds /etc/netns/NS/resolv.conf) names a resolver there.
fn musl_dns_error_reads_as_go(dir: &Path, subnet: u8) {
    let python = require_tool("python3", "python3");
    std::fs::create_dir_all(dir).unwrap();
    let net = Net::create(subnet);
    let etc = PathBuf::from("/etc/netns").join(&net.node_ns);
    std::fs::create_dir_all(&etc).unwrap();
    let _cleanup = RemoveOnDrop(etc.clone());
    std::fs::write(
        etc.join("resolv.conf"),
        "nameserver 127.0.0.1\noptions timeout:2 attempts:1\n",
    )
    .unwrap();
    let mut c = Command::new(require_tool("ip", "iproute2"));
    c.args(["netns", "exec", &net.node_ns])
        .arg(python)
        .args(["-c", NXDOMAIN_SERVER]);
    let mut dns = support::Daemon::spawn("nxdomain resolver", c, &dir.join("dns.log"));
    wait_for("the NXDOMAIN resolver", DEADLINE, || {
        if let Some(log) = dns.exited() {
            panic!("{log}");
        }
        dns.log().contains("ready").then_some(())
    });
    let binary = repo().join("target/image/rootfs/usr/local/bin/regtrust");
    let host_root = dir.join("empty-root");
    std::fs::create_dir_all(&host_root).unwrap();
    let mut probe = Command::new(require_tool("ip", "iproute2"));
    probe
        .args(["netns", "exec", &net.node_ns])
        .arg(&binary)
        .args([
            "probe",
            "missing.regtrust.test:5000",
            "--output",
            "json",
            "--host-root",
        ])
        .arg(&host_root);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("REGTRUST_") {
            probe.env_remove(k);
        }
    }
    let out = run(probe);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "probe output is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let r = &report["registries"][0];
    assert_eq!(r["verdict"], "dns_error", "musl probe: {report}");
    assert_eq!(
        r["message"], "dial tcp: lookup missing.regtrust.test: no such host",
        "musl probe: {report}"
    );
    assert!(
        dns.log().contains("answered NXDOMAIN"),
        "the probe asked the resolver"
    );
    dns.stop();
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Every metric name the dashboard's queries use (packaging/grafana/regtrust.json).
fn dashboard_metrics() -> Vec<String> {
    let path = repo().join("packaging/grafana/regtrust.json");
    let d: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let mut out = vec![];
    for p in d["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().cloned().unwrap_or_default() {
            let expr = t["expr"].as_str().unwrap();
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if word.starts_with("regtrust_") {
                    out.push(word.to_string());
                }
            }
        }
    }
    assert!(!out.is_empty(), "the dashboard has queries");
    out
}
