//! The control API: what tests use to steer the simulator.
//!
//! Each operation is one `Inner` method, called both by [`SimHandle`] (in-process tests)
//! and by the `/_sim/...` HTTP routes (tests that drive a separate `pullkeeper simulate`
//! process). Control requests bypass auth, QPS, faults and the request log, because
//! they are not part of the Agora API being simulated.
//!
//! | Route | Body | Answer |
//! |---|---|---|
//! | `POST /_sim/advance` | `{"ms":N}` | `{}` |
//! | `GET /_sim/projects/{appId}/players` | | `[SimPlayer]` |
//! | `POST /_sim/projects/{appId}/players` | `{"player":{...}}` as in Create | `{"id":".."}`, 404 unknown app |
//! | `POST /_sim/projects/{appId}/players/{id}/fail` | | `{"found":bool}`, 404 when not found |
//! | `POST /_sim/projects/{appId}/players/{id}/destroy` | `{"reason":".."}` (optional) | same |
//! | `PUT /_sim/projects/{appId}/ncs-url` | `{"url":".."\|null}` | `{"found":bool}` |
//! | `PUT /_sim/ncs-ips` | `{"ips":["IP",..]}` | `{}` |
//! | `GET /_sim/history` | | `[HistoryEntry]` |
//! | `POST /_sim/faults` | `FaultRule` | `{}` |
//! | `DELETE /_sim/faults` | | `{}` (every rule forgotten) |
//! | `GET /_sim/requests` | | `[RequestRecord]` |
//! | `GET /_sim/notices` | | `[DeliveryRecord]` |
//! | `GET /_sim/violations` | | `{"qps":N,"quota":N}` |
//! | `PUT /_sim/ncs-chaos` | `NcsChaos` | `{}` |
//! | `PUT /_sim/sources/{name}` | `{"mode":"up"\|"down"\|"frozen"}` | `{}` |
//! | `POST /_sim/sources/{name}/rtmp` | | `{"url":"rtmp://.."}` (starts its responder) |

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::faults::FaultRule;
use super::ncs::{DeliveryRecord, NcsChaos};
use super::sources::SourceMode;
use super::state::{HistoryEntry, SimPlayer, Violations};
use super::{Inner, SimHandle, lock};
use crate::agora::wire::{CreatePlayer, CreateRequest};
use crate::ncs::notice::destroy_reason;

/// One REST request as the simulator answered it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// `None` when the connection was dropped by a fault.
    pub status: Option<u16>,
    /// Simulator time, ms since start.
    pub at_ms: u64,
    pub request_id: String,
    /// Who sent it (pullkeeper names its replica here).
    pub user_agent: Option<String>,
}

impl Inner {
    pub(crate) fn advance(&self, d: Duration) {
        self.clock.advance(d);
        // Make due transitions (and their NCS events) happen now, then let the ticker
        // recompute its sleep.
        self.tick();
        self.wake.notify_one();
    }

    pub(crate) fn players(&self, app_id: &str) -> Vec<SimPlayer> {
        self.with_state(|st, _| (st.players(app_id), Vec::new()))
    }

    pub(crate) fn history(&self) -> Vec<HistoryEntry> {
        self.with_state(|st, _| (st.history.clone(), Vec::new()))
    }

    /// Fails every player in `ids` at one instant: no List can see some failed and
    /// others not. Returns how many existed.
    pub(crate) fn fail_players(&self, app_id: &str, ids: &[String]) -> usize {
        self.with_state(|st, now| {
            let events: Vec<_> = ids
                .iter()
                .filter_map(|id| st.fail(&self.clock, app_id, id, now))
                .collect();
            (events.len(), events)
        })
    }

    pub(crate) fn destroy_player(&self, app_id: &str, id: &str, reason: &str) -> bool {
        self.with_state(
            |st, now| match st.remove(&self.clock, app_id, id, reason, now) {
                Some(e) => (true, vec![e]),
                None => (false, Vec::new()),
            },
        )
    }

    /// A player created behind the client's back; no validation, quota or QPS.
    pub(crate) fn add_foreign_player(&self, app_id: &str, player: CreatePlayer) -> Option<String> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let id = self.with_state(|st, now| {
            let due = now + self.config.connect_delay;
            match st.insert(
                &self.clock,
                app_id,
                player,
                None,
                now,
                due,
                &request_id,
                true,
            ) {
                Some((p, e)) => (Some(p.id), vec![e]),
                None => (None, Vec::new()),
            }
        });
        self.wake.notify_one();
        id
    }

    pub(crate) fn set_ncs_url(&self, app_id: &str, url: Option<String>) -> bool {
        let mut st = lock(&self.state);
        match st.projects.get_mut(app_id) {
            Some(p) => {
                p.config.ncs_url = url;
                true
            }
            None => false,
        }
    }

    pub(crate) fn set_ncs_ips(&self, ips: Vec<IpAddr>) {
        *lock(&self.ncs_ips) = ips;
    }

    pub(crate) fn inject(&self, rule: FaultRule) {
        lock(&self.faults).add(rule);
    }

    pub(crate) fn clear_faults(&self) {
        lock(&self.faults).clear();
    }

    pub(crate) fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.requests).clone()
    }

    pub(crate) fn violations(&self) -> Violations {
        lock(&self.state).violations
    }
}

