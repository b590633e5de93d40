//! A key-value bucket laid out as NATS KV buckets are (ADR-8: stream
//! `KV_<bucket>`, one subject `$KV.<bucket>.<key>` per key), so the `nats
//! kv` tool reads what a node writes. Revisions are stream sequences: an
//! update names the revision it read and loses to any write in between,
//! which is what makes two nodes' concurrent deploys safe without a lock.

use std::time::Duration;

use async_nats::HeaderMap;
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::json;

use crate::api::{JetStream, JetStreamError, StoredMessage};
use crate::watch::{Start, Watch};

/// Reads of keys in flight at once when a bucket is listed.
const CONCURRENT_READS: usize = 32;

/// How long a publish with the same message id is dropped as a duplicate.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// How a bucket is created.
#[derive(Debug, Clone)]
pub struct KvSettings {
    /// Copies of every value in the cluster (1 on a single server, 3 in
    /// production: survives the loss of one server).
    pub replicas: usize,
    /// Revisions kept per key.
    pub history: u32,
    /// How long an entry lives without being written again (`None`:
    /// forever). Leases and heartbeats use a bucket with an age.
    pub max_age: Option<Duration>,
}

impl Default for KvSettings {
    fn default() -> Self {
        KvSettings {
            replicas: 1,
            history: 1,
            max_age: None,
        }
    }
}

/// A key's current value.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub value: Bytes,
    /// The stream sequence that wrote it: what a compare-and-set names.
    pub revision: u64,
}

/// A key-value bucket.
#[derive(Clone, Debug)]
pub struct Kv {
    js: JetStream,
    bucket: String,
    stream: String,
}

/// Whether `key` is a valid NATS KV key: dot-separated tokens of
/// `[-/_=a-zA-Z0-9]`, so it can never add a wildcard or an empty token to
/// the subject it becomes.
pub fn is_valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.split('.').all(|token| {
            !token.is_empty()
                && token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-/_=".contains(&b))
        })
}

