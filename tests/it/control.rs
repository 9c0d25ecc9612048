//! Operator control against the simulator: a manual switch and pin, maintenance, their
//! durability across a restart, and the CLI (drills: `drills.rs`).

use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use pullkeeper::model::SceneStatus;
use pullkeeper::simulator::SimHandle;
use pullkeeper::store::Store;

use crate::harness::{
    ADMIN_TOKEN, APP_ID, Backend, FAST, Running, admin_json, connect_ncs, eventually, one_scene,
    start_app_leading, start_simulator, temp_dir, write_config_full,
};

/// Sends an admin request; returns its status and JSON body.
pub(crate) async fn call(
    base: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .request(method, format!("{base}{path}"))
        .bearer_auth(ADMIN_TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

pub(crate) async fn post(base: &str, path: &str, body: Value) -> (StatusCode, Value) {
    call(base, reqwest::Method::POST, path, Some(body)).await
}

pub(crate) fn news(r: &Running) -> SceneStatus {
    r.app.board.get("news").unwrap()
}

pub(crate) fn player_id(sim: &SimHandle, name: &str) -> String {
    sim.players(APP_ID)
        .into_iter()
        .find(|p| p.name.as_deref() == Some(name))
        .map(|p| p.id)
        .unwrap_or_else(|| panic!("{name} is not live"))
}

pub(crate) fn created(sim: &SimHandle) -> Vec<String> {
    sim.history().into_iter().filter_map(|h| h.name).collect()
}

pub(crate) async fn started(tag: &str, failback: &str) -> Running {
    let r = Running::start(tag, &one_scene(failback), "", FAST)
        .await
        .until_both_running()
        .await;
    connect_ncs(&r.sim, &r.app);
    eventually(Duration::from_secs(10), "master on air", || {
        news(&r).active_slot == Some(0)
    })
    .await;
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_switch_goes_to_a_running_slot_and_is_refused_for_one_that_does_not_run() {
    let r = started("ctl-switch", "non-revertive").await;
    let base = format!("http://{}", r.app.addr());
    let before = news(&r);

    let (status, body) = post(&base, "/v1/scenes/news/on-air", json!({"slot": 1})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let after = news(&r);
    assert_eq!(body["active_version"], before.active_version + 1);
    assert_eq!(
        after.active_slot,
        Some(1),
        "switched in the pass that answered"
    );
    assert_eq!(after.active_version, before.active_version + 1);
    let scene = admin_json(format!("{base}/v1/scenes/news")).await;
    assert_eq!(scene["active_reason"], "manual");
    assert_eq!(scene["pinned_slot"], Value::Null);
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"pullkeeper_onair_switches_total{reason="manual"} 1"#),
        "{metrics}"
    );

    // In maintenance the failed master stays unreplaced: a switch to it is refused with
    // the reason, and nothing changes.
    let (status, _) = post(&base, "/v1/scenes/news/maintenance", json!(null)).await;
    assert_eq!(status, StatusCode::OK);
    r.sim.fail_player(APP_ID, &player_id(&r.sim, "pk_news_m_1"));
    eventually(Duration::from_secs(10), "the master seen failed", || {
        news(&r).slots[0].status == "failed"
    })
    .await;
    let version = news(&r).active_version;
    let (status, body) = post(&base, "/v1/scenes/news/on-air", json!({"slot": 0})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["message"], "slot 0 has no running player");
    assert_eq!(news(&r).active_version, version);
    let (status, body) = post(&base, "/v1/scenes/news/on-air", json!({"slot": 5})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["message"], "the scene has no slot 5");

    // Bad requests say what was wrong; unknown scenes are 404; the token is required.
    for bad in [
        json!({}),
        json!({"slot": "one"}),
        json!({"slot": 1, "extra": 1}),
    ] {
        let (status, body) = post(&base, "/v1/scenes/news/on-air", bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .starts_with("expected {\"slot\""),
            "{body}"
        );
    }
    let (status, _) = post(&base, "/v1/scenes/nope/on-air", json!({"slot": 0})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let unauthenticated = reqwest::Client::new()
        .post(format!("{base}/v1/scenes/news/maintenance"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
    r.app.shutdown().await;
    let _ = std::fs::remove_dir_all(&r.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pin_outlasts_the_failback_policy_and_a_failing_pinned_player_releases_it() {
    let r = started("ctl-pin", "revertive").await;
    let base = format!("http://{}", r.app.addr());
    let (status, body) = post(
        &base,
        "/v1/scenes/news/on-air",
        json!({"slot": 1, "pin": true}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(news(&r).pinned_slot, Some(1));
    // Revertive with a 1 s hold-down would be back on the master well within 3 s.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(news(&r).active_slot, Some(1), "pinned");

    // The pinned player fails: failover anyway, and the pin is gone.
    r.sim
        .fail_player(APP_ID, &player_id(&r.sim, "pk_news_b1_1"));
    eventually(
        Duration::from_secs(10),
        "failover off the pinned slot",
        || {
            let s = news(&r);
            s.active_slot == Some(0) && s.pinned_slot.is_none()
        },
    )
    .await;
    assert_eq!(
        r.store.scene_controls("e2e").unwrap(),
        vec![],
        "the release is kept"
    );

    // A pin, then unpin: the revertive policy takes the air back.
    eventually(Duration::from_secs(20), "backup replaced", || {
        news(&r).healthy_players == 2
    })
    .await;
    let (status, _) = post(
        &base,
        "/v1/scenes/news/on-air",
        json!({"slot": 1, "pin": true}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(&base, reqwest::Method::DELETE, "/v1/scenes/news/pin", None).await;
    assert_eq!(status, StatusCode::OK);
    eventually(Duration::from_secs(10), "failback after unpin", || {
        news(&r).active_slot == Some(0)
    })
    .await;
    // The scene's history has the operator's actions and the pin's release, newest first.
    let (status, history) = call(&base, reqwest::Method::GET, "/v1/scenes/news/events", None).await;
    assert_eq!(status, StatusCode::OK, "{history}");
    let kinds: Vec<&str> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .filter(|k| matches!(*k, "manual_switch" | "pin_released"))
        .collect();
    assert_eq!(
        kinds,
        [
            "pin_released",
            "manual_switch",
            "pin_released",
            "manual_switch"
        ],
        "{history}"
    );
    r.app.shutdown().await;
    let _ = std::fs::remove_dir_all(&r.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_failing_in_maintenance_is_replaced_only_once_maintenance_ends() {
    let r = started("ctl-maint", "revertive").await;
    let base = format!("http://{}", r.app.addr());
    let (status, body) = post(&base, "/v1/scenes/news/maintenance", json!(null)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let scene = admin_json(format!("{base}/v1/scenes/news")).await;
    assert_eq!(scene["maintenance"]["by"], "api");
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("pullkeeper_scenes_in_maintenance 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"pullkeeper_scene_maintenance_since_timestamp_seconds{scene="news"}"#)
    );

    let creates = created(&r.sim).len();
    r.sim
        .fail_player(APP_ID, &player_id(&r.sim, "pk_news_b1_1"));
    eventually(Duration::from_secs(10), "the backup seen failed", || {
        news(&r).slots[1].status == "failed"
    })
    .await;
    // Several polls and List strikes later, nothing was created or deleted.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(created(&r.sim).len(), creates, "no create in maintenance");
    assert!(
        r.sim.history().iter().all(|h| h.deleted_at_ms.is_none()),
        "no delete in maintenance"
    );
    // A drill is refused meanwhile.
    let (status, body) = post(&base, "/v1/scenes/news/drill", json!({"mode": "switch"})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["message"], "the scene is in maintenance");

    let (status, _) = call(
        &base,
        reqwest::Method::DELETE,
        "/v1/scenes/news/maintenance",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    eventually(
        Duration::from_secs(10),
        "replaced after maintenance",
        || created(&r.sim).iter().any(|n| n == "pk_news_b1_2"),
    )
    .await;
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("pullkeeper_scenes_in_maintenance 0"),
        "{metrics}"
    );
    r.app.shutdown().await;
    let _ = std::fs::remove_dir_all(&r.dir);
}

/// Opens the sled store at `path` again, waiting for the last process's lock.
async fn reopen(path: &Path) -> Store {
    for _ in 0..250 {
        match Store::open(path) {
            Ok(store) => return store,
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    Store::open(path).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_the_pin_and_maintenance() {
    let dir = temp_dir("ctl-restart");
    let sim = start_simulator().await;
    let config = write_config_full(&dir, &sim, &one_scene("revertive"), "", FAST);
    let path = dir.join("store");
    let app = start_app_leading(config.clone(), Store::open(&path).unwrap()).await;
    connect_ncs(&sim, &app);
    let base = format!("http://{}", app.addr());
    eventually(Duration::from_secs(20), "both running", || {
        app.board
            .get("news")
            .is_some_and(|s| s.healthy_players == 2)
    })
    .await;
    let (status, _) = post(
        &base,
        "/v1/scenes/news/on-air",
        json!({"slot": 1, "pin": true}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = post(&base, "/v1/scenes/news/maintenance", json!(null)).await;
    assert_eq!(status, StatusCode::OK);
    let since = app.board.get("news").unwrap().maintenance.unwrap().since_ms;
    app.shutdown().await;

    let app = start_app_leading(config, reopen(&path).await).await;
    connect_ncs(&sim, &app);
    eventually(
        Duration::from_secs(20),
        "published after the restart",
        || {
            app.board
                .get("news")
                .is_some_and(|s| s.healthy_players == 2)
        },
    )
    .await;
    let news = app.board.get("news").unwrap();
    assert_eq!(news.pinned_slot, Some(1));
    assert_eq!(
        news.maintenance.map(|m| m.since_ms),
        Some(since),
        "the start is kept"
    );
    // Revertive with a 1 s hold-down, yet the pin holds after the restart.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(app.board.get("news").unwrap().active_slot, Some(1));
    app.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_and_maintenance_work_on_the_etcd_store_too() {
    let r = Running::start_on(Backend::Etcd, "ctl-etcd", &one_scene("revertive"), "", FAST)
        .await
        .until_both_running()
        .await;
    let base = format!("http://{}", r.app.addr());
    let (status, _) = post(
        &base,
        "/v1/scenes/news/on-air",
        json!({"slot": 1, "pin": true}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = post(&base, "/v1/scenes/news/maintenance", json!(null)).await;
    assert_eq!(status, StatusCode::OK);
    let controls = r.store.scene_controls("e2e").unwrap();
    assert_eq!(controls.len(), 1);
    assert_eq!(controls[0].1.pinned, Some(1));
    assert!(controls[0].1.maintenance.is_some());
    r.app.shutdown().await;
    let _ = std::fs::remove_dir_all(&r.dir);
}

/// Runs `pullkeeper ARGS… --url URL` with the admin token in its environment.
async fn cli(args: &[&str], url: &str) -> (i32, String) {
    let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    args.extend(["--url".to_string(), url.to_string()]);
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_pullkeeper"))
            .args(args)
            .env_remove("PULLKEEPER_CONFIG")
            .env("PULLKEEPER_ADMIN_TOKEN", ADMIN_TOKEN)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code().unwrap_or(-1), text)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_switches_pins_maintains_and_drills_through_the_admin_api() {
    let r = started("ctl-cli", "revertive").await;
    let url = format!("http://{}", r.app.addr());
    let (code, text) = cli(&["switch", "news", "1", "--pin"], &url).await;
    assert_eq!(code, 0, "{text}");
    assert!(
        text.starts_with("news: slot 1 on air, pinned (version "),
        "{text}"
    );
    assert_eq!(news(&r).pinned_slot, Some(1));
    let (code, text) = cli(&["status", "news"], &url).await;
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("news: pinned on air on slot 1"), "{text}");
    let (code, text) = cli(&["drill", "news"], &url).await;
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("refused: the scene is pinned on air; unpin it first"),
        "{text}"
    );
    let (code, text) = cli(&["unpin", "news"], &url).await;
    assert_eq!((code, text.trim()), (0, "news: not pinned"));
    let (code, text) = cli(&["maintenance", "news", "on"], &url).await;
    assert_eq!((code, text.trim()), (0, "news: in maintenance"));
    let (code, text) = cli(&["status", "news"], &url).await;
    assert!(
        text.contains("news: in maintenance since ") && text.contains("(Unix s, by api)"),
        "{code} {text}"
    );
    let (code, text) = cli(&["maintenance", "news", "off"], &url).await;
    assert_eq!((code, text.trim()), (0, "news: supervised"));
    eventually(Duration::from_secs(10), "back on the master", || {
        news(&r).active_slot == Some(0)
    })
    .await;
    let (code, text) = cli(&["drill", "news", "--replace"], &url).await;
    assert_eq!(code, 0, "{text}");
    assert!(text.starts_with("news: replace drill news-"), "{text}");
    let (code, text) = cli(&["switch", "nope", "0"], &url).await;
    assert_eq!(code, 1);
    assert!(text.contains("answered 404: no such scene"), "{text}");
    r.app.shutdown().await;
    let _ = std::fs::remove_dir_all(&r.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_from_the_scenes_file_holds_until_the_file_ends_it() {
    let dir = temp_dir("ctl-file");
    let sim = start_simulator().await;
    let scenes = format!("{}    maintenance: true\n", one_scene("revertive"));
    let config = write_config_full(&dir, &sim, &scenes, "", FAST);
    let r = Running::launch(sim, dir, config.clone()).await;
    let base = format!("http://{}", r.app.addr());
    eventually(Duration::from_secs(10), "published in maintenance", || {
        r.app
            .board
            .get("news")
            .is_some_and(|s| s.maintenance.is_some())
    })
    .await;
    let scene = admin_json(format!("{base}/v1/scenes/news")).await;
    assert_eq!(scene["maintenance"]["by"], "scenes_file");
    let (status, body) = call(
        &base,
        reqwest::Method::DELETE,
        "/v1/scenes/news/maintenance",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("remove `maintenance: true`"),
        "{body}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(created(&r.sim).is_empty(), "nothing created in maintenance");

    let mut scenes = config.scenes.clone();
    scenes[0].maintenance = false;
    r.app.set_scenes(scenes);
    eventually(
        Duration::from_secs(20),
        "supervised once the file says so",
        || {
            r.app
                .board
                .get("news")
                .is_some_and(|s| s.maintenance.is_none() && s.healthy_players == 2)
        },
    )
    .await;
    r.app.shutdown().await;
    let _ = std::fs::remove_dir_all(&r.dir);
}
