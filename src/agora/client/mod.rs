//! The Media Pull REST client: Create, Delete, List (paginated) and Update
//! (docs/agora-api.md §1.2–§1.7).
//!
//! Every call first waits for its API's rate limiter, so pullkeeper itself never sends
//! more than Agora allows; each request carries a fresh `X-Request-ID` so a failure can be
//! traced in Agora's logs. Retry policy lives above this layer: a call here is one attempt.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, RequestBuilder};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::domains::WAITS;
use super::error::{ApiError, Op};
use super::wire::limits::PAGE_SIZE_MAX;
use super::wire::{
    CreatePlayer, CreateRequest, CreateResponse, CreatedPlayer, ListResponse, ListedPlayer, Region,
    UpdatePlayer, UpdateRequest,
};
use crate::limits::{RateLimiter, WindowSpec};

mod config;
mod failure;
mod in_flight;
mod ncs_ip;
mod refusal;
mod transport;

use failure::transport_error;

pub use config::{ApiLimiters, ClientConfig, Endpoint};
pub use in_flight::IN_FLIGHT_PER_HOST;
pub use ncs_ip::{NCS_IP_PATHS, NcsIps};
pub use transport::{Transport, TransportError, Transports, transport};

/// Longest pause a `Retry-After` can impose. Agora documents none; a larger value is a
/// broken answer, and honouring it would stop failovers (or overflow the clock).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// Answer to a Create.
#[derive(Debug, Clone, PartialEq)]
pub enum CreateOutcome {
    Created(CreatedPlayer),
    /// 409: a player with this name exists; `id` is from `X-Resource-ID` (§1.5).
    AlreadyExists {
        id: String,
    },
}

