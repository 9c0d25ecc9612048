//! The per-slot decision: what each slot of a scene needs, on its own, before the quota,
//! holds and ordering are applied (see `admission`).

use crate::model::{Phase, SlotKey, format_name, is_dead, is_running};

use super::actions::{Action, Adopt, Create, Delete, DeleteReason, Rollout};
use super::{BySlot, DesiredScene, Owned, PlanInput, rollout};

/// A create waiting for admission, with the scene priority it is ordered by.
pub(super) struct Candidate {
    pub(super) priority: i32,
    pub(super) key: SlotKey,
    pub(super) create: Create,
}

/// What the per-slot decisions of every scene collected.
#[derive(Default)]
pub(super) struct Decided<'p, 'a> {
    pub(super) deletes: Vec<Action>,
    pub(super) adopts: Vec<Action>,
    pub(super) updates: Vec<Action>,
    /// Slots that need a player: first creates, retries and replacements.
    pub(super) creates: Vec<Candidate>,
    /// At most one rollout step per scene; admitted after every slot without a player.
    pub(super) rollouts: Vec<Candidate>,
    /// Players that count against the quota although List cannot show them yet.
    pub(super) pending_live: u32,
    /// Dead players whose successor is not up yet: deleted first only if the quota
    /// has no room for the successor while they hold a place.
    pub(super) dead_waiting: Vec<(SlotKey, &'p Owned<'a>)>,
    pub(super) recheck_at_ms: Option<u64>,
}

impl Decided<'_, '_> {
    fn recheck_at(&mut self, at: u64) {
        self.recheck_at_ms = Some(self.recheck_at_ms.map_or(at, |r| r.min(at)));
    }

    fn create(&mut self, scene: &DesiredScene, create: Create) {
        self.creates.push(Candidate {
            priority: scene.priority,
            key: create.key.clone(),
            create,
        });
    }
}

/// Deletes `o` unless a delete of it is in flight already.
pub(super) fn delete(
    input: &PlanInput<'_>,
    deletes: &mut Vec<Action>,
    o: &Owned<'_>,
    reason: DeleteReason,
) {
    if !input.busy_players.contains(&o.player.id) {
        deletes.push(Action::Delete(Delete {
            id: o.player.id.clone(),
            name: o.name.to_string(),
            uid: o.player.uid.and_then(|u| u32::try_from(u).ok()),
            reason,
        }));
    }
}

/// The slot's current player as decided: one the List shows, or one that is coming.
enum Current<'p, 'a> {
    Player(u64, &'p Owned<'a>),
    Pending(u64),
}

/// Decides every slot of `scene`, and at most one rollout step for it.
pub(super) fn decide_scene<'p, 'a>(
    input: &PlanInput<'a>,
    scene: &DesiredScene,
    by_slot: &'p BySlot<'a>,
    decided: &mut Decided<'p, 'a>,
) {
    // Slots whose running players no longer fit the scene, and whether the scene has
    // anything between two players; a rollout step waits for the latter.
    let mut unfit: Vec<(u32, u64, Rollout)> = Vec::new();
    let mut settled = true;
    for slot in scene.slot_numbers() {
        let key = SlotKey::new(input.project, &scene.name, slot);
        let owned = by_slot.get(&key).map(Vec::as_slice).unwrap_or(&[]);
        if input.busy_slots.contains(&key) {
            settled = false;
            let record = input.records.get(&key);
            if !record.is_some_and(|r| owned.iter().any(|o| o.name == r.name)) {
                decided.pending_live += 1;
            }
            continue;
        }
        let current = decide_slot(input, scene, &key, owned, decided, &mut unfit, &mut settled);
        sweep_older(input, &key, owned, current, decided, &mut settled);
    }
    let slots: Vec<u32> = unfit.iter().map(|(slot, _, _)| *slot).collect();
    if let Some(slot) = rollout::next_slot(&slots, settled)
        && let Some((_, generation, why)) = unfit.into_iter().find(|(s, _, _)| *s == slot)
    {
        let key = SlotKey::new(input.project, &scene.name, slot);
        decided.rollouts.push(Candidate {
            priority: scene.priority,
            key: key.clone(),
            create: fresh(input, &key, generation + 1, Some(why)),
        });
    }
}

