//! The ownership ledger: every file regtrust wrote, with its digest, in
//! `<state-dir>/ledger.json`. regtrust replaces or removes only files listed here; a file
//! whose digest differs from the ledger was edited by hand and is restored.
//! A missing ledger is an empty one. A ledger that cannot be read makes every file foreign
//! (conflicts, never overwrites) until it is rewritten.
//!
//! It also owns the rest of the state dir, so that ownership survives crashes, full disks
//! and concurrent passes (issue 9, point 5):
//! - `lock`: one pass at a time holds an exclusive `flock` on it (`PassLock`).
//! - `intents.jsonl`: before a trust file is renamed into place, the path and digest are
//!   appended and fsynced (`Journal::record`). A pass killed before its ledger save leaves
//!   them there; the next pass adopts each file whose content matches its intent
//!   (`Ledger::adopt`), and a successful save empties the journal.
//! - `last-good/<sha256>`: the bytes of every file regtrust owns, kept before it is
//!   written, so an owned `ca.crt` deleted or edited while its CA input is invalid is
//!   restored from the last good content (point 4).
//! - The state dir itself is never a symlink (`check_state_dir`): regtrust would write its
//!   ledger wherever the link points.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

pub const LEDGER_FILE: &str = "ledger.json";
pub const LOCK_FILE: &str = "lock";
pub const JOURNAL_FILE: &str = "intents.jsonl";
pub const LAST_GOOD_DIR: &str = "last-good";
/// A journal larger than this is not ours (one line per file written in one pass).
const MAX_JOURNAL_BYTES: u64 = 16 << 20;
/// A kept copy is a trust file: a CA bundle of at most 1 MiB, or a hosts.toml.
const MAX_KEPT_BYTES: u64 = crate::ca::MAX_CA_BYTES + 4096;
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

    /// Write the ledger atomically; then the journal it now covers is emptied and the kept
    /// copies no entry names are dropped. On error the journal stays for the next pass.
    pub fn save(&self, state_dir: &Path) -> Result<(), LedgerError> {
        let path = Self::path(state_dir);
        let io = |source| LedgerError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(state_dir).map_err(io)?;
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        super::apply::write_atomic(&path, &bytes, 0o600).map_err(io)?;
        clear_journal(state_dir);
        self.prune_kept(state_dir);
        Ok(())
    }

    /// Take over each file a killed or failed pass renamed into place but never recorded:
    /// the intent's digest matches what is on disk now (`disk_sha256`, None when absent or
    /// not a regular file). An intent whose file does not match was never carried out (or
    /// was overwritten since) and is dropped: what is there stays as the ledger says.
    /// Returns the paths adopted.
    pub fn adopt(
        &mut self,
        intents: &[Intent],
        mut disk_sha256: impl FnMut(&Path) -> Option<String>,
    ) -> Vec<PathBuf> {
        let mut adopted = Vec::new();
        for i in intents {
            if self.files.get(&i.path) == Some(&i.owned) {
                continue;
            }
            if disk_sha256(&i.path).as_deref() == Some(i.owned.sha256.as_str()) {
                self.files.insert(i.path.clone(), i.owned.clone());
                adopted.push(i.path.clone());
            }
        }
        adopted
    }

    /// Remove kept copies that no ledger entry names (after a save, so never one in use).
    fn prune_kept(&self, state_dir: &Path) {
        let wanted: BTreeSet<&str> = self.files.values().map(|o| o.sha256.as_str()).collect();
        let Ok(entries) = fs::read_dir(state_dir.join(LAST_GOOD_DIR)) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let keep = name.to_str().is_some_and(|n| wanted.contains(n));
            if !keep {
                let _ = fs::remove_file(e.path());
            }
        }
    }

    pub fn owned(&self, rel: &Path) -> Option<&Owned> {
        self.files.get(rel)
    }
}

/// One file a pass was about to rename into place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    pub path: PathBuf,
    #[serde(flatten)]
    pub owned: Owned,
}

