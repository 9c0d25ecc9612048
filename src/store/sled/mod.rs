//! The embedded backend: a sled database in a local directory, for a single replica.
//!
//! One `Db` per process, one sled tree per store tree (see `trees` for what each holds),
//! and a flush before any API call the write protects. sled 0.34's own `flush_async` can
//! deadlock under concurrent callers, so flushes are grouped and run one at a time
//! (`flush`).
//!
//! Besides the store's trees:
//! - `meta`: the format marker that tells an intact store from one that lost its
//!   contents (see `recover`, which also moves an unreadable store aside).

use std::path::Path;
use std::sync::Arc;

use super::error::StoreError;
use super::interface::{Recovery, StoreFuture};
use super::trees::{Backend, Tree, TreeStore};

mod flush;
mod recover;

use super::flush::GroupCommit;

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> StoreError {
        StoreError::Backend(e.to_string())
    }
}

/// The store on sled.
pub(super) type SledStore = TreeStore<SledBackend>;

/// The sled database the store's trees live in.
pub(super) struct SledBackend {
    db: sled::Db,
    /// sled's directory; modules with files of their own (the NCS notice log) keep them here.
    dir: Arc<Path>,
    commits: GroupCommit,
    /// Set when the store was found unreadable at start and replaced by an empty one.
    recovery: Option<Arc<Recovery>>,
}

/// sled's page cache. Its default (1 GiB) is sized for a database, not for a few hundred
/// bytes per player: 50,000 players' records fit in a fraction of this, and the
/// container's memory limit must not be spent on cache. Reads are served by the
/// controllers' own copies, so the cache mostly holds pages for the next write: a smaller
/// one costs sled some re-reads, which at 1,000 projects stayed inside the steady CPU
/// target (BENCHMARKS.md, scale, has the trade in CPU and memory).
const CACHE_BYTES: u64 = 8 * 1024 * 1024;

impl TreeStore<SledBackend> {
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
        TreeStore::new(SledBackend {
            dir: dir.into(),
            commits: GroupCommit::default(),
            recovery: None,
            db,
        })
    }
}

impl Backend for SledBackend {
    type Tree = sled::Tree;

    fn tree(&self, name: &'static str) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree(name)?)
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

    fn disk_bytes(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()?)
    }
}

impl Tree for sled::Tree {
    type Value = sled::IVec;

    fn get(&self, key: &[u8]) -> Result<Option<sled::IVec>, StoreError> {
        Ok(sled::Tree::get(self, key)?)
    }

    fn insert(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        sled::Tree::insert(self, key, value)?;
        Ok(())
    }

    fn remove(&self, key: &[u8]) -> Result<(), StoreError> {
        sled::Tree::remove(self, key)?;
        Ok(())
    }

    fn compare_and_swap(
        &self,
        key: &[u8],
        old: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, StoreError> {
        Ok(sled::Tree::compare_and_swap(self, key, old, Some(new))?.is_ok())
    }

    fn update(
        &self,
        key: &[u8],
        mut f: impl FnMut(Option<&[u8]>) -> Vec<u8>,
    ) -> Result<Vec<u8>, StoreError> {
        let new = self.update_and_fetch(key, |old| Some(f(old)))?;
        Ok(new.map(|v| v.to_vec()).unwrap_or_default())
    }

    fn visit_range(
        &self,
        from: &[u8],
        to: &[u8],
        mut f: impl FnMut(&[u8], &[u8]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        for item in self.range(from..=to) {
            let (k, v) = item?;
            f(&k, &v)?;
        }
        Ok(())
    }

    fn len(&self) -> Result<u64, StoreError> {
        Ok(sled::Tree::len(self) as u64)
    }

    fn visit_all(
        &self,
        mut f: impl FnMut(&[u8], &[u8]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        for item in self.iter() {
            let (k, v) = item?;
            f(&k, &v)?;
        }
        Ok(())
    }

    fn visit_prefix(
        &self,
        prefix: &[u8],
        mut f: impl FnMut(&[u8], &[u8]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        for item in self.scan_prefix(prefix) {
            let (k, v) = item?;
            f(&k, &v)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
