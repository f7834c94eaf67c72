//! Carries out the plan on a host root: observes each target without following symlinks,
//! writes atomically (temp file in the same dir, fsync, rename, fsync the dir), removes
//! stale owned files and their then-empty host dir, and keeps the ledger in step.
//!
//! Safety: every path is `host_root` + a relative path built from `layout` (fixed dir names
//! and a validated host), and every dir on the way below the host root is checked with
//! `symlink_metadata`: a symlink or non-dir there is an error for that file, never
//! something to write through. Plain synchronous code; the agent calls it off its async
//! threads.

use super::layout::Target;
use super::ledger::{self, Journal, Ledger, Owned};
use super::plan::{self, Action, OnDisk, StaleAction, WriteReason};
use crate::ca;
use crate::report::TrustState;
use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

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
}

pub fn apply(req: &ApplyRequest) -> Outcome {
    let mut out = Outcome::default();
    let mut ledger = match Ledger::load(req.state_dir) {
        Ok(l) => l,
        Err(e) => {
            out.ledger_problems.push(e.to_string());
            set_aside_ledger(req.state_dir, &mut out);
            Ledger {
                version: 1,
                files: Default::default(),
            }
        }
    };
    let before = ledger.clone();
    // A pass killed (or failing to save) after a rename: take over what it wrote, and
    // clear the temp files it left (ledger's journal; issue 9 point 5).
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
    let dirs: BTreeSet<&Path> = (req.targets.iter().map(|t| t.rel_path.as_path()))
        .chain(ledger.files.keys().map(PathBuf::as_path))
        .chain(intents.iter().map(|i| i.path.as_path()))
        .filter_map(Path::parent)
        .collect();
    for dir in dirs {
        remove_stray_temps(req.host_root, dir);
    }
    let wanted: BTreeSet<&Path> = req.targets.iter().map(|t| t.rel_path.as_path()).collect();
    // An intent never carried out for a host no longer wanted: the host dir it made (if
    // it got that far) is empty now and goes, as a stale host dir would.
    for i in &intents {
        if !wanted.contains(i.path.as_path()) && ledger.owned(&i.path).is_none() {
            remove_empty_host_dir(req.host_root, &i.path);
        }
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
                Err(e) => (TrustState::Error, format!("cannot write: {e}"), false),
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
                remove_empty_host_dir(req.host_root, &rel);
                ledger.files.remove(&rel);
                continue;
            }
            StaleAction::Disown(why) => {
                ledger.files.remove(&rel);
                (TrustState::Unchanged, why, false)
            }
            StaleAction::Error(why) => (TrustState::Error, why, false),
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

    if ledger != before || !intents.is_empty() {
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

/// Look at a target without following symlinks anywhere below the host root.
pub fn observe(host_root: &Path, rel: &Path) -> OnDisk {
    if let Err(why) = check_parents(host_root, rel) {
        return why;
    }
    let path = host_root.join(rel);
    let meta = match fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return OnDisk::Absent,
        Err(e) => return OnDisk::Unreadable(format!("cannot stat: {e}")),
    };
    let ft = meta.file_type();
    if ft.is_symlink() {
        return OnDisk::Symlink;
    }
    if ft.is_dir() {
        return OnDisk::NotAFile("directory");
    }
    if !ft.is_file() {
        return OnDisk::NotAFile("special file");
    }
    let file = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(nofollow())
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return OnDisk::Absent,
        Err(e) => return OnDisk::Unreadable(format!("cannot read: {e}")),
    };
    let mut bytes = Vec::new();
    if let Err(e) = file.take(READ_CAP + 1).read_to_end(&mut bytes) {
        return OnDisk::Unreadable(format!("cannot read: {e}"));
    }
    let truncated = bytes.len() as u64 > READ_CAP;
    OnDisk::File { bytes, truncated }
}

