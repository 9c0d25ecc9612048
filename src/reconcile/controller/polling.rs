//! Polling List, and telling a List that brings news from one that repeats a settled
//! picture.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{DELETED_MEMORY_LAGS, LIST_BACKOFF_CAP, Memory, ProjectController};
use crate::agora::model::ListedPlayer;
use crate::agora::{ApiError, ErrorClass};
use crate::reconcile::execute::Slots;
use crate::reconcile::{health, observe};

/// What a pass that decided nothing planned from, besides the picture. A List that
/// repeats the picture, with these records and before `recheck_at_ms`, would plan the
/// same nothing again (`plan_tests::props::a_plan_holds_until_its_recheck_instant`):
/// it gets no pass. At scale that is nearly every poll, and a pass per poll was most of
/// pullkeeper's steady CPU (BENCHMARKS.md, scale). Every other trigger still passes.
pub(super) struct Quiet {
    pub(super) records: Arc<Slots>,
    pub(super) recheck_at_ms: Option<u64>,
}

/// What a List brought.
pub(super) enum Listed {
    /// A picture or strikes that differ from the last ones.
    News,
    /// The same picture and strikes again.
    Same,
    /// No List (an outage): retry after this long.
    Failed(Duration),
}

impl ProjectController {
    /// Whether the last pass decided nothing and would decide nothing again now, given
    /// an unchanged picture (see [`Quiet`]).
    pub(super) fn still_quiet(&self, mem: &Memory) -> bool {
        let Some(quiet) = &mem.quiet else {
            return false;
        };
        let now_ms = self.executor.clock.now_ms();
        quiet.recheck_at_ms.is_none_or(|at| now_ms < at)
            && self
                .records()
                .is_ok_and(|records| Arc::ptr_eq(&records, &quiet.records))
    }

    /// Takes in a List's answer. A failing List is an outage of Agora's API, counted and
    /// alerted on, and never evidence against a player.
    pub(super) fn absorb_list(
        &self,
        mem: &mut Memory,
        answer: Result<Vec<ListedPlayer>, ApiError>,
    ) -> Listed {
        let project = &self.project.id;
        match answer {
            Ok(mut players) => {
                let lag = self.settings.list_lag;
                // Kept past the lag: the plan replaces a slot whose dead player it
                // deleted only once no master create is in flight, which in a storm of
                // 25 masters at 2/s takes longer than the lag.
                mem.recently_deleted
                    .retain(|_, at| at.elapsed() < lag * DELETED_MEMORY_LAGS);
                players.retain(|p| !mem.recently_deleted.contains_key(&p.id));
                let scenes = self.scenes.borrow().clone();
                self.executor
                    .note_uids(&players, &self.project.name_prefix, &scenes);
                let now_ms = self.executor.clock.now_ms();
                let strikes_before = mem.strikes.clone();
                if let Ok(records) = self.records() {
                    if let Some(previous) = &mem.players {
                        observe::carry_over_young(
                            &mut players,
                            previous,
                            &records,
                            now_ms,
                            lag.as_millis() as u64,
                        );
                    }
                    health::count_strikes(
                        &mut mem.strikes,
                        &records,
                        &players,
                        now_ms,
                        lag.as_millis() as u64,
                    );
                }
                self.metrics
                    .last_list_success
                    .with_label_values(&[project])
                    .set(now_ms as f64 / 1000.0);
                self.metrics.api_outage.with_label_values(&[project]).set(0);
                if mem.list_failures > 0 {
                    tracing::info!(project = %project, "List works again");
                }
                mem.list_failures = 0;
                self.listed_once.store(true, Ordering::Release);
                let news = mem.players.as_ref() != Some(&players) || mem.strikes != strikes_before;
                mem.players = Some(players);
                if news { Listed::News } else { Listed::Same }
            }
            // Shutting down: not an outage, and the loop ends next.
            Err(e) if e.class() == ErrorClass::Stopped => Listed::Same,
            Err(e) => {
                self.metrics.api_outage.with_label_values(&[project]).set(1);
                // Doubling from the poll interval: a 5 s poll retries at 10, 20, 40, 60 s,
                // gentler on a struggling API than Agora's 5/10/15 s retreat asks.
                let backoff = self
                    .settings
                    .poll_interval
                    .saturating_mul(1 << mem.list_failures.min(6))
                    .min(LIST_BACKOFF_CAP);
                mem.list_failures += 1;
                tracing::warn!(project = %project, error = %e, failures = mem.list_failures,
                    "List failed; acting on per-player evidence only");
                Listed::Failed(backoff)
            }
        }
    }
}
