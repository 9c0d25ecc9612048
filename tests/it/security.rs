//! Secrets hygiene and the webhook's defences, against the real binary where it matters:
//! every byte pullkeeper writes (logs, `/metrics`, `/v1` answers, webhook answers,
//! `check` output) is searched for the secrets it was given, in plain, base64 and
//! Basic-auth form.

use std::io::Read;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::http::StatusCode;
use base64::Engine;
use pullkeeper::ncs::signature::{HEADER_SHA256, sign_sha256};
use pullkeeper::simulator::{FaultAction, FaultRule, SimConfig, SimHandle, SimProject, Simulator};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{APP_ID, FAST, Running, eventually, one_scene, temp_dir, write_config_full};
use crate::support::Receiver;

const CUSTOMER_ID: &str = "cid-7f3a9c2e";
const CUSTOMER_SECRET: &str = "CSECRET-9d8e7f6a5b4c";
const NCS_SECRET: &str = "NCSSECRET-1a2b3c4d5e";
const HOOK_SECRET: &str = "HOOKSECRET-5e6f7a8b9c";
const ADMIN_TOKEN: &str = "ADMINTOKEN-0f1e2d3c4b";

/// Every form a leaked secret could take.
fn forbidden() -> Vec<String> {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let mut out = Vec::new();
    for s in [
        CUSTOMER_ID,
        CUSTOMER_SECRET,
        NCS_SECRET,
        HOOK_SECRET,
        ADMIN_TOKEN,
    ] {
        out.push(s.to_string());
        out.push(b64(s));
    }
    out.push(b64(&format!("{CUSTOMER_ID}:{CUSTOMER_SECRET}")));
    out
}

fn assert_no_secret(what: &str, text: &str) {
    for s in forbidden() {
        assert!(!text.contains(&s), "{what} contains {s:?}:\n{text}");
    }
}

fn env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("E2E_CUSTOMER_ID", CUSTOMER_ID),
        ("E2E_CUSTOMER_SECRET", CUSTOMER_SECRET),
        ("E2E_NCS_SECRET", NCS_SECRET),
        ("E2E_HOOK_SECRET", HOOK_SECRET),
        ("E2E_ADMIN_TOKEN", ADMIN_TOKEN),
        ("RUST_LOG", "debug"),
    ]
}

async fn simulator() -> SimHandle {
    let mut sim = SimConfig::default();
    sim.projects.push(SimProject {
        app_id: APP_ID.into(),
        ncs_secret: NCS_SECRET.into(),
        ncs_url: None,
    });
    sim.credentials
        .push((CUSTOMER_ID.into(), CUSTOMER_SECRET.into()));
    sim.list_lag = Duration::from_millis(300);
    sim.connect_delay = Duration::from_millis(100);
    Simulator::start(
        sim,
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
    )
    .await
    .unwrap()
}

fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn pullkeeper(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pullkeeper"));
    c.args(args).envs(env()).stdin(Stdio::null());
    c
}

