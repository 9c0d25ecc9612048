//! `GET`/`PUT /v1/log-level`: read or change the log filter of the running process.
//!
//! Behind the admin bearer token: debug logs are far larger, so whoever may raise the
//! level may fill the disk of the log pipeline.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use secrecy::SecretString;

use crate::auth::bearer_matches;
use crate::reports::answer;
use crate::telemetry::{LogLevel, LogLevelError};

/// A directive is a short line; anything longer is not one.
const MAX_DIRECTIVE_BYTES: usize = 4096;

#[derive(Clone)]
pub struct LogLevelState {
    /// Without a token the endpoint is off, like every admin endpoint.
    pub token: Option<SecretString>,
    pub level: LogLevel,
}

pub fn router(state: LogLevelState) -> Router {
    Router::new()
        .route("/v1/log-level", get(current).put(change))
        .with_state(state)
}

fn denied(state: &LogLevelState, headers: &HeaderMap) -> Option<Response> {
    let Some(token) = &state.token else {
        return Some(answer(
            StatusCode::NOT_FOUND,
            "the admin API is off: set server.admin_token",
        ));
    };
    if bearer_matches(headers, token) {
        None
    } else {
        Some(answer(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token",
        ))
    }
}

fn in_force(level: &LogLevel) -> Response {
    axum::Json(serde_json::json!({ "directive": level.current() })).into_response()
}

async fn current(State(state): State<LogLevelState>, headers: HeaderMap) -> Response {
    if let Some(refused) = denied(&state, &headers) {
        return refused;
    }
    in_force(&state.level)
}

async fn change(
    State(state): State<LogLevelState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(refused) = denied(&state, &headers) {
        return refused;
    }
    let Some(directive) = std::str::from_utf8(&body)
        .ok()
        .filter(|_| body.len() <= MAX_DIRECTIVE_BYTES)
    else {
        return answer(
            StatusCode::BAD_REQUEST,
            "expected a UTF-8 EnvFilter directive of at most 4096 bytes",
        );
    };
    match state.level.set(directive) {
        Ok(()) => in_force(&state.level),
        Err(e @ (LogLevelError::Empty | LogLevelError::Parse(_))) => {
            answer(StatusCode::BAD_REQUEST, &e.to_string())
        }
        Err(e @ LogLevelError::Reload(_)) => {
            answer(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())
        }
    }
}
