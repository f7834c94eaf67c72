//! Which directories the agent watches, and the watcher that turns their events into one
//! signal. Facts: shared/reference/semantics-protocols.md §4 (kubelet's AtomicWriter swaps a
//! `..data` symlink; a watch on the file or on `..data` goes deaf after the first update).
//!
//! - Inputs are watched through their parent dir (a Secret volume dir given as the input is
//!   watched itself), non-recursively; the owned trust files through their host dirs and the
//!   runtimes' `certs.d` dirs, so a deleted or edited owned file is seen and restored.
//! - Any event but `Access` is a trigger, and so are a `Rescan` (queue overflow) and a
//!   watcher error: the agent re-reads everything and `sync` acts only on real differences,
//!   so names and kinds are never inspected (§4.5, 2).
//! - The signal is a `tokio::sync::Notify`: it stores one permit, so a burst of events while
//!   a sync runs costs exactly one more sync.
//! - notify-debouncer-full with its `FileIdMap` (inode tracking) debounces the events
//!   (trailing, `debounce`); its callback only signals. A debounce alone puts its whole
//!   timeout on every update's latency, so the watcher it drives is wrapped (`Tee`) to also
//!   signal on the first raw event (leading edge); the agent coalesces and rate-limits.
//! - Dirs are re-registered when the set changes after a sync (hosts added) and when a
//!   watched dir was replaced (a wiped and recreated `certs.d`): the kernel drops the watch
//!   of a deleted dir, and ext4 hands the new dir the same inode number at once, so the
//!   callback also notes the paths of `Remove` and rename events, and a watched dir among
//!   them (or with another inode) is watched again.
//!
//! It does not read inputs or decide what changed (`sync` does), and never writes.

use crate::report::Problem;
use crate::sync::Config;
use crate::trust::ledger::Ledger;
use notify::event::ModifyKind;
use notify::{Event, EventHandler, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use notify_debouncer_full::{new_debouncer_opt, DebounceEventResult, Debouncer, FileIdMap};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;

/// How the watcher signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Trailing debounce of notify-debouncer-full (also its tick): a burst is signalled
    /// again once it has been quiet this long.
    pub debounce: Duration,
    /// Also signal on the first raw event of a burst (latency of a sync, not of a debounce).
    pub leading_edge: bool,
}

/// What the agent should do about one watcher event: false only for `Access` (opens,
/// closes, reads — including the agent's own reads of the inputs, which would otherwise
/// loop). Errors and `Rescan` (kind `Other`) are triggers.
pub fn triggers(event: &notify::Result<Event>) -> bool {
    match event {
        Ok(e) => !matches!(e.kind, EventKind::Access(_)),
        Err(_) => true,
    }
}

/// The dirs to watch for this configuration, as absolute paths (each exists now, or is
/// replaced by its nearest existing ancestor so that its creation is seen).
pub fn dirs_to_watch(cfg: &Config) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    for input in cfg
        .pull_secrets
        .iter()
        .chain(cfg.cas.iter().map(|c| &c.path))
    {
        input_dirs(input, &mut out);
    }
    let root = absolute(&cfg.host_root);
    // Where each runtime reads (containerd's configured config_path, k3s's dir, ...).
    for dir in crate::runtime::Node::read(&root, &cfg.runtimes).trust_roots() {
        out.insert(existing_ancestor(&root.join(dir)));
    }
    // An unreadable ledger owns nothing (trust::ledger); the certs.d watches still see
    // host dirs come and go.
    if let Ok(ledger) = Ledger::load(&cfg.state_dir) {
        for rel in ledger.files.keys() {
            if let Some(dir) = rel.parent() {
                out.insert(existing_ancestor(&root.join(dir)));
            }
        }
    }
    out
}

fn input_dirs(input: &Path, out: &mut BTreeSet<PathBuf>) {
    let abs = absolute(input);
    let dir = if abs.is_dir() {
        abs.clone()
    } else {
        abs.parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| "/".into())
    };
    out.insert(existing_ancestor(&dir));
    // A symlinked input that lives elsewhere: watch where it really is too, unless that is
    // one of kubelet's `..<timestamp>` dirs, which every update replaces (the volume dir's
    // own watch sees the `..data` swap).
    if let Ok(real) = std::fs::canonicalize(&abs) {
        let real_dir = if real.is_dir() {
            real
        } else {
            match real.parent() {
                Some(p) => p.to_path_buf(),
                None => return,
            }
        };
        let kubelet_internal = real_dir.components().any(|c| match c {
            Component::Normal(n) => n.to_string_lossy().starts_with(".."),
            _ => false,
        });
        if !kubelet_internal {
            out.insert(real_dir);
        }
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

fn existing_ancestor(p: &Path) -> PathBuf {
    let mut cur = p;
    loop {
        if cur.is_dir() {
            return cur.to_path_buf();
        }
        match cur.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => cur = parent,
            _ => return PathBuf::from("/"),
        }
    }
}

