//! Shared helpers: a simulator on 127.0.0.1:0, an HTTP client, a tiny NCS receiver.

#![allow(dead_code)] // Not every test module uses every helper.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use pullkeeper::RateLimiter;
use pullkeeper::agora::ApiLimiters;
use pullkeeper::simulator::{SimConfig, SimHandle, SimProject, Simulator};

pub const APP: &str = "app0123456789abcdef";
pub const CUSTOMER_ID: &str = "cust-id";
pub const CUSTOMER_SECRET: &str = "cust-secret";
pub const NCS_SECRET: &str = "ncs-secret";

/// Limiters that never hold a call back, for tests about something else than Agora's rates.
pub fn unlimited_limiters() -> ApiLimiters {
    let unlimited = || RateLimiter::new([]);
    ApiLimiters {
        create_with_name: unlimited(),
        create_without_name: unlimited(),
        delete: unlimited(),
        list: unlimited(),
        list_filtered: unlimited(),
        update: unlimited(),
    }
}

/// One project `APP`, one credential pair, every other setting at its default.
pub fn config() -> SimConfig {
    SimConfig {
        projects: vec![SimProject {
            app_id: APP.into(),
            ncs_secret: NCS_SECRET.into(),
            ncs_url: None,
        }],
        credentials: vec![(CUSTOMER_ID.into(), CUSTOMER_SECRET.into())],
        ..SimConfig::default()
    }
}

pub async fn start(config: SimConfig) -> SimHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    Simulator::start(config, listener)
        .await
        .expect("simulator starts")
}

pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client builds")
}

pub fn basic_auth(id: &str, secret: &str) -> String {
    let raw = format!("{id}:{secret}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// A REST client for `APP` with valid credentials.
pub struct Api {
    pub sim: SimHandle,
    pub http: reqwest::Client,
}

impl Api {
    pub async fn new(config: SimConfig) -> Api {
        Api {
            sim: start(config).await,
            http: client(),
        }
    }

    pub fn players_url(&self, region: &str) -> String {
        format!(
            "{}/{region}/v1/projects/{APP}/cloud-player/players",
            self.sim.base_url()
        )
    }

    pub fn auth(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        req.header("Authorization", basic_auth(CUSTOMER_ID, CUSTOMER_SECRET))
    }

    pub async fn create(&self, body: serde_json::Value) -> reqwest::Response {
        self.auth(self.http.post(self.players_url("na")).json(&body))
            .send()
            .await
            .expect("create answers")
    }

    pub async fn delete(&self, id: &str) -> reqwest::Response {
        let url = format!("{}/{id}", self.players_url("na"));
        self.auth(self.http.delete(url))
            .send()
            .await
            .expect("delete answers")
    }

    pub async fn update(
        &self,
        id: &str,
        query: &str,
        body: serde_json::Value,
    ) -> reqwest::Response {
        let url = format!("{}/{id}{query}", self.players_url("na"));
        self.auth(self.http.patch(url).json(&body))
            .send()
            .await
            .expect("update answers")
    }

    /// List without a region prefix, as documented; `query` starts with `?` or is empty.
    pub async fn list(&self, query: &str) -> reqwest::Response {
        let url = format!(
            "{}/v1/projects/{APP}/cloud-player/players{query}",
            self.sim.base_url()
        );
        self.auth(self.http.get(url))
            .send()
            .await
            .expect("list answers")
    }
}

/// A player body with a uid and an optional name.
pub fn player(channel: &str, uid: u64, name: Option<&str>) -> serde_json::Value {
    let mut p = serde_json::json!({
        "streamUrl": "rtmp://origin.example/live/1",
        "channelName": channel,
        "uid": uid,
    });
    if let Some(n) = name {
        p["name"] = n.into();
    }
    serde_json::json!({ "player": p })
}

/// A received NCS request.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// An NCS receiver on 127.0.0.1:0 that answers every notice with `status`.
pub struct Receiver {
    pub url: String,
    pub received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    pub async fn start(status: StatusCode) -> Receiver {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let sink = received.clone();
        let app = axum::Router::new().route(
            "/ncs",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let sink = sink.clone();
                async move {
                    sink.lock()
                        .expect("receiver lock")
                        .push(Received { headers, body });
                    (status, axum::Json(serde_json::json!({})))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let url = format!(
            "http://{}/ncs",
            listener.local_addr().expect("receiver addr")
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { url, received }
    }

    pub fn all(&self) -> Vec<Received> {
        self.received.lock().expect("receiver lock").clone()
    }

    /// Waits (up to 5 s) until at least `n` notices arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..500 {
            let all = self.all();
            if all.len() >= n {
                return all;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("expected {n} notices, got {:?}", self.all());
    }
}
