//! Both backends against the storage crate's key-value conformance suite:
//! SQLite in a temporary directory, and the Redis server on 127.0.0.1:6379
//! (started by `scripts/brokers.sh`).
#![allow(clippy::unwrap_used)]

use std::any::Any;
use std::sync::Arc;

use stratus_storage::conformance::Opened;
use stratus_storage::{BucketId, KeyValueBackend};

use crate::{Quota, RedisKeyValue, SqliteKeyValue};

const REDIS: &str = "redis://127.0.0.1:6379";

fn open_sqlite(quota: Quota) -> Opened<Arc<dyn KeyValueBackend>> {
    Box::pin(async move {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = SqliteKeyValue::open(&dir.path().join("kv.sqlite"), quota).unwrap();
        (
            Arc::new(sqlite) as Arc<dyn KeyValueBackend>,
            Box::new(dir) as Box<dyn Any>,
        )
    })
}

fn open_redis(quota: Quota) -> Opened<Arc<dyn KeyValueBackend>> {
    Box::pin(async move {
        let redis = RedisKeyValue::new(REDIS, quota).unwrap();
        (
            Arc::new(redis) as Arc<dyn KeyValueBackend>,
            Box::new(()) as Box<dyn Any>,
        )
    })
}

mod sqlite {
    stratus_storage::keyvalue_conformance!(super::open_sqlite);
}

mod redis {
    stratus_storage::keyvalue_conformance!(super::open_redis);
}

#[tokio::test]
async fn an_unreachable_redis_is_an_error_naming_it() {
    let kv = RedisKeyValue::new("redis://127.0.0.1:1", Quota::default()).unwrap();
    let bucket = BucketId {
        app: "down".into(),
        bucket: "default".into(),
    };
    let err = kv.get(bucket, "k".into()).await.unwrap_err();
    assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
}
