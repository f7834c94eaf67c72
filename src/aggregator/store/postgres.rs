//! The PostgreSQL backend of the store: several aggregator replicas on one database serve
//! one fleet. It owns the connection settings (`Target`: URL, password from the URL,
//! `PGPASSWORD` or a file, never logged; TLS in `tls`), the pool, the versioned schema
//! (created under an advisory lock, so replicas starting at once do not race), the writers
//! that commit reports in batches, retention, and the mapping of "cannot reach the
//! database" to `Unavailable` (503).
//!
//! Group commit: a posted report is queued to one of `Options::writers` writer tasks
//! (each committing its own batches on its own connection), the one its
//! node hashes to (so one replica applies a node's reports in the order they arrived, as
//! SQLite's single database thread does; with one shared queue two writers could split a
//! node's reports and commit the later batch first), which takes every report waiting in
//! its queue (up to `MAX_BATCH`), applies them in one transaction (READ
//! COMMITTED) with statements whose number does not grow with the batch (multi-row
//! `unnest` upserts), commits once, and only then answers each request: the 2xx still
//! comes after the COMMIT that holds the report (`synchronous_commit` as the server has
//! it, `on` by default: durable), and when the batch fails every request in it gets the
//! error (503 when the database is unavailable). Before, each report was its own
//! transaction of five round trips and a WAL flush; the server's CPU per report, not the
//! disk, was what two cores ran out of.
//!
//! Transitions are recorded once, whichever replica a node's reports reach: the batch
//! first claims every node it names in one statement (`INSERT ... ON CONFLICT DO UPDATE
//! ... WHERE false`, which creates the missing rows and locks the existing ones, even
//! though it updates nothing: PostgreSQL docs, INSERT, "ON CONFLICT Clause"), in the byte
//! order of the names so that batches of any replica take the locks in one order. Only
//! then are the nodes' stored rows read, in NEW statements, so their snapshot includes
//! whatever the previous holder of a lock committed (a read in the locking statement would
//! see the snapshot taken before the wait: PostgreSQL docs, "Transaction Isolation", READ
//! COMMITTED). The reports are then applied in memory in arrival order (newest truth, the
//! bounds, `change`), exactly as SQLite applies its batches, and the final rows written.
//! Retention's deletes lock rows in another order; a deadlock PostgreSQL breaks by
//! aborting the batch is retried.
//!
//! Fleet reads re-read the database: a replica serves its cached fleet for at most
//! `FLEET_CACHE` (and never across one of its own writes), so a report posted to any
//! replica is visible from every replica within that time.

use super::{
    change, events_of, too_many_nodes, too_many_registries, verdict_of, EventQuery, Facts,
    NodeRecord, Options, PutOutcome, StoreError, PG_SCHEMA_VERSION, PRUNE_EVERY,
};
use crate::aggregator::fleet::{Event, NodeRow, RegistryRow};
use crate::report::Verdict;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

mod tls;

/// Which plans a batch's statements run with, set per transaction (`SET LOCAL`, undone
/// by its COMMIT or rollback). The connections default to custom plans (`Target::parse`).
/// A batch's statements run with a plan made once per connection (generic): planning each
/// one anew, its arrays copied into the plan as constants, was about a sixth of the
/// backend's CPU in the bench (perf: `GetCachedPlan` 3.8% of 22%; pg_stat_statements:
/// the heads read alone 207 ms of planning per run). The claim and the multi-row INSERTs
/// read no table (rows come from `unnest` of their parameters; conflicts are found through
/// the primary key). The reads that follow the claim (the heads, the bound's `shared`) may
/// only read by key, and a generic plan costed on the tables of its moment (empty, when a
/// fleet's first reports arrive) chose sequential scans and kept them as the tables grew
/// (e628188: 2.4 ms instead of 0.2 ms a batch): `enable_seqscan = off` (`BY_KEY`) leaves
/// the planner only their indexes, whatever the statistics say (the rare count of the
/// fleet's distinct registries then walks the registry index). The claim's count of the
/// fleet's nodes runs before it, as the scan it is. The two DELETEs keep custom plans
/// (`CUSTOM`, sent only when a batch deletes), being joins whose sides only the values
/// tell; after them `GENERIC` again, for the INSERTs, which read no table.
#[doc(hidden)]
pub const BEGIN_GENERIC: &str = "BEGIN; SET LOCAL plan_cache_mode = force_generic_plan";
#[doc(hidden)]
pub const BY_KEY: &str = "SET LOCAL enable_seqscan = off";
const GENERIC: &str = "SET LOCAL plan_cache_mode = force_generic_plan";
const CUSTOM: &str = "SET LOCAL plan_cache_mode = force_custom_plan; SET LOCAL enable_seqscan = on";

/// Connections per replica.
const POOL_SIZE: usize = 16;
/// Reports committed per transaction at most.
const MAX_BATCH: usize = 256;
/// Reports that may wait for the writers before senders wait (back-pressure), split evenly
/// between their queues.
const QUEUE: usize = 4096;
/// Tries of a batch PostgreSQL aborted to break a deadlock (retention's deletes lock rows
/// in another order) or a serialization conflict.
const MAX_TRIES: usize = 3;
/// Waiting for a connection, opening one, and any one request's database work.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a replica may serve its fleet snapshot (issue 14: within 5 s).
const FLEET_CACHE: Duration = Duration::from_secs(1);
/// `pg_advisory_xact_lock` key of schema setup ("regtrust" in ASCII).
const SCHEMA_LOCK: i64 = 0x7265_6774_7275_7374;
/// Largest `--db-password-file` read.
const MAX_PASSWORD_FILE: u64 = 4096;

const SCHEMA_V1: &str = r#"
CREATE TABLE nodes (
    node          TEXT COLLATE "C" PRIMARY KEY,
    received_ms   BIGINT NOT NULL,
    generated_at  TEXT NOT NULL,
    agent_version TEXT NOT NULL,
    problems      BIGINT NOT NULL,
    report        TEXT NOT NULL
);
CREATE TABLE node_registries (
    node      TEXT COLLATE "C" NOT NULL,
    registry  TEXT COLLATE "C" NOT NULL,
    verdict   TEXT NOT NULL,
    since_ms  BIGINT NOT NULL,
    message   TEXT NOT NULL,
    cause     TEXT NOT NULL,
    fix       TEXT NOT NULL,
    PRIMARY KEY (node, registry)
);
CREATE INDEX node_registries_registry ON node_registries (registry);
CREATE TABLE events (
    id           BIGSERIAL PRIMARY KEY,
    at_ms        BIGINT NOT NULL,
    node         TEXT COLLATE "C" NOT NULL,
    registry     TEXT COLLATE "C" NOT NULL,
    from_verdict TEXT,
    to_verdict   TEXT
);
CREATE INDEX events_at ON events (at_ms);
"#;

/// A PostgreSQL database to use: the parsed URL with its password (if any) filled in, and
/// its TLS settings (`sslmode`, `--db-ca-file`).
#[derive(Clone)]
pub struct Target {
    config: tokio_postgres::Config,
    tls: tls::Settings,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Target({})", self.describe())
    }
}

