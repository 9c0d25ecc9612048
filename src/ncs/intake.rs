//! The NCS intake: from one webhook request's headers and raw body to an observation in
//! the project's [`Inbox`], or the reason it went no further (§2).
//!
//! Order of checks, each ending in one [`Receipt`]:
//!
//! | step | failure | outcome |
//! |---|---|---|
//! | project configured | unknown | `unknown_project` |
//! | `Agora-Signature-V2` (SHA256), else `Agora-Signature` (SHA1) | missing/wrong | `bad_signature` |
//! | JSON envelope ([`Notice`]) | malformed | `malformed` |
//! | productId 4, eventType 1/3/4 | other | `ignored` |
//! | [`MediaPullPayload`](super::notice::MediaPullPayload) decodes | malformed | `malformed` |
//! | first delivery of the notice id | resend | `duplicate` |
//! | `lts` newer than the player's last | not newer | `stale` |
//! | pushed to the project's [`Inbox`] | — | `accepted` |
//!
//! Nothing is recorded before the signature and the payload check out, and the notice id
//! is in the notice log ([`super::dedupe`]) before the intake says `accepted`, so the 200
//! that acknowledges it is only sent for what is durable. The intake never waits on Agora
//! or the controller: NCS wants its answer within 10 s. Neither the secret nor a
//! signature is ever logged or returned.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use secrecy::{ExposeSecret, SecretString};

use super::decode::{Decoded, Envelope};
use super::dedupe::NoticeLog;
use super::inbox::{Inbox, PlayerEvent};
use super::notice::Notice;
use super::order::{LtsOrder, Stage};
use super::signature::{self, Algorithm};
use crate::store::StoreError;

/// How far (in `lts` ms) behind the newest event a player's ordering entry is kept.
pub const ORDER_RETAIN_MS: u64 = 60 * 60 * 1000;

/// Most players whose last `lts` is kept in memory.
pub const ORDER_CAP: usize = 100_000;

/// One pullkeeper project as the intake sees it.
pub struct NcsProject {
    /// The NCS secret of the project's Media Pull product (Console → Notifications).
    pub secret: SecretString,
    /// Where accepted observations go.
    pub inbox: Arc<Inbox>,
}

/// How one webhook request ended; each is one value of the `outcome` label of
/// `pullkeeper_webhook_notices_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receipt {
    Accepted,
    Duplicate,
    Stale,
    Ignored,
    BadSignature,
    Malformed,
    UnknownProject,
    /// The body was over the HTTP route's limit; decided before the intake.
    TooLarge,
    /// Refused by the address allowlist before anything else was looked at; decided
    /// before the intake.
    Forbidden,
    /// For a project another replica may be leading (or none, while etcd is away);
    /// decided before the intake.
    NotLeading,
}

impl Receipt {
    pub fn label(self) -> &'static str {
        match self {
            Receipt::Accepted => "accepted",
            Receipt::Duplicate => "duplicate",
            Receipt::Stale => "stale",
            Receipt::Ignored => "ignored",
            Receipt::BadSignature => "bad_signature",
            Receipt::Malformed => "malformed",
            Receipt::UnknownProject => "unknown_project",
            Receipt::TooLarge => "too_large",
            Receipt::NotLeading => "not_leading",
            Receipt::Forbidden => "forbidden",
        }
    }
}

/// Every project's secret and inbox, the notice log, and each player's last `lts`.
pub struct Intake {
    /// By pullkeeper project id (the `{project}` of the webhook's path).
    projects: HashMap<String, NcsProject>,
    notices: NoticeLog,
    order: Mutex<LtsOrder>,
}

impl Intake {
    pub fn new(projects: HashMap<String, NcsProject>, notices: NoticeLog) -> Intake {
        Intake {
            projects,
            notices,
            order: Mutex::new(LtsOrder::new(ORDER_RETAIN_MS, ORDER_CAP)),
        }
    }

    /// Whether notices for `project` are taken here.
    pub fn knows(&self, project: &str) -> bool {
        self.projects.contains_key(project)
    }

