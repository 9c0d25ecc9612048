//! The app webhook: tells app backends which UID is now the stream to watch.
//!
//! Each on-air change is POSTed as JSON `{scene, channel, active_uid, previous_uid,
//! reason, version}`, signed like Agora signs NCS (lowercase-hex HMAC-SHA256 of the raw
//! body, header [`SIGNATURE_HEADER`]) so receivers can reuse their NCS verification. One
//! worker per scene delivers that scene's changes strictly in version order; a receiver
//! that is down is retried with back-off, and reconcile never waits for any of it.

use std::collections::HashMap;
use std::time::Duration;

use secrecy::ExposeSecret;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::config::AppWebhook;
use crate::model::{Switch, SwitchReason};
use crate::ncs::signature::sign_sha256;
use crate::telemetry::Metrics;

pub const SIGNATURE_HEADER: &str = "X-Pullkeeper-Signature";

/// Waits between delivery attempts of one announcement; after the last it is dropped
/// (logged and counted), because a newer announcement is what apps need by then.
const RETRY_DELAYS: [Duration; 5] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
    Duration::from_secs(16),
];

/// The JSON body apps receive.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Announcement {
    pub scene: String,
    pub channel: String,
    pub active_uid: Option<u32>,
    pub previous_uid: Option<u32>,
    pub reason: SwitchReason,
    pub version: u64,
}

/// Runs until `switches` closes: routes each change to its scene's worker, at the
/// scene's own webhook (`scene_webhook`: as configured now), else the global one.
pub async fn dispatch(
    mut switches: mpsc::UnboundedReceiver<Switch>,
    global: Option<AppWebhook>,
    scene_webhook: impl Fn(&Switch) -> Option<AppWebhook> + Send + 'static,
    metrics: Metrics,
) {
    crate::crypto::install_provider();
    let http = match reqwest::Client::builder().build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the app webhook client; announcements are off");
            return;
        }
    };
    let mut workers: HashMap<String, mpsc::UnboundedSender<(AppWebhook, Announcement)>> =
        HashMap::new();
    while let Some(switch) = switches.recv().await {
        // A scene's own webhook overrides the global one.
        let target = scene_webhook(&switch).or_else(|| global.clone());
        let Some(target) = target else { continue };
        let announcement = Announcement {
            scene: switch.scene.clone(),
            channel: switch.channel,
            active_uid: switch.onair.uid,
            previous_uid: switch.previous_uid,
            reason: switch.reason,
            version: switch.onair.version,
        };
        let worker = workers.entry(switch.scene).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(deliver_in_order(rx, http.clone(), metrics.clone()));
            tx
        });
        let _ = worker.send((target, announcement));
    }
}

async fn deliver_in_order(
    mut queue: mpsc::UnboundedReceiver<(AppWebhook, Announcement)>,
    http: reqwest::Client,
    metrics: Metrics,
) {
    while let Some((target, announcement)) = queue.recv().await {
        let body = serde_json::to_vec(&announcement).expect("announcements serialize");
        let signature = sign_sha256(target.secret.expose_secret().as_bytes(), &body);
        let mut attempt = 0;
        loop {
            let sent = http
                .post(&target.url)
                .timeout(target.timeout)
                .header("Content-Type", "application/json")
                .header(SIGNATURE_HEADER, &signature)
                .body(body.clone())
                .send()
                .await;
            let outcome = match &sent {
                Ok(r) if r.status().is_success() => "delivered",
                Ok(_) => "refused",
                Err(_) => "unreachable",
            };
            metrics.app_webhook.with_label_values(&[outcome]).inc();
            if outcome == "delivered" {
                break;
            }
            let Some(delay) = RETRY_DELAYS.get(attempt) else {
                tracing::error!(scene = %announcement.scene, version = announcement.version,
                    "app webhook gave up on an announcement");
                metrics.app_webhook.with_label_values(&["dropped"]).inc();
                break;
            };
            tracing::warn!(scene = %announcement.scene, version = announcement.version, outcome,
                "app webhook delivery failed; retrying");
            attempt += 1;
            tokio::time::sleep(*delay).await;
        }
    }
}
