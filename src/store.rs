//! Durable memory: which player fills which slot, every UID ever handed out, and the
//! create intents that make a crash at any instant harmless.
//!
//! Agora is the source of truth about what runs; sled is what pullkeeper remembers about
//! what it asked for. The rules of rust-stack.md §1.7 apply: one `Db` per process,
//! versioned JSON values, and a flush before any API call the write protects.
//!
//! Trees:
//! - `slots`: `{project}\0{scene}\0{slot}` → [`SlotRecord`]. A record in phase
//!   [`Phase::Intended`] *is* the create intent: it is flushed before the Create call.
//! - `uids`: `{project}\0{channel}\0{uid as 4 big-endian bytes}` → player name. Every UID
//!   pullkeeper handed out or saw in that channel; none is ever handed out twice.
//! - `uid_hwm`: `{project}\0{scene}` → highest UID handed out for the scene, so allocation
//!   is O(1) in the common case and never walks back into used space.
//! - `onair`: `{project}\0{scene}` → the scene's on-air player and its version.
//! - `update_sequences`: player id → the last Update `sequence` sent to it.
//! - `meta`: the format marker that tells an intact store from one that lost its
//!   contents (see `recover`, which also moves an unreadable store aside).

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::agora::model::Region;
use crate::reconcile::onair::OnAir;
use crate::reconcile::spec::Spec;

mod flush;
mod recover;

use flush::FlushEpochs;
pub use recover::Recovery;

/// Identifies one slot: slot 0 is the master, 1..=backups the backups.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SlotKey {
    pub project: String,
    pub scene: String,
    pub slot: u32,
}

impl SlotKey {
    pub fn new(project: &str, scene: &str, slot: u32) -> Self {
        SlotKey {
            project: project.to_string(),
            scene: scene.to_string(),
            slot,
        }
    }

    fn db_key(&self) -> Vec<u8> {
        let mut k = key(&[&self.project, &self.scene]);
        k.push(0);
        k.extend_from_slice(&self.slot.to_be_bytes());
        k
    }

    pub fn is_master(&self) -> bool {
        self.slot == 0
    }
}

impl std::fmt::Display for SlotKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.project, self.scene, self.slot)
    }
}

/// Where a slot's current player stands, as far as pullkeeper knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The create intent is durable; Agora may or may not have the player yet.
    Intended,
    /// Agora refused the last Create (a 4xx other than 409): nothing was created, so it
    /// is retried without waiting for the List lag.
    Refused,
    /// Agora answered the Create (or a 409, or a List showed the player).
    Created,
}

/// The player currently assigned to a slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotRecord {
    /// Schema version of this value.
    pub v: u32,
    pub name: String,
    pub uid: u32,
    pub generation: u64,
    pub phase: Phase,
    /// The region the player was created in; Delete and Update need it in their path.
    pub region: Region,
    /// Agora's player id, once known.
    pub id: Option<String>,
    /// When the last Create for this player was sent (Unix ms): the List lag counts from here.
    pub created_at_ms: u64,
    /// What the player was asked to run. `None` in records written before pullkeeper
    /// remembered it; the plan re-adopts such a player to learn it.
    #[serde(default)]
    pub spec: Option<Spec>,
}

impl SlotRecord {
    /// Whether a List may still not show this player: its last Create was sent less
    /// than the List lag ago (§1.6: List can miss a new player for ~10 s).
    pub fn within_list_lag(&self, now_ms: u64, list_lag_ms: u64) -> bool {
        now_ms < self.created_at_ms.saturating_add(list_lag_ms)
    }
}

