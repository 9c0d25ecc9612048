//! The executor's UID bookkeeping: handing out a UID for a create, remembering every UID
//! a List shows, and starting a UID's quarantine when it stops being held.
//!
//! Which UIDs are held is kept in memory per channel, so the store is written only when
//! a UID changes state (held → released → held), never per player per poll.

use std::collections::{HashMap, HashSet};

use super::Executor;
use crate::agora::wire::ListedPlayer;
use crate::config::Scene;
use crate::model::{SlotRecord, parse_name};
use crate::store::{StoreError, UidRequest};

impl Executor {
    /// A UID from the scene's range that nobody in its channel ever had, else one no
    /// player of the channel has held for the quarantine (see [`StateStore::allocate_uid`]).
    pub(super) fn fresh_uid(&self, scene: &Scene, name: &str) -> Result<u32, StoreError> {
        let held = self.held_in(&scene.channel)?;
        self.store
            .allocate_uid(&self.uid_request(scene, name, &held))
    }

    /// How many UIDs the scene could get now (the `pullkeeper_scene_uids_free` gauge).
    /// As of the last List: walking every slot record per scene would make the gauge
    /// quadratic in a project's scenes.
    pub fn free_uids(&self, scene: &Scene) -> Result<u64, StoreError> {
        let held = self.held_at_last_list(&scene.channel);
        self.store.free_uids(&self.uid_request(scene, "", &held))
    }

    fn uid_request<'a>(
        &'a self,
        scene: &'a Scene,
        name: &'a str,
        held: &'a HashSet<u32>,
    ) -> UidRequest<'a> {
        UidRequest {
            project: &self.project,
            scene: &scene.name,
            channel: &scene.channel,
            start: scene.uids.start,
            end: scene.uids.end,
            name,
            held,
            now_ms: self.clock.now_ms(),
            quarantine_ms: u64::try_from(self.uid_quarantine.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// The UIDs of `channel` that the last List showed or a slot record holds now
    /// (records change between Lists).
    fn held_in(&self, channel: &str) -> Result<HashSet<u32>, StoreError> {
        let mut held = self.held_at_last_list(channel);
        held.extend(
            self.slots()?
                .values()
                .filter(|r| record_channel(r).is_none_or(|c| c == channel))
                .map(|r| r.uid),
        );
        Ok(held)
    }

    /// The UIDs of `channel` that the last List showed or a slot record held then.
    fn held_at_last_list(&self, channel: &str) -> HashSet<u32> {
        self.held_uids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .and_then(|by_channel| by_channel.get(channel).cloned())
            .unwrap_or_default()
    }

    /// A slot record let go of its UID: its quarantine starts now, unless List still
    /// shows a player under it (then it starts when List stops showing it).
    pub(super) fn release_uid(&self, record: &SlotRecord) -> Result<(), StoreError> {
        let Some(channel) = record_channel(record) else {
            return Ok(());
        };
        let mut held = self.held_uids.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(uids) = held.as_mut().and_then(|h| h.get_mut(channel)) {
            uids.remove(&record.uid);
        }
        self.store
            .release_uids(&self.project, channel, &[record.uid], self.clock.now_ms())
    }

    /// Remembers every UID a List shows, raises each scene's high-water mark to the UIDs
    /// of its own listed players (after a lost store, that is what tells which part of
    /// the range the scene already used), and starts the quarantine of each UID that
    /// neither this List nor a slot record holds any more.
    pub fn note_uids(&self, players: &[ListedPlayer], prefix: &str, scenes: &[Scene]) {
        self.note_held(players);
        let mut noted = self.noted_uids.lock().unwrap_or_else(|e| e.into_inner());
        for p in players {
            let (Some(channel), Some(uid)) = (p.channel_name.as_deref(), p.uid) else {
                continue;
            };
            let Ok(uid) = u32::try_from(uid) else {
                continue;
            };
            if noted.get(channel).is_some_and(|uids| uids.contains(&uid)) {
                continue;
            }
            let name = p.name.as_deref().unwrap_or("");
            let mut written = self
                .store
                .note_uid(&self.project, channel, uid, name)
                .map(|_| ());
            let own_scene = parse_name(prefix, name).and_then(|parsed| {
                scenes.iter().find(|s| {
                    s.project == self.project && s.name == parsed.scene && s.channel == channel
                })
            });
            if let Some(scene) = own_scene
                && (scene.uids.start..=scene.uids.end).contains(&uid)
            {
                written = written.and(self.store.raise_uid_hwm(&self.project, &scene.name, uid));
            }
            match written {
                Ok(()) => {
                    noted.entry(channel.to_string()).or_default().insert(uid);
                }
                Err(e) => tracing::error!(error = %e, "cannot record a seen UID"),
            }
        }
    }

    /// Compares what is held now (this List, the slot records) with what was held at the
    /// last List and records each transition: a release instant for a UID no longer held,
    /// a hold for one held anew. At the first List of the process, everything held is
    /// held anew, and what happened before is unknown (see
    /// [`StateStore::uids_unknown_until`]).
    fn note_held(&self, players: &[ListedPlayer]) {
        let now_ms = self.clock.now_ms();
        let mut now: HashMap<String, HashSet<u32>> = HashMap::new();
        // A String per channel, not per player: this runs for every player every poll.
        let mut hold = |channel: &str, uid: u32| match now.get_mut(channel) {
            Some(uids) => {
                uids.insert(uid);
            }
            None => {
                now.insert(channel.to_string(), HashSet::from([uid]));
            }
        };
        for p in players {
            if let (Some(channel), Some(uid)) = (p.channel_name.as_deref(), p.uid)
                && let Ok(uid) = u32::try_from(uid)
            {
                hold(channel, uid);
            }
        }
        if let Ok(slots) = self.slots() {
            for record in slots.values().filter(|r| r.uid != 0) {
                if let Some(channel) = record_channel(record) {
                    hold(channel, record.uid);
                }
            }
        }
        let mut held = self.held_uids.lock().unwrap_or_else(|e| e.into_inner());
        let first = held.is_none();
        let before = held.take().unwrap_or_default();
        let written = self.note_transitions(&before, &now, now_ms, first);
        match written {
            Ok(()) => *held = Some(now),
            // Keep the old picture, so the next List records what this one could not.
            Err(e) => {
                tracing::error!(error = %e, "cannot record held and released UIDs");
                *held = (!first).then_some(before);
            }
        }
    }

    fn note_transitions(
        &self,
        before: &HashMap<String, HashSet<u32>>,
        now: &HashMap<String, HashSet<u32>>,
        now_ms: u64,
        first: bool,
    ) -> Result<(), StoreError> {
        if first {
            self.store.uids_unknown_until(&self.project, now_ms)?;
        }
        let empty = HashSet::new();
        for (channel, uids) in before {
            let still = now.get(channel).unwrap_or(&empty);
            let released: Vec<u32> = uids.difference(still).copied().collect();
            if !released.is_empty() {
                self.store
                    .release_uids(&self.project, channel, &released, now_ms)?;
            }
        }
        for (channel, uids) in now {
            let was = before.get(channel).unwrap_or(&empty);
            let anew: Vec<u32> = uids.difference(was).copied().collect();
            if !anew.is_empty() {
                self.store.hold_uids(&self.project, channel, &anew)?;
            }
        }
        Ok(())
    }
}

/// The channel a slot record's player is (or was to be) in; unknown for records
/// written before specs were kept.
fn record_channel(record: &SlotRecord) -> Option<&str> {
    record.spec.as_ref().map(|s| s.fixed.channel.as_str())
}
