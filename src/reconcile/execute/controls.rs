//! The operator's pins and maintenance, kept in the store so a restart or a takeover
//! keeps them. Written by the executor like every other piece of the project's state,
//! so a deposed leader's writes fail like its other writes (etcd fencing).

use std::collections::BTreeMap;

use super::Executor;
use crate::model::SceneControl;
use crate::store::StoreError;

impl Executor {
    /// Every scene of the project with a pin or in maintenance, as the store has them.
    pub fn scene_controls(&self) -> Result<BTreeMap<String, SceneControl>, StoreError> {
        Ok(self
            .store
            .scene_controls(&self.project)?
            .into_iter()
            .collect())
    }

    /// Writes a scene's controls (an empty one removes them); durable at the next
    /// [`flush`](Executor::flush).
    pub fn put_scene_control(&self, scene: &str, control: &SceneControl) -> Result<(), StoreError> {
        self.store.put_scene_control(&self.project, scene, control)
    }

    /// Makes every write so far durable: an operator's action is answered only then.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.store.flush().await
    }
}
