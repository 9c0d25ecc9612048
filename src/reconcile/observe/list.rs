//! Taking in a complete List: the players it cannot show yet, and strikes, how many
//! complete Lists in a row missed a slot's current player.
//!
//! Agora's best-practice page declares a task failed after three consecutive 404 or 5xx
//! answers (§1.9). pullkeeper has no per-player GET, so its regular evidence is
//! the List: a created player that a complete, successful List does not show, once the
//! List lag has passed, earns a strike; any sighting clears them. A List that failed says
//! nothing about any player (an API outage is not a player outage), so only successful
//! Lists are counted here.

use std::collections::{BTreeMap, HashSet};

use crate::agora::wire::ListedPlayer;
use crate::model::{Phase, SlotKey, SlotRecord};

/// Keeps, in a fresh List, the players it cannot show yet: those of slot records created
/// within the List lag that the previous picture had (from a notice or an earlier List).
/// Without this, every List in the first ~10 s after a create would make a running
/// player "pending" again and take it off air.
pub fn carry_over_young(
    listed: &mut Vec<ListedPlayer>,
    previous: &[ListedPlayer],
    records: &BTreeMap<SlotKey, SlotRecord>,
    now_ms: u64,
    list_lag_ms: u64,
) {
    let young: HashSet<&str> = records
        .values()
        .filter(|r| r.within_list_lag(now_ms, list_lag_ms))
        .map(|r| r.name.as_str())
        .collect();
    let carried: Vec<ListedPlayer> = previous
        .iter()
        .filter(|p| p.name.as_deref().is_some_and(|n| young.contains(n)))
        .filter(|p| !listed.iter().any(|l| l.id == p.id))
        .cloned()
        .collect();
    listed.extend(carried);
}

/// Folds one complete, successful List into the strike counts.
pub fn count_strikes(
    strikes: &mut BTreeMap<SlotKey, u32>,
    records: &BTreeMap<SlotKey, SlotRecord>,
    listed: &[ListedPlayer],
    now_ms: u64,
    list_lag_ms: u64,
) {
    let names: HashSet<&str> = listed.iter().filter_map(|p| p.name.as_deref()).collect();
    strikes.retain(|k, _| records.contains_key(k));
    for (key, record) in records {
        let due = record.phase == Phase::Created && !record.within_list_lag(now_ms, list_lag_ms);
        if due && !names.contains(record.name.as_str()) {
            *strikes.entry(key.clone()).or_insert(0) += 1;
        } else if !strikes.is_empty() {
            // Nearly always empty: a poll at scale then costs no key comparisons here.
            strikes.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agora::wire::Region;
    use crate::model::RECORD_VERSION;

    fn record(name: &str, phase: Phase, created_at_ms: u64) -> SlotRecord {
        SlotRecord {
            v: RECORD_VERSION,
            name: name.into(),
            uid: 1,
            generation: 1,
            phase,
            region: Region::Na,
            id: Some("x".into()),
            created_at_ms,
            spec: None,
        }
    }

    fn listed(name: &str) -> ListedPlayer {
        serde_json::from_value(serde_json::json!({"id": "x", "name": name})).unwrap()
    }

    #[test]
    fn absences_accumulate_and_a_sighting_clears_them() {
        let key = SlotKey::new("p", "s", 0);
        let records = BTreeMap::from([(key.clone(), record("a", Phase::Created, 0))]);
        let mut strikes = BTreeMap::new();
        for expected in 1..=3 {
            count_strikes(&mut strikes, &records, &[], 20_000, 10_000);
            assert_eq!(strikes.get(&key), Some(&expected));
        }
        count_strikes(&mut strikes, &records, &[listed("a")], 20_000, 10_000);
        assert_eq!(strikes.get(&key), None);
    }

    #[test]
    fn no_strikes_within_the_lag_or_for_intents_or_forgotten_slots() {
        let key = SlotKey::new("p", "s", 0);
        let mut strikes = BTreeMap::from([(SlotKey::new("p", "gone", 0), 2)]);
        let young = BTreeMap::from([(key.clone(), record("a", Phase::Created, 15_000))]);
        count_strikes(&mut strikes, &young, &[], 20_000, 10_000);
        assert!(strikes.is_empty());
        let intent = BTreeMap::from([(key.clone(), record("a", Phase::Intended, 0))]);
        count_strikes(&mut strikes, &intent, &[], 20_000, 10_000);
        assert!(strikes.is_empty());
    }

    #[test]
    fn a_list_keeps_players_it_cannot_show_yet() {
        let record = |name: &str, created_at_ms| SlotRecord {
            v: RECORD_VERSION,
            name: name.into(),
            uid: 1,
            generation: 1,
            phase: Phase::Created,
            region: Region::Na,
            id: None,
            created_at_ms,
            spec: None,
        };
        let records = BTreeMap::from([
            (SlotKey::new("p", "s", 0), record("pk_s_m_young", 95_000)),
            (SlotKey::new("p", "s", 1), record("pk_s_m_old", 10_000)),
        ]);
        let running = |id: &str| ListedPlayer {
            status: Some(crate::model::PlayerStatus::Running),
            id: id.into(),
            ..listed(&format!("pk_s_m_{id}"))
        };
        let previous = vec![running("young"), running("old")];
        let mut listed = vec![];
        carry_over_young(&mut listed, &previous, &records, 100_000, 10_000);
        let ids: Vec<&str> = listed.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["young"], "the old one is really gone from List");
    }
}
