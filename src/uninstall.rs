//! `regtrust agent --uninstall` (issue 15 point 6): remove every file regtrust owns on the
//! node (as the ledger lists them, each only while its bytes are still regtrust's), the
//! host dirs it created once empty, then its state dir (the ledger and what was set aside
//! next to it), and idle until stopped. The Helm chart runs it as a pre-delete hook
//! DaemonSet; the kustomize docs run the same with one `kubectl patch`.
//!
//! While idling it looks again every few seconds and removes what a still-running agent
//! may have written meanwhile (a pre-delete hook starts before the agent's DaemonSet is
//! deleted). It never touches a file the ledger does not list.

use crate::report::{Report, TrustEntry, TrustState};
use crate::sync::Config;
use crate::trust::{apply, ledger::Ledger};
use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often the idling uninstaller looks for files written after its first pass.
const RECHECK: Duration = Duration::from_secs(5);

/// The outcome of one uninstall pass.
#[derive(Debug)]
pub struct Uninstalled {
    /// One entry per owned file: removed, or why it stayed.
    pub files: Vec<TrustEntry>,
    /// Ledger and state-dir trouble, as messages naming the path.
    pub problems: Vec<String>,
    /// True when nothing regtrust owns is left and the state dir is gone.
    pub clean: bool,
}

/// One pass: remove what the ledger lists, then the state dir when nothing is left in it.
pub fn uninstall_once(cfg: &Config) -> Uninstalled {
    let outcome = apply::apply(&apply::ApplyRequest {
        host_root: &cfg.host_root,
        state_dir: &cfg.state_dir,
        targets: &[],
        retained_hosts: &BTreeSet::new(),
        remove_stale: true,
        replace_foreign: false,
        hold: None,
    });
    let mut problems = outcome.ledger_problems;
    let files: Vec<TrustEntry> = outcome
        .files
        .iter()
        .map(|f| TrustEntry {
            runtime: f.runtime.clone(),
            path: f.path.display().to_string(),
            state: f.state,
            detail: f.detail.clone(),
        })
        .collect();
    let left = match Ledger::load(&cfg.state_dir) {
        Ok(l) => l.files.len(),
        Err(e) => {
            problems.push(e.to_string());
            1
        }
    };
    let mut clean = left == 0 && !files.iter().any(|f| f.state == TrustState::Error);
    if clean {
        if let Err(e) = remove_state_dir(&cfg.state_dir) {
            problems.push(e);
            clean = false;
        }
    } else {
        problems.push(format!(
            "{left} file(s) regtrust owns could not be removed; the ledger in {} stays so the \
             next try finds them",
            cfg.state_dir.display()
        ));
    }
    Uninstalled {
        files,
        problems,
        clean,
    }
}

/// The state dir holds only what regtrust put there: the ledger, its temp files and
/// ledgers set aside as unreadable, the pass lock, the intent journal and the `last-good/`
/// copies (files named by their SHA-256). Anything else stays, and so does the dir then.
fn remove_state_dir(dir: &Path) -> Result<(), String> {
    use crate::trust::ledger::{JOURNAL_FILE, LAST_GOOD_DIR, LEDGER_FILE, LOCK_FILE};
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("state dir {}: {e}", dir.display())),
    };
    let mut foreign = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let file_type = entry.file_type().ok();
        let is_file = file_type.is_some_and(|t| t.is_file());
        let is_dir = file_type.is_some_and(|t| t.is_dir());
        let ours = name == LEDGER_FILE
            || name == LOCK_FILE
            || name == JOURNAL_FILE
            || name.starts_with("ledger.json.")
            || name.starts_with(".ledger.json")
            || name.starts_with(".regtrust");
        if ours && is_file {
            fs::remove_file(entry.path())
                .map_err(|e| format!("removing {}: {e}", entry.path().display()))?;
        } else if name == LAST_GOOD_DIR && is_dir {
            if let Err(mut left) = remove_last_good(&entry.path()) {
                foreign.append(&mut left);
            }
        } else {
            foreign.push(name);
        }
    }
    if !foreign.is_empty() {
        return Err(format!(
            "state dir {} also holds {} that regtrust did not write; left in place with the dir",
            dir.display(),
            foreign.join(", ")
        ));
    }
    match fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        // A hostPath mount point cannot be removed from inside the pod; empty is clean.
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => Ok(()),
        Err(e) => Err(format!("removing state dir {}: {e}", dir.display())),
    }
}

