//! A bound on the calls in flight to each Agora host, shared by every client on one
//! transport.
//!
//! Each project's rate limiter lets its own calls through, but a thousand projects
//! together offer up to 2,000 creates and 200 Lists a second. Over HTTP/1.1 every call in
//! flight holds a connection of its own (hyper's buffers, its dispatch task, a socket):
//! while Agora (or the simulator) answered slowly, a 1,000-project start held over 5,000
//! of them, and the process's peak memory with them (BENCHMARKS.md, scale). Calls beyond
//! the bound wait here, after their rate limiter and before their request timeout starts,
//! so a queued call neither counts against Agora's windows early nor times out for
//! waiting its turn. Per host, so a domain that stopped answering (its calls holding
//! their permits until they time out) does not hold up the fallback domains.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Calls in flight per host. Sized for Agora at 1,000 projects: 200 Lists a second in
/// steady state at a few hundred milliseconds each need about 60; the rest is for
/// creates, deletes and a region's slower answers. A connection costs about 25 KiB, so
/// the bound's connections are about 3 MiB.
pub const IN_FLIGHT_PER_HOST: usize = 128;

pub struct InFlight {
    per_host: usize,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl InFlight {
    pub fn new(per_host: usize) -> Self {
        InFlight {
            per_host,
            hosts: Mutex::new(HashMap::new()),
        }
    }

    /// Waits for a place among `host`'s calls in flight; the call holds it until it has
    /// read its answer, so the connection is free again when the next call takes it.
    pub async fn enter(&self, host: &str) -> OwnedSemaphorePermit {
        let gate = {
            let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
            hosts
                .entry(host.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_host)))
                .clone()
        };
        gate.acquire_owned()
            .await
            .expect("the semaphore is never closed")
    }
}
