//! The domain-failover settings of a project's `api:` block: area, scheme and the
//! test-only name overrides. Kept apart from `settings/mod.rs` because they only matter
//! when `base_url` is not set.

use std::collections::BTreeMap;

use serde_saphyr::Location;

use super::raw::RawApi;
use crate::agora::domains::{Override, Region};
use crate::config::diagnostic::Diags;

/// The region `api.area` names. Required for the real API (without `api.base_url`): the
/// adjacent fallback domains depend on it, and no default would be right for most servers.
pub(super) fn area(
    api: &RawApi,
    project_at: Location,
    path: &str,
    diags: &mut Diags<'_>,
) -> Option<Region> {
    let expected = || {
        let names: Vec<&str> = Region::ALL.iter().map(|(name, _)| *name).collect();
        names.join(", ")
    };
    match &api.area {
        None if api.base_url.is_none() => {
            diags.push(
                project_at,
                format!("{path}.api.area"),
                format!(
                    "required for the real API (no api.base_url): the region the primary \
                     domain resolves to from this server, one of {}",
                    expected()
                ),
            );
            None
        }
        None => None,
        Some(t) => {
            let region = Region::parse(&t.value);
            if region.is_none() {
                diags.push(
                    t.referenced,
                    format!("{path}.api.area"),
                    format!(
                        "unknown region {:?}: expected one of {} (the region the primary \
                         domain resolves to; its neighbour is the adjacent fallback)",
                        t.value,
                        expected()
                    ),
                );
            }
            region
        }
    }
}

pub(super) fn scheme(api: &RawApi, path: &str, diags: &mut Diags<'_>) -> String {
    match api.scheme.as_ref() {
        None => "https".to_string(),
        Some(t) if t.value == "https" || t.value == "http" => t.value.clone(),
        Some(t) => {
            diags.push(
                t.referenced,
                format!("{path}.api.scheme"),
                format!("unknown scheme {:?}: expected https or http", t.value),
            );
            "https".to_string()
        }
    }
}

pub(super) fn resolve(
    api: &RawApi,
    path: &str,
    diags: &mut Diags<'_>,
) -> BTreeMap<String, Override> {
    api.resolve
        .iter()
        .flatten()
        .filter_map(|(host, t)| {
            let target = if t.value == "dns-failure" {
                Override::DnsFailure
            } else if let Ok(addr) = t.value.parse() {
                Override::Addr(addr)
            } else {
                diags.push(
                    t.referenced,
                    format!("{path}.api.resolve.{host}"),
                    format!("{:?}: expected IP:PORT or dns-failure", t.value),
                );
                return None;
            };
            Some((host.clone(), target))
        })
        .collect()
}
