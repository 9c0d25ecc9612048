//! The Media Pull client of one project, as the app builds it: limits, transport,
//! metrics.

use std::sync::Arc;
use std::time::Duration;

use crate::agora::client::{Endpoint, TransportError, Transports};
use crate::agora::domains::{DomainPool, Domains, Overrides};
use crate::agora::{ApiLimiters, ClientConfig, MediaPullClient};
use crate::clock::Clock;
use crate::config::{Project, Rate};
use crate::limits::{RateLimiter, WindowSpec, journaled};
use crate::store::Store;
use crate::telemetry::Metrics;

/// Widens every rate window a little: a request sent one window after another can
/// arrive slightly sooner than that (see `limits::window`).
const WINDOW_MARGIN: Duration = Duration::from_millis(50);

fn limiter(rate: &Rate) -> RateLimiter {
    let second = WindowSpec {
        limit: rate.per_second,
        length: Duration::from_secs(1) + WINDOW_MARGIN,
    };
    let minute = rate.per_minute.map(|limit| WindowSpec {
        limit,
        length: Duration::from_secs(60) + WINDOW_MARGIN,
    });
    RateLimiter::new(std::iter::once(second).chain(minute))
}

/// The Media Pull client of one project, limited to its configured QPS, on the transport
/// the projects share (see [`Transports`]); its rate windows count the calls the store
/// recorded before a restart and record its own (see [`journaled`]).
pub fn build_client(
    project: &Project,
    metrics: &Metrics,
    transports: &Transports,
    (store, clock): (&Store, Clock),
) -> Result<MediaPullClient, TransportError> {
    let qps = &project.limits.qps;
    let limiter =
        |rate: &Rate, api: &'static str| journaled(limiter(rate), store, clock, &project.id, api);
    let endpoint = match (&project.api.base_url, project.api.area) {
        (Some(url), _) => Endpoint::Fixed(url.clone()),
        (None, Some(region)) => Endpoint::Domains {
            scheme: project.api.scheme.clone(),
            pool: DomainPool::new(
                Domains::new(project.api.primary_domain.host(), region),
                project.api.return_to_primary_after,
            ),
            overrides: Overrides(Arc::new(project.api.resolve.clone())),
        },
        // The configuration check refuses this; a Project built otherwise gets no guess.
        (None, None) => return Err(TransportError::NoArea),
    };
    let http = transports.get(project.api.timeout, &endpoint.overrides())?;
    let client = MediaPullClient::with_transport(
        ClientConfig {
            endpoint,
            app_id: project.app_id.clone(),
            customer_id: project.customer_id.clone(),
            customer_secret: project.customer_secret.clone(),
            timeout: project.api.timeout,
            limiters: ApiLimiters {
                create_with_name: limiter(&qps.create_with_name, "create_with_name"),
                create_without_name: limiter(&qps.create_without_name, "create_without_name"),
                delete: limiter(&qps.delete, "delete"),
                list: limiter(&qps.list, "list"),
                list_filtered: limiter(&qps.list_filtered, "list_filtered"),
                update: limiter(&qps.update, "update"),
            },
        },
        http,
    );
    let m = metrics.clone();
    let w = metrics.clone();
    let d = metrics.clone();
    let project_id = project.id.clone();
    Ok(client
        .with_observer(Box::new(move |op, class, latency| {
            m.api_requests
                .with_label_values(&[op.as_str(), class])
                .inc();
            m.api_request_duration
                .with_label_values(&[op.as_str()])
                .observe(latency.as_secs_f64());
        }))
        .with_wait_observer(Box::new(move |op, waited| {
            w.ratelimit_wait
                .with_label_values(&[op.as_str()])
                .inc_by(waited.as_secs_f64());
        }))
        .with_switch_observer(Box::new(move || {
            d.domain_switches.with_label_values(&[&project_id]).inc();
        })))
}
