//! The single integration-test binary; each module tests one part of pullkeeper.

mod admin;
mod client;
mod config;
mod dashboard;
mod deploy;
mod domains;
mod e2e;
mod failover;
mod harness;
mod loglevel;
mod ncs;
mod ncs_allowlist;
mod ncs_failover;
mod observability;
mod probe;
mod reload;
mod rollout;
mod simulator_ncs;
mod simulator_rest;
mod source;
mod storm;
mod support;
mod tls;
