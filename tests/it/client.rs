//! The Media Pull client against the simulator: pagination, 409 adoption, error classes,
//! and client-side rate limiting that keeps the simulator's 429s at zero.

use std::time::Duration;

use pullkeeper::agora::client::{Endpoint, MAX_RETRY_AFTER};
use pullkeeper::agora::wire::{CreatePlayer, Region};
use pullkeeper::agora::{
    ApiError, ApiLimiters, ClientConfig, CreateOutcome, ErrorClass, MediaPullClient,
};
use pullkeeper::simulator::{FaultAction, FaultRule, SimConfig, SimHandle};
use pullkeeper::{RateLimiter, WindowSpec};

use crate::support::{self, APP, CUSTOMER_ID, CUSTOMER_SECRET};

fn per_second(n: u32) -> RateLimiter {
    RateLimiter::new([WindowSpec {
        limit: n,
        length: Duration::from_millis(1050),
    }])
}

fn client_for(sim: &SimHandle, secret: &str, create_per_second: u32) -> MediaPullClient {
    client_at(sim.base_url(), secret, create_per_second)
}

fn client_at(base_url: String, secret: &str, create_per_second: u32) -> MediaPullClient {
    MediaPullClient::new(ClientConfig {
        endpoint: Endpoint::Fixed(base_url),
        app_id: APP.into(),
        customer_id: CUSTOMER_ID.to_string().into(),
        customer_secret: secret.to_string().into(),
        timeout: Duration::from_secs(2),
        limiters: ApiLimiters {
            create_with_name: per_second(create_per_second),
            create_without_name: per_second(50),
            delete: per_second(100),
            list: per_second(10),
            list_filtered: per_second(2),
            update: per_second(10),
        },
    })
    .unwrap()
}

fn player(channel: &str, uid: u64, name: &str) -> CreatePlayer {
    CreatePlayer {
        stream_url: "rtmp://origin.example.com/live/a".into(),
        channel_name: channel.into(),
        uid: Some(uid),
        name: Some(name.into()),
        ..CreatePlayer::default()
    }
}

async fn sim_without_lag(end_token: &str) -> SimHandle {
    let mut config: SimConfig = support::config();
    config.list_lag = Duration::ZERO;
    config.end_token = end_token.into();
    config.qps.create_with_name.per_second = 50;
    support::start(config).await
}

#[tokio::test]
async fn list_all_follows_pages_to_either_end_marker() {
    for end in ["", "0"] {
        let sim = sim_without_lag(end).await;
        let client = client_for(&sim, CUSTOMER_SECRET, 50);
        for i in 0..5 {
            client
                .create(Region::Na, player("ch", 100 + i, &format!("p{i}")), 0)
                .await
                .unwrap();
        }
        let all = client.list_pages(None, 2).await.unwrap();
        let names: Vec<_> = all.iter().map(|p| p.name.clone().unwrap()).collect();
        assert_eq!(names, ["p0", "p1", "p2", "p3", "p4"], "end marker {end:?}");
        let lists = sim.requests().iter().filter(|r| r.method == "GET").count();
        assert_eq!(lists, 3, "three pages of 2, 2 and 1");
        let filtered = client.list_all(Some("other")).await.unwrap();
        assert!(filtered.is_empty());
    }
}

#[tokio::test]
async fn conflict_on_create_names_the_existing_player() {
    let sim = sim_without_lag("").await;
    let client = client_for(&sim, CUSTOMER_SECRET, 50);
    let CreateOutcome::Created(first) = client
        .create(Region::Eu, player("ch", 1, "same"), 0)
        .await
        .unwrap()
    else {
        panic!("first create must create");
    };
    let again = client
        .create(Region::Eu, player("ch", 2, "same"), 0)
        .await
        .unwrap();
    assert_eq!(again, CreateOutcome::AlreadyExists { id: first.id });
}

