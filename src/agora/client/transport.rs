//! The HTTP transports behind the Media Pull clients.
//!
//! Projects share them: one client, one connection pool and one TLS configuration per
//! request timeout. Every project talks to the same few Agora hosts, and a pool per
//! project kept a connection per project (hyper's buffers and dispatch channel, about
//! 85 KiB each: 43 MiB of steady memory at 1,000 projects, BENCHMARKS.md). Built per
//! client, reqwest also loads the system's root certificates each time (105 MiB for
//! 1,000 clients). A shared pool once made one project's creates reach Agora bunched,
//! when the rate limiter still counted a window from the send; it counts from the
//! answer now, and the shared pool gets no 429 at 1,000 projects.
//!
//! A client whose names resolve through test overrides gets a transport of its own.
//! Every transport bounds its calls in flight per host (see [`InFlight`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::in_flight::{IN_FLIGHT_PER_HOST, InFlight};
use crate::agora::domains::Overrides;

/// Longest wait for a TCP/TLS connection, whatever the request timeout.
const CONNECT_TIMEOUT_CAP: Duration = Duration::from_secs(5);

/// How long an idle pooled connection is kept.
const POOL_IDLE: Duration = Duration::from_secs(60);
/// Idle connections kept per host: as many as calls may be in flight, so the connections
/// a burst opened serve the next one instead of being closed and opened again (a TLS
/// handshake each); the bound on calls in flight bounds them.
const POOL_IDLE_PER_HOST: usize = IN_FLIGHT_PER_HOST;

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("TLS set-up: {0}")]
    Tls(#[from] rustls::Error),
    #[error(transparent)]
    Http(#[from] reqwest::Error),
    #[error("api.area is not set: Agora's domains need the region the primary resolves to")]
    NoArea,
}

/// The settings every transport has: connect within `timeout` (at most 5 s), resolve
/// `overrides` (test-only `--resolve` style names) itself.
fn builder(timeout: Duration, overrides: &Overrides) -> reqwest::ClientBuilder {
    crate::crypto::install_provider();
    let builder = reqwest::Client::builder()
        .connect_timeout(timeout.min(CONNECT_TIMEOUT_CAP))
        .pool_idle_timeout(POOL_IDLE)
        .pool_max_idle_per_host(POOL_IDLE_PER_HOST);
    if overrides.0.is_empty() {
        builder
    } else {
        builder.dns_resolver(Arc::new(overrides.clone()))
    }
}

/// An HTTP client and the bound on its calls in flight; clones share both.
#[derive(Clone)]
pub struct Transport {
    pub(super) http: reqwest::Client,
    pub(super) in_flight: Arc<InFlight>,
}

impl Transport {
    fn new(http: reqwest::Client) -> Self {
        Transport {
            http,
            in_flight: Arc::new(InFlight::new(IN_FLIGHT_PER_HOST)),
        }
    }
}

/// A transport with a TLS configuration of its own (one client on its own, tests).
pub fn transport(timeout: Duration, overrides: &Overrides) -> Result<Transport, reqwest::Error> {
    Ok(Transport::new(builder(timeout, overrides).build()?))
}

/// The projects' transports, built on first use.
#[derive(Default)]
pub struct Transports {
    tls: Mutex<Option<rustls::ClientConfig>>,
    /// By request timeout (the connect timeout follows it).
    shared: Mutex<HashMap<Duration, Transport>>,
}

impl Transports {
    /// The transport for `timeout`: shared unless `overrides` name any host. Always
    /// the platform's verifier and roots, HTTP/2 or 1.1 as reqwest itself offers.
    pub fn get(
        &self,
        timeout: Duration,
        overrides: &Overrides,
    ) -> Result<Transport, TransportError> {
        if !overrides.0.is_empty() {
            return self.build(timeout, overrides);
        }
        let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = shared.get(&timeout) {
            return Ok(client.clone());
        }
        let client = self.build(timeout, overrides)?;
        shared.insert(timeout, client.clone());
        Ok(client)
    }

    fn build(&self, timeout: Duration, overrides: &Overrides) -> Result<Transport, TransportError> {
        use rustls_platform_verifier::ConfigVerifierExt;
        let tls = {
            let mut shared = self.tls.lock().unwrap_or_else(|e| e.into_inner());
            match shared.as_ref() {
                Some(tls) => tls.clone(),
                None => {
                    crate::crypto::install_provider();
                    let mut tls = rustls::ClientConfig::with_platform_verifier()?;
                    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
                    shared.insert(tls).clone()
                }
            }
        };
        Ok(Transport::new(
            builder(timeout, overrides)
                .tls_backend_preconfigured(tls)
                .build()?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_tls_configuration_is_made_once_and_offers_h2_and_http1() {
        let transports = Transports::default();
        for _ in 0..3 {
            transports
                .get(Duration::from_secs(10), &Overrides::default())
                .unwrap();
        }
        let shared = transports.tls.lock().unwrap();
        let tls = shared.as_ref().expect("built on first use");
        assert_eq!(tls.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);
    }

    #[test]
    fn projects_with_the_same_timeout_share_one_transport() {
        let transports = Transports::default();
        for timeout in [10, 10, 10, 5] {
            transports
                .get(Duration::from_secs(timeout), &Overrides::default())
                .unwrap();
        }
        let shared = transports.shared.lock().unwrap();
        let mut timeouts: Vec<_> = shared.keys().copied().collect();
        timeouts.sort();
        assert_eq!(timeouts, [Duration::from_secs(5), Duration::from_secs(10)]);
    }
}
