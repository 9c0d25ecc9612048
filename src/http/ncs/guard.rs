//! The NCS address guard: when `ncs_allowlist.enforce` is on, only addresses in the
//! project's fetched NCS list ([`NcsAddresses`]) reach `/ncs/{project}`.
//!
//! A refused request gets 403 before its body is read: it is not verified, recorded or
//! acknowledged, so it changes nothing. Until a project's first list arrives every
//! notice is refused; NCS resends, and the List poll keeps the controller informed.

use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;

use super::forwarded::client_address;
use super::route;
use crate::http::serve::Peer;
use crate::ncs::allowlist::NcsAddresses;
use crate::ncs::intake::Receipt;
use crate::telemetry::Metrics;

/// What the webhook guard needs.
#[derive(Clone)]
pub struct Guard {
    pub addresses: NcsAddresses,
    pub trusted_proxies: Arc<Vec<IpNet>>,
    pub metrics: Metrics,
}

/// Lets only the fetched NCS addresses through to the routes of `ncs` (the webhook).
pub fn enforce(ncs: Router, guard: Guard) -> Router {
    ncs.route_layer(middleware::from_fn_with_state(guard, check))
}

async fn check(
    State(guard): State<Guard>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    Path(project): Path<String>,
    request: Request,
    next: Next,
) -> Response {
    let forwarded: Vec<&str> = request
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let client = client_address(peer.ip(), &forwarded, &guard.trusted_proxies);
    let allowed = client.and_then(|ip| guard.addresses.allows(&project, ip));
    if allowed == Some(true) {
        return next.run(request).await;
    }
    let why = match (client, allowed) {
        (None, _) => "a trusted proxy sent an unreadable X-Forwarded-For",
        (Some(_), None) => "no NCS address list fetched yet",
        (Some(_), Some(_)) => "address not in the NCS address list",
    };
    tracing::debug!(%project, %peer, client = ?client, why, "NCS request refused");
    let outcome = Receipt::Forbidden;
    guard
        .metrics
        .webhook_notices
        .with_label_values(&[outcome.label()])
        .inc();
    (
        route::status(outcome),
        axum::Json(serde_json::json!({ "error": why })),
    )
        .into_response()
}
