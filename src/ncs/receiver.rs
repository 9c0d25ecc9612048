//! The NCS webhook receiver: `POST /ncs/{project}` (reference §2).
//!
//! Order of checks, each a fixed answer (NCS wants JSON bodies and a 200 within 10 s):
//!
//! | step | failure | status | outcome label |
//! |---|---|---|---|
//! | sender in the NCS address list, when enforced ([`super::allowlist`]) | not | 403 | `forbidden` |
//! | raw body ≤ [`MAX_BODY_BYTES`] | larger | 413 | `too_large` |
//! | project configured | unknown | 404 | `unknown_project` |
//! | `Agora-Signature-V2` (SHA256), else `Agora-Signature` (SHA1) | missing/wrong | 401 | `bad_signature` |
//! | JSON envelope ([`Notice`]) | malformed | 400 | `malformed` |
//! | productId 4, eventType 1/3/4 | other | 200 | `ignored` |
//! | [`MediaPullPayload`] decodes | malformed | 400 | `malformed` |
//! | first delivery of the notice id | resend | 200 | `duplicate` |
//! | `lts` newer than the player's last | not newer | 200 | `stale` |
//! | pushed to the project's [`Inbox`] | — | 200 | `accepted` |
//!
//! Nothing is recorded before the signature and the payload check out, and the notice id
//! is written to the notice log ([`super::dedupe`]) before the 200 that acknowledges it.
//! The handler never waits on Agora or the controller. Neither the secret nor a signature
//! is ever logged or returned.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::dedupe::NoticeLog;
use super::inbox::{Inbox, Observation, PlayerEvent};
use super::notice::{
    EVENT_PLAYER_CREATED, EVENT_PLAYER_DESTROYED, EVENT_PLAYER_STATUS, MediaPullPayload, Notice,
    PRODUCT_MEDIA_PULL,
};
pub use super::order::{LtsOrder, Stage};
use super::signature::{self, Algorithm};
use crate::telemetry::Metrics;

/// Largest accepted request body. Media Pull notices are well under 2 KiB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// How far (in `lts` ms) behind the newest event a player's ordering entry is kept.
pub const ORDER_RETAIN_MS: u64 = 60 * 60 * 1000;

/// Most players whose last `lts` is kept in memory.
pub const ORDER_CAP: usize = 100_000;

/// One pullkeeper project as the receiver sees it.
pub struct NcsProject {
    /// The NCS secret of the project's Media Pull product (Console → Notifications).
    pub secret: SecretString,
    /// Where accepted observations go.
    pub inbox: Arc<Inbox>,
}

/// What the receiver's handler reads and writes; the router shares one behind an `Arc`
/// (a clone per request of the metrics it holds was a visible share of intake's cost).
pub struct NcsState {
    /// By pullkeeper project id (the `{project}` of the route).
    pub projects: Arc<HashMap<String, NcsProject>>,
    pub notices: NoticeLog,
    pub metrics: Metrics,
    order: Arc<Mutex<LtsOrder>>,
}

impl NcsState {
    pub fn new(
        projects: HashMap<String, NcsProject>,
        notices: NoticeLog,
        metrics: Metrics,
    ) -> Self {
        NcsState {
            projects: Arc::new(projects),
            notices,
            metrics,
            order: Arc::new(Mutex::new(LtsOrder::new(ORDER_RETAIN_MS, ORDER_CAP))),
        }
    }
}

/// `POST /ncs/{project}`, with the body limit on the route.
pub fn router(state: NcsState) -> Router {
    Router::new()
        .route(
            "/ncs/{project}",
            post(receive).layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
        )
        .with_state(Arc::new(state))
}

