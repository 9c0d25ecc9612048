//! The NCS IP query API (§2.6): `GET /v2/ncs/ip` as the NCS page documents it, and
//! `GET /v1/ncs/ip` as the REST reference does ([X]: both are served). Basic auth like
//! every REST call; the answer is `{"data":{"service":{"hosts":[{"primaryIP":".."}]}}}`.

use axum::http::{HeaderMap, Method};
use serde_json::json;

use super::auth::authenticate;
use super::error::ApiError;
use super::reply::Reply;
use super::{Inner, lock};

pub(crate) const PATHS: [&str; 2] = ["/v2/ncs/ip", "/v1/ncs/ip"];

pub(crate) fn is_ncs_ip(method: &Method, path: &str) -> bool {
    method == Method::GET && PATHS.contains(&path)
}

pub(crate) fn serve(inner: &Inner, headers: &HeaderMap) -> Result<Reply, ApiError> {
    authenticate(inner, headers)?;
    let hosts: Vec<serde_json::Value> = lock(&inner.ncs_ips)
        .iter()
        .map(|ip| json!({ "primaryIP": ip.to_string() }))
        .collect();
    Ok(Reply {
        body: Some(json!({ "data": { "service": { "hosts": hosts } } })),
        resource_id: None,
    })
}
