//! The simulator's REST API against docs/agora-api.md: auth, Create, List, Delete, Update
//! and player status; each test names the section it checks. NCS delivery, fault
//! injection and the control API are in `simulator_ncs`.

use std::time::Duration;

use pullkeeper::agora::wire::{CreateResponse, ListResponse, PlayerStatus};
use pullkeeper::simulator::SimConfig;
use serde_json::{Value, json};

use crate::support::{self, APP, Api, basic_auth, player};

pub(crate) fn header<'a>(resp: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

async fn message(resp: reqwest::Response) -> String {
    let body: Value = resp.json().await.expect("json error body");
    body["message"].as_str().expect("message field").to_string()
}

pub(crate) async fn created_id(resp: reqwest::Response) -> String {
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
    // List shows what runs now (§1.5: List entries carry `streamUrl`).
    api.sim.advance(Duration::from_secs(10));
    let page: ListResponse = api.list("").await.json().await.expect("page");
    assert_eq!(page.players[0].stream_url.as_deref(), Some("rtmp://a/2"));
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
