//! The JetStream secret backend against the storage crate's suite, on the
//! NATS server at 127.0.0.1:4222 (`scripts/brokers.sh`).
#![allow(clippy::unwrap_used)]

use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use stratus_storage::conformance::Opened;
use stratus_storage::{SealedSecret, SecretBackend};

use crate::testing::{Scratch, bucket_name};
use crate::{JetStreamSecrets, Kv, KvSettings};

fn open_jetstream() -> Opened<Arc<dyn SecretBackend>> {
    Box::pin(async move {
        let scratch = Scratch::connect().await;
        let bucket = bucket_name("secrets");
        let kv = Kv::open(scratch.js(), &bucket, &KvSettings::default())
            .await
            .unwrap();
        let secrets = JetStreamSecrets::open(kv).await.unwrap();
        let scratch = scratch.removing(format!("KV_{bucket}"));
        (
            Arc::new(secrets) as Arc<dyn SecretBackend>,
            Box::new(scratch) as Box<dyn Any>,
        )
    })
}

mod conformance {
    stratus_storage::secrets_conformance!(super::open_jetstream);
}

/// What one node sets, another reads from its replica, and what was there
/// before a node started is in its replica when it opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_set_through_one_node_is_read_on_another() {
    let scratch = Scratch::connect().await;
    let bucket = bucket_name("secrets");
    let kv = || async {
        Kv::open(scratch.js(), &bucket, &KvSettings::default())
            .await
            .unwrap()
    };
    let one = JetStreamSecrets::open(kv().await).await.unwrap();
    let sealed = SealedSecret {
        nonce: vec![1; 24],
        ciphertext: vec![2; 40],
        updated: SystemTime::UNIX_EPOCH + Duration::from_micros(1_700_000_000_000_123),
    };
    one.put("shop", "API_KEY", &sealed).unwrap();
    let late = JetStreamSecrets::open(kv().await).await.unwrap();
    assert_eq!(late.get("shop", "API_KEY").unwrap(), Some(sealed.clone()));

    let changed = SealedSecret {
        ciphertext: vec![3; 40],
        ..sealed
    };
    one.put("shop", "API_KEY", &changed).unwrap();
    let started = std::time::Instant::now();
    while late.get("shop", "API_KEY").unwrap() != Some(changed.clone()) {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "never replicated"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(late.delete("shop", "API_KEY").unwrap());
    let started = std::time::Instant::now();
    while one.get("shop", "API_KEY").unwrap().is_some() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "delete never replicated"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(scratch.removing(format!("KV_{bucket}")));
}
