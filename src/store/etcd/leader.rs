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
use super::balance::{self, Member, View};
use super::error::EtcdError;
use super::gateway::{Compare, Gateway, Kv, Op, prefix_end};
use super::mirror::Mirror;
use crate::store::observer::LeadershipObserver;

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

    /// Waits, at most one ttl and at most `limit`, until a replica that was not a member when this was
    /// called becomes one (the pod replacing this one in a rolling update), so that the
    /// projects this replica hands over when it stops go to it, moving once, rather than
    /// to the others and then again to it. Keeps leading meanwhile.
    pub(crate) async fn await_successor(&self, limit: Duration) {
        let known: HashSet<(String, i64)> = self
            .state()
            .members
            .iter()
            .map(|(name, m)| (name.clone(), m.lease))
            .collect();
        let own = self.state().lease;
        let deadline = Instant::now() + self.ttl.min(limit);
        while Instant::now() < deadline {
            let arrived =
                self.state().members.iter().any(|(name, m)| {
                    Some(m.lease) != own && !known.contains(&(name.clone(), m.lease))
                });
            if arrived {
                tracing::info!("a new replica joined; handing the projects over");
                return;
            }
            tokio::time::sleep(self.scan_period() / 4).await;
        }
        tracing::info!("no new replica joined within the ttl; handing the projects to the others");
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
    pub(crate) async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut renewals = tokio::time::interval(self.period());
        renewals.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut scans = tokio::time::interval(self.scan_period());
        scans.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = renewals.tick() => {
                    if let Err(e) = self.renew().await {
                        tracing::warn!(error = %e, "etcd: lease renewal failed; retrying");
                    }
                }
                _ = scans.tick() => {
                    if let Err(e) = self.scan().await {
                        tracing::warn!(error = %e, "etcd: reading the leader keys failed; retrying");
                    }
                }
            }
            let expired = self
                .state()
                .valid_until
                .is_some_and(|v| Instant::now() >= v);
            if expired {
                self.lose_all("no lease renewal answered within the ttl");
            }
        }
        let held = self.state().lease;
        self.lose_all("shutting down");
        if let Some(lease) = held
            && let Err(e) = self.gateway.lease_revoke(lease).await
        {
            tracing::warn!(error = %e, "etcd: could not give the lease back; successors wait for its ttl");
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

    /// Reads the leader and member keys, then hands over and takes what the balance says.
    async fn scan(&self) -> Result<(), EtcdError> {
        let lease = {
            let state = self.state();
            match state.lease {
                Some(lease) if state.valid_until.is_some_and(|v| Instant::now() < v) => lease,
                _ => return Ok(()),
            }
        };
        let leader_keys = self.read_prefix("leader").await?;
        let member_keys = self.read_prefix("member").await?;
        let now = Instant::now();
        let (moves, lost) = {
            let mut state = self.state();
            state.leaders = leader_keys
                .iter()
                .map(|(project, kv)| (project.clone(), text(&kv.value)))
                .collect();
            let seen = std::mem::take(&mut state.members);
            state.members = member_keys
                .iter()
                .map(|(name, kv)| {
                    let first = seen
                        .get(name)
                        .filter(|m| m.lease == kv.lease)
                        .map_or(now, |m| m.first);
                    let address = text(&kv.value);
                    let lease = kv.lease;
                    (
                        name.clone(),
                        Seen {
                            address,
                            first,
                            lease,
                        },
                    )
                })
                .collect();
            let lost: Vec<String> = state
                .terms
                .keys()
                .filter(|p| leader_keys.get(*p).is_none_or(|kv| kv.lease != lease))
                .cloned()
                .collect();
            let projects: Vec<String> = self
                .projects
                .iter()
                .filter(|p| !state.refused.contains(*p))
                .cloned()
                .collect();
            let leaders = state.leaders.clone();
            state.free_since.retain(|p, _| !leaders.contains_key(p));
            for p in projects.iter().filter(|p| !leaders.contains_key(*p)) {
                state.free_since.entry(p.clone()).or_insert(now);
            }
            let overdue = state
                .free_since
                .iter()
                .filter(|(_, since)| now.duration_since(**since) >= self.settle_time())
                .map(|(p, _)| p.clone())
                .collect();
            let members: Vec<Member> = state
                .members
                .iter()
                .map(|(name, m)| Member {
                    name: name.clone(),
                    settled: now.duration_since(m.first) >= self.settle_time(),
                })
                .collect();
            let mut held: Vec<(&String, Instant)> = state
                .terms
                .iter()
                .filter(|(p, _)| !lost.contains(*p))
                .map(|(p, t)| (p, t.since))
                .collect();
            held.sort_by_key(|(p, since)| (*since, (*p).clone()));
            let held: Vec<String> = held.into_iter().map(|(p, _)| p.clone()).collect();
            let view = View {
                me: &self.replica,
                projects: &projects,
                leaders: &leaders,
                members: &members,
                held: &held,
                overdue: &overdue,
            };
            (balance::balance(&view), lost)
        };
        for project in lost {
            self.lose(
                &project,
                "its leader key is gone or held by another replica",
            );
        }
        for project in moves.release {
            self.release(&project, lease).await?;
        }
        for project in moves.take {
            self.campaign(&project, lease).await?;
        }
        Ok(())
    }

    /// The keys `{prefix}{kind}/…`, by the name after the slash.
    async fn read_prefix(&self, kind: &str) -> Result<BTreeMap<String, Kv>, EtcdError> {
        let start = self.key(kind, "");
        let kvs = self.gateway.range(&start, &prefix_end(&start)).await?;
        Ok(kvs
            .into_iter()
            .map(|kv| (text(&kv.key[start.len()..]), kv))
            .collect())
    }

    /// Hands `project` over: stops acting for it, then deletes its leader key (only if
    /// it still carries this replica's lease) so the replica the balance chose takes it.
    async fn release(&self, project: &str, lease: i64) -> Result<(), EtcdError> {
        self.lose(project, "handing the project over to a less loaded replica");
        let key = self.key("leader", project);
        let guard = [Compare::Lease(key.clone(), lease)];
        self.gateway.txn(&guard, &[Op::Delete(key)], &[]).await?;
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
        self.state().terms.insert(
            project.to_string(),
            Term {
                ends: CancellationToken::new(),
                since: Instant::now(),
            },
        );
        self.changed.send_modify(|n| *n += 1);
        self.report(|o| o.term(project, true));
        tracing::info!(project, keys, replica = %self.replica, "leading the project");
        Ok(())
    }

    /// Claims `project` for this installation in this prefix, or finds that another one
    /// did: two installations acting for one project would fight over its players.
    async fn owned_by_this_installation(&self, project: &str) -> Result<bool, EtcdError> {
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
            _ => Ok(true),
        }
    }

    /// The projects refused because another installation owns them.
    pub(crate) fn refused(&self) -> Vec<String> {
        let mut refused: Vec<String> = self.state().refused.iter().cloned().collect();
        refused.sort();
        refused
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
