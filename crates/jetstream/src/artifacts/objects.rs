//! The object store's layout on the stream, as ADR-20 and the Go client
//! (which the `nats object` tool uses) write it: the names, the ObjectInfo
//! JSON, and moving an object's chunks in and out.
//!
//! Names and digests are base64url *with* padding, as the Go client
//! encodes them: unpadded, `nats object get` would look under another meta
//! subject and refuse the digest.

use std::time::{SystemTime, UNIX_EPOCH};

use async_nats::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use stratus_storage::ArtifactError;

use crate::api::{JetStream, JetStreamError};

/// ADR-20's default chunk: well under NATS' default 1 MiB payload limit,
/// and the size other clients expect.
pub(super) const CHUNK_SIZE: usize = 128 * 1024;

/// What a read reserves up front at most: the meta's size is only a claim
/// until the chunks arrive, and a damaged one must not abort the process.
const PREALLOCATE_AT_MOST: usize = 64 << 20;

/// A bucket's names. Checked on creation, so every subject built from it is
/// valid.
#[derive(Debug)]
pub(super) struct Bucket {
    name: String,
    stream: String,
}

impl Bucket {
    /// `None` unless `name` is a bucket name the NATS clients accept (they
    /// refuse anything else, and `.`, `*` or `>` would change the subjects).
    pub(super) fn new(name: &str) -> Option<Bucket> {
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        valid.then(|| Bucket {
            name: name.to_owned(),
            stream: format!("OBJ_{name}"),
        })
    }

    pub(super) fn name(&self) -> &str {
        &self.name
    }

    pub(super) fn stream(&self) -> &str {
        &self.stream
    }

    /// The stream as `nats object add` creates it. Rollups let a meta
    /// message replace the object's older ones; direct gets let any replica
    /// answer a read.
    pub(super) fn stream_config(&self, replicas: usize) -> Value {
        json!({
            "name": self.stream,
            "subjects": [format!("$O.{}.C.>", self.name), format!("$O.{}.M.>", self.name)],
            "storage": "file",
            "num_replicas": replicas,
            "discard": "new",
            "max_bytes": -1,
            "allow_rollup_hdrs": true,
            "allow_direct": true,
        })
    }

    pub(super) fn meta_subject(&self, object: &str) -> String {
        format!("$O.{}.M.{}", self.name, URL_SAFE.encode(object))
    }

    pub(super) fn chunk_subject(&self, nuid: &str) -> String {
        format!("$O.{}.C.{nuid}", self.name)
    }

    /// Where a missing object was looked for, for [`ArtifactError::Missing`].
    pub(super) fn location(&self, object: &str) -> String {
        format!("JetStream object store {}, object {object}", self.name)
    }
}

/// ADR-20's ObjectInfo, the meta message's payload. Fields other clients
/// add (description, headers, links) are ignored on reading.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct ObjectInfo {
    pub(super) name: String,
    pub(super) bucket: String,
    /// Names the chunk subject: a fresh one per put, so chunks of an
    /// earlier put of the same name can be purged without touching these.
    pub(super) nuid: String,
    pub(super) size: u64,
    pub(super) chunks: u32,
    #[serde(default)]
    pub(super) mtime: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(super) digest: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(super) deleted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) options: Option<Value>,
}

impl ObjectInfo {
    /// The meta of `size` bytes with SHA-256 `digest`, stored as `name` in
    /// chunks published by [`publish_chunks`] under `nuid`.
    pub(super) fn new(
        bucket: &Bucket,
        name: &str,
        nuid: String,
        size: usize,
        digest: &[u8],
    ) -> ObjectInfo {
        ObjectInfo {
            name: name.to_owned(),
            bucket: bucket.name.clone(),
            nuid,
            size: size as u64,
            chunks: size.div_ceil(CHUNK_SIZE) as u32,
            mtime: now_rfc3339(),
            digest: format!("SHA-256={}", URL_SAFE.encode(digest)),
            deleted: false,
            options: Some(json!({ "max_chunk_size": CHUNK_SIZE })),
        }
    }

    /// The delete marker that replaces this meta, as the Go client writes
    /// it: the nuid stays, so an interrupted removal can purge its chunks.
    pub(super) fn deleted(&self) -> ObjectInfo {
        ObjectInfo {
            size: 0,
            chunks: 0,
            digest: String::new(),
            deleted: true,
            mtime: now_rfc3339(),
            ..self.clone()
        }
    }
}

