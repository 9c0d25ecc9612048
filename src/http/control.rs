//! Operators' actions on a scene: a manual switch and pin, maintenance, failover drills.
//!
//! - `POST /v1/scenes/{name}/on-air` `{"slot": N, "pin": bool}`; `DELETE …/pin`;
//! - `POST` / `DELETE /v1/scenes/{name}/maintenance`;
//! - `POST /v1/scenes/{name}/drill` `{"mode": "switch"|"replace", "hold": seconds}`,
//!   and `GET /v1/drills/{id}`.
//!
//! A route decides nothing: it checks the request's shape (400 with what was wrong),
//! hands a typed [`ControlRequest`] to the controller of the scene's project and answers
//! with what that controller's plan decided (409 with the reason when refused). Behind
//! the admin bearer token ([`super::auth`]) like every `/v1/` route.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::answer;
use crate::model::{ControlAnswer, ControlMailbox, ControlRequest, DrillMode, Drills};
use crate::scene_feeds::SceneFeeds;

/// How long a request waits for its controller: one pass, after the one in progress.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// The default and the longest hold of a drill, in seconds.
pub const DRILL_HOLD_DEFAULT_S: u64 = 30;
pub const DRILL_HOLD_MAX_S: u64 = 3600;

#[derive(Clone)]
pub struct ControlState {
    /// The configured scenes, to find a scene's project.
    pub scenes: Arc<SceneFeeds>,
    /// Each project's mailbox, by project id.
    pub mailboxes: Arc<HashMap<String, Arc<ControlMailbox>>>,
    pub drills: Drills,
}

pub fn router(state: ControlState) -> Router {
    Router::new()
        .route("/v1/scenes/{name}/on-air", post(switch))
        .route("/v1/scenes/{name}/pin", axum::routing::delete(unpin))
        .route(
            "/v1/scenes/{name}/maintenance",
            post(maintenance_on).delete(maintenance_off),
        )
        .route("/v1/scenes/{name}/drill", post(drill))
        .route("/v1/drills/{id}", get(drill_report))
        .with_state(state)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SwitchBody {
    slot: u32,
    #[serde(default)]
    pin: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DrillBody {
    mode: DrillMode,
    /// Seconds.
    #[serde(default)]
    hold: Option<u64>,
}

async fn switch(
    State(state): State<ControlState>,
    Path(scene): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let body: SwitchBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return bad(r#"{"slot": N, "pin": true|false}"#, &e),
    };
    let request = ControlRequest::Switch {
        scene,
        slot: body.slot,
        pin: body.pin,
    };
    ask(&state, request).await
}

async fn unpin(State(state): State<ControlState>, Path(scene): Path<String>) -> Response {
    ask(&state, ControlRequest::Unpin { scene }).await
}

async fn maintenance_on(State(state): State<ControlState>, Path(scene): Path<String>) -> Response {
    ask(&state, ControlRequest::Maintenance { scene, on: true }).await
}

async fn maintenance_off(State(state): State<ControlState>, Path(scene): Path<String>) -> Response {
    ask(&state, ControlRequest::Maintenance { scene, on: false }).await
}

async fn drill(
    State(state): State<ControlState>,
    Path(scene): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    const SHAPE: &str = r#"{"mode": "switch"|"replace", "hold": seconds}"#;
    let body: DrillBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return bad(SHAPE, &e),
    };
    let hold = body.hold.unwrap_or(DRILL_HOLD_DEFAULT_S);
    if !(1..=DRILL_HOLD_MAX_S).contains(&hold) {
        let message = format!("hold must be 1..={DRILL_HOLD_MAX_S} seconds, got {hold}");
        return answer::message(StatusCode::BAD_REQUEST, &message);
    }
    let request = ControlRequest::Drill {
        scene,
        mode: body.mode,
        hold_ms: hold * 1000,
    };
    ask(&state, request).await
}

async fn drill_report(State(state): State<ControlState>, Path(id): Path<String>) -> Response {
    match state.drills.get(&id) {
        Some(report) => axum::Json(report).into_response(),
        None => answer::message(StatusCode::NOT_FOUND, "no such drill"),
    }
}

fn bad(shape: &str, e: &serde_json::Error) -> Response {
    let message = format!("expected {shape}: {e}");
    answer::message(StatusCode::BAD_REQUEST, &message)
}

/// Hands `request` to the controller of its scene's project and answers with its word.
async fn ask(state: &ControlState, request: ControlRequest) -> Response {
    let project = state.scenes.project_of(request.scene());
    let Some(mailbox) = project.and_then(|p| state.mailboxes.get(&p).cloned()) else {
        return answer::message(StatusCode::NOT_FOUND, "no such scene");
    };
    let answer = match tokio::time::timeout(ANSWER_WITHIN, mailbox.send(request)).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(_)) | Err(_) => {
            return answer::message(
                StatusCode::SERVICE_UNAVAILABLE,
                "the scene's project has no controller answering here now",
            );
        }
    };
    match answer {
        ControlAnswer::Done {
            active_version,
            drill,
        } => {
            let mut body = serde_json::json!({ "active_version": active_version });
            if let Some(id) = drill {
                body["drill"] = serde_json::Value::String(id);
            }
            axum::Json(body).into_response()
        }
        ControlAnswer::Refused { reason } => answer::message(StatusCode::CONFLICT, &reason),
        ControlAnswer::NoScene => answer::message(StatusCode::NOT_FOUND, "no such scene"),
        ControlAnswer::Unavailable { reason } => {
            answer::message(StatusCode::SERVICE_UNAVAILABLE, &reason)
        }
    }
}
