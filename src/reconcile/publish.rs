//! Turning the controller's picture into what others read: scene status (`/v1/scenes`),
//! the on-air decision, and the per-scene metrics.

use std::collections::{BTreeMap, HashMap};

use crate::agora::model::ListedPlayer;
use crate::config::{Failback, Scene};
use crate::model::{OnAir, Switch, is_running, role};
use crate::model::{SLATE_SLOT, parse_name};
use crate::model::{SceneStatus, SlotStatus, SourceStatus};
use crate::model::{SlotKey, SlotRecord};
use crate::reconcile::onair::{self, FailbackPolicy, SlotView};
use crate::store::Store;
use crate::telemetry::Metrics;

/// What publishing needs to see, borrowed from the controller.
pub struct Picture<'a> {
    pub project: &'a str,
    /// The project's player name prefix, to find a slot's older generations.
    pub prefix: &'a str,
    pub scenes: &'a [&'a Scene],
    pub records: &'a BTreeMap<SlotKey, SlotRecord>,
    pub players: &'a [ListedPlayer],
    pub strikes: &'a BTreeMap<SlotKey, u32>,
    pub over_quota: &'a [SlotKey],
    /// Slots whose replacement waits for their source.
    pub held: &'a [SlotKey],
    /// Per scene: whether a source is down, and each source's last verdict; empty while
    /// source probing is off.
    pub sources: &'a BTreeMap<String, (bool, Vec<SourceStatus>)>,
    pub now_ms: u64,
}

/// Memory that publishing keeps between passes.
#[derive(Default)]
pub struct Publisher {
    /// Since when each player (by name) has been running.
    running_since: HashMap<String, u64>,
    /// On-air state per scene, loaded from the store on first use.
    onair: HashMap<String, OnAir>,
}

/// What one publication produced.
pub struct Published {
    pub statuses: Vec<SceneStatus>,
    /// On-air changes, for the app webhook.
    pub switches: Vec<Switch>,
    /// When (Unix ms) an on-air decision falls due with nothing else happening.
    pub wake_at_ms: Option<u64>,
}

impl Publisher {
    /// Builds every scene's status, decides on-air players (persisting changes), updates
    /// metrics, and returns the status and the on-air changes.
    pub fn publish(
        &mut self,
        picture: &Picture<'_>,
        store: &Store,
        metrics: &Metrics,
    ) -> Published {
        let by_name: HashMap<&str, &ListedPlayer> = picture
            .players
            .iter()
            .filter_map(|p| Some((p.name.as_deref()?, p)))
            .collect();
        self.running_since.retain(|name, _| {
            by_name
                .get(name.as_str())
                .is_some_and(|p| is_running(p.status))
        });
        for (name, p) in &by_name {
            if is_running(p.status) {
                self.running_since
                    .entry((*name).to_string())
                    .or_insert(picture.now_ms);
            }
        }

        let mut statuses = Vec::new();
        let mut switches = Vec::new();
        let mut wake_at_ms: Option<u64> = None;
        for scene in picture.scenes {
            let mut slots = Vec::new();
            let mut views = Vec::new();
            // The slate, while it has a player, is a slot like the others: on air when
            // nothing else runs.
            let slate = SlotKey::new(picture.project, &scene.name, SLATE_SLOT);
            let slate = picture.records.contains_key(&slate).then_some(SLATE_SLOT);
            for slot in (0..=scene.backups).chain(slate) {
                let key = SlotKey::new(picture.project, &scene.name, slot);
                let record = picture.records.get(&key);
                let listed = record.and_then(|r| by_name.get(r.name.as_str()));
                let status = match (record, listed) {
                    (_, Some(p)) => p.status.map_or("unknown", |s| s.as_str()).to_string(),
                    (Some(_), None) => "pending".to_string(),
                    (None, None) => "missing".to_string(),
                };
                let uid = record.map(|r| r.uid).filter(|&u| u != 0);
                let current = SlotView {
                    slot,
                    uid,
                    running_since_ms: record.and_then(|r| self.running_since.get(&r.name).copied()),
                };
                views.push(match record {
                    Some(r) if current.running_since_ms.is_none() => self
                        .outgoing(picture, &key, r.generation)
                        .unwrap_or(current),
                    _ => current,
                });
                slots.push(SlotStatus {
                    slot,
                    role: role(slot),
                    name: record.map(|r| r.name.clone()),
                    uid,
                    id: record.and_then(|r| r.id.clone()),
                    generation: record.map(|r| r.generation),
                    strikes: picture.strikes.get(&key).copied().unwrap_or(0),
                    status,
                    source: scene.source_label(slot),
                    held: picture.held.contains(&key),
                });
            }
            let healthy = views
                .iter()
                .filter(|v| v.running_since_ms.is_some())
                .count() as u32;
            let policy = match scene.failback {
                Failback::Revertive => FailbackPolicy::Revertive {
                    hold_down_ms: scene.hold_down.as_millis() as u64,
                },
                Failback::NonRevertive => FailbackPolicy::NonRevertive,
            };
            let onair = self.decide(picture, store, scene, policy, &views, &mut switches);
            if let Some(at) = onair::next_change_at(&onair, &views, policy) {
                wake_at_ms = Some(wake_at_ms.map_or(at, |w| w.min(at)));
            }
            let (source_down, sources) = picture
                .sources
                .get(&scene.name)
                .cloned()
                .unwrap_or_default();
            statuses.push(SceneStatus {
                name: scene.name.clone(),
                project: picture.project.to_string(),
                channel: scene.channel.clone(),
                active_uid: onair.uid,
                active_slot: onair.slot,
                active_version: onair.version,
                switches: onair.switches,
                active_since_ms: onair.since_ms,
                healthy_players: healthy,
                over_quota_slots: picture
                    .over_quota
                    .iter()
                    .filter(|k| k.scene == scene.name)
                    .map(|k| k.slot)
                    .collect(),
                source_down,
                sources,
                slots,
            });
        }
        metrics
            .tasks_active
            .with_label_values(&[picture.project])
            .set(picture.players.len() as i64);
        metrics
            .slots_over_quota
            .with_label_values(&[picture.project])
            .set(picture.over_quota.len() as i64);
        Published {
            statuses,
            switches,
            wake_at_ms,
        }
    }

