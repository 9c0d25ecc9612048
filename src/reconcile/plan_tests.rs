//! One test per planning rule, then properties over random worlds.

use super::*;
use crate::store::RECORD_VERSION;
use proptest::prelude::*;

const LAG: u64 = 12_000;

fn scene(name: &str, backups: u32, priority: i32) -> DesiredScene {
    DesiredScene {
        name: name.into(),
        slots: backups + 1,
        priority,
        strike_threshold: 3,
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
        region: crate::agora::model::Region::Na,
        id: id.map(Into::into),
        created_at_ms: 1_000,
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
    strikes: BTreeMap<SlotKey, u32>,
    now_ms: u64,
    max_players: u32,
}

impl World {
    fn new(scenes: Vec<DesiredScene>) -> World {
        World {
            scenes,
            records: BTreeMap::new(),
            observed: vec![],
            busy_slots: BTreeSet::new(),
            busy_players: BTreeSet::new(),
            strikes: BTreeMap::new(),
            now_ms: 100_000,
            max_players: 50,
        }
    }

    fn plan(&self) -> Plan {
        plan(&PlanInput {
            project: "p",
            prefix: "pk",
            scenes: &self.scenes,
            records: &self.records,
            observed: &self.observed,
            busy_slots: &self.busy_slots,
            busy_players: &self.busy_players,
            strikes: &self.strikes,
            now_ms: self.now_ms,
            list_lag_ms: LAG,
            max_players: self.max_players,
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
            Action::Create { name, uid, .. } => Some((name.clone(), *uid)),
            _ => None,
        })
        .collect()
}

fn deletes(plan: &Plan) -> Vec<(String, DeleteReason)> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::Delete { name, reason, .. } => Some((name.clone(), *reason)),
            _ => None,
        })
        .collect()
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
        vec![Action::Adopt {
            key: key("news", 0),
            generation: 4,
            name: "pk_news_m_4".into(),
            id: "id4".into(),
            uid: Some(7),
        }]
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
    assert_eq!(w.plan(), Plan::default());
}

#[test]
fn created_player_within_list_lag_is_waited_for() {
    let mut w = World::new(vec![scene("news", 0, 0)]);
    w.records.insert(
        key("news", 0),
        record("pk_news_m_1", 1, 1, Phase::Created, Some("a")),
    );
    w.now_ms = 1_000 + LAG - 1;
    assert_eq!(w.plan(), Plan::default());
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
        assert_eq!(w.plan(), Plan::default(), "{strikes} strikes");
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
    assert!(matches!(&p.actions[..], [Action::Adopt { id, .. }] if id == "z"));
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
    assert_eq!(w.plan(), Plan::default(), "make before break");
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
            Action::Forget {
                key: key("gone", 0)
            },
            Action::Forget {
                key: key("news", 1)
            }
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
    assert_eq!(w.plan(), Plan::default());
}