    /// Runs one request for `project` through the checks above. An error means the
    /// notice could not be recorded, and nothing was: it must not be acknowledged, so
    /// that NCS resends it.
    pub async fn take(
        &self,
        project: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Receipt, StoreError> {
        let Some(proj) = self.projects.get(project) else {
            return Ok(Receipt::UnknownProject);
        };
        if !signature_ok(headers, proj.secret.expose_secret().as_bytes(), body) {
            tracing::debug!(project, "NCS notice with a missing or wrong signature");
            return Ok(Receipt::BadSignature);
        }
        let Ok(notice) = serde_json::from_slice::<Envelope>(body) else {
            return Ok(Receipt::Malformed);
        };
        let observation = match notice.decode() {
            Decoded::Ignored => return Ok(Receipt::Ignored),
            Decoded::Malformed => return Ok(Receipt::Malformed),
            Decoded::Observation(o) => o,
        };
        let key = notice_key(
            project,
            notice.product_id,
            notice.event_type,
            &notice.notice_id,
        );
        if !self.notices.first_time(key, now_ms()).await? {
            return Ok(Receipt::Duplicate);
        }
        {
            let mut order = self.order.lock().unwrap_or_else(|e| e.into_inner());
            let stage = match observation.event {
                PlayerEvent::Created { .. } => Stage::Created,
                PlayerEvent::Destroyed { .. } => Stage::Destroyed,
                PlayerEvent::Status(_) | PlayerEvent::Stalled => Stage::Status,
            };
            if !order.admit(project, &observation.player_id, observation.lts, stage) {
                return Ok(Receipt::Stale);
            }
            // Pushed under the ordering lock, so the inbox sees each player's events in lts order.
            proj.inbox.push(observation);
        }
        tracing::debug!(
            project,
            notice_id = %notice.notice_id,
            event_type = notice.event_type,
            "NCS notice accepted"
        );
        Ok(Receipt::Accepted)
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// `Agora-Signature-V2` (HMAC-SHA256) when present, else `Agora-Signature` (HMAC-SHA1);
/// neither, or an unreadable header, is not valid.
fn signature_ok(headers: &HeaderMap, secret: &[u8], body: &[u8]) -> bool {
    let (algorithm, value) = if let Some(v) = headers.get(signature::HEADER_SHA256) {
        (Algorithm::Sha256, v)
    } else if let Some(v) = headers.get(signature::HEADER_SHA1) {
        (Algorithm::Sha1, v)
    } else {
        return false;
    };
    match value.to_str() {
        Ok(hex) => signature::verify(algorithm, secret, body, hex),
        Err(_) => false,
    }
}

/// The dedupe key: `noticeId` with project, productId and eventType (`notifyMs` changes
/// on every resend, so it is left out).
pub fn dedupe_key(project: &str, notice: &Notice) -> String {
    notice_key(
        project,
        notice.product_id,
        notice.event_type,
        &notice.notice_id,
    )
}

fn notice_key(project: &str, product_id: u32, event_type: u32, notice_id: &str) -> String {
    format!("{project}\0{product_id}\0{event_type}\0{notice_id}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use serde_json::json;

    #[test]
    fn v2_header_wins_and_sha1_is_the_fallback() {
        let body = b"{}";
        let s256 = signature::sign_sha256(b"k", body);
        let s1 = signature::sign_sha1(b"k", body);
        let mut h = HeaderMap::new();
        assert!(!signature_ok(&h, b"k", body), "no header");
        h.insert(signature::HEADER_SHA1, HeaderValue::from_str(&s1).unwrap());
        assert!(signature_ok(&h, b"k", body), "SHA1 alone");
        assert!(!signature_ok(&h, b"other", body));
        // With V2 present only V2 counts, even if the SHA1 one is right.
        h.insert(signature::HEADER_SHA256, HeaderValue::from_static("00"));
        assert!(!signature_ok(&h, b"k", body));
        h.insert(
            signature::HEADER_SHA256,
            HeaderValue::from_str(&s256).unwrap(),
        );
        assert!(signature_ok(&h, b"k", body));
    }

    #[test]
    fn dedupe_key_ignores_notify_ms() {
        let a = Notice {
            notice_id: "n-1".into(),
            product_id: 4,
            event_type: 1,
            notify_ms: 1,
            payload: json!({}),
        };
        let mut b = a.clone();
        b.notify_ms = 99;
        assert_eq!(dedupe_key("p", &a), dedupe_key("p", &b));
        let mut c = a.clone();
        c.event_type = 4;
        assert_ne!(dedupe_key("p", &a), dedupe_key("p", &c));
        assert_ne!(dedupe_key("p", &a), dedupe_key("q", &a));
    }
}
