//! Turning a pass into what others read: each scene's status (`/v1/scenes`), the
//! announcement of an on-air change (logs and the app webhook), the project's gauges
//! (free UIDs included), and a log line when the slots waiting for quota or for their
//! source change.
//!
//! Nothing here decides: the on-air player comes from the plan.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use tokio::time::Instant;

use crate::agora::wire::ListedPlayer;
use crate::config::Scene;
use crate::model::{
    Event, EventKind, OnAir, SLATE_SLOT, SceneControl, SceneStatus, SlotKey, SlotRecord,
    SlotStatus, SourceStatus, Switch, role,
};
use crate::reconcile::events::ProjectEvents;
use crate::reconcile::execute::Executor;
use crate::reconcile::plan::OnAirDecision;
use crate::telemetry::Metrics;

/// What a pass publishes from, borrowed from the controller.
pub struct Publication<'a> {
    pub project: &'a str,
    pub scenes: &'a [&'a Scene],
    pub records: &'a BTreeMap<SlotKey, SlotRecord>,
    pub players: &'a [ListedPlayer],
    /// Per slot, the larger of its List strikes and its player's other strikes.
    pub strikes: &'a BTreeMap<SlotKey, u32>,
    pub over_quota: &'a [SlotKey],
    /// Slots whose replacement waits for their source.
    pub held: &'a [SlotKey],
    /// Per scene: whether a source is down, and each source's last verdict; empty while
    /// source probing is off.
    pub sources: &'a BTreeMap<String, (bool, Vec<SourceStatus>)>,
    /// The plan's on-air decision per scene, in the order of `scenes`.
    pub onair: &'a [OnAirDecision],
    /// Slots whose last create or update Agora refused for good, with its message.
    pub rejected: &'a BTreeMap<SlotKey, String>,
    /// Agora refuses the project's credentials (401).
    pub unauthorized: bool,
    /// Each scene's pin and maintenance.
    pub controls: &'a BTreeMap<String, SceneControl>,
    /// The running drill's scene and id, if any.
    pub drill: Option<(&'a str, &'a str)>,
}

/// Every scene's status, and the project's gauges set.
pub fn statuses(publication: &Publication<'_>, metrics: &Metrics) -> Vec<SceneStatus> {
    let p = publication;
    let by_name: HashMap<&str, &ListedPlayer> = p
        .players
        .iter()
        .filter_map(|player| Some((player.name.as_deref()?, player)))
        .collect();
    let decisions: HashMap<&str, &OnAirDecision> =
        p.onair.iter().map(|d| (d.scene.as_str(), d)).collect();
    let statuses = p
        .scenes
        .iter()
        .map(|scene| {
            let slate = SlotKey::new(p.project, &scene.name, SLATE_SLOT);
            let slate = p.records.contains_key(&slate).then_some(SLATE_SLOT);
            let slots = (0..=scene.backups)
                .chain(slate)
                .map(|slot| slot_status(p, &by_name, scene, slot))
                .collect();
            let decision = decisions.get(scene.name.as_str());
            let onair = decision.map(|d| d.onair).unwrap_or_default();
            let (source_down, sources) = p.sources.get(&scene.name).cloned().unwrap_or_default();
            SceneStatus {
                name: scene.name.clone(),
                project: p.project.to_string(),
                channel: scene.channel.clone(),
                active_uid: onair.uid,
                active_slot: onair.slot,
                active_version: onair.version,
                switches: onair.switches,
                active_since_ms: onair.since_ms,
                active_reason: onair.reason,
                pinned_slot: p.controls.get(&scene.name).and_then(|c| c.pinned),
                maintenance: p.controls.get(&scene.name).and_then(|c| c.maintenance),
                drill: p
                    .drill
                    .filter(|(s, _)| *s == scene.name)
                    .map(|(_, id)| id.to_string()),
                healthy_players: decision.map_or(0, |d| d.healthy),
                over_quota_slots: p
                    .over_quota
                    .iter()
                    .filter(|k| k.scene == scene.name)
                    .map(|k| k.slot)
                    .collect(),
                source_down,
                sources,
                unauthorized: p.unauthorized,
                slots,
            }
        })
        .collect();
    metrics
        .tasks_active
        .with_label_values(&[p.project])
        .set(p.players.len() as i64);
    metrics
        .slots_over_quota
        .with_label_values(&[p.project])
        .set(p.over_quota.len() as i64);
    metrics
        .slots_rejected
        .with_label_values(&[p.project])
        .set(p.rejected.len() as i64);
    statuses
}

