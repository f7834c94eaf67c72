//! containerd as the node configures it: which config file its daemon uses (stock, k3s,
//! RKE2, microk8s), with its `imports`, read once per pass; the CRI registry `config_path`
//! that decides where kubelet pulls read a registry's CA; and the hosts-dir lookup.
//!
//! Sources (pinned):
//! - config loading: containerd v2.0.0 `cmd/containerd/server/config/config.go`
//!   `LoadConfig`/`resolveImports`/`mergeConfig` (v1.7.20 `services/server/config` is the
//!   same): the main file, then its `imports` in order (relative to the importing file's
//!   dir, `*` globbed), each file's `[plugins."<id>"]` table replacing the one before
//!   ("Maps merged by keys, but values are replaced entirely"); version 1 files name the
//!   CRI plugin `cri` (`MigrateConfigTo`). A missing non-glob import stops containerd.
//! - `config_path`: 1.x `[plugins."io.containerd.grpc.v1.cri".registry]`, 2.x
//!   `[plugins."io.containerd.cri.v1.images".registry]`; a `:` list, the first root with a
//!   host dir wins (v2.0.0 `internal/cri/server/images/image_pull.go` `registryHosts`,
//!   `hostDirFromRoots`). Unset: 1.x reads only `registry.configs."<host>".tls.ca_file`,
//!   certs.d never. No config file at all: v2.0.0/v2.1 default to an empty `config_path`;
//!   v2.2.0 `internal/cri/config/config_unix.go` defaults to
//!   `/etc/containerd/certs.d:/etc/docker/certs.d`.
//! - host dirs: `<host>_<port>_`, `<host:port>`, `_default` per root; a hosts.toml's `ca`
//!   entries, else loose `*.crt` (v1.7.20 `remotes/docker/config/hosts.go`,
//!   docs/hosts.md at v1.7.20 and v2.0.0).
//! - k3s sets `nodeConfig.Containerd.Registry = <data-dir>/agent/etc/containerd/certs.d`
//!   (`pkg/daemons/agent`/`pkg/agent/config/config.go`) and its template writes it as
//!   `config_path` (`pkg/agent/templates`; 1.31+ in the version 3 form) into the generated
//!   `/var/lib/rancher/k3s/agent/etc/containerd/config.toml` (from `config.toml.tmpl` beside
//!   it when present); RKE2 embeds the same agent code under `/var/lib/rancher/rke2`. (Read
//!   in the k3s-io/k3s copy the search index holds, which carries no tag.)
//! - microk8s: `args/containerd` starts containerd with `--config ${SNAP_DATA}/args/containerd.toml`
//!   rendered from `args/containerd-template.toml`, whose stock CRI registry section is
//!   `config_path = "${SNAP_DATA}/args/certs.d"`, `SNAP_DATA=/var/snap/microk8s/current`
//!   (microk8s docs "How to work with a private registry"; not read in source).

use super::distro::{self, RegistriesYaml};
use super::view::{add_loaded, read_in_root, strip_root, RuntimeView, MAX_TRUST_FILE};
use super::{HostRoot, Runtime};
use crate::ca;
use crate::go::GoRuntime;
use crate::host::RegistryHost;
use crate::report::Problem;
use std::collections::{BTreeMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};

pub const STOCK_CONFIG: &str = "etc/containerd/config.toml";
pub const STOCK_CERTS_D: &str = "etc/containerd/certs.d";
pub const K3S_CONFIG: &str = "var/lib/rancher/k3s/agent/etc/containerd/config.toml";
pub const RKE2_CONFIG: &str = "var/lib/rancher/rke2/agent/etc/containerd/config.toml";
pub const MICROK8S_TEMPLATE: &str = "var/snap/microk8s/current/args/containerd-template.toml";
const MICROK8S_SNAP_DATA: &str = "/var/snap/microk8s/current";
/// containerd v2.2.0 `internal/cri/config/config_unix.go` `DefaultImageConfig`.
pub const BUILTIN_DEFAULT_V22: &str = "/etc/containerd/certs.d:/etc/docker/certs.d";
const MAX_CONFIG_BYTES: u64 = 4 << 20;
const MAX_TOML: u64 = 1 << 20;
/// Config files read for one pass (containerd has no limit; a loop is cut by `loaded`).
const MAX_CONFIG_FILES: usize = 64;
const CRI_V1: &str = "io.containerd.grpc.v1.cri";
const CRI_V2_IMAGES: &str = "io.containerd.cri.v1.images";

