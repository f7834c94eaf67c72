//! The aggregator's store: ONE interface (`Store`) over two backends, SQLite (`sqlite`, one
//! file, the default) and PostgreSQL (`postgres`, several replicas on one database). Both
//! keep the same rows and follow the same rules, written once here where they can be:
//! what a report contributes (`Facts`), newest truth (a report older than the stored one is
//! not applied and records no transition), the fleet bounds (`Limits`), and which errors
//! mean "the database is unavailable" (503) or "the fleet is full" (422).
//! It does not judge the fleet (`fleet`) or speak HTTP (`api`).

pub mod postgres;
pub mod sqlite;

use super::fleet::{Event, NodeRow, RegistryRow};
use crate::report::{Report, Verdict};
use std::sync::Arc;
use std::time::Duration;

/// The schema this build writes on SQLite (`PRAGMA user_version`). A database with a newer
/// one is refused.
pub const SQLITE_SCHEMA_VERSION: i64 = 1;
/// The schema this build writes on PostgreSQL (`regtrust_schema`, one row per step).
pub const PG_SCHEMA_VERSION: i64 = 2;
/// How often retention runs.
pub const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Where the fleet is kept: `--db PATH` (SQLite) or `--db postgres://...`.
#[derive(Debug, Clone)]
pub enum DbTarget {
    Sqlite(std::path::PathBuf),
    Postgres(Box<postgres::Target>),
}

impl From<std::path::PathBuf> for DbTarget {
    fn from(p: std::path::PathBuf) -> DbTarget {
        DbTarget::Sqlite(p)
    }
}

impl DbTarget {
    /// The target as it may be logged: a path, or the URL without its password.
    pub fn describe(&self) -> String {
        match self {
            DbTarget::Sqlite(p) => p.display().to_string(),
            DbTarget::Postgres(t) => t.describe(),
        }
    }
}

/// The fleet's bounds (issue 9 point 6): past them a report is refused with a 4xx naming
/// the bound and its flag, never stored half.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Nodes the fleet holds at most (`--max-nodes`); a node already known is always updated.
    pub max_nodes: usize,
    /// Distinct registries across the fleet at most (`--max-registries`).
    pub max_registries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_nodes: 10_000,
            max_registries: 1_000,
        }
    }
}

/// What a backend is opened with.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub retention: Duration,
    pub limits: Limits,
    /// PostgreSQL: writer tasks per replica (`DEFAULT_PG_WRITERS`). Each applies its share
    /// of the nodes in arrival order; fleet bounds between concurrent batches are decided as
    /// between replicas (README, "Fleet bounds"). SQLite has one database thread.
    pub writers: usize,
}

/// Writer tasks per PostgreSQL replica (see `postgres::Pg`). More writers overlap one
/// batch's round trips with another's, but make smaller batches, and PostgreSQL's CPU per
/// report grows with the number of batches: on the 2-core bench one writer gave about
/// 125 µs of PostgreSQL CPU per report and two (nodes split between them) about 185 µs, at
/// the same throughput (`bench_aggregator_postgres_vs_sqlite`; README "SQLite vs
/// PostgreSQL"). One writer also decides a replica's fleet bounds in arrival order.
pub const DEFAULT_PG_WRITERS: usize = 1;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {db}: {source}")]
    Open { db: String, source: rusqlite::Error },
    #[error("database {db} is in use by another regtrust aggregator (it holds the database's lock); one SQLite file serves one aggregator: stop the other one, or give each its own --db, or run several replicas on PostgreSQL (--db postgres://...)")]
    InUse { db: String },
    #[error("database {db}: schema version {found} is newer than this regtrust understands ({understood}); run a newer regtrust or start from a new --db")]
    NewerSchema {
        db: String,
        found: i64,
        understood: i64,
    },
    #[error("database {db}: journal_mode is {found:?}, expected \"wal\" (is the filesystem one SQLite can use WAL on?)")]
    NotWal { db: String, found: String },
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    /// A PostgreSQL error that is not about reaching the database (a constraint, a bug).
    #[error("database: {0}")]
    Pg(String),
    /// The database cannot be reached or is restarting: the request may be retried.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A fleet bound (`Limits`) refuses the report.
    #[error("{0}")]
    Limit(String),
    #[error("database thread has stopped")]
    Gone,
}

