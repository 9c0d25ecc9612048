//! Creates decided but not started yet: a project starts only a few at a time.
//!
//! Agora allows 2 creates per second per project (§1.10), and a plan for an
//! empty project decides 50 at once. Started all together, 49 of them wait for their
//! token as tasks, each a create future of about 3.4 KiB plus its scene; at 1,000
//! projects that was 50,000 tasks and most of the process's peak memory (BENCHMARKS.md,
//! scale). Waiting here, a create costs its name and key, and nothing is written for it
//! yet: a stop drops it with nothing to undo.
//!
//! To the plan a queued create is as busy as a started one (its slot is in
//! `Busy::slots`), so the quota and masters-first accounting see no difference. The queue
//! keeps the plan's order across passes: masters before backups, then scene priority
//! ([`super::create_rank`]), then first decided first. A master whose
//! failure comes in while backups are in flight waits at most for those few.

use std::cmp::Reverse;
use std::collections::BTreeMap;

/// Waiting creates in rank order, and how many are started and not yet finished.
#[derive(Debug)]
pub struct CreateQueue<T> {
    waiting: BTreeMap<(Reverse<i64>, u64), T>,
    next_seq: u64,
    in_flight: usize,
    max_in_flight: usize,
}

impl<T> CreateQueue<T> {
    /// A queue that lets `max_in_flight` creates run at once (at least one).
    pub fn new(max_in_flight: usize) -> CreateQueue<T> {
        CreateQueue {
            waiting: BTreeMap::new(),
            next_seq: 0,
            in_flight: 0,
            max_in_flight: max_in_flight.max(1),
        }
    }

    /// How many may run at once for a project allowed `per_second` creates: two
    /// seconds' worth, so the next create is always at the limiter when a token frees,
    /// whatever Agora's round trip.
    pub fn for_rate(per_second: u32) -> CreateQueue<T> {
        CreateQueue::new(2 * per_second as usize)
    }

    pub fn push(&mut self, rank: i64, item: T) {
        self.waiting.insert((Reverse(rank), self.next_seq), item);
        self.next_seq += 1;
    }

    /// The next create to start, if one waits and there is room; it counts as running
    /// until [`CreateQueue::finished`].
    pub fn start_next(&mut self) -> Option<T> {
        if self.in_flight >= self.max_in_flight {
            return None;
        }
        let (_, item) = self.waiting.pop_first()?;
        self.in_flight += 1;
        Some(item)
    }

    /// A started create ended (or was dropped before it could start).
    pub fn finished(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.waiting.len()
    }
}

/// One create at a time: the cautious choice where no rate is known.
impl<T> Default for CreateQueue<T> {
    fn default() -> Self {
        CreateQueue::new(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain<T>(q: &mut CreateQueue<T>) -> Vec<T> {
        std::iter::from_fn(|| q.start_next()).collect()
    }

    #[test]
    fn starts_at_most_the_cap_in_rank_order_then_first_come() {
        let mut q = CreateQueue::new(3);
        q.push(1, "backup a");
        q.push(5, "master a");
        q.push(1, "backup b");
        q.push(5, "master b");
        q.push(3, "backup of a priority scene");
        assert_eq!(
            drain(&mut q),
            ["master a", "master b", "backup of a priority scene"]
        );
        assert_eq!(q.waiting(), 2);

        // A master decided later still goes before the backups already waiting.
        q.push(5, "master c");
        assert_eq!(drain(&mut q), Vec::<&str>::new());
        q.finished();
        assert_eq!(drain(&mut q), ["master c"]);
        q.finished();
        q.finished();
        assert_eq!(drain(&mut q), ["backup a", "backup b"]);
        assert_eq!(q.waiting(), 0);
    }

    #[test]
    fn the_cap_is_two_seconds_of_the_rate_and_never_zero() {
        let mut q = CreateQueue::for_rate(2);
        (0..10).for_each(|i| q.push(0, i));
        assert_eq!(drain(&mut q), [0, 1, 2, 3]);
        let mut q = CreateQueue::for_rate(0);
        (0..10).for_each(|i| q.push(0, i));
        assert_eq!(drain(&mut q), [0]);
    }
}