impl Kv {
    /// Opens the bucket, creating its stream if it is missing.
    pub async fn open(
        js: JetStream,
        bucket: &str,
        settings: &KvSettings,
    ) -> Result<Kv, JetStreamError> {
        if !is_valid_key(bucket) || bucket.contains('.') {
            return Err(invalid("a bucket name", bucket));
        }
        let stream = format!("KV_{bucket}");
        // JetStream refuses a duplicate window longer than the entries live.
        let window = settings
            .max_age
            .map_or(DUPLICATE_WINDOW, |age| age.min(DUPLICATE_WINDOW));
        js.ensure_stream(json!({
            "name": stream,
            "subjects": [format!("$KV.{bucket}.>")],
            "retention": "limits",
            "max_msgs_per_subject": settings.history.max(1),
            "max_age": settings.max_age.map_or(0, |age| age.as_nanos() as u64),
            "storage": "file",
            "num_replicas": settings.replicas.max(1),
            "discard": "new",
            "allow_rollup_hdrs": true,
            "allow_direct": true,
            "deny_delete": true,
            "duplicate_window": window.as_nanos() as u64,
        }))
        .await?;
        Ok(Kv {
            js,
            bucket: bucket.to_owned(),
            stream,
        })
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    fn subject(&self, key: &str) -> Result<String, JetStreamError> {
        if is_valid_key(key) {
            Ok(format!("$KV.{}.{key}", self.bucket))
        } else {
            Err(invalid("a key", key))
        }
    }

    /// The key's value, or `None` when it has none (never written,
    /// deleted or purged).
    pub async fn entry(&self, key: &str) -> Result<Option<Entry>, JetStreamError> {
        Ok(self
            .last(key)
            .await?
            .and_then(|m| live_entry(&self.bucket, m)))
    }

    /// The key's value as the bucket's leader has it: for a reader acting
    /// on a change a watch delivered, which a replica answering
    /// [`entry`](Self::entry) may not have applied yet.
    pub async fn latest(&self, key: &str) -> Result<Option<Entry>, JetStreamError> {
        let subject = self.subject(key)?;
        Ok(self
            .js
            .latest_message(&self.stream, &subject)
            .await?
            .and_then(|m| live_entry(&self.bucket, m)))
    }

    async fn last(&self, key: &str) -> Result<Option<StoredMessage>, JetStreamError> {
        let subject = self.subject(key)?;
        self.js.last_message(&self.stream, &subject).await
    }

    /// Writes the value whatever the key holds; answers its revision.
    pub async fn put(&self, key: &str, value: Bytes) -> Result<u64, JetStreamError> {
        self.write(key, HeaderMap::new(), value).await
    }

    /// Writes the value only if the key's last write is `revision`;
    /// otherwise an error whose `is_wrong_last_sequence()` is true.
    pub async fn update(
        &self,
        key: &str,
        value: Bytes,
        revision: u64,
    ) -> Result<u64, JetStreamError> {
        self.write(key, expect(revision), value).await
    }

    /// Writes the value only if the key has none (never written, or
    /// deleted); otherwise an error whose `is_wrong_last_sequence()` is true.
    pub async fn create(&self, key: &str, value: Bytes) -> Result<u64, JetStreamError> {
        match self.write(key, expect(0), value.clone()).await {
            Err(e) if e.is_wrong_last_sequence() => match self.last(key).await? {
                // Deleted: a compare-and-set on the marker creates it again.
                Some(marker) if is_deletion(&marker) => {
                    self.update(key, value, marker.sequence).await
                }
                _ => Err(e),
            },
            other => other,
        }
    }

    /// Deletes the key (leaving a marker that watchers see), if its last
    /// write is `revision` when one is given.
    pub async fn delete(&self, key: &str, revision: Option<u64>) -> Result<u64, JetStreamError> {
        let mut headers = revision.map(expect).unwrap_or_default();
        headers.insert("KV-Operation", "DEL");
        self.write(key, headers, Bytes::new()).await
    }

    /// Removes the key and all its history, leaving only a marker.
    pub async fn purge(&self, key: &str) -> Result<u64, JetStreamError> {
        let mut headers = HeaderMap::new();
        headers.insert("KV-Operation", "PURGE");
        headers.insert("Nats-Rollup", "sub");
        self.write(key, headers, Bytes::new()).await
    }

    /// The subjects of the keys under `prefix` (all keys when empty).
    fn filter(&self, prefix: &str) -> Result<String, JetStreamError> {
        if prefix.is_empty() {
            return Ok(format!("$KV.{}.>", self.bucket));
        }
        let prefix = prefix.trim_end_matches('.');
        self.subject(prefix)?;
        Ok(format!("$KV.{}.{prefix}.>", self.bucket))
    }

    /// Removes every trace of the key, its delete or purge marker too (a
    /// stream purge of its subject): for keys made per item that would
    /// otherwise leave one marker each behind for ever.
    pub async fn forget(&self, key: &str) -> Result<(), JetStreamError> {
        let subject = self.subject(key)?;
        self.js.purge(&self.stream, &subject).await
    }

    async fn write(
        &self,
        key: &str,
        headers: HeaderMap,
        value: Bytes,
    ) -> Result<u64, JetStreamError> {
        let subject = self.subject(key)?;
        Ok(self.js.publish(&subject, headers, value).await?.seq)
    }

    /// Every key under `prefix` (`"apps"`; empty for all) with its current
    /// value, deletions left out: the stream names the keys that hold
    /// messages, and each key's last message is read from any replica. (Not
    /// a watch's replay: that relies on the consumer's pending count, which
    /// a busy server may report before it is complete.)
    pub async fn entries(&self, prefix: &str) -> Result<Vec<Entry>, JetStreamError> {
        let filter = self.filter(prefix)?;
        let subjects = self.js.subjects(&self.stream, &filter).await?;
        // A bounded number of reads in flight: a bucket may hold many keys.
        let mut entries = Vec::with_capacity(subjects.len());
        let mut reads = futures_util::stream::iter(subjects)
            .map(|subject| {
                let (js, stream) = (self.js.clone(), self.stream.clone());
                async move { js.last_message(&stream, &subject).await }
            })
            .buffer_unordered(CONCURRENT_READS);
        while let Some(message) = reads.next().await {
            if let Some(entry) = message?.and_then(|m| live_entry(&self.bucket, m)) {
                entries.push(entry);
            }
        }
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(entries)
    }

    /// Follows the keys under `prefix`: first the current value of each
    /// (then [`Watch::is_current`]), then every write as it happens.
    pub async fn watch(&self, prefix: &str) -> Result<Watch, JetStreamError> {
        let filter = self.filter(prefix)?;
        Watch::start(
            self.js.clone(),
            self.stream.clone(),
            filter,
            format!("$KV.{}.", self.bucket),
            Start::LastPerSubject,
        )
        .await
    }
}

fn expect(revision: u64) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        "Nats-Expected-Last-Subject-Sequence",
        revision.to_string().as_str(),
    );
    headers
}

fn invalid(what: &str, name: &str) -> JetStreamError {
    JetStreamError::Protocol {
        subject: name.to_owned(),
        reason: format!("{name:?} is not {what} NATS accepts"),
    }
}

/// Whether a stored message is a delete or purge marker.
pub(crate) fn is_deletion(message: &StoredMessage) -> bool {
    matches!(message.header("KV-Operation"), Some("DEL" | "PURGE"))
}

fn live_entry(bucket: &str, message: StoredMessage) -> Option<Entry> {
    if is_deletion(&message) {
        return None;
    }
    let key = message
        .subject
        .strip_prefix(&format!("$KV.{bucket}."))?
        .to_owned();
    Some(Entry {
        key,
        value: message.payload,
        revision: message.sequence,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_tokens_nats_accepts() {
        for key in ["apps.shop", "a", "v.shop.0193-ab", "x/y=z_w-1"] {
            assert!(is_valid_key(key), "{key}");
        }
        for key in ["", ".", "a.", ".a", "a..b", "a.*", "a.>", "a b", "ä"] {
            assert!(!is_valid_key(key), "{key}");
        }
    }
}
