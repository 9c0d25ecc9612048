//! `pullkeeper_scene_uids_free`, kept as plain numbers and turned into series when
//! scraped.
//!
//! Why not a gauge vector: each label child of the prometheus crate keeps its own copy of
//! the description and label pairs, several hundred bytes per scene; at 1,000 projects
//! that was 25,000 children for one number each (BENCHMARKS.md, session 6).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use prometheus::core::{Collector, Desc, Describer};
use prometheus::proto::MetricFamily;
use prometheus::{IntGaugeVec, Opts};

const LABELS: [&str; 2] = ["project", "scene"];

/// Each scene's name and count.
type Counts = Vec<(String, u64)>;

/// The free-UID count of each scene, by project; clones share it.
#[derive(Clone)]
pub struct UidsFreeGauge {
    by_project: Arc<RwLock<HashMap<String, Counts>>>,
    opts: Opts,
    descs: Vec<Desc>,
}

impl UidsFreeGauge {
    pub fn new() -> UidsFreeGauge {
        let opts = Opts::new(
            "pullkeeper_scene_uids_free",
            "UIDs a scene could give a new player now: never used, or not held for uid_quarantine.",
        )
        .variable_labels(LABELS.iter().map(|l| l.to_string()).collect());
        let descs = vec![opts.describe().expect("valid metric")];
        UidsFreeGauge {
            by_project: Arc::default(),
            opts,
            descs,
        }
    }

    /// Replaces the counts of `project`'s scenes: a scene not among them leaves the
    /// scrape.
    pub fn set_project(&self, project: &str, scenes: Counts) {
        let mut map = self.by_project.write().unwrap_or_else(|e| e.into_inner());
        map.insert(project.to_string(), scenes);
    }
}

impl Default for UidsFreeGauge {
    fn default() -> Self {
        UidsFreeGauge::new()
    }
}

impl Collector for UidsFreeGauge {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let gauge = IntGaugeVec::new(self.opts.clone(), &LABELS).expect("valid metric");
        let map = self.by_project.read().unwrap_or_else(|e| e.into_inner());
        for (project, scenes) in map.iter() {
            for (scene, free) in scenes {
                gauge
                    .with_label_values(&[project, scene])
                    .set(i64::try_from(*free).unwrap_or(i64::MAX));
            }
        }
        gauge.collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scraped(gauge: &UidsFreeGauge) -> Vec<(String, String, i64)> {
        let mut out: Vec<_> = gauge.collect()[0]
            .get_metric()
            .iter()
            .map(|m| {
                let label = |name: &str| {
                    m.get_label()
                        .iter()
                        .find(|l| l.name() == name)
                        .map(|l| l.value().to_string())
                        .unwrap_or_default()
                };
                (
                    label("project"),
                    label("scene"),
                    m.get_gauge().get_value() as i64,
                )
            })
            .collect();
        out.sort();
        out
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
                ("p".into(), "news".into(), 2),
                ("q".into(), "news".into(), 7)
            ]
        );
    }
}
