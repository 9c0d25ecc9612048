//! Source probing end to end: a dead source holds its failed players back instead of
//! recreating them in a loop, marks the scene `source_down`, and its return brings them
//! back; a frozen HLS playlist is a dead source; a backup source keeps the scene on air;
//! a slate covers the time every source is down.

use std::time::Duration;

use pullkeeper::App;
use pullkeeper::simulator::{SimHandle, SourceMode};
use pullkeeper::store::Store;

use crate::harness::{
    APP_ID, FAST, admin_json, connect_ncs, eventually, start_app, start_simulator, temp_dir,
    write_config_full,
};

/// Probes every 200 ms, backing off to 1 s while a source is down.
const PROBING: &str = "source_probe: { interval: 200ms, max_interval: 1s, timeout: 2s }\n";

fn scene(stream_url: &str, backups: u32, more: &str) -> String {
    format!(
        r#"
scenes:
  - name: news
    project: e2e
    channel: news-live
    stream_url: {stream_url}
    region: na
    backups: {backups}
    hold_down: 1s
    uids: {{ start: 1000, end: 1099 }}
{more}"#
    )
}

async fn start(tag: &str, sim: &SimHandle, scenes: &str) -> App {
    let dir = temp_dir(tag);
    let config = write_config_full(&dir, sim, scenes, PROBING, FAST);
    let app = start_app(config, Store::temporary().unwrap()).await;
    connect_ncs(sim, &app);
    app
}

fn created(sim: &SimHandle, prefix: &str) -> Vec<String> {
    sim.history()
        .into_iter()
        .filter_map(|h| h.name)
        .filter(|n| n.starts_with(prefix))
        .collect()
}

fn healthy(app: &App, n: u32) -> bool {
    app.board
        .get("news")
        .is_some_and(|s| s.healthy_players == n)
}

