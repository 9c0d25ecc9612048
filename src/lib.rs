//! pullkeeper: a supervisor and failover controller for Agora Media Pull cloud players.

pub mod agora;
pub mod limits;
pub mod ncs;
pub mod reconcile;
pub mod store;
pub mod tls;