/// Which containerd this node runs, by the config file its daemon is started with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    Stock,
    K3s,
    Rke2,
    Microk8s,
}

impl Flavour {
    pub fn as_str(self) -> &'static str {
        match self {
            Flavour::Stock => "containerd",
            Flavour::K3s => "k3s",
            Flavour::Rke2 => "rke2",
            Flavour::Microk8s => "microk8s",
        }
    }

    pub fn config_file(self) -> &'static str {
        match self {
            Flavour::Stock => STOCK_CONFIG,
            Flavour::K3s => K3S_CONFIG,
            Flavour::Rke2 => RKE2_CONFIG,
            Flavour::Microk8s => MICROK8S_TEMPLATE,
        }
    }

    /// The certs.d dir this distribution's own config names (for fixes).
    fn usual_certs_d(self) -> &'static str {
        match self {
            Flavour::Stock => "/etc/containerd/certs.d",
            Flavour::K3s => "/var/lib/rancher/k3s/agent/etc/containerd/certs.d",
            Flavour::Rke2 => "/var/lib/rancher/rke2/agent/etc/containerd/certs.d",
            Flavour::Microk8s => "/var/snap/microk8s/current/args/certs.d",
        }
    }

    fn restart(self) -> &'static str {
        match self {
            Flavour::Stock => "restart containerd",
            Flavour::K3s => {
                "k3s regenerates this file: put it in config.toml.tmpl beside it and restart k3s"
            }
            Flavour::Rke2 => {
                "RKE2 regenerates this file: put it in config.toml.tmpl beside it and restart rke2"
            }
            Flavour::Microk8s => "restart microk8s (snap restart microk8s)",
        }
    }
}

/// Where the CRI plugin reads registry hosts, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hosts {
    /// `config_path` set: the roots, node paths, in order.
    Roots(Vec<String>),
    /// `config_path` unset: certs.d is ignored; 1.x honours `configs."<host>".tls.ca_file`.
    Unset { ca_files: BTreeMap<String, String> },
    /// No config file (stock): containerd's built-in defaults apply.
    NoConfig,
    /// A config file containerd would refuse (unreadable, not TOML, a missing import).
    Broken(String),
}

/// The node's containerd config, read once per pass.
#[derive(Debug, Clone)]
pub struct Config {
    pub flavour: Flavour,
    /// The main config file, relative to the host root.
    pub file: PathBuf,
    /// Every file read, the main one first (imports after), relative to the host root.
    pub files: Vec<PathBuf>,
    pub hosts: Hosts,
    /// k3s/RKE2 `registries.yaml`, when the distribution has one.
    pub registries: Option<RegistriesYaml>,
}

impl Config {
    pub fn read(root: &HostRoot) -> Config {
        let flavour = [Flavour::K3s, Flavour::Rke2, Flavour::Microk8s]
            .into_iter()
            .find(|f| root.is_file(Path::new(f.config_file())))
            .unwrap_or(Flavour::Stock);
        let file = PathBuf::from(flavour.config_file());
        let registries = distro::registries_yaml(root, flavour);
        let mut cfg = Config {
            flavour,
            file: file.clone(),
            files: Vec::new(),
            hosts: Hosts::NoConfig,
            registries,
        };
        if flavour == Flavour::Stock && !root.is_file(&file) && root.resolve(&file).is_err() {
            return cfg;
        }
        cfg.hosts = match load(root, flavour, &file, &mut cfg.files) {
            Ok(plugins) => hosts_from(&plugins),
            Err(why) => Hosts::Broken(why),
        };
        cfg
    }

    /// The root (relative to the host root) regtrust writes host dirs into: the first root
    /// of `config_path`, which containerd reads first.
    pub fn write_root(&self) -> Option<PathBuf> {
        match &self.hosts {
            Hosts::Roots(r) => r.first().map(|r| strip_root(Path::new(r))),
            Hosts::NoConfig => Some(PathBuf::from(STOCK_CERTS_D)),
            Hosts::Unset { .. } | Hosts::Broken(_) => None,
        }
    }

    pub fn is_broken(&self) -> bool {
        matches!(self.hosts, Hosts::Broken(_))
    }

