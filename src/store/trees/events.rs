//! Each scene's event history.
//!
//! Tree `events`: `{project}\0{scene}\0{position as 8 big-endian bytes}` → the event as
//! JSON. A position is the event's time in ms × 1000, plus one for each event already
//! recorded at that millisecond, so a scene's keys are in the order its events were
//! recorded and a prefix walk reads them oldest first.

use super::{Backend, Tree, TreeStore, decode, key};
use crate::model::Event;
use crate::store::error::StoreError;

/// Tries per append to find a free position before giving up: one per event already
/// recorded for the scene in the same millisecond.
const SAME_MS_MAX: u64 = 1000;

fn scene_prefix(project: &str, scene: &str) -> Vec<u8> {
    let mut k = key(&[project, scene]);
    k.push(0);
    k
}

impl<B: Backend> TreeStore<B> {
    pub(in crate::store) fn append_event_impl(
        &self,
        project: &str,
        event: &Event,
    ) -> Result<(), StoreError> {
        let value = serde_json::to_vec(event).expect("events serialize");
        let prefix = scene_prefix(project, &event.scene);
        let first = event.at_ms.saturating_mul(SAME_MS_MAX);
        for position in first..first.saturating_add(SAME_MS_MAX) {
            let mut k = prefix.clone();
            k.extend_from_slice(&position.to_be_bytes());
            // Claimed only if free: two events of one millisecond get two positions.
            if self.events.compare_and_swap(&k, None, &value)? {
                return Ok(());
            }
        }
        Err(StoreError::Corrupt {
            tree: "events",
            detail: format!(
                "more than {SAME_MS_MAX} events of scene {} at {} ms",
                event.scene, event.at_ms
            ),
        })
    }

    /// The scene's events, oldest first, with their keys. One that does not decode (a
    /// kind a newer version wrote) is skipped, not an error: the rest of the history
    /// still reads, and trimming removes it in its turn.
    fn scene_entries(
        &self,
        project: &str,
        scene: &str,
    ) -> Result<Vec<(Vec<u8>, Event)>, StoreError> {
        let mut out = Vec::new();
        self.events
            .visit_prefix(&scene_prefix(project, scene), |k, v| {
                match decode("events", v) {
                    Ok(event) => out.push((k.to_vec(), event)),
                    Err(e) => {
                        tracing::warn!(project, scene, error = %e, "skipping an unreadable event")
                    }
                }
                Ok(())
            })?;
        Ok(out)
    }

    pub(in crate::store) fn scene_events_impl(
        &self,
        project: &str,
        scene: &str,
        limit: usize,
        since_ms: u64,
    ) -> Result<Vec<Event>, StoreError> {
        let entries = self.scene_entries(project, scene)?;
        Ok(entries
            .into_iter()
            .rev()
            .map(|(_, e)| e)
            .filter(|e| e.at_ms >= since_ms)
            .take(limit)
            .collect())
    }

    /// Works on keys alone (a key holds its event's time), so trimming decodes nothing.
    pub(in crate::store) fn trim_events_impl(
        &self,
        project: &str,
        scene: &str,
        keep: usize,
        before_ms: u64,
    ) -> Result<usize, StoreError> {
        let mut keys = Vec::new();
        self.events
            .visit_prefix(&scene_prefix(project, scene), |k, _| {
                keys.push(k.to_vec());
                Ok(())
            })?;
        let over = keys.len().saturating_sub(keep);
        let mut removed = 0;
        for (i, k) in keys.iter().enumerate() {
            if i < over || at_ms(k) < before_ms {
                self.events.remove(k)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    pub(in crate::store) fn forget_events_impl(&self, before_ms: u64) -> Result<usize, StoreError> {
        let mut old = Vec::new();
        self.events.visit_all(|k, _| {
            if at_ms(k) < before_ms {
                old.push(k.to_vec());
            }
            Ok(())
        })?;
        for k in &old {
            self.events.remove(k)?;
        }
        Ok(old.len())
    }
}

/// The time (ms) of the event under key `k`: its last 8 bytes are its position.
fn at_ms(k: &[u8]) -> u64 {
    let position = k
        .len()
        .checked_sub(8)
        .and_then(|at| <[u8; 8]>::try_from(&k[at..]).ok())
        .map_or(0, u64::from_be_bytes);
    position / SAME_MS_MAX
}
