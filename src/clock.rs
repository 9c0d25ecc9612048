//! Wall-clock milliseconds that follow tokio's clock.
//!
//! Records in the store outlive the process, so their times are Unix milliseconds. Tests
//! run on tokio's paused clock, so "now" is the wall time at start plus tokio's elapsed
//! time: both needs met by one number.

use std::time::{SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base_ms: u64,
    base: Instant,
}

impl Clock {
    pub fn new() -> Clock {
        let base_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Clock {
            base_ms,
            base: Instant::now(),
        }
    }

    /// Unix milliseconds now.
    pub fn now_ms(&self) -> u64 {
        self.base_ms + self.base.elapsed().as_millis() as u64
    }

    /// Unix milliseconds at `at`.
    pub fn ms_at(&self, at: Instant) -> u64 {
        let after = at.saturating_duration_since(self.base).as_millis() as u64;
        let before = self.base.saturating_duration_since(at).as_millis() as u64;
        (self.base_ms + after).saturating_sub(before)
    }

    /// The instant of Unix milliseconds `ms`; `None` for one before this machine's
    /// monotonic clock began.
    pub fn instant_at(&self, ms: u64) -> Option<Instant> {
        if ms >= self.base_ms {
            Some(self.base + std::time::Duration::from_millis(ms - self.base_ms))
        } else {
            self.base
                .checked_sub(std::time::Duration::from_millis(self.base_ms - ms))
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}
