//! Doing what the plan decided, one action at a time, against Agora and the store.
//!
//! Every create is preceded by a durable intent (the slot record in phase `Intended`,
//! flushed): if the process dies between the flush and Agora's answer, the next run finds
//! the intent and either sees the player in List (adopt) or retries under the same name,
//! where a 409 names the player that did get created. No crash instant yields a second
//! player for a slot or a reused UID.

use std::collections::BTreeMap;
use std::sync::Arc;

use secrecy::ExposeSecret;

use crate::agora::model::{CreatePlayer, ListedPlayer, Region, UpdatePlayer};
use crate::agora::{ApiError, CreateOutcome, ErrorClass, MediaPullClient};
use crate::clock::Clock;
use crate::config::{Project, Scene};
use crate::reconcile::naming;
use crate::store::{Phase, RECORD_VERSION, SlotKey, SlotRecord, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Api(#[from] ApiError),
}

/// Performs actions for one project.
pub struct Executor {
    pub project: String,
    pub client: Arc<MediaPullClient>,
    pub store: Store,
    pub clock: Clock,
}

impl Executor {
    /// Creates the player `name` for `key`. With `uid == None` a fresh UID is allocated;
    /// with `Some`, an earlier intent is retried as it was.
    pub async fn create(
        &self,
        scene: &Scene,
        key: &SlotKey,
        generation: u64,
        name: &str,
        uid: Option<u32>,
    ) -> Result<SlotRecord, ExecError> {
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
        };
        self.store.put_slot(key, &record)?;
        self.store.flush().await?;

        let request = CreatePlayer {
            stream_url: scene.stream_url.clone(),
            channel_name: scene.channel.clone(),
            uid: Some(u64::from(uid)),
            account: None,
            token: scene.token.as_ref().map(|t| t.expose_secret().to_string()),
            idle_timeout: Some(i64::from(scene.idle_timeout)),
            play_ts: None,
            name: Some(name.to_string()),
        };
        let rank = create_rank(key.is_master(), scene.priority);
        let (id, how) = match self.client.create(scene.region, request, rank).await {
            Ok(CreateOutcome::Created(p)) => (p.id, "created"),
            Ok(CreateOutcome::AlreadyExists { id }) => (id, "adopted after 409"),
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
        self.store.put_slot(key, &record)?;
        self.store.flush().await?;
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

    /// A UID from the scene's range that nobody in its channel ever had.
    fn fresh_uid(&self, scene: &Scene, name: &str) -> Result<u32, StoreError> {
        self.store.allocate_uid(
            &self.project,
            &scene.name,
            &scene.channel,
            scene.uids.start,
            scene.uids.end,
            name,
        )
    }

    /// After a definite refusal (any 4xx but 409) nothing was created, so the record
    /// says so and the retry need not wait for the List lag. If Agora objected to the
    /// UID (another player holds it, one List could not show yet), the retry gets a
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
        if !(400..500).contains(&refusal.status) || refusal.status == 409 {
            return Ok(());
        }
        record.phase = Phase::Refused;
        if refusal.status == 400 && refusal.message.to_ascii_lowercase().contains("uid") {
            record.uid = self.fresh_uid(scene, &record.name)?;
        }
        self.store.put_slot(key, record)?;
        self.store.flush().await?;
        Ok(())
    }

    /// Records a listed player as the current one of `key`, and its UID as used.
    pub async fn adopt(
        &self,
        scene: &Scene,
        key: &SlotKey,
        generation: u64,
        name: &str,
        id: &str,
        uid: Option<u32>,
    ) -> Result<(), ExecError> {
        let previous = self.store.slot(key)?;
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
        let record = SlotRecord {
            v: RECORD_VERSION,
            name: name.to_string(),
            uid,
            generation,
            phase: Phase::Created,
            region: scene.region,
            id: Some(id.to_string()),
            created_at_ms,
        };
        self.store.put_slot(key, &record)?;
        self.store.flush().await?;
        if previous.as_ref().is_none_or(|r| r.name != name) {
            tracing::info!(scene = %scene.name, role = role(key.slot), name, uid, id, "player adopted");
        }
        Ok(())
    }

    /// Deletes a player. Not found counts as deleted: the goal is that it is gone.
    /// `regions` are tried in order while Agora answers 404, because a player adopted
    /// from List with no record says nothing about the region it was created in.
    pub async fn delete(&self, regions: &[Region], id: &str, name: &str) -> Result<(), ExecError> {
        for (i, region) in regions.iter().enumerate() {
            match self.client.delete(*region, id).await {
                Ok(()) => {
                    tracing::info!(name, id, region = %region, "player deleted");
                    return Ok(());
                }
                Err(e) if e.class() == ErrorClass::NotFound && i + 1 < regions.len() => continue,
                Err(e) if e.class() == ErrorClass::NotFound => {
                    tracing::info!(name, id, "player already gone");
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Asks Agora about one player with an Update that changes nothing (`isPause: false`
    /// on a player pullkeeper never pauses). Its answer is the only per-player signal
    /// the API offers besides List.
    pub async fn probe(&self, region: Region, id: &str) -> Result<(), ExecError> {
        let sequence = self.store.next_sequence(id)?;
        let unchanged = UpdatePlayer {
            is_pause: Some(false),
            ..UpdatePlayer::default()
        };
        self.client.update(region, id, sequence, unchanged).await?;
        Ok(())
    }

    /// Remembers every UID a List shows, so none is ever handed out again, and raises
    /// each scene's high-water mark to the UIDs of its own listed players: after a lost
    /// store, that is what tells which part of the range the scene already used.
    pub fn note_uids(&self, players: &[ListedPlayer], prefix: &str, scenes: &[Scene]) {
        for p in players {
            let (Some(channel), Some(uid)) = (p.channel_name.as_deref(), p.uid) else {
                continue;
            };
            let Ok(uid) = u32::try_from(uid) else {
                continue;
            };
            let name = p.name.as_deref().unwrap_or("");
            if let Err(e) = self.store.note_uid(&self.project, channel, uid, name) {
                tracing::error!(error = %e, "cannot record a seen UID");
            }
            let Some(parsed) = naming::parse(prefix, name) else {
                continue;
            };
            let own_scene = scenes.iter().find(|s| {
                s.project == self.project && s.name == parsed.scene && s.channel == channel
            });
            if let Some(scene) = own_scene
                && (scene.uids.start..=scene.uids.end).contains(&uid)
                && let Err(e) = self.store.raise_uid_hwm(&self.project, &scene.name, uid)
            {
                tracing::error!(error = %e, "cannot raise a UID high-water mark");
            }
        }
    }

    pub fn forget(&self, key: &SlotKey) -> Result<(), ExecError> {
        self.store.remove_slot(key)?;
        Ok(())
    }
}

/// Where to send a Delete: the region the slot's record remembers, else the scene's,
/// else every region in turn (a player adopted from List after its scene was removed).
pub fn delete_regions(
    project: &Project,
    name: &str,
    scenes: &BTreeMap<&str, &Scene>,
    records: &BTreeMap<SlotKey, SlotRecord>,
) -> Vec<Region> {
    let parsed = naming::parse(&project.name_prefix, name);
    let from_record = parsed.as_ref().and_then(|p| {
        records
            .get(&SlotKey::new(&project.id, &p.scene, p.slot))
            .map(|r| r.region)
    });
    let from_scene = parsed
        .as_ref()
        .and_then(|p| scenes.get(p.scene.as_str()).map(|s| s.region));
    match from_record.or(from_scene) {
        Some(r) => vec![r],
        None => Region::ALL.to_vec(),
    }
}

/// The order of creates waiting for the create rate: masters before backups, then by
/// scene priority, as the plan admits them (a storm drains in that order).
pub fn create_rank(master: bool, priority: i32) -> i64 {
    (i64::from(master) << 32) + i64::from(priority)
}

pub fn role(slot: u32) -> &'static str {
    if slot == 0 { "master" } else { "backup" }
}
