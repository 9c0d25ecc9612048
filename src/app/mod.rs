//! Wiring: one client and controller per project, the store, the HTTP server.
//!
//! `App::start` is what `main` runs and what the end-to-end tests run, so the tests
//! exercise the same assembly as production.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::agora::client::{TransportError, Transports};
use crate::clock::Clock;
use crate::config::{Config, Scene};
use crate::http;
use crate::http::probes::{self, Readiness};
use crate::http::serve::{Listening, serve};
use crate::http::tls::{ReloadingCert, TlsError, TlsListener};
use crate::model::{ControlMailbox, Drills, StatusBoard, Switch};
use crate::ncs::allowlist::NcsAddresses;
use crate::ncs::dedupe::NoticeLog;
use crate::ncs::inbox::Inbox;
use crate::ncs::intake::{Intake, NcsProject};
use crate::ncs::ip_refresh::{IpListCollector, IpRefresher};
use crate::probe::Prober;
use crate::reconcile::{Context, Executor, ProjectController, ProjectEvents, SourceProbing};
use crate::reload::{Reloader, Seen};
use crate::scene_feeds::SceneFeeds;
use crate::store::{EventBounds, EventLog, Store};
use crate::telemetry::leadership::LeadershipMetrics;
use crate::telemetry::scenes::SceneCollector;
use crate::telemetry::{LogLevel, Metrics};
use crate::terms;
use routes::Routes;

mod advertise;
mod client;
mod housekeeping;
mod routes;

pub use client::build_client;

/// Longest wait for in-flight calls at shutdown; below Kubernetes' 30 s grace period.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("cannot build the HTTP client for project {project}: {source}")]
    Client {
        project: String,
        source: TransportError,
    },
    #[error("cannot serve HTTP: {0}")]
    Serve(#[from] std::io::Error),
    #[error(transparent)]
    Store(crate::store::StoreError),
    #[error("cannot serve HTTPS: {0}")]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Probe(#[from] crate::probe::ProbeError),
    #[error("cannot build the HTTP client for the other replicas: {0}")]
    Peers(reqwest::Error),
}

/// A running pullkeeper.
pub struct App {
    addr: std::net::SocketAddr,
    metrics_addr: Option<std::net::SocketAddr>,
    /// Stops the work: controllers, API calls not yet sent, reloads, housekeeping.
    cancel: CancellationToken,
    tracker: TaskTracker,
    /// Stops the HTTP servers, last, so `/readyz` answers 503 while the work drains.
    stop_serving: CancellationToken,
    server: TaskTracker,
    /// Keeps this replica's lease (etcd); stopped after the work and its last flush, so
    /// successors find every write and need not wait for the lease to expire.
    leading: tokio::task::JoinHandle<()>,
    stop_leading: CancellationToken,
    leadership: crate::store::Leadership,
    scenes: Arc<SceneFeeds>,
    accepting: Arc<AtomicBool>,
    reload_now: Arc<Notify>,
    store: Store,
    pub board: StatusBoard,
    pub metrics: Metrics,
}

impl App {
    /// Starts controllers and the server on `listener`. Returns once all are running.
    pub async fn start(
        config: Config,
        store: Store,
        listener: TcpListener,
    ) -> Result<App, AppError> {
        App::start_with_log_level(config, store, listener, None).await
    }

