//! Talking to the other replicas (etcd): each knows only the projects it leads, and a
//! request may reach any of them.
//!
//! NCS sends every notice to whichever replica the Service picks, and only the leader
//! may record and act on it. The receiving replica has checked the sender (the address guard) and the signature;
//! it then sends the request on unchanged (the leader checks the signature again, with
//! the same secret) and answers NCS with the leader's answer, so a 200 still means the
//! notice is durable. It adds itself to `X-Forwarded-For` like any proxy: with the
//! address guard on, the replicas' network must be among its trusted proxies. One hop
//! only: a replica that is handed a notice for a project it does not lead answers 503,
//! and NCS resends once the leader keys have settled.

use std::net::IpAddr;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

/// Marks a request handed on by a replica (its value: that replica's name): answered
/// from what the receiver itself leads, never handed on again.
pub const HANDED_OVER: &str = "x-pullkeeper-handed-over";

/// NCS wants an answer within 10 s; the leader answers in milliseconds when well.
const TIMEOUT: Duration = Duration::from_secs(5);

/// What travels with the body: the signatures and the content type.
const KEPT: [&str; 3] = ["content-type", "agora-signature", "agora-signature-v2"];

/// An HTTP client for the other replicas.
///
/// HTTP/2 from the first byte, so everything this replica sends another travels on one
/// connection. Over HTTP/1.1 each notice handed over in a burst took a connection of
/// its own at the leader, out of the same 1,024 its listener allows everyone: three
/// replicas converging 1,000 projects filled one another's listeners with notices each
/// waiting to hand over to a replica whose listener was full of the same, and every
/// listener stayed full for minutes (`bench scaleout`).
pub struct Peers {
    http: reqwest::Client,
    replica: String,
}

