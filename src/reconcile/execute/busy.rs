//! Work in flight and work held back: what the plan must not decide again yet.
//!
//! Two kinds of holding back, kept apart as kube-runtime advises: a *failed* action
//! cools its slot or player down on the retreat schedule Agora prescribes (5, 10, 15 s,
//! §1.9), and a slot that keeps needing *replacement* waits exponentially
//! longer each time (1 s doubling to about 60 s, jittered) so a source that kills every
//! player cannot turn pullkeeper into a create storm. Neither ever gives up. A slot held
//! for its source starts its back-off afresh: the probe, not the count of failures,
//! decides when it may go, and it goes as soon as its source is back.
//!
//! A *final* answer is held longer: Agora refusing an action for good (400, 403: a bad
//! parameter, a project without Media Pull) or refusing the project's credentials (401)
//! would answer the same to every retry, so the slot or player waits the long pause
//! (`reconcile.rejected_retry`), or until what it was refused for changes: the scene
//! (a rejection) or the credentials' verdict (a List answered since: then it waits only
//! what the retreat schedule asks, so a 401 that only some calls get is retried as any
//! failure, never faster).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::Hash;
use std::time::Duration;

use tokio::time::Instant;

use crate::limits::retreat;
use crate::model::{Fixed, Live, SlotKey};

/// How an action ended, as holding back needs to know it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Done,
    /// Failed in a way a retry may fix: retried on the retreat schedule.
    Failed,
    /// Refused for good (400, 403): Agora's message, and what the scene asked of the
    /// slot when it was refused (`None` for a player's delete).
    Rejected {
        message: String,
        wanted: Option<(Live, Fixed)>,
    },
    /// 401: the project's credentials were refused.
    Unauthorized,
}

/// Why a slot or player is held back.
#[derive(Debug, Clone, PartialEq)]
enum Why {
    Retreat,
    Rejected {
        message: String,
        wanted: Option<(Live, Fixed)>,
    },
    /// Until the credentials are seen to work; then until `retreat_until`.
    Unauthorized {
        retreat_until: Instant,
    },
}

/// Longest wait between replacements of one slot.
pub const REPLACEMENT_CAP: Duration = Duration::from_secs(60);
/// A slot whose last replacement is older than this starts its back-off afresh.
pub const REPLACEMENT_MEMORY: Duration = Duration::from_secs(300);

struct Cooldown {
    failures: usize,
    until: Instant,
    why: Why,
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
    /// Slots whose Update Agora refused for good: only their Updates wait, so a
    /// failed player of theirs is still replaced.
    update_cooldown: HashMap<SlotKey, Cooldown>,
    player_cooldown: HashMap<String, Cooldown>,
    replacements: HashMap<SlotKey, Replacements>,
}

/// Holds `key` back after `outcome` (not `Done`): on the retreat schedule, or for
/// `long_pause` after a final answer.
fn hold<K: Hash + Eq>(
    map: &mut HashMap<K, Cooldown>,
    key: K,
    outcome: Outcome,
    long_pause: Duration,
) {
    let now = Instant::now();
    let c = map.entry(key).or_insert(Cooldown {
        failures: 0,
        until: now,
        why: Why::Retreat,
    });
    (c.until, c.why) = match outcome {
        Outcome::Done | Outcome::Failed => {
            c.failures += 1;
            (now + retreat(c.failures - 1), Why::Retreat)
        }
        Outcome::Rejected { message, wanted } => {
            (now + long_pause, Why::Rejected { message, wanted })
        }
        Outcome::Unauthorized => {
            c.failures += 1;
            let retreat_until = now + retreat(c.failures - 1);
            (now + long_pause, Why::Unauthorized { retreat_until })
        }
    };
}

impl Busy {
    /// A slot's action ended: the slot is free, or held back (see [`hold`]).
    pub(super) fn slot_done(&mut self, key: SlotKey, outcome: Outcome, long_pause: Duration) {
        self.slots.remove(&key);
        if outcome == Outcome::Done {
            self.slot_cooldown.remove(&key);
            self.update_cooldown.remove(&key);
        } else {
            hold(&mut self.slot_cooldown, key, outcome, long_pause);
        }
    }

