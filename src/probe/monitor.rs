//! Which sources to probe when, and what they were found to be.
//!
//! Every source a scene names is tracked: probed at once, then every `interval` while up
//! or unknown; while down, the wait doubles from `interval` up to `max_interval`, so a
//! dead origin is not hammered yet its return is noticed within one (capped) interval.
//! So the on-air choice always knows whether a running player's source still plays.
//!
//! A replacement must not rely on a verdict older than the failure it replaces: a source
//! some held slot pulls is *wanted* from the moment it is held, and only a probe started
//! since then clears the slot ([`SourceMonitor::fresh`]). A source no scene names any
//! more is forgotten.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::time::Instant;

use super::Verdict;

#[derive(Debug, Clone)]
struct Tracked {
    /// The verdict of the last probe; `None` until one returns.
    verdict: Option<Verdict>,
    /// When the probe that found `verdict` started.
    probed_at: Option<Instant>,
    /// When the verdict last left `down`; `None` while down or never down.
    clear_since: Option<Instant>,
    /// Consecutive `down` verdicts: the back-off exponent.
    down_streak: u32,
    next_due: Instant,
    /// When the probe in flight started.
    in_flight: Option<Instant>,
    /// Since when a held slot has waited for a verdict on this source.
    wanted_since: Option<Instant>,
}

/// A verdict that differs from the source's last known one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub from: Option<Verdict>,
    pub to: Verdict,
}

/// What the on-air choice needs to know about a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// The last probe found it down.
    Down,
    /// Not down; `since` is when it came back from down, if it ever was.
    Clear { since: Option<Instant> },
}

#[derive(Debug)]
pub struct SourceMonitor {
    interval: Duration,
    max_interval: Duration,
    tracked: BTreeMap<String, Tracked>,
}

impl SourceMonitor {
    pub fn new(interval: Duration, max_interval: Duration) -> SourceMonitor {
        SourceMonitor {
            interval,
            max_interval: max_interval.max(interval),
            tracked: BTreeMap::new(),
        }
    }

    /// Tracks exactly `sources`: new ones are due at once, others are forgotten (a probe
    /// still in flight for them is ignored when it returns).
    pub fn track(&mut self, sources: &BTreeSet<&str>, now: Instant) {
        self.tracked.retain(|url, _| sources.contains(url.as_str()));
        for url in sources {
            if !self.tracked.contains_key(*url) {
                self.tracked.insert(
                    url.to_string(),
                    Tracked {
                        verdict: None,
                        probed_at: None,
                        clear_since: None,
                        down_streak: 0,
                        next_due: now,
                        in_flight: None,
                        wanted_since: None,
                    },
                );
            }
        }
    }

    /// Marks the sources held slots wait for: one newly wanted is probed at once (or as
    /// soon as the probe in flight, which started too early to count, returns).
    pub fn want(&mut self, held: &BTreeSet<&str>, now: Instant) {
        for (url, t) in &mut self.tracked {
            if !held.contains(url.as_str()) {
                t.wanted_since = None;
            } else if t.wanted_since.is_none() {
                t.wanted_since = Some(now);
                t.next_due = t.next_due.min(now);
            }
        }
    }

    /// Tracked sources whose probe is due and not running; marks them running.
    pub fn start_due(&mut self, now: Instant) -> Vec<String> {
        let mut due = Vec::new();
        for (url, t) in &mut self.tracked {
            if t.in_flight.is_none() && t.next_due <= now {
                t.in_flight = Some(now);
                due.push(url.clone());
            }
        }
        due
    }

    /// Records a probe's verdict and schedules the next probe. Returns the change against
    /// the last verdict, if any; `None` also when the source is no longer tracked.
    pub fn record(&mut self, url: &str, verdict: Verdict, now: Instant) -> Option<Change> {
        let t = self.tracked.get_mut(url)?;
        let started = t.in_flight.take().unwrap_or(now);
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
        // A slot began waiting while this probe ran: it needs one started since.
        let stale_for_wanted = t.wanted_since.is_some_and(|w| started < w);
        t.next_due = if stale_for_wanted { now } else { now + wait };
        let from = t.verdict.replace(verdict);
        t.probed_at = Some(started);
        if verdict == Verdict::Down {
            t.clear_since = None;
        } else if from == Some(Verdict::Down) {
            t.clear_since = Some(now);
        }
        (from != Some(verdict)).then_some(Change { from, to: verdict })
    }

    /// The last verdict found, for status and metrics.
    pub fn current(&self, url: &str) -> Option<Verdict> {
        self.tracked.get(url).and_then(|t| t.verdict)
    }

    /// The verdict a held slot may rely on: one from a probe started since it began to
    /// wait. `None` while there is none (or the source is not wanted).
    pub fn fresh(&self, url: &str) -> Option<Verdict> {
        let t = self.tracked.get(url)?;
        let wanted = t.wanted_since?;
        t.probed_at.filter(|&at| at >= wanted).and(t.verdict)
    }

    /// Whether the source is down, and if not since when it is back.
    pub fn health(&self, url: &str) -> Health {
        match self.tracked.get(url) {
            Some(t) if t.verdict == Some(Verdict::Down) => Health::Down,
            Some(t) => Health::Clear {
                since: t.clear_since,
            },
            None => Health::Clear { since: None },
        }
    }

