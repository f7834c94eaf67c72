//! `regtrust report`: reads the aggregator's `GET /api/v1/nodes` (filters applied by the
//! server) and prints a kubectl-style table, or the JSON document for scripts. Exit codes:
//! 0 nothing needs attention, 1 a node fails or is stale, 2 usage, configuration or
//! connection error. It owns no fleet logic: state and filtering are the server's
//! (`fleet`), so the table and the API never disagree.

use super::fleet::{human_age, now_ms, NodesDoc};
use crate::cli::{ReportArgs, ReportOutput};
use crate::host::RegistryHost;
use std::fmt::Write as _;
use std::path::PathBuf;

/// Largest CA file read for an https aggregator.
const MAX_CA_FILE: u64 = 1 << 20;
/// Largest answer read from the aggregator.
const MAX_ANSWER: usize = 256 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("--url {url:?}: {why}")]
    Url { url: String, why: String },
    #[error("--url {url}: https needs the CA that signed the aggregator's certificate: give --ca-file (no system bundle found in {tried})")]
    HttpsNeedsCa { url: String, tried: String },
    #[error("--registry {raw:?}: {source}")]
    Registry {
        raw: String,
        source: crate::host::HostError,
    },
    #[error(transparent)]
    Token(#[from] super::ConfigError),
    #[error("--ca-file {path}: {why}")]
    Ca { path: PathBuf, why: String },
    #[error("{url}: {why}")]
    Connect { url: String, why: String },
    #[error("{url}: the aggregator refused the read token (401); pass --token-file with the token of its --read-token-file")]
    Unauthorized { url: String },
    #[error("{url}: the aggregator needs a read token (401); pass --token-file with the token of its --read-token-file")]
    NeedsToken { url: String },
    #[error("{url}: the aggregator refused the token (401); --forget needs --token-file with the agents' write token (the aggregator's --token-file)")]
    WriteRefused { url: String },
    #[error("{url}: HTTP {status}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    #[error("{url}: the answer is not a regtrust nodes document: {why}")]
    Body { url: String, why: String },
}

/// `regtrust report`; returns the exit code.
pub fn run_cli(args: &ReportArgs) -> u8 {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("regtrust report: starting the runtime: {e}");
            return 2;
        }
    };
    if let Some(node) = &args.forget {
        return match rt.block_on(forget(args, node)) {
            Ok(true) => {
                println!(
                    "forgot node {node:?}: it is gone from the fleet view until it reports again"
                );
                0
            }
            Ok(false) => {
                eprintln!(
                    "regtrust report: node {node:?} is not known to {}",
                    args.url
                );
                1
            }
            Err(e) => {
                eprintln!("regtrust report: {e}");
                2
            }
        };
    }
    let doc = match rt.block_on(fetch(args)) {
        Ok(doc) => doc,
        Err(e) => {
            eprintln!("regtrust report: {e}");
            return 2;
        }
    };
    match args.output {
        ReportOutput::Json => match serde_json::to_string_pretty(&doc) {
            Ok(s) => crate::cli::emit(&format!("{s}\n")),
            Err(e) => {
                eprintln!("regtrust report: {e}");
                return 2;
            }
        },
        ReportOutput::Table => {
            if doc.nodes.is_empty() {
                eprintln!("No nodes match.");
            } else {
                crate::cli::emit(&render_table(&doc, now_ms()));
            }
        }
    }
    if doc.nodes.is_empty() && args.node.is_some() && args.registry.is_none() && !args.failing {
        eprintln!(
            "regtrust report: node {:?} has not reported to {} (or was forgotten after its --retention)",
            args.node.as_deref().unwrap_or_default(),
            args.url
        );
        return 1;
    }
    exit_code(&doc)
}

/// 1 when any listed node fails or is stale.
pub fn exit_code(doc: &NodesDoc) -> u8 {
    u8::from(doc.nodes.iter().any(|n| n.state.needs_attention()))
}

