//! Apps, their numbered versions and each version's functions: what a
//! backend must keep, whoever runs it.
//!
//! Versions are immutable once written: a deploy adds version `max + 1` and
//! optionally makes it live; a rollback only moves the live pointer back.
//! Versions are never deleted one by one, so a number is never handed out
//! twice while the app exists.

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

/// A function to record in a new version. Its component must already be in
/// the node's [`ArtifactStore`](crate::ArtifactStore): the control plane
/// checks that before [`AppStore::create_version`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewFunction {
    pub name: String,
    /// Lowercase hex SHA-256 of the component's bytes.
    pub component_sha256: String,
    /// Opaque to the store: written and returned as-is.
    pub spec: serde_json::Value,
}

/// A function of a stored version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionRecord {
    pub name: String,
    pub component_sha256: String,
    pub spec: serde_json::Value,
}

/// Now in unix milliseconds, the unit of every timestamp of the app store
/// (and of the nodes list). A clock before 1970 is a broken host;
/// recording 0 beats failing a deploy.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Summary of an app. Timestamps are unix milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppRecord {
    pub name: String,
    pub live_version: Option<u32>,
    /// How many versions the app has.
    pub versions: u32,
    pub created_at: i64,
    pub updated_at: i64,
    /// Its canary, if one runs, and its rollouts' history.
    pub traffic: crate::Traffic,
}

/// One version of an app with its functions (ordered by name).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionRecord {
    pub app: String,
    pub number: u32,
    pub created_at: i64,
    /// Whether this is the app's live version.
    pub live: bool,
    pub functions: Vec<FunctionRecord>,
}

/// A function of some app's live version, as loaded at node start.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveFunctionRecord {
    pub app: String,
    pub version: u32,
    pub function: FunctionRecord,
}

/// Why an app store operation failed. The not-found variants are what the
/// admin API answers 404 for; everything else is the node's fault.
#[derive(Debug, thiserror::Error)]
pub enum AppStoreError {
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

    /// Another writer (a deploy through another node of a cluster) changed
    /// the app between this write's read and its commit; nothing of this
    /// write was kept. The admin API answers 409: the client may try again.
    #[error(
        "app \"{0}\" was changed by another deploy at the same time; nothing was written, try again"
    )]
    Conflict(String),

    /// A backend on a server cannot be reached right now (NATS is down or
    /// has no leader); nothing was written and trying later may succeed.
    /// The admin API answers 503 with `Retry-After`.
    #[error("the app store is unavailable: {0}")]
    Unavailable(String),

    /// The backend itself failed (a SQLite statement, a corrupt row, a
    /// lost connection); its message is shown unchanged.
    #[error(transparent)]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

impl AppStoreError {
    /// Wraps a backend's own error.
    pub fn backend(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        AppStoreError::Backend(e.into())
    }

    /// Whether this says the app or the version does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            AppStoreError::AppNotFound(_) | AppStoreError::VersionNotFound { .. }
        )
    }
}

/// What an app store operation resolves to.
pub type AppFuture<T> = Pin<Box<dyn Future<Output = Result<T, AppStoreError>> + Send>>;

