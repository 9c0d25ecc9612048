//! The reconcile loop of one project: observe, plan, start actions, repeat.
//!
//! Triggers are level-only: a poll tick, a notice in the inbox, a scene change, a
//! finished action, a hold-back expiring. Whatever woke it, the loop plans from the whole
//! picture. Actions run as tasks so a slow create never delays the next decision (a
//! `failed` notice switches the on-air player in the same pass it arrives, before any
//! replacement exists); a slot or player with work in flight or held back is "busy" and
//! not decided again until it is free.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::agora::ErrorClass;
use crate::agora::model::{ListedPlayer, PlayerStatus};
use crate::config::{Project, ReconcileSettings, ReportSettings, Scene};
use crate::model::SLATE_SLOT;
use crate::model::SlotKey;
use crate::model::StatusBoard;
use crate::model::Switch;
use crate::model::SwitchReason;
use crate::model::parse_name;
use crate::ncs::inbox::{Inbox, PlayerEvent};
use crate::probe::monitor::SourceMonitor;
use crate::reconcile::busy::Busy;
use crate::reconcile::creates::CreateQueue;
use crate::reconcile::evidence::{Evidence, ProbeAnswer};
use crate::reconcile::execute::{ExecError, Executor, Slots};
use crate::reconcile::launch::{Done, PassScenes, QueuedCreate};
use crate::reconcile::plan::{DesiredScene, PlanInput, plan};
use crate::reconcile::publish::{Picture, Publisher};
use crate::reconcile::sources::{self, SourceProbing};
use crate::reconcile::wake::{sleep_until_opt, tick_opt};
use crate::reconcile::{observe, spec};
use crate::telemetry::Metrics;

mod polling;
mod probing;

use polling::{Listed, Quiet};

/// How many List lags a player pullkeeper deleted is remembered as gone.
const DELETED_MEMORY_LAGS: u32 = 10;

/// Longest wait between Lists while List keeps failing.
const LIST_BACKOFF_CAP: Duration = Duration::from_secs(60);

/// What one project's controller needs.
pub struct ProjectController {
    pub project: Project,
    pub executor: Arc<Executor>,
    pub settings: ReconcileSettings,
    /// All scenes of the configuration; the controller keeps those of its project.
    pub scenes: watch::Receiver<Arc<Vec<Scene>>>,
    pub board: StatusBoard,
    pub metrics: Metrics,
    /// Set once the first complete List of the project succeeded.
    pub listed_once: Arc<AtomicBool>,
    /// Notices about this project's players; pushing wakes the loop.
    pub inbox: Arc<Inbox>,
    /// How many app reports within what window make a strike.
    pub reports: ReportSettings,
    /// Where on-air changes go (the app webhook), if anywhere.
    pub switches: Option<tokio::sync::mpsc::UnboundedSender<Switch>>,
    /// Unix ms until which slots List does not show get no player (see `PlanInput`).
    pub unseen_until_ms: u64,
    /// Source probes before replacements, if configured.
    pub sources: Option<SourceProbing>,
}

/// The controller's memory between passes.
#[derive(Default)]
struct Memory {
    busy: Busy,
    /// The last complete List, with notices and finished deletes folded in since.
    players: Option<Vec<ListedPlayer>>,
    /// Deleted players may still show in a List answered before the delete.
    recently_deleted: HashMap<String, Instant>,
    strikes: BTreeMap<SlotKey, u32>,
    /// Probe answers and app reports, per player id.
    evidence: Evidence,
    list_failures: usize,
    publisher: Publisher,
    /// When an on-air decision falls due (a revertive hold-down ending).
    decision_due: Option<Instant>,
    /// The slots over quota at the last pass, to log only changes.
    over_quota: Vec<SlotKey>,
    /// When the oldest notice not yet planned on arrived: a failover this pass publishes
    /// was decided that long after the notice that caused it.
    notices_since: Option<Instant>,
    /// Source verdicts and the probe schedule, when source probing is on.
    sources: Option<SourceMonitor>,
    /// Held slots at the last pass, to log only changes.
    held: Vec<SlotKey>,
    /// Set by a pass that decided nothing; see [`Quiet`].
    quiet: Option<Quiet>,
    /// Creates decided and not started yet; their slots are busy meanwhile.
    creates: CreateQueue<QueuedCreate>,
    /// A List is in flight (one at a time).
    listing: bool,
}

