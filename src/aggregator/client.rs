//! `regtrust report`: the admin CLI over the aggregator, through the shared client
//! (`fleetapi`). Three questions, each a table for people or the JSON document for scripts:
//! - the fleet (`GET /api/v1/nodes`, filters applied by the server): exit 1 when a node
//!   fails or is stale;
//! - `--image REF`: the registry of an image reference as the runtimes normalise it, and
//!   each node's verdict and fix for it: exit 1 when any node cannot pull it;
//! - `--preflight CHAIN.pem --registry HOST` (`POST /api/v1/preflight`): what each node and
//!   runtime would say if HOST served CHAIN: exit 1 when any would fail.
//!
//! Exit 2: usage, configuration or connection error. It owns no fleet logic: state and
//! filtering are the server's (`fleet`), so the table and the API never disagree.

use super::fleet::{human_age, now_ms, NodesDoc};
use super::preflight::{PreflightDoc, PreflightRequest};
use crate::cli::{ReportArgs, ReportOutput};
use crate::fleetapi::{self, routes, ApiClient, CallError};
use crate::host::RegistryHost;
use crate::report::{printable, Verdict};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::PathBuf;

/// Largest answer read from the aggregator (checked while it streams in).
const MAX_ANSWER: usize = 256 << 20;
/// Largest chain file read for `--preflight`.
const MAX_CHAIN_FILE: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("--url {url:?}: {why}")]
    Url { url: String, why: String },
    #[error(transparent)]
    Setup(#[from] fleetapi::SetupError),
    #[error("--registry {raw:?}: {source}")]
    Registry {
        raw: String,
        source: crate::host::HostError,
    },
    #[error("--image {raw:?}: {why}")]
    Image { raw: String, why: String },
    #[error("--preflight {}: {why}", path.display())]
    Chain { path: PathBuf, why: String },
    #[error("{url}: {why}")]
    Connect { url: String, why: String },
    #[error("{url}: the aggregator refused the read token (401); pass --token-file with the token of its --read-token-file")]
    Unauthorized { url: String },
    #[error("{url}: HTTP {status}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    #[error("{url}: the answer is not a regtrust {what} document: {why}")]
    Body {
        url: String,
        what: &'static str,
        why: String,
    },
}

/// `regtrust report`; returns the exit code.
pub fn run_cli(args: &ReportArgs) -> u8 {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            crate::cli::print_error("report", &format!("starting the runtime: {e}"));
            return 2;
        }
    };
    let result = if args.preflight.is_some() {
        rt.block_on(run_preflight(args))
    } else if args.image.is_some() {
        rt.block_on(run_image(args))
    } else {
        rt.block_on(run_fleet(args))
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            crate::cli::print_error("report", &e);
            2
        }
    }
}

fn emit_json<T: Serialize>(v: &T) -> Result<(), ClientError> {
    let s = serde_json::to_string_pretty(v).map_err(|e| ClientError::Body {
        url: String::new(),
        what: "output",
        why: e.to_string(),
    })?;
    crate::cli::emit(&format!("{s}\n"));
    Ok(())
}

async fn run_fleet(args: &ReportArgs) -> Result<u8, ClientError> {
    let doc = fetch(args).await?;
    match args.output {
        ReportOutput::Json => emit_json(&doc)?,
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
            crate::report::printable(&crate::report::redact_userinfo(&args.url))
        );
        return Ok(1);
    }
    Ok(exit_code(&doc))
}

/// 1 when any listed node fails or is stale.
pub fn exit_code(doc: &NodesDoc) -> u8 {
    u8::from(doc.nodes.iter().any(|n| n.state.needs_attention()))
}

/// The base URL, checked: http or https, no credentials, no query or fragment.
fn base_url(args: &ReportArgs) -> Result<reqwest::Url, ClientError> {
    let url = fleetapi::parse_url("--url", &args.url)?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ClientError::Url {
            url: args.url.clone(),
            why: "give the base URL only, without ?query or #fragment".into(),
        });
    }
    if url.cannot_be_a_base() {
        return Err(ClientError::Url {
            url: args.url.clone(),
            why: "not a base URL".into(),
        });
    }
    Ok(url)
}

