//! What pullkeeper has learned about a project's players: the one place observations
//! are written, one method per signal, and read by everything else.
//!
//! Like a kube-runtime reflector's writer, [`Observed`] applies signals as they arrive
//! (a List, an NCS notice, a player check's answer, an app report, a finished delete, a
//! source verdict); the plan reads what it holds and never writes it. Every signal only
//! ever makes the picture fresher: the next complete List replaces the players wholesale,
//! and a failing List is never applied, because an API outage is not evidence against a
//! player. The one exception is a verdict List cannot give: a player failed by its
//! checks or by app reports is still listed as running, so that verdict outlives Lists
//! and notices until the player is gone.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use tokio::time::Instant;

use crate::agora::wire::ListedPlayer;
use crate::model::{PlayerStatus, Signal, SlotKey, SlotRecord, is_dead, is_running};
use crate::ncs::inbox::{Observation, PlayerEvent};
use crate::probe::Verdict;
use crate::probe::monitor::{Change, SourceMonitor};

mod evidence;
mod list;
mod notices;
#[cfg(test)]
mod tests;

pub use evidence::CheckAnswer;
#[cfg(test)]
pub(crate) use list::count_strikes;

use evidence::Evidence;

/// How many List lags a player pullkeeper deleted is remembered as gone.
const DELETED_MEMORY_LAGS: u32 = 10;

/// Whether a List brought anything the picture did not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListNews {
    /// Players or strikes that differ from the last ones.
    News,
    /// The same players and strikes again.
    Same,
}

/// A player found failed, and by which signal: what the event history records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection {
    /// The player's name; `None` when no signal named it (a foreign player, most likely).
    pub name: Option<String>,
    pub uid: Option<u32>,
    pub signal: Signal,
    pub detail: String,
}

/// A project's observed state.
pub struct Observed {
    /// The last complete List, with notices and finished deletes folded in since;
    /// `None` until the first List.
    players: Option<Vec<ListedPlayer>>,
    /// Players pullkeeper deleted: a List answered before the delete may still show them.
    recently_deleted: HashMap<String, Instant>,
    /// Consecutive complete Lists that missed each slot's current player.
    strikes: BTreeMap<SlotKey, u32>,
    /// Player checks' answers and app reports, per player id.
    evidence: Evidence,
    /// Source verdicts (and their probe schedule), when source probing is on.
    sources: Option<SourceMonitor>,
    /// Since when (Unix ms) each player, by name, has been running.
    running_since: HashMap<String, u64>,
    /// Failures found since the controller last took them.
    detections: Vec<Detection>,
    /// Ids of players failed by checks or app reports. Agora keeps listing them as
    /// running, so without this a List answered before their replacement starts (one
    /// held for its source, or waiting for the create rate) would put them back on air.
    condemned: HashSet<String>,
}

impl Observed {
    pub fn new(sources: Option<SourceMonitor>) -> Observed {
        Observed {
            players: None,
            recently_deleted: HashMap::new(),
            strikes: BTreeMap::new(),
            evidence: Evidence::default(),
            sources,
            running_since: HashMap::new(),
            detections: Vec::new(),
            condemned: HashSet::new(),
        }
    }

    /// The failures found since the last call, in the order they were found.
    pub fn take_detections(&mut self) -> Vec<Detection> {
        std::mem::take(&mut self.detections)
    }

