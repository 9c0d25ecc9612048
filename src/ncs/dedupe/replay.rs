//! Rebuilding the index from the segments at open.

use std::path::{Path, PathBuf};

use super::TTL_MS;
use super::appender::Appender;
use super::index::{Closed, Index};
use super::segment::{self, Segment};
use crate::store::StoreError;

/// Reads the segments in `dir` into an index and an appender that continues the newest.
///
/// The newest segment is read first: a torn tail (a write cut short by a kill) is cut
/// off, so appends continue after the last intact frame. Older segments are read only
/// if they can hold ids younger than the TTL, measured from the newest id recorded or
/// from `now_ms` if that is earlier (after the clock jumped ahead and back, the newest
/// id may lie in the future); the others stay on disk, unread, until [`Index::prune`]
/// deletes them.
pub(super) fn load(dir: &Path, now_ms: u64) -> Result<(Index, Appender), StoreError> {
    let failed = |path: &Path, what: &str, e: std::io::Error| StoreError::NoticeLog {
        path: path.to_path_buf(),
        detail: format!("{what}: {e}"),
    };
    std::fs::create_dir_all(dir).map_err(|e| failed(dir, "cannot create", e))?;
    let segments = segment::list(dir).map_err(|e| failed(dir, "cannot list", e))?;
    let mut index = Index::default();
    let Some(((newest_start, newest_path), older)) = segments.split_last() else {
        return Ok((index, Appender::new(dir.to_path_buf(), None, 0)));
    };
    let (intact, newest_ms) = read(newest_path, *newest_start, &mut index)
        .map_err(|e| failed(newest_path, "cannot read", e))?;
    let current = Segment::reopen(newest_path.clone(), *newest_start, intact)
        .map_err(|e| failed(newest_path, "cannot reopen", e))?;
    let newest_ms = newest_ms.max(*newest_start);
    let expired_before = newest_ms.min(now_ms).saturating_sub(TTL_MS);
    // Each segment's ids were first seen no later than the next segment's start.
    let bounds = segments.iter().skip(1).map(|(start, _)| *start);
    let mut closed: Vec<Closed> = Vec::with_capacity(older.len());
    for ((start_ms, path), bound_ms) in older.iter().zip(bounds).rev() {
        if bound_ms >= expired_before {
            read(path, *start_ms, &mut index).map_err(|e| failed(path, "cannot read", e))?;
        }
        closed.push(Closed {
            start_ms: *start_ms,
            bound_ms,
            path: path.clone(),
        });
    }
    for segment in closed.into_iter().rev() {
        index.close(segment);
    }
    Ok((
        index,
        Appender::new(dir.to_path_buf(), Some(current), newest_ms),
    ))
}

/// Adds the ids of one segment to `index`; returns the length of its intact part and
/// the newest first-seen time in it. A segment with more than that is logged: for the
/// newest it is the torn tail a kill leaves, for an older one the trace of a failed
/// write (its ids were answered with an error) or damage.
fn read(path: &PathBuf, start_ms: u64, index: &mut Index) -> std::io::Result<(u64, u64)> {
    let bytes = std::fs::read(path)?;
    let mut newest_ms = 0;
    let intact = segment::read_frames(&bytes, |key, seen_ms| {
        index.insert(key, start_ms);
        newest_ms = newest_ms.max(seen_ms);
    });
    if intact < bytes.len() {
        tracing::warn!(segment = %path.display(), intact, dropped = bytes.len() - intact,
            "NCS notice log: bytes after the last intact frame ignored (a write cut short)");
    }
    Ok((intact as u64, newest_ms))
}
