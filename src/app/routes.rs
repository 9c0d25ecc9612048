//! The HTTP routes of one pullkeeper: the probes, the NCS webhook (behind the address
//! allowlist when it is enforced) and the admin API (behind the admin token), the scene
//! history and the operator's actions answered by each scene's leader.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use secrecy::SecretString;

use crate::clock::Clock;
use crate::config::NcsAllowlist;
use crate::http::control::ControlState;
use crate::http::events::EventsState;
use crate::http::loglevel::LogLevelState;
use crate::http::ncs::guard::{self, Guard};
use crate::http::ncs::{ips, route};
use crate::http::peers::Peers;
use crate::http::probes::{self, Readiness};
use crate::http::reports::ReportsState;
use crate::http::to_leader::{self, ToLeader};
use crate::http::{auth, control, events, loglevel, reports, scenes};
use crate::model::{ControlMailbox, Drills, StatusBoard};
use crate::ncs::allowlist::NcsAddresses;
use crate::ncs::inbox::Inbox;
use crate::ncs::intake::Intake;
use crate::scene_feeds::SceneFeeds;
use crate::store::{EventLog, Leadership};
use crate::telemetry::{LogLevel, Metrics};

/// What the routes serve from.
pub(super) struct Routes {
    pub intake: Arc<Intake>,
    pub metrics: Metrics,
    pub leadership: Leadership,
    /// The other replicas (etcd), to hand notices and requests to a project's leader.
    pub peers: Option<Arc<Peers>>,
    pub allowlist: NcsAllowlist,
    pub addresses: NcsAddresses,
    pub board: StatusBoard,
    pub inboxes: HashMap<String, Arc<Inbox>>,
    pub mailboxes: HashMap<String, Arc<ControlMailbox>>,
    pub drills: Drills,
    pub feeds: Arc<SceneFeeds>,
    pub events: EventLog,
    pub clock: Clock,
    /// The process's log filter, where logging was set up.
    pub log_level: Option<LogLevel>,
    pub admin_token: Option<SecretString>,
    pub readiness: Readiness,
}

impl Routes {
    /// Every route but `/metrics`, which may have a listener of its own.
    pub(super) fn build(self) -> Router {
        let mut ncs = route::router(
            self.intake,
            self.metrics.clone(),
            self.leadership.clone(),
            self.peers.clone(),
        );
        if self.allowlist.enforce {
            ncs = guard::enforce(
                ncs,
                Guard {
                    addresses: self.addresses.clone(),
                    trusted_proxies: Arc::new(self.allowlist.trusted_proxies.clone()),
                    metrics: self.metrics.clone(),
                },
            );
        }
        let report_route = reports::router(ReportsState {
            board: self.board.clone(),
            inboxes: Arc::new(self.inboxes),
            clock: self.clock,
        });
        let events_route = events::router(EventsState {
            scenes: self.feeds.clone(),
            events: self.events,
            leadership: self.leadership.clone(),
            clock: self.clock,
        });
        let control_route = control::router(ControlState {
            scenes: self.feeds.clone(),
            mailboxes: Arc::new(self.mailboxes),
            drills: self.drills,
        });
        // A scene's history and the operator's actions are answered by its leader.
        let led_routes = to_leader::route_to_leader(
            events_route.merge(control_route),
            ToLeader {
                scenes: self.feeds,
                leadership: self.leadership.clone(),
                peers: self.peers.clone(),
            },
        );
        let mut admin_routes = scenes::router(self.board, self.leadership, self.peers)
            .merge(led_routes)
            .merge(report_route)
            .merge(ips::router(self.addresses, self.allowlist.enforce));
        if let Some(level) = self.log_level {
            admin_routes = admin_routes.merge(loglevel::router(LogLevelState { level }));
        }
        let admin = auth::require_admin(admin_routes, self.admin_token);
        probes::router(self.readiness).merge(ncs).merge(admin)
    }
}
