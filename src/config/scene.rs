//! One scene of the scenes file, as written ([`RawScene`]: every value with its location,
//! so that each rule in `validate` can point at the line) and as checked ([`Scene`]).

use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::secret::SecretRef;
use super::settings::{AppWebhook, RawAppWebhook, Settings};
use crate::model::{Region, SLATE_SLOT};

/// One stream pullkeeper keeps alive: a main player plus `backups` standby players.
#[derive(Debug, Clone)]
pub struct Scene {
    /// `[a-z0-9-]`, 1..=32 bytes, so player names `{prefix}_{scene}_{slot}_{gen}` stay
    /// within Agora's 64 bytes (8 + 1 + 32 + 1 + 2 + 1 + 10 digits of generation = 55).
    pub name: String,
    pub project: String,
    pub channel: String,
    /// What the master pulls: the primary source.
    pub stream_url: String,
    /// What backups 1, 2, … pull, in order; backups beyond the list pull the primary.
    pub backup_stream_urls: Vec<String>,
    /// An image or looping file a slot plays while every source is down (§1.4 accepts
    /// JPEG/PNG URLs), so viewers see a holding card instead of a dead channel.
    pub slate_url: Option<String>,
    pub region: Region,
    /// Standby players in addition to the main one, 0..=10.
    pub backups: u32,
    /// Higher is admitted first when the project's player quota is short.
    pub priority: i32,
    /// Seconds, 5..=600. Agora would clamp out-of-range values; pullkeeper refuses them so
    /// the configured value is the one in force.
    pub idle_timeout: u32,
    /// RTC token, when the App Certificate is enabled (§1.4).
    pub token: Option<SecretString>,
    /// Audio volume, 0..=200 (§1.7); default 100, Agora's own. Create cannot set it, so a
    /// new player gets it by Update, as does a reload that changes it.
    pub volume: u32,
    /// UIDs this scene's players use; they must be unique in the channel.
    pub uids: UidRange,
    /// What the apps do once the master is healthy again after a failover.
    pub failback: Failback,
    /// How long a recovered master must run before a revertive scene returns to it,
    /// 0s..=10m (0 returns at once); default 30s.
    pub hold_down: Duration,
    /// Consecutive 404/5xx answers or List absences before a player counts as failed,
    /// 1..=10 (YAML `strikes`); default 3.
    pub strike_threshold: u32,
    /// This scene's own app webhook; `None` uses [`Settings::app_webhook`].
    pub app_webhook: Option<AppWebhook>,
    /// `maintenance: true`: no create, delete or update for the scene while the file
    /// says so; its players keep running.
    pub maintenance: bool,
}

impl Scene {
    /// The URL the player of `slot` pulls.
    pub fn slot_url(&self, slot: u32) -> &str {
        if slot == SLATE_SLOT {
            return self.slate_url.as_deref().unwrap_or(&self.stream_url);
        }
        slot.checked_sub(1)
            .and_then(|i| self.backup_stream_urls.get(i as usize))
            .unwrap_or(&self.stream_url)
    }

    /// The bounded name of a slot's source in metrics and status: `primary`, `backup1`…
    /// (by position in `backup_stream_urls`), or `slate`.
    pub fn source_label(&self, slot: u32) -> String {
        if slot == SLATE_SLOT {
            return "slate".to_string();
        }
        match slot.checked_sub(1) {
            Some(i) if (i as usize) < self.backup_stream_urls.len() => format!("backup{}", i + 1),
            _ => "primary".to_string(),
        }
    }

    /// Every stream source (not the slate), labelled, primary first.
    pub fn sources(&self) -> Vec<(String, &str)> {
        std::iter::once(("primary".to_string(), self.stream_url.as_str()))
            .chain(
                self.backup_stream_urls
                    .iter()
                    .enumerate()
                    .map(|(i, u)| (format!("backup{}", i + 1), u.as_str())),
            )
            .collect()
    }

    /// The webhook on-air changes of this scene go to: its own, else the global one.
    pub fn effective_app_webhook<'a>(&'a self, settings: &'a Settings) -> Option<&'a AppWebhook> {
        self.app_webhook.as_ref().or(settings.app_webhook.as_ref())
    }
}

/// After a master failure the apps watch a backup; this says whether they go back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Failback {
    /// Return to the master once it has run for `hold_down` (YAML `revertive`, the default).
    #[default]
    Revertive,
    /// Stay on the backup while it is healthy (YAML `non-revertive`).
    NonRevertive,
}

/// Inclusive range of RTC UIDs; `1 <= start <= end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UidRange {
    pub start: u32,
    pub end: u32,
}

impl UidRange {
    pub fn overlaps(&self, other: &UidRange) -> bool {
        self.start <= other.end && other.start <= self.end
    }
}

pub(crate) type Text = Spanned<String>;

/// A scene as written. Numbers are wide (`i64`) so that out-of-range values get a range
/// message instead of a bare type error.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScene {
    pub name: Text,
    pub project: Text,
    pub channel: Text,
    pub stream_url: Text,
    #[serde(default)]
    pub backup_stream_urls: Option<Spanned<Vec<Text>>>,
    #[serde(default)]
    pub slate_url: Option<Text>,
    pub region: Text,
    #[serde(default)]
    pub backups: Option<Spanned<i64>>,
    #[serde(default)]
    pub priority: Option<Spanned<i32>>,
    #[serde(default)]
    pub idle_timeout: Option<Spanned<i64>>,
    #[serde(default)]
    pub token: Option<Spanned<SecretRef>>,
    #[serde(default)]
    pub volume: Option<Spanned<i64>>,
    pub uids: Spanned<RawUids>,
    #[serde(default)]
    pub failback: Option<Failback>,
    #[serde(default)]
    pub hold_down: Option<Text>,
    #[serde(default)]
    pub strikes: Option<Spanned<i64>>,
    #[serde(default)]
    pub app_webhook: Option<RawAppWebhook>,
    #[serde(default)]
    pub maintenance: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUids {
    pub start: Spanned<i64>,
    pub end: Spanned<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_ranges() {
        let r = UidRange { start: 10, end: 19 };
        assert!(r.overlaps(&UidRange { start: 19, end: 30 }));
        assert!(!r.overlaps(&UidRange { start: 20, end: 30 }));
    }
}