/// The pending intents of passes that did not save their ledger, and a message per line
/// that was not one (a line torn by a kill is expected and not reported).
pub fn pending_intents(state_dir: &Path) -> (Vec<Intent>, Vec<String>) {
    let path = state_dir.join(JOURNAL_FILE);
    let bytes = match fs::symlink_metadata(&path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return (Vec::new(), Vec::new()),
        Err(e) => {
            return (
                Vec::new(),
                vec![format!("intent journal {}: {e}", path.display())],
            )
        }
        Ok(m) if !m.is_file() => {
            return (
                Vec::new(),
                vec![format!(
                    "intent journal {}: not a regular file; ignored",
                    path.display()
                )],
            )
        }
        Ok(_) => match crate::ca::read_capped(&path, MAX_JOURNAL_BYTES) {
            Ok(b) => b,
            Err(e) => {
                return (
                    Vec::new(),
                    vec![format!("intent journal {}: {e}; ignored", path.display())],
                )
            }
        },
    };
    let mut intents = Vec::new();
    let mut problems = Vec::new();
    for (n, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        match serde_json::from_slice::<Intent>(line) {
            Ok(i) if is_trust_path(&i.path) => intents.push(i),
            Ok(i) => problems.push(format!(
                "intent journal {} line {}: {:?} is outside the trust dirs; ignored",
                path.display(),
                n + 1,
                i.path
            )),
            // A line a kill tore in half: the write it announced never started.
            Err(e) if e.is_eof() => {}
            Err(e) => problems.push(format!(
                "intent journal {} line {}: {e}; ignored",
                path.display(),
                n + 1
            )),
        }
    }
    (intents, problems)
}

/// Forget the pending intents: the ledger that covers them is saved.
fn clear_journal(state_dir: &Path) {
    let path = state_dir.join(JOURNAL_FILE);
    if fs::remove_file(&path).is_ok() {
        let _ = fs::File::open(state_dir).and_then(|d| d.sync_all());
    }
}

/// The journal of one pass: append an intent before each rename into the trust dirs.
pub struct Journal {
    state_dir: PathBuf,
    file: Option<fs::File>,
}

impl Journal {
    pub fn new(state_dir: &Path) -> Journal {
        Journal {
            state_dir: state_dir.to_path_buf(),
            file: None,
        }
    }

    /// Make it durable that `content` is about to be put at `rel` by regtrust: keep the
    /// content as the last good copy, then append the intent and fsync. When this fails
    /// (a full or read-only state dir) the file must not be written: regtrust could not
    /// prove it owns it afterwards.
    pub fn record(&mut self, rel: &Path, owned: &Owned, content: &[u8]) -> Result<(), LedgerError> {
        keep_last_good(&self.state_dir, content)?;
        let path = self.state_dir.join(JOURNAL_FILE);
        let io = |source| LedgerError::Io {
            path: path.clone(),
            source,
        };
        let mut line = serde_json::to_vec(&Intent {
            path: rel.to_path_buf(),
            owned: owned.clone(),
        })
        .map_err(|e| io(io::Error::other(e)))?;
        line.push(b'\n');
        if self.file.is_none() {
            let f = fs::OpenOptions::new()
                .read(true)
                .append(true)
                .create(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path)
                .map_err(io)?;
            // A line torn by a kill: end it, so this pass's first line stands on its own.
            let len = f.metadata().map_err(io)?.len();
            let mut last = [0u8; 1];
            if len > 0 {
                use std::os::unix::fs::FileExt;
                f.read_exact_at(&mut last, len - 1).map_err(io)?;
                if last != *b"\n" {
                    line.insert(0, b'\n');
                }
            }
            // The journal's own dir entry must outlive a power cut too.
            fs::File::open(&self.state_dir)
                .and_then(|d| d.sync_all())
                .map_err(io)?;
            self.file = Some(f);
        }
        let f = self.file.as_mut().expect("opened above");
        let result = f.write_all(&line).and_then(|()| f.sync_data());
        if let Err(e) = result {
            // A half-written line (ENOSPC mid-write) is torn; the next line must start on
            // its own, so this journal is not appended to again in this pass.
            self.file = None;
            return Err(io(e));
        }
        Ok(())
    }
}

/// Keep `content` as `last-good/<sha256>` (durably) unless it is there already.
pub fn keep_last_good(state_dir: &Path, content: &[u8]) -> Result<(), LedgerError> {
    let sha = crate::ca::sha256_hex(content);
    if last_good(state_dir, &sha).is_some() {
        return Ok(());
    }
    let dir = state_dir.join(LAST_GOOD_DIR);
    let path = dir.join(&sha);
    let io = |source| LedgerError::Io {
        path: path.clone(),
        source,
    };
    match fs::symlink_metadata(&dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(io(io::Error::other(
                "not a directory (or a symlink); remove it so regtrust can keep its copies there",
            )))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir(&dir).map_err(io)?;
            fs::File::open(state_dir)
                .and_then(|d| d.sync_all())
                .map_err(io)?;
        }
        Err(e) => return Err(io(e)),
    }
    super::apply::write_atomic(&path, content, 0o600).map_err(io)
}

