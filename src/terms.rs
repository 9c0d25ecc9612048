//! A project's controller, run once per term this replica leads the project.
//!
//! A term starts like a process start (the controller is new, its state read from the
//! store, open intents resolved by the next List) and ends like a crash that loses
//! nothing: the controller is cancelled, and whatever it had not flushed was never
//! acted on. With the embedded store the one term lasts until shutdown.

use std::future::Future;

use tokio_util::sync::CancellationToken;

use crate::agora::MediaPullClient;
use crate::clock::Clock;
use crate::ncs::intake::Intake;
use crate::store::{Leadership, Store};

/// Runs `controller(term)` for each term of `project` until `stop`.
pub async fn supervise<F, Fut>(
    project: String,
    leadership: Leadership,
    controller: F,
    stop: CancellationToken,
) where
    F: Fn(CancellationToken) -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        let ended = tokio::select! {
            _ = stop.cancelled() => return,
            ended = leadership.term(&project) => ended,
        };
        // Cancelled when the term ends or the process stops, whichever comes first.
        let term = stop.child_token();
        // On the heap, and only for a term: inline, the controller's state machine (about
        // 15 KiB) made every project's supervisor that size, led here or not.
        let mut run = Box::pin(controller(term.clone()));
        tokio::select! {
            // Ended on its own (the scenes went away at shutdown): nothing to restart
            // before the term ends.
            _ = &mut run => tokio::select! {
                _ = stop.cancelled() => return,
                _ = ended.cancelled() => {}
            },
            _ = ended.cancelled() => {
                // The controller returns promptly once cancelled; the next term's must
                // not start while this one still runs.
                term.cancel();
                run.await;
            }
        }
        if stop.is_cancelled() {
            return;
        }
    }
}

/// What a replica does first when it takes `project` over from another (etcd): counts
/// the previous leader's latest calls in the project's rate windows, so Agora sees no
/// burst over its limits, and replays the notices it acknowledged and did not apply,
/// continuing its players' notice order. (A single replica did both for every project
/// at its start.)
pub fn take_over(
    project: &str,
    intake: &Intake,
    client: &MediaPullClient,
    store: &Store,
    clock: Clock,
) {
    for (api, limiter) in client.limiters().each() {
        crate::limits::restore(limiter, store, clock, project, api);
    }
    if let Err(e) = intake.take_over(project) {
        tracing::error!(project, error = %e,
            "cannot replay the project's acknowledged NCS notices");
    }
}
