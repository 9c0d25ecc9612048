//! The simulator against the reference documents (`agora-media-pull.md`); each test
//! names the section it checks.

use std::time::Duration;

use axum::http::StatusCode;
use pullkeeper::agora::model::{CreatePlayer, CreateResponse, ListResponse, PlayerStatus};
use pullkeeper::ncs::notice::{MediaPullPayload, Notice};
use pullkeeper::ncs::signature::{self, Algorithm};
use pullkeeper::simulator::{FaultAction, FaultRule, SimConfig};
use serde_json::{Value, json};

use crate::support::{self, APP, Api, NCS_SECRET, Receiver, basic_auth, player};

fn header<'a>(resp: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

async fn message(resp: reqwest::Response) -> String {
    let body: Value = resp.json().await.expect("json error body");
    body["message"].as_str().expect("message field").to_string()
}

async fn created_id(resp: reqwest::Response) -> String {
    assert_eq!(resp.status(), 200);
    let body: CreateResponse = resp.json().await.expect("create body");
    body.player.id
}

/// §1.9, §1.5, §3: bad or missing Basic auth is 401 with no X-Request-ID.
#[tokio::test]
async fn auth_failure_is_401_without_request_id() {
    let api = Api::new(support::config()).await;
    let url = api.players_url("na");
    let body = player("c", 1, None);
    let wrong = api
        .http
        .post(&url)
        .header("Authorization", basic_auth("cust-id", "nope"))
        .header("X-Request-ID", "r-1")
        .json(&body)
        .send()
        .await
        .expect("answer");
    assert_eq!(wrong.status(), 401);
    assert_eq!(header(&wrong, "x-request-id"), None);
    assert_eq!(message(wrong).await, "Invalid authentication credentials.");
    let missing = api
        .http
        .post(&url)
        .json(&body)
        .send()
        .await
        .expect("answer");
    assert_eq!(missing.status(), 401);
    assert!(api.sim.players(APP).is_empty());
}

/// §1.9: an App ID without Media Pull is 403; §1.3: X-Request-ID is echoed.
#[tokio::test]
async fn unknown_app_is_403_and_request_id_is_echoed() {
    let api = Api::new(support::config()).await;
    let url = format!(
        "{}/na/v1/projects/other/cloud-player/players",
        api.sim.base_url()
    );
    let resp = api
        .auth(
            api.http
                .post(url)
                .header("X-Request-ID", "my-req")
                .json(&player("c", 1, None)),
        )
        .send()
        .await
        .expect("answer");
    assert_eq!(resp.status(), 403);
    assert_eq!(header(&resp, "x-request-id"), Some("my-req"));
    assert!(message(resp).await.contains("not enabled Cloud Player"));
    // Without X-Request-ID the server generates one.
    let resp = api.list("").await;
    assert!(header(&resp, "x-request-id").is_some_and(|v| !v.is_empty()));
}

/// §1.1: region must be one of the four lowercase values.
#[tokio::test]
async fn bad_region_is_400() {
    let api = Api::new(support::config()).await;
    for region in ["NA", "us", "xx"] {
        let resp = api
            .auth(
                api.http
                    .post(api.players_url(region))
                    .json(&player("c", 1, None)),
            )
            .send()
            .await
            .expect("answer");
        assert_eq!(resp.status(), 400, "region {region}");
    }
}

/// §1.4: exactly one of uid/account.
#[tokio::test]
async fn uid_and_account_both_or_neither_is_400() {
    let api = Api::new(support::config()).await;
    let both = json!({"player":{"streamUrl":"rtmp://x/y","channelName":"c","uid":1,"account":"a"}});
    assert_eq!(api.create(both).await.status(), 400);
    let neither = json!({"player":{"streamUrl":"rtmp://x/y","channelName":"c"}});
    assert_eq!(api.create(neither).await.status(), 400);
    let account = json!({"player":{"streamUrl":"rtmp://x/y","channelName":"c","account":"bob"}});
    let resp = api.create(account).await;
    assert_eq!(resp.status(), 200);
    let body: CreateResponse = resp.json().await.expect("body");
    assert_eq!(body.player.account.as_deref(), Some("bob"));
}

/// §1.4: channelName charset and 64-byte limit; the 400 names the parameter (§1.9).
#[tokio::test]
async fn bad_channel_name_is_400_naming_the_parameter() {
    let api = Api::new(support::config()).await;
    let resp = api.create(player("a/b", 1, None)).await;
    assert_eq!(resp.status(), 400);
    assert!(message(resp).await.contains("channelName"));
    let long = "c".repeat(65);
    assert_eq!(api.create(player(&long, 1, None)).await.status(), 400);
    let max = "c".repeat(64);
    assert_eq!(api.create(player(&max, 1, None)).await.status(), 200);
}

/// §1.4: a uid must be unique in the channel.
#[tokio::test]
async fn duplicate_uid_in_channel_is_400() {
    let api = Api::new(support::config()).await;
    assert_eq!(api.create(player("c", 7, None)).await.status(), 200);
    assert_eq!(api.create(player("c", 7, None)).await.status(), 400);
    assert_eq!(api.create(player("other", 7, None)).await.status(), 200);
}