impl Peers {
    pub fn new(replica: &str) -> Result<Peers, reqwest::Error> {
        use rustls_platform_verifier::ConfigVerifierExt;
        crate::crypto::install_provider();
        let mut builder = reqwest::Client::builder()
            .http2_prior_knowledge()
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(1));
        if let Ok(tls) = rustls::ClientConfig::with_platform_verifier() {
            builder = builder.tls_backend_preconfigured(tls);
        }
        Ok(Peers {
            http: builder.build()?,
            replica: replica.to_string(),
        })
    }

    /// Sends the notice to the leader at `leader` (its advertised address) and returns
    /// its answer, or `None` when it could not be reached.
    pub async fn hand_over_notice(
        &self,
        leader: &str,
        project: &str,
        headers: &HeaderMap,
        body: Bytes,
        sender: Option<IpAddr>,
    ) -> Option<(StatusCode, Bytes)> {
        let mut request = self
            .http
            .post(format!("{leader}/ncs/{project}"))
            .header(HANDED_OVER, &self.replica)
            .body(body);
        for name in KEPT {
            let name = HeaderName::from_static(name);
            for value in headers.get_all(&name) {
                request = request.header(&name, value);
            }
        }
        let mut chain: Vec<String> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect();
        chain.extend(sender.map(|ip| ip.to_string()));
        if !chain.is_empty() {
            request = request.header("x-forwarded-for", chain.join(", "));
        }
        match request.send().await {
            Ok(answer) => {
                let status = answer.status();
                match answer.bytes().await {
                    Ok(body) => Some((status, body)),
                    Err(e) => {
                        tracing::warn!(project, leader, error = %e, "NCS notice handed to the leader; its answer was cut off");
                        None
                    }
                }
            }
            Err(e) => {
                tracing::warn!(project, leader, error = %e, "cannot hand an NCS notice to the project's leader");
                None
            }
        }
    }

    /// The scenes of the projects the replica at `address` leads (`GET /v1/scenes` with
    /// the caller's credentials), or `None` when it could not be asked.
    pub async fn scenes(
        &self,
        address: &str,
        authorization: Option<&HeaderValue>,
    ) -> Option<Vec<serde_json::Value>> {
        self.read(address, "/v1/scenes", authorization).await?
    }

    /// One scene, if the replica at `address` publishes it: `Some(None)` when it does
    /// not, `None` when it could not be asked. `name` must be a scene name as the scenes
    /// file allows them (`[a-z0-9-]`), which needs no escaping in a path.
    pub async fn scene(
        &self,
        address: &str,
        name: &str,
        authorization: Option<&HeaderValue>,
    ) -> Option<Option<serde_json::Value>> {
        self.read(address, &format!("/v1/scenes/{name}"), authorization)
            .await
    }

    /// Sends a request about a project `address` leads there, with the caller's
    /// credentials and content type, and returns the answer's status, content type and
    /// body; `None` when it could not be asked.
    pub async fn relay(
        &self,
        address: &str,
        method: &axum::http::Method,
        path_and_query: &str,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Option<(StatusCode, Option<HeaderValue>, Bytes)> {
        let mut request = self
            .http
            .request(method.clone(), format!("{address}{path_and_query}"))
            .header(HANDED_OVER, &self.replica)
            .body(body);
        for name in ["authorization", "content-type"] {
            if let Some(value) = headers.get(name) {
                request = request.header(name, value);
            }
        }
        let answer = match request.send().await {
            Ok(answer) => answer,
            Err(e) => {
                tracing::warn!(replica = address, error = %e, "cannot pass a request to the project's leader");
                return None;
            }
        };
        let status = answer.status();
        let content_type = answer.headers().get("content-type").cloned();
        match answer.bytes().await {
            Ok(body) => Some((status, content_type, body)),
            Err(e) => {
                tracing::warn!(replica = address, error = %e, "the leader's answer was cut off");
                None
            }
        }
    }

    /// `GET {address}{path}` handed over: `Some(None)` for a 404.
    async fn read<T: serde::de::DeserializeOwned>(
        &self,
        address: &str,
        path: &str,
        authorization: Option<&HeaderValue>,
    ) -> Option<Option<T>> {
        let mut request = self
            .http
            .get(format!("{address}{path}"))
            .header(HANDED_OVER, &self.replica);
        if let Some(auth) = authorization {
            request = request.header("authorization", auth);
        }
        let answer = match request.send().await {
            Ok(a) if a.status() == StatusCode::NOT_FOUND => return Some(None),
            Ok(a) => a.error_for_status(),
            Err(e) => Err(e),
        };
        let answer = match answer {
            Ok(answer) => answer,
            Err(e) => {
                tracing::warn!(replica = address, error = %e, "cannot read what another replica leads");
                return None;
            }
        };
        match answer.json().await {
            Ok(value) => Some(Some(value)),
            Err(e) => {
                tracing::warn!(replica = address, error = %e, "another replica's answer is unreadable");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::Router;
    use axum::routing::get;
    use tokio::sync::Barrier;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::http::serve::{Listening, serve_bounded};

    /// Twenty requests answered only once all twenty are in, by a replica that serves
    /// one connection at a time: possible only if they share one connection.
    #[tokio::test]
    async fn requests_to_another_replica_share_one_connection() {
        const AT_ONCE: usize = 20;
        let all_in = Arc::new(Barrier::new(AT_ONCE));
        let router = Router::new().route(
            "/v1/scenes/{name}",
            get(move || {
                let all_in = all_in.clone();
                async move {
                    all_in.wait().await;
                    axum::Json(serde_json::json!({ "name": "news" }))
                }
            }),
        );
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", tcp.local_addr().unwrap());
        let stop = CancellationToken::new();
        tokio::spawn(serve_bounded(
            Listening::Plain(tcp),
            router,
            stop.clone(),
            1,
        ));

        let peers = Peers::new("a").unwrap();
        let asks = (0..AT_ONCE).map(|_| peers.scene(&address, "news", None));
        let answers = futures_util::future::join_all(asks).await;
        for answer in answers {
            assert_eq!(answer, Some(Some(serde_json::json!({ "name": "news" }))));
        }
        stop.cancel();
    }
}