/// `--db` names PostgreSQL.
pub fn is_url(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

impl Target {
    /// `url` as `--db` gave it; the password from the URL, else `password_file`, else
    /// `PGPASSWORD` (`env_password`); the CAs that verify the server from `ca_file`
    /// (`--db-ca-file`), else the system bundle. Errors never repeat the URL (it may hold
    /// the password).
    pub fn parse(
        url: &str,
        password_file: Option<&Path>,
        ca_file: Option<&Path>,
        env_password: Option<String>,
    ) -> Result<Target, String> {
        let (url, mode) = tls::split_url(url)?;
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
            format!("--db: not a PostgreSQL URL (postgres://USER@HOST:PORT/DATABASE): {e}")
        })?;
        if config.get_hosts().is_empty() {
            return Err(
                "--db: the PostgreSQL URL names no host (postgres://USER@HOST:PORT/DATABASE)"
                    .into(),
            );
        }
        if config.get_user().is_none() {
            return Err(
                "--db: the PostgreSQL URL names no user (postgres://USER@HOST:PORT/DATABASE)"
                    .into(),
            );
        }
        config.ssl_mode(mode.wire());
        if let (tls::Mode::Disable, Some(p)) = (mode, ca_file) {
            return Err(format!(
                "--db-ca-file {}: the --db URL says sslmode=disable, so no certificate is verified; use sslmode=verify-full (or drop --db-ca-file)",
                p.display()
            ));
        }
        let tls = tls::Settings {
            mode,
            ca_file: ca_file.map(Path::to_path_buf),
        };
        // Read the CAs now: a bad --db-ca-file is a configuration error (exit 2) before
        // anything is dialed.
        tls.client_config()?;
        match (config.get_password().is_some(), password_file) {
            (true, Some(p)) => {
                return Err(format!(
                    "--db-password-file {}: the --db URL already holds a password; give it once",
                    p.display()
                ))
            }
            (true, None) => {}
            (false, Some(p)) => {
                config.password(read_password_file(p)?);
            }
            (false, None) => {
                if let Some(pw) = env_password.filter(|p| !p.is_empty()) {
                    config.password(pw);
                }
            }
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.application_name("regtrust-aggregator");
        // Plan every execution with the tables as they are now. A generic plan, which
        // PostgreSQL caches for a prepared statement from its sixth execution on, is
        // costed with the table sizes of that moment: made while a fleet's first reports
        // arrive, it kept scanning every registry row for each node once the tables had
        // grown (the bench: 2.4 ms instead of 0.2 ms per batch read).
        let options = match config.get_options() {
            Some(o) => format!("{o} -c plan_cache_mode=force_custom_plan"),
            None => "-c plan_cache_mode=force_custom_plan".to_string(),
        };
        config.options(options);
        Ok(Target { config, tls })
    }

    /// `postgres://USER@HOST:PORT/DATABASE` (with `?sslmode=` unless it is the default
    /// `prefer`): what logs and errors may show (no password).
    pub fn describe(&self) -> String {
        let c = &self.config;
        let hosts: Vec<String> = c
            .get_hosts()
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let host = match h {
                    tokio_postgres::config::Host::Tcp(s) => s.clone(),
                    tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
                };
                match c.get_ports().get(i).or(c.get_ports().first()) {
                    Some(port) => format!("{host}:{port}"),
                    None => host,
                }
            })
            .collect();
        let mode = match self.tls.mode {
            tls::Mode::Prefer => String::new(),
            m => format!("?sslmode={}", m.as_str()),
        };
        format!(
            "postgres://{}@{}/{}{mode}",
            c.get_user().unwrap_or(""),
            hosts.join(","),
            c.get_dbname().or(c.get_user()).unwrap_or("")
        )
    }
}

fn read_password_file(path: &Path) -> Result<String, String> {
    use crate::ca::{read_capped, ReadCappedError};
    let name = path.display();
    let bytes = read_capped(path, MAX_PASSWORD_FILE).map_err(|e| match e {
        ReadCappedError::Io(e) => format!("--db-password-file {name}: {e}"),
        ReadCappedError::NotAFile => format!("--db-password-file {name}: not a regular file"),
        ReadCappedError::TooLarge { .. } => format!(
            "--db-password-file {name}: larger than {MAX_PASSWORD_FILE} bytes; expected one line holding the password"
        ),
    })?;
    let text = String::from_utf8(bytes)
        .map_err(|_| format!("--db-password-file {name}: not UTF-8 text"))?;
    let pw = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    if pw.is_empty() || pw.contains(['\n', '\r']) {
        return Err(format!(
            "--db-password-file {name}: expected one non-empty line holding the password"
        ));
    }
    Ok(pw.to_string())
}

/// An error's text with its sources (tokio-postgres puts the cause, e.g. "Connection
/// refused", in the source).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = c.source();
    }
    s
}

/// A query's error: the server unreachable, restarting or out of connections is
/// `Unavailable` (503, retry); anything else is the database refusing the statement.
fn pg_err(db: &str, e: tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(d) => {
            let code = d.code().code();
            let text = format!("{db}: {}: {} (SQLSTATE {code})", d.severity(), d.message());
            // Class 08 connection exception, 53 insufficient resources, 57P operator
            // intervention (shutdown, cannot connect now), 28 authorization (a password
            // rotated under a running replica): the database is there but not for us now.
            if ["08", "53", "57P", "28"]
                .iter()
                .any(|c| code.starts_with(c))
            {
                StoreError::Unavailable(text)
            } else {
                StoreError::Pg(text)
            }
        }
        None => {
            let mut text = format!("{db}: {}", chain(&e));
            if text.contains("invalid peer certificate") {
                text.push_str(
                    " (is --db-ca-file the CA that issued the server's certificate, and the URL's host among its names?)",
                );
            }
            StoreError::Unavailable(text)
        }
    }
}

/// One replica's view of the database.
pub struct Pg {
    pool: Pool,
    db: String,
    opts: Options,
    /// To the writers (`spawn_writers`), one queue each, chosen by the node's hash
    /// (`queue_of`); closed when the last handle drops.
    queues: Vec<mpsc::Sender<PutCmd>>,
    inboxes: std::sync::Mutex<Option<Vec<mpsc::Receiver<PutCmd>>>>,
    cache: tokio::sync::Mutex<Option<Cached>>,
    /// Bumped by each of this replica's writes: a snapshot loaded before one is not reused.
    generation: AtomicU64,
}

struct Cached {
    at: Instant,
    generation: u64,
    rows: Arc<Vec<Arc<NodeRow>>>,
}

/// A report waiting for a writer, and where its outcome goes.
struct PutCmd {
    facts: Facts,
    reply: oneshot::Sender<Result<PutOutcome, StoreError>>,
}

/// Why a batch's transaction did not commit.
enum Fail {
    Db(tokio_postgres::Error),
    Store(StoreError),
}

impl From<tokio_postgres::Error> for Fail {
    fn from(e: tokio_postgres::Error) -> Fail {
        Fail::Db(e)
    }
}

/// PostgreSQL aborted the transaction to break a deadlock or a serialization conflict:
/// the same batch may simply be applied again.
fn retryable(e: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    e.code().is_some_and(|c| {
        *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE
    })
}

