//! Prometheus metrics: one registry, passed around, never global (a global one would be
//! shared by every test and every instance in a process). Names follow Prometheus's
//! naming practices: the `pullkeeper_` prefix, base units, `_total` on counters.
//!
//! Labels are bounded sets only: api, code class, role, scene (bounded by config),
//! project. Never a UID, player id, stream URL or notice id.

use super::process::ProcessCollector;
use super::scrape::{Collectors, Scrape, TextWriters, add_collector};
use super::text::TextFamilies;
use super::uids_free::UidsFreeGauge;
use crate::model::SwitchReason;
use prometheus::{
    CounterVec, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGaugeVec, Opts,
};

/// Label values known up front. They are exposed at 0 from the start: a counter series
/// that appears only at its first increment hides that increment from `increase()` (the
/// alerts) and leaves dashboard panels blank until something goes wrong.
const RECREATION_REASONS: [&str; 4] = ["failed", "superseded", "scene_removed", "slot_removed"];
const RETRY_ACTIONS: [&str; 3] = ["create", "delete", "update"];
const NCS_OUTCOMES: [&str; 8] = [
    "accepted",
    "duplicate",
    "stale",
    "ignored",
    "bad_signature",
    "malformed",
    "unknown_project",
    "too_large",
];
const APP_WEBHOOK_OUTCOMES: [&str; 4] = ["delivered", "refused", "unreachable", "dropped"];

