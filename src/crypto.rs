//! The rustls crypto provider of the process, shared by every HTTPS client (the Agora
//! client, the app webhook, source probes, `status`, the simulator's NCS sender).
//!
//! reqwest is built without a provider of its own (ring builds in half the time of
//! aws-lc-rs), so rustls needs one installed process-wide before the
//! first client is built. It lives in this leaf module, not with the HTTPS server, because
//! the clients sit in lower layers than the server.

/// Installs rustls' ring provider once; later calls are no-ops.
pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
