//! pullkeeper: a supervisor and failover controller for Agora Media Pull cloud players.
//!
//! # Layout
//! - [`config`]: typed settings and scenes from YAML, validated with file:line:column errors.
//! - [`agora`]: the Media Pull REST client (`client`), its wire types (`model`) and typed
//!   errors (`error`).
//! - [`limits`]: sliding-window rate limiters that keep every API inside Agora's QPS limits.
//! - [`store`]: sled-backed memory: slot records, create intents, every UID handed out.
//! - [`reconcile`]: `plan` (pure decision), `execute` (effects), `controller` (the loop).
//! - [`status`]: per-scene status and the on-air player, as served on `/v1/scenes`.
//! - [`http`]: the HTTP surface: health, readiness, metrics and status routes, the admin
//!   bearer token every `/v1/` route sits behind, app reports, the runtime log level, the
//!   NCS webhook route, its address guard and the address list shown, plain or HTTPS
//!   serving (certificates that reload) on a bounded listener.
//! - [`crypto`]: the rustls crypto provider every HTTPS client shares.
//! - [`telemetry`]: Prometheus metrics and logging.
//! - [`ncs`]: Agora's notification (webhook) bodies and signatures, the intake that
//!   verifies, decodes, dedupes and orders them into each project's inbox, and each
//!   project's NCS address list, kept fresh.
//! - [`probe`]: source probes (RTMP handshake, live-HLS freshness, ranged GET) and their
//!   schedule: "source down" versus "player down".
//! - [`simulator`]: an Agora Media Pull + NCS simulator for the demo and the tests.
//! - [`app`], [`cli`], [`embedded`]: wiring, subcommands, the demo's in-process simulator.
//! - [`bench`]: `pullkeeper bench`, scenario benchmarks against the promised limits.

pub mod agora;
pub mod app;
pub mod appwebhook;
pub mod bench;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod embedded;
pub mod http;
pub mod limits;
pub mod model;
pub mod ncs;
pub mod probe;
pub mod reconcile;
pub mod reload;
pub mod scene_feeds;
pub mod simulator;
pub mod store;
pub mod telemetry;

#[cfg(test)]
mod fuzzing;