    /// The slot as its older generation still running shows it: while a replacement is
    /// not running yet (a rollout step), the player it replaces stays on air, so apps
    /// switch once, from the old UID straight to the new.
    fn outgoing(&self, picture: &Picture<'_>, key: &SlotKey, generation: u64) -> Option<SlotView> {
        picture
            .players
            .iter()
            .filter(|p| is_running(p.status))
            .filter_map(|p| {
                let name = p.name.as_deref()?;
                let parsed = parse_name(picture.prefix, name)?;
                let older = parsed.scene == key.scene
                    && parsed.slot == key.slot
                    && parsed.generation < generation;
                let uid = u32::try_from(p.uid?).ok().filter(|&u| u != 0)?;
                older.then(|| {
                    (
                        parsed.generation,
                        uid,
                        self.running_since.get(name).copied(),
                    )
                })
            })
            .max_by_key(|(g, _, _)| *g)
            .map(|(_, uid, since)| SlotView {
                slot: key.slot,
                uid: Some(uid),
                running_since_ms: since,
            })
    }

    fn decide(
        &mut self,
        picture: &Picture<'_>,
        store: &Store,
        scene: &Scene,
        policy: FailbackPolicy,
        views: &[SlotView],
        switches: &mut Vec<Switch>,
    ) -> OnAir {
        let previous = *self.onair.entry(scene.name.clone()).or_insert_with(|| {
            store
                .onair(picture.project, &scene.name)
                .ok()
                .flatten()
                .unwrap_or_default()
        });
        let (next, reason) = onair::choose(&previous, views, policy, picture.now_ms);
        if let Some(reason) = reason {
            if let Err(e) = store.put_onair(picture.project, &scene.name, &next) {
                tracing::error!(scene = %scene.name, error = %e, "cannot persist the on-air state");
            }
            tracing::info!(
                scene = %scene.name,
                channel = %scene.channel,
                slot = ?next.slot,
                uid = ?next.uid,
                previous_uid = ?previous.uid,
                version = next.version,
                reason = ?reason,
                "on-air player changed"
            );
            switches.push(Switch {
                scene: scene.name.clone(),
                channel: scene.channel.clone(),
                previous_uid: previous.uid,
                onair: next,
                reason,
            });
            self.onair.insert(scene.name.clone(), next);
        }
        next
    }
}