/// The same error for each report of a failed batch.
fn copy_err(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(s) => StoreError::Unavailable(s.clone()),
        StoreError::Limit(s) => StoreError::Limit(s.clone()),
        StoreError::Gone => StoreError::Gone,
        StoreError::Pg(s) => StoreError::Pg(s.clone()),
        other => StoreError::Pg(other.to_string()),
    }
}

/// A transition to record: (at_ms, node, registry, from, to).
type Transition<'a> = (i64, &'a str, String, Option<Verdict>, Option<Verdict>);

/// Registry rows as the seven array parameters of `set_rows` and `add_rows`.
struct RowColumns<'a> {
    node: Vec<&'a str>,
    registry: Vec<&'a str>,
    verdict: Vec<&'a str>,
    since: Vec<i64>,
    message: Vec<&'a str>,
    cause: Vec<&'a str>,
    fix: Vec<&'a str>,
}

impl<'a> RowColumns<'a> {
    fn of(rows: &[(&'a str, &'a RegistryRow)]) -> RowColumns<'a> {
        RowColumns {
            node: rows.iter().map(|w| w.0).collect(),
            registry: rows.iter().map(|w| w.1.registry.as_str()).collect(),
            verdict: rows.iter().map(|w| w.1.verdict.as_str()).collect(),
            since: rows.iter().map(|w| w.1.since_ms).collect(),
            message: rows.iter().map(|w| w.1.message.as_str()).collect(),
            cause: rows.iter().map(|w| w.1.cause.as_str()).collect(),
            fix: rows.iter().map(|w| w.1.fix.as_str()).collect(),
        }
    }

    fn params(&self) -> [&(dyn tokio_postgres::types::ToSql + Sync); 7] {
        [
            &self.node,
            &self.registry,
            &self.verdict,
            &self.since,
            &self.message,
            &self.cause,
            &self.fix,
        ]
    }
}

/// One node of a batch as its reports are applied in memory.
#[derive(Default)]
struct NodeState {
    /// The stored report's `generated_at`, then that of the last report of this batch
    /// applied; `None`: the node does not exist (claimed by this batch, none applied yet).
    generated_at: Option<String>,
    /// Its registry rows now (after the reports applied so far).
    rows: Vec<RegistryRow>,
    /// Its registry rows as committed before the batch.
    stored: Vec<RegistryRow>,
    /// The last applied report (index into the batch).
    last: Option<usize>,
    /// Created by this batch's claim with no registry row under its name: its rows are
    /// written by a plain INSERT, which skips the upsert's conflict probe and its
    /// speculative-insertion WAL record per row (no conflict can arise: every writer of a
    /// node's rows holds that node's row lock first).
    fresh: bool,
    /// Registry rows under the name of a node this batch created: left by a node row
    /// deleted outside the store (the store deletes both in one transaction). They belong
    /// to no report, so they are removed, and the node's rows go by the upsert.
    orphans: Vec<String>,
}

/// The fleet-wide registry bound within a batch, exact as SQLite's `Mirror::admit`: a
/// registry is new when no node reports it. Only registries that no node outside the batch
/// reports can be new or freed; for those, how many of the batch's nodes report them now.
#[derive(Default)]
struct RegistryRefs {
    inside: HashMap<String, usize>,
    /// Distinct registries across the fleet now (read only when `inside` is not empty).
    distinct: usize,
}

impl RegistryRefs {
    fn admit(&self, f: &Facts, rows: &[RegistryRow], max: usize) -> Result<(), StoreError> {
        let new: Vec<&str> = f
            .registries
            .iter()
            .filter(|r| self.inside.get(&r.host) == Some(&0))
            .map(|r| r.host.as_str())
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        let freed = rows
            .iter()
            .filter(|p| self.inside.get(&p.registry) == Some(&1))
            .filter(|p| !f.registries.iter().any(|r| r.host == p.registry))
            .count();
        if self.distinct.saturating_sub(freed) + new.len() > max {
            return Err(too_many_registries(max, &new));
        }
        Ok(())
    }

    /// `f` applied over its node's `rows`.
    fn follow(&mut self, f: &Facts, rows: &[RegistryRow]) {
        for r in &f.registries {
            if rows.iter().any(|p| p.registry == r.host) {
                continue;
            }
            if let Some(n) = self.inside.get_mut(&r.host) {
                *n += 1;
                if *n == 1 {
                    self.distinct += 1;
                }
            }
        }
        for p in rows {
            if f.registries.iter().any(|r| r.host == p.registry) {
                continue;
            }
            if let Some(n) = self.inside.get_mut(&p.registry) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.distinct = self.distinct.saturating_sub(1);
                }
            }
        }
    }
}

impl Pg {
    /// Connect, then create or check the schema. A database that cannot be reached is an
    /// error here (exit 2, and the orchestrator restarts the replica).
    pub async fn open(target: &Target, opts: Options) -> Result<Pg, StoreError> {
        let db = target.describe();
        let tls = target
            .tls
            .client_config()
            .map_err(|e| StoreError::Pg(format!("{db}: {e}")))?;
        let mgr = Manager::from_config(
            target.config.clone(),
            tokio_postgres_rustls::MakeRustlsConnect::new(tls),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(mgr)
            .max_size(POOL_SIZE)
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Pg(format!("{db}: {e}")))?;
        let writers = opts.writers.max(1);
        let (queues, inboxes) = (0..writers)
            .map(|_| mpsc::channel((QUEUE / writers).max(1)))
            .unzip();
        let pg = Pg {
            pool,
            db,
            opts,
            queues,
            inboxes: std::sync::Mutex::new(Some(inboxes)),
            cache: tokio::sync::Mutex::new(None),
            generation: AtomicU64::new(0),
        };
        pg.migrate().await?;
        Ok(pg)
    }