/// §1.4, §1.5: a duplicate name is 409 with X-Resource-ID = the existing player.
#[tokio::test]
async fn duplicate_name_is_409_with_existing_id() {
    let api = Api::new(support::config()).await;
    let first = created_id(api.create(player("c", 1, Some("c_1"))).await).await;
    let resp = api.create(player("c", 2, Some("c_1"))).await;
    assert_eq!(resp.status(), 409);
    assert_eq!(header(&resp, "x-resource-id"), Some(first.as_str()));
    assert_eq!(api.sim.players(APP).len(), 1);
}

/// §1.10: beyond the concurrent-player quota Create is 429 "Resources quota limit".
#[tokio::test]
async fn quota_is_429_after_max_players() {
    let api = Api::new(SimConfig {
        max_players: 3,
        ..support::config()
    })
    .await;
    for uid in 1..=3 {
        assert_eq!(api.create(player("c", uid, None)).await.status(), 200);
    }
    let resp = api.create(player("c", 4, None)).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(message(resp).await, "Resources quota limit exceeded.");
}

/// §1.10: Create with name is 2/s; without name 50/s.
#[tokio::test]
async fn create_with_name_is_limited_to_two_per_second() {
    let api = Api::new(support::config()).await;
    assert_eq!(api.create(player("c", 1, Some("n1"))).await.status(), 200);
    assert_eq!(api.create(player("c", 2, Some("n2"))).await.status(), 200);
    let third = api.create(player("c", 3, Some("n3"))).await;
    assert_eq!(third.status(), 429);
    assert_eq!(message(third).await, "Request rate limit exceeded.");
    // The unnamed window is separate and much larger.
    for uid in 10..20 {
        assert_eq!(api.create(player("c", uid, None)).await.status(), 200);
    }
    api.sim.advance(Duration::from_secs(1));
    assert_eq!(api.create(player("c", 3, Some("n3"))).await.status(), 200);
    let rejected = api
        .sim
        .requests()
        .iter()
        .filter(|r| r.status == Some(429))
        .count();
    assert_eq!(rejected, 1);
}

/// §1.10: unfiltered List is also 20/min, even when spread over more than a second.
#[tokio::test]
async fn list_per_minute_window() {
    let api = Api::new(support::config()).await;
    for i in 0..20 {
        assert_eq!(api.list("").await.status(), 200, "list #{i}");
        api.sim.advance(Duration::from_millis(1100));
    }
    assert_eq!(api.list("").await.status(), 429);
    // Filtered List has its own window (2/s, 15/min).
    assert_eq!(api.list("?filter=channelName%20eq%20c").await.status(), 200);
    api.sim.advance(Duration::from_secs(60));
    assert_eq!(api.list("").await.status(), 200);
}

async fn create_five(api: &Api) -> Vec<String> {
    let mut ids = Vec::new();
    for uid in 1..=5 {
        ids.push(created_id(api.create(player("c", uid, None)).await).await);
        api.sim.advance(Duration::from_secs(1));
    }
    api.sim.advance(Duration::from_secs(10));
    ids
}

async fn list_all(api: &Api, page_size: usize, end: &str) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut token = String::new();
    loop {
        let q = if token.is_empty() {
            format!("?pageSize={page_size}")
        } else {
            format!("?pageSize={page_size}&pageToken={token}")
        };
        let page: ListResponse = api.list(&q).await.json().await.expect("page");
        assert_eq!(page.total_size, 5);
        let ts: Vec<i64> = page.players.iter().map(|p| p.create_ts).collect();
        assert!(
            ts.windows(2).all(|w| w[0] < w[1]),
            "ascending createTs: {ts:?}"
        );
        pages.push(page.players.iter().map(|p| p.id.clone()).collect());
        match page.next_page_token.as_deref() {
            Some(t) if t == end => return pages,
            Some(t) => token = t.to_string(),
            None => panic!("nextPageToken missing"),
        }
    }
}

/// §1.6: pages of pageSize in ascending createTs, end marked by "" (RA).
#[tokio::test]
async fn pagination_three_pages_end_with_empty_token() {
    let api = Api::new(support::config()).await;
    let ids = create_five(&api).await;
    let pages = list_all(&api, 2, "").await;
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![2, 2, 1]
    );
    assert_eq!(pages.concat(), ids);
    assert_eq!(api.list("?pageToken=bogus").await.status(), 400);
    assert_eq!(api.list("?pageSize=0").await.status(), 400);
    assert_eq!(api.list("?pageSize=501").await.status(), 400);
}

/// §1.6: the QS variant marks the end with "0".
#[tokio::test]
async fn pagination_end_token_zero() {
    let api = Api::new(SimConfig {
        end_token: "0".into(),
        ..support::config()
    })
    .await;
    let ids = create_five(&api).await;
    let pages = list_all(&api, 2, "0").await;
    assert_eq!(pages.len(), 3);
    assert_eq!(pages.concat(), ids);
}

