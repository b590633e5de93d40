//! The JetStream token store against the storage crate's suite, on the
//! NATS server at 127.0.0.1:4222 (`scripts/brokers.sh`).
#![allow(clippy::unwrap_used)]

use std::any::Any;
use std::sync::Arc;

use stratus_storage::TokenStore;
use stratus_storage::conformance::Opened;

use crate::testing::{Scratch, bucket_name};
use crate::{JetStreamTokens, Kv, KvSettings};

fn open_jetstream() -> Opened<Arc<dyn TokenStore>> {
    Box::pin(async move {
        let scratch = Scratch::connect().await;
        let bucket = bucket_name("tokens");
        let kv = Kv::open(scratch.js(), &bucket, &KvSettings::default())
            .await
            .unwrap();
        let scratch = scratch.removing(format!("KV_{bucket}"));
        (
            Arc::new(JetStreamTokens::new(kv)) as Arc<dyn TokenStore>,
            Box::new(scratch) as Box<dyn Any>,
        )
    })
}

mod conformance {
    stratus_storage::tokens_conformance!(super::open_jetstream);
}