/// `<base><route>`, keeping a base path (an aggregator behind a reverse proxy at
/// `/regtrust/`).
fn api_url(args: &ReportArgs, route: &str) -> Result<reqwest::Url, ClientError> {
    let mut url = base_url(args)?;
    url.path_segments_mut()
        .map_err(|_| ClientError::Url {
            url: args.url.clone(),
            why: "not a base URL".into(),
        })?
        .pop_if_empty()
        .extend(route.trim_start_matches('/').split('/'));
    Ok(url)
}

/// `<base>/api/v1/nodes?node=&registry=&failing=true`.
pub fn nodes_url(args: &ReportArgs) -> Result<reqwest::Url, ClientError> {
    let registry = match &args.registry {
        Some(raw) => Some(registry_arg(raw)?),
        None => None,
    };
    nodes_url_for(args, registry.as_ref(), args.failing)
}

fn registry_arg(raw: &str) -> Result<RegistryHost, ClientError> {
    RegistryHost::parse(raw).map_err(|source| ClientError::Registry {
        raw: raw.to_string(),
        source,
    })
}

fn nodes_url_for(
    args: &ReportArgs,
    registry: Option<&RegistryHost>,
    failing: bool,
) -> Result<reqwest::Url, ClientError> {
    let mut url = api_url(args, routes::NODES)?;
    {
        let mut q = url.query_pairs_mut();
        if let Some(n) = &args.node {
            q.append_pair("node", n);
        }
        if let Some(host) = registry {
            q.append_pair("registry", host.as_str());
        }
        if failing {
            q.append_pair("failing", "true");
        }
    }
    if url.query() == Some("") {
        url.set_query(None);
    }
    Ok(url)
}

fn client(args: &ReportArgs, url: &reqwest::Url) -> Result<ApiClient, ClientError> {
    let spec = fleetapi::Spec {
        url_flag: "--url",
        ca_flag: "--ca-file",
        ca_file: args.ca_file.as_deref(),
        connect_timeout: args.timeout,
        timeout: args.timeout,
        user_agent: concat!("regtrust/", env!("CARGO_PKG_VERSION")),
    };
    Ok(ApiClient::new(url, &spec, args.token_file.clone())?)
}

/// One call and its JSON answer, errors worded for the admin.
async fn call_json<T: serde::de::DeserializeOwned>(
    args: &ReportArgs,
    method: reqwest::Method,
    url: reqwest::Url,
    body: Option<Vec<u8>>,
    what: &'static str,
) -> Result<T, ClientError> {
    let http = client(args, &url)?;
    let shown = url.to_string();
    let answer = http
        .call(method, url, body, MAX_ANSWER)
        .await
        .map_err(|e| match e {
            CallError::Timeout(d) => ClientError::Connect {
                url: shown.clone(),
                why: format!("no answer within {}s (--timeout)", d.as_secs_f64()),
            },
            CallError::Token { path, why } => ClientError::Connect {
                url: shown.clone(),
                why: format!("--token-file {}: {why}", path.display()),
            },
            other => ClientError::Connect {
                url: shown.clone(),
                why: other.to_string(),
            },
        })?;
    if answer.status == reqwest::StatusCode::UNAUTHORIZED {
        return Err(ClientError::Unauthorized { url: shown });
    }
    if !answer.status.is_success() {
        let mut message = answer.error_text();
        if message.is_empty() {
            let text: String = String::from_utf8_lossy(&answer.body)
                .chars()
                .take(200)
                .collect();
            message = printable(text.trim());
        }
        if message.is_empty() {
            message = "empty answer; is --url a regtrust aggregator?".to_string();
        }
        return Err(ClientError::Status {
            url: shown,
            status: answer.status.as_u16(),
            message,
        });
    }
    serde_json::from_slice(&answer.body).map_err(|e| ClientError::Body {
        url: shown,
        what,
        why: printable(&e.to_string()),
    })
}

pub async fn fetch(args: &ReportArgs) -> Result<NodesDoc, ClientError> {
    let url = nodes_url(args)?;
    call_json(args, reqwest::Method::GET, url, None, "nodes").await
}

