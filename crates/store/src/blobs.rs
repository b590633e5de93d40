//! Content-addressed component files under `components/sha256/`.
//!
//! A component's bytes are stored once, named by their SHA-256, so uploading
//! the same component to many apps (or many versions) costs one file, and a
//! hash in the database is enough to find the bytes. Files are written with
//! the temp-file/fsync/rename dance so a crash never leaves a truncated blob
//! under its final name.

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::Store;
use crate::error::StoreError;

/// The result of [`Store::put_blob`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlobRef {
    /// Lowercase hex SHA-256 of the bytes.
    pub sha256: String,
    /// `false` when an identical blob was already stored.
    pub created: bool,
}

/// Lowercase hex SHA-256 of `bytes`, the name blobs are stored under.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Whether `s` has the shape of a name produced by [`sha256_hex`]. Checked
/// before building paths so a hash can never smuggle `/` or `..` in.
pub(crate) fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub(crate) fn check_hash(sha256: &str) -> Result<(), StoreError> {
    if is_sha256_hex(sha256) {
        Ok(())
    } else {
        Err(StoreError::InvalidHash(sha256.to_owned()))
    }
}

/// `components/sha256` inside the data directory.
pub(crate) fn blob_root(data_dir: &Path) -> PathBuf {
    data_dir.join("components").join("sha256")
}

impl Store {
    /// Where the blob with this hash lives (whether or not it exists). The
    /// two-character fan-out keeps directories small.
    pub fn blob_path(&self, sha256: &str) -> PathBuf {
        let prefix = sha256.get(..2).unwrap_or(sha256);
        blob_root(&self.data_dir).join(prefix).join(sha256)
    }

    /// Whether a blob with this hash is stored. Malformed hashes are never stored.
    pub fn has_blob(&self, sha256: &str) -> bool {
        is_sha256_hex(sha256) && self.blob_path(sha256).is_file()
    }

    /// Stores `bytes` under their SHA-256 and reports whether a new file was written.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<BlobRef, StoreError> {
        let sha256 = sha256_hex(bytes);
        let path = self.blob_path(&sha256);
        if path.is_file() {
            return Ok(BlobRef {
                sha256,
                created: false,
            });
        }
        write_durably(&path, bytes).map_err(|source| StoreError::WriteBlob {
            path: path.clone(),
            source,
        })?;
        tracing::debug!(%sha256, size = bytes.len(), "stored component blob");
        Ok(BlobRef {
            sha256,
            created: true,
        })
    }

    /// Reads a blob back. Contents are not re-hashed: the store wrote them
    /// itself, and the caller compiles them anyway.
    pub fn read_blob(&self, sha256: &str) -> Result<Vec<u8>, StoreError> {
        check_hash(sha256)?;
        let path = self.blob_path(sha256);
        fs::read(&path).map_err(|source| {
            if source.kind() == ErrorKind::NotFound {
                StoreError::BlobMissing {
                    sha256: sha256.to_owned(),
                    path: path.clone(),
                }
            } else {
                StoreError::ReadBlob {
                    sha256: sha256.to_owned(),
                    path: path.clone(),
                    source,
                }
            }
        })
    }

    /// Removes a blob; a blob that is already gone counts as removed.
    pub(crate) fn remove_blob(&self, sha256: &str) -> std::io::Result<()> {
        if !is_sha256_hex(sha256) {
            return Ok(());
        }
        match fs::remove_file(self.blob_path(sha256)) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// Writes `bytes` to `path` so that after return the file is complete and its
/// directory entry is on disk, and at no point is a partial file visible at `path`.
fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("blob path has no parent directory"))?;
    let new_dir = !dir.is_dir();
    fs::create_dir_all(dir)?;
    if new_dir {
        // The new fan-out directory's own entry must be durable too, or the
        // blob could vanish with it after a crash.
        if let Some(parent) = dir.parent() {
            sync_dir(parent)?;
        }
    }
    // Same directory, so the rename below is atomic (no cross-device copy).
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    // Concurrent writers of the same bytes both rename identical content, so
    // replacing an existing file here is harmless.
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}
