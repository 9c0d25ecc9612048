//! The semantic rules for scenes. Every rule records its problem and checking goes on, so
//! one run of `pullkeeper check` lists everything that needs fixing.
//!
//! The Agora limits themselves (byte limits, channel charset, idle timeout range) live in
//! [`crate::agora::wire::limits`]; this module only applies them.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use serde_saphyr::{Location, Spanned};

use super::diagnostic::{Diagnostic, Diags};
use super::duration::parse_duration;
use super::env::Env;
use super::scene::{RawScene, Scene, Text, UidRange};
use super::secret;
use super::settings::{Settings, check_slug};
use crate::agora::wire::{Region, limits};
use crate::model::DEFAULT_VOLUME;

/// At most this many standby players per scene; more only burns the project's quota.
pub const MAX_BACKUPS: i64 = 10;
const DEFAULT_IDLE_TIMEOUT: i64 = 300;
/// Highest audio volume Update accepts (§1.7).
const MAX_VOLUME: i64 = 200;
/// Longest `hold_down`; a master that must run longer than this before traffic returns to
/// it is better served by `failback: non-revertive`.
pub const MAX_HOLD_DOWN: Duration = Duration::from_secs(600);
const DEFAULT_HOLD_DOWN: Duration = Duration::from_secs(30);
/// Most `strikes` allowed; more would leave a dead player on air for minutes.
pub const MAX_STRIKES: i64 = 10;
const DEFAULT_STRIKES: i64 = 3;
/// Below this many UIDs per player of a scene, `check` warns: each replacement leaves a
/// UID in quarantine for `uid_quarantine`, so a slot failing again and again soon has to
/// wait for one.
pub const UID_RANGE_ADVISED: i64 = 4;
const STREAM_SCHEMES: [&str; 4] = ["rtmp", "rtmps", "http", "https"];

/// Checks each scene, then the rules that span scenes (unique names, disjoint UID ranges
/// within a channel).
pub(crate) fn scenes(
    raws: &[(usize, RawScene)],
    settings: &Settings,
    base_dir: &Path,
    env: &dyn Env,
    diags: &mut Diags<'_>,
) -> Vec<Scene> {
    let projects: Vec<&str> = settings.projects.iter().map(|p| p.id.as_str()).collect();
    let scenes: Vec<Scene> = raws
        .iter()
        .map(|(i, raw)| {
            scene(
                raw,
                &format!("scenes[{i}]"),
                &projects,
                base_dir,
                env,
                diags,
            )
        })
        .collect();
    unique_names(raws, diags);
    disjoint_uids(raws, &scenes, diags);
    scenes
}

fn scene(
    raw: &RawScene,
    path: &str,
    projects: &[&str],
    base_dir: &Path,
    env: &dyn Env,
    diags: &mut Diags<'_>,
) -> Scene {
    check_slug(
        &raw.name.value,
        raw.name.referenced,
        &format!("{path}.name"),
        "scene name",
        diags,
    );
    if !projects.contains(&raw.project.value.as_str()) {
        diags.push(
            raw.project.referenced,
            format!("{path}.project"),
            format!(
                "unknown project {:?}: expected one of {}",
                raw.project.value,
                projects.join(", ")
            ),
        );
    }
    channel(&raw.channel, &format!("{path}.channel"), diags);
    stream_url(&raw.stream_url, &format!("{path}.stream_url"), diags);
    let backups = ranged(
        raw.backups.as_ref(),
        0,
        0,
        MAX_BACKUPS,
        &format!("{path}.backups"),
        "backups",
        diags,
    );
    let backup_stream_urls = backup_urls(raw, backups, path, diags);
    if let Some(slate) = &raw.slate_url {
        stream_url(slate, &format!("{path}.slate_url"), diags);
        if !(slate.value.starts_with("http://") || slate.value.starts_with("https://")) {
            diags.push(
                slate.referenced,
                format!("{path}.slate_url"),
                "slate_url must be an http:// or https:// image or file (JPEG, PNG, MP4, …)",
            );
        }
    }
    let idle_timeout = ranged(
        raw.idle_timeout.as_ref(),
        DEFAULT_IDLE_TIMEOUT,
        limits::IDLE_TIMEOUT_MIN,
        limits::IDLE_TIMEOUT_MAX,
        &format!("{path}.idle_timeout"),
        "idle_timeout (seconds)",
        diags,
    );
    let volume = ranged(
        raw.volume.as_ref(),
        i64::from(DEFAULT_VOLUME),
        0,
        MAX_VOLUME,
        &format!("{path}.volume"),
        "volume",
        diags,
    );
    let strike_threshold = ranged(
        raw.strikes.as_ref(),
        DEFAULT_STRIKES,
        1,
        MAX_STRIKES,
        &format!("{path}.strikes"),
        "strikes",
        diags,
    );
    Scene {
        name: raw.name.value.clone(),
        project: raw.project.value.clone(),
        channel: raw.channel.value.clone(),
        stream_url: raw.stream_url.value.clone(),
        backup_stream_urls,
        slate_url: raw.slate_url.as_ref().map(|t| t.value.clone()),
        region: region(&raw.region, &format!("{path}.region"), diags),
        backups,
        priority: raw.priority.as_ref().map_or(0, |p| p.value),
        idle_timeout,
        token: raw
            .token
            .as_ref()
            .map(|t| secret::resolve(t, base_dir, env, &format!("{path}.token"), diags)),
        volume,
        uids: uids(raw, backups, &format!("{path}.uids"), diags),
        failback: raw.failback.unwrap_or_default(),
        hold_down: hold_down(raw.hold_down.as_ref(), &format!("{path}.hold_down"), diags),
        strike_threshold,
        app_webhook: raw
            .app_webhook
            .as_ref()
            .map(|w| w.build(&format!("{path}.app_webhook"), base_dir, env, diags)),
        maintenance: raw.maintenance.unwrap_or(false),
    }
}

