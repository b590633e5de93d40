//! `wasi:keyvalue` (store, atomics, batch): named buckets granted per
//! function and scoped to the app.
//!
//! The guest opens a bucket by name; the host turns that name into a
//! [`BucketId`] (app + bucket) before any backend sees it, so a function of
//! one app can never address another app's data, whatever it asks for. The
//! backend (the node's SQLite or Redis) is chosen once per node and
//! implements [`KeyValueBackend`].

use crate::SharedWarnLimit;
use std::sync::Arc;

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

use std::sync::atomic::{AtomicUsize, Ordering};

pub use stratus_storage::{BucketId, KeyValueBackend, KeyValueError, KeyValueFuture, Pairs};

use super::{CapabilityInfo, CapabilityStats, Grants};
use crate::host::InstanceState;

pub(super) mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "wasi:keyvalue/imports",
        imports: { default: async | trappable },
        with: {
            "wasi:keyvalue/store.bucket": super::Bucket,
        },
    });
}

use bindings::wasi::keyvalue::{atomics, batch, store};

pub const INFO: CapabilityInfo = CapabilityInfo {
    package: "wasi:keyvalue",
    // wasmtime 48 links `0.2.0-draft`, Spin 3 `0.2.0-draft2`
    // (`keyvalue_draft2`).
    versions: &["0.2.0-draft", "0.2.0-draft2"],
    interfaces: &["store", "atomics", "batch"],
    grant: "`keyvalue = [\"<bucket>\", ...]`",
    granted: |grants: &Grants| !grants.keyvalue.buckets.is_empty(),
};

/// The longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 256;
/// The largest value, in bytes.
pub const MAX_VALUE_BYTES: usize = 1 << 20;
/// The most keys one batch call or one `list-keys` page may hold.
pub const MAX_BATCH_KEYS: usize = 1000;
/// The most value bytes one `set-many` may write: a whole batch goes to the
/// backend as one command (one Redis `HSET`, one SQLite transaction).
pub const MAX_BATCH_BYTES: usize = 16 << 20;

/// A function's key-value grant: the buckets its manifest names, in its app.
#[derive(Clone, Default)]
pub struct KeyValueGrant {
    pub app: String,
    pub buckets: Vec<String>,
    /// The node's backend; none on a node without one, where every `open`
    /// fails with a message saying so.
    pub backend: Option<Arc<dyn KeyValueBackend>>,
}

impl std::fmt::Debug for KeyValueGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyValueGrant")
            .field("app", &self.app)
            .field("buckets", &self.buckets)
            .field("backend", &self.backend.as_ref().map(|b| b.kind()))
            .finish()
    }
}

/// An open bucket, as the guest's `bucket` resource.
#[derive(Debug)]
pub struct Bucket {
    pub(super) id: BucketId,
}

/// Per-instance state: the function's grants (shared by all its
/// instances, so creating one allocates nothing) and the node's counters.
pub(crate) struct KeyValueState {
    grants: Arc<Grants>,
    stats: Arc<CapabilityStats>,
    /// Bytes the instance's compare-and-swap handles hold on the host
    /// (`keyvalue_draft2`), kept under a bound so a guest cannot pile up
    /// copies of values outside its own memory limit.
    pub(super) cas_held: AtomicUsize,
}

impl KeyValueState {
    pub(crate) fn new(grants: Arc<Grants>, stats: Arc<CapabilityStats>) -> Self {
        KeyValueState {
            grants,
            stats,
            cas_held: AtomicUsize::new(0),
        }
    }

    fn grant(&self) -> &KeyValueGrant {
        &self.grants.keyvalue
    }
}

/// What the host functions see: the instance's grant and resource table.
pub(crate) struct KeyValueView<'a> {
    pub(super) state: &'a KeyValueState,
    pub(super) table: &'a mut ResourceTable,
}

pub(super) struct KeyValueData;

impl HasData for KeyValueData {
    type Data<'a> = KeyValueView<'a>;
}

pub(super) fn view(state: &mut InstanceState) -> KeyValueView<'_> {
    KeyValueView {
        state: &state.capabilities.keyvalue,
        table: &mut state.table,
    }
}

