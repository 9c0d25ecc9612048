//! The desired scenes, fanned out per project.
//!
//! Each controller watches only its own project's scenes. With one shared list, every
//! pass of every project filtered all scenes of all projects: at 1,000 projects that
//! walk over 25,000 scenes was most of a pass (BENCHMARKS.md, scale). The per-project
//! lists are the only copy: a second list of every scene (for the app webhook's lookup)
//! was 11 MiB at that scale.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::watch;

use crate::config::Scene;

pub type Scenes = Arc<Vec<Scene>>;

pub struct SceneFeeds {
    projects: HashMap<String, watch::Sender<Scenes>>,
}

impl SceneFeeds {
    pub fn new<'a>(scenes: Vec<Scene>, projects: impl IntoIterator<Item = &'a str>) -> SceneFeeds {
        let mut by_project = group(scenes);
        let projects = projects
            .into_iter()
            .map(|id| {
                let scenes = by_project.remove(id).unwrap_or_default();
                (id.to_string(), watch::Sender::new(Arc::new(scenes)))
            })
            .collect();
        SceneFeeds { projects }
    }

    /// The scenes of project `id` (none for an unknown project).
    pub fn project(&self, id: &str) -> watch::Receiver<Scenes> {
        match self.projects.get(id) {
            Some(feed) => feed.subscribe(),
            None => watch::Sender::new(Arc::new(Vec::new())).subscribe(),
        }
    }

    /// `f` of the scene `name` of project `project` as it is now, if there is one.
    pub fn with_scene<T>(
        &self,
        project: &str,
        name: &str,
        f: impl FnOnce(&Scene) -> T,
    ) -> Option<T> {
        let feed = self.projects.get(project)?;
        let scenes = feed.borrow();
        scenes.iter().find(|s| s.name == name).map(f)
    }

    /// The project of the scene `name`, if one has it.
    pub fn project_of(&self, name: &str) -> Option<String> {
        self.projects
            .iter()
            .find(|(_, feed)| feed.borrow().iter().any(|s| s.name == name))
            .map(|(id, _)| id.clone())
    }

    /// Replaces the desired scenes; every watcher sees the change.
    pub fn send(&self, scenes: Vec<Scene>) {
        let mut by_project = group(scenes);
        for (id, feed) in &self.projects {
            feed.send_replace(Arc::new(by_project.remove(id).unwrap_or_default()));
        }
    }
}

/// The scenes by project, each project's in configuration order (moved, not copied).
fn group(scenes: Vec<Scene>) -> HashMap<String, Vec<Scene>> {
    let mut by_project: HashMap<String, Vec<Scene>> = HashMap::new();
    for scene in scenes {
        match by_project.get_mut(&scene.project) {
            Some(list) => list.push(scene),
            None => {
                by_project.insert(scene.project.clone(), vec![scene]);
            }
        }
    }
    by_project
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::{Failback, UidRange};
    use crate::model::Region;

    fn scene(project: &str, name: &str, priority: i32) -> Scene {
        Scene {
            name: name.into(),
            project: project.into(),
            channel: format!("{name}-live"),
            stream_url: "rtmp://h/live".into(),
            backup_stream_urls: Vec::new(),
            slate_url: None,
            region: Region::Na,
            backups: 0,
            priority,
            idle_timeout: 300,
            token: None,
            volume: 100,
            uids: UidRange { start: 1, end: 9 },
            failback: Failback::Revertive,
            hold_down: Duration::ZERO,
            strike_threshold: 3,
            app_webhook: None,
            maintenance: false,
        }
    }

    fn names(feed: &watch::Receiver<Scenes>) -> Vec<String> {
        feed.borrow().iter().map(|s| s.name.clone()).collect()
    }

    #[test]
    fn each_project_sees_its_own_scenes_in_order_and_lookups_follow_a_reload() {
        let feeds = SceneFeeds::new(
            vec![scene("p", "b", 0), scene("q", "c", 0), scene("p", "a", 0)],
            ["p", "q", "empty"],
        );
        let (p, q, empty) = (
            feeds.project("p"),
            feeds.project("q"),
            feeds.project("empty"),
        );
        assert_eq!(names(&p), ["b", "a"]);
        assert_eq!(names(&q), ["c"]);
        assert!(names(&empty).is_empty());
        assert_eq!(feeds.with_scene("p", "a", |s| s.priority), Some(0));
        // A scene is found under its own project only.
        assert_eq!(feeds.with_scene("q", "a", |s| s.priority), None);
        assert_eq!(feeds.with_scene("unknown", "a", |s| s.priority), None);

        feeds.send(vec![scene("q", "c", 0), scene("p", "a", 5)]);
        assert_eq!(names(&p), ["a"]);
        assert_eq!(names(&q), ["c"]);
        assert_eq!(feeds.with_scene("p", "a", |s| s.priority), Some(5));
        assert_eq!(feeds.with_scene("p", "b", |s| s.priority), None);
    }
}
