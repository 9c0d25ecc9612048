//! What pullkeeper knows about each scene right now: the answer of `/v1/scenes`.
//!
//! Controllers write it after every plan; readers (HTTP, metrics) only read. The *active*
//! player is the one apps should watch: the master while it runs, else the first running
//! backup (DESIGN "On air").

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SlotStatus {
    pub slot: u32,
    pub role: &'static str,
    pub name: Option<String>,
    pub uid: Option<u32>,
    pub id: Option<String>,
    pub generation: Option<u64>,
    /// Consecutive Lists that missed the player (three make it failed).
    pub strikes: u32,
    /// Agora's status from the last List, `pending` while List cannot show it yet, or
    /// `missing` when the slot has no player.
    pub status: String,
    /// Which source the slot pulls: `primary`, `backup1`, …, or `slate`.
    pub source: String,
    /// Its replacement waits for the source to come back.
    pub held: bool,
}

/// The last probe verdict of one of a scene's sources (never its URL, which may hold a
/// token or stream key).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SourceStatus {
    /// `primary`, `backup1`, …
    pub source: String,
    /// `up`, `down`, `unknown`, or `unchecked` before the first probe.
    pub state: &'static str,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SceneStatus {
    pub name: String,
    pub project: String,
    pub channel: String,
    /// The UID apps should subscribe to, if any player runs.
    pub active_uid: Option<u32>,
    pub active_slot: Option<u32>,
    /// Bumped on every change of the active player; never goes down.
    pub active_version: u64,
    /// How often the active player changed.
    pub switches: u64,
    /// When (Unix ms) the active player was chosen.
    pub active_since_ms: u64,
    pub healthy_players: u32,
    /// Slots that cannot have a player because the project is at its quota.
    pub over_quota_slots: Vec<u32>,
    /// Some source of the scene was found down: failed players on it are not replaced
    /// until it returns.
    pub source_down: bool,
    /// Empty while source probing is off.
    pub sources: Vec<SourceStatus>,
    pub slots: Vec<SlotStatus>,
}

/// Shared scene status, keyed by scene name.
#[derive(Debug, Clone, Default)]
pub struct StatusBoard {
    inner: Arc<RwLock<BTreeMap<String, SceneStatus>>>,
}

impl StatusBoard {
    /// Replaces the status of every scene of `project` with `scenes`.
    pub fn publish(&self, project: &str, scenes: Vec<SceneStatus>) {
        let mut map = self.inner.write().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, s| s.project != project);
        for s in scenes {
            map.insert(s.name.clone(), s);
        }
    }

    pub fn all(&self) -> Vec<SceneStatus> {
        let map = self.inner.read().unwrap_or_else(|e| e.into_inner());
        map.values().cloned().collect()
    }

    pub fn get(&self, name: &str) -> Option<SceneStatus> {
        let map = self.inner.read().unwrap_or_else(|e| e.into_inner());
        map.get(name).cloned()
    }
}