/// `last-good/`: regtrust's kept copies (64 hex digits, regular files) and its temp files;
/// the dir goes when nothing else is in it. Err lists what was not regtrust's.
fn remove_last_good(dir: &Path) -> Result<(), Vec<String>> {
    let mut foreign = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| vec![format!("{}: {e}", dir.display())])?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        let kept = name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit());
        let stray = name.starts_with('.') && name.contains(".regtrust-") && name.ends_with(".tmp");
        if is_file && (kept || stray) {
            if let Err(e) = fs::remove_file(entry.path()) {
                foreign.push(format!("{} ({e})", entry.path().display()));
            }
        } else {
            foreign.push(format!("last-good/{name}"));
        }
    }
    if foreign.is_empty() {
        fs::remove_dir(dir).map_err(|e| vec![format!("{}: {e}", dir.display())])
    } else {
        Err(foreign)
    }
}

/// The pass as a report (the same JSON/text as sync's), for the log.
pub fn report(cfg: &Config, u: &Uninstalled) -> Report {
    let mut r = Report::new(cfg.node.clone(), time::OffsetDateTime::now_utc());
    let mut by_host = std::collections::BTreeMap::<String, crate::report::RegistryReport>::new();
    for f in &u.files {
        // The host is the trust dir's name, right above the file.
        let host = Path::new(&f.path)
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        by_host
            .entry(host.clone())
            .or_insert_with(|| crate::report::RegistryReport {
                host,
                verdict: crate::report::Verdict::Unknown,
                message: "uninstall".into(),
                trust: Vec::new(),
                probes: Vec::new(),
                ca: None,
                harbor: None,
            })
            .trust
            .push(f.clone());
    }
    r.registries = by_host.into_values().collect();
    r.problems = u
        .problems
        .iter()
        .map(|m| crate::report::Problem::new(cfg.state_dir.display().to_string(), m.clone()))
        .collect();
    r
}

/// `regtrust agent --uninstall`: one pass, printed, then idle (re-checking) until SIGTERM
/// or SIGINT, serving `/healthz` and `/readyz` on `listen` (ready once nothing regtrust
/// owns is left, so `kubectl rollout status` waits for every node to be clean).
/// `exit_after` ends after the first pass (tests, hand runs). Exit code 0 when clean, 1
/// when something stayed.
pub fn run(cfg: &Config, exit_after: bool, listen: std::net::SocketAddr) -> u8 {
    let first = uninstall_once(cfg);
    crate::cli::emit(&report(cfg, &first).to_text());
    if first.clean {
        tracing::info!(node = %cfg.node, "uninstall done: nothing regtrust owns is left on this node");
    } else {
        tracing::warn!(node = %cfg.node, "uninstall incomplete; retrying while idle");
    }
    if exit_after {
        return u8::from(!first.clean);
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("regtrust agent --uninstall: starting the runtime: {e}");
            return 1;
        }
    };
    rt.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return 1;
        };
        let clean = Arc::new(AtomicBool::new(first.clean));
        let listener = match tokio::net::TcpListener::bind(listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("regtrust agent --uninstall: listening on {listen}: {e}");
                return 1;
            }
        };
        let ready = clean.clone();
        let app = axum::Router::new()
            .route("/healthz", axum::routing::get(|| async { "ok\n" }))
            .route(
                "/readyz",
                axum::routing::get(move || {
                    let ready = ready.clone();
                    async move {
                        if ready.load(Ordering::SeqCst) {
                            (axum::http::StatusCode::OK, "uninstalled\n")
                        } else {
                            (
                                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                                "not ready: files regtrust owns are still on this node\n",
                            )
                        }
                    }
                }),
            );
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let mut tick = tokio::time::interval(RECHECK);
        let code = loop {
            tokio::select! {
                _ = term.recv() => break 0,
                _ = int.recv() => break 0,
                _ = tick.tick() => {
                    if Ledger::path(&cfg.state_dir).exists() {
                        let cfg = cfg.clone();
                        let again = tokio::task::spawn_blocking(move || uninstall_once(&cfg)).await;
                        if let Ok(u) = again {
                            clean.store(u.clean, Ordering::SeqCst);
                            if !u.files.is_empty() {
                                tracing::info!(files = u.files.len(), clean = u.clean, "removed files written after the uninstall began");
                            }
                        }
                    }
                }
            }
        };
        server.abort();
        code
    })
}
