//! Holding replacements back while their source is down (a pure filter of the plan).
//!
//! Agora's best practice (docs/agora-api.md §1.9) is to check that the
//! stream plays before destroying and recreating a failed player. A replacement is a
//! Create under a newer generation than the slot's record; with source probing on it
//! goes ahead only for a slot whose source was *cleared* (probed `up` or `unknown`).
//! First creates and retries of an intent are not replacements and are never held; nor
//! is anything deleted here, so a probe can never take a healthy player away.

use std::collections::{BTreeMap, BTreeSet};

use super::slot::Candidate;
use crate::model::{SlotKey, SlotRecord};

/// Splits the creates into those that may start and the slots held back.
pub(super) fn gate(
    creates: Vec<Candidate>,
    records: &BTreeMap<SlotKey, SlotRecord>,
    cleared: Option<&BTreeSet<SlotKey>>,
) -> (Vec<Candidate>, Vec<SlotKey>) {
    let Some(cleared) = cleared else {
        return (creates, Vec::new());
    };
    let mut held = Vec::new();
    let go = creates
        .into_iter()
        .filter(|c| {
            let replacement = records
                .get(&c.key)
                .is_some_and(|r| r.generation < c.create.generation);
            let hold = replacement && !cleared.contains(&c.key);
            if hold {
                held.push(c.key.clone());
            }
            !hold
        })
        .collect();
    (go, held)
}
