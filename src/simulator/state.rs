//! Projects, live players and history: the simulated Agora back end.
//!
//! Operations here are synchronous and take the simulator instant as an argument, so
//! they run under one lock and are easy to reason about. Each returns the NCS events it
//! caused; the caller delivers them after releasing the lock.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use serde::Serialize;
use tokio::time::Instant;

use super::clock::SimClock;
use super::config::{SimProject, SourceLoss};
use super::ncs::Event;
use super::rate::RateWindow;
use super::sources::{SourceMode, SourceState, source_name};
use crate::agora::wire::{CreatePlayer, PlayerStatus, Region};
use crate::ncs::notice::{
    EVENT_PLAYER_CREATED, EVENT_PLAYER_DESTROYED, EVENT_PLAYER_STATUS, MediaPullPayload,
    NoticePlayer,
};

/// A live player as the simulator sees it (`players()`, `GET /_sim/projects/{app}/players`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SimPlayer {
    pub id: String,
    pub name: Option<String>,
    pub channel_name: String,
    pub stream_url: String,
    pub uid: Option<u64>,
    pub account: Option<String>,
    pub token: Option<String>,
    pub idle_timeout: i64,
    pub create_ts: i64,
    pub status: PlayerStatus,
    /// The region path segment it was created under; `None` for foreign players.
    pub region: Option<Region>,
    /// Audio volume 0..=200 (§1.7, default 100).
    pub volume: u32,
    /// Highest Update sequence applied so far.
    pub last_sequence: Option<u64>,
    /// Created through the control API, i.e. not by the client under test.
    pub foreign: bool,
}

/// Every player ever created, including deleted ones (`history()`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    pub app_id: String,
    pub id: String,
    pub name: Option<String>,
    pub channel_name: String,
    pub uid: Option<u64>,
    pub account: Option<String>,
    pub create_ts: i64,
    /// Simulator time of creation, ms since start.
    pub created_at_ms: u64,
    /// The same in µs, on the clock of [`SimHandle::elapsed_us`](super::SimHandle::elapsed_us):
    /// when the Create request was served, for latency benchmarks.
    pub created_at_us: u64,
    /// Simulator time the player first turned `failed` (tests' `fail`), if it did.
    pub failed_at_ms: Option<u64>,
    pub deleted_at_ms: Option<u64>,
    pub destroy_reason: Option<String>,
    pub foreign: bool,
}

/// Requests a well-behaved client never causes: each one Agora would have refused with
/// 429 (`GET /_sim/violations`). Injected faults are not counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Violations {
    /// Requests over a QPS window of their API (§1.10).
    pub qps: u64,
    /// Creates over the project's player quota.
    pub quota: u64,
}

/// Which QPS window a request falls in (§1.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    CreateWithName,
    CreateWithoutName,
    Delete,
    List,
    ListFiltered,
    Update,
}

pub(crate) struct LivePlayer {
    pub player: SimPlayer,
    /// Creation order; ties on `createTs` (whole seconds) are broken by it.
    pub seq: u64,
    pub created_at: Instant,
    /// When `connecting` turns into `running`.
    pub connect_due: Option<Instant>,
    /// With [`SourceLoss::Linger`], when a player whose source stopped is destroyed.
    pub idle_due: Option<Instant>,
}

/// A List continuation: the last player returned and the filter it was made for.
pub(crate) struct Cursor {
    pub after_seq: u64,
    pub filter: Option<String>,
}

pub(crate) struct Project {
    pub config: SimProject,
    pub players: Vec<LivePlayer>,
    pub rates: HashMap<Api, RateWindow>,
    pub cursors: HashMap<String, Cursor>,
}

pub(crate) struct State {
    pub projects: HashMap<String, Project>,
    pub history: Vec<HistoryEntry>,
    pub violations: Violations,
    /// Sources not listed here are up.
    pub sources: HashMap<String, SourceState>,
    next_seq: u64,
    /// Pending `connecting -> running` transitions, earliest first: `(due, app_id, seq)`.
    /// Every request settles due transitions, so scanning all players instead would make
    /// each request O(players) (50,000 in the scale benchmark).
    transitions: BinaryHeap<Reverse<(Instant, String, u64)>>,
    /// What a running player does when its source stops.
    source_loss: SourceLoss,
    /// Pending idle-timeout destructions, earliest first, like `transitions`.
    idle: BinaryHeap<Reverse<(Instant, String, u64)>>,
}

impl State {
    pub fn new(projects: &[SimProject], source_loss: SourceLoss) -> State {
        let projects = projects
            .iter()
            .map(|p| {
                let project = Project {
                    config: p.clone(),
                    players: Vec::new(),
                    rates: HashMap::new(),
                    cursors: HashMap::new(),
                };
                (p.app_id.clone(), project)
            })
            .collect();
        State {
            projects,
            history: Vec::new(),
            violations: Violations::default(),
            sources: HashMap::new(),
            next_seq: 0,
            transitions: BinaryHeap::new(),
            source_loss,
            idle: BinaryHeap::new(),
        }
    }

