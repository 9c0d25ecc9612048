//! The `store:` and `leader:` blocks: where state is kept (the embedded sled store of a
//! single replica, or etcd shared by several) and how replicas take turns leading.

use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::duration;
use crate::config::diagnostic::Diags;
use crate::config::env::Env;
use crate::config::secret::{self, SecretRef};

/// A value as written, with where it was written.
type Text = Spanned<String>;

#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// The sled directory, resolved against the settings file's directory.
    pub path: PathBuf,
    pub backend: StoreBackend,
}

#[derive(Debug, Clone)]
pub enum StoreBackend {
    /// The embedded store in `path`: one replica.
    Sled,
    /// etcd: any number of replicas, one leader per project.
    Etcd(EtcdSettings),
}

#[derive(Debug, Clone)]
pub struct EtcdSettings {
    /// Client URLs, `http://HOST:PORT` or `https://HOST:PORT`.
    pub endpoints: Vec<String>,
    /// Every key of this installation starts with it.
    pub prefix: String,
    /// This installation's name (default: the prefix); a second installation with the
    /// same prefix and project ids refuses to act.
    pub installation: String,
    /// The CA that signed the members' certificates, for `https://` endpoints.
    pub ca_file: Option<PathBuf>,
    pub user: Option<String>,
    pub password: Option<SecretString>,
}

/// How replicas lead projects (etcd only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderSettings {
    /// The lease of a replica's leader keys: a replica that stops renewing loses its
    /// projects this long after its last renewal, and stops acting a margin before.
    pub ttl: Duration,
    /// This replica's name in the leader keys: `leader.replica`, else `$HOSTNAME` (the
    /// pod's name on Kubernetes).
    pub replica: String,
    /// Where the other replicas reach this one: `leader.advertise`, else derived at
    /// start from the listening address (or `$POD_IP` when listening on every address).
    pub advertise: Option<String>,
}

pub(super) const DEFAULT_STORE: &str = "data/pullkeeper.sled";
const DEFAULT_TTL: Duration = Duration::from_secs(10);
/// The shortest `leader.ttl`: renewals every ttl/3 must fit a request timeout and a
/// margin of at least 1 s.
pub const MIN_LEADER_TTL: Duration = Duration::from_secs(3);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStore {
    #[serde(default)]
    backend: Option<Text>,
    #[serde(default)]
    path: Option<Text>,
    #[serde(default)]
    etcd: Option<Spanned<RawEtcd>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEtcd {
    endpoints: Spanned<Vec<Text>>,
    prefix: Text,
    #[serde(default)]
    installation: Option<Text>,
    #[serde(default)]
    ca_file: Option<Text>,
    #[serde(default)]
    user: Option<Text>,
    #[serde(default)]
    password: Option<Spanned<SecretRef>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLeader {
    #[serde(default)]
    ttl: Option<Text>,
    #[serde(default)]
    replica: Option<Text>,
    #[serde(default)]
    advertise: Option<Text>,
}

pub(super) fn store(
    raw: &RawStore,
    base: &Path,
    env: &dyn Env,
    diags: &mut Diags<'_>,
) -> StoreSettings {
    let path = base.join(raw.path.as_ref().map_or(DEFAULT_STORE, |t| &t.value));
    let backend = match raw.backend.as_ref().map(|t| (t, t.value.as_str())) {
        None | Some((_, "sled")) => StoreBackend::Sled,
        Some((t, "etcd")) => match &raw.etcd {
            Some(etcd) => StoreBackend::Etcd(etcd_settings(etcd, base, env, diags)),
            None => {
                diags.push(
                    t.referenced,
                    "store.etcd",
                    "store.backend is etcd but there is no store.etcd block (endpoints, prefix)",
                );
                StoreBackend::Sled
            }
        },
        Some((t, other)) => {
            diags.push(
                t.referenced,
                "store.backend",
                format!("unknown backend {other:?}: expected sled or etcd"),
            );
            StoreBackend::Sled
        }
    };
    StoreSettings { path, backend }
}

fn etcd_settings(
    raw: &Spanned<RawEtcd>,
    base: &Path,
    env: &dyn Env,
    diags: &mut Diags<'_>,
) -> EtcdSettings {
    let r = &raw.value;
    if r.endpoints.value.is_empty() {
        diags.push(
            r.endpoints.referenced,
            "store.etcd.endpoints",
            "no endpoints: at least one etcd client URL is required",
        );
    }
    let mut https = false;
    let endpoints = r
        .endpoints
        .value
        .iter()
        .enumerate()
        .map(|(i, t)| {
            https |= t.value.starts_with("https://");
            http_url(
                t,
                &format!("store.etcd.endpoints[{i}]"),
                "etcd endpoint",
                diags,
            )
        })
        .collect();
    let prefix = r.prefix.value.clone();
    if prefix.is_empty() || prefix.contains('\0') {
        diags.push(
            r.prefix.referenced,
            "store.etcd.prefix",
            "expected a non-empty key prefix such as /pullkeeper/prod/",
        );
    }
    let ca_file = r.ca_file.as_ref().map(|t| base.join(&t.value));
    if https && ca_file.is_none() {
        diags.push(
            raw.referenced,
            "store.etcd.ca_file",
            "https endpoints need ca_file, the PEM file of the CA that signed the members' certificates",
        );
    }
    let password = r
        .password
        .as_ref()
        .map(|p| secret::resolve(p, base, env, "store.etcd.password", diags));
    if r.user.is_some() != r.password.is_some() {
        diags.push(
            raw.referenced,
            "store.etcd.user",
            "user and password go together: set both or neither",
        );
    }
    EtcdSettings {
        endpoints,
        installation: r
            .installation
            .as_ref()
            .map_or_else(|| prefix.clone(), |t| t.value.clone()),
        prefix,
        ca_file,
        user: r.user.as_ref().map(|t| t.value.clone()),
        password,
    }
}

/// `http(s)://HOST:PORT`, nothing after the port (an etcd endpoint, a replica's
/// address).
fn http_url(t: &Text, path: &str, what: &str, diags: &mut Diags<'_>) -> String {
    let url = t.value.trim_end_matches('/');
    let authority = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    let ok = authority.is_some_and(|a| {
        a.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && !host.contains('/') && port.parse::<u16>().is_ok_and(|p| p > 0)
        })
    });
    if !ok {
        diags.push(
            t.referenced,
            path,
            format!(
                "invalid {what} {:?}: expected http://HOST:PORT or https://HOST:PORT",
                t.value
            ),
        );
    }
    url.to_string()
}

pub(super) fn leader(raw: &RawLeader, env: &dyn Env, diags: &mut Diags<'_>) -> LeaderSettings {
    let ttl = duration(&raw.ttl, DEFAULT_TTL, "leader.ttl", diags);
    let ttl = match &raw.ttl {
        Some(t) if ttl < MIN_LEADER_TTL => {
            diags.push(
                t.referenced,
                "leader.ttl",
                format!(
                    "{} ms is too short: at least {} s",
                    ttl.as_millis(),
                    MIN_LEADER_TTL.as_secs()
                ),
            );
            DEFAULT_TTL
        }
        _ => ttl,
    };
    let replica = raw
        .replica
        .as_ref()
        .map(|t| t.value.clone())
        .or_else(|| env.var("HOSTNAME").filter(|h| !h.is_empty()))
        .unwrap_or_else(|| format!("pullkeeper-{}", std::process::id()));
    let advertise = raw
        .advertise
        .as_ref()
        .map(|t| http_url(t, "leader.advertise", "address", diags));
    LeaderSettings {
        ttl,
        replica,
        advertise,
    }
}
