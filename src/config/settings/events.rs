//! The `events:` block: how much of each scene's event history the store keeps
//! (`GET /v1/scenes/{name}/events`).

use std::time::Duration;

use super::duration;
use super::raw::RawEvents;
use crate::config::diagnostic::Diags;

/// Each scene keeps its newest `per_scene` events, none older than `max_age`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventSettings {
    pub per_scene: u32,
    pub max_age: Duration,
}

pub const DEFAULT_EVENTS_PER_SCENE: u32 = 1000;
/// A week: the longest any duration setting takes.
pub const DEFAULT_EVENT_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
/// The most events a scene may keep: a scene's whole history is read for each request,
/// and with etcd every event of a led project sits in the leader's memory.
pub const MAX_EVENTS_PER_SCENE: u32 = 10_000;

pub(super) fn build(raw: &RawEvents, diags: &mut Diags<'_>) -> EventSettings {
    let per_scene = match &raw.per_scene {
        None => DEFAULT_EVENTS_PER_SCENE,
        Some(n) if (1..=MAX_EVENTS_PER_SCENE).contains(&n.value) => n.value,
        Some(n) => {
            diags.push(
                n.referenced,
                "events.per_scene",
                format!(
                    "expected 1 to {MAX_EVENTS_PER_SCENE} events, got {}",
                    n.value
                ),
            );
            DEFAULT_EVENTS_PER_SCENE
        }
    };
    EventSettings {
        per_scene,
        max_age: duration(&raw.max_age, DEFAULT_EVENT_MAX_AGE, "events.max_age", diags),
    }
}
