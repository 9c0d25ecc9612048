//! Source gating and the slate: replacements wait for a cleared source, nothing healthy
//! is touched, a slate slot comes and goes with `slate`, and a running player on a down
//! source leaves the air.

use super::*;

/// `news` with a failed master and a running backup.
fn failed_master() -> World {
    let mut w = World::new(vec![scene("news", 1, 0)]);
    w.records.insert(
        key("news", 0),
        record("pk_news_m_1", 1, 1, Phase::Created, Some("a")),
    );
    w.records.insert(
        key("news", 1),
        record("pk_news_b1_1", 2, 1, Phase::Created, Some("b")),
    );
    w.observed = vec![
        listed("pk_news_m_1", "a", 1, PlayerStatus::Failed),
        listed("pk_news_b1_1", "b", 2, PlayerStatus::Running),
    ];
    w
}

#[test]
fn a_replacement_waits_for_its_source_and_nothing_is_deleted_meanwhile() {
    let mut w = failed_master();
    w.cleared = Some(BTreeSet::from([key("news", 1)]));
    let p = w.plan();
    assert_eq!(p.held, vec![key("news", 0)]);
    assert!(p.actions.is_empty(), "{:?}", p.actions);

    w.cleared = Some(BTreeSet::from([key("news", 0), key("news", 1)]));
    let p = w.plan();
    assert!(p.held.is_empty());
    assert_eq!(creates(&p), vec![("pk_news_m_2".into(), None)]);
}

#[test]
fn without_probing_nothing_is_held() {
    let p = failed_master().plan();
    assert!(p.held.is_empty());
    assert_eq!(creates(&p), vec![("pk_news_m_2".into(), None)]);
}

#[test]
fn first_creates_and_intent_retries_are_never_held() {
    let mut w = World::new(vec![scene("news", 0, 0), scene("sport", 0, 0)]);
    w.records.insert(
        key("sport", 0),
        record("pk_sport_m_3", 42, 3, Phase::Intended, None),
    );
    w.now_ms = 1_000 + LAG;
    w.cleared = Some(BTreeSet::new());
    let p = w.plan();
    assert!(p.held.is_empty());
    assert_eq!(
        creates(&p),
        vec![
            ("pk_news_m_1".into(), None),
            ("pk_sport_m_3".into(), Some(42))
        ]
    );
}

#[test]
fn a_held_slot_keeps_no_quota_from_others() {
    let mut w = failed_master();
    w.scenes.push(scene("sport", 0, 0));
    // Two listed players plus one new slot fill a quota of three exactly.
    w.max_players = 3;
    w.cleared = Some(BTreeSet::new());
    let p = w.plan();
    assert_eq!(creates(&p), vec![("pk_sport_m_1".into(), None)]);
    assert!(p.over_quota.is_empty());
}

#[test]
fn the_slate_slot_is_created_while_wanted_and_removed_after() {
    let mut w = failed_master();
    w.scenes[0].slate = true;
    w.cleared = Some(BTreeSet::new());
    let p = w.plan();
    assert_eq!(creates(&p), vec![("pk_news_s_1".into(), None)]);
    assert_eq!(p.held, vec![key("news", 0)]);

    let slate = key("news", crate::model::SLATE_SLOT);
    w.records.insert(
        slate.clone(),
        record("pk_news_s_1", 3, 1, Phase::Created, Some("s")),
    );
    w.observed
        .push(listed("pk_news_s_1", "s", 3, PlayerStatus::Running));
    assert!(creates(&w.plan()).is_empty(), "stays while wanted");

    w.scenes[0].slate = false;
    let p = w.plan();
    assert_eq!(
        deletes(&p),
        vec![("pk_news_s_1".into(), DeleteReason::SlotRemoved)]
    );
    w.observed.retain(|o| o.id != "s");
    assert!(
        w.plan().actions.contains(&Action::Forget(slate)),
        "its record goes once the player is gone"
    );
}

#[test]
fn a_running_master_on_a_down_source_goes_off_air_with_nothing_created_or_deleted() {
    let mut w = failed_master();
    w.scenes[0].failback = FailbackPolicy::Revertive {
        hold_down_ms: 30_000,
    };
    w.observed[0].status = Some(PlayerStatus::Running);
    w.running_since.insert("pk_news_m_1".into(), 10_000);
    w.running_since.insert("pk_news_b1_1".into(), 10_000);
    w.cleared = Some(BTreeSet::new());
    let master_on_air = OnAir {
        slot: Some(0),
        uid: Some(1),
        version: 1,
        switches: 1,
        since_ms: 10_000,
        failed_over: false,
        reason: None,
    };
    w.onair.insert("news".into(), master_on_air);
    w.sources.insert(key("news", 0), SlotSource::Down);
    let p = w.plan();
    assert!(p.actions.is_empty() && p.held.is_empty(), "{p:?}");
    let decision = &p.onair[0];
    assert_eq!(
        (decision.reason, decision.onair.slot),
        (Some(crate::model::SwitchReason::SourceDown), Some(1))
    );
    assert_eq!(p.onair_due_at_ms, None, "no failback due while it is down");

    // Back at 100 s: the failback is due once it has been back for the hold-down.
    w.onair.insert("news".into(), decision.onair);
    w.sources
        .insert(key("news", 0), SlotSource::BackSince(100_000));
    let p = w.plan();
    assert_eq!(p.onair[0].reason, None);
    assert_eq!(p.onair_due_at_ms, Some(130_000));
}
