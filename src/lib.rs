//! pullkeeper: a supervisor and failover controller for Agora Media Pull cloud players.
//!
//! # Layout
//! Bottom to top (README.md, "How it works", has the layers and why; `tests/it/layers/mod.rs`
//! keeps them):
//! - vocabulary: [`model`], what is stored and shared: slot records and specs, player
//!   names and status, on-air records, the published scene status; `clock`, wall-clock
//!   milliseconds that follow tokio's clock.
//! - storage: [`store`], durable memory behind one interface (`StateStore`), with the
//!   embedded `sled` backend.
//! - edges, one outside thing each: [`agora`] (the Media Pull REST client and its wire
//!   types), [`ncs`] (Agora's notifications: signatures, bodies, the intake that
//!   verifies, dedupes and orders them, the NCS address list), `probe` (source probes),
//!   [`config`] (typed settings and scenes from YAML, errors with file:line:column),
//!   `limits` (rate windows that keep every API inside Agora's QPS limits), `telemetry`
//!   (metrics and logs), [`simulator`] (an Agora Media Pull + NCS stand-in for the demo
//!   and the tests), `appwebhook` (tells apps which UID is on air), `crypto` (the TLS
//!   provider every HTTPS client shares).
//! - core: `reconcile`, one controller per project: observe → plan → execute → publish.
//! - wiring: `app` (one controller per project, the store, the HTTP server), `http`
//!   (every route, TLS, the bounded listener, auth), `reload`, `scene_feeds`, `embedded`
//!   (the demo's in-process simulator).
//! - top: `cli` (subcommands), `bench` (`pullkeeper bench`).
//!
//! The modules whose API the binary and the integration tests drive whole are public;
//! the rest are private, and what is needed of them is re-exported here.

pub mod agora;
mod app;
mod appwebhook;
mod bench;
mod cli;
mod clock;
pub mod config;
mod crypto;
mod embedded;
mod http;
mod limits;
pub mod model;
pub mod ncs;
mod probe;
mod reconcile;
mod reload;
mod scene_feeds;
pub mod simulator;
pub mod store;
mod telemetry;
mod terms;

pub use app::{App, SHUTDOWN_GRACE};
pub use appwebhook::SIGNATURE_HEADER as APP_WEBHOOK_SIGNATURE_HEADER;
pub use cli::{Cli, execute};
pub use crypto::install_provider as install_crypto_provider;
pub use http::ncs::route::router as ncs_router;
pub use http::serve::{Listening, serve, serve_bounded};
pub use http::tls::{ReloadingCert, TlsListener};
pub use limits::{RateLimiter, WindowSpec};
pub use probe::{Prober, Verdict};
pub use telemetry::{Metrics, init_logging};

#[cfg(test)]
mod fuzzing;
