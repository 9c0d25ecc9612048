//! Moving notice ids out of the sled tree earlier versions kept them in.

use std::sync::Mutex;

use super::appender::Appender;
use super::index::Index;
use super::writer::record_group;
use super::{TREE, TTL_MS};
use crate::store::{Store, StoreError};

/// Copies the unexpired ids of the sled tree [`TREE`] into the log, makes them durable
/// (`fdatasync`), then drops the tree; returns how many ids were new to the log. So no
/// notice acknowledged before the upgrade is taken again after it. A crash before the
/// tree is gone just repeats the copy at the next open, where the ids are known already.
pub(super) fn import_sled_tree(
    store: &Store,
    now_ms: u64,
    index: &Mutex<Index>,
    appender: &mut Appender,
) -> Result<usize, StoreError> {
    let Some(tree) = store.existing_tree(TREE)? else {
        return Ok(0);
    };
    let mut ids = Vec::new();
    for item in tree.iter() {
        let (key, value) = item?;
        // Values that are not 8 bytes were never written by the dedupe; the old prune
        // dropped them as expired too.
        if let Ok(seen) = <[u8; 8]>::try_from(value.as_ref()) {
            ids.push((key, u64::from_be_bytes(seen)));
        }
    }
    // Measured as at replay (see `replay::load`).
    let newest_ms = ids.iter().map(|(_, ms)| *ms).max().unwrap_or(0);
    let expired_before = newest_ms.min(now_ms).saturating_sub(TTL_MS);
    let live: Vec<(&[u8], u64)> = ids
        .iter()
        .filter(|(_, ms)| *ms >= expired_before)
        .map(|(key, ms)| (key.as_ref(), *ms))
        .collect();
    let mut imported = 0;
    for answer in record_group(index, appender, &live) {
        imported += usize::from(answer?);
    }
    appender.sync()?;
    store.drop_tree(TREE)?;
    store.flush_blocking()?;
    tracing::info!(
        imported,
        expired = ids.len() - live.len(),
        "NCS notice ids moved from the store's sled tree to the notice log"
    );
    Ok(imported)
}
