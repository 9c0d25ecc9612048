//! Reloads: Update in place for what Update can change, a one-slot-at-a-time rollout for
//! the rest; then a property over random reloads: no scene ever has fewer running
//! players than slots while it rolls out, and it converges.

use super::*;
use crate::model::{DEFAULT_VOLUME, Spec};
use proptest::prelude::*;

/// A converged scene `news` with `backups`: every slot's generation 1 runs.
fn converged(backups: u32) -> World {
    let mut w = World::new(vec![scene("news", backups, 0)]);
    for slot in 0..=backups {
        let name = format_name("pk", "news", slot, 1);
        let id = format!("id{slot}");
        w.records.insert(
            key("news", slot),
            record(&name, 10 + slot, 1, Phase::Created, Some(&id)),
        );
        let mut p = listed(&name, &id, u64::from(10 + slot), PlayerStatus::Running);
        p.stream_url = Some(live().stream_url);
        w.observed.push(p);
    }
    w
}

fn updates(plan: &Plan) -> Vec<(String, bool, bool)> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::Update(Update {
                name,
                send_stream_url,
                send_volume,
                ..
            }) => Some((name.clone(), *send_stream_url, *send_volume)),
            _ => None,
        })
        .collect()
}

fn rollout_creates(plan: &Plan) -> Vec<String> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::Create(Create {
                name,
                rollout: Some(_),
                ..
            }) => Some(name.clone()),
            _ => None,
        })
        .collect()
}

/// Applies a plan as Agora would: new players start `connecting`, Updates take effect.
fn apply(w: &mut World, plan: &Plan, next_id: &mut u32, next_uid: &mut u32) {
    for action in &plan.actions {
        match action {
            Action::Create(Create {
                key,
                generation,
                name,
                uid,
                ..
            }) => {
                let uid = uid.unwrap_or_else(|| {
                    *next_uid += 1;
                    *next_uid
                });
                *next_id += 1;
                let id = format!("new{next_id}");
                let scene = w.scenes.iter().find(|s| s.name == key.scene).unwrap();
                let spec = Spec {
                    live: Live {
                        volume: DEFAULT_VOLUME,
                        ..scene.live.clone()
                    },
                    fixed: scene.fixed.clone(),
                };
                let mut p = listed(name, &id, uid.into(), PlayerStatus::Connecting);
                p.stream_url = Some(spec.live.stream_url.clone());
                w.observed.push(p);
                let mut r = record(name, uid, *generation, Phase::Created, Some(&id));
                r.created_at_ms = w.now_ms;
                r.spec = Some(spec);
                w.records.insert(key.clone(), r);
            }
            Action::Update(Update { key, id, to, .. }) => {
                let r = w.records.get_mut(key).unwrap();
                r.spec.as_mut().unwrap().live = to.clone();
                let p = w.observed.iter_mut().find(|p| &p.id == id).unwrap();
                p.stream_url = Some(to.stream_url.clone());
            }
            Action::Delete(Delete { id, .. }) => w.observed.retain(|p| &p.id != id),
            other => panic!("a reload of a converged world needs no {other:?}"),
        }
    }
    w.now_ms += LAG;
    crate::reconcile::observe::count_strikes(
        &mut w.strikes,
        &w.records,
        &w.observed,
        w.now_ms,
        LAG,
    );
}

/// New players get going: each `connecting` one turns `to`.
fn progress(w: &mut World, to: PlayerStatus) {
    for p in &mut w.observed {
        if p.status == Some(PlayerStatus::Connecting) {
            p.status = Some(to);
        }
    }
}

#[test]
fn a_new_stream_url_updates_every_live_player_in_place() {
    let mut w = converged(2);
    w.scenes[0].live.stream_url = "rtmp://origin/other".into();
    let p = w.plan();
    assert_eq!(
        updates(&p),
        vec![
            ("pk_news_m_1".into(), true, false),
            ("pk_news_b1_1".into(), true, false),
            ("pk_news_b2_1".into(), true, false),
        ]
    );
    assert_eq!(creates(&p), vec![]);
    assert_eq!(deletes(&p), vec![]);
}

#[test]
fn a_new_volume_sends_only_the_volume() {
    let mut w = converged(0);
    w.scenes[0].live.volume = 40;
    assert_eq!(
        updates(&w.plan()),
        vec![("pk_news_m_1".into(), false, true)]
    );
}

#[test]
fn an_update_list_already_shows_is_only_recorded() {
    let mut w = converged(0);
    w.scenes[0].live.stream_url = "rtmp://origin/other".into();
    w.observed[0].stream_url = Some("rtmp://origin/other".into());
    assert_eq!(
        updates(&w.plan()),
        vec![("pk_news_m_1".into(), false, false)]
    );
}

