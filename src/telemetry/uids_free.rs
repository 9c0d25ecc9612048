//! `pullkeeper_scene_uids_free`, kept as plain numbers and written as series when
//! scraped.
//!
//! Why not a gauge vector: each label child of the prometheus crate keeps its own copy of
//! the description and label pairs, several hundred bytes per scene; at 1,000 projects
//! that was 25,000 children for one number each (BENCHMARKS.md, History). A collector
//! building them at scrape time only moved that cost into each scrape (see `text`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::text::{TextFamilies, gauge_header, sample};

const NAME: &str = "pullkeeper_scene_uids_free";

/// Each scene's name and count.
type Counts = Vec<(String, u64)>;

/// The free-UID count of each scene, by project; clones share it.
#[derive(Clone, Default)]
pub struct UidsFreeGauge {
    by_project: Arc<RwLock<HashMap<String, Counts>>>,
}

impl UidsFreeGauge {
    pub fn new() -> UidsFreeGauge {
        UidsFreeGauge::default()
    }

    /// Replaces the counts of `project`'s scenes: a scene not among them leaves the
    /// scrape.
    pub fn set_project(&self, project: &str, scenes: Counts) {
        let mut map = self.by_project.write().unwrap_or_else(|e| e.into_inner());
        map.insert(project.to_string(), scenes);
    }
}

impl TextFamilies for UidsFreeGauge {
    fn parts(&self) -> usize {
        1
    }

    fn write_part(&self, _: usize, out: &mut String) {
        gauge_header(
            out,
            NAME,
            "UIDs a scene could give a new player now: never used, or not held for uid_quarantine.",
        );
        let map = self.by_project.read().unwrap_or_else(|e| e.into_inner());
        for (project, scenes) in map.iter() {
            for (scene, free) in scenes {
                let free = i64::try_from(*free).unwrap_or(i64::MAX);
                sample(out, NAME, &[("project", project), ("scene", scene)], free);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scraped(gauge: &UidsFreeGauge) -> Vec<String> {
        let mut out = String::new();
        gauge.write_part(0, &mut out);
        let mut lines: Vec<String> = out
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_string)
            .collect();
        lines.sort();
        lines
    }

    #[test]
    fn a_project_update_replaces_its_scenes_and_keeps_the_others() {
        let gauge = UidsFreeGauge::new();
        gauge.set_project("p", vec![("news".into(), 3), ("lobby".into(), 0)]);
        gauge.set_project("q", vec![("news".into(), 7)]);
        gauge.set_project("p", vec![("news".into(), 2)]);
        assert_eq!(
            scraped(&gauge),
            [
                r#"pullkeeper_scene_uids_free{project="p",scene="news"} 2"#,
                r#"pullkeeper_scene_uids_free{project="q",scene="news"} 7"#,
            ]
        );
    }
}
