//! The desired side of the plan: what each scene of the configuration asks of its
//! players, with the source verdicts that decide whether it wants its slate.
//!
//! Update (§1.7) changes a live player's stream URL and volume in place; everything else
//! only a Create sets, so a scene's wish is kept as the two halves of a [`Spec`].

use std::collections::BTreeMap;

use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use super::sources::slate_wanted;
use crate::agora::wire::ListedPlayer;
use crate::config::{Failback, Scene, UidRange};
use crate::model::{DEFAULT_VOLUME, Fixed, Live, SLATE_SLOT, SlotKey, SlotRecord, Spec};
use crate::probe::monitor::SourceMonitor;

/// How the scene returns to its master after a failover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailbackPolicy {
    Revertive { hold_down_ms: u64 },
    NonRevertive,
}

/// What the plan needs to know about a scene.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredScene {
    pub name: String,
    /// 1 + backups.
    pub slots: u32,
    pub priority: i32,
    /// Strikes after which a created player missing from List counts as failed.
    pub strike_threshold: u32,
    /// What its players should run: what Update can change, and what only a Create can.
    /// `live` is what the master pulls; `slot_urls` the other slots that pull something
    /// else (backup sources, the slate).
    pub live: Live,
    pub slot_urls: BTreeMap<u32, String>,
    pub fixed: Fixed,
    pub uids: UidRange,
    /// Every source is down: the slate slot wants a player.
    pub slate: bool,
    pub failback: FailbackPolicy,
}

impl DesiredScene {
    /// The slots that want a player: master, backups, and the slate when wanted.
    pub fn slot_numbers(&self) -> impl Iterator<Item = u32> + use<> {
        (0..self.slots).chain(self.slate.then_some(SLATE_SLOT))
    }

    pub fn wants(&self, slot: u32) -> bool {
        slot < self.slots || (slot == SLATE_SLOT && self.slate)
    }

    /// What the player of `slot` should run.
    pub fn live_at(&self, slot: u32) -> Live {
        match self.slot_urls.get(&slot) {
            Some(url) => Live {
                stream_url: url.clone(),
                ..self.live.clone()
            },
            None => self.live.clone(),
        }
    }
}

/// The desired scenes of a project, as the plan sees them. `monitor` is the source
/// probing's verdicts, when it is on: a scene whose sources are all down wants its slate.
pub fn desired_scenes(
    project: &str,
    scenes: &[&Scene],
    monitor: Option<&SourceMonitor>,
    records: &BTreeMap<SlotKey, SlotRecord>,
    players: &[ListedPlayer],
) -> Vec<DesiredScene> {
    scenes
        .iter()
        .map(|s| {
            let (live, fixed) = desired_spec(s, 0);
            let slot_urls = (1..=s.backups)
                .chain([SLATE_SLOT])
                .map(|slot| (slot, s.slot_url(slot)))
                .filter(|(_, url)| *url != live.stream_url)
                .map(|(slot, url)| (slot, url.to_string()))
                .collect();
            DesiredScene {
                name: s.name.clone(),
                slots: s.backups + 1,
                priority: s.priority,
                strike_threshold: s.strike_threshold,
                live,
                slot_urls,
                fixed,
                uids: s.uids,
                slate: monitor.is_some_and(|m| slate_wanted(project, s, m, records, players)),
                failback: match s.failback {
                    Failback::Revertive => FailbackPolicy::Revertive {
                        hold_down_ms: s.hold_down.as_millis() as u64,
                    },
                    Failback::NonRevertive => FailbackPolicy::NonRevertive,
                },
            }
        })
        .collect()
}

/// What a scene asks of the player of `slot` now (slots differ only in their source).
pub fn desired_spec(scene: &Scene, slot: u32) -> (Live, Fixed) {
    let live = Live {
        stream_url: scene.slot_url(slot).to_string(),
        volume: scene.volume,
    };
    let fixed = Fixed {
        channel: scene.channel.clone(),
        region: scene.region,
        idle_timeout: scene.idle_timeout,
        token_sha256: scene
            .token
            .as_ref()
            .map(|t| hex::encode(Sha256::digest(t.expose_secret().as_bytes()))),
    };
    (live, fixed)
}

/// What a player created now for `slot` of `scene` runs with: the scene's spec, at
/// Agora's default volume (a different configured volume follows as an Update).
pub fn created_spec(scene: &Scene, slot: u32) -> Spec {
    let (live, fixed) = desired_spec(scene, slot);
    Spec {
        live: Live {
            volume: DEFAULT_VOLUME,
            ..live
        },
        fixed,
    }
}