    /// Whether a player pulling `stream_url` can play: simulator sources must be up.
    fn plays(sources: &HashMap<String, SourceState>, stream_url: &str) -> bool {
        source_name(stream_url)
            .and_then(|name| sources.get(name))
            .is_none_or(|s| s.mode == SourceMode::Up)
    }

    /// Applies every `connecting -> running` transition due at `now` (`failed` when the
    /// source does not play); returns the events and the earliest transition still pending.
    pub fn settle(&mut self, clock: &SimClock, now: Instant) -> (Vec<Event>, Option<Instant>) {
        let mut events = Vec::new();
        while let Some(Reverse((due, _, _))) = self.transitions.peek() {
            if *due > now {
                break;
            }
            let Some(Reverse((due, app_id, seq))) = self.transitions.pop() else {
                break;
            };
            // A player deleted or failed since has no (or another) transition pending.
            let Some(live) = self.projects.get_mut(&app_id).and_then(|p| {
                let i = p.players.binary_search_by_key(&seq, |l| l.seq).ok()?;
                Some(&mut p.players[i])
            }) else {
                continue;
            };
            if live.connect_due != Some(due) {
                continue;
            }
            live.connect_due = None;
            live.player.status = if State::plays(&self.sources, &live.player.stream_url) {
                PlayerStatus::Running
            } else {
                PlayerStatus::Failed
            };
            // `lts` is when the transition happened, not when it was noticed.
            events.push(status_event(&app_id, &live.player, clock.wall_ms(due)));
        }
        events.extend(self.settle_idle(clock, now));
        let next = [&self.transitions, &self.idle]
            .into_iter()
            .filter_map(|heap| heap.peek().map(|Reverse((due, _, _))| *due))
            .min();
        (events, next)
    }

    /// Destroys the players whose source has been gone for their `idleTimeout` (§2.3
    /// `"Idle Timeout"`).
    fn settle_idle(&mut self, clock: &SimClock, now: Instant) -> Vec<Event> {
        let mut events = Vec::new();
        while let Some(Reverse((due, _, _))) = self.idle.peek() {
            if *due > now {
                break;
            }
            let Some(Reverse((due, app_id, seq))) = self.idle.pop() else {
                break;
            };
            let id = self.projects.get(&app_id).and_then(|p| {
                let i = p.players.binary_search_by_key(&seq, |l| l.seq).ok()?;
                let live = &p.players[i];
                (live.idle_due == Some(due)).then(|| live.player.id.clone())
            });
            if let Some(event) =
                id.and_then(|id| self.remove(clock, &app_id, &id, "Idle Timeout", due))
            {
                events.push(event);
            }
        }
        events
    }

    /// Inserts a validated player; limits and uniqueness are the caller's business.
    #[allow(clippy::too_many_arguments)]
    pub fn insert(
        &mut self,
        clock: &SimClock,
        app_id: &str,
        req: CreatePlayer,
        region: Option<Region>,
        now: Instant,
        connect_due: Instant,
        request_id: &str,
        foreign: bool,
    ) -> Option<(SimPlayer, Event)> {
        let project = self.projects.get_mut(app_id)?;
        let uid = match req.uid {
            Some(0) => Some(free_uid(project, &req.channel_name)),
            other => other,
        };
        let player = SimPlayer {
            id: uuid::Uuid::new_v4().simple().to_string(),
            name: req.name,
            channel_name: req.channel_name,
            stream_url: req.stream_url,
            uid,
            account: req.account,
            token: req.token,
            idle_timeout: req.idle_timeout.unwrap_or(300),
            create_ts: clock.unix_s(now),
            status: PlayerStatus::Connecting,
            region,
            volume: 100,
            last_sequence: None,
            foreign,
        };
        self.history.push(HistoryEntry {
            app_id: app_id.to_string(),
            id: player.id.clone(),
            name: player.name.clone(),
            channel_name: player.channel_name.clone(),
            uid: player.uid,
            account: player.account.clone(),
            create_ts: player.create_ts,
            created_at_ms: clock.elapsed_ms(now),
            created_at_us: clock.elapsed_us(now),
            failed_at_ms: None,
            deleted_at_ms: None,
            destroy_reason: None,
            foreign,
        });
        self.next_seq += 1;
        self.transitions
            .push(Reverse((connect_due, app_id.to_string(), self.next_seq)));
        project.players.push(LivePlayer {
            player: player.clone(),
            seq: self.next_seq,
            created_at: now,
            connect_due: Some(connect_due),
            idle_due: None,
        });
        let event = created_event(app_id, &player, clock.wall_ms(now), request_id);
        Some((player, event))
    }

