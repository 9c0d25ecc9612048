//! Starting the plan's actions as tasks, and keeping what is in flight or held back.
//!
//! The controller owns a [`Launcher`]: an action starts in the same pass it was planned,
//! and its end comes back to the loop as a [`Done`]. Creates are the exception: they
//! queue ([`CreateQueue`]) and start as the project's create rate makes room. What is in
//! flight or cooling down is [`Busy`], which the plan reads so that nothing is decided
//! twice.

use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use super::{Busy, CreateQueue, ExecError, Executor, Outcome, create_rank, outcome};
use crate::agora::wire::ListedPlayer;
use crate::agora::{ApiError, ErrorClass};
use crate::config::{Project, Scene};
use crate::model::{EventKind, Region, SlotKey, SlotRecord, parse_name, role};
use crate::probe::Finding;
use crate::reconcile::observe::CheckAnswer;
use crate::reconcile::plan::{Action, Create, desired_spec};
use crate::telemetry::Metrics;

/// What a finished task reports to the loop.
pub enum Done {
    /// An adoption of a listed player as the slot's ended.
    Adopt(SlotKey, bool),
    /// A create ended: its slot, and a place among the creates in flight.
    Create(SlotKey, Outcome),
    /// An Update of the slot's player ended (counted apart from creates in the metrics).
    Update(SlotKey, Outcome),
    /// A delete of the player `id` ended.
    Delete(String, Outcome),
    /// A check of the player `id` (current in slot `key`) ended; `None`: no evidence
    /// either way (a timeout, a 429). `unauthorized`: answered 401.
    Check {
        key: SlotKey,
        id: String,
        answer: Option<CheckAnswer>,
        unauthorized: bool,
    },
    /// A List answered (or failed).
    List(Result<Vec<ListedPlayer>, ApiError>),
    /// A probe of the source `url` ended.
    Source { url: String, finding: Finding },
}

/// The scenes one pass planned from: a snapshot of the configuration and where each of
/// this project's scenes sits in it (found in one walk over all scenes, 25,000 at scale).
pub struct PassScenes<'a> {
    all: &'a Arc<Vec<Scene>>,
    /// This project's scenes, in configuration order.
    positions: Vec<usize>,
    index: BTreeMap<&'a str, usize>,
}

impl<'a> PassScenes<'a> {
    pub fn new(all: &'a Arc<Vec<Scene>>, project: &str) -> PassScenes<'a> {
        let positions: Vec<usize> = all
            .iter()
            .enumerate()
            .filter(|(_, s)| s.project == project)
            .map(|(i, _)| i)
            .collect();
        let index = positions
            .iter()
            .map(|&i| (all[i].name.as_str(), i))
            .collect();
        PassScenes {
            all,
            positions,
            index,
        }
    }

    /// This project's scenes, in configuration order.
    pub fn scenes(&self) -> Vec<&'a Scene> {
        self.positions.iter().map(|&i| &self.all[i]).collect()
    }

    pub fn get(&self, name: &str) -> Option<&'a Scene> {
        self.index.get(name).map(|&i| &self.all[i])
    }

    /// The scene as a task may keep it: the snapshot and an index, not a copy.
    fn shared(&self, name: &str) -> Option<SharedScene> {
        self.index.get(name).map(|&index| SharedScene {
            all: Arc::clone(self.all),
            index,
        })
    }
}

/// One scene of a configuration snapshot, for a task or a queued create to hold.
struct SharedScene {
    all: Arc<Vec<Scene>>,
    index: usize,
}

impl Deref for SharedScene {
    type Target = Scene;

    fn deref(&self) -> &Scene {
        &self.all[self.index]
    }
}

/// A create the plan decided, waiting for its turn.
struct QueuedCreate {
    scene: SharedScene,
    create: Create,
}

/// Starts actions for one project and keeps what they hold.
pub struct Launcher {
    exec: Arc<Executor>,
    project: Project,
    metrics: Metrics,
    busy: Busy,
    /// Creates decided and not started yet; their slots are busy meanwhile.
    creates: CreateQueue<QueuedCreate>,
    /// How long a final answer (400, 401, 403) holds its slot or player back.
    long_pause: Duration,
}

impl Launcher {
    pub fn new(
        exec: Arc<Executor>,
        project: Project,
        metrics: Metrics,
        long_pause: Duration,
    ) -> Launcher {
        let creates = CreateQueue::for_rate(project.limits.qps.create_with_name.per_second);
        let mut busy = Busy::default();
        for (key, r, until) in exec.kept_rejections() {
            let wanted = r.wanted.map(|s| (s.live, s.fixed));
            busy.restore_rejection(key, r.updates_only, r.message, wanted, until);
        }
        Launcher {
            exec,
            project,
            metrics,
            busy,
            creates,
            long_pause,
        }
    }

    /// What is in flight or held back, for the plan and the loop's wake-up.
    pub fn busy(&self) -> &Busy {
        &self.busy
    }

    /// Slots held for their source: see [`Busy::held_for_source`].
    pub fn note_held(&mut self, held: &[SlotKey]) {
        for key in held {
            self.busy.held_for_source(key);
        }
    }

