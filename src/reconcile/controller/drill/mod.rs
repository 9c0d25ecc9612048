//! A running drill: the steering it gives the plan (a hold on the backup, or the master
//! counted as failed) and the steps it sees the passes take, each with its time.
//!
//! - `switch`: `switch_published`, `hold_ended`, then `back_on_master` (revertive) or
//!   `stays_on_backup` (non-revertive, whose policy keeps a healthy backup).
//! - `replace`: `switch_published`, `master_deleted`, `replacement_created`,
//!   `replacement_running`, then `back_on_master` (revertive; non-revertive ends at
//!   `replacement_running`).
//!
//! A drill that has not ended [`LIMIT_MS`] after its hold is abandoned, so a scene whose
//! replacement never comes does not block drills for good.

use std::collections::{BTreeMap, HashMap};

use crate::agora::wire::ListedPlayer;
use crate::model::{DrillMode, DrillReport, DrillState, DrillStep, SlotKey, SlotRecord};
use crate::reconcile::plan::OnAirDecision;

/// How long after its hold a drill may take to end.
pub(super) const LIMIT_MS: u64 = 10 * 60 * 1000;

pub(super) struct Drill {
    report: DrillReport,
    /// The backup that took the air.
    backup: u32,
    /// A replace drill's master (name, generation), counted as failed.
    victim: Option<(String, u64)>,
    revertive: bool,
}

impl Drill {
    pub(super) fn start(
        report: DrillReport,
        backup: u32,
        victim: Option<(String, u64)>,
        revertive: bool,
    ) -> Drill {
        Drill {
            report,
            backup,
            victim,
            revertive,
        }
    }

    pub(super) fn id(&self) -> &str {
        &self.report.id
    }

    pub(super) fn scene(&self) -> &str {
        &self.report.scene
    }

    pub(super) fn report(&self) -> &DrillReport {
        &self.report
    }

    /// A switch drill holds the air on its backup until the hold ends.
    pub(super) fn hold(&self) -> Option<(u32, u64)> {
        (self.report.mode == DrillMode::Switch)
            .then_some((self.backup, self.report.started_ms + self.report.hold_ms))
    }

    /// The player a replace drill counts as failed.
    pub(super) fn failed(&self) -> Option<&str> {
        self.victim.as_ref().map(|(name, _)| name.as_str())
    }

    pub(super) fn finished(&self) -> bool {
        self.report.state != DrillState::Running
    }

    fn has(&self, step: &str) -> bool {
        self.report.steps.iter().any(|s| s.step == step)
    }

    fn step(
        &mut self,
        step: &'static str,
        at_ms: u64,
        uid: Option<u32>,
        new: &mut Vec<&'static str>,
    ) {
        if !self.has(step) {
            self.report.steps.push(DrillStep { step, at_ms, uid });
            new.push(step);
        }
    }

    /// Takes in one pass: its decision for the drill's scene (`None`: the scene is gone),
    /// the slot records, which players run and what List shows. Returns the new steps.
    pub(super) fn observe(
        &mut self,
        decision: Option<&OnAirDecision>,
        records: &BTreeMap<SlotKey, SlotRecord>,
        running_since: &HashMap<String, u64>,
        listed: &[ListedPlayer],
        now_ms: u64,
    ) -> Vec<&'static str> {
        let mut new = Vec::new();
        let Some(decision) = decision else {
            self.end(DrillState::Abandoned, "scene_removed", now_ms, &mut new);
            return new;
        };
        if decision.onair.slot.is_none() {
            self.report.on_air_throughout = false;
        }
        let onair = decision.onair;
        let back = onair.slot == Some(0);
        match self.report.mode {
            DrillMode::Switch => {
                let until = self.report.started_ms + self.report.hold_ms;
                if now_ms >= until {
                    self.step("hold_ended", until, None, &mut new);
                    if back {
                        self.step("back_on_master", now_ms, onair.uid, &mut new);
                        self.end(DrillState::Completed, "", now_ms, &mut new);
                    } else if !self.revertive {
                        self.step("stays_on_backup", now_ms, onair.uid, &mut new);
                        self.end(DrillState::Completed, "", now_ms, &mut new);
                    }
                }
            }
            DrillMode::Replace => {
                let Some((victim, generation)) = self.victim.clone() else {
                    self.end(DrillState::Abandoned, "no_master", now_ms, &mut new);
                    return new;
                };
                if !listed.iter().any(|p| p.name.as_deref() == Some(&victim)) {
                    self.step("master_deleted", now_ms, None, &mut new);
                }
                let master = SlotKey::new(&self.report.project, &self.report.scene, 0);
                let successor = records
                    .get(&master)
                    .filter(|r| r.generation > generation && r.id.is_some());
                if let Some(r) = successor {
                    self.step("replacement_created", now_ms, Some(r.uid), &mut new);
                    if running_since.contains_key(&r.name) {
                        self.step("replacement_running", now_ms, Some(r.uid), &mut new);
                        if !self.revertive {
                            self.end(DrillState::Completed, "", now_ms, &mut new);
                        } else if back && onair.uid == Some(r.uid) && self.has("master_deleted") {
                            self.step("back_on_master", now_ms, onair.uid, &mut new);
                            self.end(DrillState::Completed, "", now_ms, &mut new);
                        }
                    }
                }
            }
        }
        let limit = self.report.started_ms + self.report.hold_ms + LIMIT_MS;
        if self.report.state == DrillState::Running && now_ms >= limit {
            self.end(DrillState::Abandoned, "timed_out", now_ms, &mut new);
        }
        new
    }

    /// Ends the drill, with a step saying why when it did not complete.
    fn end(
        &mut self,
        state: DrillState,
        why: &'static str,
        now_ms: u64,
        new: &mut Vec<&'static str>,
    ) {
        if self.report.state != DrillState::Running {
            return;
        }
        if !why.is_empty() {
            self.step(why, now_ms, None, new);
        }
        self.report.state = state;
        // The victim counts as failed only while the drill runs; its replacement is the
        // slot's player by then.
        self.victim = None;
    }
}

#[cfg(test)]
mod tests;
