//! Group commit, for every backend: one flush covers every write made before it started.

use std::sync::atomic::Ordering::SeqCst;

use super::error::StoreError;

/// Group commit: a flush covers every write made before it started, so a caller whose
/// write precedes a flush that started later need not flush again. Without this, N
/// concurrent writers cost N back-to-back fsyncs or etcd transactions (webhook intake and
/// mass adoption were bound by exactly that; BENCHMARKS.md).
#[derive(Default)]
struct FlushEpochs {
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

/// Flushes run one at a time, and a caller queued behind a flush that started after its
/// call returns as soon as that flush is done (see [`FlushEpochs`]).
#[derive(Default)]
pub(super) struct GroupCommit {
    epochs: FlushEpochs,
    one_at_a_time: tokio::sync::Mutex<()>,
}

impl GroupCommit {
    /// Makes every write made before the call durable through `flush`, unless a flush
    /// that started after the call already has.
    pub(super) async fn flush<F, Fut>(&self, flush: F) -> Result<(), StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<(), StoreError>>,
    {
        let epoch = self.epochs.request();
        let _one_at_a_time = self.one_at_a_time.lock().await;
        let Some(covers) = self.epochs.still_needed(epoch) else {
            return Ok(());
        };
        flush().await?;
        self.epochs.done(covers);
        Ok(())
    }
}
