//! Where the other replicas reach this one (etcd): they hand it the NCS notices and
//! the reads of the projects it leads.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use super::AppError;
use crate::config::LeaderSettings;
use crate::http::peers::Peers;
use crate::store::Leadership;

/// With leadership shared (etcd): publishes where this replica is reached and returns
/// the client that hands requests to the other replicas. `None` for a sole replica.
pub(super) fn peers(
    leadership: &Leadership,
    settings: &LeaderSettings,
    listening: SocketAddr,
    tls: bool,
) -> Result<Option<Arc<Peers>>, AppError> {
    let Some(replica) = leadership.replica() else {
        return Ok(None);
    };
    let pod_ip = std::env::var("POD_IP").ok();
    match advertised(settings, listening, tls, pod_ip.as_deref()) {
        Some(address) => {
            tracing::info!(%address, "reachable by the other replicas here");
            leadership.advertise(&address);
        }
        None => tracing::warn!(
            "no address to give the other replicas (listening on every address, \
             no leader.advertise, no POD_IP): notices for the projects this \
             replica leads cannot be handed to it"
        ),
    }
    Ok(Some(Arc::new(
        Peers::new(replica).map_err(AppError::Peers)?,
    )))
}

/// `leader.advertise` when set; else the listening address, or, when listening on
/// every address (as in a pod), `$POD_IP` (the downward API) on the listening port.
/// `None` when neither gives an address others can use.
pub fn advertised(
    settings: &LeaderSettings,
    listening: SocketAddr,
    tls: bool,
    pod_ip: Option<&str>,
) -> Option<String> {
    if let Some(address) = &settings.advertise {
        return Some(address.clone());
    }
    let ip = if listening.ip().is_unspecified() {
        pod_ip?.parse::<IpAddr>().ok()?
    } else {
        listening.ip()
    };
    let scheme = if tls { "https" } else { "http" };
    Some(format!(
        "{scheme}://{}",
        SocketAddr::new(ip, listening.port())
    ))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn settings(advertise: Option<&str>) -> LeaderSettings {
        LeaderSettings {
            ttl: Duration::from_secs(10),
            replica: "r".into(),
            advertise: advertise.map(str::to_string),
        }
    }

    #[test]
    fn the_setting_wins_then_the_listening_address_then_the_pod_ip() {
        let at: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let set = settings(Some("http://pk-0.pk:8080"));
        assert_eq!(
            advertised(&set, any, false, Some("10.1.2.3")).as_deref(),
            Some("http://pk-0.pk:8080")
        );
        let unset = settings(None);
        assert_eq!(
            advertised(&unset, at, false, Some("10.1.2.3")).as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(
            advertised(&unset, any, true, Some("10.1.2.3")).as_deref(),
            Some("https://10.1.2.3:8080")
        );
        assert_eq!(
            advertised(&unset, "[::]:8080".parse().unwrap(), false, Some("fd00::7")).as_deref(),
            Some("http://[fd00::7]:8080")
        );
        assert_eq!(advertised(&unset, any, false, None), None);
        assert_eq!(advertised(&unset, any, false, Some("not-an-ip")), None);
    }
}
