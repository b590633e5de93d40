//! [`JetStreamArtifacts`]: components in a JetStream object store, so every
//! node of a cluster finds the bytes a version names, whichever node took
//! the upload. The bucket is laid out as NATS object stores are (ADR-20:
//! stream `OBJ_<bucket>`, chunks on `$O.<bucket>.C.<nuid>`, one meta per
//! object on `$O.<bucket>.M.<name>`), so an operator's `nats object` tool
//! lists and fetches components by their SHA-256.
//!
//! Chunks are written before the meta that names them and purged only once
//! no meta can name them again, so a reader never meets half an object; a
//! meta is written with a compare-and-set on the one it replaces, so two
//! nodes racing to store (or remove) the same bytes agree on one outcome.

mod objects;
#[cfg(test)]
mod tests;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use stratus_storage::{ArtifactError, ArtifactFuture, ArtifactStore, BlobRef, is_sha256_hex};

use crate::api::{JetStream, JetStreamError};
use objects::{Bucket, ObjectInfo};

/// How often a put or remove tries again when another writer changed the
/// object's meta between its read and its write. Each retry means another
/// node finished a write, so a handful is plenty.
const WRITE_ATTEMPTS: usize = 8;

/// Why [`JetStreamArtifacts::open`] failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenArtifactsError {
    #[error("\"{0}\" cannot name a JetStream object store (letters, digits, `_` and `-` only)")]
    InvalidBucket(String),

    #[error("a JetStream object store keeps 1 to 5 replicas, not {0}")]
    InvalidReplicas(usize),

    #[error("cannot create the component cache directory {path}: {source}")]
    Cache {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error(transparent)]
    JetStream(#[from] JetStreamError),
}

/// Component bytes in a JetStream object store, with a local copy of each
/// component the runtime loads. Cheap to clone.
#[derive(Debug, Clone)]
pub struct JetStreamArtifacts {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    js: JetStream,
    bucket: Bucket,
    cache: PathBuf,
}

/// An object's current meta and the sequence a write replacing it names.
#[derive(Debug)]
struct Current {
    info: ObjectInfo,
    sequence: u64,
}

impl JetStreamArtifacts {
    /// Opens (creating it if needed) the object store `bucket` with
    /// `replicas` copies of every chunk, and the node's cache directory for
    /// [`ArtifactStore::local_path`], private to the node's user because
    /// the runtime executes what it finds there.
    pub async fn open(
        js: JetStream,
        bucket: &str,
        replicas: usize,
        cache_dir: &Path,
    ) -> Result<JetStreamArtifacts, OpenArtifactsError> {
        let bucket =
            Bucket::new(bucket).ok_or_else(|| OpenArtifactsError::InvalidBucket(bucket.into()))?;
        if !(1..=5).contains(&replicas) {
            return Err(OpenArtifactsError::InvalidReplicas(replicas));
        }
        let cache = cache_dir.to_owned();
        let dir = cache.clone();
        tokio::task::spawn_blocking(move || create_private_dir(&dir))
            .await
            .map_err(std::io::Error::other)
            .and_then(std::convert::identity)
            .map_err(|source| OpenArtifactsError::Cache {
                path: cache.clone(),
                source,
            })?;
        js.ensure_stream(bucket.stream_config(replicas)).await?;
        Ok(JetStreamArtifacts {
            inner: Arc::new(Inner { js, bucket, cache }),
        })
    }
}

impl Inner {
    /// The object's last meta, deleted or not; `None` if it never existed.
    async fn current(&self, sha256: &str) -> Result<Option<Current>, ArtifactError> {
        let subject = self.bucket.meta_subject(sha256);
        let Some(message) = self
            .js
            .last_message(self.bucket.stream(), &subject)
            .await
            .map_err(ArtifactError::from)?
        else {
            return Ok(None);
        };
        let info = serde_json::from_slice(&message.payload).map_err(|e| {
            ArtifactError::backend(format!("the meta on {subject} is not an object's: {e}"))
        })?;
        Ok(Some(Current {
            info,
            sequence: message.sequence,
        }))
    }

