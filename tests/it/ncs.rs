//! The NCS receiver (`POST /ncs/{project}`) against docs/agora-api.md §2: signatures,
//! status codes, dedupe, lts ordering, and the simulator's notices end to end.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use pullkeeper::Metrics;
use pullkeeper::agora::wire::{CreateResponse, PlayerStatus};
use pullkeeper::ncs::dedupe::NoticeLog;
use pullkeeper::ncs::inbox::{Inbox, Observation, PlayerEvent};
use pullkeeper::ncs::intake::{Intake, NcsProject};
use pullkeeper::ncs::signature::{self, HEADER_SHA1, HEADER_SHA256};
use pullkeeper::ncs_router;
use pullkeeper::simulator::DeliveryOutcome;
use pullkeeper::store::Store;
use serde_json::{Value, json};

use crate::support::{self, APP, Api, NCS_SECRET, player};

/// The official test vector (§2.4).
const VECTOR_BODY: &str = r#"{"eventMs":1560408533119,"eventType":10,"noticeId":"4eb720f0-8da7-11e9-a43e-53f411c2761f","notifyMs":1560408533119,"payload":{"a":"1","b":2},"productId":1}"#;
const VECTOR_SHA1: &str = "033c62f40f687675f17f0f41f91a40c71c0f134c";
const VECTOR_SHA256: &str = "6d3320c60b11101395b7fc8f9068748808a0aa1bfa064438e39d1bc2c7d74d99";

const PROJECT: &str = "proj";
const SECRET: &str = "secret";

/// A receiver on 127.0.0.1:0 over a temporary store.
struct Rx {
    base: String,
    inboxes: HashMap<String, Arc<Inbox>>,
    metrics: Metrics,
    http: reqwest::Client,
    _store: Store,
}

impl Rx {
    async fn start(projects: &[(&str, &str)]) -> Rx {
        let store = Store::temporary().expect("temporary store");
        let notices = NoticeLog::open(&store).expect("notice log");
        let metrics = Metrics::new();
        let mut inboxes = HashMap::new();
        let mut configured = HashMap::new();
        for (id, secret) in projects {
            let inbox = Arc::new(Inbox::default());
            inboxes.insert(id.to_string(), inbox.clone());
            configured.insert(
                id.to_string(),
                NcsProject {
                    secret: (*secret).into(),
                    inbox,
                },
            );
        }
        let intake = Intake::new(configured, notices.clone(), store.clone()).expect("intake");
        let router = ncs_router(
            std::sync::Arc::new(intake),
            metrics.clone(),
            pullkeeper::store::Leadership::sole(),
            None,
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Rx {
            base,
            inboxes,
            metrics,
            http: support::client(),
            _store: store,
        }
    }

    fn url(&self, project: &str) -> String {
        format!("{}/ncs/{project}", self.base)
    }

    fn inbox(&self, project: &str) -> &Inbox {
        &self.inboxes[project]
    }

    fn count(&self, outcome: &str) -> u64 {
        self.metrics
            .webhook_notices
            .with_label_values(&[outcome])
            .get()
    }

    async fn post(&self, project: &str, body: Vec<u8>, headers: &[(&str, String)]) -> Answer {
        let mut req = self
            .http
            .post(self.url(project))
            .header("Content-Type", "application/json")
            .body(body);
        for (name, value) in headers {
            req = req.header(*name, value);
        }
        let resp = req.send().await.expect("receiver answers");
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.expect("every answer is JSON");
        Answer { status, body }
    }

    /// Posts `body` signed with both algorithms, as NCS does.
    async fn post_signed(&self, project: &str, secret: &str, body: Vec<u8>) -> Answer {
        let headers = signed(secret, &body);
        self.post(project, body, &headers).await
    }
}

#[derive(Debug)]
struct Answer {
    status: u16,
    body: Value,
}

fn signed(secret: &str, body: &[u8]) -> Vec<(&'static str, String)> {
    vec![
        (HEADER_SHA1, signature::sign_sha1(secret.as_bytes(), body)),
        (
            HEADER_SHA256,
            signature::sign_sha256(secret.as_bytes(), body),
        ),
    ]
}

/// A Media Pull notice body.
fn notice(id: &str, event_type: u32, notify_ms: u64, payload: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "noticeId": id,
        "productId": 4,
        "eventType": event_type,
        "notifyMs": notify_ms,
        "appId": "whatever",
        "payload": payload,
    }))
    .expect("serializes")
}

fn status_payload(player: &str, status: &str, lts: u64) -> Value {
    json!({
        "player": {"channelName": "c", "id": player, "name": "n", "status": status},
        "lts": lts,
        "fields": "player.name,player.channelName,player.id,player.status",
    })
}

/// Changes one hex digit.
fn flip_one(hex: &str) -> String {
    let mut chars: Vec<char> = hex.chars().collect();
    chars[7] = if chars[7] == '0' { '1' } else { '0' };
    chars.into_iter().collect()
}