    /// The registries.yaml section naming `host`, when the distribution owns it.
    pub fn distro_owner(&self, host: &RegistryHost) -> Option<&'static str> {
        self.registries.as_ref().and_then(|r| r.owner(host))
    }

    pub fn problems(&self, root: &HostRoot, hosts: &[RegistryHost]) -> Vec<Problem> {
        let source = root.display(&self.file).display().to_string();
        let fix = format!(
            "set config_path = \"{}\" under [plugins.\"{CRI_V1}\".registry] (containerd 1.x) or \
             [plugins.\"{CRI_V2_IMAGES}\".registry] (2.x), then {}",
            self.flavour.usual_certs_d(),
            self.flavour.restart()
        );
        let mut out = Vec::new();
        match &self.hosts {
            Hosts::Broken(why) => out.push(Problem::new(
                source,
                format!("containerd cannot use its config: {why}; regtrust writes and removes nothing for containerd until it can"),
            )),
            Hosts::Unset { .. } => out.push(Problem::new(
                source,
                format!(
                    "the CRI registry config_path is unset, so kubelet pulls ignore every certs.d dir and regtrust installs \
                     nothing for containerd; fix: {fix}"
                ),
            )),
            Hosts::NoConfig => out.push(Problem::new(
                source,
                format!(
                    "missing: containerd 2.2 and later then read {BUILTIN_DEFAULT_V22:?} (where regtrust installs), but 1.x, \
                     2.0 and 2.1 ignore every certs.d dir; fix: create it and {fix}"
                ),
            )),
            Hosts::Roots(roots) if roots.len() > 1 => out.push(Problem::new(
                source,
                format!(
                    "config_path = {:?} is a list: containerd 2.1/2.2 transfer-service pulls take it as one literal dir and \
                     silently ignore certs.d (containerd issues #12415, #12808); fix: set config_path to the one dir {:?}, then {}",
                    roots.join(":"),
                    roots[0],
                    self.flavour.restart()
                ),
            )),
            Hosts::Roots(_) => {}
        }
        if let Some(reg) = &self.registries {
            out.extend(reg.problems(root, hosts));
        }
        out
    }
    /// What containerd's CRI trusts for `host` (core/remotes/docker/config/hosts.go at
    /// v1.7.20 and v2.0.0, CRI `registryHosts`).
    /// `go` is containerd's Go: its `AppendCertsFromPEM` decides what a CA file loads.
    pub fn view(&self, root: &HostRoot, host: &RegistryHost, go: &GoRuntime) -> RuntimeView {
        view_with(self, root, host, go)
    }
}

fn view_with(
    cfg: &Config,
    host_root: &HostRoot,
    host: &RegistryHost,
    go: &GoRuntime,
) -> RuntimeView {
    let mut v = RuntimeView::new_as(Runtime::Containerd.as_str(), go);
    let shown = host_root.display(&cfg.file).display().to_string();
    let roots: Vec<String> = match &cfg.hosts {
        Hosts::Roots(r) => r.clone(),
        Hosts::NoConfig => {
            v.notes.push(format!(
                "{shown} is missing: assuming containerd 2.2's built-in config_path {BUILTIN_DEFAULT_V22:?} (1.x, 2.0 and 2.1 ignore certs.d without it)"
            ));
            BUILTIN_DEFAULT_V22.split(':').map(str::to_string).collect()
        }
        Hosts::Unset { ca_files } => {
            let ca_file = ca_files.get(host.as_str()).cloned();
            v.ignores_certs_d = true;
            v.notes.push(format!(
                "containerd's CRI registry config_path is unset in {shown}: kubelet pulls ignore certs.d and use the system roots"
            ));
            if let Some(f) = ca_file {
                load_ca_files(host_root, Path::new("/"), &[f], &mut v);
            }
            return v;
        }
        Hosts::Broken(why) => {
            v.fatal = Some(format!("containerd cannot use its config: {why}"));
            return v;
        }
    };
    let mut names = Vec::new();
    if let Some(port) = host.port() {
        let bare = &host.as_str()[..host.as_str().len() - port.len() - 1];
        names.push(format!("{bare}_{port}_"));
    }
    names.push(host.as_str().to_string());
    names.push("_default".to_string());
    // hostDirFromRoots: the first root that yields a dir wins; roots are not merged.
    let found = roots.iter().find_map(|root| {
        names.iter().find_map(|n| {
            let rel = strip_root(Path::new(root)).join(n);
            host_root.is_dir(&rel).then_some(rel)
        })
    });
    let Some(rel) = found else {
        return v;
    };
    v.dir = Some(host_root.display(&rel));
    let toml_rel = rel.join("hosts.toml");
    match read_in_root(host_root, &toml_rel, MAX_TOML) {
        Ok(bytes) if !bytes.is_empty() => match super::hosts_toml::cas_for(&bytes, host) {
            Ok(super::hosts_toml::HostsToml { cas, skip_verify }) => {
                v.skip_verify = skip_verify;
                let dir = Path::new("/").join(&rel);
                load_ca_files(host_root, &dir, &cas, &mut v);
                if cas.is_empty() && !skip_verify {
                    v.notes.push(format!(
                        "{}: names no CA for {host}, and with a hosts.toml containerd ignores loose *.crt files",
                        host_root.display(&toml_rel).display()
                    ));
                }
                return v;
            }
            Err(why) => {
                v.notes.push(format!(
                    "{}: {why}; containerd falls back to the loose *.crt files",
                    host_root.display(&toml_rel).display()
                ));
            }
        },
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            v.fatal = Some(format!(
                "{}: cannot read: {e}",
                host_root.display(&toml_rel).display()
            ));
            return v;
        }
    }
    // loadCertFiles: every non-dir `*.crt` is a CA file (a hard error if it loads
    // nothing); a `.cert` is a client certificate, with `<stem>.key` when present.
    let names = host_root.list(&rel).unwrap_or_default();
    let mut crt = Vec::new();
    for name in &names {
        let file_rel = rel.join(name);
        if host_root.is_dir(&file_rel) {
            continue;
        }
        if name.ends_with(".crt") {
            crt.push(name.clone());
        } else if let Some(stem) = name.strip_suffix(".cert") {
            if !names.contains(&format!("{stem}.key")) {
                v.fatal = Some(format!(
                    "failed to load X509 key pair {:?}: no {stem}.key beside it and no key inside it",
                    host_root.display(&file_rel).display().to_string()
                ));
                return v;
            }
        }
    }
    let dir = Path::new("/").join(&rel);
    load_ca_files(host_root, &dir, &crt, &mut v);
    v
}

