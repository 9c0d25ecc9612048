//! Readiness, liveness and graceful shutdown of the real service.

use std::collections::BTreeSet;
use std::time::Duration;

use pullkeeper::agora::wire::PlayerStatus;
use pullkeeper::model::parse_name;
use pullkeeper::model::{Phase, SlotKey};
use pullkeeper::simulator::{FaultAction, FaultRule, SimHandle};
use pullkeeper::store::Store;
use tokio::time::Instant;

use crate::audit::{audit, report};
use crate::binary::Proc;
use crate::harness::{
    ADMIN_TOKEN, APP_ID, SCENES, admin_json, connect_ncs, eventually, one_scene, start_app,
    start_simulator, start_simulator_with_lag, temp_dir, write_config, write_config_with,
};

/// The status of `GET url`, or `None` when nothing answers.
async fn status(url: &str) -> Option<u16> {
    let response = reqwest::Client::new()
        .get(url)
        .bearer_auth(ADMIN_TOKEN)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    Some(response.status().as_u16())
}

/// A second project whose credentials the simulator refuses (401), appended to the
/// harness's `projects:` list (the settings' last key).
const BAD_PROJECT: &str = r#"  - id: bad
    app_id: e2ebadapp0123456
    customer_id: { env: E2E_CUSTOMER_ID }
    customer_secret: { env: E2E_NCS_SECRET }
    ncs_secret: { env: E2E_NCS_SECRET }
    api: { base_url: "BASE", timeout: 5s }
    limits: { max_players: 10 }
"#;

