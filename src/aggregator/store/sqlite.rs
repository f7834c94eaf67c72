//! The SQLite backend of the store: one file, owned by one dedicated thread. Async handlers
//! send it commands over a channel and await the answer; no SQLite call ever runs on a tokio
//! thread. It owns the file's schema (versioned with `PRAGMA user_version`), durability
//! (WAL, `synchronous=FULL`, group commit), retention, and the file's lock: one aggregator
//! per file (several replicas are PostgreSQL's job, `postgres`).
//!
//! Durability: a `put` is answered only after the COMMIT that holds it has returned. In WAL
//! mode with `synchronous=FULL` SQLite fsyncs the WAL at every commit, so an answered report
//! survives kill -9 and also a power cut. (`NORMAL` would survive kill -9, since the WAL
//! pages are in the kernel's page cache when the process dies, but not a power cut; the
//! fsync cost is shared by every report of a batch, so FULL is affordable.)
//! Group commit: the thread takes every command waiting in the channel (up to `MAX_BATCH`),
//! applies all writes in one transaction, commits once, then answers them all. Should one
//! write fail, the batch is rolled back and applied again with a savepoint per write, so
//! the others are still stored (a savepoint around every write would be two more SQL
//! statements parsed and run per write, for a failure that takes a broken disk).
//! Fleet reads: the thread keeps every node's facts in memory (`Mirror`), loaded at open
//! and, seen from any reader, changed only by a COMMIT that succeeded, so fleet-wide reads
//! (`/`, `/metrics`, `/api/v1/nodes`, `/api/v1/registries`) cost no SQL and hold up no
//! writes. The mirror is coherent because this process is the file's only writer: `open`
//! takes an exclusive `flock` on the file and a second aggregator on it is refused
//! (`StoreError::InUse`, exit 2) instead of serving a fleet view that misses the other's
//! writes. A write starts from the node's mirrored row instead of reading it back, and
//! rewrites a (node, registry) row only when its verdict, message, cause or fix changed.

use super::{
    change, events_of, too_many_nodes, too_many_registries, verdict_of, EventQuery, Facts, Limits,
    NodeRecord, Options, PutOutcome, StoreError, PRUNE_EVERY, SQLITE_SCHEMA_VERSION,
};
use crate::aggregator::fleet::{Event, NodeRow, RegistryRow};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Commands applied per transaction at most.
const MAX_BATCH: usize = 512;
/// Commands that may wait in the channel before senders wait (back-pressure).
const QUEUE: usize = 4096;

/// Every node's committed facts, by node name (shared out as `Arc`s so a read is cheap),
/// and how many nodes report each registry (the fleet-wide registry bound).
#[derive(Default)]
struct Mirror {
    nodes: BTreeMap<String, Arc<NodeRow>>,
    refs: HashMap<String, usize>,
}

impl Mirror {
    fn of(rows: Vec<NodeRow>) -> Mirror {
        let mut m = Mirror::default();
        for r in rows {
            m.insert(Arc::new(r));
        }
        m
    }

    fn count(&mut self, row: &NodeRow, up: bool) {
        for r in &row.registries {
            if up {
                *self.refs.entry(r.registry.clone()).or_insert(0) += 1;
            } else if let Some(n) = self.refs.get_mut(&r.registry) {
                *n -= 1;
                if *n == 0 {
                    self.refs.remove(&r.registry);
                }
            }
        }
    }

    fn insert(&mut self, row: Arc<NodeRow>) -> Option<Arc<NodeRow>> {
        self.count(&row, true);
        let old = self.nodes.insert(row.node.clone(), row);
        if let Some(o) = &old {
            self.count(o, false);
        }
        old
    }

    fn remove(&mut self, node: &str) -> Option<Arc<NodeRow>> {
        let old = self.nodes.remove(node);
        if let Some(o) = &old {
            self.count(o, false);
        }
        old
    }

    fn retain_received_since(&mut self, cutoff: i64) {
        let gone: Vec<String> = self
            .nodes
            .values()
            .filter(|n| n.received_ms < cutoff)
            .map(|n| n.node.clone())
            .collect();
        for n in gone {
            self.remove(&n);
        }
    }

    /// The bounds, checked before anything is written: a new node past `max_nodes`, or
    /// registries new to the fleet past `max_registries` (counting those only this node
    /// reported and no longer does as freed).
    fn admit(&self, f: &Facts, prev: Option<&NodeRow>, limits: &Limits) -> Result<(), StoreError> {
        if prev.is_none() && self.nodes.len() >= limits.max_nodes {
            return Err(too_many_nodes(limits.max_nodes, &f.node));
        }
        let new: Vec<&str> = f
            .registries
            .iter()
            .filter(|r| !self.refs.contains_key(&r.host))
            .map(|r| r.host.as_str())
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        let freed = prev.map_or(0, |p| {
            p.registries
                .iter()
                .filter(|r| self.refs.get(&r.registry) == Some(&1))
                .filter(|r| !f.registries.iter().any(|n| n.host == r.registry))
                .count()
        });
        if self.refs.len() - freed + new.len() > limits.max_registries {
            return Err(too_many_registries(limits.max_registries, &new));
        }
        Ok(())
    }
}