    /// The object's meta if its bytes are stored.
    async fn live(&self, sha256: &str) -> Result<Option<ObjectInfo>, ArtifactError> {
        Ok(self
            .current(sha256)
            .await?
            .map(|current| current.info)
            .filter(|info| !info.deleted))
    }

    async fn put(&self, bytes: Bytes) -> Result<BlobRef, ArtifactError> {
        let hashed = bytes.clone();
        let digest = tokio::task::spawn_blocking(move || Sha256::digest(&hashed))
            .await
            .map_err(ArtifactError::backend)?;
        let sha256 = hex::encode(digest);
        let blob = |created| BlobRef {
            sha256: sha256.clone(),
            created,
        };
        let mut expected = match self.current(&sha256).await? {
            Some(current) if !current.info.deleted => return Ok(blob(false)),
            current => current.map_or(0, |c| c.sequence),
        };
        let nuid = uuid::Uuid::now_v7().simple().to_string();
        let chunks = self.bucket.chunk_subject(&nuid);
        if let Err(e) = objects::publish_chunks(&self.js, &chunks, &bytes).await {
            self.discard(&chunks).await;
            return Err(ArtifactError::from(e));
        }
        let info = ObjectInfo::new(&self.bucket, &sha256, nuid, bytes.len(), &digest);
        for _ in 0..WRITE_ATTEMPTS {
            match objects::publish_meta(&self.js, &self.bucket, &info, expected).await {
                Ok(()) => {
                    let (size, bucket) = (bytes.len(), self.bucket.name());
                    tracing::debug!(%sha256, size, bucket, "stored component blob");
                    return Ok(blob(true));
                }
                // Our meta was refused, so nothing will ever name our chunks.
                Err(e) if e.is_wrong_last_sequence() => match self.current(&sha256).await {
                    Ok(Some(current)) if !current.info.deleted => {
                        self.discard(&chunks).await;
                        return Ok(blob(false));
                    }
                    Ok(current) => expected = current.map_or(0, |c| c.sequence),
                    Err(e) => {
                        self.discard(&chunks).await;
                        return Err(e);
                    }
                },
                Err(e) => return self.after_unanswered_meta(&info, expected, e).await,
            }
        }
        self.discard(&chunks).await;
        Err(ArtifactError::backend(format!(
            "gave up storing component blob {sha256}: its meta in JetStream object store {} \
             changed {WRITE_ATTEMPTS} times while it was written",
            self.bucket.name()
        )))
    }

    /// A meta publish that failed without a verdict (a timeout, a lost
    /// connection) may still have been stored: find out before purging the
    /// chunks it names.
    async fn after_unanswered_meta(
        &self,
        info: &ObjectInfo,
        expected: u64,
        error: JetStreamError,
    ) -> Result<BlobRef, ArtifactError> {
        let blob = |created| {
            Ok(BlobRef {
                sha256: info.name.clone(),
                created,
            })
        };
        match self.current(&info.name).await {
            Ok(Some(current)) if current.info.nuid == info.nuid => blob(true),
            // Another meta was written since, so ours can no longer land.
            Ok(current) if current.as_ref().map_or(0, |c| c.sequence) != expected => {
                self.discard(&self.bucket.chunk_subject(&info.nuid)).await;
                match current {
                    Some(current) if !current.info.deleted => blob(false),
                    _ => Err(ArtifactError::from(error)),
                }
            }
            // Ours may still land: leave its chunks (orphans cost space;
            // a meta without its chunks would cost the component).
            _ => Err(ArtifactError::from(error)),
        }
    }

    /// Purges chunks no meta names; failing leaves orphans, not damage.
    async fn discard(&self, chunks: &str) {
        if let Err(e) = self.js.purge(self.bucket.stream(), chunks).await {
            tracing::warn!(
                subject = chunks,
                "could not purge unused component chunks: {e}"
            );
        }
    }

