//! What the source verdicts mean for a project's scenes: which slots may be replaced,
//! which sources to probe, which slots pull a dead source (for the on-air choice), when a
//! scene shows its slate, and what status and metrics say. Pure functions of the scenes,
//! the verdicts and the observed players; the controller runs the probes they ask for.

use std::collections::{BTreeMap, BTreeSet};

use tokio::time::Instant;

use crate::agora::wire::ListedPlayer;
use crate::config::Scene;
use crate::model::{PlayerStatus, SLATE_SLOT, SlotKey, SlotRecord, SourceStatus, is_dead};

use crate::probe::Verdict;
use crate::probe::monitor::{Health, SourceMonitor};

/// What the on-air choice knows against a slot's source; a slot without one has nothing
/// against it (up, unknown, not probed yet, or the slate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotSource {
    /// Its source was last probed down.
    Down,
    /// Its source came back from down at this Unix ms.
    BackSince(u64),
}

/// Slots whose source may be relied on for a replacement: found `up` or `unknown` by a
/// probe started since the slot was held. Slate slots play the slate, which is not gated.
pub fn cleared_slots(
    project: &str,
    scenes: &[&Scene],
    monitor: &SourceMonitor,
) -> BTreeSet<SlotKey> {
    let mut out = BTreeSet::new();
    for scene in scenes {
        for slot in 0..=scene.backups {
            let verdict = monitor.fresh(scene.slot_url(slot));
            if matches!(verdict, Some(Verdict::Up | Verdict::Unknown)) {
                out.insert(SlotKey::new(project, &scene.name, slot));
            }
        }
        out.insert(SlotKey::new(project, &scene.name, SLATE_SLOT));
    }
    out
}

/// The sources held slots wait for (see [`SourceMonitor::want`]).
pub fn held_sources<'a>(scenes: &[&'a Scene], held: &[SlotKey]) -> BTreeSet<&'a str> {
    scenes
        .iter()
        .flat_map(|scene| {
            held.iter()
                .filter(|k| k.scene == scene.name)
                .map(|k| scene.slot_url(k.slot))
        })
        .collect()
}

/// Each slot whose source is down or came back, for the on-air choice; instants become
/// Unix ms against `now`/`now_ms`.
pub fn slot_sources(
    project: &str,
    scenes: &[&Scene],
    monitor: &SourceMonitor,
    now: Instant,
    now_ms: u64,
) -> BTreeMap<SlotKey, SlotSource> {
    let mut out = BTreeMap::new();
    for scene in scenes {
        for slot in 0..=scene.backups {
            let source = match monitor.health(scene.slot_url(slot)) {
                Health::Down => SlotSource::Down,
                Health::Clear { since: Some(at) } => {
                    let ago = now.saturating_duration_since(at).as_millis() as u64;
                    SlotSource::BackSince(now_ms.saturating_sub(ago))
                }
                Health::Clear { since: None } => continue,
            };
            out.insert(SlotKey::new(project, &scene.name, slot), source);
        }
    }
    out
}

/// Every source some scene names: all are probed, and verdicts of others forgotten.
pub fn configured_sources<'a>(scenes: &[&'a Scene]) -> BTreeSet<&'a str> {
    scenes
        .iter()
        .flat_map(|s| s.sources().into_iter().map(|(_, url)| url))
        .collect()
}

/// A scene with a slate shows it while every source is down, and keeps it (make before
/// break) until a player of a returned source runs.
pub(super) fn slate_wanted(
    project: &str,
    scene: &Scene,
    monitor: &SourceMonitor,
    records: &BTreeMap<SlotKey, SlotRecord>,
    players: &[ListedPlayer],
) -> bool {
    if scene.slate_url.is_none() {
        return false;
    }
    let all_down = scene
        .sources()
        .iter()
        .all(|(_, url)| monitor.current(url) == Some(Verdict::Down));
    let listed = |slot: u32| {
        records
            .get(&SlotKey::new(project, &scene.name, slot))
            .and_then(|r| players.iter().find(|p| p.name.as_deref() == Some(&r.name)))
    };
    let slate_up = listed(SLATE_SLOT).is_some_and(|p| !is_dead(p.status));
    let source_playing = (0..=scene.backups).any(|slot| {
        listed(slot).is_some_and(|p| {
            matches!(
                p.status,
                Some(PlayerStatus::Running | PlayerStatus::Success)
            )
        })
    });
    all_down || (slate_up && !source_playing)
}

