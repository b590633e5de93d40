//! Both backends against the storage crate's conformance suites, each in a
//! fresh temporary data directory.
#![allow(clippy::unwrap_used)]

use std::any::Any;
use std::sync::Arc;

use stratus_storage::conformance::Opened;
use stratus_storage::{AppStore, ArtifactStore};

use crate::{FileArtifacts, SqliteAppStore};

fn open_sqlite() -> Opened<Arc<dyn AppStore>> {
    Box::pin(async move {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteAppStore::open(dir.path()).unwrap();
        (
            Arc::new(store) as Arc<dyn AppStore>,
            Box::new(dir) as Box<dyn Any>,
        )
    })
}

fn open_files() -> Opened<Arc<dyn ArtifactStore>> {
    Box::pin(async move {
        let dir = tempfile::tempdir().unwrap();
        let files = FileArtifacts::open(dir.path()).unwrap();
        (
            Arc::new(files) as Arc<dyn ArtifactStore>,
            Box::new(dir) as Box<dyn Any>,
        )
    })
}

mod sqlite {
    stratus_storage::apps_conformance!(super::open_sqlite);
}

mod files {
    stratus_storage::artifacts_conformance!(super::open_files);
}

fn open_tokens() -> Opened<Arc<dyn stratus_storage::TokenStore>> {
    Box::pin(async move {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteAppStore::open(dir.path()).unwrap();
        (
            Arc::new(store.tokens()) as Arc<dyn stratus_storage::TokenStore>,
            Box::new(dir) as Box<dyn Any>,
        )
    })
}

mod tokens {
    stratus_storage::tokens_conformance!(super::open_tokens);
}

fn open_audit() -> Opened<Arc<dyn stratus_storage::AuditLog>> {
    Box::pin(async move {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteAppStore::open(dir.path()).unwrap();
        let log = store.audit(std::time::Duration::from_secs(3600));
        (
            Arc::new(log) as Arc<dyn stratus_storage::AuditLog>,
            Box::new(dir) as Box<dyn Any>,
        )
    })
}

mod audit {
    stratus_storage::audit_conformance!(super::open_audit);
}

fn open_namespaces() -> Opened<Arc<dyn stratus_storage::NamespaceStore>> {
    Box::pin(async move {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteAppStore::open(dir.path()).unwrap();
        (
            Arc::new(store.namespaces()) as Arc<dyn stratus_storage::NamespaceStore>,
            Box::new(dir) as Box<dyn Any>,
        )
    })
}

mod namespaces {
    stratus_storage::namespaces_conformance!(super::open_namespaces);
}
