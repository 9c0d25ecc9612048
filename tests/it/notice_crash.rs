//! kill -9 between an NCS notice's 200 and the action it calls for: the real binary,
//! restarted, acts on the acknowledged notice at once instead of waiting for List to
//! strike the player out.
//!
//! The window is made wide and certain without touching pullkeeper: the process that
//! receives the notice cannot List (the simulator answers its Lists 503), and a
//! controller with no List yet holds its notices unapplied, while its webhook answers
//! as always. So the notice is acknowledged, the process is killed, and nothing was
//! done about it, every time.

use std::time::Duration;

use pullkeeper::agora::wire::PlayerStatus;
use pullkeeper::simulator::{DeliveryOutcome, FaultAction, FaultRule, SimHandle, SourceMode};
use tokio::time::Instant;

use crate::binary::Proc;
use crate::harness::{
    APP_ID, admin_json, eventually, one_scene, start_simulator_with_lag, temp_dir,
    write_config_full,
};

/// List polls far apart: a player missing from List is replaced only after three
/// misses, a minute at least, so a replacement within seconds was the notice's doing.
const RECONCILE: &str = "poll_interval: 30s, list_lag: 1s";

async fn start(dir: &std::path::Path, sim: &SimHandle) -> Proc {
    let proc = Proc::start(dir).await;
    sim.set_ncs_url(APP_ID, Some(format!("http://{}/ncs/e2e", proc.addr)));
    proc
}

