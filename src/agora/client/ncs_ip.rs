//! The NCS IP query API (§2.6): the addresses NCS delivers notices from.
//!
//! The NCS page documents `GET /v2/ncs/ip`, the REST reference `GET /v1/ncs/ip` ([X]);
//! v2 is asked first and v1 only when v2 fails, so whichever one a host serves is found.

use std::net::IpAddr;

use reqwest::Method;
use serde::Deserialize;

use super::{MediaPullClient, decode};
use crate::agora::error::{ApiError, Op};

/// The paths, in the order they are tried.
pub const NCS_IP_PATHS: [&str; 2] = ["/v2/ncs/ip", "/v1/ncs/ip"];

/// One successful answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NcsIps {
    pub ips: Vec<IpAddr>,
    /// The path that answered.
    pub path: &'static str,
}

/// `{"data":{"service":{"hosts":[{"primaryIP":"x.x.x.x"},…]}}}`; only `primaryIP` matters.
#[derive(Deserialize)]
struct IpResponse {
    data: IpData,
}

#[derive(Deserialize)]
struct IpData {
    service: IpService,
}

#[derive(Deserialize)]
struct IpService {
    hosts: Vec<IpHost>,
}

#[derive(Deserialize)]
struct IpHost {
    #[serde(rename = "primaryIP")]
    primary_ip: String,
}

impl MediaPullClient {
    /// The NCS servers' addresses, from v2 or else v1. With both failing, the error is
    /// v1's: v2 failing is what sent us there.
    pub async fn ncs_ips(&self) -> Result<NcsIps, ApiError> {
        let mut last = None;
        for path in NCS_IP_PATHS {
            match self.ncs_ips_at(path).await {
                Ok(ips) => return Ok(NcsIps { ips, path }),
                Err(e) => {
                    tracing::info!(path, error = %e, "NCS IP list not available at this path");
                    last = Some(e);
                }
            }
        }
        Err(last.expect("at least one path was tried"))
    }

    async fn ncs_ips_at(&self, path: &str) -> Result<Vec<IpAddr>, ApiError> {
        let (body, request_id) = self
            .send(Op::NcsIp, (&self.ncs_ip_limiter, 0), &|base| {
                self.request(Method::GET, &format!("{base}{path}"))
            })
            .await?;
        let answer: IpResponse = decode(Op::NcsIp, &body, &request_id)?;
        let undecodable = |detail: String| ApiError::Decode {
            op: Op::NcsIp,
            detail,
            request_id: request_id.clone(),
        };
        // One bad entry makes the whole answer suspect; the caller keeps the last good list.
        let ips = answer
            .data
            .service
            .hosts
            .iter()
            .map(|h| {
                h.primary_ip.trim().parse::<IpAddr>().map_err(|_| {
                    undecodable(format!("primaryIP {:?} is not an IP address", h.primary_ip))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if ips.is_empty() {
            return Err(undecodable("no hosts in the answer".into()));
        }
        Ok(ips)
    }
}
