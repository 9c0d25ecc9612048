//! Leadership per project: a leader key bound to this replica's lease.
//!
//! One lease per replica, renewed every ttl/3; each project's leader key
//! `{prefix}leader/{project}` is created with it if absent (etcd's own election
//! recipe without the queue: whoever finds the key gone first takes it). Every write of
//! a project's state is guarded by the key's lease (see `mirror`), so a deposed leader's
//! writes fail in etcd.
//!
//! Every replica also keeps a member key `{prefix}member/{replica}` on its lease (its
//! value: the address peers reach it at) and reads the leader and member keys every
//! second, so projects are shared out among the live replicas (see `balance`) and a
//! project whose leader is gone is taken within a second of its key expiring.
//!
//! Agora checks no fencing token, so a replica also stops acting on its own clock: a
//! renewal sent at T keeps the lease alive at least until T + ttl at etcd, and this
//! replica treats it as valid only until T + ttl − margin. Past that, with no renewal
//! answered, it acts for no project, whatever it believes it leads.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::EtcdOptions;
use super::error::EtcdError;
use super::gateway::{Gateway, Op};
use super::mirror::Mirror;
use crate::store::observer::LeadershipObserver;

mod sharing;

/// This replica's leadership of its projects.
pub(crate) struct Leader {
    gateway: Arc<Gateway>,
    mirror: Arc<Mirror>,
    prefix: Vec<u8>,
    replica: String,
    installation: String,
    /// Where peers reach this replica (the member key's value; empty: nowhere).
    advertise: Mutex<String>,
    ttl: Duration,
    projects: Vec<String>,
    state: Mutex<State>,
    observer: Mutex<Option<Arc<dyn LeadershipObserver>>>,
    /// Bumped at every change of what is led, to wake those waiting for a term.
    changed: watch::Sender<u64>,
}

#[derive(Default)]
struct State {
    lease: Option<i64>,
    /// Until when this replica may act: last renewal sent + ttl − margin.
    valid_until: Option<Instant>,
    /// The projects led now, each with the token its term ends with.
    terms: HashMap<String, Term>,
    /// The replica each project's leader key names, as last read.
    leaders: BTreeMap<String, String>,
    /// The live replicas as last read.
    members: BTreeMap<String, Seen>,
    /// When each project was first seen free, while it stays free.
    free_since: HashMap<String, Instant>,
    /// Projects another installation owns in this prefix: never acted for.
    refused: HashSet<String>,
    /// Projects found claimed by this installation: the claim is permanent (no lease),
    /// so a later campaign need not ask etcd again.
    claimed: HashSet<String>,
}

struct Term {
    ends: CancellationToken,
    since: Instant,
}

/// A member key as read.
struct Seen {
    /// Where the replica is reached.
    address: String,
    /// When this replica first saw it (with this lease).
    first: Instant,
    lease: i64,
}

