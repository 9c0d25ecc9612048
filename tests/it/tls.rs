//! HTTPS served directly (`run --tls-cert/--tls-key`): the simulator's NCS delivers over
//! HTTPS to a certificate generated here with the openssl CLI, a replaced certificate
//! is served without a restart, and one connection carries many requests and survives
//! idle time, as NCS recommends (docs/agora-api.md §2.1), handshakes that never finish
//! hold their places among the listener's connections until they time out, and the
//! other replicas get the HTTP/2 they ask for.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use pullkeeper::App;
use pullkeeper::config::TlsFiles;
use pullkeeper::simulator::DeliveryOutcome;
use pullkeeper::store::Store;
use pullkeeper::{Listening, serve, serve_bounded};
use pullkeeper::{ReloadingCert, TlsListener};
use rustls::pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::harness::{
    ADMIN_TOKEN, APP_ID, FAST, eventually, one_scene, start_app, start_simulator_with, temp_dir,
    write_config_full,
};

/// A self-signed certificate for localhost and 127.0.0.1: `(cert.pem, key.pem)`.
fn self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let cert = dir.join(format!("{name}-cert.pem"));
    let key = dir.join(format!("{name}-key.pem"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
        ])
        .arg(format!("/CN={name}"))
        // A leaf, not a CA: webpki refuses a CA certificate as the server's own.
        .args([
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-addext",
            "extendedKeyUsage=serverAuth",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("the openssl CLI is installed (test-tools.md: preinstalled on CI)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// A fresh client (so a fresh connection and handshake) that trusts only `ca`.
fn trusting(ca: &Path) -> reqwest::Client {
    pullkeeper::install_crypto_provider();
    let pem = std::fs::read(ca).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Whether a client trusting only `ca` completes a request to `/healthz`.
async fn served_with(app: &App, ca: &Path) -> bool {
    let url = format!("https://127.0.0.1:{}/healthz", app.addr().port());
    trusting(ca)
        .get(url)
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
}

fn accepted(app: &App) -> u64 {
    app.metrics
        .render()
        .lines()
        .find_map(|l| {
            l.strip_prefix(r#"pullkeeper_webhook_notices_total{outcome="accepted"} "#)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ncs_delivers_over_https_and_a_replaced_certificate_is_served() {
    let dir = temp_dir("tls");
    let (a_cert, a_key) = self_signed(&dir, "first");
    let (b_cert, b_key) = self_signed(&dir, "second");
    let live_cert = dir.join("tls.crt");
    let live_key = dir.join("tls.key");
    std::fs::copy(&a_cert, &live_cert).unwrap();
    std::fs::copy(&a_key, &live_key).unwrap();
    let trusted = vec![a_cert.clone(), b_cert.clone()];
    let sim = start_simulator_with(|c| c.ncs_ca_files = trusted).await;
    let mut config = write_config_full(&dir, &sim, &one_scene("revertive"), "", FAST);
    config.settings.server.tls = Some(TlsFiles {
        cert: live_cert.clone(),
        key: live_key.clone(),
        reload_every: Duration::from_millis(100),
    });
    let app = start_app(config, Store::temporary().unwrap()).await;
    let base = format!("https://127.0.0.1:{}", app.addr().port());
    sim.set_ncs_url(APP_ID, Some(format!("{base}/ncs/e2e")));

    eventually(Duration::from_secs(30), "both players running", || {
        app.board
            .get("news")
            .is_some_and(|s| s.healthy_players == 2)
    })
    .await;
    eventually(
        Duration::from_secs(20),
        "a notice delivered over HTTPS",
        || accepted(&app) >= 1,
    )
    .await;
    assert!(
        sim.notices_sent()
            .iter()
            .any(|d| d.outcome == DeliveryOutcome::Delivered)
    );
    let scenes = trusting(&a_cert)
        .get(format!("{base}/v1/scenes"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(scenes.status(), 200);
    assert!(served_with(&app, &a_cert).await);
    assert!(!served_with(&app, &b_cert).await);
    let plain = reqwest::get(format!("http://127.0.0.1:{}/healthz", app.addr().port())).await;
    assert!(plain.is_err(), "plain HTTP must not be answered: {plain:?}");

    // A renewal writes the certificate, then the key; the half-written pair in between
    // is refused and the old certificate keeps serving.
    std::fs::copy(&b_cert, &live_cert).unwrap();
    std::fs::copy(&b_key, &live_key).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !served_with(&app, &b_cert).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "new certificate never served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!served_with(&app, &a_cert).await);

    let before = accepted(&app);
    let master = sim
        .players(APP_ID)
        .into_iter()
        .find(|p| p.name.as_deref() == Some("pk_news_m_1"))
        .unwrap();
    assert!(sim.fail_player(APP_ID, &master.id));
    eventually(
        Duration::from_secs(20),
        "a notice delivered with the new certificate",
        || accepted(&app) > before,
    )
    .await;
    app.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sends `GET /healthz` on `stream` and reads the whole answer.
async fn healthz<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: &mut S,
) -> String {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let mut chunk = [0u8; 1024];
    while !answer.ends_with(b"\r\n\r\nok\n") {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(
            n > 0,
            "connection closed after: {}",
            String::from_utf8_lossy(&answer)
        );
        answer.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8(answer).unwrap()
}

/// A TLS listener on a loopback port with a fresh self-signed certificate for
/// `localhost`, its address, and the certificate's file (for a client to trust).
async fn tls_listener(dir: &Path, tag: &str) -> (TlsListener, SocketAddr, PathBuf) {
    let (cert, key) = self_signed(dir, tag);
    pullkeeper::install_crypto_provider();
    let reloading = ReloadingCert::load(TlsFiles {
        cert: cert.clone(),
        key,
        reload_every: Duration::from_secs(10),
    })
    .unwrap();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    (TlsListener::new(tcp, reloading.server_config()), addr, cert)
}

#[tokio::test]
async fn one_https_connection_carries_many_requests_and_outlives_ten_idle_seconds() {
    let dir = temp_dir("tls-keepalive");
    let (listener, addr, cert) = tls_listener(&dir, "keepalive").await;
    let router = Router::new().route("/healthz", get(|| async { "ok\n" }));
    let stop = CancellationToken::new();
    tokio::spawn(serve(Listening::Tls(listener), router, stop.clone()));

    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(&cert).unwrap();
    roots.add_parsable_certificates(
        rustls::pki_types::CertificateDer::pem_slice_iter(&pem).map(Result::unwrap),
    );
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(client))
        .connect(name, tcp)
        .await
        .unwrap();

    for i in 0..150 {
        let answer = healthz(&mut tls).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "request {i}: {answer}");
        assert!(
            !answer.to_ascii_lowercase().contains("connection: close"),
            "{answer}"
        );
    }
    // Idle on the paused clock: any server-side timer would fire here.
    tokio::time::pause();
    tokio::time::sleep(Duration::from_secs(15)).await;
    tokio::time::resume();
    assert!(healthz(&mut tls).await.starts_with("HTTP/1.1 200"));
    stop.cancel();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The other replicas ask for HTTP/2 only (one connection carries all they send): the
/// TLS listener agrees to it, while a client offering both still gets HTTP/1.1.
#[tokio::test]
async fn replicas_get_http2_over_tls_and_other_clients_http1() {
    let dir = temp_dir("tls-h2");
    let (listener, addr, cert) = tls_listener(&dir, "h2").await;
    let router = Router::new().route("/healthz", get(|| async { "ok\n" }));
    let stop = CancellationToken::new();
    tokio::spawn(serve(Listening::Tls(listener), router, stop.clone()));
    let pem = std::fs::read(&cert).unwrap();
    let url = format!("https://localhost:{}/healthz", addr.port());
    for (h2_only, expected) in [
        (true, reqwest::Version::HTTP_2),
        (false, reqwest::Version::HTTP_11),
    ] {
        let mut client = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
            .resolve("localhost", addr);
        if h2_only {
            client = client.http2_prior_knowledge();
        }
        let answer = client.build().unwrap().get(&url).send().await.unwrap();
        assert_eq!(answer.version(), expected);
        assert_eq!(answer.text().await.unwrap(), "ok\n");
    }
    stop.cancel();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_handshakes_count_against_the_bound_until_they_time_out() {
    const BOUND: usize = 2;
    const HANDSHAKE: Duration = Duration::from_secs(1);
    let dir = temp_dir("tls-stalled");
    let (listener, addr, cert) = tls_listener(&dir, "stalled").await;
    let listener = listener.with_handshake_timeout(HANDSHAKE);
    let router = Router::new().route("/healthz", get(|| async { "ok\n" }));
    let stop = CancellationToken::new();
    tokio::spawn(serve_bounded(
        Listening::Tls(listener),
        router,
        stop.clone(),
        BOUND,
    ));

    // A burst of handshakes that never start: TCP connections that send nothing, one
    // more than the bound.
    let started = tokio::time::Instant::now();
    let mut stalled = Vec::new();
    for _ in 0..=BOUND {
        stalled.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    let url = format!("https://127.0.0.1:{}/healthz", addr.port());
    let client = trusting(&cert);
    let normal = tokio::spawn(async move { client.get(url).send().await });
    // While the stalled connections hold every place, the normal client waits.
    tokio::time::sleep(HANDSHAKE / 2).await;
    assert!(
        !normal.is_finished(),
        "a client was served beyond the bound of {BOUND}"
    );
    // The first stalled handshakes time out and free their places for it.
    let answer = tokio::time::timeout(Duration::from_secs(10), normal)
        .await
        .expect("the normal client is served once a stalled one timed out")
        .unwrap()
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert!(started.elapsed() >= HANDSHAKE, "{:?}", started.elapsed());
    // The server closed the stalled connections that timed out.
    for mut silent in stalled.into_iter().take(BOUND) {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut byte))
            .await
            .expect("a timed-out handshake's connection is closed");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    }
    stop.cancel();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_half_written_renewal_is_refused_until_the_key_matches() {
    let dir = temp_dir("tls-half");
    let (a_cert, a_key) = self_signed(&dir, "old");
    let (b_cert, b_key) = self_signed(&dir, "new");
    let files = TlsFiles {
        cert: dir.join("tls.crt"),
        key: dir.join("tls.key"),
        reload_every: Duration::from_secs(10),
    };
    std::fs::copy(&a_cert, &files.cert).unwrap();
    std::fs::copy(&a_key, &files.key).unwrap();
    let reloading = ReloadingCert::load(files.clone()).unwrap();
    assert!(
        !reloading.reload().unwrap(),
        "unchanged files change nothing"
    );
    std::fs::copy(&b_cert, &files.cert).unwrap();
    let err = reloading.reload().unwrap_err().to_string();
    assert!(err.contains("does not fit the certificate"), "{err}");
    assert!(
        !reloading.reload().unwrap(),
        "a refused pair is reported once"
    );
    std::fs::copy(&b_key, &files.key).unwrap();
    assert!(reloading.reload().unwrap());
    std::fs::write(&files.cert, "not a certificate").unwrap();
    let err = reloading.reload().unwrap_err().to_string();
    assert!(err.contains("holds no PEM certificate"), "{err}");
    let missing = ReloadingCert::load(TlsFiles {
        cert: dir.join("nope.crt"),
        ..files
    })
    .unwrap_err()
    .to_string();
    assert!(missing.contains("nope.crt"), "{missing}");
    let _ = std::fs::remove_dir_all(&dir);
}
