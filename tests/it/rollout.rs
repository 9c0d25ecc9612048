//! A reload that changes what only a Create can set: players are replaced one slot at a
//! time, backups first, each new player running before the old one goes, and the apps
//! are told once about the master's new UID.

use std::time::Duration;

use axum::http::StatusCode;
use pullkeeper::agora::wire::PlayerStatus;
use pullkeeper::store::Store;

use crate::harness::{
    APP_ID, ConfigMap, eventually, start_app, start_simulator, temp_dir, write_config_with,
};
use crate::support::Receiver;

fn news(idle_timeout: u32) -> String {
    format!(
        r#"
scenes:
  - name: news
    project: e2e
    channel: news-live
    stream_url: rtmp://origin.example.com/live/news
    region: na
    backups: 1
    idle_timeout: {idle_timeout}
    uids: {{ start: 1000, end: 1099 }}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_only_change_rolls_out_backup_first_and_never_leaves_the_scene_short() {
    let dir = temp_dir("rollout");
    let sim = start_simulator().await;
    let hook = Receiver::start(StatusCode::OK).await;
    let extra = format!(
        "app_webhook: {{ url: \"{}\", secret: {{ env: E2E_HOOK_SECRET }} }}\n",
        hook.url
    );
    let config = write_config_with(&dir, &sim, &news(300), &extra);
    let mut map = ConfigMap::mount(&dir, &news(300));
    let app = start_app(config, Store::temporary().unwrap()).await;
    eventually(
        Duration::from_secs(30),
        "master on air, both running",
        || {
            app.board
                .get("news")
                .is_some_and(|s| s.healthy_players == 2 && s.active_slot == Some(0))
        },
    )
    .await;
    let old_master_uid = app.board.get("news").unwrap().active_uid;

    map.update(&news(120));
    // Watch every 20 ms until the rollout is done: the scene never has fewer running
    // players than slots, never more than one extra player, and always one on air.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let players: Vec<_> = sim
            .players(APP_ID)
            .into_iter()
            .filter(|p| p.channel_name == "news-live")
            .collect();
        let running = players
            .iter()
            .filter(|p| p.status == PlayerStatus::Running)
            .count();
        assert!(running >= 2, "only {running} running: {players:?}");
        assert!(
            players.len() <= 3,
            "more than one extra player: {players:?}"
        );
        let news = app.board.get("news").unwrap();
        assert!(news.active_uid.is_some(), "nothing on air: {news:?}");
        let done = players.len() == 2
            && players.iter().all(|p| p.idle_timeout == 120)
            && news.active_slot == Some(0)
            && news.healthy_players == 2
            && news.slots.iter().all(|s| s.generation == Some(2));
        if done {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "rollout did not finish: {players:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The order, from the simulator's record: the backup's successor, the backup's
    // deletion, then the master's successor, then the master's deletion.
    let history = sim.history();
    let at = |name: &str, deleted: bool| {
        let h = history
            .iter()
            .find(|h| h.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("{name} never created"));
        if deleted {
            h.deleted_at_ms
                .unwrap_or_else(|| panic!("{name} not deleted"))
        } else {
            h.created_at_ms
        }
    };
    assert!(at("pk_news_b1_2", false) <= at("pk_news_b1_1", true));
    assert!(at("pk_news_b1_1", true) <= at("pk_news_m_2", false));
    assert!(at("pk_news_m_2", false) <= at("pk_news_m_1", true));
    assert_eq!(history.len(), 4, "exactly one new player per slot");

    // The apps heard of the master's new UID once, straight from the old one.
    let new_master_uid = app.board.get("news").unwrap().active_uid;
    assert_ne!(new_master_uid, old_master_uid, "a fresh UID");
    let announced = |r: &crate::support::Received| -> serde_json::Value {
        serde_json::from_slice(&r.body).unwrap()
    };
    eventually(Duration::from_secs(10), "the switch announced", || {
        hook.all()
            .iter()
            .any(|r| announced(r)["active_uid"] == serde_json::json!(new_master_uid))
    })
    .await;
    let switch = hook
        .all()
        .iter()
        .map(announced)
        .find(|a| a["active_uid"] == serde_json::json!(new_master_uid))
        .unwrap();
    assert_eq!(switch["previous_uid"], serde_json::json!(old_master_uid));
    assert_eq!(switch["reason"], "replaced");
    assert!(
        hook.all()
            .iter()
            .map(announced)
            .all(|a| !a["active_uid"].is_null()),
        "never announced an empty air"
    );
    app.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