/// Load containerd CA files (`ca` entries or loose `*.crt`): relative paths are relative to
/// the host dir; a file Go loads nothing from is `unable to load CA cert`.
fn load_ca_files(host_root: &HostRoot, dir: &Path, files: &[String], v: &mut RuntimeView) {
    let mut seen: HashSet<String> = v.host_cas.iter().map(|a| a.sha256.clone()).collect();
    for f in files {
        let node_path = if Path::new(f).is_absolute() {
            PathBuf::from(f)
        } else {
            dir.join(f)
        };
        let rel = strip_root(&node_path);
        let shown = host_root.display(&rel);
        match read_in_root(host_root, &rel, MAX_TRUST_FILE) {
            Ok(bytes) => {
                let loaded = ca::go_loadable_certs_as(&bytes, &v.go);
                if loaded.is_empty() {
                    v.fatal = Some(format!(
                        "unable to load CA cert {:?}",
                        node_path.display().to_string()
                    ));
                    return;
                }
                add_loaded(&mut v.host_cas, &mut seen, loaded, &shown, &v.go);
            }
            Err(e) => {
                v.fatal = Some(format!(
                    "unable to read CA cert {:?}: {e}",
                    node_path.display().to_string()
                ));
                return;
            }
        }
    }
}

type Plugins = BTreeMap<String, toml::Value>;

