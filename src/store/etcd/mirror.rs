//! The keys of the projects this replica leads, in memory, and what changed since the
//! last flush.
//!
//! The store's contract lets a backend serve reads and writes from memory and make them
//! durable at the next flush, and pullkeeper flushes before every Agora call a write
//! protects. So a leader reads nothing from etcd after taking a project over: it loads
//! the project's keys once, and each flush writes what changed in one transaction per
//! project, guarded by the project's leader key. A replica that lost the key can neither
//! read nor write the project here, and its flush fails in etcd.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use super::gateway::Kv;
use crate::store::error::StoreError;
use crate::store::trees::{Tree, project_of};

/// The mirrored keys, by their full etcd key.
pub(super) struct Mirror {
    state: Mutex<State>,
    /// `{prefix}p/`: where the projects' data lives.
    data_prefix: Vec<u8>,
}

#[derive(Default)]
struct State {
    kv: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Keys written since the last flush took them, by project.
    dirty: HashMap<String, BTreeSet<Vec<u8>>>,
    /// The projects led, with the lease their leader key is attached to.
    led: HashMap<String, i64>,
}

impl State {
    /// The entries whose keys start with `prefix`, in key order.
    fn under<'a>(&'a self, prefix: &'a [u8]) -> impl Iterator<Item = (&'a Vec<u8>, &'a Vec<u8>)> {
        self.kv
            .range(prefix.to_vec()..)
            .take_while(move |(k, _)| k.starts_with(prefix))
    }

    /// Removes the keys under `prefix`: a range, not a pass over every project's keys
    /// under the lock that every store access of every project takes.
    fn forget(&mut self, prefix: &[u8]) {
        let keys: Vec<Vec<u8>> = self.under(prefix).map(|(k, _)| k.clone()).collect();
        for k in keys {
            self.kv.remove(&k);
        }
    }
}

