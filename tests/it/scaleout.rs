//! Scale-out on etcd: real pullkeeper processes sharing the projects of one real etcd
//! server. Leadership is balanced as replicas join and leave, a drained replica hands
//! its projects over before it exits, a notice sent to any replica is acted on by the
//! project's leader, any replica answers for every scene, and a rolling restart of
//! every replica during a failure storm loses nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pullkeeper::model::parse_name;
use pullkeeper::simulator::{SimHandle, SimProject};
use pullkeeper::store::LocalEtcd;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::time::Instant;

use crate::audit::{Audit, audit_in, report};
use crate::binary::Proc;
use crate::crash::{env_number, gust_in};
use crate::harness::{ADMIN_TOKEN, FAST, start_simulator_with, temp_dir};

/// The shortest lease `check` accepts.
const TTL: Duration = Duration::from_secs(3);
const PROJECTS: usize = 6;
const LEADING: &str = "leading the project";
const LOST: &str = "leadership lost; stopping work for the project";

fn app_id(p: usize) -> String {
    format!("scaleapp{p:08}")
}

fn apps() -> Vec<String> {
    (0..PROJECTS).map(app_id).collect()
}

/// One scene of a master and a backup per project.
fn desired() -> Vec<(String, u32)> {
    (0..PROJECTS).map(|p| (format!("sc{p}"), 2)).collect()
}

async fn simulator() -> SimHandle {
    start_simulator_with(|sim| {
        sim.list_lag = Duration::from_millis(1200);
        for app in apps() {
            sim.projects.push(SimProject {
                app_id: app,
                ncs_secret: "e2e-ncs".into(),
                ncs_url: None,
            });
        }
    })
    .await
}

/// The settings and scenes of replica `name` in `dir`.
fn configure(dir: &Path, sim: &SimHandle, etcd: &LocalEtcd, name: &str, ttl: Duration) {
    std::fs::create_dir_all(dir).unwrap();
    let mut settings = format!(
        "server: {{ listen: \"127.0.0.1:0\", admin_token: {{ env: E2E_ADMIN_TOKEN }} }}\n\
         store: {{ backend: etcd, etcd: {{ endpoints: [\"{}\"], prefix: /pk-scale/ }} }}\n\
         leader: {{ ttl: {}s, replica: {name} }}\n\
         reconcile: {{ {FAST} }}\n\
         scenes_file: scenes.yaml\nprojects:\n",
        etcd.endpoint(),
        ttl.as_secs()
    );
    let mut scenes = String::from("scenes:\n");
    for p in 0..PROJECTS {
        settings.push_str(&format!(
            "  - {{ id: p{p}, app_id: {}, customer_id: {{ env: E2E_CUSTOMER_ID }}, \
             customer_secret: {{ env: E2E_CUSTOMER_SECRET }}, ncs_secret: {{ env: E2E_NCS_SECRET }}, \
             api: {{ base_url: \"{}\", timeout: 5s }}, \
             limits: {{ max_players: 50, qps: {{ create_with_name: {{ per_second: 50 }}, list: {{ per_second: 20 }} }} }} }}\n",
            app_id(p),
            sim.base_url()
        ));
        scenes.push_str(&format!(
            "  - {{ name: sc{p}, project: p{p}, channel: ch{p}, stream_url: rtmp://o.example.com/{p}, \
             region: na, backups: 1, uids: {{ start: 1000, end: 9999 }} }}\n"
        ));
    }
    std::fs::write(dir.join("pullkeeper.yaml"), settings).unwrap();
    std::fs::write(dir.join("scenes.yaml"), scenes).unwrap();
}

/// One etcd server, the simulator, and the configurations of replicas a, b and c (each
/// in its own directory under `root`), at leader ttl `ttl`.
struct Group {
    etcd: LocalEtcd,
    sim: SimHandle,
    root: PathBuf,
    dirs: Vec<PathBuf>,
}

async fn group(tag: &str, ttl: Duration) -> Group {
    let etcd = LocalEtcd::start().expect("etcd (Debian package etcd-server) starts");
    let sim = simulator().await;
    let root = temp_dir(tag);
    let dirs: Vec<PathBuf> = ["a", "b", "c"].iter().map(|n| root.join(n)).collect();
    for (dir, name) in dirs.iter().zip(["a", "b", "c"]) {
        configure(dir, &sim, &etcd, name, ttl);
    }
    Group {
        etcd,
        sim,
        root,
        dirs,
    }
}