/// `<base>/api/v1/nodes?node=&registry=&failing=true`, keeping a base path (an aggregator
/// behind a reverse proxy at `/regtrust/`).
pub fn nodes_url(args: &ReportArgs) -> Result<reqwest::Url, ClientError> {
    let bad = |why: &str| ClientError::Url {
        url: args.url.clone(),
        why: why.to_string(),
    };
    let mut url = base_url(args)?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("give the base URL only, without ?query or #fragment"));
    }
    url.path_segments_mut()
        .map_err(|_| bad("not a base URL"))?
        .pop_if_empty()
        .extend(["api", "v1", "nodes"]);
    {
        let mut q = url.query_pairs_mut();
        if let Some(n) = &args.node {
            q.append_pair("node", n);
        }
        if let Some(raw) = &args.registry {
            let host = RegistryHost::parse(raw).map_err(|source| ClientError::Registry {
                raw: raw.clone(),
                source,
            })?;
            q.append_pair("registry", host.as_str());
        }
        if args.failing {
            q.append_pair("failing", "true");
        }
    }
    if url.query() == Some("") {
        url.set_query(None);
    }
    Ok(url)
}

/// `--url` as the aggregator's base URL, or an error saying what to give instead: a URL
/// without a scheme, the agents' push endpoint, or an agent's own endpoint (issue 15).
pub fn base_url(args: &ReportArgs) -> Result<reqwest::Url, ClientError> {
    let bad = |why: &str| ClientError::Url {
        url: args.url.clone(),
        why: why.to_string(),
    };
    const GIVE: &str =
        "give the aggregator's base URL, e.g. http://regtrust-aggregator.regtrust-system:9811";
    if !args.url.contains("://") {
        return Err(bad(&format!("no scheme; {GIVE}")));
    }
    let url = reqwest::Url::parse(&args.url).map_err(|e| bad(&format!("{e}; {GIVE}")))?;
    match url.scheme() {
        "http" | "https" => {}
        s => return Err(bad(&format!("scheme {s:?}; expected http or https"))),
    }
    let path = url.path().trim_end_matches('/');
    if path.ends_with("/api/v1/reports") {
        return Err(bad(&format!(
            "that is where agents post reports (their --report-url); {GIVE} (without /api/v1/reports)"
        )));
    }
    if path.ends_with("/report") || path.ends_with("/healthz") || url.port() == Some(9810) {
        return Err(bad(&format!(
            "that looks like an agent's own endpoint (port 9810, /report); `regtrust report` reads the aggregator: {GIVE}"
        )));
    }
    Ok(url)
}

/// `regtrust report --forget NODE`: `DELETE /api/v1/nodes/NODE` with the write token.
/// 0 forgotten, 1 not known, 2 any other error.
pub async fn forget(args: &ReportArgs, node: &str) -> Result<bool, ClientError> {
    let mut url = base_url(args)?;
    url.path_segments_mut()
        .map_err(|_| ClientError::Url {
            url: args.url.clone(),
            why: "not a base URL".into(),
        })?
        .pop_if_empty()
        .extend(["api", "v1", "nodes", node]);
    let token = match &args.token_file {
        Some(p) => Some(super::read_token_file(p)?),
        None => None,
    };
    let http = client(args)?;
    let shown = url.to_string();
    let mut req = http.delete(url);
    if let Some(t) = &token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.map_err(|e| ClientError::Connect {
        url: shown.clone(),
        why: chain(&e, args.timeout),
    })?;
    match resp.status() {
        s if s.is_success() => Ok(true),
        reqwest::StatusCode::NOT_FOUND => Ok(false),
        reqwest::StatusCode::UNAUTHORIZED if token.is_some() => {
            Err(ClientError::WriteRefused { url: shown })
        }
        reqwest::StatusCode::UNAUTHORIZED => Err(ClientError::NeedsToken { url: shown }),
        s => Err(ClientError::Status {
            url: shown,
            status: s.as_u16(),
            message: "unexpected answer to DELETE".into(),
        }),
    }
}

