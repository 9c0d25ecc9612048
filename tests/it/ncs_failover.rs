//! Failover driven by NCS notices alone: the List poll is set to 30 s, so anything that
//! happens within a few seconds was caused by a notice.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pullkeeper::model::SlotKey;
use pullkeeper::ncs::signature::{HEADER_SHA256, sign_sha256};
use pullkeeper::simulator::SimHandle;

use crate::harness::{
    APP_ID, Running, connect_ncs, eventually, one_scene, start_app, start_simulator_with_lag,
    temp_dir, write_config_full,
};

/// The NCS secret the harness configures for project `e2e`.
const NCS_SECRET: &str = "e2e-ncs";

fn id_of(sim: &SimHandle, name: &str) -> String {
    sim.players(APP_ID)
        .into_iter()
        .find(|p| p.name.as_deref() == Some(name))
        .map(|p| p.id)
        .unwrap()
}

fn created(sim: &SimHandle, prefix: &str) -> Vec<String> {
    sim.history()
        .into_iter()
        .filter_map(|h| h.name)
        .filter(|n| n.starts_with(prefix))
        .collect()
}

async fn running_scene(tag: &str) -> Running {
    let running = Running::start(
        tag,
        &one_scene("revertive"),
        "",
        "poll_interval: 30s, list_lag: 1s",
    )
    .await;
    connect_ncs(&running.sim, &running.app);
    // The first List runs at start; the running statuses arrive as notices.
    let running = running.until_both_running().await;
    eventually(Duration::from_secs(5), "master on air", || {
        running
            .app
            .board
            .get("news")
            .is_some_and(|s| s.active_slot == Some(0))
    })
    .await;
    running
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_notice_fails_over_within_seconds_and_our_own_delete_changes_nothing() {
    let Running {
        sim,
        app,
        dir,
        store,
        ..
    } = running_scene("ncs-failed").await;
    sim.fail_player(APP_ID, &id_of(&sim, "pk_news_m_1"));
    eventually(Duration::from_secs(5), "backup on air", || {
        app.board
            .get("news")
            .is_some_and(|s| s.active_slot == Some(1))
    })
    .await;
    // The switch's decision time, from the notice's receipt, is in the histogram.
    let scrape = app.metrics.render();
    assert!(
        scrape.contains("pullkeeper_failover_decision_seconds_count 1\n"),
        "{scrape}"
    );
    eventually(Duration::from_secs(5), "master replaced", || {
        created(&sim, "pk_news_m_").len() == 2
    })
    .await;
    // The switch was decided before the replacement's create intent was written.
    let intent = store
        .slot(&SlotKey::new("e2e", "news", 0))
        .unwrap()
        .unwrap();
    assert_eq!(intent.name, "pk_news_m_2");
    let switched_at = app.board.get("news").unwrap().active_since_ms;
    assert!(
        switched_at <= intent.created_at_ms,
        "{switched_at} > {}",
        intent.created_at_ms
    );
    eventually(Duration::from_secs(5), "failed master deleted", || {
        sim.players(APP_ID)
            .iter()
            .all(|p| p.name.as_deref() != Some("pk_news_m_1"))
    })
    .await;
    // The "Delete Request" notice for our own delete must not start another replacement.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        created(&sim, "pk_news_m_"),
        vec!["pk_news_m_1", "pk_news_m_2"]
    );
    assert_eq!(created(&sim, "pk_news_b1_"), vec!["pk_news_b1_1"]);
    app.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_destroyed_by_agora_is_replaced() {
    let Running { sim, app, dir, .. } = running_scene("ncs-idle").await;
    sim.destroy_player(APP_ID, &id_of(&sim, "pk_news_b1_1"), "Idle Timeout");
    eventually(Duration::from_secs(5), "backup replaced", || {
        created(&sim, "pk_news_b1_").len() == 2
    })
    .await;
    assert_eq!(app.board.get("news").unwrap().active_slot, Some(0));
    app.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The webhook notice counter for `outcome`, read from the real metrics output.
fn notices(app: &pullkeeper::App, outcome: &str) -> u64 {
    let prefix = format!("pullkeeper_webhook_notices_total{{outcome=\"{outcome}\"}} ");
    app.metrics
        .render()
        .lines()
        .find_map(|l| l.strip_prefix(&prefix).map(|v| v.parse().unwrap()))
        .unwrap_or(0)
}

/// A `failed` status notice for `id`, signed with `secret`, at event time `lts`.
fn failed_notice(notice_id: &str, id: &str, name: &str, lts: u64) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "noticeId": notice_id,
        "productId": 4,
        "eventType": 4,
        "notifyMs": lts,
        "payload": {
            "lts": lts,
            "player": {"channelName": "news-live", "id": id, "name": name, "status": "failed"},
            "fields": "player.name,player.channelName,player.id,player.status"
        }
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_duplicate_and_stale_notices_act_once_or_not_at_all() {
    let Running { sim, app, dir, .. } = running_scene("ncs-guard").await;
    let url = format!("http://{}/ncs/e2e", app.addr());
    let http = reqwest::Client::new();
    let backup = id_of(&sim, "pk_news_b1_1");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;

    let (duplicates_before, stale_before) = (notices(&app, "duplicate"), notices(&app, "stale"));
    let forged = failed_notice("forged-1", &backup, "pk_news_b1_1", now);
    let answer = http
        .post(&url)
        .header(HEADER_SHA256, sign_sha256(b"not-the-secret", &forged))
        .body(forged)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);

    let stale = failed_notice("stale-1", &backup, "pk_news_b1_1", 1);
    let answer = http
        .post(&url)
        .header(HEADER_SHA256, sign_sha256(NCS_SECRET.as_bytes(), &stale))
        .body(stale)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        created(&sim, "pk_news_b1_").len(),
        1,
        "forged or stale notice acted on"
    );

    let real = failed_notice("real-1", &backup, "pk_news_b1_1", now);
    for _ in 0..3 {
        let answer = http
            .post(&url)
            .header(HEADER_SHA256, sign_sha256(NCS_SECRET.as_bytes(), &real))
            .body(real.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
    }
    eventually(Duration::from_secs(5), "backup replaced", || {
        created(&sim, "pk_news_b1_").len() == 2
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        created(&sim, "pk_news_b1_").len(),
        2,
        "one notice, one replacement"
    );
    assert_eq!(notices(&app, "bad_signature"), 1);
    assert_eq!(notices(&app, "duplicate") - duplicates_before, 2);
    assert_eq!(notices(&app, "stale") - stale_before, 1);
    app.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Agora's List does not show a new player for ~10 s; notices do. A List in that time must
/// not take a running player off air.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_during_the_list_lag_do_not_take_players_off_air() {
    let dir = temp_dir("lag");
    let sim = start_simulator_with_lag(Duration::from_secs(3)).await;
    let reconcile = "poll_interval: 200ms, list_lag: 4s";
    let config = write_config_full(&dir, &sim, &one_scene("revertive"), "", reconcile);
    let app = start_app(config, pullkeeper::store::Store::temporary().unwrap()).await;
    connect_ncs(&sim, &app);
    eventually(Duration::from_secs(10), "master on air", || {
        app.board
            .get("news")
            .is_some_and(|s| s.active_slot == Some(0) && s.healthy_players == 2)
    })
    .await;
    let version = app.board.get("news").unwrap().active_version;
    // Many Lists run while the simulator still hides both players.
    for _ in 0..40 {
        let news = app.board.get("news").unwrap();
        assert_eq!(news.active_slot, Some(0));
        assert_eq!(news.active_version, version);
        assert_eq!(news.healthy_players, 2);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sim.history().len(), 2, "no replacement either");
    app.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
