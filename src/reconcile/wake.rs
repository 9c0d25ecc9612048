//! When the controller's loop wakes and when it may skip a pass: optional timers for its
//! `select!` (a timer that is not set never fires, so one loop serves with and without a
//! check interval or a pending wake-up), the List's back-off while it fails, and the
//! quiet state that lets a List repeating a settled picture go without a pass.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::{Instant, Interval};

use crate::reconcile::execute::Slots;

/// Ticks `interval` if there is one; otherwise never resolves.
pub async fn tick_opt(interval: &mut Option<Interval>) {
    match interval {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Sleeps until `at` if set; otherwise never resolves.
pub async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// What a pass that decided nothing planned from, besides the observed players. A List
/// that repeats them, with these records and before `recheck_at_ms`, would plan the same
/// nothing again (`plan::tests::props::a_plan_holds_until_its_recheck_instant`): it gets
/// no pass. At scale that is nearly every poll, and a pass per poll was most of
/// pullkeeper's steady CPU (BENCHMARKS.md, scale). Every other trigger still passes.
pub struct Quiet {
    pub records: Arc<Slots>,
    pub recheck_at_ms: Option<u64>,
}

impl Quiet {
    /// Whether planning now, from `records` and unchanged players, would decide nothing.
    pub fn still(&self, records: &Arc<Slots>, now_ms: u64) -> bool {
        self.recheck_at_ms.is_none_or(|at| now_ms < at) && Arc::ptr_eq(records, &self.records)
    }
}

/// Longest wait between Lists while List keeps failing.
pub const LIST_BACKOFF_CAP: Duration = Duration::from_secs(60);

/// Failed Lists in a row, and how long to wait before the next one.
#[derive(Debug, Default)]
pub struct ListBackoff {
    failures: usize,
}

impl ListBackoff {
    /// A List failed: the wait before the next one. Doubling from the poll interval (a
    /// 5 s poll retries after 5, 10, 20, 40, then every 60 s), gentler on a struggling
    /// API than Agora's 5/10/15 s retreat asks.
    pub fn failed(&mut self, poll_interval: Duration) -> Duration {
        let backoff = poll_interval
            .saturating_mul(1 << self.failures.min(6))
            .min(LIST_BACKOFF_CAP);
        self.failures += 1;
        backoff
    }

    /// A List worked; returns whether it is the first after failures.
    pub fn succeeded(&mut self) -> bool {
        std::mem::take(&mut self.failures) > 0
    }

    pub fn failures(&self) -> usize {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_backoff_doubles_from_the_poll_interval_to_a_minute_and_resets() {
        let mut backoff = ListBackoff::default();
        let poll = Duration::from_secs(5);
        let waits: Vec<u64> = (0..6).map(|_| backoff.failed(poll).as_secs()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 60, 60]);
        assert_eq!(backoff.failures(), 6);
        assert!(
            backoff.succeeded(),
            "the first success after failures says so"
        );
        assert!(!backoff.succeeded());
        assert_eq!(backoff.failed(poll), poll);
    }
}
