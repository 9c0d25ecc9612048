//! Which NCS notices were already seen (docs/agora-api.md §2.1: duplicates are
//! possible), and the acknowledged ones not applied yet.
//!
//! Where the store keeps nothing locally (etcd, shared by replicas), both are kept in
//! the store itself, under their project, so a resend is acted on once and an
//! acknowledged notice is replayed whichever replica leads the project when it arrives
//! or next. Otherwise:
//!
//! An append-only log of its own in the store's local directory (`ncs_notices/`), indexed in
//! memory. One writer thread ([`writer`]) records the keys in groups: of several
//! concurrent deliveries of one notice exactly one sees "first time", and only once the
//! `write(2)` that covers its group has returned: the receiver answers 200 only for what
//! the log holds. The file format, one CRC-checked frame per group, is in [`segment`].
//!
//! **The notices to act on** go into the same record as their id
//! ([`NoticeLog::accept`]), so the `write(2)` that makes the id durable makes the notice
//! durable too. Keeping them in sled instead meant a sled flush before every 200, which
//! halved the intake's rate (BENCHMARKS.md, "Webhook intake"). When the controller has
//! applied a notice, [`NoticeLog::settle`] flushes the store (so what the notice caused,
//! a replacement's intent, is durable first) and then appends an applied mark, off the
//! 200's path and for all notices settled within a second at once. At open the records are replayed: a notice without a mark is handed to the
//! controller again, and each player's newest position continues the `lts` order. A
//! notice may wait for days (its slot held while its source is down), longer than the
//! TTL below, so every new segment starts with a copy of the notices still waiting
//! (see [`appender`]).
//!
//! **Durability.** A record survives a `kill -9` of the process at any instant: it
//! is in the kernel's page cache when its 200 is sent, and a write cut short by the kill
//! leaves a frame that fails its CRC and is cut off at the next open. Against a power
//! loss or kernel crash the log is `fdatasync`ed at most [`appender::SYNC_EVERY`] after a
//! write (and whenever a segment closes or the log shuts down), so the notices
//! acknowledged in the last second before one may be forgotten (NCS's resends of them
//! then acted on again, or found by List). An `fdatasync` per group costs about 190 µs
//! on the benchmark machine and took intake from about 0.6 to 0.37–0.39 of the bare
//! handler's rate (BENCHMARKS.md, "Webhook intake"), so it is periodic.
//!
//! NCS stops after three retries, so a TTL of a day ([`TTL_MS`]) is far more than
//! enough; the app calls [`NoticeLog::prune`] hourly. Pruning deletes whole segments,
//! one per hour of first-seen time, so an id is remembered for at least 24 h and,
//! while notices keep arriving, at most about 26 h.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::store::{PendingNotice, PlayerPosition, Store, StoreError};

mod appender;
mod index;
mod pending;
#[cfg(test)]
mod pending_tests;
mod replay;
mod segment;
#[cfg(test)]
mod tests;
mod writer;

/// The log's directory inside the store's.
pub const DIR: &str = "ncs_notices";

/// How long a notice id is remembered (24 h).
pub const TTL_MS: u64 = 24 * 60 * 60 * 1000;

/// The durable set of notice keys already seen, and of acknowledged notices not
/// applied. Cheap to clone; the clones share one writer thread, as do all logs opened
/// on one store in one process.
#[derive(Clone)]
pub struct NoticeLog {
    kind: Kind,
    store: Store,
}

#[derive(Clone)]
enum Kind {
    /// The log in the store's local directory; `legacy` when the store held notices of
    /// an earlier version, which kept them there.
    File { shared: Arc<Shared>, legacy: bool },
    /// The store's own notice keys and pending notices, for these projects.
    Store { projects: Arc<[String]> },
}

/// A notice being accepted: queued to be made durable under the ordering lock (so
/// notices are recorded in the order they were admitted), waited for after it.
pub struct Accepting<'a> {
    log: &'a NoticeLog,
    how: Durable,
}

enum Durable {
    /// The writer's answer to the notice's record.
    File(writer::Answer),
    /// The notice and its id are written to the store; a flush makes both durable.
    Store,
}

