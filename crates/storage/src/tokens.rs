//! Scoped API tokens: who may do what to which namespace.
//!
//! A token is shown once, when it is created; a store keeps only its id
//! (public, the part of the token that finds the record), a random salt and
//! the SHA-256 of salt and secret. The secret is 256 random bits, so a fast
//! hash is enough: nobody can guess their way through 2^256 secrets, and a
//! leaked store gives no token back.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a token may do, each role including the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads apps, functions, logs, usage and events.
    Viewer,
    /// Also invokes functions and publishes events.
    Invoker,
    /// Also deploys, activates, rolls back, deletes, sets secrets and
    /// redrives dead letters.
    Deployer,
    /// Also manages tokens.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Invoker, Role::Deployer, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Invoker => "invoker",
            Role::Deployer => "deployer",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("\"{s}\" is not a role; use viewer, invoker, deployer or admin"))
    }
}

/// A token as a store keeps it: never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Public: the part of the token that finds this record.
    pub id: String,
    pub name: String,
    /// The namespace it acts in; `None` for a node-wide token.
    pub namespace: Option<String>,
    pub role: Role,
    /// Hex of the random salt.
    pub salt: String,
    /// Hex of SHA-256(salt ‖ secret).
    pub hash: String,
    /// Unix milliseconds.
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

/// Why a token store could not answer.
#[derive(Debug, thiserror::Error)]
pub enum TokenStoreError {
    /// A token with this id exists already.
    #[error("a token with id {0} exists already")]
    Conflict(String),
    /// The backend is out of reach for now (a cluster's NATS); try again.
    #[error("the token store is unavailable: {0}")]
    Unavailable(String),
    #[error("the token store failed: {0}")]
    Backend(String),
}

pub type TokenFuture<T> = Pin<Box<dyn Future<Output = Result<T, TokenStoreError>> + Send>>;

/// Where a node keeps its tokens: `stratus.db` on a single node, a bucket
/// in a cluster, so a token made through one node works on every node.
pub trait TokenStore: Send + Sync + std::fmt::Debug + 'static {
    /// Stores a new token; an id taken already is
    /// [`TokenStoreError::Conflict`] and changes nothing.
    fn create(&self, record: TokenRecord) -> TokenFuture<()>;

    /// The token with this id, if there is one.
    fn get(&self, id: &str) -> TokenFuture<Option<TokenRecord>>;

    /// The tokens of `namespace` (`None`: the node-wide ones), oldest
    /// first.
    fn list(&self, namespace: Option<&str>) -> TokenFuture<Vec<TokenRecord>>;

    /// Removes a token; whether there was one.
    fn revoke(&self, id: &str) -> TokenFuture<bool>;

    /// Notes that the token was used at `at` (Unix milliseconds), unless a
    /// later use is noted already; nothing when it is gone. The caller decides how often to note it.
    fn touch(&self, id: &str, at: i64) -> TokenFuture<()>;
}
