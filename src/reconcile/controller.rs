//! The reconcile loop of one project: List, plan, start actions, repeat.
//!
//! Triggers are level-only: a poll tick, a scene change, a finished action, or a wake-up
//! from outside (webhooks, later). Whatever woke it, the loop plans from the whole
//! picture. Actions run as tasks so a slow create never delays the next decision; a slot
//! or player with work in flight is "busy" and not decided again until the work ends.
//! A failed action cools its slot down on the retreat schedule Agora prescribes (5, 10,
//! 15 s, reference §1.9) so an error can never turn into a hot loop.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::agora::model::{ListedPlayer, Region};
use crate::config::{Project, ReconcileSettings, Scene};
use crate::reconcile::execute::{self, Executor};
use crate::reconcile::naming;
use crate::reconcile::plan::{Action, DesiredScene, Plan, PlanInput, plan};
use crate::status::{SceneStatus, SlotStatus, StatusBoard};
use crate::store::{SlotKey, SlotRecord};
use crate::telemetry::Metrics;

/// Waits after consecutive failures of one slot or player (best-practice retreat).
const RETREAT: [Duration; 3] = [
    Duration::from_secs(5),
    Duration::from_secs(10),
    Duration::from_secs(15),
];

/// What one project's controller needs.
pub struct ProjectController {
    pub project: Project,
    pub executor: Arc<Executor>,
    pub settings: ReconcileSettings,
    /// All scenes of the configuration; the controller keeps those of its project.
    pub scenes: watch::Receiver<Arc<Vec<Scene>>>,
    pub board: StatusBoard,
    pub metrics: Metrics,
    /// Set once the first complete List of the project succeeded.
    pub listed_once: Arc<AtomicBool>,
    /// Signalled to make the loop re-plan at once.
    pub wake: Arc<Notify>,
}

/// What a finished action frees.
enum Done {
    Slot(SlotKey, bool),
    Player(String, bool),
}

/// A slot or player that failed recently: not retried before `until`.
struct Cooldown {
    failures: usize,
    until: Instant,
}

#[derive(Default)]
struct Busy {
    slots: BTreeSet<SlotKey>,
    players: BTreeSet<String>,
    slot_cooldown: HashMap<SlotKey, Cooldown>,
    player_cooldown: HashMap<String, Cooldown>,
}

impl Busy {
    fn fail<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Cooldown>, key: K) {
        let c = map.entry(key).or_insert(Cooldown {
            failures: 0,
            until: Instant::now(),
        });
        c.until = Instant::now() + RETREAT[c.failures.min(RETREAT.len() - 1)];
        c.failures += 1;
    }

    /// Busy sets for planning: in flight, or cooling down.
    fn for_plan(&mut self) -> (BTreeSet<SlotKey>, BTreeSet<String>) {
        let now = Instant::now();
        let mut slots = self.slots.clone();
        slots.extend(
            self.slot_cooldown
                .iter()
                .filter(|(_, c)| c.until > now)
                .map(|(k, _)| k.clone()),
        );
        let mut players = self.players.clone();
        players.extend(
            self.player_cooldown
                .iter()
                .filter(|(_, c)| c.until > now)
                .map(|(k, _)| k.clone()),
        );
        (slots, players)
    }

    /// The earliest instant a cooldown ends, so the loop wakes to retry.
    fn next_expiry(&self) -> Option<Instant> {
        let now = Instant::now();
        self.slot_cooldown
            .values()
            .chain(self.player_cooldown.values())
            .map(|c| c.until)
            .filter(|&u| u > now)
            .min()
    }
}

/// The last complete List, minus players deleted since.
struct Snapshot {
    players: Vec<ListedPlayer>,
}