/// Drains `inbox` into `seen` until it holds `n` observations (bounded wait).
async fn wait_for(inbox: &Inbox, seen: &mut Vec<Observation>, n: usize) {
    for _ in 0..500 {
        seen.extend(inbox.drain());
        if seen.len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("expected {n} observations, got {seen:?}");
}

/// §2.4: the official vector verifies with either header; productId 1 is ignored (200);
/// one changed character is 401; with V2 present only V2 counts.
#[tokio::test]
async fn official_test_vector_is_accepted_as_signed() {
    let rx = Rx::start(&[(PROJECT, SECRET)]).await;
    let body = VECTOR_BODY.as_bytes().to_vec();
    let both = [
        (HEADER_SHA1, VECTOR_SHA1.to_string()),
        (HEADER_SHA256, VECTOR_SHA256.to_string()),
    ];
    let ok = rx.post(PROJECT, body.clone(), &both).await;
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(ok.body, json!({"status": "ignored"}));
    for header in [
        (HEADER_SHA256, VECTOR_SHA256.to_string()),
        (HEADER_SHA1, VECTOR_SHA1.to_string()),
    ] {
        let ok = rx
            .post(PROJECT, body.clone(), std::slice::from_ref(&header))
            .await;
        assert_eq!(ok.status, 200, "{} alone: {ok:?}", header.0);
    }
    assert_eq!(rx.count("ignored"), 3);

    for bad in [
        vec![(HEADER_SHA256, flip_one(VECTOR_SHA256))],
        vec![(HEADER_SHA1, flip_one(VECTOR_SHA1))],
        // V2 is present and wrong: a right SHA1 does not rescue it.
        vec![
            (HEADER_SHA1, VECTOR_SHA1.to_string()),
            (HEADER_SHA256, flip_one(VECTOR_SHA256)),
        ],
    ] {
        let got = rx.post(PROJECT, body.clone(), &bad).await;
        assert_eq!(got.status, 401, "{bad:?}");
        assert_eq!(got.body, json!({"error": "bad signature"}));
        let text = got.body.to_string();
        assert!(!text.contains(SECRET) && !text.contains(&bad[0].1[..16]));
    }
    assert_eq!(rx.count("bad_signature"), 3);
    assert_eq!(rx.count("ignored"), 3);
}

/// §2.4: missing signature 401, unknown project 404, invalid JSON 400, 1 MiB 413; a
/// rejected notice leaves no trace, so its correct delivery is still accepted.
#[tokio::test]
async fn rejections_have_their_status_and_change_nothing() {
    let rx = Rx::start(&[(PROJECT, SECRET)]).await;
    let good = notice("n-1", 4, 1, status_payload("p1", "running", 100));

    let missing = rx.post(PROJECT, good.clone(), &[]).await;
    assert_eq!(missing.status, 401);
    let wrong_secret = rx
        .post_signed(PROJECT, "not-the-secret", good.clone())
        .await;
    assert_eq!(wrong_secret.status, 401);
    assert_eq!(rx.count("bad_signature"), 2);

    let unknown = rx.post_signed("nope", SECRET, good.clone()).await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.body, json!({"error": "unknown project"}));
    assert_eq!(rx.count("unknown_project"), 1);

    let invalid = rx.post_signed(PROJECT, SECRET, b"{not json".to_vec()).await;
    assert_eq!(invalid.status, 400);
    assert!(invalid.body["error"].is_string());

    // A Media Pull notice whose payload is broken: 400, and its id is not remembered.
    let broken = notice("n-1", 4, 1, json!({"lts": "soon"}));
    assert_eq!(rx.post_signed(PROJECT, SECRET, broken).await.status, 400);
    assert_eq!(rx.count("malformed"), 2);

    let huge = vec![b' '; 1024 * 1024];
    let too_large = rx.post_signed(PROJECT, SECRET, huge).await;
    assert_eq!(too_large.status, 413);
    assert_eq!(too_large.body, json!({"error": "body too large"}));
    assert_eq!(rx.count("too_large"), 1);

    assert!(rx.inbox(PROJECT).drain().is_empty());
    let accepted = rx.post_signed(PROJECT, SECRET, good).await;
    assert_eq!(accepted.status, 200);
    assert_eq!(accepted.body, json!({"status": "accepted"}));
    assert_eq!(rx.inbox(PROJECT).drain().len(), 1);
    assert_eq!(rx.count("duplicate"), 0);
}

/// §2.1: duplicates are possible; three deliveries (concurrent, fresh notifyMs each)
/// give one observation, one `accepted` and two `duplicate`.
#[tokio::test]
async fn a_notice_delivered_three_times_is_pushed_once() {
    let rx = Arc::new(Rx::start(&[(PROJECT, SECRET)]).await);
    let tasks: Vec<_> = (0..3u64)
        .map(|i| {
            let rx = rx.clone();
            tokio::spawn(async move {
                let body = notice("n-dup", 4, 1_000 + i, status_payload("p1", "running", 5));
                rx.post_signed(PROJECT, SECRET, body).await
            })
        })
        .collect();
    for t in tasks {
        let answer = t.await.expect("task");
        assert_eq!(answer.status, 200, "{answer:?}");
    }
    let seen = rx.inbox(PROJECT).drain();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].event, PlayerEvent::Status(PlayerStatus::Running));
    assert_eq!((rx.count("accepted"), rx.count("duplicate")), (1, 2));
    // Same noticeId with another eventType is a different notice.
    let other = notice(
        "n-dup",
        3,
        2_000,
        json!({"lts": 6, "player": {"id": "p1"}, "destroyReason": "Delete Request"}),
    );
    let answer = rx.post_signed(PROJECT, SECRET, other).await;
    assert_eq!(answer.body, json!({"status": "accepted"}));
}

