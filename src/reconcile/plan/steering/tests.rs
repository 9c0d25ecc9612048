//! The operator's steering of the on-air choice, on explicit instants (the plan reads
//! no clock: `now_ms` is its input).

use super::*;
use crate::reconcile::plan::SlotSource;

const HOLD_DOWN: u64 = 30_000;
const REV: FailbackPolicy = FailbackPolicy::Revertive {
    hold_down_ms: HOLD_DOWN,
};

fn view(slot: u32, uid: u32, running_since: Option<u64>) -> SlotView {
    SlotView {
        slot,
        uid: Some(uid),
        running_since_ms: running_since,
        source: None,
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

fn asking(request: OnAirRequest) -> Steering {
    Steering {
        request: Some(request),
        ..Steering::default()
    }
}

/// Master 10 and backups 11, 12, all running since 0.
fn all_running() -> [SlotView; 3] {
    [
        view(0, 10, Some(0)),
        view(1, 11, Some(0)),
        view(2, 12, Some(0)),
    ]
}

#[test]
fn a_manual_switch_to_a_running_slot_is_published_with_reason_manual() {
    let steering = asking(OnAirRequest::Manual { slot: 2 });
    let s = steer(&on(0, 10, 4), &all_running(), REV, 1_000, Some(&steering));
    assert_eq!(s.request, Some(Ok(())));
    assert_eq!(s.reason, Some(SwitchReason::Manual));
    assert_eq!(
        (s.onair.slot, s.onair.uid, s.onair.version, s.onair.since_ms),
        (Some(2), Some(12), 5, 1_000)
    );
    assert_eq!(s.onair.reason, Some(SwitchReason::Manual));
    assert!(s.onair.failed_over, "the way back is the failback policy's");

    // To the slot already on air: honoured, nothing published.
    let steering = asking(OnAirRequest::Manual { slot: 0 });
    let s = steer(&on(0, 10, 4), &all_running(), REV, 1_000, Some(&steering));
    assert_eq!(
        (s.request, s.reason, s.onair),
        (Some(Ok(())), None, on(0, 10, 4))
    );
}

#[test]
fn a_manual_switch_to_a_slot_that_does_not_run_is_refused_with_the_reason() {
    let slots = [view(0, 10, Some(0)), view(1, 11, None)];
    let steering = asking(OnAirRequest::Manual { slot: 1 });
    let s = steer(&on(0, 10, 4), &slots, REV, 1_000, Some(&steering));
    assert_eq!(
        s.request,
        Some(Err("slot 1 has no running player".to_string()))
    );
    assert_eq!((s.reason, s.onair), (None, on(0, 10, 4)), "nothing changes");

    let steering = asking(OnAirRequest::Manual { slot: 7 });
    let s = steer(&on(0, 10, 4), &slots, REV, 1_000, Some(&steering));
    assert_eq!(s.request, Some(Err("the scene has no slot 7".to_string())));
}

#[test]
fn without_a_pin_a_revertive_scene_returns_a_hold_down_after_the_manual_switch() {
    let steering = asking(OnAirRequest::Manual { slot: 1 });
    let switched = steer(&on(0, 10, 1), &all_running(), REV, 100_000, Some(&steering)).onair;
    // The master has run all along; the hold-down counts from the switch.
    let (same, why) = choose(&switched, &all_running(), REV, 100_000 + HOLD_DOWN - 1);
    assert_eq!((same, why), (switched, None));
    let (back, why) = choose(&switched, &all_running(), REV, 100_000 + HOLD_DOWN);
    assert_eq!((back.slot, why), (Some(0), Some(SwitchReason::Failback)));
}

#[test]
fn a_pin_holds_where_the_failback_policy_would_return() {
    let pinned = Steering {
        pinned: Some(1),
        ..Steering::default()
    };
    let mut previous = on(1, 11, 2);
    previous.reason = Some(SwitchReason::Manual);
    let late = 10_000_000;
    let (unpinned, why) = choose(&previous, &all_running(), REV, late);
    assert_eq!(
        (unpinned.slot, why),
        (Some(0), Some(SwitchReason::Failback))
    );
    let s = steer(&previous, &all_running(), REV, late, Some(&pinned));
    assert_eq!((s.onair, s.reason, s.pin_released), (previous, None, false));
}

#[test]
fn a_pinned_player_that_stops_fails_over_and_releases_the_pin() {
    let pinned = Steering {
        pinned: Some(1),
        ..Steering::default()
    };
    let slots = [
        view(0, 10, Some(0)),
        view(1, 11, None),
        view(2, 12, Some(0)),
    ];
    let s = steer(&on(1, 11, 2), &slots, REV, 5_000, Some(&pinned));
    assert!(s.pin_released);
    assert_eq!(s.onair.slot, Some(0), "the air goes where the policy says");
    assert!(s.reason.is_some());
    // A pin on a slot replaced in place (a rollout) follows the new UID.
    let slots = [view(0, 10, Some(0)), view(1, 21, Some(4_000))];
    let s = steer(&on(1, 11, 2), &slots, REV, 5_000, Some(&pinned));
    assert_eq!(
        (s.onair.uid, s.reason, s.pin_released),
        (Some(21), Some(SwitchReason::Replaced), false)
    );
}

#[test]
fn a_drill_goes_to_the_first_sound_backup_and_holds_it_until_the_hold_ends() {
    let slots = [
        view(0, 10, Some(0)),
        SlotView {
            source: Some(SlotSource::Down),
            ..view(1, 11, Some(0))
        },
        view(2, 12, Some(0)),
    ];
    let s = steer(
        &on(0, 10, 1),
        &slots,
        REV,
        1_000,
        Some(&asking(OnAirRequest::Drill)),
    );
    assert_eq!(s.request, Some(Ok(())));
    assert_eq!(
        (s.onair.slot, s.reason),
        (Some(2), Some(SwitchReason::Drill))
    );
    let drilled = s.onair;
    let holding = Steering {
        hold: Some((2, 61_000)),
        ..Steering::default()
    };
    let s = steer(&drilled, &slots, REV, 60_999, Some(&holding));
    assert_eq!(
        (s.onair, s.reason, s.hold_until_ms),
        (drilled, None, Some(61_000))
    );
    // The hold is over and the hold-down since the switch too: back to the master.
    let s = steer(&drilled, &slots, REV, 61_000, Some(&holding));
    assert_eq!(
        (s.onair.slot, s.reason, s.hold_until_ms),
        (Some(0), Some(SwitchReason::Failback), None)
    );
    // Non-revertive keeps the healthy backup.
    let policy = FailbackPolicy::NonRevertive;
    let s = steer(&drilled, &slots, policy, 61_000, Some(&holding));
    assert_eq!((s.onair, s.reason), (drilled, None));
}

#[test]
fn a_drill_is_refused_in_maintenance_when_pinned_off_master_or_without_a_running_backup() {
    let refused = |previous: OnAir, slots: &[SlotView], steering: Steering| {
        let s = steer(&previous, slots, REV, 1_000, Some(&steering));
        assert_eq!(s.onair, previous, "a refused drill changes nothing");
        match s.request {
            Some(Err(reason)) => reason,
            other => panic!("not refused: {other:?}"),
        }
    };
    let drill = asking(OnAirRequest::Drill);
    let maintained = Steering {
        maintenance: true,
        ..drill.clone()
    };
    assert_eq!(
        refused(on(0, 10, 1), &all_running(), maintained),
        "the scene is in maintenance"
    );
    let pinned = Steering {
        pinned: Some(0),
        ..drill.clone()
    };
    assert_eq!(
        refused(on(0, 10, 1), &all_running(), pinned),
        "the scene is pinned on air; unpin it first"
    );
    assert_eq!(
        refused(on(1, 11, 1), &all_running(), drill.clone()),
        "the scene is not on air on its master"
    );
    let backups_down = [view(0, 10, Some(0)), view(1, 11, None)];
    assert_eq!(
        refused(on(0, 10, 1), &backups_down, drill),
        "the scene has no running backup"
    );
}
