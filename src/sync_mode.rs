//! What a pass may do besides writing what it wants (issue 15 points 2 and 3): a hand-run
//! `sync` without `--prune` keeps every owned file it does not name (other registries,
//! runtimes not selected), `--dry-run` and a held pass (a pull secret with keys that are
//! not registries) change nothing, and a sync that finds no runtime says so.
//! `sync.rs` calls these at its call sites; the pass itself stays there.

use crate::pull_secret::PullSecrets;
use crate::report::{RegistryReport, TrustEntry, TrustState, Verdict};
use crate::sync::{Config, PassMode};
use crate::trust::layout::Target;
use crate::trust::ledger::{Ledger, Owned};
use crate::trust::Runtime;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// An owned file this pass does not want but keeps, because it runs without `--prune`.
#[derive(Debug, Clone)]
pub struct Kept {
    pub rel: PathBuf,
    pub owned: Owned,
    pub why: String,
}

/// Without `--prune`: every host the ledger owns files for is retained (nothing owned is
/// removed), and the owned files the pass does not want are returned for the report.
/// With it: nothing is kept beyond what the pass already retains.
pub fn keep_unnamed(
    cfg: &Config,
    mode: PassMode,
    targets: &[Target],
    retained: &mut BTreeSet<String>,
) -> Vec<Kept> {
    if mode.prune {
        return Vec::new();
    }
    // An unreadable ledger is apply's to report; with no ledger nothing is owned.
    let Ok(ledger) = Ledger::load(&cfg.state_dir) else {
        return Vec::new();
    };
    let wanted: BTreeSet<&PathBuf> = targets.iter().map(|t| &t.rel_path).collect();
    let named: BTreeSet<String> = targets.iter().map(|t| t.host.to_string()).collect();
    let mut kept = Vec::new();
    for (rel, owned) in &ledger.files {
        if wanted.contains(rel) || retained.contains(&owned.host) {
            continue;
        }
        let selected = Runtime::parse(&owned.runtime).is_some_and(|r| cfg.runtimes.contains(&r));
        let why = if !selected {
            format!(
                "kept: runtime {} is not selected by --runtime; sync --prune would remove it",
                owned.runtime
            )
        } else if named.contains(&owned.host) {
            "kept: this pass no longer wants it; sync --prune would remove it".to_string()
        } else {
            "kept: this pass does not name this registry; sync --prune would remove it".to_string()
        };
        kept.push(Kept {
            rel: rel.clone(),
            owned: owned.clone(),
            why,
        });
    }
    for k in &kept {
        retained.insert(k.owned.host.clone());
    }
    kept
}

/// Put the kept files into the report, under their registry.
pub fn report_kept(cfg: &Config, kept: &[Kept], by_host: &mut BTreeMap<String, RegistryReport>) {
    for k in kept {
        let r = by_host
            .entry(k.owned.host.clone())
            .or_insert_with(|| RegistryReport {
                host: k.owned.host.clone(),
                verdict: Verdict::Unknown,
                message: "not named by this pass; its files are kept (sync --prune removes them)"
                    .into(),
                trust: Vec::new(),
                probes: Vec::new(),
                ca: None,
                harbor: None,
            });
        r.trust.push(TrustEntry {
            runtime: k.owned.runtime.clone(),
            path: cfg.host_root.join(&k.rel).display().to_string(),
            state: TrustState::Unchanged,
            detail: k.why.clone(),
        });
    }
}

/// Why this pass changes nothing on disk, if it does not.
pub fn hold_reason(mode: PassMode, secrets: &PullSecrets) -> Option<String> {
    if mode.dry_run {
        return Some("--dry-run".to_string());
    }
    let mut held: Vec<String> = secrets
        .held
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    held.dedup();
    (!held.is_empty()).then(|| {
        format!(
            "pull secret {} is not a pull secret as given or names a key that is not a \
             registry (see its problem); fix it and the next pass applies",
            held.join(", ")
        )
    })
}

/// `sync` found no runtime under the host root: what it looked for and how to choose.
pub fn no_runtime(cfg: &Config) -> String {
    // What `--runtime auto` takes as evidence (an empty dir is none): runtime::detect.
    let looked: Vec<String> = Runtime::ALL
        .iter()
        .flat_map(|&r| crate::runtime::evidence_paths(r).into_iter().take(2))
        .map(|p| cfg.host_root.join(p).display().to_string())
        .collect();
    format!(
        "no container runtime found under --host-root {} (none of {}, or another config \
         file, socket or binary of a runtime, exists); nothing was \
         done. Give the node's root filesystem with --host-root (/ on the node, /host in the \
         DaemonSet), or choose runtimes with --runtime docker,containerd,crio",
        cfg.host_root.display(),
        looked.join(", ")
    )
}
