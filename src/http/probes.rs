//! `/healthz` and `/readyz`: open, for Kubernetes' probes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use crate::store::Leadership;

/// What readiness is made of. The configuration is loaded, the store open and the
/// listener bound before the server starts, so only shutdown makes the app unready, and,
/// with leadership shared through etcd, not holding a lease (etcd unreachable): such a
/// replica can neither act nor record a notice, and the Service should send NCS to one
/// that can. Agora's answers are deliberately not part of it: a project whose List fails (bad
/// credentials, an Agora outage) is an alert (`pullkeeper_api_outage`), and taking the
/// only pod out of the Service for it would refuse every project's NCS notices.
#[derive(Clone)]
pub struct Readiness {
    /// Cleared when shutdown begins, so Kubernetes stops routing to us first.
    pub accepting: Arc<AtomicBool>,
    pub leadership: Leadership,
}

impl Readiness {
    fn ready(&self) -> bool {
        self.accepting.load(Ordering::Acquire) && self.leadership.connected()
    }
}

/// Logs "ready" once, when `/readyz` would first answer 200, so the log shows when the
/// pod could join the Service. Polled: the flags are set by independent controllers, and
/// a tenth of a second late in a log line costs nothing.
pub async fn log_when_ready(readiness: Readiness, stop: CancellationToken) {
    let mut every = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = every.tick() => if readiness.ready() {
                tracing::info!(version = env!("CARGO_PKG_VERSION"), "ready");
                return;
            },
        }
    }
}

pub fn router(readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(readiness)
}

async fn readyz(State(readiness): State<Readiness>) -> Response {
    if readiness.ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}
