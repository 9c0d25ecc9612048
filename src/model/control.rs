//! The operator's hand on a scene: what the store keeps (a pin, maintenance), what an
//! operator asks (a typed request the leader of the scene's project answers), and what a
//! drill reports.
//!
//! A request is a value, not a call: the admin API hands it to the project's controller
//! through a [`ControlMailbox`] and waits for the answer, so a replica that does not lead
//! the project can forward the same value to the one that does.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, oneshot};

/// What the store keeps about a scene besides its players; survives restarts and
/// takeovers. An empty one is not stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SceneControl {
    /// The slot an operator pinned on air: it stays there, whatever the failback policy
    /// says, until unpinned or its player stops running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned: Option<u32>,
    /// The scene is in maintenance: no create, delete or update for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<Maintenance>,
}

impl SceneControl {
    pub fn is_empty(&self) -> bool {
        self.pinned.is_none() && self.maintenance.is_none()
    }
}

/// Since when a scene is in maintenance, and who put it there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Maintenance {
    /// Unix ms.
    pub since_ms: u64,
    pub by: MaintenanceBy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaintenanceBy {
    /// `POST /v1/scenes/{name}/maintenance`; ends with `DELETE`.
    Api,
    /// `maintenance: true` in the scenes file; ends when the file says otherwise.
    ScenesFile,
}

/// What a drill rehearses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DrillMode {
    /// On air to the best running backup for the hold, then back per the failback policy.
    Switch,
    /// What a real master failure does: on air to a backup, the master deleted and
    /// recreated under a fresh UID, back per the failback policy.
    Replace,
}

/// An admin action on one scene, for the controller of the scene's project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ControlRequest {
    /// Put `slot` on air now (if its player runs), pinned there if `pin`.
    Switch {
        scene: String,
        slot: u32,
        pin: bool,
    },
    Unpin {
        scene: String,
    },
    Maintenance {
        scene: String,
        on: bool,
    },
    Drill {
        scene: String,
        mode: DrillMode,
        hold_ms: u64,
    },
}

impl ControlRequest {
    pub fn scene(&self) -> &str {
        match self {
            ControlRequest::Switch { scene, .. }
            | ControlRequest::Unpin { scene }
            | ControlRequest::Maintenance { scene, .. }
            | ControlRequest::Drill { scene, .. } => scene,
        }
    }
}

/// The controller's answer to a [`ControlRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum ControlAnswer {
    /// Done: what the scene's on-air version is now, and the drill started, if any.
    Done {
        active_version: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        drill: Option<String>,
    },
    /// Refused, and why (the scene's state does not allow it now).
    Refused { reason: String },
    /// The project does not have this scene.
    NoScene,
    /// Cannot be answered now (the project has not been listed yet).
    Unavailable { reason: String },
}

/// A request and where its answer goes.
pub struct Pending {
    pub request: ControlRequest,
    pub reply: oneshot::Sender<ControlAnswer>,
}

/// One project's queue of admin requests; sending wakes its controller.
#[derive(Default)]
pub struct ControlMailbox {
    queue: Mutex<VecDeque<Pending>>,
    wake: Notify,
}

impl ControlMailbox {
    /// Queues `request`; the answer arrives on the receiver (dropped unanswered if no
    /// controller of the project runs here).
    pub fn send(&self, request: ControlRequest) -> oneshot::Receiver<ControlAnswer> {
        let (reply, answer) = oneshot::channel();
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        queue.push_back(Pending { request, reply });
        drop(queue);
        self.wake.notify_one();
        answer
    }

    /// Everything queued, oldest first.
    pub fn drain(&self) -> Vec<Pending> {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        queue.drain(..).collect()
    }

    /// Resolves once a request was sent since the last wake-up.
    pub async fn notified(&self) {
        self.wake.notified().await;
    }
}

/// One step of a drill, with its time (Unix ms).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DrillStep {
    pub step: &'static str,
    pub at_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DrillState {
    Running,
    Completed,
    /// It did not reach its end within its time limit, or its scene went away.
    Abandoned,
}

/// What `GET /v1/drills/{id}` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DrillReport {
    pub id: String,
    pub project: String,
    pub scene: String,
    pub mode: DrillMode,
    pub hold_ms: u64,
    pub started_ms: u64,
    pub state: DrillState,
    pub steps: Vec<DrillStep>,
    /// Some player was on air at every pass from the drill's start to its end.
    pub on_air_throughout: bool,
}

/// The drills of this process, newest last; bounded.
#[derive(Debug, Clone, Default)]
pub struct Drills {
    inner: Arc<RwLock<VecDeque<DrillReport>>>,
}

/// How many finished drills are kept for `GET /v1/drills/{id}`.
const DRILLS_KEPT: usize = 100;

impl Drills {
    /// Adds or replaces (by id) a drill's report.
    pub fn put(&self, report: DrillReport) {
        let mut all = self.inner.write().unwrap_or_else(|e| e.into_inner());
        match all.iter_mut().find(|d| d.id == report.id) {
            Some(d) => *d = report,
            None => {
                if all.len() >= DRILLS_KEPT {
                    all.pop_front();
                }
                all.push_back(report);
            }
        }
    }

    pub fn get(&self, id: &str) -> Option<DrillReport> {
        let all = self.inner.read().unwrap_or_else(|e| e.into_inner());
        all.iter().find(|d| d.id == id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_travel_as_json_and_name_their_scene() {
        let request = ControlRequest::Drill {
            scene: "news".into(),
            mode: DrillMode::Replace,
            hold_ms: 30_000,
        };
        let text = serde_json::to_string(&request).unwrap();
        assert_eq!(
            text,
            r#"{"action":"drill","scene":"news","mode":"replace","hold_ms":30000}"#
        );
        assert_eq!(
            serde_json::from_str::<ControlRequest>(&text).unwrap(),
            request
        );
        assert_eq!(request.scene(), "news");
    }

    #[test]
    fn the_mailbox_hands_requests_over_in_order_with_their_reply() {
        let mailbox = ControlMailbox::default();
        let first = mailbox.send(ControlRequest::Unpin { scene: "a".into() });
        let _second = mailbox.send(ControlRequest::Unpin { scene: "b".into() });
        let pending = mailbox.drain();
        let scenes: Vec<&str> = pending.iter().map(|p| p.request.scene()).collect();
        assert_eq!(scenes, ["a", "b"]);
        let mut pending = pending.into_iter();
        let answer = ControlAnswer::NoScene;
        pending.next().unwrap().reply.send(answer.clone()).unwrap();
        assert_eq!(first.blocking_recv().unwrap(), answer);
        assert!(mailbox.drain().is_empty());
    }

    #[test]
    fn drills_are_kept_up_to_a_bound_and_replaced_by_id() {
        assert_eq!(DRILLS_KEPT, 100, "the README's 100");
        let drills = Drills::default();
        let report = |id: usize| DrillReport {
            id: id.to_string(),
            project: "p".into(),
            scene: "s".into(),
            mode: DrillMode::Switch,
            hold_ms: 0,
            started_ms: 0,
            state: DrillState::Running,
            steps: vec![],
            on_air_throughout: true,
        };
        for id in 0..=DRILLS_KEPT {
            drills.put(report(id));
        }
        assert!(drills.get("0").is_none(), "the oldest went");
        let mut done = report(5);
        done.state = DrillState::Completed;
        drills.put(done);
        assert_eq!(drills.get("5").unwrap().state, DrillState::Completed);
        assert!(drills.get("1").is_some());
    }
}