/// Sends every project's notices to `proc`, whichever replica leads it.
fn notices_to(sim: &SimHandle, proc: &Proc) {
    for p in 0..PROJECTS {
        sim.set_ncs_url(&app_id(p), Some(format!("http://{}/ncs/p{p}", proc.addr)));
    }
}

/// Project → leading replica, as `/v1/scenes` on `proc` says (each scene exactly once).
async fn leaders_seen_by(proc: &Proc) -> BTreeMap<String, String> {
    let answer = reqwest::Client::new()
        .get(format!("http://{}/v1/scenes", proc.addr))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{}", answer.status());
    let scenes: Vec<serde_json::Value> = answer.json().await.unwrap();
    let mut leaders = BTreeMap::new();
    for scene in scenes {
        let project = scene["project"].as_str().unwrap().to_string();
        let leader = scene["leader"].as_str().unwrap_or("").to_string();
        assert!(
            leaders.insert(project.clone(), leader).is_none(),
            "scene of {project} listed twice"
        );
    }
    leaders
}

fn per_replica(leaders: &BTreeMap<String, String>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for l in leaders.values() {
        *counts.entry(l.clone()).or_default() += 1;
    }
    counts
}

/// Waits until every project is led by one of `replicas`, none leading more than
/// ⌈P/N⌉ + 1 (the bound), as read from `reader`; how long that took.
async fn balanced(reader: &Proc, replicas: &[&str], limit: Duration) -> Duration {
    shared_within(reader, replicas, 1, limit).await
}

/// Waits until every replica leads exactly ⌈P/N⌉ (P is a multiple of N here): the
/// balance is at rest, and no move of the earlier joins is still to come.
async fn at_rest(reader: &Proc, replicas: &[&str], limit: Duration) -> Duration {
    shared_within(reader, replicas, 0, limit).await
}

