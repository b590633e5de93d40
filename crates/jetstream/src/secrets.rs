//! Apps' sealed secrets in a bucket, shared by the nodes of a cluster.
//!
//! A function reads its secrets synchronously, inside its call to
//! `wasi:config`, so reads never touch the network: every node keeps a
//! replica of the bucket, filled by a replay at start and kept current by a
//! watch. A write goes to the bucket and returns once this node's replica
//! has it, so the admin API reads back what it just set. The values are
//! sealed by the node's secret store before they get here (with the key
//! every node of the cluster shares), so the bucket holds no plaintext.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use stratus_storage::{SealedSecret, SecretBackend, SecretBackendError, SecretInfo};

use crate::api::JetStreamError;
use crate::kv::{Kv, is_valid_key};
use crate::watch::{Change, Watch};

const PREFIX: &str = "s";
/// How long a write waits for its own change to reach the replica.
const READ_YOUR_WRITE: Duration = Duration::from_secs(5);

#[derive(Serialize, Deserialize)]
struct Stored {
    nonce: String,
    ciphertext: String,
    /// Microseconds since the epoch.
    updated: u64,
}

/// The replica: every secret by (app, name), and the last revision seen.
#[derive(Default)]
struct Replica {
    secrets: RwLock<BTreeMap<(String, String), SealedSecret>>,
    revision: Mutex<u64>,
    advanced: Condvar,
}

impl Replica {
    fn apply(&self, change: &Change) {
        if let Some((app, name)) = parse_key(&change.key) {
            let sealed = change.value.as_deref().and_then(decode);
            if let Ok(mut secrets) = self.secrets.write() {
                match sealed {
                    Some(sealed) => secrets.insert((app, name), sealed),
                    None => secrets.remove(&(app, name)),
                };
            }
        }
        if let Ok(mut revision) = self.revision.lock() {
            *revision = (*revision).max(change.revision);
        }
        self.advanced.notify_all();
    }

    /// Waits until the replica has seen `revision`.
    fn wait_for(&self, revision: u64) -> Result<(), SecretBackendError> {
        let seen = self.revision.lock().map_err(poisoned)?;
        let (_seen, timeout) = self
            .advanced
            .wait_timeout_while(seen, READ_YOUR_WRITE, |seen| *seen < revision)
            .map_err(poisoned)?;
        if timeout.timed_out() {
            return Err(SecretBackendError::new(format!(
                "the secret was stored but this node has not seen it after {}s",
                READ_YOUR_WRITE.as_secs()
            )));
        }
        Ok(())
    }
}

fn poisoned<T>(_: T) -> SecretBackendError {
    SecretBackendError::new("the secrets replica's lock is poisoned")
}

/// The cluster's secret backend.
pub struct JetStreamSecrets {
    kv: Kv,
    runtime: tokio::runtime::Handle,
    replica: Arc<Replica>,
}

impl std::fmt::Debug for JetStreamSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamSecrets")
            .field("bucket", &self.kv.bucket())
            .finish_non_exhaustive()
    }
}

impl JetStreamSecrets {
    /// Replays the bucket into a replica, then keeps following it for as
    /// long as the runtime runs.
    pub async fn open(kv: Kv) -> Result<JetStreamSecrets, JetStreamError> {
        let replica = Arc::new(Replica::default());
        let mut watch = kv.watch(PREFIX).await?;
        while let Some(change) = watch.next_until_current().await? {
            replica.apply(&change);
        }
        // The replay ends when the consumer says nothing is pending, which a
        // busy server may say early: what the bucket lists is in the
        // replica before the node uses it (later writes come by the watch).
        for entry in kv.entries(PREFIX).await? {
            let seen = replica
                .secrets
                .read()
                .map(|secrets| parse_key(&entry.key).is_some_and(|key| secrets.contains_key(&key)))
                .unwrap_or(false);
            if !seen {
                replica.apply(&Change {
                    key: entry.key,
                    value: Some(entry.value),
                    revision: entry.revision,
                });
            }
        }
        tokio::spawn(follow(watch, Arc::downgrade(&replica)));
        Ok(JetStreamSecrets {
            kv,
            runtime: tokio::runtime::Handle::current(),
            replica,
        })
    }

