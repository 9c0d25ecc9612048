//! One test per planning rule, then properties over random worlds.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::actions::{DeleteReason, Rollout};
use super::desired::FailbackPolicy;
use super::*;
use crate::config::UidRange;
use crate::model::{
    Fixed, Live, OnAir, Phase, PlayerStatus, RECORD_VERSION, Spec, format_name, is_dead, is_running,
};

const LAG: u64 = 12_000;

fn live() -> Live {
    Live {
        stream_url: "rtmp://origin/s".into(),
        volume: 100,
    }
}

fn fixed() -> Fixed {
    Fixed {
        channel: "ch".into(),
        region: crate::agora::wire::Region::Na,
        idle_timeout: 300,
        token_sha256: None,
    }
}

fn scene(name: &str, backups: u32, priority: i32) -> DesiredScene {
    DesiredScene {
        name: name.into(),
        slots: backups + 1,
        priority,
        strike_threshold: 3,
        slate: false,
        live: live(),
        slot_urls: BTreeMap::new(),
        fixed: fixed(),
        uids: UidRange {
            start: 1,
            end: u32::MAX,
        },
        failback: FailbackPolicy::NonRevertive,
    }
}

fn listed(name: &str, id: &str, uid: u64, status: PlayerStatus) -> ListedPlayer {
    ListedPlayer {
        id: id.into(),
        name: Some(name.into()),
        stream_url: None,
        channel_name: Some("ch".into()),
        uid: Some(uid),
        account: None,
        create_ts: 0,
        status: Some(status),
    }
}

fn record(name: &str, uid: u32, generation: u64, phase: Phase, id: Option<&str>) -> SlotRecord {
    SlotRecord {
        v: RECORD_VERSION,
        name: name.into(),
        uid,
        generation,
        phase,
        region: crate::agora::wire::Region::Na,
        id: id.map(Into::into),
        created_at_ms: 1_000,
        spec: Some(Spec {
            live: live(),
            fixed: fixed(),
        }),
    }
}

/// A world to plan in; each test sets what it needs.
#[derive(Debug)]
struct World {
    scenes: Vec<DesiredScene>,
    records: BTreeMap<SlotKey, SlotRecord>,
    observed: Vec<ListedPlayer>,
    busy_slots: BTreeSet<SlotKey>,
    busy_players: BTreeSet<String>,
    held_updates: BTreeSet<SlotKey>,
    deleted: BTreeSet<String>,
    strikes: BTreeMap<SlotKey, u32>,
    now_ms: u64,
    max_players: u32,
    unseen_until_ms: u64,
    cleared: Option<BTreeSet<SlotKey>>,
    sources: BTreeMap<SlotKey, SlotSource>,
    running_since: HashMap<String, u64>,
    onair: BTreeMap<String, OnAir>,
    steering: BTreeMap<String, Steering>,
}

impl World {
    fn new(scenes: Vec<DesiredScene>) -> World {
        World {
            scenes,
            records: BTreeMap::new(),
            observed: vec![],
            busy_slots: BTreeSet::new(),
            busy_players: BTreeSet::new(),
            held_updates: BTreeSet::new(),
            deleted: BTreeSet::new(),
            strikes: BTreeMap::new(),
            now_ms: 100_000,
            max_players: 50,
            unseen_until_ms: 0,
            cleared: None,
            sources: BTreeMap::new(),
            running_since: HashMap::new(),
            onair: BTreeMap::new(),
            steering: BTreeMap::new(),
        }
    }

    /// The plan without its on-air part, for the tests of slot rules (the on-air
    /// choice has tests of its own).
    fn slot_plan(&self) -> Plan {
        Plan {
            onair: Vec::new(),
            onair_due_at_ms: None,
            ..self.plan()
        }
    }

    fn plan(&self) -> Plan {
        plan(&PlanInput {
            project: "p",
            prefix: "pk",
            scenes: &self.scenes,
            records: &self.records,
            observed: &self.observed,
            running_since: &self.running_since,
            onair: &self.onair,
            busy_slots: &self.busy_slots,
            busy_players: &self.busy_players,
            held_updates: &self.held_updates,
            deleted: &self.deleted,
            strikes: &self.strikes,
            now_ms: self.now_ms,
            list_lag_ms: LAG,
            max_players: self.max_players,
            unseen_until_ms: self.unseen_until_ms,
            cleared: self.cleared.as_ref(),
            sources: &self.sources,
            steering: &self.steering,
        })
    }
}

fn key(scene: &str, slot: u32) -> SlotKey {
    SlotKey::new("p", scene, slot)
}

fn creates(plan: &Plan) -> Vec<(String, Option<u32>)> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::Create(Create { name, uid, .. }) => Some((name.clone(), *uid)),
            _ => None,
        })
        .collect()
}

