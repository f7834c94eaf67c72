//! The PostgreSQL backend of the store: several aggregator replicas on one database serve
//! one fleet. It owns the connection settings (`Target`: URL, password from the URL,
//! `PGPASSWORD` or a file, never logged; TLS in `tls`), the pool, the versioned schema (created under an
//! advisory lock, so replicas starting at once do not race), each report's transaction,
//! retention, and the mapping of "cannot reach the database" to `Unavailable` (503).
//!
//! One report, one transaction (READ COMMITTED): the node's row is locked first
//! (`SELECT ... FOR UPDATE`, or created with `INSERT ... ON CONFLICT DO NOTHING`, which
//! waits for a concurrent creator), and only then are its registry rows read, in a NEW
//! statement, so its snapshot includes whatever the previous holder of the lock committed
//! (a join in the locking statement would read the registry rows from the snapshot taken
//! before the wait: PostgreSQL docs, "Transaction Isolation", READ COMMITTED, re-checks
//! only the locked row). Transitions are therefore computed against the committed state
//! and recorded once, whichever replica a node's reports reach. The answer is sent after
//! COMMIT returned (`synchronous_commit` as the server has it, `on` by default: durable).
//!
//! Fleet reads re-read the database: a replica serves its cached fleet for at most
//! `FLEET_CACHE` (and never across one of its own writes), so a report posted to any
//! replica is visible from every replica within that time.

use super::{
    change, events_of, too_many_nodes, too_many_registries, verdict_of, EventQuery, Facts,
    NodeRecord, Options, PutOutcome, StoreError, PRUNE_EVERY, SCHEMA_VERSION,
};
use crate::aggregator::fleet::{Event, NodeRow, RegistryRow};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod tls;

/// Connections per replica.
const POOL_SIZE: usize = 16;
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
    cache: tokio::sync::Mutex<Option<Cached>>,
    /// Bumped by each of this replica's writes: a snapshot loaded before one is not reused.
    generation: AtomicU64,
}

struct Cached {
    at: Instant,
    generation: u64,
    rows: Arc<Vec<Arc<NodeRow>>>,
}

