//! The reconcile loop of one project: a signal arrives, it is applied to what is
//! observed, the plan decides, the executor starts the actions, the pass is published.
//!
//! Triggers are level-only: a poll tick, a notice in the inbox, a scene change, a
//! finished action, a source verdict that changed (or that a held slot waited for), a
//! hold-back expiring. Whatever woke it, the loop plans from the whole picture. Actions
//! run as tasks so a slow create never delays the next decision (a `failed` notice
//! switches the on-air player in the same pass it arrives, before any replacement
//! exists); a slot or player with work in flight or held back is busy and
//! not decided again until it is free.
//!
//! An operator's request (a manual switch, a pin, maintenance, a drill) arrives in the
//! project's control mailbox as a typed value; the controller turns it into steering for
//! the plan, runs a pass at once, and answers with what the plan decided (see
//! `control`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::agora::wire::ListedPlayer;
use crate::agora::{ApiError, ErrorClass};
use crate::config::{Project, ReconcileSettings, ReportSettings, Scene};
use crate::model::{
    ControlMailbox, Drills, EventKind, SceneControl, SlotKey, StatusBoard, Switch, is_dead,
    parse_name,
};
use crate::ncs::inbox::{Acknowledged, Drained, Inbox, PlayerEvent};
use crate::reconcile::execute::{Done, Executor, Launcher, Outcome, PassScenes};
use crate::reconcile::observe::{ListNews, Observed};
use crate::reconcile::plan::OnAirRequest;
use crate::reconcile::publish::{UidsFree, Waiting};
use crate::reconcile::source_probes::{self, SourceProbing};
use crate::reconcile::wake::{ListBackoff, Quiet, sleep_until_opt, tick_opt};
use crate::telemetry::Metrics;

mod applied;
mod control;
mod drill;
mod pass;

/// What one project's controller is given by the wiring.
pub struct Context {
    pub project: Project,
    pub executor: Arc<Executor>,
    pub settings: ReconcileSettings,
    /// All scenes of the configuration; the controller keeps those of its project.
    pub scenes: watch::Receiver<Arc<Vec<Scene>>>,
    pub board: StatusBoard,
    pub metrics: Metrics,
    /// Notices about this project's players; pushing wakes the loop.
    pub inbox: Arc<Inbox>,
    /// How many app reports within what window make a strike.
    pub reports: ReportSettings,
    /// Where on-air changes go (the app webhook), if anywhere.
    pub switches: Option<mpsc::UnboundedSender<Switch>>,
    /// Unix ms until which slots List does not show get no player (see `PlanInput`).
    pub unseen_until_ms: u64,
    /// Source probes before replacements, if configured.
    pub sources: Option<SourceProbing>,
    /// Operators' requests about this project's scenes; sending wakes the loop.
    pub control: Arc<ControlMailbox>,
    /// Where drills report their steps (`GET /v1/drills/{id}`).
    pub drills: Drills,
}

/// One project's controller: its context and the loop's state.
pub struct ProjectController {
    ctx: Context,
    observed: Observed,
    launcher: Launcher,
    waiting: Waiting,
    list_backoff: ListBackoff,
    /// A List is in flight (one at a time).
    listing: bool,
    /// When the List in flight (or the last one) was started.
    list_started: Instant,
    /// Whether a List has answered yet: the first answer goes to the start-up log.
    listed_once: bool,
    /// When an on-air decision falls due (a revertive hold-down ending).
    onair_due: Option<Instant>,
    /// Set by a pass that decided nothing; see [`Quiet`].
    quiet: Option<Quiet>,
    /// When the oldest notice not yet planned on arrived: a failover this pass publishes
    /// was decided that long after the notice that caused it.
    notices_since: Option<Instant>,
    /// The free-UID gauge of the project's scenes.
    uids_free: UidsFree,
    /// The slots the last pass held for their source.
    held: Vec<SlotKey>,
    /// A List or a check was answered 401 since the last List that worked: the
    /// project's credentials are refused (what else a 401 held back waits for a List
    /// that works, see `Busy`).
    refused_credentials: bool,
    /// Acknowledged notices folded into the picture whose consequence is not durable
    /// yet (see [`applied`]).
    unapplied: Vec<Acknowledged>,
    /// Each scene's pin and maintenance, as the store keeps them (read once per term,
    /// written through).
    controls: BTreeMap<String, SceneControl>,
    /// Operators' one-shot requests for the next pass, by scene.
    requests: BTreeMap<String, OnAirRequest>,
    /// The drill running in this project, if any (one at a time).
    drill: Option<drill::Drill>,
}

