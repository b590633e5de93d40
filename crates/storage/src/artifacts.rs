//! Components' bytes, content-addressed: what a backend must keep, whoever
//! runs it.
//!
//! A component is stored once under the SHA-256 of its bytes, so uploading
//! the same component to many apps (or many versions) costs one copy, and a
//! hash recorded in the [`AppStore`](crate::AppStore) is enough to find the
//! bytes again.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use bytes::Bytes;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The result of [`ArtifactStore::put`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlobRef {
    /// Lowercase hex SHA-256 of the bytes.
    pub sha256: String,
    /// `false` when identical bytes were already stored.
    pub created: bool,
}

/// Lowercase hex SHA-256 of `bytes`, the name components are stored under.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Whether `s` has the shape of a name made by [`sha256_hex`]. Backends
/// check it before building a path or a key from a hash, so a hash can
/// never smuggle `/` or `..` in.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Why an artifact store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("\"{0}\" is not a SHA-256 hash (expected 64 lowercase hex characters)")]
    InvalidHash(String),

    /// Nothing is stored under the hash; `location` is where the backend
    /// looked (a path, a bucket and key).
    #[error("component blob {sha256} is missing (expected at {location})")]
    Missing { sha256: String, location: String },

    /// A backend on a server cannot be reached right now; trying later may
    /// succeed. The admin API answers 503 with `Retry-After`.
    #[error("the component store is unavailable: {0}")]
    Unavailable(String),

    /// The backend itself failed (a full disk, a lost connection); its
    /// message is shown unchanged.
    #[error(transparent)]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

impl ArtifactError {
    /// Wraps a backend's own error.
    pub fn backend(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        ArtifactError::Backend(e.into())
    }

    /// [`ArtifactError::InvalidHash`] unless `sha256` is a well-formed hash.
    pub fn check_hash(sha256: &str) -> Result<(), ArtifactError> {
        if is_sha256_hex(sha256) {
            Ok(())
        } else {
            Err(ArtifactError::InvalidHash(sha256.to_owned()))
        }
    }
}

/// What an artifact store operation resolves to.
pub type ArtifactFuture<T> = Pin<Box<dyn Future<Output = Result<T, ArtifactError>> + Send>>;

/// Where a node keeps component bytes, by their SHA-256.
///
/// The contract a backend keeps:
/// - **Durable and whole before answering.** `put` resolves only once the
///   bytes survive a crash, and no reader ever sees part of them under
///   their hash: a version recorded after a `put` must find its component
///   after a restart.
/// - **Idempotent.** Putting bytes already stored changes nothing and says
///   so (`created: false`); removing what is gone succeeds. Concurrent puts
///   of the same bytes both succeed.
/// - **Hashes are checked.** A string that is not 64 lowercase hex
///   characters is never stored, never turned into a path or key, and is
///   [`ArtifactError::InvalidHash`] (`contains` answers `false`).
/// - **No reference counting.** The store does not know which versions use
///   a component; the control plane removes one only when the
///   [`AppStore`](crate::AppStore) reports it unused, and checks
///   `contains` before recording a version, serialising both.
pub trait ArtifactStore: Send + Sync + 'static {
    /// Stores `bytes` under their SHA-256 and reports whether they were new.
    fn put(&self, bytes: Bytes) -> ArtifactFuture<BlobRef>;

    /// Whether bytes with this hash are stored.
    fn contains(&self, sha256: &str) -> ArtifactFuture<bool>;

    /// The stored bytes; [`ArtifactError::Missing`] when there are none.
    fn read(&self, sha256: &str) -> ArtifactFuture<Vec<u8>>;

    /// Removes the bytes; bytes already gone count as removed.
    fn remove(&self, sha256: &str) -> ArtifactFuture<()>;

    /// A file on this node that holds the bytes, for as long as they stay
    /// stored: the runtime re-reads a component from it when it reloads a
    /// function after scaling it to zero. A backend that keeps bytes
    /// elsewhere makes a local copy before it answers. For bytes that are
    /// not stored a backend answers [`ArtifactError::Missing`] or a path
    /// where no file is (the local file backend does not look).
    fn local_path(&self, sha256: &str) -> ArtifactFuture<PathBuf>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_hex_is_lowercase_hex_of_the_digest() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(is_sha256_hex(&sha256_hex(b"x")));
        assert!(!is_sha256_hex(&sha256_hex(b"x").to_uppercase()));
    }

    #[test]
    fn error_display_texts() {
        let sha = "ab".repeat(32);
        let missing = ArtifactError::Missing {
            sha256: sha.clone(),
            location: "/d/components/sha256/ab/x".into(),
        };
        assert_eq!(
            missing.to_string(),
            format!("component blob {sha} is missing (expected at /d/components/sha256/ab/x)")
        );
        assert_eq!(
            ArtifactError::check_hash("../x").unwrap_err().to_string(),
            "\"../x\" is not a SHA-256 hash (expected 64 lowercase hex characters)"
        );
        assert!(ArtifactError::check_hash(&sha).is_ok());
        let backend = ArtifactError::backend(std::io::Error::other("disk full"));
        assert_eq!(backend.to_string(), "disk full");
    }
}
