//! Properties of the plan over random worlds: quota, ownership, admission order,
//! convergence.

use super::*;
use proptest::prelude::*;

/// Applies a plan the way a perfect Agora and executor would, `lag` later.
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
                let id = format!("id{next_id}");
                w.observed
                    .push(listed(name, &id, uid.into(), PlayerStatus::Running));
                let mut r = record(name, uid, *generation, Phase::Created, Some(&id));
                r.created_at_ms = w.now_ms;
                w.records.insert(key.clone(), r);
            }
            Action::Adopt(Adopt {
                key,
                generation,
                name,
                id,
                uid,
                ..
            }) => {
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
            Action::Update(Update { key, to, .. }) => {
                let spec = w.records.get_mut(key).and_then(|r| r.spec.as_mut());
                spec.expect("updates go to recorded players").live = to.clone();
            }
            Action::Delete(Delete { id, .. }) => w.observed.retain(|p| &p.id != id),
            Action::Forget(key) => {
                w.records.remove(key);
            }
        }
    }
    // A lag later, players that were connecting play: a live player's successor must run
    // before it makes way, so a model where nothing ever connects could not converge.
    for p in &mut w.observed {
        if p.status == Some(PlayerStatus::Connecting) {
            p.status = Some(PlayerStatus::Running);
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
            let name = format_name("pk", &s, slot, generation);
            if seen.insert(name.clone()) {
                w.observed.push(listed(&name, &format!("o{i}"), 1000 + i as u64, status));
            }
        }
        for (i, status) in foreign.into_iter().enumerate() {
            w.observed.push(listed(&format!("foreign_{i}"), &format!("f{i}"), 2000 + i as u64, status));
        }
        for (s, slot, generation, phase, age) in records {
            let name = format_name("pk", &s, slot, generation);
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
                Action::Delete(Delete { name, .. }) => {
                    prop_assert!(parse_name("pk", name).is_some(), "deleted foreign {}", name);
                }
                Action::Create(Create { key, name, .. }) => {
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
            // A recorded player the List does not show is not settled: the plan waits
            // out the List lag, then strikes build up (counted in `apply`) until it is
            // replaced, so stopping at the first empty plan would stop too early.
            let unlisted = w.records.values().any(|r| {
                !w.observed.iter().any(|o| o.name.as_deref() == Some(r.name.as_str()))
            });
            if p.actions.is_empty() && !unlisted && !w.strikes.values().any(|&s| s > 0) {
                break;
            }
            rounds += 1;
            prop_assert!(rounds <= 8, "no convergence: {:?}", p);
            apply(&mut w, &p, &mut next_id, &mut next_uid);
        }
        let want: u32 = w.scenes.iter().map(|s| s.slots).sum();
        let owned: Vec<_> = w.observed.iter()
            .filter_map(|o| parse_name("pk", o.name.as_deref()?))
            .collect();
        prop_assert_eq!(owned.len() as u32, want);
        for o in w.observed.iter().filter(|o| parse_name("pk", o.name.as_deref().unwrap_or("")).is_some()) {
            prop_assert!(!is_dead(o.status));
        }
    }
}

proptest! {
    /// The controller skips passes on this: until `recheck_at_ms`, the passing of time
    /// alone never changes what the same inputs plan.
    #[test]
    fn a_plan_holds_until_its_recheck_instant(
        mut w in arb_world(),
        unseen in prop::option::of(1u64..2 * LAG),
        later in 0u64..3 * LAG,
    ) {
        if let Some(unseen) = unseen {
            w.unseen_until_ms = w.now_ms + unseen;
        }
        let p = w.plan();
        if let Some(at) = p.recheck_at_ms {
            prop_assert!(at > w.now_ms, "recheck {} not after now {}", at, w.now_ms);
        }
        let t = w.now_ms + later;
        if p.recheck_at_ms.is_none_or(|at| t < at) {
            w.now_ms = t;
            let q = w.plan();
            prop_assert_eq!((q.actions, q.over_quota, q.held), (p.actions, p.over_quota, p.held));
        }
    }
}
