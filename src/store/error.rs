//! What can go wrong in the store, whichever backend it is.

use std::path::PathBuf;

// Clone: one failed flush is the answer to every notice of the group it covered.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("store: {0}")]
    Backend(String),
    #[error(transparent)]
    Etcd(#[from] super::etcd::EtcdError),
    /// A write or read of a project this replica does not lead (any more).
    #[error("store: this replica does not lead project {project}")]
    NotLeader { project: String },
    #[error("store: flush task failed: {0}")]
    Flush(String),
    #[error("store: NCS notice writer {0}")]
    NoticeWriter(String),
    #[error("store: NCS notice log {path}: {detail}")]
    NoticeLog { path: PathBuf, detail: String },
    #[error("store: this store keeps no local files; the NCS notice log needs a directory")]
    NoLocalDir,
    #[error("store: corrupt value under {tree}: {detail}")]
    Corrupt { tree: &'static str, detail: String },
    #[error("store: cannot move the unreadable store {path} aside to {aside}: {detail}")]
    MoveAside {
        path: PathBuf,
        aside: PathBuf,
        detail: String,
    },
    #[error("no free UID left in {start}..={end} for scene {scene} in channel {channel}")]
    UidsExhausted {
        scene: String,
        channel: String,
        start: u32,
        end: u32,
    },
}
