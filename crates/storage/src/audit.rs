//! The audit log: every change made through the API, and every attempt
//! refused, appended before the answer goes out and never changed or
//! deleted through the API (only aged out by the node's retention).

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

/// One change, or one refused attempt at one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Unix milliseconds.
    pub time: i64,
    /// The namespace acted on; `None` for the node's own (node-wide tokens).
    pub namespace: Option<String>,
    /// Who: `node` for the node's own token, else the token's id.
    pub token_id: String,
    pub token_name: String,
    /// The token's role (`admin` for the node's own); empty when the
    /// request was refused before a token was recognised.
    pub role: String,
    /// The client's address, as the connection saw it.
    pub source: String,
    /// What was attempted: `deploy`, `activate`, `rollback`, `delete`,
    /// `secret.set`, `secret.remove`, `token.create`, `token.revoke`,
    /// `redrive`, `quota.set`, `traffic.set`; the node's own decisions on a
    /// canary: `canary.rolled_back`, `canary.stepped`, `canary.promoted`.
    pub action: String,
    /// What it was done to: an app, `app/secret`, a function, a token id.
    pub target: String,
    /// The answer's status code: 2xx done, anything else refused or failed.
    pub status: u16,
    /// `ok`, or the error code answered.
    pub outcome: String,
    /// The version, the components' digests, the token made: what tells
    /// the change apart from another of the same kind.
    pub detail: String,
}

/// Which entries to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only this namespace's (`Some(None)`: only the node's own entries);
    /// `None`: all.
    pub namespace: Option<Option<String>>,
    /// Only entries at or after this time (Unix milliseconds).
    pub since: Option<i64>,
    /// The newest this many, answered oldest first.
    pub limit: usize,
}

impl AuditQuery {
    /// Whether `entry` is one the query asks for, the time and namespace
    /// considered (not the limit).
    pub fn matches(&self, entry: &AuditEntry) -> bool {
        self.since.is_none_or(|since| entry.time >= since)
            && self
                .namespace
                .as_ref()
                .is_none_or(|namespace| *namespace == entry.namespace)
    }
}

/// Why the audit log could not answer.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The backend is out of reach for now (a cluster's NATS); try again.
    #[error("the audit log is unavailable: {0}")]
    Unavailable(String),
    #[error("the audit log failed: {0}")]
    Backend(String),
}

pub type AuditFuture<T> = Pin<Box<dyn Future<Output = Result<T, AuditError>> + Send>>;

/// Where a node appends its audit log: `stratus.db` on a single node, a
/// stream in a cluster, so every node's changes are in one log.
pub trait AuditLog: Send + Sync + std::fmt::Debug + 'static {
    /// Appends an entry durably: when this answers, the entry is kept.
    fn append(&self, entry: AuditEntry) -> AuditFuture<()>;

    /// The newest `query.limit` entries that match, oldest first.
    fn list(&self, query: AuditQuery) -> AuditFuture<Vec<AuditEntry>>;
}
