//! The embedded backend: a sled database in a local directory, for a single replica.
//!
//! One `Db` per process, versioned JSON values, and a flush before any API call the
//! write protects. sled 0.34's own `flush_async` can deadlock under concurrent callers,
//! so flushes are grouped and run one at a time (`flush`).
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
//! - `update_sequences`: player id → the last Update `sequence` sent to it.
//! - `api_calls`: `{project}\0{api}` → the instants (ms, 8 big-endian bytes each) of the
//!   latest calls to that API, for the rate windows of the next process. sled writes
//!   them to disk within its flush interval (500 ms), without a flush of their own.
//! - `ncs_pending`, `ncs_positions`: NCS notices acknowledged and not yet applied, and
//!   each player's newest notice position (see `notices`).
//! - `meta`: the format marker that tells an intact store from one that lost its
//!   contents (see `recover`, which also moves an unreadable store aside).

use serde::{Deserialize, Serialize};
use std::ops::RangeInclusive;
use std::path::Path;
use std::sync::Arc;

use super::error::StoreError;
use super::interface::{
    PendingNotice, PlayerPosition, Recovery, StateStore, StoreFuture, StoreSize, UidRequest,
};
use crate::model::{OnAir, SlotKey, SlotRecord};

mod flush;
mod notices;
mod recover;

use flush::FlushEpochs;

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> StoreError {
        StoreError::Backend(e.to_string())
    }
}

/// The sled backend.
pub(super) struct SledStore {
    db: sled::Db,
    /// sled's directory; modules with files of their own (the NCS notice log) keep them here.
    dir: Arc<Path>,
    slots: sled::Tree,
    uids: sled::Tree,
    uid_hwm: sled::Tree,
    uid_released: sled::Tree,
    uids_unknown_until: sled::Tree,
    onair: sled::Tree,
    sequences: sled::Tree,
    api_calls: sled::Tree,
    pending_notices: sled::Tree,
    notice_positions: sled::Tree,
    flushing: Arc<tokio::sync::Mutex<()>>,
    flushes: Arc<FlushEpochs>,
    /// Set when the store was found unreadable at start and replaced by an empty one.
    recovery: Option<Arc<Recovery>>,
}

/// sled's page cache. Its default (1 GiB) is sized for a database, not for a few hundred
/// bytes per player: 50,000 players' records fit in a fraction of this, and the
/// container's memory limit must not be spent on cache.
const CACHE_BYTES: u64 = 32 * 1024 * 1024;

impl SledStore {
    /// Opens (or creates) the store at `path`. Call once per process.
    pub fn open(path: &Path) -> Result<SledStore, StoreError> {
        SledStore::from_db(SledStore::config().path(path).open()?, path)
    }

    /// A store in a temporary directory that vanishes on drop (tests, demos), with
    /// everything kept in it.
    pub fn temporary() -> Result<SledStore, StoreError> {
        // Where sled puts a temporary database of its own on Linux: memory, so the
        // many tests that flush pay nothing for it. Named here so the store knows it.
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let path = base.join(format!("pullkeeper-store.{}", uuid::Uuid::new_v4()));
        SledStore::from_db(
            SledStore::config().temporary(true).path(&path).open()?,
            &path,
        )
    }

    fn config() -> sled::Config {
        sled::Config::new().cache_capacity(CACHE_BYTES)
    }

    fn from_db(db: sled::Db, dir: &Path) -> Result<SledStore, StoreError> {
        Ok(SledStore {
            dir: dir.into(),
            slots: db.open_tree("slots")?,
            uids: db.open_tree("uids")?,
            uid_hwm: db.open_tree("uid_hwm")?,
            uid_released: db.open_tree("uid_released")?,
            uids_unknown_until: db.open_tree("uids_unknown_until")?,
            onair: db.open_tree("onair")?,
            sequences: db.open_tree("update_sequences")?,
            api_calls: db.open_tree("api_calls")?,
            pending_notices: db.open_tree("ncs_pending")?,
            notice_positions: db.open_tree("ncs_positions")?,
            flushing: Default::default(),
            flushes: Default::default(),
            recovery: None,
            db,
        })
    }
}

