//! The NCS address list (§2.6) of each project: what the refreshers fetched, what
//! `GET /v1/ncs/ips` shows, and, when enforcement is on, who may call `/ncs/{project}`.
//!
//! A refused request gets 403 before its body is read: it is not verified, recorded or
//! acknowledged, so it changes nothing. Until a project's first list arrives every
//! notice is refused; NCS resends, and the List poll keeps the controller informed.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ipnet::IpNet;
use serde::Serialize;

use super::forwarded::client_address;
use super::receiver::Outcome;
use crate::http::serve::Peer;
use crate::telemetry::Metrics;

/// The last good list of one project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IpList {
    pub ips: Vec<IpAddr>,
    /// Unix seconds.
    pub fetched_at: u64,
    /// The API path that answered (`/v2/ncs/ip` or `/v1/ncs/ip`).
    pub source: &'static str,
}

/// A project's list and how the last fetch went.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProjectIps {
    /// `None` until a fetch succeeds; a failed fetch never clears it.
    pub list: Option<IpList>,
    /// The error of the last fetch, if it failed; cleared by a success.
    pub last_error: Option<String>,
}

/// Every project's list, shared by the refreshers (writers) and the readers.
#[derive(Debug, Clone, Default)]
pub struct NcsAddresses {
    inner: Arc<RwLock<BTreeMap<String, ProjectIps>>>,
}

impl NcsAddresses {
    pub fn succeeded(&self, project: &str, list: IpList) {
        let mut map = self.inner.write().unwrap_or_else(|e| e.into_inner());
        map.insert(
            project.to_string(),
            ProjectIps {
                list: Some(list),
                last_error: None,
            },
        );
    }

    pub fn failed(&self, project: &str, error: String) {
        let mut map = self.inner.write().unwrap_or_else(|e| e.into_inner());
        map.entry(project.to_string()).or_default().last_error = Some(error);
    }

    pub fn all(&self) -> BTreeMap<String, ProjectIps> {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether `ip` is in the project's list; `None` when there is no list yet.
    fn allows(&self, project: &str, ip: IpAddr) -> Option<bool> {
        let map = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let list = map.get(project)?.list.as_ref()?;
        Some(list.ips.contains(&ip))
    }
}

/// `GET /v1/ncs/ips`; the caller puts it behind [`crate::http::auth::require_admin`].
pub fn admin_route(addresses: NcsAddresses, enforce: bool) -> Router {
    Router::new()
        .route(
            "/v1/ncs/ips",
            get(move |State(addresses): State<NcsAddresses>| async move {
                axum::Json(serde_json::json!({
                    "enforce": enforce,
                    "projects": addresses.all(),
                }))
            }),
        )
        .with_state(addresses)
}

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
    let outcome = Outcome::Forbidden;
    guard
        .metrics
        .webhook_notices
        .with_label_values(&[outcome.label()])
        .inc();
    (
        outcome.status(),
        axum::Json(serde_json::json!({ "error": why })),
    )
        .into_response()
}
