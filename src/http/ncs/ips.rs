//! `GET /v1/ncs/ips`: each project's NCS address list as last fetched, the error of the
//! last fetch if it failed, and whether the webhook enforces it. Behind the admin bearer
//! token ([`crate::http::auth::require_admin`]).

use axum::Router;
use axum::extract::State;
use axum::routing::get;

use crate::ncs::allowlist::NcsAddresses;

pub fn router(addresses: NcsAddresses, enforce: bool) -> Router {
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
