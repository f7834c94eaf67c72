//! k3s and RKE2 `registries.yaml`: the hosts these distributions configure for their
//! embedded containerd themselves. On every start k3s (`pkg/agent/containerd/config.go`
//! `writeContainerdHosts`, in the k3s-io/k3s copy read; RKE2 embeds the same agent) writes
//! `<certs.d>/<host>/hosts.toml` for every host under `mirrors` or `configs`, after
//! `cleanContainerdHosts` removed those dirs whole and every dir whose hosts.toml starts
//! with k3s's own header (older releases removed all of certs.d). A CA regtrust put there
//! would be deleted and, worse, shadowed by k3s's hosts.toml, so regtrust writes nothing
//! for those hosts and reports the fix in the distribution's own terms:
//! `configs."<host>".tls.ca_file` in registries.yaml (k3s then writes it as the `ca` of
//! the host's hosts.toml). Dirs regtrust writes for other hosts carry regtrust's header
//! and are left alone by the newer cleanup. The mirror key `"*"` (k3s's `_default` dir)
//! owns no host dir of its own.

use super::containerd::Flavour;
use super::HostRoot;
use crate::host::RegistryHost;
use crate::report::Problem;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use yaml_rust2::{Yaml, YamlLoader};

const MAX_YAML: u64 = 1 << 20;

/// What registries.yaml says, by host key as written.
#[derive(Debug, Clone, Default)]
pub struct RegistriesYaml {
    pub flavour: Option<Flavour>,
    /// Relative to the host root.
    pub file: PathBuf,
    pub mirrors: Vec<String>,
    /// `configs` keys, with their `tls.ca_file` when set.
    pub configs: BTreeMap<String, Option<String>>,
    /// The file exists but cannot be used.
    pub broken: Option<String>,
}

/// The distribution's registries.yaml, when the flavour has one and the file exists.
pub fn registries_yaml(root: &HostRoot, flavour: Flavour) -> Option<RegistriesYaml> {
    let file = match flavour {
        Flavour::K3s => PathBuf::from("etc/rancher/k3s/registries.yaml"),
        Flavour::Rke2 => PathBuf::from("etc/rancher/rke2/registries.yaml"),
        Flavour::Stock | Flavour::Microk8s => return None,
    };
    let mut out = RegistriesYaml {
        flavour: Some(flavour),
        file: file.clone(),
        ..RegistriesYaml::default()
    };
    let bytes = match root.read(&file, MAX_YAML) {
        Ok(b) => b,
        Err(super::root::ReadError::Missing) => return None,
        Err(e) => {
            out.broken = Some(format!("cannot read: {e}"));
            return Some(out);
        }
    };
    match parse(&bytes) {
        Ok((mirrors, configs)) => {
            out.mirrors = mirrors;
            out.configs = configs;
        }
        Err(why) => out.broken = Some(why),
    }
    Some(out)
}

type Parsed = (Vec<String>, BTreeMap<String, Option<String>>);

fn parse(bytes: &[u8]) -> Result<Parsed, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?;
    let docs =
        YamlLoader::load_from_str(text).map_err(|e| format!("does not parse as YAML: {e}"))?;
    let Some(doc) = docs.into_iter().next() else {
        return Ok(Default::default());
    };
    if doc.is_null() {
        return Ok(Default::default());
    }
    let Yaml::Hash(top) = &doc else {
        return Err("is not a YAML mapping".into());
    };
    let section = |name: &str| -> Result<Vec<(String, Yaml)>, String> {
        match top.get(&Yaml::String(name.into())) {
            None | Some(Yaml::Null) => Ok(Vec::new()),
            Some(Yaml::Hash(h)) => h
                .iter()
                .map(|(k, v)| match k {
                    Yaml::String(s) => Ok((s.clone(), v.clone())),
                    other => Err(format!(
                        "`{name}` has a key that is not a string ({other:?})"
                    )),
                })
                .collect(),
            Some(_) => Err(format!("`{name}` is not a mapping")),
        }
    };
    let mirrors = section("mirrors")?.into_iter().map(|(k, _)| k).collect();
    let configs = section("configs")?
        .into_iter()
        .map(|(k, v)| {
            let ca = v["tls"]["ca_file"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_string);
            (k, ca)
        })
        .collect();
    Ok((mirrors, configs))
}

fn names_host(key: &str, host: &RegistryHost) -> bool {
    let key = key
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    host.dir_names().iter().any(|d| d.eq_ignore_ascii_case(key))
}