/// The meta message: `expected` is the sequence of the meta it replaces (0
/// for none), so of two writers that read the same meta only one wins.
pub(super) async fn publish_meta(
    js: &JetStream,
    bucket: &Bucket,
    info: &ObjectInfo,
    expected: u64,
) -> Result<(), JetStreamError> {
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Rollup", "sub");
    headers.insert("Nats-Expected-Last-Subject-Sequence", expected.to_string());
    let payload = serde_json::to_vec(info).map_err(|e| JetStreamError::Protocol {
        subject: bucket.meta_subject(&info.name),
        reason: format!("cannot encode the object's meta: {e}"),
    })?;
    js.publish(
        &bucket.meta_subject(&info.name),
        headers,
        Bytes::from(payload),
    )
    .await
    .map(|_| ())
}

/// Stores `bytes` as chunks on `subject`, each acknowledged before the next
/// is sent, so once this returns they are all stored.
pub(super) async fn publish_chunks(
    js: &JetStream,
    subject: &str,
    bytes: &Bytes,
) -> Result<(), JetStreamError> {
    for start in (0..bytes.len()).step_by(CHUNK_SIZE) {
        let chunk = bytes.slice(start..bytes.len().min(start + CHUNK_SIZE));
        js.publish(subject, HeaderMap::new(), chunk).await?;
    }
    Ok(())
}

/// The object's bytes, only if they are exactly what its name promises: a
/// chunk lost or changed on the server is an error, never other bytes.
pub(super) async fn read_chunks(
    js: &JetStream,
    bucket: &Bucket,
    info: &ObjectInfo,
    sha256: &str,
) -> Result<Vec<u8>, ArtifactError> {
    let corrupt = |why: String| {
        ArtifactError::backend(format!(
            "component blob {sha256} in JetStream object store {} is corrupt: {why}",
            bucket.name
        ))
    };
    let subject = bucket.chunk_subject(&info.nuid);
    let capacity = usize::try_from(info.size)
        .map_or(PREALLOCATE_AT_MOST, |size| size.min(PREALLOCATE_AT_MOST));
    let mut bytes = Vec::with_capacity(capacity);
    let mut hasher = Sha256::new();
    let mut from = 1;
    for index in 1..=info.chunks {
        let chunk = js
            .next_message(&bucket.stream, &subject, from)
            .await
            .map_err(ArtifactError::from)?
            .ok_or_else(|| corrupt(format!("chunk {index} of {} is missing", info.chunks)))?;
        if (bytes.len() + chunk.payload.len()) as u64 > info.size {
            return Err(corrupt(format!(
                "its chunks hold more than the {} bytes its meta records",
                info.size
            )));
        }
        hasher.update(&chunk.payload);
        bytes.extend_from_slice(&chunk.payload);
        from = chunk.sequence + 1;
    }
    if bytes.len() as u64 != info.size {
        return Err(corrupt(format!(
            "its chunks hold {} bytes, its meta records {}",
            bytes.len(),
            info.size
        )));
    }
    if hex::encode(hasher.finalize()) != sha256 {
        return Err(corrupt("its bytes do not hash to its name".into()));
    }
    Ok(bytes)
}

/// RFC 3339 in UTC, the form Go's `time.Time` reads from `mtime`.
fn now_rfc3339() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(now.as_secs(), now.subsec_nanos())
}

fn rfc3339(unix_secs: u64, nanos: u32) -> String {
    let days = (unix_secs / 86_400) as i64;
    let secs = unix_secs % 86_400;
    // Days to a civil date (H. Hinnant's algorithm), years starting in March.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        secs / 3_600,
        secs % 3_600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(rfc3339(1_709_164_800, 0), "2024-02-29T00:00:00.000000000Z");
        assert_eq!(
            rfc3339(4_102_444_799, 999_999_999),
            "2099-12-31T23:59:59.999999999Z"
        );
    }

    #[test]
    fn bucket_names_that_would_change_the_subjects_are_refused() {
        for bad in ["", "a.b", "a*", "a>", "a b", "a/b"] {
            assert!(Bucket::new(bad).is_none(), "{bad:?}");
        }
        let bucket = Bucket::new("stratus_components").expect("valid name");
        assert_eq!(bucket.stream(), "OBJ_stratus_components");
        // Padded, as the Go client encodes names.
        assert_eq!(bucket.meta_subject("ab"), "$O.stratus_components.M.YWI=");
    }
}
