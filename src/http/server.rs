//! The HTTP routes: health, readiness, metrics and the scene status API.
//!
//! Everything here reads shared state; nothing writes back through it (DESIGN). The
//! routes come in three groups because they are exposed differently: probes are always
//! open, `/metrics` may move to its own address (`server.metrics_listen`), and the admin
//! routes sit behind the bearer token ([`super::auth`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::status::StatusBoard;
use crate::telemetry::Metrics;

/// What the handlers read.
#[derive(Clone)]
pub struct ServerState {
    pub board: StatusBoard,
    /// One flag per project: its first complete List succeeded.
    pub listed: Vec<Arc<AtomicBool>>,
    /// Cleared when shutdown begins, so Kubernetes stops routing to us first.
    pub accepting: Arc<AtomicBool>,
}

impl ServerState {
    fn ready(&self) -> bool {
        self.accepting.load(Ordering::Acquire)
            && self.listed.iter().all(|f| f.load(Ordering::Acquire))
    }
}

/// `/healthz` and `/readyz`: open, for Kubernetes' probes.
pub fn probes(state: ServerState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(state)
}

/// `/metrics`: open, for Prometheus.
pub fn metrics_route(metrics: Metrics) -> Router {
    Router::new()
        .route("/metrics", get(render_metrics))
        .with_state(metrics)
}

/// The read-only admin routes; the caller puts them behind [`super::auth::require_admin`].
pub fn admin(state: ServerState) -> Router {
    Router::new()
        .route("/v1/scenes", get(scenes))
        .route("/v1/scenes/{name}", get(scene))
        .with_state(state)
}

async fn readyz(State(state): State<ServerState>) -> Response {
    if state.ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

async fn render_metrics(State(metrics): State<Metrics>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics.render(),
    )
        .into_response()
}

async fn scenes(State(state): State<ServerState>) -> Response {
    axum::Json(state.board.all()).into_response()
}

async fn scene(State(state): State<ServerState>, Path(name): Path<String>) -> Response {
    match state.board.get(&name) {
        Some(s) => axum::Json(s).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({"message": "no such scene"})),
        )
            .into_response(),
    }
}