impl StateStore for SledStore {
    fn slot(&self, key: &SlotKey) -> Result<Option<SlotRecord>, StoreError> {
        self.slots
            .get(slot_key(key))?
            .map(|v| decode::<StoredSlot>("slots", &v).map(|s| s.record))
            .transpose()
    }

    fn put_slot(&self, key: &SlotKey, record: &SlotRecord) -> Result<(), StoreError> {
        let stored = StoredSlot {
            key: key.clone(),
            record: record.clone(),
        };
        let value = serde_json::to_vec(&stored).expect("records serialize");
        self.slots.insert(slot_key(key), value)?;
        Ok(())
    }

    fn remove_slot(&self, key: &SlotKey) -> Result<(), StoreError> {
        self.slots.remove(slot_key(key))?;
        Ok(())
    }

    fn project_slots(&self, project: &str) -> Result<Vec<(SlotKey, SlotRecord)>, StoreError> {
        let mut prefix = project.as_bytes().to_vec();
        prefix.push(0);
        let mut out = Vec::new();
        for item in self.slots.scan_prefix(&prefix) {
            let (_, v) = item?;
            let record: StoredSlot = decode("slots", &v)?;
            out.push((record.key, record.record));
        }
        Ok(out)
    }

    fn onair(&self, project: &str, scene: &str) -> Result<Option<OnAir>, StoreError> {
        self.onair
            .get(key(&[project, scene]))?
            .map(|v| decode("onair", &v))
            .transpose()
    }

    fn put_onair(&self, project: &str, scene: &str, state: &OnAir) -> Result<(), StoreError> {
        let value = serde_json::to_vec(state).expect("on-air state serializes");
        self.onair.insert(key(&[project, scene]), value)?;
        Ok(())
    }

    fn next_sequence(&self, player_id: &str, floor: u64) -> Result<u64, StoreError> {
        let next = self.sequences.update_and_fetch(player_id, |old| {
            let n = old
                .and_then(|v| <[u8; 8]>::try_from(v).ok())
                .map_or(0, |b| u64::from_be_bytes(b) + 1);
            Some(n.max(floor).to_be_bytes().to_vec())
        })?;
        Ok(next
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map_or(0, u64::from_be_bytes))
    }

    fn api_calls(&self, project: &str, api: &str) -> Result<Vec<u64>, StoreError> {
        let value = self.api_calls.get(key(&[project, api]))?;
        Ok(value
            .map(|v| {
                v.chunks_exact(8)
                    .map(|b| u64::from_be_bytes(b.try_into().expect("8 bytes")))
                    .collect()
            })
            .unwrap_or_default())
    }

    fn put_api_calls(&self, project: &str, api: &str, at_ms: &[u64]) -> Result<(), StoreError> {
        let value: Vec<u8> = at_ms.iter().flat_map(|ms| ms.to_be_bytes()).collect();
        self.api_calls.insert(key(&[project, api]), value)?;
        Ok(())
    }

    fn allocate_uid(&self, request: &UidRequest<'_>) -> Result<u32, StoreError> {
        let &UidRequest {
            project,
            channel,
            name,
            ..
        } = request;
        for uid in self.fresh_range(request)?.into_iter().flatten() {
            if request.held.contains(&uid) {
                continue;
            }
            let k = uid_key(project, channel, uid);
            // compare_and_swap claims the UID only if no one holds it yet.
            let claimed = self
                .uids
                .compare_and_swap(&k, None::<&[u8]>, Some(name.as_bytes()))?;
            if claimed.is_ok() {
                self.raise_uid_hwm(project, request.scene, uid)?;
                self.uid_released.insert(&k, &HELD.to_be_bytes())?;
                return Ok(uid);
            }
        }
        let mut candidates = self.out_of_quarantine(request)?;
        candidates.sort_by_key(|c| (c.since, c.uid));
        for candidate in candidates {
            let k = uid_key(project, channel, candidate.uid);
            // Claimed only if no concurrent allocation claimed it since it was read.
            let claimed = self.uid_released.compare_and_swap(
                &k,
                candidate.released,
                Some(&HELD.to_be_bytes()[..]),
            )?;
            if claimed.is_ok() {
                self.uids.insert(&k, name.as_bytes())?;
                return Ok(candidate.uid);
            }
        }
        Err(StoreError::UidsExhausted {
            scene: request.scene.to_string(),
            channel: channel.to_string(),
            start: request.start,
            end: request.end,
        })
    }