const SCHEMA_V1: &str = "
CREATE TABLE nodes (
    node          TEXT PRIMARY KEY NOT NULL,
    received_ms   INTEGER NOT NULL,
    generated_at  TEXT NOT NULL,
    agent_version TEXT NOT NULL,
    problems      INTEGER NOT NULL,
    report        TEXT NOT NULL
);
CREATE TABLE node_registries (
    node      TEXT NOT NULL,
    registry  TEXT NOT NULL,
    verdict   TEXT NOT NULL,
    since_ms  INTEGER NOT NULL,
    message   TEXT NOT NULL,
    cause     TEXT NOT NULL,
    fix       TEXT NOT NULL,
    PRIMARY KEY (node, registry)
) WITHOUT ROWID;
CREATE TABLE events (
    id           INTEGER PRIMARY KEY,
    at_ms        INTEGER NOT NULL,
    node         TEXT NOT NULL,
    registry     TEXT NOT NULL,
    from_verdict TEXT,
    to_verdict   TEXT
);
CREATE INDEX events_at ON events (at_ms);
";

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

enum Cmd {
    Put {
        facts: Box<Facts>,
        reply: Reply<PutOutcome>,
    },
    Delete {
        node: String,
        reply: Reply<bool>,
    },
    Fleet {
        reply: Reply<Vec<Arc<NodeRow>>>,
    },
    Node {
        node: String,
        reply: Reply<Option<NodeRecord>>,
    },
    Events {
        query: EventQuery,
        reply: Reply<Vec<Event>>,
    },
    Prune {
        now_ms: i64,
        reply: Reply<(usize, usize)>,
    },
}

/// A handle to the database thread; cheap to clone. The thread ends (and closes the
/// database) once every handle is dropped.
#[derive(Clone)]
pub struct Sqlite {
    tx: mpsc::Sender<Cmd>,
}

impl Sqlite {
    /// Open (or create) the database and start its thread. Errors (unwritable path, newer
    /// schema, no WAL, the file held by another aggregator) come back here, before
    /// anything listens.
    pub fn open(
        path: &Path,
        opts: Options,
    ) -> Result<(Sqlite, std::thread::JoinHandle<()>), StoreError> {
        let db = path.display().to_string();
        let lock = lock_file(path)?;
        let conn = open_conn(path)?;
        let mirror = Mirror::of(load_fleet(&conn).map_err(|e| match e {
            StoreError::Sql(source) => StoreError::Open {
                db: db.clone(),
                source,
            },
            e => e,
        })?);
        let (tx, rx) = mpsc::channel(QUEUE);
        let retention_ms = i64::try_from(opts.retention.as_millis()).unwrap_or(i64::MAX);
        let limits = opts.limits;
        let handle = std::thread::Builder::new()
            .name("regtrust-store".into())
            .spawn(move || {
                run(conn, mirror, rx, retention_ms, limits);
                // Only now, the connection closed: closing any descriptor of the file
                // would drop the POSIX locks SQLite holds on it (fcntl(2), "Advisory
                // record locking"), so the lock's descriptor outlives the connection.
                drop(lock);
            })
            .map_err(|e| StoreError::Open {
                db,
                source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
            })?;
        Ok((Sqlite { tx }, handle))
    }

    /// False once the database thread has stopped (liveness).
    pub fn is_alive(&self) -> bool {
        !self.tx.is_closed()
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Cmd) -> Result<T, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| StoreError::Gone)?;
        rx.await.map_err(|_| StoreError::Gone)?
    }

    /// What the fleet view keeps of the report was taken out on the caller's thread, so
    /// the database thread only writes (and never frees a whole parsed report).
    pub(crate) async fn put(&self, facts: Facts) -> Result<PutOutcome, StoreError> {
        let facts = Box::new(facts);
        self.ask(|reply| Cmd::Put { facts, reply }).await
    }

    pub async fn delete(&self, node: String) -> Result<bool, StoreError> {
        self.ask(|reply| Cmd::Delete { node, reply }).await
    }

    pub async fn fleet(&self) -> Result<Vec<Arc<NodeRow>>, StoreError> {
        self.ask(|reply| Cmd::Fleet { reply }).await
    }

    pub async fn node(&self, node: String) -> Result<Option<NodeRecord>, StoreError> {
        self.ask(|reply| Cmd::Node { node, reply }).await
    }

    pub async fn events(&self, query: EventQuery) -> Result<Vec<Event>, StoreError> {
        self.ask(|reply| Cmd::Events { query, reply }).await
    }

    pub async fn prune(&self, now_ms: i64) -> Result<(usize, usize), StoreError> {
        self.ask(|reply| Cmd::Prune { now_ms, reply }).await
    }
}

