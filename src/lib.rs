//! pullkeeper: a supervisor and failover controller for Agora Media Pull cloud players.

pub mod agora;
pub mod app;
pub mod clock;
pub mod config;
pub mod limits;
pub mod ncs;
pub mod reconcile;
pub mod server;
pub mod status;
pub mod store;
pub mod telemetry;
pub mod tls;
