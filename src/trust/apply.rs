//! Carries out the plan on a host root: observes each target without following symlinks,
//! writes atomically (temp file in the same dir, fsync, rename, fsync the dir), removes
//! stale owned files and their then-empty host dir, and keeps the ledger in step.
//!
//! Safety: every path is `host_root` + a relative path built from `layout` (fixed dir names
//! and a validated host), and every read, write, rename, mkdir and unlink goes through
//! `runtime::HostRoot` dir handles opened `O_NOFOLLOW|O_DIRECTORY` from the host root down:
//! a symlink or non-dir on the way is an error for that file, never something to write
//! through, even when it is swapped in mid-pass. Plain synchronous code; the agent calls it
//! off its async threads.

use super::layout::Target;
use super::ledger::{self, Journal, Ledger, Owned};
use super::plan::{self, Action, OnDisk, StaleAction, WriteReason};
use crate::ca;
use crate::report::TrustState;
use crate::runtime::root::{Dir, HostRoot, Kind, ReadError, RootError};
use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Largest trust file regtrust reads back; a CA input is at most 1 MiB.
const READ_CAP: u64 = ca::MAX_CA_BYTES + 4096;
const FILE_MODE: u32 = 0o644;
const DIR_MODE: u32 = 0o755;

/// What happened to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileOutcome {
    pub host: String,
    pub runtime: String,
    /// The full path (host root included).
    pub path: PathBuf,
    pub state: TrustState,
    pub detail: String,
    /// True when the file's bytes changed on disk in this pass.
    pub wrote: bool,
}

#[derive(Debug, Default)]
pub struct Outcome {
    pub files: Vec<FileOutcome>,
    /// Ledger trouble (unreadable, moved aside, not saved), as messages naming the file.
    pub ledger_problems: Vec<String>,
}

/// Everything `apply` needs besides the disk.
pub struct ApplyRequest<'a> {
    pub host_root: &'a Path,
    pub state_dir: &'a Path,
    pub targets: &'a [Target],
    /// Hosts whose CA input is currently invalid: what is installed for them stays
    /// (last known good), owned or not.
    pub retained_hosts: &'a BTreeSet<String>,
    /// False when some input could not be read this pass: nothing is treated as stale,
    /// because the missing input may still name those hosts.
    pub remove_stale: bool,
    pub replace_foreign: bool,
    /// Plan only (`sync --dry-run`, or a pass held by a pull secret with invalid keys): each
    /// outcome says what would happen and why not, and nothing on disk changes (no write,
    /// no removal, no ledger save or set-aside).
    pub hold: Option<&'a str>,
}