    pub fn start(
        &mut self,
        action: Action,
        scenes: &PassScenes<'_>,
        records: &BTreeMap<SlotKey, SlotRecord>,
        tasks: &mut JoinSet<Done>,
    ) {
        let exec = self.exec.clone();
        match action {
            Action::Create(create) => self.queue_create(create, scenes, records),
            Action::Adopt(adopt) => {
                let Some(scene) = scenes.shared(&adopt.key.scene) else {
                    return;
                };
                self.busy.slots.insert(adopt.key.clone());
                tasks.spawn(async move {
                    let result = exec.adopt(&scene, &adopt).await;
                    if let Err(e) = &result {
                        tracing::error!(scene = %scene.name, name = adopt.name, error = %e, "cannot record adoption");
                    }
                    Done::Adopt(adopt.key, result.is_ok())
                });
            }
            Action::Update(update) => {
                let wanted = scenes
                    .get(&update.key.scene)
                    .map(|s| desired_spec(s, update.key.slot));
                self.busy.slots.insert(update.key.clone());
                tasks.spawn(async move {
                    let result = exec.update(&update).await;
                    if let Err(e) = &result {
                        tracing::warn!(slot = %update.key, name = update.name, error = %e, "update failed");
                    }
                    Done::Update(update.key, outcome(&result, wanted))
                });
            }
            Action::Delete(delete) => {
                let regions = delete_regions(
                    &self.project,
                    &delete.name,
                    |s| scenes.get(s).map(|s| s.region),
                    records,
                );
                self.metrics
                    .recreations
                    .with_label_values(&[delete.reason.as_str()])
                    .inc();
                self.busy.players.insert(delete.id.clone());
                tasks.spawn(async move {
                    let result = exec.delete(&regions, &delete).await;
                    if let Err(e) = &result {
                        tracing::warn!(name = delete.name, error = %e, "delete failed");
                    }
                    Done::Delete(delete.id, outcome(&result, None))
                });
            }
            Action::Forget(key) => {
                if let Err(e) = exec.forget(&key) {
                    tracing::error!(slot = %key, error = %e, "cannot forget slot");
                }
            }
        }
    }

    /// Queues a create, unless it is a replacement that must back off first.
    fn queue_create(
        &mut self,
        create: Create,
        scenes: &PassScenes<'_>,
        records: &BTreeMap<SlotKey, SlotRecord>,
    ) {
        let Some(scene) = scenes.shared(&create.key.scene) else {
            return;
        };
        let key = &create.key;
        // A rollout step replaces a healthy player: no failure to back off from.
        let replacing = records
            .get(key)
            .is_some_and(|r| r.generation < create.generation);
        if let Some(step) = &create.rollout {
            tracing::info!(scene = %scene.name, role = role(key.slot), slot = key.slot,
                replaces = %step.replaces, name = create.name, changed = ?step.changed,
                "rolling out: create-only settings changed; the new player runs before the old one goes");
        } else if replacing && !self.busy.admit_replacement(key) {
            self.metrics
                .replacement_backoffs
                .with_label_values(&[&self.project.id])
                .inc();
            return;
        }
        self.busy.slots.insert(key.clone());
        let rank = create_rank(key.is_master(), scene.priority);
        self.creates.push(rank, QueuedCreate { scene, create });
    }

    /// Starts waiting creates while the project has room for them (see [`CreateQueue`]).
    pub fn start_creates(&mut self, tasks: &mut JoinSet<Done>) {
        while let Some(QueuedCreate { scene, create }) = self.creates.start_next() {
            let exec = self.exec.clone();
            tasks.spawn(async move {
                let result = exec.create(&scene, &create).await;
                if let Err(e) = &result {
                    tracing::warn!(scene = %scene.name, name = create.name, error = %e, "create failed");
                }
                let wanted = desired_spec(&scene, create.key.slot);
                Done::Create(create.key, outcome(&result, Some(wanted)))
            });
        }
    }

    /// Starts a check of each player in `due` (id, its slot, its region). A check is an
    /// Update too, so its slot is busy meanwhile: a real Update sent at the same time
    /// could arrive second with the lower sequence and be ignored (§1.7).
    pub fn start_checks(&mut self, due: Vec<(String, SlotKey, Region)>, tasks: &mut JoinSet<Done>) {
        for (id, key, region) in due {
            self.busy.slots.insert(key.clone());
            let exec = self.exec.clone();
            tasks.spawn(async move {
                let result = exec.check(region, &id).await;
                let unauthorized = outcome(&result, None) == Outcome::Unauthorized;
                let answer = match result {
                    Ok(()) => Some(CheckAnswer::Healthy),
                    Err(ExecError::Api(e)) => match e.class() {
                        ErrorClass::NotFound => Some(CheckAnswer::Gone),
                        ErrorClass::Server => Some(CheckAnswer::ServerError),
                        _ => None,
                    },
                    Err(ExecError::Store(_)) => None,
                };
                Done::Check {
                    key,
                    id,
                    answer,
                    unauthorized,
                }
            });
        }
    }