    async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        self.pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(e) => match pg_err(&self.db, e) {
                StoreError::Pg(t) => StoreError::Unavailable(t),
                other => other,
            },
            deadpool_postgres::PoolError::Timeout(_) => StoreError::Unavailable(format!(
                "{}: no connection within {} s",
                self.db,
                CONNECT_TIMEOUT.as_secs()
            )),
            e => StoreError::Unavailable(format!("{}: {e}", self.db)),
        })
    }

    fn err(&self) -> impl Fn(tokio_postgres::Error) -> StoreError + '_ {
        |e| pg_err(&self.db, e)
    }

    /// Bound a request's database work: a server that stopped answering (not refusing)
    /// gives 503 rather than a hung request.
    async fn bounded<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(REQUEST_TIMEOUT, f).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Unavailable(format!(
                "{}: no answer within {} s",
                self.db,
                REQUEST_TIMEOUT.as_secs()
            ))),
        }
    }

    /// Schema setup: under a transaction-scoped advisory lock, so replicas started at the
    /// same moment take turns; the version table says what is there; a newer one is
    /// refused; the tables are created in an empty database.
    async fn migrate(&self) -> Result<(), StoreError> {
        let e = self.err();
        let mut client = self.client().await?;
        let mut tx = client.transaction().await.map_err(&e)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
            .await
            .map_err(&e)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS regtrust_schema (version BIGINT NOT NULL, applied_ms BIGINT NOT NULL)",
        )
        .await
        .map_err(&e)?;
        let version: i64 = tx
            .query_one("SELECT COALESCE(max(version), 0) FROM regtrust_schema", &[])
            .await
            .map_err(&e)?
            .get(0);
        if version > PG_SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                db: self.db.clone(),
                found: version,
                understood: PG_SCHEMA_VERSION,
            });
        }
        // The steps applied now, each recorded below (one row per step).
        let mut applied: Vec<i64> = Vec::new();
        if version < 1 {
            tx.batch_execute(SCHEMA_V1).await.map_err(&e)?;
            applied.push(1);
        }
        if version < 2 {
            // Version 2: the report document every report rewrites (about 3.6 KB of JSON
            // per node, TOAST-compressed) is compressed with lz4 instead of pglz where the
            // server has it (PostgreSQL 14 and later built with lz4, as Debian's and the
            // official images are; docs: ALTER TABLE, "SET COMPRESSION"). In the ingest
            // bench the INSERT of the nodes' rows took 626 ms with pglz and 270 ms with lz4
            // for 15,000 reports (pg_stat_statements). Rows stored before keep pglz until
            // their node reports again. A server without lz4 (or older than 14) refuses
            // the ALTER: it is tried in a savepoint, and pglz stays.
            let sp = tx.savepoint("lz4").await.map_err(&e)?;
            match sp
                .batch_execute("ALTER TABLE nodes ALTER COLUMN report SET COMPRESSION lz4")
                .await
            {
                Ok(()) => sp.commit().await.map_err(&e)?,
                Err(why) => {
                    sp.rollback().await.map_err(&e)?;
                    tracing::info!(db = %self.db, reason = %chain(&why),
                        "the database has no lz4 compression: report documents stay pglz-compressed");
                }
            }
            applied.push(2);
        }
        // Future migrations: `if version < 3 { ...; applied.push(3) }`, in this
        // transaction, under this lock.
        let now = crate::aggregator::fleet::now_ms();
        for step in &applied {
            tx.execute(
                "INSERT INTO regtrust_schema (version, applied_ms) VALUES ($1, $2)",
                &[step, &now],
            )
            .await
            .map_err(&e)?;
        }
        tx.commit().await.map_err(&e)?;
        if let Some(to) = applied.last() {
            tracing::info!(db = %self.db, from = version, to, "database schema set up");
        }
        Ok(())
    }

    pub async fn health(&self) -> Result<(), String> {
        self.bounded(async {
            let client = self.client().await?;
            client.simple_query("SELECT 1").await.map_err(self.err())?;
            Ok(())
        })
        .await
        .map_err(|e| e.to_string())
    }

    fn written(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Queue the report for a writer and wait for the COMMIT that holds it (or its
    /// refusal): the answer never comes before the report is durable.
    /// The writer queue of `node`'s reports: always the same one for a node.
    fn queue_of(&self, node: &str) -> &mpsc::Sender<PutCmd> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        node.hash(&mut h);
        &self.queues[(h.finish() % self.queues.len() as u64) as usize]
    }

    pub(crate) async fn put(&self, f: Facts) -> Result<PutOutcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        let out = self
            .bounded(async {
                self.queue_of(&f.node)
                    .send(PutCmd { facts: f, reply })
                    .await
                    .map_err(|_| StoreError::Gone)?;
                answer.await.map_err(|_| StoreError::Gone)?
            })
            .await?;
        if out.superseded_by.is_none() {
            self.written();
        }
        Ok(out)
    }

    /// One batch: applied in one transaction and committed, retried when PostgreSQL broke
    /// a deadlock or a serialization conflict by aborting it; should the database refuse
    /// it for another reason, each report is tried alone so one bad report does not fail
    /// the others (as SQLite's savepoints do). Every reply goes out after the outcome is
    /// known: a stored report only once its COMMIT returned.
    async fn commit_batch(&self, batch: Vec<PutCmd>) {
        let (facts, replies): (Vec<Facts>, Vec<_>) =
            batch.into_iter().map(|c| (c.facts, c.reply)).unzip();
        let results = match self.apply_retrying(&facts).await {
            Ok(r) => r,
            Err(e) if facts.len() > 1 && !e.is_unavailable() => {
                tracing::warn!(error = %e, reports = facts.len(), "a batch of reports failed; committing them one by one");
                let mut out = Vec::with_capacity(facts.len());
                for f in &facts {
                    out.push(match self.apply_retrying(std::slice::from_ref(f)).await {
                        Ok(mut r) => r.pop().unwrap_or(Err(StoreError::Gone)),
                        Err(e) => Err(e),
                    });
                }
                out
            }
            Err(e) => facts.iter().map(|_| Err(copy_err(&e))).collect(),
        };
        for (reply, r) in replies.into_iter().zip(results) {
            let _ = reply.send(r);
        }
    }

    async fn apply_retrying(
        &self,
        facts: &[Facts],
    ) -> Result<Vec<Result<PutOutcome, StoreError>>, StoreError> {
        let mut tries = 0;
        loop {
            tries += 1;
            let client = self.client().await?;
            let r = tokio::time::timeout(REQUEST_TIMEOUT, self.apply(&client, facts)).await;
            if !matches!(r, Ok(Ok(_))) {
                // The transaction is ours by hand (BEGIN and COMMIT pipelined, below): a
                // connection left inside it must never go back to the pool. Closing it
                // makes the server roll the transaction back.
                drop(deadpool_postgres::Object::take(client));
            }
            match r {
                Ok(Ok(out)) => return Ok(out),
                Ok(Err(Fail::Db(e))) if tries < MAX_TRIES && retryable(&e) => {
                    tracing::debug!(error = %e, "batch aborted by the database; retrying");
                }
                Ok(Err(Fail::Db(e))) => return Err(pg_err(&self.db, e)),
                Ok(Err(Fail::Store(e))) => return Err(e),
                Err(_) => {
                    return Err(StoreError::Unavailable(format!(
                        "{}: no answer within {} s",
                        self.db,
                        REQUEST_TIMEOUT.as_secs()
                    )))
                }
            }
        }
    }

    /// Apply `facts` (in arrival order; a node may appear more than once) in one
    /// transaction and commit. See the file comment for the locking; the statements per
    /// batch do not grow with its size, and they go out in two pipelined flights (three
    /// when a bound must be read, four when the fleet's registry count is needed too):
    /// BEGIN, claim-and-lock (with the fleet's node count when it creates nodes) and the
    /// read of the nodes' rows; then the writes and COMMIT (the plan settings each
    /// statement needs are set between them: `BEGIN_GENERIC`). PostgreSQL runs pipelined
    /// statements one after the other in the order sent (`join!(biased; ...)` sends them
    /// in that order: a tokio-postgres request goes out at its future's first poll), so
    /// the read still starts after the claim has its locks. An error anywhere fails the
    /// whole batch, and the caller closes the connection (a COMMIT after a failed
    /// statement only rolls back).
    async fn apply(
        &self,
        client: &deadpool_postgres::Client,
        facts: &[Facts],
    ) -> Result<Vec<Result<PutOutcome, StoreError>>, Fail> {
        let stmts = Statements::prepare(client).await?;
        let mut nodes: Vec<&str> = facts.iter().map(|f| f.node.as_str()).collect();
        nodes.sort_unstable();
        nodes.dedup();
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&nodes];
        let (begin, claimed, by_key, heads) = tokio::join!(
            biased;
            client.batch_execute(BEGIN_GENERIC),
            client.query(&stmts.claim, &params),
            client.batch_execute(BY_KEY),
            client.query(&stmts.heads, &params),
        );
        begin?;
        by_key?;
        let mut created: HashSet<String> = HashSet::new();
        let mut base = 0i64;
        for r in claimed? {
            match r.get::<_, Option<String>>(0) {
                Some(node) => {
                    created.insert(node);
                }
                None => base = r.get::<_, Option<i64>>(1).unwrap_or(0),
            }
        }
        let heads = heads?;
        let existing: Vec<&str> = nodes
            .iter()
            .copied()
            .filter(|n| !created.contains(*n))
            .collect();
        // The read is a new statement, so its snapshot holds whatever the previous holders
        // of these locks committed (READ COMMITTED takes a snapshot per statement). The
        // rows this batch just created are its own placeholders: skipped.
        let mut state: HashMap<&str, NodeState> = HashMap::with_capacity(nodes.len());
        let mut orphans: HashMap<&str, Vec<String>> = HashMap::new();
        for r in heads {
            let node: &str = r.get(0);
            let Some(n) = existing.iter().copied().find(|n| *n == node) else {
                if let (Some(n), Some(reg)) = (
                    nodes.iter().copied().find(|n| *n == node),
                    r.get::<_, Option<String>>(2),
                ) {
                    orphans.entry(n).or_default().push(reg);
                }
                continue;
            };
            let st = state.entry(n).or_insert_with(|| NodeState {
                generated_at: Some(r.get(1)),
                ..NodeState::default()
            });
            if r.get::<_, Option<&str>>(2).is_some() {
                st.stored.push(registry_row(&r, 2));
            }
        }
        for st in state.values_mut() {
            st.rows = st.stored.clone();
        }
        if state.len() != existing.len() {
            // Cannot happen: a row locked by the claim cannot be deleted under it.
            return Err(Fail::Store(StoreError::Pg(format!(
                "{}: a node row locked by this batch was not found",
                self.db
            ))));
        }
        for n in &nodes {
            state.entry(n).or_insert_with(|| {
                let orphans = orphans.remove(n).unwrap_or_default();
                NodeState {
                    fresh: orphans.is_empty(),
                    orphans,
                    ..NodeState::default()
                }
            });
        }
        // --max-nodes: `base` is the fleet without this batch's created rows, counted by
        // the claim itself (its snapshot precedes its own inserts), so batches that create
        // nodes need no round trip for it. Concurrent creations elsewhere do not see each
        // other (README, "Fleet bounds").
        let mut live_nodes = usize::try_from(base).unwrap_or(usize::MAX);
        let mut regs = self.registry_refs(client, &stmts, facts, &state).await?;
        let mut results = Vec::with_capacity(facts.len());
        let mut events: Vec<Transition<'_>> = Vec::new();
        for (i, f) in facts.iter().enumerate() {
            let node = f.node.as_str();
            let Some(st) = state.get_mut(node) else {
                results.push(Err(StoreError::Gone));
                continue;
            };
            if let Some(stored) = st.generated_at.as_deref().and_then(|g| f.superseded_by(g)) {
                results.push(Ok(PutOutcome {
                    transitions: vec![],
                    superseded_by: Some(stored),
                }));
                continue;
            }
            let is_new = st.generated_at.is_none();
            if is_new && live_nodes >= self.opts.limits.max_nodes {
                results.push(Err(too_many_nodes(self.opts.limits.max_nodes, node)));
                continue;
            }
            if let Err(e) = regs.admit(f, &st.rows, self.opts.limits.max_registries) {
                results.push(Err(e));
                continue;
            }
            let c = change(f, &st.rows);
            regs.follow(f, &st.rows);
            for (registry, from, to) in &c.events {
                events.push((f.received_ms, node, registry.clone(), *from, *to));
            }
            results.push(Ok(PutOutcome {
                transitions: events_of(f, &c),
                superseded_by: None,
            }));
            if is_new {
                live_nodes += 1;
            }
            st.rows = c.rows;
            st.generated_at = Some(f.generated_at.clone());
            st.last = Some(i);
        }
        self.write_batch(client, &stmts, facts, &state, &events)
            .await?;
        Ok(results)
    }

    /// What the fleet-wide registry bound needs to judge this batch: nothing when every
    /// report names only registries its node already has (the steady state), else which
    /// registries other nodes also report and, when some report none, the fleet's count.
    async fn registry_refs(
        &self,
        client: &deadpool_postgres::Client,
        stmts: &Statements,
        facts: &[Facts],
        state: &HashMap<&str, NodeState>,
    ) -> Result<RegistryRefs, tokio_postgres::Error> {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for f in facts {
            *seen.entry(f.node.as_str()).or_default() += 1;
        }
        let maybe_new = facts.iter().any(|f| {
            let rows = state
                .get(f.node.as_str())
                .map_or(&[][..], |s| &s.stored[..]);
            seen.get(f.node.as_str()) > Some(&1)
                || f.registries
                    .iter()
                    .any(|r| !rows.iter().any(|p| p.registry == r.host))
        });
        if !maybe_new {
            return Ok(RegistryRefs::default());
        }
        let mut all: Vec<&str> = facts
            .iter()
            .flat_map(|f| f.registries.iter().map(|r| r.host.as_str()))
            .chain(
                state
                    .values()
                    .flat_map(|s| s.stored.iter().map(|r| r.registry.as_str())),
            )
            .collect();
        all.sort_unstable();
        all.dedup();
        let nodes: Vec<&str> = state.keys().copied().collect();
        let shared: HashSet<String> = client
            .query(&stmts.shared, &[&all, &nodes])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut inside: HashMap<String, usize> = HashMap::new();
        for r in all.iter().filter(|r| !shared.contains(**r)) {
            let n = state
                .values()
                .filter(|s| s.stored.iter().any(|p| p.registry == *r))
                .count();
            inside.insert(r.to_string(), n);
        }
        let distinct = if inside.is_empty() {
            0
        } else {
            let n: i64 = client.query_one(&stmts.distinct, &[]).await?.get(0);
            usize::try_from(n).unwrap_or(usize::MAX)
        };
        Ok(RegistryRefs { inside, distinct })
    }

    /// The batch's writes and its COMMIT, pipelined: each node's final row and registry
    /// rows (written where they differ from what was stored), the transitions in order,
    /// and the claimed rows of nodes whose every report was refused removed (the two
    /// DELETEs first: they read tables, so they run with custom plans, and they touch rows
    /// no other statement of the batch writes). Ok only when
    /// every statement succeeded, the COMMIT included (after a failed statement the
    /// server answers COMMIT by rolling back, so each result is checked, not just the last).
    async fn write_batch(
        &self,
        client: &deadpool_postgres::Client,
        stmts: &Statements,
        facts: &[Facts],
        state: &HashMap<&str, NodeState>,
        events: &[Transition<'_>],
    ) -> Result<(), tokio_postgres::Error> {
        let mut heads: Vec<&Facts> = Vec::new();
        let mut refused: Vec<&str> = Vec::new();
        let mut write: Vec<(&str, &RegistryRow)> = Vec::new();
        let mut add: Vec<(&str, &RegistryRow)> = Vec::new();
        let mut gone: (Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new());
        for (node, st) in state {
            let Some(i) = st.last else {
                if st.generated_at.is_none() {
                    refused.push(node);
                }
                continue;
            };
            heads.push(&facts[i]);
            for r in &st.rows {
                if st.fresh {
                    add.push((node, r));
                } else if !st.stored.iter().any(|p| p == r) {
                    write.push((node, r));
                }
            }
            let before = st.stored.iter().map(|p| p.registry.as_str());
            for p in before.chain(st.orphans.iter().map(String::as_str)) {
                if !st.rows.iter().any(|r| r.registry == p) {
                    gone.0.push(node);
                    gone.1.push(p);
                }
            }
        }
        let h_node: Vec<&str> = heads.iter().map(|f| f.node.as_str()).collect();
        let h_received: Vec<i64> = heads.iter().map(|f| f.received_ms).collect();
        let h_generated: Vec<&str> = heads.iter().map(|f| f.generated_at.as_str()).collect();
        let h_agent: Vec<&str> = heads.iter().map(|f| f.agent_version.as_str()).collect();
        let h_problems: Vec<i64> = heads.iter().map(|f| i64::from(f.problems)).collect();
        let h_raw: Vec<&str> = heads.iter().map(|f| f.raw.as_str()).collect();
        let (w, a) = (RowColumns::of(&write), RowColumns::of(&add));
        let e_at: Vec<i64> = events.iter().map(|x| x.0).collect();
        let e_node: Vec<&str> = events.iter().map(|x| x.1).collect();
        let e_reg: Vec<&str> = events.iter().map(|x| x.2.as_str()).collect();
        let e_from: Vec<Option<&str>> = events.iter().map(|x| x.3.map(|v| v.as_str())).collect();
        let e_to: Vec<Option<&str>> = events.iter().map(|x| x.4.map(|v| v.as_str())).collect();
        // Each future sends its statement at its first poll (or nothing, when it has no
        // rows), so the COMMIT goes out last.
        let skip = || async { Ok::<u64, tokio_postgres::Error>(0) };
        // The plan settings around the DELETEs, sent only when there are any.
        let deletes = !gone.0.is_empty() || !refused.is_empty();
        let set_if_deleting = |settings: &'static str| async move {
            if deletes {
                client.batch_execute(settings).await
            } else {
                Ok(())
            }
        };
        let (
            custom,
            dropped_rows,
            dropped_nodes,
            generic,
            set_heads,
            set_rows,
            add_rows,
            events,
            commit,
        ) = tokio::join!(
            biased;
            set_if_deleting(CUSTOM),
            async {
                if gone.0.is_empty() {
                    return skip().await;
                }
                client.execute(&stmts.drop_rows, &[&gone.0, &gone.1]).await
            },
            async {
                if refused.is_empty() {
                    return skip().await;
                }
                client.execute(&stmts.drop_nodes, &[&refused]).await
            },
            set_if_deleting(GENERIC),
            async {
                if heads.is_empty() {
                    return skip().await;
                }
                client
                    .execute(
                        &stmts.set_heads,
                        &[&h_node, &h_received, &h_generated, &h_agent, &h_problems, &h_raw],
                    )
                    .await
            },
            async {
                if write.is_empty() {
                    return skip().await;
                }
                client
                    .execute(
                        &stmts.set_rows,
                        &w.params(),
                    )
                    .await
            },
            async {
                if add.is_empty() {
                    return skip().await;
                }
                client
                    .execute(
                        &stmts.add_rows,
                        &a.params(),
                    )
                    .await
            },
            async {
                if events.is_empty() {
                    return skip().await;
                }
                client
                    .execute(&stmts.events, &[&e_at, &e_node, &e_reg, &e_from, &e_to])
                    .await
            },
            client.batch_execute("COMMIT"),
        );
        custom?;
        dropped_rows?;
        dropped_nodes?;
        generic?;
        set_heads?;
        set_rows?;
        add_rows?;
        events?;
        commit?;
        Ok(())
    }

    pub async fn delete(&self, node: &str) -> Result<bool, StoreError> {
        let known = self
            .bounded(async {
                let e = self.err();
                let mut client = self.client().await?;
                let tx = client.transaction().await.map_err(&e)?;
                // The node row first: it is the lock every writer of this node takes.
                let n = tx
                    .execute("DELETE FROM nodes WHERE node = $1", &[&node])
                    .await
                    .map_err(&e)?;
                tx.execute("DELETE FROM node_registries WHERE node = $1", &[&node])
                    .await
                    .map_err(&e)?;
                tx.commit().await.map_err(&e)?;
                Ok(n > 0)
            })
            .await?;
        self.written();
        Ok(known)
    }

    /// The fleet, from a snapshot at most `FLEET_CACHE` old and taken after this replica's
    /// last write; concurrent readers share one load.
    pub async fn fleet(&self) -> Result<Arc<Vec<Arc<NodeRow>>>, StoreError> {
        let mut cache = self.cache.lock().await;
        let generation = self.generation.load(Ordering::SeqCst);
        if let Some(c) = cache.as_ref() {
            if c.generation == generation && c.at.elapsed() < FLEET_CACHE {
                return Ok(c.rows.clone());
            }
        }
        let at = Instant::now();
        let rows = Arc::new(self.bounded(self.load_fleet()).await?);
        *cache = Some(Cached {
            at,
            generation,
            rows: rows.clone(),
        });
        Ok(rows)
    }

    async fn load_fleet(&self) -> Result<Vec<Arc<NodeRow>>, StoreError> {
        let e = self.err();
        let mut client = self.client().await?;
        // One snapshot for both queries, so nodes and their rows agree.
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(&e)?;
        let (nodes, regs) = tokio::join!(
            tx.query(
                "SELECT node, received_ms, generated_at, agent_version, problems FROM nodes ORDER BY node",
                &[],
            ),
            tx.query(
                "SELECT node, registry, verdict, since_ms, message, cause, fix FROM node_registries ORDER BY node, registry",
                &[],
            )
        );
        let nodes = nodes.map_err(&e)?;
        let regs = regs.map_err(&e)?;
        tx.commit().await.map_err(&e)?;
        let mut out: Vec<NodeRow> = nodes.iter().map(node_row).collect();
        // Both sorted by node (byte order: the columns are COLLATE "C"): walk together.
        let mut i = 0;
        for r in &regs {
            let node: &str = r.get(0);
            while i < out.len() && out[i].node.as_str() < node {
                i += 1;
            }
            if i < out.len() && out[i].node == node {
                out[i].registries.push(registry_row(r, 1));
            }
        }
        Ok(out.into_iter().map(Arc::new).collect())
    }

    pub async fn node(&self, node: &str) -> Result<Option<NodeRecord>, StoreError> {
        self.bounded(async {
            let e = self.err();
            let mut client = self.client().await?;
            let tx = client
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await
                .map_err(&e)?;
            let head = tx
                .query_opt(
                    "SELECT node, received_ms, generated_at, agent_version, problems, report FROM nodes WHERE node = $1",
                    &[&node],
                )
                .await
                .map_err(&e)?;
            let Some(head) = head else {
                return Ok(None);
            };
            let regs = tx
                .query(
                    "SELECT node, registry, verdict, since_ms, message, cause, fix FROM node_registries WHERE node = $1 ORDER BY registry",
                    &[&node],
                )
                .await
                .map_err(&e)?;
            tx.commit().await.map_err(&e)?;
            let mut row = node_row(&head);
            row.registries = regs.iter().map(|r| registry_row(r, 1)).collect();
            Ok(Some(NodeRecord {
                row,
                report_json: head.get(5),
            }))
        })
        .await
    }

    pub async fn events(&self, q: &EventQuery) -> Result<Vec<Event>, StoreError> {
        self.bounded(async {
            let e = self.err();
            let client = self.client().await?;
            let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
            let rows = client
                .query(
                    "SELECT node, registry, from_verdict, to_verdict, at_ms FROM events
                     WHERE ($1::text IS NULL OR node = $1) AND ($2::text IS NULL OR registry = $2)
                       AND at_ms >= $3
                     ORDER BY at_ms DESC, id DESC LIMIT $4",
                    &[
                        &q.node,
                        &q.registry,
                        &q.since_ms.unwrap_or(i64::MIN),
                        &limit,
                    ],
                )
                .await
                .map_err(&e)?;
            Ok(rows
                .iter()
                .map(|r| Event {
                    node: r.get(0),
                    registry: r.get(1),
                    from: r.get::<_, Option<&str>>(2).map(verdict_of),
                    to: r.get::<_, Option<&str>>(3).map(verdict_of),
                    at: crate::aggregator::fleet::ms_to_rfc3339(r.get(4)),
                })
                .collect())
        })
        .await
    }

    /// Retention, the same rule as SQLite's. Every replica runs it; the statements are
    /// idempotent. Nodes are deleted first (taking their row locks, and re-checked against
    /// a report committed meanwhile), then the registry rows of exactly those nodes.
    pub async fn prune(&self, now_ms: i64) -> Result<(usize, usize), StoreError> {
        let retention_ms = i64::try_from(self.opts.retention.as_millis()).unwrap_or(i64::MAX);
        let cutoff = now_ms.saturating_sub(retention_ms);
        let out = self
            .bounded(async {
                let e = self.err();
                let mut client = self.client().await?;
                let tx = client.transaction().await.map_err(&e)?;
                let events = tx
                    .execute("DELETE FROM events WHERE at_ms < $1", &[&cutoff])
                    .await
                    .map_err(&e)?;
                let gone: Vec<String> = tx
                    .query(
                        "DELETE FROM nodes WHERE received_ms < $1 RETURNING node",
                        &[&cutoff],
                    )
                    .await
                    .map_err(&e)?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                if !gone.is_empty() {
                    tx.execute(
                        "DELETE FROM node_registries WHERE node = ANY($1::text[])",
                        &[&gone],
                    )
                    .await
                    .map_err(&e)?;
                }
                tx.commit().await.map_err(&e)?;
                Ok((usize::try_from(events).unwrap_or(usize::MAX), gone.len()))
            })
            .await?;
        if out.1 > 0 {
            self.written();
        }
        Ok(out)
    }

    /// The writers: each takes every report waiting in its queue (up to `MAX_BATCH`) and
    /// commits them as one batch; they stop once every handle is dropped and their queue
    /// is empty.
    pub fn spawn_writers(pg: &Arc<Pg>) -> Vec<tokio::task::JoinHandle<()>> {
        let Some(inboxes) = pg.inboxes.lock().ok().and_then(|mut g| g.take()) else {
            return Vec::new();
        };
        inboxes
            .into_iter()
            .map(|inbox| tokio::spawn(writer(Arc::downgrade(pg), inbox)))
            .collect()
    }

    /// Retention every `PRUNE_EVERY`, for the life of the store.
    pub fn spawn_retention(pg: &Arc<Pg>) -> tokio::task::JoinHandle<()> {
        let pg = Arc::downgrade(pg);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PRUNE_EVERY);
            loop {
                tick.tick().await;
                let Some(pg) = pg.upgrade() else { return };
                match pg.prune(crate::aggregator::fleet::now_ms()).await {
                    Ok((0, 0)) => {}
                    Ok((events, nodes)) => tracing::info!(
                        events,
                        nodes,
                        "retention removed old events and silent nodes"
                    ),
                    Err(e) => tracing::warn!(error = %e, "retention failed; will retry"),
                }
            }
        })
    }
}