    /// [`App::start`] that also serves `/v1/log-level` through `log_level`, the handle on
    /// the process's log filter (there is none where logging was not set up).
    pub async fn start_with_log_level(
        mut config: Config,
        store: Store,
        listener: TcpListener,
        log_level: Option<LogLevel>,
    ) -> Result<App, AppError> {
        let metrics = Metrics::new();
        let board = StatusBoard::default();
        let clock = Clock::new();
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let feeds = Arc::new(SceneFeeds::new(
            std::mem::take(&mut config.scenes),
            config.settings.projects.iter().map(|p| p.id.as_str()),
        ));
        if let Some(recovery) = store.recovery() {
            metrics.store_recoveries.inc();
            tracing::warn!(aside = %recovery.aside.display(),
                "started from an empty store; adopting players from List");
        }
        // After a lost store, a player created just before the start may not show in
        // List for the List lag; until then only what List shows is acted on.
        let unseen_until_ms = store.recovery().map_or(0, |_| {
            clock.now_ms() + config.settings.reconcile.list_lag.as_millis() as u64
        });
        let events = EventLog::new(
            store.clone(),
            EventBounds {
                per_scene: config.settings.events.per_scene as usize,
                max_age: config.settings.events.max_age,
            },
        );
        tracker.spawn(housekeeping::sweep_events(
            events.clone(),
            clock,
            cancel.child_token(),
        ));
        let mut inboxes = HashMap::new();
        let mut mailboxes = HashMap::new();
        let drills = Drills::default();
        let (switch_tx, switch_rx) = tokio::sync::mpsc::unbounded_channel();
        let addresses = NcsAddresses::default();
        metrics.register(Box::new(IpListCollector::new(addresses.clone())));
        metrics.register_text(Box::new(SceneCollector::new(board.clone())));
        // Not tracked: shutdown must not wait on a receiver that is down.
        tokio::spawn(crate::appwebhook::dispatch(
            switch_rx,
            config.settings.app_webhook.clone(),
            {
                let feeds = feeds.clone();
                move |switch: &Switch| {
                    feeds
                        .with_scene(&switch.project, &switch.scene, |s| s.app_webhook.clone())
                        .flatten()
                }
            },
            metrics.clone(),
        ));

        let prober = match &config.settings.source_probe {
            Some(p) => Some(Arc::new(Prober::new(p.timeout)?)),
            None => None,
        };
        let transports = Transports::default();
        let leadership = store.leadership().clone();
        let leader_metrics = Arc::new(LeadershipMetrics::new(&metrics));
        let project_ids = config.settings.projects.iter().map(|p| p.id.as_str());
        if leadership.shared() {
            leader_metrics.shared(project_ids);
        } else {
            leader_metrics.sole(project_ids);
        }
        leadership.observe(leader_metrics);
        // Set once the intake exists, before leadership runs: a term (etcd) begins by
        // replaying its project's acknowledged notices.
        let intake_cell: Arc<OnceLock<Arc<Intake>>> = Arc::default();
        let notices = NoticeLog::for_projects(
            &store,
            config
                .settings
                .projects
                .iter()
                .map(|p| p.id.clone())
                .collect(),
        )
        .map_err(AppError::Store)?;
        for project in &config.settings.projects {
            metrics.init_project(&project.id);
            let client = build_client(project, &metrics, &transports, (&store, clock))
                .map_err(|source| AppError::Client {
                    project: project.id.clone(),
                    source,
                })?
                .with_stop(cancel.clone())
                .with_replica(&config.settings.leader.replica)
                .with_fence({
                    let (leadership, id) = (leadership.clone(), project.id.clone());
                    Arc::new(move || leadership.acting(&id))
                });
            let client = Arc::new(client);
            let refresher = IpRefresher {
                project: project.id.clone(),
                client: client.clone(),
                addresses: addresses.clone(),
                every: config.settings.ncs_allowlist.refresh_interval,
                failures_total: metrics.ncs_ip_fetch_failures.clone(),
            };
            tracker.spawn(refresher.run(cancel.child_token()));
            let inbox = Arc::new(Inbox::default());
            inboxes.insert(project.id.clone(), inbox.clone());
            let mailbox = Arc::new(ControlMailbox::default());
            mailboxes.insert(project.id.clone(), mailbox.clone());
            // Everything a term's controller needs; each term builds a fresh one.
            let term_context = {
                let client = client.clone();
                let (project, store, board, metrics) = (
                    project.clone(),
                    store.clone(),
                    board.clone(),
                    metrics.clone(),
                );
                let events =
                    ProjectEvents::new(events.clone(), &project.id, &project.name_prefix, clock);
                let (scenes, switches) = (feeds.project(&project.id), switch_tx.clone());
                // Not the whole settings: they hold every project.
                let (reconcile, reports) = (
                    config.settings.reconcile.clone(),
                    config.settings.reports.clone(),
                );
                let (drills, notices) = (drills.clone(), notices.clone());
                let sources = prober
                    .clone()
                    .zip(config.settings.source_probe.clone())
                    .map(|(prober, settings)| SourceProbing { prober, settings });
                move || Context {
                    executor: Arc::new(Executor::new(
                        project.id.clone(),
                        client.clone(),
                        store.clone(),
                        clock,
                        reconcile.uid_quarantine,
                        events.clone(),
                        notices.clone(),
                    )),
                    project: project.clone(),
                    settings: reconcile.clone(),
                    scenes: scenes.clone(),
                    board: board.clone(),
                    metrics: metrics.clone(),
                    inbox: inbox.clone(),
                    reports: reports.clone(),
                    switches: Some(switches.clone()),
                    unseen_until_ms,
                    sources: sources.clone(),
                    control: mailbox.clone(),
                    drills: drills.clone(),
                }
            };
            tracker.spawn(terms::supervise(
                project.id.clone(),
                leadership.clone(),
                {
                    let (board, metrics, id) = (board.clone(), metrics.clone(), project.id.clone());
                    let (intake_cell, shared) = (intake_cell.clone(), leadership.shared());
                    let (client, store) = (client.clone(), store.clone());
                    move |term| {
                        let run = Box::new(ProjectController::new(term_context())).run(term);
                        let (board, metrics, id) = (board.clone(), metrics.clone(), id.clone());
                        if let Some(intake) = intake_cell.get().filter(|_| shared) {
                            terms::take_over(&id, intake, &client, &store, clock);
                        }
                        async move {
                            run.await;
                            // What this replica published is stale once another leads.
                            board.publish(&id, Vec::new());
                            metrics.forget_project_state(&id);
                        }
                    }
                },
                cancel.child_token(),
            ));
        }

        let ncs_projects = config
            .settings
            .projects
            .iter()
            .map(|p| {
                let project = NcsProject {
                    secret: p.ncs_secret.clone(),
                    inbox: inboxes[&p.id].clone(),
                };
                (p.id.clone(), project)
            })
            .collect();
        let intake =
            Intake::new(ncs_projects, notices.clone(), store.clone()).map_err(AppError::Store)?;
        intake.replay().map_err(AppError::Store)?;
        let intake = Arc::new(intake);
        let _ = intake_cell.set(intake.clone());
        let tls = config.settings.server.tls.is_some();
        let peers = advertise::peers(
            &leadership,
            &config.settings.leader,
            listener.local_addr()?,
            tls,
        )?;
        let stop_leading = CancellationToken::new();
        let leading = tokio::spawn({
            let (leadership, stop) = (leadership.clone(), stop_leading.clone());
            async move { leadership.run(stop).await }
        });
        tracker.spawn(housekeeping::prune_notices(
            notices,
            clock,
            cancel.child_token(),
        ));

        let reload_now = Arc::new(Notify::new());
        let initial = Seen::new(&std::fs::read(&config.scenes_path).unwrap_or_default());
        let reloader = Reloader {
            path: config.scenes_path.clone(),
            settings: config.settings.clone(),
            metrics: metrics.clone(),
            clock,
            now: reload_now.clone(),
        };
        let apply_to = feeds.clone();
        tracker.spawn(reloader.run(
            initial,
            move |scenes| apply_to.send(scenes),
            cancel.child_token(),
        ));

        let accepting = Arc::new(AtomicBool::new(true));
        let readiness = Readiness {
            accepting: accepting.clone(),
            leadership: leadership.clone(),
        };
        tracker.spawn(probes::log_when_ready(
            readiness.clone(),
            cancel.child_token(),
        ));
        let mut routes = Routes {
            intake,
            metrics: metrics.clone(),
            leadership: leadership.clone(),
            peers,
            allowlist: config.settings.ncs_allowlist.clone(),
            addresses,
            board: board.clone(),
            inboxes,
            mailboxes,
            drills,
            feeds: feeds.clone(),
            events,
            clock,
            log_level,
            admin_token: config.settings.server.admin_token.clone(),
            readiness,
        }
        .build();
        let server_settings = &config.settings.server;
        // HTTP stops last, so `/readyz` answers 503 and `/metrics` is scraped while the
        // work drains.
        let stop_serving = CancellationToken::new();
        let server = TaskTracker::new();
        let mut metrics_addr = None;
        match server_settings.metrics_listen {
            None => routes = routes.merge(http::metrics::router(metrics.clone())),
            Some(at) => {
                let metrics_listener = TcpListener::bind(at).await?;
                metrics_addr = Some(metrics_listener.local_addr()?);
                server.spawn(serve(
                    Listening::Plain(metrics_listener),
                    http::metrics::router(metrics.clone()),
                    stop_serving.clone(),
                ));
            }
        }
        let addr = listener.local_addr()?;
        let listening = match &server_settings.tls {
            None => Listening::Plain(listener),
            Some(files) => {
                let cert = ReloadingCert::load(files.clone())?;
                tracker.spawn(cert.clone().watch(cancel.child_token()));
                Listening::Tls(TlsListener::new(listener, cert.server_config()))
            }
        };
        server.spawn(serve(listening, routes, stop_serving.clone()));
        tracker.close();
        server.close();
        tracing::info!(%addr, "pullkeeper listening");
        Ok(App {
            addr,
            metrics_addr,
            cancel,
            tracker,
            stop_serving,
            server,
            leading,
            stop_leading,
            leadership,
            scenes: feeds,
            accepting,
            reload_now,
            store,
            board,
            metrics,
        })
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// Where `/metrics` is served when `server.metrics_listen` moved it off [`addr`](Self::addr).
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics_addr
    }