impl ProjectController {
    pub fn new(ctx: Context) -> ProjectController {
        let launcher = Launcher::new(
            ctx.executor.clone(),
            ctx.project.clone(),
            ctx.metrics.clone(),
            ctx.settings.rejected_retry,
        );
        let controls = ctx.executor.scene_controls().unwrap_or_else(|e| {
            tracing::error!(project = %ctx.project.id, error = %e,
                "cannot read the scenes' pins and maintenance; starting without them");
            BTreeMap::new()
        });
        ProjectController {
            controls,
            requests: BTreeMap::new(),
            drill: None,
            observed: Observed::new(ctx.sources.as_ref().map(SourceProbing::monitor)),
            launcher,
            waiting: Waiting::default(),
            list_backoff: ListBackoff::default(),
            listing: false,
            list_started: Instant::now(),
            listed_once: false,
            onair_due: None,
            quiet: None,
            notices_since: None,
            uids_free: UidsFree::default(),
            held: Vec::new(),
            refused_credentials: false,
            unapplied: Vec::new(),
            ctx,
        }
    }

    /// Boxed: a future keeps its `self` argument and the moved-in copy apart, and the
    /// term around it another, so a controller run by value took about 12 KiB per project
    /// where its state is 2.4 KiB.
    pub async fn run(mut self: Box<Self>, cancel: CancellationToken) {
        let project = self.ctx.project.id.clone();
        self.ctx
            .metrics
            .tasks_limit
            .with_label_values(&[&project])
            .set(i64::from(self.ctx.project.limits.max_players));
        let mut poll = tokio::time::interval(self.ctx.settings.poll_interval);
        poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut checks = self.ctx.settings.check_interval.map(delayed_interval);
        let mut tasks: JoinSet<Done> = JoinSet::new();
        // Probes only read, so shutdown abandons them (dropping the set aborts them)
        // rather than wait up to a probe timeout.
        let mut probes: JoinSet<Done> = JoinSet::new();
        loop {
            let wake_at = [self.launcher.busy().next_expiry(), self.onair_due]
                .into_iter()
                .flatten()
                .min();
            let probe_at = self.observed.sources().and_then(|m| m.next_due());
            // Everything but a notice may change what the plan sees besides the players
            // (store, busy work, time, scenes, sources); a notice only through them.
            let mut replan = true;
            tokio::select! {
                _ = cancel.cancelled() => break,
                // The List runs as a task: waiting for List's rate limit (20 per minute)
                // must not hold up a notice's failover or a finished create's successor.
                _ = poll.tick(), if !self.listing => {
                    self.listing = true;
                    self.list_started = Instant::now();
                    let exec = self.ctx.executor.clone();
                    tasks.spawn(async move { Done::List(exec.list_all().await) });
                    replan = false;
                }
                changed = self.ctx.scenes.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
                Some(done) = tasks.join_next(), if !tasks.is_empty() => match done {
                    Ok(Done::List(answer)) => {
                        self.listing = false;
                        replan = self.on_list(answer, &mut poll);
                    }
                    Ok(done) => replan = self.finished(done),
                    Err(e) if e.is_cancelled() => tracing::debug!(project = %project, "action task cancelled"),
                    Err(e) => tracing::error!(project = %project, error = %e, "action task panicked"),
                },
                Some(done) = probes.join_next(), if !probes.is_empty() => match done {
                    Ok(done) => replan = self.finished(done),
                    Err(e) if e.is_cancelled() => tracing::debug!(project = %project, "probe task cancelled"),
                    Err(e) => tracing::error!(project = %project, error = %e, "probe task panicked"),
                },
                _ = tick_opt(&mut checks) => self.start_checks(&mut tasks),
                _ = self.ctx.inbox.notified() => replan = false,
                // Runs its own passes, each request's answer coming from one.
                _ = self.ctx.control.notified() => {
                    self.on_control(&mut tasks).await;
                    replan = false;
                }
                _ = sleep_until_opt(wake_at) => {}
                // A probe falling due changes nothing the plan sees until it returns.
                _ = sleep_until_opt(probe_at) => replan = false,
            }
            // Notices wait for the first List: folded into no picture they would be lost,
            // and one acknowledged before a restart is replayed into the inbox at start.
            let changed = self.observed.listed() && self.apply_notices();
            self.record_detections();
            if self.observed.listed() && (replan || changed) {
                self.pass(&mut tasks);
            } else if !changed {
                // Notices that repeated the picture caused no decision to time.
                self.notices_since = None;
            }
            self.launcher.start_creates(&mut tasks);
            self.settle_notices();
            self.start_probes(&mut probes);
            self.ctx
                .metrics
                .api_unauthorized
                .with_label_values(&[&project])
                .set(i64::from(self.unauthorized()));
        }
        // Shutdown: in-flight calls finish (the caller bounds the wait); nothing new starts,
        // and no player is deleted because pullkeeper stops.
        while tasks.join_next().await.is_some() {}
    }