/// The node's lock, then its registry rows (see the file comment for why two statements).
struct Locked {
    generated_at: String,
    registries: Vec<RegistryRow>,
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
        let pg = Pg {
            pool,
            db,
            opts,
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
        let tx = client.transaction().await.map_err(&e)?;
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
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                db: self.db.clone(),
                found: version,
            });
        }
        if version < 1 {
            tx.batch_execute(SCHEMA_V1).await.map_err(&e)?;
            tx.execute(
                "INSERT INTO regtrust_schema (version, applied_ms) VALUES (1, $1)",
                &[&crate::aggregator::fleet::now_ms()],
            )
            .await
            .map_err(&e)?;
            tracing::info!(db = %self.db, version = 1, "database schema created");
        }
        // Future migrations: `if version < 2 { ...; INSERT version 2 }`, in this
        // transaction, under this lock.
        tx.commit().await.map_err(&e)?;
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

    pub(crate) async fn put(&self, f: Facts) -> Result<PutOutcome, StoreError> {
        let out = self.bounded(self.put_tx(&f)).await?;
        if out.superseded_by.is_none() {
            self.written();
        }
        Ok(out)
    }

    async fn lock(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        node: &str,
    ) -> Result<Option<Locked>, StoreError> {
        let e = self.err();
        // Two round trips on purpose: pipelining the second behind the first (join!)
        // would not fix their order on the wire (tokio's join! rotates which future it
        // polls first), and the registry rows must be read after the lock is held.
        let s = tx
            .prepare_cached("SELECT generated_at FROM nodes WHERE node = $1 FOR UPDATE")
            .await
            .map_err(&e)?;
        let Some(row) = tx.query_opt(&s, &[&node]).await.map_err(&e)? else {
            return Ok(None);
        };
        let s = tx
            .prepare_cached(
                "SELECT registry, verdict, since_ms, message, cause, fix FROM node_registries WHERE node = $1",
            )
            .await
            .map_err(&e)?;
        let regs = tx.query(&s, &[&node]).await;
        let registries = regs
            .map_err(&e)?
            .iter()
            .map(|r| RegistryRow {
                registry: r.get(0),
                verdict: verdict_of(r.get(1)),
                since_ms: r.get(2),
                message: r.get(3),
                cause: r.get(4),
                fix: r.get(5),
            })
            .collect();
        Ok(Some(Locked {
            generated_at: row.get(0),
            registries,
        }))
    }

    async fn put_tx(&self, f: &Facts) -> Result<PutOutcome, StoreError> {
        let e = self.err();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(&e)?;
        let problems = i64::from(f.problems);
        let mut created = false;
        let prev = match self.lock(&tx, &f.node).await? {
            Some(p) => Some(p),
            None => {
                let s = tx
                    .prepare_cached(
                        "INSERT INTO nodes (node, received_ms, generated_at, agent_version, problems, report)
                         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (node) DO NOTHING RETURNING 1",
                    )
                    .await
                    .map_err(&e)?;
                let ins = tx
                    .query_opt(
                        &s,
                        &[
                            &f.node,
                            &f.received_ms,
                            &f.generated_at,
                            &f.agent_version,
                            &problems,
                            &f.raw,
                        ],
                    )
                    .await
                    .map_err(&e)?;
                if ins.is_some() {
                    created = true;
                    None
                } else {
                    // Another replica created it meanwhile (the insert waited for its
                    // commit): lock it as it stands now.
                    self.lock(&tx, &f.node).await?
                }
            }
        };
        if let Some(stored) = prev.as_ref().and_then(|p| f.superseded_by(&p.generated_at)) {
            // Rolled back on drop: nothing of this report is applied.
            return Ok(PutOutcome {
                transitions: vec![],
                superseded_by: Some(stored),
            });
        }
        let prev_regs = prev.map(|p| p.registries).unwrap_or_default();
        if created {
            // Counted with this node's own (uncommitted) row. Concurrent creations on
            // other connections do not see each other, so the bound can be passed by at
            // most the creations in flight at that instant (README, "Fleet bounds").
            let n: i64 = tx
                .query_one("SELECT count(*) FROM nodes", &[])
                .await
                .map_err(&e)?
                .get(0);
            if usize::try_from(n).unwrap_or(usize::MAX) > self.opts.limits.max_nodes {
                return Err(too_many_nodes(self.opts.limits.max_nodes, &f.node));
            }
        }
        self.check_registries(&tx, f, &prev_regs).await?;
        let c = change(f, &prev_regs);
        let node = f.node.as_str();
        let (a, b, d, u) = tokio::join!(
            async {
                if c.events.is_empty() {
                    return Ok(());
                }
                let regs: Vec<&str> = c.events.iter().map(|x| x.0.as_str()).collect();
                let from: Vec<Option<&str>> =
                    c.events.iter().map(|x| x.1.map(|v| v.as_str())).collect();
                let to: Vec<Option<&str>> =
                    c.events.iter().map(|x| x.2.map(|v| v.as_str())).collect();
                let s = tx
                    .prepare_cached(
                        "INSERT INTO events (at_ms, node, registry, from_verdict, to_verdict)
                         SELECT $1, $2, r, f, t FROM unnest($3::text[], $4::text[], $5::text[]) WITH ORDINALITY AS x(r, f, t, i) ORDER BY i",
                    )
                    .await?;
                tx.execute(&s, &[&f.received_ms, &node, &regs, &from, &to])
                    .await
                    .map(|_| ())
            },
            async {
                if c.write.is_empty() {
                    return Ok(());
                }
                let regs: Vec<&str> = c.write.iter().map(|r| r.registry.as_str()).collect();
                let verdicts: Vec<&str> = c.write.iter().map(|r| r.verdict.as_str()).collect();
                let since: Vec<i64> = c.write.iter().map(|r| r.since_ms).collect();
                let msgs: Vec<&str> = c.write.iter().map(|r| r.message.as_str()).collect();
                let causes: Vec<&str> = c.write.iter().map(|r| r.cause.as_str()).collect();
                let fixes: Vec<&str> = c.write.iter().map(|r| r.fix.as_str()).collect();
                let s = tx
                    .prepare_cached(
                        "INSERT INTO node_registries (node, registry, verdict, since_ms, message, cause, fix)
                         SELECT $1, * FROM unnest($2::text[], $3::text[], $4::int8[], $5::text[], $6::text[], $7::text[])
                         ON CONFLICT (node, registry) DO UPDATE SET verdict = excluded.verdict,
                           since_ms = excluded.since_ms, message = excluded.message,
                           cause = excluded.cause, fix = excluded.fix",
                    )
                    .await?;
                tx.execute(
                    &s,
                    &[&node, &regs, &verdicts, &since, &msgs, &causes, &fixes],
                )
                .await
                .map(|_| ())
            },
            async {
                if c.gone.is_empty() {
                    return Ok(());
                }
                let s = tx
                    .prepare_cached("DELETE FROM node_registries WHERE node = $1 AND registry = ANY($2::text[])")
                    .await?;
                tx.execute(&s, &[&node, &c.gone]).await.map(|_| ())
            },
            async {
                if created {
                    return Ok(());
                }
                let s = tx
                    .prepare_cached(
                        "UPDATE nodes SET received_ms = $2, generated_at = $3, agent_version = $4,
                           problems = $5, report = $6 WHERE node = $1",
                    )
                    .await?;
                tx.execute(
                    &s,
                    &[
                        &node,
                        &f.received_ms,
                        &f.generated_at,
                        &f.agent_version,
                        &problems,
                        &f.raw,
                    ],
                )
                .await
                .map(|_| ())
            }
        );
        a.map_err(&e)?;
        b.map_err(&e)?;
        d.map_err(&e)?;
        u.map_err(&e)?;
        tx.commit().await.map_err(&e)?;
        Ok(PutOutcome {
            transitions: events_of(f, &c),
            superseded_by: None,
        })
    }

    /// The fleet-wide registry bound: only when the report names registries this node did
    /// not report before does it cost a query, and a count only when they are new to the
    /// whole fleet (rare: a registry appears once). Like `--max-nodes` across replicas,
    /// exact but for additions in flight at the same instant.
    async fn check_registries(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        f: &Facts,
        prev: &[RegistryRow],
    ) -> Result<(), StoreError> {
        let e = self.err();
        let candidates: Vec<&str> = f
            .registries
            .iter()
            .filter(|r| !prev.iter().any(|p| p.registry == r.host))
            .map(|r| r.host.as_str())
            .collect();
        if candidates.is_empty() {
            return Ok(());
        }
        let known: Vec<String> = tx
            .query(
                // One index probe per candidate (EXISTS stops at the first row), not a
                // scan of every node's row for a registry thousands of nodes report.
                "SELECT r FROM unnest($1::text[]) AS r
                 WHERE EXISTS (SELECT 1 FROM node_registries WHERE registry = r)",
                &[&candidates],
            )
            .await
            .map_err(&e)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let new: Vec<&str> = candidates
            .into_iter()
            .filter(|c| !known.iter().any(|k| k == c))
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        let gone: Vec<&str> = prev
            .iter()
            .filter(|p| !f.registries.iter().any(|r| r.host == p.registry))
            .map(|p| p.registry.as_str())
            .collect();
        let row = tx
            .query_one(
                "SELECT (SELECT count(DISTINCT registry) FROM node_registries),
                        (SELECT count(*) FROM (SELECT registry FROM node_registries
                           WHERE registry = ANY($1::text[]) GROUP BY registry HAVING count(*) = 1) AS sole)",
                &[&gone],
            )
            .await
            .map_err(&e)?;
        let (distinct, freed): (i64, i64) = (row.get(0), row.get(1));
        let after = distinct - freed + i64::try_from(new.len()).unwrap_or(i64::MAX);
        if usize::try_from(after).unwrap_or(usize::MAX) > self.opts.limits.max_registries {
            return Err(too_many_registries(self.opts.limits.max_registries, &new));
        }
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
