//! The JetStream artifact store against the storage crate's suite, on the
//! NATS server at 127.0.0.1:4222 (started by `scripts/brokers.sh`), each
//! check in a bucket of its own that is removed afterwards; and what the
//! suite cannot reach: chunks damaged on the server, and the layout other
//! NATS clients read.
#![allow(clippy::unwrap_used)]

use std::any::Any;
use std::sync::Arc;

use async_nats::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use bytes::Bytes;
use serde_json::Value;
use sha2::{Digest, Sha256};
use stratus_storage::conformance::Opened;
use stratus_storage::{ArtifactError, ArtifactStore, sha256_hex};

use super::objects::CHUNK_SIZE;
use super::{JetStreamArtifacts, OpenArtifactsError};
use crate::testing::{Scratch, bucket_name};

/// A store in a fresh bucket, the cache directory and the stream's removal
/// living as long as the guard.
async fn open() -> (JetStreamArtifacts, Box<dyn Any>) {
    let scratch = Scratch::connect().await;
    let bucket = bucket_name("artifacts");
    let cache = tempfile::tempdir().unwrap();
    let store = JetStreamArtifacts::open(scratch.js(), &bucket, 1, &cache.path().join("cache"))
        .await
        .unwrap();
    let scratch = scratch.removing(format!("OBJ_{bucket}"));
    (store, Box::new((scratch, cache)))
}

fn open_jetstream() -> Opened<Arc<dyn ArtifactStore>> {
    Box::pin(async move {
        let (store, guard) = open().await;
        (Arc::new(store) as Arc<dyn ArtifactStore>, guard)
    })
}

mod conformance {
    stratus_storage::artifacts_conformance!(super::open_jetstream);
}

/// Three chunks (the last one short) no other run stores.
fn three_chunks() -> Vec<u8> {
    let mut bytes = uuid::Uuid::now_v7().as_bytes().to_vec();
    bytes.extend((0..2 * CHUNK_SIZE + 1000).map(|i| (i % 251) as u8));
    bytes
}

fn is_corrupt(result: Result<impl std::fmt::Debug, ArtifactError>, why: &str) -> bool {
    match result {
        Err(ArtifactError::Backend(e)) => {
            let msg = e.to_string();
            msg.contains("is corrupt") && msg.contains(why)
        }
        other => panic!("expected a corrupt blob ({why}), got {other:?}"),
    }
}

#[tokio::test]
async fn damaged_chunks_fail_the_read_instead_of_answering_other_bytes() {
    let (store, _guard) = open().await;
    let inner = &store.inner;
    let (js, stream) = (&inner.js, inner.bucket.stream());
    let bytes = three_chunks();
    let sha = store.put(Bytes::from(bytes.clone())).await.unwrap().sha256;
    let nuid = inner.current(&sha).await.unwrap().unwrap().info.nuid;
    let chunks = inner.bucket.chunk_subject(&nuid);

    // Same chunk count and sizes, one byte changed: only the hash can tell.
    let mut altered = bytes.clone();
    altered[CHUNK_SIZE + 7] ^= 1;
    js.purge(stream, &chunks).await.unwrap();
    for chunk in altered.chunks(CHUNK_SIZE) {
        let chunk = Bytes::copy_from_slice(chunk);
        js.publish(&chunks, HeaderMap::new(), chunk).await.unwrap();
    }
    assert!(is_corrupt(
        store.read(&sha).await,
        "do not hash to its name"
    ));
    // Nothing is cached from damaged chunks.
    assert!(is_corrupt(store.local_path(&sha).await, "do not hash"));
    assert!(!inner.cache.join(&sha).exists());

    // More bytes than the meta records, then fewer.
    let mut longer = bytes.clone();
    longer.push(0);
    js.purge(stream, &chunks).await.unwrap();
    js.publish(&chunks, HeaderMap::new(), Bytes::from(longer))
        .await
        .unwrap();
    assert!(is_corrupt(store.read(&sha).await, "hold more than"));
    js.purge(stream, &chunks).await.unwrap();
    for chunk in bytes.chunks(CHUNK_SIZE / 2) {
        let chunk = Bytes::copy_from_slice(chunk);
        js.publish(&chunks, HeaderMap::new(), chunk).await.unwrap();
    }
    let recorded = format!("its meta records {}", bytes.len());
    assert!(is_corrupt(store.read(&sha).await, &recorded));

    // Chunks lost.
    js.purge(stream, &chunks).await.unwrap();
    assert!(is_corrupt(
        store.read(&sha).await,
        "chunk 1 of 3 is missing"
    ));
}

