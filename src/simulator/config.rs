//! Simulator configuration.
//!
//! The defaults reproduce what docs/agora-api.md says about Agora (§1.6 list lag, §1.10
//! QPS and quota, §2.1 NCS retries), so a test that does not touch the config runs
//! against the documented service. `SimConfig` deserializes from YAML or JSON with
//! snake_case keys; every field is optional. Durations are either an integer number of
//! milliseconds (`1500`) or a string with a unit (`"1500ms"`, `"10s"`, `"2m"`).
//! Credentials are a list of `[customer_id, customer_secret]` pairs.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Everything the simulator needs to know; see the module docs for the file format.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    pub projects: Vec<SimProject>,
    /// Accepted `(customer_id, customer_secret)` pairs, valid for every project (§3).
    pub credentials: Vec<(String, String)>,
    /// Live players per project. The docs say 20 or 50 (§1.10 [X]); 50 is the default.
    pub max_players: usize,
    pub qps: SimQps,
    /// A created player is invisible to List for this long (§1.6 "wait about 10 seconds").
    #[serde(with = "duration")]
    pub list_lag: Duration,
    /// How long a player stays `connecting` before it becomes `running`.
    #[serde(with = "duration")]
    pub connect_delay: Duration,
    /// Waits before each NCS resend; three entries = "stops after three retries" (§2.1).
    #[serde(with = "duration_list")]
    pub ncs_retry_delays: Vec<Duration>,
    /// An NCS attempt without a 200 within this time failed (§2.1: 10 s).
    #[serde(with = "duration")]
    pub ncs_timeout: Duration,
    /// How the last List page marks the end: `""` (RA) or `"0"` (QS), §1.6 [X].
    pub end_token: String,
    /// The NCS servers' addresses, as the NCS IP query API answers them (§2.6).
    pub ncs_ips: Vec<std::net::IpAddr>,
    /// CA certificates (PEM files) trusted for HTTPS deliveries besides the system's,
    /// e.g. a test's self-signed certificate; Agora's NCS trusts public CAs only.
    pub ncs_ca_files: Vec<std::path::PathBuf>,
    /// Target duration of the simulated HLS sources (whole seconds, at least 1): a live
    /// playlist adds one segment per target duration.
    #[serde(with = "duration")]
    pub hls_target_duration: Duration,
    /// What a running player does when its source stops playing.
    pub source_loss: SourceLoss,
}

/// What a running player does when its source stops playing. Agora documents both: a
/// `failed` status ("cannot connect or cannot play", §1.8) and the destruction of a
/// player idle for longer than its `idleTimeout` (`"Idle Timeout"`, §2.3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceLoss {
    /// It turns `failed` at once (NCS event 4).
    #[default]
    Fail,
    /// It stays `running` (List and NCS say nothing) until its `idleTimeout` ends, then
    /// is destroyed (NCS event 3, `"Idle Timeout"`), unless the source comes back first.
    Linger,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            projects: Vec::new(),
            credentials: Vec::new(),
            max_players: 50,
            qps: SimQps::default(),
            list_lag: Duration::from_secs(10),
            connect_delay: Duration::from_secs(1),
            ncs_retry_delays: vec![
                Duration::from_secs(1),
                Duration::from_secs(2),
                Duration::from_secs(4),
            ],
            ncs_timeout: Duration::from_secs(10),
            end_token: String::new(),
            // The simulator delivers its notices from loopback, so that is its NCS server.
            ncs_ips: vec![std::net::IpAddr::from([127, 0, 0, 1])],
            ncs_ca_files: Vec::new(),
            hls_target_duration: Duration::from_secs(2),
            source_loss: SourceLoss::Fail,
        }
    }
}

/// Hand-written so that secrets never reach logs: only customer ids are shown.
impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.credentials.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("SimConfig")
            .field("projects", &self.projects)
            .field("credential_ids", &ids)
            .field("max_players", &self.max_players)
            .field("qps", &self.qps)
            .field("list_lag", &self.list_lag)
            .field("connect_delay", &self.connect_delay)
            .field("ncs_retry_delays", &self.ncs_retry_delays)
            .field("ncs_timeout", &self.ncs_timeout)
            .field("end_token", &self.end_token)
            .field("ncs_ips", &self.ncs_ips)
            .field("ncs_ca_files", &self.ncs_ca_files)
            .field("hls_target_duration", &self.hls_target_duration)
            .field("source_loss", &self.source_loss)
            .finish()
    }
}

