//! Shared end-to-end set-up: a fast simulator, a real config on disk, an app, waiting.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pullkeeper::App;
use pullkeeper::config::{self, Config};
use pullkeeper::simulator::{SimConfig, SimHandle, SimProject, Simulator, Window};
use pullkeeper::store::Store;
use tokio::net::TcpListener;

pub const APP_ID: &str = "e2eapp0123456789";
pub const HOOK_SECRET: &str = "e2e-hook-secret";
pub const ADMIN_TOKEN: &str = "e2e-admin-token";

pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pk-it-{tag}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn env() -> HashMap<String, String> {
    HashMap::from([
        ("E2E_CUSTOMER_ID".to_string(), "e2e-customer".to_string()),
        ("E2E_CUSTOMER_SECRET".to_string(), "e2e-secret".to_string()),
        ("E2E_NCS_SECRET".to_string(), "e2e-ncs".to_string()),
        ("E2E_HOOK_SECRET".to_string(), HOOK_SECRET.to_string()),
        ("E2E_ADMIN_TOKEN".to_string(), ADMIN_TOKEN.to_string()),
    ])
}

/// A simulator with fast clocks and the create rate raised so tests take seconds; the
/// rate limits themselves are tested on their own.
pub async fn start_simulator() -> SimHandle {
    start_simulator_with_lag(Duration::from_millis(300)).await
}

/// [`start_simulator`] whose List hides new players for `list_lag`.
pub async fn start_simulator_with_lag(list_lag: Duration) -> SimHandle {
    start_simulator_with(|sim| sim.list_lag = list_lag).await
}

/// [`start_simulator`] with its configuration adjusted by `adjust`.
pub async fn start_simulator_with(adjust: impl FnOnce(&mut SimConfig)) -> SimHandle {
    let mut sim = SimConfig::default();
    sim.projects.push(SimProject {
        app_id: APP_ID.into(),
        ncs_secret: "e2e-ncs".into(),
        ncs_url: None,
    });
    sim.credentials
        .push(("e2e-customer".into(), "e2e-secret".into()));
    sim.list_lag = Duration::from_millis(300);
    sim.connect_delay = Duration::from_millis(100);
    sim.hls_target_duration = Duration::from_secs(1);
    sim.qps.create_with_name = Window {
        per_second: 50,
        per_minute: None,
    };
    sim.qps.list = Window {
        per_second: 20,
        per_minute: None,
    };
    adjust(&mut sim);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    Simulator::start(sim, listener).await.unwrap()
}

pub const SCENES: &str = r#"
scenes:
  - name: news
    project: e2e
    channel: news-live
    stream_url: rtmp://origin.example.com/live/news
    region: na
    backups: 2
    uids: { start: 1000, end: 1099 }
  - name: sports
    project: e2e
    channel: sports-live
    stream_url: https://origin.example.com/sports/index.m3u8
    region: eu
    backups: 2
    priority: 5
    uids: { start: 2000, end: 2099 }
  - name: lobby
    project: e2e
    channel: lobby
    stream_url: rtmp://origin.example.com/live/lobby
    region: ap
    backups: 2
    uids: { start: 3000, end: 3099 }
"#;

/// Writes settings pointing at `sim` and the three scenes, and loads them for real.
pub fn write_config(dir: &Path, sim: &SimHandle, scenes: &str) -> Config {
    write_config_with(dir, sim, scenes, "")
}

/// [`write_config`] with more top-level settings appended (e.g. an `app_webhook`).
pub fn write_config_with(dir: &Path, sim: &SimHandle, scenes: &str, extra: &str) -> Config {
    write_config_full(
        dir,
        sim,
        scenes,
        extra,
        "poll_interval: 200ms, list_lag: 1s",
    )
}