impl StoreError {
    /// 503 material: the caller may retry once the database is back.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Gone)
    }
}

/// What a posted report did.
#[derive(Debug, Clone, PartialEq)]
pub struct PutOutcome {
    pub transitions: Vec<Event>,
    /// `Some(stored generated_at)` when the report is older than the one stored for its
    /// node: it was not applied (newest truth) and recorded no transition.
    pub superseded_by: Option<String>,
}

/// One node's latest report as stored, with its facts.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRecord {
    pub row: NodeRow,
    /// The document exactly as the node posted it.
    pub report_json: String,
}

/// `GET /api/v1/events` parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQuery {
    pub node: Option<String>,
    pub registry: Option<String>,
    pub since_ms: Option<i64>,
    pub limit: usize,
}

/// What the store keeps of one posted report: the document as posted, and per registry
/// the facts the fleet view shows (in the report's order).
#[derive(Debug)]
pub(crate) struct Facts {
    pub node: String,
    pub generated_at: String,
    /// `generated_at` in Unix ms (newest truth compares these, not the strings).
    pub generated_ms: i64,
    pub agent_version: String,
    pub problems: u32,
    pub registries: Vec<RegistryFacts>,
    pub raw: String,
    pub received_ms: i64,
}

#[derive(Debug)]
pub(crate) struct RegistryFacts {
    pub host: String,
    pub verdict: Verdict,
    pub message: String,
    pub cause: String,
    pub fix: String,
}

impl Facts {
    pub fn of(report: Report, raw: String, received_ms: i64) -> Facts {
        let problems = u32::try_from(report.problems.len()).unwrap_or(u32::MAX);
        let generated_ms = rfc3339_ms(&report.generated_at).unwrap_or(i64::MIN);
        let registries = report
            .registries
            .into_iter()
            .map(|r| {
                let (message, cause, fix) = registry_facts(&r);
                RegistryFacts {
                    host: r.host,
                    verdict: r.verdict,
                    message,
                    cause,
                    fix,
                }
            })
            .collect();
        Facts {
            node: report.node,
            generated_at: report.generated_at,
            generated_ms,
            agent_version: report.agent_version,
            problems,
            registries,
            raw,
            received_ms,
        }
    }

    /// Newest truth: `Some(stored)` when the stored report (generated at `stored`) is newer
    /// than this one. A report as old as the stored one is applied (a retry of the same
    /// report changes nothing and records nothing).
    pub fn superseded_by(&self, stored: &str) -> Option<String> {
        match rfc3339_ms(stored) {
            Some(ms) if ms > self.generated_ms => Some(stored.to_string()),
            _ => None,
        }
    }
}

