//! The per-scene and per-slot gauges, computed from the status board when scraped.
//!
//! Why not gauge vectors set on every pass: each label child of the prometheus crate
//! keeps its own copy of its metric's description and label pairs. With four gauges per
//! scene and 27 per project that was about 1.9 KiB per scene, 47 MiB at 1,000 projects
//! (BENCHMARKS.md, scale), all duplicating what the board holds anyway for `/v1/scenes`;
//! and the child of a scene removed from the configuration kept reporting its last value.
//! Built from the board, a removed scene leaves the scrape with its status.

use std::collections::BTreeMap;

use super::text::{TextFamilies, gauge_header, sample};
use crate::model::StatusBoard;
use crate::model::{PLAYER_STATES, SceneStatus};

/// Roles a slot can have, as the `role` label gives them.
const ROLES: [&str; 3] = ["master", "backup", "slate"];

/// A per-scene family: name, help, and its value for a scene.
type SceneGauge = (&'static str, &'static str, fn(&SceneStatus) -> i64);

const SCENE_GAUGES: [SceneGauge; 4] = [
    (
        "pullkeeper_scene_healthy_players",
        "Players of a scene that are connecting or running.",
        |s| i64::from(s.healthy_players),
    ),
    (
        "pullkeeper_scene_active_slot",
        "Slot of the on-air player of a scene (0 = master), -1 when none runs.",
        |s| s.active_slot.map_or(-1, i64::from),
    ),
    (
        "pullkeeper_scene_onair_version",
        "Version of a scene's on-air announcement; grows with every switch.",
        |s| s.active_version as i64,
    ),
    // 0 also without source probes: nothing holds the scene's replacements.
    (
        "pullkeeper_scene_source_down",
        "1 while a source of the scene is down; its failed players are not replaced meanwhile.",
        |s| i64::from(s.source_down),
    ),
];

/// The scene families and `pullkeeper_players`, from the status board as it is when
/// scraped.
pub struct SceneCollector {
    board: StatusBoard,
}

impl SceneCollector {
    pub fn new(board: StatusBoard) -> SceneCollector {
        SceneCollector { board }
    }
}

/// Parts after the scene gauges: `pullkeeper_source_up`, `pullkeeper_players`, and the
/// maintenance pair.
const SOURCES: usize = SCENE_GAUGES.len();
const PLAYERS: usize = SOURCES + 1;
const MAINTENANCE: usize = SOURCES + 2;

impl TextFamilies for SceneCollector {
    /// One family a part (the maintenance pair together): each is written under the
    /// board's read lock, so a part also bounds how long a publish waits for a scrape.
    fn parts(&self) -> usize {
        MAINTENANCE + 1
    }

    fn write_part(&self, part: usize, out: &mut String) {
        match part {
            SOURCES => self.write_sources(out),
            PLAYERS => self.write_players(out),
            MAINTENANCE => self.write_maintenance(out),
            gauge => {
                let (name, help, value) = SCENE_GAUGES[gauge];
                gauge_header(out, name, help);
                self.board.for_each(|scene| {
                    sample(out, name, &[("scene", &scene.name)], value(scene));
                });
            }
        }
    }
}

impl SceneCollector {
    /// The last probe verdict of each scene's sources.
    fn write_sources(&self, out: &mut String) {
        let up = "pullkeeper_source_up";
        gauge_header(
            out,
            up,
            "Last probe verdict of a scene's source: 1 up, 0 down, -1 unknown or not probed.",
        );
        self.board.for_each(|scene| {
            for s in &scene.sources {
                let verdict = match s.state {
                    "up" => 1,
                    "down" => 0,
                    _ => -1,
                };
                sample(
                    out,
                    up,
                    &[("scene", &scene.name), ("source", &s.source)],
                    verdict,
                );
            }
        });
    }

    /// Since when each scene in maintenance is in it, and how many are (0, not absent,
    /// when none is).
    fn write_maintenance(&self, out: &mut String) {
        let since = "pullkeeper_scene_maintenance_since_timestamp_seconds";
        // The family only while a scene is in maintenance, like a vector without children.
        let mut samples = String::new();
        let mut count = 0;
        self.board.for_each(|scene| {
            if let Some(m) = scene.maintenance {
                let at = (m.since_ms / 1000) as i64;
                sample(&mut samples, since, &[("scene", &scene.name)], at);
                count += 1;
            }
        });
        if count > 0 {
            gauge_header(
                out,
                since,
                "Unix time a scene in maintenance entered it; absent for the others.",
            );
            out.push_str(&samples);
        }
        let total = "pullkeeper_scenes_in_maintenance";
        gauge_header(
            out,
            total,
            "Scenes in maintenance: no create, delete or update for them.",
        );
        sample(out, total, &[], count);
    }

