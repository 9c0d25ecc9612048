//! A scene's history: what pullkeeper detected, decided and did, one [`Event`] at a
//! time. The vocabulary of every event kind lives here; recording them (the store and the
//! log line) is `store::EventLog`'s, reading them `GET /v1/scenes/{name}/events`'.
//!
//! Events describe what happened, never what to do: an observation detected a failure,
//! the publisher switched the air, the executor created or deleted a player. The plan,
//! which decides, records nothing.

use serde::{Deserialize, Serialize};

use super::onair::SwitchReason;

/// One thing that happened to a scene.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// When it happened (Unix ms, wall clock).
    pub at_ms: u64,
    pub scene: String,
    /// The slot it concerns (0 master, 1.. backups, the slate's), when one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<u32>,
    /// The UID of the player it concerns, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// The name of the player it concerns (`pk_{scene}_{m|bN}_{generation}`), when one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub player: Option<String>,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened, with what each kind needs to be understood later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// A player was found failed, and by which signal.
    FailureDetected {
        signal: Signal,
        /// What the signal said: the NCS status or destroy reason, the strikes counted.
        detail: String,
    },
    /// The scene's on-air player changed (what apps were told).
    Switched {
        from_slot: Option<u32>,
        from_uid: Option<u32>,
        to_slot: Option<u32>,
        to_uid: Option<u32>,
        reason: SwitchReason,
        version: u64,
    },
    /// Agora created a player for the slot (or a 409 named the one created before).
    Created {
        id: String,
        generation: u64,
        /// The Create was answered 409: the player existed and was adopted.
        after_conflict: bool,
    },
    /// A player List showed under the slot's name was recorded as the slot's.
    Adopted { id: String, generation: u64 },
    /// A player was deleted (or Agora no longer knew it).
    Deleted { id: String, reason: DeleteReason },
    /// The slot's replacement waits for its source, probed down.
    Held { source: String },
    /// The slot's source is no longer down: its replacement may go.
    HoldReleased { source: String },
    /// Agora refused an action for good (400, 403); retried when the scene changes or
    /// after `reconcile.rejected_retry`.
    Rejected { action: String, message: String },
    /// An operator moved the air to a slot (`POST /v1/scenes/{name}/on-air`).
    ManualSwitch { to_slot: u32, pin: bool },
    /// The pin ended: by an operator, or because the pinned player failed.
    PinReleased { why: String },
    /// Supervision of the scene paused (`on`) or resumed.
    Maintenance { on: bool },
    /// One step of a failover drill.
    DrillStep { drill: String, step: String },
}

/// The signal that found a player failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// An NCS notice with a `failed` or `stopped` status.
    NcsStatus,
    /// An NCS destroy notice pullkeeper did not cause.
    NcsDestroy,
    /// Consecutive complete Lists without the player.
    ListAbsence,
    /// Player checks (no-op Updates) answered 404 or 5xx.
    PlayerCheck,
    /// Apps reported its media stalled.
    AppReport,
}

/// Why a player was deleted (the `reason` of `pullkeeper_player_recreations_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeleteReason {
    /// The player failed or stopped and is being replaced.
    Failed,
    /// An older generation whose successor is up.
    Superseded,
    SceneRemoved,
    SlotRemoved,
}

impl DeleteReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DeleteReason::SceneRemoved => "scene_removed",
            DeleteReason::SlotRemoved => "slot_removed",
            DeleteReason::Superseded => "superseded",
            DeleteReason::Failed => "failed",
        }
    }
}

impl EventKind {
    /// The `kind` as serialized.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::FailureDetected { .. } => "failure_detected",
            EventKind::Switched { .. } => "switched",
            EventKind::Created { .. } => "created",
            EventKind::Adopted { .. } => "adopted",
            EventKind::Deleted { .. } => "deleted",
            EventKind::Held { .. } => "held",
            EventKind::HoldReleased { .. } => "hold_released",
            EventKind::Rejected { .. } => "rejected",
            EventKind::ManualSwitch { .. } => "manual_switch",
            EventKind::PinReleased { .. } => "pin_released",
            EventKind::Maintenance { .. } => "maintenance",
            EventKind::DrillStep { .. } => "drill_step",
        }
    }
}

