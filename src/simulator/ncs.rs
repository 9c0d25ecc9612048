//! NCS webhook delivery (§2.1–§2.4).
//!
//! Every player event becomes a notice POSTed to the project's NCS URL in a spawned task,
//! so a slow or broken receiver never delays a REST answer. A notice counts as delivered
//! only on HTTP 200 within the timeout; otherwise it is resent after each configured
//! delay ("stops after three retries"). `noticeId` stays the same across resends while
//! `notifyMs` is refreshed, so each resend is signed again. "Order is not guaranteed.
//! Duplicates are possible" (§2.1): [`NcsChaos`] makes both happen on demand.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use super::clock::SimClock;
use super::config::duration;
use crate::ncs::notice::{MediaPullPayload, Notice, PRODUCT_MEDIA_PULL};
use crate::ncs::signature::{HEADER_SHA1, HEADER_SHA256, sign_sha1, sign_sha256};

/// One player event, before it is wrapped in a notice.
#[derive(Debug, Clone)]
pub struct Event {
    pub app_id: String,
    pub event_type: u32,
    pub payload: MediaPullPayload,
}

/// Where and how to deliver one event; captured when the event happens.
#[derive(Clone)]
pub struct Target {
    pub url: String,
    pub secret: String,
}

/// The result of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum DeliveryOutcome {
    /// The receiver answered 200 in time.
    Delivered,
    /// The receiver answered with another status.
    Status { code: u16 },
    /// Connection error or timeout.
    Failed { error: String },
}

/// One NCS attempt, as listed by `notices_sent()`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryRecord {
    pub notice_id: String,
    pub app_id: String,
    pub event_type: u32,
    /// 1 for the first send, 2.. for resends.
    pub attempt: u32,
    pub outcome: DeliveryOutcome,
    /// Simulator time of the attempt, ms since start.
    pub at_ms: u64,
}

/// What §2.1 allows NCS to do to a receiver; off by default.
///
/// JSON (`PUT /_sim/ncs-chaos`): `{"duplicate":true,"max_delay":800}` (ms).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NcsChaos {
    /// Every delivered notice is sent once more, with the same `noticeId`.
    #[serde(default)]
    pub duplicate: bool,
    /// Each notice waits a random time up to this before its first send, so later
    /// notices can overtake earlier ones.
    #[serde(default, with = "duration")]
    pub max_delay: Duration,
}

/// Sends in flight at once, over all receivers. A sender keeps a bounded pool of
/// connections: unbounded, a burst of player events (50,000 players created at once)
/// while the receivers were slow opened one connection per notice, until this process
/// ran out of file descriptors (20,000) and the simulated REST API stopped accepting
/// calls. Above what receivers take at once (pullkeeper accepts 1,024 connections per
/// replica), so the bound never paces delivery to a receiver keeping up; at 256 it did,
/// and a converging run's notices queued for minutes. Waiting for a place is not waiting
/// for the answer: the timeout starts at the send.
const SENDS_IN_FLIGHT: usize = 4096;

/// Sends in flight at once to one receiver (scheme, host and port): half of what one
/// pullkeeper replica accepts at once, leaving the other half to its peers' forwarded
/// notices and to its operators. The global bound alone did not bound sockets with
/// several receivers: once a receiver stopped accepting (at its own connection bound),
/// each send over what it held started a connection that waited in its full backlog;
/// when a pooled connection came free first, the send took that one and the new
/// connection went on trying in the background for up to two minutes of SYN retries.
/// Three busy replicas left 13,000 such connections and this process at its descriptor
/// limit, and the connects crowding their backlogs kept a status request out for a
/// minute. Below what the receiver takes, a send finds a pooled or promptly accepted
/// connection.
const SENDS_PER_RECEIVER: usize = 512;

/// Sends notices and records every attempt.
pub struct Notifier {
    client: reqwest::Client,
    sending: Arc<Semaphore>,
    receivers: Mutex<HashMap<String, Arc<Semaphore>>>,
    clock: Arc<SimClock>,
    retry_delays: Vec<Duration>,
    records: Arc<Mutex<Vec<DeliveryRecord>>>,
    chaos: Mutex<NcsChaos>,
    /// Notices dispatched whose delivery has not ended (delivered, or given up after
    /// the last retry).
    outstanding: Arc<AtomicUsize>,
}

