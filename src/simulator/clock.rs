//! The simulator's clock.
//!
//! Tests must be able to jump over Agora's waits (10 s list lag, 60 s QPS windows)
//! without sleeping, so simulator time is tokio's clock plus an offset that `advance()`
//! grows. Wall-clock values on the wire (`createTs` seconds, `lts`/`notifyMs` ms) are the
//! real time at start plus the same elapsed simulator time, so they move in step.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

#[derive(Debug)]
pub struct SimClock {
    start: Instant,
    start_wall_ms: u64,
    offset: Mutex<Duration>,
}

impl SimClock {
    pub fn new() -> SimClock {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        SimClock {
            start: Instant::now(),
            start_wall_ms: u64::try_from(wall.as_millis()).unwrap_or(u64::MAX),
            offset: Mutex::new(Duration::ZERO),
        }
    }

    fn offset(&self) -> Duration {
        *self.offset.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Current simulator instant.
    pub fn now(&self) -> Instant {
        Instant::now() + self.offset()
    }

    /// Moves simulator time forward; it never goes back.
    pub fn advance(&self, d: Duration) {
        let mut off = self.offset.lock().unwrap_or_else(|e| e.into_inner());
        *off += d;
    }

    /// Simulator time elapsed since start, in ms (the `at_ms` of logs).
    pub fn elapsed_ms(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.start).as_millis()).unwrap_or(u64::MAX)
    }

    /// Simulator time elapsed since start, in µs (latency benchmarks).
    pub fn elapsed_us(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.start).as_micros()).unwrap_or(u64::MAX)
    }

    /// Unix milliseconds of a simulator instant (`lts`, `notifyMs`).
    pub fn wall_ms(&self, at: Instant) -> u64 {
        self.start_wall_ms.saturating_add(self.elapsed_ms(at))
    }

    /// Unix seconds of a simulator instant (`createTs`).
    pub fn unix_s(&self, at: Instant) -> i64 {
        i64::try_from(self.wall_ms(at) / 1000).unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn advance_moves_both_clocks() {
        let c = SimClock::new();
        let t0 = c.now();
        let w0 = c.wall_ms(t0);
        c.advance(Duration::from_secs(10));
        let t1 = c.now();
        assert!(t1.duration_since(t0) >= Duration::from_secs(10));
        assert!(c.wall_ms(t1) - w0 >= 10_000);
        assert!(c.elapsed_ms(t1) >= 10_000);
    }
}
