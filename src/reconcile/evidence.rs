//! Per-player evidence besides List: probe answers and app reports.
//!
//! Both end the same way as a `failed` notice once a player collects its scene's strike
//! threshold, but they count differently. A probe strike is a 404 or 5xx answer and any
//! healthy answer clears them (Agora's "three consecutive" rule, §1.9). A report strike
//! is `needed` app reports of stalled media within `window`; a window without reports
//! clears them, and a healthy API answer does not (the API can be fine while the media
//! is not).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

struct Reports {
    recent: VecDeque<Instant>,
    last: Instant,
    strikes: u32,
}

#[derive(Default)]
pub struct Evidence {
    probe_strikes: HashMap<String, u32>,
    reports: HashMap<String, Reports>,
}

impl Evidence {
    /// Counts a probe answer (`healthy` or a strike). True when the player is now failed.
    pub fn probe(&mut self, id: &str, healthy: bool, threshold: u32) -> bool {
        if healthy {
            self.probe_strikes.remove(id);
            return false;
        }
        let strikes = self.probe_strikes.entry(id.to_string()).or_insert(0);
        *strikes += 1;
        tracing::warn!(
            player = id,
            strikes = *strikes,
            threshold,
            "probe answered 404/5xx"
        );
        let failed = *strikes >= threshold;
        if failed {
            self.probe_strikes.remove(id);
        }
        failed
    }

    /// Counts an app's stall report. True when the player is now failed.
    pub fn report(
        &mut self,
        id: &str,
        now: Instant,
        window: Duration,
        needed: u32,
        threshold: u32,
    ) -> bool {
        let track = self.reports.entry(id.to_string()).or_insert(Reports {
            recent: VecDeque::new(),
            last: now,
            strikes: 0,
        });
        if now - track.last > window {
            track.strikes = 0;
        }
        track.last = now;
        track.recent.retain(|&t| now - t <= window);
        track.recent.push_back(now);
        if track.recent.len() < needed as usize {
            return false;
        }
        track.recent.clear();
        track.strikes += 1;
        tracing::warn!(
            player = id,
            strikes = track.strikes,
            threshold,
            "apps report stalled media"
        );
        let failed = track.strikes >= threshold;
        if failed {
            self.reports.remove(id);
        }
        failed
    }

    /// The larger of a player's probe and report strikes, for `/v1/scenes`.
    pub fn strikes(&self, id: &str) -> u32 {
        let probe = self.probe_strikes.get(id).copied().unwrap_or(0);
        let reports = self.reports.get(id).map_or(0, |r| r.strikes);
        probe.max(reports)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_consecutive_probe_strikes_fail_a_success_clears() {
        let mut e = Evidence::default();
        assert!(!e.probe("a", false, 3));
        assert!(!e.probe("a", false, 3));
        assert!(!e.probe("a", true, 3));
        assert_eq!(e.strikes("a"), 0);
        assert!(!e.probe("a", false, 3));
        assert!(!e.probe("a", false, 3));
        assert!(e.probe("a", false, 3));
    }

    #[tokio::test(start_paused = true)]
    async fn reports_make_strikes_per_window_and_quiet_windows_clear_them() {
        let mut e = Evidence::default();
        let window = Duration::from_secs(30);
        let report = |e: &mut Evidence| e.report("a", Instant::now(), window, 2, 2);
        assert!(!report(&mut e));
        assert!(!report(&mut e), "first strike");
        assert_eq!(e.strikes("a"), 1);
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(!report(&mut e), "a quiet window cleared the strike");
        assert_eq!(e.strikes("a"), 0);
        assert!(!report(&mut e), "a strike again");
        assert_eq!(e.strikes("a"), 1);
        assert!(!report(&mut e));
        assert!(report(&mut e), "the second strike fails the player");
    }
}
