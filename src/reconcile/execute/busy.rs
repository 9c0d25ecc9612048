//! Work in flight and work held back: what the plan must not decide again yet.
//!
//! Two kinds of holding back, kept apart as kube-runtime advises: a *failed* action
//! cools its slot or player down on the retreat schedule Agora prescribes (5, 10, 15 s,
//! §1.9), and a slot that keeps needing *replacement* waits exponentially
//! longer each time (1 s doubling to about 60 s, jittered) so a source that kills every
//! player cannot turn pullkeeper into a create storm. Neither ever gives up. A slot held
//! for its source starts its back-off afresh: the probe, not the count of failures,
//! decides when it may go, and it goes as soon as its source is back.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::time::Duration;

use tokio::time::Instant;

use crate::model::SlotKey;

/// Waits after consecutive failures of one slot's or player's action.
pub const RETREAT: [Duration; 3] = [
    Duration::from_secs(5),
    Duration::from_secs(10),
    Duration::from_secs(15),
];

/// Longest wait between replacements of one slot.
pub const REPLACEMENT_CAP: Duration = Duration::from_secs(60);
/// A slot whose last replacement is older than this starts its back-off afresh.
pub const REPLACEMENT_MEMORY: Duration = Duration::from_secs(300);

struct Cooldown {
    failures: usize,
    until: Instant,
}

struct Replacements {
    count: u32,
    last: Instant,
    next_allowed: Instant,
}

#[derive(Default)]
pub struct Busy {
    /// Slots with an action in flight (a queued create counts).
    pub(super) slots: BTreeSet<SlotKey>,
    /// Players with a delete in flight.
    pub(super) players: BTreeSet<String>,
    slot_cooldown: HashMap<SlotKey, Cooldown>,
    player_cooldown: HashMap<String, Cooldown>,
    replacements: HashMap<SlotKey, Replacements>,
}

fn fail<K: Hash + Eq>(map: &mut HashMap<K, Cooldown>, key: K) {
    let now = Instant::now();
    let c = map.entry(key).or_insert(Cooldown {
        failures: 0,
        until: now,
    });
    // 5–6 s, 10–11 s, 15–16 s: the jitter keeps many failures from retrying in lockstep.
    let jitter = Duration::from_millis(rand::random_range(0..1000));
    c.until = now + RETREAT[c.failures.min(RETREAT.len() - 1)] + jitter;
    c.failures += 1;
}

impl Busy {
    /// A slot's action ended.
    pub(super) fn slot_done(&mut self, key: SlotKey, ok: bool) {
        self.slots.remove(&key);
        if ok {
            self.slot_cooldown.remove(&key);
        } else {
            fail(&mut self.slot_cooldown, key);
        }
    }

    /// A player's action (a delete) ended.
    pub(super) fn player_done(&mut self, id: String, ok: bool) {
        self.players.remove(&id);
        if ok {
            self.player_cooldown.remove(&id);
        } else {
            fail(&mut self.player_cooldown, id);
        }
    }

    /// Whether a replacement of `key` may start now. If so it is counted and the next one
    /// is pushed out; if not, the slot is held until it may, and false is returned.
    pub(super) fn admit_replacement(&mut self, key: &SlotKey) -> bool {
        let now = Instant::now();
        let entry = self
            .replacements
            .entry(key.clone())
            .or_insert(Replacements {
                count: 0,
                last: now,
                next_allowed: now,
            });
        if now.duration_since(entry.last) > REPLACEMENT_MEMORY {
            entry.count = 0;
            entry.next_allowed = now;
        }
        if now < entry.next_allowed {
            self.slot_cooldown.insert(
                key.clone(),
                Cooldown {
                    failures: 0,
                    until: entry.next_allowed,
                },
            );
            return false;
        }
        entry.count += 1;
        entry.last = now;
        entry.next_allowed = now + replacement_backoff(entry.count);
        if entry.count > 1 {
            tracing::warn!(slot = %key, replacements = entry.count, "slot replaced again; backing off");
        }
        true
    }