    /// Re-reads the scenes file now (SIGHUP) instead of at the next poll.
    pub fn reload_scenes(&self) {
        self.reload_now.notify_one();
    }

    /// Replaces the desired scenes; controllers re-plan at once.
    pub fn set_scenes(&self, scenes: Vec<Scene>) {
        self.scenes.send(scenes);
    }

    /// Goes unready, starts no new work (calls waiting for the rate limiter are not
    /// sent), lets calls already sent finish, stops serving HTTP and flushes the store,
    /// all within [`SHUTDOWN_GRACE`]. Never deletes a player: streams outlive their
    /// supervisor, and the next start adopts them.
    pub async fn shutdown(self) {
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        self.accepting.store(false, Ordering::Release);
        // etcd: still leading, until the replica replacing this one (if any) can take
        // the projects over; half the grace at most, the rest is for in-flight work.
        self.leadership.await_successor(SHUTDOWN_GRACE / 2).await;
        self.cancel.cancel();
        if tokio::time::timeout_at(deadline, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("in-flight work did not finish within the shutdown grace period");
        }
        // Written while still leading; then the projects are handed over at once.
        if let Err(e) = self.store.flush().await {
            tracing::error!(error = %e, "store flush at shutdown failed");
        }
        self.stop_leading.cancel();
        if tokio::time::timeout_at(deadline, self.leading)
            .await
            .is_err()
        {
            tracing::warn!("the lease was not given back within the shutdown grace period");
        }
        self.stop_serving.cancel();
        if tokio::time::timeout_at(deadline, self.server.wait())
            .await
            .is_err()
        {
            tracing::warn!("HTTP connections still open at the end of the grace period");
        }
        if let Err(e) = self.store.flush().await {
            tracing::error!(error = %e, "store flush at shutdown failed");
        }
    }

    /// Resolves when the app has stopped on its own (it only stops when told to).
    pub async fn stopped(&self) {
        self.tracker.wait().await;
    }
}