/// Stops the child with SIGTERM, as Kubernetes does, and returns everything it printed.
fn stop(mut child: Child) -> String {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    // Up to 30 s for the graceful shutdown (its grace period is 20 s).
    for _ in 0..600 {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_output_of_a_full_scenario_contains_a_secret() {
    let dir = temp_dir("secrets");
    let sim = simulator().await;
    let hook = Receiver::start(StatusCode::OK).await;
    let extra = format!(
        "app_webhook: {{ url: \"{}\", secret: {{ env: E2E_HOOK_SECRET }} }}\n",
        hook.url
    );
    // The harness loads the file with its own secrets; the binary gets the ones above.
    write_config_full(&dir, &sim, &one_scene("revertive"), &extra, FAST);
    let addr = free_port();
    let settings = dir.join("pullkeeper.yaml");
    let text = std::fs::read_to_string(&settings)
        .unwrap()
        .replace("127.0.0.1:0", &addr.to_string());
    std::fs::write(&settings, text).unwrap();
    let child = pullkeeper(&["run", "--config", settings.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://{addr}");
    sim.set_ncs_url(APP_ID, Some(format!("{base}/ncs/e2e")));
    let http = reqwest::Client::new();
    let mut answers = Vec::new();
    let news_healthy = || async {
        let r = http
            .get(format!("{base}/v1/scenes/news"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .ok()?;
        let v: serde_json::Value = r.json().await.ok()?;
        Some(v["healthy_players"] == 2)
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while news_healthy().await != Some(true) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the binary never converged"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A failover, with API errors (one an authentication refusal) on the way.
    for status in [401, 500, 503] {
        sim.inject(FaultRule {
            method: Some("POST".into()),
            path_contains: "/cloud-player/players".into(),
            count: 1,
            action: FaultAction::Status(status),
        });
    }
    let master = sim
        .players(APP_ID)
        .into_iter()
        .find(|p| p.name.as_deref() == Some("pk_news_m_1"))
        .unwrap();
    sim.fail_player(APP_ID, &master.id);
    eventually(Duration::from_secs(60), "replacement created", || {
        sim.players(APP_ID)
            .iter()
            .any(|p| p.name.as_deref() == Some("pk_news_m_2"))
    })
    .await;

    // Bad webhooks and bad tokens.
    let body =
        br#"{"noticeId":"x","productId":4,"eventType":4,"notifyMs":1,"payload":{}}"#.to_vec();
    let posts = [
        (
            format!("{base}/ncs/e2e"),
            vec![(HEADER_SHA256, "00".to_string())],
            body.clone(),
        ),
        (
            format!("{base}/ncs/e2e"),
            vec![(HEADER_SHA256, sign_sha256(b"wrong", &body))],
            body.clone(),
        ),
        (
            format!("{base}/ncs/e2e"),
            vec![(HEADER_SHA256, sign_sha256(NCS_SECRET.as_bytes(), b"{"))],
            b"{".to_vec(),
        ),
        (format!("{base}/ncs/nope"), vec![], body.clone()),
        (format!("{base}/ncs/e2e"), vec![], vec![b'x'; 70 * 1024]),
        (
            format!("{base}/v1/scenes/news/reports"),
            vec![("authorization", "Bearer wrong".to_string())],
            br#"{"uid":1}"#.to_vec(),
        ),
        (
            format!("{base}/v1/scenes/news/reports"),
            vec![("authorization", format!("Bearer {ADMIN_TOKEN}x"))],
            br#"{"uid":1}"#.to_vec(),
        ),
        (
            format!("{base}/v1/scenes/news/reports"),
            vec![],
            br#"{"uid":1}"#.to_vec(),
        ),
        (
            format!("{base}/v1/scenes/news/reports"),
            vec![("authorization", format!("Bearer {ADMIN_TOKEN}"))],
            b"not json".to_vec(),
        ),
    ];
    for (url, headers, body) in posts {
        let mut req = http.post(&url).body(body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        answers.push(format!(
            "POST {url} -> {status}: {}",
            r.text().await.unwrap()
        ));
        assert!(status.is_client_error(), "{}", answers.last().unwrap());
    }
    for path in ["/v1/scenes", "/v1/scenes/news", "/v1/scenes/nope"] {
        for token in [ADMIN_TOKEN, "wrong"] {
            let r = http
                .get(format!("{base}{path}"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            let status = r.status();
            answers.push(format!(
                "GET {path} -> {status}: {}",
                r.text().await.unwrap()
            ));
            if token != ADMIN_TOKEN {
                assert_eq!(
                    status,
                    StatusCode::UNAUTHORIZED,
                    "{}",
                    answers.last().unwrap()
                );
            }
        }
    }
    for path in ["/metrics", "/healthz", "/readyz"] {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        answers.push(format!(
            "GET {path} -> {}: {}",
            r.status(),
            r.text().await.unwrap()
        ));
    }
    let logs = stop(child);
    assert!(
        logs.contains("player created"),
        "debug logs were captured:\n{logs}"
    );
    assert!(logs.contains("401"), "the refused call was logged:\n{logs}");
    assert_no_secret("the logs", &logs);
    for a in &answers {
        assert_no_secret("an HTTP answer", a);
    }
    // The app webhook is signed with the secret but never carries it.
    for received in hook.all() {
        assert_no_secret("an app webhook", &String::from_utf8_lossy(&received.body));
    }

    // `check` on broken settings: the customer secret written inline, as people do.
    let text = std::fs::read_to_string(&settings)
        .unwrap()
        .replace("{ env: E2E_CUSTOMER_SECRET }", CUSTOMER_SECRET);
    std::fs::write(&settings, text).unwrap();
    let out = pullkeeper(&["check", "--config", settings.to_str().unwrap()])
        .output()
        .unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(64), "{printed}");
    assert!(
        printed.contains("customer_secret: secrets must come from env or file"),
        "{printed}"
    );
    assert_no_secret("check", &printed);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A body with no length, sent in chunks for ever, is refused once it passes the 64 KiB
/// limit: the answer comes while the sender has written only a little of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_chunked_body_is_cut_off_at_the_limit() {
    let r = Running::start("chunked", &one_scene("revertive"), "", FAST).await;
    let mut stream = tokio::net::TcpStream::connect(r.app.addr()).await.unwrap();
    let head = format!(
        "POST /ncs/e2e HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n",
        r.app.addr()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        let chunk = format!("4000\r\n{}\r\n", "x".repeat(0x4000));
        let mut sent = 0usize;
        // 1 GiB if nobody stops it.
        while sent < 1 << 30 {
            if wr.write_all(chunk.as_bytes()).await.is_err() {
                break;
            }
            sent += 0x4000;
        }
        sent
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(30), async {
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = rd.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    assert!(read.is_ok(), "no answer within 30 s");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    drop(rd);
    let sent = tokio::time::timeout(Duration::from_secs(30), writer)
        .await
        .expect("the sender was stopped")
        .unwrap();
    assert!(
        sent < 64 << 20,
        "{sent} bytes were accepted before the connection closed"
    );
    r.app.shutdown().await;
    let _ = std::fs::remove_dir_all(&r.dir);
}
