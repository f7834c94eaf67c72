//! The agent's HTTP endpoints: `/healthz` (the process answers), `/readyz` (503 until the
//! first sync finished), `/metrics` (Prometheus text from `crate::metrics`) and `/report`
//! (the current `regtrust.report/v1` document). Handlers only read a snapshot of the
//! agent's state; nothing here writes or waits on a sync.

use super::Shared;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/report", get(report))
        .with_state(shared)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(shared): State<Arc<Shared>>) -> (StatusCode, &'static str) {
    if shared.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the first sync has not finished\n",
        )
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        shared.metrics(),
    )
        .into_response()
}

async fn report(State(shared): State<Arc<Shared>>) -> Response {
    match shared.report() {
        Some(r) => ([(header::CONTENT_TYPE, "application/json")], r.to_json()).into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "application/json")],
            "{\"error\": \"no sync has finished yet\"}\n",
        )
            .into_response(),
    }
}