/// The claim: creates the batch's missing node rows and locks the existing ones.
/// ON CONFLICT DO UPDATE locks the conflicting row even when its WHERE is false
/// (PostgreSQL docs, INSERT, "ON CONFLICT Clause"); rows are claimed in the byte
/// order of their names, so batches of any replica lock in one order.
/// Placeholders in created rows are overwritten (or the row deleted) before COMMIT.
/// The one row with a NULL node is the fleet's node count in the statement's
/// snapshot, which precedes its inserts; counted only when it inserted, else 0 (the
/// uncorrelated EXISTS is a one-time filter, so the scan does not run otherwise).
#[doc(hidden)]
pub const CLAIM: &str = "WITH claimed AS (
       INSERT INTO nodes (node, received_ms, generated_at, agent_version, problems, report)
       SELECT n, 0, '', '', 0, '' FROM unnest($1::text[]) AS n ORDER BY n COLLATE \"C\"
       ON CONFLICT (node) DO UPDATE SET node = excluded.node WHERE false
       RETURNING node
     )
     SELECT node, NULL::int8 FROM claimed
     UNION ALL
     SELECT NULL, count(*) FROM nodes WHERE EXISTS (SELECT FROM claimed)";

/// The nodes' heads and registry rows in one statement (one snapshot). A LATERAL
/// subquery kept apart by OFFSET 0 (so the planner cannot flatten it into a
/// join): each node's rows are read through the primary key whatever the
/// statistics say. On tables just filled, before autovacuum's first ANALYZE, a
/// plain join was planned as a hash join over every registry row of the fleet
/// (12-20 ms a batch at 5,000 nodes instead of 0.2 ms). Run with `BY_KEY`, its generic
/// plan reads both tables through their primary keys even when made on empty tables
/// (`the_batch_reads_plan_by_key_on_empty_tables`, which is why these texts are public).
#[doc(hidden)]
pub const HEADS: &str =
    "SELECT n.node, n.generated_at, r.registry, r.verdict, r.since_ms, r.message, r.cause, r.fix
     FROM nodes AS n LEFT JOIN LATERAL (
       SELECT * FROM node_registries AS x WHERE x.node = n.node OFFSET 0
     ) AS r ON true
     WHERE n.node = ANY($1::text[])";