    fn free_uids(&self, request: &UidRequest<'_>) -> Result<u64, StoreError> {
        let mut never_used = 0;
        if let Some(fresh) = self.fresh_range(request)? {
            never_used = u64::from(fresh.end() - fresh.start()) + 1;
            for item in self.known_in(request, fresh) {
                item?;
                never_used -= 1;
            }
        }
        let reusable = self.out_of_quarantine(request)?.len() as u64;
        Ok(never_used + reusable)
    }

    fn release_uids(
        &self,
        project: &str,
        channel: &str,
        uids: &[u32],
        at_ms: u64,
    ) -> Result<(), StoreError> {
        for &uid in uids {
            self.uid_released
                .insert(uid_key(project, channel, uid), &at_ms.to_be_bytes())?;
        }
        Ok(())
    }

    fn hold_uids(&self, project: &str, channel: &str, uids: &[u32]) -> Result<(), StoreError> {
        for &uid in uids {
            let k = uid_key(project, channel, uid);
            // Read first: at a process start every listed UID is new to the caller, and
            // most are marked held already.
            if read_ms(self.uid_released.get(&k)?.as_deref()) != HELD {
                self.uid_released.insert(&k, &HELD.to_be_bytes())?;
            }
        }
        Ok(())
    }

    fn uids_unknown_until(&self, project: &str, at_ms: u64) -> Result<(), StoreError> {
        self.uids_unknown_until
            .fetch_and_update(project.as_bytes(), |old| {
                Some(read_ms(old).max(at_ms).to_be_bytes().to_vec())
            })?;
        Ok(())
    }

    fn raise_uid_hwm(&self, project: &str, scene: &str, uid: u32) -> Result<(), StoreError> {
        self.uid_hwm
            .fetch_and_update(key(&[project, scene]), |old| {
                let hwm = old
                    .and_then(|v| <[u8; 4]>::try_from(v).ok())
                    .map_or(0, u32::from_be_bytes);
                Some(hwm.max(uid).to_be_bytes().to_vec())
            })?;
        Ok(())
    }

    fn note_uid(
        &self,
        project: &str,
        channel: &str,
        uid: u32,
        name: &str,
    ) -> Result<bool, StoreError> {
        let k = uid_key(project, channel, uid);
        Ok(self
            .uids
            .compare_and_swap(&k, None::<&[u8]>, Some(name.as_bytes()))?
            .is_ok())
    }

    fn uid_known(&self, project: &str, channel: &str, uid: u32) -> Result<bool, StoreError> {
        Ok(self.uids.contains_key(uid_key(project, channel, uid))?)
    }

    fn put_notice(&self, notice: &PendingNotice) -> Result<(), StoreError> {
        self.put_notice_impl(notice)
    }

    fn notices_applied(&self, project: &str, keys: &[String]) -> Result<(), StoreError> {
        self.notices_applied_impl(project, keys)
    }

    fn pending_notices(&self) -> Result<Vec<PendingNotice>, StoreError> {
        self.pending_notices_impl()
    }

    fn notice_positions(&self) -> Result<Vec<PlayerPosition>, StoreError> {
        self.notice_positions_impl()
    }

    fn forget_notice_positions(&self, lts: u64) -> Result<usize, StoreError> {
        self.forget_notice_positions_impl(lts)
    }

    fn flush(&self) -> StoreFuture<'_, ()> {
        Box::pin(self.flush_grouped())
    }

    fn recovery(&self) -> Option<&Recovery> {
        self.recovery.as_deref()
    }

    fn local_dir(&self) -> Option<&Path> {
        Some(&self.dir)
    }

    fn size(&self) -> Result<StoreSize, StoreError> {
        Ok(StoreSize {
            disk_bytes: self.db.size_on_disk()?,
            slots: self.slots.len() as u64,
        })
    }
}

