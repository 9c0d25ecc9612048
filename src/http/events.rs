//! `GET /v1/scenes/{name}/events?limit=N`: a scene's event history, newest first, from
//! the store (so it survives restarts and, with etcd, takeovers). Behind the admin
//! bearer token like every `/v1/` route.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

use super::answer;
use crate::clock::Clock;
use crate::model::{Event, rfc3339_ms};
use crate::scene_feeds::SceneFeeds;
use crate::store::{EventLog, Leadership};

/// How many events an answer holds when the request names no `limit`.
pub const DEFAULT_LIMIT: usize = 100;

#[derive(Clone)]
pub struct EventsState {
    /// Every configured scene: an unknown name is a 404.
    pub scenes: Arc<SceneFeeds>,
    pub events: EventLog,
    pub leadership: Leadership,
    pub clock: Clock,
}

pub fn router(state: EventsState) -> Router {
    Router::new()
        .route("/v1/scenes/{name}/events", get(events))
        .with_state(state)
}

/// One event as answered: its time also in RFC 3339.
#[derive(Serialize)]
struct Answered<'a> {
    at: String,
    #[serde(flatten)]
    event: &'a Event,
}

#[derive(Serialize)]
struct History<'a> {
    scene: &'a str,
    project: &'a str,
    events: Vec<Answered<'a>>,
}

async fn events(
    State(state): State<EventsState>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let max = state.events.bounds().per_scene;
    let limit = match limit(query.get("limit"), max) {
        Ok(limit) => limit,
        Err(message) => return answer::message(StatusCode::BAD_REQUEST, &message),
    };
    let Some(project) = state.scenes.project_of(&name) else {
        return answer::message(StatusCode::NOT_FOUND, "no such scene");
    };
    // With etcd a replica holds only the state of the projects it leads.
    if !state.leadership.acting(&project) {
        let leader = state.leadership.leaders().remove(&project);
        let message = match leader {
            Some(leader) => format!("replica {leader} leads project {project}: ask it"),
            None => format!("no replica leads project {project} now"),
        };
        return answer::message(StatusCode::SERVICE_UNAVAILABLE, &message);
    }
    let now_ms = state.clock.now_ms();
    match state.events.scene_events(&project, &name, limit, now_ms) {
        Ok(events) => axum::Json(History {
            scene: &name,
            project: &project,
            events: events
                .iter()
                .map(|event| Answered {
                    at: rfc3339_ms(event.at_ms),
                    event,
                })
                .collect(),
        })
        .into_response(),
        Err(e) => {
            tracing::error!(scene = %name, error = %e, "cannot read the scene's events");
            answer::message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot read the scene's events",
            )
        }
    }
}

/// `limit`: a whole number from 1 to `max` (the events kept per scene); without one,
/// [`DEFAULT_LIMIT`] (or `max` if smaller).
fn limit(text: Option<&String>, max: usize) -> Result<usize, String> {
    let Some(text) = text else {
        return Ok(DEFAULT_LIMIT.min(max));
    };
    match text.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "limit: expected a whole number from 1 to {max} (events.per_scene), got {text:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_is_a_whole_number_up_to_the_bound_and_a_hundred_by_default() {
        let parse = |text: &str, max| limit(Some(&text.to_string()), max);
        assert_eq!(limit(None, 1000), Ok(100));
        assert_eq!(limit(None, 30), Ok(30));
        assert_eq!(parse("1", 1000), Ok(1));
        assert_eq!(parse("1000", 1000), Ok(1000));
        for bad in ["0", "1001", "-1", "ten", "", "1.5"] {
            let e = parse(bad, 1000).unwrap_err();
            assert_eq!(
                e,
                format!(
                    "limit: expected a whole number from 1 to 1000 (events.per_scene), got {bad:?}"
                )
            );
        }
    }
}
