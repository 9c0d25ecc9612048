//! `GET`/`PUT /v1/log-level`: read or change the log filter of the running process.
//!
//! Behind the admin bearer token ([`super::auth::require_admin`]): debug logs are far larger, so whoever may raise the
//! level may fill the disk of the log pipeline.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::answer;
use crate::telemetry::{LogLevel, LogLevelError};

/// A directive is a short line; anything longer is not one.
const MAX_DIRECTIVE_BYTES: usize = 4096;

#[derive(Clone)]
pub struct LogLevelState {
    pub level: LogLevel,
}

pub fn router(state: LogLevelState) -> Router {
    Router::new()
        .route("/v1/log-level", get(current).put(change))
        .with_state(state)
}

fn in_force(level: &LogLevel) -> Response {
    axum::Json(serde_json::json!({ "directive": level.current() })).into_response()
}

async fn current(State(state): State<LogLevelState>) -> Response {
    in_force(&state.level)
}

async fn change(State(state): State<LogLevelState>, body: axum::body::Bytes) -> Response {
    let Some(directive) = std::str::from_utf8(&body)
        .ok()
        .filter(|_| body.len() <= MAX_DIRECTIVE_BYTES)
    else {
        return answer::message(
            StatusCode::BAD_REQUEST,
            "expected a UTF-8 EnvFilter directive of at most 4096 bytes",
        );
    };
    match state.level.set(directive) {
        Ok(()) => in_force(&state.level),
        Err(e @ (LogLevelError::Empty | LogLevelError::Parse(_))) => {
            answer::message(StatusCode::BAD_REQUEST, &e.to_string())
        }
        Err(e @ LogLevelError::Reload(_)) => {
            answer::message(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())
        }
    }
}