/// An exclusive `flock` on the database file itself (created when missing), held for the
/// store's life: a second aggregator on the same file fails here at once, before it
/// touches the schema. (`flock` and SQLite's own `fcntl` locks do not interact on Linux.)
fn lock_file(path: &Path) -> Result<std::fs::File, StoreError> {
    let db = path.display().to_string();
    let io = |e: std::io::Error| StoreError::Open {
        db: db.clone(),
        source: rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
            Some(e.to_string()),
        ),
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io)?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(file),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(StoreError::InUse { db }),
        Err(e) => Err(io(e.into())),
    }
}

fn open_conn(path: &Path) -> Result<Connection, StoreError> {
    let db = path.display().to_string();
    let err = |source| StoreError::Open {
        db: db.clone(),
        source,
    };
    let mut conn = Connection::open(path).map_err(err)?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(err)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .map_err(err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::NotWal {
            db: db.clone(),
            found: mode,
        });
    }
    conn.execute_batch("PRAGMA synchronous=FULL;")
        .map_err(err)?;
    // The version is read and the schema created in ONE write transaction (BEGIN
    // IMMEDIATE takes the write lock first): even without the file lock above (a
    // filesystem whose flock is a no-op), two openers cannot both see version 0 and both
    // create the tables.
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(err)?;
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(err)?;
    if version > SQLITE_SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            db,
            found: version,
            understood: SQLITE_SCHEMA_VERSION,
        });
    }
    if version < 1 {
        tx.execute_batch(SCHEMA_V1).map_err(err)?;
        tx.pragma_update(None, "user_version", 1).map_err(err)?;
    }
    // Future migrations: `if version < 2 { ... user_version = 2 }`, in this transaction,
    // so an old database walks forward one step at a time and all or nothing.
    tx.commit().map_err(err)?;
    Ok(conn)
}

/// The database thread: batch, commit, answer; prune now and then.
fn run(
    mut conn: Connection,
    mut mirror: Mirror,
    mut rx: mpsc::Receiver<Cmd>,
    retention_ms: i64,
    limits: Limits,
) {
    let mut last_prune: Option<std::time::Instant> = None;
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(cmd) => batch.push(cmd),
                Err(_) => break,
            }
        }
        handle_batch(&mut conn, &mut mirror, batch, retention_ms, &limits);
        if last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
            last_prune = Some(std::time::Instant::now());
            match prune(
                &mut conn,
                &mut mirror,
                crate::aggregator::fleet::now_ms(),
                retention_ms,
            ) {
                Ok((0, 0)) => {}
                Ok((events, nodes)) => {
                    tracing::info!(
                        events,
                        nodes,
                        "retention removed old events and silent nodes"
                    )
                }
                Err(e) => tracing::warn!(error = %e, "retention failed; will retry"),
            }
        }
    }
    // Every handle dropped: fold the WAL back into the main file before closing.
    if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);") {
        tracing::warn!(error = %e, "database checkpoint at shutdown failed");
    }
}

fn handle_batch(
    conn: &mut Connection,
    mirror: &mut Mirror,
    batch: Vec<Cmd>,
    retention_ms: i64,
    limits: &Limits,
) {
    let mut writes = Vec::new();
    let mut reads = Vec::new();
    for cmd in batch {
        match cmd {
            Cmd::Put { .. } | Cmd::Delete { .. } => writes.push(cmd),
            _ => reads.push(cmd),
        }
    }
    if !writes.is_empty() {
        commit_writes(conn, mirror, writes, limits);
    }
    // Reads after the commit, so a reader never sees less than was answered before it.
    for cmd in reads {
        match cmd {
            Cmd::Fleet { reply } => {
                let _ = reply.send(Ok(mirror.nodes.values().cloned().collect()));
            }
            Cmd::Node { node, reply } => {
                let _ = reply.send(load_node(conn, &node));
            }
            Cmd::Events { query, reply } => {
                let _ = reply.send(load_events(conn, &query));
            }
            Cmd::Prune { now_ms, reply } => {
                let _ = reply.send(prune(conn, mirror, now_ms, retention_ms));
            }
            Cmd::Put { .. } | Cmd::Delete { .. } => {}
        }
    }
}

/// A write of the batch.
enum Write {
    Put(Box<Facts>, Reply<PutOutcome>),
    Delete(String, Reply<bool>),
}

/// What an applied write answers.
enum Done {
    Put(PutOutcome),
    Delete(bool),
}

/// Why a batch was not committed as a whole.
enum BatchError {
    /// A write failed without a savepoint around it; the transaction was rolled back.
    Write,
    /// The transaction could not start or commit: every write of the batch fails.
    Tx(rusqlite::Error),
}

