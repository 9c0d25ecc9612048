//! Per-player `lts` ordering for NCS notices: NCS may deliver a player's events out of
//! order or late, and only an event newer than the last one seen may reach the inbox.
//! `lts` is in milliseconds, so two events of one player can share it (a player that
//! connects at once sends `created` and `running` in the same millisecond); then the
//! lifecycle stage decides: created < status < destroyed.
//!
//! Kept apart from the intake because it is plain bookkeeping with its own memory bound,
//! tested on its own; the intake ([`super::intake`]) holds one behind a lock.

use std::collections::HashMap;

/// Where an event stands in a player's life, for events that share an `lts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    Created,
    Status,
    Destroyed,
}

impl Stage {
    /// The stage as the store keeps it (in the same order).
    pub fn code(self) -> u8 {
        match self {
            Stage::Created => 0,
            Stage::Status => 1,
            Stage::Destroyed => 2,
        }
    }

    pub fn from_code(code: u8) -> Option<Stage> {
        [Stage::Created, Stage::Status, Stage::Destroyed]
            .into_iter()
            .find(|s| s.code() == code)
    }
}

/// The last `lts` (and stage) seen per (project, player), bounded in memory.
///
/// Entries more than `retain_ms` behind the newest `lts` are pruned (hourly in `lts` time,
/// or when more than `cap` players are tracked); pruning raises a floor below which every
/// notice is stale, so a forgotten player cannot be rolled back by a late delivery.
///
/// Players by project: one copy of each project id rather than one per player, and a
/// lookup allocates nothing.
#[derive(Debug)]
pub struct LtsOrder {
    last: HashMap<String, HashMap<String, (u64, Stage)>>,
    /// Players tracked, over all projects.
    tracked: usize,
    newest: u64,
    floor: u64,
    last_prune: u64,
    retain_ms: u64,
    cap: usize,
}

impl LtsOrder {
    pub fn new(retain_ms: u64, cap: usize) -> LtsOrder {
        LtsOrder {
            last: HashMap::new(),
            tracked: 0,
            newest: 0,
            floor: 0,
            last_prune: 0,
            retain_ms,
            cap: cap.max(2),
        }
    }

    /// An order that continues one kept before a restart: each `(project, player, lts,
    /// stage)` as last admitted. The floor is an hour (`retain_ms`) behind the newest, as
    /// the pruning that would have run by then would have left it.
    pub fn restored(
        retain_ms: u64,
        cap: usize,
        entries: impl IntoIterator<Item = (String, String, u64, Stage)>,
    ) -> LtsOrder {
        let mut order = LtsOrder::new(retain_ms, cap);
        for (project, player, lts, stage) in entries {
            order.newest = order.newest.max(lts);
            order.set(&project, &player, (lts, stage));
        }
        order.last_prune = order.newest;
        order.floor = order.newest.saturating_sub(retain_ms);
        if order.tracked > order.cap {
            order.prune();
        }
        order
    }

    /// The player's newest admitted event, to [`undo`](Self::undo) an admission.
    pub fn last(&self, project: &str, player: &str) -> Option<(u64, Stage)> {
        self.last.get(project)?.get(player).copied()
    }

    /// Puts the player's newest event back to `previous` (an admission that could not
    /// be recorded must not make a resend of the same notice stale).
    pub fn undo(&mut self, project: &str, player: &str, previous: Option<(u64, Stage)>) {
        match previous {
            Some(p) => self.set(project, player, p),
            None => {
                let Some(players) = self.last.get_mut(project) else {
                    return;
                };
                if players.remove(player).is_some() {
                    self.tracked -= 1;
                }
                if players.is_empty() {
                    self.last.remove(project);
                }
            }
        }
    }

    /// Records `at` as the player's newest event.
    fn set(&mut self, project: &str, player: &str, at: (u64, Stage)) {
        if !self.last.contains_key(project) {
            self.last.insert(project.to_string(), HashMap::new());
        }
        let players = self.last.get_mut(project).expect("inserted above");
        match players.get_mut(player) {
            Some(last) => *last = at,
            None => {
                players.insert(player.to_string(), at);
                self.tracked += 1;
            }
        }
    }

    /// Below this `lts` every event is stale (it rises when entries are pruned).
    pub fn floor(&self) -> u64 {
        self.floor
    }

    /// True (and remembered) when the event is newer than anything seen for the player:
    /// a later `lts`, or the same `lts` and a later stage.
    pub fn admit(&mut self, project: &str, player: &str, lts: u64, stage: Stage) -> bool {
        if lts < self.floor {
            return false;
        }
        if self
            .last(project, player)
            .is_some_and(|last| (lts, stage) <= last)
        {
            return false;
        }
        self.set(project, player, (lts, stage));
        self.newest = self.newest.max(lts);
        if self.tracked > self.cap || self.newest.saturating_sub(self.last_prune) >= self.retain_ms
        {
            self.prune();
        }
        true
    }

