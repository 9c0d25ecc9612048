//! The controller's side of source probing: starting the probes the plan's held slots
//! and down sources call for, and recording (and logging) what they find.

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{Done, Memory, ProjectController};
use crate::config::Scene;
use crate::model::SlotKey;
use crate::probe::{Outcome, Verdict, redact};
use crate::reconcile::sources;

impl ProjectController {
    /// Records a source verdict; every change is logged with the URL redacted.
    pub(super) fn judge_source(&self, mem: &mut Memory, url: &str, outcome: Outcome) {
        let Some(monitor) = &mut mem.sources else {
            return;
        };
        let Some(change) = monitor.record(url, outcome.verdict, Instant::now()) else {
            return;
        };
        let scenes: Vec<String> = self
            .scenes
            .borrow()
            .iter()
            .filter(|s| s.project == self.project.id)
            .filter(|s| s.sources().iter().any(|(_, u)| *u == url))
            .map(|s| s.name.clone())
            .collect();
        let source = redact(url);
        let from = change.from.map_or("unchecked", Verdict::as_str);
        let to = change.to.as_str();
        let detail = outcome.detail;
        if change.to == Verdict::Down {
            tracing::warn!(project = %self.project.id, ?scenes, %source, from, to, %detail,
                "source is down; failed players on it wait for it");
        } else {
            tracing::info!(project = %self.project.id, ?scenes, %source, from, to, %detail,
                "source verdict changed");
        }
    }

    /// Tracks the sources the plan needs judged and starts the probes that are due.
    pub(super) fn probe_sources(
        &self,
        mem: &mut Memory,
        scenes: &[&Scene],
        held: &[SlotKey],
        tasks: &mut JoinSet<Done>,
    ) {
        let (Some(monitor), Some(probing)) = (&mut mem.sources, &self.sources) else {
            return;
        };
        let now = Instant::now();
        let wanted = sources::wanted(scenes, held, monitor);
        monitor.track(&wanted, &sources::configured(scenes), now);
        for url in monitor.start_due(now) {
            let prober = probing.prober.clone();
            tasks.spawn(async move {
                let outcome = prober.probe(&url).await;
                Done::Source { url, outcome }
            });
        }
        if held != mem.held {
            let slots: Vec<String> = held.iter().map(ToString::to_string).collect();
            tracing::info!(project = %self.project.id, ?slots,
                "replacements waiting for their source changed");
            mem.held = held.to_vec();
        }
    }
}
