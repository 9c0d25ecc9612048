//! The simulator's side channels: fault injection, the control API, and NCS delivery
//! against docs/agora-api.md §2; each NCS test names the section it checks. The REST API
//! itself is in `simulator_rest`.

use std::time::Duration;

use axum::http::StatusCode;
use pullkeeper::agora::wire::{CreatePlayer, ListResponse, PlayerStatus};
use pullkeeper::ncs::notice::{MediaPullPayload, Notice};
use pullkeeper::ncs::signature::{self, Algorithm};
use pullkeeper::simulator::{FaultAction, FaultRule, SimConfig};
use serde_json::{Value, json};

use crate::simulator_rest::{created_id, header};
use crate::support::{self, APP, Api, NCS_SECRET, Receiver, player};

/// Fault injection: a status, then a dropped connection the client sees as a transport
/// error, both logged.
#[tokio::test]
async fn injected_status_and_drop() {
    let api = Api::new(support::config()).await;
    api.sim.inject(FaultRule {
        method: Some("POST".into()),
        path_contains: "/cloud-player/players".into(),
        count: 1,
        action: FaultAction::Status(503),
    });
    let resp = api.create(player("c", 1, None)).await;
    assert_eq!(resp.status(), 503);
    assert!(header(&resp, "x-request-id").is_some());
    assert!(api.sim.players(APP).is_empty());
    api.sim.inject(FaultRule {
        method: None,
        path_contains: "/cloud-player/players".into(),
        count: 1,
        action: FaultAction::Drop,
    });
    let dropped = api
        .auth(
            api.http
                .post(api.players_url("na"))
                .json(&player("c", 1, None)),
        )
        .send()
        .await;
    assert!(
        dropped.is_err(),
        "expected a transport error, got {dropped:?}"
    );
    // Rules are used up: the next request is served normally.
    assert_eq!(api.create(player("c", 1, None)).await.status(), 200);
    let statuses: Vec<Option<u16>> = api.sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![Some(503), None, Some(200)]);
}

/// The control API over HTTP reaches the same operations as the handle.
#[tokio::test]
async fn control_api_over_http() {
    let api = Api::new(support::config()).await;
    let base = api.sim.base_url();
    let foreign: Value = api
        .http
        .post(format!("{base}/_sim/projects/{APP}/players"))
        .json(&player("c", 5, Some("theirs")))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    let id = foreign["id"].as_str().expect("id").to_string();
    let players: Value = api
        .http
        .get(format!("{base}/_sim/projects/{APP}/players"))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(players[0]["id"], id.as_str());
    assert_eq!(players[0]["foreign"], true);
    let fail = api
        .http
        .post(format!("{base}/_sim/projects/{APP}/players/{id}/fail"))
        .send()
        .await
        .expect("answer");
    assert_eq!(fail.status(), 200);
    assert_eq!(api.sim.players(APP)[0].status, PlayerStatus::Failed);
    let rule = json!({"method":"GET","path_contains":"/players","count":1,"action":{"status":500}});
    let resp = api
        .http
        .post(format!("{base}/_sim/faults"))
        .json(&rule)
        .send()
        .await
        .expect("answer");
    assert_eq!(resp.status(), 200);
    api.http
        .post(format!("{base}/_sim/advance"))
        .json(&json!({"ms": 10_000}))
        .send()
        .await
        .expect("answer");
    assert_eq!(api.list("").await.status(), 500);
    // Rules not used up are forgotten on DELETE.
    let lasting =
        json!({"method":"GET","path_contains":"/players","count":1000,"action":{"status":503}});
    for req in [
        api.http.post(format!("{base}/_sim/faults")).json(&lasting),
        api.http.delete(format!("{base}/_sim/faults")),
    ] {
        assert_eq!(req.send().await.expect("answer").status(), 200);
    }
    let page: ListResponse = api.list("").await.json().await.expect("page");
    assert_eq!(
        page.players.len(),
        1,
        "foreign player is listed after the lag"
    );
    let destroy = api
        .http
        .post(format!("{base}/_sim/projects/{APP}/players/{id}/destroy"))
        .json(&json!({"reason": "Idle Timeout"}))
        .send()
        .await
        .expect("answer");
    assert_eq!(destroy.status(), 200);
    let history: Value = api
        .http
        .get(format!("{base}/_sim/history"))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(history[0]["destroyReason"], "Idle Timeout");
    let requests: Value = api
        .http
        .get(format!("{base}/_sim/requests"))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(
        requests.as_array().map(Vec::len),
        Some(2),
        "control requests are not logged"
    );
    // The handle twin of the HTTP route.
    let other = CreatePlayer {
        stream_url: "rtmp://x/y".into(),
        channel_name: "c".into(),
        uid: Some(9),
        ..CreatePlayer::default()
    };
    assert_eq!(api.sim.add_foreign_player(APP, other.clone()).len(), 32);
    assert_eq!(api.sim.add_foreign_player("nope", other), "");
}

