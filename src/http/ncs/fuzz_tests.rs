//! Fuzz test of the NCS webhook: arbitrary requests through the real router. An oracle
//! written from the tables in [`super::route`] and [`crate::ncs::intake`] predicts every
//! status, so a wrong answer fails as surely as a panic.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, StatusCode};
use proptest::prelude::*;
use serde_json::Value;
use serde_json::value::RawValue;
use tower::ServiceExt;

use super::route::{self, MAX_BODY_BYTES};
use crate::fuzzing;
use crate::ncs::decode::{Decoded, decode};
use crate::ncs::dedupe::NoticeLog;
use crate::ncs::fuzz_tests::notice_json;
use crate::ncs::inbox::Inbox;
use crate::ncs::intake::{Intake, NcsProject};
use crate::ncs::notice::{
    EVENT_PLAYER_CREATED, EVENT_PLAYER_DESTROYED, EVENT_PLAYER_STATUS, MediaPullPayload, Notice,
    PRODUCT_MEDIA_PULL,
};
use crate::ncs::signature::{self, Algorithm, HEADER_SHA1, HEADER_SHA256};
use crate::store::Store;
use crate::telemetry::Metrics;

const PROJECT: &str = "demo";
const SECRET: &str = "fuzz-ncs-secret";

/// Which signature headers a request carries.
#[derive(Debug, Clone)]
enum Sig {
    None,
    V2,
    V1,
    /// A correct SHA1 signature next to a wrong V2 one: only V2 counts.
    V1RightV2Wrong,
    V2Garbage(String),
    V1Garbage(String),
    /// Header bytes that are not visible ASCII (`to_str` fails).
    Opaque(Vec<u8>),
}

#[derive(Debug, Clone)]
struct Case {
    method: Method,
    /// The `{project}` path segment as sent (already percent-encoded where needed).
    project: String,
    sig: Sig,
    content_type: Option<String>,
    body: Vec<u8>,
}

/// A notice serialized and then damaged: cut short, a byte changed, or a byte inserted.
fn damaged() -> impl Strategy<Value = Vec<u8>> {
    (
        notice_json(),
        any::<prop::sample::Index>(),
        any::<u8>(),
        0u8..3,
    )
        .prop_map(|(notice, at, byte, how)| {
            let mut bytes = serde_json::to_vec(&notice).unwrap_or_default();
            let i = at.index(bytes.len().max(1)).min(bytes.len());
            match how {
                0 => bytes.truncate(i),
                1 if i < bytes.len() => bytes[i] = byte,
                _ => bytes.insert(i, byte),
            }
            bytes
        })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => proptest::collection::vec(any::<u8>(), 0..512),
        4 => notice_json().prop_map(|v| serde_json::to_vec(&v).unwrap_or_default()),
        2 => damaged(),
        1 => (0usize..8192, any::<u8>())
            .prop_map(|(extra, b)| vec![b; MAX_BODY_BYTES - 4096 + extra]),
    ]
}

fn sig() -> impl Strategy<Value = Sig> {
    prop_oneof![
        1 => Just(Sig::None),
        4 => Just(Sig::V2),
        2 => Just(Sig::V1),
        1 => Just(Sig::V1RightV2Wrong),
        1 => "[0-9a-fA-F ]{0,80}".prop_map(Sig::V2Garbage),
        1 => "[ -~]{0,80}".prop_map(Sig::V1Garbage),
        1 => proptest::collection::vec(0x80u8..=0xff, 1..40).prop_map(Sig::Opaque),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop_oneof![20 => Just(Method::POST), 1 => Just(Method::GET), 1 => Just(Method::PUT)],
        prop_oneof![
            8 => Just(PROJECT.to_string()),
            1 => "[a-z0-9-]{1,12}",
            // A lone byte that is not UTF-8 once decoded.
            1 => "%[89A-F][0-9A-F]",
        ],
        sig(),
        proptest::option::of(prop_oneof![
            Just("application/json".to_string()),
            "[ -~]{0,30}"
        ]),
        body(),
    )
        .prop_map(|(method, project, sig, content_type, body)| Case {
            method,
            project,
            sig,
            content_type,
            body,
        })
}