    /// Runs a write on the runtime from this synchronous call, whatever
    /// thread it is on (a blocking-pool thread, a test's thread, even a
    /// runtime worker): a thread of its own waits for it.
    fn write(&self, key: String, value: Option<Bytes>) -> Result<u64, SecretBackendError> {
        let (kv, runtime) = (self.kv.clone(), self.runtime.clone());
        let written = std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    runtime.block_on(async move {
                        match value {
                            Some(value) => kv.put(&key, value).await,
                            None => kv.delete(&key, None).await,
                        }
                    })
                })
                .join()
        })
        .map_err(|_| SecretBackendError::new("the secret write panicked"))?
        .map_err(SecretBackendError::new)?;
        self.replica.wait_for(written)?;
        Ok(written)
    }
}

async fn follow(mut watch: Watch, replica: std::sync::Weak<Replica>) {
    loop {
        let change = match watch.next().await {
            Ok(change) => change,
            Err(e) => {
                tracing::error!(error = %e, "stopped following the cluster's secrets");
                return;
            }
        };
        let Some(replica) = replica.upgrade() else {
            return;
        };
        replica.apply(&change);
    }
}

fn key(app: &str, name: &str) -> Result<String, SecretBackendError> {
    if !is_valid_key(app) || app.contains('.') {
        return Err(SecretBackendError::new(format!(
            "{app:?} cannot name an app in a JetStream bucket"
        )));
    }
    Ok(format!("{PREFIX}.{app}.{}", hex::encode(name)))
}

fn parse_key(key: &str) -> Option<(String, String)> {
    let rest = key.strip_prefix(PREFIX)?.strip_prefix('.')?;
    let (app, name) = rest.split_once('.')?;
    let name = String::from_utf8(hex::decode(name).ok()?).ok()?;
    Some((app.to_owned(), name))
}

fn encode(sealed: &SealedSecret) -> Result<Bytes, SecretBackendError> {
    let updated = sealed
        .updated
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    let stored = Stored {
        nonce: BASE64.encode(&sealed.nonce),
        ciphertext: BASE64.encode(&sealed.ciphertext),
        updated,
    };
    serde_json::to_vec(&stored)
        .map(Bytes::from)
        .map_err(SecretBackendError::new)
}

fn decode(value: &[u8]) -> Option<SealedSecret> {
    let stored: Stored = serde_json::from_slice(value).ok()?;
    Some(SealedSecret {
        nonce: BASE64.decode(stored.nonce).ok()?,
        ciphertext: BASE64.decode(stored.ciphertext).ok()?,
        updated: UNIX_EPOCH + Duration::from_micros(stored.updated),
    })
}

impl SecretBackend for JetStreamSecrets {
    fn put(&self, app: &str, name: &str, sealed: &SealedSecret) -> Result<(), SecretBackendError> {
        self.write(key(app, name)?, Some(encode(sealed)?))
            .map(|_| ())
    }

    fn get(&self, app: &str, name: &str) -> Result<Option<SealedSecret>, SecretBackendError> {
        let secrets = self.replica.secrets.read().map_err(poisoned)?;
        Ok(secrets.get(&(app.to_owned(), name.to_owned())).cloned())
    }

    fn list(&self, app: &str) -> Result<Vec<SecretInfo>, SecretBackendError> {
        let secrets = self.replica.secrets.read().map_err(poisoned)?;
        Ok(secrets
            .iter()
            .filter(|((owner, _), _)| owner == app)
            .map(|((_, name), sealed)| SecretInfo {
                name: name.clone(),
                updated: sealed.updated,
            })
            .collect())
    }

    fn delete(&self, app: &str, name: &str) -> Result<bool, SecretBackendError> {
        if self.get(app, name)?.is_none() {
            return Ok(false);
        }
        self.write(key(app, name)?, None).map(|_| true)
    }
}

#[cfg(test)]
mod tests;
