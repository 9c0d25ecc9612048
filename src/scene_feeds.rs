//! The desired scenes, fanned out per project.
//!
//! Each controller watches only its own project's scenes. With one shared list, every
//! pass of every project filtered all scenes of all projects: at 1,000 projects that
//! walk over 25,000 scenes was most of a pass (BENCHMARKS.md, scale).

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::watch;

use crate::config::Scene;

pub type Scenes = Arc<Vec<Scene>>;

pub struct SceneFeeds {
    all: watch::Sender<Scenes>,
    projects: HashMap<String, watch::Sender<Scenes>>,
}

impl SceneFeeds {
    pub fn new<'a>(scenes: &[Scene], projects: impl IntoIterator<Item = &'a str>) -> SceneFeeds {
        let projects = projects
            .into_iter()
            .map(|id| (id.to_string(), watch::Sender::new(Arc::new(of(scenes, id)))))
            .collect();
        SceneFeeds {
            all: watch::Sender::new(Arc::new(scenes.to_vec())),
            projects,
        }
    }

    /// Every scene of every project.
    pub fn all(&self) -> watch::Receiver<Scenes> {
        self.all.subscribe()
    }

    /// The scenes of project `id` (none for an unknown project).
    pub fn project(&self, id: &str) -> watch::Receiver<Scenes> {
        match self.projects.get(id) {
            Some(feed) => feed.subscribe(),
            None => watch::Sender::new(Arc::new(Vec::new())).subscribe(),
        }
    }

    /// Replaces the desired scenes; every watcher sees the change.
    pub fn send(&self, scenes: Vec<Scene>) {
        for (id, feed) in &self.projects {
            feed.send_replace(Arc::new(of(&scenes, id)));
        }
        self.all.send_replace(Arc::new(scenes));
    }
}

fn of(scenes: &[Scene], project: &str) -> Vec<Scene> {
    scenes
        .iter()
        .filter(|s| s.project == project)
        .cloned()
        .collect()
}
