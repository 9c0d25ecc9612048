//! Steering in the whole plan: maintenance stops every create, delete and update of its
//! scene (and only of its scene), and a replace drill's master is replaced as a failed
//! one would be.

use super::*;

/// `news` (master and one backup) with both players running, master on air.
fn running_news() -> World {
    let mut w = World::new(vec![scene("news", 1, 0)]);
    for (slot, name, id, uid) in [(0, "pk_news_m_1", "a", 1), (1, "pk_news_b1_1", "b", 2)] {
        w.records.insert(
            key("news", slot),
            record(name, uid, 1, Phase::Created, Some(id)),
        );
        w.observed
            .push(listed(name, id, u64::from(uid), PlayerStatus::Running));
        w.running_since.insert(name.into(), 1_000);
    }
    w.onair.insert(
        "news".into(),
        OnAir {
            slot: Some(0),
            uid: Some(1),
            version: 1,
            switches: 1,
            since_ms: 1_000,
            failed_over: false,
            reason: Some(crate::model::SwitchReason::Started),
        },
    );
    w
}

fn steer(w: &mut World, steering: Steering) {
    w.steering.insert("news".into(), steering);
}

fn maintained() -> Steering {
    Steering {
        maintenance: true,
        ..Steering::default()
    }
}

#[test]
fn a_scene_in_maintenance_gets_no_create_delete_or_update_but_keeps_its_air_choice() {
    let mut w = running_news();
    w.scenes.push(scene("sport", 0, 0));
    steer(&mut w, maintained());
    // The master fails and the URL changed.
    w.observed[0].status = Some(PlayerStatus::Failed);
    w.running_since.remove("pk_news_m_1");
    w.scenes[0].live.stream_url = "rtmp://origin/changed".into();
    let news = |p: &Plan| -> Vec<Action> {
        p.actions
            .iter()
            .filter(|a| format!("{a:?}").contains("news"))
            .cloned()
            .collect()
    };
    let p = w.plan();
    assert!(news(&p).is_empty(), "{p:?}");
    // Another scene is supervised as ever.
    assert_eq!(creates(&p), vec![("pk_sport_m_1".into(), None)]);
    // The air is still chosen (a pointer, not an action on a player).
    let decision = p.onair.iter().find(|d| d.scene == "news").unwrap();
    assert_eq!(decision.reason, Some(crate::model::SwitchReason::Failover));

    // Nor is a backup removed from the configuration deleted.
    w.scenes[0].slots = 1;
    assert!(news(&w.plan()).is_empty());

    // Out of maintenance, the same world is acted on.
    w.steering.clear();
    let p = w.plan();
    assert!(creates(&p).contains(&("pk_news_m_2".into(), None)), "{p:?}");
    assert!(
        deletes(&p).contains(&("pk_news_b1_1".into(), DeleteReason::SlotRemoved)),
        "{p:?}"
    );
}

#[test]
fn maintenance_players_count_against_the_quota() {
    let mut w = running_news();
    w.scenes.push(scene("sport", 0, 0));
    steer(&mut w, maintained());
    w.max_players = 2;
    let p = w.plan();
    assert!(creates(&p).is_empty());
    assert_eq!(p.over_quota, vec![key("sport", 0)]);
}

#[test]
fn a_replace_drill_replaces_the_running_master_like_a_failed_one() {
    let mut w = running_news();
    w.onair.get_mut("news").unwrap().slot = Some(1);
    w.onair.get_mut("news").unwrap().uid = Some(2);
    steer(
        &mut w,
        Steering {
            failed: Some("pk_news_m_1".into()),
            ..Steering::default()
        },
    );
    let p = w.plan();
    assert_eq!(creates(&p), vec![("pk_news_m_2".into(), None)]);
    assert!(deletes(&p).is_empty(), "deleted once its successor shows");
    let decision = &p.onair[0];
    assert_eq!((decision.onair.slot, decision.reason), (Some(1), None));

    // The successor is created and listed: the drilled master is deleted as failed,
    // and the air stays on the backup until the successor runs.
    w.records.insert(
        key("news", 0),
        record("pk_news_m_2", 3, 2, Phase::Created, Some("c")),
    );
    w.observed
        .push(listed("pk_news_m_2", "c", 3, PlayerStatus::Connecting));
    let p = w.plan();
    assert_eq!(
        deletes(&p),
        vec![("pk_news_m_1".into(), DeleteReason::Failed)]
    );
    assert!(creates(&p).is_empty());
    assert_eq!(p.onair[0].reason, None);
}
