//! The interface every store backend implements: what pullkeeper needs from durable
//! memory, and nothing of how a backend keeps it.

use std::collections::HashSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use serde::{Deserialize, Serialize};

use super::error::StoreError;
use crate::model::{Event, OnAir, SceneControl, SlotKey, SlotRecord, Spec};

/// A future a backend returns from an async method; boxed so [`StateStore`] can be a
/// trait object.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// What pullkeeper needs from durable memory. Methods other than `flush` may be served
/// from the backend's memory and become durable at the next flush.
pub trait StateStore: Send + Sync {
    /// The record of one slot.
    fn slot(&self, key: &SlotKey) -> Result<Option<SlotRecord>, StoreError>;

    /// Writes a slot record (a record in phase `Intended` is the create intent).
    fn put_slot(&self, key: &SlotKey, record: &SlotRecord) -> Result<(), StoreError>;

    fn remove_slot(&self, key: &SlotKey) -> Result<(), StoreError>;

    /// Every slot record of a project.
    fn project_slots(&self, project: &str) -> Result<Vec<(SlotKey, SlotRecord)>, StoreError>;

    /// The last on-air record of a scene (its version must never go back).
    fn onair(&self, project: &str, scene: &str) -> Result<Option<OnAir>, StoreError>;

    fn put_onair(&self, project: &str, scene: &str, state: &OnAir) -> Result<(), StoreError>;

    /// The next Update `sequence` for a player: strictly increasing per player, across
    /// restarts, and at least `floor` (§1.7: Agora applies the highest sequence it has
    /// seen and ignores older ones). With the current Unix second as the floor, a store
    /// that lost its sequences still sends numbers above those it sent before.
    fn next_sequence(&self, project: &str, player_id: &str, floor: u64) -> Result<u64, StoreError>;