/// Each backup URL is a stream URL; there may be no more of them than backups to pull them.
fn backup_urls(raw: &RawScene, backups: u32, path: &str, diags: &mut Diags<'_>) -> Vec<String> {
    let Some(list) = &raw.backup_stream_urls else {
        return Vec::new();
    };
    for (j, url) in list.value.iter().enumerate() {
        stream_url(url, &format!("{path}.backup_stream_urls[{j}]"), diags);
    }
    if list.value.len() > backups as usize {
        diags.push(
            list.referenced,
            format!("{path}.backup_stream_urls"),
            format!(
                "backup_stream_urls lists {} URLs but the scene has {backups} backups; each backup pulls one URL, in order",
                list.value.len()
            ),
        );
    }
    list.value.iter().map(|t| t.value.clone()).collect()
}

/// 0s..=10m; zero is allowed and means "return to the master at once".
fn hold_down(raw: Option<&Text>, path: &str, diags: &mut Diags<'_>) -> Duration {
    let Some(t) = raw else {
        return DEFAULT_HOLD_DOWN;
    };
    match parse_duration(&t.value) {
        Ok(d) if d <= MAX_HOLD_DOWN => d,
        Ok(_) => {
            diags.push(
                t.referenced,
                path,
                format!("hold_down must be between 0s and 10m, got {}", t.value),
            );
            DEFAULT_HOLD_DOWN
        }
        Err(e) => {
            diags.push(t.referenced, path, e);
            DEFAULT_HOLD_DOWN
        }
    }
}

fn channel(t: &Text, path: &str, diags: &mut Diags<'_>) {
    let len = t.value.len();
    if len == 0 {
        diags.push(t.referenced, path, "channel must not be empty");
    } else if len > limits::CHANNEL_NAME_MAX_BYTES {
        diags.push(
            t.referenced,
            path,
            format!(
                "channel is {len} bytes; the limit is {}",
                limits::CHANNEL_NAME_MAX_BYTES
            ),
        );
    }
    if let Some(c) = limits::bad_channel_char(&t.value) {
        diags.push(
            t.referenced,
            path,
            format!("channel contains {c:?}, which Agora does not allow in channel names"),
        );
    }
}

fn stream_url(t: &Text, path: &str, diags: &mut Diags<'_>) {
    let len = t.value.len();
    if len == 0 {
        diags.push(t.referenced, path, "stream_url must not be empty");
        return;
    }
    if len > limits::STREAM_URL_MAX_BYTES {
        diags.push(
            t.referenced,
            path,
            format!(
                "stream_url is {len} bytes; the limit is {}",
                limits::STREAM_URL_MAX_BYTES
            ),
        );
    }
    let scheme_ok = t
        .value
        .split_once("://")
        .is_some_and(|(scheme, rest)| STREAM_SCHEMES.contains(&scheme) && !rest.is_empty());
    if !scheme_ok {
        diags.push(
            t.referenced,
            path,
            "stream_url must be rtmp://, rtmps://, http:// or https:// followed by a host",
        );
    }
}

