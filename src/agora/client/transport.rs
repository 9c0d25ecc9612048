//! The HTTP transports behind the Media Pull clients, shared between projects.
//!
//! Each reqwest client loads the system's root certificates and keeps its own
//! connection pool: one per project cost about 100 KiB and 10 ms of start-up each
//! (1,000 projects: 105 MiB and seconds of CPU, BENCHMARKS.md). Nothing per project
//! lives in the transport (credentials, the request timeout and the rate limiters are
//! per request or per client), so projects with the same transport settings share one.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::agora::domains::{Override, Overrides};

/// Longest wait for a TCP/TLS connection, whatever the request timeout.
const CONNECT_TIMEOUT_CAP: Duration = Duration::from_secs(5);

/// How long an idle pooled connection is kept.
const POOL_IDLE: Duration = Duration::from_secs(60);

/// A new transport: connects within `timeout` (at most 5 s), resolving `overrides`
/// (test-only `--resolve` style names) itself.
pub fn transport(
    timeout: Duration,
    overrides: &Overrides,
) -> Result<reqwest::Client, reqwest::Error> {
    crate::tls::install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .connect_timeout(timeout.min(CONNECT_TIMEOUT_CAP))
        .pool_idle_timeout(POOL_IDLE);
    if !overrides.0.is_empty() {
        builder = builder.dns_resolver(Arc::new(overrides.clone()));
    }
    builder.build()
}

/// What makes two transports differ: the connect timeout and the name overrides.
type Settings = (Duration, BTreeMap<String, Override>);

/// Transports by their settings, built on first use. Cheap to share by reference.
#[derive(Default)]
pub struct Transports {
    built: Mutex<HashMap<Settings, reqwest::Client>>,
}

impl Transports {
    /// The transport for these settings, shared with every earlier caller that asked
    /// for the same (a reqwest client is a handle: clones share the pool).
    pub fn get(
        &self,
        timeout: Duration,
        overrides: &Overrides,
    ) -> Result<reqwest::Client, reqwest::Error> {
        let connect = timeout.min(CONNECT_TIMEOUT_CAP);
        let key = (connect, BTreeMap::clone(&overrides.0));
        let mut built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = built.get(&key) {
            return Ok(client.clone());
        }
        let client = transport(connect, overrides)?;
        built.insert(key, client.clone());
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built(transports: &Transports) -> usize {
        transports.built.lock().unwrap().len()
    }

    #[test]
    fn equal_settings_share_one_transport_and_different_ones_do_not() {
        let transports = Transports::default();
        let none = Overrides::default();
        let resolved = Overrides(Arc::new(BTreeMap::from([(
            "api.example".to_string(),
            Override::Addr("127.0.0.1:9".parse().unwrap()),
        )])));
        for _ in 0..3 {
            transports.get(Duration::from_secs(10), &none).unwrap();
        }
        assert_eq!(built(&transports), 1);
        // 10 s and 20 s both connect within the 5 s cap: one transport.
        transports.get(Duration::from_secs(20), &none).unwrap();
        assert_eq!(built(&transports), 1);
        transports.get(Duration::from_secs(2), &none).unwrap();
        transports.get(Duration::from_secs(10), &resolved).unwrap();
        transports.get(Duration::from_secs(10), &resolved).unwrap();
        assert_eq!(built(&transports), 3);
    }
}