/// The registry host of an image reference, as docker, containerd and CRI-O resolve it
/// (`github.com/distribution/reference` v0.6.0, normalize.go `splitDockerDomain`): the part
/// before the first `/` is a registry when it contains a `.` or a `:`, is `localhost`, or
/// has an upper-case letter; otherwise the image is on Docker Hub (`docker.io`, which
/// `index.docker.io` also names). Tags and digests do not change the host.
pub fn image_host(reference: &str) -> Result<RegistryHost, String> {
    let r = reference.trim();
    if r.is_empty() {
        return Err("empty image reference".into());
    }
    if r.contains("://") {
        return Err(
            "an image reference has no scheme (harbor.local/team/app:1, not https://...)".into(),
        );
    }
    if let Some(c) = r.chars().find(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!("contains {c:?}"));
    }
    // The digest goes first: `@sha256:...` holds a colon that is not a port.
    let name = r.split('@').next().unwrap_or_default();
    if name.is_empty() {
        return Err("no repository name before the digest".into());
    }
    let domain = match name.split_once('/') {
        Some((first, _))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            first
        }
        Some((_, _)) | None => "docker.io",
    };
    let domain = if domain == "index.docker.io" {
        "docker.io"
    } else {
        domain
    };
    RegistryHost::parse(domain).map_err(|e| format!("registry {domain:?}: {e}"))
}

/// `report --image --output json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageDoc {
    pub image: String,
    /// The normalised registry host, exactly.
    pub registry: String,
    /// Nodes that report the registry and would fail to pull (or are stale).
    pub cannot_pull: usize,
    pub nodes: Vec<ImageNode>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageNode {
    pub node: String,
    pub verdict: Verdict,
    pub state: super::fleet::NodeState,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cause: String,
    #[serde(default)]
    pub message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fix: String,
}

/// Each node's answer for pulling from `registry`: a failing verdict, or a stale node
/// (its verdict is old news), cannot be counted on.
pub fn image_doc(image: &str, registry: &RegistryHost, nodes: &NodesDoc) -> ImageDoc {
    let mut out = Vec::new();
    for n in &nodes.nodes {
        for r in n
            .registries
            .iter()
            .filter(|r| r.registry == registry.as_str())
        {
            out.push(ImageNode {
                node: n.node.clone(),
                verdict: r.verdict,
                state: n.state,
                cause: r.cause.clone(),
                message: r.message.clone(),
                fix: r.fix.clone(),
            });
        }
    }
    ImageDoc {
        image: image.to_string(),
        registry: registry.as_str().to_string(),
        cannot_pull: out.iter().filter(|n| !can_pull(n)).count(),
        nodes: out,
    }
}

fn can_pull(n: &ImageNode) -> bool {
    n.verdict == Verdict::Ok && n.state != super::fleet::NodeState::Stale
}

async fn run_image(args: &ReportArgs) -> Result<u8, ClientError> {
    let raw = args.image.as_deref().unwrap_or_default();
    let host = image_host(raw).map_err(|why| ClientError::Image {
        raw: raw.to_string(),
        why,
    })?;
    let url = nodes_url_for(args, Some(&host), false)?;
    let nodes: NodesDoc = call_json(args, reqwest::Method::GET, url, None, "nodes").await?;
    let doc = image_doc(raw, &host, &nodes);
    match args.output {
        ReportOutput::Json => emit_json(&doc)?,
        ReportOutput::Table => {
            if !doc.nodes.is_empty() {
                crate::cli::emit(&render_image(&doc));
            }
        }
    }
    if doc.nodes.is_empty() {
        eprintln!(
            "regtrust report: no node{} reports registry {} (the image's registry): regtrust does not watch it there; add --registry {} to the agents",
            args.node.as_deref().map(|n| format!(" named {n:?}")).unwrap_or_default(),
            doc.registry,
            doc.registry
        );
        return Ok(1);
    }
    Ok(u8::from(doc.cannot_pull > 0))
}

