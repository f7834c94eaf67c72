//! The aggregator's HTTP surface (SPEC, Aggregator): routes, bearer tokens, the body limit,
//! admission of posted reports, and JSON errors. It asks `store` for rows and `fleet` for
//! their meaning, and `page` for the HTML; it holds no state of its own beyond counters.

use super::facts::FactsCache;
use super::fleet::{self, Counters, Filter, RegistriesDoc};
use super::store::{EventQuery, Store, StoreError};
use crate::fleetapi::routes;
use crate::host::RegistryHost;
use crate::report::Report;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde::Deserialize;
use std::collections::HashSet;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

/// Longest node name accepted (a Kubernetes node name is a DNS subdomain: 253).
const MAX_NODE: usize = 253;
/// Events per page of `GET /api/v1/events` at most, and by default.
const MAX_EVENTS: usize = 10_000;
const DEFAULT_EVENTS: usize = 100;
/// Transitions shown on the page.
const PAGE_EVENTS: usize = 50;

/// A bearer token, kept only as its SHA-256 digest so that comparing takes the same time
/// whatever the presented token's length or content.
#[derive(Clone)]
pub struct Token {
    digest: [u8; 32],
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    pub fn new(secret: &str) -> Token {
        let d = ring::digest::digest(&ring::digest::SHA256, secret.as_bytes());
        let mut digest = [0u8; 32];
        digest.copy_from_slice(d.as_ref());
        Token { digest }
    }

    /// Constant time in the content of `presented`: both sides are hashed, then every byte
    /// of the digests is compared without an early exit.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let d = ring::digest::digest(&ring::digest::SHA256, presented);
        let diff = self
            .digest
            .iter()
            .zip(d.as_ref())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        diff == 0
    }
}

/// What the server knows; shared by every handler.
pub struct AppState {
    pub store: Store,
    /// `None` only when started with `--allow-open-loopback` on a loopback address.
    pub write_token: Option<Token>,
    pub read_token: Option<Token>,
    pub stale_after: Duration,
    pub body_limit: usize,
    /// Seconds between the page's self-refreshes.
    pub refresh_secs: u32,
    pub counters: Counters,
    /// What each node trusts and sees, for the pages and the pre-flight.
    pub facts: FactsCache,
    pub bounds: super::Bounds,
}

pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.body_limit;
    Router::new()
        .route(routes::REPORTS, post(post_report))
        .route(routes::NODES, get(list_nodes))
        .route(routes::NODE, get(get_node).delete(delete_node))
        .route(routes::REGISTRIES, get(list_registries))
        .route(routes::EVENTS, get(list_events))
        .route(routes::PREFLIGHT, post(preflight))
        .route(routes::PAGE, get(page))
        .route(routes::PAGE_NODE, get(node_page))
        .route(routes::PAGE_REGISTRY, get(registry_page))
        .route(routes::METRICS, get(metrics))
        .route(routes::HEALTHZ, get(healthz))
        // Auth is one layer over every matched route (`access` says which token each
        // needs); unmatched paths fall through to a plain 404.
        .route_layer(middleware::from_fn_with_state(state.clone(), auth))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// The one error type of every handler: a status and a message, answered as
/// `{"error": "..."}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error(self.status, self.message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            // The database is away (PostgreSQL down, the SQLite thread gone): retry later.
            e if e.is_unavailable() => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
            }
            // A fleet bound (--max-nodes, --max-registries).
            StoreError::Limit(m) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, m),
            e => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }
    }
}

type ApiResult = Result<Response, ApiError>;

/// A query string, its rejection answered as an `ApiError` (400 `query: ...`) once here
/// instead of in every handler.
pub struct Q<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(t)| Q(t))
            .map_err(|e| ApiError::bad_request(format!("query: {}", e.body_text())))
    }
}

/// Which token a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Open,
    /// The read token (when one is set); `page`: a browser page, challenged with Basic.
    Read {
        page: bool,
    },
    Write,
}

