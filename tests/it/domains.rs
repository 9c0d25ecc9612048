//! Domain failover against real sockets: Agora's names mapped to loopback addresses (or
//! to a DNS failure), the simulator answering for whichever name works. On tokio's
//! paused clock, so every wait of the walk (1 s, 3 s, 6 s, and the connect timeout of a
//! black-holed domain) is pinned exactly: time moves only when nothing else can happen.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pullkeeper::agora::client::Endpoint;
use pullkeeper::agora::domains::{DomainPool, Domains, Override, Overrides, Region};
use pullkeeper::agora::{ClientConfig, MediaPullClient};
use pullkeeper::simulator::SimHandle;
use tokio::time::Instant;

use crate::support::{self, APP, CUSTOMER_ID, CUSTOMER_SECRET};

/// The request timeout of these clients; their connect timeout is its cap, 5 s.
const TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A client for `api.agora.io` on a server where it resolves to US East: US West is
/// the adjacent region.
fn client(overrides: &[(&str, Override)], return_after: Duration) -> MediaPullClient {
    let map: BTreeMap<String, Override> =
        overrides.iter().map(|(h, o)| (h.to_string(), *o)).collect();
    MediaPullClient::new(ClientConfig {
        endpoint: Endpoint::Domains {
            scheme: "http".into(),
            pool: DomainPool::new(Domains::new("api.agora.io", Region::UsEast), return_after),
            overrides: Overrides(Arc::new(map)),
        },
        app_id: APP.into(),
        customer_id: CUSTOMER_ID.to_string().into(),
        customer_secret: CUSTOMER_SECRET.to_string().into(),
        timeout: TIMEOUT,
        limiters: support::unlimited_limiters(),
    })
    .unwrap()
}

/// A loopback port where nothing listens: connections are refused at once.
async fn refused_port() -> Override {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    Override::Addr(l.local_addr().unwrap())
}

/// A loopback port that never completes a connection, as a black-holed address would:
/// a listener with a backlog of one that never accepts, filled by one connection, so
/// the kernel drops every further SYN and a connect waits for its timeout. Keep the
/// returned sockets alive while it is used.
fn black_hole() -> (Override, tokio::net::TcpListener, std::net::TcpStream) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let filler = std::net::TcpStream::connect(addr).unwrap();
    (Override::Addr(addr), listener, filler)
}

async fn sim() -> (SimHandle, Override) {
    let sim = support::start(support::config()).await;
    let addr: SocketAddr = sim.addr();
    (sim, Override::Addr(addr))
}

/// How long one List takes, and where it was answered.
async fn timed_list(client: &MediaPullClient) -> (Duration, String) {
    let started = Instant::now();
    client.list_all(None).await.unwrap();
    (started.elapsed(), client.domain())
}

#[tokio::test(start_paused = true)]
async fn refused_primary_goes_to_the_adjacent_region_after_1_and_3_seconds() {
    let (sim, at_sim) = sim().await;
    let client = client(
        &[
            ("api.agora.io", refused_port().await),
            ("api-us-west-1.agora.io", at_sim),
        ],
        Duration::from_secs(300),
    );
    // Primary, primary again after 1 s, then (a network failure: no alternate) the
    // adjacent region after 3 s more.
    let (took, domain) = timed_list(&client).await;
    assert_eq!(took, Duration::from_secs(1 + 3));
    assert_eq!(domain, "api-us-west-1.agora.io");
    assert_eq!(sim.requests().len(), 1);
    // The working domain sticks: the next call goes straight there.
    let (took, _) = timed_list(&client).await;
    assert_eq!(took, Duration::ZERO);
    assert_eq!(sim.requests().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn the_adjacent_region_on_the_other_suffix_comes_6_seconds_later() {
    let (_sim, at_sim) = sim().await;
    let client = client(
        &[
            ("api.agora.io", refused_port().await),
            ("api-us-west-1.agora.io", refused_port().await),
            ("api-us-west-1.sd-rtn.com", at_sim),
        ],
        Duration::from_secs(300),
    );
    let (took, domain) = timed_list(&client).await;
    assert_eq!(took, Duration::from_secs(1 + 3 + 6));
    assert_eq!(domain, "api-us-west-1.sd-rtn.com");
}

#[tokio::test(start_paused = true)]
async fn black_holed_primary_costs_a_connect_timeout_per_attempt() {
    let (_sim, at_sim) = sim().await;
    let (hole, _listener, _filler) = black_hole();
    let client = client(
        &[("api.agora.io", hole), ("api-us-west-1.agora.io", at_sim)],
        Duration::from_secs(300),
    );
    // Two attempts on the primary, each ended by the connect timeout, then the
    // adjacent region: 5 + 1 + 5 + 3 s.
    let (took, domain) = timed_list(&client).await;
    assert_eq!(
        took,
        CONNECT_TIMEOUT + Duration::from_secs(1) + CONNECT_TIMEOUT + Duration::from_secs(3)
    );
    assert_eq!(domain, "api-us-west-1.agora.io");
}

#[tokio::test(start_paused = true)]
async fn dns_failure_of_the_primary_tries_the_alternate_primary_first() {
    let (_sim, at_sim) = sim().await;
    let client = client(
        &[
            ("api.agora.io", Override::DnsFailure),
            ("api.sd-rtn.com", at_sim),
        ],
        Duration::from_secs(300),
    );
    let (took, domain) = timed_list(&client).await;
    assert_eq!(took, Duration::from_secs(1 + 3));
    assert_eq!(domain, "api.sd-rtn.com");
}

#[tokio::test(start_paused = true)]
async fn dns_failure_everywhere_but_the_adjacent_region_reaches_it_after_6_more_seconds() {
    let (_sim, at_sim) = sim().await;
    let client = client(
        &[
            ("api.agora.io", Override::DnsFailure),
            ("api.sd-rtn.com", Override::DnsFailure),
            ("api-us-west-1.agora.io", at_sim),
        ],
        Duration::from_secs(300),
    );
    let (took, domain) = timed_list(&client).await;
    assert_eq!(took, Duration::from_secs(1 + 3 + 6));
    assert_eq!(domain, "api-us-west-1.agora.io");
}

#[tokio::test(start_paused = true)]
async fn the_primary_is_used_again_after_a_healthy_interval() {
    let (_fallback, at_fallback) = sim().await;
    let primary = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let primary_addr = primary.local_addr().unwrap();
    drop(primary);
    let client = client(
        &[
            ("api.agora.io", Override::Addr(primary_addr)),
            ("api-us-west-1.agora.io", at_fallback),
        ],
        Duration::from_secs(60),
    );
    client.list_all(None).await.unwrap();
    assert_eq!(client.domain(), "api-us-west-1.agora.io");
    // The primary comes back on its address.
    let listener = tokio::net::TcpListener::bind(primary_addr).await.unwrap();
    let primary = pullkeeper::simulator::Simulator::start(support::config(), listener)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(59)).await;
    assert_eq!(client.domain(), "api-us-west-1.agora.io", "not yet");
    tokio::time::sleep(Duration::from_secs(1)).await;
    client.list_all(None).await.unwrap();
    assert_eq!(client.domain(), "api.agora.io");
    assert_eq!(primary.requests().len(), 1);
}