/// Every dir between the host root and the file must be a real dir (or not exist yet).
fn check_parents(host_root: &Path, rel: &Path) -> Result<(), OnDisk> {
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(OnDisk::UnsafeParent(format!(
            "{} is not a plain relative path",
            rel.display()
        )));
    }
    let mut dir = host_root.to_path_buf();
    let parent = rel.parent().unwrap_or(Path::new(""));
    for c in parent.components() {
        dir.push(c);
        match fs::symlink_metadata(&dir) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(OnDisk::UnsafeParent(format!(
                    "{} is a symlink; regtrust does not write through links",
                    dir.display()
                )))
            }
            Ok(m) if !m.is_dir() => {
                return Err(OnDisk::UnsafeParent(format!(
                    "{} is not a directory",
                    dir.display()
                )))
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                return Err(OnDisk::Unreadable(format!(
                    "cannot stat {}: {e}",
                    dir.display()
                )))
            }
        }
    }
    Ok(())
}

/// Open flags for reading a trust file: never through a link, and never waiting on a FIFO
/// swapped in after the `symlink_metadata` check.
fn nofollow() -> i32 {
    libc::O_NOFOLLOW | libc::O_NONBLOCK
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

/// Remove the temp files an interrupted write left in a trust dir (`write_atomic`'s
/// `.<name>.regtrust-<pid>-<n>.tmp`). Only under the pass lock, so none is in use.
fn remove_stray_temps(host_root: &Path, rel_dir: &Path) {
    if check_parents(host_root, &rel_dir.join("x")).is_err() {
        return;
    }
    let dir = host_root.join(rel_dir);
    match fs::symlink_metadata(&dir) {
        Ok(m) if m.is_dir() => {}
        _ => return,
    }
    let Ok(entries) = fs::read_dir(&dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let ours = [super::layout::CA_FILE, super::layout::HOSTS_TOML]
            .iter()
            .any(|f| name.starts_with(&format!(".{f}.regtrust-")) && name.ends_with(".tmp"));
        if ours {
            match fs::remove_file(e.path()) {
                Ok(()) => {
                    tracing::info!(path = %e.path().display(), "removed a temp file an interrupted pass left")
                }
                Err(err) => {
                    tracing::warn!(path = %e.path().display(), error = %err, "cannot remove a stray temp file")
                }
            }
        }
    }
}

/// The host dir of a stale owned file, if it is empty (never certs.d itself).
fn remove_empty_host_dir(host_root: &Path, rel: &Path) {
    if check_parents(host_root, rel).is_err() {
        return;
    }
    if let Some(dir) = rel.parent() {
        let _ = fs::remove_dir(host_root.join(dir));
    }
}

fn write_target(host_root: &Path, t: &Target) -> io::Result<()> {
    let rel_dir = t.rel_path.parent().unwrap_or(Path::new(""));
    ensure_dirs(host_root, rel_dir)?;
    write_atomic(&host_root.join(&t.rel_path), &t.content, FILE_MODE)
}

/// Create the missing dirs below the host root, 0755, refusing symlinks on the way.
fn ensure_dirs(host_root: &Path, rel_dir: &Path) -> io::Result<()> {
    let mut dir = host_root.to_path_buf();
    for c in rel_dir.components() {
        dir.push(c);
        match fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() && !m.file_type().is_symlink() => continue,
            Ok(_) => {
                return Err(io::Error::other(format!(
                    "{} is not a directory (or is a symlink)",
                    dir.display()
                )))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                match fs::DirBuilder::new().mode(DIR_MODE).create(&dir) {
                    Ok(()) => fs::set_permissions(&dir, fs::Permissions::from_mode(DIR_MODE))?,
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// Write `bytes` to `path` so that a reader sees the old file or the new one, never a part:
/// a temp file in the same dir (created exclusively, never through a link), fsync, chmod
/// (umask-proof), rename over the target, fsync the dir.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.regtrust-{}-{}.tmp",
        std::process::id(),
        TMP_SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(nofollow())
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Remove an owned file, then its host dir if that is now empty.
fn remove_owned(host_root: &Path, rel: &Path) -> io::Result<()> {
    let path = host_root.join(rel);
    fs::remove_file(&path)?;
    if let Some(dir) = path.parent() {
        // Only the host dir, never certs.d itself; ENOTEMPTY is the normal case.
        let _ = fs::remove_dir(dir);
        let _ = fs::File::open(dir.parent().unwrap_or(dir)).and_then(|d| d.sync_all());
    }
    Ok(())
}
