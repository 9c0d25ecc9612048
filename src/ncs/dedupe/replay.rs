//! Rebuilding the index (ids, notices waiting, players' positions) from the segments at
//! open.

use std::collections::HashMap;
use std::path::Path;

use super::appender::Appender;
use super::index::{Closed, Index};
use super::segment::{self, Kind, Segment};
use super::{TTL_MS, pending};
use crate::store::{NoticePosition, PlayerPosition, StoreError};

/// Reads the segments in `dir` into an index and an appender that continues the newest.
///
/// The newest segment is read first: a torn tail (a write cut short by a kill) is cut
/// off, so appends continue after the last intact frame. Older segments are read only
/// if they can hold ids younger than the TTL, measured from the newest id recorded or
/// from `now_ms` if that is earlier (after the clock jumped ahead and back, the newest
/// id may lie in the future); the others stay on disk, unread, until [`Index::prune`]
/// deletes them. The records are then applied oldest first, so a notice's applied mark
/// (always written after its record) takes it out of the notices waiting.
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
    let newest_bytes = read(newest_path).map_err(|e| failed(newest_path, "cannot read", e))?;
    let mut newest_ms = 0;
    let intact = segment::read_frames(&newest_bytes, |r| newest_ms = newest_ms.max(r.ms));
    let current = Segment::reopen(newest_path.clone(), *newest_start, intact as u64)
        .map_err(|e| failed(newest_path, "cannot reopen", e))?;
    let newest_ms = newest_ms.max(*newest_start);
    let expired_before = newest_ms.min(now_ms).saturating_sub(TTL_MS);
    // Each segment's ids were first seen no later than the next segment's start.
    let bounds = segments.iter().skip(1).map(|(start, _)| *start);
    let mut rebuild = Rebuild::default();
    for ((start_ms, path), bound_ms) in older.iter().zip(bounds) {
        if bound_ms >= expired_before {
            let bytes = read(path).map_err(|e| failed(path, "cannot read", e))?;
            rebuild.segment(&mut index, *start_ms, &bytes);
        }
        index.close(Closed {
            start_ms: *start_ms,
            bound_ms,
            path: path.clone(),
        });
    }
    rebuild.segment(&mut index, *newest_start, &newest_bytes[..intact]);
    rebuild.finish(&mut index);
    Ok((
        index,
        Appender::new(dir.to_path_buf(), Some(current), newest_ms),
    ))
}

/// What the records read so far say, beyond the ids the index takes at once.
#[derive(Default)]
struct Rebuild {
    /// Notices waiting: key → (first seen, data).
    pending: HashMap<Vec<u8>, (u64, Vec<u8>)>,
    positions: HashMap<(String, String), NoticePosition>,
}

impl Rebuild {
    /// Applies one segment's intact records (segments oldest first).
    fn segment(&mut self, index: &mut Index, start_ms: u64, bytes: &[u8]) {
        segment::read_frames(bytes, |r| match r.kind {
            Kind::Seen => index.insert(r.key, start_ms),
            Kind::Accepted => {
                index.insert(r.key, start_ms);
                if let Some(n) = pending::decode(r.key, r.data) {
                    let at = self
                        .positions
                        .entry((n.project, n.player))
                        .or_insert(n.position);
                    *at = (*at).max(n.position);
                }
                self.pending.insert(r.key.to_vec(), (r.ms, r.data.to_vec()));
            }
            Kind::Applied => {
                self.pending.remove(r.key);
            }
        });
    }

    fn finish(self, index: &mut Index) {
        for (key, (seen_ms, data)) in self.pending {
            index.accept(&key, seen_ms, &data);
        }
        index.set_positions(
            self.positions
                .into_iter()
                .map(|((project, player), position)| PlayerPosition {
                    project,
                    player,
                    position,
                })
                .collect(),
        );
    }
}

/// A segment's bytes. Bytes after the last intact frame are logged: in the newest
/// segment they are the torn tail a kill leaves, in an older one the trace of a failed
/// write (its records were answered with an error) or damage.
fn read(path: &Path) -> std::io::Result<Vec<u8>> {
    let bytes = std::fs::read(path)?;
    let intact = segment::read_frames(&bytes, |_| {});
    if intact < bytes.len() {
        tracing::warn!(segment = %path.display(), intact, dropped = bytes.len() - intact,
            "NCS notice log: bytes after the last intact frame ignored (a write cut short)");
    }
    Ok(bytes)
}
