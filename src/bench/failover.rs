//! Failover latency: from a `failed` notice to (a) the on-air switch reaching the apps,
//! (b) the replacement's Create reaching Agora, (c) the replacement running; and the
//! worst case with polling alone (NCS off) against the poll interval.
//!
//! Every time is on the simulator's clock (µs since its start, same process): `t0` is
//! taken just before the simulator fails the player and sends the notice, so the figures
//! include the notice's trip over loopback and are upper bounds of "from receipt". The
//! production histogram `pullkeeper_failover_decision_seconds` gives the part from
//! receipt to publication.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use tokio::net::TcpListener;

use super::report::{Figure, Limit, ScenarioReport};
use super::rig::{self, BenchStore, Layout, SettingsYaml, TempDir};
use crate::app::App;
use crate::model::format_name;
use crate::simulator::SimHandle;

/// On-air announcements as the apps receive them: `(scene, version)` → arrival µs.
#[derive(Clone)]
pub(super) struct HookLog {
    sim: SimHandle,
    seen: Arc<Mutex<HashMap<(String, u64), u64>>>,
}

impl HookLog {
    /// Serves the app webhook receiver; returns it and its URL.
    pub(super) async fn start(sim: SimHandle) -> anyhow::Result<(HookLog, String)> {
        let log = HookLog {
            sim,
            seen: Arc::default(),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(log.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok((log, url))
    }

    pub(super) fn arrival(&self, scene: &str, version: u64) -> Option<u64> {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.get(&(scene.to_string(), version)).copied()
    }
}

async fn receive(State(log): State<HookLog>, body: Bytes) -> StatusCode {
    let at = log.sim.elapsed_us();
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    if let (Some(scene), Some(version)) = (v["scene"].as_str(), v["version"].as_u64()) {
        let mut seen = log.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.entry((scene.to_string(), version)).or_insert(at);
    }
    StatusCode::OK
}

/// One failover under way.
struct Pending {
    scene: String,
    slot: u32,
    replacement: String,
    generation: u64,
    version: u64,
    t0: u64,
    running_at: Option<u64>,
}

/// Settings both phases share: a global app webhook to `hook`, non-revertive scenes so
/// each failover moves the air to the other slot, and Agora's default limits.
fn settings<'a>(reconcile: &'a str, extra: &'a str) -> SettingsYaml<'a> {
    SettingsYaml {
        reconcile,
        limits: "max_players: 50",
        extra,
        scene_extra: "failback: non-revertive",
    }
}

pub(super) fn hook_setting(url: &str) -> String {
    format!("app_webhook: {{ url: \"{url}\", secret: {{ env: BENCH_HOOK_SECRET }} }}")
}

async fn converge(app: &App, layout: Layout) -> anyhow::Result<Duration> {
    rig::wait_for(
        "every scene on air with a running backup",
        Duration::from_secs(180),
        Duration::from_millis(100),
        || rig::running_players(app) == layout.players() as i64,
    )
    .await
}

/// Fails the on-air player of `scene`; `None` when the scene has no running player to
/// fail over to (the previous failover of the scene is not complete).
fn fail_on_air(sim: &SimHandle, app: &App, p: usize, scene: &str) -> Option<Pending> {
    let status = app.board.get(scene)?;
    let slot = status.active_slot?;
    let on_air = status.slots.get(slot as usize)?;
    let standby_runs = status
        .slots
        .iter()
        .any(|s| s.slot != slot && s.status == "running");
    if !standby_runs || on_air.status != "running" {
        return None;
    }
    let (id, generation) = (on_air.id.clone()?, on_air.generation?);
    let t0 = sim.elapsed_us();
    sim.fail_player(&Layout::app_id(p), &id);
    Some(Pending {
        scene: scene.to_string(),
        slot,
        replacement: format_name("pk", scene, slot, generation + 1),
        generation: generation + 1,
        version: status.active_version,
        t0,
        running_at: None,
    })
}

/// How long the simulator keeps a new player `connecting`.
const CONNECT_DELAY: Duration = Duration::from_millis(100);

/// The window of Agora's create rate limit (2 per second, docs/agora-api.md §1.10).
const CREATE_WINDOW: Duration = Duration::from_secs(1);

fn us(d: u64) -> Duration {
    Duration::from_micros(d)
}

/// Failovers with NCS on, spread so every project has a create token free.
pub async fn with_ncs(quick: bool, backend: BenchStore) -> anyhow::Result<ScenarioReport> {
    let layout = Layout {
        projects: if quick { 5 } else { 20 },
        scenes: 10,
    };
    let target = if quick { 100 } else { 1000 };
    let dir = TempDir::new("failover")?;
    // A short connect delay, not zero: Agora's `created` and `running` events of a player
    // never share one `lts` millisecond, and the receiver drops an event whose `lts` is
    // not newer than the last one seen for the player.
    let sim = rig::simulator(layout, |c| c.connect_delay = CONNECT_DELAY).await?;
    let (hooks, hook_url) = HookLog::start(sim.clone()).await?;
    let extra = hook_setting(&hook_url);
    let config = rig::write_config(
        &dir.0,
        layout,
        &sim.base_url(),
        &settings("poll_interval: 5s", &extra),
    )?;
    let (app, _store) = rig::start_app_in(config, &dir.0, backend).await?;
    rig::connect_ncs(&sim, &app, layout);
    converge(&app, layout).await?;
    // Every project made its last creates just now, all together: until they leave the
    // create window (per second), a replacement waits for a token, and the target is
    // for "a create token free". Measured without this pause, each project's first
    // replacement waited 0.05–0.93 s for its token: 2 % of the failovers, the whole p99.
    tokio::time::sleep(CREATE_WINDOW).await;

    // One failover per project per second: Agora's create-with-name allows 2/s, so the
    // replacement always finds a token, and a scene comes round every `scenes` seconds,
    // which keeps each slot's replacement back-off (1 s doubling) out of the way.
    let order = layout.scenes_spread();
    let gap = Duration::from_secs(1) / layout.projects as u32;
    let pending: Arc<Mutex<Vec<Pending>>> = Arc::default();
    let watcher = tokio::spawn(watch_running(
        app.board.clone(),
        sim.clone(),
        pending.clone(),
    ));
    let mut tick = tokio::time::interval(gap);
    let (mut started, mut not_ready, mut i) = (0, 0, 0);
    while started < target {
        tick.tick().await;
        let (p, s) = order[i % order.len()];
        i += 1;
        match fail_on_air(&sim, &app, p, &Layout::scene(p, s)) {
            Some(f) => {
                pending.lock().unwrap_or_else(|e| e.into_inner()).push(f);
                started += 1;
            }
            None => not_ready += 1,
        }
    }
    let all_running = rig::wait_for(
        "every replacement running",
        Duration::from_secs(60),
        Duration::from_millis(20),
        || {
            let p = pending.lock().unwrap_or_else(|e| e.into_inner());
            p.iter().all(|f| f.running_at.is_some())
        },
    )
    .await;
    watcher.abort();

    let history: HashMap<String, u64> = sim
        .history()
        .into_iter()
        .filter_map(|h| Some((h.name?, h.created_at_us)))
        .collect();
    let pending = std::mem::take(&mut *pending.lock().unwrap_or_else(|e| e.into_inner()));
    let (mut published, mut created, mut running) = (vec![], vec![], vec![]);
    for f in &pending {
        if let Some(at) = hooks.arrival(&f.scene, f.version + 1) {
            published.push(us(at.saturating_sub(f.t0)));
        }
        if let Some(at) = history.get(&f.replacement) {
            created.push(us(at.saturating_sub(f.t0)));
        }
        if let Some(at) = f.running_at {
            running.push(us(at.saturating_sub(f.t0)));
        }
    }
    let rejected = sim
        .requests()
        .iter()
        .filter(|r| r.status == Some(429))
        .count();

    let mut r = ScenarioReport::new(match backend {
        BenchStore::Sled => "failover latency, NCS on (from the failed notice being sent)",
        BenchStore::Etcd => {
            "failover latency, NCS on, store in etcd (from the failed notice being sent)"
        }
    });
    r.note(format!(
        "{} projects x {} scenes (master + 1 backup, non-revertive), one failover per project per second, \
         starting {CREATE_WINDOW:?} after the convergence's last creates; simulator at Agora's limits (create 2/s), connect delay {CONNECT_DELAY:?}, loopback",
        layout.projects, layout.scenes
    ));
    if let Err(e) = all_running {
        r.note(format!("not every replacement ran: {e}"));
    }
    r.push(Figure::new("failovers", pending.len() as f64, "").limit(Limit::AtLeast(target as f64)));
    r.push(Figure::new(
        "failovers skipped: scene not ready again",
        not_ready as f64,
        "",
    ));
    r.push(
        Figure::new("(a) switches announced", published.len() as f64, "")
            .limit(Limit::AtLeast(pending.len() as f64)),
    );
    r.distribution(
        "(a) switch published (app webhook)",
        &published,
        Some(Limit::AtMost(50.0)),
    );
    r.distribution(
        "(b) replacement Create at Agora",
        &created,
        Some(Limit::AtMost(100.0)),
    );
    r.distribution("(c) replacement running on /v1/scenes", &running, None);
    r.push(Figure::ms(
        "  (of which the simulator's connect delay)",
        CONNECT_DELAY,
    ));
    let h = &app.metrics.failover_decision;
    let count = h.get_sample_count();
    if count > 0 {
        r.push(Figure::new(
            "notice received -> switch published, mean (metric)",
            h.get_sample_sum() / count as f64 * 1000.0,
            "ms",
        ));
    }
    r.push(Figure::new("API answers 429", rejected as f64, "").limit(Limit::AtMost(0.0)));
    app.shutdown().await;
    Ok(r)
}

/// Polls the status board every millisecond for replacements that run.
async fn watch_running(
    board: crate::model::StatusBoard,
    sim: SimHandle,
    pending: Arc<Mutex<Vec<Pending>>>,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    loop {
        tick.tick().await;
        let now = sim.elapsed_us();
        let mut pending = pending.lock().unwrap_or_else(|e| e.into_inner());
        for f in pending.iter_mut().filter(|f| f.running_at.is_none()) {
            let runs = board.get(&f.scene).is_some_and(|s| {
                s.slots.iter().any(|slot| {
                    slot.slot == f.slot
                        && slot.generation == Some(f.generation)
                        && slot.status == "running"
                })
            });
            if runs {
                f.running_at = Some(now);
            }
        }
    }
}

/// Failures found by List alone: how long after a failure the switch is published,
/// against the poll interval.
pub async fn polling_only(quick: bool) -> anyhow::Result<ScenarioReport> {
    let layout = Layout {
        projects: if quick { 2 } else { 5 },
        scenes: if quick { 5 } else { 10 },
    };
    let poll = Duration::from_secs(5);
    let dir = TempDir::new("polling")?;
    // A short List lag only speeds up the set-up: detection reads `failed` from List.
    let sim = rig::simulator(layout, |c| {
        c.connect_delay = Duration::ZERO;
        c.list_lag = Duration::from_secs(1);
    })
    .await?;
    let (hooks, hook_url) = HookLog::start(sim.clone()).await?;
    let extra = hook_setting(&hook_url);
    let config = rig::write_config(
        &dir.0,
        layout,
        &sim.base_url(),
        &settings("poll_interval: 5s, list_lag: 2s", &extra),
    )?;
    let (app, _store) = rig::start_app(config, &dir.0.join("store")).await?;
    converge(&app, layout).await?;

    // Failures at uniformly random moments over two poll intervals, so every phase
    // relative to the poll is sampled.
    let spread = poll * 2;
    let mut at: Vec<(Duration, usize, usize)> = layout
        .scenes_spread()
        .into_iter()
        .map(|(p, s)| (spread.mul_f64(rand::random_range(0.0..1.0)), p, s))
        .collect();
    at.sort_by_key(|(d, _, _)| *d);
    let start = tokio::time::Instant::now();
    let mut failed = vec![];
    for (d, p, s) in at {
        tokio::time::sleep_until(start + d).await;
        if let Some(f) = fail_on_air(&sim, &app, p, &Layout::scene(p, s)) {
            failed.push(f);
        }
    }
    let published = || {
        failed
            .iter()
            .filter_map(|f| {
                Some(us(hooks
                    .arrival(&f.scene, f.version + 1)?
                    .saturating_sub(f.t0)))
            })
            .collect::<Vec<_>>()
    };
    let _ = rig::wait_for(
        "every switch published",
        poll * 4,
        Duration::from_millis(50),
        || published().len() == failed.len(),
    )
    .await;
    let published = published();
    let mut r = ScenarioReport::new("failover latency, polling only (NCS off)");
    r.note(format!(
        "{} failures at random moments over {spread:?}, poll interval {poll:?}",
        failed.len()
    ));
    r.push(
        Figure::new("switches published", published.len() as f64, "")
            .limit(Limit::AtLeast(failed.len() as f64)),
    );
    r.push(Figure::ms(
        "failure -> switch published, p50",
        super::report::Distribution::of(&published).p50,
    ));
    r.push(
        Figure::ms(
            "failure -> switch published, worst",
            super::report::Distribution::of(&published).max,
        )
        .limit(Limit::Versus(poll.as_secs_f64() * 1000.0)),
    );
    app.shutdown().await;
    Ok(r)
}
