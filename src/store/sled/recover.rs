//! Opening a store that may be corrupt, and starting over when it is.
//!
//! sled 0.34 has open corruption reports and no repair tool, and a
//! garbled data file can even open as an *empty* database without any error. Agora is
//! the source of truth and every player name is deterministic, so losing the store costs
//! little as long as it is noticed: the directory is moved aside for inspection, the
//! process starts empty, adopts its players from List by name, and rebuilds each scene's
//! UID high-water mark from what List shows. A refusal to start would cost a channel its
//! supervisor until someone deletes the directory by hand.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::SledStore;
use crate::model::{OnAir, SceneControl};
use crate::store::error::StoreError;
use crate::store::interface::Recovery;
use crate::store::trees::{StoredSlot, decode};

/// Tree and key of the marker written when a store is created: a database that opens
/// without it, in a directory that held files, lost its contents.
const META_TREE: &str = "meta";
const FORMAT_KEY: &str = "format";
const FORMAT: &[u8] = b"pullkeeper-store-1";

impl SledStore {
    /// Opens the store at `path`; if it cannot be opened or read, moves it to
    /// `<path>.corrupt-<now_ms>`, logs an error and opens an empty one in its place
    /// (see [`Store::recovery`]). Fails only when even that is impossible.
    pub fn open_or_recover(path: &Path, now_ms: u64) -> Result<SledStore, StoreError> {
        let cause = match open_checked(path) {
            Ok(store) => return Ok(store),
            Err(e) => e.to_string(),
        };
        let aside = aside_path(path, now_ms);
        std::fs::rename(path, &aside).map_err(|e| StoreError::MoveAside {
            path: path.to_path_buf(),
            aside: aside.clone(),
            detail: e.to_string(),
        })?;
        tracing::error!(store = %path.display(), aside = %aside.display(), %cause,
            "store unreadable: moved aside, starting empty; players will be adopted from List");
        let mut store = open_checked(path)?;
        store.backend.recovery = Some(Arc::new(Recovery { aside, cause }));
        Ok(store)
    }

    /// Decodes every value of the trees this module owns, so a corrupt record is found
    /// at start, where it can be recovered from, not in the middle of a failover.
    fn validate(&self) -> Result<(), StoreError> {
        for item in self.slots.iter() {
            let (_, v) = item?;
            decode::<StoredSlot>("slots", &v)?;
        }
        for item in self.onair.iter() {
            let (_, v) = item?;
            decode::<OnAir>("onair", &v)?;
        }
        for (tree, name, len) in [
            (&self.uid_hwm, "uid_hwm", 4),
            (&self.sequences, "update_sequences", 8),
            (&self.uid_released, "uid_released", 8),
            (&self.uids_unknown_until, "uids_unknown_until", 8),
        ] {
            for item in tree.iter() {
                let (_, v) = item?;
                if v.len() != len {
                    return Err(StoreError::Corrupt {
                        tree: name,
                        detail: format!("value of {} bytes, expected {len}", v.len()),
                    });
                }
            }
        }
        for item in self.uids.iter() {
            item?;
        }
        self.pending_notices_impl()?;
        self.notice_positions_impl()?;
        for item in self.scene_controls.iter() {
            let (_, v) = item?;
            decode::<SceneControl>("scene_controls", &v)?;
        }
        Ok(())
    }
}

/// Opens the store, checks its format marker and every record. sled can panic on a
/// corrupt file instead of returning an error; that counts as unreadable too.
fn open_checked(path: &Path) -> Result<SledStore, StoreError> {
    let had_files = std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_some());
    let opened = std::panic::catch_unwind(|| SledStore::open(path)).map_err(|panic| {
        let detail = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "sled panicked".to_string());
        StoreError::Corrupt {
            tree: "(open)",
            detail,
        }
    })?;
    let store = opened?;
    let meta = store.backend.db.open_tree(META_TREE)?;
    match meta.get(FORMAT_KEY)? {
        Some(v) if v.as_ref() == FORMAT => {}
        Some(v) => {
            return Err(StoreError::Corrupt {
                tree: META_TREE,
                detail: format!("unknown format {:?}", String::from_utf8_lossy(&v)),
            });
        }
        // A store written before the marker existed still has its records; an empty
        // database in a directory that held files has lost them.
        None if had_files && store.slots.is_empty() && store.uids.is_empty() => {
            return Err(StoreError::Corrupt {
                tree: META_TREE,
                detail: "the database opened empty although its directory held files".into(),
            });
        }
        None => {
            meta.insert(FORMAT_KEY, FORMAT)?;
            store.backend.db.flush()?;
        }
    }
    store.validate()?;
    Ok(store)
}

