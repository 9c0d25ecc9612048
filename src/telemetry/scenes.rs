//! The per-scene and per-slot gauges, computed from the status board when scraped.
//!
//! Why not gauge vectors set on every pass: each label child of the prometheus crate
//! keeps its own copy of its metric's description and label pairs. With four gauges per
//! scene and 27 per project that was about 1.9 KiB per scene, 47 MiB at 1,000 projects
//! (BENCHMARKS.md, scale), all duplicating what the board holds anyway for `/v1/scenes`;
//! and the child of a scene removed from the configuration kept reporting its last value.
//! Built from the board, a removed scene leaves the scrape with its status.

use prometheus::core::{Collector, Desc, Describer};
use prometheus::proto::MetricFamily;
use prometheus::{IntGaugeVec, Opts};

use crate::model::PLAYER_STATES;
use crate::model::StatusBoard;

/// Roles a slot can have, as the `role` label gives them.
const ROLES: [&str; 3] = ["master", "backup", "slate"];

/// One gauge family: its options and labels.
struct Family {
    opts: Opts,
    labels: &'static [&'static str],
}

impl Family {
    fn new(name: &str, help: &str, labels: &'static [&'static str]) -> Family {
        let opts =
            Opts::new(name, help).variable_labels(labels.iter().map(|l| l.to_string()).collect());
        Family { opts, labels }
    }

    fn vec(&self) -> IntGaugeVec {
        IntGaugeVec::new(self.opts.clone(), self.labels).expect("valid metric")
    }
}

/// The gauge families in the order `collect` fills them: healthy players, active slot,
/// on-air version, source down, source up, players, maintenance since, scenes in
/// maintenance.
pub struct SceneCollector {
    board: StatusBoard,
    families: [Family; 8],
    descs: Vec<Desc>,
}

impl SceneCollector {
    pub fn new(board: StatusBoard) -> SceneCollector {
        let families = [
            Family::new(
                "pullkeeper_scene_healthy_players",
                "Players of a scene that are connecting or running.",
                &["scene"],
            ),
            Family::new(
                "pullkeeper_scene_active_slot",
                "Slot of the on-air player of a scene (0 = master), -1 when none runs.",
                &["scene"],
            ),
            Family::new(
                "pullkeeper_scene_onair_version",
                "Version of a scene's on-air announcement; grows with every switch.",
                &["scene"],
            ),
            Family::new(
                "pullkeeper_scene_source_down",
                "1 while a source of the scene is down; its failed players are not replaced meanwhile.",
                &["scene"],
            ),
            Family::new(
                "pullkeeper_source_up",
                "Last probe verdict of a scene's source: 1 up, 0 down, -1 unknown or not probed.",
                &["scene", "source"],
            ),
            Family::new(
                "pullkeeper_players",
                "Slot players of a project by role and state (Agora status, pending or missing).",
                &["project", "role", "state"],
            ),
            Family::new(
                "pullkeeper_scene_maintenance_since_timestamp_seconds",
                "Unix time a scene in maintenance entered it; absent for the others.",
                &["scene"],
            ),
            Family::new(
                "pullkeeper_scenes_in_maintenance",
                "Scenes in maintenance: no create, delete or update for them.",
                &[],
            ),
        ];
        let descs = families
            .iter()
            .map(|f| f.opts.describe().expect("valid metric"))
            .collect();
        SceneCollector {
            board,
            families,
            descs,
        }
    }
}

impl Collector for SceneCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let vecs = self.families.each_ref().map(Family::vec);
        let [
            healthy,
            active_slot,
            onair_version,
            source_down,
            source_up,
            players,
            maintenance_since,
            in_maintenance,
        ] = &vecs;
        // 0, not absent, when no scene is in maintenance.
        let in_maintenance = in_maintenance.with_label_values(&[] as &[&str]);
        self.board.for_each(|scene| {
            let name = [scene.name.as_str()];
            healthy
                .with_label_values(&name)
                .set(i64::from(scene.healthy_players));
            active_slot
                .with_label_values(&name)
                .set(scene.active_slot.map_or(-1, i64::from));
            onair_version
                .with_label_values(&name)
                .set(scene.active_version as i64);
            // 0 also without source probes: nothing holds the scene's replacements.
            source_down
                .with_label_values(&name)
                .set(i64::from(scene.source_down));
            for s in &scene.sources {
                let up = match s.state {
                    "up" => 1,
                    "down" => 0,
                    _ => -1,
                };
                source_up
                    .with_label_values(&[&scene.name, &s.source])
                    .set(up);
            }
            // Every (role, state) of a project is exposed, zeros included, so a state
            // that empties drops to 0 instead of vanishing.
            for role in ROLES {
                for state in PLAYER_STATES {
                    players.with_label_values(&[&scene.project, role, state]);
                }
            }
            for slot in &scene.slots {
                players
                    .with_label_values(&[&scene.project, slot.role, &slot.status])
                    .inc();
            }
            if let Some(m) = scene.maintenance {
                maintenance_since
                    .with_label_values(&name)
                    .set((m.since_ms / 1000) as i64);
                in_maintenance.inc();
            }
        });
        vecs.iter().flat_map(Collector::collect).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{SceneStatus, SlotStatus, SourceStatus};
    use crate::telemetry::Metrics;

    fn slot(slot: u32, role: &'static str, status: &str) -> SlotStatus {
        SlotStatus {
            slot,
            role,
            name: None,
            uid: None,
            id: None,
            generation: None,
            strikes: 0,
            status: status.into(),
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
            active_reason: None,
            pinned_slot: None,
            maintenance: None,
            drill: None,
            healthy_players: 1,
            over_quota_slots: vec![],
            source_down: true,
            sources: vec![SourceStatus {
                source: "primary".into(),
                state: "down",
            }],
            unauthorized: false,
            slots,
        }
    }

    #[test]
    fn scrapes_show_the_board_as_it_is_now() {
        let board = StatusBoard::default();
        let metrics = Metrics::new();
        metrics.register(Box::new(SceneCollector::new(board.clone())));
        board.publish(
            "p1",
            vec![
                scene(
                    "news",
                    vec![slot(0, "master", "failed"), slot(1, "backup", "running")],
                ),
                SceneStatus {
                    maintenance: Some(crate::model::Maintenance {
                        since_ms: 1_700_000_000_123,
                        by: crate::model::MaintenanceBy::Api,
                    }),
                    ..scene("old", vec![slot(0, "master", "running")])
                },
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
            r#"pullkeeper_scene_maintenance_since_timestamp_seconds{scene="old"} 1700000000"#,
            "pullkeeper_scenes_in_maintenance 1",
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
            text.contains("pullkeeper_scenes_in_maintenance 0"),
            "{text}"
        );
        assert!(!text.contains(r#"pullkeeper_scene_maintenance_since_timestamp_seconds{"#));
        assert!(
            text.contains(r#"pullkeeper_players{project="p1",role="master",state="running"} 1"#)
        );
        assert!(
            text.contains(r#"pullkeeper_players{project="p1",role="master",state="failed"} 0"#)
        );
    }
}
