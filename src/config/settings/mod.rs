//! The process settings file: where to listen, where to store state, how often to
//! reconcile, and the Agora projects (credentials, API host, limits) pullkeeper drives.
//!
//! Parsing happens in two steps: serde fills the `Raw*` structs (in `settings/raw.rs`)
//! that keep every value's location (`Spanned`), then [`build`] checks the rules and
//! produces the plain public structs. That split lets every semantic problem be reported
//! with a line and column.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use serde_saphyr::{Location, Spanned};

use super::diagnostic::Diags;
use super::duration::parse_duration;
use super::env::Env;
use super::limits::{Limits, positive};
use super::secret::{self, SecretRef};
use crate::agora::domains::{Override, Region};

mod api;
mod events;
mod raw;
mod server;
mod source_probe;
mod store;

pub use events::{
    DEFAULT_EVENT_MAX_AGE, DEFAULT_EVENTS_PER_SCENE, EventSettings, MAX_EVENTS_PER_SCENE,
};
pub(crate) use raw::{RawAppWebhook, RawSettings};
use raw::{RawProject, Text};
pub use source_probe::SourceProbeSettings;
pub use store::{EtcdSettings, LeaderSettings, MIN_LEADER_TTL, StoreBackend, StoreSettings};

/// Process-wide settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub server: ServerSettings,
    pub store: StoreSettings,
    /// How replicas lead projects when the store is etcd.
    pub leader: LeaderSettings,
    pub reconcile: ReconcileSettings,
    /// Resolved against the settings file's directory.
    pub scenes_file: PathBuf,
    pub projects: Vec<Project>,
    /// Where on-air changes are POSTed; a scene's own `app_webhook` overrides it.
    pub app_webhook: Option<AppWebhook>,
    /// How app reports of stalled players turn into strikes.
    pub reports: ReportSettings,
    /// Which addresses may deliver NCS notices.
    pub ncs_allowlist: NcsAllowlist,
    /// Source probing; `None` only with `source_probe: { enabled: false }`.
    pub source_probe: Option<SourceProbeSettings>,
    /// How much of each scene's event history is kept.
    pub events: EventSettings,
}

/// `Debug` prints `[REDACTED]` for the admin token.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    /// Serves `/metrics` here instead of on `listen`, e.g. on an address only Prometheus
    /// reaches.
    pub metrics_listen: Option<SocketAddr>,
    /// Bearer token of every `/v1/` route; `None` closes the admin API.
    pub admin_token: Option<SecretString>,
    /// Serve HTTPS on `listen` (`run --tls-cert/--tls-key`); not read from the file,
    /// because TLS normally ends at the Ingress.
    pub tls: Option<TlsFiles>,
}

/// The PEM files HTTPS is served with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// How often both files are checked for a change.
    pub reload_every: Duration,
}

impl TlsFiles {
    /// How often `run --tls-cert/--tls-key` re-reads the files: cert-manager and friends
    /// replace them in place, and a restart to pick them up would drop every connection.
    pub const RELOAD_EVERY: Duration = Duration::from_secs(10);
}

/// The NCS address list (§2.6): always fetched and shown; enforced on the webhook only
/// when asked, because behind a proxy that hides client addresses it would refuse all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NcsAllowlist {
    /// Refuse (403) notices from addresses not in the fetched list.
    pub enforce: bool,
    /// At most 24 h.
    pub refresh_interval: Duration,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// Where pullkeeper POSTs on-air changes for the apps. `Debug` prints `[REDACTED]` for the
/// secret.
#[derive(Debug, Clone)]
pub struct AppWebhook {
    /// `http://` or `https://` URL, used as written.
    pub url: String,
    /// Signing secret shared with the receiver; `{ env }` or `{ file }`, never inline.
    pub secret: SecretString,
    pub timeout: Duration,
}