/// Read the main config and its imports as containerd's `LoadConfig` does; the merged
/// `[plugins]` tables, each the last file's that defines it.
fn load(
    root: &HostRoot,
    flavour: Flavour,
    main: &Path,
    files: &mut Vec<PathBuf>,
) -> Result<Plugins, String> {
    let mut plugins = Plugins::new();
    let mut loaded: HashSet<PathBuf> = HashSet::new();
    let mut pending = vec![main.to_path_buf()];
    while !pending.is_empty() {
        let rel = pending.remove(0);
        if !loaded.insert(rel.clone()) {
            continue;
        }
        if loaded.len() > MAX_CONFIG_FILES {
            return Err(format!(
                "more than {MAX_CONFIG_FILES} config files through imports"
            ));
        }
        let shown = root.display(&rel).display().to_string();
        let bytes = root
            .read(&rel, MAX_CONFIG_BYTES)
            .map_err(|e| format!("{shown}: cannot read: {e}"))?;
        let mut text = String::from_utf8(bytes).map_err(|_| format!("{shown}: not UTF-8"))?;
        if flavour == Flavour::Microk8s {
            text = text.replace("${SNAP_DATA}", MICROK8S_SNAP_DATA);
        }
        let doc: toml::Table = toml::from_str(&text)
            .map_err(|e| format!("{shown}: does not parse as TOML: {}", e.message().trim()))?;
        files.push(rel.clone());
        let version = doc.get("version").and_then(|v| v.as_integer()).unwrap_or(1);
        if let Some(toml::Value::Table(p)) = doc.get("plugins") {
            for (name, table) in p {
                // Version 1 configs use short plugin names (`MigrateConfigTo`).
                let name = if version < 2 && name == "cri" {
                    CRI_V1
                } else {
                    name.as_str()
                };
                plugins.insert(name.to_string(), table.clone());
            }
        }
        let imports = match doc.get("imports") {
            None => Vec::new(),
            Some(toml::Value::Array(a)) => a
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| format!("{shown}: an `imports` entry is not a string"))
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err(format!("{shown}: `imports` is not a list")),
        };
        let node_dir = Path::new("/").join(&rel);
        let node_dir = node_dir.parent().unwrap_or(Path::new("/"));
        for import in imports {
            let p = Path::new(&import);
            let abs = if p.is_absolute() {
                p.to_path_buf()
            } else {
                node_dir.join(p)
            };
            let rel_import = strip_root(&abs);
            if import.contains('*') {
                pending.extend(glob_in_root(root, &rel_import));
            } else {
                if !root.is_file(&rel_import) {
                    return Err(format!(
                        "{shown}: imports {import:?}, which is not a file at {}",
                        root.display(&rel_import).display()
                    ));
                }
                pending.push(rel_import);
            }
        }
    }
    Ok(plugins)
}

/// `filepath.Glob` inside the host root: each component with `*`, `?` or `[` matched
/// against the names listed there, in name order.
fn glob_in_root(root: &HostRoot, pattern: &Path) -> Vec<PathBuf> {
    let mut found = vec![PathBuf::new()];
    for part in pattern.iter() {
        let part = part.to_string_lossy();
        let mut next = Vec::new();
        for base in &found {
            if part.contains(['*', '?', '[']) {
                let Ok(pat) = glob::Pattern::new(&part) else {
                    return Vec::new();
                };
                for name in root.list(base).unwrap_or_default() {
                    if pat.matches(&name) {
                        next.push(base.join(name));
                    }
                }
            } else {
                next.push(base.join(&*part));
            }
        }
        found = next;
    }
    found.into_iter().filter(|p| root.is_file(p)).collect()
}

