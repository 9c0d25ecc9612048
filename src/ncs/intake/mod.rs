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
//! | kept in the store, pushed to the project's [`Inbox`] | — | `accepted` |
//!
//! Nothing is recorded before the signature and the payload check out. An accepted
//! notice goes into the notice log ([`super::dedupe`]) with its id, in one record, and
//! the intake says `accepted` only once that record survives a process kill: the 200
//! that acknowledges a notice is only sent once a crash at any later instant leaves it to
//! be replayed at the next start ([`Intake::replay`]) until the controller has applied
//! it, with its player's new `lts`, so a resend is a duplicate and an older notice of the
//! player stays stale across the restart. A stale notice's id is recorded too, so its
//! resend is a duplicate; a resend that comes while its first delivery is being recorded
//! waits for that record before its 200. The
//! intake never waits on Agora or the controller: NCS wants its answer within 10 s.
//! Neither the secret nor a signature is ever logged or returned.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use secrecy::{ExposeSecret, SecretString};

use super::decode::{Decoded, Envelope};
use super::dedupe::NoticeLog;
use super::inbox::{Inbox, Observation, PlayerEvent};
use super::notice::Notice;
use super::order::{LtsOrder, Stage};
use super::signature::{self, Algorithm};
use crate::store::{NoticePosition, PendingNotice, Store, StoreError};

/// How far (in `lts` ms) behind the newest event a player's ordering entry is kept.
pub const ORDER_RETAIN_MS: u64 = 60 * 60 * 1000;

/// Most players whose last `lts` is kept (in memory and in the store).
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

/// Every project's secret and inbox, the notice log, the store, and each player's last
/// `lts`.
pub struct Intake {
    /// By pullkeeper project id (the `{project}` of the webhook's path).
    projects: HashMap<String, NcsProject>,
    notices: NoticeLog,
    store: Store,
    order: Mutex<Ordering>,
}

/// How a notice stands once the ordering lock is let go.
enum Step {
    /// Its id is in the notice log.
    Duplicate,
    /// Another delivery of it is being recorded.
    InFlight,
    /// Not newer than its player's last event.
    Stale,
    /// Kept in the store and pushed to the inbox: to be made durable.
    New,
}

/// A notice's place in [`Ordering::in_flight`] while it is recorded.
struct InFlight<'a> {
    intake: &'a Intake,
    key: String,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.intake.ordering().in_flight.remove(&self.key);
    }
}

/// What the intake decides under one lock.
struct Ordering {
    lts: LtsOrder,
    /// Keys of notices accepted whose id is not in the notice log yet: a resend meanwhile
    /// is a duplicate, not stale.
    in_flight: HashSet<String>,
}

impl Intake {
    /// The intake, its per-player order continued from the store's.
    pub fn new(
        projects: HashMap<String, NcsProject>,
        notices: NoticeLog,
        store: Store,
    ) -> Result<Intake, StoreError> {
        let entries = notices.positions()?.into_iter().filter_map(|p| {
            let stage = Stage::from_code(p.position.stage)?;
            Some((p.project, p.player, p.position.lts, stage))
        });
        let lts = LtsOrder::restored(ORDER_RETAIN_MS, ORDER_CAP, entries);
        Ok(Intake {
            projects,
            notices,
            store,
            order: Mutex::new(Ordering {
                lts,
                in_flight: HashSet::new(),
            }),
        })
    }

    /// Hands every notice acknowledged before a restart and not applied to its project's
    /// inbox, oldest event first; drops those of projects no longer configured. Call
    /// before the webhook is served. Returns how many were replayed.
    pub fn replay(&self) -> Result<usize, StoreError> {
        self.replay_where(|_| true)
    }

    /// What a new leader of `project` does first (etcd): continues the project's
    /// per-player order from the store and replays what the previous leader acknowledged
    /// and did not apply. Returns how many notices were replayed.
    pub fn take_over(&self, project: &str) -> Result<usize, StoreError> {
        let positions = self.notices.positions()?;
        {
            let mut ordering = self.ordering();
            for p in positions.into_iter().filter(|p| p.project == project) {
                if let Some(stage) = Stage::from_code(p.position.stage) {
                    ordering
                        .lts
                        .admit(&p.project, &p.player, p.position.lts, stage);
                }
            }
        }
        self.replay_where(|p| p.project == project)
    }

