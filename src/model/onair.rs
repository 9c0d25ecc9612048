//! The on-air player of a scene: the one apps should subscribe their audience to, the
//! record that keeps its version rising across restarts, and the announcement of a change.

use serde::{Deserialize, Serialize};

/// The on-air state of a scene; persisted so the version survives restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OnAir {
    pub slot: Option<u32>,
    pub uid: Option<u32>,
    pub version: u64,
    /// How many times the on-air player changed: a flapping scene shows here.
    pub switches: u64,
    /// When (Unix ms) the current on-air player was chosen.
    #[serde(default)]
    pub since_ms: u64,
    /// A backup is on air because the master failed (not because it was first up at
    /// start): only then does the failback policy hold the master back.
    #[serde(default)]
    pub failed_over: bool,
    /// Why the current on-air player was chosen (absent in records written before it
    /// was kept).
    #[serde(default)]
    pub reason: Option<SwitchReason>,
}

/// Why the on-air player changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SwitchReason {
    /// The on-air player stopped running; another took over.
    Failover,
    /// The master ran for the hold-down time and took the air back.
    Failback,
    /// The slot's player was replaced: same slot, new UID.
    Replaced,
    /// No player runs.
    NoHealthyPlayer,
    /// The master came up after a backup that went on air first at start.
    MasterUp,
    /// A player went on air where none was.
    Started,
    /// The on-air player still ran, but its source was probed down while another
    /// running player's source was not.
    SourceDown,
    /// An operator put this slot on air (`POST /v1/scenes/{name}/on-air`).
    Manual,
    /// A failover drill moved the air (`POST /v1/scenes/{name}/drill`).
    Drill,
}

impl SwitchReason {
    /// Every reason, as the `reason` label of `pullkeeper_onair_switches_total` shows it.
    pub const ALL: [SwitchReason; 9] = [
        SwitchReason::Started,
        SwitchReason::MasterUp,
        SwitchReason::Failover,
        SwitchReason::SourceDown,
        SwitchReason::Failback,
        SwitchReason::Replaced,
        SwitchReason::NoHealthyPlayer,
        SwitchReason::Manual,
        SwitchReason::Drill,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SwitchReason::Failover => "failover",
            SwitchReason::Failback => "failback",
            SwitchReason::Replaced => "replaced",
            SwitchReason::NoHealthyPlayer => "no_healthy_player",
            SwitchReason::MasterUp => "master_up",
            SwitchReason::Started => "started",
            SwitchReason::SourceDown => "source_down",
            SwitchReason::Manual => "manual",
            SwitchReason::Drill => "drill",
        }
    }
}

/// An on-air change, for logs and the app webhook.
#[derive(Debug, Clone, PartialEq)]
pub struct Switch {
    pub project: String,
    pub scene: String,
    pub channel: String,
    pub previous_uid: Option<u32>,
    pub onair: OnAir,
    pub reason: SwitchReason,
}
