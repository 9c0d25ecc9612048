//! The simulator's own record, judged: what the kill and recovery tests count.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Write;

use pullkeeper::agora::wire::PlayerStatus;
use pullkeeper::model::parse_name;
use pullkeeper::simulator::SimHandle;

use crate::harness::APP_ID;

/// Figures about every player the simulator ever had and the ones it has now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Audit {
    /// Players pullkeeper created (by name prefix), over the whole history.
    pub creates: usize,
    /// Live players beyond one per slot, plus live players sharing a name.
    pub duplicates: usize,
    /// Players of ours deleted without ever failing: each was, while it lived, a second
    /// healthy player for its slot (no scene or slot is removed in these tests).
    pub healthy_deleted: usize,
    /// Live players with pullkeeper's prefix that belong to no desired slot.
    pub orphans: usize,
    /// Creates of a UID that was already created before in the same channel. A UID is
    /// handed out again only when its range has no never-used one left and no player held
    /// it for `uid_quarantine` (5 min at least); these runs use a fraction of their ranges
    /// within minutes, so any reuse they see is a bug.
    pub uid_reuse: usize,
    /// Desired slots without a running player.
    pub missing: usize,
}

impl Audit {
    /// One running player per desired slot, nothing else of ours alive.
    pub fn converged(&self) -> bool {
        self.duplicates == 0 && self.orphans == 0 && self.missing == 0
    }
}

impl fmt::Display for Audit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "creates={} duplicates={} healthy_deleted={} orphans={} uid_reuse={} missing={}",
            self.creates,
            self.duplicates,
            self.healthy_deleted,
            self.orphans,
            self.uid_reuse,
            self.missing
        )
    }
}

/// Audits `sim` against the desired slots: `(scene, slot count)` pairs, prefix `pk`.
pub fn audit(sim: &SimHandle, desired: &[(String, u32)]) -> Audit {
    audit_in(sim, &[APP_ID], desired)
}

/// [`audit`] over the players of several projects (scene names are unique across them).
pub fn audit_in(sim: &SimHandle, apps: &[&str], desired: &[(String, u32)]) -> Audit {
    let history = sim.history();
    let ours = |name: &Option<String>| name.as_deref().and_then(|n| parse_name("pk", n)).is_some();
    let creates = history.iter().filter(|h| ours(&h.name)).count();
    let healthy_deleted = history
        .iter()
        .filter(|h| ours(&h.name) && h.deleted_at_ms.is_some() && h.failed_at_ms.is_none())
        .count();
    let mut by_uid: BTreeMap<(&str, u64), (usize, bool)> = BTreeMap::new();
    for h in &history {
        if let Some(uid) = h.uid {
            let e = by_uid.entry((&h.channel_name, uid)).or_default();
            e.0 += 1;
            e.1 |= ours(&h.name);
        }
    }
    let uid_reuse = by_uid
        .values()
        .filter(|(n, any_ours)| *any_ours && *n > 1)
        .map(|(n, _)| n - 1)
        .sum();

    let wanted: BTreeSet<(String, u32)> = desired
        .iter()
        .flat_map(|(scene, slots)| (0..*slots).map(move |s| (scene.clone(), s)))
        .collect();
    let mut live: BTreeMap<(String, u32), Vec<PlayerStatus>> = BTreeMap::new();
    let mut names = BTreeSet::new();
    let mut duplicates = 0;
    let mut orphans = 0;
    for p in apps.iter().flat_map(|app| sim.players(app)) {
        let Some(name) = p.name.clone() else { continue };
        let Some(parsed) = parse_name("pk", &name) else {
            continue;
        };
        if !names.insert(name) {
            duplicates += 1;
        }
        let slot = (parsed.scene, parsed.slot);
        if wanted.contains(&slot) {
            live.entry(slot).or_default().push(p.status);
        } else {
            orphans += 1;
        }
    }
    duplicates += live
        .values()
        .map(|v| v.len().saturating_sub(1))
        .sum::<usize>();
    let missing = wanted
        .iter()
        .filter(|slot| {
            live.get(*slot)
                .is_none_or(|v| !v.contains(&PlayerStatus::Running))
        })
        .count();
    Audit {
        creates,
        duplicates,
        healthy_deleted,
        orphans,
        uid_reuse,
        missing,
    }
}

/// Writes a line of figures to stderr past libtest's capture (which only takes the
/// print macros), so CI logs show them for passing tests too.
pub fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}
