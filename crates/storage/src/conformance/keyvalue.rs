//! The key-value conformance suite: what every [`KeyValueBackend`] must
//! do, the same way. A backend's crate runs it with
//! [`keyvalue_conformance!`](crate::keyvalue_conformance), one test per
//! check; a new backend (a JetStream one, say) is done when it passes.
//!
//! Checks use bucket names no other run uses, so a backend that outlives
//! the test (a Redis server) needs no cleaning.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use crate::keyvalue::{BucketId, KeyValueBackend, KeyValueError, Quota};

/// Opens a fresh backend holding every app to the quota, with whatever
/// must live as long as it (say the directory of a SQLite file).
pub type Open = dyn Fn(Quota) -> super::Opened<Arc<dyn KeyValueBackend>>;

/// A bucket no other test run uses.
fn bucket(app: &str) -> BucketId {
    BucketId {
        app: super::unique(app),
        bucket: "default".into(),
    }
}

pub async fn set_get_exists_delete(open: &Open) {
    let (kv, _guard) = open(Quota::default()).await;
    {
        let b = bucket("crud");
        let kind = kv.kind();
        assert_eq!(kv.get(b.clone(), "k".into()).await.unwrap(), None, "{kind}");
        assert!(!kv.exists(b.clone(), "k".into()).await.unwrap(), "{kind}");
        kv.set(b.clone(), "k".into(), b"v1".to_vec()).await.unwrap();
        kv.set(b.clone(), "k".into(), b"v2".to_vec()).await.unwrap();
        assert_eq!(
            kv.get(b.clone(), "k".into()).await.unwrap(),
            Some(b"v2".to_vec()),
            "{kind}"
        );
        assert!(kv.exists(b.clone(), "k".into()).await.unwrap(), "{kind}");
        kv.delete(b.clone(), "k".into()).await.unwrap();
        kv.delete(b.clone(), "k".into()).await.unwrap();
        assert_eq!(kv.get(b.clone(), "k".into()).await.unwrap(), None, "{kind}");
    }
}

pub async fn apps_and_buckets_do_not_share_keys(open: &Open) {
    let (kv, _guard) = open(Quota::default()).await;
    {
        let a = bucket("iso");
        let other_app = BucketId {
            app: format!("{}x", a.app),
            ..a.clone()
        };
        let other_bucket = BucketId {
            bucket: "sessions".into(),
            ..a.clone()
        };
        kv.set(a.clone(), "k".into(), b"a".to_vec()).await.unwrap();
        assert_eq!(
            kv.get(other_app, "k".into()).await.unwrap(),
            None,
            "{}",
            kv.kind()
        );
        assert_eq!(
            kv.get(other_bucket, "k".into()).await.unwrap(),
            None,
            "{}",
            kv.kind()
        );
    }
}

pub async fn increments_are_decimal_and_checked(open: &Open) {
    let (kv, _guard) = open(Quota::default()).await;
    {
        let b = bucket("incr");
        let kind = kv.kind();
        assert_eq!(
            kv.increment(b.clone(), "n".into(), 5).await.unwrap(),
            5,
            "{kind}"
        );
        assert_eq!(
            kv.increment(b.clone(), "n".into(), 2).await.unwrap(),
            7,
            "{kind}"
        );
        assert_eq!(
            kv.get(b.clone(), "n".into()).await.unwrap(),
            Some(b"7".to_vec()),
            "{kind}"
        );
        // Numbers are signed: `wasi:keyvalue@0.2.0-draft2` subtracts.
        assert_eq!(
            kv.increment(b.clone(), "n".into(), -10).await.unwrap(),
            -3,
            "{kind}"
        );
        kv.set(b.clone(), "minus".into(), b"-5".to_vec())
            .await
            .unwrap();
        assert_eq!(
            kv.increment(b.clone(), "minus".into(), 1).await.unwrap(),
            -4,
            "{kind}"
        );
        // Neither backend increments what is not a plain decimal number,
        // and neither changes it trying.
        for text in ["seven", "+5", "5.0", " 5", ""] {
            kv.set(b.clone(), "text".into(), text.as_bytes().to_vec())
                .await
                .unwrap();
            let err = kv.increment(b.clone(), "text".into(), 1).await.unwrap_err();
            assert!(
                matches!(err, KeyValueError::NotANumber { .. }),
                "{kind}: {text:?}: {err}"
            );
            assert_eq!(
                kv.get(b.clone(), "text".into()).await.unwrap(),
                Some(text.as_bytes().to_vec()),
                "{kind}"
            );
        }
        kv.set(b.clone(), "n".into(), b"7".to_vec()).await.unwrap();
        let err = kv
            .increment(b.clone(), "n".into(), i64::MAX)
            .await
            .unwrap_err();
        assert!(
            matches!(err, KeyValueError::Overflow { .. }),
            "{kind}: {err}"
        );
        let err = kv
            .increment(b.clone(), "minus".into(), i64::MIN)
            .await
            .unwrap_err();
        assert!(
            matches!(err, KeyValueError::Overflow { .. }),
            "{kind}: {err}"
        );
        assert_eq!(
            kv.get(b.clone(), "n".into()).await.unwrap(),
            Some(b"7".to_vec()),
            "{kind}"
        );
    }
}