/// The auth policy, in one place: posting reports and forgetting nodes write; `/healthz` is
/// open; every other read (the API, `/metrics`, the pages, and the pre-flight, which is a
/// POST that changes nothing) takes the read token.
pub fn access(method: &Method, path: &str) -> Access {
    if path == routes::HEALTHZ {
        Access::Open
    } else if (method == Method::POST && path == routes::REPORTS)
        || (method == Method::DELETE && path.starts_with("/api/v1/nodes/"))
    {
        Access::Write
    } else if path.starts_with("/api/") || path == routes::METRICS {
        Access::Read { page: false }
    } else {
        Access::Read { page: true }
    }
}

async fn auth(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let denied = match access(req.method(), req.uri().path()) {
        Access::Open => None,
        Access::Read { page } => {
            read_denied(&st, req.headers(), if page { "Basic" } else { "Bearer" })
        }
        Access::Write => {
            let d = write_denied(&st, req.headers());
            if d.is_some() && req.uri().path() == routes::REPORTS {
                st.counters.unauthorized.fetch_add(1, Relaxed);
            }
            d
        }
    };
    match denied {
        Some(r) => r,
        None => next.run(req).await,
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

/// A JSON body serialised into a buffer of about `hint` bytes from the start: a fleet
/// document runs to megabytes, and growing one from a few bytes copies it over and over.
fn json_sized<T: serde::Serialize>(value: &T, hint: usize) -> Response {
    let mut buf = Vec::with_capacity(hint);
    match serde_json::to_writer(&mut buf, value) {
        Ok(()) => ([(header::CONTENT_TYPE, "application/json")], buf).into_response(),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("serialising the answer: {e}"),
        ),
    }
}

/// About how many JSON bytes the views of `rows` take: a node's own keys, and per
/// registry its row (a message and a fix when it fails).
fn fleet_bytes(rows: &[Arc<fleet::NodeRow>]) -> usize {
    rows.iter()
        .map(|r| 320 + r.node.len() + 128 * r.registries.len())
        .sum::<usize>()
        + 128
}

/// The credential in `Authorization`: `Bearer T`, or `Basic base64(user:T)` so a browser
/// can open the page when a read token is set. Schemes are case-insensitive (RFC 9110).
fn presented(headers: &HeaderMap, allow_basic: bool) -> Option<Vec<u8>> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let space = value.iter().position(|b| *b == b' ')?;
    let (scheme, rest) = value.split_at(space);
    let rest = rest.trim_ascii();
    if scheme.eq_ignore_ascii_case(b"bearer") {
        return Some(rest.to_vec());
    }
    if allow_basic && scheme.eq_ignore_ascii_case(b"basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let colon = decoded.iter().position(|b| *b == b':')?;
        return Some(decoded[colon + 1..].to_vec());
    }
    None
}

fn unauthorized(scheme: &'static str) -> Response {
    let mut r = error(
        StatusCode::UNAUTHORIZED,
        "missing or wrong bearer token in Authorization",
    );
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(if scheme == "Basic" {
            "Basic realm=\"regtrust\", charset=\"UTF-8\""
        } else {
            "Bearer realm=\"regtrust\""
        }),
    );
    r
}

/// The 401 to answer when a read is not allowed; `None` when it is.
fn read_denied(st: &AppState, headers: &HeaderMap, scheme: &'static str) -> Option<Response> {
    match &st.read_token {
        None => None,
        Some(t) => match presented(headers, true) {
            Some(p) if t.matches(&p) => None,
            _ => Some(unauthorized(scheme)),
        },
    }
}

/// The 401 to answer when a write is not allowed; `None` when it is.
fn write_denied(st: &AppState, headers: &HeaderMap) -> Option<Response> {
    match &st.write_token {
        None => None,
        Some(t) => match presented(headers, false) {
            Some(p) if t.matches(&p) => None,
            _ => Some(unauthorized("Bearer")),
        },
    }
}