/// How one request ended; each is one value of the `outcome` metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    Duplicate,
    Stale,
    Ignored,
    BadSignature,
    Malformed,
    UnknownProject,
    TooLarge,
    /// Refused by the address allowlist before anything else was looked at.
    Forbidden,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Duplicate => "duplicate",
            Outcome::Stale => "stale",
            Outcome::Ignored => "ignored",
            Outcome::BadSignature => "bad_signature",
            Outcome::Malformed => "malformed",
            Outcome::UnknownProject => "unknown_project",
            Outcome::TooLarge => "too_large",
            Outcome::Forbidden => "forbidden",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Outcome::Accepted | Outcome::Duplicate | Outcome::Stale | Outcome::Ignored => {
                StatusCode::OK
            }
            Outcome::BadSignature => StatusCode::UNAUTHORIZED,
            Outcome::Malformed => StatusCode::BAD_REQUEST,
            Outcome::UnknownProject => StatusCode::NOT_FOUND,
            Outcome::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Outcome::Forbidden => StatusCode::FORBIDDEN,
        }
    }

    /// The JSON answer, fixed per outcome.
    fn body(self) -> &'static str {
        match self {
            Outcome::Accepted => r#"{"status":"accepted"}"#,
            Outcome::Duplicate => r#"{"status":"duplicate"}"#,
            Outcome::Stale => r#"{"status":"stale"}"#,
            Outcome::Ignored => r#"{"status":"ignored"}"#,
            Outcome::BadSignature => r#"{"error":"bad signature"}"#,
            Outcome::Malformed => r#"{"error":"malformed notice"}"#,
            Outcome::UnknownProject => r#"{"error":"unknown project"}"#,
            Outcome::TooLarge => r#"{"error":"body too large"}"#,
            Outcome::Forbidden => r#"{"error":"address not allowed"}"#,
        }
    }

    fn response(self) -> Response {
        json_answer(self.status(), self.body())
    }
}

fn json_answer(status: StatusCode, body: &'static str) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

async fn receive(
    State(state): State<Arc<NcsState>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match handle(&state, &project, &headers, body).await {
        Ok(outcome) => {
            state
                .metrics
                .webhook_notices
                .with_label_values(&[outcome.label()])
                .inc();
            outcome.response()
        }
        Err(e) => {
            // Not acknowledged, so NCS resends; nothing was recorded for it.
            tracing::error!(project = %project, error = %e, "NCS notice not recorded");
            json_answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                r#"{"error":"store unavailable"}"#,
            )
        }
    }
}

