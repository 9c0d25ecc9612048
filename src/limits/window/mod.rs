//! Sliding-window rate limiting for calls to Agora.
//!
//! Agora documents its limits as "N per second" and, for List, "N per minute" as well
//! (docs/agora-api.md §1.10), without saying how it counts. A token bucket refilled at
//! N/s lets almost 2N calls through a one-second window that straddles a burst and its
//! refill, which a server counting per window answers with 429. So this limiter keeps a
//! log of the last N calls and never lets an (N+1)th call into any window: whatever
//! Agora's counting is, pullkeeper stays inside it.
//!
//! Agora counts *arrivals*, and a request arrives somewhere between its send and its
//! answer. So a call holds its place in every window from its send until its answer,
//! and the window runs from the answer: then no later call, whatever its own transit,
//! can arrive within a window of an earlier one. Counting from the send instead let a
//! delayed request land in the next second together with two on-time ones: at 200
//! projects on two busy cores, 10–190 answers 429 per run, each pausing the project's
//! creates for 5 s (BENCHMARKS.md). The price is a window lengthened by one round trip.
//! A small margin also widens each window, for the granularity of the two clocks.
//!
//! Time is `tokio::time::Instant`, so the limiter runs on tokio's paused clock in tests.

use std::time::Duration;

use std::cmp::Reverse;
use std::collections::BTreeSet;
use std::sync::Mutex;

use tokio::sync::Notify;
use tokio::time::{Instant, sleep_until};

/// How many calls a window admits, and how long it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSpec {
    pub limit: u32,
    pub length: Duration,
}

/// A call in a window's log: in flight (`answered == None`) or answered at that instant.
#[derive(Debug)]
struct Call {
    ticket: u64,
    answered: Option<Instant>,
}

/// One window's log of the calls that still count in it.
#[derive(Debug)]
struct Log {
    spec: WindowSpec,
    calls: Vec<Call>,
}

impl Log {
    /// The earliest instant at which one more call fits in this window; `None` while
    /// that depends on calls still in flight (their answers wake the waiters).
    fn next_free(&mut self, now: Instant) -> Option<Instant> {
        let length = self.spec.length;
        self.calls
            .retain(|c| c.answered.is_none_or(|at| at + length > now));
        let limit = self.spec.limit as usize;
        if self.calls.len() < limit {
            return Some(now);
        }
        // Full: the call fits once `len - limit + 1` of these calls have left.
        let mut leave: Vec<Instant> = self
            .calls
            .iter()
            .filter_map(|c| c.answered.map(|at| at + length))
            .collect();
        leave.sort_unstable();
        leave.get(self.calls.len() - limit).copied()
    }
}

/// Receives the calls that still count in the limiter's longest window after every send
/// and every answer: the instant each was answered, or `None` while it is in flight.
pub type Journal = dyn Fn(&[Option<Instant>]) + Send + Sync;

/// A limiter for one API of one project; all of its windows apply at once.
pub struct RateLimiter {
    state: Mutex<State>,
    /// Signalled whenever a caller is served, so the next in rank order re-checks.
    served: Notify,
    /// Where the calls go so that a restarted process can count them (see `journal`).
    journal: Option<Box<Journal>>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct State {
    logs: Vec<Log>,
    /// Set after a 429: nobody sends before this instant.
    paused_until: Option<Instant>,
    /// 429s answered in a row: each steps the next pause along the retreat schedule.
    refusals: usize,
    /// Callers waiting, best rank first, then arrival order.
    waiting: BTreeSet<(Reverse<i64>, u64)>,
    next_ticket: u64,
}

impl RateLimiter {
    /// A limiter with the given windows. A window with `limit == 0` is ignored, so a limit
    /// can be switched off in configuration.
    pub fn new(windows: impl IntoIterator<Item = WindowSpec>) -> Self {
        let logs = windows
            .into_iter()
            .filter(|w| w.limit > 0)
            .map(|spec| Log {
                spec,
                // Grown on use: most of a project's six limiters stay nearly empty, and
                // sized to their limits up front they were 6 KiB a project.
                calls: Vec::new(),
            })
            .collect();
        RateLimiter {
            state: Mutex::new(State {
                logs,
                paused_until: None,
                refusals: 0,
                waiting: BTreeSet::new(),
                next_ticket: 0,
            }),
            served: Notify::new(),
            journal: None,
        }
    }

    /// Hands every call to `journal` as it is sent and answered.
    pub fn with_journal(mut self, journal: Box<Journal>) -> Self {
        self.journal = Some(journal);
        self
    }

    /// Counts calls an earlier process made, answered at `answered`, in every window,
    /// and sends nothing for `quiet` (the calls it may have made too late to be
    /// recorded: at least the shortest window covers them there).
    pub fn restore(&self, answered: &[Instant], quiet: Duration) {
        let mut state = self.lock();
        for &at in answered {
            let ticket = state.next_ticket;
            state.next_ticket += 1;
            for log in state.logs.iter_mut() {
                log.calls.push(Call {
                    ticket,
                    answered: Some(at),
                });
            }
        }
        drop(state);
        self.pause_until(Instant::now() + quiet);
    }