#[test]
fn a_busy_slot_gets_no_update() {
    let mut w = converged(0);
    w.scenes[0].live.stream_url = "rtmp://origin/other".into();
    w.busy_slots.insert(key("news", 0));
    assert_eq!(w.slot_plan(), Plan::default());
}

#[test]
fn a_held_update_is_not_decided_but_its_failed_player_is_still_replaced() {
    let mut w = converged(1);
    w.scenes[0].live.stream_url = "rtmp://origin/other".into();
    w.held_updates.insert(key("news", 0));
    assert_eq!(
        updates(&w.plan()),
        vec![("pk_news_b1_1".into(), true, false)]
    );
    w.observed[0].status = Some(PlayerStatus::Failed);
    assert_eq!(creates(&w.plan()), vec![("pk_news_m_2".to_string(), None)]);
}

#[test]
fn a_record_without_a_spec_is_adopted_again_to_learn_it() {
    let mut w = converged(0);
    w.records.get_mut(&key("news", 0)).unwrap().spec = None;
    let p = w.plan();
    assert!(
        matches!(&p.actions[..], [Action::Adopt(Adopt { name, stream_url: Some(_), .. })] if name == "pk_news_m_1"),
        "{p:?}"
    );
}

#[test]
fn a_create_only_change_replaces_one_slot_at_a_time_backups_first_master_last() {
    let mut w = converged(2);
    w.scenes[0].fixed.idle_timeout = 120;
    let (mut next_id, mut next_uid) = (0, 100);
    let mut order = vec![];
    for _ in 0..20 {
        let p = w.plan();
        if p.actions.is_empty() {
            break;
        }
        let step = rollout_creates(&p);
        assert!(step.len() <= 1, "one step at a time: {p:?}");
        apply(&mut w, &p, &mut next_id, &mut next_uid);
        if !step.is_empty() {
            // Not running yet: the old player stays, and the next slot waits.
            let p = w.plan();
            assert_eq!(deletes(&p), vec![], "make before break");
            assert_eq!(rollout_creates(&p), Vec::<String>::new());
        }
        order.extend(step);
        progress(&mut w, PlayerStatus::Running);
    }
    assert_eq!(order, ["pk_news_b2_2", "pk_news_b1_2", "pk_news_m_2"]);
    assert_eq!(w.observed.len(), 3);
    assert!(
        w.records
            .values()
            .all(|r| r.spec.as_ref().unwrap().fixed.idle_timeout == 120)
    );
}

#[test]
fn the_replaced_player_goes_once_its_successor_runs() {
    let mut w = converged(0);
    w.scenes[0].fixed.channel = "moved".into();
    let p = w.plan();
    assert!(matches!(
        &p.actions[..],
        [Action::Create(Create { name, uid: None, rollout: Some(Rollout { replaces, changed }), .. })]
            if name == "pk_news_m_2" && replaces == "pk_news_m_1" && changed == &["channel"]
    ));
    let (mut next_id, mut next_uid) = (0, 100);
    apply(&mut w, &p, &mut next_id, &mut next_uid);
    assert_eq!(w.slot_plan(), Plan::default(), "connecting is not running");
    progress(&mut w, PlayerStatus::Running);
    assert_eq!(
        deletes(&w.plan()),
        vec![("pk_news_m_1".into(), DeleteReason::Superseded)]
    );
}

#[test]
fn a_failing_successor_is_replaced_while_the_old_player_keeps_running() {
    let mut w = converged(0);
    w.scenes[0].fixed.region = crate::agora::wire::Region::Eu;
    let (mut next_id, mut next_uid) = (0, 100);
    let p = w.plan();
    apply(&mut w, &p, &mut next_id, &mut next_uid);
    progress(&mut w, PlayerStatus::Failed);
    let p = w.plan();
    assert_eq!(creates(&p), vec![("pk_news_m_3".into(), None)]);
    assert_eq!(
        deletes(&p),
        vec![],
        "pk_news_m_1 still runs; nothing runs in its place"
    );
}

#[test]
fn a_uid_outside_a_narrowed_range_is_replaced() {
    let mut w = converged(1);
    w.scenes[0].uids = UidRange { start: 11, end: 99 };
    let p = w.plan();
    assert_eq!(rollout_creates(&p), vec!["pk_news_m_2".to_string()]);
}

#[test]
fn a_rollout_step_waits_for_quota_room_and_says_so() {
    let mut w = converged(1);
    w.max_players = 2;
    w.scenes[0].fixed.idle_timeout = 120;
    let p = w.plan();
    assert_eq!(creates(&p), vec![]);
    assert_eq!(p.over_quota, vec![key("news", 1)]);
}