fn deletes(plan: &Plan) -> Vec<(String, DeleteReason)> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::Delete(Delete { name, reason, .. }) => Some((name.clone(), *reason)),
            _ => None,
        })
        .collect()
}

#[test]
fn after_a_lost_store_slots_list_does_not_show_wait_for_the_list_lag() {
    let mut w = World::new(vec![scene("news", 1, 0)]);
    w.observed = vec![listed("pk_news_m_3", "a", 1005, PlayerStatus::Running)];
    w.unseen_until_ms = w.now_ms + 1;
    let p = w.plan();
    assert!(creates(&p).is_empty(), "{p:?}");
    assert!(p.actions.iter().any(|a| matches!(a,
        Action::Adopt(Adopt { name, generation: 3, uid: Some(1005), .. }) if name == "pk_news_m_3")));
    w.now_ms = w.unseen_until_ms;
    assert_eq!(creates(&w.plan()), vec![("pk_news_b1_1".into(), None)]);
}

#[test]
fn a_uid_list_shows_differently_from_the_record_is_adopted() {
    let mut w = World::new(vec![scene("news", 0, 0)]);
    w.records.insert(
        key("news", 0),
        record("pk_news_m_1", 5, 1, Phase::Created, Some("a")),
    );
    w.observed = vec![listed("pk_news_m_1", "a", 9, PlayerStatus::Running)];
    let p = w.plan();
    assert!(
        p.actions
            .iter()
            .any(|a| matches!(a, Action::Adopt(Adopt { uid: Some(9), .. }))),
        "{p:?}"
    );
    w.records.get_mut(&key("news", 0)).unwrap().uid = 9;
    assert!(w.plan().actions.is_empty());
}

#[test]
fn empty_world_creates_master_and_backups() {
    let w = World::new(vec![scene("news", 2, 0)]);
    let p = w.plan();
    assert_eq!(
        creates(&p),
        vec![
            ("pk_news_m_1".into(), None),
            ("pk_news_b1_1".into(), None),
            ("pk_news_b2_1".into(), None)
        ]
    );
    assert!(p.over_quota.is_empty());
}

#[test]
fn listed_players_without_records_are_adopted_not_created() {
    let mut w = World::new(vec![scene("news", 0, 0)]);
    w.observed = vec![listed("pk_news_m_4", "id4", 7, PlayerStatus::Running)];
    let p = w.plan();
    assert_eq!(
        p.actions,
        vec![Action::Adopt(Adopt {
            key: key("news", 0),
            generation: 4,
            name: "pk_news_m_4".into(),
            id: "id4".into(),
            uid: Some(7),
            stream_url: None,
            channel: Some("ch".into()),
        })]
    );
}

#[test]
fn converged_world_plans_nothing() {
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
        listed("pk_news_m_1", "a", 1, PlayerStatus::Running),
        listed("pk_news_b1_1", "b", 2, PlayerStatus::Connecting),
    ];
    assert_eq!(w.slot_plan(), Plan::default());
}

#[test]
fn created_player_within_list_lag_is_waited_for() {
    let mut w = World::new(vec![scene("news", 0, 0)]);
    w.records.insert(
        key("news", 0),
        record("pk_news_m_1", 1, 1, Phase::Created, Some("a")),
    );
    w.now_ms = 1_000 + LAG - 1;
    let wait = Plan {
        recheck_at_ms: Some(1_000 + LAG),
        ..Plan::default()
    };
    assert_eq!(w.slot_plan(), wait, "waits, and knows until when");
}

#[test]
fn created_player_missing_after_lag_is_replaced_on_the_third_strike() {
    let mut w = World::new(vec![scene("news", 0, 0)]);
    w.records.insert(
        key("news", 0),
        record("pk_news_m_1", 1, 1, Phase::Created, Some("a")),
    );
    w.now_ms = 1_000 + LAG;
    for strikes in 0..3 {
        w.strikes.insert(key("news", 0), strikes);
        assert_eq!(w.slot_plan(), Plan::default(), "{strikes} strikes");
    }
    w.strikes.insert(key("news", 0), 3);
    assert_eq!(creates(&w.plan()), vec![("pk_news_m_2".into(), None)]);
}

#[test]
fn intent_missing_after_lag_is_retried_with_same_name_and_uid() {
    let mut w = World::new(vec![scene("news", 0, 0)]);
    w.records.insert(
        key("news", 0),
        record("pk_news_m_3", 42, 3, Phase::Intended, None),
    );
    w.now_ms = 1_000 + LAG;
    assert_eq!(creates(&w.plan()), vec![("pk_news_m_3".into(), Some(42))]);
}

