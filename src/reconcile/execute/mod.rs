//! Doing what the plan decided, one action at a time, against Agora and the store.
//!
//! Every create is preceded by a durable intent (the slot record in phase `Intended`,
//! flushed): if the process dies between the flush and Agora's answer, the next run finds
//! the intent and either sees the player in List (adopt) or retries under the same name,
//! where a 409 names the player that did get created. No crash instant yields a second
//! player for a slot or a reused UID.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::ExposeSecret;

use crate::agora::wire::{AudioOptions, CreatePlayer, ListedPlayer, UpdatePlayer};
use crate::agora::{ApiError, CreateOutcome, ErrorClass, MediaPullClient};
use crate::clock::Clock;
use crate::config::Scene;
use crate::model::{
    EventKind, OnAir, Phase, RECORD_VERSION, Region, SlotKey, SlotRecord, Spec, role,
};
use crate::ncs::dedupe::NoticeLog;
use crate::reconcile::events::ProjectEvents;
use crate::reconcile::plan::{Adopt, Create, Delete, Update, created_spec, desired_spec};
use crate::store::{Store, StoreError};

mod busy;
mod controls;
mod creates;
mod launch;
mod outcome;
mod rejections;
mod uids;

pub use busy::{Busy, Outcome};
pub use creates::CreateQueue;
pub use launch::{Done, Launcher, PassScenes};
pub use outcome::outcome;
use outcome::{nothing_created, uid_objection};

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Api(#[from] ApiError),
}

/// A project's slot records by slot.
pub type Slots = BTreeMap<SlotKey, SlotRecord>;

/// Performs actions for one project: the only part of a controller that calls Agora or
/// writes the store.
pub struct Executor {
    project: String,
    client: Arc<MediaPullClient>,
    store: Store,
    clock: Clock,
    /// UIDs by channel this process has already written to the store: a List repeats
    /// every player every poll, and rewriting them all was a sled compare-and-swap per
    /// player per poll (BENCHMARKS.md, scale). By channel, so a lookup allocates nothing.
    noted_uids: Mutex<HashMap<String, HashSet<u32>>>,
    /// UIDs by channel that the last List or a slot record showed held; `None` before the
    /// first List. Kept in memory so a release instant is written to the store only when
    /// a UID stops being held, never per player per poll.
    held_uids: Mutex<Option<HashMap<String, HashSet<u32>>>>,
    /// How long a released UID stays out of reach of allocation.
    uid_quarantine: Duration,
    /// The project's slot records as last written. Decoding them all from sled twice
    /// per poll was most of a pass at scale (BENCHMARKS.md); the executor is the only
    /// writer of its project's slots, so it keeps this copy exact by writing through.
    /// A new `Arc` per change lets the controller tell changed records by pointer.
    slots: Mutex<Option<Arc<Slots>>>,
    /// Each scene's on-air record as last written, read from the store on first use.
    onair: Mutex<HashMap<String, OnAir>>,
    /// Where what the executor did (and what the pass published) is recorded.
    events: ProjectEvents,
    /// Where acknowledged NCS notices wait until they are applied.
    notices: NoticeLog,
}

impl Executor {
    pub fn new(
        project: String,
        client: Arc<MediaPullClient>,
        store: Store,
        clock: Clock,
        uid_quarantine: Duration,
        events: ProjectEvents,
        notices: NoticeLog,
    ) -> Self {
        Executor {
            project,
            client,
            store,
            notices,
            clock,
            noted_uids: Mutex::default(),
            held_uids: Mutex::default(),
            uid_quarantine,
            slots: Mutex::default(),
            onair: Mutex::default(),
            events,
        }
    }

    /// The project's event history, for what the controller publishes and observes.
    pub fn events(&self) -> &ProjectEvents {
        &self.events
    }

    /// Wall-clock milliseconds, as records and the plan count them.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Every player of the project, from every page of List.
    pub async fn list_all(&self) -> Result<Vec<ListedPlayer>, ApiError> {
        self.client.list_all(None).await
    }

