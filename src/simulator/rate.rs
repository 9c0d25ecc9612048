//! Sliding-window QPS limits (§1.10).
//!
//! Agora states limits "per second" and "per minute" per project and API. A sliding
//! window over the last 1 s and 60 s is the strictest reading: no burst at a window
//! boundary can exceed the limit. Only admitted requests count, so a client that keeps
//! retrying after a 429 is not locked out forever.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use super::config::Window;

const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);

/// The admitted requests of one API of one project, newest last.
#[derive(Debug, Default)]
pub struct RateWindow {
    admitted: VecDeque<Instant>,
}

impl RateWindow {
    /// Admits (and records) a request at `now` if it fits both windows of `limit`.
    pub fn try_admit(&mut self, now: Instant, limit: Window) -> bool {
        let keep = if limit.per_minute.is_some() {
            MINUTE
        } else {
            SECOND
        };
        while self
            .admitted
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= keep)
        {
            self.admitted.pop_front();
        }
        let last_second = self
            .admitted
            .iter()
            .rev()
            .take_while(|t| now.saturating_duration_since(**t) < SECOND)
            .count();
        if last_second >= limit.per_second as usize {
            return false;
        }
        if limit
            .per_minute
            .is_some_and(|per_minute| self.admitted.len() >= per_minute as usize)
        {
            return false;
        }
        self.admitted.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn per_second_window_slides() {
        let mut w = RateWindow::default();
        let limit = Window::per_second(2);
        let t0 = Instant::now();
        assert!(w.try_admit(t0, limit));
        assert!(w.try_admit(t0 + Duration::from_millis(500), limit));
        assert!(!w.try_admit(t0 + Duration::from_millis(900), limit));
        // The first request leaves the window at exactly 1 s.
        assert!(w.try_admit(t0 + Duration::from_millis(1000), limit));
        assert!(!w.try_admit(t0 + Duration::from_millis(1400), limit));
        assert!(w.try_admit(t0 + Duration::from_millis(1500), limit));
    }

    #[tokio::test(start_paused = true)]
    async fn per_minute_window_applies_even_when_spread_out() {
        let mut w = RateWindow::default();
        let limit = Window {
            per_second: 10,
            per_minute: Some(3),
        };
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(w.try_admit(t0 + Duration::from_secs(i * 5), limit));
        }
        assert!(!w.try_admit(t0 + Duration::from_secs(30), limit));
        assert!(w.try_admit(t0 + Duration::from_secs(60), limit));
    }

    #[tokio::test(start_paused = true)]
    async fn rejected_requests_do_not_count() {
        let mut w = RateWindow::default();
        let limit = Window::per_second(1);
        let t0 = Instant::now();
        assert!(w.try_admit(t0, limit));
        for ms in [100, 200, 300] {
            assert!(!w.try_admit(t0 + Duration::from_millis(ms), limit));
        }
        assert!(w.try_admit(t0 + Duration::from_millis(1000), limit));
    }
}
