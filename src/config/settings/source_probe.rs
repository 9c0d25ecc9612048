//! The `source_probe:` block: probe the scenes' sources, to keep failed players on a
//! dead source from being recreated in a loop and to take a dead source off the air.
//! On without the block; `source_probe: { enabled: false }` turns it off.

use std::time::Duration;

use serde_saphyr::Spanned;

use super::duration;
use super::raw::RawSourceProbe;
use crate::config::diagnostic::Diags;

/// How sources are probed: every source of a scene every `interval`, a down one backing
/// off to `max_interval`; a failed player is replaced only once its source was found up
/// (or could not be judged), and a running player whose source is down leaves the air.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceProbeSettings {
    /// Between probes of a source that is up or unknown, and the first back-off step.
    pub interval: Duration,
    /// The back-off cap for a down source: its return is noticed within this long (plus
    /// the probe itself), and its held slots recreated at once.
    pub max_interval: Duration,
    /// Bound on each connect, handshake or request of a probe.
    pub timeout: Duration,
}

const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// Short enough that a held slot is recreated within 10 s of its source's return (a
/// down RTMP origin refuses at once, an up one completes the handshake in milliseconds).
const DEFAULT_MAX_INTERVAL: Duration = Duration::from_secs(8);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The settings, or `None` when turned off. Without a block, the defaults.
pub(super) fn build(
    raw: Option<&Spanned<RawSourceProbe>>,
    diags: &mut Diags<'_>,
) -> Option<SourceProbeSettings> {
    let Some(raw) = raw else {
        return Some(defaults());
    };
    let r = &raw.value;
    if r.enabled.as_ref().is_some_and(|e| !e.value) {
        return None;
    }
    let interval = duration(
        &r.interval,
        DEFAULT_INTERVAL,
        "source_probe.interval",
        diags,
    );
    let mut max_interval = duration(
        &r.max_interval,
        DEFAULT_MAX_INTERVAL.max(interval),
        "source_probe.max_interval",
        diags,
    );
    if max_interval < interval {
        let at = r
            .max_interval
            .as_ref()
            .map_or(raw.referenced, |t| t.referenced);
        diags.push(
            at,
            "source_probe.max_interval",
            format!(
                "max_interval ({} ms) must not be shorter than interval ({} ms)",
                max_interval.as_millis(),
                interval.as_millis()
            ),
        );
        max_interval = interval;
    }
    Some(SourceProbeSettings {
        interval,
        max_interval,
        timeout: duration(&r.timeout, DEFAULT_TIMEOUT, "source_probe.timeout", diags),
    })
}

fn defaults() -> SourceProbeSettings {
    SourceProbeSettings {
        interval: DEFAULT_INTERVAL,
        max_interval: DEFAULT_MAX_INTERVAL,
        timeout: DEFAULT_TIMEOUT,
    }
}
