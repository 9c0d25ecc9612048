//! Reconciliation: decide (pure `plan`) and do (`execute`, driven by `controller`).

pub mod busy;
pub mod controller;
pub mod creates;
pub mod evidence;
pub mod execute;
pub mod health;
pub mod hold;
mod launch;
pub mod observe;
pub mod onair;
pub mod plan;
pub mod publish;
pub mod rollout;
pub mod sources;
pub mod spec;
pub mod wake;
