//! The JetStream namespace store against the storage crate's suite, on the
//! NATS server at 127.0.0.1:4222 (`scripts/brokers.sh`).
#![allow(clippy::unwrap_used)]

use std::any::Any;
use std::sync::Arc;

use stratus_storage::NamespaceStore;
use stratus_storage::conformance::Opened;

use crate::testing::{Scratch, bucket_name};
use crate::{JetStreamNamespaces, Kv, KvSettings};

fn open_jetstream() -> Opened<Arc<dyn NamespaceStore>> {
    Box::pin(async move {
        let scratch = Scratch::connect().await;
        let bucket = bucket_name("namespaces");
        let kv = Kv::open(scratch.js(), &bucket, &KvSettings::default())
            .await
            .unwrap();
        let scratch = scratch.removing(format!("KV_{bucket}"));
        (
            Arc::new(JetStreamNamespaces::new(kv)) as Arc<dyn NamespaceStore>,
            Box::new(scratch) as Box<dyn Any>,
        )
    })
}

mod conformance {
    stratus_storage::namespaces_conformance!(super::open_jetstream);
}

#[tokio::test]
async fn a_record_that_cannot_be_read_leaves_the_others_applied() {
    let scratch = Scratch::connect().await;
    let bucket = bucket_name("namespaces");
    let kv = Kv::open(scratch.js(), &bucket, &KvSettings::default())
        .await
        .unwrap();
    let _scratch = scratch.removing(format!("KV_{bucket}"));
    let store = JetStreamNamespaces::new(kv.clone());
    let quotas = stratus_storage::Quotas {
        max_apps: Some(3),
        ..Default::default()
    };
    store.set_quotas("team-a", quotas.clone()).await.unwrap();
    kv.put("q.team-b", bytes::Bytes::from_static(b"{not json"))
        .await
        .unwrap();
    assert_eq!(
        store.all().await.unwrap(),
        vec![("team-a".to_owned(), quotas)]
    );
}
