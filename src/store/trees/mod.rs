//! What pullkeeper keeps, written once over ordered key-value trees, whichever backend
//! holds the trees.
//!
//! A backend provides named [`Tree`]s (sorted maps of bytes with an atomic
//! compare-and-swap) and a flush; [`TreeStore`] turns them into the [`StateStore`]
//! contract. The embedded backend's trees are sled's; the etcd backend's are an
//! in-memory mirror of the keys of the projects this replica leads, written through to
//! etcd at each flush.
//!
//! Every key starts with its project, up to the first zero byte (or is the project
//! alone), so a backend can tell which project a write belongs to.
//!
//! Trees:
//! - `slots`: `{project}\0{scene}\0{slot}` → slot record. A record in phase `Intended`
//!   *is* the create intent: it is flushed before the Create call.
//! - `uids`: `{project}\0{channel}\0{uid as 4 big-endian bytes}` → player name. Every UID
//!   pullkeeper handed out or saw in that channel.
//! - `uid_released`: same key → since when (ms, 8 big-endian bytes) no player of the
//!   channel holds the UID, or [`HELD`] from the moment it is handed out or seen held
//!   until it is seen released. A UID is handed out again only once its release lies a
//!   quarantine in the past.
//! - `uids_unknown_until`: `{project}` → the last process start (ms). A UID that was
//!   held when pullkeeper stopped, or that has no release recorded at all, counts as
//!   released then: whatever happened to it in between is unknown.
//! - `uid_hwm`: `{project}\0{scene}` → highest UID handed out for the scene, so allocation
//!   is O(1) in the common case and never walks back into used space.
//! - `onair`: `{project}\0{scene}` → the scene's on-air record and its version.
//! - `update_sequences`: `{project}\0{player id}` → the last Update `sequence` sent to it.
//! - `api_calls`: `{project}\0{api}` → the instants (ms, 8 big-endian bytes each) of the
//!   latest calls to that API, for the rate windows of the next process (or leader),
//!   durable at the next flush like everything else.
//! - `ncs_pending`: `{project}\0{notice key}` → an NCS notice acknowledged and not yet
//!   applied: its player, position and body (see `notices`).
//! - `ncs_positions`: `{project}\0{player}` → the player's newest notice position.
//! - `rejections`: `{project}\0{scene}\0{slot}\0{0: creates, 1: Updates only}` → a slot's
//!   refusal for good, with what was refused and until when it waits.
//! - `scene_controls`: `{project}\0{scene}` → the operator's pin and maintenance of the
//!   scene (see `control`).
//! - `notice_ids`: `{project}\0{rest of the NCS dedupe key}` → when it was first seen
//!   (ms). Only where the NCS module keeps no log of its own (a backend without a local
//!   directory).
//! - `events`: `{project}\0{scene}\0{position}` → one event of the scene's history (see
//!   `events`).

use serde::{Deserialize, Serialize};
use std::path::Path;

use super::error::StoreError;
use super::interface::{Recovery, StoreFuture};
use crate::model::{SlotKey, SlotRecord};

mod control;
mod events;
mod notices;
mod rejections;
mod state;

/// One sorted map of bytes. Methods take effect in the backend's memory at once and
/// become durable at the backend's next flush.
pub(super) trait Tree: Send + Sync {
    type Value: AsRef<[u8]>;

    fn get(&self, key: &[u8]) -> Result<Option<Self::Value>, StoreError>;