/// A watched dir's identity: the same path with another inode is another dir, whose
/// inotify watch must be added again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DirId {
    dev: u64,
    ino: u64,
}

fn dir_id(p: &Path) -> std::io::Result<DirId> {
    let m = std::fs::metadata(p)?;
    Ok(DirId {
        dev: m.dev(),
        ino: m.ino(),
    })
}

/// What one `update` changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    /// Newly watched dirs, including re-added replaced ones.
    pub added: Vec<PathBuf>,
    pub removed: Vec<PathBuf>,
}

/// The watcher and the dirs it watches. Plain synchronous code: the agent calls `update`
/// off its async threads, after every sync.
pub struct Watch {
    signal: Arc<Notify>,
    settings: Settings,
    debouncer: Option<Debouncer<Tee, FileIdMap>>,
    watched: BTreeMap<PathBuf, DirId>,
    /// Why a wanted dir is not watched (retried on the next update).
    failures: BTreeMap<PathBuf, String>,
    start_error: Option<String>,
    /// Errors the watcher reported through its callback since the last update.
    errors: Arc<Mutex<Vec<String>>>,
    /// Paths removed or renamed since the last update (see `Lost`).
    lost: Arc<Mutex<Lost>>,
}

const MAX_KEPT_ERRORS: usize = 8;
const MAX_LOST_PATHS: usize = 256;

/// Paths seen removed or renamed away; past the cap, every watch is renewed.
#[derive(Debug, Default)]
struct Lost {
    paths: BTreeSet<PathBuf>,
    overflow: bool,
}

impl Lost {
    fn note(&mut self, paths: &[PathBuf]) {
        for p in paths {
            if self.paths.len() >= MAX_LOST_PATHS {
                self.overflow = true;
                return;
            }
            self.paths.insert(p.clone());
        }
    }
}

impl Watch {
    /// No watch is registered until the first `update`.
    pub fn new(signal: Arc<Notify>, settings: Settings) -> Watch {
        Watch {
            signal,
            settings,
            debouncer: None,
            watched: BTreeMap::new(),
            failures: BTreeMap::new(),
            start_error: None,
            errors: Arc::new(Mutex::new(Vec::new())),
            lost: Arc::new(Mutex::new(Lost::default())),
        }
    }

    /// Watch exactly `dirs` (non-recursively): add the new ones and the replaced ones,
    /// drop the ones no longer wanted. A dir that cannot be watched is a problem until it
    /// can; the periodic resync covers it meanwhile.
    pub fn update(&mut self, dirs: &BTreeSet<PathBuf>) -> Changes {
        let mut changes = Changes::default();
        for e in std::mem::take(&mut *self.errors.lock().unwrap_or_else(PoisonError::into_inner)) {
            tracing::warn!(error = %e, "file watcher error; all inputs are re-read");
        }
        let lost = std::mem::take(&mut *self.lost.lock().unwrap_or_else(PoisonError::into_inner));
        if self.debouncer.is_none() {
            match start(&self.signal, self.settings, &self.errors, &self.lost) {
                Ok(d) => {
                    if self.start_error.take().is_some() {
                        tracing::info!("file watcher started after an earlier failure");
                    }
                    self.debouncer = Some(d);
                    self.watched.clear();
                }
                Err(e) => {
                    let msg = format!("cannot start the file watcher: {e}");
                    if self.start_error.as_deref() != Some(msg.as_str()) {
                        tracing::warn!(error = %e, "cannot start the file watcher; relying on the periodic resync");
                    }
                    self.start_error = Some(msg);
                    return changes;
                }
            }
        }
        let Some(debouncer) = self.debouncer.as_mut() else {
            return changes;
        };

        let gone: Vec<PathBuf> = self
            .watched
            .keys()
            .filter(|p| !dirs.contains(*p))
            .cloned()
            .collect();
        for p in gone {
            // The kernel drops the watch of a deleted dir by itself; an error here only
            // says so.
            let _ = debouncer.unwatch(&p);
            self.watched.remove(&p);
            changes.removed.push(p);
        }
        self.failures.retain(|p, _| dirs.contains(p));

        for dir in dirs {
            let id = match dir_id(dir) {
                Ok(id) => id,
                // Gone between listing and watching: its parent's watch sees it come back.
                Err(_) => continue,
            };
            let replaced = lost.overflow || lost.paths.contains(dir);
            match self.watched.get(dir) {
                Some(old) if *old == id && !replaced => continue,
                Some(_) => {
                    let _ = debouncer.unwatch(dir);
                    self.watched.remove(dir);
                }
                None => {}
            }
            match debouncer.watch(dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    if self.failures.remove(dir).is_some() {
                        tracing::info!(dir = %dir.display(), "watching again");
                    }
                    self.watched.insert(dir.clone(), id);
                    changes.added.push(dir.clone());
                }
                Err(e) if matches!(e.kind, notify::ErrorKind::PathNotFound) => {}
                Err(e) => {
                    let why = match e.kind {
                        notify::ErrorKind::MaxFilesWatch => {
                            "the inotify watch limit is reached (raise fs.inotify.max_user_watches)"
                                .to_string()
                        }
                        _ => e.to_string(),
                    };
                    if self.failures.get(dir) != Some(&why) {
                        tracing::warn!(dir = %dir.display(), error = %why, "cannot watch; relying on the periodic resync");
                    }
                    self.failures.insert(dir.clone(), why);
                }
            }
        }
        changes
    }

    pub fn watched(&self) -> impl Iterator<Item = &Path> {
        self.watched.keys().map(PathBuf::as_path)
    }

    /// The watch trouble to show in the report.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if let Some(e) = &self.start_error {
            out.push(Problem::new(
                "watch",
                format!("{e}; changes are applied only at the periodic resync"),
            ));
        }
        for (dir, why) in &self.failures {
            out.push(Problem::new(
                dir.display().to_string(),
                format!(
                    "cannot watch: {why}; changes here are applied only at the periodic resync"
                ),
            ));
        }
        out
    }
}

