//! The one path by which an event is recorded: [`EventLog::record`] writes its log line
//! and appends it to its scene's history in the store, which it keeps within
//! [`EventBounds`].
//!
//! An append is one write to the store's memory, made durable by the next flush like the
//! state the event describes (the flush before the next Agora call, or the backend's
//! own): recording adds no flush and no wait to the reconcile pass. Trimming is
//! amortised: a scene's history is trimmed at its first event in this process and then
//! every [`EventBounds::trim_every`] events, so the store holds up to that many events
//! beyond the bound for a moment; reads apply the bound exactly.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Store, StoreError};
use crate::model::Event;

/// How much of each scene's history is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventBounds {
    /// The newest events kept per scene (at least 1).
    pub per_scene: usize,
    /// Events older than this are dropped.
    pub max_age: Duration,
}

impl EventBounds {
    /// Events of one scene between two trims: a tenth of the bound.
    pub fn trim_every(&self) -> usize {
        (self.per_scene / 10).max(1)
    }

    fn max_age_ms(&self) -> u64 {
        u64::try_from(self.max_age.as_millis()).unwrap_or(u64::MAX)
    }
}

/// Records events and reads scene histories. Cheap to clone; clones share the trim
/// counters.
#[derive(Clone)]
pub struct EventLog {
    store: Store,
    bounds: EventBounds,
    /// Per (project, scene): events recorded since its last trim.
    since_trim: Arc<Mutex<HashMap<(String, String), usize>>>,
}

impl EventLog {
    pub fn new(store: Store, bounds: EventBounds) -> EventLog {
        EventLog {
            store,
            bounds,
            since_trim: Arc::default(),
        }
    }

    pub fn bounds(&self) -> EventBounds {
        self.bounds
    }

    /// Records `event` of `project`: one structured log line, and the scene's history.
    /// A store that cannot take it is logged; the event is never worth failing the work
    /// it describes.
    pub fn record(&self, project: &str, event: Event) {
        event.log(project);
        if let Err(e) = self.store.append_event(project, &event) {
            tracing::warn!(project, scene = %event.scene, error = %e, "cannot record the event");
            return;
        }
        if self.trim_due(project, &event.scene) {
            let before_ms = event.at_ms.saturating_sub(self.bounds.max_age_ms());
            let trimmed =
                self.store
                    .trim_events(project, &event.scene, self.bounds.per_scene, before_ms);
            if let Err(e) = trimmed {
                tracing::warn!(project, scene = %event.scene, error = %e, "cannot trim the scene's events");
            }
        }
    }

    /// Counts an event of the scene; true when its history is due for a trim.
    fn trim_due(&self, project: &str, scene: &str) -> bool {
        let mut counts = self.since_trim.lock().unwrap_or_else(|e| e.into_inner());
        let every = self.bounds.trim_every();
        let since = counts
            .entry((project.to_string(), scene.to_string()))
            .or_insert(every - 1);
        *since += 1;
        let due = *since >= every;
        if due {
            *since = 0;
        }
        due
    }

    /// The scene's newest events within the bounds at `now_ms`, newest first, at most
    /// `limit`.
    pub fn scene_events(
        &self,
        project: &str,
        scene: &str,
        limit: usize,
        now_ms: u64,
    ) -> Result<Vec<Event>, StoreError> {
        let since_ms = now_ms.saturating_sub(self.bounds.max_age_ms());
        let limit = limit.min(self.bounds.per_scene);
        self.store.scene_events(project, scene, limit, since_ms)
    }

    /// Removes every event older than the bound at `now_ms`, of scenes that get no new
    /// events (removed ones included) too; returns how many.
    pub fn sweep(&self, now_ms: u64) -> Result<usize, StoreError> {
        let before_ms = now_ms.saturating_sub(self.bounds.max_age_ms());
        self.store.forget_events(before_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EventKind;

    const DAY_MS: u64 = 24 * 3600 * 1000;

    fn event(at_ms: u64, n: u32) -> Event {
        Event::new(
            at_ms,
            "news",
            EventKind::Maintenance {
                on: n.is_multiple_of(2),
            },
        )
        .slot(n)
    }

    fn stored(store: &Store) -> usize {
        store
            .scene_events("p", "news", usize::MAX, 0)
            .unwrap()
            .len()
    }

    #[test]
    fn the_history_stays_within_the_count_trimmed_every_tenth() {
        let store = Store::temporary().unwrap();
        let bounds = EventBounds {
            per_scene: 1000,
            max_age: Duration::from_secs(7 * 24 * 3600),
        };
        assert_eq!(bounds.trim_every(), 100);
        let log = EventLog::new(store.clone(), bounds);
        for n in 0..1250 {
            log.record("p", event(1_000_000 + u64::from(n), n));
            assert!(
                stored(&store) < 1000 + 100,
                "at most the bound and a trim's worth"
            );
        }
        let read = log.scene_events("p", "news", 5000, 1_000_000).unwrap();
        assert_eq!(read.len(), 1000, "a read applies the bound exactly");
        assert_eq!(read[0].slot, Some(1249), "newest first");
        assert_eq!(read[999].slot, Some(250));
        let other = log.scene_events("p", "other", 10, 1_000_000).unwrap();
        assert!(other.is_empty());
    }

    #[test]
    fn events_older_than_the_age_are_dropped_by_reads_trims_and_the_sweep() {
        let store = Store::temporary().unwrap();
        let log = EventLog::new(
            store.clone(),
            EventBounds {
                per_scene: 10,
                max_age: Duration::from_secs(7 * 24 * 3600),
            },
        );
        let start = 100 * DAY_MS;
        log.record("p", event(start, 0));
        log.record("p", event(start + DAY_MS, 1));
        let week_later = start + 7 * DAY_MS;
        let read = log.scene_events("p", "news", 10, week_later + 1).unwrap();
        assert_eq!(read.len(), 1, "the first is a week and a ms old");
        assert_eq!(log.sweep(week_later + 1).unwrap(), 1);
        assert_eq!(stored(&store), 1);
        // The next trim (every event at a bound of 10) drops what aged meanwhile.
        log.record("p", event(start + 9 * DAY_MS, 2));
        assert_eq!(stored(&store), 1);
    }

    #[test]
    fn events_of_one_millisecond_keep_their_order() {
        let store = Store::temporary().unwrap();
        let log = EventLog::new(
            store,
            EventBounds {
                per_scene: 100,
                max_age: Duration::from_secs(3600),
            },
        );
        for n in 0..5 {
            log.record("p", event(42, n));
        }
        let slots: Vec<_> = log
            .scene_events("p", "news", 10, 42)
            .unwrap()
            .into_iter()
            .map(|e| e.slot.unwrap())
            .collect();
        assert_eq!(slots, [4, 3, 2, 1, 0]);
    }
}
