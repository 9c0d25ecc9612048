//! The plan: a pure function from desired and observed state to actions and the on-air
//! choice.
//!
//! This is the only place that decides. It sees the scenes (desired), the latest complete
//! List (observed), the store's slot records (what pullkeeper asked for) and what is in
//! flight, and returns what to do and which player each scene has on air. It never learns *why* it runs (level-triggered, as
//! kube-runtime), so running it twice on the same input gives the same answer and running
//! it again after its actions took effect gives none.
//!
//! Rules, each a test below:
//! - one player per slot (slot 0 master, 1..=backups), named `{prefix}_{scene}_{slot}_{gen}`;
//! - a slot with no player gets one (after a lost store, only once List can show every
//!   player created before the start); a player List shows under a slot's name is
//!   adopted, and so is a UID List shows differently from the record;
//! - a created player absent from List is only missing once the List lag has passed and
//!   it has collected its scene's strike threshold of consecutive absences;
//!   a missing intent is retried under the same name and UID (a 409 makes that safe),
//!   at once if Agora refused it (nothing was created),
//!   a missing created player is replaced under the next generation and a fresh UID;
//! - a `failed` or `stopped` player is replaced, and deleted once its successor shows up
//!   (create, then delete), or at once if the quota has no room for the successor;
//! - an older generation is deleted once its successor shows up or it has failed
//!   (make before break, so a slot never goes dark on purpose);
//! - owned players of removed scenes or slots are deleted; foreign players are never touched;
//! - creates never take live players past the quota; masters go first, then priority;
//! - with source probing on, a replacement waits until its slot's source is cleared
//!   (found up or unknown): see `hold`. A wanted slate is one more slot;
//! - a player whose stream URL or volume is no longer the scene's gets an Update; one
//!   whose create-only settings changed is replaced, one slot of a scene at a time,
//!   backups first, the old player deleted only once its successor runs (see `rollout`);
//! - the on-air player is the master while it runs, else the first running backup, with
//!   the scene's failback policy deciding the way back; a running player whose source is
//!   down gives the air to one whose source is not (see `onair`);
//! - an operator's steering is input like the rest (see `steering`): a scene in
//!   maintenance gets no create, delete or update; a pin keeps the air on its slot while
//!   its player runs; a manual switch or a drill is honoured or refused here; a replace
//!   drill's master counts as failed.
//!
//! The work is split the way it is decided: [`slot`] decides each slot on its own,
//! [`admission`] then admits creates under the quota, holds and ordering, and [`onair`]
//! chooses every scene's on-air player, with the operator's [`steering`] on it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::agora::wire::ListedPlayer;
use crate::model::{OnAir, SlotKey, SlotRecord, parse_name};

mod actions;
mod admission;
mod desired;
mod hold;
mod onair;
mod rollout;
mod slot;
mod sources;
mod steering;

pub use actions::{Action, Adopt, Create, Delete, OnAirDecision, Plan, Update};
pub use desired::{DesiredScene, created_spec, desired_scenes, desired_spec};
pub use sources::{
    SlotSource, cleared_slots, configured_sources, held_sources, scene_sources, slot_sources,
};
pub use steering::{OnAirRequest, Steering};

/// Everything the plan decides from. Borrowed, so planning allocates only its answer.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    pub project: &'a str,
    pub prefix: &'a str,
    pub scenes: &'a [DesiredScene],
    pub records: &'a BTreeMap<SlotKey, SlotRecord>,
    /// The latest complete List, with the effects of finished deletes already removed.
    pub observed: &'a [ListedPlayer],
    /// Since when (Unix ms) each observed player (by name) has been running.
    pub running_since: &'a HashMap<String, u64>,
    /// Each scene's last on-air record; a scene without one has had nothing on air.
    pub onair: &'a BTreeMap<String, OnAir>,
    /// Slots with a create or adoption in flight: decided already, not decided again.
    pub busy_slots: &'a BTreeSet<SlotKey>,
    /// Player ids with a delete in flight.
    pub busy_players: &'a BTreeSet<String>,
    /// Slots whose last Update Agora refused for good: no Update is decided for them
    /// while this holds, but they are decided otherwise (a failed player is replaced).
    pub held_updates: &'a BTreeSet<SlotKey>,
    /// Player ids pullkeeper deleted within the List lag: gone, whatever a List says.
    pub deleted: &'a BTreeSet<String>,
    /// Consecutive List strikes per slot's current player (see `observe`).
    pub strikes: &'a BTreeMap<SlotKey, u32>,
    pub now_ms: u64,
    pub list_lag_ms: u64,
    pub max_players: u32,
    /// Until this instant a slot with neither a record nor a listed player gets none:
    /// the store was lost at start, and a player created just before may not show in
    /// List yet (§1.6). 0 when the store was intact.
    pub unseen_until_ms: u64,
    /// With source probing on, the slots whose source was found up or unknown: only they
    /// may be replaced. `None`: probing is off and every replacement proceeds.
    pub cleared: Option<&'a BTreeSet<SlotKey>>,
    /// Slots whose source was probed down or came back (see `onair`); empty without
    /// source probing.
    pub sources: &'a BTreeMap<SlotKey, SlotSource>,
    /// The operator's hand on scenes, by scene name; a scene without one is unsteered.
    pub steering: &'a BTreeMap<String, Steering>,
}

impl PlanInput<'_> {
    /// Whether `scene` is in maintenance: nothing is created, deleted or updated for it.
    fn maintained(&self, scene: &str) -> bool {
        self.steering.get(scene).is_some_and(|s| s.maintenance)
    }

    /// Whether a replace drill of `scene` counts its player `name` as failed.
    fn drilled(&self, scene: &str, name: &str) -> bool {
        self.steering
            .get(scene)
            .and_then(|s| s.failed.as_deref())
            .is_some_and(|failed| failed == name)
    }
}

/// An owned player from the List, with its parsed name.
#[derive(Debug)]
struct Owned<'a> {
    player: &'a ListedPlayer,
    name: &'a str,
    generation: u64,
}

/// Owned players by slot, oldest generation first; everything else in the List is
/// foreign and never touched.
type BySlot<'a> = BTreeMap<SlotKey, Vec<Owned<'a>>>;

pub fn plan(input: &PlanInput<'_>) -> Plan {
    let by_slot = owned_by_slot(input);
    let mut decided = slot::Decided::default();
    for scene in input.scenes.iter().filter(|s| !input.maintained(&s.name)) {
        slot::decide_scene(input, scene, &by_slot, &mut decided);
    }
    let mut plan = admission::admit(input, &by_slot, decided);
    for scene in input.scenes {
        let (decision, due) = steering::decide(input, scene, &by_slot);
        if let Some(at) = due {
            plan.onair_due_at_ms = Some(plan.onair_due_at_ms.map_or(at, |d| d.min(at)));
        }
        plan.onair.push(decision);
    }
    plan
}

fn owned_by_slot<'a>(input: &PlanInput<'a>) -> BySlot<'a> {
    let mut by_slot: BySlot<'a> = BTreeMap::new();
    for player in input.observed {
        let Some(name) = player.name.as_deref() else {
            continue;
        };
        if let Some(parsed) = parse_name(input.prefix, name) {
            let key = SlotKey::new(input.project, &parsed.scene, parsed.slot);
            by_slot.entry(key).or_default().push(Owned {
                player,
                name,
                generation: parsed.generation,
            });
        }
    }
    for players in by_slot.values_mut() {
        players.sort_by_key(|o| o.generation);
    }
    by_slot
}

#[cfg(test)]
mod tests;
