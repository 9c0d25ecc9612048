//! Final answers stay final, and answers that say nothing was done are asked again on
//! Agora's schedule (docs/agora-api.md §1.9), measured from outside in the simulator's
//! request log.

use std::time::Duration;

use pullkeeper::simulator::{FaultAction, FaultRule, SimHandle};

use crate::harness::{
    APP_ID, Backend, FAST, Running, connect_ncs, eventually, one_scene, start_app_leading,
    temp_dir, write_config_full,
};

/// `news` with a master only, so every Create in the log is the master's.
fn master_only() -> String {
    one_scene("revertive").replace("backups: 1", "backups: 0")
}

fn create_rule(status: u16, count: u32) -> FaultRule {
    FaultRule {
        method: Some("POST".into()),
        path_contains: "/cloud-player/players".into(),
        count,
        action: FaultAction::Status(status),
    }
}

/// Simulator instants (ms) and statuses of every Create so far.
fn creates(sim: &SimHandle) -> Vec<(u64, Option<u16>)> {
    sim.requests()
        .iter()
        .filter(|q| q.method == "POST" && q.path.ends_with("/cloud-player/players"))
        .map(|q| (q.at_ms, q.status))
        .collect()
}

fn master_status(r: &Running) -> Option<(&'static str, Option<String>)> {
    let news = r.app.board.get("news")?;
    let s = news.slots.first()?;
    Some((s.status, s.rejected.clone()))
}

/// Starts `news` (master only) with the faults already in place, so the first Create
/// meets them.
async fn start(tag: &str, reconcile: &str, faults: &[FaultRule]) -> Running {
    let dir = temp_dir(tag);
    let sim = crate::harness::start_simulator().await;
    for rule in faults {
        sim.inject(rule.clone());
    }
    let config = write_config_full(&dir, &sim, &master_only(), "", reconcile);
    Running::launch(sim, dir, config).await
}

async fn finish(r: Running) {
    r.app.shutdown().await;
    let _ = std::fs::remove_dir_all(&r.dir);
}

/// 503, 429 and 502 each say nothing was created: the Create is asked again under the
/// same name after 5–6, 10–11 and 15–16 s, without waiting for the List lag (before,
/// the gaps were 16.0, 12.0 and 15.4 s). The upper bounds allow 1.5 s for a loaded
/// machine; the lower bounds are exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_answered_503_429_502_is_asked_again_after_5_10_15_seconds() {
    let faults = [
        create_rule(503, 1),
        create_rule(429, 1),
        create_rule(502, 1),
    ];
    let r = start(
        "final-retreat",
        "poll_interval: 200ms, list_lag: 12s",
        &faults,
    )
    .await;
    eventually(Duration::from_secs(60), "the master runs", || {
        master_status(&r).is_some_and(|(s, _)| s == "running")
    })
    .await;
    let log = creates(&r.sim);
    let statuses: Vec<Option<u16>> = log.iter().map(|(_, s)| *s).collect();
    assert_eq!(
        statuses,
        [Some(503), Some(429), Some(502), Some(200)],
        "{log:?}"
    );
    let gaps: Vec<u64> = log.windows(2).map(|w| w[1].0 - w[0].0).collect();
    for (gap, base) in gaps.iter().zip([5_000, 10_000, 15_000]) {
        assert!(
            (base..base + 2_500).contains(gap),
            "gaps {gaps:?} ms, expected 5-6, 10-11, 15-16 s"
        );
    }
    let players = r.sim.players(APP_ID);
    assert_eq!(players.len(), 1);
    assert_eq!(
        players[0].name.as_deref(),
        Some("pk_news_m_1"),
        "the same name"
    );
    finish(r).await;
}

/// A 403 is final: the slot shows `rejected` with Agora's message, counts, and is asked
/// again only after `rejected_retry`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_refusal_marks_the_slot_rejected_and_waits_the_long_pause() {
    let r = start(
        "final-rejected",
        &format!("{FAST}, rejected_retry: 8s"),
        &[create_rule(403, 2)],
    )
    .await;
    eventually(Duration::from_secs(10), "the master rejected", || {
        master_status(&r).is_some_and(|(s, _)| s == "rejected")
    })
    .await;
    let (_, message) = master_status(&r).unwrap();
    assert_eq!(
        message.as_deref(),
        Some("HTTP 403: This project has not enabled Cloud Player product yet.")
    );
    let metrics = r.app.metrics.render();
    assert!(
        metrics.contains("pullkeeper_slots_rejected{project=\"e2e\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("pullkeeper_rejections_total{action=\"create\"} 1"),
        "{metrics}"
    );
    eventually(Duration::from_secs(30), "the master runs", || {
        master_status(&r).is_some_and(|(s, _)| s == "running")
    })
    .await;
    let log = creates(&r.sim);
    assert_eq!(log.len(), 3, "{log:?}");
    for gap in log.windows(2).map(|w| w[1].0 - w[0].0) {
        assert!((8_000..10_500).contains(&gap), "{log:?}");
    }
    eventually(Duration::from_secs(5), "no slot rejected", || {
        r.app
            .metrics
            .render()
            .contains("pullkeeper_slots_rejected{project=\"e2e\"} 0")
    })
    .await;
    assert_eq!(master_status(&r).unwrap().1, None);
    finish(r).await;
}