/// Apps report UIDs they see stalled; `threshold` reports of one UID within `window` count
/// as one strike against that player.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportSettings {
    pub window: Duration,
    /// At least 1.
    pub threshold: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileSettings {
    pub poll_interval: Duration,
    /// How long a freshly created player may be missing from List before it counts as gone.
    /// Agora documents about 10 s of List lag after Create (§1.6); 12 s leaves a margin.
    pub list_lag: Duration,
    /// How often each player is checked with a no-op Update, whose 404/5xx answers are
    /// strikes. Off (`None`) by default: Agora has no read-only per-player call, and an
    /// Update, however empty, is a write to a live player.
    pub check_interval: Option<Duration>,
    /// How long no player of a channel must have held a UID before it is handed out
    /// again. Agora's own migration may bring a failed task back for up to 240 s
    /// (docs/agora-api.md), so a replacement must not take its UID before that.
    pub uid_quarantine: Duration,
    /// How long a slot or player waits after Agora refused its action for good (400,
    /// 403) or refused the project's credentials (401) before it is tried again, unless
    /// its scene changes (or a List works again) first: the same request would get the
    /// same answer, but credentials and a project's products can be changed in Agora's
    /// console.
    pub rejected_retry: Duration,
}

/// One Agora project. Secrets are `SecretString`, whose `Debug` prints `[REDACTED]`.
#[derive(Debug, Clone)]
pub struct Project {
    pub id: String,
    pub app_id: String,
    pub customer_id: SecretString,
    pub customer_secret: SecretString,
    /// NCS webhook signing secret (§2.4).
    pub ncs_secret: SecretString,
    pub api: ApiSettings,
    pub limits: Limits,
    /// pullkeeper owns exactly the players whose name starts with `{name_prefix}_`.
    pub name_prefix: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiSettings {
    pub primary_domain: PrimaryDomain,
    /// Overrides `https://{primary_domain}`; meant for pointing at a simulator. With it,
    /// there is no domain switching.
    pub base_url: Option<String>,
    pub timeout: Duration,
    /// The region the primary domain resolves to from this server (`api.area`): the
    /// region next to it is the "adjacent" fallback. Set whenever `base_url` is not.
    pub area: Option<Region>,
    /// `https`; `http` only for a simulator answering under Agora's names.
    pub scheme: String,
    /// How long a fallback domain is used before the primary is tried again.
    pub return_to_primary_after: Duration,
    /// Test-only name overrides, like curl's `--resolve`: `"IP:PORT"` or `dns-failure`.
    pub resolve: BTreeMap<String, Override>,
}

/// The two documented primary domains (§1.1): outside or inside mainland China.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum PrimaryDomain {
    #[serde(rename = "api.agora.io")]
    AgoraIo,
    #[serde(rename = "api.sd-rtn.com")]
    SdRtn,
}

impl PrimaryDomain {
    pub fn host(&self) -> &'static str {
        match self {
            PrimaryDomain::AgoraIo => "api.agora.io",
            PrimaryDomain::SdRtn => "api.sd-rtn.com",
        }
    }
}

const DEFAULT_SCENES_FILE: &str = "scenes.yaml";
const DEFAULT_POLL: Duration = Duration::from_secs(5);
const DEFAULT_LIST_LAG: Duration = Duration::from_secs(12);
const DEFAULT_UID_QUARANTINE: Duration = Duration::from_secs(600);
const DEFAULT_REJECTED_RETRY: Duration = Duration::from_secs(600);
/// The shortest `uid_quarantine`: Agora's 240 s migration window with a margin.
pub const MIN_UID_QUARANTINE: Duration = Duration::from_secs(300);
/// Five minutes on a fallback domain before trying the primary again.
const DEFAULT_RETURN_TO_PRIMARY: Duration = Duration::from_secs(300);
const DEFAULT_API_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_PREFIX: &str = "pk";
const DEFAULT_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_REPORT_WINDOW: Duration = Duration::from_secs(30);
const DEFAULT_REPORT_THRESHOLD: u32 = 3;
const PROJECT_ID_MAX_BYTES: usize = 32;
const PREFIX_MAX_BYTES: usize = 8;