    /// Hands out a UID of `start..=end` for `name` in `channel`: the lowest above the
    /// scene's high-water mark that nobody in the channel ever had; when none is left, the
    /// one released longest ago among those out of quarantine (see [`UidRequest`]). The
    /// UID counts as held from then until [`StateStore::release_uids`]. Atomic, so two
    /// slots of one scene allocating at once get different UIDs.
    fn allocate_uid(&self, request: &UidRequest<'_>) -> Result<u32, StoreError>;

    /// How many UIDs [`StateStore::allocate_uid`] could hand out for `request` now:
    /// the never-used ones plus those out of quarantine.
    fn free_uids(&self, request: &UidRequest<'_>) -> Result<u64, StoreError>;

    /// Records that no player of `channel` holds `uids` since `at_ms`: their quarantine
    /// starts. Called on the held → not-held transition only, never per player per poll.
    fn release_uids(
        &self,
        project: &str,
        channel: &str,
        uids: &[u32],
        at_ms: u64,
    ) -> Result<(), StoreError>;

    /// Records that a player of `channel` holds `uids` again (or still, at a process
    /// start), so a release seen before does not count once the player is gone. Called
    /// on the not-held → held transition only.
    fn hold_uids(&self, project: &str, channel: &str, uids: &[u32]) -> Result<(), StoreError>;

    /// Declares that what happened to the project's UIDs before `at_ms` is unknown (a
    /// process start): a UID held when the process stopped, or without any release
    /// recorded, counts as released at `at_ms`, so a restart never shortens a quarantine.
    fn uids_unknown_until(&self, project: &str, at_ms: u64) -> Result<(), StoreError>;

    /// Raises a scene's high-water mark to `uid` (never lowers it): a UID of the scene's
    /// own player that List shows was handed out, and so was every UID below it, even
    /// when the store that remembered them was lost.
    fn raise_uid_hwm(&self, project: &str, scene: &str, uid: u32) -> Result<(), StoreError>;

    /// Records a UID seen in a channel (a foreign player, an adopted one) so it is never
    /// handed out. Returns true if it was new.
    fn note_uid(
        &self,
        project: &str,
        channel: &str,
        uid: u32,
        name: &str,
    ) -> Result<bool, StoreError>;

    /// Whether `uid` was ever handed out or seen in `channel`.
    fn uid_known(&self, project: &str, channel: &str, uid: u32) -> Result<bool, StoreError>;

    /// Records the NCS notice `key` (it starts with the project, then a zero byte) as
    /// first seen at `now_ms`: true the first time, false for a resend. Durable at the
    /// next flush, which the receiver awaits before it answers 200.
    fn note_notice(&self, key: &[u8], now_ms: u64) -> Result<bool, StoreError>;

    /// Whether the NCS notice `key` was recorded (and not forgotten).
    fn notice_known(&self, key: &[u8]) -> Result<bool, StoreError>;

    /// Forgets the project's notice keys first seen before `older_than_ms`; how many.
    fn forget_notices(&self, project: &str, older_than_ms: u64) -> Result<usize, StoreError>;

    /// The instants (Unix ms) of the latest calls to one rate-limited API of a project,
    /// as [`StateStore::put_api_calls`] last wrote them; empty if never written.
    fn api_calls(&self, project: &str, api: &str) -> Result<Vec<u64>, StoreError>;

    /// Replaces what [`StateStore::api_calls`] answers for `project` and `api`: a
    /// restarted process counts these calls in its rate windows, so Agora never sees
    /// more than its limit across a restart. Written on every call and never flushed
    /// for it: a backend makes it durable when it can, soon (the last moments before a
    /// kill may be lost, which the reader allows for).
    fn put_api_calls(&self, project: &str, api: &str, at_ms: &[u64]) -> Result<(), StoreError>;

    /// Keeps an NCS notice about to be acknowledged until [`StateStore::notices_applied`]
    /// removes it, and records its position as the newest of `notice.player`'s events.
    /// The receiver flushes before it answers 200, so whatever it acknowledged is
    /// replayed at the next start if the process dies before acting on it.
    fn put_notice(&self, notice: &PendingNotice) -> Result<(), StoreError>;

    /// Forgets the project's pending notices with these keys: they were acted on.
    fn notices_applied(&self, project: &str, keys: &[String]) -> Result<(), StoreError>;

    /// Every notice [`StateStore::put_notice`] kept that was not applied.
    fn pending_notices(&self) -> Result<Vec<PendingNotice>, StoreError>;

    /// The newest event position recorded per (project, player).
    fn notice_positions(&self) -> Result<Vec<PlayerPosition>, StoreError>;

    /// Forgets the positions older than `lts`; returns how many.
    fn forget_notice_positions(&self, lts: u64) -> Result<usize, StoreError>;

    /// Keeps a slot's refusal for good, so a restart waits out its pause (one per slot
    /// and [`Rejection::updates_only`]; a later one replaces it).
    fn put_rejection(&self, key: &SlotKey, rejection: &Rejection) -> Result<(), StoreError>;

    /// Forgets the slot's refusal of this kind, if kept.
    fn remove_rejection(&self, key: &SlotKey, updates_only: bool) -> Result<(), StoreError>;

    /// Every refusal kept for the project's slots.
    fn project_rejections(&self, project: &str) -> Result<Vec<(SlotKey, Rejection)>, StoreError>;

    /// Appends `event` to its scene's history, after every event recorded before it.
    /// Durable with the next flush, like the state it describes.
    fn append_event(&self, project: &str, event: &Event) -> Result<(), StoreError>;

    /// The scene's events at or after `since_ms`, newest first, at most `limit`.
    fn scene_events(
        &self,
        project: &str,
        scene: &str,
        limit: usize,
        since_ms: u64,
    ) -> Result<Vec<Event>, StoreError>;

    /// Removes the scene's events beyond the newest `keep` and those before `before_ms`;
    /// returns how many.
    fn trim_events(
        &self,
        project: &str,
        scene: &str,
        keep: usize,
        before_ms: u64,
    ) -> Result<usize, StoreError>;

    /// Removes every event (of the projects this replica can read) before `before_ms`,
    /// scenes no longer configured included; returns how many.
    fn forget_events(&self, before_ms: u64) -> Result<usize, StoreError>;

    /// The operator's pins and maintenance of a project's scenes, by scene name.
    fn scene_controls(&self, project: &str) -> Result<Vec<(String, SceneControl)>, StoreError>;

    /// Writes a scene's pin and maintenance; an empty [`SceneControl`] removes them.
    fn put_scene_control(
        &self,
        project: &str,
        scene: &str,
        control: &SceneControl,
    ) -> Result<(), StoreError>;

    /// Makes everything written so far durable against a process kill.
    fn flush(&self) -> StoreFuture<'_, ()>;

    /// Set when the store was found unreadable at start and replaced by an empty one.
    fn recovery(&self) -> Option<&Recovery>;

    /// How big the store is, for the start-up log: what a slow start is measured against.
    fn size(&self) -> Result<StoreSize, StoreError>;

    /// A directory on this node for modules that keep files of their own next to the
    /// store (the NCS notice log); `None` for a backend that keeps nothing locally.
    fn local_dir(&self) -> Option<&Path>;
}

/// How big a store is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreSize {
    /// What the backend takes on disk (0 for one that keeps nothing locally).
    pub disk_bytes: u64,
    /// Slot records, one per player pullkeeper asked for.
    pub slots: u64,
}

/// A UID allocation: the scene's range, its channel, the player it is for, and what
/// decides whether a UID handed out before may be handed out again.
#[derive(Debug, Clone, Copy)]
pub struct UidRequest<'a> {
    pub project: &'a str,
    pub scene: &'a str,
    pub channel: &'a str,
    pub start: u32,
    pub end: u32,
    pub name: &'a str,
    /// UIDs of the channel a live player, an open intent or a slot record holds: never
    /// handed out, whatever the store remembers of them.
    pub held: &'a HashSet<u32>,
    /// Now, in wall-clock milliseconds.
    pub now_ms: u64,
    /// How long no player of the channel must have held a UID before it is handed out
    /// again: Agora's own migration may bring a failed task back for up to 240 s
    /// (docs/agora-api.md).
    pub quarantine_ms: u64,
}

/// Why and where a store was moved aside at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Where the unreadable directory now is.
    pub aside: PathBuf,
    /// What was wrong with it.
    pub cause: String,
}

/// An NCS notice acknowledged (or about to be) and not yet acted on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingNotice {
    pub project: String,
    /// The notice's dedupe key: unique within the project.
    pub key: String,
    /// What the notice says, as the NCS module encodes it.
    pub body: Vec<u8>,
    /// The player it is about, and where it stands in that player's events.
    pub player: String,
    pub position: NoticePosition,
}

/// Where an event stands among one player's NCS events: Agora's `lts` (ms), then the
/// lifecycle stage the NCS module numbers (for events in one millisecond).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct NoticePosition {
    pub lts: u64,
    pub stage: u8,
}

/// The newest event position of one player.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayerPosition {
    pub project: String,
    pub player: String,
    pub position: NoticePosition,
}

/// A slot's create or Update that Agora refused for good (400, 403).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// Only the slot's Updates were refused (its player may still be replaced).
    pub updates_only: bool,
    /// Agora's answer.
    pub message: String,
    /// What the scene asked of the slot when it was refused: a scene that asks for
    /// something else is tried at once.
    pub wanted: Option<Spec>,
    /// Until when (Unix ms) it is not tried again otherwise.
    pub until_ms: u64,
}
