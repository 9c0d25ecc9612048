//! Limits pullkeeper imposes on itself so Agora never has to: per-API call rates, and
//! the retreat schedule Agora prescribes after a refusal.

pub mod journal;
pub mod window;

use std::time::Duration;

pub use journal::{journaled, restore};
pub use window::{RateLimiter, WindowSpec};

/// Agora's retreat after a 404, 429 or 5xx (docs/agora-api.md §1.9): 5–6 s before the
/// first retry, 10–11 s before the second, 15–16 s before the third and every later one.
pub const RETREAT: [Duration; 3] = [
    Duration::from_secs(5),
    Duration::from_secs(10),
    Duration::from_secs(15),
];

/// The wait before retry number `step + 1` (0-based; past the schedule's end, its last
/// step), with up to 1 s of jitter so many failures do not retry in lockstep.
pub fn retreat(step: usize) -> Duration {
    RETREAT[step.min(RETREAT.len() - 1)] + Duration::from_millis(rand::random_range(0..1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retreat_steps_5_10_15_seconds_with_under_a_second_of_jitter() {
        for (step, base) in [(0, 5), (1, 10), (2, 15), (3, 15), (99, 15)] {
            for _ in 0..50 {
                let wait = retreat(step);
                assert!(
                    wait >= Duration::from_secs(base) && wait < Duration::from_secs(base + 1),
                    "step {step}: {wait:?}"
                );
            }
        }
    }
}
