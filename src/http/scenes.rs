//! `GET /v1/scenes` and `GET /v1/scenes/{name}`: each scene's status and on-air player,
//! as the controllers last published it. Read-only, and behind the admin bearer token
//! ([`super::auth::require_admin`]) like everything that reads pullkeeper's view of the
//! players.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use serde::Serialize;

use super::answer;
use crate::model::{SceneStatus, StatusBoard};
use crate::store::Leadership;

#[derive(Clone)]
struct Scenes {
    board: StatusBoard,
    leadership: Leadership,
}

pub fn router(board: StatusBoard, leadership: Leadership) -> Router {
    Router::new()
        .route("/v1/scenes", get(scenes))
        .route("/v1/scenes/{name}", get(scene))
        .with_state(Scenes { board, leadership })
}

/// A scene as published, with the replica leading its project when leadership is
/// shared through etcd (absent for the single replica).
#[derive(Serialize)]
struct Led<'a> {
    #[serde(flatten)]
    scene: &'a SceneStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    leader: Option<&'a str>,
}

async fn scenes(State(s): State<Scenes>) -> Response {
    let leaders = s.leadership.leaders();
    let all = s.board.all();
    let led: Vec<Led<'_>> = all
        .iter()
        .map(|scene| Led {
            scene,
            leader: leaders.get(&scene.project).map(String::as_str),
        })
        .collect();
    axum::Json(led).into_response()
}

async fn scene(State(s): State<Scenes>, Path(name): Path<String>) -> Response {
    match s.board.get(&name) {
        Some(scene) => {
            let leaders = s.leadership.leaders();
            let leader = leaders.get(&scene.project).map(String::as_str);
            axum::Json(Led {
                scene: &scene,
                leader,
            })
            .into_response()
        }
        None => answer::message(StatusCode::NOT_FOUND, "no such scene"),
    }
}
