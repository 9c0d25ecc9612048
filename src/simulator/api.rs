//! The Media Pull REST API (§1.2–§1.10).
//!
//! One fallback handler parses the path itself, because the order of checks is part of
//! the behaviour under test: injected fault, then auth (401), unknown project (403),
//! region (400), QPS (429), body (400), duplicate name (409), quota (429).

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::auth::authenticate;
use super::conn::KillSwitch;
use super::control::RequestRecord;
use super::error::ApiError;
use super::faults::FaultAction;
use super::query::QueryParams;
use super::reply::Reply;
use super::state::Api;
use super::{Inner, lock, ncs_ip, ops};
use crate::agora::wire::Region;

const X_REQUEST_ID: &str = "x-request-id";
const X_RESOURCE_ID: &str = "x-resource-id";

pub(crate) fn router(inner: Arc<Inner>) -> Router {
    Router::new().fallback(handle).with_state(inner)
}

/// A REST operation recognised from method and path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Op {
    Create { region: String },
    Delete { region: String, id: String },
    Update { region: String, id: String },
    List { region: Option<String> },
}

/// `(app_id, op)` for a Media Pull path, `None` for anything else.
fn route(method: &Method, path: &str) -> Option<(String, Op)> {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (region, rest) = match segs.first() {
        Some(&"v1") => (None, &segs[..]),
        Some(r) => (Some((*r).to_string()), &segs[1..]),
        None => return None,
    };
    let (app, id) = match rest {
        ["v1", "projects", app, "cloud-player", "players"] => (*app, None),
        ["v1", "projects", app, "cloud-player", "players", id] if !id.is_empty() => {
            (*app, Some(*id))
        }
        _ => return None,
    };
    let op = match (method.clone(), region, id) {
        (Method::POST, Some(region), None) => Op::Create { region },
        (Method::GET, region, None) => Op::List { region },
        (Method::DELETE, Some(region), Some(id)) => Op::Delete {
            region,
            id: id.into(),
        },
        (Method::PATCH, Some(region), Some(id)) => Op::Update {
            region,
            id: id.into(),
        },
        _ => return None,
    };
    Some((app.to_string(), op))
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    ConnectInfo(kill): ConnectInfo<KillSwitch>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = headers
        .get(X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let seen = Seen {
        method: &method,
        uri: &uri,
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok()),
        request_id: &request_id,
    };
    let path_and_query = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
    let fault = lock(&inner.faults).take(method.as_str(), path_and_query);
    let routed = route(&method, uri.path());
    let is_update = matches!(routed, Some((_, Op::Update { .. })));
    let answer = || {
        if ncs_ip::is_ncs_ip(&method, uri.path()) {
            ncs_ip::serve(&inner, &headers)
        } else {
            serve(&inner, routed, &headers, uri.query(), &body, &request_id)
        }
    };

    let result = match fault {
        Some(FaultAction::Drop) => {
            kill.kill();
            log(&inner, &seen, None);
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        Some(FaultAction::Status(code)) => Err(ApiError::Injected(code)),
        Some(FaultAction::Delay(d)) => {
            tokio::time::sleep(d).await;
            answer()
        }
        Some(FaultAction::Cut) | None => answer(),
    };

    let response = match result {
        Ok(reply) => {
            let mut resp = match reply.body {
                Some(v) => axum::Json(v).into_response(),
                None => Body::empty().into_response(),
            };
            set_header(
                resp.headers_mut(),
                X_RESOURCE_ID,
                reply.resource_id.as_deref(),
            );
            set_header(resp.headers_mut(), X_REQUEST_ID, Some(&request_id));
            resp
        }
        Err(err) => {
            let status = err.status();
            let mut resp =
                (status, axum::Json(json!({ "message": err.to_string() }))).into_response();
            if let ApiError::Conflict { existing_id } = &err {
                set_header(resp.headers_mut(), X_RESOURCE_ID, Some(existing_id));
            }
            // RA: no X-Request-ID on 401, nor on any non-2XX answer of Update (§1.5).
            if status != StatusCode::UNAUTHORIZED && !is_update {
                set_header(resp.headers_mut(), X_REQUEST_ID, Some(&request_id));
            }
            resp
        }
    };
    if fault == Some(FaultAction::Cut) {
        log(&inner, &seen, None);
        return cut(response, &kill).await;
    }
    log(&inner, &seen, Some(response.status().as_u16()));
    response
}

/// Lets `response` leave only up to the middle of its body (the middle of its head when
/// the body is empty), then kills the connection. hyper adds `date` (always 29
/// characters) to what is counted here; `content-length` is set explicitly so the
/// client knows the answer is incomplete.
async fn cut(response: Response, kill: &KillSwitch) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    let status_line = format!("HTTP/1.1 {}\r\n", parts.status).len();
    let headers: usize = parts
        .headers
        .iter()
        .map(|(k, v)| k.as_str().len() + 2 + v.len() + 2)
        .sum();
    let head = status_line + headers + "date: \r\n".len() + 29 + 2;
    kill.cut_after(if bytes.is_empty() {
        head / 2
    } else {
        head + bytes.len() / 2
    });
    Response::from_parts(parts, Body::from(bytes))
}

