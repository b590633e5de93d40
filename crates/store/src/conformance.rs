//! Both backends against the storage crate's conformance suites, each in a
//! fresh temporary data directory.
#![allow(clippy::unwrap_used)]

use std::any::Any;
use std::sync::Arc;

use stratus_storage::{AppStore, ArtifactStore};

use crate::{FileArtifacts, SqliteAppStore};

fn open_sqlite() -> (Arc<dyn AppStore>, Box<dyn Any>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteAppStore::open(dir.path()).unwrap();
    (Arc::new(store), Box::new(dir))
}

fn open_files() -> (Arc<dyn ArtifactStore>, Box<dyn Any>) {
    let dir = tempfile::tempdir().unwrap();
    let files = FileArtifacts::open(dir.path()).unwrap();
    (Arc::new(files), Box::new(dir))
}

mod sqlite {
    stratus_storage::apps_conformance!(super::open_sqlite);
}

mod files {
    stratus_storage::artifacts_conformance!(super::open_files);
}
