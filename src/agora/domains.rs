//! Which Agora API domain to call, and where to go when it fails (docs/agora-api.md §4):
//! retry the primary domain; then the alternate primary (`api.agora.io` ↔
//! `api.sd-rtn.com`); then the adjacent region's domain; waiting 1 s, 3 s, 6 s between. A
//! network failure that is not a DNS failure skips the alternate primary (the same
//! servers answer both names). The domain that worked sticks until it fails, and after a
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

/// Where pullkeeper's server is; its regional API domains are the "adjacent" ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    Us,
    Eu,
    Ap,
    Cn,
}

impl Area {
    /// The regional domain prefixes of the area, from Agora's domain table (§4).
    pub fn prefixes(self) -> [&'static str; 2] {
        match self {
            Area::Us => ["api-us-west-1", "api-us-east-1"],
            Area::Eu => ["api-eu-west-1", "api-eu-central-1"],
            Area::Ap => ["api-ap-southeast-1", "api-ap-northeast-1"],
            Area::Cn => ["api-cn-east-1", "api-cn-north-1"],
        }
    }
}

/// The domains of one project, in the order the documented switch walks them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domains {
    pub primary: String,
    pub alternate: String,
    /// Regional domains of the area: primary suffix first, then the alternate's.
    pub adjacent: Vec<String>,
}

impl Domains {
    pub fn new(primary: &str, area: Area) -> Domains {
        let (suffix, other) = if primary == "api.sd-rtn.com" {
            ("sd-rtn.com", "agora.io")
        } else {
            ("agora.io", "sd-rtn.com")
        };
        let mut adjacent = Vec::new();
        for s in [suffix, other] {
            for p in area.prefixes() {
                adjacent.push(format!("{p}.{s}"));
            }
        }
        Domains {
            primary: primary.to_string(),
            alternate: format!("api.{other}"),
            adjacent,
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
    fn domain_table() {
        let d = Domains::new("api.agora.io", Area::Eu);
        assert_eq!(d.alternate, "api.sd-rtn.com");
        assert_eq!(
            d.adjacent,
            [
                "api-eu-west-1.agora.io",
                "api-eu-central-1.agora.io",
                "api-eu-west-1.sd-rtn.com",
                "api-eu-central-1.sd-rtn.com"
            ]
        );
        assert_eq!(
            Domains::new("api.sd-rtn.com", Area::Cn).alternate,
            "api.agora.io"
        );
    }

    #[test]
    fn dns_failure_tries_the_alternate_network_failure_skips_it() {
        let d = Domains::new("api.agora.io", Area::Us);
        assert_eq!(
            d.fallbacks("api.agora.io", TransportKind::Dns),
            ["api.agora.io", "api.sd-rtn.com", "api-us-west-1.agora.io"]
        );
        assert_eq!(
            d.fallbacks("api.agora.io", TransportKind::Connect),
            [
                "api.agora.io",
                "api-us-west-1.agora.io",
                "api-us-east-1.agora.io"
            ]
        );
        // From a sticky fallback, the walk restarts at the primary.
        assert_eq!(
            d.fallbacks("api-us-west-1.agora.io", TransportKind::Connect),
            [
                "api.agora.io",
                "api-us-east-1.agora.io",
                "api-us-west-1.sd-rtn.com"
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_fallback_sticks_then_the_primary_is_tried_again() {
        let pool = DomainPool::new(
            Domains::new("api.agora.io", Area::Us),
            Duration::from_secs(300),
        );
        assert!(pool.answered("api-us-west-1.agora.io"));
        assert!(!pool.answered("api-us-west-1.agora.io"));
        assert_eq!(pool.current(), "api-us-west-1.agora.io");
        tokio::time::advance(Duration::from_secs(300)).await;
        assert_eq!(pool.current(), "api.agora.io");
    }
}
