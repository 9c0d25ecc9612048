//! Making writes durable: group commit over sled's flush.

use super::SledBackend;
use crate::store::error::StoreError;

impl SledBackend {
    /// Makes everything written so far durable against a process kill.
    ///
    /// Not `flush_async`: in sled 0.34 each call parks one of sled's few I/O threads until
    /// the log is stable, and enough concurrent calls park all of them while the write
    /// they wait for needs one of them: a deadlock (seen here with about eight parallel
    /// creates). So flushes run one at a time on tokio's blocking pool, and a caller
    /// queued behind a flush that started after its call returns as soon as that flush
    /// is done (see `GroupCommit`).
    pub(super) async fn flush_grouped(&self) -> Result<(), StoreError> {
        self.commits
            .flush(|| async {
                let db = self.db.clone();
                tokio::task::spawn_blocking(move || db.flush())
                    .await
                    .map_err(|e| StoreError::Flush(e.to_string()))??;
                Ok(())
            })
            .await
    }
}
