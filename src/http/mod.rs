//! The HTTP surface: every route pullkeeper serves, and how it is served.
//!
//! The routes come in groups because they are exposed differently:
//! - open, for Kubernetes: [`probes`] (`/healthz`, `/readyz`);
//! - open, for Prometheus, on `server.listen` or its own `server.metrics_listen`:
//!   [`metrics`];
//! - the NCS webhook, which carries its own signature: [`ncs`] (`/ncs/{project}`, with
//!   the address guard in front when enforced);
//! - the admin API, every `/v1/` route behind the bearer token of [`auth`]: [`scenes`],
//!   [`events`], [`reports`], [`control`], [`loglevel`], [`ncs::ips`].
//!
//! [`serve`] serves a router over plain HTTP or over [`tls`], on a [`bounded`] listener.
//!
//! The routes read published state or hand a signal on (to a project's inbox or control
//! mailbox, to the log filter); none decides anything: that is `reconcile`'s, below this layer, and no
//! module below imports this one.

mod answer;
pub mod auth;
pub mod bounded;
pub mod control;
pub mod events;
pub mod loglevel;
pub mod metrics;
pub mod ncs;
pub mod peers;
pub mod probes;
pub mod reports;
pub mod scenes;
pub mod serve;
pub mod tls;
pub mod to_leader;
