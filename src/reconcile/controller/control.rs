//! Operators' requests: each becomes steering for the plan (see `plan::steering`), a
//! pass runs at once, and the answer is what the plan decided. Pins and maintenance are
//! written through to the store and flushed before the answer, so an acknowledged
//! action survives a restart.
//!
//! Each kind of action is logged as one structured line by one function below
//! (`action` field: `manual_switch`, `unpin`, `maintenance`, `drill`).

use std::collections::BTreeMap;

use tokio::task::JoinSet;

use super::ProjectController;
use super::drill::Drill;
use crate::config::Scene;
use crate::model::{
    ControlAnswer, ControlRequest, DrillMode, DrillReport, DrillStep, EventKind, Maintenance,
    MaintenanceBy, SceneControl, SlotKey, SlotRecord,
};
use crate::reconcile::execute::Done;
use crate::reconcile::plan::{OnAirDecision, OnAirRequest, Steering};

impl ProjectController {
    /// Answers every queued request, after one flush for all of them.
    pub(super) async fn on_control(&mut self, tasks: &mut JoinSet<Done>) {
        let pending = self.ctx.control.drain();
        if pending.is_empty() {
            return;
        }
        let answers: Vec<_> = pending
            .into_iter()
            // One the asker gave up on (it waited while no controller ran here) is not
            // acted on late.
            .filter(|p| !p.reply.is_closed())
            .map(|p| {
                let answer = self.answer(p.request, tasks);
                (p.reply, answer)
            })
            .collect();
        let flushed = self.ctx.executor.flush().await;
        for (reply, answer) in answers {
            let answer = match (&flushed, answer) {
                (Err(e), ControlAnswer::Done { .. }) => ControlAnswer::Unavailable {
                    reason: format!("decided, but the store could not keep it: {e}"),
                },
                (_, answer) => answer,
            };
            // The asker may have given up waiting; the action stands regardless.
            let _ = reply.send(answer);
        }
    }

    fn answer(&mut self, request: ControlRequest, tasks: &mut JoinSet<Done>) -> ControlAnswer {
        let project = self.ctx.project.id.clone();
        let scene = request.scene().to_string();
        let configured = self
            .ctx
            .scenes
            .borrow()
            .iter()
            .any(|s| s.project == project && s.name == scene);
        if !configured {
            return ControlAnswer::NoScene;
        }
        if !self.observed.listed() {
            return ControlAnswer::Unavailable {
                reason: "the project's players have not been listed yet".to_string(),
            };
        }
        match request {
            ControlRequest::Switch { slot, pin, .. } => {
                self.requests
                    .insert(scene.clone(), OnAirRequest::Manual { slot });
                let decision = self.decide(&scene, tasks);
                let outcome = decision.request.clone().unwrap_or(Ok(()));
                log_switch(&project, &scene, slot, pin, &decision, &outcome);
                if let Err(reason) = outcome {
                    return ControlAnswer::Refused { reason };
                }
                self.note(
                    &scene,
                    Some(slot),
                    EventKind::ManualSwitch { to_slot: slot, pin },
                );
                // A switch replaces any pin: the old one would pull the air back.
                let pinned = pin.then_some(slot);
                if self.controls.get(&scene).and_then(|c| c.pinned) == pinned {
                    return ControlAnswer::Done {
                        active_version: decision.onair.version,
                        drill: None,
                    };
                }
                self.set_control(&scene, |c| c.pinned = pinned);
                // Published with the pin, and planned from it.
                self.done(&scene, tasks)
            }
            ControlRequest::Unpin { .. } => {
                if self
                    .controls
                    .get(&scene)
                    .is_some_and(|c| c.pinned.is_some())
                {
                    self.set_control(&scene, |c| c.pinned = None);
                    log_unpin(&project, &scene, "operator");
                    let why = "operator".to_string();
                    self.note(&scene, None, EventKind::PinReleased { why });
                }
                self.done(&scene, tasks)
            }
            ControlRequest::Maintenance { on, .. } => {
                let current = self.controls.get(&scene).and_then(|c| c.maintenance);
                match (on, current) {
                    (true, None) => {
                        let since_ms = self.ctx.executor.now_ms();
                        let by = MaintenanceBy::Api;
                        self.set_control(&scene, |c| {
                            c.maintenance = Some(Maintenance { since_ms, by });
                        });
                        log_maintenance(&project, &scene, true, by);
                        self.note(&scene, None, EventKind::Maintenance { on: true });
                    }
                    (false, Some(m)) if m.by == MaintenanceBy::ScenesFile => {
                        return ControlAnswer::Refused {
                            reason: "the scenes file puts the scene in maintenance; \
                                     remove `maintenance: true` there"
                                .to_string(),
                        };
                    }
                    (false, Some(m)) => {
                        self.set_control(&scene, |c| c.maintenance = None);
                        log_maintenance(&project, &scene, false, m.by);
                        self.note(&scene, None, EventKind::Maintenance { on: false });
                    }
                    // Already so: nothing changes.
                    (true, Some(_)) | (false, None) => {}
                }
                self.done(&scene, tasks)
            }
            ControlRequest::Drill { mode, hold_ms, .. } => {
                self.start_drill(&scene, mode, hold_ms, tasks)
            }
        }
    }

