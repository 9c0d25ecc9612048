//! The plan: a pure function from desired and observed state to actions.
//!
//! This is the only place that decides. It sees the scenes (desired), the latest complete
//! List (observed), the store's slot records (what pullkeeper asked for) and what is in
//! flight, and returns what to do. It never learns *why* it runs (level-triggered, as
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
//!   backups first, the old player deleted only once its successor runs (see `rollout`).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use crate::agora::model::ListedPlayer;
use crate::config::UidRange;
use crate::model::{Fixed, Live, is_dead, is_running};
use crate::model::{Phase, SlotKey, SlotRecord};
use crate::model::{SLATE_SLOT, format_name, parse_name};
use crate::reconcile::{hold, rollout};

mod actions;

pub use actions::{Action, DeleteReason, Plan, Rollout};

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

/// Everything the plan decides from. Borrowed, so planning allocates only its answer.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    pub project: &'a str,
    pub prefix: &'a str,
    pub scenes: &'a [DesiredScene],
    pub records: &'a BTreeMap<SlotKey, SlotRecord>,
    /// The latest complete List, with the effects of finished deletes already removed.
    pub observed: &'a [ListedPlayer],
    /// Slots with a create or adoption in flight: decided already, not decided again.
    pub busy_slots: &'a BTreeSet<SlotKey>,
    /// Player ids with a delete in flight.
    pub busy_players: &'a BTreeSet<String>,
    /// Player ids pullkeeper deleted within the List lag: gone, whatever a List says.
    pub deleted: &'a BTreeSet<String>,
    /// Consecutive strikes per slot's current player (see `health`).
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
}

/// An owned player from the List, with its parsed name.
struct Owned<'a> {
    player: &'a ListedPlayer,
    name: &'a str,
    generation: u64,
}

