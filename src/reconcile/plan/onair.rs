//! Which player is on air: the one apps should subscribe their audience to.
//!
//! A pure decision, like the plan. The master is on air while it runs; when it stops
//! running, the first running backup takes over at once, without waiting for the master's
//! replacement. Whether the master comes back is the scene's failback policy:
//! `revertive` returns to it once it has run for the hold-down time (so a master that
//! flaps does not drag the audience along), `non-revertive` stays on the backup while the
//! backup is healthy. Every change bumps a version that never goes down, so apps can
//! discard an older announcement that arrives late.
//!
//! A running player is not necessarily playing: Agora may keep a player whose source died
//! for up to its idle timeout. So with source probing, a running player whose source was
//! probed down counts only while no running player has a source that is not down; the
//! air leaves it at once (reason `source_down`), and a master whose source came back
//! must have been running *and* its source back for the hold-down time before a
//! revertive scene returns to it.
//!
//! An operator's pin, manual switch or drill steers this choice (`steering` decides with
//! it, and calls [`choose`] for the rest); after a manual or drilled switch, a revertive scene's hold-down counts
//! from the switch, so it does not return to the master the moment it was left.

use crate::model::{OnAir, SLATE_SLOT, SlotKey, SwitchReason, is_running};

use super::desired::FailbackPolicy;
use super::{BySlot, DesiredScene, PlanInput, SlotSource};

/// What the decision needs to know about one slot's current player.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SlotView {
    pub slot: u32,
    pub uid: Option<u32>,
    /// Since when (Unix ms) the player has been running, if it is.
    pub running_since_ms: Option<u64>,
    /// What is known against its source, if anything.
    pub source: Option<SlotSource>,
}

impl SlotView {
    pub(super) fn running(&self) -> bool {
        self.running_since_ms.is_some() && self.uid.is_some()
    }

    /// Running on a source not known to be down.
    pub(super) fn sound(&self) -> bool {
        self.running() && self.source != Some(SlotSource::Down)
    }

    /// Since when (Unix ms) it has been running with its source not down, if it is sound.
    fn steady_since_ms(&self) -> Option<u64> {
        let running = self.running_since_ms.filter(|_| self.sound())?;
        Some(match self.source {
            Some(SlotSource::BackSince(back)) => running.max(back),
            _ => running,
        })
    }
}

/// Every slot of the scene as the on-air choice sees it. The slate, while it has a
/// player, is a slot like the others: on air when nothing else runs.
pub(super) fn views(
    input: &PlanInput<'_>,
    scene: &DesiredScene,
    by_slot: &BySlot<'_>,
) -> Vec<SlotView> {
    let slate = SlotKey::new(input.project, &scene.name, SLATE_SLOT);
    let slate = input.records.contains_key(&slate).then_some(SLATE_SLOT);
    (0..scene.slots)
        .chain(slate)
        .map(|slot| {
            let key = SlotKey::new(input.project, &scene.name, slot);
            let record = input.records.get(&key);
            let source = input.sources.get(&key).copied();
            let current = SlotView {
                slot,
                uid: record.map(|r| r.uid).filter(|&u| u != 0),
                running_since_ms: record
                    .filter(|r| !input.drilled(&scene.name, &r.name))
                    .and_then(|r| input.running_since.get(&r.name).copied()),
                source,
            };
            match record {
                Some(r) if current.running_since_ms.is_none() => {
                    outgoing(input, by_slot, &key, r.generation, source).unwrap_or(current)
                }
                _ => current,
            }
        })
        .collect()
}

/// The slot as its older generation still running shows it: while a replacement is not
/// running yet (a rollout step), the player it replaces stays on air, so apps switch
/// once, from the old UID straight to the new.
fn outgoing(
    input: &PlanInput<'_>,
    by_slot: &BySlot<'_>,
    key: &SlotKey,
    generation: u64,
    source: Option<SlotSource>,
) -> Option<SlotView> {
    by_slot
        .get(key)?
        .iter()
        .filter(|o| o.generation < generation && is_running(o.player.status))
        .filter(|o| !input.drilled(&key.scene, o.name))
        .filter_map(|o| {
            let uid = u32::try_from(o.player.uid?).ok().filter(|&u| u != 0)?;
            Some((o.generation, uid, input.running_since.get(o.name).copied()))
        })
        .max_by_key(|(g, _, _)| *g)
        .map(|(_, uid, since)| SlotView {
            slot: key.slot,
            uid: Some(uid),
            running_since_ms: since,
            source,
        })
}