fn set_header(headers: &mut HeaderMap, name: &'static str, value: Option<&str>) {
    if let Some(v) = value.and_then(|v| HeaderValue::from_str(v).ok()) {
        headers.insert(name, v);
    }
}

/// What the request log keeps of a request.
struct Seen<'a> {
    method: &'a Method,
    uri: &'a Uri,
    user_agent: Option<&'a str>,
    request_id: &'a str,
}

fn log(inner: &Inner, seen: &Seen<'_>, status: Option<u16>) {
    let record = RequestRecord {
        method: seen.method.to_string(),
        path: seen.uri.path().to_string(),
        query: seen.uri.query().map(str::to_string),
        status,
        at_ms: inner.clock.elapsed_ms(inner.clock.now()),
        request_id: seen.request_id.to_string(),
        user_agent: seen.user_agent.map(str::to_string),
    };
    lock(&inner.requests).push(record);
}

/// Checks auth, project and region, then runs the operation.
fn serve(
    inner: &Inner,
    routed: Option<(String, Op)>,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &[u8],
    request_id: &str,
) -> Result<Reply, ApiError> {
    authenticate(inner, headers)?;
    let Some((app_id, op)) = routed else {
        return Err(ApiError::NotFound);
    };
    if !lock(&inner.state).projects.contains_key(&app_id) {
        return Err(ApiError::NotEnabled);
    }
    let region = match &op {
        Op::Create { region } | Op::Delete { region, .. } | Op::Update { region, .. } => {
            Some(region.as_str())
        }
        Op::List { region } => region.as_deref(),
    };
    let region = match region {
        Some(r) => Some(Region::parse(r).ok_or_else(|| ApiError::param("region"))?),
        None => None,
    };
    let params = QueryParams::parse(query);
    match op {
        Op::Create { .. } => {
            let api = if super::validate::create_has_name(body) {
                Api::CreateWithName
            } else {
                Api::CreateWithoutName
            };
            ops::admit(inner, &app_id, api)?;
            ops::create(inner, &app_id, region, body, request_id)
        }
        Op::Delete { id, .. } => {
            ops::admit(inner, &app_id, Api::Delete)?;
            ops::delete(inner, &app_id, &id)
        }
        Op::Update { id, .. } => {
            ops::admit(inner, &app_id, Api::Update)?;
            ops::update(inner, &app_id, &id, params.get("sequence"), body)
        }
        Op::List { .. } => {
            let api = if params.get("filter").is_some() {
                Api::ListFiltered
            } else {
                Api::List
            };
            ops::admit(inner, &app_id, api)?;
            ops::list(inner, &app_id, &params)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_follow_section_1_2() {
        let p = "/na/v1/projects/app/cloud-player/players";
        assert_eq!(
            route(&Method::POST, p),
            Some((
                "app".into(),
                Op::Create {
                    region: "na".into()
                }
            ))
        );
        assert_eq!(
            route(&Method::GET, p),
            Some((
                "app".into(),
                Op::List {
                    region: Some("na".into())
                }
            ))
        );
        assert_eq!(
            route(&Method::GET, "/v1/projects/app/cloud-player/players"),
            Some(("app".into(), Op::List { region: None }))
        );
        assert_eq!(
            route(
                &Method::PATCH,
                "/EU/v1/projects/app/cloud-player/players/abc"
            ),
            Some((
                "app".into(),
                Op::Update {
                    region: "EU".into(),
                    id: "abc".into()
                }
            ))
        );
        assert_eq!(
            route(&Method::POST, "/v1/projects/app/cloud-player/players"),
            None
        );
        assert_eq!(
            route(&Method::GET, "/na/v1/projects/app/cloud-player/other"),
            None
        );
    }
}