pub fn render_image(doc: &ImageDoc) -> String {
    let mut rows = Vec::new();
    for n in &doc.nodes {
        let verdict = if n.cause.is_empty() {
            n.verdict.as_str().to_string()
        } else {
            format!("{} ({})", n.verdict.as_str(), printable(&n.cause))
        };
        let mut message = printable(&n.message);
        if !n.fix.is_empty() {
            if !message.is_empty() {
                message.push_str("; ");
            }
            message.push_str("fix: ");
            message.push_str(&printable(&n.fix));
        }
        rows.push(vec![
            printable(&n.node),
            n.state.as_str().to_string(),
            if can_pull(n) { "yes" } else { "no" }.to_string(),
            verdict,
            message,
        ]);
    }
    let mut out = format!(
        "image {} → registry {}\n",
        printable(&doc.image),
        doc.registry
    );
    out.push_str(&table(
        &["NODE", "STATE", "PULLS", "VERDICT", "MESSAGE"],
        &rows,
    ));
    out
}

async fn run_preflight(args: &ReportArgs) -> Result<u8, ClientError> {
    let path = args.preflight.clone().unwrap_or_default();
    let chain_err = |why: String| ClientError::Chain {
        path: path.clone(),
        why,
    };
    let raw_registry = args.registry.as_deref().unwrap_or_default();
    let host = registry_arg(raw_registry)?;
    let pem = crate::ca::read_capped(&path, MAX_CHAIN_FILE).map_err(|e| {
        chain_err(match e {
            crate::ca::ReadCappedError::TooLarge { .. } => {
                format!("larger than {MAX_CHAIN_FILE} bytes")
            }
            other => other.to_string(),
        })
    })?;
    // Checked here too, so a key never leaves this machine.
    super::preflight::parse_chain(&path.display().to_string(), &pem).map_err(chain_err)?;
    let body = serde_json::to_vec(&PreflightRequest {
        registry: host.as_str().to_string(),
        chain_pem: String::from_utf8_lossy(&pem).into_owned(),
    })
    .map_err(|e| chain_err(e.to_string()))?;
    let url = api_url(args, routes::PREFLIGHT)?;
    let mut doc: PreflightDoc =
        call_json(args, reqwest::Method::POST, url, Some(body), "pre-flight").await?;
    if let Some(n) = &args.node {
        doc.nodes.retain(|x| &x.node == n);
        doc.nodes_total = doc.nodes.len();
        doc.would_fail = doc
            .nodes
            .iter()
            .filter(|x| x.verdict != Verdict::Ok)
            .count();
    }
    match args.output {
        ReportOutput::Json => emit_json(&doc)?,
        ReportOutput::Table => crate::cli::emit(&render_preflight(&doc)),
    }
    if doc.nodes.is_empty() {
        eprintln!(
            "regtrust report: no node reports registry {}: nothing to judge",
            doc.registry
        );
        return Ok(1);
    }
    Ok(u8::from(doc.any_would_fail()))
}

pub fn render_preflight(doc: &PreflightDoc) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "pre-flight for {} with the chain:", doc.registry);
    for (i, c) in doc.chain.iter().enumerate() {
        let _ = writeln!(
            out,
            "  {i}: {} (issued by {}) sha256 {} not after {}",
            printable(&c.subject),
            printable(&c.issuer),
            c.sha256,
            c.not_after
        );
    }
    let mut rows = Vec::new();
    for n in &doc.nodes {
        for r in &n.runtimes {
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
            rows.push(vec![
                printable(&n.node),
                if n.stale { "stale" } else { "" }.to_string(),
                printable(&r.runtime),
                verdict,
                message,
            ]);
        }
    }
    out.push_str(&table(
        &["NODE", "STALE", "RUNTIME", "VERDICT", "MESSAGE"],
        &rows,
    ));
    let _ = writeln!(
        out,
        "{} of {} nodes would fail.",
        doc.would_fail, doc.nodes_total
    );
    out
}

