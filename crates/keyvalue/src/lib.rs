//! Where functions' key-value buckets live.
//!
//! Two backends implement the runtime's [`KeyValueBackend`]: the node's own
//! SQLite file (the default: nothing to run besides the node) and a Redis
//! server (shared by several nodes, or already operated by the team). A node
//! picks one at start by a type tag ([`KeyValueConfig`]); functions cannot
//! tell which, and the same conformance tests run against both.
//!
//! Both keep a bucket's keys under its app, so the scoping the runtime does
//! (an app only ever names its own buckets) holds in storage too, and both
//! store an incremented number as decimal ASCII within the signed 64-bit
//! range (Redis's `HINCRBY` range), so a value reads the same on either.
//!
//! Both hold each app to a [`Quota`]: the bytes of its keys and values and
//! the number of its keys, over all its buckets. Each keeps the app's usage
//! next to the data and changes it in the same atomic step as the write
//! (SQLite: triggers in the write's transaction; Redis: Lua scripts), so a
//! write is checked against exact numbers and concurrent writers cannot
//! overshoot.

use std::path::PathBuf;
use std::sync::Arc;

use stratus_storage::KeyValueBackend;
pub use stratus_storage::Quota;

mod redis_backend;
mod sqlite_backend;

pub use redis_backend::RedisKeyValue;
pub use sqlite_backend::SqliteKeyValue;

/// Which backend a node uses, from its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyValueConfig {
    /// A SQLite file in the data directory.
    Sqlite { path: PathBuf },
    /// A Redis server, e.g. `redis://127.0.0.1:6379`.
    Redis { url: String },
}

/// Why a backend could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum KeyValueSetupError {
    #[error(transparent)]
    Sqlite(#[from] stratus_sqlite::SqliteError),
    #[error("invalid Redis URL {url:?}: {reason}")]
    RedisUrl { url: String, reason: String },
}

/// Opens the configured backend, holding every app to `quota`. Redis is
/// connected lazily, on first use: a node starts (and serves everything
/// else) while Redis is down.
pub fn open(
    config: &KeyValueConfig,
    quota: Quota,
) -> Result<Arc<dyn KeyValueBackend>, KeyValueSetupError> {
    Ok(match config {
        KeyValueConfig::Sqlite { path } => Arc::new(SqliteKeyValue::open(path, quota)?),
        KeyValueConfig::Redis { url } => Arc::new(RedisKeyValue::new(url, quota)?),
    })
}

#[cfg(test)]
mod conformance;
