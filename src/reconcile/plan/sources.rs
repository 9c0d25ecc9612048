//! What the source verdicts mean for a project's scenes: which slots may be replaced,
//! which sources to keep probing, when a scene shows its slate, and what status and
//! metrics say. Pure functions of the scenes, the verdicts and the observed players; the
//! controller runs the probes they ask for.

use std::collections::{BTreeMap, BTreeSet};

use crate::agora::wire::ListedPlayer;
use crate::config::Scene;
use crate::model::{PlayerStatus, SLATE_SLOT, SlotKey, SlotRecord, SourceStatus, is_dead};

use crate::probe::Verdict;
use crate::probe::monitor::SourceMonitor;

/// Slots whose source may be relied on for a replacement: found `up` or `unknown` since
/// it was last needed. Slate slots play the slate, which is not gated.
pub fn cleared_slots(
    project: &str,
    scenes: &[&Scene],
    monitor: &SourceMonitor,
) -> BTreeSet<SlotKey> {
    let mut out = BTreeSet::new();
    for scene in scenes {
        for slot in 0..=scene.backups {
            let verdict = monitor.current(scene.slot_url(slot));
            if matches!(verdict, Some(Verdict::Up | Verdict::Unknown)) {
                out.insert(SlotKey::new(project, &scene.name, slot));
            }
        }
        out.insert(SlotKey::new(project, &scene.name, SLATE_SLOT));
    }
    out
}

/// The sources to probe: those of held slots, those found down (until they return), and
/// every source of a scene with a source down (its slate and status need them all).
pub fn sources_to_probe(
    scenes: &[&Scene],
    held: &[SlotKey],
    monitor: &SourceMonitor,
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for scene in scenes {
        for key in held.iter().filter(|k| k.scene == scene.name) {
            out.insert(scene.slot_url(key.slot).to_string());
        }
        let sources = scene.sources();
        if sources
            .iter()
            .any(|(_, url)| monitor.current(url) == Some(Verdict::Down))
        {
            out.extend(sources.iter().map(|(_, url)| url.to_string()));
        }
    }
    out
}

/// Every URL some scene names, so verdicts of removed sources are forgotten.
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
            state: monitor.last_known(url).map_or("unchecked", Verdict::as_str),
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
    use tokio::time::Instant;

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
            strike_threshold: 3,
            app_webhook: None,
            volume: 100,
        }
    }

    fn monitor(verdicts: &[(&str, Verdict)]) -> SourceMonitor {
        let mut m = SourceMonitor::new(Duration::from_secs(1), Duration::from_secs(4));
        let now = Instant::now();
        let urls: BTreeSet<String> = verdicts.iter().map(|(u, _)| u.to_string()).collect();
        let configured: BTreeSet<&str> = verdicts.iter().map(|(u, _)| *u).collect();
        m.track(&urls, &configured, now);
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
    fn held_slots_and_down_scenes_are_probed() {
        let s = scene(&["rtmp://h/backup"], false);
        let none = monitor(&[]);
        let held = [SlotKey::new("p", "news", 2)];
        assert_eq!(
            sources_to_probe(&[&s], &held, &none),
            BTreeSet::from(["rtmp://h/primary".to_string()])
        );
        let down = monitor(&[("rtmp://h/primary", Verdict::Down)]);
        assert_eq!(
            sources_to_probe(&[&s], &[], &down).len(),
            2,
            "all of the scene's sources"
        );
        let up = monitor(&[("rtmp://h/primary", Verdict::Up)]);
        assert!(sources_to_probe(&[&s], &[], &up).is_empty());
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
