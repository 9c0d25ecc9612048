//! Optional timers for the controller's `select!` loop: a timer that is not set never
//! fires, so one loop serves with and without a probe or a pending wake-up.

use tokio::time::{Instant, Interval};

/// Ticks `interval` if there is one; otherwise never resolves.
pub async fn tick_opt(interval: &mut Option<Interval>) {
    match interval {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Sleeps until `at` if set; otherwise never resolves.
pub async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