/// RFC 3339 → Unix ms.
pub fn rfc3339_ms(s: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// What a registry entry contributes to the fleet view: the message and fix of the probe
/// that decided the verdict (the worst one), else the registry's own message.
fn registry_facts(r: &crate::report::RegistryReport) -> (String, String, String) {
    let decisive = r
        .probes
        .iter()
        .filter(|p| p.verdict == r.verdict)
        .find(|p| !p.message.is_empty() || !p.fix.is_empty() || !p.cause.is_empty());
    let message = if r.message.is_empty() {
        decisive.map(|p| p.message.clone()).unwrap_or_default()
    } else {
        r.message.clone()
    };
    let cause = decisive.map(|p| p.cause.clone()).unwrap_or_default();
    let fix = r
        .probes
        .iter()
        .filter(|p| p.verdict == r.verdict)
        .map(|p| p.fix.clone())
        .find(|f| !f.is_empty())
        .unwrap_or_default();
    (message, cause, fix)
}

/// A node's change, computed the same way by both backends from the node's previous
/// registry rows: the events to record, the rows to write (verdict, message, cause or fix
/// changed) and the registries that left the report.
pub(crate) struct Change {
    /// (registry, from, to), in the report's order, then the gone ones sorted.
    pub events: Vec<(String, Option<Verdict>, Option<Verdict>)>,
    /// Rows to upsert.
    pub write: Vec<RegistryRow>,
    /// Registries to delete.
    pub gone: Vec<String>,
    /// The node's rows afterwards, sorted by registry.
    pub rows: Vec<RegistryRow>,
}

pub(crate) fn change(f: &Facts, prev: &[RegistryRow]) -> Change {
    let mut old: std::collections::HashMap<&str, &RegistryRow> =
        prev.iter().map(|r| (r.registry.as_str(), r)).collect();
    let mut events = Vec::new();
    let mut write = Vec::new();
    let mut rows = Vec::with_capacity(f.registries.len());
    for r in &f.registries {
        let (since, unchanged) = match old.remove(r.host.as_str()) {
            Some(p) if p.verdict == r.verdict => (
                p.since_ms,
                p.message == r.message && p.cause == r.cause && p.fix == r.fix,
            ),
            Some(p) => {
                events.push((r.host.clone(), Some(p.verdict), Some(r.verdict)));
                (f.received_ms, false)
            }
            None => {
                events.push((r.host.clone(), None, Some(r.verdict)));
                (f.received_ms, false)
            }
        };
        let row = RegistryRow {
            registry: r.host.clone(),
            verdict: r.verdict,
            since_ms: since,
            message: r.message.clone(),
            cause: r.cause.clone(),
            fix: r.fix.clone(),
        };
        if !unchanged {
            write.push(row.clone());
        }
        rows.push(row);
    }
    rows.sort_by(|a, b| a.registry.cmp(&b.registry));
    let mut gone: Vec<(&str, Verdict)> = old.into_iter().map(|(k, r)| (k, r.verdict)).collect();
    gone.sort();
    let gone = gone
        .into_iter()
        .map(|(registry, v)| {
            events.push((registry.to_string(), Some(v), None));
            registry.to_string()
        })
        .collect();
    Change {
        events,
        write,
        gone,
        rows,
    }
}

pub(crate) fn events_of(f: &Facts, c: &Change) -> Vec<Event> {
    let at = super::fleet::ms_to_rfc3339(f.received_ms);
    c.events
        .iter()
        .map(|(registry, from, to)| Event {
            node: f.node.clone(),
            registry: registry.clone(),
            from: *from,
            to: *to,
            at: at.clone(),
        })
        .collect()
}

/// The 422 texts of the bounds, the same on both backends.
pub(crate) fn too_many_nodes(max: usize, node: &str) -> StoreError {
    StoreError::Limit(format!(
        "the fleet already holds {max} nodes (--max-nodes) and node {node:?} is new; forget decommissioned nodes (regtrust report --forget, or DELETE /api/v1/nodes/NAME) or raise --max-nodes"
    ))
}

pub(crate) fn too_many_registries(max: usize, new: &[&str]) -> StoreError {
    let shown: Vec<&str> = new.iter().take(5).copied().collect();
    StoreError::Limit(format!(
        "the fleet already reports {max} distinct registries (--max-registries) and this report adds {} more ({}{}); raise --max-registries, or stop managing registries nodes do not use",
        new.len(),
        shown.join(", "),
        if new.len() > shown.len() { ", ..." } else { "" }
    ))
}

pub(crate) fn verdict_of(s: &str) -> Verdict {
    // Codes were validated on the way in; a code from a newer schema reads as unknown.
    Verdict::parse(s).unwrap_or(Verdict::Unknown)
}

/// The store, whatever the backend; cheap to clone.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Sqlite(sqlite::Sqlite),
    Postgres(Arc<postgres::Pg>),
}

/// What `Store::open` leaves running (the SQLite thread, PostgreSQL's retention task);
/// `finish` waits for it once every `Store` handle is dropped.
pub enum Closer {
    Sqlite(std::thread::JoinHandle<()>),
    Postgres {
        retention: tokio::task::JoinHandle<()>,
        /// They end by themselves once every `Store` handle is gone.
        writers: Vec<tokio::task::JoinHandle<()>>,
    },
}

