//! Admission: what of the per-slot decisions may go now. Players of removed scenes and
//! slots are deleted, records of slots nobody wants are forgotten, replacements whose
//! source is not cleared are held, and creates are admitted under the project's quota,
//! masters first, then scene priority, then name; rollout steps after every slot that
//! has no player at all.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use super::actions::{Action, DeleteReason, Plan};
use super::slot::{Candidate, Decided, delete};
use super::{BySlot, DesiredScene, PlanInput, hold};

pub(super) fn admit(input: &PlanInput<'_>, by_slot: &BySlot<'_>, decided: Decided<'_, '_>) -> Plan {
    let Decided {
        mut deletes,
        adopts,
        updates,
        creates,
        mut rollouts,
        pending_live,
        dead_waiting,
        recheck_at_ms,
    } = decided;
    let desired: BTreeMap<&str, &DesiredScene> =
        input.scenes.iter().map(|s| (s.name.as_str(), s)).collect();

    // Owned players of scenes or slots nobody wants any more.
    for (key, players) in by_slot {
        let reason = match desired.get(key.scene.as_str()) {
            None => DeleteReason::SceneRemoved,
            Some(s) if input.maintained(&s.name) => continue,
            Some(s) if !s.wants(key.slot) => DeleteReason::SlotRemoved,
            Some(_) => continue,
        };
        for o in players {
            delete(input, &mut deletes, o, reason);
        }
    }
    let forgets = input
        .records
        .keys()
        .filter(|k| k.project == input.project && !by_slot.contains_key(k))
        .filter(|k| {
            desired
                .get(k.scene.as_str())
                .is_none_or(|s| !s.wants(k.slot) && !input.maintained(&s.name))
        })
        .filter(|k| !input.busy_slots.contains(*k))
        .map(|k| Action::Forget(k.clone()));

    // Quota: every listed player counts, ours or not, until its delete has finished;
    // so do creates that List cannot show yet.
    let live = input.observed.len() as u32 + pending_live;
    let mut room = input.max_players.saturating_sub(live) as usize;
    let (mut creates, held) = hold::gate(creates, input.records, input.cleared);
    creates.sort_by(|a, b| {
        (!a.key.is_master(), Reverse(a.priority), &a.key).cmp(&(
            !b.key.is_master(),
            Reverse(b.priority),
            &b.key,
        ))
    });
    rollouts.sort_by(|a, b| (Reverse(a.priority), &a.key).cmp(&(Reverse(b.priority), &b.key)));
    let mut plan = Plan {
        held,
        recheck_at_ms,
        ..Plan::default()
    };
    plan.actions.extend(deletes);
    plan.actions.extend(adopts);
    plan.actions.extend(updates);
    for Candidate { key, create, .. } in creates.into_iter().chain(rollouts) {
        if room > 0 {
            room -= 1;
            plan.actions.push(Action::Create(create));
        } else {
            plan.over_quota.push(key);
        }
    }
    // Delete first what holds a place the successor needs (each ahead of the rest).
    for (key, old) in dead_waiting {
        if plan.over_quota.contains(&key) {
            let mut first = Vec::new();
            delete(input, &mut first, old, DeleteReason::Failed);
            for action in first {
                plan.actions.insert(0, action);
            }
        }
    }
    plan.actions.extend(forgets);
    plan
}