    /// The shortest window's length (zero without windows).
    pub fn shortest_window(&self) -> Duration {
        let state = self.lock();
        state
            .logs
            .iter()
            .map(|l| l.spec.length)
            .min()
            .unwrap_or_default()
    }

    /// Hands the calls of the longest window to the journal, if there is one.
    fn write_journal(&self, state: &State) {
        let Some(journal) = &self.journal else {
            return;
        };
        if let Some(log) = state.logs.iter().max_by_key(|l| l.spec.length) {
            let calls: Vec<Option<Instant>> = log.calls.iter().map(|c| c.answered).collect();
            journal(&calls);
        }
    }

    /// Waits until a call may be sent and records it as sent. Returns how long it waited,
    /// which the caller reports as rate-limit wait time, and the call's place in the
    /// windows: drop it when the answer (or the failure) has come. Callers are served in
    /// arrival order, so a burst drains at exactly the permitted rate.
    pub async fn acquire(&self) -> (Duration, InFlight<'_>) {
        self.acquire_ranked(0).await
    }

    /// [`acquire`](Self::acquire), but waiting callers with a higher `rank` go first (in
    /// a failure storm, a master's replacement overtakes backups queued before it).
    pub async fn acquire_ranked(&self, rank: i64) -> (Duration, InFlight<'_>) {
        let start = Instant::now();
        let me = {
            let mut state = self.lock();
            let ticket = state.next_ticket;
            state.next_ticket += 1;
            let me = (Reverse(rank), ticket);
            state.waiting.insert(me);
            me
        };
        // Leaves the queue even if the caller stops waiting (its future is dropped).
        let _leave = Leave { limiter: self, me };
        loop {
            let served = self.served.notified();
            let at = {
                let mut state = self.lock();
                let now = Instant::now();
                let mut at = Some(state.paused_until.filter(|&p| p > now).unwrap_or(now));
                for log in state.logs.iter_mut() {
                    at = at.zip(log.next_free(now)).map(|(a, b)| a.max(b));
                }
                if at.is_some_and(|at| at <= now) && state.waiting.first() == Some(&me) {
                    let ticket = me.1;
                    for log in state.logs.iter_mut() {
                        log.calls.push(Call {
                            ticket,
                            answered: None,
                        });
                    }
                    // Under the lock, so journal entries are written in the order of
                    // the calls and a later one never loses to an earlier one.
                    self.write_journal(&state);
                    let call = InFlight {
                        limiter: self,
                        ticket,
                    };
                    return (now - start, call);
                }
                at.map(|at| at.max(now))
            };
            // Wake when a place frees, when someone else was served (the queue moved),
            // or when a call in flight was answered.
            tokio::select! {
                _ = sleep_until(at.unwrap_or(Instant::now())), if at.is_some_and(|at| at > Instant::now()) => {}
                _ = served => {}
            }
        }
    }

    /// Stops all calls until `until`, e.g. after a 429 with `Retry-After`.
    pub fn pause_until(&self, until: Instant) {
        let mut state = self.lock();
        if state.paused_until.is_none_or(|p| p < until) {
            state.paused_until = Some(until);
        }
    }

    /// A call was answered 429: every call waits `retry_after` if Agora sent one, else
    /// the next step of the retreat (§1.9): 5–6 s after the first 429 in a row, 10–11 s
    /// after the second, 15–16 s after the third and later ones. Returns the pause.
    pub fn rate_limited(&self, retry_after: Option<Duration>) -> Duration {
        let step = {
            let mut state = self.lock();
            state.refusals += 1;
            state.refusals - 1
        };
        let pause = retry_after.unwrap_or_else(|| super::retreat(step));
        self.pause_until(Instant::now() + pause);
        pause
    }

    /// A call got an answer other than 429: the next 429 starts the retreat afresh.
    pub fn not_rate_limited(&self) {
        self.lock().refusals = 0;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A call sent and not yet answered; dropping it records the answer.
#[must_use = "the call counts as in flight until this is dropped"]
#[derive(Debug)]
pub struct InFlight<'a> {
    limiter: &'a RateLimiter,
    ticket: u64,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let now = Instant::now();
        let mut state = self.limiter.lock();
        for log in state.logs.iter_mut() {
            if let Some(call) = log.calls.iter_mut().find(|c| c.ticket == self.ticket) {
                call.answered = Some(now);
            }
        }
        self.limiter.write_journal(&state);
        drop(state);
        self.limiter.served.notify_waiters();
    }
}

/// Removes a caller from the queue when it is served or gives up, and lets the next go.
struct Leave<'a> {
    limiter: &'a RateLimiter,
    me: (Reverse<i64>, u64),
}

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.limiter.lock().waiting.remove(&self.me);
        self.limiter.served.notify_waiters();
    }
}

#[cfg(test)]
mod tests;
