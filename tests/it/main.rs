//! The single integration-test binary; each module tests one part of pullkeeper.

mod simulator;
mod support;
