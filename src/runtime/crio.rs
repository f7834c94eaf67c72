//! CRI-O (containers/image, as podman and skopeo): where it reads a registry's CA and what
//! in its config changes that.
//! - The first **existing** of `$HOME/.config/containers/certs.d/<host>` (root's home for
//!   CRI-O), `/etc/containers/certs.d/<host>`, `/etc/docker/certs.d/<host>`: no merging, an
//!   empty dir shadows the rest (containers/image v5.24.0 `docker/docker_client.go`
//!   `dockerCertDir`); `*.crt` / `*.cert` / `*.key` as Docker reads them
//!   (`pkg/tlsclientconfig/tlsclientconfig.go` `SetupCertificates`).
//! - `/etc/containers/registries.conf` and `registries.conf.d/*.conf` (containers/image
//!   v5.24.0 `pkg/sysregistriesv2/system_registries_v2.go`; drop-ins in name order):
//!   `insecure = true` turns verification off for that registry, and mirrors are pulled
//!   from first, each verified with the mirror's own certs.d dir. Both are reported.
//! - `/etc/crio/crio.conf` and `crio.conf.d/*` (in name order, CRI-O v1.28
//!   `pkg/config/config.go` `UpdateFromDropInFiles`): `[crio.image] insecure_registries`
//!   turns verification off for those registries too; reported.
//!
//! Read-only: the writer asks `Node::trust_root`.

use super::docker::{read_docker_style, DockerFlavour, CERTS_D as DOCKER_CERTS_D};
use super::view::RuntimeView;
use super::HostRoot;
use crate::go::GoRuntime;
use crate::host::RegistryHost;
use crate::report::Problem;
use std::path::{Path, PathBuf};

pub const CERTS_D: &str = "etc/containers/certs.d";
/// Root's own dir, read first by CRI-O running as root.
pub const HOME_CERTS_D: &str = "root/.config/containers/certs.d";
pub const REGISTRIES_CONF: &str = "etc/containers/registries.conf";
pub const REGISTRIES_CONF_D: &str = "etc/containers/registries.conf.d";
pub const CRIO_CONF: &str = "etc/crio/crio.conf";
pub const CRIO_CONF_D: &str = "etc/crio/crio.conf.d";
const MAX_CONF: u64 = 1 << 20;

/// One `[[registry]]` entry (or a v1 `[registries.insecure]` name) as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The file it is in, relative to the host root.
    pub file: PathBuf,
    /// `prefix`, else `location`, as written.
    pub prefix: String,
    pub location: Option<String>,
    pub insecure: bool,
    /// Mirror locations, with their own `insecure`.
    pub mirrors: Vec<(String, bool)>,
}

/// What registries.conf(.d) say.
#[derive(Debug, Default)]
pub struct Config {
    pub entries: Vec<Entry>,
    /// Files that could not be read or parsed, with why.
    pub broken: Vec<(PathBuf, String)>,
}

impl Config {
    pub fn read(root: &HostRoot) -> Config {
        let mut out = Config::default();
        let mut files = vec![PathBuf::from(REGISTRIES_CONF)];
        if let Ok(names) = root.list(Path::new(REGISTRIES_CONF_D)) {
            files.extend(
                names
                    .iter()
                    .filter(|n| n.ends_with(".conf"))
                    .map(|n| Path::new(REGISTRIES_CONF_D).join(n)),
            );
        }
        let mut crio_files = vec![PathBuf::from(CRIO_CONF)];
        if let Ok(names) = root.list(Path::new(CRIO_CONF_D)) {
            crio_files.extend(names.iter().map(|n| Path::new(CRIO_CONF_D).join(n)));
        }
        for file in crio_files {
            let bytes = match root.read(&file, MAX_CONF) {
                Ok(b) => b,
                Err(super::root::ReadError::Missing) => continue,
                Err(e) => {
                    out.broken.push((file, format!("cannot read: {e}")));
                    continue;
                }
            };
            match parse_crio_conf(&bytes, &file) {
                Ok(entries) => out.entries.extend(entries),
                Err(why) => out.broken.push((file, why)),
            }
        }
        for file in files {
            let bytes = match root.read(&file, MAX_CONF) {
                Ok(b) => b,
                Err(super::root::ReadError::Missing) => continue,
                Err(e) => {
                    out.broken.push((file, format!("cannot read: {e}")));
                    continue;
                }
            };
            match parse(&bytes, &file) {
                Ok(entries) => out.entries.extend(entries),
                Err(why) => out.broken.push((file, why)),
            }
        }
        out
    }