/// The `uid_released` value of a UID handed out or seen held, and not seen released since.
const HELD: u64 = u64::MAX;

/// A UID handed out before that may be handed out again.
struct Reusable {
    uid: u32,
    /// Since when no player holds it, as far as anyone knows.
    since: u64,
    /// Its `uid_released` value as read, to claim it only if unchanged.
    released: Option<sled::IVec>,
}

impl SledStore {
    /// The UIDs of the request's range above the scene's high-water mark (empty when
    /// none is left).
    fn fresh_range(
        &self,
        request: &UidRequest<'_>,
    ) -> Result<Option<RangeInclusive<u32>>, StoreError> {
        let hwm = self
            .uid_hwm
            .get(key(&[request.project, request.scene]))?
            .map(|v| u32::from_be_bytes(v.as_ref().try_into().unwrap_or([0; 4])))
            .unwrap_or(0);
        Ok(hwm
            .checked_add(1)
            .map(|above| request.start.max(above)..=request.end)
            .filter(|range| !range.is_empty()))
    }

    /// The UIDs of `range` the channel ever had, as `uids` keys.
    fn known_in(
        &self,
        request: &UidRequest<'_>,
        range: RangeInclusive<u32>,
    ) -> impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>> {
        let (project, channel) = (request.project, request.channel);
        let keys =
            uid_key(project, channel, *range.start())..=uid_key(project, channel, *range.end());
        self.uids.range(keys)
    }

    /// The UIDs of the request's range handed out or seen before that nobody holds and
    /// nobody has held for the quarantine: never one the request names as held. Without
    /// a release seen (held when the process stopped, or never recorded) the last
    /// process start stands in for it.
    fn out_of_quarantine(&self, request: &UidRequest<'_>) -> Result<Vec<Reusable>, StoreError> {
        let unknown_until = read_ms(
            self.uids_unknown_until
                .get(request.project.as_bytes())?
                .as_deref(),
        );
        let mut out = Vec::new();
        for item in self.known_in(request, request.start..=request.end) {
            let (k, _) = item?;
            let Some(uid) = k
                .len()
                .checked_sub(4)
                .map(|at| u32::from_be_bytes(k[at..].try_into().unwrap_or([0; 4])))
            else {
                continue;
            };
            if request.held.contains(&uid) {
                continue;
            }
            let released = self.uid_released.get(&k)?;
            let since = match read_ms(released.as_deref()) {
                0 | HELD => unknown_until,
                at => at,
            };
            if since.saturating_add(request.quarantine_ms) <= request.now_ms {
                out.push(Reusable {
                    uid,
                    since,
                    released,
                });
            }
        }
        Ok(out)
    }
}

/// A millisecond instant as stored (8 big-endian bytes); absent or malformed is 0.
fn read_ms(v: Option<&[u8]>) -> u64 {
    v.and_then(|v| <[u8; 8]>::try_from(v).ok())
        .map_or(0, u64::from_be_bytes)
}

/// The value stored under a slot key.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredSlot {
    key: SlotKey,
    #[serde(flatten)]
    record: SlotRecord,
}

fn key(parts: &[&str]) -> Vec<u8> {
    let mut k = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            k.push(0);
        }
        k.extend_from_slice(p.as_bytes());
    }
    k
}

fn slot_key(slot: &SlotKey) -> Vec<u8> {
    let mut k = key(&[&slot.project, &slot.scene]);
    k.push(0);
    k.extend_from_slice(&slot.slot.to_be_bytes());
    k
}

fn uid_key(project: &str, channel: &str, uid: u32) -> Vec<u8> {
    let mut k = key(&[project, channel]);
    k.push(0);
    k.extend_from_slice(&uid.to_be_bytes());
    k
}

fn decode<T: serde::de::DeserializeOwned>(tree: &'static str, v: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(v).map_err(|e| StoreError::Corrupt {
        tree,
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests;
