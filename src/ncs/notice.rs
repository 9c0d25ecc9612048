//! NCS notice bodies (docs/agora-api.md §2.2, §2.3).
//!
//! The envelope is common to every product; the Media Pull payloads (productId 4,
//! events 1, 3, 4) are typed here so the simulator that sends them and the receiver that
//! reads them share one definition.

use serde::{Deserialize, Serialize};

use crate::agora::wire::PlayerStatus;

/// productId of Media Pull (Cloud Player) notices.
pub const PRODUCT_MEDIA_PULL: u32 = 4;
/// eventType "Player Created".
pub const EVENT_PLAYER_CREATED: u32 = 1;
/// eventType "Player Destroyed".
pub const EVENT_PLAYER_DESTROYED: u32 = 3;
/// eventType "Player Status Changed".
pub const EVENT_PLAYER_STATUS: u32 = 4;

/// The notice envelope. Unknown top-level fields (`appId`, `sid`, ...) are tolerated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notice {
    pub notice_id: String,
    pub product_id: u32,
    pub event_type: u32,
    /// Milliseconds; NCS updates it on every resend, so it is not part of the dedupe key.
    pub notify_ms: u64,
    pub payload: serde_json::Value,
}

/// The `player` object inside Media Pull payloads; event 3 and 4 carry only a subset.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NoticePlayer {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_ts: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<PlayerStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

/// Payload of events 1, 3 and 4. `lts` (ms, Agora's clock) orders events of one player.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaPullPayload {
    pub lts: u64,
    pub player: NoticePlayer,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destroy_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x_request_id: Option<String>,
}

/// `destroyReason` values documented for event 3 (§2.3).
pub mod destroy_reason {
    pub const DELETE_REQUEST: &str = "Delete Request";
    pub const INTERNAL_ERROR: &str = "Internal Error";
    pub const IDLE_TIMEOUT: &str = "Idle Timeout";
    pub const STREAM_STOPPED: &str = "Stream Stopped";
}
