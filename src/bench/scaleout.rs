//! Scale-out: 1,000 projects × 50 players shared by three `pullkeeper run` processes on
//! one etcd, against one replica doing it all. Convergence from empty, each replica's
//! steady CPU and peak memory (from `/proc`, the simulator runs in this process), etcd's
//! CPU and database size, failovers whose notice reaches a replica that does not lead the
//! project, and a replica SIGKILLed in steady state.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use tokio::time::Instant;

use super::failover::{HookLog, hook_setting};
use super::replica::{HANDED_OVER, LOST, Replica, configure, route_ncs};
use super::report::{Figure, Limit, ScenarioReport};
use super::rig::{self, ADMIN_TOKEN, Layout, SettingsYaml, TempDir};
use super::takeover::duplicates;
use crate::agora::wire::PlayerStatus;
use crate::simulator::{DeliveryOutcome, SimHandle};
use crate::store::LocalEtcd;
use crate::telemetry::process;

const TTL: Duration = Duration::from_secs(10);
const NAMES: [&str; 3] = ["a", "b", "c"];

/// Players running at the simulator, over every project.
fn running(sim: &SimHandle, layout: Layout) -> usize {
    (0..layout.projects)
        .map(|p| {
            sim.players(&Layout::app_id(p))
                .iter()
                .filter(|pl| pl.status == PlayerStatus::Running)
                .count()
        })
        .sum()
}

/// The simulator's NCS delivery attempts so far, by how each ended: a notice resent
/// after a refusal or a timeout costs the simulator (and the receivers) again.
fn deliveries(sim: &SimHandle, what: &str) -> Vec<Figure> {
    let attempts = sim.notices_sent();
    let count = |f: fn(&DeliveryOutcome) -> bool| attempts.iter().filter(|a| f(&a.outcome)).count();
    let parts = [
        ("answered 200", count(|o| *o == DeliveryOutcome::Delivered)),
        (
            "answered another status",
            count(|o| matches!(o, DeliveryOutcome::Status { .. })),
        ),
        (
            "failed (connection, timeout)",
            count(|o| matches!(o, DeliveryOutcome::Failed { .. })),
        ),
    ];
    parts
        .into_iter()
        .map(|(how, n)| Figure::new(format!("NCS attempts {what}: {how}"), n as f64, ""))
        .collect()
}

/// CPU seconds used by each part of a run: the replicas, etcd, and this process (the
/// simulator and the app webhook), to tell which one a slower run spent them in.
#[derive(Default)]
struct Cpu {
    replicas: f64,
    etcd: f64,
    simulator: f64,
}

impl Cpu {
    fn read(replicas: &[Replica], etcd_pid: u32) -> anyhow::Result<Cpu> {
        let mut cpu = 0.0;
        for replica in replicas {
            cpu += replica.cpu_seconds()?;
        }
        Ok(Cpu {
            replicas: cpu,
            etcd: process::cpu_seconds_of(etcd_pid)?,
            simulator: process::cpu_seconds_of(std::process::id())?,
        })
    }

    fn total(&self) -> f64 {
        self.replicas + self.etcd
    }

    /// Adds the figures of the CPU used since `before`, for `what`.
    fn report(&self, before: &Cpu, what: &str, r: &mut ScenarioReport) {
        let parts = [
            ("the replicas and etcd", self.total() - before.total()),
            ("  of which the replicas", self.replicas - before.replicas),
            ("  of which etcd", self.etcd - before.etcd),
            (
                "the simulator (this process)",
                self.simulator - before.simulator,
            ),
        ];
        for (part, seconds) in parts {
            r.push(Figure::new(format!("CPU {what}: {part}"), seconds, "s"));
        }
    }
}

/// When (from the first start) and at what CPU cost a run converged.
struct Converged {
    /// Every player runs at the simulator.
    running: Duration,
    running_cpu: Cpu,
    /// And every NCS notice so far was taken (or given up by the simulator): the
    /// replicas' picture is the simulator's, with nothing left to write or act on.
    settled: Duration,
    settled_cpu: Cpu,
}