fn hosts_from(plugins: &Plugins) -> Hosts {
    let registry = |plugin: &str| plugins.get(plugin).and_then(|p| p.get("registry"));
    for plugin in [CRI_V2_IMAGES, CRI_V1] {
        if let Some(toml::Value::String(s)) = registry(plugin).and_then(|r| r.get("config_path")) {
            let roots: Vec<String> = s
                .split(':')
                .filter(|r| !r.is_empty())
                .map(str::to_string)
                .collect();
            if !roots.is_empty() {
                return Hosts::Roots(roots);
            }
        }
    }
    let mut ca_files = BTreeMap::new();
    if let Some(toml::Value::Table(configs)) = registry(CRI_V1).and_then(|r| r.get("configs")) {
        for (host, c) in configs {
            if let Some(f) = c
                .get("tls")
                .and_then(|t| t.get("ca_file"))
                .and_then(|f| f.as_str())
            {
                if !f.is_empty() {
                    ca_files.insert(host.clone(), f.to_string());
                }
            }
        }
    }
    Hosts::Unset { ca_files }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::view::tests::{pem, root_with, sha_of};
    use std::fs;

    const CRI_ON: &str = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d\"\n";

    fn read(files: &[(&str, &str)]) -> (tempfile::TempDir, Config) {
        let root = root_with(files);
        let cfg = Config::read(&HostRoot::new(root.path()));
        (root, cfg)
    }

    #[test]
    fn each_distribution_and_import_is_followed() {
        let roots = |v: &[&str]| Hosts::Roots(v.iter().map(|s| s.to_string()).collect());
        type Case<'a> = (
            &'a str,
            Vec<(&'a str, &'a str)>,
            Flavour,
            Hosts,
            Option<&'a str>,
        );
        let cases: Vec<Case> = vec![
            ("stock 1.x", vec![(STOCK_CONFIG, CRI_ON)], Flavour::Stock, roots(&["/etc/containerd/certs.d"]), Some("etc/containerd/certs.d")),
            (
                "stock 2.x custom root",
                vec![(STOCK_CONFIG, "version = 3\n[plugins.'io.containerd.cri.v1.images'.registry]\n  config_path = '/etc/containerd/hosts.d'\n")],
                Flavour::Stock,
                roots(&["/etc/containerd/hosts.d"]),
                Some("etc/containerd/hosts.d"),
            ),
            (
                "version 1 short plugin name",
                vec![(STOCK_CONFIG, "[plugins.cri.registry]\n  config_path = \"/etc/containerd/certs.d\"\n")],
                Flavour::Stock,
                roots(&["/etc/containerd/certs.d"]),
                Some("etc/containerd/certs.d"),
            ),
            (
                "config_path only in an imports drop-in (relative glob)",
                vec![
                    (STOCK_CONFIG, "version = 2\nimports = [\"conf.d/*.toml\"]\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"x\"\n"),
                    ("etc/containerd/conf.d/10-other.toml", "version = 2\n"),
                    ("etc/containerd/conf.d/50-registry.toml", "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/srv/hosts\"\n"),
                    ("etc/containerd/conf.d/README", "not toml ["),
                ],
                Flavour::Stock,
                roots(&["/srv/hosts"]),
                Some("srv/hosts"),
            ),
            (
                // A later file's plugin table replaces the earlier one whole.
                "an import's plugin table replaces the main file's",
                vec![
                    (STOCK_CONFIG, "version = 2\nimports = [\"/etc/containerd/override.toml\"]\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d\"\n"),
                    ("etc/containerd/override.toml", "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"x\"\n"),
                ],
                Flavour::Stock,
                Hosts::Unset { ca_files: BTreeMap::new() },
                None,
            ),
            (
                "a missing import stops containerd",
                vec![(STOCK_CONFIG, "version = 2\nimports = [\"/etc/containerd/gone.toml\"]\n")],
                Flavour::Stock,
                Hosts::Broken(String::new()),
                None,
            ),
            (
                "k3s",
                vec![
                    (STOCK_CONFIG, CRI_ON),
                    (K3S_CONFIG, "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/var/lib/rancher/k3s/agent/etc/containerd/certs.d\"\n"),
                ],
                Flavour::K3s,
                roots(&["/var/lib/rancher/k3s/agent/etc/containerd/certs.d"]),
                Some("var/lib/rancher/k3s/agent/etc/containerd/certs.d"),
            ),
            (
                "rke2",
                vec![(RKE2_CONFIG, "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/var/lib/rancher/rke2/agent/etc/containerd/certs.d\"\n")],
                Flavour::Rke2,
                roots(&["/var/lib/rancher/rke2/agent/etc/containerd/certs.d"]),
                Some("var/lib/rancher/rke2/agent/etc/containerd/certs.d"),
            ),
            (
                "microk8s resolves ${SNAP_DATA}",
                vec![(MICROK8S_TEMPLATE, "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"${SNAP_DATA}/args/certs.d\"\n")],
                Flavour::Microk8s,
                roots(&["/var/snap/microk8s/current/args/certs.d"]),
                Some("var/snap/microk8s/current/args/certs.d"),
            ),
            ("no config: 2.2's default", vec![], Flavour::Stock, Hosts::NoConfig, Some("etc/containerd/certs.d")),
            (
                "unset with a legacy ca_file",
                vec![(STOCK_CONFIG, "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"h:5000\".tls]\n  ca_file = \"/etc/pki/h.pem\"\n")],
                Flavour::Stock,
                Hosts::Unset { ca_files: BTreeMap::from([("h:5000".to_string(), "/etc/pki/h.pem".to_string())]) },
                None,
            ),
            ("garbage", vec![(STOCK_CONFIG, "[[[")], Flavour::Stock, Hosts::Broken(String::new()), None),
        ];
        for (name, files, flavour, hosts, write_root) in cases {
            let (_root, cfg) = read(&files);
            assert_eq!(cfg.flavour, flavour, "{name}");
            match (&cfg.hosts, &hosts) {
                (Hosts::Broken(_), Hosts::Broken(_)) => {}
                (got, want) => assert_eq!(got, want, "{name}"),
            }
            assert_eq!(cfg.write_root(), write_root.map(PathBuf::from), "{name}");
        }
    }

    #[test]
    fn config_problems_name_the_file_and_the_fix() {
        let h = [RegistryHost::parse("h:5000").unwrap()];
        type Case<'a> = (Vec<(&'a str, &'a str)>, Option<&'a str>);
        let cases: Vec<Case> = vec![
            (vec![(STOCK_CONFIG, CRI_ON)], None),
            (vec![(STOCK_CONFIG, "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"\"\n")], Some("config_path is unset")),
            (vec![(STOCK_CONFIG, "version = 2\n")], Some("installs nothing for containerd")),
            (vec![(STOCK_CONFIG, "version = 3\n[plugins.'io.containerd.cri.v1.images'.registry]\n  config_path = '/etc/containerd/certs.d:/etc/docker/certs.d'\n")], Some("is a list")),
            (vec![(STOCK_CONFIG, "version = [[[")], Some("does not parse")),
            (vec![], Some("missing: containerd 2.2 and later")),
            (vec![(K3S_CONFIG, "version = 2\n")], Some("config.toml.tmpl")),
        ];
        for (files, want) in cases {
            let root = root_with(&files);
            let r = HostRoot::new(root.path());
            let got = Config::read(&r).problems(&r, &h);
            match want {
                None => assert!(got.is_empty(), "{files:?}: {got:?}"),
                Some(w) => assert!(
                    got.len() == 1
                        && got[0].message.contains(w)
                        && got[0].source.ends_with("config.toml"),
                    "{files:?}: {got:?}"
                ),
            }
        }
    }

    #[test]
    fn hostile_configs_and_imports() {
        // An import cycle is read once per file, as containerd's `loaded` set does.
        let (_r, cfg) = read(&[
            (STOCK_CONFIG, "version = 2\nimports = [\"/etc/containerd/a.toml\"]\n"),
            ("etc/containerd/a.toml", "version = 2\nimports = [\"config.toml\"]\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/x\"\n"),
        ]);
        assert_eq!(cfg.hosts, Hosts::Roots(vec!["/x".into()]));
        assert_eq!(cfg.files.len(), 2);
        // `..` never climbs out of the host root: the import is looked up inside it.
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("evil.toml"), "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/evil\"\n").unwrap();
        let up = format!(
            "../../../../../../../..{}/evil.toml",
            outside.path().display()
        );
        let (_r, cfg) = read(&[(STOCK_CONFIG, &format!("version = 2\nimports = [{up:?}]\n"))]);
        assert!(
            matches!(&cfg.hosts, Hosts::Broken(w) if w.contains("not a file")),
            "{cfg:?}"
        );
        // Wrong types and huge files are errors naming the file, never a panic.
        for text in [
            "imports = 5\n",
            "imports = [5]\n",
            "version = 2\n[plugins]\ncri = 5\n",
        ] {
            let (_r, cfg) = read(&[(STOCK_CONFIG, text)]);
            assert!(!matches!(cfg.hosts, Hosts::Roots(_)), "{text}: {cfg:?}");
        }
        let root = root_with(&[("etc/containerd/", "")]);
        fs::File::create(root.path().join(STOCK_CONFIG))
            .unwrap()
            .set_len(MAX_CONFIG_BYTES + 1)
            .unwrap();
        let cfg = Config::read(&HostRoot::new(root.path()));
        assert!(
            matches!(&cfg.hosts, Hosts::Broken(w) if w.contains("config.toml") && w.contains("more than")),
            "{cfg:?}"
        );
    }

    /// A FIFO where the config should be must never block a sync.
    #[test]
    fn a_fifo_config_never_blocks() {
        let root = root_with(&[("etc/containerd/", "")]);
        let ok = std::process::Command::new("mkfifo")
            .arg(root.path().join(STOCK_CONFIG))
            .status()
            .unwrap()
            .success();
        assert!(ok);
        let cfg = Config::read(&HostRoot::new(root.path()));
        assert!(
            matches!(&cfg.hosts, Hosts::Broken(w) if w.contains("not a regular file")),
            "{cfg:?}"
        );
    }

    #[test]
    fn containerd_follows_config_path_and_hosts_toml() {
        let (a, b, c) = (pem("a"), pem("b"), pem("c"));
        let h = RegistryHost::parse("h:5000").unwrap();
        let d = "etc/containerd/certs.d";
        type Files = Vec<(String, String)>;
        let cfg = |extra: Files| {
            let mut v = vec![(STOCK_CONFIG.to_string(), CRI_ON.to_string())];
            v.extend(extra);
            v
        };
        type Case<'a> = (&'a str, Files, Vec<String>, Option<&'a str>, bool, bool);
        let cases: Vec<Case> = vec![
            (
                "config_path unset, 1.x ca_file honoured",
                vec![
                    (STOCK_CONFIG.into(), "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"h:5000\".tls]\n  ca_file = \"/etc/pki/h.pem\"\n".to_string()),
                    ("etc/pki/h.pem".into(), b.clone()),
                    (format!("{d}/h:5000/ca.crt"), a.clone()),
                ],
                vec![sha_of(&b)], None, true, false,
            ),
            ("loose ca.crt", cfg(vec![(format!("{d}/h:5000/ca.crt"), a.clone())]), vec![sha_of(&a)], None, false, false),
            (
                "h_5000_ shadows h:5000",
                cfg(vec![(format!("{d}/h:5000/ca.crt"), a.clone()), (format!("{d}/h_5000_/ca.crt"), b.clone())]),
                vec![sha_of(&b)], None, false, false,
            ),
            ("_default", cfg(vec![(format!("{d}/_default/ca.crt"), c.clone())]), vec![sha_of(&c)], None, false, false),
            (
                "hosts.toml ca entries only; loose crt ignored",
                cfg(vec![
                    (format!("{d}/h:5000/hosts.toml"), "server = \"https://h:5000\"\n[host.\"https://h:5000\"]\n  ca = [\"mine.pem\", \"/etc/abs.pem\"]\n".into()),
                    (format!("{d}/h:5000/mine.pem"), b.clone()),
                    ("etc/abs.pem".into(), c.clone()),
                    (format!("{d}/h:5000/ca.crt"), a.clone()),
                ]),
                vec![sha_of(&b), sha_of(&c)], None, false, false,
            ),
            (
                "hosts.toml without [host]: 1.x falls back to loose files",
                cfg(vec![
                    (format!("{d}/h:5000/hosts.toml"), "server = \"https://h:5000\"\nca = \"other.pem\"\n".into()),
                    (format!("{d}/h:5000/ca.crt"), a.clone()),
                ]),
                vec![sha_of(&a)], None, false, false,
            ),
            (
                "a loose crt that loads nothing fails the host",
                cfg(vec![(format!("{d}/h:5000/ca.crt"), a.clone()), (format!("{d}/h:5000/junk.crt"), "junk".into())]),
                vec![], Some("unable to load CA cert \"/etc/containerd/certs.d/h:5000/junk.crt\""), false, false,
            ),
            (
                "a listed ca that is missing fails the host",
                cfg(vec![(format!("{d}/h:5000/hosts.toml"), "[host.\"https://h:5000\"]\n  ca = \"nope.crt\"\n".into())]),
                vec![], Some("unable to read CA cert \"/etc/containerd/certs.d/h:5000/nope.crt\""), false, false,
            ),
            ("broken config.toml", vec![(STOCK_CONFIG.into(), "[[[".into())], vec![], Some("containerd cannot use its config"), false, false),
            (
                "skip_verify",
                cfg(vec![(format!("{d}/h:5000/hosts.toml"), "[host.\"https://h:5000\"]\n  skip_verify = true\n".into())]),
                vec![], None, false, true,
            ),
            (
                "a custom root",
                vec![
                    (STOCK_CONFIG.into(), "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/hosts.d\"\n".into()),
                    (format!("{d}/h:5000/ca.crt"), a.clone()),
                    ("etc/containerd/hosts.d/h:5000/ca.crt".into(), b.clone()),
                ],
                vec![sha_of(&b)], None, false, false,
            ),
        ];
        for (name, files, want, fatal, ignores, skip) in cases {
            let refs: Vec<(&str, &str)> = files
                .iter()
                .map(|(p, x)| (p.as_str(), x.as_str()))
                .collect();
            let root = root_with(&refs);
            let r = HostRoot::new(root.path());
            let v = Config::read(&r).view(&r, &h, &GoRuntime::default());
            match fatal {
                Some(f) => assert!(
                    v.fatal.as_deref().is_some_and(|x| x.starts_with(f)),
                    "{name}: {:?}",
                    v.fatal
                ),
                None => {
                    assert_eq!(v.fatal, None, "{name}");
                    assert_eq!(
                        v.host_cas
                            .iter()
                            .map(|a| a.sha256.clone())
                            .collect::<Vec<_>>(),
                        want,
                        "{name}"
                    );
                }
            }
            assert_eq!(v.ignores_certs_d, ignores, "{name}");
            assert_eq!(v.skip_verify, skip, "{name}");
        }
    }
}