/// One transaction for the whole batch; answers go out only after the COMMIT returned.
/// Fast path: the writes are applied one after the other. Should one fail (it takes an
/// I/O error or a full disk), the transaction is rolled back and the batch applied again
/// with a savepoint per write, so that one failing write does not fail the others.
fn commit_writes(conn: &mut Connection, mirror: &mut Mirror, cmds: Vec<Cmd>, limits: &Limits) {
    let writes: Vec<Write> = cmds
        .into_iter()
        .filter_map(|cmd| match cmd {
            Cmd::Put { facts, reply } => Some(Write::Put(facts, reply)),
            Cmd::Delete { node, reply } => Some(Write::Delete(node, reply)),
            _ => None,
        })
        .collect();
    let outcome = match apply(conn, mirror, &writes, false, limits) {
        Err(BatchError::Write) => apply(conn, mirror, &writes, true, limits),
        other => other,
    };
    let results = match outcome {
        Ok(results) => results,
        Err(BatchError::Tx(e)) => return fail_all(writes, &e),
        Err(BatchError::Write) => {
            // Not returned when every write has its savepoint; answer rather than hang.
            let e = rusqlite::Error::InvalidParameterName("write failed".into());
            return fail_all(writes, &e);
        }
    };
    for (w, res) in writes.into_iter().zip(results) {
        match (w, res) {
            (Write::Put(_, reply), Ok(Done::Put(out))) => {
                let _ = reply.send(Ok(out));
            }
            (Write::Delete(_, reply), Ok(Done::Delete(known))) => {
                let _ = reply.send(Ok(known));
            }
            (Write::Put(_, reply), Err(e)) => {
                let _ = reply.send(Err(e));
            }
            (Write::Delete(_, reply), Err(e)) => {
                let _ = reply.send(Err(e));
            }
            // `apply` answers each write in kind.
            (Write::Put(_, reply), Ok(Done::Delete(_))) => {
                let _ = reply.send(Err(StoreError::Gone));
            }
            (Write::Delete(_, reply), Ok(Done::Put(_))) => {
                let _ = reply.send(Err(StoreError::Gone));
            }
        }
    }
}

/// Apply `writes` in one transaction and commit. The mirror follows each applied write at
/// once (the next write of the same node starts from it; no reader sees it before the
/// commit, since reads run on this thread after `commit_writes`) and is put back as it was
/// when the transaction does not commit. A report older than its node's stored one, or
/// one past a bound, is answered without touching the database.
fn apply(
    conn: &mut Connection,
    mirror: &mut Mirror,
    writes: &[Write],
    isolate: bool,
    limits: &Limits,
) -> Result<Vec<Result<Done, StoreError>>, BatchError> {
    let mut tx = conn.transaction().map_err(BatchError::Tx)?;
    let mut undo: Vec<(String, Option<Arc<NodeRow>>)> = Vec::new();
    let mut results = Vec::with_capacity(writes.len());
    for w in writes {
        let res = match w {
            Write::Put(facts, _) => {
                let prev = mirror.nodes.get(&facts.node).cloned();
                if let Some(stored) = prev
                    .as_deref()
                    .and_then(|p| facts.superseded_by(&p.generated_at))
                {
                    results.push(Ok(Done::Put(PutOutcome {
                        transitions: vec![],
                        superseded_by: Some(stored),
                    })));
                    continue;
                }
                if let Err(e) = mirror.admit(facts, prev.as_deref(), limits) {
                    results.push(Err(e));
                    continue;
                }
                let res = if isolate {
                    with_savepoint(&mut tx, |sp| put(sp, facts, prev.as_deref()))
                } else {
                    put(&tx, facts, prev.as_deref())
                };
                res.map(|(out, row)| {
                    let old = mirror.insert(Arc::new(row));
                    undo.push((facts.node.clone(), old));
                    Done::Put(out)
                })
            }
            Write::Delete(node, _) => {
                let res = if isolate {
                    with_savepoint(&mut tx, |sp| delete(sp, node))
                } else {
                    delete(&tx, node)
                };
                res.map(|known| {
                    let old = mirror.remove(node);
                    undo.push((node.clone(), old));
                    Done::Delete(known)
                })
            }
        };
        if let Err(e) = &res {
            if !isolate {
                tracing::warn!(error = %e, "a write of the batch failed; applying the batch again write by write");
                drop(tx); // rolls back
                restore(mirror, undo);
                return Err(BatchError::Write);
            }
        }
        results.push(res);
    }
    match tx.commit() {
        Ok(()) => Ok(results),
        Err(e) => {
            tracing::error!(error = %e, "database commit failed; the batch's reports were not stored");
            restore(mirror, undo);
            Err(BatchError::Tx(e))
        }
    }
}

/// Undo the mirror's changes of a transaction that did not commit, newest first.
fn restore(mirror: &mut Mirror, undo: Vec<(String, Option<Arc<NodeRow>>)>) {
    for (node, old) in undo.into_iter().rev() {
        match old {
            Some(row) => {
                mirror.insert(row);
            }
            None => {
                mirror.remove(&node);
            }
        }
    }
}

fn clone_err(e: &rusqlite::Error) -> rusqlite::Error {
    rusqlite::Error::InvalidParameterName(e.to_string())
}

fn fail_all(writes: Vec<Write>, e: &rusqlite::Error) {
    for w in writes {
        match w {
            Write::Put(_, reply) => {
                let _ = reply.send(Err(StoreError::Sql(clone_err(e))));
            }
            Write::Delete(_, reply) => {
                let _ = reply.send(Err(StoreError::Sql(clone_err(e))));
            }
        }
    }
}