/// The aggregator's checks on top of `Report::from_json`: a node name it can show and key
/// on, registry hosts that are hosts (spelled canonically from here on), no duplicates,
/// and a bounded number of registries.
pub fn admit(mut report: Report, max_registries: usize) -> Result<Report, String> {
    if report.node.chars().count() > MAX_NODE {
        return Err(format!(
            "node name of {} characters; at most {MAX_NODE}",
            report.node.chars().count()
        ));
    }
    if let Some(c) = report.node.chars().find(|c| c.is_control()) {
        return Err(format!("node name contains the control character {c:?}"));
    }
    if report.node.trim() != report.node {
        return Err("node name has leading or trailing whitespace".into());
    }
    if report.registries.len() > max_registries {
        return Err(format!(
            "{} registries in one report; at most {max_registries} (--max-registries-per-report)",
            report.registries.len()
        ));
    }
    // The texts that become database columns: PostgreSQL's `text` cannot hold U+0000 (and
    // would refuse the report where SQLite stores it), so both backends refuse it here.
    // The field is named only when refused (not formatted for every probe of every report).
    let nul = |field: &dyn Fn() -> String, text: &str| -> Result<(), String> {
        if text.contains('\0') {
            Err(format!(
                "{} contains a NUL character (U+0000), which the fleet store cannot hold",
                field()
            ))
        } else {
            Ok(())
        }
    };
    nul(&|| "agent_version".into(), &report.agent_version)?;
    nul(&|| "generated_at".into(), &report.generated_at)?;
    for (i, r) in report.registries.iter().enumerate() {
        nul(&|| format!("registries[{i}].message"), &r.message)?;
        for (j, p) in r.probes.iter().enumerate() {
            nul(
                &|| format!("registries[{i}].probes[{j}].message"),
                &p.message,
            )?;
            nul(&|| format!("registries[{i}].probes[{j}].cause"), &p.cause)?;
            nul(&|| format!("registries[{i}].probes[{j}].fix"), &p.fix)?;
        }
    }
    let mut seen = HashSet::new();
    for r in &mut report.registries {
        let host = RegistryHost::parse(&r.host).map_err(|e| {
            format!(
                "registries[].host {:?}: {e}",
                r.host.chars().take(100).collect::<String>()
            )
        })?;
        r.host = host.as_str().to_string();
        if !seen.insert(r.host.clone()) {
            return Err(format!("registry {} appears twice", r.host));
        }
    }
    Ok(report)
}

/// A report generated more than `skew` ahead of `now_ms` is refused: under newest truth it
/// would shadow every honest report of its node until the clock caught up.
pub fn check_clock(report: &Report, now_ms: i64, skew: Duration) -> Result<(), String> {
    let skew_ms = i64::try_from(skew.as_millis()).unwrap_or(i64::MAX);
    match super::store::rfc3339_ms(&report.generated_at) {
        Some(ms) if ms > now_ms.saturating_add(skew_ms) => Err(format!(
            "generated_at {} is {} s ahead of the aggregator's clock ({}); at most {} s (--max-clock-skew): fix the node's clock (NTP)",
            report.generated_at,
            (ms - now_ms) / 1000,
            fleet::ms_to_rfc3339(now_ms),
            skew.as_secs()
        )),
        _ => Ok(()),
    }
}