/// The next on-air state, and the reason if it changed.
pub(super) fn choose(
    previous: &OnAir,
    slots: &[SlotView],
    policy: FailbackPolicy,
    now_ms: u64,
) -> (OnAir, Option<SwitchReason>) {
    // A player on a dead source is better than none, but worse than any other.
    let any_sound = slots.iter().any(SlotView::sound);
    let usable = |s: &&SlotView| {
        if any_sound { s.sound() } else { s.running() }
    };
    let previous_view = previous
        .slot
        .and_then(|slot| slots.iter().find(|s| s.slot == slot));
    let current = previous_view.filter(usable);
    let master = slots.iter().find(|s| s.slot == 0).filter(usable);
    let first_usable = slots.iter().filter(usable).min_by_key(|s| s.slot);
    // The on-air player still runs, but its source is down and another's is not.
    let left_for_source = previous_view.is_some_and(|s| s.running() && current.is_none());

    let (next, reason) = match (current, master) {
        // On a backup, the master is back: revertive policy decides.
        (Some(cur), Some(m)) if cur.slot != 0 => match policy {
            _ if !previous.failed_over => (Some(m), SwitchReason::MasterUp),
            FailbackPolicy::Revertive { hold_down_ms }
                if m.steady_since_ms()
                    .is_some_and(|t| now_ms >= t.max(hold_from(previous)) + hold_down_ms) =>
            {
                (Some(m), SwitchReason::Failback)
            }
            _ => (Some(cur), SwitchReason::Failover),
        },
        (Some(cur), _) => (Some(cur), SwitchReason::Replaced),
        (None, _) => match first_usable {
            Some(s) if left_for_source => (Some(s), SwitchReason::SourceDown),
            Some(s) if previous.slot.is_none() => (Some(s), SwitchReason::Started),
            Some(s) => (Some(s), SwitchReason::Failover),
            None => (None, SwitchReason::NoHealthyPlayer),
        },
    };
    let slot = next.map(|s| s.slot);
    let uid = next.and_then(|s| s.uid);
    if slot == previous.slot && uid == previous.uid {
        return (*previous, None);
    }
    let failed_over = match reason {
        SwitchReason::Failover | SwitchReason::SourceDown => slot.is_some_and(|s| s != 0),
        SwitchReason::Replaced => previous.failed_over,
        // At start on a backup because the master's source is down: the way back to the
        // master is the failback policy's, as after any failover.
        SwitchReason::Started => {
            slot.is_some_and(|s| s != 0)
                && slots
                    .iter()
                    .any(|s| s.slot == 0 && s.running() && !s.sound())
        }
        _ => false,
    };
    let onair = OnAir {
        slot,
        uid,
        version: previous.version + 1,
        switches: previous.switches + 1,
        since_ms: now_ms,
        failed_over,
        reason: Some(reason),
    };
    (onair, Some(reason))
}

/// From when a revertive scene's hold-down counts besides its master's steady running:
/// the switch, when an operator or a drill put a backup on air.
fn hold_from(current: &OnAir) -> u64 {
    match current.reason {
        Some(SwitchReason::Manual | SwitchReason::Drill) => current.since_ms,
        _ => 0,
    }
}

