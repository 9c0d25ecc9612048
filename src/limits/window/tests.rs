use super::*;

fn per_second(n: u32) -> WindowSpec {
    WindowSpec {
        limit: n,
        length: Duration::from_secs(1),
    }
}

/// Send times (ms since start) of `calls` sequential acquisitions.
async fn send_times(limiter: &RateLimiter, calls: usize) -> Vec<u128> {
    let start = Instant::now();
    let mut out = Vec::new();
    for _ in 0..calls {
        let _answered = limiter.acquire().await;
        out.push((Instant::now() - start).as_millis());
    }
    out
}

#[tokio::test(start_paused = true)]
async fn never_more_than_limit_in_any_window() {
    let limiter = RateLimiter::new([per_second(2)]);
    let times = send_times(&limiter, 6).await;
    assert_eq!(times, vec![0, 0, 1000, 1000, 2000, 2000]);
}

#[tokio::test(start_paused = true)]
async fn both_windows_apply() {
    let limiter = RateLimiter::new([
        per_second(10),
        WindowSpec {
            limit: 20,
            length: Duration::from_secs(60),
        },
    ]);
    let times = send_times(&limiter, 21).await;
    assert_eq!(times[9], 0);
    assert_eq!(times[10], 1000);
    assert_eq!(times[19], 1000);
    // The 21st waits for the first minute window to slide past the first call.
    assert_eq!(times[20], 60_000);
}

#[tokio::test(start_paused = true)]
async fn higher_ranks_overtake_the_queue() {
    let limiter = std::sync::Arc::new(RateLimiter::new([per_second(1)]));
    drop(limiter.acquire().await);
    let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for (name, rank) in [("backup-a", 0), ("backup-b", 0), ("master", 1)] {
        let (limiter, order) = (limiter.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            let _answered = limiter.acquire_ranked(rank).await;
            order.lock().unwrap().push(name);
        }));
        tokio::task::yield_now().await;
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), ["master", "backup-a", "backup-b"]);
}