async fn post_report(State(st): State<Arc<AppState>>, req: Request) -> ApiResult {
    let body = match Bytes::from_request(req, &()).await {
        Ok(b) => b,
        Err(rej) => {
            let status = rej.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                st.counters.too_large.fetch_add(1, Relaxed);
                return Err(ApiError::new(
                    status,
                    format!(
                        "report larger than the body limit of {} bytes",
                        st.body_limit
                    ),
                ));
            }
            return Err(ApiError::new(
                status,
                format!("reading the request body: {rej}"),
            ));
        }
    };
    let received_ms = fleet::now_ms();
    let report = match Report::from_json(&body)
        .and_then(|r| admit(r, st.bounds.max_registries_per_report))
        .and_then(|r| {
            check_clock(&r, received_ms, st.bounds.max_clock_skew)?;
            Ok(r)
        }) {
        Ok(r) => r,
        Err(e) => {
            st.counters.invalid.fetch_add(1, Relaxed);
            return Err(ApiError::bad_request(format!("invalid report: {e}")));
        }
    };
    // from_json parsed it, so the body is UTF-8 JSON: store it as the node sent it (keys
    // newer than this aggregator are kept).
    // (`Vec::from(Bytes)` takes the buffer over without a copy when nothing else holds it.)
    let raw = String::from_utf8(Vec::from(body))
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    let node = report.node.clone();
    // Taken before the store owns the report; kept only once the store answered. Should
    // the store keep another report (an older one refused), the facts' key no longer
    // matches its row and `FactsCache::current` reads the stored one back.
    let facts = st.facts.build(&report, received_ms);
    match st.store.put(report, raw, received_ms).await {
        Ok(out) if out.superseded_by.is_some() => {
            // Newest truth: 200 (the agent has nothing to retry) with what happened.
            st.counters.superseded.fetch_add(1, Relaxed);
            let stored = out.superseded_by.unwrap_or_default();
            tracing::info!(node = %node, stored_generated_at = %stored, "older report not applied");
            Ok(Json(serde_json::json!({
                "node": node,
                "stored": false,
                "outcome": "superseded",
                "stored_generated_at": stored,
                "transitions": 0,
            }))
            .into_response())
        }
        Ok(out) => {
            st.counters.stored.fetch_add(1, Relaxed);
            st.facts.insert(facts);
            for e in &out.transitions {
                let from = e.from.map_or("none", |v| v.as_str());
                let to = e.to.map_or("none", |v| v.as_str());
                if e.from.is_some() {
                    tracing::info!(node = %e.node, registry = %e.registry, from, to, "verdict changed");
                } else {
                    tracing::debug!(node = %e.node, registry = %e.registry, to, "registry first reported");
                }
            }
            Ok(Json(serde_json::json!({
                "node": node,
                "stored": true,
                "outcome": "stored",
                "transitions": out.transitions.len(),
            }))
            .into_response())
        }
        Err(e @ StoreError::Limit(_)) => {
            st.counters.over_bound.fetch_add(1, Relaxed);
            tracing::warn!(node = %node, error = %e, "report refused by a fleet bound");
            Err(e.into())
        }
        Err(e) => {
            st.counters.store_error.fetch_add(1, Relaxed);
            tracing::error!(node = %node, error = %e, "report not stored");
            Err(e.into())
        }
    }
}

async fn list_nodes(State(st): State<Arc<AppState>>, Q(filter): Q<Filter>) -> ApiResult {
    let rows = st.store.fleet().await?;
    let now = fleet::now_ms();
    let doc = fleet::NodesDocRef {
        generated_at: fleet::ms_to_rfc3339(now),
        stale_after_seconds: st.stale_after.as_secs(),
        nodes: fleet::node_view_refs(&rows, &filter, now, st.stale_after),
    };
    let hint = if doc.nodes.len() == rows.len() {
        fleet_bytes(&rows)
    } else {
        4096
    };
    Ok(json_sized(&doc, hint))
}

async fn get_node(State(st): State<Arc<AppState>>, Path(node): Path<String>) -> ApiResult {
    let Some(rec) = st.store.node(node.clone()).await? else {
        return Err(node_not_found(&node));
    };
    let now = fleet::now_ms();
    let view = fleet::node_views(
        std::slice::from_ref(&rec.row),
        &Filter::default(),
        now,
        st.stale_after,
    )
    .pop();
    let report: serde_json::Value =
        serde_json::from_str(&rec.report_json).unwrap_or(serde_json::Value::Null);
    Ok(Json(serde_json::json!({ "node": view, "report": report })).into_response())
}

fn node_not_found(node: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("node {node:?} has not reported (or was forgotten after --retention)"),
    )
}

async fn delete_node(State(st): State<Arc<AppState>>, Path(node): Path<String>) -> ApiResult {
    if st.store.delete(node.clone()).await? {
        tracing::info!(node = %node, "node forgotten on request");
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("node {node:?} is not known"),
        ))
    }
}

#[derive(Debug, Deserialize)]
struct RegistryQuery {
    registry: Option<String>,
}

async fn list_registries(State(st): State<Arc<AppState>>, Q(q): Q<RegistryQuery>) -> ApiResult {
    let rows = st.store.fleet().await?;
    let now = fleet::now_ms();
    let mut registries = fleet::registry_views(&rows, now, st.stale_after);
    if let Some(want) = q.registry {
        registries.retain(|r| r.registry.eq_ignore_ascii_case(&want));
    }
    let doc = RegistriesDoc {
        generated_at: fleet::ms_to_rfc3339(now),
        stale_after_seconds: st.stale_after.as_secs(),
        registries,
    };
    Ok(json_sized(&doc, 4096 + 24 * rows.len()))
}