async fn handle(
    state: &NcsState,
    project: &str,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Outcome, crate::store::StoreError> {
    let body = match body {
        Ok(b) => b,
        Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => return Ok(Outcome::TooLarge),
        Err(_) => return Ok(Outcome::Malformed),
    };
    let Some(proj) = state.projects.get(project) else {
        return Ok(Outcome::UnknownProject);
    };
    if !signature_ok(headers, proj.secret.expose_secret().as_bytes(), &body) {
        tracing::debug!(project, "NCS notice with a missing or wrong signature");
        return Ok(Outcome::BadSignature);
    }
    let Ok(notice) = serde_json::from_slice::<Envelope>(&body) else {
        return Ok(Outcome::Malformed);
    };
    let observation = match decode_payload(notice.product_id, notice.event_type, || {
        serde_json::from_str(notice.payload.get()).ok()
    }) {
        Decoded::Ignored => return Ok(Outcome::Ignored),
        Decoded::Malformed => return Ok(Outcome::Malformed),
        Decoded::Observation(o) => o,
    };
    let key = notice_key(
        project,
        notice.product_id,
        notice.event_type,
        &notice.notice_id,
    );
    if !state.notices.first_time(key, now_ms()).await? {
        return Ok(Outcome::Duplicate);
    }
    {
        let mut order = state.order.lock().unwrap_or_else(|e| e.into_inner());
        let stage = match observation.event {
            PlayerEvent::Created { .. } => Stage::Created,
            PlayerEvent::Destroyed { .. } => Stage::Destroyed,
            PlayerEvent::Status(_) | PlayerEvent::Stalled => Stage::Status,
        };
        if !order.admit(project, &observation.player_id, observation.lts, stage) {
            return Ok(Outcome::Stale);
        }
        // Pushed under the ordering lock, so the inbox sees each player's events in lts order.
        proj.inbox.push(observation);
    }
    tracing::debug!(
        project,
        notice_id = %notice.notice_id,
        event_type = notice.event_type,
        "NCS notice accepted"
    );
    Ok(Outcome::Accepted)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// `Agora-Signature-V2` (HMAC-SHA256) when present, else `Agora-Signature` (HMAC-SHA1);
/// neither, or an unreadable header, is not valid.
pub fn signature_ok(headers: &HeaderMap, secret: &[u8], body: &[u8]) -> bool {
    let (algorithm, value) = if let Some(v) = headers.get(signature::HEADER_SHA256) {
        (Algorithm::Sha256, v)
    } else if let Some(v) = headers.get(signature::HEADER_SHA1) {
        (Algorithm::Sha1, v)
    } else {
        return false;
    };
    match value.to_str() {
        Ok(hex) => signature::verify(algorithm, secret, body, hex),
        Err(_) => false,
    }
}

/// The dedupe key: `noticeId` with project, productId and eventType (`notifyMs` changes
/// on every resend, so it is left out).
pub fn dedupe_key(project: &str, notice: &Notice) -> String {
    notice_key(
        project,
        notice.product_id,
        notice.event_type,
        &notice.notice_id,
    )
}

fn notice_key(project: &str, product_id: u32, event_type: u32, notice_id: &str) -> String {
    format!("{project}\0{product_id}\0{event_type}\0{notice_id}")
}

/// A [`Notice`] as the handler reads it, in one pass: the payload stays raw until the
/// envelope says it is a Media Pull event, and is then decoded straight into
/// [`MediaPullPayload`] (building a `serde_json::Value` first was a visible share of
/// intake's cost). It requires and tolerates the same fields as [`Notice`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    #[serde(borrow)]
    notice_id: Cow<'a, str>,
    product_id: u32,
    event_type: u32,
    #[serde(rename = "notifyMs")]
    _notify_ms: u64,
    #[serde(borrow)]
    payload: &'a RawValue,
}

/// What a verified notice means for the controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// Not Media Pull, or not an event the controller uses.
    Ignored,
    /// A Media Pull event whose payload does not make sense.
    Malformed,
    Observation(Observation),
}

/// Maps a Media Pull notice (events 1, 3, 4) to an [`Observation`].
pub fn decode(notice: &Notice) -> Decoded {
    decode_payload(notice.product_id, notice.event_type, || {
        MediaPullPayload::deserialize(&notice.payload).ok()
    })
}

