//! A seeded, reproducible soak: every fault of the matrix, mixed at random, against three
//! scenes. CI runs it for 30 s; `PULLKEEPER_SOAK_SECS` makes it longer and
//! `PULLKEEPER_SOAK_SEED` replays another mix:
//!
//! ```sh
//! PULLKEEPER_SOAK_SECS=600 PULLKEEPER_SOAK_SEED=7 cargo test --release --test it soak -- --nocapture
//! ```

use std::collections::BTreeSet;
use std::time::Duration;

use pullkeeper::simulator::{FaultAction, FaultRule, NcsChaos};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::harness::{APP_ID, FAST, Running, SCENES, start_simulator, temp_dir, write_config_full};
use crate::invariants::{assert_clean, converged, duplicates, orphans};

const SCENE_PLAYERS: &[(&str, u32)] = &[("news", 3), ("sports", 3), ("lobby", 3)];
const METHODS: [&str; 3] = ["POST", "DELETE", "GET"];

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn switches(r: &Running) -> u64 {
    SCENE_PLAYERS
        .iter()
        .filter_map(|(name, _)| r.app.board.get(name))
        .map(|s| s.switches)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_soak_mixes_every_fault() {
    let secs = env_or("PULLKEEPER_SOAK_SECS", 30);
    let seed = env_or("PULLKEEPER_SOAK_SEED", 0x5eed);
    let mut rng = StdRng::seed_from_u64(seed);

    let dir = temp_dir("soak");
    let sim = start_simulator().await;
    write_config_full(&dir, &sim, SCENES, "", FAST);
    // A 1 s client timeout, so that injected delays can outlast it.
    let path = dir.join("pullkeeper.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("timeout: 5s", "timeout: 1s");
    std::fs::write(&path, text).unwrap();
    let config = pullkeeper::config::load_with_env(&path, &crate::harness::env()).unwrap();
    let r = Running::launch(sim, dir, config).await;
    converged(&r.app, &r.sim, SCENE_PLAYERS, Duration::from_secs(60)).await;
    let switches_before = switches(&r);
    let ncs_url = format!("http://{}/ncs/e2e", r.app.addr());

    let (mut api_faults, mut player_failures, mut most_duplicates) = (0u64, 0u64, 0usize);
    let mut failed = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        let method = METHODS[rng.random_range(0..METHODS.len())];
        let count = rng.random_range(1..=4);
        let action = match rng.random_range(0..9) {
            0 => Some(FaultAction::Status(
                [500, 502, 503, 504][rng.random_range(0..4)],
            )),
            1 => Some(FaultAction::Status(429)),
            2 => Some(FaultAction::Delay(Duration::from_millis(
                rng.random_range(500..1500),
            ))),
            3 => Some(FaultAction::Cut),
            4 => Some(FaultAction::Drop),
            5 | 6 => {
                let live = r.sim.players(APP_ID);
                if !live.is_empty() {
                    let victim = &live[rng.random_range(0..live.len())];
                    if rng.random_bool(0.5) {
                        r.sim.fail_player(APP_ID, &victim.id);
                    } else {
                        r.sim.destroy_player(APP_ID, &victim.id, "Internal Error");
                    }
                    failed.insert(victim.id.clone());
                    player_failures += 1;
                }
                None
            }
            7 => {
                let down = rng.random_bool(0.5);
                r.sim.set_ncs_url(APP_ID, (!down).then(|| ncs_url.clone()));
                None
            }
            _ => {
                let on = rng.random_bool(0.5);
                r.sim.set_ncs_chaos(NcsChaos {
                    duplicate: on,
                    max_delay: Duration::from_millis(if on { 800 } else { 0 }),
                });
                None
            }
        };
        if let Some(action) = action {
            r.sim.inject(FaultRule {
                method: Some(method.into()),
                path_contains: "/cloud-player/players".into(),
                count,
                action,
            });
            api_faults += u64::from(count);
        }
        most_duplicates = most_duplicates.max(duplicates(&r.sim));
        tokio::time::sleep(Duration::from_millis(rng.random_range(200..1500))).await;
    }

    // The storm is over: no more faults or chaos, NCS back. Retries back off up to a
    // minute, so recovery is given two.
    r.sim.clear_faults();
    r.sim.set_ncs_chaos(NcsChaos::default());
    r.sim.set_ncs_url(APP_ID, Some(ncs_url));
    converged(&r.app, &r.sim, SCENE_PLAYERS, Duration::from_secs(120)).await;
    let violations = r.sim.violations();
    println!(
        "soak seed={seed} secs={secs}: failures injected {} (API {api_faults}, players \
         {player_failures}), failovers {}, duplicates {most_duplicates}, orphans {}, \
         quota violations {}, QPS violations {}",
        api_faults + player_failures,
        switches(&r) - switches_before,
        orphans(&r.sim, &r.store),
        violations.quota,
        violations.qps,
    );
    assert_eq!(most_duplicates, 0, "a slot had two live players");
    assert_clean(&r.sim, &r.store, &failed);
    r.app.shutdown().await;
    let _ = std::fs::remove_dir_all(&r.dir);
}