impl ProjectController {
    pub async fn run(mut self, cancel: CancellationToken) {
        let project = self.project.id.clone();
        self.metrics
            .tasks_limit
            .with_label_values(&[&project])
            .set(i64::from(self.project.limits.max_players));
        let mut poll = tokio::time::interval(self.settings.poll_interval);
        poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut tasks: JoinSet<Done> = JoinSet::new();
        let mut mem = Memory {
            sources: self
                .sources
                .as_ref()
                .map(|s| SourceMonitor::new(s.settings.interval, s.settings.max_interval)),
            creates: CreateQueue::for_rate(self.project.limits.qps.create_with_name.per_second),
            ..Memory::default()
        };
        let mut probe = self.settings.probe_interval.map(|every| {
            let mut i = tokio::time::interval_at(Instant::now() + every, every);
            i.set_missed_tick_behavior(MissedTickBehavior::Delay);
            i
        });

        loop {
            let wake_at = [
                mem.busy.next_expiry(),
                mem.decision_due,
                mem.sources.as_ref().and_then(SourceMonitor::next_due),
            ]
            .into_iter()
            .flatten()
            .min();
            // Everything but a notice may change what the plan sees outside the picture
            // (store, busy work, time, scenes, sources); a notice only through the picture.
            let mut replan = true;
            tokio::select! {
                _ = cancel.cancelled() => break,
                // The List runs as a task: waiting for List's rate limit (20 per minute)
                // must not hold up a notice's failover or a finished create's successor.
                _ = poll.tick(), if !mem.listing => {
                    mem.listing = true;
                    let client = self.executor.client.clone();
                    tasks.spawn(async move { Done::Listed(client.list_all(None).await) });
                    replan = false;
                }
                changed = self.scenes.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
                Some(done) = tasks.join_next(), if !tasks.is_empty() => match done {
                    // An adoption records a player as a create would.
                    Ok(Done::Adopt(key, ok)) => self.slot_ended(&mut mem.busy, key, ok, "create"),
                    Ok(Done::Listed(answer)) => {
                        mem.listing = false;
                        let listed = self.absorb_list(&mut mem, answer);
                        if let Listed::Failed(backoff) = listed {
                            poll.reset_at(Instant::now() + backoff);
                        }
                        if !matches!(listed, Listed::News) && self.still_quiet(&mem) {
                            self.metrics.reconcile_skipped.with_label_values(&[&project]).inc();
                            replan = false;
                        }
                    }
                    Ok(Done::Create(key, ok)) => {
                        mem.creates.finished();
                        self.slot_ended(&mut mem.busy, key, ok, "create");
                    }
                    Ok(Done::Update(key, ok)) => self.slot_ended(&mut mem.busy, key, ok, "update"),
                    Ok(Done::Player(id, ok)) => {
                        if ok {
                            if let Some(players) = &mut mem.players {
                                players.retain(|p| p.id != id);
                            }
                            mem.recently_deleted.insert(id.clone(), Instant::now());
                        }
                        if !ok {
                            self.metrics.retries.with_label_values(&["delete"]).inc();
                        }
                        mem.busy.player_done(id, ok);
                    }
                    Ok(Done::Probe { key, id, verdict }) => {
                        mem.busy.slots.remove(&key);
                        self.judge_probe(&mut mem, key, id, verdict);
                    }
                    Ok(Done::Source { url, outcome }) => self.judge_source(&mut mem, &url, outcome),
                    Err(e) => tracing::error!(project = %project, error = %e, "action task panicked"),
                },
                _ = tick_opt(&mut probe) => self.start_probes(&mut mem, &mut tasks),
                _ = self.inbox.notified() => replan = false,
                _ = sleep_until_opt(wake_at) => {}
            }
            let changed = self.fold_notices(&mut mem);
            if mem.players.is_some() && (replan || changed) {
                self.pass(&mut mem, &mut tasks);
            } else if !changed {
                // Notices that repeated the picture caused no decision to time.
                mem.notices_since = None;
            }
            self.start_creates(&mut mem.creates, &mut tasks);
        }
        // Shutdown: in-flight calls finish (the caller bounds the wait); nothing new starts,
        // and no player is deleted because pullkeeper stops.
        while tasks.join_next().await.is_some() {}
    }

    /// A slot's action ended: its slot is free, or cools down if it failed (counted as a
    /// retry of `action`).
    fn slot_ended(&self, busy: &mut Busy, key: SlotKey, ok: bool, action: &str) {
        if !ok {
            self.metrics.retries.with_label_values(&[action]).inc();
        }
        busy.slot_done(key, ok);
    }