/// [`decode`] from the envelope's ids; `payload` is decoded only for a Media Pull event
/// and is `None` when it does not decode.
fn decode_payload(
    product_id: u32,
    event_type: u32,
    payload: impl FnOnce() -> Option<MediaPullPayload>,
) -> Decoded {
    if product_id != PRODUCT_MEDIA_PULL
        || ![
            EVENT_PLAYER_CREATED,
            EVENT_PLAYER_DESTROYED,
            EVENT_PLAYER_STATUS,
        ]
        .contains(&event_type)
    {
        return Decoded::Ignored;
    }
    let Some(payload) = payload() else {
        return Decoded::Malformed;
    };
    if payload.player.id.is_empty() {
        return Decoded::Malformed;
    }
    let event = match event_type {
        EVENT_PLAYER_CREATED => PlayerEvent::Created {
            channel: payload.player.channel_name,
            uid: payload.player.uid,
        },
        EVENT_PLAYER_STATUS => match payload.player.status {
            Some(status) => PlayerEvent::Status(status),
            None => return Decoded::Malformed,
        },
        // A destroy without a reason still means the player is gone.
        _ => PlayerEvent::Destroyed {
            reason: payload.destroy_reason.unwrap_or_default(),
        },
    };
    Decoded::Observation(Observation {
        player_id: payload.player.id,
        name: payload.player.name,
        lts: payload.lts,
        event,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agora::model::PlayerStatus;
    use axum::http::HeaderValue;
    use serde_json::json;

    fn notice(product: u32, event: u32, payload: serde_json::Value) -> Notice {
        Notice {
            notice_id: "n-1".into(),
            product_id: product,
            event_type: event,
            notify_ms: 1,
            payload,
        }
    }

    #[test]
    fn v2_header_wins_and_sha1_is_the_fallback() {
        let body = b"{}";
        let s256 = signature::sign_sha256(b"k", body);
        let s1 = signature::sign_sha1(b"k", body);
        let mut h = HeaderMap::new();
        assert!(!signature_ok(&h, b"k", body), "no header");
        h.insert(signature::HEADER_SHA1, HeaderValue::from_str(&s1).unwrap());
        assert!(signature_ok(&h, b"k", body), "SHA1 alone");
        assert!(!signature_ok(&h, b"other", body));
        // With V2 present only V2 counts, even if the SHA1 one is right.
        h.insert(signature::HEADER_SHA256, HeaderValue::from_static("00"));
        assert!(!signature_ok(&h, b"k", body));
        h.insert(
            signature::HEADER_SHA256,
            HeaderValue::from_str(&s256).unwrap(),
        );
        assert!(signature_ok(&h, b"k", body));
    }

    #[test]
    fn decode_maps_the_three_events() {
        let created = notice(
            4,
            1,
            json!({"lts": 5, "xRequestId": "r", "player": {"id": "p", "name": "n",
                "channelName": "c", "uid": 7, "status": "connecting"}}),
        );
        assert_eq!(
            decode(&created),
            Decoded::Observation(Observation {
                player_id: "p".into(),
                name: Some("n".into()),
                lts: 5,
                event: PlayerEvent::Created {
                    channel: Some("c".into()),
                    uid: Some(7)
                },
            })
        );
        let status = notice(
            4,
            4,
            json!({"lts": 6, "player": {"id": "p", "status": "failed"}}),
        );
        let Decoded::Observation(o) = decode(&status) else {
            panic!("status decodes")
        };
        assert_eq!(o.event, PlayerEvent::Status(PlayerStatus::Failed));
        let destroyed = notice(
            4,
            3,
            json!({"lts": 7, "destroyReason": "Idle Timeout", "player": {"id": "p"}}),
        );
        let Decoded::Observation(o) = decode(&destroyed) else {
            panic!("destroy decodes")
        };
        assert_eq!(
            o.event,
            PlayerEvent::Destroyed {
                reason: "Idle Timeout".into()
            }
        );
    }

    #[test]
    fn decode_ignores_other_products_and_events_and_rejects_bad_payloads() {
        let p = json!({"lts": 1, "player": {"id": "p", "status": "running"}});
        assert_eq!(decode(&notice(1, 4, p.clone())), Decoded::Ignored);
        assert_eq!(decode(&notice(4, 2, p.clone())), Decoded::Ignored);
        assert_eq!(decode(&notice(4, 5, p)), Decoded::Ignored);
        assert_eq!(decode(&notice(4, 4, json!({"a": 1}))), Decoded::Malformed);
        assert_eq!(
            decode(&notice(4, 4, json!({"lts": 1, "player": {"id": "p"}}))),
            Decoded::Malformed,
            "status event without a status"
        );
        assert_eq!(
            decode(&notice(4, 1, json!({"lts": 1, "player": {"id": ""}}))),
            Decoded::Malformed
        );
        assert_eq!(
            decode(&notice(4, 1, json!({"lts": "x", "player": {"id": "p"}}))),
            Decoded::Malformed
        );
    }

    #[test]
    fn dedupe_key_ignores_notify_ms() {
        let a = notice(4, 1, json!({}));
        let mut b = a.clone();
        b.notify_ms = 99;
        assert_eq!(dedupe_key("p", &a), dedupe_key("p", &b));
        let mut c = a.clone();
        c.event_type = 4;
        assert_ne!(dedupe_key("p", &a), dedupe_key("p", &c));
        assert_ne!(dedupe_key("p", &a), dedupe_key("q", &a));
    }
}
