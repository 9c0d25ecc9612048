//! Reconciliation: decide (pure `plan`) and do (`execute`, driven by `controller`).

pub mod controller;
pub mod execute;
pub mod naming;
pub mod plan;