/// What one free slot needs: an adoption, an update, a create; and which generation is
/// its current player.
fn decide_slot<'p, 'a>(
    input: &PlanInput<'a>,
    scene: &DesiredScene,
    key: &SlotKey,
    owned: &'p [Owned<'a>],
    decided: &mut Decided<'p, 'a>,
    unfit: &mut Vec<(u32, u64, Rollout)>,
    settled: &mut bool,
) -> Current<'p, 'a> {
    let record = input.records.get(key);
    let observed_current = record.and_then(|r| owned.iter().find(|o| o.name == r.name));
    // The store is behind what Agora shows (lost or restored store): adopt.
    let ahead = owned
        .last()
        .filter(|n| record.is_none_or(|r| r.generation < n.generation));
    if let Some(n) = ahead {
        decided.adopts.push(adopt(key, n));
        *settled = false;
        return Current::Player(n.generation, n);
    }
    let Some(r) = record else {
        if input.now_ms < input.unseen_until_ms {
            decided.recheck_at(input.unseen_until_ms);
        } else {
            decided.create(scene, fresh(input, key, 1, None));
        }
        return Current::Pending(1);
    };
    let replace = |decided: &mut Decided<'p, 'a>| {
        let next = r.generation + 1;
        decided.create(scene, fresh(input, key, next, None));
        Current::Pending(next)
    };
    match observed_current {
        // The dead player is older than its replacement now, so the generation sweep
        // deletes it.
        Some(o) if is_dead(o.player.status) || input.drilled(&key.scene, o.name) => {
            replace(decided)
        }
        Some(o) => {
            // A 409 names the player but not its UID; List tells the UID.
            let uid_differs = o.player.uid.is_some_and(|u| u != u64::from(r.uid));
            let known =
                r.phase == Phase::Created && r.id.as_deref() == Some(&o.player.id) && !uid_differs;
            match &r.spec {
                Some(spec) if known => {
                    let slot = key.slot;
                    if !input.held_updates.contains(key) {
                        decided.updates.extend(
                            rollout::update(key, o.name, o.player, spec, &scene.live_at(slot))
                                .map(Action::Update),
                        );
                    }
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
                    decided.adopts.push(adopt(key, o));
                    *settled = false;
                }
            }
            Current::Player(r.generation, o)
        }
        // pullkeeper deleted this slot's dead player itself, first, to make room under
        // the quota: it is gone, so its successor goes now instead of after the List lag
        // and the strikes of a player gone missing. A backup's waits while a master's
        // create is in flight: masters first, even when a master's task reaches the
        // create rate a moment late.
        None if r.id.as_ref().is_some_and(|id| input.deleted.contains(id))
            && (key.is_master() || !input.busy_slots.iter().any(SlotKey::is_master)) =>
        {
            replace(decided)
        }
        None if r.phase != Phase::Refused && r.within_list_lag(input.now_ms, input.list_lag_ms) => {
            decided.recheck_at(r.created_at_ms.saturating_add(input.list_lag_ms));
            decided.pending_live += 1;
            Current::Pending(r.generation)
        }
        None if r.phase == Phase::Created
            && input.strikes.get(key).copied().unwrap_or(0) < scene.strike_threshold =>
        {
            decided.pending_live += 1;
            Current::Pending(r.generation)
        }
        None if r.phase != Phase::Created => {
            let retry = Create {
                key: key.clone(),
                generation: r.generation,
                name: r.name.clone(),
                uid: Some(r.uid),
                rollout: None,
            };
            decided.create(scene, retry);
            Current::Pending(r.generation)
        }
        None => replace(decided),
    }
}

/// Older generations go when they are dead and their successor is up, or when their
/// successor runs: a live player makes way only for a running one.
fn sweep_older<'p, 'a>(
    input: &PlanInput<'a>,
    key: &SlotKey,
    owned: &'p [Owned<'a>],
    current: Current<'p, 'a>,
    decided: &mut Decided<'p, 'a>,
    settled: &mut bool,
) {
    let (current_generation, successor) = match current {
        Current::Player(g, o) => (g, Some(o.player.status)),
        Current::Pending(g) => {
            *settled = false;
            (g, None)
        }
    };
    let successor_up = successor.is_some_and(|s| !is_dead(s));
    let successor_runs = successor.is_some_and(is_running);
    for old in owned.iter().filter(|o| o.generation < current_generation) {
        if !is_dead(old.player.status) && !input.drilled(&key.scene, old.name) {
            *settled = false;
            if successor_runs {
                delete(input, &mut decided.deletes, old, DeleteReason::Superseded);
            }
        } else if successor_up {
            delete(input, &mut decided.deletes, old, DeleteReason::Failed);
        } else {
            decided.dead_waiting.push((key.clone(), old));
        }
    }
}

fn fresh(
    input: &PlanInput<'_>,
    key: &SlotKey,
    generation: u64,
    rollout: Option<Rollout>,
) -> Create {
    Create {
        key: key.clone(),
        generation,
        name: format_name(input.prefix, &key.scene, key.slot, generation),
        uid: None,
        rollout,
    }
}

fn adopt(key: &SlotKey, o: &Owned<'_>) -> Action {
    Action::Adopt(Adopt {
        key: key.clone(),
        generation: o.generation,
        name: o.name.to_string(),
        id: o.player.id.clone(),
        uid: o.player.uid.and_then(|u| u32::try_from(u).ok()),
        stream_url: o.player.stream_url.clone(),
        channel: o.player.channel_name.clone(),
    })
}