/// The kept copy with this digest, if it is there and still has it.
pub fn last_good(state_dir: &Path, sha256: &str) -> Option<Vec<u8>> {
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let path = state_dir.join(LAST_GOOD_DIR).join(sha256);
    let meta = fs::symlink_metadata(&path).ok()?;
    if !meta.is_file() {
        return None;
    }
    let bytes = crate::ca::read_capped(&path, MAX_KEPT_BYTES).ok()?;
    (crate::ca::sha256_hex(&bytes) == sha256).then_some(bytes)
}

/// Why the state dir cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateDirError {
    #[error("state dir {path}: {what} is a symlink; regtrust refuses a state dir reached through a link (its ledger decides what it may overwrite and remove, and would be written wherever the link points); point --state-dir at the real directory")]
    Symlink { path: PathBuf, what: PathBuf },
    #[error("state dir {path}: {what} exists and is not a directory")]
    NotADir { path: PathBuf, what: PathBuf },
    #[error("state dir {path}: cannot look at {what}: {source}")]
    Io {
        path: PathBuf,
        what: PathBuf,
        source: io::Error,
    },
}

/// The state dir must be a real directory (or not exist yet). Below the host root (the
/// default `<host-root>/var/lib/regtrust`) no dir on the way may be a symlink either: the
/// host's dirs are what a hostPath mount can change.
pub fn check_state_dir(state_dir: &Path, host_root: &Path) -> Result<(), StateDirError> {
    // Outermost first: a missing dir ends the walk (nothing below it exists either).
    let mut to_check = Vec::new();
    if let Ok(rest) = state_dir.strip_prefix(host_root) {
        let mut dir = host_root.to_path_buf();
        for c in rest.components() {
            if let Component::Normal(c) = c {
                dir.push(c);
                to_check.push(dir.clone());
            }
        }
    }
    to_check.push(state_dir.to_path_buf());
    for what in to_check {
        let err_path = || state_dir.to_path_buf();
        match fs::symlink_metadata(&what) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(StateDirError::Symlink {
                    path: err_path(),
                    what,
                })
            }
            Ok(m) if !m.is_dir() => {
                return Err(StateDirError::NotADir {
                    path: err_path(),
                    what,
                })
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => break,
            Err(source) => {
                return Err(StateDirError::Io {
                    path: err_path(),
                    what,
                    source,
                })
            }
        }
    }
    Ok(())
}

/// How long a pass waits for another one to finish.
#[derive(Debug, Clone, Copy)]
pub enum LockWait {
    Forever,
    For(Duration),
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(transparent)]
    StateDir(#[from] StateDirError),
    #[error("pass lock {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("pass lock {path}: another regtrust pass (the agent, or another `regtrust sync`) has held it for {waited:?}; nothing was written. Run again when that pass has finished")]
    Busy { path: PathBuf, waited: Duration },
}

/// An exclusive `flock` on `<state-dir>/lock`, held for one pass and released on drop (or
/// by the kernel when the process dies, so a kill -9 never leaves it held).
#[derive(Debug)]
pub struct PassLock {
    _file: fs::File,
}

