//! Command-line surface (SPEC, Subcommands): every flag also reads `REGTRUST_<FLAG>`.
//! Only parsing lives here; each subcommand's work lives in its own module.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

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
    /// The DaemonSet process: sync, watch the inputs and owned trust files, probe, push
    /// reports, serve /healthz, /readyz, /metrics and /report. Its inputs are the node's
    /// whole desired state: it prunes what it installed once no input names it (a hand-run
    /// `sync` does that only with --prune). `--uninstall` removes everything it owns.
    Agent(AgentArgs),
}

/// The inputs and outputs shared by `sync`, `probe` and `agent` (SPEC, Inputs and Outputs).
#[derive(Debug, Clone, Args)]
pub struct InputArgs {
    /// A pull secret: a dockerconfigjson / config.json / legacy dockercfg file, a Secret
    /// object as `kubectl get secret X -o json` prints it, or a mounted Secret directory.
    /// Repeatable, and takes a comma-separated list (so does REGTRUST_PULL_SECRET).
    #[arg(
        long = "pull-secret",
        env = "REGTRUST_PULL_SECRET",
        value_delimiter = ','
    )]
    pub pull_secret: Vec<PathBuf>,
    /// `[HOST=]PATH`: a PEM bundle, or a directory holding `ca.crt`. With `HOST=` (a bare
    /// host[:port], or its https:// URL) it applies to that host and manages it; without,
    /// to every managed host with no host-specific CA. Repeatable, and takes a
    /// comma-separated list (so does REGTRUST_CA).
    #[arg(long = "ca", env = "REGTRUST_CA", value_delimiter = ',')]
    pub ca: Vec<String>,
    /// Manage (and probe) a host that no pull secret names. Repeatable, and takes a
    /// comma-separated list (so does REGTRUST_REGISTRY).
    #[arg(long = "registry", env = "REGTRUST_REGISTRY", value_delimiter = ',')]
    pub registry: Vec<String>,
    /// Where the node's filesystem is mounted (`/host` in the DaemonSet).
    #[arg(long, env = "REGTRUST_HOST_ROOT", default_value = "/")]
    pub host_root: PathBuf,
    /// Where the ownership ledger lives (default `<host-root>/var/lib/regtrust`).
    #[arg(long, env = "REGTRUST_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// `auto` (each runtime whose etc dir exists under the host root) or a comma-separated
    /// list of `docker`, `containerd`, `crio` (given once; not repeatable).
    #[arg(long, env = "REGTRUST_RUNTIME", default_value = "auto")]
    pub runtime: String,
    /// Take over foreign trust files whose certificates differ (otherwise a conflict).
    #[arg(long, env = "REGTRUST_REPLACE_FOREIGN")]
    pub replace_foreign: bool,
    /// The node name written into reports (default `$NODE_NAME`, then the hostname).
    #[arg(long, env = "REGTRUST_NODE_NAME")]
    pub node_name: Option<String>,
    /// The Go release a runtime's verdict follows, `RUNTIME=X.Y` (e.g. `containerd=1.22`),
    /// over what its binary's build info says; repeatable.
    #[arg(
        long = "go-version",
        env = "REGTRUST_GO_VERSION",
        value_delimiter = ','
    )]
    pub go_version: Vec<String>,
}

