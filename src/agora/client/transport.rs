//! The HTTP transports behind the Media Pull clients.
//!
//! Each project gets a reqwest client of its own, so its own connection pool: measured
//! at 200 projects, one pool shared by all made one project's creates reach Agora
//! bunched after their rate-limiter turns (190 log lines of 429 where per-project pools
//! had 0–10 per run, BENCHMARKS.md), and a 429 stops a project's creates for 5 s. What they share is
//! the TLS configuration: built per client, reqwest loads the system's root certificates
//! each time: 105 MiB for 1,000 clients, and the start-up profile's biggest item.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::agora::domains::Overrides;

/// Longest wait for a TCP/TLS connection, whatever the request timeout.
const CONNECT_TIMEOUT_CAP: Duration = Duration::from_secs(5);

/// How long an idle pooled connection is kept.
const POOL_IDLE: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("TLS set-up: {0}")]
    Tls(#[from] rustls::Error),
    #[error(transparent)]
    Http(#[from] reqwest::Error),
}

/// The settings every transport has: connect within `timeout` (at most 5 s), resolve
/// `overrides` (test-only `--resolve` style names) itself.
fn builder(timeout: Duration, overrides: &Overrides) -> reqwest::ClientBuilder {
    crate::tls::install_crypto_provider();
    let builder = reqwest::Client::builder()
        .connect_timeout(timeout.min(CONNECT_TIMEOUT_CAP))
        .pool_idle_timeout(POOL_IDLE);
    if overrides.0.is_empty() {
        builder
    } else {
        builder.dns_resolver(Arc::new(overrides.clone()))
    }
}

/// A transport with a TLS configuration of its own (one client on its own, tests).
pub fn transport(
    timeout: Duration,
    overrides: &Overrides,
) -> Result<reqwest::Client, reqwest::Error> {
    builder(timeout, overrides).build()
}

/// Builds the projects' transports on one TLS configuration, made on first use.
#[derive(Default)]
pub struct Transports {
    tls: Mutex<Option<rustls::ClientConfig>>,
}

impl Transports {
    /// A new transport (its own connection pool) on the shared TLS configuration:
    /// the platform's verifier and roots, HTTP/2 or 1.1 as reqwest itself offers.
    pub fn get(
        &self,
        timeout: Duration,
        overrides: &Overrides,
    ) -> Result<reqwest::Client, TransportError> {
        use rustls_platform_verifier::ConfigVerifierExt;
        let tls = {
            let mut shared = self.tls.lock().unwrap_or_else(|e| e.into_inner());
            match shared.as_ref() {
                Some(tls) => tls.clone(),
                None => {
                    crate::tls::install_crypto_provider();
                    let mut tls = rustls::ClientConfig::with_platform_verifier()?;
                    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
                    shared.insert(tls).clone()
                }
            }
        };
        Ok(builder(timeout, overrides)
            .tls_backend_preconfigured(tls)
            .build()?)
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
}