    /// Probes every slot's current player that List shows alive and nobody is busy with.
    ///
    /// A probe is an Update too, so its slot is busy meanwhile: a real Update sent at the
    /// same time could arrive second with the lower sequence and be ignored (§1.7).
    fn start_probes(&self, mem: &mut Memory, tasks: &mut JoinSet<Done>) {
        let (Some(players), Ok(records)) = (&mem.players, self.records()) else {
            return;
        };
        let (busy_slots, _) = mem.busy.for_plan();
        let due: Vec<_> = records
            .iter()
            .filter_map(|(key, record)| Some((record.id.clone()?, key.clone(), record.clone())))
            .filter(|(id, key, _)| {
                let listed = players
                    .iter()
                    .any(|p| &p.id == id && !crate::model::is_dead(p.status));
                listed && !busy_slots.contains(key)
            })
            .collect();
        if !mem.evidence.start_round(due.len()) {
            return;
        }
        for (id, key, record) in due {
            mem.busy.slots.insert(key.clone());
            let exec = self.executor.clone();
            tasks.spawn(async move {
                let verdict = match exec.probe(record.region, &id).await {
                    Ok(()) => Some(ProbeAnswer::Healthy),
                    Err(ExecError::Api(e)) => match e.class() {
                        ErrorClass::NotFound => Some(ProbeAnswer::Gone),
                        ErrorClass::Server => Some(ProbeAnswer::ServerError),
                        _ => None,
                    },
                    Err(ExecError::Store(_)) => None,
                };
                Done::Probe { key, id, verdict }
            });
        }
    }

    /// Counts a probe's answer (see `evidence`); the scene's threshold of consecutive
    /// strikes fails the player exactly as a `failed` notice would.
    fn judge_probe(
        &self,
        mem: &mut Memory,
        key: SlotKey,
        id: String,
        verdict: Option<ProbeAnswer>,
    ) {
        let threshold = self.threshold(&key.scene);
        for failed in mem.evidence.probe_answered(&id, verdict, threshold) {
            fail_player(mem, &failed);
        }
    }

    /// Counts an app's stall report (see `evidence`).
    fn judge_report(&self, mem: &mut Memory, id: &str, name: Option<&str>) {
        let scene = name
            .and_then(|n| parse_name(&self.project.name_prefix, n))
            .map(|p| p.scene)
            .unwrap_or_default();
        let failed = mem.evidence.report(
            id,
            Instant::now(),
            self.reports.window,
            self.reports.threshold,
            self.threshold(&scene),
        );
        if failed {
            fail_player(mem, id);
        }
    }

    /// The strike threshold of a scene of this project (never, for an unknown scene).
    fn threshold(&self, scene: &str) -> u32 {
        self.scenes
            .borrow()
            .iter()
            .find(|s| s.project == self.project.id && s.name == scene)
            .map_or(u32::MAX, |s| s.strike_threshold)
    }

    /// Folds the inbox into the picture; returns whether anything changed in it (under a
    /// flood of repeated notices, a pass per notice would be most of the CPU).
    fn fold_notices(&self, mem: &mut Memory) -> bool {
        let (mut observations, since) = self.inbox.drain_since();
        if let Some(at) = since {
            mem.notices_since.get_or_insert(at);
        }
        let mut changed = false;
        observations.retain(|o| {
            let stalled = o.event == PlayerEvent::Stalled;
            if stalled {
                self.judge_report(mem, &o.player_id, o.name.as_deref());
                changed = true;
            }
            !stalled
        });
        let Some(players) = &mut mem.players else {
            return changed;
        };
        for observation in observations {
            let ours =
                |id: &str| mem.recently_deleted.contains_key(id) || mem.busy.players.contains(id);
            changed |= observe::fold(players, observation, ours);
        }
        changed
    }

    fn records(&self) -> Result<Arc<Slots>, crate::store::StoreError> {
        self.executor.slots()
    }