#[tokio::test]
async fn objects_are_laid_out_as_nats_object_stores_are() {
    let (store, _guard) = open().await;
    let inner = &store.inner;
    let (js, bucket) = (&inner.js, inner.bucket.name());
    let bytes = three_chunks();
    let sha = store.put(Bytes::from(bytes.clone())).await.unwrap().sha256;

    let meta_subject = format!("$O.{bucket}.M.{}", URL_SAFE.encode(&sha));
    let meta = js
        .last_message(&format!("OBJ_{bucket}"), &meta_subject)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(meta.header("Nats-Rollup"), Some("sub"));
    let info: Value = serde_json::from_slice(&meta.payload).unwrap();
    assert_eq!(info["name"], sha.as_str());
    assert_eq!(info["bucket"], bucket);
    assert_eq!(info["size"], bytes.len());
    assert_eq!(info["chunks"], 3);
    let digest = format!("SHA-256={}", URL_SAFE.encode(Sha256::digest(&bytes)));
    assert_eq!(info["digest"], digest.as_str());
    assert!(info.get("deleted").is_none());
    assert!(info["mtime"].as_str().unwrap().ends_with('Z'));
    let chunks = format!("$O.{bucket}.C.{}", info["nuid"].as_str().unwrap());
    let first = js
        .next_message(&format!("OBJ_{bucket}"), &chunks, 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.payload, bytes[..CHUNK_SIZE]);

    // Removed: a delete marker, and the chunks purged.
    store.remove(&sha).await.unwrap();
    let marker = js
        .last_message(&format!("OBJ_{bucket}"), &meta_subject)
        .await
        .unwrap()
        .unwrap();
    let marker: Value = serde_json::from_slice(&marker.payload).unwrap();
    assert_eq!(marker["deleted"], true);
    assert_eq!(
        (marker["size"].as_u64(), marker["chunks"].as_u64()),
        (Some(0), Some(0))
    );
    let left = js
        .next_message(&format!("OBJ_{bucket}"), &chunks, 1)
        .await
        .unwrap();
    assert!(left.is_none());
    assert_eq!(sha, sha256_hex(&bytes));
}

#[tokio::test]
async fn removing_drops_the_local_copy() {
    let (store, _guard) = open().await;
    let sha = store.put(Bytes::from(three_chunks())).await.unwrap().sha256;
    let path = store.local_path(&sha).await.unwrap();
    assert!(path.is_file());
    store.remove(&sha).await.unwrap();
    assert!(!path.exists());
    assert!(matches!(
        store.local_path(&sha).await,
        Err(ArtifactError::Missing { .. })
    ));
}

#[tokio::test]
async fn bad_settings_are_refused_before_touching_nats() {
    let scratch = Scratch::connect().await;
    let cache = tempfile::tempdir().unwrap();
    for (bucket, replicas) in [("a.b", 1), ("fine", 0), ("fine", 6)] {
        let err = JetStreamArtifacts::open(scratch.js(), bucket, replicas, cache.path())
            .await
            .unwrap_err();
        let refused = match err {
            OpenArtifactsError::InvalidBucket(ref b) => b == bucket,
            OpenArtifactsError::InvalidReplicas(r) => r == replicas,
            _ => false,
        };
        assert!(refused, "{bucket} {replicas}: {err}");
    }
}

#[tokio::test]
async fn of_racing_puts_one_creates_and_the_others_leave_no_chunks() {
    let (store, _guard) = open().await;
    let bytes = Bytes::from(three_chunks());
    let puts: Vec<_> = (0..6)
        .map(|_| tokio::spawn(store.put(bytes.clone())))
        .collect();
    let mut created = 0;
    for put in puts {
        created += usize::from(put.await.unwrap().unwrap().created);
    }
    assert_eq!(created, 1);
    let inner = &store.inner;
    let subject = format!("$JS.API.STREAM.INFO.{}", inner.bucket.stream());
    let info: Value = inner
        .js
        .request(&subject, &serde_json::json!({}))
        .await
        .unwrap();
    // The winner's three chunks and its meta.
    assert_eq!(info["state"]["messages"], 4, "{info}");
}
