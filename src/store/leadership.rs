//! Which projects this replica may act for, and for how long.
//!
//! With the embedded store there is one replica and it leads every project for ever.
//! With etcd a replica leads a project while it holds the project's leader key (see
//! `etcd::leader`); a term ends when the key is lost, and `acting` turns false as soon as
//! this replica's own clock says the lease may have expired, whether or not the loss has
//! been noticed yet.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::etcd::Leader;
use super::observer::LeadershipObserver;

/// A handle on this replica's leadership; cheap to clone.
#[derive(Clone, Default)]
pub struct Leadership(Option<Arc<Leader>>);

impl Leadership {
    /// The single replica: every project led, always.
    pub fn sole() -> Leadership {
        Leadership(None)
    }

    pub(super) fn etcd(leader: Arc<Leader>) -> Leadership {
        Leadership(Some(leader))
    }

    /// Whether this replica may act for `project` now (call an Agora API, write its
    /// state).
    pub fn acting(&self, project: &str) -> bool {
        self.0.as_ref().is_none_or(|l| l.acting(project))
    }

    /// Whether this replica can take part: the sole replica always; with etcd, while it
    /// holds a live lease.
    pub fn connected(&self) -> bool {
        self.0.as_ref().is_none_or(|l| l.connected())
    }

    /// Waits until this replica leads `project`; the token is cancelled when that term
    /// ends. The sole replica's term never ends.
    pub async fn term(&self, project: &str) -> CancellationToken {
        match &self.0 {
            None => CancellationToken::new(),
            Some(leader) => leader.term(project).await,
        }
    }

    /// The replica each project's leader key named when last read (empty for the sole
    /// replica).
    pub fn leaders(&self) -> BTreeMap<String, String> {
        self.0.as_ref().map(|l| l.leaders()).unwrap_or_default()
    }

    /// Where the replica leading `project` is reached, when another replica leads it and
    /// published its address.
    pub fn leader_address(&self, project: &str) -> Option<String> {
        self.0.as_ref().and_then(|l| l.leader_address(project))
    }

    /// This replica's name in the leader keys (none for the sole replica).
    pub fn replica(&self) -> Option<&str> {
        self.0.as_ref().map(|l| l.replica())
    }

    /// Publishes where the other replicas reach this one (call before [`run`](Self::run)).
    pub fn advertise(&self, address: &str) {
        if let Some(leader) = &self.0 {
            leader.advertise(address);
        }
    }

    /// Projects another installation owns under the same etcd prefix.
    pub fn refused(&self) -> Vec<String> {
        self.0.as_ref().map(|l| l.refused()).unwrap_or_default()
    }

    /// Reports renewals and terms to `observer` from now on (nothing for the sole replica,
    /// which never renews and never changes terms).
    pub fn observe(&self, observer: Arc<dyn LeadershipObserver>) {
        if let Some(leader) = &self.0 {
            leader.observe(observer);
        }
    }

    /// At a drain: waits, at most one ttl and at most `limit`, for a replica that joins
    /// now (the one replacing this one), to hand the projects to it. Nothing to wait for
    /// alone.
    pub async fn await_successor(&self, limit: std::time::Duration) {
        if let Some(leader) = &self.0
            && !leader.leads_nothing()
        {
            leader.await_successor(limit).await;
        }
    }

    /// Whether leadership is shared through etcd (false: the sole replica).
    pub fn shared(&self) -> bool {
        self.0.is_some()
    }

    /// Keeps the lease and takes free projects until `stop`, then gives the lease back.
    /// Returns at once for the sole replica.
    pub async fn run(&self, stop: CancellationToken) {
        if let Some(leader) = &self.0 {
            leader.clone().run(stop).await;
        }
    }
}