/// When, with nothing else changing, [`choose`] would change its mind: a revertive scene
/// on a backup fails back once its running master (and its source) has held for the
/// hold-down time. The controller wakes then, because no other event is due to make it
/// look.
pub(super) fn next_change_at(
    current: &OnAir,
    slots: &[SlotView],
    policy: FailbackPolicy,
) -> Option<u64> {
    let FailbackPolicy::Revertive { hold_down_ms } = policy else {
        return None;
    };
    if current.slot.is_none_or(|s| s == 0) || !current.failed_over {
        return None;
    }
    let master = slots.iter().find(|s| s.slot == 0 && s.uid.is_some())?;
    master
        .steady_since_ms()
        .map(|t| t.max(hold_from(current)) + hold_down_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REV: FailbackPolicy = FailbackPolicy::Revertive {
        hold_down_ms: 30_000,
    };

    fn view(slot: u32, uid: u32, running_since: Option<u64>) -> SlotView {
        SlotView {
            slot,
            uid: Some(uid),
            running_since_ms: running_since,
            source: None,
        }
    }

    fn on_source(view: SlotView, source: SlotSource) -> SlotView {
        SlotView {
            source: Some(source),
            ..view
        }
    }

    fn on(slot: u32, uid: u32, version: u64) -> OnAir {
        OnAir {
            slot: Some(slot),
            uid: Some(uid),
            version,
            switches: version,
            since_ms: 0,
            failed_over: slot != 0,
            reason: None,
        }
    }

    #[test]
    fn master_goes_on_air_first() {
        let slots = [view(0, 10, Some(0)), view(1, 11, Some(0))];
        let (a, why) = choose(&OnAir::default(), &slots, REV, 1);
        assert_eq!((a.slot, a.uid, a.version), (Some(0), Some(10), 1));
        assert_eq!(why, Some(SwitchReason::Started));
        assert_eq!(choose(&a, &slots, REV, 2), (a, None), "stable");
    }

    #[test]
    fn failed_master_hands_over_to_first_running_backup_at_once() {
        let slots = [view(0, 10, None), view(1, 11, None), view(2, 12, Some(0))];
        let (a, why) = choose(&on(0, 10, 1), &slots, REV, 5);
        assert_eq!((a.slot, a.uid, a.version), (Some(2), Some(12), 2));
        assert_eq!(why, Some(SwitchReason::Failover));
    }

    #[test]
    fn revertive_returns_after_hold_down_only() {
        let prev = on(1, 11, 2);
        let slots = [view(0, 20, Some(100_000)), view(1, 11, Some(0))];
        assert_eq!(choose(&prev, &slots, REV, 129_999), (prev, None));
        let (a, why) = choose(&prev, &slots, REV, 130_000);
        assert_eq!((a.slot, a.uid, a.version), (Some(0), Some(20), 3));
        assert_eq!(why, Some(SwitchReason::Failback));
    }

    #[test]
    fn a_backup_first_up_at_start_yields_to_the_master_at_once() {
        let slots = [view(0, 10, None), view(1, 11, Some(0))];
        let (a, why) = choose(&OnAir::default(), &slots, REV, 1);
        assert_eq!(
            (a.slot, why, a.failed_over),
            (Some(1), Some(SwitchReason::Started), false)
        );
        let slots = [view(0, 10, Some(2)), view(1, 11, Some(0))];
        let (b, why) = choose(&a, &slots, REV, 3);
        assert_eq!((b.slot, why), (Some(0), Some(SwitchReason::MasterUp)));
        let (c, why) = choose(&a, &slots, FailbackPolicy::NonRevertive, 3);
        assert_eq!((c.slot, why), (Some(0), Some(SwitchReason::MasterUp)));
    }

    #[test]
    fn failover_marks_the_backup_as_held() {
        let slots = [view(0, 10, None), view(1, 11, Some(0))];
        let (a, _) = choose(&on(0, 10, 1), &slots, REV, 5);
        assert!(a.failed_over);
        // The backup's own replacement keeps the mark.
        let slots = [view(0, 10, None), view(1, 12, Some(6))];
        let (b, why) = choose(&a, &slots, REV, 7);
        assert_eq!(
            (b.uid, why, b.failed_over),
            (Some(12), Some(SwitchReason::Replaced), true)
        );
    }

    #[test]
    fn failback_is_due_when_the_hold_down_ends() {
        let prev = on(1, 11, 2);
        let slots = [view(0, 20, Some(100_000)), view(1, 11, Some(0))];
        assert_eq!(next_change_at(&prev, &slots, REV), Some(130_000));
        assert_eq!(
            next_change_at(&prev, &slots, FailbackPolicy::NonRevertive),
            None
        );
        assert_eq!(next_change_at(&on(0, 20, 3), &slots, REV), None);
        let master_down = [view(0, 20, None), view(1, 11, Some(0))];
        assert_eq!(next_change_at(&prev, &master_down, REV), None);
    }

    #[test]
    fn non_revertive_stays_on_a_healthy_backup() {
        let prev = on(1, 11, 2);
        let slots = [view(0, 20, Some(0)), view(1, 11, Some(0))];
        let policy = FailbackPolicy::NonRevertive;
        assert_eq!(choose(&prev, &slots, policy, 10_000_000), (prev, None));
        // ...and leaves it for the master when the backup fails.
        let slots = [view(0, 20, Some(0)), view(1, 11, None)];
        let (a, why) = choose(&prev, &slots, policy, 10_000_000);
        assert_eq!((a.slot, why), (Some(0), Some(SwitchReason::Failover)));
    }

    #[test]
    fn replaced_master_keeps_the_slot_with_its_new_uid() {
        let prev = on(0, 10, 4);
        let slots = [view(0, 30, Some(50))];
        let (a, why) = choose(&prev, &slots, REV, 60);
        assert_eq!((a.slot, a.uid, a.version), (Some(0), Some(30), 5));
        assert_eq!(why, Some(SwitchReason::Replaced));
    }

    #[test]
    fn nothing_running_means_nothing_on_air() {
        let prev = on(0, 10, 4);
        let (a, why) = choose(&prev, &[view(0, 10, None)], REV, 60);
        assert_eq!((a.slot, a.uid, a.version), (None, None, 5));
        assert_eq!(why, Some(SwitchReason::NoHealthyPlayer));
        assert_eq!(choose(&a, &[], REV, 70), (a, None));
    }

    #[test]
    fn a_running_master_on_a_dead_source_gives_the_air_to_a_sound_backup() {
        let master_down = on_source(view(0, 10, Some(0)), SlotSource::Down);
        let slots = [master_down, view(1, 11, Some(0))];
        let (a, why) = choose(&on(0, 10, 1), &slots, REV, 5_000);
        assert_eq!((a.slot, why), (Some(1), Some(SwitchReason::SourceDown)));
        assert!(a.failed_over, "the way back is the failback policy's");
        assert_eq!(choose(&a, &slots, REV, 6_000), (a, None), "stays");

        // Every source down: the master, still running, stays on air.
        let both = [
            master_down,
            on_source(view(1, 11, Some(0)), SlotSource::Down),
        ];
        assert_eq!(choose(&on(0, 10, 1), &both, REV, 5_000).1, None);
        // At start, a backup goes first; the master follows the failback policy.
        let (b, why) = choose(&OnAir::default(), &slots, REV, 5_000);
        assert_eq!(
            (b.slot, why, b.failed_over),
            (Some(1), Some(SwitchReason::Started), true)
        );
    }

    #[test]
    fn revertive_returns_once_the_source_has_been_back_for_the_hold_down() {
        let prev = on(1, 11, 2);
        // The master ran all along; its source came back at 100 s.
        let master = on_source(view(0, 10, Some(0)), SlotSource::BackSince(100_000));
        let slots = [master, view(1, 11, Some(0))];
        assert_eq!(next_change_at(&prev, &slots, REV), Some(130_000));
        assert_eq!(choose(&prev, &slots, REV, 129_999), (prev, None));
        let (a, why) = choose(&prev, &slots, REV, 130_000);
        assert_eq!((a.slot, why), (Some(0), Some(SwitchReason::Failback)));
        // Non-revertive stays on the sound backup.
        let policy = FailbackPolicy::NonRevertive;
        assert_eq!(choose(&prev, &slots, policy, 10_000_000), (prev, None));
        // While the master's source is down, no failback is due.
        let down = [on_source(view(0, 10, Some(0)), SlotSource::Down), slots[1]];
        assert_eq!(next_change_at(&prev, &down, REV), None);
    }

    #[test]
    fn an_onair_backup_on_a_dead_source_gives_way_to_a_sound_master() {
        let prev = on(1, 11, 2);
        let slots = [
            view(0, 10, Some(0)),
            on_source(view(1, 11, Some(0)), SlotSource::Down),
        ];
        let (a, why) = choose(&prev, &slots, FailbackPolicy::NonRevertive, 5);
        assert_eq!(
            (a.slot, why, a.failed_over),
            (Some(0), Some(SwitchReason::SourceDown), false)
        );
    }
}
