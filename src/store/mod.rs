//! Durable memory: which player fills which slot, every UID ever handed out, the create
//! intents that make a crash at any instant harmless, on-air records, Update sequences,
//! the NCS notices acknowledged but not yet acted on with each player's newest
//! notice position, and each scene's event history ([`EventLog`]).
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

use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

#[cfg(test)]
mod contract;
mod error;
mod etcd;
mod events;
mod flush;
mod interface;
mod leadership;
mod observer;
mod sled;
mod trees;

pub use error::StoreError;
pub use etcd::{Credentials, EtcdError, EtcdOptions, LocalEtcd};
pub use events::{EventBounds, EventLog};
pub use interface::{
    NoticePosition, PendingNotice, PlayerPosition, Recovery, Rejection, StateStore, StoreFuture,
    StoreSize, UidRequest,
};
pub use leadership::Leadership;
pub use observer::LeadershipObserver;

/// The store: a cheap handle on one backend, shared by every clone, with this replica's
/// leadership of the projects whose state it holds.
#[derive(Clone)]
pub struct Store {
    state: Arc<dyn StateStore>,
    leadership: Leadership,
}

impl Store {
    /// Opens (or creates) the embedded store in the directory `path`. Call once per
    /// process and path.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Ok(Store::sole(self::sled::SledStore::open(path)?))
    }

    /// Opens the embedded store at `path`; if it cannot be opened or read, moves it to
    /// `<path>.corrupt-<now_ms>`, logs an error and opens an empty one in its place
    /// (see [`StateStore::recovery`]). Fails only when even that is impossible.
    pub fn open_or_recover(path: &Path, now_ms: u64) -> Result<Store, StoreError> {
        Ok(Store::sole(self::sled::SledStore::open_or_recover(
            path, now_ms,
        )?))
    }

    /// Opens the embedded store at `path` that this process just closed, as a restart
    /// would. sled's I/O threads may hold its file lock for a moment after the last
    /// handle is dropped (a busy machine stretches the moment), so a refused lock is
    /// retried for up to 5 s.
    #[cfg(test)]
    pub(crate) fn reopen(path: &Path) -> Store {
        const TRIES: u32 = 250;
        for _ in 1..TRIES {
            match Store::open(path) {
                Ok(store) => return store,
                Err(e) if e.to_string().contains("lock") => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => panic!("cannot reopen {}: {e}", path.display()),
            }
        }
        Store::open(path).unwrap_or_else(|e| panic!("cannot reopen {}: {e}", path.display()))
    }

    /// The store in etcd, with this replica's leadership of `options.projects`: nothing
    /// can be read or written for a project until [`Leadership::run`] has taken it.
    pub fn etcd(options: &EtcdOptions) -> Result<Store, StoreError> {
        let (store, leader) = self::etcd::open(options)?;
        Ok(Store {
            state: Arc::new(store),
            leadership: Leadership::etcd(leader),
        })
    }

    /// The embedded store of the single replica, which leads every project.
    fn sole(store: self::sled::SledStore) -> Store {
        Store {
            state: Arc::new(store),
            leadership: Leadership::sole(),
        }
    }

    /// Which projects this replica may act for.
    pub fn leadership(&self) -> &Leadership {
        &self.leadership
    }

    /// An embedded store in a temporary directory that vanishes on drop (tests, demos).
    pub fn temporary() -> Result<Store, StoreError> {
        Ok(Store::sole(self::sled::SledStore::temporary()?))
    }
}

impl Deref for Store {
    type Target = dyn StateStore;

    fn deref(&self) -> &Self::Target {
        &*self.state
    }
}
