//! The SQLite backend against the storage crate's secret backend suite,
//! each check in a fresh temporary data directory.
#![allow(clippy::unwrap_used)]

use std::any::Any;
use std::sync::Arc;

use stratus_storage::SecretBackend;
use stratus_storage::conformance::Opened;

use crate::SqliteSecrets;

fn open_sqlite() -> Opened<Arc<dyn SecretBackend>> {
    Box::pin(async move {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteSecrets::open(&dir.path().join(SqliteSecrets::FILE)).unwrap();
        (
            Arc::new(store) as Arc<dyn SecretBackend>,
            Box::new(dir) as Box<dyn Any>,
        )
    })
}

stratus_storage::secrets_conformance!(open_sqlite);