pub fn apply(req: &ApplyRequest) -> Outcome {
    let mut out = Outcome::default();
    let mut ledger = match Ledger::load(req.state_dir) {
        Ok(l) => l,
        Err(e) => {
            out.ledger_problems.push(e.to_string());
            if req.hold.is_none() {
                set_aside_ledger(req.state_dir, &mut out);
            }
            Ledger {
                version: 1,
                files: Default::default(),
            }
        }
    };
    let before = ledger.clone();
    // A pass killed (or failing to save) after a rename: take over what it wrote, and
    // clear what it left half done (ledger's journal; issue 9 point 5).
    let (intents, journal_problems) = ledger::pending_intents(req.state_dir);
    out.ledger_problems.extend(journal_problems);
    for rel in ledger.adopt(&intents, |rel| match observe(req.host_root, rel) {
        OnDisk::File {
            bytes,
            truncated: false,
        } => Some(ca::sha256_hex(&bytes)),
        _ => None,
    }) {
        tracing::info!(path = %rel.display(), "adopted a file an interrupted pass wrote");
    }
    let wanted: BTreeSet<&Path> = req.targets.iter().map(|t| t.rel_path.as_path()).collect();
    if req.hold.is_none() {
        clean_up_interrupted(req, &ledger, &intents, &wanted);
    }
    let mut journal = Journal::new(req.state_dir);

    for t in req.targets {
        let disk = observe(req.host_root, &t.rel_path);
        let owned = ledger.owned(&t.rel_path).cloned();
        let action = plan::decide(t, &disk, owned.as_ref(), req.replace_foreign);
        let path = req.host_root.join(&t.rel_path);
        let (state, detail, wrote) = match action {
            Action::Keep => (TrustState::Unchanged, String::new(), false),
            Action::KeepForeign(why) => (TrustState::Unchanged, why, false),
            Action::Conflict(why) => (TrustState::Conflict, why, false),
            Action::Error(why) => (TrustState::Error, why, false),
            Action::Write(reason) if req.hold.is_some() => (
                TrustState::Missing,
                format!(
                    "would write ({}); not written: {}",
                    match reason {
                        WriteReason::New => "new",
                        WriteReason::Update => "update",
                        WriteReason::Restore => "restore",
                        WriteReason::TakeOver => "take over, --replace-foreign",
                    },
                    req.hold.unwrap_or_default()
                ),
                false,
            ),
            Action::Write(reason) => match write_owned(req.host_root, t, &mut journal) {
                Ok(owned) => {
                    ledger.files.insert(t.rel_path.clone(), owned);
                    let detail = match reason {
                        WriteReason::New => "",
                        WriteReason::Update => "updated",
                        WriteReason::Restore => {
                            "restored: it was deleted or changed by someone else"
                        }
                        WriteReason::TakeOver => {
                            "took over a file regtrust did not write (--replace-foreign)"
                        }
                    };
                    (TrustState::Installed, detail.to_string(), true)
                }
                Err(why) => (TrustState::Error, why, false),
            },
        };
        out.files.push(FileOutcome {
            host: t.host.to_string(),
            runtime: t.runtime.as_str().to_string(),
            path,
            state,
            detail,
            wrote,
        });
    }

    let stale: Vec<(PathBuf, Owned)> = ledger
        .files
        .iter()
        .filter(|(p, o)| !wanted.contains(p.as_path()) && !req.retained_hosts.contains(&o.host))
        .map(|(p, o)| (p.clone(), o.clone()))
        .collect();
    if !req.remove_stale && !stale.is_empty() {
        out.ledger_problems.push(format!(
            "{} file(s) regtrust owns are no longer wanted, but an input could not be read; nothing is removed until it can",
            stale.len()
        ));
    }
    for (rel, owned) in stale.into_iter().filter(|_| req.remove_stale) {
        let path = req.host_root.join(&rel);
        let disk = observe(req.host_root, &rel);
        let (state, detail, wrote) = match plan::decide_stale(&disk, &owned) {
            StaleAction::Forget => {
                // Gone: a pass killed between the unlink and the dir's removal leaves the
                // host dir it emptied; it goes now.
                if req.hold.is_none() {
                    remove_empty_host_dir(req.host_root, &rel);
                }
                ledger.files.remove(&rel);
                continue;
            }
            StaleAction::Disown(why) => {
                ledger.files.remove(&rel);
                (TrustState::Unchanged, why, false)
            }
            StaleAction::Error(why) => (TrustState::Error, why, false),
            StaleAction::Remove if req.hold.is_some() => (
                TrustState::Unchanged,
                format!(
                    "would remove (no longer managed); not removed: {}",
                    req.hold.unwrap_or_default()
                ),
                false,
            ),
            StaleAction::Remove => match remove_owned(req.host_root, &rel) {
                Ok(()) => {
                    ledger.files.remove(&rel);
                    (TrustState::Removed, "no longer managed".to_string(), true)
                }
                Err(e) => (TrustState::Error, format!("cannot remove: {e}"), false),
            },
        };
        out.files.push(FileOutcome {
            host: owned.host,
            runtime: owned.runtime,
            path,
            state,
            detail,
            wrote,
        });
    }

    if (ledger != before || !intents.is_empty()) && req.hold.is_none() {
        if let Err(e) = ledger.save(req.state_dir) {
            out.ledger_problems.push(format!(
                "{e}; files written in this pass are not recorded as owned"
            ));
        }
    }
    out
}

