//! High availability on etcd: real pullkeeper processes sharing one real etcd server,
//! the leader SIGKILLed at random moments of a failure storm, 20 times.

use std::path::{Path, PathBuf};
use std::time::Duration;

use pullkeeper::simulator::SimHandle;
use pullkeeper::store::LocalEtcd;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio::time::Instant;

use crate::audit::{audit, report};
use crate::binary::Proc;
use crate::crash::{desired, env_number, gust, scenes};
use crate::harness::{APP_ID, FAST, start_simulator_with_lag, temp_dir, write_config_full};

const KILLS: usize = 20;
/// The shortest lease `check` accepts, so that takeovers are quick.
const TTL: Duration = Duration::from_secs(3);
/// The bound on a takeover: the lease runs out, then up to one campaign round.
const TAKEOVER_LIMIT: Duration = Duration::from_secs(3 + 5);
/// What a replica logs when a term begins.
const LEADING: &str = "leading the project";

/// Settings for replica `name` in `dir`: the usual test settings with the store in
/// etcd under `prefix`.
fn configure(dir: &Path, sim: &SimHandle, etcd: &LocalEtcd, prefix: &str, name: &str) {
    std::fs::create_dir_all(dir).unwrap();
    write_config_full(dir, sim, &scenes(), "", FAST);
    use_etcd(dir, etcd, prefix, name);
}

/// Moves the store of the settings in `dir` to etcd under `prefix`, as replica `name`
/// with the shortest lease.
pub fn use_etcd(dir: &Path, etcd: &LocalEtcd, prefix: &str, name: &str) {
    let path = dir.join("pullkeeper.yaml");
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "store: { path: store }",
        &format!(
            "store: {{ backend: etcd, etcd: {{ endpoints: [\"{}\"], prefix: \"{prefix}\" }} }}\n\
             leader: {{ ttl: {}s, replica: {name} }}",
            etcd.endpoint(),
            TTL.as_secs()
        ),
    );
    std::fs::write(&path, text).unwrap();
}

async fn start(dir: &Path, sim: &SimHandle, leads: bool) -> Proc {
    let proc = Proc::start(dir).await;
    if leads {
        sim.set_ncs_url(APP_ID, Some(format!("http://{}/ncs/e2e", proc.addr)));
    }
    proc
}

/// Waits until `proc` leads (it began a term), at most the killed predecessor's lease
/// and a round.
pub async fn leads(proc: &Proc) {
    if new_term(proc, 0, TAKEOVER_LIMIT).await.is_none() {
        panic!("never led; log:\n{}", proc.log_tail(30));
    }
}

