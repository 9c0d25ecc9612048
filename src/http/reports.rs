//! App reports: the media-level signal Agora's API cannot give.
//!
//! An app backend that sees, through the RTC SDK's remote audio/video state callbacks,
//! that a UID stopped sending can say so here; enough reports within the configured
//! window count as a strike against that player (see the controller). The endpoint sits
//! behind the admin bearer token ([`super::auth`]): it lets its caller fail players.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;

use super::answer;
use crate::clock::Clock;
use crate::model::StatusBoard;
use crate::ncs::inbox::{Inbox, Observation, PlayerEvent};

#[derive(Clone)]
pub struct ReportsState {
    pub board: StatusBoard,
    /// Each project's inbox, by project id.
    pub inboxes: Arc<HashMap<String, Arc<Inbox>>>,
    pub clock: Clock,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Report {
    /// The UID whose remote media stopped.
    uid: u32,
}

pub fn router(state: ReportsState) -> Router {
    Router::new()
        .route("/v1/scenes/{name}/reports", post(report))
        .with_state(state)
}

async fn report(
    State(state): State<ReportsState>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let Ok(report) = serde_json::from_slice::<Report>(&body) else {
        return answer::message(StatusCode::BAD_REQUEST, r#"expected {"uid": <number>}"#);
    };
    let Some(scene) = state.board.get(&name) else {
        return answer::message(StatusCode::NOT_FOUND, "no such scene");
    };
    let Some(slot) = scene.slots.iter().find(|s| s.uid == Some(report.uid)) else {
        return answer::message(
            StatusCode::NOT_FOUND,
            "that uid is not a current player of the scene",
        );
    };
    let (Some(id), Some(inbox)) = (slot.id.clone(), state.inboxes.get(&scene.project)) else {
        return answer::message(StatusCode::CONFLICT, "the player has no id yet");
    };
    inbox.push(Observation {
        player_id: id,
        name: slot.name.clone(),
        lts: state.clock.now_ms(),
        event: PlayerEvent::Stalled,
    });
    (
        StatusCode::ACCEPTED,
        axum::Json(serde_json::json!({"status": "counted"})),
    )
        .into_response()
}