    /// The last on-air record of each of `scenes` (a default one where none was written
    /// or the store cannot say).
    pub fn onair_records<'a>(
        &self,
        scenes: impl IntoIterator<Item = &'a str>,
    ) -> BTreeMap<String, OnAir> {
        let mut cache = self.onair.lock().unwrap_or_else(|e| e.into_inner());
        scenes
            .into_iter()
            .map(|scene| {
                let record = *cache.entry(scene.to_string()).or_insert_with(|| {
                    self.store
                        .onair(&self.project, scene)
                        .ok()
                        .flatten()
                        .unwrap_or_default()
                });
                (scene.to_string(), record)
            })
            .collect()
    }

    /// Records a scene's new on-air player. It becomes durable with the next flush; a
    /// failed write is logged and the decision stands (apps must hear of it regardless).
    pub fn record_onair(&self, scene: &str, onair: &OnAir) {
        if let Err(e) = self.store.put_onair(&self.project, scene, onair) {
            tracing::error!(scene, error = %e, "cannot persist the on-air state");
        }
        let mut cache = self.onair.lock().unwrap_or_else(|e| e.into_inner());
        cache.insert(scene.to_string(), *onair);
    }

    /// The project's slot records, read from the store on first use (or after a failed
    /// write) and from memory after that.
    pub fn slots(&self) -> Result<Arc<Slots>, StoreError> {
        let mut cache = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slots) = cache.as_ref() {
            return Ok(slots.clone());
        }
        let loaded: Arc<Slots> = Arc::new(
            self.store
                .project_slots(&self.project)?
                .into_iter()
                .collect(),
        );
        *cache = Some(loaded.clone());
        Ok(loaded)
    }

    /// Writes (`Some`) or removes (`None`) a slot record in the store and in the copy.
    /// Under the copy's lock, so a concurrent first read cannot miss the write.
    fn write_slot(&self, key: &SlotKey, record: Option<&SlotRecord>) -> Result<(), StoreError> {
        let mut cache = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let before = match cache.as_ref() {
            Some(slots) => slots.get(key).cloned(),
            None => self.store.slot(key)?,
        };
        if let Some(before) = before.filter(|b| b.uid != 0 && record.is_none_or(|r| r.uid != b.uid))
        {
            self.release_uid(&before)?;
        }
        let written = match record {
            Some(r) => self.store.put_slot(key, r),
            None => self.store.remove_slot(key),
        };
        match (&written, cache.as_ref()) {
            (Ok(()), Some(current)) => {
                let mut next = Slots::clone(current);
                match record {
                    Some(r) => next.insert(key.clone(), r.clone()),
                    None => next.remove(key),
                };
                *cache = Some(Arc::new(next));
            }
            (Ok(()), None) => {}
            // sled may or may not hold the write: read it back next time.
            (Err(_), _) => *cache = None,
        }
        written
    }

    /// Creates the player `name` for `key`. With `uid == None` a fresh UID is allocated;
    /// with `Some`, an earlier intent is retried as it was.
    pub async fn create(&self, scene: &Scene, create: &Create) -> Result<SlotRecord, ExecError> {
        let Create {
            key,
            generation,
            name,
            uid,
            ..
        } = create;
        let (generation, uid) = (*generation, *uid);
        let uid = match uid {
            Some(uid) => uid,
            None => self.fresh_uid(scene, name)?,
        };
        let mut record = SlotRecord {
            v: RECORD_VERSION,
            name: name.to_string(),
            uid,
            generation,
            phase: Phase::Intended,
            region: scene.region,
            id: None,
            created_at_ms: self.clock.now_ms(),
            spec: Some(created_spec(scene, key.slot)),
        };
        self.write_slot(key, Some(&record))?;
        self.store.flush().await?;

        let request = CreatePlayer {
            stream_url: scene.slot_url(key.slot).to_string(),
            channel_name: scene.channel.clone(),
            uid: Some(u64::from(uid)),
            account: None,
            token: scene.token.as_ref().map(|t| t.expose_secret().to_string()),
            idle_timeout: Some(i64::from(scene.idle_timeout)),
            play_ts: None,
            name: Some(name.clone()),
        };
        let rank = create_rank(key.is_master(), scene.priority);
        let (id, after_conflict) = match self.client.create(scene.region, request, rank).await {
            Ok(CreateOutcome::Created(p)) => (p.id, false),
            Ok(CreateOutcome::AlreadyExists { id }) => (id, true),
            Err(e) => {
                self.note_refusal(scene, key, &mut record, &e).await?;
                return Err(e.into());
            }
        };
        record.phase = Phase::Created;
        record.id = Some(id.clone());
        // Agora created the player somewhere between request and answer, and a slow
        // answer can come long after the request: List's lag counts from the answer.
        record.created_at_ms = self.clock.now_ms();
        self.write_slot(key, Some(&record))?;
        self.store.flush().await?;
        let how = if after_conflict {
            "adopted after 409"
        } else {
            "created"
        };
        let created = EventKind::Created {
            id: id.clone(),
            generation,
            after_conflict,
        };
        let event = self.events.at_now(&key.scene, created).slot(key.slot);
        self.events.record(event.player(name, Some(uid)));
        tracing::info!(
            scene = %scene.name,
            role = role(key.slot),
            slot = key.slot,
            name,
            uid,
            id = %id,
            channel = %scene.channel,
            "player {how}"
        );
        Ok(record)
    }

    /// After an answer that says nothing was created (any 4xx but 409; 500, 502 and
    /// 503, whose retry would get a 409 naming the player were it otherwise) the record
    /// says so, and the retry need not wait for the List lag. A 504's outcome is unknown
    /// (§1.9): the record stays an intent, checked against List. If Agora objected to
    /// the UID (another player holds it, one List could not show yet), the retry gets a
    /// fresh one; the refused UID stays recorded as used and is never handed out again.
    async fn note_refusal(
        &self,
        scene: &Scene,
        key: &SlotKey,
        record: &mut SlotRecord,
        error: &ApiError,
    ) -> Result<(), ExecError> {
        let ApiError::Status { refusal, .. } = error else {
            return Ok(());
        };
        if !nothing_created(refusal.status) {
            return Ok(());
        }
        record.phase = Phase::Refused;
        if uid_objection(refusal) {
            record.uid = self.fresh_uid(scene, &record.name)?;
        }
        self.write_slot(key, Some(record))?;
        self.store.flush().await?;
        Ok(())
    }

    /// Records a listed player as the current one of `key`, and its UID as used.
    ///
    /// Its spec is the one its intent recorded; without one (a lost store, a record
    /// written before specs were kept) it is what List shows of it (stream URL, channel)
    /// and the scene's for the rest, which List does not show.
    pub async fn adopt(&self, scene: &Scene, adopt: &Adopt) -> Result<(), ExecError> {
        let Adopt {
            key,
            generation,
            name,
            id,
            uid,
            stream_url,
            channel,
        } = adopt;
        let (generation, uid, name, id) = (*generation, *uid, name.as_str(), id.as_str());
        let previous = self.slots()?.get(key).cloned();
        // List entries may omit the uid (§1.5); an intent for the same name knows it.
        let uid = uid
            .or_else(|| previous.as_ref().filter(|r| r.name == name).map(|r| r.uid))
            .unwrap_or(0);
        if uid != 0 {
            self.store
                .note_uid(&self.project, &scene.channel, uid, name)?;
        }
        let created_at_ms = previous
            .as_ref()
            .filter(|r| r.name == name)
            .map(|r| r.created_at_ms)
            .unwrap_or_else(|| self.clock.now_ms());
        let spec = previous
            .as_ref()
            .filter(|r| r.name == name)
            .and_then(|r| r.spec.clone())
            .unwrap_or_else(|| {
                let (mut live, mut fixed) = desired_spec(scene, key.slot);
                if let Some(url) = stream_url {
                    live.stream_url = url.clone();
                }
                if let Some(channel) = channel {
                    fixed.channel = channel.clone();
                }
                Spec { live, fixed }
            });
        let record = SlotRecord {
            v: RECORD_VERSION,
            name: name.to_string(),
            uid,
            generation,
            phase: Phase::Created,
            region: scene.region,
            id: Some(id.to_string()),
            created_at_ms,
            spec: Some(spec),
        };
        self.write_slot(key, Some(&record))?;
        self.store.flush().await?;
        if previous.as_ref().is_none_or(|r| r.name != name) {
            tracing::info!(scene = %scene.name, role = role(key.slot), name, uid, id, "player adopted");
            let adopted = EventKind::Adopted {
                id: id.to_string(),
                generation,
            };
            let event = self.events.at_now(&key.scene, adopted).slot(key.slot);
            self.events.record(event.player(name, Some(uid)));
        }
        Ok(())
    }

    /// Deletes a player. Not found counts as deleted: the goal is that it is gone.
    /// `regions` are tried in order while Agora answers 404, because a player adopted
    /// from List with no record says nothing about the region it was created in.
    pub async fn delete(&self, regions: &[Region], delete: &Delete) -> Result<(), ExecError> {
        let Delete {
            id,
            name,
            uid,
            reason,
        } = delete;
        for (i, region) in regions.iter().enumerate() {
            match self.client.delete(*region, id).await {
                Ok(()) => {
                    tracing::info!(name, id, region = %region, "player deleted");
                    break;
                }
                Err(e) if e.class() == ErrorClass::NotFound && i + 1 < regions.len() => continue,
                Err(e) if e.class() == ErrorClass::NotFound => {
                    tracing::info!(name, id, "player already gone");
                    break;
                }
                Err(e) => return Err(e.into()),
            }
        }
        let deleted = EventKind::Deleted {
            id: id.clone(),
            reason: *reason,
        };
        self.events.player(name, *uid, deleted);
        Ok(())
    }

    /// Brings the live player `id` of `key` to `to` with an Update (§1.7), sending only
    /// the fields marked, and records what it now runs. Same player, same UID.
    pub async fn update(&self, update: &Update) -> Result<(), ExecError> {
        let Update {
            key,
            id,
            name,
            to,
            send_stream_url,
            send_volume,
        } = update;
        let (send_stream_url, send_volume) = (*send_stream_url, *send_volume);
        let Some(mut record) = self.store.slot(key)?.filter(|r| r.id.as_ref() == Some(id)) else {
            // The slot moved on to another player since the plan; nothing to do.
            return Ok(());
        };
        if update.sends_anything() {
            let change = UpdatePlayer {
                stream_url: send_stream_url.then(|| to.stream_url.clone()),
                audio_options: send_volume.then_some(AudioOptions {
                    volume: Some(to.volume),
                    profile: None,
                }),
                ..UpdatePlayer::default()
            };
            let sequence = self.sequence(id).await?;
            self.client
                .update(record.region, id, sequence, change)
                .await?;
        }
        if let Some(spec) = &mut record.spec {
            spec.live = to.clone();
        }
        self.write_slot(key, Some(&record))?;
        self.store.flush().await?;
        tracing::info!(
            scene = %key.scene,
            role = role(key.slot),
            name,
            id,
            uid = record.uid,
            stream_url_changed = send_stream_url,
            volume = to.volume,
            "player updated in place"
        );
        Ok(())
    }

    /// Checks one player with an Update that changes nothing (`isPause: false` on a
    /// player pullkeeper never pauses). Its answer is the only per-player signal the API
    /// offers besides List.
    pub async fn check(&self, region: Region, id: &str) -> Result<(), ExecError> {
        let sequence = self.sequence(id).await?;
        let unchanged = UpdatePlayer {
            is_pause: Some(false),
            ..UpdatePlayer::default()
        };
        self.client.update(region, id, sequence, unchanged).await?;
        Ok(())
    }

    /// The next Update sequence of a player, durable before it is sent: Agora silently
    /// ignores a sequence it has seen a higher one of (§1.7), so one must never repeat,
    /// not even after a crash. The Unix second is its floor for a store that lost them.
    async fn sequence(&self, id: &str) -> Result<u64, ExecError> {
        let sequence = self
            .store
            .next_sequence(&self.project, id, self.clock.now_ms() / 1000)?;
        self.store.flush().await?;
        Ok(sequence)
    }

    /// Tells the notice log these acknowledged NCS notices of the project were applied.
    pub fn notices_applied(&self, keys: Vec<String>) {
        if keys.is_empty() {
            return;
        }
        self.notices.settle(&self.project, keys);
    }

    pub fn forget(&self, key: &SlotKey) -> Result<(), ExecError> {
        self.write_slot(key, None)?;
        Ok(())
    }
}

/// The order of creates waiting for the create rate: masters before backups, then by
/// scene priority, as the plan admits them (a storm drains in that order).
pub fn create_rank(master: bool, priority: i32) -> i64 {
    (i64::from(master) << 32) + i64::from(priority)
}

#[cfg(test)]
mod tests;
