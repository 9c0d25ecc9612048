//! kill -9: the real binary, SIGKILLed at random moments during a failure storm and
//! restarted each time, leaves Agora with no duplicate, no orphan and no reused UID.
//!
//! `PULLKEEPER_KILL_SOAK=N` runs N kills instead of 30 (a soak; README "Operate");
//! `PULLKEEPER_KILL_SEED=S` repeats the run of the seed a failed run printed.

use std::time::Duration;

use pullkeeper::agora::wire::PlayerStatus;
use pullkeeper::simulator::{FaultAction, FaultRule, SimHandle};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::audit::{Audit, audit, report};
use crate::binary::Proc;
use crate::harness::{
    APP_ID, FAST, eventually, start_simulator_with_lag, temp_dir, write_config_full,
};

const KILLS: usize = 30;
const SCENES: usize = 4;
const BACKUPS: u32 = 2;

/// Four scenes of a master and two backups, each with a wide UID range of its own.
pub fn scenes() -> String {
    let mut out = String::from("scenes:\n");
    for i in 0..SCENES {
        let start = 10_000 * (i + 1);
        out.push_str(&format!(
            "  - {{ name: s{i}, project: e2e, channel: ch{i}, stream_url: rtmp://o.example.com/{i}, \
             region: na, backups: {BACKUPS}, uids: {{ start: {start}, end: {} }} }}\n",
            start + 9_999
        ));
    }
    out
}

pub fn desired() -> Vec<(String, u32)> {
    (0..SCENES)
        .map(|i| (format!("s{i}"), BACKUPS + 1))
        .collect()
}

pub fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn creates(count: u32, action: FaultAction) -> FaultRule {
    FaultRule {
        method: Some("POST".into()),
        path_contains: "/cloud-player/players".into(),
        count,
        action,
    }
}

/// One gust of the storm: players fail, and Agora is slow, refuses or hangs up on the
/// next creates, so that kills land between intent, request and answer.
pub fn gust(sim: &SimHandle, rng: &mut StdRng) {
    gust_in(sim, rng, &[APP_ID]);
}

/// [`gust`] over the players of several projects.
pub fn gust_in(sim: &SimHandle, rng: &mut StdRng, apps: &[&str]) {
    let mut alive: Vec<_> = apps
        .iter()
        .flat_map(|app| sim.players(app).into_iter().map(move |p| (*app, p)))
        .filter(|(_, p)| p.status != PlayerStatus::Failed)
        .collect();
    for _ in 0..rng.random_range(0..=4usize) {
        if alive.is_empty() {
            break;
        }
        let (app, p) = alive.swap_remove(rng.random_range(0..alive.len()));
        sim.fail_player(app, &p.id);
    }
    if rng.random_bool(0.4) {
        let delay = Duration::from_millis(rng.random_range(100..900));
        sim.inject(creates(rng.random_range(1..=3), FaultAction::Delay(delay)));
    }
    if rng.random_bool(0.2) {
        sim.inject(creates(rng.random_range(1..=2), FaultAction::Status(503)));
    }
    if rng.random_bool(0.1) {
        sim.inject(creates(1, FaultAction::Drop));
    }
    if rng.random_bool(0.1) {
        sim.inject(FaultRule {
            method: Some("DELETE".into()),
            path_contains: "/cloud-player/players/".into(),
            count: 1,
            action: FaultAction::Status(503),
        });
    }
}

async fn start(dir: &std::path::Path, sim: &SimHandle) -> Proc {
    let proc = Proc::start(dir).await;
    sim.set_ncs_url(APP_ID, Some(format!("http://{}/ncs/e2e", proc.addr)));
    proc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_failure_storm_leaves_no_duplicate_orphan_or_reused_uid() {
    storm_of_kills(None).await;
}

/// The same with the state in etcd: a restart is a takeover by the same replica name,
/// after the killed one's lease ran out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_failure_storm_with_the_etcd_store() {
    let etcd = pullkeeper::store::LocalEtcd::start().expect("etcd starts");
    storm_of_kills(Some(&etcd)).await;
}