fn set_aside_ledger(state_dir: &Path, out: &mut Outcome) {
    let path = Ledger::path(state_dir);
    if fs::symlink_metadata(&path).is_err() {
        return;
    }
    let aside = state_dir.join(format!(
        "ledger.json.unreadable-{}",
        time::OffsetDateTime::now_utc().unix_timestamp()
    ));
    match fs::rename(&path, &aside) {
        Ok(()) => out.ledger_problems.push(format!(
            "moved the unreadable ledger to {}; trust files already on disk are treated as foreign",
            aside.display()
        )),
        Err(e) => out.ledger_problems.push(format!(
            "cannot move the unreadable ledger {} aside: {e}",
            path.display()
        )),
    }
}

/// Look at a target without following symlinks anywhere below the host root: every dir on
/// the way is opened with `O_NOFOLLOW|O_DIRECTORY` from the host root down (`HostRoot`).
pub fn observe(host_root: &Path, rel: &Path) -> OnDisk {
    let root = HostRoot::new(host_root);
    let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
        return OnDisk::UnsafeParent(format!("{} is not a plain relative path", rel.display()));
    };
    let dir = match root.open_dir(parent) {
        Ok(d) => d,
        Err(RootError::Missing(_)) => return OnDisk::Absent,
        Err(e @ (RootError::Symlink(_) | RootError::NotADir(_) | RootError::NotRelative(_))) => {
            return OnDisk::UnsafeParent(e.to_string())
        }
        Err(e) => return OnDisk::Unreadable(format!("cannot open: {e}")),
    };
    match dir.kind(name) {
        Ok(Kind::Absent) => return OnDisk::Absent,
        Ok(Kind::Symlink) => return OnDisk::Symlink,
        Ok(Kind::Dir) => return OnDisk::NotAFile("directory"),
        Ok(Kind::Special) => return OnDisk::NotAFile("special file"),
        Ok(Kind::File) => {}
        Err(e) => return OnDisk::Unreadable(format!("cannot stat: {e}")),
    }
    match dir.read_file(name, READ_CAP) {
        Ok(bytes) => OnDisk::File {
            bytes,
            truncated: false,
        },
        Err(ReadError::TooLarge { .. }) => OnDisk::File {
            bytes: Vec::new(),
            truncated: true,
        },
        Err(ReadError::Missing) => OnDisk::Absent,
        // Swapped between the stat and the open.
        Err(ReadError::Symlink) => OnDisk::Symlink,
        Err(ReadError::NotAFile) => OnDisk::NotAFile("special file"),
        Err(e) => OnDisk::Unreadable(format!("cannot read: {e}")),
    }
}

/// Record the intent (and keep the content as the last good copy), then write. Nothing is
/// written when the intent cannot be recorded: the file would not be provably ours.
fn write_owned(host_root: &Path, t: &Target, journal: &mut Journal) -> Result<Owned, String> {
    let owned = Owned {
        sha256: ca::sha256_hex(&t.content),
        host: t.host.to_string(),
        runtime: t.runtime.as_str().to_string(),
    };
    journal
        .record(&t.rel_path, &owned, &t.content)
        .map_err(|e| {
            format!("not written: {e}; regtrust writes only a file it can record as its own")
        })?;
    write_target(host_root, t).map_err(|e| format!("cannot write: {e}"))?;
    Ok(owned)
}

