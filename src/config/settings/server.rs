//! The `server:` and `ncs_allowlist:` blocks: where pullkeeper listens, who may use its
//! admin API, and which addresses may deliver NCS notices.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use ipnet::IpNet;

use super::raw::{RawNcsAllowlist, RawServer, Text};
use super::{NcsAllowlist, ServerSettings, duration};
use crate::config::diagnostic::Diags;
use crate::config::env::Env;
use crate::config::secret;

/// Agora: "call it at least every 24 h and update the firewall allowlist" (§2.6).
pub(super) const MAX_NCS_IP_REFRESH: Duration = Duration::from_secs(24 * 3600);

pub(super) fn server(
    raw: &RawServer,
    base: &Path,
    env: &dyn Env,
    diags: &mut Diags<'_>,
) -> ServerSettings {
    let listen = raw.listen.as_ref().map_or_else(default_listen, |t| {
        address(t, "server.listen", diags).unwrap_or_else(default_listen)
    });
    let metrics_listen = raw
        .metrics_listen
        .as_ref()
        .and_then(|t| address(t, "server.metrics_listen", diags));
    if let (Some(m), Some(t)) = (metrics_listen, &raw.metrics_listen)
        && m == listen
        && m.port() != 0
    {
        diags.push(
            t.referenced,
            "server.metrics_listen",
            format!("{m} is server.listen too: give /metrics its own address, or leave this out to serve it on server.listen"),
        );
    }
    ServerSettings {
        listen,
        metrics_listen,
        admin_token: raw
            .admin_token
            .as_ref()
            .map(|s| secret::resolve(s, base, env, "server.admin_token", diags)),
        tls: None,
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 8080))
}

fn address(t: &Text, path: &str, diags: &mut Diags<'_>) -> Option<SocketAddr> {
    let parsed = t.value.parse().ok();
    if parsed.is_none() {
        diags.push(
            t.referenced,
            path,
            format!(
                "invalid address {:?}: expected IP:PORT such as 0.0.0.0:8080",
                t.value
            ),
        );
    }
    parsed
}

pub(super) fn ncs_allowlist(raw: &RawNcsAllowlist, diags: &mut Diags<'_>) -> NcsAllowlist {
    let path = "ncs_allowlist.refresh_interval";
    let mut refresh_interval = duration(&raw.refresh_interval, MAX_NCS_IP_REFRESH, path, diags);
    if let Some(t) = &raw.refresh_interval
        && refresh_interval > MAX_NCS_IP_REFRESH
    {
        diags.push(
            t.referenced,
            path,
            format!(
                "{:?} is longer than 24h: Agora asks for the NCS address list to be fetched at least every 24 hours",
                t.value
            ),
        );
        refresh_interval = MAX_NCS_IP_REFRESH;
    }
    let trusted_proxies = raw
        .trusted_proxies
        .iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, t)| {
            let parsed = t
                .value
                .parse::<IpNet>()
                .or_else(|_| t.value.parse::<std::net::IpAddr>().map(IpNet::from));
            match parsed {
                Ok(net) => Some(net.trunc()),
                Err(_) => {
                    diags.push(
                        t.referenced,
                        format!("ncs_allowlist.trusted_proxies[{i}]"),
                        format!(
                            "invalid address {:?}: expected an IP (10.0.0.7) or a CIDR (10.0.0.0/8, fd00::/8)",
                            t.value
                        ),
                    );
                    None
                }
            }
        })
        .collect();
    NcsAllowlist {
        enforce: raw.enforce.as_ref().is_some_and(|b| b.value),
        refresh_interval,
        trusted_proxies,
    }
}