/// One set of metrics, passed around; clones share it.
#[derive(Clone)]
pub struct Metrics {
    /// What a scrape encodes through the prometheus crate (see `scrape`).
    collectors: Collectors,
    /// Families written as text when scraped, after the collectors' (see `text`).
    text: TextWriters,
    pub api_requests: IntCounterVec,
    pub api_request_duration: HistogramVec,
    pub api_outage: IntGaugeVec,
    pub tasks_active: IntGaugeVec,
    pub tasks_limit: IntGaugeVec,
    pub slots_over_quota: IntGaugeVec,
    /// UIDs a scene could hand out now: never used, or out of quarantine.
    pub scene_uids_free: UidsFreeGauge,
    pub reconcile_passes: IntCounterVec,
    /// Polls that needed no pass: the List repeated the picture of a pass that decided
    /// nothing (the controller is alive, and idle).
    pub reconcile_skipped: IntCounterVec,
    pub recreations: IntCounterVec,
    /// On-air switches by reason (`manual` for an operator's, `drill` for a drill's).
    pub onair_switches: IntCounterVec,
    /// Stores found unreadable at start, moved aside and replaced by an empty one.
    pub store_recoveries: IntCounter,
    /// Scenes-file reloads that failed (the last good configuration kept running).
    pub config_reload_failures: IntCounter,
    /// Unix time of the last successful (re)load of the scenes file.
    pub config_last_reload_success: Gauge,
    /// API domain switches (primary → alternate → adjacent region, and back).
    pub domain_switches: IntCounterVec,
    /// Failed actions that will be retried after the retreat wait, by action.
    pub retries: IntCounterVec,
    /// Replacements held back because the slot was replaced again and again.
    pub replacement_backoffs: IntCounterVec,
    /// Actions Agora refused for good (400, 403), by action.
    pub rejections: IntCounterVec,
    /// Slots whose last create or update Agora refused for good, per project.
    pub slots_rejected: IntGaugeVec,
    /// 1 while Agora refuses a project's credentials (401).
    pub api_unauthorized: IntGaugeVec,
    pub last_list_success: GaugeVec,
    /// NCS notices by outcome: accepted, duplicate, stale, ignored, bad_signature,
    /// malformed, unknown_project, too_large.
    pub webhook_notices: IntCounterVec,
    /// App webhook delivery attempts: delivered, refused, unreachable, dropped.
    pub app_webhook: IntCounterVec,
    /// Duration of one reconcile pass (plan, publish, start of actions).
    pub reconcile_duration: Histogram,
    /// From receiving the NCS notice that stopped the on-air player to publishing the
    /// switch to another (status board, app webhook queue).
    pub failover_decision: Histogram,
    /// Time spent waiting for pullkeeper's own rate limiter, by API.
    pub ratelimit_wait: CounterVec,
    /// Failed fetches of a project's NCS address list (the last good one stays in use).
    pub ncs_ip_fetch_failures: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Metrics {
        let m = Metrics {
            api_requests: IntCounterVec::new(
                Opts::new(
                    "pullkeeper_api_requests_total",
                    "Media Pull API requests by API and outcome class.",
                ),
                &["api", "code_class"],
            )
            .expect("valid metric"),
            api_request_duration: HistogramVec::new(
                HistogramOpts::new(
                    "pullkeeper_api_request_duration_seconds",
                    "Latency of Media Pull API requests.",
                )
                .buckets(vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ]),
                &["api"],
            )
            .expect("valid metric"),
            api_outage: IntGaugeVec::new(
                Opts::new(
                    "pullkeeper_api_outage",
                    "1 while the project's List fails: an API outage, not a player outage.",
                ),
                &["project"],
            )
            .expect("valid metric"),
            tasks_active: IntGaugeVec::new(
                Opts::new(
                    "pullkeeper_tasks_active",
                    "Live Media Pull tasks of a project in the last List, ours or not.",
                ),
                &["project"],
            )
            .expect("valid metric"),
            tasks_limit: IntGaugeVec::new(
                Opts::new(
                    "pullkeeper_tasks_limit",
                    "Configured maximum of live tasks of a project.",
                ),
                &["project"],
            )
            .expect("valid metric"),
            slots_over_quota: IntGaugeVec::new(
                Opts::new(
                    "pullkeeper_slots_over_quota",
                    "Slots that want a player but cannot have one within the project quota.",
                ),
                &["project"],
            )
            .expect("valid metric"),
            scene_uids_free: UidsFreeGauge::new(),
            reconcile_passes: IntCounterVec::new(
                Opts::new(
                    "pullkeeper_reconcile_passes_total",
                    "Reconcile passes (plans made) per project.",
                ),
                &["project"],
            )
            .expect("valid metric"),
            reconcile_skipped: IntCounterVec::new(
                Opts::new(
                    "pullkeeper_reconcile_skipped_total",
                    "Polls whose List repeated the picture of a pass that decided nothing, so no pass was needed.",
                ),
                &["project"],
            )
            .expect("valid metric"),
            recreations: IntCounterVec::new(
                Opts::new(
                    "pullkeeper_player_recreations_total",
                    "Players deleted for replacement or removal, by reason.",
                ),
                &["reason"],
            )
            .expect("valid metric"),
            onair_switches: IntCounterVec::new(
                Opts::new(
                    "pullkeeper_onair_switches_total",
                    "Changes of a scene's on-air player, by reason.",
                ),
                &["reason"],
            )
            .expect("valid metric"),
            store_recoveries: IntCounter::with_opts(Opts::new(
                "pullkeeper_store_recoveries_total",
                "Stores found unreadable at start, moved aside and rebuilt from List.",
            ))
            .expect("valid metric"),
            config_reload_failures: IntCounter::with_opts(Opts::new(
                "pullkeeper_config_reload_failures_total",
                "Scenes-file reloads rejected; the last good configuration stays in force.",
            ))
            .expect("valid metric"),
            config_last_reload_success: Gauge::with_opts(Opts::new(
                "pullkeeper_config_last_reload_success_timestamp_seconds",
                "Unix time of the last successful load of the scenes file.",
            ))
            .expect("valid metric"),
            domain_switches: IntCounterVec::new(
                Opts::new(
                    "pullkeeper_api_domain_switches_total",
                    "Switches of the API domain in use, per project.",
                ),
                &["project"],
            )
            .expect("valid metric"),
            retries: IntCounterVec::new(
                Opts::new(
                    "pullkeeper_retries_total",
                    "Failed actions scheduled for retry after the retreat wait, by action.",
                ),
                &["action"],
            )
            .expect("valid metric"),
            replacement_backoffs: IntCounterVec::new(
                Opts::new(
                    "pullkeeper_replacement_backoffs_total",
                    "Replacements delayed because the same slot keeps failing (never given up).",
                ),
                &["project"],
            )
            .expect("valid metric"),
            rejections: IntCounterVec::new(
                Opts::new(
                    "pullkeeper_rejections_total",
                    "Actions Agora refused for good (400, 403), held back for reconcile.rejected_retry or until the scene changes.",
                ),
                &["action"],
            )
            .expect("valid metric"),
            slots_rejected: IntGaugeVec::new(
                Opts::new(
                    "pullkeeper_slots_rejected",
                    "Slots whose last create or update Agora refused for good (400, 403).",
                ),
                &["project"],
            )
            .expect("valid metric"),
            api_unauthorized: IntGaugeVec::new(
                Opts::new(
                    "pullkeeper_api_unauthorized",
                    "1 while Agora refuses the project's credentials (401).",
                ),
                &["project"],
            )
            .expect("valid metric"),
            last_list_success: GaugeVec::new(
                Opts::new(
                    "pullkeeper_last_successful_list_timestamp_seconds",
                    "Unix time of the last complete, successful List of a project.",
                ),
                &["project"],
            )
            .expect("valid metric"),
            webhook_notices: IntCounterVec::new(
                Opts::new(
                    "pullkeeper_webhook_notices_total",
                    "NCS webhook notices received, by outcome.",
                ),
                &["outcome"],
            )
            .expect("valid metric"),
            app_webhook: IntCounterVec::new(
                Opts::new(
                    "pullkeeper_app_webhook_deliveries_total",
                    "App webhook delivery attempts of on-air announcements, by outcome.",
                ),
                &["outcome"],
            )
            .expect("valid metric"),
            reconcile_duration: Histogram::with_opts(
                HistogramOpts::new(
                    "pullkeeper_reconcile_duration_seconds",
                    "Duration of one reconcile pass.",
                )
                .buckets(vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                ]),
            )
            .expect("valid metric"),
            failover_decision: Histogram::with_opts(
                HistogramOpts::new(
                    "pullkeeper_failover_decision_seconds",
                    "Time from receiving the NCS notice that stopped the on-air player to publishing the switch.",
                )
                .buckets(vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                ]),
            )
            .expect("valid metric"),
            ratelimit_wait: CounterVec::new(
                Opts::new(
                    "pullkeeper_api_ratelimit_wait_seconds_total",
                    "Seconds requests waited for pullkeeper's own rate limiter, by API.",
                ),
                &["api"],
            )
            .expect("valid metric"),
            ncs_ip_fetch_failures: IntCounterVec::new(
                Opts::new(
                    "pullkeeper_ncs_ip_fetch_failures_total",
                    "Failed fetches of a project's NCS address list; the last good list stays in use.",
                ),
                &["project"],
            )
            .expect("valid metric"),
            collectors: Collectors::default(),
            text: TextWriters::default(),
        };
        let build = Gauge::with_opts(
            Opts::new("pullkeeper_build_info", "Build information.")
                .const_label("version", env!("CARGO_PKG_VERSION")),
        )
        .expect("valid metric");
        build.set(1.0);
        for c in [
            Box::new(m.api_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(m.api_request_duration.clone()),
            Box::new(m.api_outage.clone()),
            Box::new(m.tasks_active.clone()),
            Box::new(m.tasks_limit.clone()),
            Box::new(m.slots_over_quota.clone()),
            Box::new(m.reconcile_passes.clone()),
            Box::new(m.reconcile_skipped.clone()),
            Box::new(m.recreations.clone()),
            Box::new(m.onair_switches.clone()),
            Box::new(m.replacement_backoffs.clone()),
            Box::new(m.retries.clone()),
            Box::new(m.rejections.clone()),
            Box::new(m.slots_rejected.clone()),
            Box::new(m.api_unauthorized.clone()),
            Box::new(m.domain_switches.clone()),
            Box::new(m.store_recoveries.clone()),
            Box::new(m.config_reload_failures.clone()),
            Box::new(m.config_last_reload_success.clone()),
            Box::new(m.last_list_success.clone()),
            Box::new(m.webhook_notices.clone()),
            Box::new(m.app_webhook.clone()),
            Box::new(m.reconcile_duration.clone()),
            Box::new(m.failover_decision.clone()),
            Box::new(m.ratelimit_wait.clone()),
            Box::new(m.ncs_ip_fetch_failures.clone()),
            Box::new(build),
            Box::new(ProcessCollector::new()),
        ] {
            m.register(c);
        }
        for (counter, values) in [
            (&m.recreations, &RECREATION_REASONS[..]),
            (&m.retries, &RETRY_ACTIONS[..]),
            (&m.rejections, &RETRY_ACTIONS[..]),
            (&m.webhook_notices, &NCS_OUTCOMES[..]),
            (&m.app_webhook, &APP_WEBHOOK_OUTCOMES[..]),
        ] {
            for value in values {
                counter.with_label_values(&[value]);
            }
        }
        for reason in SwitchReason::ALL {
            m.onair_switches.with_label_values(&[reason.as_str()]);
        }
        m.register_text(Box::new(m.scene_uids_free.clone()));
        m
    }

    /// Exposes a project's counters at 0 from the start (see [`RECREATION_REASONS`]).
    pub fn init_project(&self, project: &str) {
        self.domain_switches.with_label_values(&[project]);
        self.replacement_backoffs.with_label_values(&[project]);
        self.reconcile_passes.with_label_values(&[project]);
        self.reconcile_skipped.with_label_values(&[project]);
        self.slots_rejected.with_label_values(&[project]);
        self.api_unauthorized.with_label_values(&[project]);
    }

    /// Drops what a project's controller last said about the project's state, once
    /// another replica may be leading it: a stale List time or outage on this replica
    /// would page for a project it no longer watches.
    pub fn forget_project_state(&self, project: &str) {
        let _ = self.last_list_success.remove_label_values(&[project]);
        let _ = self.api_outage.remove_label_values(&[project]);
        let _ = self.tasks_active.remove_label_values(&[project]);
        let _ = self.slots_over_quota.remove_label_values(&[project]);
        let _ = self.api_unauthorized.remove_label_values(&[project]);
        let _ = self.slots_rejected.remove_label_values(&[project]);
    }

    /// Adds a collector; panics on a metric name already taken (a programming error).
    pub fn register(&self, collector: Box<dyn prometheus::core::Collector>) {
        add_collector(&self.collectors, collector);
    }

    /// Adds families written as text at scrape time (series by the ten thousand).
    pub fn register_text(&self, families: Box<dyn TextFamilies>) {
        let mut text = self.text.write().unwrap_or_else(|e| e.into_inner());
        text.push(families);
    }

    /// A scrape in the text exposition format, made part by part as it is read.
    pub fn scrape(&self) -> Scrape {
        Scrape::new(self.collectors.clone(), self.text.clone())
    }

    /// A whole scrape at once (tests, and whoever wants one string).
    pub fn render(&self) -> String {
        self.scrape().collect()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