impl Event {
    /// An event of `scene` at `at_ms` about no particular slot or player.
    pub fn new(at_ms: u64, scene: &str, kind: EventKind) -> Event {
        Event {
            at_ms,
            scene: scene.to_string(),
            slot: None,
            uid: None,
            player: None,
            kind,
        }
    }

    pub fn slot(mut self, slot: u32) -> Event {
        self.slot = Some(slot);
        self
    }

    /// The player it concerns; a UID of 0 (unknown) is left out.
    pub fn player(mut self, name: &str, uid: Option<u32>) -> Event {
        self.player = Some(name.to_string());
        self.uid = uid.filter(|&u| u != 0);
        self
    }

    /// The one log line of this event: its kind's fields, flattened as JSON into
    /// `detail`, so every kind has the same fields in the JSON logs. No kind carries a
    /// secret (no URL, token or credential is ever part of an event).
    pub fn log(&self, project: &str) {
        let detail = serde_json::to_value(&self.kind)
            .ok()
            .and_then(|mut v| {
                v.as_object_mut()?.remove("kind");
                Some(v.to_string())
            })
            .unwrap_or_default();
        tracing::info!(
            project,
            scene = %self.scene,
            event = self.kind.name(),
            slot = ?self.slot,
            uid = ?self.uid,
            player = ?self.player,
            %detail,
            "scene event"
        );
    }
}

/// `ms` since the Unix epoch as RFC 3339 in UTC with milliseconds
/// (`2026-05-01T12:30:00.250Z`).
pub fn rfc3339_ms(ms: u64) -> String {
    let (days, rest) = (ms / 86_400_000, ms % 86_400_000);
    let (y, m, d) = civil_from_days(days as i64);
    let (h, min, s, milli) = (
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1000 % 60,
        rest % 1000,
    );
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{milli:03}Z")
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_of_known_instants() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        // 2000-02-29 (a leap day of a century leap year), 23:59:59.999.
        assert_eq!(rfc3339_ms(951_868_799_999), "2000-02-29T23:59:59.999Z");
        assert_eq!(rfc3339_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339_ms(4_102_444_800_000), "2100-01-01T00:00:00.000Z");
    }

    #[test]
    fn every_kind_round_trips_with_its_name_as_kind() {
        let kinds = [
            EventKind::FailureDetected {
                signal: Signal::NcsDestroy,
                detail: "Idle Timeout".into(),
            },
            EventKind::Switched {
                from_slot: Some(0),
                from_uid: Some(1000),
                to_slot: Some(1),
                to_uid: Some(1001),
                reason: SwitchReason::Failover,
                version: 3,
            },
            EventKind::Created {
                id: "a".into(),
                generation: 2,
                after_conflict: false,
            },
            EventKind::Adopted {
                id: "a".into(),
                generation: 1,
            },
            EventKind::Deleted {
                id: "a".into(),
                reason: DeleteReason::Failed,
            },
            EventKind::Held {
                source: "primary".into(),
            },
            EventKind::HoldReleased {
                source: "primary".into(),
            },
            EventKind::Rejected {
                action: "create".into(),
                message: "HTTP 400: bad channel".into(),
            },
            EventKind::ManualSwitch {
                to_slot: 1,
                pin: true,
            },
            EventKind::PinReleased {
                why: "the pinned player failed".into(),
            },
            EventKind::Maintenance { on: true },
            EventKind::DrillStep {
                drill: "d1".into(),
                step: "switch published".into(),
            },
        ];
        for kind in kinds {
            let event = Event::new(5, "news", kind.clone())
                .slot(1)
                .player("pk_news_b1_1", Some(1001));
            let json = serde_json::to_value(&event).unwrap();
            assert_eq!(json["kind"], kind.name());
            assert_eq!(json["slot"], 1);
            let back: Event = serde_json::from_value(json).unwrap();
            assert_eq!(back, event);
        }
    }

    #[test]
    fn an_unknown_uid_is_left_out() {
        let event =
            Event::new(1, "news", EventKind::Maintenance { on: false }).player("p", Some(0));
        let json = serde_json::to_value(&event).unwrap();
        assert!(json.get("uid").is_none(), "{json}");
        assert!(json.get("slot").is_none(), "{json}");
    }
}