fn request(c: &Case) -> Request<Body> {
    let mut r = Request::builder()
        .method(c.method.clone())
        .uri(format!("/ncs/{}", c.project));
    let v2 = signature::sign_sha256(SECRET.as_bytes(), &c.body);
    let v1 = signature::sign_sha1(SECRET.as_bytes(), &c.body);
    r = match &c.sig {
        Sig::None => r,
        Sig::V2 => r.header(HEADER_SHA256, v2),
        Sig::V1 => r.header(HEADER_SHA1, v1),
        Sig::V1RightV2Wrong => r.header(HEADER_SHA1, v1).header(HEADER_SHA256, "00"),
        Sig::V2Garbage(s) => r.header(HEADER_SHA256, s.as_str()),
        Sig::V1Garbage(s) => r.header(HEADER_SHA1, s.as_str()),
        Sig::Opaque(b) => r.header(
            HEADER_SHA256,
            HeaderValue::from_bytes(b).expect("obs-text is a valid header value"),
        ),
    };
    if let Some(ct) = &c.content_type {
        r = r.header("content-type", ct.as_str());
    }
    r.body(Body::from(c.body.clone())).expect("a valid request")
}

/// What the webhook must answer, from its documented order of checks.
fn expected(c: &Case) -> StatusCode {
    if c.method != Method::POST {
        return StatusCode::METHOD_NOT_ALLOWED;
    }
    if c.project.starts_with('%') {
        return StatusCode::BAD_REQUEST;
    }
    if c.body.len() > MAX_BODY_BYTES {
        return StatusCode::PAYLOAD_TOO_LARGE;
    }
    if c.project != PROJECT {
        return StatusCode::NOT_FOUND;
    }
    let signed = match &c.sig {
        Sig::V2 | Sig::V1 => true,
        Sig::V2Garbage(s) => signature::verify(Algorithm::Sha256, SECRET.as_bytes(), &c.body, s),
        Sig::V1Garbage(s) => signature::verify(Algorithm::Sha1, SECRET.as_bytes(), &c.body, s),
        Sig::None | Sig::V1RightV2Wrong | Sig::Opaque(_) => false,
    };
    if !signed {
        return StatusCode::UNAUTHORIZED;
    }
    // The envelope: valid JSON (RFC 8259 sets no range on numbers) with the typed
    // fields of a Notice. Its payload is only read for a Media Pull event, so a number
    // no f64 holds (`1E400`) in another product's payload is no reason to refuse it; a
    // `serde_json::Value` payload would refuse it.
    let Ok(envelope) = serde_json::from_slice::<OracleEnvelope>(&c.body) else {
        return StatusCode::BAD_REQUEST;
    };
    if envelope.product_id != PRODUCT_MEDIA_PULL
        || ![
            EVENT_PLAYER_CREATED,
            EVENT_PLAYER_DESTROYED,
            EVENT_PLAYER_STATUS,
        ]
        .contains(&envelope.event_type)
    {
        return StatusCode::OK;
    }
    // A Media Pull payload decodes into its type (a uid is an integer, §2.3), read from
    // the payload's own text; then the event must make sense.
    let Ok(payload) = serde_json::from_str::<MediaPullPayload>(envelope.payload.get()) else {
        return StatusCode::BAD_REQUEST;
    };
    let notice = Notice {
        notice_id: envelope.notice_id,
        product_id: envelope.product_id,
        event_type: envelope.event_type,
        notify_ms: envelope.notify_ms,
        payload: serde_json::to_value(payload).expect("a typed payload serializes"),
    };
    match decode(&notice) {
        Decoded::Malformed => StatusCode::BAD_REQUEST,
        Decoded::Ignored | Decoded::Observation(_) => StatusCode::OK,
    }
}

/// The notice envelope of §2.2 with its payload left as JSON text.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct OracleEnvelope {
    notice_id: String,
    product_id: u32,
    event_type: u32,
    notify_ms: u64,
    payload: Box<RawValue>,
}

struct Rig {
    rt: tokio::runtime::Runtime,
    router: Router,
    inbox: Arc<Inbox>,
    _store: Store,
}