/// Observer of every finished call, for metrics: op, outcome label, latency.
pub type CallObserver = dyn Fn(Op, &'static str, Duration) + Send + Sync;

/// Observer of the time each call waited for its rate limiter, for metrics.
pub type WaitObserver = dyn Fn(Op, Duration) + Send + Sync;

/// Observer of domain switches, for metrics.
pub type SwitchObserver = dyn Fn() + Send + Sync;

/// Says whether this process may call Agora for the client's project now: false once
/// another replica may be leading it. Agora checks no fencing token, so the check is
/// made right before each request goes out.
pub type Fence = dyn Fn() -> bool + Send + Sync;

pub struct MediaPullClient {
    http: Transport,
    /// Bound on each whole request (the transport may be shared, so it is set per request).
    timeout: Duration,
    endpoint: Endpoint,
    app_id: String,
    /// The `Authorization` value, marked sensitive so it never shows in debug output.
    auth: HeaderValue,
    limiters: ApiLimiters,
    /// Agora documents no limit for the NCS IP query (called about once a day); one
    /// per second keeps a retry loop from ever hammering it.
    ncs_ip_limiter: RateLimiter,
    observer: Option<Box<CallObserver>>,
    on_switch: Option<Box<SwitchObserver>>,
    on_wait: Option<Box<WaitObserver>>,
    /// Once cancelled, calls still waiting for their turn are not sent (shutdown).
    stop: CancellationToken,
    fence: Option<Arc<Fence>>,
    /// `pullkeeper/{version}`, and the replica once named: Agora's request logs (and the
    /// simulator's) tell replicas apart by it.
    user_agent: HeaderValue,
}

impl std::fmt::Debug for MediaPullClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaPullClient")
            .field("domain", &self.domain())
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

impl MediaPullClient {
    /// A client with a transport of its own.
    pub fn new(config: ClientConfig) -> Result<Self, reqwest::Error> {
        let http = transport(config.timeout, &config.endpoint.overrides())?;
        Ok(Self::with_transport(config, http))
    }

    /// A client on `http`, which may be shared with other projects' clients (see
    /// [`Transports`]); it must resolve the endpoint's name overrides.
    pub fn with_transport(config: ClientConfig, http: Transport) -> Self {
        let credentials = format!(
            "{}:{}",
            config.customer_id.expose_secret(),
            config.customer_secret.expose_secret()
        );
        let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
        let mut auth = HeaderValue::from_str(&format!("Basic {encoded}"))
            .expect("base64 is a valid header value");
        auth.set_sensitive(true);
        MediaPullClient {
            http,
            timeout: config.timeout,
            endpoint: match config.endpoint {
                Endpoint::Fixed(url) => Endpoint::Fixed(url.trim_end_matches('/').to_string()),
                other => other,
            },
            app_id: config.app_id,
            auth,
            limiters: config.limiters,
            ncs_ip_limiter: RateLimiter::new([WindowSpec {
                limit: 1,
                length: Duration::from_secs(1),
            }]),
            observer: None,
            on_switch: None,
            on_wait: None,
            stop: CancellationToken::new(),
            fence: None,
            user_agent: HeaderValue::from_static(concat!("pullkeeper/", env!("CARGO_PKG_VERSION"))),
        }
    }

    /// Stops sending once `stop` is cancelled: a call waiting for the rate limiter or
    /// for a fallback domain ends with [`ApiError::Stopped`]; a call already sent runs
    /// to its answer or timeout.
    pub fn with_stop(mut self, stop: CancellationToken) -> Self {
        self.stop = stop;
        self
    }

    /// Sends nothing but the NCS address query while `fence` says no: such a call ends
    /// with [`ApiError::Stopped`].
    pub fn with_fence(mut self, fence: Arc<Fence>) -> Self {
        self.fence = Some(fence);
        self
    }

    /// Names `replica` in the `User-Agent` of every request (ignored if it cannot be a
    /// header value).
    pub fn with_replica(mut self, replica: &str) -> Self {
        let agent = format!("pullkeeper/{} ({replica})", env!("CARGO_PKG_VERSION"));
        if let Ok(value) = HeaderValue::from_str(&agent) {
            self.user_agent = value;
        }
        self
    }

    /// Reports every switch of API domain to `observer` (metrics).
    pub fn with_switch_observer(mut self, observer: Box<SwitchObserver>) -> Self {
        self.on_switch = Some(observer);
        self
    }

    /// Reports every rate-limiter wait to `observer` (metrics).
    pub fn with_wait_observer(mut self, observer: Box<WaitObserver>) -> Self {
        self.on_wait = Some(observer);
        self
    }

    /// The rate limiters of the project's APIs.
    pub fn limiters(&self) -> &ApiLimiters {
        &self.limiters
    }

    /// The domain requests currently start on (the base URL when fixed).
    pub fn domain(&self) -> String {
        match &self.endpoint {
            Endpoint::Fixed(url) => url.clone(),
            Endpoint::Domains { pool, .. } => pool.current(),
        }
    }

    /// Reports every finished call to `observer` (metrics).
    pub fn with_observer(mut self, observer: Box<CallObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// The players path, appended to whichever base URL a request goes to.
    fn players_path(&self, region: Option<Region>) -> String {
        match region {
            Some(r) => format!("/{}/v1/projects/{}/cloud-player/players", r, self.app_id),
            None => format!("/v1/projects/{}/cloud-player/players", self.app_id),
        }
    }

    /// Creates a player. A 409 is not an error here: it names the player that already
    /// holds the name, which is how a lost Create answer is recovered (§1.5).
    ///
    /// `rank` orders creates waiting for the rate limit: higher goes first.
    pub async fn create(
        &self,
        region: Region,
        player: CreatePlayer,
        rank: i64,
    ) -> Result<CreateOutcome, ApiError> {
        let limiter = if player.name.is_some() {
            &self.limiters.create_with_name
        } else {
            &self.limiters.create_without_name
        };
        let path = self.players_path(Some(region));
        let body = CreateRequest { player };
        let make = |base: &str| {
            self.request(Method::POST, &format!("{base}{path}"))
                .json(&body)
        };
        match self.send(Op::Create, (limiter, rank), &make).await {
            Ok((body, request_id)) => {
                let created: CreateResponse = decode(Op::Create, &body, &request_id)?;
                Ok(CreateOutcome::Created(created.player))
            }
            Err(ApiError::Status { op, refusal }) if refusal.status == 409 => {
                match refusal.resource_id.clone() {
                    Some(id) if !id.is_empty() => Ok(CreateOutcome::AlreadyExists { id }),
                    _ => Err(ApiError::Status { op, refusal }),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Deletes a player. 404 comes back as an error; callers that only want it gone
    /// treat `ErrorClass::NotFound` as done.
    pub async fn delete(&self, region: Region, id: &str) -> Result<(), ApiError> {
        let path = format!("{}/{}", self.players_path(Some(region)), id);
        self.send(Op::Delete, (&self.limiters.delete, 0), &|base| {
            self.request(Method::DELETE, &format!("{base}{path}"))
        })
        .await
        .map(|_| ())
    }

    /// Updates a live player in place. `sequence` must grow strictly per player (§1.7).
    pub async fn update(
        &self,
        region: Region,
        id: &str,
        sequence: u64,
        player: UpdatePlayer,
    ) -> Result<(), ApiError> {
        let path = format!("{}/{}", self.players_path(Some(region)), id);
        let body = UpdateRequest { player };
        self.send(Op::Update, (&self.limiters.update, 0), &|base| {
            self.request(Method::PATCH, &format!("{base}{path}"))
                .query(&[("sequence", sequence)])
                .json(&body)
        })
        .await
        .map(|_| ())
    }

    /// Lists every player of the project, following `nextPageToken` to the end; with
    /// `channel`, only that channel's (the filtered List has its own, lower limits).
    /// Pages are as large as Agora allows, so a project's 50 players take one call.
    pub async fn list_all(&self, channel: Option<&str>) -> Result<Vec<ListedPlayer>, ApiError> {
        self.list_pages(channel, PAGE_SIZE_MAX).await
    }

    /// [`list_all`](Self::list_all) with a chosen page size.
    pub async fn list_pages(
        &self,
        channel: Option<&str>,
        page_size: usize,
    ) -> Result<Vec<ListedPlayer>, ApiError> {
        let mut players = Vec::new();
        let mut token: Option<String> = None;
        let mut seen = std::collections::HashSet::new();
        loop {
            let page = self.list_page(channel, token.as_deref(), page_size).await?;
            let Some(next) = page.next_token().map(str::to_string) else {
                players.extend(page.players);
                return Ok(players);
            };
            players.extend(page.players);
            // A token seen before would loop forever, and what was read so far may be
            // incomplete: a failed List, never a complete one missing players.
            if !seen.insert(next.clone()) {
                return Err(ApiError::Decode {
                    op: Op::List,
                    detail: "the page tokens repeat".into(),
                    request_id: "-".into(),
                });
            }
            token = Some(next);
        }
    }

    /// One List page.
    pub async fn list_page(
        &self,
        channel: Option<&str>,
        page_token: Option<&str>,
        page_size: usize,
    ) -> Result<ListResponse, ApiError> {
        let limiter = if channel.is_some() {
            &self.limiters.list_filtered
        } else {
            &self.limiters.list
        };
        let mut query: Vec<(&str, String)> = vec![("pageSize", page_size.to_string())];
        if let Some(c) = channel {
            query.push(("filter", format!("channelName eq {c}")));
        }
        if let Some(t) = page_token {
            query.push(("pageToken", t.to_string()));
        }
        let path = self.players_path(None);
        let (body, request_id) = self
            .send(Op::List, (limiter, 0), &|base| {
                self.request(Method::GET, &format!("{base}{path}"))
                    .query(&query)
            })
            .await?;
        decode(Op::List, &body, &request_id)
    }

    /// One request, on the fixed endpoint or walking Agora's domains as documented when
    /// the request gets no answer at all. An HTTP answer, whatever its status, is an
    /// answer: the domain works. Retrying a Create elsewhere is safe because a second
    /// Create with the same name gets a 409 naming the first player.
    async fn send(
        &self,
        op: Op,
        limiter: (&RateLimiter, i64),
        make: &(dyn Fn(&str) -> RequestBuilder + Sync),
    ) -> Result<(Bytes, String), ApiError> {
        let (scheme, pool) = match &self.endpoint {
            Endpoint::Fixed(base) => return self.attempt(op, limiter, make(base)).await,
            Endpoint::Domains { scheme, pool, .. } => (scheme, pool),
        };
        let first = pool.current();
        let mut result = self
            .attempt(op, limiter, make(&format!("{scheme}://{first}")))
            .await;
        let kind = match &result {
            Err(ApiError::Transport { kind, .. }) => *kind,
            _ => return result,
        };
        for (wait, domain) in WAITS.iter().zip(pool.domains.fallbacks(&first, kind)) {
            if let Err(e) = &result {
                tracing::warn!(api = op.as_str(), error = %e, next = %domain, wait_ms = wait.as_millis() as u64,
                    "no answer from the API domain; retrying");
            }
            tokio::select! {
                _ = self.stop.cancelled() => return Err(ApiError::Stopped { op }),
                _ = tokio::time::sleep(*wait) => {}
            }
            result = self
                .attempt(op, limiter, make(&format!("{scheme}://{domain}")))
                .await;
            if !matches!(result, Err(ApiError::Transport { .. })) {
                if pool.answered(&domain)
                    && let Some(observe) = &self.on_switch
                {
                    observe();
                }
                return result;
            }
        }
        result
    }

    fn request(&self, method: Method, url: &str) -> RequestBuilder {
        let mut headers = HeaderMap::new();
        headers.insert(reqwest::header::AUTHORIZATION, self.auth.clone());
        headers.insert(reqwest::header::USER_AGENT, self.user_agent.clone());
        self.http
            .http
            .request(method, url)
            .timeout(self.timeout)
            .headers(headers)
    }

    /// Sends one request with a fresh `X-Request-ID`; non-2xx answers become
    /// `ApiError::Status` with everything Agora said about them. A 429 pauses the API's
    /// limiter: for `Retry-After` if Agora sent one, else for the next step of the
    /// best-practice retreat (5–6, 10–11, 15–16 s for 429s in a row, §1.9), so nobody
    /// hammers a throttled API. After its rate limiter the call waits for a place among
    /// the host's calls in flight (see [`in_flight`]), and keeps it until the answer is
    /// read, which is why the answer comes back as its body.
    async fn attempt(
        &self,
        op: Op,
        (limiter, rank): (&RateLimiter, i64),
        req: RequestBuilder,
    ) -> Result<(Bytes, String), ApiError> {
        let (waited, in_flight) = tokio::select! {
            biased;
            _ = self.stop.cancelled() => return Err(ApiError::Stopped { op }),
            sent = limiter.acquire_ranked(rank) => sent,
        };
        if let Some(observe) = &self.on_wait {
            observe(op, waited);
        }
        // On the heap, and only once the limiter lets the call through: inline, the
        // exchange's state made every call waiting for its turn that size too, and a
        // 1,000-project start keeps thousands of creates waiting (BENCHMARKS.md, scale).
        Box::pin(self.call(op, limiter, req, in_flight)).await
    }

    /// The rest of [`attempt`](Self::attempt), once its rate limiter let it through:
    /// `in_flight` is the limiter's hold on the call.
    async fn call(
        &self,
        op: Op,
        limiter: &RateLimiter,
        req: RequestBuilder,
        in_flight: crate::limits::window::InFlight<'_>,
    ) -> Result<(Bytes, String), ApiError> {
        // The fence keeps a replica that does not lead the project from changing its
        // players or deciding from its List. The NCS address list decides nothing, and
        // every replica needs it: a notice may reach any of them.
        if op != Op::NcsIp && self.fence.as_ref().is_some_and(|may_call| !may_call()) {
            return Err(ApiError::Stopped { op });
        }
        let request_id = uuid::Uuid::new_v4().to_string();
        let (http, request) = req.header("X-Request-ID", &request_id).build_split();
        let request = match request {
            Ok(request) => request,
            Err(e) => return Err(transport_error(op, &e, &request_id)),
        };
        let host = request.url().authority().to_string();
        let place = tokio::select! {
            biased;
            _ = self.stop.cancelled() => return Err(ApiError::Stopped { op }),
            place = self.http.in_flight.enter(&host) => place,
        };
        let started = Instant::now();
        let outcome = exchange(op, &http, request, request_id).await;
        // Answered (or given up on): from now on the call's windows run out, and the
        // connection is free for the next call.
        drop((in_flight, place));
        if let Some(observe) = &self.observer {
            let label = match &outcome {
                Ok(_) => "2xx",
                Err(e) => e.code_class(),
            };
            observe(op, label, started.elapsed());
        }
        if let Err(e) = &outcome {
            tracing::debug!(app_id = %self.app_id, error = %e, "agora call failed");
            if let ApiError::Status { refusal, .. } = e
                && refusal.status == 429
            {
                let pause = limiter.rate_limited(refusal.retry_after);
                tracing::warn!(
                    api = op.as_str(),
                    pause_ms = pause.as_millis() as u64,
                    request_id = refusal.request_id.as_deref().unwrap_or("-"),
                    "429: pausing this API"
                );
            } else {
                limiter.not_rate_limited();
            }
        } else {
            limiter.not_rate_limited();
        }
        outcome
    }
}

/// Sends `request` and reads its answer whole: the body of a 2xx, else the refusal.
async fn exchange(
    op: Op,
    http: &reqwest::Client,
    request: reqwest::Request,
    request_id: String,
) -> Result<(Bytes, String), ApiError> {
    match http.execute(request).await {
        Err(e) => Err(transport_error(op, &e, &request_id)),
        Ok(response) if response.status().is_success() => match response.bytes().await {
            Ok(body) => Ok((body, request_id)),
            Err(e) => Err(ApiError::Decode {
                op,
                detail: e.to_string(),
                request_id,
            }),
        },
        Ok(response) => Err(refusal::read(op, response, &request_id).await),
    }
}

fn decode<T: DeserializeOwned>(op: Op, body: &[u8], request_id: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::Decode {
        op,
        detail: e.to_string(),
        request_id: request_id.to_string(),
    })
}