/// What status and metrics show about a scene's sources: the last verdict of each
/// (`unchecked` before any), and whether any is down.
pub fn scene_sources(scene: &Scene, monitor: &SourceMonitor) -> (bool, Vec<SourceStatus>) {
    let statuses: Vec<SourceStatus> = scene
        .sources()
        .into_iter()
        .map(|(source, url)| SourceStatus {
            source,
            state: monitor.current(url).map_or("unchecked", Verdict::as_str),
        })
        .collect();
    let down = statuses.iter().any(|s| s.state == Verdict::Down.as_str());
    (down, statuses)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Failback, UidRange};
    use std::time::Duration;

    fn scene(backup_urls: &[&str], slate: bool) -> Scene {
        Scene {
            name: "news".into(),
            project: "p".into(),
            channel: "c".into(),
            stream_url: "rtmp://h/primary".into(),
            backup_stream_urls: backup_urls.iter().map(|u| u.to_string()).collect(),
            slate_url: slate.then(|| "https://h/slate.png".to_string()),
            region: crate::agora::wire::Region::Na,
            backups: 2,
            priority: 0,
            idle_timeout: 300,
            token: None,
            uids: UidRange { start: 1, end: 9 },
            failback: Failback::Revertive,
            hold_down: Duration::ZERO,
            maintenance: false,
            strike_threshold: 3,
            app_webhook: None,
            volume: 100,
        }
    }

    /// Verdicts found by probes started after every slot was held.
    fn monitor(verdicts: &[(&str, Verdict)]) -> SourceMonitor {
        let mut m = SourceMonitor::new(Duration::from_secs(1), Duration::from_secs(4));
        let now = Instant::now();
        let urls: BTreeSet<&str> = verdicts.iter().map(|(u, _)| *u).collect();
        m.track(&urls, now);
        m.want(&urls, now);
        m.start_due(now);
        for (url, v) in verdicts {
            m.record(url, *v, now);
        }
        m
    }

    #[test]
    fn only_slots_on_probed_up_or_unknown_sources_are_cleared() {
        let s = scene(&["rtmp://h/backup"], false);
        let m = monitor(&[
            ("rtmp://h/primary", Verdict::Down),
            ("rtmp://h/backup", Verdict::Unknown),
        ]);
        let got: Vec<u32> = cleared_slots("p", &[&s], &m)
            .iter()
            .map(|k| k.slot)
            .collect();
        assert_eq!(got, vec![1, SLATE_SLOT], "slot 2 pulls the (down) primary");
        let none = monitor(&[]);
        let got: Vec<u32> = cleared_slots("p", &[&s], &none)
            .iter()
            .map(|k| k.slot)
            .collect();
        assert_eq!(got, vec![SLATE_SLOT], "unprobed sources clear nothing");
    }

    #[test]
    fn held_slots_want_their_sources_and_down_or_returned_ones_reach_the_onair_choice() {
        let s = scene(&["rtmp://h/backup"], false);
        let held = [SlotKey::new("p", "news", 2), SlotKey::new("p", "other", 1)];
        assert_eq!(
            held_sources(&[&s], &held),
            BTreeSet::from(["rtmp://h/primary"])
        );

        let mut m = monitor(&[
            ("rtmp://h/primary", Verdict::Down),
            ("rtmp://h/backup", Verdict::Up),
        ]);
        let now = Instant::now();
        let got = slot_sources("p", &[&s], &m, now, 50_000);
        let key = |slot| SlotKey::new("p", "news", slot);
        assert_eq!(
            got,
            BTreeMap::from([(key(0), SlotSource::Down), (key(2), SlotSource::Down)]),
            "the backup's up source says nothing against slot 1"
        );
        m.start_due(now);
        m.record("rtmp://h/primary", Verdict::Up, now);
        let later = now + Duration::from_secs(3);
        let got = slot_sources("p", &[&s], &m, later, 50_000);
        assert_eq!(got.get(&key(0)), Some(&SlotSource::BackSince(47_000)));
    }

    /// `unknown` (a timeout, a name that does not resolve: possibly pullkeeper's own
    /// network) and a source not probed yet say nothing against a slot, so neither takes
    /// a player off the air, and a backup on one may take the air from a master on a dead
    /// source. Found `unknown` after `down`, a source counts as back, as it clears a held
    /// slot: the failback's hold-down runs from that probe.
    #[test]
    fn unknown_or_unprobed_sources_say_nothing_against_a_slot() {
        let s = scene(&["rtmp://h/backup"], false);
        let now = Instant::now();
        let m = monitor(&[("rtmp://h/primary", Verdict::Unknown)]);
        assert!(slot_sources("p", &[&s], &m, now, 50_000).is_empty());
        let mut m = monitor(&[("rtmp://h/primary", Verdict::Down)]);
        m.start_due(now);
        m.record("rtmp://h/primary", Verdict::Unknown, now);
        let got = slot_sources("p", &[&s], &m, now, 50_000);
        let key = |slot| SlotKey::new("p", "news", slot);
        assert_eq!(
            got,
            BTreeMap::from([
                (key(0), SlotSource::BackSince(50_000)),
                (key(2), SlotSource::BackSince(50_000))
            ])
        );
    }

    #[test]
    fn the_slate_shows_while_every_source_is_down() {
        let s = scene(&["rtmp://h/backup"], true);
        let records = BTreeMap::new();
        let both = monitor(&[
            ("rtmp://h/primary", Verdict::Down),
            ("rtmp://h/backup", Verdict::Down),
        ]);
        assert!(slate_wanted("p", &s, &both, &records, &[]));
        let one = monitor(&[
            ("rtmp://h/primary", Verdict::Down),
            ("rtmp://h/backup", Verdict::Up),
        ]);
        assert!(!slate_wanted("p", &s, &one, &records, &[]));
        assert!(!slate_wanted("p", &scene(&[], false), &both, &records, &[]));
        let (down, statuses) = scene_sources(&s, &one);
        assert!(down);
        assert_eq!(statuses[1].state, "up");
    }
}