    /// Applies a List's answer; returns whether it calls for a pass: not when it brought
    /// nothing new (or failed) and the last pass was quiet. A failing List is an outage
    /// of Agora's API, counted and alerted on, and never evidence against a player.
    fn on_list(
        &mut self,
        answer: Result<Vec<ListedPlayer>, ApiError>,
        poll: &mut Interval,
    ) -> bool {
        let ctx = &self.ctx;
        let project = &ctx.project.id;
        let players = match answer {
            Ok(players) => players,
            // Shutting down: not an outage, and the loop ends next.
            Err(e) if e.class() == ErrorClass::Stopped => return !self.still_quiet(),
            Err(e) => {
                self.refused_credentials |= e.status() == Some(401);
                ctx.metrics.api_outage.with_label_values(&[project]).set(1);
                poll.reset_at(
                    Instant::now() + self.list_backoff.failed(ctx.settings.poll_interval),
                );
                tracing::warn!(project = %project, error = %e, failures = self.list_backoff.failures(),
                    "List failed; acting on per-player evidence only");
                return !self.still_quiet();
            }
        };
        if !self.listed_once {
            self.listed_once = true;
            // A slow start is told apart from a stuck one by each project's first List.
            tracing::info!(project = %project, players = players.len(),
                duration_ms = self.list_started.elapsed().as_millis() as u64, "first List");
        }
        let scenes = ctx.scenes.borrow().clone();
        ctx.executor
            .note_uids(&players, &ctx.project.name_prefix, &scenes);
        let now_ms = ctx.executor.now_ms();
        let records = ctx.executor.slots().ok();
        let threshold = |scene: &str| {
            scenes
                .iter()
                .find(|s| s.project == *project && s.name == scene)
                .map_or(u32::MAX, |s| s.strike_threshold)
        };
        let news = self.observed.apply_list(
            players,
            records.as_deref(),
            now_ms,
            ctx.settings.list_lag,
            threshold,
        );
        ctx.metrics
            .last_list_success
            .with_label_values(&[project])
            .set(now_ms as f64 / 1000.0);
        ctx.metrics.api_outage.with_label_values(&[project]).set(0);
        if self.list_backoff.succeeded() {
            tracing::info!(project = %project, "List works again");
        }
        if std::mem::take(&mut self.refused_credentials) {
            tracing::info!(project = %project, "Agora accepts the project's credentials again");
        }
        self.launcher.authorized();
        let calls_for_pass = news == ListNews::News || !self.still_quiet();
        self.uids_free
            .refresh(&ctx.project.id, &scenes, &ctx.executor, &ctx.metrics);
        calls_for_pass
    }

    /// Whether Agora refuses the project's credentials: a List or check answered 401
    /// since the last List that worked, or an action held back by a 401.
    fn unauthorized(&self) -> bool {
        self.refused_credentials || self.launcher.busy().any_unauthorized()
    }

    /// Whether the last pass decided nothing and would decide nothing again now, given
    /// unchanged players (see [`Quiet`]); counted as a skipped pass when so.
    fn still_quiet(&self) -> bool {
        let ctx = &self.ctx;
        let quiet = self.quiet.as_ref().is_some_and(|quiet| {
            ctx.executor
                .slots()
                .is_ok_and(|records| quiet.still(&records, ctx.executor.now_ms()))
        });
        if quiet {
            let skipped = &ctx.metrics.reconcile_skipped;
            skipped.with_label_values(&[&ctx.project.id]).inc();
        }
        quiet
    }

