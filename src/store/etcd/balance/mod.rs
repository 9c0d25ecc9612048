//! Which projects this replica should take and which it should hand over: a pure
//! decision over one reading of the leader and member keys, so every replica reading the
//! same keys decides the same thing, and the rule can be tested without etcd.
//!
//! With N live replicas and P projects each replica should lead about ⌈P/N⌉:
//! - A free project goes to the live replica leading the fewest (ties by name), never to
//!   one already at ⌈P/N⌉. Everyone computes the same assignment, so usually only the
//!   assignee campaigns; when views differ, the leader key decides.
//! - A replica leading more than ⌈P/N⌉ hands the surplus over, longest held first.
//!   Replicas that joined within the settle time do not count for this yet: a replica
//!   that starts during a rolling update first receives the projects of the one being
//!   drained (free projects go to the least loaded) instead of pulling projects off the
//!   others and then pushing those around again.
//! - A project free for longer than the grace time is taken by whoever sees it, whatever
//!   the counts say: balance never comes before having a leader.
//! - A replica reading a member it did not see at its previous reading (or reading for
//!   the first time) takes nothing else that time: replicas started together (a
//!   Deployment's pods) first see each other, then share, instead of the first one
//!   taking everything and handing most of it over a ttl later (Kafka's consumer groups
//!   delay their first rebalance for the same reason). At a cold start (no project led by
//!   anyone) that holds for half a settle time after a replica became a member, since
//!   replicas started together register seconds apart when each first parses a large
//!   configuration. A replica leaving does not wait: its projects need a leader now.

use std::collections::{BTreeMap, BTreeSet, HashSet};

/// A replica as its member key shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Member {
    pub name: String,
    /// Member for longer than the settle time.
    pub settled: bool,
}

/// One reading of the keys, from this replica's side.
pub(super) struct View<'a> {
    pub me: &'a str,
    /// The projects to lead (configured, not refused).
    pub projects: &'a [String],
    /// Project → the replica its leader key names (free projects absent).
    pub leaders: &'a BTreeMap<String, String>,
    /// The live replicas (this one may be missing: its member key is written with its
    /// lease, and counts as present anyway).
    pub members: &'a [Member],
    /// The projects this replica leads, longest held first.
    pub held: &'a [String],
    /// Free projects seen free for longer than the grace time.
    pub overdue: &'a HashSet<String>,
    /// A member joined since the previous reading (or this is the first), or it is a
    /// cold start and this replica joined less than half a settle time ago.
    pub joining: bool,
}

/// What to do after a reading.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Moves {
    pub take: Vec<String>,
    pub release: Vec<String>,
}

/// ⌈projects / replicas⌉, the most one of `replicas` should lead.
pub(super) fn fair_share(projects: usize, replicas: usize) -> usize {
    projects.div_ceil(replicas.max(1))
}

/// The moves of `view.me` for this reading.
pub(super) fn balance(view: &View<'_>) -> Moves {
    let mut live: BTreeSet<&str> = view.members.iter().map(|m| m.name.as_str()).collect();
    live.insert(view.me);
    let mut settled: BTreeSet<&str> = view
        .members
        .iter()
        .filter(|m| m.settled)
        .map(|m| m.name.as_str())
        .collect();
    settled.insert(view.me);
    let projects = view.projects.len();

    let mine = view.held.len();
    let keep = fair_share(projects, settled.len());
    if mine > keep {
        return Moves {
            take: Vec::new(),
            release: view.held[..mine - keep].to_vec(),
        };
    }

    let mut counts: BTreeMap<&str, usize> = live.iter().map(|name| (*name, 0)).collect();
    for leader in view.leaders.values() {
        if let Some(n) = counts.get_mut(leader.as_str()) {
            *n += 1;
        }
    }
    let cap = fair_share(projects, live.len());
    let mut take = Vec::new();
    let free = view
        .projects
        .iter()
        .filter(|p| !view.leaders.contains_key(*p));
    for project in free {
        let least = counts
            .iter()
            .filter(|(_, n)| **n < cap)
            .min_by_key(|(name, n)| (**n, **name))
            .map(|(name, _)| *name);
        if let Some(name) = least {
            *counts.get_mut(name).expect("a counted replica") += 1;
            if name == view.me && !view.joining {
                take.push(project.clone());
                continue;
            }
        }
        if view.overdue.contains(project) {
            take.push(project.clone());
        }
    }
    Moves {
        take,
        release: Vec::new(),
    }
}

#[cfg(test)]
mod tests;
