//! What a Media Pull client is built from: where requests go, the credentials, the
//! request timeout and one rate limiter per API.

use std::time::Duration;

use secrecy::SecretString;

use crate::agora::domains::{DomainPool, Overrides};
use crate::limits::RateLimiter;

/// One rate limiter per API, as Agora counts them (§1.10).
#[derive(Debug)]
pub struct ApiLimiters {
    pub create_with_name: RateLimiter,
    pub create_without_name: RateLimiter,
    pub delete: RateLimiter,
    pub list: RateLimiter,
    pub list_filtered: RateLimiter,
    pub update: RateLimiter,
}

impl ApiLimiters {
    /// Each limiter with the name its calls are recorded under in the store.
    pub fn each(&self) -> [(&'static str, &RateLimiter); 6] {
        [
            ("create_with_name", &self.create_with_name),
            ("create_without_name", &self.create_without_name),
            ("delete", &self.delete),
            ("list", &self.list),
            ("list_filtered", &self.list_filtered),
            ("update", &self.update),
        ]
    }
}

/// Where requests go.
pub enum Endpoint {
    /// One base URL, e.g. a simulator's `http://127.0.0.1:PORT`: no domain switching.
    Fixed(String),
    /// Agora's domains with the documented switch (see `domains`).
    Domains {
        /// `https`, or `http` for a simulator standing in for Agora's names.
        scheme: String,
        pool: DomainPool,
        /// Test-only name overrides (curl `--resolve` style).
        overrides: Overrides,
    },
}

impl Endpoint {
    /// The name overrides the transport must resolve (none for a fixed URL).
    pub fn overrides(&self) -> Overrides {
        match self {
            Endpoint::Domains { overrides, .. } => overrides.clone(),
            Endpoint::Fixed(_) => Overrides::default(),
        }
    }
}

/// Everything a client needs for one Agora project.
pub struct ClientConfig {
    pub endpoint: Endpoint,
    pub app_id: String,
    pub customer_id: SecretString,
    pub customer_secret: SecretString,
    /// Bound on a whole request; reqwest has none by default.
    pub timeout: Duration,
    pub limiters: ApiLimiters,
}