/// The inputs `probe` reads: those of sync less what only a writer uses (`--state-dir`,
/// `--replace-foreign`), so `probe --help` lists only what probe uses.
#[derive(Debug, Clone, Args)]
pub struct ProbeInputArgs {
    /// A pull secret (as for sync): its hosts are probed and its credentials sent.
    /// Repeatable, and takes a comma-separated list (so does REGTRUST_PULL_SECRET).
    #[arg(
        long = "pull-secret",
        env = "REGTRUST_PULL_SECRET",
        value_delimiter = ','
    )]
    pub pull_secret: Vec<PathBuf>,
    /// `[HOST=]PATH`: the CA regtrust would install, so fixes can say whether it verifies.
    /// Repeatable, and takes a comma-separated list (so does REGTRUST_CA).
    #[arg(long = "ca", env = "REGTRUST_CA", value_delimiter = ',')]
    pub ca: Vec<String>,
    /// Probe a host that no pull secret names. Repeatable, and takes a comma-separated
    /// list (so does REGTRUST_REGISTRY).
    #[arg(long = "registry", env = "REGTRUST_REGISTRY", value_delimiter = ',')]
    pub registry: Vec<String>,
    /// Where the node's filesystem is mounted; the runtimes' trust dirs are read there.
    #[arg(long, env = "REGTRUST_HOST_ROOT", default_value = "/")]
    pub host_root: PathBuf,
    /// `auto` or a comma-separated list of `docker`, `containerd`, `crio`.
    #[arg(long, env = "REGTRUST_RUNTIME", default_value = "auto")]
    pub runtime: String,
    /// The node name written into the report.
    #[arg(long, env = "REGTRUST_NODE_NAME")]
    pub node_name: Option<String>,
    /// The Go release a runtime's verdict follows, `RUNTIME=X.Y` (e.g. `containerd=1.22`),
    /// over what its binary's build info says. Repeatable, and takes a comma-separated list.
    #[arg(
        long = "go-version",
        env = "REGTRUST_GO_VERSION",
        value_delimiter = ','
    )]
    pub go_version: Vec<String>,
}