    /// When the next probe falls due, for the controller's wake-up.
    pub fn next_due(&self) -> Option<Instant> {
        self.tracked
            .values()
            .filter(|t| t.in_flight.is_none())
            .map(|t| t.next_due)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "rtmp://origin/live/a";

    fn only(url: &str) -> BTreeSet<&str> {
        BTreeSet::from([url])
    }

    #[tokio::test(start_paused = true)]
    async fn down_sources_back_off_doubling_to_the_cap_and_up_resets() {
        let s = Duration::from_secs;
        let mut m = SourceMonitor::new(s(1), s(8));
        m.track(&only(URL), Instant::now());
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
        assert_eq!(m.health(URL), Health::Down);

        tokio::time::sleep_until(m.next_due().unwrap()).await;
        m.start_due(Instant::now());
        m.record(URL, Verdict::Up, Instant::now());
        assert_eq!(
            m.health(URL),
            Health::Clear {
                since: Some(Instant::now())
            },
            "back since this probe"
        );
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

    /// An up (or `unknown`) source is probed again `interval` after each probe returns:
    /// what bounds how long a player on a source that died stays on air (`interval` plus
    /// the probe; the switch is made in the pass that takes in the `down` verdict).
    #[tokio::test(start_paused = true)]
    async fn a_source_not_down_is_probed_every_interval() {
        let mut m = SourceMonitor::new(Duration::from_millis(500), Duration::from_secs(8));
        m.track(&only(URL), Instant::now());
        let mut gaps = Vec::new();
        let mut last = Instant::now();
        for verdict in [Verdict::Up, Verdict::Unknown, Verdict::Up, Verdict::Up] {
            tokio::time::sleep_until(m.next_due().unwrap()).await;
            assert_eq!(m.start_due(Instant::now()), vec![URL.to_string()]);
            gaps.push(Instant::now() - last);
            last = Instant::now();
            // The probe takes 100 ms.
            tokio::time::advance(Duration::from_millis(100)).await;
            m.record(URL, verdict, Instant::now());
        }
        let ms = Duration::from_millis;
        assert_eq!(gaps, vec![ms(0), ms(600), ms(600), ms(600)]);
    }

    /// The README's promise: with the defaults (5 s, 8 s: `config::settings::tests`), a
    /// down source is re-probed at least every 8 s however long it has been down, so its
    /// return is seen within 8 s plus the probe.
    #[tokio::test(start_paused = true)]
    async fn with_the_defaults_a_returning_source_is_seen_within_eight_seconds() {
        let mut m = SourceMonitor::new(Duration::from_secs(5), Duration::from_secs(8));
        m.track(&only(URL), Instant::now());
        let mut longest = Duration::ZERO;
        for _ in 0..20 {
            let at = m.next_due().unwrap();
            longest = longest.max(at - Instant::now());
            tokio::time::sleep_until(at).await;
            m.start_due(Instant::now());
            m.record(URL, Verdict::Down, Instant::now());
        }
        assert_eq!(longest, Duration::from_secs(8));
    }

    #[tokio::test(start_paused = true)]
    async fn changes_are_reported_once_and_forgotten_sources_start_fresh() {
        let mut m = SourceMonitor::new(Duration::from_secs(1), Duration::from_secs(4));
        let now = Instant::now();
        m.track(&only(URL), now);
        assert_eq!(
            m.current(URL),
            None,
            "pending until the first probe returns"
        );
        assert_eq!(m.health(URL), Health::Clear { since: None });
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

        m.track(&BTreeSet::new(), now);
        assert_eq!(m.current(URL), None, "forgotten with its scene");
        assert_eq!(m.record(URL, Verdict::Up, now), None, "late answer ignored");
        assert_eq!(m.next_due(), None);

        m.track(&only(URL), now);
        assert_eq!(m.start_due(now), vec![URL.to_string()], "due at once");
    }

    #[tokio::test(start_paused = true)]
    async fn a_held_slot_relies_only_on_a_probe_started_after_it_began_to_wait() {
        let s = Duration::from_secs;
        let mut m = SourceMonitor::new(s(5), s(8));
        m.track(&only(URL), Instant::now());
        m.start_due(Instant::now());
        m.record(URL, Verdict::Up, Instant::now());
        assert_eq!(m.fresh(URL), None, "nobody waits");

        tokio::time::advance(s(2)).await;
        m.want(&only(URL), Instant::now());
        assert_eq!(m.fresh(URL), None, "the up of 2 s ago is too old");
        assert_eq!(
            m.start_due(Instant::now()),
            vec![URL.to_string()],
            "probed at once, not after the interval"
        );
        tokio::time::advance(s(1)).await;
        m.record(URL, Verdict::Up, Instant::now());
        assert_eq!(m.fresh(URL), Some(Verdict::Up));

        // A slot that begins to wait while a probe runs needs the next one, started at once.
        m.want(&BTreeSet::new(), Instant::now());
        tokio::time::advance(s(5)).await;
        assert_eq!(m.start_due(Instant::now()).len(), 1);
        tokio::time::advance(s(1)).await;
        m.want(&only(URL), Instant::now());
        assert!(
            m.start_due(Instant::now()).is_empty(),
            "one probe at a time"
        );
        m.record(URL, Verdict::Up, Instant::now());
        assert_eq!(m.fresh(URL), None);
        assert_eq!(m.next_due(), Some(Instant::now()));
    }
}