    /// `pullkeeper_players`: every (role, state) of a project with a scene on the board,
    /// zeros included, so a state that empties drops to 0 instead of vanishing.
    fn write_players(&self, out: &mut String) {
        let name = "pullkeeper_players";
        gauge_header(
            out,
            name,
            "Slot players of a project by role and state (Agora status, pending or missing).",
        );
        let mut counts: BTreeMap<String, BTreeMap<(&'static str, &'static str), i64>> =
            BTreeMap::new();
        self.board.for_each(|scene| {
            let project = counts.entry(scene.project.clone()).or_insert_with(|| {
                ROLES
                    .iter()
                    .flat_map(|&r| PLAYER_STATES.iter().map(move |&s| ((r, s), 0)))
                    .collect()
            });
            for slot in &scene.slots {
                *project.entry((slot.role, slot.status)).or_default() += 1;
            }
        });
        for (project, by_state) in &counts {
            for ((role, state), n) in by_state {
                sample(
                    out,
                    name,
                    &[("project", project), ("role", role), ("state", state)],
                    *n,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{SceneStatus, SlotStatus, SourceStatus};
    use crate::telemetry::Metrics;

    fn slot(slot: u32, role: &'static str, status: &'static str) -> SlotStatus {
        SlotStatus {
            slot,
            role,
            name: None,
            uid: None,
            id: None,
            generation: None,
            strikes: 0,
            status,
            source: "primary".into(),
            held: false,
            rejected: None,
        }
    }

    fn scene(name: &str, slots: Vec<SlotStatus>) -> SceneStatus {
        SceneStatus {
            name: name.into(),
            project: "p1".into(),
            channel: format!("{name}-live"),
            active_uid: Some(7),
            active_slot: Some(1),
            active_version: 3,
            switches: 2,
            active_since_ms: 0,
            healthy_players: 1,
            over_quota_slots: vec![],
            source_down: true,
            sources: vec![SourceStatus {
                source: "primary".into(),
                state: "down",
            }],
            unauthorized: false,
            slots,
            active_reason: None,
            pinned_slot: None,
            maintenance: None,
            drill: None,
        }
    }

    #[test]
    fn scrapes_show_the_board_as_it_is_now() {
        let board = StatusBoard::default();
        let metrics = Metrics::new();
        metrics.register_text(Box::new(SceneCollector::new(board.clone())));
        board.publish(
            "p1",
            vec![
                scene(
                    "news",
                    vec![slot(0, "master", "failed"), slot(1, "backup", "running")],
                ),
                scene("old", vec![slot(0, "master", "running")]),
            ],
        );
        let text = metrics.render();
        for line in [
            r#"pullkeeper_scene_healthy_players{scene="news"} 1"#,
            r#"pullkeeper_scene_active_slot{scene="news"} 1"#,
            r#"pullkeeper_scene_onair_version{scene="news"} 3"#,
            r#"pullkeeper_scene_source_down{scene="news"} 1"#,
            r#"pullkeeper_source_up{scene="news",source="primary"} 0"#,
            r#"pullkeeper_players{project="p1",role="master",state="running"} 1"#,
            r#"pullkeeper_players{project="p1",role="master",state="failed"} 1"#,
            r#"pullkeeper_players{project="p1",role="backup",state="running"} 1"#,
            r#"pullkeeper_players{project="p1",role="slate",state="missing"} 0"#,
            r#"pullkeeper_scene_healthy_players{scene="old"} 1"#,
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }

        // The scene leaves the configuration: its series leave the scrape, and the
        // project's counts follow.
        board.publish(
            "p1",
            vec![scene(
                "news",
                vec![slot(0, "master", "running"), slot(1, "backup", "running")],
            )],
        );
        let text = metrics.render();
        assert!(!text.contains(r#"scene="old""#), "{text}");
        assert!(
            text.contains(r#"pullkeeper_players{project="p1",role="master",state="running"} 1"#)
        );
        assert!(
            text.contains(r#"pullkeeper_players{project="p1",role="master",state="failed"} 0"#)
        );
    }
}