impl SimHandle {
    /// Lets the NCS receiver start after the simulator; `None` stops delivery.
    pub fn set_ncs_url(&self, app_id: &str, url: Option<String>) {
        self.inner.set_ncs_url(app_id, url);
    }

    /// Moves simulator time forward: QPS windows, list lag and connect delay all see it.
    pub fn advance(&self, d: Duration) {
        self.inner.advance(d);
    }

    /// Simulator time now, µs since start: the clock of [`HistoryEntry::created_at_us`].
    pub fn elapsed_us(&self) -> u64 {
        self.inner.clock.elapsed_us(self.inner.clock.now())
    }

    /// Live players of a project, ascending `createTs`.
    pub fn players(&self, app_id: &str) -> Vec<SimPlayer> {
        self.inner.players(app_id)
    }

    /// Every player ever created, including deleted ones.
    pub fn history(&self) -> Vec<HistoryEntry> {
        self.inner.history()
    }

    /// Status -> `failed`, with NCS event 4. False when the player does not exist.
    pub fn fail_player(&self, app_id: &str, id: &str) -> bool {
        self.inner.fail_players(app_id, &[id.to_string()]) == 1
    }

    /// Fails all of `ids` at once, as a storm does; returns how many existed.
    pub fn fail_players(&self, app_id: &str, ids: &[String]) -> usize {
        self.inner.fail_players(app_id, ids)
    }

    /// Removes the player as Agora would on its own, with NCS event 3 and `reason`.
    pub fn destroy_player(&self, app_id: &str, id: &str, reason: &str) -> bool {
        self.inner.destroy_player(app_id, id, reason)
    }

    /// Adds a player pullkeeper did not create; returns its id, or an empty string when
    /// `app_id` is not a configured project.
    pub fn add_foreign_player(&self, app_id: &str, player: CreatePlayer) -> String {
        self.inner
            .add_foreign_player(app_id, player)
            .unwrap_or_default()
    }

    /// Replaces what the NCS IP query API answers.
    pub fn set_ncs_ips(&self, ips: Vec<IpAddr>) {
        self.inner.set_ncs_ips(ips);
    }

    /// Answers the next `rule.count` matching REST requests with `rule.action`.
    pub fn inject(&self, rule: FaultRule) {
        self.inner.inject(rule);
    }

    /// Forgets every injected fault rule, used up or not.
    pub fn clear_faults(&self) {
        self.inner.clear_faults();
    }

    /// Every REST request so far, in arrival order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.inner.requests()
    }

    /// Every NCS delivery attempt so far.
    pub fn notices_sent(&self) -> Vec<DeliveryRecord> {
        self.inner.notifier.records()
    }

    /// NCS notices whose delivery has not ended yet (see `Notifier::outstanding`).
    pub fn ncs_outstanding(&self) -> usize {
        self.inner.notifier.outstanding()
    }

    /// Duplicate and reorder NCS notices from now on (or stop, with the default).
    pub fn set_ncs_chaos(&self, chaos: NcsChaos) {
        self.inner.notifier.set_chaos(chaos);
    }

    /// Requests Agora would have refused for QPS or quota, so far.
    pub fn violations(&self) -> Violations {
        self.inner.violations()
    }

    /// Takes source `name` down, freezes it, or brings it back (see `sources`).
    pub fn set_source(&self, name: &str, mode: SourceMode) {
        self.inner.set_source(name, mode);
    }

    /// The live HLS media playlist of source `name`.
    pub fn hls_url(&self, name: &str) -> String {
        format!("{}/_src/{name}/index.m3u8", self.base_url())
    }

    /// A master playlist of source `name` pointing at [`SimHandle::hls_url`].
    pub fn hls_master_url(&self, name: &str) -> String {
        format!("{}/_src/{name}/master.m3u8", self.base_url())
    }

    /// A plain file (FLV, MP4, an image: the bytes are the same) of source `name`.
    pub fn file_url(&self, name: &str, file: &str) -> String {
        format!("{}/_src/{name}/{file}", self.base_url())
    }

    /// The RTMP URL of source `name`, starting its handshake responder.
    pub async fn rtmp_url(&self, name: &str) -> std::io::Result<String> {
        self.inner.rtmp_url(name).await
    }
}

type Shared = State<Arc<Inner>>;

#[derive(Deserialize)]
struct AdvanceBody {
    ms: u64,
}

