//! Per-project quotas: the concurrent-player cap and the Media Pull QPS limits.
//!
//! Defaults are Agora's documented per-project limits (docs/agora-api.md §1.10);
//! exceeding any of them returns 429, so the client's rate limiter is configured from
//! these values.

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::diagnostic::Diags;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Concurrent players pullkeeper may run in this project. Agora's docs disagree on the
    /// default quota (20 or 50, §1.10); 50 matches the best-practice pages, lower it if your
    /// project has the 20 quota.
    pub max_players: u32,
    pub qps: QpsLimits,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QpsLimits {
    pub create_with_name: Rate,
    pub create_without_name: Rate,
    pub delete: Rate,
    pub list: Rate,
    pub list_filtered: Rate,
    /// Agora does not document an Update limit; 10/s is a conservative guess.
    pub update: Rate,
}

/// A request rate: always a per-second cap, and optionally a per-minute one as well
/// (List has both, §1.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_second: u32,
    pub per_minute: Option<u32>,
}

impl Rate {
    const fn per_second(n: u32) -> Rate {
        Rate {
            per_second: n,
            per_minute: None,
        }
    }

    const fn with_minute(n: u32, m: u32) -> Rate {
        Rate {
            per_second: n,
            per_minute: Some(m),
        }
    }
}

const DEFAULT_MAX_PLAYERS: u32 = 50;

impl Default for QpsLimits {
    fn default() -> Self {
        QpsLimits {
            create_with_name: Rate::per_second(2),
            create_without_name: Rate::per_second(50),
            delete: Rate::per_second(100),
            list: Rate::with_minute(10, 20),
            list_filtered: Rate::with_minute(2, 15),
            update: Rate::per_second(10),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_players: DEFAULT_MAX_PLAYERS,
            qps: QpsLimits::default(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    #[serde(default)]
    max_players: Option<Spanned<u32>>,
    #[serde(default)]
    qps: RawQps,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQps {
    #[serde(default)]
    create_with_name: Option<RawRate>,
    #[serde(default)]
    create_without_name: Option<RawRate>,
    #[serde(default)]
    delete: Option<RawRate>,
    #[serde(default)]
    list: Option<RawRate>,
    #[serde(default)]
    list_filtered: Option<RawRate>,
    #[serde(default)]
    update: Option<RawRate>,
}

/// A rate as written; a given rate replaces the default entirely, so
/// `list: {per_second: 5}` has no per-minute cap.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRate {
    per_second: Spanned<u32>,
    #[serde(default)]
    per_minute: Option<Spanned<u32>>,
}

impl RawLimits {
    /// Zero would block the operation forever, so every number must be at least 1.
    pub(crate) fn build(&self, path: &str, diags: &mut Diags<'_>) -> Limits {
        let defaults = Limits::default();
        let max_players = match &self.max_players {
            Some(n) => positive(n, &format!("{path}.max_players"), diags),
            None => defaults.max_players,
        };
        let d = defaults.qps;
        let q = &self.qps;
        let mut rate = |raw: &Option<RawRate>, default: Rate, name: &str| match raw {
            None => default,
            Some(r) => Rate {
                per_second: positive(
                    &r.per_second,
                    &format!("{path}.qps.{name}.per_second"),
                    diags,
                ),
                per_minute: r
                    .per_minute
                    .as_ref()
                    .map(|m| positive(m, &format!("{path}.qps.{name}.per_minute"), diags)),
            },
        };
        let qps = QpsLimits {
            create_with_name: rate(&q.create_with_name, d.create_with_name, "create_with_name"),
            create_without_name: rate(
                &q.create_without_name,
                d.create_without_name,
                "create_without_name",
            ),
            delete: rate(&q.delete, d.delete, "delete"),
            list: rate(&q.list, d.list, "list"),
            list_filtered: rate(&q.list_filtered, d.list_filtered, "list_filtered"),
            update: rate(&q.update, d.update, "update"),
        };
        Limits { max_players, qps }
    }
}

/// A count that must be at least 1; zero is reported and replaced by 1.
pub(crate) fn positive(n: &Spanned<u32>, path: &str, diags: &mut Diags<'_>) -> u32 {
    if n.value == 0 {
        diags.push(n.referenced, path, "must be at least 1");
        return 1;
    }
    n.value
}