    /// A slot's action ended: its slot is free, or held back (see [`Busy`]); a retry
    /// is counted as one of `action`, a final refusal as a rejection.
    pub fn slot_done(&mut self, key: SlotKey, outcome: Outcome, action: &str) {
        self.count(&outcome, action, &key.to_string());
        self.record_rejection(&key, &outcome, action);
        self.keep(&key, false, &outcome);
        if outcome == Outcome::Done && self.busy.is_rejected(&key, true) {
            self.exec.forget_rejection(&key, true);
        }
        self.busy.slot_done(key, outcome, self.long_pause);
    }

    /// An Update ended: a final refusal holds back only the slot's Updates.
    pub fn update_done(&mut self, key: SlotKey, outcome: Outcome) {
        if matches!(outcome, Outcome::Rejected { .. }) {
            self.count(&outcome, "update", &key.to_string());
            self.record_rejection(&key, &outcome, "update");
            self.keep(&key, true, &outcome);
            self.busy.update_done(key, outcome, self.long_pause);
        } else {
            self.slot_done(key, outcome, "update");
        }
    }

    /// Keeps a refusal for good in the store, or forgets the one kept: any other answer
    /// ends it (see [`Busy`]).
    fn keep(&self, key: &SlotKey, updates_only: bool, outcome: &Outcome) {
        match outcome {
            Outcome::Rejected { message, wanted } => {
                let pause = self.long_pause;
                self.exec
                    .keep_rejection(key, updates_only, message, wanted.as_ref(), pause);
            }
            _ if self.busy.is_rejected(key, updates_only) => {
                self.exec.forget_rejection(key, updates_only);
            }
            _ => {}
        }
    }

    /// A final refusal of a slot's action goes into its scene's history.
    fn record_rejection(&self, key: &SlotKey, outcome: &Outcome, action: &str) {
        if let Outcome::Rejected { message, .. } = outcome {
            let events = self.exec.events();
            let kind = EventKind::Rejected {
                action: action.to_string(),
                message: message.clone(),
            };
            events.record(events.at_now(&key.scene, kind).slot(key.slot));
        }
    }

    /// A create ended: one more may start.
    pub fn create_done(&mut self, key: SlotKey, outcome: Outcome) {
        self.creates.finished();
        self.slot_done(key, outcome, "create");
    }

    /// A delete ended: its player is free, or held back.
    pub fn delete_done(&mut self, id: String, outcome: Outcome) {
        self.count(&outcome, "delete", &id);
        self.busy.player_done(id, outcome, self.long_pause);
    }

    fn count(&self, outcome: &Outcome, action: &str, what: &str) {
        let pause_s = self.long_pause.as_secs();
        match outcome {
            Outcome::Done => {}
            Outcome::Failed => self.metrics.retries.with_label_values(&[action]).inc(),
            Outcome::Rejected { message, .. } => {
                self.metrics.rejections.with_label_values(&[action]).inc();
                tracing::error!(project = %self.project.id, action, of = what, refusal = %message, pause_s,
                    "Agora refused this for good; retried when the scene changes or after the pause");
            }
            Outcome::Unauthorized => {
                tracing::error!(project = %self.project.id, action, of = what, pause_s,
                    "Agora refused the project's credentials (401); retried when a List works again or after the pause");
            }
        }
    }

    /// Ends the long pause of rejected slots whose scene changed since (see
    /// [`Busy::rejected`]).
    pub fn retry_changed(&mut self, scenes: &PassScenes<'_>) {
        let let_go = self
            .busy
            .retry_changed(|key| scenes.get(&key.scene).map(|s| desired_spec(s, key.slot)));
        for (key, updates_only) in let_go {
            self.exec.forget_rejection(&key, updates_only);
        }
    }

    /// The project's credentials work again: what their refusal held back goes now.
    pub fn authorized(&mut self) {
        self.busy.authorized();
    }

    /// A check ended; a check never cools its slot down (its answer is evidence).
    pub fn check_done(&mut self, key: &SlotKey) {
        self.busy.slots.remove(key);
    }
}

/// Where to send a Delete: the region the slot's record remembers for this very player,
/// else the scene's, then every other region in turn. An older generation of a slot may
/// have been created in another region (a rollout after the scene's region changed), and
/// a player adopted after its scene was removed has no region anyone remembers.
pub fn delete_regions(
    project: &Project,
    name: &str,
    scene_region: impl Fn(&str) -> Option<Region>,
    records: &BTreeMap<SlotKey, SlotRecord>,
) -> Vec<Region> {
    let parsed = parse_name(&project.name_prefix, name);
    let record = parsed
        .as_ref()
        .and_then(|p| records.get(&SlotKey::new(&project.id, &p.scene, p.slot)));
    if let Some(r) = record.filter(|r| r.name == name) {
        return vec![r.region];
    }
    let likely = record
        .map(|r| r.region)
        .or_else(|| parsed.as_ref().and_then(|p| scene_region(&p.scene)));
    let mut regions: Vec<Region> = likely.into_iter().collect();
    regions.extend(Region::ALL.into_iter().filter(|r| Some(*r) != likely));
    regions
}