// Clone: one failed flush is the answer to every notice of the group it covered.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("store: {0}")]
    Sled(#[from] sled::Error),
    #[error("store: flush task failed: {0}")]
    Flush(String),
    #[error("store: NCS notice writer {0}")]
    NoticeWriter(String),
    #[error("store: NCS notice log {path}: {detail}")]
    NoticeLog { path: PathBuf, detail: String },
    #[error("store: corrupt value under {tree}: {detail}")]
    Corrupt { tree: &'static str, detail: String },
    #[error("store: cannot move the unreadable store {path} aside to {aside}: {detail}")]
    MoveAside {
        path: PathBuf,
        aside: PathBuf,
        detail: String,
    },
    #[error("no free UID left in {start}..={end} for scene {scene} in channel {channel}")]
    UidsExhausted {
        scene: String,
        channel: String,
        start: u32,
        end: u32,
    },
}

/// The store. Cheap to clone; all clones share one `sled::Db`.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    /// sled's directory; modules with files of their own (the NCS notice log) keep them here.
    dir: Arc<Path>,
    slots: sled::Tree,
    uids: sled::Tree,
    uid_hwm: sled::Tree,
    onair: sled::Tree,
    sequences: sled::Tree,
    flushing: Arc<tokio::sync::Mutex<()>>,
    flushes: Arc<FlushEpochs>,
    /// Set when the store was found unreadable at start and replaced by an empty one.
    recovery: Option<Arc<Recovery>>,
}

/// Schema version written into every [`SlotRecord`].
pub const RECORD_VERSION: u32 = 1;

/// sled's page cache. Its default (1 GiB) is sized for a database, not for a few hundred
/// bytes per player: 50,000 players' records fit in a fraction of this, and the
/// container's memory limit must not be spent on cache.
const CACHE_BYTES: u64 = 32 * 1024 * 1024;