/// A changed scene ends a rejection's pause: the create goes at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_create_is_asked_again_at_once_when_its_scene_changes() {
    let r = start(
        "final-rejected-change",
        &format!("{FAST}, rejected_retry: 10m"),
        &[create_rule(400, 1)],
    )
    .await;
    eventually(Duration::from_secs(10), "the master rejected", || {
        master_status(&r).is_some_and(|(s, _)| s == "rejected")
    })
    .await;
    // Nothing is asked again within the retreat's first steps.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(creates(&r.sim).len(), 1);
    let scenes = master_only().replace("live/news", "live/news-fixed");
    let path = r.dir.join("scenes.yaml");
    std::fs::write(path.with_extension("tmp"), scenes).unwrap();
    std::fs::rename(path.with_extension("tmp"), &path).unwrap();
    eventually(Duration::from_secs(15), "the master runs", || {
        master_status(&r).is_some_and(|(s, _)| s == "running")
    })
    .await;
    assert_eq!(creates(&r.sim).len(), 2);
    finish(r).await;
}

/// Refused credentials (401) make the project `unauthorized`: alerting, no retry storm,
/// `/readyz` still 200; once a List works again, what waited goes at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_make_the_project_unauthorized_without_a_retry_storm() {
    let dir = temp_dir("final-401");
    let sim = crate::harness::start_simulator().await;
    let config = write_config_full(
        &dir,
        &sim,
        &one_scene("revertive"),
        "",
        &format!("{FAST}, rejected_retry: 10m"),
    );
    let r = Running::launch(sim, dir, config)
        .await
        .until_both_running()
        .await;
    let before = r.sim.requests().len();
    r.sim.inject(FaultRule {
        method: None,
        path_contains: "/cloud-player/players".into(),
        count: 10_000,
        action: FaultAction::Status(401),
    });
    // The on-air master fails: its replacement meets the 401 too.
    let news = r.app.board.get("news").unwrap();
    let master = news.slots[0].id.clone().unwrap();
    assert!(r.sim.fail_player(APP_ID, &master));
    eventually(Duration::from_secs(10), "the project unauthorized", || {
        r.app.board.get("news").is_some_and(|s| s.unauthorized)
            && r.app
                .metrics
                .render()
                .contains("pullkeeper_api_unauthorized{project=\"e2e\"} 1")
    })
    .await;
    let ready = reqwest::get(format!("http://{}/readyz", r.app.addr()))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    tokio::time::sleep(Duration::from_secs(8)).await;
    let refused: Vec<_> = r.sim.requests()[before..]
        .iter()
        .filter(|q| q.status == Some(401))
        .map(|q| q.method.clone())
        .collect();
    let posts = refused.iter().filter(|m| *m == "POST").count();
    let gets = refused.iter().filter(|m| *m == "GET").count();
    // At a 200 ms poll, 40 Lists would have gone in 8 s; they back off instead, and the
    // refused create waits.
    assert!(posts <= 1, "{refused:?}");
    assert!(gets <= 8, "{refused:?}");
    r.sim.clear_faults();
    eventually(
        Duration::from_secs(90),
        "authorized and both running",
        || {
            r.app
                .board
                .get("news")
                .is_some_and(|s| !s.unauthorized && s.healthy_players == 2)
        },
    )
    .await;
    assert!(
        r.app
            .metrics
            .render()
            .contains("pullkeeper_api_unauthorized{project=\"e2e\"} 0")
    );
    finish(r).await;
}

/// A rejection outlives a restart: the restarted process shows the slot `rejected` and
/// does not ask again before the pause ends (before, every restart asked at once), until
/// the scene changes.
async fn a_rejection_outlives_a_restart(backend: Backend) {
    let dir = temp_dir("final-rejected-restart");
    let sim = crate::harness::start_simulator().await;
    sim.inject(create_rule(403, 1));
    let reconcile = format!("{FAST}, rejected_retry: 10m");
    let config = write_config_full(&dir, &sim, &master_only(), "", &reconcile);
    let r = Running::launch_on(backend, sim, dir, config.clone()).await;
    eventually(Duration::from_secs(10), "the master rejected", || {
        master_status(&r).is_some_and(|(s, _)| s == "rejected")
    })
    .await;
    // Kept and flushed when it was answered; the stop adds nothing.
    r.app.shutdown().await;
    let app = start_app_leading(config, r.store.clone()).await;
    connect_ncs(&r.sim, &app);
    let status = |app: &pullkeeper::App| {
        let news = app.board.get("news")?;
        let slot = news.slots.first()?;
        Some((slot.status, slot.rejected.clone()))
    };
    eventually(
        Duration::from_secs(10),
        "rejected after the restart",
        || status(&app).is_some_and(|(s, _)| s == "rejected"),
    )
    .await;
    assert_eq!(
        status(&app).unwrap().1.as_deref(),
        Some("HTTP 403: This project has not enabled Cloud Player product yet.")
    );
    // Ten polls: a restart that forgot the refusal asks again in its first pass.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(creates(&r.sim).len(), 1, "{:?}", creates(&r.sim));
    let scenes = master_only().replace("live/news", "live/news-fixed");
    let path = r.dir.join("scenes.yaml");
    std::fs::write(path.with_extension("tmp"), scenes).unwrap();
    std::fs::rename(path.with_extension("tmp"), &path).unwrap();
    eventually(Duration::from_secs(15), "the master runs", || {
        status(&app).is_some_and(|(s, _)| s == "running")
    })
    .await;
    assert_eq!(creates(&r.sim).len(), 2);
    app.shutdown().await;
    let _ = std::fs::remove_dir_all(&r.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejection_outlives_a_restart_on_sled() {
    a_rejection_outlives_a_restart(Backend::Sled).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejection_outlives_a_restart_on_etcd() {
    a_rejection_outlives_a_restart(Backend::Etcd).await;
}
