//! The [`StateStore`] contract over a backend's trees.

use std::ops::RangeInclusive;
use std::path::Path;

use super::{Backend, HELD, StoredSlot, Tree, TreeStore, decode, key, read_ms, slot_key, uid_key};
use crate::model::{Event, OnAir, SceneControl, SlotKey, SlotRecord};
use crate::store::error::StoreError;
use crate::store::interface::{
    PendingNotice, PlayerPosition, Recovery, Rejection, StateStore, StoreFuture, StoreSize,
    UidRequest,
};

impl<B: Backend> StateStore for TreeStore<B> {
    fn slot(&self, key: &SlotKey) -> Result<Option<SlotRecord>, StoreError> {
        self.slots
            .get(&slot_key(key))?
            .map(|v| decode::<StoredSlot>("slots", v.as_ref()).map(|s| s.record))
            .transpose()
    }

    fn put_slot(&self, key: &SlotKey, record: &SlotRecord) -> Result<(), StoreError> {
        let stored = StoredSlot {
            key: key.clone(),
            record: record.clone(),
        };
        let value = serde_json::to_vec(&stored).expect("records serialize");
        self.slots.insert(&slot_key(key), &value)
    }

    fn remove_slot(&self, key: &SlotKey) -> Result<(), StoreError> {
        self.slots.remove(&slot_key(key))
    }

    fn project_slots(&self, project: &str) -> Result<Vec<(SlotKey, SlotRecord)>, StoreError> {
        let mut prefix = project.as_bytes().to_vec();
        prefix.push(0);
        let mut out = Vec::new();
        self.slots.visit_prefix(&prefix, |_, v| {
            let record: StoredSlot = decode("slots", v)?;
            out.push((record.key, record.record));
            Ok(())
        })?;
        Ok(out)
    }

    fn onair(&self, project: &str, scene: &str) -> Result<Option<OnAir>, StoreError> {
        self.onair
            .get(&key(&[project, scene]))?
            .map(|v| decode("onair", v.as_ref()))
            .transpose()
    }

    fn put_onair(&self, project: &str, scene: &str, state: &OnAir) -> Result<(), StoreError> {
        let value = serde_json::to_vec(state).expect("on-air state serializes");
        self.onair.insert(&key(&[project, scene]), &value)
    }

    fn next_sequence(&self, project: &str, player_id: &str, floor: u64) -> Result<u64, StoreError> {
        let next = self.sequences.update(&key(&[project, player_id]), |old| {
            let n = old
                .and_then(|v| <[u8; 8]>::try_from(v).ok())
                .map_or(0, |b| u64::from_be_bytes(b) + 1);
            n.max(floor).to_be_bytes().to_vec()
        })?;
        Ok(<[u8; 8]>::try_from(next.as_slice()).map_or(0, u64::from_be_bytes))
    }

    fn allocate_uid(&self, request: &UidRequest<'_>) -> Result<u32, StoreError> {
        let &UidRequest {
            project,
            channel,
            name,
            ..
        } = request;
        for uid in self.fresh_range(request)?.into_iter().flatten() {
            if request.held.contains(&uid) {
                continue;
            }
            let k = uid_key(project, channel, uid);
            // Claims the UID only if no one holds it yet.
            if self.uids.compare_and_swap(&k, None, name.as_bytes())? {
                self.raise_uid_hwm(project, request.scene, uid)?;
                self.uid_released.insert(&k, &HELD.to_be_bytes())?;
                return Ok(uid);
            }
        }
        let mut candidates = self.out_of_quarantine(request)?;
        candidates.sort_by_key(|c| (c.since, c.uid));
        for candidate in candidates {
            let k = uid_key(project, channel, candidate.uid);
            // Claimed only if no concurrent allocation claimed it since it was read.
            let claimed = self.uid_released.compare_and_swap(
                &k,
                candidate.released.as_deref(),
                &HELD.to_be_bytes(),
            )?;
            if claimed {
                self.uids.insert(&k, name.as_bytes())?;
                return Ok(candidate.uid);
            }
        }
        Err(StoreError::UidsExhausted {
            scene: request.scene.to_string(),
            channel: channel.to_string(),
            start: request.start,
            end: request.end,
        })
    }

    fn free_uids(&self, request: &UidRequest<'_>) -> Result<u64, StoreError> {
        let mut never_used = 0;
        if let Some(fresh) = self.fresh_range(request)? {
            never_used = u64::from(fresh.end() - fresh.start()) + 1;
            self.visit_known(request, fresh, |_| never_used -= 1)?;
        }
        let reusable = self.out_of_quarantine(request)?.len() as u64;
        Ok(never_used + reusable)
    }

