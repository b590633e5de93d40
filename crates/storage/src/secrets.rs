//! Secrets: where sealed secrets are kept, and where the runtime reads the
//! ones a function was granted.
//!
//! Encryption is not a backend's business: the node's secret store seals a
//! value before it reaches a [`SecretBackend`] and opens it after, so no
//! backend (a file, a JetStream bucket) ever holds or sends a plaintext.

use std::time::SystemTime;

/// Where granted secrets are read from: the node's encrypted secret store.
pub trait SecretSource: Send + Sync + 'static {
    /// The plaintext of secret `name` of `app`, none when it is not set.
    /// An error's message must not contain the value.
    fn reveal(&self, app: &str, name: &str) -> Result<Option<String>, String>;
}

/// A secret as a backend keeps it: ciphertext and the nonce it was sealed
/// with, opaque to the backend, and when it was set.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret {
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
    /// Kept to the microsecond.
    pub updated: SystemTime,
}

impl std::fmt::Debug for SealedSecret {
    // Ciphertext is not secret, but a log has no use for it either.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedSecret")
            .field("updated", &self.updated)
            .finish_non_exhaustive()
    }
}

/// A secret's name and when it was last set: all that is ever listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretInfo {
    pub name: String,
    pub updated: SystemTime,
}

/// The backend itself failed (a SQLite statement, a lost connection); its
/// message is shown unchanged.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct SecretBackendError(pub Box<dyn std::error::Error + Send + Sync>);

impl SecretBackendError {
    /// Wraps a backend's own error.
    pub fn new(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        SecretBackendError(e.into())
    }
}

/// Where the node keeps its apps' sealed secrets, by app and name.
///
/// The contract a backend keeps:
/// - **Durable before answering**, and each write whole: a reader sees the
///   old sealed value or the new one, never a mix of one's nonce and the
///   other's ciphertext.
/// - **Opaque contents.** Nonce and ciphertext come back byte for byte.
/// - **Apps are apart.** The same name in two apps is two secrets;
///   listing and deleting touch only the app named.
/// - **Synchronous.** [`SecretSource::reveal`] runs inside a guest's call
///   to `wasi:config`; a backend across a network answers reads from a
///   local replica it keeps current.
pub trait SecretBackend: Send + Sync + 'static {
    /// Stores (or replaces) secret `name` of `app`.
    fn put(&self, app: &str, name: &str, sealed: &SealedSecret) -> Result<(), SecretBackendError>;

    /// The sealed secret, none when it is not set.
    fn get(&self, app: &str, name: &str) -> Result<Option<SealedSecret>, SecretBackendError>;

    /// The names of `app`'s secrets, sorted, with when each was set.
    fn list(&self, app: &str) -> Result<Vec<SecretInfo>, SecretBackendError>;

    /// Removes a secret; false when it was not set.
    fn delete(&self, app: &str, name: &str) -> Result<bool, SecretBackendError>;
}
