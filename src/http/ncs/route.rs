//! `POST /ncs/{project}`: the NCS webhook as NCS sees it (§2), each request
//! answered with a fixed JSON body (NCS wants JSON bodies and a 200 within 10 s).
//!
//! Two checks come before the notice reaches the [`Intake`], which decides the rest:
//!
//! | outcome label | status | decided by |
//! |---|---|---|
//! | `forbidden` | 403 | [`super::guard`], when enforced: sender not in the NCS address list |
//! | `too_large` | 413 | this route: raw body over [`MAX_BODY_BYTES`] |
//! | `unknown_project` | 404 | the intake |
//! | `bad_signature` | 401 | the intake |
//! | `malformed` | 400 | the intake (or a body that cannot be read) |
//! | `ignored`, `duplicate`, `stale`, `accepted` | 200 | the intake |
//! | `handed_over` | the leader's | this route: another replica leads the project; the notice went to it (see [`crate::http::peers`]) and its answer is relayed |
//! | `not_leading` | 503 | this route: another replica leads the project and could not be handed the notice, or nobody leads it now |
//!
//! A notice the intake cannot record gets 500, and one this replica may not act on 503,
//! so NCS resends it (to a replica that leads the project, or once etcd is back).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Router};

use crate::http::peers::{HANDED_OVER, Peers};
use crate::http::serve::Peer;
use crate::ncs::intake::{Intake, Receipt};
use crate::store::Leadership;
use crate::telemetry::Metrics;

/// Largest accepted request body. Media Pull notices are well under 2 KiB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What the handler reads and writes; the router shares one behind an `Arc` (a clone
/// per request of the metrics it holds was a visible share of intake's cost).
struct Webhook {
    intake: Arc<Intake>,
    metrics: Metrics,
    leadership: Leadership,
    peers: Option<Arc<Peers>>,
}

/// `POST /ncs/{project}`, with the body limit on the route. With `peers`, notices
/// for projects another replica leads go to it.
pub fn router(
    intake: Arc<Intake>,
    metrics: Metrics,
    leadership: Leadership,
    peers: Option<Arc<Peers>>,
) -> Router {
    Router::new()
        .route(
            "/ncs/{project}",
            post(receive).layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
        )
        .with_state(Arc::new(Webhook {
            intake,
            metrics,
            leadership,
            peers,
        }))
}

/// The status NCS is answered with for `outcome`.
pub(super) fn status(outcome: Receipt) -> StatusCode {
    match outcome {
        Receipt::Accepted | Receipt::Duplicate | Receipt::Stale | Receipt::Ignored => {
            StatusCode::OK
        }
        Receipt::BadSignature => StatusCode::UNAUTHORIZED,
        Receipt::Malformed => StatusCode::BAD_REQUEST,
        Receipt::UnknownProject => StatusCode::NOT_FOUND,
        Receipt::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Receipt::Forbidden => StatusCode::FORBIDDEN,
        Receipt::NotLeading => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// The answer to NCS, fixed per outcome.
fn answer(outcome: Receipt) -> Response {
    let body = match outcome {
        Receipt::Accepted => r#"{"status":"accepted"}"#,
        Receipt::Duplicate => r#"{"status":"duplicate"}"#,
        Receipt::Stale => r#"{"status":"stale"}"#,
        Receipt::Ignored => r#"{"status":"ignored"}"#,
        Receipt::BadSignature => r#"{"error":"bad signature"}"#,
        Receipt::Malformed => r#"{"error":"malformed notice"}"#,
        Receipt::UnknownProject => r#"{"error":"unknown project"}"#,
        Receipt::TooLarge => r#"{"error":"body too large"}"#,
        Receipt::Forbidden => r#"{"error":"address not allowed"}"#,
        Receipt::NotLeading => r#"{"error":"not leading this project now; retry"}"#,
    };
    json_answer(status(outcome), body)
}

fn json_answer(status: StatusCode, body: &'static str) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

async fn receive(
    State(webhook): State<Arc<Webhook>>,
    Path(project): Path<String>,
    peer: Option<Extension<ConnectInfo<Peer>>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let taken = match body {
        Ok(body) if !webhook.leadership.acting(&project) && webhook.intake.knows(&project) => {
            match webhook.intake.refusal(&project, &headers, &body) {
                Some(refused) => Ok(refused),
                None => {
                    let sender = peer.map(|Extension(ConnectInfo(Peer(p)))| p.ip());
                    return hand_over(&webhook, &project, &headers, body, sender).await;
                }
            }
        }
        Ok(body) => webhook.intake.take(&project, &headers, &body).await,
        Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => Ok(Receipt::TooLarge),
        Err(_) => Ok(Receipt::Malformed),
    };
    match taken {
        Ok(outcome) => {
            count(&webhook, outcome.label());
            answer(outcome)
        }
        Err(e) => {
            // Not acknowledged, so NCS resends; nothing was recorded for it.
            tracing::error!(project = %project, error = %e, "NCS notice not recorded");
            json_answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                r#"{"error":"store unavailable"}"#,
            )
        }
    }
}

fn count(webhook: &Webhook, outcome: &str) {
    webhook
        .metrics
        .webhook_notices
        .with_label_values(&[outcome])
        .inc();
}

/// Sends a notice for a project this replica does not lead to its leader, and relays
/// the answer; 503 (NCS resends) when there is no leader to hand it to.
async fn hand_over(
    webhook: &Webhook,
    project: &str,
    headers: &HeaderMap,
    body: Bytes,
    sender: Option<std::net::IpAddr>,
) -> Response {
    let leader = webhook.leadership.leader_address(project);
    let relayed = match (leader, &webhook.peers) {
        (Some(leader), Some(peers)) if !headers.contains_key(HANDED_OVER) => {
            peers
                .hand_over_notice(&leader, project, headers, body, sender)
                .await
        }
        _ => None,
    };
    match relayed {
        Some((status, body)) => {
            count(webhook, "handed_over");
            (
                status,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                body,
            )
                .into_response()
        }
        None => {
            count(webhook, Receipt::NotLeading.label());
            answer(Receipt::NotLeading)
        }
    }
}