impl ProbeInputArgs {
    pub fn to_input_args(&self) -> InputArgs {
        InputArgs {
            pull_secret: self.pull_secret.clone(),
            ca: self.ca.clone(),
            registry: self.registry.clone(),
            host_root: self.host_root.clone(),
            state_dir: None,
            runtime: self.runtime.clone(),
            replace_foreign: false,
            node_name: self.node_name.clone(),
            go_version: self.go_version.clone(),
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct SyncArgs {
    #[command(flatten)]
    pub inputs: InputArgs,
    /// Also remove the files regtrust owns that this pass does not name (other registries,
    /// runtimes not selected): the inputs become the node's whole desired state, as the
    /// agent treats them. Without it, sync only adds and updates.
    #[arg(long, env = "REGTRUST_PRUNE")]
    pub prune: bool,
    /// Print the plan (what would be written, kept, removed) and change nothing; exit 1
    /// when the node differs from the plan.
    #[arg(long, env = "REGTRUST_DRY_RUN")]
    pub dry_run: bool,
    #[arg(long, env = "REGTRUST_OUTPUT", value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// How long to wait while another pass (the agent, another sync) holds the state dir's
    /// lock; then exit 2, having written nothing.
    #[arg(long, env = "REGTRUST_LOCK_WAIT", default_value = "30s", value_parser = parse_timeout)]
    pub lock_wait: std::time::Duration,
}

#[derive(Debug, Clone, Args)]
pub struct ProbeArgs {
    /// Registries to probe (`host[:port]`); default: every host the inputs name.
    #[arg(value_name = "HOST")]
    pub hosts: Vec<String>,
    #[command(flatten)]
    pub inputs: ProbeInputArgs,
    #[arg(long, env = "REGTRUST_OUTPUT", value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// How long each registry may take (`10s`, `1500ms`, `1m`); registries are probed
    /// concurrently.
    #[arg(long, env = "REGTRUST_TIMEOUT", default_value = "10s", value_parser = parse_timeout)]
    pub timeout: std::time::Duration,
    /// Offline: judge this server chain (PEM) as if the HOST served it, with this node's
    /// trust view; nothing is dialed.
    #[arg(long, value_name = "CHAIN.pem")]
    pub chain: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct AggregatorArgs {
    /// Address to listen on, `IP:PORT`.
    #[arg(long, env = "REGTRUST_LISTEN", default_value = "0.0.0.0:9811")]
    pub listen: std::net::SocketAddr,
    /// Where the fleet is kept: a SQLite database file (created when missing; one
    /// aggregator per file), or a `postgres://USER@HOST:PORT/DATABASE` URL (also
    /// `postgresql://`) for several replicas on one PostgreSQL database.
    #[arg(long, env = "REGTRUST_DB")]
    pub db: PathBuf,
    /// File holding the PostgreSQL password (one line), when the --db URL has none;
    /// without it, `PGPASSWORD` is used. Never logged.
    #[arg(long, env = "REGTRUST_DB_PASSWORD_FILE")]
    pub db_password_file: Option<PathBuf>,
    /// PEM CA bundle that signs the PostgreSQL server's certificate, for the --db URL's
    /// sslmode=verify-full or verify-ca (default: the system bundle); with require or
    /// prefer it makes the chain verified too, as libpq does with a root certificate.
    #[arg(long, env = "REGTRUST_DB_CA_FILE")]
    pub db_ca_file: Option<PathBuf>,
    /// Nodes the fleet holds at most; a new node past it is refused (422).
    #[arg(long, env = "REGTRUST_MAX_NODES", default_value_t = 10_000)]
    pub max_nodes: usize,
    /// Distinct registries across the fleet at most; a report adding more is refused (422).
    #[arg(long, env = "REGTRUST_MAX_REGISTRIES", default_value_t = 1_000)]
    pub max_registries: usize,
    /// Registries in one report at most (more: 400).
    #[arg(
        long,
        env = "REGTRUST_MAX_REGISTRIES_PER_REPORT",
        default_value_t = 256
    )]
    pub max_registries_per_report: usize,
    /// A report generated further than this in the future (by the aggregator's clock) is
    /// refused (400): a node clock that far ahead would pin its report as newest.
    #[arg(long, env = "REGTRUST_MAX_CLOCK_SKEW", default_value = "5m", value_parser = parse_duration)]
    pub max_clock_skew: std::time::Duration,
    /// Also export one series per (node, registry) on /metrics (up to
    /// --max-nodes x --max-registries-per-report series); by default only counts per
    /// (registry, verdict).
    #[arg(long, env = "REGTRUST_METRICS_PER_NODE")]
    pub metrics_per_node: bool,
    /// File holding the bearer token agents must present to post reports (its trailing
    /// newline is not part of the token). Required unless --allow-open-loopback.
    #[arg(long, env = "REGTRUST_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// File holding the token readers must present (API, page, metrics); reads are open
    /// without it.
    #[arg(long, env = "REGTRUST_READ_TOKEN_FILE")]
    pub read_token_file: Option<PathBuf>,
    /// A node silent for longer than this is `stale` (e.g. 90s, 3m, 1h).
    #[arg(long, env = "REGTRUST_STALE_AFTER", default_value = "3m", value_parser = parse_duration)]
    pub stale_after: std::time::Duration,
    /// A node silent for longer than this is forgotten (gone from the view and /metrics;
    /// it reappears with its next report). Must exceed --stale-after.
    #[arg(long, env = "REGTRUST_FORGET_AFTER", default_value = "24h", value_parser = parse_duration)]
    pub forget_after: std::time::Duration,
    /// Verdict transitions older than this are dropped (and nodes silent for longer, if
    /// --forget-after is longer).
    #[arg(long, env = "REGTRUST_RETENTION", default_value = "7d", value_parser = parse_duration)]
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
    /// The aggregator's base URL, e.g. http://regtrust-aggregator.regtrust-system:9811
    /// (https:// verifies with --ca-file, else the system bundle).
    #[arg(long, env = "REGTRUST_URL")]
    pub url: String,
    /// File holding the aggregator's read token (--read-token-file there); with --forget,
    /// the agents' write token (--token-file there).
    #[arg(long, env = "REGTRUST_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Remove NODE from the fleet view now (`DELETE /api/v1/nodes/NODE`, write token): for a
    /// node that is gone for good; one that still runs reappears with its next report.
    #[arg(long, value_name = "NODE")]
    pub forget: Option<String>,
    /// PEM CA bundle to verify an https aggregator (default: the system bundle).
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
    #[arg(long, env = "REGTRUST_TIMEOUT", default_value = "10s", value_parser = parse_timeout)]
    pub timeout: std::time::Duration,
    /// An image reference (`nginx`, `harbor.local:8443/team/app:1`): each node's verdict
    /// for its registry, as the runtimes normalise it; exit 1 when any node cannot pull it.
    #[arg(long, value_name = "REF", conflicts_with_all = ["registry", "failing", "preflight"])]
    pub image: Option<String>,
    /// A server chain (PEM) the --registry would present: each node's and runtime's verdict
    /// on it before the switch; exit 1 when any node would fail.
    #[arg(
        long,
        value_name = "CHAIN.pem",
        requires = "registry",
        conflicts_with = "failing"
    )]
    pub preflight: Option<PathBuf>,
}