impl Closer {
    pub async fn finish(self) {
        match self {
            Closer::Sqlite(t) => {
                let _ = tokio::task::spawn_blocking(move || t.join()).await;
            }
            Closer::Postgres { retention, writers } => {
                retention.abort();
                let _ = retention.await;
                for w in writers {
                    let _ = w.await;
                }
            }
        }
    }
}

impl Store {
    /// Open (or create) the database. Errors (unwritable path, newer schema, no WAL, a
    /// database another aggregator holds, an unreachable server) come back here, before
    /// anything listens.
    pub async fn open(target: &DbTarget, opts: Options) -> Result<(Store, Closer), StoreError> {
        match target {
            DbTarget::Sqlite(path) => {
                let path = path.clone();
                let (s, t) = tokio::task::spawn_blocking(move || sqlite::Sqlite::open(&path, opts))
                    .await
                    .map_err(|_| StoreError::Gone)??;
                Ok((
                    Store {
                        backend: Backend::Sqlite(s),
                    },
                    Closer::Sqlite(t),
                ))
            }
            DbTarget::Postgres(t) => {
                let pg = Arc::new(postgres::Pg::open(t, opts).await?);
                let retention = postgres::Pg::spawn_retention(&pg);
                let writers = postgres::Pg::spawn_writers(&pg);
                Ok((
                    Store {
                        backend: Backend::Postgres(pg),
                    },
                    Closer::Postgres { retention, writers },
                ))
            }
        }
    }

    /// The SQLite backend alone, synchronously (unit tests, tools).
    pub fn open_sqlite(
        path: &std::path::Path,
        opts: Options,
    ) -> Result<(Store, std::thread::JoinHandle<()>), StoreError> {
        let (s, t) = sqlite::Sqlite::open(path, opts)?;
        Ok((
            Store {
                backend: Backend::Sqlite(s),
            },
            t,
        ))
    }

    /// `Ok` when the store can serve; else why not (for `/healthz`).
    pub async fn health(&self) -> Result<(), String> {
        match &self.backend {
            Backend::Sqlite(s) => {
                if s.is_alive() {
                    Ok(())
                } else {
                    Err("database thread stopped".into())
                }
            }
            Backend::Postgres(p) => p.health().await,
        }
    }

    /// Store a validated report as the node's latest; answered after the COMMIT. A report
    /// older than the stored one is not applied (`superseded_by`).
    pub async fn put(
        &self,
        report: Report,
        raw: String,
        received_ms: i64,
    ) -> Result<PutOutcome, StoreError> {
        let facts = Facts::of(report, raw, received_ms);
        match &self.backend {
            Backend::Sqlite(s) => s.put(facts).await,
            Backend::Postgres(p) => p.put(facts).await,
        }
    }

    /// Forget a node (decommissioned); true when it was known.
    pub async fn delete(&self, node: String) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.delete(node).await,
            Backend::Postgres(p) => p.delete(&node).await,
        }
    }

    /// Every node with its registries, sorted by node then registry.
    pub async fn fleet(&self) -> Result<Vec<Arc<NodeRow>>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.fleet().await,
            Backend::Postgres(p) => p.fleet().await.map(|f| f.as_ref().clone()),
        }
    }

    pub async fn node(&self, node: String) -> Result<Option<NodeRecord>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.node(node).await,
            Backend::Postgres(p) => p.node(&node).await,
        }
    }

    /// Newest first.
    pub async fn events(&self, query: EventQuery) -> Result<Vec<Event>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.events(query).await,
            Backend::Postgres(p) => p.events(&query).await,
        }
    }

    /// Run retention now as if the clock read `now_ms`; returns (events, nodes) removed.
    pub async fn prune(&self, now_ms: i64) -> Result<(usize, usize), StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.prune(now_ms).await,
            Backend::Postgres(p) => p.prune(now_ms).await,
        }
    }
}