fn start(
    signal: &Arc<Notify>,
    settings: Settings,
    errors: &Arc<Mutex<Vec<String>>>,
    lost: &Arc<Mutex<Lost>>,
) -> notify::Result<Debouncer<Tee, FileIdMap>> {
    HANDOFF.with(|h| {
        *h.borrow_mut() = Some(Handoff {
            signal: signal.clone(),
            leading_edge: settings.leading_edge,
            lost: lost.clone(),
        })
    });
    let trailing = signal.clone();
    let errors = errors.clone();
    let debouncer = new_debouncer_opt::<_, Tee, FileIdMap>(
        settings.debounce,
        // A tick as long as the timeout: the idle thread wakes 1/debounce times a second.
        Some(settings.debounce),
        move |result: DebounceEventResult| match result {
            Ok(events) => {
                if events
                    .iter()
                    .any(|e| !matches!(e.event.kind, EventKind::Access(_)))
                {
                    trailing.notify_one();
                }
            }
            Err(errs) => {
                let mut kept = errors.lock().unwrap_or_else(PoisonError::into_inner);
                for e in errs {
                    if kept.len() < MAX_KEPT_ERRORS {
                        kept.push(e.to_string());
                    }
                }
                drop(kept);
                trailing.notify_one();
            }
        },
        FileIdMap::new(),
        notify::Config::default(),
    );
    // Taken by `Tee::new` on success; cleared here in every case.
    HANDOFF.with(|h| h.borrow_mut().take());
    debouncer
}

struct Handoff {
    signal: Arc<Notify>,
    leading_edge: bool,
    lost: Arc<Mutex<Lost>>,
}

thread_local! {
    /// Hands the signal to `Tee::new`, which `new_debouncer_opt` calls once, on the calling
    /// thread, before it returns (its signature has no room for it).
    static HANDOFF: RefCell<Option<Handoff>> = const { RefCell::new(None) };
}

/// The platform watcher with a leading edge: each raw event that `triggers` signals at
/// once, then goes on to the debouncer (its `FileIdMap` bookkeeping and trailing signal).
/// Paths of `Remove` and rename events are noted first (a watched dir among them lost its
/// watch), so the sync the signal starts sees them.
struct Tee(RecommendedWatcher);

