//! Scale and restart: 1,000 projects x 50 players in one process against the simulator
//! (in a child process, so the figures are pullkeeper's alone): convergence from empty,
//! steady CPU and memory at 5 s polling, reconcile pass duration; then restarts on the
//! same store and on an empty one, which must issue no Create.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::task::AbortOnDropHandle;

use super::report::{Figure, Limit, ScenarioReport};
use super::rig::{
    self, CUSTOMER_ID, CUSTOMER_SECRET, ChildSimulator, Layout, NCS_SECRET, SettingsYaml, TempDir,
};
use crate::app::App;
use crate::config::Config;
use crate::store::Store;

/// Agora's create-with-name rate per project (docs/agora-api.md §1.10), which bounds
/// convergence.
const CREATES_PER_SECOND: f64 = 2.0;
/// What the simulator takes to turn a new player `running` (its default).
const CONNECT_DELAY_S: f64 = 1.0;
/// How long the simulator's List hides a new player (its default, like Agora's, §1.6).
const LIST_LAG: Duration = Duration::from_secs(10);

fn sim_yaml(layout: Layout, pk: std::net::SocketAddr) -> String {
    let mut y = format!("credentials:\n  - [{CUSTOMER_ID}, {CUSTOMER_SECRET}]\nprojects:\n");
    for p in 0..layout.projects {
        let _ = writeln!(
            y,
            "  - {{ app_id: {}, ncs_secret: {NCS_SECRET}, ncs_url: \"http://{pk}/ncs/{}\" }}",
            Layout::app_id(p),
            Layout::project_id(p)
        );
    }
    y
}

/// How often the shipped ServiceMonitor has Prometheus scrape (deploy/kubernetes).
const SCRAPE_EVERY: Duration = Duration::from_secs(15);

/// Scrapes `/metrics` at `addr` every [`SCRAPE_EVERY`] until dropped, as a deployment is
/// scraped: what a scrape holds while it is built counts in a deployment's peak. The
/// body is read and dropped chunk by chunk, so the scraper's own memory stays out of
/// the figures; a failed scrape (the app not listening yet) is tried again next time.
fn scrape_like_prometheus(addr: std::net::SocketAddr) -> AbortOnDropHandle<()> {
    AbortOnDropHandle::new(tokio::spawn(async move {
        crate::crypto::install_provider();
        let Ok(client) = reqwest::Client::builder().build() else {
            return;
        };
        let mut tick = tokio::time::interval(SCRAPE_EVERY);
        loop {
            tick.tick().await;
            if let Ok(mut answer) = client.get(format!("http://{addr}/metrics")).send().await {
                while let Ok(Some(_)) = answer.chunk().await {}
            }
        }
    }))
}

/// Starts the app on `addr` (the simulator's notices go there) and waits until every
/// player runs; returns it with the time that took.
async fn start_and_converge(
    config: Config,
    store_path: &Path,
    addr: std::net::SocketAddr,
    layout: Layout,
    limit: Duration,
) -> anyhow::Result<(App, Duration)> {
    let (start, cpu0) = (Instant::now(), rig::cpu_seconds()?);
    let store = open_store(store_path).await?;
    let app = rig::start_app_on(config, store.clone(), TcpListener::bind(addr).await?).await?;
    let converged = rig::wait_for(
        "every player running",
        limit,
        Duration::from_millis(100),
        || rig::running_players(&app) == layout.players() as i64,
    )
    .await;
    if let Err(e) = converged {
        // A process starved of CPU (a loaded machine) converges slower than the limit
        // allows: its share of a core tells that apart from a stall.
        let share = (rig::cpu_seconds()? - cpu0) / start.elapsed().as_secs_f64();
        let report = rig::stall_report(&app, &store, layout).await;
        return Err(e.context(format!(
            "{report}; this process used {:.0} % of a core meanwhile",
            share * 100.0
        )));
    }
    Ok((app, start.elapsed()))
}