pub(crate) fn add_to_linker(linker: &mut Linker<InstanceState>) -> wasmtime::Result<()> {
    store::add_to_linker::<_, KeyValueData>(linker, view)?;
    atomics::add_to_linker::<_, KeyValueData>(linker, view)?;
    batch::add_to_linker::<_, KeyValueData>(linker, view)?;
    Ok(())
}

type Answer<T> = wasmtime::Result<Result<T, store::Error>>;

impl KeyValueView<'_> {
    /// The backend and the bucket behind a guest's resource.
    pub(super) fn bucket(
        &self,
        bucket: &Resource<Bucket>,
    ) -> wasmtime::Result<(Arc<dyn KeyValueBackend>, BucketId)> {
        let id = self.table.get(bucket)?.id.clone();
        Ok((self.backend()?, id))
    }

    /// The node's backend, for one more operation on a bucket the guest
    /// opened.
    pub(super) fn backend(&self) -> wasmtime::Result<Arc<dyn KeyValueBackend>> {
        self.state
            .stats
            .keyvalue_operations
            .fetch_add(1, Ordering::Relaxed);
        // A bucket resource exists only after `open` found a backend.
        self.state
            .grant()
            .backend
            .clone()
            .ok_or_else(|| wasmtime::format_err!("a bucket is open without a backend"))
    }

    pub(super) fn failed(&self, bucket: &BucketId, error: KeyValueError) -> store::Error {
        failed(&self.state.stats, bucket, error)
    }
}

/// Why a key cannot be stored, if it cannot.
pub(super) fn check_key(key: &str) -> Result<(), store::Error> {
    if key.is_empty() {
        return Err(store::Error::Other("a key must not be empty".into()));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(store::Error::Other(format!(
            "a key of {} bytes is over the limit of {MAX_KEY_BYTES} bytes",
            key.len()
        )));
    }
    Ok(())
}

pub(super) fn check_value(key: &str, value: &[u8]) -> Result<(), store::Error> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(store::Error::Other(format!(
            "the value for key {key:?} has {} bytes, over the limit of {MAX_VALUE_BYTES} bytes (1 MiB)",
            value.len()
        )));
    }
    Ok(())
}

fn check_batch(len: usize) -> Result<(), store::Error> {
    if len > MAX_BATCH_KEYS {
        return Err(store::Error::Other(format!(
            "a batch of {len} keys is over the limit of {MAX_BATCH_KEYS}"
        )));
    }
    Ok(())
}

fn check_batch_bytes(total: usize) -> Result<(), store::Error> {
    if total > MAX_BATCH_BYTES {
        return Err(store::Error::Other(format!(
            "a batch of {total} value bytes is over the limit of {MAX_BATCH_BYTES} bytes (16 MiB)"
        )));
    }
    Ok(())
}

/// Turns a backend failure into the guest's `error::other`, logging and
/// counting it: the guest sees the message, the operator sees which bucket
/// it was.
fn failed(stats: &CapabilityStats, bucket: &BucketId, error: KeyValueError) -> store::Error {
    if error.is_over_quota() {
        // A refusal, not a fault of the store: counted apart, and logged
        // rate-limited, since a guest looping on a full quota would
        // otherwise write a line per attempt.
        stats.keyvalue_over_quota.fetch_add(1, Ordering::Relaxed);
        if let Some(refusals) = QUOTA_LOG.hit() {
            tracing::warn!(
                app = %bucket.app,
                bucket = %bucket.bucket,
                refusals,
                "key-value write refused: {error}"
            );
        }
    } else {
        stats.keyvalue_errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(app = %bucket.app, bucket = %bucket.bucket, "key-value operation failed: {error}");
    }
    store::Error::Other(error.to_string())
}

/// The bucket a guest's empty bucket name means.
const DEFAULT_BUCKET: &str = "default";

/// Quota refusals are logged the first time, then at most once a second
/// with the number of refusals the line stands for.
static QUOTA_LOG: SharedWarnLimit = SharedWarnLimit::new();