fn masters_created(sim: &SimHandle) -> Vec<String> {
    sim.history()
        .into_iter()
        .filter_map(|h| h.name)
        .filter(|n| n.starts_with("pk_news_m_"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_acknowledged_before_a_kill_is_acted_on_at_the_restart() {
    acknowledged_then_killed(None).await;
}

/// The same with the state in etcd: each start is a takeover by the same replica name
/// once the killed one's lease ran out, and the takeover replays the notice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_etcd_a_notice_acknowledged_before_a_kill_is_acted_on_by_the_next_leader() {
    let etcd = pullkeeper::store::LocalEtcd::start().expect("etcd starts");
    acknowledged_then_killed(Some(&etcd)).await;
}

async fn acknowledged_then_killed(etcd: Option<&pullkeeper::store::LocalEtcd>) {
    let dir = temp_dir("notice-kill");
    let sim = start_simulator_with_lag(Duration::from_secs(1)).await;
    write_config_full(&dir, &sim, &one_scene("revertive"), "", RECONCILE);
    if let Some(etcd) = etcd {
        crate::ha::use_etcd(&dir, etcd, "/pk-notice/", "solo");
    }
    let leads = async |proc: &Proc| {
        if etcd.is_some() {
            crate::ha::leads(proc).await;
        }
    };

    let first = start(&dir, &sim).await;
    leads(&first).await;
    eventually(Duration::from_secs(20), "master and backup running", || {
        let players = sim.players(APP_ID);
        players.len() == 2 && players.iter().all(|p| p.status == PlayerStatus::Running)
    })
    .await;
    first.kill();
    let master = sim
        .players(APP_ID)
        .into_iter()
        .find(|p| p.name.as_deref() == Some("pk_news_m_1"))
        .expect("the master")
        .id;

    // The next process answers notices but cannot List, so it cannot act on them.
    sim.inject(FaultRule {
        method: Some("GET".into()),
        path_contains: "/cloud-player/players".into(),
        count: u32::MAX,
        action: FaultAction::Status(503),
    });
    let second = start(&dir, &sim).await;
    leads(&second).await;
    sim.destroy_player(APP_ID, &master, "Internal Error");
    eventually(
        Duration::from_secs(10),
        "the destroy notice answered 200",
        || {
            sim.notices_sent().iter().any(|r| {
                r.event_type == 3 && r.attempt == 1 && r.outcome == DeliveryOutcome::Delivered
            })
        },
    )
    .await;
    second.kill();
    assert_eq!(
        masters_created(&sim),
        ["pk_news_m_1"],
        "nothing was done about the notice before the kill"
    );

    // Restarted with List working, the replayed notice replaces the master at once.
    sim.clear_faults();
    let restarted = Instant::now();
    let third = start(&dir, &sim).await;
    // Within 20 s (about 1 s on an idle machine, plus the killed one's lease with etcd):
    // List's third miss comes 60 s after the start.
    eventually(Duration::from_secs(20), "master replaced", || {
        masters_created(&sim).len() == 2
    })
    .await;
    let took = restarted.elapsed();
    assert!(
        took < Duration::from_secs(20),
        "replaced {took:?} after the restart, not after List's strikes"
    );
    assert!(
        third
            .log_tail(usize::MAX)
            .contains("NCS notices acknowledged before the restart are applied now"),
        "{}",
        third.log_tail(40)
    );
    third.kill();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The held-back case: the notice is folded into the picture, but the replacement it
/// calls for waits for its source, so nothing durable says the player is gone. Killed
/// then, the restart must still know: the notice stays in the store until the slot's
/// record moves on. (Were it forgotten once folded, List would need three misses, a
/// minute at least, to find the master gone.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_whose_replacement_waits_for_its_source_survives_a_kill() {
    let dir = temp_dir("notice-held-kill");
    let sim = start_simulator_with_lag(Duration::from_secs(1)).await;
    let url = sim.rtmp_url("cam").await.unwrap();
    let scenes = one_scene("revertive").replace("rtmp://origin.example.com/live/news", &url);
    write_config_full(
        &dir,
        &sim,
        &scenes,
        "source_probe: { interval: 200ms, max_interval: 1s, timeout: 2s }\n",
        RECONCILE,
    );
    let first = start(&dir, &sim).await;
    eventually(Duration::from_secs(20), "master and backup running", || {
        let players = sim.players(APP_ID);
        players.len() == 2 && players.iter().all(|p| p.status == PlayerStatus::Running)
    })
    .await;
    first.kill();
    let master = sim
        .players(APP_ID)
        .into_iter()
        .find(|p| p.name.as_deref() == Some("pk_news_m_1"))
        .expect("the master")
        .id;

    let second = start(&dir, &sim).await;
    eventually(Duration::from_secs(20), "the second process listed", || {
        !second.logged("first List").is_empty()
    })
    .await;
    // The source fails both players (a `failed` notice each); the master is then
    // destroyed, so List will not show it.
    sim.set_source("cam", SourceMode::Down);
    sim.destroy_player(APP_ID, &master, "Internal Error");
    let scenes_url = format!("http://{}/v1/scenes/news", second.addr);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let scene = admin_json(&scenes_url).await;
        let delivered = sim.notices_sent().iter().any(|r| {
            r.event_type == 3 && r.attempt == 1 && r.outcome == DeliveryOutcome::Delivered
        });
        if delivered && scene["slots"][0]["held"] == true {
            break;
        }
        assert!(Instant::now() < deadline, "master not held: {scene}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Longer than sled's own flush interval (500 ms): whatever the process meant to
    // make durable by itself is.
    tokio::time::sleep(Duration::from_secs(2)).await;
    second.kill();
    assert_eq!(
        masters_created(&sim),
        ["pk_news_m_1"],
        "held: nothing was created"
    );

    sim.set_source("cam", SourceMode::Up);
    let restarted = Instant::now();
    let third = start(&dir, &sim).await;
    eventually(Duration::from_secs(20), "master replaced", || {
        masters_created(&sim).len() == 2
    })
    .await;
    let took = restarted.elapsed();
    assert!(
        took < Duration::from_secs(20),
        "replaced {took:?} after the restart, not after List's strikes"
    );
    assert!(
        third
            .log_tail(usize::MAX)
            .contains("NCS notices acknowledged before the restart are applied now"),
        "{}",
        third.log_tail(40)
    );
    third.kill();
    let _ = std::fs::remove_dir_all(&dir);
}
