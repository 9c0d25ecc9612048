//! What a plan can decide: its actions, and its answer.

use crate::model::Live;
use crate::model::SlotKey;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create a player for `key`. `uid` is `Some` when retrying an intent whose UID was
    /// already handed out; `None` means "allocate a fresh one".
    Create {
        key: SlotKey,
        generation: u64,
        name: String,
        uid: Option<u32>,
        /// Set when the new player replaces one that still runs, as a rollout step.
        rollout: Option<Rollout>,
    },
    /// Record a player that List shows as the slot's current one.
    Adopt {
        key: SlotKey,
        generation: u64,
        name: String,
        id: String,
        uid: Option<u32>,
        /// What List shows it playing, where it shows it.
        stream_url: Option<String>,
        channel: Option<String>,
    },
    /// Bring the slot's live player `id` to `to` in place (§1.7). Only the fields marked
    /// are sent; with none marked, Agora already runs `to` and only the record learns it.
    Update {
        key: SlotKey,
        id: String,
        name: String,
        to: Live,
        send_stream_url: bool,
        send_volume: bool,
    },
    Delete {
        id: String,
        name: String,
        reason: DeleteReason,
    },
    /// Drop the record of a slot that is no longer wanted and has no player left.
    Forget { key: SlotKey },
}

/// A rollout step: the running player it replaces and the settings that made it unfit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollout {
    pub replaces: String,
    pub changed: Vec<&'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteReason {
    SceneRemoved,
    SlotRemoved,
    /// An older generation whose successor is up.
    Superseded,
    /// The player failed or stopped and is being replaced.
    Failed,
}

impl DeleteReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DeleteReason::SceneRemoved => "scene_removed",
            DeleteReason::SlotRemoved => "slot_removed",
            DeleteReason::Superseded => "superseded",
            DeleteReason::Failed => "failed",
        }
    }
}

/// The plan's answer: actions in the order to start them, and the slots that wanted a
/// player but could not have one because the project is at its quota.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub over_quota: Vec<SlotKey>,
    /// Slots that need a replacement their source does not clear (yet).
    pub held: Vec<SlotKey>,
    /// The earliest `now_ms` at which the same inputs could plan differently (a List
    /// lag or the unseen window running out); `None`: time alone changes nothing. The
    /// controller skips a pass whose inputs repeat a quiet plan's before this instant.
    pub recheck_at_ms: Option<u64>,
}