fn with_savepoint<T>(
    tx: &mut rusqlite::Transaction<'_>,
    f: impl FnOnce(&rusqlite::Savepoint<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let sp = tx.savepoint()?;
    let res = f(&sp);
    if res.is_ok() {
        sp.commit()?;
    }
    // On error the savepoint rolls back when dropped.
    res
}

/// Write one report as its node's latest, starting from `prev`, the node's committed row
/// (or the one an earlier write of this batch left): a (node, registry) row is written only
/// when its verdict, message, cause or fix changed, and a verdict change is an event.
fn put(
    conn: &Connection,
    f: &Facts,
    prev: Option<&NodeRow>,
) -> Result<(PutOutcome, NodeRow), StoreError> {
    let node = f.node.as_str();
    let c = change(f, prev.map_or(&[][..], |p| &p.registries[..]));
    for (registry, from, to) in &c.events {
        conn.prepare_cached(
            "INSERT INTO events (at_ms, node, registry, from_verdict, to_verdict) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            f.received_ms,
            node,
            registry,
            from.map(crate::report::Verdict::as_str),
            to.map(crate::report::Verdict::as_str)
        ])?;
    }
    for r in &c.write {
        conn.prepare_cached(
            "INSERT INTO node_registries (node, registry, verdict, since_ms, message, cause, fix)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (node, registry) DO UPDATE SET verdict = excluded.verdict,
               since_ms = excluded.since_ms, message = excluded.message,
               cause = excluded.cause, fix = excluded.fix",
        )?
        .execute(params![
            node,
            r.registry,
            r.verdict.as_str(),
            r.since_ms,
            r.message,
            r.cause,
            r.fix
        ])?;
    }
    for registry in &c.gone {
        conn.prepare_cached("DELETE FROM node_registries WHERE node = ?1 AND registry = ?2")?
            .execute(params![node, registry])?;
    }
    conn.prepare_cached(
        "INSERT INTO nodes (node, received_ms, generated_at, agent_version, problems, report)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (node) DO UPDATE SET received_ms = excluded.received_ms,
           generated_at = excluded.generated_at, agent_version = excluded.agent_version,
           problems = excluded.problems, report = excluded.report",
    )?
    .execute(params![
        node,
        f.received_ms,
        f.generated_at,
        f.agent_version,
        f.problems,
        f.raw
    ])?;
    let transitions = events_of(f, &c);
    let row = NodeRow {
        node: node.to_string(),
        received_ms: f.received_ms,
        generated_at: f.generated_at.clone(),
        agent_version: f.agent_version.clone(),
        problems: f.problems,
        registries: c.rows,
    };
    Ok((
        PutOutcome {
            transitions,
            superseded_by: None,
        },
        row,
    ))
}

fn delete(conn: &Connection, node: &str) -> Result<bool, StoreError> {
    conn.prepare_cached("DELETE FROM node_registries WHERE node = ?1")?
        .execute([node])?;
    let n = conn
        .prepare_cached("DELETE FROM nodes WHERE node = ?1")?
        .execute([node])?;
    Ok(n > 0)
}

fn load_fleet(conn: &Connection) -> Result<Vec<NodeRow>, StoreError> {
    let mut nodes: Vec<NodeRow> = Vec::new();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT node, received_ms, generated_at, agent_version, problems FROM nodes ORDER BY node",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(NodeRow {
                node: r.get(0)?,
                received_ms: r.get(1)?,
                generated_at: r.get(2)?,
                agent_version: r.get(3)?,
                problems: u32::try_from(r.get::<_, i64>(4)?).unwrap_or(u32::MAX),
                registries: Vec::new(),
            })
        })?;
        for row in rows {
            nodes.push(row?);
        }
    }
    let mut stmt = conn.prepare_cached(
        "SELECT node, registry, verdict, since_ms, message, cause, fix FROM node_registries ORDER BY node, registry",
    )?;
    let mut rows = stmt.query([])?;
    // Both queries are sorted by node: walk them together.
    let mut i = 0;
    while let Some(r) = rows.next()? {
        let node: String = r.get(0)?;
        while i < nodes.len() && nodes[i].node < node {
            i += 1;
        }
        if i < nodes.len() && nodes[i].node == node {
            nodes[i].registries.push(RegistryRow {
                registry: r.get(1)?,
                verdict: verdict_of(&r.get::<_, String>(2)?),
                since_ms: r.get(3)?,
                message: r.get(4)?,
                cause: r.get(5)?,
                fix: r.get(6)?,
            });
        }
    }
    Ok(nodes)
}

fn load_node(conn: &Connection, node: &str) -> Result<Option<NodeRecord>, StoreError> {
    let head = conn
        .prepare_cached(
            "SELECT node, received_ms, generated_at, agent_version, problems, report FROM nodes WHERE node = ?1",
        )?
        .query_row([node], |r| {
            Ok((
                NodeRow {
                    node: r.get(0)?,
                    received_ms: r.get(1)?,
                    generated_at: r.get(2)?,
                    agent_version: r.get(3)?,
                    problems: u32::try_from(r.get::<_, i64>(4)?).unwrap_or(u32::MAX),
                    registries: Vec::new(),
                },
                r.get::<_, String>(5)?,
            ))
        })
        .optional()?;
    let Some((mut row, report_json)) = head else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached(
        "SELECT registry, verdict, since_ms, message, cause, fix FROM node_registries WHERE node = ?1 ORDER BY registry",
    )?;
    let regs = stmt.query_map([node], |r| {
        Ok(RegistryRow {
            registry: r.get(0)?,
            verdict: verdict_of(&r.get::<_, String>(1)?),
            since_ms: r.get(2)?,
            message: r.get(3)?,
            cause: r.get(4)?,
            fix: r.get(5)?,
        })
    })?;
    for r in regs {
        row.registries.push(r?);
    }
    Ok(Some(NodeRecord { row, report_json }))
}

