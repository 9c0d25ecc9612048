//! Requests about one scene that only the replica leading its project can answer (its
//! history, the operator's actions): with leadership shared through etcd, a replica that
//! does not lead the project passes the request to the one that does and relays the
//! answer, so any replica behind the Service accepts them. The leader acts through its
//! controller and writes through the shared store, as for a request made to it.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

use super::answer;
use super::peers::{HANDED_OVER, Peers};
use crate::scene_feeds::SceneFeeds;
use crate::store::Leadership;

/// Largest body passed on: the operator's requests are a few bytes of JSON.
const MAX_BODY: usize = 64 * 1024;

#[derive(Clone)]
pub struct ToLeader {
    pub scenes: Arc<SceneFeeds>,
    pub leadership: Leadership,
    pub peers: Option<Arc<Peers>>,
}

/// Puts `/v1/scenes/{name}/…` routes of `routes` behind the hand-over to the leader.
pub fn route_to_leader(routes: Router, to: ToLeader) -> Router {
    routes.route_layer(middleware::from_fn_with_state(to, relay))
}

async fn relay(State(to): State<ToLeader>, request: Request, next: Next) -> Response {
    let Some(peers) = to.peers.as_ref() else {
        return next.run(request).await;
    };
    let project = request
        .uri()
        .path()
        .strip_prefix("/v1/scenes/")
        .and_then(|rest| rest.split('/').next())
        .and_then(|scene| to.scenes.project_of(scene));
    let Some(project) = project else {
        return next.run(request).await;
    };
    if to.leadership.acting(&project) || request.headers().contains_key(HANDED_OVER) {
        return next.run(request).await;
    }
    let Some(leader) = to.leadership.leader_address(&project) else {
        let message = match to.leadership.leaders().remove(&project) {
            Some(leader) => {
                format!("replica {leader} leads project {project} and cannot be reached")
            }
            None => format!("no replica leads project {project} now"),
        };
        return answer::message(StatusCode::SERVICE_UNAVAILABLE, &message);
    };
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return answer::message(StatusCode::PAYLOAD_TOO_LARGE, "body too large");
    };
    let path = parts
        .uri
        .path_and_query()
        .map_or(parts.uri.path(), |p| p.as_str());
    match peers
        .relay(&leader, &parts.method, path, &parts.headers, body)
        .await
    {
        Some((status, content_type, body)) => {
            let mut response = (status, Body::from(body)).into_response();
            if let Some(content_type) = content_type {
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, content_type);
            }
            response
        }
        None => answer::message(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("the replica leading project {project} did not answer"),
        ),
    }
}