#[derive(Debug, Deserialize)]
struct EventsParams {
    node: Option<String>,
    registry: Option<String>,
    since: Option<String>,
    limit: Option<usize>,
}

async fn list_events(State(st): State<Arc<AppState>>, Q(q): Q<EventsParams>) -> ApiResult {
    let since_ms = match q.since.as_deref() {
        None => None,
        Some(s) => {
            match time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
                Ok(t) => Some(i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)),
                Err(e) => {
                    return Err(ApiError::bad_request(format!(
                        "query: since {s:?} is not RFC 3339: {e}"
                    )));
                }
            }
        }
    };
    let query = EventQuery {
        node: q.node,
        registry: q.registry,
        since_ms,
        limit: q.limit.unwrap_or(DEFAULT_EVENTS).min(MAX_EVENTS),
    };
    let events = st.store.events(query).await?;
    Ok(Json(serde_json::json!({ "events": events })).into_response())
}

/// `POST /api/v1/preflight`: `{"registry": HOST, "chain_pem": PEM}` → what every node
/// reporting HOST would say if HOST served that chain (`preflight`).
async fn preflight(State(st): State<Arc<AppState>>, body: Bytes) -> ApiResult {
    let req: super::preflight::PreflightRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "pre-flight request: {}; expected {{\"registry\": \"host[:port]\", \"chain_pem\": \"-----BEGIN CERTIFICATE-----...\"}}",
            crate::report::printable(&e.to_string())
        ))
    })?;
    let host = RegistryHost::parse(&req.registry).map_err(|e| {
        ApiError::bad_request(format!(
            "registry {:?}: {e}",
            req.registry.chars().take(100).collect::<String>()
        ))
    })?;
    let chain = super::preflight::parse_chain("chain_pem", req.chain_pem.as_bytes())
        .map_err(ApiError::bad_request)?;
    let rows = st.store.fleet().await?;
    let facts = st.facts.current(&st.store, &rows).await?;
    let now_ms = fleet::now_ms();
    let stale: HashSet<&str> = rows
        .iter()
        .filter(|r| fleet::is_stale(r.received_ms, now_ms, st.stale_after))
        .map(|r| r.node.as_str())
        .collect();
    let stale: HashSet<String> = stale.into_iter().map(String::from).collect();
    // Go's Verify per distinct trust set: CPU work, off the async threads.
    let doc = tokio::task::spawn_blocking(move || {
        super::preflight::run(
            &host,
            chain,
            &facts,
            |n| stale.contains(n),
            time::OffsetDateTime::now_utc(),
        )
    })
    .await
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("pre-flight failed: {e}"),
        )
    })?;
    Ok(json_sized(&doc, 4096 + 256 * doc.nodes.len()))
}

#[derive(Debug, Default, Deserialize)]
struct PageQuery {
    #[serde(default)]
    q: String,
    page: Option<usize>,
}