    /// An Update of a slot's player ended: a final refusal holds back only the slot's
    /// Updates; anything else is as [`Busy::slot_done`].
    pub(super) fn update_done(&mut self, key: SlotKey, outcome: Outcome, long_pause: Duration) {
        if matches!(outcome, Outcome::Rejected { .. }) {
            self.slots.remove(&key);
            hold(&mut self.update_cooldown, key, outcome, long_pause);
        } else {
            self.slot_done(key, outcome, long_pause);
        }
    }

    /// Slots whose Updates wait for their long pause to end.
    pub fn held_updates(&self) -> BTreeSet<SlotKey> {
        let now = Instant::now();
        self.update_cooldown
            .iter()
            .filter(|(_, c)| c.until > now)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// A player's action (a delete) ended.
    pub(super) fn player_done(&mut self, id: String, outcome: Outcome, long_pause: Duration) {
        self.players.remove(&id);
        if outcome == Outcome::Done {
            self.player_cooldown.remove(&id);
        } else {
            hold(&mut self.player_cooldown, id, outcome, long_pause);
        }
    }

    /// Slots whose last action Agora refused for good, with its message. A slot stays
    /// here through its retry, until an answer of another kind.
    pub fn rejected(&self) -> BTreeMap<SlotKey, String> {
        self.slot_cooldown
            .iter()
            .chain(&self.update_cooldown)
            .filter_map(|(key, c)| match &c.why {
                Why::Rejected { message, .. } => Some((key.clone(), message.clone())),
                _ => None,
            })
            .collect()
    }

    /// Ends the long pause of every rejected slot whose scene now asks for something
    /// other than what was refused (`wanted` gives what it asks now; `None`: the slot
    /// or its scene is gone). Returns the slots let go, each with whether only its
    /// Updates had been refused.
    pub(super) fn retry_changed(
        &mut self,
        wanted: impl Fn(&SlotKey) -> Option<(Live, Fixed)>,
    ) -> Vec<(SlotKey, bool)> {
        let mut let_go = Vec::new();
        for (map, updates_only) in [
            (&mut self.slot_cooldown, false),
            (&mut self.update_cooldown, true),
        ] {
            map.retain(|key, c| {
                let keep = match &c.why {
                    Why::Rejected {
                        wanted: Some(then), ..
                    } => wanted(key).is_some_and(|now| &now == then),
                    _ => true,
                };
                if !keep {
                    let_go.push((key.clone(), updates_only));
                }
                keep
            });
        }
        let_go
    }

    /// Whether the slot's last create (`updates_only`: its last Update) was refused for
    /// good and no other answer came since.
    pub(super) fn is_rejected(&self, key: &SlotKey, updates_only: bool) -> bool {
        let map = if updates_only {
            &self.update_cooldown
        } else {
            &self.slot_cooldown
        };
        map.get(key)
            .is_some_and(|c| matches!(c.why, Why::Rejected { .. }))
    }

    /// Holds a slot refused for good before a restart, until `until` (the refusal's
    /// pause, counted from its answer).
    pub(super) fn restore_rejection(
        &mut self,
        key: SlotKey,
        updates_only: bool,
        message: String,
        wanted: Option<(Live, Fixed)>,
        until: Instant,
    ) {
        let map = if updates_only {
            &mut self.update_cooldown
        } else {
            &mut self.slot_cooldown
        };
        map.insert(
            key,
            Cooldown {
                failures: 0,
                until,
                why: Why::Rejected { message, wanted },
            },
        );
    }

    /// Whether a slot or player's last action was answered 401 (held back, or retried
    /// and not yet answered).
    pub fn any_unauthorized(&self) -> bool {
        self.slot_cooldown
            .values()
            .chain(self.player_cooldown.values())
            .any(|c| matches!(c.why, Why::Unauthorized { .. }))
    }

    /// The credentials were seen to work: what a 401 held back waits only what the
    /// retreat schedule asks (long past, after an outage of the credentials).
    pub(super) fn authorized(&mut self) {
        for c in self
            .slot_cooldown
            .values_mut()
            .chain(self.player_cooldown.values_mut())
        {
            if let Why::Unauthorized { retreat_until } = c.why {
                c.until = c.until.min(retreat_until);
            }
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
                    why: Why::Retreat,
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
            .chain(self.update_cooldown.values())
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
            busy.slot_done(key.clone(), Outcome::Failed, LONG);
            assert!(busy.for_plan().0.contains(&key));
            let wait = busy.next_expiry().unwrap() - Instant::now();
            assert!(
                wait >= Duration::from_secs(expected) && wait < Duration::from_secs(expected + 1),
                "{wait:?}"
            );
        }
        busy.slot_done(key.clone(), Outcome::Done, LONG);
        assert!(busy.for_plan().0.is_empty());
    }

    const LONG: Duration = Duration::from_secs(600);

    fn wanted(url: &str) -> (Live, Fixed) {
        let live = Live {
            stream_url: url.into(),
            volume: 100,
        };
        let fixed = Fixed {
            channel: "ch".into(),
            region: crate::model::Region::Na,
            idle_timeout: 300,
            token_sha256: None,
        };
        (live, fixed)
    }

    #[tokio::test(start_paused = true)]
    async fn a_rejection_holds_its_slot_the_long_pause_or_until_the_scene_changes() {
        let mut busy = Busy::default();
        let key = SlotKey::new("p", "s", 0);
        let rejected = Outcome::Rejected {
            message: "HTTP 400: Parameter channelName is invalid.".into(),
            wanted: Some(wanted("rtmp://a/live/x")),
        };
        busy.slot_done(key.clone(), rejected.clone(), LONG);
        assert_eq!(busy.next_expiry().unwrap() - Instant::now(), LONG);
        assert_eq!(
            busy.rejected().get(&key).map(String::as_str),
            Some("HTTP 400: Parameter channelName is invalid.")
        );
        // The same scene: still held; the pause over: free, and still shown rejected
        // until the retry's answer.
        assert!(
            busy.retry_changed(|_| Some(wanted("rtmp://a/live/x")))
                .is_empty()
        );
        assert!(busy.for_plan().0.contains(&key));
        tokio::time::advance(LONG).await;
        assert!(busy.for_plan().0.is_empty());
        assert!(busy.rejected().contains_key(&key));
        busy.slot_done(key.clone(), Outcome::Done, LONG);
        assert!(busy.rejected().is_empty());

        // The scene changed: retried at once.
        busy.slot_done(key.clone(), rejected, LONG);
        assert_eq!(
            busy.retry_changed(|_| Some(wanted("rtmp://b/live/x"))),
            [(key.clone(), false)]
        );
        assert!(busy.for_plan().0.is_empty());
        assert!(busy.rejected().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_rejected_update_holds_only_the_slots_updates() {
        let mut busy = Busy::default();
        let key = SlotKey::new("p", "s", 0);
        busy.slots.insert(key.clone());
        let rejected = Outcome::Rejected {
            message: "HTTP 400: Parameter volume is invalid.".into(),
            wanted: Some(wanted("rtmp://a/live/x")),
        };
        busy.update_done(key.clone(), rejected, LONG);
        assert!(busy.for_plan().0.is_empty(), "the slot itself is free");
        assert!(busy.held_updates().contains(&key));
        assert!(busy.rejected().contains_key(&key));
        tokio::time::advance(LONG).await;
        assert!(busy.held_updates().is_empty());
        busy.update_done(key.clone(), Outcome::Done, LONG);
        assert!(busy.rejected().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn refused_credentials_hold_until_they_work_again() {
        let mut busy = Busy::default();
        let key = SlotKey::new("p", "s", 1);
        busy.slot_done(key.clone(), Outcome::Unauthorized, LONG);
        busy.player_done("id".into(), Outcome::Unauthorized, LONG);
        assert!(busy.any_unauthorized());
        assert_eq!(busy.next_expiry().unwrap() - Instant::now(), LONG);
        assert!(busy.for_plan().0.contains(&key));
        assert!(busy.for_plan().1.contains("id"));
        // A List works: they wait what the retreat asks, here 5–6 s from the 401.
        tokio::time::advance(Duration::from_secs(4)).await;
        busy.authorized();
        assert!(busy.for_plan().0.contains(&key));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(busy.for_plan(), (BTreeSet::new(), BTreeSet::new()));
        // Still the answer last seen, until another comes.
        assert!(busy.any_unauthorized());
        busy.slot_done(key, Outcome::Done, LONG);
        busy.player_done("id".into(), Outcome::Done, LONG);
        assert!(!busy.any_unauthorized());
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