    /// A complete, successful List. Players deleted by pullkeeper stay gone whatever the
    /// List says; players of records created within the List lag that the picture
    /// already had stay (List cannot show them yet); strikes are counted.
    /// `threshold` is each scene's strike threshold: a slot whose player reaches it is
    /// detected missing.
    pub fn apply_list(
        &mut self,
        mut players: Vec<ListedPlayer>,
        records: Option<&BTreeMap<SlotKey, SlotRecord>>,
        now_ms: u64,
        list_lag: Duration,
        threshold: impl Fn(&str) -> u32,
    ) -> ListNews {
        // Kept past the lag: the plan replaces a slot whose dead player it deleted only
        // once no master create is in flight, which in a storm of 25 masters at 2/s
        // takes longer than the lag.
        self.recently_deleted
            .retain(|_, at| at.elapsed() < list_lag * DELETED_MEMORY_LAGS);
        players.retain(|p| !self.recently_deleted.contains_key(&p.id));
        let strikes_before = self.strikes.clone();
        let lag_ms = list_lag.as_millis() as u64;
        if let Some(records) = records {
            if let Some(previous) = &self.players {
                list::carry_over_young(&mut players, previous, records, now_ms, lag_ms);
            }
            list::count_strikes(&mut self.strikes, records, &players, now_ms, lag_ms);
            for (key, &strikes) in &self.strikes {
                let threshold = threshold(&key.scene);
                let before = strikes_before.get(key).copied().unwrap_or(0);
                if strikes >= threshold && before < threshold {
                    let record = &records[key];
                    self.detections.push(Detection {
                        name: Some(record.name.clone()),
                        uid: Some(record.uid),
                        signal: Signal::ListAbsence,
                        detail: format!("missing from {strikes} complete Lists in a row"),
                    });
                }
            }
        }
        self.keep_condemned(&mut players);
        let news = self.players.as_ref() != Some(&players) || self.strikes != strikes_before;
        self.players = Some(players);
        if news { ListNews::News } else { ListNews::Same }
    }

    /// An NCS observation other than an app-level report. `deleting` are the players
    /// with a delete of pullkeeper's in flight. Returns whether the picture changed: a
    /// notice that only repeats it needs no new plan.
    pub fn apply_notice(&mut self, observation: Observation, deleting: &BTreeSet<String>) -> bool {
        let Some(players) = &mut self.players else {
            return false;
        };
        let recently_deleted = &self.recently_deleted;
        let ours = |id: &str| recently_deleted.contains_key(id) || deleting.contains(id);
        let id = observation.player_id.clone();
        let status =
            |players: &[ListedPlayer]| players.iter().find(|p| p.id == id).map(|p| p.status);
        let before = status(players);
        let (signal, detail) = match &observation.event {
            PlayerEvent::Destroyed { reason } => (Signal::NcsDestroy, reason.clone()),
            PlayerEvent::Status(s) => (Signal::NcsStatus, s.as_str().to_string()),
            _ => (Signal::NcsStatus, String::new()),
        };
        let mut changed = notices::fold(players, observation, ours);
        if self.condemned.contains(&id) {
            Self::condemn(players, &id);
            changed = status(players) != before;
        }
        let failed_now = status(players).is_some_and(is_dead);
        if failed_now && !before.is_some_and(is_dead) {
            self.detected(&id, signal, detail);
        }
        changed
    }

    /// Notes a failure of the player `id` found by `signal`.
    fn detected(&mut self, id: &str, signal: Signal, detail: String) {
        let player = self.players.iter().flatten().find(|p| p.id == id);
        self.detections.push(Detection {
            name: player.and_then(|p| p.name.clone()),
            uid: player
                .and_then(|p| p.uid)
                .and_then(|u| u32::try_from(u).ok()),
            signal,
            detail,
        });
    }

    /// A delete of pullkeeper's finished: the player is gone now.
    pub fn apply_deleted(&mut self, id: String) {
        if let Some(players) = &mut self.players {
            players.retain(|p| p.id != id);
        }
        self.condemned.remove(&id);
        self.recently_deleted.insert(id, Instant::now());
    }

    /// Opens a round of `checks` player checks. False while the last round is out.
    pub fn start_check_round(&mut self, checks: usize) -> bool {
        self.evidence.start_round(checks)
    }

    /// A player check's answer (`None`: it learned nothing). Once its round is complete,
    /// a player with `threshold` consecutive strikes is failed, as a `failed` notice would.
    pub fn apply_check(&mut self, id: &str, answer: Option<CheckAnswer>, threshold: u32) {
        for failed in self.evidence.check_answered(id, answer, threshold) {
            let detail = "player checks answered 404 or 5xx in a row".to_string();
            self.fail(&failed, Signal::PlayerCheck, detail);
        }
    }

