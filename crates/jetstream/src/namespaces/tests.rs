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
