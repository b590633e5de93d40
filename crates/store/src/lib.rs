//! `stratus-store`: the node's apps and components, kept in its data
//! directory — the embedded backends of the storage crate's
//! [`AppStore`](stratus_storage::AppStore) and
//! [`ArtifactStore`](stratus_storage::ArtifactStore).
//!
//! A single Stratus node must survive `kill -9` without losing anything it has
//! acknowledged, and restart serving exactly the apps that were live:
//!
//! - [`SqliteAppStore`]: `stratus.db` — SQLite in WAL mode with
//!   `synchronous=FULL`, holding apps, their numbered immutable versions and
//!   each version's functions (see [`schema`] for the tables and how
//!   migrations are added).
//! - [`FileArtifacts`]: `components/sha256/<2 hex>/<64 hex>` — component
//!   bytes, content-addressed so identical uploads are stored once, each
//!   written durably (temp file, fsync, rename).
//!
//! The two know nothing of each other: the control plane uploads blobs
//! first, checks they are stored, then records the version, and removes the
//! components a deleted app leaves unused, all under its deploy lock. So
//! the database never points at bytes that do not exist, and a failed
//! deploy leaves no rows behind.

mod apps;
mod audit;
#[cfg(test)]
mod conformance;
mod db;
mod error;
mod files;
mod namespaces;
mod queries;
mod records;
pub mod schema;
mod sqlite;
mod tokens;

pub use audit::SqliteAudit;
pub use error::{CorruptSpec, FileError, OpenError};
pub use files::FileArtifacts;
pub use namespaces::SqliteNamespaces;
pub use sqlite::SqliteAppStore;
pub use tokens::SqliteTokens;

/// File name of the SQLite database inside the data directory.
pub const DB_FILE: &str = "stratus.db";
