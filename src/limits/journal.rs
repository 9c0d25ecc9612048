//! Rate windows that survive a restart.
//!
//! A process that starts with empty windows may send a full window's worth of calls at
//! once, while Agora still counts those its predecessor made a moment ago: after a
//! `kill -9` in a create burst and a quick restart, two creates answered 429 (measured
//! from outside). So every limiter writes its latest calls to the store on each send
//! and answer, and a new process counts them in its windows. The store writes them to
//! disk at its next periodic flush, without a flush of their own (that would be a disk
//! sync per API call); calls made in the last moments before a kill may be missing, so
//! a limiter that finds calls recorded also sends nothing for its shortest window
//! (one second: 1 s plus a margin) after the start, which covers those in the
//! per-second windows.

use std::time::Duration;

use tokio::time::Instant;

use super::RateLimiter;
use crate::clock::Clock;
use crate::store::{Store, StoreError};

/// How a call still in flight is recorded: when the next process starts, it counts as
/// answered right then.
const IN_FLIGHT: u64 = u64::MAX;

/// Calls older than this count in no window (the longest is a minute plus a margin).
const FORGOTTEN: Duration = Duration::from_secs(120);

/// `limiter`, with the calls the store recorded for `project`'s `api` counted in its
/// windows, and recording its own from now on.
pub fn journaled(
    limiter: RateLimiter,
    store: &Store,
    clock: Clock,
    project: &str,
    api: &'static str,
) -> RateLimiter {
    restore(&limiter, store, clock, project, api);
    let store = store.clone();
    let project = project.to_string();
    limiter.with_journal(Box::new(move |calls| {
        let at_ms: Vec<u64> = calls
            .iter()
            .map(|c| c.map_or(IN_FLIGHT, |at| clock.ms_at(at)))
            .collect();
        if let Err(e) = store.put_api_calls(&project, api, &at_ms) {
            tracing::warn!(project = %project, api, error = %e,
                "cannot record this API's calls for the next start");
        }
    }))
}

/// Counts in `limiter`'s windows the calls the store recorded for `project`'s `api`:
/// at a start, those of the process before; at a takeover (etcd), those of the
/// previous leader, so Agora never sees more than its limit across either.
pub fn restore(limiter: &RateLimiter, store: &Store, clock: Clock, project: &str, api: &str) {
    let recorded = match store.api_calls(project, api) {
        Ok(calls) => calls,
        // With etcd, a project is read only by its leader; until this replica leads it
        // (if ever), its first calls wait out the shortest window, as below.
        Err(StoreError::NotLeader { .. }) => vec![IN_FLIGHT],
        Err(e) => {
            tracing::warn!(project, api, error = %e,
                "cannot read the last calls of this API; waiting out its shortest window");
            vec![IN_FLIGHT]
        }
    };
    let now = Instant::now();
    let answered: Vec<Instant> = recorded
        .iter()
        .filter_map(|&ms| match ms {
            IN_FLIGHT => Some(now),
            ms => match clock.instant_at(ms) {
                Some(at) if at + FORGOTTEN < now => None,
                // A wall clock that went back must not make a call count longer.
                Some(at) => Some(at.min(now)),
                None => Some(now),
            },
        })
        .collect();
    if !recorded.is_empty() {
        limiter.restore(&answered, limiter.shortest_window());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::WindowSpec;

    fn limiter(limit: u32, secs: u64) -> RateLimiter {
        RateLimiter::new([WindowSpec {
            limit,
            length: Duration::from_secs(secs),
        }])
    }

    /// List's windows: 10 per second and 20 per minute.
    fn list_limiter() -> RateLimiter {
        RateLimiter::new([
            WindowSpec {
                limit: 10,
                length: Duration::from_secs(1),
            },
            WindowSpec {
                limit: 20,
                length: Duration::from_secs(60),
            },
        ])
    }

    async fn calls(limiter: &RateLimiter, n: usize) {
        for _ in 0..n {
            let (_, call) = limiter.acquire().await;
            drop(call);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_fresh_store_waits_for_nothing() {
        let store = Store::temporary().unwrap();
        let limiter = journaled(limiter(2, 1), &store, Clock::new(), "p", "create");
        let (waited, _call) = limiter.acquire().await;
        assert_eq!(waited, Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_restart_counts_the_calls_its_predecessor_made() {
        let store = Store::temporary().unwrap();
        let clock = Clock::new();
        // The first process fills a 20-per-minute window within 19 s.
        {
            let first = journaled(list_limiter(), &store, clock, "p", "list");
            for _ in 0..20 {
                calls(&first, 1).await;
                tokio::time::advance(Duration::from_secs(1)).await;
            }
        }
        // Killed at once; the next process may call only once the first call is a
        // minute old, 40 s from now (longer than the shortest window's 1 s of quiet).
        let second = journaled(list_limiter(), &store, clock, "p", "list");
        let (waited, _call) = second.acquire().await;
        assert_eq!(waited, Duration::from_secs(40));
    }

    #[tokio::test(start_paused = true)]
    async fn a_restart_waits_out_the_shortest_window_for_calls_it_cannot_know() {
        let store = Store::temporary().unwrap();
        let clock = Clock::new();
        let first = journaled(limiter(2, 1), &store, clock, "p", "create");
        calls(&first, 1).await;
        // A call sent and never answered: the process died with it in flight.
        let (_, in_flight) = first.acquire().await;
        std::mem::forget(in_flight);
        tokio::time::advance(Duration::from_millis(300)).await;
        let second = journaled(limiter(2, 1), &store, clock, "p", "create");
        let started = Instant::now();
        calls(&second, 2).await;
        // The unanswered call counts as answered at the restart; the recorded one and
        // whatever the store may have missed are covered by one window of quiet.
        assert_eq!(started.elapsed(), Duration::from_secs(1));
        let (waited, _call) = second.acquire().await;
        assert_eq!(waited, Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn another_projects_or_apis_calls_do_not_count() {
        let store = Store::temporary().unwrap();
        let clock = Clock::new();
        let first = journaled(limiter(1, 1), &store, clock, "p", "create");
        calls(&first, 1).await;
        for (project, api) in [("q", "create"), ("p", "delete")] {
            let other = journaled(limiter(1, 1), &store, clock, project, api);
            let (waited, _call) = other.acquire().await;
            assert_eq!(waited, Duration::ZERO, "{project} {api}");
        }
    }
}
