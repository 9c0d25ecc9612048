//! Serving HTTPS directly, for bare deployments (`run --tls-cert/--tls-key`). In
//! Kubernetes TLS normally ends at the Ingress, since NCS needs a publicly trusted
//! certificate anyway.

mod certs;
mod listener;

use std::path::PathBuf;

pub use certs::ReloadingCert;
pub use listener::TlsListener;

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