impl RegistriesYaml {
    /// The section (`mirrors` or `configs`) that names `host`, if any.
    pub fn owner(&self, host: &RegistryHost) -> Option<&'static str> {
        if self.mirrors.iter().any(|k| names_host(k, host)) {
            return Some("mirrors");
        }
        if self.configs.keys().any(|k| names_host(k, host)) {
            return Some("configs");
        }
        None
    }

    fn ca_file(&self, host: &RegistryHost) -> Option<&str> {
        self.configs
            .iter()
            .find(|(k, _)| names_host(k, host))
            .and_then(|(_, v)| v.as_deref())
    }

    pub fn problems(&self, root: &HostRoot, hosts: &[RegistryHost]) -> Vec<Problem> {
        let source = root.display(&self.file).display().to_string();
        let name = self.flavour.map(Flavour::as_str).unwrap_or("k3s");
        if let Some(why) = &self.broken {
            return vec![Problem::new(
                source,
                format!("{why}; {name} will not apply it"),
            )];
        }
        let node_file = Path::new("/").join(&self.file);
        hosts
            .iter()
            .filter_map(|h| {
                let section = self.owner(h)?;
                if self.ca_file(h).is_some() {
                    // The distribution installs the CA itself; the probe judges it.
                    return None;
                }
                Some(Problem::new(
                    source.clone(),
                    format!(
                        "names {h} under {section}: {name} writes containerd's hosts.toml for it itself (and rewrites it on \
                         every start), so regtrust writes nothing for {h} and containerd uses only the system roots; fix: set \
                         configs.\"{h}\".tls.ca_file to the path of the registry's CA on the node in {} and restart {name}",
                        node_file.display()
                    ),
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::view::tests::root_with;

    #[test]
    fn registries_yaml_hosts_are_the_distributions() {
        let yaml = "mirrors:\n  \"h:5000\":\n    endpoint:\n      - \"https://h:5000\"\n  \"*\": {}\nconfigs:\n  other.local:\n    tls:\n      ca_file: /etc/ssl/other.pem\n  third.local:\n    auth:\n      username: u\n";
        let root = root_with(&[("etc/rancher/k3s/registries.yaml", yaml)]);
        let r = HostRoot::new(root.path());
        let reg = registries_yaml(&r, Flavour::K3s).unwrap();
        let h = |s| RegistryHost::parse(s).unwrap();
        assert_eq!(reg.owner(&h("h:5000")), Some("mirrors"));
        assert_eq!(reg.owner(&h("other.local")), Some("configs"));
        assert_eq!(reg.owner(&h("other.local:443")), Some("configs"));
        assert_eq!(reg.owner(&h("free.local")), None);
        let got = reg.problems(
            &r,
            &[
                h("h:5000"),
                h("other.local"),
                h("third.local"),
                h("free.local"),
            ],
        );
        assert_eq!(got.len(), 2, "{got:#?}");
        assert!(
            got[0].message.contains("configs.\"h:5000\".tls.ca_file")
                && got[0].source.ends_with("registries.yaml")
        );
        assert!(got[1].message.contains("third.local under configs"));
        assert!(registries_yaml(&r, Flavour::Stock).is_none());
        assert!(registries_yaml(&r, Flavour::Rke2).is_none());
    }

    #[test]
    fn hostile_registries_yaml() {
        for (text, want) in [
            ("mirrors: [1, 2]", "`mirrors` is not a mapping"),
            ("- a\n- b\n", "is not a YAML mapping"),
            ("mirrors:\n  ? [a]\n  : x\n", "not a string"),
            ("mirrors: {\n", "does not parse as YAML"),
        ] {
            let root = root_with(&[("etc/rancher/rke2/registries.yaml", text)]);
            let r = HostRoot::new(root.path());
            let reg = registries_yaml(&r, Flavour::Rke2).unwrap();
            let got = reg.problems(&r, &[]);
            assert!(
                got.len() == 1 && got[0].message.contains(want),
                "{text}: {got:?}"
            );
        }
        for ok in ["", "~", "mirrors:\n"] {
            let root = root_with(&[("etc/rancher/k3s/registries.yaml", ok)]);
            let r = HostRoot::new(root.path());
            assert!(
                registries_yaml(&r, Flavour::K3s).unwrap().broken.is_none(),
                "{ok:?}"
            );
        }
    }
}
