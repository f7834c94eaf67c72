//! `regtrust aggregator` (SPEC, Aggregator): the central service the agents post their
//! reports to, and the fleet view admins read (JSON API, HTML page, Prometheus metrics);
//! and `regtrust report`, the admin CLI over that view.
//!
//! Layout:
//! - `store`: one interface over the SQLite file (one thread) and PostgreSQL (several
//!   replicas); durability, retention, newest truth and the fleet bounds.
//! - `fleet`: what the stored rows mean now (staleness, worst verdict, rollups, metrics).
//! - `api`: routes, tokens, body limit, admission of reports.
//! - `page`: the server-rendered pages (fleet, node, registry).
//! - `facts`: what each node trusts and sees per registry (cached from the reports).
//! - `preflight`: what each node would say about a chain a registry is about to serve.
//! - `client`: `regtrust report`.
//!
//! This file owns the configuration (flags → `Config`, the token rules) and the server's
//! lifecycle (`serve` takes a bound listener and a shutdown future, mini-redis style, so
//! tests run the real thing on port 0). It does not parse the report (`report`).

pub mod api;
pub mod client;
pub mod facts;
pub mod fleet;
pub mod page;
pub mod preflight;
pub mod store;

use crate::cli::AggregatorArgs;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Largest token file read: a token is a line, not a document.
const MAX_TOKEN_FILE: u64 = 4096;
/// Seconds between the fleet page's self-refreshes.
pub const PAGE_REFRESH_SECS: u32 = 30;

/// The server's settings, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub db: store::DbTarget,
    /// `None` only when open loopback was explicitly allowed.
    pub write_token: Option<api::Token>,
    pub read_token: Option<api::Token>,
    pub stale_after: Duration,
    pub retention: Duration,
    /// A node silent for longer than this is forgotten (autoscaled-away nodes stop being
    /// `stale` in a day, not after the retention).
    pub forget_after: Duration,
    pub body_limit: usize,
    pub bounds: Bounds,
}

/// How much the aggregator accepts (issue 9 point 6): fleet size, registries, clock skew,
/// and how much `/metrics` exports.
#[derive(Debug, Clone)]
pub struct Bounds {
    pub limits: store::Limits,
    pub max_registries_per_report: usize,
    pub max_clock_skew: Duration,
    pub metrics_per_node: bool,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            limits: store::Limits::default(),
            max_registries_per_report: 256,
            max_clock_skew: Duration::from_secs(300),
            metrics_per_node: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("token file {path}: {source}")]
    TokenRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("token file {path}: {what}")]
    TokenBad { path: PathBuf, what: String },
    #[error("no --token-file: writes would be open to anyone who can reach {listen}; give --token-file, or --allow-open-loopback with a loopback --listen address")]
    NoToken { listen: SocketAddr },
    #[error("--allow-open-loopback needs a loopback --listen address (127.0.0.1 or [::1]), got {listen}")]
    OpenNotLoopback { listen: SocketAddr },
    #[error("--body-limit must be at least 1 KiB, got {0} bytes")]
    BodyLimit(usize),
    #[error("--stale-after must be more than 0")]
    StaleAfter,
    #[error("{0}")]
    Db(String),
    #[error("{flag} must be at least 1")]
    Bound { flag: &'static str },
    #[error("--forget-after {forget_after:?} must be longer than --stale-after {stale_after:?}: a node is first stale, then forgotten")]
    ForgetAfter {
        forget_after: Duration,
        stale_after: Duration,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("serving HTTP: {0}")]
    Io(#[from] std::io::Error),
}

/// Read a token file: the trailing newline (`\n` or `\r\n`) is not part of the token. The
/// error names the file and what is wrong, never the content.
pub fn read_token_file(path: &Path) -> Result<String, ConfigError> {
    use crate::ca::{read_capped, ReadCappedError};
    let bad = |what: &str| ConfigError::TokenBad {
        path: path.to_path_buf(),
        what: what.to_string(),
    };
    // Capped, and never blocked by a FIFO or a device where the file should be.
    let bytes = read_capped(path, MAX_TOKEN_FILE).map_err(|e| match e {
        ReadCappedError::Io(source) => ConfigError::TokenRead {
            path: path.to_path_buf(),
            source,
        },
        ReadCappedError::NotAFile => bad("not a regular file"),
        ReadCappedError::TooLarge { .. } => bad(&format!(
            "larger than {MAX_TOKEN_FILE} bytes; expected one line holding the token"
        )),
    })?;
    let text = String::from_utf8(bytes).map_err(|_| bad("not UTF-8 text"))?;
    let token = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    if token.is_empty() {
        return Err(bad("empty; expected one line holding the token"));
    }
    if token.contains(['\n', '\r']) {
        return Err(bad(
            "more than one line; expected one line holding the token",
        ));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad(
            "holds spaces or characters outside printable ASCII, which an Authorization header cannot carry",
        ));
    }
    Ok(token.to_string())
}

