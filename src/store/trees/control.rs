//! The operator's controls of each scene: a pin and maintenance, kept so that a restart
//! or a takeover keeps them.
//!
//! Tree `scene_controls`: `{project}\0{scene}` → the scene's [`SceneControl`] as JSON;
//! absent when it has neither.

use super::{Backend, Tree, TreeStore, decode, key};
use crate::model::SceneControl;
use crate::store::error::StoreError;

impl<B: Backend> TreeStore<B> {
    pub(in crate::store) fn scene_controls_impl(
        &self,
        project: &str,
    ) -> Result<Vec<(String, SceneControl)>, StoreError> {
        let mut prefix = project.as_bytes().to_vec();
        prefix.push(0);
        let mut out = Vec::new();
        self.scene_controls.visit_prefix(&prefix, |k, v| {
            let scene = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            out.push((scene, decode("scene_controls", v)?));
            Ok(())
        })?;
        Ok(out)
    }

    pub(in crate::store) fn put_scene_control_impl(
        &self,
        project: &str,
        scene: &str,
        control: &SceneControl,
    ) -> Result<(), StoreError> {
        let k = key(&[project, scene]);
        if control.is_empty() {
            return self.scene_controls.remove(&k);
        }
        let value = serde_json::to_vec(control).expect("controls serialize");
        self.scene_controls.insert(&k, &value)
    }
}
