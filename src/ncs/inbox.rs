//! The hand-off from the webhook receiver (and the app reports endpoint) to a
//! project's controller.
//!
//! The receiver must answer NCS within 10 s whatever Agora or the controller is doing,
//! so it never waits on either: it records what a notice says about a player here and
//! wakes the controller, which folds it into its picture on its next turn.

use std::sync::Mutex;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::agora::wire::PlayerStatus;

/// What a Media Pull notice says about one player.
#[derive(Debug, Clone, PartialEq, Eq)]
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
#[derive(Debug, Clone, PartialEq, Eq)]
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
}

impl Inbox {
    pub fn push(&self, observation: Observation) {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        queue.since.get_or_insert_with(Instant::now);
        queue.observations.push(observation);
        drop(queue);
        self.wake.notify_one();
    }

    /// Everything received since the last drain, oldest first.
    pub fn drain(&self) -> Vec<Observation> {
        self.drain_since().0
    }

    /// [`drain`](Self::drain), with the arrival time of the oldest observation drained.
    pub fn drain_since(&self) -> (Vec<Observation>, Option<Instant>) {
        let taken = std::mem::take(&mut *self.queue.lock().unwrap_or_else(|e| e.into_inner()));
        (taken.observations, taken.since)
    }

    /// Resolves when something was pushed (or had been, unobserved, since the last call).
    pub async fn notified(&self) {
        self.wake.notified().await;
    }
}