    /// An app's report of stalled media; `needed` reports within `window` make a strike
    /// and `threshold` strikes fail the player.
    pub fn apply_report(&mut self, id: &str, window: Duration, needed: u32, threshold: u32) {
        if self
            .evidence
            .report(id, Instant::now(), window, needed, threshold)
        {
            let detail = format!(
                "{needed} app reports of stalled media within {window:?}, {threshold} times"
            );
            self.fail(id, Signal::AppReport, detail);
        }
    }

    /// A source probe's verdict; returns the change, if it is one.
    pub fn apply_source(&mut self, url: &str, verdict: Verdict) -> Option<Change> {
        self.sources.as_mut()?.record(url, verdict, Instant::now())
    }

    /// Notes which players run now, and since when the new ones do.
    pub fn stamp_running(&mut self, now_ms: u64) {
        let players = self.players.as_deref().unwrap_or(&[]);
        let running: HashMap<&str, bool> = players
            .iter()
            .filter_map(|p| Some((p.name.as_deref()?, is_running(p.status))))
            .collect();
        self.running_since
            .retain(|name, _| running.get(name.as_str()).copied().unwrap_or(false));
        for (name, runs) in running {
            if runs {
                self.running_since.entry(name.to_string()).or_insert(now_ms);
            }
        }
    }

    fn fail(&mut self, id: &str, signal: Signal, detail: String) {
        let Some(players) = &mut self.players else {
            return;
        };
        if !players.iter().any(|p| p.id == id) {
            return;
        }
        self.condemned.insert(id.to_string());
        if Self::condemn(players, id) {
            self.detected(id, signal, detail);
        }
    }

    /// Marks the player `id` failed; true when it was not dead before.
    fn condemn(players: &mut [ListedPlayer], id: &str) -> bool {
        let Some(p) = players.iter_mut().find(|p| p.id == id) else {
            return false;
        };
        let was_alive = !is_dead(p.status);
        p.status = Some(PlayerStatus::Failed);
        was_alive
    }

    /// Applies the standing verdicts to a fresh List, and forgets those of players it no
    /// longer shows.
    fn keep_condemned(&mut self, players: &mut [ListedPlayer]) {
        if self.condemned.is_empty() {
            return;
        }
        self.condemned
            .retain(|id| players.iter().any(|p| &p.id == id));
        for id in &self.condemned {
            Self::condemn(players, id);
        }
    }

    /// The source verdicts' probe schedule, to start the probes that are due.
    pub fn source_schedule(&mut self) -> Option<&mut SourceMonitor> {
        self.sources.as_mut()
    }

    /// Whether a complete List has been applied yet (the plan needs one).
    pub fn listed(&self) -> bool {
        self.players.is_some()
    }

    pub fn players(&self) -> &[ListedPlayer] {
        self.players.as_deref().unwrap_or(&[])
    }

    pub fn sources(&self) -> Option<&SourceMonitor> {
        self.sources.as_ref()
    }

    /// Consecutive List strikes per slot.
    pub fn strikes(&self) -> &BTreeMap<SlotKey, u32> {
        &self.strikes
    }

    /// Per slot, the larger of its List strikes and its current player's check and report
    /// strikes, as `/v1/scenes` shows them.
    pub fn all_strikes(&self, records: &BTreeMap<SlotKey, SlotRecord>) -> BTreeMap<SlotKey, u32> {
        let mut strikes = self.strikes.clone();
        for (key, record) in records {
            if let Some(id) = &record.id {
                let s = strikes.entry(key.clone()).or_insert(0);
                *s = (*s).max(self.evidence.strikes(id));
            }
        }
        strikes
    }

    /// Ids of the players pullkeeper deleted recently.
    pub fn deleted(&self) -> BTreeSet<String> {
        self.recently_deleted.keys().cloned().collect()
    }

    pub fn any_recently_deleted(&self) -> bool {
        !self.recently_deleted.is_empty()
    }

    pub fn running_since(&self) -> &HashMap<String, u64> {
        &self.running_since
    }
}