/// The writes of one project to make durable, and the lease that must still hold its
/// leader key for them to count.
pub(super) struct Batch {
    pub project: String,
    pub lease: i64,
    /// Each key with its value now, `None` when it was removed; in key order.
    pub writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl Mirror {
    pub(super) fn new(prefix: &[u8]) -> Mirror {
        let mut data_prefix = prefix.to_vec();
        data_prefix.extend_from_slice(b"p/");
        Mirror {
            state: Mutex::default(),
            data_prefix,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Where a project's keys live in etcd: every key under it.
    pub(super) fn project_prefix(&self, project: &str) -> Vec<u8> {
        let mut k = self.data_prefix.clone();
        k.extend_from_slice(project.as_bytes());
        k.push(0);
        k
    }

    /// The etcd key of a tree key: `{prefix}p/{project}\0{tree}\0{rest of the key}`.
    fn etcd_key(&self, tree: &str, key: &[u8]) -> (String, Vec<u8>) {
        let project = project_of(key);
        let rest = key.get(project.len() + 1..).unwrap_or_default();
        let project = String::from_utf8_lossy(project).into_owned();
        let mut k = self.project_prefix(&project);
        k.extend_from_slice(tree.as_bytes());
        k.push(0);
        k.extend_from_slice(rest);
        (project, k)
    }

    /// Starts leading `project` under `lease` with its keys as etcd has them.
    pub(super) fn lead(&self, project: &str, lease: i64, kvs: Vec<Kv>) {
        let mut state = self.state();
        state.forget(&self.project_prefix(project));
        state.dirty.remove(project);
        for kv in kvs {
            state.kv.insert(kv.key, kv.value);
        }
        state.led.insert(project.to_string(), lease);
    }

    /// Stops leading `project`: forgets its keys and its unflushed writes.
    pub(super) fn drop_project(&self, project: &str) {
        let mut state = self.state();
        state.forget(&self.project_prefix(project));
        state.dirty.remove(project);
        state.led.remove(project);
    }

    /// Takes the writes made since the last call, one batch per project still led.
    /// Writes of a project no longer led are dropped and reported in the second list.
    pub(super) fn take_dirty(&self) -> (Vec<Batch>, Vec<String>) {
        let mut state = self.state();
        let dirty = std::mem::take(&mut state.dirty);
        let (mut batches, mut lost) = (Vec::new(), Vec::new());
        for (project, keys) in dirty {
            let Some(&lease) = state.led.get(&project) else {
                lost.push(project);
                continue;
            };
            let writes = keys
                .into_iter()
                .map(|k| {
                    let v = state.kv.get(&k).cloned();
                    (k, v)
                })
                .collect();
            batches.push(Batch {
                project,
                lease,
                writes,
            });
        }
        (batches, lost)
    }

    /// Marks a batch's keys dirty again after its transaction could not be sent, so the
    /// next flush carries them, unless the project was lost meanwhile.
    pub(super) fn redo(&self, batch: Batch) {
        let mut state = self.state();
        if state.led.get(&batch.project) == Some(&batch.lease) {
            let keys = state.dirty.entry(batch.project).or_default();
            keys.extend(batch.writes.into_iter().map(|(k, _)| k));
        }
    }

    pub(super) fn tree(self: &Arc<Self>, name: &'static str) -> MirrorTree {
        MirrorTree {
            mirror: self.clone(),
            name,
        }
    }
}

/// One of the store's trees within the mirror.
pub(in crate::store) struct MirrorTree {
    mirror: Arc<Mirror>,
    name: &'static str,
}

impl MirrorTree {
    /// Runs `f` on the state with the etcd key of `key`, if this replica leads its project.
    fn with<T>(
        &self,
        key: &[u8],
        f: impl FnOnce(&mut State, &str, Vec<u8>) -> T,
    ) -> Result<T, StoreError> {
        let (project, k) = self.mirror.etcd_key(self.name, key);
        let mut state = self.mirror.state();
        if !state.led.contains_key(&project) {
            return Err(StoreError::NotLeader { project });
        }
        Ok(f(&mut state, &project, k))
    }
}

fn mark(state: &mut State, project: &str, key: Vec<u8>) {
    state
        .dirty
        .entry(project.to_string())
        .or_default()
        .insert(key);
}

impl Tree for MirrorTree {
    type Value = Vec<u8>;

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.with(key, |state, _, k| state.kv.get(&k).cloned())
    }

    fn insert(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.with(key, |state, project, k| {
            state.kv.insert(k.clone(), value.to_vec());
            mark(state, project, k);
        })
    }

    fn remove(&self, key: &[u8]) -> Result<(), StoreError> {
        self.with(key, |state, project, k| {
            if state.kv.remove(&k).is_some() {
                mark(state, project, k);
            }
        })
    }

    fn compare_and_swap(
        &self,
        key: &[u8],
        old: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, StoreError> {
        self.with(key, |state, project, k| {
            if state.kv.get(&k).map(Vec::as_slice) != old {
                return false;
            }
            state.kv.insert(k.clone(), new.to_vec());
            mark(state, project, k);
            true
        })
    }

    fn update(
        &self,
        key: &[u8],
        mut f: impl FnMut(Option<&[u8]>) -> Vec<u8>,
    ) -> Result<Vec<u8>, StoreError> {
        self.with(key, |state, project, k| {
            let new = f(state.kv.get(&k).map(Vec::as_slice));
            state.kv.insert(k.clone(), new.clone());
            mark(state, project, k);
            new
        })
    }

    fn visit_all(
        &self,
        mut f: impl FnMut(&[u8], &[u8]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let state = self.mirror.state();
        let mut projects: Vec<&String> = state.led.keys().collect();
        projects.sort();
        for project in projects {
            let mut prefix = self.mirror.project_prefix(project);
            prefix.extend_from_slice(self.name.as_bytes());
            prefix.push(0);
            visit(
                state.under(&prefix),
                project,
                self.header_len(project),
                &mut f,
            )?;
        }
        Ok(())
    }

    fn len(&self) -> Result<u64, StoreError> {
        let state = self.mirror.state();
        let projects: Vec<&String> = state.led.keys().collect();
        let mut n = 0;
        for project in projects {
            let mut prefix = self.mirror.project_prefix(project);
            prefix.extend_from_slice(self.name.as_bytes());
            prefix.push(0);
            n += state.under(&prefix).count() as u64;
        }
        Ok(n)
    }

    fn visit_range(
        &self,
        from: &[u8],
        to: &[u8],
        f: impl FnMut(&[u8], &[u8]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let (_, to) = self.mirror.etcd_key(self.name, to);
        self.with(from, |state, project, from| {
            let entries = state.kv.range(from..=to);
            visit(entries, project, self.header_len(project), f)
        })?
    }

    fn visit_prefix(
        &self,
        prefix: &[u8],
        f: impl FnMut(&[u8], &[u8]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.with(prefix, |state, project, from| {
            visit(state.under(&from), project, self.header_len(project), f)
        })?
    }
}

impl MirrorTree {
    /// The length of `{prefix}p/{project}\0{tree}\0`, what an etcd key adds to the tree key.
    fn header_len(&self, project: &str) -> usize {
        self.mirror.project_prefix(project).len() + self.name.len() + 1
    }
}

/// Calls `f` with each entry's tree key (`{project}\0{rest}`) and value.
fn visit<'a>(
    entries: impl Iterator<Item = (&'a Vec<u8>, &'a Vec<u8>)>,
    project: &str,
    header: usize,
    mut f: impl FnMut(&[u8], &[u8]) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut key = project.as_bytes().to_vec();
    key.push(0);
    let base = key.len();
    for (k, v) in entries {
        key.truncate(base);
        key.extend_from_slice(&k[header..]);
        f(&key, v)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(mirror: &Mirror, project: &str, rest: &str) -> Kv {
        let mut key = mirror.project_prefix(project);
        key.extend_from_slice(rest.as_bytes());
        Kv {
            key,
            value: b"v".to_vec(),
            lease: 0,
        }
    }

    #[test]
    fn a_project_dropped_or_led_afresh_leaves_the_others_keys_alone() {
        let mirror = Mirror::new(b"pk/");
        for project in ["p1", "p10", "p2"] {
            let kvs = vec![
                kv(&mirror, project, "slots\0a"),
                kv(&mirror, project, "uids\0b"),
            ];
            mirror.lead(project, 7, kvs);
        }
        mirror.drop_project("p1");
        mirror.lead("p2", 8, vec![kv(&mirror, "p2", "slots\0c")]);
        let state = mirror.state();
        let keys: Vec<String> = state
            .kv
            .keys()
            .map(|k| String::from_utf8_lossy(&k[b"pk/p/".len()..]).replace('\0', "|"))
            .collect();
        assert_eq!(keys, ["p10|slots|a", "p10|uids|b", "p2|slots|c"]);
        assert!(!state.led.contains_key("p1"));
    }
}