/// One Agora project (App ID) with Media Pull enabled and, optionally, NCS configured.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimProject {
    pub app_id: String,
    /// The NCS product secret used to sign notices (§2.4).
    #[serde(default)]
    pub ncs_secret: String,
    /// Where notices go; `None` = NCS not configured, events are not delivered.
    #[serde(default)]
    pub ncs_url: Option<String>,
}

impl fmt::Debug for SimProject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimProject")
            .field("app_id", &self.app_id)
            .field("ncs_secret", &"<redacted>")
            .field("ncs_url", &self.ncs_url)
            .finish()
    }
}

/// Per-project QPS limits per API (§1.10). Exceeding any window answers 429.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimQps {
    pub create_with_name: Window,
    pub create_without_name: Window,
    pub delete: Window,
    pub list: Window,
    pub list_filtered: Window,
    /// Agora documents no limit for Update; 10/s is this simulator's own assumption.
    pub update: Window,
}

impl Default for SimQps {
    fn default() -> Self {
        SimQps {
            create_with_name: Window::per_second(2),
            create_without_name: Window::per_second(50),
            delete: Window::per_second(100),
            list: Window {
                per_second: 10,
                per_minute: Some(20),
            },
            list_filtered: Window {
                per_second: 2,
                per_minute: Some(15),
            },
            update: Window::per_second(10),
        }
    }
}

/// A sliding-window limit: at most `per_second` admitted requests in any 1 s, and, when
/// set, at most `per_minute` in any 60 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    pub per_second: u32,
    #[serde(default)]
    pub per_minute: Option<u32>,
}

impl Window {
    pub fn per_second(n: u32) -> Window {
        Window {
            per_second: n,
            per_minute: None,
        }
    }
}

/// Parses `"1500ms"`, `"10s"`, `"2m"` or a bare number of milliseconds.
pub(crate) fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    let (num, unit_ms) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1_000)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60_000)
    } else {
        (t, 1)
    };
    let n: u64 = num.trim().parse().ok()?;
    Some(Duration::from_millis(n.checked_mul(unit_ms)?))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawDuration {
    Millis(u64),
    Text(String),
}

impl RawDuration {
    fn into_duration<E: serde::de::Error>(self) -> Result<Duration, E> {
        match self {
            RawDuration::Millis(ms) => Ok(Duration::from_millis(ms)),
            RawDuration::Text(t) => parse_duration(&t).ok_or_else(|| {
                E::custom(format!(
                    "invalid duration {t:?}, use e.g. 1500, \"1500ms\", \"10s\", \"2m\""
                ))
            }),
        }
    }
}

/// Serde adapter: a duration as milliseconds (or a string with a unit when reading).
pub(crate) mod duration {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        ms.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        RawDuration::deserialize(d)?.into_duration()
    }
}

/// Serde adapter for a list of durations (read-only: configs are never written back).
mod duration_list {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
        Vec::<RawDuration>::deserialize(d)?
            .into_iter()
            .map(RawDuration::into_duration)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_with_units_and_defaults() {
        let yaml = "projects:\n  - app_id: app1\n    ncs_secret: s\ncredentials:\n  - [cid, csecret]\nlist_lag: 2s\nconnect_delay: 250\nncs_retry_delays: [10ms, \"1s\"]\nqps:\n  list: {per_second: 3, per_minute: 5}\n";
        let c: SimConfig = serde_saphyr::from_str(yaml).expect("valid yaml");
        assert_eq!(c.list_lag, Duration::from_secs(2));
        assert_eq!(c.connect_delay, Duration::from_millis(250));
        assert_eq!(
            c.ncs_retry_delays,
            vec![Duration::from_millis(10), Duration::from_secs(1)]
        );
        assert_eq!(c.qps.list.per_minute, Some(5));
        assert_eq!(c.qps.create_with_name.per_second, 2);
        assert_eq!(c.max_players, 50);
        assert_eq!(
            c.credentials,
            vec![("cid".to_string(), "csecret".to_string())]
        );
    }

    #[test]
    fn json_rejects_bad_durations_and_debug_hides_secrets() {
        assert!(serde_json::from_str::<SimConfig>(r#"{"list_lag":"soon"}"#).is_err());
        let c: SimConfig = serde_json::from_str(
            r#"{"projects":[{"app_id":"a","ncs_secret":"topsecret"}],"credentials":[["id","hidden"]]}"#,
        )
        .expect("valid json");
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains("topsecret") && !dbg.contains("hidden"),
            "{dbg}"
        );
    }
}