    fn start_drill(
        &mut self,
        scene: &str,
        mode: DrillMode,
        hold_ms: u64,
        tasks: &mut JoinSet<Done>,
    ) -> ControlAnswer {
        let project = self.ctx.project.id.clone();
        if let Some(running) = &self.drill {
            return ControlAnswer::Refused {
                reason: format!(
                    "drill {} runs on scene {} of this project",
                    running.id(),
                    running.scene()
                ),
            };
        }
        self.requests.insert(scene.to_string(), OnAirRequest::Drill);
        let decision = self.decide(scene, tasks);
        if let Some(Err(reason)) = decision.request {
            log_drill(DrillEvent::Refused {
                project: &project,
                scene,
                mode,
                reason: &reason,
            });
            return ControlAnswer::Refused { reason };
        }
        let now_ms = self.ctx.executor.now_ms();
        let master = SlotKey::new(&project, scene, 0);
        let victim = match mode {
            DrillMode::Replace => self
                .ctx
                .executor
                .slots()
                .ok()
                .and_then(|records| records.get(&master).cloned())
                .map(|r| (r.name, r.generation)),
            DrillMode::Switch => None,
        };
        let revertive = self
            .ctx
            .scenes
            .borrow()
            .iter()
            .find(|s| s.project == project && s.name == scene)
            .is_some_and(|s| s.failback == crate::config::Failback::Revertive);
        let drill = Drill::start(
            DrillReport {
                id: format!("{scene}-{now_ms}"),
                project: project.clone(),
                scene: scene.to_string(),
                mode,
                hold_ms,
                started_ms: now_ms,
                state: crate::model::DrillState::Running,
                steps: vec![DrillStep {
                    step: "switch_published",
                    at_ms: now_ms,
                    uid: decision.onair.uid,
                }],
                on_air_throughout: decision.onair.slot.is_some(),
            },
            decision.onair.slot.unwrap_or(0),
            victim,
            revertive,
        );
        let id = drill.id().to_string();
        log_drill(DrillEvent::Step(drill.report(), "switch_published"));
        self.ctx.drills.put(drill.report().clone());
        self.drill = Some(drill);
        // A replace drill's master fails only now, once the air has left it: the same
        // order as a real failure's, whose failover comes in the pass that learns of it.
        // Either drill is published with this pass.
        let decision = self.decide(scene, tasks);
        ControlAnswer::Done {
            active_version: decision.onair.version,
            drill: Some(id),
        }
    }

    /// Runs a pass now and returns `scene`'s on-air decision.
    fn decide(&mut self, scene: &str, tasks: &mut JoinSet<Done>) -> OnAirDecision {
        let decisions = self.pass(tasks);
        self.requests.clear();
        decisions
            .into_iter()
            .find(|d| d.scene == scene)
            .unwrap_or_else(|| OnAirDecision {
                scene: scene.to_string(),
                previous: Default::default(),
                onair: Default::default(),
                reason: None,
                healthy: 0,
                request: Some(Err("the scene could not be planned".to_string())),
                pin_released: false,
            })
    }

    fn done(&mut self, scene: &str, tasks: &mut JoinSet<Done>) -> ControlAnswer {
        let decision = self.decide(scene, tasks);
        ControlAnswer::Done {
            active_version: decision.onair.version,
            drill: None,
        }
    }

    /// Changes a scene's controls and writes them through to the store.
    fn set_control(&mut self, scene: &str, change: impl FnOnce(&mut SceneControl)) {
        let mut control = self.controls.get(scene).copied().unwrap_or_default();
        change(&mut control);
        if let Err(e) = self.ctx.executor.put_scene_control(scene, &control) {
            tracing::error!(project = %self.ctx.project.id, scene, error = %e,
                "cannot keep the scene's pin and maintenance");
        }
        if control.is_empty() {
            self.controls.remove(scene);
        } else {
            self.controls.insert(scene.to_string(), control);
        }
    }

