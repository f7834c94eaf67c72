//! The pure decision for each trust file: given what regtrust wants there, what is on disk
//! and what the ledger says regtrust owns, what to do. No I/O here: `apply` observes the
//! disk, asks `decide`/`decide_stale`, and carries the answer out.
//!
//! The rules (SPEC, Outputs): identical content is never rewritten; only owned files are
//! replaced or removed; a foreign file with the same certificates is left as is; a foreign
//! file with other certificates is a conflict unless `--replace-foreign`; an owned file that
//! was deleted or edited by hand is restored.

use super::layout::{FileKind, Target, CA_FILE};
use super::ledger::Owned;
use crate::ca;
use crate::host::RegistryHost;
use std::collections::BTreeSet;

/// What `apply` found at a target path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnDisk {
    Absent,
    /// A regular file and its bytes (read up to a cap; `truncated` past it).
    File {
        bytes: Vec<u8>,
        truncated: bool,
    },
    /// A symlink: never followed, never written through.
    Symlink,
    /// A dir, fifo, socket or device where a file should be.
    NotAFile(&'static str),
    /// A dir on the way is a symlink or not a dir: writing there could leave the trust dirs.
    UnsafeParent(String),
    Unreadable(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteReason {
    New,
    Update,
    /// Owned, but deleted or edited by someone else.
    Restore,
    /// Foreign, replaced because of `--replace-foreign`.
    TakeOver,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Write(WriteReason),
    /// The wanted bytes are already there.
    Keep,
    /// A foreign file that already does the job (same certificates, or a hosts.toml that
    /// names the CA): left as is, not owned.
    KeepForeign(String),
    Conflict(String),
    Error(String),
}

/// Decide for a file regtrust wants.
pub fn decide(
    target: &Target,
    disk: &OnDisk,
    owned: Option<&Owned>,
    replace_foreign: bool,
) -> Action {
    let bytes = match disk {
        OnDisk::Absent => {
            return Action::Write(if owned.is_some() {
                WriteReason::Restore
            } else {
                WriteReason::New
            })
        }
        OnDisk::UnsafeParent(why) => return Action::Error(why.clone()),
        OnDisk::Unreadable(why) => return Action::Error(why.clone()),
        OnDisk::NotAFile(what) => {
            return Action::Error(format!(
                "is a {what}, not a file; regtrust will not replace it"
            ))
        }
        OnDisk::Symlink => {
            return foreign(
                replace_foreign,
                "is a symlink that regtrust did not write".to_string(),
            )
        }
        OnDisk::File { bytes, truncated } => {
            if *truncated {
                return foreign_or_owned(owned, replace_foreign, "is larger than any CA bundle");
            }
            bytes
        }
    };
    if bytes.as_slice() == target.content.as_slice() {
        return Action::Keep;
    }
    if let Some(o) = owned {
        return Action::Write(if ca::sha256_hex(bytes) == o.sha256 {
            WriteReason::Update
        } else {
            WriteReason::Restore
        });
    }
    match target.kind {
        FileKind::Ca => {
            let have = cert_set(bytes);
            let want = cert_set(&target.content);
            if have == want {
                Action::KeepForeign("a file regtrust did not write holds the same certificates".into())
            } else {
                foreign(
                    replace_foreign,
                    format!(
                        "a file regtrust did not write holds other certificates ({})",
                        describe_set(&have)
                    ),
                )
            }
        }
        FileKind::HostsToml => match hosts_toml_names_ca(bytes, &target.host, &dir_name(target)) {
            Ok(true) => Action::KeepForeign(format!("a hosts.toml regtrust did not write; it names {CA_FILE}")),
            Ok(false) => foreign(
                replace_foreign,
                format!(
                    "a hosts.toml regtrust did not write does not name {CA_FILE} for the registry itself, so \
                     containerd ignores the CA (a hosts.toml turns off loose *.crt files); add ca = \"{CA_FILE}\" \
                     to its [host.\"https://{}\"] table",
                    target.host
                ),
            ),
            Err(e) => foreign(
                replace_foreign,
                format!("a hosts.toml regtrust did not write does not parse ({e}); containerd falls back to loose *.crt files"),
            ),
        },
    }
}

fn foreign(replace_foreign: bool, why: String) -> Action {
    if replace_foreign {
        Action::Write(WriteReason::TakeOver)
    } else {
        Action::Conflict(format!(
            "{why}; left alone (--replace-foreign takes it over)"
        ))
    }
}

fn foreign_or_owned(owned: Option<&Owned>, replace_foreign: bool, why: &str) -> Action {
    match owned {
        Some(_) => Action::Write(WriteReason::Restore),
        None => foreign(
            replace_foreign,
            format!("a file regtrust did not write {why}"),
        ),
    }
}

/// What to do with a file the ledger lists but regtrust no longer wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StaleAction {
    Remove,
    /// Gone already: drop it from the ledger.
    Forget,
    /// Changed since regtrust wrote it: someone else's now; drop it from the ledger, leave it.
    Disown(String),
    Error(String),
}

pub fn decide_stale(disk: &OnDisk, owned: &Owned) -> StaleAction {
    match disk {
        OnDisk::Absent => StaleAction::Forget,
        OnDisk::File {
            bytes,
            truncated: false,
        } if ca::sha256_hex(bytes) == owned.sha256 => StaleAction::Remove,
        OnDisk::File { .. } | OnDisk::Symlink => StaleAction::Disown(
            "changed since regtrust wrote it; left in place and no longer owned".into(),
        ),
        OnDisk::NotAFile(what) => StaleAction::Disown(format!("is now a {what}; left in place")),
        OnDisk::UnsafeParent(why) | OnDisk::Unreadable(why) => StaleAction::Error(why.clone()),
    }
}

/// The certificates a Go runtime would load from these bytes, by sha256.
fn cert_set(bytes: &[u8]) -> BTreeSet<String> {
    ca::go_loadable_certs(bytes)
        .iter()
        .map(|der| ca::sha256_hex(der))
        .collect()
}

fn describe_set(set: &BTreeSet<String>) -> String {
    if set.is_empty() {
        return "none that a Go runtime can load".into();
    }
    set.iter()
        .map(|s| format!("sha256 {}", &s[..s.len().min(16)]))
        .collect::<Vec<_>>()
        .join(", ")
}

fn dir_name(target: &Target) -> String {
    target
        .rel_path
        .parent()
        .and_then(|d| d.file_name())
        .map(|d| d.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Whether a hosts.toml makes containerd trust this dir's `ca.crt` when pulling from
/// `host`: one of the `ca` entries that apply to the origin registry (containerd's rules, in
/// `hosts_toml`) is `ca.crt` relative to the host dir, or the absolute path of a `ca.crt` in
/// a dir of this name. Err when containerd could not use the file as written.
pub fn hosts_toml_names_ca(
    bytes: &[u8],
    host: &RegistryHost,
    dir_name: &str,
) -> Result<bool, String> {
    let cas = super::hosts_toml::cas_for(bytes, host)?.cas;
    let is_ours = |s: &String| {
        let p = std::path::Path::new(s);
        if p.is_absolute() {
            p.file_name().is_some_and(|f| f == CA_FILE)
                && p.parent()
                    .and_then(|d| d.file_name())
                    .is_some_and(|d| d == dir_name)
        } else {
            matches!(s.as_str(), "ca.crt" | "./ca.crt")
        }
    };
    Ok(cas.iter().any(is_ours))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::RegistryHost;
    use crate::trust::layout::{targets_for, Runtime};

    fn pem(cn: &str) -> Vec<u8> {
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().unwrap();
        p.self_signed(&key).unwrap().pem().into_bytes()
    }

    fn owned(bytes: &[u8]) -> Owned {
        Owned {
            sha256: ca::sha256_hex(bytes),
            host: "h".into(),
            runtime: "docker".into(),
        }
    }

    fn file(bytes: &[u8]) -> OnDisk {
        OnDisk::File {
            bytes: bytes.to_vec(),
            truncated: false,
        }
    }

    #[test]
    fn ca_file_decisions() {
        let want = pem("new CA");
        let other = pem("other CA");
        let host = RegistryHost::parse("h:5000").unwrap();
        let t = &targets_for(&host, Runtime::Docker, &want)[0];
        // Same certificates, other bytes (CRLF line ends, text before the block).
        let same_certs = [
            b"comment\n".as_slice(),
            &want
                .iter()
                .flat_map(|&b| {
                    if b == b'\n' {
                        vec![b'\r', b'\n']
                    } else {
                        vec![b]
                    }
                })
                .collect::<Vec<_>>(),
        ]
        .concat();
        let cases: Vec<(&str, OnDisk, Option<Owned>, bool, Action)> = vec![
            (
                "absent",
                OnDisk::Absent,
                None,
                false,
                Action::Write(WriteReason::New),
            ),
            (
                "owned and deleted",
                OnDisk::Absent,
                Some(owned(&want)),
                false,
                Action::Write(WriteReason::Restore),
            ),
            ("identical foreign", file(&want), None, false, Action::Keep),
            (
                "identical owned",
                file(&want),
                Some(owned(&want)),
                false,
                Action::Keep,
            ),
            (
                "owned old CA",
                file(&other),
                Some(owned(&other)),
                false,
                Action::Write(WriteReason::Update),
            ),
            (
                "owned, edited by hand",
                file(&other),
                Some(owned(b"what we wrote")),
                false,
                Action::Write(WriteReason::Restore),
            ),
            (
                "foreign other CA",
                file(&other),
                None,
                true,
                Action::Write(WriteReason::TakeOver),
            ),
            (
                "symlink, take over",
                OnDisk::Symlink,
                None,
                true,
                Action::Write(WriteReason::TakeOver),
            ),
        ];
        for (name, disk, own, replace, want_action) in cases {
            assert_eq!(
                decide(t, &disk, own.as_ref(), replace),
                want_action,
                "{name}"
            );
        }
        assert!(matches!(
            decide(t, &file(&same_certs), None, false),
            Action::KeepForeign(_)
        ));
        assert!(
            matches!(decide(t, &file(&other), None, false), Action::Conflict(m) if m.contains("--replace-foreign"))
        );
        assert!(
            matches!(decide(t, &file(b"garbage"), None, false), Action::Conflict(m) if m.contains("none that a Go runtime can load"))
        );
        assert!(
            matches!(decide(t, &OnDisk::Symlink, None, false), Action::Conflict(m) if m.contains("symlink"))
        );
        assert!(matches!(
            decide(t, &OnDisk::NotAFile("directory"), None, true),
            Action::Error(_)
        ));
        assert!(matches!(
            decide(
                t,
                &OnDisk::UnsafeParent("x".into()),
                Some(&owned(&want)),
                true
            ),
            Action::Error(_)
        ));
    }

    #[test]
    fn hosts_toml_decisions() {
        let host = RegistryHost::parse("h:5000").unwrap();
        let ts = targets_for(&host, Runtime::Containerd, b"x");
        let t = ts.iter().find(|t| t.kind == FileKind::HostsToml).unwrap();
        let naming = b"server = \"https://h:5000\"\n[host.\"https://h:5000\"]\n  ca = \"/etc/containerd/certs.d/h:5000/ca.crt\"\n";
        let not_naming = b"server = \"https://h:5000\"\n[host.\"https://mirror:5000\"]\n  capabilities = [\"pull\"]\n";
        assert!(matches!(
            decide(t, &file(naming), None, false),
            Action::KeepForeign(_)
        ));
        assert!(
            matches!(decide(t, &file(not_naming), None, false), Action::Conflict(m) if m.contains("ignores the CA"))
        );
        assert!(
            matches!(decide(t, &file(b"[[["), None, false), Action::Conflict(m) if m.contains("does not parse"))
        );
        assert_eq!(
            decide(t, &file(not_naming), None, true),
            Action::Write(WriteReason::TakeOver)
        );
        assert_eq!(decide(t, &file(&t.content), None, false), Action::Keep);
    }

    #[test]
    fn names_ca_variants() {
        let h = RegistryHost::parse("h:5000").unwrap();
        let ok = [
            ("[host.\"https://h:5000\"]\nca = \"ca.crt\"", true),
            ("server = \"https://h:5000\"\n[host.\"https://h:5000\"]\nca = [\"other.pem\", \"ca.crt\"]", true),
            ("[host.\"https://h:5000\"]\nca = \"./ca.crt\"", true),
            ("[host.\"https://h:5000\"]\nca = \"/etc/containerd/certs.d/h:5000/ca.crt\"", true),
            // The top level is the `server` entry: it counts when `server` is the registry.
            ("server = \"https://h:5000\"\nca = \"ca.crt\"\n[host.\"https://mirror:5000\"]\ncapabilities = [\"pull\"]", true),
            // A mirror's CA is not the registry's.
            ("[host.\"https://mirror:5000\"]\nca = \"ca.crt\"", false),
            ("server = \"https://mirror:5000\"\nca = \"ca.crt\"\n[host.\"https://mirror:5000\"]\nca = \"ca.crt\"", false),
            ("[host.\"https://h:5000\"]\nca = \"certs/ca.crt\"", false),
            ("[host.\"https://h:5000\"]\nca = \"/etc/containerd/certs.d/other:5000/ca.crt\"", false),
            ("[host.\"https://h:5000\"]\nca = \"mirror.crt\"", false),
        ];
        for (doc, want) in ok {
            assert_eq!(
                hosts_toml_names_ca(doc.as_bytes(), &h, "h:5000"),
                Ok(want),
                "{doc}"
            );
        }
        // containerd 1.x cannot use these as written (and falls back to loose files).
        for doc in [
            "ca = \"ca.crt\"",
            "[[[",
            "[host.\"https://h:5000\"]\nca = 5",
        ] {
            assert!(
                hosts_toml_names_ca(doc.as_bytes(), &h, "h:5000").is_err(),
                "{doc}"
            );
        }
    }

    #[test]
    fn stale_decisions() {
        let o = owned(b"ours");
        assert_eq!(decide_stale(&OnDisk::Absent, &o), StaleAction::Forget);
        assert_eq!(decide_stale(&file(b"ours"), &o), StaleAction::Remove);
        assert!(matches!(
            decide_stale(&file(b"edited"), &o),
            StaleAction::Disown(_)
        ));
        assert!(matches!(
            decide_stale(&OnDisk::UnsafeParent("l".into()), &o),
            StaleAction::Error(_)
        ));
    }
}