/// Checks every rule and builds [`Settings`]. Invalid values are replaced by defaults so
/// checking can continue; the caller fails the load if any diagnostic was recorded.
pub(crate) fn build(
    raw: RawSettings,
    settings_path: &Path,
    env: &dyn Env,
    diags: &mut Diags<'_>,
) -> Settings {
    let base = base_dir(settings_path);
    let scenes = raw
        .scenes_file
        .as_ref()
        .map_or(DEFAULT_SCENES_FILE, |t| &t.value);
    let reconcile = ReconcileSettings {
        poll_interval: duration(
            &raw.reconcile.poll_interval,
            DEFAULT_POLL,
            "reconcile.poll_interval",
            diags,
        ),
        list_lag: duration(
            &raw.reconcile.list_lag,
            DEFAULT_LIST_LAG,
            "reconcile.list_lag",
            diags,
        ),
        check_interval: raw.reconcile.check_interval.as_ref().map(|_| {
            duration(
                &raw.reconcile.check_interval,
                DEFAULT_POLL,
                "reconcile.check_interval",
                diags,
            )
        }),
        uid_quarantine: uid_quarantine(&raw.reconcile.uid_quarantine, diags),
        rejected_retry: duration(
            &raw.reconcile.rejected_retry,
            DEFAULT_REJECTED_RETRY,
            "reconcile.rejected_retry",
            diags,
        ),
    };
    let app_webhook = raw
        .app_webhook
        .as_ref()
        .map(|w| w.build("app_webhook", &base, env, diags));
    let reports = ReportSettings {
        window: duration(
            &raw.reports.window,
            DEFAULT_REPORT_WINDOW,
            "reports.window",
            diags,
        ),
        threshold: raw
            .reports
            .threshold
            .as_ref()
            .map_or(DEFAULT_REPORT_THRESHOLD, |n| {
                positive(n, "reports.threshold", diags)
            }),
    };
    if raw.projects.value.is_empty() {
        diags.push(
            raw.projects.referenced,
            "projects",
            "no projects: at least one is required",
        );
    }
    let mut seen = HashSet::new();
    let projects = raw
        .projects
        .value
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let path = format!("projects[{i}]");
            if !seen.insert(p.id.value.clone()) {
                diags.push(
                    p.id.referenced,
                    format!("{path}.id"),
                    format!("duplicate project id {:?}", p.id.value),
                );
            }
            project(p, &path, &base, env, diags)
        })
        .collect();
    Settings {
        server: server::server(&raw.server, &base, env, diags),
        store: store::store(&raw.store, &base, env, diags),
        leader: store::leader(&raw.leader, env, diags),
        reconcile,
        scenes_file: base.join(scenes),
        projects,
        app_webhook,
        reports,
        ncs_allowlist: server::ncs_allowlist(&raw.ncs_allowlist, diags),
        source_probe: source_probe::build(raw.source_probe.as_ref(), diags),
        events: events::build(&raw.events, diags),
    }
}

impl RawAppWebhook {
    /// Checks the URL and timeout and reads the secret; `path` is the webhook's field path
    /// (`app_webhook` or `scenes[i].app_webhook`) and `base` the directory `{ file }`
    /// secrets are relative to.
    pub(crate) fn build(
        &self,
        path: &str,
        base: &Path,
        env: &dyn Env,
        diags: &mut Diags<'_>,
    ) -> AppWebhook {
        AppWebhook {
            url: webhook_url(&self.url, &format!("{path}.url"), diags),
            secret: secret::resolve(&self.secret, base, env, &format!("{path}.secret"), diags),
            timeout: duration(
                &self.timeout,
                DEFAULT_WEBHOOK_TIMEOUT,
                &format!("{path}.timeout"),
                diags,
            ),
        }
    }
}

