//! `GET /v1/scenes` and `GET /v1/scenes/{name}`: each scene's status and on-air player,
//! as the controllers last published it. Read-only, and behind the admin bearer token
//! ([`super::auth::require_admin`]) like everything that reads pullkeeper's view of the
//! players.
//!
//! With leadership shared through etcd a replica publishes only the scenes of the
//! projects it leads; it asks the leaders of the others (see [`super::peers`]), so any
//! replica answers for every project. A leader that cannot be asked leaves its scenes
//! out, and the answer says so in `X-Pullkeeper-Unanswered` (the replicas' names).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use serde::Serialize;
use serde_json::Value;

use super::answer;
use super::peers::{HANDED_OVER, Peers};
use crate::model::{SceneStatus, StatusBoard};
use crate::store::Leadership;

/// Names the replicas whose scenes are missing from an answer.
pub const UNANSWERED: &str = "x-pullkeeper-unanswered";

#[derive(Clone)]
struct Scenes {
    board: StatusBoard,
    leadership: Leadership,
    peers: Option<Arc<Peers>>,
}

pub fn router(board: StatusBoard, leadership: Leadership, peers: Option<Arc<Peers>>) -> Router {
    Router::new()
        .route("/v1/scenes", get(scenes))
        .route("/v1/scenes/{name}", get(scene))
        .with_state(Scenes {
            board,
            leadership,
            peers,
        })
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

impl Scenes {
    /// The scenes this replica publishes, as JSON.
    fn local(&self) -> Vec<Value> {
        let leaders = self.leadership.leaders();
        self.board
            .all()
            .iter()
            .map(|scene| {
                let led = Led {
                    scene,
                    leader: leaders.get(&scene.project).map(String::as_str),
                };
                serde_json::to_value(led).expect("scenes serialize")
            })
            .collect()
    }

    /// The other replicas leading projects, each with its address; and those without
    /// one (they cannot be asked).
    fn other_leaders(&self) -> (BTreeMap<String, String>, Vec<String>) {
        let me = self.leadership.replica().unwrap_or_default();
        let mut others = BTreeMap::new();
        let mut unreachable = Vec::new();
        for (project, leader) in self.leadership.leaders() {
            if leader == me || others.contains_key(&leader) || unreachable.contains(&leader) {
                continue;
            }
            match self.leadership.leader_address(&project) {
                Some(address) => {
                    others.insert(leader, address);
                }
                None => unreachable.push(leader),
            }
        }
        (others, unreachable)
    }

    /// The local scenes, and unless the request was handed over, those the other
    /// leaders publish; with the replicas that could not be asked.
    async fn everywhere(&self, headers: &HeaderMap) -> (Vec<Value>, Vec<String>) {
        let mut scenes = self.local();
        let Some(peers) = self
            .peers
            .as_ref()
            .filter(|_| !headers.contains_key(HANDED_OVER))
        else {
            return (scenes, Vec::new());
        };
        let (others, mut unanswered) = self.other_leaders();
        let auth = headers.get(header::AUTHORIZATION);
        for (replica, address) in others {
            match peers.scenes(&address, auth).await {
                Some(theirs) => scenes.extend(theirs),
                None => unanswered.push(replica),
            }
        }
        unanswered.sort();
        (scenes, unanswered)
    }
}

fn with_unanswered(mut response: Response, unanswered: &[String]) -> Response {
    if !unanswered.is_empty()
        && let Ok(value) = HeaderValue::from_str(&unanswered.join(", "))
    {
        response.headers_mut().insert(UNANSWERED, value);
    }
    response
}

async fn scenes(State(s): State<Scenes>, headers: HeaderMap) -> Response {
    let (scenes, unanswered) = s.everywhere(&headers).await;
    with_unanswered(axum::Json(scenes).into_response(), &unanswered)
}

async fn scene(State(s): State<Scenes>, Path(name): Path<String>, headers: HeaderMap) -> Response {
    if let Some(scene) = s.board.get(&name) {
        let leaders = s.leadership.leaders();
        let leader = leaders.get(&scene.project).map(String::as_str);
        return axum::Json(Led {
            scene: &scene,
            leader,
        })
        .into_response();
    }
    let scene_name = !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let peers = s
        .peers
        .as_ref()
        .filter(|_| !headers.contains_key(HANDED_OVER));
    let mut unanswered = Vec::new();
    if let Some(peers) = peers.filter(|_| scene_name) {
        let (others, unreachable) = s.other_leaders();
        unanswered = unreachable;
        let auth = headers.get(header::AUTHORIZATION);
        for (replica, address) in others {
            match peers.scene(&address, &name, auth).await {
                Some(Some(scene)) => return axum::Json(scene).into_response(),
                Some(None) => {}
                None => unanswered.push(replica),
            }
        }
    }
    with_unanswered(
        answer::message(StatusCode::NOT_FOUND, "no such scene"),
        &unanswered,
    )
}