/// An HTML answer with the page headers.
fn html(body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // Defence in depth on top of escaping: no script runs on these pages at all.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'",
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

/// Transitions read to find `PAGE_EVENTS` of nodes matching `?q=`.
const PAGE_EVENTS_SCANNED: usize = 2_000;

async fn page(State(st): State<Arc<AppState>>, Q(pq): Q<PageQuery>) -> ApiResult {
    use super::page::matches_q;
    let q = pq.q.trim().to_string();
    let rows = st.store.fleet().await?;
    let mut events = st
        .store
        .events(EventQuery {
            limit: if q.is_empty() {
                PAGE_EVENTS
            } else {
                PAGE_EVENTS_SCANNED
            },
            ..EventQuery::default()
        })
        .await?;
    events.retain(|e| matches_q(&e.node, &q));
    events.truncate(PAGE_EVENTS);
    let facts = st.facts.current(&st.store, &rows).await?;
    let now = fleet::now_ms();
    let matching_rows: Vec<Arc<fleet::NodeRow>> = if q.is_empty() {
        Vec::new()
    } else {
        rows.iter()
            .filter(|r| matches_q(&r.node, &q))
            .cloned()
            .collect()
    };
    let listed_rows: &[Arc<fleet::NodeRow>] = if q.is_empty() { &rows } else { &matching_rows };
    // The page lists only the nodes that need attention: views of the others would be
    // built and thrown away.
    let listed = Filter {
        failing: true,
        ..Filter::default()
    };
    let expiring = super::facts::expiring(
        &facts,
        now.div_euclid(1000),
        super::page::EXPIRY_DAYS,
        |n| matches_q(n, &q),
    );
    let html_text = super::page::render(&super::page::PageData {
        now_ms: now,
        stale_after: st.stale_after,
        refresh_secs: st.refresh_secs,
        counts: fleet::row_state_counts(&rows, now, st.stale_after),
        nodes: fleet::node_views(listed_rows, &listed, now, st.stale_after),
        registries: fleet::registry_views(&rows, now, st.stale_after),
        events,
        expiring,
        matching: fleet::node_views(&matching_rows, &Filter::default(), now, st.stale_after),
        q,
        page: pq.page.unwrap_or(1).max(1),
    });
    Ok(html(html_text))
}

async fn node_page(State(st): State<Arc<AppState>>, Path(node): Path<String>) -> ApiResult {
    let Some(rec) = st.store.node(node.clone()).await? else {
        return Err(node_not_found(&node));
    };
    let report = Report::from_json(rec.report_json.as_bytes()).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("node {node:?}: the stored report does not parse: {e}"),
        )
    })?;
    let now = fleet::now_ms();
    let view = fleet::node_views(
        std::slice::from_ref(&rec.row),
        &Filter::default(),
        now,
        st.stale_after,
    )
    .pop()
    .ok_or_else(|| node_not_found(&node))?;
    Ok(html(super::page::render_node(&super::page::NodePage {
        now_ms: now,
        view: &view,
        report: &report,
    })))
}

async fn registry_page(State(st): State<Arc<AppState>>, Path(raw): Path<String>) -> ApiResult {
    let host = RegistryHost::parse(&raw).map_err(|e| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "registry {:?}: {e}",
                raw.chars().take(100).collect::<String>()
            ),
        )
    })?;
    let rows = st.store.fleet().await?;
    let facts = st.facts.current(&st.store, &rows).await?;
    let now = fleet::now_ms();
    let views = fleet::registry_views(&rows, now, st.stale_after);
    let view = views.iter().find(|v| v.registry == host.as_str());
    let html_text = super::page::render_registry(&super::page::RegistryPage {
        now_ms: now,
        host: host.as_str(),
        view,
        by_verdict: fleet::nodes_by_verdict(&rows, host.as_str(), now, st.stale_after),
        fingerprints: super::facts::ca_distribution(&facts, host.as_str()),
        chains: super::facts::chains_seen(&facts, host.as_str()),
    });
    Ok(html(html_text))
}

async fn metrics(State(st): State<Arc<AppState>>) -> ApiResult {
    let rows = st.store.fleet().await?;
    let now = fleet::now_ms();
    let states = fleet::row_state_counts(&rows, now, st.stale_after);
    let regs = fleet::registry_views(&rows, now, st.stale_after);
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        fleet::to_prometheus(
            &states,
            &regs,
            &st.counters,
            st.bounds.metrics_per_node.then_some(&rows[..]),
        ),
    )
        .into_response())
}

