//! Reconciliation: decide (pure `plan`) and do (`execute`, driven by `controller`).

pub mod naming;
pub mod plan;
