//! The NCS address list (docs/agora-api.md §2.6): fetched from the simulator's v2 path,
//! or v1 when v2 is missing, kept when a refresh fails, shown on `/v1/ncs/ips` and in
//! metrics, and, when enforced, the only senders `/ncs/{project}` accepts.

use std::net::IpAddr;
use std::time::Duration;

use pullkeeper::App;
use pullkeeper::ncs::signature::{HEADER_SHA256, sign_sha256};
use pullkeeper::simulator::{FaultAction, FaultRule, SimHandle};
use pullkeeper::store::Store;
use serde_json::{Value, json};

use crate::harness::{
    APP_ID, FAST, admin_json, connect_ncs, eventually, one_scene, start_app, start_simulator,
    temp_dir, write_config_full,
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

async fn ncs_ips(app: &App) -> Value {
    admin_json(format!("http://{}/v1/ncs/ips", app.addr())).await
}

/// Polls `/v1/ncs/ips` until `cond` holds for project `e2e`'s entry; returns it.
async fn wait_ips(app: &App, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let all = ncs_ips(app).await;
        if cond(&all["projects"]["e2e"]) {
            return all["projects"]["e2e"].clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {all}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn list_is(v: &Value, ips: &[&str]) -> bool {
    v["list"]["ips"] == json!(ips)
}

fn metric(app: &App, name_and_labels: &str) -> Option<f64> {
    app.metrics
        .render()
        .lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
}

async fn start(tag: &str, sim: &SimHandle, extra: &str) -> (App, std::path::PathBuf) {
    let dir = temp_dir(tag);
    let config = write_config_full(&dir, sim, &one_scene("revertive"), extra, FAST);
    (start_app(config, Store::temporary().unwrap()).await, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_comes_from_v2_and_shows_on_v1_ncs_ips_and_in_metrics() {
    let sim = start_simulator().await;
    sim.set_ncs_ips(vec![ip("198.51.100.1"), ip("198.51.100.2")]);
    let (app, dir) = start("ncs-ips-v2", &sim, "").await;
    let e2e = wait_ips(&app, "the first list", |v| {
        list_is(v, &["198.51.100.1", "198.51.100.2"])
    })
    .await;
    assert_eq!(e2e["list"]["source"], "/v2/ncs/ip");
    assert!(e2e["list"]["fetched_at"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(e2e["last_error"], Value::Null);
    assert_eq!(ncs_ips(&app).await["enforce"], false);
    assert_eq!(
        metric(&app, r#"pullkeeper_ncs_ip_list_size{project="e2e"}"#),
        Some(2.0)
    );
    let age = metric(&app, r#"pullkeeper_ncs_ip_list_age_seconds{project="e2e"}"#).unwrap();
    assert!((0.0..60.0).contains(&age), "{age}");
    assert!(
        metric(
            &app,
            r#"pullkeeper_api_requests_total{api="ncs_ip",code_class="2xx"}"#
        )
        .is_some_and(|n| n >= 1.0)
    );
    let asked: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/ncs/ip"))
        .map(|r| (r.method, r.path, r.status))
        .collect();
    assert_eq!(asked[0], ("GET".into(), "/v2/ncs/ip".into(), Some(200)));
    app.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_answers_when_v2_is_not_found() {
    let sim = start_simulator().await;
    sim.inject(FaultRule {
        method: Some("GET".into()),
        path_contains: "/v2/ncs/ip".into(),
        count: 1,
        action: FaultAction::Status(404),
    });
    let (app, dir) = start("ncs-ips-v1", &sim, "").await;
    let e2e = wait_ips(&app, "a list", |v| list_is(v, &["127.0.0.1"])).await;
    assert_eq!(e2e["list"]["source"], "/v1/ncs/ip");
    let asked: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/ncs/ip"))
        .map(|r| (r.path, r.status))
        .take(2)
        .collect();
    assert_eq!(
        asked,
        [
            ("/v2/ncs/ip".to_string(), Some(404)),
            ("/v1/ncs/ip".to_string(), Some(200))
        ]
    );
    app.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_refresh_keeps_the_last_good_list_until_one_works() {
    let sim = start_simulator().await;
    let (app, dir) = start(
        "ncs-ips-keep",
        &sim,
        "ncs_allowlist: { refresh_interval: 1s }\n",
    )
    .await;
    wait_ips(&app, "the first list", |v| list_is(v, &["127.0.0.1"])).await;
    // Two refreshes fail on both paths; the third gets the new list.
    sim.inject(FaultRule {
        method: Some("GET".into()),
        path_contains: "/ncs/ip".into(),
        count: 4,
        action: FaultAction::Status(503),
    });
    sim.set_ncs_ips(vec![ip("198.51.100.7")]);
    let failed = wait_ips(&app, "a failed refresh", |v| !v["last_error"].is_null()).await;
    assert!(list_is(&failed, &["127.0.0.1"]), "{failed}");
    assert!(
        failed["last_error"].as_str().unwrap().contains("503"),
        "{failed}"
    );
    assert!(!failed.to_string().contains("e2e-secret"), "{failed}");
    wait_ips(&app, "the new list", |v| {
        list_is(v, &["198.51.100.7"]) && v["last_error"].is_null()
    })
    .await;
    assert_eq!(
        metric(
            &app,
            r#"pullkeeper_ncs_ip_fetch_failures_total{project="e2e"}"#
        ),
        Some(2.0)
    );
    app.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A signed Media Pull status notice (event 4) for project `e2e`.
fn notice(id: &str) -> (Vec<u8>, String) {
    let body = json!({
        "noticeId": id, "productId": 4, "eventType": 4, "notifyMs": 1,
        "payload": { "lts": 5, "fields": "player.name,player.channelName,player.id,player.status",
            "player": { "channelName": "news-live", "id": "someone-elses", "name": "x", "status": "running" } }
    })
    .to_string()
    .into_bytes();
    let signature = sign_sha256(b"e2e-ncs", &body);
    (body, signature)
}

async fn deliver(app: &App, id: &str, forwarded_for: Option<&str>) -> (u16, Value) {
    let (body, signature) = notice(id);
    let mut request = reqwest::Client::new()
        .post(format!("http://{}/ncs/e2e", app.addr()))
        .header(HEADER_SHA256, signature)
        .header("content-type", "application/json")
        .body(body);
    if let Some(xff) = forwarded_for {
        request = request.header("x-forwarded-for", xff);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforced_only_listed_senders_get_through_and_refusals_change_nothing() {
    let sim = start_simulator().await;
    sim.set_ncs_ips(vec![ip("192.0.2.1")]);
    let (app, dir) = start(
        "ncs-enforce",
        &sim,
        "ncs_allowlist: { enforce: true, trusted_proxies: [127.0.0.1] }\n",
    )
    .await;
    wait_ips(&app, "the list", |v| list_is(v, &["192.0.2.1"])).await;
    // The proxy (127.0.0.1) itself is not NCS.
    assert_eq!(deliver(&app, "n1", None).await.0, 403);
    // The right-most address the proxy did not add itself is the sender: not NCS.
    let (status, body) = deliver(&app, "n1", Some("192.0.2.1, 203.0.113.9")).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"], "address not in the NCS address list");
    // Forwarded for NCS: accepted, and as new, so the refusals recorded nothing.
    let (status, body) = deliver(&app, "n1", Some("203.0.113.9, 192.0.2.1")).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("accepted")));
    let (status, body) = deliver(&app, "n1", Some("192.0.2.1")).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("duplicate")));
    assert_eq!(
        metric(
            &app,
            r#"pullkeeper_webhook_notices_total{outcome="forbidden"}"#
        ),
        Some(2.0)
    );
    assert_eq!(ncs_ips(&app).await["enforce"], true);
    app.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforced_with_the_simulators_list_its_own_notices_are_accepted() {
    let sim = start_simulator().await;
    let (app, dir) = start(
        "ncs-enforce-sim",
        &sim,
        "ncs_allowlist: { enforce: true }\n",
    )
    .await;
    wait_ips(&app, "the list", |v| list_is(v, &["127.0.0.1"])).await;
    eventually(Duration::from_secs(20), "both running", || {
        app.board
            .get("news")
            .is_some_and(|s| s.healthy_players == 2)
    })
    .await;
    connect_ncs(&sim, &app);
    let backup = sim
        .players(APP_ID)
        .into_iter()
        .find(|p| p.name.as_deref() == Some("pk_news_b1_1"))
        .unwrap();
    assert!(sim.fail_player(APP_ID, &backup.id));
    eventually(
        Duration::from_secs(20),
        "the failure notice accepted",
        || {
            metric(
                &app,
                r#"pullkeeper_webhook_notices_total{outcome="accepted"}"#,
            )
            .is_some_and(|n| n >= 1.0)
        },
    )
    .await;
    assert_eq!(
        metric(
            &app,
            r#"pullkeeper_webhook_notices_total{outcome="forbidden"}"#
        ),
        None
    );
    app.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