fn region(t: &Text, path: &str, diags: &mut Diags<'_>) -> Region {
    if let Some(r) = Region::parse(&t.value) {
        return r;
    }
    let lower = t.value.to_ascii_lowercase();
    let message = match Region::parse(&lower) {
        Some(r) => format!(
            "region {:?} must be lowercase: write {r:?}",
            t.value,
            r = r.as_str()
        ),
        None => format!(
            "unknown region {:?}: expected one of na, eu, ap, cn",
            t.value
        ),
    };
    diags.push(t.referenced, path, message);
    Region::Na
}

/// A number that must lie in `min..=max`; out-of-range values become `min` after the
/// diagnostic is recorded.
fn ranged(
    raw: Option<&Spanned<i64>>,
    default: i64,
    min: i64,
    max: i64,
    path: &str,
    what: &str,
    diags: &mut Diags<'_>,
) -> u32 {
    let value = match raw {
        None => default,
        Some(n) if (min..=max).contains(&n.value) => n.value,
        Some(n) => {
            diags.push(
                n.referenced,
                path,
                format!("{what} must be between {min} and {max}, got {}", n.value),
            );
            min
        }
    };
    u32::try_from(value).unwrap_or_default()
}

fn uids(raw: &RawScene, backups: u32, path: &str, diags: &mut Diags<'_>) -> UidRange {
    let (start, end) = (&raw.uids.value.start, &raw.uids.value.end);
    let max = i64::from(u32::MAX);
    let mut ok = true;
    for (n, field) in [(start, "start"), (end, "end")] {
        if !(1..=max).contains(&n.value) {
            diags.push(
                n.referenced,
                format!("{path}.{field}"),
                format!("uid must be between 1 and {max}, got {}", n.value),
            );
            ok = false;
        }
    }
    if ok && start.value > end.value {
        diags.push(
            raw.uids.referenced,
            path,
            format!(
                "uid range is reversed: start {} is greater than end {}",
                start.value, end.value
            ),
        );
        ok = false;
    }
    if ok {
        // Both ends lie within 1..=u32::MAX here, so the difference cannot overflow.
        let needed = i64::from(backups) + 1;
        let held = end.value - start.value + 1;
        if held < needed {
            diags.push(
                raw.uids.referenced,
                path,
                format!(
                    "uid range {}..={} holds {held} uids but the scene needs at least {needed} (1 + backups)",
                    start.value, end.value
                ),
            );
        } else if held < UID_RANGE_ADVISED * needed {
            diags.warn(
                raw.uids.referenced,
                path,
                format!(
                    "uid range {}..={} holds {held} uids, under {UID_RANGE_ADVISED} × (1 + backups) = {}: \
                     replacements may wait for a UID to come out of uid_quarantine",
                    start.value,
                    end.value,
                    UID_RANGE_ADVISED * needed
                ),
            );
        }
    }
    let clamp = |n: i64| u32::try_from(n.clamp(0, max)).unwrap_or_default();
    UidRange {
        start: clamp(start.value),
        end: clamp(end.value),
    }
}

fn unique_names(raws: &[(usize, RawScene)], diags: &mut Diags<'_>) {
    let mut first: HashMap<&str, Location> = HashMap::new();
    for (i, raw) in raws {
        let name = raw.name.value.as_str();
        match first.get(name) {
            Some(at) => diags.out.push(
                Diagnostic::at(
                    diags.file,
                    raw.name.referenced,
                    format!("scenes[{i}].name"),
                    format!("duplicate scene name {name:?}"),
                )
                .related_to(*at, "first defined"),
            ),
            None => {
                first.insert(name, raw.name.referenced);
            }
        }
    }
}

/// Two players in one channel must not share a UID (§1.4), so two scenes in the same
/// channel of the same project need disjoint ranges.
fn disjoint_uids(raws: &[(usize, RawScene)], scenes: &[Scene], diags: &mut Diags<'_>) {
    for (b, ((j, raw), later)) in raws.iter().zip(scenes).enumerate() {
        for earlier in &scenes[..b] {
            let same_channel = earlier.project == later.project && earlier.channel == later.channel;
            if same_channel
                && valid(&earlier.uids)
                && valid(&later.uids)
                && earlier.uids.overlaps(&later.uids)
            {
                diags.push(
                    raw.uids.referenced,
                    format!("scenes[{j}].uids"),
                    format!(
                        "uids {}..={} of scene {:?} overlap uids {}..={} of scene {:?} in channel {:?} of project {:?}",
                        later.uids.start, later.uids.end, later.name,
                        earlier.uids.start, earlier.uids.end, earlier.name,
                        later.channel, later.project
                    ),
                );
            }
        }
    }
}

/// Ranges already reported as invalid are left out of the overlap check.
fn valid(r: &UidRange) -> bool {
    r.start >= 1 && r.start <= r.end
}

#[cfg(test)]
mod tests;
