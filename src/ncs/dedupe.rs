//! Which NCS notices were already acted on (reference §2.1: duplicates are possible).
//!
//! One sled tree, `ncs_notices`: dedupe key → first-seen Unix ms (8 big-endian bytes).
//! Keys are recorded by one writer thread ([`writer`]) in groups: of several concurrent
//! deliveries of one notice exactly one sees "first time", and only once the flush that
//! covers its group is done: the receiver answers 200 only for what it durably
//! remembers. NCS stops after three retries, so a TTL of a day ([`TTL_MS`]) is far more
//! than enough; the app calls [`NoticeLog::prune`] periodically.

use std::sync::Arc;

use crate::store::{Store, StoreError};

mod writer;

/// Name of the sled tree holding the notice ids.
pub const TREE: &str = "ncs_notices";

/// How long a notice id is remembered (24 h).
pub const TTL_MS: u64 = 24 * 60 * 60 * 1000;

/// The durable set of notice keys already seen. Cheap to clone; the clones share one
/// writer thread.
#[derive(Clone)]
pub struct NoticeLog {
    tree: sled::Tree,
    writer: Arc<writer::Writer>,
}

impl NoticeLog {
    /// Opens the tree and starts its writer thread.
    pub fn open(store: &Store) -> Result<NoticeLog, StoreError> {
        let tree = store.tree(TREE)?;
        Ok(NoticeLog {
            writer: Arc::new(writer::Writer::start(tree.clone(), store.clone())?),
            tree,
        })
    }

    /// Records `key` as first seen at `now_ms`. True exactly once per key (until pruned);
    /// a true answer is durable (flushed) when it is returned. If the flush fails the
    /// record is withdrawn again so a resend is not mistaken for a duplicate.
    pub async fn first_time(
        &self,
        key: impl Into<Vec<u8>>,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        self.writer.record(key.into(), now_ms).await
    }

    /// Whether `key` is recorded (tests, diagnostics).
    pub fn contains(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.tree.contains_key(key.as_bytes())?)
    }

    /// Drops every key first seen before `older_than_ms`; returns how many. Values that
    /// are not 8 bytes (never written by this module) are dropped too.
    pub fn prune(&self, older_than_ms: u64) -> Result<usize, StoreError> {
        let mut removed = 0;
        for item in self.tree.iter() {
            let (k, v) = item?;
            let seen = <[u8; 8]>::try_from(v.as_ref()).map(u64::from_be_bytes);
            let expired = match seen {
                Ok(ms) => ms < older_than_ms,
                Err(_) => true,
            };
            // Only remove the value we looked at: a concurrent re-record stays.
            if expired
                && self
                    .tree
                    .compare_and_swap(&k, Some(v), None::<&[u8]>)?
                    .is_ok()
            {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn first_time_is_true_once() {
        let store = Store::temporary().unwrap();
        let log = NoticeLog::open(&store).unwrap();
        assert!(log.first_time("a", 10).await.unwrap());
        assert!(!log.first_time("a", 20).await.unwrap());
        assert!(log.first_time("b", 20).await.unwrap());
        assert!(log.contains("a").unwrap());
    }

    #[tokio::test]
    async fn concurrent_deliveries_yield_one_first_time() {
        let store = Store::temporary().unwrap();
        let log = NoticeLog::open(&store).unwrap();
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let log = log.clone();
                tokio::spawn(async move { log.first_time("same", 1).await.unwrap() })
            })
            .collect();
        let mut firsts = 0;
        for t in tasks {
            if t.await.unwrap() {
                firsts += 1;
            }
        }
        assert_eq!(firsts, 1);
    }

    #[tokio::test]
    async fn prune_drops_only_old_ids() {
        let store = Store::temporary().unwrap();
        let log = NoticeLog::open(&store).unwrap();
        assert!(log.first_time("old", 100).await.unwrap());
        assert!(log.first_time("edge", 200).await.unwrap());
        assert!(log.first_time("new", 300).await.unwrap());
        assert_eq!(log.prune(200).unwrap(), 1);
        assert!(!log.contains("old").unwrap());
        assert!(log.contains("edge").unwrap());
        // A pruned id is new again; the others are still duplicates.
        assert!(log.first_time("old", 400).await.unwrap());
        assert!(!log.first_time("new", 400).await.unwrap());
        assert_eq!(log.prune(u64::MAX).unwrap(), 3);
    }
}