/// Where a node keeps its apps: names, numbered immutable versions, each
/// version's manifest text and functions, and which version is live.
///
/// The contract a backend keeps:
/// - **Durable before answering.** A future resolves `Ok` only once what it
///   wrote survives a crash (`kill -9`, power loss): a node restarts
///   serving exactly the versions it acknowledged as live.
/// - **Atomic writes.** `create_version` (with its functions and the live
///   pointer), `set_live` and `delete_app` each happen whole or not at
///   all, and a reader never sees half of one. The control plane of one
///   node serialises them among themselves, but readers run concurrently;
///   a backend shared by several nodes refuses a write that raced another
///   node's with [`AppStoreError::Conflict`], writing nothing.
/// - **Numbering.** An app's versions are numbered from 1, each new one
///   `max + 1`; a number is never reused while the app exists (a deleted
///   and recreated app starts again at 1).
/// - **Ordering.** Apps by name; versions newest first; a version's
///   functions by name; live functions by app, then function name.
/// - **Opaque contents.** The manifest text and each function's spec JSON
///   are returned exactly as given. Component hashes are recorded, not
///   checked: the control plane checks them against the
///   [`ArtifactStore`](crate::ArtifactStore) first, and removes the
///   components `delete_app` reports unused.
pub trait AppStore: Send + Sync + 'static {
    /// Records a new version of `app` (creating the app if needed) and makes
    /// it live when `activate` is set, in one atomic step. A function name
    /// that repeats is [`AppStoreError::DuplicateFunction`], with nothing
    /// written. The record's functions are ordered by name.
    fn create_version(
        &self,
        app: &str,
        manifest: &str,
        functions: Vec<NewFunction>,
        activate: bool,
    ) -> AppFuture<VersionRecord>;

    /// Makes an existing version the live one (deploy or rollback). Like
    /// `create_version` with `activate`, it ends the app's canary (the
    /// version it was judged against changed), keeping the history.
    fn set_live(&self, app: &str, number: u32) -> AppFuture<()>;

    /// Replaces the app's traffic (its canary and history) and, with
    /// `live`, makes that version live, in one atomic step: a canary's
    /// promotion moves the live pointer and ends the canary at once. A
    /// `live` or canary version the app does not have is
    /// [`AppStoreError::VersionNotFound`], with nothing written.
    fn set_traffic(&self, app: &str, live: Option<u32>, traffic: crate::Traffic) -> AppFuture<()>;

    /// Deletes an app with all its versions, in one atomic step, and returns
    /// the component hashes it used that no remaining version of any app
    /// uses, each once, so the caller can remove them.
    fn delete_app(&self, app: &str) -> AppFuture<Vec<String>>;

    /// All apps, ordered by name.
    fn list_apps(&self) -> AppFuture<Vec<AppRecord>>;

    /// One app, or `None` if there is no app with that name.
    fn app(&self, name: &str) -> AppFuture<Option<AppRecord>>;

    /// All versions of `app`, newest first, each with its functions.
    fn list_versions(&self, app: &str) -> AppFuture<Vec<VersionRecord>>;

    /// One version of `app` with its functions.
    fn version(&self, app: &str, number: u32) -> AppFuture<VersionRecord>;

    /// The `stratus.toml` text uploaded with a version.
    fn manifest(&self, app: &str, number: u32) -> AppFuture<String>;

    /// Every function of every app's live version, ordered by app then
    /// function name: what a node loads when it starts.
    fn live_functions(&self) -> AppFuture<Vec<LiveFunctionRecord>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_display_texts() {
        let cases = [
            (
                AppStoreError::AppNotFound("shop".into()),
                "app \"shop\" not found",
            ),
            (
                AppStoreError::VersionNotFound {
                    app: "shop".into(),
                    number: 4,
                },
                "app \"shop\" has no version 4",
            ),
            (
                AppStoreError::VersionNumbersExhausted {
                    app: "shop".into(),
                    last: u32::MAX,
                },
                "app \"shop\" has used every version number up to 4294967295; delete and recreate the app",
            ),
            (
                AppStoreError::DuplicateFunction {
                    app: "shop".into(),
                    function: "hi".into(),
                },
                "function \"hi\" appears more than once in the new version of app \"shop\"",
            ),
            (
                AppStoreError::backend("store database error while listing apps: disk I/O error"),
                "store database error while listing apps: disk I/O error",
            ),
        ];
        for (err, text) in cases {
            assert_eq!(err.to_string(), text);
        }
        assert!(AppStoreError::AppNotFound("x".into()).is_not_found());
        assert!(!AppStoreError::backend("x").is_not_found());
    }
}