/// How a reload changes one scene.
#[derive(Debug, Clone)]
struct Reload {
    backups: u32,
    create_only: bool,
    url: bool,
    volume: bool,
}

fn arb_reload() -> impl Strategy<Value = Reload> {
    (0u32..4, any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
        |(backups, create_only, url, volume)| Reload {
            backups,
            create_only,
            url,
            volume,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Whatever a reload changes and however the new players fare, every scene keeps at
    /// least as many running players as it has slots, at most one slot of a scene is
    /// between players at a time, the master goes last, and the world converges to the
    /// new configuration; a reload Update can carry keeps every player and UID.
    #[test]
    fn rollouts_never_leave_a_scene_short_of_running_players(
        reloads in prop::collection::vec(arb_reload(), 1..4),
        // How new players fare, round by round; running once these run out.
        fates in prop::collection::vec(
            prop_oneof![
                Just(PlayerStatus::Running),
                Just(PlayerStatus::Connecting),
                Just(PlayerStatus::Failed),
            ],
            0..12,
        ),
    ) {
        let mut w = World::new(vec![]);
        let mut uid = 0u32;
        for (i, r) in reloads.iter().enumerate() {
            let name = format!("s{i}");
            w.scenes.push(scene(&name, r.backups, 0));
            for slot in 0..=r.backups {
                uid += 1;
                let player = format_name("pk", &name, slot, 1);
                let id = format!("old{uid}");
                w.records.insert(key(&name, slot), record(&player, uid, 1, Phase::Created, Some(&id)));
                let mut p = listed(&player, &id, uid.into(), PlayerStatus::Running);
                p.stream_url = Some(live().stream_url);
                w.observed.push(p);
            }
        }
        let before: BTreeSet<(String, Option<u64>)> =
            w.observed.iter().map(|p| (p.id.clone(), p.uid)).collect();
        for (s, r) in w.scenes.iter_mut().zip(&reloads) {
            if r.create_only {
                s.fixed.idle_timeout = 60;
            }
            if r.url {
                s.live.stream_url = "rtmp://origin/new".into();
            }
            if r.volume {
                s.live.volume = 150;
            }
        }
        let (mut next_id, mut next_uid) = (0, 10_000);
        let running = |w: &World, scene: &str| {
            w.observed.iter()
                .filter(|p| is_running(p.status))
                .filter(|p| parse_name("pk", p.name.as_deref().unwrap()).is_some_and(|n| n.scene == scene))
                .count() as u32
        };
        let mut round = 0;
        loop {
            let p = w.plan();
            if p.actions.is_empty() && !w.observed.iter().any(|o| o.status == Some(PlayerStatus::Connecting)) {
                break;
            }
            prop_assert!(round < 60, "no convergence: {:?}", p);
            for s in &w.scenes {
                let steps: Vec<&Action> = p.actions.iter()
                    .filter(|a| matches!(a, Action::Create(Create { key, rollout: Some(_), .. }) if key.scene == s.name))
                    .collect();
                prop_assert!(steps.len() <= 1, "two rollout steps at once in {}", s.name);
                if let Some(Action::Create(Create { key, .. })) = steps.first() && key.is_master() {
                    let backups_done = (1..s.slots).all(|slot| {
                        w.records[&SlotKey::new("p", &s.name, slot)].spec.as_ref().unwrap().fixed == s.fixed
                    });
                    prop_assert!(backups_done, "master of {} rolled before its backups", s.name);
                }
            }
            apply(&mut w, &p, &mut next_id, &mut next_uid);
            for s in &w.scenes {
                prop_assert!(running(&w, &s.name) >= s.slots, "{} short of running players after a plan", s.name);
            }
            progress(&mut w, fates.get(round).copied().unwrap_or(PlayerStatus::Running));
            for s in &w.scenes {
                prop_assert!(running(&w, &s.name) >= s.slots, "{} short of running players", s.name);
            }
            round += 1;
        }
        for s in &w.scenes {
            prop_assert_eq!(running(&w, &s.name), s.slots);
            for slot in 0..s.slots {
                let spec = w.records[&SlotKey::new("p", &s.name, slot)].spec.clone().unwrap();
                prop_assert_eq!(&spec.live, &s.live);
                prop_assert_eq!(&spec.fixed, &s.fixed);
            }
        }
        for (s, r) in w.scenes.iter().zip(&reloads) {
            if r.create_only {
                continue;
            }
            let ids: BTreeSet<(String, Option<u64>)> = w.observed.iter()
                .filter(|p| parse_name("pk", p.name.as_deref().unwrap()).is_some_and(|n| n.scene == s.name))
                .map(|p| (p.id.clone(), p.uid))
                .collect();
            prop_assert!(ids.is_subset(&before), "{} lost a player or UID to an in-place change", s.name);
        }
    }
}
