//! The fault matrix, end to end against the simulator: each fault class on its own, each
//! case bounded in time, each ending with [`assert_clean`]. Faults already covered
//! elsewhere are not repeated: a List outage (`failover::a_list_outage_deletes_nothing_and_is_flagged`),
//! a Create answered after the client gave up (`failover::a_lost_create_answer_makes_no_duplicate`),
//! forged duplicate and stale notices (`ncs_failover`), the domain walk itself (`domains`).

use std::collections::BTreeSet;
use std::time::Duration;

use pullkeeper::simulator::{FaultAction, FaultRule, NcsChaos, SimHandle};

use crate::harness::{
    APP_ID, Backend, FAST, Running, connect_ncs, eventually, one_scene, start_app_leading,
    start_simulator, start_simulator_with_lag, temp_dir, write_config_full,
};
use crate::invariants::{assert_clean, converged, orphans};

const NEWS: &[(&str, u32)] = &[("news", 2)];
/// Generous: a loaded 2-core machine, retries waiting 5-6 s, 10-11 s.
const CONVERGE: Duration = Duration::from_secs(60);

fn rule(method: &str, count: u32, action: FaultAction) -> FaultRule {
    FaultRule {
        method: Some(method.into()),
        path_contains: "/cloud-player/players".into(),
        count,
        action,
    }
}

/// Fails the player on air and returns its id.
fn fail_on_air(r: &Running) -> String {
    let news = r.app.board.get("news").unwrap();
    let slot = news.active_slot.unwrap() as usize;
    let id = news.slots[slot].id.clone().unwrap();
    assert!(r.sim.fail_player(APP_ID, &id));
    id
}

async fn running(backend: Backend, tag: &str, reconcile: &str) -> Running {
    let r = Running::start_on(backend, tag, &one_scene("revertive"), "", reconcile).await;
    connect_ncs(&r.sim, &r.app);
    r.until_both_running().await
}

async fn finish(r: Running) {
    r.app.shutdown().await;
    let _ = std::fs::remove_dir_all(&r.dir);
}

async fn five_xx_bursts_on_create_delete_and_list_still_converge(backend: Backend) {
    let r = running(backend, "f-5xx", FAST).await;
    let mut failed = BTreeSet::new();
    for (method, status) in [("POST", 503), ("DELETE", 500), ("GET", 502), ("POST", 504)] {
        r.sim.inject(rule(method, 4, FaultAction::Status(status)));
        failed.insert(fail_on_air(&r));
        converged(&r.app, &r.sim, NEWS, CONVERGE).await;
        assert_clean(&r.sim, &r.store, &failed);
    }
    finish(r).await;
}

/// Player checks (no-op Updates) answered 5xx fewer times than `strikes` cost nothing.
async fn five_xx_bursts_on_update_below_the_strikes_delete_nothing(backend: Backend) {
    let r = running(
        backend,
        "f-5xx-update",
        "poll_interval: 200ms, list_lag: 1s, check_interval: 300ms",
    )
    .await;
    r.sim.inject(rule("PATCH", 4, FaultAction::Status(503)));
    eventually(Duration::from_secs(20), "the burst used up", || {
        r.sim
            .requests()
            .iter()
            .filter(|q| q.method == "PATCH" && q.status == Some(503))
            .count()
            == 4
    })
    .await;
    eventually(Duration::from_secs(20), "checks answered again", || {
        r.sim
            .requests()
            .iter()
            .filter(|q| q.method == "PATCH" && q.status == Some(200))
            .count()
            >= 4
    })
    .await;
    converged(&r.app, &r.sim, NEWS, CONVERGE).await;
    assert_eq!(r.sim.history().len(), 2, "nothing replaced");
    assert_clean(&r.sim, &r.store, &BTreeSet::new());
    finish(r).await;
}

async fn a_429_storm_pauses_and_recovers_without_a_violation(backend: Backend) {
    let r = running(backend, "f-429", FAST).await;
    r.sim.inject(FaultRule {
        method: None,
        path_contains: "/cloud-player/players".into(),
        count: 12,
        action: FaultAction::Status(429),
    });
    let failed = BTreeSet::from([fail_on_air(&r)]);
    // Each 429 pauses its API for 5–6 s, and each one the replacement's Create gets
    // moves its slot a step down Agora's retreat (5, 10, 15 s): with Lists running apart
    // from the loop, about 4 of the 12 land on the Create, 45 s of retreat before the
    // one that succeeds.
    converged(&r.app, &r.sim, NEWS, CONVERGE * 2).await;
    assert_clean(&r.sim, &r.store, &failed);
    finish(r).await;
}

