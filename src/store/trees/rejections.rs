//! Slots whose create or Update Agora refused for good, kept so that a restart waits out
//! the refusal's pause instead of asking again at once.
//!
//! Tree `rejections`: the slot's key, a zero byte and the kind (0: the slot's creates,
//! 1: its Updates only) → the slot's key and the [`Rejection`] as JSON.

use serde::{Deserialize, Serialize};

use super::{Backend, Tree, TreeStore, decode, key, slot_key};
use crate::model::SlotKey;
use crate::store::error::StoreError;
use crate::store::interface::Rejection;

#[derive(Serialize, Deserialize)]
struct Stored {
    key: SlotKey,
    #[serde(flatten)]
    rejection: Rejection,
}

fn rejection_key(slot: &SlotKey, updates_only: bool) -> Vec<u8> {
    let mut k = slot_key(slot);
    k.extend_from_slice(&[0, u8::from(updates_only)]);
    k
}

impl<B: Backend> TreeStore<B> {
    pub(in crate::store) fn put_rejection_impl(
        &self,
        slot: &SlotKey,
        rejection: &Rejection,
    ) -> Result<(), StoreError> {
        let stored = Stored {
            key: slot.clone(),
            rejection: rejection.clone(),
        };
        let value = serde_json::to_vec(&stored).expect("rejections serialize");
        self.rejections
            .insert(&rejection_key(slot, rejection.updates_only), &value)
    }

    pub(in crate::store) fn remove_rejection_impl(
        &self,
        slot: &SlotKey,
        updates_only: bool,
    ) -> Result<(), StoreError> {
        self.rejections.remove(&rejection_key(slot, updates_only))
    }

    pub(in crate::store) fn project_rejections_impl(
        &self,
        project: &str,
    ) -> Result<Vec<(SlotKey, Rejection)>, StoreError> {
        let mut prefix = key(&[project]);
        prefix.push(0);
        let mut out = Vec::new();
        self.rejections.visit_prefix(&prefix, |_, v| {
            let stored: Stored = decode("rejections", v)?;
            out.push((stored.key, stored.rejection));
            Ok(())
        })?;
        Ok(out)
    }
}