fn aside_path(path: &Path, now_ms: u64) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "store".to_string());
    path.with_file_name(format!("{name}.corrupt-{now_ms}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Phase, RECORD_VERSION, Region, SlotKey, SlotRecord};
    use crate::store::interface::StateStore;

    fn dir(tag: &str) -> PathBuf {
        std::env::temp_dir()
            .join(format!("pk-recover-{tag}-{}", uuid::Uuid::new_v4()))
            .join("store")
    }

    /// A store with one slot record, flushed and closed.
    fn written(path: &Path) {
        let store = SledStore::open_or_recover(path, 1).unwrap();
        assert!(store.recovery().is_none());
        let record = SlotRecord {
            v: RECORD_VERSION,
            name: "pk_s_m_1".into(),
            uid: 7,
            generation: 1,
            phase: Phase::Created,
            region: Region::Na,
            id: Some("x".into()),
            created_at_ms: 1,
            spec: None,
        };
        store.put_slot(&SlotKey::new("p", "s", 0), &record).unwrap();
        store.backend.db.flush().unwrap();
    }

    fn garble_every_file(path: &Path) {
        for entry in std::fs::read_dir(path).unwrap() {
            let file = entry.unwrap().path();
            if file.is_file() {
                let len = std::fs::metadata(&file).unwrap().len().max(64);
                let garbage: Vec<u8> = (0..len).map(|i| (i * 7919 % 251) as u8).collect();
                std::fs::write(&file, garbage).unwrap();
            }
        }
    }

    fn cleanup(path: &Path) {
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn an_intact_store_opens_with_its_records() {
        let path = dir("intact");
        written(&path);
        let store = SledStore::open_or_recover(&path, 2).unwrap();
        assert!(store.recovery().is_none());
        assert_eq!(store.project_slots("p").unwrap().len(), 1);
        drop(store);
        cleanup(&path);
    }

    #[test]
    fn garbage_files_are_moved_aside_and_the_store_starts_empty() {
        let path = dir("garbage");
        written(&path);
        garble_every_file(&path);
        let store = SledStore::open_or_recover(&path, 42).unwrap();
        let recovery = store.recovery().expect("recovered").clone();
        assert_eq!(recovery.aside, path.with_file_name("store.corrupt-42"));
        assert!(recovery.aside.is_dir(), "kept for inspection");
        assert!(store.project_slots("p").unwrap().is_empty());
        drop(store);
        // The fresh store is a normal one from now on.
        assert!(
            SledStore::open_or_recover(&path, 43)
                .unwrap()
                .recovery()
                .is_none()
        );
        cleanup(&path);
    }

    #[test]
    fn a_data_file_that_opens_empty_counts_as_corrupt() {
        let path = dir("emptied");
        written(&path);
        let db = path.join("db");
        let len = std::fs::metadata(&db).unwrap().len();
        std::fs::write(&db, vec![0x5a; len as usize]).unwrap();
        let store = SledStore::open_or_recover(&path, 7).unwrap();
        let recovery = store.recovery().expect("recovered");
        assert!(
            recovery.cause.contains("opened empty"),
            "{}",
            recovery.cause
        );
        drop(store);
        cleanup(&path);
    }

    #[test]
    fn an_undecodable_record_counts_as_corrupt() {
        let path = dir("record");
        written(&path);
        {
            let store = SledStore::open(&path).unwrap();
            store
                .slots
                .insert(b"p\0s\0junk", &b"{not json"[..])
                .unwrap();
            store.backend.db.flush().unwrap();
        }
        let store = SledStore::open_or_recover(&path, 9).unwrap();
        let recovery = store.recovery().expect("recovered");
        assert!(recovery.cause.contains("slots"), "{}", recovery.cause);
        drop(store);
        cleanup(&path);
    }
}