#[test]
fn in_flight_work_is_not_decided_again() {
    let mut w = World::new(vec![scene("news", 0, 0)]);
    w.busy_slots.insert(key("news", 0));
    assert_eq!(w.plan(), Plan::default());
    let mut w = World::new(vec![]);
    w.observed = vec![listed("pk_gone_m_1", "c", 3, PlayerStatus::Running)];
    w.busy_players.insert("c".into());
    assert_eq!(w.plan(), Plan::default());
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

// ---- properties ------------------------------------------------------------------

/// Applies a plan the way a perfect Agora and executor would, `lag` later.
fn apply(w: &mut World, plan: &Plan, next_id: &mut u32, next_uid: &mut u32) {
    for action in &plan.actions {
        match action {
            Action::Create {
                key,
                generation,
                name,
                uid,
            } => {
                let uid = uid.unwrap_or_else(|| {
                    *next_uid += 1;
                    *next_uid
                });
                *next_id += 1;
                let id = format!("id{next_id}");
                w.observed
                    .push(listed(name, &id, uid.into(), PlayerStatus::Running));
                let mut r = record(name, uid, *generation, Phase::Created, Some(&id));
                r.created_at_ms = w.now_ms;
                w.records.insert(key.clone(), r);
            }
            Action::Adopt {
                key,
                generation,
                name,
                id,
                uid,
            } => {
                let mut r = record(
                    name,
                    uid.unwrap_or(0),
                    *generation,
                    Phase::Created,
                    Some(id),
                );
                r.created_at_ms = w.now_ms;
                w.records.insert(key.clone(), r);
            }
            Action::Delete { id, .. } => w.observed.retain(|p| &p.id != id),
            Action::Forget { key } => {
                w.records.remove(key);
            }
        }
    }
    w.now_ms += LAG;
    crate::reconcile::health::count_strikes(&mut w.strikes, &w.records, &w.observed, w.now_ms, LAG);
}

fn arb_status() -> impl Strategy<Value = PlayerStatus> {
    prop_oneof![
        Just(PlayerStatus::Running),
        Just(PlayerStatus::Connecting),
        Just(PlayerStatus::Failed),
        Just(PlayerStatus::Stopped),
    ]
}

prop_compose! {
    fn arb_world()(
        scenes in prop::collection::btree_map("[a-c]", (0u32..3, -2i32..3), 0..4),
        owned in prop::collection::vec(("[a-d]", 0u32..4, 1u64..4, arb_status()), 0..8),
        foreign in prop::collection::vec(arb_status(), 0..3),
        records in prop::collection::vec(("[a-d]", 0u32..4, 1u64..4, 0u8..3, 0u64..3), 0..6),
        max_players in 0u32..12,
        struck in any::<bool>(),
    ) -> World {
        let mut w = World::new(scenes.into_iter().map(|(n, (b, p))| scene(&n, b, p)).collect());
        w.max_players = max_players;
        let mut seen = BTreeSet::new();
        for (i, (s, slot, generation, status)) in owned.into_iter().enumerate() {
            let name = naming::format("pk", &s, slot, generation);
            if seen.insert(name.clone()) {
                w.observed.push(listed(&name, &format!("o{i}"), 1000 + i as u64, status));
            }
        }
        for (i, status) in foreign.into_iter().enumerate() {
            w.observed.push(listed(&format!("foreign_{i}"), &format!("f{i}"), 2000 + i as u64, status));
        }
        for (s, slot, generation, phase, age) in records {
            let name = naming::format("pk", &s, slot, generation);
            let phase = [Phase::Created, Phase::Intended, Phase::Refused][phase as usize];
            let mut r = record(&name, 3000, generation, phase, None);
            r.created_at_ms = w.now_ms - age * LAG / 2;
            w.records.insert(key(&s, slot), r);
            if struck {
                w.strikes.insert(key(&s, slot), 3);
            }
        }
        w
    }
}

proptest! {
    #[test]
    fn plans_respect_quota_ownership_and_uniqueness(w in arb_world()) {
        let p = w.plan();
        let n_creates = creates(&p).len() as u32;
        prop_assert!(w.observed.len() as u32 + n_creates <= w.max_players.max(w.observed.len() as u32));
        let master_waits = p.over_quota.iter().any(|k| k.is_master());
        let mut created_keys = BTreeSet::new();
        for a in &p.actions {
            match a {
                Action::Delete { name, .. } => {
                    prop_assert!(naming::parse("pk", name).is_some(), "deleted foreign {}", name);
                }
                Action::Create { key, name, .. } => {
                    prop_assert!(created_keys.insert(key.clone()), "two creates for {}", key);
                    prop_assert!(key.is_master() || !master_waits, "backup {} admitted while a master waits", key);
                    prop_assert!(!w.observed.iter().any(|o| o.name.as_deref() == Some(name)));
                }
                _ => {}
            }
        }
    }

    #[test]
    fn plans_converge_to_one_live_player_per_slot(mut w in arb_world()) {
        w.max_players = 50;
        let (mut next_id, mut next_uid) = (0, 10_000);
        let mut rounds = 0;
        loop {
            let p = w.plan();
            if p.actions.is_empty() && !w.strikes.values().any(|&s| s > 0) {
                break;
            }
            rounds += 1;
            prop_assert!(rounds <= 8, "no convergence: {:?}", p);
            apply(&mut w, &p, &mut next_id, &mut next_uid);
        }
        let want: u32 = w.scenes.iter().map(|s| s.slots).sum();
        let owned: Vec<_> = w.observed.iter()
            .filter_map(|o| naming::parse("pk", o.name.as_deref()?))
            .collect();
        prop_assert_eq!(owned.len() as u32, want);
        for o in w.observed.iter().filter(|o| naming::parse("pk", o.name.as_deref().unwrap_or("")).is_some()) {
            prop_assert!(!is_dead(o.status));
        }
    }
}
