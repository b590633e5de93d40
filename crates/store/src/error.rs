//! The errors of the SQLite and file backends that are not the traits'
//! own: opening the data directory, and the backends' failures, which
//! reach callers as `AppStoreError::Backend` / `ArtifactError::Backend`
//! with their messages unchanged.
//!
//! Every variant names the thing it is about (path, app, version, hash) so
//! the message can be shown to an operator as-is.

use std::path::{Path, PathBuf};

use stratus_sqlite::During;
use stratus_storage::AppStoreError;

/// Why a backend could not be opened on a data directory.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(
        "data directory {} exists but is not a directory; point Stratus at a directory or remove the file",
        path.display()
    )]
    NotADirectory { path: PathBuf },

    #[error("cannot create directory {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },

    /// Opening or migrating `stratus.db`.
    #[error(transparent)]
    Sqlite(#[from] stratus_sqlite::SqliteError),
}

/// A row whose spec is not JSON: the database was edited or damaged.
#[derive(Debug, thiserror::Error)]
#[error(
    "stored spec of function \"{function}\" in version {version} of app \"{app}\" is not valid JSON: {source}"
)]
pub struct CorruptSpec {
    pub app: String,
    pub version: u32,
    pub function: String,
    pub source: serde_json::Error,
}

/// A component file that could not be written, read or removed.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot write component blob {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("cannot read component blob {sha256} at {}: {source}", path.display())]
    Read {
        sha256: String,
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("cannot remove component blob {}: {source}", path.display())]
    Remove {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The name of this crate's database in error messages.
const DB: &str = "store";

/// A failed statement as the app store's error, naming what the node was
/// doing: `.sql(|| "listing apps")?`.
pub(crate) trait Sql<T> {
    fn sql<S: Into<std::borrow::Cow<'static, str>>>(
        self,
        action: impl FnOnce() -> S,
    ) -> Result<T, AppStoreError>;
}

impl<T> Sql<T> for rusqlite::Result<T> {
    fn sql<S: Into<std::borrow::Cow<'static, str>>>(
        self,
        action: impl FnOnce() -> S,
    ) -> Result<T, AppStoreError> {
        self.during_with(DB, action).map_err(AppStoreError::backend)
    }
}

/// Refuses a data directory that is a file, then creates it and `inner`
/// (a directory inside it, or the data directory again) if needed.
pub(crate) fn create_dirs(data_dir: &Path, inner: &Path) -> Result<(), OpenError> {
    if data_dir.exists() && !data_dir.is_dir() {
        return Err(OpenError::NotADirectory {
            path: data_dir.to_path_buf(),
        });
    }
    for dir in [data_dir, inner] {
        std::fs::create_dir_all(dir).map_err(|source| OpenError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    Ok(())
}