impl Config {
    /// Flags → config, enforcing the token rule: writes never happen without a token, unless
    /// explicitly allowed on a loopback address.
    pub fn from_args(args: &AggregatorArgs) -> Result<Config, ConfigError> {
        let write_token = match &args.token_file {
            Some(p) => Some(api::Token::new(&read_token_file(p)?)),
            None if !args.allow_open_loopback => {
                return Err(ConfigError::NoToken {
                    listen: args.listen,
                })
            }
            None => None,
        };
        if args.allow_open_loopback && !args.listen.ip().is_loopback() {
            return Err(ConfigError::OpenNotLoopback {
                listen: args.listen,
            });
        }
        let read_token = match &args.read_token_file {
            Some(p) => Some(api::Token::new(&read_token_file(p)?)),
            None => None,
        };
        if args.body_limit < 1024 {
            return Err(ConfigError::BodyLimit(args.body_limit));
        }
        if args.stale_after.is_zero() {
            return Err(ConfigError::StaleAfter);
        }
        for (flag, v) in [
            ("--max-nodes", args.max_nodes),
            ("--max-registries", args.max_registries),
            (
                "--max-registries-per-report",
                args.max_registries_per_report,
            ),
        ] {
            if v == 0 {
                return Err(ConfigError::Bound { flag });
            }
        }
        let db = match args.db.to_str() {
            Some(url) if store::postgres::is_url(url) => store::DbTarget::Postgres(
                store::postgres::Target::parse(
                    url,
                    args.db_password_file.as_deref(),
                    args.db_ca_file.as_deref(),
                    std::env::var("PGPASSWORD").ok(),
                )
                .map(Box::new)
                .map_err(ConfigError::Db)?,
            ),
            _ => {
                if args.db_password_file.is_some() {
                    return Err(ConfigError::Db(
                        "--db-password-file is for a PostgreSQL --db (postgres://...); a SQLite --db has no password".into(),
                    ));
                }
                if args.db_ca_file.is_some() {
                    return Err(ConfigError::Db(
                        "--db-ca-file is for a PostgreSQL --db (postgres://...); a SQLite --db is a local file, no TLS".into(),
                    ));
                }
                store::DbTarget::Sqlite(args.db.clone())
            }
        };
        if args.forget_after <= args.stale_after {
            return Err(ConfigError::ForgetAfter {
                forget_after: args.forget_after,
                stale_after: args.stale_after,
            });
        }
        Ok(Config {
            db,
            write_token,
            read_token,
            stale_after: args.stale_after,
            retention: args.retention,
            forget_after: args.forget_after,
            body_limit: args.body_limit,
            bounds: Bounds {
                limits: store::Limits {
                    max_nodes: args.max_nodes,
                    max_registries: args.max_registries,
                },
                max_registries_per_report: args.max_registries_per_report,
                max_clock_skew: args.max_clock_skew,
                metrics_per_node: args.metrics_per_node,
            },
        })
    }
}

/// Run the aggregator on `listener` until `shutdown` resolves; then finish in-flight
/// requests, stop the database thread and close the database.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let (store, closer) = store::Store::open(
        &config.db,
        store::Options {
            retention: config.retention,
            limits: config.bounds.limits,
            writers: store::DEFAULT_PG_WRITERS,
        },
    )
    .await?;
    // Logged only once the store is open: "listening" means reports can be stored.
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    if config.write_token.is_none() {
        tracing::warn!(addr = %addr, "no --token-file: anyone on this machine can post reports (--allow-open-loopback)");
    }
    tracing::info!(
        addr = %addr,
        db = %config.db.describe(),
        read_token = config.read_token.is_some(),
        stale_after_secs = config.stale_after.as_secs(),
        forget_after_secs = config.forget_after.as_secs(),
        "aggregator listening"
    );
    let forgetter = tokio::spawn(forget_silent(store.clone(), config.forget_after));
    let state = Arc::new(api::AppState {
        store,
        write_token: config.write_token,
        read_token: config.read_token,
        stale_after: config.stale_after,
        body_limit: config.body_limit,
        refresh_secs: PAGE_REFRESH_SECS,
        counters: fleet::Counters::default(),
        bounds: config.bounds,
        facts: facts::FactsCache::default(),
    });
    // The pages and the pre-flight need every node's facts; after a start they would be
    // read back from the store by the first such request (seconds at 5,000 nodes): read
    // them now instead, in the background.
    tokio::spawn(facts::warm(state.clone()));
    let app = api::router(state);
    // Bounded connections and header timeouts: idle or slow clients cannot lock agents out
    // (crate::listen).
    let served = crate::listen::serve(
        "aggregator",
        listener,
        app,
        crate::listen::Limits::AGGREGATOR,
        shutdown,
    )
    .await;
    // The router (and every Store handle in it) is gone: the thread drains and exits.
    forgetter.abort();
    let _ = forgetter.await;
    closer.finish().await;
    served?;
    Ok(())
}

