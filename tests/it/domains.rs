//! Domain failover against real sockets: Agora's names mapped to loopback addresses (or
//! to a DNS failure), the simulator answering for whichever name works.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pullkeeper::RateLimiter;
use pullkeeper::agora::client::Endpoint;
use pullkeeper::agora::domains::{Area, DomainPool, Domains, Override, Overrides};
use pullkeeper::agora::{ApiLimiters, ClientConfig, MediaPullClient};
use pullkeeper::simulator::SimHandle;
use tokio::time::Instant;

use crate::support::{self, APP, CUSTOMER_ID, CUSTOMER_SECRET};

fn unlimited() -> RateLimiter {
    RateLimiter::new([])
}

fn client(overrides: &[(&str, Override)], return_after: Duration) -> MediaPullClient {
    let map: BTreeMap<String, Override> =
        overrides.iter().map(|(h, o)| (h.to_string(), *o)).collect();
    MediaPullClient::new(ClientConfig {
        endpoint: Endpoint::Domains {
            scheme: "http".into(),
            pool: DomainPool::new(Domains::new("api.agora.io", Area::Us), return_after),
            overrides: Overrides(Arc::new(map)),
        },
        app_id: APP.into(),
        customer_id: CUSTOMER_ID.to_string().into(),
        customer_secret: CUSTOMER_SECRET.to_string().into(),
        timeout: Duration::from_secs(2),
        limiters: ApiLimiters {
            create_with_name: unlimited(),
            create_without_name: unlimited(),
            delete: unlimited(),
            list: unlimited(),
            list_filtered: unlimited(),
            update: unlimited(),
        },
    })
    .unwrap()
}

/// A loopback port where nothing listens: connections are refused.
async fn refused_port() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

async fn sim() -> SimHandle {
    support::start(support::config()).await
}

#[tokio::test]
async fn refused_primary_goes_to_the_adjacent_region_after_1_and_3_seconds() {
    let sim = sim().await;
    let client = client(
        &[
            ("api.agora.io", Override::Addr(refused_port().await)),
            ("api-us-west-1.agora.io", Override::Addr(sim.addr())),
        ],
        Duration::from_secs(300),
    );
    let started = Instant::now();
    client.list_all(None).await.unwrap();
    // Primary, primary again after 1 s, then (network failure: no alternate) adjacent
    // after 3 s more. A lower bound: a slow machine only makes it longer.
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(client.domain(), "api-us-west-1.agora.io");
    assert_eq!(sim.requests().len(), 1);
    // The working domain sticks: the next call goes straight there.
    let started = Instant::now();
    client.list_all(None).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(sim.requests().len(), 2);
}

#[tokio::test]
async fn dns_failure_of_the_primary_tries_the_alternate_primary_first() {
    let sim = sim().await;
    let client = client(
        &[
            ("api.agora.io", Override::DnsFailure),
            ("api.sd-rtn.com", Override::Addr(sim.addr())),
            ("api-us-west-1.agora.io", Override::DnsFailure),
        ],
        Duration::from_secs(300),
    );
    let started = Instant::now();
    client.list_all(None).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(4));
    assert_eq!(client.domain(), "api.sd-rtn.com");
}

#[tokio::test]
async fn the_primary_is_used_again_after_a_healthy_interval() {
    let fallback = sim().await;
    let primary_addr = refused_port().await;
    let client = client(
        &[
            ("api.agora.io", Override::Addr(primary_addr)),
            ("api-us-west-1.agora.io", Override::Addr(fallback.addr())),
        ],
        Duration::from_secs(1),
    );
    client.list_all(None).await.unwrap();
    assert_eq!(client.domain(), "api-us-west-1.agora.io");
    // The primary comes back on its address.
    let listener = tokio::net::TcpListener::bind(primary_addr).await.unwrap();
    let primary = pullkeeper::simulator::Simulator::start(support::config(), listener)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    client.list_all(None).await.unwrap();
    assert_eq!(client.domain(), "api.agora.io");
    assert_eq!(primary.requests().len(), 1);
}
