//! Starting the plan's actions as tasks, and what a finished one frees.
//!
//! Part of the controller: it runs on the controller's state, so an action starts in the
//! same pass it was planned, and its end is reported back to the loop as a [`Done`].

use std::collections::BTreeMap;

use tokio::task::JoinSet;

use crate::config::Scene;
use crate::reconcile::busy::Busy;
use crate::reconcile::controller::ProjectController;
use crate::reconcile::execute::{Listed, delete_regions, role};
use crate::reconcile::plan::Action;
use crate::store::{SlotKey, SlotRecord};

/// What a finished action frees.
pub(super) enum Done {
    Slot(SlotKey, bool),
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
    /// A probe of the source `url` ended.
    Source {
        url: String,
        outcome: crate::probe::Outcome,
    },
}

impl ProjectController {
    pub(super) fn start(
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
                rollout,
            } => {
                let Some(scene) = scenes.get(key.scene.as_str()).map(|s| (*s).clone()) else {
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
                stream_url,
                channel,
            } => {
                let Some(scene) = scenes.get(key.scene.as_str()).map(|s| (*s).clone()) else {
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
                    Done::Slot(key, result.is_ok())
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
                let regions = delete_regions(&self.project, &name, scenes, records);
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
}