#[test]
fn refused_create_is_retried_without_waiting_for_the_lag() {
    let mut w = World::new(vec![scene("news", 0, 0)]);
    w.records.insert(
        key("news", 0),
        record("pk_news_m_3", 43, 3, Phase::Refused, None),
    );
    w.now_ms = 1_001;
    assert_eq!(creates(&w.plan()), vec![("pk_news_m_3".into(), Some(43))]);
}

#[test]
fn intent_seen_in_list_is_adopted() {
    let mut w = World::new(vec![scene("news", 0, 0)]);
    w.records.insert(
        key("news", 0),
        record("pk_news_m_3", 42, 3, Phase::Intended, None),
    );
    w.observed = vec![listed("pk_news_m_3", "z", 42, PlayerStatus::Connecting)];
    let p = w.plan();
    assert!(matches!(&p.actions[..], [Action::Adopt(Adopt { id, .. })] if id == "z"));
}

#[test]
fn failed_player_is_deleted_and_replaced() {
    for status in [PlayerStatus::Failed, PlayerStatus::Stopped] {
        let mut w = World::new(vec![scene("news", 0, 0)]);
        w.records.insert(
            key("news", 0),
            record("pk_news_m_1", 1, 1, Phase::Created, Some("a")),
        );
        w.observed = vec![listed("pk_news_m_1", "a", 1, status)];
        let p = w.plan();
        assert_eq!(deletes(&p), vec![], "create first");
        assert_eq!(creates(&p), vec![("pk_news_m_2".into(), None)]);
        // The successor is listed: now the dead one goes.
        w.records.insert(
            key("news", 0),
            record("pk_news_m_2", 2, 2, Phase::Created, Some("b")),
        );
        w.observed
            .push(listed("pk_news_m_2", "b", 2, PlayerStatus::Connecting));
        assert_eq!(
            deletes(&w.plan()),
            vec![("pk_news_m_1".into(), DeleteReason::Failed)]
        );
    }
}

#[test]
fn at_full_quota_a_failed_player_is_deleted_before_its_replacement() {
    let mut w = World::new(vec![scene("news", 0, 0)]);
    w.max_players = 1;
    w.records.insert(
        key("news", 0),
        record("pk_news_m_1", 1, 1, Phase::Created, Some("a")),
    );
    w.observed = vec![listed("pk_news_m_1", "a", 1, PlayerStatus::Failed)];
    let p = w.plan();
    assert_eq!(
        deletes(&p),
        vec![("pk_news_m_1".into(), DeleteReason::Failed)]
    );
    assert_eq!(creates(&p), vec![]);
    assert_eq!(p.over_quota, vec![key("news", 0)]);
    // The delete finished: the player left the picture and is known gone, so its
    // replacement starts in the next pass, not after the List lag and three strikes.
    w.observed.clear();
    w.deleted.insert("a".into());
    assert_eq!(creates(&w.plan()), vec![("pk_news_m_2".into(), None)]);
}

#[test]
fn a_deleted_backup_is_replaced_only_once_no_master_create_is_in_flight() {
    let mut w = World::new(vec![scene("news", 1, 0), scene("sports", 0, 0)]);
    w.records.insert(
        key("news", 1),
        record("pk_news_b1_1", 2, 1, Phase::Created, Some("b")),
    );
    w.deleted.insert("b".into());
    w.busy_slots.insert(key("news", 0));
    w.busy_slots.insert(key("sports", 0));
    assert_eq!(creates(&w.plan()), vec![], "masters first");
    w.busy_slots.clear();
    w.records.insert(
        key("news", 0),
        record("pk_news_m_1", 1, 1, Phase::Created, Some("m")),
    );
    w.records.insert(
        key("sports", 0),
        record("pk_sports_m_1", 1, 1, Phase::Created, Some("s")),
    );
    w.observed = vec![
        listed("pk_news_m_1", "m", 1, PlayerStatus::Running),
        listed("pk_sports_m_1", "s", 1, PlayerStatus::Running),
    ];
    assert_eq!(creates(&w.plan()), vec![("pk_news_b1_2".into(), None)]);
}

#[test]
fn old_generation_stays_until_successor_is_listed() {
    let mut w = World::new(vec![scene("news", 0, 0)]);
    w.records.insert(
        key("news", 0),
        record("pk_news_m_2", 2, 2, Phase::Created, Some("b")),
    );
    w.observed = vec![listed("pk_news_m_1", "a", 1, PlayerStatus::Running)];
    w.now_ms = 2_000;
    let wait = Plan {
        recheck_at_ms: Some(1_000 + LAG),
        ..Plan::default()
    };
    assert_eq!(w.slot_plan(), wait, "make before break");
    w.observed
        .push(listed("pk_news_m_2", "b", 2, PlayerStatus::Running));
    assert_eq!(
        deletes(&w.plan()),
        vec![("pk_news_m_1".into(), DeleteReason::Superseded)]
    );
}