impl Watcher for Tee {
    fn new<F: EventHandler>(mut debouncer: F, config: notify::Config) -> notify::Result<Self> {
        let handoff = HANDOFF
            .with(|h| h.borrow_mut().take())
            .ok_or_else(|| notify::Error::generic("watch::Tee is created only by watch::start"))?;
        let Handoff {
            signal,
            leading_edge,
            lost,
        } = handoff;
        RecommendedWatcher::new(
            move |event: notify::Result<Event>| {
                if let Ok(e) = &event {
                    if matches!(
                        e.kind,
                        EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(_))
                    ) {
                        lost.lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .note(&e.paths);
                    }
                }
                if leading_edge && triggers(&event) {
                    signal.notify_one();
                }
                debouncer.handle_event(event);
            },
            config,
        )
        .map(Tee)
    }

    fn watch(&mut self, path: &Path, mode: RecursiveMode) -> notify::Result<()> {
        self.0.watch(path, mode)
    }

    fn unwatch(&mut self, path: &Path) -> notify::Result<()> {
        self.0.unwatch(path)
    }

    fn configure(&mut self, option: notify::Config) -> notify::Result<bool> {
        self.0.configure(option)
    }

    fn kind() -> notify::WatcherKind {
        RecommendedWatcher::kind()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::CaSpec;
    use crate::trust::Runtime;
    use notify::event::{
        AccessKind, AccessMode, CreateKind, DataChange, Flag, RemoveKind, RenameMode,
    };
    use std::fs;

    #[test]
    fn only_access_is_ignored() {
        let ev = |k| Ok(Event::new(k));
        let cases: Vec<(notify::Result<Event>, bool)> = vec![
            (
                ev(EventKind::Access(AccessKind::Open(AccessMode::Any))),
                false,
            ),
            (
                ev(EventKind::Access(AccessKind::Close(AccessMode::Write))),
                false,
            ),
            (ev(EventKind::Access(AccessKind::Read)), false),
            (ev(EventKind::Create(CreateKind::Folder)), true),
            (ev(EventKind::Create(CreateKind::File)), true),
            (
                ev(EventKind::Modify(ModifyKind::Name(RenameMode::Both))),
                true,
            ),
            (
                ev(EventKind::Modify(ModifyKind::Data(DataChange::Any))),
                true,
            ),
            (
                ev(EventKind::Modify(ModifyKind::Metadata(
                    notify::event::MetadataKind::Any,
                ))),
                true,
            ),
            (ev(EventKind::Remove(RemoveKind::Folder)), true),
            (
                Ok(Event::new(EventKind::Other).set_flag(Flag::Rescan)),
                true,
            ),
            (ev(EventKind::Any), true),
            (Err(notify::Error::generic("inotify read failed")), true),
        ];
        for (event, want) in cases {
            assert_eq!(triggers(&event), want, "{event:?}");
        }
    }

    fn config(root: &Path, cas: &[&Path], secrets: &[&Path], runtimes: &[Runtime]) -> Config {
        Config {
            host_root: root.to_path_buf(),
            state_dir: root.join("var/lib/regtrust"),
            runtimes: runtimes.to_vec(),
            replace_foreign: false,
            node: "n".into(),
            pull_secrets: secrets.iter().map(|p| p.to_path_buf()).collect(),
            cas: cas
                .iter()
                .map(|p| CaSpec {
                    host: None,
                    path: p.to_path_buf(),
                })
                .collect(),
            registries: vec![],
            go_versions: Vec::new(),
        }
    }

    #[test]
    fn dirs_per_input_shape() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("host");
        let inputs = t.path().join("in");
        for d in [
            "host/etc/docker/certs.d/h",
            "host/etc/containerd",
            "in/vol/..2026_01_01_00_00_00.1",
            "in/plain",
            "in/elsewhere",
        ] {
            fs::create_dir_all(t.path().join(d)).unwrap();
        }
        // A Secret volume: ca.crt -> ..data/ca.crt, ..data -> ..<ts>.
        let vol = inputs.join("vol");
        fs::write(vol.join("..2026_01_01_00_00_00.1/ca.crt"), "x").unwrap();
        std::os::unix::fs::symlink("..2026_01_01_00_00_00.1", vol.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/ca.crt", vol.join("ca.crt")).unwrap();
        fs::write(inputs.join("plain/ca.pem"), "x").unwrap();
        fs::write(inputs.join("elsewhere/real.pem"), "x").unwrap();
        std::os::unix::fs::symlink(
            inputs.join("elsewhere/real.pem"),
            inputs.join("plain/link.pem"),
        )
        .unwrap();
        let mut ledger = Ledger::load(&root.join("var/lib/regtrust")).unwrap();
        ledger.files.insert(
            "etc/docker/certs.d/h/ca.crt".into(),
            crate::trust::ledger::Owned {
                sha256: "x".into(),
                host: "h".into(),
                runtime: "docker".into(),
            },
        );
        ledger.files.insert(
            "etc/containerd/certs.d/gone/ca.crt".into(),
            crate::trust::ledger::Owned {
                sha256: "x".into(),
                host: "gone".into(),
                runtime: "containerd".into(),
            },
        );
        ledger.save(&root.join("var/lib/regtrust")).unwrap();

        let cases: Vec<(Vec<PathBuf>, Vec<PathBuf>, Vec<PathBuf>)> = vec![
            // A Secret volume dir as the input: the dir itself, never ..data or a ts dir.
            (vec![vol.clone()], vec![], vec![vol.clone()]),
            // A file inside a Secret volume: its parent (the volume dir).
            (vec![vol.join("ca.crt")], vec![], vec![vol.clone()]),
            // A plain file: its parent.
            (
                vec![inputs.join("plain/ca.pem")],
                vec![],
                vec![inputs.join("plain")],
            ),
            // A symlink to a file elsewhere: both dirs.
            (
                vec![inputs.join("plain/link.pem")],
                vec![],
                vec![inputs.join("plain"), inputs.join("elsewhere")],
            ),
            // Missing: the nearest existing ancestor, so its creation is seen.
            (
                vec![inputs.join("not/yet/ca.crt")],
                vec![],
                vec![inputs.clone()],
            ),
            // A pull-secret dir.
            (
                vec![],
                vec![inputs.join("plain")],
                vec![inputs.join("plain")],
            ),
        ];
        let trust = [
            root.join("etc/docker/certs.d"),
            root.join("etc/docker/certs.d/h"),
            root.join("etc/containerd"),
        ];
        for (cas, secrets, want) in cases {
            let cas: Vec<&Path> = cas.iter().map(PathBuf::as_path).collect();
            let secrets: Vec<&Path> = secrets.iter().map(PathBuf::as_path).collect();
            let cfg = config(
                &root,
                &cas,
                &secrets,
                &[Runtime::Docker, Runtime::Containerd],
            );
            let got = dirs_to_watch(&cfg);
            let mut expected: BTreeSet<PathBuf> = want.into_iter().collect();
            expected.extend(trust.iter().cloned());
            assert_eq!(got, expected, "{cas:?} {secrets:?}");
        }
    }

    #[test]
    fn relative_inputs_become_absolute() {
        let cfg = config(Path::new("."), &[Path::new("ca.crt")], &[], &[]);
        for d in dirs_to_watch(&cfg) {
            assert!(d.is_absolute(), "{}", d.display());
        }
    }

    /// Wait for the signal, with a deadline (no sleeps).
    fn signalled(signal: &Arc<Notify>, what: &str) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(10), signal.notified())
                .await
                .unwrap_or_else(|_| panic!("no signal after {what}"));
        });
    }

    #[test]
    fn signals_and_follows_replaced_dirs() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("certs.d");
        fs::create_dir(&dir).unwrap();
        let signal = Arc::new(Notify::new());
        let mut w = Watch::new(
            signal.clone(),
            Settings {
                debounce: Duration::from_millis(50),
                leading_edge: true,
            },
        );
        let dirs: BTreeSet<PathBuf> = [dir.clone()].into();
        assert_eq!(w.update(&dirs).added, vec![dir.clone()]);
        assert_eq!(w.update(&dirs), Changes::default());

        fs::write(dir.join("ca.crt"), "x").unwrap();
        signalled(&signal, "a file was created");

        // Wipe and recreate the dir (ext4 may give it the same inode number): once the
        // removal event is in, the watch is added again (the agent tests prove events from
        // the new dir arrive: a wiped certs.d is restored twice in a row with no resync).
        fs::remove_dir_all(&dir).unwrap();
        fs::create_dir(&dir).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while w.update(&dirs).added != vec![dir.clone()] {
            assert!(
                std::time::Instant::now() < deadline,
                "the replaced dir was never re-watched"
            );
            std::thread::yield_now();
        }
        // Settles: nothing more to renew.
        while w.update(&dirs) != Changes::default() {
            assert!(
                std::time::Instant::now() < deadline,
                "the watch never settled"
            );
            std::thread::yield_now();
        }

        let none = BTreeSet::new();
        assert_eq!(w.update(&none).removed, vec![dir.clone()]);
        assert_eq!(w.watched().count(), 0);
        assert!(w.problems().is_empty());
    }

    #[test]
    fn trailing_only_still_signals() {
        let t = tempfile::tempdir().unwrap();
        let signal = Arc::new(Notify::new());
        let mut w = Watch::new(
            signal.clone(),
            Settings {
                debounce: Duration::from_millis(20),
                leading_edge: false,
            },
        );
        w.update(&[t.path().to_path_buf()].into());
        fs::write(t.path().join("f"), "x").unwrap();
        signalled(&signal, "a file was created (trailing debounce only)");
    }
}
