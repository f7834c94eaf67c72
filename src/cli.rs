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
    /// reports, serve /healthz, /readyz, /metrics and /report.
    Agent(AgentArgs),
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
    /// The Go release a runtime's verdict follows, `RUNTIME=X.Y` (e.g. `containerd=1.22`),
    /// over what its binary's build info says; repeatable.
    #[arg(
        long = "go-version",
        env = "REGTRUST_GO_VERSION",
        value_delimiter = ','
    )]
    pub go_version: Vec<String>,
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
    pub inputs: InputArgs,
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
    #[arg(long, env = "REGTRUST_STALE_AFTER", default_value = "3m", value_parser = parse_duration)]
    pub stale_after: std::time::Duration,
    /// Verdict transitions older than this, and nodes silent for longer, are forgotten.
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

/// A duration as a sum of whole numbers with units, Go style plus days: `500ms`, `60s`,
/// `10m`, `1h30m`, `7d`. Zero is refused (an interval of zero would spin), and so is
/// anything over `max`. The one parser behind every duration flag.
fn parse_bounded(value: &str, max: Duration, max_words: &str) -> Result<Duration, String> {
    let expected =
        "expected a whole number with a unit (ms, s, m, h, d), e.g. 500ms, 60s, 10m, 1h30m, 7d";
    let s = value.trim();
    if s.is_empty() {
        return Err(format!("empty duration; {expected}"));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("{value:?}: {expected}"));
        }
        let (number, tail) = rest.split_at(digits);
        let unit_len = tail.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, tail) = tail.split_at(unit_len);
        let per_unit = match unit {
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(HOUR),
            "d" => Duration::from_secs(DAY),
            "" => return Err(format!("{value:?}: missing unit; {expected}")),
            other => return Err(format!("{value:?}: unknown unit {other:?}; {expected}")),
        };
        let n: u32 = number
            .parse()
            .map_err(|_| format!("{value:?}: number too large; at most {max_words}"))?;
        total = per_unit
            .checked_mul(n)
            .and_then(|d| total.checked_add(d))
            .filter(|d| *d <= max)
            .ok_or_else(|| format!("{value:?}: longer than {max_words}"))?;
        rest = tail;
    }
    if total.is_zero() {
        return Err(format!("{value:?}: must be longer than zero"));
    }
    Ok(total)
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
            ("1.5s", "missing unit"),
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
