//! A project's side of the event history: events about its players, with the scene and
//! slot their names carry, recorded through the one path, `store::EventLog::record`.
//!
//! Only what was done or detected is recorded here (by the executor, the publishing part
//! of a pass, the observation of signals); the plan, which decides, records nothing.

use crate::clock::Clock;
use crate::model::{Event, EventKind, parse_name};
use crate::store::EventLog;

/// Records one project's events.
#[derive(Clone)]
pub struct ProjectEvents {
    log: EventLog,
    project: String,
    prefix: String,
    clock: Clock,
}

impl ProjectEvents {
    pub fn new(log: EventLog, project: &str, prefix: &str, clock: Clock) -> ProjectEvents {
        ProjectEvents {
            log,
            project: project.to_string(),
            prefix: prefix.to_string(),
            clock,
        }
    }

    /// A new event of `scene`, now.
    pub fn at_now(&self, scene: &str, kind: EventKind) -> Event {
        Event::new(self.clock.now_ms(), scene, kind)
    }

    pub fn record(&self, event: Event) {
        self.log.record(&self.project, event);
    }

    /// Records an event about the player `name`, under the scene and slot its name
    /// carries. A player that is not pullkeeper's has no scene and is not recorded.
    pub fn player(&self, name: &str, uid: Option<u32>, kind: EventKind) {
        if let Some(parsed) = parse_name(&self.prefix, name) {
            let event = self
                .at_now(&parsed.scene, kind)
                .slot(parsed.slot)
                .player(name, uid);
            self.record(event);
        }
    }
}
