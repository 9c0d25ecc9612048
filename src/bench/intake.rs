//! Webhook intake: signed NCS notices per second through the real receiver (signature
//! check, decoding, durable dedupe in the notice log, ordering, hand-off to the
//! controller), against a bare axum handler that answers 200 without work, same
//! generator, same run.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::post;
use tokio::net::TcpListener;

use super::loadgen;
use super::report::{Figure, Limit, ScenarioReport};
use super::rig::{self, Layout, NCS_SECRET, SettingsYaml, TempDir};
use crate::agora::wire::PlayerStatus;
use crate::ncs::notice::{
    EVENT_PLAYER_STATUS, MediaPullPayload, Notice, NoticePlayer, PRODUCT_MEDIA_PULL,
};
use crate::ncs::signature::{HEADER_SHA1, HEADER_SHA256, sign_sha1, sign_sha256};

const CONNECTIONS: usize = 32;

/// A notice body and the signature headers NCS sends with it.
type Signed = (Vec<u8>, Vec<(&'static str, String)>);

/// `n` distinct notices about `players` (status `running`, `lts` rising), signed as NCS
/// signs them, as request bodies with their headers.
fn notices(n: usize, first: usize, players: &[(String, String)]) -> Vec<Signed> {
    (first..first + n)
        .map(|i| {
            let (id, name) = &players[i % players.len()];
            let payload = MediaPullPayload {
                lts: 1_700_000_000_000 + i as u64,
                player: NoticePlayer {
                    id: id.clone(),
                    name: Some(name.clone()),
                    status: Some(PlayerStatus::Running),
                    ..NoticePlayer::default()
                },
                destroy_reason: None,
                fields: Some("player.name,player.channelName,player.id,player.status".into()),
                x_request_id: None,
            };
            let notice = Notice {
                notice_id: uuid::Uuid::new_v4().to_string(),
                product_id: PRODUCT_MEDIA_PULL,
                event_type: EVENT_PLAYER_STATUS,
                notify_ms: 1_700_000_000_000 + i as u64,
                payload: serde_json::to_value(payload).expect("payloads serialize"),
            };
            let body = serde_json::to_vec(&notice).expect("notices serialize");
            let secret = NCS_SECRET.as_bytes();
            let headers = vec![
                (HEADER_SHA256, sign_sha256(secret, &body)),
                (HEADER_SHA1, sign_sha1(secret, &body)),
            ];
            (body, headers)
        })
        .collect()
}

fn requests(addr: std::net::SocketAddr, notices: &[Signed]) -> Arc<Vec<Vec<u8>>> {
    let path = format!("/ncs/{}", Layout::project_id(0));
    Arc::new(
        notices
            .iter()
            .map(|(body, headers)| loadgen::post(addr, &path, headers, body))
            .collect(),
    )
}

pub async fn run(quick: bool) -> anyhow::Result<ScenarioReport> {
    let n = if quick { 2_000 } else { 20_000 };
    let warm = n / 10;
    let layout = Layout {
        projects: 1,
        scenes: 1,
    };
    let dir = TempDir::new("intake")?;
    let sim = rig::simulator(layout, |c| {
        c.connect_delay = Duration::ZERO;
        c.list_lag = Duration::from_secs(1);
    })
    .await?;
    let config = rig::write_config(
        &dir.0,
        layout,
        &sim.base_url(),
        &SettingsYaml {
            reconcile: "poll_interval: 5s, list_lag: 2s",
            limits: "max_players: 50",
            extra: "",
            scene_extra: "failback: non-revertive",
        },
    )?;
    let (app, _store) = rig::start_app(config, &dir.0.join("store")).await?;
    rig::wait_for(
        "both players running",
        Duration::from_secs(60),
        Duration::from_millis(50),
        || rig::running_players(&app) == 2,
    )
    .await?;
    let players: Vec<(String, String)> = sim
        .players(&Layout::app_id(0))
        .into_iter()
        .filter_map(|p| Some((p.id, p.name?)))
        .collect();

    let bare = TcpListener::bind("127.0.0.1:0").await?;
    let bare_addr = bare.local_addr()?;
    let bare_app = axum::Router::new().route("/ncs/{project}", post(|| async { StatusCode::OK }));
    tokio::spawn(async move { axum::serve(bare, bare_app).await });

    let warm_up = notices(warm, 0, &players);
    let measured = notices(n, warm, &players);
    loadgen::run(bare_addr, requests(bare_addr, &warm_up), CONNECTIONS).await?;
    loadgen::run(app.addr(), requests(app.addr(), &warm_up), CONNECTIONS).await?;
    let bare_out = loadgen::run(bare_addr, requests(bare_addr, &measured), CONNECTIONS).await?;
    let accepted_before = outcome(&app, "accepted") + outcome(&app, "stale");
    let passes = || {
        app.metrics
            .reconcile_passes
            .with_label_values(&[&Layout::project_id(0)])
            .get()
    };
    let passes_before = passes();
    let pk_out = loadgen::run(app.addr(), requests(app.addr(), &measured), CONNECTIONS).await?;
    let acknowledged = outcome(&app, "accepted") + outcome(&app, "stale") - accepted_before;
    let passes = passes() - passes_before;

    let mut r = ScenarioReport::new("webhook intake (signed NCS notices, durable dedupe)");
    r.note(format!(
        "{n} distinct signed notices per target, {CONNECTIONS} keep-alive connections, \
         loopback; store on disk ({})",
        dir.0.display()
    ));
    r.push(Figure::new(
        "bare axum handler rate",
        bare_out.rate(),
        "req/s",
    ));
    r.distribution("bare axum handler latency", &bare_out.latencies, None);
    r.push(Figure::new("pullkeeper /ncs rate", pk_out.rate(), "req/s"));
    r.distribution("pullkeeper /ncs latency", &pk_out.latencies, None);
    r.push(
        Figure::new(
            "pullkeeper rate / bare rate",
            pk_out.rate() / bare_out.rate(),
            "",
        )
        .limit(Limit::AtLeast(0.5)),
    );
    r.push(
        Figure::new(
            "notices acknowledged (200)",
            pk_out.statuses.get(&200).copied().unwrap_or(0) as f64,
            "",
        )
        .limit(Limit::AtLeast(n as f64)),
    );
    r.push(
        Figure::new(
            "notices verified, recorded and accepted or ordered",
            acknowledged as f64,
            "",
        )
        .limit(Limit::AtLeast(n as f64)),
    );
    r.push(Figure::new(
        "reconcile passes the notices woke",
        passes as f64,
        "",
    ));
    r.push(
        Figure::new("duplicates reported", outcome(&app, "duplicate") as f64, "")
            .limit(Limit::AtMost(0.0)),
    );
    app.shutdown().await;
    Ok(r)
}

fn outcome(app: &crate::app::App, label: &str) -> u64 {
    app.metrics
        .webhook_notices
        .with_label_values(&[label])
        .get()
}
