//! The `source_probe:` block: probe a failed player's source before replacing it.

use std::time::Duration;

use serde_saphyr::Spanned;

use super::duration;
use super::raw::RawSourceProbe;
use crate::config::diagnostic::Diags;

/// How sources are probed. Present = on: a failed player is replaced only once its
/// source was found up (or could not be judged); a down source is re-probed, backing off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceProbeSettings {
    /// Between probes of a source that is up or unknown, and the first back-off step.
    pub interval: Duration,
    /// The back-off cap for a down source: its return is noticed within this long.
    pub max_interval: Duration,
    /// Bound on each connect, handshake or request of a probe.
    pub timeout: Duration,
}

const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_MAX_INTERVAL: Duration = Duration::from_secs(60);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) fn build(raw: &Spanned<RawSourceProbe>, diags: &mut Diags<'_>) -> SourceProbeSettings {
    let r = &raw.value;
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
    SourceProbeSettings {
        interval,
        max_interval,
        timeout: duration(&r.timeout, DEFAULT_TIMEOUT, "source_probe.timeout", diags),
    }
}