async fn storm_of_kills(etcd: Option<&pullkeeper::store::LocalEtcd>) {
    // With etcd each start first waits out the killed process's lease (3 s), so fewer
    // kills cover as many takeovers.
    let default = if etcd.is_some() { KILLS / 2 } else { KILLS };
    let kills = env_number("PULLKEEPER_KILL_SOAK").map_or(default, |n| n as usize);
    let seed = env_number("PULLKEEPER_KILL_SEED").unwrap_or_else(rand::random);
    report(&format!(
        "kill -9 test: {kills} kills, seed {seed} (PULLKEEPER_KILL_SEED={seed} repeats it)"
    ));
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = temp_dir("kill9");
    // List hides new players a little longer than pullkeeper's 1 s `list_lag` assumes (Agora
    // says "about 10 s"), so intents are also resolved by retrying into a 409.
    let sim = start_simulator_with_lag(Duration::from_millis(1200)).await;
    write_config_full(&dir, &sim, &scenes(), "", FAST);
    if let Some(etcd) = etcd {
        crate::ha::use_etcd(&dir, etcd, "/pk-kill9/", "solo");
    }

    let started = tokio::time::Instant::now();
    for _ in 0..kills {
        let proc = start(&dir, &sim).await;
        if etcd.is_some() {
            crate::ha::leads(&proc).await;
        }
        gust(&sim, &mut rng);
        tokio::time::sleep(Duration::from_millis(rng.random_range(50..1200))).await;
        proc.kill();
    }
    let storm = started.elapsed();

    // The last start: Agora behaves again, and pullkeeper must converge.
    sim.clear_faults();
    let proc = start(&dir, &sim).await;
    let mut last = Audit::default();
    let converged = tokio::time::timeout(Duration::from_secs(90), async {
        loop {
            last = audit(&sim, &desired());
            if last.converged() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let figures = audit(&sim, &desired());
    report(&format!(
        "kill -9 figures: kills={kills} seed={seed} storm={:.1}s {figures}",
        storm.as_secs_f64()
    ));
    assert!(
        converged.is_ok(),
        "no convergence within 90 s: {last}; log:\n{}",
        proc.log_tail(40)
    );
    assert_eq!(figures.duplicates, 0, "duplicate players");
    assert_eq!(figures.healthy_deleted, 0, "second players made for a slot");
    assert_eq!(figures.orphans, 0, "orphaned players");
    assert_eq!(figures.uid_reuse, 0, "UIDs created twice in a channel");
    // Stable: one more List lag and a few polls later, still exactly one per slot.
    eventually(Duration::from_secs(5), "still converged", || {
        audit(&sim, &desired()).converged()
    })
    .await;
    drop(proc);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The rate windows survive a kill: a process SIGKILLed right after its creates and
/// restarted at once never makes Agora answer 429 at Agora's own create rate (2/s, both
/// here and in the simulator). Before the windows were recorded, such restarts drew
/// 429s: the new process's first creates landed in the same second as its
/// predecessor's last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_after_kill_9_keep_to_the_create_rate() {
    kills_in_a_create_burst(None).await;
}

/// The same with the state in etcd, where each restart is a takeover by the same
/// replica name (it counts the calls the killed one recorded).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_after_kill_9_keep_to_the_create_rate_with_the_etcd_store() {
    let etcd = pullkeeper::store::LocalEtcd::start().expect("etcd starts");
    kills_in_a_create_burst(Some(&etcd)).await;
}

async fn kills_in_a_create_burst(etcd: Option<&pullkeeper::store::LocalEtcd>) {
    let dir = temp_dir("kill9-rate");
    let sim = crate::harness::start_simulator_with(|sim| {
        sim.qps.create_with_name = pullkeeper::simulator::Window::per_second(2);
    })
    .await;
    write_config_full(&dir, &sim, &scenes(), "", FAST);
    crate::harness::edit_settings(
        &dir,
        "create_with_name: { per_second: 50 }",
        "create_with_name: { per_second: 2 }",
    );
    if let Some(etcd) = etcd {
        crate::ha::use_etcd(&dir, etcd, "/pk-rate/", "solo");
    }
    let creates = |sim: &SimHandle| {
        sim.requests()
            .iter()
            .filter(|q| q.method == "POST" && q.status.is_some())
            .count()
    };
    for _ in 0..4 {
        let before = creates(&sim);
        let proc = start(&dir, &sim).await;
        // Killed the moment its second create is answered, then started again at once.
        eventually(Duration::from_secs(30), "two creates answered", || {
            creates(&sim) >= before + 2
        })
        .await;
        proc.kill();
    }
    let proc = start(&dir, &sim).await;
    let converged = tokio::time::timeout(Duration::from_secs(60), async {
        while !audit(&sim, &desired()).converged() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(converged.is_ok(), "log:\n{}", proc.log_tail(40));
    let refused: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|q| q.status == Some(429))
        .map(|q| (q.method, q.at_ms))
        .collect();
    assert_eq!(refused, [], "Agora answered 429");
    drop(proc);
    let _ = std::fs::remove_dir_all(&dir);
}
