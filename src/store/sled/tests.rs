//! The embedded backend against the store's contract.

use std::path::PathBuf;

use crate::store::Store;
use crate::store::contract::{Harness, Place, contract_tests};

/// A directory for one store, removed with the place.
struct SledPlace(PathBuf);

impl Place for SledPlace {
    async fn open(&self) -> Store {
        Store::reopen(&self.0)
    }
}

impl Drop for SledPlace {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Sled;

impl Harness for Sled {
    async fn place(&self) -> impl Place {
        SledPlace(std::env::temp_dir().join(format!("pk-store-{}", uuid::Uuid::new_v4())))
    }
}

contract_tests!(Sled);
