//! One reconcile pass: observe what the signals brought, plan, execute, publish.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::ProjectController;
use crate::model::{EventKind, SwitchReason};
use crate::reconcile::execute::{Done, PassScenes};
use crate::reconcile::plan::{
    OnAirDecision, PlanInput, cleared_slots, desired_scenes, plan, scene_sources, slot_sources,
};
use crate::reconcile::publish::{self, Publication};
use crate::reconcile::wake::Quiet;

impl ProjectController {
    /// One plan, the publication of its decisions, and the start of its actions; returns
    /// the plan's on-air decisions (an operator's request is answered from them).
    pub(super) fn pass(&mut self, tasks: &mut JoinSet<Done>) -> Vec<OnAirDecision> {
        let all_scenes = self.ctx.scenes.borrow().clone();
        let by_name = PassScenes::new(&all_scenes, &self.ctx.project.id);
        self.follow_scenes_file(&by_name.scenes());
        let steering = self.steering(&by_name.scenes());
        let ctx = &self.ctx;
        let _timer = ctx.metrics.reconcile_duration.start_timer();
        let project = ctx.project.id.as_str();
        let scenes = by_name.scenes();
        let records = match ctx.executor.slots() {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(project = %project, error = %e, "cannot read the store; not planning");
                return Vec::new();
            }
        };
        let now_ms = ctx.executor.now_ms();
        self.observed.stamp_running(now_ms);
        let observed = &self.observed;
        let players = observed.players();
        let monitor = observed.sources();
        let desired = desired_scenes(project, &scenes, monitor, &records, players);
        let cleared = monitor.map(|m| cleared_slots(project, &scenes, m));
        let sources = monitor
            .map(|m| slot_sources(project, &scenes, m, Instant::now(), now_ms))
            .unwrap_or_default();
        let onair = ctx
            .executor
            .onair_records(scenes.iter().map(|s| s.name.as_str()));
        self.launcher.retry_changed(&by_name);
        let (busy_slots, busy_players) = self.launcher.busy().for_plan();
        let plan = plan(&PlanInput {
            project,
            prefix: &ctx.project.name_prefix,
            scenes: &desired,
            records: &records,
            observed: players,
            running_since: observed.running_since(),
            onair: &onair,
            busy_slots: &busy_slots,
            busy_players: &busy_players,
            held_updates: &self.launcher.busy().held_updates(),
            deleted: &observed.deleted(),
            strikes: observed.strikes(),
            now_ms,
            list_lag_ms: ctx.settings.list_lag.as_millis() as u64,
            max_players: ctx.project.limits.max_players,
            unseen_until_ms: ctx.unseen_until_ms,
            cleared: cleared.as_ref(),
            sources: &sources,
            steering: &steering,
        });
        ctx.metrics
            .reconcile_passes
            .with_label_values(&[project])
            .inc();
        let max_players = ctx.project.limits.max_players;
        self.waiting
            .note_over_quota(project, max_players, &plan.over_quota);

        // Publish before starting anything: the on-air switch must not wait for creates.
        let mut switches = Vec::new();
        let events = ctx.executor.events();
        for (scene, decision) in scenes.iter().zip(&plan.onair) {
            if let Some(switch) = publish::switch(scene, decision) {
                ctx.executor.record_onair(&scene.name, &decision.onair);
                events.record(publish::switch_event(events, &switch, &decision.previous));
                ctx.metrics
                    .onair_switches
                    .with_label_values(&[switch.reason.as_str()])
                    .inc();
                switches.push(switch);
            }
        }
        let source_status: BTreeMap<String, _> = monitor
            .map(|m| {
                scenes
                    .iter()
                    .map(|s| (s.name.clone(), scene_sources(s, m)))
                    .collect()
            })
            .unwrap_or_default();
        let rejected = self.launcher.busy().rejected();
        let statuses = publish::statuses(
            &Publication {
                project,
                rejected: &rejected,
                unauthorized: self.unauthorized(),
                scenes: &scenes,
                records: &records,
                players,
                strikes: &observed.all_strikes(&records),
                over_quota: &plan.over_quota,
                held: &plan.held,
                sources: &source_status,
                onair: &plan.onair,
                controls: &self.controls,
                drill: self.drill.as_ref().map(|d| (d.scene(), d.id())),
            },
            &ctx.metrics,
        );
        ctx.board.publish(project, statuses);
        self.onair_due = plan
            .onair_due_at_ms
            .map(|at| Instant::now() + Duration::from_millis(at.saturating_sub(now_ms)));
        if let Some(since) = self.notices_since.take() {
            let decided = since.elapsed().as_secs_f64();
            for switch in &switches {
                if matches!(
                    switch.reason,
                    SwitchReason::Failover | SwitchReason::NoHealthyPlayer
                ) {
                    ctx.metrics.failover_decision.observe(decided);
                }
            }
        }
        let switched = !switches.is_empty();
        if let Some(tx) = &ctx.switches {
            for switch in switches {
                let _ = tx.send(switch);
            }
        }
        self.quiet = (plan.actions.is_empty()
            && plan.held.is_empty()
            && plan.over_quota.is_empty()
            && busy_slots.is_empty()
            && busy_players.is_empty()
            && !observed.any_recently_deleted()
            && self.onair_due.is_none()
            && !switched)
            .then(|| Quiet {
                records: records.clone(),
                recheck_at_ms: plan.recheck_at_ms,
            });
        if ctx.sources.is_some() {
            self.waiting.note_held(project, &plan.held);
            self.launcher.note_held(&plan.held);
        }
        for (key, held) in publish::hold_changes(&self.held, &plan.held) {
            if let Some(scene) = by_name.get(&key.scene) {
                let source = scene.source_label(key.slot);
                let kind = if held {
                    EventKind::Held { source }
                } else {
                    EventKind::HoldReleased { source }
                };
                events.record(events.at_now(&key.scene, kind).slot(key.slot));
            }
        }
        self.held = plan.held;
        for action in plan.actions {
            self.launcher.start(action, &by_name, &records, tasks);
        }
        self.after_pass(&plan.onair, &records, now_ms);
        plan.onair
    }
}