fn slot_status(
    p: &Publication<'_>,
    by_name: &HashMap<&str, &ListedPlayer>,
    scene: &Scene,
    slot: u32,
) -> SlotStatus {
    let key = SlotKey::new(p.project, &scene.name, slot);
    let record = p.records.get(&key);
    let listed = record.and_then(|r| by_name.get(r.name.as_str()));
    let rejected = p.rejected.get(&key);
    let status = match (record, listed) {
        (_, Some(player)) => player.status.map_or("unknown", |s| s.as_str()),
        (_, None) if rejected.is_some() => "rejected",
        (Some(_), None) => "pending",
        (None, None) => "missing",
    };
    SlotStatus {
        slot,
        role: role(slot),
        name: record.map(|r| r.name.clone()),
        uid: record.map(|r| r.uid).filter(|&u| u != 0),
        id: record.and_then(|r| r.id.clone()),
        generation: record.map(|r| r.generation),
        strikes: p.strikes.get(&key).copied().unwrap_or(0),
        status,
        source: scene.source_label(slot),
        held: p.held.contains(&key),
        rejected: rejected.cloned(),
    }
}

/// The announcement of a changed on-air player (logged here), or `None` if it did not
/// change.
pub fn switch(scene: &Scene, decision: &OnAirDecision) -> Option<Switch> {
    let reason = decision.reason?;
    let (next, previous) = (decision.onair, decision.previous);
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
    Some(Switch {
        project: scene.project.clone(),
        scene: scene.name.clone(),
        channel: scene.channel.clone(),
        previous_uid: previous.uid,
        onair: next,
        reason,
    })
}

/// The event of an announced switch from `previous`.
pub fn switch_event(events: &ProjectEvents, switch: &Switch, previous: &OnAir) -> Event {
    let next = switch.onair;
    let kind = EventKind::Switched {
        from_slot: previous.slot,
        from_uid: previous.uid,
        to_slot: next.slot,
        to_uid: next.uid,
        reason: switch.reason,
        version: next.version,
    };
    let mut event = events.at_now(&switch.scene, kind);
    event.slot = next.slot;
    event.uid = next.uid;
    event
}

/// The slots whose hold changed from `before` to `now`: `true` for newly held, `false`
/// for released.
pub fn hold_changes<'a>(
    before: &'a [SlotKey],
    now: &'a [SlotKey],
) -> impl Iterator<Item = (&'a SlotKey, bool)> {
    let held = now
        .iter()
        .filter(|k| !before.contains(k))
        .map(|k| (k, true));
    let released = before
        .iter()
        .filter(|k| !now.contains(k))
        .map(|k| (k, false));
    held.chain(released)
}

/// The slots last logged as waiting, so that only changes are logged.
#[derive(Default)]
pub struct Waiting {
    over_quota: Vec<SlotKey>,
    held: Vec<SlotKey>,
}

impl Waiting {
    pub fn note_over_quota(&mut self, project: &str, max_players: u32, over_quota: &[SlotKey]) {
        if over_quota != self.over_quota {
            let slots: Vec<String> = over_quota.iter().map(ToString::to_string).collect();
            tracing::warn!(project = %project, max_players, ?slots, "slots waiting for quota changed");
            self.over_quota = over_quota.to_vec();
        }
    }

    pub fn note_held(&mut self, project: &str, held: &[SlotKey]) {
        if held != self.held {
            let slots: Vec<String> = held.iter().map(ToString::to_string).collect();
            tracing::info!(project = %project, ?slots,
                "replacements waiting for their source changed");
            self.held = held.to_vec();
        }
    }
}

/// How often `pullkeeper_scene_uids_free` is recomputed: it reads every known UID of each
/// scene's range, too much for every poll at scale, and a quarantine lasts minutes.
const UIDS_FREE_EVERY: Duration = Duration::from_secs(30);

/// `pullkeeper_scene_uids_free` of one project's scenes.
#[derive(Default)]
pub struct UidsFree {
    /// When it is next recomputed (`None`: at the next List).
    due: Option<Instant>,
    /// What was last published, kept for a scene whose count cannot be read this time.
    last: Vec<(String, u64)>,
}

impl UidsFree {
    /// Sets the gauge for each scene of `project`, at most every [`UIDS_FREE_EVERY`]; a
    /// scene no longer configured leaves it.
    pub fn refresh(&mut self, project: &str, scenes: &[Scene], exec: &Executor, metrics: &Metrics) {
        let now = Instant::now();
        if self.due.is_some_and(|due| now < due) {
            return;
        }
        self.due = Some(now + UIDS_FREE_EVERY);
        let mut counts = Vec::new();
        for scene in scenes.iter().filter(|s| s.project == project) {
            match exec.free_uids(scene) {
                Ok(free) => counts.push((scene.name.clone(), free)),
                Err(e) => {
                    tracing::error!(project, scene = %scene.name, error = %e, "cannot count free UIDs");
                    if let Some(last) = self.last.iter().find(|(name, _)| name == &scene.name) {
                        counts.push(last.clone());
                    }
                }
            }
        }
        metrics.scene_uids_free.set_project(project, counts.clone());
        self.last = counts;
    }
}
