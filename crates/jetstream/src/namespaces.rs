//! A cluster's namespace quotas in a bucket (`q.<namespace>`), so every
//! node enforces the same ones.

use bytes::Bytes;
use stratus_storage::{NamespaceFuture, NamespaceStore, NamespaceStoreError, Quotas};

use crate::api::JetStreamError;
use crate::kv::{Kv, is_valid_key};

const PREFIX: &str = "q";

#[derive(Clone)]
pub struct JetStreamNamespaces {
    kv: Kv,
}

impl std::fmt::Debug for JetStreamNamespaces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamNamespaces")
            .field("bucket", &self.kv.bucket())
            .finish()
    }
}

fn failed(e: JetStreamError) -> NamespaceStoreError {
    if e.is_unavailable() {
        NamespaceStoreError::Unavailable(e.to_string())
    } else {
        NamespaceStoreError::Backend(e.to_string())
    }
}

/// A namespace's key: namespace names are key-safe, but a key is checked
/// anyway (hex otherwise), so nothing the caller passes becomes a wildcard.
fn key(namespace: &str) -> String {
    let key = format!("{PREFIX}.{namespace}");
    if is_valid_key(&key) && !namespace.contains('.') {
        key
    } else {
        format!("{PREFIX}.x{}", hex::encode(namespace.as_bytes()))
    }
}

impl JetStreamNamespaces {
    pub fn new(kv: Kv) -> JetStreamNamespaces {
        JetStreamNamespaces { kv }
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    namespace: String,
    quotas: Quotas,
}

impl NamespaceStore for JetStreamNamespaces {
    fn quotas(&self, namespace: &str) -> NamespaceFuture<Quotas> {
        let (kv, key) = (self.kv.clone(), key(namespace));
        Box::pin(async move {
            match kv.latest(&key).await.map_err(failed)? {
                Some(entry) => {
                    let stored: Stored = serde_json::from_slice(&entry.value).map_err(|e| {
                        NamespaceStoreError::Backend(format!("corrupt quotas: {e}"))
                    })?;
                    Ok(stored.quotas)
                }
                None => Ok(Quotas::default()),
            }
        })
    }

    fn set_quotas(&self, namespace: &str, quotas: Quotas) -> NamespaceFuture<()> {
        let (kv, key) = (self.kv.clone(), key(namespace));
        let stored = Stored {
            namespace: namespace.to_owned(),
            quotas,
        };
        Box::pin(async move {
            let value = serde_json::to_vec(&stored)
                .map_err(|e| NamespaceStoreError::Backend(e.to_string()))?;
            kv.put(&key, Bytes::from(value)).await.map_err(failed)?;
            Ok(())
        })
    }

    fn all(&self) -> NamespaceFuture<Vec<(String, Quotas)>> {
        let kv = self.kv.clone();
        Box::pin(async move {
            let mut all = Vec::new();
            for entry in kv.entries(PREFIX).await.map_err(failed)? {
                // One record this release cannot read (damaged, or written
                // by a newer one) must not stop every node applying the
                // others' quotas: it is left out, and said.
                match serde_json::from_slice::<Stored>(&entry.value) {
                    Ok(stored) => all.push((stored.namespace, stored.quotas)),
                    Err(e) => tracing::warn!(
                        key = %entry.key,
                        "namespace quotas left out: the record cannot be read: {e}"
                    ),
                }
            }
            all.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(all)
        })
    }
}

#[cfg(test)]
mod tests;
