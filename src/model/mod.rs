//! The vocabulary every layer shares: what is stored (slot records, specs, on-air records),
//! how players are named, what a player's status means, and the status pullkeeper
//! publishes.
//!
//! It sits at the bottom of the crate and imports nothing from it, so `store/`, `config/`,
//! the edges and `reconcile/` can all speak it without depending on one another. Only
//! types and the rules that are part of their meaning live here; decisions live in
//! `reconcile::plan`.

mod control;
mod event;
mod naming;
mod onair;
mod player;
mod region;
mod slot;
mod spec;
mod status;

pub use control::{
    ControlAnswer, ControlMailbox, ControlRequest, DrillMode, DrillReport, DrillState, DrillStep,
    Drills, Maintenance, MaintenanceBy, Pending, SceneControl,
};
pub use event::{DeleteReason, Event, EventKind, Signal, rfc3339_ms};
pub use naming::{PlayerName, SLATE_SLOT, format_name, parse_name, role};
pub use onair::{OnAir, Switch, SwitchReason};
pub use player::{PLAYER_STATES, PlayerStatus, is_dead, is_running};
pub use region::Region;
pub use slot::{Phase, RECORD_VERSION, SlotKey, SlotRecord};
pub use spec::{DEFAULT_VOLUME, Fixed, Live, Spec};
pub use status::{SceneStatus, SlotStatus, SourceStatus, StatusBoard};
