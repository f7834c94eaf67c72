//! Command-line surface (SPEC, Subcommands): every flag also reads `REGTRUST_<FLAG>`.
//! Only parsing lives here; each subcommand's work lives in its own module.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "regtrust",
    version,
    about = "Install private registry CAs where container runtimes read them, and say which node cannot pull from which registry and why."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log format on stderr.
    #[arg(long, global = true, env = "REGTRUST_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// One pass: read inputs, validate, install CAs into the runtimes' trust dirs, remove
    /// stale ones regtrust owns; print the result.
    Sync(SyncArgs),
    /// Diagnose: for each registry, what the container runtimes on this machine would see
    /// when pulling (TLS trust, reachability, credentials, Harbor health, expiry).
    Probe(ProbeArgs),
    /// The central service: stores the agents' reports and serves the fleet view (JSON API,
    /// HTML page at /, Prometheus metrics).
    Aggregator(AggregatorArgs),
    /// Admin CLI: read the aggregator's fleet view as a table or JSON; exit 1 when any node
    /// fails or is stale.
    Report(ReportArgs),
}

/// The inputs and outputs shared by `sync`, `probe` and `agent` (SPEC, Inputs and Outputs).
#[derive(Debug, Clone, Args)]
pub struct InputArgs {
    /// A pull secret: a dockerconfigjson / config.json / legacy dockercfg file, or a mounted
    /// Secret directory. Repeatable; in the environment, a comma-separated list.
    #[arg(
        long = "pull-secret",
        env = "REGTRUST_PULL_SECRET",
        value_delimiter = ','
    )]
    pub pull_secret: Vec<PathBuf>,
    /// `[HOST=]PATH`: a PEM bundle, or a directory holding `ca.crt`. With `HOST=` it applies to
    /// that host and manages it; without, to every managed host with no host-specific CA.
    #[arg(long = "ca", env = "REGTRUST_CA", value_delimiter = ',')]
    pub ca: Vec<String>,
    /// Manage (and probe) a host that no pull secret names. Repeatable.
    #[arg(long = "registry", env = "REGTRUST_REGISTRY", value_delimiter = ',')]
    pub registry: Vec<String>,
    /// Where the node's filesystem is mounted (`/host` in the DaemonSet).
    #[arg(long, env = "REGTRUST_HOST_ROOT", default_value = "/")]
    pub host_root: PathBuf,
    /// Where the ownership ledger lives (default `<host-root>/var/lib/regtrust`).
    #[arg(long, env = "REGTRUST_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// `auto` (each runtime whose etc dir exists under the host root) or a comma list of
    /// `docker`, `containerd`, `crio`.
    #[arg(long, env = "REGTRUST_RUNTIME", default_value = "auto")]
    pub runtime: String,
    /// Take over foreign trust files whose certificates differ (otherwise a conflict).
    #[arg(long, env = "REGTRUST_REPLACE_FOREIGN")]
    pub replace_foreign: bool,
    /// The node name written into reports (default `$NODE_NAME`, then the hostname).
    #[arg(long, env = "REGTRUST_NODE_NAME")]
    pub node_name: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct SyncArgs {
    #[command(flatten)]
    pub inputs: InputArgs,
    #[arg(long, env = "REGTRUST_OUTPUT", value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Debug, Clone, Args)]
pub struct ProbeArgs {
    /// Registries to probe (`host[:port]`); default: every host the inputs name.
    #[arg(value_name = "HOST")]
    pub hosts: Vec<String>,
    #[command(flatten)]
    pub inputs: InputArgs,
    #[arg(long, env = "REGTRUST_OUTPUT", value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// How long each registry may take (`10s`, `1500ms`, `1m`); registries are probed
    /// concurrently.
    #[arg(long, env = "REGTRUST_TIMEOUT", default_value = "10s", value_parser = crate::probe::parse_timeout)]
    pub timeout: std::time::Duration,
}

#[derive(Debug, Clone, Args)]
pub struct AggregatorArgs {
    /// Address to listen on, `IP:PORT`.
    #[arg(long, env = "REGTRUST_LISTEN", default_value = "0.0.0.0:9811")]
    pub listen: std::net::SocketAddr,
    /// SQLite database file, created when missing.
    #[arg(long, env = "REGTRUST_DB")]
    pub db: PathBuf,
    /// File holding the bearer token agents must present to post reports (its trailing
    /// newline is not part of the token). Required unless --allow-open-loopback.
    #[arg(long, env = "REGTRUST_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// File holding the token readers must present (API, page, metrics); reads are open
    /// without it.
    #[arg(long, env = "REGTRUST_READ_TOKEN_FILE")]
    pub read_token_file: Option<PathBuf>,
    /// A node silent for longer than this is `stale` (e.g. 90s, 3m, 1h).
    #[arg(long, env = "REGTRUST_STALE_AFTER", default_value = "3m", value_parser = crate::aggregator::parse_duration)]
    pub stale_after: std::time::Duration,
    /// Verdict transitions older than this, and nodes silent for longer, are forgotten.
    #[arg(long, env = "REGTRUST_RETENTION", default_value = "7d", value_parser = crate::aggregator::parse_duration)]
    pub retention: std::time::Duration,
    /// Largest report accepted (larger: 413).
    #[arg(long, env = "REGTRUST_BODY_LIMIT", default_value = "1MiB", value_parser = crate::aggregator::parse_size)]
    pub body_limit: usize,
    /// Run without --token-file; only allowed on a loopback --listen address.
    #[arg(long, env = "REGTRUST_ALLOW_OPEN_LOOPBACK")]
    pub allow_open_loopback: bool,
}

/// `regtrust report --output`: `table` for people (`text` is accepted too), `json` for scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportOutput {
    #[value(alias = "text")]
    Table,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// The aggregator's base URL (http://... or https://... with --ca-file).
    #[arg(long, env = "REGTRUST_URL")]
    pub url: String,
    /// File holding the aggregator's read token (--read-token-file there).
    #[arg(long, env = "REGTRUST_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// PEM CA bundle to verify an https aggregator (no system roots are used).
    #[arg(long, env = "REGTRUST_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Only this registry.
    #[arg(long, env = "REGTRUST_REGISTRY")]
    pub registry: Option<String>,
    /// Only this node.
    #[arg(long, env = "REGTRUST_NODE")]
    pub node: Option<String>,
    /// Only failing registries and stale nodes.
    #[arg(long, env = "REGTRUST_FAILING")]
    pub failing: bool,
    #[arg(long, env = "REGTRUST_OUTPUT", value_enum, default_value_t = ReportOutput::Table)]
    pub output: ReportOutput,
    /// Give up on the aggregator after this long.
    #[arg(long, env = "REGTRUST_TIMEOUT", default_value = "10s", value_parser = crate::aggregator::parse_duration)]
    pub timeout: std::time::Duration,
}

/// Write a command's output to stdout. A reader that goes away early (`regtrust probe |
/// head`) is not an error worth a panic: the rest is simply not written.
pub fn emit(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}
