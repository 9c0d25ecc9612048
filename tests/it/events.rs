//! Each scene's event history (`GET /v1/scenes/{name}/events`) against the simulator:
//! what a master failure records and in which order, that the history outlives a
//! restart, the bound, and the endpoint's refusals.

use std::time::Duration;

use pullkeeper::App;
use pullkeeper::simulator::SimHandle;
use pullkeeper::store::Store;
use serde_json::Value;

use crate::harness::{
    ADMIN_TOKEN, APP_ID, FAST, connect_ncs, eventually, one_scene, start_app_leading,
    start_simulator, temp_dir, write_config_full,
};

fn id_of(sim: &SimHandle, name: &str) -> String {
    sim.players(APP_ID)
        .into_iter()
        .find(|p| p.name.as_deref() == Some(name))
        .map(|p| p.id)
        .unwrap_or_else(|| panic!("{name} is not live"))
}

async fn get(app: &App, query: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new().get(format!(
        "http://{}/v1/scenes/news/events{query}",
        app.addr()
    ));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// The scene's events, newest first.
async fn events(app: &App, query: &str) -> Vec<Value> {
    let (status, body) = get(app, query, Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    body["events"].as_array().unwrap().clone()
}

/// The scene's events, oldest first, as `kind slot` strings.
async fn story(app: &App) -> Vec<String> {
    let mut all = events(app, "?limit=1000").await;
    all.reverse();
    all.iter()
        .map(|e| format!("{} {}", e["kind"].as_str().unwrap(), e["slot"]))
        .collect()
}

fn position(story: &[String], what: &str) -> usize {
    story
        .iter()
        .position(|s| s == what)
        .unwrap_or_else(|| panic!("no {what:?} in {story:#?}"))
}

struct Started {
    sim: SimHandle,
    app: App,
    store: Store,
    config: pullkeeper::config::Config,
}

/// `news` (master and one backup) on a sled store in a directory of its own, with
/// `extra` settings; both players running and the master on air.
async fn start(tag: &str, extra: &str) -> Started {
    let dir = temp_dir(tag);
    let sim = start_simulator().await;
    let config = write_config_full(&dir, &sim, &one_scene("revertive"), extra, FAST);
    let store = Store::open(&config.settings.store.path).unwrap();
    let app = start_app_leading(config.clone(), store.clone()).await;
    connect_ncs(&sim, &app);
    eventually(
        Duration::from_secs(20),
        "both running, master on air",
        || {
            app.board
                .get("news")
                .is_some_and(|s| s.healthy_players == 2 && s.active_slot == Some(0))
        },
    )
    .await;
    Started {
        sim,
        app,
        store,
        config,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_failure_is_detected_switched_replaced_and_kept_across_a_restart() {
    let Started {
        sim,
        app,
        store,
        config,
    } = start("events-failure", "").await;
    let start_story = story(&app).await;
    assert!(
        start_story.contains(&"created 0".to_string()),
        "{start_story:#?}"
    );
    assert!(
        start_story.contains(&"created 1".to_string()),
        "{start_story:#?}"
    );

    let master = id_of(&sim, "pk_news_m_1");
    let master_uid = sim
        .players(APP_ID)
        .into_iter()
        .find(|p| p.id == master)
        .and_then(|p| p.uid)
        .unwrap();
    assert!(sim.fail_player(APP_ID, &master));
    eventually(
        Duration::from_secs(20),
        "master replaced, old one deleted",
        || {
            let live = sim.players(APP_ID);
            live.iter()
                .any(|p| p.name.as_deref() == Some("pk_news_m_2"))
                && !live.iter().any(|p| p.id == master)
        },
    )
    .await;
    // The delete is recorded once Agora answered it; the replacement ran before it.
    let mut after = Vec::new();
    for _ in 0..100 {
        after = story(&app).await;
        if after.iter().any(|s| s.starts_with("deleted")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let detected = position(&after, "failure_detected 0");
    // At start the backup may have gone on air first ("started", then "master_up").
    let switched = after
        .iter()
        .skip(detected)
        .position(|s| s == "switched 1")
        .map(|i| detected + i)
        .unwrap_or_else(|| panic!("no switch to the backup after the failure: {after:#?}"));
    let created = after.iter().rposition(|s| s == "created 0").unwrap();
    let deleted = position(&after, "deleted 0");
    assert!(switched < created, "{after:#?}");
    assert!(created < deleted, "make before break: {after:#?}");

    let newest_first = events(&app, "").await;
    let detection = newest_first
        .iter()
        .find(|e| e["kind"] == "failure_detected")
        .unwrap();
    assert_eq!(detection["signal"], "ncs_status", "{detection}");
    assert_eq!(detection["detail"], "failed", "{detection}");
    assert_eq!(detection["player"], "pk_news_m_1");
    assert_eq!(detection["uid"], master_uid);
    let switch = newest_first
        .iter()
        .find(|e| e["kind"] == "switched" && e["to_slot"] == 1)
        .unwrap();
    assert_eq!(switch["reason"], "failover", "{switch}");
    assert_eq!(switch["from_slot"], 0);
    assert_eq!(switch["from_uid"], master_uid);
    assert_eq!(switch["to_uid"], switch["uid"]);
    let deleted = newest_first
        .iter()
        .find(|e| e["kind"] == "deleted")
        .unwrap();
    assert_eq!(deleted["reason"], "failed", "{deleted}");
    assert_eq!(deleted["id"], master.as_str());
    for e in &newest_first {
        let at_ms = e["at_ms"].as_u64().unwrap();
        let at = e["at"].as_str().unwrap();
        assert!(
            at.ends_with('Z') && at.len() == 24,
            "RFC 3339 with ms: {at}"
        );
        assert_eq!(&at[20..23], format!("{:03}", at_ms % 1000), "{e}");
    }
    let times: Vec<u64> = newest_first
        .iter()
        .map(|e| e["at_ms"].as_u64().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );

    // A restart reads the same history from the store.
    let before = events(&app, "?limit=1000").await;
    app.shutdown().await;
    drop(store);
    let store = reopen(&config.settings.store.path).await;
    let app = start_app_leading(config, store).await;
    let again = events(&app, "?limit=1000").await;
    assert!(again.len() >= before.len(), "{again:#?}");
    assert_eq!(again[again.len() - before.len()..], before[..]);
    app.shutdown().await;
}

/// Opens the store the app just closed (sled's threads may hold its lock a moment).
async fn reopen(path: &std::path::Path) -> Store {
    for _ in 0..250 {
        match Store::open(path) {
            Ok(store) => return store,
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    Store::open(path).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_keeps_its_bound_and_the_endpoint_refuses_what_is_wrong() {
    let Started {
        sim, app, store, ..
    } = start("events-bound", "events: { per_scene: 3, max_age: 1h }\n").await;
    // A failure and its replacement: more events than the bound.
    assert!(sim.fail_player(APP_ID, &id_of(&sim, "pk_news_m_1")));
    eventually(Duration::from_secs(20), "master replaced", || {
        sim.players(APP_ID)
            .iter()
            .any(|p| p.name.as_deref() == Some("pk_news_m_2"))
    })
    .await;
    let kept = store.scene_events("e2e", "news", usize::MAX, 0).unwrap();
    // A bound of 3 trims at every event (a tenth of it, at least one).
    assert_eq!(kept.len(), 3, "{kept:#?}");
    assert_eq!(events(&app, "").await.len(), 3, "the default limit, capped");
    assert_eq!(events(&app, "?limit=2").await.len(), 2);

    for (query, bad) in [
        ("?limit=4", "\"4\""),
        ("?limit=0", "\"0\""),
        ("?limit=x", "\"x\""),
    ] {
        let (status, body) = get(&app, query, Some(ADMIN_TOKEN)).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(
            body["message"],
            format!("limit: expected a whole number from 1 to 3 (events.per_scene), got {bad}")
        );
    }
    for token in [None, Some("wrong")] {
        let (status, body) = get(&app, "", token).await;
        assert_eq!(status, 401, "{body}");
    }
    let unknown = reqwest::Client::new()
        .get(format!("http://{}/v1/scenes/nope/events", app.addr()))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status().as_u16(), 404);
    app.shutdown().await;
}

/// Runs the real binary's `events` with the test token in its environment.
async fn events_command(args: Vec<String>) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_pullkeeper"))
            .arg("events")
            .args(args)
            .env_remove("PULLKEEPER_CONFIG")
            .env("PULLKEEPER_ADMIN_TOKEN", ADMIN_TOKEN)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        (out.status.code().unwrap_or(-1), stdout, stderr)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_events_command_prints_the_history_as_a_table_or_json() {
    let Started { app, .. } = start("events-cmd", "").await;
    let url = format!("http://{}", app.addr());
    let newest = events(&app, "?limit=2").await;
    let (code, stdout, stderr) = events_command(vec![
        "news".into(),
        "--url".into(),
        url.clone(),
        "--limit".into(),
        "2".into(),
    ])
    .await;
    assert_eq!(code, 0, "{stderr}");
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 3, "{stdout}");
    assert_eq!(rows[0], ["TIME", "KIND", "SLOT", "UID", "PLAYER", "DETAIL"]);
    for (row, event) in rows[1..].iter().zip(&newest) {
        assert_eq!(row[0], event["at"].as_str().unwrap(), "{stdout}");
        assert_eq!(row[1], event["kind"].as_str().unwrap(), "{stdout}");
    }

    let (code, stdout, stderr) = events_command(vec![
        "news".into(),
        "--url".into(),
        url.clone(),
        "-o".into(),
        "json".into(),
    ])
    .await;
    assert_eq!(code, 0, "{stderr}");
    let answer: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(answer["scene"], "news");
    assert_eq!(answer["events"][0], newest[0]);

    let (code, _, stderr) = events_command(vec!["nope".into(), "--url".into(), url]).await;
    assert_eq!(code, 1);
    assert!(
        stderr.contains("answered 404") && stderr.contains("no such scene"),
        "{stderr}"
    );
    app.shutdown().await;
}
