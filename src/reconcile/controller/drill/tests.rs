//! A drill's steps, fed pass by pass on explicit instants.

use super::*;
use crate::model::{OnAir, Phase, RECORD_VERSION, Region};

fn report(mode: DrillMode, hold_ms: u64) -> DrillReport {
    DrillReport {
        id: "news-1000".into(),
        project: "p".into(),
        scene: "news".into(),
        mode,
        hold_ms,
        started_ms: 1_000,
        state: DrillState::Running,
        steps: vec![DrillStep {
            step: "switch_published",
            at_ms: 1_000,
            uid: Some(11),
        }],
        on_air_throughout: true,
    }
}

fn decision(slot: Option<u32>, uid: Option<u32>) -> OnAirDecision {
    let onair = OnAir {
        slot,
        uid,
        ..OnAir::default()
    };
    OnAirDecision {
        scene: "news".into(),
        previous: onair,
        onair,
        reason: None,
        healthy: 2,
        request: None,
        pin_released: false,
    }
}

fn master(name: &str, generation: u64, uid: u32) -> BTreeMap<SlotKey, SlotRecord> {
    let record = SlotRecord {
        v: RECORD_VERSION,
        name: name.into(),
        uid,
        generation,
        phase: Phase::Created,
        region: Region::Na,
        id: Some(format!("id-{name}")),
        created_at_ms: 0,
        spec: None,
    };
    BTreeMap::from([(SlotKey::new("p", "news", 0), record)])
}

fn listed(name: &str) -> ListedPlayer {
    serde_json::from_value(serde_json::json!({
        "id": format!("id-{name}"), "name": name, "uid": 1, "status": "running"
    }))
    .unwrap()
}

fn steps(d: &Drill) -> Vec<(&'static str, u64)> {
    d.report().steps.iter().map(|s| (s.step, s.at_ms)).collect()
}

#[test]
fn a_switch_drill_holds_then_ends_back_on_the_master() {
    let mut d = Drill::start(report(DrillMode::Switch, 30_000), 1, None, true);
    assert_eq!(d.hold(), Some((1, 31_000)));
    assert_eq!(d.failed(), None);
    let none = HashMap::new();
    let records = BTreeMap::new();
    assert!(
        d.observe(
            Some(&decision(Some(1), Some(11))),
            &records,
            &none,
            &[],
            20_000
        )
        .is_empty()
    );
    // The hold ends; the failback comes in a later pass.
    let new = d.observe(
        Some(&decision(Some(1), Some(11))),
        &records,
        &none,
        &[],
        31_000,
    );
    assert_eq!(new, ["hold_ended"]);
    assert!(!d.finished());
    let new = d.observe(
        Some(&decision(Some(0), Some(10))),
        &records,
        &none,
        &[],
        32_500,
    );
    assert_eq!(new, ["back_on_master"]);
    assert!(d.finished());
    assert_eq!(
        steps(&d),
        [
            ("switch_published", 1_000),
            ("hold_ended", 31_000),
            ("back_on_master", 32_500)
        ]
    );
    assert!(d.report().on_air_throughout);
}

#[test]
fn a_non_revertive_switch_drill_ends_on_the_backup_when_the_hold_ends() {
    let mut d = Drill::start(report(DrillMode::Switch, 5_000), 1, None, false);
    let (none, records) = (HashMap::new(), BTreeMap::new());
    let new = d.observe(
        Some(&decision(Some(1), Some(11))),
        &records,
        &none,
        &[],
        6_000,
    );
    assert_eq!(new, ["hold_ended", "stays_on_backup"]);
    assert_eq!(d.report().state, DrillState::Completed);
}

#[test]
fn a_replace_drill_reports_deletion_creation_running_and_return_with_their_times() {
    let victim = Some(("pk_news_m_1".to_string(), 1));
    let mut d = Drill::start(report(DrillMode::Replace, 30_000), 1, victim, true);
    assert_eq!(d.hold(), None);
    assert_eq!(d.failed(), Some("pk_news_m_1"));
    let on_backup = decision(Some(1), Some(11));
    let mut running = HashMap::new();
    let old = master("pk_news_m_1", 1, 10);
    let old_listed = [listed("pk_news_m_1")];
    assert!(
        d.observe(Some(&on_backup), &old, &running, &old_listed, 2_000)
            .is_empty()
    );
    // The successor's intent is not a created player yet.
    let mut intended = master("pk_news_m_2", 2, 20);
    intended.values_mut().for_each(|r| r.id = None);
    assert!(
        d.observe(Some(&on_backup), &intended, &running, &old_listed, 2_500)
            .is_empty()
    );
    let new_master = master("pk_news_m_2", 2, 20);
    let new = d.observe(Some(&on_backup), &new_master, &running, &old_listed, 3_000);
    assert_eq!(new, ["replacement_created"]);
    let new = d.observe(Some(&on_backup), &new_master, &running, &[], 4_000);
    assert_eq!(new, ["master_deleted"]);
    // Nothing on air for a moment: the report says so.
    assert!(
        d.observe(
            Some(&decision(None, None)),
            &new_master,
            &running,
            &[],
            4_500
        )
        .is_empty()
    );
    running.insert("pk_news_m_2".to_string(), 6_000);
    let new = d.observe(Some(&on_backup), &new_master, &running, &[], 6_000);
    assert_eq!(new, ["replacement_running"]);
    let back = decision(Some(0), Some(20));
    let new = d.observe(Some(&back), &new_master, &running, &[], 36_000);
    assert_eq!(new, ["back_on_master"]);
    assert_eq!(d.report().state, DrillState::Completed);
    assert_eq!(
        d.failed(),
        None,
        "the victim is no longer counted as failed"
    );
    assert!(!d.report().on_air_throughout);
    assert_eq!(
        steps(&d),
        [
            ("switch_published", 1_000),
            ("replacement_created", 3_000),
            ("master_deleted", 4_000),
            ("replacement_running", 6_000),
            ("back_on_master", 36_000)
        ]
    );
}

#[test]
fn a_drill_is_abandoned_when_its_scene_goes_or_it_overruns() {
    let (none, records) = (HashMap::new(), BTreeMap::new());
    let mut d = Drill::start(report(DrillMode::Switch, 1_000), 1, None, true);
    assert_eq!(
        d.observe(None, &records, &none, &[], 1_500),
        ["scene_removed"]
    );
    assert_eq!(d.report().state, DrillState::Abandoned);

    assert_eq!(LIMIT_MS, 10 * 60 * 1000, "the README's 10 min");
    let mut d = Drill::start(report(DrillMode::Switch, 1_000), 1, None, true);
    let stuck = decision(Some(1), Some(11));
    let late = 1_000 + 1_000 + LIMIT_MS;
    assert!(
        !d.observe(Some(&stuck), &records, &none, &[], late - 1)
            .contains(&"timed_out")
    );
    assert!(
        d.observe(Some(&stuck), &records, &none, &[], late)
            .contains(&"timed_out")
    );
    assert!(d.finished());
}