/// Which of the registries `$1` nodes outside the batch (`$2`) also report.
/// One index probe per registry (EXISTS stops at the first row of a node outside
/// this batch), never a scan of every node's rows.
#[doc(hidden)]
pub const SHARED: &str = "SELECT r FROM unnest($1::text[]) AS r
     WHERE EXISTS (SELECT 1 FROM node_registries WHERE registry = r AND node <> ALL($2::text[]))";

/// The statements of a batch, prepared once per connection (deadpool's statement cache)
/// and all before the first is sent, so pipelined flights are never split by a Parse.
struct Statements {
    claim: tokio_postgres::Statement,
    heads: tokio_postgres::Statement,
    shared: tokio_postgres::Statement,
    distinct: tokio_postgres::Statement,
    set_heads: tokio_postgres::Statement,
    set_rows: tokio_postgres::Statement,
    add_rows: tokio_postgres::Statement,
    drop_rows: tokio_postgres::Statement,
    events: tokio_postgres::Statement,
    drop_nodes: tokio_postgres::Statement,
}

impl Statements {
    async fn prepare(c: &deadpool_postgres::Client) -> Result<Statements, tokio_postgres::Error> {
        Ok(Statements {
            claim: c.prepare_cached(CLAIM).await?,
            heads: c.prepare_cached(HEADS).await?,
            shared: c.prepare_cached(SHARED).await?,
            distinct: c
                .prepare_cached("SELECT count(DISTINCT registry) FROM node_registries")
                .await?,
            // An upsert whose every row conflicts (each node was claimed), not
            // UPDATE ... FROM unnest: the conflict is found through the primary key, where
            // the planner, costing a join, scanned the whole table.
            set_heads: c
                .prepare_cached(
                    "INSERT INTO nodes (node, received_ms, generated_at, agent_version, problems, report)
                     SELECT * FROM unnest($1::text[], $2::int8[], $3::text[], $4::text[], $5::int8[], $6::text[])
                     ON CONFLICT (node) DO UPDATE SET received_ms = excluded.received_ms,
                       generated_at = excluded.generated_at, agent_version = excluded.agent_version,
                       problems = excluded.problems, report = excluded.report",
                )
                .await?,
            set_rows: c
                .prepare_cached(
                    "INSERT INTO node_registries (node, registry, verdict, since_ms, message, cause, fix)
                     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::text[], $6::text[], $7::text[])
                     ON CONFLICT (node, registry) DO UPDATE SET verdict = excluded.verdict,
                       since_ms = excluded.since_ms, message = excluded.message,
                       cause = excluded.cause, fix = excluded.fix",
                )
                .await?,
            add_rows: c
                .prepare_cached(
                    "INSERT INTO node_registries (node, registry, verdict, since_ms, message, cause, fix)
                     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::text[], $6::text[], $7::text[])",
                )
                .await?,
            drop_rows: c
                .prepare_cached(
                    "DELETE FROM node_registries AS r USING unnest($1::text[], $2::text[]) AS g(node, registry)
                     WHERE r.node = g.node AND r.registry = g.registry",
                )
                .await?,
            events: c
                .prepare_cached(
                    "INSERT INTO events (at_ms, node, registry, from_verdict, to_verdict)
                     SELECT a, n, r, f, t FROM unnest($1::int8[], $2::text[], $3::text[], $4::text[], $5::text[])
                       WITH ORDINALITY AS x(a, n, r, f, t, i) ORDER BY i",
                )
                .await?,
            drop_nodes: c
                .prepare_cached("DELETE FROM nodes WHERE node = ANY($1::text[])")
                .await?,
        })
    }
}