fn load_events(conn: &Connection, q: &EventQuery) -> Result<Vec<Event>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT node, registry, from_verdict, to_verdict, at_ms FROM events
         WHERE (?1 IS NULL OR node = ?1) AND (?2 IS NULL OR registry = ?2) AND at_ms >= ?3
         ORDER BY at_ms DESC, id DESC LIMIT ?4",
    )?;
    let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
    let rows = stmt.query_map(
        params![q.node, q.registry, q.since_ms.unwrap_or(i64::MIN), limit],
        |r| {
            Ok(Event {
                node: r.get(0)?,
                registry: r.get(1)?,
                from: r.get::<_, Option<String>>(2)?.map(|s| verdict_of(&s)),
                to: r.get::<_, Option<String>>(3)?.map(|s| verdict_of(&s)),
                at: crate::aggregator::fleet::ms_to_rfc3339(r.get(4)?),
            })
        },
    )?;
    rows.collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::from)
}

/// Retention: events older than `retention`, and nodes silent for longer than it
/// (decommissioned nodes must not stay `stale` forever).
fn prune(
    conn: &mut Connection,
    mirror: &mut Mirror,
    now_ms: i64,
    retention_ms: i64,
) -> Result<(usize, usize), StoreError> {
    let cutoff = now_ms.saturating_sub(retention_ms);
    let tx = conn.transaction()?;
    let events = tx.execute("DELETE FROM events WHERE at_ms < ?1", [cutoff])?;
    tx.execute(
        "DELETE FROM node_registries WHERE node IN (SELECT node FROM nodes WHERE received_ms < ?1)",
        [cutoff],
    )?;
    let nodes = tx.execute("DELETE FROM nodes WHERE received_ms < ?1", [cutoff])?;
    tx.commit()?;
    mirror.retain_received_since(cutoff);
    Ok((events, nodes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregator::store::Store;
    use crate::report::{ProbeEntry, RegistryReport, Report, Verdict};

    fn opts(retention: Duration) -> Options {
        Options {
            retention,
            limits: Limits::default(),
            writers: 1,
        }
    }

    fn report(node: &str, regs: &[(&str, Verdict)]) -> Report {
        let mut r = Report::new(node, time::OffsetDateTime::UNIX_EPOCH);
        for (h, v) in regs {
            r.registries.push(RegistryReport {
                host: h.to_string(),
                verdict: *v,
                message: String::new(),
                trust: vec![],
                probes: vec![ProbeEntry {
                    runtime: "containerd".into(),
                    verdict: *v,
                    message: format!("{v} message"),
                    cause: String::new(),
                    latency_ms: 1,
                    server_chain: vec![],
                    server_days_left: None,
                    warnings: vec![],
                    fix: if v.is_failure() {
                        "install the CA".into()
                    } else {
                        String::new()
                    },
                    ca_days_left: None,
                    trusted: vec![],
                    anchor: None,
                    runtime_version: String::new(),
                    go_version: String::new(),
                    runtime_message: String::new(),
                }],
                ca: None,
                harbor: None,
            });
        }
        r
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn transitions_are_recorded_once_per_change() {
        let dir = tempfile::tempdir().unwrap();
        let (store, handle) =
            Store::open_sqlite(&dir.path().join("a.db"), opts(Duration::from_secs(3600))).unwrap();
        // Real times: the thread's own retention runs on the real clock.
        let base = crate::aggregator::fleet::now_ms();
        rt().block_on(async {
            // (report, expected transitions as (registry, from, to))
            type Step = (
                Vec<(&'static str, Verdict)>,
                Vec<(&'static str, Option<Verdict>, Option<Verdict>)>,
            );
            let steps: Vec<Step> = vec![
                (
                    vec![("h1", Verdict::Ok), ("h2", Verdict::Ok)],
                    vec![
                        ("h1", None, Some(Verdict::Ok)),
                        ("h2", None, Some(Verdict::Ok)),
                    ],
                ),
                (vec![("h1", Verdict::Ok), ("h2", Verdict::Ok)], vec![]),
                (
                    vec![("h1", Verdict::UnknownAuthority), ("h2", Verdict::Ok)],
                    vec![("h1", Some(Verdict::Ok), Some(Verdict::UnknownAuthority))],
                ),
                (
                    vec![("h1", Verdict::UnknownAuthority)],
                    vec![("h2", Some(Verdict::Ok), None)],
                ),
            ];
            for (i, (regs, want)) in steps.into_iter().enumerate() {
                let r = report("n1", &regs);
                let raw = r.to_json();
                let out = store
                    .put(r, raw, base + 1000 * (i as i64 + 1))
                    .await
                    .unwrap();
                let got: Vec<_> = out
                    .transitions
                    .iter()
                    .map(|e| (e.registry.as_str(), e.from, e.to))
                    .collect();
                assert_eq!(got, want, "step {i}");
            }
            let fleet = store.fleet().await.unwrap();
            assert_eq!(fleet.len(), 1);
            assert_eq!(fleet[0].registries.len(), 1, "h2 left the node's report");
            let h1 = &fleet[0].registries[0];
            assert_eq!(
                (h1.registry.as_str(), h1.verdict, h1.since_ms),
                ("h1", Verdict::UnknownAuthority, base + 3000)
            );
            assert_eq!(h1.message, "unknown_authority message");
            assert_eq!(h1.fix, "install the CA");
            assert_eq!(fleet[0].registries.len(), 1);
            let events = store
                .events(EventQuery {
                    limit: 100,
                    ..EventQuery::default()
                })
                .await
                .unwrap();
            assert_eq!(events.len(), 4);
            assert_eq!(events[0].to, None, "newest first");
            let rec = store.node("n1".into()).await.unwrap().unwrap();
            assert_eq!(
                Report::from_json(rec.report_json.as_bytes())
                    .unwrap()
                    .registries
                    .len(),
                1
            );
            assert!(store.node("n2".into()).await.unwrap().is_none());
        });
        let before = rt().block_on(store.fleet()).unwrap();
        drop(store);
        handle.join().unwrap();
        // The in-memory fleet is exactly what the database holds.
        let (store, handle) =
            Store::open_sqlite(&dir.path().join("a.db"), opts(Duration::from_secs(3600))).unwrap();
        let after = rt().block_on(store.fleet()).unwrap();
        assert_eq!(before, after);
        drop(store);
        handle.join().unwrap();
    }

    /// Apply `writes` as one batch, synchronously, and return what each was answered.
    fn batch(
        conn: &mut Connection,
        mirror: &mut Mirror,
        writes: Vec<Result<(Report, i64), &str>>,
    ) -> Vec<Result<Option<PutOutcome>, String>> {
        let mut rxs = Vec::new();
        let mut cmds = Vec::new();
        for w in writes {
            match w {
                Ok((r, ms)) => {
                    let (reply, rx) = oneshot::channel();
                    let raw = r.to_json();
                    cmds.push(Cmd::Put {
                        facts: Box::new(Facts::of(r, raw, ms)),
                        reply,
                    });
                    rxs.push(Ok(rx));
                }
                Err(node) => {
                    let (reply, rx) = oneshot::channel();
                    cmds.push(Cmd::Delete {
                        node: node.to_string(),
                        reply,
                    });
                    rxs.push(Err(rx));
                }
            }
        }
        commit_writes(conn, mirror, cmds, &Limits::default());
        // The mirror is exactly what the database holds.
        let db: Vec<NodeRow> = load_fleet(conn).unwrap();
        let mem: Vec<NodeRow> = mirror.nodes.values().map(|r| (**r).clone()).collect();
        assert_eq!(db, mem);
        rxs.into_iter()
            .map(|rx| match rx {
                Ok(mut rx) => rx.try_recv().unwrap().map(Some).map_err(|e| e.to_string()),
                Err(mut rx) => rx
                    .try_recv()
                    .unwrap()
                    .map(|_| None)
                    .map_err(|e| e.to_string()),
            })
            .collect()
    }

    #[test]
    fn a_changed_message_is_written_though_the_verdict_stays() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open_conn(&dir.path().join("a.db")).unwrap();
        let mut mirror = Mirror::default();
        let with_message = |msg: &str| {
            let mut r = report(
                "n1",
                &[("h1", Verdict::UnknownAuthority), ("h2", Verdict::Ok)],
            );
            r.registries[0].probes[0].message = msg.to_string();
            r
        };
        // (report, received at, transitions, h1's message and since afterwards)
        let steps = [
            (with_message("first"), 1000, 2, "first", 1000),
            (with_message("first"), 2000, 0, "first", 1000),
            (with_message("second"), 3000, 0, "second", 1000),
            (
                report("n1", &[("h1", Verdict::Ok), ("h2", Verdict::Ok)]),
                4000,
                1,
                "ok message",
                4000,
            ),
        ];
        for (i, (r, ms, transitions, message, since)) in steps.into_iter().enumerate() {
            let out = batch(&mut conn, &mut mirror, vec![Ok((r, ms))]);
            let out = out[0].as_ref().unwrap().as_ref().unwrap();
            assert_eq!(out.transitions.len(), transitions, "step {i}");
            let h1 = &mirror.nodes["n1"].registries[0];
            assert_eq!(
                (h1.message.as_str(), h1.since_ms),
                (message, since),
                "step {i}"
            );
            assert_eq!(mirror.nodes["n1"].received_ms, ms, "step {i}");
        }
    }

    #[test]
    fn one_failing_write_does_not_fail_the_rest_of_its_batch() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open_conn(&dir.path().join("a.db")).unwrap();
        let mut mirror = Mirror::default();
        // The database itself refuses node "bad" (as a full disk would refuse anything).
        conn.execute_batch(
            "CREATE TEMP TRIGGER refuse BEFORE INSERT ON main.nodes WHEN NEW.node = 'bad'
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;",
        )
        .unwrap();
        let r = |node: &str, v: Verdict| report(node, &[("h", v)]);
        let first = batch(
            &mut conn,
            &mut mirror,
            vec![
                Ok((r("a", Verdict::Ok), 1000)),
                Ok((r("gone", Verdict::Ok), 1000)),
            ],
        );
        assert!(first.iter().all(Result::is_ok), "{first:?}");
        // In one batch: a write before and after the refused one, the same node twice, and
        // a delete; all but the refused write are stored, in order.
        let got = batch(
            &mut conn,
            &mut mirror,
            vec![
                Ok((r("a", Verdict::UnknownAuthority), 2000)),
                Ok((r("bad", Verdict::Ok), 2000)),
                Err("gone"),
                Ok((r("c", Verdict::Ok), 2000)),
                Ok((r("a", Verdict::Expired), 3000)),
            ],
        );
        assert!(got[0].is_ok() && got[2].is_ok() && got[3].is_ok() && got[4].is_ok());
        let err = got[1].as_ref().unwrap_err();
        assert!(err.contains("refused by the test"), "{err}");
        let a_events: Vec<usize> = [0, 4]
            .iter()
            .map(|i| {
                got[*i]
                    .as_ref()
                    .unwrap()
                    .as_ref()
                    .unwrap()
                    .transitions
                    .len()
            })
            .collect();
        assert_eq!(a_events, vec![1, 1], "ok→unknown_authority→expired");
        let names: Vec<&str> = mirror.nodes.keys().map(String::as_str).collect();
        assert_eq!(names, vec!["a", "c"]);
        assert_eq!(mirror.nodes["a"].registries[0].verdict, Verdict::Expired);
        assert_eq!(mirror.nodes["a"].registries[0].since_ms, 3000);
        let events = load_events(
            &conn,
            &EventQuery {
                node: Some("a".into()),
                limit: 10,
                ..EventQuery::default()
            },
        )
        .unwrap();
        assert_eq!(events.len(), 3, "{events:?}");
    }

    #[test]
    fn retention_prunes_old_events_and_silent_nodes() {
        let dir = tempfile::tempdir().unwrap();
        let (store, handle) =
            Store::open_sqlite(&dir.path().join("a.db"), opts(Duration::from_secs(10))).unwrap();
        let base = crate::aggregator::fleet::now_ms();
        rt().block_on(async {
            let r = report("old", &[("h", Verdict::Ok)]);
            let raw = r.to_json();
            store.put(r, raw, base).await.unwrap();
            let r = report("new", &[("h", Verdict::Ok)]);
            let raw = r.to_json();
            store.put(r, raw, base + 20_000).await.unwrap();
            assert_eq!(store.prune(base + 25_000).await.unwrap(), (1, 1));
            let names: Vec<String> = store
                .fleet()
                .await
                .unwrap()
                .into_iter()
                .map(|n| n.node.clone())
                .collect();
            assert_eq!(names, vec!["new"]);
            assert_eq!(store.prune(base + 25_000).await.unwrap(), (0, 0));
            assert!(store.delete("new".into()).await.unwrap());
            assert!(!store.delete("new".into()).await.unwrap());
            assert!(store.fleet().await.unwrap().is_empty());
        });
        drop(store);
        handle.join().unwrap();
    }

    #[test]
    fn schema_is_versioned_and_newer_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let (store, handle) = Store::open_sqlite(&path, opts(Duration::from_secs(10))).unwrap();
        drop(store);
        handle.join().unwrap();
        {
            let c = Connection::open(&path).unwrap();
            let v: i64 = c
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap();
            assert_eq!(v, SQLITE_SCHEMA_VERSION);
            let mode: String = c
                .query_row("PRAGMA journal_mode", [], |r| r.get(0))
                .unwrap();
            assert_eq!(mode, "wal");
            c.pragma_update(None, "user_version", 99).unwrap();
        }
        match Store::open_sqlite(&path, opts(Duration::from_secs(10))) {
            Err(StoreError::NewerSchema { found: 99, .. }) => {}
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("a newer schema was accepted"),
        }
    }

    #[test]
    fn hostile_database_paths_fail_with_the_path_named() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("garbage.db");
        std::fs::write(&garbage, vec![0x42u8; 8192]).unwrap();
        for path in [
            dir.path().join("missing-dir").join("a.db"),
            dir.path().to_path_buf(),
            garbage,
        ] {
            let err = match Store::open_sqlite(&path, opts(Duration::from_secs(1))) {
                Err(e) => e.to_string(),
                Ok(_) => panic!("{} opened", path.display()),
            };
            assert!(err.contains(&path.display().to_string()), "{err}");
        }
    }
}