    /// The entries that apply to pulls from `host` (longest prefix first is not needed to
    /// report: every matching entry is named).
    pub fn entries_for(&self, host: &RegistryHost) -> Vec<&Entry> {
        self.entries
            .iter()
            .filter(|e| prefix_matches(&e.prefix, host))
            .collect()
    }

    pub fn problems(&self, root: &HostRoot, hosts: &[RegistryHost]) -> Vec<Problem> {
        let mut out = Vec::new();
        for (file, why) in &self.broken {
            out.push(Problem::new(
                root.display(file).display().to_string(),
                format!("{why}; CRI-O will not start with it"),
            ));
        }
        for host in hosts {
            for e in self.entries_for(host) {
                let source = root.display(&e.file).display().to_string();
                if e.insecure {
                    let (what, fix) = if e.file.starts_with("etc/crio") {
                        (
                            "is in [crio.image] insecure_registries",
                            "remove it from insecure_registries and restart CRI-O",
                        )
                    } else {
                        ("has insecure = true", "remove insecure = true")
                    };
                    out.push(Problem::new(
                        source.clone(),
                        format!(
                            "registry {:?} {what}: CRI-O (containers/image) does not verify TLS for {host} at all, so \
                             the CA regtrust installs is never used and any server is accepted; fix: {fix}",
                            e.prefix
                        ),
                    ));
                }
                if let Some(loc) = e
                    .location
                    .as_deref()
                    .filter(|l| host_of(l) != host_of(&e.prefix))
                {
                    out.push(Problem::new(
                        source.clone(),
                        format!(
                            "registry {:?} pulls {host} from location {loc:?}: CRI-O verifies that host with its own \
                             certs.d dir ({}/{}); fix: manage {} with regtrust too (add it to --registry or the pull secret)",
                            e.prefix,
                            CERTS_D,
                            host_of(loc),
                            host_of(loc)
                        ),
                    ));
                }
                for (m, insecure) in &e.mirrors {
                    out.push(Problem::new(
                        source.clone(),
                        format!(
                            "CRI-O tries mirror {m:?} before {host}{}: it is verified with its own certs.d dir \
                             (/{CERTS_D}/{}), not {host}'s; fix: manage {} with regtrust too, or remove the mirror",
                            if *insecure { " without verifying TLS (insecure = true)" } else { "" },
                            host_of(m),
                            host_of(m)
                        ),
                    ));
                }
            }
        }
        out
    }
}

/// `harbor.local:8443/library` -> `harbor.local:8443`.
fn host_of(s: &str) -> &str {
    s.split('/').next().unwrap_or(s)
}

/// A `prefix` names a host (and maybe a path under it), or `*.domain` for its subdomains.
fn prefix_matches(prefix: &str, host: &RegistryHost) -> bool {
    let h = host_of(prefix);
    if let Some(domain) = h.strip_prefix("*.") {
        return host
            .name()
            .to_ascii_lowercase()
            .ends_with(&format!(".{}", domain.to_ascii_lowercase()));
    }
    host.dir_names().iter().any(|d| d.eq_ignore_ascii_case(h))
        || h.eq_ignore_ascii_case(host.as_str())
}

