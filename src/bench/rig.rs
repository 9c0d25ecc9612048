//! Set-up shared by the scenarios: projects and scenes on disk, the simulator (in this
//! process or a child), the app, and what the kernel says about this process.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::net::TcpListener;
use tokio::time::Instant;

use crate::app::App;
use crate::config::{self, Config};
use crate::model::SlotStatus;
use crate::simulator::{SimConfig, SimHandle, SimProject, Simulator};
use crate::store::Store;
use crate::telemetry::process;

pub const CUSTOMER_ID: &str = "bench-customer";
pub const CUSTOMER_SECRET: &str = "bench-secret";
pub const NCS_SECRET: &str = "bench-ncs-secret";
pub const HOOK_SECRET: &str = "bench-hook-secret";
/// The admin API's token, for the scenarios that read `/v1/scenes` of child processes.
pub const ADMIN_TOKEN: &str = "bench-admin-token";

/// The `{ env: NAME }` values the generated settings refer to.
pub fn env() -> HashMap<String, String> {
    HashMap::from([
        ("BENCH_CUSTOMER_ID".into(), CUSTOMER_ID.into()),
        ("BENCH_CUSTOMER_SECRET".into(), CUSTOMER_SECRET.into()),
        ("BENCH_NCS_SECRET".into(), NCS_SECRET.into()),
        ("BENCH_HOOK_SECRET".into(), HOOK_SECRET.into()),
        ("BENCH_ADMIN_TOKEN".into(), ADMIN_TOKEN.into()),
    ])
}

/// `projects` projects of `scenes` scenes each, every scene a master and one backup.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub projects: usize,
    pub scenes: usize,
}

impl Layout {
    pub fn players(&self) -> usize {
        self.projects * self.scenes * 2
    }

    pub fn project_id(p: usize) -> String {
        format!("p{p}")
    }

    pub fn app_id(p: usize) -> String {
        format!("benchapp{p:08}")
    }

    pub fn scene(p: usize, s: usize) -> String {
        format!("p{p}-s{s}")
    }

    /// Every `(project, scene)` pair, scene-major: consecutive entries are in different
    /// projects, so walking it spreads load over the projects' own rate limits.
    pub fn scenes_spread(&self) -> Vec<(usize, usize)> {
        (0..self.scenes)
            .flat_map(|s| (0..self.projects).map(move |p| (p, s)))
            .collect()
    }

    /// The simulator's projects; `ncs` gives each one's notice URL, if any.
    pub fn sim_projects(&self, ncs: impl Fn(usize) -> Option<String>) -> Vec<SimProject> {
        (0..self.projects)
            .map(|p| SimProject {
                app_id: Layout::app_id(p),
                ncs_secret: NCS_SECRET.into(),
                ncs_url: ncs(p),
            })
            .collect()
    }
}

/// YAML that goes into the settings file besides the projects and scenes.
pub struct SettingsYaml<'a> {
    /// Body of the `reconcile:` mapping.
    pub reconcile: &'a str,
    /// Body of each project's `limits:` mapping.
    pub limits: &'a str,
    /// Top-level settings appended as written (e.g. `app_webhook`).
    pub extra: &'a str,
    /// What every scene adds to its mapping (e.g. `failback: non-revertive`).
    pub scene_extra: &'a str,
}

/// Writes `pullkeeper.yaml` and `scenes.yaml` under `dir` for `layout` against the API
/// at `api`, and loads them through the real loader.
pub fn write_config(
    dir: &Path,
    layout: Layout,
    api: &str,
    settings: &SettingsYaml<'_>,
) -> anyhow::Result<Config> {
    // The scenes' origins do not exist, so a probe could only say `unknown`: probing is
    // off, and the figures measure pullkeeper's own paths, as before it was on by default.
    let mut text = format!(
        "server: {{ listen: \"127.0.0.1:0\" }}\nstore: {{ path: store }}\n\
         reconcile: {{ {} }}\nscenes_file: scenes.yaml\nsource_probe: {{ enabled: false }}\n{}\n\
         projects:\n",
        settings.reconcile, settings.extra
    );
    let mut scenes = String::from("scenes:\n");
    for p in 0..layout.projects {
        let _ = write!(
            text,
            "  - id: {}\n    app_id: {}\n    customer_id: {{ env: BENCH_CUSTOMER_ID }}\n    \
             customer_secret: {{ env: BENCH_CUSTOMER_SECRET }}\n    ncs_secret: {{ env: BENCH_NCS_SECRET }}\n    \
             api: {{ base_url: \"{api}\", timeout: 10s }}\n    limits: {{ {} }}\n",
            Layout::project_id(p),
            Layout::app_id(p),
            settings.limits,
        );
        for s in 0..layout.scenes {
            let name = Layout::scene(p, s);
            let _ = writeln!(
                scenes,
                "  - {{ name: {name}, project: {}, channel: {name}-live, \
                 stream_url: rtmp://origin.example.com/live/{name}, region: na, backups: 1, \
                 uids: {{ start: 1000, end: 1999 }}, {} }}",
                Layout::project_id(p),
                settings.scene_extra
            );
        }
    }
    std::fs::write(dir.join("pullkeeper.yaml"), text)?;
    std::fs::write(dir.join("scenes.yaml"), scenes)?;
    config::load_with_env(&dir.join("pullkeeper.yaml"), &env())
        .map_err(|e| anyhow::anyhow!("generated config does not load: {e}"))
}