fn client(args: &ReportArgs) -> Result<reqwest::Client, ClientError> {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(args.timeout)
        .connect_timeout(args.timeout)
        .user_agent(concat!("regtrust/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = &args.ca_file {
        let ca = |why: String| ClientError::Ca {
            path: path.clone(),
            why,
        };
        let pem = crate::ca::read_capped(path, MAX_CA_FILE).map_err(|e| match e {
            crate::ca::ReadCappedError::TooLarge { .. } => {
                ca(format!("larger than {MAX_CA_FILE} bytes"))
            }
            other => ca(other.to_string()),
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| ca(format!("not a PEM certificate bundle: {e}")))?;
        if certs.is_empty() {
            return Err(ca("no PEM certificate in it".into()));
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    } else if args.url.starts_with("https://") {
        // A public certificate: the system bundle, as the agent's push uses it.
        let (path, pem) =
            crate::agent::push::system_bundle().ok_or_else(|| ClientError::HttpsNeedsCa {
                url: args.url.clone(),
                tried: crate::agent::push::SYSTEM_BUNDLES.join(", "),
            })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ClientError::Ca {
            path: path.clone(),
            why: format!("system bundle: {e}"),
        })?;
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    b.build().map_err(|e| ClientError::Connect {
        url: args.url.clone(),
        why: format!("building the HTTP client: {e}"),
    })
}

/// What went wrong talking to the aggregator, once: the caller already names the URL, so
/// reqwest's own top line (which repeats it) is replaced by the causes below it.
fn chain(e: &reqwest::Error, timeout: std::time::Duration) -> String {
    if e.is_timeout() {
        return format!("no answer within {}s (--timeout)", timeout.as_secs_f64());
    }
    let mut parts = Vec::new();
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        parts.push(c.to_string());
        src = c.source();
    }
    if parts.is_empty() {
        e.to_string()
    } else {
        parts.join(": ")
    }
}

pub async fn fetch(args: &ReportArgs) -> Result<NodesDoc, ClientError> {
    let url = nodes_url(args)?;
    let token = match &args.token_file {
        Some(p) => Some(super::read_token_file(p)?),
        None => None,
    };
    let http = client(args)?;
    let shown = url.to_string();
    let mut req = http.get(url);
    if let Some(t) = &token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.map_err(|e| ClientError::Connect {
        url: shown.clone(),
        why: chain(&e, args.timeout),
    })?;
    let status = resp.status();
    if status == reqwest::StatusCode::UNAUTHORIZED {
        return Err(if args.token_file.is_some() {
            ClientError::Unauthorized { url: shown }
        } else {
            ClientError::NeedsToken { url: shown }
        });
    }
    let body = resp.bytes().await.map_err(|e| ClientError::Connect {
        url: shown.clone(),
        why: chain(&e, args.timeout),
    })?;
    if body.len() > MAX_ANSWER {
        return Err(ClientError::Body {
            url: shown,
            why: format!("answer of {} bytes", body.len()),
        });
    }
    if !status.is_success() {
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(String::from))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(200).collect());
        let message = if message.trim().is_empty() {
            "empty answer; is --url a regtrust aggregator?".to_string()
        } else {
            message
        };
        return Err(ClientError::Status {
            url: shown,
            status: status.as_u16(),
            message: printable(&message),
        });
    }
    serde_json::from_slice(&body).map_err(|e| ClientError::Body {
        url: shown,
        why: e.to_string(),
    })
}

