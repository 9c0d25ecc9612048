//! The NCS address list (§2.6) of each project: what the refreshers
//! ([`super::ip_refresh`]) fetched, shared with those who show it and, when enforcement
//! is on, with the guard of the webhook that lets only these addresses through.
//!
//! Until a project's first list arrives it allows no one; NCS resends, and the List poll
//! keeps the controller informed.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use serde::Serialize;

/// The last good list of one project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IpList {
    pub ips: Vec<IpAddr>,
    /// Unix seconds.
    pub fetched_at: u64,
    /// The API path that answered (`/v2/ncs/ip` or `/v1/ncs/ip`).
    pub source: &'static str,
}

/// A project's list and how the last fetch went.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProjectIps {
    /// `None` until a fetch succeeds; a failed fetch never clears it.
    pub list: Option<IpList>,
    /// The error of the last fetch, if it failed; cleared by a success.
    pub last_error: Option<String>,
}

/// Every project's list, shared by the refreshers (writers) and the readers.
#[derive(Debug, Clone, Default)]
pub struct NcsAddresses {
    inner: Arc<RwLock<BTreeMap<String, ProjectIps>>>,
}

impl NcsAddresses {
    pub fn succeeded(&self, project: &str, list: IpList) {
        let mut map = self.inner.write().unwrap_or_else(|e| e.into_inner());
        map.insert(
            project.to_string(),
            ProjectIps {
                list: Some(list),
                last_error: None,
            },
        );
    }

    pub fn failed(&self, project: &str, error: String) {
        let mut map = self.inner.write().unwrap_or_else(|e| e.into_inner());
        map.entry(project.to_string()).or_default().last_error = Some(error);
    }

    pub fn all(&self) -> BTreeMap<String, ProjectIps> {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether `ip` is in the project's list; `None` when there is no list yet.
    pub fn allows(&self, project: &str, ip: IpAddr) -> Option<bool> {
        let map = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let list = map.get(project)?.list.as_ref()?;
        Some(list.ips.contains(&ip))
    }
}