impl ProjectController {
    pub async fn run(mut self, cancel: CancellationToken) {
        let project = self.project.id.clone();
        self.metrics
            .tasks_limit
            .with_label_values(&[&project])
            .set(i64::from(self.project.limits.max_players));
        let mut poll = tokio::time::interval(self.settings.poll_interval);
        poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut tasks: JoinSet<Done> = JoinSet::new();
        let mut busy = Busy::default();
        let mut snapshot: Option<Snapshot> = None;
        // Deleted players may still show in a List that was answered before the delete.
        let mut recently_deleted: HashMap<String, Instant> = HashMap::new();

        loop {
            let retry_at = busy.next_expiry();
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = poll.tick() => {
                    match self.executor.client.list_all(None).await {
                        Ok(mut players) => {
                            let lag = self.settings.list_lag;
                            recently_deleted.retain(|_, at| at.elapsed() < lag);
                            players.retain(|p| !recently_deleted.contains_key(&p.id));
                            self.note_uids(&players);
                            self.metrics.last_list_success.with_label_values(&[&project])
                                .set(self.executor.clock.now_ms() as f64 / 1000.0);
                            self.listed_once.store(true, Ordering::Release);
                            snapshot = Some(Snapshot { players });
                        }
                        Err(e) => tracing::warn!(project = %project, error = %e, "List failed; keeping the last picture"),
                    }
                }
                changed = self.scenes.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    match done {
                        Ok(Done::Slot(key, ok)) => {
                            busy.slots.remove(&key);
                            if ok { busy.slot_cooldown.remove(&key); } else { Busy::fail(&mut busy.slot_cooldown, key); }
                        }
                        Ok(Done::Player(id, ok)) => {
                            busy.players.remove(&id);
                            if ok {
                                busy.player_cooldown.remove(&id);
                                if let Some(s) = &mut snapshot { s.players.retain(|p| p.id != id); }
                                recently_deleted.insert(id, Instant::now());
                            } else {
                                Busy::fail(&mut busy.player_cooldown, id);
                            }
                        }
                        Err(e) => tracing::error!(project = %project, error = %e, "action task panicked"),
                    }
                }
                _ = self.wake.notified() => {}
                _ = sleep_until_opt(retry_at) => {}
            }
            if let Some(snap) = &snapshot {
                self.pass(snap, &mut busy, &mut tasks);
            }
        }
        // Shutdown: in-flight calls finish (the caller bounds the wait); nothing new starts,
        // and no player is deleted because pullkeeper stops.
        while tasks.join_next().await.is_some() {}
    }

    /// One plan and the start of its actions.
    fn pass(&self, snap: &Snapshot, busy: &mut Busy, tasks: &mut JoinSet<Done>) {
        let project = &self.project.id;
        let all_scenes = self.scenes.borrow().clone();
        let scenes: Vec<&Scene> = all_scenes
            .iter()
            .filter(|s| &s.project == project)
            .collect();
        let desired: Vec<DesiredScene> = scenes
            .iter()
            .map(|s| DesiredScene {
                name: s.name.clone(),
                slots: s.backups + 1,
                priority: s.priority,
            })
            .collect();
        let records: BTreeMap<SlotKey, SlotRecord> = match self
            .executor
            .store
            .project_slots(project)
        {
            Ok(r) => r.into_iter().collect(),
            Err(e) => {
                tracing::error!(project = %project, error = %e, "cannot read the store; not planning");
                return;
            }
        };
        let (busy_slots, busy_players) = busy.for_plan();
        let plan = plan(&PlanInput {
            project,
            prefix: &self.project.name_prefix,
            scenes: &desired,
            records: &records,
            observed: &snap.players,
            busy_slots: &busy_slots,
            busy_players: &busy_players,
            now_ms: self.executor.clock.now_ms(),
            list_lag_ms: self.settings.list_lag.as_millis() as u64,
            max_players: self.project.limits.max_players,
        });
        self.metrics
            .reconcile_passes
            .with_label_values(&[project])
            .inc();
        self.publish(&scenes, &records, snap, &plan);
        let by_name: BTreeMap<&str, &Scene> =
            scenes.iter().map(|s| (s.name.as_str(), *s)).collect();
        for action in plan.actions {
            self.start(action, &by_name, &records, busy, tasks);
        }
    }

    fn start(
        &self,
        action: Action,
        scenes: &BTreeMap<&str, &Scene>,
        records: &BTreeMap<SlotKey, SlotRecord>,
        busy: &mut Busy,
        tasks: &mut JoinSet<Done>,
    ) {
        let exec = self.executor.clone();
        match action {
            Action::Create {
                key,
                generation,
                name,
                uid,
            } => {
                let Some(scene) = scenes.get(key.scene.as_str()).map(|s| (*s).clone()) else {
                    return;
                };
                busy.slots.insert(key.clone());
                tasks.spawn(async move {
                    let result = exec.create(&scene, &key, generation, &name, uid).await;
                    if let Err(e) = &result {
                        tracing::warn!(scene = %scene.name, name, error = %e, "create failed; will retry");
                    }
                    Done::Slot(key, result.is_ok())
                });
            }
            Action::Adopt {
                key,
                generation,
                name,
                id,
                uid,
            } => {
                let Some(scene) = scenes.get(key.scene.as_str()).map(|s| (*s).clone()) else {
                    return;
                };
                busy.slots.insert(key.clone());
                tasks.spawn(async move {
                    let result = exec.adopt(&scene, &key, generation, &name, &id, uid).await;
                    if let Err(e) = &result {
                        tracing::error!(scene = %scene.name, name, error = %e, "cannot record adoption");
                    }
                    Done::Slot(key, result.is_ok())
                });
            }
            Action::Delete { id, name, reason } => {
                let regions = self.regions_for(&name, scenes, records);
                self.metrics
                    .recreations
                    .with_label_values(&[reason.as_str()])
                    .inc();
                busy.players.insert(id.clone());
                tasks.spawn(async move {
                    let result = exec.delete(&regions, &id, &name).await;
                    if let Err(e) = &result {
                        tracing::warn!(name, error = %e, "delete failed; will retry");
                    }
                    Done::Player(id, result.is_ok())
                });
            }
            Action::Forget { key } => {
                if let Err(e) = exec.forget(&key) {
                    tracing::error!(slot = %key, error = %e, "cannot forget slot");
                }
            }
        }
    }

    /// Where to send a Delete: the region the slot's record remembers, else the scene's,
    /// else every region in turn (a player adopted from List after its scene was removed).
    fn regions_for(
        &self,
        name: &str,
        scenes: &BTreeMap<&str, &Scene>,
        records: &BTreeMap<SlotKey, SlotRecord>,
    ) -> Vec<Region> {
        let parsed = naming::parse(&self.project.name_prefix, name);
        let from_record = parsed.as_ref().and_then(|p| {
            records
                .get(&SlotKey::new(&self.project.id, &p.scene, p.slot))
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

    /// Remembers every UID the List shows, so none is ever handed out again.
    fn note_uids(&self, players: &[ListedPlayer]) {
        for p in players {
            if let (Some(channel), Some(uid)) = (p.channel_name.as_deref(), p.uid) {
                if let Ok(uid) = u32::try_from(uid) {
                    let name = p.name.as_deref().unwrap_or("");
                    if let Err(e) =
                        self.executor
                            .store
                            .note_uid(&self.project.id, channel, uid, name)
                    {
                        tracing::error!(error = %e, "cannot record a seen UID");
                    }
                }
            }
        }
    }

    fn publish(
        &self,
        scenes: &[&Scene],
        records: &BTreeMap<SlotKey, SlotRecord>,
        snap: &Snapshot,
        plan: &Plan,
    ) {
        let by_name: HashMap<&str, &ListedPlayer> = snap
            .players
            .iter()
            .filter_map(|p| Some((p.name.as_deref()?, p)))
            .collect();
        let mut out = Vec::new();
        for scene in scenes {
            let mut slots = Vec::new();
            for slot in 0..=scene.backups {
                let key = SlotKey::new(&self.project.id, &scene.name, slot);
                let record = records.get(&key);
                let listed = record.and_then(|r| by_name.get(r.name.as_str()));
                let status = match (record, listed) {
                    (_, Some(p)) => p.status.map_or("unknown", |s| s.as_str()).to_string(),
                    (Some(_), None) => "pending".to_string(),
                    (None, None) => "missing".to_string(),
                };
                slots.push(SlotStatus {
                    slot,
                    role: execute::role(slot),
                    name: record.map(|r| r.name.clone()),
                    uid: record.map(|r| r.uid).filter(|&u| u != 0),
                    id: record.and_then(|r| r.id.clone()),
                    status,
                });
            }
            let healthy: Vec<&SlotStatus> = slots
                .iter()
                .filter(|s| matches!(s.status.as_str(), "running" | "success"))
                .collect();
            let active = healthy.first();
            let over_quota_slots = plan
                .over_quota
                .iter()
                .filter(|k| k.scene == scene.name)
                .map(|k| k.slot)
                .collect();
            self.metrics
                .scene_healthy_players
                .with_label_values(&[&scene.name])
                .set(healthy.len() as i64);
            out.push(SceneStatus {
                name: scene.name.clone(),
                project: self.project.id.clone(),
                channel: scene.channel.clone(),
                active_uid: active.and_then(|s| s.uid),
                active_slot: active.map(|s| s.slot),
                healthy_players: healthy.len() as u32,
                over_quota_slots,
                slots,
            });
        }
        self.metrics
            .tasks_active
            .with_label_values(&[&self.project.id])
            .set(snap.players.len() as i64);
        self.metrics
            .slots_over_quota
            .with_label_values(&[&self.project.id])
            .set(plan.over_quota.len() as i64);
        self.board.publish(&self.project.id, out);
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
