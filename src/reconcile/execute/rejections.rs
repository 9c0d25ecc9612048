//! Refusals for good kept in the store: a restart must not ask Agora again what it
//! refused until the pause ends or the scene changes (one create per rejected slot per
//! restart, and a crash loop makes that a storm). Each change is flushed at once, without
//! waiting: a rejected slot starts no action that would flush it, and etcd has no flush
//! of its own, so a stop would forget it (and a forgotten end of a refusal would hold a
//! healthy slot back after the restart). A crash before the flush only costs the one
//! early retry this prevents.

use std::time::Duration;

use tokio::time::Instant;

use super::Executor;
use crate::model::{Fixed, Live, SlotKey, Spec};
use crate::store::Rejection;

impl Executor {
    /// Keeps a slot's refusal that holds it back for `pause` from now.
    pub fn keep_rejection(
        &self,
        key: &SlotKey,
        updates_only: bool,
        message: &str,
        wanted: Option<&(Live, Fixed)>,
        pause: Duration,
    ) {
        let rejection = Rejection {
            updates_only,
            message: message.to_string(),
            wanted: wanted.map(|(live, fixed)| Spec {
                live: live.clone(),
                fixed: fixed.clone(),
            }),
            until_ms: self.now_ms().saturating_add(pause.as_millis() as u64),
        };
        match self.store.put_rejection(key, &rejection) {
            Ok(()) => self.flush_soon(),
            Err(e) => tracing::warn!(slot = %key, error = %e,
                "cannot keep the refusal; a restart would retry it at once"),
        }
    }

    /// Forgets a slot's kept refusal of this kind (answered otherwise since, or its
    /// scene changed).
    pub fn forget_rejection(&self, key: &SlotKey, updates_only: bool) {
        match self.store.remove_rejection(key, updates_only) {
            Ok(()) => self.flush_soon(),
            Err(e) => tracing::warn!(slot = %key, error = %e, "cannot forget a kept refusal"),
        }
    }

    fn flush_soon(&self) {
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.flush().await {
                tracing::warn!(error = %e, "cannot flush a kept refusal");
            }
        });
    }

    /// The project's kept refusals, each with the end of its pause on this process's
    /// clock.
    pub fn kept_rejections(&self) -> Vec<(SlotKey, Rejection, Instant)> {
        let rejections = match self.store.project_rejections(&self.project) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(project = %self.project, error = %e,
                    "cannot read the kept refusals; refused slots are tried again now");
                return Vec::new();
            }
        };
        let (now, now_ms) = (Instant::now(), self.now_ms());
        rejections
            .into_iter()
            .map(|(key, r)| {
                let left = Duration::from_millis(r.until_ms.saturating_sub(now_ms));
                (key, r, now + left)
            })
            .collect()
    }
}