impl Store {
    /// Opens (or creates) the store at `path`. Call once per process.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::from_db(Store::config().path(path).open()?, path)
    }

    /// A store in a temporary directory that vanishes on drop (tests, demos), with
    /// everything kept in it.
    pub fn temporary() -> Result<Store, StoreError> {
        // Where sled puts a temporary database of its own on Linux: memory, so the
        // many tests that flush pay nothing for it. Named here so the store knows it.
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let path = base.join(format!("pullkeeper-store.{}", uuid::Uuid::new_v4()));
        Store::from_db(Store::config().temporary(true).path(&path).open()?, &path)
    }

    fn config() -> sled::Config {
        sled::Config::new().cache_capacity(CACHE_BYTES)
    }

    fn from_db(db: sled::Db, dir: &Path) -> Result<Store, StoreError> {
        Ok(Store {
            dir: dir.into(),
            slots: db.open_tree("slots")?,
            uids: db.open_tree("uids")?,
            uid_hwm: db.open_tree("uid_hwm")?,
            onair: db.open_tree("onair")?,
            sequences: db.open_tree("update_sequences")?,
            flushing: Default::default(),
            flushes: Default::default(),
            recovery: None,
            db,
        })
    }

    /// A named tree of the same database, for a module that keeps its own records
    /// (e.g. the NCS notice ids already acted on).
    pub fn tree(&self, name: &str) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree(name)?)
    }

    /// The named tree if the database has one; unlike [`tree`](Self::tree) it creates none.
    pub fn existing_tree(&self, name: &str) -> Result<Option<sled::Tree>, StoreError> {
        let exists = self.db.tree_names().iter().any(|n| n == name.as_bytes());
        exists.then(|| self.tree(name)).transpose()
    }

    /// Deletes a named tree and its contents (durable with the next flush).
    pub fn drop_tree(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self.db.drop_tree(name)?)
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn slot(&self, key: &SlotKey) -> Result<Option<SlotRecord>, StoreError> {
        self.slots
            .get(key.db_key())?
            .map(|v| decode::<StoredSlot>("slots", &v).map(|s| s.record))
            .transpose()
    }

    /// Writes a slot record together with its key, so a scan can rebuild both.
    pub fn put_slot(&self, key: &SlotKey, record: &SlotRecord) -> Result<(), StoreError> {
        let stored = StoredSlot {
            key: key.clone(),
            record: record.clone(),
        };
        let value = serde_json::to_vec(&stored).expect("records serialize");
        self.slots.insert(key.db_key(), value)?;
        Ok(())
    }

    pub fn remove_slot(&self, key: &SlotKey) -> Result<(), StoreError> {
        self.slots.remove(key.db_key())?;
        Ok(())
    }

    /// Every slot record of a project.
    pub fn project_slots(&self, project: &str) -> Result<Vec<(SlotKey, SlotRecord)>, StoreError> {
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

    /// The last on-air state of a scene (its version must never go back).
    pub fn onair(&self, project: &str, scene: &str) -> Result<Option<OnAir>, StoreError> {
        self.onair
            .get(key(&[project, scene]))?
            .map(|v| decode("onair", &v))
            .transpose()
    }

    pub fn put_onair(&self, project: &str, scene: &str, state: &OnAir) -> Result<(), StoreError> {
        let value = serde_json::to_vec(state).expect("on-air state serializes");
        self.onair.insert(key(&[project, scene]), value)?;
        Ok(())
    }

    /// The next Update `sequence` for a player: strictly increasing per player, across
    /// restarts, and at least `floor` (§1.7: Agora applies the highest sequence it has
    /// seen and ignores older ones). With the current Unix second as the floor, a store
    /// that lost its sequences still sends numbers above those it sent before.
    pub fn next_sequence(&self, player_id: &str, floor: u64) -> Result<u64, StoreError> {
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

    /// Hands out the lowest UID of `start..=end` above the scene's high-water mark that
    /// nobody in `channel` ever had, and records it. Atomic, so two slots of one scene
    /// allocating at once get different UIDs.
    pub fn allocate_uid(
        &self,
        project: &str,
        scene: &str,
        channel: &str,
        start: u32,
        end: u32,
        name: &str,
    ) -> Result<u32, StoreError> {
        let hwm_key = key(&[project, scene]);
        let hwm = self
            .uid_hwm
            .get(&hwm_key)?
            .map(|v| u32::from_be_bytes(v.as_ref().try_into().unwrap_or([0; 4])))
            .unwrap_or(0);
        let first = start.max(hwm.saturating_add(1));
        if hwm < u32::MAX {
            for uid in first..=end {
                let k = uid_key(project, channel, uid);
                // compare_and_swap claims the UID only if no one holds it yet.
                let claimed =
                    self.uids
                        .compare_and_swap(&k, None::<&[u8]>, Some(name.as_bytes()))?;
                if claimed.is_ok() {
                    self.raise_uid_hwm(project, scene, uid)?;
                    return Ok(uid);
                }
            }
        }
        Err(StoreError::UidsExhausted {
            scene: scene.to_string(),
            channel: channel.to_string(),
            start,
            end,
        })
    }

    /// Raises a scene's high-water mark to `uid` (never lowers it): a UID of the scene's
    /// own player that List shows was handed out, and so was every UID below it, even
    /// when the store that remembered them was lost.
    pub fn raise_uid_hwm(&self, project: &str, scene: &str, uid: u32) -> Result<(), StoreError> {
        self.uid_hwm
            .fetch_and_update(key(&[project, scene]), |old| {
                let hwm = old
                    .and_then(|v| <[u8; 4]>::try_from(v).ok())
                    .map_or(0, u32::from_be_bytes);
                Some(hwm.max(uid).to_be_bytes().to_vec())
            })?;
        Ok(())
    }

    /// Records a UID seen in a channel (a foreign player, an adopted one) so it is never
    /// handed out. Returns true if it was new.
    pub fn note_uid(
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

    /// Whether `uid` was ever handed out or seen in `channel`.
    pub fn uid_known(&self, project: &str, channel: &str, uid: u32) -> Result<bool, StoreError> {
        Ok(self.uids.contains_key(uid_key(project, channel, uid))?)
    }
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
mod tests {
    use super::*;

    fn record(name: &str, uid: u32) -> SlotRecord {
        SlotRecord {
            v: RECORD_VERSION,
            name: name.into(),
            uid,
            generation: 1,
            phase: Phase::Intended,
            region: Region::Na,
            id: None,
            created_at_ms: 5,
            spec: None,
        }
    }

    #[test]
    fn slots_round_trip_and_scan_by_project() {
        let store = Store::temporary().unwrap();
        let a = SlotKey::new("p1", "news", 0);
        let b = SlotKey::new("p1", "news", 1);
        let c = SlotKey::new("p10", "news", 0);
        store.put_slot(&a, &record("pk_news_0_1", 1)).unwrap();
        store.put_slot(&b, &record("pk_news_1_1", 2)).unwrap();
        store.put_slot(&c, &record("pk_news_0_1", 1)).unwrap();
        assert_eq!(store.slot(&a).unwrap().unwrap().uid, 1);
        let scanned = store.project_slots("p1").unwrap();
        assert_eq!(scanned.len(), 2, "p10 must not leak into p1's scan");
        store.remove_slot(&a).unwrap();
        assert_eq!(store.slot(&a).unwrap(), None);
    }

    #[test]
    fn uids_are_never_handed_out_twice() {
        let store = Store::temporary().unwrap();
        assert!(store.note_uid("p", "ch", 101, "foreign").unwrap());
        let got: Vec<u32> = (0..3)
            .map(|i| {
                store
                    .allocate_uid("p", "news", "ch", 100, 104, &format!("n{i}"))
                    .unwrap()
            })
            .collect();
        assert_eq!(got, vec![100, 102, 103]);
        assert_eq!(
            store
                .allocate_uid("p", "news", "ch", 100, 104, "n3")
                .unwrap(),
            104
        );
        assert!(matches!(
            store.allocate_uid("p", "news", "ch", 100, 104, "n4"),
            Err(StoreError::UidsExhausted { .. })
        ));
        // Another channel has its own UID space.
        assert_eq!(
            store
                .allocate_uid("p", "other", "ch2", 100, 104, "x")
                .unwrap(),
            100
        );
    }

    #[test]
    fn a_raised_high_water_mark_is_never_allocated_below_nor_lowered() {
        let store = Store::temporary().unwrap();
        store.raise_uid_hwm("p", "news", 150).unwrap();
        store.raise_uid_hwm("p", "news", 120).unwrap();
        assert_eq!(
            store
                .allocate_uid("p", "news", "ch", 100, 199, "a")
                .unwrap(),
            151
        );
    }

    #[test]
    fn update_sequences_increase_per_player() {
        let store = Store::temporary().unwrap();
        let got: Vec<u64> = (0..3)
            .map(|_| store.next_sequence("a", 0).unwrap())
            .collect();
        assert_eq!(got, vec![0, 1, 2]);
        assert_eq!(store.next_sequence("b", 0).unwrap(), 0);
        assert_eq!(
            store.next_sequence("a", 100).unwrap(),
            100,
            "the floor lifts it"
        );
        assert_eq!(
            store.next_sequence("a", 50).unwrap(),
            101,
            "and it never goes back"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writers_sharing_flushes_all_end_durable() {
        let dir = std::env::temp_dir().join(format!("pk-store-{}", uuid::Uuid::new_v4()));
        {
            let store = Store::open(&dir).unwrap();
            let writers: Vec<_> = (0..32u32)
                .map(|i| {
                    let store = store.clone();
                    tokio::spawn(async move {
                        let key = SlotKey::new("p", "s", i);
                        store.put_slot(&key, &record(&format!("n{i}"), i)).unwrap();
                        store.flush().await.unwrap();
                    })
                })
                .collect();
            for w in writers {
                w.await.unwrap();
            }
        }
        let store = Store::open(&dir).unwrap();
        assert_eq!(store.project_slots("p").unwrap().len(), 32);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn survives_reopen() {
        let dir = std::env::temp_dir().join(format!("pk-store-{}", uuid::Uuid::new_v4()));
        {
            let store = Store::open(&dir).unwrap();
            store.allocate_uid("p", "s", "ch", 1, 10, "a").unwrap();
            store
                .put_slot(&SlotKey::new("p", "s", 0), &record("a", 1))
                .unwrap();
            store.flush().await.unwrap();
        }
        let store = Store::open(&dir).unwrap();
        assert!(store.uid_known("p", "ch", 1).unwrap());
        assert_eq!(store.allocate_uid("p", "s", "ch", 1, 10, "b").unwrap(), 2);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
