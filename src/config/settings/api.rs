//! The domain-failover settings of a project's `api:` block: area, scheme and the
//! test-only name overrides. Kept apart from `settings/mod.rs` because they only matter
//! when `base_url` is not set.

use std::collections::BTreeMap;

use super::raw::RawApi;
use crate::agora::domains::{Area, Override};
use crate::config::diagnostic::Diags;

pub(super) fn area(api: &RawApi, path: &str, diags: &mut Diags<'_>) -> Area {
    match api.area.as_ref().map(|t| (t, t.value.as_str())) {
        None | Some((_, "us")) => Area::Us,
        Some((_, "eu")) => Area::Eu,
        Some((_, "ap")) => Area::Ap,
        Some((_, "cn")) => Area::Cn,
        Some((t, other)) => {
            diags.push(
                t.referenced,
                format!("{path}.api.area"),
                format!("unknown area {other:?}: expected us, eu, ap or cn"),
            );
            Area::Us
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
