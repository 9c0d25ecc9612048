//! Failover scenarios end to end: a failed master, failback policies, strikes, an API
//! outage. The app webhook receiver stands in for the apps.

use std::time::Duration;

use axum::http::StatusCode;
use pullkeeper::APP_WEBHOOK_SIGNATURE_HEADER;
use pullkeeper::model::SlotKey;
use pullkeeper::ncs::signature::sign_sha256;
use pullkeeper::simulator::{FaultAction, FaultRule, SimHandle};
use pullkeeper::store::Store;

use crate::harness::{
    ADMIN_TOKEN, APP_ID, FAST, HOOK_SECRET, Running, eventually, one_scene, start_app,
    start_simulator, temp_dir, write_config_full, write_config_with,
};
use crate::support::Receiver;

fn player_id(sim: &SimHandle, name: &str) -> Option<String> {
    sim.players(APP_ID)
        .into_iter()
        .find(|p| p.name.as_deref() == Some(name))
        .map(|p| p.id)
}

fn uid_of(sim: &SimHandle, name: &str) -> u64 {
    sim.history()
        .into_iter()
        .find(|h| h.name.as_deref() == Some(name))
        .and_then(|h| h.uid)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_master_switches_on_air_first_then_is_replaced_and_revertive_fails_back() {
    let dir = temp_dir("failover");
    let sim = start_simulator().await;
    let hook = Receiver::start(StatusCode::OK).await;
    let extra = format!(
        "app_webhook: {{ url: \"{}\", secret: {{ env: E2E_HOOK_SECRET }} }}\n",
        hook.url
    );
    let config = write_config_with(&dir, &sim, &one_scene("revertive"), &extra);
    let store = Store::temporary().unwrap();
    let app = start_app(config, store.clone()).await;
    eventually(Duration::from_secs(20), "master on air", || {
        app.board
            .get("news")
            .is_some_and(|s| s.active_slot == Some(0))
    })
    .await;
    eventually(Duration::from_secs(20), "backup running", || {
        app.board
            .get("news")
            .is_some_and(|s| s.healthy_players == 2)
    })
    .await;
    let old_master = player_id(&sim, "pk_news_m_1").unwrap();
    let old_uid = uid_of(&sim, "pk_news_m_1");
    let backup_uid = uid_of(&sim, "pk_news_b1_1");

    assert!(sim.fail_player(APP_ID, &old_master));
    eventually(Duration::from_secs(10), "backup on air", || {
        app.board
            .get("news")
            .is_some_and(|s| s.active_slot == Some(1))
    })
    .await;
    let news = app.board.get("news").unwrap();
    assert_eq!(news.active_uid, Some(backup_uid as u32));
    eventually(Duration::from_secs(10), "replacement created", || {
        sim.history()
            .iter()
            .any(|h| h.name.as_deref() == Some("pk_news_m_2"))
    })
    .await;
    let replacement = sim
        .history()
        .into_iter()
        .find(|h| h.name.as_deref() == Some("pk_news_m_2"))
        .unwrap();
    // The switch was decided before the replacement's create intent was written (both
    // times come from pullkeeper's one clock).
    let intent = store
        .slot(&SlotKey::new("e2e", "news", 0))
        .unwrap()
        .unwrap();
    assert_eq!(intent.name, "pk_news_m_2");
    assert!(
        news.active_since_ms <= intent.created_at_ms,
        "switched at {}, replacement intent at {}",
        news.active_since_ms,
        intent.created_at_ms
    );
    let new_uid = replacement.uid.unwrap();
    assert!(new_uid != old_uid && new_uid != backup_uid, "fresh UID");
    eventually(Duration::from_secs(10), "failed master deleted", || {
        sim.history()
            .iter()
            .any(|h| h.id == old_master && h.deleted_at_ms.is_some())
    })
    .await;
    // Revertive: the new master takes the air back once it has run for the hold-down.
    eventually(
        Duration::from_secs(15),
        "failback to the new master",
        || {
            app.board
                .get("news")
                .is_some_and(|s| s.active_slot == Some(0) && s.active_uid == Some(new_uid as u32))
        },
    )
    .await;

    // At start a backup may be up a moment before the master and go on air first
    // ("started", then "master_up"); from the master on, the sequence is exact.
    let announcements = hook.wait_for(3).await;
    let summary: Vec<(u64, String, Option<u64>, Option<u64>)> = announcements
        .iter()
        .map(|r| {
            let signature = r.headers[APP_WEBHOOK_SIGNATURE_HEADER].to_str().unwrap();
            assert_eq!(signature, sign_sha256(HOOK_SECRET.as_bytes(), &r.body));
            let b: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            (
                b["version"].as_u64().unwrap(),
                b["reason"].as_str().unwrap().to_string(),
                b["active_uid"].as_u64(),
                b["previous_uid"].as_u64(),
            )
        })
        .collect();
    let versions: Vec<u64> = summary.iter().map(|s| s.0).collect();
    assert_eq!(
        versions,
        (1..=summary.len() as u64).collect::<Vec<_>>(),
        "in version order, once each"
    );
    let from_master = summary
        .iter()
        .position(|s| s.2 == Some(old_uid))
        .expect("the master went on air");
    let tail: Vec<(String, Option<u64>, Option<u64>)> = summary[from_master + 1..]
        .iter()
        .map(|s| (s.1.clone(), s.2, s.3))
        .collect();
    assert_eq!(
        tail,
        vec![
            ("failover".to_string(), Some(backup_uid), Some(old_uid)),
            ("failback".to_string(), Some(new_uid), Some(backup_uid)),
        ]
    );
    app.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_revertive_stays_on_the_healthy_backup() {
    let Running { sim, app, dir, .. } =
        Running::start("nonrev", &one_scene("non-revertive"), "", FAST)
            .await
            .until_both_running()
            .await;
    sim.fail_player(APP_ID, &player_id(&sim, "pk_news_m_1").unwrap());
    eventually(
        Duration::from_secs(20),
        "replacement master running",
        || {
            app.board.get("news").is_some_and(|s| {
                s.healthy_players == 2 && s.slots[0].name.as_deref() == Some("pk_news_m_2")
            })
        },
    )
    .await;
    // Well past the 1 s hold-down, the backup is still on air.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let news = app.board.get("news").unwrap();
    assert_eq!(news.active_slot, Some(1));
    assert_eq!(news.active_version, 2, "started, then one failover");
    app.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_missing_from_three_lists_is_replaced() {
    let Running { sim, app, dir, .. } =
        Running::start("strikes", &one_scene("revertive"), "", FAST)
            .await
            .until_both_running()
            .await;
    // No NCS here: List absence is the only evidence.
    let backup = player_id(&sim, "pk_news_b1_1").unwrap();
    sim.destroy_player(APP_ID, &backup, "Internal Error");
    eventually(Duration::from_secs(10), "a strike", || {
        app.board
            .get("news")
            .is_some_and(|s| s.slots[1].strikes >= 1)
    })
    .await;
    eventually(Duration::from_secs(10), "replacement", || {
        sim.players(APP_ID)
            .iter()
            .any(|p| p.name.as_deref() == Some("pk_news_b1_2"))
    })
    .await;
    let strikes_seen = app.board.get("news").unwrap();
    assert_eq!(strikes_seen.slots[1].name.as_deref(), Some("pk_news_b1_2"));
    app.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_outage_deletes_nothing_and_is_flagged() {
    let Running { sim, app, dir, .. } = Running::start("outage", &one_scene("revertive"), "", FAST)
        .await
        .until_both_running()
        .await;
    let before = sim.history().len();
    sim.inject(FaultRule {
        method: Some("GET".into()),
        path_contains: "/cloud-player/players".into(),
        count: 3,
        action: FaultAction::Status(503),
    });
    eventually(Duration::from_secs(10), "outage flagged", || {
        app.metrics
            .render()
            .contains(r#"pullkeeper_api_outage{project="e2e"} 1"#)
    })
    .await;
    eventually(Duration::from_secs(20), "outage over", || {
        app.metrics
            .render()
            .contains(r#"pullkeeper_api_outage{project="e2e"} 0"#)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let history = sim.history();
    assert_eq!(history.len(), before, "nothing created");
    assert!(
        history.iter().all(|h| h.deleted_at_ms.is_none()),
        "nothing deleted"
    );
    assert_eq!(app.board.get("news").unwrap().healthy_players, 2);
    app.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_failed_checks_replace_a_player_two_then_a_success_do_not() {
    let Running { sim, app, dir, .. } = Running::start(
        "check",
        &one_scene("revertive"),
        "",
        "poll_interval: 200ms, list_lag: 1s, check_interval: 200ms",
    )
    .await
    .until_both_running()
    .await;
    let master = player_id(&sim, "pk_news_m_1").unwrap();
    let backup = player_id(&sim, "pk_news_b1_1").unwrap();
    let fault = |id: &str, count| FaultRule {
        method: Some("PATCH".into()),
        path_contains: id.to_string(),
        count,
        action: FaultAction::Status(503),
    };
    // While the backup answers, the master's three 503s are about the master.
    sim.inject(fault(&master, 3));
    eventually(Duration::from_secs(10), "master replaced", || {
        sim.history()
            .iter()
            .any(|h| h.name.as_deref() == Some("pk_news_m_2"))
    })
    .await;
    sim.inject(fault(&backup, 2));
    eventually(Duration::from_secs(10), "the backup's two 503s", || {
        sim.requests()
            .iter()
            .filter(|r| r.method == "PATCH" && r.path.contains(&backup))
            .filter(|r| r.status == Some(503))
            .count()
            == 2
    })
    .await;
    eventually(Duration::from_secs(5), "a healthy check after them", || {
        sim.requests()
            .iter()
            .filter(|r| r.method == "PATCH" && r.path.contains(&backup))
            .skip_while(|r| r.status != Some(503))
            .skip_while(|r| r.status == Some(503))
            .any(|r| r.status == Some(200))
    })
    .await;
    assert!(
        !sim.history()
            .iter()
            .any(|h| h.name.as_deref() == Some("pk_news_b1_2")),
        "two strikes then a success must not replace"
    );
    app.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_that_all_get_a_5xx_are_an_api_fault_and_replace_nothing() {
    let Running { sim, app, dir, .. } = Running::start(
        "check-outage",
        &one_scene("revertive"),
        "",
        "poll_interval: 200ms, list_lag: 1s, check_interval: 200ms",
    )
    .await
    .until_both_running()
    .await;
    // Six rounds' worth for both players: twice the strike threshold.
    sim.inject(FaultRule {
        method: Some("PATCH".into()),
        path_contains: "/cloud-player/players".into(),
        count: 12,
        action: FaultAction::Status(503),
    });
    let checks = |status| {
        sim.requests()
            .iter()
            .filter(|r| r.method == "PATCH" && r.status == Some(status))
            .count()
    };
    eventually(Duration::from_secs(20), "twelve 503s, then answers", || {
        checks(503) == 12 && checks(200) >= 2
    })
    .await;
    let replaced: Vec<_> = sim
        .history()
        .into_iter()
        .filter_map(|h| h.name)
        .filter(|n| !n.ends_with("_1"))
        .collect();
    assert!(
        replaced.is_empty(),
        "replaced on an API fault: {replaced:?}"
    );
    app.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enough_stall_reports_from_apps_replace_a_player() {
    let Running { sim, app, dir, .. } =
        Running::start("reports", &one_scene("revertive"), "", FAST)
            .await
            .until_both_running()
            .await;
    let backup_uid = uid_of(&sim, "pk_news_b1_1");
    let url = format!("http://{}/v1/scenes/news/reports", app.addr());
    let http = reqwest::Client::new();
    let send = |token: &'static str, uid: u64| {
        http.post(&url)
            .bearer_auth(token)
            .json(&serde_json::json!({ "uid": uid }))
            .send()
    };
    assert_eq!(send("wrong", backup_uid).await.unwrap().status(), 401);
    assert_eq!(send(ADMIN_TOKEN, 999_999).await.unwrap().status(), 404);
    // Defaults: 3 reports within 30 s make a strike; 3 strikes fail the player.
    for _ in 0..8 {
        assert_eq!(send(ADMIN_TOKEN, backup_uid).await.unwrap().status(), 202);
    }
    eventually(Duration::from_secs(5), "two strikes shown", || {
        app.board
            .get("news")
            .is_some_and(|s| s.slots[1].strikes == 2)
    })
    .await;
    assert!(player_id(&sim, "pk_news_b1_2").is_none());
    assert_eq!(send(ADMIN_TOKEN, backup_uid).await.unwrap().status(), 202);
    eventually(Duration::from_secs(10), "backup replaced", || {
        player_id(&sim, "pk_news_b1_2").is_some()
    })
    .await;
    app.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A Create whose answer never arrives (here: answered after the client gave up, which
/// is what a 504 after the fact looks like) must not lead to a second player.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_create_answer_makes_no_duplicate() {
    let dir = temp_dir("lost-create");
    let sim = start_simulator().await;
    sim.inject(FaultRule {
        method: Some("POST".into()),
        path_contains: "/cloud-player/players".into(),
        count: 1,
        action: FaultAction::Delay(Duration::from_millis(2500)),
    });
    let scenes = one_scene("revertive").replace("backups: 1", "backups: 0");
    write_config_full(&dir, &sim, &scenes, "", FAST);
    // The client gives up after 1 s, long before the simulator answers.
    let config = crate::harness::edit_settings(&dir, "timeout: 5s", "timeout: 1s");
    let app = start_app(config, Store::temporary().unwrap()).await;
    eventually(Duration::from_secs(20), "master running", || {
        app.board
            .get("news")
            .is_some_and(|s| s.healthy_players == 1)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let history = sim.history();
    assert_eq!(
        history.len(),
        1,
        "exactly one player was ever created: {history:?}"
    );
    assert_eq!(history[0].name.as_deref(), Some("pk_news_m_1"));
    assert_eq!(sim.players(APP_ID).len(), 1);
    app.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