/// Parse one registries.conf: v2 `[[registry]]` tables and v1 `[registries.insecure]`.
fn parse(bytes: &[u8], file: &Path) -> Result<Vec<Entry>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?;
    let doc: toml::Table = toml::from_str(text)
        .map_err(|e| format!("does not parse as TOML: {}", e.message().trim()))?;
    let mut out = Vec::new();
    if let Some(regs) = doc.get("registry") {
        let toml::Value::Array(regs) = regs else {
            return Err("`registry` is not a list of [[registry]] tables".into());
        };
        for r in regs {
            let toml::Value::Table(t) = r else {
                return Err("a [[registry]] entry is not a table".into());
            };
            // containers/image decodes registries.conf into typed structs
            // (pkg/sysregistriesv2: Prefix, Location string; Insecure bool; Mirrors
            // []Endpoint): a field of another type fails the decode, and CRI-O with it.
            let s = |t: &toml::Table, k: &str| match t.get(k) {
                None => Ok(None),
                Some(toml::Value::String(v)) => Ok(Some(v.clone())),
                Some(_) => Err(format!("`{k}` of a [[registry]] entry is not a string")),
            };
            let b = |t: &toml::Table, k: &str| match t.get(k) {
                None => Ok(false),
                Some(toml::Value::Boolean(v)) => Ok(*v),
                Some(_) => Err(format!(
                    "`{k}` of a [[registry]] entry is not true or false"
                )),
            };
            let location = s(t, "location")?.filter(|l| !l.is_empty());
            let prefix = s(t, "prefix")?.filter(|p| !p.is_empty());
            let insecure = b(t, "insecure")?;
            let mut mirrors = Vec::new();
            match t.get("mirror") {
                None => {}
                Some(toml::Value::Array(ms)) => {
                    for m in ms {
                        let toml::Value::Table(m) = m else {
                            return Err("a [[registry.mirror]] entry is not a table".into());
                        };
                        if let Some(loc) = s(m, "location")? {
                            mirrors.push((loc, b(m, "insecure")?));
                        }
                    }
                }
                Some(_) => {
                    return Err("`mirror` is not a list of [[registry.mirror]] tables".into())
                }
            }
            let Some(prefix) = prefix.or_else(|| location.clone()) else {
                continue;
            };
            out.push(Entry {
                file: file.to_path_buf(),
                prefix,
                location,
                insecure,
                mirrors,
            });
        }
    }
    // v1 format: [registries.insecure] registries = ["h:5000"].
    if let Some(names) = doc
        .get("registries")
        .and_then(|r| r.get("insecure"))
        .and_then(|i| i.get("registries"))
        .and_then(|r| r.as_array())
    {
        for n in names.iter().filter_map(|n| n.as_str()) {
            out.push(Entry {
                file: file.to_path_buf(),
                prefix: n.to_string(),
                location: None,
                insecure: true,
                mirrors: Vec::new(),
            });
        }
    }
    Ok(out)
}

/// `[crio.image] insecure_registries` of one crio.conf (or drop-in), as insecure entries.
fn parse_crio_conf(bytes: &[u8], file: &Path) -> Result<Vec<Entry>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?;
    let doc: toml::Table = toml::from_str(text)
        .map_err(|e| format!("does not parse as TOML: {}", e.message().trim()))?;
    let Some(list) = doc
        .get("crio")
        .and_then(|c| c.get("image"))
        .and_then(|i| i.get("insecure_registries"))
    else {
        return Ok(Vec::new());
    };
    let toml::Value::Array(list) = list else {
        return Err("`crio.image.insecure_registries` is not a list".into());
    };
    // CRI-O decodes it as []string (pkg/config: ImageConfig.InsecureRegistries): any
    // other item fails the decode, and CRI-O's start with it.
    list.iter()
        .map(|v| match v.as_str() {
            Some(n) => Ok(Entry {
                file: file.to_path_buf(),
                prefix: n.to_string(),
                location: None,
                insecure: true,
                mirrors: Vec::new(),
            }),
            None => Err("an item of `crio.image.insecure_registries` is not a string".into()),
        })
        .collect()
}

