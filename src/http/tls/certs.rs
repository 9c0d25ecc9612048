//! The served certificate, swapped when its files change.
//!
//! Each handshake reads the current certificate from memory; a background poll re-reads
//! the files and swaps in a new pair only when both parse and fit together. A renewal
//! writes the two files one after the other, so the poll will see the new certificate
//! with the old key for a moment: that pair is refused and the old one keeps serving
//! until the key arrives.

use std::sync::{Arc, Mutex, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_util::sync::CancellationToken;

use super::TlsError;
use crate::config::TlsFiles;

#[derive(Debug)]
pub struct ReloadingCert {
    files: TlsFiles,
    current: RwLock<Arc<CertifiedKey>>,
    /// The file contents last tried, good or bad, so a broken pair is reported once
    /// rather than on every poll.
    seen: Mutex<(Vec<u8>, Vec<u8>)>,
}

impl ReloadingCert {
    /// Loads the pair; a start with files that do not work is an error.
    pub fn load(files: TlsFiles) -> Result<Arc<ReloadingCert>, TlsError> {
        let (cert_pem, key_pem) = read(&files)?;
        let key = certified(&files, &cert_pem, &key_pem)?;
        Ok(Arc::new(ReloadingCert {
            files,
            current: RwLock::new(Arc::new(key)),
            seen: Mutex::new((cert_pem, key_pem)),
        }))
    }

    /// A server config whose certificate follows the files. HTTP/1.1 first, the choice
    /// for a client offering both; HTTP/2 for the other replicas, which ask only for it
    /// (see `peers`).
    pub fn server_config(self: &Arc<Self>) -> rustls::ServerConfig {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec(), b"h2".to_vec()];
        config
    }

    /// Re-reads the files; `Ok(true)` when a new certificate is now served.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let (cert_pem, key_pem) = read(&self.files)?;
        {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if seen.0 == cert_pem && seen.1 == key_pem {
                return Ok(false);
            }
            *seen = (cert_pem.clone(), key_pem.clone());
        }
        let key = certified(&self.files, &cert_pem, &key_pem)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(key);
        Ok(true)
    }

    /// Polls the files every `reload_every` until cancelled.
    pub async fn watch(self: Arc<Self>, cancel: CancellationToken) {
        let mut every = tokio::time::interval(self.files.reload_every);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = every.tick() => match self.reload() {
                    Ok(true) => tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded"),
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "TLS certificate not reloaded; the previous one is still served"),
                },
            }
        }
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

fn read(files: &TlsFiles) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    Ok((read(&files.cert)?, read(&files.key)?))
}

fn certified(files: &TlsFiles, cert_pem: &[u8], key_pem: &[u8]) -> Result<CertifiedKey, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: files.cert.clone(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::NoKey {
        path: files.key.clone(),
        detail: e.to_string(),
    })?;
    let provider: &CryptoProvider = &rustls::crypto::ring::default_provider();
    CertifiedKey::from_der(chain, key, provider).map_err(|source| TlsError::Mismatch {
        cert: files.cert.clone(),
        key: files.key.clone(),
        source,
    })
}
