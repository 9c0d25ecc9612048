//! Metrics of this replica's leadership: which projects it leads, its lease renewals,
//! and the terms it began (each one a takeover, or the first start).

use std::time::Duration;

use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, IntGaugeVec, Opts};

use super::Metrics;
use crate::store::LeadershipObserver;

/// The leadership metrics, registered with the process's [`Metrics`].
pub struct LeadershipMetrics {
    leader: IntGaugeVec,
    terms: IntCounterVec,
    renewals: IntCounterVec,
    renewal_seconds: Histogram,
    coordination_up: IntGauge,
}

impl LeadershipMetrics {
    pub fn new(metrics: &Metrics) -> LeadershipMetrics {
        let m = LeadershipMetrics {
            leader: IntGaugeVec::new(
                Opts::new(
                    "pullkeeper_leader",
                    "1 while this replica leads the project (always, with the embedded store).",
                ),
                &["project"],
            )
            .expect("valid metric"),
            terms: IntCounterVec::new(
                Opts::new(
                    "pullkeeper_leader_terms_total",
                    "Terms this replica began leading the project (takeovers and starts).",
                ),
                &["project"],
            )
            .expect("valid metric"),
            renewals: IntCounterVec::new(
                Opts::new(
                    "pullkeeper_lease_renewals_total",
                    "Renewals of this replica's etcd lease, by outcome.",
                ),
                &["outcome"],
            )
            .expect("valid metric"),
            renewal_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "pullkeeper_lease_renewal_seconds",
                    "How long etcd took to answer a lease renewal.",
                )
                .buckets(vec![0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.0]),
            )
            .expect("valid metric"),
            coordination_up: IntGauge::with_opts(Opts::new(
                "pullkeeper_coordination_up",
                "1 while the last etcd lease renewal succeeded (always, with the embedded store).",
            ))
            .expect("valid metric"),
        };
        metrics.register(Box::new(m.leader.clone()));
        metrics.register(Box::new(m.terms.clone()));
        metrics.register(Box::new(m.renewals.clone()));
        metrics.register(Box::new(m.renewal_seconds.clone()));
        metrics.register(Box::new(m.coordination_up.clone()));
        m
    }

    /// The sole replica: leads `projects` for ever and needs no coordination.
    pub fn sole<'a>(&self, projects: impl IntoIterator<Item = &'a str>) {
        for project in projects {
            self.leader.with_label_values(&[project]).set(1);
        }
        self.coordination_up.set(1);
    }

    /// A replica sharing leadership: leads nothing until a term begins.
    pub fn shared<'a>(&self, projects: impl IntoIterator<Item = &'a str>) {
        for project in projects {
            self.leader.with_label_values(&[project]).set(0);
            self.terms.with_label_values(&[project]);
        }
        for outcome in ["ok", "failed"] {
            self.renewals.with_label_values(&[outcome]);
        }
    }
}

impl LeadershipObserver for LeadershipMetrics {
    fn renewal(&self, latency: Duration, ok: bool) {
        let outcome = if ok { "ok" } else { "failed" };
        self.renewals.with_label_values(&[outcome]).inc();
        if ok {
            self.renewal_seconds.observe(latency.as_secs_f64());
        }
        self.coordination_up.set(i64::from(ok));
    }

    fn term(&self, project: &str, leading: bool) {
        self.leader
            .with_label_values(&[project])
            .set(i64::from(leading));
        if leading {
            self.terms.with_label_values(&[project]).inc();
        }
    }
}
