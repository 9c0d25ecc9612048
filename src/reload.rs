//! Hot reload of the scenes file: what operators edit, a ConfigMap in Kubernetes.
//!
//! Kubernetes updates a ConfigMap volume by swapping a `..data` symlink, so a watch on
//! the file itself goes dead after the first swap, and `subPath` mounts never update at
//! all (rust-stack.md §1.10). Reading the path on a short poll follows every swap, costs
//! one small read a second, and needs no platform watcher; SIGHUP reloads at once. A
//! file that does not parse or validate changes nothing: the last good scenes keep
//! running, the full error is logged once per bad content, and a metric counts it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::{self, Scene, Settings};
use crate::telemetry::Metrics;

/// How often the scenes file is re-read.
pub const POLL: Duration = Duration::from_secs(1);

/// What the reloader needs.
pub struct Reloader {
    pub path: PathBuf,
    pub settings: Settings,
    pub metrics: Metrics,
    pub clock: Clock,
    /// Notified on SIGHUP: reload now.
    pub now: Arc<Notify>,
}

/// The outcome of looking at the file once.
#[derive(Debug)]
pub enum Look {
    Unchanged,
    Loaded(Vec<Scene>),
    Rejected(String),
}

impl Reloader {
    /// Polls until cancelled, handing every new valid scene list to `apply`.
    pub async fn run(
        self,
        initial: Vec<u8>,
        apply: impl Fn(Vec<Scene>) + Send,
        cancel: CancellationToken,
    ) {
        let mut last = initial;
        self.metrics
            .config_last_reload_success
            .set(self.clock.now_ms() as f64 / 1000.0);
        let mut tick = tokio::time::interval(POLL);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
                _ = self.now.notified() => tracing::info!(path = %self.path.display(), "SIGHUP: reloading scenes"),
            }
            match self.look(&mut last) {
                Look::Unchanged => {}
                Look::Loaded(scenes) => {
                    tracing::info!(path = %self.path.display(), scenes = scenes.len(), "scenes reloaded");
                    self.metrics
                        .config_last_reload_success
                        .set(self.clock.now_ms() as f64 / 1000.0);
                    apply(scenes);
                }
                Look::Rejected(error) => {
                    self.metrics.config_reload_failures.inc();
                    tracing::error!(path = %self.path.display(),
                        "scenes file rejected; the last good scenes keep running:\n{error}");
                }
            }
        }
    }

    /// Reads the file; parses it if its content differs from `last`, which it then
    /// becomes (so a bad file is reported once, not every second). An unreadable file
    /// (mid-swap, say) is looked at again next time.
    pub fn look(&self, last: &mut Vec<u8>) -> Look {
        let Ok(bytes) = std::fs::read(&self.path) else {
            return Look::Unchanged;
        };
        if bytes == *last {
            return Look::Unchanged;
        }
        *last = bytes;
        if last.len() > config::MAX_FILE_BYTES {
            return Look::Rejected(format!(
                "{}: file is {} bytes; at most {} are accepted",
                self.path.display(),
                last.len(),
                config::MAX_FILE_BYTES
            ));
        }
        let Ok(text) = std::str::from_utf8(last) else {
            return Look::Rejected(format!("{}: not UTF-8", self.path.display()));
        };
        match config::parse_scenes(&self.path, text, &self.settings) {
            Ok(scenes) => Look::Loaded(scenes),
            Err(e) => Look::Rejected(e.to_string()),
        }
    }
}
