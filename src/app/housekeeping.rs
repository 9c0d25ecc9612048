//! Hourly forgetting of what the store keeps only for a while.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::ncs::dedupe::{NoticeLog, TTL_MS};
use crate::store::{EventLog, StoreError};

/// Forgets events older than the history keeps: those of scenes that get no new events
/// (removed ones included), which no trim at a new event would reach.
pub(super) async fn sweep_events(events: EventLog, clock: Clock, cancel: CancellationToken) {
    hourly(cancel, "old scene events", || events.sweep(clock.now_ms())).await;
}

/// Forgets NCS notice ids older than NCS could still resend.
pub(super) async fn prune_notices(notices: NoticeLog, clock: Clock, cancel: CancellationToken) {
    let older_than = move || clock.now_ms().saturating_sub(TTL_MS);
    hourly(cancel, "old NCS notice ids", || notices.prune(older_than())).await;
}

/// Runs `forget` once an hour until `cancel`, logging what it forgot or why it could not.
async fn hourly(
    cancel: CancellationToken,
    what: &str,
    forget: impl Fn() -> Result<usize, StoreError>,
) {
    let mut every = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = every.tick() => match forget() {
                Ok(0) => {}
                Ok(n) => tracing::debug!(forgotten = n, what, "forgotten"),
                Err(e) => tracing::warn!(error = %e, what, "cannot forget"),
            },
        }
    }
}