/// A fresh directory for one scenario's files; removed by [`TempDir`]'s drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> anyhow::Result<TempDir> {
        let dir = std::env::temp_dir().join(format!("pk-bench-{tag}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir)?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An in-process simulator with Agora's documented limits (`SimConfig::default()`),
/// changed only by `tune`.
pub async fn simulator(
    layout: Layout,
    tune: impl FnOnce(&mut SimConfig),
) -> anyhow::Result<SimHandle> {
    let mut sim = SimConfig {
        projects: layout.sim_projects(|_| None),
        credentials: vec![(CUSTOMER_ID.into(), CUSTOMER_SECRET.into())],
        ..SimConfig::default()
    };
    tune(&mut sim);
    Ok(Simulator::start(sim, TcpListener::bind("127.0.0.1:0").await?).await?)
}

/// Starts the app on a store under `dir` (durable flushes, as in production).
pub async fn start_app(config: Config, store_path: &Path) -> anyhow::Result<(App, Store)> {
    let store = Store::open(store_path).context("cannot open the bench store")?;
    let app = start_app_on(
        config,
        store.clone(),
        TcpListener::bind("127.0.0.1:0").await?,
    )
    .await?;
    Ok((app, store))
}

/// Where a scenario keeps pullkeeper's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchStore {
    /// The embedded store on disk (durable flushes, as in production).
    Sled,
    /// A local etcd member (Debian's etcd-server; no fsync, so etcd's disk is not
    /// what is measured), this process leading every project.
    Etcd,
}

/// What keeps a started app's store alive (and its etcd server running).
pub struct Running {
    _store: Store,
    _etcd: Option<crate::store::LocalEtcd>,
}

/// Starts the app on `backend` under `dir`, and waits until it leads every project.
pub async fn start_app_in(
    config: Config,
    dir: &Path,
    backend: BenchStore,
) -> anyhow::Result<(App, Running)> {
    if backend == BenchStore::Sled {
        let (app, store) = start_app(config, &dir.join("store")).await?;
        return Ok((
            app,
            Running {
                _store: store,
                _etcd: None,
            },
        ));
    }
    let etcd = crate::store::LocalEtcd::start()
        .context("cannot start etcd (Debian package etcd-server)")?;
    let projects: Vec<String> = config
        .settings
        .projects
        .iter()
        .map(|p| p.id.clone())
        .collect();
    let options = crate::store::EtcdOptions {
        endpoints: vec![etcd.endpoint()],
        prefix: "/pk-bench/".into(),
        ttl: config.settings.leader.ttl,
        credentials: None,
        ca_file: None,
        installation: "bench".into(),
        replica: "bench".into(),
        projects: projects.clone(),
    };
    let store = Store::etcd(&options)?;
    let app = start_app_on(
        config,
        store.clone(),
        TcpListener::bind("127.0.0.1:0").await?,
    )
    .await?;
    let leadership = store.leadership().clone();
    wait_for(
        "every project led",
        Duration::from_secs(30),
        Duration::from_millis(20),
        || projects.iter().all(|p| leadership.acting(p)),
    )
    .await?;
    Ok((
        app,
        Running {
            _store: store,
            _etcd: Some(etcd),
        },
    ))
}

pub async fn start_app_on(
    config: Config,
    store: Store,
    listener: TcpListener,
) -> anyhow::Result<App> {
    Ok(App::start(config, store, listener).await?)
}

/// Sends every project's notices to `app`'s webhook.
pub fn connect_ncs(sim: &SimHandle, app: &App, layout: Layout) {
    let projects: Vec<(String, String)> = (0..layout.projects)
        .map(|p| (Layout::project_id(p), Layout::app_id(p)))
        .collect();
    crate::embedded::deliver_notices_to(sim, "http", app.addr(), &projects);
}

/// Polls `cond` every `every` until it holds; fails after `limit`. Returns the time taken.
pub async fn wait_for(
    what: &str,
    limit: Duration,
    every: Duration,
    mut cond: impl FnMut() -> bool,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() > limit {
            bail!("gave up after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(every).await;
    }
    Ok(start.elapsed())
}

/// Master and backup players of `app` that run (Agora status `running` or `success`),
/// as its status board (and so `pullkeeper_players`) shows them.
pub fn running_players(app: &App) -> i64 {
    let mut n = 0;
    app.board.for_each(|scene| {
        n += scene.slots.iter().filter(|s| counted_running(s)).count() as i64;
    });
    n
}

fn counted_running(slot: &SlotStatus) -> bool {
    slot.role != "slate" && matches!(slot.status, "running" | "success")
}

/// What a run that did not converge left behind, so that a stall names itself: the
/// scenes and players the status board lacks or shows not running (by status, and a
/// few of them), the creates sent, and whether the store still completes a flush (every
/// create waits for one, and a flush has no deadline of its own).
pub async fn stall_report(app: &App, store: &Store, layout: Layout) -> String {
    let mut scenes = 0;
    let mut by_status: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut projects = BTreeSet::new();
    let mut examples = Vec::new();
    app.board.for_each(|scene| {
        scenes += 1;
        for slot in scene.slots.iter().filter(|s| s.role != "slate") {
            if counted_running(slot) {
                continue;
            }
            *by_status.entry(slot.status).or_default() += 1;
            projects.insert(scene.project.clone());
            if examples.len() < 5 {
                examples.push(format!(
                    "{} slot {} ({}): status {}, name {:?}, id {:?}, rejected {:?}",
                    scene.name,
                    slot.slot,
                    slot.role,
                    slot.status,
                    slot.name,
                    slot.id,
                    slot.rejected
                ));
            }
        }
    });
    let flush = match tokio::time::timeout(Duration::from_secs(10), store.flush()).await {
        Ok(Ok(())) => "the store completes a flush".to_string(),
        Ok(Err(e)) => format!("a store flush fails: {e}"),
        Err(_) => "a store flush did not return within 10 s".to_string(),
    };
    format!(
        "not converged: {} of {} scenes on the status board, {} of {} players running; \
         not running by status {by_status:?} in {} project(s), e.g. [{}]; {} creates sent; {flush}",
        scenes,
        layout.projects * layout.scenes,
        running_players(app),
        layout.players(),
        projects.len(),
        examples.join("; "),
        creates_sent(app),
    )
}

/// Create requests this app sent (whatever the answer), from its metrics.
pub fn creates_sent(app: &App) -> u64 {
    let classes = [
        "2xx", "4xx", "404", "409", "429", "5xx", "network", "dns", "decode",
    ];
    classes
        .iter()
        .map(|class| {
            app.metrics
                .api_requests
                .with_label_values(&["create", class])
                .get()
        })
        .sum()
}

/// The `pullkeeper simulate` subcommand of this very binary, in a child process, so the
/// scale scenario measures pullkeeper's CPU and memory alone.
pub struct ChildSimulator {
    child: std::process::Child,
    pub url: String,
    http: reqwest::Client,
}

impl ChildSimulator {
    pub async fn start(config_yaml: &str, dir: &Path) -> anyhow::Result<ChildSimulator> {
        let path = dir.join("simulator.yaml");
        std::fs::write(&path, config_yaml)?;
        // Bound and released at once: the child binds it a moment later.
        let addr: SocketAddr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let exe = std::env::current_exe()?;
        let child = std::process::Command::new(exe)
            .arg("simulate")
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--config")
            .arg(&path)
            .env("RUST_LOG", "error")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .context("cannot start the simulator process")?;
        crate::crypto::install_provider();
        let sim = ChildSimulator {
            child,
            url: format!("http://{addr}"),
            http: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            if Instant::now() > deadline {
                bail!("the simulator process did not listen on {addr}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(sim)
    }

    /// How many players the simulator ever created (its `/_sim/history`).
    pub async fn created_ever(&self) -> anyhow::Result<usize> {
        let history: Vec<serde_json::Value> = self
            .http
            .get(format!("{}/_sim/history", self.url))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(history.len())
    }
}

impl Drop for ChildSimulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU seconds (user + system) this process used so far.
pub fn cpu_seconds() -> anyhow::Result<f64> {
    Ok(process::cpu_seconds()?)
}

/// A `/proc/self/status` value in MiB (`VmHWM` = peak RSS, `VmRSS` = RSS now).
pub fn status_mib(field: &str) -> anyhow::Result<f64> {
    Ok(process::status_bytes(field)? as f64 / (1024.0 * 1024.0))
}

/// `nproc`, CPU model and RAM, as BENCHMARKS.md records them.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let ram = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or("unknown".into(), |kib| {
            format!("{:.1} GiB", kib / 1024.0 / 1024.0)
        });
    format!("{cores} cores ({cpu}), {ram} RAM")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_figures_are_read() {
        assert!(cpu_seconds().unwrap() >= 0.0);
        assert!(status_mib("VmHWM").unwrap() > 0.0);
        assert!(status_mib("VmRSS").unwrap() <= status_mib("VmHWM").unwrap() + 1.0);
        assert!(machine().contains("cores"));
    }

    #[test]
    fn generated_config_loads_with_every_scene() {
        let dir = TempDir::new("rig").unwrap();
        let layout = Layout {
            projects: 3,
            scenes: 4,
        };
        let settings = SettingsYaml {
            reconcile: "poll_interval: 5s",
            limits: "max_players: 50",
            extra: "",
            scene_extra: "failback: non-revertive",
        };
        let config = write_config(&dir.0, layout, "http://127.0.0.1:9", &settings).unwrap();
        assert_eq!(config.settings.projects.len(), 3);
        assert_eq!(config.scenes.len(), 12);
        assert_eq!(layout.scenes_spread()[..3], [(0, 0), (1, 0), (2, 0)]);
    }
}