impl PassLock {
    /// Create the state dir if needed, refuse it if it is a symlink, and take the lock,
    /// waiting as `wait` says; `on_wait` is called once if the lock is busy at first.
    pub fn acquire(
        state_dir: &Path,
        host_root: &Path,
        wait: LockWait,
        on_wait: impl FnOnce(&Path),
    ) -> Result<PassLock, LockError> {
        use rustix::fs::{flock, FlockOperation};
        check_state_dir(state_dir, host_root)?;
        let path = state_dir.join(LOCK_FILE);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        if !state_dir.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(state_dir)
                .map_err(io)?;
            // Created through a link swapped in meanwhile? Check again.
            check_state_dir(state_dir, host_root)?;
        }
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&path)
            .map_err(io)?;
        let start = Instant::now();
        let mut on_wait = Some(on_wait);
        loop {
            match flock(&file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => return Ok(PassLock::locked(file, state_dir)),
                Err(e) if e == rustix::io::Errno::WOULDBLOCK || e == rustix::io::Errno::INTR => {}
                Err(e) => return Err(io(e.into())),
            }
            if let Some(f) = on_wait.take() {
                f(&path);
            }
            match wait {
                LockWait::Forever => match flock(&file, FlockOperation::LockExclusive) {
                    Ok(()) => return Ok(PassLock::locked(file, state_dir)),
                    Err(rustix::io::Errno::INTR) => {}
                    Err(e) => return Err(io(e.into())),
                },
                LockWait::For(max) if start.elapsed() >= max => {
                    return Err(LockError::Busy {
                        path,
                        waited: start.elapsed(),
                    })
                }
                // No flock with a timeout: poll, at most 20 times a second.
                LockWait::For(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

impl PassLock {
    /// Locked: the temp files a killed pass left in the state dir are nobody's now.
    fn locked(file: fs::File, state_dir: &Path) -> PassLock {
        for dir in [state_dir.to_path_buf(), state_dir.join(LAST_GOOD_DIR)] {
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name();
                let stray = name.to_str().is_some_and(|n| {
                    n.starts_with('.') && n.contains(".regtrust-") && n.ends_with(".tmp")
                });
                if stray {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        PassLock { _file: file }
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

    fn owned(sha: &str) -> Owned {
        Owned {
            sha256: sha.into(),
            host: "h".into(),
            runtime: "docker".into(),
        }
    }

    #[test]
    fn the_journal_survives_torn_lines_and_adopts_only_matching_content() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (
            Path::new("etc/docker/certs.d/a/ca.crt"),
            Path::new("etc/docker/certs.d/b/ca.crt"),
        );
        let (sha_x, sha_y) = (crate::ca::sha256_hex(b"x"), crate::ca::sha256_hex(b"y"));
        let mut j = Journal::new(dir.path());
        j.record(a, &owned(&sha_x), b"x").unwrap();
        // A kill in the middle of the next append.
        let path = dir.path().join(JOURNAL_FILE);
        let mut bytes = fs::read(&path).unwrap();
        bytes.extend_from_slice(br#"{"path":"etc/docker/certs.d/c/ca.crt","sha2"#);
        fs::write(&path, &bytes).unwrap();
        // The next pass appends after the torn line, not glued to it.
        let mut j = Journal::new(dir.path());
        j.record(b, &owned(&sha_y), b"y").unwrap();
        let (intents, problems) = pending_intents(dir.path());
        assert_eq!(problems, Vec::<String>::new());
        assert_eq!(
            intents.iter().map(|i| i.path.as_path()).collect::<Vec<_>>(),
            [a, b]
        );
        assert_eq!(last_good(dir.path(), &sha_x).unwrap(), b"x");

        // a's content is on disk: adopted; b's rename never happened: not.
        let mut l = Ledger::default();
        let adopted = l.adopt(&intents, |p| (p == a).then(|| sha_x.clone()));
        assert_eq!(adopted, [a.to_path_buf()]);
        assert_eq!(l.owned(a), Some(&owned(&sha_x)));
        assert_eq!(l.owned(b), None);

        // A saved ledger empties the journal and drops copies nobody owns.
        l.version = VERSION;
        l.save(dir.path()).unwrap();
        assert!(!path.exists());
        assert!(last_good(dir.path(), &sha_x).is_some());
        assert!(last_good(dir.path(), &sha_y).is_none());

        // Hostile lines name nothing outside the trust dirs.
        fs::write(
            &path,
            format!("{{\"path\":\"etc/shadow\",\"sha256\":\"{sha_x}\",\"host\":\"h\",\"runtime\":\"docker\"}}\n[1]\n"),
        )
        .unwrap();
        let (intents, problems) = pending_intents(dir.path());
        assert!(intents.is_empty());
        assert_eq!(problems.len(), 2, "{problems:?}");
    }

    #[test]
    fn state_dir_links_are_refused_and_the_lock_is_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fs::create_dir_all(root.join("var")).unwrap();
        std::os::unix::fs::symlink("/tmp", root.join("var/lib")).unwrap();
        let err = check_state_dir(&root.join("var/lib/regtrust"), &root).unwrap_err();
        assert!(matches!(err, StateDirError::Symlink { .. }), "{err}");
        let state = dir.path().join("state");
        let held = PassLock::acquire(&state, &root, LockWait::Forever, |_| {}).unwrap();
        let mut waited = false;
        let err = PassLock::acquire(
            &state,
            &root,
            LockWait::For(Duration::from_millis(10)),
            |_| waited = true,
        )
        .unwrap_err();
        assert!(waited && matches!(err, LockError::Busy { .. }), "{err}");
        drop(held);
        PassLock::acquire(
            &state,
            &root,
            LockWait::For(Duration::from_millis(10)),
            |_| {},
        )
        .unwrap();
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
