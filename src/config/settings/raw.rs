//! The settings file as serde reads it: every value kept with its location (`Spanned`)
//! so that [`build`](super::build) can report each semantic problem with a line and
//! column. Nothing here checks a rule; the fields are only read by the parent module.

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::PrimaryDomain;
use super::store::{RawLeader, RawStore};
use crate::config::limits::RawLimits;
use crate::config::secret::SecretRef;

pub(super) type Text = Spanned<String>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSettings {
    #[serde(default)]
    pub(super) server: RawServer,
    #[serde(default)]
    pub(super) store: RawStore,
    #[serde(default)]
    pub(super) leader: RawLeader,
    #[serde(default)]
    pub(super) reconcile: RawReconcile,
    #[serde(default)]
    pub(super) scenes_file: Option<Text>,
    pub(super) projects: Spanned<Vec<RawProject>>,
    #[serde(default)]
    pub(super) app_webhook: Option<RawAppWebhook>,
    #[serde(default)]
    pub(super) reports: RawReports,
    #[serde(default)]
    pub(super) ncs_allowlist: RawNcsAllowlist,
    #[serde(default)]
    pub(super) source_probe: Option<Spanned<RawSourceProbe>>,
    #[serde(default)]
    pub(super) events: RawEvents,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSourceProbe {
    #[serde(default)]
    pub(super) enabled: Option<Spanned<bool>>,
    #[serde(default)]
    pub(super) interval: Option<Text>,
    #[serde(default)]
    pub(super) max_interval: Option<Text>,
    #[serde(default)]
    pub(super) timeout: Option<Text>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEvents {
    #[serde(default)]
    pub(super) per_scene: Option<Spanned<u32>>,
    #[serde(default)]
    pub(super) max_age: Option<Text>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    #[serde(default)]
    pub(super) listen: Option<Text>,
    #[serde(default)]
    pub(super) metrics_listen: Option<Text>,
    #[serde(default)]
    pub(super) admin_token: Option<Spanned<SecretRef>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNcsAllowlist {
    #[serde(default)]
    pub(super) enforce: Option<Spanned<bool>>,
    #[serde(default)]
    pub(super) refresh_interval: Option<Text>,
    #[serde(default)]
    pub(super) trusted_proxies: Option<Vec<Text>>,
}

/// An app webhook as written, in the settings file or in a scene.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAppWebhook {
    pub(super) url: Text,
    pub(super) secret: Spanned<SecretRef>,
    #[serde(default)]
    pub(super) timeout: Option<Text>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReports {
    #[serde(default)]
    pub(super) window: Option<Text>,
    #[serde(default)]
    pub(super) threshold: Option<Spanned<u32>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReconcile {
    #[serde(default)]
    pub(super) poll_interval: Option<Text>,
    #[serde(default)]
    pub(super) list_lag: Option<Text>,
    #[serde(default)]
    pub(super) check_interval: Option<Text>,
    #[serde(default)]
    pub(super) uid_quarantine: Option<Text>,
    #[serde(default)]
    pub(super) rejected_retry: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProject {
    pub(super) id: Text,
    pub(super) app_id: Text,
    pub(super) customer_id: Spanned<SecretRef>,
    pub(super) customer_secret: Spanned<SecretRef>,
    pub(super) ncs_secret: Spanned<SecretRef>,
    #[serde(default)]
    pub(super) api: RawApi,
    #[serde(default)]
    pub(super) limits: RawLimits,
    #[serde(default)]
    pub(super) name_prefix: Option<Text>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApi {
    #[serde(default)]
    pub(super) primary_domain: Option<PrimaryDomain>,
    #[serde(default)]
    pub(super) base_url: Option<Text>,
    #[serde(default)]
    pub(super) timeout: Option<Text>,
    #[serde(default)]
    pub(super) area: Option<Text>,
    #[serde(default)]
    pub(super) scheme: Option<Text>,
    #[serde(default)]
    pub(super) return_to_primary_after: Option<Text>,
    #[serde(default)]
    pub(super) resolve: Option<std::collections::BTreeMap<String, Text>>,
}
