//! Starting the plan's actions as tasks, and what a finished one frees.
//!
//! Part of the controller: it runs on the controller's state, so an action starts in the
//! same pass it was planned, and its end is reported back to the loop as a [`Done`].
//! Creates are the exception: they queue ([`crate::reconcile::creates`]) and start as
//! the project's create rate makes room.

use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::Arc;

use tokio::task::JoinSet;

use crate::config::Scene;
use crate::model::role;
use crate::model::{SlotKey, SlotRecord};
use crate::reconcile::busy::Busy;
use crate::reconcile::controller::ProjectController;
use crate::reconcile::creates::CreateQueue;
use crate::reconcile::execute::{Listed, create_rank, delete_regions};
use crate::reconcile::plan::Action;

/// What a finished action frees.
pub(super) enum Done {
    /// An adoption of a listed player as the slot's ended.
    Adopt(SlotKey, bool),
    /// A create ended: its slot, and a place among the creates in flight.
    Create(SlotKey, bool),
    /// An Update of the slot's player ended (counted apart from creates in the metrics).
    Update(SlotKey, bool),
    Player(String, bool),
    /// A probe of the player `id` (current in slot `key`) ended; `None`: no evidence
    /// either way (a timeout, a 429).
    Probe {
        key: SlotKey,
        id: String,
        verdict: Option<crate::reconcile::evidence::ProbeAnswer>,
    },
    /// A List answered (or failed).
    Listed(Result<Vec<crate::agora::model::ListedPlayer>, crate::agora::ApiError>),
    /// A probe of the source `url` ended.
    Source {
        url: String,
        outcome: crate::probe::Outcome,
    },
}

/// The scenes one pass planned from: a snapshot of the configuration and where each of
/// this project's scenes sits in it (found in one walk over all scenes, 25,000 at scale).
pub(super) struct PassScenes<'a> {
    all: &'a Arc<Vec<Scene>>,
    /// This project's scenes, in configuration order.
    positions: Vec<usize>,
    index: BTreeMap<&'a str, usize>,
}

impl<'a> PassScenes<'a> {
    pub(super) fn new(all: &'a Arc<Vec<Scene>>, project: &str) -> PassScenes<'a> {
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
    pub(super) fn scenes(&self) -> Vec<&'a Scene> {
        self.positions.iter().map(|&i| &self.all[i]).collect()
    }

    pub(super) fn get(&self, name: &str) -> Option<&'a Scene> {
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
pub(super) struct SharedScene {
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
pub(super) struct QueuedCreate {
    scene: SharedScene,
    key: SlotKey,
    generation: u64,
    name: String,
    uid: Option<u32>,
}

impl ProjectController {
    pub(super) fn start(
        &self,
        action: Action,
        scenes: &PassScenes<'_>,
        records: &BTreeMap<SlotKey, SlotRecord>,
        busy: &mut Busy,
        creates: &mut CreateQueue<QueuedCreate>,
        tasks: &mut JoinSet<Done>,
    ) {
        let exec = self.executor.clone();
        match action {
            Action::Create {
                key,
                generation,
                name,
                uid,
                rollout,
            } => {
                let Some(scene) = scenes.shared(&key.scene) else {
                    return;
                };
                // A rollout step replaces a healthy player: no failure to back off from.
                let replacing = records.get(&key).is_some_and(|r| r.generation < generation);
                if let Some(step) = &rollout {
                    tracing::info!(scene = %scene.name, role = role(key.slot), slot = key.slot,
                        replaces = %step.replaces, name, changed = ?step.changed,
                        "rolling out: create-only settings changed; the new player runs before the old one goes");
                } else if replacing && !busy.admit_replacement(&key) {
                    self.metrics
                        .replacement_backoffs
                        .with_label_values(&[&self.project.id])
                        .inc();
                    return;
                }
                busy.slots.insert(key.clone());
                let rank = create_rank(key.is_master(), scene.priority);
                creates.push(
                    rank,
                    QueuedCreate {
                        scene,
                        key,
                        generation,
                        name,
                        uid,
                    },
                );
            }
            Action::Adopt {
                key,
                generation,
                name,
                id,
                uid,
                stream_url,
                channel,
            } => {
                let Some(scene) = scenes.shared(&key.scene) else {
                    return;
                };
                busy.slots.insert(key.clone());
                tasks.spawn(async move {
                    let listed = Listed {
                        generation,
                        name: &name,
                        id: &id,
                        uid,
                        stream_url: stream_url.as_deref(),
                        channel: channel.as_deref(),
                    };
                    let result = exec.adopt(&scene, &key, listed).await;
                    if let Err(e) = &result {
                        tracing::error!(scene = %scene.name, name, error = %e, "cannot record adoption");
                    }
                    Done::Adopt(key, result.is_ok())
                });
            }
            Action::Update {
                key,
                id,
                name,
                to,
                send_stream_url,
                send_volume,
            } => {
                busy.slots.insert(key.clone());
                tasks.spawn(async move {
                    let result = exec
                        .update(&key, &id, &name, &to, send_stream_url, send_volume)
                        .await;
                    if let Err(e) = &result {
                        tracing::warn!(slot = %key, name, error = %e, "update failed; will retry");
                    }
                    Done::Update(key, result.is_ok())
                });
            }
            Action::Delete { id, name, reason } => {
                let regions = delete_regions(
                    &self.project,
                    &name,
                    |s| scenes.get(s).map(|s| s.region),
                    records,
                );
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

    /// Starts waiting creates while the project has room for them (see [`CreateQueue`]).
    pub(super) fn start_creates(
        &self,
        creates: &mut CreateQueue<QueuedCreate>,
        tasks: &mut JoinSet<Done>,
    ) {
        while let Some(c) = creates.start_next() {
            let exec = self.executor.clone();
            tasks.spawn(async move {
                let result = exec
                    .create(&c.scene, &c.key, c.generation, &c.name, c.uid)
                    .await;
                if let Err(e) = &result {
                    tracing::warn!(scene = %c.scene.name, name = c.name, error = %e, "create failed; will retry");
                }
                Done::Create(c.key, result.is_ok())
            });
        }
    }
}
