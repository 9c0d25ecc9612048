//! Keeps each project's NCS address list fresh: fetched at start and every
//! `ncs_allowlist.refresh_interval` (Agora: at least every 24 h, §2.6). A failed fetch
//! keeps the last good list and is retried sooner, backing off, never later than the
//! regular refresh would have been.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus::core::{Collector, Desc, Describer};
use prometheus::proto::MetricFamily;
use prometheus::{GaugeVec, IntCounterVec, Opts};
use tokio_util::sync::CancellationToken;

use super::allowlist::{IpList, NcsAddresses};
use crate::agora::MediaPullClient;

/// First retry after a failed fetch; doubles up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_secs(60);
const RETRY_MAX: Duration = Duration::from_secs(3600);

/// How long to wait after `failures` consecutive failed fetches (0 = the last worked).
pub fn next_fetch_in(every: Duration, failures: u32) -> Duration {
    if failures == 0 {
        return every;
    }
    let backoff = RETRY_FIRST
        .saturating_mul(1u32 << (failures - 1).min(16))
        .min(RETRY_MAX);
    backoff.min(every)
}

pub struct IpRefresher {
    pub project: String,
    pub client: Arc<MediaPullClient>,
    pub addresses: NcsAddresses,
    pub every: Duration,
    pub failures_total: IntCounterVec,
}

impl IpRefresher {
    pub async fn run(self, cancel: CancellationToken) {
        let mut failures = 0u32;
        loop {
            // Boxed: the call's state is needed for a moment an interval, and inline it
            // made each project's refresher task that big the whole time.
            let fetched = tokio::select! {
                _ = cancel.cancelled() => return,
                r = Box::pin(self.client.ncs_ips()) => r,
            };
            match fetched {
                Ok(answer) => {
                    if failures > 0 {
                        tracing::info!(project = %self.project, "NCS address list fetched again");
                    }
                    failures = 0;
                    tracing::debug!(project = %self.project, count = answer.ips.len(), path = answer.path, "NCS address list fetched");
                    self.addresses.succeeded(
                        &self.project,
                        IpList {
                            ips: answer.ips,
                            fetched_at: unix_secs(SystemTime::now()) as u64,
                            source: answer.path,
                        },
                    );
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    self.failures_total
                        .with_label_values(&[self.project.as_str()])
                        .inc();
                    tracing::warn!(project = %self.project, error = %e,
                        "cannot fetch the NCS address list; keeping the last good one");
                    self.addresses.failed(&self.project, e.to_string());
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(next_fetch_in(self.every, failures)) => {}
            }
        }
    }
}

fn unix_secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// `pullkeeper_ncs_ip_list_age_seconds` and `pullkeeper_ncs_ip_list_size`, computed at
/// scrape time so the age is exact without a task ticking it.
pub struct IpListCollector {
    addresses: NcsAddresses,
    age: Opts,
    size: Opts,
    descs: Vec<Desc>,
}

impl IpListCollector {
    pub fn new(addresses: NcsAddresses) -> IpListCollector {
        let age = Opts::new(
            "pullkeeper_ncs_ip_list_age_seconds",
            "Seconds since the NCS address list of a project was last fetched successfully.",
        )
        .variable_label("project");
        let size = Opts::new(
            "pullkeeper_ncs_ip_list_size",
            "Addresses in the NCS address list of a project (0 before the first fetch).",
        )
        .variable_label("project");
        let descs = [&age, &size]
            .iter()
            .map(|o| o.describe().expect("valid metric"))
            .collect();
        IpListCollector {
            addresses,
            age,
            size,
            descs,
        }
    }
}

impl Collector for IpListCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let age = GaugeVec::new(self.age.clone(), &["project"]).expect("valid metric");
        let size = GaugeVec::new(self.size.clone(), &["project"]).expect("valid metric");
        let now = unix_secs(SystemTime::now());
        for (project, state) in self.addresses.all() {
            let list = state.list.as_ref();
            size.with_label_values(&[project.as_str()])
                .set(list.map_or(0, |l| l.ips.len()) as f64);
            if let Some(l) = list {
                age.with_label_values(&[project.as_str()])
                    .set((now - l.fetched_at as f64).max(0.0));
            }
        }
        let mut out = age.collect();
        out.extend(size.collect());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_waits_the_full_interval_and_failures_back_off_within_it() {
        let day = Duration::from_secs(24 * 3600);
        assert_eq!(next_fetch_in(day, 0), day);
        assert_eq!(next_fetch_in(day, 1), Duration::from_secs(60));
        assert_eq!(next_fetch_in(day, 2), Duration::from_secs(120));
        assert_eq!(next_fetch_in(day, 7), Duration::from_secs(3600));
        assert_eq!(next_fetch_in(day, 1000), Duration::from_secs(3600));
        let short = Duration::from_secs(30);
        assert_eq!(next_fetch_in(short, 1), short);
        assert_eq!(next_fetch_in(short, 0), short);
    }
}