/// 200 `ok`, or 503 saying why the store cannot serve (the database thread stopped, the
/// PostgreSQL server unreachable).
async fn healthz(State(st): State<Arc<AppState>>) -> Response {
    match st.store.health().await {
        Ok(()) => "ok\n".into_response(),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response(),
    }
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such endpoint")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(node: &str, hosts: &[&str]) -> Report {
        let mut r = Report::new(node, time::OffsetDateTime::UNIX_EPOCH);
        for h in hosts {
            r.registries.push(crate::report::RegistryReport {
                host: h.to_string(),
                verdict: crate::report::Verdict::Ok,
                message: String::new(),
                trust: vec![],
                probes: vec![],
                ca: None,
                harbor: None,
            });
        }
        r
    }

    #[test]
    fn admission_table() {
        let long = "n".repeat(254);
        let many: Vec<String> = (0..257).map(|i| format!("h{i}.example")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let cases: Vec<(Report, Result<Vec<&str>, &str>)> = vec![
            (
                doc("node-1", &["harbor.local:8443"]),
                Ok(vec!["harbor.local:8443"]),
            ),
            (doc("<script>alert(1)</script>", &[]), Ok(vec![])),
            (doc("n", &["HARBOR.Local"]), Ok(vec!["harbor.local"])),
            (
                doc("n", &["https://harbor.local/"]),
                Ok(vec!["harbor.local"]),
            ),
            (doc(&long, &[]), Err("at most 253")),
            (doc("a\nb", &[]), Err("control character")),
            (doc("a\u{0}", &[]), Err("control character")),
            (doc(" a", &[]), Err("whitespace")),
            (doc("n", &["../etc"]), Err("not a registry host")),
            (doc("n", &[""]), Err("not a registry host")),
            (doc("n", &["harbor.local/team"]), Err("has a path")),
            (doc("n", &["h.example", "H.example"]), Err("appears twice")),
            (doc("n", &many), Err("at most 256")),
        ];
        for (report, want) in cases {
            let name = report.node.clone();
            match (admit(report, 256), want) {
                (Ok(r), Ok(hosts)) => {
                    let got: Vec<&str> = r.registries.iter().map(|r| r.host.as_str()).collect();
                    assert_eq!(got, hosts, "{name}");
                }
                (Err(e), Err(part)) => assert!(e.contains(part), "{name}: {e}"),
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn one_access_policy_for_every_route() {
        let read_api = Access::Read { page: false };
        let read_page = Access::Read { page: true };
        for (method, path, want) in [
            (Method::POST, routes::REPORTS, Access::Write),
            (Method::DELETE, "/api/v1/nodes/n1", Access::Write),
            (Method::GET, "/api/v1/nodes/n1", read_api),
            (Method::GET, routes::NODES, read_api),
            (Method::GET, routes::REGISTRIES, read_api),
            (Method::GET, routes::EVENTS, read_api),
            (Method::POST, routes::PREFLIGHT, read_api),
            (Method::GET, routes::METRICS, read_api),
            (Method::GET, routes::PAGE, read_page),
            (Method::GET, "/nodes/n1", read_page),
            (Method::GET, "/registries/harbor.local:8443", read_page),
            (Method::GET, routes::HEALTHZ, Access::Open),
            // A GET of the write path is a read (405 from the router, after auth).
            (Method::GET, routes::REPORTS, read_api),
        ] {
            assert_eq!(access(&method, path), want, "{method} {path}");
        }
    }

    #[test]
    fn tokens_compare_by_digest() {
        let t = Token::new("s3cret");
        for (presented, want) in [
            ("s3cret", true),
            ("s3cre", false),
            ("s3cret ", false),
            ("", false),
            ("S3CRET", false),
        ] {
            assert_eq!(t.matches(presented.as_bytes()), want, "{presented:?}");
        }
        assert_eq!(format!("{t:?}"), "Token(<redacted>)");
    }

    #[test]
    fn credentials_are_read_from_bearer_or_basic() {
        let b64 = base64::engine::general_purpose::STANDARD.encode("admin:tok");
        let cases: Vec<(&str, bool, Option<&str>)> = vec![
            ("Bearer tok", false, Some("tok")),
            ("bearer   tok  ", false, Some("tok")),
            ("BEARER tok", false, Some("tok")),
            ("Bearertok", false, None),
            ("Token tok", true, None),
            ("Bearer", false, None),
            ("", false, None),
        ];
        let basic = format!("Basic {b64}");
        let mut cases = cases;
        cases.push((basic.as_str(), true, Some("tok")));
        cases.push((basic.as_str(), false, None));
        cases.push(("Basic !!!notbase64", true, None));
        for (value, allow_basic, want) in cases {
            let mut h = HeaderMap::new();
            if !value.is_empty() {
                h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
            }
            assert_eq!(
                presented(&h, allow_basic),
                want.map(|s| s.as_bytes().to_vec()),
                "{value:?}"
            );
        }
    }
}