/// `--forget-after`: every so often (a quarter of it, between 1 s and a minute), forget
/// the nodes silent for longer, through the same delete as `DELETE /api/v1/nodes/NODE`.
async fn forget_silent(store: store::Store, forget_after: Duration) {
    let every = (forget_after / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
    let after_ms = i64::try_from(forget_after.as_millis()).unwrap_or(i64::MAX);
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let Ok(rows) = store.fleet().await else {
            continue;
        };
        let cutoff = fleet::now_ms().saturating_sub(after_ms);
        for row in rows.iter().filter(|r| r.received_ms < cutoff) {
            if let Ok(true) = store.delete(row.node.clone()).await {
                tracing::info!(node = %row.node, forget_after_secs = forget_after.as_secs(), "silent node forgotten (--forget-after)");
            }
        }
    }
}

/// `regtrust aggregator`: returns the process exit code (0 clean stop, 1 the server failed,
/// 2 configuration error).
pub fn run_cli(args: &AggregatorArgs) -> u8 {
    let config = match Config::from_args(args) {
        Ok(c) => c,
        Err(e) => {
            crate::cli::print_error("aggregator", &e);
            return 2;
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            crate::cli::print_error("aggregator", &format!("starting the runtime: {e}"));
            return 1;
        }
    };
    rt.block_on(async {
        let listener = match tokio::net::TcpListener::bind(args.listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("regtrust aggregator: listening on {}: {e}", args.listen);
                return 2;
            }
        };
        match serve(listener, config, shutdown_signal()).await {
            Ok(()) => {
                tracing::info!("aggregator stopped");
                0
            }
            Err(e @ ServeError::Store(_)) => {
                crate::cli::print_error("aggregator", &e);
                2
            }
            Err(e) => {
                crate::cli::print_error("aggregator", &e);
                1
            }
        }
    })
}

/// SIGTERM (Kubernetes) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received");
}