    async fn remove(&self, sha256: &str) -> Result<(), ArtifactError> {
        for _ in 0..WRITE_ATTEMPTS {
            let Some(current) = self.current(sha256).await? else {
                return self.forget_local(sha256).await;
            };
            let chunks = self.bucket.chunk_subject(&current.info.nuid);
            if !current.info.deleted {
                let marker = current.info.deleted();
                match objects::publish_meta(&self.js, &self.bucket, &marker, current.sequence).await
                {
                    Ok(()) => {}
                    Err(e) if e.is_wrong_last_sequence() => continue,
                    Err(e) => return Err(ArtifactError::from(e)),
                }
            }
            // Also when the marker was there already: a removal that
            // failed after writing it left these chunks behind.
            self.js
                .purge(self.bucket.stream(), &chunks)
                .await
                .map_err(ArtifactError::from)?;
            return self.forget_local(sha256).await;
        }
        Err(ArtifactError::backend(format!(
            "gave up removing component blob {sha256}: its meta in JetStream object store {} \
             changed {WRITE_ATTEMPTS} times while it was removed",
            self.bucket.name()
        )))
    }

    /// Removes this node's cached copy, so a later `local_path` does not
    /// serve bytes the store no longer has (other nodes keep theirs).
    async fn forget_local(&self, sha256: &str) -> Result<(), ArtifactError> {
        match tokio::fs::remove_file(self.cache.join(sha256)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(ArtifactError::backend(e)),
            _ => Ok(()),
        }
    }

    async fn read(&self, sha256: &str) -> Result<Vec<u8>, ArtifactError> {
        let info = self
            .live(sha256)
            .await?
            .ok_or_else(|| ArtifactError::Missing {
                sha256: sha256.to_owned(),
                location: self.bucket.location(sha256),
            })?;
        objects::read_chunks(&self.js, &self.bucket, &info, sha256).await
    }

    /// A cached file is whole and verified (it is written under a temporary
    /// name, synced, then renamed), so it is served without asking NATS:
    /// reloading a function keeps working while the cluster is unreachable.
    async fn local_path(&self, sha256: &str) -> Result<PathBuf, ArtifactError> {
        let path = self.cache.join(sha256);
        if tokio::fs::metadata(&path).await.is_ok_and(|m| m.is_file()) {
            return Ok(path);
        }
        let bytes = self.read(sha256).await?;
        let (dir, target) = (self.cache.clone(), path.clone());
        tokio::task::spawn_blocking(move || write_whole(&dir, &target, &bytes))
            .await
            .map_err(ArtifactError::backend)?
            .map_err(|e| {
                ArtifactError::backend(format!("cannot cache component {}: {e}", path.display()))
            })?;
        Ok(path)
    }
}

impl ArtifactStore for JetStreamArtifacts {
    fn put(&self, bytes: Bytes) -> ArtifactFuture<BlobRef> {
        let inner = Arc::clone(&self.inner);
        Box::pin(async move { inner.put(bytes).await })
    }

    fn contains(&self, sha256: &str) -> ArtifactFuture<bool> {
        let (inner, sha256) = (Arc::clone(&self.inner), sha256.to_owned());
        Box::pin(async move { Ok(is_sha256_hex(&sha256) && inner.live(&sha256).await?.is_some()) })
    }

    fn read(&self, sha256: &str) -> ArtifactFuture<Vec<u8>> {
        let (inner, sha256) = (Arc::clone(&self.inner), sha256.to_owned());
        Box::pin(async move {
            ArtifactError::check_hash(&sha256)?;
            inner.read(&sha256).await
        })
    }

    fn remove(&self, sha256: &str) -> ArtifactFuture<()> {
        let (inner, sha256) = (Arc::clone(&self.inner), sha256.to_owned());
        Box::pin(async move {
            ArtifactError::check_hash(&sha256)?;
            inner.remove(&sha256).await
        })
    }

    fn local_path(&self, sha256: &str) -> ArtifactFuture<PathBuf> {
        let (inner, sha256) = (Arc::clone(&self.inner), sha256.to_owned());
        Box::pin(async move {
            ArtifactError::check_hash(&sha256)?;
            inner.local_path(&sha256).await
        })
    }
}

fn create_private_dir(path: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path)
}

/// Writes `bytes` to `path` so that no partial file is ever visible there,
/// even after a crash.
fn write_whole(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    // Concurrent copies of the same component rename identical bytes.
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