impl Leader {
    pub(super) fn new(
        gateway: Arc<Gateway>,
        mirror: Arc<Mirror>,
        options: &EtcdOptions,
        projects: Vec<String>,
    ) -> Leader {
        Leader {
            gateway,
            mirror,
            prefix: options.prefix.as_bytes().to_vec(),
            replica: options.replica.clone(),
            installation: options.installation.clone(),
            advertise: Mutex::default(),
            ttl: options.ttl,
            projects,
            state: Mutex::default(),
            observer: Mutex::default(),
            changed: watch::channel(0).0,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn observe(&self, observer: Arc<dyn LeadershipObserver>) {
        *self.observer.lock().unwrap_or_else(|e| e.into_inner()) = Some(observer);
    }

    fn report(&self, f: impl FnOnce(&dyn LeadershipObserver)) {
        let observer = self
            .observer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(observer) = observer {
            f(&*observer);
        }
    }

    /// How long before the lease may expire at etcd this replica stops acting: room for
    /// a request already on its way and for clocks that run at slightly different rates.
    pub(super) fn margin(&self) -> Duration {
        (self.ttl / 5).max(Duration::from_secs(1))
    }

    /// How often the lease is renewed.
    pub(super) fn period(&self) -> Duration {
        self.ttl / 3
    }

    /// How often the leader and member keys are read: a handed-over or expired project
    /// waits at most this long for its next leader to notice.
    pub(super) fn scan_period(&self) -> Duration {
        self.period().min(Duration::from_secs(1))
    }

    /// How long a new replica is a member before others hand it projects, and how long a
    /// project may stay free before anyone takes it whatever the balance says.
    pub(super) fn settle_time(&self) -> Duration {
        self.ttl
    }

    fn key(&self, kind: &str, project: &str) -> Vec<u8> {
        let mut k = self.prefix.clone();
        k.extend_from_slice(kind.as_bytes());
        k.push(b'/');
        k.extend_from_slice(project.as_bytes());
        k
    }

    /// Whether this replica may act for `project` now.
    pub(crate) fn acting(&self, project: &str) -> bool {
        let state = self.state();
        state.terms.contains_key(project) && state.valid_until.is_some_and(|v| Instant::now() < v)
    }

    /// Whether this replica leads no project (then a drain has nothing to hand over).
    pub(crate) fn leads_nothing(&self) -> bool {
        self.state().terms.is_empty()
    }

    /// Whether this replica holds a lease it may act under (etcd answered a renewal
    /// within the ttl less the margin).
    pub(crate) fn connected(&self) -> bool {
        self.state().valid_until.is_some_and(|v| Instant::now() < v)
    }

    /// Waits until this replica leads `project` and returns the token cancelled when
    /// that term ends.
    pub(crate) async fn term(&self, project: &str) -> CancellationToken {
        let mut changed = self.changed.subscribe();
        loop {
            if let Some(term) = self.state().terms.get(project) {
                return term.ends.clone();
            }
            // The sender lives as long as `self`.
            let _ = changed.changed().await;
        }
    }

    /// The replica each project's leader key named when last read.
    pub(crate) fn leaders(&self) -> BTreeMap<String, String> {
        self.state().leaders.clone()
    }

    /// Where the replica leading `project` is reached, when it is another replica that
    /// published an address.
    pub(crate) fn leader_address(&self, project: &str) -> Option<String> {
        let state = self.state();
        let leader = state.leaders.get(project)?;
        if *leader == self.replica {
            return None;
        }
        state
            .members
            .get(leader)
            .map(|m| m.address.clone())
            .filter(|a| !a.is_empty())
    }

    /// This replica's name.
    pub(crate) fn replica(&self) -> &str {
        &self.replica
    }

    /// Publishes where peers reach this replica, from the next lease on (call before
    /// `run`).
    pub(crate) fn advertise(&self, address: &str) {
        *self.advertise.lock().unwrap_or_else(|e| e.into_inner()) = address.to_string();
    }

    /// Ends the term of `project` (its leader key is gone or not ours any more).
    pub(super) fn lose(&self, project: &str, why: &str) {
        let term = self.state().terms.remove(project);
        if let Some(term) = term {
            tracing::warn!(
                project,
                why,
                "leadership lost; stopping work for the project"
            );
            self.mirror.drop_project(project);
            term.ends.cancel();
            self.report(|o| o.term(project, false));
            self.changed.send_modify(|n| *n += 1);
        }
    }

    fn lose_all(&self, why: &str) {
        let projects: Vec<String> = self.state().terms.keys().cloned().collect();
        for project in projects {
            self.lose(&project, why);
        }
        let mut state = self.state();
        state.lease = None;
        state.valid_until = None;
    }

    /// Keeps a lease and shares the projects out with the other replicas until `stop`,
    /// then gives the lease back so successors need not wait for it to expire.
    ///
    /// Renewals and scans are separate loops: a scan that campaigns for many projects
    /// (a start, a replica lost) makes several etcd calls per project, and a renewal
    /// queued behind it would let the lease lapse in the middle of taking over.
    pub(crate) async fn run(self: Arc<Self>, stop: CancellationToken) {
        let renewing = self.every(
            self.period(),
            &stop,
            || self.renew(),
            "etcd: lease renewal failed; retrying",
        );
        let sharing = self.every(
            self.scan_period(),
            &stop,
            || self.scan(),
            "etcd: reading the leader keys failed; retrying",
        );
        tokio::join!(renewing, sharing);
        let held = self.state().lease;
        self.lose_all("shutting down");
        if let Some(lease) = held
            && let Err(e) = self.gateway.lease_revoke(lease).await
        {
            tracing::warn!(error = %e, "etcd: could not give the lease back; successors wait for its ttl");
        }
    }

    /// Runs `step` every `period` until `stop`, then ends the terms if the lease has
    /// lapsed meanwhile.
    async fn every<F>(
        &self,
        period: Duration,
        stop: &CancellationToken,
        step: impl Fn() -> F,
        failed: &'static str,
    ) where
        F: Future<Output = Result<(), EtcdError>>,
    {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = ticks.tick() => {
                    if let Err(e) = step().await {
                        tracing::warn!(error = %e, "{failed}");
                    }
                }
            }
            self.lose_all_if_expired();
        }
    }