/// What CRI-O trusts for `host`: the first existing dir wins, no merging.
pub fn view(root: &HostRoot, host: &RegistryHost, go: &GoRuntime) -> RuntimeView {
    let mut v = RuntimeView::new_as(super::Runtime::Crio.as_str(), go);
    let candidates = [
        Path::new(HOME_CERTS_D).join(host.as_str()),
        Path::new(CERTS_D).join(host.as_str()),
        Path::new(DOCKER_CERTS_D).join(host.as_str()),
    ];
    let Some(rel) = candidates.iter().find(|r| root.is_dir(r)) else {
        return v;
    };
    v.dir = Some(root.display(rel));
    read_docker_style(root, rel, &mut v, DockerFlavour::ContainersImage);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::view::tests::{pem, root_with, sha_of};
    use std::fs;

    fn shas(v: &RuntimeView) -> Vec<String> {
        v.host_cas.iter().map(|a| a.sha256.clone()).collect()
    }

    #[test]
    fn crio_takes_the_first_existing_dir() {
        let (a, b) = (pem("a"), pem("b"));
        let h = RegistryHost::parse("h:5000").unwrap();
        let root = root_with(&[
            ("root/.config/containers/certs.d/h:5000/", ""),
            ("etc/containers/certs.d/h:5000/ca.crt", &a),
        ]);
        let v = view(&HostRoot::new(root.path()), &h, &GoRuntime::default());
        assert!(v.host_cas.is_empty());
        assert!(v
            .dir
            .unwrap()
            .ends_with("root/.config/containers/certs.d/h:5000"));
        let root = root_with(&[
            ("etc/containers/certs.d/h:5000/ca.crt", &a),
            ("etc/docker/certs.d/h:5000/ca.crt", &b),
        ]);
        assert_eq!(
            shas(&view(
                &HostRoot::new(root.path()),
                &h,
                &GoRuntime::default()
            )),
            [sha_of(&a)]
        );
        let root = root_with(&[("etc/docker/certs.d/h:5000/ca.crt", &b)]);
        assert_eq!(
            shas(&view(
                &HostRoot::new(root.path()),
                &h,
                &GoRuntime::default()
            )),
            [sha_of(&b)]
        );
        let other = view(
            &HostRoot::new(root.path()),
            &RegistryHost::parse("other").unwrap(),
            &GoRuntime::default(),
        );
        assert!(other.dir.is_none() && other.host_cas.is_empty() && other.fatal.is_none());
        let root = root_with(&[("etc/containers/certs.d/h:5000/ca.key", "k")]);
        assert_eq!(
            view(&HostRoot::new(root.path()), &h, &GoRuntime::default())
                .fatal
                .as_deref(),
            Some("missing client certificate ca.cert for key ca.key")
        );
    }

    /// Hostile registries.conf and crio.conf files: each is one problem naming the file,
    /// never a panic, a hang or a read past the cap; the other files still count.
    #[test]
    fn hostile_registries_conf() {
        let h = RegistryHost::parse("h:5000").unwrap();
        let huge = format!("# {}\n", "x".repeat(MAX_CONF as usize));
        let deep = format!("registry = {}{}", "[".repeat(5_000), "]".repeat(5_000));
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("registries.conf");
        fs::write(
            &target,
            "[[registry]]\nlocation = \"h:5000\"\ninsecure = true\n",
        )
        .unwrap();
        let link = format!("->{}", target.display());
        let insecure = "[[registry]]\nlocation = \"h:5000\"\ninsecure = true\n";
        // (file, content, problems about that file). A link out of the host root is
        // re-rooted under it, as the node sees the absolute path: dangling there, so absent,
        // as containers/image treats a missing registries.conf.
        let cases: Vec<(&str, &str, usize)> = vec![
            (REGISTRIES_CONF, huge.as_str(), 1),
            (REGISTRIES_CONF, deep.as_str(), 1),
            (REGISTRIES_CONF, "location = \"\u{0}\"\n\u{0}\u{0}", 1),
            (REGISTRIES_CONF, "[[registry]]\nlocation = 1e999999\n", 1),
            (REGISTRIES_CONF, "[[registry]]\nlocation = 5\n", 1),
            (
                REGISTRIES_CONF,
                "[[registry]]\n[[registry.mirror]]\nlocation = [[]]\n",
                1,
            ),
            (
                REGISTRIES_CONF,
                "[[registry]]\nlocation = \"h:5000\"\nmirror = 3\n",
                1,
            ),
            (REGISTRIES_CONF, link.as_str(), 0),
            (CRIO_CONF, deep.as_str(), 1),
            (
                CRIO_CONF,
                "[crio.image]\ninsecure_registries = [1, {a = 2}]\n",
                1,
            ),
        ];
        for (file, content, problems) in cases {
            let shown = &content[..content.len().min(40)];
            // A good drop-in beside the hostile file: still read, still reported.
            let root = root_with(&[
                (file, content),
                ("etc/containers/registries.conf.d/90-ok.conf", insecure),
            ]);
            let r = HostRoot::new(root.path());
            let got = Config::read(&r).problems(&r, std::slice::from_ref(&h));
            let about_file: Vec<_> = got.iter().filter(|p| p.source.ends_with(file)).collect();
            assert_eq!(about_file.len(), problems, "{file} {shown:?}: {got:#?}");
            assert!(
                got.iter()
                    .any(|p| p.source.ends_with("90-ok.conf") && p.message.contains("insecure")),
                "{file} {shown:?}: the good drop-in is lost: {got:#?}"
            );
            assert!(
                !about_file
                    .iter()
                    .any(|p| p.message.contains("insecure = true")),
                "{file} {shown:?}: read through the link or past the cap: {got:#?}"
            );
        }
    }

    #[test]
    fn registries_conf_mirrors_and_insecure_are_reported() {
        let h = RegistryHost::parse("h:5000").unwrap();
        type Case<'a> = (Vec<(&'a str, &'a str)>, Vec<&'a str>);
        let cases: Vec<Case> = vec![
            (vec![(REGISTRIES_CONF, "unqualified-search-registries = [\"docker.io\"]\n")], vec![]),
            (
                vec![(REGISTRIES_CONF, "[[registry]]\nlocation = \"h:5000\"\ninsecure = true\n")],
                vec!["insecure = true"],
            ),
            (
                vec![(
                    "etc/containers/registries.conf.d/50-mirror.conf",
                    "[[registry]]\nprefix = \"h:5000/library\"\nlocation = \"h:5000/library\"\n[[registry.mirror]]\nlocation = \"mirror.local:5000/lib\"\ninsecure = true\n",
                )],
                vec!["tries mirror \"mirror.local:5000/lib\" before h:5000 without verifying TLS"],
            ),
            (
                vec![(REGISTRIES_CONF, "[[registry]]\nprefix = \"h:5000\"\nlocation = \"elsewhere:443\"\n")],
                vec!["from location \"elsewhere:443\""],
            ),
            (
                vec![(REGISTRIES_CONF, "[registries.insecure]\nregistries = [\"h:5000\"]\n")],
                vec!["insecure = true"],
            ),
            (vec![(REGISTRIES_CONF, "[[registry]]\nlocation = \"other:5000\"\ninsecure = true\n")], vec![]),
            (vec![(REGISTRIES_CONF, "[[[")], vec!["does not parse as TOML"]),
            (vec![(REGISTRIES_CONF, "registry = 5")], vec!["is not a list"]),
            (
                vec![("etc/crio/crio.conf.d/10-insecure.conf", "[crio.image]\ninsecure_registries = [\"h:5000\"]\n")],
                vec!["is in [crio.image] insecure_registries"],
            ),
            (vec![(CRIO_CONF, "[crio.image]\ninsecure_registries = \"h:5000\"\n")], vec!["is not a list"]),
        ];
        for (files, want) in cases {
            let root = root_with(&files);
            let r = HostRoot::new(root.path());
            let got = Config::read(&r).problems(&r, std::slice::from_ref(&h));
            assert_eq!(got.len(), want.len(), "{files:?}: {got:#?}");
            for (p, w) in got.iter().zip(want) {
                assert!(p.message.contains(w), "{files:?}: {p:?}");
            }
        }
        // *.domain prefixes match subdomains only.
        let e = RegistryHost::parse("a.corp.example").unwrap();
        assert!(prefix_matches("*.corp.example", &e));
        assert!(!prefix_matches(
            "*.corp.example",
            &RegistryHost::parse("corp.example").unwrap()
        ));
    }
}
