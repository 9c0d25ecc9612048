//! Which Agora API domain to call, and where to go when it fails (docs/agora-api.md §4):
//! retry the primary domain; then the alternate primary (`api.agora.io` ↔
//! `api.sd-rtn.com`); then the domains of the region adjacent to the one the primary
//! resolves to; waiting 1 s, 3 s, 6 s before the 2nd, 3rd and 4th attempt. A network
//! failure that is not a DNS failure skips the alternate primary (the same servers answer
//! both names), so the adjacent region is reached after 1 + 3 s, plus each attempt's own
//! time (up to the connect timeout when the primary is black-holed). The domain that worked sticks until it fails, and after a
//! healthy interval pullkeeper tries the primary again.
//!
//! For tests, each name can be mapped to a local address or to a DNS failure, like
//! curl's `--resolve`, through [`Overrides`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::error::TransportKind;

/// Waits before the 2nd, 3rd and 4th attempt of one request.
pub const WAITS: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(3),
    Duration::from_secs(6),
];

/// The region of Agora's domain table the primary domain resolves to from pullkeeper's
/// server (`api.area`). Each area has two regions, and each is the other's "adjacent"
/// region: the seed's example resolves to central Europe and retries western Europe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    UsWest,
    UsEast,
    EuWest,
    EuCentral,
    ApSoutheast,
    ApNortheast,
    CnEast,
    CnNorth,
}

impl Region {
    /// Every region, as `api.area` spells them.
    pub const ALL: [(&'static str, Region); 8] = [
        ("us-west", Region::UsWest),
        ("us-east", Region::UsEast),
        ("eu-west", Region::EuWest),
        ("eu-central", Region::EuCentral),
        ("ap-southeast", Region::ApSoutheast),
        ("ap-northeast", Region::ApNortheast),
        ("cn-east", Region::CnEast),
        ("cn-north", Region::CnNorth),
    ];

    /// The region `api.area` names, if it names one.
    pub fn parse(name: &str) -> Option<Region> {
        Region::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, region)| region)
    }

    /// The name `api.area` gives it.
    pub fn name(self) -> &'static str {
        Region::ALL
            .iter()
            .find(|(_, r)| *r == self)
            .map_or("", |&(name, _)| name)
    }

    /// The other region of the same area (the domain table has two per area).
    pub fn adjacent(self) -> Region {
        match self {
            Region::UsWest => Region::UsEast,
            Region::UsEast => Region::UsWest,
            Region::EuWest => Region::EuCentral,
            Region::EuCentral => Region::EuWest,
            Region::ApSoutheast => Region::ApNortheast,
            Region::ApNortheast => Region::ApSoutheast,
            Region::CnEast => Region::CnNorth,
            Region::CnNorth => Region::CnEast,
        }
    }

    /// The region's domain prefix in Agora's domain table (§4), e.g. `api-eu-west-1`.
    pub fn prefix(self) -> String {
        format!("api-{}-1", self.name())
    }
}

/// The domains of one project, in the order the documented switch walks them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domains {
    pub primary: String,
    pub alternate: String,
    /// The adjacent region's domains: on the primary's suffix first, then the
    /// alternate's (the seed: `api-eu-west-1.agora.io` or `api-eu-west-1.sd-rtn.com`).
    pub adjacent: Vec<String>,
}

impl Domains {
    /// The domains for `primary` from a server where it resolves to `current`.
    pub fn new(primary: &str, current: Region) -> Domains {
        let (suffix, other) = if primary == "api.sd-rtn.com" {
            ("sd-rtn.com", "agora.io")
        } else {
            ("agora.io", "sd-rtn.com")
        };
        let prefix = current.adjacent().prefix();
        Domains {
            primary: primary.to_string(),
            alternate: format!("api.{other}"),
            adjacent: vec![format!("{prefix}.{suffix}"), format!("{prefix}.{other}")],
        }
    }

    /// The domains to try after `first` failed with `kind`, per the documented switch:
    /// the primary once more, the alternate unless the failure was a plain network one,
    /// then the adjacent region. At most three, matching the three waits.
    pub fn fallbacks(&self, first: &str, kind: TransportKind) -> Vec<String> {
        let mut out = vec![self.primary.clone()];
        if kind == TransportKind::Dns {
            out.push(self.alternate.clone());
        }
        out.extend(self.adjacent.iter().cloned());
        out.retain(|d| d != first || d == &self.primary);
        out.truncate(WAITS.len());
        out
    }
}