pub fn plan(input: &PlanInput<'_>) -> Plan {
    let desired: BTreeMap<&str, &DesiredScene> =
        input.scenes.iter().map(|s| (s.name.as_str(), s)).collect();

    // Group owned players by slot; everything else in the List is foreign.
    let mut by_slot: BTreeMap<SlotKey, Vec<Owned<'_>>> = BTreeMap::new();
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

    let mut deletes = Vec::new();
    let mut adopts = Vec::new();
    let mut updates = Vec::new();
    let mut creates: Vec<(i32, SlotKey, Action)> = Vec::new();
    let mut rollouts: Vec<(i32, SlotKey, Action)> = Vec::new();
    let mut pending_live = 0u32;
    let mut dead_waiting: Vec<(SlotKey, &Owned<'_>)> = Vec::new();
    let mut recheck_at_ms: Option<u64> = None;
    let mut recheck_at = |at: u64| recheck_at_ms = Some(recheck_at_ms.map_or(at, |r| r.min(at)));
    let mut delete = |o: &Owned<'_>, reason| {
        if !input.busy_players.contains(&o.player.id) {
            deletes.push(Action::Delete {
                id: o.player.id.clone(),
                name: o.name.to_string(),
                reason,
            });
        }
    };

    for scene in input.scenes {
        // Slots whose running players no longer fit the scene, and whether the scene has
        // anything between two players; a rollout step waits for the latter.
        let mut unfit: Vec<(u32, u64, Rollout)> = Vec::new();
        let mut settled = true;
        for slot in scene.slot_numbers() {
            let key = SlotKey::new(input.project, &scene.name, slot);
            let owned = by_slot.get(&key).map(Vec::as_slice).unwrap_or(&[]);
            let record = input.records.get(&key);
            let observed_current = record.and_then(|r| owned.iter().find(|o| o.name == r.name));
            if input.busy_slots.contains(&key) {
                settled = false;
                if observed_current.is_none() {
                    pending_live += 1;
                }
                continue;
            }
            // The store is behind what Agora shows (lost or restored store): adopt.
            let ahead = owned
                .last()
                .filter(|n| record.is_none_or(|r| r.generation < n.generation));
            let decision = if let Some(n) = ahead {
                adopts.push(adopt(&key, n));
                settled = false;
                Current::Player(n.generation, n)
            } else if let Some(r) = record {
                match observed_current {
                    // The dead player is older than its replacement now, so the
                    // generation sweep below deletes it.
                    Some(o) if is_dead(o.player.status) => {
                        let next = r.generation + 1;
                        creates.push((scene.priority, key.clone(), fresh(input, &key, next, None)));
                        Current::Pending(next)
                    }
                    Some(o) => {
                        // A 409 names the player but not its UID; List tells the UID.
                        let uid_differs = o.player.uid.is_some_and(|u| u != u64::from(r.uid));
                        let known = r.phase == Phase::Created
                            && r.id.as_deref() == Some(&o.player.id)
                            && !uid_differs;
                        match &r.spec {
                            Some(spec) if known => {
                                updates.extend(rollout::update(
                                    &key,
                                    o.name,
                                    o.player,
                                    spec,
                                    &scene.live_at(slot),
                                ));
                                let changed = rollout::unfit(r, spec, &scene.fixed, scene.uids);
                                if !changed.is_empty() {
                                    let why = Rollout {
                                        replaces: o.name.to_string(),
                                        changed,
                                    };
                                    unfit.push((slot, r.generation, why));
                                }
                            }
                            _ => {
                                adopts.push(adopt(&key, o));
                                settled = false;
                            }
                        }
                        Current::Player(r.generation, o)
                    }
                    // pullkeeper deleted this slot's dead player itself, first, to make
                    // room under the quota: it is gone, so its successor goes now instead
                    // of after the List lag and the strikes of a player gone missing. A
                    // backup's waits while a master's create is in flight: masters first,
                    // even when a master's task reaches the create rate a moment late.
                    None if r.id.as_ref().is_some_and(|id| input.deleted.contains(id))
                        && (key.is_master()
                            || !input.busy_slots.iter().any(SlotKey::is_master)) =>
                    {
                        let next = r.generation + 1;
                        creates.push((scene.priority, key.clone(), fresh(input, &key, next, None)));
                        Current::Pending(next)
                    }
                    None if r.phase != Phase::Refused
                        && r.within_list_lag(input.now_ms, input.list_lag_ms) =>
                    {
                        recheck_at(r.created_at_ms.saturating_add(input.list_lag_ms));
                        pending_live += 1;
                        Current::Pending(r.generation)
                    }
                    None if r.phase == Phase::Created
                        && input.strikes.get(&key).copied().unwrap_or(0)
                            < scene.strike_threshold =>
                    {
                        pending_live += 1;
                        Current::Pending(r.generation)
                    }
                    None if r.phase != Phase::Created => {
                        let retry = Action::Create {
                            key: key.clone(),
                            generation: r.generation,
                            name: r.name.clone(),
                            uid: Some(r.uid),
                            rollout: None,
                        };
                        creates.push((scene.priority, key.clone(), retry));
                        Current::Pending(r.generation)
                    }
                    None => {
                        let next = r.generation + 1;
                        creates.push((scene.priority, key.clone(), fresh(input, &key, next, None)));
                        Current::Pending(next)
                    }
                }
            } else if input.now_ms < input.unseen_until_ms {
                recheck_at(input.unseen_until_ms);
                Current::Pending(1)
            } else {
                creates.push((scene.priority, key.clone(), fresh(input, &key, 1, None)));
                Current::Pending(1)
            };
            // Older generations go when they are dead and their successor is up, or
            // when their successor runs: a live player makes way only for a running one.
            let (current_generation, successor) = match decision {
                Current::Player(g, o) => (g, Some(o.player.status)),
                Current::Pending(g) => {
                    settled = false;
                    (g, None)
                }
            };
            let successor_up = successor.is_some_and(|s| !is_dead(s));
            let successor_runs = successor.is_some_and(is_running);
            for old in owned.iter().filter(|o| o.generation < current_generation) {
                if !is_dead(old.player.status) {
                    settled = false;
                    if successor_runs {
                        delete(old, DeleteReason::Superseded);
                    }
                } else if successor_up {
                    delete(old, DeleteReason::Failed);
                } else {
                    // Create, then delete; unless the quota has no room for the
                    // successor while the dead player holds a place (decided below).
                    dead_waiting.push((key.clone(), old));
                }
            }
        }
        let slots: Vec<u32> = unfit.iter().map(|(slot, _, _)| *slot).collect();
        if let Some(slot) = rollout::next_slot(&slots, settled)
            && let Some((_, generation, why)) = unfit.into_iter().find(|(s, _, _)| *s == slot)
        {
            let key = SlotKey::new(input.project, &scene.name, slot);
            let step = fresh(input, &key, generation + 1, Some(why));
            rollouts.push((scene.priority, key, step));
        }
    }

    // Owned players of scenes or slots nobody wants any more.
    for (key, players) in &by_slot {
        let reason = match desired.get(key.scene.as_str()) {
            None => DeleteReason::SceneRemoved,
            Some(s) if !s.wants(key.slot) => DeleteReason::SlotRemoved,
            Some(_) => continue,
        };
        for o in players {
            delete(o, reason);
        }
    }
    let forgets = input
        .records
        .keys()
        .filter(|k| k.project == input.project && !by_slot.contains_key(k))
        .filter(|k| {
            desired
                .get(k.scene.as_str())
                .is_none_or(|s| !s.wants(k.slot))
        })
        .filter(|k| !input.busy_slots.contains(*k))
        .map(|k| Action::Forget { key: k.clone() });

    // Quota: every listed player counts, ours or not, until its delete has finished;
    // so do creates that List cannot show yet. Masters first, then priority, then name;
    // rollout steps after every slot that has no player at all.
    let live = input.observed.len() as u32 + pending_live;
    let mut room = input.max_players.saturating_sub(live) as usize;
    let (mut creates, held) = hold::gate(creates, input.records, input.cleared);
    creates.sort_by(|(pa, ka, _), (pb, kb, _)| {
        (!ka.is_master(), Reverse(pa), ka).cmp(&(!kb.is_master(), Reverse(pb), kb))
    });
    rollouts.sort_by(|(pa, ka, _), (pb, kb, _)| (Reverse(pa), ka).cmp(&(Reverse(pb), kb)));
    let mut plan = Plan {
        held,
        recheck_at_ms,
        ..Plan::default()
    };
    plan.actions.extend(deletes);
    plan.actions.extend(adopts);
    plan.actions.extend(updates);
    for (_, key, action) in creates.into_iter().chain(rollouts) {
        if room > 0 {
            room -= 1;
            plan.actions.push(action);
        } else {
            plan.over_quota.push(key);
        }
    }
    for (key, old) in dead_waiting {
        if plan.over_quota.contains(&key) && !input.busy_players.contains(&old.player.id) {
            plan.actions.insert(
                0,
                Action::Delete {
                    id: old.player.id.clone(),
                    name: old.name.to_string(),
                    reason: DeleteReason::Failed,
                },
            );
        }
    }
    plan.actions.extend(forgets);
    plan
}

enum Current<'a, 'b> {
    Player(u64, &'b Owned<'a>),
    Pending(u64),
}

fn fresh(
    input: &PlanInput<'_>,
    key: &SlotKey,
    generation: u64,
    rollout: Option<Rollout>,
) -> Action {
    Action::Create {
        key: key.clone(),
        generation,
        name: format_name(input.prefix, &key.scene, key.slot, generation),
        uid: None,
        rollout,
    }
}

fn adopt(key: &SlotKey, o: &Owned<'_>) -> Action {
    Action::Adopt {
        key: key.clone(),
        generation: o.generation,
        name: o.name.to_string(),
        id: o.player.id.clone(),
        uid: o.player.uid.and_then(|u| u32::try_from(u).ok()),
        stream_url: o.player.stream_url.clone(),
        channel: o.player.channel_name.clone(),
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