/// Under the pass lock, what an interrupted pass left: its temp files
/// (`.<name>.regtrust-<pid>-<n>.tmp`, `Dir::write_atomic`) in every dir this pass, the
/// ledger or the journal names, and the host dir an intent never carried out had made,
/// when that host is not wanted any more and the dir is empty.
fn clean_up_interrupted(
    req: &ApplyRequest,
    ledger: &Ledger,
    intents: &[ledger::Intent],
    wanted: &BTreeSet<&Path>,
) {
    let root = HostRoot::new(req.host_root);
    let dirs: BTreeSet<&Path> = (req.targets.iter().map(|t| t.rel_path.as_path()))
        .chain(ledger.files.keys().map(PathBuf::as_path))
        .chain(intents.iter().map(|i| i.path.as_path()))
        .filter_map(Path::parent)
        .collect();
    for rel_dir in dirs {
        let Ok(dir) = root.open_dir(rel_dir) else {
            continue;
        };
        for name in dir.list().unwrap_or_default() {
            let ours = [super::layout::CA_FILE, super::layout::HOSTS_TOML]
                .iter()
                .any(|f| name.starts_with(&format!(".{f}.regtrust-")) && name.ends_with(".tmp"));
            if ours && matches!(dir.kind(&name), Ok(Kind::File | Kind::Symlink)) {
                match dir.remove_file(&name) {
                    Ok(()) => {
                        tracing::info!(dir = %rel_dir.display(), file = %name, "removed a temp file an interrupted pass left")
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot remove a stray temp file"),
                }
            }
        }
    }
    for i in intents {
        if !wanted.contains(i.path.as_path()) && ledger.owned(&i.path).is_none() {
            remove_empty_host_dir(req.host_root, &i.path);
        }
    }
}

/// The host dir of an owned file, if it is empty (never certs.d itself), relative to its
/// parent's handle: a symlink there fails with ENOTDIR and nothing else is removed.
fn remove_empty_host_dir(host_root: &Path, rel: &Path) {
    let root = HostRoot::new(host_root);
    let Some(host_dir) = rel.parent() else { return };
    if let (Some(parent), Some(name)) = (host_dir.parent(), host_dir.file_name()) {
        if let Ok(p) = root.open_dir(parent) {
            if p.remove_empty_dir(name).is_ok() {
                let _ = p.sync();
            }
        }
    }
}

/// Create the missing dirs (0755) and write the file, all relative to dir handles opened
/// without following links: a dir swapped for a symlink fails the write, never redirects it.
fn write_target(host_root: &Path, t: &Target) -> io::Result<()> {
    let root = HostRoot::new(host_root);
    let (Some(rel_dir), Some(name)) = (t.rel_path.parent(), t.rel_path.file_name()) else {
        return Err(io::Error::other(format!(
            "{} is not a plain relative path",
            t.rel_path.display()
        )));
    };
    let dir = root.ensure_dir(rel_dir, DIR_MODE)?;
    dir.write_atomic(name, &t.content, FILE_MODE)
}

/// Write `bytes` to `path` (outside any host root: the state dir) so that a reader sees the
/// old file or the new one, never a part; see [`Dir::write_atomic`]. The dir's own path is
/// the operator's and may contain links; the file is handled relative to the dir's handle.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other(format!("{}: no file name", path.display())))?;
    Dir::open_path(dir)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?
        .write_atomic(name, bytes, mode)
}

/// Remove an owned file, then its host dir if that is now empty: the unlink is relative to
/// the host dir's handle and the rmdir relative to its parent's, both opened without
/// following links, so a swapped-in symlink fails the removal instead of steering it.
fn remove_owned(host_root: &Path, rel: &Path) -> io::Result<()> {
    let root = HostRoot::new(host_root);
    let (Some(host_dir), Some(name)) = (rel.parent(), rel.file_name()) else {
        return Err(io::Error::other(format!(
            "{} is not a plain relative path",
            rel.display()
        )));
    };
    let dir = root.open_dir(host_dir)?;
    dir.remove_file(name)?;
    dir.sync()?;
    if let (Some(parent), Some(dir_name)) = (host_dir.parent(), host_dir.file_name()) {
        // Only the host dir, never certs.d itself; ENOTEMPTY is the normal case. rmdir of
        // a name that is now a symlink fails with ENOTDIR: nothing else is ever removed.
        if let Ok(p) = root.open_dir(parent) {
            if p.remove_empty_dir(dir_name).is_ok() {
                let _ = p.sync();
            }
        }
    }
    Ok(())
}
