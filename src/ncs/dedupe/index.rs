//! The notice log in memory: every id recorded within the TTL, by the segment holding
//! it, the segments no longer appended to, so pruning is deleting whole files, and the
//! acknowledged notices not applied yet, which every new segment starts with a copy of.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;

use crate::store::{PendingNotice, PlayerPosition, StoreError};

#[derive(Default)]
pub(super) struct Index {
    /// Key → start of the segment that holds it.
    keys: HashMap<Box<[u8]>, u64>,
    /// Segments no longer appended to, oldest first.
    closed: VecDeque<Closed>,
    /// Acknowledged notices not applied: key → (first seen, the notice as logged). Few:
    /// the controller applies most within a pass; one whose slot is held (its source
    /// down) may wait for days, hence the copies.
    pending: HashMap<Box<[u8]>, Waiting>,
    /// Each player's newest position in the notices the open read (see [`super::pending`]).
    positions: Vec<PlayerPosition>,
}

/// A segment no longer appended to.
pub(super) struct Closed {
    pub(super) start_ms: u64,
    /// Every id in it was first seen at or before this.
    pub(super) bound_ms: u64,
    pub(super) path: PathBuf,
}

/// A notice not applied: when it was first seen, and its record's data.
struct Waiting {
    seen_ms: u64,
    data: Box<[u8]>,
}

impl Index {
    pub(super) fn contains(&self, key: &[u8]) -> bool {
        self.keys.contains_key(key)
    }

    /// Notes `key` as held by the segment starting at `segment`. A key already held by a
    /// newer segment stays there (replay reads newer segments first), so it lives as
    /// long as its newest record.
    pub(super) fn insert(&mut self, key: &[u8], segment: u64) {
        match self.keys.get_mut(key) {
            Some(held) => *held = (*held).max(segment),
            None => {
                self.keys.insert(key.into(), segment);
            }
        }
    }

    /// Keeps the notice under `key` until [`applied`](Self::applied).
    pub(super) fn accept(&mut self, key: &[u8], seen_ms: u64, data: &[u8]) {
        self.pending.insert(
            key.into(),
            Waiting {
                seen_ms,
                data: data.into(),
            },
        );
    }

    pub(super) fn applied(&mut self, key: &[u8]) {
        self.pending.remove(key);
    }

    pub(super) fn is_pending(&self, key: &[u8]) -> bool {
        self.pending.contains_key(key)
    }

    /// The notices not applied, as `(key, first seen, data)`.
    pub(super) fn pending(&self) -> impl Iterator<Item = (&[u8], u64, &[u8])> {
        self.pending
            .iter()
            .map(|(key, w)| (&key[..], w.seen_ms, &w.data[..]))
    }

    /// The notices not applied, decoded; data this build cannot read is logged and left.
    pub(super) fn pending_notices(&self) -> Vec<PendingNotice> {
        self.pending()
            .filter_map(|(key, _, data)| {
                let notice = super::pending::decode(key, data);
                if notice.is_none() {
                    tracing::warn!(
                        bytes = data.len(),
                        "NCS notice log: an unreadable notice is left"
                    );
                }
                notice
            })
            .collect()
    }

    pub(super) fn set_positions(&mut self, positions: Vec<PlayerPosition>) {
        self.positions = positions;
    }

    pub(super) fn positions(&self) -> &[PlayerPosition] {
        &self.positions
    }

    /// Adds a segment that is no longer appended to; segments close oldest first.
    pub(super) fn close(&mut self, closed: Closed) {
        self.closed.push_back(closed);
    }

    /// Deletes every closed segment whose ids were all first seen before `older_than_ms`
    /// and forgets those ids; returns how many ids. On a failed delete the segment and
    /// its ids stay (a later prune tries again) and the error is returned.
    pub(super) fn prune(&mut self, older_than_ms: u64) -> Result<usize, StoreError> {
        let mut dropped = None;
        let mut failed = None;
        while let Some(oldest) = self.closed.front() {
            if oldest.bound_ms >= older_than_ms {
                break;
            }
            match std::fs::remove_file(&oldest.path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    failed = Some(StoreError::NoticeLog {
                        path: oldest.path.clone(),
                        detail: format!("cannot delete an expired segment: {e}"),
                    });
                    break;
                }
            }
            dropped = Some(oldest.start_ms);
            self.closed.pop_front();
        }
        let before = self.keys.len();
        if let Some(newest_dropped) = dropped {
            // Segment starts rise, so the ids of the deleted segments are exactly those
            // held by a segment that started no later than the newest one deleted.
            self.keys.retain(|_, segment| *segment > newest_dropped);
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(before - self.keys.len()),
        }
    }

    /// Ids held (tests, diagnostics).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.keys.len()
    }

    /// Closed segments (tests, diagnostics).
    #[cfg(test)]
    pub(super) fn closed(&self) -> impl Iterator<Item = &Closed> {
        self.closed.iter()
    }
}
