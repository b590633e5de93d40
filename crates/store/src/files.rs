//! [`FileArtifacts`]: component bytes as files under `components/sha256/`.
//!
//! A component's bytes are stored once, named by their SHA-256, so uploading
//! the same component to many apps (or many versions) costs one file, and a
//! hash in the database is enough to find the bytes. Files are written with
//! the temp-file/fsync/rename dance so a crash never leaves a truncated blob
//! under its final name.

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use stratus_storage::{
    ArtifactError, ArtifactFuture, ArtifactStore, BlobRef, is_sha256_hex, sha256_hex,
};

use crate::error::{FileError, OpenError, create_dirs};

/// Component files in a data directory: `components/sha256/<2 hex>/<64 hex>`.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct FileArtifacts {
    root: Arc<Path>,
}

impl FileArtifacts {
    /// Opens the component files of `data_dir`, creating the directories as
    /// needed.
    pub fn open(data_dir: &Path) -> Result<FileArtifacts, OpenError> {
        let root = data_dir.join("components").join("sha256");
        create_dirs(data_dir, &root)?;
        Ok(FileArtifacts { root: root.into() })
    }

    /// Where the blob with this hash lives (whether or not it exists). The
    /// two-character fan-out keeps directories small. Only for checked
    /// hashes.
    fn path(&self, sha256: &str) -> PathBuf {
        let prefix = sha256.get(..2).unwrap_or(sha256);
        self.root.join(prefix).join(sha256)
    }

    /// Runs blocking file work on the blocking pool.
    fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&FileArtifacts) -> Result<T, ArtifactError> + Send + 'static,
    ) -> ArtifactFuture<T> {
        let files = self.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || work(&files))
                .await
                .map_err(ArtifactError::backend)?
        })
    }

    fn put_blocking(&self, bytes: &[u8]) -> Result<BlobRef, ArtifactError> {
        let sha256 = sha256_hex(bytes);
        let path = self.path(&sha256);
        if path.is_file() {
            return Ok(BlobRef {
                sha256,
                created: false,
            });
        }
        write_durably(&path, bytes).map_err(|source| {
            ArtifactError::backend(FileError::Write {
                path: path.clone(),
                source,
            })
        })?;
        tracing::debug!(%sha256, size = bytes.len(), "stored component blob");
        Ok(BlobRef {
            sha256,
            created: true,
        })
    }

    /// Reads a blob back. Contents are not re-hashed: the store wrote them
    /// itself, and the caller compiles them anyway.
    fn read_blocking(&self, sha256: &str) -> Result<Vec<u8>, ArtifactError> {
        ArtifactError::check_hash(sha256)?;
        let path = self.path(sha256);
        fs::read(&path).map_err(|source| {
            if source.kind() == ErrorKind::NotFound {
                ArtifactError::Missing {
                    sha256: sha256.to_owned(),
                    location: path.display().to_string(),
                }
            } else {
                ArtifactError::backend(FileError::Read {
                    sha256: sha256.to_owned(),
                    path: path.clone(),
                    source,
                })
            }
        })
    }

    fn remove_blocking(&self, sha256: &str) -> Result<(), ArtifactError> {
        ArtifactError::check_hash(sha256)?;
        let path = self.path(sha256);
        match fs::remove_file(&path) {
            Err(source) if source.kind() != ErrorKind::NotFound => {
                Err(ArtifactError::backend(FileError::Remove { path, source }))
            }
            _ => Ok(()),
        }
    }
}

impl ArtifactStore for FileArtifacts {
    fn put(&self, bytes: Bytes) -> ArtifactFuture<BlobRef> {
        self.run(move |files| files.put_blocking(&bytes))
    }

    fn contains(&self, sha256: &str) -> ArtifactFuture<bool> {
        let sha256 = sha256.to_owned();
        self.run(move |files| Ok(is_sha256_hex(&sha256) && files.path(&sha256).is_file()))
    }

    fn read(&self, sha256: &str) -> ArtifactFuture<Vec<u8>> {
        let sha256 = sha256.to_owned();
        self.run(move |files| files.read_blocking(&sha256))
    }

    fn remove(&self, sha256: &str) -> ArtifactFuture<()> {
        let sha256 = sha256.to_owned();
        self.run(move |files| files.remove_blocking(&sha256))
    }

    /// The blob's own file: nothing to copy, and not looked at.
    fn local_path(&self, sha256: &str) -> ArtifactFuture<PathBuf> {
        let path = ArtifactError::check_hash(sha256).map(|()| self.path(sha256));
        Box::pin(std::future::ready(path))
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
