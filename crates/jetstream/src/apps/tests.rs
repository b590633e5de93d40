//! The JetStream app store against the storage crate's suite, on the NATS
//! server at 127.0.0.1:4222 (started by `scripts/brokers.sh`), each check
//! in a bucket of its own that is removed afterwards.
#![allow(clippy::unwrap_used)]

use std::any::Any;
use std::sync::Arc;

use stratus_storage::conformance::Opened;
use stratus_storage::{AppStore, AppStoreError, NewFunction};

use crate::testing::{Scratch, bucket_name};
use crate::{JetStreamApps, Kv, KvSettings};

fn open_jetstream() -> Opened<Arc<dyn AppStore>> {
    Box::pin(async move {
        let scratch = Scratch::connect().await;
        let bucket = bucket_name("apps");
        let kv = Kv::open(scratch.js(), &bucket, &KvSettings::default())
            .await
            .unwrap();
        let scratch = scratch.removing(format!("KV_{bucket}"));
        (
            Arc::new(JetStreamApps::new(kv)) as Arc<dyn AppStore>,
            Box::new(scratch) as Box<dyn Any>,
        )
    })
}

mod conformance {
    stratus_storage::apps_conformance!(super::open_jetstream);
}

/// Two nodes (two connections) deploy the same app at the same moment: one
/// wins, the other is told so and leaves no version document behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_nodes_deploying_at_once_one_wins_and_the_loser_leaves_nothing() {
    let scratch = Scratch::connect().await;
    let bucket = bucket_name("apps");
    let settings = KvSettings::default();
    let one = JetStreamApps::new(Kv::open(scratch.js(), &bucket, &settings).await.unwrap());
    let other = Scratch::connect().await;
    let two = JetStreamApps::new(Kv::open(other.js(), &bucket, &settings).await.unwrap());
    let _scratch = scratch.removing(format!("KV_{bucket}"));

    let f = |c: &str| NewFunction {
        name: "hello".into(),
        component_sha256: stratus_storage::sha256_hex(c.as_bytes()),
        spec: serde_json::json!({}),
    };
    let mut conflicts = 0;
    for round in 0..20 {
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let deploy = |store: JetStreamApps, who: &'static str| {
            let (barrier, f) = (barrier.clone(), f(who));
            tokio::spawn(async move {
                barrier.wait().await;
                store.create_version("shop", who, vec![f], true).await
            })
        };
        let a = deploy(one.clone(), "node one");
        let b = deploy(two.clone(), "node two");
        let results = [a.await.unwrap(), b.await.unwrap()];
        let won = results.iter().filter(|r| r.is_ok()).count();
        assert!(won >= 1, "round {round}: both lost");
        for result in &results {
            if let Err(e) = result {
                assert!(
                    matches!(e, AppStoreError::Conflict(app) if app == "shop"),
                    "{e}"
                );
                assert_eq!(
                    e.to_string(),
                    "app \"shop\" was changed by another deploy at the same time; nothing was written, try again"
                );
                conflicts += 1;
            }
        }
    }
    assert!(
        conflicts > 0,
        "20 rounds of simultaneous deploys never raced"
    );
    // Only the winners' documents are in the bucket.
    let app = one.app("shop").await.unwrap().unwrap();
    let documents = one.bucket().entries("versions.shop").await.unwrap();
    assert_eq!(documents.len() as u32, app.versions);
    assert_eq!(app.versions, 40 - conflicts);
}

/// A head damaged in the bucket is left out of listings (and keeps every
/// component from being removed), and only that app's reads fail.
#[tokio::test]
async fn an_unreadable_app_record_fails_only_its_own_reads() {
    let scratch = Scratch::connect().await;
    let bucket = bucket_name("apps");
    let kv = Kv::open(scratch.js(), &bucket, &KvSettings::default())
        .await
        .unwrap();
    let _scratch = scratch.removing(format!("KV_{bucket}"));
    let store = JetStreamApps::new(kv.clone());
    let f = |name: &str| NewFunction {
        name: name.into(),
        component_sha256: stratus_storage::sha256_hex(name.as_bytes()),
        spec: serde_json::json!({}),
    };
    store
        .create_version("shop", "m", vec![f("a")], true)
        .await
        .unwrap();
    store
        .create_version("gone", "m", vec![f("b")], true)
        .await
        .unwrap();
    kv.put("apps.broken", bytes::Bytes::from_static(b"\x00 not json"))
        .await
        .unwrap();

    let names: Vec<String> = store
        .list_apps()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names, ["gone", "shop"]);
    assert_eq!(store.live_functions().await.unwrap().len(), 2);
    let err = store.app("broken").await.unwrap_err();
    assert!(
        err.to_string()
            .contains("an app record in JetStream is corrupt"),
        "{err}"
    );
    // Deleting an app cannot tell what the unreadable one uses: nothing is
    // reported unused.
    assert!(store.delete_app("gone").await.unwrap().is_empty());
    assert!(store.app("shop").await.unwrap().is_some());
}
