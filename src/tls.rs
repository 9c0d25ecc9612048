//! TLS set-up shared by every HTTPS client in the process.

/// Installs rustls' ring provider once. reqwest is built without a provider of its own
/// (ring builds in half the time of aws-lc-rs, rust-stack.md §1.3), so this must run
/// before the first client is built; later calls are no-ops.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
