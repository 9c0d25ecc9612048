//! Takeover: two `pullkeeper run` processes sharing one etcd, the leader SIGKILLed again
//! and again, in steady state and during a failure storm. Measured from the kill to the
//! new leader's first request to Agora (the simulator's request log tells the replicas
//! apart by their `User-Agent`), judged against ttl + 5 s.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use super::replica::{LEADING, Replica, configure, route_ncs};
use super::report::{Figure, Limit, ScenarioReport};
use super::rig::{self, Layout, SettingsYaml, TempDir};
use crate::model::parse_name;
use crate::simulator::SimHandle;
use crate::store::LocalEtcd;

/// The settings of the replicas: the bench layout as the other scenarios have it.
const SETTINGS: SettingsYaml<'static> = SettingsYaml {
    reconcile: "poll_interval: 5s",
    limits: "max_players: 50",
    extra: "",
    scene_extra: "",
};

/// Live players beyond one per slot, over every project.
pub(super) fn duplicates(sim: &SimHandle, layout: Layout) -> usize {
    let mut extra = 0;
    for p in 0..layout.projects {
        let mut slots = std::collections::HashMap::new();
        for player in sim.players(&Layout::app_id(p)) {
            if player.status == crate::agora::wire::PlayerStatus::Failed {
                continue;
            }
            if let Some(name) = player.name.as_deref().and_then(|n| parse_name("pk", n)) {
                *slots.entry((name.scene, name.slot)).or_insert(0usize) += 1;
            }
        }
        extra += slots.values().map(|n| n.saturating_sub(1)).sum::<usize>();
    }
    extra
}

pub async fn run(quick: bool) -> anyhow::Result<ScenarioReport> {
    let layout = Layout {
        projects: 3,
        scenes: 5,
    };
    let (kills, ttl) = if quick {
        (4, Duration::from_secs(3))
    } else {
        (20, Duration::from_secs(10))
    };
    let dir = TempDir::new("takeover")?;
    let etcd = LocalEtcd::start().context("cannot start etcd (Debian package etcd-server)")?;
    let sim = rig::simulator(layout, |c| {
        c.connect_delay = Duration::from_millis(200);
        c.list_lag = Duration::from_secs(1);
    })
    .await?;
    let dirs: Vec<PathBuf> = ["a", "b"].iter().map(|n| dir.0.join(n)).collect();
    for (d, name) in dirs.iter().zip(["a", "b"]) {
        configure(d, layout, &sim.base_url(), &SETTINGS, &etcd, name, ttl)?;
    }
    let mut replicas = vec![Replica::start("a", &dirs[0]).await?];
    replicas[0].wait_logged(LEADING, 0, 4 * ttl).await?;
    route_ncs(&sim, &[&replicas[0]], layout);
    replicas.push(Replica::start("b", &dirs[1]).await?);
    rig::wait_for(
        "every slot running",
        Duration::from_secs(120),
        Duration::from_millis(100),
        || {
            (0..layout.projects)
                .map(|p| sim.players(&Layout::app_id(p)).len())
                .sum::<usize>()
                >= layout.players()
        },
    )
    .await?;

    let mut r = ScenarioReport::new("takeover: the leader of 2 replicas on etcd SIGKILLed");
    r.note(format!(
        "{} projects x {} scenes (master + 1 backup) on 2 `pullkeeper run` processes, leader.ttl {}s; \
         one local etcd member (Debian 3.4, no fsync); kill -> the survivor's first Agora request",
        layout.projects,
        layout.scenes,
        ttl.as_secs()
    ));
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for storm in [false, true] {
        let mut took = Vec::new();
        let mut leader = 0;
        for _ in 0..kills {
            // A cheap deterministic spread of the kill instants over 0.5–2 s.
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            tokio::time::sleep(Duration::from_millis(500 + seed % 1500)).await;
            if storm {
                for p in 0..layout.projects {
                    let app = Layout::app_id(p);
                    for player in sim.players(&app).into_iter().take(2) {
                        sim.fail_player(&app, &player.id);
                    }
                }
            }
            let survivor = 1 - leader;
            let agent = format!("({})", replicas[survivor].name);
            let terms = replicas[survivor].logged(LEADING);
            let killed_at = sim.elapsed_us() / 1000;
            replicas.remove(leader).kill();
            let survivor_now = &replicas[0];
            survivor_now
                .wait_logged(LEADING, terms, ttl + ttl + Duration::from_secs(5))
                .await?;
            route_ncs(&sim, &[survivor_now], layout);
            let first = rig::wait_for(
                "the new leader's first request",
                ttl + Duration::from_secs(10),
                Duration::from_millis(5),
                || {
                    sim.requests().iter().any(|q| {
                        q.at_ms >= killed_at
                            && q.user_agent.as_deref().is_some_and(|a| a.ends_with(&agent))
                    })
                },
            )
            .await;
            if first.is_ok() {
                let at = sim
                    .requests()
                    .iter()
                    .filter(|q| {
                        q.at_ms >= killed_at
                            && q.user_agent.as_deref().is_some_and(|a| a.ends_with(&agent))
                    })
                    .map(|q| q.at_ms)
                    .min()
                    .unwrap_or(killed_at);
                took.push(Duration::from_millis(at - killed_at));
            }
            let back = Replica::start(["a", "b"][leader], &dirs[leader]).await?;
            if leader == 0 {
                replicas.insert(0, back);
            } else {
                replicas.push(back);
            }
            leader = survivor;
        }
        let what = if storm {
            "kill during a storm -> new leader's first call"
        } else {
            "kill in steady state -> new leader's first call"
        };
        r.push(
            Figure::new(format!("{what}: kills"), took.len() as f64, "")
                .limit(Limit::AtLeast(kills as f64)),
        );
        r.distribution(
            what,
            &took,
            Some(Limit::AtMost(
                (ttl + Duration::from_secs(5)).as_secs_f64() * 1000.0,
            )),
        );
    }
    rig::wait_for(
        "every slot running again",
        Duration::from_secs(120),
        Duration::from_millis(100),
        || duplicates(&sim, layout) == 0,
    )
    .await
    .ok();
    r.push(
        Figure::new(
            "duplicate live players per slot",
            duplicates(&sim, layout) as f64,
            "",
        )
        .limit(Limit::AtMost(0.0)),
    );
    let rejected = sim
        .requests()
        .iter()
        .filter(|q| q.status == Some(429))
        .count();
    r.push(Figure::new("API answers 429", rejected as f64, "").limit(Limit::AtMost(0.0)));
    drop(replicas);
    Ok(r)
}