impl store::Host for KeyValueView<'_> {
    async fn open(&mut self, identifier: String) -> Answer<Resource<Bucket>> {
        // Guests written for `wasmtime serve -Skeyvalue` open the bucket
        // `""`, wasmtime's one bucket: here it is the function's `default`
        // bucket, granted like any other, so they run unchanged.
        let identifier = if identifier.is_empty() {
            DEFAULT_BUCKET.to_owned()
        } else {
            identifier
        };
        let grant = self.state.grant();
        if !grant.buckets.contains(&identifier) {
            // The name is the guest's: logged escaped and cut short, so a
            // guest cannot flood or forge the node's log with it.
            let shown: String = identifier.chars().take(64).collect();
            tracing::info!(
                app = %grant.app,
                bucket = ?shown,
                "key-value bucket denied: the function's `keyvalue` grant does not name it"
            );
            self.state
                .stats
                .keyvalue_denied
                .fetch_add(1, Ordering::Relaxed);
            return Ok(Err(store::Error::AccessDenied));
        }
        if grant.backend.is_none() {
            return Ok(Err(store::Error::Other(
                "this node has no key-value backend configured".into(),
            )));
        }
        let id = BucketId {
            app: grant.app.clone(),
            bucket: identifier,
        };
        Ok(Ok(self.table.push(Bucket { id })?))
    }
}

impl store::HostBucket for KeyValueView<'_> {
    async fn get(&mut self, bucket: Resource<Bucket>, key: String) -> Answer<Option<Vec<u8>>> {
        let (backend, id) = self.bucket(&bucket)?;
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        Ok(backend
            .get(id.clone(), key)
            .await
            .map_err(|e| failed(&self.state.stats, &id, e)))
    }

    async fn set(&mut self, bucket: Resource<Bucket>, key: String, value: Vec<u8>) -> Answer<()> {
        let (backend, id) = self.bucket(&bucket)?;
        if let Err(e) = check_key(&key).and_then(|()| check_value(&key, &value)) {
            return Ok(Err(e));
        }
        Ok(backend
            .set(id.clone(), key, value)
            .await
            .map_err(|e| failed(&self.state.stats, &id, e)))
    }

    async fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> Answer<()> {
        let (backend, id) = self.bucket(&bucket)?;
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        Ok(backend
            .delete(id.clone(), key)
            .await
            .map_err(|e| failed(&self.state.stats, &id, e)))
    }

    async fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> Answer<bool> {
        let (backend, id) = self.bucket(&bucket)?;
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        Ok(backend
            .exists(id.clone(), key)
            .await
            .map_err(|e| failed(&self.state.stats, &id, e)))
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<u64>,
    ) -> Answer<store::KeyResponse> {
        let (backend, id) = self.bucket(&bucket)?;
        Ok(backend
            .list_keys(id.clone(), cursor, MAX_BATCH_KEYS)
            .await
            .map(|(keys, cursor)| store::KeyResponse { keys, cursor })
            .map_err(|e| failed(&self.state.stats, &id, e)))
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for KeyValueView<'_> {
    async fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: u64,
    ) -> Answer<u64> {
        let (backend, id) = self.bucket(&bucket)?;
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        // Numbers are signed 64-bit ones (`0.2.0-draft2` subtracts), and
        // this version's are unsigned.
        let Ok(delta) = i64::try_from(delta) else {
            return Ok(Err(failed(
                &self.state.stats,
                &id,
                KeyValueError::Overflow { key },
            )));
        };
        Ok(
            match backend
                .increment(id.clone(), key.clone(), delta)
                .await
                .map_err(|e| failed(&self.state.stats, &id, e))
            {
                Ok(n) => u64::try_from(n).map_err(|_| {
                    store::Error::Other(format!(
                        "key {key:?} now holds {n} (the increment was made), below zero, \
                         which this version of wasi:keyvalue (0.2.0-draft, unsigned) \
                         cannot answer; 0.2.0-draft2's increment is signed"
                    ))
                }),
                Err(e) => Err(e),
            },
        )
    }
}