    /// Brings maintenance set by the scenes file in line with it, and forgets the
    /// controls of scenes no longer configured (a scene added again starts unsteered).
    pub(super) fn follow_scenes_file(&mut self, scenes: &[&Scene]) {
        let project = self.ctx.project.id.clone();
        let gone: Vec<String> = self
            .controls
            .keys()
            .filter(|name| !scenes.iter().any(|s| &s.name == *name))
            .cloned()
            .collect();
        for scene in gone {
            self.set_control(&scene, |c| *c = SceneControl::default());
        }
        for scene in scenes {
            let current = self.controls.get(&scene.name).and_then(|c| c.maintenance);
            match current {
                None if scene.maintenance => {
                    let since_ms = self.ctx.executor.now_ms();
                    let by = MaintenanceBy::ScenesFile;
                    self.set_control(&scene.name, |c| {
                        c.maintenance = Some(Maintenance { since_ms, by });
                    });
                    log_maintenance(&project, &scene.name, true, by);
                    self.note(&scene.name, None, EventKind::Maintenance { on: true });
                }
                Some(m) if m.by == MaintenanceBy::ScenesFile && !scene.maintenance => {
                    self.set_control(&scene.name, |c| c.maintenance = None);
                    log_maintenance(&project, &scene.name, false, m.by);
                    self.note(&scene.name, None, EventKind::Maintenance { on: false });
                }
                _ => {}
            }
        }
    }

    /// What the plan is to take from the operators for each scene this pass.
    pub(super) fn steering(&self, scenes: &[&Scene]) -> BTreeMap<String, Steering> {
        scenes
            .iter()
            .filter_map(|scene| {
                let control = self.controls.get(&scene.name).copied().unwrap_or_default();
                let drill = self.drill.as_ref().filter(|d| d.scene() == scene.name);
                let steering = Steering {
                    maintenance: control.maintenance.is_some(),
                    pinned: control.pinned,
                    request: self.requests.get(&scene.name).copied(),
                    hold: drill.and_then(Drill::hold),
                    failed: drill.and_then(|d| d.failed().map(str::to_string)),
                };
                (steering != Steering::default()).then(|| (scene.name.clone(), steering))
            })
            .collect()
    }

    /// Takes in what a pass decided about pins and the running drill.
    pub(super) fn after_pass(
        &mut self,
        decisions: &[OnAirDecision],
        records: &BTreeMap<SlotKey, SlotRecord>,
        now_ms: u64,
    ) {
        let project = self.ctx.project.id.clone();
        for d in decisions.iter().filter(|d| d.pin_released) {
            self.set_control(&d.scene, |c| c.pinned = None);
            let why = "the pinned player stopped running";
            log_unpin(&project, &d.scene, why);
            let why = why.to_string();
            self.note(&d.scene, None, EventKind::PinReleased { why });
        }
        let Some(drill) = &mut self.drill else {
            return;
        };
        let decision = decisions.iter().find(|d| d.scene == drill.scene());
        let running = self.observed.running_since();
        let listed = self.observed.players();
        let steps = drill.observe(decision, records, running, listed, now_ms);
        let events = self.ctx.executor.events();
        for step in &steps {
            log_drill(DrillEvent::Step(drill.report(), step));
            let report = drill.report();
            let kind = EventKind::DrillStep {
                drill: report.id.clone(),
                step: step.to_string(),
            };
            events.record(events.at_now(&report.scene, kind));
        }
        if !steps.is_empty() || decision.is_none() {
            self.ctx.drills.put(drill.report().clone());
        }
        if drill.finished() {
            self.drill = None;
        }
    }
}

impl ProjectController {
    /// An operator's action (or its consequence) into the scene's history.
    fn note(&self, scene: &str, slot: Option<u32>, kind: EventKind) {
        let events = self.ctx.executor.events();
        let event = events.at_now(scene, kind);
        events.record(match slot {
            Some(slot) => event.slot(slot),
            None => event,
        });
    }
}

fn log_switch(
    project: &str,
    scene: &str,
    slot: u32,
    pin: bool,
    decision: &OnAirDecision,
    outcome: &Result<(), String>,
) {
    match outcome {
        Ok(()) => tracing::info!(action = "manual_switch", project, scene, slot, pin,
            uid = ?decision.onair.uid, version = decision.onair.version,
            "operator put a slot on air"),
        Err(reason) => tracing::info!(action = "manual_switch", project, scene, slot, pin,
            refused = %reason, "operator's switch refused"),
    }
}

fn log_unpin(project: &str, scene: &str, why: &str) {
    tracing::info!(action = "unpin", project, scene, why, "pin released");
}

fn log_maintenance(project: &str, scene: &str, on: bool, by: MaintenanceBy) {
    tracing::info!(action = "maintenance", project, scene, on, by = ?by,
        "scene maintenance changed");
}

/// What a drill log line is about.
enum DrillEvent<'a> {
    Step(&'a DrillReport, &'a str),
    Refused {
        project: &'a str,
        scene: &'a str,
        mode: DrillMode,
        reason: &'a str,
    },
}

fn log_drill(event: DrillEvent<'_>) {
    match event {
        DrillEvent::Step(report, step) => tracing::info!(action = "drill",
            project = %report.project, scene = %report.scene, drill = %report.id,
            mode = ?report.mode, step, state = ?report.state,
            on_air_throughout = report.on_air_throughout, "drill step"),
        DrillEvent::Refused {
            project,
            scene,
            mode,
            reason,
        } => tracing::info!(action = "drill", project, scene, mode = ?mode,
            refused = %reason, "drill refused"),
    }
}