/// Left-aligned columns, three spaces apart; the last column is not padded.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
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
    for r in rows {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        line(&cells);
    }
    out
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
            (vec!["--url", "https://agg"], Ok("https://agg/api/v1/nodes")),
            (vec!["--url", "http://robot:pw@agg"], Err("credentials")),
            (vec!["--url", "https://agg", "--ca-file", "ca.pem"], Ok("https://agg/api/v1/nodes")),
            (vec!["--url", "ftp://agg"], Err("scheme \"ftp\"")),
            (vec!["--url", "agg:9811"], Err("scheme \"agg\"")),
            (vec!["--url", "not a url"], Err("--url")),
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
    fn image_references_name_the_registry_the_runtimes_dial() {
        for (reference, want) in [
            ("nginx", Ok("docker.io")),
            ("nginx:1.25", Ok("docker.io")),
            ("library/nginx", Ok("docker.io")),
            ("bitnami/redis:7", Ok("docker.io")),
            ("docker.io/library/nginx", Ok("docker.io")),
            ("index.docker.io/library/nginx", Ok("docker.io")),
            ("harbor.local:8443/team/app:1", Ok("harbor.local:8443")),
            ("harbor.local/team/app", Ok("harbor.local")),
            ("Harbor.Local:8443/team/app", Ok("harbor.local:8443")),
            ("harbor.local:8443/team/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", Ok("harbor.local:8443")),
            ("nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", Ok("docker.io")),
            ("harbor.local:8443/team/app:1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", Ok("harbor.local:8443")),
            ("localhost/app", Ok("localhost")),
            ("localhost:5000/app:latest", Ok("localhost:5000")),
            ("127.0.0.1:5000/app", Ok("127.0.0.1:5000")),
            ("[::1]:5000/app", Ok("[::1]:5000")),
            ("Registry/app", Ok("registry")),
            ("quay.io/prometheus/node-exporter:v1.8.0", Ok("quay.io")),
            ("", Err("empty")),
            ("https://harbor.local/team/app", Err("no scheme")),
            ("harbor.local/te am", Err("contains")),
            ("app\u{1b}[2J", Err("contains")),
            ("@sha256:00", Err("no repository")),
            ("bad_host.local:99999/app", Err("registry")),
        ] {
            match (image_host(reference), want) {
                (Ok(h), Ok(w)) => assert_eq!(h.as_str(), w, "{reference}"),
                (Err(e), Err(part)) => assert!(e.contains(part), "{reference}: {e}"),
                (got, want) => panic!("{reference}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn image_answers_count_nodes_that_cannot_pull() {
        let view = |node: &str, state: NodeState, verdict: Verdict| NodeView {
            node: node.into(),
            state,
            worst: verdict,
            stale: state == NodeState::Stale,
            last_report_at: String::new(),
            last_report_age_seconds: 0,
            generated_at: String::new(),
            agent_version: String::new(),
            problems: 0,
            registries: vec![NodeRegistryView {
                registry: "harbor.local:8443".into(),
                verdict,
                since: String::new(),
                message: String::new(),
                cause: String::new(),
                fix: String::new(),
            }],
        };
        let doc = NodesDoc {
            generated_at: String::new(),
            stale_after_seconds: 180,
            nodes: vec![
                view("a", NodeState::Ok, Verdict::Ok),
                view("b", NodeState::Failing, Verdict::UnknownAuthority),
                view("c", NodeState::Stale, Verdict::Ok),
            ],
        };
        let host = RegistryHost::parse("harbor.local:8443").unwrap();
        let d = image_doc("harbor.local:8443/team/app:1", &host, &doc);
        assert_eq!(d.registry, "harbor.local:8443");
        assert_eq!(d.cannot_pull, 2);
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["nodes"][1]["node"], "b");
        assert_eq!(v["nodes"][1]["verdict"], "unknown_authority");
        let t = render_image(&d);
        assert!(t.contains("b      failing   no"), "{t}");
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
node-a   failing   harbor.local   unknown_authority (ca_not_installed)   5m      10s           x509: certificate signed by unknown authority\\u{1b}[31m; fix: give --ca
b        ok        -              -                                      -       10s
";
        assert_eq!(t, want);
        assert_eq!(exit_code(&doc), 1);
    }
}