/// Write a command's output to stdout. A reader that goes away early (`regtrust probe |
/// head`) is not an error worth a panic: the rest is simply not written.
pub fn emit(text: &str) {
    use std::io::Write;
    let safe = terminal_safe(text);
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(safe.as_bytes()).and_then(|()| out.flush());
}

/// Last line of defence for a terminal (report text is made printable where it enters;
/// this catches what was missed): no control character but line ends and tabs, and no
/// bidi control or invisible format character (`crate::report::needs_escape`). Those are
/// written `\u202e` (UTF-16 units), which reads in a table and keeps a JSON document valid
/// (serde_json already escapes control characters, not these).
pub fn terminal_safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\t' => out.push(c),
            c if c.is_control() => out.extend(c.escape_default()),
            c if crate::report::needs_escape(c) => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Print `regtrust CMD: ERROR` to stderr with outside text in it made harmless: userinfo
/// redacted, every control and format character escaped (an error's text can quote what a
/// server or a file said: serde's `unknown variant` quotes it raw).
pub fn print_error(cmd: &str, e: &dyn std::fmt::Display) {
    let text = crate::report::redact_userinfo(&e.to_string());
    eprintln!("regtrust {cmd}: {}", crate::report::printable(&text));
}

#[derive(Debug, Clone, Args)]
pub struct AgentArgs {
    #[command(flatten)]
    pub inputs: InputArgs,
    /// How often every registry is probed (jittered), besides after every change.
    #[arg(long, env = "REGTRUST_PROBE_INTERVAL", default_value = "60s", value_parser = parse_interval)]
    pub probe_interval: Duration,
    /// How often the inputs are re-read and the trust files re-checked even without an
    /// event (a safety net for lost watch events).
    #[arg(long, env = "REGTRUST_RESYNC_INTERVAL", default_value = "10m", value_parser = parse_interval)]
    pub resync_interval: Duration,
    /// Where to POST each report (the aggregator's `/api/v1/reports`); none: no pushes.
    #[arg(long, env = "REGTRUST_REPORT_URL")]
    pub report_url: Option<String>,
    /// The bearer token for --report-url, re-read before every push (rotation works); its
    /// trailing newline is not part of the token.
    #[arg(long, env = "REGTRUST_REPORT_TOKEN_FILE")]
    pub report_token_file: Option<PathBuf>,
    /// PEM CA bundle that signs an https --report-url (default: the system bundle).
    #[arg(long, env = "REGTRUST_REPORT_CA_FILE")]
    pub report_ca_file: Option<PathBuf>,
    /// Address for /healthz, /readyz, /metrics and /report.
    #[arg(long, env = "REGTRUST_LISTEN", default_value = "0.0.0.0:9810")]
    pub listen: SocketAddr,
    /// Instead of running: remove every file regtrust owns on this node (the ledger's), the
    /// host dirs it created once empty and its state dir, then idle until stopped (the
    /// Helm pre-delete hook). Edited files are left in place and said so.
    #[arg(long, env = "REGTRUST_UNINSTALL")]
    pub uninstall: bool,
    /// With --uninstall: exit after the pass instead of idling (0 clean, 1 something stayed).
    #[arg(long, requires = "uninstall")]
    pub exit: bool,
}

const HOUR: u64 = 3600;
const DAY: u64 = 24 * HOUR;

/// An interval (`--probe-interval`, `--resync-interval`): at most a week; anything longer
/// is a typo, not a schedule.
pub fn parse_interval(value: &str) -> Result<Duration, String> {
    parse_bounded(value, Duration::from_secs(7 * DAY), "a week")
}

