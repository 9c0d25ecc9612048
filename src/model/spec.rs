//! What a player runs with, split the way Agora's API splits it.
//!
//! Update (§1.7) changes `streamUrl` and the audio volume of a live player in
//! place: same player, same UID, no gap for viewers. Everything else a scene says about
//! its players (channel, region, idle timeout, RTC token, the UID itself) only a Create
//! can set, so changing it means a new player. Each slot record remembers the [`Spec`] its
//! player was given, so the plan can tell which of the two a reload needs, and a restart
//! neither forgets nor repeats it.

use serde::{Deserialize, Serialize};

use super::region::Region;

/// Agora's volume of a player nobody set one for (§1.7: 0..=200, default 100). Create
/// has no volume field (§1.4), so every new player starts here.
pub const DEFAULT_VOLUME: u32 = 100;

/// What Update can change in place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Live {
    pub stream_url: String,
    pub volume: u32,
}

/// What only a Create sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fixed {
    pub channel: String,
    pub region: Region,
    pub idle_timeout: u32,
    /// SHA-256 (hex) of the RTC token: a new token is noticed without the store ever
    /// holding the secret.
    #[serde(default)]
    pub token_sha256: Option<String>,
}

/// What a slot's player was asked to run, as its slot record remembers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spec {
    pub live: Live,
    pub fixed: Fixed,
}

impl Fixed {
    /// The names of the fields that differ from `other`, for the log of a replacement.
    pub fn changes(&self, other: &Fixed) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.channel != other.channel {
            out.push("channel");
        }
        if self.region != other.region {
            out.push("region");
        }
        if self.idle_timeout != other.idle_timeout {
            out.push("idle_timeout");
        }
        if self.token_sha256 != other.token_sha256 {
            out.push("token");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn fixed() -> Fixed {
        Fixed {
            channel: "c".into(),
            region: Region::Na,
            idle_timeout: 300,
            token_sha256: None,
        }
    }

    #[test]
    fn changes_name_every_differing_create_only_field() {
        assert!(fixed().changes(&fixed()).is_empty());
        let other = Fixed {
            channel: "d".into(),
            region: Region::Eu,
            idle_timeout: 60,
            token_sha256: Some("ab".into()),
        };
        assert_eq!(
            fixed().changes(&other),
            vec!["channel", "region", "idle_timeout", "token"]
        );
    }

    #[test]
    fn a_spec_round_trips_through_json_without_the_token() {
        let spec = Spec {
            live: Live {
                stream_url: "rtmp://a/b".into(),
                volume: 100,
            },
            fixed: Fixed {
                token_sha256: Some(hex::encode(Sha256::digest(b"secret-token"))),
                ..fixed()
            },
        };
        let json = serde_json::to_string(&spec).unwrap();
        assert!(!json.contains("secret-token"));
        assert_eq!(serde_json::from_str::<Spec>(&json).unwrap(), spec);
    }
}
