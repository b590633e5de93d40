//! Typed errors for the store.
//!
//! Every variant names the thing it is about (app, version, hash, path) so the
//! message can be shown to an operator as-is; the admin API maps `AppNotFound`
//! and `VersionNotFound` to 404s and the rest to internal errors.

use std::path::PathBuf;

/// Everything that can go wrong while reading or writing the node's state.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
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

    /// Opening, migrating or using the store's database.
    #[error(transparent)]
    Sqlite(#[from] stratus_sqlite::SqliteError),

    #[error("\"{0}\" is not a SHA-256 hash (expected 64 lowercase hex characters)")]
    InvalidHash(String),

    #[error("cannot write component blob {}: {source}", path.display())]
    WriteBlob {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("component blob {sha256} is missing (expected at {})", path.display())]
    BlobMissing { sha256: String, path: PathBuf },

    #[error("cannot read component blob {sha256} at {}: {source}", path.display())]
    ReadBlob {
        sha256: String,
        path: PathBuf,
        source: std::io::Error,
    },

    #[error(
        "function \"{function}\" of app \"{app}\" uses component {sha256}, which has not been uploaded"
    )]
    ComponentNotUploaded {
        app: String,
        function: String,
        sha256: String,
    },

    #[error("function \"{function}\" appears more than once in the new version of app \"{app}\"")]
    DuplicateFunction { app: String, function: String },

    #[error(
        "app \"{app}\" has used every version number up to {last}; delete and recreate the app"
    )]
    VersionNumbersExhausted { app: String, last: u32 },

    #[error("app \"{0}\" not found")]
    AppNotFound(String),

    #[error("app \"{app}\" has no version {number}")]
    VersionNotFound { app: String, number: u32 },

    #[error(
        "stored spec of function \"{function}\" in version {version} of app \"{app}\" is not valid JSON: {source}"
    )]
    CorruptSpec {
        app: String,
        version: u32,
        function: String,
        source: serde_json::Error,
    },
}

/// The name of this crate's database in error messages.
pub(crate) const DB: &str = "store";