/// A per-request limit (`--timeout`): at most an hour.
pub fn parse_timeout(value: &str) -> Result<Duration, String> {
    parse_bounded(value, Duration::from_secs(HOUR), "an hour")
}

/// A retention or staleness window (`--stale-after`, `--retention`): at most a year.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    parse_bounded(value, Duration::from_secs(366 * DAY), "a year")
}

/// A duration as Go's `time.ParseDuration` reads it, plus days: a sum of numbers (a
/// fraction allowed) with units, `500ms`, `90s`, `1m30s`, `1.5m`, `1h30m`, `7d`. Zero is
/// refused (an interval of zero would spin), and so is anything over `max`. The one parser
/// behind every duration flag.
fn parse_bounded(value: &str, max: Duration, max_words: &str) -> Result<Duration, String> {
    let expected =
        "expected a number with a unit (ms, s, m, h, d), e.g. 500ms, 90s, 1m30s, 1.5m, 1h30m, 7d";
    let s = value.trim();
    if s.is_empty() {
        return Err(format!("empty duration; {expected}"));
    }
    let max_ns = max.as_nanos();
    let mut total: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int, tail) = rest.split_at(int_len);
        let (frac, tail) = match tail.strip_prefix('.') {
            Some(t) => {
                let n = t.bytes().take_while(u8::is_ascii_digit).count();
                t.split_at(n)
            }
            None => ("", tail),
        };
        if int.is_empty() && frac.is_empty() {
            return Err(format!("{value:?}: {expected}"));
        }
        let unit_len = tail.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, tail) = tail.split_at(unit_len);
        let per_unit: u128 = match unit {
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => u128::from(HOUR) * 1_000_000_000,
            "d" => u128::from(DAY) * 1_000_000_000,
            "" => return Err(format!("{value:?}: missing unit; {expected}")),
            other => return Err(format!("{value:?}: unknown unit {other:?}; {expected}")),
        };
        let too_long = || format!("{value:?}: longer than {max_words}");
        // More digits than any bound needs: refused before any arithmetic.
        if int.len() > 20 {
            return Err(format!("{value:?}: number too large; at most {max_words}"));
        }
        let whole: u128 = if int.is_empty() {
            0
        } else {
            int.parse::<u32>()
                .map_err(|_| format!("{value:?}: number too large; at most {max_words}"))?
                .into()
        };
        // The fraction to nanosecond precision; further digits cannot change the result.
        let frac = &frac[..frac.len().min(18)];
        let part = if frac.is_empty() {
            0
        } else {
            let f: u128 = frac.parse().map_err(|_| format!("{value:?}: {expected}"))?;
            per_unit * f / 10u128.pow(frac.len() as u32)
        };
        total = whole
            .checked_mul(per_unit)
            .and_then(|w| w.checked_add(part))
            .and_then(|d| total.checked_add(d))
            .filter(|d| *d <= max_ns)
            .ok_or_else(too_long)?;
        rest = tail;
    }
    if total == 0 {
        return Err(format!("{value:?}: must be longer than zero"));
    }
    let secs = u64::try_from(total / 1_000_000_000)
        .map_err(|_| format!("{value:?}: longer than {max_words}"))?;
    Ok(Duration::new(secs, (total % 1_000_000_000) as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_safe_keeps_json_valid_and_hides_nothing() {
        let doc =
            serde_json::json!({ "node": "evil\u{202e}gpj\u{200b}.exe\u{e0041}", "m": "\u{1b}[2J" });
        let text = serde_json::to_string_pretty(&doc).unwrap();
        let safe = terminal_safe(&text);
        assert!(!safe
            .chars()
            .any(|c| c != '\n' && crate::report::needs_escape(c)));
        assert!(
            safe.contains("evil\\u202egpj\\u200b.exe\\udb40\\udc41"),
            "{safe}"
        );
        let back: serde_json::Value = serde_json::from_str(&safe).expect("still JSON");
        assert_eq!(back, doc);
        assert_eq!(terminal_safe("a\tb\nc\u{7}"), "a\tb\nc\\u{7}");
    }

    #[test]
    fn durations() {
        let ok = [
            ("60s", Duration::from_secs(60)),
            ("10m", Duration::from_secs(600)),
            ("500ms", Duration::from_millis(500)),
            ("1h30m", Duration::from_secs(5400)),
            ("1m30s250ms", Duration::from_millis(90_250)),
            (" 5s ", Duration::from_secs(5)),
            ("168h", Duration::from_secs(7 * DAY)),
            ("7d", Duration::from_secs(7 * DAY)),
            // What operators type (issue 15): Go's forms, fractions included.
            ("90s", Duration::from_secs(90)),
            ("1m30s", Duration::from_secs(90)),
            ("1.5m", Duration::from_secs(90)),
            ("1.5h", Duration::from_secs(5400)),
            (".5s", Duration::from_millis(500)),
            ("2.25s", Duration::from_millis(2250)),
            ("0.1ms", Duration::from_nanos(100_000)),
        ];
        for (v, d) in ok {
            assert_eq!(parse_interval(v), Ok(d), "{v}");
        }
        let bad = [
            ("", "empty"),
            ("60", "missing unit"),
            ("0s", "longer than zero"),
            ("0ms0s", "longer than zero"),
            ("-5s", "expected"),
            ("1.5", "missing unit"),
            (".s", "expected"),
            ("1..5m", "expected"),
            ("5 s", "missing unit"),
            ("5sec", "unknown unit"),
            ("5y", "unknown unit"),
            ("s", "expected"),
            ("169h", "longer than a week"),
            ("99999999999999999999s", "too large"),
            ("4294967295h", "longer than a week"),
            ("10m/../etc", "expected"),
            ("1s\0", "expected"),
        ];
        for (v, why) in bad {
            let err = parse_interval(v).unwrap_err();
            assert!(err.contains(why), "{v:?}: {err}");
        }
        let huge = "9".repeat(100_000) + "s";
        assert!(parse_interval(&huge).is_err());
        // The same parser, other bounds.
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * DAY)));
        assert_eq!(parse_duration("90d"), Ok(Duration::from_secs(90 * DAY)));
        assert!(parse_duration("367d").unwrap_err().contains("a year"));
        assert_eq!(parse_timeout("1500ms"), Ok(Duration::from_millis(1500)));
        assert!(parse_timeout("2h").unwrap_err().contains("an hour"));
        for bad in ["3m garbage", "1s1", "10", "-3s"] {
            assert!(
                parse_duration(bad).is_err() && parse_timeout(bad).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn agent_flags_and_defaults() {
        let cli = Cli::try_parse_from(["regtrust", "agent", "--ca", "h=/ca"]).unwrap();
        let Command::Agent(a) = cli.command else {
            panic!("not agent")
        };
        assert_eq!(a.probe_interval, Duration::from_secs(60));
        assert_eq!(a.resync_interval, Duration::from_secs(600));
        assert_eq!(a.listen, "0.0.0.0:9810".parse().unwrap());
        assert_eq!(a.report_url, None);
        assert_eq!(a.inputs.ca, ["h=/ca"]);
        let cli = Cli::try_parse_from([
            "regtrust",
            "agent",
            "--probe-interval",
            "5s",
            "--resync-interval",
            "500ms",
            "--listen",
            "127.0.0.1:0",
            "--report-url",
            "http://agg/api/v1/reports",
        ])
        .unwrap();
        let Command::Agent(a) = cli.command else {
            panic!("not agent")
        };
        assert_eq!(a.probe_interval, Duration::from_secs(5));
        assert_eq!(a.resync_interval, Duration::from_millis(500));
        for bad in [
            ["--probe-interval", "0s"],
            ["--resync-interval", "ten"],
            ["--listen", "nowhere"],
        ] {
            let args = ["regtrust", "agent", bad[0], bad[1]];
            assert!(Cli::try_parse_from(args).is_err(), "{bad:?}");
        }
    }
}
