//! On air follows the source: a master still running on a dead source (as Agora keeps
//! one until its idle timeout, the simulator's `source_loss: linger`) leaves the air for
//! a backup on a live source without any player created or deleted, and takes it back
//! after the hold-down once its source returns; and with the default probing, a slot
//! held for its source is recreated within 10 s of the source's return.

use std::time::Duration;

use tokio::time::Instant;

use axum::http::StatusCode;
use pullkeeper::App;
use pullkeeper::simulator::{SimHandle, SourceLoss, SourceMode};
use pullkeeper::store::Store;

use crate::harness::{
    FAST, connect_ncs, eventually, start_app, start_simulator, start_simulator_with, temp_dir,
    write_config_full,
};
use crate::support::Receiver;

/// One probe interval of the first test: long against the probe (a loopback RTMP
/// handshake) and a pass, so that "within one interval" is told apart from two.
const INTERVAL: Duration = Duration::from_secs(1);
const HOLD_DOWN: Duration = Duration::from_secs(2);

fn scene(primary: &str, more: &str) -> String {
    format!(
        r#"
scenes:
  - name: news
    project: e2e
    channel: news-live
    stream_url: {primary}
    region: na
    hold_down: {}s
    uids: {{ start: 1000, end: 1099 }}
{more}"#,
        HOLD_DOWN.as_secs()
    )
}

async fn start(tag: &str, sim: &SimHandle, scenes: &str, extra: &str) -> App {
    let dir = temp_dir(tag);
    let config = write_config_full(&dir, sim, scenes, extra, FAST);
    let app = start_app(config, Store::temporary().unwrap()).await;
    connect_ncs(sim, &app);
    app
}

fn active_slot(app: &App) -> Option<u32> {
    app.board.get("news").and_then(|s| s.active_slot)
}

/// Every player the simulator ever had, and how many of them were deleted.
fn churn(sim: &SimHandle) -> (usize, usize) {
    let history = sim.history();
    let deleted = history.iter().filter(|h| h.deleted_at_ms.is_some()).count();
    (history.len(), deleted)
}

fn reasons(hook: &Receiver) -> Vec<String> {
    hook.all()
        .iter()
        .map(|r| {
            let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            body["reason"].as_str().unwrap().to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_on_a_dead_source_leaves_the_air_and_returns_after_the_hold_down() {
    let sim = start_simulator_with(|c| c.source_loss = SourceLoss::Linger).await;
    let primary = sim.rtmp_url("main").await.unwrap();
    let spare = sim.rtmp_url("spare").await.unwrap();
    let hook = Receiver::start(StatusCode::OK).await;
    let extra = format!(
        "source_probe: {{ interval: {}ms, max_interval: 1s, timeout: 2s }}\n\
         app_webhook: {{ url: \"{}\", secret: {{ env: E2E_HOOK_SECRET }} }}\n",
        INTERVAL.as_millis(),
        hook.url
    );
    let more = format!("    backups: 1\n    backup_stream_urls: [\"{spare}\"]\n");
    let app = start("onair-source", &sim, &scene(&primary, &more), &extra).await;
    eventually(
        Duration::from_secs(20),
        "master on air, both running",
        || {
            app.board
                .get("news")
                .is_some_and(|s| s.active_slot == Some(0) && s.healthy_players == 2)
        },
    )
    .await;
    let master_uid = app.board.get("news").unwrap().active_uid;
    assert_eq!(churn(&sim), (2, 0));

    let down = Instant::now();
    sim.set_source("main", SourceMode::Down);
    eventually(Duration::from_secs(20), "backup on air", || {
        active_slot(&app) == Some(1)
    })
    .await;
    let moved = down.elapsed();
    // At most one probe interval (the next probe is due an interval after the last
    // returned), plus the probe and a pass: milliseconds on an idle machine. Waiting for
    // a second probe would take more than the interval; the half interval of slack is
    // for a loaded machine. (The schedule itself is pinned on the paused clock:
    // `probe::monitor`, `a_source_not_down_is_probed_every_interval`.)
    assert!(
        moved < INTERVAL + INTERVAL / 2,
        "on air moved after {moved:?}"
    );
    eventually(Duration::from_secs(5), "announced", || {
        reasons(&hook).last().map(String::as_str) == Some("source_down")
    })
    .await;
    let news = app.board.get("news").unwrap();
    assert!(news.source_down, "{news:?}");
    assert_eq!(news.healthy_players, 2, "the master still runs: {news:?}");
    // Absence cannot be polled for: several probe intervals go by.
    tokio::time::sleep(INTERVAL * 4).await;
    assert_eq!(churn(&sim), (2, 0), "no player created or deleted");
    assert_eq!(active_slot(&app), Some(1));

    let up = Instant::now();
    sim.set_source("main", SourceMode::Up);
    eventually(Duration::from_secs(20), "revertive return", || {
        active_slot(&app) == Some(0)
    })
    .await;
    let returned = up.elapsed();
    assert!(
        returned >= HOLD_DOWN,
        "back on the master after {returned:?}, before the hold-down"
    );
    let news = app.board.get("news").unwrap();
    assert_eq!(news.active_uid, master_uid, "the same master player");
    assert_eq!(reasons(&hook).last().map(String::as_str), Some("failback"));
    assert_eq!(churn(&sim), (2, 0), "still no player created or deleted");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_default_probing_a_held_slot_is_recreated_within_ten_seconds_of_its_source() {
    let sim = start_simulator().await;
    let url = sim.rtmp_url("cam").await.unwrap();
    // No `source_probe` block: probing is on, with its defaults.
    let app = start("held-default", &sim, &scene(&url, ""), "").await;
    eventually(Duration::from_secs(20), "master running", || {
        app.board
            .get("news")
            .is_some_and(|s| s.healthy_players == 1)
    })
    .await;

    sim.set_source("cam", SourceMode::Down);
    eventually(Duration::from_secs(20), "held", || {
        app.board
            .get("news")
            .is_some_and(|s| s.source_down && s.slots[0].held)
    })
    .await;
    // Long enough for the re-probes to reach their 8 s cap (5 s, then 8 s).
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert_eq!(churn(&sim).0, 1, "nothing created while held");

    let up = Instant::now();
    sim.set_source("cam", SourceMode::Up);
    eventually(Duration::from_secs(30), "recreated", || churn(&sim).0 == 2).await;
    let recreated = up.elapsed();
    assert!(
        recreated <= Duration::from_secs(10),
        "recreated {recreated:?} after the source came back"
    );
    app.shutdown().await;
}
