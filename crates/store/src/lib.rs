//! `stratus-store`: the node's durable state, kept in its data directory.
//!
//! A single Stratus node must survive `kill -9` without losing anything it has
//! acknowledged, and restart serving exactly the apps that were live. This
//! crate is the one place that touches the disk for that purpose, so the rest
//! of the node can treat "deployed" as a single, atomic fact:
//!
//! - `stratus.db` — SQLite in WAL mode with `synchronous=FULL`, holding apps,
//!   their numbered immutable versions and each version's functions
//!   (see [`schema`] for the tables and how migrations are added).
//! - `components/sha256/<2 hex>/<64 hex>` — component bytes, content-addressed
//!   so identical uploads are stored once (see [`Store::put_blob`]).
//!
//! A deploy uploads blobs first, then calls [`Store::create_version`], which
//! refuses to record a version whose components are not on disk. So the
//! database never points at bytes that do not exist, and a failed deploy
//! leaves no rows behind (at worst an unreferenced blob, reused on retry).
//!
//! The API is synchronous; async callers wrap it in `spawn_blocking`. A
//! [`Store`] is `Send + Sync` and meant to be shared through an `Arc`.

mod apps;
mod blobs;
mod db;
mod error;
mod queries;
mod records;
pub mod schema;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::Connection;

pub use blobs::{BlobRef, sha256_hex};
pub use error::StoreError;
pub use records::{AppRecord, FunctionRecord, LiveFunction, NewFunction, VersionRecord};

/// File name of the SQLite database inside the data directory.
pub const DB_FILE: &str = "stratus.db";

/// Handle to a data directory: the metadata database plus the blob files.
#[derive(Debug)]
pub struct Store {
    data_dir: PathBuf,
    // One connection behind a mutex: writes are rare (deploys) and short, and
    // serialising them also orders blob garbage collection against deploys.
    conn: Mutex<Connection>,
}

impl Store {
    /// Opens the store in `data_dir`, creating the directory, database and
    /// schema as needed and migrating an older schema forward.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        if data_dir.exists() && !data_dir.is_dir() {
            return Err(StoreError::NotADirectory {
                path: data_dir.to_path_buf(),
            });
        }
        let blob_root = blobs::blob_root(data_dir);
        fs_create_dir(data_dir)?;
        fs_create_dir(&blob_root)?;
        let conn = db::open(&data_dir.join(DB_FILE))?;
        tracing::debug!(data_dir = %data_dir.display(), "opened store");
        Ok(Store {
            data_dir: data_dir.to_path_buf(),
            conn: Mutex::new(conn),
        })
    }

    /// The data directory this store was opened on.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Locks the connection. A panic while holding the lock cannot leave a
    /// half-done write behind (an unfinished transaction rolls back when
    /// dropped), so a poisoned lock is safe to keep using.
    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn fs_create_dir(path: &Path) -> Result<(), StoreError> {
    std::fs::create_dir_all(path).map_err(|source| StoreError::CreateDir {
        path: path.to_path_buf(),
        source,
    })
}
