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

    #[error("cannot open database {}: {source}", path.display())]
    OpenDatabase {
        path: PathBuf,
        source: rusqlite::Error,
    },

    #[error(
        "database {} has schema version {found}, but this build of Stratus only understands up to version {supported}; run a newer Stratus",
        path.display()
    )]
    SchemaTooNew {
        path: PathBuf,
        found: u32,
        supported: u32,
    },

    #[error("database error while {action}: {source}")]
    Database {
        action: String,
        source: rusqlite::Error,
    },

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

/// Attaches "what we were doing" to a SQLite error so the message is more
/// than a bare SQLite code.
pub(crate) trait DbContext<T> {
    fn during<S: Into<String>>(self, action: impl FnOnce() -> S) -> Result<T, StoreError>;
}

impl<T> DbContext<T> for rusqlite::Result<T> {
    fn during<S: Into<String>>(self, action: impl FnOnce() -> S) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Database {
            action: action().into(),
            source,
        })
    }
}

impl From<stratus_sqlite::SqliteError> for StoreError {
    fn from(e: stratus_sqlite::SqliteError) -> Self {
        use stratus_sqlite::SqliteError;
        match e {
            SqliteError::Open { path, source } => StoreError::OpenDatabase { path, source },
            SqliteError::SchemaTooNew {
                path,
                found,
                supported,
            } => StoreError::SchemaTooNew {
                path,
                found,
                supported,
            },
            SqliteError::Migrate { to, source, .. } => StoreError::Database {
                action: format!("migrating the schema to version {to}"),
                source,
            },
        }
    }
}
