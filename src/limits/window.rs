//! Sliding-window rate limiting for calls to Agora.
//!
//! Agora documents its limits as "N per second" and, for List, "N per minute" as well
//! (reference §1.10), without saying how it counts. A token bucket refilled at N/s lets
//! almost 2N calls through a one-second window that straddles a burst and its refill,
//! which a server counting per window answers with 429. So this limiter keeps the send
//! times of the last N calls and never lets an (N+1)th call into any window: whatever
//! Agora's counting is, pullkeeper stays inside it. A small margin widens each window
//! because a request sent 1.0 s after another can arrive a few milliseconds sooner.
//!
//! Time is `tokio::time::Instant`, so the limiter runs on tokio's paused clock in tests.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::{Instant, sleep_until};

/// How many calls a window admits, and how long it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSpec {
    pub limit: u32,
    pub length: Duration,
}

/// One window's log of send times, oldest first.
#[derive(Debug)]
struct Log {
    spec: WindowSpec,
    sent: VecDeque<Instant>,
}

impl Log {
    /// The earliest instant at which one more call fits in this window.
    fn next_free(&mut self, now: Instant) -> Instant {
        while let Some(&t) = self.sent.front() {
            if t + self.spec.length <= now {
                self.sent.pop_front();
            } else {
                break;
            }
        }
        if (self.sent.len() as u32) < self.spec.limit {
            now
        } else {
            // Full: the call fits once the oldest of the last `limit` calls leaves.
            let idx = self.sent.len() - self.spec.limit as usize;
            self.sent[idx] + self.spec.length
        }
    }
}

#[derive(Debug)]
struct State {
    logs: Vec<Log>,
    /// Set after a 429: nobody sends before this instant.
    paused_until: Option<Instant>,
}

/// A limiter for one API of one project; all of its windows apply at once.
#[derive(Debug)]
pub struct RateLimiter {
    state: Mutex<State>,
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
                sent: VecDeque::with_capacity(spec.limit.min(1024) as usize),
            })
            .collect();
        RateLimiter {
            state: Mutex::new(State {
                logs,
                paused_until: None,
            }),
        }
    }

    /// Waits until a call may be sent and records it as sent. Returns how long it waited,
    /// which the caller reports as rate-limit wait time.
    ///
    /// The lock is held while sleeping on purpose: callers are served in arrival order
    /// (tokio's mutex is fair), so a burst drains at exactly the permitted rate.
    pub async fn acquire(&self) -> Duration {
        let start = Instant::now();
        let mut state = self.state.lock().await;
        loop {
            let now = Instant::now();
            let mut at = state.paused_until.filter(|&p| p > now).unwrap_or(now);
            for log in &mut state.logs {
                at = at.max(log.next_free(now));
            }
            if at <= now {
                for log in &mut state.logs {
                    log.sent.push_back(now);
                }
                return now - start;
            }
            sleep_until(at).await;
        }
    }

    /// Stops all calls until `until`, e.g. after a 429 with `Retry-After`.
    pub async fn pause_until(&self, until: Instant) {
        let mut state = self.state.lock().await;
        if state.paused_until.is_none_or(|p| p < until) {
            state.paused_until = Some(until);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn per_second(n: u32) -> WindowSpec {
        WindowSpec {
            limit: n,
            length: Duration::from_secs(1),
        }
    }

    /// Send times (ms since start) of `calls` sequential acquisitions.
    async fn send_times(limiter: &RateLimiter, calls: usize) -> Vec<u128> {
        let start = Instant::now();
        let mut out = Vec::new();
        for _ in 0..calls {
            limiter.acquire().await;
            out.push((Instant::now() - start).as_millis());
        }
        out
    }

    #[tokio::test(start_paused = true)]
    async fn never_more_than_limit_in_any_window() {
        let limiter = RateLimiter::new([per_second(2)]);
        let times = send_times(&limiter, 6).await;
        assert_eq!(times, vec![0, 0, 1000, 1000, 2000, 2000]);
    }

    #[tokio::test(start_paused = true)]
    async fn both_windows_apply() {
        let limiter = RateLimiter::new([
            per_second(10),
            WindowSpec {
                limit: 20,
                length: Duration::from_secs(60),
            },
        ]);
        let times = send_times(&limiter, 21).await;
        assert_eq!(times[9], 0);
        assert_eq!(times[10], 1000);
        assert_eq!(times[19], 1000);
        // The 21st waits for the first minute window to slide past the first call.
        assert_eq!(times[20], 60_000);
    }

    #[tokio::test(start_paused = true)]
    async fn pause_delays_everyone() {
        let limiter = RateLimiter::new([per_second(100)]);
        limiter
            .pause_until(Instant::now() + Duration::from_secs(5))
            .await;
        let waited = limiter.acquire().await;
        assert_eq!(waited, Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn zero_limit_means_unlimited() {
        let limiter = RateLimiter::new([per_second(0)]);
        let times = send_times(&limiter, 1000).await;
        assert_eq!(times.last(), Some(&0));
    }
}
