//! Reconciliation, one controller per project: signals are applied to what is observed
//! ([`observe`]), the plan decides from the desired scenes and the observed state
//! ([`plan`], pure, the only place that decides, the on-air player included), the
//! executor acts on Agora and the store ([`execute`]), and the pass is published
//! ([`publish`]). The [`controller`] is the loop that moves a signal through.

mod controller;
mod events;
mod execute;
mod observe;
mod plan;
mod publish;
mod source_probes;
mod wake;

pub use controller::{Context, ProjectController};
pub use events::ProjectEvents;
pub use execute::Executor;
pub use source_probes::SourceProbing;