impl Notifier {
    pub fn new(
        clock: Arc<SimClock>,
        timeout: Duration,
        retry_delays: Vec<Duration>,
        ca_files: &[std::path::PathBuf],
    ) -> std::io::Result<Notifier> {
        crate::crypto::install_provider();
        let mut roots = Vec::new();
        for path in ca_files {
            let pem = std::fs::read(path).map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display()))
            })?;
            roots.push(reqwest::Certificate::from_pem(&pem).map_err(std::io::Error::other)?);
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            // A connection the send stopped waiting for gives up with it.
            .connect_timeout(timeout)
            .tls_certs_merge(roots)
            .build()
            .map_err(std::io::Error::other)?;
        Ok(Notifier {
            client,
            sending: Arc::new(Semaphore::new(SENDS_IN_FLIGHT)),
            receivers: Mutex::default(),
            clock,
            retry_delays,
            records: Arc::new(Mutex::new(Vec::new())),
            chaos: Mutex::new(NcsChaos::default()),
            outstanding: Arc::default(),
        })
    }

    pub fn set_chaos(&self, chaos: NcsChaos) {
        *self.chaos.lock().unwrap_or_else(|e| e.into_inner()) = chaos;
    }

    pub fn records(&self) -> Vec<DeliveryRecord> {
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Notices still being delivered: sent and unanswered, waiting for a place, or
    /// waiting to be resent. Zero once every notice so far was delivered or given up.
    pub fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::SeqCst)
    }

    /// The bound of sends to the receiver of `url`.
    fn receiver(&self, url: &str) -> Arc<Semaphore> {
        let key = reqwest::Url::parse(url)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default();
        let mut receivers = self.receivers.lock().unwrap_or_else(|e| e.into_inner());
        receivers
            .entry(key)
            .or_insert_with(|| Arc::new(Semaphore::new(SENDS_PER_RECEIVER)))
            .clone()
    }

    /// Starts delivering `event` in the background; returns at once.
    pub fn dispatch(&self, event: Event, target: Target) {
        let job = Delivery {
            client: self.client.clone(),
            sending: self.sending.clone(),
            receiver: self.receiver(&target.url),
            clock: self.clock.clone(),
            retry_delays: self.retry_delays.clone(),
            records: self.records.clone(),
            notice_id: uuid::Uuid::new_v4().to_string(),
            chaos: *self.chaos.lock().unwrap_or_else(|e| e.into_inner()),
            _outstanding: Outstanding::count(&self.outstanding),
        };
        tokio::spawn(job.run(event, target));
    }
}

struct Delivery {
    client: reqwest::Client,
    sending: Arc<Semaphore>,
    receiver: Arc<Semaphore>,
    clock: Arc<SimClock>,
    retry_delays: Vec<Duration>,
    records: Arc<Mutex<Vec<DeliveryRecord>>>,
    notice_id: String,
    chaos: NcsChaos,
    _outstanding: Outstanding,
}

/// Counts one delivery as outstanding until it is dropped, however its task ends.
struct Outstanding(Arc<AtomicUsize>);

impl Outstanding {
    fn count(counter: &Arc<AtomicUsize>) -> Outstanding {
        counter.fetch_add(1, Ordering::SeqCst);
        Outstanding(counter.clone())
    }
}

impl Drop for Outstanding {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Delivery {
    async fn run(self, event: Event, target: Target) {
        let Ok(payload) = serde_json::to_value(&event.payload) else {
            tracing::error!("NCS payload does not serialize");
            return;
        };
        let mut delays = self.retry_delays.iter();
        let mut attempt = 1;
        let mut duplicate = self.chaos.duplicate;
        if !self.chaos.max_delay.is_zero() {
            let ms = u64::try_from(self.chaos.max_delay.as_millis()).unwrap_or(u64::MAX);
            tokio::time::sleep(Duration::from_millis(rand::random_range(0..=ms))).await;
        }
        loop {
            let to_receiver = self.receiver.acquire().await.expect("never closed");
            let place = self.sending.acquire().await.expect("never closed");
            let now = self.clock.now();
            let notice = Notice {
                notice_id: self.notice_id.clone(),
                product_id: PRODUCT_MEDIA_PULL,
                event_type: event.event_type,
                notify_ms: self.clock.wall_ms(now),
                payload: payload.clone(),
            };
            let outcome = self.send_once(&notice, &target).await;
            drop((place, to_receiver));
            let delivered = outcome == DeliveryOutcome::Delivered;
            self.records
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(DeliveryRecord {
                    notice_id: self.notice_id.clone(),
                    app_id: event.app_id.clone(),
                    event_type: event.event_type,
                    attempt,
                    outcome,
                    at_ms: self.clock.elapsed_ms(now),
                });
            if delivered && duplicate {
                duplicate = false;
                attempt += 1;
                continue;
            }
            if delivered {
                return;
            }
            let Some(delay) = delays.next() else {
                return;
            };
            tokio::time::sleep(*delay).await;
            attempt += 1;
        }
    }

    async fn send_once(&self, notice: &Notice, target: &Target) -> DeliveryOutcome {
        let body = match serde_json::to_vec(notice) {
            Ok(b) => b,
            Err(e) => {
                return DeliveryOutcome::Failed {
                    error: e.to_string(),
                };
            }
        };
        let secret = target.secret.as_bytes();
        let result = self
            .client
            .post(&target.url)
            .header("Content-Type", "application/json")
            .header(HEADER_SHA1, sign_sha1(secret, &body))
            .header(HEADER_SHA256, sign_sha256(secret, &body))
            .body(body)
            .send()
            .await;
        match result {
            Ok(resp) if resp.status().as_u16() == 200 => DeliveryOutcome::Delivered,
            Ok(resp) => DeliveryOutcome::Status {
                code: resp.status().as_u16(),
            },
            Err(e) => DeliveryOutcome::Failed {
                error: e.to_string(),
            },
        }
    }
}
