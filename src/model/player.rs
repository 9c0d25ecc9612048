//! A player's status, and what pullkeeper reads from it: whether the player still plays
//! and whether it ever will again.

use serde::{Deserialize, Serialize};

/// Player status as reported by Create, List (§1.8) and NCS event 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlayerStatus {
    Idle,
    Connecting,
    Success,
    Running,
    Failed,
    Stopped,
    /// A value the docs do not list; kept rather than failing the whole List page.
    #[serde(other)]
    Unknown,
}

impl PlayerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PlayerStatus::Idle => "idle",
            PlayerStatus::Connecting => "connecting",
            PlayerStatus::Success => "success",
            PlayerStatus::Running => "running",
            PlayerStatus::Failed => "failed",
            PlayerStatus::Stopped => "stopped",
            PlayerStatus::Unknown => "unknown",
        }
    }
}

/// A status after which a player will never play again.
pub fn is_dead(status: Option<PlayerStatus>) -> bool {
    matches!(status, Some(PlayerStatus::Failed | PlayerStatus::Stopped))
}

/// A status of a player that plays: `running`, or NCS's `success` (§1.8).
pub fn is_running(status: Option<PlayerStatus>) -> bool {
    matches!(status, Some(PlayerStatus::Running | PlayerStatus::Success))
}

/// Every state a slot can be in: Agora's statuses, then ours for a slot whose player is
/// not (yet) listed (`pending`), whose create Agora refused for good (`rejected`), or
/// that has none (`missing`). A closed set: it is a label.
pub const PLAYER_STATES: [&str; 10] = [
    "idle",
    "connecting",
    "success",
    "running",
    "failed",
    "stopped",
    "unknown",
    "pending",
    "rejected",
    "missing",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn player_states_cover_every_agora_status() {
        for s in [
            PlayerStatus::Idle,
            PlayerStatus::Connecting,
            PlayerStatus::Success,
            PlayerStatus::Running,
            PlayerStatus::Failed,
            PlayerStatus::Stopped,
            PlayerStatus::Unknown,
        ] {
            assert!(PLAYER_STATES.contains(&s.as_str()), "{s:?}");
        }
    }
}