/// The full form: `reconcile` is the body of the `reconcile:` mapping (e.g. a 30 s poll
/// to leave failover to NCS, or a `check_interval`).
pub fn write_config_full(
    dir: &Path,
    sim: &SimHandle,
    scenes: &str,
    extra: &str,
    reconcile: &str,
) -> Config {
    let mut settings = format!(
        r#"
server: {{ listen: "127.0.0.1:0", admin_token: {{ env: E2E_ADMIN_TOKEN }} }}
store: {{ path: store }}
reconcile: {{ {reconcile} }}
scenes_file: scenes.yaml
projects:
  - id: e2e
    app_id: {APP_ID}
    customer_id: {{ env: E2E_CUSTOMER_ID }}
    customer_secret: {{ env: E2E_CUSTOMER_SECRET }}
    ncs_secret: {{ env: E2E_NCS_SECRET }}
    api: {{ base_url: "{}", timeout: 5s }}
    limits:
      max_players: 50
      qps:
        create_with_name: {{ per_second: 50 }}
        list: {{ per_second: 20 }}
"#,
        sim.base_url(),
    );
    settings.push_str(extra);
    std::fs::write(dir.join("pullkeeper.yaml"), settings).unwrap();
    std::fs::write(dir.join("scenes.yaml"), scenes).unwrap();
    config::load_with_env(&dir.join("pullkeeper.yaml"), &env()).unwrap()
}

/// Rewrites the settings file [`write_config`] wrote in `dir`, replacing `from` (which
/// must occur) by `to`, and loads it again.
pub fn edit_settings(dir: &Path, from: &str, to: &str) -> Config {
    let path = dir.join("pullkeeper.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{from:?} not in {text}");
    std::fs::write(&path, text.replace(from, to)).unwrap();
    config::load_with_env(&path, &env()).unwrap()
}