    /// One plan, the publication of its picture, and the start of its actions.
    fn pass(&self, mem: &mut Memory, tasks: &mut JoinSet<Done>) {
        let _timer = self.metrics.reconcile_duration.start_timer();
        let project = &self.project.id;
        let all_scenes = self.scenes.borrow().clone();
        let by_name = PassScenes::new(&all_scenes, project);
        let scenes = by_name.scenes();
        let records = match self.records() {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(project = %project, error = %e, "cannot read the store; not planning");
                return;
            }
        };
        let players = mem.players.as_deref().unwrap_or(&[]);
        let monitor = mem.sources.as_ref();
        let desired: Vec<DesiredScene> = scenes
            .iter()
            .map(|s| {
                let (live, fixed) = spec::desired(s, 0);
                let slot_urls = (1..=s.backups)
                    .chain([SLATE_SLOT])
                    .map(|slot| (slot, s.slot_url(slot)))
                    .filter(|(_, url)| *url != live.stream_url)
                    .map(|(slot, url)| (slot, url.to_string()))
                    .collect();
                DesiredScene {
                    name: s.name.clone(),
                    slots: s.backups + 1,
                    priority: s.priority,
                    strike_threshold: s.strike_threshold,
                    live,
                    slot_urls,
                    fixed,
                    uids: s.uids,
                    slate: monitor
                        .is_some_and(|m| sources::slate_wanted(project, s, m, &records, players)),
                }
            })
            .collect();
        let cleared = monitor.map(|m| sources::cleared(project, &scenes, m));
        let source_status: BTreeMap<String, _> = monitor
            .map(|m| {
                scenes
                    .iter()
                    .map(|s| (s.name.clone(), sources::scene_sources(s, m)))
                    .collect()
            })
            .unwrap_or_default();
        let now_ms = self.executor.clock.now_ms();
        let (busy_slots, busy_players) = mem.busy.for_plan();
        let deleted: BTreeSet<String> = mem.recently_deleted.keys().cloned().collect();
        let plan = plan(&PlanInput {
            project,
            prefix: &self.project.name_prefix,
            scenes: &desired,
            records: &records,
            observed: players,
            busy_slots: &busy_slots,
            busy_players: &busy_players,
            deleted: &deleted,
            strikes: &mem.strikes,
            now_ms,
            list_lag_ms: self.settings.list_lag.as_millis() as u64,
            max_players: self.project.limits.max_players,
            unseen_until_ms: self.unseen_until_ms,
            cleared: cleared.as_ref(),
        });
        self.metrics
            .reconcile_passes
            .with_label_values(&[project])
            .inc();
        if plan.over_quota != mem.over_quota {
            let slots: Vec<String> = plan.over_quota.iter().map(ToString::to_string).collect();
            tracing::warn!(project = %project, max_players = self.project.limits.max_players,
                ?slots, "slots waiting for quota changed");
            mem.over_quota = plan.over_quota.clone();
        }
        // Publish before starting anything: the on-air switch must not wait for creates.
        let mut strikes = mem.strikes.clone();
        for (key, record) in records.iter() {
            if let Some(id) = &record.id {
                let s = strikes.entry(key.clone()).or_insert(0);
                *s = (*s).max(mem.evidence.strikes(id));
            }
        }
        let picture = Picture {
            project,
            prefix: &self.project.name_prefix,
            scenes: &scenes,
            records: &records,
            players,
            strikes: &strikes,
            over_quota: &plan.over_quota,
            held: &plan.held,
            sources: &source_status,
            now_ms,
        };
        let published = mem
            .publisher
            .publish(&picture, &self.executor.store, &self.metrics);
        self.board.publish(project, published.statuses);
        mem.decision_due = published
            .wake_at_ms
            .map(|at| Instant::now() + Duration::from_millis(at.saturating_sub(now_ms)));
        if let Some(since) = mem.notices_since.take() {
            let decided = since.elapsed().as_secs_f64();
            for switch in &published.switches {
                if matches!(
                    switch.reason,
                    SwitchReason::Failover | SwitchReason::NoHealthyPlayer
                ) {
                    self.metrics.failover_decision.observe(decided);
                }
            }
        }
        let switched = !published.switches.is_empty();
        if let Some(tx) = &self.switches {
            for switch in published.switches {
                let _ = tx.send(switch);
            }
        }
        mem.quiet = (plan.actions.is_empty()
            && plan.held.is_empty()
            && plan.over_quota.is_empty()
            && busy_slots.is_empty()
            && busy_players.is_empty()
            && mem.recently_deleted.is_empty()
            && mem.decision_due.is_none()
            && !switched)
            .then(|| Quiet {
                records: records.clone(),
                recheck_at_ms: plan.recheck_at_ms,
            });
        self.probe_sources(mem, &scenes, &plan.held, tasks);
        for action in plan.actions {
            self.start(
                action,
                &by_name,
                &records,
                &mut mem.busy,
                &mut mem.creates,
                tasks,
            );
        }
    }
}

/// Marks a player failed in the picture, exactly as a `failed` notice would.
fn fail_player(mem: &mut Memory, id: &str) {
    if let Some(p) = mem.players.iter_mut().flatten().find(|p| p.id == id) {
        p.status = Some(PlayerStatus::Failed);
    }
}