/// The domain in use, shared by all calls of a project.
#[derive(Debug)]
pub struct DomainPool {
    pub domains: Domains,
    /// How long a fallback domain is used before the primary is tried again.
    pub return_after: Duration,
    current: Mutex<(String, Instant)>,
}

impl DomainPool {
    pub fn new(domains: Domains, return_after: Duration) -> DomainPool {
        let primary = domains.primary.clone();
        DomainPool {
            domains,
            return_after,
            current: Mutex::new((primary, Instant::now())),
        }
    }

    /// The domain to start a request on.
    pub fn current(&self) -> String {
        let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if cur.0 != self.domains.primary && cur.1.elapsed() >= self.return_after {
            tracing::info!(from = %cur.0, to = %self.domains.primary, "trying the primary API domain again");
            *cur = (self.domains.primary.clone(), Instant::now());
        }
        cur.0.clone()
    }

    /// Records that `domain` answered; it sticks. True if that was a switch.
    pub fn answered(&self, domain: &str) -> bool {
        let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if cur.0 == domain {
            return false;
        }
        tracing::warn!(from = %cur.0, to = domain, "API domain switched");
        *cur = (domain.to_string(), Instant::now());
        true
    }
}

/// What a name resolves to in tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Override {
    Addr(SocketAddr),
    DnsFailure,
}

/// Name overrides for the HTTP client's resolver; other names resolve normally.
#[derive(Debug, Clone, Default)]
pub struct Overrides(pub Arc<BTreeMap<String, Override>>);

impl reqwest::dns::Resolve for Overrides {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        let found = self.0.get(&host).copied();
        Box::pin(async move {
            match found {
                Some(Override::Addr(addr)) => {
                    Ok(Box::new(std::iter::once(addr)) as reqwest::dns::Addrs)
                }
                Some(Override::DnsFailure) => Err(format!("no such host {host} (override)").into()),
                None => {
                    let addrs: Vec<SocketAddr> =
                        tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
                    Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_adjacent_region_comes_first_on_the_primary_suffix() {
        let d = Domains::new("api.agora.io", Region::EuCentral);
        assert_eq!(d.alternate, "api.sd-rtn.com");
        assert_eq!(
            d.adjacent,
            ["api-eu-west-1.agora.io", "api-eu-west-1.sd-rtn.com"]
        );
        let d = Domains::new("api.sd-rtn.com", Region::CnNorth);
        assert_eq!(d.alternate, "api.agora.io");
        assert_eq!(
            d.adjacent,
            ["api-cn-east-1.sd-rtn.com", "api-cn-east-1.agora.io"]
        );
        for (name, region) in Region::ALL {
            assert_eq!(Region::parse(name), Some(region));
            assert_eq!(region.adjacent().adjacent(), region);
            assert_ne!(region.adjacent(), region);
            assert_eq!(&region.prefix()[4..7], &name[..3], "same area");
        }
        assert_eq!(Region::parse("eu"), None, "an area alone names no region");
    }

    #[test]
    fn dns_failure_tries_the_alternate_network_failure_skips_it() {
        let d = Domains::new("api.agora.io", Region::UsEast);
        assert_eq!(
            d.fallbacks("api.agora.io", TransportKind::Dns),
            ["api.agora.io", "api.sd-rtn.com", "api-us-west-1.agora.io"]
        );
        assert_eq!(
            d.fallbacks("api.agora.io", TransportKind::Connect),
            [
                "api.agora.io",
                "api-us-west-1.agora.io",
                "api-us-west-1.sd-rtn.com"
            ]
        );
        // From a sticky fallback, the walk restarts at the primary.
        assert_eq!(
            d.fallbacks("api-us-west-1.agora.io", TransportKind::Connect),
            ["api.agora.io", "api-us-west-1.sd-rtn.com"]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_fallback_sticks_then_the_primary_is_tried_again() {
        let pool = DomainPool::new(
            Domains::new("api.agora.io", Region::UsEast),
            Duration::from_secs(300),
        );
        assert!(pool.answered("api-us-west-1.agora.io"));
        assert!(!pool.answered("api-us-west-1.agora.io"));
        assert_eq!(pool.current(), "api-us-west-1.agora.io");
        tokio::time::advance(Duration::from_secs(300)).await;
        assert_eq!(pool.current(), "api.agora.io");
    }
}
