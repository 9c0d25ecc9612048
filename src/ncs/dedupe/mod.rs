//! Which NCS notices were already acted on (docs/agora-api.md §2.1: duplicates are
//! possible).
//!
//! Where the store keeps nothing locally (etcd, shared by replicas), the ids are kept in
//! the store itself, under their project, so a resend is acted on once whichever replica
//! leads the project when it arrives. Otherwise:
//!
//! An append-only log of its own in the store's local directory (`ncs_notices/`), indexed in
//! memory. One writer thread ([`writer`]) records the keys in groups: of several
//! concurrent deliveries of one notice exactly one sees "first time", and only once the
//! `write(2)` that covers its group has returned: the receiver answers 200 only for what
//! the log holds. The file format, one CRC-checked frame per group, is in [`segment`].
//!
//! **Durability.** A recorded id survives a `kill -9` of the process at any instant: it
//! is in the kernel's page cache when its 200 is sent, and a write cut short by the kill
//! leaves a frame that fails its CRC and is cut off at the next open. Against a power
//! loss or kernel crash the log is `fdatasync`ed at most [`appender::SYNC_EVERY`] after a
//! write (and whenever a segment closes or the log shuts down), so the ids acknowledged
//! in the last second before one may be forgotten and a resend of those notices acted on
//! again. An `fdatasync` per group costs about 190 µs on the benchmark machine and took
//! intake from about 0.6 to 0.37–0.39 of the bare handler's rate (BENCHMARKS.md,
//! "Webhook intake"), so it is periodic.
//!
//! NCS stops after three retries, so a TTL of a day ([`TTL_MS`]) is far more than
//! enough; the app calls [`NoticeLog::prune`] hourly. Pruning deletes whole segments,
//! one per hour of first-seen time, so an id is remembered for at least 24 h and,
//! while notices keep arriving, at most about 26 h.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::store::{Store, StoreError};

mod appender;
mod index;
mod replay;
mod segment;
#[cfg(test)]
mod tests;
mod writer;

/// The log's directory inside the store's.
pub const DIR: &str = "ncs_notices";

/// How long a notice id is remembered (24 h).
pub const TTL_MS: u64 = 24 * 60 * 60 * 1000;

/// The durable set of notice keys already seen. Cheap to clone; the clones share one
/// writer thread, as do all logs opened on one store in one process.
#[derive(Clone)]
pub struct NoticeLog {
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    /// The log in the store's local directory.
    File(Arc<Shared>),
    /// The store's own notice keys, for these projects.
    Store {
        store: Store,
        projects: Arc<[String]>,
    },
}

struct Shared {
    dir: PathBuf,
    index: Arc<Mutex<index::Index>>,
    writer: writer::Writer,
}

/// The logs open in this process, by directory. Two writers on one directory would each
/// append and cut "torn" tails under the other; like sled's one `Db` per process, a
/// second open of the same store gets the log already open.
static OPEN: LazyLock<Mutex<HashMap<PathBuf, Weak<Shared>>>> = LazyLock::new(Default::default);

/// Unix ms by the system clock, as the receiver stamps notices; a clock before 1970
/// reads as the far future, which no expiry is measured from (see [`replay::load`]).
fn wall_clock_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(u64::MAX, |d| {
            u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
        })
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl NoticeLog {
    /// Opens the log in `store`'s local directory
    /// and starts its writer thread, or returns the log already open there.
    pub fn open(store: &Store) -> Result<NoticeLog, StoreError> {
        let dir = store.local_dir().ok_or(StoreError::NoLocalDir)?.join(DIR);
        Ok(NoticeLog {
            kind: Kind::File(open_file(dir)?),
        })
    }

    /// The log of `projects`' notices: in the store's local directory if it has one,
    /// else in the store.
    pub fn for_projects(store: &Store, projects: Vec<String>) -> Result<NoticeLog, StoreError> {
        if store.local_dir().is_some() {
            return NoticeLog::open(store);
        }
        Ok(NoticeLog {
            kind: Kind::Store {
                store: store.clone(),
                projects: projects.into(),
            },
        })
    }

    /// Records `key` as first seen at `now_ms`. True exactly once per key (until pruned);
    /// a true answer is written (see the module doc for what survives what) when it is
    /// returned. If the write fails the key is not recorded, so a resend is not taken
    /// for a duplicate.
    pub async fn first_time(
        &self,
        key: impl Into<Vec<u8>>,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        match &self.kind {
            Kind::File(shared) => shared.writer.record(key.into(), now_ms).await,
            Kind::Store { store, .. } => {
                let first = store.note_notice(&key.into(), now_ms)?;
                if first {
                    store.flush().await?;
                }
                Ok(first)
            }
        }
    }

    /// Whether `key` is recorded (tests, diagnostics).
    pub fn contains(&self, key: &str) -> Result<bool, StoreError> {
        match &self.kind {
            Kind::File(shared) => Ok(lock(&shared.index).contains(key.as_bytes())),
            Kind::Store { store, .. } => store.notice_known(key.as_bytes()),
        }
    }

    /// Forgets the ids first seen before `older_than_ms` (in the file log: of every
    /// segment whose ids were all first seen before it, deleting its file; the segment
    /// being written stays until the next one starts); returns how many ids.
    pub fn prune(&self, older_than_ms: u64) -> Result<usize, StoreError> {
        match &self.kind {
            Kind::File(shared) => lock(&shared.index).prune(older_than_ms),
            Kind::Store { store, projects } => {
                let mut forgotten = 0;
                for project in projects.iter() {
                    match store.forget_notices(project, older_than_ms) {
                        Ok(n) => forgotten += n,
                        // Another replica leads it and prunes it.
                        Err(StoreError::NotLeader { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(forgotten)
            }
        }
    }
}

/// The file log in `dir`, or the one already open there.
fn open_file(dir: PathBuf) -> Result<Arc<Shared>, StoreError> {
    loop {
        let mut open = lock(&OPEN);
        match open.get(&dir).map(Weak::upgrade) {
            Some(Some(shared)) => return Ok(shared),
            Some(None) => {
                // Its last handle is being dropped: its writer is finishing.
                drop(open);
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            None => {
                let shared = Arc::new(Shared::open(dir.clone(), wall_clock_ms())?);
                open.insert(dir, Arc::downgrade(&shared));
                return Ok(shared);
            }
        }
    }
}

impl Shared {
    fn open(dir: PathBuf, now_ms: u64) -> Result<Shared, StoreError> {
        let (index, appender) = replay::load(&dir, now_ms)?;
        let index = Arc::new(Mutex::new(index));
        Ok(Shared {
            writer: writer::Writer::start(index.clone(), appender)?,
            index,
            dir,
        })
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Stopped before the entry goes, so a new open never meets a writer still busy.
        self.writer.stop();
        lock(&OPEN).remove(&self.dir);
    }
}