fn rig() -> Rig {
    let store = Store::temporary().expect("temporary store");
    let inbox = Arc::new(Inbox::default());
    let projects = HashMap::from([(
        PROJECT.to_string(),
        NcsProject {
            secret: SECRET.into(),
            inbox: inbox.clone(),
        },
    )]);
    let notices = NoticeLog::open(&store).expect("notice log");
    let intake = Intake::new(projects, notices, store.clone()).expect("intake");
    let router = route::router(
        std::sync::Arc::new(intake),
        Metrics::new(),
        crate::store::Leadership::sole(),
        None,
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    Rig {
        rt,
        router,
        inbox,
        _store: store,
    }
}

#[test]
fn fuzz_ncs_webhook_answers_every_request_as_documented() {
    let rig = rig();
    let accepted = std::cell::Cell::new(0usize);
    proptest!(fuzzing::config(3000), |(c in case())| {
        let want = expected(&c);
        let response = rig
            .rt
            .block_on(rig.router.clone().oneshot(request(&c)))
            .expect("the router is infallible");
        let got = response.status();
        let bytes = rig
            .rt
            .block_on(axum::body::to_bytes(response.into_body(), usize::MAX))
            .expect("a readable answer");
        prop_assert_eq!(got, want, "case {:?}", c);
        let answer: Option<Value> = serde_json::from_slice(&bytes).ok();
        let label = answer.as_ref().and_then(|a| a["status"].as_str()).unwrap_or("");
        if got == StatusCode::OK {
            prop_assert!(["accepted", "duplicate", "stale", "ignored"].contains(&label));
        }
        if label == "accepted" {
            accepted.set(accepted.get() + 1);
        }
        // The webhook's own refusals say what was wrong, as JSON, and never echo input.
        if got.is_client_error() && c.method == Method::POST && !c.project.starts_with('%') {
            let error = answer.as_ref().and_then(|a| a["error"].as_str());
            prop_assert!(error.is_some(), "{:?}", String::from_utf8_lossy(&bytes));
            prop_assert!(!String::from_utf8_lossy(&bytes).contains(SECRET));
        }
        prop_assert_eq!(rig.inbox.drain().len(), usize::from(label == "accepted"));
    });
    // The generator must reach the end of the pipeline, not only its first checks.
    assert!(accepted.get() > 0, "no case was accepted");
}

/// One signed request for the demo project, answered by a fresh router: (status, label).
fn answer(rig: &Rig, body: &str) -> (StatusCode, String) {
    let c = Case {
        method: Method::POST,
        project: PROJECT.into(),
        sig: Sig::V2,
        content_type: Some("application/json".into()),
        body: body.as_bytes().to_vec(),
    };
    let response = rig
        .rt
        .block_on(rig.router.clone().oneshot(request(&c)))
        .expect("the router is infallible");
    let status = response.status();
    assert_eq!(status, expected(&c), "the oracle agrees on {body}");
    let bytes = rig
        .rt
        .block_on(axum::body::to_bytes(response.into_body(), usize::MAX))
        .expect("a readable answer");
    let answer: Value = serde_json::from_slice(&bytes).expect("a JSON answer");
    let label = answer["status"].as_str().or(answer["error"].as_str());
    (status, label.unwrap_or_default().to_string())
}

/// Found by `fuzz_ncs_webhook_answers_every_request_as_documented`: the oracle read the
/// body as a `Notice`, whose `serde_json::Value` payload refuses numbers beyond f64
/// (`1E000000309`, `-1E75445569692259295`), and so expected 400 for notices the webhook
/// rightly answers 200 and ignores (§2.2) without reading their payload. In a Media Pull
/// payload such a number is refused where a field needs it (a uid is an integer, §2.3)
/// and ignored where no field does.
#[test]
fn numbers_beyond_f64_are_refused_only_where_a_field_needs_them() {
    let rig = rig();
    let player =
        r#""player":{"channelName":"news","id":"p-0","name":"pk_news_m_1","status":"running""#;
    let other_product = format!(
        r#"{{"appId":"x","eventType":1,"noticeId":"n-0","notifyMs":0,"payload":{{"destroyReason":"Delete Request","lts":0,{player},"uid":1E000000309}}}},"productId":0}}"#
    );
    assert_eq!(
        answer(&rig, &other_product),
        (StatusCode::OK, "ignored".into())
    );
    let other_event = r#"{"appId":"x","eventType":100000,"noticeId":"n-0","notifyMs":10000000000000000000,"payload":[1000000000000,-1E75445569692259295,null,1000000000000000],"productId":4}"#;
    assert_eq!(
        answer(&rig, other_event),
        (StatusCode::OK, "ignored".into())
    );
    let bad_uid = format!(
        r#"{{"eventType":1,"noticeId":"n-1","notifyMs":0,"payload":{{"lts":1,{player},"uid":1E000000309}}}},"productId":4}}"#
    );
    assert_eq!(
        answer(&rig, &bad_uid),
        (StatusCode::BAD_REQUEST, "malformed notice".into())
    );
    let unread_field = format!(
        r#"{{"eventType":1,"noticeId":"n-2","notifyMs":0,"payload":{{"lts":2,{player},"uid":7}},"extra":1E400}},"productId":4}}"#
    );
    assert_eq!(
        answer(&rig, &unread_field),
        (StatusCode::OK, "accepted".into())
    );
    assert_eq!(rig.inbox.drain().len(), 1);
}