    fn release_uids(
        &self,
        project: &str,
        channel: &str,
        uids: &[u32],
        at_ms: u64,
    ) -> Result<(), StoreError> {
        for &uid in uids {
            self.uid_released
                .insert(&uid_key(project, channel, uid), &at_ms.to_be_bytes())?;
        }
        Ok(())
    }

    fn hold_uids(&self, project: &str, channel: &str, uids: &[u32]) -> Result<(), StoreError> {
        for &uid in uids {
            let k = uid_key(project, channel, uid);
            // Read first: at a process start every listed UID is new to the caller, and
            // most are marked held already.
            let released = self.uid_released.get(&k)?;
            if read_ms(released.as_ref().map(AsRef::as_ref)) != HELD {
                self.uid_released.insert(&k, &HELD.to_be_bytes())?;
            }
        }
        Ok(())
    }

    fn uids_unknown_until(&self, project: &str, at_ms: u64) -> Result<(), StoreError> {
        self.uids_unknown_until.update(project.as_bytes(), |old| {
            read_ms(old).max(at_ms).to_be_bytes().to_vec()
        })?;
        Ok(())
    }

    fn raise_uid_hwm(&self, project: &str, scene: &str, uid: u32) -> Result<(), StoreError> {
        self.uid_hwm.update(&key(&[project, scene]), |old| {
            let hwm = old
                .and_then(|v| <[u8; 4]>::try_from(v).ok())
                .map_or(0, u32::from_be_bytes);
            hwm.max(uid).to_be_bytes().to_vec()
        })?;
        Ok(())
    }

    fn note_uid(
        &self,
        project: &str,
        channel: &str,
        uid: u32,
        name: &str,
    ) -> Result<bool, StoreError> {
        let k = uid_key(project, channel, uid);
        self.uids.compare_and_swap(&k, None, name.as_bytes())
    }

    fn uid_known(&self, project: &str, channel: &str, uid: u32) -> Result<bool, StoreError> {
        Ok(self.uids.get(&uid_key(project, channel, uid))?.is_some())
    }

    fn note_notice(&self, key: &[u8], now_ms: u64) -> Result<bool, StoreError> {
        self.notice_ids
            .compare_and_swap(key, None, &now_ms.to_be_bytes())
    }

    fn notice_known(&self, key: &[u8]) -> Result<bool, StoreError> {
        Ok(self.notice_ids.get(key)?.is_some())
    }

    fn forget_notices(&self, project: &str, older_than_ms: u64) -> Result<usize, StoreError> {
        let mut prefix = project.as_bytes().to_vec();
        prefix.push(0);
        let mut old = Vec::new();
        self.notice_ids.visit_prefix(&prefix, |k, v| {
            if read_ms(Some(v)) < older_than_ms {
                old.push(k.to_vec());
            }
            Ok(())
        })?;
        for key in &old {
            self.notice_ids.remove(key)?;
        }
        Ok(old.len())
    }

    fn api_calls(&self, project: &str, api: &str) -> Result<Vec<u64>, StoreError> {
        let value = self.api_calls.get(&key(&[project, api]))?;
        Ok(value
            .map(|v| {
                v.as_ref()
                    .chunks_exact(8)
                    .map(|b| u64::from_be_bytes(b.try_into().expect("8 bytes")))
                    .collect()
            })
            .unwrap_or_default())
    }

    fn put_api_calls(&self, project: &str, api: &str, at_ms: &[u64]) -> Result<(), StoreError> {
        let value: Vec<u8> = at_ms.iter().flat_map(|ms| ms.to_be_bytes()).collect();
        self.api_calls.insert(&key(&[project, api]), &value)
    }

    fn put_notice(&self, notice: &PendingNotice) -> Result<(), StoreError> {
        self.put_notice_impl(notice)
    }

    fn notices_applied(&self, project: &str, keys: &[String]) -> Result<(), StoreError> {
        self.notices_applied_impl(project, keys)
    }

    fn pending_notices(&self) -> Result<Vec<PendingNotice>, StoreError> {
        self.pending_notices_impl()
    }

    fn notice_positions(&self) -> Result<Vec<PlayerPosition>, StoreError> {
        self.notice_positions_impl()
    }

    fn forget_notice_positions(&self, lts: u64) -> Result<usize, StoreError> {
        self.forget_notice_positions_impl(lts)
    }

    fn put_rejection(&self, key: &SlotKey, rejection: &Rejection) -> Result<(), StoreError> {
        self.put_rejection_impl(key, rejection)
    }

    fn remove_rejection(&self, key: &SlotKey, updates_only: bool) -> Result<(), StoreError> {
        self.remove_rejection_impl(key, updates_only)
    }