#[derive(Deserialize)]
struct DestroyBody {
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Deserialize)]
struct NcsIpsBody {
    ips: Vec<IpAddr>,
}

#[derive(Deserialize)]
struct SourceBody {
    mode: SourceMode,
}

#[derive(Deserialize)]
struct NcsUrlBody {
    url: Option<String>,
}

fn found(found: bool) -> Response {
    let status = if found {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    };
    (status, Json(json!({ "found": found }))).into_response()
}

pub(crate) fn router(inner: Arc<Inner>) -> Router {
    Router::new()
        .route("/_sim/advance", post(advance))
        .route(
            "/_sim/projects/{app_id}/players",
            get(players).post(add_foreign),
        )
        .route("/_sim/projects/{app_id}/players/{id}/fail", post(fail))
        .route(
            "/_sim/projects/{app_id}/players/{id}/destroy",
            post(destroy),
        )
        .route("/_sim/projects/{app_id}/ncs-url", put(ncs_url))
        .route("/_sim/ncs-ips", put(ncs_ips))
        .route("/_sim/history", get(history))
        .route("/_sim/faults", post(faults).delete(clear_faults))
        .route("/_sim/requests", get(requests))
        .route("/_sim/notices", get(notices))
        .route("/_sim/notices/outstanding", get(outstanding))
        .route("/_sim/violations", get(violations))
        .route("/_sim/ncs-chaos", put(ncs_chaos))
        .route("/_sim/sources/{name}", put(set_source))
        .route("/_sim/sources/{name}/rtmp", post(rtmp_source))
        .with_state(inner)
}

async fn advance(State(inner): Shared, Json(body): Json<AdvanceBody>) -> Json<serde_json::Value> {
    inner.advance(Duration::from_millis(body.ms));
    Json(json!({}))
}

async fn players(State(inner): Shared, Path(app_id): Path<String>) -> Json<Vec<SimPlayer>> {
    Json(inner.players(&app_id))
}

async fn add_foreign(
    State(inner): Shared,
    Path(app_id): Path<String>,
    Json(body): Json<CreateRequest>,
) -> Response {
    match inner.add_foreign_player(&app_id, body.player) {
        Some(id) => Json(json!({ "id": id })).into_response(),
        None => found(false),
    }
}

async fn fail(State(inner): Shared, Path((app_id, id)): Path<(String, String)>) -> Response {
    found(inner.fail_players(&app_id, &[id]) == 1)
}

async fn destroy(
    State(inner): Shared,
    Path((app_id, id)): Path<(String, String)>,
    body: Option<Json<DestroyBody>>,
) -> Response {
    let reason = body
        .and_then(|Json(b)| b.reason)
        .unwrap_or_else(|| destroy_reason::INTERNAL_ERROR.to_string());
    found(inner.destroy_player(&app_id, &id, &reason))
}

async fn ncs_url(
    State(inner): Shared,
    Path(app_id): Path<String>,
    Json(body): Json<NcsUrlBody>,
) -> Response {
    found(inner.set_ncs_url(&app_id, body.url))
}

async fn ncs_ips(State(inner): Shared, Json(body): Json<NcsIpsBody>) -> Json<serde_json::Value> {
    inner.set_ncs_ips(body.ips);
    Json(json!({}))
}

async fn history(State(inner): Shared) -> Json<Vec<HistoryEntry>> {
    Json(inner.history())
}

async fn faults(State(inner): Shared, Json(rule): Json<FaultRule>) -> Json<serde_json::Value> {
    inner.inject(rule);
    Json(json!({}))
}

async fn clear_faults(State(inner): Shared) -> Json<serde_json::Value> {
    inner.clear_faults();
    Json(json!({}))
}

async fn requests(State(inner): Shared) -> Json<Vec<RequestRecord>> {
    Json(inner.requests())
}

async fn notices(State(inner): Shared) -> Json<Vec<DeliveryRecord>> {
    Json(inner.notifier.records())
}

async fn outstanding(State(inner): Shared) -> Json<serde_json::Value> {
    Json(json!({ "outstanding": inner.notifier.outstanding() }))
}

async fn violations(State(inner): Shared) -> Json<Violations> {
    Json(inner.violations())
}

async fn ncs_chaos(State(inner): Shared, Json(chaos): Json<NcsChaos>) -> Json<serde_json::Value> {
    inner.notifier.set_chaos(chaos);
    Json(json!({}))
}

async fn set_source(
    State(inner): Shared,
    Path(name): Path<String>,
    Json(body): Json<SourceBody>,
) -> Json<serde_json::Value> {
    inner.set_source(&name, body.mode);
    Json(json!({}))
}

async fn rtmp_source(State(inner): Shared, Path(name): Path<String>) -> Response {
    match inner.rtmp_url(&name).await {
        Ok(url) => Json(json!({ "url": url })).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "message": e.to_string() })),
        )
            .into_response(),
    }
}