pub async fn compare_and_swap_writes_only_over_what_it_expects(open: &Open) {
    let (kv, _guard) = open(Quota {
        max_bytes: 20,
        max_keys: 100,
    })
    .await;
    {
        let b = bucket("cas");
        let kind = kv.kind();
        let cas = |expected: Option<&[u8]>, value: &[u8]| {
            kv.compare_and_swap(
                b.clone(),
                "k".into(),
                expected.map(<[u8]>::to_vec),
                value.to_vec(),
            )
        };
        // Expecting no value: writes once, then the key is set.
        assert!(cas(None, b"v1").await.unwrap(), "{kind}");
        assert!(!cas(None, b"v2").await.unwrap(), "{kind}");
        // Expecting another value, or a prefix of this one: no write.
        assert!(!cas(Some(b"v0"), b"v3").await.unwrap(), "{kind}");
        assert!(!cas(Some(b"v"), b"v3").await.unwrap(), "{kind}");
        assert_eq!(
            kv.get(b.clone(), "k".into()).await.unwrap(),
            Some(b"v1".to_vec()),
            "{kind}"
        );
        // Expecting this value, binary and all.
        assert!(cas(Some(b"v1"), b"\0\xff").await.unwrap(), "{kind}");
        assert!(cas(Some(b"\0\xff"), b"v4").await.unwrap(), "{kind}");
        // Once deleted, only "no value" matches.
        kv.delete(b.clone(), "k".into()).await.unwrap();
        assert!(!cas(Some(b"v4"), b"v5").await.unwrap(), "{kind}");
        assert!(cas(None, b"v5").await.unwrap(), "{kind}");
        // It counts against the quota like a set: "k" + 19 bytes is 20,
        // one byte more is refused and changes nothing.
        let err = cas(Some(b"v5"), &[b'x'; 20]).await.unwrap_err();
        assert_eq!(bytes_refusal(&err), (20, 3, 18), "{kind}: {err}");
        assert_eq!(
            kv.get(b.clone(), "k".into()).await.unwrap(),
            Some(b"v5".to_vec()),
            "{kind}"
        );
        assert!(cas(Some(b"v5"), &[b'x'; 19]).await.unwrap(), "{kind}");
        assert_eq!(stored(&kv, &[&b]).await, (20, 1), "{kind}");
    }
}