    fn replay_where(&self, wanted: impl Fn(&PendingNotice) -> bool) -> Result<usize, StoreError> {
        let mut pending = self.notices.pending()?;
        pending.retain(|p| wanted(p));
        pending.sort_by_key(|p| p.position);
        let mut replayed = 0;
        for p in pending {
            let observation = serde_json::from_slice::<Observation>(&p.body).ok();
            match (self.projects.get(&p.project), observation) {
                (Some(project), Some(observation)) => {
                    project.inbox.push_acknowledged(p.key, observation);
                    replayed += 1;
                }
                (project, _) => {
                    tracing::warn!(project = %p.project, configured = project.is_some(),
                        "an acknowledged NCS notice of a project not configured, or unreadable, is dropped");
                    self.notices.settle(&p.project, vec![p.key]);
                }
            }
        }
        if replayed > 0 {
            tracing::info!(
                notices = replayed,
                "NCS notices acknowledged before the restart are applied now"
            );
        }
        Ok(replayed)
    }

    fn ordering(&self) -> MutexGuard<'_, Ordering> {
        self.order.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether notices for `project` are taken here.
    /// Why a notice for `project` is refused before anything is recorded (an unknown
    /// project, a missing or wrong signature), or `None`: a replica that does not lead
    /// the project checks this before handing the notice to the one that does.
    pub fn refusal(&self, project: &str, headers: &HeaderMap, body: &[u8]) -> Option<Receipt> {
        let Some(proj) = self.projects.get(project) else {
            return Some(Receipt::UnknownProject);
        };
        if !signature_ok(headers, proj.secret.expose_secret().as_bytes(), body) {
            tracing::debug!(project, "NCS notice with a missing or wrong signature");
            return Some(Receipt::BadSignature);
        }
        None
    }

    pub fn knows(&self, project: &str) -> bool {
        self.projects.contains_key(project)
    }

    /// Runs one request for `project` through the checks above. An error means the
    /// notice could not be recorded: it must not be acknowledged, so that NCS resends it.
    pub async fn take(
        &self,
        project: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Receipt, StoreError> {
        if let Some(refused) = self.refusal(project, headers, body) {
            return Ok(refused);
        }
        let proj = &self.projects[project];
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
        let stage = match observation.event {
            PlayerEvent::Created { .. } => Stage::Created,
            PlayerEvent::Destroyed { .. } => Stage::Destroyed,
            PlayerEvent::Status(_) | PlayerEvent::Stalled => Stage::Status,
        };
        let pending = PendingNotice {
            project: project.to_string(),
            key: key.clone(),
            body: serde_json::to_vec(&observation).expect("observations serialize"),
            player: observation.player_id.clone(),
            position: NoticePosition {
                lts: observation.lts,
                stage: stage.code(),
            },
        };
        let (step, accepting) = {
            let mut ordering = self.ordering();
            let player = &observation.player_id;
            if self.notices.contains(&key)? {
                (Step::Duplicate, None)
            } else if ordering.in_flight.contains(&key) {
                (Step::InFlight, None)
            } else {
                let (before, floor) = (ordering.lts.last(project, player), ordering.lts.floor());
                if !ordering.lts.admit(project, player, observation.lts, stage) {
                    (Step::Stale, None)
                } else {
                    let accepting = match self.notices.accept(&pending, now_ms()) {
                        Ok(accepting) => accepting,
                        Err(e) => {
                            ordering.lts.undo(project, player, before);
                            return Err(e);
                        }
                    };
                    if ordering.lts.floor() > floor
                        && let Err(e) = self.store.forget_notice_positions(ordering.lts.floor())
                    {
                        // Harmless but for space: they are below the floor at the next start too.
                        tracing::warn!(error = %e, "cannot forget old NCS notice positions");
                    }
                    ordering.in_flight.insert(key.clone());
                    // Pushed under the ordering lock, so the inbox sees each player's
                    // events in lts order, and after the record is queued, so an applied
                    // mark never precedes it.
                    proj.inbox.push_acknowledged(key.clone(), observation);
                    (Step::New, Some(accepting))
                }
            }
        };
        match step {
            Step::Duplicate => {
                self.notices.known_durable().await?;
                return Ok(Receipt::Duplicate);
            }
            // Its first delivery is being made durable; this 200 acknowledges the same
            // notice, so it waits for that.
            Step::InFlight => {
                self.notices.accepted(&key).await?;
                return Ok(Receipt::Duplicate);
            }
            // Nothing to act on, but its id is recorded as every acknowledged one is,
            // so a resend is a duplicate.
            Step::Stale => {
                let first = self.notices.first_time(key, now_ms()).await?;
                return Ok(if first {
                    Receipt::Stale
                } else {
                    Receipt::Duplicate
                });
            }
            Step::New => {}
        }
        // Out of the set however this ends, also when the client hangs up mid-way.
        let _in_flight = InFlight { intake: self, key };
        if let Some(accepting) = accepting {
            accepting.durable().await?;
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
mod tests;
