//! What a plan can decide: its actions, each with the payload the executor takes as it
//! is, and the plan's whole answer.

pub use crate::model::DeleteReason;
use crate::model::{Live, OnAir, SlotKey, SwitchReason};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Create(Create),
    Adopt(Adopt),
    Update(Update),
    Delete(Delete),
    /// Drop the record of a slot that is no longer wanted and has no player left.
    Forget(SlotKey),
}

/// Create a player for `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Create {
    pub key: SlotKey,
    pub generation: u64,
    pub name: String,
    /// `Some` when retrying an intent whose UID was already handed out; `None` means
    /// "allocate a fresh one".
    pub uid: Option<u32>,
    /// Set when the new player replaces one that still runs, as a rollout step.
    pub rollout: Option<Rollout>,
}

/// Record a player that List shows as the slot's current one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adopt {
    pub key: SlotKey,
    pub generation: u64,
    pub name: String,
    pub id: String,
    pub uid: Option<u32>,
    /// What List shows it playing, where it shows it.
    pub stream_url: Option<String>,
    pub channel: Option<String>,
}

/// Bring the slot's live player `id` to `to` in place (§1.7). Only the fields marked
/// are sent; with none marked, Agora already runs `to` and only the record learns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    pub key: SlotKey,
    pub id: String,
    pub name: String,
    pub to: Live,
    pub send_stream_url: bool,
    pub send_volume: bool,
}

impl Update {
    /// Whether Agora must be asked at all (otherwise only the record changes).
    pub fn sends_anything(&self) -> bool {
        self.send_stream_url || self.send_volume
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delete {
    pub id: String,
    pub name: String,
    /// The player's UID as List showed it, for the event history.
    pub uid: Option<u32>,
    pub reason: DeleteReason,
}

/// A rollout step: the running player it replaces and the settings that made it unfit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollout {
    pub replaces: String,
    pub changed: Vec<&'static str>,
}

/// The on-air decision for one scene.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnAirDecision {
    pub scene: String,
    /// The on-air record the decision starts from (the last one recorded).
    pub previous: OnAir,
    /// The on-air record now; equal to `previous` unless `reason` is set.
    pub onair: OnAir,
    /// Set when the on-air player changed: the record must be written and announced.
    pub reason: Option<SwitchReason>,
    /// How many of the scene's slots have a running player (the one on air included).
    pub healthy: u32,
    /// The steering's request, honoured (`Ok`) or refused with the reason.
    pub request: Option<Result<(), String>>,
    /// The pinned slot's player stopped running: the pin no longer holds.
    pub pin_released: bool,
}

/// The plan's answer: actions in the order to start them, the on-air decision of every
/// scene, and the slots that wanted a player but could not have one yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub onair: Vec<OnAirDecision>,
    /// Slots that want a player the project's quota has no room for.
    pub over_quota: Vec<SlotKey>,
    /// Slots that need a replacement their source does not clear (yet).
    pub held: Vec<SlotKey>,
    /// The earliest `now_ms` at which the same inputs could plan differently (a List
    /// lag or the unseen window running out); `None`: time alone changes nothing. The
    /// controller skips a pass whose inputs repeat a quiet plan's before this instant.
    pub recheck_at_ms: Option<u64>,
    /// When, with nothing else happening, an on-air decision falls due (a revertive
    /// hold-down ending): the controller wakes for it, as no signal would.
    pub onair_due_at_ms: Option<u64>,
}
