//! Slots and what pullkeeper remembers about the player filling each: the records the
//! store keeps and the plan reads.

use serde::{Deserialize, Serialize};

use super::region::Region;
use super::spec::Spec;

/// Identifies one slot: slot 0 is the master, 1..=backups the backups.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SlotKey {
    pub project: String,
    pub scene: String,
    pub slot: u32,
}

impl SlotKey {
    pub fn new(project: &str, scene: &str, slot: u32) -> Self {
        SlotKey {
            project: project.to_string(),
            scene: scene.to_string(),
            slot,
        }
    }

    pub fn is_master(&self) -> bool {
        self.slot == 0
    }
}

impl std::fmt::Display for SlotKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.project, self.scene, self.slot)
    }
}

/// Where a slot's current player stands, as far as pullkeeper knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The create intent is durable; Agora may or may not have the player yet.
    Intended,
    /// Agora refused the last Create with an answer that says nothing was created (a
    /// 4xx other than 409; 500, 502, 503), so it is retried without waiting for the
    /// List lag.
    Refused,
    /// Agora answered the Create (or a 409, or a List showed the player).
    Created,
}

/// The player currently assigned to a slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotRecord {
    /// Schema version of this value.
    pub v: u32,
    pub name: String,
    pub uid: u32,
    pub generation: u64,
    pub phase: Phase,
    /// The region the player was created in; Delete and Update need it in their path.
    pub region: Region,
    /// Agora's player id, once known.
    pub id: Option<String>,
    /// When the last Create for this player was sent (Unix ms): the List lag counts from here.
    pub created_at_ms: u64,
    /// What the player was asked to run. `None` in records written before pullkeeper
    /// remembered it; the plan re-adopts such a player to learn it.
    #[serde(default)]
    pub spec: Option<Spec>,
}

impl SlotRecord {
    /// Whether a List may still not show this player: its last Create was sent less
    /// than the List lag ago (§1.6: List can miss a new player for ~10 s).
    pub fn within_list_lag(&self, now_ms: u64, list_lag_ms: u64) -> bool {
        now_ms < self.created_at_ms.saturating_add(list_lag_ms)
    }
}

/// Schema version written into every [`SlotRecord`].
pub const RECORD_VERSION: u32 = 1;