/// Answers that come after the client's timeout: the List is an outage, the Create is
/// executed by Agora after the client gave up, and its retry must adopt it by name.
async fn answers_slower_than_the_client_timeout(backend: Backend) {
    let dir = temp_dir("f-slow");
    let sim = start_simulator().await;
    write_config_full(&dir, &sim, &one_scene("revertive"), "", FAST);
    let path = dir.join("pullkeeper.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("timeout: 5s", "timeout: 1s");
    std::fs::write(&path, text).unwrap();
    let config = pullkeeper::config::load_with_env(&path, &crate::harness::env()).unwrap();
    let (store, etcd) = backend.store(&config);
    let r = Running {
        app: start_app_leading(config, store.clone()).await,
        sim,
        dir,
        store,
        _etcd: etcd,
    }
    .until_both_running()
    .await;
    connect_ncs(&r.sim, &r.app);
    let slow = FaultAction::Delay(Duration::from_millis(1500));
    r.sim.inject(rule("GET", 3, slow));
    r.sim.inject(rule("POST", 2, slow));
    r.sim.inject(rule("DELETE", 1, slow));
    let failed = BTreeSet::from([fail_on_air(&r)]);
    converged(&r.app, &r.sim, NEWS, CONVERGE).await;
    assert_clean(&r.sim, &r.store, &failed);
    let names: Vec<String> = r.sim.history().into_iter().filter_map(|h| h.name).collect();
    let unique: BTreeSet<&String> = names.iter().collect();
    assert_eq!(
        names.len(),
        unique.len(),
        "one player per name ever: {names:?}"
    );
    finish(r).await;
}

/// The operation happens but the answer is cut halfway (or never starts).
async fn connections_cut_mid_response_or_dropped(backend: Backend) {
    let r = running(backend, "f-cut", FAST).await;
    r.sim.inject(rule("POST", 2, FaultAction::Cut));
    r.sim.inject(rule("GET", 2, FaultAction::Cut));
    r.sim.inject(rule("DELETE", 1, FaultAction::Cut));
    r.sim.inject(rule("GET", 1, FaultAction::Drop));
    let failed = BTreeSet::from([fail_on_air(&r)]);
    converged(&r.app, &r.sim, NEWS, CONVERGE).await;
    assert!(
        r.sim
            .requests()
            .iter()
            .filter(|q| q.status.is_none())
            .count()
            >= 5,
        "the faults were used"
    );
    // The slots can converge while a player of ours is still live outside the store: the
    // failed one before its Delete, or one whose answer was cut before a List settles it.
    // Once in a CI run the check came that early (one orphan); the end state is checked
    // once it is settled, and an orphan that stays still fails here.
    eventually(CONVERGE, "every live player of ours in the store", || {
        orphans(&r.sim, &r.store) == 0
    })
    .await;
    assert_clean(&r.sim, &r.store, &failed);
    finish(r).await;
}

/// NCS sends every notice twice and out of order (§2.1): each failure acts once.
async fn ncs_duplicates_and_reordering_act_once(backend: Backend) {
    let r = running(backend, "f-ncs-chaos", "poll_interval: 30s, list_lag: 1s").await;
    r.sim.set_ncs_chaos(NcsChaos {
        duplicate: true,
        max_delay: Duration::from_millis(600),
    });
    let mut failed = BTreeSet::new();
    for _ in 0..2 {
        failed.insert(fail_on_air(&r));
        converged(&r.app, &r.sim, NEWS, CONVERGE).await;
    }
    let duplicates = r
        .app
        .metrics
        .webhook_notices
        .with_label_values(&["duplicate"])
        .get();
    assert!(duplicates > 0, "duplicates arrived");
    assert_eq!(r.sim.history().len(), 4, "two failures, two replacements");
    assert_clean(&r.sim, &r.store, &failed);
    finish(r).await;
}

/// NCS cannot reach pullkeeper at all: the List alone finds the failure.
async fn with_ncs_down_polling_alone_recovers(backend: Backend) {
    let r = running(backend, "f-ncs-down", FAST).await;
    let nowhere = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/ncs/e2e", nowhere.local_addr().unwrap());
    drop(nowhere);
    r.sim.set_ncs_url(APP_ID, Some(url));
    let failed = BTreeSet::from([fail_on_air(&r)]);
    converged(&r.app, &r.sim, NEWS, CONVERGE).await;
    assert!(
        r.sim.notices_sent().iter().any(|n| matches!(
            n.outcome,
            pullkeeper::simulator::DeliveryOutcome::Failed { .. }
        )),
        "notices were lost"
    );
    assert_clean(&r.sim, &r.store, &failed);
    finish(r).await;
}

/// Agora's List hides new players for its documented 10 s; nothing may be replaced or
/// taken off air for it, and a failure in that time is still handled.
async fn list_lag_of_ten_seconds(backend: Backend) {
    let dir = temp_dir("f-lag");
    let sim = start_simulator_with_lag(Duration::from_secs(10)).await;
    let config = write_config_full(
        &dir,
        &sim,
        &one_scene("revertive"),
        "",
        "poll_interval: 500ms, list_lag: 12s",
    );
    let r = Running::launch_on(backend, sim, dir, config)
        .await
        .until_both_running()
        .await;
    let failed = BTreeSet::from([fail_on_air(&r)]);
    converged(&r.app, &r.sim, NEWS, CONVERGE).await;
    assert_eq!(r.sim.history().len(), 3, "one replacement, nothing else");
    assert_clean(&r.sim, &r.store, &failed);
    finish(r).await;
}

/// Without `base_url` the client walks Agora's domains; here the primary refuses
/// connections, or does not resolve at all.
async fn through_domains(
    backend: Backend,
    tag: &str,
    resolve: impl Fn(&SimHandle, &str) -> String,
) {
    let dir = temp_dir(tag);
    let sim = start_simulator().await;
    let refused = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let refused_addr = refused.local_addr().unwrap().to_string();
    drop(refused);
    write_config_full(&dir, &sim, &one_scene("revertive"), "", FAST);
    let path = dir.join("pullkeeper.yaml");
    let api = format!(
        "api: {{ scheme: http, area: us-east, timeout: 2s, resolve: {{ {} }} }}",
        resolve(&sim, &refused_addr)
    );
    let text = std::fs::read_to_string(&path).unwrap().replace(
        &format!("api: {{ base_url: \"{}\", timeout: 5s }}", sim.base_url()),
        &api,
    );
    assert!(text.contains(&api));
    std::fs::write(&path, text).unwrap();
    let config = pullkeeper::config::load_with_env(&path, &crate::harness::env()).unwrap();
    let r = Running::launch_on(backend, sim, dir, config)
        .await
        .until_both_running()
        .await;
    assert!(
        r.app
            .metrics
            .domain_switches
            .with_label_values(&["e2e"])
            .get()
            >= 1
    );
    let failed = BTreeSet::from([fail_on_air(&r)]);
    converged(&r.app, &r.sim, NEWS, CONVERGE).await;
    assert_clean(&r.sim, &r.store, &failed);
    finish(r).await;
}

async fn primary_domain_down(backend: Backend) {
    through_domains(backend, "f-primary", |sim, refused| {
        format!(
            "api.agora.io: \"{refused}\", api-us-west-1.agora.io: \"{}\"",
            sim.addr()
        )
    })
    .await;
}

async fn dns_failure_of_the_primary(backend: Backend) {
    through_domains(backend, "f-dns", |sim, _| {
        format!(
            "api.agora.io: dns-failure, api.sd-rtn.com: \"{}\", api-us-west-1.agora.io: dns-failure",
            sim.addr()
        )
    })
    .await;
}

/// Every case runs on the embedded store and on etcd.
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod sled_store {
            use super::Backend;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(Backend::Sled).await;
                }
            )*
        }
        mod etcd_store {
            use super::Backend;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(Backend::Etcd).await;
                }
            )*
        }
    };
}

on_both_stores!(
    five_xx_bursts_on_create_delete_and_list_still_converge,
    five_xx_bursts_on_update_below_the_strikes_delete_nothing,
    a_429_storm_pauses_and_recovers_without_a_violation,
    answers_slower_than_the_client_timeout,
    connections_cut_mid_response_or_dropped,
    ncs_duplicates_and_reordering_act_once,
    with_ncs_down_polling_alone_recovers,
    list_lag_of_ten_seconds,
    primary_domain_down,
    dns_failure_of_the_primary,
);
