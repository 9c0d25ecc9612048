//! End to end: the simulator and pullkeeper in-process on ephemeral ports, talking HTTP.

use std::collections::BTreeSet;
use std::time::Duration;

use pullkeeper::agora::wire::CreatePlayer;
use pullkeeper::simulator::SimHandle;
use pullkeeper::store::Store;

use crate::harness::{
    ADMIN_TOKEN, APP_ID, SCENES, admin_json, eventually, start_app, start_simulator, temp_dir,
    write_config,
};

fn owned_names(sim: &SimHandle) -> BTreeSet<String> {
    sim.players(APP_ID)
        .into_iter()
        .filter_map(|p| p.name)
        .filter(|n| n.starts_with("pk_"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_scenes_converge_restart_adds_nothing_and_removal_deletes_exactly_its_players() {
    let dir = temp_dir("converge");
    let sim = start_simulator().await;
    // A player pullkeeper did not create, in one of its channels, on a UID of its range.
    let foreign_id = sim.add_foreign_player(
        APP_ID,
        CreatePlayer {
            stream_url: "rtmp://elsewhere.example.com/x".into(),
            channel_name: "news-live".into(),
            uid: Some(1000),
            name: Some("news-live_1000".into()),
            ..CreatePlayer::default()
        },
    );
    let config = write_config(&dir, &sim, SCENES);
    let store = Store::open(&dir.join("store")).unwrap();

    let app = start_app(config.clone(), store.clone()).await;
    eventually(Duration::from_secs(30), "9 players", || {
        owned_names(&sim).len() == 9
    })
    .await;
    let players = sim.players(APP_ID);
    let ours: Vec<_> = players
        .iter()
        .filter(|p| p.name.as_deref().is_some_and(|n| n.starts_with("pk_")))
        .collect();
    assert_eq!(ours.len(), 9);
    let uids: BTreeSet<(String, u64)> = ours
        .iter()
        .map(|p| (p.channel_name.clone(), p.uid.unwrap()))
        .collect();
    assert_eq!(uids.len(), 9, "UIDs unique per channel");
    assert!(
        !uids.contains(&("news-live".to_string(), 1000)),
        "the foreign player's UID is not reused"
    );
    for scene in ["news", "sports", "lobby"] {
        for slot in ["m", "b1", "b2"] {
            assert!(owned_names(&sim).contains(&format!("pk_{scene}_{slot}_1")));
        }
    }
    // Every scene gets an active (on-air) player once they run.
    eventually(Duration::from_secs(10), "all scenes on air", || {
        let all = app.board.all();
        all.len() == 3 && all.iter().all(|s| s.active_slot == Some(0))
    })
    .await;
    app.shutdown().await;
    let creates_before = sim.history().len();

    // Restart on the same store: nothing new is created, even past the List lag.
    let app = start_app(config.clone(), store.clone()).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        sim.history().len(),
        creates_before,
        "restart created players"
    );
    assert_eq!(owned_names(&sim).len(), 9);

    // Remove a scene: exactly its three players go; the foreign player stays.
    let remaining: Vec<_> = config
        .scenes
        .iter()
        .filter(|s| s.name != "sports")
        .cloned()
        .collect();
    app.set_scenes(remaining);
    eventually(Duration::from_secs(15), "sports players deleted", || {
        owned_names(&sim).len() == 6
    })
    .await;
    assert!(
        owned_names(&sim)
            .iter()
            .all(|n| !n.starts_with("pk_sports_"))
    );
    assert!(sim.players(APP_ID).iter().any(|p| p.id == foreign_id));
    let deleted: BTreeSet<String> = sim
        .history()
        .into_iter()
        .filter(|h| h.deleted_at_ms.is_some())
        .filter_map(|h| h.name)
        .collect();
    assert_eq!(
        deleted,
        ["pk_sports_m_1", "pk_sports_b1_1", "pk_sports_b2_1"]
            .into_iter()
            .map(String::from)
            .collect()
    );
    app.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn scene_status_and_metrics_are_served() {
    let dir = temp_dir("serve");
    let sim = start_simulator().await;
    let config = write_config(&dir, &sim, SCENES);
    let app = start_app(config, Store::temporary().unwrap()).await;
    let base = format!("http://{}", app.addr());
    let http = reqwest::Client::new();
    eventually(Duration::from_secs(30), "ready", || {
        app.board
            .all()
            .iter()
            .filter(|s| s.healthy_players == 3)
            .count()
            == 3
    })
    .await;
    let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let scene: serde_json::Value = admin_json(format!("{base}/v1/scenes/news")).await;
    assert_eq!(scene["active_slot"], 0);
    assert_eq!(scene["slots"].as_array().unwrap().len(), 3);
    let missing = http
        .get(format!("{base}/v1/scenes/nope"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains(r#"pullkeeper_scene_healthy_players{scene="news"} 3"#));
    assert!(metrics.contains(r#"pullkeeper_api_requests_total{api="create",code_class="2xx"} 9"#));
    assert!(!metrics.contains("e2e-secret"));
    app.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn check_command_reports_a_broken_config_with_line_and_field() {
    let dir = temp_dir("check");
    std::fs::write(
        dir.join("pullkeeper.yaml"),
        "scenes_file: scenes.yaml\nprojects: []\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("scenes.yaml"),
        "scenes:\n  - name: news\n    project: nope\n    channel: news\n    stream_url: rtmp://a/b\n    region: NA\n    backups: 1\n    uids: { start: 1, end: 9 }\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pullkeeper"))
        .args(["check", "--config"])
        .arg(dir.join("pullkeeper.yaml"))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{text}");
    assert!(
        text.contains("scenes.yaml:6:"),
        "line of the region field: {text}"
    );
    assert!(text.contains("scenes[0].region"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
