//! Durable memory: which player fills which slot, every UID ever handed out, the create
//! intents that make a crash at any instant harmless, on-air records and Update
//! sequences.
//!
//! Agora is the source of truth about what runs; the store is what pullkeeper remembers
//! about what it asked for. Everything above this module reaches it through
//! [`StateStore`], the one interface a backend implements, held as a [`Store`] handle;
//! nothing outside `store/` knows which backend it is. The embedded backend (`sled`,
//! a database in a local directory) is the single-replica default.
//!
//! The rule every backend keeps: a write is durable once a later [`StateStore::flush`]
//! has returned, and pullkeeper flushes before any Agora call the write protects (an
//! intent before its Create, a sequence before its Update).

use std::future::Future;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use crate::model::{OnAir, SlotKey, SlotRecord};

mod sled;

pub use self::sled::Recovery;

/// A future a backend returns from an async method; boxed so [`StateStore`] can be a
/// trait object.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// What pullkeeper needs from durable memory. Methods other than `flush` may be served
/// from the backend's memory and become durable at the next flush.
pub trait StateStore: Send + Sync {
    /// The record of one slot.
    fn slot(&self, key: &SlotKey) -> Result<Option<SlotRecord>, StoreError>;

    /// Writes a slot record (a record in phase `Intended` is the create intent).
    fn put_slot(&self, key: &SlotKey, record: &SlotRecord) -> Result<(), StoreError>;

    fn remove_slot(&self, key: &SlotKey) -> Result<(), StoreError>;

    /// Every slot record of a project.
    fn project_slots(&self, project: &str) -> Result<Vec<(SlotKey, SlotRecord)>, StoreError>;

    /// The last on-air record of a scene (its version must never go back).
    fn onair(&self, project: &str, scene: &str) -> Result<Option<OnAir>, StoreError>;

    fn put_onair(&self, project: &str, scene: &str, state: &OnAir) -> Result<(), StoreError>;

    /// The next Update `sequence` for a player: strictly increasing per player, across
    /// restarts, and at least `floor` (§1.7: Agora applies the highest sequence it has
    /// seen and ignores older ones). With the current Unix second as the floor, a store
    /// that lost its sequences still sends numbers above those it sent before.
    fn next_sequence(&self, player_id: &str, floor: u64) -> Result<u64, StoreError>;

    /// Hands out the lowest UID of `start..=end` above the scene's high-water mark that
    /// nobody in `channel` ever had, and records it for `name`. Atomic, so two slots of
    /// one scene allocating at once get different UIDs.
    fn allocate_uid(&self, request: &UidRequest<'_>) -> Result<u32, StoreError>;

    /// Raises a scene's high-water mark to `uid` (never lowers it): a UID of the scene's
    /// own player that List shows was handed out, and so was every UID below it, even
    /// when the store that remembered them was lost.
    fn raise_uid_hwm(&self, project: &str, scene: &str, uid: u32) -> Result<(), StoreError>;

    /// Records a UID seen in a channel (a foreign player, an adopted one) so it is never
    /// handed out. Returns true if it was new.
    fn note_uid(
        &self,
        project: &str,
        channel: &str,
        uid: u32,
        name: &str,
    ) -> Result<bool, StoreError>;

    /// Whether `uid` was ever handed out or seen in `channel`.
    fn uid_known(&self, project: &str, channel: &str, uid: u32) -> Result<bool, StoreError>;

    /// Makes everything written so far durable against a process kill.
    fn flush(&self) -> StoreFuture<'_, ()>;

    /// Set when the store was found unreadable at start and replaced by an empty one.
    fn recovery(&self) -> Option<&Recovery>;

    /// A directory on this node for modules that keep files of their own next to the
    /// store (the NCS notice log); `None` for a backend that keeps nothing locally.
    fn local_dir(&self) -> Option<&Path>;
}

/// A UID allocation: the scene's range, its channel, and the player it is for.
#[derive(Debug, Clone, Copy)]
pub struct UidRequest<'a> {
    pub project: &'a str,
    pub scene: &'a str,
    pub channel: &'a str,
    pub start: u32,
    pub end: u32,
    pub name: &'a str,
}

/// The store: a cheap handle on one backend, shared by every clone.
#[derive(Clone)]
pub struct Store(Arc<dyn StateStore>);

impl Store {
    /// Opens (or creates) the embedded store in the directory `path`. Call once per
    /// process and path.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Ok(Store(Arc::new(self::sled::SledStore::open(path)?)))
    }

    /// Opens the embedded store at `path`; if it cannot be opened or read, moves it to
    /// `<path>.corrupt-<now_ms>`, logs an error and opens an empty one in its place
    /// (see [`StateStore::recovery`]). Fails only when even that is impossible.
    pub fn open_or_recover(path: &Path, now_ms: u64) -> Result<Store, StoreError> {
        Ok(Store(Arc::new(self::sled::SledStore::open_or_recover(
            path, now_ms,
        )?)))
    }

    /// An embedded store in a temporary directory that vanishes on drop (tests, demos).
    pub fn temporary() -> Result<Store, StoreError> {
        Ok(Store(Arc::new(self::sled::SledStore::temporary()?)))
    }
}

impl Deref for Store {
    type Target = dyn StateStore;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

// Clone: one failed flush is the answer to every notice of the group it covered.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("store: {0}")]
    Backend(String),
    #[error("store: flush task failed: {0}")]
    Flush(String),
    #[error("store: NCS notice writer {0}")]
    NoticeWriter(String),
    #[error("store: NCS notice log {path}: {detail}")]
    NoticeLog { path: PathBuf, detail: String },
    #[error("store: this store keeps no local files; the NCS notice log needs a directory")]
    NoLocalDir,
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