/// Many writers adding one by read, then compare-and-swap, retrying when
/// another got there first: none of the additions is lost.
pub async fn concurrent_compare_and_swaps_lose_nothing(open: &Open) {
    let (kv, _guard) = open(Quota::default()).await;
    {
        let b = bucket("cas-race");
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let (kv, b) = (kv.clone(), b.clone());
                tokio::spawn(async move {
                    let mut stale = 0u32;
                    loop {
                        let read = kv.get(b.clone(), "n".into()).await.unwrap();
                        let n: u32 = read
                            .as_deref()
                            .map_or(0, |v| std::str::from_utf8(v).unwrap().parse().unwrap());
                        let next = (n + 1).to_string().into_bytes();
                        if kv
                            .compare_and_swap(b.clone(), "n".into(), read, next)
                            .await
                            .unwrap()
                        {
                            return stale;
                        }
                        stale += 1;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(
            kv.get(b, "n".into()).await.unwrap(),
            Some(b"20".to_vec()),
            "{}",
            kv.kind()
        );
    }
}

pub async fn concurrent_increments_lose_nothing(open: &Open) {
    let (kv, _guard) = open(Quota::default()).await;
    {
        let b = bucket("race");
        let tasks: Vec<_> = (0..50)
            .map(|_| tokio::spawn(kv.increment(b.clone(), "n".into(), 1)))
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(
            kv.get(b, "n".into()).await.unwrap(),
            Some(b"50".to_vec()),
            "{}",
            kv.kind()
        );
    }
}

pub async fn batches_and_pages(open: &Open) {
    let (kv, _guard) = open(Quota::default()).await;
    {
        let b = bucket("batch");
        let kind = kv.kind();
        let pairs: Vec<_> = (0..25)
            .map(|i| (format!("k{i:02}"), vec![i as u8]))
            .collect();
        kv.set_many(b.clone(), pairs).await.unwrap();
        let got = kv
            .get_many(b.clone(), vec!["k03".into(), "nope".into(), "k24".into()])
            .await
            .unwrap();
        assert_eq!(
            got,
            vec![
                Some(("k03".into(), vec![3])),
                None,
                Some(("k24".into(), vec![24]))
            ],
            "{kind}"
        );
        kv.delete_many(b.clone(), vec!["k00".into(), "k01".into(), "absent".into()])
            .await
            .unwrap();
        let mut keys = Vec::new();
        let mut cursor = None;
        for _ in 0..100 {
            let (page, next) = kv.list_keys(b.clone(), cursor, 10).await.unwrap();
            keys.extend(page);
            cursor = next;
            if cursor.is_none() {
                break;
            }
        }
        keys.sort();
        keys.dedup();
        let expected: Vec<String> = (2..25).map(|i| format!("k{i:02}")).collect();
        assert_eq!(keys, expected, "{kind}");
    }
}

/// The bytes (keys and values) and keys an app's buckets hold, read back
/// through the backend: what the quota must bound.
async fn stored(kv: &Arc<dyn KeyValueBackend>, buckets: &[&BucketId]) -> (u64, u64) {
    let (mut bytes, mut keys) = (0, 0);
    for bucket in buckets {
        let mut cursor = None;
        loop {
            let (page, next) = kv.list_keys((*bucket).clone(), cursor, 1000).await.unwrap();
            for key in page {
                let value = kv.get((*bucket).clone(), key.clone()).await.unwrap();
                bytes += (key.len() + value.map_or(0, |v| v.len())) as u64;
                keys += 1;
            }
            cursor = next;
            if cursor.is_none() {
                break;
            }
        }
    }
    (bytes, keys)
}

fn bytes_refusal(err: &KeyValueError) -> (u64, u64, u64) {
    match err {
        KeyValueError::BytesQuota {
            limit,
            used,
            adding,
        } => (*limit, *used, *adding),
        other => panic!("expected a byte quota refusal, got {other}"),
    }
}

pub async fn writes_past_the_byte_quota_change_nothing_and_deletes_free_it(open: &Open) {
    let (kv, _guard) = open(Quota {
        max_bytes: 100,
        max_keys: 1000,
    })
    .await;
    {
        let kind = kv.kind();
        let a = bucket("bytes");
        // Another bucket of the same app shares its quota.
        let b = BucketId {
            bucket: "other".into(),
            ..a.clone()
        };
        kv.set(a.clone(), "a".into(), vec![1; 49]).await.unwrap();
        // Exactly at the quota is within it.
        kv.set(b.clone(), "b".into(), vec![2; 49]).await.unwrap();
        let err = kv.set(a.clone(), "c".into(), vec![3]).await.unwrap_err();
        assert_eq!(bytes_refusal(&err), (100, 100, 2), "{kind}: {err}");
        assert!(
            err.to_string()
                .contains("quota of 100 bytes (--keyvalue-max-bytes-per-app) is used up"),
            "{kind}: {err}"
        );
        assert_eq!(kv.get(a.clone(), "c".into()).await.unwrap(), None, "{kind}");
        // An overwrite counts what it adds: shrinking always passes, and
        // growing back within the quota too, but not one byte past it.
        kv.set(a.clone(), "a".into(), vec![4; 40]).await.unwrap();
        kv.set(a.clone(), "a".into(), vec![5; 49]).await.unwrap();
        let err = kv
            .set(a.clone(), "a".into(), vec![6; 50])
            .await
            .unwrap_err();
        assert_eq!(bytes_refusal(&err), (100, 100, 1), "{kind}: {err}");
        assert_eq!(
            kv.get(a.clone(), "a".into()).await.unwrap(),
            Some(vec![5; 49]),
            "{kind}"
        );
        // Another app is not touched by this one's quota.
        let neighbour = bucket("bytes-neighbour");
        kv.set(neighbour.clone(), "n".into(), vec![7; 90])
            .await
            .unwrap();
        // Deleting frees what the key held; deleting it again frees nothing.
        kv.delete(b.clone(), "b".into()).await.unwrap();
        kv.delete(b.clone(), "b".into()).await.unwrap();
        kv.set(a.clone(), "c".into(), vec![3; 48]).await.unwrap();
        let err = kv.set(b.clone(), "d".into(), vec![8]).await.unwrap_err();
        assert_eq!(bytes_refusal(&err), (100, 99, 2), "{kind}: {err}");
        assert_eq!(stored(&kv, &[&a, &b]).await, (99, 2), "{kind}");
    }
}

pub async fn the_key_quota_counts_every_bucket_of_the_app(open: &Open) {
    let (kv, _guard) = open(Quota {
        max_bytes: 1 << 20,
        max_keys: 3,
    })
    .await;
    {
        let kind = kv.kind();
        let a = bucket("keys");
        let b = BucketId {
            bucket: "other".into(),
            ..a.clone()
        };
        kv.set(a.clone(), "k1".into(), b"v".to_vec()).await.unwrap();
        kv.set(b.clone(), "k2".into(), b"v".to_vec()).await.unwrap();
        kv.set(a.clone(), "k3".into(), b"v".to_vec()).await.unwrap();
        let err = kv
            .set(b.clone(), "k4".into(), b"v".to_vec())
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                KeyValueError::KeysQuota {
                    limit: 3,
                    used: 3,
                    adding: 1
                }
            ),
            "{kind}: {err}"
        );
        assert!(
            err.to_string()
                .contains("quota of 3 keys (--keyvalue-max-keys-per-app) is used up"),
            "{kind}: {err}"
        );
        // An existing key can still be written: it adds no key.
        kv.set(a.clone(), "k1".into(), b"new".to_vec())
            .await
            .unwrap();
        kv.delete_many(b.clone(), vec!["k2".into(), "k2".into()])
            .await
            .unwrap();
        kv.set(b.clone(), "k4".into(), b"v".to_vec()).await.unwrap();
        assert_eq!(stored(&kv, &[&a, &b]).await.1, 3, "{kind}");
    }
}

pub async fn increments_count_against_the_quota(open: &Open) {
    let (kv, _guard) = open(Quota {
        max_bytes: 5,
        max_keys: 100,
    })
    .await;
    {
        let kind = kv.kind();
        let b = bucket("incr-quota");
        // "n" = "9": 2 bytes; "10": 3 bytes.
        assert_eq!(kv.increment(b.clone(), "n".into(), 9).await.unwrap(), 9);
        assert_eq!(kv.increment(b.clone(), "n".into(), 1).await.unwrap(), 10);
        kv.set(b.clone(), "x".into(), b"y".to_vec()).await.unwrap();
        // "100" would be one byte more than the quota allows.
        let err = kv.increment(b.clone(), "n".into(), 90).await.unwrap_err();
        assert_eq!(bytes_refusal(&err), (5, 5, 1), "{kind}: {err}");
        assert_eq!(
            kv.get(b.clone(), "n".into()).await.unwrap(),
            Some(b"10".to_vec()),
            "{kind}"
        );
        // A new counter is a new key and its bytes.
        let err = kv.increment(b.clone(), "m".into(), 1).await.unwrap_err();
        assert_eq!(bytes_refusal(&err), (5, 5, 2), "{kind}: {err}");
        assert!(!kv.exists(b.clone(), "m".into()).await.unwrap(), "{kind}");
        // An increment that keeps the length passes at the quota.
        assert_eq!(kv.increment(b.clone(), "n".into(), 89).await.unwrap(), 99);
        assert_eq!(stored(&kv, &[&b]).await, (5, 2), "{kind}");
    }
}

pub async fn set_many_is_all_or_nothing_against_the_quota(open: &Open) {
    let (kv, _guard) = open(Quota {
        max_bytes: 100,
        max_keys: 4,
    })
    .await;
    {
        let kind = kv.kind();
        let b = bucket("batch-quota");
        let pairs = vec![
            ("a".to_string(), vec![1; 40]),
            ("b".to_string(), vec![2; 40]),
            ("c".to_string(), vec![3; 40]),
        ];
        let err = kv.set_many(b.clone(), pairs).await.unwrap_err();
        assert_eq!(bytes_refusal(&err), (100, 0, 123), "{kind}: {err}");
        assert_eq!(stored(&kv, &[&b]).await, (0, 0), "{kind}");
        // A key given twice counts as its last value.
        let pairs = vec![
            ("a".to_string(), vec![1; 99]),
            ("a".to_string(), vec![2; 9]),
        ];
        kv.set_many(b.clone(), pairs).await.unwrap();
        assert_eq!(
            kv.get(b.clone(), "a".into()).await.unwrap(),
            Some(vec![2; 9]),
            "{kind}"
        );
        let pairs: Vec<_> = (0..4).map(|i| (format!("k{i}"), vec![0])).collect();
        let err = kv.set_many(b.clone(), pairs).await.unwrap_err();
        assert!(
            matches!(
                err,
                KeyValueError::KeysQuota {
                    limit: 4,
                    used: 1,
                    adding: 4
                }
            ),
            "{kind}: {err}"
        );
        assert_eq!(stored(&kv, &[&b]).await, (10, 1), "{kind}");
    }
}

pub async fn concurrent_writers_cannot_overshoot_the_quota(open: &Open) {
    let (kv, _guard) = open(Quota {
        max_bytes: 10_000,
        max_keys: 1000,
    })
    .await;
    {
        let kind = kv.kind();
        let b = bucket("race-quota");
        // 50 writers of 1,003 bytes each (a 3-byte key): 9 fit in 10,000.
        let tasks: Vec<_> = (0..50)
            .map(|i| tokio::spawn(kv.set(b.clone(), format!("k{i:02}"), vec![0; 1000])))
            .collect();
        let mut written = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(()) => written += 1,
                Err(e) => {
                    bytes_refusal(&e);
                }
            }
        }
        assert_eq!(written, 9, "{kind}");
        assert_eq!(stored(&kv, &[&b]).await, (9 * 1003, 9), "{kind}");
    }
}