/// §2.1: order is not guaranteed; an older `lts` for the same player is stale.
#[tokio::test]
async fn an_older_lts_for_the_same_player_is_stale() {
    let rx = Rx::start(&[(PROJECT, SECRET)]).await;
    let running = notice("n-a", 4, 1, status_payload("p1", "running", 200));
    let connecting = notice("n-b", 4, 2, status_payload("p1", "connecting", 100));
    let other_player = notice("n-c", 4, 3, status_payload("p2", "connecting", 100));
    assert_eq!(
        rx.post_signed(PROJECT, SECRET, running).await.body,
        json!({"status": "accepted"})
    );
    let stale = rx.post_signed(PROJECT, SECRET, connecting).await;
    assert_eq!(stale.status, 200);
    assert_eq!(stale.body, json!({"status": "stale"}));
    assert_eq!(
        rx.post_signed(PROJECT, SECRET, other_player).await.body,
        json!({"status": "accepted"})
    );
    let seen = rx.inbox(PROJECT).drain();
    let got: Vec<_> = seen
        .iter()
        .map(|o| (o.player_id.as_str(), o.lts, o.event.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("p1", 200, PlayerEvent::Status(PlayerStatus::Running)),
            ("p2", 100, PlayerEvent::Status(PlayerStatus::Connecting)),
        ]
    );
    assert_eq!((rx.count("accepted"), rx.count("stale")), (2, 1));
}

/// §2.3 end to end: the simulator's signed events 1, 4, 4, 3 reach the inbox in order.
#[tokio::test]
async fn simulator_notices_reach_the_inbox() {
    let rx = Rx::start(&[(APP, NCS_SECRET)]).await;
    let api = Api::new(support::config()).await;
    api.sim.set_ncs_url(APP, Some(rx.url(APP)));
    let resp = api.create(player("c", 1, Some("c_1"))).await;
    assert_eq!(resp.status(), 200);
    let id = resp.json::<CreateResponse>().await.expect("body").player.id;
    let inbox = rx.inbox(APP);
    let mut seen = Vec::new();
    // Each step waits for its notice: deliveries run in parallel tasks, and a later
    // event overtaking an earlier one would (correctly) make the earlier one stale.
    wait_for(inbox, &mut seen, 1).await;
    api.sim.advance(Duration::from_secs(1));
    wait_for(inbox, &mut seen, 2).await;
    api.sim.advance(Duration::from_millis(10));
    assert!(api.sim.fail_player(APP, &id));
    wait_for(inbox, &mut seen, 3).await;
    api.sim.advance(Duration::from_millis(10));
    assert!(api.sim.destroy_player(APP, &id, "Idle Timeout"));
    wait_for(inbox, &mut seen, 4).await;

    assert!(seen.iter().all(|o| o.player_id == id), "{seen:?}");
    assert!(seen.iter().all(|o| o.name.as_deref() == Some("c_1")));
    assert!(seen.windows(2).all(|w| w[0].lts < w[1].lts), "{seen:?}");
    let events: Vec<_> = seen.into_iter().map(|o| o.event).collect();
    assert_eq!(
        events,
        vec![
            PlayerEvent::Created {
                channel: Some("c".into()),
                uid: Some(1)
            },
            PlayerEvent::Status(PlayerStatus::Running),
            PlayerEvent::Status(PlayerStatus::Failed),
            PlayerEvent::Destroyed {
                reason: "Idle Timeout".into()
            },
        ]
    );
    let sent = api.sim.notices_sent();
    assert_eq!(sent.len(), 4, "{sent:?}");
    assert!(sent.iter().all(|r| r.outcome == DeliveryOutcome::Delivered));
    assert_eq!(rx.count("accepted"), 4);
}

/// "Acknowledged ⇒ durable": a recorded notice id survives reopening the store.
#[tokio::test]
async fn dedupe_survives_reopening_the_store() {
    let dir = std::env::temp_dir().join(format!("pk-ncs-{}", uuid::Uuid::new_v4()));
    {
        let store = Store::open(&dir).expect("open");
        let log = NoticeLog::open(&store).expect("log");
        assert!(log.first_time("proj/4/4/n-1", 1).await.expect("record"));
        // No explicit flush: first_time flushed before answering true.
    }
    let store = Store::open(&dir).expect("reopen");
    let log = NoticeLog::open(&store).expect("log");
    assert!(!log.first_time("proj/4/4/n-1", 2).await.expect("lookup"));
    assert!(log.first_time("proj/4/4/n-2", 2).await.expect("record"));
    drop(log);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}