/// The directory relative paths are resolved against.
pub(crate) fn base_dir(settings_path: &Path) -> PathBuf {
    settings_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// A duration that must be positive: a zero poll interval or timeout would spin or fail
/// every request.
fn duration(raw: &Option<Text>, default: Duration, path: &str, diags: &mut Diags<'_>) -> Duration {
    let Some(t) = raw else { return default };
    match parse_duration(&t.value) {
        Ok(d) if d.is_zero() => {
            diags.push(t.referenced, path, "must be greater than zero");
            default
        }
        Ok(d) => d,
        Err(e) => {
            diags.push(t.referenced, path, e);
            default
        }
    }
}

/// `reconcile.uid_quarantine`: a duration of at least [`MIN_UID_QUARANTINE`].
fn uid_quarantine(raw: &Option<Text>, diags: &mut Diags<'_>) -> Duration {
    let path = "reconcile.uid_quarantine";
    let quarantine = duration(raw, DEFAULT_UID_QUARANTINE, path, diags);
    match raw {
        Some(t) if quarantine < MIN_UID_QUARANTINE => {
            diags.push(
                t.referenced,
                path,
                format!(
                    "must be at least 5m (Agora may bring a failed task back for up to 240 s), got {}",
                    t.value
                ),
            );
            DEFAULT_UID_QUARANTINE
        }
        _ => quarantine,
    }
}

fn project(
    p: &RawProject,
    path: &str,
    base: &Path,
    env: &dyn Env,
    diags: &mut Diags<'_>,
) -> Project {
    check_slug(
        &p.id.value,
        p.id.referenced,
        &format!("{path}.id"),
        "project id",
        diags,
    );
    let app_id = &p.app_id.value;
    if app_id.is_empty() || !app_id.chars().all(|c| c.is_ascii_alphanumeric()) {
        diags.push(
            p.app_id.referenced,
            format!("{path}.app_id"),
            "expected a non-empty App ID of letters and digits",
        );
    }
    let name_prefix = match &p.name_prefix {
        None => DEFAULT_PREFIX.to_string(),
        Some(t) => {
            let ok = (1..=PREFIX_MAX_BYTES).contains(&t.value.len())
                && t.value.chars().all(|c| c.is_ascii_alphanumeric());
            if !ok {
                diags.push(
                    t.referenced,
                    format!("{path}.name_prefix"),
                    format!(
                        "invalid prefix {:?}: expected 1 to {PREFIX_MAX_BYTES} letters or digits",
                        t.value
                    ),
                );
            }
            t.value.clone()
        }
    };
    let api = ApiSettings {
        primary_domain: p.api.primary_domain.unwrap_or(PrimaryDomain::AgoraIo),
        base_url: p
            .api
            .base_url
            .as_ref()
            .map(|t| base_url(t, &format!("{path}.api.base_url"), diags)),
        timeout: duration(
            &p.api.timeout,
            DEFAULT_API_TIMEOUT,
            &format!("{path}.api.timeout"),
            diags,
        ),
        area: api::area(&p.api, p.id.referenced, path, diags),
        scheme: api::scheme(&p.api, path, diags),
        return_to_primary_after: duration(
            &p.api.return_to_primary_after,
            DEFAULT_RETURN_TO_PRIMARY,
            &format!("{path}.api.return_to_primary_after"),
            diags,
        ),
        resolve: api::resolve(&p.api, path, diags),
    };
    let mut secret = |s: &Spanned<SecretRef>, field: &str| {
        secret::resolve(s, base, env, &format!("{path}.{field}"), diags)
    };
    Project {
        id: p.id.value.clone(),
        app_id: app_id.clone(),
        customer_id: secret(&p.customer_id, "customer_id"),
        customer_secret: secret(&p.customer_secret, "customer_secret"),
        ncs_secret: secret(&p.ncs_secret, "ncs_secret"),
        api,
        limits: p.limits.build(&format!("{path}.limits"), diags),
        name_prefix,
    }
}

/// Project ids and scene names share one rule: they become part of player names and
/// metric labels, so `[a-z0-9-]` and at most 32 bytes.
pub(crate) fn check_slug(
    value: &str,
    location: Location,
    path: &str,
    what: &str,
    diags: &mut Diags<'_>,
) {
    let bad = value
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'));
    if value.is_empty() || value.len() > PROJECT_ID_MAX_BYTES {
        diags.push(
            location,
            path,
            format!(
                "{what} must be 1 to {PROJECT_ID_MAX_BYTES} bytes, got {}",
                value.len()
            ),
        );
    } else if let Some(c) = bad {
        diags.push(
            location,
            path,
            format!("{what} {value:?} contains {c:?}; allowed: a-z, 0-9 and '-'"),
        );
    }
}

/// `http://` or `https://`, a host, then an optional port and path; no whitespace.
fn webhook_url(t: &Text, path: &str, diags: &mut Diags<'_>) -> String {
    let url = &t.value;
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    let host_ok = rest.is_some_and(|r| {
        r.split(['/', '?', '#'])
            .next()
            .is_some_and(|host| !host.is_empty())
    });
    if !host_ok || url.chars().any(char::is_whitespace) {
        diags.push(
            t.referenced,
            path,
            format!("invalid url {url:?}: expected http://HOST[:PORT][/PATH] or https://..."),
        );
    }
    url.clone()
}

fn base_url(t: &Text, path: &str, diags: &mut Diags<'_>) -> String {
    let url = t.value.trim_end_matches('/');
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    if rest.is_none_or(str::is_empty) {
        diags.push(
            t.referenced,
            path,
            format!(
                "invalid base_url {:?}: expected http://HOST[:PORT] or https://...",
                t.value
            ),
        );
    }
    url.to_string()
}

#[cfg(test)]
mod tests;