/// `1048576`, `512KiB`, `1MiB`, `2MB` (decimal), `1GiB`.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(format!(
            "{s:?}: expected a size such as 1MiB, 512KiB or 1048576"
        ));
    }
    let n: u64 = t[..digits]
        .parse()
        .map_err(|_| format!("{s:?}: number too large"))?;
    let mult: u64 = match t[digits..].trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" | "kB" => 1000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        u => {
            return Err(format!(
                "{s:?}: unknown unit {u:?} (B, KiB, MiB, GiB, KB, MB, GB)"
            ))
        }
    };
    n.checked_mul(mult)
        .and_then(|v| usize::try_from(v).ok())
        .ok_or_else(|| format!("{s:?}: too large"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn sizes() {
        for (input, want) in [
            ("1MiB", Some(1 << 20)),
            ("512KiB", Some(512 << 10)),
            ("1048576", Some(1 << 20)),
            ("2MB", Some(2_000_000)),
            ("1 MiB", Some(1 << 20)),
            ("", None),
            ("MiB", None),
            ("1TiB", None),
            ("-1", None),
            ("99999999999999999999", None),
            ("18446744073709551615GiB", None),
        ] {
            assert_eq!(parse_size(input).ok(), want, "{input:?}");
        }
    }

    #[test]
    fn token_files() {
        let dir = tempfile::tempdir().unwrap();
        let cases: Vec<(&str, Vec<u8>, Result<&str, &str>)> = vec![
            ("nl", b"s3cret\n".to_vec(), Ok("s3cret")),
            ("crlf", b"s3cret\r\n".to_vec(), Ok("s3cret")),
            ("bare", b"s3cret".to_vec(), Ok("s3cret")),
            ("empty", b"".to_vec(), Err("empty")),
            ("only-nl", b"\n".to_vec(), Err("empty")),
            ("two-nl", b"s3cret\n\n".to_vec(), Err("more than one line")),
            ("two-lines", b"a\nb\n".to_vec(), Err("more than one line")),
            ("space", b"s3 cret\n".to_vec(), Err("printable ASCII")),
            ("binary", vec![0xff, 0xfe, 0x00], Err("not UTF-8")),
            ("nul", b"a\0b".to_vec(), Err("printable ASCII")),
            ("huge", vec![b'a'; 10_000], Err("larger than")),
            (
                "private-key",
                b"-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n".to_vec(),
                Err("more than one line"),
            ),
        ];
        for (name, content, want) in cases {
            let p = dir.path().join(name);
            std::fs::write(&p, &content).unwrap();
            match (read_token_file(&p), want) {
                (Ok(t), Ok(w)) => assert_eq!(t, w, "{name}"),
                (Err(e), Err(part)) => {
                    let msg = e.to_string();
                    let path = p.display().to_string();
                    assert!(msg.contains(part), "{name}: {msg}");
                    assert!(msg.contains(&path), "{name}: {msg}");
                    // Judged without the path, whose random temp-dir name may hold "s3".
                    let rest = msg.replace(&path, "");
                    assert!(
                        !rest.contains("MIIB") && !rest.contains("s3"),
                        "{name} leaks: {msg}"
                    );
                }
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
        // A FIFO where the token file should be is refused at once, never waited on.
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let err = read_token_file(&fifo).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        let missing = dir.path().join("missing");
        assert!(read_token_file(&missing)
            .unwrap_err()
            .to_string()
            .contains("missing"));
        let traversal = dir.path().join("../../etc/../nonexistent-token");
        assert!(read_token_file(&traversal).is_err());
    }

    fn args(extra: &[&str]) -> AggregatorArgs {
        let mut argv = vec!["regtrust", "aggregator", "--db", "x.db"];
        argv.extend_from_slice(extra);
        match crate::cli::Cli::try_parse_from(argv).unwrap().command {
            crate::cli::Command::Aggregator(a) => a,
            _ => unreachable!(),
        }
    }

    #[test]
    fn writes_need_a_token_unless_open_loopback_is_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let tok = dir.path().join("tok");
        std::fs::write(&tok, "t\n").unwrap();
        let tok = tok.to_str().unwrap();
        let cases: Vec<(Vec<&str>, Result<bool, &str>)> = vec![
            (vec![], Err("no --token-file")),
            (vec!["--listen", "127.0.0.1:0"], Err("no --token-file")),
            (
                vec!["--listen", "127.0.0.1:0", "--allow-open-loopback"],
                Ok(false),
            ),
            (
                vec!["--listen", "[::1]:0", "--allow-open-loopback"],
                Ok(false),
            ),
            (
                vec!["--listen", "0.0.0.0:0", "--allow-open-loopback"],
                Err("needs a loopback"),
            ),
            (
                vec!["--listen", "10.1.2.3:0", "--allow-open-loopback"],
                Err("needs a loopback"),
            ),
            (vec!["--token-file", tok], Ok(true)),
            (
                vec!["--token-file", tok, "--body-limit", "10"],
                Err("at least 1 KiB"),
            ),
        ];
        // A zero --stale-after is refused by the flag's own parser.
        let zero = [
            "regtrust",
            "aggregator",
            "--db",
            "x.db",
            "--stale-after",
            "0s",
        ];
        assert!(crate::cli::Cli::try_parse_from(zero).is_err());
        for (extra, want) in cases {
            match (Config::from_args(&args(&extra)), want) {
                (Ok(c), Ok(has_token)) => {
                    assert_eq!(c.write_token.is_some(), has_token, "{extra:?}")
                }
                (Err(e), Err(part)) => assert!(e.to_string().contains(part), "{extra:?}: {e}"),
                (got, want) => panic!("{extra:?}: got {got:?}, want {want:?}"),
            }
        }
        let c = Config::from_args(&args(&["--token-file", tok])).unwrap();
        assert_eq!(c.stale_after, Duration::from_secs(180));
        assert_eq!(c.retention, Duration::from_secs(7 * 86400));
        assert_eq!(c.body_limit, 1 << 20);
    }
}