    fn project_rejections(&self, project: &str) -> Result<Vec<(SlotKey, Rejection)>, StoreError> {
        self.project_rejections_impl(project)
    }

    fn append_event(&self, project: &str, event: &Event) -> Result<(), StoreError> {
        self.append_event_impl(project, event)
    }

    fn scene_events(
        &self,
        project: &str,
        scene: &str,
        limit: usize,
        since_ms: u64,
    ) -> Result<Vec<Event>, StoreError> {
        self.scene_events_impl(project, scene, limit, since_ms)
    }

    fn trim_events(
        &self,
        project: &str,
        scene: &str,
        keep: usize,
        before_ms: u64,
    ) -> Result<usize, StoreError> {
        self.trim_events_impl(project, scene, keep, before_ms)
    }

    fn forget_events(&self, before_ms: u64) -> Result<usize, StoreError> {
        self.forget_events_impl(before_ms)
    }

    fn scene_controls(&self, project: &str) -> Result<Vec<(String, SceneControl)>, StoreError> {
        self.scene_controls_impl(project)
    }

    fn put_scene_control(
        &self,
        project: &str,
        scene: &str,
        control: &SceneControl,
    ) -> Result<(), StoreError> {
        self.put_scene_control_impl(project, scene, control)
    }

    fn flush(&self) -> StoreFuture<'_, ()> {
        self.backend.flush()
    }

    fn recovery(&self) -> Option<&Recovery> {
        self.backend.recovery()
    }

    fn local_dir(&self) -> Option<&Path> {
        self.backend.local_dir()
    }

    fn size(&self) -> Result<StoreSize, StoreError> {
        Ok(StoreSize {
            disk_bytes: self.backend.disk_bytes()?,
            slots: self.slots.len()?,
        })
    }
}

/// A UID handed out before that may be handed out again.
struct Reusable {
    uid: u32,
    /// Since when no player holds it, as far as anyone knows.
    since: u64,
    /// Its `uid_released` value as read, to claim it only if unchanged.
    released: Option<Vec<u8>>,
}

impl<B: Backend> TreeStore<B> {
    /// The UIDs of the request's range above the scene's high-water mark (empty when
    /// none is left).
    fn fresh_range(
        &self,
        request: &UidRequest<'_>,
    ) -> Result<Option<RangeInclusive<u32>>, StoreError> {
        let hwm = self
            .uid_hwm
            .get(&key(&[request.project, request.scene]))?
            .map(|v| u32::from_be_bytes(v.as_ref().try_into().unwrap_or([0; 4])))
            .unwrap_or(0);
        Ok(hwm
            .checked_add(1)
            .map(|above| request.start.max(above)..=request.end)
            .filter(|range| !range.is_empty()))
    }

    /// Visits the UIDs of `range` the channel ever had.
    fn visit_known(
        &self,
        request: &UidRequest<'_>,
        range: RangeInclusive<u32>,
        mut f: impl FnMut(u32),
    ) -> Result<(), StoreError> {
        let (project, channel) = (request.project, request.channel);
        self.uids.visit_range(
            &uid_key(project, channel, *range.start()),
            &uid_key(project, channel, *range.end()),
            |k, _| {
                if let Some(at) = k.len().checked_sub(4) {
                    f(u32::from_be_bytes(k[at..].try_into().unwrap_or([0; 4])));
                }
                Ok(())
            },
        )
    }

    /// The UIDs of the request's range handed out or seen before that nobody holds and
    /// nobody has held for the quarantine: never one the request names as held. Without
    /// a release seen (held when the process stopped, or never recorded) the last
    /// process start stands in for it.
    fn out_of_quarantine(&self, request: &UidRequest<'_>) -> Result<Vec<Reusable>, StoreError> {
        let unknown_until = read_ms(
            self.uids_unknown_until
                .get(request.project.as_bytes())?
                .as_ref()
                .map(AsRef::as_ref),
        );
        let mut known = Vec::new();
        self.visit_known(request, request.start..=request.end, |uid| {
            if !request.held.contains(&uid) {
                known.push(uid);
            }
        })?;
        let mut out = Vec::new();
        for uid in known {
            let released = self
                .uid_released
                .get(&uid_key(request.project, request.channel, uid))?
                .map(|v| v.as_ref().to_vec());
            let since = match read_ms(released.as_deref()) {
                0 | HELD => unknown_until,
                at => at,
            };
            if since.saturating_add(request.quarantine_ms) <= request.now_ms {
                out.push(Reusable {
                    uid,
                    since,
                    released,
                });
            }
        }
        Ok(out)
    }
}