#[test]
fn removed_scene_and_surplus_slots_are_deleted_then_forgotten() {
    let mut w = World::new(vec![scene("news", 0, 0)]);
    w.records.insert(
        key("news", 0),
        record("pk_news_m_1", 1, 1, Phase::Created, Some("a")),
    );
    w.records.insert(
        key("news", 1),
        record("pk_news_b1_1", 2, 1, Phase::Created, Some("b")),
    );
    w.records.insert(
        key("gone", 0),
        record("pk_gone_m_1", 3, 1, Phase::Created, Some("c")),
    );
    w.observed = vec![
        listed("pk_news_m_1", "a", 1, PlayerStatus::Running),
        listed("pk_news_b1_1", "b", 2, PlayerStatus::Running),
        listed("pk_gone_m_1", "c", 3, PlayerStatus::Running),
    ];
    let mut d = deletes(&w.plan());
    d.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        d,
        vec![
            ("pk_gone_m_1".into(), DeleteReason::SceneRemoved),
            ("pk_news_b1_1".into(), DeleteReason::SlotRemoved)
        ]
    );
    // Once List no longer shows them, the records go.
    w.observed.truncate(1);
    let p = w.plan();
    assert_eq!(
        p.actions,
        vec![
            Action::Forget(key("gone", 0)),
            Action::Forget(key("news", 1))
        ]
    );
}

#[test]
fn foreign_players_are_never_touched() {
    let mut w = World::new(vec![]);
    w.observed = vec![
        listed("news_101", "f1", 101, PlayerStatus::Failed),
        listed("other_x_m_1", "f2", 102, PlayerStatus::Running),
        ListedPlayer {
            name: None,
            ..listed("", "f3", 103, PlayerStatus::Running)
        },
    ];
    assert_eq!(w.slot_plan(), Plan::default());
}

#[test]
fn in_flight_work_is_not_decided_again() {
    let mut w = World::new(vec![scene("news", 0, 0)]);
    w.busy_slots.insert(key("news", 0));
    assert_eq!(w.slot_plan(), Plan::default());
    let mut w = World::new(vec![]);
    w.observed = vec![listed("pk_gone_m_1", "c", 3, PlayerStatus::Running)];
    w.busy_players.insert("c".into());
    assert_eq!(w.slot_plan(), Plan::default());
}

#[test]
fn quota_counts_foreign_and_pending_players_and_admits_masters_first() {
    let mut w = World::new(vec![scene("low", 1, 0), scene("high", 1, 5)]);
    w.max_players = 3;
    w.observed = vec![listed("foreign", "f", 9, PlayerStatus::Running)];
    let p = w.plan();
    assert_eq!(
        creates(&p),
        vec![("pk_high_m_1".into(), None), ("pk_low_m_1".into(), None)]
    );
    assert_eq!(p.over_quota, vec![key("high", 1), key("low", 1)]);
    // A pending create still counts against the quota.
    w.records.insert(
        key("high", 0),
        record("pk_high_m_1", 1, 1, Phase::Created, Some("a")),
    );
    w.now_ms = 1_500;
    let p = w.plan();
    assert_eq!(creates(&p), vec![("pk_low_m_1".into(), None)]);
}

mod hold;
mod props;
mod rollout;
mod steering;

#[test]
fn a_failed_master_goes_off_air_in_the_pass_that_replaces_it() {
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
    w.running_since.insert("pk_news_b1_1".into(), 50_000);
    let master_on_air = OnAir {
        slot: Some(0),
        uid: Some(1),
        version: 4,
        switches: 1,
        since_ms: 1_000,
        failed_over: false,
        reason: None,
    };
    w.onair.insert("news".into(), master_on_air);
    let p = w.plan();
    assert_eq!(creates(&p), vec![("pk_news_m_2".into(), None)]);
    let [decision] = &p.onair[..] else {
        panic!("one decision per scene: {:?}", p.onair);
    };
    assert_eq!(decision.reason, Some(crate::model::SwitchReason::Failover));
    assert_eq!(
        (decision.onair.slot, decision.onair.uid),
        (Some(1), Some(2))
    );
    assert_eq!(decision.onair.version, 5, "the version only grows");
    assert_eq!(decision.previous, master_on_air);
    assert_eq!(decision.healthy, 1);

    // Decided and recorded, the same picture decides nothing new.
    w.onair.insert("news".into(), decision.onair);
    assert_eq!(w.plan().onair[0].reason, None);
}
