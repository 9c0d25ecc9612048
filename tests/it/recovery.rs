//! A corrupt store: moved aside, every live player adopted from List by name, nothing
//! duplicated, and later replacements take generations and UIDs never used before.

use std::path::Path;
use std::time::Duration;

use pullkeeper::model::Phase;
use pullkeeper::store::Store;

use crate::audit::{audit, report};
use crate::harness::{
    APP_ID, SCENES, eventually, start_app, start_simulator, temp_dir, write_config,
};

fn desired() -> Vec<(String, u32)> {
    ["news", "sports", "lobby"]
        .iter()
        .map(|s| (s.to_string(), 3))
        .collect()
}

/// Overwrites every file under `dir` with garbage of the same size.
fn garble(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            garble(&path);
        } else {
            let len = std::fs::metadata(&path).unwrap().len().max(64);
            let garbage: Vec<u8> = (0..len).map(|i| (i * 7919 % 251) as u8).collect();
            std::fs::write(&path, garbage).unwrap();
        }
    }
}

fn id_of(sim: &pullkeeper::simulator::SimHandle, name: &str) -> String {
    sim.players(APP_ID)
        .into_iter()
        .find(|p| p.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("{name} is not live"))
        .id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_store_is_moved_aside_and_every_live_player_adopted_without_a_create() {
    let dir = temp_dir("corrupt");
    let sim = start_simulator().await;
    let config = write_config(&dir, &sim, SCENES);
    let path = config.settings.store.path.clone();

    // First run: converge, then fail two players, so two slots are on generation 2 and
    // the UIDs of their first generation live on only in Agora's history.
    let app = start_app(config.clone(), Store::open_or_recover(&path, 1).unwrap()).await;
    eventually(Duration::from_secs(30), "9 running", || {
        audit(&sim, &desired()).converged()
    })
    .await;
    for name in ["pk_news_m_1", "pk_sports_b1_1"] {
        assert!(sim.fail_player(APP_ID, &id_of(&sim, name)));
    }
    eventually(Duration::from_secs(30), "both replaced", || {
        let a = audit(&sim, &desired());
        a.converged() && a.creates == 11
    })
    .await;
    app.shutdown().await;
    // Closed for good: sled locks a store that is open, so a strict open proves it.
    drop(Store::open(&path).unwrap());
    garble(&path);
    let before = audit(&sim, &desired());

    let store = Store::open_or_recover(&path, 2).unwrap();
    let recovery = store
        .recovery()
        .expect("the garbled store is recovered")
        .clone();
    assert!(recovery.aside.is_dir(), "kept for inspection");
    assert_eq!(recovery.aside, path.with_file_name("store.corrupt-2"));
    let app = start_app(config.clone(), store.clone()).await;
    eventually(Duration::from_secs(30), "every live player adopted", || {
        let records = store.project_slots("e2e").unwrap();
        let live = sim.players(APP_ID);
        records.len() == 9
            && records.iter().all(|(_, r)| {
                r.phase == Phase::Created
                    && live.iter().any(|p| {
                        p.name.as_deref() == Some(r.name.as_str())
                            && Some(p.id.as_str()) == r.id.as_deref()
                            && p.uid == Some(u64::from(r.uid))
                    })
            })
    })
    .await;
    // Well past the List lag (1 s) and many polls: still nothing created.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(audit(&sim, &desired()), before, "recovery changed Agora");
    let metrics = reqwest::get(format!("http://{}/metrics", app.addr()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l == "pullkeeper_store_recoveries_total 1"),
        "{metrics}"
    );

    // Failures after the recovery: each replacement continues its slot's generations
    // and takes a UID its channel never had, not even the deleted first generation's.
    for name in ["pk_news_m_2", "pk_lobby_b2_1"] {
        assert!(sim.fail_player(APP_ID, &id_of(&sim, name)));
    }
    eventually(Duration::from_secs(30), "replaced after recovery", || {
        let a = audit(&sim, &desired());
        a.converged() && a.creates == before.creates + 2
    })
    .await;
    let after = audit(&sim, &desired());
    report(&format!("corrupt store: before {before}; after {after}"));
    assert_eq!((after.uid_reuse, after.healthy_deleted), (0, 0));
    for name in ["pk_news_m_3", "pk_lobby_b2_2"] {
        id_of(&sim, name);
    }
    app.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