    /// Takes in a finished action or probe; returns whether it calls for a pass. A probe
    /// that repeats its source's verdict does not, unless a held slot waits for it: with
    /// every source probed every few seconds, a pass per probe would be most of the work.
    fn finished(&mut self, done: Done) -> bool {
        match done {
            // An adoption records a player as a create would.
            Done::Adopt(key, ok) => {
                let outcome = if ok { Outcome::Done } else { Outcome::Failed };
                self.launcher.slot_done(key, outcome, "create");
            }
            Done::Create(key, outcome) => self.launcher.create_done(key, outcome),
            Done::Update(key, outcome) => self.launcher.update_done(key, outcome),
            Done::Delete(id, outcome) => {
                if outcome == Outcome::Done {
                    self.observed.apply_deleted(id.clone());
                }
                self.launcher.delete_done(id, outcome);
            }
            Done::Check {
                key,
                id,
                answer,
                unauthorized,
            } => {
                self.refused_credentials |= unauthorized;
                self.launcher.check_done(&key);
                let threshold = self.threshold(&key.scene);
                self.observed.apply_check(&id, answer, threshold);
            }
            Done::Source { url, finding } => {
                let change = self.observed.apply_source(&url, finding.verdict);
                let waited_for = self
                    .observed
                    .sources()
                    .is_some_and(|m| m.fresh(&url).is_some());
                if let Some(change) = &change {
                    let all = self.ctx.scenes.borrow().clone();
                    let scenes = PassScenes::new(&all, &self.ctx.project.id);
                    source_probes::log_change(
                        &self.ctx.project.id,
                        &scenes.scenes(),
                        &url,
                        change,
                        &finding,
                    );
                }
                return change.is_some() || waited_for;
            }
            Done::List(_) => unreachable!("Lists are taken in by on_list"),
        }
        true
    }

    /// Records the failures the signals just applied found, before the pass that acts
    /// on them publishes anything.
    fn record_detections(&mut self) {
        let events = self.ctx.executor.events();
        for d in self.observed.take_detections() {
            let Some(name) = d.name else { continue };
            let kind = EventKind::FailureDetected {
                signal: d.signal,
                detail: d.detail,
            };
            events.player(&name, d.uid, kind);
        }
    }

    /// Starts the source probes that are due, on the scenes as they are now.
    fn start_probes(&mut self, tasks: &mut JoinSet<Done>) {
        let (Some(probing), Some(monitor)) = (&self.ctx.sources, self.observed.source_schedule())
        else {
            return;
        };
        let all = self.ctx.scenes.borrow().clone();
        let scenes = PassScenes::new(&all, &self.ctx.project.id);
        probing.start_due(monitor, &scenes.scenes(), &self.held, tasks);
    }

    /// Checks every slot's current player that List shows alive and nobody is busy with.
    fn start_checks(&mut self, tasks: &mut JoinSet<Done>) {
        let Ok(records) = self.ctx.executor.slots() else {
            return;
        };
        // Refused credentials would refuse every check too.
        if !self.observed.listed() || self.unauthorized() {
            return;
        }
        let players = self.observed.players();
        let (busy_slots, _) = self.launcher.busy().for_plan();
        let due: Vec<_> = records
            .iter()
            .filter_map(|(key, record)| Some((record.id.clone()?, key.clone(), record.region)))
            .filter(|(id, key, _)| {
                let alive = players.iter().any(|p| &p.id == id && !is_dead(p.status));
                alive && !busy_slots.contains(key)
            })
            .collect();
        if self.observed.start_check_round(due.len()) {
            self.launcher.start_checks(due, tasks);
        }
    }

    /// The strike threshold of a scene of this project (never, for an unknown scene).
    fn threshold(&self, scene: &str) -> u32 {
        self.ctx
            .scenes
            .borrow()
            .iter()
            .find(|s| s.project == self.ctx.project.id && s.name == scene)
            .map_or(u32::MAX, |s| s.strike_threshold)
    }

    /// Applies the inbox's notices; returns whether the picture changed (under a flood
    /// of repeated notices, a pass per notice would be most of the CPU).
    fn apply_notices(&mut self) -> bool {
        let Drained {
            observations,
            since,
            acknowledged,
        } = self.ctx.inbox.drain_all();
        if let Some(at) = since {
            self.notices_since.get_or_insert(at);
        }
        let mut changed = false;
        let mut others = Vec::with_capacity(observations.len());
        for o in observations {
            if o.event == PlayerEvent::Stalled {
                let scene = o
                    .name
                    .as_deref()
                    .and_then(|n| parse_name(&self.ctx.project.name_prefix, n))
                    .map(|p| p.scene)
                    .unwrap_or_default();
                let (reports, threshold) = (&self.ctx.reports, self.threshold(&scene));
                self.observed.apply_report(
                    &o.player_id,
                    reports.window,
                    reports.threshold,
                    threshold,
                );
                changed = true;
            } else {
                others.push(o);
            }
        }
        for o in others {
            changed |= self
                .observed
                .apply_notice(o, self.launcher.busy().deleting());
        }
        // Forgotten only once what they caused is durable (`settle_notices`).
        self.unapplied.extend(acknowledged);
        changed
    }
}

/// An interval whose first tick is one period from now.
fn delayed_interval(every: Duration) -> Interval {
    let mut interval = tokio::time::interval_at(Instant::now() + every, every);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    interval
}
