//! `GET /v1/scenes` and `GET /v1/scenes/{name}`: each scene's status and on-air player,
//! as the controllers last published it. Read-only, and behind the admin bearer token
//! ([`super::auth::require_admin`]) like everything that reads pullkeeper's view of the
//! players.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::answer;
use crate::model::StatusBoard;

pub fn router(board: StatusBoard) -> Router {
    Router::new()
        .route("/v1/scenes", get(scenes))
        .route("/v1/scenes/{name}", get(scene))
        .with_state(board)
}

async fn scenes(State(board): State<StatusBoard>) -> Response {
    axum::Json(board.all()).into_response()
}

async fn scene(State(board): State<StatusBoard>, Path(name): Path<String>) -> Response {
    match board.get(&name) {
        Some(s) => axum::Json(s).into_response(),
        None => answer::message(StatusCode::NOT_FOUND, "no such scene"),
    }
}
