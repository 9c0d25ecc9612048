//! Making writes durable: group commit over sled's flush, from the runtime or from a
//! dedicated thread.

use std::sync::atomic::Ordering::SeqCst;

use super::SledStore;
use crate::store::error::StoreError;

/// Group commit: a flush covers every write made before it started, so a caller whose
/// write precedes a flush that started later need not flush again. Without this, N
/// concurrent writers cost N back-to-back fsyncs (webhook intake and mass adoption were
/// bound by exactly that; BENCHMARKS.md).
#[derive(Default)]
pub(super) struct FlushEpochs {
    /// Flush requests so far; a request's number is its epoch.
    requested: std::sync::atomic::AtomicU64,
    /// Every request with an epoch up to this one is durable.
    durable: std::sync::atomic::AtomicU64,
}

impl FlushEpochs {
    /// Numbers a flush request; call after the writes it must cover.
    fn request(&self) -> u64 {
        self.requested.fetch_add(1, SeqCst) + 1
    }

    /// `None` when a flush that started after request `epoch` is already done, else the
    /// epoch a flush starting now covers (every request numbered up to here was made
    /// after its write).
    fn still_needed(&self, epoch: u64) -> Option<u64> {
        (self.durable.load(SeqCst) < epoch).then(|| self.requested.load(SeqCst))
    }

    fn done(&self, covers: u64) {
        self.durable.fetch_max(covers, SeqCst);
    }
}

impl SledStore {
    /// Makes everything written so far durable against a process kill.
    ///
    /// Not `flush_async`: in sled 0.34 each call parks one of sled's few I/O threads until
    /// the log is stable, and enough concurrent calls park all of them while the write
    /// they wait for needs one of them: a deadlock (seen here with about eight parallel
    /// creates). So flushes run one at a time on tokio's blocking pool, and a caller
    /// queued behind a flush that started after its call returns as soon as that flush
    /// is done (see [`FlushEpochs`]).
    pub(super) async fn flush_grouped(&self) -> Result<(), StoreError> {
        let epoch = self.flushes.request();
        let _one_at_a_time = self.flushing.lock().await;
        let Some(covers) = self.flushes.still_needed(epoch) else {
            return Ok(());
        };
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|e| StoreError::Flush(e.to_string()))??;
        self.flushes.done(covers);
        Ok(())
    }
}
