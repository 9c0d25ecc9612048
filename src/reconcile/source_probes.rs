//! The controller's side of source probing: starting the probes that are due (every
//! source of the project's scenes, and at once those the plan's held slots wait for),
//! and logging what they find.

use std::sync::Arc;

use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::{Scene, SourceProbeSettings};
use crate::model::SlotKey;
use crate::probe::monitor::{Change, SourceMonitor};
use crate::probe::{Finding, Prober, Verdict, redact};
use crate::reconcile::execute::Done;
use crate::reconcile::plan::{configured_sources, held_sources};

/// Source probing as configured for a controller.
#[derive(Clone)]
pub struct SourceProbing {
    pub prober: Arc<Prober>,
    pub settings: SourceProbeSettings,
}

impl SourceProbing {
    /// A monitor on this probing's schedule.
    pub fn monitor(&self) -> SourceMonitor {
        SourceMonitor::new(self.settings.interval, self.settings.max_interval)
    }

    /// Tracks the scenes' sources, marks those held slots wait for, and starts the probes
    /// that are due.
    pub fn start_due(
        &self,
        monitor: &mut SourceMonitor,
        scenes: &[&Scene],
        held: &[SlotKey],
        tasks: &mut JoinSet<Done>,
    ) {
        let now = Instant::now();
        monitor.track(&configured_sources(scenes), now);
        monitor.want(&held_sources(scenes, held), now);
        for url in monitor.start_due(now) {
            let prober = self.prober.clone();
            tasks.spawn(async move {
                let finding = prober.probe(&url).await;
                Done::Source { url, finding }
            });
        }
    }
}

/// Logs a source verdict's change, with the URL redacted: a warning when it is down.
pub fn log_change(project: &str, scenes: &[&Scene], url: &str, change: &Change, finding: &Finding) {
    let scenes: Vec<&str> = scenes
        .iter()
        .filter(|s| s.sources().iter().any(|(_, u)| *u == url))
        .map(|s| s.name.as_str())
        .collect();
    let source = redact(url);
    let from = change.from.map_or("unchecked", Verdict::as_str);
    let to = change.to.as_str();
    let detail = &finding.detail;
    if change.to == Verdict::Down {
        tracing::warn!(project = %project, ?scenes, %source, from, to, %detail,
            "source is down; failed players on it wait for it");
    } else {
        tracing::info!(project = %project, ?scenes, %source, from, to, %detail,
            "source verdict changed");
    }
}