    /// A slot waits for its source (probed down): its replacement back-off is forgotten,
    /// so the replacement starts once the source is back rather than up to
    /// [`REPLACEMENT_CAP`] later. Probes pace it meanwhile: nothing is created while held.
    pub(super) fn held_for_source(&mut self, key: &SlotKey) {
        self.replacements.remove(key);
    }

    /// Players with a delete of pullkeeper's in flight.
    pub fn deleting(&self) -> &BTreeSet<String> {
        &self.players
    }

    /// Busy sets for planning: in flight, or held back.
    pub fn for_plan(&self) -> (BTreeSet<SlotKey>, BTreeSet<String>) {
        let now = Instant::now();
        let mut slots = self.slots.clone();
        slots.extend(
            self.slot_cooldown
                .iter()
                .filter(|(_, c)| c.until > now)
                .map(|(k, _)| k.clone()),
        );
        let mut players = self.players.clone();
        players.extend(
            self.player_cooldown
                .iter()
                .filter(|(_, c)| c.until > now)
                .map(|(k, _)| k.clone()),
        );
        (slots, players)
    }

    /// The earliest instant something held back may go, so the loop wakes for it.
    pub fn next_expiry(&self) -> Option<Instant> {
        let now = Instant::now();
        self.slot_cooldown
            .values()
            .chain(self.player_cooldown.values())
            .map(|c| c.until)
            .filter(|&u| u > now)
            .min()
    }
}

/// The wait after the `n`-th replacement in a row: 1 s doubling, capped, ±20 % jitter so
/// many slots failing together do not retry in lockstep.
fn replacement_backoff(n: u32) -> Duration {
    let base = Duration::from_secs(1u64 << n.saturating_sub(1).min(6)).min(REPLACEMENT_CAP);
    base.mul_f64(rand::random_range(0.8..1.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn failed_actions_retreat_5_10_15_seconds_jittered() {
        let mut busy = Busy::default();
        let key = SlotKey::new("p", "s", 0);
        for expected in [5, 10, 15, 15] {
            busy.slots.insert(key.clone());
            busy.slot_done(key.clone(), false);
            assert!(busy.for_plan().0.contains(&key));
            let wait = busy.next_expiry().unwrap() - Instant::now();
            assert!(
                wait >= Duration::from_secs(expected) && wait < Duration::from_secs(expected + 1),
                "{wait:?}"
            );
        }
        busy.slot_done(key.clone(), true);
        assert!(busy.for_plan().0.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn repeated_replacements_back_off_exponentially_to_a_cap() {
        let mut busy = Busy::default();
        let key = SlotKey::new("p", "s", 0);
        assert!(
            busy.admit_replacement(&key),
            "the first replacement is immediate"
        );
        let mut waits = vec![];
        for _ in 0..9 {
            assert!(!busy.admit_replacement(&key));
            let wait = busy.next_expiry().unwrap() - Instant::now();
            waits.push(wait.as_secs_f64());
            tokio::time::advance(wait).await;
            assert!(busy.admit_replacement(&key));
        }
        for (i, w) in waits.iter().enumerate() {
            let base = (1u64 << i.min(6)).min(60) as f64;
            assert!(
                *w >= base * 0.8 - 0.01 && *w <= base * 1.2 + 0.01,
                "{i}: {w} vs {base}"
            );
        }
        // Held for its source: the back-off is forgotten, the next replacement immediate.
        // (The capped wait is 60 s, jittered up to 72 s.)
        tokio::time::advance(Duration::from_secs(73)).await;
        assert!(busy.admit_replacement(&key));
        assert!(!busy.admit_replacement(&key), "about 60 s to wait");
        busy.held_for_source(&key);
        assert!(busy.admit_replacement(&key));
        assert!(!busy.admit_replacement(&key), "and backs off from there");
        // Quiet for a while: the next replacement is immediate again.
        tokio::time::advance(REPLACEMENT_MEMORY + Duration::from_secs(61)).await;
        assert!(busy.admit_replacement(&key));
    }
}
