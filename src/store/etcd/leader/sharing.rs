//! Sharing the projects out: each scan reads the leader and member keys, ends the terms
//! whose keys are gone, and hands over and takes what `balance` decides; at a drain,
//! waiting for the replica that replaces this one.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use futures_util::{StreamExt, stream};
use tokio::time::Instant;

use super::super::balance::{self, Member, View};
use super::super::error::EtcdError;
use super::super::gateway::{Compare, Kv, Op, prefix_end};
use super::{Leader, Seen, text};

/// Campaigns of one scan in flight at once: enough to take a lost replica's share of
/// 1,000 projects within a few seconds, few enough not to crowd out lease renewals (at
/// 64, on an etcd already at its limit, survivors took not all of a lost replica's 332
/// projects within 40 s; `bench scaleout`).
const CAMPAIGNS_AT_ONCE: usize = 16;

impl Leader {
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

    /// Reads the leader and member keys, then hands over and takes what the balance says.
    pub(super) async fn scan(&self) -> Result<(), EtcdError> {
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
            let mut joining = seen.is_empty()
                || member_keys
                    .iter()
                    .any(|(name, kv)| seen.get(name).is_none_or(|m| m.lease != kv.lease));
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
            // A cold start (no project led by anyone) waits until half a settle time
            // after the newest member joined, and at most a settle time after this
            // replica did: replicas started together register seconds apart when each
            // first parses a large configuration, and one seen after the others had
            // shared would have projects handed over to it. Meanwhile no project's
            // overdue clock runs, so the replicas take their shares before anyone takes
            // a project whatever the counts say.
            let (settle, half) = (self.settle_time(), self.settle_time() / 2);
            let own = state.members.get(&self.replica).map(|m| now - m.first);
            let newest = state.members.values().map(|m| now - m.first).min();
            let waiting = own
                .is_none_or(|own| own < half || (own < settle && newest.is_some_and(|n| n < half)));
            if leader_keys.is_empty() && waiting {
                joining = true;
                state.free_since.clear();
            }
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
                joining,
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
        // Concurrently: after a replica is lost its projects (a third of them with three
        // replicas) are taken in one scan, each with three etcd round trips; one after
        // the other they outlasted the ttl + 5 s a lost replica's projects may go
        // without a leader.
        let taken: Vec<Result<(), EtcdError>> = stream::iter(moves.take)
            .map(|project| async move { self.campaign(&project, lease).await })
            .buffer_unordered(CAMPAIGNS_AT_ONCE)
            .collect()
            .await;
        taken.into_iter().collect()
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
}
