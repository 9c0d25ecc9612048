//! The single integration-test binary; each module tests one part of pullkeeper.

mod audit;
mod binary;
mod client;
mod config;
mod crash;
mod domains;
mod e2e;
mod failover;
mod harness;
mod lifecycle;
mod ncs;
mod ncs_failover;
mod observability;
mod recovery;
mod reload;
mod simulator_ncs;
mod simulator_rest;
mod storm;
mod support;
