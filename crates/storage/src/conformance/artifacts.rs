//! The artifact store conformance suite: what every [`ArtifactStore`] must
//! do, the same way. A backend's crate runs it with
//! [`artifacts_conformance!`](crate::artifacts_conformance), one test per
//! check.
//!
//! Checks store bytes no other run stores, so a backend that outlives the
//! test (a server) needs no cleaning for `created` to be `true`.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use bytes::Bytes;

use crate::artifacts::{ArtifactError, ArtifactStore, sha256_hex};

/// Opens a fresh backend, with whatever must live as long as it (say its
/// directory).
pub type Open = dyn Fn() -> super::Opened<Arc<dyn ArtifactStore>>;

/// Bytes no other test run stores.
fn unique(what: &str) -> Bytes {
    Bytes::from(super::unique(what))
}

pub async fn put_is_idempotent_and_reads_back_the_bytes(open: &Open) {
    let (store, _guard) = open().await;
    let bytes = unique("same bytes");
    let first = store.put(bytes.clone()).await.unwrap();
    let second = store.put(bytes.clone()).await.unwrap();
    assert!(first.created);
    assert!(!second.created);
    assert_eq!(first.sha256, second.sha256);
    assert_eq!(first.sha256, sha256_hex(&bytes));
    assert!(store.contains(&first.sha256).await.unwrap());
    assert_eq!(store.read(&first.sha256).await.unwrap(), bytes);
}

pub async fn any_bytes_round_trip(open: &Open) {
    let (store, _guard) = open().await;
    // Every byte value, and a component of a realistic size.
    let mut large: Vec<u8> = unique("large").to_vec();
    large.extend((0..3 << 20).map(|i: u32| (i % 251) as u8));
    let binary: Vec<u8> = (0..=255u8)
        .chain(unique("binary").iter().copied())
        .collect();
    for bytes in [binary, large] {
        let blob = store.put(Bytes::from(bytes.clone())).await.unwrap();
        assert_eq!(blob.sha256, sha256_hex(&bytes));
        assert_eq!(store.read(&blob.sha256).await.unwrap(), bytes);
    }
    // Empty bytes are a component like any other (the hash is the same on
    // every run, so whether they were new is not checked).
    let empty = store.put(Bytes::new()).await.unwrap();
    assert_eq!(
        empty.sha256,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert!(store.read(&empty.sha256).await.unwrap().is_empty());
}

pub async fn malformed_hashes_are_refused_not_turned_into_paths(open: &Open) {
    let (store, _guard) = open().await;
    let stored = store.put(unique("valid")).await.unwrap().sha256;
    let bad = [
        "../x".to_string(),
        "../../etc/passwd".to_string(),
        "x".to_string(),
        String::new(),
        stored.to_uppercase(),
        format!("{stored}0"),
        format!("../{}", &stored[3..]),
        format!("{}/{}", &stored[..2], &stored[3..]),
    ];
    for hash in &bad {
        assert!(!store.contains(hash).await.unwrap(), "{hash:?}");
        let refused =
            |err: ArtifactError| matches!(err, ArtifactError::InvalidHash(ref h) if h == hash);
        assert!(refused(store.read(hash).await.unwrap_err()), "{hash:?}");
        assert!(refused(store.remove(hash).await.unwrap_err()), "{hash:?}");
        assert!(
            refused(store.local_path(hash).await.unwrap_err()),
            "{hash:?}"
        );
    }
    let err = store.read("../../etc/passwd").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "\"../../etc/passwd\" is not a SHA-256 hash (expected 64 lowercase hex characters)"
    );
    // The well-formed neighbour is untouched.
    assert!(store.contains(&stored).await.unwrap());
}

pub async fn reading_what_is_not_stored_is_missing(open: &Open) {
    let (store, _guard) = open().await;
    let sha = sha256_hex(&unique("never stored"));
    assert!(!store.contains(&sha).await.unwrap());
    let err = store.read(&sha).await.unwrap_err();
    assert!(
        matches!(err, ArtifactError::Missing { ref sha256, .. } if *sha256 == sha),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("component blob {sha} is missing (expected at ")),
        "{msg}"
    );
}

pub async fn remove_is_idempotent(open: &Open) {
    let (store, _guard) = open().await;
    let bytes = unique("removed");
    let keep = store.put(unique("kept")).await.unwrap().sha256;
    let sha = store.put(bytes.clone()).await.unwrap().sha256;
    store.remove(&sha).await.unwrap();
    assert!(!store.contains(&sha).await.unwrap());
    assert!(matches!(
        store.read(&sha).await,
        Err(ArtifactError::Missing { .. })
    ));
    store.remove(&sha).await.unwrap();
    store
        .remove(&sha256_hex(&unique("never stored")))
        .await
        .unwrap();
    assert!(store.contains(&keep).await.unwrap());

    // Stored again after removal, the bytes are new again.
    let again = store.put(bytes.clone()).await.unwrap();
    assert!(again.created);
    assert_eq!(store.read(&sha).await.unwrap(), bytes);
}

pub async fn local_path_holds_the_bytes(open: &Open) {
    let (store, _guard) = open().await;
    let bytes = unique("local");
    let sha = store.put(bytes.clone()).await.unwrap().sha256;
    let path = store.local_path(&sha).await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    // Asking again names a file with the same bytes.
    let again = store.local_path(&sha).await.unwrap();
    assert_eq!(std::fs::read(again).unwrap(), bytes);
}

pub async fn concurrent_puts_of_the_same_bytes_all_succeed(open: &Open) {
    let (store, _guard) = open().await;
    let bytes = unique("raced");
    let puts: Vec<_> = (0..8)
        .map(|_| tokio::spawn(store.put(bytes.clone())))
        .collect();
    for put in puts {
        let blob = put.await.unwrap().unwrap();
        assert_eq!(blob.sha256, sha256_hex(&bytes));
    }
    assert_eq!(store.read(&sha256_hex(&bytes)).await.unwrap(), bytes);
    assert!(!store.put(bytes).await.unwrap().created);
}

/// Expands to one `#[tokio::test]` per check of the artifact store suite,
/// opening each backend with `$open` (a
/// [`conformance::artifacts::Open`](crate::conformance::artifacts::Open)).
#[macro_export]
macro_rules! artifacts_conformance {
    ($open:expr) => {
        #[tokio::test]
        async fn put_is_idempotent_and_reads_back_the_bytes() {
            $crate::conformance::artifacts::put_is_idempotent_and_reads_back_the_bytes(&$open)
                .await;
        }
        #[tokio::test]
        async fn any_bytes_round_trip() {
            $crate::conformance::artifacts::any_bytes_round_trip(&$open).await;
        }
        #[tokio::test]
        async fn malformed_hashes_are_refused_not_turned_into_paths() {
            $crate::conformance::artifacts::malformed_hashes_are_refused_not_turned_into_paths(
                &$open,
            )
            .await;
        }
        #[tokio::test]
        async fn reading_what_is_not_stored_is_missing() {
            $crate::conformance::artifacts::reading_what_is_not_stored_is_missing(&$open).await;
        }
        #[tokio::test]
        async fn remove_is_idempotent() {
            $crate::conformance::artifacts::remove_is_idempotent(&$open).await;
        }
        #[tokio::test]
        async fn local_path_holds_the_bytes() {
            $crate::conformance::artifacts::local_path_holds_the_bytes(&$open).await;
        }
        #[tokio::test]
        async fn concurrent_puts_of_the_same_bytes_all_succeed() {
            $crate::conformance::artifacts::concurrent_puts_of_the_same_bytes_all_succeed(&$open)
                .await;
        }
    };
}
