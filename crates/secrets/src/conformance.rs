//! The SQLite backend against the storage crate's secret backend suite,
//! each check in a fresh temporary data directory.
#![allow(clippy::unwrap_used)]

use std::any::Any;
use std::sync::Arc;

use stratus_storage::SecretBackend;

use crate::SqliteSecrets;

fn open_sqlite() -> (Arc<dyn SecretBackend>, Box<dyn Any>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteSecrets::open(&dir.path().join(SqliteSecrets::FILE)).unwrap();
    (Arc::new(store), Box::new(dir))
}

stratus_storage::secrets_conformance!(open_sqlite);
