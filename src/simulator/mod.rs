//! An in-process Agora Media Pull + NCS simulator.
//!
//! It answers the Media Pull REST API the way docs/agora-api.md says Agora does (auth,
//! QPS windows, quotas, 409 with `X-Resource-ID`, List lag and pagination) and sends
//! signed NCS notices, so pullkeeper can be tested end to end without Agora. Tests steer
//! it through [`SimHandle`] in process, or through the same operations over HTTP under
//! `/_sim/...` when it runs as a separate process (see [`control`]).

mod api;
mod auth;
mod clock;
mod config;
mod conn;
pub mod control;
mod error;
mod faults;
mod ncs;
mod ncs_ip;
mod ops;
mod query;
mod rate;
mod reply;
mod sources;
mod state;
mod validate;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;
use tokio::time::Instant;

pub use config::{SimConfig, SimProject, SimQps, SourceLoss, Window};
pub use control::RequestRecord;
pub use faults::{FaultAction, FaultRule};
pub use ncs::{DeliveryOutcome, DeliveryRecord, NcsChaos};
pub use sources::SourceMode;
pub use state::{HistoryEntry, SimPlayer, Violations};

use clock::SimClock;
use faults::Faults;
use ncs::{Event, Notifier, Target};
use state::State;

/// Starts simulators.
pub struct Simulator;

impl Simulator {
    /// Serves the simulator on `listener` (bind it to `127.0.0.1:0` in tests) in a
    /// spawned task and returns a handle to steer it.
    pub async fn start(
        config: SimConfig,
        listener: tokio::net::TcpListener,
    ) -> std::io::Result<SimHandle> {
        let addr = listener.local_addr()?;
        let clock = Arc::new(SimClock::new());
        let notifier = Notifier::new(
            clock.clone(),
            config.ncs_timeout,
            config.ncs_retry_delays.clone(),
            &config.ncs_ca_files,
        )?;
        let inner = Arc::new(Inner {
            state: Mutex::new(State::new(&config.projects, config.source_loss)),
            ncs_ips: Mutex::new(config.ncs_ips.clone()),
            config,
            clock,
            faults: Mutex::new(Faults::default()),
            requests: Mutex::new(Vec::new()),
            notifier,
            wake: Notify::new(),
            rtmp: Mutex::new(HashMap::new()),
        });
        let app = api::router(inner.clone())
            .merge(control::router(inner.clone()))
            .merge(sources::router(inner.clone()));
        let service = app.into_make_service_with_connect_info::<conn::KillSwitch>();
        tokio::spawn(async move {
            if let Err(e) = axum::serve(conn::KillableListener(listener), service).await {
                tracing::error!(error = %e, "simulator server stopped");
            }
        });
        tokio::spawn(ticker(inner.clone()));
        Ok(SimHandle { inner, addr })
    }
}

/// A cheap, cloneable handle on a running simulator. Every method has an HTTP twin
/// under `/_sim/...` that calls the same code.
#[derive(Clone)]
pub struct SimHandle {
    inner: Arc<Inner>,
    addr: SocketAddr,
}

impl SimHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://IP:PORT`, the base of both the REST and the control API.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// State shared by the REST handlers, the control API and the background ticker.
pub(crate) struct Inner {
    config: SimConfig,
    clock: Arc<SimClock>,
    state: Mutex<State>,
    /// What the NCS IP query API answers; changed by tests through the control API.
    ncs_ips: Mutex<Vec<std::net::IpAddr>>,
    faults: Mutex<Faults>,
    requests: Mutex<Vec<RequestRecord>>,
    notifier: Notifier,
    /// Wakes the ticker when the clock jumps or a new transition is scheduled.
    wake: Notify,
    /// RTMP responders by source name.
    rtmp: Mutex<HashMap<String, SocketAddr>>,
}

/// Locks a mutex even if a panicking test thread poisoned it: the data stays usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Inner {
    /// Runs `f` on the state after applying due status transitions, then delivers every
    /// event produced, outside the lock.
    fn with_state<R>(&self, f: impl FnOnce(&mut State, Instant) -> (R, Vec<Event>)) -> R {
        let now = self.clock.now();
        let (result, deliveries) = {
            let mut st = lock(&self.state);
            let (mut events, _) = st.settle(&self.clock, now);
            let (result, more) = f(&mut st, now);
            events.extend(more);
            let deliveries: Vec<(Event, Target)> = events
                .into_iter()
                .filter_map(|e| {
                    let project = &st.projects.get(&e.app_id)?.config;
                    let target = Target {
                        url: project.ncs_url.clone()?,
                        secret: project.ncs_secret.clone(),
                    };
                    Some((e, target))
                })
                .collect();
            (result, deliveries)
        };
        for (event, target) in deliveries {
            self.notifier.dispatch(event, target);
        }
        result
    }

    /// Applies due transitions; returns when the next one is due.
    fn tick(&self) -> Option<Instant> {
        let now = self.clock.now();
        self.with_state(|st, _| {
            let (events, next) = st.settle(&self.clock, now);
            (next, events)
        })
    }
}

/// Turns `connecting` players into `running` when their time comes, so that NCS event 4
/// is sent even if nobody looks at the player. Sleeps until the next transition or until
/// woken by `advance()` or a new player.
async fn ticker(inner: Arc<Inner>) {
    loop {
        let next = inner.tick();
        let woken = inner.wake.notified();
        match next {
            Some(due) => {
                let wait = due.saturating_duration_since(inner.clock.now());
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = woken => {}
                }
            }
            None => woken.await,
        }
    }
}