async fn shared_within(
    reader: &Proc,
    replicas: &[&str],
    slack: usize,
    limit: Duration,
) -> Duration {
    let bound = PROJECTS.div_ceil(replicas.len()) + slack;
    let start = Instant::now();
    loop {
        let leaders = leaders_seen_by(reader).await;
        let counts = per_replica(&leaders);
        let ok = leaders.len() == PROJECTS
            && counts.keys().all(|r| replicas.contains(&r.as_str()))
            && counts.values().all(|n| *n <= bound);
        if ok {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "not balanced over {replicas:?} (≤ {bound} each) within {limit:?}: {counts:?} ({} of {PROJECTS} led)",
            leaders.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How many times each project changed leading process, over all of `procs`' logs
/// (the first leader counts as one; a replica that loses a term and takes the project
/// back itself, as a slow renewal on a loaded machine may cause, is no change).
fn terms_per_project(procs: &[&Proc]) -> BTreeMap<String, usize> {
    let mut starts: BTreeMap<String, Vec<(String, usize)>> = BTreeMap::new();
    for (i, proc) in procs.iter().enumerate() {
        for line in proc.logged(LEADING) {
            let project = line["project"].as_str().unwrap_or("").to_string();
            let at = line["timestamp"].as_str().unwrap_or("").to_string();
            starts.entry(project).or_default().push((at, i));
        }
    }
    starts
        .into_iter()
        .map(|(project, mut terms)| {
            terms.sort();
            let mut changes = terms.len().min(1);
            changes += terms.windows(2).filter(|w| w[0].1 != w[1].1).count();
            (project, changes)
        })
        .collect()
}

/// Every start and end of a term of `project` over `procs`' logs, in time order: what
/// a failed move count needs to be understood.
fn timeline(procs: &[&Proc], project: &str) -> String {
    let mut lines = Vec::new();
    for (i, proc) in procs.iter().enumerate() {
        for message in [LEADING, LOST] {
            for line in proc.logged(message) {
                if line["project"].as_str() == Some(project) {
                    let at = line["timestamp"].as_str().unwrap_or("").to_string();
                    let why = line["why"].as_str().unwrap_or("");
                    lines.push(format!("{at} process {i}: {message} {why}"));
                }
            }
        }
    }
    lines.sort();
    lines.join("\n")
}

async fn converge(sim: &SimHandle, limit: Duration) -> (bool, Audit) {
    let apps = apps();
    let apps: Vec<&str> = apps.iter().map(String::as_str).collect();
    let done = tokio::time::timeout(limit, async {
        while !audit_in(sim, &apps, &desired()).converged() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    (done.is_ok(), audit_in(sim, &apps, &desired()))
}

async fn handed_over(proc: &Proc) -> f64 {
    let body = match reqwest::get(format!("http://{}/metrics", proc.addr)).await {
        Ok(answer) => answer.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    body.lines()
        .filter(|l| l.starts_with("pullkeeper_webhook_notices_total{outcome=\"handed_over\"}"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projects_are_shared_out_as_replicas_join_and_leave_and_any_replica_takes_notices() {
    let Group {
        etcd: _etcd,
        sim,
        root,
        dirs,
    } = group("scaleout", TTL).await;
    let a = Proc::start(&dirs[0]).await;
    notices_to(&sim, &a);
    balanced(&a, &["a"], 4 * TTL).await;
    let (converged, _) = converge(&sim, Duration::from_secs(30)).await;
    assert!(
        converged,
        "a alone never converged; log:\n{}",
        a.log_tail(30)
    );

    // Two replicas join: within 2 × ttl of the second, the projects are shared out,
    // each moving at most once.
    let b = Proc::start(&dirs[1]).await;
    let c = Proc::start(&dirs[2]).await;
    let took = balanced(&a, &["a", "b", "c"], 2 * TTL + Duration::from_secs(1)).await;
    report(&format!(
        "scale-out: balanced over 3 replicas {} ms after the last joined",
        took.as_millis()
    ));
    let terms = terms_per_project(&[&a, &b, &c]);
    assert!(
        terms.values().all(|n| *n <= 2),
        "a project changed leader more than once: {terms:?}"
    );
    // Every replica answers for every scene.
    for reader in [&a, &b, &c] {
        assert_eq!(leaders_seen_by(reader).await.len(), PROJECTS);
    }

    // A notice sent to `a` for a project `b` leads is acted on by `b`.
    let leaders = leaders_seen_by(&a).await;
    let (project, _) = leaders
        .iter()
        .find(|(_, l)| *l == "b")
        .expect("b leads a project");
    let p: usize = project[1..].parse().unwrap();
    let master = sim
        .players(&app_id(p))
        .into_iter()
        .find(|pl| {
            pl.name
                .as_deref()
                .and_then(|n| parse_name("pk", n))
                .is_some_and(|n| n.slot == 0)
        })
        .expect("the master runs");
    let before = handed_over(&a).await;
    sim.fail_player(&app_id(p), &master.id);
    let (converged, figures) = converge(&sim, Duration::from_secs(20)).await;
    assert!(converged, "the failed master was not replaced: {figures}");
    assert!(
        handed_over(&a).await > before,
        "a handed no notice over to b"
    );

    // An operator's action sent to `a` for a scene `b` leads is done by `b`, and its
    // history read from `c`.
    let http = reqwest::Client::new();
    let at = |proc: &Proc, path: &str| format!("http://{}{path}", proc.addr);
    let scene = format!("/v1/scenes/sc{p}");
    let answer = http
        .post(at(&a, &format!("{scene}/maintenance")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
    let history: serde_json::Value = http
        .get(at(&c, &format!("{scene}/events")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(history["events"][0]["kind"], "maintenance", "{history}");
    let answer = http
        .delete(at(&c, &format!("{scene}/maintenance")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);

    // A replica killed: the others take its projects within ttl + 5 s.
    c.kill();
    let took = balanced(&a, &["a", "b"], TTL + Duration::from_secs(5)).await;
    report(&format!(
        "scale-out: c killed, its projects led again after {} ms",
        took.as_millis()
    ));

    // A replica drained (SIGTERM): it hands everything over before it exits.
    let mut b = b;
    b.terminate();
    let (_, exited) = b.exit_within(Duration::from_secs(20)).await;
    let took = balanced(&a, &["a"], Duration::from_secs(3)).await;
    report(&format!(
        "scale-out: b drained in {} ms, its projects led again {} ms after it exited",
        exited.as_millis(),
        took.as_millis()
    ));
    let (converged, figures) = converge(&sim, Duration::from_secs(30)).await;
    assert!(converged, "no convergence after the moves: {figures}");
    assert_eq!(figures.duplicates, 0, "duplicate players: {figures}");
    assert_eq!(figures.orphans, 0, "orphans: {figures}");
    drop(a);
    let _ = std::fs::remove_dir_all(&root);
}

/// Replicas started together (a Deployment's pods, each a few seconds into reading its
/// configuration) see each other before they share: no project is first led by the
/// replica that happened to start first and then handed over. Without the cold-start
/// wait, the first replica took all six projects at its second reading, a second after
/// it joined, and handed four over once the others appeared. With the wait counted from
/// the replica's own joining only, a replica joining more than half a ttl after the first
/// found the shares taken (the stagger below: `a` and `b` took three each, and one came
/// back to `c`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_started_together_share_without_handing_projects_over() {
    // The cold-start wait lasts half a ttl after the newest member joined and at most a
    // ttl after the first did: `c` joins between the two.
    let ttl = Duration::from_secs(10);
    let Group {
        etcd: _etcd,
        sim: _sim,
        root,
        dirs,
    } = group("together", ttl).await;
    let a = Proc::start(&dirs[0]).await;
    // Longer than two scan periods (1 s each): `a` reads the keys alone after its
    // first reading.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let b = Proc::start(&dirs[1]).await;
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let c = Proc::start(&dirs[2]).await;
    at_rest(&a, &["a", "b", "c"], 4 * ttl).await;
    let procs = [&a, &b, &c];
    let terms = terms_per_project(&procs);
    let moved: Vec<&String> = terms.keys().filter(|p| terms[*p] != 1).collect();
    assert!(
        moved.is_empty(),
        "projects handed over at the start: {terms:?}\n{}",
        moved
            .iter()
            .map(|p| timeline(&procs, p))
            .collect::<Vec<_>>()
            .join("\n")
    );
    drop((a, b, c));
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_of_every_replica_during_a_failure_storm_loses_nothing() {
    let seed = env_number("PULLKEEPER_KILL_SEED").unwrap_or_else(rand::random);
    report(&format!("scale-out rolling restart: seed {seed}"));
    let mut rng = StdRng::seed_from_u64(seed);
    let Group {
        etcd: _etcd,
        sim,
        root,
        dirs,
    } = group("rolling", TTL).await;
    let names = ["a", "b", "c"];
    let mut procs = Vec::new();
    for dir in &dirs {
        procs.push(Proc::start(dir).await);
    }
    notices_to(&sim, &procs[0]);
    // Counting moves starts once the joins' own moves are over.
    at_rest(&procs[0], &names, 4 * TTL).await;
    let (converged, _) = converge(&sim, Duration::from_secs(30)).await;
    assert!(converged, "never converged before the restarts");
    let apps = apps();
    let apps: Vec<&str> = apps.iter().map(String::as_str).collect();
    let before = terms_per_project(&procs.iter().collect::<Vec<_>>());
    let mut gone = Vec::new();
    for i in 0..names.len() {
        gust_in(&sim, &mut rng, &apps);
        // Notices go to a replica that stays up during this restart.
        notices_to(&sim, &procs[(i + 1) % names.len()]);
        // The replacement runs before the old replica is told to stop (as with a surge
        // pod, or a replacement that joins within the ttl the old one waits for it).
        let mut old = procs.remove(i);
        procs.insert(i, Proc::start(&dirs[i]).await);
        old.terminate();
        let (_, drained) = old.exit_within(Duration::from_secs(20)).await;
        report(&format!(
            "rolling restart: {} drained in {} ms",
            names[i],
            drained.as_millis()
        ));
        gone.push(old);
        gust_in(&sim, &mut rng, &apps);
        let reader = &procs[(i + 1) % names.len()];
        at_rest(reader, &names, 4 * TTL).await;
    }
    let all: Vec<&Proc> = procs.iter().chain(&gone).collect();
    let after = terms_per_project(&all);
    let moves: BTreeMap<&String, usize> = after
        .iter()
        .map(|(p, n)| (p, n - before.get(p).copied().unwrap_or(0)))
        .collect();
    report(&format!(
        "rolling restart: leader changes per project {moves:?}"
    ));
    let twice: Vec<String> = moves
        .iter()
        .filter(|(_, n)| **n != 1)
        .map(|(p, _)| format!("{p}:\n{}", timeline(&all, p)))
        .collect();
    assert!(
        twice.is_empty(),
        "each project moves once, to the replacement of its leader: {moves:?}\n{}",
        twice.join("\n")
    );
    sim.clear_faults();
    let (converged, figures) = converge(&sim, Duration::from_secs(60)).await;
    report(&format!("rolling restart figures: seed={seed} {figures}"));
    assert!(
        converged,
        "no convergence after the rolling restart: {figures}"
    );
    assert_eq!(figures.duplicates, 0, "duplicate players");
    assert_eq!(figures.healthy_deleted, 0, "second players made for a slot");
    assert_eq!(figures.orphans, 0, "orphaned players");
    assert_eq!(figures.uid_reuse, 0, "UIDs created twice in a channel");
    drop(procs);
    let _ = std::fs::remove_dir_all(&root);
}
