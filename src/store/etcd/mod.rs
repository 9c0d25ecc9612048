//! The etcd backend: every durable key in an etcd cluster under a prefix, written only
//! by the replica that leads the key's project, so several replicas can share the
//! projects and take over from each other.
//!
//! Layout under the prefix:
//! - `p/{project}\0{tree}\0{key}`: the store's trees (see `trees`), one range per
//!   project, loaded when its leadership is taken.
//! - `leader/{project}`: the replica leading the project, attached to its lease.
//! - `member/{replica}`: each live replica, attached to its lease; the value is the
//!   address its peers reach it at.
//! - `installation/{project}`: the installation that acts for the project, so a second
//!   one configured with the same prefix refuses instead of fighting over the players.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{StreamExt, stream};

use super::error::StoreError;
use super::flush::GroupCommit;
use super::interface::{Recovery, StoreFuture};
use super::trees::{Backend, TreeStore};

mod balance;
mod error;
mod gateway;
mod leader;
mod local;
mod mirror;

pub use error::EtcdError;
pub use gateway::Credentials;
pub(crate) use leader::Leader;
pub use local::LocalEtcd;

use gateway::{Compare, Gateway, Op};
use mirror::{Batch, Mirror, MirrorTree};

/// Where the cluster is and how this replica takes part.
#[derive(Debug, Clone)]
pub struct EtcdOptions {
    /// Client URLs (`http://host:2379`); the gateway is tried on each in turn.
    pub endpoints: Vec<String>,
    /// Every key this installation writes starts with it (several installations can
    /// share one cluster).
    pub prefix: String,
    /// The lease of this replica's leader keys.
    pub ttl: Duration,
    pub credentials: Option<Credentials>,
    /// PEM file of the CA that signed the members' certificates (for `https://`).
    pub ca_file: Option<std::path::PathBuf>,
    /// This installation's name, written into the projects it acts for.
    pub installation: String,
    /// This replica's name, written into the leader keys it holds.
    pub replica: String,
    /// The projects to lead when free.
    pub projects: Vec<String>,
}

/// Most operations one etcd transaction may hold (`--max-txn-ops` is 128 by default).
const TXN_OPS: usize = 128;

/// Projects' transactions a flush has in flight at once.
const COMMITS_AT_ONCE: usize = 32;

/// The trees in etcd, through the mirror of the projects led.
pub(super) struct EtcdBackend {
    gateway: Arc<Gateway>,
    mirror: Arc<Mirror>,
    leader: Arc<Leader>,
    prefix: Vec<u8>,
    commits: GroupCommit,
}

/// Opens the backend; nothing is led (and nothing can be read or written) until the
/// leader's `run` takes projects.
pub(super) fn open(
    options: &EtcdOptions,
) -> Result<(TreeStore<EtcdBackend>, Arc<Leader>), StoreError> {
    let tls = tls_config(options.ca_file.as_deref())?;
    let gateway = Arc::new(Gateway::new(
        &options.endpoints,
        options.credentials.clone(),
        // A request must answer well within the lease's margin.
        (options.ttl / 5).max(Duration::from_secs(1)),
        tls,
    )?);
    let prefix = options.prefix.as_bytes().to_vec();
    let mirror = Arc::new(Mirror::new(&prefix));
    let leader = Arc::new(Leader::new(
        gateway.clone(),
        mirror.clone(),
        options,
        options.projects.clone(),
    ));
    let backend = EtcdBackend {
        gateway,
        mirror,
        leader: leader.clone(),
        prefix,
        commits: GroupCommit::default(),
    };
    Ok((TreeStore::new(backend)?, leader))
}

/// The TLS set-up of `https://` endpoints: the members' certificates must chain to the
/// CA in `ca_file` (etcd clusters run on a private CA). Without one, only `http://`
/// endpoints work. The provider is named here, not installed process-wide: the store
/// sits below the modules that install it.
fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, EtcdError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca_file) = ca_file {
        let setup = |what: &str, e: &dyn std::fmt::Display| {
            EtcdError::Setup(format!("CA file {}: {what}: {e}", ca_file.display()))
        };
        let certs = CertificateDer::pem_file_iter(ca_file).map_err(|e| setup("unreadable", &e))?;
        for cert in certs {
            let cert = cert.map_err(|e| setup("not PEM", &e))?;
            roots
                .add(cert)
                .map_err(|e| setup("not a certificate", &e))?;
        }
        if roots.is_empty() {
            return Err(setup("no certificate", &"empty"));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| EtcdError::Setup(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

impl Backend for EtcdBackend {
    type Tree = MirrorTree;

    fn tree(&self, name: &'static str) -> Result<MirrorTree, StoreError> {
        Ok(self.mirror.tree(name))
    }

    fn flush(&self) -> StoreFuture<'_, ()> {
        Box::pin(self.commits.flush(|| self.write_through()))
    }

    fn recovery(&self) -> Option<&Recovery> {
        None
    }

    fn local_dir(&self) -> Option<&Path> {
        None
    }

    fn disk_bytes(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
}

impl EtcdBackend {
    /// Writes what changed since the last flush, one guarded transaction per project
    /// (more when a project changed more keys than one transaction holds).
    async fn write_through(&self) -> Result<(), StoreError> {
        let (batches, lost) = self.mirror.take_dirty();
        let mut first_error = lost
            .into_iter()
            .next()
            .map(|project| StoreError::NotLeader { project });
        // Concurrently: each project's batch is guarded by its own leader key and
        // independent of the others'. One after the other, a flush after a burst (a
        // thousand projects converging) took one round trip per project, every write
        // made meanwhile waited for the next flush, and a notice's answer and its
        // failover waited behind both.
        let committed: Vec<(Batch, Result<bool, EtcdError>)> = stream::iter(batches)
            .map(|batch| async move {
                let result = self.commit(&batch).await;
                (batch, result)
            })
            .buffer_unordered(COMMITS_AT_ONCE)
            .collect()
            .await;
        for (batch, result) in committed {
            match result {
                Ok(true) => {}
                Ok(false) => {
                    self.leader
                        .lose(&batch.project, "a write found the leader key taken or gone");
                    first_error.get_or_insert(StoreError::NotLeader {
                        project: batch.project,
                    });
                }
                Err(e) => {
                    first_error.get_or_insert(e.into());
                    self.mirror.redo(batch);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Sends one batch; false when the leader key no longer carries the batch's lease.
    async fn commit(&self, batch: &Batch) -> Result<bool, EtcdError> {
        let mut leader_key = self.prefix.clone();
        leader_key.extend_from_slice(b"leader/");
        leader_key.extend_from_slice(batch.project.as_bytes());
        // In key order, one chunk after the other: a notice's pending record sorts before
        // its id (`ncs_pending` < `notice_ids`), so a failure between two chunks never
        // leaves an id durable without its notice, whose resends would be duplicates.
        for chunk in batch.writes.chunks(TXN_OPS) {
            let ops: Vec<Op> = chunk
                .iter()
                .map(|(key, value)| match value {
                    Some(value) => Op::Put {
                        key: key.clone(),
                        value: value.clone(),
                        lease: 0,
                    },
                    None => Op::Delete(key.clone()),
                })
                .collect();
            let guard = [Compare::Lease(leader_key.clone(), batch.lease)];
            if !self.gateway.txn(&guard, &ops, &[]).await?.succeeded {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests;