impl batch::Host for KeyValueView<'_> {
    async fn get_many(&mut self, bucket: Resource<Bucket>, keys: Vec<String>) -> Answer<Pairs> {
        let (backend, id) = self.bucket(&bucket)?;
        if let Err(e) =
            check_batch(keys.len()).and_then(|()| keys.iter().try_for_each(|k| check_key(k)))
        {
            return Ok(Err(e));
        }
        Ok(backend
            .get_many(id.clone(), keys)
            .await
            .map_err(|e| failed(&self.state.stats, &id, e)))
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        pairs: Vec<(String, Vec<u8>)>,
    ) -> Answer<()> {
        let (backend, id) = self.bucket(&bucket)?;
        let checked = check_batch(pairs.len())
            .and_then(|()| {
                pairs
                    .iter()
                    .try_for_each(|(k, v)| check_key(k).and_then(|()| check_value(k, v)))
            })
            .and_then(|()| check_batch_bytes(pairs.iter().map(|(_, v)| v.len()).sum()));
        if let Err(e) = checked {
            return Ok(Err(e));
        }
        Ok(backend
            .set_many(id.clone(), pairs)
            .await
            .map_err(|e| failed(&self.state.stats, &id, e)))
    }

    async fn delete_many(&mut self, bucket: Resource<Bucket>, keys: Vec<String>) -> Answer<()> {
        let (backend, id) = self.bucket(&bucket)?;
        if let Err(e) =
            check_batch(keys.len()).and_then(|()| keys.iter().try_for_each(|k| check_key(k)))
        {
            return Ok(Err(e));
        }
        Ok(backend
            .delete_many(id.clone(), keys)
            .await
            .map_err(|e| failed(&self.state.stats, &id, e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(checked: Result<(), store::Error>) -> String {
        match checked {
            Err(store::Error::Other(message)) => message,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn limits_hold_at_their_bounds() {
        assert!(check_key(&"k".repeat(MAX_KEY_BYTES)).is_ok());
        assert!(
            refused(check_key(&"k".repeat(MAX_KEY_BYTES + 1)))
                .contains("over the limit of 256 bytes")
        );
        assert!(refused(check_key("")).contains("must not be empty"));
        assert!(check_value("k", &vec![0; MAX_VALUE_BYTES]).is_ok());
        assert!(refused(check_value("k", &vec![0; MAX_VALUE_BYTES + 1])).contains("(1 MiB)"));
        assert!(check_batch(MAX_BATCH_KEYS).is_ok());
        assert!(refused(check_batch(MAX_BATCH_KEYS + 1)).contains("a batch of 1001 keys"));
        assert!(check_batch_bytes(MAX_BATCH_BYTES).is_ok());
        assert!(refused(check_batch_bytes(MAX_BATCH_BYTES + 1)).contains("(16 MiB)"));
    }

    #[test]
    fn quota_refusals_name_the_limit_and_the_flag_and_are_counted_apart() {
        let stats = CapabilityStats::default();
        let bucket = BucketId {
            app: "shop".into(),
            bucket: "carts".into(),
        };
        let bytes = KeyValueError::BytesQuota {
            limit: 1024,
            used: 1000,
            adding: 30,
        };
        let store::Error::Other(message) = failed(&stats, &bucket, bytes) else {
            panic!("a quota refusal is error::other");
        };
        assert!(
            message.contains(
                "the app's key-value quota of 1024 bytes (--keyvalue-max-bytes-per-app) is used up"
            ),
            "{message}"
        );
        let keys = KeyValueError::KeysQuota {
            limit: 10,
            used: 10,
            adding: 1,
        };
        let store::Error::Other(message) = failed(&stats, &bucket, keys) else {
            panic!("a quota refusal is error::other");
        };
        assert!(
            message.contains("quota of 10 keys (--keyvalue-max-keys-per-app)"),
            "{message}"
        );
        assert_eq!(stats.keyvalue_over_quota.load(Ordering::Relaxed), 2);
        assert_eq!(stats.keyvalue_errors.load(Ordering::Relaxed), 0);
        failed(&stats, &bucket, KeyValueError::Backend("down".into()));
        assert_eq!(stats.keyvalue_errors.load(Ordering::Relaxed), 1);
    }
}