fn verify_and_parse(r: &support::Received) -> Notice {
    let h = |n: &str| {
        r.headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(h("content-type"), "application/json");
    let secret = NCS_SECRET.as_bytes();
    assert!(signature::verify(
        Algorithm::Sha1,
        secret,
        &r.body,
        &h(signature::HEADER_SHA1)
    ));
    assert!(signature::verify(
        Algorithm::Sha256,
        secret,
        &r.body,
        &h(signature::HEADER_SHA256)
    ));
    serde_json::from_slice(&r.body).expect("notice body")
}

/// §2.2–§2.4: events 1, 4 and 3 with the documented payloads and both signatures.
#[tokio::test]
async fn ncs_events_are_signed_and_shaped() {
    let receiver = Receiver::start(StatusCode::OK).await;
    let api = Api::new(support::config()).await;
    api.sim.set_ncs_url(APP, Some(receiver.url.clone()));
    let resp = api
        .auth(
            api.http
                .post(api.players_url("na"))
                .header("X-Request-ID", "req-42")
                .json(&player("c", 1, Some("c_1"))),
        )
        .send()
        .await
        .expect("answer");
    let id = created_id(resp).await;
    let got = receiver.wait_for(1).await;
    let created = verify_and_parse(&got[0]);
    assert_eq!((created.product_id, created.event_type), (4, 1));
    let raw = &created.payload;
    assert_eq!(raw["xRequestId"], "req-42");
    assert!(raw["lts"].is_u64());
    for key in [
        "channelName",
        "createTs",
        "id",
        "idleTimeout",
        "name",
        "streamUrl",
        "uid",
    ] {
        assert!(raw["player"].get(key).is_some(), "event 1 player.{key}");
    }
    assert_eq!(raw["player"]["status"], "connecting");
    assert_eq!(raw["player"]["idleTimeout"], 300);

    api.sim.advance(Duration::from_secs(1));
    let got = receiver.wait_for(2).await;
    let running = verify_and_parse(&got[1]);
    assert_eq!(running.event_type, 4);
    let payload: MediaPullPayload =
        serde_json::from_value(running.payload.clone()).expect("payload");
    assert_eq!(payload.player.status, Some(PlayerStatus::Running));
    assert_eq!(
        payload.fields.as_deref(),
        Some("player.name,player.channelName,player.id,player.status")
    );

    assert_eq!(api.delete(&id).await.status(), 200);
    let got = receiver.wait_for(3).await;
    let destroyed = verify_and_parse(&got[2]);
    assert_eq!(destroyed.event_type, 3);
    assert_eq!(destroyed.payload["destroyReason"], "Delete Request");
    assert_eq!(
        destroyed.payload["fields"],
        "player.name,player.channelName,player.id"
    );
    assert_eq!(
        destroyed.payload["player"],
        json!({"channelName":"c","id":id,"name":"c_1"})
    );
    let ids: std::collections::HashSet<_> = [&created, &running, &destroyed]
        .iter()
        .map(|n| n.notice_id.clone())
        .collect();
    assert_eq!(ids.len(), 3, "noticeId is unique per notice");
}

/// §2.1: without a 200 NCS resends three times, same noticeId, fresh signature.
#[tokio::test]
async fn ncs_retries_three_times_with_the_same_notice_id() {
    let receiver = Receiver::start(StatusCode::INTERNAL_SERVER_ERROR).await;
    let api = Api::new(SimConfig {
        ncs_retry_delays: vec![Duration::from_millis(10); 3],
        // Keep event 4 out of the way of the count.
        connect_delay: Duration::from_secs(600),
        ..support::config()
    })
    .await;
    api.sim.set_ncs_url(APP, Some(receiver.url.clone()));
    created_id(api.create(player("c", 1, None)).await).await;
    let got = receiver.wait_for(4).await;
    let notices: Vec<Notice> = got.iter().map(verify_and_parse).collect();
    assert!(
        notices
            .iter()
            .all(|n| n.notice_id == notices[0].notice_id && n.event_type == 1)
    );
    // Give a (wrong) fifth attempt the chance to show up, then check the record.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(receiver.all().len(), 4);
    let sent = api.sim.notices_sent();
    assert_eq!(
        sent.iter().map(|d| d.attempt).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert!(sent.iter().all(|d| d.notice_id == notices[0].notice_id));
    assert_eq!(
        api.sim.ncs_outstanding(),
        0,
        "given up after the last resend"
    );
}

/// A notice counts as outstanding from its event until it is delivered or given up, so
/// a bench can tell when the receivers have caught up.
#[tokio::test]
async fn a_notice_is_outstanding_until_delivered_or_given_up() {
    let receiver = Receiver::start(StatusCode::INTERNAL_SERVER_ERROR).await;
    let api = Api::new(SimConfig {
        ncs_retry_delays: vec![Duration::from_secs(600)],
        connect_delay: Duration::from_secs(600),
        ..support::config()
    })
    .await;
    assert_eq!(api.sim.ncs_outstanding(), 0);
    api.sim.set_ncs_url(APP, Some(receiver.url.clone()));
    created_id(api.create(player("c", 1, None)).await).await;
    receiver.wait_for(1).await;
    let url = format!("{}/_sim/notices/outstanding", api.sim.base_url());
    let answer: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    assert_eq!(answer["outstanding"], 1, "waiting to be resent: {answer}");
    assert_eq!(api.sim.ncs_outstanding(), 1);
}