/// What a report or the server wrote, made safe for a terminal: control characters (escape
/// sequences, newlines) become spaces.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// One row per (node, registry); a node that reports no registry gets one row with `-`.
pub fn render_table(doc: &NodesDoc, now_ms: i64) -> String {
    let header = [
        "NODE",
        "STATE",
        "REGISTRY",
        "VERDICT",
        "SINCE",
        "LAST-REPORT",
        "MESSAGE",
    ];
    let mut rows: Vec<[String; 7]> = Vec::new();
    for n in &doc.nodes {
        let last = human_age(n.last_report_age_seconds);
        if n.registries.is_empty() {
            rows.push([
                printable(&n.node),
                n.state.as_str().into(),
                "-".into(),
                "-".into(),
                "-".into(),
                last.clone(),
                String::new(),
            ]);
        }
        for r in &n.registries {
            let verdict = if r.cause.is_empty() {
                r.verdict.as_str().to_string()
            } else {
                format!("{} ({})", r.verdict.as_str(), printable(&r.cause))
            };
            let mut message = printable(&r.message);
            if !r.fix.is_empty() {
                if !message.is_empty() {
                    message.push_str("; ");
                }
                message.push_str("fix: ");
                message.push_str(&printable(&r.fix));
            }
            rows.push([
                printable(&n.node),
                n.state.as_str().into(),
                printable(&r.registry),
                verdict,
                human_age(super::fleet::age_of(&r.since, now_ms)),
                last.clone(),
                message,
            ]);
        }
    }
    let mut widths = header.map(|h| h.chars().count());
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: [&str; 7]| {
        let mut l = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 < cells.len() {
                let _ = write!(l, "{cell:<w$}   ", w = widths[i]);
            } else {
                l.push_str(cell);
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header);
    for r in &rows {
        line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5], &r[6]]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregator::fleet::{NodeRegistryView, NodeState, NodeView};
    use crate::report::Verdict;
    use clap::Parser;

    fn args(extra: &[&str]) -> ReportArgs {
        let mut argv = vec!["regtrust", "report"];
        argv.extend_from_slice(extra);
        match crate::cli::Cli::try_parse_from(argv).unwrap().command {
            crate::cli::Command::Report(a) => a,
            _ => unreachable!(),
        }
    }

    #[test]
    fn urls() {
        let cases: Vec<(Vec<&str>, Result<&str, &str>)> = vec![
            (vec!["--url", "http://127.0.0.1:9811"], Ok("http://127.0.0.1:9811/api/v1/nodes")),
            (vec!["--url", "http://agg/regtrust/"], Ok("http://agg/regtrust/api/v1/nodes")),
            (
                vec!["--url", "http://agg", "--failing", "--registry", "Harbor.Local:8443", "--node", "a b/<c>"],
                Ok("http://agg/api/v1/nodes?node=a+b%2F%3Cc%3E&registry=harbor.local%3A8443&failing=true"),
            ),
            // A public certificate: the system bundle, as the agent's push (issue 15).
            (vec!["--url", "https://agg"], Ok("https://agg/api/v1/nodes")),
            (vec!["--url", "https://agg", "--ca-file", "ca.pem"], Ok("https://agg/api/v1/nodes")),
            (vec!["--url", "ftp://agg"], Err("scheme \"ftp\"")),
            (vec!["--url", "agg:9811"], Err("no scheme; give the aggregator's base URL")),
            (vec!["--url", "http://agg:9811/api/v1/reports"], Err("that is where agents post reports")),
            (vec!["--url", "http://10.0.0.7:9810"], Err("an agent's own endpoint")),
            (vec!["--url", "http://node:9810/report"], Err("an agent's own endpoint")),
            (vec!["--url", "not a url"], Err("no scheme")),
            (vec!["--url", ""], Err("--url")),
            (vec!["--url", "http://agg/?x=1"], Err("base URL only")),
            (vec!["--url", "http://agg", "--registry", "../etc"], Err("not a registry host")),
        ];
        for (argv, want) in cases {
            match (nodes_url(&args(&argv)), want) {
                (Ok(u), Ok(w)) => assert_eq!(u.as_str(), w, "{argv:?}"),
                (Err(e), Err(part)) => assert!(e.to_string().contains(part), "{argv:?}: {e}"),
                (got, want) => panic!("{argv:?}: got {got:?}, want {want:?}"),
            }
        }
        assert_eq!(
            args(&["--url", "http://a", "--output", "text"]).output,
            ReportOutput::Table
        );
    }

    #[test]
    fn table_is_aligned_and_terminal_safe() {
        let doc = NodesDoc {
            generated_at: "1970-01-01T00:10:00Z".into(),
            stale_after_seconds: 180,
            nodes: vec![
                NodeView {
                    node: "node-a".into(),
                    state: NodeState::Failing,
                    worst: Verdict::UnknownAuthority,
                    stale: false,
                    last_report_at: "1970-01-01T00:09:50Z".into(),
                    last_report_age_seconds: 10,
                    generated_at: "1970-01-01T00:09:50Z".into(),
                    agent_version: "0.1.0".into(),
                    problems: 0,
                    registries: vec![NodeRegistryView {
                        registry: "harbor.local".into(),
                        verdict: Verdict::UnknownAuthority,
                        since: "1970-01-01T00:05:00Z".into(),
                        message: "x509: certificate signed by unknown authority\x1b[31m".into(),
                        cause: "ca_not_installed".into(),
                        fix: "give --ca".into(),
                    }],
                },
                NodeView {
                    node: "b".into(),
                    state: NodeState::Ok,
                    worst: Verdict::Ok,
                    stale: false,
                    last_report_at: "1970-01-01T00:09:50Z".into(),
                    last_report_age_seconds: 10,
                    generated_at: "1970-01-01T00:09:50Z".into(),
                    agent_version: "0.1.0".into(),
                    problems: 0,
                    registries: vec![],
                },
            ],
        };
        let t = render_table(&doc, 600_000);
        let want = "\
NODE     STATE     REGISTRY       VERDICT                                SINCE   LAST-REPORT   MESSAGE
node-a   failing   harbor.local   unknown_authority (ca_not_installed)   5m      10s           x509: certificate signed by unknown authority [31m; fix: give --ca
b        ok        -              -                                      -       10s
";
        assert_eq!(t, want);
        assert_eq!(exit_code(&doc), 1);
    }
}
