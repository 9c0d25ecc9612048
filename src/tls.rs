//! TLS: the crypto provider every HTTPS client and server in the process shares, and
//! serving HTTPS directly for bare deployments (`run --tls-cert/--tls-key`). In
//! Kubernetes TLS normally ends at the Ingress, since NCS needs a publicly trusted
//! certificate anyway.

mod certs;
mod listener;

use std::path::PathBuf;
use std::time::Duration;

pub use certs::ReloadingCert;
pub use listener::TlsListener;

/// How often the certificate files are re-read: cert-manager and friends replace them
/// in place, and a restart to pick them up would drop every connection.
pub const RELOAD_EVERY: Duration = Duration::from_secs(10);

/// Installs rustls' ring provider once. reqwest is built without a provider of its own
/// (ring builds in half the time of aws-lc-rs, rust-stack.md §1.3), so this must run
/// before the first client is built; later calls are no-ops.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The PEM files HTTPS is served with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// How often both files are checked for a change.
    pub reload_every: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)")]
    NoCertificate { path: PathBuf },
    #[error("{path} holds no usable PEM private key: {detail}")]
    NoKey { path: PathBuf, detail: String },
    #[error("the key in {key} does not fit the certificate in {cert}: {source}")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
}