pub async fn start_app(config: Config, store: Store) -> App {
    if std::env::var_os("RUST_LOG").is_some() {
        pullkeeper::init_logging(false).expect("RUST_LOG is a valid filter");
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    App::start(config, store, listener).await.unwrap()
}

/// Polls `cond` every 50 ms until it holds or `limit` passes. Waits for a state, never
/// asserts a duration.
pub async fn eventually(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends the simulator's NCS notices to `app`'s webhook for project `e2e`.
pub fn connect_ncs(sim: &SimHandle, app: &App) {
    sim.set_ncs_url(APP_ID, Some(format!("http://{}/ncs/e2e", app.addr())));
}

/// A simulator and a running app whose one scene `news` (master + one backup) is up.
pub struct Running {
    pub sim: SimHandle,
    pub app: App,
    pub dir: PathBuf,
    /// The app's store, to check what it wrote and when.
    pub store: Store,
    /// The etcd server the store is in, when it is: kept running for the test.
    pub _etcd: Option<pullkeeper::store::LocalEtcd>,
}

/// Which store a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded store (a temporary sled database).
    Sled,
    /// A real etcd server started for the test, this process leading the project.
    Etcd,
}

impl Backend {
    /// A fresh store of this kind; with etcd, the server it lives in.
    pub fn store(self, config: &Config) -> (Store, Option<pullkeeper::store::LocalEtcd>) {
        match self {
            Backend::Sled => (Store::temporary().unwrap(), None),
            Backend::Etcd => {
                let etcd = pullkeeper::store::LocalEtcd::start().expect("etcd starts");
                let options = pullkeeper::store::EtcdOptions {
                    endpoints: vec![etcd.endpoint()],
                    prefix: "/pk-test/".into(),
                    ttl: Duration::from_secs(3),
                    credentials: None,
                    ca_file: None,
                    installation: "test".into(),
                    replica: "test".into(),
                    projects: config
                        .settings
                        .projects
                        .iter()
                        .map(|p| p.id.clone())
                        .collect(),
                };
                (Store::etcd(&options).unwrap(), Some(etcd))
            }
        }
    }
}

/// Starts the app on `store` and waits until it leads every project (at once for the
/// embedded store).
pub async fn start_app_leading(config: Config, store: Store) -> App {
    let projects: Vec<String> = config
        .settings
        .projects
        .iter()
        .map(|p| p.id.clone())
        .collect();
    let app = start_app(config, store.clone()).await;
    let leadership = store.leadership().clone();
    eventually(Duration::from_secs(15), "every project led", || {
        projects.iter().all(|p| leadership.acting(p))
    })
    .await;
    app
}

impl Running {
    /// Starts everything with `scenes`, `extra` settings and the `reconcile:` body, and
    /// waits until both players of `news` run.
    pub async fn start(tag: &str, scenes: &str, extra: &str, reconcile: &str) -> Running {
        Running::start_on(Backend::Sled, tag, scenes, extra, reconcile).await
    }

    /// [`Running::start`] on `backend`.
    pub async fn start_on(
        backend: Backend,
        tag: &str,
        scenes: &str,
        extra: &str,
        reconcile: &str,
    ) -> Running {
        let dir = temp_dir(tag);
        let sim = start_simulator().await;
        let config = write_config_full(&dir, &sim, scenes, extra, reconcile);
        Running::with_store(backend, sim, dir, config).await
    }

    /// Starts an app with `config` on a fresh store, its NCS notices delivered by `sim`.
    pub async fn launch(sim: SimHandle, dir: PathBuf, config: Config) -> Running {
        Running::launch_on(Backend::Sled, sim, dir, config).await
    }

    /// [`Running::launch`] on `backend`.
    pub async fn launch_on(
        backend: Backend,
        sim: SimHandle,
        dir: PathBuf,
        config: Config,
    ) -> Running {
        let r = Running::with_store(backend, sim, dir, config).await;
        connect_ncs(&r.sim, &r.app);
        r
    }

    async fn with_store(backend: Backend, sim: SimHandle, dir: PathBuf, config: Config) -> Running {
        let (store, etcd) = backend.store(&config);
        let app = start_app_leading(config, store.clone()).await;
        Running {
            sim,
            app,
            dir,
            store,
            _etcd: etcd,
        }
    }

    pub async fn until_both_running(self) -> Running {
        eventually(Duration::from_secs(20), "both running", || {
            self.app
                .board
                .get("news")
                .is_some_and(|s| s.healthy_players == 2)
        })
        .await;
        self
    }
}

/// The `reconcile:` body of most end-to-end tests: fast polls, a 1 s List lag.
pub const FAST: &str = "poll_interval: 200ms, list_lag: 1s";

/// One scene `news` (a master and one backup, 1 s hold-down) with the given failback.
pub fn one_scene(failback: &str) -> String {
    format!(
        r#"
scenes:
  - name: news
    project: e2e
    channel: news-live
    stream_url: rtmp://origin.example.com/live/news
    region: na
    backups: 1
    failback: {failback}
    hold_down: 1s
    uids: {{ start: 1000, end: 1099 }}
"#
    )
}

/// A Kubernetes ConfigMap volume holding `scenes.yaml`, laid out as the kubelet's atomic
/// writer does: `scenes.yaml` → `..data/scenes.yaml` and `..data` → `..{timestamp}/`. An
/// update writes a new timestamped directory, points `..data_tmp` at it, renames that
/// over `..data` (the one atomic step) and removes the old directory.
pub struct ConfigMap {
    dir: PathBuf,
    current: PathBuf,
    version: u32,
}

impl ConfigMap {
    /// Replaces `dir/scenes.yaml` (as [`write_config`] leaves it) with the mounted layout.
    pub fn mount(dir: &Path, scenes: &str) -> ConfigMap {
        let mut map = ConfigMap {
            dir: dir.to_path_buf(),
            current: PathBuf::new(),
            version: 0,
        };
        map.current = map.write(scenes);
        std::os::unix::fs::symlink(map.current.file_name().unwrap(), dir.join("..data")).unwrap();
        std::fs::remove_file(dir.join("scenes.yaml")).unwrap();
        std::os::unix::fs::symlink("..data/scenes.yaml", dir.join("scenes.yaml")).unwrap();
        map
    }

    /// Publishes new content the way the kubelet does.
    pub fn update(&mut self, scenes: &str) {
        let next = self.write(scenes);
        let tmp = self.dir.join("..data_tmp");
        std::os::unix::fs::symlink(next.file_name().unwrap(), &tmp).unwrap();
        std::fs::rename(&tmp, self.dir.join("..data")).unwrap();
        std::fs::remove_dir_all(&self.current).unwrap();
        self.current = next;
    }

    fn write(&mut self, scenes: &str) -> PathBuf {
        self.version += 1;
        let stamped = self.dir.join(format!(
            "..2026_11_23_10_40_{:02}.{}",
            self.version,
            81_000 + self.version
        ));
        std::fs::create_dir(&stamped).unwrap();
        std::fs::write(stamped.join("scenes.yaml"), scenes).unwrap();
        stamped
    }
}

/// GETs an admin (`/v1/`) URL with the test token and decodes its JSON answer.
pub async fn admin_json(url: impl reqwest::IntoUrl) -> serde_json::Value {
    reqwest::Client::new()
        .get(url)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