    fn insert(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError>;

    fn remove(&self, key: &[u8]) -> Result<(), StoreError>;

    /// Sets `key` to `new` only if its value is `old` (`None`: absent); false otherwise.
    fn compare_and_swap(
        &self,
        key: &[u8],
        old: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, StoreError>;

    /// Replaces the value of `key` by `f(old)` atomically; returns the new value.
    fn update(
        &self,
        key: &[u8],
        f: impl FnMut(Option<&[u8]>) -> Vec<u8>,
    ) -> Result<Vec<u8>, StoreError>;

    /// Visits the entries with `from <= key <= to` in key order. `f` must not call back
    /// into the store.
    fn visit_range(
        &self,
        from: &[u8],
        to: &[u8],
        f: impl FnMut(&[u8], &[u8]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;

    /// Visits every entry this replica can read (with etcd: of the projects it leads),
    /// in key order. `f` must not call back into the store.
    fn visit_all(
        &self,
        f: impl FnMut(&[u8], &[u8]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;

    /// How many entries the tree holds (for the start-up log; may walk the tree).
    fn len(&self) -> Result<u64, StoreError>;

    /// Visits the entries whose key starts with `prefix` in key order. `f` must not call
    /// back into the store.
    fn visit_prefix(
        &self,
        prefix: &[u8],
        f: impl FnMut(&[u8], &[u8]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;
}

/// A place that holds named trees and makes their writes durable.
pub(super) trait Backend: Send + Sync + 'static {
    type Tree: Tree;

    fn tree(&self, name: &'static str) -> Result<Self::Tree, StoreError>;

    /// Makes every write made before the call durable against a process kill.
    fn flush(&self) -> StoreFuture<'_, ()>;

    fn recovery(&self) -> Option<&Recovery>;

    fn local_dir(&self) -> Option<&Path>;

    /// What the backend takes on this node's disk (0 when it keeps nothing locally).
    fn disk_bytes(&self) -> Result<u64, StoreError>;
}

/// The [`StateStore`](super::StateStore) of a backend's trees.
pub(super) struct TreeStore<B: Backend> {
    pub(super) backend: B,
    pub(super) slots: B::Tree,
    pub(super) uids: B::Tree,
    pub(super) uid_hwm: B::Tree,
    pub(super) uid_released: B::Tree,
    pub(super) uids_unknown_until: B::Tree,
    pub(super) onair: B::Tree,
    pub(super) sequences: B::Tree,
    pub(super) notice_ids: B::Tree,
    pub(super) api_calls: B::Tree,
    pub(super) pending_notices: B::Tree,
    pub(super) notice_positions: B::Tree,
    pub(super) rejections: B::Tree,
    pub(super) events: B::Tree,
    pub(super) scene_controls: B::Tree,
}

/// The trees' names, as backends store them.
pub(super) const SLOTS: &str = "slots";
pub(super) const ONAIR: &str = "onair";
pub(super) const UIDS: &str = "uids";
pub(super) const UID_HWM: &str = "uid_hwm";
pub(super) const UID_RELEASED: &str = "uid_released";
pub(super) const UIDS_UNKNOWN_UNTIL: &str = "uids_unknown_until";
pub(super) const SEQUENCES: &str = "update_sequences";
pub(super) const NOTICE_IDS: &str = "notice_ids";
pub(super) const API_CALLS: &str = "api_calls";
pub(super) const PENDING_NOTICES: &str = "ncs_pending";
pub(super) const NOTICE_POSITIONS: &str = "ncs_positions";
pub(super) const REJECTIONS: &str = "rejections";
pub(super) const EVENTS: &str = "events";
pub(super) const SCENE_CONTROLS: &str = "scene_controls";

impl<B: Backend> TreeStore<B> {
    pub(super) fn new(backend: B) -> Result<TreeStore<B>, StoreError> {
        Ok(TreeStore {
            slots: backend.tree(SLOTS)?,
            uids: backend.tree(UIDS)?,
            uid_hwm: backend.tree(UID_HWM)?,
            uid_released: backend.tree(UID_RELEASED)?,
            uids_unknown_until: backend.tree(UIDS_UNKNOWN_UNTIL)?,
            onair: backend.tree(ONAIR)?,
            sequences: backend.tree(SEQUENCES)?,
            notice_ids: backend.tree(NOTICE_IDS)?,
            api_calls: backend.tree(API_CALLS)?,
            pending_notices: backend.tree(PENDING_NOTICES)?,
            notice_positions: backend.tree(NOTICE_POSITIONS)?,
            rejections: backend.tree(REJECTIONS)?,
            events: backend.tree(EVENTS)?,
            scene_controls: backend.tree(SCENE_CONTROLS)?,
            backend,
        })
    }
}

/// The `uid_released` value of a UID handed out or seen held, and not seen released since.
pub(super) const HELD: u64 = u64::MAX;

/// A millisecond instant as stored (8 big-endian bytes); absent or malformed is 0.
pub(super) fn read_ms(v: Option<&[u8]>) -> u64 {
    v.and_then(|v| <[u8; 8]>::try_from(v).ok())
        .map_or(0, u64::from_be_bytes)
}

/// The value stored under a slot key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct StoredSlot {
    pub(super) key: SlotKey,
    #[serde(flatten)]
    pub(super) record: SlotRecord,
}

pub(super) fn key(parts: &[&str]) -> Vec<u8> {
    let mut k = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            k.push(0);
        }
        k.extend_from_slice(p.as_bytes());
    }
    k
}

pub(super) fn slot_key(slot: &SlotKey) -> Vec<u8> {
    let mut k = key(&[&slot.project, &slot.scene]);
    k.push(0);
    k.extend_from_slice(&slot.slot.to_be_bytes());
    k
}

pub(super) fn uid_key(project: &str, channel: &str, uid: u32) -> Vec<u8> {
    let mut k = key(&[project, channel]);
    k.push(0);
    k.extend_from_slice(&uid.to_be_bytes());
    k
}

/// The project a tree key belongs to: its bytes up to the first zero byte.
pub(super) fn project_of(key: &[u8]) -> &[u8] {
    key.iter()
        .position(|&b| b == 0)
        .map_or(key, |end| &key[..end])
}

pub(super) fn decode<T: serde::de::DeserializeOwned>(
    tree: &'static str,
    v: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(v).map_err(|e| StoreError::Corrupt {
        tree,
        detail: e.to_string(),
    })
}
