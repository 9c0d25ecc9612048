//! Failover drills through the admin API, against the simulator: a switch drill, a
//! replace drill, the refusals, and a drill during a failure storm.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use pullkeeper::agora::wire::PlayerStatus;

use crate::control::{call, created, news, player_id, post, started};
use crate::harness::{APP_ID, FAST, Running, admin_json, eventually, one_scene};

/// The drill's report once it is no longer running.
async fn drill_done(base: &str, id: &str) -> Value {
    let mut report = Value::Null;
    for _ in 0..400 {
        report = admin_json(format!("{base}/v1/drills/{id}")).await;
        if report["state"] != "running" {
            return report;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("drill {id} did not end: {report}");
}

fn steps(report: &Value) -> Vec<(String, u64)> {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["step"].as_str().unwrap().to_string(),
                s["at_ms"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_drill_holds_the_backup_then_fails_back_and_reports_its_steps() {
    let r = started("ctl-drill-switch", "revertive").await;
    let base = format!("http://{}", r.app.addr());
    let version = news(&r).active_version;
    let (status, body) = post(
        &base,
        "/v1/scenes/news/drill",
        json!({"mode": "switch", "hold": 2}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body["drill"].as_str().unwrap().to_string();
    assert_eq!(news(&r).active_slot, Some(1));
    assert_eq!(news(&r).drill.as_deref(), Some(id.as_str()));
    // Another drill in the project is refused while this one runs.
    let (status, again) = post(&base, "/v1/scenes/news/drill", json!({"mode": "replace"})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(again["message"].as_str().unwrap().contains(&id), "{again}");

    let report = drill_done(&base, &id).await;
    assert_eq!(report["state"], "completed", "{report}");
    assert_eq!(report["on_air_throughout"], true);
    assert_eq!(report["hold_ms"], 2000);
    let steps = steps(&report);
    let names: Vec<&str> = steps.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(names, ["switch_published", "hold_ended", "back_on_master"]);
    let started_ms = report["started_ms"].as_u64().unwrap();
    assert_eq!(steps[0].1, started_ms);
    assert_eq!(steps[1].1, started_ms + 2000, "the hold ends when it says");
    assert!(steps[2].1 >= steps[1].1, "{steps:?}");
    let after = news(&r);
    assert_eq!(
        (after.active_slot, after.active_version),
        (Some(0), version + 2)
    );
    assert!(created(&r.sim).len() == 2, "a switch drill creates nothing");

    // The default hold is 30 s; a hold out of range is a bad request.
    for hold in [0, 3601] {
        let (status, body) = post(
            &base,
            "/v1/scenes/news/drill",
            json!({"mode": "switch", "hold": hold}),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    }
    let (status, _) = post(&base, "/v1/scenes/news/drill", json!({"mode": "sideways"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = post(&base, "/v1/scenes/news/drill", json!({"mode": "switch"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let report = admin_json(format!(
        "{base}/v1/drills/{}",
        body["drill"].as_str().unwrap()
    ))
    .await;
    assert_eq!(report["hold_ms"], 30_000);
    r.app.shutdown().await;
    let _ = std::fs::remove_dir_all(&r.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replace_drill_replaces_the_master_under_a_fresh_uid_and_returns_to_it() {
    let r = started("ctl-drill-replace", "revertive").await;
    let base = format!("http://{}", r.app.addr());
    let old_uid = news(&r).slots[0].uid.unwrap();
    let (status, body) = post(&base, "/v1/scenes/news/drill", json!({"mode": "replace"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body["drill"].as_str().unwrap().to_string();
    let report = drill_done(&base, &id).await;
    assert_eq!(report["state"], "completed", "{report}");
    assert_eq!(report["on_air_throughout"], true);
    let steps = steps(&report);
    let names: Vec<&str> = steps.iter().map(|(s, _)| s.as_str()).collect();
    for step in [
        "switch_published",
        "replacement_created",
        "master_deleted",
        "replacement_running",
        "back_on_master",
    ] {
        assert!(names.contains(&step), "{step} missing: {steps:?}");
    }
    let at = |name: &str| steps.iter().find(|(s, _)| s == name).unwrap().1;
    assert!(at("switch_published") <= at("replacement_created"));
    assert!(at("replacement_created") <= at("replacement_running"));
    assert!(at("replacement_running") <= at("back_on_master"));
    let after = news(&r);
    let new_uid = after.slots[0].uid.unwrap();
    assert_ne!(new_uid, old_uid, "a fresh UID");
    assert_eq!(after.slots[0].name.as_deref(), Some("pk_news_m_2"));
    assert_eq!(
        (after.active_slot, after.active_uid),
        (Some(0), Some(new_uid))
    );
    let masters: Vec<String> = created(&r.sim)
        .into_iter()
        .filter(|n| n.starts_with("pk_news_m_"))
        .collect();
    assert_eq!(
        masters,
        ["pk_news_m_1", "pk_news_m_2"],
        "one replacement, no duplicate"
    );
    r.app.shutdown().await;
    let _ = std::fs::remove_dir_all(&r.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_is_refused_while_pinned_and_without_a_running_backup() {
    let scenes = one_scene("revertive").replace("backups: 1", "backups: 0");
    let r = Running::start("ctl-drill-refused", &scenes, "", FAST).await;
    eventually(Duration::from_secs(20), "master on air", || {
        r.app
            .board
            .get("news")
            .is_some_and(|s| s.active_slot == Some(0))
    })
    .await;
    let base = format!("http://{}", r.app.addr());
    let (status, _) = post(
        &base,
        "/v1/scenes/news/on-air",
        json!({"slot": 0, "pin": true}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = post(&base, "/v1/scenes/news/drill", json!({"mode": "switch"})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        body["message"],
        "the scene is pinned on air; unpin it first"
    );
    let (status, _) = call(&base, reqwest::Method::DELETE, "/v1/scenes/news/pin", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = post(&base, "/v1/scenes/news/drill", json!({"mode": "replace"})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["message"], "the scene has no running backup");
    assert_eq!(
        created(&r.sim),
        ["pk_news_m_1"],
        "a refused drill does nothing"
    );
    r.app.shutdown().await;
    let _ = std::fs::remove_dir_all(&r.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_during_a_failure_storm_is_refused_or_completes_without_a_duplicate() {
    let r = started("ctl-drill-storm", "revertive").await;
    let base = format!("http://{}", r.app.addr());
    let mut outcomes = Vec::new();
    // A replace drill whose on-air backup fails in the middle of it: it still completes.
    let (status, body) = post(&base, "/v1/scenes/news/drill", json!({"mode": "replace"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    r.sim
        .fail_player(APP_ID, &player_id(&r.sim, "pk_news_b1_1"));
    let report = drill_done(&base, body["drill"].as_str().unwrap()).await;
    assert_eq!(report["state"], "completed", "{report}");
    outcomes.push(format!(
        "completed, on air throughout: {}",
        report["on_air_throughout"]
    ));
    eventually(Duration::from_secs(30), "both running again", || {
        news(&r).healthy_players == 2
    })
    .await;
    for round in 0..3 {
        // Fail whatever runs, then ask for a drill at once.
        let ids: Vec<String> = r.sim.players(APP_ID).into_iter().map(|p| p.id).collect();
        r.sim
            .fail_players(APP_ID, &ids[..ids.len().min(1 + round % 2)]);
        let (status, body) = post(
            &base,
            "/v1/scenes/news/drill",
            json!({"mode": "replace", "hold": 1}),
        )
        .await;
        match status {
            StatusCode::OK => {
                let report = drill_done(&base, body["drill"].as_str().unwrap()).await;
                outcomes.push(report["state"].as_str().unwrap().to_string());
            }
            StatusCode::CONFLICT => outcomes.push(format!("refused: {}", body["message"])),
            other => panic!("{other}: {body}"),
        }
        eventually(Duration::from_secs(30), "both running again", || {
            news(&r).healthy_players == 2
        })
        .await;
    }
    println!("drills in a storm: {outcomes:?}");
    // Never two live players of one slot (a failed one waiting to be deleted once its
    // successor runs, make before break, is not live).
    let live = r.sim.players(APP_ID);
    for slot in ["pk_news_m_", "pk_news_b1_"] {
        let n = live
            .iter()
            .filter(|p| p.status != PlayerStatus::Failed)
            .filter(|p| p.name.as_deref().is_some_and(|n| n.starts_with(slot)))
            .count();
        assert!(n <= 1, "{n} live players of {slot}: {live:?}");
    }
    let names = created(&r.sim);
    let unique: std::collections::BTreeSet<&String> = names.iter().collect();
    assert_eq!(
        unique.len(),
        names.len(),
        "no name created twice: {names:?}"
    );
    r.app.shutdown().await;
    let _ = std::fs::remove_dir_all(&r.dir);
}
