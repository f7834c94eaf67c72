//! The ownership ledger: every file regtrust wrote, with its digest, in
//! `<state-dir>/ledger.json`. regtrust replaces or removes only files listed here; a file
//! whose digest differs from the ledger was edited by hand and is restored.
//! A missing ledger is an empty one. A ledger that cannot be read makes every file foreign
//! (conflicts, never overwrites) until it is rewritten.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const LEDGER_FILE: &str = "ledger.json";
const VERSION: u32 = 1;
/// A ledger larger than this is not ours (hundreds of bytes per file owned).
const MAX_LEDGER_BYTES: u64 = 16 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owned {
    pub sha256: String,
    pub host: String,
    pub runtime: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    pub version: u32,
    /// Keyed by the path relative to the host root.
    pub files: BTreeMap<PathBuf, Owned>,
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("ownership ledger {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("ownership ledger {path}: not a regtrust ledger ({detail}); every trust file is treated as foreign until it is rewritten")]
    Corrupt { path: PathBuf, detail: String },
}

impl Ledger {
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join(LEDGER_FILE)
    }

    pub fn load(state_dir: &Path) -> Result<Ledger, LedgerError> {
        let path = Self::path(state_dir);
        let io = |source| LedgerError::Io {
            path: path.clone(),
            source,
        };
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Ledger {
                    version: VERSION,
                    files: BTreeMap::new(),
                })
            }
            Err(e) => return Err(io(e)),
        };
        let corrupt = |detail: String| LedgerError::Corrupt {
            path: path.clone(),
            detail,
        };
        if !meta.is_file() {
            return Err(corrupt("not a regular file".into()));
        }
        // Capped while reading too: a ledger that grows after the stat is not read whole.
        let bytes = crate::ca::read_capped(&path, MAX_LEDGER_BYTES).map_err(|e| match e {
            crate::ca::ReadCappedError::Io(source) => io(source),
            other => corrupt(other.to_string()),
        })?;
        let ledger: Ledger = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if ledger.version != VERSION {
            return Err(corrupt(format!("version {}", ledger.version)));
        }
        // A ledger entry must name a file inside a trust dir; anything else was not written
        // by us and must never steer a removal.
        if let Some(bad) = ledger.files.keys().find(|p| !is_trust_path(p)) {
            return Err(corrupt(format!("entry {bad:?} is outside the trust dirs")));
        }
        Ok(ledger)
    }

    pub fn save(&self, state_dir: &Path) -> Result<(), LedgerError> {
        let path = Self::path(state_dir);
        let io = |source| LedgerError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(state_dir).map_err(io)?;
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        super::apply::write_atomic(&path, &bytes, 0o600).map_err(io)
    }

    pub fn owned(&self, rel: &Path) -> Option<&Owned> {
        self.files.get(rel)
    }
}

/// `<trust root>/<host dir>/<ca.crt|hosts.toml>`: a plain relative path (no `..`, not
/// absolute) at least three deep, ending in a file regtrust writes. Trust roots follow the
/// node's containerd config (`runtime::Node::trust_root`), so they are not a fixed list;
/// every removal is still made through no-follow dir handles and only of bytes regtrust
/// wrote.
pub fn is_trust_path(p: &Path) -> bool {
    use std::path::Component;
    let parts: Vec<_> = p.components().collect();
    if parts.len() < 3 || parts.iter().any(|c| !matches!(c, Component::Normal(_))) {
        return false;
    }
    let last = parts[parts.len() - 1].as_os_str().to_str().unwrap_or("");
    matches!(last, super::layout::CA_FILE | super::layout::HOSTS_TOML)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_paths_only() {
        for (p, ok) in [
            ("etc/docker/certs.d/h/ca.crt", true),
            ("etc/containerd/certs.d/h:5000/hosts.toml", true),
            ("etc/containers/certs.d/[::1]:5000/ca.crt", true),
            ("etc/docker/certs.d/../ca.crt", false),
            ("etc/docker/certs.d/h/../../../../etc/passwd", false),
            ("/etc/docker/certs.d/h/ca.crt", false),
            ("etc/docker/certs.d/h/client.key", false),
            ("etc/shadow", false),
            ("ca.crt", false),
            ("h/ca.crt", false),
            (
                "var/lib/rancher/k3s/agent/etc/containerd/certs.d/h/hosts.toml",
                true,
            ),
        ] {
            assert_eq!(is_trust_path(Path::new(p)), ok, "{p}");
        }
    }

    #[test]
    fn round_trip_and_hostile_ledgers() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Ledger::load(dir.path()).unwrap().files.is_empty());
        let mut l = Ledger::load(dir.path()).unwrap();
        l.files.insert(
            "etc/docker/certs.d/h/ca.crt".into(),
            Owned {
                sha256: "ab".into(),
                host: "h".into(),
                runtime: "docker".into(),
            },
        );
        l.save(dir.path()).unwrap();
        assert_eq!(Ledger::load(dir.path()).unwrap(), l);

        let cases: [&[u8]; 5] = [
            b"",
            b"garbage",
            br#"{"version":2,"files":{}}"#,
            br#"{"version":1,"files":{"etc/docker/certs.d/../../../etc/passwd":{"sha256":"x","host":"h","runtime":"docker"}}}"#,
            br#"{"version":1,"files":{"/etc/passwd":{"sha256":"x","host":"h","runtime":"docker"}}}"#,
        ];
        for bytes in cases {
            std::fs::write(Ledger::path(dir.path()), bytes).unwrap();
            let err = Ledger::load(dir.path()).unwrap_err().to_string();
            assert!(err.contains("ledger.json"), "{err}");
        }
    }
}
