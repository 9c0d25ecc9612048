//! Strikes: how many complete Lists in a row missed a slot's current player.
//!
//! Agora's best-practice page declares a task failed after three consecutive 404 or 5xx
//! answers (reference §1.9). pullkeeper has no per-player GET, so its regular evidence is
//! the List: a created player that a complete, successful List does not show, once the
//! List lag has passed, earns a strike; any sighting clears them. A List that failed says
//! nothing about any player (an API outage is not a player outage), so only successful
//! Lists are counted here.

use std::collections::{BTreeMap, HashSet};

use crate::agora::model::ListedPlayer;
use crate::model::{Phase, SlotKey, SlotRecord};

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
    use crate::agora::model::Region;
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
}