#[tokio::test(start_paused = true)]
async fn pause_delays_everyone() {
    let limiter = RateLimiter::new([per_second(100)]);
    limiter.pause_until(Instant::now() + Duration::from_secs(5));
    let (waited, _call) = limiter.acquire().await;
    assert_eq!(waited, Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn consecutive_429s_step_the_pause_5_10_15_seconds_and_another_answer_resets() {
    let limiter = RateLimiter::new([per_second(100)]);
    let mut waits = vec![];
    for _ in 0..4 {
        let (_, call) = limiter.acquire().await;
        drop(call);
        limiter.rate_limited(None);
        let (waited, _call) = limiter.acquire().await;
        waits.push(waited);
    }
    for (waited, base) in waits.iter().zip([5, 10, 15, 15]) {
        assert!(
            *waited >= Duration::from_secs(base) && *waited < Duration::from_secs(base + 1),
            "{waits:?}"
        );
    }
    limiter.not_rate_limited();
    limiter.rate_limited(None);
    let (waited, _call) = limiter.acquire().await;
    assert!(waited < Duration::from_secs(6), "{waited:?}");
    // Retry-After wins over the schedule, and still counts as a 429 in the row.
    assert_eq!(
        limiter.rate_limited(Some(Duration::from_secs(2))),
        Duration::from_secs(2)
    );
    assert!(limiter.rate_limited(None) >= Duration::from_secs(15));
}

#[tokio::test(start_paused = true)]
async fn zero_limit_means_unlimited() {
    let limiter = RateLimiter::new([per_second(0)]);
    let times = send_times(&limiter, 1000).await;
    assert_eq!(times.last(), Some(&0));
}

/// Most sends inside any window of `length` that starts at a send.
fn busiest(times: &[Instant], length: Duration) -> usize {
    times
        .iter()
        .map(|&t| times.iter().filter(|&&u| u >= t && u < t + length).count())
        .max()
        .unwrap_or(0)
}

#[tokio::test(start_paused = true)]
async fn a_window_runs_from_the_answer() {
    let limiter = RateLimiter::new([per_second(1)]);
    let start = Instant::now();
    let (_, call) = limiter.acquire().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(call);
    let _ = limiter.acquire().await;
    assert_eq!(start.elapsed(), Duration::from_millis(1300));
}

#[tokio::test(start_paused = true)]
async fn a_full_window_of_calls_in_flight_waits_for_an_answer() {
    let limiter = std::sync::Arc::new(RateLimiter::new([per_second(1)]));
    let (_, call) = limiter.acquire().await;
    let next = tokio::spawn({
        let limiter = limiter.clone();
        async move {
            let start = Instant::now();
            let _ = limiter.acquire().await;
            start.elapsed()
        }
    });
    tokio::time::sleep(Duration::from_secs(7)).await;
    drop(call);
    assert_eq!(next.await.unwrap(), Duration::from_secs(8));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Whatever each request's transit, no window of *arrivals* (what Agora counts)
    /// holds more than the limit: a request arrives between its send and its answer.
    #[test]
    fn no_window_of_arrivals_exceeds_its_limit(
        per_sec in 1u32..4,
        calls in proptest::collection::vec((0u64..800, 0u64..400, 0u64..400), 1..40),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let arrivals = rt.block_on(async {
            let limiter = std::sync::Arc::new(RateLimiter::new([per_second(per_sec)]));
            let arrived = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            let mut tasks = Vec::new();
            for (gap, to_server, back) in calls.clone() {
                tokio::time::sleep(Duration::from_millis(gap)).await;
                let (limiter, arrived) = (limiter.clone(), arrived.clone());
                tasks.push(tokio::spawn(async move {
                    let (_, call) = limiter.acquire().await;
                    tokio::time::sleep(Duration::from_millis(to_server)).await;
                    arrived.lock().unwrap().push(Instant::now());
                    tokio::time::sleep(Duration::from_millis(back)).await;
                    drop(call);
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            arrived.lock().unwrap().clone()
        });
        proptest::prop_assert_eq!(arrivals.len(), calls.len());
        proptest::prop_assert!(busiest(&arrivals, Duration::from_secs(1)) <= per_sec as usize);
    }

    /// Whatever the arrival pattern, no window ever holds more than its limit.
    #[test]
    fn no_window_ever_exceeds_its_limit(
        per_sec in 1u32..6,
        per_minute in 5u32..30,
        gaps_ms in proptest::collection::vec(0u64..1500, 1..60),
        pause_at in proptest::option::of(0usize..60),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let (times, paused) = rt.block_on(async {
            let limiter = std::sync::Arc::new(RateLimiter::new([
                per_second(per_sec),
                WindowSpec { limit: per_minute, length: Duration::from_secs(60) },
            ]));
            let sent = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            let mut tasks = Vec::new();
            let mut paused = None;
            for (i, gap) in gaps_ms.iter().enumerate() {
                tokio::time::sleep(Duration::from_millis(*gap)).await;
                if pause_at == Some(i) {
                    let until = Instant::now() + Duration::from_secs(5);
                    limiter.pause_until(until);
                    paused = Some((Instant::now(), until));
                }
                let (limiter, sent) = (limiter.clone(), sent.clone());
                tasks.push(tokio::spawn(async move {
                    let _answered = limiter.acquire().await;
                    sent.lock().unwrap().push(Instant::now());
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            let times = sent.lock().unwrap().clone();
            (times, paused)
        });
        proptest::prop_assert_eq!(times.len(), gaps_ms.len());
        proptest::prop_assert!(busiest(&times, Duration::from_secs(1)) <= per_sec as usize);
        proptest::prop_assert!(busiest(&times, Duration::from_secs(60)) <= per_minute as usize);
        if let Some((from, until)) = paused {
            proptest::prop_assert!(!times.iter().any(|&t| t > from && t < until), "sent while paused");
        }
    }
}
