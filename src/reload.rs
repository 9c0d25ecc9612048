//! Hot reload of the scenes file: what operators edit, a ConfigMap in Kubernetes.
//!
//! Kubernetes updates a ConfigMap volume by swapping a `..data` symlink, so a watch on
//! the file itself goes dead after the first swap, and `subPath` mounts never update at
//! all. Reading the path on a short poll follows every swap, costs one small read a
//! second, and needs no platform watcher; SIGHUP reloads at once. A file that does not
//! parse or validate changes nothing: the last good scenes keep running, the full error
//! is logged once per bad content, and a metric counts it.
//!
//! Why a poll and no directory watcher (`notify` on the parent directory, the usual
//! advice): opening the path resolves `scenes.yaml` → `..data` → `..{timestamp}` anew
//! every time, so the poll sees each swap by construction, whatever events the platform
//! would or would not have sent for it. The kubelet's swap is one atomic rename, so a
//! read sees the old file or the new one, never half of each. A plain file written in
//! place can be read half-written, and half a scenes file may well be valid (it lists
//! fewer scenes), so new content is applied only once two polls read the same bytes: that
//! is the debounce. SIGHUP applies at once: the operator says the file is done. A watcher
//! would only shave a second off a change that takes the kubelet up to a minute to
//! deliver, for a new dependency and its platform back ends. What a reload then changes
//! is the plan's business: an Update in place or a rollout (`reconcile::plan`).

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
    /// The same as in force, unreadable, or new and not yet read twice alike.
    Unchanged,
    Loaded(Vec<Scene>),
    Rejected(String),
}

/// A file's content as the reloader remembers it: its SHA-256, not its bytes (the
/// scenes file of 1,000 projects is 5 MB, kept twice over otherwise).
type Digest = [u8; 32];

fn digest(bytes: &[u8]) -> Digest {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).into()
}

/// What the reloader has read so far.
#[derive(Debug)]
pub struct Seen {
    /// The content last acted on (loaded, or rejected and reported).
    last: Digest,
    /// New content read once, waiting to be read again unchanged.
    settling: Option<Digest>,
}

impl Seen {
    /// Nothing read yet but `initial`, the content in force.
    pub fn new(initial: &[u8]) -> Seen {
        Seen {
            last: digest(initial),
            settling: None,
        }
    }
}

impl Default for Seen {
    fn default() -> Self {
        Seen::new(&[])
    }
}

impl Reloader {
    /// Polls until cancelled, handing every new valid scene list to `apply`.
    pub async fn run(
        self,
        mut seen: Seen,
        apply: impl Fn(Vec<Scene>) + Send,
        cancel: CancellationToken,
    ) {
        self.metrics
            .config_last_reload_success
            .set(self.clock.now_ms() as f64 / 1000.0);
        let mut tick = tokio::time::interval(POLL);
        loop {
            let now = tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => false,
                _ = self.now.notified() => {
                    tracing::info!(path = %self.path.display(), "SIGHUP: reloading scenes");
                    true
                }
            };
            match self.look(&mut seen, now) {
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

    /// Reads the file; parses it if its content differs from the last acted on and was
    /// read the same the time before (or `now`), and then acts on it (so a bad file is
    /// reported once, not every second). An unreadable file (mid-swap, say) is looked
    /// at again next time.
    pub fn look(&self, seen: &mut Seen, now: bool) -> Look {
        let Ok(bytes) = std::fs::read(&self.path) else {
            return Look::Unchanged;
        };
        let read = digest(&bytes);
        if read == seen.last {
            seen.settling = None;
            return Look::Unchanged;
        }
        if !now && seen.settling != Some(read) {
            seen.settling = Some(read);
            return Look::Unchanged;
        }
        seen.settling = None;
        seen.last = read;
        let last = &bytes;
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

#[cfg(test)]
mod tests {
    use super::*;

    const SCENE: &str = "scenes:\n  - name: news\n    project: demo\n    channel: c\n    stream_url: rtmp://o/s\n    region: na\n    uids: { start: 1, end: 9 }\n";

    fn reloader(path: PathBuf) -> Reloader {
        let shipped =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/pullkeeper.yaml");
        Reloader {
            path,
            settings: config::load(&shipped)
                .expect("the shipped config loads")
                .settings,
            metrics: Metrics::new(),
            clock: Clock::new(),
            now: Arc::default(),
        }
    }

    #[test]
    fn new_content_applies_once_two_polls_read_it_alike_or_at_once_on_sighup() {
        let path = std::env::temp_dir().join(format!("pk-reload-{}.yaml", uuid::Uuid::new_v4()));
        let r = reloader(path.clone());
        let mut seen = Seen::default();
        std::fs::write(&path, SCENE).unwrap();
        assert!(
            matches!(r.look(&mut seen, false), Look::Unchanged),
            "read once"
        );
        assert!(matches!(r.look(&mut seen, false), Look::Loaded(s) if s.len() == 1));
        assert!(
            matches!(r.look(&mut seen, false), Look::Unchanged),
            "acted on"
        );

        // Half a write, then the whole: only the whole is ever acted on.
        std::fs::write(&path, &SCENE[..40]).unwrap();
        assert!(matches!(r.look(&mut seen, false), Look::Unchanged));
        let two = format!(
            "{SCENE}  - name: more\n    project: demo\n    channel: c\n    stream_url: rtmp://o/t\n    region: na\n    uids: {{ start: 10, end: 19 }}\n"
        );
        std::fs::write(&path, &two).unwrap();
        assert!(matches!(r.look(&mut seen, false), Look::Unchanged));
        assert!(matches!(r.look(&mut seen, false), Look::Loaded(s) if s.len() == 2));

        // SIGHUP: at once; a broken file is rejected once, not on every poll.
        std::fs::write(&path, "scenes: [").unwrap();
        assert!(matches!(r.look(&mut seen, true), Look::Rejected(_)));
        assert!(matches!(r.look(&mut seen, false), Look::Unchanged));
        let _ = std::fs::remove_file(&path);
    }
}