    fn lose_all_if_expired(&self) {
        let expired = self
            .state()
            .valid_until
            .is_some_and(|v| Instant::now() >= v);
        if expired {
            self.lose_all("no lease renewal answered within the ttl");
        }
    }

    /// Renews the lease, or takes a new one (with this replica's member key on it).
    async fn renew(&self) -> Result<(), EtcdError> {
        let sent = Instant::now();
        let held = self.state().lease;
        let renewed = match held {
            Some(lease) => self
                .gateway
                .lease_keep_alive(lease)
                .await
                .map(|ttl| (ttl > 0).then_some(lease)),
            None => self
                .gateway
                .lease_grant(self.ttl)
                .await
                .map(|(lease, _ttl)| Some(lease)),
        };
        self.report(|o| o.renewal(sent.elapsed(), matches!(renewed, Ok(Some(_)))));
        let Some(lease) = renewed? else {
            self.lose_all("the lease expired at etcd");
            return Ok(());
        };
        if held.is_none() {
            let member = Op::Put {
                key: self.key("member", &self.replica),
                value: self
                    .advertise
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_bytes()
                    .to_vec(),
                lease,
            };
            self.gateway.txn(&[], &[member], &[]).await?;
        }
        self.state().lease = Some(lease);
        self.state().valid_until = Some(sent + self.ttl - self.margin());
        Ok(())
    }

    /// Takes the leader key of `project` if it is free, then loads its state.
    async fn campaign(&self, project: &str, lease: i64) -> Result<(), EtcdError> {
        if !self.owned_by_this_installation(project).await? {
            return Ok(());
        }
        let key = self.key("leader", project);
        let (taken, holder) = self
            .gateway
            .put_if_absent(&key, self.replica.as_bytes(), lease)
            .await?;
        let holder = holder.as_ref();
        let ours = taken || holder.is_some_and(|kv| kv.lease == lease);
        let leader = match holder {
            Some(kv) if !ours => String::from_utf8_lossy(&kv.value).into_owned(),
            _ => self.replica.clone(),
        };
        self.state().leaders.insert(project.to_string(), leader);
        if !ours {
            return Ok(());
        }
        let kvs = self
            .gateway
            .range_prefix(&self.mirror.project_prefix(project))
            .await?;
        let keys = kvs.len();
        self.mirror.lead(project, lease, kvs);
        {
            // Renewals run beside the scans: the lease campaigned with may have lapsed
            // (and another been taken) meanwhile; a term on it would outlive its key.
            let mut state = self.state();
            if state.lease != Some(lease) {
                drop(state);
                self.mirror.drop_project(project);
                return Ok(());
            }
            state.terms.insert(
                project.to_string(),
                Term {
                    ends: CancellationToken::new(),
                    since: Instant::now(),
                },
            );
        }
        self.changed.send_modify(|n| *n += 1);
        self.report(|o| o.term(project, true));
        tracing::info!(project, keys, replica = %self.replica, "leading the project");
        Ok(())
    }

    /// Claims `project` for this installation in this prefix, or finds that another one
    /// did: two installations acting for one project would fight over its players.
    async fn owned_by_this_installation(&self, project: &str) -> Result<bool, EtcdError> {
        if self.state().claimed.contains(project) {
            return Ok(true);
        }
        let key = self.key("installation", project);
        let (claimed, owner) = self
            .gateway
            .put_if_absent(&key, self.installation.as_bytes(), 0)
            .await?;
        let owner = owner.map(|kv| String::from_utf8_lossy(&kv.value).into_owned());
        match owner {
            Some(owner) if !claimed && owner != self.installation => {
                tracing::error!(project, owner = %owner, installation = %self.installation,
                    "etcd: another installation acts for this project under the same prefix; \
                     refusing to act for it (give each installation its own prefix)");
                self.state().refused.insert(project.to_string());
                Ok(false)
            }
            _ => {
                self.state().claimed.insert(project.to_string());
                Ok(true)
            }
        }
    }

    /// The projects refused because another installation owns them.
    pub(crate) fn refused(&self) -> Vec<String> {
        let mut refused: Vec<String> = self.state().refused.iter().cloned().collect();
        refused.sort();
        refused
    }
}

pub(super) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