impl Accepting<'_> {
    /// Returns once the notice survives a process kill (see the module doc): its 200
    /// may be sent.
    pub async fn durable(self) -> Result<(), StoreError> {
        match self.how {
            Durable::File(answer) => answer.get().await.map(drop),
            Durable::Store => self.log.store.flush().await,
        }
    }
}

struct Shared {
    /// Keys of notices applied and not yet marked (see [`NoticeLog::settle`]).
    settled: Mutex<Vec<Vec<u8>>>,
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
            kind: Kind::File {
                shared: open_file(dir)?,
                legacy: !store.pending_notices()?.is_empty(),
            },
            store: store.clone(),
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
                projects: projects.into(),
            },
            store: store.clone(),
        })
    }

    /// Records `key` as first seen at `now_ms`. True exactly once per key (until pruned);
    /// a true answer is written (see the module doc for what survives what) when it is
    /// returned. If the write fails, a resend is not acknowledged as a duplicate until
    /// the key is durable (the file log does not record it; the store holds it for its
    /// next flush, which [`known_durable`](Self::known_durable) awaits).
    pub async fn first_time(
        &self,
        key: impl Into<Vec<u8>>,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        match &self.kind {
            Kind::File { shared, .. } => shared.writer.record(key.into(), now_ms, None).get().await,
            Kind::Store { .. } => {
                let first = self.store.note_notice(&key.into(), now_ms)?;
                if first {
                    self.store.flush().await?;
                }
                Ok(first)
            }
        }
    }

    /// Records `notice` (its key first seen at `now_ms`) as acknowledged and to be acted
    /// on, until [`settle`](Self::settle), and its position as its player's newest.
    /// The caller has checked that its key is not recorded; an error here means nothing
    /// was, and [`Accepting::durable`] says when it is.
    pub fn accept(&self, notice: &PendingNotice, now_ms: u64) -> Result<Accepting<'_>, StoreError> {
        let how = match &self.kind {
            Kind::File { shared, .. } => Durable::File(shared.writer.record(
                notice.key.as_bytes().to_vec(),
                now_ms,
                Some(pending::encode(notice)),
            )),
            // The id goes into the same flush as the notice: one group commit before the
            // 200, not two in a row (a notice's answer waited for both, and at 1,000
            // converging projects its sender's slots with it).
            Kind::Store { .. } => {
                self.store.put_notice(notice)?;
                self.store.note_notice(notice.key.as_bytes(), now_ms)?;
                Durable::Store
            }
        };
        Ok(Accepting { log: self, how })
    }

    /// Returns once a delivery of `key` accepted before the call is durable (a resend
    /// that came meanwhile is answered only then); an error if that delivery was not
    /// recorded.
    pub async fn accepted(&self, key: &str) -> Result<(), StoreError> {
        match &self.kind {
            Kind::File { shared, .. } => {
                match shared.writer.barrier(key.as_bytes().to_vec()).get().await? {
                    true => Ok(()),
                    false => Err(StoreError::NoticeWriter(
                        "the first delivery of the notice was not recorded".into(),
                    )),
                }
            }
            Kind::Store { .. } => self.store.flush().await,
        }
    }

    /// The project's notices under `keys` were applied: what [`applied`](Self::applied)
    /// does, but in the file log the marks of all notices settled within
    /// [`SETTLE_EVERY`] share one store flush and one frame, on a task of their own, so
    /// a stream of notices costs one flush a second, not one per controller turn. A
    /// notice whose mark is lost (a kill first) is replayed, and applying one twice only
    /// repeats it.
    pub fn settle(&self, project: &str, keys: Vec<String>) {
        if let Err(e) = self.forget_stored(project, &keys) {
            tracing::warn!(project, error = %e,
                "cannot forget applied NCS notices: they are replayed at the next start");
        }
        if let Kind::File { shared, .. } = &self.kind {
            let first = {
                let mut settled = lock(&shared.settled);
                let first = settled.is_empty();
                settled.extend(keys.into_iter().map(String::into_bytes));
                first
            };
            if first {
                let (shared, store) = (shared.clone(), self.store.clone());
                tokio::spawn(async move {
                    tokio::time::sleep(SETTLE_EVERY).await;
                    let keys = std::mem::take(&mut *lock(&shared.settled));
                    if let Err(e) = mark(&store, &shared, keys).await {
                        tracing::warn!(error = %e,
                            "cannot mark NCS notices applied: they are replayed at the next start");
                    }
                });
            }
        }
    }

    /// The project's notices under `keys` were applied: they are not replayed once what
    /// they caused is durable. The store removes them with its next flush, which covers
    /// what they caused too; the file log flushes the store, then marks them applied.
    pub async fn applied(&self, project: &str, keys: Vec<String>) -> Result<(), StoreError> {
        self.forget_stored(project, &keys)?;
        if let Kind::File { shared, .. } = &self.kind {
            let keys = keys.into_iter().map(String::into_bytes).collect();
            mark(&self.store, shared, keys).await?;
        }
        Ok(())
    }

    /// Removes notices from the store, where the file log finds them only in a store an
    /// earlier version wrote.
    fn forget_stored(&self, project: &str, keys: &[String]) -> Result<(), StoreError> {
        match self.kind {
            Kind::Store { .. } | Kind::File { legacy: true, .. } => {
                self.store.notices_applied(project, keys)
            }
            Kind::File { legacy: false, .. } => Ok(()),
        }
    }

    /// Every acknowledged notice not settled, in no particular order.
    pub fn pending(&self) -> Result<Vec<PendingNotice>, StoreError> {
        let mut all = self.store.pending_notices()?;
        if let Kind::File { shared, .. } = &self.kind {
            all.extend(lock(&shared.index).pending_notices());
        }
        Ok(all)
    }

    /// Each player's newest notice position as of the open (the file log), or now (the
    /// store).
    pub fn positions(&self) -> Result<Vec<PlayerPosition>, StoreError> {
        let stored = self.store.notice_positions()?;
        let Kind::File { shared, .. } = &self.kind else {
            return Ok(stored);
        };
        let mut newest: HashMap<(String, String), PlayerPosition> = HashMap::new();
        let logged = lock(&shared.index).positions().to_vec();
        for p in stored.into_iter().chain(logged) {
            match newest.entry((p.project.clone(), p.player.clone())) {
                Entry::Occupied(mut at) if at.get().position < p.position => {
                    at.insert(p);
                }
                Entry::Occupied(_) => {}
                Entry::Vacant(at) => {
                    at.insert(p);
                }
            }
        }
        Ok(newest.into_values().collect())
    }

    /// Whether `key` is recorded (tests, diagnostics).
    pub fn contains(&self, key: &str) -> Result<bool, StoreError> {
        match &self.kind {
            Kind::File { shared, .. } => Ok(lock(&shared.index).contains(key.as_bytes())),
            Kind::Store { .. } => self.store.notice_known(key.as_bytes()),
        }
    }

    /// Returns once a key [`contains`](Self::contains) found is durable, so a resend's 200
    /// acknowledges only what survives a kill. The file log indexes a key once it is
    /// written; the store holds it from its write, durable with the next flush, which a
    /// failed flush left still to come.
    pub async fn known_durable(&self) -> Result<(), StoreError> {
        match &self.kind {
            Kind::File { .. } => Ok(()),
            Kind::Store { .. } => self.store.flush().await,
        }
    }

    /// Forgets the ids first seen before `older_than_ms` (in the file log: of every
    /// segment whose ids were all first seen before it, deleting its file; the segment
    /// being written stays until the next one starts); returns how many ids.
    pub fn prune(&self, older_than_ms: u64) -> Result<usize, StoreError> {
        match &self.kind {
            Kind::File { shared, .. } => lock(&shared.index).prune(older_than_ms),
            Kind::Store { projects } => {
                let mut forgotten = 0;
                for project in projects.iter() {
                    match self.store.forget_notices(project, older_than_ms) {
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

/// How long the file log gathers applied notices before it marks them (see
/// [`NoticeLog::settle`]).
pub const SETTLE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Flushes the store (what the notices caused is durable), then appends their marks.
async fn mark(store: &Store, shared: &Shared, keys: Vec<Vec<u8>>) -> Result<(), StoreError> {
    if keys.is_empty() {
        return Ok(());
    }
    store.flush().await?;
    shared
        .writer
        .applied(keys, wall_clock_ms())
        .get()
        .await
        .map(drop)
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
            settled: Mutex::default(),
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