    /// Players currently tracked.
    pub fn len(&self) -> usize {
        self.tracked
    }

    pub fn is_empty(&self) -> bool {
        self.tracked == 0
    }

    fn prune(&mut self) {
        self.last_prune = self.newest;
        self.floor = self.floor.max(self.newest.saturating_sub(self.retain_ms));
        self.keep_from(self.floor);
        if self.tracked > self.cap {
            // Still too many: keep the newest half of the cap.
            let mut all: Vec<u64> = self
                .last
                .values()
                .flat_map(|players| players.values().map(|(lts, _)| *lts))
                .collect();
            all.sort_unstable();
            self.floor = all[all.len() - self.cap / 2];
            self.keep_from(self.floor);
        }
    }

    /// Forgets every player whose newest event is older than `floor`.
    fn keep_from(&mut self, floor: u64) {
        self.last.retain(|_, players| {
            players.retain(|_, (lts, _)| *lts >= floor);
            !players.is_empty()
        });
        self.tracked = self.last.values().map(HashMap::len).sum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bounds the ordering tests never reach; bounding has a test of its own.
    const RETAIN_MS: u64 = 60 * 60 * 1000;
    const CAP: usize = 1_000;

    #[test]
    fn lts_order_admits_only_newer_events_per_player() {
        use Stage::*;
        let mut o = LtsOrder::new(RETAIN_MS, CAP);
        assert!(o.admit("p", "a", 200, Status));
        assert!(!o.admit("p", "a", 100, Status));
        assert!(
            !o.admit("p", "a", 200, Status),
            "equal lts and stage is not newer"
        );
        assert!(!o.admit("p", "a", 200, Created), "nor an earlier stage");
        assert!(
            o.admit("p", "a", 200, Destroyed),
            "a later stage in the same ms is"
        );
        assert!(o.admit("p", "a", 201, Created));
        assert!(o.admit("p", "b", 100, Status), "players are independent");
        assert!(o.admit("q", "a", 100, Status), "projects are independent");
    }

    #[test]
    fn a_restored_order_continues_the_old_one() {
        use Stage::*;
        let entries = [
            ("p".to_string(), "a".to_string(), 5_000, Status),
            ("p".to_string(), "b".to_string(), 9_000, Created),
        ];
        let mut o = LtsOrder::restored(1_000, CAP, entries);
        assert!(
            !o.admit("p", "a", 4_999, Destroyed),
            "older than a's newest"
        );
        assert!(!o.admit("p", "b", 9_000, Created), "b's newest again");
        assert!(o.admit("p", "b", 9_000, Status));
        assert_eq!(o.floor(), 8_000, "an hour (here 1 s) behind the newest");
        assert!(!o.admit("p", "new", 7_999, Created));
        for stage in [Created, Status, Destroyed] {
            assert_eq!(Stage::from_code(stage.code()), Some(stage));
        }
        assert_eq!(Stage::from_code(3), None);
    }

    #[test]
    fn an_undone_admission_lets_the_same_event_in_again() {
        let mut o = LtsOrder::new(RETAIN_MS, CAP);
        assert!(o.admit("p", "a", 100, Stage::Status));
        let before = o.last("p", "a");
        assert!(o.admit("p", "a", 200, Stage::Status));
        o.undo("p", "a", before);
        assert!(o.admit("p", "a", 200, Stage::Status));
        o.undo("p", "b", o.last("p", "b"));
        assert!(
            o.admit("p", "b", 1, Stage::Created),
            "undo of a first event"
        );
        let before = o.last("p", "c");
        assert!(o.admit("p", "c", 1, Stage::Created));
        o.undo("p", "c", before);
        assert!(o.admit("p", "c", 1, Stage::Created));
    }

    #[test]
    fn created_and_running_in_one_millisecond_both_count() {
        let mut o = LtsOrder::new(RETAIN_MS, CAP);
        assert!(o.admit("p", "a", 500, Stage::Created));
        assert!(o.admit("p", "a", 500, Stage::Status));
    }

    #[test]
    fn lts_order_is_bounded_and_keeps_a_floor() {
        let mut o = LtsOrder::new(1_000, 10);
        for i in 0..100u64 {
            assert!(o.admit("p", &format!("pl{i}"), 10_000 + i, Stage::Status));
            assert!(o.len() <= 10, "cap holds at {i}: {}", o.len());
        }
        // A forgotten player cannot be rolled back by an old delivery...
        assert!(!o.admit("p", "pl0", 10_000, Stage::Status));
        // ...while a current event for it still passes.
        assert!(o.admit("p", "pl0", 10_100, Stage::Status));
        // Time-based pruning: an hour (here 1 s) later the old entries go.
        let mut o = LtsOrder::new(1_000, 1_000);
        assert!(o.admit("p", "old", 1, Stage::Status));
        assert!(o.admit("p", "new", 5_000, Stage::Status));
        assert!(o.len() == 1);
        assert!(!o.admit("p", "old", 2, Stage::Status));
    }
}
