//! pullkeeper: a supervisor and failover controller for Agora Media Pull cloud players.

pub mod agora;
pub mod config;
pub mod ncs;