/// §1.6: a new player is invisible to List for about 10 s.
#[tokio::test]
async fn list_lag_hides_new_players() {
    let api = Api::new(support::config()).await;
    let id = created_id(api.create(player("c", 1, None)).await).await;
    let page: ListResponse = api.list("").await.json().await.expect("page");
    assert!(page.players.is_empty());
    assert_eq!(page.total_size, 0);
    api.sim.advance(Duration::from_secs(10));
    let page: ListResponse = api.list("").await.json().await.expect("page");
    assert_eq!(page.players.len(), 1);
    let p = &page.players[0];
    assert_eq!(p.id, id);
    assert_eq!(p.channel_name.as_deref(), Some("c"));
    assert_eq!(
        p.stream_url.as_deref(),
        Some("rtmp://origin.example/live/1")
    );
    assert_eq!(p.uid, Some(1));
}

/// §1.6: `filter=channelName eq X` is the only filter.
#[tokio::test]
async fn list_filter_by_channel() {
    let api = Api::new(support::config()).await;
    created_id(api.create(player("a", 1, None)).await).await;
    let b = created_id(api.create(player("b", 1, None)).await).await;
    api.sim.advance(Duration::from_secs(10));
    let page: ListResponse = api
        .list("?filter=channelName%20eq%20b")
        .await
        .json()
        .await
        .expect("page");
    assert_eq!(page.total_size, 1);
    assert_eq!(page.players[0].id, b);
    assert_eq!(api.list("?filter=name%20eq%20b").await.status(), 400);
}

/// §1.5, §1.9: Delete is 200 with an empty body and X-Resource-ID; unknown is 404.
#[tokio::test]
async fn delete_semantics() {
    let api = Api::new(support::config()).await;
    let resp = api.delete("0123456789abcdef0123456789abcdef").await;
    assert_eq!(resp.status(), 404);
    assert_eq!(message(resp).await, "Resource is not found and destroyed.");
    let id = created_id(api.create(player("c", 1, None)).await).await;
    let resp = api.delete(&id).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-resource-id"), Some(id.as_str()));
    assert!(resp.bytes().await.expect("body").is_empty());
    assert_eq!(api.delete(&id).await.status(), 404);
    let h = api.sim.history();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].destroy_reason.as_deref(), Some("Delete Request"));
}

/// §1.7: sequence is required; only a higher sequence is applied; volume 0..200.
#[tokio::test]
async fn update_sequence_semantics() {
    let api = Api::new(support::config()).await;
    let id = created_id(api.create(player("c", 1, None)).await).await;
    let url = |u: &str| json!({"player":{"streamUrl":u}});
    assert_eq!(api.update(&id, "", url("rtmp://a/1")).await.status(), 400);
    assert_eq!(
        api.update(&id, "?sequence=-1", url("rtmp://a/1"))
            .await
            .status(),
        400
    );
    let resp = api.update(&id, "?sequence=1", url("rtmp://a/1")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-resource-id"), Some(id.as_str()));
    // An older sequence answers 200 but is not applied.
    assert_eq!(
        api.update(&id, "?sequence=0", url("rtmp://a/0"))
            .await
            .status(),
        200
    );
    assert_eq!(api.sim.players(APP)[0].stream_url, "rtmp://a/1");
    assert_eq!(
        api.update(&id, "?sequence=2", url("rtmp://a/2"))
            .await
            .status(),
        200
    );
    assert_eq!(api.sim.players(APP)[0].stream_url, "rtmp://a/2");
    let loud = json!({"player":{"audioOptions":{"volume":201}}});
    assert_eq!(api.update(&id, "?sequence=3", loud).await.status(), 400);
    let quiet = json!({"player":{"audioOptions":{"volume":10}}});
    assert_eq!(api.update(&id, "?sequence=3", quiet).await.status(), 200);
    assert_eq!(api.sim.players(APP)[0].volume, 10);
    let resp = api
        .update(
            "ffffffffffffffffffffffffffffffff",
            "?sequence=9",
            url("rtmp://a/9"),
        )
        .await;
    assert_eq!(resp.status(), 404);
    // RA: Update answers other than 2XX carry no X-Request-ID (§1.5).
    assert_eq!(header(&resp, "x-request-id"), None);
}

/// §1.5, §1.8: a player starts `connecting` and becomes `running`.
#[tokio::test]
async fn connecting_then_running() {
    let api = Api::new(support::config()).await;
    let resp = api.create(player("c", 1, None)).await;
    assert_eq!(header(&resp, "x-resource-id").map(str::len), Some(32));
    let body: CreateResponse = resp.json().await.expect("body");
    assert_eq!(body.player.status, Some(PlayerStatus::Connecting));
    assert!(
        body.player
            .id
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    assert_eq!(
        body.fields.as_deref(),
        Some("player.uid,player.id,player.createTs,player.status")
    );
    assert_eq!(api.sim.players(APP)[0].status, PlayerStatus::Connecting);
    api.sim.advance(Duration::from_secs(10));
    assert_eq!(api.sim.players(APP)[0].status, PlayerStatus::Running);
    let page: ListResponse = api.list("").await.json().await.expect("page");
    assert_eq!(page.players[0].status, Some(PlayerStatus::Running));
}

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
}
