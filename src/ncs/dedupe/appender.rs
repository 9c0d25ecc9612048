//! Where the writer's frames go: the current segment, a new one every hour of
//! first-seen time (or [`MAX_SEGMENT_BYTES`]), and when to `fdatasync`.
//!
//! A new segment starts with a copy of every notice not applied yet, in the same
//! `write(2)` as the first group's frame: pruning deletes whole segments and never the
//! current one, so a notice that waits longer than the TTL (its slot held while its
//! source is down) is still in the log however old its first record is.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::index::{Closed, Index};
use super::lock;
use super::segment::{Frame, Kind, Record, Segment};
use crate::store::StoreError;

/// First-seen time one segment spans: pruning works in whole segments, so an id is
/// forgotten between the TTL and the TTL plus this.
pub(super) const SEGMENT_SPAN_MS: u64 = 60 * 60 * 1000;

/// A segment grows to this at most (plus one frame) before the next one starts, so a
/// burst of notices cannot make one file that outlives its ids by a day.
pub(super) const MAX_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

/// How long an appended frame may stay without `fdatasync`. The write itself makes it
/// survive a process kill; this bounds what a power loss or kernel crash can take.
pub(super) const SYNC_EVERY: Duration = Duration::from_secs(1);

pub(super) struct Appender {
    dir: PathBuf,
    current: Option<Segment>,
    /// Start of the newest segment so far: the next one must start later.
    last_start_ms: Option<u64>,
    /// The newest first-seen time appended so far.
    newest_ms: u64,
    /// When the oldest frame not yet `fdatasync`ed was appended.
    unsynced_since: Option<Instant>,
}

impl Appender {
    /// An appender for `dir`, continuing `current` (the newest segment, its torn tail
    /// cut off) if there is one.
    pub(super) fn new(dir: PathBuf, current: Option<Segment>, newest_ms: u64) -> Appender {
        Appender {
            dir,
            last_start_ms: current.as_ref().map(|s| s.start_ms),
            current,
            newest_ms,
            unsynced_since: None,
        }
    }

    /// Appends one frame (its ids first seen up to `frame_newest_ms`) and returns the
    /// start of the segment now holding them. A segment the write failed on is closed:
    /// a failed write may have left part of the frame, and nothing may follow that.
    pub(super) fn append(
        &mut self,
        frame: &[u8],
        frame_newest_ms: u64,
        index: &Mutex<Index>,
    ) -> Result<u64, StoreError> {
        let newest_ms = self.newest_ms.max(frame_newest_ms);
        let full = |s: &Segment| {
            s.start_ms.saturating_add(SEGMENT_SPAN_MS) <= newest_ms || s.len() >= MAX_SEGMENT_BYTES
        };
        if self.current.as_ref().is_some_and(full) {
            self.close(index);
        }
        let (segment, carried) = match &mut self.current {
            Some(segment) => (segment, None),
            None => {
                let start_ms = match self.last_start_ms {
                    Some(last) => newest_ms.max(last + 1),
                    None => newest_ms,
                };
                let segment =
                    Segment::create(&self.dir, start_ms).map_err(|e| StoreError::NoticeLog {
                        path: self.dir.clone(),
                        detail: format!("cannot start a segment: {e}"),
                    })?;
                self.last_start_ms = Some(start_ms);
                (self.current.insert(segment), carry(index))
            }
        };
        let written = match &carried {
            Some((copies, _)) => segment.append(&[&copies[..], frame].concat()),
            None => segment.append(frame),
        };
        if let Err(e) = written {
            let error = StoreError::NoticeLog {
                path: segment.path.clone(),
                detail: format!("cannot append: {e}"),
            };
            self.close(index);
            return Err(error);
        }
        let start_ms = segment.start_ms;
        if let Some((_, keys)) = carried {
            let mut index = lock(index);
            for key in keys {
                index.insert(&key, start_ms);
            }
        }
        self.newest_ms = newest_ms;
        self.unsynced_since.get_or_insert_with(Instant::now);
        Ok(start_ms)
    }

    /// How long until what was appended is due for `fdatasync`; `None` when nothing is.
    pub(super) fn sync_due_in(&self) -> Option<Duration> {
        self.unsynced_since
            .map(|since| SYNC_EVERY.saturating_sub(since.elapsed()))
    }

    /// `fdatasync`s the current segment if anything appended to it is not yet.
    pub(super) fn sync(&mut self) -> Result<(), StoreError> {
        if self.unsynced_since.take().is_none() {
            return Ok(());
        }
        match &self.current {
            Some(segment) => segment.sync().map_err(|e| StoreError::NoticeLog {
                path: segment.path.clone(),
                detail: format!("cannot fdatasync: {e}"),
            }),
            None => Ok(()),
        }
    }

    /// [`sync`](Self::sync) where a failure can only be logged: the ids were
    /// acknowledged already, and they do survive a process kill.
    pub(super) fn sync_or_log(&mut self) {
        if let Err(e) = self.sync() {
            tracing::error!(error = %e,
                "NCS notice ids of the last second may not survive a power loss");
        }
    }

    fn close(&mut self, index: &Mutex<Index>) {
        self.sync_or_log();
        if let Some(segment) = self.current.take() {
            lock(index).close(Closed {
                start_ms: segment.start_ms,
                bound_ms: self.newest_ms,
                path: segment.path,
            });
        }
    }
}

/// A frame, and the keys of its records.
type Carried = (Vec<u8>, Vec<Box<[u8]>>);

/// The frame that copies every notice not applied into a new segment, with their keys;
/// `None` when there is none.
fn carry(index: &Mutex<Index>) -> Option<Carried> {
    let index = lock(index);
    let mut frame = Frame::new();
    let mut keys = Vec::new();
    for (key, seen_ms, data) in index.pending() {
        frame.push(Record {
            kind: Kind::Accepted,
            key,
            ms: seen_ms,
            data,
        });
        keys.push(key.into());
    }
    (!frame.is_empty()).then(|| (frame.finish(), keys))
}