fn refused_lists(sim: &SimHandle) -> usize {
    sim.requests()
        .iter()
        .filter(|r| r.method == "GET" && r.status == Some(401))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_although_a_project_cannot_list_and_the_others_notices_are_accepted() {
    let sim = start_simulator().await;
    let dir = temp_dir("readyz");
    let bad = BAD_PROJECT.replace("BASE", &sim.base_url());
    let config = write_config_with(&dir, &sim, &one_scene("revertive"), &bad);
    assert_eq!(config.settings.projects.len(), 2);
    let app = start_app(config, Store::temporary().unwrap()).await;
    connect_ncs(&sim, &app);
    let base = format!("http://{}", app.addr());
    eventually(
        Duration::from_secs(20),
        "two Lists refused with 401",
        || refused_lists(&sim) >= 2,
    )
    .await;
    assert_eq!(status(&format!("{base}/readyz")).await, Some(200));
    assert_eq!(status(&format!("{base}/healthz")).await, Some(200));
    let scrape = app.metrics.render();
    assert!(
        scrape.contains("pullkeeper_api_outage{project=\"bad\"} 1\n"),
        "{scrape}"
    );
    eventually(Duration::from_secs(5), "project bad unauthorized", || {
        let scrape = app.metrics.render();
        scrape.contains("pullkeeper_api_unauthorized{project=\"bad\"} 1\n")
            && scrape.contains("pullkeeper_api_unauthorized{project=\"e2e\"} 0\n")
    })
    .await;
    // The good project's players run and their status notices are taken.
    eventually(
        Duration::from_secs(20),
        "notices of project e2e accepted",
        || {
            app.board
                .get("news")
                .is_some_and(|s| s.healthy_players == 2)
                && app
                    .metrics
                    .render()
                    .lines()
                    .filter_map(|l| {
                        l.strip_prefix("pullkeeper_webhook_notices_total{outcome=\"accepted\"} ")
                    })
                    .any(|n| n.parse::<u64>().is_ok_and(|n| n > 0))
        },
    )
    .await;
    assert!(
        app.metrics
            .render()
            .contains("pullkeeper_api_outage{project=\"e2e\"} 0\n")
    );
    app.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

fn desired() -> Vec<(String, u32)> {
    ["news", "sports", "lobby"]
        .iter()
        .map(|s| (s.to_string(), 3))
        .collect()
}

/// Desired slots whose live players have all failed (or that have none).
fn slots_needing_a_player(sim: &SimHandle) -> BTreeSet<(String, u32)> {
    let healthy: BTreeSet<(String, u32)> = sim
        .players(APP_ID)
        .into_iter()
        .filter(|p| p.status != PlayerStatus::Failed)
        .filter_map(|p| parse_name("pk", p.name.as_deref()?))
        .map(|n| (n.scene, n.slot))
        .collect();
    desired()
        .into_iter()
        .flat_map(|(scene, slots)| (0..slots).map(move |s| (scene.clone(), s)))
        .filter(|slot| !healthy.contains(slot))
        .collect()
}

fn fail_all(sim: &SimHandle, role: &str) {
    for p in sim.players(APP_ID) {
        if p.name.as_deref().is_some_and(|n| n.contains(role)) {
            sim.fail_player(APP_ID, &p.id);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_storm_exits_0_in_time_and_the_restart_duplicates_nothing() {
    let dir = temp_dir("sigterm");
    let sim = start_simulator().await;
    write_config(&dir, &sim, SCENES);
    let proc = Proc::start(&dir).await;
    sim.set_ncs_url(APP_ID, Some(format!("http://{}/ncs/e2e", proc.addr)));
    eventually(Duration::from_secs(30), "9 running", || {
        audit(&sim, &desired()).converged()
    })
    .await;

    // The storm: every master fails, and Agora takes 3 s to answer each replacement's
    // Create, so they are in flight when SIGTERM arrives; the first backups fail as it
    // arrives.
    sim.inject(FaultRule {
        method: Some("POST".into()),
        path_contains: "/cloud-player/players".into(),
        count: 100,
        action: FaultAction::Delay(Duration::from_secs(3)),
    });
    fail_all(&sim, "_m_");
    let scenes_url = format!("http://{}/v1/scenes", proc.addr);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let scenes: serde_json::Value = admin_json(&scenes_url).await;
        let intents = scenes
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["slots"][0]["generation"] == 2)
            .count();
        if intents == 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no replacement intents: {scenes}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    fail_all(&sim, "_b1_");
    let signalled = Instant::now();
    let mut proc = proc;
    proc.terminate();

    // Unready while in-flight calls drain, then gone.
    let readyz = format!("http://{}/readyz", proc.addr);
    let mut unready_seen = false;
    while let Some(code) = status(&readyz).await {
        unready_seen |= code == 503;
        assert!(
            signalled.elapsed() < Duration::from_secs(30),
            "still serving"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (exit, _) = proc.exit_within(Duration::from_secs(30)).await;
    let took = signalled.elapsed();
    report(&format!("SIGTERM during a storm: {exit} after {took:?}"));
    assert!(exit.success(), "exit status {exit}");
    assert!(unready_seen, "/readyz never said 503 while draining");
    assert!(
        took < Duration::from_secs(30),
        "past Kubernetes' grace: {took:?}"
    );

    // The held creates finished and their answers were flushed before the exit.
    let store = Store::open(&dir.join("store")).unwrap();
    for scene in ["news", "sports", "lobby"] {
        let master = store.slot(&SlotKey::new("e2e", scene, 0)).unwrap().unwrap();
        assert_eq!(
            (master.generation, master.phase),
            (2, Phase::Created),
            "{scene}"
        );
    }
    drop(store);

    sim.clear_faults();
    let needing = slots_needing_a_player(&sim);
    let created_before = sim.history().len();
    let proc = Proc::start(&dir).await;
    sim.set_ncs_url(APP_ID, Some(format!("http://{}/ncs/e2e", proc.addr)));
    eventually(Duration::from_secs(30), "converged after restart", || {
        audit(&sim, &desired()).converged()
    })
    .await;
    let created_after: Vec<(String, u32)> = sim.history()[created_before..]
        .iter()
        .filter_map(|h| parse_name("pk", h.name.as_deref()?))
        .map(|n| (n.scene, n.slot))
        .collect();
    let figures = audit(&sim, &desired());
    report(&format!(
        "after SIGTERM and restart: needing {needing:?}, created {created_after:?}, {figures}"
    ));
    assert_eq!(
        created_after.iter().cloned().collect::<BTreeSet<_>>(),
        needing,
        "creates after the restart are exactly the slots without a healthy player"
    );
    assert_eq!(created_after.len(), needing.len(), "one create per slot");
    assert_eq!(
        (
            figures.duplicates,
            figures.healthy_deleted,
            figures.uid_reuse
        ),
        (0, 0, 0)
    );
    proc.terminate();
    let mut proc = proc;
    assert!(proc.exit_within(Duration::from_secs(30)).await.0.success());
    let _ = std::fs::remove_dir_all(&dir);
}

/// The start-up log of the real binary: its version, the store's open time and size,
/// each project's first List and "ready"; on a restart the store's size and the first
/// List show what the process found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_start_up_log_says_version_store_first_list_and_ready() {
    let dir = temp_dir("startlog");
    // No List lag: the restart's first List must show every player, however soon after
    // the last create it comes.
    let sim = start_simulator_with_lag(Duration::ZERO).await;
    write_config(&dir, &sim, SCENES);
    let proc = Proc::start(&dir).await;
    sim.set_ncs_url(APP_ID, Some(format!("http://{}/ncs/e2e", proc.addr)));
    eventually(Duration::from_secs(30), "9 running", || {
        audit(&sim, &desired()).converged()
    })
    .await;
    let first = start_up_log(&proc).await;
    assert_eq!(first.slots, 0, "a new store is empty");
    assert_eq!(first.players, 0, "nothing runs at Agora yet");
    let mut proc = proc;
    proc.terminate();
    assert!(proc.exit_within(Duration::from_secs(30)).await.0.success());

    let proc = Proc::start(&dir).await;
    let again = start_up_log(&proc).await;
    report(&format!(
        "start-up logs: first {first:?}, restart {again:?}"
    ));
    assert_eq!(again.slots, 9, "the restart found the 9 slot records");
    assert_eq!(again.players, 9, "its first List found the 9 players");
    assert!(again.disk_bytes > 0);
    drop(proc);
    let _ = std::fs::remove_dir_all(&dir);
}

/// What one start logged.
#[derive(Debug)]
struct StartUp {
    slots: u64,
    disk_bytes: u64,
    players: u64,
}

/// Waits for "ready" and the first List of project e2e, and checks the start-up lines.
async fn start_up_log(proc: &Proc) -> StartUp {
    eventually(
        Duration::from_secs(30),
        "ready and the first List logged",
        || !proc.logged("ready").is_empty() && !proc.logged("first List").is_empty(),
    )
    .await;
    let field = |v: &serde_json::Value, name: &str| {
        v[name]
            .as_u64()
            .unwrap_or_else(|| panic!("{name} is a number in {v}"))
    };
    let starting = &proc.logged("pullkeeper starting")[0];
    assert_eq!(starting["version"], env!("CARGO_PKG_VERSION"));
    let store = &proc.logged("store opened")[0];
    field(store, "open_ms");
    let list = &proc.logged("first List")[0];
    assert_eq!(list["project"], "e2e");
    field(list, "duration_ms");
    assert_eq!(
        proc.logged("first List").len(),
        1,
        "only the first List is logged"
    );
    assert_eq!(
        proc.logged("ready")[0]["version"],
        env!("CARGO_PKG_VERSION")
    );
    StartUp {
        slots: field(store, "slots"),
        disk_bytes: field(store, "disk_bytes"),
        players: field(list, "players"),
    }
}