/// One writer: gather a batch from its queue, commit it, answer it (the other writers
/// gather and commit theirs meanwhile).
async fn writer(pg: Weak<Pg>, mut rx: mpsc::Receiver<PutCmd>) {
    loop {
        let batch = {
            let Some(first) = rx.recv().await else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(c) => batch.push(c),
                    Err(_) => break,
                }
            }
            batch
        };
        let Some(pg) = pg.upgrade() else {
            for c in batch {
                let _ = c.reply.send(Err(StoreError::Gone));
            }
            return;
        };
        pg.commit_batch(batch).await;
    }
}

fn node_row(r: &tokio_postgres::Row) -> NodeRow {
    NodeRow {
        node: r.get(0),
        received_ms: r.get(1),
        generated_at: r.get(2),
        agent_version: r.get(3),
        problems: u32::try_from(r.get::<_, i64>(4)).unwrap_or(u32::MAX),
        registries: Vec::new(),
    }
}

/// A `node_registries` row whose `registry` column is at `first`.
fn registry_row(r: &tokio_postgres::Row, first: usize) -> RegistryRow {
    RegistryRow {
        registry: r.get(first),
        verdict: verdict_of(r.get(first + 1)),
        since_ms: r.get(first + 2),
        message: r.get(first + 3),
        cause: r.get(first + 4),
        fix: r.get(first + 5),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_take_the_password_once_and_never_show_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "fr0m-file\n").unwrap();
        let env = Some("fr0m-env".to_string());
        let u = "postgres://regtrust@db.example:5433/fleet";
        let with_pw = "postgres://regtrust:s3cr%40t@db.example:5433/fleet";
        let pw = |t: &Target| {
            t.config
                .get_password()
                .map(|p| String::from_utf8_lossy(p).into_owned())
        };
        let t = Target::parse(with_pw, None, None, env.clone()).unwrap();
        assert_eq!(pw(&t).as_deref(), Some("s3cr@t"));
        assert_eq!(t.describe(), "postgres://regtrust@db.example:5433/fleet");
        assert!(!format!("{t:?}").contains("s3cr"));
        let t = Target::parse(u, Some(&file), None, env.clone()).unwrap();
        assert_eq!(pw(&t).as_deref(), Some("fr0m-file"));
        let t = Target::parse(u, None, None, env.clone()).unwrap();
        assert_eq!(pw(&t).as_deref(), Some("fr0m-env"));
        let t = Target::parse("postgresql://regtrust@db.example/fleet", None, None, None).unwrap();
        assert_eq!(pw(&t), None);
        let t = Target::parse(
            "postgres://regtrust:s3cr%40t@db.example/fleet?sslmode=verify-full",
            None,
            None,
            None,
        )
        .unwrap();
        assert_eq!(
            t.describe(),
            "postgres://regtrust@db.example:5432/fleet?sslmode=verify-full"
        );
        assert_eq!(
            t.config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
        for (url, file, want) in [
            (with_pw, Some(file.as_path()), "already holds a password"),
            ("postgres://db.example/fleet", None, "names no user"),
            (
                "postgres://u:s3cr%40t@db.example/fleet?sslmode=allow",
                None,
                "sslmode=allow",
            ),
            (
                "postgres://u:s3cr%40t@db.example:notaport/x",
                None,
                "not a PostgreSQL URL",
            ),
            (u, Some(dir.path()), "not a regular file"),
        ] {
            let err = Target::parse(url, file, None, None).unwrap_err();
            assert!(err.contains(want), "{url}: {err}");
            assert!(!err.contains("s3cr"), "{url}: the password leaks: {err}");
        }
    }
}