/// A replica that does not lead the project (its fence says no) sends nothing that
/// changes or decides the project's players, but still reads the NCS address list: a
/// notice for the project may reach it.
#[tokio::test]
async fn a_fenced_client_reads_only_the_ncs_address_list() {
    let sim = sim_without_lag("").await;
    let client = client_for(&sim, CUSTOMER_SECRET, 50).with_fence(std::sync::Arc::new(|| false));
    let created = client
        .create(Region::Eu, player("ch", 1, "fenced"), 0)
        .await;
    assert!(
        matches!(created, Err(ApiError::Stopped { .. })),
        "{created:?}"
    );
    let listed = client.list_all(None).await;
    assert!(
        matches!(listed, Err(ApiError::Stopped { .. })),
        "{listed:?}"
    );
    assert!(sim.players(APP).is_empty());
    let ips = client.ncs_ips().await.unwrap();
    assert!(!ips.ips.is_empty(), "{ips:?}");
}

#[tokio::test]
async fn errors_are_classified_and_carry_agoras_ids() {
    let sim = sim_without_lag("").await;
    let bad_auth = client_for(&sim, "wrong", 50);
    let e = bad_auth.list_all(None).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::Permanent);
    assert_eq!(e.status(), Some(401));
    assert!(!e.to_string().contains(CUSTOMER_SECRET));

    let client = client_for(&sim, CUSTOMER_SECRET, 50);
    let e = client.delete(Region::Na, "nosuchplayer").await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::NotFound);
    let ApiError::Status { refusal, .. } = &e else {
        panic!("{e}")
    };
    assert_eq!(refusal.message, "Resource is not found and destroyed.");
    assert!(refusal.request_id.is_some());

    sim.inject(FaultRule {
        method: Some("GET".into()),
        path_contains: "/cloud-player/players".into(),
        count: 1,
        action: FaultAction::Status(503),
    });
    assert_eq!(
        client.list_all(None).await.unwrap_err().class(),
        ErrorClass::Server
    );

    sim.inject(FaultRule {
        method: Some("GET".into()),
        path_contains: "/cloud-player/players".into(),
        count: 1,
        action: FaultAction::Drop,
    });
    assert_eq!(
        client.list_all(None).await.unwrap_err().class(),
        ErrorClass::Network
    );
    assert!(client.list_all(None).await.is_ok(), "faults are used up");
}

/// Agora allows 2 named creates per second; a client limited to the same never gets a 429.
#[tokio::test]
async fn client_at_agoras_create_rate_gets_no_429() {
    let mut config = support::config();
    config.list_lag = Duration::ZERO;
    let sim = support::start(config).await;
    let client = client_for(&sim, CUSTOMER_SECRET, 2);
    for i in 0..5 {
        client
            .create(Region::Ap, player("ch", 10 + i, &format!("r{i}")), 0)
            .await
            .unwrap();
    }
    let statuses: Vec<_> = sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![Some(200); 5]);
}

/// A 429 without `Retry-After` pauses that API for the first retreat step, 5–6 s (§1.9).
#[tokio::test]
async fn a_429_pauses_the_api_before_the_next_call() {
    let sim = sim_without_lag("").await;
    let client = client_for(&sim, CUSTOMER_SECRET, 50);
    sim.inject(FaultRule {
        method: Some("GET".into()),
        path_contains: "/cloud-player/players".into(),
        count: 1,
        action: FaultAction::Status(429),
    });
    let e = client.list_all(None).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::RateLimited);
    let started = tokio::time::Instant::now();
    client.list_all(None).await.unwrap();
    // A lower bound only: a slow machine makes it longer, never shorter.
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let statuses: Vec<_> = sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![Some(429), Some(200)]);
}

/// Found by review of what the network can send: a `Retry-After` of 2^64-1 seconds made
/// `Instant::now() + pause` overflow, a panic in the client. It is capped now.
#[tokio::test]
async fn an_absurd_retry_after_is_capped_not_a_panic() {
    let app = axum::Router::new().fallback(|| async {
        (
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "18446744073709551615")],
            "{}",
        )
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = client_at(base, CUSTOMER_SECRET, 50);
    let e = client.list_all(None).await.unwrap_err();
    let ApiError::Status { refusal, .. } = &e else {
        panic!("{e}")
    };
    assert_eq!(refusal.retry_after, Some(MAX_RETRY_AFTER));
}

