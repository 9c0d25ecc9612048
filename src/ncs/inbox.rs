//! The hand-off from the webhook receiver (and the app reports endpoint) to a
//! project's controller.
//!
//! The receiver must answer NCS within 10 s whatever Agora or the controller is doing,
//! so it never waits on either: it records what a notice says about a player here and
//! wakes the controller, which folds it into its picture on its next turn. A notice
//! comes with its key: the store keeps it until the controller says it was applied
//! (see the intake).

use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::agora::wire::PlayerStatus;

/// What a Media Pull notice says about one player.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlayerEvent {
    /// Event 1: the player exists (status `connecting`).
    Created {
        channel: Option<String>,
        uid: Option<u64>,
    },
    /// Event 4: a new status.
    Status(PlayerStatus),
    /// Event 3: the player is gone, with Agora's `destroyReason`.
    Destroyed { reason: String },
    /// Not from NCS: an app backend reported that the player's remote audio/video
    /// stopped (`POST /v1/scenes/{name}/reports`).
    Stalled,
}

/// One decoded, verified, de-duplicated and in-order notice about a player.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    pub player_id: String,
    pub name: Option<String>,
    /// Agora's event time (ms); later than every earlier observation of this player.
    pub lts: u64,
    pub event: PlayerEvent,
}

/// A project's queue of observations.
#[derive(Debug, Default)]
pub struct Inbox {
    queue: Mutex<Queue>,
    wake: Notify,
}

#[derive(Debug, Default)]
struct Queue {
    observations: Vec<Observation>,
    /// When the oldest queued observation arrived: failover latency is measured from it.
    since: Option<Instant>,
    /// The queued notices the store keeps until they are applied.
    acknowledged: Vec<Acknowledged>,
}

/// An NCS notice the store keeps until it is applied: its key, and the player it is about
/// (the controller tells from the player when what the notice caused is durable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acknowledged {
    pub key: String,
    pub player_id: String,
}

/// What one drain took.
#[derive(Debug, Default)]
pub struct Drained {
    /// Everything received since the last drain, oldest first.
    pub observations: Vec<Observation>,
    /// When the oldest of them arrived.
    pub since: Option<Instant>,
    /// The acknowledged notices among them, to tell the store once applied.
    pub acknowledged: Vec<Acknowledged>,
}

impl Inbox {
    /// An observation that nothing durable stands behind (an app report).
    pub fn push(&self, observation: Observation) {
        self.enqueue(observation, None);
    }

    /// An NCS notice the store keeps under `key` until it is applied.
    pub fn push_acknowledged(&self, key: String, observation: Observation) {
        self.enqueue(observation, Some(key));
    }

    fn enqueue(&self, observation: Observation, key: Option<String>) {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        queue.since.get_or_insert_with(Instant::now);
        queue.acknowledged.extend(key.map(|key| Acknowledged {
            key,
            player_id: observation.player_id.clone(),
        }));
        queue.observations.push(observation);
        drop(queue);
        self.wake.notify_one();
    }

    /// Everything received since the last drain, oldest first.
    pub fn drain(&self) -> Vec<Observation> {
        self.drain_all().observations
    }

    /// [`drain`](Self::drain), with when the oldest arrived and the notices' keys.
    pub fn drain_all(&self) -> Drained {
        let taken = std::mem::take(&mut *self.queue.lock().unwrap_or_else(|e| e.into_inner()));
        Drained {
            observations: taken.observations,
            since: taken.since,
            acknowledged: taken.acknowledged,
        }
    }

    /// Resolves when something was pushed (or had been, unobserved, since the last call).
    pub async fn notified(&self) {
        self.wake.notified().await;
    }
}
