//! Probe verdicts against the simulator's real sources over loopback: an RTMP handshake,
//! live and frozen HLS playlists, ranged GETs; and simulated players that fail with
//! their source, as Agora's do (at once, or after their idle timeout).

use std::time::Duration;

use pullkeeper::agora::wire::{CreatePlayer, PlayerStatus};
use pullkeeper::simulator::{SourceLoss, SourceMode};
use pullkeeper::{Prober, Verdict};

use crate::harness::{APP_ID, eventually, start_simulator, start_simulator_with};

fn prober() -> Prober {
    Prober::new(Duration::from_secs(5)).unwrap()
}

#[tokio::test]
async fn rtmp_handshake_up_then_broken_off_when_down() {
    let sim = start_simulator().await;
    let url = sim.rtmp_url("cam").await.unwrap();
    let up = prober().probe(&url).await;
    assert_eq!(up.verdict, Verdict::Up, "{up:?}");
    assert_eq!(up.detail, "RTMP handshake complete", "S2 echoed our C1");
    sim.set_source("cam", SourceMode::Down);
    let down = prober().probe(&url).await;
    assert_eq!(down.verdict, Verdict::Down, "{down:?}");
    sim.set_source("cam", SourceMode::Up);
    assert_eq!(prober().probe(&url).await.verdict, Verdict::Up);
}

#[tokio::test]
async fn refused_connections_are_down() {
    // Bind, learn a free port, and close it again: nothing listens there.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    for url in [
        format!("rtmp://127.0.0.1:{port}/live/x"),
        format!("http://127.0.0.1:{port}/live/x.flv"),
        format!("http://127.0.0.1:{port}/live/x.m3u8"),
    ] {
        let outcome = prober().probe(&url).await;
        assert_eq!(outcome.verdict, Verdict::Down, "{url}: {outcome:?}");
        assert_eq!(outcome.detail, "connection refused");
    }
}

#[tokio::test]
async fn live_hls_is_up_frozen_or_missing_hls_is_down() {
    let sim = start_simulator().await;
    let live = prober().probe(&sim.hls_url("news")).await;
    assert_eq!(live.verdict, Verdict::Up, "{live:?}");
    let master = prober().probe(&sim.hls_master_url("news")).await;
    assert_eq!(master.verdict, Verdict::Up, "{master:?}");
    let vod = prober().probe(&sim.file_url("news", "vod.m3u8")).await;
    assert_eq!(
        (vod.verdict, vod.detail.as_str()),
        (Verdict::Up, "on-demand playlist")
    );

    sim.set_source("news", SourceMode::Frozen);
    let frozen = prober().probe(&sim.hls_url("news")).await;
    assert_eq!(frozen.verdict, Verdict::Down, "{frozen:?}");
    assert!(
        frozen.detail.starts_with("stale live playlist"),
        "{frozen:?}"
    );
    let behind_master = prober().probe(&sim.hls_master_url("news")).await;
    assert_eq!(behind_master.verdict, Verdict::Down, "{behind_master:?}");

    sim.set_source("news", SourceMode::Down);
    let gone = prober().probe(&sim.hls_url("news")).await;
    assert_eq!(
        (gone.verdict, gone.detail.as_str()),
        (Verdict::Down, "HTTP 404")
    );
}

#[tokio::test]
async fn ranged_get_needs_bytes() {
    let sim = start_simulator().await;
    let file = sim.file_url("vod", "movie.mp4");
    let up = prober().probe(&file).await;
    assert_eq!((up.verdict, up.detail.as_str()), (Verdict::Up, "HTTP 206"));
    sim.set_source("vod", SourceMode::Down);
    assert_eq!(prober().probe(&file).await.verdict, Verdict::Down);
}

#[tokio::test]
async fn timeouts_are_unknown() {
    // Accepts and never answers: neither up nor provably down.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let _held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            open.push(s);
        }
    });
    let quick = Prober::new(Duration::from_millis(300)).unwrap();
    for url in [
        format!("rtmp://127.0.0.1:{port}/live/x"),
        format!("http://127.0.0.1:{port}/x.flv"),
    ] {
        let outcome = quick.probe(&url).await;
        assert_eq!(outcome.verdict, Verdict::Unknown, "{url}: {outcome:?}");
    }
}

#[tokio::test]
async fn simulated_players_fail_with_their_source() {
    let sim = start_simulator().await;
    let player = |name: &str, url: String| CreatePlayer {
        stream_url: url,
        channel_name: "c".into(),
        uid: None,
        account: None,
        token: None,
        idle_timeout: None,
        play_ts: None,
        name: Some(name.into()),
    };
    let id = sim.add_foreign_player(APP_ID, player("a", sim.hls_url("src")));
    let status = |id: &str| {
        sim.players(APP_ID)
            .into_iter()
            .find(|p| p.id == id)
            .map(|p| p.status)
    };
    eventually(Duration::from_secs(10), "running", || {
        status(&id) == Some(PlayerStatus::Running)
    })
    .await;
    sim.set_source("src", SourceMode::Down);
    assert_eq!(status(&id), Some(PlayerStatus::Failed));
    let late = sim.add_foreign_player(APP_ID, player("b", sim.hls_url("src")));
    eventually(Duration::from_secs(10), "failed on connect", || {
        status(&late) == Some(PlayerStatus::Failed)
    })
    .await;
    let other = sim.add_foreign_player(APP_ID, player("c", sim.hls_url("elsewhere")));
    eventually(Duration::from_secs(10), "other source unaffected", || {
        status(&other) == Some(PlayerStatus::Running)
    })
    .await;
}

#[tokio::test]
async fn with_source_loss_linger_players_outlive_their_source_until_the_idle_timeout() {
    let sim = start_simulator_with(|c| c.source_loss = SourceLoss::Linger).await;
    let player = |name: &str| CreatePlayer {
        stream_url: sim.hls_url("src"),
        channel_name: "c".into(),
        uid: None,
        account: None,
        token: None,
        idle_timeout: Some(60),
        play_ts: None,
        name: Some(name.into()),
    };
    let (a, b) = (
        sim.add_foreign_player(APP_ID, player("a")),
        sim.add_foreign_player(APP_ID, player("b")),
    );
    let status = |id: &str| {
        sim.players(APP_ID)
            .into_iter()
            .find(|p| p.id == id)
            .map(|p| p.status)
    };
    eventually(Duration::from_secs(10), "running", || {
        status(&a) == Some(PlayerStatus::Running) && status(&b) == Some(PlayerStatus::Running)
    })
    .await;
    sim.set_source("src", SourceMode::Down);
    sim.advance(Duration::from_secs(59));
    assert_eq!(status(&a), Some(PlayerStatus::Running), "still running");
    // Back before the idle timeout: the player carries on.
    sim.set_source("src", SourceMode::Up);
    sim.advance(Duration::from_secs(5));
    assert_eq!(status(&a), Some(PlayerStatus::Running));

    sim.set_source("src", SourceMode::Down);
    sim.advance(Duration::from_secs(59));
    assert_eq!(status(&b), Some(PlayerStatus::Running));
    sim.advance(Duration::from_secs(1));
    eventually(Duration::from_secs(10), "destroyed", || {
        status(&a).is_none() && status(&b).is_none()
    })
    .await;
    let reasons: Vec<_> = sim
        .history()
        .into_iter()
        .map(|h| h.destroy_reason)
        .collect();
    assert_eq!(reasons, vec![Some("Idle Timeout".to_string()); 2]);
}
