//! What pullkeeper knows about each scene right now: the answer of `/v1/scenes`.
//!
//! Controllers write it after every plan; readers (HTTP, metrics) only read. The *active*
//! player is the one apps should watch: the master while it runs, else the first running
//! backup (DESIGN "On air").

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde::Serialize;

use super::control::Maintenance;
use super::onair::SwitchReason;

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
    /// Agora's status from the last List, `pending` while List cannot show it yet,
    /// `rejected` when Agora refused its create for good, or `missing` when the slot has
    /// no player.
    pub status: &'static str,
    /// Which source the slot pulls: `primary`, `backup1`, …, or `slate`.
    pub source: String,
    /// Its replacement waits for the source to come back.
    pub held: bool,
    /// Agora's answer when it refused the slot's last create or update for good (400,
    /// 403), e.g. `HTTP 403: This project has not enabled Cloud Player…`; retried when
    /// the scene changes or after `reconcile.rejected_retry`.
    pub rejected: Option<String>,
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
    /// Why the active player was chosen (`manual` when an operator switched).
    pub active_reason: Option<SwitchReason>,
    /// The slot an operator pinned on air, if any.
    pub pinned_slot: Option<u32>,
    /// Since when and by whom the scene is in maintenance, if it is.
    pub maintenance: Option<Maintenance>,
    /// The drill running on the scene, if any (`GET /v1/drills/{id}`).
    pub drill: Option<String>,
    pub healthy_players: u32,
    /// Slots that cannot have a player because the project is at its quota.
    pub over_quota_slots: Vec<u32>,
    /// Some source of the scene was found down: failed players on it are not replaced
    /// until it returns.
    pub source_down: bool,
    /// Empty while source probing is off.
    pub sources: Vec<SourceStatus>,
    /// Agora refuses the project's credentials (401): nothing of the project changes
    /// until they work again.
    pub unauthorized: bool,
    pub slots: Vec<SlotStatus>,
}

/// Shared scene status, by project, each project's scenes sorted by name. Each
/// controller replaces only its project's scenes after every pass; with one map for all
/// scenes, that replacement walked every scene of every project (25,000 at 1,000
/// projects) on each pass. A sorted vector rather than a map per project: it holds no
/// second copy of each name and no tree nodes.
#[derive(Debug, Clone, Default)]
pub struct StatusBoard {
    inner: Arc<RwLock<BTreeMap<String, Vec<SceneStatus>>>>,
}

impl StatusBoard {
    /// Replaces the status of every scene of `project` with `scenes`.
    pub fn publish(&self, project: &str, mut scenes: Vec<SceneStatus>) {
        scenes.sort_by(|a, b| a.name.cmp(&b.name));
        let mut map = self.inner.write().unwrap_or_else(|e| e.into_inner());
        map.insert(project.to_string(), scenes);
    }

    /// Every scene, by name.
    pub fn all(&self) -> Vec<SceneStatus> {
        let map = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<SceneStatus> = map.values().flatten().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Visits every scene under the read lock, without copying the board: a scrape and
    /// the benchmarks' polls walk all 25,000 scenes of a large process.
    pub fn for_each(&self, mut visit: impl FnMut(&SceneStatus)) {
        let map = self.inner.read().unwrap_or_else(|e| e.into_inner());
        map.values().flatten().for_each(&mut visit);
    }

    pub fn get(&self, name: &str) -> Option<SceneStatus> {
        let map = self.inner.read().unwrap_or_else(|e| e.into_inner());
        map.values().find_map(|scenes| {
            let at = scenes
                .binary_search_by(|s| s.name.as_str().cmp(name))
                .ok()?;
            Some(scenes[at].clone())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scene(name: &str, project: &str) -> SceneStatus {
        SceneStatus {
            name: name.into(),
            project: project.into(),
            channel: format!("{name}-live"),
            active_uid: None,
            active_slot: None,
            active_version: 0,
            switches: 0,
            active_since_ms: 0,
            active_reason: None,
            pinned_slot: None,
            maintenance: None,
            drill: None,
            healthy_players: 0,
            over_quota_slots: vec![],
            slots: vec![],
            source_down: false,
            sources: vec![],
            unauthorized: false,
        }
    }

    #[test]
    fn a_publication_replaces_only_its_projects_scenes() {
        let board = StatusBoard::default();
        board.publish("p2", vec![scene("b", "p2"), scene("old", "p2")]);
        board.publish("p1", vec![scene("c", "p1"), scene("a", "p1")]);
        board.publish("p2", vec![scene("b", "p2")]);
        let names: Vec<String> = board.all().into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(board.get("c").unwrap().project, "p1");
        assert!(board.get("old").is_none());
    }
}
