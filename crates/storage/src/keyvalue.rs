//! Key-value buckets: what a backend must do, whoever runs it.

use std::future::Future;
use std::pin::Pin;

/// One app's bucket: what a backend stores under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BucketId {
    pub app: String,
    pub bucket: String,
}

/// Why a backend operation failed. Shown to the guest as `error::other`
/// and logged.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KeyValueError {
    #[error("the value of key {key:?} is not a decimal number, so it cannot be incremented")]
    NotANumber { key: String },
    #[error("incrementing key {key:?} would leave the range of a signed 64-bit number")]
    Overflow { key: String },
    #[error("the key-value store failed: {0}")]
    Backend(String),
    /// A write that would take the app past its byte quota (keys and
    /// values of all its buckets); the backend changed nothing.
    #[error(
        "this write needs {adding} more bytes but the app's key-value quota of {limit} bytes (--keyvalue-max-bytes-per-app) is used up ({used} bytes stored); nothing was written, delete keys to free space"
    )]
    BytesQuota { limit: u64, used: u64, adding: u64 },
    /// A write that would give the app more keys than its quota allows;
    /// the backend changed nothing.
    #[error(
        "this write adds {adding} keys but the app's key-value quota of {limit} keys (--keyvalue-max-keys-per-app) is used up ({used} keys stored); nothing was written, delete keys to free some"
    )]
    KeysQuota { limit: u64, used: u64, adding: u64 },
}

impl KeyValueError {
    /// Whether this is a quota refusal rather than a failure.
    pub fn is_over_quota(&self) -> bool {
        matches!(
            self,
            KeyValueError::BytesQuota { .. } | KeyValueError::KeysQuota { .. }
        )
    }
}

/// The pairs `get-many` finds: one per key asked, none where it is not set.
pub type Pairs = Vec<Option<(String, Vec<u8>)>>;

/// What a backend operation resolves to.
pub type KeyValueFuture<T> = Pin<Box<dyn Future<Output = Result<T, KeyValueError>> + Send>>;

/// A place to keep buckets: the node's SQLite or a Redis server. Keys and
/// values reach a backend already checked against the size limits.
/// Increments keep the number as decimal ASCII, so `get` after
/// `increment` reads `b"42"` on every backend.
///
/// A backend keeps each app under its quota: the bytes of its keys and
/// values and the number of its keys, across all its buckets. A `set`,
/// `increment`, `compare_and_swap` or `set_many` that would take the app
/// past either fails
/// with [`KeyValueError::BytesQuota`] or [`KeyValueError::KeysQuota`] and
/// changes nothing (a batch is refused whole); one that does not grow what
/// it counts (an overwrite with a shorter value) always passes, and deletes
/// free quota. The check and the write are one atomic step, so concurrent
/// writers cannot overshoot.
pub trait KeyValueBackend: Send + Sync + 'static {
    /// A short name for logs and `/readyz`, e.g. `sqlite` or `redis`.
    fn kind(&self) -> &'static str;
    /// Where the buckets are (a path, a URL without its password), for
    /// `/readyz`.
    fn location(&self) -> String;
    /// Whether the store answers now (`/readyz`).
    fn check(&self) -> KeyValueFuture<()>;
    fn get(&self, bucket: BucketId, key: String) -> KeyValueFuture<Option<Vec<u8>>>;
    fn set(&self, bucket: BucketId, key: String, value: Vec<u8>) -> KeyValueFuture<()>;
    fn delete(&self, bucket: BucketId, key: String) -> KeyValueFuture<()>;
    fn exists(&self, bucket: BucketId, key: String) -> KeyValueFuture<bool>;
    /// Up to `limit` keys from `cursor` (none: the start), and the cursor of
    /// the next page, none once there is no more.
    fn list_keys(
        &self,
        bucket: BucketId,
        cursor: Option<u64>,
        limit: usize,
    ) -> KeyValueFuture<(Vec<String>, Option<u64>)>;
    /// Adds `delta` (negative to subtract) atomically and returns the new
    /// number. A key that is not set counts as 0; a value that is not a
    /// decimal signed 64-bit number is [`KeyValueError::NotANumber`].
    fn increment(&self, bucket: BucketId, key: String, delta: i64) -> KeyValueFuture<i64>;
    /// Writes `value` at `key` only if the key holds `expected` now (none:
    /// only if it is not set), in one atomic step, and answers whether it
    /// wrote. The write counts against the quota as a `set` does.
    fn compare_and_swap(
        &self,
        bucket: BucketId,
        key: String,
        expected: Option<Vec<u8>>,
        value: Vec<u8>,
    ) -> KeyValueFuture<bool>;
    fn get_many(&self, bucket: BucketId, keys: Vec<String>) -> KeyValueFuture<Pairs>;
    fn set_many(&self, bucket: BucketId, pairs: Vec<(String, Vec<u8>)>) -> KeyValueFuture<()>;
    fn delete_many(&self, bucket: BucketId, keys: Vec<String>) -> KeyValueFuture<()>;
}

/// How much one app may keep, over all its buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Bytes of keys and values together (`--keyvalue-max-bytes-per-app`).
    pub max_bytes: u64,
    /// Keys (`--keyvalue-max-keys-per-app`).
    pub max_keys: u64,
}

impl Quota {
    /// 64 MiB: plenty for the sessions, carts and counters functions keep,
    /// and small enough that a runaway loop cannot fill the node's disk
    /// (or Redis's memory) for everyone else.
    pub const DEFAULT_MAX_BYTES: u64 = 64 << 20;
    /// 100,000 keys: a bound on per-key overhead that bytes alone miss.
    pub const DEFAULT_MAX_KEYS: u64 = 100_000;
}

impl Default for Quota {
    fn default() -> Self {
        Quota {
            max_bytes: Quota::DEFAULT_MAX_BYTES,
            max_keys: Quota::DEFAULT_MAX_KEYS,
        }
    }
}

/// An app's usage against its [`Quota`], before and after a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub bytes: u64,
    pub keys: u64,
}

impl Quota {
    /// Refuses a write that takes the app from `before` to `after`, if it
    /// grows what it counts past the quota. A write that grows nothing
    /// passes even over a quota (lowered since the data was written), so
    /// an app can always shrink its data.
    pub fn check(&self, before: Usage, after: Usage) -> Result<(), KeyValueError> {
        if after.bytes > before.bytes && after.bytes > self.max_bytes {
            return Err(KeyValueError::BytesQuota {
                limit: self.max_bytes,
                used: before.bytes,
                adding: after.bytes - before.bytes,
            });
        }
        if after.keys > before.keys && after.keys > self.max_keys {
            return Err(KeyValueError::KeysQuota {
                limit: self.max_keys,
                used: before.keys,
                adding: after.keys - before.keys,
            });
        }
        Ok(())
    }
}