/// Opens the store, waiting for the previous process' handle to let go of it.
async fn open_store(path: &Path) -> anyhow::Result<Store> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Store::open(path) {
            Ok(s) => return Ok(s),
            Err(e) if Instant::now() > deadline => return Err(e.into()),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// The reconcile pass histogram as `(count, sum, cumulative bucket counts)`.
fn passes(app: &App) -> (u64, f64, Vec<(f64, u64)>) {
    use prometheus::core::Collector;
    let h = &app.metrics.reconcile_duration;
    let buckets = h
        .collect()
        .first()
        .and_then(|mf| mf.get_metric().first().cloned())
        .map(|m| {
            m.get_histogram()
                .get_bucket()
                .iter()
                .map(|b| (b.upper_bound(), b.cumulative_count()))
                .collect()
        })
        .unwrap_or_default();
    (h.get_sample_count(), h.get_sample_sum(), buckets)
}

pub async fn run(quick: bool, projects: usize) -> anyhow::Result<Vec<ScenarioReport>> {
    let layout = Layout {
        projects: if quick { projects.min(20) } else { projects },
        scenes: 25,
    };
    let steady_window = Duration::from_secs(if quick { 10 } else { 30 });
    let poll = Duration::from_secs(5);
    let dir = TempDir::new("scale")?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    drop(listener);
    let sim = ChildSimulator::start(&sim_yaml(layout, addr), &dir.0).await?;
    let settings = SettingsYaml {
        reconcile: "poll_interval: 5s",
        limits: "max_players: 50",
        extra: "",
        scene_extra: "failback: non-revertive",
    };
    // Loaded again for each start rather than cloned: a copy kept here for the restarts
    // would be counted in this process's memory figures, and a real process has one.
    let config = rig::write_config(&dir.0, layout, &sim.url, &settings)?;
    let reload = || {
        crate::config::load_with_env(&dir.0.join("pullkeeper.yaml"), &rig::env())
            .map_err(|e| anyhow::anyhow!("generated config does not load: {e}"))
    };
    let bound = 50.0 / CREATES_PER_SECOND;
    let cpu0 = rig::cpu_seconds()?;
    let scraper = scrape_like_prometheus(addr);
    let (app, converged) = start_and_converge(
        config,
        &dir.0.join("store"),
        addr,
        layout,
        Duration::from_secs(600),
    )
    .await?;
    let converge_cpu = rig::cpu_seconds()? - cpu0;

    // Steady state: the last players run (NCS said so) before List shows them; a List
    // lag and a poll later every List repeats the picture. Then a measured window.
    tokio::time::sleep(LIST_LAG + poll).await;
    let (count0, sum0, buckets0) = passes(&app);
    let cpu1 = rig::cpu_seconds()?;
    let wall = Instant::now();
    tokio::time::sleep(steady_window).await;
    let steady_cpu = (rig::cpu_seconds()? - cpu1) / wall.elapsed().as_secs_f64();
    let (count1, sum1, buckets1) = passes(&app);
    let peak_rss = rig::status_mib("VmHWM")?;
    let rss = rig::status_mib("VmRSS")?;
    drop(scraper);
    let n = count1 - count0;
    let mean_ms = if n > 0 {
        (sum1 - sum0) / n as f64 * 1000.0
    } else {
        0.0
    };
    let p99_bucket_ms = buckets1
        .iter()
        .zip(&buckets0)
        .find(|((_, c1), (_, c0))| (c1 - c0) as f64 >= 0.99 * n as f64)
        .map_or(f64::INFINITY, |((le, _), _)| le * 1000.0);

    let mut scale = ScenarioReport::new("scale: 1 process, simulator in a child process");
    scale.note(format!(
        "{} projects x {} scenes x 2 players = {} players; poll 5 s; NCS on; \
         simulator at Agora's per-project limits (create 2/s, 50 players), List lag {} s, connect 1 s; \
         steady window {} s, from a List lag and a poll after converging; /metrics scraped every {} s \
         throughout, as the shipped ServiceMonitor does",
        layout.projects,
        layout.scenes,
        layout.players(),
        LIST_LAG.as_secs(),
        steady_window.as_secs(),
        SCRAPE_EVERY.as_secs()
    ));
    scale.push(
        Figure::new("converge from empty", converged.as_secs_f64(), "s")
            .limit(Limit::Versus(bound + CONNECT_DELAY_S)),
    );
    scale.push(Figure::new(
        "  (bound: 50 creates per project at 2/s, + 1 s connect)",
        bound + CONNECT_DELAY_S,
        "s",
    ));
    scale.push(Figure::new("CPU used while converging", converge_cpu, "s"));
    scale.push(
        Figure::new("steady CPU (share of one core)", steady_cpu * 100.0, "%")
            .limit(Limit::AtMost(10.0)),
    );
    scale.push(Figure::new("peak RSS (VmHWM)", peak_rss, "MiB").limit(Limit::AtMost(256.0)));
    scale.push(Figure::new("RSS in steady state (VmRSS)", rss, "MiB"));
    scale.push(Figure::new("reconcile passes in the window", n as f64, ""));
    scale.push(Figure::new("reconcile pass, mean", mean_ms, "ms"));
    scale.push(Figure::new(
        "reconcile pass, p99 (histogram bucket bound)",
        p99_bucket_ms,
        "ms",
    ));

    let created_before = sim.created_ever().await?;
    app.shutdown().await;
    let (app, same_store) = start_and_converge(
        reload()?,
        &dir.0.join("store"),
        addr,
        layout,
        Duration::from_secs(300),
    )
    .await?;
    let creates_same = rig::creates_sent(&app);
    app.shutdown().await;
    let (app, empty_store) = start_and_converge(
        reload()?,
        &dir.0.join("empty-store"),
        addr,
        layout,
        Duration::from_secs(300),
    )
    .await?;
    let creates_empty = rig::creates_sent(&app);
    app.shutdown().await;
    let created_after = sim.created_ever().await?;

    let mut restart = ScenarioReport::new("restart with every player live");
    restart.note(format!(
        "{} players running at the simulator; converged = every player running on /metrics",
        layout.players()
    ));
    restart.push(
        Figure::new(
            "same store: start -> converged",
            same_store.as_secs_f64(),
            "s",
        )
        .limit(Limit::Versus(poll.as_secs_f64())),
    );
    restart.push(
        Figure::new("same store: creates issued", creates_same as f64, "")
            .limit(Limit::AtMost(0.0)),
    );
    restart.push(
        Figure::new(
            "empty store: start -> converged",
            empty_store.as_secs_f64(),
            "s",
        )
        .limit(Limit::Versus(poll.as_secs_f64())),
    );
    restart.push(
        Figure::new("empty store: creates issued", creates_empty as f64, "")
            .limit(Limit::AtMost(0.0)),
    );
    restart.push(
        Figure::new(
            "players created at the simulator during both restarts",
            created_after.saturating_sub(created_before) as f64,
            "",
        )
        .limit(Limit::AtMost(0.0)),
    );
    Ok(vec![scale, restart])
}
