//! Per-player evidence besides List: player checks' answers and app reports.
//!
//! Both end the same way as a `failed` notice once a player collects its scene's strike
//! threshold, but they count differently. A player check is an Update that changes
//! nothing, whose answer is the only per-player signal the API offers besides List. A
//! check strike is a 404 or 5xx answer and any
//! healthy answer clears them (Agora's "three consecutive" rule, §1.9). Checks go out in
//! rounds, one per live player, and are judged when the round is complete: a 5xx is a
//! strike only if the API answered some other check of the round healthily. When every
//! check gets a 5xx the API is failing, not the players, and a healthy player must never
//! be replaced because of an API fault; such a round neither adds nor clears strikes.
//! A 404 is about the player itself and always counts. A report strike
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

/// What a check of one player learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckAnswer {
    Healthy,
    /// 404: Agora does not know the player.
    Gone,
    /// 5xx: the player, or the API, is in trouble.
    ServerError,
}

/// The checks of one round still out, and the answers already in.
struct Round {
    pending: usize,
    answers: Vec<(String, CheckAnswer, u32)>,
}

#[derive(Default)]
pub struct Evidence {
    check_strikes: HashMap<String, u32>,
    reports: HashMap<String, Reports>,
    round: Option<Round>,
}

impl Evidence {
    /// Opens a round of `checks` checks. False while the last round is still out.
    pub fn start_round(&mut self, checks: usize) -> bool {
        if self.round.is_some() {
            return false;
        }
        if checks > 0 {
            self.round = Some(Round {
                pending: checks,
                answers: Vec::new(),
            });
        }
        true
    }

    /// Takes one check's answer (`None`: it learned nothing, e.g. a timeout). Once the
    /// round is complete, judges it and returns the players now failed.
    pub fn check_answered(
        &mut self,
        id: &str,
        answer: Option<CheckAnswer>,
        threshold: u32,
    ) -> Vec<String> {
        let Some(round) = self.round.as_mut() else {
            return Vec::new();
        };
        if let Some(answer) = answer {
            round.answers.push((id.to_string(), answer, threshold));
        }
        round.pending = round.pending.saturating_sub(1);
        if round.pending > 0 {
            return Vec::new();
        }
        let answers = self.round.take().map(|r| r.answers).unwrap_or_default();
        let api_answers = answers.iter().any(|(_, a, _)| *a == CheckAnswer::Healthy);
        let mut failed = Vec::new();
        for (id, answer, threshold) in answers {
            let verdict = match answer {
                CheckAnswer::Healthy => Some(true),
                CheckAnswer::Gone => Some(false),
                CheckAnswer::ServerError if api_answers => Some(false),
                CheckAnswer::ServerError => None,
            };
            if let Some(healthy) = verdict
                && self.check(&id, healthy, threshold)
            {
                failed.push(id);
            }
        }
        failed
    }

    /// Counts a judged check answer (`healthy` or a strike). True when the player is now
    /// failed.
    fn check(&mut self, id: &str, healthy: bool, threshold: u32) -> bool {
        if healthy {
            self.check_strikes.remove(id);
            return false;
        }
        let strikes = self.check_strikes.entry(id.to_string()).or_insert(0);
        *strikes += 1;
        tracing::warn!(
            player = id,
            strikes = *strikes,
            threshold,
            "player check answered 404/5xx"
        );
        let failed = *strikes >= threshold;
        if failed {
            self.check_strikes.remove(id);
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

    /// The larger of a player's check and report strikes, for `/v1/scenes`.
    pub fn strikes(&self, id: &str) -> u32 {
        let check = self.check_strikes.get(id).copied().unwrap_or(0);
        let reports = self.reports.get(id).map_or(0, |r| r.strikes);
        check.max(reports)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_consecutive_check_strikes_fail_a_success_clears() {
        let mut e = Evidence::default();
        assert!(!e.check("a", false, 3));
        assert!(!e.check("a", false, 3));
        assert!(!e.check("a", true, 3));
        assert_eq!(e.strikes("a"), 0);
        assert!(!e.check("a", false, 3));
        assert!(!e.check("a", false, 3));
        assert!(e.check("a", false, 3));
    }

    /// Runs one round of answers and returns who failed.
    fn round(e: &mut Evidence, answers: &[(&str, Option<CheckAnswer>)]) -> Vec<String> {
        assert!(e.start_round(answers.len()));
        let mut failed = Vec::new();
        for (id, answer) in answers {
            failed.extend(e.check_answered(id, *answer, 3));
        }
        failed
    }

    #[test]
    fn server_errors_count_only_when_the_api_answers_other_checks() {
        use CheckAnswer::*;
        let mut e = Evidence::default();
        for _ in 0..5 {
            let failed = round(
                &mut e,
                &[("a", Some(ServerError)), ("b", Some(ServerError))],
            );
            assert!(failed.is_empty(), "an API-wide 5xx is no evidence");
        }
        assert_eq!(e.strikes("a"), 0);
        assert!(round(&mut e, &[("a", Some(ServerError)), ("b", Some(Healthy))]).is_empty());
        assert!(round(&mut e, &[("a", Some(ServerError)), ("b", None)]).is_empty());
        assert_eq!(
            e.strikes("a"),
            1,
            "an API-wide round neither adds nor clears"
        );
        assert!(round(&mut e, &[("a", Some(ServerError)), ("b", Some(Healthy))]).is_empty());
        assert_eq!(
            round(&mut e, &[("b", Some(Healthy)), ("a", Some(ServerError))]),
            ["a"]
        );
    }

    #[test]
    fn a_404_counts_alone_and_rounds_do_not_overlap() {
        let mut e = Evidence::default();
        for _ in 0..2 {
            assert!(round(&mut e, &[("a", Some(CheckAnswer::Gone))]).is_empty());
        }
        assert!(e.start_round(1));
        assert!(!e.start_round(1), "the last round is still out");
        assert_eq!(e.check_answered("a", Some(CheckAnswer::Gone), 3), ["a"]);
        assert!(e.start_round(0), "an empty round closes at once");
        assert!(e.start_round(1));
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