/// One `#[tokio::test]` per conformance check, each opening its backend
/// with `$open` (a [`conformance::keyvalue::Open`](crate::conformance::keyvalue::Open)).
/// Invoke it inside a module of the backend's tests.
#[macro_export]
macro_rules! keyvalue_conformance {
    ($open:expr) => {
        #[tokio::test]
        async fn set_get_exists_delete() {
            $crate::conformance::keyvalue::set_get_exists_delete(&$open).await;
        }
        #[tokio::test]
        async fn apps_and_buckets_do_not_share_keys() {
            $crate::conformance::keyvalue::apps_and_buckets_do_not_share_keys(&$open).await;
        }
        #[tokio::test]
        async fn increments_are_decimal_and_checked() {
            $crate::conformance::keyvalue::increments_are_decimal_and_checked(&$open).await;
        }
        #[tokio::test]
        async fn compare_and_swap_writes_only_over_what_it_expects() {
            $crate::conformance::keyvalue::compare_and_swap_writes_only_over_what_it_expects(&$open).await;
        }
        #[tokio::test]
        async fn concurrent_compare_and_swaps_lose_nothing() {
            $crate::conformance::keyvalue::concurrent_compare_and_swaps_lose_nothing(&$open).await;
        }
        #[tokio::test]
        async fn concurrent_increments_lose_nothing() {
            $crate::conformance::keyvalue::concurrent_increments_lose_nothing(&$open).await;
        }
        #[tokio::test]
        async fn batches_and_pages() {
            $crate::conformance::keyvalue::batches_and_pages(&$open).await;
        }
        #[tokio::test]
        async fn writes_past_the_byte_quota_change_nothing_and_deletes_free_it() {
            $crate::conformance::keyvalue::writes_past_the_byte_quota_change_nothing_and_deletes_free_it(&$open).await;
        }
        #[tokio::test]
        async fn the_key_quota_counts_every_bucket_of_the_app() {
            $crate::conformance::keyvalue::the_key_quota_counts_every_bucket_of_the_app(&$open).await;
        }
        #[tokio::test]
        async fn increments_count_against_the_quota() {
            $crate::conformance::keyvalue::increments_count_against_the_quota(&$open).await;
        }
        #[tokio::test]
        async fn set_many_is_all_or_nothing_against_the_quota() {
            $crate::conformance::keyvalue::set_many_is_all_or_nothing_against_the_quota(&$open).await;
        }
        #[tokio::test]
        async fn concurrent_writers_cannot_overshoot_the_quota() {
            $crate::conformance::keyvalue::concurrent_writers_cannot_overshoot_the_quota(&$open).await;
        }
    };
}