/// Starts `names.len()` replicas on a fresh etcd and simulator and waits until every
/// player runs, then until every notice about them was taken. Both instants count: a
/// replica can have every player running and still a minute of notices to take (one
/// replica at 1,000 projects did), and three replicas take them sooner, so only
/// "settled" compares equal work.
async fn converge(
    dir: &Path,
    layout: Layout,
    names: &[&'static str],
    sim: &SimHandle,
    extra: &str,
) -> anyhow::Result<(Vec<Replica>, LocalEtcd, Converged)> {
    let etcd = LocalEtcd::start().context("cannot start etcd (Debian package etcd-server)")?;
    let settings = SettingsYaml {
        reconcile: "poll_interval: 5s",
        limits: "max_players: 50",
        extra,
        scene_extra: "failback: non-revertive",
    };
    let start = Instant::now();
    let simulator_before = process::cpu_seconds_of(std::process::id())?;
    // Started together, as a Deployment's pods are.
    let mut starting = Vec::new();
    for &name in names {
        let at = dir.join(name);
        configure(&at, layout, &sim.base_url(), &settings, &etcd, name, TTL)?;
        starting.push(tokio::spawn(async move { Replica::start(name, &at).await }));
    }
    let mut replicas = Vec::new();
    for started in starting {
        replicas.push(started.await??);
    }
    route_ncs(sim, &replicas.iter().collect::<Vec<_>>(), layout);
    let etcd_pid = etcd.pid().context("etcd runs")?;
    let cpu_now = |replicas: &[Replica]| -> anyhow::Result<Cpu> {
        let mut cpu = Cpu::read(replicas, etcd_pid)?;
        cpu.simulator -= simulator_before;
        Ok(cpu)
    };
    let waited = rig::wait_for(
        "every player running",
        Duration::from_secs(600),
        Duration::from_millis(500),
        || running(sim, layout) >= layout.players(),
    )
    .await;
    if let Err(e) = waited {
        return Err(e.context(format!(
            "{} of {} players running; {}",
            running(sim, layout),
            layout.players(),
            logs(&replicas)
        )));
    }
    let (running_at, running_cpu) = (start.elapsed(), cpu_now(&replicas)?);
    let drained = rig::wait_for(
        "every NCS notice taken",
        Duration::from_secs(600),
        Duration::from_millis(200),
        || sim.ncs_outstanding() == 0,
    )
    .await;
    if let Err(e) = drained {
        let outstanding = sim.ncs_outstanding();
        return Err(e.context(format!(
            "{outstanding} notices outstanding; {}",
            logs(&replicas)
        )));
    }
    let converged = Converged {
        running: running_at,
        running_cpu,
        settled: start.elapsed(),
        settled_cpu: cpu_now(&replicas)?,
    };
    Ok((replicas, etcd, converged))
}

/// Where each replica's whole log was saved, what it leads and its last lines: for a run
/// that did not converge.
fn logs(replicas: &[Replica]) -> String {
    let state: Vec<String> = replicas
        .iter()
        .map(|r| {
            let saved = r.save_log().map_or_else(
                |e| format!("log not saved: {e}"),
                |p| p.display().to_string(),
            );
            format!(
                "{} leads {} (whole log: {saved}): {}",
                r.name,
                r.leads(),
                r.log_tail(5)
            )
        })
        .collect();
    state.join("\n")
}

/// `etcd_mvcc_db_total_size_in_bytes` from the member's metrics, in MiB.
async fn etcd_db_mib(etcd: &LocalEtcd) -> anyhow::Result<f64> {
    let text = reqwest::get(etcd.metrics_url()).await?.text().await?;
    text.lines()
        .find_map(|l| l.strip_prefix("etcd_mvcc_db_total_size_in_bytes "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|b| b / (1024.0 * 1024.0))
        .context("etcd reports no database size")
}

/// Requests etcd has answered so far, by gRPC method (`grpc_server_handled_total`).
async fn etcd_requests(etcd: &LocalEtcd) -> anyhow::Result<HashMap<String, f64>> {
    let text = reqwest::get(etcd.metrics_url()).await?.text().await?;
    let mut by_method = HashMap::new();
    for line in text.lines() {
        let Some(labels) = line.strip_prefix("grpc_server_handled_total{") else {
            continue;
        };
        let method = labels
            .split("grpc_method=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next());
        let count = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
        if let (Some(method), Some(count)) = (method, count) {
            *by_method.entry(method.to_string()).or_default() += count;
        }
    }
    Ok(by_method)
}

/// Each scene's on-air player id, version and leading replica, from one replica (which
/// asks the others).
async fn on_air(at: &str) -> anyhow::Result<HashMap<String, (String, u64, String)>> {
    let scenes: Vec<serde_json::Value> = reqwest::Client::new()
        .get(format!("http://{at}/v1/scenes"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(scenes
        .iter()
        .filter_map(|v| {
            let slot = v["active_slot"].as_u64()?;
            let player = v["slots"]
                .as_array()?
                .iter()
                .find(|s| s["slot"].as_u64() == Some(slot) && s["status"] == "running")?;
            let id = player["id"].as_str()?.to_string();
            let leader = v["leader"].as_str()?.to_string();
            Some((
                v["name"].as_str()?.to_string(),
                (id, v["active_version"].as_u64()?, leader),
            ))
        })
        .collect())
}

pub async fn run(quick: bool, projects: usize) -> anyhow::Result<ScenarioReport> {
    let layout = Layout {
        projects: if quick { projects.min(30) } else { projects },
        scenes: 25,
    };
    let steady_window = Duration::from_secs(if quick { 10 } else { 30 });
    let failovers = if quick { 30 } else { 300 };
    let dir = TempDir::new("scaleout")?;

    // Both runs announce on-air changes to an app webhook: the same work either way.
    let sim = rig::simulator(layout, |_| {}).await?;
    let (solo_hooks, solo_hook_url) = HookLog::start(sim.clone()).await?;
    let (one, etcd, alone) = converge(
        &dir.0.join("one"),
        layout,
        &["solo"],
        &sim,
        &hook_setting(&solo_hook_url),
    )
    .await?;
    let solo_deliveries = deliveries(&sim, "until settled, 1 replica");
    drop((one, etcd, sim, solo_hooks));

    let sim = rig::simulator(layout, |_| {}).await?;
    let (hooks, hook_url) = HookLog::start(sim.clone()).await?;
    let (mut replicas, etcd, shared) = converge(
        &dir.0.join("three"),
        layout,
        &NAMES,
        &sim,
        &hook_setting(&hook_url),
    )
    .await?;

    let mut r =
        ScenarioReport::new("scale-out: 3 replicas on etcd (processes), simulator in this process");
    r.note(format!(
        "{} projects x {} scenes x 2 players = {} players; leader.ttl {} s; poll 5 s; a third of the failover \
         notices sent to the leader, two thirds to another replica; simulator at Agora's per-project limits; one local etcd member (Debian 3.4, no fsync)",
        layout.projects,
        layout.scenes,
        layout.players(),
        TTL.as_secs()
    ));
    r.note(
        "converged = every player runs and every NCS notice about them was taken; \
         'every player runs' alone leaves one replica's trailing notices uncounted",
    );
    let secs = Duration::as_secs_f64;
    r.push(Figure::new(
        "converge from empty, 1 replica",
        secs(&alone.settled),
        "s",
    ));
    r.push(
        Figure::new(
            "converge from empty, 3 replicas",
            secs(&shared.settled),
            "s",
        )
        .limit(Limit::AtMost(1.3 * secs(&alone.settled))),
    );
    for (side, run) in [("1 replica", &alone), ("3 replicas", &shared)] {
        r.push(Figure::new(
            format!("  every player runs, {side}"),
            secs(&run.running),
            "s",
        ));
        r.push(Figure::new(
            format!("  notices still arriving after every player ran, {side}"),
            secs(&(run.settled - run.running)),
            "s",
        ));
        let (until_running, until_settled) = (
            format!("until every player runs, {side}"),
            format!("until settled, {side}"),
        );
        run.running_cpu
            .report(&Cpu::default(), &until_running, &mut r);
        run.settled_cpu
            .report(&Cpu::default(), &until_settled, &mut r);
    }
    for figure in solo_deliveries
        .into_iter()
        .chain(deliveries(&sim, "until settled, 3 replicas"))
    {
        r.push(figure);
    }
    for replica in &replicas {
        r.push(Figure::new(
            format!("replica {} leads (projects)", replica.name),
            replica.leads() as f64,
            "",
        ));
    }
    r.push(Figure::new(
        "terms ended while converging (projects handed over)",
        replicas.iter().map(|x| x.logged(LOST)).sum::<usize>() as f64,
        "",
    ));
    r.push(Figure::new(
        "  of which handed over by the balance",
        replicas
            .iter()
            .map(|x| x.logged(HANDED_OVER))
            .sum::<usize>() as f64,
        "",
    ));

    // Steady state starts a List lag and a poll after the notices were taken.
    tokio::time::sleep(Duration::from_secs(15)).await;
    let etcd_pid = etcd.pid().context("etcd runs")?;
    let before: Vec<f64> = replicas
        .iter()
        .map(Replica::cpu_seconds)
        .collect::<anyhow::Result<_>>()?;
    let etcd_before = process::cpu_seconds_of(etcd_pid)?;
    let requests_before = etcd_requests(&etcd).await?;
    let wall = Instant::now();
    tokio::time::sleep(steady_window).await;
    let secs = wall.elapsed().as_secs_f64();
    let mut requests: Vec<(String, f64)> = etcd_requests(&etcd)
        .await?
        .into_iter()
        .map(|(method, n)| {
            let rate = (n - requests_before.get(&method).copied().unwrap_or(0.0)) / secs;
            (method, rate)
        })
        .filter(|(_, rate)| *rate > 0.0)
        .collect();
    requests.sort_by(|a, b| b.1.total_cmp(&a.1));
    for (replica, cpu0) in replicas.iter().zip(&before) {
        let share = (replica.cpu_seconds()? - cpu0) / secs * 100.0;
        r.push(
            Figure::new(
                format!("replica {}: steady CPU (share of one core)", replica.name),
                share,
                "%",
            )
            .limit(Limit::AtMost(10.0)),
        );
        r.push(
            Figure::new(
                format!("replica {}: peak RSS (VmHWM)", replica.name),
                replica.status_mib("VmHWM")?,
                "MiB",
            )
            .limit(Limit::AtMost(256.0)),
        );
    }
    let etcd_share = (process::cpu_seconds_of(etcd_pid)? - etcd_before) / secs * 100.0;
    r.push(Figure::new(
        "etcd: steady CPU (share of one core)",
        etcd_share,
        "%",
    ));
    for (method, rate) in requests {
        r.push(Figure::new(
            format!("  etcd requests in steady state: {method}"),
            rate,
            "/s",
        ));
    }
    r.push(Figure::new(
        "etcd: database size",
        etcd_db_mib(&etcd).await?,
        "MiB",
    ));

    // Failovers, each in another project. As a Service spreads requests over the pods,
    // a third of the notices reach the project's leader and two thirds another replica.
    let reader = replicas[0].addr().context("replica a listens")?;
    let air = on_air(&reader).await?;
    let mut pending = Vec::new();
    for (n, (p, s)) in layout
        .scenes_spread()
        .into_iter()
        .take(failovers)
        .enumerate()
    {
        let scene = Layout::scene(p, s);
        if let Some((id, version, leader)) = air.get(&scene) {
            let leading = replicas.iter().position(|r| r.name == leader).unwrap_or(0);
            let to = &replicas[(leading + n) % replicas.len()];
            let handed_over = to.name != leader;
            let addr = to.addr().context("the replica listens")?;
            let url = format!("http://{addr}/ncs/{}", Layout::project_id(p));
            sim.set_ncs_url(&Layout::app_id(p), Some(url));
            let t0 = sim.elapsed_us();
            sim.fail_player(&Layout::app_id(p), id);
            pending.push((scene, *version, t0, handed_over));
        }
        // 20 failures a second, as the single-replica failover scenario spreads them.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (mut direct, mut relayed) = (Vec::new(), Vec::new());
    for (scene, version, t0, handed_over) in &pending {
        if let Some(at) = hooks.arrival(scene, version + 1) {
            let took = Duration::from_micros(at.saturating_sub(*t0));
            if *handed_over {
                relayed.push(took);
            } else {
                direct.push(took);
            }
        }
    }
    let mut switches = direct.clone();
    switches.extend(&relayed);
    r.push(
        Figure::new("failovers: switches published", switches.len() as f64, "")
            .limit(Limit::AtLeast(pending.len() as f64)),
    );
    r.distribution(
        "failed notice -> on-air switch at the app webhook",
        &switches,
        Some(Limit::AtMost(50.0)),
    );
    r.distribution("  of which the notice reached the leader", &direct, None);
    r.distribution("  of which the notice was handed over", &relayed, None);

    // A replica killed in steady state.
    rig::wait_for(
        "every player running again",
        Duration::from_secs(120),
        Duration::from_millis(500),
        || running(&sim, layout) >= layout.players(),
    )
    .await?;
    let killed = replicas.pop().context("three replicas")?;
    let orphaned = killed.leads();
    let led_before: usize = replicas.iter().map(Replica::leads).sum();
    let cpu_before = Cpu::read(&replicas, etcd_pid)?;
    let at = Instant::now();
    killed.kill();
    let led = || replicas.iter().map(Replica::leads).sum::<usize>();
    // The first take tells when the survivors saw the lease expire; the rest is taking.
    let first_taken = rig::wait_for(
        "a survivor taking one of the killed replica's projects",
        TTL + Duration::from_secs(30),
        Duration::from_millis(20),
        || led() > led_before,
    )
    .await
    .map(|_| at.elapsed());
    let led_again = rig::wait_for(
        "the killed replica's projects led again",
        TTL + Duration::from_secs(30),
        Duration::from_millis(20),
        || led() >= led_before + orphaned,
    )
    .await
    .map(|_| at.elapsed());
    let cpu_after = Cpu::read(&replicas, etcd_pid)?;
    r.push(Figure::new(
        "killed replica's projects",
        orphaned as f64,
        "",
    ));
    cpu_after.report(&cpu_before, "from the kill until all were led", &mut r);
    if led_again
        .as_ref()
        .is_ok_and(|d| *d > TTL + Duration::from_secs(5))
    {
        for replica in &replicas {
            let saved = replica.save_log()?;
            r.note(format!(
                "replica {}'s whole log (the take-over was slow): {}",
                replica.name,
                saved.display()
            ));
        }
    }
    r.push(Figure::new(
        "kill -> the first of them led again",
        first_taken.map_or(f64::INFINITY, |d| d.as_secs_f64()),
        "s",
    ));
    r.push(
        Figure::new(
            "kill -> all its projects led again",
            led_again.map_or(f64::INFINITY, |d| d.as_secs_f64()),
            "s",
        )
        .limit(Limit::AtMost((TTL + Duration::from_secs(5)).as_secs_f64())),
    );
    tokio::time::sleep(Duration::from_secs(15)).await;
    r.push(
        Figure::new(
            "duplicate live players per slot",
            duplicates(&sim, layout) as f64,
            "",
        )
        .limit(Limit::AtMost(0.0)),
    );
    drop(replicas);
    Ok(r)
}
