//! Wire types of the Media Pull REST API (docs/agora-api.md §1.4–§1.8).
//!
//! Shared by the client and the simulator so both speak exactly one dialect. Fields that
//! Agora documents as optional are `Option` and skipped when absent, because the docs say
//! "do not send `null` or `""`" and List entries "might only include `id`, `name` and
//! `createTs`" (§1.5).

use serde::{Deserialize, Serialize};

pub use crate::model::{PlayerStatus, Region};

/// Body of a Create request: `{"player": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateRequest {
    pub player: CreatePlayer,
}

/// The `player` object of a Create request (§1.4). Only the fields pullkeeper uses are
/// typed; the simulator rejects unknown shapes through these same types.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatePlayer {
    pub stream_url: String,
    pub channel_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub play_ts: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Body of a successful Create: `{"player": {...}, "fields": "..."}` (§1.5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateResponse {
    pub player: CreatedPlayer,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedPlayer {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default)]
    pub create_ts: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<PlayerStatus>,
}

/// One entry of a List page. Everything but `id` may be missing (§1.5 Considerations).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListedPlayer {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default)]
    pub create_ts: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<PlayerStatus>,
}

/// A List page (§1.5, §1.6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse {
    #[serde(default)]
    pub total_size: u64,
    #[serde(default)]
    pub players: Vec<ListedPlayer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

impl ListResponse {
    /// The token for the next page, or `None` at the end. The docs disagree on how the
    /// end is marked (`""` in RA, `"0"` in QS, §1.6), so all three forms end the list.
    pub fn next_token(&self) -> Option<&str> {
        match self.next_page_token.as_deref() {
            None | Some("") | Some("0") => None,
            Some(t) => Some(t),
        }
    }
}

/// Body of an Update (PATCH) request (§1.7).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct UpdateRequest {
    pub player: UpdatePlayer,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdatePlayer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_options: Option<AudioOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_pause: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seek_position: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AudioOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<u32>,
}

/// Error body: Agora documents `message`, the best-practice page `reason` (§1.5).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ErrorBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Byte and character rules for names Agora accepts (§1.4), shared by config validation
/// and the simulator so both reject exactly the same inputs.
pub mod limits {
    pub const CHANNEL_NAME_MAX_BYTES: usize = 64;
    pub const STREAM_URL_MAX_BYTES: usize = 1024;
    pub const PLAYER_NAME_MAX_BYTES: usize = 64;
    pub const ACCOUNT_MAX_BYTES: usize = 255;
    pub const IDLE_TIMEOUT_MIN: i64 = 5;
    pub const IDLE_TIMEOUT_MAX: i64 = 600;
    pub const PAGE_SIZE_MAX: usize = 500;
    pub const PAGE_SIZE_DEFAULT: usize = 200;

    /// Punctuation allowed in channel names and accounts besides letters, digits and space.
    const CHANNEL_PUNCT: &str = "!#$%&()+-:;<=.>?@[]^_{}|~,";

    /// The first character not allowed in a channel name or account, if any.
    pub fn bad_channel_char(s: &str) -> Option<char> {
        s.chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || c == ' ' || CHANNEL_PUNCT.contains(c)))
    }

    /// The first character not allowed in a player name (`[A-Za-z0-9_-]`), if any.
    pub fn bad_name_char(s: &str) -> Option<char> {
        s.chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn channel_charset_follows_the_docs() {
            assert_eq!(
                bad_channel_char("class32 a!#$%&()+-:;<=.>?@[]^_{}|~,"),
                None
            );
            assert_eq!(bad_channel_char("a/b"), Some('/'));
            assert_eq!(bad_channel_char("é"), Some('é'));
            assert_eq!(bad_channel_char("a\"b"), Some('"'));
        }

        #[test]
        fn name_charset_follows_the_docs() {
            assert_eq!(bad_name_char("pk_news-1_m_3"), None);
            assert_eq!(bad_name_char("pk news"), Some(' '));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_end_is_empty_zero_or_absent() {
        let mut page = ListResponse {
            total_size: 0,
            players: vec![],
            fields: None,
            next_page_token: None,
        };
        assert_eq!(page.next_token(), None);
        page.next_page_token = Some(String::new());
        assert_eq!(page.next_token(), None);
        page.next_page_token = Some("0".into());
        assert_eq!(page.next_token(), None);
        page.next_page_token = Some("7b60b719f".into());
        assert_eq!(page.next_token(), Some("7b60b719f"));
    }

    #[test]
    fn list_entries_may_carry_only_id_name_and_create_ts() {
        let page: ListResponse = serde_json::from_str(
            r#"{"players":[{"id":"a","name":"n","createTs":1}],"nextPageToken":""}"#,
        )
        .unwrap();
        assert_eq!(page.players[0].status, None);
        assert_eq!(page.players[0].uid, None);
    }

    #[test]
    fn unknown_status_does_not_fail_a_page() {
        let p: ListedPlayer = serde_json::from_str(r#"{"id":"a","status":"migrating"}"#).unwrap();
        assert_eq!(p.status, Some(PlayerStatus::Unknown));
    }
}
