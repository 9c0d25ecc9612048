//! Agora's Media Pull regions: where a player runs, and the `{region}` path segment of
//! Create, Delete and Update (§1.1). A slot record remembers its player's region.

use serde::{Deserialize, Serialize};

/// The four Media Pull regions; the `{region}` path segment of Create, Delete and Update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Region {
    Na,
    Eu,
    Ap,
    Cn,
}

impl Region {
    pub const ALL: [Region; 4] = [Region::Na, Region::Eu, Region::Ap, Region::Cn];

    pub fn as_str(self) -> &'static str {
        match self {
            Region::Na => "na",
            Region::Eu => "eu",
            Region::Ap => "ap",
            Region::Cn => "cn",
        }
    }

    /// Parses the lowercase path segment; Agora rejects upper case (§1.1).
    pub fn parse(s: &str) -> Option<Region> {
        Region::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
