//! The single integration-test binary; each module tests one part of pullkeeper.

mod audit;
mod binary;
mod client;
mod config;
mod crash;
mod dashboard;
mod deploy;
mod domains;
mod e2e;
mod failover;
mod harness;
mod lifecycle;
mod loglevel;
mod ncs;
mod ncs_failover;
mod observability;
mod recovery;
mod reload;
mod rollout;
mod simulator_ncs;
mod simulator_rest;
mod storm;
mod support;
