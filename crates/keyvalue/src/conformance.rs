//! The same behaviour from both backends: each test runs against SQLite
//! and against the Redis server on 127.0.0.1:6379.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use stratus_runtime::{BucketId, KeyValueBackend, KeyValueError};

use crate::{RedisKeyValue, SqliteKeyValue};

const REDIS: &str = "redis://127.0.0.1:6379";

/// Both backends, and a directory that must outlive the SQLite one.
fn backends() -> (tempfile::TempDir, Vec<Arc<dyn KeyValueBackend>>) {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteKeyValue::open(&dir.path().join("kv.sqlite")).unwrap();
    let redis = RedisKeyValue::new(REDIS).unwrap();
    (dir, vec![Arc::new(sqlite), Arc::new(redis)])
}

/// A bucket no other test run uses (Redis outlives the test).
fn bucket(app: &str) -> BucketId {
    BucketId {
        app: format!("{app}-{}", uuid::Uuid::now_v7().simple()),
        bucket: "default".into(),
    }
}

#[tokio::test]
async fn set_get_exists_delete() {
    let (_dir, backends) = backends();
    for kv in backends {
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

#[tokio::test]
async fn apps_and_buckets_do_not_share_keys() {
    let (_dir, backends) = backends();
    for kv in backends {
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

#[tokio::test]
async fn increments_are_decimal_and_checked() {
    let (_dir, backends) = backends();
    for kv in backends {
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
        // Neither backend increments what is not a plain non-negative
        // number, and neither changes it trying.
        kv.set(b.clone(), "minus".into(), b"-5".to_vec())
            .await
            .unwrap();
        let err = kv
            .increment(b.clone(), "minus".into(), 1)
            .await
            .unwrap_err();
        assert!(
            matches!(err, KeyValueError::NotANumber { .. }),
            "{kind}: {err}"
        );
        let minus = kv.get(b.clone(), "minus".into()).await.unwrap();
        assert_eq!(minus, Some(b"-5".to_vec()), "{kind}");
        kv.set(b.clone(), "text".into(), b"seven".to_vec())
            .await
            .unwrap();
        let err = kv.increment(b.clone(), "text".into(), 1).await.unwrap_err();
        assert!(
            matches!(err, KeyValueError::NotANumber { .. }),
            "{kind}: {err}"
        );
        let err = kv
            .increment(b.clone(), "n".into(), i64::MAX as u64)
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

#[tokio::test]
async fn concurrent_increments_lose_nothing() {
    let (_dir, backends) = backends();
    for kv in backends {
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

#[tokio::test]
async fn batches_and_pages() {
    let (_dir, backends) = backends();
    for kv in backends {
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

#[tokio::test]
async fn an_unreachable_redis_is_an_error_naming_it() {
    let kv = RedisKeyValue::new("redis://127.0.0.1:1").unwrap();
    let err = kv.get(bucket("down"), "k".into()).await.unwrap_err();
    assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
}