    /// Removes a live player; `None` when it does not exist (any more).
    pub fn remove(
        &mut self,
        clock: &SimClock,
        app_id: &str,
        id: &str,
        reason: &str,
        now: Instant,
    ) -> Option<Event> {
        let project = self.projects.get_mut(app_id)?;
        let pos = project.players.iter().position(|l| l.player.id == id)?;
        let live = project.players.remove(pos);
        if let Some(h) = self.history.iter_mut().rev().find(|h| h.id == id) {
            h.deleted_at_ms = Some(clock.elapsed_ms(now));
            h.destroy_reason = Some(reason.to_string());
        }
        let p = &live.player;
        Some(Event {
            app_id: app_id.to_string(),
            event_type: EVENT_PLAYER_DESTROYED,
            payload: MediaPullPayload {
                lts: clock.wall_ms(now),
                player: NoticePlayer {
                    id: p.id.clone(),
                    name: p.name.clone(),
                    channel_name: Some(p.channel_name.clone()),
                    ..NoticePlayer::default()
                },
                destroy_reason: Some(reason.to_string()),
                fields: Some("player.name,player.channelName,player.id".into()),
                x_request_id: None,
            },
        })
    }

    /// Marks a live player `failed`; `None` when it does not exist.
    pub fn fail(
        &mut self,
        clock: &SimClock,
        app_id: &str,
        id: &str,
        now: Instant,
    ) -> Option<Event> {
        let live = self.live_mut(app_id, id)?;
        live.connect_due = None;
        live.player.status = PlayerStatus::Failed;
        let event = status_event(app_id, &live.player, clock.wall_ms(now));
        if let Some(h) = self.history.iter_mut().rev().find(|h| h.id == id) {
            h.failed_at_ms.get_or_insert(clock.elapsed_ms(now));
        }
        Some(event)
    }

    /// Sets a source's mode. A source that stops playing fails every live player on it;
    /// with [`SourceLoss::Linger`] a running one keeps running until its `idleTimeout`
    /// ends, then is destroyed, unless the source comes back first.
    pub fn set_source(
        &mut self,
        clock: &SimClock,
        name: &str,
        state: SourceState,
        now: Instant,
    ) -> Vec<Event> {
        self.sources.insert(name.to_string(), state);
        let mut events = Vec::new();
        let up = state.mode == SourceMode::Up;
        let linger = self.source_loss == SourceLoss::Linger;
        for (app_id, project) in &mut self.projects {
            for live in &mut project.players {
                let on_it = source_name(&live.player.stream_url) == Some(name);
                let alive = !matches!(
                    live.player.status,
                    PlayerStatus::Failed | PlayerStatus::Stopped
                );
                if !on_it || !alive {
                    continue;
                }
                if up {
                    live.idle_due = None;
                } else if linger && live.player.status == PlayerStatus::Running {
                    if live.idle_due.is_none() {
                        let idle =
                            std::time::Duration::from_secs(live.player.idle_timeout.max(0) as u64);
                        live.idle_due = Some(now + idle);
                        self.idle
                            .push(Reverse((now + idle, app_id.clone(), live.seq)));
                    }
                } else {
                    live.connect_due = None;
                    live.player.status = PlayerStatus::Failed;
                    events.push(status_event(app_id, &live.player, clock.wall_ms(now)));
                }
            }
        }
        events
    }

    pub fn live_mut(&mut self, app_id: &str, id: &str) -> Option<&mut LivePlayer> {
        self.projects
            .get_mut(app_id)?
            .players
            .iter_mut()
            .find(|l| l.player.id == id)
    }

    pub fn players(&self, app_id: &str) -> Vec<SimPlayer> {
        self.projects
            .get(app_id)
            .map(|p| p.players.iter().map(|l| l.player.clone()).collect())
            .unwrap_or_default()
    }
}

/// A random uid not used in the channel, for `uid: 0` ("Agora assigns one", §1.4).
fn free_uid(project: &Project, channel: &str) -> u64 {
    loop {
        let candidate = u64::from(uuid::Uuid::new_v4().as_u128() as u32);
        let taken = project
            .players
            .iter()
            .any(|l| l.player.channel_name == channel && l.player.uid == Some(candidate));
        if candidate != 0 && !taken {
            return candidate;
        }
    }
}

fn created_event(app_id: &str, p: &SimPlayer, lts: u64, request_id: &str) -> Event {
    Event {
        app_id: app_id.to_string(),
        event_type: EVENT_PLAYER_CREATED,
        payload: MediaPullPayload {
            lts,
            player: NoticePlayer {
                id: p.id.clone(),
                name: p.name.clone(),
                channel_name: Some(p.channel_name.clone()),
                create_ts: Some(p.create_ts),
                idle_timeout: Some(p.idle_timeout),
                status: Some(PlayerStatus::Connecting),
                stream_url: Some(p.stream_url.clone()),
                token: p.token.clone(),
                uid: p.uid,
                account: p.account.clone(),
            },
            destroy_reason: None,
            fields: None,
            x_request_id: Some(request_id.to_string()),
        },
    }
}

fn status_event(app_id: &str, p: &SimPlayer, lts: u64) -> Event {
    Event {
        app_id: app_id.to_string(),
        event_type: EVENT_PLAYER_STATUS,
        payload: MediaPullPayload {
            lts,
            player: NoticePlayer {
                id: p.id.clone(),
                name: p.name.clone(),
                channel_name: Some(p.channel_name.clone()),
                status: Some(p.status),
                ..NoticePlayer::default()
            },
            destroy_reason: None,
            fields: Some("player.name,player.channelName,player.id,player.status".into()),
            x_request_id: None,
        },
    }
}
