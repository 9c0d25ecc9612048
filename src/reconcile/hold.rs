//! Holding replacements back while their source is down (a pure filter of the plan).
//!
//! Agora's best practice (seed 002, "Retry with retreat strategy") is to check that the
//! stream plays before destroying and recreating a failed player. A replacement is a
//! Create under a newer generation than the slot's record; with source probing on it
//! goes ahead only for a slot whose source was *cleared* (probed `up` or `unknown`).
//! First creates and retries of an intent are not replacements and are never held; nor
//! is anything deleted here, so a probe can never take a healthy player away.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{SlotKey, SlotRecord};
use crate::reconcile::plan::Action;

/// Splits the creates into those that may start and the slots held back.
pub fn gate<T>(
    creates: Vec<(T, SlotKey, Action)>,
    records: &BTreeMap<SlotKey, SlotRecord>,
    cleared: Option<&BTreeSet<SlotKey>>,
) -> (Vec<(T, SlotKey, Action)>, Vec<SlotKey>) {
    let Some(cleared) = cleared else {
        return (creates, Vec::new());
    };
    let mut held = Vec::new();
    let go = creates
        .into_iter()
        .filter(|(_, key, action)| {
            let replacement = matches!(action, Action::Create { generation, .. }
                if records.get(key).is_some_and(|r| r.generation < *generation));
            let hold = replacement && !cleared.contains(key);
            if hold {
                held.push(key.clone());
            }
            !hold
        })
        .collect();
    (go, held)
}
