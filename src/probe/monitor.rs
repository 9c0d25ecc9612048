//! Which sources to probe when, and what they were found to be.
//!
//! A source is *tracked* while the controller wants to know about it: a slot that needs a
//! replacement pulls it, or it was found down. A tracked source is probed at once, then
//! every `interval` while up or unknown; while down, the wait doubles from `interval` up to
//! `max_interval`, so a dead origin is not hammered yet its return is noticed within one
//! (capped) interval. Sources nobody wants are dropped, so the next failure is judged on a
//! fresh probe rather than on an old `up`. The last verdict of every source is kept apart
//! for status and metrics.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::time::Instant;

use super::Verdict;

#[derive(Debug, Clone)]
struct Tracked {
    /// The verdict of the last probe since tracking started; `None` until one returns.
    verdict: Option<Verdict>,
    /// Consecutive `down` verdicts: the back-off exponent.
    down_streak: u32,
    next_due: Instant,
    in_flight: bool,
}

/// A verdict that differs from the source's last known one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub from: Option<Verdict>,
    pub to: Verdict,
}

#[derive(Debug)]
pub struct SourceMonitor {
    interval: Duration,
    max_interval: Duration,
    tracked: BTreeMap<String, Tracked>,
    last_known: BTreeMap<String, Verdict>,
}

impl SourceMonitor {
    pub fn new(interval: Duration, max_interval: Duration) -> SourceMonitor {
        SourceMonitor {
            interval,
            max_interval: max_interval.max(interval),
            tracked: BTreeMap::new(),
            last_known: BTreeMap::new(),
        }
    }

    /// Tracks exactly `wanted`: new sources are due at once, unwanted ones are dropped
    /// (a probe still in flight for them is ignored when it returns). `configured` bounds
    /// the last-known verdicts to sources some scene still names.
    pub fn track(&mut self, wanted: &BTreeSet<String>, configured: &BTreeSet<&str>, now: Instant) {
        self.tracked.retain(|url, _| wanted.contains(url));
        for url in wanted {
            self.tracked.entry(url.clone()).or_insert(Tracked {
                verdict: None,
                down_streak: 0,
                next_due: now,
                in_flight: false,
            });
        }
        self.last_known
            .retain(|url, _| configured.contains(url.as_str()));
    }

    /// Tracked sources whose probe is due and not running; marks them running.
    pub fn start_due(&mut self, now: Instant) -> Vec<String> {
        let mut due = Vec::new();
        for (url, t) in &mut self.tracked {
            if !t.in_flight && t.next_due <= now {
                t.in_flight = true;
                due.push(url.clone());
            }
        }
        due
    }

    /// Records a probe's verdict and schedules the next probe. Returns the change against
    /// the last known verdict, if any; `None` also when the source is no longer tracked.
    pub fn record(&mut self, url: &str, verdict: Verdict, now: Instant) -> Option<Change> {
        let t = self.tracked.get_mut(url)?;
        t.in_flight = false;
        t.verdict = Some(verdict);
        let wait = if verdict == Verdict::Down {
            let wait = self
                .interval
                .saturating_mul(1 << t.down_streak.min(16))
                .min(self.max_interval);
            t.down_streak = t.down_streak.saturating_add(1);
            wait
        } else {
            t.down_streak = 0;
            self.interval
        };
        t.next_due = now + wait;
        let from = self.last_known.insert(url.to_string(), verdict);
        (from != Some(verdict)).then_some(Change { from, to: verdict })
    }

    /// The verdict found since tracking began: what replacements may rely on.
    pub fn current(&self, url: &str) -> Option<Verdict> {
        self.tracked.get(url).and_then(|t| t.verdict)
    }

    /// The last verdict ever found, for status and metrics.
    pub fn last_known(&self, url: &str) -> Option<Verdict> {
        self.last_known.get(url).copied()
    }

    /// When the next probe falls due, for the controller's wake-up.
    pub fn next_due(&self) -> Option<Instant> {
        self.tracked
            .values()
            .filter(|t| !t.in_flight)
            .map(|t| t.next_due)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "rtmp://origin/live/a";

    fn wanted(urls: &[&str]) -> BTreeSet<String> {
        urls.iter().map(|u| u.to_string()).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn down_sources_back_off_doubling_to_the_cap_and_up_resets() {
        let s = Duration::from_secs;
        let mut m = SourceMonitor::new(s(1), s(8));
        let configured = BTreeSet::from([URL]);
        m.track(&wanted(&[URL]), &configured, Instant::now());
        let mut gaps = Vec::new();
        let mut last = Instant::now();
        for _ in 0..6 {
            let at = m.next_due().unwrap();
            tokio::time::sleep_until(at).await;
            assert_eq!(m.start_due(Instant::now()), vec![URL.to_string()]);
            assert!(
                m.start_due(Instant::now()).is_empty(),
                "one probe at a time"
            );
            gaps.push(Instant::now() - last);
            last = Instant::now();
            m.record(URL, Verdict::Down, Instant::now());
        }
        assert_eq!(gaps, vec![s(0), s(1), s(2), s(4), s(8), s(8)]);
        assert_eq!(m.current(URL), Some(Verdict::Down));

        tokio::time::sleep_until(m.next_due().unwrap()).await;
        m.start_due(Instant::now());
        m.record(URL, Verdict::Up, Instant::now());
        assert_eq!(
            m.next_due().unwrap() - Instant::now(),
            s(1),
            "back to the interval"
        );
        m.start_due(Instant::now() + s(1));
        m.record(URL, Verdict::Down, Instant::now() + s(1));
        assert_eq!(
            m.next_due().unwrap() - Instant::now(),
            s(2),
            "streak restarted"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn changes_are_reported_once_and_untracked_sources_start_fresh() {
        let mut m = SourceMonitor::new(Duration::from_secs(1), Duration::from_secs(4));
        let configured = BTreeSet::from([URL]);
        let now = Instant::now();
        m.track(&wanted(&[URL]), &configured, now);
        assert_eq!(
            m.current(URL),
            None,
            "pending until the first probe returns"
        );
        m.start_due(now);
        assert_eq!(
            m.record(URL, Verdict::Down, now),
            Some(Change {
                from: None,
                to: Verdict::Down
            })
        );
        m.start_due(now + Duration::from_secs(1));
        assert_eq!(m.record(URL, Verdict::Down, now), None, "no change");

        m.track(&BTreeSet::new(), &configured, now);
        assert_eq!(m.current(URL), None, "dropped");
        assert_eq!(m.last_known(URL), Some(Verdict::Down), "still reported");
        assert_eq!(m.record(URL, Verdict::Up, now), None, "late answer ignored");
        assert_eq!(m.next_due(), None);

        m.track(&wanted(&[URL]), &configured, now);
        assert_eq!(m.start_due(now), vec![URL.to_string()], "due at once");
        m.track(&BTreeSet::new(), &BTreeSet::new(), now);
        assert_eq!(m.last_known(URL), None, "forgotten with its scene");
    }
}