/// `Retry-After` as an HTTP-date (RFC 9110) pauses the API until that date.
#[tokio::test]
async fn an_http_date_retry_after_pauses_until_that_date() {
    let app = axum::Router::new().fallback(|| async {
        let at = std::time::SystemTime::now() + Duration::from_secs(3);
        (
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", httpdate::fmt_http_date(at))],
            "{}",
        )
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = client_at(base, CUSTOMER_SECRET, 50);
    let e = client.list_all(None).await.unwrap_err();
    let ApiError::Status { refusal, .. } = &e else {
        panic!("{e}")
    };
    // The date has whole seconds: 2 to 3 s from the answer.
    let pause = refusal.retry_after.unwrap();
    assert!(
        pause > Duration::from_secs(1) && pause <= Duration::from_secs(3),
        "{pause:?}"
    );
    let started = tokio::time::Instant::now();
    let _ = client.list_all(None).await;
    assert!(
        started.elapsed() >= pause - Duration::from_millis(50),
        "{:?}",
        started.elapsed()
    );
}

/// Found by the fuzz review: a server whose page tokens cycle (A, B, A, …) kept the List
/// loop going forever. A repeated token now fails the List, so it counts as an outage and
/// never as a complete List that lacks players.
#[tokio::test]
async fn page_tokens_that_cycle_fail_the_list_instead_of_looping() {
    let app = axum::Router::new().fallback(
        |axum::extract::RawQuery(query): axum::extract::RawQuery| async move {
            let next = if query.unwrap_or_default().contains("pageToken=A") {
                "B"
            } else {
                "A"
            };
            axum::Json(serde_json::json!({ "totalSize": 3, "players": [], "nextPageToken": next }))
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = client_at(base, CUSTOMER_SECRET, 50);
    let listed = tokio::time::timeout(Duration::from_secs(10), client.list_all(None))
        .await
        .expect("the List loop ends");
    let e = listed.unwrap_err();
    assert!(e.to_string().contains("page tokens repeat"), "{e}");
}

/// Calls beyond the host's bound on calls in flight wait for a place instead of opening
/// more connections (a 1,000-project start from empty held over 5,000 of them),
/// and the wait is not part of a call's timeout: four waves of calls that each take 0.4 s
/// all succeed with a 1.5 s timeout, though the last wave is answered 1.6 s after it was
/// asked for.
#[tokio::test]
async fn calls_in_flight_to_a_host_are_bounded_and_their_wait_is_not_their_timeout() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use pullkeeper::agora::client::IN_FLIGHT_PER_HOST;

    const ANSWER_AFTER: Duration = Duration::from_millis(400);
    let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (n, m) = (now.clone(), most.clone());
    let app = axum::Router::new().fallback(move || {
        let (n, m) = (n.clone(), m.clone());
        async move {
            m.fetch_max(n.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
            tokio::time::sleep(ANSWER_AFTER).await;
            n.fetch_sub(1, Ordering::SeqCst);
            ""
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = Arc::new(
        MediaPullClient::new(ClientConfig {
            endpoint: Endpoint::Fixed(base),
            app_id: APP.into(),
            customer_id: CUSTOMER_ID.to_string().into(),
            customer_secret: CUSTOMER_SECRET.to_string().into(),
            timeout: Duration::from_millis(1500),
            limiters: support::unlimited_limiters(),
        })
        .unwrap(),
    );
    let calls: Vec<_> = (0..4 * IN_FLIGHT_PER_HOST)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move { client.delete(Region::Na, &format!("p{i}")).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().expect("answered within its timeout");
    }
    assert_eq!(most.load(Ordering::SeqCst), IN_FLIGHT_PER_HOST);
}