fn metric(app: &App, series: &str) -> Option<String> {
    app.metrics
        .render()
        .lines()
        .find_map(|l| l.strip_prefix(series).map(|v| v.trim().to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_source_holds_replacements_and_its_return_brings_them_back() {
    let sim = start_simulator().await;
    let url = sim.rtmp_url("cam").await.unwrap();
    let app = start("source-down", &sim, &scene(&url, 1, "")).await;
    eventually(Duration::from_secs(20), "both running", || healthy(&app, 2)).await;

    sim.set_source("cam", SourceMode::Down);
    eventually(Duration::from_secs(20), "scene marked source_down", || {
        app.board.get("news").is_some_and(|s| {
            s.source_down
                && s.slots
                    .iter()
                    .all(|slot| slot.held && slot.status == "failed")
        })
    })
    .await;
    let before = created(&sim, "pk_news_");
    assert_eq!(before.len(), 2, "{before:?}");
    // Absence cannot be polled for: let several backed-off probes (1 s cap) go by.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        created(&sim, "pk_news_"),
        before,
        "no create while the source is down"
    );
    let status: serde_json::Value =
        admin_json(format!("http://{}/v1/scenes/news", app.addr())).await;
    assert_eq!(status["source_down"], true, "{status}");
    assert_eq!(status["sources"][0]["state"], "down", "{status}");
    assert!(
        !status.to_string().contains(&url),
        "no URL in /v1: {status}"
    );
    assert_eq!(
        metric(&app, r#"pullkeeper_scene_source_down{scene="news"}"#).as_deref(),
        Some("1")
    );
    assert_eq!(
        metric(
            &app,
            r#"pullkeeper_source_up{scene="news",source="primary"}"#
        )
        .as_deref(),
        Some("0")
    );

    sim.set_source("cam", SourceMode::Up);
    // Within one capped probe interval (1 s) on an idle machine; generous on a busy one.
    eventually(Duration::from_secs(20), "both replaced and running", || {
        healthy(&app, 2) && app.board.get("news").is_some_and(|s| !s.source_down)
    })
    .await;
    let after = created(&sim, "pk_news_");
    assert_eq!(after.len(), 4, "one replacement per slot: {after:?}");
    assert!(after.contains(&"pk_news_m_2".to_string()));
    assert_eq!(
        metric(
            &app,
            r#"pullkeeper_source_up{scene="news",source="primary"}"#
        )
        .as_deref(),
        Some("1")
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_hls_playlist_is_a_dead_source() {
    let sim = start_simulator().await;
    let app = start("source-frozen", &sim, &scene(&sim.hls_url("tv"), 0, "")).await;
    eventually(Duration::from_secs(20), "master running", || {
        healthy(&app, 1)
    })
    .await;

    sim.set_source("tv", SourceMode::Frozen);
    eventually(
        Duration::from_secs(20),
        "frozen playlist judged down",
        || {
            app.board
                .get("news")
                .is_some_and(|s| s.source_down && s.slots[0].held)
        },
    )
    .await;
    assert_eq!(created(&sim, "pk_news_").len(), 1);

    sim.set_source("tv", SourceMode::Up);
    eventually(Duration::from_secs(20), "replaced once it advances", || {
        healthy(&app, 1) && app.board.get("news").is_some_and(|s| !s.source_down)
    })
    .await;
    assert_eq!(created(&sim, "pk_news_m_").len(), 2);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_source_keeps_the_scene_on_air_and_the_master_returns_after_it() {
    let sim = start_simulator().await;
    let primary = sim.rtmp_url("main").await.unwrap();
    let spare = sim.rtmp_url("spare").await.unwrap();
    let more = format!("    backup_stream_urls: [\"{spare}\"]\n");
    let app = start("source-backup", &sim, &scene(&primary, 1, &more)).await;
    eventually(Duration::from_secs(20), "both running", || healthy(&app, 2)).await;
    let pulls = |slot_name: &str| {
        sim.players(APP_ID)
            .into_iter()
            .find(|p| p.name.as_deref() == Some(slot_name))
            .map(|p| p.stream_url)
    };
    assert_eq!(pulls("pk_news_m_1"), Some(primary.clone()));
    assert_eq!(pulls("pk_news_b1_1"), Some(spare.clone()));

    sim.set_source("main", SourceMode::Down);
    eventually(
        Duration::from_secs(20),
        "backup on air, master held",
        || {
            app.board
                .get("news")
                .is_some_and(|s| s.active_slot == Some(1) && s.source_down && s.slots[0].held)
        },
    )
    .await;
    let onair = app.board.get("news").unwrap();
    let onair_player = sim
        .players(APP_ID)
        .into_iter()
        .find(|p| p.uid == onair.active_uid.map(u64::from))
        .unwrap();
    assert_eq!(onair_player.stream_url, spare, "on air pulls the up source");
    assert_eq!(onair.sources[1].state, "up", "{:?}", onair.sources);

    sim.set_source("main", SourceMode::Up);
    eventually(Duration::from_secs(20), "revertive failback", || {
        app.board.get("news").is_some_and(|s| {
            s.active_slot == Some(0) && s.slots[0].name.as_deref() == Some("pk_news_m_2")
        })
    })
    .await;
    assert_eq!(pulls("pk_news_m_2"), Some(primary));
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_slate_covers_while_every_source_is_down_and_goes_after() {
    let sim = start_simulator().await;
    let slate = sim.file_url("cards", "slate.png");
    let more = format!("    slate_url: {slate}\n");
    let app = start("source-slate", &sim, &scene(&sim.hls_url("solo"), 0, &more)).await;
    eventually(Duration::from_secs(20), "master running", || {
        healthy(&app, 1)
    })
    .await;

    sim.set_source("solo", SourceMode::Down);
    eventually(Duration::from_secs(20), "slate on air", || {
        app.board.get("news").is_some_and(|s| {
            s.source_down
                && s.slots
                    .iter()
                    .any(|slot| slot.source == "slate" && Some(slot.slot) == s.active_slot)
        })
    })
    .await;
    let slate_player = sim
        .players(APP_ID)
        .into_iter()
        .find(|p| p.name.as_deref() == Some("pk_news_s_1"))
        .unwrap();
    assert_eq!(slate_player.stream_url, slate);

    sim.set_source("solo", SourceMode::Up);
    eventually(
        Duration::from_secs(20),
        "master back on air, slate gone",
        || {
            let gone = sim
                .players(APP_ID)
                .iter()
                .all(|p| p.name.as_deref() != Some("pk_news_s_1"));
            gone && app
                .board
                .get("news")
                .is_some_and(|s| s.active_slot == Some(0) && s.slots.len() == 1)
        },
    )
    .await;
    app.shutdown().await;
}
