//! Storm recovery: every player of one project fails at once, with the simulator at
//! Agora's documented limits (create with name 2/s, 50 players). The physical bound is
//! the create rate: 50 replacements / 2 per second = 25 s.

use std::time::Duration;

use super::report::{Figure, Limit, ScenarioReport};
use super::rig::{self, Layout, SettingsYaml, TempDir};
use crate::agora::wire::CreatePlayer;
use crate::model::format_name;

/// Agora's create-with-name rate (docs/agora-api.md §1.10).
const CREATES_PER_SECOND: f64 = 2.0;

pub async fn run(quick: bool) -> anyhow::Result<ScenarioReport> {
    let layout = Layout {
        projects: 1,
        scenes: if quick { 5 } else { 25 },
    };
    let players = layout.players();
    let dir = TempDir::new("storm")?;
    let sim = rig::simulator(layout, |_| {}).await?;
    let app_id = Layout::app_id(0);
    // Set-up without waiting 25 s for the creates: the players already run at Agora
    // under pullkeeper's names (as after a restart on an empty store), and simulator
    // time skips the List lag, so the first List adopts them all.
    for s in 0..layout.scenes {
        let scene = Layout::scene(0, s);
        for slot in 0..2u32 {
            sim.add_foreign_player(
                &app_id,
                CreatePlayer {
                    stream_url: format!("rtmp://origin.example.com/live/{scene}"),
                    channel_name: format!("{scene}-live"),
                    uid: Some(u64::from(1000 + slot)),
                    account: None,
                    token: None,
                    idle_timeout: Some(300),
                    play_ts: None,
                    name: Some(format_name("pk", &scene, slot, 1)),
                },
            );
        }
    }
    sim.advance(Duration::from_secs(11));
    let config = rig::write_config(
        &dir.0,
        layout,
        &sim.base_url(),
        &SettingsYaml {
            reconcile: "poll_interval: 5s",
            limits: "max_players: 50",
            extra: "",
            scene_extra: "failback: non-revertive",
        },
    )?;
    let (app, _store) = rig::start_app(config, &dir.0.join("store")).await?;
    rig::connect_ncs(&sim, &app, layout);
    rig::wait_for(
        "every player adopted and running",
        Duration::from_secs(60),
        Duration::from_millis(50),
        || rig::running_players(&app) == players as i64,
    )
    .await?;
    let before = sim.requests().len();

    let t0 = sim.elapsed_us();
    for p in sim.players(&app_id) {
        sim.fail_player(&app_id, &p.id);
    }
    let replaced = || {
        sim.history()
            .into_iter()
            .filter(|h| h.name.as_deref().is_some_and(|n| n.ends_with("_2")))
            .collect::<Vec<_>>()
    };
    let bound = players as f64 / CREATES_PER_SECOND;
    let waited = rig::wait_for(
        "every replacement running",
        Duration::from_secs_f64(bound * 3.0),
        Duration::from_millis(10),
        || replaced().len() == players && rig::running_players(&app) == players as i64,
    )
    .await;
    let all_running_s = (sim.elapsed_us() - t0) as f64 / 1e6;
    let mut created = replaced();
    created.sort_by_key(|h| h.created_at_us);
    let last_created_s = created
        .last()
        .map_or(f64::NAN, |h| (h.created_at_us - t0) as f64 / 1e6);
    let is_master = |n: &Option<String>| n.as_deref().is_some_and(|n| n.contains("_m_"));
    let last_master = created.iter().rposition(|h| is_master(&h.name));
    let backups_before_last_master = last_master.map_or(0, |i| {
        created[..i].iter().filter(|h| !is_master(&h.name)).count()
    });
    let storm_requests = sim.requests().split_off(before);
    let rejected = storm_requests
        .iter()
        .filter(|r| r.status == Some(429))
        .count();

    let mut r = ScenarioReport::new("storm recovery at Agora's limits");
    r.note(format!(
        "{players} players of one project fail at once ({} masters, {} backups); NCS on; \
         simulator defaults: create 2/s, List lag 10 s, connect 1 s",
        layout.scenes, layout.scenes
    ));
    if let Err(e) = waited {
        r.note(format!("not recovered: {e}"));
    }
    r.push(
        Figure::new("replacements created", created.len() as f64, "")
            .limit(Limit::AtLeast(players as f64)),
    );
    r.push(
        Figure::new(
            "failure -> last replacement created at Agora",
            last_created_s,
            "s",
        )
        .limit(Limit::AtMost(bound * 1.05)),
    );
    r.push(Figure::new("  (bound: players / create rate)", bound, "s"));
    r.push(
        Figure::new("failure -> all replacements running", all_running_s, "s")
            .limit(Limit::Versus(bound + 1.0)),
    );
    r.push(Figure::new("API answers 429", rejected as f64, "").limit(Limit::AtMost(0.0)));
    r.push(
        Figure::new(
            "backup replacements created before the last master's",
            backups_before_last_master as f64,
            "",
        )
        .limit(Limit::AtMost(0.0)),
    );
    app.shutdown().await;
    Ok(r)
}
