//! The one place that keeps the app store and the artifact store in step.
//! They know nothing of each other, so the control plane holds the
//! invariant, under its deploy lock (which serialises deploy, activate and
//! delete):
//!
//! - a version never points at a component that is not stored: the bytes
//!   are put, then checked, then the version is recorded;
//! - a deleted app's unshared components are removed, with their compiled
//!   code: the app store says which no remaining version uses;
//! - a refused deploy leaves no component behind that it stored itself.

use std::path::PathBuf;

use bytes::Bytes;
use stratus_storage::{BlobRef, NewFunction};
use tokio::sync::MutexGuard;

use crate::error::ControlError;
use crate::node::{Node, not_found};

/// A function of a version to store, with its component's bytes.
pub(crate) struct FunctionUpload {
    pub name: String,
    pub spec: serde_json::Value,
    pub bytes: Bytes,
}

/// A version as stored: its number, and for each function (in the order
/// given) its component as stored and the local file holding it.
pub(crate) struct StoredVersion {
    pub number: u32,
    pub blobs: Vec<BlobRef>,
    pub sources: Vec<PathBuf>,
}

impl Node {
    /// Stores the components of a new version of `app`, checks that each is
    /// stored, then records the version (as live, with `activate`). The caller holds the
    /// deploy lock (`_serialized`), so nothing removes a component between
    /// the check and the record. On failure the components this call
    /// stored are removed again.
    pub(crate) async fn store_version(
        &self,
        _serialized: &MutexGuard<'_, ()>,
        app: &str,
        manifest: &str,
        functions: Vec<FunctionUpload>,
        activate: bool,
    ) -> Result<StoredVersion, ControlError> {
        let mut blobs = Vec::with_capacity(functions.len());
        let stored = self
            .put_and_record(app, manifest, functions, activate, &mut blobs)
            .await;
        if stored.is_err() {
            let created: Vec<&str> = blobs
                .iter()
                .filter(|b| b.created)
                .map(|b| b.sha256.as_str())
                .collect();
            self.forget_blobs(&created).await;
        }
        let (number, sources) = stored?;
        Ok(StoredVersion {
            number,
            blobs,
            sources,
        })
    }

    async fn put_and_record(
        &self,
        app: &str,
        manifest: &str,
        functions: Vec<FunctionUpload>,
        activate: bool,
        blobs: &mut Vec<BlobRef>,
    ) -> Result<(u32, Vec<PathBuf>), ControlError> {
        let mut new_functions = Vec::with_capacity(functions.len());
        let mut sources = Vec::with_capacity(functions.len());
        for f in functions {
            let blob = self.artifacts.put(f.bytes).await?;
            new_functions.push(NewFunction {
                name: f.name,
                component_sha256: blob.sha256.clone(),
                spec: f.spec,
            });
            blobs.push(blob);
        }
        for f in &new_functions {
            if !self.artifacts.contains(&f.component_sha256).await? {
                return Err(ControlError::ComponentNotUploaded {
                    app: app.to_owned(),
                    function: f.name.clone(),
                    sha256: f.component_sha256.clone(),
                });
            }
            // Before the commit: once the version is recorded live, the
            // deploy must not fail.
            sources.push(self.artifacts.local_path(&f.component_sha256).await?);
        }
        let record = self
            .apps
            .create_version(app, manifest, new_functions, activate)
            .await?;
        Ok((record.number, sources))
    }

    /// Deletes `app` with all its versions, then removes the components no
    /// remaining version uses and their compiled code. The caller holds the
    /// deploy lock, so no deploy records one of them meanwhile. Removal is
    /// best effort: a leftover file only costs disk space, so failures are
    /// logged rather than returned.
    pub(crate) async fn delete_stored_app(
        &self,
        _serialized: &MutexGuard<'_, ()>,
        app: &str,
    ) -> Result<(), ControlError> {
        let unused = self
            .apps
            .delete_app(app)
            .await
            .map_err(|e| not_found(e, app))?;
        for sha in &unused {
            if let Err(error) = self.artifacts.remove(sha).await {
                tracing::warn!(app, sha256 = %sha, %error, "could not remove unreferenced component blob");
            }
        }
        let runtime = self.runtime.clone();
        tokio::task::spawn_blocking(move || {
            for sha in &unused {
                runtime.forget(sha);
            }
        })
        .await
        .map_err(ControlError::internal)
    }

    /// Removes components a deploy stored when it failed, so a refused
    /// deploy leaves no trace on disk either.
    async fn forget_blobs(&self, created: &[&str]) {
        for sha in created {
            if let Err(error) = self.artifacts.remove(sha).await {
                tracing::warn!(sha256 = %sha, "could not remove blob of a failed deploy: {error}");
            }
        }
    }
}
