//! The demo's embedded simulator: an Agora stand-in inside the process.
//!
//! It accepts exactly the credentials of the configured projects and enforces Agora's
//! documented limits, so the demo exercises the same paths as production.

use anyhow::Context;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::simulator::{SimConfig, SimHandle, SimProject, Simulator};

/// Starts a simulator on a free loopback port and points every project at it.
pub async fn start(config: &mut Config) -> anyhow::Result<SimHandle> {
    let mut sim = SimConfig::default();
    for p in &config.settings.projects {
        sim.projects.push(SimProject {
            app_id: p.app_id.clone(),
            ncs_secret: p.ncs_secret.expose_secret().to_string(),
            ncs_url: None,
        });
        sim.credentials.push((
            p.customer_id.expose_secret().to_string(),
            p.customer_secret.expose_secret().to_string(),
        ));
        sim.max_players = sim.max_players.max(p.limits.max_players as usize);
    }
    // A demo certificate is self-signed: the simulator's NCS must trust it to deliver.
    if let Some(tls) = &config.settings.server.tls {
        sim.ncs_ca_files.push(tls.cert.clone());
    }
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot bind the embedded simulator")?;
    let handle = Simulator::start(sim, listener)
        .await
        .context("cannot start the embedded simulator")?;
    for p in &mut config.settings.projects {
        p.api.base_url = Some(handle.base_url());
    }
    Ok(handle)
}

/// Points the simulator's NCS deliveries at pullkeeper's webhook, once it listens
/// (`https` when pullkeeper serves TLS). `projects` pairs each project id with its app id.
pub fn deliver_notices_to(
    sim: &SimHandle,
    scheme: &str,
    addr: std::net::SocketAddr,
    projects: &[(String, String)],
) {
    let host = if addr.ip().is_unspecified() {
        std::net::SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    };
    for (id, app_id) in projects {
        sim.set_ncs_url(app_id, Some(format!("{scheme}://{host}/ncs/{id}")));
    }
}