/// Waits until `proc` has begun more than `terms` terms; how long that took.
async fn new_term(proc: &Proc, terms: usize, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if proc.mentions(LEADING) > terms {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_during_a_storm_hands_over_within_the_ttl_and_loses_nothing() {
    let kills = env_number("PULLKEEPER_HA_KILLS").map_or(KILLS, |n| n as usize);
    let seed = env_number("PULLKEEPER_KILL_SEED").unwrap_or_else(rand::random);
    report(&format!("HA kill -9 test: {kills} kills, seed {seed}"));
    let mut rng = StdRng::seed_from_u64(seed);
    let etcd = LocalEtcd::start().expect("etcd (Debian package etcd-server) starts");
    let sim = start_simulator_with_lag(Duration::from_millis(1200)).await;
    let root = temp_dir("ha");
    let dirs: Vec<PathBuf> = ["a", "b"].iter().map(|n| root.join(n)).collect();
    for (dir, name) in dirs.iter().zip(["a", "b"]) {
        configure(dir, &sim, &etcd, "/pk-ha/", name);
    }
    let mut procs = vec![start(&dirs[0], &sim, true).await];
    assert!(
        new_term(&procs[0], 0, 4 * TTL).await.is_some(),
        "the first replica never led; log:\n{}",
        procs[0].log_tail(30)
    );
    procs.push(start(&dirs[1], &sim, false).await);
    let mut leader = 0;
    let mut takeovers = Vec::new();
    for _ in 0..kills {
        gust(&sim, &mut rng);
        tokio::time::sleep(Duration::from_millis(rng.random_range(200..1500))).await;
        let follower = 1 - leader;
        let terms = procs[follower].mentions(LEADING);
        procs.remove(leader).kill();
        // `procs` now holds the follower alone.
        let took = new_term(&procs[0], terms, 2 * TAKEOVER_LIMIT).await;
        let Some(took) = took else {
            panic!(
                "no takeover within {:?}; survivor's log:\n{}",
                2 * TAKEOVER_LIMIT,
                procs[0].log_tail(40)
            );
        };
        takeovers.push(took);
        sim.set_ncs_url(APP_ID, Some(format!("http://{}/ncs/e2e", procs[0].addr)));
        // The killed replica comes back as the follower.
        let restarted = start(&dirs[leader], &sim, false).await;
        if leader == 0 {
            procs.insert(0, restarted);
        } else {
            procs.push(restarted);
        }
        leader = follower;
    }
    sim.clear_faults();
    let converged = tokio::time::timeout(Duration::from_secs(90), async {
        while !audit(&sim, &desired()).converged() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let figures = audit(&sim, &desired());
    takeovers.sort();
    let ms: Vec<u128> = takeovers.iter().map(Duration::as_millis).collect();
    report(&format!(
        "HA kill -9 figures: kills={kills} seed={seed} takeover_ms={ms:?} {figures}"
    ));
    assert!(
        converged.is_ok(),
        "no convergence within 90 s: {figures}; leader's log:\n{}",
        procs[leader].log_tail(40)
    );
    assert_eq!(figures.duplicates, 0, "duplicate players");
    assert_eq!(figures.healthy_deleted, 0, "second players made for a slot");
    assert_eq!(figures.orphans, 0, "orphaned players");
    assert_eq!(figures.uid_reuse, 0, "UIDs created twice in a channel");
    let refused = sim
        .requests()
        .iter()
        .filter(|r| r.status == Some(429))
        .count();
    assert_eq!(refused, 0, "Agora answered 429 around a takeover");
    let slowest = *takeovers.last().unwrap();
    assert!(
        slowest <= TAKEOVER_LIMIT,
        "slowest takeover {slowest:?} > ttl + 5 s"
    );
    drop(procs);
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_frozen_past_its_lease_makes_no_call_after_it_resumes() {
    let seed = env_number("PULLKEEPER_KILL_SEED").unwrap_or_else(rand::random);
    report(&format!("HA SIGSTOP test: seed {seed}"));
    let mut rng = StdRng::seed_from_u64(seed);
    let etcd = LocalEtcd::start().expect("etcd (Debian package etcd-server) starts");
    let sim = start_simulator_with_lag(Duration::from_millis(1200)).await;
    let root = temp_dir("ha-stop");
    let dirs: Vec<PathBuf> = ["a", "b"].iter().map(|n| root.join(n)).collect();
    for (dir, name) in dirs.iter().zip(["a", "b"]) {
        configure(dir, &sim, &etcd, "/pk-stop/", name);
    }
    let a = start(&dirs[0], &sim, true).await;
    assert!(new_term(&a, 0, 4 * TTL).await.is_some(), "a never led");
    let b = start(&dirs[1], &sim, false).await;
    tokio::time::timeout(Duration::from_secs(30), async {
        while !audit(&sim, &desired()).converged() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("converged before the freeze");
    gust(&sim, &mut rng);
    a.signal("STOP");
    let took = new_term(&b, 0, 2 * TAKEOVER_LIMIT).await;
    assert!(
        took.is_some(),
        "b never took over; log:\n{}",
        b.log_tail(30)
    );
    sim.set_ncs_url(APP_ID, Some(format!("http://{}/ncs/e2e", b.addr)));
    // Frozen for two lease lengths in all, while b works through a second gust.
    tokio::time::sleep((2 * TTL).saturating_sub(took.unwrap())).await;
    gust(&sim, &mut rng);
    let before_resume = sim.requests().len();
    a.signal("CONT");
    tokio::time::sleep(2 * TTL).await;
    sim.clear_faults();
    tokio::time::timeout(Duration::from_secs(60), async {
        while !audit(&sim, &desired()).converged() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("converged after the resume");
    let requests = sim.requests();
    let by_a = |r: &&pullkeeper::simulator::RequestRecord| {
        r.user_agent
            .as_deref()
            .is_some_and(|ua| ua.ends_with("(a)"))
    };
    assert!(
        requests[..before_resume].iter().any(|r| by_a(&r)),
        "a's calls are told apart by their User-Agent"
    );
    let from_a: Vec<String> = requests[before_resume..]
        .iter()
        .filter(by_a)
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    let figures = audit(&sim, &desired());
    report(&format!(
        "HA SIGSTOP figures: seed={seed} takeover_ms={} calls_by_a_after_resume={} {figures}",
        took.unwrap().as_millis(),
        from_a.len()
    ));
    assert!(
        from_a.is_empty(),
        "the deposed leader called Agora: {from_a:?}"
    );
    assert_eq!(figures.duplicates, 0, "duplicate players");
    assert_eq!(figures.healthy_deleted, 0, "b's work undone");
    assert_eq!(figures.orphans, 0, "orphaned players");
    assert_eq!(figures.uid_reuse, 0, "UIDs created twice in a channel");
    assert!(
        a.mentions("leadership lost") > 0,
        "a noticed its loss; log:\n{}",
        a.log_tail(20)
    );
    drop((a, b));
    let _ = std::fs::remove_dir_all(&root);
}

/// How many terms `proc` has lost so far.
fn losses(proc: &Proc) -> usize {
    proc.mentions("leadership lost")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_etcd_member_down_changes_nothing_two_stop_the_work_and_their_return_resumes_it() {
    let mut members = LocalEtcd::cluster(3).expect("a three-member etcd cluster starts");
    let sim = start_simulator_with_lag(Duration::from_millis(1200)).await;
    let dir = temp_dir("ha-quorum");
    write_config_full(&dir, &sim, &scenes(), "", FAST);
    let path = dir.join("pullkeeper.yaml");
    let endpoints: Vec<String> = members
        .iter()
        .map(|m| format!("\"{}\"", m.endpoint()))
        .collect();
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "store: { path: store }",
        &format!(
            "store: {{ backend: etcd, etcd: {{ endpoints: [{}], prefix: /pk-q/ }} }}\n\
             leader: {{ ttl: {}s, replica: a }}",
            endpoints.join(", "),
            TTL.as_secs()
        ),
    );
    std::fs::write(&path, text).unwrap();
    let a = start(&dir, &sim, true).await;
    assert!(new_term(&a, 0, 4 * TTL).await.is_some(), "a never led");
    let converge = |limit: u64| {
        let sim = sim.clone();
        async move {
            tokio::time::timeout(Duration::from_secs(limit), async {
                while !audit(&sim, &desired()).converged() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
            .await
        }
    };
    converge(30).await.expect("converged");
    let deletes = || {
        sim.requests()
            .iter()
            .filter(|r| r.method == "DELETE")
            .count()
    };

    // One member down (the first endpoint): no interruption.
    members[0].kill();
    tokio::time::sleep(3 * TTL).await;
    assert_eq!(
        losses(&a),
        0,
        "one member down cost the lead; log:\n{}",
        a.log_tail(20)
    );

    // Two down: no quorum. Acting stops within the ttl; nothing is deleted.
    let deletes_before = deletes();
    members[1].kill();
    let lost = Instant::now();
    while losses(&a) == 0 {
        assert!(
            lost.elapsed() <= TTL + Duration::from_secs(1),
            "still acting; log:\n{}",
            a.log_tail(20)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stopped_after = lost.elapsed();
    // NCS is told to come back: nothing is recorded, nothing acted on.
    // Signed as NCS signs: a notice with a bad signature is refused (401) whoever leads.
    let body = b"{}";
    let notice = reqwest::Client::new()
        .post(format!("http://{}/ncs/e2e", a.addr))
        .header(
            pullkeeper::ncs::signature::HEADER_SHA256,
            pullkeeper::ncs::signature::sign_sha256(b"e2e-ncs", body),
        )
        .body(&body[..])
        .send()
        .await
        .unwrap();
    assert_eq!(notice.status(), 503, "NCS answered 503 while etcd is away");
    tokio::time::sleep(2 * TTL).await;
    assert_eq!(
        deletes(),
        deletes_before,
        "nothing deleted while etcd is away"
    );
    assert!(
        audit(&sim, &desired()).converged(),
        "the players keep running"
    );

    // Both back: led again, work resumes without duplicates.
    let terms = a.mentions(LEADING);
    members[0].revive().unwrap();
    members[1].restart().unwrap();
    let back = new_term(&a, terms, 6 * TTL).await;
    assert!(back.is_some(), "never led again; log:\n{}", a.log_tail(30));
    let victim = sim.players(APP_ID)[0].id.clone();
    sim.fail_player(APP_ID, &victim);
    converge(60).await.expect("the failed player replaced");
    let figures = audit(&sim, &desired());
    report(&format!(
        "HA quorum figures: stopped_acting_ms={} led_again_ms={} {figures}",
        stopped_after.as_millis(),
        back.unwrap().as_millis()
    ));
    assert_eq!(figures.duplicates, 0, "duplicate players");
    assert_eq!(figures.orphans, 0, "orphaned players");
    assert_eq!(figures.uid_reuse, 0, "UIDs created twice");
    drop(a);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_etcd_unreachable_at_start_it_serves_health_acts_for_nothing_and_leads_once_etcd_answers()
 {
    let mut etcd = LocalEtcd::start().expect("etcd starts");
    etcd.kill();
    let sim = start_simulator_with_lag(Duration::from_millis(1200)).await;
    let dir = temp_dir("ha-late");
    configure(&dir, &sim, &etcd, "/pk-late/", "a");
    let a = start(&dir, &sim, true).await;
    let health = reqwest::get(format!("http://{}/healthz", a.addr))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    tokio::time::sleep(2 * TTL).await;
    assert!(
        a.mentions(&etcd.endpoint()) > 0 && a.mentions("unreachable") > 0,
        "the log names the endpoint and the cause:\n{}",
        a.log_tail(10)
    );
    assert_eq!(a.mentions(LEADING), 0);
    assert!(
        sim.players(APP_ID).is_empty(),
        "no player created without leadership"
    );
    let ready = || async {
        reqwest::get(format!("http://{}/readyz", a.addr))
            .await
            .unwrap()
            .status()
    };
    assert_eq!(ready().await, 503, "not ready without a lease");
    etcd.restart().unwrap();
    leads(&a).await;
    assert_eq!(ready().await, 200, "ready once etcd answers");
    tokio::time::timeout(Duration::from_secs(30), async {
        while !audit(&sim, &desired()).converged() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("converged once led");
    let scenes = crate::harness::admin_json(format!("http://{}/v1/scenes", a.addr)).await;
    let scenes = scenes.as_array().expect("a list of scenes");
    assert!(!scenes.is_empty());
    for scene in scenes {
        assert_eq!(scene["leader"], "a", "{scene}");
    }
    drop(a);
    let _ = std::fs::remove_dir_all(&dir);
}
